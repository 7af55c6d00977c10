//! `Config`: the whole run, decided once from the command line.
//!
//! Every default and every cross-flag policy lives in [`Config::from_cli`]; nothing downstream
//! re-reads flags. The result is immutable and shared by reference with the walker and workers.

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use crate::atomic::Durability;
pub use crate::cli::Filter;
pub(crate) use crate::cli::PlaceholderKind;
use crate::cli::{
    Cli, CropArg, DpiArg, FailOnArg, FitArg, IccArg, ImageArgs, MemoryArg, QualityArg, WhenArg,
};
use crate::error::ConfigError;
use crate::format::Format;
use crate::geometry::{Crop, Dim, Fit, Target};
pub(crate) use crate::metadata::{DpiPolicy, MetaPolicy};
use crate::naming::Template;
use crate::shard::Shard;

/// JPEG shrink-on-load policy: libjpeg-turbo can decode at 1/2, 1/4 or 1/8 scale almost for
/// free, but its scaled IDCT is a block average, so the last factor of two is left to Lanczos.
///
/// Measured on the corpus photos at 800 px, PNG output, against ImageMagick's full-resolution
/// Lanczos: `Quality` 48.9–51.3 dB (vipsthumbnail 50.0–51.3), `Fast` 40.8–47.0 dB, `Off`
/// 51.0–51.3 dB; `Fast` is about 20 % quicker than `Quality`, `Off` about 2× slower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shrink {
    /// Keep at least twice the target size before resampling (default).
    Quality,
    /// Keep at least the target size (fastest, softer and slightly aliased).
    Fast,
    /// Always decode at full size.
    Off,
}

impl Shrink {
    /// How many times the target size the decoded image must keep, or `None` for no shrinking.
    pub fn margin(self) -> Option<f64> {
        match self {
            Shrink::Quality => Some(2.0),
            Shrink::Fast => Some(1.0),
            Shrink::Off => None,
        }
    }
}

/// Per-image resize and encode parameters (the part of [`Config`] a worker needs).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Target sizes, one output per target (and per format). Default: none (one of -w/-H/-s is
    /// required).
    pub targets: Vec<Target>,
    /// Output formats; `None` keeps each input's format. Default: `[None]`.
    pub formats: Vec<Option<Format>>,
    /// Lossy quality per format. Default: JPEG 78, WebP 78, AVIF 55.
    pub quality: Qualities,
    /// Encoder effort 0-10 per format. Default: WebP 4, AVIF 1.
    pub effort: Efforts,
    /// How each lossy output's quality is chosen (`--quality auto`, `--max-bytes`). Default:
    /// fixed, the `quality` above.
    pub tuning: Tuning,
    /// Progressive JPEG. Default: true.
    pub progressive: bool,
    /// Lossless WebP. Default: false.
    pub lossless: bool,
    /// Resampling filter. Default: Lanczos3.
    pub filter: Filter,
    /// Flatten/pad colour. Default: white.
    pub background: [u8; 3],
    /// How far the JPEG decoder may shrink while decoding. Default: [`Shrink::Quality`].
    pub shrink: Shrink,
    /// Largest accepted width × height. Default: 268,402,689 (16383², as sharp).
    pub max_pixels: u64,
    /// What happens to the colour profile. Default: keep.
    pub icc: IccPolicy,
    /// Which EXIF/XMP metadata is carried over. Default: keep (orientation reset).
    pub metadata: MetaPolicy,
    /// Print resolution of outputs (`--dpi`). Default: keep the source's.
    pub dpi: DpiPolicy,
    /// Resample in linear light (16-bit) instead of on gamma-encoded values. Default: false.
    pub linear: bool,
    /// Resize every frame of animated GIF/WebP/APNG inputs (GIF/WebP outputs). Default: false
    /// (the first frame).
    pub animated: bool,
    /// Which damage fails an input (`--fail-on`). Default: [`FailOn::Warning`], any.
    pub fail_on: FailOn,
    /// Where a `--fit cover` crop window goes (`--crop`, `--focal`). Default: centred.
    pub crop: Crop,
    /// Placeholders computed per source for the manifest (`--placeholder`), in
    /// [`PlaceholderKind::ALL`] order without repeats. Default: none.
    pub placeholders: Vec<PlaceholderKind>,
}

