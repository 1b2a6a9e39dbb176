//! What the run is waiting on: the targets in flight, for SIGUSR1 (as `dd` prints its
//! progress on SIGUSR1) and for the progress bar.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::progress::Progress;
use crate::values::human_duration;

/// Most targets SIGUSR1 lists; the rest are counted.
const LISTED: usize = 20;

/// How often the progress bar looks for a target waiting too long.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The targets in flight, oldest first; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct InFlight {
    registry: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    /// By start order, which is oldest first.
    flying: BTreeMap<u64, Flying>,
}

struct Flying {
    target: String,
    since: Instant,
    attempt: u32,
}

impl InFlight {
    /// Notes that checking `target` starts now; it is in flight until the ticket is dropped.
    pub(crate) fn enter(&self, target: &str) -> Ticket {
        let mut registry = self.lock();
        let id = registry.next;
        registry.next += 1;
        registry.flying.insert(
            id,
            Flying {
                target: target.to_owned(),
                since: Instant::now(),
                attempt: 0,
            },
        );
        Ticket {
            registry: self.registry.clone(),
            id,
        }
    }

    /// What SIGUSR1 prints: the targets in flight, oldest first, with how long each has
    /// waited and in which attempt; at most [`LISTED`] of them, and how many more.
    pub(crate) fn report(&self) -> String {
        let registry = self.lock();
        let now = Instant::now();
        let count = registry.flying.len();
        let mut text = match count {
            0 => return "upcheck: nothing in flight\n".to_owned(),
            1 => "upcheck: 1 target in flight:\n".to_owned(),
            n => format!("upcheck: {n} targets in flight, oldest first:\n"),
        };
        for flying in registry.flying.values().take(LISTED) {
            let waited = human_duration(round_to_tenths(now - flying.since));
            let _ = writeln!(
                text,
                "  {waited:>8}  attempt {}  {}",
                flying.attempt.max(1),
                flying.target
            );
        }
        if count > LISTED {
            let _ = writeln!(text, "  and {} more", count - LISTED);
        }
        text
    }

    /// The oldest target in flight and how long it has waited, if that is longer than `over`.
    fn oldest_over(&self, over: Duration) -> Option<(String, Duration)> {
        let registry = self.lock();
        let oldest = registry.flying.values().next()?;
        let waited = oldest.since.elapsed();
        (waited > over).then(|| (oldest.target.clone(), waited))
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A target in flight; dropping it (however its check ends) takes it off the list.
pub(crate) struct Ticket {
    registry: Arc<Mutex<Registry>>,
    id: u64,
}

impl Ticket {
    /// Notes that attempt number `attempt` (from 1) has started.
    pub(crate) fn attempt(&self, attempt: u32) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flying) = registry.flying.get_mut(&self.id) {
            flying.attempt = attempt;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.flying.remove(&self.id);
    }
}

/// Prints [`InFlight::report`] on stderr at every SIGUSR1, for the rest of the run.
pub(crate) fn report_on_sigusr1(in_flight: InFlight, progress: Progress) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut user1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while user1.recv().await.is_some() {
            let report = in_flight.report();
            progress.suspend(|| eprint!("{report}"));
        }
    });
    Ok(())
}

/// Names on the progress bar the oldest target in flight once it has waited longer than
/// `patience`, so a run that seems stuck says on what.
pub(crate) fn show_laggard(in_flight: InFlight, progress: Progress, patience: Duration) {
    if !progress.is_shown() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let waiting = in_flight.oldest_over(patience).map(|(target, waited)| {
                format!(
                    ", waiting {} on {target}",
                    human_duration(round_to_tenths(waited))
                )
            });
            progress.waiting_on(waiting);
        }
    });
}

/// A wait rounded down to tenths of a second, which is as precise as a person reads it.
fn round_to_tenths(waited: Duration) -> Duration {
    Duration::from_millis(waited.as_millis() as u64 / 100 * 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_the_oldest_first_and_counts_the_rest() {
        let in_flight = InFlight::default();
        assert_eq!(in_flight.report(), "upcheck: nothing in flight\n");
        let mut tickets: Vec<Ticket> = (0..23)
            .map(|n| in_flight.enter(&format!("http://127.0.0.1/{n}")))
            .collect();
        tickets[1].attempt(2);
        tickets.remove(0);
        let report = in_flight.report();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "upcheck: 22 targets in flight, oldest first:");
        assert!(
            lines[1].ends_with("attempt 2  http://127.0.0.1/1"),
            "{report}"
        );
        assert!(
            lines[2].ends_with("attempt 1  http://127.0.0.1/2"),
            "{report}"
        );
        assert_eq!(lines.len(), 1 + LISTED + 1);
        assert_eq!(lines[21], "  and 2 more");
    }
}
