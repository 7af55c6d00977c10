//! Resampling, and the other pixel operations after decoding: flatten, pad, orient.
//!
//! This is the only file that names `fast_image_resize` (SIMD convolution with runtime CPU
//! dispatch). Resampling is done on gamma-encoded sRGB values, as vipsthumbnail, ImageMagick's
//! default `-resize` and sharp do; alpha is premultiplied around the filter so transparent edges
//! get no dark halo.

use std::num::NonZeroU32;

use fast_image_resize::images::{Image, ImageRef, TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U16x2, U16x3, U16x4, U8x2, U8x3, U8x4, U16, U8};
use fast_image_resize::{
    FilterType, ImageView, ImageViewMut, MulDiv, PixelTrait, PixelType, ResizeAlg, ResizeError,
    ResizeOptions, Resizer,
};
use image::{DynamicImage, ImageBuffer};

use super::pixels::{Depth, Layout, Pixels};
use crate::config::Filter;
use crate::error::JobError;
use crate::geometry::Rect;

/// Resizer state a worker keeps between images (its scratch buffers).
#[derive(Default)]
pub struct ResizeScratch {
    resizer: Resizer,
    /// The image between the two passes of a split resize (see [`resize_ref_par`]), kept so a
    /// worker does not fault in fresh pages for every large image.
    between: Vec<u8>,
}

impl ResizeScratch {
    /// Frees a split-resize buffer left large by one big image, as the read buffer is.
    pub fn shrink(&mut self) {
        if self.between.capacity() > 64 << 20 {
            self.between = Vec::new();
        }
    }
}

fn pixel_type(layout: Layout, depth: Depth) -> PixelType {
    match (layout, depth) {
        (Layout::L, Depth::Eight) => PixelType::U8,
        (Layout::La, Depth::Eight) => PixelType::U8x2,
        (Layout::Rgb, Depth::Eight) => PixelType::U8x3,
        (Layout::Rgba, Depth::Eight) => PixelType::U8x4,
        (Layout::L, Depth::Sixteen) => PixelType::U16,
        (Layout::La, Depth::Sixteen) => PixelType::U16x2,
        (Layout::Rgb, Depth::Sixteen) => PixelType::U16x3,
        (Layout::Rgba, Depth::Sixteen) => PixelType::U16x4,
    }
}

fn algorithm(filter: Filter) -> ResizeAlg {
    match filter {
        Filter::Nearest => ResizeAlg::Nearest,
        Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        Filter::Mitchell => ResizeAlg::Convolution(FilterType::Mitchell),
        Filter::CatmullRom => ResizeAlg::Convolution(FilterType::CatmullRom),
        Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
        Filter::Box => ResizeAlg::Convolution(FilterType::Box),
    }
}

/// Resamples the `crop` region of a borrowed `src` to `size` (for several sizes from one decode).
pub fn resize_ref(
    src: &Pixels,
    crop: Rect,
    size: (u32, u32),
    filter: Filter,
    scratch: &mut ResizeScratch,
) -> Result<Pixels, JobError> {
    let pt = pixel_type(src.layout, src.depth);
    let src_img = ImageRef::new(src.width, src.height, &src.data, pt)
        .map_err(|e| JobError::Resize(e.to_string()))?;
    let mut dst = Image::new(size.0, size.1, pt);
    let options = ResizeOptions::new().resize_alg(algorithm(filter)).crop(
        crop.left,
        crop.top,
        crop.width,
        crop.height,
    );
    scratch
        .resizer
        .resize(&src_img, &mut dst, &options)
        .map_err(|e| JobError::Resize(e.to_string()))?;
    Ok(Pixels {
        data: dst.into_vec(),
        width: size.0,
        height: size.1,
        layout: src.layout,
        depth: src.depth,
    })
}

/// Smallest share of a pass worth a thread of its own (rows or columns).
const MIN_BAND: u32 = 64;

