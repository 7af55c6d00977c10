//! The make stage: decoded pixels become every output still to be made, each resampled,
//! encoded and written atomically.
//!
//! Called by [`super::process`] with the decoded source. On a spare core the outputs of one
//! image are made at once, or one large resize is split; the bytes never depend on how many
//! threads made them (`tests/parallel.rs`).

use std::time::Instant;

use crate::atomic::{write_atomic, WriteTarget};
use crate::config::{IccPolicy, Settings};
use crate::error::JobError;
use crate::format::Format;
use crate::geometry;
use crate::job::{ImageJob, Stages};
use crate::metadata::{self, Metadata};
use crate::pool::JobHandle;

use super::animation;
use super::color;
use super::context::{Context, MakeScratch};
use super::encode;
use super::pixels::Pixels;
use super::plan::{self, Finished, PlannedOutput, SizePlan, SourcePlan};
use super::resize;
use super::tune;

/// Decoded images at least this large get their resize split across spare cores.
const PARALLEL_RESIZE_PIXELS: u64 = 4_000_000;
/// At most this many extra threads split one resize (beyond that, thread starts and the
/// stitching copies outweigh the gain on the sizes presize sees).
const MAX_RESIZE_HELPERS: usize = 7;

/// Writes the outputs of one source.
pub(super) struct Writer<'a> {
    pub(super) ctx: &'a Context,
    pub(super) job: &'a ImageJob,
    pub(super) handle: &'a JobHandle,
    /// `--keep-mtime`: the source's modification time, read before anything is written (in
    /// place, the first write replaces the source).
    pub(super) mtime: Option<std::time::SystemTime>,
}

impl Writer<'_> {
    /// Writes one encoded output (unless discarding); refuses if the watchdog gave up on the
    /// job, which has then already been reported as timed out.
    fn write(
        &self,
        out: &PlannedOutput,
        encoded: &[u8],
        stages: &mut Stages,
    ) -> Result<(), JobError> {
        let ctx = self.ctx;
        if ctx.mode.discard {
            return Ok(());
        }
        if self.handle.is_abandoned() {
            return Err(JobError::Abandoned);
        }
        let t = Instant::now();
        let abandoned = || self.handle.is_abandoned();
        let target = WriteTarget {
            dst: &out.dst,
            replace: out.existed,
            confine_to: ctx.out_root.as_deref(),
            keep_permissions_of: ctx.mode.in_place.then_some(self.job.src.as_path()),
            abandoned: Some(&abandoned),
            sync: ctx.mode.sync,
            mtime: self.mtime,
        };
        write_atomic(&target, encoded)?;
        stages.write += t.elapsed();
        Ok(())
    }
}

/// Makes the outputs of one decoded source.
pub(super) struct Maker<'a> {
    pub(super) writer: &'a Writer<'a>,
    pub(super) render: Render<'a>,
    /// The source's metadata, adapted for each output.
    pub(super) meta: &'a Metadata,
}

impl Maker<'_> {
    /// Makes every output of `plan` that is not up to date from `pixels` (the decoded image,
    /// given up to the last size), on spare cores when there are any.
    pub(super) fn make(
        &self,
        pixels: Pixels,
        sizes: Vec<SizePlan>,
        scratch: &mut MakeScratch,
        stages: &mut Stages,
        finished: &mut Finished,
    ) -> Result<(), JobError> {
        // Cores of workers that have run out of images (the tail of a run, or a folder with
        // fewer images than workers): several outputs are made at once, or one resize split.
        let pending: usize = sizes
            .iter()
            .map(|p| p.outputs.iter().filter(|o| o.fresh.is_none()).count())
            .sum();
        let big = u64::from(pixels.width) * u64::from(pixels.height) >= PARALLEL_RESIZE_PIXELS;
        let spare = self.writer.handle.borrow_spare(if pending > 1 {
            pending - 1
        } else if big {
            MAX_RESIZE_HELPERS
        } else {
            0
        });
        if spare.count() > 0 {
            let threads = spare.count() + 1;
            return make_in_parallel(self, &pixels, sizes, scratch, threads, stages, finished);
        }
        drop(spare);
        self.make_serially(pixels, sizes, scratch, stages, finished)
    }

    /// One size after the other on this thread; the last size may consume the decoded image
    /// (no copy when nothing changes).
    fn make_serially(
        &self,
        pixels: Pixels,
        sizes: Vec<SizePlan>,
        scratch: &mut MakeScratch,
        stages: &mut Stages,
        finished: &mut Finished,
    ) -> Result<(), JobError> {
        let mut decoded = Some(pixels);
        let count = sizes.len();
        for (i, plan) in sizes.into_iter().enumerate() {
            let size = plan.shown.output_size();
            if plan.is_fresh() {
                finished.keep_all(plan);
                continue;
            }
            let t = Instant::now();
            let src = if i + 1 == count {
                Decoded::Owned(decoded.take().expect("kept until the last size"))
            } else {
                Decoded::Shared(decoded.as_ref().expect("kept until the last size"))
            };
            let px = self.render.size(&plan.shown, src, &mut scratch.resize, 1)?;
            stages.resize += t.elapsed();

            let out_meta = self.render.metadata(self.meta, &plan.shown);
            let mut flat: Option<Pixels> = None;
            for out in plan.outputs {
                if out.fresh.is_some() {
                    finished.keep(out, size);
                    continue;
                }
                let t = Instant::now();
                let settings = self.render.settings;
                let encoded = encode_output(&px, &mut flat, &out, settings, &out_meta, scratch)?;
                stages.encode += t.elapsed();
                self.writer.write(&out, &encoded.bytes, stages)?;
                finished.note(&out, encoded.note);
                finished.wrote(out, size, encoded.bytes.len() as u64, encoded.saved);
            }
        }
        Ok(())
    }
}

