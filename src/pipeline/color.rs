//! Colour fidelity: ICC conversion to sRGB (`--icc srgb`), colour-managed CMYK, and linear light
//! (`--linear`).
//!
//! Conversions go through `moxcms` (pure Rust, no C library to link). The rendering intent is
//! relative colorimetric, the default of libvips (`vips_thumbnail`'s `intent`; ImageMagick's is
//! perceptual): colours inside the sRGB gamut keep their measured values, only out-of-gamut ones
//! are clipped. For matrix/TRC profiles (Adobe RGB, Display P3, camera RGB) the intent makes no
//! difference at all; it only picks which table of a LUT-based profile (typically CMYK) is used.
//! Building a transform can cost far more than using it: 0.6 ms for Adobe RGB against 0.8 ms to
//! convert 800x533 pixels, and 25-30 ms for a SWOP CMYK profile against 1.6 ms to convert 500x333.
//! So a worker keeps the few it built last in a [`ColorScratch`].
//!
//! Linear light: resampling gamma-encoded values darkens fine high-contrast detail (a 1-px
//! black/white grating averages to sRGB 128 instead of the 188 a camera would record). `--linear`
//! decodes to 16-bit linear samples with a 256-entry table, resamples those with
//! `fast_image_resize`'s u16 kernels, and encodes back with an exact 65 536-entry table.

use std::sync::{Arc, OnceLock};

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U16x2, U16x3, U16x4, U16};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions, Resizer};
use moxcms::{
    ColorProfile, DataColorSpace, Layout as CmsLayout, RenderingIntent, Transform8BitExecutor,
    TransformOptions,
};

use super::pixels::{Depth, Layout, Pixels};
use crate::error::JobError;
use crate::geometry::Rect;

/// How many built conversions a worker keeps. Batches usually hold one or two profiles (the
/// camera's, maybe Adobe RGB); a handful covers mixed folders without holding much memory.
const CACHE_SLOTS: usize = 4;

/// Pixels transformed per call, so that in-place conversion needs only a small side buffer.
const CHUNK_PIXELS: usize = 16 * 1024;

/// A worker's colour state: the conversions it built last, keyed by the exact profile bytes.
#[derive(Default)]
pub struct ColorScratch {
    /// Most recently used last.
    cache: Vec<Cached>,
    /// Side buffer for chunked conversion.
    chunk: Vec<u8>,
}

/// What a conversion reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Grey pixels, through a grey (or, leniently, an RGB) profile.
    Grey,
    /// RGB pixels.
    Rgb,
    /// RGBA pixels; alpha passes through.
    Rgba,
    /// CMYK samples (ink amounts, 255 = full ink) to RGB.
    Cmyk,
}

struct Cached {
    source: Source,
    checksum: u32,
    profile: Vec<u8>,
    conversion: Conversion,
}

#[derive(Clone)]
enum Conversion {
    /// Grey has only 256 inputs: a table says it all.
    GreyTable(Arc<[u8; 256]>),
    /// Anything else goes through moxcms.
    Transform(Arc<Transform8BitExecutor>),
}

fn unsupported(what: &str, e: impl std::fmt::Display) -> JobError {
    JobError::Unsupported(format!("{what}: {e}"))
}

/// Relative colorimetric, unless the profile's tables offer only the perceptual one (A2B0, as
/// in JPEG XL's XYB profiles): ICC.1 says A2B0 then serves every intent, and lcms2 (so
/// ImageMagick) reads it so, while moxcms refuses a relative transform from such a profile.
fn options(profile: &ColorProfile) -> TransformOptions {
    let perceptual_only = !profile.is_matrix_shaper()
        && profile.lut_a_to_b_perceptual.is_some()
        && profile.lut_a_to_b_colorimetric.is_none();
    let rendering_intent = if perceptual_only {
        RenderingIntent::Perceptual
    } else {
        RenderingIntent::RelativeColorimetric
    };
    TransformOptions {
        rendering_intent,
        ..TransformOptions::default()
    }
}

/// sRGB for one grey channel: the sRGB curve as the grey TRC.
fn srgb_grey_profile() -> ColorProfile {
    let mut p = ColorProfile::new_srgb();
    p.color_space = DataColorSpace::Gray;
    p.gray_trc = p.red_trc.clone();
    p
}

fn name(space: DataColorSpace) -> &'static str {
    match space {
        DataColorSpace::Rgb => "RGB",
        DataColorSpace::Gray => "grey",
        DataColorSpace::Cmyk => "CMYK",
        DataColorSpace::Lab => "Lab",
        _ => "an unusual colour space",
    }
}

