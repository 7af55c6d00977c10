//! Decoding one sequential JPEG on several threads, when its encoder wrote restart markers.
//!
//! A JPEG's entropy-coded data is one bit stream: no decoder can start in the middle of it,
//! which is why a single large image normally decodes on one core. Restart markers (`RSTn`,
//! every `DRI` MCUs) are the exception: at each one the bit stream is byte-aligned and the DC
//! predictions start from zero, so the data between two markers decodes on its own.
//!
//! This module cuts such a file into bands of MCU rows that begin and end at restart markers,
//! and gives each band to libjpeg-turbo as a JPEG of its own: the original headers, the frame
//! height patched to the band's, the band's intervals with their markers renumbered from
//! `RST0`, and `EOI`. Each band is decoded with one MCU row of overlap on either side (chroma
//! upsampling looks at the neighbouring rows) and only its own rows are kept, so the result is
//! byte-identical to decoding the whole file (the tests check it). Files that do not fit the
//! simple shape (progressive or arithmetic coding, several scans, a marker count that does not
//! add up) are left to the one-thread decoder, which also reports any damage.

use crate::jpeg_segment::{be16, segment_at};

/// A sequential, single-scan JPEG cut at its restart markers.
#[derive(Debug)]
pub struct Intervals<'a> {
    bytes: &'a [u8],
    /// Offset of the frame height (two bytes, big-endian) in `bytes`.
    height_at: usize,
    /// End of the SOS segment: where the entropy-coded data starts.
    scan_start: usize,
    /// Each restart interval's data: `bytes[start..end]` (markers excluded).
    spans: Vec<(usize, usize)>,
    /// Image height in pixels.
    height: u32,
    /// MCU height in pixels.
    mcu_height: u32,
    /// MCU rows in the image.
    mcu_rows: u32,
    /// MCU rows from one row boundary that is also a restart boundary to the next.
    row_step: u32,
    /// MCUs per row.
    mcus_per_row: u32,
    /// MCUs per restart interval.
    interval: u32,
}

/// One band: decode MCU rows `decode.0..decode.1`, keep `keep.0..keep.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// MCU rows given to the decoder (the kept rows plus overlap).
    pub decode: (u32, u32),
    /// MCU rows this band contributes to the image.
    pub keep: (u32, u32),
}

