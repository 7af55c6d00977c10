//! HEIC and AVIF input through libheif (built only with `--features heif`, as `.ci/run` does).

#![cfg(feature = "heif")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{dims, presize, testdata, TestTree};

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
    let tags = Command::new("exiftool")
        .args(["-s3", "-n", "-Orientation", "-ProfileDescription"])
        .arg(out.join("cups.jpg"))
        .output()
        .expect("exiftool");
    let tags = String::from_utf8_lossy(&tags.stdout);
    assert!(
        tags.contains("P3"),
        "the Display P3 profile is kept: {tags}"
    );
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
