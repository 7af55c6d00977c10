//! One image, many cores: outputs made on spare cores (several outputs at once, a split resize,
//! a JPEG decoded in restart-marker bands) must be the very bytes a single worker writes. The
//! restart-marker JPEG is made in-process by the jpeg-encoder crate; `tests/cross_check.rs`
//! repeats the test on one made by ImageMagick and jpegtran.

mod common;

use common::{noise, same_output_at, TestTree};
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};

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

/// Encodes `img` as a 4:2:0 baseline JPEG at quality 90 with a restart marker every `interval`
/// MCUs, with the jpeg-encoder crate (an encoder independent of libjpeg-turbo, which decodes).
fn jpeg_with_restarts(img: &RgbImage, interval: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder.set_restart_interval(interval);
    let (w, h) = img.dimensions();
    encoder
        .encode(
            img.as_raw(),
            u16::try_from(w).unwrap(),
            u16::try_from(h).unwrap(),
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("JPEG encoding of an in-memory image");
    out
}

/// The restart interval (in MCUs) of a JPEG's DRI segment, 0 if it has none.
fn restart_interval(jpeg: &[u8]) -> u16 {
    jpeg.windows(6)
        .find(|w| w[..4] == [0xFF, 0xDD, 0, 4])
        .map_or(0, |w| u16::from_be_bytes([w[4], w[5]]))
}

#[test]
fn a_jpeg_with_restart_markers_decoded_in_bands_is_byte_identical() {
    // 2.8 megapixels (above the size at which a JPEG is split), one restart marker per MCU
    // row: 4:2:0 MCUs are 16 px wide, so 125 MCUs a row. 4:2:0 matters: its chroma upsampling
    // crosses band edges (4:4:4 has no seams to mend).
    let jpeg = jpeg_with_restarts(&noise(2000, 1400), 125);
    assert_eq!(
        restart_interval(&jpeg),
        125,
        "the test JPEG has a restart interval"
    );
    assert!(
        jpeg.windows(2)
            .filter(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
            .count()
            >= 80,
        "a marker between each of the 88 MCU rows"
    );
    // The band decoder takes it, so the comparison below is one of bands against one thread.
    let intervals =
        presize::internals::pipeline::restart::Intervals::parse(&jpeg).expect("band-decodable");
    assert_eq!(intervals.bands(2).len(), 2, "two bands of 44 MCU rows");
    let tree = TestTree::new().file("in/restart.jpg", &jpeg);
    // 300 px: decoded at 1/2 or 1/4; 1100 px: at full size, with a split resize too.
    for width in ["300", "1100"] {
        let written = same_output_at("2", &tree.path("in"), &["-w", width]);
        assert_eq!(written, 1);
    }
}
