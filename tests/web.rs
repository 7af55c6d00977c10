//! Build-step use (issue: web assets): several sizes and formats per source, name templates,
//! the manifest, incremental reruns, pruning, source lists and shards, all through the real
//! binary.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::SystemTime;

use common::{dims, file_lines, files_under, run_json, summary, TestTree};
use serde_json::Value;

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A small tree of real-looking sources in two folders.
fn sources() -> TestTree {
    TestTree::new()
        .jpeg("in/a.jpg", 1000, 750)
        .png("in/sub/b.png", 600, 400)
        .png_alpha("in/sub/c.png", 300, 300)
}

fn manifest(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("manifest written")).expect("manifest is JSON")
}

fn mtimes(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            let t = fs::metadata(dir.join(&f)).unwrap().modified().unwrap();
            (f, t)
        })
        .collect()
}

/// Every file below `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            let b = fs::read(dir.join(&f)).unwrap();
            (f, b)
        })
        .collect()
}

const WEB: &[&str] = &["-w", "200,400,1600", "-f", "webp,jpeg"];

fn build(tree: &TestTree, out: &Path, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let m = tree.path("manifest.json");
    let input = tree.path("in");
    let mut args = vec![p(&input), "-o", p(out), "--manifest", p(&m)];
    args.extend_from_slice(WEB);
    args.extend_from_slice(extra);
    run_json(&args)
}