fn build(source: Source, icc: &[u8]) -> Result<Conversion, JobError> {
    let profile = ColorProfile::new_from_slice(icc)
        .map_err(|e| unsupported("cannot read the embedded ICC profile", e))?;
    let space = profile.color_space;
    let mismatch = |pixels: &str| {
        JobError::Unsupported(format!(
            "the embedded ICC profile is for {} data but the pixels are {pixels}",
            name(space)
        ))
    };
    let transform = |src: CmsLayout, dst_profile: &ColorProfile, dst: CmsLayout| {
        profile
            .create_transform_8bit(src, dst_profile, dst, options(&profile))
            .map_err(|e| unsupported("cannot convert the embedded ICC profile to sRGB", e))
    };
    let srgb = ColorProfile::new_srgb();
    match source {
        Source::Grey => {
            let ramp: Vec<u8> = (0..=255).collect();
            let mut table = [0u8; 256];
            match space {
                DataColorSpace::Gray => {
                    transform(CmsLayout::Gray, &srgb_grey_profile(), CmsLayout::Gray)?
                        .transform(&ramp, &mut table)
                        .map_err(|e| unsupported("ICC conversion failed", e))?;
                }
                // A grey image with an RGB profile (PNG forbids it, other formats do not say):
                // read grey as R = G = B, and keep the luma of the result.
                DataColorSpace::Rgb => {
                    let ramp3: Vec<u8> = ramp.iter().flat_map(|&v| [v, v, v]).collect();
                    let mut out = vec![0u8; ramp3.len()];
                    transform(CmsLayout::Rgb, &srgb, CmsLayout::Rgb)?
                        .transform(&ramp3, &mut out)
                        .map_err(|e| unsupported("ICC conversion failed", e))?;
                    for (t, p) in table.iter_mut().zip(out.chunks_exact(3)) {
                        *t = luma(p[0], p[1], p[2]);
                    }
                }
                _ => return Err(mismatch("grey")),
            }
            Ok(Conversion::GreyTable(Arc::new(table)))
        }
        Source::Rgb | Source::Rgba => {
            if space != DataColorSpace::Rgb {
                return Err(mismatch("RGB"));
            }
            let layout = if source == Source::Rgb {
                CmsLayout::Rgb
            } else {
                CmsLayout::Rgba
            };
            Ok(Conversion::Transform(transform(layout, &srgb, layout)?))
        }
        Source::Cmyk => {
            if space != DataColorSpace::Cmyk {
                return Err(mismatch("CMYK"));
            }
            // moxcms reads 8-bit CMYK with the RGBA layout.
            Ok(Conversion::Transform(transform(
                CmsLayout::Rgba,
                &srgb,
                CmsLayout::Rgb,
            )?))
        }
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    (0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b)).round() as u8
}

impl ColorScratch {
    /// The conversion for `icc` read as `source`, built or taken from the cache.
    fn conversion(&mut self, source: Source, icc: &[u8]) -> Result<Conversion, JobError> {
        let checksum = crc32fast::hash(icc);
        let hit = self
            .cache
            .iter()
            .position(|c| c.source == source && c.checksum == checksum && c.profile == icc);
        if let Some(i) = hit {
            let entry = self.cache.remove(i);
            let conversion = entry.conversion.clone();
            self.cache.push(entry);
            return Ok(conversion);
        }
        let conversion = build(source, icc)?;
        if self.cache.len() == CACHE_SLOTS {
            self.cache.remove(0);
        }
        self.cache.push(Cached {
            source,
            checksum,
            profile: icc.to_vec(),
            conversion: conversion.clone(),
        });
        Ok(conversion)
    }

    /// Converts 8-bit pixels in place from the colour space of `icc` to sRGB; alpha is left as
    /// it is. Grey stays grey (one channel, sRGB tone curve).
    pub fn to_srgb(&mut self, px: &mut Pixels, icc: &[u8]) -> Result<(), JobError> {
        let source = match px.layout {
            Layout::L | Layout::La => Source::Grey,
            Layout::Rgb => Source::Rgb,
            Layout::Rgba => Source::Rgba,
        };
        match self.conversion(source, icc)? {
            Conversion::GreyTable(table) => {
                let step = px.layout.channels();
                for v in px.data.iter_mut().step_by(step) {
                    *v = table[usize::from(*v)];
                }
            }
            Conversion::Transform(t) => {
                let chunk = CHUNK_PIXELS * px.layout.channels();
                for part in px.data.chunks_mut(chunk) {
                    self.chunk.clear();
                    self.chunk.resize(part.len(), 0);
                    t.transform(part, &mut self.chunk)
                        .map_err(|e| unsupported("ICC conversion failed", e))?;
                    part.copy_from_slice(&self.chunk);
                }
            }
        }
        Ok(())
    }

    /// `--icc srgb` for a decoded source whose profile is `icc`: the pixels are converted to
    /// sRGB and `icc` becomes the compact sRGB profile (an sRGB source only gets the compact
    /// profile; a source without one is taken as sRGB already). A profile that cannot be
    /// converted fails the image with the reason: handing back its pixels unconverted, under
    /// a flag that promises sRGB, would be silently wrong (issue #13 item 5).
    pub fn source_to_srgb(
        &mut self,
        px: &mut Pixels,
        icc: &mut Option<Vec<u8>>,
    ) -> Result<(), JobError> {
        let Some(profile) = icc.as_deref() else {
            return Ok(());
        };
        if !is_srgb(profile) {
            self.to_srgb(px, profile).map_err(|e| {
                JobError::Unsupported(format!(
                    "--icc srgb: {}; the image was not written (--icc keep embeds the profile \
                     unchanged)",
                    e.to_string().trim_start_matches("unsupported: ")
                ))
            })?;
        }
        *icc = Some(srgb_profile().to_vec());
        Ok(())
    }

    /// Converts CMYK samples (4 bytes a pixel) to sRGB RGB through the CMYK profile `icc`,
    /// replacing the contents of `out`. `inverted` says the samples are stored as 255 − ink, as
    /// Adobe (Photoshop) CMYK JPEGs store them.
    pub fn cmyk_to_rgb_icc(
        &mut self,
        cmyk: &[u8],
        icc: &[u8],
        inverted: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), JobError> {
        let Conversion::Transform(t) = self.conversion(Source::Cmyk, icc)? else {
            // `build` makes a transform for every CMYK source; a table here would be a bug.
            return Err(JobError::Unsupported(
                "CMYK conversion is not a transform".into(),
            ));
        };
        let pixels = cmyk.len() / 4;
        let cmyk = &cmyk[..pixels * 4];
        out.clear();
        out.resize(pixels * 3, 0);
        let fail = |e| unsupported("ICC conversion failed", e);
        if inverted {
            for (src, dst) in cmyk
                .chunks(CHUNK_PIXELS * 4)
                .zip(out.chunks_mut(CHUNK_PIXELS * 3))
            {
                self.chunk.clear();
                self.chunk.extend(src.iter().map(|&v| 255 - v));
                t.transform(&self.chunk, dst).map_err(fail)?;
            }
        } else {
            t.transform(cmyk, out).map_err(fail)?;
        }
        Ok(())
    }
}

