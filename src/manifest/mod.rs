//! The build manifest (`--manifest <FILE>`): what each source became, for web builds.
//!
//! A static-site build reads it to emit `srcset` attributes; an incremental run reads the previous
//! one to skip sources whose content, options and outputs are unchanged; sharded runs each write
//! one and [`merge()`] joins them. The JSON is deterministic (keys in struct order, sources sorted
//! by path, outputs by format then width), so an unchanged build re-saves byte-identical text
//! and a manifest can be committed or diffed.
//!
//! ```text
//! { "version": 1, "generator": "presize 0.1.0",
//!   "options": { "formats": ["webp"], "quality": 82, …, "hash": "xxh64:…" },
//!   "sources": [ { "path": "sub/a.jpg", "width": 4032, "height": 3024,
//!                  "hash": "xxh64:…", "bytes": 123456,
//!                  "outputs": [ { "path": "sub/a-320w.webp", "width": 320, "height": 240,
//!                                 "format": "webp", "bytes": 5120 } ],
//!                  "dropped": [ { "width": 5000, "reason": "larger than the source" } ],
//!                  "srcset": { "webp": "sub/a-320w.webp 320w" } } ] }
//! ```
//!
//! Paths are relative (sources to their input root, outputs to the output folder) and use `/`.
//! JSON strings are Unicode, so a source whose relative path is not UTF-8 cannot be recorded
//! ([`rel_key`] returns `None`); it is simply rebuilt every time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic::{write_atomic, Durability, WriteTarget};
use crate::config::PlaceholderKind;
use crate::error::JobError;
use crate::format::Format;
use crate::hash::content_hash;

mod lock;
mod merge;
mod options;
mod record;

pub(crate) use lock::{Holder, ManifestLock};
pub(crate) use merge::merge;
pub(crate) use options::OutputOptions;
pub(crate) use record::BuildRecord;

/// The schema version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version (1).
    pub version: u32,
    /// `presize <version>` of the build that wrote it.
    pub generator: String,
    /// The options that shaped every output.
    pub options: Options,
    /// One entry per source, sorted by [`SourceEntry::path`] (byte order). Keep the order with
    /// [`Manifest::insert`] or call [`Manifest::sort`] after editing; [`Manifest::lookup`]
    /// relies on it.
    pub sources: Vec<SourceEntry>,
}

/// The output-affecting options, with a hash for cheap comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// Named option values (widths, formats, quality per format, fit, filter, …), as the caller
    /// chooses to describe them. The key `hash` is reserved.
    #[serde(flatten)]
    pub values: BTreeMap<String, Value>,
    /// [`options_hash`] of `values`.
    pub hash: String,
}

/// What one source became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    /// Path relative to the input root, `/`-separated.
    pub path: String,
    /// Displayed (orientation-applied) width of the source.
    pub width: u32,
    /// Displayed height of the source.
    pub height: u32,
    /// The source file's content hash: `xxh64:` and 16 lower-case hex digits.
    pub hash: String,
    /// Size of the source file in bytes.
    pub bytes: u64,
    /// Every output written, sorted by format name, then width, then height.
    pub outputs: Vec<OutputEntry>,
    /// Requested sizes that were not produced, and why.
    #[serde(default)]
    pub dropped: Vec<Dropped>,
    /// `srcset` text per format name: `path width"w"` pairs by increasing width.
    #[serde(default)]
    pub srcset: BTreeMap<String, String>,
    /// `--placeholder`: what a page shows while the image loads. Absent when none was asked
    /// for, so manifests without placeholders keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<Placeholder>,
}

/// A source's placeholders (`--placeholder`), each present when asked for. They describe the
/// whole source in its displayed orientation, whatever crop its outputs have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placeholder {
    /// ThumbHash bytes, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbhash: Option<String>,
    /// BlurHash string (4 × 3 components, 3 × 4 for portrait images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
    /// The dominant colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// A blurred WebP of at most 32 px a side, as a `data:image/webp;base64,` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lqip: Option<String>,
}

impl Placeholder {
    fn slot(&mut self, kind: PlaceholderKind) -> &mut Option<String> {
        match kind {
            PlaceholderKind::Thumbhash => &mut self.thumbhash,
            PlaceholderKind::Blurhash => &mut self.blurhash,
            PlaceholderKind::Color => &mut self.color,
            PlaceholderKind::Lqip => &mut self.lqip,
        }
    }

