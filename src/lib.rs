//! presize: resize whole folders of images in parallel, fast, without ever losing a file.
//!
//! As a library, [`Resize`] runs the same engine as the binary, with its defaults: per-file
//! problems are counted in the [`Summary`], and only a run that cannot start or finish is an
//! [`Error`]. A build step can read the [`Manifest`] a run writes.
//!
//! Data flow (see `docs/ARCHITECTURE.md`): `walk` thread → bounded job channel → N
//! `pipeline::process` workers → results channel → the calling thread (`report`) → all threads
//! joined → `Summary` → `exit::Exit`.

mod api;
mod atomic;
mod bench;
mod budget;
mod build;
mod cli;
mod commands;
mod config;
mod error;
mod exit;
mod format;
mod geometry;
mod hash;
mod html;
mod job;
mod jpeg_segment;
mod manifest;
mod markup;
mod metadata;
mod naming;
mod pipeline;
mod pool;
mod report;
mod shard;
mod walk;
mod watch;

pub use crate::api::Error;
pub use crate::api::Resize;
pub use crate::cli::PlaceholderKind;
pub use crate::config::FailOn;
pub use crate::error::{ConfigError, ErrorKind, Failure, JobError};
pub use crate::format::Format;
pub use crate::manifest::{
    Dropped, Manifest, ManifestError, OutputEntry, Placeholder, SourceEntry,
};
pub use crate::report::Summary;

/// Not part of the library's API, and without any stability promise: the `presize` binary,
/// the benches and the integration tests reach the stages through here, as a test would reach
/// a private module from inside the crate.
#[doc(hidden)]
pub mod internals {
    pub use crate::atomic::remove_in_flight;
    pub use crate::cli::Cli;
    pub use crate::commands::{dispatch, Request};
    pub use crate::config::{settings_for_width, Config, Filter, Settings, Shrink};
    pub use crate::exit::Exit;
    pub use crate::geometry::Rect;
    pub use crate::job::{ImageJob, Outcome};
    pub use crate::pipeline::isolate::{serve as serve_decoder_process, DECODER_ARG};
    pub use crate::pool::JobHandle;
    pub use crate::report::Reporter;
    pub use crate::watch::run as run_and_watch;
    pub use crate::{execute, run, run_jobs};

    /// The pipeline's stages, for the stage benchmarks.
    pub mod pipeline {
        pub use crate::pipeline::{
            color, decode, encode, pixels, process, resize, restart, Context, Mode, Scratch,
        };
    }
}

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::config::Config;
use crate::job::{ImageJob, JobResult};
use crate::manifest::{BuildRecord, ManifestLock};
use crate::pipeline::{Mode, Scratch};
use crate::report::{Reporter, Stop};

/// Runs the whole job: walks the inputs, resizes on `config.workers` workers, reports every result
/// through `reporter`, and returns the summary once every live thread is joined.
///
/// `cancel` is the run's stop flag (set by the signal handler); `--timeout` sets it too.
/// Fails (before any worker starts) only when the output folder cannot be created. Per-file
/// problems are in the summary, never an `Err`.
pub fn run(
    config: &Config,
    cancel: &Arc<AtomicBool>,
    reporter: Reporter,
) -> Result<Summary, Error> {
    run_jobs(std::slice::from_ref(config), cancel, reporter)
}

