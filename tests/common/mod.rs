//! Shared helpers for the integration tests in `tests/cli.rs`.
//!
//! `TestTree` builds a throw-away input folder on `tempfile` and *generates* the images the tests
//! need (gradients and patterns of known size, with or without alpha), so most tests depend on
//! no binary fixture. The free functions decode outputs and compare pixels.

// Each integration-test crate compiles this module on its own and may not use every helper.
#![allow(dead_code)]

pub(crate) mod avif_container;
pub(crate) mod meta;
pub(crate) mod tools;

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::Value;

/// The repository's `testdata/` folder.
pub(crate) fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// A `presize` command with no progress bar, ready for arguments.
pub(crate) fn presize() -> Command {
    let mut cmd = Command::cargo_bin("presize").expect("the presize binary is built");
    cmd.arg("--progress").arg("never");
    cmd
}

/// The pixel function of the default gradient: smooth in both directions, different in every
/// channel, so transposed or mirrored outputs are detectable.
pub(crate) fn gradient_pixel(x: u32, y: u32, w: u32, h: u32) -> Rgb<u8> {
    let fx = f64::from(x) / f64::from(w.max(2) - 1);
    let fy = f64::from(y) / f64::from(h.max(2) - 1);
    let c = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Rgb([c(fx), c(fy), c(1.0 - (fx + fy) / 2.0)])
}

/// A `w`×`h` RGB gradient image.
pub(crate) fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| gradient_pixel(x, y, w, h))
}

/// Encodes `img` as a JPEG with the `image` crate's encoder.
pub(crate) fn jpeg_bytes(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("JPEG encoding of an in-memory image");
    out
}

/// Encodes any image in a lossless format (PNG, TIFF, BMP, …) with the `image` crate.
pub(crate) fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("{format:?} encoding of an in-memory image: {e}"));
    out.into_inner()
}

/// Encodes any image as PNG.
pub(crate) fn png_bytes(img: &DynamicImage) -> Vec<u8> {
    encoded(img, ImageFormat::Png)
}

/// CRC-32 (IEEE) as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Encodes `img` as PNG carrying an `eXIf` chunk with EXIF `Orientation` = `orientation`.
pub(crate) fn png_with_orientation(img: &DynamicImage, orientation: u16) -> Vec<u8> {
    let png = png_bytes(img);
    // Big-endian TIFF header, one IFD with one SHORT entry (0x0112 Orientation), no next IFD.
    let mut exif = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut chunk = (exif.len() as u32).to_be_bytes().to_vec();
    let mut body = b"eXIf".to_vec();
    body.extend_from_slice(&exif);
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    // Right after the signature (8 bytes) and IHDR (25 bytes), before any image data.
    let mut out = png[..33].to_vec();
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[33..]);
    out
}

/// A temporary input folder filled with generated (or copied) files.
pub(crate) struct TestTree {
    dir: tempfile::TempDir,
}

impl TestTree {
    /// An empty tree.
    pub(crate) fn new() -> TestTree {
        TestTree {
            dir: tempfile::Builder::new()
                .prefix("presize-test-")
                .tempdir()
                .expect("a temporary folder"),
        }
    }

