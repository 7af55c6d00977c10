//! Decoding: bytes in memory → 8-bit pixels, orientation and ICC profile.
//!
//! JPEGs go through libjpeg-turbo (the `turbojpeg` crate) so that the IDCT can shrink by 1/2,
//! 1/4 or 1/8 while decoding (shrink-on-load): for a thumbnail of a 20 MP photo this skips most
//! of the decoding work. Every other format goes through the `image` crate. The header is read
//! first and checked against the pixel limit before any pixel buffer is allocated.

use std::io::Cursor;

use image::{ColorType, DynamicImage, ImageBuffer, ImageDecoder, ImageReader, Limits};
use turbojpeg::{Colorspace, DecompressHeader, Decompressor, PixelFormat, ScalingFactor, Subsamp};

use crate::config::FailOn;
use crate::error::JobError;
use crate::format::Format;
use crate::metadata;
use crate::pipeline::pixels::{Depth, Layout, Pixels};

/// What the header says, read before any pixels are decoded.
#[derive(Debug, Clone)]
pub struct Header {
    /// Stored (un-oriented) width.
    pub width: u32,
    /// Stored (un-oriented) height.
    pub height: u32,
    /// EXIF orientation, 1..=8 (1 when absent or invalid).
    pub orientation: u8,
    /// Embedded ICC profile, if any (never a CMYK profile: the pixels are RGB by then).
    pub icc: Option<Vec<u8>>,
    /// The CMYK profile of a CMYK/YCCK JPEG, used to convert its pixels to sRGB.
    pub cmyk_icc: Option<Vec<u8>>,
    /// EXIF (TIFF structure) and XMP packet, carried to the output by `metadata`.
    pub exif: Option<Vec<u8>>,
    /// XMP packet.
    pub xmp: Option<Vec<u8>>,
    /// Print resolution, of the pixels as displayed (swapped for a source stored turned).
    pub resolution: Option<metadata::Resolution>,
    /// Bytes per pixel once decoded (3 for an RGB JPEG, 8 for 16-bit RGBA), for the memory
    /// budget.
    pub bytes_per_pixel: u8,
    /// libjpeg-turbo's view of a JPEG header (colour space, lossless), kept so the decode does
    /// not parse the markers again (`None` in a header read by a decoder process).
    pub(super) jpeg: Option<DecompressHeader>,
}

impl Header {
    /// Returns true if and only if the orientation swaps width and height (EXIF 5..=8).
    pub fn is_transposed(&self) -> bool {
        self.orientation >= 5
    }

    /// Width and height as displayed once the orientation is applied.
    pub fn displayed_size(&self) -> (u32, u32) {
        if self.is_transposed() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// The source's metadata, for the outputs to carry; the header keeps none of it.
    pub fn take_metadata(&mut self) -> metadata::Metadata {
        metadata::Metadata {
            exif: self.exif.take(),
            xmp: self.xmp.take(),
            icc: self.icc.take(),
            resolution: self.resolution.take(),
        }
    }
}

/// `resolution` of a stored image, as displayed once turned by `orientation`.
fn displayed_resolution(
    resolution: Option<metadata::Resolution>,
    orientation: u8,
) -> Option<metadata::Resolution> {
    resolution.map(|r| if orientation >= 5 { r.transposed() } else { r })
}

/// Decoder state a worker keeps between images.
#[derive(Default)]
pub struct DecodeScratch {
    jpeg: Option<Decompressor>,
    /// Colour transforms for CMYK JPEGs, cached: building one from a large CMYK profile takes
    /// tens of milliseconds.
    color: super::color::ColorScratch,
    /// Which damage fails the current image (`--fail-on`).
    fail_on: FailOn,
    /// The damage the current image was decoded through, as its warning says it.
    damage: Option<String>,
    /// Decode every scan of a progressive JPEG even when a shrunk decode needs fewer (see
    /// `scans`); off by default, on only where the benches and tests compare the two.
    all_scans: bool,
}

/// Damage a decoder can read through, by the first `--fail-on` level that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// The data ends before the image does: the rest is grey (JPEG) or black/transparent.
    Truncated,
    /// An error the decoder can read past: a PNG chunk whose checksum does not match.
    Error,
    /// Something the decoder only warns about, such as libjpeg's "Corrupt JPEG data: …": the
    /// image is complete, possibly with a damaged patch.
    Warning,
}

impl Damage {
    /// The most lenient `--fail-on` level that fails on this damage.
    fn fails_at(self) -> FailOn {
        match self {
            Damage::Truncated => FailOn::Truncated,
            Damage::Error => FailOn::Error,
            Damage::Warning => FailOn::Warning,
        }
    }
}

impl DecodeScratch {
    /// Sets which damage fails the images decoded from now on (`--fail-on`; by default any).
    pub fn set_fail_on(&mut self, fail_on: FailOn) {
        self.fail_on = fail_on;
    }

    /// Makes progressive JPEGs decode every scan (`true`) or, by default, only the scans a
    /// shrunk decode reads (the pixels are the same; see `scans`).
    pub fn set_all_scans(&mut self, all: bool) {
        self.all_scans = all;
    }

    /// The warning for the damage the last image was decoded through, if any; clears it.
    pub fn take_damage(&mut self) -> Option<String> {
        self.damage.take()
    }

    /// Notes the damage a decoder process read the current image through (`--isolate`).
    pub(crate) fn note_damage(&mut self, damage: Option<String>) {
        self.damage = damage;
    }

    /// Reads the current image through `damage` if `--fail-on` allows it (noting the warning),
    /// else fails it with the decoder's `message`.
    fn tolerate(&mut self, format: Format, damage: Damage, message: &str) -> Result<(), JobError> {
        if self.fail_on >= damage.fails_at() {
            let hint = match damage {
                Damage::Truncated => "--fail-on none keeps what decoded",
                Damage::Error => "--fail-on truncated reads past it",
                Damage::Warning => "--fail-on error accepts it",
            };
            return Err(JobError::Decode {
                format: format.display_name(),
                message: format!("{message} ({hint})"),
            });
        }
        let what = match damage {
            Damage::Truncated => "truncated",
            Damage::Error | Damage::Warning => "damaged",
        };
        self.damage = Some(format!(
            "{what} {}, resized from what decoded: {message}",
            format.display_name()
        ));
        Ok(())
    }

    /// A fresh decompressor for a new image. Reusing one across images is unsafe in a subtle way:
    /// for a stream without a frame header libjpeg-turbo reports the *previous* image's header,
    /// so a garbage file would be judged by another file's size. `tj3Init` is cheap.
    fn new_jpeg(&mut self) -> Result<&mut Decompressor, JobError> {
        self.jpeg = Some(Decompressor::new().map_err(|e| jpeg_err(&e))?);
        Ok(self.jpeg.as_mut().expect("initialised above"))
    }

    /// The decompressor of the current image.
    fn jpeg(&mut self) -> Result<&mut Decompressor, JobError> {
        match self.jpeg {
            Some(ref mut d) => Ok(d),
            None => self.new_jpeg(),
        }
    }
}

fn jpeg_err(e: &turbojpeg::Error) -> JobError {
    JobError::Decode {
        format: "JPEG",
        message: jpeg_message(e),
    }
}

/// libjpeg-turbo's own words for `e`.
fn jpeg_message(e: &turbojpeg::Error) -> String {
    if let turbojpeg::Error::IntegerOverflow(_) = e {
        // libjpeg-turbo read no frame header and left the size unset (-1).
        return "no image frame (SOF) found".into();
    }
    let message = e.to_string();
    message
        .strip_prefix("TurboJPEG error: ")
        .unwrap_or(&message)
        .to_string()
}

/// libjpeg's warnings, as the start of their messages (`jerror.h`, `JWRN_*`): after one of them
/// the decoder has carried on to the end of the image. Any other message is a fatal error.
const JPEG_WARNINGS: [&str; 5] = [
    "Corrupt JPEG data",
    "Unknown Adobe color transform code",
    "Inconsistent progression sequence",
    "Warning: unknown JFIF revision number",
    "Invalid SOS parameters for sequential JPEG",
];

/// The damage a failed libjpeg-turbo decode read through, or `None` if it stopped (a fatal
/// error: no image). TurboJPEG reports a warning as a failure after decoding the whole image,
/// with the first warning's text; the binding does not expose its warning/fatal code, so the
/// text tells them apart. "Premature end of JPEG file" is libjpeg's warning for data that ends
/// early (it then decodes the rest as grey).
fn jpeg_damage(e: &turbojpeg::Error) -> Option<Damage> {
    let turbojpeg::Error::TurboJpegError(message) = e else {
        return None;
    };
    let message = message.strip_prefix("TurboJPEG error: ").unwrap_or(message);
    if message.starts_with("Premature end of JPEG file") {
        Some(Damage::Truncated)
    } else if JPEG_WARNINGS.iter().any(|w| message.starts_with(w)) {
        Some(Damage::Warning)
    } else {
        None
    }
}

