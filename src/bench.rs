//! `presize bench`: the real pipeline, measured at several worker counts.
//!
//! For people benchmarking image pipelines: runs exactly what `presize` runs (walker, pool,
//! decode, resize, encode) but discards the outputs unless `--write`, repeats each worker count,
//! and keeps the median run: throughput, scaling, time per stage and per-image latency. It prints
//! nothing: `commands.rs` hands each row to `report.rs` (terminal table, JSON) and `html.rs`
//! (`--report`), which both show [`COLUMNS`].

use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use crate::cli::BenchArgs;
use crate::config::{Config, Settings, Verbosity};
use crate::job::{Outcome, Stages};

/// One measured worker count (the median of its repeats).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchRow {
    /// Worker threads.
    pub jobs: usize,
    /// Images processed per run.
    pub images: u64,
    /// Images that failed per run.
    pub failed: u64,
    /// Wall time of the median run, seconds.
    pub wall_s: f64,
    /// Images per second.
    pub images_per_s: f64,
    /// Input megapixels decoded per second.
    pub megapixels_per_s: f64,
    /// Throughput relative to the first row (normally -j1).
    pub speedup: f64,
    /// speed-up ÷ (jobs ÷ first row's jobs).
    pub efficiency: f64,
    /// Share of worker time per stage: read, decode, resize, encode, write.
    pub stage_share: [f64; 5],
    /// Median per-image latency, milliseconds.
    pub p50_ms: f64,
    /// 95th-percentile per-image latency, milliseconds.
    pub p95_ms: f64,
}

/// The worker counts measured when `--jobs` is not given: 1, 2, 4, … and the CPU count.
pub(crate) fn default_jobs(cpus: usize) -> Vec<NonZeroUsize> {
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |n| Some(n * 2))
        .take_while(|&n| n < cpus)
        .collect();
    v.push(cpus.max(1));
    v.into_iter().filter_map(NonZeroUsize::new).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct RunStats {
    wall: Duration,
    images: u64,
    failed: u64,
    pixels: u64,
    stages: Stages,
    latencies: Vec<Duration>,
}

/// One column of the bench table: its header, its width in the terminal table, and its cell.
pub(crate) struct Column {
    /// The header, in both tables.
    pub head: &'static str,
    /// Width in the terminal table (cells are right-aligned).
    pub width: usize,
    /// The cell of one row.
    pub cell: fn(&BenchRow) -> String,
}

/// A finite, non-negative value: a table or chart must not show `NaN`.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

fn share(r: &BenchRow, stage: usize) -> String {
    format!("{:.0}%", finite(r.stage_share[stage]) * 100.0)
}

/// The columns of the bench table, in order: the one list both the terminal table
/// ([`TERMINAL_COLUMNS`] of them) and the `--report` page show.
pub(crate) const COLUMNS: [Column; 15] = [
    Column {
        head: "jobs",
        width: 4,
        cell: |r| r.jobs.to_string(),
    },
    Column {
        head: "images/s",
        width: 8,
        cell: |r| format!("{:.1}", finite(r.images_per_s)),
    },
    Column {
        head: "MP/s",
        width: 9,
        cell: |r| format!("{:.1}", finite(r.megapixels_per_s)),
    },
    Column {
        head: "speed-up",
        width: 8,
        cell: |r| format!("{:.2}x", finite(r.speedup)),
    },
    Column {
        head: "effic.",
        width: 6,
        cell: |r| format!("{:.0}%", finite(r.efficiency) * 100.0),
    },
    Column {
        head: "read",
        width: 5,
        cell: |r| share(r, 0),
    },
    Column {
        head: "decode",
        width: 7,
        cell: |r| share(r, 1),
    },
    Column {
        head: "resize",
        width: 7,
        cell: |r| share(r, 2),
    },
    Column {
        head: "encode",
        width: 7,
        cell: |r| share(r, 3),
    },
    Column {
        head: "write",
        width: 6,
        cell: |r| share(r, 4),
    },
    Column {
        head: "p50 ms",
        width: 8,
        cell: |r| format!("{:.1}", finite(r.p50_ms)),
    },
    Column {
        head: "p95 ms",
        width: 8,
        cell: |r| format!("{:.1}", finite(r.p95_ms)),
    },
    Column {
        head: "wall s",
        width: 7,
        cell: |r| format!("{:.2}", finite(r.wall_s)),
    },
    Column {
        head: "images",
        width: 7,
        cell: |r| r.images.to_string(),
    },
    Column {
        head: "failed",
        width: 7,
        cell: |r| r.failed.to_string(),
    },
];

/// How many of [`COLUMNS`] the terminal table shows; its footer line gives the image and
/// failure counts once, since they are the same for every worker count.
pub(crate) const TERMINAL_COLUMNS: usize = 12;

/// What `presize bench` measures: its inputs and settings, the worker counts, the repeats.
pub(crate) struct Plan {
    /// The command line.
    pub args: BenchArgs,
    /// The image settings from it.
    pub settings: Settings,
    /// Worker counts, in measuring order.
    pub jobs: Vec<NonZeroUsize>,
    /// Runs per worker count (the median is kept).
    pub repeat: usize,
}

