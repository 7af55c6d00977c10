//! Encoding pixels to bytes, and writing them atomically.
//!
//! JPEG goes through libjpeg-turbo (about 8× faster than the pure-Rust encoder at 800 px, and
//! 4:2:0 chroma like every web tool); WebP through libwebp; PNG, GIF, TIFF and BMP through the
//! `image` crate. Outputs are written to a temporary file in the destination folder and renamed
//! over the final name only when complete, so no reader ever sees a truncated image.

use std::borrow::Cow;
use std::io::Cursor;

use image::codecs::{bmp::BmpEncoder, gif::GifEncoder, png::PngEncoder, tiff::TiffEncoder};
use image::{ExtendedColorType, ImageEncoder};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use super::pixels::{Depth, Layout, Pixels};
use crate::config::Settings;
use crate::error::JobError;
use crate::format::Format;
use crate::metadata::{self, Metadata};

/// Encoder state a worker keeps between images.
#[derive(Default)]
pub struct EncodeScratch {
    jpeg: Option<Compressor>,
}

/// An encoder's failure, as the file's error.
pub(crate) fn enc_err(format: Format, e: impl std::fmt::Display) -> JobError {
    JobError::Encode {
        format: format.display_name(),
        message: e.to_string(),
    }
}

/// Encodes `px` as `format`, embedding the metadata the format can carry: EXIF, XMP and ICC in
/// JPEG, PNG and WebP; ICC in TIFF; the print resolution in JPEG (JFIF), PNG (`pHYs`), TIFF and
/// BMP (WebP only through EXIF); nothing in GIF and AVIF. An ICC profile whose colour space does not
/// fit the pixels (a grey profile on colour pixels) is left out.
pub fn encode(
    px: &Pixels,
    format: Format,
    settings: &Settings,
    meta: &Metadata,
    scratch: &mut EncodeScratch,
) -> Result<Vec<u8>, JobError> {
    encode_at(
        px,
        format,
        settings.quality_for(format),
        settings,
        meta,
        scratch,
    )
}

/// [`encode`] at lossy quality `quality` (1-100) instead of the settings' own: the candidates
/// of `--quality auto` and `--max-bytes` (see `tune.rs`).
pub fn encode_at(
    px: &Pixels,
    format: Format,
    quality: u8,
    settings: &Settings,
    meta: &Metadata,
    scratch: &mut EncodeScratch,
) -> Result<Vec<u8>, JobError> {
    // 16 bits survive only into formats that hold them; everything else gets 8, after the
    // resize (never before).
    let narrowed;
    let px = if px.depth == Depth::Sixteen && !matches!(format, Format::Png | Format::Tiff) {
        narrowed = px.clone().into_8bit();
        &narrowed
    } else {
        px
    };
    let icc = meta.icc.as_deref().filter(|p| icc_matches(p, px.layout));
    let meta = Metadata {
        exif: meta.exif.clone(),
        xmp: meta.xmp.clone(),
        icc: icc.map(<[u8]>::to_vec),
        resolution: meta.resolution,
    };
    match format {
        Format::Jpeg => Ok(metadata::embed_jpeg(
            &encode_jpeg(px, quality, settings.progressive, scratch)?,
            &meta,
        )),
        Format::Png => encode_png(px, &meta),
        Format::Webp => encode_webp(px, quality, settings, &meta),
        Format::Gif => encode_gif(px),
        Format::Tiff => encode_tiff(px, &meta),
        Format::Bmp => encode_bmp(px, &meta),
        Format::Heic
        | Format::Ico
        | Format::Tga
        | Format::Pnm
        | Format::Qoi
        | Format::Hdr
        | Format::Exr
        | Format::Svg => Err(enc_err(
            format,
            format_args!("presize does not write {}", format.display_name()),
        )),
        // No profile: the make stage converts non-sRGB sources to sRGB before AVIF encoding
        // (see `make::encode_output`).
        Format::Avif => super::avif::encode_avif(px, quality, settings.effort.avif),
    }
}