    /// The value of `kind`, if computed.
    pub fn get(&self, kind: PlaceholderKind) -> Option<&str> {
        match kind {
            PlaceholderKind::Thumbhash => self.thumbhash.as_deref(),
            PlaceholderKind::Blurhash => self.blurhash.as_deref(),
            PlaceholderKind::Color => self.color.as_deref(),
            PlaceholderKind::Lqip => self.lqip.as_deref(),
        }
    }

    /// Sets the value of `kind`.
    pub(crate) fn set(&mut self, kind: PlaceholderKind, value: String) {
        *self.slot(kind) = Some(value);
    }

    /// These placeholders restricted to `kinds`, or `None` unless every one of them is here
    /// (then the source must be decoded to compute them).
    pub(crate) fn covering(&self, kinds: &[PlaceholderKind]) -> Option<Placeholder> {
        let mut kept = Placeholder::default();
        for &kind in kinds {
            kept.set(kind, self.get(kind)?.to_owned());
        }
        Some(kept)
    }
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputEntry {
    /// Path relative to the output folder, `/`-separated.
    pub path: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoded format.
    pub format: Format,
    /// File size in bytes.
    pub bytes: u64,
    /// Digest of the options that shaped this output; a changed option changes it, so exactly
    /// the affected outputs are redone.
    #[serde(default)]
    pub key: String,
}

/// A requested width that produced no output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// The requested width.
    pub width: u32,
    /// Why, e.g. "larger than the source".
    pub reason: String,
}

