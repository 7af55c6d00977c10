//! What a build run records for its manifest, and what it may delete afterwards (`--prune`).
//!
//! The consumer thread notes every [`JobResult`] as it arrives; once the run is over,
//! [`BuildRecord::finish`] joins this run's entries with the previous manifest's and prunes
//! outputs whose sources are gone.

use std::collections::{HashMap, HashSet};
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
    seen: HashSet<String>,
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
    /// outputs they no longer produce. Returns the manifest and the warnings for the user.
    pub(crate) fn finish(
        self,
        config: &Config,
        previous: Manifest,
        complete: bool,
    ) -> (Manifest, Vec<String>) {
        let mut warnings = Vec::new();
        if config.prune && self.walk_errors > 0 {
            warnings.push(format!(
                "not pruning: {} input(s) could not be read, so their outputs may only look orphaned",
                self.walk_errors
            ));
        }
        let prune = config.prune && complete && self.walk_errors == 0;
        let (next, doomed) = self.join(config, previous, prune);
        warnings.extend(delete_outputs(config, &next, &doomed));
        (next, warnings)
    }

    /// This run's entries joined with `previous`; with `prune`, also the outputs that no entry
    /// should list any more (their sources are gone, or no longer make them).
    fn join(self, config: &Config, previous: Manifest, prune: bool) -> (Manifest, Vec<String>) {
        let mut next =
            Manifest::new(OutputOptions::new(&config.settings, &config.template).manifest());
        let mut doomed: Vec<String> = Vec::new();
        let mut fresh: HashMap<String, SourceEntry> = self
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
                Some(new) if prune => doomed.extend(
                    old.outputs
                        .iter()
                        .filter(|o| !new.outputs.iter().any(|n| n.path == o.path))
                        .map(|o| o.path.clone()),
                ),
                Some(_) => {}
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
        (next, doomed)
    }
}

/// `--prune`: deletes the `doomed` outputs (paths relative to the output folder), except any
/// that an entry of `next` still lists (two sources may share names across a template change)
/// and any reached through a symbolic link out of the output folder. Returns what could not
/// be deleted, as warnings.
fn delete_outputs(config: &Config, next: &Manifest, doomed: &[String]) -> Vec<String> {
    let kept: HashSet<&str> = next
        .sources
        .iter()
        .flat_map(|s| s.outputs.iter().map(|o| o.path.as_str()))
        .collect();
    let root = config.out_dir.canonicalize().ok();
    let mut warnings = Vec::new();
    for rel in doomed.iter().filter(|r| !kept.contains(r.as_str())) {
        let Some(path) = safe_relative(rel).map(|p| config.out_dir.join(p)) else {
            continue;
        };
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
            Err(e) => warnings.push(format!("cannot prune {}: {e}", path.display())),
        }
    }
    warnings
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
