//! The command-line surface: clap derive types and the small value types they parse into.
//!
//! No policy lives here: defaults that need reasoning and every cross-flag check are made once in
//! `config.rs`. The `///` doc on each field is the `--help` text users read.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::format::Format;
use crate::geometry::Dim;

pub(crate) const EXAMPLES: &str = "\
Examples:
  Shrink a photo folder to 1600 px wide, mirroring sub-folders:
    presize ~/Pictures/2024 -o ~/Pictures/2024-small -w 1600

  Thumbnails that fit inside 400x400, as WebP:
    presize photos -o thumbs -s 400x400 -f webp

  Square 256 px avatars, cropped from the centre:
    presize faces -o avatars -s 256x256 --fit cover

  Half size, two worker threads, machine-readable report:
    presize scans -o half -s 50% -j 2 --json > report.ndjson

  See what would be written without writing anything:
    presize photos -o out -w 800 --dry-run

  Web assets: 3 widths x 3 formats from one decode, a manifest with srcsets, incremental:
    presize src -o img -w 320,640,1280 -f avif,webp,jpeg --manifest img.json --strip

  Only the files git tracks, split over 4 machines (this is machine 2):
    git ls-files -z '*.jpg' | presize --files-from - -0 -o out -w 800 --shard 2/4

  Replace originals with smaller versions; drop GPS positions:
    presize ~/Uploads --in-place -w 2048 --strip-gps

  Square thumbnails that keep the subject, not just the centre:
    presize photos -o thumbs -s 256x256 --fit cover --crop attention

  Every output at one perceptual quality, and none over 200 KB:
    presize photos -o web -w 1280 -f webp -Q auto --max-bytes 200K

  Files, placeholders and <picture> markup for a site, in one run:
    presize src -o img -w 400,800 -f avif,webp,jpeg --manifest img.json --placeholder lqip,color --html pictures.html --html-prefix /img

  A site's whole image step from presize.toml, redone on every change:
    presize build --watch

Exit codes:
  0    every input was written or skipped
  1    at least one input failed (each one is named on stderr)
  2    usage or fatal error (bad flag, unreadable input, cannot create the output folder)
  124  --timeout reached; finished outputs are complete, the rest was not processed
  130  interrupted (Ctrl-C or SIGTERM); finished outputs are complete, nothing partial is left";

const SHORT_FOOTER: &str =
    "Exit codes: 0 ok, 1 some files failed, 2 usage/fatal error, 124 --timeout, 130 interrupted.\n\
Use --help for examples.";

