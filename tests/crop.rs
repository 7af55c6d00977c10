//! Issue #15, crops that keep the subject: `--crop attention`, `--crop entropy` and `--focal`
//! keep an off-centre subject inside every `--fit cover` output, in every orientation, and
//! `--crop centre` is exactly what presize made before `--crop` existed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{decode, png_with_orientation, presize, TestTree};
use image::{imageops, DynamicImage, Rgb, RgbImage};

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A `w`×`h` scene: a soft grey ramp (little detail, no colour) with a subject at `centre`
/// (pixels): a disc of radius `r` filled with colourful, fine-grained texture.
fn scene(w: u32, h: u32, centre: (u32, u32), r: u32) -> RgbImage {
    let mut s = 0x9E37_79B9_7F4A_7C15_u64;
    RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let (dx, dy) = (
            i64::from(x) - i64::from(centre.0),
            i64::from(y) - i64::from(centre.1),
        );
        if dx * dx + dy * dy <= i64::from(r * r) {
            let n = s.to_le_bytes();
            // Saturated: red or green high, blue low, with noise.
            Rgb([150 + n[0] % 100, 40 + n[1] % 160, n[2] % 40])
        } else {
            let v = 100 + (x * 30 / w) as u8;
            Rgb([v, v, v])
        }
    })
}

/// Pixels of `img` that belong to the subject (colourful; the background is grey).
fn subject_pixels(img: &RgbImage) -> usize {
    img.pixels()
        .filter(|Rgb([r, g, b])| r.max(g).max(b) - r.min(g).min(b) > 60)
        .count()
}

/// The stored pixels that EXIF `orientation` shows as `shown`.
fn stored_for(shown: &RgbImage, orientation: u16) -> RgbImage {
    match orientation {
        1 => shown.clone(),
        2 => imageops::flip_horizontal(shown),
        3 => imageops::rotate180(shown),
        4 => imageops::flip_vertical(shown),
        5 => imageops::rotate90(&imageops::flip_horizontal(shown)),
        6 => imageops::rotate270(shown),
        7 => imageops::rotate270(&imageops::flip_horizontal(shown)),
        8 => imageops::rotate90(shown),
        _ => unreachable!(),
    }
}

/// Runs presize on `input` with `--fit cover -s WxH -f png` and `extra`, returns the output.
fn cover(input: &Path, out: &Path, size: &str, extra: &[&str]) -> RgbImage {
    presize()
        .args([
            p(input),
            "-o",
            p(out),
            "-s",
            size,
            "--fit",
            "cover",
            "-f",
            "png",
        ])
        .args(extra)
        .assert()
        .success();
    let name = input.file_stem().unwrap().to_str().unwrap().to_owned() + ".png";
    decode(&out.join(name)).to_rgb8()
}

