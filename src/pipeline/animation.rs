//! `--animated`: animated GIF, WebP and APNG resized frame by frame, keeping timing and loops.
//!
//! Without `--animated` (or when the output format cannot animate) the still pipeline runs and
//! the first frame is used. With it, [`resize_animation`] decodes every frame through the `image`
//! crate's `AnimationDecoder`s, which hand out each frame already composited onto the full
//! canvas (disposal and blending applied), resizes each with [`resize::resize`] and encodes the
//! lot as an animated GIF (`image`'s encoder, full frames) or an animated WebP (libwebp's
//! `WebPAnimEncoder`, which computes its own sub-rectangles and disposal again, and merges a
//! frame identical to the one before into a longer previous frame). So the source's disposal
//! methods are not copied, but what is shown at every moment is kept.
//!
//! Loop counts are read from the container here rather than from the decoders: the `image`
//! crate reports a GIF without a NETSCAPE2.0 extension (play once) as looping forever. Counts
//! are kept as "plays in all", converting GIF's "extra loops" the way libwebp's gif2webp does.
//! The frame count is read from the container too, so that an animation whose decoded size would
//! be a bomb is refused before a single frame is decoded.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Delay, Frame, Frames, RgbaImage};

use super::decode::image_err;
use super::encode::{binarise_alpha, check_webp_size, enc_err, webp_config};
use super::pixels::{Depth, Layout, Pixels};
use super::resize::{self, ResizeScratch};
use crate::config::Settings;
use crate::error::JobError;
use crate::format::Format;
use crate::geometry::{Geometry, Rect};

/// How many times an animation plays in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plays {
    /// Loops forever.
    Forever,
    /// Plays this many times (at least once), then stops on its last frame.
    Times(u32),
}

/// What the container says about an animation, read without decoding any pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnimationInfo {
    /// The canvas every frame is composited onto.
    pub canvas: (u32, u32),
    /// How many frames the file holds (1 for a still image).
    pub frames: u32,
    /// How many times it plays.
    pub plays: Plays,
}

/// Reads the canvas, frame count and loop count of a GIF, WebP or PNG (APNG); `None` for other
/// formats or when the header itself is unreadable. A truncated file reports the frames seen.
pub(crate) fn inspect(bytes: &[u8], format: Format) -> Option<AnimationInfo> {
    match format {
        Format::Gif => inspect_gif(bytes),
        Format::Webp => inspect_webp(bytes),
        Format::Png => inspect_png(bytes),
        _ => None,
    }
}

/// Returns true if and only if `--animated` can write `format` as an animation.
pub(crate) fn can_animate(format: Format) -> bool {
    matches!(format, Format::Gif | Format::Webp)
}

/// Resizes every frame of an animated `input` to `geometry` (crop, size and, for `--fit
/// contain`, the padded canvas) and encodes them as an animated `output`, keeping each frame's
/// delay and the loop count.
///
/// Returns `Ok(None)` when the still path should run instead: the input has a single frame, is
/// not GIF, WebP or PNG, or `output` cannot animate (JPEG, PNG, TIFF, BMP, AVIF: their first
/// frame is what the still path writes). The geometry is applied in stored orientation; EXIF
/// orientation is not applied to animations. Metadata (EXIF, XMP, ICC) is not carried over.
pub(crate) fn resize_animation(
    bytes: &[u8],
    input: Format,
    output: Format,
    geometry: &Geometry,
    settings: &Settings,
    scratch: &mut ResizeScratch,
) -> Result<Option<Vec<u8>>, JobError> {
    if !can_animate(output) {
        return Ok(None);
    }
    let Some(info) = inspect(bytes, input).filter(|a| a.frames > 1) else {
        return Ok(None);
    };
    let out_size = geometry.output_size();
    let limit = Limit {
        canvas: info.canvas,
        output: out_size,
        max_pixels: settings.max_pixels,
    };
    limit.check(info.frames)?;

    let mut frames: Vec<(Pixels, u32)> = Vec::new();
    let mut canvas: Option<(u32, u32)> = None;
    for frame in decode_frames(bytes, input)? {
        let frame = frame.map_err(|e| image_err(input, e))?;
        let delay = delay_ms(frame.delay(), input, output);
        let buffer = frame.into_buffer();
        let size = buffer.dimensions();
        if *canvas.get_or_insert(size) != size {
            // Composited frames all have the canvas size; anything else is a decoder surprise
            // that would make the output frames disagree.
            return Err(JobError::Decode {
                format: input.display_name(),
                message: format!(
                    "animation frames differ in size ({}x{} after {}x{})",
                    size.0,
                    size.1,
                    canvas.map_or(0, |c| c.0),
                    canvas.map_or(0, |c| c.1)
                ),
            });
        }
        // The container's own count may understate what the decoder produces: check as we go.
        let decoded = u32::try_from(frames.len() + 1).unwrap_or(u32::MAX);
        Limit {
            canvas: size,
            ..limit
        }
        .check(decoded)?;
        let px = Pixels {
            data: buffer.into_raw(),
            width: size.0,
            height: size.1,
            layout: Layout::Rgba,
            depth: Depth::Eight,
        };
        let crop = Rect {
            width: geometry.crop.width.min(f64::from(size.0)),
            height: geometry.crop.height.min(f64::from(size.1)),
            ..geometry.crop
        };
        let mut px = resize::resize(px, crop, geometry.size, settings.filter, scratch)?;
        if let Some(canvas) = geometry.canvas {
            px = resize::pad(px, canvas, settings.background);
        }
        frames.push((px, delay));
    }
    if frames.len() < 2 {
        // The decoder found fewer frames than the container promised: a still after all.
        return Ok(None);
    }
    let encoded = match output {
        Format::Gif => encode_gif(frames, info.plays)?,
        _ => encode_webp(&frames, out_size, info.plays, settings)?,
    };
    Ok(Some(encoded))
}

