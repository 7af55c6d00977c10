//! The `presize` binary: argv → `Config` → `presize::run` → exit code.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;

use presize::internals::{
    dispatch, remove_in_flight, run_and_watch, serve_decoder_process, Cli, Exit, Request,
    DECODER_ARG,
};

fn main() -> ExitCode {
    // The same binary is the `--isolate` decoder process, started by the workers.
    if std::env::args_os().nth(1).is_some_and(|a| a == DECODER_ARG) {
        return ExitCode::from(serve_decoder_process());
    }
    match run() {
        Ok(exit) => ExitCode::from(exit.code()),
        // The reader went away (`presize man | head -1`): it has what it wanted. Ending quietly
        // is what `rg` and `fd` do; an error message here would only be noise.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("presize: error: {err:#}");
            ExitCode::from(Exit::Fatal.code())
        }
    }
}

fn run() -> anyhow::Result<Exit> {
    let jobs = match dispatch(Cli::parse())? {
        Request::Run(jobs) => jobs,
        Request::Done(exit) => return Ok(exit),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    install_handlers(Arc::clone(&cancel));
    let exit = run_and_watch(&jobs, &cancel)?;
    // Every live worker has been joined; only a thread abandoned by --image-timeout can still be
    // writing, and its temporary file must not outlive the process.
    remove_in_flight();
    Ok(exit)
}

/// Returns true if and only if `err` comes from writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Ctrl-C / SIGTERM: the first stops the walker and lets workers finish the image in hand; the
/// second exits at once. Panics inside workers are caught and reported as that file's failure,
/// so the default hook's backtrace noise is kept for other threads only.
fn install_handlers(cancel: Arc<AtomicBool>) {
    let _ = ctrlc::set_handler(move || {
        if cancel.swap(true, Ordering::SeqCst) {
            remove_in_flight();
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
        eprintln!(
            "presize: interrupted, finishing the images in progress (Ctrl-C again to stop now)"
        );
    });
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("presize-worker"));
        if !worker {
            default_hook(info);
        }
    }));
}
