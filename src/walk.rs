//! The walker thread: turns the inputs into [`ImageJob`]s and feeds them to the pool.
//!
//! It walks folders in sorted order (so conflicts are resolved the same way whatever `-j` is),
//! recognises images by their first bytes, maps each one to its output path, and refuses a
//! second input that would write the same output. A small look-ahead window sends the largest
//! files first, so a big panorama found last does not leave one core busy at the end while the
//! others idle; memory stays bounded because the window is.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use walkdir::WalkDir;

use crate::config::Config;
use crate::error::JobError;
use crate::format::{Format, SNIFF_LEN};
use crate::job::{ImageJob, JobResult, Outcome, SkipReason};
use crate::naming;
use crate::pool::Feeder;

/// Extensions of images presize does not decode at all: reported as failures, so they are not
/// silently left out of a photo folder. (Formats this build cannot read are found through
/// [`Format::is_readable`].)
const FOREIGN_IMAGE_EXTENSIONS: &[&str] = &["jxl"];

/// What the walker found at one path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// An image of this format.
    Image(Format),
    /// Not an image, to be skipped silently.
    Other,
}

/// Decides whether `path` (a regular file) is an image, from its first bytes and, for files
/// that are not, from what its name promises.
pub(crate) fn classify(path: &Path) -> Result<Found, JobError> {
    let mut head = [0u8; SNIFF_LEN];
    let mut file = File::open(path).map_err(|e| JobError::io("cannot open file", e))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(JobError::io("cannot read file", e)),
        }
    }
    let ext = Format::extension_of(path);
    if let Some(format) = Format::identify(&head[..n], &ext) {
        if !format.is_readable() {
            return Err(JobError::Unsupported(format!(
                "{} images are not supported by this build (it was built with `--no-default-features`, without libheif)",
                format.display_name()
            )));
        }
        return Ok(Found::Image(format));
    }
    let named = Format::from_extension(&ext);
    if FOREIGN_IMAGE_EXTENSIONS.contains(&ext.as_str()) || named.is_some_and(|f| !f.is_readable()) {
        return Err(JobError::Unsupported(format!(
            "{} images are not supported",
            ext.to_ascii_uppercase()
        )));
    }
    if named.is_some() {
        let what = if n == 0 {
            "empty file"
        } else {
            "not an image: content matches no supported format (mislabelled or corrupt)"
        };
        return Err(JobError::Unrecognised(what.to_string()));
    }
    Ok(Found::Other)
}

struct Walker<'c, 'f, 'a> {
    config: &'c Config,
    /// The index of `config` among the run's jobs (see [`ImageJob::group`]).
    group: usize,
    found: &'c AtomicU64,
    feeder: &'f Feeder<'a, ImageJob, JobResult>,
    /// Canonical output folder, never walked into.
    out_dir: Option<PathBuf>,
    /// Output name → the input that claimed it first. When names cannot collide across
    /// folders (one input folder, a template that keeps the folder structure) it only holds the
    /// current folder's claims, so memory does not grow with the size of the tree.
    claimed: HashMap<PathBuf, PathBuf>,
    /// Whether `claimed` may be reset at each new folder.
    claims_per_folder: bool,
    /// The folder (relative) whose claims `claimed` holds.
    claims_folder: Option<PathBuf>,
    /// Look-ahead window: largest first; ties in walk order.
    window: BinaryHeap<Pending>,
    capacity: usize,
    seq: u64,
    stopped: bool,
}

/// A job waiting in the look-ahead window, ordered largest first, then earliest found.
struct Pending {
    bytes: u64,
    seq: u64,
    job: ImageJob,
}

