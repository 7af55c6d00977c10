//! The per-image pipeline a worker runs: read → decode → resize → encode → write.
//!
//! [`process`] never panics on bad input and never returns early without a [`JobResult`]: every
//! job ends as written, skipped or failed, with the time spent in each stage.

pub(crate) mod animation;
pub(crate) mod avif;
pub mod color;
mod context;
mod crop;
pub mod decode;
pub mod encode;
#[cfg(feature = "heif")]
pub(crate) mod heif;
mod ico;
pub(crate) mod isolate;
mod load;
mod make;
pub mod pixels;
mod placeholder;
mod plan;
pub mod resize;
pub mod restart;
mod scans;
mod score;
mod svg;
mod tiff;
mod tune;

use std::fs;
use std::io::Read;
use std::time::Instant;

use crate::error::JobError;
use crate::job::{ImageJob, JobResult, Outcome, SkipReason, Stages};
use crate::manifest::{self, SourceEntry};
use crate::pool::JobHandle;
pub use context::{Context, Mode, Scratch};
use load::Loaded;
use make::{Maker, Render, Writer};
use plan::{Finished, Planned, SizePlan, SourceFacts};

/// Processes one job completely: read → probe → plan outputs → (all up to date? done) →
/// decode → make outputs. Never panics on bad data; errors come back as data. `handle` is
/// what the job may ask of the pool (see [`JobHandle`]).
pub fn process(
    job: &ImageJob,
    ctx: &Context,
    scratch: &mut Scratch,
    handle: &JobHandle,
) -> JobResult {
    let mut stages = Stages::default();
    let mut input_size = None;
    let mut warnings = Vec::new();
    let done = run_stages(
        job,
        ctx,
        scratch,
        handle,
        &mut stages,
        &mut input_size,
        &mut warnings,
    );
    let damage = scratch.decode.take_damage();
    // Keep the read buffer from pinning a huge allocation after one big file.
    if scratch.input.capacity() > 64 << 20 {
        scratch.input = Vec::new();
    }
    scratch.make.resize.shrink();
    let (outcome, manifest) = match done {
        Ok((outcome, entry)) => (Ok(outcome), entry),
        Err(e) => (Err(e), None),
    };
    JobResult {
        src: job.src.clone(),
        rel: manifest::rel_key(&job.rel),
        bytes_in: job.bytes,
        pixels_in: input_size.map_or(0, |(w, h)| u64::from(w) * u64::from(h)),
        input_size,
        warning: outcome
            .is_ok()
            .then(|| {
                damage
                    .into_iter()
                    .chain(warnings)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|w| !w.is_empty()),
        outcome,
        stages,
        manifest,
        group: job.group,
    }
}

/// The stages in order, each a function of its own; returns how the job ended and, with
/// `--manifest`, the source's new entry. Each stage's time goes to `stages` as it ends, so an
/// early end needs no bookkeeping; warnings about written outputs go to `warnings`.
fn run_stages(
    job: &ImageJob,
    ctx: &Context,
    scratch: &mut Scratch,
    handle: &JobHandle,
    stages: &mut Stages,
    input_size: &mut Option<(u32, u32)>,
    warnings: &mut Vec<String>,
) -> Result<(Outcome, Option<SourceEntry>), JobError> {
    let t = Instant::now();
    let content_hash = read(job, ctx, &mut scratch.input);
    stages.read = t.elapsed();
    let content_hash = content_hash?;
    let bytes = &scratch.input[..];

    let t = Instant::now();
    let decoders = (&mut scratch.decode, &mut scratch.decoder);
    let probed = probe_and_plan(job, ctx, bytes, content_hash, decoders, handle);
    stages.decode = t.elapsed();
    let (probe, planned) = probed?;
    let header = probe.header();
    let orientation = header.orientation;
    let shown_size = header.displayed_size();
    *input_size = Some(shown_size);
    let mut plan = match planned {
        Planned::AlreadyFits => return Ok((Outcome::Skipped(SkipReason::AlreadyFits), None)),
        Planned::Outputs(plan) => plan,
    };
    let mut finished = Finished::default();
    if plan.is_fresh() {
        plan.sizes
            .drain(..)
            .for_each(|size| finished.keep_all(size));
        let entry = plan.entry(job, ctx, &finished);
        return Ok((Outcome::Skipped(SkipReason::UpToDate), entry));
    }
    if ctx.mode.dry_run {
        return Ok((Outcome::Planned(plan.pending()), None));
    }

    let mtime = if ctx.mode.keep_mtime {
        let modified = fs::metadata(&job.src).and_then(|m| m.modified());
        Some(modified.map_err(|e| JobError::io("cannot read the modification time", e))?)
    } else {
        None
    };
    let writer = Writer {
        ctx,
        job,
        handle,
        mtime,
    };
    if ctx.settings.animated && orientation <= 1 {
        make::animate(
            &writer,
            bytes,
            &mut plan,
            &mut scratch.make,
            stages,
            &mut finished,
        )?;
    }
    let mut sizes = std::mem::take(&mut plan.sizes);
    if sizes.iter().all(SizePlan::is_fresh) && !plan.placeholder_pending {
        sizes.into_iter().for_each(|size| finished.keep_all(size));
    } else {
        let t = Instant::now();
        let scratches = (&mut scratch.decode, &mut scratch.decoder, &mut scratch.make);
        let sample = plan
            .placeholder_pending
            .then(|| placeholder::sample_geometry(plan.shown_size));
        let loaded = load::load(job, ctx, bytes, probe, &sizes, sample, scratches, handle);
        stages.decode += t.elapsed();
        let Loaded {
            pixels,
            linear,
            meta,
            scale,
            memory: _memory,
        } = loaded?;
        let t = Instant::now();
        let view = crop::View {
            orientation,
            shown_size,
        };
        crop::place(
            &mut sizes,
            &pixels,
            view,
            ctx.settings.crop,
            &mut scratch.make.resize,
        )?;
        stages.resize += t.elapsed();
        let maker = Maker {
            writer: &writer,
            render: Render {
                settings: &ctx.settings,
                linear: linear.as_ref(),
                orientation,
                scale,
                shown_size,
            },
            meta: &meta,
        };
        if plan.placeholder_pending {
            // Counted as encoding: it is the placeholders' own encoders that take the time.
            let t = Instant::now();
            let kinds = &ctx.settings.placeholders;
            let shown = plan.shown_size;
            let made = placeholder::make(
                &maker.render,
                &pixels,
                &meta,
                shown,
                kinds,
                &mut scratch.make,
            );
            plan.placeholder = Some(made?);
            stages.encode += t.elapsed();
        }
        maker.make(pixels, sizes, &mut scratch.make, stages, &mut finished)?;
    }
    let entry = plan.entry(job, ctx, &finished);
    warnings.append(&mut finished.warnings);
    if finished.written.is_empty() {
        // Only the placeholders were new: every output file was already up to date.
        return Ok((Outcome::Skipped(SkipReason::UpToDate), entry));
    }
    Ok((Outcome::Written(finished.written), entry))
}

/// The read stage: the whole file into `buffer` (reused across jobs), and its content hash
/// when a manifest or a `{hash}` name needs one.
fn read(job: &ImageJob, ctx: &Context, buffer: &mut Vec<u8>) -> Result<Option<String>, JobError> {
    buffer.clear();
    fs::File::open(&job.src)
        .and_then(|mut f| f.read_to_end(buffer))
        .map_err(|e| JobError::io("cannot read file", e))?;
    let wanted = ctx.manifest.is_some() || ctx.template.uses_hash();
    Ok(wanted.then(|| crate::hash::content_hash(buffer)))
}

/// The probe stage: the header (checked against the pixel limit; read by the worker's decoder
/// process under `--isolate`), then the outputs planned from it.
fn probe_and_plan<'b>(
    job: &ImageJob,
    ctx: &Context,
    bytes: &'b [u8],
    content_hash: Option<String>,
    decoders: (
        &mut decode::DecodeScratch,
        &mut Option<isolate::DecoderProcess>,
    ),
    handle: &JobHandle,
) -> Result<(isolate::Probed<'b>, Planned), JobError> {
    let source = (job.src.as_path(), job.input_format);
    let probe = isolate::probe(ctx, source, bytes, decoders, handle)?;
    let facts = SourceFacts {
        shown_size: probe.header().displayed_size(),
        orientation: probe.header().orientation,
        content_hash,
        bytes: bytes.len() as u64,
    };
    let planned = plan::plan_source(job, ctx, facts)?;
    Ok((probe, planned))
}

/// Helpers shared by the pipeline's unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    /// Peak signal-to-noise ratio in dB of two same-length 8-bit sample buffers.
    pub(crate) fn psnr(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let se: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        let mse = se / a.len() as f64;
        10.0 * (255.0 * 255.0 / mse.max(1e-12)).log10()
    }
}
