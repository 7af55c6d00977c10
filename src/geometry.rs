//! Pure size math: from a source size and the user's target to the crop, resize and canvas.
//!
//! Everything here works in *displayed* (EXIF-oriented) coordinates and is free of I/O, so it is
//! table-tested below. The pipeline transposes the result when the stored pixels are rotated.

use std::fmt;
use std::str::FromStr;

/// One dimension: an absolute pixel count or a percentage of the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dim {
    /// Exact pixels.
    Px(u32),
    /// Percent of the source dimension.
    Percent(f64),
}

impl Dim {
    /// Resolves against the source dimension; never below one pixel.
    pub fn resolve(self, src: u32) -> u32 {
        match self {
            Dim::Px(v) => v,
            Dim::Percent(p) => round_dim(f64::from(src) * p / 100.0),
        }
    }
}

impl FromStr for Dim {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("'{s}' is not a percentage (e.g. 50%)"))?;
            if !(v > 0.0 && v <= 1000.0) {
                return Err(format!(
                    "'{s}': percentage must be above 0 and at most 1000"
                ));
            }
            return Ok(Dim::Percent(v));
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("'{s}' is not a pixel count (e.g. 800) or a percentage (50%)"))?;
        if v == 0 || v > 65_535 {
            return Err(format!("'{s}': pixels must be between 1 and 65535"));
        }
        Ok(Dim::Px(v))
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Px(v) => write!(f, "{v}"),
            Dim::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// How an image is fitted to a box when both dimensions are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Fit within the box, aspect kept.
    Inside,
    /// Cover the box, aspect kept, overflow cropped around the centre.
    Cover,
    /// Exactly the box, aspect ignored.
    Fill,
    /// Fit within the box, then pad to exactly the box.
    Contain,
}

/// Where the window of a `--fit cover` crop goes (`--crop`, `--focal`). The window's size comes
/// from the target alone; only its position depends on this.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Crop {
    /// Centred (the default, and the only placement before `--crop` existed).
    #[default]
    Centre,
    /// The region that draws the eye: saturated colour, skin tones, edges.
    Attention,
    /// The most detailed region: the highest Shannon entropy of the luma histogram.
    Entropy,
    /// Centred on this point, given as fractions of the width and height (0.0 to 1.0), as far
    /// as the edges allow.
    Focal(f64, f64),
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Requested width, if any.
    pub width: Option<Dim>,
    /// Requested height, if any.
    pub height: Option<Dim>,
    /// Box fitting mode (only matters when both are given).
    pub fit: Fit,
    /// Whether enlarging is allowed.
    pub upscale: bool,
}

/// A source rectangle, in source pixels (fractional, as the resampler accepts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// The resolved plan for one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Geometry {
    /// The part of the source that is resampled (the whole source unless `--fit cover`).
    pub crop: Rect,
    /// Size of the resampled image.
    pub size: (u32, u32),
    /// Final canvas when padding (`--fit contain`); the image is centred on it.
    pub canvas: Option<(u32, u32)>,
}

impl Geometry {
    /// The final output dimensions.
    pub(crate) fn output_size(&self) -> (u32, u32) {
        self.canvas.unwrap_or(self.size)
    }

    /// How many output pixels each source pixel of the crop becomes, across and down (so the
    /// resolution that keeps the print size is the source's times this).
    pub(crate) fn scale(&self) -> (f64, f64) {
        (
            f64::from(self.size.0) / self.crop.width,
            f64::from(self.size.1) / self.crop.height,
        )
    }

    /// Returns true if and only if the pixels pass through unchanged in size and extent.
    pub(crate) fn is_identity(&self, src: (u32, u32)) -> bool {
        self.canvas.is_none() && self.size == src && self.crop == full(src)
    }

    /// The crop window of a source shown at `src`, moved so that its centre is as close to
    /// `point` (fractions of the width and height) as the edges allow; the size is unchanged.
    pub(crate) fn centred_on(&self, src: (u32, u32), point: (f64, f64)) -> Geometry {
        let place = |length: u32, window: f64, at: f64| {
            let slack = (f64::from(length) - window).max(0.0);
            (at.clamp(0.0, 1.0) * f64::from(length) - window / 2.0).clamp(0.0, slack)
        };
        let mut moved = *self;
        moved.crop.left = place(src.0, self.crop.width, point.0);
        moved.crop.top = place(src.1, self.crop.height, point.1);
        moved
    }

    /// The same geometry in the stored pixels of a source shown at `shown` with EXIF
    /// `orientation` (1-8): axes exchanged for the quarter turns, the crop window mirrored along
    /// each flipped axis. A centred window stays exactly where [`Geometry::transposed`] puts it
    /// (the mirror maps the slack's middle onto itself with no rounding), so centre crops are
    /// unchanged to the bit.
    pub(crate) fn stored(&self, shown: (u32, u32), orientation: u8) -> Geometry {
        // Which stored axes run against the displayed ones (EXIF 2-8; see `resize::orient`).
        let (flip_x, flip_y) = match orientation {
            2 | 8 => (true, false),
            3 | 7 => (true, true),
            4 | 6 => (false, true),
            _ => (false, false),
        };
        let (mut g, (sw, sh)) = if orientation >= 5 {
            (self.transposed(), (shown.1, shown.0))
        } else {
            (*self, shown)
        };
        let mirror = |start: f64, window: f64, length: u32| {
            let slack = f64::from(length) - window;
            if slack <= 0.0 {
                return start;
            }
            (slack * (1.0 - start / slack)).clamp(0.0, slack)
        };
        if flip_x {
            g.crop.left = mirror(g.crop.left, g.crop.width, sw);
        }
        if flip_y {
            g.crop.top = mirror(g.crop.top, g.crop.height, sh);
        }
        g
    }