/// [`resize_ref`] on `threads` threads (counting the calling one), for an image with spare
/// cores, giving the one-thread result byte for byte (the unit tests check it).
///
/// A convolution resize is two one-dimensional passes. Splitting the *output* into row bands
/// would change each band's filter positions in the last bits of a float (and with a box filter,
/// which source pixels a window takes), so instead each pass is split along the axis it does not
/// filter: the vertical pass by columns, the horizontal pass by rows. Each part is then computed
/// with exactly the coefficients the whole-image call would use, written in place into the
/// intermediate or final image. The passes run in the order fast_image_resize uses (vertical
/// first for 8-bit samples), with alpha premultiplied around both, as it does.
pub fn resize_ref_par(
    src: &Pixels,
    crop: Rect,
    size: (u32, u32),
    filter: Filter,
    scratch: &mut ResizeScratch,
    threads: usize,
) -> Result<Pixels, JobError> {
    let convolution = matches!(algorithm(filter), ResizeAlg::Convolution(_));
    let parts = u32::try_from(threads)
        .unwrap_or(u32::MAX)
        .min(src.width.min(src.height).min(size.0).min(size.1).max(1) / MIN_BAND);
    if parts <= 1 || !convolution {
        return resize_ref(src, crop, size, filter, scratch);
    }
    let mut data =
        vec![0u8; size.0 as usize * size.1 as usize * src.layout.channels() * src.depth.bytes()];
    let job = Passes {
        src,
        crop,
        size,
        alg: algorithm(filter),
        parts: NonZeroU32::new(parts).expect("more than one"),
        alpha: src.layout.has_alpha(),
    };
    let done = match pixel_type(src.layout, src.depth) {
        PixelType::U8 => job.run::<U8>(&mut data, &mut scratch.between),
        PixelType::U8x2 => job.run::<U8x2>(&mut data, &mut scratch.between),
        PixelType::U8x3 => job.run::<U8x3>(&mut data, &mut scratch.between),
        PixelType::U8x4 => job.run::<U8x4>(&mut data, &mut scratch.between),
        PixelType::U16 => job.run::<U16>(&mut data, &mut scratch.between),
        PixelType::U16x2 => job.run::<U16x2>(&mut data, &mut scratch.between),
        PixelType::U16x3 => job.run::<U16x3>(&mut data, &mut scratch.between),
        PixelType::U16x4 => job.run::<U16x4>(&mut data, &mut scratch.between),
        _ => None,
    };
    match done {
        Some(Ok(())) => Ok(Pixels {
            data,
            width: size.0,
            height: size.1,
            layout: src.layout,
            depth: src.depth,
        }),
        Some(Err(e)) => Err(JobError::Resize(e)),
        // A buffer the typed views could not borrow (misaligned): do it on one thread.
        None => resize_ref(src, crop, size, filter, scratch),
    }
}

/// One split resize (see [`resize_ref_par`]).
struct Passes<'a> {
    src: &'a Pixels,
    crop: Rect,
    size: (u32, u32),
    alg: ResizeAlg,
    parts: NonZeroU32,
    alpha: bool,
}

