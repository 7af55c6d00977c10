//! Colour fidelity on real files: `--icc srgb` against ImageMagick's conversion, CMYK through its
//! profile, linear-light resizing on a grating, grey staying grey, alpha resized premultiplied.
//! The ImageMagick results are committed under `testdata/reference/` (made by its `regen.sh`);
//! `tests/cross_check.rs` compares with a live ImageMagick instead.

mod common;

use std::path::Path;

use common::meta::read_metadata;
use common::{decode, premultiplied_psnr, presize, psnr, testdata, TestTree};
use image::{DynamicImage, GenericImageView, GrayImage, Luma};

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// ImageMagick's conversion of a photo to the sRGB profile presize embeds (relative intent), as
/// committed by `testdata/reference/regen.sh`.
fn imagemagick_srgb(name: &str) -> DynamicImage {
    // The references target presize's own profile: a different one would shift every value.
    let used = std::fs::read(testdata("reference/presize_srgb.icc")).unwrap();
    assert!(
        used == presize::internals::pipeline::color::srgb_profile(),
        "presize's sRGB profile changed: run testdata/reference/regen.sh"
    );
    decode(&testdata(&format!("reference/{name}")))
}

#[test]
fn icc_srgb_converts_adobe_rgb_like_imagemagick_and_embeds_srgb() {
    let tree = TestTree::new();
    let src = testdata("photos/rocket_640x427_adobergb_icc.jpg");
    let out = tree.path("out");
    // Same size: the conversion alone is compared.
    presize()
        .arg(&src)
        .args(["-o", p(&out), "-w", "640", "-f", "png", "--icc", "srgb"])
        .assert()
        .success();
    let ours = decode(&out.join("rocket_640x427_adobergb_icc.png"));
    let theirs = imagemagick_srgb("rocket_640x427_srgb_relative.png");
    let db = psnr(&ours, &theirs);
    assert!(db >= 45.0, "--icc srgb vs ImageMagick: {db:.1} dB");
    // Unconverted pixels are far off: the test can tell.
    presize()
        .arg(&src)
        .args(["-o", p(&tree.path("keep")), "-w", "640", "-f", "png"])
        .assert()
        .success();
    let kept = decode(&tree.path("keep/rocket_640x427_adobergb_icc.png"));
    assert!(psnr(&kept, &theirs) < 35.0);

    let embedded = read_metadata(&out.join("rocket_640x427_adobergb_icc.png"));
    let desc = embedded.icc_description().unwrap_or_default();
    assert!(desc.contains("sRGB"), "{desc:?}");
}

#[test]
fn cmyk_jpegs_are_converted_through_their_profile() {
    let tree = TestTree::new();
    let src = testdata("photos/cmyk_ycck_500x333_swop_icc.jpg");
    let out = tree.path("out");
    presize()
        .arg(&src)
        .args(["-o", p(&out), "-w", "500", "-f", "png"])
        .assert()
        .success();
    let ours = decode(&out.join("cmyk_ycck_500x333_swop_icc.png"));
    let theirs = imagemagick_srgb("cmyk_ycck_500x333_srgb_relative.png");
    let db = psnr(&ours, &theirs);
    assert!(
        db >= 40.0,
        "CMYK through its profile vs ImageMagick: {db:.1} dB"
    );
}

#[test]
fn linear_light_turns_a_black_and_white_grating_into_mid_grey() {
    let grating = GrayImage::from_fn(64, 64, |x, _| Luma([if x % 2 == 0 { 0 } else { 255 }]));
    let tree = TestTree::new().png_image("in/grating.png", &DynamicImage::ImageLuma8(grating));
    let mean_centre = |path: &Path| {
        let img = decode(path).to_luma8();
        let (w, h) = img.dimensions();
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in 4..h - 4 {
            for x in 4..w - 4 {
                sum += f64::from(img.get_pixel(x, y)[0]);
                n += 1.0;
            }
        }
        sum / n
    };
    for (flag, want) in [(None, 128.0), (Some("--linear"), 188.0)] {
        let out = tree.path(&format!("out{}", flag.unwrap_or("")));
        let mut cmd = presize();
        cmd.arg(tree.path("in")).args(["-o", p(&out), "-w", "32"]);
        if let Some(f) = flag {
            cmd.arg(f);
        }
        cmd.assert().success();
        let got = mean_centre(&out.join("grating.png"));
        assert!(
            (got - want).abs() <= 3.0,
            "{flag:?}: mean {got:.1}, expected about {want}"
        );
    }
}

#[test]
fn grey_jpegs_stay_one_channel() {
    let grey = GrayImage::from_fn(300, 200, |x, y| Luma([((x + y) % 256) as u8]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&grey)
        .unwrap();
    let tree = TestTree::new().file("in/grey.jpg", &jpeg);
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "150"])
        .assert()
        .success();
    let img = decode(&out.join("grey.jpg"));
    assert_eq!(img.color(), image::ColorType::L8);
    assert_eq!(img.dimensions(), (150, 100));
}

#[test]
fn sixteen_bit_sources_stay_sixteen_bit_through_the_resize() {
    // A smooth 16-bit ramp whose neighbouring values differ by less than one 8-bit step: an
    // 8-bit detour would leave only multiples of 257.
    let ramp = image::ImageBuffer::from_fn(512, 64, |x, y| {
        let v = (x * 100 + y * 7) as u16;
        image::Rgb([v, v / 2 + 1000, 60_000 - v])
    });
    let tree = TestTree::new().png_image("in/ramp.png", &DynamicImage::ImageRgb16(ramp));
    for (format, name) in [("png", "ramp.png"), ("tiff", "ramp.tif")] {
        let out = tree.path(&format!("out-{format}"));
        presize()
            .arg(tree.path("in"))
            .args(["-o", p(&out), "-w", "256", "-f", format])
            .assert()
            .success();
        let img = decode(&out.join(name));
        assert_eq!(img.color(), image::ColorType::Rgb16, "{format}");
        assert_eq!(img.dimensions(), (256, 32));
        let samples = img.to_rgb16().into_raw();
        let off_grid = samples.iter().filter(|&&v| v % 257 != 0).count();
        assert!(
            off_grid > samples.len() / 2,
            "{format}: only {off_grid} of {} samples use the low bits",
            samples.len()
        );
    }
    // 8-bit formats get 8 bits, after the resize.
    let out = tree.path("out-jpeg");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "256", "-f", "jpeg"])
        .assert()
        .success();
    assert_eq!(
        decode(&out.join("ramp.jpg")).color(),
        image::ColorType::Rgb8
    );
}

#[test]
fn a_real_transparent_png_resizes_like_a_premultiplied_reference() {
    // ImageMagick resizes with alpha-weighted (premultiplied) Lanczos (measured: 48.9 dB);
    // compare colour weighted
    // by alpha, so the colour hidden under fully transparent pixels (meaningless) does not count.
    let tree = TestTree::new();
    let src = testdata("photos/transparency_rgba8.png");
    let out = tree.path("out");
    presize()
        .arg(&src)
        .args(["-o", p(&out), "-w", "150"])
        .assert()
        .success();
    let ours = decode(&out.join("transparency_rgba8.png"));
    // `convert transparency_rgba8.png -filter Lanczos -resize 150x150` (regen.sh).
    let theirs = decode(&testdata("reference/transparency_150w_lanczos.png"));
    assert_eq!(ours.dimensions(), theirs.dimensions());
    let db = premultiplied_psnr(&ours, &theirs);
    assert!(
        db >= 44.0,
        "premultiplied PSNR against ImageMagick: {db:.1} dB"
    );
}
