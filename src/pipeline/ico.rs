//! ICO/CUR input: which of the icon's images is read, and the decoding of its bitmap entries.
//!
//! An icon holds several images; presize reads the largest, then the deepest, then the first
//! listed (as ImageMagick, and so libvips, does). Sizes and depths come from each entry's own
//! header: the directory's bytes say 0 for 256 and larger, and often 0 bits per pixel.
//!
//! PNG entries go to the PNG decoder (any colour type). Bitmap entries are decoded here: the
//! `image` crate's ICO decoder (0.25) picks the last of equal entries, refuses PNG entries that
//! are not RGBA, and lets the 1-bit AND mask blank a 32-bit image whose own alpha says
//! otherwise (issue #13). The rule here is Windows' and the browsers': a 32-bit entry with any
//! non-zero alpha byte uses its alpha and ignores the mask; any other entry is transparent where
//! its mask bit is 1. Compressed or bit-field bitmaps (rare in icons) are left to the `image`
//! crate's decoder by returning `None` from [`select`].

use crate::error::JobError;
use crate::pipeline::pixels::{Depth, Layout, Pixels};

/// The image of an icon that presize reads.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry<'a> {
    /// A whole PNG file.
    Png(&'a [u8]),
    /// An uncompressed Windows bitmap (header, palette, colour rows, mask rows).
    Dib(Dib<'a>),
}

/// An uncompressed bitmap entry, its header already checked.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Dib<'a> {
    /// The entry's bytes, from its header on.
    pub(super) data: &'a [u8],
    /// Width in pixels.
    pub(super) width: u32,
    /// Height in pixels (half the header's, which counts the mask rows too).
    pub(super) height: u32,
    bits: u16,
    /// Where the colour rows start: after the header and the palette.
    rows_at: usize,
    /// Palette entries (bits ≤ 8).
    colours: usize,
    bottom_up: bool,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The entry to read: `Ok(None)` when the chosen entry is a bitmap this module does not decode
/// (compressed, bit fields, unusual depth), so the caller falls back to the `image` crate.
pub(super) fn select(bytes: &[u8]) -> Result<Option<Entry<'_>>, JobError> {
    let broken = |message: &str| JobError::Decode {
        format: "ICO",
        message: message.into(),
    };
    let count = le_u16(bytes, 4).ok_or_else(|| broken("no icon directory"))?;
    let mut best: Option<((u64, u16), Option<Entry<'_>>)> = None;
    for i in 0..usize::from(count) {
        let at = 6 + 16 * i;
        let (Some(len), Some(offset)) = (le_u32(bytes, at + 8), le_u32(bytes, at + 12)) else {
            break; // the directory is cut short: the entries before still count
        };
        let Some(data) = usize::try_from(offset).ok().and_then(|o| {
            let end = o.checked_add(usize::try_from(len).ok()?)?;
            // A last entry whose length overshoots the file keeps what is there.
            bytes.get(o..end.min(bytes.len()))
        }) else {
            continue;
        };
        let Some((rank, entry)) = rank(data) else {
            continue;
        };
        // Strictly greater: on a tie the entry listed first stays.
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, entry));
        }
    }
    best.map(|(_, entry)| entry)
        .ok_or_else(|| broken("the icon holds no readable image"))
}

/// An entry's (pixel count, bits per pixel) and what to decode it with; `None` for an entry
/// whose header cannot be read at all.
fn rank(data: &[u8]) -> Option<((u64, u16), Option<Entry<'_>>)> {
    if data.starts_with(PNG_SIGNATURE) {
        let ihdr = data.get(16..26)?;
        let width = u32::from_be_bytes(ihdr[0..4].try_into().ok()?);
        let height = u32::from_be_bytes(ihdr[4..8].try_into().ok()?);
        let channels = match ihdr[9] {
            0 | 3 => 1, // grey, palette
            4 => 2,
            2 => 3,
            _ => 4,
        };
        let bits = u16::from(ihdr[8]) * channels;
        return Some((
            (u64::from(width) * u64::from(height), bits),
            Some(Entry::Png(data)),
        ));
    }
    let header = le_u32(data, 0)?;
    let width = le_u32(data, 4)?.cast_signed();
    let double_height = le_u32(data, 8)?.cast_signed();
    let bits = le_u16(data, 14)?;
    if header < 40 || width <= 0 || double_height == 0 {
        return None;
    }
    let width = width.unsigned_abs();
    let height = double_height.unsigned_abs() / 2;
    let rank = (u64::from(width) * u64::from(height), bits);
    let compression = le_u32(data, 16)?;
    if compression != 0 || !matches!(bits, 1 | 4 | 8 | 24 | 32) || height == 0 {
        return Some((rank, None));
    }
    let colours = match le_u32(data, 32)? {
        0 if bits <= 8 => 1 << bits,
        n if bits <= 8 => usize::try_from(n).ok()?.min(1 << bits),
        _ => 0,
    };
    let dib = Dib {
        data,
        width,
        height,
        bits,
        rows_at: usize::try_from(header).ok()?.checked_add(4 * colours)?,
        colours,
        bottom_up: double_height > 0,
    };
    Some((rank, Some(Entry::Dib(dib))))
}

