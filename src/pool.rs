//! The worker pool: one feeder thread, N workers, one consumer (the calling thread).
//!
//! ```text
//! feed (walker) ──bounded(2×N) jobs──▶ N workers ──unbounded results──▶ consume (caller)
//!                                        ▲
//!                          watchdog (only with a per-job time limit)
//! ```
//!
//! The job channel is bounded so the walker cannot list a million paths ahead of the decoders;
//! the results channel is unbounded so a worker never blocks on a slow consumer. The pool knows
//! nothing about images; it is generic over the job, the per-worker state and the result, so its
//! shutdown, panic and time-limit behaviour is unit-tested below with fake jobs.
//!
//! Why workers are not scoped threads: a decoder stuck inside C code cannot be interrupted, so
//! the only way to bound a job's time is to stop waiting for it. With a job time limit, a
//! watchdog reports the overdue job as timed out, marks its worker abandoned (whatever the
//! worker produces later is thrown away, and [`JobHandle::is_abandoned`] tells the job itself not to write
//! anything) and starts a replacement worker so the pool keeps its strength. [`run`] returns
//! once the feeder and every live worker are joined; an abandoned thread is left to finish or to
//! die with the process. Hence the `'static` bounds on the worker side.
//!
//! Spare cores: once the feeder has submitted its last job, any worker without a job will get
//! none, and its core is free for the rest of the run. The jobs still running can
//! [`JobHandle::borrow_spare`] those cores to work inside one image (several outputs at once, a split
//! resize, the restart segments of a JPEG), so a folder with fewer images than workers still
//! uses every core. The count is `workers − unfinished jobs − cores already lent`, so it is
//! right the moment the feeder ends, without waiting for idle workers to wake and leave; while
//! the feeder is still walking it is zero, so a job never competes with images still to come.

use std::any::Any;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};

/// The feeder's handle: submits jobs to workers and reports results that need no worker.
pub(crate) struct Feeder<'a, J, R> {
    jobs: Sender<J>,
    results: Sender<Msg<R>>,
    cancel: &'a AtomicBool,
    not_submitted: &'a AtomicU64,
    cores: &'a Cores,
}

impl<J, R> Feeder<'_, J, R> {
    /// Queues a job, blocking while the queue is full. Returns false when the run is cancelled or
    /// every worker is gone; the feeder should then stop (the job counts as not processed).
    pub(crate) fn submit(&self, job: J) -> bool {
        // Counted before it is queued, so a worker never finishes a job not yet counted.
        self.cores.unfinished.fetch_add(1, Ordering::AcqRel);
        if !self.cancelled() && self.jobs.send(job).is_ok() {
            true
        } else {
            self.cores.unfinished.fetch_sub(1, Ordering::AcqRel);
            self.not_submitted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Sends a result straight to the consumer (e.g. a file the walker could not read).
    pub(crate) fn report(&self, result: R) {
        // The consumer keeps its receiver until the feeder is joined; a send cannot fail.
        let _ = self.results.send(Msg::Result(result));
    }

    /// Records `n` inputs the feeder found but will not submit because the run was cancelled.
    pub(crate) fn not_processed(&self, n: u64) {
        self.not_submitted.fetch_add(n, Ordering::Relaxed);
    }

    /// Returns true if and only if cancellation was requested.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Turns a panic payload into its message.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// A job function shared by every worker thread.
pub(crate) type JobFn<J, S, R> = Box<dyn Fn(&J, &mut S, &JobHandle) -> R + Send + Sync>;
/// Turns a job and what went wrong with it (a panic message, the time limit) into its result.
pub(crate) type FailFn<J, E, R> = Box<dyn Fn(&J, E) -> R + Send + Sync>;

/// What the worker side of the pool does with a job. All of it is shared by every worker thread,
/// including replacements started after a timeout, hence `'static`.
pub(crate) struct Work<J, R, S> {
    /// Makes a worker's state (codec handles, scratch buffers): once per thread, and again after
    /// a panic, since state left mid-job cannot be trusted.
    pub init: Box<dyn Fn() -> S + Send + Sync>,
    /// Does one job.
    pub run: JobFn<J, S, R>,
    /// Turns a panic inside `run` into that job's result; the worker goes on.
    pub on_panic: FailFn<J, String, R>,
    /// Turns an overdue job into its result (only called with a job time limit).
    pub on_timeout: FailFn<J, Duration, R>,
}

/// How the pool is sized and bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Worker threads.
    pub workers: NonZeroUsize,
    /// Longest a single job may run before it is reported as timed out. `None`: no limit.
    pub job_timeout: Option<Duration>,
}

/// What the pool counted, for the summary of an interrupted run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs the feeder found but never got to a worker, plus jobs queued but not started when
    /// the run was cancelled.
    pub not_processed: u64,
    /// Jobs given up on by the watchdog.
    pub timed_out: u64,
}