/// Converts 8-bit pixels in place from the colour space of `icc` to sRGB (see
/// [`ColorScratch::to_srgb`], which keeps the built transform for the next image).
pub fn to_srgb(px: &mut Pixels, icc: &[u8]) -> Result<(), JobError> {
    ColorScratch::default().to_srgb(px, icc)
}

/// CMYK → sRGB RGB through an embedded CMYK profile (see [`ColorScratch::cmyk_to_rgb_icc`]).
pub fn cmyk_to_rgb_icc(
    cmyk: &[u8],
    icc: &[u8],
    inverted: bool,
    out: &mut Vec<u8>,
) -> Result<(), JobError> {
    ColorScratch::default().cmyk_to_rgb_icc(cmyk, icc, inverted, out)
}

/// Returns true if and only if `icc` describes sRGB closely enough that converting would change
/// no 8-bit value: an RGB matrix/TRC profile (no LUTs) with sRGB's colorants and tone curves.
/// The name inside the profile is not trusted. Unreadable profiles are not sRGB.
pub fn is_srgb(icc: &[u8]) -> bool {
    // Bytes 16..20 of the header: the data colour space. Saves parsing large CMYK profiles.
    if icc.get(16..20) != Some(b"RGB ".as_slice()) {
        return false;
    }
    let Ok(p) = ColorProfile::new_from_slice(icc) else {
        return false;
    };
    let has_luts = p.lut_a_to_b_perceptual.is_some()
        || p.lut_a_to_b_colorimetric.is_some()
        || p.lut_a_to_b_saturation.is_some();
    if has_luts || !p.is_matrix_shaper() {
        return false;
    }
    let srgb = ColorProfile::new_srgb();
    // sRGB profiles in the wild differ in the 4th decimal (rounding of the Bradford-adapted
    // primaries); a different gamut differs in the 2nd.
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 2e-3 && (a.y - b.y).abs() < 2e-3 && (a.z - b.z).abs() < 2e-3
    };
    if !(close(p.red_colorant, srgb.red_colorant)
        && close(p.green_colorant, srgb.green_colorant)
        && close(p.blue_colorant, srgb.blue_colorant))
    {
        return false;
    }
    // Each curve must send every 8-bit code to the linear value that sRGB's curve gives it, to
    // within half a code once encoded back (gamma 2.2 misses by several codes in the shadows).
    let curves = [&p.red_trc, &p.green_trc, &p.blue_trc];
    curves.iter().all(|trc| {
        p.build_8bit_lin_table(trc).is_ok_and(|lin| {
            lin.iter().enumerate().all(|(code, &l)| {
                let back = 255.0 * srgb_encode(f64::from(l).clamp(0.0, 1.0));
                (back - code as f64).abs() < 0.5
            })
        })
    })
}

/// A compact sRGB ICC profile (548 bytes, ICC v4 matrix/TRC with the exact sRGB curve) to embed
/// in outputs that were converted to sRGB. Built once, always to the same bytes.
///
/// It is written here rather than by moxcms's encoder, whose 0.8 output gets the header's PCS
/// illuminant wrong (libpng warns "PCS illuminant is not D50"), leaves a tag unaligned ("tag start
/// not a multiple of 4"), stores the Bradford cone matrix as `chad`, and stamps today's date, so
/// identical runs would write different bytes.
pub fn srgb_profile() -> &'static [u8] {
    static PROFILE: OnceLock<Vec<u8>> = OnceLock::new();
    PROFILE.get_or_init(encode_srgb_profile)
}

/// s15Fixed16Number.
#[allow(clippy::cast_possible_truncation)]
fn s15f16(v: f64) -> [u8; 4] {
    ((v * 65536.0).round() as i32).to_be_bytes()
}

/// A `mluc` tag holding one en-US string.
fn mluc(text: &str) -> Vec<u8> {
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let mut tag = b"mluc\0\0\0\0".to_vec();
    for v in [1u32, 12] {
        tag.extend(v.to_be_bytes()); // one record of 12 bytes
    }
    tag.extend(b"enUS");
    tag.extend(u32::try_from(utf16.len()).unwrap_or(0).to_be_bytes());
    tag.extend(28u32.to_be_bytes()); // the string follows the record
    tag.extend(utf16);
    tag
}

fn xyz_tag(xyz: [i32; 3]) -> Vec<u8> {
    let mut tag = b"XYZ \0\0\0\0".to_vec();
    tag.extend(xyz.iter().flat_map(|v| v.to_be_bytes()));
    tag
}

