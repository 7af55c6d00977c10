//! Error types, split the way the run treats them.
//!
//! `ConfigError` is fatal and stops the run before any worker starts; `JobError` belongs to one
//! input file, travels over the results channel as data inside a [`Failure`], and never stops the
//! run. The classification mirrors `image::ImageError` so the summary can group failures by kind.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A per-file failure: the only way a worker reports that one input could not be processed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Reading the input or writing the output failed at the file-system level.
    #[error("{context}: {source}")]
    Io {
        /// What presize was doing, e.g. "cannot read file".
        context: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file looks like an image but its data is corrupt or truncated.
    #[error("cannot decode {format}: {message}")]
    Decode {
        /// The detected container format, e.g. "JPEG".
        format: &'static str,
        /// The decoder's own words.
        message: String,
    },
    /// The file promises an image (by its name) but is empty or holds something else.
    #[error("{0}")]
    Unrecognised(String),
    /// The image is valid but uses a feature presize cannot handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The image declares more pixels than allowed (decompression-bomb guard).
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {limit} (raise it with --max-pixels)")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// width × height.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Resizing failed (should not happen for valid sizes; kept as data, never a panic).
    #[error("cannot resize: {0}")]
    Resize(String),
    /// Encoding the output failed.
    #[error("cannot encode {format}: {message}")]
    Encode {
        /// The output format, e.g. "WebP".
        format: &'static str,
        /// The encoder's own words.
        message: String,
    },
    /// Writing would lose data: the output is an input, or another input already claimed it.
    #[error("{0}")]
    Conflict(String),
    /// The image took longer than --image-timeout; its worker was replaced.
    #[error(
        "timed out after {0:?} (--image-timeout); the image was abandoned, nothing was written"
    )]
    TimedOut(std::time::Duration),
    /// The pool's watchdog gave up on the job (already reported as [`JobError::TimedOut`]), so
    /// the job stopped before writing. Never shown: the pool discards an abandoned job's result.
    #[error("abandoned after the time limit; nothing was written")]
    Abandoned,
    /// The decoder process ended while it decoded this image (`--isolate`): a crash inside a
    /// decoder, or the sandbox stopping it. The worker started a new one and carried on.
    #[error("decoder crashed ({0})")]
    DecoderCrashed(String),
    /// The decoder or encoder panicked; the worker survived and carried on.
    #[error("internal error (panic) while processing: {0}")]
    Panicked(String),
}

impl JobError {
    /// Wraps an I/O error with what presize was doing when it happened.
    pub fn io(context: &'static str, source: io::Error) -> Self {
        JobError::Io { context, source }
    }

    /// A short, stable name of the error class, used to group failures in the summary and in
    /// `--json` output.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Io { .. } => ErrorKind::Io,
            JobError::Decode { .. } => ErrorKind::Decode,
            JobError::Unsupported(_) => ErrorKind::Unsupported,
            JobError::Unrecognised(_) => ErrorKind::Unrecognised,
            JobError::TooLarge { .. } => ErrorKind::TooLarge,
            JobError::Resize(_) | JobError::Panicked(_) => ErrorKind::Internal,
            JobError::Encode { .. } => ErrorKind::Encode,
            JobError::Conflict(_) => ErrorKind::Conflict,
            JobError::TimedOut(_) | JobError::Abandoned => ErrorKind::TimedOut,
            JobError::DecoderCrashed(_) => ErrorKind::Crashed,
        }
    }
}

/// The class of a [`JobError`], for grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// File-system error.
    Io,
    /// Corrupt or truncated image data.
    Decode,
    /// Valid but unsupported image.
    Unsupported,
    /// Empty or mislabelled file.
    Unrecognised,
    /// Over the pixel limit.
    TooLarge,
    /// Output encoding failed.
    Encode,
    /// Output would overwrite an input or another output.
    Conflict,
    /// Over --image-timeout.
    TimedOut,
    /// A bug inside presize or a codec.
    Internal,
    /// A decoder process died (`--isolate`).
    Crashed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Io => "file-system errors",
            ErrorKind::Decode => "corrupt or truncated images",
            ErrorKind::Unsupported => "unsupported images",
            ErrorKind::Unrecognised => "empty or mislabelled files",
            ErrorKind::TooLarge => "images over the pixel limit",
            ErrorKind::Encode => "encoding errors",
            ErrorKind::Conflict => "output conflicts",
            ErrorKind::TimedOut => "images over the time limit",
            ErrorKind::Internal => "internal errors",
            ErrorKind::Crashed => "decoder crashes",
        })
    }
}

