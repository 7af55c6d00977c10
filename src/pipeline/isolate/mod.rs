//! `--isolate`: every decoder that parses input (libjpeg-turbo, libheif and what it loads, and
//! the `image` crate's readers) runs in a decoder process, so a crash inside one costs that file
//! only: it fails as `decoder crashed (signal 11)`, the worker starts a new process on its next
//! image, and the run goes on.
//!
//! ```text
//! worker thread ──Probe + file bytes──▶ decoder process (this binary, `--decoder-process`)
//!               ◀──header──────────────   probe: header + metadata, decoder kept
//!   plan, memory
//!               ──Decode {min size}────▶
//!               ◀──pixels──────────────   decode: the kept decoder, shrink-on-load
//! ```
//!
//! [`probe()`] and [`decode()`] are the pipeline's two calls into a decoder; here, once, they choose
//! between this process and the decoder process ([`isolated`]). One process per worker thread,
//! started on its first image and kept, so the cost is two pipe round trips and one copy of the
//! decoded pixels per image. On Linux the process confines itself with a seccomp filter before
//! it reads any input (`sandbox`). `--image-timeout` kills a stuck decoder process through
//! [`JobHandle::kill_on_abandon`].
//!
//! The process holds its own copy of the input and of the decoded pixels while it sends them:
//! `load` reserves that second copy in the memory budget too.
//!
//! SVG stays in this process: resvg is pure Rust, and text needs the system's fonts, read from
//! files a confined process cannot open.

mod process;
mod sandbox;
mod serve;
mod wire;

use std::io::Write;
use std::path::Path;

use crate::config::FailOn;
use crate::error::JobError;
use crate::format::Format;
use crate::pool::JobHandle;

use super::context::Context;
use super::decode::{self, DecodeScratch, Header, Probe};
use super::pixels::Pixels;

pub(crate) use process::DecoderProcess;
pub use process::DECODER_ARG;
pub use serve::serve;

/// Whether `format` is decoded in the worker's decoder process: the one home of that choice.
pub(super) fn isolated(ctx: &Context, format: Format) -> bool {
    ctx.mode.isolate && !format.is_vector()
}

/// A probed source: its header, and where the decoder that read it waits for [`decode()`].
pub(super) enum Probed<'b> {
    /// In this process (boxed: a probe holds a libjpeg-turbo header and a decoder).
    Here(Box<Probe<'b>>),
    /// In the worker's decoder process, which also reported the coefficient memory a
    /// progressive JPEG's decode will hold.
    There { header: Header, coefficients: u64 },
}

impl Probed<'_> {
    /// What the header says.
    pub(super) fn header(&self) -> &Header {
        match self {
            Probed::Here(p) => &p.header,
            Probed::There { header, .. } => header,
        }
    }

    /// The header, to take the metadata from.
    pub(super) fn header_mut(&mut self) -> &mut Header {
        match self {
            Probed::Here(p) => &mut p.header,
            Probed::There { header, .. } => header,
        }
    }

    /// Bytes of DCT coefficients the decode will hold (progressive JPEG), for the budget.
    pub(super) fn coefficient_bytes(&self, bytes: &[u8]) -> u64 {
        match self {
            Probed::Here(p) => decode::jpeg_coefficient_bytes(bytes, &p.header),
            Probed::There { coefficients, .. } => *coefficients,
        }
    }

    /// Returns true if and only if the decode happens in the decoder process.
    pub(super) fn is_remote(&self) -> bool {
        matches!(self, Probed::There { .. })
    }
}

/// The probe stage's decoder call: reads the header of `bytes` (the file `src`), here or in the
/// decoder process.
pub(super) fn probe<'b>(
    ctx: &Context,
    (src, format): (&Path, Format),
    bytes: &'b [u8],
    (local, remote): (&mut DecodeScratch, &mut Option<DecoderProcess>),
    handle: &JobHandle,
) -> Result<Probed<'b>, JobError> {
    let max_pixels = ctx.settings.max_pixels;
    if !isolated(ctx, format) {
        return decode::probe(bytes, format, max_pixels, local).map(|p| Probed::Here(Box::new(p)));
    }
    let request = wire::Request::Probe {
        format,
        max_pixels,
        name: src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        len: bytes.len() as u64,
    };
    let reply = call(remote, handle, |p| {
        request.frame().send(&mut p.to)?;
        p.to.write_all(bytes)?;
        p.to.flush()?;
        wire::parse_header(wire::receive(&mut p.from, &mut p.frame)?)
    })?;
    let (header, coefficients) = reply?;
    Ok(Probed::There {
        header,
        coefficients,
    })
}

/// The decode stage's decoder call: the pixels of a probed source (`min_size` and `threads` as
/// for [`decode::decode_probed`]); damage read through is noted in `local` as in this process.
pub(super) fn decode(
    (bytes, format): (&[u8], Format),
    probed: Probed<'_>,
    (min_size, threads, fail_on): (Option<(f64, f64)>, usize, FailOn),
    (local, remote): (&mut DecodeScratch, &mut Option<DecoderProcess>),
    handle: &JobHandle,
) -> Result<Pixels, JobError> {
    local.set_fail_on(fail_on);
    let header = match probed {
        Probed::Here(probe) => {
            return decode::decode_probed(bytes, format, *probe, min_size, local, threads)
        }
        Probed::There { header, .. } => header,
    };
    let request = wire::Request::Decode {
        min_size,
        threads,
        fail_on,
    };
    // A decode never grows the image (shrink-on-load only shrinks), so nothing larger than the
    // header's size at 16-bit RGBA is accepted from the process.
    let most = u64::from(header.width) * u64::from(header.height) * 8;
    let reply = call(remote, handle, |p| {
        request.frame().send(&mut p.to)?;
        p.to.flush()?;
        let announced = match wire::parse_pixels(wire::receive(&mut p.from, &mut p.frame)?)? {
            Ok(a) if a.len > most => return Err(wire::bad("more pixels than the header said")),
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let mut data = Vec::new();
        wire::receive_bulk(&mut p.from, announced.len, &mut data)?;
        Ok(Ok((announced, data)))
    })?;
    let (a, data) = reply?;
    local.note_damage(a.damage);
    Ok(Pixels {
        data,
        width: a.width,
        height: a.height,
        layout: a.layout,
        depth: a.depth,
    })
}

/// One exchange with the worker's decoder process, started first if there is none. If the
/// process dies (or breaks the protocol) the job fails with how, and the process is dropped:
/// the worker's next image starts a new one.
fn call<T>(
    remote: &mut Option<DecoderProcess>,
    handle: &JobHandle,
    talk: impl FnOnce(&mut DecoderProcess) -> std::io::Result<T>,
) -> Result<T, JobError> {
    let process = match remote {
        Some(p) => p,
        None => remote.insert(DecoderProcess::start()?),
    };
    match process.exchange(handle, talk) {
        Ok(t) => Ok(t),
        Err(e) => {
            let error = process.post_mortem(&e);
            *remote = None;
            if handle.is_abandoned() {
                return Err(JobError::Abandoned);
            }
            Err(error)
        }
    }
}