impl Pending {
    fn key(&self) -> (u64, Reverse<u64>) {
        (self.bytes, Reverse(self.seq))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Walks every input of `config` (job `group` of the run) and feeds the jobs. Runs on the
/// walker thread. `found` counts the images discovered so far (for the progress bar's total).
pub(crate) fn walk(
    config: &Config,
    group: usize,
    feeder: &Feeder<'_, ImageJob, JobResult>,
    found: &AtomicU64,
) {
    let mut w = Walker {
        config,
        group,
        found,
        feeder,
        out_dir: config.out_dir.canonicalize().ok(),
        claimed: HashMap::new(),
        claims_per_folder: config.inputs.len() == 1
            && !config.listed
            && !config.template.uses(crate::naming::Var::Dir),
        claims_folder: None,
        window: BinaryHeap::new(),
        capacity: (4 * config.workers.get()).min(64),
        seq: 0,
        stopped: false,
    };
    let mut roots = config.inputs.iter();
    for input in roots.by_ref() {
        w.walk_root(input);
        if w.stopped || feeder.cancelled() {
            break;
        }
    }
    while let Some(Pending { job, .. }) = w.window.pop() {
        if w.stopped || !feeder.submit(job) {
            break;
        }
    }
    if w.stopped || feeder.cancelled() {
        // Tell the summary how much was left: the window, and the inputs not yet walked,
        // counted by name without opening them (the user is waiting for the run to stop).
        feeder.not_processed(w.window.len() as u64);
        let out_dir = config.out_dir.canonicalize().ok();
        for root in roots {
            let base = w.root_rel(root, root.is_dir());
            let left = w.count_left(root, &base, tree(config, root, out_dir.as_deref()));
            feeder.not_processed(left);
        }
    }
}

/// Every entry below `root` as presize walks it: symbolic links to folders followed only with
/// `--follow-links`, files before sub-folders (each by name, so a folder's files arrive together
/// and the conflict map can be kept per folder), and never a step into the output folder
/// `out_dir` (canonical). The one set-up the walk, its not-processed count and the progress
/// estimate share.
fn tree<'a>(
    config: &Config,
    root: &Path,
    out_dir: Option<&'a Path>,
) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> + 'a {
    WalkDir::new(root)
        .follow_links(config.follow_links)
        .sort_by(|a, b| {
            (a.file_type().is_dir(), a.file_name()).cmp(&(b.file_type().is_dir(), b.file_name()))
        })
        .into_iter()
        .filter_entry(move |e| !(e.file_type().is_dir() && is_same_dir(e.path(), out_dir)))
}

/// Returns true if and only if `entry` is a file whose name promises an image.
fn is_image_name(entry: &walkdir::DirEntry) -> bool {
    !entry.file_type().is_dir()
        && Format::from_extension(&Format::extension_of(entry.path())).is_some()
}

