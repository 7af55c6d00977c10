//! `presize manifest html`: the `<picture>` markup of every source of a build manifest, to
//! paste into a page template or have a static-site generator read.
//!
//! Called by `commands.rs`, which prints what [`render`] returns. The manifest is the only
//! input: the markup lists exactly the outputs the build made, with their real sizes.

use std::fmt::Write as _;

use crate::atomic::{write_atomic, Durability, WriteTarget};
use crate::cli::{Density, DEFAULT_SIZES};
use crate::config::HtmlOut;
use crate::format::Format;
use crate::html::Esc;
use crate::manifest::{self, Manifest, OutputEntry, SourceEntry};

/// Formats `<source>` elements are made for, most efficient first (the browser takes the first
/// it can show).
const SOURCE_ORDER: [Format; 5] = [
    Format::Avif,
    Format::Webp,
    Format::Jpeg,
    Format::Png,
    Format::Gif,
];

/// The `<img>` format, by preference: the one every browser shows.
const FALLBACK_ORDER: [Format; 6] = [
    Format::Jpeg,
    Format::Png,
    Format::Gif,
    Format::Webp,
    Format::Avif,
    Format::Svg,
];

/// How the markup is written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Markup<'a> {
    /// The `sizes` attribute for width descriptors; [`DEFAULT_SIZES`] when `None`.
    pub(crate) sizes: Option<&'a str>,
    /// Density descriptors instead of widths (then `sizes` is not used).
    pub(crate) density: &'a [Density],
    /// Put in front of every output path to make its URL (`/img`, `https://cdn.example/img`).
    pub(crate) prefix: Option<&'a str>,
}

/// `--html`: writes the markup of `manifest` to `out.path`, atomically and as durably as the
/// manifest it comes from.
pub(crate) fn write(
    manifest: &Manifest,
    out: &HtmlOut,
    sync: Durability,
) -> Result<(), crate::api::Error> {
    let markup = Markup {
        sizes: out.sizes.as_deref(),
        density: &[],
        prefix: out.prefix.as_deref(),
    };
    let target = WriteTarget {
        sync,
        ..WriteTarget::replacing(&out.path)
    };
    write_atomic(&target, render(manifest, &markup).as_bytes()).map_err(|source| {
        crate::api::Error::Markup {
            path: out.path.clone(),
            source,
        }
    })
}

/// One `<picture>` per source, in the manifest's order, separated by blank lines. A source
/// none of whose outputs a browser shows (TIFF only, say) gets none.
pub(crate) fn render(manifest: &Manifest, markup: &Markup<'_>) -> String {
    let mut html = String::new();
    for entry in &manifest.sources {
        let Some(picture) = picture(entry, markup) else {
            continue;
        };
        if !html.is_empty() {
            html.push('\n');
        }
        html.push_str(&picture);
    }
    html
}

/// The `<picture>` of one source.
fn picture(entry: &SourceEntry, markup: &Markup<'_>) -> Option<String> {
    let fallback = FALLBACK_ORDER
        .into_iter()
        .find(|&f| entry.outputs.iter().any(|o| o.format == f))?;
    let of = |format: Format| -> Vec<&OutputEntry> {
        let mut outputs: Vec<&OutputEntry> = entry
            .outputs
            .iter()
            .filter(|o| o.format == format)
            .collect();
        outputs.sort_by_key(|o| (o.width, o.height));
        outputs
    };
    // Density descriptors count from the narrowest fallback output (the 1x image), so every
    // format describes the same images.
    let base = of(fallback)[0].width;
    let mut html = String::from("<picture>\n");
    for format in SOURCE_ORDER.into_iter().filter(|&f| f != fallback) {
        let outputs = of(format);
        let Some((srcset, _)) = candidates(&outputs, base, markup) else {
            continue;
        };
        let mime = format.web_mime().expect("SOURCE_ORDER lists web formats");
        let _ = write!(
            html,
            "  <source type=\"{mime}\" srcset=\"{}\"",
            Esc(&srcset)
        );
        sizes_attribute(&mut html, markup);
        html.push_str(">\n");
    }
    let outputs = of(fallback);
    let (srcset, img) = candidates(&outputs, base, markup)?;
    let mut src = String::new();
    manifest::push_url(&img.path, markup.prefix, &mut src);
    let _ = write!(
        html,
        "  <img src=\"{}\" srcset=\"{}\"",
        Esc(&src),
        Esc(&srcset)
    );
    sizes_attribute(&mut html, markup);
    let _ = write!(
        html,
        " width=\"{}\" height=\"{}\" alt=\"\" loading=\"lazy\" decoding=\"async\"",
        img.width, img.height
    );
    placeholder_attributes(&mut html, entry);
    html.push_str(">\n</picture>\n");
    Some(html)
}

