//! End-to-end tests of the `presize` binary: real command lines, generated or `testdata/` inputs,
//! and outputs decoded and measured (sizes, pixels, formats), never compared by checksum.
//!
//! Set `SAVE_RESULT=1` to keep some decoded outputs under `target/tmp/results/` for eyeballing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use image::{DynamicImage, GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use common::{
    decode, dims, file_lines, files_under, json_lines, line_for, mean_abs_diff, presize, psnr,
    run_json, save_result, snapshot, summary, testdata, TestTree,
};

/// A path as a command-line argument (temporary folders are UTF-8 here).
fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// Runs presize on `input` into `out` with `args` and requires success (exit 0).
fn resize_ok(input: impl AsRef<std::ffi::OsStr>, out: &Path, args: &[&str]) {
    presize()
        .arg(input)
        .args(["-o", p(out)])
        .args(args)
        .assert()
        .code(0);
}

fn rgb_at(img: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let Rgba([r, g, b, _]) = img.get_pixel(x, y);
    [r, g, b]
}

/// Asserts every channel of `got` is within `tol` of `want`.
fn assert_close(got: [u8; 3], want: [u8; 3], tol: u8, what: &str) {
    let ok = got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= tol);
    assert!(ok, "{what}: got {got:?}, want {want:?} ± {tol}");
}

/// Three vertical bands, red | green | blue, each `band` pixels wide and `h` high.
fn bands(band: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(3 * band, h, |x, _| match x / band {
        0 => Rgb([255, 0, 0]),
        1 => Rgb([0, 255, 0]),
        _ => Rgb([0, 0, 255]),
    }))
}

/// Left part fully transparent *red* (the colour must never show), right part opaque blue. The
/// edge is at 47.5 % of the width, so that at half size it falls inside an output pixel.
fn transparent_red_and_blue(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, _| {
        if x < w * 19 / 40 {
            Rgba([255, 0, 0, 0])
        } else {
            Rgba([0, 0, 255, 255])
        }
    }))
}

/// The JSON report's output entries of one file line.
fn outputs(line: &Value) -> &Vec<Value> {
    line["outputs"].as_array().expect("outputs is an array")
}

// ---------------------------------------------------------------------------------------------
// Geometry

#[test]
fn size_flags_produce_exactly_the_expected_dimensions() {
    let tree = TestTree::new().png("in/wide.png", 400, 200);
    let cases: &[(&[&str], (u32, u32))] = &[
        (&["-w", "100"], (100, 50)),
        (&["-H", "50"], (100, 50)),
        (&["-w", "25%"], (100, 50)),
        (&["-H", "50%"], (200, 100)),
        (&["-w", "100", "-H", "100"], (100, 50)),
        (&["-s", "100"], (100, 50)),
        (&["-s", "100x"], (100, 50)),
        (&["-s", "x40"], (80, 40)),
        (&["-s", "50%"], (200, 100)),
        (&["-s", "100x100"], (100, 50)),
        (&["-s", "100x20"], (40, 20)),
        (&["-s", "100x100", "--fit", "inside"], (100, 50)),
        (&["-s", "100x100", "--fit", "cover"], (100, 100)),
        (&["-s", "100x30", "--fit", "fill"], (100, 30)),
        (&["-s", "100x100", "--fit", "contain"], (100, 100)),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let out = tree.path(&format!("out{i}"));
        presize()
            .arg(tree.path("in/wide.png"))
            .arg("-o")
            .arg(&out)
            .args(*args)
            .assert()
            .code(0);
        assert_eq!(dims(&out.join("wide.png")), *want, "presize {args:?}");
    }
}

#[test]
fn heights_are_rounded_to_the_nearest_pixel() {
    // 640x427 at 320 wide is 213.5 high; ImageMagick writes 214, and so must we (not floor).
    let tree = TestTree::new()
        .png("in/odd.png", 640, 427)
        .png("in/third.png", 450, 300);
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("out")), "-w", "320"])
        .assert()
        .code(0);
    assert_eq!(dims(&tree.path("out/odd.png")), (320, 214));
    // 450x300 → 320 wide is 213.33 high.
    assert_eq!(dims(&tree.path("out/third.png")), (320, 213));
}

#[test]
fn images_are_never_enlarged_unless_upscale_is_given() {
    let tree = TestTree::new().png("in/small.png", 100, 50);
    let cases: &[(&[&str], (u32, u32))] = &[
        (&["-w", "400"], (100, 50)),
        (&["-H", "200"], (100, 50)),
        (&["-w", "200%"], (100, 50)),
        (&["-s", "400x400"], (100, 50)),
        (&["-w", "400", "--upscale"], (400, 200)),
        (&["-w", "200%", "--upscale"], (200, 100)),
        (&["-s", "400x400", "--upscale"], (400, 200)),
        (&["-s", "300x300", "--fit", "fill", "--upscale"], (300, 300)),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let out = tree.path(&format!("out{i}"));
        presize()
            .arg(tree.path("in"))
            .arg("-o")
            .arg(&out)
            .args(*args)
            .assert()
            .code(0);
        assert_eq!(dims(&out.join("small.png")), *want, "presize {args:?}");
    }
}

#[test]
fn fit_cover_crops_the_overflow_around_the_centre() {
    let tree = TestTree::new().png_image("in/bands.png", &bands(100, 100));
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-s", "50x50", "--fit", "cover"]);
    let img = decode(&out.join("bands.png"));
    save_result("fit_cover", &img);
    assert_eq!(img.dimensions(), (50, 50));
    // The centre square of the source is the green band; red and blue are cropped away.
    for (x, y) in [(2, 2), (25, 25), (47, 47), (2, 47), (47, 2)] {
        assert_close(
            rgb_at(&img, x, y),
            [0, 255, 0],
            8,
            &format!("pixel ({x},{y})"),
        );
    }
}

#[test]
fn fit_fill_stretches_to_the_box_ignoring_the_aspect_ratio() {
    let tree = TestTree::new().png_image("in/bands.png", &bands(100, 100));
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-s", "60x60", "--fit", "fill"]);
    let img = decode(&out.join("bands.png"));
    assert_eq!(img.dimensions(), (60, 60));
    // All three bands survive, each squeezed to a third of the width.
    assert_close(rgb_at(&img, 8, 30), [255, 0, 0], 8, "left band");
    assert_close(rgb_at(&img, 30, 30), [0, 255, 0], 8, "middle band");
    assert_close(rgb_at(&img, 51, 30), [0, 0, 255], 8, "right band");
}

