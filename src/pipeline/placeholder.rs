//! `--placeholder`: what a page shows while an image loads, computed once per source from the
//! pixels already decoded for its outputs (never a second decode) and stored in the manifest.
//!
//! Called by [`super::process`] after the decode stage, when the source's previous manifest
//! entry does not already hold every kind asked for. Every kind starts from one small image: the
//! whole source (not an output's crop), displayed orientation, sRGB, at most [`SAMPLE`] pixels a
//! side (the most ThumbHash accepts), averaged down from the decoded pixels.

use base64::Engine as _;

use crate::config::{Filter, PlaceholderKind, Settings};
use crate::error::JobError;
use crate::geometry::{self, Dim, Fit, Geometry, Rect, Target};
use crate::manifest::Placeholder;
use crate::metadata::Metadata;

use super::color;
use super::context::MakeScratch;
use super::encode;
use super::make::{Decoded, Render};
use super::pixels::{Layout, Pixels};
use super::resize;

/// The longest side of the image every placeholder is computed from.
pub(super) const SAMPLE: u32 = 100;
/// The longest side of the `lqip` WebP. 32 px is the brief's ceiling; measured on the corpus
/// photos, 24 px gives 250-400 bytes (see the README's "Placeholders").
const LQIP_SIDE: u32 = 24;
/// libwebp quality of the `lqip`: the image is blurred anyway, and bytes are what count inline.
const LQIP_QUALITY: f32 = 40.0;
/// BlurHash components along the longer and the shorter side (the reference encoder's
/// example uses 4 × 3).
const BLURHASH_COMPONENTS: (u32, u32) = (4, 3);

/// The geometry of the sample image: the whole source fitted inside [`SAMPLE`]².
pub(super) fn sample_geometry(shown: (u32, u32)) -> Geometry {
    let side = Some(Dim::Px(SAMPLE));
    let target = Target {
        width: side,
        height: side,
        fit: Fit::Inside,
        upscale: false,
    };
    geometry::plan(shown, &target)
}

/// Computes the `kinds` asked for from the decoded source `pixels` (as stored, with `render`'s
/// orientation and decode scale), whose profile is `meta.icc`.
pub(super) fn make(
    render: &Render<'_>,
    pixels: &Pixels,
    meta: &Metadata,
    shown: (u32, u32),
    kinds: &[PlaceholderKind],
    scratch: &mut MakeScratch,
) -> Result<Placeholder, JobError> {
    // A box filter in gamma space: a 100-px sample of a photo decoded at 2000 px or more is an
    // average of 20 × 20 pixels or more, where Lanczos costs 6 times the taps (and `--linear`
    // a 16-bit pass) for a difference no placeholder shows.
    let settings = Settings {
        filter: Filter::Box,
        ..render.settings.clone()
    };
    let box_render = Render {
        settings: &settings,
        linear: None,
        orientation: render.orientation,
        scale: render.scale,
        shown_size: render.shown_size,
    };
    let sample = box_render.size(
        &sample_geometry(shown),
        Decoded::Shared(pixels),
        &mut scratch.resize,
        1,
    )?;
    let mut sample = sample.into_8bit();
    if let Some(profile) = meta.icc.as_deref().filter(|p| !color::is_srgb(p)) {
        // Placeholders are shown by browsers as sRGB. A profile the colour engine cannot use
        // leaves the pixels as they are, as it does for the outputs.
        let _ = scratch.color.to_srgb(&mut sample, profile);
    }
    let sample = to_rgba(&sample);
    let mut placeholder = Placeholder::default();
    for &kind in kinds {
        let value = match kind {
            PlaceholderKind::Thumbhash => thumbhash(&sample),
            PlaceholderKind::Blurhash => blurhash(&sample)?,
            PlaceholderKind::Color => {
                let [r, g, b] = dominant_color(&sample.data);
                format!("#{r:02x}{g:02x}{b:02x}")
            }
            PlaceholderKind::Lqip => lqip(&sample, scratch)?,
        };
        placeholder.set(kind, value);
    }
    Ok(placeholder)
}

/// An 8-bit image as RGBA.
fn to_rgba(px: &Pixels) -> Pixels {
    Pixels {
        data: px.rgba_samples(),
        layout: Layout::Rgba,
        ..*px
    }
}