/// The decompression-bomb guard for animations: decoding costs a full canvas per frame, so the
/// canvas times the frame count (and the output size times it, which is held in memory until
/// encoded) must stay within `--max-pixels`.
#[derive(Debug, Clone, Copy)]
struct Limit {
    canvas: (u32, u32),
    output: (u32, u32),
    max_pixels: u64,
}

impl Limit {
    fn check(self, frames: u32) -> Result<(), JobError> {
        let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
        let (w, h) = if area(self.output) > area(self.canvas) {
            self.output
        } else {
            self.canvas
        };
        let total = area((w, h)).saturating_mul(u64::from(frames));
        if total > self.max_pixels {
            return Err(JobError::Unsupported(format!(
                "animation of {frames} frames of {w}x{h} is {total} pixels in all, over the limit of {} (raise it with --max-pixels, or leave out --animated to keep the first frame)",
                self.max_pixels
            )));
        }
        Ok(())
    }
}

fn decode_frames(bytes: &[u8], format: Format) -> Result<Frames<'_>, JobError> {
    let cursor = Cursor::new(bytes);
    let frames = match format {
        Format::Gif => GifDecoder::new(cursor).map(AnimationDecoder::into_frames),
        Format::Webp => WebPDecoder::new(cursor).and_then(|mut d| {
            // image-webp clears a frame marked "dispose to background" only when a background
            // colour has been set; without one it leaves the frame on the canvas. Transparent
            // is what libwebp's own decoder and browsers clear to.
            d.set_background_color(image::Rgba([0, 0, 0, 0]))?;
            Ok(d.into_frames())
        }),
        Format::Png => PngDecoder::new(cursor)
            .and_then(PngDecoder::apng)
            .map(AnimationDecoder::into_frames),
        other => {
            return Err(JobError::Unsupported(format!(
                "{} cannot hold an animation",
                other.display_name()
            )))
        }
    };
    frames.map_err(|e| image_err(format, e))
}

/// A frame's delay in whole milliseconds. A GIF delay of 0 or 10 ms going to WebP becomes
/// 100 ms, as browsers play it and as libwebp's gif2webp converts it; WebP players would
/// otherwise run such frames flat out.
fn delay_ms(delay: Delay, input: Format, output: Format) -> u32 {
    let (numer, denom) = delay.numer_denom_ms();
    let denom = u64::from(denom.max(1));
    let ms = u32::try_from((u64::from(numer) + denom / 2) / denom).unwrap_or(u32::MAX);
    if input == Format::Gif && output == Format::Webp && ms <= 10 {
        100
    } else {
        ms
    }
}

fn encode_gif(frames: Vec<(Pixels, u32)>, plays: Plays) -> Result<Vec<u8>, JobError> {
    let err = |e| enc_err(Format::Gif, e);
    let mut out = Vec::new();
    {
        // Speed 10, as for still GIFs: NeuQuant's slowest settings cost seconds per frame.
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        match plays {
            Plays::Forever => encoder.set_repeat(Repeat::Infinite).map_err(err)?,
            // No NETSCAPE2.0 extension: every player plays it once.
            Plays::Times(0 | 1) => {}
            Plays::Times(n) => {
                let extra = u16::try_from(n - 1).unwrap_or(u16::MAX);
                encoder.set_repeat(Repeat::Finite(extra)).map_err(err)?;
            }
        }
        for (mut px, ms) in frames {
            binarise_alpha(&mut px.data);
            let buffer = RgbaImage::from_raw(px.width, px.height, px.data)
                .ok_or_else(|| enc_err(Format::Gif, "frame buffer has the wrong length"))?;
            // GIF counts hundredths of a second and the encoder truncates: round instead.
            let ms = ms.saturating_add(5) / 10 * 10;
            let frame = Frame::from_parts(buffer, 0, 0, Delay::from_numer_denom_ms(ms, 1));
            encoder.encode_frame(frame).map_err(err)?;
        }
    }
    Ok(out)
}

