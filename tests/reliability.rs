//! What presize guarantees when things go wrong, tested on the real binary: signals, time
//! limits, the memory budget, hostile file-system layouts, permissions, a full disk and
//! `--in-place`. Each test names the guarantee it checks; `docs/RELIABILITY.md` lists them.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::meta::read_metadata;
use common::{dims, file_lines, files_under, json_lines, presize, run_json, summary, TestTree};
use image::DynamicImage;

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn small_png() -> Vec<u8> {
    common::png_bytes(&DynamicImage::ImageRgb8(common::gradient(64, 48)))
}

/// The one file of a report whose input ends with `name`.
fn status_of<'a>(lines: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    common::line_for(lines, name)
}

/// Returns true if and only if the tests run as root (a file they create belongs to uid 0).
#[cfg(unix)]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().expect("a temporary file");
    probe.as_file().metadata().expect("its metadata").uid() == 0
}

/// Runs the binary without privileges, returning exit code, report lines and stderr: as the
/// user `nobody` when the tests run as root (root ignores permission bits, and CI runs as root),
/// as the current user otherwise (a developer's `cargo test`).
#[cfg(unix)]
fn run_json_unprivileged(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    if !running_as_root() {
        return run_json(args);
    }
    let out = StdCommand::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_presize"))
        .args(["--progress", "never", "--json"])
        .args(args)
        .output()
        .expect("run presize through setpriv (util-linux)");
    let code = out.status.code().expect("exited normally");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (code, json_lines(&out.stdout), stderr)
}

