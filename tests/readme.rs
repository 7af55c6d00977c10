//! The README is a test: every `presize …` command in its "Usage by task" and "Web builds"
//! sections runs here, twice, on generated images, as a user would type it. A `presize
//! manifest …` line runs after the command before it in its block, on what that one made.
//!
//! `presize build` runs the README's `presize.toml` (the "Web builds" section's TOML block).
//!
//! Both runs must exit 0. The second run of an incremental command must write nothing: every
//! image output keeps its bytes and its modification time (issue 12: the web-assets example used
//! to fail on its second run because the manifest reader kept its own list of formats).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{decode, presize, TestTree};
use presize::Format;

/// The shell blocks of the README sections whose commands are run.
const SECTIONS: [&str; 2] = ["## Usage by task", "## Web builds"];

/// Every `presize` command line in the README's [`SECTIONS`], each with the `presize manifest`
/// lines that follow it in its block (they read what it made).
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let readme = include_str!("../README.md");
    let mut commands = Vec::new();
    for heading in SECTIONS {
        let start = readme
            .find(heading)
            .unwrap_or_else(|| panic!("README has no section {heading:?}"));
        let section = &readme[start + heading.len()..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let mut in_shell = false;
        for line in section.lines() {
            if line.starts_with("```") {
                in_shell = !in_shell && line.trim_start_matches('`').starts_with("sh");
            } else if in_shell && line.starts_with("presize manifest ") {
                let (_, follow): &mut (String, Vec<String>) = commands
                    .last_mut()
                    .expect("a build before `presize manifest`");
                follow.push(line.to_owned());
            } else if in_shell && line.starts_with("presize ") {
                commands.push((line.to_owned(), Vec::new()));
            }
        }
    }
    assert!(commands.len() >= 10, "found only {commands:?}");
    commands
}

/// The README's build file: the first TOML block of the "Web builds" section.
fn readme_build_file() -> &'static str {
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("## Web builds").expect("a Web builds section")..];
    let start = section.find("```toml\n").expect("a presize.toml example") + "```toml\n".len();
    &section[start..start + section[start..].find("```").expect("the block ends")]
}

/// One README command, resolved inside a test folder.
struct Example {
    args: Vec<String>,
    /// `> FILE`: where stdout goes.
    stdout_to: Option<PathBuf>,
    /// The input folder (the command's first argument).
    input: PathBuf,
}

/// Splits a command line into words as a shell would for the README's examples: on spaces,
/// with double quotes around a word that has some.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in {line}");
    words.extend(word);
    words
}

impl Example {
    /// Splits `line` and maps `~` to `home`.
    fn parse(line: &str, home: &Path) -> Example {
        let mut words: Vec<String> = words(line)
            .into_iter()
            .skip(1)
            .map(|w| w.replace('~', &home.to_string_lossy()))
            .collect();
        let stdout_to = words.iter().position(|w| w == ">").map(|i| {
            let file = words[i + 1].clone();
            words.truncate(i);
            home.join(file)
        });
        // `presize build`: the README's build file, whose first job names the input folder.
        let input = if words[0] == "build" {
            let file = readme_build_file();
            fs::write(home.join("presize.toml"), file).expect("write presize.toml");
            let line = file
                .lines()
                .find(|l| l.starts_with("input = "))
                .expect("a job with an input");
            line.trim_start_matches("input = ")
                .trim_matches('"')
                .to_owned()
        } else {
            words[0].clone()
        };
        Example {
            input: home.join(input),
            args: words,
            stdout_to,
        }
    }

    fn run(&self, home: &Path, line: &str) {
        // A subcommand takes no flag before it (a build file or manifest says what it wants).
        let mut command = if matches!(self.args[0].as_str(), "build" | "manifest") {
            assert_cmd::Command::cargo_bin("presize").expect("the presize binary is built")
        } else {
            presize()
        };
        let output = command
            .current_dir(home)
            .args(&self.args)
            .output()
            .expect("presize runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{line}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if let Some(file) = &self.stdout_to {
            fs::create_dir_all(file.parent().expect("a folder")).expect("create its folder");
            fs::write(file, &output.stdout).expect("write redirected stdout");
        }
    }

    fn is_in_place(&self) -> bool {
        self.args.iter().any(|a| a == "--in-place")
    }

    fn writes_nothing(&self) -> bool {
        self.args.iter().any(|a| a == "--dry-run")
    }
}

