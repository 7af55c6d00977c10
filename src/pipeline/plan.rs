//! Planning a source's outputs once its header is known: which sizes it gets (and which are
//! dropped), what every output is called, and which are already up to date.
//!
//! Called by [`super::process`] between the probe and the decode. Only file metadata is read
//! here (never pixels), so a rerun of an unchanged build stops after this stage.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{IccPolicy, MetaPolicy, Settings};
use crate::error::JobError;
use crate::format::Format;
use crate::geometry::{self, Crop, Geometry, Target};
use crate::job::{ImageJob, Output};
use crate::manifest::{self, Dropped, OutputEntry, OutputOptions, Placeholder, SourceEntry};
use crate::metadata::DpiPolicy;
use crate::naming;

use super::context::Context;

/// One output size of a source, with the formats to be made at that size.
pub(super) struct SizePlan {
    /// The geometry in displayed orientation.
    pub(super) shown: Geometry,
    /// The outputs at this size, one per format.
    pub(super) outputs: Vec<PlannedOutput>,
}

/// One output file of a source.
pub(super) struct PlannedOutput {
    pub(super) format: Format,
    pub(super) dst: PathBuf,
    /// `dst` relative to the output folder, `/`-separated (manifest).
    pub(super) rel: String,
    /// Digest of every option that shapes this output ([`OutputOptions::key`]).
    pub(super) key: String,
    /// Up to date already, with its size in bytes: nothing to do.
    pub(super) fresh: Option<u64>,
    /// `dst` existed before this run.
    pub(super) existed: bool,
}

/// Everything known about a source before its pixels are decoded.
pub(super) struct SourcePlan {
    /// Displayed (orientation-applied) size of the source.
    pub(super) shown_size: (u32, u32),
    /// The source's content hash, when a manifest or a `{hash}` name needs it.
    pub(super) content_hash: Option<String>,
    /// The source's size in bytes, as read.
    pub(super) bytes: u64,
    /// Requested sizes that were not made, and why.
    pub(super) dropped: Vec<Dropped>,
    /// The sizes to make, each with its outputs.
    pub(super) sizes: Vec<SizePlan>,
    /// `--placeholder`: the source's placeholders, carried over from the previous manifest
    /// (same content, every kind asked for present) or, once computed, this run's.
    pub(super) placeholder: Option<Placeholder>,
    /// Placeholders were asked for and are not in `placeholder` yet: the source must be
    /// decoded even when every output is up to date.
    pub(super) placeholder_pending: bool,
}

/// What [`plan_source`] decided.
pub(super) enum Planned {
    /// `--in-place` and the image already fits: rewriting it would only lose quality.
    AlreadyFits,
    /// Outputs to make (some may be fresh already).
    Outputs(SourcePlan),
}

/// What the source's header and bytes told about it.
pub(super) struct SourceFacts {
    /// Displayed (orientation-applied) size.
    pub(super) shown_size: (u32, u32),
    /// EXIF orientation of the stored pixels.
    pub(super) orientation: u8,
    /// Content hash, when a manifest or a `{hash}` name needs it.
    pub(super) content_hash: Option<String>,
    /// Size in bytes, as read.
    pub(super) bytes: u64,
}

