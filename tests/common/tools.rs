//! The cross-check tier's access to independent programs: ImageMagick, exiftool, vips,
//! jpegtran, chromium and strace. The tier is off by default and on with `cargo test --features
//! cross-check` (`.ci/run` installs the tools and turns it on). Each command is printed before
//! it runs, and a missing tool fails the test with the line that installs it: when the tier is
//! on it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Debian packages of every tool the tier runs.
pub(crate) const APT_LINE: &str = "sudo apt-get install imagemagick libimage-exiftool-perl \
     libjpeg-turbo-progs libvips-tools chromium strace";

/// The first file called `name` in a folder of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The program `name` from `PATH`; panics, naming the packages, when it is not installed.
pub(crate) fn find(name: &str) -> PathBuf {
    on_path(name).unwrap_or_else(|| {
        panic!("cross-check tier: `{name}` is not installed; the tier needs: {APT_LINE}")
    })
}

/// Prints `cmd`, runs it, and returns its output; panics (with its stderr) unless it succeeds.
pub(crate) fn run(cmd: &mut Command) -> Output {
    eprintln!("cross-check: running {cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cross-check: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "cross-check: {cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// ImageMagick, found by asking each candidate for its version: a program merely called
/// `convert` (some sandboxes ship a stand-in) does not count.
pub(crate) struct ImageMagick {
    /// `magick` (ImageMagick 7) or `convert-im6.q16` / `convert` (ImageMagick 6).
    convert: PathBuf,
    /// `identify` of the same installation; for ImageMagick 7 this is `magick` too.
    identify: (PathBuf, Option<&'static str>),
}

impl ImageMagick {
    /// Finds ImageMagick; panics when no candidate reports itself as ImageMagick.
    pub(crate) fn find() -> ImageMagick {
        for name in ["magick", "convert-im6.q16", "convert"] {
            let Some(program) = on_path(name) else {
                continue;
            };
            let Some(version) = version_line(&program) else {
                continue;
            };
            eprintln!("cross-check: {} is {version}", program.display());
            let identify = if name == "magick" {
                (program.clone(), Some("identify"))
            } else {
                let sibling = name.replace("convert", "identify");
                let beside = program.with_file_name(&sibling);
                (
                    if beside.is_file() {
                        beside
                    } else {
                        find(&sibling)
                    },
                    None,
                )
            };
            return ImageMagick {
                convert: program,
                identify,
            };
        }
        panic!(
            "cross-check tier: ImageMagick is not installed (no `magick`, `convert-im6.q16` or \
             `convert` on PATH says it is ImageMagick); the tier needs: {APT_LINE}"
        )
    }

    /// A `convert` command (`magick` for ImageMagick 7, which takes the same arguments).
    pub(crate) fn convert(&self) -> Command {
        Command::new(&self.convert)
    }

    /// An `identify` command.
    pub(crate) fn identify(&self) -> Command {
        let (program, sub) = &self.identify;
        let mut cmd = Command::new(program);
        cmd.args(sub);
        cmd
    }
}

/// The first line of `program -version` if it names ImageMagick.
fn version_line(program: &Path) -> Option<String> {
    let out = Command::new(program).arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?.trim();
    (out.status.success() && first.contains("ImageMagick")).then(|| first.to_owned())
}