/// A folder of three images in two sub-folders: one larger than most sizes the README asks for
/// (larger than all of them for `--in-place`, which must have something to shrink), the others
/// small, so that dropped sizes and clamped sizes are exercised too. Kept small: AVIF encoding
/// in a debug build is what this test spends its time on.
fn photo_folder(home: &Path, input: &Path, in_place: bool) {
    let rel = |name: &str| {
        input
            .strip_prefix(home)
            .expect("inputs are below home")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    let tree = TestTree::new();
    let tree = tree
        .jpeg(&rel("a.jpg"), if in_place { 2100 } else { 1000 }, 660)
        .jpeg(&rel("2024/portrait.jpg"), 500, 700)
        .png_alpha(&rel("2024/logo.png"), 360, 240);
    for entry in walk(tree.root()) {
        let to = home.join(entry.strip_prefix(tree.root()).unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&entry, &to).unwrap();
    }
}

/// Every file below `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every image file below `dir` with its bytes and modification time. Reports, manifests and
/// redirected output are not images and are rewritten on purpose.
fn images(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            !matches!(ext, "json" | "html" | "ndjson" | "toml")
        })
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            let mtime = fs::metadata(&p).unwrap().modified().unwrap();
            (p, (bytes, mtime))
        })
        .collect()
}

#[test]
fn every_readme_example_runs_twice_and_the_second_run_writes_nothing() {
    for (line, follow) in readme_commands() {
        let home = tempfile::tempdir().unwrap();
        let home = home.path();
        let example = Example::parse(&line, home);
        photo_folder(home, &example.input, example.is_in_place());
        let inputs_before = images(&example.input);
        let run_all = || {
            example.run(home, &line);
            for next in &follow {
                let then = Example::parse(next, home);
                then.run(home, next);
                let html = fs::read_to_string(then.stdout_to.as_ref().expect("markup to a file"));
                let pictures = html.unwrap().matches("<picture>").count();
                assert_eq!(pictures, 3, "{next}: one <picture> per source");
            }
        };

        run_all();
        let after_first = images(home);
        let made: Vec<&PathBuf> = after_first
            .keys()
            .filter(|p| !inputs_before.contains_key(*p))
            .collect();
        if example.writes_nothing() {
            assert!(made.is_empty(), "{line}: a dry run wrote {made:?}");
        } else if example.is_in_place() {
            let shrunk = images(&example.input)
                .iter()
                .filter(|(p, (bytes, _))| inputs_before[*p].0 != *bytes)
                .count();
            assert!(shrunk > 0, "{line}: nothing was replaced in place");
        } else {
            assert!(made.len() >= 3, "{line}: only {made:?}");
            for path in made {
                let head = &after_first[path].0;
                let format = Format::sniff(head).unwrap_or_else(|| panic!("{line}: {path:?}"));
                let ext = path.extension().unwrap().to_string_lossy();
                assert!(
                    format.accepts_extension(&ext),
                    "{line}: {path:?} is {format}"
                );
                // The image crate in the dev-dependencies reads every output format but AVIF.
                if format != Format::Avif {
                    let img = decode(path);
                    assert!(img.width() > 0 && img.height() > 0, "{line}: {path:?}");
                }
            }
        }

        run_all();
        let after_second = images(home);
        assert_eq!(
            after_first.keys().collect::<Vec<_>>(),
            after_second.keys().collect::<Vec<_>>(),
            "{line}: the second run changed the set of files"
        );
        for (path, (bytes, mtime)) in &after_first {
            let (bytes2, mtime2) = &after_second[path];
            assert!(
                bytes == bytes2 && mtime == mtime2,
                "{line}: the second run rewrote {path:?}"
            );
        }
    }
}

/// The web-assets example after an input changes: exactly that source's outputs are redone,
/// and the manifest still reads back (every format, AVIF included).
#[test]
fn the_web_assets_example_redoes_only_a_changed_input() {
    let (line, _) = readme_commands()
        .into_iter()
        .find(|(l, _)| l.contains("--manifest") && l.contains("avif"))
        .expect("the README has a web-assets example with AVIF and a manifest");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let example = Example::parse(&line, home);
    photo_folder(home, &example.input, false);
    example.run(home, &line);
    example.run(home, &line);
    let before = images(home);

    // Change one input's pixels (a different size of the same picture).
    let changed = example.input.join("a.jpg");
    let tree = TestTree::new().jpeg("a.jpg", 900, 660);
    fs::copy(tree.path("a.jpg"), &changed).unwrap();
    example.run(home, &line);
    let after = images(home);

    let manifest = example
        .args
        .iter()
        .position(|a| a == "--manifest")
        .map(|i| home.join(&example.args[i + 1]))
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(manifest).unwrap()).unwrap();
    let sources = manifest["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3, "{manifest:#}");
    let mut rewritten = Vec::new();
    for (path, (bytes, mtime)) in &before {
        if path == &changed {
            continue;
        }
        let (bytes2, mtime2) = &after[path];
        if bytes != bytes2 || mtime != mtime2 {
            rewritten.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    rewritten.sort();
    assert!(!rewritten.is_empty(), "the changed input was not redone");
    for name in &rewritten {
        assert!(
            name.starts_with("a-"),
            "{name} was redone but its source did not change"
        );
    }
    let formats: Vec<&str> = sources
        .iter()
        .flat_map(|s| s["outputs"].as_array().unwrap())
        .map(|o| o["format"].as_str().unwrap())
        .collect();
    for want in ["avif", "webp", "jpeg"] {
        assert!(formats.contains(&want), "{want} missing from {formats:?}");
    }
}
