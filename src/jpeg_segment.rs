//! JPEG marker segments, found without entropy decoding: the one walker that the metadata
//! reader, the scan-skipping progressive decode (`pipeline/scans.rs`) and the restart-interval
//! decode (`pipeline/restart.rs`) share. A leaf module.

/// One marker and the segment it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    /// The marker byte (after the 0xFF).
    pub(crate) marker: u8,
    /// Offset of the marker's 0xFF (past any fill bytes).
    pub(crate) start: usize,
    /// The segment's contents after its length field; empty for a marker that has none.
    pub(crate) body: &'a [u8],
    /// Offset just past the segment: where the next marker, or a scan's entropy-coded data,
    /// begins.
    pub(crate) end: usize,
}

/// The big-endian 16-bit number at `at`, if `bytes` holds it.
pub(crate) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The marker segment at `at`, after any number of 0xFF fill bytes; `None` when no marker is
/// there or its length field is short or runs past the end. The markers that stand alone
/// (TEM, RST0-7, SOI, EOI) come back with an empty body and `end` just past the marker.
pub(crate) fn segment_at(bytes: &[u8], mut at: usize) -> Option<Segment<'_>> {
    while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
        at += 1;
    }
    if *bytes.get(at)? != 0xFF {
        return None;
    }
    let marker = *bytes.get(at + 1)?;
    if matches!(marker, 0x01 | 0xD0..=0xD9) {
        return Some(Segment {
            marker,
            start: at,
            body: &[],
            end: at + 2,
        });
    }
    let len = usize::from(be16(bytes, at + 2)?);
    let end = at + 2 + len;
    if len < 2 || end > bytes.len() {
        return None;
    }
    Some(Segment {
        marker,
        start: at,
        body: &bytes[at + 4..end],
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_skip_fill_bytes_and_refuse_what_runs_past_the_end() {
        // SOI, two fill bytes, an APP0 of 3 body bytes, then EOI.
        let bytes = [
            0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xE0, 0x00, 0x05, 1, 2, 3, 0xFF, 0xD9,
        ];
        let soi = segment_at(&bytes, 0).unwrap();
        assert_eq!((soi.marker, soi.body, soi.end), (0xD8, &[][..], 2));
        let app0 = segment_at(&bytes, soi.end).unwrap();
        assert_eq!(
            (app0.marker, app0.start, app0.body, app0.end),
            (0xE0, 4, &[1, 2, 3][..], 11)
        );
        let eoi = segment_at(&bytes, app0.end).unwrap();
        assert_eq!((eoi.marker, eoi.end), (0xD9, 13));
        assert_eq!(segment_at(&bytes, eoi.end), None, "nothing after EOI");
        assert_eq!(segment_at(&bytes, 8), None, "no marker inside a body");
        // A length past the end, and one too short to count itself.
        assert_eq!(segment_at(&[0xFF, 0xE1, 0x00, 0x09, 0], 0), None);
        assert_eq!(segment_at(&[0xFF, 0xE1, 0x00, 0x01], 0), None);
        assert_eq!(be16(&[0x12, 0x34], 0), Some(0x1234));
        assert_eq!(be16(&[0x12], 0), None);
    }
}
