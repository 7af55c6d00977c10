//! presize: resize whole folders of images in parallel, fast, without ever losing a file.
//!
//! The binary is a thin shell around [`run`]; tests and benches call it directly. Data flow:
//! `walk` thread → bounded job channel → N `pipeline::process` workers → results channel → the
//! calling thread (`report`) → all threads joined → [`report::Summary`] → [`exit::Exit`].

pub mod api;
pub mod atomic;
pub mod bench;
pub mod budget;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit;
pub mod format;
pub mod geometry;
pub mod hash;
pub mod html;
pub mod job;
pub mod manifest;
pub mod metadata;
pub mod naming;
pub mod pipeline;

pub mod pool;
pub mod report;
pub mod shard;
pub mod walk;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use crate::api::Resize;
pub use crate::format::Format;

use crate::budget::Budget;
use crate::config::Config;
use crate::error::JobError;
use crate::job::{ImageJob, JobResult};
use crate::manifest::{BuildRecord, Manifest};
use crate::pipeline::{Mode, Scratch};
use crate::report::{Reporter, Stop, Summary};

/// Runs the whole job: walks the inputs, resizes on `config.jobs` workers, reports every result
/// through `reporter`, and returns the summary once every live thread is joined.
///
/// `cancel` is the run's stop flag (set by the signal handler); `--timeout` sets it too.
/// Fails (before any worker starts) only when the output folder cannot be created. Per-file
/// problems are in the summary, never an `Err`.
pub fn run(
    config: &Config,
    cancel: &Arc<AtomicBool>,
    mut reporter: Reporter,
) -> anyhow::Result<Summary> {
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
) -> anyhow::Result<(Duration, pool::Stats)> {
    let writes = !config.dry_run && !discard;
    let out_root = if writes && !config.in_place {
        std::fs::create_dir_all(&config.out_dir)
            .with_context(|| format!("cannot create output folder {}", config.out_dir.display()))?;
        Some(config.out_dir.canonicalize().with_context(|| {
            format!("cannot resolve output folder {}", config.out_dir.display())
        })?)
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
        },
        budget: Budget::new(config.limits.memory),
        out_dir: config.out_dir.clone(),
        out_root,
        template: config.template.clone(),
        manifest,
    });
    let limits = pool::Limits {
        workers: config.jobs,
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