/// Why a manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file system refused.
    #[error("{what} {path}: {source}")]
    Io {
        /// What presize was doing, e.g. "cannot read manifest".
        what: &'static str,
        /// The manifest file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The manifest could not be written (it is left as it was).
    #[error("cannot write manifest {path}: {source}")]
    Write {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: JobError,
    },
    /// The file is not a manifest (or is damaged).
    #[error("manifest {path} is damaged or not a presize manifest: {source}")]
    Corrupt {
        /// The manifest file.
        path: PathBuf,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest of a schema this build does not know.
    #[error("manifest {path} has version {found}; this presize reads version {VERSION} only")]
    Version {
        /// The manifest file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

/// `presize <version>`, the [`Manifest::generator`] of this build.
pub(crate) fn generator() -> String {
    format!("presize {}", env!("CARGO_PKG_VERSION"))
}

impl Options {
    /// Wraps option values and computes their hash.
    pub fn new(values: BTreeMap<String, Value>) -> Options {
        debug_assert!(!values.contains_key("hash"), "the key `hash` is reserved");
        let hash = options_hash(&values);
        Options { values, hash }
    }
}

impl Default for Manifest {
    /// An empty manifest with no options: nothing in it is fresh.
    fn default() -> Manifest {
        Manifest::new(Options::new(BTreeMap::new()))
    }
}

impl Manifest {
    /// An empty manifest for a build with `options`.
    pub fn new(options: Options) -> Manifest {
        Manifest {
            version: VERSION,
            generator: generator(),
            options,
            sources: Vec::new(),
        }
    }

    /// Reads a manifest. A missing file is an empty manifest (the first build); anything
    /// unreadable, damaged or of another version is an error, never silently replaced.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => {
                return Err(ManifestError::Io {
                    what: "cannot read manifest",
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Manifest::from_json(&text).map_err(|e| e.at(path))
    }

    /// Parses manifest text (see [`Manifest::load`]); the result is sorted.
    fn from_json(text: &str) -> Result<Manifest, ManifestError> {
        // The version is checked before the rest, so a future schema reports its version rather
        // than a confusing field error.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let corrupt = |source| ManifestError::Corrupt {
            path: PathBuf::new(),
            source,
        };
        let Versioned { version } = serde_json::from_str(text).map_err(corrupt)?;
        if version != VERSION {
            return Err(ManifestError::Version {
                path: PathBuf::new(),
                found: version,
            });
        }
        let mut manifest: Manifest = serde_json::from_str(text).map_err(corrupt)?;
        manifest.sort();
        Ok(manifest)
    }

    /// The manifest as pretty JSON with a trailing newline, in canonical order.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut sorted;
        let manifest = if self.is_sorted() {
            self
        } else {
            sorted = self.clone();
            sorted.sort();
            &sorted
        };
        let mut text = serde_json::to_string_pretty(manifest)?;
        text.push('\n');
        Ok(text)
    }

    /// Writes the manifest atomically: a temporary file in the same folder, synced, then renamed
    /// over `path` and the folder synced, so readers (and an interrupted build, or one cut by a
    /// power failure) never see half a manifest.
    pub fn save_atomic(&self, path: &Path) -> Result<(), ManifestError> {
        self.save(path, Durability::FileAndFolder)
    }

    /// [`Manifest::save_atomic`] with the run's durability (`--no-sync` saves lazily).
    pub(crate) fn save(&self, path: &Path, sync: Durability) -> Result<(), ManifestError> {
        let io_error = |what, source| ManifestError::Io {
            what,
            path: path.to_owned(),
            source,
        };
        let text = self
            .to_json()
            .map_err(|e| io_error("cannot serialise manifest", io::Error::other(e)))?;
        let target = WriteTarget {
            sync,
            ..WriteTarget::replacing(path)
        };
        write_atomic(&target, text.as_bytes()).map_err(|source| ManifestError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(())
    }

    /// The entry for a source path (relative to its input root, `/`-separated).
    pub fn lookup(&self, rel_src: &str) -> Option<&SourceEntry> {
        self.sources
            .binary_search_by(|e| e.path.as_str().cmp(rel_src))
            .ok()
            .map(|i| &self.sources[i])
    }

    /// Adds or replaces the entry for `entry.path`, keeping the sources sorted; returns the
    /// replaced entry. The entry's outputs are sorted too.
    pub fn insert(&mut self, mut entry: SourceEntry) -> Option<SourceEntry> {
        entry.sort();
        match self
            .sources
            .binary_search_by(|e| e.path.as_str().cmp(&entry.path))
        {
            Ok(i) => Some(std::mem::replace(&mut self.sources[i], entry)),
            Err(i) => {
                self.sources.insert(i, entry);
                None
            }
        }
    }

    /// Puts sources and their outputs in canonical order.
    pub fn sort(&mut self) {
        self.sources.sort_by(|a, b| a.path.cmp(&b.path));
        for entry in &mut self.sources {
            entry.sort();
        }
    }

    fn is_sorted(&self) -> bool {
        self.sources.windows(2).all(|w| w[0].path <= w[1].path)
            && self.sources.iter().all(SourceEntry::is_sorted)
    }
}

impl SourceEntry {
    /// The freshness rule of a manifest build: output `rel` of this entry (whose source still
    /// has this entry's content hash) is up to date when it was made with `key` and `dst` is
    /// still a file of the recorded size; returns that size. A hand-edited manifest cannot make
    /// presize look outside the output folder: `dst` is the path this run's naming gives `rel`.
    /// An output edited in place without changing its size is not detected.
    pub fn fresh_output(&self, rel: &str, key: &str, dst: &Path) -> Option<u64> {
        self.outputs
            .iter()
            .find(|o| o.path == rel && o.key == key)
            .map(|o| o.bytes)
            .filter(|&bytes| std::fs::metadata(dst).is_ok_and(|m| m.is_file() && m.len() == bytes))
    }

    /// Puts outputs and dropped sizes in the canonical order (call after building an entry).
    pub fn normalise(&mut self) {
        self.sort();
    }

    fn sort(&mut self) {
        self.outputs.sort_by(output_order);
        self.dropped
            .sort_by(|a, b| (a.width, &a.reason).cmp(&(b.width, &b.reason)));
    }

    fn is_sorted(&self) -> bool {
        self.outputs
            .windows(2)
            .all(|w| output_order(&w[0], &w[1]).is_le())
            && self
                .dropped
                .windows(2)
                .all(|w| (w[0].width, &w[0].reason) <= (w[1].width, &w[1].reason))
    }
}

fn output_order(a: &OutputEntry, b: &OutputEntry) -> std::cmp::Ordering {
    (a.format.name(), a.width, a.height, &a.path).cmp(&(
        b.format.name(),
        b.width,
        b.height,
        &b.path,
    ))
}

/// The `srcset` attribute value per format name: `url w, url w` in increasing width.
///
/// URLs are the outputs' relative paths, percent-encoded where a `srcset` would break (spaces,
/// commas, non-ASCII), after `url_prefix` joined with `/` (the prefix is used verbatim).
/// A width listed twice for one format is given once.
pub(crate) fn srcset(
    outputs: &[OutputEntry],
    url_prefix: Option<&str>,
) -> BTreeMap<String, String> {
    let mut sorted: Vec<&OutputEntry> = outputs.iter().collect();
    sorted.sort_by(|a, b| output_order(a, b));
    let mut sets: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<(Format, u32)> = None;
    for output in sorted {
        if last == Some((output.format, output.width)) {
            continue;
        }
        last = Some((output.format, output.width));
        let set = sets.entry(output.format.name().to_owned()).or_default();
        if !set.is_empty() {
            set.push_str(", ");
        }
        push_url(&output.path, url_prefix, set);
        let _ = write!(set, " {}w", output.width);
    }
    sets
}

/// Appends the URL of output `path` (relative to the output folder) as a `srcset` or `src`
/// gives it: percent-encoded where a `srcset` would break (spaces, commas, non-ASCII), after
/// `url_prefix` joined with `/` (the prefix is used verbatim).
pub(crate) fn push_url(path: &str, url_prefix: Option<&str>, out: &mut String) {
    if let Some(prefix) = url_prefix.filter(|p| !p.is_empty()) {
        out.push_str(prefix);
        if !prefix.ends_with('/') {
            out.push('/');
        }
    }
    percent_encode(path, out);
}

/// Appends `path` with every byte outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded.
fn percent_encode(path: &str, out: &mut String) {
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A relative path as the manifest spells it: normal components joined by `/`. `None` when the
/// path is not UTF-8, or climbs out (`..`) or is absolute.
pub(crate) fn rel_key(rel: &Path) -> Option<String> {
    let mut key = String::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(name.to_str()?);
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(key)
}

/// A manifest path as a relative file-system path, or `None` if it would leave its folder.
/// The relative path a manifest key names, or `None` if it could leave the folder it is relative to.
pub(crate) fn safe_relative(key: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for part in key.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part if !crate::naming::is_one_normal_component(part.as_ref()) => return None,
            part => path.push(part),
        }
    }
    (!path.as_os_str().is_empty()).then_some(path)
}

/// The hash of option values: [`content_hash`] of their canonical JSON (object keys sorted,
/// no spaces), so it depends only on the values, never on insertion order or serde features.
pub(crate) fn options_hash(values: &BTreeMap<String, Value>) -> String {
    content_hash(canonical_options(values).as_bytes())
}

/// Option values as canonical JSON: object keys sorted at every level, no spaces.
fn canonical_options(values: &BTreeMap<String, Value>) -> String {
    let mut text = String::new();
    text.push('{');
    for (i, (key, value)) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        canonical_string(key, &mut text);
        text.push(':');
        canonical_json(value, &mut text);
    }
    text.push('}');
    text
}

fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => canonical_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_string(key, out);
                out.push(':');
                canonical_json(item, out);
            }
            out.push('}');
        }
    }
}

