//! Worker threads (`--threads`): each has a runtime of its own and checks the hosts that
//! hash to it, so TLS handshakes use every core while no thread wakes another for a probe.
//!
//! The main runtime keeps the signals, the deadline and the input, routes each entry to
//! its host's worker, and is the first worker itself. One host's connections and
//! `--per-host` limit live on one worker; the `-c` slots, `--rate` and the register of
//! checks in flight are shared.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;

use anyhow::{anyhow, Context};
use tokio::sync::{mpsc, oneshot};

use crate::input::Item;
use crate::outcome::TargetResult;
use crate::progress::Progress;
use crate::schedule::{self, Engine, InputEnd};
use crate::shard::fnv1a_64;
use crate::stop::Stop;

/// Entries queued for one worker: enough to keep it busy between the router's turns.
const WORKER_QUEUE: usize = 256;

/// The checking of a whole input, on one or more workers: ends as [`schedule::run`] does.
pub(crate) type Schedule = Pin<Box<dyn Future<Output = InputEnd>>>;

/// Starts checking every entry of `entries`, one result per entry to `results`, with one
/// engine per worker: the first on the caller's runtime, each other on a thread of its own.
pub(crate) fn start(
    mut engines: Vec<Arc<Engine>>,
    entries: mpsc::Receiver<Item>,
    stop: Stop,
    progress: Progress,
    results: mpsc::Sender<TargetResult>,
) -> anyhow::Result<Schedule> {
    if engines.len() == 1 {
        let engine = engines.remove(0);
        return Ok(Box::pin(schedule::run(
            engine, entries, stop, progress, results,
        )));
    }
    let mut queues = Vec::with_capacity(engines.len());
    let mut ends = Vec::with_capacity(engines.len());
    let first = engines.remove(0);
    let (first_queue, first_queued) = mpsc::channel(WORKER_QUEUE);
    queues.push(first_queue);
    for (index, engine) in engines.into_iter().enumerate() {
        let (queue, queued) = mpsc::channel(WORKER_QUEUE);
        let (end, ended) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a worker's async runtime")?;
        let (stop, progress, results) = (stop.clone(), progress.clone(), results.clone());
        thread::Builder::new()
            .name(format!("upcheck-worker-{}", index + 1))
            .spawn(move || {
                // Held until the end is sent: the report must not end (its last sender
                // gone) before the main thread can know how this worker's input ended.
                let report_open = results.clone();
                let input_end = runtime.block_on(schedule::run_to_completion(
                    engine, queued, stop, progress, results,
                ));
                // The main thread may have ended the run already; then nobody needs to know.
                let _ = end.send(input_end);
                drop(report_open);
                // Nothing is left on it: every probe it started has sent its result.
                runtime.shutdown_background();
            })
            .context("cannot start a worker thread")?;
        queues.push(queue);
        ends.push(ended);
    }
    Ok(Box::pin(async move {
        let first_worker = schedule::run(
            first,
            first_queued,
            stop.clone(),
            progress.clone(),
            results.clone(),
        );
        let routed = route(entries, queues, stop, progress, results);
        let (mut input_end, first_end) = tokio::join!(routed, first_worker);
        merge(&mut input_end, first_end);
        for ended in ends {
            match ended.await {
                Ok(worker_end) => merge(&mut input_end, worker_end),
                Err(_) => {
                    let lost = anyhow!("a worker thread stopped before its targets were checked");
                    input_end.error = input_end.error.or(Some(lost));
                }
            }
        }
        input_end
    }))
}

/// Adds how one worker's input ended to how the whole input did.
fn merge(input_end: &mut InputEnd, worker_end: InputEnd) {
    input_end.left_unread |= worker_end.left_unread;
    input_end.error = input_end.error.take().or(worker_end.error);
}

/// Sends each entry to its host's worker until the input ends or the run is stopped; after
/// a stop, the workers' queues close and the rest of the input is settled here, once.
async fn route(
    mut entries: mpsc::Receiver<Item>,
    queues: Vec<mpsc::Sender<Item>>,
    mut stop: Stop,
    progress: Progress,
    results: mpsc::Sender<TargetResult>,
) -> InputEnd {
    let mut last_read = None;
    loop {
        let item = tokio::select! {
            biased;
            _ = stop.stopped() => {
                drop(queues);
                return schedule::settle_unread(entries, last_read, stop, progress, results).await;
            }
            item = entries.recv() => item,
        };
        let entry = match item {
            None => return InputEnd::default(),
            Some(Err(err)) => {
                return InputEnd {
                    error: Some(err),
                    left_unread: false,
                }
            }
            Some(Ok(entry)) => entry,
        };
        last_read = Some(entry.origin.clone());
        // A line that is not a target has no host; any worker can report it.
        let worker = entry
            .target
            .as_ref()
            .map_or(0, |target| worker_for(&target.host_key(), queues.len()));
        // A worker stops taking entries only once the report has ended: nothing to do then.
        let _ = queues[worker].send(Ok(entry)).await;
    }
}

/// Which of `workers` checks `host`: the same one for the whole run.
fn worker_for(host: &str, workers: usize) -> usize {
    let workers = u64::try_from(workers).unwrap_or(u64::MAX);
    usize::try_from(fnv1a_64(&[host.as_bytes()]) % workers).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_host_always_goes_to_one_worker() {
        let worker = worker_for("example.com:443", 4);
        assert!(worker < 4);
        assert_eq!(worker_for("example.com:443", 4), worker);
        let spread: std::collections::HashSet<_> = (0..64)
            .map(|n| worker_for(&format!("10.0.0.{n}:80"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
