//! The `--report` page checked the way a user meets it: opened from disk in a real browser.
//!
//! Every test runs the real binary on a copy of `testdata/photos` plus one odd file name and one
//! broken file. The links are checked by resolving them against the page's folder. The browser
//! tests belong to the cross-check tier (`cargo test --features cross-check`, see
//! `tests/cross_check.rs`): a headless Debian `chromium` renders the page and reports broken
//! images and console messages; with the tier on, a missing chromium fails them.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use common::testdata;
use tempfile::TempDir;

/// Written outputs of [`run_report`]: the six photos and the copy with an awkward name.
const OUTPUTS: usize = 7;
/// A name that needs percent-encoding in a URL and escaping in HTML, yet is valid everywhere.
const ODD_NAME: &str = "leaf #1 & 100% é's.jpg";
const BROKEN: &str = "png_cut_at_50pct.png";

/// A finished run: `<tmp>/in` → `<tmp>/out`, page at `<tmp>/report.html`.
struct Run {
    tmp: TempDir,
}

impl Run {
    fn report(&self) -> PathBuf {
        self.tmp.path().join("report.html")
    }

    fn html(&self) -> String {
        std::fs::read_to_string(self.report()).expect("the report was written")
    }
}

/// Runs presize from inside the temp folder with relative paths, as a user would, so the page's
/// links must be made relative to a report path that has no folder part.
fn run_report() -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("sub dir")).unwrap();
    for entry in std::fs::read_dir(testdata("photos")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, input.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        testdata("photos/fallen_leaf_tiny_400x250.jpg"),
        input.join("sub dir").join(ODD_NAME),
    )
    .unwrap();
    std::fs::copy(testdata("bad").join(BROKEN), input.join(BROKEN)).unwrap();
    Command::cargo_bin("presize")
        .unwrap()
        .current_dir(tmp.path())
        .args(["in", "-o", "out", "-w", "200", "--report", "report.html"])
        .args(["--progress", "never", "-q"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    Run { tmp }
}

/// The values of every `attr="…"` inside `<tag …>` elements, HTML-unescaped.
fn attribute_values(html: &str, tag: &str, attr: &str) -> Vec<String> {
    let open = format!("<{tag} ");
    let key = format!(" {attr}=\"");
    let mut values = Vec::new();
    for (start, _) in html.match_indices(&open) {
        let element = &html[start..start + html[start..].find('>').expect("closed tag")];
        if let Some(i) = element.find(&key) {
            let value = &element[i + key.len()..];
            values.push(unescape(&value[..value.find('"').expect("closed quote")]));
        }
    }
    values
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Resolves a relative URL against a folder, as a browser does for a page opened from disk.
fn resolve_url(base: &Path, url: &str) -> PathBuf {
    assert!(
        !url.contains(':') && !url.starts_with('/'),
        "not a relative URL: {url}"
    );
    let mut path = base.to_path_buf();
    for segment in url.split('/') {
        match segment {
            ".." => assert!(path.pop(), "{url} climbs above the root"),
            "." | "" => {}
            s => path.push(percent_decode(s)),
        }
    }
    path
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("valid percent escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 file names")
}

#[test]
fn every_thumbnail_and_link_resolves_relative_to_the_report() {
    let run = run_report();
    let html = run.html();
    let srcs = attribute_values(&html, "img", "src");
    assert_eq!(srcs.len(), OUTPUTS, "one thumbnail per output: {srcs:?}");
    let hrefs = attribute_values(&html, "a", "href");
    assert!(hrefs.len() >= OUTPUTS, "{hrefs:?}");
    for url in srcs.iter().chain(&hrefs) {
        let file = resolve_url(run.tmp.path(), url);
        assert!(
            file.is_file(),
            "{url} resolves to missing {}",
            file.display()
        );
    }
    assert!(
        srcs.iter()
            .any(|s| s == "out/sub%20dir/leaf%20%231%20%26%20100%25%20%C3%A9's.jpg"),
        "{srcs:?}"
    );
    assert!(html.contains("leaf #1 &amp; 100% é&#39;s.jpg"));
    assert!(html.contains("loading=\"lazy\""));
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[test]
fn failures_are_listed_with_their_error() {
    let html = run_report().html();
    let failures = &html[html.find("id=\"failures\"").expect("a failures section")..];
    let table = &failures[..failures.find("</table>").unwrap()];
    assert!(table.contains(&format!("in/{BROKEN}")), "{table}");
    assert!(table.contains("cannot decode PNG"), "{table}");
}

// ---- the browser ------------------------------------------------------------------------------

/// Debian's chromium; panics (the tier never skips) when it is not installed.
fn chromium() -> PathBuf {
    common::tools::find("chromium")
}

/// What one headless chromium run printed.
struct Browser {
    dom: String,
    /// Console messages of the page (chromium logs every level as `INFO:CONSOLE`).
    console: Vec<String>,
}

/// Opens `page` headless with a throw-away profile, networking features off, and the extra
/// `args` (`--screenshot=…` or `--dump-dom`).
fn chromium_open(chromium: &Path, page: &Path, args: &[&str]) -> Browser {
    let profile = tempfile::tempdir().unwrap();
    eprintln!(
        "cross-check: running {} --headless {} {}",
        chromium.display(),
        args.join(" "),
        file_url(page)
    );
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(file_url(page))
        .timeout(Duration::from_secs(60))
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {stderr}");
    Browser {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_owned)
            .collect(),
    }
}

fn file_url(path: &Path) -> String {
    let path = path.canonicalize().unwrap();
    let mut url = String::from("file://");
    for c in path.components().skip(1) {
        url.push('/');
        for &b in c.as_os_str().as_encoded_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                url.push(char::from(b));
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
    }
    url
}

/// Test-only page, written next to the report, that says which of the report's images are
/// broken. `--dump-dom` dumps the DOM once the page's `load` event has run, and the report's
/// images are lazy, so they neither delay that event nor are sure to have loaded by then.
/// Hence, when the iframe has loaded (always before its parent's `load`), every image of the
/// report gets an eager probe, in this page, for the very URL the report's `<img>` resolves to;
/// pending images delay `load`, so at `load` every probe has loaded or failed. An image counts as
/// loaded if and only if `complete && naturalWidth > 0`.
const IMAGE_CHECK: &str = r##"<!doctype html>
<meta charset="utf-8"><title>image check</title>
<script>
function probe(frame) {
  const doc = frame.contentDocument;
  if (!doc) { document.getElementById("result").textContent = "no access to the report"; return; }
  for (const img of doc.images) {
    const p = document.createElement("img");
    p.dataset.src = img.getAttribute("src");
    p.src = img.src;
    document.getElementById("probes").append(p);
  }
  document.getElementById("result").textContent = "probing";
}
window.addEventListener("load", () => {
  const out = document.getElementById("result");
  if (out.textContent !== "probing") return;
  const loaded = (img) => img.complete && img.naturalWidth > 0;
  const probes = Array.from(document.querySelectorAll("#probes img"));
  const broken = probes.filter((p) => !loaded(p)).map((p) => p.dataset.src);
  out.textContent = "images " + probes.length + "\nbroken " + broken.length + "\n" +
    broken.join("\n");
});
</script>
<pre id="result">not run</pre>
<div id="probes" hidden></div>
<iframe src="report.html" onload="probe(this)" style="width:1280px;height:2000px"></iframe>
"##;

/// Loads the report through [`IMAGE_CHECK`]; returns (images on the page, broken image srcs).
fn image_check(chromium: &Path, run: &Run) -> (usize, Vec<String>) {
    let page = run.tmp.path().join("image-check.html");
    std::fs::write(&page, IMAGE_CHECK).unwrap();
    // file:// pages are each their own origin; this flag lets the checker read the iframe.
    let browser = chromium_open(
        chromium,
        &page,
        &["--allow-file-access-from-files", "--dump-dom"],
    );
    assert!(browser.console.is_empty(), "{:?}", browser.console);
    let start = browser
        .dom
        .find("<pre id=\"result\">")
        .expect("the checker's result in the DOM")
        + "<pre id=\"result\">".len();
    let result = &browser.dom[start..start + browser.dom[start..].find("</pre>").unwrap()];
    let mut lines = result.lines();
    let count = |prefix: &str, line: Option<&str>| -> usize {
        line.and_then(|l| l.strip_prefix(prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected checker output: {result}"))
    };
    let images = count("images ", lines.next());
    let broken_count = count("broken ", lines.next());
    let broken: Vec<String> = lines.map(unescape).collect();
    assert_eq!(broken.len(), broken_count, "{result}");
    (images, broken)
}

/// Returns true if and only if the screenshot shows something: not one flat colour, and more
/// than a sliver of it differs from the most common (background) colour.
fn is_not_blank(png: &Path) -> bool {
    let img = image::open(png).expect("a PNG screenshot").to_rgb8();
    let mut counts = std::collections::HashMap::new();
    for p in img.pixels() {
        *counts.entry(p.0).or_insert(0u64) += 1;
    }
    let total = u64::from(img.width()) * u64::from(img.height());
    let background = counts.values().copied().max().unwrap_or(0);
    let luma: Vec<f64> = img
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let variance = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    counts.len() > 100 && (total - background) * 10 > total && variance > 100.0
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn report_renders_in_chromium_with_every_image_loaded_and_a_silent_console() {
    let chromium = chromium();
    let run = run_report();

    let shot = run.tmp.path().join("shot.png");
    let browser = chromium_open(
        &chromium,
        &run.report(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
        ],
    );
    assert!(
        browser.console.is_empty(),
        "the page logged: {:?}",
        browser.console
    );
    let (width, height) = image::image_dimensions(&shot).expect("a screenshot was taken");
    assert_eq!((width, height), (1280, 2000));
    assert!(is_not_blank(&shot), "the screenshot is blank");

    let (images, broken) = image_check(&chromium, &run);
    assert_eq!(images, OUTPUTS);
    assert!(broken.is_empty(), "broken images: {broken:?}");
}

/// The checks above prove nothing unless they can fail: a missing output must show up as a
/// broken image, and a page that logs must be caught.
#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn browser_checks_catch_a_broken_image_and_a_console_message() {
    let chromium = chromium();
    let run = run_report();

    std::fs::remove_file(run.tmp.path().join("out/rocket_640x427_adobergb_icc.jpg")).unwrap();
    let (images, broken) = image_check(&chromium, &run);
    assert_eq!(images, OUTPUTS);
    assert_eq!(broken, ["out/rocket_640x427_adobergb_icc.jpg"]);

    let noisy = run.tmp.path().join("noisy.html");
    std::fs::write(
        &noisy,
        "<!doctype html><title>noisy</title><script>console.error('boom'); nope();</script>",
    )
    .unwrap();
    let browser = chromium_open(&chromium, &noisy, &["--dump-dom"]);
    assert_eq!(browser.console.len(), 2, "{:?}", browser.console);
    assert!(browser.console[1].contains("Uncaught ReferenceError"));
}

// ---- `presize bench --report` -----------------------------------------------------------------

/// `presize bench` on a copy of `testdata/photos` at one and two workers, run from inside the
/// temp folder; the page is `<tmp>/bench.html`.
fn run_bench_report() -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for entry in std::fs::read_dir(testdata("photos")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, input.join(path.file_name().unwrap())).unwrap();
    }
    Command::cargo_bin("presize")
        .unwrap()
        .current_dir(tmp.path())
        .args(["bench", "in", "-w", "200", "--jobs", "1,2", "--repeat", "1"])
        .args(["--report", "bench.html"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(0)
        .stdout(predicates::str::contains("report: bench.html"));
    tmp
}

#[test]
fn bench_report_charts_each_worker_count() {
    let tmp = run_bench_report();
    let html = std::fs::read_to_string(tmp.path().join("bench.html")).expect("the page exists");
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<svg"), "{html}");
    // One point per worker count on the throughput chart, one stacked bar on the stage chart.
    assert_eq!(html.matches("class=\"pt tput\"").count(), 2, "{html}");
    assert_eq!(html.matches("<g class=\"bar\">").count(), 2, "{html}");
    assert!(html.contains("<title>1 worker: ") && html.contains("<title>2 workers: "));
    assert!(html.contains("<dt>inputs</dt><dd>in</dd>"), "{html}");
    assert!(
        html.contains("<dt>worker counts</dt><dd>1, 2</dd>"),
        "{html}"
    );
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script"));
    // Written atomically: no temporary file is left beside the page, and nothing else is written.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bench.html", "in"]);
}

/// Pixels of the screenshot within a small tolerance of `rgb`.
fn pixels_of(png: &Path, rgb: [u8; 3]) -> usize {
    let img = image::open(png).expect("a PNG screenshot").to_rgb8();
    img.pixels()
        .filter(|p| p.0.iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= 4))
        .count()
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn bench_report_renders_in_chromium_with_a_silent_console() {
    let chromium = chromium();
    let tmp = run_bench_report();

    let shot = tmp.path().join("shot.png");
    let browser = chromium_open(
        &chromium,
        &tmp.path().join("bench.html"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1000",
        ],
    );
    assert!(
        browser.console.is_empty(),
        "the page logged: {:?}",
        browser.console
    );
    let (width, height) = image::image_dimensions(&shot).expect("a screenshot was taken");
    assert_eq!((width, height), (1280, 1000));
    assert!(is_not_blank(&shot), "the screenshot is blank");
    // The charts were drawn: the two stacked bars, whatever their split, cover well over
    // 10,000 pixels in the five stage colours (read, decode, resize, encode, write).
    let stages = [
        [0x56, 0xb4, 0xe9],
        [0x00, 0x72, 0xb2],
        [0xe6, 0x9f, 0x00],
        [0xcc, 0x79, 0xa7],
        [0x00, 0x9e, 0x73],
    ];
    let bars: usize = stages.into_iter().map(|rgb| pixels_of(&shot, rgb)).sum();
    assert!(
        bars > 10_000,
        "only {bars} pixels of bars: the charts did not render"
    );
}
