//! The scheduler: feeds targets to probes within the concurrency limits, and gives every
//! target exactly one result however the run ends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::inflight::InFlight;
use crate::input::{Entry, Item};
use crate::outcome::{ErrorKind, Failure, TargetResult, Verdict};
use crate::probe::{Prober, Reuse, TargetSettings};
use crate::progress::Progress;
use crate::rate::Pacer;
use crate::retry::{self, AttemptLog, RetryPolicy};
use crate::shard::fnv1a_64;
use crate::stop::{Stop, StopReason};
use crate::target::{Labels, Origin, Target, TargetKind};
use crate::values::human_duration;

/// How long the rest of the input may stall after a stop before reading gives up: a file
/// never stalls, but a pipe whose writer stays open would otherwise hold the run forever.
const SETTLE_STALL: Duration = Duration::from_millis(500);

/// How long the rest of the input is read after a stop at most: an endless pipe (`yes`)
/// never stalls, and the run must still end.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// How reading the input ended.
#[derive(Debug, Default)]
pub(crate) struct InputEnd {
    /// The error that stopped reading, if one did.
    pub(crate) error: Option<anyhow::Error>,
    /// Whether the run stopped with lines of the input never read (and so without a result).
    pub(crate) left_unread: bool,
}

/// Entries taken from what has been read already before any of them starts, so that a
/// host named again a few lines on keeps its connection from the first probe on.
const LOOK_AHEAD: usize = 64;

/// Targets parked behind busy hosts while the reader looks ahead for other hosts: enough
/// to keep every slot busy on a list sorted by host, few enough that memory stays flat.
const MAX_PARKED: usize = 4096;

/// Targets read lately whose hosts are remembered: a host among them is expected again,
/// so its connections are kept. At full speed (about 16,000 checks/s) this is about the
/// pool's idle timeout, after which a kept connection would be gone anyway.
const RECENT_READS: usize = 4096;

/// The two bounds on probes in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Over all hosts.
    pub(crate) concurrency: usize,
    /// To one host:port.
    pub(crate) per_host: usize,
}

/// Everything a probe task needs, shared by all of them.
pub(crate) struct Engine {
    /// Makes the attempts.
    pub(crate) prober: Prober,
    /// Retries and deadline.
    pub(crate) policy: RetryPolicy,
    /// The run's `-c` slots, shared by every worker's engine: a probe holds one while it runs.
    pub(crate) slots: Arc<Semaphore>,
    /// Probes in flight at once to one host:port (one host is always checked by one engine).
    pub(crate) per_host: usize,
    /// Healthy results slower than this are marked slow.
    pub(crate) slow: Option<Duration>,
    /// Paces request starts (`--rate`), shared by every worker thread.
    pub(crate) pacer: Arc<Pacer>,
    /// The targets being checked, for SIGUSR1 and the progress bar.
    pub(crate) in_flight: InFlight,
}

/// Checks every entry from `entries`, sending one result per entry to `results`.
///
/// Returns when the input is exhausted (or unreadable, or left unread after a stop: the
/// [`InputEnd`] says) and every target has started; probes still in flight then finish on
/// their own, and `results` closes when the last one has reported.
pub(crate) async fn run(
    engine: Arc<Engine>,
    entries: mpsc::Receiver<Item>,
    stop: Stop,
    progress: Progress,
    results: mpsc::Sender<TargetResult>,
) -> InputEnd {
    dispatch(engine, entries, stop, progress, results).await.0
}

/// Like [`run`], but returns only once every probe it started has sent its result: for a
/// worker thread, whose runtime (and the probes on it) ends when this returns.
pub(crate) async fn run_to_completion(
    engine: Arc<Engine>,
    entries: mpsc::Receiver<Item>,
    stop: Stop,
    progress: Progress,
    results: mpsc::Sender<TargetResult>,
) -> InputEnd {
    let (input_end, mut in_flight) = dispatch(engine, entries, stop, progress, results).await;
    in_flight.landed().await;
    input_end
}