/// Bytes per row of `width` pixels of `bits` each, padded to four bytes.
fn stride(width: u32, bits: u16) -> usize {
    (usize::try_from(width).expect("u32 fits usize") * usize::from(bits)).div_ceil(32) * 4
}

/// Decodes a bitmap entry to 8-bit RGBA.
pub(super) fn decode_dib(dib: &Dib<'_>) -> Result<Pixels, JobError> {
    let (w, h) = (dib.width as usize, dib.height as usize);
    let colour_stride = stride(dib.width, dib.bits);
    let rows = dib
        .data
        .get(dib.rows_at..)
        .and_then(|d| d.get(..colour_stride.checked_mul(h)?))
        .ok_or_else(|| JobError::Decode {
            format: "ICO",
            message: "the icon's bitmap is cut short".into(),
        })?;
    let palette = &dib.data[dib.rows_at - 4 * dib.colours..dib.rows_at];
    let mut data = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        let stored = if dib.bottom_up { h - 1 - y } else { y };
        let row = &rows[stored * colour_stride..(stored + 1) * colour_stride];
        for x in 0..w {
            let bgra = match dib.bits {
                32 => [row[4 * x], row[4 * x + 1], row[4 * x + 2], row[4 * x + 3]],
                24 => [row[3 * x], row[3 * x + 1], row[3 * x + 2], 255],
                bits => {
                    let per_byte = 8 / usize::from(bits);
                    let shift = 8 - usize::from(bits) * (x % per_byte + 1);
                    let index = usize::from(row[x / per_byte] >> shift) & ((1 << bits) - 1);
                    // An index past the palette is black, as Windows draws it.
                    let c = palette.get(4 * index..4 * index + 3).unwrap_or(&[0, 0, 0]);
                    [c[0], c[1], c[2], 255]
                }
            };
            data.extend_from_slice(&[bgra[2], bgra[1], bgra[0], bgra[3]]);
        }
    }
    let own_alpha = dib.bits == 32 && data.chunks_exact(4).any(|p| p[3] != 0);
    if !own_alpha {
        apply_mask(dib, &mut data, rows.len());
    }
    Ok(Pixels {
        data,
        width: dib.width,
        height: dib.height,
        layout: Layout::Rgba,
        depth: Depth::Eight,
    })
}

