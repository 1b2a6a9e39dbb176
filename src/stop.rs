//! Stopping the run early: the global deadline and SIGINT/SIGTERM.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::outcome::{ErrorKind, Failure};
use crate::text::human_duration;

/// Why the run stopped before every target was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `--deadline` passed.
    Deadline(Duration),
    /// A signal arrived.
    Signal(Signal),
}

/// The signals that stop a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// The conventional exit status for a process stopped by this signal.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    /// The signal's name, `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

impl StopReason {
    /// The failure given to a target the stop left unchecked.
    pub fn failure(self) -> Failure {
        match self {
            StopReason::Deadline(deadline) => Failure::new(
                ErrorKind::Deadline,
                format!(
                    "the {} deadline passed before the check finished",
                    human_duration(deadline)
                ),
            ),
            StopReason::Signal(signal) => Failure::new(
                ErrorKind::Interrupted,
                format!(
                    "{} stopped the run before the check finished",
                    signal.name()
                ),
            ),
        }
    }
}

/// Sets the stop reason; the first reason set wins.
#[derive(Clone)]
pub struct StopTrigger {
    sender: watch::Sender<Option<StopReason>>,
}

impl StopTrigger {
    /// Stops the run for `reason`, unless it is already stopped.
    pub fn stop(&self, reason: StopReason) {
        self.sender.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }
}

/// Tells whether, and why, the run has stopped.
#[derive(Clone)]
pub struct Stop {
    receiver: watch::Receiver<Option<StopReason>>,
}

impl Stop {
    /// Waits until the run stops.
    pub async fn stopped(&mut self) -> StopReason {
        let reason = match self.receiver.wait_for(Option::is_some).await {
            Ok(reason) => *reason,
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            // The trigger lives as long as the run, so this only happens as the run ends.
            None => std::future::pending().await,
        }
    }

    /// Why the run stopped, if it has.
    pub fn reason(&self) -> Option<StopReason> {
        *self.receiver.borrow()
    }
}

/// A new, unstopped run.
pub fn channel() -> (StopTrigger, Stop) {
    let (sender, receiver) = watch::channel(None);
    (StopTrigger { sender }, Stop { receiver })
}

/// Stops the run when `deadline` (measured from `start`) passes.
pub fn stop_at_deadline(trigger: StopTrigger, start: Instant, deadline: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep_until(start + deadline).await;
        trigger.stop(StopReason::Deadline(deadline));
    });
}

/// Stops the run gracefully on the first SIGINT or SIGTERM, and exits at once on the second.
pub fn stop_on_signals(trigger: StopTrigger) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            let signal = tokio::select! {
                Some(()) = interrupt.recv() => Signal::Interrupt,
                Some(()) = terminate.recv() => Signal::Terminate,
                else => return,
            };
            received += 1;
            if received > 1 {
                // The user insists: the contract asks for an immediate exit, with nothing
                // more printed, so this is the one place that leaves without unwinding.
                crate::output::remove_pending();
                std::process::exit(i32::from(signal.exit_code()));
            }
            trigger.stop(StopReason::Signal(signal));
        }
    });
    Ok(())
}
