// Reads an AVIF file's container (ISO-BMFF boxes) without decoding it, for the tests that
// check presize's AVIF outputs. One copy: the integration tests use it through `common`, and
// the unit tests of `src/pipeline/avif/mod.rs` include this file by path.

/// What the container of an AVIF file declares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AvifContainer {
    /// The size every `ispe` (image spatial extents) property gives.
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// True if and only if an alpha auxiliary image is declared (`auxC` naming the alpha URN).
    pub(crate) alpha: bool,
    /// The colour image's `nclx` colour box (primaries, transfer, matrix, full range), if any.
    pub(crate) nclx: Option<(u16, u16, u16, bool)>,
    /// True if and only if the colour image is coded without chroma (AV1 4:0:0, from the
    /// primary item's `av1C`).
    pub(crate) monochrome: bool,
}

/// The ISO-BMFF boxes in `bytes`: each one's four-character type and payload. Panics on a box
/// whose size runs past the end.
fn boxes(mut bytes: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 8 {
        let size = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && size <= bytes.len(),
            "box size {size} out of range"
        );
        out.push((bytes[4..8].try_into().unwrap(), &bytes[8..size]));
        bytes = &bytes[size..];
    }
    assert!(bytes.is_empty(), "{} trailing bytes", bytes.len());
    out
}

fn find_box<'a>(list: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> &'a [u8] {
    list.iter()
        .find(|(k, _)| k == kind)
        .map(|(_, body)| *body)
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)))
}

/// Reads an AVIF file's container without decoding it: `ftyp` first with major brand `avif`, a
/// non-empty `mdat`, an AV1 codec configuration (`av1C`), and `ispe` properties that all agree.
/// Panics on anything else.
pub(crate) fn avif_container(avif: &[u8]) -> AvifContainer {
    let top = boxes(avif);
    assert_eq!(&top[0].0, b"ftyp", "the file must open with ftyp");
    assert_eq!(&top[0].1[..4], b"avif", "major brand");
    assert!(!find_box(&top, b"mdat").is_empty(), "empty mdat");
    // `meta` is a full box: 4 bytes of version and flags before its children.
    let meta = boxes(&find_box(&top, b"meta")[4..]);
    let iprp = boxes(find_box(&meta, b"iprp"));
    let ipco = boxes(find_box(&iprp, b"ipco"));
    let primary = primary_properties(&meta, &iprp, &ipco);
    let av1c = find_box(&primary, b"av1C");
    assert_eq!(av1c[0], 0x81, "av1C marker and version 1");
    let sizes: Vec<(u32, u32)> = ipco
        .iter()
        .filter(|(k, _)| k == b"ispe")
        .map(|(_, body)| {
            let w = u32::from_be_bytes(body[4..8].try_into().unwrap());
            let h = u32::from_be_bytes(body[8..12].try_into().unwrap());
            (w, h)
        })
        .collect();
    assert!(!sizes.is_empty(), "no ispe box");
    assert!(
        sizes.windows(2).all(|w| w[0] == w[1]),
        "ispe sizes differ: {sizes:?}"
    );
    const ALPHA_URN: &[u8] = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
    let alpha = ipco
        .iter()
        .any(|(k, body)| k == b"auxC" && body[4..].starts_with(ALPHA_URN));
    let nclx = primary
        .iter()
        .find(|(k, body)| k == b"colr" && body.starts_with(b"nclx"))
        .map(|(_, body)| {
            let at = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            (at(4), at(6), at(8), body[10] & 0x80 != 0)
        });
    AvifContainer {
        width: sizes[0].0,
        height: sizes[0].1,
        alpha,
        nclx,
        // av1C byte 2: high_bitdepth, twelve_bit, then monochrome (bit 4).
        monochrome: av1c[2] & 0x10 != 0,
    }
}

/// The properties (`ipco` children) the primary item (`pitm`) is associated with in `ipma`.
fn primary_properties<'a>(
    meta: &[([u8; 4], &[u8])],
    iprp: &[([u8; 4], &[u8])],
    ipco: &[([u8; 4], &'a [u8])],
) -> Vec<([u8; 4], &'a [u8])> {
    let pitm = find_box(meta, b"pitm");
    let primary = if pitm[0] == 0 {
        u32::from(u16::from_be_bytes([pitm[4], pitm[5]]))
    } else {
        u32::from_be_bytes(pitm[4..8].try_into().unwrap())
    };
    let ipma = find_box(iprp, b"ipma");
    let (version, wide_index) = (ipma[0], ipma[3] & 1 != 0);
    let mut at = 8; // version and flags, then the entry count
    let count = u32::from_be_bytes(ipma[4..8].try_into().unwrap());
    for _ in 0..count {
        let item = if version < 1 {
            at += 2;
            u32::from(u16::from_be_bytes([ipma[at - 2], ipma[at - 1]]))
        } else {
            at += 4;
            u32::from_be_bytes(ipma[at - 4..at].try_into().unwrap())
        };
        let associations = usize::from(ipma[at]);
        at += 1;
        let mut indices = Vec::new();
        for _ in 0..associations {
            let index = if wide_index {
                at += 2;
                usize::from(u16::from_be_bytes([ipma[at - 2], ipma[at - 1]]) & 0x7fff)
            } else {
                at += 1;
                usize::from(ipma[at - 1] & 0x7f)
            };
            indices.push(index);
        }
        if item == primary {
            // Indices count from 1; 0 means "no property".
            return indices
                .into_iter()
                .filter(|&i| i > 0)
                .map(|i| ipco[i - 1])
                .collect();
        }
    }
    panic!("the primary item {primary} has no properties");
}
