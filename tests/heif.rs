//! HEIC and AVIF input through libheif (built only with `--features heif`, as `.ci/run` does).

#![cfg(feature = "heif")]

mod common;

use std::path::Path;

use common::meta::read_metadata;
use common::{decode, dims, premultiplied_psnr, presize, testdata, TestTree};

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

#[test]
fn heic_and_avif_photos_become_upright_jpegs_with_their_profile_and_exif() {
    let tree = TestTree::new()
        .copy("heif/cups_320x200_p3_exif.heic", "in/cups.heic")
        .copy("heif/cups_320x200_p3_exif.avif", "in/cups_avif.avif")
        .copy(
            "heif/landscape_450x300_irot270_exif6.heic",
            "in/rotated.heic",
        );
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "160"])
        .assert()
        .success();
    // "same" format for HEIC means JPEG (presize writes no HEIC); AVIF stays AVIF.
    assert_eq!(dims(&out.join("cups.jpg")), (160, 100));
    let avif = std::fs::read(out.join("cups_avif.avif")).unwrap();
    assert_eq!(&avif[4..12], b"ftypavif");
    // The container's rotation is applied once: displayed 450x300, not turned again by the
    // EXIF Orientation 6 the file also carries.
    assert_eq!(dims(&out.join("rotated.jpg")), (160, 107));
    let cups = read_metadata(&out.join("cups.jpg"));
    let profile = cups.icc_description().unwrap_or_default();
    assert!(
        profile.contains("P3"),
        "the Display P3 profile is kept: {profile:?}"
    );
    // The EXIF travels too, its orientation reset (the pixels are upright already).
    let rotated = read_metadata(&out.join("rotated.jpg"));
    assert!(rotated.exif.is_some(), "the EXIF block is kept");
    assert!(
        matches!(
            rotated.tag(exif::Tag::Orientation).as_deref(),
            None | Some("1")
        ),
        "{:?}",
        rotated.tag(exif::Tag::Orientation)
    );
}

#[test]
fn avif_outputs_decode_through_libheif_to_the_source_pixels() {
    // presize's AVIF encoder (rav1e) checked by an independent decoder (libheif with libdav1d or
    // libaom): presize reads its own AVIF outputs back through libheif and writes PNG.
    let tree = TestTree::new()
        .png("in/a.png", 320, 240)
        .png_alpha("in/t.png", 160, 160);
    let avif = tree.path("avif");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&avif), "-w", "160", "-f", "avif", "-Q", "90"])
        .assert()
        .success();
    let back = tree.path("back");
    presize()
        .arg(&avif)
        .args(["-o", p(&back), "-w", "160", "-f", "png"])
        .assert()
        .success();
    for name in ["a", "t"] {
        let png = tree.path(&format!("in/{name}.png"));
        let direct = tree.path("direct");
        presize()
            .arg(&png)
            .args(["-o", p(&direct), "-w", "160", "-f", "png"])
            .assert()
            .success();
        let want = decode(&direct.join(format!("{name}.png")));
        let got = decode(&back.join(format!("{name}.png")));
        assert_eq!(got.color().has_alpha(), want.color().has_alpha(), "{name}");
        assert_eq!((got.width(), got.height()), (want.width(), want.height()));
        let db = premultiplied_psnr(&got, &want);
        assert!(db > 35.0, "{name}: {db:.1} dB after an AVIF round trip");
    }
}

#[test]
fn a_damaged_heic_fails_by_name_and_the_run_goes_on() {
    let good = std::fs::read(testdata("heif/cups_320x200_p3_exif.heic")).unwrap();
    let tree = TestTree::new()
        .file("in/good.heic", &good)
        .file("in/cut.heic", &good[..good.len() / 3]);
    let out = tree.path("out");
    let assert = presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "100"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("cut.heic"), "{stderr}");
    assert!(out.join("good.jpg").is_file());
}
