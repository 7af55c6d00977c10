//! Mutation test (issue 5, "survives anything"): thousands of broken inputs, made by truncating,
//! bit-flipping, overwriting, splicing and re-chunking the real image files committed under
//! `testdata/`, run through the real `presize` binary as a user would run it.
//!
//! Every case must end in exactly one reported outcome: written (and the output decodes at the
//! size the report claims) or failed with a message. (A file whose content and name are both not
//! an image's is instead ignored as "not an image"; cases keep their seed's image extension, so
//! a destroyed magic number is a failure.) The exit code must agree with the records; no panic
//! may escape, nor even happen and be caught by a worker (that is a bug too: the file should be
//! refused with a reason); no process may die on a signal or hang; no temporary or unreported
//! file may be left in the output folder. Batches take turns through [`PROFILES`], so broken
//! pixels reach every encoder and fit mode.
//!
//! Each case is a pure function of (run seed, case index) and the seed files (adding a file to
//! `testdata/` changes the cases). Its file name says the index, the mutation and the seed file,
//! e.g. `case-00123-flip-basn3p08.png`, so a failure is reproduced by re-running the same count
//! (or that case alone, see `PRESIZE_MUTATION_FIRST`), or directly from the input folder the
//! test keeps on failure.
//! Inputs that ever broke presize are kept in `testdata/regress/` and run by their own test.
//!
//! Knobs (environment variables):
//! - `PRESIZE_MUTATION_CASES=N`: number of cases (default [`DEFAULT_CASES`]).
//! - `PRESIZE_MUTATION_FIRST=I`: skip the cases before index `I`; with `CASES=I+1` this rebuilds
//!   and runs case `I` alone, with the settings of its batch.
//! - `PRESIZE_MUTATION_CORPUS=/path`: also use every file under this folder as a seed (the full
//!   corpus is not in the repository, so CI runs without it).
//! - `PRESIZE_MUTATION_SEED=N`: another run seed, for a different set of cases.
//! - `PRESIZE_MUTATION_BATCH_SECS=S`: wall-clock bound of one batch (default
//!   [`DEFAULT_BATCH_SECS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use presize::Format;
use serde_json::Value;

/// Cases in the default run: one batch per profile, sized so that a debug `cargo test` stays
/// well under two minutes on two cores (about 20 s of CPU, 25-50 s of wall time measured).
const DEFAULT_CASES: usize = 1800;
/// Cases per run of the binary: large enough that the pool is busy, small enough that a hang
/// points at a few hundred files.
const BATCH: usize = 300;
/// Wall-clock bound of one batch. A healthy debug batch takes a few seconds.
const DEFAULT_BATCH_SECS: u64 = 90;
/// The run seed used unless `PRESIZE_MUTATION_SEED` is set.
const DEFAULT_SEED: u64 = 0x5EED_0005;
/// Seeds larger than this are only truncated (decoding many flips of a large photo is slow in a
/// debug build and finds little that small files do not).
const LARGE_SEED: usize = 64 * 1024;
/// The `testdata/` folders whose files seed the default run.
const SEED_DIRS: [&str; 6] = [
    "formats",
    "photos",
    "orientation",
    "bad",
    "mutation-seeds",
    "regress",
];
/// What presize's JSON error says when a worker caught a panic.
const CAUGHT_PANIC: &str = "internal error (panic)";

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// splitmix64: tiny, fast and good enough to spread mutations; no dependency needed.
struct Rng(u64);

