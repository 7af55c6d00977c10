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
mod manifest;
mod metadata;
mod naming;
mod pipeline;
mod pool;
mod report;
mod shard;
mod walk;

pub use crate::api::Error;
pub use crate::api::Resize;
pub use crate::error::{ConfigError, ErrorKind, Failure, JobError};
pub use crate::format::Format;
pub use crate::manifest::{Dropped, Manifest, ManifestError, OutputEntry, SourceEntry};
pub use crate::report::Summary;

/// Not part of the library's API, and without any stability promise: the `presize` binary,
/// the benches and the integration tests reach the stages through here, as a test would reach
/// a private module from inside the crate.
#[doc(hidden)]
pub mod internals {
    pub use crate::atomic::remove_in_flight;
    pub use crate::cli::Cli;
    pub use crate::commands::run as run_command;
    pub use crate::config::{settings_for_width, Config, Filter, Settings, Shrink};
    pub use crate::exit::Exit;
    pub use crate::geometry::Rect;
    pub use crate::job::{ImageJob, Outcome};
    pub use crate::pipeline::isolate::{serve as serve_decoder_process, DECODER_ARG};
    pub use crate::pool::JobHandle;
    pub use crate::report::Reporter;
    pub use crate::{execute, run};

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
use crate::manifest::BuildRecord;
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
    mut reporter: Reporter,
) -> Result<Summary, Error> {
    let previous = match (&config.manifest, config.force) {
        (Some(path), false) => Some(Manifest::load(path)?),
        (Some(_), true) => Some(Manifest::default()),
        (None, _) => None,
    };
    let mut build = BuildRecord::new(previous.is_some());
    let found = AtomicU64::new(0);
    let estimate = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let timed_out = AtomicBool::new(false);
    let (elapsed, stats) = std::thread::scope(|scope| {
        if config.progress {
            scope.spawn(|| walk::estimate_total(config, &estimate, &done));
        }
        if let Some(limit) = config.limits.timeout {
            let (done, timed_out) = (&done, &timed_out);
            scope.spawn(move || {
                let start = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    if start.elapsed() >= limit {
                        timed_out.store(true, Ordering::SeqCst);
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20).min(limit));
                }
            });
        }
        let result = execute(
            config,
            cancel,
            false,
            &found,
            previous.clone(),
            |mut result| {
                let total = found
                    .load(Ordering::Relaxed)
                    .max(estimate.load(Ordering::Relaxed));
                reporter.set_total(total);
                build.note(&mut result);
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
    if let (Some(path), Some(previous)) = (&config.manifest, previous) {
        if !config.dry_run {
            let complete = stop.is_none();
            let (manifest, warnings) = build.finish(config, previous, complete);
            warnings.iter().for_each(|w| reporter.warn(w));
            manifest.save_atomic(path)?;
        }
    }
    let summary = reporter.finish(elapsed, stop, stats.not_processed);
    if let Some(path) = &config.report {
        html::write(&records, &summary, config, path)?;
    }
    Ok(summary)
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
    let start = Instant::now();
    let ctx = Arc::new(pipeline::Context {
        settings: config.settings.clone(),
        mode: Mode {
            overwrite: config.overwrite,
            force: config.force,
            dry_run: config.dry_run,
            discard,
            in_place: config.in_place,
            isolate: config.isolate,
        },
        budget: Budget::new(config.limits.memory),
        out_dir: config.out_dir.clone(),
        out_root,
        template: config.template.clone(),
        manifest,
    });
    let limits = pool::Limits {
        workers: config.workers,
        job_timeout: config.limits.image_timeout,
    };
    let work = pool::Work {
        init: Box::new(Scratch::default),
        run: Box::new(move |job, scratch, handle| pipeline::process(job, &ctx, scratch, handle)),
        on_panic: Box::new(|job: &ImageJob, message| JobResult {
            rel: manifest::rel_key(&job.rel),
            ..JobResult::failed(job.src.clone(), JobError::Panicked(message))
        }),
        on_timeout: Box::new(|job: &ImageJob, limit| JobResult {
            rel: manifest::rel_key(&job.rel),
            ..JobResult::failed(job.src.clone(), JobError::TimedOut(limit))
        }),
    };
    let stats = pool::run(
        limits,
        cancel,
        |feeder| walk::walk(config, feeder, found),
        work,
        sink,
    );
    Ok((start.elapsed(), stats))
}
