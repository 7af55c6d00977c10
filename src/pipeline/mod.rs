//! The per-image pipeline a worker runs: read → decode → resize → encode → write.
//!
//! [`process`] never panics on bad input and never returns early without a [`JobResult`]: every
//! job ends as written, skipped or failed, with the time spent in each stage.

pub mod avif;
pub mod color;
pub mod decode;
pub mod encode;
pub mod resize;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::budget::Budget;
use crate::config::Settings;
use crate::error::JobError;
use crate::format::Format;
use crate::geometry;
use crate::plan::Job;

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
        }
    }
}

/// Run-wide switches a worker needs besides the image settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// Replace outputs even when newer than the input.
    pub overwrite: bool,
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
    /// The canonical output folder: no write may land outside it (a symlink planted in the
    /// output tree is never written through). `None` in place or when nothing is written.
    pub out_root: Option<PathBuf>,
}

impl Context {
    /// A context with the given settings, the default mode, an unlimited budget, no confinement.
    pub fn new(settings: Settings) -> Context {
        Context {
            settings,
            mode: Mode::default(),
            budget: Budget::new(u64::MAX),
            out_root: None,
        }
    }
}

/// A worker's reusable state: codec handles, resizer buffers, the input read buffer.
#[derive(Default)]
pub struct Scratch {
    decode: decode::DecodeScratch,
    resize: resize::ResizeScratch,
    encode: encode::EncodeScratch,
    input: Vec<u8>,
}