impl Rng {
    /// The generator of one case: independent of every other case, so any case can be rebuilt
    /// alone from its index.
    fn for_case(run_seed: u64, index: u64) -> Rng {
        let mut rng = Rng(run_seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; 0 when `n` is 0.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// A real file that cases are made from.
struct Seed {
    /// The file stem, cleaned for use inside case names.
    stem: String,
    /// The original extension (cases keep it: presize sniffs content, but the name still
    /// matters for output naming).
    ext: String,
    /// The format its content sniffs as, or `None` for files that are not images.
    format: Option<Format>,
    bytes: Vec<u8>,
}

impl Seed {
    fn load(path: &Path) -> Option<Seed> {
        let bytes = fs::read(path).ok()?;
        let name = |s: Option<&std::ffi::OsStr>| {
            s.map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let stem: String = name(path.file_stem())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        let ext = name(path.extension());
        Some(Seed {
            stem,
            ext: if ext.is_empty() { "bin".into() } else { ext },
            format: Format::sniff(&bytes),
            bytes,
        })
    }

    fn is_large(&self) -> bool {
        self.bytes.len() > LARGE_SEED
    }
}

/// Every regular file below `dir`, sorted so that seed order (and so every case) is stable.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => found.push(path),
                _ => {}
            }
        }
    }
    found.sort();
    found
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The seeds grouped by format. Non-images are dropped: mutating text finds nothing, and the
/// cases that destroy the magic bytes already cover "not an image".
struct SeedBank {
    by_format: Vec<(Format, Vec<Seed>)>,
}

impl SeedBank {
    fn from_dirs(dirs: &[PathBuf]) -> SeedBank {
        let mut groups: BTreeMap<&'static str, (Format, Vec<Seed>)> = BTreeMap::new();
        for dir in dirs {
            for path in files_below(dir) {
                let Some(seed) = Seed::load(&path) else {
                    continue;
                };
                if let Some(format) = seed.format {
                    groups
                        .entry(format.name())
                        .or_insert_with(|| (format, Vec::new()))
                        .1
                        .push(seed);
                }
            }
        }
        SeedBank {
            by_format: groups.into_values().collect(),
        }
    }

    /// The committed seeds, plus the files under `PRESIZE_MUTATION_CORPUS` when it is set.
    fn for_run() -> SeedBank {
        let mut dirs: Vec<PathBuf> = SEED_DIRS.iter().map(|d| testdata().join(d)).collect();
        if let Some(corpus) = std::env::var_os("PRESIZE_MUTATION_CORPUS") {
            let corpus = PathBuf::from(corpus);
            assert!(
                corpus.is_dir(),
                "PRESIZE_MUTATION_CORPUS={} is not a folder",
                corpus.display()
            );
            dirs.push(corpus);
        }
        SeedBank::from_dirs(&dirs)
    }

    fn formats(&self) -> Vec<&'static str> {
        self.by_format.iter().map(|(f, _)| f.name()).collect()
    }

    fn len(&self) -> usize {
        self.by_format.iter().map(|(_, s)| s.len()).sum()
    }