/// `--animated`: each GIF or WebP output of an animated input is resized frame by frame, before
/// any still decode; the outputs it makes leave `plan` (the others, JPEG or PNG say, are made
/// from the first frame as usual). Returns false when the input is not animated.
pub(super) fn animate(
    writer: &Writer<'_>,
    bytes: &[u8],
    plan: &mut SourcePlan,
    scratch: &mut MakeScratch,
    stages: &mut Stages,
    finished: &mut Finished,
) -> Result<(), JobError> {
    let (ctx, job) = (writer.ctx, writer.job);
    let Some(info) = animation::inspect(bytes, job.input_format).filter(|a| a.frames > 1) else {
        return Ok(());
    };
    let largest = plan::largest(&plan.sizes);
    let largest = u64::from(largest.0) * u64::from(largest.1);
    let canvas = u64::from(info.canvas.0) * u64::from(info.canvas.1);
    writer.handle.pause_clock();
    let _memory = ctx
        .budget
        .reserve(job.bytes + 4 * (canvas + largest * u64::from(info.frames)));
    writer.handle.restart_clock();
    for size in &mut plan.sizes {
        let dims = size.shown.output_size();
        let mut still = Vec::new();
        for out in std::mem::take(&mut size.outputs) {
            if out.fresh.is_some() || !animation::can_animate(out.format) {
                still.push(out);
                continue;
            }
            let t = Instant::now();
            let encoded = animation::resize_animation(
                bytes,
                job.input_format,
                out.format,
                &size.shown,
                &ctx.settings,
                &mut scratch.resize,
            )?;
            let Some(encoded) = encoded else {
                still.push(out);
                continue;
            };
            // Decode, resize and encode are interleaved frame by frame: counted as encoding.
            stages.encode += t.elapsed();
            writer.write(&out, &encoded, stages)?;
            finished.wrote(out, dims, encoded.len() as u64, 0);
        }
        size.outputs = still;
    }
    Ok(())
}

/// The decoded image, lent to each size or, for the last one, given up.
pub(super) enum Decoded<'a> {
    Shared(&'a Pixels),
    Owned(Pixels),
}

/// What turns the decoded image into each output size.
pub(super) struct Render<'a> {
    pub(super) settings: &'a Settings,
    /// `--linear`: the decoded image in linear light.
    pub(super) linear: Option<&'a color::LinearPixels>,
    /// EXIF orientation to apply after resampling.
    pub(super) orientation: u8,
    /// Decoded size over stored size (the JPEG decoder may have shrunk the image).
    pub(super) scale: (f64, f64),
    /// The source's displayed (oriented) size, which the geometry of every size is in.
    pub(super) shown_size: (u32, u32),
}