/// Resize every image under the given files and folders, on all cores, without ever losing a file.
///
/// Images are recognised by their content, not their extension. Folder structure below each input
/// folder is mirrored into --out-dir. EXIF orientation is applied, images are never enlarged
/// unless --upscale is given, and every output is written to a temporary file and renamed into
/// place only when complete.
#[derive(Debug, Parser)]
#[command(name = "presize", version, after_help = SHORT_FOOTER, after_long_help = EXAMPLES)]
#[command(
    max_term_width = 100,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Extra modes (the default mode resizes the INPUTs).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Image files and/or folders (folders are walked recursively).
    #[arg(required_unless_present = "files_from", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Folder the outputs go to; sub-folders of each input folder are mirrored below it.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    #[command(flatten)]
    pub image: ImageArgs,

    /// Worker threads [default: number of CPUs].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<NonZeroUsize>,

    /// Replace outputs that already exist (default: an existing output newer than its input is
    /// skipped; an older one is regenerated).
    #[arg(long)]
    pub overwrite: bool,

    /// Plan and report what would be written; decode and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// After the run, write a self-contained HTML page: contact sheet of the outputs, sizes
    /// before and after, failures, settings and timing. Opens straight from disk.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// Print a machine-readable report on stdout: one JSON line per input, then a summary line.
    #[arg(long)]
    pub json: bool,

    /// Print nothing but errors.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also list every written and skipped file, and the files that were not images.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Colour on stderr: auto (terminal and no NO_COLOR), always or never.
    #[arg(long, value_enum, default_value_t = WhenArg::Auto, value_name = "WHEN")]
    pub color: WhenArg,

    /// Show a progress bar: auto (only when stderr is a terminal), always or never.
    #[arg(long, value_enum, default_value_t = WhenArg::Auto, value_name = "WHEN")]
    pub progress: WhenArg,

    /// Replace each input with its resized version (no --out-dir). The new file is written
    /// beside the original and renamed over it only when complete, keeping its permissions;
    /// images already within the target size are left untouched.
    #[arg(long, conflicts_with_all = ["out_dir", "report"])]
    pub in_place: bool,

    /// Do not wait for outputs (and the manifest) to reach the disk: faster on slow disks and
    /// for scratch builds, but after a power cut an output may be empty or partial under its
    /// final name. Not with --in-place, whose originals are only ever replaced by synced files.
    #[arg(long, conflicts_with = "in_place")]
    pub no_sync: bool,

    /// Follow symbolic links to folders while walking (loops are detected and reported).
    /// Links to files are always followed.
    #[arg(short = 'L', long)]
    pub follow_links: bool,

    /// Stop the whole run after this long (e.g. 90, 90s, 5m): images in progress finish, the rest
    /// is counted as not processed, exit code 124.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationArg>,

    /// Give up on a single image after this long (e.g. 30s): it fails with "timed out" and a
    /// fresh worker takes over. A decoder cannot be interrupted, so the stuck thread is abandoned
    /// (its result is discarded and it never writes); the run does not wait for it.
    #[arg(long, value_name = "DURATION")]
    pub image_timeout: Option<DurationArg>,

    /// Output file names below --out-dir: placeholders {stem} {ext} {width} {height} {format}
    /// {hash} (8 hex digits of the source's content hash) {dir} (the source's folder, mirrored
    /// in front when not used). Default: {stem}.{ext}, or {stem}-{width}w.{ext} with several
    /// sizes.
    #[arg(long, value_name = "TEMPLATE")]
    pub name: Option<String>,

    /// Write a JSON manifest of every source and its outputs (sizes, bytes, srcset per format),
    /// and use the previous one to skip sources whose content, options and outputs are unchanged.
    #[arg(long, value_name = "FILE.json")]
    pub manifest: Option<PathBuf>,

    /// After the run, write the <picture> markup of the manifest to this file (what `presize
    /// manifest html` prints), so one run, or `presize build`, makes the files, the manifest and
    /// the markup; written again after every run, --watch included.
    #[arg(long, value_name = "FILE.html", requires = "manifest")]
    pub html: Option<PathBuf>,

    /// With --html: put in front of every output path to make its URL (e.g. /img).
    #[arg(long, value_name = "URL", requires = "html")]
    pub html_prefix: Option<String>,

    /// With --html: the sizes attribute, how wide the image is shown [default: 100vw].
    #[arg(long, value_name = "SIZES", requires = "html")]
    pub html_sizes: Option<String>,

    /// Redo every output, ignoring the manifest and existing files.
    #[arg(long)]
    pub force: bool,

    /// With --manifest: delete the outputs the previous manifest lists for sources that are no
    /// longer there (within this run's inputs and shard).
    #[arg(long, requires = "manifest")]
    pub prune: bool,

    /// After the first run, watch the inputs and redo what changes, 200 ms after the last
    /// change (needs --manifest, whose rules decide what is redone; with --prune, a deleted
    /// source's outputs go too). Ctrl-C ends it with exit code 130.
    #[arg(long, requires = "manifest")]
    pub watch: bool,
    /// Give each output its source's modification time (photo apps sort by it). Without
    /// --manifest, an output as new as its source counts as up to date, so reruns still skip it.
    #[arg(long)]
    pub keep_mtime: bool,

    /// Read the source list from FILE (or - for stdin), one path per line; relative paths are
    /// mirrored below --out-dir as given.
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,

    /// With --files-from: paths are NUL-separated (find -print0, git ls-files -z).
    #[arg(short = '0', long, requires = "files_from")]
    pub null: bool,

    /// Process only shard K of N (1-based, e.g. 2/8), split by a stable hash of each source's
    /// relative path; "auto" reads the index from Kubernetes (JOB_COMPLETION_INDEX), Slurm
    /// (SLURM_ARRAY_TASK_ID) or GNU parallel (PARALLEL_SEQ).
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,

    /// The number of shards for --shard auto where the scheduler does not say (Kubernetes,
    /// GNU parallel).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<u32>,

    /// Memory budget shared by all workers for decoded images (e.g. 4G, 512M, 25% of RAM)
    /// [default: 50% of physical memory]. A worker reserves its image's decoded size before
    /// decoding and waits while the budget is exhausted; an image larger than the whole budget
    /// still runs, alone.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<MemoryArg>,
}