enum Msg<R> {
    Result(R),
    /// A live worker has finished and will send nothing more.
    WorkerExit,
}

/// A worker's current job, visible to the watchdog.
enum Slot<J> {
    Idle,
    Busy {
        /// When its clock started; `None` while paused (waiting for memory).
        since: Option<Instant>,
        job: J,
    },
    /// The watchdog gave up on this worker's job; the worker must discard its result and exit.
    Abandoned,
}

/// Sets the running job's clock: `Some(now)` to (re)start it, `None` to pause it.
type SetClock = Arc<dyn Fn(Option<Instant>) + Send + Sync>;

/// What the watchdog runs when it gives up on a worker's job (see
/// [`JobHandle::kill_on_abandon`]): at most one at a time per worker.
type AbandonHook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// What a job may ask of the pool, handed to the job function with every job: has the watchdog
/// given up on me, pause my clock while I wait for something that is not my fault, lend me the
/// cores no other job will need. Cheap to clone; threads a job starts take a clone, so they see
/// the same abandoned flag.
#[derive(Clone)]
pub struct JobHandle {
    abandoned: Arc<AtomicBool>,
    clock: Option<SetClock>,
    cores: Option<Arc<Cores>>,
    on_abandon: AbandonHook,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("abandoned", &self.is_abandoned())
            .field("cores", &self.cores)
            .finish_non_exhaustive()
    }
}

impl JobHandle {
    /// A handle for a job run outside a pool (a benchmark, a test, the library called
    /// directly): never abandoned, no clock, no spare cores.
    pub fn detached() -> JobHandle {
        JobHandle {
            abandoned: Arc::new(AtomicBool::new(false)),
            clock: None,
            cores: None,
            on_abandon: AbandonHook::default(),
        }
    }

    /// Runs `work` (a wait on something outside this process, such as a decoder process) so that
    /// the watchdog, if it gives up on the job meanwhile, calls `kill` at once to end the wait:
    /// an abandoned thread then does not linger, nor does what it waits on. `kill` is also called
    /// if the job was abandoned before `work` starts.
    pub fn kill_on_abandon<T>(
        &self,
        kill: impl FnOnce() + Send + 'static,
        work: impl FnOnce() -> T,
    ) -> T {
        *lock(&self.on_abandon) = Some(Box::new(kill));
        // The watchdog sets the flag before it takes the hook: either it finds the hook, or the
        // flag is seen here.
        if self.is_abandoned() {
            if let Some(kill) = lock(&self.on_abandon).take() {
                kill();
            }
        }
        let result = work();
        lock(&self.on_abandon).take();
        result
    }

    /// Returns true if and only if the watchdog gave up on this job: it was already reported
    /// as timed out, so it must not write anything.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Stops the job's time limit while it waits for something that is not its fault (the
    /// memory budget). A no-op without a time limit.
    pub fn pause_clock(&self) {
        if let Some(set) = &self.clock {
            set(None);
        }
    }

    /// Starts the job's time limit afresh, after [`JobHandle::pause_clock`].
    pub fn restart_clock(&self) {
        if let Some(set) = &self.clock {
            set(Some(Instant::now()));
        }
    }

