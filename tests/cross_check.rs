//! The cross-check tier: presize's outputs checked by independent programs, run live.
//!
//! Off by default (each test is listed as ignored); on with `cargo test --features cross-check`,
//! which `.ci/run` uses after installing the tools. When on, every command is printed before it
//! runs (`--show-output` shows it for passing tests too), and a missing tool fails the test with
//! the apt line that installs it (`common::tools::APT_LINE`). The default tests check the same
//! things in-process or against references these tools made once (`testdata/reference/regen.sh`);
//! this tier catches what a committed reference cannot: a tool update that disagrees with us, or
//! an in-process reader that shares our blind spot.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::tools::{self, ImageMagick};
use common::{decode, dims, premultiplied_psnr, presize, psnr, same_output_at, testdata, TestTree};
use image::DynamicImage;

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// ImageMagick's conversion of `src` to the sRGB profile presize embeds (relative intent).
fn imagemagick_srgb(im: &ImageMagick, src: &Path, dir: &Path) -> DynamicImage {
    let profile = dir.join("srgb.icc");
    fs::write(
        &profile,
        presize::internals::pipeline::color::srgb_profile(),
    )
    .unwrap();
    let out = dir.join("im.png");
    // -intent must come before -profile for ImageMagick to use it.
    tools::run(
        im.convert()
            .arg(src)
            .args(["-intent", "relative", "-profile"])
            .arg(&profile)
            .arg(&out),
    );
    decode(&out)
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn icc_srgb_and_cmyk_conversions_match_a_live_imagemagick() {
    let im = ImageMagick::find();
    let tree = TestTree::new();
    for (name, width, bound) in [
        ("rocket_640x427_adobergb_icc", "640", 45.0),
        ("cmyk_ycck_500x333_swop_icc", "500", 40.0),
    ] {
        let src = testdata(&format!("photos/{name}.jpg"));
        let out = tree.path(&format!("out-{name}"));
        // Same size: the conversion alone is compared.
        presize()
            .arg(&src)
            .args(["-o", p(&out), "-w", width, "-f", "png", "--icc", "srgb"])
            .assert()
            .success();
        let ours = decode(&out.join(format!("{name}.png")));
        let theirs = imagemagick_srgb(&im, &src, tree.root());
        let db = psnr(&ours, &theirs);
        assert!(db >= bound, "{name}: {db:.1} dB against ImageMagick");
    }
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn transparent_png_resizes_like_a_live_imagemagick_premultiplied() {
    let im = ImageMagick::find();
    let tree = TestTree::new();
    let src = testdata("photos/transparency_rgba8.png");
    let out = tree.path("out");
    presize()
        .arg(&src)
        .args(["-o", p(&out), "-w", "150"])
        .assert()
        .success();
    let ours = decode(&out.join("transparency_rgba8.png"));
    let reference = tree.path("im.png");
    tools::run(
        im.convert()
            .arg(&src)
            .args(["-filter", "Lanczos", "-resize", "150x150"])
            .arg(&reference),
    );
    let theirs = decode(&reference);
    let db = premultiplied_psnr(&ours, &theirs);
    assert!(
        db >= 44.0,
        "premultiplied PSNR against ImageMagick: {db:.1} dB"
    );
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn committed_references_still_match_a_live_imagemagick() {
    // The default tests trust testdata/reference/; this says when ImageMagick has moved on
    // enough that regen.sh should be run. Same commands as regen.sh.
    let im = ImageMagick::find();
    let tree = TestTree::new();
    let profile = tree.path("srgb.icc");
    fs::write(
        &profile,
        presize::internals::pipeline::color::srgb_profile(),
    )
    .unwrap();
    let relative = ["-intent", "relative", "-profile", p(&profile)];
    let lanczos = ["-auto-orient", "-filter", "Lanczos", "-resize", "320x"];
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "photos/rocket_640x427_adobergb_icc.jpg",
            "rocket_640x427_srgb_relative.png",
            &relative,
        ),
        (
            "photos/cmyk_ycck_500x333_swop_icc.jpg",
            "cmyk_ycck_500x333_srgb_relative.png",
            &relative,
        ),
        (
            "photos/dune_1680x1050_exif.jpg",
            "dune_1680x1050_exif_320w_lanczos.png",
            &lanczos,
        ),
        (
            "photos/transparency_rgba8.png",
            "transparency_150w_lanczos.png",
            &["-filter", "Lanczos", "-resize", "150x150"],
        ),
    ];
    for (src, reference, args) in cases {
        let fresh = tree.path(reference);
        tools::run(im.convert().arg(testdata(src)).args(args).arg(&fresh));
        let db = psnr(
            &decode(&fresh),
            &decode(&testdata(&format!("reference/{reference}"))),
        );
        assert!(
            db >= 50.0,
            "{reference}: {db:.1} dB; run testdata/reference/regen.sh"
        );
    }
}

/// `exiftool -a -G1 -s -n` as (`Group:Tag`, value) pairs.
fn exiftool_tags(path: &Path) -> Vec<(String, String)> {
    let out = tools::run(
        Command::new(tools::find("exiftool"))
            .args(["-a", "-G1", "-s", "-n"])
            .arg(path),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let mut k = k.split_whitespace();
            let group = k.next()?.trim_matches(['[', ']']);
            let tag = k.next()?;
            Some((format!("{group}:{tag}"), v.trim().to_string()))
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn has_group(tags: &[(String, String)], group: &str) -> bool {
    tags.iter()
        .any(|(k, _)| k.starts_with(&format!("{group}:")))
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn exiftool_reads_the_metadata_policies_in_every_format() {
    let tree = TestTree::new();
    let src = testdata("metadata/cranes_400x300_orient6_gps_xmp.jpg");
    for format in ["jpeg", "png", "webp"] {
        let ext = if format == "jpeg" { "jpg" } else { format };
        let run = |extra: &[&str]| {
            let out = tree.path(&format!("out-{format}-{}", extra.join("")));
            presize()
                .arg(&src)
                .args(["-o", p(&out), "-w", "150", "-f", format])
                .args(extra)
                .assert()
                .success();
            exiftool_tags(&out.join(format!("cranes_400x300_orient6_gps_xmp.{ext}")))
        };

        let t = run(&[]);
        assert_eq!(tag(&t, "IFD0:Make"), Some("Huawei"), "{format}: {t:?}");
        assert_eq!(tag(&t, "IFD0:Model"), Some("Nexus 6P"), "{format}");
        assert_eq!(
            tag(&t, "ExifIFD:DateTimeOriginal"),
            Some("2018:01:04 08:43:51"),
            "{format}"
        );
        assert_eq!(tag(&t, "IFD0:Orientation"), Some("1"), "{format}");
        assert_eq!(tag(&t, "ExifIFD:ExifImageWidth"), Some("150"), "{format}");
        assert_eq!(tag(&t, "ExifIFD:ExifImageHeight"), Some("200"), "{format}");
        assert!(!has_group(&t, "IFD1"), "{format}: thumbnail dropped: {t:?}");
        assert!(tag(&t, "GPS:GPSLatitude").is_some(), "{format}");
        assert_eq!(tag(&t, "XMP-dc:Creator"), Some("Test Person"), "{format}");
        assert_eq!(
            tag(&t, "ICC_Profile:ProfileDescription"),
            Some("sRGB IEC61966-2.1"),
            "{format}"
        );

        let t = run(&["--strip-gps"]);
        let gps: Vec<_> = t.iter().filter(|(k, _)| k.contains("GPS")).collect();
        assert!(gps.is_empty(), "{format}: {gps:?}");
        assert_eq!(tag(&t, "IFD0:Make"), Some("Huawei"), "{format}");

        let t = run(&["--strip"]);
        for group in ["IFD0", "ExifIFD", "GPS", "IFD1", "XMP-dc", "XMP-exif"] {
            assert!(!has_group(&t, group), "{format}: {group} left: {t:?}");
        }
        assert!(has_group(&t, "ICC_Profile"), "{format}: the profile stays");

        let t = run(&["--strip", "--icc", "strip"]);
        assert!(!has_group(&t, "ICC_Profile"), "{format}: {t:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn exiftool_finds_no_orientation_left_on_upright_outputs() {
    let out = tempfile::tempdir().unwrap();
    presize()
        .arg(testdata("orientation"))
        .args(["-o", p(out.path()), "-s", "120x120", "-f", "jpeg,png,webp"])
        .assert()
        .code(0);
    for n in 2..=8 {
        for ext in ["jpg", "png", "webp"] {
            let t = exiftool_tags(&out.path().join(format!("Landscape_{n}.{ext}")));
            let orientation = tag(&t, "IFD0:Orientation");
            assert!(
                matches!(orientation, None | Some("1")),
                "Landscape_{n}.{ext}: Orientation {orientation:?}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn imagemagick_and_vips_read_every_output_format_at_the_planned_size() {
    let im = ImageMagick::find();
    let vipsheader = tools::find("vipsheader");
    let tree = TestTree::new()
        .jpeg("in/a.jpg", 640, 480)
        .png_alpha("in/t.png", 200, 200);
    let out = tree.path("out");
    presize()
        .arg(tree.path("in"))
        .args([
            "-o",
            p(&out),
            "-w",
            "160",
            "-f",
            "jpeg,webp,avif,png,gif,tiff",
        ])
        .assert()
        .success();
    for (stem, size) in [("a", "160x120"), ("t", "160x160")] {
        for ext in ["jpg", "webp", "avif", "png", "gif", "tif"] {
            let f = out.join(format!("{stem}.{ext}"));
            let o = tools::run(im.identify().args(["-format", "%wx%h"]).arg(&f));
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                size,
                "identify {stem}.{ext}"
            );
            let o = tools::run(Command::new(&vipsheader).args(["-f", "width"]).arg(&f));
            let w = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            let o = tools::run(Command::new(&vipsheader).args(["-f", "height"]).arg(&f));
            let h = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            assert_eq!(format!("{w}x{h}"), size, "vipsheader {stem}.{ext}");
        }
    }
    // And the pixels: ImageMagick's decode of the AVIF (through libheif) matches ours of the
    // PNG written in the same run.
    let decoded = tree.path("a-avif.png");
    tools::run(im.convert().arg(out.join("a.avif")).arg(&decoded));
    let db = psnr(&decode(&decoded), &decode(&out.join("a.png")));
    assert!(db > 35.0, "AVIF as ImageMagick decodes it: {db:.1} dB");
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn a_restart_marker_jpeg_from_imagemagick_and_jpegtran_decodes_in_bands_byte_identically() {
    // tests/parallel.rs makes its restart JPEG with the jpeg-encoder crate; this one comes from
    // libjpeg (ImageMagick, 4:2:0) with markers added losslessly by jpegtran, as cameras and
    // editors make them.
    let im = ImageMagick::find();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("noise.png");
    DynamicImage::ImageRgb8(common::noise(2000, 1400))
        .save(&png)
        .unwrap();
    let plain = dir.path().join("plain.jpg");
    tools::run(
        im.convert()
            .arg(&png)
            .args(["-quality", "90", "-sampling-factor", "2x2"])
            .arg(&plain),
    );
    let out = tools::run(
        Command::new(tools::find("jpegtran"))
            .args(["-copy", "all", "-restart", "1"])
            .arg(&plain),
    );
    assert!(
        out.stdout.windows(2).any(|w| w == [0xFF, 0xDD]),
        "the test JPEG has a restart interval"
    );
    let intervals = presize::internals::pipeline::restart::Intervals::parse(&out.stdout)
        .expect("band-decodable");
    assert_eq!(intervals.bands(2).len(), 2);
    let tree = TestTree::new().file("in/restart.jpg", &out.stdout);
    assert_eq!(dims(&tree.path("in/restart.jpg")), (2000, 1400));
    for width in ["300", "1100"] {
        assert_eq!(same_output_at("2", &tree.path("in"), &["-w", width]), 1);
    }
}

/// One system call in an `strace -f` log: its text (name, arguments, result) and the lines at
/// which it began and ended (a call another thread interrupted is logged in two parts).
struct Call {
    text: String,
    start: usize,
    end: usize,
}

impl Call {
    fn name(&self) -> &str {
        self.text.split('(').next().unwrap_or_default()
    }

    fn succeeded(&self) -> bool {
        self.text.trim_end().ends_with("= 0")
    }

    /// An `fsync`/`fdatasync` of the file or folder at `path` (`strace -y` shows fd paths).
    fn syncs(&self, path: &Path) -> bool {
        matches!(self.name(), "fsync" | "fdatasync")
            && self.text.contains(&format!("<{}>", p(path)))
    }

    /// For a rename: the (from, to) paths, as presize passed them.
    fn renamed(&self) -> Option<(&str, &str)> {
        if !self.name().starts_with("rename") {
            return None;
        }
        let mut quoted = self.text.split('"').skip(1).step_by(2);
        Some((quoted.next()?, quoted.next()?))
    }
}

/// Runs presize with `args` under `strace`, tracing the calls that order writes on disk.
fn trace_presize(dir: &Path, args: &[&str]) -> Vec<Call> {
    let log = dir.join("strace.log");
    tools::run(
        Command::new(tools::find("strace"))
            .args(["-f", "-y", "-qq", "-o"])
            .arg(&log)
            .args([
                "-e",
                "trace=fsync,fdatasync,syncfs,rename,renameat,renameat2",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_presize"))
            .args(["--progress", "never", "-q"])
            .args(args),
    );
    let text = fs::read_to_string(&log).unwrap();
    let mut calls = Vec::new();
    let mut pending = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid.to_owned(), (i, head.to_owned()));
        } else if let Some((_, tail)) = rest.split_once(" resumed>") {
            let (start, head) = pending.remove(pid).expect("resumed after unfinished");
            calls.push(Call {
                text: head + tail,
                start,
                end: i,
            });
        } else if rest.contains('(') {
            calls.push(Call {
                text: rest.to_owned(),
                start: i,
                end: i,
            });
        }
    }
    calls
}

/// The rename that put `dst` in place, and the `fsync` of its temporary file before it.
fn rename_and_file_sync<'a>(calls: &'a [Call], dst: &Path) -> (&'a Call, &'a Call) {
    let rename = calls
        .iter()
        .find(|c| c.renamed().is_some_and(|(_, to)| Path::new(to) == dst))
        .unwrap_or_else(|| panic!("no rename to {}", dst.display()));
    let (tmp, _) = rename.renamed().unwrap();
    let sync = calls
        .iter()
        .find(|c| c.syncs(Path::new(tmp)))
        .unwrap_or_else(|| panic!("{} ({tmp}) never synced", dst.display()));
    assert!(sync.succeeded() && rename.succeeded());
    assert!(
        sync.end < rename.start,
        "{}: fsync (line {}) before rename (line {})",
        dst.display(),
        sync.end,
        rename.start
    );
    (rename, sync)
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn in_place_syncs_each_new_file_before_renaming_it_over_the_original_and_the_folder_after() {
    let tree = TestTree::new()
        .jpeg("in/a.jpg", 320, 200)
        .png("in/sub/b.png", 300, 300);
    let root = tree.root().canonicalize().unwrap();
    let calls = trace_presize(&root, &[p(&root.join("in")), "--in-place", "-w", "100"]);
    for original in ["in/a.jpg", "in/sub/b.png"] {
        let original = root.join(original);
        let (rename, _) = rename_and_file_sync(&calls, &original);
        let folder = original.parent().unwrap();
        assert!(
            calls
                .iter()
                .any(|c| c.syncs(folder) && c.succeeded() && c.start > rename.end),
            "{}: its folder is synced after the rename",
            original.display()
        );
        assert_eq!(dims(&original).0, 100);
    }
}

#[test]
#[cfg_attr(
    not(feature = "cross-check"),
    ignore = "cross-check tier: cargo test --features cross-check"
)]
fn a_manifest_build_has_every_output_on_disk_before_the_manifest_is_renamed_into_place() {
    let mut tree = TestTree::new();
    for i in 0..6 {
        tree = tree.png(&format!("in/d{}/img{i}.png", i % 2), 200, 150);
    }
    let root = tree.root().canonicalize().unwrap();
    let (input, out, manifest) = (root.join("in"), root.join("out"), root.join("m.json"));
    let args = [
        p(&input),
        "-o",
        p(&out),
        "-w",
        "80,40",
        "-f",
        "webp,jpeg",
        "--manifest",
        p(&manifest),
    ];
    let calls = trace_presize(&root, &args);
    let (saved, synced) = rename_and_file_sync(&calls, &manifest);
    assert!(calls
        .iter()
        .any(|c| c.syncs(&root) && c.succeeded() && c.start > saved.end));
    let outputs = common::files_under(&out);
    assert_eq!(outputs.len(), 24);
    for output in outputs {
        let (rename, sync) = rename_and_file_sync(&calls, &out.join(&output));
        assert!(
            sync.end < synced.start && rename.end < saved.start,
            "{} synced and renamed before the manifest is",
            output.display()
        );
    }

    // --no-sync: a scratch build waits for nothing.
    fs::remove_dir_all(&out).unwrap();
    fs::remove_file(&manifest).unwrap();
    let lazy = trace_presize(&root, &[&args[..], &["--no-sync"]].concat());
    assert!(lazy.iter().any(|c| c.renamed().is_some()));
    let syncs: Vec<_> = lazy
        .iter()
        .filter(|c| matches!(c.name(), "fsync" | "fdatasync" | "syncfs"))
        .map(|c| &c.text)
        .collect();
    assert!(syncs.is_empty(), "--no-sync synced: {syncs:?}");
}