/// Alpha from the AND mask that follows the colour rows: 1 is transparent. A missing or
/// cut-short mask leaves the pixels opaque (32-bit entries, whose fourth bytes were all 0,
/// become opaque too).
fn apply_mask(dib: &Dib<'_>, rgba: &mut [u8], colour_len: usize) {
    let (w, h) = (dib.width as usize, dib.height as usize);
    let mask_stride = stride(dib.width, 1);
    let mask = dib
        .data
        .get(dib.rows_at + colour_len..)
        .and_then(|m| m.get(..mask_stride.checked_mul(h)?));
    for y in 0..h {
        let stored = if dib.bottom_up { h - 1 - y } else { y };
        for x in 0..w {
            let transparent =
                mask.is_some_and(|m| m[stored * mask_stride + x / 8] & (0x80 >> (x % 8)) != 0);
            rgba[(y * w + x) * 4 + 3] = if transparent { 0 } else { 255 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An icon whose entries are the given (bytes) images, in order.
    fn icon(entries: &[Vec<u8>]) -> Vec<u8> {
        let count = u16::try_from(entries.len()).unwrap();
        let mut out = vec![0, 0, 1, 0];
        out.extend_from_slice(&count.to_le_bytes());
        let mut offset = 6 + 16 * entries.len();
        for e in entries {
            out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
            out.extend_from_slice(&u32::try_from(e.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&u32::try_from(offset).unwrap().to_le_bytes());
            offset += e.len();
        }
        for e in entries {
            out.extend_from_slice(e);
        }
        out
    }

    /// A bottom-up `bits`-bit bitmap entry of `w`×`h`: header, `palette`, colour rows, mask rows.
    fn dib(w: u32, h: u32, bits: u16, palette: &[[u8; 4]], colour: &[u8], mask: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&40u32.to_le_bytes());
        out.extend_from_slice(&w.to_le_bytes());
        out.extend_from_slice(&(2 * h).to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&u32::try_from(palette.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for c in palette {
            out.extend_from_slice(c);
        }
        out.extend_from_slice(colour);
        out.extend_from_slice(mask);
        out
    }

    /// 2×2, 32-bit, rows bottom-up; a mask that would hide every pixel.
    fn two_by_two_32(alpha: u8) -> Vec<u8> {
        let px = |b, g, r| [b, g, r, alpha];
        let colour: Vec<u8> = [px(0, 0, 255), px(0, 255, 0), px(255, 0, 0), px(9, 9, 9)].concat();
        dib(2, 2, 32, &[], &colour, &[0xC0, 0, 0, 0, 0xC0, 0, 0, 0])
    }

    #[test]
    fn largest_then_deepest_then_first_entry_is_read() {
        let small = dib(1, 1, 24, &[], &[1, 2, 3, 0], &[0; 4]);
        let big_8 = dib(2, 1, 8, &[[0, 0, 0, 0]], &[0, 0, 0, 0], &[0; 4]);
        let big_24a = dib(2, 1, 24, &[], &[1; 8], &[0; 4]);
        let big_24b = dib(2, 1, 24, &[], &[2; 8], &[0; 4]);
        let file = icon(&[small, big_8, big_24a.clone(), big_24b]);
        match select(&file).unwrap() {
            Some(Entry::Dib(d)) => assert_eq!(d.data, &big_24a[..], "the first of the equals"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn thirty_two_bit_alpha_wins_over_the_mask() {
        let file = icon(&[two_by_two_32(128)]);
        let Some(Entry::Dib(d)) = select(&file).unwrap() else {
            panic!("not a bitmap")
        };
        let px = decode_dib(&d).unwrap();
        // Top row first: the stored second row (blue, grey), then red, green.
        assert_eq!(
            px.data,
            [
                [0, 0, 255, 128],
                [9, 9, 9, 128],
                [255, 0, 0, 128],
                [0, 255, 0, 128]
            ]
            .concat()
        );
    }

    #[test]
    fn zero_alpha_falls_back_to_the_mask() {
        let file = icon(&[two_by_two_32(0)]);
        let Some(Entry::Dib(d)) = select(&file).unwrap() else {
            panic!("not a bitmap")
        };
        let alpha: Vec<u8> = decode_dib(&d)
            .unwrap()
            .data
            .iter()
            .skip(3)
            .step_by(4)
            .copied()
            .collect();
        assert_eq!(alpha, [0, 0, 0, 0], "mask bits 1 are transparent");
    }

    #[test]
    fn palette_entries_read_their_colours_and_mask() {
        // 1-bit, 3×1: indexes 1,0,1; mask hides the middle pixel.
        let palette = [[0, 0, 0, 0], [255, 128, 0, 0]];
        let entry = dib(
            3,
            1,
            1,
            &palette,
            &[0b1010_0000, 0, 0, 0],
            &[0b0100_0000, 0, 0, 0],
        );
        let file = icon(&[entry]);
        let Some(Entry::Dib(d)) = select(&file).unwrap() else {
            panic!("not a bitmap")
        };
        assert_eq!(
            decode_dib(&d).unwrap().data,
            [[0, 128, 255, 255], [0, 0, 0, 0], [0, 128, 255, 255]].concat()
        );
    }

    #[test]
    fn png_entries_and_broken_files() {
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(&[0, 0, 0, 13]);
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0, 0, 0, 64, 0, 0, 0, 64, 8, 0, 0, 0, 0]);
        let file = icon(&[dib(2, 2, 32, &[], &[0; 16], &[0; 8]), png.clone()]);
        assert_eq!(select(&file).unwrap(), Some(Entry::Png(&png)));
        for cut in 0..file.len() {
            let _ = select(&file[..cut]); // never panics
        }
        assert!(select(&icon(&[])).is_err());
        let cut_rows = icon(&[dib(4, 4, 24, &[], &[0; 10], &[])]);
        let Some(Entry::Dib(d)) = select(&cut_rows).unwrap() else {
            panic!("not a bitmap")
        };
        assert!(decode_dib(&d).is_err());
    }
}