fn encode_srgb_profile() -> Vec<u8> {
    // sRGB's primaries and D65 white, Bradford-adapted to the ICC's D50 (0.9642, 1, 0.8249), as
    // s15Fixed16 numbers: the way lcms builds its own sRGB profile.
    let red = xyz_tag([0x6FA0, 0x38F5, 0x0390]);
    let green = xyz_tag([0x6297, 0xB787, 0x18D9]);
    let blue = xyz_tag([0x249F, 0x0F84, 0xB6C3]);
    let d50 = [0xF6D6, 0x1_0000, 0xD32D];
    // The D65 → D50 Bradford matrix, row by row.
    let chad: [i32; 9] = [
        0x1_0C42, 0x05DE, -0x0CDB, 0x0793, 0xFD90, -0x045F, -0x025E, 0x03DC, 0xC06E,
    ];
    let mut chad_tag = b"sf32\0\0\0\0".to_vec();
    chad_tag.extend(chad.iter().flat_map(|v| v.to_be_bytes()));
    // IEC 61966-2-1 as ICC parametric function type 3: Y = (aX + b)^g for X ≥ d, else cX.
    let mut trc = b"para\0\0\0\0\0\x03\0\0".to_vec();
    for v in [2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.040_45] {
        trc.extend(s15f16(v));
    }
    let tags: [(&[u8; 4], &[u8]); 10] = [
        (b"desc", &mluc("sRGB IEC61966-2.1")),
        (b"cprt", &mluc("No copyright, use freely")),
        (b"wtpt", &xyz_tag(d50)),
        (b"chad", &chad_tag),
        (b"rXYZ", &red),
        (b"gXYZ", &green),
        (b"bXYZ", &blue),
        (b"rTRC", &trc),
        (b"gTRC", &trc),
        (b"bTRC", &trc),
    ];

    let mut header = vec![0u8; 128];
    header[8..12].copy_from_slice(&[4, 0x30, 0, 0]); // version 4.3
    header[12..24].copy_from_slice(b"mntrRGB XYZ ");
    // A fixed creation date (2025-01-01), so the bytes never change.
    for (i, v) in [2025u16, 1, 1, 0, 0, 0].into_iter().enumerate() {
        header[24 + 2 * i..26 + 2 * i].copy_from_slice(&v.to_be_bytes());
    }
    header[36..40].copy_from_slice(b"acsp");
    for (i, v) in d50.into_iter().enumerate() {
        header[68 + 4 * i..72 + 4 * i].copy_from_slice(&v.to_be_bytes());
    }

    let table_len = 4 + 12 * tags.len();
    let mut table = u32::try_from(tags.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    let mut data: Vec<u8> = Vec::new();
    let mut last: Option<(&[u8], usize)> = None;
    for (sig, body) in tags {
        // The three curves are one: point their entries at the same bytes.
        let offset = match last {
            Some((prev, offset)) if prev == body => offset,
            _ => {
                let offset = 128 + table_len + data.len();
                data.extend(body);
                data.resize(data.len().next_multiple_of(4), 0);
                offset
            }
        };
        last = Some((body, offset));
        table.extend(sig);
        for v in [offset, body.len()] {
            table.extend(u32::try_from(v).unwrap_or(0).to_be_bytes());
        }
    }
    let mut profile = header;
    profile.extend(table);
    profile.extend(data);
    let size = u32::try_from(profile.len()).unwrap_or(0);
    profile[0..4].copy_from_slice(&size.to_be_bytes());
    profile
}

// ---------------------------------------------------------------------------------------------
// Linear light

/// An image of 16-bit linear-light samples (0..=65535); alpha, when present, is plain coverage
/// scaled to 16 bits, not linearised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearPixels {
    /// Row-major samples, `width * height * channels` values.
    pub data: Vec<u16>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channel layout.
    pub layout: Layout,
}

/// The sRGB decoding curve (IEC 61966-2-1), encoded value in 0..=1 → linear light.
fn srgb_decode(v: f64) -> f64 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// The sRGB encoding curve, linear light in 0..=1 → encoded value.
fn srgb_encode(l: f64) -> f64 {
    if l <= 0.003_130_8 {
        l * 12.92
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

/// 8-bit sRGB code → 16-bit linear value.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn to_linear_table() -> &'static [u16; 256] {
    static TABLE: OnceLock<[u16; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|code| (srgb_decode(code as f64 / 255.0) * 65535.0).round() as u16)
    })
}

/// 16-bit linear value → nearest 8-bit sRGB code, for every one of the 65 536 values, so the
/// round trip through [`to_linear_table`] is exact and nothing is lost to a coarse index.
fn from_linear_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The encoding curve is monotonic: code k covers the linear values up to the one that
        // encodes to k + 0.5.
        let bounds: Vec<f64> = (0..255)
            .map(|k| srgb_decode((f64::from(k) + 0.5) / 255.0) * 65535.0)
            .collect();
        let mut code = 0u8;
        (0..=u16::MAX)
            .map(|v| {
                while usize::from(code) < bounds.len() && f64::from(v) >= bounds[usize::from(code)]
                {
                    code += 1;
                }
                code
            })
            .collect()
    })
}

/// Decodes 8-bit sRGB pixels to 16-bit linear light (alpha scaled to 16 bits as it is).
pub fn srgb_to_linear(px: &Pixels) -> LinearPixels {
    let table = to_linear_table();
    let mut data: Vec<u16> = px.data.iter().map(|&v| table[usize::from(v)]).collect();
    if px.layout.has_alpha() {
        // A second, strided pass keeps the first one a plain table lookup.
        let ch = px.layout.channels();
        let alpha = px.data.iter().skip(ch - 1).step_by(ch);
        for (lin, &a) in data.iter_mut().skip(ch - 1).step_by(ch).zip(alpha) {
            *lin = u16::from(a) * 257;
        }
    }
    LinearPixels {
        data,
        width: px.width,
        height: px.height,
        layout: px.layout,
    }
}