#[test]
fn fit_contain_pads_the_box_with_the_background_colour() {
    let tree = TestTree::new().png_image("in/bands.png", &bands(100, 100));
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-s", "60x60", "--fit", "contain"])
        .args(["--background", "#ff00ff", "-f", "jpeg"])
        .assert()
        .code(0);
    let img = decode(&out.join("bands.jpg"));
    save_result("fit_contain", &img);
    assert_eq!(img.dimensions(), (60, 60));
    // The 300x100 source becomes 60x20, centred vertically (rows 20..40), padded above and below.
    let magenta = [255, 0, 255];
    assert_close(rgb_at(&img, 30, 4), magenta, 12, "padding above");
    assert_close(rgb_at(&img, 30, 55), magenta, 12, "padding below");
    assert_close(rgb_at(&img, 30, 30), [0, 255, 0], 12, "image centre");
    assert_close(rgb_at(&img, 5, 30), [255, 0, 0], 16, "image left");
    assert_close(rgb_at(&img, 54, 30), [0, 0, 255], 16, "image right");
}

// ---------------------------------------------------------------------------------------------
// Where outputs go

#[test]
fn folder_inputs_are_mirrored_below_the_output_folder() {
    let tree = TestTree::new()
        .png("in/top.png", 200, 100)
        .jpeg("in/2024/summer/beach.jpg", 300, 200)
        .png("in/2024/summer/deeper/still/deeper.png", 100, 300)
        .jpeg("in/2023/winter.jpg", 64, 64);
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-w", "50"]);
    let want: Vec<PathBuf> = [
        "2023/winter.jpg",
        "2024/summer/beach.jpg",
        "2024/summer/deeper/still/deeper.png",
        "top.png",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(files_under(&out), want);
    assert_eq!(dims(&out.join("top.png")), (50, 25));
    assert_eq!(dims(&out.join("2024/summer/beach.jpg")), (50, 33));
    assert_eq!(
        dims(&out.join("2024/summer/deeper/still/deeper.png")),
        (50, 150)
    );
    assert_eq!(dims(&out.join("2023/winter.jpg")), (50, 50));
}

#[test]
fn file_inputs_go_to_the_top_of_the_output_folder() {
    let tree = TestTree::new()
        .png("in/a/b/c/deep.png", 200, 100)
        .jpeg("in/x/photo.jpg", 200, 100);
    let out = tree.path("out");
    presize()
        .arg(tree.path("in/a/b/c/deep.png"))
        .arg(tree.path("in/x/photo.jpg"))
        .args(["-o", p(&out), "-w", "40"])
        .assert()
        .code(0);
    assert_eq!(
        files_under(&out),
        vec![PathBuf::from("deep.png"), PathBuf::from("photo.jpg")]
    );
    assert_eq!(dims(&out.join("deep.png")), (40, 20));
    assert_eq!(dims(&out.join("photo.jpg")), (40, 20));
}

#[test]
fn same_format_outputs_keep_the_input_extension_and_others_get_the_format_extension() {
    let png = common::png_bytes(&DynamicImage::ImageRgb8(common::gradient(80, 40)));
    let tiff = common::encoded(
        &DynamicImage::ImageRgb8(common::gradient(80, 40)),
        image::ImageFormat::Tiff,
    );
    let tree = TestTree::new()
        .jpeg("in/upper.JPG", 80, 40)
        .jpeg("in/long.jpeg", 80, 40)
        .file("in/mixed.Png", &png)
        .file("in/scan.tiff", &tiff)
        .file("in/noext", &png)
        .file("in/png_data_named.jpg", &png);
    let same = tree.path("same");
    resize_ok(tree.path("in"), &same, &["-w", "20"]);
    let want = [
        "long.jpeg",
        "mixed.Png",
        "noext.png",
        "png_data_named.png",
        "scan.tiff",
        "upper.JPG",
    ];
    let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
    assert_eq!(files_under(&same), want);
    assert!(fs::read(same.join("png_data_named.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));

    let jpeg = tree.path("jpeg");
    resize_ok(tree.path("in"), &jpeg, &["-w", "20", "-f", "jpeg"]);
    let want = [
        "long.jpeg",
        "mixed.jpg",
        "noext.jpg",
        "png_data_named.jpg",
        "scan.jpg",
        "upper.JPG",
    ];
    let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
    assert_eq!(files_under(&jpeg), want);

    let tif = tree.path("tif");
    presize()
        .arg(tree.path("in/upper.JPG"))
        .arg(tree.path("in/scan.tiff"))
        .args(["-o", p(&tif), "-w", "20", "-f", "tiff"])
        .assert()
        .code(0);
    assert_eq!(
        files_under(&tif),
        vec![PathBuf::from("scan.tiff"), PathBuf::from("upper.tif")]
    );
}

#[test]
fn every_output_format_writes_a_decodable_file_of_that_format() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .jpeg("in/b.jpg", 200, 100);
    let reference = tree.path("reference");
    resize_ok(
        tree.path("in/a.png"),
        &reference,
        &["-w", "100", "-f", "png"],
    );
    let reference = decode(&reference.join("a.png"));

    // (flag value, extension, magic bytes at offset 0 (or 8 for WebP), worst mean error vs PNG)
    let formats: &[(&str, &str, &[u8], f64)] = &[
        ("webp", "webp", b"WEBP", 4.0),
        ("png", "png", b"\x89PNG\r\n\x1a\n", 0.0),
        ("jpeg", "jpg", b"\xff\xd8\xff", 4.0),
        ("jpg", "jpg", b"\xff\xd8\xff", 4.0),
        ("gif", "gif", b"GIF8", 12.0),
        ("tiff", "tif", b"", 0.0),
        ("tif", "tif", b"", 0.0),
        ("bmp", "bmp", b"BM", 0.0),
    ];
    for &(flag, ext, magic, tolerance) in formats {
        let out = tree.path(&format!("out-{flag}"));
        resize_ok(tree.path("in"), &out, &["-w", "100", "-f", flag]);
        for stem in ["a", "b"] {
            let path = out.join(format!("{stem}.{ext}"));
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("-f {flag}: {stem}: {e}"));
            let head_ok = match flag {
                "webp" => bytes.starts_with(b"RIFF") && bytes[8..12] == *magic,
                "tiff" | "tif" => bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*"),
                _ => bytes.starts_with(magic),
            };
            assert!(head_ok, "-f {flag}: {} has the wrong magic", path.display());
            let img = decode(&path);
            assert_eq!(img.dimensions(), (100, 50), "-f {flag}: {stem}");
            if stem == "a" {
                let err = mean_abs_diff(&img, &reference);
                assert!(
                    err <= tolerance,
                    "-f {flag}: mean error {err:.2} against the PNG output, allowed {tolerance}"
                );
            }
        }
        assert_eq!(files_under(&out).len(), 2, "-f {flag}: exactly two outputs");
    }
}

#[test]
fn lossless_webp_keeps_the_resized_pixels_exactly() {
    let tree = TestTree::new().png("in/a.png", 200, 100);
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("png")), "-w", "100"])
        .assert()
        .code(0);
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("webp")), "-w", "100"])
        .args(["-f", "webp", "--lossless"])
        .assert()
        .code(0);
    let png = decode(&tree.path("png/a.png"));
    let webp = decode(&tree.path("webp/a.webp"));
    assert_eq!(mean_abs_diff(&png, &webp), 0.0);
}

