//! What a worker's pipeline runs with: the run-wide [`Context`] shared by every worker, and the
//! [`Scratch`] each worker owns and reuses from job to job.
//!
//! A leaf of the pipeline: every stage reads these, and this module imports no stage but the
//! codecs' scratch types (and the decoder process's handle, itself a leaf below `isolate`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::atomic::Durability;
use crate::budget::Budget;
use crate::config::Settings;
use crate::manifest::Manifest;
use crate::naming::Template;

use super::{color, decode, encode, isolate, resize};

/// Run-wide switches a worker needs besides the image settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// Replace outputs even when newer than the input.
    pub overwrite: bool,
    /// Redo every output, ignoring the manifest and existing files (`--force`).
    pub force: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Do everything but write the output (benchmark mode).
    pub discard: bool,
    /// Each output replaces its input (`--in-place`).
    pub in_place: bool,
    /// How each output reaches the disk (`Config::sync_outputs`).
    pub sync: Durability,
    /// Each output gets its source's modification time (`--keep-mtime`).
    pub keep_mtime: bool,
    /// Decode in a confined decoder process per worker (`--isolate`, see `isolate`).
    pub isolate: bool,
}

/// Everything a worker shares with the others for the whole run.
#[derive(Debug)]
pub struct Context {
    /// How to resize and encode.
    pub settings: Settings,
    /// Run-wide switches.
    pub mode: Mode,
    /// Decoded-image memory shared by all workers (and by every job of a build file, whose
    /// contexts hold the one budget).
    pub budget: Arc<Budget>,
    /// The output folder as given; outputs are named below it.
    pub out_dir: PathBuf,
    /// The canonical output folder: no write may land outside it (a symlink planted in the
    /// output tree is never written through). `None` in place or when nothing is written.
    pub out_root: Option<PathBuf>,
    /// Output file names below `out_dir`.
    pub template: Template,
    /// With `--manifest`: the previous manifest (empty on a first run), consulted to skip
    /// unchanged work, and the signal to describe every source for the new one.
    pub manifest: Option<Manifest>,
}

impl Context {
    /// A context with the given settings, the default mode and names, an unlimited budget, no
    /// manifest and no confinement.
    pub fn new(settings: Settings) -> Context {
        let template = Template::default_for(settings.targets.len());
        Context {
            settings,
            mode: Mode::default(),
            budget: Arc::new(Budget::new(u64::MAX)),
            out_dir: PathBuf::new(),
            out_root: None,
            template,
            manifest: None,
        }
    }
}

/// A worker's reusable state: codec handles, resizer buffers, the input read buffer.
#[derive(Default)]
pub struct Scratch {
    pub(super) decode: decode::DecodeScratch,
    /// With `--isolate`: the worker's decoder process, started on first use and replaced after
    /// it dies.
    pub(super) decoder: Option<isolate::DecoderProcess>,
    pub(super) make: MakeScratch,
    pub(super) input: Vec<u8>,
}

/// The part of a worker's state that makes outputs from decoded pixels; a helper thread of a
/// job (see `make::make_in_parallel`) has its own.
#[derive(Default)]
pub(super) struct MakeScratch {
    pub(super) color: color::ColorScratch,
    pub(super) resize: resize::ResizeScratch,
    pub(super) encode: encode::EncodeScratch,
}
