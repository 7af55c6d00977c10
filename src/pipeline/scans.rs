//! A progressive JPEG cut down to the scans a 1/8 decode reads (issue #17, "thumbnails below
//! the floor").
//!
//! A progressive JPEG sends its DCT coefficients in several scans: first the DC coefficient (the
//! mean of each 8x8 block) of every component, then bands of AC coefficients, usually in
//! passes of increasing precision (successive approximation: a first scan sends the high bits,
//! refinement scans one more bit each). libjpeg-turbo decoding at 1/8 computes each pixel of a
//! component whose IDCT is 1x1 from the DC coefficient alone, yet it entropy-decodes every scan,
//! and that is most of its time. [`needed_scans`] copies such a file with only the scans the
//! decode reads, found from the markers alone (no entropy decoding), so libjpeg-turbo reads a
//! fraction of the data and produces the same pixels. Called by `decode::decode_jpeg` with the
//! scale it chose; anything unusual declines (`None`) and the whole file is decoded as before.

use crate::jpeg_segment::{be16, segment_at, Segment};

/// The IDCT size libjpeg-turbo gives each component, and so which coefficients it reads.
///
/// At 1/`denom` the smallest IDCT is `8 / denom`; a component sampled below the image's maximum
/// gets a larger one (doubled while the sampling ratios allow, so that the IDCT rather than the
/// upsampler restores its size: `jpeg_calc_output_dimensions` in libjpeg-turbo 3.1's
/// `jdmaster.c`). A 1x1 IDCT reads the DC coefficient only. The 2x2 one reads rows and columns
/// 0, 1, 3, 5 and 7, the 4x4 one all but 4 (`jidctred.c`): both reach coefficient 63, the last
/// of every AC band, so at 1/4 and 1/2 no scan can be left out and only 1/8 is cut.
fn idct_size(denom: usize, (h, v): (u8, u8), (hmax, vmax): (u8, u8)) -> usize {
    let min = 8 / denom;
    let mut size = min;
    while size < 8
        && (usize::from(hmax) * min).is_multiple_of(usize::from(h) * size * 2)
        && (usize::from(vmax) * min).is_multiple_of(usize::from(v) * size * 2)
    {
        size *= 2;
    }
    size
}

/// One component of the frame.
struct Component {
    id: u8,
    /// Sampling factors.
    h: u8,
    v: u8,
    /// Per coefficient (natural zig-zag index), the bit position its scans have reached:
    /// -1 before its first scan, 0 once complete.
    bits: [i8; 64],
    /// Returns true if and only if some AC scan of this component was left out of the copy.
    cut: bool,
}

/// The start-of-frame facts a cut needs.
struct Frame {
    width: u32,
    height: u32,
    components: Vec<Component>,
}

impl Frame {
    fn max_sampling(&self) -> (u8, u8) {
        let h = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        (h, v)
    }

    /// Blocks of component `c` in a non-interleaved scan (libjpeg's `width_in_blocks` times
    /// `height_in_blocks`: the component's own size in blocks, not padded to whole MCUs).
    fn blocks(&self, c: &Component) -> u64 {
        let (hmax, vmax) = self.max_sampling();
        let across = (u64::from(self.width) * u64::from(c.h)).div_ceil(8 * u64::from(hmax));
        let down = (u64::from(self.height) * u64::from(c.v)).div_ceil(8 * u64::from(vmax));
        across * down
    }
}

