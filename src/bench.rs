//! `presize bench`: the real pipeline, measured at several worker counts.
//!
//! For people benchmarking image pipelines: runs exactly what `presize` runs (walker, pool,
//! decode, resize, encode) but discards the outputs unless `--write`, repeats each worker count,
//! and reports the median run: throughput, scaling, time per stage and per-image latency.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use crate::cli::BenchArgs;
use crate::config::{Config, Settings, Verbosity};
use crate::job::{Outcome, Stages};

/// One measured worker count (the median of its repeats).
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
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
pub fn default_jobs(cpus: usize) -> Vec<NonZeroUsize> {
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

/// Runs the benchmark and prints the table (or JSON lines) to stdout.
pub fn run(args: BenchArgs) -> anyhow::Result<Vec<BenchRow>> {
    let settings = Settings::from_args(&args.image)?;
    let jobs = if args.jobs.is_empty() {
        default_jobs(num_cpus::get())
    } else {
        args.jobs.clone()
    };
    let repeat = args.repeat.max(1);
    let tmp = tempfile::Builder::new()
        .prefix("presize-bench-")
        .tempdir()?;
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let mut rows: Vec<BenchRow> = Vec::new();
    let mut out = io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "presize bench: {} run(s) per worker count, median shown; outputs {}",
            repeat,
            if args.write {
                "written"
            } else {
                "encoded, not written"
            }
        )?;
        writeln!(
            out,
            "{:>4} {:>8} {:>9} {:>8} {:>6} {:>5} {:>7} {:>7} {:>7} {:>6} {:>8} {:>8}",
            "jobs",
            "images/s",
            "MP/s",
            "speed-up",
            "effic.",
            "read",
            "decode",
            "resize",
            "encode",
            "write",
            "p50 ms",
            "p95 ms"
        )?;
    }
    for &j in &jobs {
        let config = Config {
            inputs: args.inputs.clone(),
            out_dir: tmp.path().join(format!("j{j}")),
            settings: settings.clone(),
            jobs: j,
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
            template: crate::naming::Template::default_for(settings.targets.len()),
            listed: false,
            shard: None,
            manifest: None,
            force: true,
            prune: false,
        };
        let mut runs: Vec<RunStats> = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let mut s = RunStats {
                wall: Duration::ZERO,
                images: 0,
                failed: 0,
                pixels: 0,
                stages: Stages::default(),
                latencies: Vec::new(),
            };
            let found = std::sync::atomic::AtomicU64::new(0);
            (s.wall, _) = crate::execute(&config, &cancel, !args.write, &found, None, |r| {
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
            runs.push(s);
        }
        runs.sort_by_key(|r| r.wall);
        let mut m = runs.swap_remove(runs.len() / 2);
        m.latencies.sort_unstable();
        let secs = m.wall.as_secs_f64().max(1e-9);
        let ips = m.images as f64 / secs;
        let (base_ips, base_jobs) = rows
            .first()
            .map_or((ips, j.get()), |r| (r.images_per_s, r.jobs));
        let speedup = if base_ips > 0.0 { ips / base_ips } else { 0.0 };
        let st = m.stages;
        let parts = [st.read, st.decode, st.resize, st.encode, st.write].map(|d| d.as_secs_f64());
        let total: f64 = parts.iter().sum::<f64>().max(1e-12);
        let row = BenchRow {
            jobs: j.get(),
            images: m.images,
            failed: m.failed,
            wall_s: secs,
            images_per_s: ips,
            megapixels_per_s: m.pixels as f64 / 1e6 / secs,
            speedup,
            efficiency: speedup / (j.get() as f64 / base_jobs as f64),
            stage_share: parts.map(|p| p / total),
            p50_ms: percentile(&m.latencies, 0.5),
            p95_ms: percentile(&m.latencies, 0.95),
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            let pct = |i: usize| format!("{:.0}%", row.stage_share[i] * 100.0);
            writeln!(
                out,
                "{:>4} {:>8.1} {:>9.1} {:>7.2}x {:>5.0}% {:>5} {:>7} {:>7} {:>7} {:>6} {:>8.1} {:>8.1}",
                row.jobs, row.images_per_s, row.megapixels_per_s, row.speedup, row.efficiency * 100.0, pct(0), pct(1), pct(2), pct(3), pct(4), row.p50_ms, row.p95_ms
            )?;
        }
        rows.push(row);
    }
    if let Some(first) = rows.first() {
        if !args.json {
            writeln!(
                out,
                "{} images per run ({} failed); speed-up and efficiency are relative to -j{}",
                first.images, first.failed, first.jobs
            )?;
        }
    }
    if let Some(path) = &args.report {
        crate::html::write_bench(&rows, &report_params(&args, &settings, &jobs, repeat), path)?;
        if !args.json {
            writeln!(out, "report: {}", path.display())?;
        }
    }
    Ok(rows)
}

/// The run parameters shown on the `--report` page, in page order.
fn report_params(
    args: &BenchArgs,
    settings: &Settings,
    jobs: &[NonZeroUsize],
    repeat: usize,
) -> Vec<(String, String)> {
    let inputs: Vec<String> = args
        .inputs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let counts: Vec<String> = jobs.iter().map(ToString::to_string).collect();
    let cpus = num_cpus::get();
    let mut params = vec![("inputs".to_string(), inputs.join(", "))];
    params.extend(
        crate::html::settings_rows(settings)
            .into_iter()
            .map(|(label, value)| (label.to_string(), value)),
    );
    params.extend([
        ("worker counts".to_string(), counts.join(", ")),
        (
            "runs per worker count".to_string(),
            format!("{repeat} (the median run is shown)"),
        ),
        (
            "outputs".to_string(),
            if args.write {
                "written to a temporary folder, then deleted"
            } else {
                "encoded, not written"
            }
            .to_string(),
        ),
        (
            "machine".to_string(),
            format!(
                "{} {}, {cpus} CPU{}",
                std::env::consts::OS,
                std::env::consts::ARCH,
                if cpus == 1 { "" } else { "s" }
            ),
        ),
    ]);
    params
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
