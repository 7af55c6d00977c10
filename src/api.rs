//! The library entry point for programs that resize without the command line: a `build.rs`
//! generating web assets, a server's upload hook, a test.
//!
//! [`Resize`] starts from exactly the defaults `presize` uses (they are decided in one place,
//! `config.rs`) and changes them with typed setters; [`Resize::run`] is the same engine as the
//! binary, with nothing printed; a run that cannot start or finish is an [`Error`].

use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use crate::cli::Cli;
use crate::config::{Config, FailOn};
use crate::error::{ConfigError, JobError};
use crate::format::Format;
use crate::geometry::{Dim, Target};
use crate::manifest::ManifestError;
use crate::naming::Template;
use crate::report::{Reporter, Summary};

/// A resize job built in code.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// use presize::{Format, Resize};
///
/// let dir = tempfile::tempdir()?;
/// let photos = dir.path().join("photos");
/// std::fs::create_dir(&photos)?;
/// image::RgbImage::from_pixel(800, 600, image::Rgb([200, 80, 40])).save(photos.join("a.png"))?;
///
/// let summary = Resize::new([&photos], dir.path().join("site/img"))
///     .widths(&[320, 640])
///     .formats(&[Format::Webp, Format::Jpeg])
///     .manifest(dir.path().join("site/img.json"))
///     .run()?;
/// assert_eq!((summary.written, summary.failed), (1, 0));
/// assert!(dir.path().join("site/img/a-640w.webp").is_file());
///
/// // Unchanged sources are skipped on the next build.
/// let again = Resize::new([&photos], dir.path().join("site/img"))
///     .widths(&[320, 640])
///     .formats(&[Format::Webp, Format::Jpeg])
///     .manifest(dir.path().join("site/img.json"))
///     .run()?;
/// assert_eq!(again.skipped, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Resize {
    config: Config,
    name: Option<String>,
}

impl Resize {
    /// Resizes every image under `inputs` (files and folders) into `out_dir`, mirroring folders.
    /// Until a size is set the images keep their size (width 100 %).
    pub fn new<P: Into<PathBuf>>(
        inputs: impl IntoIterator<Item = P>,
        out_dir: impl Into<PathBuf>,
    ) -> Resize {
        let mut config = default_config();
        config.inputs = inputs.into_iter().map(Into::into).collect();
        config.out_dir = out_dir.into();
        Resize { config, name: None }
    }

    /// One output per width (pixels), aspect kept, never enlarged.
    pub fn widths(mut self, widths: &[u32]) -> Resize {
        let template = self
            .config
            .settings
            .targets
            .first()
            .copied()
            .unwrap_or(Target {
                width: None,
                height: None,
                fit: crate::geometry::Fit::Inside,
                upscale: false,
            });
        self.config.settings.targets = widths
            .iter()
            .map(|&w| Target {
                width: Some(Dim::Px(w)),
                height: None,
                ..template
            })
            .collect();
        self
    }

    /// The output formats (default: each input's own).
    pub fn formats(mut self, formats: &[Format]) -> Resize {
        self.config.settings.formats = formats.iter().map(|&f| Some(f)).collect();
        if formats.is_empty() {
            self.config.settings.formats = vec![None];
        }
        self
    }

    /// Lossy quality 1-100 for every format.
    pub fn quality(mut self, quality: u8) -> Resize {
        let q = &mut self.config.settings.quality;
        (q.jpeg, q.webp, q.avif) = (quality, quality, quality);
        self
    }

    /// Output names (see `--name`).
    pub fn name(mut self, template: &str) -> Resize {
        self.name = Some(template.to_owned());
        self
    }

    /// Write (and use, for incremental builds) a manifest.
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Resize {
        self.config.manifest = Some(path.into());
        self
    }

    /// Placeholders to store per source in the manifest (see `--placeholder`; needs
    /// [`Resize::manifest`], or [`Resize::run`] fails with
    /// [`crate::ConfigError::PlaceholderNeedsManifest`]).
    pub fn placeholders(mut self, kinds: &[crate::PlaceholderKind]) -> Resize {
        self.config.settings.placeholders = crate::PlaceholderKind::ALL
            .into_iter()
            .filter(|k| kinds.contains(k))
            .collect();
        self
    }