/// Encodes 16-bit linear light back to 8-bit sRGB (alpha rounded back to 8 bits).
pub fn linear_to_srgb(lin: &LinearPixels) -> Pixels {
    let table = from_linear_table();
    let mut data: Vec<u8> = lin.data.iter().map(|&v| table[usize::from(v)]).collect();
    if lin.layout.has_alpha() {
        let ch = lin.layout.channels();
        let alpha = lin.data.iter().skip(ch - 1).step_by(ch);
        for (px, &a) in data.iter_mut().skip(ch - 1).step_by(ch).zip(alpha) {
            *px = u8::try_from((u32::from(a) + 128) / 257).expect("≤ 255");
        }
    }
    Pixels {
        data,
        width: lin.width,
        height: lin.height,
        layout: lin.layout,
        depth: Depth::Eight,
    }
}

/// A `fast_image_resize` pixel made of u16 samples.
trait Samples: PixelTrait + Copy {
    fn from_samples(s: &[u16]) -> Self;
    fn samples(self) -> impl IntoIterator<Item = u16>;
}

impl Samples for U16 {
    fn from_samples(s: &[u16]) -> Self {
        U16::new(s[0])
    }
    fn samples(self) -> impl IntoIterator<Item = u16> {
        [self.0]
    }
}

macro_rules! samples {
    ($t:ty) => {
        impl Samples for $t {
            fn from_samples(s: &[u16]) -> Self {
                <$t>::new(std::array::from_fn(|i| s[i]))
            }
            fn samples(self) -> impl IntoIterator<Item = u16> {
                self.0
            }
        }
    };
}
samples!(U16x2);
samples!(U16x3);
samples!(U16x4);

fn resize_typed<P: Samples>(
    lin: &LinearPixels,
    crop: Rect,
    size: (u32, u32),
) -> Result<LinearPixels, JobError> {
    let ch = lin.layout.channels();
    let pixels: Vec<P> = lin.data.chunks_exact(ch).map(P::from_samples).collect();
    let src = TypedImageRef::new(lin.width, lin.height, &pixels)
        .map_err(|e| JobError::Resize(e.to_string()))?;
    let mut dst = TypedImage::<P>::new(size.0, size.1);
    // Lanczos3 as on the 8-bit path; fast_image_resize premultiplies alpha (U16x2, U16x4) around
    // the filter, which in linear light is also the physically right blend.
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(crop.left, crop.top, crop.width, crop.height);
    Resizer::new()
        .resize_typed(&src, &mut dst, &options)
        .map_err(|e| JobError::Resize(e.to_string()))?;
    Ok(LinearPixels {
        data: dst.pixels().iter().flat_map(|&p| p.samples()).collect(),
        width: size.0,
        height: size.1,
        layout: lin.layout,
    })
}

