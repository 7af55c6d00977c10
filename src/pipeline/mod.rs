//! The per-image pipeline a worker runs: read → decode → resize → encode → write.
//!
//! [`process`] never panics on bad input and never returns early without a [`JobResult`]: every
//! job ends as written, skipped or failed, with the time spent in each stage.

pub mod animation;
pub mod avif;
pub mod color;
pub mod decode;
pub mod encode;
#[cfg(feature = "heif")]
pub mod heif;
pub mod resize;
pub mod restart;

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

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::budget::Budget;
use crate::config::{IccPolicy, MetaPolicy, Settings};
use crate::error::JobError;
use crate::format::Format;
use crate::geometry;
use crate::manifest::{self, Dropped, Manifest, OutputEntry, SourceEntry};
use crate::metadata::{self, Metadata};
use crate::naming::Template;
use crate::pipeline::decode::Pixels;
use crate::plan::{self, Job};

/// Time spent in each stage of one image (or summed over many).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stages {
    /// Reading the input file.
    pub read: Duration,
    /// Decoding (including the header).
    pub decode: Duration,
    /// Resampling, flattening, padding and orienting.
    pub resize: Duration,
    /// Encoding.
    pub encode: Duration,
    /// Writing and renaming the output.
    pub write: Duration,
}

impl std::ops::AddAssign for Stages {
    fn add_assign(&mut self, o: Stages) {
        self.read += o.read;
        self.decode += o.decode;
        self.resize += o.resize;
        self.encode += o.encode;
        self.write += o.write;
    }
}

/// One file presize wrote (or, in a dry run, would write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where.
    pub path: PathBuf,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Format.
    pub format: Format,
    /// Size in bytes (0 in a dry run).
    pub bytes: u64,
}

/// Why an input was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The output exists and is newer than the input (use --overwrite to redo it).
    UpToDate,
    /// `--in-place`: the image is already within the target size, so rewriting it would only
    /// lose quality.
    AlreadyFits,
    /// The file is not an image presize reads (never counted as an input).
    NotAnImage,
}

impl SkipReason {
    /// The stable name used in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::UpToDate => "up-to-date",
            SkipReason::AlreadyFits => "already-fits",
            SkipReason::NotAnImage => "not-an-image",
        }
    }

    /// The words used on stderr.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::UpToDate => "skipped, output is up to date",
            SkipReason::AlreadyFits => "skipped, already within the target size",
            SkipReason::NotAnImage => "not an image, ignored",
        }
    }
}

/// How a job ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Outputs were written.
    Written(Vec<Output>),
    /// Dry run: these outputs would be written.
    Planned(Vec<Output>),
    /// Nothing was written, on purpose.
    Skipped(SkipReason),
}

/// Everything the results channel carries about one input.
#[derive(Debug)]
pub struct JobResult {
    /// The input file.
    pub src: PathBuf,
    /// Its size in bytes.
    pub bytes_in: u64,
    /// Its width × height as stored (0 when the header was never read).
    pub pixels_in: u64,
    /// Its displayed (oriented) size, once the header was read.
    pub input_size: Option<(u32, u32)>,
    /// Written, planned, skipped, or the error.
    pub outcome: Result<Outcome, JobError>,
    /// Time per stage.
    pub stages: Stages,
    /// The source's manifest key (its `/`-separated relative path), when it has one.
    pub rel: Option<String>,
    /// With `--manifest`: the source's new manifest entry, once every output is in place.
    pub manifest: Option<SourceEntry>,
}

impl JobResult {
    /// A failure found before the job reached a worker (walker errors, conflicts).
    pub fn failed(src: PathBuf, error: JobError) -> Self {
        JobResult {
            src,
            bytes_in: 0,
            pixels_in: 0,
            input_size: None,
            outcome: Err(error),
            stages: Stages::default(),
            rel: None,
            manifest: None,
        }
    }
}

/// Run-wide switches a worker needs besides the image settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// Replace outputs even when newer than the input.
    pub overwrite: bool,
    /// Redo every output, ignoring the manifest and existing files (`--force`).
    pub force: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Do everything but write the output (benchmark mode).
    pub discard: bool,
    /// Each output replaces its input (`--in-place`).
    pub in_place: bool,
}

