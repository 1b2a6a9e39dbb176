//! Stopping the run early: the global deadline and SIGINT/SIGTERM/SIGHUP.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::outcome::{ErrorKind, Failure};
use crate::values::human_duration;

/// Why the run stopped before every target was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `--deadline` passed.
    Deadline(Duration),
    /// A signal arrived.
    Signal(Signal),
}

/// The signals that stop a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP: the terminal or the session went away.
    Hangup,
}

impl Signal {
    /// The conventional exit status for a process stopped by this signal.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::Hangup => 129,
        }
    }

    /// The signal's name, `SIGINT`, `SIGTERM` or `SIGHUP`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

impl StopReason {
    /// The failure given to a target the stop left unchecked.
    pub(crate) fn failure(self) -> Failure {
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
pub(crate) struct StopTrigger {
    sender: watch::Sender<Option<StopReason>>,
}

impl StopTrigger {
    /// Stops the run for `reason`, unless it is already stopped.
    pub(crate) fn stop(&self, reason: StopReason) {
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
pub(crate) struct Stop {
    receiver: watch::Receiver<Option<StopReason>>,
}

impl Stop {
    /// Waits until the run stops.
    pub(crate) async fn stopped(&mut self) -> StopReason {
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
    pub(crate) fn reason(&self) -> Option<StopReason> {
        *self.receiver.borrow()
    }
}

/// A new, unstopped run.
pub(crate) fn channel() -> (StopTrigger, Stop) {
    let (sender, receiver) = watch::channel(None);
    (StopTrigger { sender }, Stop { receiver })
}

/// Stops the run when `deadline` (measured from `start`) passes.
pub(crate) fn stop_at_deadline(trigger: StopTrigger, start: Instant, deadline: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep_until(start + deadline).await;
        trigger.stop(StopReason::Deadline(deadline));
    });
}

/// Stops the run gracefully on the first SIGINT, SIGTERM or SIGHUP, and on the second calls
/// `before_exit` (whoever owns the output cleans up there) and exits at once.
pub(crate) fn stop_on_signals(trigger: StopTrigger, before_exit: fn()) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    // Under `nohup` SIGHUP is ignored, and must stay so: the run outlives its terminal.
    let mut hangup = if is_ignored(libc::SIGHUP) {
        None
    } else {
        Some(signal(SignalKind::hangup())?)
    };
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            let signal = tokio::select! {
                Some(()) = interrupt.recv() => Signal::Interrupt,
                Some(()) = terminate.recv() => Signal::Terminate,
                Some(()) = next_delivery(&mut hangup) => Signal::Hangup,
                else => return,
            };
            received += 1;
            if received > 1 {
                // The user insists: the contract asks for an immediate exit, with nothing
                // more printed, so this is the one place that leaves without unwinding.
                before_exit();
                std::process::exit(i32::from(signal.exit_code()));
            }
            trigger.stop(StopReason::Signal(signal));
        }
    });
    Ok(())
}

/// The next delivery of `signal`, or never when it is not listened for.
async fn next_delivery(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether `signal` is ignored (as `nohup` leaves SIGHUP for the programs it starts).
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is a valid out-parameter, and a null new action only reads.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
    read == 0 && current.sa_sigaction == libc::SIG_IGN
}
