//! Issue 15, the page side of a web build, through the real binary: placeholders in the manifest
//! (decoded back and compared with the source), `presize manifest html` (parsed by an HTML5
//! parser), lossless PNG recompression and `--keep-mtime`.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::{decode, dims, gradient, png_with_orientation, presize, run_json, summary, TestTree};
use image::{imageops, DynamicImage, Rgb, RgbImage, RgbaImage};
use serde_json::Value;

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn manifest(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("manifest written")).expect("manifest is JSON")
}

fn base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

/// The source downscaled to `w`×`h` (a box filter over the whole image), as RGBA.
fn downscale(src: &DynamicImage, w: u32, h: u32) -> RgbaImage {
    imageops::resize(&src.to_rgba8(), w, h, imageops::FilterType::Triangle)
}

/// Mean absolute difference per RGB sample of two same-sized RGBA buffers.
fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (sum, n) = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .flat_map(|(p, q)| (0..3).map(move |i| f64::from(p[i].abs_diff(q[i]))))
        .fold((0.0, 0.0), |(s, n), d| (s + d, n + 1.0));
    sum / n
}

/// Runs a build of `input` into `out` with a manifest and `extra` flags.
fn build(input: &Path, out: &Path, m: &Path, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let mut args = vec![p(input), "-o", p(out), "--manifest", p(m)];
    args.extend_from_slice(extra);
    run_json(&args)
}

const ALL: &str = "thumbhash,blurhash,color,lqip";

#[test]
fn every_placeholder_decodes_back_to_a_small_version_of_the_source() {
    let source = DynamicImage::ImageRgb8(gradient(300, 200));
    // The same picture stored on its side with EXIF orientation 6: placeholders are upright.
    let turned = DynamicImage::ImageRgb8(imageops::rotate270(&gradient(300, 200)));
    let tree = TestTree::new()
        .png_image("in/flat.png", &source)
        .file("in/turned.png", &png_with_orientation(&turned, 6));
    let (out, m) = (tree.path("out"), tree.path("m.json"));
    let (code, _, stderr) = build(
        &tree.path("in"),
        &out,
        &m,
        &["-w", "120", "-f", "webp", "--placeholder", ALL],
    );
    assert_eq!(code, 0, "{stderr}");
    let m = manifest(&m);
    let small = downscale(&source, 32, 32);
    for entry in m["sources"].as_array().unwrap() {
        let name = entry["path"].as_str().unwrap();
        let ph = &entry["placeholder"];

        let hash = base64(ph["thumbhash"].as_str().unwrap());
        let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash).expect("a ThumbHash");
        assert!(w > h, "{name}: landscape, as displayed: {w}x{h}");
        let (w, h) = (w as u32, h as u32);
        let error = mean_diff(&rgba, &downscale(&source, w, h));
        // The wrong way round must look clearly different, or the bound proves nothing.
        let flipped = downscale(
            &DynamicImage::ImageRgba8(imageops::rotate180(&source.to_rgba8())),
            w,
            h,
        );
        let control = mean_diff(&rgba, &flipped);
        // The bound is the format's own: this ramp from black to full colour costs ThumbHash
        // about 17 levels even when it is encoded straight from an ideal downscale.
        let (rw, rh, ideal) = thumbhash::thumb_hash_to_rgba(&thumbhash::rgba_to_thumb_hash(
            100,
            67,
            downscale(&source, 100, 67).as_raw(),
        ))
        .unwrap();
        let ideal = mean_diff(&ideal, &downscale(&source, rw as u32, rh as u32));
        assert!(
            error < 20.0 && error <= ideal + 1.5 && control > 3.0 * error,
            "{name}: thumbhash off by {error:.1} (ideal {ideal:.1}, upside down {control:.1})"
        );

        let blur = blurhash::decode(ph["blurhash"].as_str().unwrap(), 32, 32, 1.0).unwrap();
        let error = mean_diff(&blur, &small);
        let ideal = blurhash::encode(4, 3, 100, 67, downscale(&source, 100, 67).as_raw()).unwrap();
        let ideal = mean_diff(&blurhash::decode(&ideal, 32, 32, 1.0).unwrap(), &small);
        assert!(
            error < 14.0 && error <= ideal + 1.5,
            "{name}: blurhash off by {error:.1} (ideal {ideal:.1})"
        );

        let lqip = ph["lqip"].as_str().unwrap();
        let webp = base64(
            lqip.strip_prefix("data:image/webp;base64,")
                .expect("a WebP data URL"),
        );
        assert!(webp.len() < 600, "{name}: lqip of {} bytes", webp.len());
        let img = image::load_from_memory_with_format(&webp, image::ImageFormat::WebP).unwrap();
        assert!(img.width() <= 32 && img.height() <= 32 && img.width() > img.height());
        let error = mean_diff(
            &img.to_rgba8(),
            &downscale(&source, img.width(), img.height()),
        );
        assert!(error < 12.0, "{name}: lqip off by {error:.1}");

        let color = ph["color"].as_str().unwrap();
        assert!(
            color.len() == 7
                && color.starts_with('#')
                && color[1..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{color}"
        );
    }
}