/// Which damage in an input fails it (`--fail-on`), from the most lenient: the levels of
/// libvips's `fail_on` and sharp's `failOn`. Each level fails on what the ones before it do.
/// An input decoded despite damage is written, and reported with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum FailOn {
    /// Never fail on damage: keep what decoded.
    None,
    /// Fail on truncated data only.
    Truncated,
    /// Fail on truncation and decode errors.
    Error,
    /// Fail on anything suspicious, warnings included: how presize always treated damage.
    #[default]
    Warning,
}

/// Lossy quality (1-100) per output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qualities {
    /// JPEG. Default 78 (libjpeg-turbo, 4:2:0): issue #17's web build (`web.py --score`, 14
    /// corpus photos at 320/640/1280 px) put q82 at 2501 KB and SSIMULACRA2 80.2 against
    /// eleventy-img's 2328 KB / 76.3 and sharp's 2421 KB / 77.6; q78 is the highest quality
    /// below both in bytes (about 2250 KB) and above both in score (about 78.4). 4:4:4 was
    /// measured too and is worse per byte at these scores (0.91x eleventy's bytes at its score,
    /// against 0.88x for 4:2:0).
    pub jpeg: u8,
    /// WebP. Default 78 (libwebp method 4): in the same web build q80 gave 1696 KB and score
    /// 73.9 against eleventy-img's 1610 KB / 71.4 and sharp's 1682 KB / 72.8; q78 gave 1577 KB
    /// and 72.0, below both in bytes and within 1 of both scores (q77: 1523 KB, 71.2). sharp_yuv
    /// was measured and costs bytes at these scores (1567 KB at eleventy's, against 1550 KB).
    pub webp: u8,
    /// AVIF, on the scale of libavif, libheif and sharp (libaom's cq-level is
    /// `((100 − q) × 63 + 50) / 100`, so 55 and 56 are the same level, 28). Default 55: in the
    /// web build, libaom speed 6 with presize's tuning gave 808 KB and score 70.2 against sharp's
    /// 886 KB / 69.4 and eleventy-img's 897 KB / 67.6, under both in bytes and above both in
    /// score; 54 gave 769 KB / 68.6, 57 853 KB / 71.3, 50 647 KB / 64.3.
    pub avif: u8,
}

impl Default for Qualities {
    fn default() -> Self {
        Qualities {
            jpeg: 78,
            webp: 78,
            avif: 55,
        }
    }
}

/// How each lossy output's quality is chosen: `quality` as it is (the default), searched per
/// output for a SSIMULACRA2 score, and/or capped by a size (see `pipeline/tune.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tuning {
    /// `--quality auto[=SCORE]`: the score each JPEG, WebP and AVIF output aims at. Default:
    /// none (fixed qualities).
    pub score: Option<f32>,
    /// `--max-bytes`: the largest JPEG, WebP or AVIF output. Default: none.
    pub max_bytes: Option<u64>,
}

impl Tuning {
    /// `--quality auto` without a score: SSIMULACRA2 70, "high quality" on its scale (the issue's
    /// "about 70"), near where sharp's and eleventy-img's default WebP and AVIF land.
    pub const DEFAULT_SCORE: f32 = 70.0;
}

/// Encoder effort (0 fastest .. 10 slowest and smallest) per format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Efforts {
    /// WebP (mapped to libwebp's method 0-6).
    pub webp: u8,
    /// AVIF (the encoder's speed 10 − effort: libaom 9..0, rav1e 10..1; see
    /// `pipeline::avif::speed_for_effort`).
    pub avif: u8,
    /// PNG: 0 writes the `image` crate's PNG as it is; 1-10 recompress it losslessly with
    /// oxipng (its presets 0-6; 7 and above are preset 6).
    pub png: u8,
}

/// The default `--effort avif`, the encoder's speed 10 − effort (see
/// `pipeline::avif::speed_for_effort`).
/// - libaom: 4, speed 6. Speed 5 (sharp's default) gave 0.95× sharp's bytes at its score,
///   against speed 6's 0.98× (both before `dist-metric=qm-psnr`), for three times the CPU
///   (20.6 s against 6.9 s for the AVIF-only web build), which would take the whole build from
///   4× faster than eleventy-img to under 2×.
/// - rav1e: 1, speed 9: about ten WebP encodes of the same pixels; speed 8 and 7 (which code
///   stills alike) cost 20-27×, speed 10 made files 3-22 % larger.
pub(crate) const AVIF_EFFORT_DEFAULT: u8 = if cfg!(feature = "heif") { 4 } else { 1 };