fn encode_png(px: &Pixels, meta: &Metadata) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::new();
    let mut enc = PngEncoder::new(&mut out);
    if let Some(icc) = &meta.icc {
        // Not every build of the encoder supports ICC; the pixels are still right.
        let _ = enc.set_icc_profile(icc.clone());
    }
    enc.write_image(
        &px.data,
        px.width,
        px.height,
        color_type(px.layout, px.depth),
    )
    .map_err(|e| enc_err(Format::Png, e))?;
    Ok(metadata::embed_png(&out, meta))
}

/// `--effort png=N`: `png` (a whole PNG file) recompressed losslessly by oxipng at preset
/// `effort - 1` (capped at 6); effort 0 returns it unchanged. Chunks are kept (profile, EXIF,
/// resolution), and so is the colour of transparent pixels: the pixels decode identically.
/// oxipng returns its input when it cannot do better; an error it meets (none is expected on a
/// PNG this crate just wrote) also leaves the PNG as it was, since that file is valid.
pub(crate) fn optimise_png(png: Vec<u8>, effort: u8) -> Vec<u8> {
    if effort == 0 {
        return png;
    }
    let options = oxipng::Options::from_preset((effort - 1).min(6));
    match oxipng::optimize_from_memory(&png, &options) {
        Ok(smaller) if smaller.len() < png.len() => smaller,
        _ => png,
    }
}

fn encode_webp(
    px: &Pixels,
    quality: u8,
    settings: &Settings,
    meta: &Metadata,
) -> Result<Vec<u8>, JobError> {
    check_webp_size(px.width, px.height)?;
    let rgb;
    let (data, has_alpha) = match px.layout {
        Layout::Rgb => (&px.data, false),
        Layout::Rgba => (&px.data, true),
        Layout::L | Layout::La => {
            rgb = expand_grey(px);
            (&rgb.data, rgb.layout == Layout::Rgba)
        }
    };
    let enc = if has_alpha {
        webp::Encoder::from_rgba(data, px.width, px.height)
    } else {
        webp::Encoder::from_rgb(data, px.width, px.height)
    };
    let mut config = webp_config(settings)?;
    if !settings.lossless {
        config.quality = f32::from(quality);
    }
    let mem = enc
        .encode_advanced(&config)
        .map_err(|e| enc_err(Format::Webp, format!("{e:?}")))?;
    if mem.is_empty() {
        return Err(enc_err(Format::Webp, "libwebp returned no data"));
    }
    Ok(metadata::embed_webp(&mem, px.width, px.height, meta))
}

/// A lossy WebP of an 8-bit RGB or RGBA image at `quality`, with libwebp's defaults otherwise
/// and no metadata: the `lqip` placeholder.
pub(crate) fn encode_webp_plain(px: &Pixels, quality: f32) -> Result<Vec<u8>, JobError> {
    check_webp_size(px.width, px.height)?;
    let enc = match px.layout {
        Layout::Rgba => webp::Encoder::from_rgba(&px.data, px.width, px.height),
        Layout::Rgb => webp::Encoder::from_rgb(&px.data, px.width, px.height),
        Layout::L | Layout::La => return Err(enc_err(Format::Webp, "expected RGB or RGBA")),
    };
    let mem = enc
        .encode_simple(false, quality)
        .map_err(|e| enc_err(Format::Webp, format!("{e:?}")))?;
    Ok(mem.to_vec())
}

fn encode_gif(px: &Pixels) -> Result<Vec<u8>, JobError> {
    let mut rgba = px.rgba_samples();
    binarise_alpha(&mut rgba);
    let mut out = Vec::new();
    GifEncoder::new_with_speed(&mut out, 10)
        .encode(&rgba, px.width, px.height, ExtendedColorType::Rgba8)
        .map_err(|e| enc_err(Format::Gif, e))?;
    Ok(out)
}