/// A picture of `sky` over `sea`, with the sky taking `sky_rows` of 200 rows, and a little
/// texture so that neither is one value.
fn horizon(sky_rows: u32, sky: [u8; 3], sea: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
        let c = if y < sky_rows { sky } else { sea };
        let t = ((x * 7 + y * 3) % 9) as i16 - 4;
        Rgb(c.map(|v| (i16::from(v) + t).clamp(0, 255) as u8))
    }))
}

fn hex(c: &str) -> [u8; 3] {
    let byte = |i| u8::from_str_radix(&c[i..i + 2], 16).unwrap();
    [byte(1), byte(3), byte(5)]
}

#[test]
fn the_dominant_colour_is_the_larger_area_not_the_mean() {
    let (sky, sea) = ([120, 175, 235], [15, 75, 95]);
    let tree = TestTree::new()
        .png_image("in/more_sky.png", &horizon(125, sky, sea))
        .png_image("in/more_sea.png", &horizon(75, sky, sea));
    let (out, m) = (tree.path("out"), tree.path("m.json"));
    let args = ["-w", "100", "-f", "jpeg", "--placeholder", "color"];
    assert_eq!(build(&tree.path("in"), &out, &m, &args).0, 0);
    let m = manifest(&m);
    for (entry, want) in m["sources"].as_array().unwrap().iter().zip([sea, sky]) {
        let got = hex(entry["placeholder"]["color"].as_str().unwrap());
        let off = got
            .iter()
            .zip(want)
            .map(|(a, b)| a.abs_diff(b))
            .max()
            .unwrap();
        assert!(off <= 4, "{}: {got:?}, want {want:?}", entry["path"]);
        assert!(
            entry["placeholder"].get("thumbhash").is_none(),
            "only what was asked"
        );
    }
}

fn mtimes(dir: &Path) -> Vec<(String, SystemTime)> {
    common::files_under(dir)
        .into_iter()
        .map(|f| {
            let t = fs::metadata(dir.join(&f)).unwrap().modified().unwrap();
            (f.display().to_string(), t)
        })
        .collect()
}

