//! Pure path planning: where does the output of an input go?
//!
//! Called by the walker for every image it finds. No I/O happens here, so the mapping rules
//! (mirroring, extension choice) are unit-tested below.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::format::Format;

/// One unit of work: resize `src` into `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The input file.
    pub src: PathBuf,
    /// The output file (always below the output folder).
    pub dst: PathBuf,
    /// The input's format, sniffed from its content.
    pub input_format: Format,
    /// The format to write.
    pub output_format: Format,
    /// The input's size in bytes when it was found (for ordering and the summary).
    pub bytes: u64,
}

/// Where the output of `src` goes.
///
/// `root` is the input the user named: for a folder, the path below it is mirrored under
/// `out_dir`; for a file, the output is `out_dir/<file name>`. The extension becomes the output
/// format's, except that a same-format output keeps the input's own spelling (`.JPG`, `.jpeg`).
pub fn output_path(
    root: &Path,
    root_is_dir: bool,
    src: &Path,
    out_dir: &Path,
    input_format: Format,
    output_format: Format,
) -> PathBuf {
    let rel: &Path = if root_is_dir {
        src.strip_prefix(root).unwrap_or(src)
    } else {
        src.file_name().map_or(src, Path::new)
    };
    let mut dst = out_dir.join(rel);
    let keep = input_format == output_format
        && src
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|e| output_format.accepts_extension(e));
    if !keep {
        dst.set_extension(output_format.extension());
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn mirrors_the_tree_below_a_folder_input() {
        let dst = output_path(
            &p("in"),
            true,
            &p("in/2024/a.jpg"),
            &p("out"),
            Format::Jpeg,
            Format::Jpeg,
        );
        assert_eq!(dst, p("out/2024/a.jpg"));
    }

    #[test]
    fn a_file_input_goes_to_the_top_of_the_output_folder() {
        let dst = output_path(
            &p("in/x/a.png"),
            false,
            &p("in/x/a.png"),
            &p("out"),
            Format::Png,
            Format::Png,
        );
        assert_eq!(dst, p("out/a.png"));
    }

    #[test]
    fn extension_follows_the_output_format() {
        let cases = [
            ("in/a.JPG", Format::Jpeg, Format::Jpeg, "out/a.JPG"),
            ("in/a.jpeg", Format::Jpeg, Format::Jpeg, "out/a.jpeg"),
            ("in/a.jpeg", Format::Jpeg, Format::Webp, "out/a.webp"),
            ("in/noext", Format::Png, Format::Png, "out/noext.png"),
            (
                "in/png_named.jpg",
                Format::Png,
                Format::Png,
                "out/png_named.png",
            ),
            ("in/a.b.tiff", Format::Tiff, Format::Jpeg, "out/a.b.jpg"),
        ];
        for (src, i, o, want) in cases {
            assert_eq!(
                output_path(&p("in"), true, &p(src), &p("out"), i, o),
                p(want),
                "{src}"
            );
        }
    }
}
