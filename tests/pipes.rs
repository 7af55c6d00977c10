//! A reader that goes away (`presize man | head -1`) ends presize's output quietly, as it does
//! for `rg` and `fd`: exit 0 and no error message. A resize run goes on and writes every image,
//! since its outputs, not its stdout, are what the user asked for. (Issue 12.)

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::TestTree;

/// Runs presize with `args`, closing its stdout before it writes anything; returns the exit
/// code and what it wrote to stderr.
fn run_with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_presize"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("presize starts");
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn man_and_completions_end_quietly_when_the_reader_goes_away() {
    for args in [&["man"][..], &["completions", "bash"], &["--help"]] {
        let (code, stderr) = run_with_closed_stdout(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn json_output_to_a_closed_pipe_still_resizes_every_image() {
    let tree = TestTree::new()
        .png("a.png", 64, 48)
        .png("b.png", 64, 48)
        .png("sub/c.png", 64, 48);
    let out = tree.path("out");
    let (input, out_arg) = (tree.path("in"), out.to_string_lossy().into_owned());
    std::fs::create_dir(&input).unwrap();
    for name in ["a.png", "b.png", "sub"] {
        std::fs::rename(tree.path(name), input.join(name)).unwrap();
    }
    let input = input.to_string_lossy().into_owned();
    let (code, stderr) = run_with_closed_stdout(&[
        &input,
        "-o",
        &out_arg,
        "-w",
        "32",
        "--json",
        "-j",
        "1",
        "--progress",
        "never",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    for name in ["a.png", "b.png", "sub/c.png"] {
        assert_eq!(common::dims(&out.join(name)), (32, 24), "{name}");
    }
}