fn encode_tiff(px: &Pixels, meta: &Metadata) -> Result<Vec<u8>, JobError> {
    let mut out = Cursor::new(Vec::new());
    // The TIFF encoder has no grey+alpha; everything else is written as it is.
    let (data, ct) = match px.layout {
        Layout::La => {
            let px8 = px.clone().into_8bit();
            (Cow::Owned(px8.rgba_samples()), ExtendedColorType::Rgba8)
        }
        other => (Cow::Borrowed(&px.data[..]), color_type(other, px.depth)),
    };
    let mut enc = TiffEncoder::new(&mut out);
    if let Some(icc) = &meta.icc {
        // EXIF and XMP are not written to TIFF (the encoder has no way to add tags).
        let _ = enc.set_icc_profile(icc.clone());
    }
    enc.write_image(&data, px.width, px.height, ct)
        .map_err(|e| enc_err(Format::Tiff, e))?;
    Ok(metadata::embed_tiff(
        &out.into_inner(),
        px.layout.has_alpha(),
        meta.resolution,
    ))
}

fn encode_bmp(px: &Pixels, meta: &Metadata) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::new();
    BmpEncoder::new(&mut out)
        .write_image(
            &px.data,
            px.width,
            px.height,
            color_type(px.layout, px.depth),
        )
        .map_err(|e| enc_err(Format::Bmp, e))?;
    Ok(metadata::embed_bmp(&out, meta.resolution))
}

/// GIF has only fully transparent pixels, and its encoder makes every pixel with any alpha at
/// all opaque: the faint fringe a resampled edge gets (alpha 1-5) would turn into a solid halo.
/// Cut at half instead, as ImageMagick does.
pub(crate) fn binarise_alpha(rgba: &mut [u8]) {
    for p in rgba.chunks_exact_mut(4) {
        if p[3] < 128 {
            p.copy_from_slice(&[0, 0, 0, 0]);
        } else {
            p[3] = 255;
        }
    }
}

/// The WebP bitstream stores 14-bit dimensions; libwebp (and its wrapper, which panics) refuse
/// anything larger.
pub(crate) fn check_webp_size(width: u32, height: u32) -> Result<(), JobError> {
    const WEBP_MAX: u32 = 16383;
    if width > WEBP_MAX || height > WEBP_MAX {
        return Err(enc_err(
            Format::Webp,
            format!(
                "{width}x{height} is larger than WebP allows ({WEBP_MAX}x{WEBP_MAX}); use a smaller size or another --format"
            ),
        ));
    }
    Ok(())
}

/// libwebp's settings for stills and animations alike: quality, lossless, and presize's effort
/// as libwebp's method 0-6 (default 4), capped.
pub(crate) fn webp_config(settings: &Settings) -> Result<webp::WebPConfig, JobError> {
    let mut config = webp::WebPConfig::new()
        .map_err(|()| enc_err(Format::Webp, "libwebp refused its config"))?;
    config.lossless = i32::from(settings.lossless);
    config.alpha_compression = i32::from(!settings.lossless);
    config.quality = if settings.lossless {
        75.0
    } else {
        f32::from(settings.quality.webp)
    };
    config.method = i32::from(settings.effort.webp.min(6));
    Ok(config)
}

fn color_type(layout: Layout, depth: Depth) -> ExtendedColorType {
    match (layout, depth) {
        (Layout::L, Depth::Eight) => ExtendedColorType::L8,
        (Layout::La, Depth::Eight) => ExtendedColorType::La8,
        (Layout::Rgb, Depth::Eight) => ExtendedColorType::Rgb8,
        (Layout::Rgba, Depth::Eight) => ExtendedColorType::Rgba8,
        (Layout::L, Depth::Sixteen) => ExtendedColorType::L16,
        (Layout::La, Depth::Sixteen) => ExtendedColorType::La16,
        (Layout::Rgb, Depth::Sixteen) => ExtendedColorType::Rgb16,
        (Layout::Rgba, Depth::Sixteen) => ExtendedColorType::Rgba16,
    }
}