impl Passes<'_> {
    /// Resizes into `out` (the final image's bytes). `None` if a buffer cannot be viewed as
    /// pixels of type `P`.
    fn run<P: PixelTrait>(
        &self,
        out: &mut [u8],
        between: &mut Vec<u8>,
    ) -> Option<Result<(), String>> {
        let (sw, sh) = (self.src.width, self.src.height);
        let (dw, dh) = self.size;
        let source = TypedImageRef::<P>::from_buffer(sw, sh, &self.src.data).ok()?;
        let mut premultiplied = TypedImage::<P>::new(0, 0);
        if self.alpha {
            premultiplied = TypedImage::<P>::new(sw, sh);
            if let Err(e) = MulDiv::default().multiply_alpha_typed(&source, &mut premultiplied) {
                return Some(Err(e.to_string()));
            }
        }
        let mut dst = TypedImage::<P>::from_buffer(dw, dh, out).ok()?;
        let Rect {
            left,
            top,
            width,
            height,
        } = self.crop;
        let result = if P::components_is_u8() {
            // Vertical pass by columns into a (source width × output height) image, then the
            // horizontal pass by rows into the output.
            let mut tall = reuse::<P>(between, sw, dh)?;
            let v = if self.alpha {
                self.columns(&premultiplied, &mut tall, top, height, false)
            } else {
                self.columns(&source, &mut tall, top, height, false)
            };
            v.and_then(|()| self.rows(&tall, &mut dst, left, width, self.alpha))
        } else {
            // Horizontal pass by rows into an (output width × source height) image, then the
            // vertical pass by columns into the output.
            let mut wide = reuse::<P>(between, dw, sh)?;
            let h = if self.alpha {
                self.rows(&premultiplied, &mut wide, left, width, false)
            } else {
                self.rows(&source, &mut wide, left, width, false)
            };
            h.and_then(|()| self.columns(&wide, &mut dst, top, height, self.alpha))
        };
        Some(result.map_err(|e| e.to_string()))
    }

    /// Resamples `src` rows `top..top + height` into `dst`'s rows, unchanged horizontally
    /// (`dst` is as wide as `src`), one column band per thread. `divide`: undo the alpha
    /// premultiplication in each band afterwards.
    fn columns<P: PixelTrait>(
        &self,
        src: &impl ImageView<Pixel = P>,
        dst: &mut impl ImageViewMut<Pixel = P>,
        top: f64,
        height: f64,
        divide: bool,
    ) -> Result<(), ResizeError> {
        let width = NonZeroU32::new(dst.width()).expect("images are at least 1 pixel wide");
        let parts = dst
            .split_by_width_mut(0, width, self.parts.min(width))
            .expect("no more parts than columns");
        let crop =
            |x: u32, part: &_| (f64::from(x), top, f64::from(ImageView::width(part)), height);
        self.each_part(src, parts, |part| part.width(), crop, divide)
    }

    /// Resamples `src` columns `left..left + width` into `dst`'s columns, unchanged vertically
    /// (`dst` is as tall as `src`), one row band per thread.
    fn rows<P: PixelTrait>(
        &self,
        src: &impl ImageView<Pixel = P>,
        dst: &mut impl ImageViewMut<Pixel = P>,
        left: f64,
        width: f64,
        divide: bool,
    ) -> Result<(), ResizeError> {
        let height = NonZeroU32::new(dst.height()).expect("images are at least 1 pixel tall");
        let parts = dst
            .split_by_height_mut(0, height, self.parts.min(height))
            .expect("no more parts than rows");
        let crop = |y: u32, part: &_| {
            (
                left,
                f64::from(y),
                width,
                f64::from(ImageView::height(part)),
            )
        };
        self.each_part(src, parts, |part| part.height(), crop, divide)
    }

    /// Resamples `src` into each of `parts` on its own thread. A part's source rectangle
    /// (left, top, width, height) is `crop(offset, part)`, where `offset` is the sum of the
    /// `extent`s of the parts before it along the split axis.
    fn each_part<P: PixelTrait, V: ImageViewMut<Pixel = P>>(
        &self,
        src: &impl ImageView<Pixel = P>,
        parts: Vec<V>,
        extent: impl Fn(&V) -> u32,
        crop: impl Fn(u32, &V) -> (f64, f64, f64, f64),
        divide: bool,
    ) -> Result<(), ResizeError> {
        let mut offset = 0;
        let jobs: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let (left, top, width, height) = crop(offset, &part);
                offset += extent(&part);
                let options = ResizeOptions::new()
                    .resize_alg(self.alg)
                    .use_alpha(false)
                    .crop(left, top, width, height);
                (part, options)
            })
            .collect();
        in_parallel(jobs, |(mut part, options)| {
            Resizer::new().resize_typed(src, &mut part, &options)?;
            if divide {
                // Only alpha layouts ask for it, and MulDiv supports every one of them.
                let _ = MulDiv::default().divide_alpha_inplace_typed(&mut part);
            }
            Ok(())
        })
    }
}

