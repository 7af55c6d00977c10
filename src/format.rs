//! The image formats presize reads and writes, and content sniffing.
//!
//! Inputs are recognised by their first bytes, never by their extension, so `photo.JPG`,
//! `scan.jpeg` and an extensionless PNG all work and a text file named `.jpg` is not an image.

use std::fmt;

/// An image format presize decodes, encodes, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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
    /// AVIF: read through libheif (the default `heif` feature); written by [`AVIF_ENCODER`].
    Avif,
    /// HEIC/HEIF (HEVC stills, iPhone photos): read only, through libheif (the default `heif`
    /// feature).
    Heic,
    /// Windows icon or cursor (ICO/CUR): read only, the largest, deepest image it holds.
    Ico,
    /// Truevision TGA: read only. It has no signature, so a file is taken for one only when its
    /// name ends in `.tga` (or another TGA extension) and its header is plausible.
    Tga,
    /// Netpbm PBM/PGM/PPM/PAM: read only.
    Pnm,
    /// QOI, the "Quite OK Image" format: read only.
    Qoi,
    /// Radiance RGBE (`.hdr`): read only, tone-mapped to 8-bit sRGB.
    Hdr,
    /// OpenEXR: read only (the first part), tone-mapped to 8-bit sRGB.
    Exr,
    /// SVG (and gzipped SVGZ): read only, rendered at the output size.
    Svg,
}

/// ISO-BMFF major brands of HEIF files holding HEVC (or generic) stills.
const HEIF_BRANDS: [[u8; 4]; 9] = [
    *b"heic", *b"heix", *b"hevc", *b"heim", *b"heis", *b"hevm", *b"hevs", *b"mif1", *b"msf1",
];

/// How many leading bytes [`Format::sniff`] looks at. Binary formats need 18 (a TGA header);
/// the rest is for text formats, whose signature may follow a comment or a declaration.
pub(crate) const SNIFF_LEN: usize = 1024;

/// The encoder this build writes AVIF with, as the output keys name it; `None` when it writes
/// none. One per build, by cargo feature: libaom through libheif (`heif`, the
/// default), else rav1e (`rav1e`); see `pipeline/avif/mod.rs` for why.
pub(crate) const AVIF_ENCODER: Option<&str> = if cfg!(feature = "heif") {
    Some("libaom")
} else if cfg!(feature = "rav1e") {
    Some("rav1e")
} else {
    None
};