/// Everything a worker shares with the others for the whole run.
#[derive(Debug)]
pub struct Context {
    /// How to resize and encode.
    pub settings: Settings,
    /// Run-wide switches.
    pub mode: Mode,
    /// Decoded-image memory shared by all workers.
    pub budget: Budget,
    /// The output folder as given; outputs are named below it.
    pub out_dir: PathBuf,
    /// The canonical output folder: no write may land outside it (a symlink planted in the
    /// output tree is never written through). `None` in place or when nothing is written.
    pub out_root: Option<PathBuf>,
    /// Output file names below `out_dir`.
    pub template: Template,
    /// With `--manifest`: the previous manifest (empty on a first run), consulted to skip
    /// unchanged work, and the signal to describe every source for the new one.
    pub manifest: Option<Manifest>,
}

impl Context {
    /// A context with the given settings, the default mode and names, an unlimited budget, no
    /// manifest and no confinement.
    pub fn new(settings: Settings) -> Context {
        let template = Template::default_for(settings.targets.len());
        Context {
            settings,
            mode: Mode::default(),
            budget: Budget::new(u64::MAX),
            out_dir: PathBuf::new(),
            out_root: None,
            template,
            manifest: None,
        }
    }
}

/// A worker's reusable state: codec handles, resizer buffers, the input read buffer.
#[derive(Default)]
pub struct Scratch {
    decode: decode::DecodeScratch,
    make: MakeScratch,
    input: Vec<u8>,
}

/// The part of a worker's state that makes outputs from decoded pixels; a helper thread of a
/// job (see [`make_outputs_in_parallel`]) has its own.
#[derive(Default)]
struct MakeScratch {
    color: color::ColorScratch,
    resize: resize::ResizeScratch,
    encode: encode::EncodeScratch,
}

/// What a job learns besides its outcome.
#[derive(Default)]
struct Facts {
    input_size: Option<(u32, u32)>,
    entry: Option<SourceEntry>,
}