    /// A format with equal odds for each (PNG has many seeds, TIFF few; both deserve as many
    /// cases), then a seed of it, mostly a small one.
    fn pick(&self, rng: &mut Rng) -> (&[Seed], &Seed) {
        let (_, seeds) = rng.pick(&self.by_format);
        let small: Vec<&Seed> = seeds.iter().filter(|s| !s.is_large()).collect();
        let large: Vec<&Seed> = seeds.iter().filter(|s| s.is_large()).collect();
        let seed = if !small.is_empty() && (large.is_empty() || !rng.chance(1, 8)) {
            *rng.pick(&small)
        } else {
            *rng.pick(&large)
        };
        (seeds, seed)
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mutation {
    /// Cut the file at a random length (often near the end, where decoders are mid-image).
    Truncate,
    /// Flip 1 to 8 random bits.
    Flip,
    /// Overwrite a random run of up to 32 bytes with random bytes.
    Overwrite,
    /// The head of one file and the tail of another of the same format.
    Splice,
    /// Repeat a chunk of the file right after itself.
    Duplicate,
    /// Remove a chunk of the file.
    Delete,
    /// Set header bytes (the JPEG SOF dimensions, or bytes 12..64 where other formats keep
    /// theirs) to 0x00 / 0xFF / 0x7F / 0x80: zero or huge dimensions, counts and offsets.
    Extreme,
    /// Two or three of the above, one after another.
    Mix,
}

const ALL: [Mutation; 8] = [
    Mutation::Truncate,
    Mutation::Flip,
    Mutation::Overwrite,
    Mutation::Splice,
    Mutation::Duplicate,
    Mutation::Delete,
    Mutation::Extreme,
    Mutation::Mix,
];

/// The mutations `Mix` chains (no splice: it needs a second file).
const SIMPLE: [Mutation; 6] = [
    Mutation::Truncate,
    Mutation::Flip,
    Mutation::Overwrite,
    Mutation::Duplicate,
    Mutation::Delete,
    Mutation::Extreme,
];

impl Mutation {
    fn tag(self) -> &'static str {
        match self {
            Mutation::Truncate => "trunc",
            Mutation::Flip => "flip",
            Mutation::Overwrite => "overwrite",
            Mutation::Splice => "splice",
            Mutation::Duplicate => "dup",
            Mutation::Delete => "delete",
            Mutation::Extreme => "extreme",
            Mutation::Mix => "mix",
        }
    }

    fn apply(self, rng: &mut Rng, data: &mut Vec<u8>, same_format: &[Seed]) {
        let len = data.len();
        if len == 0 {
            return;
        }
        match self {
            Mutation::Truncate => {
                let cut = if rng.chance(1, 2) {
                    rng.below(len)
                } else {
                    len - 1 - rng.below(len / 10 + 1)
                };
                data.truncate(cut);
            }
            Mutation::Flip => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(len);
                    data[at] ^= 1 << rng.below(8);
                }
            }
            Mutation::Overwrite => {
                let run = 1 + rng.below(len.min(32));
                let at = rng.below(len - run + 1);
                for b in &mut data[at..at + run] {
                    *b = rng.byte();
                }
            }
            Mutation::Splice => {
                let other = &rng.pick(same_format).bytes;
                let head = rng.below(len + 1);
                // Half the time the tail starts at the same offset, so the result has the length
                // and layout of a real file of this format.
                let tail = if head <= other.len() && rng.chance(1, 2) {
                    head
                } else {
                    rng.below(other.len() + 1)
                };
                data.truncate(head);
                data.extend_from_slice(&other[tail..]);
            }
            Mutation::Duplicate | Mutation::Delete => {
                let chunk = 1 + rng.below((len / 4).max(1));
                let at = rng.below(len - chunk + 1);
                if self == Mutation::Duplicate {
                    let copy = data[at..at + chunk].to_vec();
                    data.splice(at + chunk..at + chunk, copy);
                } else {
                    data.drain(at..at + chunk);
                }
            }
            Mutation::Extreme => {
                let value = *rng.pick(&[0x00u8, 0xFF, 0x7F, 0x80]);
                let (from, to) = match jpeg_dimensions_at(data) {
                    Some(at) if rng.chance(3, 4) => (at, at + 4),
                    _ => (12, 64),
                };
                let (from, to) = (from.min(len), to.min(len));
                if from < to {
                    let run = 1 + rng.below(4);
                    let at = from + rng.below(to - from);
                    for b in data.iter_mut().skip(at).take(run) {
                        *b = value;
                    }
                }
            }
            Mutation::Mix => {
                for _ in 0..2 + rng.below(2) {
                    rng.pick(&SIMPLE).apply(rng, data, same_format);
                }
            }
        }
    }
}

/// Where the height and width of the first JPEG SOF segment start, if the data has one: the
/// dimensions are usually past byte 64 (after EXIF), so `Extreme` aims at them directly.
fn jpeg_dimensions_at(data: &[u8]) -> Option<usize> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let sof = data.windows(2).position(|w| {
        w[0] == 0xFF && matches!(w[1], 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
    })?;
    Some(sof + 5)
}

/// One input file of the test.
struct Case {
    name: String,
    bytes: Vec<u8>,
}