/// Returns true if and only if the `image` crate's error says the data ended early: an I/O
/// error of kind `UnexpectedEof` somewhere in its chain, or the GIF decoder's own
/// `UnexpectedEof` error, known by its text (the `gif` crate is not a direct dependency).
fn is_truncation(e: &image::ImageError) -> bool {
    // `ImageError`'s own `source` skips the I/O error it wraps: look at that one first.
    if let image::ImageError::IoError(io) = e {
        return io.kind() == std::io::ErrorKind::UnexpectedEof;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
            || (err.source().is_none() && err.to_string() == "Unexpected End of File")
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// Decodes the pixels through an `image` crate decoder. Its error on a truncated file leaves
/// the rows decoded so far in the buffer (the rest zero: black, or transparent), which
/// `--fail-on none` keeps.
fn read_image(
    decoder: impl ImageDecoder,
    bytes: &[u8],
    format: Format,
    scratch: &mut DecodeScratch,
) -> Result<DynamicImage, JobError> {
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let too_large = || JobError::Unsupported("image too large for this machine".into());
    let mut buf = vec![0u8; usize::try_from(decoder.total_bytes()).map_err(|_| too_large())?];
    if let Err(e) = decoder.read_image(&mut buf) {
        if format == Format::Png && is_png_checksum_error(&e) {
            scratch.tolerate(format, Damage::Error, &e.to_string())?;
            return png_ignoring_checksums(bytes, color, (width, height), scratch);
        }
        if !is_truncation(&e) {
            return Err(image_err(format, e));
        }
        scratch.tolerate(format, Damage::Truncated, &e.to_string())?;
        // The PNG decoder turns 16-bit samples to native order only after a complete read.
        if format == Format::Png {
            png_samples_to_native(color, &mut buf);
        }
    }
    image_from_raw(color, width, height, buf).ok_or_else(|| {
        JobError::Unsupported(format!(
            "{} pixels of type {color:?}",
            format.display_name()
        ))
    })
}

/// Returns true if and only if the PNG decoder stopped at a chunk whose CRC does not match.
fn is_png_checksum_error(e: &image::ImageError) -> bool {
    let image::ImageError::Decoding(d) = e else {
        return false;
    };
    std::error::Error::source(d)
        .and_then(|s| s.downcast_ref::<png::DecodingError>())
        .is_some_and(|p| matches!(p, png::DecodingError::Format(f) if f.to_string().starts_with("CRC error")))
}

/// 16-bit PNG samples (big-endian in the file) in native order, as `read_image` promises.
fn png_samples_to_native(color: ColorType, buf: &mut [u8]) {
    if color.bytes_per_pixel() == 2 * color.channel_count() {
        for s in buf.chunks_exact_mut(2) {
            let v = u16::from_be_bytes([s[0], s[1]]);
            s.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

/// Decodes a PNG without checking its chunk checksums (CRC-32, and zlib's Adler-32), as
/// libvips does below `--fail-on error`. It expands as the `image` crate does (palette and low
/// bit depths to 8 bits, `tRNS` to alpha), so the pixels have the colour type `color` it
/// reported. A truncation found on the way is handled as in [`read_image`].
fn png_ignoring_checksums(
    bytes: &[u8],
    color: ColorType,
    (width, height): (u32, u32),
    scratch: &mut DecodeScratch,
) -> Result<DynamicImage, JobError> {
    let err = |e: png::DecodingError| JobError::Decode {
        format: "PNG",
        message: e.to_string(),
    };
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.ignore_checksums(true);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(err)?;
    let len = reader
        .output_buffer_size()
        .ok_or_else(|| JobError::Unsupported("image too large for this machine".into()))?;
    let mut buf = vec![0u8; len];
    match reader.next_frame(&mut buf) {
        Ok(_) => {}
        Err(png::DecodingError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            scratch.tolerate(Format::Png, Damage::Truncated, &e.to_string())?;
        }
        Err(e) => return Err(err(e)),
    }
    png_samples_to_native(color, &mut buf);
    // The reader's buffer may be longer than the frame.
    buf.truncate(usize::from(color.bytes_per_pixel()) * width as usize * height as usize);
    image_from_raw(color, width, height, buf)
        .ok_or_else(|| JobError::Unsupported(format!("PNG pixels of type {color:?}")))
}

/// A decoder's native-endian sample bytes as an image of its colour type.
fn image_from_raw(color: ColorType, w: u32, h: u32, buf: Vec<u8>) -> Option<DynamicImage> {
    let u16s = |b: &[u8]| -> Vec<u16> {
        b.chunks_exact(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]))
            .collect()
    };
    let f32s = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    Some(match color {
        ColorType::L8 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, buf)?),
        ColorType::La8 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, buf)?),
        ColorType::Rgb8 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, buf)?),
        ColorType::Rgba8 => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, buf)?),
        ColorType::L16 => DynamicImage::ImageLuma16(ImageBuffer::from_raw(w, h, u16s(&buf))?),
        ColorType::La16 => DynamicImage::ImageLumaA16(ImageBuffer::from_raw(w, h, u16s(&buf))?),
        ColorType::Rgb16 => DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, u16s(&buf))?),
        ColorType::Rgba16 => DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, u16s(&buf))?),
        ColorType::Rgb32F => DynamicImage::ImageRgb32F(ImageBuffer::from_raw(w, h, f32s(&buf))?),
        ColorType::Rgba32F => DynamicImage::ImageRgba32F(ImageBuffer::from_raw(w, h, f32s(&buf))?),
        _ => return None,
    })
}

/// The `image` crate's error, classified for the summary.
pub(crate) fn image_err(format: Format, e: image::ImageError) -> JobError {
    match e {
        image::ImageError::Unsupported(u) => JobError::Unsupported(u.to_string()),
        image::ImageError::Limits(l) => JobError::Unsupported(format!("decoder limit: {l}")),
        other => JobError::Decode {
            format: format.display_name(),
            message: other.to_string(),
        },
    }
}

impl Header {
    /// A header that says nothing but the size: upright, no metadata. Readers of formats that
    /// carry little start from it.
    fn sized(width: u32, height: u32, bytes_per_pixel: u8) -> Header {
        Header {
            width,
            height,
            orientation: 1,
            icc: None,
            cmyk_icc: None,
            exif: None,
            xmp: None,
            resolution: None,
            bytes_per_pixel,
            jpeg: None,
        }
    }
}

impl Probe<'_> {
    /// A probe whose pixels are decoded later without a kept `image` decoder.
    fn bare(header: Header) -> Self {
        Probe {
            header,
            decoder: None,
            svg: None,
        }
    }
}

/// A header that has been read, with the decoder that read it (formats other than JPEG), so that
/// decoding the pixels does not parse the file a second time.
pub struct Probe<'a> {
    /// What the header says.
    pub header: Header,
    decoder: Option<Box<dyn ImageDecoder + 'a>>,
    /// An SVG's parsed drawing, and the pixel limit its render must keep.
    svg: Option<(resvg::usvg::Tree, u64)>,
}

/// Reads the header of an image already in memory and checks it against `max_pixels`.
pub fn read_header(
    bytes: &[u8],
    format: Format,
    max_pixels: u64,
    scratch: &mut DecodeScratch,
) -> Result<Header, JobError> {
    probe(bytes, format, max_pixels, scratch).map(|p| p.header)
}

