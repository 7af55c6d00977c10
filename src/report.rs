//! Everything presize prints, in one place: per-file lines, the progress bar, the summary, the
//! NDJSON report, run-wide warnings and the `bench` and `manifest merge` tables and lines.
//!
//! Workers and the walker never print; their results arrive here on the main thread, so lines
//! are never torn. Human output goes to stderr; stdout carries only `--json` and `bench`'s
//! table. (Two lines are printed by `main.rs`, outside any run: a fatal error, and the Ctrl-C
//! notice from the signal handler.) The HTML pages are rendered by `html.rs`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::bench::{self, BenchRow};
use crate::config::{Config, Verbosity};
use crate::error::{ErrorKind, Failure};
use crate::format::Format;
use crate::job::{JobResult, Outcome, Output, SkipReason, Stages};
use crate::manifest::Holder;

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--timeout` ran out.
    TimeLimit,
}

/// How many failed files of each kind the summary lists by name.
pub(crate) const LISTED_FAILURES: usize = 5;

/// Counts and totals of a run. A value: the exit code is computed from it.
#[derive(Debug, Default)]
pub struct Summary {
    /// Images found (written + skipped + failed + planned).
    pub inputs: u64,
    /// Images written.
    pub written: u64,
    /// Images planned (dry run).
    pub planned: u64,
    /// Images skipped because their output is up to date.
    pub skipped: u64,
    /// Inputs that failed.
    pub failed: u64,
    /// Files that are not images (not counted as inputs).
    pub ignored: u64,
    /// Bytes of the inputs that were written.
    pub bytes_in: u64,
    /// Bytes of all outputs written.
    pub bytes_out: u64,
    /// Time per stage, summed over workers.
    pub stages: Stages,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Worker threads used.
    pub workers: usize,
    /// The first few failures of each kind (five), in the order they came.
    pub failures: Vec<Failure>,
    /// Failures per class.
    pub failures_by_kind: BTreeMap<ErrorKind, u64>,
    /// Whether the run was stopped early (by a signal or by `--timeout`).
    pub interrupted: bool,
    /// Whether it was `--timeout` that stopped it.
    pub time_limit: bool,
    /// Inputs found (or queued) but never processed because the run stopped early. Folders not
    /// yet walked are counted by file name, without opening the files.
    pub not_processed: u64,
    /// The largest outputs written, largest first (at most three).
    pub largest: Vec<(u64, PathBuf)>,
    /// Bytes oxipng took off the PNG outputs (`--effort png`), and how many PNGs it made.
    pub png_saved: u64,
    /// PNG outputs written (the ones oxipng saw).
    pub png_written: u64,
}

/// How many of the largest outputs the summary names.
pub(crate) const LARGEST: usize = 3;

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";

fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("{code}{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

impl Summary {
    /// Adds one result to the counts. Consumes it so that failures can be kept without cloning.
    pub fn record(&mut self, r: JobResult) {
        self.stages += r.stages;
        match r.outcome {
            Ok(Outcome::Skipped(SkipReason::NotAnImage)) => self.ignored += 1,
            Ok(Outcome::Skipped(_)) => {
                self.inputs += 1;
                self.skipped += 1;
            }
            Ok(Outcome::Written(outputs)) => {
                self.inputs += 1;
                self.written += 1;
                self.bytes_in += r.bytes_in;
                self.bytes_out += outputs.iter().map(|o| o.bytes).sum::<u64>();
                self.png_saved += outputs.iter().map(|o| o.saved).sum::<u64>();
                self.png_written +=
                    outputs.iter().filter(|o| o.format == Format::Png).count() as u64;
                for o in &outputs {
                    self.largest.push((o.bytes, o.path.clone()));
                }
                self.largest.sort_by(|a, b| b.cmp(a));
                self.largest.truncate(LARGEST);
            }
            Ok(Outcome::Planned(_)) => {
                self.inputs += 1;
                self.planned += 1;
            }
            Err(error) => {
                self.inputs += 1;
                self.failed += 1;
                let seen = self.failures_by_kind.entry(error.kind()).or_default();
                *seen += 1;
                // Kept per kind: a run whose first failures are all of one kind must still
                // name the files of every other kind (issue #13 item 12).
                if *seen <= LISTED_FAILURES as u64 {
                    self.failures.push(Failure { path: r.src, error });
                }
            }
        }
    }

    /// Images per second over the whole run.
    pub fn images_per_s(&self) -> f64 {
        let done = (self.written + self.planned) as f64;
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            done / secs
        } else {
            0.0
        }
    }

    /// Writes the human summary, without colour.
    pub fn render(&self, out: &mut impl Write) -> io::Result<()> {
        self.render_styled(out, false)
    }

    /// Writes the human summary; `color` adds ANSI colour to the counts that need attention.
    pub fn render_styled(&self, out: &mut impl Write, color: bool) -> io::Result<()> {
        let secs = self.elapsed.as_secs_f64();
        if self.interrupted {
            let why = if self.time_limit {
                "time limit (--timeout) reached"
            } else {
                "interrupted"
            };
            let msg = format!(
                "presize: {why}; {} input{} not processed; finished outputs are complete, nothing partial was left",
                self.not_processed,
                plural(self.not_processed)
            );
            writeln!(out, "{}", paint(&msg, YELLOW, color))?;
        }
        writeln!(
            out,
            "presize: {} image{} in {:.2} s ({:.1} images/s, {} worker{})",
            self.inputs,
            plural(self.inputs),
            secs,
            self.images_per_s(),
            self.workers,
            plural(self.workers as u64),
        )?;
        if self.planned > 0 {
            writeln!(
                out,
                "  planned  {:>6}  (dry run: nothing was written)",
                self.planned
            )?;
        }
        let saving = if self.bytes_in > 0 {
            format!(
                " ({:+.0}%)",
                (self.bytes_out as f64 / self.bytes_in as f64 - 1.0) * 100.0
            )
        } else {
            String::new()
        };
        let written = format!(
            "  written  {:>6}  {} -> {}{}",
            self.written,
            human_bytes(self.bytes_in),
            human_bytes(self.bytes_out),
            saving
        );
        writeln!(out, "{}", paint(&written, GREEN, color && self.written > 0))?;
        if self.png_saved > 0 {
            writeln!(
                out,
                "  oxipng   {:>6}  PNG{} {} smaller (lossless)",
                self.png_written,
                plural(self.png_written),
                human_bytes(self.png_saved)
            )?;
        }
        if self.skipped > 0 {
            writeln!(
                out,
                "  skipped  {:>6}  (outputs up to date; --overwrite redoes them)",
                self.skipped
            )?;
        } else {
            writeln!(out, "  skipped  {:>6}", 0)?;
        }
        let failed = format!("  failed   {:>6}", self.failed);
        writeln!(out, "{}", paint(&failed, RED, color && self.failed > 0))?;
        if let Some(line) = self.largest_line() {
            writeln!(out, "{line}")?;
        }
        if self.failed > 0 {
            writeln!(out, "{}", paint("failed files:", RED, color))?;
            for (kind, &count) in &self.failures_by_kind {
                let listed: Vec<&Failure> = self
                    .failures
                    .iter()
                    .filter(|f| f.error.kind() == *kind)
                    .collect();
                writeln!(out, "  {kind} ({count}):")?;
                for f in &listed {
                    writeln!(out, "    {f}")?;
                }
                let more = count - listed.len() as u64;
                if more > 0 {
                    writeln!(out, "    ... and {more} more")?;
                }
            }
        }
        Ok(())
    }

    fn largest_line(&self) -> Option<String> {
        if self.largest.is_empty() {
            return None;
        }
        let items: Vec<String> = self
            .largest
            .iter()
            .map(|(b, p)| format!("{} ({})", p.display(), human_bytes(*b)))
            .collect();
        Some(format!("  largest outputs: {}", items.join(", ")))
    }

    /// The lines shown only with --verbose: files ignored as non-images, time per stage.
    pub fn render_stages(&self, out: &mut impl Write) -> io::Result<()> {
        let s = &self.stages;
        writeln!(
            out,
            "  ignored  {:>6}  (files that are not images)",
            self.ignored
        )?;
        writeln!(
            out,
            "  time in stages (all workers): read {:.2} s, decode {:.2} s, resize {:.2} s, encode {:.2} s, write {:.2} s",
            s.read.as_secs_f64(),
            s.decode.as_secs_f64(),
            s.resize.as_secs_f64(),
            s.encode.as_secs_f64(),
            s.write.as_secs_f64()
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Formats a byte count for people: 1.2 MB.
pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    path: String,
    width: u32,
    height: u32,
    format: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    input: String,
    status: &'static str,
    outputs: Vec<JsonOutput<'a>>,
    error: Option<String>,
    reason: Option<&'static str>,
    /// Only on a file decoded through damage (`--fail-on`), so other lines keep their shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonStages {
    decode: f64,
    resize: f64,
    encode: f64,
    write: f64,
    read: f64,
}

#[derive(Serialize)]
struct JsonSummary {
    #[serde(rename = "type")]
    kind: &'static str,
    inputs: u64,
    written: u64,
    skipped: u64,
    failed: u64,
    bytes_in: u64,
    bytes_out: u64,
    elapsed_s: f64,
    images_per_s: f64,
    stages_s: JsonStages,
    planned: u64,
    workers: usize,
    interrupted: bool,
    time_limit: bool,
    not_processed: u64,
    /// Bytes oxipng took off the PNG outputs; present only when it saved any, so that other
    /// summaries keep their shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    png_saved: Option<u64>,
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The NDJSON line for one result, or `None` for files that are not images.
pub(crate) fn json_line(r: &JobResult) -> Option<String> {
    let outputs = |v: &[Output]| -> Vec<JsonOutput<'_>> {
        v.iter()
            .map(|o| JsonOutput {
                path: path_str(&o.path),
                width: o.width,
                height: o.height,
                format: o.format.name(),
                bytes: o.bytes,
            })
            .collect()
    };
    let (status, outs, error, reason) = match &r.outcome {
        Ok(Outcome::Skipped(SkipReason::NotAnImage)) => return None,
        Ok(Outcome::Skipped(why)) => ("skipped", Vec::new(), None, Some(why.name())),
        Ok(Outcome::Written(o)) => ("written", outputs(o), None, None),
        Ok(Outcome::Planned(o)) => ("planned", outputs(o), None, Some("dry-run")),
        Err(e) => ("failed", Vec::new(), Some(e.to_string()), None),
    };
    let line = JsonFile {
        kind: "file",
        input: path_str(&r.src),
        status,
        outputs: outs,
        error,
        reason,
        warning: r.warning.as_deref(),
    };
    serde_json::to_string(&line).ok()
}

/// The final NDJSON line.
pub(crate) fn json_summary(s: &Summary) -> String {
    let st = &s.stages;
    let line = JsonSummary {
        kind: "summary",
        inputs: s.inputs,
        written: s.written,
        skipped: s.skipped,
        failed: s.failed,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        elapsed_s: s.elapsed.as_secs_f64(),
        images_per_s: s.images_per_s(),
        stages_s: JsonStages {
            decode: st.decode.as_secs_f64(),
            resize: st.resize.as_secs_f64(),
            encode: st.encode.as_secs_f64(),
            write: st.write.as_secs_f64(),
            read: st.read.as_secs_f64(),
        },
        planned: s.planned,
        workers: s.workers,
        interrupted: s.interrupted,
        time_limit: s.time_limit,
        not_processed: s.not_processed,
        png_saved: (s.png_saved > 0).then_some(s.png_saved),
    };
    serde_json::to_string(&line).expect("plain data serialises")
}

/// One input as the HTML report shows it. Collected only when `--report` is given.
#[derive(Debug, Clone)]
pub struct FileRecord {
    /// The input file.
    pub input: PathBuf,
    /// Its size in bytes.
    pub input_bytes: u64,
    /// Its displayed size, when the header was read.
    pub input_size: Option<(u32, u32)>,
    /// `written`, `skipped`, `failed` or `planned`.
    pub status: &'static str,
    /// What was (or would be) written.
    pub outputs: Vec<Output>,
    /// The error, for failures.
    pub error: Option<String>,
}

impl FileRecord {
    /// Builds the record of one result; `None` for files that are not images.
    pub fn from_result(r: &JobResult) -> Option<FileRecord> {
        let (status, outputs, error) = match &r.outcome {
            Ok(Outcome::Skipped(SkipReason::NotAnImage)) => return None,
            Ok(Outcome::Skipped(_)) => ("skipped", Vec::new(), None),
            Ok(Outcome::Written(o)) => ("written", o.clone(), None),
            Ok(Outcome::Planned(o)) => ("planned", o.clone(), None),
            Err(e) => ("failed", Vec::new(), Some(e.to_string())),
        };
        Some(FileRecord {
            input: r.src.clone(),
            input_bytes: r.bytes_in,
            input_size: r.input_size,
            status,
            outputs,
            error,
        })
    }
}

/// Receives every result on the main thread and prints as configured.
pub struct Reporter {
    records: Option<Vec<FileRecord>>,
    color: bool,
    json: bool,
    verbosity: Verbosity,
    bar: ProgressBar,
    summary: Summary,
    /// False for library callers and benches: nothing at all goes to stderr, not even the
    /// per-file errors and warnings `-q` keeps (the caller reads them from the summary).
    prints: bool,
}

impl Reporter {
    /// A reporter for the given run configuration.
    pub fn new(config: &Config) -> Reporter {
        let bar = if config.progress {
            progress_bar()
        } else {
            ProgressBar::hidden()
        };
        Reporter {
            records: config.report.as_ref().map(|_| Vec::new()),
            color: config.color,
            json: config.json,
            verbosity: config.verbosity,
            bar,
            summary: Summary {
                workers: config.workers.get(),
                ..Summary::default()
            },
            prints: true,
        }
    }

    /// A reporter that prints nothing (for benches and library callers).
    pub fn silent(workers: usize) -> Reporter {
        Reporter {
            records: None,
            color: false,
            json: false,
            verbosity: Verbosity::Quiet,
            bar: ProgressBar::hidden(),
            summary: Summary {
                workers,
                ..Summary::default()
            },
            prints: false,
        }
    }

    /// Updates the progress bar's total as the walker discovers images.
    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// Prints what the result calls for and adds it to the summary.
    pub fn record(&mut self, r: JobResult) {
        if let Some(records) = self.records.as_mut() {
            records.extend(FileRecord::from_result(&r));
        }
        if self.json {
            if let Some(line) = json_line(&r) {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
        }
        let line = match &r.outcome {
            Err(e) => Some(paint(&format!("{}: {e}", r.src.display()), RED, self.color)),
            _ if self.verbosity < Verbosity::Verbose => None,
            Ok(Outcome::Written(o)) | Ok(Outcome::Planned(o)) => o.first().map(|o| {
                let verb = if matches!(r.outcome, Ok(Outcome::Planned(_))) {
                    "would write"
                } else {
                    "wrote"
                };
                format!(
                    "{} -> {verb} {} ({}x{}, {})",
                    r.src.display(),
                    o.path.display(),
                    o.width,
                    o.height,
                    human_bytes(o.bytes)
                )
            }),
            Ok(Outcome::Skipped(why)) => Some(format!("{}: {}", r.src.display(), why.describe())),
        };
        // A file decoded through damage (--fail-on) is named even with -q: its output may be
        // partly grey.
        let warning = r.warning.as_ref().map(|w| {
            let text = format!("{}: warning: {w}", r.src.display());
            paint(&text, YELLOW, self.color)
        });
        for line in warning.into_iter().chain(line).filter(|_| self.prints) {
            self.bar.suspend(|| {
                let _ = writeln!(io::stderr().lock(), "{line}");
            });
        }
        if !matches!(r.outcome, Ok(Outcome::Skipped(SkipReason::NotAnImage))) {
            self.bar.inc(1);
        }
        self.summary.record(r);
        let s = &self.summary;
        let saved = s.bytes_in.saturating_sub(s.bytes_out);
        let failed = if s.failed > 0 {
            format!(", {} failed", s.failed)
        } else {
            String::new()
        };
        let secs = self.bar.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.bar.position() as f64 / secs
        } else {
            0.0
        };
        self.bar.set_message(format!(
            "{rate:.1} img/s, {} saved{failed}",
            human_bytes(saved)
        ));
    }

    /// Says that another run holds the manifest's lock and that this one waits for it (not
    /// with `--quiet`: waiting is not an error).
    pub(crate) fn waiting_for_manifest(&self, manifest: &Path, holder: &Holder<'_>) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let who = holder
            .pid
            .map_or_else(String::new, |pid| format!(" (pid {pid})"));
        self.warn(&format!(
            "another presize run{who} is building with {}; waiting for it to finish (lock {}, Ctrl-C stops)",
            manifest.display(),
            holder.lock.display()
        ));
    }

    /// Prints a warning that concerns the whole run (not one file), whatever the verbosity.
    pub fn warn(&self, message: &str) {
        if !self.prints {
            return;
        }
        self.bar.suspend(|| {
            let _ = writeln!(io::stderr().lock(), "presize: {message}");
        });
    }

    /// Takes the records collected for the HTML report (empty without `--report`).
    pub fn take_records(&mut self) -> Vec<FileRecord> {
        self.records.take().unwrap_or_default()
    }

    /// Ends the run: clears the bar, prints the summary, returns it.
    pub fn finish(mut self, elapsed: Duration, stop: Option<Stop>, not_processed: u64) -> Summary {
        self.bar.finish_and_clear();
        self.summary.elapsed = elapsed;
        self.summary.interrupted = stop.is_some();
        self.summary.time_limit = stop == Some(Stop::TimeLimit);
        self.summary.not_processed = if stop.is_some() { not_processed } else { 0 };
        if self.verbosity > Verbosity::Quiet {
            let mut err = io::stderr().lock();
            let _ = self.summary.render_styled(&mut err, self.color);
            if self.verbosity == Verbosity::Verbose {
                let _ = self.summary.render_stages(&mut err);
            }
        }
        if self.json {
            let _ = writeln!(io::stdout().lock(), "{}", json_summary(&self.summary));
        }
        self.summary
    }
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} images, eta {eta} ({msg})",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// The terminal table of `presize bench`: its title and header line.
pub(crate) fn bench_header(out: &mut impl Write, repeat: usize, write: bool) -> io::Result<()> {
    let outputs = if write {
        "written"
    } else {
        "encoded, not written"
    };
    writeln!(
        out,
        "presize bench: {repeat} run(s) per worker count, median shown; outputs {outputs}"
    )?;
    let heads: Vec<String> = bench::COLUMNS[..bench::TERMINAL_COLUMNS]
        .iter()
        .map(|c| format!("{:>w$}", c.head, w = c.width))
        .collect();
    writeln!(out, "{}", heads.join(" "))
}

/// One row of the `presize bench` terminal table.
pub(crate) fn bench_row(out: &mut impl Write, row: &BenchRow) -> io::Result<()> {
    let cells: Vec<String> = bench::COLUMNS[..bench::TERMINAL_COLUMNS]
        .iter()
        .map(|c| format!("{:>w$}", (c.cell)(row), w = c.width))
        .collect();
    writeln!(out, "{}", cells.join(" "))
}

/// `--watch`: the run is over and presize waits for changes to `roots` folders and files.
pub(crate) fn watching(roots: usize, quiet: bool) {
    if !quiet {
        eprintln!("presize: watching {roots} input(s) for changes (Ctrl-C to stop)");
    }
}

/// `--watch`: what changed, before the run that follows.
pub(crate) fn changed(paths: &[std::path::PathBuf], quiet: bool) {
    if quiet {
        return;
    }
    match paths {
        [] => eprintln!("presize: inputs changed"),
        [one] => eprintln!("presize: changed: {}", one.display()),
        _ => eprintln!("presize: {} files changed", paths.len()),
    }
}

/// What `presize manifest merge` did.
pub(crate) fn merged(parts: usize, sources: usize, output: &std::path::Path) {
    eprintln!(
        "presize: merged {parts} manifests ({sources} sources) into {}",
        output.display()
    );
}

/// The line under the `presize bench` terminal table.
pub(crate) fn bench_footer(out: &mut impl Write, first: &BenchRow) -> io::Result<()> {
    writeln!(
        out,
        "{} images per run ({} failed); speed-up and efficiency are relative to -j{}",
        first.images, first.failed, first.jobs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JobError;
    use std::path::PathBuf;

    fn written(name: &str, bytes_in: u64, bytes_out: u64) -> JobResult {
        JobResult {
            src: PathBuf::from(name),
            bytes_in,
            pixels_in: 0,
            input_size: None,
            outcome: Ok(Outcome::Written(vec![Output {
                path: PathBuf::from(format!("out/{name}")),
                width: 800,
                height: 600,
                format: Format::Jpeg,
                bytes: bytes_out,
                saved: 0,
            }])),
            stages: Stages::default(),
            rel: None,
            manifest: None,
            warning: None,
            group: 0,
        }
    }

    #[test]
    fn summary_counts_every_kind_of_result() {
        let mut s = Summary {
            workers: 2,
            elapsed: Duration::from_secs(2),
            ..Summary::default()
        };
        s.record(written("a.jpg", 4_000_000, 100_000));
        s.record(written("b.jpg", 1_000_000, 50_000));
        s.record(JobResult::failed(
            PathBuf::from("bad.jpg"),
            JobError::Decode {
                format: "JPEG",
                message: "truncated".into(),
            },
        ));
        s.record(JobResult {
            src: "c.jpg".into(),
            bytes_in: 5,
            pixels_in: 0,
            input_size: None,
            outcome: Ok(Outcome::Skipped(SkipReason::UpToDate)),
            stages: Stages::default(),
            rel: None,
            manifest: None,
            warning: None,
            group: 0,
        });
        s.record(JobResult {
            src: "notes.txt".into(),
            bytes_in: 5,
            pixels_in: 0,
            input_size: None,
            outcome: Ok(Outcome::Skipped(SkipReason::NotAnImage)),
            stages: Stages::default(),
            rel: None,
            manifest: None,
            warning: None,
            group: 0,
        });
        assert_eq!(
            (s.inputs, s.written, s.failed, s.skipped, s.ignored),
            (4, 2, 1, 1, 1)
        );
        assert_eq!((s.bytes_in, s.bytes_out), (5_000_000, 150_000));
        let mut text = Vec::new();
        s.render(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "presize: 4 images in 2.00 s (1.0 images/s, 2 workers)\n  written       2  5.0 MB -> 150.0 KB (-97%)\n  skipped       1  (outputs up to date; --overwrite redoes them)\n  failed        1\n  largest outputs: out/a.jpg (100.0 KB), out/b.jpg (50.0 KB)\nfailed files:\n  corrupt or truncated images (1):\n    bad.jpg: cannot decode JPEG: truncated\n"
        );
    }

    #[test]
    fn only_the_first_failures_are_kept_by_name() {
        let mut s = Summary::default();
        for i in 0..25 {
            s.record(JobResult::failed(
                PathBuf::from(format!("{i}.png")),
                JobError::Unsupported("x".into()),
            ));
        }
        assert_eq!(s.failed, 25);
        assert_eq!(s.failures.len(), LISTED_FAILURES);
        let mut text = Vec::new();
        s.render(&mut text).unwrap();
        assert!(
            String::from_utf8(text).unwrap().contains("... and 20 more"),
            "5 named per kind"
        );
    }

    #[test]
    fn every_kind_names_its_files_even_after_many_failures_of_another() {
        // Issue #13 item 12: 25 corrupt files came first, and the two images over the pixel
        // limit were summed up as "... and 2 more" without a name.
        let mut s = Summary::default();
        for i in 0..25 {
            s.record(JobResult::failed(
                PathBuf::from(format!("broken{i}.jpg")),
                JobError::Decode {
                    format: "JPEG",
                    message: "truncated".into(),
                },
            ));
        }
        for name in ["huge1.png", "huge2.png"] {
            s.record(JobResult::failed(
                PathBuf::from(name),
                JobError::TooLarge {
                    width: 20_000,
                    height: 20_000,
                    pixels: 400_000_000,
                    limit: 268_402_689,
                },
            ));
        }
        let mut text = Vec::new();
        s.render(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let too_large = &text[text.find("images over the pixel limit (2):").expect(&text)..];
        assert!(too_large.contains("\n    huge1.png: "), "{text}");
        assert!(too_large.contains("\n    huge2.png: "), "{text}");
        assert!(!too_large.contains("more"), "{text}");
        assert!(text.contains("    ... and 20 more\n"), "{text}");
    }

    #[test]
    fn json_lines_follow_the_documented_shape() {
        let line = json_line(&written("a.jpg", 10, 5)).unwrap();
        assert_eq!(
            line,
            r#"{"type":"file","input":"a.jpg","status":"written","outputs":[{"path":"out/a.jpg","width":800,"height":600,"format":"jpeg","bytes":5}],"error":null,"reason":null}"#
        );
        let fail = json_line(&JobResult::failed(
            "b.png".into(),
            JobError::Unsupported("odd".into()),
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&fail).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"], "unsupported: odd");
        let summary: serde_json::Value =
            serde_json::from_str(&json_summary(&Summary::default())).unwrap();
        for key in [
            "inputs",
            "written",
            "skipped",
            "failed",
            "bytes_in",
            "bytes_out",
            "elapsed_s",
            "images_per_s",
        ] {
            assert!(summary.get(key).is_some(), "{key}");
        }
        for key in ["decode", "resize", "encode", "write"] {
            assert!(summary["stages_s"].get(key).is_some(), "{key}");
        }
    }
}