/// Builds case `index` of the run: a pure function of its arguments.
fn make_case(bank: &SeedBank, run_seed: u64, index: usize) -> Case {
    let mut rng = Rng::for_case(run_seed, index as u64);
    let (same_format, seed) = bank.pick(&mut rng);
    let mutation = if seed.is_large() {
        Mutation::Truncate
    } else {
        *rng.pick(&ALL)
    };
    let mut bytes = seed.bytes.clone();
    mutation.apply(&mut rng, &mut bytes, same_format);
    Case {
        name: format!(
            "case-{index:05}-{}-{}.{}",
            mutation.tag(),
            seed.stem,
            seed.ext
        ),
        bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary and checking what it reports

/// What one run of the binary did, for the totals.
#[derive(Default)]
struct Tally {
    written: usize,
    failed: usize,
    ignored: usize,
    /// Inputs whose decoder or encoder panicked and the worker caught it. The file did fail with
    /// an error and the run went on, but the panic is a bug, so it is also a problem.
    caught_panics: Vec<String>,
    /// Everything that broke the contract, one sentence each.
    problems: Vec<String>,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// The arguments of every run (besides input and `-o`), also printed in reproduction commands.
const ARGS: [&str; 8] = [
    "-j",
    "2",
    "--json",
    "-v",
    "--progress",
    "never",
    "--color",
    "never",
];

/// Output settings, one per batch in turn, so that broken pixels also reach every encoder, every
/// fit mode, the full-size JPEG path and tiny targets (3 % of a 9-pixel image rounds to 0).
const PROFILES: [&[&str]; 6] = [
    &["-w", "64", "--format", "same"],
    &["-s", "48x48", "--fit", "cover", "--format", "jpeg"],
    &[
        "-s",
        "40x30",
        "--fit",
        "contain",
        "--format",
        "webp",
        "--background",
        "#ff8800",
    ],
    &[
        "-w",
        "3%",
        "--format",
        "png",
        "--no-fast-shrink",
        "--filter",
        "nearest",
    ],
    &[
        "-H",
        "33",
        "--format",
        "webp",
        "--lossless",
        "--filter",
        "mitchell",
        "--fast",
    ],
    &[
        "-s",
        "50x20",
        "--fit",
        "fill",
        "--format",
        "tiff",
        "--upscale",
    ],
];

/// Runs presize on the folder `input`, whose files are `expected`, and checks every promise.
/// `work` receives the output folder and the captured stdout/stderr.
fn run_and_check(
    input: &Path,
    expected: &BTreeSet<String>,
    profile: &[&str],
    work: &Path,
    bound: Duration,
) -> Tally {
    let out = work.join("out");
    let stdout_path = work.join("stdout.ndjson");
    let stderr_path = work.join("stderr.txt");
    let mut tally = Tally::default();
    // Output goes to files, not pipes: a full pipe can never stall the child, and whatever it
    // printed before a hang is still there to read.
    let spawned = Command::new(env!("CARGO_BIN_EXE_presize"))
        .arg(input)
        .arg("-o")
        .arg(&out)
        .args(ARGS)
        .args(profile)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("create stderr file"))
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            tally.problems.push(format!("cannot start presize: {e}"));
            return tally;
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > bound => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tally.problems.push(format!("cannot wait for presize: {e}"));
                return tally;
            }
        }
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();

    // Ignored inputs (not an image) are named only on stderr, with -v.
    let mut ignored = BTreeSet::new();
    for line in stderr.lines() {
        if let Some(path) = line.strip_suffix(": not an image, ignored") {
            ignored.insert(file_name(path));
        }
        if line.contains("panicked at") {
            tally
                .problems
                .push(format!("a panic message reached stderr: {line}"));
        }
    }
    tally.ignored = ignored.len();

    let mut records: BTreeMap<String, Value> = BTreeMap::new();
    let mut summaries = Vec::new();
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                tally
                    .problems
                    .push(format!("stdout line {} is not JSON ({e}): {line}", i + 1));
                continue;
            }
        };
        match value["type"].as_str() {
            Some("file") => {
                let name = file_name(value["input"].as_str().unwrap_or_default());
                if ignored.contains(&name) {
                    tally
                        .problems
                        .push(format!("{name}: both a JSON record and 'not an image'"));
                }
                if records.insert(name.clone(), value).is_some() {
                    tally.problems.push(format!("{name}: two JSON records"));
                }
            }
            Some("summary") => summaries.push((i, value)),
            _ => tally
                .problems
                .push(format!("stdout line of no known type: {line}")),
        }
    }

    match status {
        None => tally.problems.push(format!(
            "timed out after {} s (killed); inputs still without a record: {}",
            bound.as_secs(),
            list(
                expected
                    .iter()
                    .filter(|n| !records.contains_key(*n) && !ignored.contains(*n))
            )
        )),
        Some(status) => check_status(status, &records, &mut tally),
    }

    for name in expected {
        if !records.contains_key(name) && !ignored.contains(name) && status.is_some() {
            tally
                .problems
                .push(format!("{name}: no record, neither in JSON nor as ignored"));
        }
    }
    for name in records.keys().chain(&ignored) {
        if !expected.contains(name) {
            tally
                .problems
                .push(format!("{name}: reported, but is not an input"));
        }
    }

    let mut outputs = BTreeSet::new();
    for (name, record) in &records {
        check_record(name, record, work, &mut outputs, &mut tally);
    }
    check_out_dir(&out, &outputs, &mut tally);

    if status.is_some() {
        match summaries.as_slice() {
            [(at, summary)] => {
                if *at + 1 != lines.len() {
                    tally
                        .problems
                        .push("the summary is not the last stdout line".into());
                }
                let count = |key: &str| summary[key].as_u64().unwrap_or(u64::MAX);
                let expect = [
                    ("inputs", records.len()),
                    ("written", tally.written),
                    ("failed", tally.failed),
                    ("skipped", 0),
                ];
                for (key, want) in expect {
                    if count(key) != want as u64 {
                        tally.problems.push(format!(
                            "summary says {key} = {}, the file records say {want}",
                            summary[key]
                        ));
                    }
                }
            }
            other => tally.problems.push(format!(
                "{} summary lines on stdout, want exactly 1",
                other.len()
            )),
        }
    }
    tally
}

