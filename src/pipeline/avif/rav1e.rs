//! AVIF through rav1e, by way of `ravif` (cargo feature `rav1e`): the encoder of builds
//! without libheif. Builds with libheif (the default) use libaom instead (`aom.rs`), which gives
//! smaller files at the same score for less time (see `mod.rs`).
//!
//! rav1e runs on one thread here (ravif's `threading` feature is off): presize already keeps
//! every core busy with one image each, and a second pool inside the encoder would only
//! oversubscribe them.

use ravif::{Encoder, Img, RGB8, RGBA8};

use super::avif_err;
use crate::error::JobError;
use crate::pipeline::pixels::{Layout, Pixels};

/// Converts a quality on the libavif/sharp scale (1-100) to ravif's own 1-100 scale.
///
/// The two scales share nothing but their range, so the conversion goes through what both
/// finally ask of the encoder, AV1's quantiser index (0 best, 255 worst):
/// 1. libavif (`avifQualityToQuantizer`) and libheif give libaom the quantiser
///    `((100 − q) × 63 + 50) / 100`, 0-63;
/// 2. libaom (`quantizer_to_qindex`) turns that into index `4n`, with 249 and 255 at the top;
/// 3. ravif turns its quality `r` into index `255 × x`, where `x` is `(1 − r) × 2.6` for
///    `r ≥ 0.82`, `0.875 − r/2` in between and `1 − r` for `r ≤ 0.25`; this inverts that.
///
/// So 50 → quantiser 32 → index 128 → ravif 74.6; 40 → quantiser 38 → index 152 → ravif 55.8.
pub(super) fn ravif_quality(quality: u8) -> f32 {
    let index = match super::quantiser(quality) {
        62 => 249,
        63 => 255,
        n => 4 * n,
    };
    let x = f32::from(index) / 255.0;
    let r = if x >= 0.75 {
        1.0 - x
    } else if x > 0.468 {
        2.0 * (0.875 - x)
    } else {
        1.0 - x / 2.6
    };
    (r * 100.0).clamp(1.0, 100.0)
}

/// Encodes `px` (checked by `mod.rs`) as a still AVIF image at `quality` (libavif's scale,
/// converted by [`ravif_quality`]) and rav1e `speed` 1-10.
///
/// - Grey images are coded as YCbCr with flat chroma, which costs a few bytes over true
///   monochrome (ravif offers no 4:0:0 colour planes).
/// - Alpha is kept for `La` and `Rgba`, stored unassociated; ravif replaces the colour of fully
///   transparent pixels with a blur of their neighbours, which compresses better and changes
///   nothing visible.
/// - The file has no colour box: the AV1 sequence header says BT.709 primaries, sRGB transfer,
///   BT.601 matrix, full range, and `avif-serialize` leaves out a `colr` box that would only
///   repeat those, which is also what readers assume without one.
pub(super) fn encode(px: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, JobError> {
    let (w, h) = (px.width as usize, px.height as usize);
    // ravif asserts on out-of-range settings; clamping keeps a bad value from becoming a panic.
    let encoder = Encoder::new()
        .with_quality(ravif_quality(quality))
        .with_alpha_quality(ravif_quality(quality))
        .with_speed(speed.clamp(1, 10))
        .with_num_threads(Some(1));
    let encoded = match px.layout {
        Layout::Rgb => {
            let rgb: Vec<RGB8> = px
                .data
                .chunks_exact(3)
                .map(|c| RGB8::new(c[0], c[1], c[2]))
                .collect();
            encoder.encode_rgb(Img::new(&rgb[..], w, h))
        }
        Layout::L => {
            let rgb: Vec<RGB8> = px.data.iter().map(|&v| RGB8::new(v, v, v)).collect();
            encoder.encode_rgb(Img::new(&rgb[..], w, h))
        }
        Layout::Rgba => {
            let rgba: Vec<RGBA8> = px
                .data
                .chunks_exact(4)
                .map(|c| RGBA8::new(c[0], c[1], c[2], c[3]))
                .collect();
            encoder.encode_rgba(Img::new(&rgba[..], w, h))
        }
        Layout::La => {
            let rgba: Vec<RGBA8> = px
                .data
                .chunks_exact(2)
                .map(|c| RGBA8::new(c[0], c[0], c[0], c[1]))
                .collect();
            encoder.encode_rgba(Img::new(&rgba[..], w, h))
        }
    };
    encoded
        .map(|image| image.avif_file)
        .map_err(|e| avif_err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ravif's quality → quantiser index curve (its `quality_to_quantizer`), restated.
    fn ravif_index(r: f32) -> i32 {
        let q = r / 100.0;
        let x = if q >= 0.82 {
            (1.0 - q) * 2.6
        } else if q > 0.25 {
            0.875 - q / 2.0
        } else {
            1.0 - q
        };
        (x * 255.0).round() as i32
    }

    #[test]
    fn quality_reaches_rav1e_as_libaom_would_get_it() {
        // The index libaom gets from libavif/libheif at each quality.
        let libaom = |q: i32| match ((100 - q) * 63 + 50) / 100 {
            62 => 249,
            63 => 255,
            n => 4 * n,
        };
        assert_eq!(libaom(50), 128);
        assert_eq!(ravif_index(ravif_quality(50)), 128);
        let mut last = 0.0;
        for q in 1..=100u8 {
            let r = ravif_quality(q);
            assert!((1.0..=100.0).contains(&r) && r >= last, "{q} -> {r}");
            last = r;
            let (want, got) = (libaom(i32::from(q)), ravif_index(r));
            assert!(
                (want - got).abs() <= 1,
                "quality {q}: libaom index {want}, ravif {got}"
            );
        }
        assert_eq!(ravif_quality(0), ravif_quality(1));
        assert_eq!(ravif_quality(255), 100.0);
    }
}