/// Resamples the `crop` region of a linear-light image to `size` with Lanczos3.
pub fn resize_linear(
    lin: &LinearPixels,
    crop: Rect,
    size: (u32, u32),
) -> Result<LinearPixels, JobError> {
    let expected = lin.width as usize * lin.height as usize * lin.layout.channels();
    if lin.data.len() != expected {
        return Err(JobError::Resize(format!(
            "{} samples for a {}x{} image",
            lin.data.len(),
            lin.width,
            lin.height
        )));
    }
    match lin.layout {
        Layout::L => resize_typed::<U16>(lin, crop, size),
        Layout::La => resize_typed::<U16x2>(lin, crop, size),
        Layout::Rgb => resize_typed::<U16x3>(lin, crop, size),
        Layout::Rgba => resize_typed::<U16x4>(lin, crop, size),
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures in `testdata/color/` (see the README there for how each was made).

    use super::*;
    use crate::config::Filter;
    use crate::pipeline::test_util::psnr;
    fn jpeg_metadata(bytes: &[u8]) -> crate::metadata::Metadata {
        crate::metadata::read(bytes, crate::format::Format::Jpeg)
    }
    use crate::pipeline::resize::{self, ResizeScratch};

    fn testdata(rel: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(rel)
    }

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(testdata(rel)).expect("fixture")
    }

    fn png_rgb(rel: &str) -> Pixels {
        let img = image::open(testdata(rel)).expect("fixture").to_rgb8();
        Pixels {
            width: img.width(),
            height: img.height(),
            data: img.into_raw(),
            layout: Layout::Rgb,
            depth: Depth::Eight,
        }
    }

    /// The "Adobe RGB (1998)" profile embedded in the rocket photo.
    fn adobe_rgb() -> Vec<u8> {
        let jpeg = read("photos/rocket_640x427_adobergb_icc.jpg");
        jpeg_metadata(&jpeg).icc.expect("Adobe RGB profile")
    }

    fn grey(data: Vec<u8>, layout: Layout) -> Pixels {
        let n = u32::try_from(data.len() / layout.channels()).expect("small");
        Pixels {
            data,
            width: n,
            height: 1,
            layout,
            depth: Depth::Eight,
        }
    }

    fn srgb_code(linear: f64) -> u8 {
        (255.0 * srgb_encode(linear)).round() as u8
    }

    #[test]
    fn adobe_rgb_converts_like_imagemagick() {
        let icc = adobe_rgb();
        let mut px = png_rgb("color/rocket_crop64_adobergb.png");
        let reference = png_rgb("color/rocket_crop64_srgb_im.png");
        let before = psnr(&px.data, &reference.data);
        to_srgb(&mut px, &icc).expect("convert");
        let after = psnr(&px.data, &reference.data);
        // Measured: 51.2 dB on this crop (50.9 dB on the whole photo, at most 2 codes off);
        // unconverted, 33.1 dB.
        assert!(after >= 48.0, "PSNR {after:.1} dB against ImageMagick");
        assert!(
            before < 36.0,
            "the fixture should need converting ({before:.1} dB)"
        );
        let max = px
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(max <= Some(3), "max difference {max:?}");
    }

    #[test]
    fn rgba_alpha_is_left_alone_and_colour_matches_rgb() {
        let icc = adobe_rgb();
        let mut rgb = png_rgb("color/rocket_crop64_adobergb.png");
        let alpha = |i: usize| u8::try_from(i * 7 % 256).expect("< 256");
        let data = rgb
            .data
            .chunks_exact(3)
            .enumerate()
            .flat_map(|(i, p)| [p[0], p[1], p[2], alpha(i)])
            .collect();
        let mut rgba = Pixels {
            data,
            layout: Layout::Rgba,
            ..rgb.clone()
        };
        to_srgb(&mut rgb, &icc).expect("rgb");
        to_srgb(&mut rgba, &icc).expect("rgba");
        for (i, (a, b)) in rgba
            .data
            .chunks_exact(4)
            .zip(rgb.data.chunks_exact(3))
            .enumerate()
        {
            assert_eq!(a[3], alpha(i), "alpha of pixel {i}");
            assert!(
                a[..3].iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= 1),
                "pixel {i}: {a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn grey_profile_maps_grey_through_its_curve_and_keeps_one_channel() {
        let gamma22 = ColorProfile::new_gray_with_gamma(2.2)
            .encode()
            .expect("encode");
        let ramp: Vec<u8> = (0..=255).collect();
        let mut px = grey(ramp.clone(), Layout::L);
        to_srgb(&mut px, &gamma22).expect("convert");
        assert_eq!(px.layout, Layout::L);
        for (code, &got) in ramp.iter().zip(&px.data) {
            let want = srgb_code((f64::from(*code) / 255.0).powf(2.2));
            assert!(got.abs_diff(want) <= 1, "{code}: got {got}, want {want}");
        }
        // Gamma 2.2 is darker than sRGB in the shadows: code 10 becomes 2 or 3.
        assert!(px.data[10] < 5, "code 10 became {}", px.data[10]);

        let data: Vec<u8> = ramp.iter().flat_map(|&v| [v, 255 - v]).collect();
        let mut la = grey(data, Layout::La);
        to_srgb(&mut la, &gamma22).expect("convert");
        for (i, p) in la.data.chunks_exact(2).enumerate() {
            assert_eq!(p[0], px.data[i], "grey of pixel {i}");
            assert_eq!(usize::from(p[1]), 255 - i, "alpha of pixel {i}");
        }
    }

    #[test]
    fn grey_pixels_with_an_rgb_profile_stay_grey() {
        let icc = adobe_rgb();
        let ramp: Vec<u8> = (0..=255).collect();
        let mut px = grey(ramp.clone(), Layout::L);
        to_srgb(&mut px, &icc).expect("convert");
        assert_eq!(px.layout, Layout::L);
        // Adobe RGB's curve is a pure power of 563/256 (≈ 2.2); its grey axis is neutral.
        for (code, &got) in ramp.iter().zip(&px.data) {
            let want = srgb_code((f64::from(*code) / 255.0).powf(563.0 / 256.0));
            assert!(got.abs_diff(want) <= 1, "{code}: got {got}, want {want}");
        }
    }

    #[test]
    fn bad_or_mismatched_profiles_are_errors_not_panics() {
        let adobe = adobe_rgb();
        let cmyk_jpeg = read("photos/cmyk_ycck_500x333_swop_icc.jpg");
        let cmyk = jpeg_metadata(&cmyk_jpeg).icc.expect("CMYK profile");
        let mut flipped = adobe.clone();
        flipped[200..260].iter_mut().for_each(|b| *b ^= 0xA5);
        let bad: [&[u8]; 5] = [
            b"",
            b"not an ICC profile",
            &adobe[..100],
            &adobe[..300],
            &flipped,
        ];
        for icc in bad {
            let mut px = grey(vec![1, 2, 3, 4, 5, 6], Layout::Rgb);
            let e = to_srgb(&mut px, icc).expect_err("bad profile");
            assert!(matches!(e, JobError::Unsupported(_)), "{e}");
            assert_eq!(px.data, [1, 2, 3, 4, 5, 6]);
            let mut out = Vec::new();
            assert!(cmyk_to_rgb_icc(&[0; 8], icc, false, &mut out).is_err());
            assert!(!is_srgb(icc));
        }
        let mut px = grey(vec![1, 2, 3], Layout::Rgb);
        let e = to_srgb(&mut px, &cmyk).expect_err("CMYK profile on RGB pixels");
        assert!(e.to_string().contains("CMYK"), "{e}");
        assert_eq!(px.data, [1, 2, 3]);
        let mut out = Vec::new();
        let e = cmyk_to_rgb_icc(&[0; 4], &adobe, false, &mut out).expect_err("RGB profile");
        assert!(e.to_string().contains("RGB data"), "{e}");
    }

    #[test]
    fn cmyk_converts_like_imagemagick() {
        let jpeg = read("photos/cmyk_ycck_500x333_swop_icc.jpg");
        let icc = jpeg_metadata(&jpeg).icc.expect("SWOP profile");
        let mut d = turbojpeg::Decompressor::new().expect("init");
        let h = d.read_header(&jpeg).expect("header");
        let mut cmyk = vec![0u8; h.width * h.height * 4];
        let image = turbojpeg::Image {
            pixels: cmyk.as_mut_slice(),
            width: h.width,
            pitch: h.width * 4,
            height: h.height,
            format: turbojpeg::PixelFormat::CMYK,
        };
        d.decompress(&jpeg, image).expect("decode");
        let mut rgb = Vec::new();
        // An Adobe YCCK file: ink is stored inverted.
        cmyk_to_rgb_icc(&cmyk, &icc, true, &mut rgb).expect("convert");
        assert_eq!(rgb.len(), h.width * h.height * 3);
        let crop: Vec<u8> = (180..244)
            .flat_map(|y| {
                let start = (y * h.width + 300) * 3;
                rgb[start..start + 64 * 3].to_vec()
            })
            .collect();
        let reference = png_rgb("color/cmyk_crop64_srgb_im.png");
        // Measured: 49.3 dB on this crop, 48.7 dB on the whole photo; the naive formula that
        // ignores the profile gets 21.5 dB on the whole photo.
        let p = psnr(&crop, &reference.data);
        assert!(p >= 46.0, "PSNR {p:.1} dB against ImageMagick");
        // Reading the samples the wrong way round gives a negative (7.9 dB).
        let mut wrong = Vec::new();
        cmyk_to_rgb_icc(&cmyk, &icc, false, &mut wrong).expect("convert");
        assert!(psnr(&wrong, &rgb) < 15.0);
    }

    #[test]
    fn srgb_is_recognised_and_others_are_not() {
        let ours = srgb_profile();
        assert!(
            !ours.is_empty() && ours.len() < 1024,
            "{} bytes",
            ours.len()
        );
        assert!(is_srgb(ours));
        let cups = read("photos/colorful_cups_1280x800_progressive.jpg");
        let theirs = jpeg_metadata(&cups).icc.expect("sRGB profile");
        assert!(is_srgb(&theirs));
        assert!(!is_srgb(&adobe_rgb()));
        // sRGB primaries with a plain 2.2 gamma is close, but not close enough.
        let mut gamma = ColorProfile::new_srgb();
        let curve = moxcms::curve_from_gamma(2.2);
        gamma.red_trc = Some(curve.clone());
        gamma.green_trc = Some(curve.clone());
        gamma.blue_trc = Some(curve);
        assert!(!is_srgb(&gamma.encode().expect("encode")));
        let grey22 = ColorProfile::new_gray_with_gamma(2.2).encode().expect("g");
        assert!(!is_srgb(&grey22));
    }

    #[test]
    fn srgb_profile_is_well_formed() {
        let p = srgb_profile();
        assert_eq!(p.len(), 548);
        assert_eq!(p[0..4], 548u32.to_be_bytes());
        assert_eq!(&p[36..40], b"acsp");
        // The PCS illuminant must be D50 exactly, or libpng rejects the iCCP chunk.
        assert_eq!(p[68..80], [0, 0, 0xF6, 0xD6, 0, 1, 0, 0, 0, 0, 0xD3, 0x2D]);
        let count = u32::from_be_bytes(p[128..132].try_into().unwrap()) as usize;
        assert_eq!(count, 10);
        for entry in p[132..132 + 12 * count].chunks_exact(12) {
            let offset = u32::from_be_bytes(entry[4..8].try_into().unwrap()) as usize;
            let size = u32::from_be_bytes(entry[8..12].try_into().unwrap()) as usize;
            assert_eq!(offset % 4, 0, "{:?}", &entry[..4]);
            assert!(offset + size <= p.len());
        }
        let parsed = ColorProfile::new_from_slice(p).expect("moxcms reads it");
        assert_eq!(parsed.color_space, DataColorSpace::Rgb);
        assert!(parsed.red_trc == parsed.blue_trc && parsed.gray_trc.is_none());
        // The colorants add up to the D50 white (to rounding).
        let sum = parsed.red_colorant.x + parsed.green_colorant.x + parsed.blue_colorant.x;
        assert!((sum - 0.9642).abs() < 1e-4, "{sum}");
    }

    #[test]
    fn converting_from_srgb_changes_almost_nothing() {
        let data: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2]).collect();
        let mut px = grey(data.clone(), Layout::Rgb);
        to_srgb(&mut px, srgb_profile()).expect("convert");
        let max = px.data.iter().zip(&data).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(max <= Some(1), "max difference {max:?}");
    }

    #[test]
    fn scratch_reuses_transforms_and_stays_small() {
        let adobe = adobe_rgb();
        let mut scratch = ColorScratch::default();
        let original = png_rgb("color/rocket_crop64_adobergb.png");
        let mut once = original.clone();
        to_srgb(&mut once, &adobe).expect("uncached");
        for _ in 0..2 {
            let mut px = original.clone();
            scratch.to_srgb(&mut px, &adobe).expect("cached");
            assert_eq!(px, once);
        }
        assert_eq!(scratch.cache.len(), 1);
        for gamma in [1.8, 2.0, 2.2, 2.4, 2.6] {
            let icc = ColorProfile::new_gray_with_gamma(gamma)
                .encode()
                .expect("g");
            scratch
                .to_srgb(&mut grey(vec![100], Layout::L), &icc)
                .expect("grey");
        }
        assert_eq!(scratch.cache.len(), CACHE_SLOTS);
        // The same profile read as grey is another conversion, not a wrong cache hit.
        let mut g = grey(vec![128], Layout::L);
        scratch
            .to_srgb(&mut g, &adobe)
            .expect("grey with RGB profile");
        assert_eq!(g.layout, Layout::L);
    }

    #[test]
    fn linear_round_trip_is_exact_for_every_code() {
        let data: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, 255 - v, v]).collect();
        let px = grey(data, Layout::Rgba);
        let lin = srgb_to_linear(&px);
        assert_eq!(lin.data.len(), px.data.len());
        assert_eq!(&lin.data[..4], &[0, 0, 65535, 0]);
        assert_eq!(&lin.data[lin.data.len() - 4..], &[65535, 65535, 0, 65535]);
        // Alpha is scaled, not linearised; colour is.
        assert_eq!(lin.data[128 * 4 + 3], 128 * 257);
        assert!(
            (14_000..=14_200).contains(&lin.data[128 * 4]),
            "{}",
            lin.data[512]
        );
        assert_eq!(linear_to_srgb(&lin), px);
        // Every 16-bit value encodes to the nearest code.
        for v in (0..=u16::MAX).step_by(7) {
            let got = from_linear_table()[usize::from(v)];
            let exact = 255.0 * srgb_encode(f64::from(v) / 65535.0);
            assert!((f64::from(got) - exact).abs() <= 0.5 + 1e-9, "{v}");
        }
    }

    /// 64x64, 1-px columns alternating between two pixel values.
    fn grating(layout: Layout, odd: &[u8], even: &[u8]) -> Pixels {
        let data = (0..64 * 64)
            .flat_map(|i| if i % 2 == 0 { even } else { odd }.to_vec())
            .collect();
        Pixels {
            data,
            width: 64,
            height: 64,
            layout,
            depth: Depth::Eight,
        }
    }

    /// The pixels of `px` at least 3 columns from the left and right edges, where the filter
    /// sees the whole grating (at the edges its clipped kernel weighs the columns unevenly).
    fn interior(px: &Pixels) -> impl Iterator<Item = &[u8]> {
        let (w, ch) = (px.width as usize, px.layout.channels());
        px.data
            .chunks_exact(ch)
            .enumerate()
            .filter(move |(i, _)| (3..w - 3).contains(&(i % w)))
            .map(|(_, p)| p)
    }

    const WHOLE: Rect = Rect {
        left: 0.0,
        top: 0.0,
        width: 64.0,
        height: 64.0,
    };

    #[test]
    fn linear_light_averages_a_grating_to_188_not_128() {
        let px = grating(Layout::Rgb, &[255; 3], &[0; 3]);
        let lin = resize_linear(&srgb_to_linear(&px), WHOLE, (32, 32)).expect("resize");
        let out = linear_to_srgb(&lin);
        assert_eq!((out.width, out.height, out.layout), (32, 32, Layout::Rgb));
        // Half the light of white is sRGB 187.5.
        assert!(interior(&out).flatten().all(|v| v.abs_diff(188) <= 2));

        let gamma = resize::resize(
            px,
            WHOLE,
            (32, 32),
            Filter::Lanczos3,
            &mut ResizeScratch::default(),
        )
        .expect("resize");
        assert!(interior(&gamma).flatten().all(|v| v.abs_diff(128) <= 2));
    }

    #[test]
    fn linear_resize_premultiplies_alpha() {
        // Opaque white next to fully transparent black: the black must not bleed in.
        let px = grating(Layout::La, &[255, 255], &[0, 0]);
        let out = linear_to_srgb(&resize_linear(&srgb_to_linear(&px), WHOLE, (32, 32)).unwrap());
        for p in interior(&out) {
            assert!(p[0] >= 253 && p[1].abs_diff(128) <= 2, "{p:?}");
        }
        let px = grating(Layout::Rgba, &[255, 0, 0, 255], &[0, 0, 255, 0]);
        let out = linear_to_srgb(&resize_linear(&srgb_to_linear(&px), WHOLE, (32, 16)).unwrap());
        for p in interior(&out) {
            assert!(p[0] >= 253 && p[2] <= 2 && p[3].abs_diff(128) <= 2, "{p:?}");
        }
    }

    #[test]
    fn linear_resize_honours_the_crop() {
        // Blue, red from column 16 to 47, blue again; crop columns 24..40, well inside the red
        // (the filter also reads a few pixels beyond the crop, as on the 8-bit path).
        let data = (0..64 * 64)
            .flat_map(|i| {
                if (16..48).contains(&(i % 64)) {
                    [255, 0, 0]
                } else {
                    [0, 0, 255]
                }
            })
            .collect();
        let px = Pixels {
            data,
            width: 64,
            height: 64,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        };
        let middle = Rect {
            left: 24.0,
            width: 16.0,
            ..WHOLE
        };
        let lin = resize_linear(&srgb_to_linear(&px), middle, (8, 16)).expect("resize");
        assert_eq!(linear_to_srgb(&lin).data, [255, 0, 0].repeat(8 * 16));
        let lin = resize_linear(&srgb_to_linear(&px), WHOLE, (8, 16)).expect("resize");
        assert_eq!(&linear_to_srgb(&lin).data[..3], &[0, 0, 255]);
        // Grey, upscaled: a flat image stays flat.
        let flat = Pixels {
            data: vec![77; 4 * 4],
            width: 4,
            height: 4,
            layout: Layout::L,
            depth: Depth::Eight,
        };
        let whole4 = Rect {
            width: 4.0,
            height: 4.0,
            ..WHOLE
        };
        let up = linear_to_srgb(&resize_linear(&srgb_to_linear(&flat), whole4, (9, 7)).unwrap());
        assert_eq!(up.data, vec![77; 9 * 7]);
    }

    #[test]
    fn linear_resize_rejects_a_short_buffer() {
        let lin = LinearPixels {
            data: vec![0; 10],
            width: 4,
            height: 4,
            layout: Layout::L,
        };
        assert!(matches!(
            resize_linear(&lin, WHOLE, (2, 2)),
            Err(JobError::Resize(_))
        ));
    }
}