#[test]
fn attention_entropy_and_focal_keep_an_off_centre_subject_in_every_crop() {
    // (shown size, subject centre, radius, box): right, left, top (a portrait), and the bottom
    // of a source too small for the box (cropped without being scaled).
    let cases = [
        ((480, 240), (390, 120), 36, "120x120"),
        ((480, 240), (80, 110), 36, "120x120"),
        ((240, 480), (120, 70), 36, "120x120"),
        ((300, 200), (150, 170), 25, "400x100"),
    ];
    for (i, ((w, h), centre, r, size)) in cases.into_iter().enumerate() {
        let shown = scene(w, h, centre, r);
        let whole = subject_pixels(&shown);
        for orientation in [1u16, 6, 3, 8] {
            let name = format!("s{i}-o{orientation}.png");
            let stored = DynamicImage::ImageRgb8(stored_for(&shown, orientation));
            let tree = TestTree::new().file(&name, &png_with_orientation(&stored, orientation));
            let input = tree.path(&name);
            let focal = format!(
                "{},{}",
                f64::from(centre.0) / f64::from(w),
                f64::from(centre.1) / f64::from(h)
            );
            let (bw, bh): (u32, u32) = {
                let (a, b) = size.split_once('x').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            };
            let scale = (f64::from(bw) / f64::from(w)).max(f64::from(bh) / f64::from(h));
            let (scale, dims) = if scale > 1.0 {
                (1.0, (bw.min(w), bh.min(h)))
            } else {
                (scale, (bw, bh))
            };
            let expected = whole as f64 * scale * scale;
            let runs: [(&str, Vec<&str>); 4] = [
                ("attention", vec!["--crop", "attention"]),
                ("entropy", vec!["--crop", "entropy"]),
                ("focal", vec!["--focal", &focal]),
                ("centre", vec![]),
            ];
            for (what, extra) in runs {
                let out = tree.path(&format!("out-{what}"));
                let img = cover(&input, &out, size, &extra);
                assert_eq!(img.dimensions(), dims, "case {i} o{orientation} {what}");
                let kept = subject_pixels(&img) as f64 / expected;
                common::save_result(
                    &format!("crop-{i}-o{orientation}-{what}"),
                    &DynamicImage::ImageRgb8(img),
                );
                if what == "centre" {
                    // The control: a centred window cuts the subject, so the check above can fail.
                    assert!(
                        kept < 0.6,
                        "case {i} o{orientation}: the centre keeps {kept:.2}"
                    );
                } else {
                    assert!(
                        kept > 0.9,
                        "case {i} o{orientation} {what}: keeps {kept:.2} of the subject"
                    );
                }
            }
        }
    }
}

/// The inputs of the centre-crop expectation: a detailed scene in every orientation, and a
/// JPEG (decoded with shrink-on-load).
fn centre_inputs() -> TestTree {
    let shown = scene(301, 203, (220, 90), 40);
    let mut tree = TestTree::new();
    for orientation in 1..=8u16 {
        let stored = DynamicImage::ImageRgb8(stored_for(&shown, orientation));
        tree = tree.file(
            &format!("o{orientation}.png"),
            &png_with_orientation(&stored, orientation),
        );
    }
    tree.file(
        "photo.jpg",
        &common::jpeg_bytes(&scene(1203, 803, (900, 300), 150), 90),
    )
}

const CENTRE_ARGS: [&str; 6] = ["-s", "60x40,30x30", "--fit", "cover", "-f", "png"];

/// PNG outputs now go through oxipng (lossless; issue #15): the plain encoder, which wrote the
/// committed files, keeps the comparison byte for byte.
const PLAIN_PNG: [&str; 2] = ["--effort", "png=0"];

/// Committed outputs of presize before `--crop` existed (commit 5df772b), for the inputs of
/// [`centre_inputs`]. `PRESIZE_CROP_BLESS=<that presize binary> cargo test --test crop` writes
/// them again.
fn expectation_dir() -> PathBuf {
    common::testdata("crop")
}