impl<'a> Intervals<'a> {
    /// Finds the restart intervals of `bytes`, or `None` when the file is not a sequential
    /// Huffman-coded JPEG with one interleaved scan and a consistent set of restart markers.
    pub fn parse(bytes: &'a [u8]) -> Option<Intervals<'a>> {
        if bytes.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut at = 2;
        let mut frame = None; // (height_at, width, height, components: Vec<(id, h, v)>)
        let mut interval = 0;
        let scan_start;
        let scan_components;
        loop {
            let segment = segment_at(bytes, at)?;
            // Offset of the body in the file (the height is rewritten there for each band).
            let body = segment.start + 4;
            let end = segment.end;
            match segment.marker {
                // Baseline and extended sequential, Huffman coded.
                0xC0 | 0xC1 => {
                    let height = u32::from(be16(bytes, body + 1)?);
                    let width = u32::from(be16(bytes, body + 3)?);
                    let count = usize::from(*bytes.get(body + 5)?);
                    let comps: Option<Vec<(u8, u32, u32)>> = (0..count)
                        .map(|i| {
                            let c = body + 6 + 3 * i;
                            let hv = *bytes.get(c + 1)?;
                            Some((*bytes.get(c)?, u32::from(hv >> 4), u32::from(hv & 15)))
                        })
                        .collect();
                    frame = Some((body + 1, width, height, comps?));
                }
                // Progressive, lossless, hierarchical or arithmetic coding: not handled here;
                // nor a marker without a segment (SOI again, RSTn, EOI) before the scan.
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0x01 | 0xD0..=0xD9 => {
                    return None
                }
                0xDD => interval = u32::from(be16(bytes, body)?),
                0xDA => {
                    scan_components = usize::from(*bytes.get(body)?);
                    scan_start = end;
                    break;
                }
                _ => {}
            }
            at = end;
        }
        let (height_at, width, height, comps) = frame?;
        if interval == 0 || width == 0 || height == 0 || comps.is_empty() {
            return None;
        }
        // The scan must hold every component: the image is one scan.
        if scan_components != comps.len() {
            return None;
        }
        let (mcu_w, mcu_h) = if comps.len() == 1 {
            // A single-component scan is not interleaved: its MCU is one 8x8 block.
            (8, 8)
        } else {
            let hmax = comps.iter().map(|c| c.1).max()?;
            let vmax = comps.iter().map(|c| c.2).max()?;
            if !(1..=4).contains(&hmax) || !(1..=4).contains(&vmax) {
                return None;
            }
            (8 * hmax, 8 * vmax)
        };
        let mcus_per_row = width.div_ceil(mcu_w);
        let mcu_rows = height.div_ceil(mcu_h);
        let total = u64::from(mcus_per_row) * u64::from(mcu_rows);

        let spans = restart_spans(bytes, scan_start)?;
        if spans.len() as u64 != total.div_ceil(u64::from(interval)) {
            return None;
        }
        let row_step = interval / gcd(interval, mcus_per_row);
        Some(Intervals {
            bytes,
            height_at,
            scan_start,
            spans,
            height,
            mcu_height: mcu_h,
            mcu_rows,
            row_step,
            mcus_per_row,
            interval,
        })
    }

    /// MCU height in pixels.
    pub(crate) fn mcu_height(&self) -> u32 {
        self.mcu_height
    }

    /// Up to `count` bands of about equal height, each starting on a restart boundary, with
    /// one boundary step of overlap on each side. Fewer when the markers are too sparse.
    pub fn bands(&self, count: u32) -> Vec<Band> {
        // Band edges can only fall on multiples of `row_step` (or the bottom).
        let steps = self.mcu_rows.div_ceil(self.row_step);
        let count = count.min(steps / 2).max(1);
        let edge = |i: u32| (steps * i / count * self.row_step).min(self.mcu_rows);
        (0..count)
            .map(|i| {
                let keep = (edge(i), edge(i + 1));
                let decode = (
                    keep.0.saturating_sub(self.row_step),
                    (keep.1 + self.row_step).min(self.mcu_rows),
                );
                Band { decode, keep }
            })
            .collect()
    }

    /// Pixel rows of the stand-alone JPEG for MCU rows `rows.0..rows.1`.
    pub(crate) fn band_height(&self, rows: (u32, u32)) -> u32 {
        if rows.1 == self.mcu_rows {
            self.height - rows.0 * self.mcu_height
        } else {
            (rows.1 - rows.0) * self.mcu_height
        }
    }

    /// A stand-alone JPEG holding MCU rows `rows.0..rows.1` (on restart boundaries).
    pub(crate) fn band_jpeg(&self, rows: (u32, u32)) -> Vec<u8> {
        let per = u64::from(self.interval);
        let mcu = |row: u32| u64::from(row) * u64::from(self.mcus_per_row);
        let first = usize::try_from(mcu(rows.0) / per).expect("fits");
        let last = usize::try_from(mcu(rows.1).div_ceil(per))
            .expect("fits")
            .min(self.spans.len());
        let spans = &self.spans[first..last];
        let data: usize = spans.iter().map(|(s, e)| e - s + 2).sum();
        let mut out = Vec::with_capacity(self.scan_start + data + 2);
        out.extend_from_slice(&self.bytes[..self.scan_start]);
        let height = u16::try_from(self.band_height(rows)).expect("below the frame's height");
        out[self.height_at..self.height_at + 2].copy_from_slice(&height.to_be_bytes());
        for (n, &(start, end)) in spans.iter().enumerate() {
            if n > 0 {
                let rst = 0xD0 + u8::try_from((n - 1) % 8).expect("< 8");
                out.extend_from_slice(&[0xFF, rst]);
            }
            out.extend_from_slice(&self.bytes[start..end]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }
}

/// The entropy-coded data from `scan_start`, split at its RSTn markers into (start, end)
/// byte ranges. The data ends at the first other marker, which must be EOI (a second scan or
/// DNL means another shape): `None` then.
fn restart_spans(bytes: &[u8], scan_start: usize) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut start = scan_start;
    let mut i = scan_start;
    loop {
        let ff = i + bytes.get(i..)?.iter().position(|&b| b == 0xFF)?;
        match *bytes.get(ff + 1)? {
            0x00 | 0xFF => i = ff + 1, // stuffed byte or fill
            0xD0..=0xD7 => {
                spans.push((start, ff));
                start = ff + 2;
                i = start;
            }
            0xD9 => {
                spans.push((start, ff));
                return Some(spans);
            }
            _ => return None,
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_restart_markers_or_with_another_shape_are_declined() {
        assert!(Intervals::parse(b"").is_none());
        assert!(Intervals::parse(b"\xFF\xD8\xFF\xD9").is_none());
        assert!(Intervals::parse(b"\xFF\xD8\xFF\xDD\x00\x04\x00\x01\xFF").is_none());
    }

    #[test]
    fn gcd_is_right() {
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(7, 1), 1);
        assert_eq!(gcd(5, 0), 5);
    }
}