impl Render<'_> {
    /// Resamples, pads and orients the decoded image `src` to the size `shown`, on `threads`
    /// threads. An owned `src` that needs no resampling is passed through without a copy.
    pub(super) fn size(
        &self,
        shown: &geometry::Geometry,
        src: Decoded<'_>,
        scratch: &mut resize::ResizeScratch,
        threads: usize,
    ) -> Result<Pixels, JobError> {
        let settings = self.settings;
        let stored = shown.stored(self.shown_size, self.orientation);
        let (fx, fy) = self.scale;
        let (width, height) = match &src {
            Decoded::Shared(px) => (px.width, px.height),
            Decoded::Owned(px) => (px.width, px.height),
        };
        let crop = geometry::Rect {
            left: stored.crop.left * fx,
            top: stored.crop.top * fy,
            width: (stored.crop.width * fx).min(f64::from(width)),
            height: (stored.crop.height * fy).min(f64::from(height)),
        };
        let mut px = match (self.linear, src) {
            // `--linear`: resample light, not gamma-encoded values (Lanczos3, 16 bits).
            (Some(lin), _) => color::linear_to_srgb(&color::resize_linear(lin, crop, stored.size)?),
            (None, Decoded::Owned(src)) if threads <= 1 => {
                resize::resize(src, crop, stored.size, settings.filter, scratch)?
            }
            (None, Decoded::Owned(src)) => {
                resize::resize_ref_par(&src, crop, stored.size, settings.filter, scratch, threads)?
            }
            (None, Decoded::Shared(src)) => {
                resize::resize_ref_par(src, crop, stored.size, settings.filter, scratch, threads)?
            }
        };
        if let Some(canvas) = stored.canvas {
            px = resize::pad(px, canvas, settings.background);
        }
        let px = resize::orient(px, self.orientation);
        debug_assert_eq!((px.width, px.height), shown.output_size());
        Ok(px)
    }

    /// The metadata written with an output of geometry `shown`.
    fn metadata(&self, source: &Metadata, shown: &geometry::Geometry) -> Metadata {
        let size = shown.output_size();
        let mut meta = metadata::for_output(source.clone(), self.settings.metadata, size.0, size.1);
        metadata::apply_dpi(&mut meta, self.settings.dpi, shown.scale());
        if self.settings.icc == IccPolicy::Strip {
            meta.icc = None;
        }
        meta
    }
}

/// One encoded output.
struct Encoded {
    bytes: Vec<u8>,
    /// Bytes the lossless PNG recompression took off (`--effort png`); 0 for other formats.
    saved: u64,
    /// Why the output does not meet `--max-bytes`, when it does not.
    note: Option<String>,
}

/// Encodes one output of the resized `px`: flattened onto the background for a format without
/// alpha (kept in `flat` for the next such format), converted to sRGB for AVIF, at the quality
/// `--quality auto` / `--max-bytes` choose (`tune.rs`), recompressed losslessly when PNG.
fn encode_output(
    px: &Pixels,
    flat: &mut Option<Pixels>,
    out: &PlannedOutput,
    settings: &Settings,
    meta: &Metadata,
    scratch: &mut MakeScratch,
) -> Result<Encoded, JobError> {
    let pixels = if !out.format.has_alpha() && px.layout.has_alpha() {
        flat.get_or_insert_with(|| resize::flatten(px.clone(), settings.background))
    } else {
        px
    };
    // AVIF outputs carry no profile (their colour box says sRGB): convert a wide-gamut source
    // rather than let it show dull or shifted colours, and fail the output, saying why, when
    // the profile cannot be converted: its pixels under an sRGB label would be silently wrong.
    let converted;
    let pixels = match meta.icc.as_deref() {
        Some(profile) if out.format == Format::Avif && !color::is_srgb(profile) => {
            let mut copy = pixels.clone().into_8bit();
            scratch.color.to_srgb(&mut copy, profile).map_err(|e| {
                JobError::Unsupported(format!(
                    "AVIF output: {}; AVIF here cannot embed the profile, so the colours would                      be wrong (WebP, JPEG, PNG and TIFF embed it)",
                    e.to_string().trim_start_matches("unsupported: ")
                ))
            })?;
            converted = copy;
            &converted
        }
        _ => pixels,
    };
    let tune::Tuned { bytes, note } =
        tune::encode_tuned(pixels, out.format, settings, meta, &mut scratch.encode)?;
    if out.format != Format::Png {
        return Ok(Encoded {
            bytes,
            saved: 0,
            note,
        });
    }
    let before = bytes.len() as u64;
    let bytes = encode::optimise_png(bytes, settings.effort.png);
    let saved = before - bytes.len() as u64;
    Ok(Encoded { bytes, saved, note })
}

