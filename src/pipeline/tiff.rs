//! TIFF variants the `image` crate does not read, or reads otherwise than libvips (issue #13
//! item 6): 2- and 4-bit grey, signed 8- and 16-bit samples, YCbCr (JPEG-compressed, or stored
//! without chroma subsampling), CIE L*a*b*, CCITT Group 3 one-dimensional fax, palette colour
//! (1 to 8 bits), and RGB in floating point (linear light). `decode` asks [`inspect`] about every TIFF; the `image` crate
//! keeps every TIFF this module does not claim.
//!
//! The `tiff` crate (the one the `image` crate uses) still reads the tags, decompresses and
//! undoes predictors; this module turns its samples into [`Pixels`] the way libvips renders
//! them. Group 3 strips are decoded with the `fax` crate, which the `tiff` crate already builds
//! for Group 4. A variant neither reads is refused with one line saying what it is.

use std::io::Cursor;

use ::tiff::decoder::ifd::Value;
use ::tiff::decoder::{Decoder, DecodingResult, Limits};
use ::tiff::tags::Tag;
use ::tiff::TiffError;

use crate::error::JobError;
use crate::pipeline::pixels::{Depth, Layout, Pixels};

/// A TIFF that this module decodes, and what its pixels become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Own {
    /// Which kind of TIFF it is.
    pub(crate) variant: Variant,
    /// Stored width.
    pub(crate) width: u32,
    /// Stored height.
    pub(crate) height: u32,
    /// Channels of the decoded pixels.
    pub(crate) layout: Layout,
    /// Sample depth of the decoded pixels.
    pub(crate) depth: Depth,
}

/// The TIFF variants decoded here rather than by the `image` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// Grey of 2 or 4 bits a sample (the value), packed: stretched to 8 bits.
    PackedGrey(u16),
    /// Signed 8- or 16-bit integers (grey or RGB, with or without alpha): a sample keeps its
    /// value and negative values are black, as libvips casts them.
    Signed,
    /// 8-bit YCbCr, converted to RGB: JPEG-compressed (any chroma subsampling), or stored
    /// without subsampling (then through the file's YCbCrCoefficients and
    /// ReferenceBlackWhite).
    YCbCr {
        /// Returns true if and only if the strips are JPEG streams (compression 7).
        jpeg: bool,
    },
    /// CIE L*a*b* of 8 or 16 bits, converted to sRGB with a D65 white, as libvips does.
    Lab,
    /// CCITT Group 3 one-dimensional (modified Huffman) bilevel fax, in strips.
    Fax3,
    /// Palette colour (RGBPalette) of 1, 2, 4 or 8 bits an index, through its ColorMap.
    Palette(u16),
    /// RGB (with or without alpha) in 16-, 32- or 64-bit floating point: linear light, as
    /// libvips (scRGB) and Photoshop's 32-bit mode take it, encoded with the sRGB curve. (The
    /// `image` crate would clamp the values as if already gamma-encoded: far too dark.)
    Float,
}

/// The first IFD's tags that decide the variant, with TIFF's defaults for absent ones.
struct Tags {
    width: u32,
    height: u32,
    photometric: Option<u16>,
    compression: u16,
    bits: u16,
    signed: bool,
    float: bool,
    samples: u16,
    planar: bool,
    tiled: bool,
    subsampling: (u16, u16),
    t4_options: u32,
}

impl Tags {
    fn read(d: &mut Decoder<Cursor<&[u8]>>) -> Result<Tags, TiffError> {
        let (width, height) = d.dimensions()?;
        let bits = d
            .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)?
            .unwrap_or_else(|| vec![1]);
        let formats = d
            .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)?
            .unwrap_or_default();
        let subsampling = d
            .find_tag_unsigned_vec::<u16>(Tag::ChromaSubsampling)?
            .unwrap_or_default();
        Ok(Tags {
            width,
            height,
            photometric: d.find_tag_unsigned(Tag::PhotometricInterpretation)?,
            compression: d.find_tag_unsigned(Tag::Compression)?.unwrap_or(1),
            bits: bits.first().copied().unwrap_or(1),
            signed: formats.first() == Some(&2),
            float: formats.first() == Some(&3),
            samples: d.find_tag_unsigned(Tag::SamplesPerPixel)?.unwrap_or(1),
            planar: d.find_tag_unsigned(Tag::PlanarConfiguration)?.unwrap_or(1) == 2,
            tiled: d.find_tag(Tag::TileWidth)?.is_some(),
            subsampling: (
                subsampling.first().copied().unwrap_or(2),
                subsampling.get(1).copied().unwrap_or(2),
            ),
            t4_options: d.find_tag_unsigned(Tag::Unknown(T4_OPTIONS))?.unwrap_or(0),
        })
    }

    /// The layout of `samples` samples of grey (photometric 0 or 1) or RGB (2), extra samples
    /// taken as alpha.
    fn layout(&self) -> Option<Layout> {
        match (self.photometric?, self.samples) {
            (0 | 1, 1) => Some(Layout::L),
            (0 | 1, 2) => Some(Layout::La),
            (2 | 8, 3) => Some(Layout::Rgb),
            (2 | 8, 4) => Some(Layout::Rgba),
            _ => None,
        }
    }
}

