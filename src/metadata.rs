//! Metadata (EXIF, XMP, ICC, print resolution) carried from an input file to its output.
//!
//! Readers pull the blocks out of JPEG, PNG, WebP, TIFF and BMP bytes; [`for_output`] applies
//! the user's policy (keep everything, drop location, or keep only the colour profile) and
//! makes the blocks true for the resized pixels: orientation 1 (the pipeline has already
//! rotated them), new pixel dimensions, no stale EXIF thumbnail; [`apply_dpi`] sets the print
//! resolution `--dpi` asks for. Writers put the blocks into freshly encoded JPEG, PNG, WebP,
//! TIFF and BMP bytes. Everything here is a pure function over byte slices, so it is
//! tested without touching the pipeline, and every read is bounds-checked: bad input yields
//! less metadata, never a panic or an endless loop.

use crate::format::Format;

/// The metadata blocks of one image, each as raw bytes, and its print resolution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// The TIFF-structured EXIF block (`II*\0` or `MM\0*`), without the JPEG `Exif\0\0` prefix.
    pub exif: Option<Vec<u8>>,
    /// The XMP packet (UTF-8 XML).
    pub xmp: Option<Vec<u8>>,
    /// The ICC colour profile.
    pub icc: Option<Vec<u8>>,
    /// The print resolution, of the pixels as displayed (for a source stored turned a quarter,
    /// its x and y are those of the stored image swapped).
    pub resolution: Option<Resolution>,
}

impl Metadata {
    /// Returns true if and only if no block is present and no resolution is known.
    pub fn is_empty(&self) -> bool {
        self.exif.is_none() && self.xmp.is_none() && self.icc.is_none() && self.resolution.is_none()
    }
}

/// The unit of a print resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionUnit {
    /// Pixels per inch (dpi).
    Inch,
    /// Pixels per centimetre.
    Centimetre,
}

/// A print resolution: pixels per unit across (`x`) and down (`y`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution {
    /// Pixels per unit across.
    pub x: f64,
    /// Pixels per unit down.
    pub y: f64,
    /// The unit, as the source gave it (PNG's and BMP's metres become inches).
    pub unit: ResolutionUnit,
}

impl Resolution {
    /// The same resolution with x and y exchanged (for a source stored turned a quarter).
    pub fn transposed(self) -> Resolution {
        Resolution {
            x: self.y,
            y: self.x,
            ..self
        }
    }

    /// Pixels per metre across and down, as PNG and BMP store them.
    fn per_metre(self) -> (f64, f64) {
        let metre = match self.unit {
            ResolutionUnit::Inch => 1.0 / 0.0254,
            ResolutionUnit::Centimetre => 100.0,
        };
        (self.x * metre, self.y * metre)
    }

    /// From pixels per metre; `None` unless both are positive.
    fn from_per_metre(x: f64, y: f64) -> Option<Resolution> {
        (x > 0.0 && y > 0.0).then_some(Resolution {
            x: x * 0.0254,
            y: y * 0.0254,
            unit: ResolutionUnit::Inch,
        })
    }
}

/// What an output says about its print resolution (`--dpi`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DpiPolicy {
    /// The source's resolution, unchanged (the default; libvips and ImageMagick do the same).
    #[default]
    Keep,
    /// The source's resolution scaled with the image, so that it prints at the same size.
    Scale,
    /// This many dots per inch, across and down, whatever the source says.
    Set(f64),
}

/// Sets the resolution `policy` gives an output whose pixels are the source's scaled by
/// `scale` (across, down), starting from `meta.resolution` (the source's); an EXIF block
/// carried along is made to say the same. Nothing is invented: `keep` and `scale` of a source
/// without a resolution leave none.
pub(crate) fn apply_dpi(meta: &mut Metadata, policy: DpiPolicy, scale: (f64, f64)) {
    let before = meta.resolution;
    meta.resolution = match policy {
        DpiPolicy::Keep => before,
        DpiPolicy::Scale => before.map(|r| Resolution {
            x: r.x * scale.0,
            y: r.y * scale.1,
            ..r
        }),
        DpiPolicy::Set(dpi) => Some(Resolution {
            x: dpi,
            y: dpi,
            unit: ResolutionUnit::Inch,
        }),
    };
    if meta.resolution != before {
        if let (Some(exif), Some(r)) = (meta.exif.as_deref(), meta.resolution) {
            meta.exif = Some(set_tiff_resolution(exif, r).unwrap_or_else(|| exif.to_vec()));
        }
    }
}

/// Which metadata an output keeps (the ICC profile is always kept: it is part of the colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetaPolicy {
    /// Keep EXIF, XMP and ICC (the default).
    #[default]
    Keep,
    /// Keep everything except GPS location (`--strip-gps`).
    StripGps,
    /// Keep only the ICC profile (`--strip`).
    Strip,
}

/// Applies `policy` and fixes the blocks for an upright output of `width`×`height` pixels.
pub(crate) fn for_output(meta: Metadata, policy: MetaPolicy, width: u32, height: u32) -> Metadata {
    let strip_gps = match policy {
        // The resolution is part of the picture's description, not private data: kept.
        MetaPolicy::Strip => {
            return Metadata {
                icc: meta.icc,
                resolution: meta.resolution,
                ..Metadata::default()
            }
        }
        MetaPolicy::Keep => false,
        MetaPolicy::StripGps => true,
    };
    let xmp = meta
        .xmp
        .and_then(|x| fix_xmp(&x, strip_gps, Some((width, height))));
    Metadata {
        exif: meta
            .exif
            .and_then(|e| rewrite_exif(&e, width, height, strip_gps)),
        xmp,
        icc: meta.icc,
        resolution: meta.resolution,
    }
}

const EXIF_SIG: &[u8] = b"Exif\0\0";
const JFIF_SIG: &[u8] = b"JFIF\0";
const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const ICC_SIG: &[u8] = b"ICC_PROFILE\0";
const PNG_SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
const PNG_XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// Reads the metadata of an image in `format`; formats without a reader give nothing.
///
/// PNG: `eXIf` and uncompressed `iTXt` XMP only. PNG ICC (`iCCP`) is zlib-compressed and is
/// left to the `image` decoder's `icc_profile()`; compressed XMP is skipped.
pub(crate) fn read(bytes: &[u8], format: Format) -> Metadata {
    let mut meta = read_blocks(bytes, format);
    // EXIF's resolution wins over the container's (JFIF, PNG's pHYs), as libvips reads JPEGs.
    if let Some(r) = meta.exif.as_deref().and_then(exif_resolution) {
        meta.resolution = Some(r);
    }
    meta
}

fn read_blocks(bytes: &[u8], format: Format) -> Metadata {
    match format {
        Format::Jpeg => read_jpeg(bytes),
        Format::Png => read_png(bytes),
        Format::Webp => read_webp(bytes),
        Format::Bmp => read_bmp(bytes),
        Format::Tiff => read_tiff(bytes),
        Format::Gif
        | Format::Avif
        | Format::Heic
        | Format::Ico
        | Format::Tga
        | Format::Pnm
        | Format::Qoi
        | Format::Hdr
        | Format::Exr
        | Format::Svg => Metadata::default(),
    }
}

/// A TIFF file's ICC profile (IFD0 tag 34675). Read here rather than through the `image`
/// crate, whose decoder, once given memory limits, returns no profile for some files (a
/// 654 KB CMYK profile, for one).
fn read_tiff(bytes: &[u8]) -> Metadata {
    Metadata {
        icc: ifd0_field(bytes, 0x8773).map(|f| f.value.to_vec()),
        resolution: exif_resolution(bytes),
        ..Metadata::default()
    }
}

/// Little-endian `u32` at `at`, bounds-checked.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The ICC profile a BMP embeds (see [`dib_icc`]) and its resolution.
fn read_bmp(bytes: &[u8]) -> Metadata {
    const FILE_HEADER: usize = 14;
    let icc = bytes
        .starts_with(b"BM")
        .then(|| dib_icc(bytes.get(FILE_HEADER..)?))
        .flatten();
    // biXPelsPerMeter and biYPelsPerMeter, in every header but the 12-byte OS/2 one.
    let resolution = (le_u32(bytes, FILE_HEADER).is_some_and(|h| h >= 40))
        .then(|| {
            let ppm = |at| le_u32(bytes, at).map(|v| f64::from(v.cast_signed()));
            Resolution::from_per_metre(ppm(38)?, ppm(42)?)
        })
        .flatten();
    Metadata {
        icc,
        resolution,
        ..Metadata::default()
    }
}

/// The ICC profile embedded in a device-independent bitmap (a BMP file after its 14-byte file
/// header, or an icon's bitmap) with a version 5 header (`bV5CSType` = `PROFILE_EMBEDDED`,
/// "MBED"), whose offset counts from the start of that header. Chrome, Firefox and libvips
/// (through ImageMagick) all use it; a linked profile (a file name) is ignored, as they do.
pub(crate) fn dib_icc(dib: &[u8]) -> Option<Vec<u8>> {
    const PROFILE_EMBEDDED: u32 = u32::from_be_bytes(*b"MBED");
    if le_u32(dib, 0)? < 124 || le_u32(dib, 56)? != PROFILE_EMBEDDED {
        return None;
    }
    let at = usize::try_from(le_u32(dib, 112)?).ok()?;
    let len = usize::try_from(le_u32(dib, 116)?).ok()?;
    let profile = dib.get(at..at.checked_add(len)?)?;
    (len >= 128).then(|| profile.to_vec())
}

/// JPEG segments before the image data, as (marker, body); stops at anything malformed.
fn jpeg_segments(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut segments = Vec::new();
    let mut at = 2;
    while let Some(segment) = crate::jpeg_segment::segment_at(bytes, at) {
        if segment.marker == 0xDA || segment.marker == 0xD9 {
            break;
        }
        segments.push((segment.marker, segment.body));
        at = segment.end;
    }
    segments
}