#[test]
fn a_lower_quality_gives_a_smaller_and_less_faithful_jpeg() {
    let tree = TestTree::new().copy("photos/rocket_640x427_adobergb_icc.jpg", "in/rocket.jpg");
    let run = |q: &str| {
        let out = tree.path(&format!("q{q}"));
        resize_ok(tree.path("in"), &out, &["-w", "320", "-Q", q]);
        out.join("rocket.jpg")
    };
    let (low, high) = (run("10"), run("95"));
    let lossless = tree.path("png");
    resize_ok(tree.path("in"), &lossless, &["-w", "320", "-f", "png"]);
    let reference = decode(&lossless.join("rocket.png"));
    let (low_db, high_db) = (
        psnr(&decode(&low), &reference),
        psnr(&decode(&high), &reference),
    );
    let (low_len, high_len) = (
        fs::metadata(&low).unwrap().len(),
        fs::metadata(&high).unwrap().len(),
    );
    assert!(
        low_len * 2 < high_len,
        "-Q 10 is {low_len} B, -Q 95 is {high_len} B"
    );
    assert!(
        low_db + 5.0 < high_db,
        "-Q 10 gives {low_db:.1} dB, -Q 95 {high_db:.1} dB"
    );
}

#[test]
fn every_sample_format_in_testdata_is_read_and_halved() {
    let out = tempfile::tempdir().unwrap();
    let (code, lines, stderr) =
        run_json(&[p(&testdata("formats")), "-o", p(out.path()), "-s", "50%"]);
    assert_eq!(code, 0, "{stderr}");
    let files = file_lines(&lines);
    assert_eq!(files.len(), 13, "one line per file in testdata/formats");
    for line in files {
        assert_eq!(line["status"], "written", "{line}");
        let input = Path::new(line["input"].as_str().unwrap());
        let src = decode(input);
        let o = &outputs(line)[0];
        let path = Path::new(o["path"].as_str().unwrap());
        let want = (
            (f64::from(src.width()) / 2.0).round() as u32,
            (f64::from(src.height()) / 2.0).round() as u32,
        );
        assert_eq!(dims(path), want, "{}", input.display());
        assert_eq!(
            (o["width"].as_u64().unwrap(), o["height"].as_u64().unwrap()),
            (u64::from(want.0), u64::from(want.1))
        );
    }
}

#[test]
fn cmyk_jpegs_keep_their_colours() {
    // Adobe (inverted) YCCK: getting the inversion wrong turns the green lawn magenta.
    let name = "cmyk_ycck_500x333_swop_icc";
    let out = tempfile::tempdir().unwrap();
    presize()
        .arg(testdata(&format!("photos/{name}.jpg")))
        .args([
            "-o",
            p(out.path()),
            "-s",
            "100%",
            "-f",
            "png",
            "--no-fast-shrink",
        ])
        .assert()
        .code(0);
    let ours = decode(&out.path().join(format!("{name}.png")));
    let theirs = decode(&testdata(&format!("photos/{name}.jpg")));
    assert_eq!(ours.dimensions(), (500, 333));
    // The lawn (lower left) is green. Through the embedded SWOP profile its mean is
    // (115, 138, 86), exactly ImageMagick's `-intent relative -profile sRGB` conversion of the
    // same crop; the plain formula used before gave an over-saturated (92, 152, 38). Inverted
    // CMYK would make it magenta (green below red and blue).
    let lawn = ours.crop_imm(20, 220, 100, 40).to_rgb8();
    let n = f64::from(100 * 40);
    let mean = |c: usize| lawn.pixels().map(|p| f64::from(p[c])).sum::<f64>() / n;
    let (r, g, b) = (mean(0), mean(1), mean(2));
    assert!(
        (r - 115.0).abs() <= 4.0 && (g - 138.0).abs() <= 4.0 && (b - 86.0).abs() <= 4.0,
        "the lawn is ({r:.0}, {g:.0}, {b:.0}), not ImageMagick's green (115, 138, 86)"
    );
    // Measured at commit 7da8db2 against the `image` crate's decoder: 65.3 dB (an inverted
    // conversion: 5.9 dB). The bound leaves room for a colour-managed conversion through the
    // embedded SWOP profile, which would differ from the `image` crate's plain formula.
    let db = psnr(&ours, &theirs);
    assert!(db >= 20.0, "{db:.2} dB against an independent CMYK decoder");
}

// ---------------------------------------------------------------------------------------------
// EXIF orientation

#[test]
fn exif_orientation_makes_every_output_upright_and_drops_the_tag() {
    let out = tempfile::tempdir().unwrap();
    presize()
        .arg(testdata("orientation"))
        .args(["-o", p(out.path()), "-s", "240x240"])
        .assert()
        .code(0);
    for (kind, n_range, want) in [
        ("Landscape", 0..=8, (240, 160)),
        ("Portrait", 1..=8, (160, 240)),
    ] {
        let reference = decode(&out.path().join(format!("{kind}_1.jpg")));
        // Every wrong orientation of the same size as the right one.
        let wrong = [reference.fliph(), reference.flipv(), reference.rotate180()];
        for n in n_range {
            let path = out.path().join(format!("{kind}_{n}.jpg"));
            let img = decode(&path);
            assert_eq!(img.dimensions(), want, "{kind}_{n} must be upright");
            if n != 1 {
                let right = mean_abs_diff(&img, &reference);
                let least_wrong = wrong
                    .iter()
                    .map(|w| mean_abs_diff(&img, w))
                    .fold(f64::INFINITY, f64::min);
                // Measured at commit 7da8db2: right 1.7-2.7, least wrong 39.6 (portrait) and
                // 70.9 (landscape); the files differ only in a painted digit and JPEG noise.
                assert!(
                    right < 6.0 && right * 4.0 < least_wrong,
                    "{kind}_{n}: mean difference {right:.1} from {kind}_1, {least_wrong:.1} from a mis-oriented copy"
                );
            }
            let source = testdata(&format!("orientation/{kind}_{n}.jpg"));
            let had = common::meta::read_metadata(&source).tag(exif::Tag::Orientation);
            if n > 1 {
                assert_eq!(had, Some(n.to_string()), "the {kind}_{n} fixture's own tag");
            }
            let tag = common::meta::read_metadata(&path).tag(exif::Tag::Orientation);
            assert!(
                matches!(tag.as_deref(), None | Some("1")),
                "{kind}_{n}: output still carries Orientation {tag:?}"
            );
        }
    }
}