/// T4Options: bit 0 says the Group 3 data is two-dimensional.
const T4_OPTIONS: u16 = 292;
/// YCbCrCoefficients: the luma weights of red, green and blue.
const YCBCR_COEFFICIENTS: u16 = 529;
/// ReferenceBlackWhite: the code values of black and white for each of Y, Cb, Cr.
const REFERENCE_BLACK_WHITE: u16 = 532;
const PHOTOMETRIC: u16 = 262;
const PHOTOMETRIC_BLACK_IS_ZERO: u16 = 1;
const PHOTOMETRIC_RGB: u16 = 2;

fn unsupported(what: impl std::fmt::Display) -> Result<Option<Own>, JobError> {
    Err(JobError::Unsupported(format!("TIFF with {what}")))
}

/// Reads the first IFD of a TIFF: `Ok(None)` when the `image` crate reads it (or cannot even
/// parse it, so reports it in its own words), `Ok(Some(..))` for a variant decoded here, and
/// an error naming what is unsupported for a variant nothing here reads.
pub(crate) fn inspect(bytes: &[u8]) -> Result<Option<Own>, JobError> {
    let Ok(mut d) = Decoder::new(Cursor::new(bytes)) else {
        return Ok(None);
    };
    let Ok(t) = Tags::read(&mut d) else {
        return Ok(None);
    };
    let own = |variant, layout, depth| {
        Ok(Some(Own {
            variant,
            width: t.width,
            height: t.height,
            layout,
            depth,
        }))
    };
    let chunky = !t.planar || t.samples == 1;
    match (t.compression, t.photometric) {
        (6, _) => return unsupported("old-style JPEG compression (compression 6)"),
        (2, _) => return unsupported("CCITT modified Huffman RLE compression (compression 2)"),
        (3, _) if t.t4_options & 1 == 1 => {
            return unsupported("two-dimensional CCITT Group 3 fax compression (T4Options 2-D)")
        }
        (3, _) if t.tiled || t.bits != 1 || t.samples != 1 || t.width > u32::from(u16::MAX) => {
            return unsupported(
                "CCITT Group 3 fax compression other than one sample of 1 bit in strips \
                 at most 65535 pixels wide",
            )
        }
        (3, _) => return own(Variant::Fax3, Layout::L, Depth::Eight),
        (_, Some(8)) => {
            return match (t.layout(), t.bits, chunky) {
                (Some(layout), 8, true) => own(Variant::Lab, layout, Depth::Eight),
                (Some(layout), 16, true) => own(Variant::Lab, layout, Depth::Sixteen),
                _ => unsupported(format_args!(
                    "CIE L*a*b* samples of {} bits, {} a pixel{}",
                    t.bits,
                    t.samples,
                    if chunky { "" } else { ", planar" }
                )),
            };
        }
        (7, Some(6)) if t.bits == 8 => {
            return own(Variant::YCbCr { jpeg: true }, Layout::Rgb, Depth::Eight)
        }
        (_, Some(6)) => {
            return match (t.bits, t.subsampling, chunky) {
                (8, (1, 1), true) => own(Variant::YCbCr { jpeg: false }, Layout::Rgb, Depth::Eight),
                (8, (h, v), true) => unsupported(format_args!(
                    "YCbCr chroma subsampled {h}x{v} outside JPEG compression"
                )),
                (bits, _, _) => unsupported(format_args!("YCbCr samples of {bits} bits")),
            };
        }
        _ => {}
    }
    if t.signed {
        return match (t.layout(), t.bits, chunky) {
            (Some(layout), 8, true) => own(Variant::Signed, layout, Depth::Eight),
            (Some(layout), 16, true) => own(Variant::Signed, layout, Depth::Sixteen),
            _ => unsupported(format_args!(
                "signed integer samples of {} bits, {} a pixel",
                t.bits, t.samples
            )),
        };
    }
    if t.photometric == Some(3) {
        return match (t.bits, t.samples) {
            (bits @ (1 | 2 | 4 | 8), 1) => own(Variant::Palette(bits), Layout::Rgb, Depth::Eight),
            (bits, samples) => unsupported(format_args!(
                "palette colour of {bits} bits, {samples} samples a pixel"
            )),
        };
    }
    if t.float && t.photometric == Some(2) {
        return match (t.layout(), t.bits, chunky) {
            (Some(layout), 16 | 32 | 64, true) => own(Variant::Float, layout, Depth::Sixteen),
            _ => unsupported(format_args!(
                "floating-point RGB samples of {} bits, {} a pixel",
                t.bits, t.samples
            )),
        };
    }
    match (t.photometric, t.bits, t.samples) {
        (Some(0 | 1), bits @ (2 | 4), 1) => own(Variant::PackedGrey(bits), Layout::L, Depth::Eight),
        (Some(0 | 1), bits @ (2 | 4), samples) => unsupported(format_args!(
            "{bits}-bit grey with {} extra samples",
            samples - 1
        )),
        _ => Ok(None),
    }
}

