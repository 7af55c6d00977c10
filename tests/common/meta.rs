//! Reads an output's metadata back with code that is not presize's own: the `image` crate's
//! decoders find the EXIF, XMP and ICC blocks in each container (JPEG APP1/APP2, PNG `eXIf`,
//! `iTXt` and `iCCP`, WebP `EXIF`, `XMP ` and `ICCP`, TIFF tag 34675), kamadak-exif parses the
//! EXIF and moxcms the profile. These are the reads `exiftool` used to make in the default
//! tests; `tests/cross_check.rs` still runs exiftool itself, in the opt-in tier.

use std::path::Path;

use exif::{Context, Exif, In, Tag, Value};
use image::{ImageDecoder, ImageReader};
use moxcms::{ColorProfile, ProfileText};

/// The metadata blocks of one image file.
pub(crate) struct Metadata {
    /// The parsed EXIF block, if the file has one.
    pub(crate) exif: Option<Exif>,
    /// The XMP packet, if the file has one.
    pub(crate) xmp: Option<String>,
    /// The embedded ICC profile, if any.
    pub(crate) icc: Option<Vec<u8>>,
}

/// Reads the EXIF, XMP and ICC blocks of `path`, recognising the format by content. Panics if
/// a block is present but cannot be parsed: a damaged block is a failure, not an absence.
pub(crate) fn read_metadata(path: &Path) -> Metadata {
    let shown = path.display();
    let mut decoder = ImageReader::open(path)
        .unwrap_or_else(|e| panic!("open {shown}: {e}"))
        .with_guessed_format()
        .expect("read the file head")
        .into_decoder()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    let icc = decoder
        .icc_profile()
        .unwrap_or_else(|e| panic!("ICC of {shown}: {e}"));
    let exif = decoder
        .exif_metadata()
        .unwrap_or_else(|e| panic!("EXIF of {shown}: {e}"))
        .map(|raw| {
            // Some writers keep the JPEG APP1 prefix in PNG and WebP chunks too.
            let tiff = raw.strip_prefix(b"Exif\0\0").unwrap_or(&raw).to_vec();
            exif::Reader::new()
                .read_raw(tiff)
                .unwrap_or_else(|e| panic!("EXIF of {shown} does not parse: {e}"))
        });
    let xmp = decoder
        .xmp_metadata()
        .unwrap_or_else(|e| panic!("XMP of {shown}: {e}"))
        .map(|raw| String::from_utf8(raw).expect("the XMP packet is UTF-8"));
    Metadata { exif, xmp, icc }
}

impl Metadata {
    /// The value of an EXIF tag of the main image (IFD0 and the Exif and GPS IFDs below it) as
    /// text: ASCII as written, numbers in decimal.
    pub(crate) fn tag(&self, tag: Tag) -> Option<String> {
        let field = self.exif.as_ref()?.get_field(tag, In::PRIMARY)?;
        Some(match &field.value {
            Value::Ascii(parts) => parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
            value => value
                .get_uint(0)
                .map_or_else(|| format!("{value:?}"), |n| n.to_string()),
        })
    }

    /// Returns true if and only if the EXIF block has a second IFD (IFD1, the thumbnail's).
    pub(crate) fn has_thumbnail_ifd(&self) -> bool {
        self.exif
            .as_ref()
            .is_some_and(|e| e.fields().any(|f| f.ifd_num == In::THUMBNAIL))
    }

    /// Every trace of a location: the EXIF GPS IFD's fields, the pointer to it, and each line
    /// of the XMP packet that names a GPS property (`exif:GPSLatitude` and the like).
    pub(crate) fn gps(&self) -> Vec<String> {
        let mut found: Vec<String> = self
            .exif
            .iter()
            .flat_map(Exif::fields)
            .filter(|f| f.tag.context() == Context::Gps || f.tag == Tag::GPSInfoIFDPointer)
            .map(|f| format!("EXIF {}", f.tag))
            .collect();
        if let Some(xmp) = &self.xmp {
            found.extend(
                xmp.lines()
                    .filter(|l| l.contains("GPS"))
                    .map(|l| format!("XMP {}", l.trim())),
            );
        }
        found
    }

    /// The text inside the XMP element `name` (for example `dc:creator`), markup removed.
    pub(crate) fn xmp_text(&self, name: &str) -> Option<String> {
        let xmp = self.xmp.as_deref()?;
        let start = xmp.find(&format!("<{name}"))?;
        let end = start + xmp[start..].find(&format!("</{name}>"))?;
        let inner = &xmp[start + xmp[start..].find('>')? + 1..end];
        let mut text = String::new();
        let mut in_tag = false;
        for c in inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        Some(text.trim().to_owned())
    }

    /// The ICC profile's description (its `desc` tag), as exiftool's `ProfileDescription`.
    pub(crate) fn icc_description(&self) -> Option<String> {
        let icc = self.icc.as_deref()?;
        let profile = ColorProfile::new_from_slice(icc)
            .unwrap_or_else(|e| panic!("the embedded ICC profile does not parse: {e:?}"));
        let text = match profile.description? {
            ProfileText::PlainString(s) => s,
            ProfileText::Description(d) => d.ascii_string,
            ProfileText::Localizable(strings) => strings.into_iter().next()?.value,
        };
        // Version 2 `desc` strings keep their NUL terminator.
        Some(text.trim_end_matches('\0').to_owned())
    }
}
