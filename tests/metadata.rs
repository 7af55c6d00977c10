//! Metadata and colour-profile policies, checked on real outputs: what survives by default,
//! `--strip-gps`, `--strip`, `--icc strip`, for every output format that can carry metadata.
//! The blocks are read back in-process by `common::meta` (the `image` crate's decoders,
//! kamadak-exif, moxcms); `tests/cross_check.rs` reads the same outputs with exiftool.

mod common;

use std::path::Path;

use common::meta::read_metadata;
use common::{dims, presize, testdata, TestTree};
use exif::Tag;

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
        let m = read_metadata(&out);
        assert!(m.exif.is_some(), "{format}: no EXIF block");
        assert_eq!(m.tag(Tag::Make).as_deref(), Some("Huawei"), "{format}");
        assert_eq!(m.tag(Tag::Model).as_deref(), Some("Nexus 6P"), "{format}");
        assert_eq!(
            m.tag(Tag::DateTimeOriginal).as_deref(),
            Some("2018:01:04 08:43:51"),
            "{format}"
        );
        assert_eq!(m.tag(Tag::Orientation).as_deref(), Some("1"), "{format}");
        assert_eq!(
            m.tag(Tag::PixelXDimension).as_deref(),
            Some("150"),
            "{format}"
        );
        assert_eq!(
            m.tag(Tag::PixelYDimension).as_deref(),
            Some("200"),
            "{format}"
        );
        assert!(
            !m.has_thumbnail_ifd(),
            "{format}: the old thumbnail is dropped"
        );
        assert!(m.tag(Tag::GPSLatitude).is_some(), "{format}: GPS kept");
        assert_eq!(
            m.xmp_text("dc:creator").as_deref(),
            Some("Test Person"),
            "{format}"
        );
        assert_eq!(
            m.icc_description().as_deref(),
            Some("sRGB IEC61966-2.1"),
            "{format}"
        );
    }
}

#[test]
fn strip_gps_removes_every_location_tag_and_keeps_the_rest() {
    let tree = TestTree::new();
    // The fixture has a location in EXIF and in XMP: the check below can fail.
    let source = read_metadata(&testdata(FIXTURE));
    assert!(
        source.gps().iter().any(|g| g.starts_with("EXIF"))
            && source.gps().iter().any(|g| g.starts_with("XMP")),
        "{:?}",
        source.gps()
    );
    for format in ["jpeg", "png", "webp"] {
        let out = resized(&tree, format, &["--strip-gps"]);
        let m = read_metadata(&out);
        assert!(m.gps().is_empty(), "{format}: {:?}", m.gps());
        assert_eq!(m.tag(Tag::Make).as_deref(), Some("Huawei"), "{format}");
        assert!(m.tag(Tag::DateTimeOriginal).is_some(), "{format}");
        assert!(m.xmp_text("dc:creator").is_some(), "{format}: XMP kept");
    }
}

#[test]
fn strip_leaves_only_the_colour_profile_and_icc_strip_removes_that_too() {
    let tree = TestTree::new();
    for format in ["jpeg", "png", "webp"] {
        let out = resized(&tree, format, &["--strip"]);
        let m = read_metadata(&out);
        assert!(m.exif.is_none(), "{format}: an EXIF block is left");
        assert!(m.xmp.is_none(), "{format}: an XMP packet is left");
        assert!(m.icc.is_some(), "{format}: the profile stays");
        // Still upright: the orientation was applied to the pixels, not left to a tag.
        assert_eq!(dims(&out), (150, 200));

        let out = resized(&tree, format, &["--strip", "--icc", "strip"]);
        let m = read_metadata(&out);
        assert!(m.icc.is_none(), "{format}: the profile is left");
        assert!(m.exif.is_none() && m.xmp.is_none(), "{format}");
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
    let m = read_metadata(&out.join("rocket_640x427_adobergb_icc.tif"));
    assert_eq!(m.icc_description().as_deref(), Some("Adobe RGB (1998)"));
}