/// How each image is resized and encoded; shared by the default mode and `presize bench`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Target width in pixels, or a percentage of the source width (e.g. 800 or 50%). A list
    /// (320,640,1280) makes one output per width from a single decode.
    #[arg(short = 'w', long, value_name = "PX,…", value_delimiter = ',')]
    pub width: Vec<Dim>,

    /// Target height in pixels, or a percentage of the source height (a list like --width; with
    /// both lists, they pair up in order).
    #[arg(short = 'H', long, value_name = "PX,…", value_delimiter = ',')]
    pub height: Vec<Dim>,

    /// Target geometry: 800 (width) | 800x600 (box) | 800x | x600 | 50%; a list makes one output
    /// per size.
    #[arg(short = 's', long, value_name = "SPEC,…", value_delimiter = ',')]
    pub size: Vec<SizeSpec>,

    /// How the image is fitted to a WxH box.
    #[arg(long, value_enum, default_value_t = FitArg::Inside, value_name = "MODE")]
    pub fit: FitArg,

    /// With --fit cover, where the crop window goes: centre, attention (the region that draws
    /// the eye: saturated colour, skin tones, edges) or entropy (the most detailed region). The
    /// analysis runs on a copy of at most 256 px.
    #[arg(long, value_enum, default_value_t = CropArg::Centre, value_name = "MODE")]
    pub crop: CropArg,

    /// With --fit cover, the subject's position as fractions of the width and height (e.g.
    /// 0.3,0.6): the crop window is centred on it as far as the edges allow.
    #[arg(long, value_name = "X,Y", conflicts_with = "crop")]
    pub focal: Option<FocalArg>,

    /// Colour used to flatten transparency (JPEG output) and to pad with --fit contain:
    /// a name (white, black) or hex RGB (#ff8800).
    #[arg(long, default_value = "white", value_name = "COLOR")]
    pub background: Color,

    /// Allow enlarging images smaller than the target (default: never enlarge).
    #[arg(long)]
    pub upscale: bool,

    /// Output format; "same" keeps each input's format. A list (avif,webp,jpeg) writes every
    /// format of every size.
    #[arg(
        short = 'f',
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "same",
        value_name = "FMT,…"
    )]
    pub format: Vec<FormatArg>,

    /// Lossy quality, 1-100: one number for every format, or per format (webp=75,avif=45).
    /// Defaults: jpeg 78, webp 78, avif 55 (chosen by bytes per SSIMULACRA2 point). `auto[=SCORE]`
    /// searches each JPEG, WebP and AVIF output for the lowest quality whose SSIMULACRA2 score
    /// (90 visually lossless, 70 high, 50 medium) reaches SCORE, default 70: at most 4 encodes.
    #[arg(short = 'Q', long, value_name = "Q|FMT=Q,…|auto[=SCORE]")]
    pub quality: Option<QualityArg>,

    /// Largest size of each lossy output (JPEG, WebP, AVIF), e.g. 200K: the highest quality (up
    /// to --quality) that fits; when none fits, the smallest output and a warning naming it.
    #[arg(long, value_name = "SIZE")]
    pub max_bytes: Option<ByteSize>,

    /// Encoder effort, 0-10 (higher is slower and smaller), per format: avif=4,webp=6,png=3.
    /// Defaults: avif 4 (libaom speed 6), webp 4 (libwebp method 4), png 1 (lossless oxipng
    /// preset 0; png=0 turns oxipng off).
    #[arg(long, value_name = "FMT=N,…")]
    pub effort: Option<PerFormat>,

    /// Write progressive JPEGs (the default: smaller, and they render early on the web).
    #[arg(long, overrides_with = "baseline")]
    pub progressive: bool,

    /// Write baseline (sequential) JPEGs instead of progressive ones.
    #[arg(long, overrides_with = "progressive")]
    pub baseline: bool,

    /// Write lossless WebP instead of lossy (ignored for other formats).
    #[arg(long)]
    pub lossless: bool,

    /// Resampling filter.
    #[arg(long, value_enum, default_value_t = Filter::Lanczos3, value_name = "F")]
    pub filter: Filter,

    /// Decode JPEGs at full resolution. By default the decoder shrinks by 1/2, 1/4 or 1/8 while
    /// keeping at least twice the target size, which loses about 1 dB against a full decode and
    /// is 1.5-2x as fast.
    #[arg(long, conflicts_with = "fast")]
    pub no_fast_shrink: bool,

    /// Let the JPEG decoder shrink all the way down to the target size: about 20 % faster,
    /// slightly softer and more aliased (fine for small thumbnails).
    #[arg(long)]
    pub fast: bool,

    /// Refuse images with more pixels than this before decoding them (decompression bombs).
    #[arg(long, default_value_t = 268_402_689, value_name = "N")]
    pub max_pixels: u64,

    /// Colour profile: keep (embed the source's profile unchanged), srgb (convert the pixels to
    /// sRGB and embed a compact sRGB profile) or strip (drop it; pixels unchanged).
    #[arg(long, value_enum, default_value_t = IccArg::Keep, value_name = "MODE")]
    pub icc: IccArg,

    /// Drop all metadata (EXIF, XMP) except the colour profile --icc asks for. By default EXIF
    /// (camera, date taken) and XMP are kept, with the orientation reset and the size updated.
    #[arg(long)]
    pub strip: bool,

    /// Drop only the location (EXIF GPS, XMP exif:GPS*) and keep the rest.
    #[arg(long, conflicts_with = "strip")]
    pub strip_gps: bool,

    /// Print resolution of the outputs: keep (the source's, unchanged), scale (the source's,
    /// scaled with the image so it prints at the same size) or a number of dots per inch
    /// (e.g. 300). Written to JPEG (JFIF and EXIF), PNG, TIFF and BMP.
    #[arg(long, default_value = "keep", value_name = "keep|scale|N")]
    pub dpi: DpiArg,

    /// Resample in linear light (16-bit, Lanczos3): fine detail and edges keep their brightness
    /// (alternating black and white lines become 50 % grey, not darker). Costs more CPU.
    #[arg(long)]
    pub linear: bool,

    /// Resize every frame of animated GIF, WebP and APNG inputs, keeping frame delays and the
    /// loop count (GIF and WebP outputs). Without it, the first frame is used.
    #[arg(long)]
    pub animated: bool,

    /// With --manifest: placeholders to compute per source and store in it, any of thumbhash,
    /// blurhash, color (the dominant colour, #rrggbb) and lqip (a blurred WebP of at most 32 px,
    /// as a data: URL). Computed from the pixels already decoded for the outputs.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND,…")]
    pub placeholder: Vec<PlaceholderKind>,

    /// Which damage fails an input, as in libvips and sharp: none (keep whatever decoded; a
    /// truncated file is grey or black where its data ends), truncated (fail on truncated
    /// files only), error (fail on truncation and errors; accept what the decoder only warns
    /// about) or warning (fail on anything suspicious). Default: warning, which is how presize
    /// has always treated damaged files. An input decoded despite damage is named on stderr
    /// with a warning, and its outputs are written as usual.
    #[arg(long, value_enum, default_value_t = FailOnArg::Warning, value_name = "LEVEL")]
    pub fail_on: FailOnArg,

    /// Decode in a separate process per worker, confined on Linux by a seccomp filter (no file
    /// can be opened, no program started, no network reached): a decoder that crashes on a
    /// hostile file costs that file only ("decoder crashed (signal 11)"), and the run goes on.
    #[arg(long)]
    pub isolate: bool,
}

