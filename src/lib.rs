//! presize: resize whole folders of images in parallel, fast, without ever losing a file.
//!
//! The binary is a thin shell around [`run`]; tests and benches call it directly. Data flow:
//! `walk` thread → bounded job channel → N `pipeline::process` workers → results channel → the
//! calling thread (`report`) → all threads joined → [`report::Summary`] → [`exit::Exit`].

pub mod api;
pub mod bench;
pub mod budget;
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use std::path::Path;

pub use crate::api::Resize;
pub use crate::format::Format;

use crate::budget::Budget;
use crate::config::Config;
use crate::error::JobError;
use crate::manifest::Manifest;
use crate::pipeline::{JobResult, Mode, Scratch};
use crate::report::{Reporter, Summary};

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--timeout` ran out.
    TimeLimit,
}

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
    let mut build = BuildRecord {
        active: previous.is_some(),
        ..BuildRecord::default()
    };
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
            let manifest = build.finish(config, previous, complete)?;
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
        run: Box::new(move |job, scratch| pipeline::process(job, &ctx, scratch)),
        on_panic: Box::new(|job: &plan::Job, message| JobResult {
            rel: manifest::rel_key(&job.rel),
            ..JobResult::failed(job.src.clone(), JobError::Panicked(message))
        }),
        on_timeout: Box::new(|job: &plan::Job, limit| JobResult {
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

/// What a run learns for its manifest: each source's new entry, and which sources it saw.
#[derive(Default)]
struct BuildRecord {
    /// Only a run with a manifest keeps anything (memory stays flat without one).
    active: bool,
    entries: Vec<manifest::SourceEntry>,
    seen: std::collections::HashSet<String>,
    walk_errors: u64,
}

impl BuildRecord {
    fn note(&mut self, result: &mut JobResult) {
        if !self.active {
            return;
        }
        if let Some(rel) = &result.rel {
            self.seen.insert(rel.clone());
        } else if result.outcome.is_err() {
            // A failure the walker met (an unreadable folder, say): sources below it may look
            // gone while they are not, so this run must not prune.
            self.walk_errors += 1;
        }
        if let Some(entry) = result.manifest.take() {
            self.entries.push(entry);
        }
    }

    /// The new manifest: this run's entries, plus the previous entries of sources this run did
    /// not record (failed, not reached, or gone). With `--prune` after a complete run, sources
    /// that are gone lose their entries and their output files, and sources still here lose the
    /// outputs they no longer produce.
    fn finish(
        self,
        config: &Config,
        previous: Manifest,
        complete: bool,
    ) -> anyhow::Result<Manifest> {
        let mut next = Manifest::new(manifest_options(&config.settings, &config.template));
        if config.prune && self.walk_errors > 0 {
            eprintln!(
                "presize: not pruning: {} input(s) could not be read, so their outputs may only look orphaned",
                self.walk_errors
            );
        }
        let prune = config.prune && complete && self.walk_errors == 0;
        let mut doomed: Vec<String> = Vec::new();
        let mut fresh: std::collections::HashMap<String, manifest::SourceEntry> = self
            .entries
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect();
        for old in previous.sources {
            let in_shard = config
                .shard
                .as_ref()
                .is_none_or(|s| s.contains(&shard::key(Path::new(&old.path))));
            match fresh.get(&old.path) {
                Some(new) => {
                    if prune {
                        doomed.extend(
                            old.outputs
                                .iter()
                                .filter(|o| !new.outputs.iter().any(|n| n.path == o.path))
                                .map(|o| o.path.clone()),
                        );
                    }
                }
                None if prune
                    && in_shard
                    && !self.seen.contains(&old.path)
                    && source_is_gone(config, &old.path) =>
                {
                    doomed.extend(old.outputs.iter().map(|o| o.path.clone()));
                }
                None => {
                    next.insert(old);
                }
            }
        }
        for (_, entry) in fresh.drain() {
            next.insert(entry);
        }
        // Never delete a file that a current entry still lists (two sources may share names
        // across a template change).
        let kept: std::collections::HashSet<&str> = next
            .sources
            .iter()
            .flat_map(|s| s.outputs.iter().map(|o| o.path.as_str()))
            .collect();
        let root = config.out_dir.canonicalize().ok();
        for rel in doomed.iter().filter(|r| !kept.contains(r.as_str())) {
            if let Some(path) = manifest::safe_relative(rel) {
                let path = config.out_dir.join(path);
                // Never delete through a symlinked folder planted in the output tree.
                let inside = path
                    .parent()
                    .and_then(|p| p.canonicalize().ok())
                    .zip(root.as_ref())
                    .is_some_and(|(parent, root)| parent.starts_with(root));
                if !inside {
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => eprintln!("presize: cannot prune {}: {e}", path.display()),
                }
            }
        }
        Ok(next)
    }
}

/// Whether a manifest source (a path relative to one of the inputs) no longer exists. Only a
/// definite "not found" counts: a source this run did not list, or cannot read, is kept.
fn source_is_gone(config: &Config, rel: &str) -> bool {
    let Some(rel) = manifest::safe_relative(rel) else {
        return false;
    };
    let missing = |p: &Path| {
        std::fs::symlink_metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    };
    let candidates: Vec<std::path::PathBuf> = if config.listed {
        vec![rel.clone()]
    } else {
        config
            .inputs
            .iter()
            .map(|root| {
                if root.is_dir() {
                    root.join(&rel)
                } else {
                    root.with_file_name(&rel)
                }
            })
            .collect()
    };
    !candidates.is_empty() && candidates.iter().all(|c| missing(c))
}

/// The options a manifest records (and hashes): everything that shapes the outputs.
fn manifest_options(settings: &config::Settings, template: &naming::Template) -> manifest::Options {
    use serde_json::{json, Value};
    let mut values = std::collections::BTreeMap::new();
    let sizes: Vec<Value> = settings
        .targets
        .iter()
        .map(|t| {
            json!({
                "width": t.width.map(|d| d.to_string()),
                "height": t.height.map(|d| d.to_string()),
            })
        })
        .collect();
    values.insert("sizes".into(), Value::Array(sizes));
    let formats: Vec<Value> = settings
        .formats
        .iter()
        .map(|f| Value::from(f.map_or("same", format::Format::name)))
        .collect();
    values.insert("formats".into(), Value::Array(formats));
    let q = settings.quality;
    values.insert(
        "quality".into(),
        json!({"jpeg": q.jpeg, "webp": q.webp, "avif": q.avif}),
    );
    let e = settings.effort;
    values.insert("effort".into(), json!({"webp": e.webp, "avif": e.avif}));
    let t = settings.targets.first();
    let fit = t.map_or_else(String::new, |t| format!("{:?}", t.fit).to_lowercase());
    values.insert("fit".into(), Value::from(fit));
    values.insert("upscale".into(), Value::from(t.is_some_and(|t| t.upscale)));
    values.insert("progressive".into(), Value::from(settings.progressive));
    values.insert("linear".into(), Value::from(settings.linear));
    values.insert("animated".into(), Value::from(settings.animated));
    values.insert("lossless".into(), Value::from(settings.lossless));
    values.insert(
        "filter".into(),
        Value::from(format!("{:?}", settings.filter).to_lowercase()),
    );
    values.insert(
        "shrink".into(),
        Value::from(format!("{:?}", settings.shrink).to_lowercase()),
    );
    values.insert(
        "icc".into(),
        Value::from(format!("{:?}", settings.icc).to_lowercase()),
    );
    values.insert(
        "metadata".into(),
        Value::from(format!("{:?}", settings.metadata).to_lowercase()),
    );
    let [r, g, b] = settings.background;
    values.insert(
        "background".into(),
        Value::from(format!("#{r:02x}{g:02x}{b:02x}")),
    );
    values.insert("name".into(), Value::from(template.as_str()));
    manifest::Options::new(values)
}