/// What a TIFF holds, in words, for refusing one that neither this module nor the `image`
/// crate reads: "TIFF with unsigned RGB samples of 12 bits, 3 a pixel, LZW compression".
pub(crate) fn refusal(bytes: &[u8]) -> JobError {
    let Some(t) = Decoder::new(Cursor::new(bytes))
        .ok()
        .and_then(|mut d| Tags::read(&mut d).ok())
    else {
        return JobError::Unsupported("TIFF whose first image's tags cannot be read".into());
    };
    let kind = match t.photometric {
        Some(0 | 1) => "grey".to_string(),
        Some(2) => "RGB".into(),
        Some(3) => "palette".into(),
        Some(4) => "transparency mask".into(),
        Some(5) => "separated (CMYK or other inks)".into(),
        Some(6) => "YCbCr".into(),
        Some(8) => "CIE L*a*b*".into(),
        Some(9) => "ICC L*a*b*".into(),
        Some(10) => "ITU L*a*b*".into(),
        Some(32_844 | 32_845) => "LogLuv".into(),
        Some(p) => format!("photometric {p}"),
        None => "no photometric interpretation".into(),
    };
    let format = if t.signed {
        "signed"
    } else if t.float {
        "floating-point"
    } else {
        "unsigned"
    };
    let compression = match t.compression {
        1 => "no compression".to_string(),
        5 => "LZW compression".into(),
        7 => "JPEG compression".into(),
        8 | 32_946 => "Deflate compression".into(),
        32_773 => "PackBits compression".into(),
        34_712 => "JPEG 2000 compression".into(),
        34_925 => "LZMA compression".into(),
        50_000 => "Zstandard compression".into(),
        50_001 => "WebP compression".into(),
        c => format!("compression {c}"),
    };
    JobError::Unsupported(format!(
        "TIFF with {format} {kind} samples of {} bit{}, {} a pixel, {compression}",
        t.bits,
        if t.bits == 1 { "" } else { "s" },
        t.samples
    ))
}

fn tiff_err(e: TiffError) -> JobError {
    match e {
        TiffError::UnsupportedError(u) => JobError::Unsupported(format!("TIFF: {u}")),
        TiffError::LimitsExceeded => JobError::Unsupported("TIFF: decoder limit exceeded".into()),
        other => JobError::Decode {
            format: "TIFF",
            message: other.to_string(),
        },
    }
}

fn corrupt(message: impl Into<String>) -> JobError {
    JobError::Decode {
        format: "TIFF",
        message: message.into(),
    }
}