/// Like [`read_header`], keeping the decoder for [`decode_probed`].
pub fn probe<'a>(
    bytes: &'a [u8],
    format: Format,
    max_pixels: u64,
    scratch: &mut DecodeScratch,
) -> Result<Probe<'a>, JobError> {
    let (bytes, format) = icon_as_png(bytes, format);
    let probe = match format {
        Format::Jpeg => {
            let h = scratch
                .new_jpeg()?
                .read_header(bytes)
                .map_err(|e| jpeg_err(&e))?;
            let meta = metadata::read(bytes, Format::Jpeg);
            let cmyk = matches!(h.colorspace, Colorspace::CMYK | Colorspace::YCCK);
            let (icc, cmyk_icc) = if cmyk {
                (None, meta.icc)
            } else {
                (meta.icc, None)
            };
            let orientation = meta.exif.as_deref().map_or(1, exif_orientation);
            let header = Header {
                width: u32::try_from(h.width).unwrap_or(u32::MAX),
                height: u32::try_from(h.height).unwrap_or(u32::MAX),
                orientation,
                icc,
                cmyk_icc,
                exif: meta.exif,
                xmp: meta.xmp,
                resolution: displayed_resolution(meta.resolution, orientation),
                bytes_per_pixel: if cmyk { 4 } else { 3 },
                jpeg: Some(h),
            };
            Probe::bare(header)
        }
        Format::Heic | Format::Avif => heif_probe(bytes, format, max_pixels)?,
        Format::Svg => {
            let tree = super::svg::parse(bytes)?;
            let (width, height) = super::svg::intrinsic_size(&tree);
            let header = Header::sized(width, height, 4);
            Probe {
                header,
                decoder: None,
                svg: Some((tree, max_pixels)),
            }
        }
        // TIFF variants the `image` crate does not read, or reads otherwise than libvips
        // (issue #13 item 6).
        Format::Tiff if super::tiff::inspect(bytes)?.is_some() => own_tiff_probe(bytes)?,
        Format::Ico if icon_bitmap(bytes)?.is_some() => icon_probe(bytes)?,
        _ => {
            let mut decoder = image_decoder(bytes, format, max_pixels)?;
            let (width, height) = decoder.dimensions();
            let meta = metadata::read(bytes, format);
            let icc = meta.icc.or_else(|| decoder.icc_profile().ok().flatten());
            // A CMYK TIFF's profile converts its pixels (see `decode_cmyk_tiff`), as a CMYK
            // JPEG's does; it never describes the RGB output.
            let (icc, cmyk_icc) = match icc {
                Some(p)
                    if format == Format::Tiff
                        && p.get(16..20) == Some(b"CMYK".as_slice())
                        && metadata::tiff_is_cmyk(bytes) =>
                {
                    (None, Some(p))
                }
                other => (other, None),
            };
            let exif = meta.exif.or_else(|| decoder.exif_metadata().ok().flatten());
            // Our own reader, not the decoder's: the `image` crate takes only a SHORT tag.
            // A TIFF file keeps the tag in its own first IFD.
            let orientation = match format {
                Format::Tiff => metadata::orientation(bytes).unwrap_or(1),
                _ => exif.as_deref().map_or(1, exif_orientation),
            };
            let header = Header {
                width,
                height,
                orientation,
                icc,
                cmyk_icc,
                resolution: displayed_resolution(
                    meta.resolution
                        .or_else(|| exif.as_deref().and_then(metadata::exif_resolution)),
                    orientation,
                ),
                exif,
                xmp: meta.xmp,
                bytes_per_pixel: decoder.color_type().bytes_per_pixel(),
                jpeg: None,
            };
            Probe {
                header,
                decoder: Some(Box::new(decoder)),
                svg: None,
            }
        }
    };
    // A drawing allocates nothing at its own size: the limit applies to its render.
    if !format.is_vector() {
        check_pixels(probe.header.width, probe.header.height, max_pixels)?;
    }
    Ok(probe)
}

/// The header of a TIFF that `super::tiff` decodes: its size and layout from that module, the
/// rest as for any TIFF. A CIE L*a*b* file's profile describes Lab, not the sRGB it becomes.
fn own_tiff_probe<'a>(bytes: &[u8]) -> Result<Probe<'a>, JobError> {
    let own = super::tiff::inspect(bytes)?.expect("inspected by the caller");
    let meta = metadata::read(bytes, Format::Tiff);
    let orientation = metadata::orientation(bytes).unwrap_or(1);
    let icc = meta
        .icc
        .filter(|_| own.variant != super::tiff::Variant::Lab);
    let header = Header {
        width: own.width,
        height: own.height,
        orientation,
        icc,
        cmyk_icc: None,
        exif: None,
        xmp: None,
        resolution: displayed_resolution(meta.resolution, orientation),
        bytes_per_pixel: u8::try_from(own.layout.channels() * own.depth.bytes())
            .expect("at most 8"),
        jpeg: None,
    };
    Ok(Probe::bare(header))
}

/// Decodes a TIFF that `super::tiff` claims, then finishes it as any TIFF (associated alpha).
fn decode_own_tiff(bytes: &[u8]) -> Result<Pixels, JobError> {
    let own = super::tiff::inspect(bytes)?.ok_or_else(|| JobError::Decode {
        format: "TIFF",
        message: "the file changed while it was read".into(),
    })?;
    Ok(finish(
        Format::Tiff,
        bytes,
        super::tiff::decode(bytes, &own)?,
    ))
}

/// An icon whose chosen image is a PNG (see `ico`) is that PNG, read like any other: the
/// slice of the icon holding it, as a PNG.
fn icon_as_png(bytes: &[u8], format: Format) -> (&[u8], Format) {
    match (format, super::ico::select(bytes)) {
        (Format::Ico, Ok(Some(super::ico::Entry::Png(png)))) => (png, Format::Png),
        _ => (bytes, format),
    }
}

/// The chosen image of an icon when it is a bitmap `ico` decodes itself; `None` for other icons
/// (PNG entries, and bitmaps left to the `image` crate's decoder).
fn icon_bitmap(bytes: &[u8]) -> Result<Option<super::ico::Dib<'_>>, JobError> {
    Ok(match super::ico::select(bytes)? {
        Some(super::ico::Entry::Dib(dib)) => Some(dib),
        _ => None,
    })
}

/// The header of an icon's bitmap image: its size, and the profile a version 5 header embeds.
fn icon_probe<'a>(bytes: &[u8]) -> Result<Probe<'a>, JobError> {
    let dib = icon_bitmap(bytes)?.expect("checked by the caller");
    let header = Header {
        icc: metadata::dib_icc(dib.data),
        ..Header::sized(dib.width, dib.height, 4)
    };
    Ok(Probe::bare(header))
}

/// Decodes an icon's bitmap image (see `ico`), then finishes it as any icon.
fn decode_icon_bitmap(bytes: &[u8]) -> Result<Pixels, JobError> {
    let dib = icon_bitmap(bytes)?.ok_or_else(|| JobError::Decode {
        format: "ICO",
        message: "the file changed while it was read".into(),
    })?;
    Ok(finish(Format::Ico, bytes, super::ico::decode_dib(&dib)?))
}

/// The header of a HEIC/AVIF file, through libheif.
#[cfg(feature = "heif")]
fn heif_probe<'a>(bytes: &[u8], _format: Format, max_pixels: u64) -> Result<Probe<'a>, JobError> {
    let h = super::heif::read_heif_header(bytes, max_pixels)?;
    // libheif applies the container's rotation and mirroring (irot/imir) while decoding, so the
    // pixels arrive upright; the EXIF Orientation tag is informative only and must not be
    // applied a second time.
    let header = Header {
        icc: h.icc,
        resolution: h.exif.as_deref().and_then(metadata::exif_resolution),
        exif: h.exif,
        xmp: h.xmp,
        ..Header::sized(h.width, h.height, 4)
    };
    Ok(Probe::bare(header))
}

#[cfg(not(feature = "heif"))]
fn heif_probe<'a>(_bytes: &[u8], format: Format, _max_pixels: u64) -> Result<Probe<'a>, JobError> {
    Err(JobError::Unsupported(format!(
        "{} input needs presize built with its default `heif` feature (libheif)",
        format.display_name()
    )))
}

fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), JobError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(JobError::Decode {
            format: "image",
            message: "zero width or height".into(),
        });
    }
    if pixels > limit {
        return Err(JobError::TooLarge {
            width,
            height,
            pixels,
            limit,
        });
    }
    Ok(())
}

fn image_decoder(
    bytes: &[u8],
    format: Format,
    max_pixels: u64,
) -> Result<impl ImageDecoder + '_, JobError> {
    let fmt = match format {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
        Format::Webp => image::ImageFormat::WebP,
        Format::Gif => image::ImageFormat::Gif,
        Format::Tiff => image::ImageFormat::Tiff,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::Ico => image::ImageFormat::Ico,
        Format::Tga => image::ImageFormat::Tga,
        Format::Pnm => image::ImageFormat::Pnm,
        Format::Qoi => image::ImageFormat::Qoi,
        Format::Hdr => image::ImageFormat::Hdr,
        Format::Exr => image::ImageFormat::OpenExr,
        Format::Svg => return Err(JobError::Unsupported("SVG is not a raster format".into())),
        Format::Avif | Format::Heic => {
            return Err(JobError::Unsupported(format!(
                "{} input needs presize built with its default `heif` feature (libheif)",
                format.display_name()
            )))
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), fmt);
    let mut limits = Limits::default();
    // Eight bytes per pixel covers 16-bit RGBA; a lying header cannot make the decoder allocate
    // more than the pixel limit allows.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    reader
        .into_decoder()
        .map_err(|e| match (format, image_err(format, e)) {
            // The `image` crate's words for these ("color type `Unknown(24)`") say little.
            (Format::Tiff, JobError::Unsupported(_)) => super::tiff::refusal(bytes),
            (_, e) => e,
        })
}

