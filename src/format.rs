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
    /// Identifies the format from the first bytes of a file; `None` if it is not one we read.
    ///
    /// ```
    /// use presize::format::Format;
    /// assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Format::Png));
    /// assert_eq!(Format::sniff(b"hello, world"), None);
    /// ```
    pub fn sniff(head: &[u8]) -> Option<Format> {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Format::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Format::Webp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Format::Gif),
            [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Some(Format::Tiff),
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

    /// The lower-case name used in `--format` and in JSON.
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

    /// The extension given to outputs whose input had no fitting one.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Tiff => "tif",
            other => other.name(),
        }
    }

    /// Returns true if and only if `ext` (any case) is a usual extension of this format, so an
    /// input's own spelling (`.JPG`, `.jpeg`) can be kept for same-format outputs.
    pub fn accepts_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            Format::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
            Format::Tiff => matches!(ext.as_str(), "tif" | "tiff"),
            Format::Heic => matches!(ext.as_str(), "heic" | "heif" | "hif"),
            other => ext == other.name(),
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
}