    /// The same geometry seen with width and height exchanged, the crop's offsets with them
    /// (sizes only are right for every orientation; [`Geometry::stored`] places the window).
    pub(crate) fn transposed(&self) -> Geometry {
        Geometry {
            crop: Rect {
                left: self.crop.top,
                top: self.crop.left,
                width: self.crop.height,
                height: self.crop.width,
            },
            size: (self.size.1, self.size.0),
            canvas: self.canvas.map(|(w, h)| (h, w)),
        }
    }
}

fn full((w, h): (u32, u32)) -> Rect {
    Rect {
        left: 0.0,
        top: 0.0,
        width: f64::from(w),
        height: f64::from(h),
    }
}

/// Rounds a computed dimension to whole pixels, never below one.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn round_dim(v: f64) -> u32 {
    (v.round().clamp(1.0, f64::from(u32::MAX))) as u32
}

/// Computes crop, resize size and canvas for a source of `src` (displayed) pixels: a width of
/// 800 makes a 4032x3024 photo 800x600 and leaves a 400x250 one as it is (never enlarged).
///
/// One case analysis over the four fit modes, kept in one function (longer than a screen) so
/// that their clamping rules can be read side by side.
pub(crate) fn plan(src: (u32, u32), target: &Target) -> Geometry {
    let (sw, sh) = (f64::from(src.0), f64::from(src.1));
    let whole = full(src);
    let cap = |scale: f64| {
        if target.upscale {
            scale
        } else {
            scale.min(1.0)
        }
    };
    let scaled = |scale: f64| (round_dim(sw * scale), round_dim(sh * scale));

    let (bw, bh) = match (target.width, target.height) {
        (None, None) => {
            return Geometry {
                crop: whole,
                size: src,
                canvas: None,
            }
        }
        (Some(w), None) => {
            let s = cap(f64::from(w.resolve(src.0)) / sw);
            return Geometry {
                crop: whole,
                size: scaled(s),
                canvas: None,
            };
        }
        (None, Some(h)) => {
            let s = cap(f64::from(h.resolve(src.1)) / sh);
            return Geometry {
                crop: whole,
                size: scaled(s),
                canvas: None,
            };
        }
        (Some(w), Some(h)) => (w.resolve(src.0), h.resolve(src.1)),
    };
    let (fw, fh) = (f64::from(bw), f64::from(bh));

    match target.fit {
        Fit::Inside => {
            let s = cap((fw / sw).min(fh / sh));
            // Clamp so that rounding never pokes outside the box.
            let (w, h) = scaled(s);
            Geometry {
                crop: whole,
                size: (w.min(bw), h.min(bh)),
                canvas: None,
            }
        }
        Fit::Contain => {
            let s = cap((fw / sw).min(fh / sh));
            let (w, h) = scaled(s);
            let size = (w.min(bw), h.min(bh));
            Geometry {
                crop: whole,
                size,
                canvas: Some((bw, bh)),
            }
        }
        Fit::Fill => {
            let size = if target.upscale {
                (bw, bh)
            } else {
                (bw.min(src.0), bh.min(src.1))
            };
            Geometry {
                crop: whole,
                size,
                canvas: None,
            }
        }
        Fit::Cover => {
            let s = (fw / sw).max(fh / sh);
            // Without --upscale a source too small to cover the box keeps its scale and is
            // cropped to the box only where it is larger than the box: 320x240 into 300x300
            // gives 300x240. That is libvips's `vipsthumbnail --crop` and sharp's `cover` with
            // `withoutEnlargement` (sharp issue #2020 fixed it to this): the output never
            // exceeds the box, nothing is enlarged, and no more of the picture is cut away
            // than the box demands (issue #13 item 14).
            let (s, (ow, oh)) = if target.upscale || s <= 1.0 {
                (s, (bw, bh))
            } else {
                (1.0, (bw.min(src.0), bh.min(src.1)))
            };
            let cw = (f64::from(ow) / s).min(sw);
            let ch = (f64::from(oh) / s).min(sh);
            let crop = Rect {
                left: (sw - cw) / 2.0,
                top: (sh - ch) / 2.0,
                width: cw,
                height: ch,
            };
            Geometry {
                crop,
                size: (ow, oh),
                canvas: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_width_keeps_the_aspect_and_never_enlarges() {
        let target = Target {
            width: Some(Dim::Px(800)),
            height: None,
            fit: Fit::Inside,
            upscale: false,
        };
        assert_eq!(plan((4032, 3024), &target).output_size(), (800, 600));
        assert_eq!(plan((400, 250), &target).output_size(), (400, 250));
    }

    fn t(width: Option<Dim>, height: Option<Dim>, fit: Fit, upscale: bool) -> Target {
        Target {
            width,
            height,
            fit,
            upscale,
        }
    }
    const W800: Option<Dim> = Some(Dim::Px(800));

    #[test]
    fn width_only_keeps_aspect_ratio_with_rounding() {
        let cases = [
            ((4032, 3024), 800, (800, 600)),
            ((6028, 3391), 800, (800, 450)),  // 450.04
            ((2560, 3837), 800, (800, 1199)), // 1199.06
            ((1000, 3), 800, (800, 2)),       // 2.4
            ((3000, 1), 800, (800, 1)),       // never below one pixel
        ];
        for (src, w, want) in cases {
            let g = plan(src, &t(Some(Dim::Px(w)), None, Fit::Inside, false));
            assert_eq!(g.size, want, "{src:?} -> w{w}");
            assert_eq!(g.canvas, None);
        }
    }

    #[test]
    fn never_upscales_unless_asked() {
        let g = plan((400, 250), &t(W800, None, Fit::Inside, false));
        assert_eq!(g.size, (400, 250));
        assert!(g.is_identity((400, 250)));
        let g = plan((400, 250), &t(W800, None, Fit::Inside, true));
        assert_eq!(g.size, (800, 500));
    }

    #[test]
    fn height_only_and_percent() {
        let g = plan(
            (4000, 3000),
            &t(None, Some(Dim::Px(600)), Fit::Inside, false),
        );
        assert_eq!(g.size, (800, 600));
        let half = Some(Dim::Percent(50.0));
        let g = plan((1801, 1201), &t(half, half, Fit::Inside, false));
        assert_eq!(g.size, (901, 601));
    }

    #[test]
    fn inside_fits_the_box_on_the_tighter_side() {
        let g = plan((4000, 3000), &t(W800, W800, Fit::Inside, false));
        assert_eq!(g.size, (800, 600));
        let g = plan((3000, 4000), &t(W800, W800, Fit::Inside, false));
        assert_eq!(g.size, (600, 800));
    }

    #[test]
    fn cover_crops_the_centre_to_the_box() {
        let g = plan(
            (4000, 3000),
            &t(Some(Dim::Px(100)), Some(Dim::Px(100)), Fit::Cover, false),
        );
        assert_eq!(g.size, (100, 100));
        assert_eq!(
            g.crop,
            Rect {
                left: 500.0,
                top: 0.0,
                width: 3000.0,
                height: 3000.0
            }
        );
    }

    #[test]
    fn cover_without_upscale_crops_a_small_source_only_to_the_box() {
        // (source, box, output, crop left/top) as libvips `vipsthumbnail --crop` gives them.
        let cases = [
            ((320, 240), (300, 300), (300, 240), (10.0, 0.0)), // issue #13 item 14
            ((400, 300), (800, 800), (400, 300), (0.0, 0.0)),  // smaller both ways: untouched
            ((1000, 200), (300, 300), (300, 200), (350.0, 0.0)),
            ((200, 1000), (300, 300), (200, 300), (0.0, 350.0)),
            ((600, 240), (300, 300), (300, 240), (150.0, 0.0)),
        ];
        for (src, (bw, bh), want, (left, top)) in cases {
            let target = t(Some(Dim::Px(bw)), Some(Dim::Px(bh)), Fit::Cover, false);
            let g = plan(src, &target);
            assert_eq!(g.output_size(), want, "{src:?} into {bw}x{bh}");
            assert_eq!(
                g.crop,
                Rect {
                    left,
                    top,
                    width: f64::from(want.0),
                    height: f64::from(want.1)
                },
                "{src:?} into {bw}x{bh}: one source pixel per output pixel"
            );
        }
        // With --upscale the box is always filled.
        let g = plan(
            (320, 240),
            &t(Some(Dim::Px(300)), Some(Dim::Px(300)), Fit::Cover, true),
        );
        assert_eq!(g.output_size(), (300, 300));
        assert_eq!(g.crop.width, 240.0);
    }

    #[test]
    fn fill_stretches_and_contain_pads() {
        let box_ = (Some(Dim::Px(300)), Some(Dim::Px(100)));
        let g = plan((1000, 1000), &t(box_.0, box_.1, Fit::Fill, false));
        assert_eq!(g.output_size(), (300, 100));
        let g = plan((1000, 1000), &t(box_.0, box_.1, Fit::Contain, false));
        assert_eq!(g.size, (100, 100));
        assert_eq!(g.output_size(), (300, 100));
    }

    #[test]
    fn transposing_swaps_every_axis() {
        let g = plan(
            (4000, 3000),
            &t(Some(Dim::Px(100)), Some(Dim::Px(50)), Fit::Cover, false),
        );
        let tg = g.transposed();
        assert_eq!(tg.size, (50, 100));
        assert_eq!(tg.crop.width, g.crop.height);
        assert_eq!(tg.transposed(), g);
    }
}