#[test]
fn placeholders_added_later_rewrite_no_output_and_stay_while_the_source_is_unchanged() {
    let tree = TestTree::new()
        .jpeg("in/a.jpg", 640, 480)
        .png("in/b.png", 300, 200);
    let (input, out, m) = (tree.path("in"), tree.path("out"), tree.path("m.json"));
    let web = ["-w", "100,200", "-f", "webp,jpeg"];
    assert_eq!(build(&input, &out, &m, &web).0, 0);
    assert!(manifest(&m)["sources"][0].get("placeholder").is_none());
    let before = mtimes(&out);
    std::thread::sleep(Duration::from_millis(20));

    fn with<'a>(web: &[&'a str], kinds: &'a str) -> Vec<&'a str> {
        [web, &["--placeholder", kinds]].concat()
    }
    let (code, lines, _) = build(&input, &out, &m, &with(&web, "color,thumbhash"));
    assert_eq!(code, 0);
    let s = summary(&lines);
    assert_eq!(
        (s["written"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(mtimes(&out), before, "no output rewritten");
    let first = fs::read(&m).unwrap();
    for entry in manifest(&m)["sources"].as_array().unwrap() {
        let ph = entry["placeholder"].as_object().unwrap();
        let keys: Vec<&str> = ph.keys().map(String::as_str).collect();
        assert_eq!(keys, ["color", "thumbhash"]);
    }

    // Unchanged: the manifest is rewritten byte for byte.
    assert_eq!(build(&input, &out, &m, &with(&web, "color,thumbhash")).0, 0);
    assert_eq!(fs::read(&m).unwrap(), first);
    // Fewer kinds: the others leave the manifest; nothing is decoded or written.
    let (_, lines, _) = build(&input, &out, &m, &with(&web, "color"));
    assert_eq!(summary(&lines)["written"], 0);
    let entry = &manifest(&m)["sources"][0];
    assert_eq!(entry["placeholder"].as_object().unwrap().len(), 1);
    // A changed source gets new outputs and a new placeholder.
    fs::write(
        tree.path("in/b.png"),
        common::png_bytes(&horizon(150, [250, 20, 20], [0, 0, 0])),
    )
    .unwrap();
    let (_, lines, _) = build(&input, &out, &m, &with(&web, "color"));
    assert_eq!(summary(&lines)["written"], 1);
    let b = &manifest(&m)["sources"][1];
    assert_eq!(b["path"], "b.png");
    let red = hex(b["placeholder"]["color"].as_str().unwrap());
    assert!(red[0] > 200 && red[1] < 60, "{red:?}");

    // Without a manifest there is nowhere to put them.
    let (code, _, stderr) = run_json(&[
        p(&input),
        "-o",
        p(&out),
        "-w",
        "100",
        "--placeholder",
        "color",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--manifest"), "{stderr}");
}

/// Parses `markup` inside a minimal document and returns it, failing on any parse error.
fn parse_page(markup: &str) -> scraper::Html {
    // The check can fail: the parser does report an error in a broken attribute.
    let broken = "<!DOCTYPE html><title>t</title><picture><img src=\"a\"b=\"c\"></picture>";
    assert!(!scraper::Html::parse_document(broken).errors.is_empty());
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head>\
         <body>\n{markup}</body></html>\n"
    );
    let doc = scraper::Html::parse_document(&page);
    assert!(
        doc.errors.is_empty(),
        "HTML parse errors {:?} in\n{page}",
        doc.errors
    );
    doc
}

fn select<'a>(el: scraper::ElementRef<'a>, css: &str) -> Vec<scraper::ElementRef<'a>> {
    el.select(&scraper::Selector::parse(css).unwrap()).collect()
}

/// The binary, for a subcommand (`common::presize` puts a resize flag first).
/// The size of an output: AVIF from its container (the test build's `image` reads no AVIF),
/// everything else decoded.
fn size_of(path: &Path) -> (u32, u32) {
    if path.extension().is_some_and(|e| e == "avif") {
        let c = common::avif_container::avif_container(&fs::read(path).unwrap());
        return (c.width, c.height);
    }
    dims(path)
}

fn subcommand() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("presize").expect("the presize binary is built")
}

