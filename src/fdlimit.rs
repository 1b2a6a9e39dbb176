//! Open files: raise the soft limit toward the hard one, and fit the concurrency to it.

/// Descriptors kept for everything but probes: stdio, the runtime, input files, DNS.
const RESERVED_FDS: u64 = 64;

/// Descriptors counted per probe: its socket, and the idle pooled connection it may leave.
const FDS_PER_PROBE: u64 = 2;

/// Highest soft limit asked for, whatever the hard limit: Linux refuses more than its
/// `nr_open` (1,048,576 by default) and an unlimited hard limit is not a number to set.
const MAX_SOFT_LIMIT: u64 = 1 << 20;

/// Raises the soft open-file limit as far as allowed and returns the concurrency that fits
/// in it, with a warning when that is less than `wanted`.
pub(crate) fn fit_concurrency(wanted: usize) -> (usize, Option<String>) {
    let Some(limit) = raise_soft_limit() else {
        return (wanted, None);
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FDS) / FDS_PER_PROBE)
        .unwrap_or(usize::MAX)
        .max(1);
    if fits >= wanted {
        return (wanted, None);
    }
    let warning = format!(
        "warning: the open-file limit is {limit}, so {fits} probes run at once instead of \
         {wanted} (raise it with 'ulimit -n')"
    );
    (fits, Some(warning))
}

/// Sets the soft limit to the hard limit; returns the soft limit now in force.
fn raise_soft_limit() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let target = limit.rlim_max.min(MAX_SOFT_LIMIT);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given; failure leaves the limit as is.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    Some(limit.rlim_cur)
}
