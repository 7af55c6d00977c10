//! AVIF encoding through `ravif` (the rav1e AV1 encoder plus a HEIF container writer).
//!
//! `encode` calls [`encode_avif`] with resized, oriented pixels. AV1 is slow: one 800 px photo
//! costs about half a second of CPU at the default speed, ten times a WebP, so the speed has
//! its own knob and a default measured against WebP (see [`speed_for_effort`]). rav1e runs on one
//! thread here (ravif's `threading` feature is off): presize already keeps every core busy with
//! one image each, and a second pool inside the encoder would only oversubscribe them.

use ravif::{Encoder, Img, RGB8, RGBA8};

use super::pixels::{Layout, Pixels};
use crate::error::JobError;

/// rav1e's speed for presize's `--effort avif=N`: effort 0..10 is speed 10..1. The default
/// effort 1 is speed 9, chosen so that an AVIF costs at most about ten WebPs of the same pixels
/// on one core: at quality 50 (ravif 75) on 800×500 photos, speed 9 took 10-12× libwebp's time,
/// speed 8 (and 7, which codes the same stills) 20-27×, speed 6 22-32×. Speed 10 is only
/// 3.5-4.5×, but its files were 3-22 % larger than speed 9's, and on one photo larger than the
/// WebP.
pub(crate) fn speed_for_effort(effort: u8) -> u8 {
    10u8.saturating_sub(effort).clamp(1, 10)
}

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
pub(crate) fn ravif_quality(quality: u8) -> f32 {
    let q = i32::from(quality.clamp(1, 100));
    let quantizer = ((100 - q) * 63 + 50) / 100;
    let index = match quantizer {
        62 => 249,
        63 => 255,
        n => 4 * n,
    };
    let x = index as f32 / 255.0;
    let r = if x >= 0.75 {
        1.0 - x
    } else if x > 0.468 {
        2.0 * (0.875 - x)
    } else {
        1.0 - x / 2.6
    };
    (r * 100.0).clamp(1.0, 100.0)
}

/// The largest width or height AV1 can code (rav1e refuses anything above `u16::MAX`).
const MAX_SIDE: u32 = u16::MAX as u32;

fn avif_err(message: impl Into<String>) -> JobError {
    JobError::Encode {
        format: "AVIF",
        message: message.into(),
    }
}

/// Encodes `px` as a still AVIF image.
///
/// - `quality` is 1-100 on the libavif/sharp scale (clamped into it), converted for ravif by
///   [`ravif_quality`]; the default, 50, is `Qualities::default`'s.
/// - `speed` is rav1e's 1-10 (clamped); see [`speed_for_effort`].
/// - Grey images are coded as YCbCr with flat chroma, which costs a few bytes over true
///   monochrome (ravif offers no 4:0:0 colour planes).
/// - Alpha is kept for `La` and `Rgba`. Our pixels are straight (unassociated) alpha, which is
///   what ravif takes; it stores the alpha unassociated and replaces the colour of fully
///   transparent pixels with a blur of their neighbours, which compresses better and changes
///   nothing visible. An alpha channel that is 255 everywhere is dropped.
/// - `icc` is **not embedded**: ravif (0.13) and its container writer have no ICC call; the
///   file gets an `nclx` colour box that says sRGB (BT.709 primaries, sRGB transfer, BT.601
///   matrix). Pixels in another space (Display P3, Adobe RGB) must be converted to sRGB before
///   this call, or they will show with the wrong colours.
pub(crate) fn encode_avif(
    px: &Pixels,
    quality: u8,
    speed: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, JobError> {
    // The profile cannot be stored; see the doc comment for what callers must do instead.
    let _ = icc;
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
    let count = width as usize * height as usize;
    if px.data.len() != count * px.layout.channels() {
        return Err(avif_err(format!(
            "pixel buffer holds {} bytes, {width}x{height} {:?} needs {}",
            px.data.len(),
            px.layout,
            count * px.layout.channels()
        )));
    }
    // ravif asserts on out-of-range settings; clamping keeps a bad value from becoming a panic.
    let encoder = Encoder::new()
        .with_quality(ravif_quality(quality))
        .with_alpha_quality(ravif_quality(quality))
        .with_speed(speed.clamp(1, 10))
        .with_num_threads(Some(1));
    let (w, h) = (width as usize, height as usize);
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

    /// The default AVIF quality and rav1e speed.
    const DEFAULTS: (u8, u8) = (50, 9);

    #[test]
    fn defaults_are_the_configs() {
        let settings = crate::config::settings_for_width(1);
        assert_eq!(
            (
                settings.quality.avif,
                speed_for_effort(settings.effort.avif)
            ),
            DEFAULTS
        );
    }
    use crate::pipeline::pixels::Depth;
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

    /// The three test images as AVIF at the default settings, with their sources.
    fn encoded_gradients() -> [(Pixels, Vec<u8>); 3] {
        [Layout::Rgb, Layout::Rgba, Layout::L].map(|layout| {
            let px = gradient(64, 48, layout);
            let avif = encode_avif(&px, DEFAULTS.0, DEFAULTS.1, None).unwrap();
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
        let avif = encode_avif(&gradient(64, 48, Layout::La), 50, 10, None).unwrap();
        assert!(check_container(&avif, 64, 48));
    }

    /// libheif (Debian's, with libdav1d or libaom) decodes what rav1e wrote: an AV1 decoder that
    /// shares no code with the encoder, in-process.
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

    #[test]
    fn higher_quality_costs_more_bytes() {
        let px = gradient(64, 48, Layout::Rgb);
        let low = encode_avif(&px, 20, 10, None).unwrap();
        let high = encode_avif(&px, 95, 10, None).unwrap();
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
        let avif = encode_avif(&one, 0, 0, None).unwrap();
        assert!(check_container(&avif, 1, 1));
        let avif = encode_avif(&gradient(3, 2, Layout::Rgb), 255, 255, Some(b"icc")).unwrap();
        assert!(!check_container(&avif, 3, 2));
    }

    #[test]
    fn bad_sizes_are_errors() {
        let empty = Pixels {
            data: Vec::new(),
            width: 0,
            height: 5,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        };
        let short = Pixels {
            data: vec![0; 10],
            width: 4,
            height: 4,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        };
        let huge = Pixels {
            data: Vec::new(),
            width: 70_000,
            height: 1,
            layout: Layout::L,
            depth: Depth::Eight,
        };
        for px in [empty, short, huge] {
            match encode_avif(&px, 50, 8, None) {
                Err(JobError::Encode { format, message }) => {
                    assert_eq!(format, "AVIF");
                    assert!(!message.is_empty());
                }
                other => panic!("{}x{}: {other:?}", px.width, px.height),
            }
        }
    }
}