impl Format {
    /// Every format, in the order `--help` lists them. The one list: the CLI's `--format`
    /// values, the manifest reader, the walker's extension check and naming all derive from it,
    /// so a new variant is known everywhere by construction.
    pub const ALL: [Format; 15] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Tiff,
        Format::Bmp,
        Format::Avif,
        Format::Heic,
        Format::Ico,
        Format::Tga,
        Format::Pnm,
        Format::Qoi,
        Format::Hdr,
        Format::Exr,
        Format::Svg,
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
            // Reserved 0, type 1 (icon) or 2 (cursor), at least one entry whose reserved byte is 0.
            [0, 0, 1 | 2, 0, lo, hi, _, _, _, 0, ..] if [*lo, *hi] != [0, 0] => Some(Format::Ico),
            [b'P', b'1'..=b'7', b' ' | b'\t' | b'\n' | b'\r' | b'#', ..] => Some(Format::Pnm),
            [b'q', b'o', b'i', b'f', ..] => Some(Format::Qoi),
            [b'#', b'?', b'R', b'A', b'D', b'I', b'A', b'N', b'C', b'E', ..] => Some(Format::Hdr),
            [0x76, 0x2F, 0x31, 0x01, ..] => Some(Format::Exr),
            _ if svg_root(head) == Some(true) => Some(Format::Svg),
            _ => None,
        }
    }

    /// Identifies a file from its first bytes and its extension (`ext`, any case, without the
    /// dot): by [`sniff`](Format::sniff) first, then, for a format without a signature (TGA),
    /// by its extension together with a header that makes sense for that format. An SVG whose
    /// root element lies beyond the bytes sniffed (a long comment first) and a gzipped SVGZ are
    /// known by their extension too.
    ///
    /// ```
    /// use presize::Format;
    /// let tga = b"\0\0\x02\0\0\0\0\0\0\0\0\0\x10\0\x08\0\x18\0";
    /// assert_eq!(Format::identify(tga, "TGA"), Some(Format::Tga));
    /// assert_eq!(Format::identify(tga, "bin"), None);
    /// ```
    pub fn identify(head: &[u8], ext: &str) -> Option<Format> {
        Format::sniff(head).or_else(|| {
            Format::from_extension(ext).filter(|f| match f {
                Format::Tga => plausible_tga(head),
                Format::Svg => svg_root(head).is_none() || head.starts_with(&[0x1F, 0x8B]),
                _ => false,
            })
        })
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
            Format::Ico => "ico",
            Format::Tga => "tga",
            Format::Pnm => "pnm",
            Format::Qoi => "qoi",
            Format::Hdr => "hdr",
            Format::Exr => "exr",
            Format::Svg => "svg",
        }
    }

    /// Other spellings accepted wherever a name is (`--format jpg`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Format::Jpeg => &["jpg"],
            Format::Tiff => &["tif"],
            Format::Heic => &["heif"],
            Format::Ico => &["cur"],
            Format::Pnm => &["ppm", "pgm", "pbm", "pam"],
            Format::Exr => &["openexr"],
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
            Format::Ico => &["ico", "cur"],
            // Not TGA's rarer ".icb", ".vda", ".vst" or Radiance's ".pic": other files use them,
            // and a file named like an image that is not one is reported as a failure.
            Format::Tga => &["tga"],
            Format::Pnm => &["pnm", "ppm", "pgm", "pbm", "pam"],
            Format::Qoi => &["qoi"],
            Format::Hdr => &["hdr", "rgbe"],
            Format::Exr => &["exr"],
            Format::Svg => &["svg", "svgz"],
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

    /// The extension of `path` as format detection sees it: lower case, and `svgz` for a name
    /// ending in `.svg.gz` (a gzipped SVG under its other usual name; any other `.gz` is no
    /// image).
    pub fn extension_of(path: &std::path::Path) -> String {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let inner = path
            .file_stem()
            .map(std::path::Path::new)
            .and_then(|s| s.extension());
        match inner.and_then(|e| e.to_str()) {
            Some(svg) if ext == "gz" && svg.eq_ignore_ascii_case("svg") => "svgz".into(),
            _ => ext,
        }
    }

    /// Returns true if and only if this build can decode the format (HEIC and AVIF input need
    /// the `heif` feature, on by default).
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
                "AVIF (AV1 stills: the smallest files, the slowest to encode; see --effort)"
            }
            Format::Heic => "HEIC (read only)",
            Format::Ico => "ICO/CUR icons (read only: the largest image)",
            Format::Tga => "TGA (read only)",
            Format::Pnm => "Netpbm PBM/PGM/PPM/PAM (read only)",
            Format::Qoi => "QOI (read only)",
            Format::Hdr => "Radiance HDR (read only, tone-mapped to sRGB)",
            Format::Exr => "OpenEXR (read only, tone-mapped to sRGB)",
            Format::Svg => "SVG (read only, rendered at the output size)",
        }
    }

    /// The MIME type, as a `<source type>` names it; `None` for the formats browsers do not
    /// show (so `presize manifest html` makes no `<source>` of them).
    pub fn web_mime(self) -> Option<&'static str> {
        match self {
            Format::Jpeg => Some("image/jpeg"),
            Format::Png => Some("image/png"),
            Format::Webp => Some("image/webp"),
            Format::Gif => Some("image/gif"),
            Format::Avif => Some("image/avif"),
            Format::Svg => Some("image/svg+xml"),
            Format::Tiff
            | Format::Bmp
            | Format::Heic
            | Format::Ico
            | Format::Tga
            | Format::Pnm
            | Format::Qoi
            | Format::Hdr
            | Format::Exr => None,
        }
    }

    /// Returns true if and only if presize can write this format.
    pub fn is_writable(self) -> bool {
        matches!(
            self,
            Format::Jpeg | Format::Png | Format::Webp | Format::Gif | Format::Tiff | Format::Bmp
        ) || (self == Format::Avif && AVIF_ENCODER.is_some())
    }

    /// The format `--format same` writes for an input of this format: the format itself when
    /// presize writes it, else JPEG for photographs without alpha (HEIC, Radiance HDR) and PNG
    /// for the rest, which may carry alpha or be graphics that JPEG would smear.
    pub fn same_output(self) -> Format {
        match self {
            f if f.is_writable() => f,
            Format::Heic | Format::Hdr => Format::Jpeg,
            _ => Format::Png,
        }
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
            Format::Ico => "ICO",
            Format::Tga => "TGA",
            Format::Pnm => "PNM",
            Format::Qoi => "QOI",
            Format::Hdr => "HDR",
            Format::Exr => "OpenEXR",
            Format::Svg => "SVG",
        }
    }

    /// Returns true if and only if the format is a drawing rather than pixels: it is rendered
    /// at the size each output needs, so it has no pixel size to protect from enlarging (its
    /// own size gives the aspect ratio and the base of `%` sizes).
    pub fn is_vector(self) -> bool {
        matches!(self, Format::Svg)
    }
}