/// Exit status: 0 (all written) or 1 (some failed), agreeing with the records; never a panic
/// (101) or a signal (abort, segfault, out-of-memory kill).
fn check_status(status: ExitStatus, records: &BTreeMap<String, Value>, tally: &mut Tally) {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        tally
            .problems
            .push(format!("presize was killed by signal {signal}"));
        return;
    }
    let any_failed = records.values().any(|r| r["status"] == "failed");
    let want = if any_failed { 1 } else { 0 };
    match status.code() {
        Some(code) if code == want => {}
        Some(101) => tally.problems.push("a panic escaped: exit code 101".into()),
        code => tally.problems.push(format!(
            "exit code {code:?}, want {want} (some input failed: {any_failed})"
        )),
    }
}

/// One file record: written with outputs that decode at the reported size, or failed with a
/// message.
fn check_record(
    name: &str,
    record: &Value,
    work: &Path,
    outputs: &mut BTreeSet<PathBuf>,
    tally: &mut Tally,
) {
    match record["status"].as_str() {
        Some("failed") => {
            tally.failed += 1;
            let error = record["error"].as_str().unwrap_or_default();
            if error.trim().is_empty() {
                tally
                    .problems
                    .push(format!("{name}: failed without an error message"));
            }
            // The pool turns a panic into this failure so the run survives, but a panic is
            // still a bug: presize should have refused the input (or output) with a reason.
            if error.contains(CAUGHT_PANIC) {
                tally.caught_panics.push(format!("{name}: {error}"));
                tally
                    .problems
                    .push(format!("{name}: panicked (caught by the worker): {error}"));
            }
        }
        Some("written") => {
            tally.written += 1;
            let Some(list) = record["outputs"].as_array().filter(|l| !l.is_empty()) else {
                tally
                    .problems
                    .push(format!("{name}: written, but lists no output"));
                return;
            };
            for o in list {
                let path = work.join(o["path"].as_str().unwrap_or_default());
                outputs.insert(path.clone());
                if let Err(why) = check_output(&path, o) {
                    tally.problems.push(format!("{name}: output {why}"));
                }
            }
        }
        other => tally
            .problems
            .push(format!("{name}: status {other:?} in a fresh output folder")),
    }
}