/// Processes one job completely. Never panics on bad data; errors come back as data.
pub fn process(job: &Job, ctx: &Context, scratch: &mut Scratch) -> JobResult {
    let mut stages = Stages::default();
    let mut input_size = None;
    let outcome = run_stages(job, ctx, scratch, &mut stages, &mut input_size);
    // Keep the read buffer from pinning a huge allocation after one big file.
    if scratch.input.capacity() > 64 << 20 {
        scratch.input = Vec::new();
    }
    JobResult {
        src: job.src.clone(),
        bytes_in: job.bytes,
        pixels_in: input_size.map_or(0, |(w, h)| u64::from(w) * u64::from(h)),
        input_size,
        outcome,
        stages,
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn run_stages(
    job: &Job,
    ctx: &Context,
    scratch: &mut Scratch,
    stages: &mut Stages,
    input_size: &mut Option<(u32, u32)>,
) -> Result<Outcome, JobError> {
    let (settings, mode) = (&ctx.settings, ctx.mode);
    let dst_exists = fs::symlink_metadata(&job.dst).is_ok();
    if dst_exists && !mode.in_place {
        if same_file::is_same_file(&job.src, &job.dst).unwrap_or(false) {
            return Err(JobError::Conflict(format!(
                "output {} is the input itself; refusing to overwrite it",
                job.dst.display()
            )));
        }
        if !mode.overwrite {
            if let (Some(src_t), Some(dst_t)) = (mtime(&job.src), mtime(&job.dst)) {
                if dst_t >= src_t {
                    return Ok(Outcome::Skipped(SkipReason::UpToDate));
                }
            }
        }
    }

    let t = Instant::now();
    scratch.input.clear();
    fs::File::open(&job.src)
        .and_then(|mut f| f.read_to_end(&mut scratch.input))
        .map_err(|e| JobError::io("cannot read file", e))?;
    let bytes = &scratch.input[..];
    stages.read = t.elapsed();

    let t = Instant::now();
    let mut probe = decode::probe(
        bytes,
        job.input_format,
        settings.max_pixels,
        &mut scratch.decode,
    )?;
    // What the later stages need from the header; the probe itself goes to the decoder.
    let header = &probe.header;
    let (stored_w, stored_h, orientation) = (header.width, header.height, header.orientation);
    *input_size = Some(header.displayed_size());
    let shown = geometry::plan(header.displayed_size(), &settings.target);
    // Work in stored orientation until the very end: rotating the small output is cheap.
    let stored = if header.is_transposed() {
        shown.transposed()
    } else {
        shown
    };
    let (out_w, out_h) = shown.output_size();
    if mode.in_place && (out_w, out_h) == header.displayed_size() && orientation <= 1 {
        stages.decode = t.elapsed();
        return Ok(Outcome::Skipped(SkipReason::AlreadyFits));
    }
    let output = |bytes: u64| Output {
        path: job.dst.clone(),
        width: out_w,
        height: out_h,
        format: job.output_format,
        bytes,
    };
    if mode.dry_run {
        stages.decode = t.elapsed();
        return Ok(Outcome::Planned(vec![output(0)]));
    }

    let min_size = settings.shrink.margin().map(|k| {
        // The decoded crop must stay `k` times as large as the resampled size, so that Lanczos
        // (not the IDCT's block averaging) does the final part of the reduction.
        let sx = stored.crop.width / f64::from(stored_w);
        let sy = stored.crop.height / f64::from(stored_h);
        (
            k * f64::from(stored.size.0) / sx,
            k * f64::from(stored.size.1) / sy,
        )
    });
    // Hold the decoded image's share of the memory budget until the job ends.
    let _memory = ctx.budget.reserve(memory_estimate(
        &probe.header,
        job,
        min_size,
        (out_w, out_h),
    ));
    let icc = probe.header.icc.take();
    let px = decode::decode_probed(
        bytes,
        job.input_format,
        probe,
        min_size,
        &mut scratch.decode,
    )?;
    stages.decode = t.elapsed();

    let t = Instant::now();
    // The decoder may have shrunk the image: scale the crop to the decoded size.
    let fx = f64::from(px.width) / f64::from(stored_w);
    let fy = f64::from(px.height) / f64::from(stored_h);
    let crop = geometry::Rect {
        left: stored.crop.left * fx,
        top: stored.crop.top * fy,
        width: (stored.crop.width * fx).min(f64::from(px.width)),
        height: (stored.crop.height * fy).min(f64::from(px.height)),
    };
    let mut px = resize::resize(px, crop, stored.size, settings.filter, &mut scratch.resize)?;
    if let Some(canvas) = stored.canvas {
        px = resize::pad(px, canvas, settings.background);
    }
    if !job.output_format.has_alpha() {
        px = resize::flatten(px, settings.background);
    }
    let px = resize::orient(px, orientation);
    stages.resize = t.elapsed();

    let t = Instant::now();
    let encoded = encode::encode(
        &px,
        job.output_format,
        settings,
        icc.as_deref(),
        &mut scratch.encode,
    )?;
    stages.encode = t.elapsed();

    if !mode.discard {
        if crate::pool::job_abandoned() {
            // The watchdog already reported this image as timed out: it must not appear now.
            return Err(JobError::TimedOut(Duration::ZERO));
        }
        let t = Instant::now();
        let target = encode::WriteTarget {
            dst: &job.dst,
            replace: dst_exists,
            confine_to: ctx.out_root.as_deref(),
            keep_permissions_of: mode.in_place.then_some(job.src.as_path()),
        };
        encode::write_atomic(&target, &encoded)?;
        stages.write = t.elapsed();
    }
    let out_size = (px.width, px.height);
    debug_assert_eq!(out_size, (out_w, out_h));
    Ok(Outcome::Written(vec![Output {
        width: px.width,
        height: px.height,
        ..output(encoded.len() as u64)
    }]))
}

/// Bytes an image holds at its peak: the input file, the decoded pixels (after any JPEG
/// shrink-on-load) and the resized output, counted at 4 bytes per pixel.
fn memory_estimate(
    header: &decode::Header,
    job: &Job,
    min_size: Option<(f64, f64)>,
    out: (u32, u32),
) -> u64 {
    let shrink = if job.input_format == Format::Jpeg {
        decode::jpeg_shrink(header.width, header.height, min_size) as u64
    } else {
        1
    };
    let decoded =
        u64::from(header.width).div_ceil(shrink) * u64::from(header.height).div_ceil(shrink);
    let output = u64::from(out.0) * u64::from(out.1);
    job.bytes + 4 * (decoded + 2 * output)
}