/// Decodes the image. For JPEG, `min_size` is the smallest (stored-orientation) size the
/// decoded image may have: the IDCT shrinks by the largest power of two that keeps it. An SVG
/// is rendered at `min_size` (rounded), or at its intrinsic size without one.
pub fn decode(
    bytes: &[u8],
    format: Format,
    header: &Header,
    min_size: Option<(f64, f64)>,
    max_pixels: u64,
    scratch: &mut DecodeScratch,
) -> Result<Pixels, JobError> {
    let (bytes, format) = icon_as_png(bytes, format);
    match format {
        Format::Jpeg => decode_jpeg(bytes, header, min_size, scratch, 1),
        Format::Heic | Format::Avif => decode_heif(bytes, format),
        Format::Svg => render_svg(&super::svg::parse(bytes)?, min_size, max_pixels),
        Format::Tiff if header.cmyk_icc.is_some() => decode_cmyk_tiff(bytes, header, scratch),
        Format::Tiff if super::tiff::inspect(bytes)?.is_some() => decode_own_tiff(bytes),
        Format::Ico if icon_bitmap(bytes)?.is_some() => decode_icon_bitmap(bytes),
        _ => {
            let decoder = image_decoder(bytes, format, max_pixels)?;
            let img = read_image(decoder, bytes, format, scratch)?;
            Ok(finish(format, bytes, to_pixels(img)))
        }
    }
}

/// Decodes the pixels of a probed image, reusing the decoder that read its header (`min_size`
/// as for [`decode`]).
///
/// `threads` (counting this one) split a JPEG with restart markers (see `restart`).
pub fn decode_probed(
    bytes: &[u8],
    format: Format,
    probe: Probe<'_>,
    min_size: Option<(f64, f64)>,
    scratch: &mut DecodeScratch,
    threads: usize,
) -> Result<Pixels, JobError> {
    let (bytes, format) = icon_as_png(bytes, format);
    match probe.decoder {
        Some(_) if format == Format::Tiff && probe.header.cmyk_icc.is_some() => {
            decode_cmyk_tiff(bytes, &probe.header, scratch)
        }
        Some(decoder) => {
            let img = read_image(decoder, bytes, format, scratch)?;
            Ok(finish(format, bytes, to_pixels(img)))
        }
        None if matches!(format, Format::Heic | Format::Avif) => decode_heif(bytes, format),
        None if format == Format::Svg => match probe.svg {
            Some((tree, max_pixels)) => render_svg(&tree, min_size, max_pixels),
            None => render_svg(&super::svg::parse(bytes)?, min_size, u64::MAX),
        },
        None if format == Format::Tiff => decode_own_tiff(bytes),
        None if format == Format::Ico => decode_icon_bitmap(bytes),
        None => decode_jpeg(bytes, &probe.header, min_size, scratch, threads),
    }
}

/// Renders a drawing at `min_size` (or its own size), refusing renders over `max_pixels`.
fn render_svg(
    tree: &resvg::usvg::Tree,
    min_size: Option<(f64, f64)>,
    max_pixels: u64,
) -> Result<Pixels, JobError> {
    let (w, h) = super::svg::render_size(tree, min_size);
    check_pixels(w, h, max_pixels)?;
    super::svg::render(tree, w, h)
}

/// Decodes a HEIC/AVIF file (its size was checked against the limit when probed).
#[cfg(feature = "heif")]
fn decode_heif(bytes: &[u8], _format: Format) -> Result<Pixels, JobError> {
    Ok(super::heif::decode_heif(bytes, u64::MAX)?.pixels)
}

#[cfg(not(feature = "heif"))]
fn decode_heif(_bytes: &[u8], format: Format) -> Result<Pixels, JobError> {
    Err(JobError::Unsupported(format!(
        "{} input needs presize built with its default `heif` feature (libheif)",
        format.display_name()
    )))
}

/// The largest 1/d (d = 8, 4, 2, 1) such that `d`-fold shrinking keeps at least `min_size`.
pub fn jpeg_shrink(width: u32, height: u32, min_size: Option<(f64, f64)>) -> usize {
    let Some((mw, mh)) = min_size else { return 1 };
    [8usize, 4, 2]
        .into_iter()
        .find(|&d| {
            // libjpeg-turbo rounds scaled sizes up.
            let sw = f64::from(width.div_ceil(d as u32));
            let sh = f64::from(height.div_ceil(d as u32));
            sw >= mw && sh >= mh
        })
        .unwrap_or(1)
}

/// JPEGs of at least this many pixels are worth splitting at their restart markers when spare
/// cores are available (below it, thread starts and the band copies eat the gain).
pub const PARALLEL_DECODE_PIXELS: u64 = 2_000_000;

/// Decodes the bands of a JPEG with restart markers on up to `threads` threads, straight into
/// their rows of the image, then mends the seams. `None` if any part fails: the caller then
/// decodes the whole file the usual way, which reports the damage as it always does.
///
/// A band decoded on its own differs from the whole-file decode only next to its top and bottom
/// edges, where chroma upsampling has no neighbouring row to look at (libjpeg-turbo repeats the
/// edge row). So each seam is decoded again as a small JPEG of one boundary step on either side,
/// and its middle rows, which do have their neighbours, replace the band edges.
fn decode_bands(
    cuts: &super::restart::Intervals<'_>,
    denom: usize,
    format: PixelFormat,
    channels: usize,
    (width, height): (usize, usize),
    threads: usize,
    scaled: impl Fn(u32) -> u32 + Sync,
) -> Option<Vec<u8>> {
    let bands = cuts.bands(u32::try_from(threads).unwrap_or(u32::MAX));
    if bands.len() < 2 {
        return None;
    }
    let mcu = cuts.mcu_height();
    let row_bytes = width * channels;
    // Decodes MCU rows `rows` into `out` (exactly their scaled height in rows).
    let decode = |rows: (u32, u32), out: &mut [u8]| -> Option<()> {
        let jpeg = cuts.band_jpeg(rows);
        let mut d = Decompressor::new().ok()?;
        d.read_header(&jpeg).ok()?;
        d.set_scaling_factor(ScalingFactor::new(1, denom)).ok()?;
        let image = turbojpeg::Image {
            height: out.len() / row_bytes,
            pixels: out,
            width,
            pitch: row_bytes,
            format,
        };
        d.decompress(&jpeg, image).ok()
    };
    // Output rows of MCU row `r`'s top edge (the last band ends at the image's bottom, which
    // the MCU grid overshoots; MCU heights are multiples of every scale's denominator).
    let row_of = |r: u32| (scaled(r * mcu) as usize).min(height);
    let mut data = vec![0u8; row_bytes * height];
    let ok = std::thread::scope(|scope| {
        let mut rest = data.as_mut_slice();
        let mut parts = Vec::new();
        for band in &bands {
            let rows = row_of(band.keep.1) - row_of(band.keep.0);
            let (mine, tail) = rest.split_at_mut(rows * row_bytes);
            parts.push((band.keep, mine));
            rest = tail;
        }
        let decode = &decode;
        let mut parts = parts.into_iter();
        let (first, first_out) = parts.next()?;
        let helpers: Vec<_> = parts
            .map(|(keep, out)| scope.spawn(move || decode(keep, out)))
            .collect();
        let mut ok = decode(first, first_out);
        for h in helpers {
            ok = ok.and(h.join().ok().flatten());
        }
        ok
    });
    ok?;
    // Mend each seam from a small decode that spans it.
    let half = (scaled(mcu / 2) as usize).max(1);
    for pair in bands.windows(2) {
        // From where the lower band's decode would start to where the upper one's would end:
        // both restart boundaries, one step either side of the edge.
        let edge = pair[0].keep.1;
        let seam = (pair[1].decode.0, pair[0].decode.1);
        let top = row_of(seam.0);
        let rows = row_of(seam.1) - top;
        let mut patch = vec![0u8; rows * row_bytes];
        decode(seam, &mut patch)?;
        let at = row_of(edge);
        let (from, to) = (
            at.saturating_sub(half).max(top),
            (at + half).min(top + rows),
        );
        data[from * row_bytes..to * row_bytes]
            .copy_from_slice(&patch[(from - top) * row_bytes..(to - top) * row_bytes]);
    }
    Some(data)
}