/// The probes a dispatcher started that have not finished yet.
struct Flying {
    count: usize,
    finished: mpsc::UnboundedReceiver<Finished>,
}

/// A probe's host and the `-c` slot it held, once it has sent its result.
type Finished = (String, OwnedSemaphorePermit);

impl Flying {
    /// Waits until every one of them has finished (and so sent its result).
    async fn landed(&mut self) {
        while self.count > 0 && self.finished.recv().await.is_some() {
            self.count -= 1;
        }
    }
}

/// [`run`]'s work, returning the probes still in flight too.
async fn dispatch(
    engine: Arc<Engine>,
    mut entries: mpsc::Receiver<Item>,
    mut stop: Stop,
    progress: Progress,
    results: mpsc::Sender<TargetResult>,
) -> (InputEnd, Flying) {
    let (done, mut finished) = mpsc::unbounded_channel();
    let mut dispatcher = Dispatcher {
        engine,
        stop: stop.clone(),
        results: results.clone(),
        done,
        hosts: HashMap::new(),
        recent: RecentHosts::default(),
        ready: VecDeque::new(),
        in_flight: 0,
        parked: 0,
    };
    let slots = dispatcher.engine.slots.clone();
    let (mut reading, mut read_error, mut last_read) = (true, None, None);
    let input_end = 'dispatching: loop {
        if !(reading || dispatcher.is_holding()) {
            break InputEnd {
                error: read_error,
                left_unread: false,
            };
        }
        let may_read = reading && dispatcher.may_read();
        tokio::select! {
            biased;
            reason = stop.stopped() => {
                if !dispatcher.release_held(reason).await {
                    break InputEnd::default();
                }
                break match read_error {
                    Some(err) => InputEnd { error: Some(err), left_unread: false },
                    None if reading => {
                        settle_unread(entries, last_read, stop, progress, results).await
                    }
                    None => InputEnd::default(),
                };
            }
            Some((host, slot)) = finished.recv() => dispatcher.finished(&host, slot),
            // The semaphore is never closed. Another worker's probe gave its slot back.
            Ok(slot) = slots.clone().acquire_owned(), if !dispatcher.ready.is_empty() => {
                dispatcher.launch_ready(Some(slot));
            }
            item = entries.recv(), if may_read => {
                // Whatever has been read already is taken too before anything starts, so
                // each probe knows whether its host comes again (see `Reuse`).
                let mut next = item;
                loop {
                    match next {
                        None => reading = false,
                        Some(Err(err)) => (reading, read_error) = (false, Some(err)),
                        Some(Ok(entry)) => {
                            last_read = Some(entry.origin.clone());
                            if !dispatcher.take(entry).await {
                                break 'dispatching InputEnd::default();
                            }
                        }
                    }
                    if !(reading && dispatcher.may_read()) {
                        break;
                    }
                    match entries.try_recv() {
                        Ok(item) => next = Some(item),
                        Err(TryRecvError::Disconnected) => next = None,
                        Err(TryRecvError::Empty) => break,
                    }
                }
                dispatcher.launch_ready(None);
            }
        }
    };
    let flying = Flying {
        count: dispatcher.in_flight,
        finished,
    };
    (input_end, flying)
}

/// A target ready to probe, with what its result needs.
struct Pending {
    origin: Origin,
    text: String,
    target: Target,
    labels: Labels,
    settings: Arc<TargetSettings>,
}

impl Pending {
    /// What its result needs, for a target that will not be probed after all.
    fn unprobed(self) -> Unprobed {
        Unprobed {
            origin: self.origin,
            text: self.text,
            kind: Some(self.target.kind()),
            labels: self.labels,
        }
    }
}

/// One host:port's probes in flight or ready to start, and the targets parked until one
/// of them finishes.
#[derive(Default)]
struct HostQueue {
    running: usize,
    parked: VecDeque<Pending>,
}