fn encode_webp(
    frames: &[(Pixels, u32)],
    (width, height): (u32, u32),
    plays: Plays,
    settings: &Settings,
) -> Result<Vec<u8>, JobError> {
    let format = Format::Webp;
    check_webp_size(width, height)?;
    // The same encoder settings as a still WebP.
    let config = webp_config(settings)?;

    let mut encoder = webp::AnimEncoder::new(width, height, &config);
    encoder.set_loop_count(match plays {
        Plays::Forever => 0,
        Plays::Times(n) => i32::try_from(n.clamp(1, 65535)).unwrap_or(65535),
    });
    let mut timestamp: i32 = 0;
    let mut total: u64 = 0;
    for (px, ms) in frames {
        if (px.width, px.height) != (width, height)
            || px.data.len() != px.width as usize * px.height as usize * 4
        {
            // libwebp reads `width * height * 4` bytes whatever the slice holds.
            return Err(enc_err(format, "frame does not match the animation's size"));
        }
        encoder.add_frame(webp::AnimFrame::from_rgba(
            &px.data, width, height, timestamp,
        ));
        timestamp = timestamp.saturating_add(i32::try_from(*ms).unwrap_or(i32::MAX));
        total += u64::from(*ms);
    }
    let encoded = encoder
        .try_encode()
        .map_err(|e| enc_err(format, format!("{e:?}")))?;
    if encoded.is_empty() {
        return Err(enc_err(format, "libwebp returned no data"));
    }
    let mut out = encoded.to_vec();
    set_last_duration(&mut out, total);
    Ok(out)
}

/// Gives the last ANMF frame of an encoded WebP animation the duration that makes the whole
/// animation last `total` ms. The `webp` crate closes the animation with a timestamp of 0,
/// which libwebp rejects, so libwebp gives the last frame the average duration instead. Every
/// other frame's duration is exact (identical consecutive frames are merged into one whose
/// duration is their sum), so the last one is the remainder.
fn set_last_duration(webp: &mut [u8], total: u64) {
    let anmf: Vec<usize> = riff_chunks(webp)
        .filter(|c| &c.fourcc == b"ANMF" && c.len >= 16)
        .map(|c| c.payload)
        .collect();
    let Some((&last, others)) = anmf.split_last() else {
        return;
    };
    let before: u64 = others.iter().map(|&p| u64::from(le24(webp, p + 12))).sum();
    let Some(rest) = total.checked_sub(before).filter(|&d| d < 1 << 24) else {
        return;
    };
    let d = u32::try_from(rest).unwrap_or(0).to_le_bytes();
    webp[last + 12..last + 15].copy_from_slice(&d[..3]);
}

// ----- Container parsing: a few fixed fields, every read bounds-checked. -----

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le24(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 3) {
        Some(&[x, y, z]) => u32::from_le_bytes([x, y, z, 0]),
        _ => 0,
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes of a GIF colour table announced by a packed flags byte.
fn colour_table_len(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    }
}

/// The position after a chain of GIF data sub-blocks starting at `pos`, or `None` if it runs
/// past the end.
fn skip_sub_blocks(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let size = usize::from(*b.get(pos)?);
        pos += 1;
        if size == 0 {
            return Some(pos);
        }
        pos += size;
    }
}

fn inspect_gif(b: &[u8]) -> Option<AnimationInfo> {
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return None;
    }
    let canvas = (u32::from(le16(b, 6)?), u32::from(le16(b, 8)?));
    let mut pos = 13 + colour_table_len(*b.get(10)?);
    let mut frames = 0u32;
    // The NETSCAPE2.0 (or ANIMEXTS1.0) application extension's loop count: extra loops after
    // the first play, 0 for forever.
    let mut extra_loops: Option<u16> = None;
    while let Some(&introducer) = b.get(pos) {
        let next = match introducer {
            0x21 => {
                let label = b.get(pos + 1).copied();
                let blocks = pos + 2;
                if label == Some(0xFF) && extra_loops.is_none() {
                    extra_loops = netscape_loops(b, blocks);
                }
                skip_sub_blocks(b, blocks)
            }
            0x2C => {
                frames += 1;
                // Image descriptor (10 bytes), local colour table, LZW code size, data.
                match b.get(pos + 9) {
                    Some(&packed) => skip_sub_blocks(b, pos + 10 + colour_table_len(packed) + 1),
                    None => None,
                }
            }
            // The trailer (0x3B), or garbage where decoders stop as well.
            _ => None,
        };
        match next {
            Some(next) => pos = next,
            None => break,
        }
    }
    let plays = match extra_loops {
        None => Plays::Times(1),
        Some(0) => Plays::Forever,
        Some(n) => Plays::Times(u32::from(n) + 1),
    };
    Some(AnimationInfo {
        canvas,
        frames,
        plays,
    })
}

/// The loop count of an application extension whose sub-blocks start at `at`, if it is the
/// NETSCAPE2.0 one: an 11-byte identifier block, then `[3, 1, lo, hi]`.
fn netscape_loops(b: &[u8], at: usize) -> Option<u16> {
    let id = b.get(at..at + 12)?;
    if id[0] != 11 || !(&id[1..] == b"NETSCAPE2.0" || &id[1..] == b"ANIMEXTS1.0") {
        return None;
    }
    match b.get(at + 12..at + 14)? {
        [size, 1] if *size >= 3 => le16(b, at + 14),
        _ => None,
    }
}

/// One chunk of a RIFF file: its four-character code, where its payload starts, and how long
/// it says it is (clamped to the file).
struct Chunk {
    fourcc: [u8; 4],
    payload: usize,
    len: usize,
}

