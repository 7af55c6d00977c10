//! presize: resize whole folders of images in parallel, fast, without ever losing a file.
//!
//! The binary is a thin shell around [`run`]; tests and benches call it directly. Data flow:
//! `walk` thread → bounded job channel → N `pipeline::process` workers → results channel → the
//! calling thread (`report`) → all threads joined → [`report::Summary`] → [`exit::Exit`].

pub mod cli;
pub mod config;
pub mod error;
pub mod exit;
pub mod format;
pub mod geometry;
pub mod pipeline;
pub mod plan;
pub mod pool;
pub mod report;
pub mod walk;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

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
    if !config.dry_run {
        std::fs::create_dir_all(&config.out_dir)
            .with_context(|| format!("cannot create output folder {}", config.out_dir.display()))?;
    }
    let start = Instant::now();
    let mode = Mode {
        overwrite: config.overwrite,
        dry_run: config.dry_run,
    };
    let mut seen = 0u64;
    pool::run(
        config.jobs,
        cancel,
        |feeder| walk::walk(config, feeder),
        Scratch::default,
        |job, scratch| pipeline::process(job, &config.settings, mode, scratch),
        |job, message| JobResult::failed(job.src.clone(), JobError::Panicked(message)),
        |result| {
            seen += 1;
            reporter.set_total(seen.max(1));
            reporter.record(result);
        },
    );
    let interrupted = cancel.load(std::sync::atomic::Ordering::Relaxed);
    Ok(reporter.finish(start.elapsed(), interrupted))
}
