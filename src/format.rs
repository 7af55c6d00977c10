//! The image formats presize reads and writes, and content sniffing.
//!
//! Inputs are recognised by their first bytes, never by their extension, so `photo.JPG`,
//! `scan.jpeg` and an extensionless PNG all work and a text file named `.jpg` is not an image.

use std::fmt;

/// A raster format presize can decode and encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// PNG (also APNG, first frame).
    Png,
    /// WebP.
    Webp,
    /// GIF (first frame).
    Gif,
    /// TIFF.
    Tiff,
    /// Windows BMP.
    Bmp,
    /// AVIF: written with rav1e; read through libheif (the `heif` feature).
    Avif,
    /// HEIC/HEIF (HEVC stills, iPhone photos): read only, through libheif (the `heif` feature).
    Heic,
}

/// ISO-BMFF major brands of HEIF files holding HEVC (or generic) stills.
const HEIF_BRANDS: [[u8; 4]; 9] = [
    *b"heic", *b"heix", *b"hevc", *b"heim", *b"heis", *b"hevm", *b"hevs", *b"mif1", *b"msf1",
];

/// How many leading bytes [`Format::sniff`] needs.
pub const SNIFF_LEN: usize = 16;

impl Format {
    /// Every format, in the order `--help` lists them. The one list: the CLI's `--format`
    /// values, the manifest reader, the walker's extension check and naming all derive from it,
    /// so a new variant is known everywhere by construction.
    pub const ALL: [Format; 8] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Tiff,
        Format::Bmp,
        Format::Avif,
        Format::Heic,
    ];

    /// Identifies the format from the first bytes of a file; `None` if it is not one we read.
    ///
    /// ```
    /// use presize::Format;
    /// assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Format::Png));
    /// assert_eq!(Format::sniff(b"hello, world"), None);
    /// ```
    pub fn sniff(head: &[u8]) -> Option<Format> {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Format::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Format::Webp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Format::Gif),
            // 43: BigTIFF.
            [b'I', b'I', 42 | 43, 0, ..] | [b'M', b'M', 0, 42 | 43, ..] => Some(Format::Tiff),
            [b'B', b'M', ..] if head.len() >= 14 => Some(Format::Bmp),
            [_, _, _, _, b'f', b't', b'y', b'p', b'a', b'v', b'i', b'f' | b's', ..] => {
                Some(Format::Avif)
            }
            [_, _, _, _, b'f', b't', b'y', b'p', a, b, c, d, ..]
                if HEIF_BRANDS.contains(&[*a, *b, *c, *d]) =>
            {
                Some(Format::Heic)
            }
            _ => None,
        }
    }

    /// The lower-case name used in `--format`, `--quality jpeg=80` and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::Avif => "avif",
            Format::Heic => "heic",
        }
    }

    /// Other spellings accepted wherever a name is (`--format jpg`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Format::Jpeg => &["jpg"],
            Format::Tiff => &["tif"],
            Format::Heic => &["heif"],
            _ => &[],
        }
    }

    /// The format called `name` or one of its [`aliases`](Format::aliases), in any case.
    ///
    /// ```
    /// use presize::Format;
    /// assert_eq!(Format::from_name("JPG"), Some(Format::Jpeg));
    /// assert_eq!(Format::from_name("avif"), Some(Format::Avif));
    /// assert_eq!(Format::from_name("same"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name || f.aliases().contains(&name.as_str()))
    }

    /// The usual file extensions, lower case; the first is given to outputs whose input had no
    /// fitting one.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Format::Png => &["png"],
            Format::Webp => &["webp"],
            Format::Gif => &["gif"],
            Format::Tiff => &["tif", "tiff"],
            Format::Bmp => &["bmp"],
            Format::Avif => &["avif"],
            Format::Heic => &["heic", "heif", "hif"],
        }
    }

    /// The extension given to outputs whose input had no fitting one.
    pub fn extension(self) -> &'static str {
        self.extensions()[0]
    }

    /// Returns true if and only if `ext` (any case) is a usual extension of this format, so an
    /// input's own spelling (`.JPG`, `.jpeg`) can be kept for same-format outputs.
    pub fn accepts_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        self.extensions().contains(&ext.as_str())
    }

    /// The format whose usual extensions include `ext` (any case).
    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.accepts_extension(ext))
    }

    /// Returns true if and only if this build can decode the format (HEIC and AVIF input need
    /// the `heif` feature).
    pub fn is_readable(self) -> bool {
        cfg!(feature = "heif") || !matches!(self, Format::Avif | Format::Heic)
    }

    /// What `--help` says about the format as an output.
    pub fn help(self) -> &'static str {
        match self {
            Format::Jpeg => {
                "JPEG (progressive unless --baseline, 4:2:0 chroma, optimised Huffman tables)"
            }
            Format::Png => "PNG",
            Format::Webp => "WebP (lossy at --quality, or --lossless)",
            Format::Gif => "GIF (first frame, or every frame with --animated)",
            Format::Tiff => "TIFF",
            Format::Bmp => "BMP",
            Format::Avif => {
                "AVIF (AV1 stills via rav1e: small files, slow to encode; see --effort)"
            }
            Format::Heic => "HEIC (read only)",
        }
    }

    /// Returns true if and only if presize can write this format.
    pub fn is_writable(self) -> bool {
        !matches!(self, Format::Heic)
    }

    /// Returns true if and only if the format can store an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }

    /// The name used in messages, e.g. "JPEG".
    pub fn display_name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
            Format::Gif => "GIF",
            Format::Tiff => "TIFF",
            Format::Bmp => "BMP",
            Format::Avif => "AVIF",
            Format::Heic => "HEIC",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::from_name(s).ok_or_else(|| format!("unknown format '{s}'"))
    }
}

impl<'de> serde::Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_format_by_magic_bytes() {
        let cases: [(&[u8], Option<Format>); 9] = [
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", Some(Format::Jpeg)),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some(Format::Png)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(Format::Webp)),
            (b"GIF89a\x01\0\x01\0\0\0\0\0", Some(Format::Gif)),
            (b"II*\0\x08\0\0\0\0\0\0\0\0\0", Some(Format::Tiff)),
            (b"MM\0*\0\0\0\x08\0\0\0\0\0\0", Some(Format::Tiff)),
            (b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0", Some(Format::Bmp)),
            (b"<!DOCTYPE html>", None),
            (b"", None),
        ];
        for (head, want) in cases {
            assert_eq!(Format::sniff(head), want, "{head:?}");
        }
    }

    #[test]
    fn keeps_usual_extension_spellings() {
        assert!(Format::Jpeg.accepts_extension("JPG"));
        assert!(Format::Jpeg.accepts_extension("jpeg"));
        assert!(!Format::Jpeg.accepts_extension("png"));
        assert!(Format::Tiff.accepts_extension("TIFF"));
        assert_eq!(Format::Jpeg.extension(), "jpg");
    }

    #[test]
    fn every_format_round_trips_through_its_names_and_extensions() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            for alias in f.aliases() {
                assert_eq!(Format::from_name(alias), Some(f), "{alias}");
            }
            for ext in f.extensions() {
                assert_eq!(Format::from_extension(ext), Some(f), "{ext}");
            }
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), f);
            assert!(!f.help().is_empty());
        }
        assert_eq!(Format::from_name("same"), None);
    }
}