/// `--fail-on` values, from the most lenient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    /// Never fail on damage: keep what decoded.
    None,
    /// Fail on truncated data only.
    Truncated,
    /// Fail on truncation and decode errors.
    Error,
    /// Fail on anything suspicious, warnings included.
    Warning,
}

/// A placeholder kind (`--placeholder`): the CLI's values and the setting itself, one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum PlaceholderKind {
    /// ThumbHash (about 25 bytes, base64; keeps the aspect ratio and alpha).
    Thumbhash,
    /// BlurHash (a short string; 4 × 3 components).
    Blurhash,
    /// The dominant colour as #rrggbb.
    Color,
    /// A tiny blurred WebP as a data: URL.
    Lqip,
}

impl PlaceholderKind {
    /// Every kind, in the order the manifest lists them.
    pub const ALL: [PlaceholderKind; 4] = [
        PlaceholderKind::Thumbhash,
        PlaceholderKind::Blurhash,
        PlaceholderKind::Color,
        PlaceholderKind::Lqip,
    ];

    /// The name used on the command line and as the manifest's key.
    pub fn name(self) -> &'static str {
        match self {
            PlaceholderKind::Thumbhash => "thumbhash",
            PlaceholderKind::Blurhash => "blurhash",
            PlaceholderKind::Color => "color",
            PlaceholderKind::Lqip => "lqip",
        }
    }
}