#[test]
fn every_size_in_every_format_with_larger_sizes_dropped_and_recorded() {
    let tree = sources();
    let out = tree.path("out");
    let (code, _, stderr) = build(&tree, &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    let mut files = files_under(&out);
    files.sort();
    let want: Vec<PathBuf> = [
        "a-200w.jpg",
        "a-200w.webp",
        "a-400w.jpg",
        "a-400w.webp",
        "sub/b-200w.jpg",
        "sub/b-200w.webp",
        "sub/b-400w.jpg",
        "sub/b-400w.webp",
        "sub/c-200w.jpg",
        "sub/c-200w.webp",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(
        files, want,
        "1600 is larger than every source; c is only 300 wide"
    );
    assert_eq!(dims(&out.join("a-400w.webp")), (400, 300));
    assert_eq!(dims(&out.join("sub/b-200w.jpg")), (200, 133));

    let m = manifest(&tree.path("manifest.json"));
    assert_eq!(m["version"], 1);
    let sources = m["sources"].as_array().unwrap();
    let paths: Vec<&str> = sources
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a.jpg", "sub/b.png", "sub/c.png"]);
    let a = &sources[0];
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(1000), Some(750))
    );
    assert!(a["hash"].as_str().unwrap().starts_with("xxh64:"));
    assert_eq!(a["outputs"].as_array().unwrap().len(), 4);
    assert_eq!(a["dropped"][0]["width"], 1600);
    assert_eq!(a["srcset"]["webp"], "a-200w.webp 200w, a-400w.webp 400w");
    let c = &sources[2];
    let dropped: Vec<u64> = c["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["width"].as_u64().unwrap())
        .collect();
    assert_eq!(dropped, [400, 1600]);
    for o in a["outputs"].as_array().unwrap() {
        let f = out.join(o["path"].as_str().unwrap());
        assert_eq!(
            fs::metadata(&f).unwrap().len(),
            o["bytes"].as_u64().unwrap()
        );
    }
}

#[test]
fn an_unchanged_rerun_rewrites_nothing_and_a_change_redoes_exactly_what_it_affects() {
    let tree = sources();
    let out = tree.path("out");
    let m = tree.path("manifest.json");
    assert_eq!(build(&tree, &out, &[]).0, 0);
    let first = fs::read(&m).unwrap();
    let before = mtimes(&out);
    std::thread::sleep(std::time::Duration::from_millis(20));

    // No change: everything skipped, nothing touched, the manifest byte-identical.
    let (code, lines, _) = build(&tree, &out, &[]);
    assert_eq!(code, 0);
    let s = summary(&lines);
    assert_eq!(
        (s["skipped"].as_u64(), s["written"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(mtimes(&out), before);
    assert_eq!(fs::read(&m).unwrap(), first);

    // A new WebP quality: the WebP outputs are redone, the JPEGs are not.
    let (code, _, _) = build(&tree, &out, &["-Q", "webp=60"]);
    assert_eq!(code, 0);
    let after = mtimes(&out);
    for (f, t) in &after {
        let redone = *t != before[f];
        let is_webp = f.extension().is_some_and(|e| e == "webp");
        assert_eq!(redone, is_webp, "{}", f.display());
    }

    // A deleted output is redone alone; mtimes do not matter, content does.
    let before = mtimes(&out);
    fs::remove_file(out.join("sub/b-200w.jpg")).unwrap();
    let (_, lines, _) = build(&tree, &out, &["-Q", "webp=60"]);
    assert_eq!(summary(&lines)["written"], 1);
    let after = mtimes(&out);
    assert!(out.join("sub/b-200w.jpg").is_file());
    for (f, t) in &after {
        if f != Path::new("sub/b-200w.jpg") {
            assert_eq!(*t, before[f], "{}", f.display());
        }
    }

    // A changed source (same name, new content) is redone; touching a file is not a change.
    let now = filetime_now();
    set_mtime(&tree.path("in/a.jpg"), now);
    let (_, lines, _) = build(&tree, &out, &["-Q", "webp=60"]);
    assert_eq!(summary(&lines)["written"], 0, "mtime alone changes nothing");
    let new_a = common::jpeg_bytes(&common::gradient(900, 600), 90);
    fs::write(tree.path("in/a.jpg"), new_a).unwrap();
    let (_, lines, _) = build(&tree, &out, &["-Q", "webp=60"]);
    let s = summary(&lines);
    assert_eq!(
        (s["written"].as_u64(), s["skipped"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(dims(&out.join("a-400w.jpg")), (400, 267));

    // --force redoes everything.
    let (_, lines, _) = build(&tree, &out, &["-Q", "webp=60", "--force"]);
    assert_eq!(summary(&lines)["written"], 3);
}

fn filetime_now() -> SystemTime {
    SystemTime::now() + std::time::Duration::from_secs(5)
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[test]
fn prune_deletes_the_outputs_of_sources_that_are_gone_and_sizes_no_longer_asked_for() {
    let tree = sources();
    let out = tree.path("out");
    assert_eq!(build(&tree, &out, &[]).0, 0);
    fs::remove_file(tree.path("in/sub/b.png")).unwrap();

    // Without --prune nothing is deleted and the entry is kept.
    let (code, _, _) = build(&tree, &out, &[]);
    assert_eq!(code, 0);
    assert!(out.join("sub/b-200w.webp").is_file());

    let (code, _, stderr) = build(&tree, &out, &["--prune"]);
    assert_eq!(code, 0, "{stderr}");
    let left: Vec<_> = files_under(&out)
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("b-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let m = manifest(&tree.path("manifest.json"));
    assert!(m["sources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["path"] != "sub/b.png"));

    // Dropping the 400 size: its files go, the 200 ones stay untouched.
    let m = tree.path("manifest.json");
    let (code, _, _) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "--manifest",
        p(&m),
        "-w",
        "200,1600",
        "-f",
        "webp,jpeg",
        "--prune",
        "--name",
        "{stem}-{width}w.{ext}",
    ]);
    assert_eq!(code, 0);
    let mut files = files_under(&out);
    files.sort();
    assert_eq!(
        files,
        [
            "a-200w.jpg",
            "a-200w.webp",
            "sub/c-200w.jpg",
            "sub/c-200w.webp"
        ]
        .map(PathBuf::from)
        .to_vec()
    );
}

#[test]
fn dry_run_lists_what_would_be_written_and_what_is_up_to_date() {
    let tree = sources();
    let out = tree.path("out");
    let (_, lines, _) = build(&tree, &out, &["--dry-run"]);
    assert!(files_under(&out).is_empty());
    assert!(
        !tree.path("manifest.json").exists(),
        "a dry run writes no manifest"
    );
    let planned: usize = file_lines(&lines)
        .iter()
        .map(|l| {
            assert_eq!(l["status"], "planned");
            l["outputs"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(planned, 10);

    assert_eq!(build(&tree, &out, &[]).0, 0);
    fs::remove_file(out.join("a-200w.webp")).unwrap();
    let (_, lines, _) = build(&tree, &out, &["--dry-run"]);
    let a = common::line_for(&lines, "a.jpg");
    assert_eq!(a["status"], "planned");
    let outs: Vec<&str> = a["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(outs.len(), 1);
    assert!(outs[0].ends_with("a-200w.webp"), "{outs:?}");
    assert_eq!(common::line_for(&lines, "b.png")["reason"], "up-to-date");
}

#[test]
fn name_templates_place_outputs_and_hash_names_follow_content() {
    let tree = sources();
    let out = tree.path("out");
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "100,200",
        "-f",
        "webp",
        "--name",
        "{format}/{dir}/{stem}.{hash}.{width}x{height}.{ext}",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let files: Vec<String> = files_under(&out)
        .into_iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 6, "{files:?}");
    let a: Vec<&String> = files.iter().filter(|f| f.starts_with("webp/a.")).collect();
    assert_eq!(a.len(), 2, "{files:?}");
    assert!(a.iter().any(|f| f.ends_with(".100x75.webp")), "{a:?}");
    let hash = a[0].split('.').nth(1).unwrap();
    assert_eq!(hash.len(), 8);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(files.iter().any(|f| f.starts_with("webp/sub/b.")));

    // A template that would put several sizes in one file is refused before any work.
    let out2 = tree.path("out2");
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out2),
        "-w",
        "100,200",
        "--name",
        "{stem}.{ext}",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--name"), "{stderr}");
    assert!(!out2.exists());
}

#[test]
fn files_from_reads_newline_and_nul_lists_and_mirrors_their_paths() {
    let tree = sources();
    let out = tree.path("out");
    fs::write(tree.path("list.txt"), "in/a.jpg\n\nin/sub/b.png\n").unwrap();
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        let mut child = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .current_dir(tree.root())
            .args(["--progress", "never", "--json"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin.unwrap_or_default()).unwrap();
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(
        &["--files-from", "list.txt", "-o", p(&out), "-w", "50"],
        None,
    );
    let mut files = files_under(&out);
    files.sort();
    assert_eq!(
        files,
        [PathBuf::from("in/a.jpg"), PathBuf::from("in/sub/b.png")]
    );

    let out0 = tree.path("out0");
    run(
        &["--files-from", "-", "-0", "-o", p(&out0), "-w", "50"],
        Some(b"in/sub/c.png\0./in/a.jpg\0"),
    );
    let mut files = files_under(&out0);
    files.sort();
    assert_eq!(
        files,
        [PathBuf::from("in/a.jpg"), PathBuf::from("in/sub/c.png")]
    );
}

#[test]
fn shards_split_a_tree_with_no_overlap_and_merge_into_the_single_run() {
    // Enough sources that every shard of 7 gets some.
    let mut tree = TestTree::new();
    for i in 0..24 {
        let rel = format!("in/d{}/img{i:02}.png", i % 4);
        tree = tree.png(&rel, 120 + i, 90);
    }
    let single_out = tree.path("single");
    let single_m = tree.path("single.json");
    let base = |out: &Path, m: &Path| -> Vec<String> {
        [
            p(&tree.path("in")),
            "-o",
            p(out),
            "--manifest",
            p(m),
            "-w",
            "40,80",
            "-f",
            "webp,png",
        ]
        .map(String::from)
        .to_vec()
    };
    let args = base(&single_out, &single_m);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(run_json(&args).0, 0);
    let single = contents(&single_out);
    assert_eq!(single.len(), 24 * 4);

    for n in [1u32, 3, 7] {
        let mut union: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        let mut parts = Vec::new();
        for k in 1..=n {
            let out = tree.path(&format!("n{n}/out"));
            let m = tree.path(&format!("n{n}/m{k}.json"));
            let shard = format!("{k}/{n}");
            let mut args = base(&out, &m);
            args.extend(["--shard".into(), shard.clone()]);
            // Each shard writes into a fresh folder of its own, so overlap is visible.
            let own = tree.path(&format!("n{n}/own{k}"));
            args[2] = p(&own).to_string();
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, _, stderr) = run_json(&argv);
            assert_eq!(code, 0, "shard {shard}: {stderr}");
            for (f, b) in contents(&own) {
                assert!(
                    union.insert(f.clone(), b).is_none(),
                    "{} done twice",
                    f.display()
                );
            }
            parts.push(m);
        }
        assert_eq!(
            union, single,
            "N={n}: the union equals the single run byte for byte"
        );
        let merged = tree.path(&format!("n{n}/merged.json"));
        let o = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .args(["manifest", "merge"])
            .args(&parts)
            .args(["-o", p(&merged)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            fs::read(&merged).unwrap(),
            fs::read(&single_m).unwrap(),
            "N={n}: merged manifests equal the single-run manifest"
        );
    }
}

#[test]
fn shard_auto_takes_the_index_from_the_scheduler() {
    let tree = sources();
    let mut seen = 0;
    for (var, value, extra) in [
        ("JOB_COMPLETION_INDEX", "0", vec!["--shard-count", "2"]),
        ("JOB_COMPLETION_INDEX", "1", vec!["--shard-count", "2"]),
    ] {
        let out = tree.path(&format!("out-{value}"));
        let o = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .env(var, value)
            .arg(tree.path("in"))
            .args(["-o", p(&out), "-w", "50", "--shard", "auto", "--json"])
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        seen += files_under(&out).len();
    }
    assert_eq!(seen, 3, "the two shards together cover every source once");

    // No scheduler variable: a clear usage error.
    let o = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("PARALLEL_SEQ")
        .arg(tree.path("in"))
        .args(["-o", p(&tree.path("x")), "-w", "50", "--shard", "auto"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("JOB_COMPLETION_INDEX"));
}

#[test]
fn avif_outputs_are_real_avif_files_of_the_planned_size() {
    let tree = TestTree::new()
        .jpeg("in/a.jpg", 640, 480)
        .png_alpha("in/t.png", 200, 200);
    let out = tree.path("out");
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "160",
        "-f",
        "avif",
    ]);
    assert_eq!(code, 0, "{stderr}");
    for (name, width, height, alpha) in [("a.avif", 160, 120, false), ("t.avif", 160, 160, true)] {
        let avif = fs::read(out.join(name)).unwrap();
        // The container read in-process; a decoder reads the pixels in tests/heif.rs (libheif,
        // `--features heif`) and tests/cross_check.rs (ImageMagick, vips).
        let container = common::avif_container::avif_container(&avif);
        assert_eq!(
            (container.width, container.height, container.alpha),
            (width, height, alpha),
            "{name}"
        );
        // libaom's files (the default `heif` feature) say BT.709 primaries, BT.601 matrix,
        // full range, transfer unspecified; rav1e's leave out a box that would say sRGB.
        let want = cfg!(feature = "heif").then_some((1, 2, 6, true));
        assert_eq!(container.nclx, want, "{name}");
    }
}

#[test]
fn prune_keeps_sources_that_still_exist_even_when_this_run_did_not_list_them() {
    let tree = sources();
    let out = tree.path("out");
    let m = tree.path("m.json");
    fs::write(tree.path("both.txt"), "in/a.jpg\nin/sub/b.png\n").unwrap();
    fs::write(tree.path("one.txt"), "in/a.jpg\n").unwrap();
    let run = |list: &str, extra: &[&str]| {
        let o = StdCommand::new(env!("CARGO_BIN_EXE_presize"))
            .current_dir(tree.root())
            .args(["--files-from", list, "-o", p(&out), "-w", "50"])
            .args(["--manifest", p(&m), "--progress", "never"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run("both.txt", &[]);
    run("one.txt", &["--prune"]);
    assert!(
        out.join("in/sub/b.png").is_file(),
        "b.png still exists: its output stays"
    );
    fs::remove_file(tree.path("in/sub/b.png")).unwrap();
    run("one.txt", &["--prune"]);
    assert!(
        !out.join("in/sub/b.png").exists(),
        "gone source: its output goes"
    );
}

#[test]
fn sizes_sharing_a_width_get_distinct_names() {
    let tree = TestTree::new().jpeg("in/a.jpg", 400, 300);
    let out = tree.path("out");
    let (code, _, stderr) = run_json(&[
        p(&tree.path("in")),
        "-o",
        p(&out),
        "-w",
        "100",
        "-H",
        "40,60",
        "--fit",
        "cover",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dims(&out.join("a-100x40.jpg")), (100, 40));
    assert_eq!(dims(&out.join("a-100x60.jpg")), (100, 60));
}

#[test]
fn sources_that_could_share_an_output_name_land_in_the_same_shard() {
    let mut tree = TestTree::new();
    for i in 0..6 {
        tree = tree
            .jpeg(&format!("in/p{i}.jpg"), 64, 48)
            .png(&format!("in/p{i}.png"), 64, 48);
    }
    let mut conflicts = 0;
    for k in 1..=2 {
        let out = tree.path(&format!("out{k}"));
        let shard = format!("{k}/2");
        let (_, lines, _) = run_json(&[
            p(&tree.path("in")),
            "-o",
            p(&out),
            "-w",
            "32",
            "-f",
            "webp",
            "--shard",
            &shard,
        ]);
        conflicts += file_lines(&lines)
            .iter()
            .filter(|l| {
                l["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("already written"))
            })
            .count();
    }
    assert_eq!(conflicts, 6, "every pair is caught, as in a single run");
}