fn read_jpeg(bytes: &[u8]) -> Metadata {
    let mut meta = Metadata::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    for (marker, body) in jpeg_segments(bytes) {
        match marker {
            0xE1 if body.starts_with(EXIF_SIG) && meta.exif.is_none() => {
                meta.exif = Some(body[EXIF_SIG.len()..].to_vec());
            }
            0xE1 if body.starts_with(XMP_SIG) && meta.xmp.is_none() => {
                meta.xmp = Some(body[XMP_SIG.len()..].to_vec());
            }
            0xE2 if body.starts_with(ICC_SIG) && body.len() > ICC_SIG.len() + 2 => {
                icc_chunks.push((body[ICC_SIG.len()], &body[ICC_SIG.len() + 2..]));
            }
            0xE0 if body.starts_with(JFIF_SIG) && meta.resolution.is_none() => {
                meta.resolution = jfif_resolution(body);
            }
            _ => {}
        }
    }
    if !icc_chunks.is_empty() {
        // Stable sort: chunks arrive in any order, their sequence numbers say where they go.
        icc_chunks.sort_by_key(|c| c.0);
        meta.icc = Some(
            icc_chunks
                .iter()
                .flat_map(|c| c.1.iter().copied())
                .collect(),
        );
    }
    meta
}

/// The density of a JFIF APP0 body: units 1 (per inch) or 2 (per centimetre); units 0 give
/// only the pixels' aspect ratio, which is not a resolution.
fn jfif_resolution(body: &[u8]) -> Option<Resolution> {
    let unit = match body.get(7)? {
        1 => ResolutionUnit::Inch,
        2 => ResolutionUnit::Centimetre,
        _ => return None,
    };
    let x = u16::from_be_bytes(body.get(8..10)?.try_into().ok()?);
    let y = u16::from_be_bytes(body.get(10..12)?.try_into().ok()?);
    (x > 0 && y > 0).then_some(Resolution {
        x: f64::from(x),
        y: f64::from(y),
        unit,
    })
}

/// A PNG or RIFF chunk: its four-byte type and its data.
type Chunk<'a> = ([u8; 4], &'a [u8]);

/// PNG chunks as (type, data) up to IEND or the first truncated chunk. CRCs are not checked:
/// a damaged ancillary chunk costs at most that metadata.
fn png_chunks(bytes: &[u8]) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    if !bytes.starts_with(PNG_SIG) {
        return chunks;
    }
    let mut pos = PNG_SIG.len();
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        let Some(data) = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(pos + 8..(pos + 8).checked_add(len)?))
        else {
            break;
        };
        chunks.push((kind, data));
        if &kind == b"IEND" {
            break;
        }
        pos += 12 + data.len();
    }
    chunks
}

fn without_exif_prefix(exif: &[u8]) -> Vec<u8> {
    exif.strip_prefix(EXIF_SIG).unwrap_or(exif).to_vec()
}

fn read_png(bytes: &[u8]) -> Metadata {
    let mut meta = Metadata::default();
    for (kind, data) in png_chunks(bytes) {
        match &kind {
            // Pixels per unit across and down; unit 1 is the metre, 0 an aspect ratio only.
            b"pHYs" if data.len() == 9 && data[8] == 1 => {
                let ppm = |at: usize| {
                    f64::from(u32::from_be_bytes([
                        data[at],
                        data[at + 1],
                        data[at + 2],
                        data[at + 3],
                    ]))
                };
                meta.resolution = Resolution::from_per_metre(ppm(0), ppm(4));
            }
            b"eXIf" if meta.exif.is_none() => meta.exif = Some(without_exif_prefix(data)),
            b"iTXt" if meta.xmp.is_none() => meta.xmp = png_itxt_xmp(data),
            _ => {}
        }
    }
    meta
}

/// The text of an uncompressed `iTXt` chunk whose keyword is the XMP one.
fn png_itxt_xmp(data: &[u8]) -> Option<Vec<u8>> {
    let rest = data.strip_prefix(PNG_XMP_KEYWORD)?.strip_prefix(b"\0")?;
    let (&[0, _], rest) = rest.split_at_checked(2)? else {
        return None; // compressed text would need an inflater
    };
    let after_language = &rest[rest.iter().position(|&b| b == 0)? + 1..];
    let text = &after_language[after_language.iter().position(|&b| b == 0)? + 1..];
    Some(text.to_vec())
}

/// RIFF chunks of a WebP file as (fourcc, data), and whether the whole file parsed cleanly.
fn riff_chunks(bytes: &[u8]) -> (Vec<Chunk<'_>>, bool) {
    let mut chunks = Vec::new();
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return (chunks, false);
    }
    let mut pos = 12;
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 8) else {
            return (chunks, false);
        };
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(data) = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(pos + 8..(pos + 8).checked_add(len)?))
        else {
            return (chunks, false);
        };
        chunks.push(([head[0], head[1], head[2], head[3]], data));
        pos += 8 + data.len() + data.len() % 2;
    }
    (chunks, true)
}

fn read_webp(bytes: &[u8]) -> Metadata {
    let mut meta = Metadata::default();
    for (fourcc, data) in riff_chunks(bytes).0 {
        match &fourcc {
            b"EXIF" if meta.exif.is_none() => meta.exif = Some(without_exif_prefix(data)),
            b"XMP " if meta.xmp.is_none() => meta.xmp = Some(data.to_vec()),
            b"ICCP" if meta.icc.is_none() => meta.icc = Some(data.to_vec()),
            _ => {}
        }
    }
    meta
}

// ---------------------------------------------------------------------------------------------
// EXIF

const TAG_ORIENTATION: u16 = 0x0112;
const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_GPS_IFD: u16 = 0x8825;
const TAG_INTEROP_IFD: u16 = 0xA005;
const TAG_PIXEL_X: u16 = 0xA002;
const TAG_PIXEL_Y: u16 = 0xA003;
/// TIFF tag ExtraSamples: what the samples after the colour ones are.
const TAG_EXTRA_SAMPLES: u16 = 0x0152;
const TAG_X_RESOLUTION: u16 = 0x011A;
const TAG_Y_RESOLUTION: u16 = 0x011B;
const TAG_RESOLUTION_UNIT: u16 = 0x0128;
const RATIONAL: u16 = 5;
const SHORT: u16 = 3;
const LONG: u16 = 4;

/// IFD0 tags describing or pointing at the original image data (strips, tiles, embedded
/// thumbnail), or duplicating blocks kept elsewhere (XMP 0x02BC, ICC 0x8773): all stale once
/// the pixels are re-encoded, and an XMP copy here would leak GPS past `--strip-gps`.
const IFD0_DROPPED: &[u16] = &[
    0x0100, 0x0101, 0x0102, 0x0103, 0x0106, 0x0111, 0x0115, 0x0116, 0x0117, 0x011C, 0x0142, 0x0143,
    0x0144, 0x0145, 0x014A, 0x0153, 0x0201, 0x0202, 0x02BC, 0x8773, 0xEA1C, 0xEA1D,
];
/// Exif-IFD tags dropped: MakerNote (0x927C) holds vendor data with offsets relative to where
/// it sat in the original file, so moving it silently corrupts it; 0xEA1C/0xEA1D are
/// Microsoft padding and the MakerNote offset fix-up.
const EXIF_DROPPED: &[u16] = &[0x927C, 0xEA1C, 0xEA1D];
/// Pointers are never copied as values; the ones we follow are written afresh.
const POINTERS: &[u16] = &[TAG_EXIF_IFD, TAG_GPS_IFD, TAG_INTEROP_IFD];

/// One IFD entry; `value` holds the raw bytes in the source byte order, which the output keeps.
#[derive(Debug, Clone)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    value: Vec<u8>,
}

impl Entry {
    fn single(tag: u16, kind: u16, value: &[u8]) -> Entry {
        let value = value.to_vec();
        Entry {
            tag,
            kind,
            count: 1,
            value,
        }
    }
}

/// A TIFF byte order: true for big-endian (`MM`, Motorola).
#[derive(Clone, Copy)]
struct Order(bool);