/// `--icc` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IccArg {
    /// Carry the source's profile into the output unchanged.
    Keep,
    /// Convert pixels to sRGB; embed a compact sRGB profile.
    Srgb,
    /// Drop the profile.
    Strip,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure the real pipeline on a folder at several worker counts (writes nothing unless
    /// --write): images/s, megapixels/s, speed-up, parallel efficiency, time per stage and
    /// per-image latency.
    #[command(
        after_help = "Example:\n  presize bench ~/photos -w 800 --jobs 1,2,4 --repeat 3\n\n\
                           A folder literally named 'bench' is given as ./bench in the default mode."
    )]
    Bench(Box<BenchArgs>),
    /// Run every `[[job]]` of a build file (presize.toml) in one pool: one set of workers, one
    /// summary, a manifest per job. A job's keys are the long flags of the default mode.
    #[command(after_help = "Example presize.toml:\n  \
                            width = [320, 640, 1280]      # top-level keys apply to every job\n  \
                            [[job]]\n  \
                            input = \"photos\"\n  \
                            out_dir = \"site/img\"\n  \
                            format = [\"avif\", \"webp\", \"jpeg\"]\n  \
                            manifest = \"site/img/manifest.json\"\n\n\
                            Paths are relative to the build file's folder.")]
    Build(BuildArgs),
    /// Work with build manifests (--manifest).
    Manifest {
        /// What to do.
        #[command(subcommand)]
        action: ManifestAction,
    },
    /// Print a shell completion script, e.g. `presize completions bash > /etc/bash_completion.d/presize`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `presize man > /usr/local/share/man/man1/presize.1`.
    Man,
}

/// `presize build` arguments.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build file.
    #[arg(long, value_name = "FILE", default_value = "presize.toml")]
    pub config: PathBuf,

    /// After the first run, watch every job's inputs and redo what changes (as --watch; every
    /// job needs a manifest).
    #[arg(long)]
    pub watch: bool,
}

/// `presize manifest` actions.
#[derive(Debug, Subcommand)]
pub enum ManifestAction {
    /// Join the manifests written by the shards of one build (--shard) into one; refuses parts
    /// made with different options or recording one source differently.
    #[command(
        after_help = "Example:\n  presize manifest merge m-1.json m-2.json m-3.json -o manifest.json"
    )]
    Merge {
        /// The shards' manifests.
        #[arg(required = true, value_name = "MANIFEST")]
        parts: Vec<PathBuf>,
        /// Where to write the merged manifest.
        #[arg(short = 'o', long, value_name = "FILE.json")]
        output: PathBuf,
    },
    /// Print one <picture> per source of a manifest: a <source> per format with its srcset, an
    /// <img> in the fallback format (JPEG, else PNG) with width and height, loading="lazy",
    /// decoding="async", an empty alt for you to fill, and the placeholder (--placeholder
    /// color or lqip) as its background.
    #[command(
        after_help = "Example:\n  presize manifest html img.json --sizes \"(min-width: 800px) 50vw, 100vw\" --prefix /img"
    )]
    Html {
        /// The manifest a build wrote (--manifest).
        #[arg(value_name = "MANIFEST")]
        manifest: PathBuf,
        /// The sizes attribute: how wide the image is shown, per media condition.
        #[arg(long, default_value = DEFAULT_SIZES, value_name = "SIZES")]
        sizes: String,
        /// Density descriptors instead of widths (e.g. 1x,2x): the 1x image is the source's
        /// narrowest output, and Nx the narrowest at least N times as wide (make widths to
        /// match, e.g. -w 400,800).
        #[arg(
            long,
            value_delimiter = ',',
            value_name = "Nx,…",
            conflicts_with = "sizes"
        )]
        density: Vec<Density>,
        /// Put in front of every output path to make its URL (e.g. /img or
        /// https://cdn.example/img); paths in the manifest are relative to the output folder.
        #[arg(long, value_name = "URL")]
        prefix: Option<String>,
    },
}

/// `presize bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image files and/or folders to measure on.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub image: ImageArgs,

    /// Worker counts to measure, comma-separated [default: 1, 2, 4, … up to the number of CPUs].
    #[arg(
        long = "jobs",
        short = 'j',
        value_delimiter = ',',
        value_name = "N,N,…"
    )]
    pub jobs: Vec<NonZeroUsize>,

    /// Runs per worker count; the median run is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeat: usize,

    /// Also write the outputs (to a temporary folder, deleted afterwards).
    #[arg(long)]
    pub write: bool,

    /// Print one JSON object per worker count instead of the table.
    #[arg(long)]
    pub json: bool,

    /// After the benchmark, write a self-contained HTML page with throughput, efficiency and stage-time charts.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