/// The top-level chunks of a RIFF WebP file, stopping at the first that runs past the end.
fn riff_chunks(b: &[u8]) -> impl Iterator<Item = Chunk> + '_ {
    let mut pos = 12;
    std::iter::from_fn(move || {
        let fourcc: [u8; 4] = b.get(pos..pos + 4)?.try_into().ok()?;
        let len = u32::from_le_bytes(b.get(pos + 4..pos + 8)?.try_into().ok()?) as usize;
        let payload = pos + 8;
        if payload.checked_add(len)? > b.len() {
            pos = b.len();
            return None;
        }
        // Chunks are padded to an even length.
        pos = payload + len + (len & 1);
        Some(Chunk {
            fourcc,
            payload,
            len,
        })
    })
}

fn inspect_webp(b: &[u8]) -> Option<AnimationInfo> {
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut canvas = None;
    let mut animated = false;
    let mut frames = 0u32;
    let mut plays = Plays::Times(1);
    for chunk in riff_chunks(b) {
        let p = chunk.payload;
        match &chunk.fourcc {
            b"VP8X" if chunk.len >= 10 => {
                animated = b[p] & 0x02 != 0;
                canvas = Some((le24(b, p + 4) + 1, le24(b, p + 7) + 1));
            }
            b"ANIM" if chunk.len >= 6 => {
                plays = match le16(b, p + 4)? {
                    0 => Plays::Forever,
                    n => Plays::Times(u32::from(n)),
                };
            }
            b"ANMF" => frames += 1,
            // A simple (VP8/VP8L) file: a still; its size is not needed here.
            b"VP8 " | b"VP8L" if canvas.is_none() => canvas = Some((0, 0)),
            _ => {}
        }
    }
    Some(AnimationInfo {
        canvas: canvas?,
        frames: if animated { frames } else { 1 },
        plays,
    })
}