/// The `srcset` of one format's outputs (sorted by width) and the output its `<img>` would
/// show: with widths, every output and the widest; with densities, for each `Nx` the narrowest
/// output at least N × `base` wide (a density no output reaches is left out) and the `1x` one.
fn candidates<'o>(
    outputs: &[&'o OutputEntry],
    base: u32,
    markup: &Markup<'_>,
) -> Option<(String, &'o OutputEntry)> {
    let widest = *outputs.last()?;
    if markup.density.is_empty() {
        let owned: Vec<OutputEntry> = outputs.iter().map(|&o| o.clone()).collect();
        let set = manifest::srcset(&owned, markup.prefix)
            .into_values()
            .next()?;
        return Some((set, widest));
    }
    let mut set = String::new();
    let mut first = None;
    for &Density(d) in markup.density {
        let wanted = (f64::from(base) * d).round();
        let Some(&o) = outputs.iter().find(|o| f64::from(o.width) >= wanted) else {
            continue;
        };
        first.get_or_insert(o);
        if !set.is_empty() {
            set.push_str(", ");
        }
        manifest::push_url(&o.path, markup.prefix, &mut set);
        let _ = write!(set, " {d}x");
    }
    Some((set, first?))
}

fn sizes_attribute(html: &mut String, markup: &Markup<'_>) {
    if markup.density.is_empty() {
        let sizes = markup.sizes.unwrap_or(DEFAULT_SIZES);
        let _ = write!(html, " sizes=\"{}\"", Esc(sizes));
    }
}