/// A written output exists, has the reported byte count, and decodes at the reported size.
fn check_output(path: &Path, o: &Value) -> Result<(), String> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| format!("{shown} is missing: {e}"))?;
    if Some(meta.len()) != o["bytes"].as_u64() {
        return Err(format!(
            "{shown} has {} bytes, the report says {}",
            meta.len(),
            o["bytes"]
        ));
    }
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("{shown} cannot be opened: {e}"))?
        .decode()
        .map_err(|e| format!("{shown} does not decode: {e}"))?;
    let claimed = (o["width"].as_u64(), o["height"].as_u64());
    let actual = (Some(u64::from(img.width())), Some(u64::from(img.height())));
    if claimed != actual {
        return Err(format!(
            "{shown} decodes as {}x{}, the report says {}x{}",
            img.width(),
            img.height(),
            o["width"],
            o["height"]
        ));
    }
    Ok(())
}

/// The output folder holds exactly the reported outputs: no temporary file, no stray output.
fn check_out_dir(out: &Path, outputs: &BTreeSet<PathBuf>, tally: &mut Tally) {
    for path in files_below(out) {
        let name = file_name(&path.to_string_lossy());
        if name.starts_with(".presize-") || name.ends_with(".part") {
            tally
                .problems
                .push(format!("temporary file left behind: {}", path.display()));
        } else if !outputs.contains(&path) {
            tally
                .problems
                .push(format!("output no record mentions: {}", path.display()));
        }
    }
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The first 20 names, and how many more there are.
fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    match names.len() {
        0 => "none".into(),
        n if n <= 20 => names.join(", "),
        n => format!("{}, and {} more", names[..20].join(", "), n - 20),
    }
}

/// Keeps a failing batch's inputs where a developer can find them, and says how to rerun it.
fn keep_for_repro(label: &str, input: &Path, profile: &[&str]) -> String {
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mutation-failures")
        .join(label);
    let _ = fs::remove_dir_all(&kept);
    let copied = fs::create_dir_all(&kept).is_ok()
        && files_below(input).iter().all(|f| {
            let to = kept.join(f.file_name().unwrap_or_default());
            fs::copy(f, to).is_ok()
        });
    let at = if copied { &kept } else { input };
    format!(
        "inputs kept in {}; reproduce with: {} {} -o /tmp/presize-repro {} {}",
        at.display(),
        env!("CARGO_BIN_EXE_presize"),
        at.display(),
        ARGS.join(" "),
        profile.join(" ")
    )
}