/// The default `--effort png`: oxipng's preset 0 (two filters, libdeflate level 5). Measured on
/// 9 corpus images made 800-px PNGs: 9 % smaller at 20x the time of the plain PNG encoder;
/// preset 1 saves 15 % at 108x, and every preset above it at most 1 % more (README, "Lossless
/// PNG").
pub(crate) const PNG_EFFORT_DEFAULT: u8 = 1;

impl Default for Efforts {
    /// WebP 4 is libwebp's own default method. AVIF: libaom speed 6 (4), or rav1e speed 9 (1)
    /// in builds without libheif; measured at [`AVIF_EFFORT_DEFAULT`].
    fn default() -> Self {
        Efforts {
            webp: 4,
            avif: AVIF_EFFORT_DEFAULT,
            png: PNG_EFFORT_DEFAULT,
        }
    }
}

/// What happens to the source's colour profile (`--icc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IccPolicy {
    /// Embed it unchanged.
    Keep,
    /// Convert pixels to sRGB and embed a compact sRGB profile.
    Srgb,
    /// Drop it.
    Strip,
}

impl Settings {
    /// Validates the image flags (shared by the default mode and `presize bench`).
    pub fn from_args(args: &ImageArgs) -> Result<Settings, ConfigError> {
        let sizes = requested_sizes(args)?;
        let fit = match args.fit {
            FitArg::Inside => Fit::Inside,
            FitArg::Cover => Fit::Cover,
            FitArg::Fill => Fit::Fill,
            FitArg::Contain => Fit::Contain,
        };
        let mut targets: Vec<Target> = Vec::new();
        for (width, height) in sizes {
            let t = Target {
                width,
                height,
                fit,
                upscale: args.upscale,
            };
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        let mut formats: Vec<Option<Format>> = Vec::new();
        for f in args.format.iter().map(|f| f.0) {
            if !formats.contains(&f) {
                formats.push(f);
            }
        }
        let defaults = Qualities::default();
        let (q, score) = match args.quality.clone() {
            None => (Default::default(), None),
            Some(QualityArg::Fixed(q)) => (q, None),
            Some(QualityArg::Auto(score)) => (
                Default::default(),
                Some(score.unwrap_or(Tuning::DEFAULT_SCORE)),
            ),
        };
        let tuning = Tuning {
            score,
            max_bytes: args.max_bytes.map(|b| b.0),
        };
        let quality = Qualities {
            jpeg: q.get("jpeg").unwrap_or(defaults.jpeg),
            webp: q.get("webp").unwrap_or(defaults.webp),
            avif: q.get("avif").unwrap_or(defaults.avif),
        };
        let e = args.effort.clone().unwrap_or_default();
        let effort_defaults = Efforts::default();
        let effort = Efforts {
            webp: e.get("webp").unwrap_or(effort_defaults.webp),
            avif: e.get("avif").unwrap_or(effort_defaults.avif),
            png: e.get("png").unwrap_or(effort_defaults.png),
        };
        let settings = Settings {
            targets,
            formats,
            quality,
            effort,
            tuning,
            progressive: !args.baseline,
            lossless: args.lossless,
            filter: args.filter,
            background: args.background.0,
            shrink: if args.no_fast_shrink {
                Shrink::Off
            } else if args.fast {
                Shrink::Fast
            } else {
                Shrink::Quality
            },
            max_pixels: args.max_pixels,
            icc: match args.icc {
                IccArg::Keep => IccPolicy::Keep,
                IccArg::Srgb => IccPolicy::Srgb,
                IccArg::Strip => IccPolicy::Strip,
            },
            metadata: if args.strip {
                MetaPolicy::Strip
            } else if args.strip_gps {
                MetaPolicy::StripGps
            } else {
                MetaPolicy::Keep
            },
            dpi: match args.dpi {
                DpiArg::Keep => DpiPolicy::Keep,
                DpiArg::Scale => DpiPolicy::Scale,
                DpiArg::Dpi(v) => DpiPolicy::Set(v),
            },
            linear: args.linear,
            animated: args.animated,
            fail_on: match args.fail_on {
                FailOnArg::None => FailOn::None,
                FailOnArg::Truncated => FailOn::Truncated,
                FailOnArg::Error => FailOn::Error,
                FailOnArg::Warning => FailOn::Warning,
            },
            crop: match (args.focal, args.crop) {
                (Some(point), _) => Crop::Focal(point.0, point.1),
                (None, CropArg::Centre) => Crop::Centre,
                (None, CropArg::Attention) => Crop::Attention,
                (None, CropArg::Entropy) => Crop::Entropy,
            },
            placeholders: PlaceholderKind::ALL
                .into_iter()
                .filter(|k| args.placeholder.contains(k))
                .collect(),
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The checks every `Settings` must pass however it was made (flags, or the library's
    /// [`crate::Resize`]): one home, so the two cannot drift.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.targets.is_empty() {
            return Err(ConfigError::NoSize);
        }
        if let Some(t) = self
            .targets
            .iter()
            .find(|t| t.fit != Fit::Inside && (t.width.is_none() || t.height.is_none()))
        {
            let name = match t.fit {
                Fit::Cover => "cover",
                Fit::Fill => "fill",
                _ => "contain",
            };
            return Err(ConfigError::FitNeedsBox(name));
        }
        if self.crop != Crop::Centre && self.targets.iter().any(|t| t.fit != Fit::Cover) {
            return Err(ConfigError::CropNeedsCover);
        }
        if self.formats.is_empty() {
            return Err(ConfigError::NoFormat);
        }
        let q = self.quality;
        if let Some(v) = [q.jpeg, q.webp, q.avif]
            .into_iter()
            .find(|v| !(1..=100).contains(v))
        {
            return Err(ConfigError::BadQuality(v));
        }
        let e = self.effort;
        if [e.webp, e.avif, e.png].into_iter().any(|v| v > 10) {
            return Err(ConfigError::BadEffort);
        }
        if let Some(score) = self.tuning.score {
            if !(10.0..=95.0).contains(&score) {
                return Err(ConfigError::BadScore(score.to_string()));
            }
            // Scoring a candidate AVIF means decoding it, which only libheif does here.
            if !cfg!(feature = "heif") && self.formats.contains(&Some(Format::Avif)) {
                return Err(ConfigError::AutoNeedsHeif);
            }
        }
        Ok(())
    }

    /// The output formats for an input of format `input`, in the order asked, without repeats.
    pub fn output_formats(&self, input: Format) -> Vec<Format> {
        let same = input.same_output();
        let mut out: Vec<Format> = Vec::new();
        for f in self.formats.iter().map(|f| f.unwrap_or(same)) {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// The lossy quality for `format`.
    pub fn quality_for(&self, format: Format) -> u8 {
        match format {
            Format::Webp => self.quality.webp,
            Format::Avif => self.quality.avif,
            _ => self.quality.jpeg,
        }
    }
}

/// How much the run prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Only errors.
    Quiet,
    /// Errors and the summary.
    Normal,
    /// Also every written and skipped file.
    Verbose,
}

/// The whole run. Built once by [`Config::from_cli`] and never changed.
#[derive(Debug, Clone)]
pub struct Config {
    /// Files and folders to process, as given.
    pub inputs: Vec<PathBuf>,
    /// Output root. Required.
    pub out_dir: PathBuf,
    /// Per-image parameters.
    pub settings: Settings,
    /// Worker threads (`-j/--jobs`). Default: number of logical CPUs.
    pub workers: NonZeroUsize,
    /// Replace existing outputs even when they are newer than the input. Default: false.
    pub overwrite: bool,
    /// Plan only. Default: false.
    pub dry_run: bool,
    /// NDJSON report on stdout. Default: false.
    pub json: bool,
    /// HTML report written after the run. Default: none.
    pub report: Option<PathBuf>,
    /// How much human output goes to stderr. Default: Normal.
    pub verbosity: Verbosity,
    /// Whether stderr output is coloured. Default: only on a terminal, and never with NO_COLOR.
    pub color: bool,
    /// Whether a progress bar is drawn on stderr. Default: only on a terminal, not with -q/--json.
    pub progress: bool,
    /// Replace the inputs themselves (`out_dir` is unused). Default: false.
    pub in_place: bool,
    /// Follow symbolic links to folders. Default: false (links to files are always followed).
    pub follow_links: bool,
    /// Time and memory bounds.
    pub limits: Limits,
    /// Output file names below `out_dir`. Default: `{stem}.{ext}`, or `{stem}-{width}w.{ext}`
    /// with several sizes.
    pub template: Template,
    /// The inputs came from `--files-from`: each is mirrored by the path as given.
    pub listed: bool,
    /// Only this share of the inputs. Default: all.
    pub shard: Option<Shard>,
    /// Build manifest to read (previous run) and write. Default: none.
    pub manifest: Option<PathBuf>,
    /// Redo everything. Default: false.
    pub force: bool,
    /// Delete outputs of sources that are gone (with a manifest). Default: false.
    pub prune: bool,
    /// After the first run, watch the inputs and run again on changes (with a manifest).
    /// Default: false.
    pub watch: bool,
    /// How each output reaches the disk. Default: `Durability::File` (synced before its
    /// rename); with `--in-place` also the folder after it; `Durability::Lazy` with
    /// `--no-sync`. Measured cost in docs/RELIABILITY.md.
    pub sync_outputs: Durability,
    /// How the manifest reaches the disk: after every output it records. Default:
    /// `Durability::FileAndFolder`; `Durability::Lazy` with `--no-sync`.
    pub sync_manifest: Durability,
    /// Give each output its source's modification time. Default: false.
    pub keep_mtime: bool,
    /// `--html`: the markup of the manifest, written after it. Default: none.
    pub html: Option<HtmlOut>,
    /// Decode in a confined process per worker (`--isolate`). Default: false.
    pub isolate: bool,
}

/// Where `--html` writes the manifest's `<picture>` markup, and how (as `presize manifest html
/// --prefix --sizes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlOut {
    /// The file.
    pub path: PathBuf,
    /// Put in front of every output path.
    pub prefix: Option<String>,
    /// The `sizes` attribute; the markup's default when `None`.
    pub sizes: Option<String>,
}

/// How long the run and each image may take, and how much decoded-image memory is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole-run time limit. Default: none.
    pub timeout: Option<Duration>,
    /// Per-image time limit. Default: none.
    pub image_timeout: Option<Duration>,
    /// Bytes of decoded pixels all workers may hold at once. Default: half of physical memory.
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: None,
            image_timeout: None,
            memory: physical_memory() / 2,
        }
    }
}