fn html_of(args: &[&str]) -> String {
    let out = subcommand()
        .args(["manifest", "html"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each `url descriptor` pair of a `srcset`.
fn candidates(srcset: &str) -> Vec<(String, String)> {
    srcset
        .split(", ")
        .map(|c| {
            let (url, d) = c.rsplit_once(' ').expect("url and descriptor");
            (url.to_owned(), d.to_owned())
        })
        .collect()
}

#[test]
fn manifest_html_is_valid_html5_and_every_url_is_an_output_of_that_size() {
    let tree = TestTree::new()
        .jpeg("in/photo one.jpg", 900, 600)
        .png("in/sub/b.png", 500, 700);
    let (input, out, m) = (tree.path("in"), tree.path("out"), tree.path("m.json"));
    let args = [
        "-w",
        "100,200,400",
        "-f",
        "avif,webp,jpeg",
        "--placeholder",
        "lqip,color",
    ];
    let (code, _, stderr) = build(&input, &out, &m, &args);
    assert_eq!(code, 0, "{stderr}");

    let sizes = "(min-width: 800px) 50vw, 100vw";
    let doc = parse_page(&html_of(&[p(&m), "--sizes", sizes]));
    let root = doc.root_element();
    let pictures = select(root, "body > picture");
    assert_eq!(pictures.len(), 2);
    for picture in pictures {
        let types: Vec<&str> = select(picture, "source")
            .iter()
            .map(|s| s.attr("type").unwrap())
            .collect();
        assert_eq!(types, ["image/avif", "image/webp"]);
        let imgs = select(picture, "img");
        assert_eq!(imgs.len(), 1);
        let img = imgs[0];
        for (attr, want) in [
            ("alt", ""),
            ("loading", "lazy"),
            ("decoding", "async"),
            ("sizes", sizes),
        ] {
            assert_eq!(img.attr(attr), Some(want), "{attr}");
        }
        let src = img.attr("src").unwrap();
        assert!(src.ends_with("-400w.jpg"), "{src}");
        // width/height are the real size of the file behind src (no layout shift).
        let file = out.join(src.replace("%20", " "));
        let (w, h) = dims(&file);
        assert_eq!(img.attr("width"), Some(w.to_string().as_str()));
        assert_eq!(img.attr("height"), Some(h.to_string().as_str()));
        let style = img.attr("style").unwrap();
        assert!(
            style.contains("background-image:url(data:image/webp;base64,"),
            "{style}"
        );
        assert!(style.contains("background-color:#"), "{style}");
        let mut sets: Vec<&str> = select(picture, "source")
            .iter()
            .map(|s| s.attr("srcset").unwrap())
            .collect();
        sets.push(img.attr("srcset").unwrap());
        for set in sets {
            let c = candidates(set);
            assert_eq!(c.len(), 3, "{set}");
            for (url, descriptor) in c {
                let (w, _) = size_of(&out.join(url.replace("%20", " ")));
                assert_eq!(descriptor, format!("{w}w"), "{url}");
            }
        }
    }

    // Densities: 1x is the narrowest output, 2x the one twice as wide; URLs get the prefix.
    let doc = parse_page(&html_of(&[
        p(&m),
        "--density",
        "1x,2x",
        "--prefix",
        "/img/",
    ]));
    let imgs = select(doc.root_element(), "img");
    assert_eq!(imgs.len(), 2);
    for img in imgs {
        let c = candidates(img.attr("srcset").unwrap());
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].1.as_str(), c[1].1.as_str()), ("1x", "2x"));
        let width =
            |url: &str| dims(&out.join(url.strip_prefix("/img/").unwrap().replace("%20", " "))).0;
        assert_eq!(width(&c[1].0), 2 * width(&c[0].0));
        assert_eq!(img.attr("src"), Some(c[0].0.as_str()));
        assert!(img.attr("sizes").is_none());
    }

    let out = subcommand()
        .args(["manifest", "html", p(&tree.path("missing.json"))])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}

