//! Exit statuses: the contract's codes, and what a failed run prints on its way out.

use std::io;

use crate::stop::StopReason;

/// Every target was checked and is healthy.
pub const HEALTHY: u8 = 0;
/// The run finished and at least one target is unhealthy or invalid.
pub const UNHEALTHY: u8 = 1;
/// Usage error or unreadable input (or, after probing began, unreadable input or unwritable output).
pub const USAGE: u8 = 2;
/// The deadline passed before every target was checked.
pub const DEADLINE: u8 = 3;
/// Stdout was closed by its reader: the status a process killed by SIGPIPE has.
pub const BROKEN_PIPE: u8 = 141;

/// How a run ended, as far as its exit status cares.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunEnd {
    /// Unhealthy or invalid results.
    pub failed: u64,
    /// Of the failed results, those failed only for a certificate within `--cert-min-days`.
    pub cert_expiring: u64,
    /// Healthy results slower than `--slow`.
    pub slow: u64,
    /// Whether slow results fail the run (`--fail-slow`).
    pub fail_slow: bool,
    /// Whether an input could not be read to its end.
    pub read_failed: bool,
    /// Results cut short by the deadline.
    pub deadline_skipped: u64,
    /// Why the run was stopped early, if it was.
    pub stop: Option<StopReason>,
}

/// The exit status of a run; where several apply, the contract's later row wins.
pub fn status(end: RunEnd) -> u8 {
    if let Some(StopReason::Signal(signal)) = end.stop {
        signal.exit_code()
    } else if end.deadline_skipped > 0 {
        DEADLINE
    } else if end.read_failed {
        USAGE
    } else if end.failed > 0 || (end.fail_slow && end.slow > 0) {
        UNHEALTHY
    } else {
        HEALTHY
    }
}

/// Whether the run failed because stdout was closed by its reader.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints why the run failed (nothing for a closed pipe) and returns the exit status.
pub fn explain(err: &anyhow::Error) -> u8 {
    if is_broken_pipe(err) {
        return BROKEN_PIPE;
    }
    eprintln!("upcheck: {err:#}");
    USAGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stop::Signal;
    use std::time::Duration;

    fn end() -> RunEnd {
        RunEnd::default()
    }

    #[test]
    fn slow_results_fail_only_with_fail_slow() {
        assert_eq!(status(RunEnd { slow: 2, ..end() }), HEALTHY);
        let fail_slow = RunEnd {
            slow: 2,
            fail_slow: true,
            ..end()
        };
        assert_eq!(status(fail_slow), UNHEALTHY);
        assert_eq!(
            status(RunEnd {
                fail_slow: true,
                ..end()
            }),
            HEALTHY
        );
    }

    #[test]
    fn later_rows_win() {
        assert_eq!(status(end()), HEALTHY);
        assert_eq!(status(RunEnd { failed: 1, ..end() }), UNHEALTHY);
        assert_eq!(
            status(RunEnd {
                failed: 1,
                read_failed: true,
                ..end()
            }),
            USAGE
        );
        let deadline = Some(StopReason::Deadline(Duration::from_secs(1)));
        assert_eq!(
            status(RunEnd {
                failed: 1,
                deadline_skipped: 2,
                stop: deadline,
                ..end()
            }),
            DEADLINE
        );
        assert_eq!(
            status(RunEnd {
                stop: deadline,
                ..end()
            }),
            HEALTHY
        );
        let interrupted = Some(StopReason::Signal(Signal::Terminate));
        assert_eq!(
            status(RunEnd {
                deadline_skipped: 2,
                stop: interrupted,
                ..end()
            }),
            143
        );
    }
}
