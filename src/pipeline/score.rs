//! SSIMULACRA2, the perceptual score `--quality auto` aims at: an encoded output is decoded
//! again and compared with the resized pixels it was made from (the `ssimulacra2` crate, the
//! metric `../shared/bench/web.py` reports). 90 is visually lossless, 70 high quality, 50
//! medium.
//!
//! Both images are composited over the run's background first (an encoder may repaint fully
//! transparent pixels, which nobody sees), grey is compared as RGB, and sRGB goes to linear
//! light through one 256-entry table rather than a power function per sample.

use ssimulacra2::{compute_frame_ssimulacra2, LinearRgb};

use super::pixels::{Depth, Layout, Pixels};
use crate::error::JobError;
use crate::format::Format;

/// The smallest side the metric accepts (it downsamples six times by two).
pub(crate) const MIN_SIDE: u32 = 8;

/// The SSIMULACRA2 score of `encoded` (a `format` file) against `reference`, the 8-bit pixels
/// it was encoded from, both over `background`.
pub(crate) fn score(
    reference: &Pixels,
    encoded: &[u8],
    format: Format,
    background: [u8; 3],
) -> Result<f64, JobError> {
    let decoded = decode(encoded, format)?;
    if (decoded.width, decoded.height) != (reference.width, reference.height) {
        return Err(score_err(format!(
            "decoded {}x{}, encoded from {}x{}",
            decoded.width, decoded.height, reference.width, reference.height
        )));
    }
    let a = linear(reference, background)?;
    let b = linear(&decoded, background)?;
    compute_frame_ssimulacra2(a, b).map_err(|e| score_err(e.to_string()))
}

fn score_err(message: impl std::fmt::Display) -> JobError {
    JobError::Encode {
        format: "SSIMULACRA2",
        message: message.to_string(),
    }
}

/// Decodes one of presize's own lossy outputs to 8-bit RGB or RGBA.
fn decode(encoded: &[u8], format: Format) -> Result<Pixels, JobError> {
    let err = |e: &dyn std::fmt::Display| score_err(format!("cannot decode the {format:?}: {e}"));
    match format {
        Format::Jpeg => {
            let image =
                turbojpeg::decompress(encoded, turbojpeg::PixelFormat::RGB).map_err(|e| err(&e))?;
            Ok(Pixels {
                width: image.width as u32,
                height: image.height as u32,
                data: image.pixels,
                layout: Layout::Rgb,
                depth: Depth::Eight,
            })
        }
        Format::Webp => {
            let image = webp::Decoder::new(encoded)
                .decode()
                .ok_or_else(|| err(&"libwebp refused it"))?;
            let layout = if image.is_alpha() {
                Layout::Rgba
            } else {
                Layout::Rgb
            };
            Ok(Pixels {
                data: image.to_vec(),
                width: image.width(),
                height: image.height(),
                layout,
                depth: Depth::Eight,
            })
        }
        #[cfg(feature = "heif")]
        Format::Avif => Ok(super::heif::decode_heif(encoded, u64::MAX)?.pixels),
        _ => Err(err(&"no decoder for scoring this format")),
    }
}

/// `px` (8-bit) over `background`, in linear-light RGB.
fn linear(px: &Pixels, background: [u8; 3]) -> Result<LinearRgb, JobError> {
    let table = srgb_to_linear_table();
    let lin = |v: u8| table[usize::from(v)];
    let over = |v: u8, bg: u8, a: u8| {
        let a = f32::from(a) / 255.0;
        lin(v) * a + lin(bg) * (1.0 - a)
    };
    let [br, bgc, bb] = background;
    let data: Vec<[f32; 3]> = match px.layout {
        Layout::Rgb => px
            .data
            .chunks_exact(3)
            .map(|p| [lin(p[0]), lin(p[1]), lin(p[2])])
            .collect(),
        Layout::Rgba => px
            .data
            .chunks_exact(4)
            .map(|p| {
                [
                    over(p[0], br, p[3]),
                    over(p[1], bgc, p[3]),
                    over(p[2], bb, p[3]),
                ]
            })
            .collect(),
        Layout::L => px.data.iter().map(|&g| [lin(g); 3]).collect(),
        Layout::La => px
            .data
            .chunks_exact(2)
            .map(|p| {
                [
                    over(p[0], br, p[1]),
                    over(p[0], bgc, p[1]),
                    over(p[0], bb, p[1]),
                ]
            })
            .collect(),
    };
    LinearRgb::new(data, px.width as usize, px.height as usize).map_err(score_err)
}

/// The sRGB transfer function, inverted, for every 8-bit value.
fn srgb_to_linear_table() -> [f32; 256] {
    std::array::from_fn(|i| {
        let v = i as f32 / 255.0;
        if v <= 0.040_45 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A photo-like test image: smooth ramps and a fine deterministic texture.
    pub(crate) fn photo_like(width: u32, height: u32) -> Pixels {
        // Smooth ramps plus a deterministic fine texture, so that coarse quantisation shows.
        let mut data = Vec::with_capacity((width * height * 3) as usize);
        let mut seed = 12345u32;
        for y in 0..height {
            for x in 0..width {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let n = (seed >> 24) as u8 / 8;
                data.extend([
                    (x * 200 / width) as u8 + n,
                    (y * 200 / height) as u8 + n,
                    ((x + y) * 100 / (width + height)) as u8 + n,
                ]);
            }
        }
        Pixels {
            data,
            width,
            height,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        }
    }

    #[test]
    fn a_better_encode_scores_higher_and_near_lossless_is_near_100() {
        let px = photo_like(96, 64);
        let settings = crate::config::settings_for_width(96);
        let mut scratch = super::super::encode::EncodeScratch::default();
        let meta = crate::metadata::Metadata::default();
        let at = |q: u8, scratch: &mut _| {
            let bytes =
                super::super::encode::encode_at(&px, Format::Jpeg, q, &settings, &meta, scratch)
                    .unwrap();
            score(&px, &bytes, Format::Jpeg, [255; 3]).unwrap()
        };
        let (low, high, top) = (
            at(20, &mut scratch),
            at(80, &mut scratch),
            at(100, &mut scratch),
        );
        assert!(low < high && high < top, "{low} {high} {top}");
        assert!(top > 85.0, "{top}");
    }

    #[test]
    fn a_size_mismatch_is_an_error_not_a_panic() {
        let px = photo_like(16, 16);
        let settings = crate::config::settings_for_width(16);
        let meta = crate::metadata::Metadata::default();
        let mut scratch = super::super::encode::EncodeScratch::default();
        let bytes = super::super::encode::encode_at(
            &photo_like(16, 8),
            Format::Webp,
            80,
            &settings,
            &meta,
            &mut scratch,
        )
        .unwrap();
        assert!(score(&px, &bytes, Format::Webp, [255; 3]).is_err());
    }
}
