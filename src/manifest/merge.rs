//! Joining the manifests of the shards of one build (`presize manifest merge`).

use std::collections::BTreeMap;

use super::{Manifest, SourceEntry, VERSION};

/// Why manifests could not be merged. Parts are numbered from 1 in the order given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MergeError {
    /// Nothing to merge.
    #[error("no manifests to merge")]
    Empty,
    /// Two parts were built with different options, so their outputs do not belong together.
    #[error(
        "manifest {part} was built with different options than manifest 1 \
         (options hash {found}, expected {expected})"
    )]
    OptionsDiffer {
        /// The part that differs.
        part: usize,
        /// Manifest 1's options hash.
        expected: String,
        /// This part's options hash.
        found: String,
    },
    /// The same source is recorded differently in two parts.
    #[error("source '{path}' differs between manifests {first} and {second}")]
    SourceConflict {
        /// The source's relative path.
        path: String,
        /// The first part holding it.
        first: usize,
        /// The part that disagrees.
        second: usize,
    },
    /// Two different sources claim the same output file.
    #[error("output '{output}' is claimed by both '{first}' and '{second}'")]
    OutputConflict {
        /// The output's relative path.
        output: String,
        /// One source.
        first: String,
        /// The other source.
        second: String,
    },
}

/// Joins the manifests of several shards of one build.
///
/// Every part must have the same options. A source in several parts must be recorded
/// identically (the same source seen twice is fine; two different versions are a conflict),
/// and no output may be claimed by two sources with different content. The result keeps the
/// first part's generator and is sorted.
pub(crate) fn merge(parts: &[Manifest]) -> Result<Manifest, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let mut sources: BTreeMap<&str, (usize, &SourceEntry)> = BTreeMap::new();
    for (i, part) in parts.iter().enumerate() {
        let part_no = i + 1;
        if part.options != first.options {
            return Err(MergeError::OptionsDiffer {
                part: part_no,
                expected: first.options.hash.clone(),
                found: part.options.hash.clone(),
            });
        }
        for entry in &part.sources {
            if let Some(&(seen_in, seen)) = sources.get(entry.path.as_str()) {
                if !same_entry(seen, entry) {
                    return Err(MergeError::SourceConflict {
                        path: entry.path.clone(),
                        first: seen_in,
                        second: part_no,
                    });
                }
            } else {
                sources.insert(&entry.path, (part_no, entry));
            }
        }
    }
    let mut claims: BTreeMap<&str, &SourceEntry> = BTreeMap::new();
    for &(_, entry) in sources.values() {
        for output in &entry.outputs {
            if let Some(other) = claims.insert(&output.path, entry) {
                // Identical content gives identical outputs (content-addressed names).
                if other.hash != entry.hash {
                    return Err(MergeError::OutputConflict {
                        output: output.path.clone(),
                        first: other.path.clone(),
                        second: entry.path.clone(),
                    });
                }
            }
        }
    }
    let mut merged = Manifest {
        version: VERSION,
        generator: first.generator.clone(),
        options: first.options.clone(),
        sources: sources.into_values().map(|(_, e)| e.clone()).collect(),
    };
    merged.sort();
    Ok(merged)
}

/// Compares entries regardless of output order.
fn same_entry(a: &SourceEntry, b: &SourceEntry) -> bool {
    if a.is_sorted() && b.is_sorted() {
        return a == b;
    }
    let (mut a, mut b) = (a.clone(), b.clone());
    a.sort();
    b.sort();
    a == b
}