/// A decoder for `bytes` whose buffers may hold the whole image (its size was checked against
/// the pixel limit when probed).
fn decoder<'a>(bytes: &'a [u8], own: &Own) -> Result<Decoder<Cursor<&'a [u8]>>, JobError> {
    let samples = u64::from(own.width) * u64::from(own.height) * 4;
    let bytes_needed = usize::try_from(samples.saturating_mul(2))
        .map_err(|_| JobError::Unsupported("image too large for this machine".into()))?;
    let mut limits = Limits::default();
    limits.decoding_buffer_size = bytes_needed.max(limits.decoding_buffer_size);
    limits.ifd_value_size = limits.ifd_value_size.max(64 << 20);
    Ok(Decoder::new(Cursor::new(bytes))
        .map_err(tiff_err)?
        .with_limits(limits))
}

/// Decodes a TIFF that [`inspect`] claimed.
pub(crate) fn decode(bytes: &[u8], own: &Own) -> Result<Pixels, JobError> {
    let data = match own.variant {
        Variant::Fax3 => fax3(bytes, own)?,
        // The `tiff` crate refuses CIE L*a*b* and palettes outright, though decompressing and
        // un-predicting their samples is what it does for RGB and grey: read a copy labelled
        // so, and interpret the samples here.
        Variant::Lab => {
            let relabelled = with_photometric(bytes, PHOTOMETRIC_RGB)
                .ok_or_else(|| corrupt("cannot find the PhotometricInterpretation entry"))?;
            let samples = decoder(&relabelled, own)?.read_image().map_err(tiff_err)?;
            lab_to_srgb(samples, own.layout.channels())?
        }
        Variant::Palette(bits) => {
            let relabelled = with_photometric(bytes, PHOTOMETRIC_BLACK_IS_ZERO)
                .ok_or_else(|| corrupt("cannot find the PhotometricInterpretation entry"))?;
            let mut d = decoder(&relabelled, own)?;
            let map = d.get_tag_u16_vec(Tag::ColorMap).map_err(tiff_err)?;
            let DecodingResult::U8(packed) = d.read_image().map_err(tiff_err)? else {
                return Err(corrupt("palette indices of an unexpected type"));
            };
            palette_to_rgb(&unpack(&packed, own.width, bits), &map, bits)?
        }
        variant => {
            let mut d = decoder(bytes, own)?;
            let samples = d.read_image().map_err(tiff_err)?;
            match (variant, samples) {
                (Variant::PackedGrey(bits), DecodingResult::U8(v)) => {
                    let max = (1u16 << bits) - 1;
                    unpack(&v, own.width, bits)
                        .into_iter()
                        .map(|s| u8::try_from(u16::from(s) * 255 / max).expect("≤ 255"))
                        .collect()
                }
                (Variant::Signed, DecodingResult::I8(v)) => {
                    v.iter().map(|&s| s.max(0).cast_unsigned()).collect()
                }
                (Variant::Signed, DecodingResult::I16(v)) => v
                    .iter()
                    .flat_map(|&s| s.max(0).cast_unsigned().to_ne_bytes())
                    .collect(),
                (Variant::Float, DecodingResult::F16(v)) => {
                    linear_to_srgb16(v.iter().map(|h| h.to_f64()), own.layout.channels())
                }
                (Variant::Float, DecodingResult::F32(v)) => {
                    linear_to_srgb16(v.iter().map(|&f| f64::from(f)), own.layout.channels())
                }
                (Variant::Float, DecodingResult::F64(v)) => {
                    linear_to_srgb16(v.iter().copied(), own.layout.channels())
                }
                (Variant::YCbCr { jpeg }, DecodingResult::U8(v)) => {
                    // libjpeg (and so libtiff and libvips) converts a JPEG's YCbCr with the
                    // JFIF constants, whatever the TIFF tags say.
                    let (k, reference) = if jpeg {
                        (REC_601, DEFAULT_REFERENCE)
                    } else {
                        ycbcr_tags(&mut d)
                    };
                    ycbcr_to_rgb(&v, k, reference)
                }
                _ => return Err(corrupt("the decoder returned samples of another type")),
            }
        }
    };
    let expected = own.width as usize * own.height as usize * own.layout.channels();
    if data.len() != expected * own.depth.bytes() {
        return Err(corrupt("the image data does not match its size"));
    }
    Ok(Pixels {
        data,
        width: own.width,
        height: own.height,
        layout: own.layout,
        depth: own.depth,
    })
}