/// Runs several jobs (a build file's) in one pool: one set of workers and one summary, each
/// image resized with its own job's settings, each job's manifest written and pruned on its
/// own. The run-wide settings (workers, limits, output, `--report`) are the first job's;
/// `build::load` has checked that every job agrees on them.
pub fn run_jobs(
    configs: &[Config],
    cancel: &Arc<AtomicBool>,
    mut reporter: Reporter,
) -> Result<Summary, Error> {
    let Some(first) = configs.first() else {
        return Ok(reporter.finish(Duration::ZERO, None, 0));
    };
    // --timeout counts from here, so it also bounds the wait for another run's manifest lock.
    let started = Instant::now();
    // Held until the manifests are saved, when the function returns.
    let mut _locks = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        // Two jobs of one build may share a manifest: lock each file once.
        if configs[..i].iter().any(|c| c.manifest == config.manifest) {
            continue;
        }
        match lock_manifest(config, cancel, &reporter, started)? {
            Ok(lock) => _locks.push(lock),
            Err(stop) => return Ok(reporter.finish(started.elapsed(), Some(stop), 0)),
        }
    }
    let mut previous = Vec::with_capacity(configs.len());
    for config in configs {
        previous.push(match (&config.manifest, config.force) {
            (Some(path), false) => Some(Manifest::load(path)?),
            (Some(_), true) => Some(Manifest::default()),
            (None, _) => None,
        });
    }
    let mut builds: Vec<BuildRecord> = previous
        .iter()
        .map(|p| BuildRecord::new(p.is_some()))
        .collect();
    let found = AtomicU64::new(0);
    let estimate = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let timed_out = AtomicBool::new(false);
    let (elapsed, stats) = std::thread::scope(|scope| {
        if first.progress {
            scope.spawn(|| {
                configs
                    .iter()
                    .for_each(|c| walk::estimate_total(c, &estimate, &done));
            });
        }
        if let Some(limit) = first.limits.timeout {
            let (done, timed_out) = (&done, &timed_out);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if started.elapsed() >= limit {
                        timed_out.store(true, Ordering::SeqCst);
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20).min(limit));
                }
            });
        }
        let result = execute_jobs(
            configs,
            cancel,
            false,
            &found,
            previous.clone(),
            |mut result| {
                let total = found
                    .load(Ordering::Relaxed)
                    .max(estimate.load(Ordering::Relaxed));
                reporter.set_total(total);
                if let Some(build) = builds.get_mut(result.group) {
                    build.note(&mut result);
                }
                reporter.record(result);
            },
        );
        done.store(true, Ordering::Relaxed);
        result
    })?;
    let records = reporter.take_records();
    let stop = if timed_out.load(Ordering::SeqCst) {
        Some(Stop::TimeLimit)
    } else if cancel.load(Ordering::SeqCst) {
        Some(Stop::Interrupted)
    } else {
        None
    };
    for ((config, build), previous) in configs.iter().zip(builds).zip(previous) {
        if let (Some(path), Some(previous)) = (&config.manifest, previous) {
            if !config.dry_run {
                let complete = stop.is_none();
                let (manifest, warnings) = build.finish(config, previous, complete);
                warnings.iter().for_each(|w| reporter.warn(w));
                manifest.save(path, config.sync_manifest)?;
                if let Some(out) = &config.html {
                    markup::write(&manifest, out, config.sync_manifest)?;
                }
            }
        }
    }
    let summary = reporter.finish(elapsed, stop, stats.not_processed);
    if let Some(path) = &first.report {
        html::write(&records, &summary, first, path)?;
    }
    Ok(summary)
}

/// With `--manifest` (and not `--dry-run`): the manifest's lock, to hold until it is saved. A
/// second run on the same manifest waits here, saying so, then reads what the first saved
/// (`manifest/lock.rs`). `Err(stop)` when Ctrl-C or `--timeout` ended the wait.
fn lock_manifest(
    config: &Config,
    cancel: &AtomicBool,
    reporter: &Reporter,
    started: Instant,
) -> Result<Result<Option<ManifestLock>, Stop>, Error> {
    let Some(path) = config.manifest.as_ref().filter(|_| !config.dry_run) else {
        return Ok(Ok(None));
    };
    let timed_out = || {
        config
            .limits
            .timeout
            .is_some_and(|limit| started.elapsed() >= limit)
    };
    let waiting = |holder: manifest::Holder<'_>| reporter.waiting_for_manifest(path, &holder);
    let give_up = || cancel.load(Ordering::SeqCst) || timed_out();
    match ManifestLock::acquire(path, waiting, give_up) {
        Ok(Some(lock)) => Ok(Ok(Some(lock))),
        Ok(None) if timed_out() => Ok(Err(Stop::TimeLimit)),
        Ok(None) => Ok(Err(Stop::Interrupted)),
        Err(source) => Err(ManifestError::Io {
            what: "cannot lock manifest",
            path: path.clone(),
            source,
        }
        .into()),
    }
}