/// Starts probes within both limits. A target whose host is busy is parked behind that
/// host, and the reader goes on to targets of other hosts, so a list sorted by host keeps
/// every `-c` slot busy; live tasks never outnumber `-c`, and parked targets are bounded.
struct Dispatcher {
    engine: Arc<Engine>,
    stop: Stop,
    results: mpsc::Sender<TargetResult>,
    done: mpsc::UnboundedSender<Finished>,
    hosts: HashMap<String, HostQueue>,
    /// The hosts of the targets read lately, to tell which connections are worth keeping.
    recent: RecentHosts,
    /// Targets whose host has room, waiting for a `-c` slot.
    ready: VecDeque<Pending>,
    in_flight: usize,
    parked: usize,
}

impl Dispatcher {
    /// Whether another entry may be read: the targets waiting for a `-c` slot (the look
    /// ahead) and those parked are within their bounds.
    fn may_read(&self) -> bool {
        self.ready.len() < LOOK_AHEAD && self.parked < MAX_PARKED
    }

    /// Whether targets read are still waiting to start.
    fn is_holding(&self) -> bool {
        self.parked > 0 || !self.ready.is_empty()
    }

    /// Takes an entry read: a target becomes ready if its host has a free slot, else is
    /// parked behind that host; a line that is not a target gets its result. False when
    /// the report has ended.
    async fn take(&mut self, entry: Entry) -> bool {
        let Entry {
            origin,
            text,
            target,
            labels,
            settings,
        } = entry;
        let target = match target {
            Ok(target) => target,
            Err(invalid) => {
                let unprobed = Unprobed {
                    origin,
                    text,
                    kind: None,
                    labels,
                };
                return unprobed.send(&self.results, invalid_failure(invalid)).await;
            }
        };
        let host = target.host_key();
        self.recent.note(&host);
        let pending = Pending {
            origin,
            text,
            target,
            labels,
            settings,
        };
        let queue = self.hosts.entry(host).or_default();
        if queue.running < self.engine.per_host {
            queue.running += 1;
            self.ready.push_back(pending);
        } else {
            queue.parked.push_back(pending);
            self.parked += 1;
        }
        true
    }

    /// A probe to `host` has finished: its host slot goes to the next target parked behind
    /// that host, or is given back; its `-c` slot goes to the first ready target here,
    /// without waking another worker, or back to the run.
    fn finished(&mut self, host: &str, slot: OwnedSemaphorePermit) {
        self.in_flight -= 1;
        if let Some(queue) = self.hosts.get_mut(host) {
            if let Some(next) = queue.parked.pop_front() {
                self.parked -= 1;
                self.ready.push_back(next);
            } else {
                queue.running -= 1;
                if queue.running == 0 {
                    self.hosts.remove(host);
                }
            }
        }
        self.launch_ready(Some(slot));
    }

    /// Starts ready targets, the first with `slot` if one is given, the rest while `-c`
    /// slots are free; a slot no target needs goes back to the run.
    fn launch_ready(&mut self, mut slot: Option<OwnedSemaphorePermit>) {
        // Nothing starts past the deadline, even before its stop has been seen: setting up
        // many workers can take longer than a short -d, and the stop comes on its next turn.
        if self.engine.policy.past_deadline() {
            return;
        }
        while !self.ready.is_empty() {
            let free = || self.engine.slots.clone().try_acquire_owned().ok();
            let Some(held) = slot.take().or_else(free) else {
                return;
            };
            if let Some(pending) = self.ready.pop_front() {
                self.launch(pending, held);
            }
        }
    }

    /// Starts probing `pending`, which holds `slot` until its result is sent.
    fn launch(&mut self, pending: Pending, slot: OwnedSemaphorePermit) {
        self.in_flight += 1;
        let host = pending.target.host_key();
        let reuse = self.reuse(&host);
        let task = Task {
            engine: self.engine.clone(),
            pending,
            reuse,
            stop: self.stop.clone(),
            results: self.results.clone(),
        };
        let done = self.done.clone();
        tokio::spawn(async move {
            task.run().await;
            // The dispatcher may be gone when the run is ending; the slot goes back then.
            let _ = done.send((host, slot));
        });
    }