/// Rows of `bits`-bit samples (1, 2, 4 or 8; each row starting on a byte), one byte each.
fn unpack(packed: &[u8], width: u32, bits: u16) -> Vec<u8> {
    let width = width as usize;
    let bits = usize::from(bits);
    let mask = u8::try_from((1u16 << bits) - 1).expect("at most 8 bits");
    let row_bytes = (width * bits).div_ceil(8);
    let mut out = Vec::with_capacity(packed.len() / row_bytes.max(1) * width);
    for row in packed.chunks_exact(row_bytes) {
        out.extend((0..width).map(|x| {
            let at = x * bits;
            (row[at / 8] >> (8 - bits - at % 8)) & mask
        }));
    }
    out
}

/// Palette indices → RGB through a TIFF ColorMap (all red values, then green, then blue,
/// 16 bits each, `2^bits` of each).
fn palette_to_rgb(indices: &[u8], map: &[u16], bits: u16) -> Result<Vec<u8>, JobError> {
    let n = 1usize << bits;
    if map.len() < 3 * n {
        return Err(corrupt(format!(
            "ColorMap holds {} values, a {bits}-bit palette needs {}",
            map.len(),
            3 * n
        )));
    }
    let level = super::pixels::to_8bit;
    Ok(indices
        .iter()
        .flat_map(|&i| {
            let i = usize::from(i);
            [map[i], map[n + i], map[2 * n + i]].map(level)
        })
        .collect())
}

/// The luma weights of red, green and blue in Rec. 601, TIFF's default (and JPEG's).
const REC_601: [f64; 3] = [0.299, 0.587, 0.114];
/// TIFF's default ReferenceBlackWhite for YCbCr: full-range luma, chroma centred on 128.
const DEFAULT_REFERENCE: [f64; 6] = [0.0, 255.0, 128.0, 255.0, 128.0, 255.0];

/// The YCbCrCoefficients and ReferenceBlackWhite of the current IFD, each replaced by TIFF's
/// default when absent or unusable (zero denominators, as in some broken writers' files).
fn ycbcr_tags(d: &mut Decoder<Cursor<&[u8]>>) -> ([f64; 3], [f64; 6]) {
    let k = numbers(d, YCBCR_COEFFICIENTS)
        .and_then(|v| <[f64; 3]>::try_from(v).ok())
        .filter(|k| k.iter().all(|&c| c.is_finite() && c > 0.0 && c < 1.0))
        .unwrap_or(REC_601);
    let reference = numbers(d, REFERENCE_BLACK_WHITE)
        .and_then(|v| <[f64; 6]>::try_from(v).ok())
        .filter(|r| r.iter().all(|v| v.is_finite()) && r[1] != r[0] && r[3] != r[2] && r[5] != r[4])
        .unwrap_or(DEFAULT_REFERENCE);
    (k, reference)
}

/// A tag's values as numbers (integers or rationals).
fn numbers(d: &mut Decoder<Cursor<&[u8]>>, tag: u16) -> Option<Vec<f64>> {
    fn number(v: Value) -> Option<f64> {
        match v {
            Value::Rational(n, d) => (d != 0).then(|| f64::from(n) / f64::from(d)),
            Value::SRational(n, d) => (d != 0).then(|| f64::from(n) / f64::from(d)),
            Value::Short(n) => Some(f64::from(n)),
            Value::Unsigned(n) => Some(f64::from(n)),
            Value::Float(n) => Some(f64::from(n)),
            Value::Double(n) => Some(n),
            _ => None,
        }
    }
    match d.find_tag(Tag::Unknown(tag)).ok()?? {
        Value::List(values) => values.into_iter().map(number).collect(),
        one => number(one).map(|n| vec![n]),
    }
}

/// YCbCr → RGB as TIFF 6.0 section 21 defines it: each component first scaled by its
/// reference black and white, then the inverse of the luma weights `k`.
fn ycbcr_to_rgb(ycc: &[u8], k: [f64; 3], reference: [f64; 6]) -> Vec<u8> {
    let [kr, kg, kb] = k;
    let scale = |v: u8, i: usize, range: f64| {
        (f64::from(v) - reference[i]) * range / (reference[i + 1] - reference[i])
    };
    let mut out = Vec::with_capacity(ycc.len());
    for p in ycc.chunks_exact(3) {
        let y = scale(p[0], 0, 255.0);
        let cb = scale(p[1], 2, 127.0);
        let cr = scale(p[2], 4, 127.0);
        let r = y + cr * (2.0 - 2.0 * kr);
        let b = y + cb * (2.0 - 2.0 * kb);
        let g = (y - kb * b - kr * r) / kg;
        out.extend([r, g, b].map(to_u8));
    }
    out
}

