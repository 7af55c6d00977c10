//! AVIF encoding: resized, oriented 8-bit pixels to a still AV1 image in an AVIF file.
//!
//! One encoder per build, chosen by cargo feature:
//! - `heif` (default): libaom through the system libheif, which also reads HEIC and AVIF
//!   (`aom.rs`);
//! - `rav1e` in a build without `heif`: rav1e through `ravif`, pure Rust (`rav1e.rs`);
//! - neither: no AVIF output (`format::AVIF_ENCODER` is `None`), so `-f avif` is refused.
//!
//! Why libaom by default (issue #17, `web.py` on the 14 corpus photos, 320/640/1280 px): at
//! sharp's median SSIMULACRA2 (69.4) libaom speed 6 with presize's tuning needs 0.89× sharp's
//! bytes, where rav1e needed 1.16× at speed 9 (1.11× at speed 8); and the AVIF-only build took
//! 8.2 s of CPU with libaom speed 6 against 10.5 s with rav1e speed 9.
//!
//! This file holds what both encoders share: the checks on the pixels, the effort scale, and
//! dropping an alpha channel that hides nothing. The defaults are in `config.rs`.

#[cfg(feature = "heif")]
mod aom;
#[cfg(feature = "rav1e")]
mod rav1e;

use std::borrow::Cow;

use crate::error::JobError;
use crate::pipeline::pixels::{Depth, Pixels};

/// The encoder speed for `--effort avif=N` (0-10): 10 − N, clamped by each encoder to its own
/// range (libaom 0-9, rav1e 1-10).
pub(crate) fn speed_for_effort(effort: u8) -> u8 {
    10u8.saturating_sub(effort)
}

/// The AV1 quantiser (0 best .. 63) for `quality` (clamped to 1-100), as libavif and libheif
/// give it to libaom (cq-level), and as `rav1e.rs` carries it to rav1e: 100 qualities fall on
/// 64 levels, so neighbouring qualities often make the same file (55 and 56 are both 28).
pub(crate) fn quantiser(quality: u8) -> u8 {
    let q = u32::from(quality.clamp(1, 100));
    (((100 - q) * 63 + 50) / 100) as u8
}

/// The largest width or height AV1 can code.
const MAX_SIDE: u32 = u16::MAX as u32;

pub(super) fn avif_err(message: impl Into<String>) -> JobError {
    JobError::Encode {
        format: "AVIF",
        message: message.into(),
    }
}

/// Encodes `px` as a still AVIF image at `quality` (1-100, libavif's and sharp's scale; the
/// default is `Qualities::default`'s) and `effort` (`--effort avif`).
///
/// No ICC profile is embedded: the make stage converts sources in other colour spaces to sRGB
/// before AVIF, and the file's colour box says sRGB. An alpha channel that is 255 everywhere
/// is dropped.
pub(crate) fn encode_avif(px: &Pixels, quality: u8, effort: u8) -> Result<Vec<u8>, JobError> {
    check(px)?;
    let px = if px.layout.has_alpha() && px.is_opaque() {
        Cow::Owned(px.clone().without_opaque_alpha())
    } else {
        Cow::Borrowed(px)
    };
    let speed = speed_for_effort(effort);
    #[cfg(feature = "heif")]
    return aom::encode(&px, quality, speed);
    #[cfg(all(feature = "rav1e", not(feature = "heif")))]
    return rav1e::encode(&px, quality, speed);
    #[cfg(not(any(feature = "heif", feature = "rav1e")))]
    {
        let _ = (px, quality, speed);
        Err(avif_err("this build of presize writes no AVIF"))
    }
}

