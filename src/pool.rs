//! The worker pool: one feeder thread, N workers, one consumer (the calling thread).
//!
//! ```text
//! feed (walker) ──bounded(2×N) jobs──▶ N workers ──unbounded results──▶ consume (caller)
//! ```
//!
//! The job channel is bounded so the walker cannot list a million paths ahead of the decoders;
//! the results channel is unbounded so a worker never blocks on a slow consumer. All threads are
//! scoped: when [`run`] returns, every thread has been joined. The pool knows nothing about
//! images; it is generic over the job, the per-worker state and the result, so its shutdown and
//! panic behaviour is unit-tested below with fake jobs.

use std::any::Any;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{bounded, unbounded, Sender};

/// The feeder's handle: submits jobs to workers and reports results that need no worker.
pub struct Feeder<'a, J, R> {
    jobs: Sender<J>,
    results: Sender<R>,
    cancel: &'a AtomicBool,
}

impl<J, R> Feeder<'_, J, R> {
    /// Queues a job, blocking while the queue is full. Returns false when the run is cancelled or
    /// every worker is gone; the feeder should then stop.
    pub fn submit(&self, job: J) -> bool {
        !self.cancelled() && self.jobs.send(job).is_ok()
    }

    /// Sends a result straight to the consumer (e.g. a file the walker could not read).
    pub fn report(&self, result: R) {
        // The consumer outlives the feeder inside the scope; a send error cannot happen.
        let _ = self.results.send(result);
    }

    /// Returns true if and only if cancellation was requested.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Turns a panic payload into its message.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `feed` on its own thread and `work` on `workers` threads, passing every result to
/// `consume` on the calling thread as it arrives, and returns once all threads are joined.
///
/// * `init` makes each worker's state (codec handles, scratch buffers), once per thread, and
///   again after a panic, since state left mid-job cannot be trusted.
/// * A panic inside `work` is caught and turned into a result by `on_panic`; the worker goes
///   on with the next job, so the pool keeps its full strength.
/// * Once `cancel` is set, the feeder's `submit` refuses new jobs and workers stop taking
///   queued ones; jobs already in hand finish.
#[allow(clippy::too_many_arguments)]
pub fn run<J, R, S>(
    workers: NonZeroUsize,
    cancel: &AtomicBool,
    feed: impl FnOnce(&Feeder<'_, J, R>) + Send,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&J, &mut S) -> R + Sync,
    on_panic: impl Fn(&J, String) -> R + Sync,
    mut consume: impl FnMut(R),
) where
    J: Send,
    R: Send,
{
    let (job_tx, job_rx) = bounded::<J>(2 * workers.get());
    let (res_tx, res_rx) = unbounded::<R>();
    thread::scope(|scope| {
        let feeder = Feeder {
            jobs: job_tx,
            results: res_tx.clone(),
            cancel,
        };
        let walker = thread::Builder::new()
            .name("presize-walker".into())
            .spawn_scoped(scope, move || feed(&feeder))
            .expect("cannot spawn the walker thread");
        for i in 0..workers.get() {
            let (jobs, results) = (job_rx.clone(), res_tx.clone());
            let (init, work, on_panic) = (&init, &work, &on_panic);
            thread::Builder::new()
                .name(format!("presize-worker-{i}"))
                .spawn_scoped(scope, move || {
                    let mut state = init();
                    for job in jobs {
                        if cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let r = match panic::catch_unwind(AssertUnwindSafe(|| {
                            work(&job, &mut state)
                        })) {
                            Ok(r) => r,
                            Err(payload) => {
                                state = init();
                                on_panic(&job, panic_message(payload.as_ref()))
                            }
                        };
                        if results.send(r).is_err() {
                            break;
                        }
                    }
                })
                .expect("cannot spawn a worker thread");
        }
        // Only the threads hold senders now, so the loop below ends when they all finish.
        drop(res_tx);
        drop(job_rx);
        for r in res_rx {
            consume(r);
        }
        // Re-raise a walker panic with its own message rather than the scope's generic one.
        if let Err(payload) = walker.join() {
            panic::resume_unwind(payload);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn n(v: usize) -> NonZeroUsize {
        NonZeroUsize::new(v).unwrap()
    }

    #[test]
    fn every_job_yields_exactly_one_result() {
        for workers in [1, 2, 8] {
            let cancel = AtomicBool::new(false);
            let mut seen = Vec::new();
            run(
                n(workers),
                &cancel,
                |f| {
                    for i in 0..1000u32 {
                        assert!(f.submit(i));
                    }
                },
                || (),
                |j, ()| j * 2,
                |_, _| u32::MAX,
                |r| seen.push(r),
            );
            seen.sort_unstable();
            assert_eq!(
                seen,
                (0..1000).map(|i| i * 2).collect::<Vec<_>>(),
                "workers={workers}"
            );
        }
    }

    #[test]
    fn a_panicking_job_becomes_a_result_and_the_worker_carries_on() {
        let cancel = AtomicBool::new(false);
        let inits = AtomicUsize::new(0);
        let mut results = Vec::new();
        run(
            n(2),
            &cancel,
            |f| {
                for i in 0..100u32 {
                    f.submit(i);
                }
            },
            || inits.fetch_add(1, Ordering::SeqCst),
            |&j, _| {
                assert!(j % 10 != 3, "job {j} exploded");
                Ok(j)
            },
            |&j, msg| Err((j, msg)),
            |r| results.push(r),
        );
        assert_eq!(results.len(), 100, "no job lost, no hang");
        let mut failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        failed.sort();
        assert_eq!(failed.len(), 10);
        assert_eq!(failed[0], &(3, "job 3 exploded".to_string()));
        // Two initial states plus one fresh state per panic.
        assert_eq!(inits.load(Ordering::SeqCst), 2 + 10);
    }

    #[test]
    fn cancellation_stops_the_feeder_and_the_workers() {
        let cancel = AtomicBool::new(false);
        let submitted = AtomicUsize::new(0);
        let mut done = 0;
        run(
            n(2),
            &cancel,
            |f| {
                for i in 0..1_000_000u32 {
                    if !f.submit(i) {
                        break;
                    }
                    submitted.fetch_add(1, Ordering::SeqCst);
                }
            },
            || (),
            |&j, ()| {
                if j == 50 {
                    cancel.store(true, Ordering::SeqCst);
                }
            },
            |_, _| (),
            |()| done += 1,
        );
        assert!(
            submitted.load(Ordering::SeqCst) < 1000,
            "the feeder stopped early"
        );
        assert!(done < 1000);
    }

    #[test]
    fn feeder_reports_reach_the_consumer() {
        let cancel = AtomicBool::new(false);
        let mut seen = Vec::new();
        run(
            n(1),
            &cancel,
            |f: &Feeder<'_, u8, u8>| f.report(7),
            || (),
            |&j, ()| j,
            |_, _| 0,
            |r| seen.push(r),
        );
        assert_eq!(seen, vec![7]);
    }

    #[test]
    #[should_panic(expected = "walker bug")]
    fn a_panicking_feeder_propagates_instead_of_hanging() {
        let cancel = AtomicBool::new(false);
        run(
            n(2),
            &cancel,
            |f: &Feeder<'_, u32, u32>| {
                f.submit(1);
                panic!("walker bug");
            },
            || (),
            |&j, ()| j,
            |_, _| 0,
            |_| (),
        );
    }
}