/// Total physical memory in bytes, from `/proc/meminfo`; 8 GiB where that cannot be read.
pub(crate) fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(8 << 30)
}

impl Config {
    /// Validates the command line and makes every default decision.
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        let settings = Settings::from_args(&cli.image)?;
        let out_dir = match (cli.out_dir, cli.in_place) {
            (Some(dir), false) => dir,
            (None, true) => PathBuf::new(),
            (_, false) => return Err(ConfigError::NoOutDir),
            (Some(_), true) => return Err(ConfigError::InPlaceWithOutDir),
        };
        if let Some(input) = cli
            .inputs
            .iter()
            .find(|input| std::fs::symlink_metadata(input).is_err())
        {
            return Err(ConfigError::MissingInput(input.clone()));
        }
        let memory = match cli.memory {
            None => Limits::default().memory,
            Some(MemoryArg::Bytes(b)) => b,
            Some(MemoryArg::Percent(p)) => (physical_memory() as f64 * p / 100.0) as u64,
        };
        let limits = Limits {
            timeout: cli.timeout.map(|d| d.0),
            image_timeout: cli.image_timeout.map(|d| d.0),
            memory,
        };

        let workers = cli
            .jobs
            .unwrap_or_else(|| NonZeroUsize::new(num_cpus::get()).unwrap_or(NonZeroUsize::MIN));
        let verbosity = if cli.quiet {
            Verbosity::Quiet
        } else if cli.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let color = match cli.color {
            WhenArg::Always => true,
            WhenArg::Never => false,
            WhenArg::Auto => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        let progress = match cli.progress {
            WhenArg::Always => true,
            WhenArg::Never => false,
            WhenArg::Auto => {
                std::io::stderr().is_terminal() && verbosity != Verbosity::Quiet && !cli.json
            }
        };
        let template = match &cli.name {
            Some(text) => Template::parse(text).map_err(|e| ConfigError::BadName(e.to_string()))?,
            None => default_template(&settings),
        };
        let shard = match cli.shard.as_deref() {
            None => None,
            Some("auto") => Some(
                Shard::from_env(cli.shard_count, |k| std::env::var(k).ok())
                    .map_err(|e| ConfigError::BadShard(e.to_string()))?,
            ),
            Some(text) => Some(
                text.parse::<Shard>()
                    .map_err(|e| ConfigError::BadShard(e.to_string()))?,
            ),
        };
        let (inputs, listed) = match &cli.files_from {
            None => (cli.inputs, false),
            Some(list) => {
                let mut inputs = read_list(list, cli.null)?;
                inputs.extend(cli.inputs);
                (inputs, true)
            }
        };
        // Durable by default: an output appears under its name only once its bytes are on
        // disk, so neither a plain rerun (by modification time) nor a manifest (by size) can
        // take a damaged file for a finished one after a power cut.
        let (sync_outputs, sync_manifest) = match (cli.no_sync, cli.in_place) {
            (true, _) => (Durability::Lazy, Durability::Lazy),
            (false, true) => (Durability::FileAndFolder, Durability::FileAndFolder),
            (false, false) => (Durability::File, Durability::FileAndFolder),
        };
        let config = Config {
            inputs,
            out_dir,
            settings,
            workers,
            overwrite: cli.overwrite,
            dry_run: cli.dry_run,
            json: cli.json,
            report: cli.report,
            verbosity,
            color,
            progress,
            in_place: cli.in_place,
            follow_links: cli.follow_links,
            limits,
            template,
            listed,
            shard,
            manifest: cli.manifest,
            force: cli.force,
            prune: cli.prune,
            watch: cli.watch,
            sync_outputs,
            sync_manifest,
            keep_mtime: cli.keep_mtime,
            html: cli.html.map(|path| HtmlOut {
                path,
                prefix: cli.html_prefix,
                sizes: cli.html_sizes,
            }),
            isolate: cli.image.isolate,
        };
        config.validate()?;
        Ok(config)
    }

