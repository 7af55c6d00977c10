//! `--isolate` (issue #18): decoders run in a confined process per worker, so a decoder crash
//! costs one file. The faults are real (the process really aborts, really takes SIGSEGV, really
//! tries to open a file, really hangs), made on demand by `PRESIZE_DEBUG_DECODER=ACTION:NAME`,
//! which only debug builds of presize honour: these tests need the default `cargo test` build.

mod common;

use std::path::Path;

use common::{dims, files_under, json_lines, presize, snapshot, summary, testdata, TestTree};

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Good inputs of every decoder family around the file that will crash: libjpeg-turbo, the
/// `image` crate, libheif.
fn tree_with_victim() -> TestTree {
    TestTree::new()
        .jpeg("a_before.jpg", 320, 240)
        .png("b_before.png", 200, 100)
        .jpeg("c_victim.jpg", 300, 200)
        .jpeg("d_after.jpg", 240, 320)
        .copy("heif/cups_320x200_p3_exif.heic", "e_after.heic")
        .png("f_after.png", 128, 128)
}

/// Runs `presize --isolate` on `tree` with the fault `action` on `c_victim.jpg`.
fn run_with_fault(
    tree: &TestTree,
    out: &Path,
    action: &str,
    extra: &[&str],
) -> std::process::Output {
    presize()
        .env("PRESIZE_DEBUG_DECODER", format!("{action}:c_victim.jpg"))
        .args([p(tree.root()), "-o", p(out), "-w", "100", "--isolate"])
        .args(extra)
        .output()
        .expect("run presize")
}

/// The shape every contained fault leaves: exit 1, the victim named once with `error`, every
/// other image written at the right size, nothing (no partial or temporary file) for the victim.
fn assert_contained(output: &std::process::Output, out: &Path, error: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let line = format!("c_victim.jpg: {error}");
    assert!(stderr.contains(&line), "no {line:?} in: {stderr}");
    assert!(stderr.contains("failed        1"), "summary: {stderr}");
    assert!(stderr.contains("written       5"), "summary: {stderr}");
    let written: Vec<String> = files_under(out)
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .filter(|f| !f.ends_with(".json"))
        .collect();
    assert_eq!(
        written,
        [
            "a_before.jpg",
            "b_before.png",
            "d_after.jpg",
            "e_after.jpg",
            "f_after.png"
        ]
    );
    assert_eq!(dims(&out.join("a_before.jpg")), (100, 75));
    assert_eq!(dims(&out.join("d_after.jpg")), (100, 133));
    assert_eq!(dims(&out.join("e_after.jpg")), (100, 63));
    assert_eq!(dims(&out.join("f_after.png")), (100, 100));
}

#[test]
fn a_decoder_that_aborts_costs_one_file_and_the_run_goes_on() {
    let tree = tree_with_victim();
    let out = tree.path("out");
    // One worker: the same worker must replace its decoder process to do the files after.
    let output = run_with_fault(&tree, &out, "abort", &["-j", "1"]);
    assert_contained(&output, &out, "decoder crashed (signal 6)");
}

#[test]
fn a_decoder_that_segfaults_costs_one_file_and_the_manifest_is_complete() {
    let tree = tree_with_victim();
    let out = tree.path("out");
    let manifest = out.join("manifest.json");
    let output = run_with_fault(
        &tree,
        &out,
        "segv",
        &["-j", "2", "--manifest", p(&manifest)],
    );
    assert_contained(&output, &out, "decoder crashed (signal 11)");
    // The manifest was written and records every source that was made.
    let text = std::fs::read_to_string(&manifest).expect("the manifest was written");
    for name in [
        "a_before.jpg",
        "b_before.png",
        "d_after.jpg",
        "e_after.heic",
        "f_after.png",
    ] {
        assert!(
            text.contains(name),
            "{name} missing from the manifest: {text}"
        );
    }
    // A second run without the fault makes only the victim.
    let again = presize()
        .args([p(tree.root()), "-o", p(&out), "-w", "100", "--isolate"])
        .args(["--manifest", p(&manifest), "--json"])
        .output()
        .expect("run presize");
    assert_eq!(again.status.code(), Some(0));
    let lines = json_lines(&again.stdout);
    assert_eq!(summary(&lines)["written"], 1, "{lines:?}");
    assert_eq!(dims(&out.join("c_victim.jpg")), (100, 67));
}

#[cfg(target_os = "linux")]
#[test]
fn the_sandbox_kills_a_decoder_that_opens_a_file() {
    let tree = tree_with_victim();
    let out = tree.path("out");
    let output = run_with_fault(&tree, &out, "open", &["-j", "2"]);
    assert_contained(
        &output,
        &out,
        "decoder crashed (signal 31: a system call the sandbox forbids)",
    );
}