/// Whether the text in `head` opens an XML document whose root element is `<svg>`: `Some(true)`
/// if it does, `Some(false)` if it is something else (or not XML), `None` if `head` ends
/// before the root element (a long comment or declaration). Skips a UTF-8 byte-order mark,
/// white space, the XML declaration, comments, processing instructions and a DOCTYPE.
fn svg_root(head: &[u8]) -> Option<bool> {
    let mut rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return None;
        }
        let skip_past = |end: &[u8]| {
            rest.windows(end.len())
                .position(|w| w == end)
                .map(|at| at + end.len())
        };
        let skipped = if rest.starts_with(b"<!--") {
            skip_past(b"-->")
        } else if rest.starts_with(b"<?") {
            skip_past(b"?>")
        } else if rest.starts_with(b"<!DOCTYPE") {
            // `<!DOCTYPE svg PUBLIC ...>`, possibly with an internal subset of entities.
            if !rest[9..].trim_ascii_start().starts_with(b"svg") {
                return Some(false);
            }
            skip_past(b"]>").or_else(|| skip_past(b">"))
        } else if rest.starts_with(b"<") {
            let name = &rest[1..];
            let root = name.strip_prefix(b"svg:").unwrap_or(name);
            if root.len() < 4 {
                return None;
            }
            return Some(root.starts_with(b"svg") && !root[3].is_ascii_alphanumeric());
        } else {
            return Some(false);
        };
        rest = &rest[skipped?..];
    }
}

