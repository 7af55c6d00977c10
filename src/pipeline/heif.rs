//! HEIC/HEIF and AVIF input through the system libheif (cargo feature `heif`).
//!
//! iPhone photos are HEIC (HEVC stills in a HEIF container), usually tagged Display P3; AVIF is
//! the same container around AV1. Both are decoded by libheif (Debian: `libheif-dev`), reached
//! through the `libheif-rs` binding, to 8-bit interleaved RGB or RGBA.
//!
//! Orientation: a HEIF file rotates and mirrors its image with `irot` and `imir` properties, and
//! libheif applies them (and any `clap` crop) while decoding, so the pixels come out as displayed
//! and the header reports the displayed size. The EXIF block may still carry an Orientation
//! tag (iPhones write one that describes the same rotation as `irot`); HEIF says it is
//! informative only, so presize must never apply it on top, or the photo is turned twice.
//!
//! The size is checked against the pixel limit from the container's `ispe` property before any
//! pixel is decoded. libheif 1.15 has no security-limits API of its own.

use std::sync::OnceLock;

use libheif_rs::{ColorSpace, HeifContext, HeifError, ImageHandle, ItemId, LibHeif, RgbChroma};

use crate::error::JobError;
use crate::format::Format;
use crate::pipeline::pixels::{Depth, Layout, Pixels};

/// A decoded HEIF/AVIF primary image with the metadata presize carries to its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeifImage {
    /// 8-bit pixels, already rotated/mirrored/cropped as the file says (`irot`, `imir`, `clap`).
    pub pixels: Pixels,
    /// The ICC profile of a `colr` box of type `prof` or `rICC`. `None` when the colour is only
    /// described by an `nclx` box (code points such as BT.709 or P3 primaries), or not at all.
    pub icc: Option<Vec<u8>>,
    /// The EXIF block, starting at its TIFF header (`II*\0` or `MM\0*`). Its Orientation tag,
    /// if any, must be ignored: libheif has applied the container's rotation already.
    pub exif: Option<Vec<u8>>,
    /// The XMP packet (a `mime` item of type `application/rdf+xml`), if any.
    pub xmp: Option<Vec<u8>>,
}

fn format_name(bytes: &[u8]) -> &'static str {
    if Format::sniff(bytes) == Some(Format::Avif) {
        "AVIF"
    } else {
        "HEIF"
    }
}

/// libheif's global state (plugin registry, colour-conversion tables). `heif_init` counts its
/// callers, so one instance kept for the life of the process means it is set up once, not per
/// image.
pub(crate) fn libheif() -> &'static LibHeif {
    static LIBHEIF: OnceLock<LibHeif> = OnceLock::new();
    LIBHEIF.get_or_init(LibHeif::new)
}

/// Sets libheif up now (it may load plugins from files): for the `--isolate` decoder process,
/// which can open no file once confined.
pub(crate) fn warm_up() {
    libheif();
}

fn decode_err(format: &'static str, e: &HeifError) -> JobError {
    let message = if e.message.is_empty() {
        format!("{:?} ({:?})", e.code, e.sub_code)
    } else {
        e.message.clone()
    };
    JobError::Decode { format, message }
}