#[test]
fn without_isolate_the_fault_triggers_do_nothing() {
    // The control for the tests above: the triggers live in the decoder process only.
    let tree = tree_with_victim();
    let out = tree.path("out");
    let output = presize()
        .env("PRESIZE_DEBUG_DECODER", "open:c_victim.jpg")
        .args([p(tree.root()), "-o", p(&out), "-w", "100"])
        .output()
        .expect("run presize");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(files_under(&out).len(), 6);
}

/// Processes whose environment holds `tag`: presize's decoders carry the test's environment.
#[cfg(target_os = "linux")]
fn processes_tagged(tag: &str) -> Vec<String> {
    let needle = format!("PRESIZE_TEST_TAG={tag}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn an_image_timeout_kills_a_stuck_decoder_process() {
    let tree = tree_with_victim();
    let out = tree.path("out");
    let tag = format!("hang-{}", std::process::id());
    let start = std::time::Instant::now();
    let output = presize()
        .env("PRESIZE_DEBUG_DECODER", "hang:c_victim.jpg")
        .env("PRESIZE_TEST_TAG", &tag)
        .args([p(tree.root()), "-o", p(&out), "-w", "100", "--isolate"])
        .args(["-j", "2", "--image-timeout", "2s"])
        .output()
        .expect("run presize");
    // The hung decoder does not die with presize (the `hang` fault turns that off), so only
    // the watchdog's kill can have ended it. Any left over is ended here, then reported.
    let left = processes_tagged(&tag);
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    assert!(
        start.elapsed().as_secs() < 30,
        "the run waited for the hung decoder"
    );
    assert_contained(&output, &out, "timed out after 2s");
    assert_eq!(
        left,
        Vec::<String>::new(),
        "a decoder process outlived the run"
    );
}

#[test]
fn isolated_decoding_gives_the_same_outputs_and_errors() {
    // Every decoder family, 16-bit, CMYK, progressive, orientation, alpha, ICC and EXIF to
    // carry, damaged files read through and broken ones refused: the same bytes and the same
    // report either way.
    let mut inputs: Vec<String> = ["photos", "formats", "tiff", "bad", "orientation"]
        .iter()
        .map(|d| testdata(d).to_string_lossy().into_owned())
        .collect();
    for heif in [
        "cups_320x200_p3_exif.heic",
        "transparency_300x300_alpha.avif",
        "leaf_64x40_10bit.heic",
        "landscape_450x300_irot270_exif6.heic",
    ] {
        inputs.push(testdata("heif").join(heif).to_string_lossy().into_owned());
    }
    let tree = TestTree::new();
    let run = |out: &str, isolate: bool| {
        let out = tree.path(out);
        let mut cmd = presize();
        cmd.args(&inputs).args([
            "-o",
            p(&out),
            "-w",
            "120",
            "--json",
            "--fail-on",
            "none",
            "-j",
            "2",
        ]);
        if isolate {
            cmd.arg("--isolate");
        }
        let output = cmd.output().expect("run presize");
        let mut lines: Vec<String> = json_lines(&output.stdout)
            .iter()
            .filter(|l| l["type"] == "file")
            .map(|l| {
                format!(
                    "{} {} {} {}",
                    l["input"], l["status"], l["error"], l["warning"]
                )
            })
            .collect();
        lines.sort();
        (output.status.code(), lines, snapshot(&out))
    };
    let (code_here, report_here, files_here) = run("here", false);
    let (code_there, report_there, files_there) = run("there", true);
    assert_eq!(code_there, code_here);
    assert_eq!(report_there, report_here);
    assert!(files_here.len() > 30, "{} outputs", files_here.len());
    assert!(files_here == files_there, "the outputs differ");
}

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_at_the_terminal_lets_the_decoders_finish_the_images_in_hand() {
    // A terminal sends SIGINT to its whole foreground process group. The decoder processes
    // have a group of their own, so presize finishes the images in hand instead of failing them
    // as crashed; none is left behind.
    use std::os::unix::process::CommandExt;
    // PNGs to thumbnails: decoding is most of each image's time, so the signal finds
    // decoders at work.
    let mut tree = TestTree::new();
    for i in 0..40 {
        tree = tree.png(&format!("img{i:02}.png"), 1600, 1200);
    }
    let out = tree.path("out");
    let tag = format!("sigint-{}", std::process::id());
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("presize"))
        .args([p(tree.root()), "-o", p(&out), "-w", "64", "-f", "jpeg"])
        .args(["-j", "2", "--isolate", "--progress", "never"])
        .env("PRESIZE_TEST_TAG", &tag)
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start presize");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let group = format!("-{}", child.id());
    let sent = std::process::Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .expect("kill");
    assert!(sent.success());
    let output = child.wait_with_output().expect("presize ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert!(!stderr.contains("decoder crashed"), "stderr: {stderr}");
    assert!(stderr.contains("inputs not processed"), "stderr: {stderr}");
    for file in files_under(&out) {
        assert_eq!(dims(&out.join(&file)), (64, 48), "{}", file.display());
    }
    assert_eq!(processes_tagged(&tag), Vec::<String>::new());
}