/// The `sizes` attribute of `presize manifest html` when none is given: the image spans the
/// viewport, as browsers assume.
pub(crate) const DEFAULT_SIZES: &str = "100vw";

/// A pixel-density descriptor of `--density` (`1x`, `1.5x`, `2x`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Density(pub f64);

impl FromStr for Density {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let number = t.strip_suffix(['x', 'X']).unwrap_or(t);
        match number.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 10.0 => Ok(Density(v)),
            _ => Err(format!(
                "{s:?} is not a pixel density; use 1x, 1.5x, 2x (at most 10x)"
            )),
        }
    }
}

/// A `--size` geometry: `800`, `800x600`, `800x`, `x600` or `50%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeSpec {
    /// Width part, if any.
    pub width: Option<Dim>,
    /// Height part, if any.
    pub height: Option<Dim>,
}

impl FromStr for SizeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("'{s}' is not a geometry; use 800, 800x600, 800x, x600 or 50%");
        if let Some(pct) = s.strip_suffix('%').filter(|_| !s.contains(['x', 'X'])) {
            let d: Dim = format!("{pct}%").parse()?;
            return Ok(SizeSpec {
                width: Some(d),
                height: Some(d),
            });
        }
        let (w, h) = match s.split_once(['x', 'X']) {
            Some((w, h)) => (w.trim(), h.trim()),
            None => (s, ""),
        };
        let width = if w.is_empty() {
            None
        } else {
            Some(w.parse().map_err(|_| bad())?)
        };
        let height = if h.is_empty() {
            None
        } else {
            Some(h.parse().map_err(|_| bad())?)
        };
        if width.is_none() && height.is_none() {
            return Err(bad());
        }
        Ok(SizeSpec { width, height })
    }
}

/// An sRGB colour given as a name or `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub [u8; 3]);

impl FromStr for Color {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "white" => return Ok(Color([255, 255, 255])),
            "black" => return Ok(Color([0, 0, 0])),
            "gray" | "grey" => return Ok(Color([128, 128, 128])),
            _ => {}
        }
        let hex = s.trim().trim_start_matches('#');
        let err = || format!("'{s}' is not a colour; use white, black, grey or #rrggbb");
        if hex.len() != 6 || !hex.is_ascii() {
            return Err(err());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| err());
        Ok(Color([byte(0)?, byte(2)?, byte(4)?]))
    }
}

/// `--fit` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FitArg {
    /// Fit within the box, keeping the aspect ratio.
    Inside,
    /// Fill the box, keeping the aspect ratio, cropping the overflow around the centre.
    Cover,
    /// Stretch to exactly WxH, ignoring the aspect ratio.
    Fill,
    /// Fit within the box and pad to exactly WxH with --background.
    Contain,
}

/// `--crop` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CropArg {
    /// The middle of the image.
    #[value(alias = "center")]
    Centre,
    /// The region that draws the eye: saturated colour, skin tones, edges.
    Attention,
    /// The most detailed region (highest entropy).
    Entropy,
}

/// A `--focal` point: `X,Y`, each a fraction from 0 to 1 of the width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FocalArg(pub f64, pub f64);

impl FromStr for FocalArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("'{s}' is not a point; use X,Y as fractions from 0 to 1 (e.g. 0.3,0.6)");
        let (x, y) = s.split_once(',').ok_or_else(bad)?;
        let fraction = |v: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(bad)
        };
        Ok(FocalArg(fraction(x)?, fraction(y)?))
    }
}

/// A `--format` value: one of the writable [`Format`]s, or "same" (each input's own). The
/// choices, aliases and help lines come from [`Format::ALL`], so the CLI cannot forget a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatArg(pub Option<Format>);

impl ValueEnum for FormatArg {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: std::sync::LazyLock<Vec<FormatArg>> = std::sync::LazyLock::new(|| {
            std::iter::once(FormatArg(None))
                .chain(
                    Format::ALL
                        .into_iter()
                        .filter(|f| f.is_writable())
                        .map(|f| FormatArg(Some(f))),
                )
                .collect()
        });
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self.0 {
            None => PossibleValue::new("same").help("Same format as each input"),
            Some(f) => PossibleValue::new(f.name())
                .aliases(f.aliases().iter().copied())
                .help(f.help()),
        })
    }
}