/// The sizes with something to make, and each output to make with the index of its size;
/// outputs already up to date go straight to `finished`.
fn pending_work(
    plans: Vec<SizePlan>,
    finished: &mut Finished,
) -> (Vec<geometry::Geometry>, Vec<(usize, PlannedOutput)>) {
    let mut sizes = Vec::new();
    let mut work = Vec::new();
    for plan in plans {
        if plan.is_fresh() {
            finished.keep_all(plan);
            continue;
        }
        let index = sizes.len();
        sizes.push(plan.shown);
        for out in plan.outputs {
            if out.fresh.is_some() {
                finished.keep(out, plan.shown.output_size());
            } else {
                work.push((index, out));
            }
        }
    }
    (sizes, work)
}

/// The order in which threads take `work`: longest first (the classic rule for keeping threads
/// evenly busy), by a rough cost: output pixels times how slow the format's encoder is.
/// Distinct sizes then start on distinct threads instead of one thread waiting for another's
/// resample of the same size.
fn longest_first(sizes: &[geometry::Geometry], work: &[(usize, PlannedOutput)]) -> Vec<usize> {
    let cost = |(size, out): &(usize, PlannedOutput)| {
        let (w, h) = sizes[*size].output_size();
        let encoder = match out.format {
            Format::Avif => 50,
            Format::Webp => 8,
            Format::Png | Format::Tiff => 3,
            _ => 1,
        };
        u64::from(w) * u64::from(h) * encoder
    };
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&work[i])));
    order
}

/// One output made on some thread: its size in bytes and its warning, or the error.
/// Per output: its bytes, what the PNG recompression saved, and a `--max-bytes` note, once made.
type OutputResult = Result<(u64, u64, Option<String>), JobError>;

/// Makes every pending output of one image on `threads` threads (this one and spare cores):
/// each thread takes the next (size, format) output; the first to need a size resamples it
/// (with all threads when there is a single size) and the others wait for that copy. Outputs
/// are recorded in plan order, so the manifest and report do not depend on the timing.
fn make_in_parallel(
    maker: &Maker<'_>,
    decoded: &Pixels,
    plans: Vec<SizePlan>,
    scratch: &mut MakeScratch,
    threads: usize,
    stages: &mut Stages,
    finished: &mut Finished,
) -> Result<(), JobError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    let render = &maker.render;
    let (sizes, work) = pending_work(plans, finished);
    let resized: Vec<OnceLock<Result<Pixels, String>>> =
        sizes.iter().map(|_| OnceLock::new()).collect();
    let resize_threads = (threads / sizes.len()).max(1);
    let order = longest_first(&sizes, &work);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<OutputResult>>> = Mutex::new(work.iter().map(|_| None).collect());
    // One thread's share: take outputs until none is left; returns the time it spent.
    let run = |scratch: &mut MakeScratch| -> Stages {
        let mut spent = Stages::default();
        loop {
            let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return spent;
            };
            let (size_index, out) = &work[i];
            let shown = &sizes[*size_index];
            let px = resized[*size_index].get_or_init(|| {
                let t = Instant::now();
                let px = render
                    .size(
                        shown,
                        Decoded::Shared(decoded),
                        &mut scratch.resize,
                        resize_threads,
                    )
                    .map_err(|e| e.to_string());
                spent.resize += t.elapsed();
                px
            });
            let result = match px {
                Err(e) => Err(JobError::Resize(e.clone())),
                Ok(px) => {
                    let t = Instant::now();
                    let meta = render.metadata(maker.meta, shown);
                    let encoded =
                        encode_output(px, &mut None, out, render.settings, &meta, scratch);
                    spent.encode += t.elapsed();
                    encoded.and_then(|encoded| {
                        maker.writer.write(out, &encoded.bytes, &mut spent)?;
                        Ok((encoded.bytes.len() as u64, encoded.saved, encoded.note))
                    })
                }
            };
            done.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(result);
        }
    };
    let spent: Vec<Stages> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(work.len().max(1)))
            .map(|_| scope.spawn(|| run(&mut MakeScratch::default())))
            .collect();
        let mut spent = vec![run(scratch)];
        for h in helpers {
            // A helper's panic is this job's panic: the pool turns it into a failure.
            spent.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        spent
    });
    for s in spent {
        *stages += s;
    }
    let results = done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut first_error = None;
    for ((size_index, out), result) in work.into_iter().zip(results) {
        match result.expect("every output was taken by a thread") {
            Ok((bytes, saved, note)) => {
                finished.note(&out, note);
                finished.wrote(out, sizes[size_index].output_size(), bytes, saved);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