/// One input that failed, with its path attached once, here.
#[derive(Debug)]
pub struct Failure {
    /// The input file (or folder, for walk errors).
    pub path: PathBuf,
    /// What went wrong.
    pub error: JobError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// A fatal configuration problem, found before any work starts. The text names the flag and the
/// fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a width, a height nor a size was given.
    #[error("no target size: give --width, --height or --size (e.g. -w 800)")]
    NoSize,
    /// --size together with --width/--height.
    #[error("--size cannot be combined with --width or --height; use one or the other")]
    SizeConflict,
    /// A zero or absurd dimension.
    #[error("invalid size {0}: dimensions must be between 1 and 65535 pixels, percentages between 0 and 1000")]
    BadSize(String),
    /// --fit cover/fill/contain need both dimensions.
    #[error("--fit {0} needs both a width and a height (e.g. -s 800x600)")]
    FitNeedsBox(&'static str),
    /// --out-dir was not given.
    #[error("no output folder: give -o/--out-dir DIR (inputs are never overwritten)")]
    NoOutDir,
    /// The output folder is one of the input folders.
    #[error("--out-dir {0} is an input folder; outputs would be mixed with inputs, choose another folder")]
    OutDirIsInput(PathBuf),
    /// An input does not exist.
    #[error("input {0} does not exist")]
    MissingInput(PathBuf),
    /// --in-place together with --out-dir.
    #[error("--in-place replaces the inputs; it cannot be combined with --out-dir")]
    InPlaceWithOutDir,
    /// --in-place with a format change would leave a file whose name lies about its content.
    #[error("--in-place keeps each file's format; it cannot be combined with --format")]
    InPlaceFormat,
    /// -w and -H lists of different lengths.
    #[error("--width has {0} values and --height {1}: give one of them a single value, or both the same number")]
    SizeLists(usize, usize),
    /// An empty list of output formats (the library API; the flag defaults to "same").
    #[error("no output format: give --format (e.g. -f webp), or \"same\" to keep each input's")]
    NoFormat,
    /// --effort out of range.
    #[error("--effort must be between 0 and 10")]
    BadEffort,
    /// --name could not be used.
    #[error("--name: {0}")]
    BadName(String),
    /// --shard could not be used.
    #[error("--shard: {0}")]
    BadShard(String),
    /// --files-from could not be read.
    #[error("--files-from {0}")]
    FilesFrom(String),
    /// --in-place with several sizes would write them all over one file.
    #[error("--in-place keeps one file per input: give a single size")]
    InPlaceSizes,
    /// --crop or --focal without --fit cover, where there is no window to place.
    #[error("--crop and --focal place the window of --fit cover; add --fit cover (and a box, e.g. -s 400x400)")]
    CropNeedsCover,
    /// --quality out of range.
    #[error("--quality must be between 1 and 100, got {0}")]
    BadQuality(u8),
    /// --placeholder values live in the manifest.
    #[error("--placeholder stores its values in the manifest: add --manifest FILE.json")]
    PlaceholderNeedsManifest,
    /// --quality auto=SCORE out of range.
    #[error("--quality auto=SCORE: the SSIMULACRA2 score must be between 10 and 95 (70 is high quality, 90 visually lossless), got {0}")]
    BadScore(String),
    /// --quality auto with AVIF output in a build without libheif (nothing decodes the
    /// candidates to score them).
    #[error("--quality auto cannot score AVIF outputs in this build (built without the heif feature): give AVIF a fixed quality or rebuild with libheif")]
    AutoNeedsHeif,
}