/// Returns true if and only if `head` reads as a TGA header: no colour map or a colour-mapped
/// image with one, a known image type, a non-zero size and a usual pixel depth.
fn plausible_tga(head: &[u8]) -> bool {
    let Some(&[_, map, kind, _, _, _, _, map_depth, _, _, _, _, w0, w1, h0, h1, depth, _]) =
        head.get(..18)
    else {
        return false;
    };
    let mapped = matches!(kind, 1 | 9);
    let map_ok = match map {
        0 => !mapped,
        1 => matches!(map_depth, 15 | 16 | 24 | 32),
        _ => false,
    };
    map_ok
        && matches!(kind, 1 | 2 | 3 | 9 | 10 | 11)
        && [w0, w1] != [0, 0]
        && [h0, h1] != [0, 0]
        && matches!(depth, 8 | 15 | 16 | 24 | 32)
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
        let cases: [(&[u8], Option<Format>); 19] = [
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", Some(Format::Jpeg)),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some(Format::Png)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(Format::Webp)),
            (b"GIF89a\x01\0\x01\0\0\0\0\0", Some(Format::Gif)),
            (b"II*\0\x08\0\0\0\0\0\0\0\0\0", Some(Format::Tiff)),
            (b"MM\0*\0\0\0\x08\0\0\0\0\0\0", Some(Format::Tiff)),
            (b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0", Some(Format::Bmp)),
            (
                b"\0\0\x01\0\x02\0\x10\x10\0\0\x01\0\x20\0",
                Some(Format::Ico),
            ),
            (
                b"\0\0\x02\0\x01\0\x20\x20\0\0\x04\0\x04\0",
                Some(Format::Ico),
            ),
            (b"\0\0\x01\0\0\0\x10\x10\0\0\x01\0\x20\0", None), // no entries
            (b"P6\n640 480\n255\n", Some(Format::Pnm)),
            (b"P7\nWIDTH 4\n", Some(Format::Pnm)),
            (b"P9\n4 4\n", None),
            (b"Photo of me", None),
            (b"qoif\0\0\0\x10\0\0\0\x10\x04\0", Some(Format::Qoi)),
            (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe", Some(Format::Hdr)),
            (b"\x76\x2f\x31\x01\x02\0\0\0channels", Some(Format::Exr)),
            (b"<!DOCTYPE html>", None),
            (b"", None),
        ];
        for (head, want) in cases {
            assert_eq!(Format::sniff(head), want, "{head:?}");
        }
    }

    #[test]
    fn a_tga_needs_its_extension_and_a_plausible_header() {
        let mut head = *b"\0\0\x02\0\0\0\0\0\0\0\0\0\x10\0\x08\0\x18\x20";
        assert_eq!(Format::sniff(&head), None);
        assert_eq!(Format::identify(&head, "tga"), Some(Format::Tga));
        assert_eq!(Format::identify(&head, "png"), None);
        assert_eq!(Format::identify(&head[..17], "tga"), None, "short");
        head[2] = 1; // colour-mapped without a colour map
        assert_eq!(Format::identify(&head, "tga"), None);
        head[1] = 1;
        head[7] = 24;
        head[16] = 8;
        assert_eq!(Format::identify(&head, "tga"), Some(Format::Tga));
        head[16] = 7;
        assert_eq!(Format::identify(&head, "tga"), None, "pixel depth");
        assert_eq!(Format::identify(b"hello, world, hello!", "tga"), None);
        // A signature wins over the name.
        assert_eq!(
            Format::identify(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\0", "tga"),
            Some(Format::Png)
        );
    }

    #[test]
    fn an_svg_is_known_by_its_root_element() {
        let svg = |head: &str| Format::sniff(head.as_bytes()) == Some(Format::Svg);
        assert!(svg("<svg xmlns=\"http://www.w3.org/2000/svg\"/>"));
        assert!(svg(
            "\u{feff}  <?xml version=\"1.0\"?>\n<!-- logo -->\n<svg width=\"1\">"
        ));
        assert!(svg("<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x.dtd\" [\n<!ENTITY a \"b\">\n]>\n<svg>"));
        assert!(svg("<svg:svg xmlns:svg=\"http://www.w3.org/2000/svg\">"));
        assert!(!svg("<!DOCTYPE html><html><svg></svg></html>"));
        assert!(!svg("<svgfoo>"));
        assert!(!svg("hello <svg>"));
        assert!(!svg("<!-- a comment that never ends"));
        let late = format!("<!-- {} --><svg>", "x".repeat(SNIFF_LEN));
        assert_eq!(Format::sniff(&late.as_bytes()[..SNIFF_LEN]), None);
        assert_eq!(
            Format::identify(&late.as_bytes()[..SNIFF_LEN], "svg"),
            Some(Format::Svg)
        );
        assert_eq!(Format::identify(b"<html><body>", "svg"), None);
        assert_eq!(
            Format::identify(b"\x1f\x8b\x08\0", "svgz"),
            Some(Format::Svg)
        );
        assert_eq!(Format::identify(b"\x1f\x8b\x08\0", "gz"), None);
        let ext = |p: &str| Format::extension_of(std::path::Path::new(p));
        assert_eq!(ext("logo.svg.gz"), "svgz");
        assert_eq!(ext("dir/Logo.SVG.GZ"), "svgz");
        assert_eq!(ext("backup.tar.gz"), "gz");
        assert_eq!(
            ext(".svg.gz"),
            "gz",
            "a hidden file named .svg, gzipped? no: no stem"
        );
        assert_eq!(ext("photo.JPG"), "jpg");
        assert_eq!(ext("noext"), "");
    }

    #[test]
    fn same_means_a_format_presize_writes() {
        for f in Format::ALL {
            let same = f.same_output();
            assert!(same.is_writable(), "{f}");
            assert_eq!(same == f, f.is_writable(), "{f}");
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