#[test]
fn exif_orientation_of_png_inputs_is_applied_too() {
    // Stored pixels: a 200x100 gradient. Displayed: that gradient transformed as EXIF says.
    let stored = DynamicImage::ImageRgb8(common::gradient(200, 100));
    let displayed = |n: u16| match n {
        2 => stored.fliph(),
        3 => stored.rotate180(),
        4 => stored.flipv(),
        5 => stored.rotate90().fliph(),
        6 => stored.rotate90(),
        7 => stored.rotate270().fliph(),
        8 => stored.rotate270(),
        _ => stored.clone(),
    };
    let mut tree = TestTree::new();
    for n in 1..=8 {
        tree = tree
            .file(
                &format!("tagged/o{n}.png"),
                &common::png_with_orientation(&stored, n),
            )
            .png_image(&format!("upright/o{n}.png"), &displayed(n));
    }
    for folder in ["tagged", "upright"] {
        presize()
            .arg(tree.path(folder))
            .args(["-o", p(&tree.path(&format!("out-{folder}"))), "-w", "50"])
            .assert()
            .code(0);
    }
    for n in 1..=8 {
        let ours = decode(&tree.path(&format!("out-tagged/o{n}.png")));
        let want = decode(&tree.path(&format!("out-upright/o{n}.png")));
        let expected_dims = if n >= 5 { (50, 100) } else { (50, 25) };
        assert_eq!(ours.dimensions(), expected_dims, "orientation {n}");
        assert_eq!(want.dimensions(), expected_dims, "orientation {n}");
        let diff = mean_abs_diff(&ours, &want);
        assert!(diff < 1.0, "orientation {n}: mean difference {diff:.2}");
        let bytes = fs::read(tree.path(&format!("out-tagged/o{n}.png"))).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"eXIf"),
            "orientation {n}: the output still carries EXIF"
        );
    }
}

