//! The decoder process's side: `presize --decoder-process` confines itself, then serves probe
//! and decode requests on stdin/stdout until stdin closes.
//!
//! It keeps the decoder that read a header for the decode that may follow (so a file is parsed
//! once, as in the parent), and its own [`DecodeScratch`] across files. A panic inside a decoder
//! is caught and sent back as that file's error; anything worse ends the process, which is the
//! point.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::panic::{self, AssertUnwindSafe};

use crate::error::JobError;
use crate::pipeline::decode::{self, DecodeScratch};

use super::wire::{self, Request};

/// Runs the decoder process; returns its exit code (0 when the parent closed its stdin).
pub fn serve() -> u8 {
    // If presize dies without ending it (a second Ctrl-C exits at once), so does this process,
    // even in the middle of a decode.
    // (Not for the debug-build `hang` fault: its test checks that the watchdog's kill, not
    // presize's exit, ends a stuck decoder.)
    #[cfg(target_os = "linux")]
    if !(cfg!(debug_assertions) && debug_fault_is("hang")) {
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    }
    let sandbox = prepare_and_confine();
    let mut to = BufWriter::with_capacity(64 << 10, io::stdout().lock());
    let ready = sandbox.is_ok();
    if wire::hello(sandbox)
        .send(&mut to)
        .and_then(|()| to.flush())
        .is_err()
        || !ready
    {
        return 3;
    }
    let mut from = BufReader::with_capacity(64 << 10, io::stdin().lock());
    match serve_requests(&mut from, &mut to) {
        Ok(()) => 0,
        Err(_) => 4,
    }
}

/// What the decoders need from outside, loaded before the filter forbids it, then the filter.
fn prepare_and_confine() -> Result<(), String> {
    #[cfg(feature = "heif")]
    crate::pipeline::heif::warm_up();
    super::sandbox::confine()
}

fn serve_requests(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut scratch = DecodeScratch::default();
    let (mut frame, mut input) = (Vec::new(), Vec::new());
    let Some(mut next) = next_request(from, &mut frame)? else {
        return Ok(());
    };
    loop {
        let Request::Probe {
            format,
            max_pixels,
            name,
            len,
        } = next
        else {
            return Err(wire::bad("decode without a probe"));
        };
        // Keep the buffer from pinning a huge allocation after one big file.
        if input.capacity() > 64 << 20 {
            input = Vec::new();
        }
        wire::receive_bulk(from, len, &mut input)?;
        #[cfg(debug_assertions)]
        debug_fault(&name);
        let _ = name;
        let probed = guarded(|| decode::probe(&input, format, max_pixels, &mut scratch));
        let probe = match probed {
            Ok(probe) => probe,
            Err(e) => {
                wire::header_reply(&Err(e)).send(to)?;
                to.flush()?;
                match next_request(from, &mut frame)? {
                    Some(r) => next = r,
                    None => return Ok(()),
                }
                continue;
            }
        };
        let coefficients = decode::jpeg_coefficient_bytes(&input, &probe.header);
        wire::header_reply(&Ok((&probe.header, coefficients))).send(to)?;
        to.flush()?;
        next = match next_request(from, &mut frame)? {
            Some(Request::Decode {
                min_size,
                threads,
                fail_on,
            }) => {
                scratch.set_fail_on(fail_on);
                let decoded = guarded(|| {
                    decode::decode_probed(&input, format, probe, min_size, &mut scratch, threads)
                });
                let damage = scratch.take_damage();
                match decoded {
                    Ok(px) => {
                        wire::pixels_reply(&Ok((&px, damage))).send(to)?;
                        to.write_all(&px.data)?;
                    }
                    Err(e) => wire::pixels_reply(&Err(e)).send(to)?,
                }
                to.flush()?;
                match next_request(from, &mut frame)? {
                    Some(r) => r,
                    None => return Ok(()),
                }
            }
            // Planning found nothing to decode: the next file.
            Some(r) => r,
            None => return Ok(()),
        };
    }
}

/// The next request, or `None` once the parent has closed the pipe.
fn next_request(from: &mut impl Read, frame: &mut Vec<u8>) -> io::Result<Option<Request>> {
    match wire::receive(from, frame) {
        Ok(f) => Request::parse(f).map(Some),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs a decoder, turning a panic into the file's error as the worker pool would.
fn guarded<T>(f: impl FnOnce() -> Result<T, JobError>) -> Result<T, JobError> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(JobError::Panicked(crate::pool::panic_message(
            payload.as_ref(),
        )))
    })
}

/// Returns true if and only if the debug-build fault asked for is `action`.
fn debug_fault_is(action: &str) -> bool {
    std::env::var("PRESIZE_DEBUG_DECODER").is_ok_and(|s| s.starts_with(&format!("{action}:")))
}

/// Debug builds only: `PRESIZE_DEBUG_DECODER=ACTION:NAME` makes the decoder process misbehave
/// when it is given the file named NAME, after it has confined itself, so that tests can prove
/// what a real decoder crash or exploit would cost. ACTION: `abort` (SIGABRT), `segv` (SIGSEGV),
/// `open` (opens a file, which the sandbox must answer by killing the process), `hang`.
#[cfg(debug_assertions)]
fn debug_fault(name: &str) {
    let Ok(spec) = std::env::var("PRESIZE_DEBUG_DECODER") else {
        return;
    };
    let Some((action, target)) = spec.split_once(':') else {
        return;
    };
    if target != name {
        return;
    }
    match action {
        "abort" => std::process::abort(),
        "segv" => loop {
            // std's stack-overflow handler takes the first SIGSEGV and, finding it is not a
            // stack overflow, restores the default action; the next one ends the process as a
            // bad pointer in a decoder would.
            #[cfg(target_os = "linux")]
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::SEGV,
            );
            #[cfg(not(target_os = "linux"))]
            std::process::abort();
        },
        "open" => {
            // What an exploited decoder would try first. Confined, the process dies here.
            let _ = std::fs::File::open("/etc/passwd");
        }
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
        _ => {}
    }
}