    /// The checks every `Config` must pass however it was made (the command line, or the
    /// library's [`crate::Resize`]), besides [`Settings::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let settings = &self.settings;
        settings.validate()?;
        if self.in_place && settings.formats.iter().any(Option::is_some) {
            return Err(ConfigError::InPlaceFormat);
        }
        if self.in_place && settings.targets.len() > 1 {
            return Err(ConfigError::InPlaceSizes);
        }
        if !settings.placeholders.is_empty() && self.manifest.is_none() {
            return Err(ConfigError::PlaceholderNeedsManifest);
        }
        if !self.in_place
            && self
                .inputs
                .iter()
                .any(|input| input.is_dir() && same_dir(input, &self.out_dir))
        {
            return Err(ConfigError::OutDirIsInput(self.out_dir.clone()));
        }
        let (sizes, formats) = (settings.targets.len(), settings.formats.len());
        if let Some(problem) = self.template.can_collide(sizes, formats) {
            return Err(ConfigError::BadName(problem));
        }
        Ok(())
    }
}

/// The (width, height) pairs `-s`, or `-w` and `-H`, ask for: `-s` lists are taken as they
/// are; a single `-w` pairs with every `-H` (and the other way round), two lists pair up in
/// order.
/// A requested width and height; either may be left to the aspect ratio.
type SizeRequest = (Option<Dim>, Option<Dim>);