impl Order {
    fn u16(self, v: u16) -> [u8; 2] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(self, v: u32) -> [u8; 4] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u16_at(self, data: &[u8], at: usize) -> Option<u16> {
        let b: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.0 {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(self, data: &[u8], at: usize) -> Option<u32> {
        let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.0 {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// Reads the IFD at `offset` of `data`, sorted by tag, with unreadable entries skipped.
    /// `budget` bounds the bytes copied, so many entries sharing one huge value cannot blow up
    /// memory: exhausting it gives `None`.
    fn ifd(self, data: &[u8], offset: u32, budget: &mut usize) -> Option<Vec<Entry>> {
        let at = usize::try_from(offset).ok().filter(|&at| at < data.len())?;
        let mut entries = Vec::new();
        for i in 0..usize::from(self.u16_at(data, at)?) {
            let e = at + 2 + 12 * i;
            let (Some(tag), Some(kind), Some(count)) = (
                self.u16_at(data, e),
                self.u16_at(data, e + 2),
                self.u32_at(data, e + 4),
            ) else {
                break; // the IFD is cut short: keep the entries read so far
            };
            let size = type_size(kind).and_then(|s| s.checked_mul(usize::try_from(count).ok()?));
            let start = match size {
                Some(size) if size <= 4 => Some(e + 8),
                Some(_) => self
                    .u32_at(data, e + 8)
                    .and_then(|o| usize::try_from(o).ok()),
                None => None,
            };
            let Some(value) = start
                .zip(size)
                .and_then(|(s, n)| data.get(s..s.checked_add(n)?))
            else {
                continue; // unknown type or value out of range
            };
            *budget = budget.checked_sub(value.len())?;
            entries.push(Entry {
                tag,
                kind,
                count,
                value: value.to_vec(),
            });
        }
        entries.sort_by_key(|e| e.tag);
        entries.dedup_by_key(|e| e.tag);
        Some(entries)
    }

    /// The offset held by a pointer entry (LONG or IFD type, count 1).
    fn pointer(self, entries: &[Entry], tag: u16) -> Option<u32> {
        let e = entries.iter().find(|e| e.tag == tag)?;
        (matches!(e.kind, LONG | 13) && e.count == 1).then(|| self.u32_at(&e.value, 0))?
    }
}

fn type_size(kind: u16) -> Option<usize> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

/// One IFD0 entry of a TIFF structure (an EXIF block, or a whole TIFF file) found in place:
/// its type, count and value bytes in the structure's byte order. Unlike [`Order::ifd`] it
/// copies nothing, so looking up one tag of a large TIFF costs a few reads.
struct Field<'a> {
    order: Order,
    kind: u16,
    count: u32,
    value: &'a [u8],
}

impl Field<'_> {
    /// The `i`-th value as an integer, whatever integer type the writer chose (BYTE, SHORT,
    /// LONG and their signed forms): exiftool and libvips read them all, and so must we.
    fn int(&self, i: usize) -> Option<i64> {
        let size = type_size(self.kind)?;
        let at = i.checked_mul(size)?;
        let o = self.order;
        Some(match self.kind {
            1 => i64::from(*self.value.get(at)?),
            6 => i64::from(i8::from_ne_bytes([*self.value.get(at)?])),
            3 => i64::from(o.u16_at(self.value, at)?),
            8 => i64::from(o.u16_at(self.value, at)?.cast_signed()),
            4 => i64::from(o.u32_at(self.value, at)?),
            9 => i64::from(o.u32_at(self.value, at)?.cast_signed()),
            _ => return None,
        })
    }

    /// The `i`-th value as a number: a RATIONAL or SRATIONAL, or any integer type.
    fn number(&self, i: usize) -> Option<f64> {
        let o = self.order;
        match self.kind {
            5 | 10 => {
                let at = i.checked_mul(8)?;
                let (n, d) = (o.u32_at(self.value, at)?, o.u32_at(self.value, at + 4)?);
                let (n, d) = if self.kind == 5 {
                    (f64::from(n), f64::from(d))
                } else {
                    (f64::from(n.cast_signed()), f64::from(d.cast_signed()))
                };
                (d != 0.0).then(|| n / d)
            }
            #[allow(clippy::cast_precision_loss)] // every integer type here fits in 53 bits
            _ => self.int(i).map(|v| v as f64),
        }
    }
}

/// The byte order of a TIFF structure, from its header.
fn tiff_order(tiff: &[u8]) -> Option<Order> {
    match tiff.get(0..4)? {
        b"II*\0" => Some(Order(false)),
        b"MM\0*" => Some(Order(true)),
        _ => None,
    }
}

/// The IFD0 entry for `tag` of a TIFF structure, if it is there and its value lies inside.
fn ifd0_field(tiff: &[u8], tag: u16) -> Option<Field<'_>> {
    // A BigTIFF file (version 43) has 8-byte counts and offsets: 20-byte entries holding up to
    // 8 bytes of value in place.
    let (order, big) = match tiff.get(0..4)? {
        b"II+\0" => (Order(false), true),
        b"MM\0+" => (Order(true), true),
        _ => (tiff_order(tiff)?, false),
    };
    let offset = |at: usize| -> Option<usize> {
        if !big {
            return usize::try_from(order.u32_at(tiff, at)?).ok();
        }
        let (a, b) = (
            order.u32_at(tiff, at)?,
            order.u32_at(tiff, at.checked_add(4)?)?,
        );
        let (high, low) = if order.0 { (a, b) } else { (b, a) };
        usize::try_from(u64::from(high) << 32 | u64::from(low)).ok()
    };
    let (inline, entry_len) = if big { (8, 20) } else { (4, 12) };
    let at = offset(if big { 8 } else { 4 })?;
    let (entries, first) = if big {
        (offset(at)?, at.checked_add(8)?)
    } else {
        (usize::from(order.u16_at(tiff, at)?), at.checked_add(2)?)
    };
    for i in 0..entries {
        let e = first.checked_add(entry_len * i)?;
        if order.u16_at(tiff, e)? != tag {
            continue;
        }
        let kind = order.u16_at(tiff, e + 2)?;
        let count = u32::try_from(offset(e + 4)?).ok()?;
        let size = type_size(kind)?.checked_mul(usize::try_from(count).ok()?)?;
        let value_at = e + entry_len - inline;
        let start = if size <= inline {
            value_at
        } else {
            offset(value_at)?
        };
        let value = tiff.get(start..start.checked_add(size)?)?;
        return Some(Field {
            order,
            kind,
            count,
            value,
        });
    }
    None
}

/// The EXIF `Orientation` (1..=8) of a TIFF structure: an EXIF block, or a whole TIFF file,
/// whose IFD0 holds the tag the same way. Read as exiftool and libvips read it, from any
/// integer type in either byte order (some Panasonic cameras write a LONG). `None` when the
/// tag is absent or its value is not a valid orientation, which viewers show as 1.
///
/// This is the only reader of the tag: the pipeline turns the pixels by what it returns, and
/// [`rewrite_exif`] writes Orientation 1 only into outputs made that way, so an output can
/// never say "upright" over pixels that were not turned.
pub(crate) fn orientation(tiff: &[u8]) -> Option<u8> {
    let field = ifd0_field(tiff, TAG_ORIENTATION)?;
    if field.count == 0 {
        return None;
    }
    u8::try_from(field.int(0)?)
        .ok()
        .filter(|v| (1..=8).contains(v))
}

/// The resolution in IFD0 of a TIFF structure (an EXIF block, or a whole TIFF file):
/// XResolution and YResolution (YResolution defaults to XResolution) in ResolutionUnit 2
/// (inch, the default) or 3 (centimetre); unit 1 (none) is no resolution.
pub(crate) fn exif_resolution(tiff: &[u8]) -> Option<Resolution> {
    let number = |tag: u16| ifd0_field(tiff, tag).and_then(|f| f.number(0));
    let unit = match ifd0_field(tiff, TAG_RESOLUTION_UNIT).map_or(Some(2), |f| f.int(0))? {
        2 => ResolutionUnit::Inch,
        3 => ResolutionUnit::Centimetre,
        _ => return None,
    };
    let x = number(TAG_X_RESOLUTION)?;
    let y = number(TAG_Y_RESOLUTION).unwrap_or(x);
    (x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0).then_some(Resolution { x, y, unit })
}

/// Returns true if and only if a TIFF file says its alpha is associated (premultiplied):
/// ExtraSamples (0x0152) starts with 1. Decoders hand such samples back as stored, so the
/// pipeline must divide the colours by alpha before treating them as straight.
pub(crate) fn tiff_associated_alpha(tiff: &[u8]) -> bool {
    ifd0_field(tiff, TAG_EXTRA_SAMPLES).is_some_and(|f| f.int(0) == Some(1))
}

/// Returns true if and only if a TIFF file holds CMYK samples: PhotometricInterpretation 5
/// (separated) with four inks, InkSet 1 (CMYK, the default) rather than 2 (other inks).
pub(crate) fn tiff_is_cmyk(tiff: &[u8]) -> bool {
    let int = |tag: u16| ifd0_field(tiff, tag).and_then(|f| f.int(0));
    int(0x0106) == Some(5) && int(0x0115) == Some(4) && int(0x014C).unwrap_or(1) == 1
}

/// Replaces or inserts `entry`, keeping tags in ascending order as TIFF requires.
fn upsert(entries: &mut Vec<Entry>, entry: Entry) {
    match entries.binary_search_by_key(&entry.tag, |e| e.tag) {
        Ok(i) => entries[i] = entry,
        Err(i) => entries.insert(i, entry),
    }
}

/// Bytes an IFD and its out-of-line values take, each value padded to an even length.
fn ifd_len(entries: &[Entry]) -> usize {
    let values: usize = entries
        .iter()
        .filter(|e| e.value.len() > 4)
        .map(|e| e.value.len() + e.value.len() % 2)
        .sum();
    2 + 12 * entries.len() + 4 + values
}

/// Appends an IFD, then its out-of-line values; offsets count from the start of `out`, which
/// is the start of the TIFF block. `None` if the IFD is too big to address.
fn write_ifd(out: &mut Vec<u8>, entries: &[Entry], order: Order) -> Option<()> {
    let mut values_at = out.len() + 2 + 12 * entries.len() + 4;
    out.extend_from_slice(&order.u16(u16::try_from(entries.len()).ok()?));
    for e in entries {
        out.extend_from_slice(&order.u16(e.tag));
        out.extend_from_slice(&order.u16(e.kind));
        out.extend_from_slice(&order.u32(e.count));
        if e.value.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..e.value.len()].copy_from_slice(&e.value);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&order.u32(u32::try_from(values_at).ok()?));
            values_at += e.value.len() + e.value.len() % 2;
        }
    }
    out.extend_from_slice(&[0; 4]); // no next IFD: IFD1 (the thumbnail) is dropped
    for e in entries.iter().filter(|e| e.value.len() > 4) {
        out.extend_from_slice(&e.value);
        if e.value.len() % 2 == 1 {
            out.push(0);
        }
    }
    Some(())
}

