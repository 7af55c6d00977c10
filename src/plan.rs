//! Pure path planning: what is one unit of work, and what are its outputs called?
//!
//! The walker makes a [`Job`] per source; the worker names each output with [`output_name`] once
//! it knows the output's size (and, for `{hash}` templates, the source's content). No I/O happens
//! here, so the naming rules (mirroring, extension choice, templates) are unit-tested below.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::format::Format;
use crate::naming::{NameVars, Template, TemplateError};

/// One unit of work: resize `src` into every output the settings ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The input file.
    pub src: PathBuf,
    /// Its path relative to the input root it was found under: mirrored below the output
    /// folder, the manifest's key and the shard key. For a file named on the command line, its
    /// file name.
    pub rel: PathBuf,
    /// The input's format, sniffed from its content.
    pub input_format: Format,
    /// The input's size in bytes when it was found (for ordering and the summary).
    pub bytes: u64,
}

/// The path below the output folder for one output of `rel`.
///
/// `{ext}` is the output format's extension, except that a same-format output keeps the
/// input's own spelling (`.JPG`, `.jpeg`).
pub fn output_name(
    template: &Template,
    rel: &Path,
    input_format: Format,
    output_format: Format,
    size: (u32, u32),
    hash: Option<&str>,
) -> Result<PathBuf, TemplateError> {
    let stem = rel
        .file_stem()
        .or_else(|| rel.file_name())
        .unwrap_or(OsStr::new("image"));
    let src_ext = rel.extension().and_then(OsStr::to_str);
    let ext = match src_ext {
        Some(e) if input_format == output_format && output_format.accepts_extension(e) => e,
        _ => output_format.extension(),
    };
    let dir = rel.parent().unwrap_or(Path::new(""));
    template.render(&NameVars {
        dir,
        stem,
        ext,
        width: size.0,
        height: size.1,
        format: output_format,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn one(rel: &str, i: Format, o: Format) -> PathBuf {
        output_name(&Template::default_for(1), &p(rel), i, o, (10, 10), None).unwrap()
    }

    #[test]
    fn mirrors_the_relative_folder() {
        assert_eq!(
            one("2024/a.jpg", Format::Jpeg, Format::Jpeg),
            p("2024/a.jpg")
        );
        assert_eq!(one("a.png", Format::Png, Format::Png), p("a.png"));
    }

    #[test]
    fn extension_follows_the_output_format() {
        let cases = [
            ("a.JPG", Format::Jpeg, Format::Jpeg, "a.JPG"),
            ("a.jpeg", Format::Jpeg, Format::Jpeg, "a.jpeg"),
            ("a.jpeg", Format::Jpeg, Format::Webp, "a.webp"),
            ("noext", Format::Png, Format::Png, "noext.png"),
            ("png_named.jpg", Format::Png, Format::Png, "png_named.png"),
            ("a.b.tiff", Format::Tiff, Format::Jpeg, "a.b.jpg"),
        ];
        for (src, i, o, want) in cases {
            assert_eq!(one(src, i, o), p(want), "{src}");
        }
    }

    #[test]
    fn several_widths_get_the_width_in_the_name() {
        let t = Template::default_for(3);
        let name = output_name(
            &t,
            &p("x/a.jpg"),
            Format::Jpeg,
            Format::Webp,
            (320, 200),
            None,
        );
        assert_eq!(name.unwrap(), p("x/a-320w.webp"));
        let t = Template::parse("{dir}/{width}/{stem}-{hash}.{ext}").unwrap();
        let name = output_name(
            &t,
            &p("x/a.jpg"),
            Format::Jpeg,
            Format::Jpeg,
            (320, 200),
            Some("0123abcd"),
        );
        assert_eq!(name.unwrap(), p("x/320/a-0123abcd.jpg"));
    }
}