impl Plan {
    /// Validates the flags and makes the defaults: every worker count from 1 to the CPU count
    /// by doubling, one run each.
    pub(crate) fn new(args: BenchArgs) -> anyhow::Result<Plan> {
        let settings = Settings::from_args(&args.image)?;
        let jobs = if args.jobs.is_empty() {
            default_jobs(num_cpus::get())
        } else {
            args.jobs.clone()
        };
        let repeat = args.repeat.max(1);
        Ok(Plan {
            args,
            settings,
            jobs,
            repeat,
        })
    }
}

/// Measures every worker count of `plan` and passes each row to `on_row` as it is measured.
pub(crate) fn run(
    plan: &Plan,
    mut on_row: impl FnMut(&BenchRow) -> io::Result<()>,
) -> anyhow::Result<Vec<BenchRow>> {
    let tmp = tempfile::Builder::new()
        .prefix("presize-bench-")
        .tempdir()?;
    let mut rows: Vec<BenchRow> = Vec::new();
    for &jobs in &plan.jobs {
        let config = config_for(plan, jobs, &tmp.path().join(format!("j{jobs}")));
        let mut runs = Vec::with_capacity(plan.repeat);
        for _ in 0..plan.repeat {
            runs.push(measure_once(&config, !plan.args.write)?);
        }
        runs.sort_by_key(|r| r.wall);
        let median = runs.swap_remove(runs.len() / 2);
        let row = median.row(jobs.get(), rows.first());
        on_row(&row)?;
        rows.push(row);
    }
    Ok(rows)
}

/// The run `presize` would make at `jobs` workers, writing below `out_dir` (when writing at all).
fn config_for(plan: &Plan, jobs: NonZeroUsize, out_dir: &std::path::Path) -> Config {
    Config {
        inputs: plan.args.inputs.clone(),
        out_dir: out_dir.to_path_buf(),
        settings: plan.settings.clone(),
        workers: jobs,
        overwrite: true,
        dry_run: false,
        json: false,
        report: None,
        verbosity: Verbosity::Quiet,
        color: false,
        progress: false,
        in_place: false,
        follow_links: false,
        limits: crate::config::Limits::default(),
        template: crate::naming::Template::default_for(plan.settings.targets.len()),
        listed: false,
        shard: None,
        manifest: None,
        force: true,
        prune: false,
        watch: false,
        // As a plain run writes (with --write): each output synced before its rename.
        sync_outputs: crate::config::Durability::File,
        sync_manifest: crate::config::Durability::FileAndFolder,
        keep_mtime: false,
        html: None,
        isolate: plan.args.image.isolate,
    }
}

/// One whole run of `config`; with `discard`, outputs are encoded but not written.
fn measure_once(config: &Config, discard: bool) -> anyhow::Result<RunStats> {
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let mut s = RunStats {
        wall: Duration::ZERO,
        images: 0,
        failed: 0,
        pixels: 0,
        stages: Stages::default(),
        latencies: Vec::new(),
    };
    let found = std::sync::atomic::AtomicU64::new(0);
    (s.wall, _) = crate::execute(config, &cancel, discard, &found, None, |r| {
        match r.outcome {
            Ok(Outcome::Written(_)) => {
                s.images += 1;
                s.pixels += r.pixels_in;
                let st = r.stages;
                s.latencies
                    .push(st.read + st.decode + st.resize + st.encode + st.write);
            }
            Err(_) => s.failed += 1,
            Ok(_) => {}
        }
        s.stages += r.stages;
    })?;
    Ok(s)
}

impl RunStats {
    /// The table row of this (median) run at `jobs` workers; speed-up and efficiency are
    /// relative to `baseline`, the first row measured (itself when there is none).
    fn row(mut self, jobs: usize, baseline: Option<&BenchRow>) -> BenchRow {
        self.latencies.sort_unstable();
        let secs = self.wall.as_secs_f64().max(1e-9);
        let ips = self.images as f64 / secs;
        let (base_ips, base_jobs) = baseline.map_or((ips, jobs), |r| (r.images_per_s, r.jobs));
        let speedup = if base_ips > 0.0 { ips / base_ips } else { 0.0 };
        let st = self.stages;
        let parts = [st.read, st.decode, st.resize, st.encode, st.write].map(|d| d.as_secs_f64());
        let total: f64 = parts.iter().sum::<f64>().max(1e-12);
        BenchRow {
            jobs,
            images: self.images,
            failed: self.failed,
            wall_s: secs,
            images_per_s: ips,
            megapixels_per_s: self.pixels as f64 / 1e6 / secs,
            speedup,
            efficiency: speedup / (jobs as f64 / base_jobs as f64),
            stage_share: parts.map(|p| p / total),
            p50_ms: percentile(&self.latencies, 0.5),
            p95_ms: percentile(&self.latencies, 0.95),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_worker_counts_double_up_to_the_cpu_count() {
        let v = |c| {
            default_jobs(c)
                .into_iter()
                .map(NonZeroUsize::get)
                .collect::<Vec<_>>()
        };
        assert_eq!(v(1), vec![1]);
        assert_eq!(v(2), vec![1, 2]);
        assert_eq!(v(6), vec![1, 2, 4, 6]);
        assert_eq!(v(8), vec![1, 2, 4, 8]);
    }

    #[test]
    fn percentiles_pick_from_sorted_latencies() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((percentile(&d, 0.5) - 51.0).abs() < 1.0);
        assert!((percentile(&d, 0.95) - 95.0).abs() < 1.1);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