impl Walker<'_, '_, '_> {
    fn walk_root(&mut self, root: &Path) {
        let meta = match fs::metadata(root) {
            Ok(m) => m,
            Err(e) => return self.fail(root.to_path_buf(), JobError::io("cannot read input", e)),
        };
        if meta.is_file() {
            let rel = self.root_rel(root, false);
            return self.consider(root.to_path_buf(), rel, meta.len(), true);
        }
        if !meta.is_dir() {
            // A FIFO or device would block or never end: never opened.
            return self.fail(
                root.to_path_buf(),
                JobError::Unsupported(
                    "not a regular file or folder (FIFO, socket or device)".into(),
                ),
            );
        }
        let base = self.root_rel(root, true);
        let out_dir = self.out_dir.clone();
        let mut walker = tree(self.config, root, out_dir.as_deref());
        while let Some(entry) = walker.next() {
            if self.stopped || self.feeder.cancelled() {
                // The entry in hand was not submitted either.
                let left =
                    self.count_left(root, &base, std::iter::once(entry).chain(walker.by_ref()));
                self.feeder.not_processed(left);
                return;
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_path_buf();
                    let err = match e.loop_ancestor() {
                        Some(ancestor) => JobError::Unsupported(format!(
                            "symbolic link loop back to {}; not followed again",
                            ancestor.display()
                        )),
                        None => JobError::io(
                            "cannot read folder entry",
                            e.into_io_error()
                                .unwrap_or_else(|| std::io::Error::other("unknown walk error")),
                        ),
                    };
                    self.fail(path, err);
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            // A symlink to a file is processed as that file; links to folders are followed only
            // with --follow-links (walkdir then reports them as folders, and detects loops).
            let meta = if ft.is_symlink() {
                fs::metadata(entry.path())
            } else {
                entry.metadata().map_err(Into::into)
            };
            match meta {
                Ok(m) if m.is_file() => {
                    let below = entry
                        .path()
                        .strip_prefix(root)
                        .map_or_else(|_| entry.path().to_path_buf(), Path::to_path_buf);
                    let rel = base.join(below);
                    self.consider(entry.into_path(), rel, m.len(), false)
                }
                Ok(_) => {} // FIFOs, sockets, devices, links to folders: never opened.
                Err(e) => self.fail(
                    entry.into_path(),
                    JobError::io("cannot read file metadata", e),
                ),
            }
        }
    }

    /// The relative path an input named on the command line (or listed) is mirrored as: for a
    /// folder, nothing (its contents go to the top of the output folder); for a file, its name.
    /// A `--files-from` entry keeps its relative path as given (`./` and `..` removed), so
    /// `git ls-files | presize --files-from -` mirrors the repository's layout.
    fn root_rel(&self, root: &Path, is_dir: bool) -> PathBuf {
        if self.config.listed {
            let cwd = std::env::current_dir().ok();
            let relative = if root.is_absolute() {
                cwd.as_deref().and_then(|c| root.strip_prefix(c).ok())
            } else {
                Some(root)
            };
            if let Some(r) = relative {
                let clean: PathBuf = r
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .collect();
                let climbs = r
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
                if !climbs {
                    return clean;
                }
            }
        }
        if is_dir {
            PathBuf::new()
        } else {
            root.file_name()
                .map_or_else(|| root.to_path_buf(), PathBuf::from)
        }
    }

    /// Returns true if and only if the source mirrored as `rel` is this machine's (`--shard`).
    fn in_shard(&self, rel: &Path) -> bool {
        self.config
            .shard
            .as_ref()
            .is_none_or(|shard| shard.contains(&crate::shard::key(rel)))
    }

    /// Counts the files of `entries` (below `root`, mirrored under `base`) whose names promise
    /// an image of this machine's shard, without opening any: what a stopped run leaves undone.
    fn count_left(
        &self,
        root: &Path,
        base: &Path,
        entries: impl Iterator<Item = walkdir::Result<walkdir::DirEntry>>,
    ) -> u64 {
        entries
            .flatten()
            .filter(is_image_name)
            .filter(|e| {
                let below = e.path().strip_prefix(root).unwrap_or(e.path());
                self.in_shard(&base.join(below))
            })
            .count() as u64
    }

    fn consider(&mut self, src: PathBuf, rel: PathBuf, bytes: u64, named: bool) {
        if !self.in_shard(&rel) {
            return; // another machine's share: not opened, not counted
        }
        let format = match classify(&src) {
            Ok(Found::Image(f)) => f,
            Ok(Found::Other) if named => {
                let readable: Vec<&str> = Format::ALL
                    .into_iter()
                    .filter(|f| f.is_readable())
                    .map(Format::display_name)
                    .collect();
                let message = format!(
                    "not an image: content matches no supported format ({})",
                    readable.join(", ")
                );
                return self.fail(src, JobError::Unrecognised(message));
            }
            Ok(Found::Other) => {
                return self.feeder.report(JobResult {
                    src,
                    bytes_in: bytes,
                    pixels_in: 0,
                    input_size: None,
                    outcome: Ok(Outcome::Skipped(SkipReason::NotAnImage)),
                    stages: Default::default(),
                    rel: None,
                    manifest: None,
                    warning: None,
                    group: self.group,
                });
            }
            Err(e) => return self.fail(src, e),
        };
        if self.claims_per_folder {
            let folder = rel.parent().map(Path::to_path_buf);
            if folder != self.claims_folder {
                self.claimed.clear();
                self.claims_folder = folder;
            }
        }
        if !self.config.in_place {
            // Claim every output name (with the size and hash placeholders standing for "this
            // target of this source"), so that two inputs never write the same file.
            let settings = &self.config.settings;
            let stand_in = format!("{:016x}", crate::shard::path_hash(&src));
            for i in 0..settings.targets.len() {
                let size = (1_000_000 + i as u32, 1_000_000 + i as u32);
                for output_format in settings.output_formats(format) {
                    let hash = self
                        .config
                        .template
                        .uses_hash()
                        .then_some(stand_in.as_str());
                    let name = match naming::output_name(
                        &self.config.template,
                        &rel,
                        format,
                        output_format,
                        size,
                        hash,
                    ) {
                        Ok(n) => n,
                        Err(e) => {
                            let msg = format!("cannot name the output: {e}");
                            return self.fail(src, JobError::Conflict(msg));
                        }
                    };
                    if let Some(first) = self.claimed.get(&name) {
                        let msg = format!(
                            "output {} is already written from {}; rename one of them or use another --format or --name",
                            self.config.out_dir.join(&name).display(),
                            first.display()
                        );
                        return self.fail(src, JobError::Conflict(msg));
                    }
                    self.claimed.insert(name, src.clone());
                }
            }
        }
        let job = ImageJob {
            src,
            rel,
            input_format: format,
            bytes,
            group: self.group,
        };
        self.window.push(Pending {
            bytes,
            seq: self.seq,
            job,
        });
        self.seq += 1;
        self.found.fetch_add(1, Ordering::Relaxed);
        if self.window.len() > self.capacity {
            let Pending { job, .. } = self.window.pop().expect("non-empty");
            if !self.feeder.submit(job) {
                self.stopped = true;
            }
        }
    }

    fn fail(&self, path: PathBuf, error: JobError) {
        self.found.fetch_add(1, Ordering::Relaxed);
        self.feeder.report(JobResult {
            group: self.group,
            ..JobResult::failed(path, error)
        });
    }
}