    /// Borrows up to `max` cores that no job will need any more (see the module header).
    /// Returns none outside a pool or while the feeder still runs.
    pub fn borrow_spare(&self, max: usize) -> SpareCores {
        let Some(cores) = &self.cores else {
            return SpareCores::none();
        };
        if !cores.fed.load(Ordering::Acquire) {
            return SpareCores::none();
        }
        let mut lent = cores.lent.load(Ordering::Acquire);
        loop {
            let busy = cores.unfinished.load(Ordering::Acquire) + lent;
            let take = cores.workers.saturating_sub(busy).min(max);
            if take == 0 {
                return SpareCores::none();
            }
            match cores.lent.compare_exchange_weak(
                lent,
                lent + take,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return SpareCores {
                        count: take,
                        from: Some(Arc::clone(cores)),
                    }
                }
                Err(now) => lent = now,
            }
        }
    }
}

/// The pool's core accounting, for [`JobHandle::borrow_spare`] (see the module header).
#[derive(Debug)]
struct Cores {
    /// Worker threads the pool keeps running.
    workers: usize,
    /// Jobs submitted and not yet finished (queued or running).
    unfinished: AtomicUsize,
    /// Cores lent to running jobs.
    lent: AtomicUsize,
    /// The feeder has submitted its last job.
    fed: AtomicBool,
}

/// Cores a job borrowed; they go back when this is dropped.
#[derive(Debug)]
pub struct SpareCores {
    count: usize,
    from: Option<Arc<Cores>>,
}

impl SpareCores {
    /// No extra cores (outside pool workers, or none free).
    pub fn none() -> SpareCores {
        SpareCores {
            count: 0,
            from: None,
        }
    }

    /// How many threads the job may run besides its own.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for SpareCores {
    fn drop(&mut self) {
        if let Some(cores) = &self.from {
            cores.lent.fetch_sub(self.count, Ordering::AcqRel);
        }
    }
}

struct Shared<J, R, S> {
    work: Work<J, R, S>,
    jobs: Receiver<J>,
    results: Sender<Msg<R>>,
    cancel: Arc<AtomicBool>,
    /// Jobs received but dropped unstarted after cancellation.
    dropped: AtomicU64,
    /// What [`JobHandle::borrow_spare`] counts.
    cores: Arc<Cores>,
}

struct WorkerHandle<J> {
    slot: Arc<Mutex<Slot<J>>>,
    abandoned: Arc<AtomicBool>,
    on_abandon: AbandonHook,
    thread: JoinHandle<()>,
}