fn to_u8(v: f64) -> u8 {
    // Clamped first, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let byte = v.round().clamp(0.0, 255.0) as u8;
    byte
}

/// A copy of a TIFF file whose first IFD says PhotometricInterpretation `photometric` where
/// it said something else, for a decoder that refuses the original interpretation. `None` if
/// the entry is not found.
fn with_photometric(bytes: &[u8], photometric: u16) -> Option<Vec<u8>> {
    let big_endian = match bytes.get(0..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let int = |at: usize, len: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(len)?)?;
        let fold = |acc: u64, &byte: &u8| acc << 8 | u64::from(byte);
        Some(if big_endian {
            b.iter().fold(0, fold)
        } else {
            b.iter().rev().fold(0, fold)
        })
    };
    // A BigTIFF (version 43) has 8-byte counts and offsets, so 20-byte entries.
    let (ifd, count_len, entry_len, value_at) = match int(2, 2)? {
        42 => (int(4, 4)?, 2, 12, 8),
        43 => (int(8, 8)?, 8, 20, 12),
        _ => return None,
    };
    let ifd = usize::try_from(ifd).ok()?;
    let count = usize::try_from(int(ifd, count_len)?).ok()?;
    for i in 0..count {
        let entry = ifd
            .checked_add(count_len)?
            .checked_add(i.checked_mul(entry_len)?)?;
        // SHORT (type 3), one value, stored in the entry itself.
        if int(entry, 2)? == u64::from(PHOTOMETRIC) && int(entry.checked_add(2)?, 2)? == 3 {
            let value = if big_endian {
                photometric.to_be_bytes()
            } else {
                photometric.to_le_bytes()
            };
            let at = entry.checked_add(value_at)?;
            let mut copy = bytes.to_vec();
            copy.get_mut(at..at.checked_add(2)?)?
                .copy_from_slice(&value);
            return Some(copy);
        }
    }
    None
}

/// CIE L*a*b* samples (L unsigned, a and b signed; alpha after them if any) → sRGB, 8 or 16
/// bits as the source. L* spans 0..100 over the unsigned range; a* and b* are the signed
/// values (16-bit ones in 1/256). The white is D65, as in libvips' `Lab2XYZ`.
fn lab_to_srgb(samples: DecodingResult, channels: usize) -> Result<Vec<u8>, JobError> {
    // A file may say its samples are signed (a* and b* are): the same bits either way.
    let samples = match samples {
        DecodingResult::I8(v) => DecodingResult::U8(v.into_iter().map(i8::cast_unsigned).collect()),
        DecodingResult::I16(v) => {
            DecodingResult::U16(v.into_iter().map(i16::cast_unsigned).collect())
        }
        other => other,
    };
    let mut out = Vec::new();
    match samples {
        DecodingResult::U8(v) => {
            for p in v.chunks_exact(channels) {
                let [r, g, b] = lab_pixel(
                    f64::from(p[0]) * 100.0 / 255.0,
                    f64::from(p[1].cast_signed()),
                    f64::from(p[2].cast_signed()),
                );
                out.extend([r, g, b].map(|c| to_u8(c * 255.0)));
                out.extend_from_slice(&p[3..]);
            }
        }
        DecodingResult::U16(v) => {
            for p in v.chunks_exact(channels) {
                let [r, g, b] = lab_pixel(
                    f64::from(p[0]) * 100.0 / 65_535.0,
                    f64::from(p[1].cast_signed()) / 256.0,
                    f64::from(p[2].cast_signed()) / 256.0,
                );
                for c in [r, g, b] {
                    out.extend(to_u16(c * 65_535.0).to_ne_bytes());
                }
                out.extend(p[3..].iter().flat_map(|a| a.to_ne_bytes()));
            }
        }
        _ => return Err(corrupt("CIE L*a*b* samples of an unexpected type")),
    }
    Ok(out)
}

