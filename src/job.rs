//! The types that cross the pool's channels: an [`ImageJob`] goes from the walker to a worker,
//! a [`JobResult`] from the worker (or the walker, for a failure it found) to the consumer.
//!
//! A leaf module: every stage imports it and it imports no stage, which is what keeps the
//! module graph free of cycles.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::JobError;
use crate::format::Format;
use crate::manifest::SourceEntry;

/// One unit of work: resize `src` into every output the settings ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageJob {
    /// The input file.
    pub src: PathBuf,
    /// Its path relative to the input root it was found under: mirrored below the output
    /// folder, the manifest's key and the shard key. For a file named on the command line, its
    /// file name.
    pub rel: PathBuf,
    /// The input's format, sniffed from its content.
    pub input_format: Format,
    /// The input's size in bytes when it was found (for ordering and the summary).
    pub bytes: u64,
    /// Which job of a build file this image belongs to (its index); 0 for a single run.
    pub group: usize,
}

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
    /// Bytes the lossless PNG recompression (oxipng, `--effort png`) took off; 0 for other
    /// formats.
    pub saved: u64,
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
    /// The damage the input was decoded through (`--fail-on`), for a warning on stderr.
    pub warning: Option<String>,
    /// The [`ImageJob::group`] of the image (0 for a failure of a single run's walk).
    pub group: usize,
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
            warning: None,
            group: 0,
        }
    }
}