fn expand_grey(px: &Pixels) -> Pixels {
    let (data, layout) = match px.layout {
        Layout::L => (
            px.data.iter().flat_map(|&g| [g, g, g]).collect(),
            Layout::Rgb,
        ),
        Layout::La => (
            px.data
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            Layout::Rgba,
        ),
        _ => (px.data.clone(), px.layout),
    };
    Pixels {
        data,
        width: px.width,
        height: px.height,
        layout,
        depth: Depth::Eight,
    }
}

/// Returns true if and only if the ICC profile's colour space fits the pixels (`RGB ` for
/// colour, `GRAY` for grey), so a CMYK or grey profile is never attached to the wrong data.
fn icc_matches(icc: &[u8], layout: Layout) -> bool {
    let Some(space) = icc.get(16..20) else {
        return false;
    };
    match layout {
        Layout::L | Layout::La => space == b"GRAY",
        Layout::Rgb | Layout::Rgba => space == b"RGB ",
    }
}

fn encode_jpeg(
    px: &Pixels,
    quality: u8,
    progressive: bool,
    scratch: &mut EncodeScratch,
) -> Result<Vec<u8>, JobError> {
    let err = |e: turbojpeg::Error| enc_err(Format::Jpeg, e);
    if scratch.jpeg.is_none() {
        scratch.jpeg = Some(Compressor::new().map_err(err)?);
    }
    let c = scratch.jpeg.as_mut().expect("initialised above");
    let (format, subsamp, channels) = match px.layout {
        Layout::L => (PixelFormat::GRAY, Subsamp::Gray, 1),
        Layout::Rgb => (PixelFormat::RGB, Subsamp::Sub2x2, 3),
        Layout::La | Layout::Rgba => {
            return Err(enc_err(
                Format::Jpeg,
                "alpha must be flattened before JPEG encoding",
            ));
        }
    };
    c.set_quality(i32::from(quality)).map_err(err)?;
    c.set_subsamp(subsamp).map_err(err)?;
    c.set_optimize(true).map_err(err)?;
    c.set_progressive(progressive).map_err(err)?;
    let width = px.width as usize;
    let image = turbojpeg::Image {
        pixels: px.data.as_slice(),
        width,
        pitch: width * channels,
        height: px.height as usize,
        format,
    };
    c.compress_to_vec(image).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_every_format_that_carries_it() {
        let px = Pixels {
            data: vec![128; 16 * 16 * 3],
            width: 16,
            height: 16,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        };
        let mut icc = vec![0u8; 70_000];
        icc[16..20].copy_from_slice(b"RGB ");
        icc[100] = 7;
        let settings = crate::config::settings_for_width(16);
        let meta = Metadata {
            exif: None,
            xmp: Some(b"<x:xmpmeta>hi</x:xmpmeta>".to_vec()),
            icc: Some(icc.clone()),
            resolution: None,
        };
        let mut scratch = EncodeScratch::default();
        let jpeg = encode(&px, Format::Jpeg, &settings, &meta, &mut scratch).unwrap();
        assert_eq!(
            metadata::read(&jpeg, Format::Jpeg),
            meta,
            "a 70 KB profile spans two APP2 segments"
        );
        let header = turbojpeg::read_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (16, 16));
        let webp = encode(&px, Format::Webp, &settings, &meta, &mut scratch).unwrap();
        assert_eq!(metadata::read(&webp, Format::Webp), meta);
        let png = encode(&px, Format::Png, &settings, &meta, &mut scratch).unwrap();
        assert_eq!(metadata::read(&png, Format::Png).xmp, meta.xmp);
    }

    #[test]
    fn a_cmyk_profile_is_not_attached_to_rgb_pixels() {
        let mut icc = vec![0u8; 200];
        icc[16..20].copy_from_slice(b"CMYK");
        assert!(!icc_matches(&icc, Layout::Rgb));
        icc[16..20].copy_from_slice(b"RGB ");
        assert!(icc_matches(&icc, Layout::Rgba));
        assert!(!icc_matches(&icc, Layout::L));
    }
}