fn inspect_png(b: &[u8]) -> Option<AnimationInfo> {
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return None;
    }
    let mut pos = 8;
    let mut canvas = None;
    let mut plays = None;
    let mut frames = 0u32;
    while let (Some(len), Some(kind)) = (be32(b, pos), b.get(pos + 4..pos + 8)) {
        let data = pos + 8;
        match kind {
            b"IHDR" => canvas = Some((be32(b, data)?, be32(b, data + 4)?)),
            b"acTL" => {
                plays = Some(match be32(b, data + 4)? {
                    0 => Plays::Forever,
                    n => Plays::Times(n),
                });
            }
            // One frame control chunk per animation frame (the default image counts only when
            // an fcTL precedes it).
            b"fcTL" => frames += 1,
            b"IEND" => break,
            _ => {}
        }
        match data.checked_add(len as usize + 4) {
            Some(next) if next <= b.len() => pos = next,
            _ => break,
        }
    }
    Some(AnimationInfo {
        canvas: canvas?,
        frames: if plays.is_some() { frames } else { 1 },
        plays: plays.unwrap_or(Plays::Times(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    const MIXED: &[u8] = include_bytes!("../../testdata/formats/anim_mixed-disposal.gif");
    const STILL_GIF: &[u8] = include_bytes!("../../testdata/formats/simple_sample_1.gif");
    const STILL_WEBP: &[u8] = include_bytes!("../../testdata/formats/lossy_simple-rgb.webp");

    fn whole(src: (u32, u32), size: (u32, u32)) -> Geometry {
        Geometry {
            crop: Rect {
                left: 0.0,
                top: 0.0,
                width: f64::from(src.0),
                height: f64::from(src.1),
            },
            size,
            canvas: None,
        }
    }

    fn settings() -> Settings {
        crate::config::settings_for_width(16)
    }

    fn run(
        bytes: &[u8],
        input: Format,
        output: Format,
        geometry: &Geometry,
    ) -> Result<Option<Vec<u8>>, JobError> {
        resize_animation(
            bytes,
            input,
            output,
            geometry,
            &settings(),
            &mut ResizeScratch::default(),
        )
    }

    /// Every frame of an animation as an independent decoder sees it: pixels and delay in ms.
    fn frames_of(bytes: &[u8], format: Format) -> Vec<(RgbaImage, u32)> {
        decode_frames(bytes, format)
            .unwrap()
            .map(|f| {
                let f = f.unwrap();
                let (n, d) = f.delay().numer_denom_ms();
                (f.into_buffer(), n / d)
            })
            .collect()
    }

    /// Distinct solid-colour frames with a moving white square, so no two frames are alike.
    fn synthetic(width: u32, height: u32, count: u32) -> Vec<Pixels> {
        (0..count)
            .map(|i| {
                let base = [(i * 70 % 256) as u8, (255 - i * 50 % 256) as u8, 90, 255];
                let data = (0..height)
                    .flat_map(|y| (0..width).map(move |x| (x, y)))
                    .flat_map(|(x, y)| {
                        let square = x / 8 == i && y < 8;
                        if square {
                            [255, 255, 255, 255]
                        } else {
                            base
                        }
                    })
                    .collect();
                Pixels {
                    data,
                    width,
                    height,
                    layout: Layout::Rgba,
                    depth: Depth::Eight,
                }
            })
            .collect()
    }

    /// An animated WebP made with the same encoder presize uses, checked below by decoding.
    fn webp_fixture(delays: &[u32], plays: Plays) -> Vec<u8> {
        let frames: Vec<(Pixels, u32)> = synthetic(48, 32, delays.len() as u32)
            .into_iter()
            .zip(delays.iter().copied())
            .collect();
        let mut s = settings();
        s.lossless = true;
        encode_webp(&frames, (48, 32), plays, &s).unwrap()
    }

    /// An APNG built chunk by chunk from PNG-encoded frames (the `image` crate cannot write one).
    fn apng_fixture(delays_ms: &[u16], plays: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(&crc.finalize().to_be_bytes());
        }
        let (w, h) = (40u32, 24u32);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut seq = 0u32;
        for (i, px) in synthetic(w, h, delays_ms.len() as u32).iter().enumerate() {
            let mut png = Vec::new();
            PngEncoder::new(&mut png)
                .write_image(&px.data, w, h, ExtendedColorType::Rgba8)
                .unwrap();
            let mut idat = Vec::new();
            let mut pos = 8;
            while pos < png.len() {
                let len = be32(&png, pos).unwrap() as usize;
                let kind = &png[pos + 4..pos + 8];
                let data = &png[pos + 8..pos + 8 + len];
                if i == 0 && kind == b"IHDR" {
                    chunk(&mut out, b"IHDR", data);
                    let mut actl = (delays_ms.len() as u32).to_be_bytes().to_vec();
                    actl.extend_from_slice(&plays.to_be_bytes());
                    chunk(&mut out, b"acTL", &actl);
                }
                if kind == b"IDAT" {
                    idat.extend_from_slice(data);
                }
                pos += len + 12;
            }
            let mut fctl = seq.to_be_bytes().to_vec();
            seq += 1;
            for v in [w, h, 0, 0] {
                fctl.extend_from_slice(&v.to_be_bytes());
            }
            fctl.extend_from_slice(&delays_ms[i].to_be_bytes());
            fctl.extend_from_slice(&1000u16.to_be_bytes());
            fctl.extend_from_slice(&[0, 0]);
            chunk(&mut out, b"fcTL", &fctl);
            if i == 0 {
                chunk(&mut out, b"IDAT", &idat);
            } else {
                let mut fdat = seq.to_be_bytes().to_vec();
                seq += 1;
                fdat.extend_from_slice(&idat);
                chunk(&mut out, b"fdAT", &fdat);
            }
        }
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// Largest difference of any channel between two RGBA images, premultiplied.
    fn max_diff(a: &RgbaImage, b: &RgbaImage) -> Option<u32> {
        a.as_raw()
            .chunks_exact(4)
            .zip(b.as_raw().chunks_exact(4))
            .flat_map(|(x, y)| premultiplied(x).zip(premultiplied(y)))
            .map(|(x, y)| x.abs_diff(y))
            .max()
    }

    fn premultiplied(p: &[u8]) -> impl Iterator<Item = u32> {
        let a = u32::from(p[3]);
        [0, 1, 2]
            .map(|i| u32::from(p[i]) * a / 255)
            .into_iter()
            .chain([a])
    }

    /// Mean absolute difference per channel between two RGBA images of the same size, on
    /// premultiplied values: the colour under a transparent pixel is anyone's guess.
    fn mean_diff(a: &RgbaImage, b: &RgbaImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let sum: u32 = a
            .as_raw()
            .chunks_exact(4)
            .zip(b.as_raw().chunks_exact(4))
            .flat_map(|(x, y)| premultiplied(x).zip(premultiplied(y)))
            .map(|(x, y)| x.abs_diff(y))
            .sum();
        f64::from(sum) / a.as_raw().len() as f64
    }

    /// Asserts that libwebp's own decoder (the reference) sees the same frames and timing as
    /// image-webp, which the other checks use.
    fn assert_libwebp_agrees(webp: &[u8]) {
        let ours = frames_of(webp, Format::Webp);
        let reference = webp::AnimDecoder::new(webp).decode().unwrap();
        assert_eq!(reference.len(), ours.len());
        let mut end = 0;
        for (i, (img, delay)) in ours.iter().enumerate() {
            let frame = reference.get_frame(i).unwrap();
            end += *delay as i32;
            // libwebp reports when each frame ends.
            assert_eq!(frame.get_time_ms(), end, "frame {i}");
            let reference =
                RgbaImage::from_raw(img.width(), img.height(), frame.get_image().to_vec()).unwrap();
            let worst = max_diff(&reference, img);
            assert!(worst <= Some(2), "frame {i}: {worst:?}");
        }
    }

    /// Asserts that each output frame resembles its own input frame more than any other, so
    /// frames were neither dropped, repeated nor reordered.
    fn assert_in_order(frames: &[(RgbaImage, u32)], expected: &[RgbaImage]) {
        assert_eq!(frames.len(), expected.len());
        for (i, (img, _)) in frames.iter().enumerate() {
            let nearest = (0..expected.len()).min_by(|&a, &b| {
                mean_diff(img, &expected[a]).total_cmp(&mean_diff(img, &expected[b]))
            });
            assert_eq!(nearest, Some(i), "frame {i}");
        }
    }

    /// Each input frame resized directly, for comparing with what came out of the animation.
    fn expected_frames(bytes: &[u8], format: Format, size: (u32, u32)) -> Vec<RgbaImage> {
        frames_of(bytes, format)
            .into_iter()
            .map(|(img, _)| {
                let (w, h) = img.dimensions();
                let px = Pixels {
                    data: img.into_raw(),
                    width: w,
                    height: h,
                    layout: Layout::Rgba,
                    depth: Depth::Eight,
                };
                let out = resize::resize(
                    px,
                    whole((w, h), size).crop,
                    size,
                    settings().filter,
                    &mut ResizeScratch::default(),
                )
                .unwrap();
                RgbaImage::from_raw(out.width, out.height, out.data).unwrap()
            })
            .collect()
    }

    #[test]
    fn inspect_reads_canvas_frames_and_loops() {
        assert_eq!(
            inspect(MIXED, Format::Gif),
            Some(AnimationInfo {
                canvas: (32, 32),
                frames: 5,
                plays: Plays::Forever,
            })
        );
        assert_eq!(inspect(STILL_GIF, Format::Gif).map(|a| a.frames), Some(1));
        assert_eq!(inspect(STILL_WEBP, Format::Webp).map(|a| a.frames), Some(1));
        assert!(inspect(STILL_WEBP, Format::Webp).is_none_or(|a| a.frames == 1));
        assert!(inspect(MIXED, Format::Gif).is_some_and(|a| a.frames > 1));
        let webp = webp_fixture(&[40, 120, 250], Plays::Times(3));
        assert_eq!(
            inspect(&webp, Format::Webp),
            Some(AnimationInfo {
                canvas: (48, 32),
                frames: 3,
                plays: Plays::Times(3),
            })
        );
        let apng = apng_fixture(&[50, 150], 0);
        assert_eq!(
            inspect(&apng, Format::Png),
            Some(AnimationInfo {
                canvas: (40, 24),
                frames: 2,
                plays: Plays::Forever,
            })
        );
        assert_eq!(inspect(b"not an image", Format::Gif), None);
    }

    #[test]
    fn inspect_never_panics_on_truncated_files() {
        let webp = webp_fixture(&[40, 120], Plays::Forever);
        let apng = apng_fixture(&[50, 150], 2);
        for (bytes, format) in [
            (MIXED, Format::Gif),
            (&webp[..], Format::Webp),
            (&apng[..], Format::Png),
        ] {
            for end in 0..bytes.len() {
                let info = inspect(&bytes[..end], format);
                assert!(info.map_or(0, |a| a.frames) <= inspect(bytes, format).unwrap().frames);
            }
        }
    }

    #[test]
    fn the_webp_fixture_has_the_timing_it_was_given() {
        // Checks the fixture (and the last-frame duration fix) with image-webp's decoder.
        let webp = webp_fixture(&[40, 120, 250, 70], Plays::Times(3));
        let frames = frames_of(&webp, Format::Webp);
        let delays: Vec<u32> = frames.iter().map(|f| f.1).collect();
        assert_eq!(delays, [40, 120, 250, 70]);
        let expected = synthetic(48, 32, 4);
        for ((img, _), px) in frames.iter().zip(&expected) {
            // Lossless, but image-webp blends sub-frames with libwebp's approximate arithmetic.
            let worst = img
                .as_raw()
                .iter()
                .zip(&px.data)
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(worst <= Some(1), "{worst:?}");
        }
    }

    #[test]
    fn gif_to_gif_resizes_every_frame_keeping_delays_and_loops() {
        let out = run(MIXED, Format::Gif, Format::Gif, &whole((32, 32), (16, 16)))
            .unwrap()
            .expect("animated");
        let frames = frames_of(&out, Format::Gif);
        assert_eq!(frames.len(), 5);
        let expected = expected_frames(MIXED, Format::Gif, (16, 16));
        for ((img, delay), want) in frames.iter().zip(&expected) {
            assert_eq!(img.dimensions(), (16, 16));
            assert_eq!(*delay, 1000);
            // Edges lose their partial transparency in GIF; the rest matches.
            assert!(mean_diff(img, want) < 10.0, "{}", mean_diff(img, want));
        }
        assert_in_order(&frames, &expected);
        assert_eq!(inspect(&out, Format::Gif).unwrap().plays, Plays::Forever);
    }

    #[test]
    fn gif_to_webp_keeps_frames_delays_and_loops() {
        let out = run(MIXED, Format::Gif, Format::Webp, &whole((32, 32), (20, 20)))
            .unwrap()
            .expect("animated");
        assert_eq!(&out[..4], b"RIFF");
        let frames = frames_of(&out, Format::Webp);
        assert_eq!(frames.len(), 5);
        let expected = expected_frames(MIXED, Format::Gif, (20, 20));
        for ((img, delay), want) in frames.iter().zip(&expected) {
            assert_eq!(img.dimensions(), (20, 20));
            assert_eq!(*delay, 1000);
            assert!(mean_diff(img, want) < 12.0, "{}", mean_diff(img, want));
        }
        assert_in_order(&frames, &expected);
        assert_eq!(inspect(&out, Format::Webp).unwrap().plays, Plays::Forever);
        // libwebp disposes some of these frames to the background: decode_frames must clear
        // them as libwebp's decoder does.
        assert_libwebp_agrees(&out);
    }

    #[test]
    fn webp_to_gif_keeps_delays_and_play_count() {
        let webp = webp_fixture(&[40, 120, 250, 70], Plays::Times(3));
        let out = run(&webp, Format::Webp, Format::Gif, &whole((48, 32), (24, 16)))
            .unwrap()
            .expect("animated");
        let frames = frames_of(&out, Format::Gif);
        let delays: Vec<u32> = frames.iter().map(|f| f.1).collect();
        assert_eq!(delays, [40, 120, 250, 70]);
        assert!(frames.iter().all(|f| f.0.dimensions() == (24, 16)));
        let expected = expected_frames(&webp, Format::Webp, (24, 16));
        for ((img, _), want) in frames.iter().zip(&expected) {
            assert!(mean_diff(img, want) < 6.0, "{}", mean_diff(img, want));
        }
        assert_in_order(&frames, &expected);
        // Three plays in all is GIF's "loop twice more".
        assert_eq!(inspect(&out, Format::Gif).unwrap().plays, Plays::Times(3));
    }

    #[test]
    fn webp_to_webp_keeps_every_delay_including_the_last() {
        let webp = webp_fixture(&[40, 120, 250, 70, 500], Plays::Times(2));
        let out = run(
            &webp,
            Format::Webp,
            Format::Webp,
            &whole((48, 32), (30, 20)),
        )
        .unwrap()
        .expect("animated");
        let frames = frames_of(&out, Format::Webp);
        let delays: Vec<u32> = frames.iter().map(|f| f.1).collect();
        assert_eq!(delays, [40, 120, 250, 70, 500]);
        assert_libwebp_agrees(&out);
        assert!(frames.iter().all(|f| f.0.dimensions() == (30, 20)));
        assert_eq!(inspect(&out, Format::Webp).unwrap().plays, Plays::Times(2));
    }

    #[test]
    fn gif_loop_counts_round_trip() {
        let gif = |repeat: Option<Repeat>| {
            let mut out = Vec::new();
            {
                let mut enc = GifEncoder::new(&mut out);
                if let Some(r) = repeat {
                    enc.set_repeat(r).unwrap();
                }
                for px in synthetic(32, 16, 3) {
                    let buffer = RgbaImage::from_raw(32, 16, px.data).unwrap();
                    let delay = Delay::from_numer_denom_ms(30, 1);
                    enc.encode_frame(Frame::from_parts(buffer, 0, 0, delay))
                        .unwrap();
                }
            }
            out
        };
        let has_netscape = |b: &[u8]| b.windows(11).any(|w| w == b"NETSCAPE2.0");
        for (repeat, plays) in [
            (None, Plays::Times(1)),
            (Some(Repeat::Finite(2)), Plays::Times(3)),
            (Some(Repeat::Infinite), Plays::Forever),
        ] {
            let input = gif(repeat);
            assert_eq!(inspect(&input, Format::Gif).unwrap().plays, plays);
            let out = run(&input, Format::Gif, Format::Gif, &whole((32, 16), (16, 8)))
                .unwrap()
                .expect("animated");
            assert_eq!(inspect(&out, Format::Gif).unwrap().plays, plays);
            assert_eq!(has_netscape(&out), repeat.is_some(), "{plays:?}");
            let webp = run(&input, Format::Gif, Format::Webp, &whole((32, 16), (16, 8)))
                .unwrap()
                .expect("animated");
            assert_eq!(inspect(&webp, Format::Webp).unwrap().plays, plays);
            let delays: Vec<u32> = frames_of(&webp, Format::Webp).iter().map(|f| f.1).collect();
            assert_eq!(delays, [30, 30, 30]);
        }
    }

    #[test]
    fn identical_frames_merge_in_webp_keeping_the_total_time() {
        let [a, b]: [Pixels; 2] = synthetic(16, 16, 2).try_into().unwrap();
        let mut input = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut input);
            for (px, ms) in [(a.clone(), 100), (a, 200), (b, 300)] {
                let buffer = RgbaImage::from_raw(16, 16, px.data).unwrap();
                let delay = Delay::from_numer_denom_ms(ms, 1);
                enc.encode_frame(Frame::from_parts(buffer, 0, 0, delay))
                    .unwrap();
            }
        }
        let geometry = whole((16, 16), (8, 8));
        let webp = run(&input, Format::Gif, Format::Webp, &geometry)
            .unwrap()
            .unwrap();
        // libwebp encodes a frame identical to the one before as a longer previous frame.
        let delays: Vec<u32> = frames_of(&webp, Format::Webp).iter().map(|f| f.1).collect();
        assert_eq!(delays, [300, 300]);
        assert_libwebp_agrees(&webp);
        let gif = run(&input, Format::Gif, Format::Gif, &geometry)
            .unwrap()
            .unwrap();
        let delays: Vec<u32> = frames_of(&gif, Format::Gif).iter().map(|f| f.1).collect();
        assert_eq!(delays, [100, 200, 300], "GIF keeps every frame");
    }

    #[test]
    fn short_gif_delays_become_100_ms_in_webp() {
        let mut input = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut input);
            for (px, ms) in synthetic(16, 16, 2).into_iter().zip([0, 10]) {
                let buffer = RgbaImage::from_raw(16, 16, px.data).unwrap();
                enc.encode_frame(Frame::from_parts(
                    buffer,
                    0,
                    0,
                    Delay::from_numer_denom_ms(ms, 1),
                ))
                .unwrap();
            }
        }
        let geometry = whole((16, 16), (8, 8));
        let webp = run(&input, Format::Gif, Format::Webp, &geometry)
            .unwrap()
            .unwrap();
        let delays: Vec<u32> = frames_of(&webp, Format::Webp).iter().map(|f| f.1).collect();
        assert_eq!(delays, [100, 100]);
        let gif = run(&input, Format::Gif, Format::Gif, &geometry)
            .unwrap()
            .unwrap();
        let delays: Vec<u32> = frames_of(&gif, Format::Gif).iter().map(|f| f.1).collect();
        assert_eq!(delays, [0, 10], "GIF to GIF keeps the delays as they are");
    }

    #[test]
    fn apng_becomes_an_animated_webp_or_gif() {
        let apng = apng_fixture(&[50, 150, 300], 4);
        let expected = expected_frames(&apng, Format::Png, (20, 12));
        assert_eq!(expected.len(), 3);
        for output in [Format::Webp, Format::Gif] {
            let out = run(&apng, Format::Png, output, &whole((40, 24), (20, 12)))
                .unwrap()
                .expect("animated");
            let frames = frames_of(&out, output);
            let delays: Vec<u32> = frames.iter().map(|f| f.1).collect();
            assert_eq!(delays, [50, 150, 300], "{output:?}");
            if output == Format::Webp {
                assert_libwebp_agrees(&out);
            }
            for ((img, _), want) in frames.iter().zip(&expected) {
                assert!(mean_diff(img, want) < 6.0, "{}", mean_diff(img, want));
            }
            assert_in_order(&frames, &expected);
            assert_eq!(inspect(&out, output).unwrap().plays, Plays::Times(4));
        }
        // PNG output cannot animate here: the still path writes the first frame.
        assert_eq!(
            run(&apng, Format::Png, Format::Png, &whole((40, 24), (20, 12))).unwrap(),
            None
        );
    }

    #[test]
    fn stills_and_still_only_outputs_are_left_to_the_still_path() {
        let g = whole((32, 32), (16, 16));
        assert_eq!(run(STILL_GIF, Format::Gif, Format::Gif, &g).unwrap(), None);
        assert_eq!(run(STILL_GIF, Format::Gif, Format::Webp, &g).unwrap(), None);
        assert_eq!(
            run(STILL_WEBP, Format::Webp, Format::Webp, &g).unwrap(),
            None
        );
        for output in [Format::Jpeg, Format::Png, Format::Tiff, Format::Bmp] {
            assert_eq!(run(MIXED, Format::Gif, output, &g).unwrap(), None);
        }
        let jpeg = include_bytes!("../../testdata/formats/png_data_named.jpg");
        assert_eq!(run(jpeg, Format::Jpeg, Format::Gif, &g).unwrap(), None);
    }

    #[test]
    fn contain_pads_every_frame_with_transparency() {
        let geometry = Geometry {
            canvas: Some((16, 24)),
            ..whole((32, 32), (16, 16))
        };
        let out = run(MIXED, Format::Gif, Format::Gif, &geometry)
            .unwrap()
            .expect("animated");
        let frames = frames_of(&out, Format::Gif);
        assert_eq!(frames.len(), 5);
        for (img, _) in &frames {
            assert_eq!(img.dimensions(), (16, 24));
            // Four rows of padding above and below, fully transparent.
            assert!((0..16).all(|x| img.get_pixel(x, 0)[3] == 0 && img.get_pixel(x, 23)[3] == 0));
        }
    }

    #[test]
    fn an_animation_over_the_pixel_limit_is_refused() {
        let g = whole((32, 32), (16, 16));
        let mut s = settings();
        s.max_pixels = 32 * 32 * 5 - 1;
        let err = resize_animation(
            MIXED,
            Format::Gif,
            Format::Gif,
            &g,
            &s,
            &mut ResizeScratch::default(),
        )
        .unwrap_err();
        assert!(matches!(err, JobError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("5 frames of 32x32"), "{err}");
        s.max_pixels = 32 * 32 * 5;
        let ok = resize_animation(
            MIXED,
            Format::Gif,
            Format::Gif,
            &g,
            &s,
            &mut ResizeScratch::default(),
        );
        assert!(ok.unwrap().is_some());
    }

    #[test]
    fn a_truncated_animation_fails_as_data() {
        let cut = &MIXED[..MIXED.len() - 60];
        let result = run(cut, Format::Gif, Format::Gif, &whole((32, 32), (16, 16)));
        assert!(matches!(result, Err(JobError::Decode { .. })), "{result:?}");
    }
}