/// Rewrites an EXIF block for a resized, upright output, as a fresh compact TIFF structure in
/// the same byte order: IFD0 with Orientation 1, the Exif IFD with PixelX/YDimension set to
/// `width`×`height`, the Interop IFD, and the GPS IFD unless `strip_gps`. The thumbnail (IFD1),
/// tags about the original image data and the MakerNote are dropped. Only those three pointers
/// are followed, once each, so cyclic offsets cannot loop; a sub-IFD that cannot be read is
/// dropped. Returns `None` for a block that is not TIFF, an unreadable IFD0, or when nothing
/// but the orientation would remain.
pub(crate) fn rewrite_exif(
    exif: &[u8],
    width: u32,
    height: u32,
    strip_gps: bool,
) -> Option<Vec<u8>> {
    let order = match exif.get(0..4)? {
        b"II*\0" => Order(false),
        b"MM\0*" => Order(true),
        _ => return None,
    };
    let mut budget = exif.len().saturating_mul(2);
    let raw0 = order.ifd(exif, order.u32_at(exif, 4)?, &mut budget)?;
    let mut follow = |parent: Option<&Vec<Entry>>, tag: u16| {
        order.ifd(exif, order.pointer(parent?, tag)?, &mut budget)
    };
    let raw_exif = follow(Some(&raw0), TAG_EXIF_IFD);
    let raw_interop = follow(raw_exif.as_ref(), TAG_INTEROP_IFD);
    let raw_gps = follow(Some(&raw0).filter(|_| !strip_gps), TAG_GPS_IFD);
    let keep = |raw: Option<Vec<Entry>>, dropped: &[u16]| {
        let kept: Vec<Entry> = raw?
            .into_iter()
            .filter(|e| !POINTERS.contains(&e.tag) && !dropped.contains(&e.tag))
            .collect();
        (!kept.is_empty()).then_some(kept)
    };
    let mut ifd0 = keep(Some(raw0), IFD0_DROPPED).unwrap_or_default();
    let mut exif_ifd = keep(raw_exif, EXIF_DROPPED);
    let interop = keep(raw_interop, &[]).filter(|_| exif_ifd.is_some());
    let gps = keep(raw_gps, &[]);
    if ifd0.iter().all(|e| e.tag == TAG_ORIENTATION) && exif_ifd.is_none() && gps.is_none() {
        return None;
    }
    upsert(
        &mut ifd0,
        Entry::single(TAG_ORIENTATION, SHORT, &order.u16(1)),
    );
    if let Some(e) = exif_ifd.as_mut() {
        upsert(e, Entry::single(TAG_PIXEL_X, LONG, &order.u32(width)));
        upsert(e, Entry::single(TAG_PIXEL_Y, LONG, &order.u32(height)));
    }

    // A pointer entry is 4 bytes inline whatever its value, so the layout is known before the
    // offsets are: IFD0, Exif IFD, Interop IFD, GPS IFD, each followed by its values.
    let len = |ifd: &Option<Vec<Entry>>| ifd.as_deref().map_or(0, ifd_len);
    let pointer_len = |present: bool| if present { 12 } else { 0 };
    let ifd0_len = ifd_len(&ifd0) + pointer_len(exif_ifd.is_some()) + pointer_len(gps.is_some());
    let exif_len = len(&exif_ifd) + pointer_len(interop.is_some());
    let exif_at = 8 + ifd0_len;
    let interop_at = exif_at + exif_len;
    let gps_at = interop_at + len(&interop);
    let end = gps_at + len(&gps);
    u32::try_from(end).ok()?; // so every offset below fits too
    let pointer =
        |tag: u16, at: usize| Entry::single(tag, LONG, &order.u32(u32::try_from(at).unwrap_or(0)));
    if let Some(e) = exif_ifd.as_mut() {
        upsert(&mut ifd0, pointer(TAG_EXIF_IFD, exif_at));
        if interop.is_some() {
            upsert(e, pointer(TAG_INTEROP_IFD, interop_at));
        }
    }
    if gps.is_some() {
        upsert(&mut ifd0, pointer(TAG_GPS_IFD, gps_at));
    }

    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(if order.0 {
        b"MM\0*\0\0\0\x08"
    } else {
        b"II*\0\x08\0\0\0"
    });
    for ifd in [Some(ifd0), exif_ifd, interop, gps].iter().flatten() {
        write_ifd(&mut out, ifd, order)?;
    }
    debug_assert_eq!(out.len(), end);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// XMP

/// Rewrites an XMP packet for an upright output: `tiff:Orientation` becomes 1 (attribute and
/// element forms), and with `strip_gps` every `exif:GPS*` attribute or element is removed.
///
/// This is text surgery, not an XML parser: it relies on the usual `tiff:` and `exif:`
/// prefixes. Whenever it cannot be sure (not UTF-8, an orientation or GPS property in a form
/// it does not recognise, or `:GPS` still present afterwards, e.g. under another prefix) it
/// returns `None` and the XMP is dropped rather than kept wrong or leaking the location.
/// Textual places (city, country) are not GPS and are kept.
#[cfg(test)]
fn rewrite_xmp(xmp: &[u8], strip_gps: bool) -> Option<Vec<u8>> {
    fix_xmp(xmp, strip_gps, None)
}

fn fix_xmp(xmp: &[u8], strip_gps: bool, size: Option<(u32, u32)>) -> Option<Vec<u8>> {
    let mut text = set_xmp_property(std::str::from_utf8(xmp).ok()?, "tiff:Orientation", "1")?;
    if strip_gps {
        text = remove_gps(&text)?;
        if text.contains(":GPS") {
            return None;
        }
    }
    if let Some((width, height)) = size {
        for (name, value) in [
            ("exif:PixelXDimension", width),
            ("exif:PixelYDimension", height),
            ("tiff:ImageWidth", width),
            ("tiff:ImageLength", height),
        ] {
            // Stale dimensions are harmless, so an unusual form is left as it is.
            text = set_xmp_property(&text, name, &value.to_string()).unwrap_or(text);
        }
    }
    Some(text.into_bytes())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

/// The range of an attribute value (inside the quotes) whose name ends at `after_name`.
fn attribute_value(text: &str, after_name: usize) -> Option<(usize, usize)> {
    let rest = &text[after_name..];
    let rest_eq = rest.trim_start().strip_prefix('=')?;
    let value = rest_eq.trim_start();
    let quote = value.chars().next().filter(|&c| c == '"' || c == '\'')?;
    let start = text.len() - value.len() + 1;
    let end = start + text[start..].find(quote)?;
    Some((start, end))
}

/// Sets every occurrence of property `name` (`prefix:Local`) to `value`, in attribute form
/// `name="…"` and in simple element form `<name>…</name>`. `None` if an occurrence has
/// another form (e.g. an element with attributes), since it could not be changed safely.
fn set_xmp_property(text: &str, name: &str, value: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(name) {
        let at = from + found;
        let after = at + name.len();
        from = after;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if bytes.get(after).is_some_and(|&b| is_name_byte(b)) {
            continue; // a longer name, e.g. tiff:OrientationX
        }
        let (start, end) = match before {
            Some(b'<') => {
                if bytes.get(after) != Some(&b'>') {
                    return None;
                }
                let close = format!("</{name}");
                (after + 1, after + 1 + text[after + 1..].find(&close)?)
            }
            Some(b) if b.is_ascii_whitespace() => attribute_value(text, after)?,
            _ => continue, // a closing tag, or the name inside some other word
        };
        out.push_str(&text[copied..start]);
        out.push_str(value);
        copied = end;
        from = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Removes every `exif:GPS*` attribute and element; `None` on anything unexpected.
fn remove_gps(text: &str) -> Option<String> {
    const PREFIX: &str = "exif:GPS";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(PREFIX) {
        let at = from + found;
        let name_end = at + bytes[at..].iter().take_while(|&&b| is_name_byte(b)).count();
        let name = &text[at..name_end];
        let (start, end) = match at.checked_sub(1).map(|i| bytes[i]) {
            Some(b'<') => {
                let tag_end = name_end + text[name_end..].find('>')?;
                let end = if bytes[tag_end - 1] == b'/' {
                    tag_end + 1
                } else {
                    let close = format!("</{name}");
                    let close_at = tag_end + text[tag_end..].find(&close)?;
                    close_at + text[close_at..].find('>')? + 1
                };
                (at - 1, end)
            }
            Some(b) if b.is_ascii_whitespace() => (at, attribute_value(text, name_end)?.1 + 1),
            _ => return None,
        };
        // Take the indentation before it along, so no blank line is left behind.
        let start = text[..start].trim_end().len().max(copied);
        out.push_str(&text[copied..start]);
        copied = end;
        from = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Writers

/// Largest body of one JPEG segment: the 16-bit length counts itself.
const JPEG_SEGMENT_MAX: usize = 65_533;

/// Inserts `meta` into a JPEG right after SOI (after a JFIF APP0 if present): APP1 EXIF, APP1
/// XMP, then APP2 `ICC_PROFILE` chunks. The resolution goes into the JFIF density (an APP0 is
/// added if there is none), which encoders otherwise leave at 1:1 with no unit. An EXIF or
/// XMP block too big for one segment is left out (extended XMP is not written); so is an ICC
/// profile needing more than 255 chunks. Input that does not start with SOI is returned
/// unchanged.
pub(crate) fn embed_jpeg(jpeg: &[u8], meta: &Metadata) -> Vec<u8> {
    const ICC_CHUNK: usize = JPEG_SEGMENT_MAX - 14; // signature and (sequence, count)
    if !jpeg.starts_with(&[0xFF, 0xD8]) || meta.is_empty() {
        return jpeg.to_vec();
    }
    let mut at = 2;
    if let Some(&[0xFF, 0xE0, hi, lo]) = jpeg.get(2..6) {
        at = (4 + usize::from(u16::from_be_bytes([hi, lo]))).min(jpeg.len());
    }
    let mut head = jpeg[..at].to_vec();
    if let Some(r) = meta.resolution {
        // JFIF's density: units 1 (inch) or 2 (cm), then whole pixels per unit across and down.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let density = |v: f64| (v.round().clamp(1.0, 65_535.0) as u16).to_be_bytes();
        let mut fields = vec![match r.unit {
            ResolutionUnit::Inch => 1,
            ResolutionUnit::Centimetre => 2,
        }];
        fields.extend(density(r.x));
        fields.extend(density(r.y));
        if head.get(6..11) == Some(JFIF_SIG) && head.len() >= 18 {
            head[13..18].copy_from_slice(&fields);
        } else if at == 2 {
            head.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
            head.extend_from_slice(JFIF_SIG);
            head.extend_from_slice(&[1, 1]);
            head.extend_from_slice(&fields);
            head.extend_from_slice(&[0, 0]);
        }
    }
    let mut segments = Vec::new();
    let mut segment = |marker: u8, parts: &[&[u8]]| {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if let Ok(len) = u16::try_from(len + 2).map(|l| l.to_be_bytes()) {
            segments.extend_from_slice(&[0xFF, marker, len[0], len[1]]);
            segments.extend(parts.iter().flat_map(|p| p.iter()));
        }
    };
    if let Some(exif) = &meta.exif {
        segment(0xE1, &[EXIF_SIG, exif]);
    }
    if let Some(xmp) = &meta.xmp {
        segment(0xE1, &[XMP_SIG, xmp]);
    }
    if let Some(icc) = &meta.icc {
        let chunks: Vec<&[u8]> = icc.chunks(ICC_CHUNK).collect();
        if let Ok(count) = u8::try_from(chunks.len()) {
            for (seq, chunk) in (1..=count).zip(chunks) {
                segment(0xE2, &[ICC_SIG, &[seq, count], chunk]);
            }
        }
    }
    [&head, &segments, &jpeg[at..]].concat()
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let Ok(len) = u32::try_from(len) else {
        return;
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    for part in parts {
        crc.update(part);
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks: valid for every inflater,
/// and needs no compression library. ICC profiles are small, so the cost is a few KB.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(usize::from(u16::MAX)).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX); // chunks() bounds it
        out.push(u8::from(blocks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// Inserts `meta` into a PNG right after IHDR (so before PLTE and IDAT, as `iCCP` requires):
/// `iCCP` (stored zlib, written only if the PNG has neither `iCCP` nor `sRGB`, so an encoder
/// that already wrote the profile wins), `eXIf`, an uncompressed `iTXt` XMP chunk and `pHYs`
/// (the resolution, in pixels per metre), each only if not already present. Input that is not a PNG starting with IHDR is returned
/// unchanged.
pub(crate) fn embed_png(png: &[u8], meta: &Metadata) -> Vec<u8> {
    let chunks = png_chunks(png);
    let Some((b"IHDR", ihdr)) = chunks.first().map(|(k, d)| (k, *d)) else {
        return png.to_vec();
    };
    let has = |kind: &[u8; 4]| chunks.iter().any(|(k, _)| k == kind);
    let has_xmp = chunks
        .iter()
        .any(|(k, d)| k == b"iTXt" && d.starts_with(PNG_XMP_KEYWORD));
    let mut added = Vec::new();
    if let Some(icc) = meta.icc.as_ref().filter(|_| !has(b"iCCP") && !has(b"sRGB")) {
        png_chunk(
            &mut added,
            b"iCCP",
            &[b"ICC profile\0\0", &zlib_stored(icc)],
        );
    }
    if let Some(exif) = meta.exif.as_ref().filter(|_| !has(b"eXIf")) {
        png_chunk(&mut added, b"eXIf", &[exif]);
    }
    if let Some(xmp) = meta.xmp.as_ref().filter(|_| !has_xmp) {
        // keyword, NUL, compression flag 0, method 0, empty language, NUL, empty translation, NUL
        png_chunk(&mut added, b"iTXt", &[PNG_XMP_KEYWORD, b"\0\0\0\0\0", xmp]);
    }
    if let Some(r) = meta.resolution.filter(|_| !has(b"pHYs")) {
        let (x, y) = r.per_metre();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ppm = |v: f64| (v.round().clamp(1.0, f64::from(u32::MAX)) as u32).to_be_bytes();
        png_chunk(&mut added, b"pHYs", &[&ppm(x), &ppm(y), &[1]]);
    }
    let at = PNG_SIG.len() + 12 + ihdr.len();
    match png.split_at_checked(at) {
        Some((head, tail)) => [head, &added, tail].concat(),
        None => png.to_vec(), // cut inside IHDR's CRC
    }
}

/// ExtraSamples value: unassociated (straight, not premultiplied) alpha.
const UNASSOCIATED_ALPHA: u16 = 2;

/// Completes a TIFF file written by the `image` crate's encoder with the IFD0 tags it cannot
/// write: ExtraSamples = unassociated alpha when the last sample is alpha (`alpha`), which
/// libtiff otherwise warns about on every read and which tells readers the colour samples are
/// not premultiplied. Input that is not a classic TIFF is returned unchanged.
pub(crate) fn embed_tiff(tiff: &[u8], alpha: bool, resolution: Option<Resolution>) -> Vec<u8> {
    let Some(order) = tiff_order(tiff) else {
        return tiff.to_vec();
    };
    let mut set = resolution
        .map(|r| resolution_entries(order, r))
        .unwrap_or_default();
    if alpha {
        set.push(Entry::single(
            TAG_EXTRA_SAMPLES,
            SHORT,
            &order.u16(UNASSOCIATED_ALPHA),
        ));
    }
    if set.is_empty() {
        return tiff.to_vec();
    }
    set_ifd0_tags(tiff, order, set).unwrap_or_else(|| tiff.to_vec())
}

/// A TIFF structure (EXIF block or file) whose IFD0 says resolution `r`.
fn set_tiff_resolution(tiff: &[u8], r: Resolution) -> Option<Vec<u8>> {
    let order = tiff_order(tiff)?;
    set_ifd0_tags(tiff, order, resolution_entries(order, r))
}

/// XResolution, YResolution and ResolutionUnit entries for `r`.
fn resolution_entries(order: Order, r: Resolution) -> Vec<Entry> {
    let rational = |v: f64| {
        let (n, d) = rational(v);
        [order.u32(n), order.u32(d)].concat()
    };
    let unit = match r.unit {
        ResolutionUnit::Inch => 2,
        ResolutionUnit::Centimetre => 3,
    };
    vec![
        Entry::single(TAG_X_RESOLUTION, RATIONAL, &rational(r.x)),
        Entry::single(TAG_Y_RESOLUTION, RATIONAL, &rational(r.y)),
        Entry::single(TAG_RESOLUTION_UNIT, SHORT, &order.u16(unit)),
    ]
}

/// `v` as a TIFF RATIONAL: a whole number over 1 when it is one (to within 0.005), else
/// thousandths.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn rational(v: f64) -> (u32, u32) {
    let v = v.clamp(0.0, f64::from(u32::MAX) / 1000.0);
    if (v - v.round()).abs() < 0.005 {
        (v.round() as u32, 1)
    } else {
        ((v * 1000.0).round() as u32, 1000)
    }
}

/// Sets the resolution in a BMP's header (pixels per metre, rounded) written by the `image`
/// crate's encoder, which leaves it 0 (unknown). Anything but such a BMP is returned unchanged.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn embed_bmp(bmp: &[u8], resolution: Option<Resolution>) -> Vec<u8> {
    let mut out = bmp.to_vec();
    let Some(r) = resolution else { return out };
    if !bmp.starts_with(b"BM") || le_u32(bmp, 14).is_none_or(|h| h < 40) || bmp.len() < 46 {
        return out;
    }
    let (x, y) = r.per_metre();
    let ppm = |v: f64| (v.round().clamp(0.0, f64::from(i32::MAX)) as i32).to_le_bytes();
    out[38..42].copy_from_slice(&ppm(x));
    out[42..46].copy_from_slice(&ppm(y));
    out
}

/// Sets `set` in IFD0 of a TIFF file: a new IFD0 with its values is appended (the image data
/// does not move, so strip offsets stay right) and the header points at it; the old one is
/// left as a few dead bytes. `None` if IFD0 cannot be read whole.
fn set_ifd0_tags(tiff: &[u8], order: Order, set: Vec<Entry>) -> Option<Vec<u8>> {
    let ifd0 = order.u32_at(tiff, 4)?;
    let declared = usize::from(order.u16_at(tiff, usize::try_from(ifd0).ok()?)?);
    let mut budget = tiff.len().saturating_mul(2);
    let mut entries = order.ifd(tiff, ifd0, &mut budget)?;
    if entries.len() != declared {
        return None; // an entry could not be read: rewriting would lose it
    }
    for e in set {
        upsert(&mut entries, e);
    }
    let mut out = tiff.to_vec();
    if out.len() % 2 == 1 {
        out.push(0); // IFDs start on a word boundary
    }
    let at = u32::try_from(out.len()).ok()?;
    write_ifd(&mut out, &entries, order)?;
    out[4..8].copy_from_slice(&order.u32(at));
    Some(out)
}

fn riff_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
    let Ok(len) = u32::try_from(data.len()) else {
        return;
    };
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// Rewrites a WebP file in the extended (VP8X) format carrying `meta`: chunks in the order the
/// container spec requires (VP8X, ICCP, ANIM/ANMF or ALPH + VP8/VP8L, other chunks, EXIF,
/// XMP), VP8X flags for ICC, alpha (from an ALPH chunk, the VP8L alpha bit or an existing
/// VP8X), EXIF, XMP and animation. The canvas is `width`×`height` unless the input already
/// has a VP8X. Blocks in `meta` replace the input's own. Empty `meta`, or input that is not a
/// well-formed WebP, is returned unchanged.
pub(crate) fn embed_webp(webp: &[u8], width: u32, height: u32, meta: &Metadata) -> Vec<u8> {
    const ICC: u8 = 0x20;
    const ALPHA: u8 = 0x10;
    const EXIF: u8 = 0x08;
    const XMP: u8 = 0x04;
    const ANIMATION: u8 = 0x02;
    let (chunks, complete) = riff_chunks(webp);
    if meta.is_empty() || !complete {
        return webp.to_vec();
    }
    let mut flags = 0;
    let mut canvas = (width.wrapping_sub(1), height.wrapping_sub(1));
    let mut image = Vec::new();
    let mut other = Vec::new();
    let (mut icc, mut exif, mut xmp) = (None, None, None);
    for (fourcc, data) in chunks {
        match &fourcc {
            b"VP8X" if data.len() >= 10 => {
                flags |= data[0] & (ALPHA | ANIMATION);
                let u24 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], 0]);
                canvas = (u24(&data[4..7]), u24(&data[7..10]));
            }
            b"ICCP" => icc = Some(data),
            b"EXIF" => exif = Some(data),
            b"XMP " => xmp = Some(data),
            b"ALPH" | b"VP8 " | b"VP8L" | b"ANIM" | b"ANMF" => {
                if &fourcc == b"ALPH"
                    || (&fourcc == b"VP8L" && data.get(4).is_some_and(|b| b & 0x10 != 0))
                {
                    flags |= ALPHA; // VP8L: bit 28 of the header after the 0x2F signature
                }
                if &fourcc == b"ANIM" {
                    flags |= ANIMATION;
                }
                image.push((fourcc, data));
            }
            _ => other.push((fourcc, data)),
        }
    }
    let icc = meta.icc.as_deref().or(icc);
    let exif = meta.exif.as_deref().or(exif);
    let xmp = meta.xmp.as_deref().or(xmp);
    for (present, flag) in [
        (icc.is_some(), ICC),
        (exif.is_some(), EXIF),
        (xmp.is_some(), XMP),
    ] {
        if present {
            flags |= flag;
        }
    }
    if image.is_empty() || canvas.0 >= 1 << 24 || canvas.1 >= 1 << 24 {
        return webp.to_vec();
    }
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&canvas.0.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&canvas.1.to_le_bytes()[..3]);
    riff_chunk(&mut body, b"VP8X", &vp8x);
    if let Some(icc) = icc {
        riff_chunk(&mut body, b"ICCP", icc);
    }
    for (fourcc, data) in image.iter().chain(&other) {
        riff_chunk(&mut body, fourcc, data);
    }
    if let Some(exif) = exif {
        riff_chunk(&mut body, b"EXIF", exif);
    }
    if let Some(xmp) = xmp {
        riff_chunk(&mut body, b"XMP ", xmp);
    }
    let Ok(riff_len) = u32::try_from(body.len()) else {
        return webp.to_vec();
    };
    [b"RIFF".as_slice(), &riff_len.to_le_bytes(), &body].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use exif::{Context, In, Tag};
    use image::ImageDecoder;
    use std::io::Cursor;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/metadata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse(exif: &[u8]) -> exif::Exif {
        exif::Reader::new()
            .read_raw(exif.to_vec())
            .expect("rewritten EXIF parses")
    }

    fn shown(exif: &exif::Exif, tag: Tag) -> Option<String> {
        let field = exif.get_field(tag, In::PRIMARY)?;
        Some(field.display_value().to_string())
    }

    fn uint(exif: &exif::Exif, tag: Tag) -> Option<u32> {
        exif.get_field(tag, In::PRIMARY)?.value.get_uint(0)
    }

    fn sample_meta() -> Metadata {
        let exif = rewrite_exif(&fixture("dune_canon_thumbnail.exif"), 64, 48, false);
        let resolution = exif.as_deref().and_then(exif_resolution);
        Metadata {
            exif,
            xmp: Some(br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"/></rdf:RDF></x:xmpmeta>"#.to_vec()),
            icc: Some(moxcms::ColorProfile::new_srgb().encode().expect("sRGB profile")),
            resolution,
        }
    }

    fn rgb(width: u32, height: u32) -> Vec<u8> {
        (0..width * height * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect()
    }

    fn jpeg_file() -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode(&rgb(64, 48), 64, 48, image::ExtendedColorType::Rgb8)
            .expect("encode JPEG");
        out
    }

    fn png_file() -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&rgb(64, 48), 64, 48, image::ExtendedColorType::Rgb8)
            .expect("encode PNG");
        out
    }
    use image::ImageEncoder;

    /// A little-endian TIFF block: IFD0 at 8 with the given (tag, type, count, value) entries.
    fn tiff(entries: &[(u16, u16, u32, u32)], tail: &[u8]) -> Vec<u8> {
        let mut out = b"II*\0\x08\0\0\0".to_vec();
        out.extend_from_slice(&u16::try_from(entries.len()).unwrap().to_le_bytes());
        for &(tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(tail);
        out
    }

    /// A TIFF block whose IFD0 holds one Orientation entry of type `kind` with the value 6
    /// (or `value`), in either byte order, laid out as a writer of that type would.
    fn orientation_block(big_endian: bool, kind: u16, value: i64) -> Vec<u8> {
        let order = Order(big_endian);
        let mut out = if big_endian {
            b"MM\0*\0\0\0\x08".to_vec()
        } else {
            b"II*\0\x08\0\0\0".to_vec()
        };
        out.extend_from_slice(&order.u16(1));
        out.extend_from_slice(&order.u16(TAG_ORIENTATION));
        out.extend_from_slice(&order.u16(kind));
        out.extend_from_slice(&order.u32(1));
        let mut inline = match kind {
            1 | 6 => vec![value as u8],
            3 | 8 => order.u16(value as u16).to_vec(),
            _ => order.u32(value as u32).to_vec(),
        };
        inline.resize(4, 0);
        out.extend_from_slice(&inline);
        out.extend_from_slice(&[0; 4]);
        out
    }

    #[test]
    fn orientation_is_read_from_every_integer_type_in_both_byte_orders() {
        // BYTE, SHORT, LONG, SBYTE, SSHORT, SLONG: issue #13 (LONG/SLONG from Panasonic cameras).
        for big_endian in [false, true] {
            for kind in [1, 3, 4, 6, 8, 9] {
                let block = orientation_block(big_endian, kind, 6);
                assert_eq!(orientation(&block), Some(6), "type {kind}, MM {big_endian}");
                // kamadak-exif, an independent reader, agrees on what the block says.
                let exif = parse(&block);
                let field = exif.get_field(Tag::Orientation, In::PRIMARY).unwrap();
                assert_eq!(
                    field.value.get_uint(0).or_else(|| match &field.value {
                        exif::Value::SByte(v) => Some(v[0] as u32),
                        exif::Value::SShort(v) => Some(v[0] as u32),
                        exif::Value::SLong(v) => Some(v[0] as u32),
                        _ => None,
                    }),
                    Some(6)
                );
            }
        }
    }

    #[test]
    fn invalid_or_unreadable_orientations_are_none() {
        for (kind, value) in [(3, 0), (3, 9), (4, 0x0001_0006), (9, -6), (2, 6), (5, 6)] {
            let block = orientation_block(false, kind, value);
            assert_eq!(orientation(&block), None, "type {kind} value {value}");
        }
        assert_eq!(orientation(b""), None);
        assert_eq!(orientation(b"II*\0\xff\xff\0\0"), None);
        let block = orientation_block(true, 4, 8);
        for len in 0..block.len() {
            let got = orientation(&block[..len]);
            assert!(got.is_none() || len >= 22, "{len}: {got:?}");
        }
        // Whole TIFF files keep the tag in IFD0 too.
        let tiff_file = tiff(&[(0x0100, 3, 1, 8), (0x0112, 4, 1, 5)], &[]);
        assert_eq!(orientation(&tiff_file), Some(5));
    }

    #[test]
    fn exif_rewrite_replaces_a_long_orientation_with_a_short_one() {
        let original = tiff(
            &[
                (0x010F, 2, 4, u32::from_le_bytes(*b"ACME")),
                (0x0112, 4, 1, 8),
            ],
            &[],
        );
        assert_eq!(orientation(&original), Some(8));
        let rewritten = rewrite_exif(&original, 30, 20, false).expect("Make remains");
        assert_eq!(orientation(&rewritten), Some(1));
        let exif = parse(&rewritten);
        let field = exif.get_field(Tag::Orientation, In::PRIMARY).unwrap();
        assert!(matches!(field.value, exif::Value::Short(ref v) if v == &[1]));
    }

    #[test]
    fn tiff_outputs_with_alpha_get_extra_samples_and_still_decode() {
        let rgba: Vec<u8> = (0..5 * 3 * 4).map(|i| (i * 17 % 256) as u8).collect();
        let mut file = Cursor::new(Vec::new());
        image::codecs::tiff::TiffEncoder::new(&mut file)
            .write_image(&rgba, 5, 3, image::ExtendedColorType::Rgba8)
            .unwrap();
        let plain = file.into_inner();
        assert!(
            ifd0_field(&plain, TAG_EXTRA_SAMPLES).is_none(),
            "the encoder's gap"
        );
        let out = embed_tiff(&plain, true, None);
        let extra = ifd0_field(&out, TAG_EXTRA_SAMPLES).expect("added");
        assert_eq!((extra.count, extra.int(0)), (1, Some(2)));
        // Every other tag survives, and the pixels are where they were.
        let decoded = image::load_from_memory(&out).expect("decodes");
        assert_eq!(decoded.to_rgba8().into_raw(), rgba);
        for tag in [256, 257, 258, 273, 277, 279] {
            assert!(ifd0_field(&out, tag).is_some(), "tag {tag}");
        }
        assert_eq!(embed_tiff(&plain, false, None), plain);
        for len in 0..out.len() {
            let cut = &out[..len];
            let _ = embed_tiff(cut, true, None);
            let _ = read(cut, Format::Tiff);
            let _ = (
                tiff_is_cmyk(cut),
                tiff_associated_alpha(cut),
                orientation(cut),
            );
        }
        assert!(!tiff_associated_alpha(&out), "straight alpha written");
        assert!(!tiff_is_cmyk(&out));
    }

    fn dpi(x: f64, y: f64) -> Resolution {
        Resolution {
            x,
            y,
            unit: ResolutionUnit::Inch,
        }
    }

    #[test]
    fn resolution_is_read_from_jfif_exif_and_tiff_tags() {
        let with_app0 = |units: u8, x: u16, y: u16| {
            let mut jpeg = jpeg_file();
            assert_eq!(&jpeg[6..11], JFIF_SIG, "the encoder writes JFIF");
            jpeg[13] = units;
            jpeg[14..16].copy_from_slice(&x.to_be_bytes());
            jpeg[16..18].copy_from_slice(&y.to_be_bytes());
            jpeg
        };
        let read_res = |jpeg: &[u8]| read(jpeg, Format::Jpeg).resolution;
        assert_eq!(read_res(&with_app0(1, 300, 200)), Some(dpi(300.0, 200.0)));
        assert_eq!(
            read_res(&with_app0(2, 118, 118)),
            Some(Resolution {
                x: 118.0,
                y: 118.0,
                unit: ResolutionUnit::Centimetre
            })
        );
        assert_eq!(read_res(&with_app0(0, 1, 1)), None, "an aspect ratio only");
        assert_eq!(read_res(&with_app0(1, 0, 0)), None);
        // EXIF wins over JFIF, as libvips reads it.
        let exif = tiff(
            &[(0x011A, 5, 1, 38), (0x0128, 3, 1, 2)],
            &[72, 0, 0, 0, 1, 0, 0, 0],
        );
        assert_eq!(
            exif_resolution(&exif),
            Some(dpi(72.0, 72.0)),
            "Y defaults to X"
        );
        let both = embed_jpeg(
            &with_app0(1, 300, 300),
            &Metadata {
                exif: Some(exif),
                ..Metadata::default()
            },
        );
        assert_eq!(read_res(&both), Some(dpi(72.0, 72.0)));
        // ResolutionUnit 1 (none) is no resolution; 3 is centimetres.
        let none = tiff(&[(0x011A, 3, 1, 72), (0x0128, 3, 1, 1)], &[]);
        assert_eq!(exif_resolution(&none), None);
        let cm = tiff(
            &[(0x011A, 3, 1, 40), (0x011B, 4, 1, 20), (0x0128, 3, 1, 3)],
            &[],
        );
        assert_eq!(
            exif_resolution(&cm).map(|r| (r.x, r.y, r.unit)),
            Some((40.0, 20.0, ResolutionUnit::Centimetre))
        );
    }

    #[test]
    fn resolution_is_written_into_every_container_that_holds_one() {
        let meta = Metadata {
            resolution: Some(dpi(37.5, 300.0)),
            ..Metadata::default()
        };
        // JPEG: the encoder's APP0 is patched (whole numbers); one is added if missing.
        let jpeg = embed_jpeg(&jpeg_file(), &meta);
        assert_eq!(jfif_resolution(&jpeg[6..]), Some(dpi(38.0, 300.0)));
        assert_eq!(jpeg.len(), jpeg_file().len(), "patched in place");
        let bare = [&[0xFF, 0xD8][..], &jpeg_file()[20..]].concat();
        let added = embed_jpeg(&bare, &meta);
        assert_eq!(&added[2..4], &[0xFF, 0xE0]);
        assert_eq!(
            read(&added, Format::Jpeg).resolution,
            Some(dpi(38.0, 300.0))
        );
        assert!(image::load_from_memory(&added).is_ok());
        // PNG: pixels per metre, once.
        let png = embed_png(&png_file(), &meta);
        let phys = png_chunks(&png)
            .into_iter()
            .find(|c| &c.0 == b"pHYs")
            .unwrap()
            .1
            .to_vec();
        assert_eq!(
            phys,
            [&1476u32.to_be_bytes()[..], &11_811u32.to_be_bytes(), &[1]].concat()
        );
        assert_eq!(embed_png(&png, &meta), png);
        let back = read(&png, Format::Png).resolution.unwrap();
        assert!((back.x - 37.5).abs() < 0.01 && (back.y - 300.0).abs() < 0.01);
        // TIFF: rationals, thousandths when not whole.
        assert_eq!(rational(300.0), (300, 1));
        assert_eq!(rational(37.5), (37_500, 1000));
        assert_eq!(rational(299.9994), (300, 1));
        let mut file = Cursor::new(Vec::new());
        image::codecs::tiff::TiffEncoder::new(&mut file)
            .write_image(&rgb(4, 3), 4, 3, image::ExtendedColorType::Rgb8)
            .unwrap();
        let tiff = embed_tiff(&file.into_inner(), false, meta.resolution);
        assert_eq!(exif_resolution(&tiff), meta.resolution);
        assert!(image::load_from_memory(&tiff).is_ok());
        // BMP: pixels per metre in the header.
        let mut bmp = Cursor::new(Vec::new());
        image::codecs::bmp::BmpEncoder::new(&mut bmp)
            .write_image(&rgb(4, 3), 4, 3, image::ExtendedColorType::Rgb8)
            .unwrap();
        let bmp = embed_bmp(&bmp.into_inner(), meta.resolution);
        assert_eq!(
            read(&bmp, Format::Bmp)
                .resolution
                .map(|r| (r.x.round(), r.y.round())),
            Some((37.0, 300.0))
        );
        for len in 0..bmp.len() {
            let _ = embed_bmp(&bmp[..len], meta.resolution);
        }
    }

    #[test]
    fn dpi_policies_keep_scale_or_set_and_exif_follows() {
        let exif = tiff(
            &[
                (0x010F, 2, 4, u32::from_le_bytes(*b"ACME")),
                (0x011A, 5, 1, 50),
                (0x011B, 5, 1, 58),
            ],
            &[300u32, 1, 150, 1]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let source = Metadata {
            resolution: exif_resolution(&exif),
            exif: Some(exif),
            ..Metadata::default()
        };
        assert_eq!(source.resolution, Some(dpi(300.0, 150.0)));
        let apply = |policy| {
            let mut meta = source.clone();
            apply_dpi(&mut meta, policy, (0.25, 0.5));
            meta
        };
        assert_eq!(apply(DpiPolicy::Keep), source, "untouched");
        let scaled = apply(DpiPolicy::Scale);
        assert_eq!(scaled.resolution, Some(dpi(75.0, 75.0)));
        assert_eq!(
            exif_resolution(scaled.exif.as_deref().unwrap()),
            scaled.resolution
        );
        let make =
            |m: &Metadata| ifd0_field(m.exif.as_deref().unwrap(), 0x010F).map(|f| f.value.to_vec());
        assert_eq!(make(&scaled), Some(b"ACME".to_vec()));
        let set = apply(DpiPolicy::Set(96.0));
        assert_eq!(set.resolution, Some(dpi(96.0, 96.0)));
        assert_eq!(
            exif_resolution(set.exif.as_deref().unwrap()),
            set.resolution
        );
        // Nothing known, nothing invented, unless a number is given.
        let mut blank = Metadata::default();
        apply_dpi(&mut blank, DpiPolicy::Scale, (0.5, 0.5));
        assert_eq!(blank, Metadata::default());
        apply_dpi(&mut blank, DpiPolicy::Set(300.0), (0.5, 0.5));
        assert_eq!(blank.resolution, Some(dpi(300.0, 300.0)));
        assert_eq!(blank.exif, None, "no EXIF made up for it");
    }

    #[test]
    fn exif_rewrite_resets_big_endian_orientation_and_keeps_resolution() {
        let original = fixture("landscape_6_motorola.exif");
        assert_eq!(uint(&parse(&original), Tag::Orientation), Some(6));
        let rewritten = rewrite_exif(&original, 400, 600, false).expect("resolution remains");
        assert!(rewritten.starts_with(b"MM\0*"));
        let exif = parse(&rewritten);
        assert_eq!(uint(&exif, Tag::Orientation), Some(1));
        assert_eq!(shown(&exif, Tag::XResolution), Some("72".into()));
        assert_eq!(uint(&exif, Tag::YCbCrPositioning), Some(1)); // centred
    }

    #[test]
    fn exif_rewrite_keeps_camera_fields_and_drops_thumbnail_and_makernote() {
        let original = fixture("dune_canon_thumbnail.exif");
        let before = parse(&original);
        assert!(before.fields().any(|f| f.ifd_num == In::THUMBNAIL));
        assert!(before.get_field(Tag::MakerNote, In::PRIMARY).is_some());
        let rewritten = rewrite_exif(&original, 800, 500, false).expect("camera data remains");
        let after = parse(&rewritten);
        for tag in [
            Tag::Make,
            Tag::Model,
            Tag::DateTimeOriginal,
            Tag::ExposureTime,
            Tag::FNumber,
        ] {
            assert!(shown(&before, tag).is_some(), "{tag} in the fixture");
            assert_eq!(shown(&after, tag), shown(&before, tag), "{tag}");
        }
        assert_eq!(shown(&after, Tag::Make).as_deref(), Some("\"Canon\""));
        assert_eq!(uint(&after, Tag::PixelXDimension), Some(800));
        assert_eq!(uint(&after, Tag::PixelYDimension), Some(500));
        assert_eq!(uint(&after, Tag::Orientation), Some(1));
        assert!(after.fields().all(|f| f.ifd_num == In::PRIMARY), "no IFD1");
        assert!(after.get_field(Tag::MakerNote, In::PRIMARY).is_none());
        assert!(after
            .get_field(Tag::JPEGInterchangeFormat, In::PRIMARY)
            .is_none());
        assert!(
            rewritten.len() < original.len() / 2,
            "{} bytes",
            rewritten.len()
        );
        // Rewriting is stable: a second pass changes nothing.
        assert_eq!(rewrite_exif(&rewritten, 800, 500, false), Some(rewritten));
    }

    #[test]
    fn exif_rewrite_keeps_gps_and_interop_unless_gps_is_stripped() {
        let original = fixture("cranes_nexus6p_gps.exif");
        let before = parse(&original);
        let kept = parse(&rewrite_exif(&original, 1008, 756, false).expect("kept"));
        assert!(shown(&before, Tag::GPSLatitude).is_some());
        assert_eq!(
            shown(&kept, Tag::GPSLatitude),
            shown(&before, Tag::GPSLatitude)
        );
        assert_eq!(
            shown(&kept, Tag::GPSLongitude),
            shown(&before, Tag::GPSLongitude)
        );
        assert_eq!(
            shown(&kept, Tag::InteroperabilityIndex),
            shown(&before, Tag::InteroperabilityIndex)
        );
        assert!(shown(&kept, Tag::InteroperabilityIndex).is_some());

        let stripped = parse(&rewrite_exif(&original, 1008, 756, true).expect("stripped"));
        assert!(stripped.fields().all(|f| f.tag.context() != Context::Gps));
        assert!(stripped
            .get_field(Tag::GPSInfoIFDPointer, In::PRIMARY)
            .is_none());
        assert_eq!(
            shown(&stripped, Tag::Model).as_deref(),
            Some("\"Nexus 6P\"")
        );
        assert_eq!(
            shown(&stripped, Tag::DateTimeOriginal),
            shown(&before, Tag::DateTimeOriginal)
        );
    }

    #[test]
    fn exif_rewrite_gives_none_for_non_tiff_or_orientation_only() {
        assert_eq!(rewrite_exif(b"", 1, 1, false), None);
        assert_eq!(rewrite_exif(b"Exif\0\0II*\0", 1, 1, false), None);
        assert_eq!(rewrite_exif(b"II*\0\xff\xff\0\0", 1, 1, false), None);
        let orientation_only = tiff(&[(0x0112, 3, 1, 6)], &[]);
        assert_eq!(rewrite_exif(&orientation_only, 1, 1, false), None);
        let with_gps_only = tiff(&[(0x0112, 3, 1, 6), (0x8825, 4, 1, 26)], b"\0\0\0\0");
        assert_eq!(rewrite_exif(&with_gps_only, 1, 1, true), None);
    }

    #[test]
    fn exif_rewrite_survives_cycles_and_shared_huge_values() {
        // Exif IFD and Interop pointers both point back at IFD0.
        let cyclic = tiff(
            &[
                (0x010F, 2, 4, u32::from_le_bytes(*b"ACME")),
                (0x8769, 4, 1, 8),
                (0xA005, 4, 1, 8),
            ],
            &[],
        );
        let out = rewrite_exif(&cyclic, 10, 20, false).expect("Make remains");
        let exif = parse(&out);
        assert_eq!(uint(&exif, Tag::PixelXDimension), Some(10));
        // 400 entries sharing one 8 KB value would copy 3.2 MB: refused instead.
        let entries: Vec<_> = (0..400)
            .map(|i| (0x1000 + i, 7, 8192, 8 + 2 + 400 * 12 + 4))
            .collect();
        assert_eq!(rewrite_exif(&tiff(&entries, &[0; 8192]), 1, 1, false), None);
    }

    #[test]
    fn exif_rewrite_never_panics_on_truncated_or_corrupted_blocks() {
        for name in [
            "landscape_6_motorola.exif",
            "dune_canon_thumbnail.exif",
            "cranes_nexus6p_gps.exif",
        ] {
            let original = fixture(name);
            for len in (0..original.len()).step_by(1 + original.len() / 300) {
                let _ = rewrite_exif(&original[..len], 1, 1, false);
            }
            let mut seed = 0x2545_F491_4F6C_DD1Du64;
            for _ in 0..300 {
                let mut damaged = original.clone();
                for _ in 0..8 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let at = (seed % damaged.len() as u64) as usize;
                    damaged[at] = (seed >> 32) as u8;
                }
                if let Some(out) = rewrite_exif(&damaged, 1, 1, true) {
                    assert!(out.len() <= 2 * damaged.len() + 64);
                }
            }
        }
    }

    #[test]
    fn xmp_orientation_is_reset_in_attribute_and_element_forms() {
        let attr = br#"<rdf:Description tiff:Orientation = '6' tiff:OrientationX="6"/>"#;
        assert_eq!(
            rewrite_xmp(attr, false).as_deref(),
            Some(br#"<rdf:Description tiff:Orientation = '1' tiff:OrientationX="6"/>"#.as_slice())
        );
        let element = b"<a>\n <tiff:Orientation>8</tiff:Orientation>\n</a>";
        assert_eq!(
            rewrite_xmp(element, false).as_deref(),
            Some(b"<a>\n <tiff:Orientation>1</tiff:Orientation>\n</a>".as_slice())
        );
        let unusual = b"<tiff:Orientation rdf:datatype='int'>6</tiff:Orientation>";
        assert_eq!(rewrite_xmp(unusual, false), None);
        assert_eq!(rewrite_xmp(b"\xff\xfe<x/>", false), None);
    }

    #[test]
    fn xmp_gps_attributes_and_elements_are_removed_only_when_asked() {
        let xmp = br#"<rdf:Description exif:GPSLatitude="59,18.37N"
   exif:Make="Huawei" exif:GPSLongitude='18,5E'>
  <exif:GPSVersionID>2.2.0.0</exif:GPSVersionID>
  <exif:GPSAltitude/>
  <exif:DateTimeOriginal>2018-01-04</exif:DateTimeOriginal>
</rdf:Description>"#;
        assert_eq!(rewrite_xmp(xmp, false).as_deref(), Some(xmp.as_slice()));
        let stripped = rewrite_xmp(xmp, true).expect("GPS removable");
        assert_eq!(
            String::from_utf8(stripped).unwrap(),
            "<rdf:Description\n   exif:Make=\"Huawei\">\n  \
             <exif:DateTimeOriginal>2018-01-04</exif:DateTimeOriginal>\n</rdf:Description>"
        );
        // GPS under a prefix we do not handle: drop the packet rather than leak it.
        assert_eq!(rewrite_xmp(b"<e:GPSLatitude>1</e:GPSLatitude>", true), None);
    }

    #[test]
    fn real_xmp_loses_gps_and_gets_new_dimensions() {
        let original = fixture("colorful_cups_gps.xmp");
        let meta = Metadata {
            xmp: Some(original.clone()),
            ..Metadata::default()
        };
        let out = for_output(meta, MetaPolicy::StripGps, 1280, 800)
            .xmp
            .expect("kept");
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("GPS"));
        assert!(text.contains("<exif:Make>SONY</exif:Make>"));
        assert!(text.contains("<exif:PixelXDimension>1280</exif:PixelXDimension>"));
        assert!(text.contains("<exif:PixelYDimension>800</exif:PixelYDimension>"));
        // Only the GPS lines went away.
        let lines = |t: &str| t.lines().filter(|l| !l.contains("GPS")).count();
        assert_eq!(
            text.lines().count(),
            lines(std::str::from_utf8(&original).unwrap())
        );
    }

    #[test]
    fn policies_keep_what_they_promise() {
        let meta = Metadata {
            exif: Some(fixture("cranes_nexus6p_gps.exif")),
            ..sample_meta()
        };
        let strip = for_output(meta.clone(), MetaPolicy::Strip, 10, 10);
        assert_eq!(
            strip,
            Metadata {
                icc: meta.icc.clone(),
                resolution: meta.resolution,
                ..Metadata::default()
            },
            "the print resolution describes the picture, not the photographer: kept"
        );
        assert!(meta.resolution.is_some());
        let keep = for_output(meta.clone(), MetaPolicy::Keep, 10, 10);
        assert!(parse(keep.exif.as_deref().unwrap())
            .get_field(Tag::GPSLatitude, In::PRIMARY)
            .is_some());
        assert_eq!((keep.xmp, keep.icc), (meta.xmp, meta.icc));
    }

    #[test]
    fn jpeg_round_trip_after_jfif_with_multi_chunk_icc() {
        let jpeg = jpeg_file();
        assert_eq!(read(&jpeg, Format::Jpeg), Metadata::default());
        let meta = Metadata {
            icc: Some((0..150_000u32).map(|i| (i % 253) as u8).collect()),
            ..sample_meta()
        };
        let out = embed_jpeg(&jpeg, &meta);
        assert_eq!(read(&out, Format::Jpeg), meta);
        assert_eq!(&out[2..4], &[0xFF, 0xE0], "JFIF APP0 stays first");
        assert_eq!(image::load_from_memory(&out).expect("decodes").width(), 64);
        // Too big for a segment: left out, the rest still written.
        let huge = Metadata {
            exif: Some(vec![0; 70_000]),
            ..sample_meta()
        };
        assert_eq!(
            read(&embed_jpeg(&jpeg, &huge), Format::Jpeg),
            Metadata { exif: None, ..huge }
        );
        assert_eq!(embed_jpeg(&jpeg, &Metadata::default()), jpeg);
    }

    #[test]
    fn png_round_trip_with_valid_crcs_read_by_the_image_crate() {
        let meta = sample_meta();
        let out = embed_png(&png_file(), &meta);
        assert_eq!(
            read(&out, Format::Png),
            Metadata {
                icc: None,
                ..meta.clone()
            }
        );
        let chunks = png_chunks(&out);
        assert_eq!(&chunks.last().unwrap().0, b"IEND");
        let mut pos = PNG_SIG.len();
        for (kind, data) in &chunks {
            let crc_at = pos + 8 + data.len();
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            assert_eq!(
                out[crc_at..crc_at + 4],
                crc.finalize().to_be_bytes(),
                "{kind:?}"
            );
            pos = crc_at + 4;
        }
        let mut decoder = image::codecs::png::PngDecoder::new(Cursor::new(&out)).unwrap();
        assert_eq!(decoder.icc_profile().unwrap(), meta.icc);
        assert_eq!(decoder.exif_metadata().unwrap(), meta.exif);
        assert_eq!(decoder.xmp_metadata().unwrap(), meta.xmp);
        assert_eq!(image::load_from_memory(&out).expect("decodes").height(), 48);
        // An encoder-written profile is not duplicated.
        assert_eq!(embed_png(&out, &meta), out);
    }

    fn vp8x_flags(webp: &[u8]) -> u8 {
        let (chunks, complete) = riff_chunks(webp);
        assert!(complete);
        assert_eq!(
            u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize,
            webp.len() - 8
        );
        assert_eq!(&chunks[0].0, b"VP8X");
        chunks[0].1[0]
    }

    #[test]
    fn webp_simple_lossy_becomes_extended_and_still_decodes() {
        let lossy = webp::Encoder::from_rgb(&rgb(64, 48), 64, 48)
            .encode(80.0)
            .to_vec();
        let meta = sample_meta();
        let out = embed_webp(&lossy, 64, 48, &meta);
        assert_eq!(read(&out, Format::Webp), meta);
        assert_eq!(vp8x_flags(&out), 0x20 | 0x08 | 0x04);
        let order: Vec<[u8; 4]> = riff_chunks(&out).0.iter().map(|c| c.0).collect();
        assert_eq!(order, [*b"VP8X", *b"ICCP", *b"VP8 ", *b"EXIF", *b"XMP "]);
        let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(&out)).unwrap();
        assert_eq!(decoder.icc_profile().unwrap(), meta.icc);
        assert_eq!(decoder.dimensions(), (64, 48));
        assert!(image::load_from_memory(&out).is_ok());
        assert_eq!(embed_webp(&lossy, 64, 48, &Metadata::default()), lossy);
    }

    #[test]
    fn webp_alpha_is_flagged_from_vp8l_bit_or_alph_chunk() {
        let rgba: Vec<u8> = (0..32 * 16 * 4).map(|i| (i % 256) as u8).collect();
        let meta = Metadata {
            exif: sample_meta().exif,
            ..Metadata::default()
        };
        let lossless = webp::Encoder::from_rgba(&rgba, 32, 16)
            .encode_lossless()
            .to_vec();
        let lossy = webp::Encoder::from_rgba(&rgba, 32, 16)
            .encode(70.0)
            .to_vec();
        for file in [lossless, lossy] {
            let out = embed_webp(&file, 32, 16, &meta);
            assert_eq!(vp8x_flags(&out), 0x10 | 0x08);
            assert_eq!(read(&out, Format::Webp).exif, meta.exif);
            let decoded = image::load_from_memory(&out).expect("decodes");
            assert!(decoded.color().has_alpha());
        }
    }

    #[test]
    fn readers_never_panic_on_truncated_files() {
        let meta = sample_meta();
        let files = [
            (Format::Jpeg, embed_jpeg(&jpeg_file(), &meta)),
            (Format::Png, embed_png(&png_file(), &meta)),
            (
                Format::Webp,
                embed_webp(
                    &webp::Encoder::from_rgb(&rgb(8, 8), 8, 8).encode(50.0),
                    8,
                    8,
                    &meta,
                ),
            ),
        ];
        for (format, bytes) in files {
            for len in 0..bytes.len() {
                let _ = read(&bytes[..len], format);
                let _ = embed_webp(&bytes[..len], 8, 8, &meta);
                let _ = embed_png(&bytes[..len], &meta);
                let _ = embed_jpeg(&bytes[..len], &meta);
            }
        }
        assert_eq!(
            read(b"\xff\xd8\xff\xe1\xff\xffExif", Format::Jpeg),
            Metadata::default()
        );
        assert_eq!(read(b"GIF89a", Format::Gif), Metadata::default());
    }
}