/// Counts the files under `config.inputs` whose names promise an image, without opening them:
/// a fast estimate of the total for the progress bar while the real walk is held back by the
/// bounded queue. Stops early when `stop` is set.
pub(crate) fn estimate_total(
    config: &Config,
    estimate: &AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
) {
    let out_dir = config.out_dir.canonicalize().ok();
    for root in &config.inputs {
        for entry in tree(config, root, out_dir.as_deref()).flatten() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if is_image_name(&entry) {
                estimate.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn is_same_dir(path: &Path, out: Option<&Path>) -> bool {
    let Some(out) = out else { return false };
    // Cheap name check first; canonicalize only candidates.
    path.file_name() == out.file_name() && path.canonicalize().is_ok_and(|p| p == out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_content_then_by_promise() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            fs::write(&p, bytes).unwrap();
            p
        };
        let png_magic = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            classify(&write("noext", png_magic)).unwrap(),
            Found::Image(Format::Png)
        );
        assert_eq!(
            classify(&write("x.jpg", png_magic)).unwrap(),
            Found::Image(Format::Png)
        );
        assert_eq!(
            classify(&write("notes.txt", b"hello")).unwrap(),
            Found::Other
        );
        assert_eq!(classify(&write("README", b"")).unwrap(), Found::Other);
        let err = classify(&write("empty.jpg", b"")).unwrap_err().to_string();
        assert!(err.contains("empty file"), "{err}");
        let err = classify(&write("text.PNG", b"hello world"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an image"), "{err}");
        // HEIC is recognised by its `ftyp` brand: read with the `heif` feature, otherwise a
        // failure that names the format (never a silent skip).
        let heic = classify(&write("IMG_1.HEIC", b"\0\0\0\x18ftypheic"));
        if cfg!(feature = "heif") {
            assert_eq!(heic.unwrap(), Found::Image(Format::Heic));
        } else {
            let err = heic.unwrap_err().to_string();
            assert!(err.contains("HEIC"), "{err}");
        }
    }
}
