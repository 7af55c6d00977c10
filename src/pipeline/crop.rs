//! Crops that keep the subject: where the window of a `--fit cover` crop goes with
//! `--crop attention` or `--crop entropy`.
//!
//! Called by [`super::process`] between the decode and the make stage, only when some size
//! to be made is cropped. The decoded image is box-filtered to at most [`ANALYSIS_SIDE`] px,
//! turned upright, and scored; each size's window (its size fixed by the plan) then slides
//! over the scores to the best place. The centre and a focal point need no pixels: `plan.rs`
//! places those.

use crate::config::Filter;
use crate::error::JobError;
use crate::geometry::{Crop, Rect};

use super::pixels::{Layout, Pixels};
use super::plan::SizePlan;
use super::resize::{self, ResizeScratch};

/// The longer side of the copy the analysis runs on: enough to find a subject a few percent of
/// the frame wide, small enough that scoring costs next to nothing beside the decode.
const ANALYSIS_SIDE: u32 = 256;

/// Entropy is measured on this many grey levels: fewer bins would miss faint texture; more
/// would let sensor noise in flat sky count as detail.
const ENTROPY_BINS: usize = 32;

/// At most this many window positions are tried along each axis.
const MAX_POSITIONS: u32 = 128;

/// How the stored pixels are shown.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    /// EXIF orientation of the stored pixels.
    pub(super) orientation: u8,
    /// Displayed (oriented) size of the source, which the plan's geometry is in.
    pub(super) shown_size: (u32, u32),
}

/// Moves the crop window of every cropped size still to be made in `sizes` onto the region
/// `crop` asks for, judged from `pixels` (the decoded image as stored).
pub(super) fn place(
    sizes: &mut [SizePlan],
    pixels: &Pixels,
    view: View,
    crop: Crop,
    scratch: &mut ResizeScratch,
) -> Result<(), JobError> {
    if !matches!(crop, Crop::Attention | Crop::Entropy) {
        return Ok(());
    }
    let (sw, sh) = (f64::from(view.shown_size.0), f64::from(view.shown_size.1));
    let cropped =
        |p: &SizePlan| !p.is_fresh() && (p.shown.crop.width < sw || p.shown.crop.height < sh);
    if !sizes.iter().any(cropped) {
        return Ok(());
    }
    let small = analysis_image(pixels, view.orientation, scratch)?;
    let scores = Scores::new(&small, crop);
    for plan in sizes.iter_mut().filter(|p| cropped(p)) {
        let window = (
            fit_window(plan.shown.crop.width / sw, small.width),
            fit_window(plan.shown.crop.height / sh, small.height),
        );
        let (x, y) = scores.best(window);
        let centre = (
            (f64::from(x) + f64::from(window.0) / 2.0) / f64::from(small.width),
            (f64::from(y) + f64::from(window.1) / 2.0) / f64::from(small.height),
        );
        plan.shown = plan.shown.centred_on(view.shown_size, centre);
    }
    Ok(())
}

/// A window covering `share` of a `length`-pixel axis, in whole pixels.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn fit_window(share: f64, length: u32) -> u32 {
    ((share * f64::from(length)).round() as u32).clamp(1, length)
}

/// The small upright RGB copy the analysis runs on.
struct Small {
    width: u32,
    height: u32,
    /// `width * height` RGB triples; transparent pixels are composited over black, so what
    /// cannot be seen draws no attention.
    rgb: Vec<[u8; 3]>,
}

