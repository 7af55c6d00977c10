//! presize: resize whole folders of images in parallel, fast, without ever losing a file.
//!
//! The binary is a thin shell around [`run`]; tests and benches call it directly. Data flow:
//! `walk` thread → bounded job channel → N `pipeline::process` workers → results channel → the
//! calling thread (`report`) → all threads joined → [`report::Summary`] → [`exit::Exit`].

pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit;
pub mod format;
pub mod geometry;
pub mod html;
pub mod manifest;
pub mod metadata;
pub mod naming;
pub mod pipeline;
pub mod plan;
pub mod pool;
pub mod report;
pub mod shard;
pub mod walk;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::Config;
use crate::error::JobError;
use crate::pipeline::{JobResult, Mode, Scratch};
use crate::report::{Reporter, Summary};

/// Runs the whole job: walks the inputs, resizes on `config.jobs` workers, reports every result
/// through `reporter`, and returns the summary once every thread is joined.
///
/// Fails (before any worker starts) only when the output folder cannot be created. Per-file
/// problems are in the summary, never an `Err`.
pub fn run(
    config: &Config,
    cancel: &AtomicBool,
    mut reporter: Reporter,
) -> anyhow::Result<Summary> {
    let found = AtomicU64::new(0);
    let estimate = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let elapsed = std::thread::scope(|scope| {
        if config.progress {
            scope.spawn(|| walk::estimate_total(config, &estimate, &done));
        }
        let elapsed = execute(config, cancel, false, &found, |result| {
            let total = found
                .load(Ordering::Relaxed)
                .max(estimate.load(Ordering::Relaxed));
            reporter.set_total(total);
            reporter.record(result);
        });
        done.store(true, Ordering::Relaxed);
        elapsed
    })?;
    let records = reporter.take_records();
    let summary = reporter.finish(elapsed, cancel.load(Ordering::Relaxed));
    if let Some(path) = &config.report {
        html::write(&records, &summary, config, path)?;
    }
    Ok(summary)
}

/// The engine under [`run`] and `presize bench`: every result goes to `sink` on the calling
/// thread as it arrives; returns the wall time once every thread is joined. With `discard`,
/// outputs are encoded but not written. `found` counts the images the walker has discovered.
pub fn execute(
    config: &Config,
    cancel: &AtomicBool,
    discard: bool,
    found: &AtomicU64,
    sink: impl FnMut(JobResult),
) -> anyhow::Result<Duration> {
    if !config.dry_run && !discard {
        std::fs::create_dir_all(&config.out_dir)
            .with_context(|| format!("cannot create output folder {}", config.out_dir.display()))?;
    }
    let start = Instant::now();
    let mode = Mode {
        overwrite: config.overwrite,
        dry_run: config.dry_run,
        discard,
    };
    pool::run(
        config.jobs,
        cancel,
        |feeder| walk::walk(config, feeder, found),
        Scratch::default,
        |job, scratch| pipeline::process(job, &config.settings, mode, scratch),
        |job, message| JobResult::failed(job.src.clone(), JobError::Panicked(message)),
        sink,
    );
    Ok(start.elapsed())
}