/// The source's placeholder behind the image while it loads: the `lqip` as a background image
/// (over the dominant colour when there is one), else the colour alone. ThumbHash and BlurHash
/// need a script to decode, so they are handed to it as `data-` attributes.
fn placeholder_attributes(html: &mut String, entry: &SourceEntry) {
    let Some(p) = &entry.placeholder else {
        return;
    };
    let mut style = String::new();
    if let Some(color) = &p.color {
        let _ = write!(style, "background-color:{color};");
    }
    if let Some(lqip) = &p.lqip {
        let _ = write!(style, "background-image:url({lqip});background-size:cover;");
    }
    if !style.is_empty() {
        let _ = write!(html, " style=\"{}\"", Esc(&style));
    }
    if let Some(hash) = &p.thumbhash {
        let _ = write!(html, " data-thumbhash=\"{}\"", Esc(hash));
    }
    if let Some(hash) = &p.blurhash {
        let _ = write!(html, " data-blurhash=\"{}\"", Esc(hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Options, Placeholder};

    fn output(path: &str, width: u32, format: Format) -> OutputEntry {
        OutputEntry {
            path: path.to_owned(),
            width,
            height: width / 2,
            format,
            bytes: 1,
            key: String::new(),
        }
    }

    fn manifest(outputs: Vec<OutputEntry>, placeholder: Option<Placeholder>) -> Manifest {
        let mut m = Manifest::new(Options::new(Default::default()));
        m.insert(SourceEntry {
            path: "a.jpg".into(),
            width: 4000,
            height: 2000,
            hash: "xxh64:0".into(),
            bytes: 1,
            srcset: manifest::srcset(&outputs, None),
            outputs,
            dropped: Vec::new(),
            placeholder,
        });
        m
    }

    fn web_build() -> Vec<OutputEntry> {
        vec![
            output("a-400w.jpg", 400, Format::Jpeg),
            output("a-800w.jpg", 800, Format::Jpeg),
            output("a-400w.webp", 400, Format::Webp),
            output("a-800w.webp", 800, Format::Webp),
            output("a-400w.avif", 400, Format::Avif),
            output("a-800w.avif", 800, Format::Avif),
        ]
    }

    #[test]
    fn one_picture_with_a_source_per_format_and_the_jpeg_fallback() {
        let html = render(
            &manifest(web_build(), None),
            &Markup {
                sizes: Some("(min-width: 800px) 50vw, 100vw"),
                ..Markup::default()
            },
        );
        assert_eq!(
            html,
            "<picture>\n  <source type=\"image/avif\" srcset=\"a-400w.avif 400w, a-800w.avif 800w\" \
             sizes=\"(min-width: 800px) 50vw, 100vw\">\n  <source type=\"image/webp\" \
             srcset=\"a-400w.webp 400w, a-800w.webp 800w\" sizes=\"(min-width: 800px) 50vw, 100vw\">\n  \
             <img src=\"a-800w.jpg\" srcset=\"a-400w.jpg 400w, a-800w.jpg 800w\" \
             sizes=\"(min-width: 800px) 50vw, 100vw\" width=\"800\" height=\"400\" alt=\"\" \
             loading=\"lazy\" decoding=\"async\">\n</picture>\n"
        );
    }

    #[test]
    fn densities_pick_the_narrowest_output_wide_enough_from_the_1x_base() {
        let mut outputs = web_build();
        outputs.push(output("a-1200w.jpg", 1200, Format::Jpeg));
        let density = [Density(1.0), Density(2.0), Density(4.0)];
        let html = render(
            &manifest(outputs, None),
            &Markup {
                density: &density,
                prefix: Some("/img"),
                ..Markup::default()
            },
        );
        assert!(
            html.contains("srcset=\"/img/a-400w.avif 1x, /img/a-800w.avif 2x\">"),
            "{html}"
        );
        assert!(
            html.contains(
                "<img src=\"/img/a-400w.jpg\" srcset=\"/img/a-400w.jpg 1x, /img/a-800w.jpg 2x\" \
                 width=\"400\" height=\"200\""
            ),
            "{html}"
        );
        assert!(!html.contains("sizes="), "{html}");
        assert!(!html.contains("4x"), "no output is 1600 px wide: {html}");
    }

    #[test]
    fn the_placeholder_goes_behind_the_image() {
        let placeholder = Placeholder {
            thumbhash: Some("HwcG+/8=".into()),
            blurhash: Some("LLG9K,7}RRof".into()),
            color: Some("#2b0d3c".into()),
            lqip: Some("data:image/webp;base64,UklGRg==".into()),
        };
        let html = render(
            &manifest(web_build(), Some(placeholder)),
            &Markup::default(),
        );
        assert!(html.contains(
            " style=\"background-color:#2b0d3c;background-image:url(data:image/webp;base64,UklGRg==);\
             background-size:cover;\" data-thumbhash=\"HwcG+/8=\" data-blurhash=\"LLG9K,7}RRof\">"
        ), "{html}");
    }

    #[test]
    fn png_is_the_fallback_without_jpeg_and_other_formats_get_no_source() {
        let outputs = vec![
            output("a-400w.png", 400, Format::Png),
            output("a-400w.webp", 400, Format::Webp),
            output("a-400w.tif", 400, Format::Tiff),
        ];
        let html = render(&manifest(outputs, None), &Markup::default());
        assert!(html.contains("<img src=\"a-400w.png\""), "{html}");
        assert!(html.contains("type=\"image/webp\""), "{html}");
        assert!(!html.contains(".tif"), "{html}");
        let tiff_only = vec![output("a-400w.tif", 400, Format::Tiff)];
        assert_eq!(render(&manifest(tiff_only, None), &Markup::default()), "");
    }
}
