//! AVIF through libaom, reached through the system libheif (cargo feature `heif`; Debian's
//! libheif1 links libaom3). The same library reads HEIC and AVIF, so AVIF output costs no
//! second codec stack.
//!
//! libheif turns RGB into YCbCr (BT.601, full range, chroma 4:2:0 by averaging each 2×2 block)
//! and runs libaom in its all-intra mode at a constant quantiser: libheif turns `quality` into
//! libaom's cq-level as libavif and sharp do (`super::quantiser`), so presize's AVIF quality
//! means what theirs does. presize adds the libaom options in [`TUNING`].
//!
//! Not used: 10-bit coding (libheif 1.15 builds a 4:2:2 sequence header for it and libaom
//! aborts the process) and libsharpyuv's chroma downsampling (measured: no gain at these
//! scores, 0.99× sharp's bytes against 0.98× for plain averaging).

use libheif_rs::{
    Channel, ColorPrimaries, ColorProfileNCLX, ColorSpace, CompressionFormat, Encoder,
    EncoderParameterValue, EncoderQuality, EncodingOptions, HeifContext, HeifError, Image,
    RgbChroma,
};

use super::avif_err;
use crate::error::JobError;
use crate::pipeline::pixels::{Layout, Pixels};

/// libaom options beyond libheif's own, in aomenc's spelling, measured on the 14 corpus photos
/// in `web.py`'s build (320, 640 and 1280 px; bytes where the curve meets sharp's median
/// SSIMULACRA2 of 69.4, speed 6, `benches/quality_curve.py`):
/// - `deltaq-mode=3`, a quantiser per 64×64 block from its perceptual weight (libaom's
///   all-intra "perceptual AI" mode): 1.00× sharp's bytes, against 1.03× without;
/// - `enable-qm=1`, quantisation matrices (coarser steps for high frequencies): 0.98×;
/// - `dist-metric=qm-psnr`, which makes the rate-distortion search weigh errors through those
///   same matrices: 0.89×, for 12 % more AVIF CPU.
///
/// Measured and left out: `enable-chroma-deltaq` (1.01×), `sharpness=2` (1.06×) and `=1`
/// (1.00×), `qm-min=0` (1.02×), `qm-max=15` (0.97× before `dist-metric`);
/// `enable-tx-size-search`, `enable-filter-intra`, `aq-mode`, `deltaq-strength`,
/// `enable-restoration` and `sb-size=64` changed nothing at all in all-intra mode. `tune=ssim`,
/// libheif's default, beat `tune=psnr` (1.02× against 1.07×).
const TUNING: [(&str, &str); 3] = [
    ("deltaq-mode", "3"),
    ("enable-qm", "1"),
    ("dist-metric", "qm-psnr"),
];

fn heif_err(e: HeifError) -> JobError {
    avif_err(if e.message.is_empty() {
        format!("libheif: {:?} ({:?})", e.code, e.sub_code)
    } else {
        format!("libheif: {}", e.message)
    })
}