    /// Whether the connection of a target of `host` is kept: only when the host comes more
    /// than once among the entries taken lately. A host whose next line has not been read
    /// yet loses one connection; keeping every such connection instead left hundreds idle
    /// on lists of distinct names, whenever probing caught up with reading.
    fn reuse(&self, host: &str) -> Reuse {
        if self.recent.count(host) > 1 {
            Reuse::Keep
        } else {
            Reuse::Close
        }
    }

    /// After a stop, gives every target that has not started the stop's failure; false
    /// when the report has ended.
    async fn release_held(&mut self, reason: StopReason) -> bool {
        let parked = self
            .hosts
            .values_mut()
            .flat_map(|queue| queue.parked.drain(..));
        for pending in self.ready.drain(..).chain(parked) {
            if !pending
                .unprobed()
                .send(&self.results, reason.failure())
                .await
            {
                return false;
            }
        }
        self.parked = 0;
        true
    }
}

/// The hosts of the last [`RECENT_READS`] targets read, as fingerprints with their counts:
/// memory that does not grow with the list.
#[derive(Default)]
struct RecentHosts {
    order: VecDeque<u64>,
    counts: HashMap<u64, u32>,
}

impl RecentHosts {
    /// Notes a target of `host` read, forgetting the oldest read beyond the window.
    fn note(&mut self, host: &str) {
        let print = fingerprint(host);
        self.order.push_back(print);
        *self.counts.entry(print).or_default() += 1;
        if self.order.len() > RECENT_READS {
            if let Some(oldest) = self.order.pop_front() {
                if let Some(count) = self.counts.get_mut(&oldest) {
                    *count -= 1;
                    if *count == 0 {
                        self.counts.remove(&oldest);
                    }
                }
            }
        }
    }

    /// How many of the targets read lately are of `host`.
    fn count(&self, host: &str) -> u32 {
        self.counts.get(&fingerprint(host)).copied().unwrap_or(0)
    }
}

/// A host's fingerprint: 64 bits make two hosts of one window alike in practice never.
fn fingerprint(host: &str) -> u64 {
    fnv1a_64(&[host.as_bytes()])
}

/// After a stop, reads the rest of the input without probing so every line gets its result,
/// for as long as lines keep coming and at most [`SETTLE_LIMIT`]; `last_read` is where the
/// input had been read up to.
pub(crate) async fn settle_unread(
    mut entries: mpsc::Receiver<Item>,
    mut last_read: Option<Origin>,
    stop: Stop,
    progress: Progress,
    results: mpsc::Sender<TargetResult>,
) -> InputEnd {
    let Some(reason) = stop.reason() else {
        return InputEnd::default();
    };
    let give_up_at = tokio::time::Instant::now() + SETTLE_LIMIT;
    loop {
        let stall_ends = tokio::time::Instant::now() + SETTLE_STALL;
        let Ok(item) = tokio::time::timeout_at(stall_ends.min(give_up_at), entries.recv()).await
        else {
            let why = if stall_ends < give_up_at {
                format!("nothing arrived for {}", human_duration(SETTLE_STALL))
            } else {
                format!("it was still coming {} later", human_duration(SETTLE_LIMIT))
            };
            progress.suspend(|| {
                eprintln!(
                    "upcheck: stopped reading input after the run was stopped ({why}): {}; \
                     later lines have no result",
                    read_up_to(last_read.as_ref())
                )
            });
            return InputEnd {
                error: None,
                left_unread: true,
            };
        };
        let entry: Entry = match item {
            None => return InputEnd::default(),
            Some(Ok(entry)) => entry,
            Some(Err(err)) => {
                return InputEnd {
                    error: Some(err),
                    left_unread: false,
                }
            }
        };
        last_read = Some(entry.origin.clone());
        let (kind, failure) = match entry.target {
            Ok(target) => (Some(target.kind()), reason.failure()),
            Err(invalid) => (None, invalid_failure(invalid)),
        };
        let unprobed = Unprobed {
            origin: entry.origin,
            text: entry.text,
            kind,
            labels: entry.labels,
        };
        if !unprobed.send(&results, failure).await {
            return InputEnd::default();
        }
    }
}