fn spawn_worker<J, R, S>(shared: &Arc<Shared<J, R, S>>, id: usize) -> WorkerHandle<J>
where
    J: Clone + Send + 'static,
    R: Send + 'static,
    S: 'static,
{
    let slot = Arc::new(Mutex::new(Slot::Idle));
    let abandoned = Arc::new(AtomicBool::new(false));
    let on_abandon = AbandonHook::default();
    let (shared, my_slot, my_flag, my_hook) = (
        Arc::clone(shared),
        Arc::clone(&slot),
        Arc::clone(&abandoned),
        Arc::clone(&on_abandon),
    );
    let thread = thread::Builder::new()
        .name(format!("presize-worker-{id}"))
        .spawn(move || {
            let clock = Arc::clone(&my_slot);
            let handle = JobHandle {
                abandoned: my_flag,
                clock: Some(Arc::new(move |at| {
                    if let Slot::Busy { since, .. } = &mut *lock(&clock) {
                        *since = at;
                    }
                })),
                cores: Some(Arc::clone(&shared.cores)),
                on_abandon: my_hook,
            };
            worker_loop(&shared, &my_slot, &handle);
        })
        .expect("cannot spawn a worker thread");
    WorkerHandle {
        slot,
        abandoned,
        on_abandon,
        thread,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic never happens while a slot is locked; recover rather than cascade if it did.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn worker_loop<J, R, S>(shared: &Shared<J, R, S>, slot: &Mutex<Slot<J>>, handle: &JobHandle)
where
    J: Clone,
{
    let finished = || shared.cores.unfinished.fetch_sub(1, Ordering::AcqRel);
    let work = &shared.work;
    let mut state = (work.init)();
    for job in &shared.jobs {
        if shared.cancel.load(Ordering::Relaxed) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            finished();
            continue; // drain, counting what is left unprocessed
        }
        *lock(slot) = Slot::Busy {
            since: Some(Instant::now()),
            job: job.clone(),
        };
        let r = match panic::catch_unwind(AssertUnwindSafe(|| (work.run)(&job, &mut state, handle)))
        {
            Ok(r) => r,
            Err(payload) => {
                state = (work.init)();
                (work.on_panic)(&job, panic_message(payload.as_ref()))
            }
        };
        finished();
        {
            let mut s = lock(slot);
            if matches!(*s, Slot::Abandoned) {
                // The watchdog already reported this job and started a replacement.
                return;
            }
            *s = Slot::Idle;
        }
        if shared.results.send(Msg::Result(r)).is_err() {
            return;
        }
    }
    let _ = shared.results.send(Msg::WorkerExit);
}

/// The watchdog's round: every worker whose job has run longer than `limit` is marked
/// abandoned and replaced by a new worker (so the pool keeps its strength); returns those jobs.
fn abandon_overdue<J, R, S>(
    shared: &Arc<Shared<J, R, S>>,
    workers: &mut Vec<WorkerHandle<J>>,
    limit: Duration,
) -> Vec<J>
where
    J: Clone + Send + 'static,
    R: Send + 'static,
    S: 'static,
{
    let mut overdue = Vec::new();
    for i in 0..workers.len() {
        let job = {
            let mut slot = lock(&workers[i].slot);
            match &*slot {
                Slot::Busy {
                    since: Some(since), ..
                } if since.elapsed() > limit => {
                    match std::mem::replace(&mut *slot, Slot::Abandoned) {
                        Slot::Busy { job, .. } => Some(job),
                        _ => None,
                    }
                }
                _ => None,
            }
        };
        if let Some(job) = job {
            workers[i].abandoned.store(true, Ordering::SeqCst);
            if let Some(kill) = lock(&workers[i].on_abandon).take() {
                kill();
            }
            let id = workers.len();
            workers.push(spawn_worker(shared, id));
            overdue.push(job);
        }
    }
    overdue
}

/// Runs `feed` on its own thread and `work` on `limits.workers` threads, passing every result to
/// `consume` on the calling thread as it arrives, and returns once the feeder and every live
/// worker are joined.
///
/// * A panic inside a job is caught and turned into a result by `work.on_panic`; the worker goes
///   on with the next job, so the pool keeps its full strength.
/// * With `limits.job_timeout`, a job running longer becomes `work.on_timeout`'s result at once
///   and a replacement worker is started (see the module header).
/// * Once `cancel` is set, the feeder's `submit` refuses new jobs and workers drop queued ones;
///   jobs already in hand finish. [`Stats::not_processed`] counts what was left.
pub(crate) fn run<J, R, S>(
    limits: Limits,
    cancel: &Arc<AtomicBool>,
    feed: impl FnOnce(&Feeder<'_, J, R>) + Send,
    work: Work<J, R, S>,
    mut consume: impl FnMut(R),
) -> Stats
where
    J: Clone + Send + 'static,
    R: Send + 'static,
    S: 'static,
{
    let (job_tx, job_rx) = bounded::<J>(2 * limits.workers.get());
    let (res_tx, res_rx) = unbounded::<Msg<R>>();
    let shared = Arc::new(Shared {
        work,
        jobs: job_rx,
        results: res_tx.clone(),
        cancel: Arc::clone(cancel),
        dropped: AtomicU64::new(0),
        cores: Arc::new(Cores {
            workers: limits.workers.get(),
            unfinished: AtomicUsize::new(0),
            lent: AtomicUsize::new(0),
            fed: AtomicBool::new(false),
        }),
    });
    let not_submitted = AtomicU64::new(0);
    let mut workers: Vec<WorkerHandle<J>> = (0..limits.workers.get())
        .map(|i| spawn_worker(&shared, i))
        .collect();
    let mut live = workers.len();
    let mut stats = Stats::default();
    let tick = Duration::from_millis(20);
    thread::scope(|scope| {
        let feeder = Feeder {
            jobs: job_tx,
            results: res_tx,
            cancel,
            not_submitted: &not_submitted,
            cores: &shared.cores,
        };
        let walker = thread::Builder::new()
            .name("presize-walker".into())
            .spawn_scoped(scope, move || {
                feed(&feeder);
                // Every job is counted in `unfinished`: what is not busy now stays free.
                feeder.cores.fed.store(true, Ordering::Release);
            })
            .expect("cannot spawn the walker thread");
        // Workers exit only after the feeder has dropped its job sender, which it does after its
        // last report: once no live worker is left, everything has been sent.
        while live > 0 {
            let msg = match limits.job_timeout {
                None => res_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(_) => res_rx.recv_timeout(tick),
            };
            match msg {
                Ok(Msg::Result(r)) => consume(r),
                Ok(Msg::WorkerExit) => live -= 1,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(limit) = limits.job_timeout {
                for job in abandon_overdue(&shared, &mut workers, limit) {
                    stats.timed_out += 1;
                    consume((shared.work.on_timeout)(&job, limit));
                }
            }
        }
        while let Ok(msg) = res_rx.try_recv() {
            if let Msg::Result(r) = msg {
                consume(r);
            }
        }
        // Re-raise a walker panic with its own message rather than the scope's generic one.
        if let Err(payload) = walker.join() {
            panic::resume_unwind(payload);
        }
    });
    for w in workers {
        if !w.abandoned.load(Ordering::SeqCst) {
            // A worker panicking outside a job would be a pool bug; its jobs are accounted.
            let _ = w.thread.join();
        }
    }
    stats.not_processed =
        not_submitted.load(Ordering::Relaxed) + shared.dropped.load(Ordering::Relaxed);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn limits(workers: usize) -> Limits {
        Limits {
            workers: NonZeroUsize::new(workers).unwrap(),
            job_timeout: None,
        }
    }

    /// A worker side whose jobs are plain functions of the job.
    fn work<J: 'static, R: 'static>(
        run: impl Fn(&J, &JobHandle) -> R + Send + Sync + 'static,
        on_panic: impl Fn(&J, String) -> R + Send + Sync + 'static,
        on_timeout: impl Fn(&J, Duration) -> R + Send + Sync + 'static,
    ) -> Work<J, R, ()> {
        Work {
            init: Box::new(|| ()),
            run: Box::new(move |j, (), handle| run(j, handle)),
            on_panic: Box::new(on_panic),
            on_timeout: Box::new(on_timeout),
        }
    }

    fn no_cancel() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    #[test]
    fn every_job_yields_exactly_one_result() {
        for workers in [1, 2, 8] {
            let mut seen = Vec::new();
            let stats = run(
                limits(workers),
                &no_cancel(),
                |f| {
                    for i in 0..1000u32 {
                        assert!(f.submit(i));
                    }
                },
                work(|j, _| j * 2, |_, _| u32::MAX, |_, _| u32::MAX),
                |r| seen.push(r),
            );
            seen.sort_unstable();
            assert_eq!(
                seen,
                (0..1000).map(|i| i * 2).collect::<Vec<_>>(),
                "workers={workers}"
            );
            assert_eq!(stats, Stats::default());
        }
    }

    /// Waits (up to 10 s) until `borrow_spare(max)` yields `want` cores; returns what it got.
    fn wait_for_spare(handle: &JobHandle, max: usize, want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = handle.borrow_spare(max).count();
            if got == want || Instant::now() > deadline {
                return got;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_lone_job_borrows_the_cores_no_other_job_will_need() {
        let mut seen = Vec::new();
        run(
            limits(4),
            &no_cancel(),
            |f| assert!(f.submit(())),
            work(
                |(), handle| {
                    // The feeder is done and the three other workers have nothing to do.
                    let all = wait_for_spare(handle, 8, 3);
                    // Borrowed cores are not lent twice, and come back when released.
                    let held = handle.borrow_spare(2);
                    let rest = handle.borrow_spare(8).count();
                    drop(held);
                    let again = handle.borrow_spare(8).count();
                    (all, rest, again)
                },
                |_, _| (0, 0, 0),
                |_, _| (0, 0, 0),
            ),
            |r| seen.push(r),
        );
        assert_eq!(seen, vec![(3, 1, 3)]);
        assert_eq!(
            JobHandle::detached().borrow_spare(8).count(),
            0,
            "no spare cores outside the pool"
        );
    }

    #[test]
    fn workers_waiting_for_more_jobs_are_not_spare() {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let mut seen = Vec::new();
        run(
            limits(3),
            &no_cancel(),
            move |f| {
                assert!(f.submit(0u32));
                // The walker is still busy: the idle workers may get a job any moment.
                let _ = rx.recv_timeout(Duration::from_secs(10));
                assert!(f.submit(1));
            },
            work(
                move |&j, handle: &JobHandle| {
                    if j == 0 {
                        thread::sleep(Duration::from_millis(50));
                        let spare = handle.borrow_spare(8).count();
                        let _ = tx.send(());
                        spare
                    } else {
                        usize::MAX
                    }
                },
                |_, _| 99,
                |_, _| 99,
            ),
            |r| seen.push(r),
        );
        seen.sort_unstable();
        assert_eq!(seen, vec![0, usize::MAX]);
    }

    #[test]
    fn a_panicking_job_becomes_a_result_and_the_worker_carries_on() {
        let inits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&inits);
        let mut results = Vec::new();
        run(
            limits(2),
            &no_cancel(),
            |f| {
                for i in 0..100u32 {
                    f.submit(i);
                }
            },
            Work {
                init: Box::new(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                }),
                run: Box::new(|&j, (), _| {
                    assert!(j % 10 != 3, "job {j} exploded");
                    Ok(j)
                }),
                on_panic: Box::new(|&j, msg| Err((j, msg))),
                on_timeout: Box::new(|&j, _| Err((j, "timeout".into()))),
            },
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
    fn cancellation_stops_the_feeder_and_counts_what_was_left() {
        let cancel = no_cancel();
        let submitted = AtomicUsize::new(0);
        let flag = Arc::clone(&cancel);
        let mut done = 0u64;
        let stats = run(
            limits(2),
            &cancel,
            |f| {
                for i in 0..1_000_000u32 {
                    if !f.submit(i) {
                        // The rest of the walk would have been these.
                        f.not_processed(u64::from(1_000_000 - i - 1));
                        break;
                    }
                    submitted.fetch_add(1, Ordering::SeqCst);
                }
            },
            work(
                move |&j, _: &JobHandle| {
                    if j == 50 {
                        flag.store(true, Ordering::SeqCst);
                    }
                },
                |_, _| (),
                |_, _| (),
            ),
            |()| done += 1,
        );
        assert!(
            submitted.load(Ordering::SeqCst) < 1000,
            "the feeder stopped early"
        );
        assert!(done < 1000);
        assert_eq!(
            done + stats.not_processed,
            1_000_000,
            "every job is either done or counted as not processed"
        );
    }

    #[test]
    fn feeder_reports_reach_the_consumer() {
        let mut seen = Vec::new();
        run(
            limits(1),
            &no_cancel(),
            |f: &Feeder<'_, u8, u8>| f.report(7),
            work(|&j, _| j, |_, _| 0, |_, _| 0),
            |r| seen.push(r),
        );
        assert_eq!(seen, vec![7]);
    }

    #[test]
    #[should_panic(expected = "walker bug")]
    fn a_panicking_feeder_propagates_instead_of_hanging() {
        run(
            limits(2),
            &no_cancel(),
            |f: &Feeder<'_, u32, u32>| {
                f.submit(1);
                panic!("walker bug");
            },
            work(|&j, _| j, |_, _| 0, |_, _| 0),
            |_| (),
        );
    }

    #[test]
    fn an_overdue_job_times_out_and_a_replacement_keeps_the_pool_at_strength() {
        // Job 0 hangs (far longer than the limit); the 40 others must still finish on two
        // workers, the hung job must be reported once as timed out, and its late result must
        // never reach the consumer.
        let saw_abandoned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&saw_abandoned);
        let mut results = Vec::new();
        let start = Instant::now();
        let stats = run(
            Limits {
                workers: NonZeroUsize::new(2).unwrap(),
                job_timeout: Some(Duration::from_millis(200)),
            },
            &no_cancel(),
            |f| {
                for i in 0..41u32 {
                    f.submit(i);
                }
            },
            work(
                move |&j, handle: &JobHandle| {
                    if j == 0 {
                        thread::sleep(Duration::from_millis(1500));
                        flag.store(handle.is_abandoned(), Ordering::SeqCst);
                        return format!("late {j}");
                    }
                    assert!(!handle.is_abandoned());
                    thread::sleep(Duration::from_millis(5));
                    format!("ok {j}")
                },
                |&j, m| format!("panic {j} {m}"),
                |&j, limit| format!("timeout {j} {}ms", limit.as_millis()),
            ),
            |r| results.push(r),
        );
        let took = start.elapsed();
        assert_eq!(results.len(), 41, "{results:?}");
        assert!(results.contains(&"timeout 0 200ms".to_string()));
        assert_eq!(results.iter().filter(|r| r.starts_with("ok")).count(), 40);
        assert_eq!(stats.timed_out, 1);
        assert!(
            took < Duration::from_millis(1400),
            "the run did not wait for the hung job: {took:?}"
        );
        // The abandoned job learns it was abandoned (so it writes nothing) once it wakes.
        thread::sleep(Duration::from_millis(1500));
        assert!(saw_abandoned.load(Ordering::SeqCst));
    }

    #[test]
    fn time_before_the_clock_restarts_does_not_count_against_the_limit() {
        // Each job waits 300 ms with its clock paused (for memory, say), restarts it, then works
        // 100 ms: over the 250 ms limit in all, but well within it for the work itself.
        let mut results = Vec::new();
        let stats = run(
            Limits {
                workers: NonZeroUsize::new(2).unwrap(),
                job_timeout: Some(Duration::from_millis(250)),
            },
            &no_cancel(),
            |f| {
                for i in 0..2u32 {
                    f.submit(i);
                }
            },
            work(
                |&j, handle: &JobHandle| {
                    handle.pause_clock();
                    thread::sleep(Duration::from_millis(300));
                    handle.restart_clock();
                    thread::sleep(Duration::from_millis(100));
                    format!("ok {j}")
                },
                |&j, m| format!("panic {j} {m}"),
                |&j, _| format!("timeout {j}"),
            ),
            |r| results.push(r),
        );
        results.sort();
        assert_eq!(results, ["ok 0", "ok 1"]);
        assert_eq!(stats.timed_out, 0);
    }

    #[test]
    fn the_watchdog_kills_what_an_abandoned_job_waits_on() {
        // Job 0 waits on a channel that only its kill hook fills (as an isolated decode waits on
        // a decoder process only a kill ends): abandoning it must end the wait at once.
        let woken = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&woken);
        let mut results = Vec::new();
        let start = Instant::now();
        run(
            Limits {
                workers: NonZeroUsize::new(1).unwrap(),
                job_timeout: Some(Duration::from_millis(200)),
            },
            &no_cancel(),
            |f| {
                f.submit(0u32);
                f.submit(1);
            },
            work(
                move |&j, handle: &JobHandle| {
                    if j == 0 {
                        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
                        let got = handle.kill_on_abandon(
                            move || {
                                let _ = tx.send(());
                            },
                            || rx.recv_timeout(Duration::from_secs(20)),
                        );
                        *lock(&seen) = Some((got.is_ok(), start.elapsed()));
                    }
                    format!("ok {j}")
                },
                |&j, m| format!("panic {j} {m}"),
                |&j, _| format!("timeout {j}"),
            ),
            |r| results.push(r),
        );
        results.sort();
        assert_eq!(results, ["ok 1", "timeout 0"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock(&woken).is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let (killed, after) = lock(&woken).expect("the abandoned job never woke");
        assert!(killed, "the hook did not end the wait");
        assert!(after < Duration::from_secs(5), "woke only after {after:?}");
    }
}
