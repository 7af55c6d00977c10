//! What a build run records for its manifest, and what it may delete afterwards (`--prune`).
//!
//! The consumer thread notes every [`JobResult`] as it arrives; once the run is over,
//! [`BuildRecord::finish`] joins this run's entries with the previous manifest's and prunes
//! outputs whose sources are gone.

use std::path::Path;

use crate::config::Config;
use crate::job::JobResult;
use crate::shard;

use super::{safe_relative, Manifest, OutputOptions, SourceEntry};

/// What a run learns for its manifest: each source's new entry, and which sources it saw.
#[derive(Default)]
pub(crate) struct BuildRecord {
    /// Only a run with a manifest keeps anything (memory stays flat without one).
    active: bool,
    entries: Vec<SourceEntry>,
    seen: std::collections::HashSet<String>,
    walk_errors: u64,
}

impl BuildRecord {
    /// A record that keeps entries only when the run has a manifest.
    pub(crate) fn new(active: bool) -> Self {
        BuildRecord {
            active,
            ..BuildRecord::default()
        }
    }

    pub(crate) fn note(&mut self, result: &mut JobResult) {
        if !self.active {
            return;
        }
        if let Some(rel) = &result.rel {
            self.seen.insert(rel.clone());
        } else if result.outcome.is_err() {
            // A failure the walker met (an unreadable folder, say): sources below it may look
            // gone while they are not, so this run must not prune.
            self.walk_errors += 1;
        }
        if let Some(entry) = result.manifest.take() {
            self.entries.push(entry);
        }
    }

    /// The new manifest: this run's entries, plus the previous entries of sources this run did
    /// not record (failed, not reached, or gone). With `--prune` after a complete run, sources
    /// that are gone lose their entries and their output files, and sources still here lose the
    /// outputs they no longer produce.
    pub(crate) fn finish(
        self,
        config: &Config,
        previous: Manifest,
        complete: bool,
    ) -> anyhow::Result<Manifest> {
        let mut next =
            Manifest::new(OutputOptions::new(&config.settings, &config.template).manifest());
        if config.prune && self.walk_errors > 0 {
            eprintln!(
                "presize: not pruning: {} input(s) could not be read, so their outputs may only look orphaned",
                self.walk_errors
            );
        }
        let prune = config.prune && complete && self.walk_errors == 0;
        let mut doomed: Vec<String> = Vec::new();
        let mut fresh: std::collections::HashMap<String, SourceEntry> = self
            .entries
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect();
        for old in previous.sources {
            let in_shard = config
                .shard
                .as_ref()
                .is_none_or(|s| s.contains(&shard::key(Path::new(&old.path))));
            match fresh.get(&old.path) {
                Some(new) => {
                    if prune {
                        doomed.extend(
                            old.outputs
                                .iter()
                                .filter(|o| !new.outputs.iter().any(|n| n.path == o.path))
                                .map(|o| o.path.clone()),
                        );
                    }
                }
                None if prune
                    && in_shard
                    && !self.seen.contains(&old.path)
                    && source_is_gone(config, &old.path) =>
                {
                    doomed.extend(old.outputs.iter().map(|o| o.path.clone()));
                }
                None => {
                    next.insert(old);
                }
            }
        }
        for (_, entry) in fresh.drain() {
            next.insert(entry);
        }
        // Never delete a file that a current entry still lists (two sources may share names
        // across a template change).
        let kept: std::collections::HashSet<&str> = next
            .sources
            .iter()
            .flat_map(|s| s.outputs.iter().map(|o| o.path.as_str()))
            .collect();
        let root = config.out_dir.canonicalize().ok();
        for rel in doomed.iter().filter(|r| !kept.contains(r.as_str())) {
            if let Some(path) = safe_relative(rel) {
                let path = config.out_dir.join(path);
                // Never delete through a symlinked folder planted in the output tree.
                let inside = path
                    .parent()
                    .and_then(|p| p.canonicalize().ok())
                    .zip(root.as_ref())
                    .is_some_and(|(parent, root)| parent.starts_with(root));
                if !inside {
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => eprintln!("presize: cannot prune {}: {e}", path.display()),
                }
            }
        }
        Ok(next)
    }
}

/// Whether a manifest source (a path relative to one of the inputs) no longer exists. Only a
/// definite "not found" counts: a source this run did not list, or cannot read, is kept.
fn source_is_gone(config: &Config, rel: &str) -> bool {
    let Some(rel) = safe_relative(rel) else {
        return false;
    };
    let missing = |p: &Path| {
        std::fs::symlink_metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    };
    let candidates: Vec<std::path::PathBuf> = if config.listed {
        vec![rel.clone()]
    } else {
        config
            .inputs
            .iter()
            .map(|root| {
                if root.is_dir() {
                    root.join(&rel)
                } else {
                    root.with_file_name(&rel)
                }
            })
            .collect()
    };
    !candidates.is_empty() && candidates.iter().all(|c| missing(c))
}