/// Plans every output of `job`.
pub(super) fn plan_source(
    job: &ImageJob,
    ctx: &Context,
    facts: SourceFacts,
) -> Result<Planned, JobError> {
    let SourceFacts {
        shown_size,
        orientation,
        content_hash,
        bytes,
    } = facts;
    let settings = &ctx.settings;
    // A drawing is rendered at each output's size: enlarging it invents no pixels.
    let vector: Vec<Target>;
    let wanted = if job.input_format.is_vector() {
        vector = settings
            .targets
            .iter()
            .map(|t| Target {
                upscale: true,
                ..*t
            })
            .collect();
        &vector
    } else {
        &settings.targets
    };
    let (targets, dropped) = sizes(shown_size, wanted);
    if ctx.mode.in_place && already_fits(settings, &targets, shown_size, orientation) {
        return Ok(Planned::AlreadyFits);
    }
    let old = ctx.manifest.as_ref().and_then(|m| {
        let key = manifest::rel_key(&job.rel)?;
        m.lookup(&key)
            .filter(|e| Some(e.hash.as_str()) == content_hash.as_deref())
    });
    let short = content_hash.as_deref().map(crate::hash::short_hash);
    let options = OutputOptions::new(settings, &ctx.template);
    let mut sizes = Vec::new();
    for (target, shown) in &targets {
        // A focal point is known before any pixel is (attention and entropy crops are placed
        // after the decode, by `crop::place`).
        let shown = match settings.crop {
            Crop::Focal(x, y) => shown.centred_on(shown_size, (x, y)),
            _ => *shown,
        };
        let mut outputs = Vec::new();
        for format in settings.output_formats(job.input_format) {
            let dst = output_path(job, ctx, format, shown.output_size(), short)?;
            let existed = fs::symlink_metadata(&dst).is_ok();
            if existed
                && !ctx.mode.in_place
                && same_file::is_same_file(&job.src, &dst).unwrap_or(false)
            {
                return Err(JobError::Conflict(format!(
                    "output {} is the input itself; refusing to overwrite it",
                    dst.display()
                )));
            }
            let rel = dst
                .strip_prefix(&ctx.out_dir)
                .map(manifest::rel_key)
                .ok()
                .flatten()
                .unwrap_or_default();
            let key = options.key(target, format);
            let fresh = if ctx.mode.force || ctx.mode.in_place {
                None
            } else if ctx.manifest.is_some() {
                old.and_then(|e| e.fresh_output(&rel, &key, &dst))
            } else if existed && !ctx.mode.overwrite {
                newer_than_source(&dst, &job.src)
            } else {
                None
            };
            outputs.push(PlannedOutput {
                format,
                dst,
                rel,
                key,
                fresh,
                existed,
            });
        }
        sizes.push(SizePlan { shown, outputs });
    }
    refuse_shared_names(&sizes)?;
    // A placeholder depends on the source's content alone (not on the options that shape the
    // outputs), so it is kept while that content is unchanged.
    let kinds = &settings.placeholders;
    let placeholder = old
        .filter(|_| !ctx.mode.force && !kinds.is_empty())
        .and_then(|e| e.placeholder.as_ref()?.covering(kinds));
    let placeholder_pending = ctx.manifest.is_some() && !kinds.is_empty() && placeholder.is_none();
    Ok(Planned::Outputs(SourcePlan {
        shown_size,
        content_hash,
        bytes,
        dropped,
        sizes,
        placeholder,
        placeholder_pending,
    }))
}

/// The sizes to make of a source shown at `shown`: with several targets, one that would need
/// enlarging is dropped (and recorded); if every one is, the source size is made once. A single
/// target is clamped as always. Targets giving the same size are made once.
fn sizes(shown: (u32, u32), targets: &[Target]) -> (Vec<(Target, Geometry)>, Vec<Dropped>) {
    let many = targets.len() > 1;
    let mut sizes: Vec<(Target, Geometry)> = Vec::new();
    let mut dropped = Vec::new();
    for target in targets {
        let g = geometry::plan(shown, target);
        let unclamped = Target {
            upscale: true,
            ..*target
        };
        let enlarging = !target.upscale && geometry::plan(shown, &unclamped) != g;
        if many && enlarging {
            dropped.push(Dropped {
                width: target
                    .width
                    .map_or(g.output_size().0, |d| d.resolve(shown.0)),
                reason: "larger than the source".into(),
            });
        } else if !sizes
            .iter()
            .any(|(_, s)| s.output_size() == g.output_size())
        {
            sizes.push((*target, g));
        }
    }
    if sizes.is_empty() {
        sizes.push((targets[0], geometry::plan(shown, &targets[0])));
    }
    (sizes, dropped)
}

/// `--in-place`: returns true if and only if the image would come out as it is. With a
/// metadata, profile or resolution change asked for, an image that already fits is still
/// rewritten.
fn already_fits(
    settings: &Settings,
    sizes: &[(Target, Geometry)],
    shown: (u32, u32),
    orientation: u8,
) -> bool {
    let untouched = settings.metadata == MetaPolicy::Keep
        && settings.icc == IccPolicy::Keep
        && !matches!(settings.dpi, DpiPolicy::Set(_));
    untouched && sizes.len() == 1 && sizes[0].1.is_identity(shown) && orientation <= 1
}

/// Where one output of `job` goes: the input itself in place, else the name the template gives
/// below the output folder.
fn output_path(
    job: &ImageJob,
    ctx: &Context,
    format: Format,
    size: (u32, u32),
    short_hash: Option<&str>,
) -> Result<PathBuf, JobError> {
    if !ctx.mode.in_place {
        let name = naming::output_name(
            &ctx.template,
            &job.rel,
            job.input_format,
            format,
            size,
            short_hash,
        )
        .map_err(|e| JobError::Conflict(format!("cannot name the output: {e}")))?;
        return Ok(ctx.out_dir.join(name));
    }
    if format != job.input_format {
        let name = job.input_format.display_name();
        return Err(JobError::Unsupported(format!(
            "{name} cannot be replaced in place: presize does not write {name}"
        )));
    }
    Ok(job.src.clone())
}