/// Encodes `px` (checked by `mod.rs`: 8-bit, non-empty, within AV1's size) at `quality`
/// (1-100) and libaom `speed` (0 slowest .. 9 fastest; larger values are 9).
///
/// Grey is coded as monochrome AV1 (no chroma planes at all). Alpha becomes libheif's auxiliary
/// alpha image at the same quality, unassociated. The colour box (`nclx`) says BT.709
/// primaries, BT.601 matrix, full range, transfer unspecified (libheif-rs 0.20 cannot set it;
/// browsers and libavif read unspecified as sRGB), which is what the pixels are: the make stage
/// converts other colour spaces to sRGB before AVIF.
pub(super) fn encode(px: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, JobError> {
    let mut image = heif_image(px)?;
    let mut nclx = ColorProfileNCLX::new().ok_or_else(|| avif_err("libheif: out of memory"))?;
    nclx.set_color_primaries(ColorPrimaries::ITU_R_BT_709_5);
    image.set_color_profile_nclx(&nclx).map_err(heif_err)?;

    let lib = crate::pipeline::heif::libheif();
    // By id among all AV1 encoders: libheif-rs 0.20 frees its copy of a name filter before
    // libheif reads it.
    let descriptor = lib
        .encoder_descriptors(16, Some(CompressionFormat::Av1), None)
        .into_iter()
        .find(|d| d.id() == "aom")
        .ok_or_else(|| avif_err("this libheif has no libaom encoder"))?;
    let mut encoder = lib.encoder(descriptor).map_err(heif_err)?;
    configure(&mut encoder, quality, speed)?;

    let mut options = EncodingOptions::new().map_err(heif_err)?;
    // libheif 1.15 leaves the colour box out by default, for old macOS viewers.
    options.set_mac_os_compatibility_workaround_no_nclx_profile(false);
    let mut context = HeifContext::new().map_err(heif_err)?;
    context
        .encode_image(&image, &mut encoder, Some(options))
        .map_err(heif_err)?;
    context.write_to_bytes().map_err(heif_err)
}

/// Quality, speed, one thread (the pool already runs one image per core) and [`TUNING`].
fn configure(encoder: &mut Encoder, quality: u8, speed: u8) -> Result<(), JobError> {
    encoder
        .set_quality(EncoderQuality::Lossy(quality.clamp(1, 100)))
        .map_err(heif_err)?;
    for (name, value) in [("speed", speed.min(9)), ("threads", 1)] {
        encoder
            .set_parameter_value(name, EncoderParameterValue::Int(i32::from(value)))
            .map_err(heif_err)?;
    }
    for (name, value) in TUNING {
        // A libheif built without libaom's key-value API refuses these; the file is still
        // right, only a little larger, so that is not the image's error.
        let _ = encoder.set_parameter_value(
            &format!("aom:{name}"),
            EncoderParameterValue::String(value.into()),
        );
    }
    Ok(())
}

/// `px` as a libheif image: grey as monochrome (plus an alpha plane for `La`), colour as
/// interleaved RGB or RGBA.
fn heif_image(px: &Pixels) -> Result<Image, JobError> {
    let (width, height) = (px.width, px.height);
    let (space, planes): (ColorSpace, &[(Channel, usize)]) = match px.layout {
        Layout::L => (ColorSpace::Monochrome, &[(Channel::Y, 0)]),
        Layout::La => (
            ColorSpace::Monochrome,
            &[(Channel::Y, 0), (Channel::Alpha, 1)],
        ),
        Layout::Rgb => (
            ColorSpace::Rgb(RgbChroma::Rgb),
            &[(Channel::Interleaved, 0)],
        ),
        Layout::Rgba => (
            ColorSpace::Rgb(RgbChroma::Rgba),
            &[(Channel::Interleaved, 0)],
        ),
    };
    let mut image = Image::new(width, height, space).map_err(heif_err)?;
    for &(channel, _) in planes {
        image
            .create_plane(channel, width, height, 8)
            .map_err(heif_err)?;
    }
    let channels = px.layout.channels();
    // Bytes per row of each plane: all of a pixel for interleaved, one sample for the others.
    let row = |channel| {
        width as usize
            * if channel == Channel::Interleaved {
                channels
            } else {
                1
            }
    };
    for &(channel, offset) in planes {
        let mut all = image.planes_mut();
        let plane = match channel {
            Channel::Y => all.y.take(),
            Channel::Alpha => all.a.take(),
            _ => all.interleaved.take(),
        }
        .ok_or_else(|| avif_err("libheif made no plane"))?;
        let (stride, row) = (plane.stride, row(channel));
        let rows = plane
            .data
            .chunks_mut(stride)
            .zip(px.data.chunks_exact(width as usize * channels));
        for (dst, src) in rows {
            if channel == Channel::Interleaved {
                dst[..row].copy_from_slice(src);
            } else {
                for (d, s) in dst[..row]
                    .iter_mut()
                    .zip(src.iter().skip(offset).step_by(channels))
                {
                    *d = *s;
                }
            }
        }
    }
    Ok(image)
}