fn requested_sizes(args: &ImageArgs) -> Result<Vec<SizeRequest>, ConfigError> {
    let sizes = match (args.size.is_empty(), args.width.len(), args.height.len()) {
        (false, 0, 0) => args.size.iter().map(|s| (s.width, s.height)).collect(),
        (false, _, _) => return Err(ConfigError::SizeConflict),
        (true, 0, 0) => Vec::new(),
        (true, _, 0) => args.width.iter().map(|&w| (Some(w), None)).collect(),
        (true, 0, _) => args.height.iter().map(|&h| (None, Some(h))).collect(),
        (true, 1, _) => args
            .height
            .iter()
            .map(|&h| (Some(args.width[0]), Some(h)))
            .collect(),
        (true, _, 1) => args
            .width
            .iter()
            .map(|&w| (Some(w), Some(args.height[0])))
            .collect(),
        (true, w, h) if w == h => args
            .width
            .iter()
            .zip(&args.height)
            .map(|(&w, &h)| (Some(w), Some(h)))
            .collect(),
        (true, w, h) => return Err(ConfigError::SizeLists(w, h)),
    };
    Ok(sizes)
}

/// The default `--name`: `{stem}.{ext}`, `{stem}-{width}w.{ext}` for several sizes, and
/// `{stem}-{width}x{height}.{ext}` when two sizes share a width (`-w 100 -H 40,60`).
pub(crate) fn default_template(settings: &Settings) -> Template {
    let widths: Vec<_> = settings.targets.iter().map(|t| t.width).collect();
    let repeated = widths
        .iter()
        .enumerate()
        .any(|(i, w)| widths[..i].contains(w));
    if repeated {
        Template::parse("{stem}-{width}x{height}.{ext}")
            .unwrap_or_else(|_| Template::default_for(settings.targets.len()))
    } else {
        Template::default_for(settings.targets.len())
    }
}