/// Where the input had been read up to, for the note on stderr.
fn read_up_to(last_read: Option<&Origin>) -> String {
    match last_read {
        None => "no line of it was read".to_owned(),
        Some(Origin {
            source,
            line: Some(line),
            ..
        }) => format!("it was read up to line {line} of '{source}'"),
        Some(Origin { source, .. }) => format!("it was read up to the targets of '{source}'"),
    }
}

/// The failure of a line that is not a target.
fn invalid_failure(reason: String) -> Failure {
    Failure::new(ErrorKind::Invalid, reason)
}

/// An entry that gets a result without being probed: an invalid line, or a target the
/// run's stop left unchecked.
struct Unprobed {
    origin: Origin,
    text: String,
    kind: Option<TargetKind>,
    labels: Labels,
}

impl Unprobed {
    /// Sends its result, failed with `failure`; false when the report has ended.
    async fn send(self, results: &mpsc::Sender<TargetResult>, failure: Failure) -> bool {
        let result = TargetResult::new(
            self.origin,
            self.text,
            self.kind,
            self.labels,
            Verdict::unattempted(failure),
        );
        results.send(result).await.is_ok()
    }
}

/// One target on its way to a result.
struct Task {
    engine: Arc<Engine>,
    pending: Pending,
    reuse: Reuse,
    stop: Stop,
    results: mpsc::Sender<TargetResult>,
}

impl Task {
    async fn run(mut self) {
        let Pending {
            origin,
            text,
            target,
            labels,
            settings,
            ..
        } = self.pending;
        let engine = &self.engine;
        let mut log = AttemptLog {
            ticket: Some(engine.in_flight.enter(&text)),
            ..AttemptLog::default()
        };
        let probed = retry::until_final(
            &engine.prober,
            &engine.pacer,
            &target,
            &settings,
            self.reuse,
            engine.policy,
            &mut log,
        );
        let checked = tokio::select! {
            biased;
            reason = self.stop.stopped() => Err(reason),
            verdict = probed => Ok(verdict),
        };
        log.ticket = None;
        let mut verdict = checked.unwrap_or_else(|reason| log.cut_short(reason.failure()));
        verdict.slow = is_slow(&verdict, engine.slow);
        let result = TargetResult::new(origin, text, Some(target.kind()), labels, verdict);
        // The report may have ended (a closed stdout); then nobody needs this result.
        let _ = self.results.send(result).await;
    }
}

/// Whether a verdict is healthy but slower than `threshold`.
fn is_slow(verdict: &Verdict, threshold: Option<Duration>) -> bool {
    match (threshold, verdict.latency) {
        (Some(threshold), Some(latency)) => verdict.failure.is_none() && latency > threshold,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_remembered_for_the_window_of_recent_reads() {
        let mut recent = RecentHosts::default();
        recent.note("once:80");
        recent.note("again:80");
        recent.note("again:80");
        assert_eq!((recent.count("once:80"), recent.count("again:80")), (1, 2));
        assert_eq!(recent.count("never:80"), 0);
        for n in 0..RECENT_READS - 1 {
            recent.note(&format!("other{n}:80"));
        }
        // "once" was read RECENT_READS + 2 reads ago, the second "again" just inside.
        assert_eq!((recent.count("once:80"), recent.count("again:80")), (0, 1));
        assert!(recent.order.len() == RECENT_READS && recent.counts.len() <= RECENT_READS);
    }

    #[test]
    fn only_healthy_results_over_the_threshold_are_slow() {
        let verdict = |ms, failure: Option<Failure>| Verdict {
            latency: Some(Duration::from_millis(ms)),
            attempts: 1,
            failure,
            ..Verdict::default()
        };
        let threshold = Some(Duration::from_millis(100));
        assert!(is_slow(&verdict(150, None), threshold));
        assert!(!is_slow(&verdict(100, None), threshold));
        assert!(!is_slow(&verdict(150, None), None));
        let failed = Failure::new(ErrorKind::Status, "500");
        assert!(!is_slow(&verdict(150, Some(failed)), threshold));
    }
}
