//! The parent's end of a worker's decoder process: started on the worker's first isolated job,
//! kept for the worker's life, and replaced after it dies.
//!
//! A leaf below `isolate`: it knows the protocol and the process, not the pipeline, so the
//! worker's [`crate::pipeline::Scratch`] can own one without a module cycle.

use std::io::{self, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::JobError;
use crate::pool::JobHandle;

use super::wire;

/// The first argument that makes the `presize` binary a decoder process (see `serve`).
pub const DECODER_ARG: &str = "--decoder-process";

/// A running decoder process and its two pipes.
pub(crate) struct DecoderProcess {
    /// Shared with the watchdog's kill hook (the worker never holds the lock while it waits).
    child: Arc<Mutex<Child>>,
    pub(super) to: ChildStdin,
    pub(super) from: BufReader<ChildStdout>,
    /// Frame buffer, reused.
    pub(super) frame: Vec<u8>,
}

impl std::fmt::Debug for DecoderProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderProcess").finish_non_exhaustive()
    }
}

impl DecoderProcess {
    /// Starts this binary as a decoder process and waits until it has confined itself.
    pub(super) fn start() -> Result<DecoderProcess, JobError> {
        let fail = |e| JobError::io("cannot start the decoder process (--isolate)", e);
        let exe = std::env::current_exe().map_err(fail)?;
        let mut command = Command::new(exe);
        command
            .arg(DECODER_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its words would tear the progress bar and bypass the report: how it ended is
            // what the report says.
            .stderr(Stdio::null());
        // Its own process group: a Ctrl-C at the terminal reaches presize, which finishes the
        // images in hand, and not the decoders it needs for that.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(fail)?;
        let to = child.stdin.take().expect("piped");
        let from = child.stdout.take().expect("piped");
        // Megabytes of input and pixels cross these pipes per image: 1 MiB buffers (the most an
        // unprivileged process may ask for) instead of 64 KiB cut the round trips sixteenfold.
        #[cfg(target_os = "linux")]
        for pipe in [rustix::fd::AsFd::as_fd(&to), rustix::fd::AsFd::as_fd(&from)] {
            let _ = rustix::pipe::fcntl_setpipe_size(pipe, 1 << 20);
        }
        let from = BufReader::with_capacity(64 << 10, from);
        let mut process = DecoderProcess {
            child: Arc::new(Mutex::new(child)),
            to,
            from,
            frame: Vec::new(),
        };
        let hello = wire::receive(&mut process.from, &mut process.frame)
            .and_then(wire::parse_hello)
            .map_err(|e| process.post_mortem(&e))?;
        hello.map_err(|why| fail(io::Error::other(why)))?;
        Ok(process)
    }

    /// Runs one exchange with the process; if the job is abandoned meanwhile (`--image-timeout`),
    /// the watchdog kills the process, which ends the wait.
    pub(super) fn exchange<T>(
        &mut self,
        handle: &JobHandle,
        talk: impl FnOnce(&mut DecoderProcess) -> io::Result<T>,
    ) -> io::Result<T> {
        let child = Arc::clone(&self.child);
        let kill = move || {
            let _ = lock(&child).kill();
        };
        handle.kill_on_abandon(kill, || {
            let r = talk(self);
            self.to.flush()?;
            r
        })
    }

    /// Why an exchange failed, as the job's error: the process ended (by which signal), or it
    /// broke the protocol. Either way it is killed and reaped; the caller drops it.
    pub(super) fn post_mortem(&self, error: &io::Error) -> JobError {
        let mut child = lock(&self.child);
        // A process already dead keeps the status it died with; one that broke the protocol is
        // still alive and is ended here.
        let _ = child.kill();
        let status = child.wait();
        if error.kind() == io::ErrorKind::InvalidData {
            return JobError::DecoderCrashed(format!("protocol error: {error}"));
        }
        match status {
            Ok(status) => JobError::DecoderCrashed(describe(status)),
            Err(e) => JobError::DecoderCrashed(format!("cannot tell how: {e}")),
        }
    }
}

impl Drop for DecoderProcess {
    /// An idle decoder holds nothing worth waiting for: it is killed and reaped.
    fn drop(&mut self) {
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// How a decoder process ended, as `signal 11` or `exit status 3`.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        // SIGSYS is how the seccomp filter ends a process: say so, it is not a decoder bug.
        #[cfg(target_os = "linux")]
        if signal == libc::SIGSYS {
            return format!("signal {signal}: a system call the sandbox forbids");
        }
        return format!("signal {signal}");
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