/// Processes one job completely. Never panics on bad data; errors come back as data.
pub fn process(job: &Job, ctx: &Context, scratch: &mut Scratch) -> JobResult {
    let mut stages = Stages::default();
    let mut facts = Facts::default();
    let outcome = run_stages(job, ctx, scratch, &mut stages, &mut facts);
    // Keep the read buffer from pinning a huge allocation after one big file.
    if scratch.input.capacity() > 64 << 20 {
        scratch.input = Vec::new();
    }
    scratch.make.resize.shrink();
    let input_size = facts.input_size;
    JobResult {
        src: job.src.clone(),
        rel: manifest::rel_key(&job.rel),
        bytes_in: job.bytes,
        pixels_in: input_size.map_or(0, |(w, h)| u64::from(w) * u64::from(h)),
        input_size,
        outcome,
        stages,
        manifest: facts.entry,
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// One output size of a source, with the formats still to be made at that size.
struct SizePlan {
    /// The geometry in displayed orientation.
    shown: geometry::Geometry,
    /// The outputs at this size, one per format.
    outputs: Vec<PlannedOutput>,
}

struct PlannedOutput {
    format: Format,
    dst: PathBuf,
    /// `dst` relative to the output folder, `/`-separated (manifest).
    rel: String,
    /// Hash of every option that shapes this output (manifest freshness).
    key: String,
    /// Up to date already: nothing to do.
    fresh: Option<u64>,
    /// `dst` existed before this run.
    existed: bool,
}

/// The outputs of one source once they are in place: those written now (for the report) and
/// all of them, up to date or new, with their size and bytes (for the manifest).
#[derive(Default)]
struct Finished {
    written: Vec<Output>,
    done: Vec<(PlannedOutput, (u32, u32), u64)>,
}

impl Finished {
    fn wrote(&mut self, out: PlannedOutput, size: (u32, u32), bytes: u64) {
        self.written.push(Output {
            path: out.dst.clone(),
            width: size.0,
            height: size.1,
            format: out.format,
            bytes,
        });
        self.done.push((out, size, bytes));
    }

    /// An output already up to date.
    fn keep(&mut self, out: PlannedOutput, size: (u32, u32)) {
        let bytes = out.fresh.unwrap_or(0);
        self.done.push((out, size, bytes));
    }

    fn keep_all(&mut self, plan: SizePlan) {
        let size = plan.shown.output_size();
        for out in plan.outputs {
            self.keep(out, size);
        }
    }
}

/// A digest of every setting that shapes one output (target, format and its encoder options),
/// so that a manifest can tell which outputs an option change affects.
fn output_key(settings: &Settings, target: &geometry::Target, format: Format) -> String {
    let text = format!(
        "{target:?}|{format:?}|q{}|e{:?}|p{}|l{}|{:?}|{:?}|{:?}|{:?}|{:?}|lin{}",
        settings.quality_for(format),
        settings.effort,
        settings.progressive,
        settings.lossless,
        settings.filter,
        settings.background,
        settings.shrink,
        settings.icc,
        settings.metadata,
        settings.linear,
    );
    // Appended only when set, so turning it on redoes outputs without changing existing keys.
    let text = if settings.animated {
        text + "|animated"
    } else {
        text
    };
    let text = match settings.dpi {
        metadata::DpiPolicy::Keep => text,
        dpi => format!("{text}|dpi{dpi:?}"),
    };
    format!("{:016x}", manifest::xxh64(text.as_bytes(), 0))
}

fn run_stages(
    job: &Job,
    ctx: &Context,
    scratch: &mut Scratch,
    stages: &mut Stages,
    facts: &mut Facts,
) -> Result<Outcome, JobError> {
    let (settings, mode) = (&ctx.settings, ctx.mode);

    let t = Instant::now();
    scratch.input.clear();
    fs::File::open(&job.src)
        .and_then(|mut f| f.read_to_end(&mut scratch.input))
        .map_err(|e| JobError::io("cannot read file", e))?;
    let bytes = &scratch.input[..];
    let content_hash =
        (ctx.manifest.is_some() || ctx.template.uses_hash()).then(|| manifest::content_hash(bytes));
    stages.read = t.elapsed();

    let t = Instant::now();
    let mut probe = decode::probe(
        bytes,
        job.input_format,
        settings.max_pixels,
        &mut scratch.decode,
    )?;
    let header = &probe.header;
    let (stored_w, stored_h, orientation) = (header.width, header.height, header.orientation);
    let transposed = header.is_transposed();
    let shown_size = header.displayed_size();
    facts.input_size = Some(shown_size);

    // Sizes: with several targets, one that would need enlarging is dropped (and recorded);
    // if every one is, the source size is made once. A single target is clamped as always.
    let many = settings.targets.len() > 1;
    let mut sizes: Vec<(geometry::Target, geometry::Geometry)> = Vec::new();
    let mut dropped: Vec<Dropped> = Vec::new();
    for target in &settings.targets {
        let g = geometry::plan(shown_size, target);
        let enlarging = !target.upscale
            && geometry::plan(
                shown_size,
                &geometry::Target {
                    upscale: true,
                    ..*target
                },
            ) != g;
        if many && enlarging {
            dropped.push(Dropped {
                width: target
                    .width
                    .map_or(g.output_size().0, |d| d.resolve(shown_size.0)),
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
        let target = settings.targets[0];
        sizes.push((target, geometry::plan(shown_size, &target)));
    }
    // With a metadata or profile change asked for, an image that already fits is still
    // rewritten; otherwise rewriting it would only lose quality.
    let untouched = settings.metadata == MetaPolicy::Keep
        && settings.icc == IccPolicy::Keep
        && !matches!(settings.dpi, metadata::DpiPolicy::Set(_));
    if mode.in_place
        && untouched
        && sizes.len() == 1
        && sizes[0].1.is_identity(shown_size)
        && orientation <= 1
    {
        stages.decode = t.elapsed();
        return Ok(Outcome::Skipped(SkipReason::AlreadyFits));
    }

    // Name every output and decide which are already up to date.
    let old = ctx.manifest.as_ref().and_then(|m| {
        let key = manifest::rel_key(&job.rel)?;
        m.lookup(&key)
            .filter(|e| Some(e.hash.as_str()) == content_hash.as_deref())
    });
    let short = content_hash.as_deref().map(manifest::short_hash);
    let src_mtime = mtime(&job.src);
    let mut plans: Vec<SizePlan> = Vec::new();
    for (target, shown) in &sizes {
        let mut outputs = Vec::new();
        for format in settings.output_formats(job.input_format) {
            if mode.in_place && format != job.input_format {
                return Err(JobError::Unsupported(format!(
                    "{} cannot be replaced in place: presize does not write {}",
                    job.input_format.display_name(),
                    job.input_format.display_name()
                )));
            }
            let dst = if mode.in_place {
                job.src.clone()
            } else {
                let name = plan::output_name(
                    &ctx.template,
                    &job.rel,
                    job.input_format,
                    format,
                    shown.output_size(),
                    short,
                )
                .map_err(|e| JobError::Conflict(format!("cannot name the output: {e}")))?;
                ctx.out_dir.join(name)
            };
            let existed = fs::symlink_metadata(&dst).is_ok();
            if existed && !mode.in_place && same_file::is_same_file(&job.src, &dst).unwrap_or(false)
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
            let key = output_key(settings, target, format);
            let fresh = if mode.force || mode.in_place {
                None
            } else if ctx.manifest.is_some() {
                old.and_then(|e| e.outputs.iter().find(|o| o.path == rel && o.key == key))
                    .map(|o| o.bytes)
                    .filter(|&b| fs::metadata(&dst).is_ok_and(|m| m.is_file() && m.len() == b))
            } else if existed && !mode.overwrite {
                match (src_mtime, mtime(&dst)) {
                    (Some(s), Some(d)) if d >= s => fs::metadata(&dst).ok().map(|m| m.len()),
                    _ => None,
                }
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
        plans.push(SizePlan {
            shown: *shown,
            outputs,
        });
    }

    // Two outputs of one source must never share a file (e.g. two heights at one width with a
    // template that names only the width): refuse before writing anything.
    let mut names: Vec<&Path> = plans
        .iter()
        .flat_map(|p| p.outputs.iter().map(|o| o.dst.as_path()))
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(JobError::Conflict(format!(
            "two outputs of this image would both be {}; add {{height}} to --name",
            w[0].display()
        )));
    }
    let record = |done: &[(PlannedOutput, (u32, u32), u64)]| -> Option<SourceEntry> {
        ctx.manifest.as_ref()?;
        let outputs: Vec<OutputEntry> = done
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
            width: shown_size.0,
            height: shown_size.1,
            hash: content_hash.clone()?,
            bytes: bytes.len() as u64,
            srcset: manifest::srcset(&outputs, None),
            outputs,
            dropped: dropped.clone(),
        };
        entry.normalise();
        Some(entry)
    };

    let all_fresh = plans
        .iter()
        .all(|p| p.outputs.iter().all(|o| o.fresh.is_some()));
    if all_fresh {
        stages.decode = t.elapsed();
        let mut finished = Finished::default();
        for p in plans {
            finished.keep_all(p);
        }
        facts.entry = record(&finished.done);
        return Ok(Outcome::Skipped(SkipReason::UpToDate));
    }
    if mode.dry_run {
        stages.decode = t.elapsed();
        let planned = plans
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
                    })
            })
            .collect();
        return Ok(Outcome::Planned(planned));
    }

    // --animated: each GIF or WebP output of an animated input is resized frame by frame here;
    // the other outputs (JPEG, PNG, ...) fall through to the still path: the first frame.
    let mut finished = Finished::default();
    let animation = (settings.animated && orientation <= 1)
        .then(|| animation::inspect(bytes, job.input_format))
        .flatten()
        .filter(|a| a.frames > 1);
    if let Some(info) = animation {
        let largest = plans
            .iter()
            .map(|p| p.shown.output_size())
            .map(|(w, h)| u64::from(w) * u64::from(h))
            .max()
            .unwrap_or(1);
        let canvas = u64::from(info.canvas.0) * u64::from(info.canvas.1);
        crate::pool::pause_job_clock();
        let _memory = ctx
            .budget
            .reserve(job.bytes + 4 * (canvas + largest * u64::from(info.frames)));
        crate::pool::restart_job_clock();
        for plan in &mut plans {
            let size = plan.shown.output_size();
            let mut still = Vec::new();
            for out in std::mem::take(&mut plan.outputs) {
                if out.fresh.is_some() || !animation::can_animate(out.format) {
                    still.push(out);
                    continue;
                }
                let t = Instant::now();
                let Some(encoded) = animation::resize_animation(
                    bytes,
                    job.input_format,
                    out.format,
                    &plan.shown,
                    settings,
                    &mut scratch.make.resize,
                )?
                else {
                    still.push(out);
                    continue;
                };
                // Decode, resize and encode are interleaved frame by frame: counted as encoding.
                stages.encode += t.elapsed();
                write_output(ctx, job, &out, &encoded, stages)?;
                finished.wrote(out, size, encoded.len() as u64);
            }
            plan.outputs = still;
        }
        if plans
            .iter()
            .all(|p| p.outputs.iter().all(|o| o.fresh.is_some()))
        {
            for p in plans {
                finished.keep_all(p);
            }
            facts.entry = record(&finished.done);
            return Ok(Outcome::Written(finished.written));
        }
    }

    // Decode once, at the size the largest output still to be made needs.
    let stored_of = |g: &geometry::Geometry| if transposed { g.transposed() } else { *g };
    let min_size = settings.shrink.margin().and_then(|k| {
        plans
            .iter()
            .filter(|p| p.outputs.iter().any(|o| o.fresh.is_none()))
            .map(|p| {
                // The decoded crop must stay `k` times as large as the resampled size, so that
                // Lanczos (not the IDCT's block averaging) does the final part of the reduction.
                let stored = stored_of(&p.shown);
                let sx = stored.crop.width / f64::from(stored_w);
                let sy = stored.crop.height / f64::from(stored_h);
                (
                    k * f64::from(stored.size.0) / sx,
                    k * f64::from(stored.size.1) / sy,
                )
            })
            .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
    });
    let largest = plans
        .iter()
        .map(|p| p.shown.output_size())
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
        .unwrap_or((1, 1));
    // Hold the decoded image's share of the memory budget until the job ends. Waiting for it is
    // not the image's fault: its time limit is paused meanwhile and starts afresh after.
    crate::pool::pause_job_clock();
    let _memory = ctx.budget.reserve(memory_estimate(
        &probe.header,
        decode::jpeg_coefficient_bytes(bytes, &probe.header),
        job,
        min_size,
        largest,
        plans.len(),
        settings.linear,
    ));
    crate::pool::restart_job_clock();
    let source_meta = probe.header.take_metadata();
    // Spare cores can decode a large JPEG that has restart markers (see `restart`).
    let pixels = u64::from(probe.header.width) * u64::from(probe.header.height);
    let spare = if job.input_format == Format::Jpeg && pixels >= decode::PARALLEL_DECODE_PIXELS {
        crate::pool::borrow_spare(MAX_DECODE_HELPERS)
    } else {
        crate::pool::SpareCores::none()
    };
    let mut decoded = decode::decode_probed(
        bytes,
        job.input_format,
        probe,
        min_size,
        &mut scratch.decode,
        spare.count() + 1,
    )?;
    drop(spare);
    // `--icc srgb`: convert once, at the decoded size, before any resampling (so that linear
    // light, when asked for, is sRGB's). A source without a profile is taken as sRGB already.
    let mut source_meta = source_meta;
    if settings.icc == IccPolicy::Srgb || settings.linear {
        // The colour engine and the linear-light path take 8-bit input.
        decoded = decoded.into_8bit();
    }
    if settings.icc == IccPolicy::Srgb {
        scratch
            .make
            .color
            .source_to_srgb(&mut decoded, &mut source_meta.icc)?;
    }
    stages.decode = t.elapsed();
    let linear = settings.linear.then(|| color::srgb_to_linear(&decoded));
    // The decoder may have shrunk the image: scale crops to the decoded size.
    let fx = f64::from(decoded.width) / f64::from(stored_w);
    let fy = f64::from(decoded.height) / f64::from(stored_h);

    let render = Render {
        settings,
        linear: linear.as_ref(),
        orientation,
        scale: (fx, fy),
        transposed,
    };
    // Cores of workers that have run out of images (the tail of a run, or a folder with fewer
    // images than workers): several outputs are then made at once, or one large resize is split.
    let pending: usize = plans
        .iter()
        .map(|p| p.outputs.iter().filter(|o| o.fresh.is_none()).count())
        .sum();
    let big = u64::from(decoded.width) * u64::from(decoded.height) >= PARALLEL_RESIZE_PIXELS;
    let spare = crate::pool::borrow_spare(if pending > 1 {
        pending - 1
    } else if big {
        MAX_RESIZE_HELPERS
    } else {
        0
    });
    if spare.count() > 0 {
        let made = make_outputs_in_parallel(
            ctx,
            job,
            &render,
            &decoded,
            plans,
            &source_meta,
            &mut scratch.make,
            spare.count() + 1,
            stages,
            &mut finished,
        );
        facts.entry = made.is_ok().then(|| record(&finished.done)).flatten();
        made?;
        return Ok(Outcome::Written(finished.written));
    }
    drop(spare);

    let mut decoded = Some(decoded);
    let count = plans.len();
    for (i, plan) in plans.into_iter().enumerate() {
        let size = plan.shown.output_size();
        if plan.outputs.iter().all(|o| o.fresh.is_some()) {
            finished.keep_all(plan);
            continue;
        }
        let t = Instant::now();
        // The last size may consume the decoded image (no copy when nothing changes).
        let px = if i + 1 == count {
            let src = Decoded::Owned(decoded.take().expect("kept until the last size"));
            render.size(&plan.shown, src, &mut scratch.make.resize, 1)?
        } else {
            let src = Decoded::Shared(decoded.as_ref().expect("kept until the last size"));
            render.size(&plan.shown, src, &mut scratch.make.resize, 1)?
        };
        stages.resize += t.elapsed();

        let out_meta = render.metadata(&source_meta, &plan.shown);
        let mut flat: Option<Pixels> = None;
        for out in plan.outputs {
            if out.fresh.is_some() {
                finished.keep(out, size);
                continue;
            }
            let t = Instant::now();
            let encoded =
                encode_output(&px, &mut flat, &out, settings, &out_meta, &mut scratch.make)?;
            stages.encode += t.elapsed();
            write_output(ctx, job, &out, &encoded, stages)?;
            finished.wrote(out, size, encoded.len() as u64);
        }
    }
    facts.entry = record(&finished.done);
    Ok(Outcome::Written(finished.written))
}

/// At most this many extra threads decode one JPEG's restart-marker bands.
const MAX_DECODE_HELPERS: usize = 15;
/// Decoded images at least this large get their resize split across spare cores.
const PARALLEL_RESIZE_PIXELS: u64 = 4_000_000;
/// At most this many extra threads split one resize (beyond that, thread starts and the
/// stitching copies outweigh the gain on the sizes presize sees).
const MAX_RESIZE_HELPERS: usize = 7;

/// The decoded image, lent to each size or, for the last one, given up.
enum Decoded<'a> {
    Shared(&'a Pixels),
    Owned(Pixels),
}

/// What turns the decoded image into each output size.
struct Render<'a> {
    settings: &'a Settings,
    /// `--linear`: the decoded image in linear light.
    linear: Option<&'a color::LinearPixels>,
    /// EXIF orientation to apply after resampling.
    orientation: u8,
    /// Decoded size over stored size (the JPEG decoder may have shrunk the image).
    scale: (f64, f64),
    /// The stored image is the displayed one turned a quarter.
    transposed: bool,
}