/// A copy of the progressive JPEG `bytes` holding only the scans a decode at 1/`denom` reads,
/// or `None` when nothing can be left out or the file is not of the plain shape this handles:
/// a Huffman-coded progressive frame (SOF2) whose scans follow a consistent progression to full
/// precision for every coefficient, with single-component AC scans, ending in EOI.
///
/// The copy keeps every segment but the left-out scans, in order (so each kept scan sees the
/// same Huffman tables and restart interval), and ends with one scan per cut component that
/// codes all its AC coefficients as zero. That last scan is what makes the pixels exact:
/// libjpeg-turbo smooths the blocks of a progressive image whose AC coefficients are not all
/// known (`decompress_smooth_data` in `jdcoefct.c`), and when the first nine are all missing
/// it replaces the DC coefficient itself by a smoothed one. With every coefficient known it
/// smooths nothing, and a 1x1 IDCT of the same DC coefficients gives the full decode's pixels.
pub(crate) fn needed_scans(bytes: &[u8], denom: usize) -> Option<Vec<u8>> {
    if denom != 8 || bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 2);
    out.extend_from_slice(&bytes[..2]);
    let mut frame: Option<Frame> = None;
    let mut interval = 0;
    let mut at = 2;
    loop {
        let Segment {
            marker,
            start,
            body,
            end,
        } = segment_at(bytes, at)?;
        if marker == 0xD9 {
            break;
        }
        // Every other marker here starts a segment; a stray RSTn, TEM or SOI is unusual.
        if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD8) {
            return None;
        }
        match marker {
            0xC2 if frame.is_none() => frame = Some(parse_frame(body)?),
            // Any other frame type (sequential, lossless, hierarchical, arithmetic), a second
            // frame, or DNL (the height given after the scan).
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => return None,
            0xDC => return None,
            0xDD => interval = be16(body, 0)?,
            0xDA => {
                let data_end = scan_end(bytes, end)?;
                if scan(frame.as_mut()?, body, denom)? {
                    out.extend_from_slice(&bytes[start..data_end]);
                }
                at = data_end;
                continue;
            }
            _ => {}
        }
        out.extend_from_slice(&bytes[start..end]);
        at = end;
    }
    let frame = frame?;
    if !frame.components.iter().any(|c| c.cut) {
        return None;
    }
    // A progression that stops short of full precision is decoded with smoothing, which the
    // copy would not reproduce exactly.
    if frame
        .components
        .iter()
        .any(|c| c.bits.iter().any(|&b| b != 0))
    {
        return None;
    }
    if interval != 0 {
        // The zero scans carry no restart markers.
        out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04, 0x00, 0x00]);
    }
    out.extend_from_slice(&EOB_RUN_TABLE);
    for c in frame.components.iter().filter(|c| c.cut) {
        out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, c.id, 0x00, 0x01, 0x3F, 0x00]);
        zero_blocks(frame.blocks(c), &mut out);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// The SOF2 body: precision, height, width, then (id, sampling, table) per component.
fn parse_frame(body: &[u8]) -> Option<Frame> {
    let height = u32::from(be16(body, 1)?);
    let width = u32::from(be16(body, 3)?);
    let count = usize::from(*body.get(5)?);
    if body[0] != 8 || width == 0 || height == 0 || !(1..=4).contains(&count) {
        return None;
    }
    let components = (0..count)
        .map(|i| {
            let c = body.get(6 + 3 * i..9 + 3 * i)?;
            let (h, v) = (c[1] >> 4, c[1] & 15);
            ((1..=4).contains(&h) && (1..=4).contains(&v)).then_some(Component {
                id: c[0],
                h,
                v,
                bits: [-1; 64],
                cut: false,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Frame {
        width,
        height,
        components,
    })
}

/// Records the scan whose SOS body is `body` in `frame`'s progression; returns whether the
/// copy keeps it (`Some(false)`: an AC scan of a component whose IDCT is 1x1), or `None` for a
/// scan out of the plain shape.
fn scan(frame: &mut Frame, body: &[u8], denom: usize) -> Option<bool> {
    let count = usize::from(*body.first()?);
    let ids: Vec<u8> = (0..count)
        .map(|i| body.get(1 + 2 * i).copied())
        .collect::<Option<_>>()?;
    let params = body.get(1 + 2 * count..4 + 2 * count)?;
    let (ss, se, ah, al) = (params[0], params[1], params[2] >> 4, params[2] & 15);
    // DC scans (0..=0) may hold several components; AC scans hold one (the standard's rule,
    // which libjpeg-turbo enforces).
    let valid = if ss == 0 {
        se == 0 && (1..=4).contains(&count)
    } else {
        ss <= se && se <= 63 && count == 1
    };
    if !valid || al > 13 || ah > 13 {
        return None;
    }
    let max = frame.max_sampling();
    let mut keep = true;
    for id in ids {
        let c = frame.components.iter_mut().find(|c| c.id == id)?;
        for bits in &mut c.bits[usize::from(ss)..=usize::from(se)] {
            // A first scan finds the coefficient unsent; a refinement adds exactly one bit.
            let next = match ah {
                0 if *bits == -1 => al,
                _ if i16::from(*bits) == i16::from(ah) && al + 1 == ah => al,
                _ => return None,
            };
            *bits = i8::try_from(next).ok()?;
        }
        if ss > 0 && idct_size(denom, (c.h, c.v), max) == 1 {
            c.cut = true;
            keep = false;
        }
    }
    Some(keep)
}

/// Where the entropy-coded data that starts at `start` ends: at the first marker that is not
/// a stuffed zero, a fill byte or a restart marker. `None` if the file ends first.
fn scan_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let ff = i + bytes.get(i..)?.iter().position(|&b| b == 0xFF)?;
        match *bytes.get(ff + 1)? {
            0x00 | 0xD0..=0xD7 => i = ff + 2,
            0xFF => i = ff + 1,
            _ => return Some(ff),
        }
    }
}

/// A DHT segment defining AC table 0 with the fifteen end-of-band-run symbols (0x00, 0x10, ...
/// 0xE0: a run of 2^r blocks plus r extra bits), each coded in four bits (code r).
const EOB_RUN_TABLE: [u8; 36] = [
    0xFF, 0xC4, 0x00, 0x22, 0x10, // DHT, length 34, class AC, table 0
    0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // fifteen codes of length 4
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0,
];

/// Entropy-coded data in which `blocks` blocks have no AC coefficient: end-of-band runs of at
/// most 32767 blocks (the longest one symbol codes), padded with 1 bits, 0xFF bytes stuffed.
fn zero_blocks(mut blocks: u64, out: &mut Vec<u8>) {
    let mut bits = BitWriter {
        out,
        acc: 0,
        count: 0,
    };
    while blocks > 0 {
        let run = u32::try_from(blocks.min(32767)).expect("at most 32767");
        let r = run.ilog2();
        bits.put(r, 4);
        bits.put(run - (1 << r), r);
        blocks -= u64::from(run);
    }
    bits.finish();
}

/// Big-endian bits into JPEG entropy-coded bytes.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u32,
    count: u32,
}