/// A temporary folder every user may enter (tempfile makes private ones).
#[cfg(unix)]
fn shared_tree() -> TestTree {
    use std::os::unix::fs::PermissionsExt;
    let tree = TestTree::new();
    let mut dir = Some(tree.root());
    while let Some(d) = dir {
        if d == Path::new("/") || d == std::env::temp_dir() {
            break;
        }
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
        dir = d.parent();
    }
    tree
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_stop_the_run_count_what_was_left_and_leave_only_complete_outputs() {
    use std::io::{BufRead, BufReader, Read};

    let big = common::png_bytes(&DynamicImage::ImageRgb8(common::gradient(800, 800)));
    for signal in ["-INT", "-TERM"] {
        let mut tree = TestTree::new();
        for i in 0..40 {
            tree = tree.file(&format!("in/sub{}/img{i:02}.png", i % 3), &big);
        }
        let out = tree.path("out");
        let mut child = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .arg(tree.path("in"))
            .args(["-o", p(&out), "-w", "100", "-j", "1", "--json"])
            .args(["--progress", "never"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut report = String::new();
        stdout.read_line(&mut report).unwrap();
        assert!(report.contains("\"written\""), "first line: {report}");
        let sent = StdCommand::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        stdout.read_to_string(&mut report).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{signal}: {stderr}");

        let lines = json_lines(report.as_bytes());
        let s = summary(&lines);
        assert_eq!(s["interrupted"], true);
        assert_eq!(s["time_limit"], false);
        let written = s["written"].as_u64().unwrap();
        let left = s["not_processed"].as_u64().unwrap();
        assert!((1..40).contains(&written), "{written} of 40 written");
        assert_eq!(
            s["inputs"].as_u64().unwrap() + left,
            40,
            "{signal}: every input is either reported or counted as not processed"
        );
        assert!(
            stderr.contains(&format!("{left} inputs not processed")),
            "{stderr}"
        );
        let files = files_under(&out);
        assert_eq!(files.len() as u64, written, "no partial files: {files:?}");
        for f in files {
            assert_eq!(dims(&out.join(&f)), (100, 100), "{}", f.display());
        }
    }
}

#[test]
fn timeout_stops_the_run_with_exit_124_and_a_truthful_summary() {
    let big = common::png_bytes(&DynamicImage::ImageRgb8(common::gradient(900, 900)));
    let mut tree = TestTree::new();
    for i in 0..60 {
        tree = tree.file(&format!("in/img{i:02}.png"), &big);
    }
    let out = tree.path("out");
    let (code, lines, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "50",
        "-j",
        "1",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(code, 124, "{stderr}");
    let s = summary(&lines);
    assert_eq!(s["time_limit"], true);
    assert_eq!(s["interrupted"], true);
    let left = s["not_processed"].as_u64().unwrap();
    assert!(left > 0, "a 300 ms limit cannot finish 60 images: {s}");
    assert_eq!(s["inputs"].as_u64().unwrap() + left, 60);
    assert!(stderr.contains("--timeout"), "{stderr}");
    assert_eq!(
        files_under(&out).len() as u64,
        s["written"].as_u64().unwrap(),
        "no partial or temporary files"
    );
}

#[test]
fn an_image_over_the_image_timeout_fails_alone_and_the_run_does_not_wait_for_it() {
    // 144 megapixels of zeros in 140 KB: several seconds to inflate in a debug build, about half
    // a second in release; both far over the 100 ms limit.
    let tree = TestTree::new()
        .copy("reliability/blank_12000x12000.png", "in/huge.png")
        .file("in/a.png", &small_png())
        .file("in/b.png", &small_png())
        .file("in/c.png", &small_png());
    let out = tree.path("out");
    let start = Instant::now();
    let (code, lines, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "32",
        "-j",
        "2",
        "--image-timeout",
        "100ms",
    ]);
    let took = start.elapsed();
    assert_eq!(code, 1, "{stderr}");
    let huge = status_of(&lines, "huge.png");
    assert_eq!(huge["status"], "failed");
    assert!(
        huge["error"].as_str().unwrap().contains("timed out"),
        "{huge}"
    );
    for name in ["a.png", "b.png", "c.png"] {
        assert_eq!(status_of(&lines, name)["status"], "written", "{name}");
    }
    assert!(stderr.contains("huge.png"), "{stderr}");
    // The abandoned decode never writes, even though it finishes before the process exits.
    let mut files = files_under(&out);
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        took < Duration::from_secs(30),
        "the run returned without waiting for the stuck decode ({took:?})"
    );
}

#[test]
fn a_tiny_memory_budget_slows_the_run_but_every_image_still_gets_through() {
    // Every image needs more than the whole 1 MiB budget: each runs alone, none starves.
    let tree = TestTree::new()
        .png("in/a.png", 700, 500)
        .png("in/b.png", 600, 600)
        .jpeg("in/c.jpg", 900, 400)
        .png("in/d.png", 300, 200);
    let out = tree.path("out");
    let (code, lines, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "100",
        "-j",
        "4",
        "--memory",
        "1M",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&lines)["written"], 4);
    assert_eq!(files_under(&out).len(), 4);
}

#[test]
fn decompression_bombs_fail_fast_without_allocating() {
    // Headers promising gigapixels: refused from the header, before any pixel buffer exists.
    let tree = TestTree::new()
        .copy("bad/png_50000x50000_rgba8_tiny.png", "in/rgba.png")
        .copy("bad/png_50000x50000_1bit_complete.png", "in/bits.png")
        .copy("bad/jpeg_sof_65000x65000.jpg", "in/sof.jpg");
    let out = tree.path("out");
    let start = Instant::now();
    let output = StdCommand::new("prlimit")
        // 512 MiB of address space: one bomb decoded for real would need gigabytes.
        .args(["--as=536870912", "--"])
        .arg(env!("CARGO_BIN_EXE_presize"))
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "100", "--json", "--progress", "never"])
        .output()
        .expect("run presize under prlimit (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines = json_lines(&output.stdout);
    for name in ["rgba.png", "bits.png", "sof.jpg"] {
        let l = status_of(&lines, name);
        assert_eq!(l["status"], "failed", "{l}");
        let err = l["error"].as_str().unwrap();
        assert!(
            err.contains("over the limit") && err.contains("--max-pixels"),
            "{err}"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(files_under(&out).is_empty());
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_reported_once_and_never_followed_forever() {
    use std::os::unix::fs::symlink;
    let tree = TestTree::new().file("in/sub/a.png", &small_png());
    symlink("..", tree.path("in/sub/up")).unwrap();
    symlink(tree.path("in/sub"), tree.path("in/again")).unwrap();
    let out = tree.path("out");

    // Default: links to folders are not followed at all.
    let (code, lines, stderr) = run_json(&[p(&tree.path("in")), "-o", p(&out), "-w", "16"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&lines)["written"], 1);

    // --follow-links: `again` is walked (a second copy of a.png), `up` is a loop.
    let out2 = tree.path("out2");
    let (code, lines, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out2),
        "-w",
        "16",
        "--follow-links",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let loops: Vec<_> = file_lines(&lines)
        .into_iter()
        .filter(|l| l["error"].as_str().is_some_and(|e| e.contains("loop")))
        .collect();
    assert!(!loops.is_empty(), "{lines:?}");
    assert!(out2.join("again/a.png").is_file() && out2.join("sub/a.png").is_file());
}

#[cfg(unix)]
#[test]
fn fifos_are_never_opened_and_do_not_hang_the_run() {
    let tree = TestTree::new().file("in/a.png", &small_png());
    let fifo = tree.path("in/pipe.png");
    let made = StdCommand::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = tree.path("out");
    let start = Instant::now();
    // Inside a folder: skipped silently. Named directly: a clear failure, not a blocking read.
    let (code, lines, stderr) =
        run_json(&[p(&tree.path("in")), p(&fifo), "-o", p(&out), "-w", "16"]);
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(code, 1, "{stderr}");
    let failures: Vec<_> = file_lines(&lines)
        .into_iter()
        .filter(|l| l["status"] == "failed")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0]["error"]
        .as_str()
        .unwrap()
        .contains("not a regular file"));
    assert_eq!(summary(&lines)["written"], 1);
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_kept_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tree = TestTree::new();
    let name = OsStr::from_bytes(b"caf\xe9-\xff.png");
    fs::create_dir_all(tree.path("in")).unwrap();
    fs::write(tree.path("in").join(name), small_png()).unwrap();
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "16"])
        .assert()
        .success();
    assert_eq!(dims(&out.join(name)), (16, 12));
}

