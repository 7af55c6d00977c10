//! Metadata and colour-profile policies, checked on real outputs with `exiftool` (installed by
//! `.ci/run`): what survives by default, `--strip-gps`, `--strip`, `--icc strip`, for every
//! output format that can carry metadata.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{dims, presize, testdata, TestTree};

/// `exiftool -G1 -s` as a map from "Group:Tag" to value.
fn exif_tags(path: &Path) -> BTreeMap<String, String> {
    let out = Command::new("exiftool")
        .args(["-a", "-G1", "-s", "-n"])
        .arg(path)
        .output()
        .expect("exiftool is installed (apt package libimage-exiftool-perl)");
    assert!(
        out.status.success(),
        "exiftool failed on {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let mut k = k.split_whitespace();
            let group = k.next()?.trim_matches(['[', ']']);
            let tag = k.next()?;
            Some((format!("{group}:{tag}"), v.trim().to_string()))
        })
        .collect()
}

fn has_group(tags: &BTreeMap<String, String>, group: &str) -> bool {
    tags.keys().any(|k| k.starts_with(&format!("{group}:")))
}

fn gps_tags(tags: &BTreeMap<String, String>) -> Vec<&String> {
    tags.keys().filter(|k| k.contains("GPS")).collect()
}

const FIXTURE: &str = "metadata/cranes_400x300_orient6_gps_xmp.jpg";

/// Resizes the fixture to 150 px wide as `format` with `extra` flags; returns the output path.
fn resized(tree: &TestTree, format: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = tree.path(&format!("out-{format}-{}", extra.join("")));
    presize()
        .arg(testdata(FIXTURE))
        .args(["-o", out.to_str().unwrap(), "-w", "150", "-f", format])
        .args(extra)
        .assert()
        .success();
    let ext = if format == "jpeg" { "jpg" } else { format };
    out.join(format!("cranes_400x300_orient6_gps_xmp.{ext}"))
}

#[test]
fn by_default_camera_date_gps_xmp_and_icc_survive_with_orientation_reset() {
    let tree = TestTree::new();
    for format in ["jpeg", "png", "webp"] {
        let out = resized(&tree, format, &[]);
        // Displayed 300x400 (Orientation 6), so 150 wide is 200 high.
        assert_eq!(dims(&out), (150, 200), "{format}");
        let t = exif_tags(&out);
        assert_eq!(
            t.get("IFD0:Make").map(String::as_str),
            Some("Huawei"),
            "{format}: {t:?}"
        );
        assert_eq!(t.get("IFD0:Model").map(String::as_str), Some("Nexus 6P"));
        assert_eq!(
            t.get("ExifIFD:DateTimeOriginal").map(String::as_str),
            Some("2018:01:04 08:43:51")
        );
        assert_eq!(
            t.get("IFD0:Orientation").map(String::as_str),
            Some("1"),
            "{format}"
        );
        assert_eq!(
            t.get("ExifIFD:ExifImageWidth").map(String::as_str),
            Some("150")
        );
        assert_eq!(
            t.get("ExifIFD:ExifImageHeight").map(String::as_str),
            Some("200")
        );
        assert!(
            !has_group(&t, "IFD1"),
            "{format}: the old thumbnail is dropped: {t:?}"
        );
        assert!(t.contains_key("GPS:GPSLatitude"), "{format}");
        assert_eq!(
            t.get("XMP-dc:Creator").map(String::as_str),
            Some("Test Person")
        );
        assert_eq!(
            t.get("ICC_Profile:ProfileDescription").map(String::as_str),
            Some("sRGB IEC61966-2.1"),
            "{format}"
        );
    }
}

#[test]
fn strip_gps_removes_every_location_tag_and_keeps_the_rest() {
    let tree = TestTree::new();
    for format in ["jpeg", "png", "webp"] {
        let out = resized(&tree, format, &["--strip-gps"]);
        let t = exif_tags(&out);
        assert!(gps_tags(&t).is_empty(), "{format}: {:?}", gps_tags(&t));
        assert_eq!(t.get("IFD0:Make").map(String::as_str), Some("Huawei"));
        assert!(t.contains_key("ExifIFD:DateTimeOriginal"));
    }
}

#[test]
fn strip_leaves_only_the_colour_profile_and_icc_strip_removes_that_too() {
    let tree = TestTree::new();
    for format in ["jpeg", "png", "webp"] {
        let out = resized(&tree, format, &["--strip"]);
        let t = exif_tags(&out);
        for group in ["IFD0", "ExifIFD", "GPS", "IFD1", "XMP-dc", "XMP-exif"] {
            assert!(!has_group(&t, group), "{format}: {group} left: {t:?}");
        }
        assert!(has_group(&t, "ICC_Profile"), "{format}: the profile stays");
        // Still upright: the orientation was applied to the pixels, not left to a tag.
        assert_eq!(dims(&out), (150, 200));

        let out = resized(&tree, format, &["--strip", "--icc", "strip"]);
        let t = exif_tags(&out);
        assert!(!has_group(&t, "ICC_Profile"), "{format}: {t:?}");
        assert!(!has_group(&t, "IFD0"));
    }
}

/// Frame count and delays (ms) of an animated GIF or WebP, decoded by the `image` crate.
fn frames(path: &Path) -> Vec<u32> {
    use image::AnimationDecoder;
    let bytes = std::fs::read(path).unwrap();
    let cursor = std::io::Cursor::new(bytes);
    let frames = if path.extension().is_some_and(|e| e == "gif") {
        image::codecs::gif::GifDecoder::new(cursor)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
    } else {
        image::codecs::webp::WebPDecoder::new(cursor)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
    };
    frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d.max(1)
        })
        .collect()
}

#[test]
fn animated_inputs_keep_every_frame_and_delay_only_when_asked() {
    let src = testdata("formats/anim_mixed-disposal.gif");
    let source_frames = frames(&src);
    assert!(source_frames.len() > 1);
    let tree = TestTree::new();
    let out = tree.path("anim");
    presize()
        .arg(&src)
        .args([
            "-o",
            out.to_str().unwrap(),
            "-w",
            "16",
            "-f",
            "gif,webp",
            "--animated",
        ])
        .assert()
        .success();
    let gif = out.join("anim_mixed-disposal.gif");
    assert_eq!(frames(&gif), source_frames, "GIF: every frame, same delays");
    assert_eq!(dims(&gif).0, 16);
    let webp = frames(&out.join("anim_mixed-disposal.webp"));
    assert!(webp.len() > 1, "an animated WebP");
    assert_eq!(
        webp.iter().sum::<u32>(),
        source_frames
            .iter()
            .map(|&d| if d <= 10 { 100 } else { d })
            .sum::<u32>(),
        "WebP keeps the total time"
    );

    let still = tree.path("still");
    presize()
        .arg(&src)
        .args(["-o", still.to_str().unwrap(), "-w", "16", "-f", "gif"])
        .assert()
        .success();
    assert_eq!(frames(&still.join("anim_mixed-disposal.gif")).len(), 1);
}

#[test]
fn tiff_outputs_carry_the_colour_profile() {
    let tree = TestTree::new();
    let out = tree.path("out");
    presize()
        .arg(testdata("photos/rocket_640x427_adobergb_icc.jpg"))
        .args(["-o", out.to_str().unwrap(), "-w", "100", "-f", "tiff"])
        .assert()
        .success();
    let t = exif_tags(&out.join("rocket_640x427_adobergb_icc.tif"));
    assert_eq!(
        t.get("ICC_Profile:ProfileDescription").map(String::as_str),
        Some("Adobe RGB (1998)"),
        "{t:?}"
    );
}