impl BitWriter<'_> {
    /// Appends the low `n` (at most 16) bits of `value`.
    fn put(&mut self, value: u32, n: u32) {
        self.acc = (self.acc << n) | (value & ((1 << n) - 1));
        self.count += n;
        while self.count >= 8 {
            self.count -= 8;
            self.byte((self.acc >> self.count) as u8);
        }
    }

    fn byte(&mut self, b: u8) {
        self.out.push(b);
        if b == 0xFF {
            self.out.push(0x00);
        }
    }

    /// Pads the last byte with 1 bits.
    fn finish(mut self) {
        if self.count > 0 {
            let pad = 8 - self.count;
            self.put((1 << pad) - 1, pad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_one_by_one_idct_reads_the_dc_coefficient_alone() {
        // (sampling, image maximum) -> IDCT size at 1/8, 1/4.
        let cases = [
            ((2, 2), (2, 2), 1, 2), // 4:2:0 luma
            ((1, 1), (2, 2), 2, 4), // 4:2:0 chroma: upsampled by the IDCT
            ((2, 1), (2, 1), 1, 2), // 4:2:2 luma
            ((1, 1), (2, 1), 1, 2), // 4:2:2 chroma: the vertical ratio forbids a larger IDCT
            ((1, 1), (1, 1), 1, 2), // 4:4:4 and grey
            ((1, 1), (4, 1), 1, 2), // 4:1:1 chroma
        ];
        for (sampling, max, at8, at4) in cases {
            assert_eq!(idct_size(8, sampling, max), at8, "{sampling:?} of {max:?}");
            assert_eq!(idct_size(4, sampling, max), at4, "{sampling:?} of {max:?}");
        }
    }

    #[test]
    fn zero_scans_code_long_runs_and_stuff_their_ff_bytes() {
        let mut one = Vec::new();
        zero_blocks(1, &mut one);
        // Code 0 (a run of one), then four 1 bits of padding.
        assert_eq!(one, [0x0F]);
        let mut long = Vec::new();
        zero_blocks(32768, &mut long);
        // 1110 + fourteen 1 bits (a run of 32767), 0000 (one more), 11 of padding; the 0xFF
        // byte is followed by a stuffed zero.
        assert_eq!(long, [0xEF, 0xFF, 0x00, 0xC3]);
    }

    #[test]
    fn garbage_and_files_of_other_shapes_are_declined() {
        for bytes in [
            &b""[..],
            b"\xFF\xD8",
            b"\xFF\xD8\xFF\xD9",
            b"\xFF\xD8\xFF\xC2\x00\x02\xFF\xD9",
            b"\xFF\xD8\xFF\xDA\x00\x08\x01\x01\x00\x01\x3F\x00\x00\xFF\xD9",
            b"\xFF\xD8\xFF\xD0\xFF\xD9",
            b"GIF89a",
        ] {
            assert!(needed_scans(bytes, 8).is_none(), "{bytes:?}");
        }
    }
}
