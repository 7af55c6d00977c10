//! The sweep (issue #13): presize and `vipsthumbnail` on every file of the public test suites,
//! each file judged as agree / presize-only failure / vips-only failure / size or pixel
//! disagreement. A disagreement must be on the accepted list, `tests/sweep/accepted.tsv`
//! (file, kind, reason), or the test fails. `tests/sweep/README.md` says how to get the suites.
//!
//! Opt-in, like the other tiers that run external programs: without `PRESIZE_SWEEP` the test
//! returns at once, so the default `cargo test` runs nothing outside presize.
//!
//! - `PRESIZE_SWEEP=DIR`: the folder holding the suites (every file under it is swept).
//! - `PRESIZE_SWEEP_BIN=PATH`: the presize binary to judge (default: the one this test was
//!   built with; build with `--release` for speed, or point at an older build to compare).
//! - `PRESIZE_SWEEP_REPORT=PATH`: also write every file's verdict there, tab-separated.
//!
//! Both tools make a PNG at most [`WIDTH`] pixels wide (never enlarged): `presize -w 256` and
//! `vipsthumbnail -s '256x>'`. Sizes must be equal; pixels are compared by PSNR over RGBA
//! (colour premultiplied by alpha, so colour under transparency does not count), both outputs
//! decoded to 8 bits, and must reach [`MIN_PSNR`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The width both tools shrink to.
const WIDTH: u32 = 256;

/// The lowest PSNR (dB) at which two outputs count as the same picture. Both tools resample
/// gamma-encoded values with Lanczos3 but shrink differently on the way (libjpeg-turbo's DCT
/// scaling against libvips' box pre-shrink), which costs up to a few dB on fine detail; a wrong
/// decode (colours, orientation, alpha, a missing plane) scores far lower. The measured
/// spread is in `tests/sweep/README.md`.
const MIN_PSNR: f64 = 30.0;

/// Seconds either tool may spend on one file.
const TIME_LIMIT: &str = "120";

/// What the two tools made of one file.
#[derive(Debug)]
enum Verdict {
    /// Same size, PSNR at least [`MIN_PSNR`].
    Agree(f64),
    /// Neither made an image.
    BothRefuse,
    /// vipsthumbnail made an image, presize failed (its message).
    PresizeOnlyFailure(String),
    /// presize made an image, vipsthumbnail failed (its message).
    VipsOnlyFailure(String),
    /// Both made an image, of different sizes (presize's, then vips').
    Size((u32, u32), (u32, u32)),
    /// Same size, PSNR under [`MIN_PSNR`].
    Pixels(f64),
}

impl Verdict {
    /// The kind, as written in `accepted.tsv`.
    fn kind(&self) -> &'static str {
        match self {
            Verdict::Agree(_) => "agree",
            Verdict::BothRefuse => "both-refuse",
            Verdict::PresizeOnlyFailure(_) => "presize-only",
            Verdict::VipsOnlyFailure(_) => "vips-only",
            Verdict::Size(..) => "size",
            Verdict::Pixels(_) => "pixels",
        }
    }

    /// Returns true if and only if the two tools disagree.
    fn is_disagreement(&self) -> bool {
        !matches!(self, Verdict::Agree(_) | Verdict::BothRefuse)
    }

    fn detail(&self) -> String {
        match self {
            Verdict::Agree(db) | Verdict::Pixels(db) => format!("{db:.1} dB"),
            Verdict::BothRefuse => String::new(),
            Verdict::PresizeOnlyFailure(m) | Verdict::VipsOnlyFailure(m) => m.clone(),
            Verdict::Size(p, v) => format!("presize {}x{}, vips {}x{}", p.0, p.1, v.0, v.1),
        }
    }
}

/// One output, or why there is none.
type Made = Result<image::DynamicImage, String>;