impl Render<'_> {
    /// Resamples, pads and orients the decoded image `src` to the size `shown`, on `threads`
    /// threads. An owned `src` that needs no resampling is passed through without a copy.
    fn size(
        &self,
        shown: &geometry::Geometry,
        src: Decoded<'_>,
        scratch: &mut resize::ResizeScratch,
        threads: usize,
    ) -> Result<Pixels, JobError> {
        let settings = self.settings;
        let stored = if self.transposed {
            shown.transposed()
        } else {
            *shown
        };
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

/// Encodes one output of the resized `px`: flattened onto the background for a format without
/// alpha (kept in `flat` for the next such format), converted to sRGB for AVIF.
fn encode_output(
    px: &Pixels,
    flat: &mut Option<Pixels>,
    out: &PlannedOutput,
    settings: &Settings,
    meta: &Metadata,
    scratch: &mut MakeScratch,
) -> Result<Vec<u8>, JobError> {
    let pixels = if !out.format.has_alpha() && px.layout.has_alpha() {
        flat.get_or_insert_with(|| resize::flatten(px.clone(), settings.background))
    } else {
        px
    };
    // AVIF cannot carry a profile (ravif declares sRGB): convert a wide-gamut source rather
    // than let it show dull or shifted colours.
    let converted;
    let pixels = match meta.icc.as_deref() {
        Some(profile) if out.format == Format::Avif && !color::is_srgb(profile) => {
            let mut copy = pixels.clone().into_8bit();
            match scratch.color.to_srgb(&mut copy, profile) {
                Ok(()) => {
                    converted = copy;
                    &converted
                }
                Err(_) => pixels,
            }
        }
        _ => pixels,
    };
    encode::encode(pixels, out.format, settings, meta, &mut scratch.encode)
}

/// Makes every pending output of one image on `threads` threads (this one and spare cores):
/// each thread takes the next (size, format) output; the first to need a size resamples it
/// (with all threads when there is a single size) and the others wait for that copy. Outputs
/// are recorded in plan order, so the manifest and report do not depend on the timing.
#[allow(clippy::too_many_arguments)]
fn make_outputs_in_parallel(
    ctx: &Context,
    job: &Job,
    render: &Render<'_>,
    decoded: &Pixels,
    plans: Vec<SizePlan>,
    source_meta: &Metadata,
    scratch: &mut MakeScratch,
    threads: usize,
    stages: &mut Stages,
    finished: &mut Finished,
) -> Result<(), JobError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    let settings = render.settings;
    let mut sizes = Vec::new();
    let mut work: Vec<(usize, PlannedOutput)> = Vec::new();
    for plan in plans {
        if plan.outputs.iter().all(|o| o.fresh.is_some()) {
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
    let resized: Vec<OnceLock<Result<Pixels, String>>> =
        sizes.iter().map(|_| OnceLock::new()).collect();
    let resize_threads = (threads / sizes.len()).max(1);
    // Longest first (the classic rule for keeping threads evenly busy), by a rough cost: output
    // pixels times how slow the format's encoder is. Distinct sizes then start on distinct
    // threads instead of one thread waiting for another's resample of the same size.
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
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<u64, JobError>>>> =
        Mutex::new(work.iter().map(|_| None).collect());
    let job_scope = crate::pool::current_job();
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
                    let meta = render.metadata(source_meta, shown);
                    let encoded = encode_output(px, &mut None, out, settings, &meta, scratch);
                    spent.encode += t.elapsed();
                    encoded.and_then(|bytes| {
                        write_output(ctx, job, out, &bytes, &mut spent)?;
                        Ok(bytes.len() as u64)
                    })
                }
            };
            done.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(result);
        }
    };
    let spent: Vec<Stages> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(work.len().max(1)))
            .map(|_| {
                let (run, job_scope) = (&run, &job_scope);
                scope.spawn(move || {
                    job_scope.enter();
                    run(&mut MakeScratch::default())
                })
            })
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
            Ok(bytes) => finished.wrote(out, sizes[size_index].output_size(), bytes),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes one encoded output (unless discarding); refuses if the watchdog gave up on the job.
