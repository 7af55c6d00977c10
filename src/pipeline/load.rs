//! The decode stage: a probed source becomes pixels, once, at the size its largest pending
//! output needs, converted to sRGB when asked, with the metadata its outputs inherit.
//!
//! Called by [`super::process`] after planning, only when some output is not up to date. The
//! memory the decoded image needs is reserved here (and held by [`Loaded`] until the job ends).
//! The pixels come from wherever the probe's decoder is (`isolate`); only the colour work after
//! it is done here.

use crate::budget::Reservation;
use crate::config::IccPolicy;
use crate::error::JobError;
use crate::format::Format;
use crate::geometry::Geometry;
use crate::job::ImageJob;
use crate::metadata::Metadata;
use crate::pool::{JobHandle, SpareCores};

use super::color::{self, LinearPixels};
use super::context::{Context, MakeScratch};
use super::decode::{self, DecodeScratch, Header};
use super::isolate::{self, DecoderProcess, Probed};
use super::pixels::Pixels;
use super::plan::{self, SizePlan};

/// At most this many extra threads decode one JPEG's restart-marker bands.
const MAX_DECODE_HELPERS: usize = 15;

/// A decoded source, ready to be resized.
pub(super) struct Loaded<'a> {
    /// The pixels as stored (not yet oriented), possibly shrunk by the JPEG decoder.
    pub(super) pixels: Pixels,
    /// `--linear`: the pixels in linear light.
    pub(super) linear: Option<LinearPixels>,
    /// EXIF, XMP and ICC of the source (the profile is sRGB's after an `--icc srgb` conversion).
    pub(super) meta: Metadata,
    /// Decoded size over stored size, per axis.
    pub(super) scale: (f64, f64),
    /// The image's share of the memory budget, held until the job ends.
    pub(super) memory: Reservation<'a>,
}

/// Decodes `probe` for the outputs still to be made in `plan`, and for the placeholders'
/// `sample` (displayed geometry) when they are to be computed.
#[allow(clippy::too_many_arguments)]
pub(super) fn load<'c>(
    job: &ImageJob,
    ctx: &'c Context,
    bytes: &[u8],
    probe: Probed<'_>,
    sizes: &[SizePlan],
    sample: Option<Geometry>,
    scratch: (
        &mut DecodeScratch,
        &mut Option<DecoderProcess>,
        &mut MakeScratch,
    ),
    handle: &JobHandle,
) -> Result<Loaded<'c>, JobError> {
    let settings = &ctx.settings;
    let (stored_w, stored_h) = (probe.header().width, probe.header().height);
    // A drawing is rendered at exactly the size its largest output needs (`Format::is_vector`).
    let margin = if job.input_format.is_vector() {
        Some(1.0)
    } else {
        settings.shrink.margin()
    };
    let min_size = min_decoded_size(margin, probe.header(), sizes, sample);
    // Waiting for memory is not the image's fault: its time limit is paused meanwhile and
    // starts afresh after.
    handle.pause_clock();
    let memory = ctx.budget.reserve(memory_estimate(
        probe.header(),
        probe.coefficient_bytes(bytes),
        job,
        (min_size, sizes),
        settings.linear,
        probe.is_remote(),
    ));
    handle.restart_clock();
    let mut probe = probe;
    let mut meta = probe.header_mut().take_metadata();
    // Spare cores can decode a large JPEG that has restart markers (see `restart`).
    let pixels = u64::from(stored_w) * u64::from(stored_h);
    let spare = if job.input_format == Format::Jpeg && pixels >= decode::PARALLEL_DECODE_PIXELS {
        handle.borrow_spare(MAX_DECODE_HELPERS)
    } else {
        SpareCores::none()
    };
    let (decode_scratch, process, make_scratch) = scratch;
    let mut decoded = isolate::decode(
        (bytes, job.input_format),
        probe,
        (min_size, spare.count() + 1, settings.fail_on),
        (decode_scratch, process),
        handle,
    )?;
    drop(spare);
    if settings.icc == IccPolicy::Srgb || settings.linear {
        // The colour engine and the linear-light path take 8-bit input.
        decoded = decoded.into_8bit();
    }
    if settings.icc == IccPolicy::Srgb {
        // Once, at the decoded size, before any resampling (so that linear light, when asked
        // for, is sRGB's).
        make_scratch
            .color
            .source_to_srgb(&mut decoded, &mut meta.icc)?;
    }
    let linear = settings.linear.then(|| color::srgb_to_linear(&decoded));
    Ok(Loaded {
        scale: (
            f64::from(decoded.width) / f64::from(stored_w),
            f64::from(decoded.height) / f64::from(stored_h),
        ),
        pixels: decoded,
        linear,
        meta,
        memory,
    })
}

/// The smallest size (stored orientation) the decoder may shrink to: the decoded crop of every
/// pending output must stay `k` times as large as its resampled size, so that Lanczos (not the
/// IDCT's block averaging) does the final part of the reduction. `None`: full size.
fn min_decoded_size(
    margin: Option<f64>,
    header: &Header,
    sizes: &[SizePlan],
    sample: Option<Geometry>,
) -> Option<(f64, f64)> {
    let k = margin?;
    let (stored_w, stored_h) = (f64::from(header.width), f64::from(header.height));
    sizes
        .iter()
        .filter(|p| !p.is_fresh())
        .map(|p| p.shown)
        .chain(sample)
        .map(|shown| {
            let stored = if header.is_transposed() {
                shown.transposed()
            } else {
                shown
            };
            let sx = stored.crop.width / stored_w;
            let sy = stored.crop.height / stored_h;
            (
                k * f64::from(stored.size.0) / sx,
                k * f64::from(stored.size.1) / sy,
            )
        })
        .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
}

/// Bytes an image holds at its peak: the input file, a progressive JPEG's coefficient buffer,
/// the decoded pixels (after any JPEG shrink-on-load, at the source's bytes per pixel) and the
/// resized outputs. A decoder process (`remote`) holds its own copy of the first three while
/// it sends the pixels.
fn memory_estimate(
    header: &Header,
    coefficients: u64,
    job: &ImageJob,
    (min_size, sizes): (Option<(f64, f64)>, &[SizePlan]),
    linear: bool,
    remote: bool,
) -> u64 {
    let shrink = if job.input_format == Format::Jpeg {
        decode::jpeg_shrink(header.width, header.height, min_size) as u64
    } else {
        1
    };
    let decoded = match min_size {
        // A drawing is rendered at the size asked for, which may be larger than its own.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some((w, h)) if job.input_format.is_vector() => (w.round() as u64) * (h.round() as u64),
        _ => u64::from(header.width).div_ceil(shrink) * u64::from(header.height).div_ceil(shrink),
    };
    let largest = plan::largest(sizes);
    let output = u64::from(largest.0) * u64::from(largest.1);
    let sizes = sizes.len().min(2) as u64;
    let bpp = u64::from(header.bytes_per_pixel.max(1));
    // `--linear` keeps a 16-bit copy of the decoded image (and 16-bit resized buffers).
    let linear = if linear { 2 * bpp.min(4) } else { 0 };
    let decoder = job.bytes + coefficients + bpp * decoded;
    let process = if remote { decoder } else { 0 };
    decoder + process + linear * decoded + (bpp + linear) * 2 * output * sizes
}