/// Runs presize on `src`, writing into `out`.
fn presize(bin: &Path, src: &Path, out: &Path) -> Made {
    let output = Command::new("timeout")
        .arg(TIME_LIMIT)
        .arg(bin)
        .args(["--progress", "never", "-q", "-j", "1", "-w"])
        .arg(WIDTH.to_string())
        .args(["-f", "png"])
        .arg(src)
        .arg("-o")
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run presize: {e}"))?;
    let made = fs::read_dir(out)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "png"));
    match made {
        Some(path) if output.status.success() => decode(&path),
        _ => Err(first_line(&output.stderr, output.status)),
    }
}

/// Runs `vipsthumbnail` on `src`, writing `out/vips.png`.
fn vips(src: &Path, out: &Path) -> Made {
    let path = out.join("vips.png");
    let output = Command::new("timeout")
        .arg(TIME_LIMIT)
        .arg("vipsthumbnail")
        .arg(src)
        .arg("-s")
        .arg(format!("{WIDTH}x>"))
        .arg("-o")
        .arg(&path)
        .env("VIPS_CONCURRENCY", "1")
        .output()
        .map_err(|e| format!("cannot run vipsthumbnail (Debian: libvips-tools): {e}"))?;
    if output.status.success() && path.exists() {
        decode(&path)
    } else {
        Err(first_line(&output.stderr, output.status))
    }
}

/// The first line of a tool's error output that is not a warning, else its exit status.
fn first_line(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("WARNING") && !l.starts_with("presize:"))
        .find(|l| !l.starts_with("vipsthumbnail: unable to thumbnail"))
        .map_or_else(
            || format!("no output ({status})"),
            |l| l.chars().take(160).collect(),
        )
}

fn decode(path: &Path) -> Made {
    image::ImageReader::open(path)
        .and_then(image::ImageReader::with_guessed_format)
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| format!("output does not decode: {e}"))
}

/// RGBA at 8 bits with colour premultiplied by alpha.
fn premultiplied(img: &image::DynamicImage) -> Vec<u8> {
    let mut rgba = img.to_rgba8().into_raw();
    for p in rgba.chunks_exact_mut(4) {
        let a = u16::from(p[3]);
        for c in &mut p[..3] {
            *c = u8::try_from((u16::from(*c) * a + 127) / 255).expect("≤ 255");
        }
    }
    rgba
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = se / a.len().max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

fn judge(bin: &Path, src: &Path) -> Verdict {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (p_out, v_out) = (dir.path().join("presize"), dir.path().join("vips"));
    fs::create_dir_all(&p_out).expect("folder");
    fs::create_dir_all(&v_out).expect("folder");
    match (presize(bin, src, &p_out), vips(src, &v_out)) {
        (Err(_), Err(_)) => Verdict::BothRefuse,
        (Err(p), Ok(_)) => Verdict::PresizeOnlyFailure(p),
        (Ok(_), Err(v)) => Verdict::VipsOnlyFailure(v),
        (Ok(p), Ok(v)) => {
            let (ps, vs) = ((p.width(), p.height()), (v.width(), v.height()));
            if ps != vs {
                return Verdict::Size(ps, vs);
            }
            let db = psnr(&premultiplied(&p), &premultiplied(&v));
            if db >= MIN_PSNR {
                Verdict::Agree(db)
            } else {
                Verdict::Pixels(db)
            }
        }
    }
}

/// Every file under `dir`, sorted, as paths relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("readable suites folder").flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if kind.is_file() {
                out.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `accepted.tsv`: (file, kind) → reason. Lines starting with `#` and blank lines are skipped.
fn accepted() -> BTreeMap<(String, String), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sweep/accepted.tsv");
    let text = fs::read_to_string(&path).expect("tests/sweep/accepted.tsv");
    let mut list = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, kind, reason] = fields[..] else {
            panic!("accepted.tsv line {}: want file, kind, reason", n + 1);
        };
        assert!(
            ["presize-only", "vips-only", "size", "pixels"].contains(&kind),
            "accepted.tsv line {}: unknown kind {kind}",
            n + 1
        );
        assert!(
            !reason.trim().is_empty(),
            "accepted.tsv line {}: no reason",
            n + 1
        );
        list.insert((file.to_string(), kind.to_string()), reason.to_string());
    }
    list
}