fn canonical_string(s: &str, out: &mut String) {
    // serde_json's string escaping is fixed by the JSON grammar and cannot fail for a `str`.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

impl ManifestError {
    /// Attaches the file name to an error from [`Manifest::from_json`].
    fn at(self, path: &Path) -> ManifestError {
        match self {
            ManifestError::Corrupt { source, .. } => ManifestError::Corrupt {
                path: path.to_owned(),
                source,
            },
            ManifestError::Version { found, .. } => ManifestError::Version {
                path: path.to_owned(),
                found,
            },
            other @ (ManifestError::Io { .. } | ManifestError::Write { .. }) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge::MergeError;
    use super::*;

    fn options() -> Options {
        let mut values = BTreeMap::new();
        values.insert("widths".to_owned(), json!([320, 640]));
        values.insert("formats".to_owned(), json!(["webp", "jpeg"]));
        values.insert("quality".to_owned(), json!({"webp": 80, "jpeg": 82}));
        values.insert("fit".to_owned(), json!("inside"));
        Options::new(values)
    }

    fn output(path: &str, width: u32, format: Format, bytes: u64) -> OutputEntry {
        OutputEntry {
            path: path.to_owned(),
            width,
            height: width * 3 / 4,
            format,
            bytes,
            key: String::new(),
        }
    }

    fn entry(path: &str, hash: &str) -> SourceEntry {
        let stem = path.trim_end_matches(".jpg");
        let outputs = vec![
            output(&format!("{stem}-640w.webp"), 640, Format::Webp, 30),
            output(&format!("{stem}-320w.jpg"), 320, Format::Jpeg, 20),
            output(&format!("{stem}-320w.webp"), 320, Format::Webp, 10),
        ];
        SourceEntry {
            path: path.to_owned(),
            width: 4032,
            height: 3024,
            hash: hash.to_owned(),
            bytes: 123_456,
            srcset: srcset(&outputs, None),
            outputs,
            dropped: vec![Dropped {
                width: 5000,
                reason: "larger than the source".to_owned(),
            }],
            placeholder: None,
        }
    }

    fn sample() -> Manifest {
        let mut m = Manifest::new(options());
        m.sources.push(entry("sub/b.jpg", "xxh64:00000000000000bb"));
        m.sources.push(entry("a.jpg", "xxh64:00000000000000aa"));
        m
    }

    #[test]
    fn json_is_canonical_and_re_saves_byte_identically() {
        let m = sample();
        let text = m.to_json().unwrap();
        assert!(text.ends_with("}\n"));
        // Sources by path, outputs by format name then width.
        let a = text.find("\"path\": \"a.jpg\"").unwrap();
        let b = text.find("\"path\": \"sub/b.jpg\"").unwrap();
        assert!(a < b);
        let jpeg = text.find("a-320w.jpg").unwrap();
        let webp320 = text.find("\"path\": \"a-320w.webp\"").unwrap();
        let webp640 = text.find("\"path\": \"a-640w.webp\"").unwrap();
        assert!(jpeg < webp320 && webp320 < webp640, "{text}");
        // Top-level keys in schema order; options flattened with the hash last.
        let keys = [
            "\"version\": 1",
            "\"generator\"",
            "\"options\"",
            "\"sources\"",
        ];
        let at: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains("\"widths\": [\n      320,\n      640\n    ],"));
        let reparsed = Manifest::from_json(&text).unwrap();
        assert_eq!(reparsed.to_json().unwrap(), text);
        let mut sorted = m.clone();
        sorted.sort();
        assert_eq!(reparsed, sorted);
    }

    #[test]
    fn save_and_load_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site/manifest.json");
        assert_eq!(Manifest::load(&path).unwrap(), Manifest::default());
        let m = sample();
        m.save_atomic(&path).unwrap();
        let first = std::fs::read(&path).unwrap();
        let loaded = Manifest::load(&path).unwrap();
        loaded.save_atomic(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first);
        assert_eq!(loaded.lookup("sub/b.jpg").unwrap().bytes, 123_456);
        assert!(loaded.lookup("b.jpg").is_none());
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["manifest.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_ne!(mode & 0o044, 0, "not private: {mode:o}");
        }
    }

    #[test]
    fn damaged_or_foreign_manifests_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let cases = [
            ("{\"version\": 1, \"generator\": ", "damaged"),
            ("[1, 2, 3]", "damaged"),
            ("{\"version\": 2, \"whatever\": true}", "version 2"),
            (
                "{\"version\": 1, \"generator\": \"x\", \"options\": {\"hash\": \"h\"}, \
                 \"sources\": [{\"path\": \"a\", \"width\": 1, \"height\": 1, \"hash\": \"h\", \
                 \"bytes\": 1, \"outputs\": [{\"path\": \"a.x\", \"width\": 1, \"height\": 1, \
                 \"format\": \"jxl\", \"bytes\": 1}]}]}",
                "unknown format 'jxl'",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            let message = Manifest::load(&path).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
            assert!(message.contains("m.json"), "{message}");
        }
    }

    /// Regression test for issue 12: the manifest kept its own list of formats, without AVIF,
    /// so a web build's second run failed to read its own manifest.
    #[test]
    fn every_format_round_trips_through_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let mut m = Manifest::new(options());
        let mut entry = entry("a.png", "xxh64:00000000000000aa");
        entry.outputs = Format::ALL
            .into_iter()
            .map(|f| output(&format!("a-320w.{}", f.extension()), 320, f, 10))
            .collect();
        entry.normalise();
        m.insert(entry);
        m.save_atomic(&path).unwrap();
        let loaded = Manifest::load(&path).unwrap();
        assert_eq!(loaded, m);
        let formats: Vec<Format> = loaded.sources[0].outputs.iter().map(|o| o.format).collect();
        for f in Format::ALL {
            assert!(formats.contains(&f), "{f} lost");
        }
    }

    #[test]
    fn insert_keeps_sources_sorted_and_replaces() {
        let mut m = Manifest::new(options());
        for path in ["c.jpg", "a.jpg", "b/a.jpg", "b-a.jpg"] {
            assert!(m.insert(entry(path, "xxh64:1")).is_none());
        }
        let paths: Vec<&str> = m.sources.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.jpg", "b-a.jpg", "b/a.jpg", "c.jpg"]);
        let old = m.insert(entry("b/a.jpg", "xxh64:2")).unwrap();
        assert_eq!(old.hash, "xxh64:1");
        assert_eq!(m.lookup("b/a.jpg").unwrap().hash, "xxh64:2");
        assert_eq!(m.sources.len(), 4);
        assert!(m.lookup("b/a.jpg").unwrap().is_sorted());
    }

    #[test]
    fn options_hash_ignores_key_order_and_sees_every_value() {
        let a = options();
        let mut reordered = BTreeMap::new();
        reordered.insert("quality".to_owned(), json!({"jpeg": 82, "webp": 80}));
        reordered.insert("fit".to_owned(), json!("inside"));
        reordered.insert("formats".to_owned(), json!(["webp", "jpeg"]));
        reordered.insert("widths".to_owned(), json!([320, 640]));
        assert_eq!(Options::new(reordered.clone()).hash, a.hash);
        reordered.insert("quality".to_owned(), json!({"jpeg": 82, "webp": 81}));
        assert_ne!(Options::new(reordered).hash, a.hash);
        assert!(
            a.hash.starts_with("xxh64:") && a.hash.len() == 22,
            "{}",
            a.hash
        );
        // Pinned so that a change of canonical form (which would rebuild every site) is seen.
        assert_eq!(
            canonical_options(&a.values),
            r#"{"fit":"inside","formats":["webp","jpeg"],"quality":{"jpeg":82,"webp":80},"widths":[320,640]}"#
        );
        assert_eq!(
            a.hash,
            content_hash(canonical_options(&a.values).as_bytes())
        );
        assert_eq!(options_hash(&BTreeMap::new()), content_hash(b"{}"));
    }

    #[test]
    fn an_output_is_fresh_with_its_key_and_recorded_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = sample().lookup("a.jpg").unwrap().clone();
        for o in &mut e.outputs {
            o.key = format!("key-{}", o.path);
            std::fs::write(dir.path().join(&o.path), vec![0; o.bytes as usize]).unwrap();
        }
        let webp = dir.path().join("a-640w.webp");
        let key = "key-a-640w.webp";
        assert_eq!(e.fresh_output("a-640w.webp", key, &webp), Some(30));
        assert_eq!(e.fresh_output("a-640w.webp", "other options", &webp), None);
        assert_eq!(
            e.fresh_output("a-320w.webp", key, &webp),
            None,
            "another output's key"
        );
        std::fs::write(&webp, b"short").unwrap();
        assert_eq!(
            e.fresh_output("a-640w.webp", key, &webp),
            None,
            "size changed"
        );
        std::fs::remove_file(&webp).unwrap();
        assert_eq!(e.fresh_output("a-640w.webp", key, &webp), None, "gone");
        std::fs::create_dir(&webp).unwrap();
        assert_eq!(
            e.fresh_output("a-640w.webp", key, &webp),
            None,
            "not a file"
        );
    }

    #[test]
    fn srcset_lists_each_format_by_increasing_width() {
        let outputs = [
            output("p/a-640w.webp", 640, Format::Webp, 1),
            output("p/a-320w.webp", 320, Format::Webp, 1),
            output("p/a-320w.jpg", 320, Format::Jpeg, 1),
            output("p/a-320w-dup.webp", 320, Format::Webp, 1),
        ];
        let sets = srcset(&outputs, None);
        assert_eq!(sets.len(), 2);
        assert_eq!(sets["jpeg"], "p/a-320w.jpg 320w");
        assert_eq!(sets["webp"], "p/a-320w-dup.webp 320w, p/a-640w.webp 640w");
        let sets = srcset(&outputs[..1], Some("https://cdn.example/img"));
        assert_eq!(sets["webp"], "https://cdn.example/img/p/a-640w.webp 640w");
        let sets = srcset(&outputs[..1], Some("/img/"));
        assert_eq!(sets["webp"], "/img/p/a-640w.webp 640w");
        let odd = [output("my photos/été,1.webp", 320, Format::Webp, 1)];
        assert_eq!(
            srcset(&odd, None)["webp"],
            "my%20photos/%C3%A9t%C3%A9%2C1.webp 320w"
        );
        assert!(srcset(&[], None).is_empty());
    }

    #[test]
    fn merge_joins_shards_and_sorts() {
        let mut one = Manifest::new(options());
        one.insert(entry("b.jpg", "xxh64:b"));
        let mut two = Manifest::new(options());
        two.insert(entry("a.jpg", "xxh64:a"));
        two.insert(entry("b.jpg", "xxh64:b"));
        let merged = merge(&[one.clone(), two]).unwrap();
        let paths: Vec<&str> = merged.sources.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.jpg", "b.jpg"]);
        assert_eq!(merged.options, one.options);
        assert_eq!(merge(&[one.clone()]).unwrap(), one);
        assert_eq!(merge(&[]), Err(MergeError::Empty));
    }

    #[test]
    fn merge_refuses_conflicts() {
        let mut one = Manifest::new(options());
        one.insert(entry("a.jpg", "xxh64:1"));
        let mut changed = Manifest::new(options());
        changed.insert(entry("a.jpg", "xxh64:2"));
        assert_eq!(
            merge(&[one.clone(), changed]),
            Err(MergeError::SourceConflict {
                path: "a.jpg".into(),
                first: 1,
                second: 2
            })
        );
        let mut other_options = Manifest::new(Options::new(BTreeMap::new()));
        other_options.insert(entry("z.jpg", "xxh64:3"));
        let err = merge(&[one.clone(), other_options]).unwrap_err();
        assert!(
            matches!(err, MergeError::OptionsDiffer { part: 2, .. }),
            "{err}"
        );
        // A different source writing the same output file.
        let mut clash = Manifest::new(options());
        let mut twin = entry("a.png", "xxh64:4");
        twin.outputs = entry("a.jpg", "xxh64:4").outputs;
        clash.insert(twin.clone());
        assert_eq!(
            merge(&[one.clone(), clash]),
            Err(MergeError::OutputConflict {
                output: "a-320w.jpg".into(),
                first: "a.jpg".into(),
                second: "a.png".into()
            })
        );
        // ... unless both have the same content, which gives the same output.
        twin.hash = "xxh64:1".into();
        let mut same = Manifest::new(options());
        same.insert(twin);
        assert_eq!(merge(&[one, same]).unwrap().sources.len(), 2);
    }

    #[test]
    fn rel_key_spells_paths_with_slashes_and_refuses_escapes() {
        assert_eq!(
            rel_key(Path::new("a/b/c.jpg")).as_deref(),
            Some("a/b/c.jpg")
        );
        assert_eq!(rel_key(Path::new("./a//c.jpg")).as_deref(), Some("a/c.jpg"));
        assert_eq!(rel_key(Path::new("../a.jpg")), None);
        assert_eq!(rel_key(Path::new("/a.jpg")), None);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let raw = Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
            assert_eq!(rel_key(raw), None);
        }
        assert_eq!(safe_relative("a/./b.webp"), Some(PathBuf::from("a/b.webp")));
        assert_eq!(safe_relative("a/../../b.webp"), None);
        assert_eq!(safe_relative("/"), None);
        #[cfg(unix)]
        assert_eq!(
            safe_relative("10:30.webp"),
            Some(PathBuf::from("10:30.webp"))
        );
    }
}