/// A `width`×`height` image of `P` over `buffer`, grown as needed (`None` if misaligned).
fn reuse<P: PixelTrait>(
    buffer: &mut Vec<u8>,
    width: u32,
    height: u32,
) -> Option<TypedImage<'_, P>> {
    let bytes = width as usize * height as usize * std::mem::size_of::<P>();
    if buffer.len() < bytes {
        buffer.resize(bytes, 0);
    }
    TypedImage::<P>::from_buffer(width, height, &mut buffer[..bytes]).ok()
}

/// Runs `work` on every item, each on its own thread (the first on this one).
fn in_parallel<T: Send>(
    items: Vec<T>,
    work: impl Fn(T) -> Result<(), ResizeError> + Sync,
) -> Result<(), ResizeError> {
    std::thread::scope(|scope| {
        let work = &work;
        let mut items = items.into_iter();
        let first = items.next();
        let helpers: Vec<_> = items.map(|item| scope.spawn(move || work(item))).collect();
        let mut result = first.map_or(Ok(()), work);
        for h in helpers {
            // A panic in a helper is the job's panic: the pool reports it for this file.
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            result = result.and(r);
        }
        result
    })
}

/// Resamples the `crop` region of `src` to `size`. Returns `src` itself when nothing changes.
pub fn resize(
    src: Pixels,
    crop: Rect,
    size: (u32, u32),
    filter: Filter,
    scratch: &mut ResizeScratch,
) -> Result<Pixels, JobError> {
    let whole = crop.left == 0.0
        && crop.top == 0.0
        && crop.width == f64::from(src.width)
        && crop.height == f64::from(src.height);
    if whole && size == (src.width, src.height) {
        return Ok(src);
    }
    resize_ref(&src, crop, size, filter, scratch)
}