#[test]
#[ignore = "sweep tier: PRESIZE_SWEEP=DIR cargo test --test sweep -- --ignored --nocapture"]
fn presize_agrees_with_vipsthumbnail_on_the_public_suites() {
    // Listed as ignored in the default run (it needs the suites and vipsthumbnail); asked for
    // with --ignored, a missing folder is a failure, never a silent pass.
    let dir = std::env::var_os("PRESIZE_SWEEP")
        .map(PathBuf::from)
        .expect("PRESIZE_SWEEP=DIR must name the suites folder (tests/sweep/README.md)");
    let bin = std::env::var_os("PRESIZE_SWEEP_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_presize")),
        PathBuf::from,
    );
    let accepted = accepted();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut agreeing = Vec::new();
    let mut report = String::from("file\tkind\taccepted\tdetail\n");
    let files = files(&dir);
    for file in &files {
        let verdict = judge(&bin, &dir.join(file));
        let name = file.to_string_lossy().into_owned();
        let kind = verdict.kind();
        let is_accepted = accepted.contains_key(&(name.clone(), kind.to_string()));
        let entry = counts.entry(kind).or_default();
        entry.0 += 1;
        if is_accepted {
            entry.1 += 1;
        }
        if let Verdict::Agree(db) = verdict {
            agreeing.push(db);
        }
        if verdict.is_disagreement() {
            let mark = if is_accepted {
                "accepted"
            } else {
                "UNEXPECTED"
            };
            eprintln!("{mark:10} {kind:12} {name}: {}", verdict.detail());
            if !is_accepted {
                unexpected.push(name.clone());
            }
        }
        let _ = writeln!(
            report,
            "{name}\t{kind}\t{is_accepted}\t{}",
            verdict.detail().replace('\t', " ")
        );
    }
    if let Some(path) = std::env::var_os("PRESIZE_SWEEP_REPORT") {
        fs::write(path, &report).expect("writable report");
    }
    // An entry whose file was swept and came out otherwise (a file not in this folder is not
    // judged: a sweep of one suite leaves the others' entries alone).
    let stale: Vec<_> = accepted
        .keys()
        .filter(|(file, kind)| {
            report.lines().any(|l| {
                let mut f = l.split('\t');
                f.next() == Some(file.as_str()) && f.next() != Some(kind.as_str())
            })
        })
        .collect();
    for (file, kind) in &stale {
        eprintln!("accepted.tsv lists {file} as {kind}, which it no longer is");
    }
    // Bit-identical outputs (infinite PSNR) apart, the spread that justifies MIN_PSNR.
    let identical = agreeing.iter().filter(|db| db.is_infinite()).count();
    agreeing.retain(|db| db.is_finite());
    agreeing.sort_by(f64::total_cmp);
    let percentile = |p: usize| agreeing.get(agreeing.len() * p / 100).copied();
    eprintln!(
        "\nsweep of {} files in {} with {}; agreeing: {identical} bit-identical, {} others with \
         PSNR min {:.1}, 1st percentile {:.1}, 5th {:.1}, median {:.1} dB",
        files.len(),
        dir.display(),
        bin.display(),
        agreeing.len(),
        agreeing.first().copied().unwrap_or(f64::NAN),
        percentile(1).unwrap_or(f64::NAN),
        percentile(5).unwrap_or(f64::NAN),
        percentile(50).unwrap_or(f64::NAN),
    );
    eprintln!("\n| verdict | files | accepted |\n|---|---|---|");
    for kind in [
        "agree",
        "both-refuse",
        "presize-only",
        "vips-only",
        "size",
        "pixels",
    ] {
        let (n, ok) = counts.get(kind).copied().unwrap_or_default();
        eprintln!("| {kind} | {n} | {ok} |");
    }
    eprintln!("| total | {} | |", files.len());
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} disagreement(s) not on tests/sweep/accepted.tsv, {} stale entries",
        unexpected.len(),
        stale.len()
    );
}