fn write_output(
    ctx: &Context,
    job: &Job,
    out: &PlannedOutput,
    encoded: &[u8],
    stages: &mut Stages,
) -> Result<(), JobError> {
    if ctx.mode.discard {
        return Ok(());
    }
    if crate::pool::job_abandoned() {
        // The watchdog already reported this image as timed out: it must not appear now.
        return Err(JobError::TimedOut(Duration::ZERO));
    }
    let t = Instant::now();
    let target = encode::WriteTarget {
        dst: &out.dst,
        replace: out.existed,
        confine_to: ctx.out_root.as_deref(),
        keep_permissions_of: ctx.mode.in_place.then_some(job.src.as_path()),
    };
    encode::write_atomic(&target, encoded)?;
    stages.write += t.elapsed();
    Ok(())
}

/// Bytes an image holds at its peak: the input file, a progressive JPEG's coefficient buffer,
/// the decoded pixels (after any JPEG shrink-on-load, at the source's bytes per pixel) and the
/// resized outputs.
fn memory_estimate(
    header: &decode::Header,
    coefficients: u64,
    job: &Job,
    min_size: Option<(f64, f64)>,
    largest: (u32, u32),
    sizes: usize,
    linear: bool,
) -> u64 {
    let shrink = if job.input_format == Format::Jpeg {
        decode::jpeg_shrink(header.width, header.height, min_size) as u64
    } else {
        1
    };
    let decoded =
        u64::from(header.width).div_ceil(shrink) * u64::from(header.height).div_ceil(shrink);
    let output = u64::from(largest.0) * u64::from(largest.1);
    let bpp = u64::from(header.bytes_per_pixel.max(1));
    // `--linear` keeps a 16-bit copy of the decoded image (and 16-bit resized buffers).
    let linear = if linear { 2 * bpp.min(4) } else { 0 };
    job.bytes + coefficients + (bpp + linear) * (decoded + 2 * output * sizes.min(2) as u64)
}
