//! Issue #15, `--watch`: after the first run presize redoes what changes (a new source, a
//! changed one), removes a deleted source's outputs with `--prune`, and ends on Ctrl-C with
//! exit code 130 and nothing partial. Runs the real binary as a child process.
#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dims, png_bytes, TestTree};
use image::DynamicImage;

/// Long enough for a debug build on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `done` until it holds; fails with `what` and presize's stderr after [`PATIENCE`].
fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > PATIENCE {
            panic!(
                "{what}: not after {PATIENCE:?}\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `img` as `dst` atomically (as an editor or a copy would end up).
fn put(tree: &TestTree, dst: &Path, w: u32, h: u32) {
    let img = DynamicImage::ImageRgb8(common::gradient(w, h));
    let staged = tree.path("staging.png");
    fs::write(&staged, png_bytes(&img)).unwrap();
    fs::rename(&staged, dst).unwrap();
}

struct Watching {
    child: Child,
}

impl Watching {
    /// Starts presize with `args`, its stderr into `log` (stdin and stdout closed).
    fn start(args: &[&str], log: &Path) -> Watching {
        let child = Command::new(assert_cmd::cargo::cargo_bin("presize"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Watching { child }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // A failed test must not leave a watcher running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends Ctrl-C (SIGINT) to the watching presize and waits for it to end. The shell's own
/// `kill`: sh is essential on every Debian, a `kill` program is not.
fn interrupt(watching: &mut Watching) -> std::process::ExitStatus {
    let pid = watching.child.id();
    let sent = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -INT {pid}"))
        .status();
    assert!(sent.unwrap().success());
    let start = Instant::now();
    loop {
        if let Some(status) = watching.child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < PATIENCE, "presize did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn temporaries(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".part"))
        .collect()
}

#[test]
fn watch_redoes_new_changed_and_deleted_sources_and_ctrl_c_exits_130() {
    let tree = TestTree::new().png("in/a.png", 80, 60);
    fs::create_dir_all(tree.path("in/sub")).unwrap();
    let out = tree.path("out");
    let log = tree.path("stderr.txt");
    let (manifest, input) = (tree.path("m.json"), tree.path("in"));
    let mut watching = Watching::start(
        &[
            "--progress",
            "never",
            "-w",
            "40",
            "--prune",
            "--watch",
            "--manifest",
            manifest.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
        &log,
    );
    wait_for("the first run", &log, || out.join("a.png").exists());
    assert_eq!(dims(&out.join("a.png")), (40, 30));

    // A new source, in a folder made after the watch started.
    put(&tree, &tree.path("in/sub/b.png"), 100, 50);
    wait_for("the new source's output", &log, || {
        out.join("sub/b.png").exists()
    });
    assert_eq!(dims(&out.join("sub/b.png")), (40, 20));

    // A changed source: its output is made again (square now).
    put(&tree, &tree.path("in/a.png"), 60, 60);
    wait_for("the changed output", &log, || {
        fs::read(out.join("a.png")).is_ok_and(|_| dims(&out.join("a.png")) == (40, 40))
    });

    // A deleted source: --prune removes its output.
    fs::remove_file(tree.path("in/sub/b.png")).unwrap();
    wait_for("the deleted source's output to go", &log, || {
        !out.join("sub/b.png").exists()
    });
    let manifest = || fs::read_to_string(tree.path("m.json")).unwrap_or_default();
    wait_for("the manifest without b.png", &log, || {
        let m = manifest();
        m.contains("\"a.png\"") && !m.contains("b.png")
    });

    // Ctrl-C: exit 130, no temporary file left.
    let status = interrupt(&mut watching);
    let stderr = fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("watching 1 input(s) for changes"),
        "{stderr}"
    );
    assert_eq!(temporaries(&out), Vec::<PathBuf>::new());
    assert_eq!(temporaries(&tree.path("in")), Vec::<PathBuf>::new());
    assert_eq!(
        common::files_under(&out).len(),
        1,
        "only a.png's output is left"
    );
}

#[test]
fn watch_needs_a_manifest() {
    let tree = TestTree::new().png("in/a.png", 8, 8);
    common::presize()
        .arg(tree.path("in"))
        .args([
            "-o",
            tree.path("out").to_str().unwrap(),
            "-w",
            "4",
            "--watch",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--manifest"));
}

#[test]
fn build_watch_redoes_every_job_a_new_source_belongs_to() {
    let tree = TestTree::new().png("site/photos/a.png", 80, 60).file(
        "site/presize.toml",
        br#"progress = "never"
[[job]]
input = "photos"
out_dir = "public/w40"
width = 40
manifest = "public/w40.json"

[[job]]
input = "photos"
out_dir = "public/square"
size = "20x20"
fit = "cover"
crop = "entropy"
manifest = "public/square.json"
"#,
    );
    let log = tree.path("stderr.txt");
    let config = tree.path("site/presize.toml");
    let mut watching = Watching::start(
        &["build", "--watch", "--config", config.to_str().unwrap()],
        &log,
    );
    let public = tree.path("site/public");
    wait_for("the first build", &log, || {
        public.join("w40/a.png").exists() && public.join("square/a.png").exists()
    });
    put(&tree, &tree.path("site/photos/b.png"), 100, 50);
    wait_for("both jobs' outputs of the new source", &log, || {
        public.join("w40/b.png").exists() && public.join("square/b.png").exists()
    });
    assert_eq!(dims(&public.join("w40/b.png")), (40, 20));
    assert_eq!(dims(&public.join("square/b.png")), (20, 20));
    let status = interrupt(&mut watching);
    assert_eq!(
        status.code(),
        Some(130),
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    assert!(fs::read_to_string(&log)
        .unwrap()
        .contains("watching 1 input(s)"));
    assert_eq!(temporaries(&public), Vec::<PathBuf>::new());
}