/// One L*a*b* colour (D65 white) as gamma-encoded sRGB in 0..=1.
fn lab_pixel(l: f64, a: f64, b: f64) -> [f64; 3] {
    const D65: [f64; 3] = [0.950_47, 1.0, 1.088_83];
    let f_inv = |t: f64| {
        if t > 6.0 / 29.0 {
            t * t * t
        } else {
            3.0 * (6.0f64 / 29.0).powi(2) * (t - 4.0 / 29.0)
        }
    };
    let fy = (l + 16.0) / 116.0;
    let x = D65[0] * f_inv(fy + a / 500.0);
    let y = D65[1] * f_inv(fy);
    let z = D65[2] * f_inv(fy - b / 200.0);
    let linear = [
        3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z,
        -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z,
        0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z,
    ];
    linear.map(srgb_curve)
}

/// A linear-light value, clamped to 0..=1, gamma-encoded with the sRGB curve.
fn srgb_curve(linear: f64) -> f64 {
    let c = linear.clamp(0.0, 1.0);
    if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

/// Linear-light RGB samples (`channels` a pixel, any fourth one alpha, kept linear) as 16-bit
/// sRGB, native-endian.
fn linear_to_srgb16(samples: impl Iterator<Item = f64>, channels: usize) -> Vec<u8> {
    samples
        .enumerate()
        .flat_map(|(i, v)| {
            let v = if i % channels < 3 {
                srgb_curve(v)
            } else {
                v.clamp(0.0, 1.0)
            };
            to_u16(v * 65_535.0).to_ne_bytes()
        })
        .collect()
}

fn to_u16(v: f64) -> u16 {
    // Clamped first (NaN becomes 0), so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let word = v.round().clamp(0.0, 65_535.0) as u16;
    word
}

/// Decodes the strips of a Group 3 one-dimensional fax image into 8-bit grey. Rows a strip
/// lacks (data cut short, as from a truncated transmission) stay white; a strip that yields
/// no row at all fails the image.
fn fax3(bytes: &[u8], own: &Own) -> Result<Vec<u8>, JobError> {
    let mut d = decoder(bytes, own)?;
    let offsets = d.get_tag_u64_vec(Tag::StripOffsets).map_err(tiff_err)?;
    let counts = d.get_tag_u64_vec(Tag::StripByteCounts).map_err(tiff_err)?;
    let rows_per_strip = d
        .find_tag_unsigned::<u32>(Tag::RowsPerStrip)
        .map_err(tiff_err)?
        .unwrap_or(own.height)
        .max(1);
    // FillOrder 2: the first pixel is in the least significant bit of each byte.
    let reversed = d
        .find_tag_unsigned::<u16>(Tag::FillOrder)
        .map_err(tiff_err)?
        == Some(2);
    // Runs coded "white" are 0 bits and "black" 1 bits; WhiteIsZero (0) shows 0 as white.
    let white_is_zero = d
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(tiff_err)?
        != Some(1);
    let (white, black) = if white_is_zero { (255, 0) } else { (0, 255) };
    let width = own.width as usize;
    let width16 = u16::try_from(own.width).expect("checked by inspect");
    let mut out = vec![white; width * own.height as usize];
    let mut rows = out.chunks_exact_mut(width);
    for (strip, (&offset, &count)) in offsets.iter().zip(&counts).enumerate() {
        let data = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(count).ok())
            .and_then(|(at, len)| bytes.get(at..at.checked_add(len)?))
            .ok_or_else(|| corrupt(format!("strip {strip} lies outside the file")))?;
        let mut strip_rows = rows.by_ref().take(rows_per_strip as usize).peekable();
        if strip_rows.peek().is_none() {
            break;
        }
        let mut decoded = 0usize;
        let input = data.iter().map(|&b| {
            Ok::<u8, std::convert::Infallible>(if reversed { b.reverse_bits() } else { b })
        });
        if let Ok(mut g3) = fax::decoder::Group3Decoder::new(input) {
            loop {
                let status = g3.advance();
                // Data that ends without the end-of-page code fails after its last row has
                // been read whole (its runs reach the right edge): keep that row too.
                let whole = status.is_ok() || g3.transitions().last() == Some(&width16);
                if whole {
                    let Some(row) = strip_rows.next() else { break };
                    for (px, colour) in row
                        .iter_mut()
                        .zip(fax::decoder::pels(g3.transitions(), width16))
                    {
                        *px = if colour == fax::Color::Black {
                            black
                        } else {
                            white
                        };
                    }
                    decoded += 1;
                }
                if !matches!(status, Ok(fax::decoder::DecodeStatus::Incomplete)) {
                    break;
                }
            }
        }
        if decoded == 0 {
            return Err(corrupt(format!(
                "strip {strip} holds no readable CCITT Group 3 row"
            )));
        }
        strip_rows.for_each(drop);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_samples_are_unpacked_row_by_row() {
        // 2 bits: 0, 1, 2, 3; 4 bits: 0, 5, 15 and a padded row; 1 bit.
        assert_eq!(unpack(&[0b0001_1011], 4, 2), [0, 1, 2, 3]);
        assert_eq!(unpack(&[0b0001_1011, 0b1100_0000], 5, 2), [0, 1, 2, 3, 3]);
        assert_eq!(
            unpack(&[0x05, 0xF0, 0xA0, 0x00], 3, 4),
            [0, 5, 15, 10, 0, 0]
        );
        assert_eq!(unpack(&[0b1010_0000], 3, 1), [1, 0, 1]);
    }

    #[test]
    fn palette_indices_take_their_colour_map_entry() {
        // Two entries: red, then 50 % grey.
        let map = [65_535, 32_768, 0, 32_768, 0, 32_768];
        assert_eq!(
            palette_to_rgb(&[1, 0], &map, 1).unwrap(),
            [128, 128, 128, 255, 0, 0]
        );
        assert!(palette_to_rgb(&[0], &map[..5], 1).is_err());
    }

    #[test]
    fn ycbcr_with_default_tags_is_jfif() {
        let rgb = ycbcr_to_rgb(
            &[255, 128, 128, 0, 128, 128, 76, 85, 255],
            REC_601,
            DEFAULT_REFERENCE,
        );
        assert_eq!(&rgb[..6], &[255, 255, 255, 0, 0, 0]);
        // JFIF red (Y 76, Cb 85, Cr 255) comes back within a level of (255, 0, 0).
        assert!(rgb[6] >= 254 && rgb[7] <= 1 && rgb[8] <= 1, "{rgb:?}");
    }

    #[test]
    fn lab_white_grey_and_red_become_srgb() {
        let to_bytes = |p: [f64; 3]| p.map(|c| to_u8(c * 255.0));
        assert_eq!(to_bytes(lab_pixel(100.0, 0.0, 0.0)), [255, 255, 255]);
        assert_eq!(to_bytes(lab_pixel(0.0, 0.0, 0.0)), [0, 0, 0]);
        // L* 50 is sRGB 119 for a neutral grey under the same white.
        assert_eq!(to_bytes(lab_pixel(50.0, 0.0, 0.0)), [119, 119, 119]);
        // sRGB red is L* 53.24, a* 80.09, b* 67.20 under D65.
        let red = to_bytes(lab_pixel(53.24, 80.09, 67.20));
        assert!(red[0] >= 254 && red[1] <= 2 && red[2] <= 2, "{red:?}");
    }

    #[test]
    fn cut_and_bit_flipped_tiffs_fail_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tiff");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            let try_one = |bytes: &[u8]| {
                if let Ok(Some(own)) = inspect(bytes) {
                    // Bounded like the pipeline's pixel limit, so a flipped size stays small.
                    if u64::from(own.width) * u64::from(own.height) <= 1 << 22 {
                        let _ = decode(bytes, &own);
                    }
                }
            };
            for len in (0..bytes.len()).step_by(13) {
                try_one(&bytes[..len]);
            }
            // Deterministic single-bit flips spread over the file.
            let mut state = 0x9E37_79B9_u32;
            for _ in 0..150 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let at = state as usize % bytes.len();
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << (state >> 29);
                try_one(&flipped);
            }
        }
    }

    #[test]
    fn relabelling_survives_every_truncation() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/formats/hpredict_packbits.tiff");
        let bytes = std::fs::read(path).unwrap();
        assert!(with_photometric(&bytes, PHOTOMETRIC_RGB).is_some());
        for len in 0..256.min(bytes.len()) {
            let _ = with_photometric(&bytes[..len], PHOTOMETRIC_RGB);
            let _ = inspect(&bytes[..len]);
        }
    }
}