/// The engine under [`run`] and `presize bench`: every result goes to `sink` on the calling
/// thread as it arrives; returns the wall time and the pool's counts once every live thread is
/// joined. With `discard`, outputs are encoded but not written. `found` counts the images the
/// walker has discovered.
pub fn execute(
    config: &Config,
    cancel: &Arc<AtomicBool>,
    discard: bool,
    found: &AtomicU64,
    manifest: Option<Manifest>,
    sink: impl FnMut(JobResult),
) -> Result<(Duration, pool::Stats), Error> {
    let configs = std::slice::from_ref(config);
    execute_jobs(configs, cancel, discard, found, vec![manifest], sink)
}

/// [`execute`] for several jobs in one pool: job `i` is walked with `configs[i]` and resized
/// with its settings and previous manifest `manifests[i]`; each result carries its job's
/// index ([`JobResult::group`]). The pool's limits and the memory budget are the first job's.
fn execute_jobs(
    configs: &[Config],
    cancel: &Arc<AtomicBool>,
    discard: bool,
    found: &AtomicU64,
    manifests: Vec<Option<Manifest>>,
    sink: impl FnMut(JobResult),
) -> Result<(Duration, pool::Stats), Error> {
    let first = &configs[0];
    let budget = Arc::new(Budget::new(first.limits.memory));
    let mut contexts = Vec::with_capacity(configs.len());
    for (config, manifest) in configs.iter().zip(manifests) {
        contexts.push(context(config, discard, &budget, manifest)?);
    }
    let start = Instant::now();
    let contexts = Arc::new(contexts);
    let limits = pool::Limits {
        workers: first.workers,
        job_timeout: first.limits.image_timeout,
    };
    let failed = |job: &ImageJob, error| JobResult {
        rel: manifest::rel_key(&job.rel),
        group: job.group,
        ..JobResult::failed(job.src.clone(), error)
    };
    let work = pool::Work {
        init: Box::new(Scratch::default),
        run: Box::new(move |job, scratch, handle| {
            pipeline::process(job, &contexts[job.group], scratch, handle)
        }),
        on_panic: Box::new(move |job: &ImageJob, message| failed(job, JobError::Panicked(message))),
        on_timeout: Box::new(move |job: &ImageJob, limit| failed(job, JobError::TimedOut(limit))),
    };
    let walk_all = |feeder: &pool::Feeder<'_, ImageJob, JobResult>| {
        for (group, config) in configs.iter().enumerate() {
            walk::walk(config, group, feeder, found);
        }
    };
    let stats = pool::run(limits, cancel, walk_all, work, sink);
    Ok((start.elapsed(), stats))
}

/// What the workers need of one job: its settings, switches and output folder (created here
/// unless nothing is written), sharing the run's memory `budget`.
fn context(
    config: &Config,
    discard: bool,
    budget: &Arc<Budget>,
    manifest: Option<Manifest>,
) -> Result<pipeline::Context, Error> {
    let writes = !config.dry_run && !discard;
    let out_root = if writes && !config.in_place {
        let fail = |context| {
            let path = config.out_dir.clone();
            move |source| Error::OutputFolder {
                context,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&config.out_dir).map_err(fail("cannot create output folder"))?;
        Some(
            config
                .out_dir
                .canonicalize()
                .map_err(fail("cannot resolve output folder"))?,
        )
    } else {
        None
    };
    Ok(pipeline::Context {
        settings: config.settings.clone(),
        mode: Mode {
            overwrite: config.overwrite,
            force: config.force,
            dry_run: config.dry_run,
            discard,
            in_place: config.in_place,
            sync: config.sync_outputs,
            keep_mtime: config.keep_mtime,
            isolate: config.isolate,
        },
        budget: Arc::clone(budget),
        out_dir: config.out_dir.clone(),
        out_root,
        template: config.template.clone(),
        manifest,
    })
}
