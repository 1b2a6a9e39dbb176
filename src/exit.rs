//! How a run ended, and the exit status that says so: one ordering of endings, read through
//! two code tables (the contract's, and the Nagios plugin's for `--format nagios`).

use std::io;

use crate::stop::{Signal, StopReason};
use crate::summary::Summary;

/// Every target was checked and is healthy.
pub(crate) const HEALTHY: u8 = 0;
/// Usage error or unreadable input (or, after probing began, unreadable input or unwritable output).
pub(crate) const USAGE: u8 = 2;
/// Stdout was closed by its reader: the status a process killed by SIGPIPE has.
const BROKEN_PIPE: u8 = 141;

/// How a run ended, most serious first: where several apply, the first one wins. This is
/// the contract's "later row wins" and the plugin states' order alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A signal stopped the run.
    Interrupted(Signal),
    /// The deadline passed before every target was checked (or the input was read).
    DeadlinePassed,
    /// An input could not be read to its end.
    InputUnreadable,
    /// A target is down (or slow, with `--fail-slow`).
    Down,
    /// Nothing is down, but a certificate expires within `--cert-min-days`.
    CertExpiring,
    /// Everything is healthy, but something is slow.
    Slow,
    /// Everything is healthy.
    Healthy,
}

/// What decides the ending besides the results' counts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RunFacts {
    /// Why the run was stopped early, if it was.
    pub(crate) stop: Option<StopReason>,
    /// Whether an input could not be read to its end.
    pub(crate) read_failed: bool,
    /// Whether the stop left lines of the input unread.
    pub(crate) left_unread: bool,
    /// Whether slow results fail the run (`--fail-slow`).
    pub(crate) fail_slow: bool,
}

impl Ending {
    /// The ending of a run whose results add up to `summary`.
    pub(crate) fn of(summary: &Summary, facts: RunFacts) -> Self {
        if let Some(StopReason::Signal(signal)) = facts.stop {
            Ending::Interrupted(signal)
        } else if summary.deadline_skipped > 0 || facts.left_unread {
            Ending::DeadlinePassed
        } else if facts.read_failed {
            Ending::InputUnreadable
        } else if summary.down() > 0 || (facts.fail_slow && summary.slow > 0) {
            Ending::Down
        } else if summary.cert_expiring > 0 {
            Ending::CertExpiring
        } else if summary.slow > 0 {
            Ending::Slow
        } else {
            Ending::Healthy
        }
    }

    /// The exit status in the contract's table.
    pub(crate) fn contract_code(self) -> u8 {
        match self {
            Ending::Interrupted(signal) => signal.exit_code(),
            Ending::DeadlinePassed => 3,
            Ending::InputUnreadable => USAGE,
            Ending::Down | Ending::CertExpiring => 1,
            Ending::Slow | Ending::Healthy => HEALTHY,
        }
    }

    /// The plugin state in the Nagios table (its value is the exit status).
    pub(crate) fn nagios_state(self) -> NagiosState {
        match self {
            Ending::Interrupted(_) | Ending::InputUnreadable => NagiosState::Unknown,
            Ending::DeadlinePassed | Ending::Down => NagiosState::Critical,
            Ending::CertExpiring | Ending::Slow => NagiosState::Warning,
            Ending::Healthy => NagiosState::Ok,
        }
    }
}

/// A Nagios plugin state; its value is the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NagiosState {
    /// Every target is healthy and none is slow.
    Ok = 0,
    /// Nothing is down, but something is slow or its certificate expires soon.
    Warning = 1,
    /// Something is down, or the deadline passed before every target was checked.
    Critical = 2,
    /// The check itself could not be made: a usage error, unreadable input, a signal.
    Unknown = 3,
}

impl NagiosState {
    /// The word plugins print for this state.
    pub(crate) fn word(self) -> &'static str {
        match self {
            NagiosState::Ok => "OK",
            NagiosState::Warning => "WARNING",
            NagiosState::Critical => "CRITICAL",
            NagiosState::Unknown => "UNKNOWN",
        }
    }

    /// The exit code for this state.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// Whether the run failed because stdout was closed by its reader.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints why the run failed (nothing for a closed pipe) and returns the exit status.
pub(crate) fn explain(err: &anyhow::Error) -> u8 {
    if is_broken_pipe(err) {
        return BROKEN_PIPE;
    }
    eprintln!("upcheck: {err:#}");
    USAGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn summary() -> Summary {
        Summary::default()
    }

    fn contract(summary: &Summary, facts: RunFacts) -> u8 {
        Ending::of(summary, facts).contract_code()
    }

    fn nagios(summary: &Summary, facts: RunFacts) -> NagiosState {
        Ending::of(summary, facts).nagios_state()
    }

    #[test]
    fn slow_results_fail_only_with_fail_slow() {
        let slow = Summary {
            slow: 2,
            ..summary()
        };
        assert_eq!(contract(&slow, RunFacts::default()), HEALTHY);
        let fail_slow = RunFacts {
            fail_slow: true,
            ..RunFacts::default()
        };
        assert_eq!(contract(&slow, fail_slow), 1);
        assert_eq!(contract(&summary(), fail_slow), HEALTHY);
        assert_eq!(nagios(&slow, RunFacts::default()), NagiosState::Warning);
        assert_eq!(nagios(&slow, fail_slow), NagiosState::Critical);
    }

    #[test]
    fn later_rows_win() {
        let none = RunFacts::default();
        assert_eq!(contract(&summary(), none), HEALTHY);
        let failed = Summary {
            failed: 1,
            ..summary()
        };
        assert_eq!(contract(&failed, none), 1);
        let read_failed = RunFacts {
            read_failed: true,
            ..none
        };
        assert_eq!(contract(&failed, read_failed), USAGE);
        let deadline = RunFacts {
            stop: Some(StopReason::Deadline(Duration::from_secs(1))),
            ..none
        };
        let cut = Summary {
            failed: 1,
            deadline_skipped: 2,
            ..summary()
        };
        assert_eq!(contract(&cut, deadline), 3);
        assert_eq!(contract(&summary(), deadline), HEALTHY);
        let unread = RunFacts {
            left_unread: true,
            ..deadline
        };
        assert_eq!(contract(&summary(), unread), 3);
        assert_eq!(nagios(&summary(), unread), NagiosState::Critical);
        let interrupted = RunFacts {
            stop: Some(StopReason::Signal(Signal::Terminate)),
            ..none
        };
        assert_eq!(contract(&cut, interrupted), 143);
    }

    #[test]
    fn certificates_expiring_are_a_failure_but_only_a_warning() {
        let expiring = Summary {
            failed: 1,
            cert_expiring: 1,
            ..summary()
        };
        assert_eq!(contract(&expiring, RunFacts::default()), 1);
        assert_eq!(nagios(&expiring, RunFacts::default()), NagiosState::Warning);
        let also_down = Summary {
            failed: 2,
            ..expiring
        };
        assert_eq!(
            nagios(&also_down, RunFacts::default()),
            NagiosState::Critical
        );
    }
}