/// Without a manifest, an output is up to date when it is at least as new as its source; its
/// size in bytes then.
fn newer_than_source(dst: &Path, src: &Path) -> Option<u64> {
    let mtime =
        |p: &Path| -> Option<SystemTime> { fs::metadata(p).and_then(|m| m.modified()).ok() };
    match (mtime(src), mtime(dst)) {
        (Some(s), Some(d)) if d >= s => fs::metadata(dst).ok().map(|m| m.len()),
        _ => None,
    }
}

/// Two outputs of one source must never share a file (e.g. two heights at one width with a
/// template that names only the width): refused before anything is written.
fn refuse_shared_names(sizes: &[SizePlan]) -> Result<(), JobError> {
    let mut names: Vec<&Path> = sizes
        .iter()
        .flat_map(|p| p.outputs.iter().map(|o| o.dst.as_path()))
        .collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(JobError::Conflict(format!(
            "two outputs of this image would both be {}; add {{height}} to --name",
            w[0].display()
        ))),
        None => Ok(()),
    }
}

/// The largest output size of `sizes`, by pixels.
pub(super) fn largest(sizes: &[SizePlan]) -> (u32, u32) {
    sizes
        .iter()
        .map(|p| p.shown.output_size())
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
        .unwrap_or((1, 1))
}

impl SizePlan {
    /// Returns true if and only if every output at this size is up to date.
    pub(super) fn is_fresh(&self) -> bool {
        self.outputs.iter().all(|o| o.fresh.is_some())
    }
}

impl SourcePlan {
    /// Returns true if and only if every output and the placeholders are up to date.
    pub(super) fn is_fresh(&self) -> bool {
        self.sizes.iter().all(SizePlan::is_fresh) && !self.placeholder_pending
    }

    /// The outputs a dry run reports: those that would be written.
    pub(super) fn pending(&self) -> Vec<Output> {
        self.sizes
            .iter()
            .flat_map(|p| {
                let (width, height) = p.shown.output_size();
                p.outputs
                    .iter()
                    .filter(|o| o.fresh.is_none())
                    .map(move |o| Output {
                        path: o.dst.clone(),
                        width,
                        height,
                        format: o.format,
                        bytes: 0,
                        saved: 0,
                    })
            })
            .collect()
    }

    /// The source's new manifest entry once every output in `done` is in place; `None` without
    /// a manifest or when the source cannot be recorded (non-UTF-8 path).
    pub(super) fn entry(
        &self,
        job: &ImageJob,
        ctx: &Context,
        done: &Finished,
    ) -> Option<SourceEntry> {
        ctx.manifest.as_ref()?;
        let outputs: Vec<OutputEntry> = done
            .done
            .iter()
            .map(|(o, (w, h), b)| OutputEntry {
                path: o.rel.clone(),
                width: *w,
                height: *h,
                format: o.format,
                bytes: *b,
                key: o.key.clone(),
            })
            .collect();
        let mut entry = SourceEntry {
            path: manifest::rel_key(&job.rel)?,
            width: self.shown_size.0,
            height: self.shown_size.1,
            hash: self.content_hash.clone()?,
            bytes: self.bytes,
            srcset: manifest::srcset(&outputs, None),
            outputs,
            dropped: self.dropped.clone(),
            placeholder: self.placeholder.clone(),
        };
        entry.normalise();
        Some(entry)
    }
}

/// The outputs of one source once they are in place: those written now (for the report) and
/// all of them, up to date or new, with their size and bytes (for the manifest).
#[derive(Default)]
pub(super) struct Finished {
    pub(super) written: Vec<Output>,
    done: Vec<(PlannedOutput, (u32, u32), u64)>,
    /// Warnings about outputs written (`--max-bytes` not met), each naming its file.
    pub(super) warnings: Vec<String>,
}

impl Finished {
    /// A warning about the output `out`, if there is one.
    pub(super) fn note(&mut self, out: &PlannedOutput, note: Option<String>) {
        if let Some(note) = note {
            self.warnings.push(format!("{}: {note}", out.dst.display()));
        }
    }

    /// An output just written.
    /// `saved`: bytes the lossless PNG recompression took off.
    pub(super) fn wrote(&mut self, out: PlannedOutput, size: (u32, u32), bytes: u64, saved: u64) {
        self.written.push(Output {
            path: out.dst.clone(),
            width: size.0,
            height: size.1,
            format: out.format,
            bytes,
            saved,
        });
        self.done.push((out, size, bytes));
    }

    /// An output already up to date.
    pub(super) fn keep(&mut self, out: PlannedOutput, size: (u32, u32)) {
        let bytes = out.fresh.unwrap_or(0);
        self.done.push((out, size, bytes));
    }

    /// Every output of a size that is up to date.
    pub(super) fn keep_all(&mut self, plan: SizePlan) {
        let size = plan.shown.output_size();
        for out in plan.outputs {
            self.keep(out, size);
        }
    }
}