/// ThumbHash of an RGBA sample (alpha included), base64 with padding.
fn thumbhash(rgba: &Pixels) -> String {
    let hash = thumbhash::rgba_to_thumb_hash(rgba.width as usize, rgba.height as usize, &rgba.data);
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// BlurHash of an RGBA sample. BlurHash has no alpha: transparent areas count as white, a
/// fixed colour, so that the hash depends on the source alone.
fn blurhash(rgba: &Pixels) -> Result<String, JobError> {
    let flat = resize::flatten(rgba.clone(), [255, 255, 255]);
    let opaque = to_rgba(&flat);
    let (long, short) = BLURHASH_COMPONENTS;
    let (x, y) = if rgba.width >= rgba.height {
        (long, short)
    } else {
        (short, long)
    };
    blurhash::encode(x, y, opaque.width, opaque.height, &opaque.data).map_err(|e| {
        JobError::Encode {
            format: "BlurHash",
            message: e.to_string(),
        }
    })
}

/// A tiny blurred WebP of the sample, as a `data:` URL.
fn lqip(rgba: &Pixels, scratch: &mut MakeScratch) -> Result<String, JobError> {
    let (w, h) = (rgba.width, rgba.height);
    let scale = f64::from(LQIP_SIDE) / f64::from(w.max(h));
    let size = if scale < 1.0 {
        (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        )
    } else {
        (w, h)
    };
    let whole = Rect {
        left: 0.0,
        top: 0.0,
        width: f64::from(w),
        height: f64::from(h),
    };
    let mut small = resize::resize(
        rgba.clone(),
        whole,
        size,
        Filter::Lanczos3,
        &mut scratch.resize,
    )?;
    // Blurred on purpose: it reads as "loading", not as a bad photo, and compresses to less.
    blur(&mut small);
    let opaque = small.data.chunks_exact(4).all(|p| p[3] == 255);
    let small = if opaque {
        resize::flatten(small, [255, 255, 255])
    } else {
        small
    };
    let webp = encode::encode_webp_plain(&small, LQIP_QUALITY)?;
    let mut url = String::from("data:image/webp;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(webp, &mut url);
    Ok(url)
}

/// A separable [1 2 1] / 4 blur, twice, of an RGBA image (edges clamped).
fn blur(px: &mut Pixels) {
    let (w, h) = (px.width as usize, px.height as usize);
    for _ in 0..2 {
        for (stride, len, count, step) in [(4, w, h, 4 * w), (4 * w, h, w, 4)] {
            for line in 0..count {
                let base = line * step;
                let old: Vec<u8> = (0..len * 4)
                    .map(|i| px.data[base + (i / 4) * stride + i % 4])
                    .collect();
                for i in 0..len {
                    let (prev, next) = (i.saturating_sub(1), (i + 1).min(len - 1));
                    for c in 0..4 {
                        let v = u16::from(old[prev * 4 + c])
                            + 2 * u16::from(old[i * 4 + c])
                            + u16::from(old[next * 4 + c]);
                        px.data[base + i * stride + c] = u8::try_from((v + 2) / 4).unwrap_or(255);
                    }
                }
            }
        }
    }
}

/// The dominant colour of RGBA pixels (those at least half opaque): the centre of the most
/// populous cluster in Oklab, where distances follow perceived differences. A mean would give
/// the grey-blue of neither sky nor sea; this gives whichever covers more.
///
/// Clusters start from the most populous cells of a coarse Oklab grid (6 × 6 × 6) and are
/// refined by a few k-means steps, so a colour split by a grid boundary is joined again. The
/// result is deterministic. Fully transparent input gives white.
pub(crate) fn dominant_color(rgba: &[u8]) -> [u8; 3] {
    const CELLS: usize = 6;
    const CLUSTERS: usize = 5;
    const STEPS: usize = 6;
    let lab: Vec<[f32; 3]> = rgba
        .chunks_exact(4)
        .filter(|p| p[3] >= 128)
        .map(|p| oklab([p[0], p[1], p[2]]))
        .collect();
    if lab.is_empty() {
        return [255, 255, 255];
    }
    let cell = |c: [f32; 3]| {
        let axis = |v: f32, lo: f32, hi: f32| {
            (((v - lo) / (hi - lo) * CELLS as f32) as usize).min(CELLS - 1)
        };
        (axis(c[0], 0.0, 1.0) * CELLS + axis(c[1], -0.4, 0.4)) * CELLS + axis(c[2], -0.4, 0.4)
    };
    let mut grid = vec![(0u32, [0f32; 3]); CELLS * CELLS * CELLS];
    for &c in &lab {
        let g = &mut grid[cell(c)];
        g.0 += 1;
        (0..3).for_each(|i| g.1[i] += c[i]);
    }
    let mut seeds: Vec<(u32, [f32; 3])> = grid.into_iter().filter(|g| g.0 > 0).collect();
    // Most populous first; ties broken by the colour itself, so the order is total.
    seeds.sort_by(|a, b| b.0.cmp(&a.0).then(a.1[0].total_cmp(&b.1[0])));
    let mut centres: Vec<[f32; 3]> = seeds
        .iter()
        .take(CLUSTERS)
        .map(|(n, s)| s.map(|v| v / *n as f32))
        .collect();
    let mut counts = vec![0u32; centres.len()];
    for _ in 0..STEPS {
        let mut sums = vec![[0f32; 3]; centres.len()];
        counts.iter_mut().for_each(|n| *n = 0);
        for &c in &lab {
            let nearest = (0..centres.len())
                .min_by(|&a, &b| dist2(c, centres[a]).total_cmp(&dist2(c, centres[b])))
                .expect("at least one centre");
            counts[nearest] += 1;
            (0..3).for_each(|i| sums[nearest][i] += c[i]);
        }
        for (k, centre) in centres.iter_mut().enumerate() {
            if counts[k] > 0 {
                *centre = sums[k].map(|v| v / counts[k] as f32);
            }
        }
    }
    let best = (0..centres.len())
        .max_by_key(|&k| (counts[k], std::cmp::Reverse(k)))
        .expect("at least one centre");
    srgb_from_oklab(centres[best])
}

fn dist2(a: [f32; 3], b: [f32; 3]) -> f32 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum()
}

fn to_linear(v: u8) -> f32 {
    let v = f32::from(v) / 255.0;
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn from_linear(v: f32) -> u8 {
    let v = if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    };
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// sRGB to Oklab (Björn Ottosson's published matrices).
fn oklab(rgb: [u8; 3]) -> [f32; 3] {
    let [r, g, b] = rgb.map(to_linear);
    let l = (0.412_221_47 * r + 0.536_332_55 * g + 0.051_445_995 * b).cbrt();
    let m = (0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b).cbrt();
    let s = (0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b).cbrt();
    [
        0.210_454_26 * l + 0.793_617_8 * m - 0.004_072_047 * s,
        1.977_998_5 * l - 2.428_592_2 * m + 0.450_593_7 * s,
        0.025_904_037 * l + 0.782_771_77 * m - 0.808_675_77 * s,
    ]
}

/// Oklab back to sRGB, clamped to the gamut.
fn srgb_from_oklab([l, a, b]: [f32; 3]) -> [u8; 3] {
    let l_ = (l + 0.396_337_78 * a + 0.215_803_76 * b).powi(3);
    let m_ = (l - 0.105_561_346 * a - 0.063_854_17 * b).powi(3);
    let s_ = (l - 0.089_484_18 * a - 1.291_485_5 * b).powi(3);
    [
        4.076_741_7 * l_ - 3.307_711_6 * m_ + 0.230_969_94 * s_,
        -1.268_438 * l_ + 2.609_757_4 * m_ - 0.341_319_38 * s_,
        -0.004_196_086_3 * l_ - 0.703_418_6 * m_ + 1.707_614_7 * s_,
    ]
    .map(from_linear)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`×`h` RGBA image whose left `split` columns are `left` and the rest `right`, with
    /// a little deterministic noise (a real sky is not one value).
    fn halves(w: u32, h: u32, split: u32, left: [u8; 3], right: [u8; 3]) -> Vec<u8> {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let c = if x < split { left } else { right };
                let noise = ((x * 7 + y * 13) % 5) as i16 - 2;
                data.extend(c.map(|v| (i16::from(v) + noise).clamp(0, 255) as u8));
                data.push(255);
            }
        }
        data
    }

    fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
        a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= tolerance)
    }

    #[test]
    fn dominant_colour_is_the_larger_area_not_the_mean() {
        let sky = [110, 170, 230];
        let sea = [20, 70, 90];
        for (split, want) in [(60, sky), (40, sea)] {
            let got = dominant_color(&halves(100, 50, split, sky, sea));
            assert!(close(got, want, 3), "split {split}: {got:?}, want {want:?}");
            // The mean would be far from both.
            let mean = [0, 1, 2].map(|i| {
                ((u32::from(sky[i]) * split + u32::from(sea[i]) * (100 - split)) / 100) as u8
            });
            assert!(!close(mean, want, 20), "the test must tell the mean apart");
        }
    }

    #[test]
    fn dominant_colour_ignores_transparent_pixels_and_survives_empty_input() {
        let mut data = halves(10, 10, 3, [200, 30, 30], [30, 200, 30]);
        // Make the larger (green) part transparent: red is all that is seen.
        for p in data.chunks_exact_mut(4).enumerate() {
            if p.0 % 10 >= 3 {
                p.1[3] = 0;
            }
        }
        assert!(close(dominant_color(&data), [200, 30, 30], 3));
        assert_eq!(dominant_color(&[0, 0, 0, 0]), [255, 255, 255]);
    }

    #[test]
    fn oklab_round_trips_the_srgb_cube() {
        for r in (0..=255).step_by(51) {
            for g in (0..=255).step_by(51) {
                for b in (0..=255).step_by(51) {
                    let c = [r as u8, g as u8, b as u8];
                    assert!(close(srgb_from_oklab(oklab(c)), c, 1), "{c:?}");
                }
            }
        }
    }

    #[test]
    fn blur_keeps_flat_areas_and_softens_edges() {
        let mut px = Pixels {
            data: halves(8, 4, 4, [0, 0, 0], [255, 255, 255])
                .chunks_exact(4)
                .flat_map(|p| {
                    [if p[0] < 128 { 0 } else { 255 }; 3]
                        .into_iter()
                        .chain([255])
                })
                .collect(),
            width: 8,
            height: 4,
            layout: Layout::Rgba,
            depth: super::super::pixels::Depth::Eight,
        };
        blur(&mut px);
        let row: Vec<u8> = px.data.chunks_exact(4).take(8).map(|p| p[0]).collect();
        assert_eq!(row[0], 0);
        assert_eq!(row[7], 255);
        assert!(row[3] > 0 && row[4] < 255, "{row:?}");
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
    }
}
