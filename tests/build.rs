//! Issue #15, `presize build`: the jobs of a build file run in one pool with one summary and a
//! manifest each, the keys are the long flags, and mistakes name the key and its line.

mod common;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use common::{dims, json_lines, summary, TestTree};
use image::DynamicImage;
use serde_json::Value;

/// `presize build` with `args`, run from `cwd`.
fn build(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("presize")
        .unwrap()
        .current_dir(cwd)
        .arg("build")
        .args(args)
        .output()
        .unwrap()
}

const SITE: &str = r#"# Shared by every job.
jobs = 2
json = true
progress = "never"

[[job]]
input = "photos"
out_dir = "public/img"
width = [50, 100]
format = ["webp", "png"]
manifest = "public/img/manifest.json"

[[job]]
input = "photos"
out_dir = "public/thumbs"
size = "40x40"
fit = "cover"
crop = "attention"
manifest = "public/thumbs/manifest.json"

[[job]]
input = ["icons/i.png"]
out-dir = "public/icons"
width = 20
"#;

fn site() -> TestTree {
    TestTree::new()
        .png("site/photos/a.png", 200, 100)
        .jpeg("site/photos/b.jpg", 120, 160)
        .png("site/icons/i.png", 64, 64)
        .file("site/presize.toml", SITE.as_bytes())
}

/// The sources a manifest lists.
fn sources(manifest: &Path) -> Vec<String> {
    let m: Value = serde_json::from_str(&fs::read_to_string(manifest).unwrap()).unwrap();
    let mut s: Vec<String> = m["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

#[test]
fn three_jobs_run_in_one_pool_with_one_summary_and_a_manifest_each() {
    let tree = site();
    // Run from elsewhere: paths in the file are relative to the file.
    let out = build(tree.root(), &["--config", "site/presize.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let total = summary(&lines);
    assert_eq!(total["inputs"], 5, "{total}");
    assert_eq!(total["written"], 5, "{total}");
    assert_eq!(total["workers"], 2, "the top-level jobs = 2");
    let public = tree.path("site/public");
    for (name, want) in [
        ("img/a-50w.webp", (50, 25)),
        ("img/a-100w.png", (100, 50)),
        ("img/b-100w.webp", (100, 133)),
        ("thumbs/a.png", (40, 40)),
        ("thumbs/b.jpg", (40, 40)),
        ("icons/i.png", (20, 20)),
    ] {
        assert_eq!(dims(&public.join(name)), want, "{name}");
    }
    // Each job's own settings: the thumbnails are only what the second job asked for.
    assert_eq!(common::files_under(&public.join("thumbs")).len(), 3);
    assert_eq!(
        sources(&public.join("img/manifest.json")),
        ["a.png", "b.jpg"]
    );
    assert_eq!(
        sources(&public.join("thumbs/manifest.json")),
        ["a.png", "b.jpg"]
    );
    let manifest = fs::read_to_string(public.join("thumbs/manifest.json")).unwrap();
    assert!(manifest.contains("\"crop\": \"attention\""), "{manifest}");
    let img = common::decode(&public.join("img/a-100w.png"));
    assert!(matches!(img, DynamicImage::ImageRgb8(_)));

    // A second build: every job's manifest (and the icon's date) says nothing is to be done.
    let again = build(&tree.path("site"), &[]);
    assert!(again.status.success());
    let lines = json_lines(&again.stdout);
    let total = summary(&lines);
    assert_eq!(
        (total["written"].as_u64(), total["skipped"].as_u64()),
        (Some(0), Some(5))
    );
}

#[test]
fn any_long_flag_is_a_key_even_one_the_build_file_code_never_names() {
    // --focal and --name are not mentioned anywhere in build.rs.
    let tree = TestTree::new().png("in/a.png", 300, 100).file(
        "p.toml",
        br#"[[job]]
input = "in"
out_dir = "out"
size = "100x100"
fit = "cover"
focal = "0.0,0.5"
name = "{stem}-square.{ext}"
"#,
    );
    let out = build(tree.root(), &["--config", "p.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = common::decode(&tree.path("out/a-square.png")).to_rgb8();
    assert_eq!(img.dimensions(), (100, 100));
    // The gradient's red rises left to right: the window at the left edge keeps it low.
    let plain = common::gradient(300, 100);
    assert!(img.get_pixel(99, 50)[0] <= plain.get_pixel(100, 50)[0] + 2);
}

#[test]
fn mistakes_name_the_file_the_line_and_the_key() {
    let cases: [(&str, &str); 6] = [
        (
            "[[job]]\ninput = \"in\"\nout_dir = \"out\"\n\nwidht = 5\n",
            "p.toml:5: unknown key `widht`",
        ),
        (
            "width = 5\n[[job]]\ninput = \"in\"\nout_dir = \"out\"\nquality = \"best\"\n",
            "p.toml:5: key `quality`: invalid value 'best'",
        ),
        ("width = 5\n", "p.toml: no [[job]]"),
        (
            "width = 5\n[[job]]\ninput = \"in\"\nout_dir = \"a\"\njobs = 1\n[[job]]\ninput = \"in\"\nout_dir = \"b\"\n",
            "p.toml: job 2 (line 6): differs from job 1 in a setting of the whole run",
        ),
        (
            "[[job]]\ninput = \"in\"\nout_dir = \"out\"\nwidth = 5\nfit = \"cover\"\n",
            "p.toml: job 1 (line 1): --fit cover needs both a width and a height",
        ),
        (
            "width = 5\nmanifest = \"m.json\"\n[[job]]\ninput = \"in\"\nout_dir = \"a\"\n[[job]]\ninput = \"in\"\nout_dir = \"b\"\n",
            "p.toml: job 2 (line 6): its manifest is job 1's too",
        ),
    ];
    for (text, want) in cases {
        let tree = TestTree::new()
            .png("in/a.png", 30, 20)
            .file("p.toml", text.as_bytes());
        let out = build(tree.root(), &["--config", "p.toml"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(want), "{text}: {stderr}");
        assert!(!tree.path("out").exists() && !tree.path("a").exists());
    }
    let missing = build(Path::new("/"), &["--config", "/nonexistent/presize.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the build file"));
}