#[test]
fn box_fits_of_rotated_photos_match_the_upright_one() {
    // Cover crops, fill stretches and contain pads are computed in displayed orientation, then
    // mapped onto the stored (rotated) pixels: any mix-up of the axes shows here.
    for (size, fit) in [
        ("120x40", "cover"),
        ("120x40", "fill"),
        ("120x120", "contain"),
    ] {
        let out = tempfile::tempdir().unwrap();
        presize()
            .arg(testdata("orientation"))
            .args(["-o", p(out.path()), "-s", size, "--fit", fit, "-f", "png"])
            .assert()
            .code(0);
        let want = if size == "120x40" {
            (120, 40)
        } else {
            (120, 120)
        };
        for kind in ["Landscape", "Portrait"] {
            let reference = decode(&out.path().join(format!("{kind}_1.png")));
            assert_eq!(reference.dimensions(), want, "--fit {fit}");
            for n in 2..=8 {
                let img = decode(&out.path().join(format!("{kind}_{n}.png")));
                assert_eq!(img.dimensions(), want, "--fit {fit}: {kind}_{n}");
                let right = mean_abs_diff(&img, &reference);
                let wrong = mean_abs_diff(&img, &reference.rotate180())
                    .min(mean_abs_diff(&img, &reference.fliph()))
                    .min(mean_abs_diff(&img, &reference.flipv()));
                // Measured at commit 7da8db2: right 0.5-2.0; wrong 23-69 depending on the fit.
                assert!(
                    right < 6.0 && right * 4.0 < wrong,
                    "--fit {fit}: {kind}_{n} is {right:.1} from {kind}_1, {wrong:.1} from a mis-oriented copy"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Alpha

#[test]
fn png_alpha_is_kept_in_png_output_without_colour_bleeding_from_transparent_pixels() {
    let tree = TestTree::new()
        .png_image("in/rb.png", &transparent_red_and_blue(200, 100))
        .png_alpha("in/ramp.png", 64, 64);
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-w", "100"]);
    let img = decode(&out.join("rb.png"));
    save_result("alpha_png", &img);
    assert!(img.color().has_alpha(), "PNG output lost its alpha channel");
    let img = img.to_rgba8();
    assert_eq!(img.dimensions(), (100, 50));
    assert!(
        img.get_pixel(10, 25)[3] <= 2,
        "left half must stay transparent"
    );
    assert_eq!(
        img.get_pixel(90, 25).0,
        [0, 0, 255, 255],
        "right half opaque blue"
    );
    // The red of fully transparent pixels must not leak into visible ones (premultiplied alpha).
    for (x, y, px) in img.enumerate_pixels() {
        if px[3] >= 16 {
            assert!(
                px[0] <= 16,
                "pixel ({x},{y}) = {:?} shows the hidden red",
                px.0
            );
        }
    }
    // The smaller, already-fitting ramp keeps its alpha values too.
    let ramp = decode(&out.join("ramp.png")).to_rgba8();
    assert_eq!(ramp.get_pixel(32, 0)[3], 255);
    assert_eq!(ramp.get_pixel(32, 63)[3], 0);
}

#[test]
fn alpha_is_flattened_onto_white_for_jpeg_output() {
    let tree = TestTree::new().png_image("in/rb.png", &transparent_red_and_blue(200, 100));
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-w", "100", "-f", "jpeg"]);
    let img = decode(&out.join("rb.jpg"));
    assert!(!img.color().has_alpha());
    assert_close(
        rgb_at(&img, 10, 25),
        [255, 255, 255],
        6,
        "transparent → white",
    );
    assert_close(
        rgb_at(&img, 90, 25),
        [0, 0, 255],
        8,
        "opaque blue stays blue",
    );
}

#[test]
fn alpha_is_flattened_onto_the_background_colour() {
    let tree = TestTree::new().png_image("in/rb.png", &transparent_red_and_blue(200, 100));
    let out = tree.path("orange");
    resize_ok(
        tree.path("in"),
        &out,
        &["-w", "100", "-f", "jpeg", "--background", "#ff8800"],
    );
    let img = decode(&out.join("rb.jpg"));
    assert_close(
        rgb_at(&img, 10, 25),
        [255, 136, 0],
        8,
        "transparent → #ff8800",
    );
    assert_close(
        rgb_at(&img, 90, 25),
        [0, 0, 255],
        8,
        "opaque blue stays blue",
    );

    // On black, any red seen at the edge can only come from the hidden transparent pixels.
    let out = tree.path("black");
    resize_ok(
        tree.path("in"),
        &out,
        &["-w", "100", "-f", "jpeg", "--background", "black"],
    );
    let img = decode(&out.join("rb.jpg"));
    save_result("alpha_on_black", &img);
    assert_close(rgb_at(&img, 10, 25), [0, 0, 0], 6, "transparent → black");
    let worst_red = img.to_rgb8().pixels().map(|p| p[0]).max().unwrap();
    assert!(
        worst_red <= 24,
        "hidden red shows through: red channel up to {worst_red}"
    );
}

// ---------------------------------------------------------------------------------------------
// Quality

/// Resizes the two reference photos to 320 px wide (PNG output, so that only decode and resample
/// are measured, not our JPEG encoder) with `extra` flags, checks their size, and returns each
/// one's PSNR against the ImageMagick Lanczos reference in `testdata/reference/`.
fn psnr_against_imagemagick(extra: &[&str]) -> Vec<(&'static str, f64)> {
    let out = tempfile::tempdir().unwrap();
    let cases = [
        ("dune_1680x1050_exif", (320, 200)),
        ("rocket_640x427_adobergb_icc", (320, 214)),
    ];
    presize()
        .args(cases.map(|(name, _)| testdata(&format!("photos/{name}.jpg"))))
        .args(["-o", p(out.path()), "-w", "320", "-f", "png"])
        .args(extra)
        .assert()
        .code(0);
    cases
        .iter()
        .map(|&(name, want)| {
            let ours = decode(&out.path().join(format!("{name}.png")));
            let reference = decode(&testdata(&format!("reference/{name}_320w_lanczos.png")));
            assert_eq!(ours.dimensions(), want, "{name}");
            assert_eq!(reference.dimensions(), want, "{name} reference");
            save_result(&format!("{name}_320w{}", extra.join("")), &ours);
            let db = psnr(&ours, &reference);
            eprintln!("{name} {extra:?}: {db:.2} dB against ImageMagick Lanczos");
            (name, db)
        })
        .collect()
}

#[test]
fn the_lanczos_resampler_matches_imagemagick_on_real_photos() {
    // Measured at commit 7da8db2: dune 51.17 dB, rocket 51.19 dB. Bound: 2 dB below.
    for (name, db) in psnr_against_imagemagick(&["--no-fast-shrink"]) {
        assert!(db >= 49.0, "{name}: {db:.2} dB, expected at least 49 dB");
    }
}

#[test]
fn shrink_on_load_costs_photos_only_a_little_fidelity() {
    // Regression: the first version let the IDCT shrink all the way down to the target size, so
    // its block averaging (not Lanczos) did the resampling: dune 32.41 dB, rocket 33.67 dB.
    // Keeping at least 2x the target (as libvips does) measures dune 46.1 dB, rocket 51.2 dB
    // (vipsthumbnail on the 800 px corpus: 50-51 dB). The bound is 2 dB below the lower.
    let results = psnr_against_imagemagick(&[]);
    let low: Vec<String> = results
        .iter()
        .filter(|(_, db)| *db < 44.0)
        .map(|(name, db)| format!("{name}: {db:.2} dB"))
        .collect();
    assert!(
        low.is_empty(),
        "with shrink-on-load, expected at least 44 dB: {}",
        low.join(", ")
    );
}

#[test]
fn a_synthetic_gradient_downscale_matches_a_box_average() {
    // Steep ramps (2 levels per pixel) so a half-pixel shift or nearest-neighbour sampling would
    // be off by about 2-3 levels everywhere, far above the tolerance.
    let (w, h, k) = (128u32, 128u32, 4u32);
    let src = RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (2 * x) as u8,
            (2 * y) as u8,
            ((x + y) * 255 / (w + h - 2)) as u8,
        ])
    });
    let tree = TestTree::new().png_image("in/ramp.png", &DynamicImage::ImageRgb8(src.clone()));
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-w", &(w / k).to_string()]);
    let ours = decode(&out.join("ramp.png")).to_rgb8();
    assert_eq!(ours.dimensions(), (w / k, h / k));
    let boxed = RgbImage::from_fn(w / k, h / k, |bx, by| {
        let mut sum = [0u32; 3];
        for y in by * k..(by + 1) * k {
            for x in bx * k..(bx + 1) * k {
                for (s, v) in sum.iter_mut().zip(src.get_pixel(x, y).0) {
                    *s += u32::from(v);
                }
            }
        }
        let n = k * k;
        Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
    });
    // The outermost ring is excluded: Lanczos legitimately differs from a box at the borders.
    let (mut total, mut count) = (0.0, 0.0);
    for y in 1..h / k - 1 {
        for x in 1..w / k - 1 {
            for c in 0..3 {
                total += (f64::from(ours.get_pixel(x, y)[c]) - f64::from(boxed.get_pixel(x, y)[c]))
                    .abs();
                count += 1.0;
            }
        }
    }
    let mean = total / count;
    // Measured at commit 7da8db2: 0.29 levels. A half-source-pixel shift gives about 0.8.
    assert!(
        mean < 0.5,
        "mean error {mean:.3} levels against the box average"
    );
}

// ---------------------------------------------------------------------------------------------
// Reporting

#[test]
fn json_report_has_one_line_per_image_and_a_matching_summary() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .jpeg("in/sub/b.jpg", 300, 150)
        .png("in/small.png", 40, 20)
        .file("in/README.txt", b"not an image, ignored")
        .file("in/broken.jpg", b"");
    let out = tree.path("out");
    let output = presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "100", "-j", "3", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.ends_with('\n'));
    assert!(
        !stdout.contains("presize:"),
        "human output leaked into stdout"
    );
    let lines = json_lines(stdout.as_bytes());
    assert_eq!(lines.len(), stdout.lines().count());
    let files = file_lines(&lines);
    assert_eq!(
        files.len(),
        4,
        "one line per image input, none for README.txt"
    );
    assert!(!stdout.contains("README.txt"));

    let mut bytes_out = 0;
    for name in ["a.png", "b.jpg", "small.png"] {
        let line = line_for(&lines, name);
        assert_eq!(line["status"], "written", "{line}");
        assert!(line["error"].is_null());
        let outs = outputs(line);
        assert_eq!(outs.len(), 1);
        let o = &outs[0];
        let path = Path::new(o["path"].as_str().unwrap());
        let (w, h) = dims(path);
        assert_eq!(o["width"], w);
        assert_eq!(o["height"], h);
        assert_eq!(o["bytes"], fs::metadata(path).unwrap().len());
        bytes_out += fs::metadata(path).unwrap().len();
    }
    assert_eq!(outputs(line_for(&lines, "a.png"))[0]["format"], "png");
    assert_eq!(outputs(line_for(&lines, "b.jpg"))[0]["format"], "jpeg");
    assert_eq!(outputs(line_for(&lines, "small.png"))[0]["width"], 40);
    let broken = line_for(&lines, "broken.jpg");
    assert_eq!(broken["status"], "failed");
    assert!(broken["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(outputs(broken).is_empty());

    let s = summary(&lines);
    assert_eq!(s["inputs"], 4);
    assert_eq!(s["written"], 3);
    assert_eq!(s["skipped"], 0);
    assert_eq!(s["failed"], 1);
    assert_eq!(s["planned"], 0);
    assert_eq!(s["workers"], 3);
    assert_eq!(s["interrupted"], false);
    assert_eq!(s["bytes_out"], bytes_out);
    let bytes_in: u64 = ["a.png", "sub/b.jpg", "small.png"]
        .iter()
        .map(|f| fs::metadata(tree.path(&format!("in/{f}"))).unwrap().len())
        .sum();
    assert_eq!(s["bytes_in"], bytes_in);
    assert!(s["elapsed_s"].as_f64().is_some_and(|t| t > 0.0));
    assert!(s["images_per_s"].as_f64().is_some_and(|r| r > 0.0));
    for stage in ["decode", "resize", "encode", "write", "read"] {
        assert!(
            s["stages_s"][stage].as_f64().is_some_and(|t| t >= 0.0),
            "stages_s.{stage}"
        );
    }
    // Failures are still explained to people, on stderr.
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("broken.jpg"), "{stderr}");
}

