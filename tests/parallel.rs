//! One image, many cores: outputs made on spare cores (several outputs at once, a split resize,
//! a JPEG decoded in restart-marker bands) must be the very bytes a single worker writes.

mod common;

use std::fs;
use std::path::Path;

use common::{presize, TestTree};
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};

/// Every file below `dir`, relative, sorted, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Runs presize over `input` at `-j 1` and at `-j <jobs>` with `args`, and asserts both wrote
/// the same files with the same bytes. Returns how many files were written.
fn same_output_at(jobs: &str, input: &Path, args: &[&str]) -> usize {
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
    let (a, b) = (files(&one), files(&many));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "the same outputs");
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between -j 1 and -j {jobs}");
    }
    a.len()
}

/// A noisy RGB image: every pixel differs, so a shifted band or a seam would show.
fn noise(w: u32, h: u32) -> RgbImage {
    let mut s = 0x2545_F491_4F6C_DD1D_u64;
    RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = s.to_le_bytes();
        image::Rgb([
            n[0] / 2 + (x % 256) as u8 / 2,
            n[1] / 2 + (y % 256) as u8 / 2,
            n[2],
        ])
    })
}

#[test]
fn several_sizes_and_formats_of_one_image_made_at_once_are_byte_identical() {
    let tree = TestTree::new().copy("photos/dune_1680x1050_exif.jpg", "dune.jpg");
    let written = same_output_at(
        "3",
        tree.root(),
        &["-w", "160,400,900", "-f", "jpeg,webp,png"],
    );
    assert_eq!(written, 9);
}

#[test]
fn a_large_resize_split_across_cores_is_byte_identical() {
    // 4.2 megapixels: above the size at which one resize is split (RGB and RGBA paths).
    let rgb = DynamicImage::ImageRgb8(noise(2400, 1750));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(2400, 1750, |x, y| {
        let image::Rgb([r, g, b]) = *rgb.as_rgb8().unwrap().get_pixel(x, y);
        image::Rgba([r, g, b, ((x + y) % 256) as u8])
    }));
    for (img, name) in [(rgb, "rgb.png"), (rgba, "rgba.png")] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let tree = TestTree::new().file(name, bytes.get_ref());
        for filter in ["lanczos3", "box"] {
            let written = same_output_at("4", tree.root(), &["-w", "700", "--filter", filter]);
            assert_eq!(written, 1);
        }
    }
}

#[test]
fn a_jpeg_with_restart_markers_decoded_in_bands_is_byte_identical() {
    // 2.8 megapixels (above the size at which a JPEG is split), one restart marker per MCU
    // row, added losslessly by jpegtran (installed by .ci/run).
    // ImageMagick writes 4:2:0, whose chroma upsampling crosses band edges (the `image`
    // crate's encoder writes 4:4:4, which has no seams to mend).
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("noise.png");
    DynamicImage::ImageRgb8(noise(2000, 1400))
        .save(&png)
        .unwrap();
    let plain = dir.path().join("plain.jpg");
    let made = std::process::Command::new("convert")
        .arg(&png)
        .args(["-quality", "90", "-sampling-factor", "2x2"])
        .arg(&plain)
        .status()
        .expect("ImageMagick (installed by .ci/run)");
    assert!(made.success());
    let jpeg = dir.path().join("in").join("restart.jpg");
    fs::create_dir_all(jpeg.parent().unwrap()).unwrap();
    let out = std::process::Command::new("jpegtran")
        .args(["-copy", "all", "-restart", "1"])
        .arg(&plain)
        .output()
        .expect("jpegtran (libjpeg-turbo-progs, installed by .ci/run)");
    assert!(out.status.success());
    assert!(
        out.stdout.windows(2).any(|w| w == [0xFF, 0xDD]),
        "the test JPEG has a restart interval"
    );
    fs::write(&jpeg, &out.stdout).unwrap();
    // 300 px: decoded at 1/2 or 1/4; 1100 px: at full size, with a split resize too.
    for width in ["300", "1100"] {
        let written = same_output_at("2", jpeg.parent().unwrap(), &["-w", width]);
        assert_eq!(written, 1);
    }
}
