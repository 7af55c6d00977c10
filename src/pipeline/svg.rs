//! SVG input: parsed by usvg, drawn by resvg straight at the size the outputs need, so an icon
//! drawn 24 pixels wide and asked for at 512 is rendered at 512, never enlarged from a bitmap.
//!
//! Called by `decode`: the probe parses the drawing for its intrinsic size (what the plan and
//! `%` sizes start from); the decode renders it at the size `load` asks for. Text is set in the
//! system's fonts (loaded once, on the first SVG). Images the SVG refers to by path or URL are
//! not loaded, only those embedded as data URLs: an input cannot make presize read other files.

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg::{fontdb, ImageHrefResolver, Options, Tree};

use crate::error::JobError;
use crate::pipeline::pixels::{Depth, Layout, Pixels};

/// Families tried, in order, for the generic `serif`, `sans-serif` and `monospace` (fontdb
/// defaults to the first of each, which a Linux system often lacks): the metric-compatible
/// Liberation fonts, then DejaVu and Noto, as fontconfig's defaults would choose.
const GENERIC_FAMILIES: [[&str; 4]; 3] = [
    [
        "Times New Roman",
        "Liberation Serif",
        "DejaVu Serif",
        "Noto Serif",
    ],
    ["Arial", "Liberation Sans", "DejaVu Sans", "Noto Sans"],
    [
        "Courier New",
        "Liberation Mono",
        "DejaVu Sans Mono",
        "Noto Sans Mono",
    ],
];

/// The system's fonts, shared by every worker: reading them takes tens of milliseconds, and
/// the database is never changed once loaded.
fn fonts() -> Arc<fontdb::Database> {
    static FONTS: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_system_fonts();
            let present = |name: &str| {
                db.faces()
                    .any(|f| f.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
            };
            let [serif, sans, mono] = GENERIC_FAMILIES
                .map(|names| names.into_iter().find(|n| present(n)).unwrap_or(names[0]));
            db.set_serif_family(serif);
            db.set_sans_serif_family(sans);
            db.set_monospace_family(mono);
            Arc::new(db)
        })
        .clone()
}

/// Parses an SVG or gzipped SVGZ document.
pub(crate) fn parse(bytes: &[u8]) -> Result<Tree, JobError> {
    let fontdb = fonts();
    let options = Options {
        // Text without a font-family: the serif family, as in a browser.
        font_family: fontdb.family_name(&fontdb::Family::Serif).to_owned(),
        fontdb,
        image_href_resolver: ImageHrefResolver {
            resolve_data: ImageHrefResolver::default_data_resolver(),
            resolve_string: Box::new(|_, _| None),
        },
        ..Options::default()
    };
    Tree::from_data(bytes, &options).map_err(|e| JobError::Decode {
        format: "SVG",
        message: e.to_string(),
    })
}

/// The drawing's intrinsic size (its `width` and `height`, else its `viewBox`), rounded to
/// whole pixels, at least 1×1.
pub(crate) fn intrinsic_size(tree: &Tree) -> (u32, u32) {
    let size = tree.size();
    (pixels(size.width()), pixels(size.height()))
}

/// A positive length as a whole number of pixels, at least 1.
fn pixels(length: f32) -> u32 {
    // usvg sizes are finite and positive; the float-to-int cast saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let px = length.round() as u32;
    px.max(1)
}

/// Renders the drawing to exactly `width`×`height` pixels (stretched if that is not its aspect
/// ratio, as `--fit fill` asks), as straight-alpha RGBA.
pub(crate) fn render(tree: &Tree, width: u32, height: u32) -> Result<Pixels, JobError> {
    let mut pixmap = Pixmap::new(width, height).ok_or_else(|| {
        JobError::Unsupported(format!("SVG rendered at {width}x{height} is too large"))
    })?;
    let size = tree.size();
    // Pixel counts are far below f32's exact-integer range (2^24) in either dimension.
    #[allow(clippy::cast_precision_loss)]
    let transform =
        Transform::from_scale(width as f32 / size.width(), height as f32 / size.height());
    resvg::render(tree, transform, &mut pixmap.as_mut());
    let data = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    Ok(Pixels {
        data,
        width,
        height,
        layout: Layout::Rgba,
        depth: Depth::Eight,
    })
}

/// The size to render at for a decode that must be at least `min_size` (stored pixels, as
/// `load` computes it for the largest pending output), or the intrinsic size.
pub(crate) fn render_size(tree: &Tree, min_size: Option<(f64, f64)>) -> (u32, u32) {
    match min_size {
        // Rounded, not ceiled: the render is then the output's own size, resampled 1:1.
        #[allow(clippy::cast_possible_truncation)]
        Some((w, h)) => (pixels(w as f32), pixels(h as f32)),
        None => intrinsic_size(tree),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" width="24" height="12">
        <rect x="0" y="0" width="12" height="12" fill="#ff0000"/>
        <rect x="12" y="0" width="12" height="12" fill="#0000ff" fill-opacity="0.5"/>
    </svg>"##;

    #[test]
    fn renders_at_any_size_with_straight_alpha() {
        let tree = parse(SQUARE).unwrap();
        assert_eq!(intrinsic_size(&tree), (24, 12));
        for (w, h) in [(24, 12), (480, 240), (7, 3)] {
            let px = render(&tree, w, h).unwrap();
            assert_eq!(
                (px.width, px.height, px.data.len()),
                (w, h, (w * h * 4) as usize)
            );
            let at = |x: u32, y: u32| &px.data[((y * w + x) * 4) as usize..][..4];
            assert_eq!(at(0, 0), [255, 0, 0, 255], "{w}x{h}");
            assert_eq!(at(w - 1, h - 1), [0, 0, 255, 128], "{w}x{h}");
        }
    }

    #[test]
    fn refuses_garbage_and_external_files() {
        assert!(parse(b"<svg").is_err());
        assert!(parse(b"\x1f\x8b\x08\0garbage").is_err());
        let external = br#"<svg xmlns="http://www.w3.org/2000/svg"
            xmlns:xlink="http://www.w3.org/1999/xlink" width="4" height="4">
            <image width="4" height="4" xlink:href="/etc/passwd"/></svg>"#;
        let tree = parse(external).unwrap();
        let px = render(&tree, 4, 4).unwrap();
        assert!(px.data.iter().all(|&b| b == 0), "nothing drawn");
    }
}
