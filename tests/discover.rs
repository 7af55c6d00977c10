//! Discoverability: completions, man page and help are generated from the one clap definition
//! and mention the flags users reach for first.

use assert_cmd::Command;

fn presize() -> Command {
    Command::cargo_bin("presize").expect("binary builds")
}

fn stdout_of(args: &[&str]) -> String {
    let out = presize()
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn every_shell_gets_a_completion_script_naming_the_main_flags() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout_of(&["completions", shell]);
        // fish spells long flags `-l out-dir`, the others `--out-dir`.
        for flag in [
            "out-dir",
            "width",
            "format",
            "fit",
            "jobs",
            "json",
            "overwrite",
        ] {
            assert!(script.contains(flag), "{shell} completion lacks {flag}");
        }
    }
}

#[test]
fn bash_completion_offers_the_format_values() {
    let script = stdout_of(&["completions", "bash"]);
    assert!(script.contains("webp"), "format values are completed");
    assert!(script.contains("cover"), "fit values are completed");
}

#[test]
fn the_man_page_is_roff_and_documents_the_main_flags() {
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "roff header: {}",
        &page[..40.min(page.len())]
    );
    assert!(page.contains(".TH presize"));
    for flag in ["out\\-dir", "width", "quality", "overwrite", "dry\\-run"] {
        assert!(page.contains(flag), "man page lacks {flag}");
    }
}

#[test]
fn short_help_is_short_and_long_help_has_examples_and_exit_codes() {
    let short = stdout_of(&["-h"]);
    let long = stdout_of(&["--help"]);
    assert!(short.len() < long.len());
    assert!(!short.contains("Examples:"));
    assert!(
        short.contains("Exit codes"),
        "the short footer still names the exit codes"
    );
    for needle in ["Examples:", "--dry-run", "--json", "-f webp", "130"] {
        assert!(long.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn a_bad_value_error_lists_what_is_accepted() {
    let out = presize()
        .args(["in", "-o", "out", "-w", "10", "--format", "jpeg2000"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for v in ["jpeg", "png", "webp"] {
        assert!(err.contains(v), "error lists {v}: {err}");
    }
}