#[test]
fn png_outputs_are_recompressed_losslessly_and_the_saving_is_reported() {
    let tree = TestTree::new().png("in/g.png", 400, 300);
    let input = tree.path("in");
    let (plain, optimised) = (tree.path("plain"), tree.path("optimised"));
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![p(&input), "-o", p(out), "-w", "200", "-f", "png"];
        args.extend_from_slice(extra);
        run_json(&args)
    };
    let (code, lines, _) = run(&plain, &["--effort", "png=0"]);
    assert_eq!(code, 0);
    assert!(summary(&lines).get("png_saved").is_none());
    let (code, lines, _) = run(&optimised, &[]);
    assert_eq!(code, 0);
    let before = fs::metadata(plain.join("g.png")).unwrap().len();
    let after = fs::metadata(optimised.join("g.png")).unwrap().len();
    assert!(after < before, "{after} >= {before}");
    assert_eq!(summary(&lines)["png_saved"].as_u64(), Some(before - after));
    assert_eq!(summary(&lines)["bytes_out"].as_u64(), Some(after));
    // Lossless: the same pixels, the same kind of image.
    let (a, b) = (
        decode(&plain.join("g.png")),
        decode(&optimised.join("g.png")),
    );
    assert_eq!(a.to_rgba8().as_raw(), b.to_rgba8().as_raw());
    // The human summary says it.
    let out = presize()
        .args([
            p(&input),
            "-o",
            p(&tree.path("h")),
            "-w",
            "200",
            "-f",
            "png",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oxipng") && stderr.contains("smaller (lossless)"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&tree.path("x"), &["--effort", "png=11"]);
    assert_eq!(code, 2, "{stderr}");
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn keep_mtime_gives_every_output_its_sources_time_and_reruns_still_skip() {
    let tree = TestTree::new()
        .jpeg("in/a.jpg", 400, 300)
        .png("in/b.png", 300, 200);
    let (input, out) = (tree.path("in"), tree.path("out"));
    let taken = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    set_mtime(&tree.path("in/a.jpg"), taken);
    set_mtime(&tree.path("in/b.png"), taken + Duration::from_secs(60));
    let args = [
        p(&input),
        "-o",
        p(&out),
        "-w",
        "100,200",
        "-f",
        "webp,same",
        "--keep-mtime",
    ];
    let (code, lines, _) = run_json(&args);
    assert_eq!((code, summary(&lines)["written"].as_u64()), (0, Some(2)));
    for f in common::files_under(&out) {
        let stem = f.file_name().unwrap().to_str().unwrap();
        let want = if stem.starts_with('a') {
            taken
        } else {
            taken + Duration::from_secs(60)
        };
        assert_eq!(mtime(&out.join(&f)), want, "{}", f.display());
    }
    // An output as old as its source is up to date; a touched source is redone.
    let (_, lines, _) = run_json(&args);
    assert_eq!(summary(&lines)["skipped"], 2);
    let later = taken + Duration::from_secs(3600);
    set_mtime(&tree.path("in/a.jpg"), later);
    let (_, lines, _) = run_json(&args);
    assert_eq!(summary(&lines)["written"], 1);
    assert_eq!(mtime(&out.join("a-100w.webp")), later);

    // In place, the replaced file keeps its own date.
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in/b.png")),
        "--in-place",
        "-w",
        "50",
        "--keep-mtime",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dims(&tree.path("in/b.png")), (50, 33));
    assert_eq!(
        mtime(&tree.path("in/b.png")),
        taken + Duration::from_secs(60)
    );
}

#[test]
fn the_library_api_asks_for_placeholders_and_dates_the_same_way() {
    let tree = TestTree::new().png("in/g.png", 300, 200);
    let taken = SystemTime::UNIX_EPOCH + Duration::from_secs(1_200_000_000);
    set_mtime(&tree.path("in/g.png"), taken);
    let (out, m) = (tree.path("out"), tree.path("m.json"));
    let resize = || {
        presize::Resize::new([tree.path("in")], &out)
            .widths(&[100])
            .formats(&[presize::Format::Webp])
            .placeholders(&[presize::PlaceholderKind::Color])
            .keep_mtime(true)
    };
    let refused = resize().run().unwrap_err();
    assert!(refused.to_string().contains("--manifest"), "{refused}");
    let summary = resize().manifest(&m).run().unwrap();
    assert_eq!(summary.written, 1);
    let entry = &manifest(&m)["sources"][0];
    assert!(entry["placeholder"]["color"]
        .as_str()
        .unwrap()
        .starts_with('#'));
    assert_eq!(mtime(&out.join("g.webp")), taken);
}

#[test]
fn html_writes_the_same_markup_as_manifest_html_after_every_run() {
    let tree = TestTree::new()
        .jpeg("in/a.jpg", 600, 400)
        .png("in/b.png", 300, 500);
    let (input, out, m) = (tree.path("in"), tree.path("out"), tree.path("m.json"));
    let page = tree.path("site/pictures.html");
    let args = [
        "-w",
        "100,200",
        "-f",
        "webp,jpeg",
        "--placeholder",
        "color",
        "--html",
        p(&page),
        "--html-prefix",
        "/img",
        "--html-sizes",
        "50vw",
    ];
    let (code, _, stderr) = build(&input, &out, &m, &args);
    assert_eq!(code, 0, "{stderr}");
    let written = fs::read_to_string(&page).unwrap();
    let printed = html_of(&[p(&m), "--prefix", "/img", "--sizes", "50vw"]);
    assert_eq!(written, printed);
    let doc = parse_page(&written);
    assert_eq!(select(doc.root_element(), "picture").len(), 2);
    // A rerun that makes nothing still leaves the markup of the whole build.
    fs::remove_file(&page).unwrap();
    let (code, _, stderr) = build(&input, &out, &m, &args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(&page).unwrap(), printed);
    // --html needs the manifest it is made from.
    let no_manifest = common::presize()
        .args([p(&input), "-o", p(&out), "-w", "100", "--html", p(&page)])
        .output()
        .unwrap();
    assert_eq!(no_manifest.status.code(), Some(2));
}