/// Reads a `--files-from` list: one path per line (or NUL-separated), blank entries ignored.
fn read_list(list: &Path, nul: bool) -> Result<Vec<PathBuf>, ConfigError> {
    use std::io::Read;
    let mut raw = Vec::new();
    let read = if list == Path::new("-") {
        std::io::stdin().lock().read_to_end(&mut raw)
    } else {
        std::fs::File::open(list).and_then(|mut f| f.read_to_end(&mut raw))
    };
    read.map_err(|e| ConfigError::FilesFrom(format!("{}: {e}", list.display())))?;
    let sep = if nul { b'\0' } else { b'\n' };
    Ok(raw
        .split(|&b| b == sep)
        .map(|entry| entry.strip_suffix(b"\r").unwrap_or(entry))
        .filter(|entry| !entry.is_empty())
        .map(path_from_bytes)
        .collect())
}

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Returns true if and only if both paths name the same existing folder.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Used by tests and benches: settings for a plain width-limited JPEG-or-same run.
#[doc(hidden)]
pub fn settings_for_width(width: u32) -> Settings {
    Settings {
        targets: vec![Target {
            width: Some(Dim::Px(width)),
            height: None,
            fit: Fit::Inside,
            upscale: false,
        }],
        formats: vec![None],
        quality: Qualities::default(),
        effort: Efforts::default(),
        tuning: Tuning::default(),
        progressive: true,
        lossless: false,
        filter: Filter::Lanczos3,
        background: [255, 255, 255],
        shrink: Shrink::Quality,
        max_pixels: 268_402_689,
        icc: IccPolicy::Keep,
        metadata: MetaPolicy::Keep,
        dpi: DpiPolicy::Keep,
        linear: false,
        animated: false,
        fail_on: FailOn::Warning,
        crop: Crop::Centre,
        placeholders: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn every_help_example_is_a_valid_command_line() {
        let mut seen = 0;
        for line in crate::cli::EXAMPLES
            .lines()
            .filter(|l| l.starts_with("    "))
        {
            // The presize part of the line: after a pipe, before a redirection.
            let Some(at) = line.find("presize ") else {
                continue;
            };
            let command = line[at..].split(" > ").next().expect("a command");
            let args: Vec<&str> = command.split_whitespace().collect();
            let mut cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{command}: {e}"));
            // Beyond parsing: every policy check a run makes before it starts. The examples name
            // the reader's own folders; a folder that exists stands in for each.
            if cli.command.is_none() {
                cli.inputs = cli.inputs.iter().map(|_| std::env::temp_dir()).collect();
                if let Err(e) = Config::from_cli(cli) {
                    panic!("{command}: {e}");
                }
            }
            seen += 1;
        }
        assert!(seen >= 12, "{seen} examples");
    }

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir();
        let mut argv = vec!["presize", dir.to_str().unwrap()];
        argv.extend_from_slice(args);
        Config::from_cli(Cli::try_parse_from(argv).expect("clap accepts"))
    }

    #[test]
    fn a_size_is_required() {
        assert_eq!(
            parse(&["-o", "/nonexistent/out"]).unwrap_err(),
            ConfigError::NoSize
        );
    }

    #[test]
    fn size_spec_excludes_width_and_height() {
        let err = parse(&["-o", "/x", "-s", "10x10", "-w", "5"]).unwrap_err();
        assert_eq!(err, ConfigError::SizeConflict);
    }

    #[test]
    fn box_fits_need_both_dimensions() {
        let err = parse(&["-o", "/x", "-w", "5", "--fit", "cover"]).unwrap_err();
        assert_eq!(err, ConfigError::FitNeedsBox("cover"));
    }

    #[test]
    fn crops_need_cover_and_focal_points_are_kept() {
        let err = parse(&["-o", "/x", "-s", "9x9", "--crop", "entropy"]).unwrap_err();
        assert_eq!(err, ConfigError::CropNeedsCover);
        let err = parse(&["-o", "/x", "-s", "9x9", "--focal", "0.1,0.2"]).unwrap_err();
        assert_eq!(err, ConfigError::CropNeedsCover);
        let cover = ["-o", "/x/out", "-s", "9x9", "--fit", "cover"];
        let c = parse(&[&cover[..], &["--focal", "0.1,0.2"]].concat()).unwrap();
        assert_eq!(c.settings.crop, Crop::Focal(0.1, 0.2));
        let c = parse(&[&cover[..], &["--crop", "attention"]].concat()).unwrap();
        assert_eq!(c.settings.crop, Crop::Attention);
        assert_eq!(parse(&cover).unwrap().settings.crop, Crop::Centre);
    }

    #[test]
    fn out_dir_is_required_and_must_not_be_the_input() {
        assert_eq!(parse(&["-w", "5"]).unwrap_err(), ConfigError::NoOutDir);
        let tmp = std::env::temp_dir();
        let err = parse(&["-w", "5", "-o", tmp.to_str().unwrap()]).unwrap_err();
        assert!(matches!(err, ConfigError::OutDirIsInput(_)));
    }

    #[test]
    fn size_and_format_lists_make_one_target_per_size() {
        let c = parse(&["-o", "/x/out", "-w", "320,640,1280", "-f", "webp,jpeg"]).unwrap();
        let widths: Vec<_> = c.settings.targets.iter().map(|t| t.width).collect();
        assert_eq!(widths, [320, 640, 1280].map(|w| Some(Dim::Px(w))).to_vec());
        assert_eq!(
            c.settings.formats,
            vec![Some(Format::Webp), Some(Format::Jpeg)]
        );
        assert_eq!(c.template.as_str(), "{stem}-{width}w.{ext}");
        let c = parse(&["-o", "/x/out", "-w", "100,200", "-H", "50,80"]).unwrap();
        assert_eq!(c.settings.targets[1].height, Some(Dim::Px(80)));
        assert_eq!(
            parse(&["-o", "/x/out", "-w", "1,2,3", "-H", "5,6"]).unwrap_err(),
            ConfigError::SizeLists(3, 2)
        );
        let c = parse(&["-o", "/x/out", "-w", "9", "-Q", "70,avif=40", "--baseline"]).unwrap();
        assert_eq!(
            (
                c.settings.quality.jpeg,
                c.settings.quality.webp,
                c.settings.quality.avif
            ),
            (70, 70, 40)
        );
        assert!(!c.settings.progressive);
        // Several widths into one name would collide: refused before any work.
        let err = parse(&["-o", "/x/out", "-w", "1,2", "--name", "{stem}.{ext}"]).unwrap_err();
        assert!(matches!(err, ConfigError::BadName(_)), "{err:?}");
        let err = parse(&["-o", "/x/out", "-w", "1", "--name", "../{stem}.{ext}"]).unwrap_err();
        assert!(matches!(err, ConfigError::BadName(_)), "{err:?}");
    }

    #[test]
    fn defaults_are_decided_here() {
        let c = parse(&["-o", "/x/out", "-w", "800"]).unwrap();
        assert_eq!(c.workers.get(), num_cpus::get());
        assert_eq!(c.settings.quality.jpeg, 78);
        assert_eq!(c.settings.quality.webp, 78);
        assert!(c.settings.progressive);
        assert_eq!(c.settings.filter, Filter::Lanczos3);
        assert_eq!(c.settings.shrink, Shrink::Quality);
        assert_eq!(c.settings.targets.len(), 1);
        assert!(!c.settings.targets[0].upscale);
        assert_eq!(c.settings.formats, vec![None]);
        assert_eq!(c.template.as_str(), "{stem}.{ext}");
        assert_eq!(c.verbosity, Verbosity::Normal);
    }
}