#[test]
fn human_output_goes_to_stderr_and_quiet_keeps_only_errors() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .file("in/broken.png", b"<html>404</html>");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("out1")), "-w", "50"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(contains("broken.png").and(contains("failed")));
    let quiet = presize()
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("out2")), "-w", "50", "-q"])
        .output()
        .unwrap();
    assert_eq!(quiet.status.code(), Some(1));
    assert!(quiet.stdout.is_empty());
    let stderr = String::from_utf8(quiet.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "only the error line: {stderr}");
    assert!(stderr.contains("broken.png"));
    // -v names every written file.
    presize()
        .arg(tree.path("in/a.png"))
        .args(["-o", p(&tree.path("out3")), "-w", "50", "-v"])
        .assert()
        .code(0)
        .stdout(predicate::str::is_empty())
        .stderr(contains("a.png"));
}

// ---------------------------------------------------------------------------------------------
// Re-runs and determinism

fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn a_second_run_skips_up_to_date_outputs_and_overwrite_redoes_them() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .jpeg("in/b.jpg", 200, 100)
        .png("in/sub/c.png", 100, 200);
    let out = tree.path("out");
    let input = tree.path("in");
    let args = [p(&input), "-o", p(&out), "-w", "50"];

    let (code, first, _) = run_json(&args);
    assert_eq!(code, 0);
    assert_eq!(summary(&first)["written"], 3);
    let before = snapshot(&out);
    let mtimes: Vec<SystemTime> = before
        .iter()
        .map(|(rel, _)| fs::metadata(out.join(rel)).unwrap().modified().unwrap())
        .collect();

    let (code, second, _) = run_json(&args);
    assert_eq!(code, 0);
    for line in file_lines(&second) {
        assert_eq!(line["status"], "skipped", "{line}");
        assert_eq!(line["reason"], "up-to-date");
    }
    let s = summary(&second);
    assert_eq!(
        (s["inputs"].as_u64(), s["skipped"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        (s["written"].as_u64(), s["failed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(snapshot(&out), before);
    for ((rel, _), t) in before.iter().zip(&mtimes) {
        let now = fs::metadata(out.join(rel)).unwrap().modified().unwrap();
        assert_eq!(now, *t, "{} was rewritten", rel.display());
    }

    // An input newer than its output is regenerated; the others stay skipped.
    let in_a = tree.path("in/a.png");
    set_mtime(&in_a, SystemTime::now() + Duration::from_secs(120));
    let (code, third, _) = run_json(&args);
    assert_eq!(code, 0);
    assert_eq!(line_for(&third, "a.png")["status"], "written");
    assert_eq!(line_for(&third, "b.jpg")["status"], "skipped");
    assert_eq!(line_for(&third, "c.png")["status"], "skipped");
    assert_eq!(dims(&out.join("a.png")), (50, 25));

    // --overwrite redoes everything even though every output is now up to date.
    let mut overwrite = args.to_vec();
    overwrite.push("--overwrite");
    let (code, fourth, _) = run_json(&overwrite);
    assert_eq!(code, 0);
    for line in file_lines(&fourth) {
        assert_eq!(line["status"], "written", "{line}");
    }
    assert_eq!(summary(&fourth)["written"], 3);
    assert!(!files_under(&out)
        .iter()
        .any(|f| f.to_string_lossy().contains(".presize-")));
}

#[test]
fn one_and_four_workers_produce_byte_identical_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |jobs: &str| {
        let out = tmp.path().join(format!("j{jobs}"));
        let (code, lines, stderr) = run_json(&[
            p(&testdata("photos")),
            p(&testdata("orientation")),
            "-o",
            p(&out),
            "-w",
            "200",
            "-j",
            jobs,
        ]);
        assert_eq!(code, 0, "{stderr}");
        let s = summary(&lines).clone();
        let counts: Vec<Value> = [
            "inputs",
            "written",
            "skipped",
            "failed",
            "bytes_in",
            "bytes_out",
        ]
        .iter()
        .map(|k| s[k].clone())
        .collect();
        let mut statuses: Vec<(String, String)> = file_lines(&lines)
            .iter()
            .map(|l| (l["input"].to_string(), l["status"].to_string()))
            .collect();
        statuses.sort();
        (snapshot(&out), counts, statuses, s["workers"].clone())
    };
    let (one, one_counts, one_statuses, one_workers) = run("1");
    let (four, four_counts, four_statuses, four_workers) = run("4");
    assert_eq!(
        one.len(),
        6 + 17,
        "six photos and seventeen orientation files"
    );
    assert_eq!(one_counts[0], 23);
    assert_eq!(
        one.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        four.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((path, a), (_, b)) in one.iter().zip(&four) {
        assert!(a == b, "{} differs between -j1 and -j4", path.display());
    }
    assert_eq!(one_counts, four_counts);
    assert_eq!(one_statuses, four_statuses);
    assert_eq!(
        (one_workers, four_workers),
        (Value::from(1), Value::from(4))
    );
}

// ---------------------------------------------------------------------------------------------
// Bad inputs and safety

/// `testdata/bad` files that must be reported as failures.
const MUST_FAIL: &[&str] = &[
    "empty.jpg",
    "empty.png",
    "text_named.jpg",
    "html_named.png",
    "jpeg_magic_then_garbage.jpg",
    "png_cut_after_ihdr.png",
    "jpeg-decoder_missing-sos.jpg",
    // Bombs: refused on their header by the pixel limit.
    "jpeg_sof_65000x65000.jpg",
    "png_50000x50000_1bit_complete.png",
    "png_50000x50000_rgba8_tiny.png",
];

/// Truncated and fuzzed files: failing or decoding partly are both fine; crashing is not.
const MAY_FAIL: &[&str] = &[
    "png_cut_at_50pct.png",
    "baseline_jpeg_cut_at_40pct.jpg",
    "image-rs_panic.webp",
    "jpeg-decoder_dc-predictor-overflow.jpg",
];

#[test]
fn bad_files_fail_one_by_one_and_leave_nothing_behind() {
    let mut tree = TestTree::new()
        .png("in/good1.png", 300, 200)
        .jpeg("in/good2.jpg", 300, 200)
        .copy("photos/rocket_640x427_adobergb_icc.jpg", "in/good3.jpg");
    for name in MUST_FAIL.iter().chain(MAY_FAIL) {
        tree = tree.copy(&format!("bad/{name}"), &format!("in/{name}"));
    }
    assert_eq!(
        MUST_FAIL.len() + MAY_FAIL.len(),
        fs::read_dir(testdata("bad")).unwrap().count(),
        "every testdata/bad file is classified above"
    );
    let out = tree.path("out");
    let (code, lines, stderr) =
        run_json(&[p(&tree.path("in")), "-o", p(&out), "-w", "100", "-j", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    for name in MUST_FAIL {
        let line = line_for(&lines, name);
        assert_eq!(line["status"], "failed", "{name}: {line}");
        assert!(
            stderr.contains(name),
            "{name} is not named on stderr:\n{stderr}"
        );
    }
    for name in MAY_FAIL {
        let line = line_for(&lines, name);
        match line["status"].as_str().unwrap() {
            "failed" => assert!(stderr.contains(name), "{name} failed silently:\n{stderr}"),
            "written" => {}
            other => panic!("{name}: unexpected status {other}"),
        }
    }
    let mut written_outputs = Vec::new();
    for line in file_lines(&lines) {
        if line["status"] == "written" {
            let path = PathBuf::from(outputs(line)[0]["path"].as_str().unwrap());
            decode(&path);
            written_outputs.push(path.strip_prefix(&out).unwrap().to_path_buf());
        }
    }
    for good in ["good1.png", "good2.jpg", "good3.jpg"] {
        assert_eq!(line_for(&lines, good)["status"], "written");
        assert!(written_outputs.contains(&PathBuf::from(good)));
    }
    let failed = file_lines(&lines)
        .iter()
        .filter(|l| l["status"] == "failed")
        .count();
    let s = summary(&lines);
    assert_eq!(s["failed"], failed);
    assert_eq!(s["inputs"], MUST_FAIL.len() + MAY_FAIL.len() + 3);
    assert_eq!(s["written"], written_outputs.len());

    // Exactly the written outputs exist: no temporary `.presize-*` files, nothing for failures.
    written_outputs.sort();
    assert_eq!(files_under(&out), written_outputs);
    let summary_text = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("failed"))
        .unwrap();
    assert!(summary_text.contains(&failed.to_string()), "{summary_text}");
}

// Interruption (SIGINT and SIGTERM, exit 130, no partial files, the not-processed count) is
// tested in tests/reliability.rs.

#[test]
fn a_corrupt_jpeg_is_reported_the_same_whatever_the_worker_decoded_before() {
    // Regression: libjpeg-turbo keeps header state in its handle, so a reused decompressor
    // answered a stream without a frame header with the previous file's size.
    let garbage = testdata("bad/jpeg_magic_then_garbage.jpg");
    let bomb = testdata("bad/jpeg_sof_65000x65000.jpg");
    let out = tempfile::tempdir().unwrap();
    let (_, alone, _) = run_json(&[p(&garbage), "-o", p(out.path()), "-w", "10", "-j", "1"]);
    let (_, after, _) = run_json(&[
        p(&bomb),
        p(&garbage),
        "-o",
        p(out.path()),
        "-w",
        "10",
        "-j",
        "1",
    ]);
    let alone = line_for(&alone, "jpeg_magic_then_garbage.jpg")["error"].clone();
    let after = line_for(&after, "jpeg_magic_then_garbage.jpg")["error"].clone();
    assert!(
        !after.to_string().contains("65000"),
        "the garbage file is reported with the bomb's size: {after}"
    );
    assert_eq!(alone, after);
}

#[test]
fn two_inputs_mapping_to_one_output_fail_the_second_naming_both() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .jpeg("in/a.jpg", 200, 100)
        .png("in/other.png", 200, 100);
    let inputs_before = snapshot(&tree.path("in"));
    let out = tree.path("in/out");
    let (code, lines, stderr) =
        run_json(&[p(&tree.path("in")), "-o", p(&out), "-w", "50", "-f", "webp"]);
    assert_eq!(code, 1, "{stderr}");
    let (a_png, a_jpg) = (line_for(&lines, "a.png"), line_for(&lines, "a.jpg"));
    let (winner, loser, loser_name, winner_name) = if a_png["status"] == "written" {
        (a_png, a_jpg, "a.jpg", "a.png")
    } else {
        (a_jpg, a_png, "a.png", "a.jpg")
    };
    assert_eq!(winner["status"], "written");
    assert_eq!(loser["status"], "failed");
    let error = loser["error"].as_str().unwrap();
    assert!(
        error.contains(winner_name) && error.contains("a.webp"),
        "the conflict names the other input and the output: {error}"
    );
    assert!(stderr.contains(loser_name));
    assert_eq!(line_for(&lines, "other.png")["status"], "written");
    assert_eq!(summary(&lines)["failed"], 1);
    assert_eq!(
        files_under(&out),
        vec![PathBuf::from("a.webp"), PathBuf::from("other.webp")]
    );
    assert_eq!(dims(&out.join("a.webp")), (50, 25));
    let inputs_now: Vec<_> = snapshot(&tree.path("in"))
        .into_iter()
        .filter(|(rel, _)| !rel.starts_with("out"))
        .collect();
    assert_eq!(inputs_now, inputs_before, "inputs changed");
}

#[test]
fn an_output_folder_inside_the_input_folder_is_never_walked() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .png("in/sub/b.png", 200, 100);
    let out = tree.path("in/thumbs");
    for run in 0..2 {
        // The second run must neither see the first run's outputs as inputs nor nest them.
        let (code, lines, stderr) = run_json(&[
            p(&tree.path("in")),
            "-o",
            p(&out),
            "-w",
            "50",
            "--overwrite",
        ]);
        assert_eq!(code, 0, "run {run}: {stderr}");
        assert_eq!(file_lines(&lines).len(), 2, "run {run}");
        for line in file_lines(&lines) {
            assert!(
                !line["input"].as_str().unwrap().contains("thumbs"),
                "{line}"
            );
        }
    }
    assert_eq!(
        files_under(&out),
        vec![PathBuf::from("a.png"), PathBuf::from("sub/b.png")]
    );
    assert_eq!(dims(&tree.path("in/a.png")), (200, 100), "input untouched");
}

#[test]
fn an_output_folder_equal_to_an_input_folder_is_refused() {
    let tree = TestTree::new().png("in/a.png", 200, 100);
    let before = snapshot(tree.root());
    for out in [
        tree.path("in"),
        tree.path("in/"),
        tree.path("in/sub/.."),
        tree.path("in/."),
    ] {
        fs::create_dir_all(tree.path("in/sub")).unwrap();
        presize()
            .arg(tree.path("in"))
            .args(["-o", p(&out), "-w", "50"])
            .assert()
            .code(2)
            .stderr(contains("--out-dir"));
        fs::remove_dir(tree.path("in/sub")).unwrap();
    }
    assert_eq!(snapshot(tree.root()), before);
}

#[test]
fn a_file_whose_output_would_be_itself_is_never_overwritten() {
    let tree = TestTree::new().png("in/a.png", 200, 100);
    let before = fs::read(tree.path("in/a.png")).unwrap();
    let assert = presize()
        .arg(tree.path("in/a.png"))
        .args(["-o", p(&tree.path("in")), "-w", "50", "--overwrite"])
        .assert();
    let code = assert.get_output().status.code();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(
        code,
        Some(1),
        "a per-file conflict, not a fatal error: {stderr}"
    );
    assert!(
        stderr.contains("a.png") && stderr.contains("is the input itself"),
        "{stderr}"
    );
    assert_eq!(fs::read(tree.path("in/a.png")).unwrap(), before);
    assert_eq!(files_under(&tree.path("in")), vec![PathBuf::from("a.png")]);
}

#[test]
fn dry_run_writes_nothing_and_plans_the_right_sizes() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .jpeg("in/sub/b.jpg", 300, 150)
        .copy("orientation/Landscape_6.jpg", "in/rotated.jpg")
        .png("in/small.png", 30, 20);
    let out = tree.path("out");
    let (code, lines, stderr) =
        run_json(&[p(&tree.path("in")), "-o", p(&out), "-w", "60", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        files_under(&out).is_empty(),
        "a dry run wrote {:?}",
        files_under(&out)
    );
    assert!(files_under(tree.root()).iter().all(|f| f.starts_with("in")));
    let want = [
        ("a.png", "out/a.png", 60, 30, "png"),
        ("b.jpg", "out/sub/b.jpg", 60, 30, "jpeg"),
        ("rotated.jpg", "out/rotated.jpg", 60, 40, "jpeg"),
        ("small.png", "out/small.png", 30, 20, "png"),
    ];
    for (input, path, w, h, format) in want {
        let line = line_for(&lines, input);
        assert_eq!(line["status"], "planned", "{line}");
        let o = &outputs(line)[0];
        assert_eq!(Path::new(o["path"].as_str().unwrap()), tree.path(path));
        assert_eq!(
            (o["width"].as_u64(), o["height"].as_u64()),
            (Some(w), Some(h)),
            "{input}"
        );
        assert_eq!(o["format"], format);
    }
    let s = summary(&lines);
    assert_eq!(
        (s["planned"].as_u64(), s["written"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(s["bytes_out"], 0);
}

#[test]
fn non_image_files_in_folders_are_ignored_silently() {
    let tree = TestTree::new()
        .png("in/a.png", 200, 100)
        .file("in/README.txt", b"holiday photos, do not delete")
        .file("in/notes.md", b"# notes")
        .file("in/sub/.hidden-config", b"x=1")
        .file("in/sub/data.bin", &[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "50"])
        .assert()
        .code(0)
        .stderr(
            contains("README")
                .or(contains("notes.md"))
                .or(contains("data.bin"))
                .not(),
        );
    assert_eq!(files_under(&out), vec![PathBuf::from("a.png")]);
    let (code, lines, _) = run_json(&[p(&tree.path("in")), "-o", p(&out), "-w", "50"]);
    assert_eq!(code, 0);
    assert_eq!(file_lines(&lines).len(), 1);
    assert_eq!(summary(&lines)["inputs"], 1);
}

#[cfg(unix)]
#[test]
fn outputs_get_the_same_permissions_as_any_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let tree = TestTree::new().png("in/a.png", 200, 100);
    let out = tree.path("out");
    resize_ok(tree.path("in"), &out, &["-w", "50"]);
    // A file created the ordinary way gets 0o666 minus the umask; a web server or a photo
    // viewer run by another user must be able to read resized images just like that one.
    let ordinary = out.join("ordinary");
    fs::write(&ordinary, b"x").unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        format!("{:o}", mode(&out.join("a.png"))),
        format!("{:o}", mode(&ordinary)),
        "output permissions differ from a normally created file"
    );
}

// ---------------------------------------------------------------------------------------------
// Usage errors and help

#[test]
fn a_missing_size_is_a_usage_error_that_says_how_to_give_one() {
    let tree = TestTree::new().png("in/a.png", 20, 10);
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("out"))])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(contains("--width").and(contains("--size")));
    assert!(!tree.path("out").exists());
}

#[test]
fn an_unknown_fit_mode_lists_the_valid_ones() {
    let tree = TestTree::new().png("in/a.png", 20, 10);
    presize()
        .arg(tree.path("in"))
        .args([
            "-o",
            p(&tree.path("out")),
            "-s",
            "10x10",
            "--fit",
            "stretch",
        ])
        .assert()
        .code(2)
        .stderr(
            contains("stretch")
                .and(contains("inside"))
                .and(contains("cover"))
                .and(contains("fill"))
                .and(contains("contain")),
        );
}

#[test]
fn a_missing_input_is_a_fatal_error_naming_it() {
    let tree = TestTree::new().png("in/a.png", 20, 10);
    presize()
        .arg(tree.path("in"))
        .arg(tree.path("no-such-folder"))
        .args(["-o", p(&tree.path("out")), "-w", "10"])
        .assert()
        .code(2)
        .stderr(contains("no-such-folder"));
    assert!(
        !tree.path("out").exists(),
        "nothing is written before a fatal error"
    );
}

#[test]
fn other_invalid_command_lines_exit_with_2() {
    let tree = TestTree::new().png("in/a.png", 20, 10);
    let out = tree.path("out");
    let bad: &[&[&str]] = &[
        &["-w", "10"],                                  // no -o
        &["-o", p(&out), "-w", "0"],                    // zero width
        &["-o", p(&out), "-w", "abc"],                  // not a number
        &["-o", p(&out), "-s", "10x10", "-w", "5"],     // size and width
        &["-o", p(&out), "-w", "10", "--fit", "cover"], // cover needs a box
        &["-o", p(&out), "-w", "10", "-Q", "0"],        // quality range
        &["-o", p(&out), "-w", "10", "-Q", "101"],
        &["-o", p(&out), "-w", "10", "-f", "heic"],
        &["-o", p(&out), "-w", "10", "--filter", "sinc"],
        &["-o", p(&out), "-w", "10", "--background", "#12"],
        &["-o", p(&out), "-w", "10", "-j", "0"],
        &["-w", "10", "--in-place", "--no-sync"], // an original is replaced by synced files only
    ];
    for args in bad {
        presize()
            .arg(tree.path("in"))
            .args(*args)
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::is_empty().not());
    }
    presize().assert().code(2).stderr(contains("INPUT"));
    assert!(!out.exists());
}

#[test]
fn help_shows_examples_and_exit_codes() {
    presize().arg("--help").assert().code(0).stdout(
        contains("Examples")
            .and(contains("Exit codes"))
            .and(contains("130"))
            .and(contains("--fit")),
    );
    presize()
        .arg("-h")
        .assert()
        .code(0)
        .stdout(contains("Exit codes"));
}

// ---------------------------------------------------------------------------------------------
// The README

#[test]
fn the_readme_smoke_command_writes_one_output_per_photo() {
    let out = tempfile::tempdir().unwrap();
    presize()
        .arg(testdata("photos"))
        .args(["-o", p(out.path()), "-w", "400"])
        .assert()
        .code(0)
        .stdout(predicate::str::is_empty());
    let photos = files_under(&testdata("photos"));
    assert_eq!(photos.len(), 6);
    assert_eq!(files_under(out.path()), photos);
    for rel in photos {
        let src = decode(&testdata("photos").join(&rel));
        let (w, h) = dims(&out.path().join(&rel));
        assert_eq!(w, src.width().min(400), "{}", rel.display());
        let want_h = (f64::from(src.height()) * f64::from(w) / f64::from(src.width())).round();
        assert_eq!(f64::from(h), want_h, "{}", rel.display());
    }
}