#[test]
fn very_deep_trees_are_walked_and_mirrored() {
    let rel: String = (0..120).map(|i| format!("d{i}/")).collect();
    let tree = TestTree::new().file(&format!("in/{rel}deep.png"), &small_png());
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "16"])
        .assert()
        .success();
    assert_eq!(dims(&out.join(format!("{rel}deep.png"))), (16, 12));
}

#[cfg(unix)]
#[test]
fn unreadable_files_and_folders_fail_by_name_and_the_run_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let tree = shared_tree()
        .file("in/ok.png", &small_png())
        .file("in/secret.png", &small_png())
        .file("in/locked/inner.png", &small_png());
    fs::set_permissions(
        tree.path("in/secret.png"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::set_permissions(tree.path("in/locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = tree.path("out");
    let (code, lines, stderr) =
        run_json_unprivileged(&[p(&tree.path("in")), "-o", p(&out), "-w", "16"]);
    fs::set_permissions(tree.path("in/locked"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(status_of(&lines, "ok.png")["status"], "written");
    let secret = status_of(&lines, "secret.png");
    assert!(
        secret["error"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{secret}"
    );
    assert!(
        stderr.contains("secret.png") && stderr.contains("locked"),
        "{stderr}"
    );
    assert_eq!(summary(&lines)["failed"], 2);
}

#[cfg(unix)]
#[test]
fn a_read_only_output_folder_fails_every_file_clearly_and_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let tree = shared_tree()
        .file("in/a.png", &small_png())
        .file("in/sub/b.png", &small_png());
    fs::create_dir_all(tree.path("out")).unwrap();
    fs::set_permissions(tree.path("out"), fs::Permissions::from_mode(0o555)).unwrap();
    let (code, lines, stderr) =
        run_json_unprivileged(&[p(&tree.path("in")), "-o", p(&tree.path("out")), "-w", "16"]);
    assert_eq!(code, 1, "{stderr}");
    for l in file_lines(&lines) {
        assert_eq!(l["status"], "failed");
        assert!(
            l["error"].as_str().unwrap().contains("Permission denied"),
            "{l}"
        );
    }
    assert!(files_under(&tree.path("out")).is_empty());
}

#[cfg(unix)]
#[test]
fn a_symlink_planted_in_the_output_tree_is_never_written_through() {
    use std::os::unix::fs::symlink;
    let tree = TestTree::new()
        .file("in/sub/a.png", &small_png())
        .file("in/b.png", &small_png())
        .file("elsewhere/keep.txt", b"precious");
    fs::create_dir_all(tree.path("out")).unwrap();
    symlink(tree.path("elsewhere"), tree.path("out/sub")).unwrap();
    // A link where a file output goes is replaced by the output, not followed.
    symlink(tree.path("elsewhere/keep.txt"), tree.path("out/b.png")).unwrap();
    let (code, lines, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&tree.path("out")),
        "-w",
        "16",
        "--overwrite",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let a = status_of(&lines, "a.png");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("outside the output folder"),
        "{a}"
    );
    assert_eq!(
        fs::read_dir(tree.path("elsewhere")).unwrap().count(),
        1,
        "nothing was written through the link"
    );
    assert_eq!(
        fs::read(tree.path("elsewhere/keep.txt")).unwrap(),
        b"precious"
    );
    assert_eq!(dims(&tree.path("out/b.png")), (16, 12));
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_affected_files_and_leaves_no_partial_file() {
    // A 96 KiB tmpfs as the output folder, mounted in a private user and mount namespace (no
    // root needed, nothing visible outside the test).
    let noise = image::RgbImage::from_fn(300, 300, |x, y| {
        let v = (x * 7919 + y * 104_729) ^ (x * y);
        image::Rgb([v as u8, (v >> 3) as u8, (v >> 7) as u8])
    });
    let png = common::png_bytes(&DynamicImage::ImageRgb8(noise));
    let mut tree = TestTree::new();
    for i in 0..12 {
        tree = tree.file(&format!("in/n{i:02}.png"), &png);
    }
    let out = tree.path("out");
    fs::create_dir_all(&out).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=96k tmpfs '{out}' && '{bin}' '{inp}' -o '{out}' -w 100 -j 2 --json --progress never; code=$?; ls -a '{out}' >&2; echo listing-done >&2; exit $code",
        out = p(&out),
        bin = env!("CARGO_BIN_EXE_presize"),
        inp = p(&tree.path("in")),
    );
    let output = StdCommand::new("unshare")
        .args(["-Urm", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.starts_with("unshare:"),
        "this test mounts a tmpfs in a user namespace, which this machine refuses to an \
         unprivileged user ({}); run it as root, or allow them (Ubuntu 24.04: sysctl \
         kernel.apparmor_restrict_unprivileged_userns=0)",
        stderr.trim()
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines = json_lines(&output.stdout);
    let s = summary(&lines);
    let written = s["written"].as_u64().unwrap();
    let failed = s["failed"].as_u64().unwrap();
    assert!(written >= 1 && failed >= 1, "{s}");
    assert_eq!(written + failed, 12);
    for l in file_lines(&lines) {
        if l["status"] == "failed" {
            assert!(
                l["error"].as_str().unwrap().contains("No space left"),
                "{l}"
            );
        }
    }
    // The listing of the tmpfs, taken inside the namespace: only complete outputs, no `.part`.
    let listing = stderr
        .lines()
        .skip_while(|l| !l.starts_with('.'))
        .take_while(|l| *l != "listing-done")
        .filter(|l| *l != "." && *l != "..")
        .collect::<Vec<_>>();
    assert_eq!(listing.len() as u64, written, "{listing:?}");
    assert!(listing
        .iter()
        .all(|n| n.ends_with(".png") && !n.starts_with(".presize")));
}

#[cfg(unix)]
#[test]
fn in_place_replaces_originals_keeps_permissions_and_never_loses_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let corrupt = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR garbage".to_vec();
    let tree = TestTree::new()
        .png("in/big.png", 400, 300)
        .png("in/sub/small.png", 80, 60)
        .file("in/broken.png", &corrupt);
    fs::set_permissions(tree.path("in/big.png"), fs::Permissions::from_mode(0o640)).unwrap();
    let small_before = fs::read(tree.path("in/sub/small.png")).unwrap();
    let (code, lines, stderr) = run_json(&[p(&tree.path("in")), "--in-place", "-w", "100"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(dims(&tree.path("in/big.png")), (100, 75));
    let mode = fs::metadata(tree.path("in/big.png"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // Already within the target: untouched, not re-encoded.
    assert_eq!(status_of(&lines, "small.png")["reason"], "already-fits");
    assert_eq!(
        fs::read(tree.path("in/sub/small.png")).unwrap(),
        small_before
    );
    // A failure leaves the original exactly as it was.
    assert_eq!(status_of(&lines, "broken.png")["status"], "failed");
    assert_eq!(fs::read(tree.path("in/broken.png")).unwrap(), corrupt);
    let mut names = files_under(&tree.path("in"));
    names.sort();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");

    // --in-place with -o or --format is refused before any work.
    presize()
        .arg(tree.path("in"))
        .args(["--in-place", "-w", "50", "-f", "webp"])
        .assert()
        .code(2);
}

#[test]
fn a_file_deleted_between_the_walk_and_its_turn_fails_with_a_clear_error() {
    use presize::internals::pipeline::{process, Context, Scratch};
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context {
        out_dir: dir.path().join("out"),
        ..Context::new(presize::internals::settings_for_width(10))
    };
    // The walker saw it (a job exists); it is gone when the worker reads it.
    let job = presize::internals::ImageJob {
        src: dir.path().join("gone.png"),
        rel: "gone.png".into(),
        input_format: presize::Format::Png,
        bytes: 1234,
        group: 0,
    };
    let result = process(
        &job,
        &ctx,
        &mut Scratch::default(),
        &presize::internals::JobHandle::detached(),
    );
    let err = result
        .outcome
        .expect_err("a missing file fails")
        .to_string();
    assert!(
        err.contains("cannot read file") && err.contains("No such file"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}

/// Rewrites the EXIF Orientation tag of a JPEG in place (the value of IFD0's 0x0112 entry in the
/// first `Exif` APP1 segment); panics if the file has no such tag.
fn set_jpeg_orientation(jpeg: &mut [u8], orientation: u16) {
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let body = at + 4;
        if jpeg[at + 1] == 0xE1 && jpeg[body..].starts_with(b"Exif\0\0") {
            let tiff = body + 6;
            let little = &jpeg[tiff..tiff + 2] == b"II";
            let u16_at = |b: &[u8], i: usize| {
                let v = [b[i], b[i + 1]];
                if little {
                    u16::from_le_bytes(v)
                } else {
                    u16::from_be_bytes(v)
                }
            };
            let ifd_bytes = [
                jpeg[tiff + 4],
                jpeg[tiff + 5],
                jpeg[tiff + 6],
                jpeg[tiff + 7],
            ];
            let ifd0 = tiff
                + if little {
                    u32::from_le_bytes(ifd_bytes)
                } else {
                    u32::from_be_bytes(ifd_bytes)
                } as usize;
            for entry in 0..usize::from(u16_at(jpeg, ifd0)) {
                let e = ifd0 + 2 + 12 * entry;
                if u16_at(jpeg, e) == 0x0112 {
                    let value = if little {
                        orientation.to_le_bytes()
                    } else {
                        orientation.to_be_bytes()
                    };
                    jpeg[e + 8..e + 10].copy_from_slice(&value);
                    return;
                }
            }
        }
        at += 2 + len;
    }
    panic!("no EXIF Orientation tag to rewrite");
}

#[test]
fn in_place_applies_strip_gps_even_to_images_that_already_fit() {
    let mut jpeg = fs::read(common::testdata(
        "metadata/cranes_400x300_orient6_gps_xmp.jpg",
    ))
    .unwrap();
    // Upright already, so only the metadata policy can make presize rewrite it.
    set_jpeg_orientation(&mut jpeg, 1);
    let tree = TestTree::new().file("in/c.jpg", &jpeg);
    let before = read_metadata(&tree.path("in/c.jpg"));
    assert_eq!(before.tag(exif::Tag::Orientation).as_deref(), Some("1"));
    assert!(!before.gps().is_empty(), "the input has a location");
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in")),
        "--in-place",
        "-w",
        "2048",
        "--strip-gps",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let after = read_metadata(&tree.path("in/c.jpg"));
    assert!(after.gps().is_empty(), "{:?}", after.gps());
    assert_eq!(after.tag(exif::Tag::Make).as_deref(), Some("Huawei"));
    assert_eq!(dims(&tree.path("in/c.jpg")), (400, 300));
}

/// Temporary files (`.presize-*.part`) anywhere below `dir`.
fn partial_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".presize-") && n.ends_with(".part"))
        })
        .collect()
}

/// Waits (up to a minute) until `ready` holds, polling every 20 ms.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The debug-build hook of `src/atomic.rs`: every write holds its complete temporary file this
/// many milliseconds before the rename.
const PAUSE_BEFORE_RENAME: &str = "PRESIZE_TEST_PAUSE_BEFORE_RENAME_MS";

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_during_cleanup_leaves_no_partial_file_and_exits_130_at_once() {
    use std::io::{BufRead, BufReader};

    let mut tree = TestTree::new();
    for i in 0..6 {
        tree = tree.png(&format!("in/img{i}.png"), 200, 150);
    }
    let out = tree.path("out");
    // Every write waits 20 s with its temporary file complete but not renamed: the first
    // Ctrl-C's cleanup (finishing the images in progress) is then surely still writing when
    // the second one comes.
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
        .arg(tree.path("in"))
        .args(["-o", p(&out), "-w", "100", "-j", "2", "--progress", "never"])
        .env(PAUSE_BEFORE_RENAME, "20000")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("both workers are writing", || {
        partial_files(&out).len() == 2
    });
    let pid = child.id().to_string();
    let interrupt = || {
        let sent = StdCommand::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    interrupt();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("interrupted, finishing the images in progress") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr ended early"
        );
    }
    assert_eq!(
        partial_files(&out).len(),
        2,
        "the first Ctrl-C lets the images in progress finish"
    );
    let second = Instant::now();
    interrupt();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        second.elapsed() < Duration::from_secs(15),
        "the second Ctrl-C exits at once, without finishing the writes: {:?}",
        second.elapsed()
    );
    assert_eq!(
        files_under(&out),
        Vec::<std::path::PathBuf>::new(),
        "no temporary file left, and nothing renamed into place"
    );
}

#[cfg(unix)]
#[test]
fn two_runs_at_once_on_one_manifest_both_succeed_record_every_source_and_leave_nothing_to_do() {
    use std::io::Read;

    let mut tree = TestTree::new();
    for i in 0..8 {
        tree = tree.png(&format!("in/sub{}/img{i}.png", i % 2), 120, 90);
    }
    let (input, out, manifest) = (tree.path("in"), tree.path("out"), tree.path("m.json"));
    let args = [
        p(&input),
        "-o",
        p(&out),
        "-w",
        "60,30",
        "-f",
        "webp,png",
        "--manifest",
        p(&manifest),
        "--json",
        "--progress",
        "never",
    ];
    let start = || {
        StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .args(args)
            .env(PAUSE_BEFORE_RENAME, "100")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = start();
    wait_until("the first run is writing", || {
        !partial_files(&out).is_empty()
    });
    let mut second = start();
    // The second run says that it waits, while the first is still at work.
    let mut said = String::new();
    let mut err = second.stderr.take().unwrap();
    let mut byte = [0u8; 1];
    while !said.contains('\n') {
        assert_eq!(err.read(&mut byte).unwrap(), 1, "stderr ended: {said}");
        said.push(char::from(byte[0]));
    }
    assert!(
        said.contains(&format!(
            "another presize run (pid {}) is building with",
            first.id()
        )) && said.contains("waiting for it to finish"),
        "{said}"
    );
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    for (run, output) in [("first", &first), ("second", &second)] {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{run}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let written = |stdout: &[u8]| summary(&json_lines(stdout))["written"].as_u64().unwrap();
    assert_eq!(written(&first.stdout), 8);
    assert_eq!(
        written(&second.stdout),
        0,
        "the second run read the manifest the first saved"
    );

    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    let sources = saved["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 8, "every source recorded: {saved}");
    for source in sources {
        let outputs = source["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 4, "{source}");
        for o in outputs {
            let file = out.join(o["path"].as_str().unwrap());
            assert_eq!(
                fs::metadata(&file).unwrap().len(),
                o["bytes"].as_u64().unwrap()
            );
        }
    }
    assert!(
        !tree.path(".m.json.lock").exists(),
        "the lock file goes with the last run"
    );
    let (code, lines, stderr) = run_json(&args[..args.len() - 3]);
    assert_eq!(code, 0, "{stderr}");
    let third = summary(&lines);
    assert_eq!(
        (third["written"].as_u64(), third["skipped"].as_u64()),
        (Some(0), Some(8))
    );
}

#[cfg(unix)]
#[test]
fn two_runs_at_once_into_one_folder_count_the_same_output_made_by_the_other_as_written() {
    let mut tree = TestTree::new();
    for i in 0..4 {
        tree = tree.png(&format!("in/img{i}.png"), 160, 120);
    }
    let (input, out) = (tree.path("in"), tree.path("out"));
    // Both runs plan every output before either renames one (each write waits 2 s), so each
    // output is made twice and the second rename finds the first one's file in its place.
    let start = || {
        StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .arg(&input)
            .args(["-o", p(&out), "-w", "80", "-j", "4", "--json"])
            .args(["--progress", "never"])
            .env(PAUSE_BEFORE_RENAME, "2000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut written = 0;
    for output in [&a, &b] {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        written += summary(&json_lines(&output.stdout))["written"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(written, 8, "both runs made every output");
    let files = files_under(&out);
    assert_eq!(files.len(), 4, "{files:?}");
    for f in files {
        assert_eq!(dims(&out.join(&f)), (80, 60), "{}", f.display());
    }
}

#[test]
fn a_run_waiting_for_the_manifest_lock_stops_at_its_timeout_and_writes_nothing() {
    let tree = TestTree::new().png("in/a.png", 64, 48);
    let (out, manifest) = (tree.path("out"), tree.path("m.json"));
    // Another run's lock, held by this test (as that run would hold it: flock on the file).
    let lock = fs::File::create(tree.path(".m.json.lock")).unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    let (code, lines, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "32",
        "--manifest",
        p(&manifest),
        "--timeout",
        "1s",
    ]);
    assert_eq!(code, 124, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(stderr.contains("waiting for it to finish"), "{stderr}");
    assert_eq!(summary(&lines)["written"], 0);
    assert!(!out.exists() && !manifest.exists());
    lock.unlock().unwrap();
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "32",
        "--manifest",
        p(&manifest),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dims(&out.join("a.png")), (32, 24));
}

#[cfg(unix)]
#[test]
fn a_stopped_shard_counts_only_its_own_share_as_not_processed() {
    use std::io::{BufRead, BufReader, Read};

    let big = common::png_bytes(&DynamicImage::ImageRgb8(common::gradient(800, 800)));
    let mut tree = TestTree::new();
    for i in 0..40 {
        tree = tree.file(&format!("in/sub{}/img{i:02}.png", i % 3), &big);
    }
    let out = tree.path("out");
    let args = ["-w", "100", "-j", "1", "--json", "--shard", "1/2"];
    let planned = presize()
        .arg(tree.path("in"))
        .args(["-o", p(&out), "--dry-run"])
        .args(args)
        .output()
        .unwrap();
    let planned = json_lines(&planned.stdout);
    let share = summary(&planned)["inputs"].as_u64().unwrap();
    assert!((5..35).contains(&share), "shard 1/2 holds {share} of 40");
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
        .arg(tree.path("in"))
        .args(["-o", p(&out), "--progress", "never"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = String::new();
    stdout.read_line(&mut report).unwrap();
    let sent = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    stdout.read_to_string(&mut report).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let lines = json_lines(report.as_bytes());
    let s = summary(&lines);
    let left = s["not_processed"].as_u64().unwrap();
    assert!(left > 0, "the run was stopped before its share was done");
    assert_eq!(
        s["inputs"].as_u64().unwrap() + left,
        share,
        "the other shard's images are not this run's to count"
    );
}