/// Composites an image with alpha onto an opaque background colour (for formats without alpha).
pub fn flatten(px: Pixels, background: [u8; 3]) -> Pixels {
    // Only 8-bit formats lack alpha (JPEG), so flattening happens at 8 bits.
    let px = px.into_8bit();
    let blend = |c: u8, bg: u8, a: u8| {
        let (c, bg, a) = (u32::from(c), u32::from(bg), u32::from(a));
        u8::try_from((c * a + bg * (255 - a) + 127) / 255).expect("≤ 255")
    };
    match px.layout {
        Layout::Rgba => {
            let data = px
                .data
                .chunks_exact(4)
                .flat_map(|p| {
                    [
                        blend(p[0], background[0], p[3]),
                        blend(p[1], background[1], p[3]),
                        blend(p[2], background[2], p[3]),
                    ]
                })
                .collect();
            Pixels {
                data,
                layout: Layout::Rgb,
                ..px
            }
        }
        Layout::La => {
            let grey = luma(background);
            let data = px
                .data
                .chunks_exact(2)
                .map(|p| blend(p[0], grey, p[1]))
                .collect();
            Pixels {
                data,
                layout: Layout::L,
                ..px
            }
        }
        Layout::L | Layout::Rgb => px,
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn luma([r, g, b]: [u8; 3]) -> u8 {
    (0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b)).round() as u8
}

/// Centres `px` on a `canvas`-sized image filled with `background` (transparent when the image
/// has alpha), for `--fit contain`.
pub fn pad(px: Pixels, canvas: (u32, u32), background: [u8; 3]) -> Pixels {
    if canvas == (px.width, px.height) {
        return px;
    }
    let ch = px.layout.channels();
    let fill8: Vec<u8> = match px.layout {
        Layout::L => vec![luma(background)],
        Layout::La => vec![luma(background), 0],
        Layout::Rgb => background.to_vec(),
        Layout::Rgba => vec![background[0], background[1], background[2], 0],
    };
    // A pixel's bytes: samples widened to 16 bits (v × 257) for 16-bit images.
    let (fill, bps): (Vec<u8>, usize) = match px.depth {
        Depth::Eight => (fill8, 1),
        Depth::Sixteen => (
            fill8
                .iter()
                .flat_map(|&v| (u16::from(v) * 257).to_ne_bytes())
                .collect(),
            2,
        ),
    };
    let pixel = ch * bps;
    let (cw, chh) = (canvas.0 as usize, canvas.1 as usize);
    let mut data: Vec<u8> = fill
        .iter()
        .copied()
        .cycle()
        .take(cw * chh * pixel)
        .collect();
    let left = (canvas.0 - px.width) as usize / 2;
    let top = (canvas.1 - px.height) as usize / 2;
    let row = px.width as usize * pixel;
    for (y, src_row) in px.data.chunks_exact(row).enumerate() {
        let start = ((top + y) * cw + left) * pixel;
        data[start..start + row].copy_from_slice(src_row);
    }
    Pixels {
        data,
        width: canvas.0,
        height: canvas.1,
        layout: px.layout,
        depth: px.depth,
    }
}

/// Applies an EXIF orientation (1..=8) so the pixels are stored upright.
pub fn orient(px: Pixels, orientation: u8) -> Pixels {
    let Some(o) = image::metadata::Orientation::from_exif(orientation) else {
        return px;
    };
    if o == image::metadata::Orientation::NoTransforms {
        return px;
    }
    let (w, h, layout, depth) = (px.width, px.height, px.layout, px.depth);
    if depth == Depth::Sixteen {
        let samples: Vec<u16> = px
            .data
            .chunks_exact(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        let mut img = match layout {
            Layout::L => {
                DynamicImage::ImageLuma16(ImageBuffer::from_raw(w, h, samples).expect("sized"))
            }
            Layout::La => {
                DynamicImage::ImageLumaA16(ImageBuffer::from_raw(w, h, samples).expect("sized"))
            }
            Layout::Rgb => {
                DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, samples).expect("sized"))
            }
            Layout::Rgba => {
                DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, samples).expect("sized"))
            }
        };
        img.apply_orientation(o);
        let (width, height) = (img.width(), img.height());
        // Native-endian bytes, as they came in.
        return Pixels {
            data: img.into_bytes(),
            width,
            height,
            layout,
            depth,
        };
    }
    let mut img = match layout {
        Layout::L => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, px.data).expect("sized")),
        Layout::La => {
            DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, px.data).expect("sized"))
        }
        Layout::Rgb => {
            DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, px.data).expect("sized"))
        }
        Layout::Rgba => {
            DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, px.data).expect("sized"))
        }
    };
    img.apply_orientation(o);
    let (width, height) = (img.width(), img.height());
    Pixels {
        data: img.into_bytes(),
        width,
        height,
        layout,
        depth: Depth::Eight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Pixels {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect();
        Pixels {
            data,
            width,
            height,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        }
    }

    /// A noisy image: every pixel differs, so any change in filter weights shows.
    fn noise(width: u32, height: u32, layout: Layout, depth: Depth) -> Pixels {
        let n = width as usize * height as usize * layout.channels() * depth.bytes();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let data = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[3]
            })
            .collect();
        Pixels {
            data,
            width,
            height,
            layout,
            depth,
        }
    }

    #[test]
    fn banded_resize_equals_the_one_thread_resize_byte_for_byte() {
        let cases = [
            (Layout::Rgb, Depth::Eight, (1013, 757), (400, 299)),
            (Layout::Rgba, Depth::Eight, (900, 1300), (333, 481)),
            (Layout::L, Depth::Eight, (640, 640), (211, 211)),
            (Layout::Rgb, Depth::Sixteen, (700, 520), (301, 223)),
            // Upscaling and a non-integer crop.
            (Layout::Rgb, Depth::Eight, (120, 90), (500, 377)),
        ];
        for (layout, depth, (w, h), size) in cases {
            let src = noise(w, h, layout, depth);
            for crop in [
                Rect {
                    left: 0.0,
                    top: 0.0,
                    width: f64::from(w),
                    height: f64::from(h),
                },
                Rect {
                    left: 3.25,
                    top: 7.5,
                    width: f64::from(w) * 0.8,
                    height: f64::from(h) * 0.7,
                },
            ] {
                for filter in [Filter::Lanczos3, Filter::Mitchell, Filter::Box] {
                    let one = resize_ref(&src, crop, size, filter, &mut ResizeScratch::default())
                        .unwrap();
                    for threads in [2, 3, 4] {
                        let par = resize_ref_par(
                            &src,
                            crop,
                            size,
                            filter,
                            &mut ResizeScratch::default(),
                            threads,
                        )
                        .unwrap();
                        let differing = one.data.iter().zip(&par.data).filter(|(a, b)| a != b);
                        assert_eq!(
                            differing.count(),
                            0,
                            "{layout:?} {depth:?} {w}x{h}->{size:?} {crop:?} {filter:?} x{threads}"
                        );
                        assert_eq!((par.width, par.height), size);
                    }
                }
            }
        }
    }

    #[test]
    fn downscale_of_a_flat_colour_stays_that_colour() {
        let src = rgb(64, 48, |_, _| [200, 100, 50]);
        let out = resize(
            src,
            Rect {
                left: 0.0,
                top: 0.0,
                width: 64.0,
                height: 48.0,
            },
            (16, 12),
            Filter::Lanczos3,
            &mut ResizeScratch::default(),
        )
        .unwrap();
        assert_eq!((out.width, out.height), (16, 12));
        assert!(out.data.chunks_exact(3).all(|p| p == [200, 100, 50]));
    }

    #[test]
    fn transparent_pixels_do_not_darken_edges() {
        // Left half opaque white, right half fully transparent black.
        let data = (0..8 * 8)
            .flat_map(|i| {
                if i % 8 < 4 {
                    [255, 255, 255, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        let src = Pixels {
            data,
            width: 8,
            height: 8,
            layout: Layout::Rgba,
            depth: Depth::Eight,
        };
        let out = resize(
            src,
            Rect {
                left: 0.0,
                top: 0.0,
                width: 8.0,
                height: 8.0,
            },
            (4, 4),
            Filter::Lanczos3,
            &mut ResizeScratch::default(),
        )
        .unwrap();
        for p in out.data.chunks_exact(4).filter(|p| p[3] > 16) {
            assert!(
                p[0] > 240,
                "premultiplied resize keeps colour of visible pixels: {p:?}"
            );
        }
    }

    #[test]
    fn flatten_blends_onto_the_background() {
        let px = Pixels {
            data: vec![0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 128],
            width: 3,
            height: 1,
            layout: Layout::Rgba,
            depth: Depth::Eight,
        };
        let out = flatten(px, [255, 255, 255]);
        assert_eq!(out.layout, Layout::Rgb);
        assert_eq!(out.data, vec![255, 255, 255, 0, 0, 0, 255, 127, 127]);
    }

    #[test]
    fn orientation_six_rotates_clockwise() {
        // 2x1: red, blue → rotated 90° clockwise becomes 1x2: red on top, blue below.
        let px = Pixels {
            data: vec![255, 0, 0, 0, 0, 255],
            width: 2,
            height: 1,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        };
        let out = orient(px, 6);
        assert_eq!((out.width, out.height), (1, 2));
        assert_eq!(out.data, vec![255, 0, 0, 0, 0, 255]);
        let px = Pixels {
            data: vec![255, 0, 0, 0, 0, 255],
            width: 2,
            height: 1,
            layout: Layout::Rgb,
            depth: Depth::Eight,
        };
        let out = orient(px, 8);
        assert_eq!(out.data, vec![0, 0, 255, 255, 0, 0]);
    }

    #[test]
    fn pad_centres_the_image() {
        let px = Pixels {
            data: vec![9],
            width: 1,
            height: 1,
            layout: Layout::L,
            depth: Depth::Eight,
        };
        let out = pad(px, (3, 1), [0, 0, 0]);
        assert_eq!(out.data, vec![0, 9, 0]);
    }
}
