//! `--watch`: after the first run, wait for the inputs to change and run again.
//!
//! The runs are ordinary [`crate::run_jobs`] runs with a manifest, so its rules decide what is
//! redone: an unchanged source stops after its content hash, a changed one is made again, and
//! with `--prune` a deleted one's outputs go. Events come from `notify` (inotify, FSEvents,
//! ReadDirectoryChangesW) and are debounced: a run starts [`QUIET`] after the last change, so
//! an editor's save or a copied folder is one run. Called by the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::config::{Config, Verbosity};
use crate::exit::Exit;
use crate::report::{self, Reporter};

/// How long the inputs must stay unchanged before a run starts.
const QUIET: Duration = Duration::from_millis(200);

/// How often an idle watch looks at the stop flag (Ctrl-C).
const TICK: Duration = Duration::from_millis(100);

/// Runs `configs` (one pool), then, with `--watch`, again after every change to their inputs
/// until `cancel` is set. Returns the exit code of the last run, or 130 when stopped while
/// waiting.
pub fn run(configs: &[Config], cancel: &Arc<AtomicBool>) -> anyhow::Result<Exit> {
    let Some(first) = configs.first() else {
        return Ok(Exit::Success);
    };
    // Watching starts before the first run, so that a change made during it is not missed.
    let changes = if first.watch {
        Some(Changes::new(configs)?)
    } else {
        None
    };
    let quiet = first.verbosity == Verbosity::Quiet || first.json;
    loop {
        let summary = crate::run_jobs(configs, cancel, Reporter::new(first))?;
        let exit = Exit::from_summary(&summary);
        let Some(changes) = &changes else {
            return Ok(exit);
        };
        if cancel.load(Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        report::watching(changes.roots, quiet);
        match changes.wait(cancel) {
            Some(paths) => report::changed(&paths, quiet),
            None => return Ok(Exit::Interrupted),
        }
    }
}

/// The file-system events of every job's inputs, minus presize's own writes.
struct Changes {
    /// Kept alive: dropping it stops the events.
    _watcher: notify::RecommendedWatcher,
    events: mpsc::Receiver<notify::Result<notify::Event>>,
    /// Input folders (canonical), watched with everything below them.
    folders: Vec<PathBuf>,
    /// Input files (canonical), watched through their folder.
    files: Vec<PathBuf>,
    /// Output folders, manifests and reports (canonical): writing them is no change.
    ignored: Vec<PathBuf>,
    /// How many inputs are watched.
    roots: usize,
}

impl Changes {
    fn new(configs: &[Config]) -> anyhow::Result<Changes> {
        let (tx, events) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .context("cannot watch the inputs")?;
        let (mut folders, mut files, mut ignored) = (Vec::new(), Vec::new(), Vec::new());
        let mut watched = BTreeSet::new();
        for config in configs {
            for input in &config.inputs {
                let path = input
                    .canonicalize()
                    .with_context(|| format!("cannot watch {}", input.display()))?;
                let (target, mode) = if path.is_dir() {
                    folders.push(path.clone());
                    (path, RecursiveMode::Recursive)
                } else {
                    // An editor replaces a file by renaming a new one over it: the file's own
                    // watch would end there, its folder's does not.
                    let folder = path
                        .parent()
                        .map_or_else(|| path.clone(), Path::to_path_buf);
                    files.push(path);
                    (folder, RecursiveMode::NonRecursive)
                };
                if watched.insert((target.clone(), mode == RecursiveMode::Recursive)) {
                    watcher
                        .watch(&target, mode)
                        .with_context(|| format!("cannot watch {}", target.display()))?;
                }
            }
            let written = [
                Some(&config.out_dir),
                config.manifest.as_ref(),
                config.report.as_ref(),
            ];
            ignored.extend(written.into_iter().flatten().filter_map(|p| canonical(p)));
        }
        // Two jobs over one folder watch it once.
        folders.sort();
        folders.dedup();
        files.sort();
        files.dedup();
        let roots = folders.len() + files.len();
        Ok(Changes {
            _watcher: watcher,
            events,
            folders,
            files,
            ignored,
            roots,
        })
    }

    /// Returns true if and only if a change at `path` may change an output.
    fn matters(&self, path: &Path) -> bool {
        let temporary = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".presize-") && n.ends_with(".part"));
        !temporary
            && !self.ignored.iter().any(|i| path.starts_with(i))
            && (self.files.iter().any(|f| f == path)
                || self.folders.iter().any(|f| path.starts_with(f)))
    }

    /// Waits for the first change that matters, then for [`QUIET`] without one; returns the
    /// changed paths (none when the system lost track of them), or `None` once `cancel` is set.
    fn wait(&self, cancel: &AtomicBool) -> Option<Vec<PathBuf>> {
        let mut changed = BTreeSet::new();
        let mut unknown = false;
        let mut last = Instant::now();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            let pending = unknown || !changed.is_empty();
            let timeout = if !pending {
                TICK
            } else {
                QUIET.saturating_sub(last.elapsed()).min(TICK)
            };
            match self.events.recv_timeout(timeout) {
                Ok(Ok(event)) if !matches!(event.kind, EventKind::Access(_)) => {
                    let (before, rescan) = (changed.len(), event.need_rescan());
                    changed.extend(event.paths.into_iter().filter(|p| self.matters(p)));
                    if rescan || changed.len() > before {
                        unknown |= rescan;
                        last = Instant::now();
                    }
                }
                // A lost event (an overflowing queue): a run finds out what changed.
                Ok(Err(_)) => {
                    unknown = true;
                    last = Instant::now();
                }
                Ok(Ok(_)) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if pending && last.elapsed() >= QUIET {
                        return Some(changed.into_iter().collect());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// `path` made canonical even when its last part does not exist yet (a manifest before the
/// first run).
fn canonical(path: &Path) -> Option<PathBuf> {
    path.canonicalize().ok().or_else(|| {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
        Some(parent.canonicalize().ok()?.join(path.file_name()?))
    })
}