/// The resampling filter (`--filter`): the CLI's values and the setting itself, one list,
/// independent of the resizer library's names (`pipeline/resize.rs` maps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Filter {
    /// Lanczos, 3 lobes: sharpest, the usual choice for photos.
    Lanczos3,
    /// Mitchell-Netravali cubic: softer, no ringing.
    Mitchell,
    /// Catmull-Rom cubic: sharp, little ringing.
    CatmullRom,
    /// Bilinear (triangle) filter.
    Bilinear,
    /// Box filter (area average).
    Box,
    /// Nearest neighbour: no smoothing, for pixel art.
    Nearest,
}

/// Auto / always / never switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhenArg {
    /// Decide from whether the stream is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dims_parse_pixels_and_percentages() {
        assert_eq!("800".parse::<Dim>(), Ok(Dim::Px(800)));
        assert_eq!("50%".parse::<Dim>(), Ok(Dim::Percent(50.0)));
        assert!("0".parse::<Dim>().is_err());
        assert!("-3".parse::<Dim>().is_err());
        assert!("abc".parse::<Dim>().is_err());
        assert!("0%".parse::<Dim>().is_err());
    }

    #[test]
    fn size_specs_parse_every_documented_form() {
        let px = |v| Some(Dim::Px(v));
        let cases = [
            ("800", px(800), None),
            ("800x600", px(800), px(600)),
            ("800x", px(800), None),
            ("x600", None, px(600)),
            ("50%", Some(Dim::Percent(50.0)), Some(Dim::Percent(50.0))),
            ("640X480", px(640), px(480)),
        ];
        for (text, width, height) in cases {
            assert_eq!(
                text.parse::<SizeSpec>(),
                Ok(SizeSpec { width, height }),
                "{text}"
            );
        }
        for bad in ["", "x", "axb", "0x10", "10x0"] {
            assert!(bad.parse::<SizeSpec>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn densities_parse() {
        assert_eq!("2x".parse::<Density>(), Ok(Density(2.0)));
        assert_eq!("1.5".parse::<Density>(), Ok(Density(1.5)));
        for bad in ["", "x", "0x", "-1x", "11x", "twox"] {
            assert!(bad.parse::<Density>().is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_parse_names_and_hex() {
        assert_eq!("white".parse::<Color>(), Ok(Color([255, 255, 255])));
        assert_eq!("#ff8800".parse::<Color>(), Ok(Color([255, 136, 0])));
        assert_eq!("00FF00".parse::<Color>(), Ok(Color([0, 255, 0])));
        assert!("#ff88".parse::<Color>().is_err());
        assert!("purpleish".parse::<Color>().is_err());
    }

    #[test]
    fn focal_points_are_two_fractions() {
        assert_eq!("0.3,0.6".parse::<FocalArg>(), Ok(FocalArg(0.3, 0.6)));
        assert_eq!(" 1 , 0 ".parse::<FocalArg>(), Ok(FocalArg(1.0, 0.0)));
        for bad in [
            "",
            "0.5",
            "0.5,",
            "1.5,0.5",
            "-0.1,0.5",
            "a,b",
            "0.1,0.2,0.3",
        ] {
            assert!(bad.parse::<FocalArg>().is_err(), "{bad:?}");
        }
    }
}

/// `--dpi` values: `keep`, `scale`, or dots per inch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DpiArg {
    /// The source's resolution, unchanged.
    Keep,
    /// The source's resolution, scaled with the image.
    Scale,
    /// This many dots per inch.
    Dpi(f64),
}

impl FromStr for DpiArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "keep" => Ok(DpiArg::Keep),
            "scale" => Ok(DpiArg::Scale),
            n => match n.parse::<f64>() {
                // JPEG's JFIF density is a 16-bit number.
                Ok(v) if v > 0.0 && v <= 65_535.0 => Ok(DpiArg::Dpi(v)),
                _ => Err(format!(
                    "{s:?}: use keep, scale or dots per inch between 1 and 65535 (e.g. 300)"
                )),
            },
        }
    }
}

/// A length of time: plain seconds (`90`, `1.5`) or with a unit (`500ms`, `30s`, `5m`, `2h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub std::time::Duration);

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let scale = match unit.trim() {
            "" | "s" | "sec" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
                ))
            }
        };
        let v: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?} (e.g. 90, 30s, 5m)"))?;
        let secs = v * scale;
        if !(secs > 0.0 && secs < 1e9) {
            return Err(format!("duration {s:?} must be positive"));
        }
        Ok(DurationArg(std::time::Duration::from_secs_f64(secs)))
    }
}