#[test]
fn centre_crop_is_unchanged_byte_for_byte() {
    let tree = centre_inputs();
    if let Some(old) = std::env::var_os("PRESIZE_CROP_BLESS") {
        let dir = expectation_dir();
        fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new(old)
            .args([
                p(tree.root()),
                "-o",
                p(&dir),
                "--progress",
                "never",
                "--overwrite",
            ])
            .args(CENTRE_ARGS)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let plain = tree.path("plain");
    let centre = tree.path("centre");
    presize()
        .args([p(tree.root()), "-o", p(&plain)])
        .args(CENTRE_ARGS)
        .args(PLAIN_PNG)
        .assert()
        .success();
    presize()
        .args([p(tree.root()), "-o", p(&centre), "--crop", "centre"])
        .args(CENTRE_ARGS)
        .args(PLAIN_PNG)
        .assert()
        .success();
    let names: Vec<_> = {
        let mut n: Vec<_> = fs::read_dir(expectation_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_str().is_some_and(|n| n.ends_with(".png")))
            .collect();
        n.sort();
        n
    };
    assert_eq!(names.len(), 18, "9 inputs x 2 sizes: {names:?}");
    for name in names {
        let expected = fs::read(expectation_dir().join(&name)).unwrap();
        let with_flag = fs::read(centre.join(&name)).unwrap();
        let without = fs::read(plain.join(&name)).unwrap();
        assert!(
            with_flag == without,
            "{name:?}: --crop centre differs from no --crop"
        );
        assert!(
            expected == without,
            "{name:?}: differs from presize before --crop (testdata/crop)"
        );
    }
}

#[test]
fn crop_and_focal_need_cover_and_a_valid_point() {
    let tree = TestTree::new().png("a.png", 40, 30);
    let out = tree.path("out");
    presize()
        .args([
            p(tree.root()),
            "-o",
            p(&out),
            "-s",
            "20x20",
            "--crop",
            "attention",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--fit cover"));
    presize()
        .args([
            p(tree.root()),
            "-o",
            p(&out),
            "-s",
            "20x20",
            "--fit",
            "cover",
            "--focal",
            "1.2,0.5",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("fractions from 0 to 1"));
    assert!(!out.exists());
}

#[test]
fn changing_the_crop_redoes_the_outputs_of_a_manifest_build() {
    let tree = TestTree::new().png_image(
        "s.png",
        &DynamicImage::ImageRgb8(scene(300, 150, (250, 75), 30)),
    );
    let out = tree.path("out");
    let manifest = tree.path("m.json");
    let run = |extra: &[&str]| {
        presize()
            .args([
                p(&tree.path("s.png")),
                "-o",
                p(&out),
                "-s",
                "100x100",
                "--fit",
                "cover",
            ])
            .args(["--manifest", p(&manifest), "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    run(&[]);
    let centred = fs::read(out.join("s.png")).unwrap();
    let again = String::from_utf8(run(&["--crop", "attention"]).stdout).unwrap();
    assert!(again.contains("\"written\""), "{again}");
    assert_ne!(fs::read(out.join("s.png")).unwrap(), centred);
    let text = fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\"crop\": \"attention\""), "{text}");
    let third = String::from_utf8(run(&["--crop", "attention"]).stdout).unwrap();
    assert!(third.contains("\"reason\":\"up-to-date\""), "{third}");
}

/// The tier: libvips' `attention` smart crop (`vipsthumbnail --smartcrop attention`), the
/// reference for the idea, keeps the same subjects presize's does.
#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn vipsthumbnail_attention_keeps_the_subjects_presize_keeps() {
    let vipsthumbnail = common::tools::find("vipsthumbnail");
    for (i, ((w, h), centre)) in [
        ((480, 240), (390, 120)),
        ((480, 240), (80, 110)),
        ((240, 480), (120, 70)),
    ]
    .into_iter()
    .enumerate()
    {
        let shown = scene(w, h, centre, 36);
        let whole = subject_pixels(&shown) as f64 / 4.0; // both outputs are at half scale
        let name = format!("s{i}.png");
        let tree = TestTree::new().png_image(&name, &DynamicImage::ImageRgb8(shown));
        let ours = cover(
            &tree.path(&name),
            &tree.path("out"),
            "120x120",
            &["--crop", "attention"],
        );
        let theirs = tree.path("vips.png");
        common::tools::run(
            std::process::Command::new(&vipsthumbnail)
                .arg(tree.path(&name))
                .args(["--smartcrop", "attention", "-s", "120x120", "-o"])
                .arg(&theirs),
        );
        let theirs = decode(&theirs).to_rgb8();
        assert_eq!(theirs.dimensions(), (120, 120));
        for (who, img) in [("presize", &ours), ("vipsthumbnail", &theirs)] {
            let kept = subject_pixels(img) as f64 / whole;
            eprintln!("scene {i}: {who} keeps {kept:.2} of the subject");
            assert!(kept > 0.9, "scene {i}: {who} keeps {kept:.2}");
        }
    }
}