/// Decompresses `jpeg` at the scale set on `d` into a new buffer of `width`×`height` pixels of
/// `format` (`channels` bytes each). The buffer comes back with the result, since a warning
/// still leaves a whole image in it.
fn decompress(
    d: &mut Decompressor,
    jpeg: &[u8],
    (width, height): (usize, usize),
    format: PixelFormat,
    channels: usize,
) -> (Vec<u8>, Result<(), turbojpeg::Error>) {
    let mut data = vec![0u8; width * height * channels];
    let image = turbojpeg::Image {
        pixels: data.as_mut_slice(),
        width,
        pitch: width * channels,
        height,
        format,
    };
    let decoded = d.decompress(jpeg, image);
    (data, decoded)
}

fn decode_jpeg(
    bytes: &[u8],
    header: &Header,
    min_size: Option<(f64, f64)>,
    scratch: &mut DecodeScratch,
    threads: usize,
) -> Result<Pixels, JobError> {
    let all_scans = scratch.all_scans;
    let d = scratch.jpeg()?;
    let h = match header.jpeg {
        Some(h) => h,
        None => d.read_header(bytes).map_err(|e| jpeg_err(&e))?,
    };
    let denom = if h.is_lossless {
        1
    } else {
        jpeg_shrink(header.width, header.height, min_size)
    };
    d.set_scaling_factor(ScalingFactor::new(1, denom))
        .map_err(|e| jpeg_err(&e))?;
    let width = h.width.div_ceil(denom);
    let height = h.height.div_ceil(denom);
    let (format, layout, channels) = match h.colorspace {
        Colorspace::Gray => (PixelFormat::GRAY, Layout::L, 1),
        Colorspace::CMYK | Colorspace::YCCK => (PixelFormat::CMYK, Layout::Rgb, 4),
        _ => (PixelFormat::RGB, Layout::Rgb, 3),
    };
    let scaled = |x: u32| x / u32::try_from(denom).expect("1 to 8");
    // A progressive file shrunk to 1/8: decode a copy holding only the scans that reads, or
    // the whole file if the copy cannot be made or fails in any way (which then reports any
    // damage as usual).
    let cut = (!all_scans && !h.is_lossless)
        .then(|| super::scans::needed_scans(bytes, denom))
        .flatten()
        .and_then(|jpeg| {
            let (data, decoded) = decompress(d, &jpeg, (width, height), format, channels);
            decoded.ok().map(|()| data)
        });
    let split = (cut.is_none() && threads > 1 && !h.is_lossless)
        .then(|| super::restart::Intervals::parse(bytes))
        .flatten()
        .and_then(|cuts| {
            decode_bands(
                &cuts,
                denom,
                format,
                channels,
                (width, height),
                threads,
                scaled,
            )
        });
    let mut data = match cut.or(split) {
        Some(data) => data,
        None => {
            let (data, decoded) = decompress(d, bytes, (width, height), format, channels);
            if let Err(e) = decoded {
                let damage = jpeg_damage(&e).ok_or_else(|| jpeg_err(&e))?;
                scratch.tolerate(Format::Jpeg, damage, &jpeg_message(&e))?;
            }
            data
        }
    };
    if channels == 4 {
        // Through the embedded CMYK profile when there is one (48.7 dB against ImageMagick's
        // conversion on the corpus photo; the formula gives 21.5 dB), else the formula.
        let inverted = has_adobe_marker(bytes);
        data = cmyk_to_srgb(&data, header.cmyk_icc.as_deref(), inverted, scratch);
    }
    Ok(Pixels {
        data,
        width: u32::try_from(width).expect("header checked"),
        height: u32::try_from(height).expect("header checked"),
        layout,
        depth: Depth::Eight,
    })
}

/// Decodes a CMYK TIFF with an embedded CMYK profile through that profile, as CMYK JPEGs are
/// (issue #13 item 2): the `image` crate would convert with the plain formula, which turns
/// a press's red (C0 M100 Y100 K0) into pure sRGB red. The `tiff` crate gives the raw inks
/// (255 = full ink; 16-bit samples are rounded to 8). A profile the colour engine cannot use
/// falls back to the formula, as for JPEG.
fn decode_cmyk_tiff(
    bytes: &[u8],
    header: &Header,
    scratch: &mut DecodeScratch,
) -> Result<Pixels, JobError> {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    let err = |e: tiff::TiffError| JobError::Decode {
        format: "TIFF",
        message: e.to_string(),
    };
    // The size was checked against the pixel limit when probed: allow what it needs.
    let samples = usize::try_from(u64::from(header.width) * u64::from(header.height) * 4)
        .map_err(|_| JobError::Unsupported("image too large for this machine".into()))?;
    let mut limits = Limits::default();
    limits.decoding_buffer_size = samples.saturating_mul(2).max(limits.decoding_buffer_size);
    limits.ifd_value_size = limits.ifd_value_size.max(64 << 20);
    let mut decoder = Decoder::new(Cursor::new(bytes))
        .map_err(err)?
        .with_limits(limits);
    let cmyk = match decoder.read_image().map_err(err)? {
        DecodingResult::U8(v) => v,
        DecodingResult::U16(v) => v.iter().map(|&s| super::pixels::to_8bit(s)).collect(),
        _ => {
            return Err(JobError::Unsupported(
                "CMYK TIFF with samples other than 8 or 16 bits".into(),
            ))
        }
    };
    if cmyk.len() != samples {
        return Err(JobError::Decode {
            format: "TIFF",
            message: "CMYK image data does not match its size".into(),
        });
    }
    let data = cmyk_to_srgb(&cmyk, header.cmyk_icc.as_deref(), false, scratch);
    Ok(Pixels {
        data,
        width: header.width,
        height: header.height,
        layout: Layout::Rgb,
        depth: Depth::Eight,
    })
}

/// Naive CMYK → RGB. Photoshop ("Adobe") CMYK JPEGs store inverted ink values.
/// A colour-managed conversion through the embedded profile would be more exact.
/// CMYK samples (Adobe-inverted if `inverted`) as RGB: through `profile` when there is one the
/// colour engine can use, else by the plain formula. The one rule for CMYK JPEGs and TIFFs.
fn cmyk_to_srgb(
    cmyk: &[u8],
    profile: Option<&[u8]>,
    inverted: bool,
    scratch: &mut DecodeScratch,
) -> Vec<u8> {
    let mut rgb = Vec::new();
    match profile {
        Some(p)
            if scratch
                .color
                .cmyk_to_rgb_icc(cmyk, p, inverted, &mut rgb)
                .is_ok() =>
        {
            rgb
        }
        _ => cmyk_to_rgb(cmyk, inverted),
    }
}

fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let (c, m, y, k) = if inverted {
            (
                u32::from(px[0]),
                u32::from(px[1]),
                u32::from(px[2]),
                u32::from(px[3]),
            )
        } else {
            (
                255 - u32::from(px[0]),
                255 - u32::from(px[1]),
                255 - u32::from(px[2]),
                255 - u32::from(px[3]),
            )
        };
        for ch in [c, m, y] {
            out.push(u8::try_from((ch * k + 127) / 255).expect("≤ 255"));
        }
    }
    out
}

/// What the `image` crate's decoders leave to do, per format.
fn finish(format: Format, bytes: &[u8], px: Pixels) -> Pixels {
    match format {
        // The GIF decoder hands back RGBA whatever the file holds. A GIF none of whose pixels is
        // transparent is an RGB image, as libvips reads it: a PNG made from it must not carry
        // an alpha channel that says "opaque" everywhere (issue #13 item 13).
        Format::Gif | Format::Ico => px.without_opaque_alpha(),
        Format::Bmp => bmp_alpha(bytes, px),
        // TIFF's associated alpha: the decoder returns the colours as stored, multiplied by
        // alpha. Everything after decoding takes straight alpha (the resizer premultiplies
        // itself, encoders write straight), so divide once here, as libvips does on load
        // (issue #13 item 3).
        Format::Tiff if px.layout.has_alpha() && metadata::tiff_associated_alpha(bytes) => {
            unpremultiply(px)
        }
        _ => px,
    }
}

/// Divides every colour sample by its pixel's alpha (rounded, clamped to full scale); a fully
/// transparent pixel gets colour 0.
fn unpremultiply(mut px: Pixels) -> Pixels {
    let channels = px.layout.channels();
    match px.depth {
        Depth::Eight => {
            for p in px.data.chunks_exact_mut(channels) {
                let (colour, alpha) = p.split_at_mut(channels - 1);
                let a = u32::from(alpha[0]);
                for c in colour {
                    *c = match a {
                        0 => 0,
                        255 => *c,
                        _ => u8::try_from(((u32::from(*c) * 255 + a / 2) / a).min(255))
                            .expect("clamped"),
                    };
                }
            }
        }
        Depth::Sixteen => {
            for p in px.data.chunks_exact_mut(2 * channels) {
                let a = u32::from(u16::from_ne_bytes([
                    p[2 * channels - 2],
                    p[2 * channels - 1],
                ]));
                for c in p[..2 * (channels - 1)].chunks_exact_mut(2) {
                    let v = u32::from(u16::from_ne_bytes([c[0], c[1]]));
                    let v = match a {
                        0 => 0,
                        65_535 => v,
                        _ => ((v * 65_535 + a / 2) / a).min(65_535),
                    };
                    c.copy_from_slice(&u16::try_from(v).expect("clamped").to_ne_bytes());
                }
            }
        }
    }
    px
}