/// A memory size: bytes with an optional binary unit (`512M`, `4G`, `1.5GiB`) or a share of
/// physical memory (`25%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemoryArg {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A percentage of physical memory.
    Percent(f64),
}

impl FromStr for MemoryArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || format!("invalid memory size {s:?} (e.g. 512M, 4G, 25%)");
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            return if v > 0.0 && v <= 100.0 {
                Ok(MemoryArg::Percent(v))
            } else {
                Err(format!("memory share {s:?} must be between 0 and 100%"))
            };
        }
        parse_byte_size(t).map(MemoryArg::Bytes).ok_or_else(bad)
    }
}

/// Bytes with an optional binary unit (`200K`, `1.5M`, `4GiB`): the one reading of a size for
/// `--memory` and `--max-bytes`. `None` when it is not one, or not between 1 byte and 1 EB.
fn parse_byte_size(t: &str) -> Option<u64> {
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    let bytes = v * scale;
    if !(1.0..1e18).contains(&bytes) {
        return None;
    }
    Some(bytes as u64)
}

/// `--max-bytes`: a size in bytes (`200K`, `1.5M`, `150000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_byte_size(s.trim())
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size {s:?} (e.g. 200K, 1.5M, 150000)"))
    }
}

/// `--quality`: fixed qualities (one for all, or per format), or `auto[=SCORE]`.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityArg {
    /// Fixed encoder qualities.
    Fixed(PerFormat),
    /// Search each output's quality for this SSIMULACRA2 score (`None`: the default score).
    Auto(Option<f32>),
}

impl FromStr for QualityArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let Some(rest) = t.strip_prefix("auto") else {
            return s.parse().map(QualityArg::Fixed);
        };
        if rest.is_empty() {
            return Ok(QualityArg::Auto(None));
        }
        rest.strip_prefix('=')
            .and_then(|v| v.trim().parse::<f32>().ok())
            .map(|v| QualityArg::Auto(Some(v)))
            .ok_or_else(|| {
                format!("invalid {s:?}: auto or auto=SCORE (a SSIMULACRA2 score, e.g. auto=70)")
            })
    }
}

#[cfg(test)]
mod value_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_and_without_units() {
        let d = |s: &str| s.parse::<DurationArg>().map(|d| d.0);
        assert_eq!(d("90"), Ok(Duration::from_secs(90)));
        assert_eq!(d("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "0", "-1", "5 parsecs", "abc"] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memory_sizes_parse_binary_units_and_shares() {
        let m = |s: &str| s.parse::<MemoryArg>();
        assert_eq!(m("512M"), Ok(MemoryArg::Bytes(512 << 20)));
        assert_eq!(m("4G"), Ok(MemoryArg::Bytes(4 << 30)));
        assert_eq!(m("4GiB"), Ok(MemoryArg::Bytes(4 << 30)));
        assert_eq!(m("1.5g"), Ok(MemoryArg::Bytes(3 << 29)));
        assert_eq!(m("1000"), Ok(MemoryArg::Bytes(1000)));
        assert_eq!(m("25%"), Ok(MemoryArg::Percent(25.0)));
        for bad in ["", "0", "12X", "150%", "G"] {
            assert!(m(bad).is_err(), "{bad:?}");
        }
    }
}

/// A value for every format (`82`) or per format (`webp=75,avif=45`); formats not named keep
/// their default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerFormat {
    /// Applies to every format not named in `named`.
    pub all: Option<u8>,
    /// Per-format values, by format name as `--format` spells it.
    pub named: Vec<(String, u8)>,
}

impl PerFormat {
    /// The value for `format` (a `--format` name), if one was given.
    pub fn get(&self, format: &str) -> Option<u8> {
        self.named
            .iter()
            .rev()
            .find(|(f, _)| f == format)
            .map(|(_, v)| *v)
            .or(self.all)
    }
}

impl FromStr for PerFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = PerFormat::default();
        for part in s.split(',').map(str::trim) {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (Some(n.trim().to_ascii_lowercase()), v.trim()),
                None => (None, part),
            };
            let v: u8 = value
                .parse()
                .map_err(|_| format!("invalid number {value:?} in {s:?}"))?;
            match name {
                None => out.all = Some(v),
                Some(n) => {
                    let Some(format) = Format::from_name(&n).filter(|f| f.is_writable()) else {
                        return Err(format!("unknown format {n:?} in {s:?}"));
                    };
                    out.named.push((format.name().to_owned(), v));
                }
            }
        }
        Ok(out)
    }
}