/// An error for pixels no encoder can take: empty, beyond AV1's size, not 8-bit, or a buffer
/// that does not hold them.
fn check(px: &Pixels) -> Result<(), JobError> {
    let (width, height) = (px.width, px.height);
    if width == 0 || height == 0 {
        return Err(avif_err(format!(
            "cannot encode an empty {width}x{height} image"
        )));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(avif_err(format!(
            "{width}x{height} is larger than AV1 allows ({MAX_SIDE} px a side)"
        )));
    }
    let need = width as usize * height as usize * px.layout.channels();
    if px.depth != Depth::Eight || px.data.len() != need {
        return Err(avif_err(format!(
            "pixel buffer holds {} bytes, {width}x{height} 8-bit {:?} needs {need}",
            px.data.len(),
            px.layout,
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipeline::pixels::Layout;
    use crate::pipeline::test_util::psnr;

    /// A smooth colour ramp with a soft diagonal edge, like a small photo.
    fn gradient(width: u32, height: u32, layout: Layout) -> Pixels {
        let mut data = Vec::with_capacity((width * height) as usize * layout.channels());
        for y in 0..height {
            for x in 0..width {
                let r = (x * 255 / (width - 1)) as u8;
                let g = (y * 255 / (height - 1)) as u8;
                let b = ((x + y) * 255 / (width + height - 2)) as u8;
                let a = if x < width / 2 {
                    255
                } else {
                    (y * 255 / height) as u8
                };
                match layout {
                    Layout::L => data.push(g),
                    Layout::La => data.extend([g, a]),
                    Layout::Rgb => data.extend([r, g, b]),
                    Layout::Rgba => data.extend([r, g, b, a]),
                }
            }
        }
        Pixels {
            data,
            width,
            height,
            layout,
            depth: Depth::Eight,
        }
    }

    /// The integration tests' AVIF container reader, shared rather than copied.
    mod avif_container {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/common/avif_container.rs"
        ));
    }

    /// Checks the container (see `avif_container`) and its size; returns true if and only if
    /// an alpha auxiliary image is declared.
    fn check_container(avif: &[u8], width: u32, height: u32) -> bool {
        let container = avif_container::avif_container(avif);
        assert_eq!((container.width, container.height), (width, height));
        container.alpha
    }

    /// The default quality and effort.
    fn defaults() -> (u8, u8) {
        let settings = crate::config::settings_for_width(1);
        (settings.quality.avif, settings.effort.avif)
    }

    /// The three test images as AVIF at the default settings, with their sources.
    fn encoded_gradients() -> [(Pixels, Vec<u8>); 3] {
        let (quality, effort) = defaults();
        [Layout::Rgb, Layout::Rgba, Layout::L].map(|layout| {
            let px = gradient(64, 48, layout);
            let avif = encode_avif(&px, quality, effort).unwrap();
            (px, avif)
        })
    }

    /// Checks `back`, an independent decoder's RGB or RGBA reading (`back_layout`) of the AVIF
    /// made from `source`: colour above 35 dB, grey without a tint, and the alpha too if
    /// `check_alpha`.
    fn check_decoded(source: &Pixels, back: &[u8], back_layout: Layout, check_alpha: bool) {
        let channels = back_layout.channels();
        assert_eq!(back.len(), 64 * 48 * channels, "{:?}", source.layout);
        let rgb: Vec<u8> = back
            .chunks_exact(channels)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        match source.layout {
            Layout::Rgb => {
                let db = psnr(&rgb, &source.data);
                assert!(db > 35.0, "RGB: PSNR {db:.1} dB");
            }
            Layout::Rgba => {
                // Colour only where it shows: ravif may repaint fully transparent pixels.
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                for (p, orig) in rgb.chunks_exact(3).zip(source.data.chunks_exact(4)) {
                    if orig[3] == 255 {
                        ours.extend_from_slice(p);
                        theirs.extend_from_slice(&orig[..3]);
                    }
                }
                let db = psnr(&ours, &theirs);
                assert!(db > 35.0, "RGBA: opaque colour PSNR {db:.1} dB");
                if check_alpha {
                    assert_eq!(back_layout, Layout::Rgba, "no alpha plane decoded");
                    let got: Vec<u8> = back.iter().skip(3).step_by(4).copied().collect();
                    let want: Vec<u8> = source.data.iter().skip(3).step_by(4).copied().collect();
                    let db = psnr(&got, &want);
                    assert!(db > 35.0, "alpha PSNR {db:.1} dB");
                }
            }
            Layout::L => {
                let luma: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
                let db = psnr(&luma, &source.data);
                assert!(db > 35.0, "grey: PSNR {db:.1} dB");
                let tint = rgb
                    .chunks_exact(3)
                    .map(|p| p[0].abs_diff(p[1]).max(p[2].abs_diff(p[1])))
                    .max();
                assert!(tint <= Some(2), "grey came back tinted by {tint:?}");
            }
            Layout::La => unreachable!("not among the test images"),
        }
    }

    #[test]
    fn gradients_are_avifs_of_the_right_size_with_alpha_only_when_they_have_it() {
        for (px, avif) in encoded_gradients() {
            let has_alpha = px.layout.has_alpha();
            assert_eq!(check_container(&avif, 64, 48), has_alpha, "{:?}", px.layout);
        }
        let avif = encode_avif(&gradient(64, 48, Layout::La), 50, 10).unwrap();
        assert!(check_container(&avif, 64, 48));
    }

    /// The colour box says what the pixels are (sRGB, coded with the BT.601 matrix at full
    /// range; rav1e's files leave out a box that would say only that), and grey is coded as
    /// grey where the encoder can (libaom: AV1 4:0:0).
    #[test]
    fn the_colour_box_says_srgb_and_grey_is_monochrome() {
        for (px, avif) in encoded_gradients() {
            let container = avif_container::avif_container(&avif);
            let want = cfg!(feature = "heif").then_some((1, 2, 6, true));
            assert_eq!(container.nclx, want, "{:?}", px.layout);
            let grey = px.layout == Layout::L;
            assert_eq!(
                container.monochrome,
                grey && cfg!(feature = "heif"),
                "{:?}",
                px.layout
            );
        }
    }

    /// An alpha channel that is 255 everywhere is not written: it would cost bytes and tell
    /// nothing. One that hides anything is.
    #[test]
    fn opaque_alpha_is_dropped() {
        let mut px = gradient(32, 24, Layout::Rgba);
        for a in px.data.iter_mut().skip(3).step_by(4) {
            *a = 255;
        }
        let opaque = encode_avif(&px, 50, 10).unwrap();
        assert!(!check_container(&opaque, 32, 24));
        px.data[3] = 254;
        let translucent = encode_avif(&px, 50, 10).unwrap();
        assert!(check_container(&translucent, 32, 24));
    }

    /// libheif (Debian's, with libdav1d) decodes what the encoder wrote: an AV1 decoder that
    /// shares no code with either encoder, in-process.
    #[cfg(feature = "heif")]
    #[test]
    fn libheif_decodes_the_gradients_back_with_their_alpha() {
        for (px, avif) in encoded_gradients() {
            let back = crate::pipeline::heif::decode_heif(&avif, u64::MAX).expect("libheif");
            assert_eq!((back.pixels.width, back.pixels.height), (64, 48));
            check_decoded(&px, &back.pixels.data, back.pixels.layout, true);
        }
    }

    /// The cross-check tier (`cargo test --features cross-check`, see `tests/cross_check.rs`):
    /// a live ImageMagick, found by its version rather than by the name `convert`, reads them.
    #[test]
    #[cfg_attr(
        not(feature = "cross-check"),
        ignore = "cross-check tier: cargo test --features cross-check"
    )]
    fn cross_check_imagemagick_decodes_the_gradients() {
        use std::process::Command;
        let says_imagemagick = |name: &&str| {
            Command::new(name).arg("-version").output().is_ok_and(|o| {
                let text = String::from_utf8_lossy(&o.stdout);
                text.lines()
                    .next()
                    .is_some_and(|l| l.contains("ImageMagick"))
            })
        };
        let convert = ["magick", "convert-im6.q16", "convert"]
            .into_iter()
            .find(says_imagemagick)
            .expect("cross-check tier: ImageMagick is not installed (apt-get install imagemagick)");
        let dir = tempfile::tempdir().unwrap();
        for (px, avif) in encoded_gradients() {
            let src = dir.path().join("x.avif");
            std::fs::write(&src, &avif).unwrap();
            let (kind, layout) = if px.layout.has_alpha() {
                ("rgba", Layout::Rgba)
            } else {
                ("rgb", Layout::Rgb)
            };
            let mut cmd = Command::new(convert);
            cmd.arg(&src).args(["-depth", "8"]).arg(format!("{kind}:-"));
            eprintln!("cross-check: running {cmd:?}");
            let out = cmd.output().expect("ImageMagick runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // ImageMagick 6 reads only the colour item of an AVIF and reports every pixel
            // opaque, so its alpha is compared only if it read one; libheif checks it always.
            let read_alpha =
                layout == Layout::Rgba && out.stdout.iter().skip(3).step_by(4).any(|&a| a != 255);
            check_decoded(&px, &out.stdout, layout, read_alpha);
        }
    }

    #[test]
    fn higher_quality_costs_more_bytes() {
        let px = gradient(64, 48, Layout::Rgb);
        let low = encode_avif(&px, 20, 10).unwrap();
        let high = encode_avif(&px, 95, 10).unwrap();
        assert!(high.len() > low.len(), "{} <= {}", high.len(), low.len());
    }

    #[test]
    fn odd_settings_and_tiny_images_do_not_panic() {
        let one = Pixels {
            data: vec![10, 20, 30, 128],
            width: 1,
            height: 1,
            layout: Layout::Rgba,
            depth: Depth::Eight,
        };
        let avif = encode_avif(&one, 0, 0).unwrap();
        assert!(check_container(&avif, 1, 1));
        let avif = encode_avif(&gradient(3, 2, Layout::Rgb), 255, 255).unwrap();
        assert!(!check_container(&avif, 3, 2));
    }

    #[test]
    fn bad_sizes_are_errors() {
        let pixels = |data: Vec<u8>, width, height, layout, depth| Pixels {
            data,
            width,
            height,
            layout,
            depth,
        };
        let empty = pixels(Vec::new(), 0, 5, Layout::Rgb, Depth::Eight);
        let short = pixels(vec![0; 10], 4, 4, Layout::Rgb, Depth::Eight);
        let wide = pixels(vec![0; 8], 2, 2, Layout::L, Depth::Sixteen);
        let huge = pixels(Vec::new(), 70_000, 1, Layout::L, Depth::Eight);
        for px in [empty, short, wide, huge] {
            match encode_avif(&px, 50, 8) {
                Err(JobError::Encode { format, message }) => {
                    assert_eq!(format, "AVIF");
                    assert!(!message.is_empty());
                }
                other => panic!("{}x{}: {other:?}", px.width, px.height),
            }
        }
    }
}