    /// The root folder of the tree.
    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` below the root (nothing is created).
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes raw bytes to `rel`, creating parent folders.
    pub(crate) fn file(self, rel: &str, bytes: &[u8]) -> TestTree {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("a parent")).expect("create parent folders");
        let mut f = BufWriter::new(fs::File::create(&p).expect("create test file"));
        f.write_all(bytes).expect("write test file");
        f.flush().expect("flush test file");
        self
    }

    /// A `w`×`h` gradient PNG (RGB, lossless, so exact pixel values are known).
    pub(crate) fn png(self, rel: &str, w: u32, h: u32) -> TestTree {
        let bytes = png_bytes(&DynamicImage::ImageRgb8(gradient(w, h)));
        self.file(rel, &bytes)
    }

    /// A `w`×`h` gradient PNG with an alpha ramp (opaque at the top, transparent at the bottom).
    pub(crate) fn png_alpha(self, rel: &str, w: u32, h: u32) -> TestTree {
        let img = RgbaImage::from_fn(w, h, |x, y| {
            let Rgb([r, g, b]) = gradient_pixel(x, y, w, h);
            let a = 255 - (u64::from(y) * 255 / u64::from(h.max(2) - 1)) as u8;
            Rgba([r, g, b, a])
        });
        self.file(rel, &png_bytes(&DynamicImage::ImageRgba8(img)))
    }

    /// A `w`×`h` gradient JPEG at quality 90, encoded by the `image` crate.
    pub(crate) fn jpeg(self, rel: &str, w: u32, h: u32) -> TestTree {
        let bytes = jpeg_bytes(&gradient(w, h), 90);
        self.file(rel, &bytes)
    }

    /// Any image, saved as PNG.
    pub(crate) fn png_image(self, rel: &str, img: &DynamicImage) -> TestTree {
        self.file(rel, &png_bytes(img))
    }

    /// A copy of `testdata/<from>` at `rel`.
    pub(crate) fn copy(self, from: &str, rel: &str) -> TestTree {
        let bytes = fs::read(testdata(from)).expect("read testdata file");
        self.file(rel, &bytes)
    }
}

/// Decodes an image, recognising its format by content (outputs may keep an input's extension).
pub(crate) fn decode(path: &Path) -> DynamicImage {
    ImageReader::open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .with_guessed_format()
        .expect("read the file head")
        .decode()
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
}

/// Width and height of a decoded image file.
pub(crate) fn dims(path: &Path) -> (u32, u32) {
    let img = decode(path);
    (img.width(), img.height())
}

/// The mean of `f(a - b)` over every RGB sample of two same-sized images.
fn mean_channel(a: &RgbImage, b: &RgbImage, f: impl Fn(f64) -> f64) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "images must be the same size"
    );
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&p, &q)| f(f64::from(p) - f64::from(q)))
        .sum();
    sum / a.as_raw().len() as f64
}

/// Mean squared error over the RGB channels of two same-sized images.
fn mse(a: &RgbImage, b: &RgbImage) -> f64 {
    mean_channel(a, b, |d| d * d)
}

/// Peak signal-to-noise ratio in dB of two same-sized images (RGB, 8 bit).
pub(crate) fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let m = mse(&a.to_rgb8(), &b.to_rgb8());
    if m == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / m).log10()
    }
}

/// PSNR in dB over colour weighted by alpha, and alpha itself, of two same-sized images: the
/// colour under a fully transparent pixel is meaningless, so it does not count.
pub(crate) fn premultiplied_psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgba8(), b.to_rgba8());
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "images must be the same size"
    );
    let (mut se, mut n) = (0.0, 0.0);
    for (p, q) in a.pixels().zip(b.pixels()) {
        for c in 0..3 {
            let x = f64::from(p[c]) * f64::from(p[3]) / 255.0;
            let y = f64::from(q[c]) * f64::from(q[3]) / 255.0;
            se += (x - y).powi(2);
        }
        se += (f64::from(p[3]) - f64::from(q[3])).powi(2);
        n += 4.0;
    }
    10.0 * (255.0f64 * 255.0 / (se / n).max(1e-9)).log10()
}

/// Mean absolute difference per RGB channel (0-255) of two same-sized images.
pub(crate) fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
    mean_channel(&a.to_rgb8(), &b.to_rgb8(), f64::abs)
}

/// Parses every stdout line as JSON; panics (showing the line) if one is not.
pub(crate) fn json_lines(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).expect("stdout is UTF-8");
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Runs `presize --json` with `args` and returns the exit code, the parsed stdout lines and
/// stderr.
pub(crate) fn run_json(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = presize()
        .arg("--json")
        .args(args)
        .output()
        .expect("run presize");
    let code = out.status.code().expect("presize exited normally");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (code, json_lines(&out.stdout), stderr)
}

/// The `"type":"file"` lines of a report.
pub(crate) fn file_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["type"] == "file").collect()
}

/// The single `"type":"summary"` line of a report, which must be the last line.
pub(crate) fn summary(lines: &[Value]) -> &Value {
    let last = lines.last().expect("a non-empty report");
    assert_eq!(last["type"], "summary", "the last line is the summary");
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "summary").count(),
        1,
        "exactly one summary line"
    );
    last
}

/// The file line whose input ends with `name`.
pub(crate) fn line_for<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "file" && l["input"].as_str().is_some_and(|i| i.ends_with(name)))
        .unwrap_or_else(|| panic!("no report line for {name}"))
}

/// Every regular file below `dir`, as sorted paths relative to it.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn visit(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.expect("read folder entry").path();
            if p.is_dir() {
                visit(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("below base").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    visit(dir, dir, &mut out);
    out.sort();
    out
}

/// Relative path → file content, for comparing whole output trees byte for byte.
pub(crate) fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).expect("read output");
            (rel, bytes)
        })
        .collect()
}

/// Writes `img` next to the test's outputs when `SAVE_RESULT=1`, for eyeballing.
pub(crate) fn save_result(name: &str, img: &DynamicImage) {
    if std::env::var_os("SAVE_RESULT").is_some_and(|v| v == "1") {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("results");
        fs::create_dir_all(&dir).expect("create results folder");
        img.save(dir.join(format!("{name}.png")))
            .expect("save result");
    }
}

/// Runs presize over `input` at `-j 1` and at `-j <jobs>` with `args`, and asserts both wrote
/// the same files with the same bytes. Returns how many files were written.
pub(crate) fn same_output_at(jobs: &str, input: &Path, args: &[&str]) -> usize {
    let out = tempfile::tempdir().unwrap();
    let (one, many) = (out.path().join("one"), out.path().join("many"));
    for (dir, j) in [(&one, "1"), (&many, jobs)] {
        presize()
            .arg(input)
            .arg("-o")
            .arg(dir)
            .args(["-j", j, "-q"])
            .args(args)
            .assert()
            .success();
    }
    let (a, b) = (snapshot(&one), snapshot(&many));
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "the same outputs");
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{} differs between -j 1 and -j {jobs}",
            name.display()
        );
    }
    a.len()
}

/// A noisy RGB image: every pixel differs, so a shifted band or a seam would show.
pub(crate) fn noise(w: u32, h: u32) -> RgbImage {
    let mut s = 0x2545_F491_4F6C_DD1D_u64;
    RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = s.to_le_bytes();
        Rgb([
            n[0] / 2 + (x % 256) as u8 / 2,
            n[1] / 2 + (y % 256) as u8 / 2,
            n[2],
        ])
    })
}