/// Parses the container and returns the primary image's handle with its displayed size checked
/// against `max_pixels`. No pixel data is decoded yet.
fn open<'a>(
    bytes: &'a [u8],
    max_pixels: u64,
) -> Result<(HeifContext<'a>, ImageHandle, &'static str), JobError> {
    let format = format_name(bytes);
    let context = HeifContext::read_from_bytes(bytes).map_err(|e| decode_err(format, &e))?;
    let handle = context
        .primary_image_handle()
        .map_err(|e| decode_err(format, &e))?;
    let (width, height) = (handle.width(), handle.height());
    if width == 0 || height == 0 {
        return Err(JobError::Decode {
            format,
            message: "the primary image has no size (missing ispe property)".into(),
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(JobError::TooLarge {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    Ok((context, handle, format))
}

/// Reads only the container and returns the displayed (rotated) width and height of the
/// primary image. Fails on files libheif cannot parse; the pixel limit is not applied.
#[cfg(test)]
fn probe_heif(bytes: &[u8]) -> Result<(u32, u32), JobError> {
    let (_context, handle, _) = open(bytes, u64::MAX)?;
    Ok((handle.width(), handle.height()))
}

/// What the container says about the primary image, read without decoding any pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeifHeader {
    /// Displayed width (after `irot`/`clap`), the width [`decode_heif`] returns.
    pub width: u32,
    /// Displayed height.
    pub height: u32,
    /// Returns true if and only if the image has an alpha plane ([`Layout::Rgba`] on decode).
    pub has_alpha: bool,
    /// As [`HeifImage::icc`].
    pub icc: Option<Vec<u8>>,
    /// As [`HeifImage::exif`] (its Orientation tag must be ignored).
    pub exif: Option<Vec<u8>>,
    /// As [`HeifImage::xmp`].
    pub xmp: Option<Vec<u8>>,
}

/// Reads the primary image's size and metadata and checks the size against `max_pixels`, for
/// a pipeline that wants the header before it decides to decode.
pub(crate) fn read_heif_header(bytes: &[u8], max_pixels: u64) -> Result<HeifHeader, JobError> {
    let (_context, handle, _) = open(bytes, max_pixels)?;
    let (icc, exif, xmp) = metadata(&handle);
    Ok(HeifHeader {
        width: handle.width(),
        height: handle.height(),
        has_alpha: handle.has_alpha_channel(),
        icc,
        exif,
        xmp,
    })
}

type Meta = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// ICC, EXIF and XMP of the image.
fn metadata(handle: &ImageHandle) -> Meta {
    (
        handle.color_profile_raw().map(|p| p.data),
        metadata_block(handle, b"Exif", None).and_then(|b| exif_tiff(&b)),
        metadata_block(handle, b"mime", Some("application/rdf+xml")),
    )
}

/// Decodes the primary image of a HEIF/HEIC/AVIF file in memory to 8-bit RGB (RGBA when it has
/// an alpha plane), refusing it before decoding if it has more than `max_pixels` pixels.
pub(crate) fn decode_heif(bytes: &[u8], max_pixels: u64) -> Result<HeifImage, JobError> {
    let (mut context, handle, format) = open(bytes, max_pixels)?;
    // presize decodes one image per worker on every core already; libheif's own tile threads
    // would only compete with the other workers.
    context.set_max_decoding_threads(1);
    let (chroma, layout) = if handle.has_alpha_channel() {
        (RgbChroma::Rgba, Layout::Rgba)
    } else {
        (RgbChroma::Rgb, Layout::Rgb)
    };
    // No decoding options: the defaults apply irot/imir/clap and, for an interleaved 8-bit
    // chroma, reduce 10- and 12-bit images to 8 bits. (They must stay `None` with libheif-rs
    // 0.20: its `decode` frees `Some(options)` before libheif reads them, fixed in 1.0.1.)
    let image = libheif()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(|e| decode_err(format, &e))?;
    let planes = image.planes();
    let Some(plane) = planes.interleaved else {
        return Err(JobError::Decode {
            format,
            message: "libheif returned no interleaved RGB plane".into(),
        });
    };
    if plane.storage_bits_per_pixel != 8 * layout.channels() as u8 {
        return Err(JobError::Unsupported(format!(
            "{format} decoded to {} bits per pixel, expected {}",
            plane.storage_bits_per_pixel,
            8 * layout.channels()
        )));
    }
    let row = plane.width as usize * layout.channels();
    let rows = plane.height as usize;
    if row == 0 || plane.stride < row || plane.data.len() < plane.stride * rows {
        return Err(JobError::Decode {
            format,
            message: "libheif returned a plane smaller than its size".into(),
        });
    }
    let mut data = Vec::with_capacity(row * rows);
    for line in plane.data.chunks(plane.stride).take(rows) {
        data.extend_from_slice(&line[..row]);
    }
    let pixels = Pixels {
        data,
        width: plane.width,
        height: plane.height,
        layout,
        depth: Depth::Eight,
    };
    let (icc, exif, xmp) = metadata(&handle);
    Ok(HeifImage {
        pixels,
        icc,
        exif,
        xmp,
    })
}

/// The first metadata item of `item_type` (and MIME `content_type`) attached to the image.
fn metadata_block(
    handle: &ImageHandle,
    item_type: &[u8; 4],
    content_type: Option<&str>,
) -> Option<Vec<u8>> {
    let mut ids: [ItemId; 8] = [0; 8];
    let n = handle.metadata_block_ids(&mut ids, item_type);
    ids[..n.min(ids.len())]
        .iter()
        .filter(|&&id| content_type.is_none_or(|t| handle.metadata_content_type(id) == Some(t)))
        .find_map(|&id| handle.metadata(id).ok())
}

/// An `Exif` item starts with a 32-bit big-endian offset from its end to the TIFF header
/// (ISO/IEC 23008-12, A.2.1); what it skips is usually nothing or the JPEG-style `Exif\0\0`.
fn exif_tiff(item: &[u8]) -> Option<Vec<u8>> {
    let offset = u32::from_be_bytes(item.get(..4)?.try_into().ok()?) as usize;
    let tiff = item.get(4usize.checked_add(offset)?..)?;
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    matches!(tiff.get(..4), Some(b"II*\0" | b"MM\0*")).then(|| tiff.to_vec())
}

#[cfg(test)]
mod tests {
    //! Fixtures in `testdata/heif/` (see the README there for how each was made).

    use super::*;
    use crate::format::Format;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        std::fs::read(path.join(name)).expect("fixture")
    }

    fn decode_ok(name: &str) -> HeifImage {
        decode_heif(&fixture(&format!("heif/{name}")), u64::MAX).expect(name)
    }

    /// The reference image, decoded by the `image` crate to 8-bit RGB or RGBA.
    fn reference(name: &str, layout: Layout) -> Vec<u8> {
        let img = image::load_from_memory(&fixture(name)).expect(name);
        match layout {
            Layout::Rgba => img.into_rgba8().into_raw(),
            _ => img.into_rgb8().into_raw(),
        }
    }

    /// Mean absolute difference per sample.
    fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len(), "buffer sizes differ");
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| u64::from(x.abs_diff(y)))
            .sum();
        sum as f64 / a.len() as f64
    }

    fn assert_close_to(img: &HeifImage, source: &str, max_mean: f64) {
        let want = reference(source, img.pixels.layout);
        let diff = mean_abs_diff(&img.pixels.data, &want);
        eprintln!("mean |diff| to {source}: {diff:.2}");
        assert!(diff <= max_mean, "mean |diff| to {source} is {diff:.2}");
    }

    #[test]
    fn heic_decodes_to_rgb_close_to_its_source() {
        let img = decode_ok("cups_320x200_p3_exif.heic");
        assert_eq!((img.pixels.width, img.pixels.height), (320, 200));
        assert_eq!(img.pixels.layout, Layout::Rgb);
        assert_eq!(img.pixels.data.len(), 320 * 200 * 3);
        assert_close_to(&img, "heif/cups_320x200_p3_exif.jpg", 4.0);
    }

    #[test]
    fn avif_decodes_to_rgb_close_to_its_source() {
        let img = decode_ok("cups_320x200_p3_exif.avif");
        assert_eq!((img.pixels.width, img.pixels.height), (320, 200));
        assert_eq!(img.pixels.layout, Layout::Rgb);
        assert_close_to(&img, "heif/cups_320x200_p3_exif.jpg", 4.0);
    }

    #[test]
    fn heic_and_avif_carry_their_display_p3_icc_exif_and_xmp() {
        let jpeg = crate::metadata::read(&fixture("heif/cups_320x200_p3_exif.jpg"), Format::Jpeg);
        // The Display P3 profile the JPEG was tagged with before heif-enc copied it over.
        let p3 = jpeg.icc.clone().expect("source ICC");
        assert_eq!(&p3[36..40], b"acsp");
        for name in ["cups_320x200_p3_exif.heic", "cups_320x200_p3_exif.avif"] {
            let img = decode_ok(name);
            assert_eq!(img.icc.as_deref(), Some(&p3[..]), "{name}");
            let exif = img.exif.expect(name);
            assert!(matches!(&exif[..4], b"II*\0" | b"MM\0*"), "{name}");
            assert_eq!(Some(exif), jpeg.exif, "{name}: EXIF as in the source JPEG");
            // heif-enc 1.15 copies EXIF only, not XMP.
            assert_eq!(img.xmp, None, "{name}");
        }
    }

    #[test]
    fn header_matches_the_decoded_image_without_decoding() {
        for name in [
            "cups_320x200_p3_exif.heic",
            "transparency_300x300_alpha.avif",
            "landscape_450x300_irot270_exif6.heic",
        ] {
            let bytes = fixture(&format!("heif/{name}"));
            let header = read_heif_header(&bytes, u64::MAX).expect(name);
            let img = decode_heif(&bytes, u64::MAX).expect(name);
            assert_eq!(
                (header.width, header.height),
                (img.pixels.width, img.pixels.height),
                "{name}"
            );
            assert_eq!(header.has_alpha, img.pixels.layout.has_alpha(), "{name}");
            assert_eq!(
                (header.icc, header.exif, header.xmp),
                (img.icc, img.exif, img.xmp),
                "{name}"
            );
        }
        let bytes = fixture("heif/landscape_450x300_irot270_exif6.heic");
        assert!(matches!(
            read_heif_header(&bytes, 450 * 300 - 1),
            Err(JobError::TooLarge {
                width: 450,
                height: 300,
                ..
            })
        ));
    }

    #[test]
    fn avif_with_alpha_decodes_to_rgba_and_nclx_gives_no_icc() {
        let img = decode_ok("transparency_300x300_alpha.avif");
        assert_eq!((img.pixels.width, img.pixels.height), (300, 300));
        assert_eq!(img.pixels.layout, Layout::Rgba);
        let want = reference("photos/transparency_rgba8.png", Layout::Rgba);
        let alpha = |px: &[u8]| px.chunks_exact(4).map(|p| p[3]).collect::<Vec<u8>>();
        let (got_a, want_a) = (alpha(&img.pixels.data), alpha(&want));
        assert!(want_a.contains(&0) && want_a.contains(&255));
        assert!(mean_abs_diff(&got_a, &want_a) < 2.0, "alpha plane differs");
        assert_eq!(img.icc, None, "an nclx colour box is not an ICC profile");
        assert_eq!(img.exif, None);
    }

    #[test]
    fn irot_is_applied_and_the_exif_orientation_is_left_as_stored() {
        let bytes = fixture("heif/landscape_450x300_irot270_exif6.heic");
        // Stored 300x450; the irot property turns it into the upright 450x300 landscape.
        assert_eq!(probe_heif(&bytes).expect("probe"), (450, 300));
        let img = decode_heif(&bytes, u64::MAX).expect("decode");
        assert_eq!((img.pixels.width, img.pixels.height), (450, 300));
        // Landscape_1 shows the same scene with no rotation at all: once irot is applied the
        // pixels match it; turned by the EXIF tag once more they could not even be compared.
        assert_close_to(&img, "orientation/Landscape_1.jpg", 6.0);
        let exif = img.exif.expect("exif");
        let reader = exif::Reader::new();
        let parsed = reader.read_raw(exif).expect("TIFF");
        let orientation = parsed
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .and_then(|f| f.value.get_uint(0));
        assert_eq!(
            orientation,
            Some(6),
            "the tag is returned as stored, to be ignored"
        );
    }

    #[test]
    fn ten_bit_heic_is_reduced_to_eight_bits() {
        let img = decode_ok("leaf_64x40_10bit.heic");
        assert_eq!((img.pixels.width, img.pixels.height), (64, 40));
        assert_eq!(img.pixels.layout, Layout::Rgb);
        // 4.95: heif-convert's own 16-bit output is as far (MAE 0.0195 of full scale) from the
        // source; a shift by the wrong number of bits would be off by far more.
        assert_close_to(&img, "heif/leaf_64x40_10bit_source.png", 5.5);
    }

    #[test]
    fn over_the_pixel_limit_is_refused_before_decoding() {
        let bytes = fixture("heif/cups_320x200_p3_exif.heic");
        match decode_heif(&bytes, 320 * 200 - 1) {
            Err(JobError::TooLarge {
                width: 320,
                height: 200,
                pixels: 64_000,
                limit: 63_999,
            }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(
            decode_heif(&bytes, 320 * 200).is_ok(),
            "the limit itself is allowed"
        );
    }

    #[test]
    fn garbage_and_truncated_files_are_errors_not_panics() {
        let heic = fixture("heif/cups_320x200_p3_exif.heic");
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"hello, world".to_vec(),
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(),
            heic[..heic.len() / 10].to_vec(),
            heic[..heic.len() / 2].to_vec(),
            heic[..heic.len() - 100].to_vec(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let err = decode_heif(bytes, u64::MAX).expect_err(&format!("case {i}"));
            assert!(
                matches!(err, JobError::Decode { format: "HEIF", .. }),
                "case {i}: {err:?}"
            );
            assert!(probe_heif(bytes).is_err() || i >= 4, "case {i}");
        }
        let avif = fixture("heif/cups_320x200_p3_exif.avif");
        match decode_heif(&avif[..avif.len() / 2], u64::MAX) {
            Err(JobError::Decode { format, .. }) => assert_eq!(format, "AVIF"),
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn sniff_recognises_heif_and_avif_brands_only() {
        for name in [
            "cups_320x200_p3_exif.heic",
            "cups_320x200_p3_exif.avif",
            "transparency_300x300_alpha.avif",
        ] {
            let want = if name.ends_with(".avif") {
                Format::Avif
            } else {
                Format::Heic
            };
            assert_eq!(
                Format::sniff(&fixture(&format!("heif/{name}"))[..16]),
                Some(want)
            );
        }
        let sniff = |head: &[u8]| Format::sniff(head);
        assert_eq!(sniff(b"\0\0\0\x1cftypmif1\0\0\0\0"), Some(Format::Heic));
        assert_eq!(sniff(b"\0\0\0\x1cftypheix"), Some(Format::Heic));
        assert_eq!(sniff(b"\0\0\0\x1cftypavis"), Some(Format::Avif));
        // An MP4 video, a QuickTime movie, too short, and a JPEG.
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\x02\0"), None);
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  "), None);
        assert_eq!(sniff(b"\0\0\0\x1cftyphei"), None);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Some(Format::Jpeg));
    }

    #[test]
    fn exif_item_offset_header_is_stripped() {
        assert_eq!(
            exif_tiff(b"\0\0\0\0MM\0*\0\0\0\x08"),
            Some(b"MM\0*\0\0\0\x08".to_vec())
        );
        assert_eq!(
            exif_tiff(b"\0\0\0\x06Exif\0\0II*\0\x08\0\0\0"),
            Some(b"II*\0\x08\0\0\0".to_vec())
        );
        // The JPEG-style prefix without an offset that says so is tolerated as well.
        assert_eq!(exif_tiff(b"\0\0\0\0Exif\0\0II*\0"), Some(b"II*\0".to_vec()));
        assert_eq!(exif_tiff(b"\0\0\0\x40II*\0"), None, "offset past the end");
        assert_eq!(exif_tiff(b"\xFF\xFF\xFF\xFFII*\0"), None);
        assert_eq!(exif_tiff(b"\0\0\0\0<xml>"), None);
        assert_eq!(exif_tiff(b"\0\0"), None);
    }
}