/// Box-filters `pixels` to at most [`ANALYSIS_SIDE`] px, to 8 bits, upright.
fn analysis_image(
    pixels: &Pixels,
    orientation: u8,
    scratch: &mut ResizeScratch,
) -> Result<Small, JobError> {
    let (w, h) = (pixels.width, pixels.height);
    let scale = (f64::from(ANALYSIS_SIDE) / f64::from(w.max(h))).min(1.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let size = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    let small = if scale < 1.0 {
        let whole = Rect {
            left: 0.0,
            top: 0.0,
            width: f64::from(w),
            height: f64::from(h),
        };
        resize::resize_ref(pixels, whole, (size(w), size(h)), Filter::Box, scratch)?
    } else {
        pixels.clone()
    };
    let small = resize::orient(small.into_8bit(), orientation);
    let channels = small.layout.channels();
    let rgb = small
        .data
        .chunks_exact(channels)
        .map(|p| {
            let over_black =
                |v: u8, a: u8| u8::try_from(u16::from(v) * u16::from(a) / 255).unwrap_or(v);
            match small.layout {
                Layout::L => [p[0]; 3],
                Layout::La => [over_black(p[0], p[1]); 3],
                Layout::Rgb => [p[0], p[1], p[2]],
                Layout::Rgba => [p[0], p[1], p[2]].map(|v| over_black(v, p[3])),
            }
        })
        .collect();
    Ok(Small {
        width: small.width,
        height: small.height,
        rgb,
    })
}

/// What the windows are judged on.
enum Scores {
    /// Attention per pixel, as a summed-area table (`(width + 1) * (height + 1)`), so any
    /// window's total is four look-ups. Integers, so equal regions tie exactly.
    Attention {
        width: u32,
        height: u32,
        table: Vec<u64>,
    },
    /// Each pixel's grey level, quantised to [`ENTROPY_BINS`].
    Entropy {
        width: u32,
        height: u32,
        bins: Vec<u8>,
    },
}

impl Scores {
    fn new(small: &Small, crop: Crop) -> Scores {
        let (w, h) = (small.width, small.height);
        let luma: Vec<u32> = small
            .rgb
            .iter()
            .map(|&[r, g, b]| (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000)
            .collect();
        if crop == Crop::Entropy {
            let bins = luma
                .iter()
                .map(|&y| u8::try_from(y as usize * ENTROPY_BINS / 256).unwrap_or(u8::MAX))
                .collect();
            return Scores::Entropy {
                width: w,
                height: h,
                bins,
            };
        }
        let (wu, hu) = (w as usize, h as usize);
        let mut table = vec![0u64; (wu + 1) * (hu + 1)];
        for y in 0..hu {
            let mut row = 0u64;
            for x in 0..wu {
                row += u64::from(attention(&small.rgb, &luma, (wu, hu), (x, y)));
                table[(y + 1) * (wu + 1) + x + 1] = table[y * (wu + 1) + x + 1] + row;
            }
        }
        Scores::Attention {
            width: w,
            height: h,
            table,
        }
    }

    /// The top-left corner of the best `window` (in analysis pixels): the highest score, and
    /// of equal scores the one nearest the centre (so a featureless image is cropped in the
    /// middle, as without `--crop`).
    fn best(&self, window: (u32, u32)) -> (u32, u32) {
        let (w, h) = match self {
            Scores::Attention { width, height, .. } | Scores::Entropy { width, height, .. } => {
                (*width, *height)
            }
        };
        let (slack_x, slack_y) = (w - window.0, h - window.1);
        let step = |slack: u32| (slack / MAX_POSITIONS).max(1);
        let mut best: Option<(f64, u64, (u32, u32))> = None;
        for y in (0..=slack_y).step_by(step(slack_y) as usize) {
            for x in (0..=slack_x).step_by(step(slack_x) as usize) {
                let score = self.window_score((x, y), window);
                let off = |v: u32, slack: u32| u64::from((2 * v).abs_diff(slack));
                let distance = off(x, slack_x).pow(2) + off(y, slack_y).pow(2);
                let better = best.is_none_or(|(s, d, _)| score > s || (score == s && distance < d));
                if better {
                    best = Some((score, distance, (x, y)));
                }
            }
        }
        best.map_or((slack_x / 2, slack_y / 2), |(_, _, at)| at)
    }

    /// The score of the window of `size` at `at`.
    #[allow(clippy::cast_precision_loss)]
    fn window_score(&self, at: (u32, u32), size: (u32, u32)) -> f64 {
        let (x, y, ww, wh) = (
            at.0 as usize,
            at.1 as usize,
            size.0 as usize,
            size.1 as usize,
        );
        match self {
            Scores::Attention { width, table, .. } => {
                let stride = *width as usize + 1;
                let sum = |cx: usize, cy: usize| table[cy * stride + cx];
                let total = sum(x + ww, y + wh) + sum(x, y) - sum(x + ww, y) - sum(x, y + wh);
                total as f64
            }
            Scores::Entropy { width, bins, .. } => {
                let mut counts = [0u32; ENTROPY_BINS];
                for row in y..y + wh {
                    let start = row * *width as usize + x;
                    for &b in &bins[start..start + ww] {
                        counts[usize::from(b)] += 1;
                    }
                }
                shannon(&counts)
            }
        }
    }
}

/// The entropy in bits of a histogram.
fn shannon(counts: &[u32]) -> f64 {
    let n: f64 = counts.iter().map(|&c| f64::from(c)).sum();
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// How much the pixel at `at` draws the eye: its edge strength (the Laplacian of the grey
/// level), its colourfulness (the spread of its channels) and, for skin tones, a bonus worth a
/// strongly coloured pixel (faces are what people look at first).
fn attention(rgb: &[[u8; 3]], luma: &[u32], (w, h): (usize, usize), (x, y): (usize, usize)) -> u32 {
    let at = |x: usize, y: usize| luma[y * w + x];
    let centre = at(x, y);
    let neighbours = at(x.saturating_sub(1), y)
        + at((x + 1).min(w - 1), y)
        + at(x, y.saturating_sub(1))
        + at(x, (y + 1).min(h - 1));
    let edge = (4 * centre).abs_diff(neighbours);
    let [r, g, b] = rgb[y * w + x];
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let chroma = u32::from(max - min);
    edge + chroma + if is_skin(r, g, b) { 192 } else { 0 }
}

/// Returns true if and only if the colour is a likely skin tone under daylight: the explicit
/// RGB rule of Kovač, Peer and Solina (2003), which covers light to dark skin.
fn is_skin(r: u8, g: u8, b: u8) -> bool {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    r > 95 && g > 40 && b > 20 && max - min > 15 && r.abs_diff(g) > 15 && r > g && r > b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Small {
        let rgb = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Small {
            width: w,
            height: h,
            rgb,
        }
    }

    #[test]
    fn a_featureless_image_is_cropped_in_the_middle() {
        let flat = small(100, 40, |_, _| [90, 90, 90]);
        for crop in [Crop::Attention, Crop::Entropy] {
            assert_eq!(Scores::new(&flat, crop).best((40, 40)), (30, 0), "{crop:?}");
        }
    }

    #[test]
    fn attention_finds_colour_and_skin_and_entropy_finds_texture() {
        // A grey field with a red square on the right.
        let red = small(100, 40, |x, y| {
            if (75..90).contains(&x) && (10..25).contains(&y) {
                [220, 30, 30]
            } else {
                [100, 100, 100]
            }
        });
        let (x, _) = Scores::new(&red, Crop::Attention).best((40, 40));
        assert!(x <= 75 && x + 40 >= 90, "window at {x} misses the square");
        // A skin-coloured patch, no more colourful than the blue one, wins by its tone.
        let skin = small(100, 40, |x, _| match x {
            5..20 => [60, 90, 200],
            80..95 => [224, 172, 105],
            _ => [128, 128, 128],
        });
        assert!(is_skin(224, 172, 105) && !is_skin(60, 90, 200));
        let (x, _) = Scores::new(&skin, Crop::Attention).best((30, 40));
        assert!(x >= 65, "window at {x} is not on the skin tone");
        // Noise on the left of a smooth ramp.
        let noisy = small(100, 40, |x, y| {
            let v = if x < 30 {
                ((x * 7919 + y * 104_729) % 251) as u8
            } else {
                100 + (x / 10) as u8
            };
            [v, v, v]
        });
        let (x, _) = Scores::new(&noisy, Crop::Entropy).best((30, 40));
        assert_eq!(x, 0, "the detailed region is the left third");
    }

    /// An off-centre window placed in displayed coordinates lands on the same pixels in the
    /// stored image, for every EXIF orientation (checked against `resize::orient` itself).
    #[test]
    fn windows_map_to_the_stored_pixels_in_every_orientation() {
        use crate::geometry::{plan, Dim, Fit, Target};
        let (w, h) = (8u32, 6u32);
        for orientation in 1..=8u8 {
            for (mx, my) in [(1u32, 1u32), (6, 4), (2, 5)] {
                // The stored image: one marked pixel.
                let mut data = vec![0u8; (w * h) as usize];
                data[(my * w + mx) as usize] = 255;
                let stored = Pixels {
                    data,
                    width: w,
                    height: h,
                    layout: Layout::L,
                    depth: super::super::pixels::Depth::Eight,
                };
                let shown = resize::orient(stored, orientation);
                let at = shown.data.iter().position(|&v| v == 255).unwrap() as u32;
                let (dx, dy) = (at % shown.width, at / shown.width);
                let size = (shown.width, shown.height);
                let target = Target {
                    width: Some(Dim::Px(3)),
                    height: Some(Dim::Px(3)),
                    fit: Fit::Cover,
                    upscale: false,
                };
                let point = (
                    (f64::from(dx) + 0.5) / f64::from(size.0),
                    (f64::from(dy) + 0.5) / f64::from(size.1),
                );
                let g = plan(size, &target).centred_on(size, point);
                let inside = |c: &Rect, x: u32, y: u32| {
                    c.left <= f64::from(x)
                        && f64::from(x) + 1.0 <= c.left + c.width
                        && c.top <= f64::from(y)
                        && f64::from(y) + 1.0 <= c.top + c.height
                };
                assert!(inside(&g.crop, dx, dy), "o{orientation}: shown window");
                let s = g.stored(size, orientation);
                assert!(
                    inside(&s.crop, mx, my),
                    "o{orientation} ({mx},{my}): {:?}",
                    s.crop
                );
            }
        }
    }

    #[test]
    fn entropy_of_a_histogram() {
        assert_eq!(shannon(&[10, 0, 0]), 0.0);
        assert!((shannon(&[5, 5, 5, 5]) - 2.0).abs() < 1e-12);
    }
}