/// A 32-bit uncompressed (`BI_RGB`) BMP stores a fourth byte per pixel that the `image` crate
/// drops. libvips (through ImageMagick) reads it as alpha unless it is 0 everywhere, and so
/// does presize (issue #13 item 4; the README says why, and that browsers differ).
fn bmp_alpha(bytes: &[u8], px: Pixels) -> Pixels {
    if px.layout != Layout::Rgb || px.depth != Depth::Eight {
        return px;
    }
    let Some(alpha) = bmp_fourth_bytes(bytes, px.width, px.height) else {
        return px;
    };
    if alpha.iter().all(|&a| a == 0) {
        return px;
    }
    let data = px
        .data
        .chunks_exact(3)
        .zip(alpha)
        .flat_map(|(p, a)| [p[0], p[1], p[2], a])
        .collect();
    Pixels {
        data,
        layout: Layout::Rgba,
        ..px
    }
}

/// The fourth byte of every pixel of a 32-bit `BI_RGB` BMP of `width`×`height`, in top-down
/// row order; `None` for any other BMP, or when the pixel data is cut short.
fn bmp_fourth_bytes(bytes: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    let le_u32 = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let header = le_u32(14)?;
    if !bytes.starts_with(b"BM") || header < 40 {
        return None;
    }
    let bit_count = u16::from_le_bytes(bytes.get(28..30)?.try_into().ok()?);
    if bit_count != 32 || le_u32(30)? != 0 {
        return None;
    }
    let top_down = le_u32(22)?.cast_signed() < 0;
    let data = usize::try_from(le_u32(10)?).ok()?;
    let (w, h) = (usize::try_from(width).ok()?, usize::try_from(height).ok()?);
    let stride = w.checked_mul(4)?;
    let pixels = bytes.get(data..data.checked_add(stride.checked_mul(h)?)?)?;
    let mut alpha = Vec::with_capacity(w * h);
    for y in 0..h {
        let row = if top_down { y } else { h - 1 - y };
        alpha.extend(
            pixels[row * stride..(row + 1) * stride]
                .iter()
                .skip(3)
                .step_by(4),
        );
    }
    Some(alpha)
}

fn wide(width: u32, height: u32, samples: Vec<u16>, layout: Layout) -> Pixels {
    Pixels {
        data: samples.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        width,
        height,
        layout,
        depth: Depth::Sixteen,
    }
}

fn to_pixels(img: DynamicImage) -> Pixels {
    let (width, height) = (img.width(), img.height());
    if let DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) = img {
        return tone_map(img);
    }
    let (data, layout) = match img {
        DynamicImage::ImageLuma8(b) => (b.into_raw(), Layout::L),
        DynamicImage::ImageLumaA8(b) => (b.into_raw(), Layout::La),
        DynamicImage::ImageRgb8(b) => (b.into_raw(), Layout::Rgb),
        DynamicImage::ImageRgba8(b) => (b.into_raw(), Layout::Rgba),
        // 16-bit sources keep their precision through the resize (native-endian bytes).
        DynamicImage::ImageLuma16(b) => return wide(width, height, b.into_raw(), Layout::L),
        DynamicImage::ImageLumaA16(b) => return wide(width, height, b.into_raw(), Layout::La),
        DynamicImage::ImageRgb16(b) => return wide(width, height, b.into_raw(), Layout::Rgb),
        DynamicImage::ImageRgba16(b) => return wide(width, height, b.into_raw(), Layout::Rgba),
        other if other.color().has_alpha() => (other.to_rgba8().into_raw(), Layout::Rgba),
        other => (other.to_rgb8().into_raw(), Layout::Rgb),
    };
    Pixels {
        data,
        width,
        height,
        layout,
        depth: Depth::Eight,
    }
}

/// A floating-point image (Radiance HDR, OpenEXR: linear light, Rec. 709 primaries, 1.0 being
/// diffuse white) as 8-bit sRGB. Highlights above 1.0 are compressed with Reinhard's extended
/// operator, `x (1 + x / w²) / (1 + x)` per channel, whose white point `w` is the brightest
/// sample: the brightest sample becomes white, nothing is clipped, and an image that stays
/// within 0..1 (`w` = 1) is only encoded, unchanged. Negative and non-finite samples count as 0.
/// Alpha is linear coverage: clamped, not tone-mapped.
fn tone_map(img: DynamicImage) -> Pixels {
    let (width, height) = (img.width(), img.height());
    let has_alpha = img.color().has_alpha();
    let samples = img.into_rgba32f().into_raw();
    let clean = |v: f32| if v.is_finite() { v.max(0.0) } else { 0.0 };
    let white = samples
        .chunks_exact(4)
        .flat_map(|p| p[..3].iter().map(|&v| clean(v)))
        .fold(1.0f32, f32::max);
    let w2 = white * white;
    let encode = |v: f32| {
        let x = clean(v);
        let mapped = (x * (1.0 + x / w2) / (1.0 + x)).min(1.0);
        let srgb = if mapped <= 0.003_130_8 {
            12.92 * mapped
        } else {
            1.055 * mapped.powf(1.0 / 2.4) - 0.055
        };
        to_u8(srgb)
    };
    let channels = if has_alpha { 4 } else { 3 };
    let mut data = Vec::with_capacity(samples.len() / 4 * channels);
    for p in samples.chunks_exact(4) {
        data.extend(p[..3].iter().map(|&v| encode(v)));
        if has_alpha {
            data.push(to_u8(clean(p[3]).min(1.0)));
        }
    }
    Pixels {
        data,
        width,
        height,
        layout: if has_alpha { Layout::Rgba } else { Layout::Rgb },
        depth: Depth::Eight,
    }
}

/// A sample in 0..=1 as the nearest 8-bit value.
fn to_u8(v: f32) -> u8 {
    // In range by the clamp; the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let byte = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    byte
}

/// Bytes libjpeg-turbo holds for a progressive JPEG's coefficients: every scan refines the
/// whole image, so it keeps all DCT coefficients (2 bytes each, one per sample, at full size
/// whatever the output scale). 0 for a sequential JPEG, which is decoded a row of blocks at a
/// time.
pub fn jpeg_coefficient_bytes(bytes: &[u8], header: &Header) -> u64 {
    let Some(h) = header.jpeg else { return 0 };
    if !is_progressive(bytes) {
        return 0;
    }
    // Samples per pixel, in quarters: luma plus the subsampled chroma (CMYK: four full planes).
    let quarters: u64 = match (h.colorspace, h.subsamp) {
        (Colorspace::CMYK | Colorspace::YCCK, _) => 16,
        (_, Subsamp::Gray) => 4,
        (_, Subsamp::Sub2x2 | Subsamp::Sub4x1) => 6,
        (_, Subsamp::Sub2x1 | Subsamp::Sub1x2) => 8,
        _ => 12,
    };
    u64::from(header.width) * u64::from(header.height) * quarters / 4 * 2
}