    /// Give each output its source's modification time (see `--keep-mtime`).
    pub fn keep_mtime(mut self, keep: bool) -> Resize {
        self.config.keep_mtime = keep;
        self
    }

    /// Worker threads (default: one per CPU).
    pub fn jobs(mut self, jobs: usize) -> Resize {
        if let Some(n) = std::num::NonZeroUsize::new(jobs) {
            self.config.workers = n;
        }
        self
    }

    /// Drop EXIF and XMP metadata (see `--strip`); the colour profile is kept.
    pub fn strip_metadata(mut self, strip: bool) -> Resize {
        self.config.settings.metadata = if strip {
            crate::config::MetaPolicy::Strip
        } else {
            crate::config::MetaPolicy::Keep
        };
        self
    }

    /// Convert every image to sRGB and embed a compact sRGB profile (see `--icc srgb`).
    pub fn srgb(mut self, srgb: bool) -> Resize {
        self.config.settings.icc = if srgb {
            crate::config::IccPolicy::Srgb
        } else {
            crate::config::IccPolicy::Keep
        };
        self
    }

    /// Which damage fails an input (see `--fail-on`): [`FailOn::None`] resizes what decoded
    /// of a cut-short file, as a rescue of a half-copied card needs. Default: any damage fails.
    pub fn fail_on(mut self, level: FailOn) -> Resize {
        self.config.settings.fail_on = level;
        self
    }

    /// Runs to completion and returns the summary; per-file failures are counted in it (and
    /// never an `Err`). Fails only for invalid settings or an output folder that cannot be made.
    pub fn run(mut self) -> Result<Summary, Error> {
        self.config.template = match &self.name {
            Some(text) => Template::parse(text).map_err(|e| ConfigError::BadName(e.to_string()))?,
            None => crate::config::default_template(&self.config.settings),
        };
        self.config.validate()?;
        let cancel = Arc::new(AtomicBool::new(false));
        let reporter = Reporter::silent(self.config.workers.get());
        crate::run(&self.config, &cancel, reporter)
    }
}

/// The binary's defaults, taken from the command-line definition itself so they cannot drift.
fn default_config() -> Config {
    let cli = Cli::try_parse_from([
        "presize",
        ".",
        "-o",
        "presize-unused-output",
        "-w",
        "100%",
        "--progress",
        "never",
    ])
    .expect("the default command line parses");
    let mut config = Config::from_cli(cli).expect("the default command line is valid");
    config.inputs.clear();
    config.out_dir = PathBuf::new();
    config.verbosity = crate::config::Verbosity::Quiet;
    config
}

/// Why a whole run could not start or finish (the library's error; per-file problems are never
/// an `Err`: they are counted in the [`crate::Summary`]). Each variant keeps the underlying
/// error as its `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The manifest could not be read or written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The output folder could not be created or resolved.
    #[error("{context} {path}: {source}")]
    OutputFolder {
        /// What presize was doing.
        context: &'static str,
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The `--html` markup could not be written.
    #[error("cannot write markup {path}: {source}")]
    Markup {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: JobError,
    },
    /// The `--report` page could not be written.
    #[error("cannot write report {path}: {source}")]
    Report {
        /// The page.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: JobError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_none_rescues_a_truncated_jpeg_that_fails_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in");
        std::fs::create_dir(&src).unwrap();
        let cut = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/bad/baseline_jpeg_cut_at_40pct.jpg"
        );
        std::fs::copy(cut, src.join("cut.jpg")).unwrap();
        let run = |level: Option<FailOn>, out: &str| {
            let resize = Resize::new([&src], dir.path().join(out)).widths(&[64]);
            match level {
                Some(level) => resize.fail_on(level),
                None => resize,
            }
            .run()
            .unwrap()
        };
        let strict = run(None, "strict");
        assert_eq!((strict.written, strict.failed), (0, 1));
        let rescued = run(Some(FailOn::None), "rescued");
        assert_eq!((rescued.written, rescued.failed), (1, 0));
        let img = image::open(dir.path().join("rescued/cut.jpg")).unwrap();
        assert_eq!(img.width(), 64);
    }
}