/// Prints the problems of one batch (at most 30 lines) and returns whether there were any.
fn report(label: &str, input: &Path, profile: &[&str], tally: &Tally) -> bool {
    if tally.problems.is_empty() {
        return false;
    }
    eprintln!("{label}: {} problem(s)", tally.problems.len());
    for p in tally.problems.iter().take(30) {
        eprintln!("  {p}");
    }
    eprintln!("  {}", keep_for_repro(label, input, profile));
    true
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn mutated_real_files_never_crash_hang_or_go_unreported() {
    let started = Instant::now();
    let bank = SeedBank::for_run();
    let cases = env_number("PRESIZE_MUTATION_CASES", DEFAULT_CASES as u64) as usize;
    let from = env_number("PRESIZE_MUTATION_FIRST", 0) as usize;
    let run_seed = env_number("PRESIZE_MUTATION_SEED", DEFAULT_SEED);
    let bound = Duration::from_secs(env_number(
        "PRESIZE_MUTATION_BATCH_SECS",
        DEFAULT_BATCH_SECS,
    ));
    let (mut written, mut failed, mut ignored, mut caught) = (0, 0, 0, 0);
    let mut slowest = Duration::ZERO;
    let mut broken = Vec::new();
    // Batch `b` holds cases `b * BATCH ..` and uses profile `b`, also when the run starts late.
    for b in from / BATCH..cases.div_ceil(BATCH) {
        let label = format!("seed-{run_seed:x}-batch-{b:03}");
        let work = tempfile::tempdir().expect("temporary folder");
        let input = work.path().join("in");
        fs::create_dir(&input).expect("create input folder");
        let mut expected = BTreeSet::new();
        for index in (b * BATCH).max(from)..((b + 1) * BATCH).min(cases) {
            let case = make_case(&bank, run_seed, index);
            fs::write(input.join(&case.name), &case.bytes).expect("write case");
            expected.insert(case.name);
        }
        let batch_started = Instant::now();
        let profile = PROFILES[b % PROFILES.len()];
        let tally = run_and_check(&input, &expected, profile, work.path(), bound);
        slowest = slowest.max(batch_started.elapsed());
        written += tally.written;
        failed += tally.failed;
        ignored += tally.ignored;
        caught += tally.caught_panics.len();
        if report(&label, &input, profile, &tally) {
            broken.push(label);
        }
    }
    eprintln!(
        "mutation: cases {from}..{cases} from {} seeds ({}), run seed {run_seed:#x}: {written} written, \
         {failed} failed, {ignored} not images, {caught} caught panics; {:.1} s in all, \
         slowest batch {:.1} s",
        bank.len(),
        bank.formats().join(" "),
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    assert!(
        broken.is_empty(),
        "presize broke on mutated inputs in {}; see the lines above",
        broken.join(", ")
    );
}

#[test]
fn inputs_that_once_broke_presize_now_fail_cleanly() {
    let regress = testdata().join("regress");
    let expected: BTreeSet<String> = files_below(&regress)
        .iter()
        .map(|p| file_name(&p.to_string_lossy()))
        .collect();
    let bound = Duration::from_secs(env_number(
        "PRESIZE_MUTATION_BATCH_SECS",
        DEFAULT_BATCH_SECS,
    ));
    let mut broken = Vec::new();
    for (i, profile) in PROFILES.iter().enumerate() {
        let work = tempfile::tempdir().expect("temporary folder");
        let tally = run_and_check(&regress, &expected, profile, work.path(), bound);
        let label = format!("regress-profile-{i}");
        if report(&label, &regress, profile, &tally) {
            broken.push(label);
        }
    }
    assert!(
        broken.is_empty(),
        "presize broke on a file in testdata/regress/ in {}; see the lines above",
        broken.join(", ")
    );
}

#[test]
fn a_case_is_a_pure_function_of_seed_and_index() {
    let bank = SeedBank::for_run();
    let a = make_case(&bank, 7, 1234);
    let b = make_case(&bank, 7, 1234);
    assert_eq!((&a.name, &a.bytes), (&b.name, &b.bytes));
    assert!(a.name.starts_with("case-01234-"), "{}", a.name);
    let others: Vec<Case> = (0..20).map(|i| make_case(&bank, 7, i)).collect();
    let distinct: BTreeSet<&[u8]> = others.iter().map(|c| c.bytes.as_slice()).collect();
    assert!(distinct.len() > 15, "cases should differ from each other");
}

#[test]
fn committed_seeds_cover_every_format_presize_reads() {
    let bank = SeedBank::from_dirs(&SEED_DIRS.map(|d| testdata().join(d)));
    assert_eq!(
        bank.formats(),
        ["bmp", "gif", "jpeg", "png", "tiff", "webp"],
        "every format needs committed seeds"
    );
    // Every kind of mutation shows up in a default-sized run.
    let tags: BTreeSet<String> = (0..200)
        .map(|i| make_case(&bank, DEFAULT_SEED, i).name)
        .filter_map(|n| n.split('-').nth(2).map(str::to_string))
        .collect();
    let all: BTreeSet<String> = ALL.iter().map(|m| m.tag().to_string()).collect();
    assert_eq!(tags, all);
}

#[test]
fn extreme_mutation_aims_at_jpeg_dimensions() {
    // SOI, APP0 stub, then SOF0: FF C0, length, precision, height 0x0010, width 0x0020.
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x20,
    ];
    assert_eq!(jpeg_dimensions_at(&jpeg), Some(11));
    assert_eq!(jpeg_dimensions_at(b"\x89PNG\r\n\x1a\n"), None);
}