/// True if the frame header (SOF) says progressive (SOF2, or SOF6/10/14).
fn is_progressive(bytes: &[u8]) -> bool {
    let mut at = 2;
    while let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) {
        match marker {
            0xFF => at += 1,
            0xC2 | 0xC6 | 0xCA | 0xCE => return true,
            0xC0 | 0xC1 | 0xC3 | 0xC5 | 0xC7 | 0xC9 | 0xCB | 0xCD | 0xCF | 0xDA => return false,
            _ => {
                let Some(len) = bytes.get(at + 2..at + 4) else {
                    return false;
                };
                at += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
    false
}

fn has_adobe_marker(bytes: &[u8]) -> bool {
    // APP14 "Adobe" appears in the first few KB when present.
    bytes[..bytes.len().min(64 * 1024)]
        .windows(7)
        .any(|w| w[0] == 0xFF && w[1] == 0xEE && &w[4..7] == b"Ado")
}

/// The EXIF orientation (1..=8) of an EXIF block; invalid or missing values count as 1.
pub fn exif_orientation(exif: &[u8]) -> u8 {
    metadata::orientation(exif).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Decodes `bytes` whole (one thread) at 1/`denom`, as RGB/grey/CMYK bytes.
    fn whole(bytes: &[u8], denom: usize) -> (Vec<u8>, PixelFormat, usize, (usize, usize)) {
        let mut d = Decompressor::new().unwrap();
        let h = d.read_header(bytes).unwrap();
        d.set_scaling_factor(ScalingFactor::new(1, denom)).unwrap();
        let (format, channels) = match h.colorspace {
            Colorspace::Gray => (PixelFormat::GRAY, 1),
            Colorspace::CMYK | Colorspace::YCCK => (PixelFormat::CMYK, 4),
            _ => (PixelFormat::RGB, 3),
        };
        let (w, ht) = (h.width.div_ceil(denom), h.height.div_ceil(denom));
        let mut data = vec![0u8; w * ht * channels];
        let image = turbojpeg::Image {
            pixels: data.as_mut_slice(),
            width: w,
            pitch: w * channels,
            height: ht,
            format,
        };
        d.decompress(bytes, image).unwrap();
        (data, format, channels, (w, ht))
    }

    #[test]
    fn restart_bands_decode_to_the_same_bytes_as_the_whole_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        for (file, min_bands) in [
            ("restart/landscape_420_rows.jpg", 4), // 4:2:0, one MCU row per interval
            ("restart/landscape_420_2mcus.jpg", 4), // intervals straddle rows (29 MCUs a row)
            ("restart/landscape_grey_5mcus.jpg", 4), // one component, 8x8 MCUs
            ("photos/cmyk_ycck_500x333_swop_icc.jpg", 4), // YCCK as its camera wrote it
        ] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let cuts = crate::pipeline::restart::Intervals::parse(&bytes).expect(file);
            assert!(
                cuts.bands(8).len() >= min_bands,
                "{file}: {:?}",
                cuts.bands(8)
            );
            for denom in [1, 2, 4, 8] {
                let (want, format, channels, size) = whole(&bytes, denom);
                let scaled = |x: u32| x / u32::try_from(denom).unwrap();
                for threads in [2, 3, 8] {
                    let got = decode_bands(&cuts, denom, format, channels, size, threads, scaled)
                        .unwrap_or_else(|| panic!("{file} 1/{denom} x{threads}: declined"));
                    assert!(got == want, "{file} 1/{denom} x{threads}: pixels differ");
                }
            }
        }
    }

    #[test]
    fn progressive_jpegs_count_their_whole_coefficient_buffer() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/photos");
        let size = |file: &str| {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let header = read_header(
                &bytes,
                Format::Jpeg,
                u64::MAX,
                &mut DecodeScratch::default(),
            )
            .unwrap();
            (jpeg_coefficient_bytes(&bytes, &header), header)
        };
        // 1280x800, 4:2:2: two samples per pixel, two bytes each.
        let (progressive, _) = size("colorful_cups_1280x800_progressive.jpg");
        assert_eq!(progressive, 1280 * 800 * 2 * 2);
        let (sequential, _) = size("dune_1680x1050_exif.jpg");
        assert_eq!(sequential, 0);
    }

    #[test]
    fn jpegs_without_restart_markers_are_not_split() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        for file in [
            "photos/dune_1680x1050_exif.jpg",
            "photos/colorful_cups_1280x800_progressive.jpg",
            "bad/baseline_jpeg_cut_at_40pct.jpg",
        ] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            assert!(
                crate::pipeline::restart::Intervals::parse(&bytes).is_none(),
                "{file}"
            );
        }
    }

    #[test]
    fn a_restart_file_cut_short_is_left_to_the_whole_file_decoder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let bytes = std::fs::read(dir.join("restart/landscape_420_rows.jpg")).unwrap();
        let cut = &bytes[..bytes.len() * 2 / 3];
        assert!(crate::pipeline::restart::Intervals::parse(cut).is_none());
        // A damaged interval (markers intact): the bands fail and the caller falls back.
        let mut broken = bytes.clone();
        let mid = broken.len() / 2;
        for b in &mut broken[mid..mid + 40] {
            if *b != 0xFF && *b != 0x00 {
                *b ^= 0x55;
            }
        }
        let header = Header::sized(450, 300, 3);
        let mut scratch = DecodeScratch::default();
        let one = decode_jpeg(&broken, &header, None, &mut scratch, 1);
        let many = decode_jpeg(&broken, &header, None, &mut scratch, 4);
        match (one, many) {
            (Ok(a), Ok(b)) => assert!(a.data == b.data),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("one thread: {:?}, four: {:?}", a.is_ok(), b.is_ok()),
        }
    }

    /// A photo-like picture: gradients with fine texture, so that every scan carries data.
    fn picture(w: usize, h: usize, channels: usize) -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    (0..channels).map(move |c| {
                        let v = (x * (3 + c) + y * (5 - c)) / 7
                            + ((x * y + 13 * c) % 23) * 3
                            + ((x ^ y) & 15);
                        u8::try_from(v % 256).unwrap()
                    })
                })
            })
            .collect()
    }

    /// `picture` encoded by libjpeg-turbo (presize's JPEG encoder) at quality 90.
    fn encoded(
        w: usize,
        h: usize,
        subsamp: Subsamp,
        progressive: bool,
        arithmetic: bool,
    ) -> Vec<u8> {
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        c.set_subsamp(subsamp).unwrap();
        c.set_progressive(progressive).unwrap();
        c.set_arithmetic(arithmetic).unwrap();
        let (format, channels) = match subsamp {
            Subsamp::Gray => (PixelFormat::GRAY, 1),
            _ => (PixelFormat::RGB, 3),
        };
        let pixels = picture(w, h, channels);
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * channels,
            height: h,
            format,
        };
        c.compress_to_vec(image).unwrap()
    }

    /// Decodes `bytes` at 1/8 through `decode_jpeg`, with or without leaving out scans; also
    /// returns the damage noted, if any.
    fn eighth(bytes: &[u8], all_scans: bool) -> (Result<Pixels, String>, Option<String>) {
        let mut scratch = DecodeScratch::default();
        scratch.set_all_scans(all_scans);
        let header = read_header(bytes, Format::Jpeg, u64::MAX, &mut scratch).unwrap();
        let min = (
            f64::from(header.width) / 8.0,
            f64::from(header.height) / 8.0,
        );
        let px = decode_jpeg(bytes, &header, Some(min), &mut scratch, 1);
        (px.map_err(|e| e.to_string()), scratch.take_damage())
    }

    /// Offsets of the SOS markers of `bytes` (enough for these test files, whose other
    /// segments hold no `FF DA`).
    fn scan_offsets(bytes: &[u8]) -> Vec<usize> {
        bytes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w == &[0xFF, 0xDA])
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn progressive_jpegs_decoded_from_their_needed_scans_match_the_full_decode() {
        let mut files = Vec::new();
        for subsamp in [
            Subsamp::Sub2x2,
            Subsamp::Sub2x1,
            Subsamp::None,
            Subsamp::Gray,
        ] {
            // Sizes off the MCU grid; the larger one needs more than one end-of-band run per
            // zero scan (more than 32767 blocks).
            for (w, h) in [(203, 157), (1700, 1300)] {
                let name = format!("{subsamp:?} {w}x{h}");
                files.push((name, encoded(w, h, subsamp, true, false)));
            }
        }
        // Another encoder's scan script (spectral selection only, one DC scan per component),
        // with restart markers in every scan.
        let mut other = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut other, 85);
        enc.set_progressive(true);
        enc.set_restart_interval(7);
        let (w, h) = (333u16, 250u16);
        let pixels = picture(usize::from(w), usize::from(h), 3);
        enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        files.push(("jpeg-encoder, restart markers".into(), other));

        for (name, bytes) in files {
            let cut = super::super::scans::needed_scans(&bytes, 8).expect(&name);
            assert!(
                cut.len() < bytes.len() * 3 / 4,
                "{name}: {} of {}",
                cut.len(),
                bytes.len()
            );
            // `whole` fails on any libjpeg-turbo warning, so the copy is a clean stream.
            let want = whole(&bytes, 8);
            assert!(
                whole(&cut, 8).0 == want.0,
                "{name}: the copy decodes differently"
            );
            let (fast, damage) = eighth(&bytes, false);
            let (full, _) = eighth(&bytes, true);
            assert!(damage.is_none(), "{name}: {damage:?}");
            assert!(
                fast.unwrap().data == full.unwrap().data,
                "{name}: pixels differ"
            );
            // Beyond 1/8 every scan is read.
            for denom in [1, 2, 4] {
                assert!(super::super::scans::needed_scans(&bytes, denom).is_none());
            }
        }
    }

    #[test]
    fn damage_in_a_left_out_scan_goes_unread() {
        // The path is observable this way: the full decode meets the damage, the copy does not.
        let mut bytes = encoded(800, 600, Subsamp::Sub2x1, true, false);
        let last = *scan_offsets(&bytes).last().unwrap(); // luma AC refinement
        let mid = (last + bytes.len()) / 2;
        bytes[mid..mid + 2].copy_from_slice(&[0xFF, 0xD3]); // a stray restart marker
        let (fast, fast_damage) = eighth(&bytes, false);
        let (full, full_damage) = eighth(&bytes, true);
        assert!(fast.is_ok() && fast_damage.is_none());
        assert!(full.is_err() || full_damage.is_some(), "{full_damage:?}");
    }

    #[test]
    fn baseline_arithmetic_and_cut_short_jpegs_are_decoded_whole() {
        let scans = super::super::scans::needed_scans;
        let baseline = encoded(400, 300, Subsamp::Sub2x2, false, false);
        assert!(scans(&baseline, 8).is_none(), "baseline");
        let arithmetic = encoded(400, 300, Subsamp::Sub2x2, true, true);
        assert!(scans(&arithmetic, 8).is_none(), "arithmetic");
        let progressive = encoded(400, 300, Subsamp::Sub2x1, true, false);
        let starts = scan_offsets(&progressive);
        // Cut inside the first AC scan, right after the DC scans, and a scan list that ends
        // early but properly (EOI after the last complete scan but one: the luma is short of
        // its last bit).
        let mut early_eoi = progressive[..*starts.last().unwrap()].to_vec();
        early_eoi.extend_from_slice(&[0xFF, 0xD9]);
        let odd = [
            progressive[..progressive.len() / 2].to_vec(),
            progressive[..starts[1]].to_vec(),
            early_eoi,
        ];
        for (n, bytes) in odd.iter().enumerate() {
            assert!(scans(bytes, 8).is_none(), "odd file {n}");
            // The same outcome as reading every scan, whatever it is: pixels, or an error.
            let (fast, fast_damage) = eighth(bytes, false);
            let (full, full_damage) = eighth(bytes, true);
            assert_eq!(fast_damage, full_damage, "odd file {n}");
            match (fast, full) {
                (Ok(a), Ok(b)) => assert!(a.data == b.data, "odd file {n}"),
                (a, b) => assert_eq!(a.err(), b.err(), "odd file {n}"),
            }
        }
    }

    #[test]
    fn shrink_keeps_at_least_the_minimum_size() {
        assert_eq!(jpeg_shrink(4032, 3024, Some((800.0, 600.0))), 4); // 1008x756
        assert_eq!(jpeg_shrink(6400, 4800, Some((800.0, 600.0))), 8); // exactly 800x600
        assert_eq!(jpeg_shrink(6401, 4800, Some((800.0, 600.0))), 8); // rounds up to 801
        assert_eq!(jpeg_shrink(1600, 1200, Some((900.0, 675.0))), 1);
        assert_eq!(jpeg_shrink(4000, 3000, None), 1);
    }

    #[test]
    fn cmyk_conversion_handles_adobe_inversion() {
        // Inverted (Adobe): 255 means no ink.
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255], true),
            vec![255, 255, 255]
        );
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255], false), vec![0, 0, 0]);
    }

    #[test]
    fn jpeg_metadata_reassembles_icc_chunks_in_order() {
        let mut jpeg = vec![0xFF, 0xD8];
        for (seq, payload) in [(2u8, b"world".as_slice()), (1, b"hello ".as_slice())] {
            let mut body = b"ICC_PROFILE\0".to_vec();
            body.extend([seq, 2]);
            body.extend_from_slice(payload);
            jpeg.extend([0xFF, 0xE2]);
            jpeg.extend(u16::try_from(body.len() + 2).unwrap().to_be_bytes());
            jpeg.extend(body);
        }
        jpeg.extend([0xFF, 0xDA, 0, 2]);
        let meta = metadata::read(&jpeg, Format::Jpeg);
        assert_eq!(meta.icc.as_deref(), Some(b"hello world".as_slice()));
        assert!(meta.exif.is_none());
    }

    #[test]
    fn bmp_readers_survive_every_truncation() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/realworld");
        for file in ["small.bmp", "rgb24prof2.bmp"] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            for len in 0..bytes.len() {
                let cut = &bytes[..len];
                let _ = bmp_fourth_bytes(cut, 16, 12);
                let _ = metadata::read(cut, Format::Bmp);
            }
        }
        let small = std::fs::read(dir.join("small.bmp")).unwrap();
        assert_eq!(bmp_fourth_bytes(&small, 16, 12).map(|a| a.len()), Some(192));
        assert_eq!(bmp_fourth_bytes(&small[..small.len() - 1], 16, 12), None);
        let profiled = std::fs::read(dir.join("rgb24prof2.bmp")).unwrap();
        assert_eq!(bmp_fourth_bytes(&profiled, 127, 64), None, "24-bit");
        assert_eq!(
            metadata::read(&profiled, Format::Bmp).icc.map(|p| p.len()),
            Some(540)
        );
        assert_eq!(metadata::read(&small, Format::Bmp).icc, None, "V3 header");
    }

    #[test]
    fn unpremultiplying_divides_colour_by_alpha_at_both_depths() {
        let px = Pixels {
            data: vec![40, 20, 51, 51, 9, 9, 9, 0, 7, 8, 9, 255, 200, 200, 200, 100],
            width: 4,
            height: 1,
            layout: Layout::Rgba,
            depth: Depth::Eight,
        };
        assert_eq!(
            unpremultiply(px).data,
            [200, 100, 255, 51, 0, 0, 0, 0, 7, 8, 9, 255, 255, 255, 255, 100]
        );
        let grey = Pixels {
            data: [1000u16, 2000, 0, 0, 30_000, 65_535]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect(),
            width: 3,
            height: 1,
            layout: Layout::La,
            depth: Depth::Sixteen,
        };
        let out: Vec<u16> = unpremultiply(grey)
            .data
            .chunks_exact(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(out, [32_768, 2000, 0, 0, 30_000, 65_535]);
    }

    #[test]
    fn a_png_read_past_its_checksums_has_the_pixels_of_the_intact_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/formats");
        // 16-bit grey, palette, interlaced 16-bit RGBA.
        for file in ["basn0g16.png", "basn3p08.png", "basi6a16.png"] {
            let good = std::fs::read(dir.join(file)).unwrap();
            let mut bad = good.clone();
            let at = bad.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
            let len = u32::from_be_bytes(bad[at..at + 4].try_into().unwrap()) as usize;
            bad[at + 8 + len] ^= 0xFF;
            let run = |bytes: &[u8], fail_on: FailOn| {
                let mut scratch = DecodeScratch::default();
                scratch.set_fail_on(fail_on);
                let header = read_header(bytes, Format::Png, u64::MAX, &mut scratch).unwrap();
                let px = decode(bytes, Format::Png, &header, None, u64::MAX, &mut scratch);
                (px, scratch.take_damage())
            };
            let (want, none) = run(&good, FailOn::Warning);
            let want = want.unwrap();
            assert_eq!(none, None);
            let (failed, _) = run(&bad, FailOn::Error);
            assert!(
                failed.unwrap_err().to_string().contains("CRC error"),
                "{file}"
            );
            let (got, warning) = run(&bad, FailOn::Truncated);
            let got = got.unwrap();
            assert!(warning.unwrap().starts_with("damaged PNG"), "{file}");
            assert_eq!(
                (got.width, got.height, got.layout, got.depth),
                (want.width, want.height, want.layout, want.depth),
                "{file}"
            );
            assert!(got.data == want.data, "{file}: pixels differ");
        }
    }

    #[test]
    fn libjpeg_messages_are_sorted_into_damage_and_fatal_errors() {
        let damage = |m: &str| jpeg_damage(&turbojpeg::Error::TurboJpegError(m.into()));
        assert_eq!(
            damage("Premature end of JPEG file"),
            Some(Damage::Truncated)
        );
        assert_eq!(
            damage("Corrupt JPEG data: bad Huffman code"),
            Some(Damage::Warning)
        );
        assert_eq!(
            damage("Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"),
            Some(Damage::Warning)
        );
        assert_eq!(damage("Unsupported marker type 0x12"), None);
        assert_eq!(damage("Invalid JPEG file structure: two SOI markers"), None);
        assert_eq!(jpeg_damage(&turbojpeg::Error::Null), None);
    }

    #[test]
    fn metadata_walk_survives_garbage() {
        let meta = metadata::read(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF], Format::Jpeg);
        assert!(meta.exif.is_none() && meta.icc.is_none());
    }
}
