//! Input formats beyond the photo formats (issue #13, items 7-9): every readable format decodes
//! and resizes, checked pixel by pixel on generated files of known content; damaged files obey
//! `--fail-on`; SVG is rendered at the output size.
//!
//! Runs the `presize` binary on files written into a temporary folder and decodes what it wrote
//! with the `image` crate. Nothing here calls an external program.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use image::{DynamicImage, ImageFormat, Rgb, Rgb32FImage, Rgba, RgbaImage};
use predicates::prelude::*;
use presize::Format;
use tempfile::TempDir;

fn presize() -> Command {
    Command::cargo_bin("presize").expect("binary builds")
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// The colours of the test pattern: four vertical bands, so that a downscale keeps each band's
/// colour exactly away from the edges between them. The last one is half transparent.
const BANDS: [[u8; 4]; 4] = [
    [200, 30, 40, 255],
    [20, 160, 60, 255],
    [30, 50, 220, 255],
    [250, 240, 10, 128],
];

/// The band pattern at `w`×`h`.
fn pattern(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, _| Rgba(BANDS[(x * 4 / w) as usize]))
}

/// The pattern encoded by the `image` crate.
fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

/// An uncompressed true-colour TGA, written by hand: 32-bit BGRA, bottom-up rows (the TGA
/// default), so that a decoder ignoring the origin would turn the image upside down.
fn tga(img: &RgbaImage) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let mut out = vec![0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    out.extend(u16::try_from(w).unwrap().to_le_bytes());
    out.extend(u16::try_from(h).unwrap().to_le_bytes());
    out.extend([32, 8]); // 32 bits a pixel, 8 of them alpha, bottom-left origin
    for y in (0..h).rev() {
        for x in 0..w {
            let Rgba([r, g, b, a]) = *img.get_pixel(x, y);
            out.extend([b, g, r, a]);
        }
    }
    out
}

/// A binary PPM (P6), written by hand, with a comment in its header.
fn ppm(img: &RgbaImage) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let mut out = format!("P6\n# made by presize's tests\n{w} {h}\n255\n").into_bytes();
    for p in img.pixels() {
        out.extend(&p.0[..3]);
    }
    out
}

/// A 16-bit grey PGM (P5, maxval 65535) of a horizontal ramp, written by hand.
fn pgm16(w: u32, h: u32) -> Vec<u8> {
    let mut out = format!("P5 {w} {h} 65535\n").into_bytes();
    for _ in 0..h {
        for x in 0..w {
            out.extend(u16::try_from(x * 65535 / (w - 1)).unwrap().to_be_bytes());
        }
    }
    out
}

/// An icon holding the pattern at 16×16 and, as its second entry, at `w`×`h`: the larger one
/// must be chosen.
fn ico(w: u32, h: u32) -> Vec<u8> {
    use image::codecs::ico::{IcoEncoder, IcoFrame};
    let small = DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 255])));
    let large = DynamicImage::ImageRgba8(pattern(w, h));
    let frame = |img: &DynamicImage| {
        IcoFrame::as_png(
            img.as_bytes(),
            img.width(),
            img.height(),
            img.color().into(),
        )
        .unwrap()
    };
    let mut out = Vec::new();
    IcoEncoder::new(&mut out)
        .encode_images(&[frame(&small), frame(&large)])
        .unwrap();
    out
}

/// The linear-light value that sRGB encodes as `v` (0..=255).
fn linear(v: u8) -> f32 {
    let c = f32::from(v) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// The pattern's colours in linear light, scaled by `gain`, as a float image (no alpha).
fn linear_pattern(w: u32, h: u32, gain: f32) -> Rgb32FImage {
    Rgb32FImage::from_fn(w, h, |x, _| {
        let [r, g, b, _] = BANDS[(x * 4 / w) as usize];
        Rgb([linear(r) * gain, linear(g) * gain, linear(b) * gain])
    })
}

/// The band pattern drawn as an SVG of intrinsic size `w`×`h`.
fn svg_bands(w: u32, h: u32) -> String {
    let mut svg = format!(
        "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\">\n"
    );
    for (i, [r, g, b, a]) in BANDS.into_iter().enumerate() {
        let x = i as u32 * w / 4;
        svg += &format!(
            "<rect x=\"{x}\" y=\"0\" width=\"{}\" height=\"{h}\" \
             fill=\"rgb({r},{g},{b})\" fill-opacity=\"{}\"/>\n",
            w / 4,
            f32::from(a) / 255.0
        );
    }
    svg + "</svg>\n"
}

/// A sample file of `format` holding the band pattern at `w`×`h` (opaque where the format
/// has no alpha), and the file name it is given; `None` where this build cannot read the
/// format. `Format` is `#[non_exhaustive]` (it grows), so the last arm cannot be checked when
/// compiling; it fails instead: the test below iterates `Format::ALL`, so a new format
/// without a sample fails it.
fn sample(format: Format, w: u32, h: u32) -> Option<(Vec<u8>, &'static str)> {
    let rgba = DynamicImage::ImageRgba8(pattern(w, h));
    let rgb = DynamicImage::ImageRgb8(rgba.to_rgb8());
    let float = DynamicImage::ImageRgb32F(linear_pattern(w, h, 1.0));
    Some(match format {
        Format::Jpeg => (encoded(&rgb, ImageFormat::Jpeg), "sample.jpg"),
        Format::Png => (encoded(&rgba, ImageFormat::Png), "sample.png"),
        Format::Webp => (encoded(&rgba, ImageFormat::WebP), "sample.webp"),
        Format::Gif => (encoded(&rgb, ImageFormat::Gif), "sample.gif"),
        Format::Tiff => (encoded(&rgba, ImageFormat::Tiff), "sample.tiff"),
        Format::Bmp => (encoded(&rgba, ImageFormat::Bmp), "sample.bmp"),
        Format::Avif if format.is_readable() => (avif(&rgba), "sample.avif"),
        // No HEVC encoder here: tests/heif.rs reads real HEIC files.
        Format::Avif | Format::Heic => return None,
        Format::Ico => (ico(w, h), "sample.ico"),
        Format::Tga => (tga(&pattern(w, h)), "sample.tga"),
        Format::Pnm => (ppm(&pattern(w, h)), "sample.ppm"),
        Format::Qoi => (encoded(&rgba, ImageFormat::Qoi), "sample.qoi"),
        Format::Hdr => (encoded(&float, ImageFormat::Hdr), "sample.hdr"),
        Format::Svg => (svg_bands(w, h).into_bytes(), "sample.svg"),
        Format::Exr => {
            let with_alpha = DynamicImage::ImageRgba32F(rgba.to_rgba32f());
            // to_rgba32f keeps the sRGB-encoded values; make the colours linear.
            let mut img = with_alpha.into_rgba32f();
            for p in img.pixels_mut() {
                for c in &mut p.0[..3] {
                    *c = linear((*c * 255.0).round() as u8);
                }
            }
            (
                encoded(&DynamicImage::ImageRgba32F(img), ImageFormat::OpenExr),
                "sample.exr",
            )
        }
        other => panic!("{other}: no sample file here yet; add one so the new format is tested"),
    })
}

/// `img` as a near-lossless AVIF, written by presize itself (rav1e): what it reads back goes
/// through libheif, a decoder of its own.
fn avif(img: &DynamicImage) -> Vec<u8> {
    let dir = TempDir::new().unwrap();
    let png = dir.path().join("pattern.png");
    img.save(&png).unwrap();
    let out = dir.path().join("out");
    let w = img.width().to_string();
    presize()
        .arg(&png)
        .arg("-o")
        .arg(&out)
        .args(["-w", &w, "-f", "avif", "-Q", "100"])
        .assert()
        .success();
    std::fs::read(out.join("pattern.avif")).unwrap()
}

/// Resizes `file` (named `name`) with `args`, expecting success; returns the output folder.
fn resize(dir: &TempDir, name: &str, file: &[u8], args: &[&str]) -> PathBuf {
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join(name), file).unwrap();
    let out = dir.path().join("out");
    presize()
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(args)
        .assert()
        .success();
    out
}

/// The only file in `dir`.
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Asserts that every band of `img` (away from the edges between bands) holds `colour(band)`
/// within `tolerance` per channel.
fn assert_bands(img: &RgbaImage, tolerance: u8, colour: impl Fn([u8; 4]) -> [u8; 4], what: &str) {
    let (w, h) = img.dimensions();
    for (band, &want) in BANDS.iter().enumerate() {
        let want = colour(want);
        let x = (2 * band as u32 + 1) * w / 8;
        for y in [0, h / 2, h - 1] {
            let got = img.get_pixel(x, y).0;
            let close = got
                .iter()
                .zip(want)
                .all(|(&g, w)| g.abs_diff(w) <= tolerance);
            assert!(
                close,
                "{what}: band {band} at ({x}, {y}) is {got:?}, want {want:?}"
            );
        }
    }
}

#[test]
fn every_readable_format_is_resized_with_its_pixels_intact() {
    for format in Format::ALL {
        let Some((file, name)) = sample(format, 64, 32) else {
            continue;
        };
        let dir = TempDir::new().unwrap();
        let out = resize(&dir, name, &file, &["-w", "32", "-f", "png"]);
        let img = image::open(only_file(&out)).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (32, 16), "{format}");
        // Samples without alpha are opaque. JPEG is lossy; RGBE shares one exponent among a
        // pixel's channels, so a channel far below the brightest loses its low bits (the
        // yellow's blue, sRGB 10, comes back as 0).
        let alpha = !matches!(
            format,
            Format::Jpeg | Format::Gif | Format::Pnm | Format::Hdr
        );
        let tolerance = match format {
            Format::Jpeg | Format::Hdr | Format::Avif => 12,
            _ => 1,
        };
        assert_bands(
            &img,
            tolerance,
            |[r, g, b, a]| [r, g, b, if alpha { a } else { 255 }],
            format.name(),
        );
    }
}

#[test]
fn a_tga_stored_bottom_up_comes_out_upright() {
    let img = RgbaImage::from_fn(8, 8, |_, y| {
        if y < 4 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let dir = TempDir::new().unwrap();
    let out = resize(&dir, "flag.tga", &tga(&img), &["-w", "4", "-f", "png"]);
    let got = image::open(only_file(&out)).unwrap().to_rgba8();
    assert_eq!(got.get_pixel(2, 0).0, [255, 0, 0, 255], "top is red");
    assert_eq!(got.get_pixel(2, 3).0, [0, 0, 255, 255], "bottom is blue");
}

#[test]
fn a_16_bit_pgm_keeps_its_16_bits_in_a_png() {
    let dir = TempDir::new().unwrap();
    let out = resize(
        &dir,
        "ramp.pgm",
        &pgm16(256, 4),
        &["-w", "128", "-f", "png"],
    );
    let DynamicImage::ImageLuma16(img) = image::open(only_file(&out)).unwrap() else {
        panic!("not a 16-bit grey PNG");
    };
    assert_eq!(img.dimensions(), (128, 2));
    let row: Vec<u16> = (0..128).map(|x| img.get_pixel(x, 1).0[0]).collect();
    assert!(row.windows(2).all(|p| p[0] <= p[1]), "a ramp: {row:?}");
    // Steps of 257 / 2 on average: many values no 8-bit image can hold.
    assert!(
        row.iter().filter(|v| *v % 257 != 0).count() > 100,
        "{row:?}"
    );
}

#[test]
fn highlights_over_one_are_compressed_not_clipped() {
    // Four times the pattern: every band but the blue one goes over 1.0. Reinhard's extended
    // operator with the brightest sample as white: x (1 + x / w²) / (1 + x).
    let gain = 4.0;
    let img = DynamicImage::ImageRgb32F(linear_pattern(64, 32, gain));
    let white = linear(250) * gain;
    let expect = |v: u8| {
        let x = linear(v) * gain;
        let y = x * (1.0 + x / (white * white)) / (1.0 + x);
        let s = if y <= 0.003_130_8 {
            12.92 * y
        } else {
            1.055 * y.powf(1.0 / 2.4) - 0.055
        };
        (s * 255.0).round() as u8
    };
    for (format, name) in [
        (ImageFormat::OpenExr, "hot.exr"),
        (ImageFormat::Hdr, "hot.hdr"),
    ] {
        let dir = TempDir::new().unwrap();
        let out = resize(
            &dir,
            name,
            &encoded(&img, format),
            &["-w", "32", "-f", "png"],
        );
        let got = image::open(only_file(&out)).unwrap().to_rgba8();
        // RGBE keeps too few bits of the yellow's blue (see above) for an exact comparison.
        if format == ImageFormat::OpenExr {
            assert_bands(
                &got,
                1,
                |[r, g, b, _]| [expect(r), expect(g), expect(b), 255],
                name,
            );
        }
        let yellow = got.get_pixel(28, 8).0;
        assert_eq!(yellow[0], 255, "{name}: the brightest sample is white");
        assert!(
            yellow[1] < 255,
            "{name}: 240 is not clipped to 255: {yellow:?}"
        );
    }
}

#[test]
fn same_format_for_a_read_only_input_is_png_or_jpeg() {
    for (format, want) in [
        (Format::Ico, "png"),
        (Format::Tga, "png"),
        (Format::Qoi, "png"),
        (Format::Exr, "png"),
        (Format::Hdr, "jpg"),
    ] {
        assert_eq!(format.same_output().extension(), want);
        let (file, name) = sample(format, 16, 16).unwrap();
        let dir = TempDir::new().unwrap();
        let out = resize(&dir, name, &file, &["-w", "8"]);
        let written = only_file(&out);
        assert_eq!(written.extension().unwrap(), want, "{format}");
        let img = image::open(&written).unwrap();
        assert_eq!((img.width(), img.height()), (8, 8), "{format}");
    }
}

#[test]
fn a_tga_is_known_by_its_name_and_header_only() {
    let file = tga(&pattern(8, 8));
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("picture.bin"), &file).unwrap();
    std::fs::write(input.join("noise.tga"), b"this is not a targa file at all").unwrap();
    let out = dir.path().join("out");
    presize()
        .arg(&input)
        .args(["-o"])
        .arg(&out)
        .args(["-w", "4"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("noise.tga"))
        .stderr(predicates::str::contains("picture.bin").not());
    assert!(!out.join("picture.png").exists());
}

#[test]
fn a_damaged_file_of_each_new_format_fails_alone_with_a_clear_error() {
    for format in [
        Format::Ico,
        Format::Tga,
        Format::Pnm,
        Format::Qoi,
        Format::Hdr,
        Format::Exr,
    ] {
        let (file, name) = sample(format, 64, 32).unwrap();
        let dir = TempDir::new().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap();
        std::fs::write(input.join(name), &file[..file.len() / 3]).unwrap();
        std::fs::write(input.join("good.qoi"), sample(Format::Qoi, 8, 8).unwrap().0).unwrap();
        let out = dir.path().join("out");
        presize()
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["-w", "4"])
            .assert()
            .code(1)
            .stderr(predicates::str::contains(format!("{name}: ")))
            .stderr(predicates::str::contains("panic").not());
        assert!(
            out.join("good.png").exists(),
            "{format}: the good file is written"
        );
    }
}

/// Runs presize on the single file `name` holding `file`, with `args`; returns the output
/// folder and the assertion on the run.
fn run_one(
    dir: &TempDir,
    name: &str,
    file: &[u8],
    args: &[&str],
) -> (PathBuf, assert_cmd::assert::Assert) {
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join(name), file).unwrap();
    let out = dir.path().join("out");
    let assert = presize()
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(args)
        .assert();
    (out, assert)
}

/// A 64×64 image, the band pattern above and black-and-white noise below (which holds most of
/// the compressed data), encoded as `format` and cut short halfway through the noise.
fn cut(format: ImageFormat) -> Vec<u8> {
    let img = RgbaImage::from_fn(64, 64, |x, y| {
        if y < 32 {
            let [r, g, b, _] = BANDS[(x / 16) as usize];
            Rgba([r, g, b, 255])
        } else {
            let noise = (x * 7919 + y * 104_729).wrapping_mul(2_654_435_761) >> 31;
            let v = if noise == 1 { 255 } else { 0 };
            Rgba([v, v, v, 255])
        }
    });
    let img = DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8());
    let bytes = encoded(&img, format);
    bytes[..bytes.len() * 3 / 4].to_vec()
}

/// The photo in testdata with eight bytes of its entropy-coded data flipped: libjpeg decodes
/// all of it, warning "Corrupt JPEG data: premature end of data segment".
fn corrupt_jpeg() -> Vec<u8> {
    let mut bytes = std::fs::read(testdata("photos/fallen_leaf_tiny_400x250.jpg")).unwrap();
    for b in &mut bytes[5000..5008] {
        if *b != 0xFF && *b != 0 {
            *b ^= 0x5A;
        }
    }
    bytes
}

#[test]
fn a_truncated_file_fails_by_default_and_is_rescued_with_fail_on_none() {
    // Issue #13 item 9: a half-copied card. The top of each image is intact; what is missing
    // comes out grey (libjpeg fills missing blocks) or black (PNG, GIF: rows never decoded).
    for (format, name, missing) in [
        (ImageFormat::Jpeg, "cut.jpg", [128, 128, 128]),
        (ImageFormat::Png, "cut.png", [0, 0, 0]),
        (ImageFormat::Gif, "cut.gif", [0, 0, 0]),
    ] {
        let file = cut(format);
        for level in [None, Some("warning"), Some("error"), Some("truncated")] {
            let dir = TempDir::new().unwrap();
            let mut args = vec!["-w", "32", "-f", "png"];
            args.extend(level.iter().flat_map(|l| ["--fail-on", l]));
            let (out, assert) = run_one(&dir, name, &file, &args);
            assert
                .code(1)
                .stderr(predicate::str::contains(format!("{name}: cannot decode")))
                .stderr(predicate::str::contains(
                    "--fail-on none keeps what decoded",
                ));
            assert!(!out.join("cut.png").exists(), "{name} {level:?}");
        }
        let dir = TempDir::new().unwrap();
        let (out, assert) = run_one(
            &dir,
            name,
            &file,
            &["-w", "32", "-f", "png", "--fail-on", "none"],
        );
        assert.code(0).stderr(predicate::str::contains(format!(
            "{name}: warning: truncated"
        )));
        let files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files,
            ["cut.png"],
            "{name}: one output, no temporary file left"
        );
        let img = image::open(out.join("cut.png")).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (32, 32), "{name}");
        let tolerance = if format == ImageFormat::Jpeg { 12 } else { 1 };
        for (band, &[r, g, b, _]) in BANDS.iter().enumerate() {
            let got = img.get_pixel(band as u32 * 8 + 4, 4).0;
            let close = got
                .iter()
                .zip([r, g, b])
                .all(|(&g, w)| g.abs_diff(w) <= tolerance);
            assert!(close, "{name}: band {band} is {got:?}");
        }
        let bottom = img.get_pixel(16, 31).0;
        let close = bottom.iter().zip(missing).all(|(&g, w)| g.abs_diff(w) <= 2);
        assert!(
            close,
            "{name}: the missing part is {bottom:?}, not {missing:?}"
        );
    }
}

#[test]
fn a_jpeg_the_decoder_only_warns_about_fails_only_at_fail_on_warning() {
    let file = corrupt_jpeg();
    let dir = TempDir::new().unwrap();
    let (out, assert) = run_one(&dir, "bumpy.jpg", &file, &["-w", "100"]);
    assert
        .code(1)
        .stderr(predicate::str::contains(
            "bumpy.jpg: cannot decode JPEG: Corrupt JPEG data",
        ))
        .stderr(predicate::str::contains("--fail-on error accepts it"));
    assert!(!out.join("bumpy.jpg").exists());
    for level in ["error", "truncated", "none"] {
        let dir = TempDir::new().unwrap();
        let (out, assert) = run_one(&dir, "bumpy.jpg", &file, &["-w", "100", "--fail-on", level]);
        assert
            .code(0)
            .stderr(predicate::str::contains("bumpy.jpg: warning: damaged JPEG"));
        let img = image::open(out.join("bumpy.jpg")).unwrap();
        assert_eq!((img.width(), img.height()), (100, 63), "{level}");
    }
}

#[test]
fn the_fail_on_default_is_named_in_the_help() {
    presize()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--fail-on <LEVEL>"))
        .stdout(predicate::str::contains("[default: warning]"));
}

#[test]
fn the_real_half_copied_files_are_rescued_with_a_warning_each() {
    // Cut from real files: a baseline JPEG at 40 % (2560x1600), a PNG at 50 % (768x512).
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["baseline_jpeg_cut_at_40pct.jpg", "png_cut_at_50pct.png"] {
        std::fs::copy(testdata(&format!("bad/{name}")), input.join(name)).unwrap();
    }
    let out = dir.path().join("out");
    presize()
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["-w", "256", "-f", "png", "--fail-on", "none", "-q"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "baseline_jpeg_cut_at_40pct.jpg: warning: truncated JPEG",
        ))
        .stderr(predicate::str::contains(
            "png_cut_at_50pct.png: warning: truncated PNG",
        ));
    for (name, size, missing) in [
        (
            "baseline_jpeg_cut_at_40pct.png",
            (256, 160),
            [128, 128, 128],
        ),
        ("png_cut_at_50pct.png", (256, 171), [0, 0, 0]),
    ] {
        let img = image::open(out.join(name)).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), size, "{name}");
        let top = img.get_pixel(size.0 / 2, 2).0;
        assert!(top != missing, "{name}: the top is the picture");
        let bottom = img.get_pixel(size.0 / 2, size.1 - 1).0;
        let close = bottom.iter().zip(missing).all(|(&g, w)| g.abs_diff(w) <= 2);
        assert!(close, "{name}: the bottom is {bottom:?}");
    }
}

/// A 16×16 drawing: a black square from 4 to 12 on white. Rendered at a multiple of 16 its
/// edges fall between pixels, so a render at the output size is pure black and white, while a
/// 16-pixel bitmap enlarged would blur them over several pixels.
const SQUARE_SVG: &str = r##"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Drawn by hand for presize's tests -->
<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">
  <rect width="16" height="16" fill="#fff"/>
  <rect x="4" y="4" width="8" height="8" fill="#000"/>
</svg>
"##;

/// Grey levels strictly between black and white, in `img`'s first channel.
fn greys(img: &image::RgbImage) -> usize {
    img.pixels().filter(|p| p.0[0] > 3 && p.0[0] < 252).count()
}

#[test]
fn an_svg_is_rendered_sharp_at_every_size_not_enlarged() {
    for size in [64u32, 256] {
        let dir = TempDir::new().unwrap();
        let arg = size.to_string();
        let out = resize(&dir, "square.svg", SQUARE_SVG.as_bytes(), &["-w", &arg]);
        let img = image::open(out.join("square.png")).unwrap().to_rgb8();
        assert_eq!(
            img.dimensions(),
            (size, size),
            "no --upscale needed for a drawing"
        );
        assert_eq!(greys(&img), 0, "{size}: hard edges, no blur");
        let (a, b) = (size / 4, size * 3 / 4);
        assert_eq!(img.get_pixel(a - 1, size / 2).0, [255, 255, 255], "{size}");
        assert_eq!(img.get_pixel(a, size / 2).0, [0, 0, 0], "{size}");
        assert_eq!(img.get_pixel(b - 1, size / 2).0, [0, 0, 0], "{size}");
        assert_eq!(img.get_pixel(b, size / 2).0, [255, 255, 255], "{size}");
    }
    // What enlarging the 16-pixel bitmap would have given: edges blurred over many pixels.
    let dir = TempDir::new().unwrap();
    let small = resize(&dir, "square.svg", SQUARE_SVG.as_bytes(), &["-w", "16"]);
    let bitmap = std::fs::read(small.join("square.png")).unwrap();
    let dir = TempDir::new().unwrap();
    let out = resize(&dir, "square.png", &bitmap, &["-w", "256", "--upscale"]);
    let enlarged = image::open(out.join("square.png")).unwrap().to_rgb8();
    assert!(greys(&enlarged) > 1000, "{}", greys(&enlarged));
}

#[test]
fn fit_modes_plan_from_the_drawing_and_render_at_the_box() {
    // cover: the 128x128 render cropped to its middle 128x64; the square spans x 32..96 and
    // every remaining row.
    let dir = TempDir::new().unwrap();
    let out = resize(
        &dir,
        "square.svg",
        SQUARE_SVG.as_bytes(),
        &["-s", "128x64", "--fit", "cover"],
    );
    let img = image::open(out.join("square.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (128, 64));
    assert_eq!(greys(&img), 0);
    assert_eq!(img.get_pixel(31, 0).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(32, 0).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(95, 63).0, [0, 0, 0]);
    // fill: stretched, the square becomes x 32..96, y 16..48.
    let dir = TempDir::new().unwrap();
    let out = resize(
        &dir,
        "square.svg",
        SQUARE_SVG.as_bytes(),
        &["-s", "128x64", "--fit", "fill"],
    );
    let img = image::open(out.join("square.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (128, 64));
    assert_eq!(greys(&img), 0);
    assert_eq!(img.get_pixel(64, 15).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(64, 16).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(64, 47).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(64, 48).0, [255, 255, 255]);
    // A percentage is of the drawing's own size.
    let dir = TempDir::new().unwrap();
    let out = resize(&dir, "square.svg", SQUARE_SVG.as_bytes(), &["-w", "400%"]);
    let img = image::open(out.join("square.png")).unwrap().to_rgb8();
    assert_eq!((img.dimensions(), greys(&img)), ((64, 64), 0));
}

#[test]
fn several_sizes_of_one_svg_are_each_sharp() {
    let dir = TempDir::new().unwrap();
    let out = resize(
        &dir,
        "square.svg",
        SQUARE_SVG.as_bytes(),
        &["-w", "32,128,512", "-f", "png,webp"],
    );
    for size in [32, 128, 512] {
        let img = image::open(out.join(format!("square-{size}w.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (size, size));
        // The largest is rendered at its size; the others are made from it, not from 16 px.
        assert!(greys(&img) <= 4 * size as usize, "{size}: {}", greys(&img));
        assert_eq!(img.get_pixel(size / 2, size / 2).0, [0, 0, 0]);
        assert!(out.join(format!("square-{size}w.webp")).exists());
    }
}

#[test]
fn svgs_are_known_by_content_and_html_is_not_one() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // No extension: known by its root element, past the XML declaration and a comment.
    std::fs::write(input.join("drawing"), SQUARE_SVG).unwrap();
    // Its root element 2 KB in, past what is sniffed: known by its name.
    let late = SQUARE_SVG.replacen("<svg", &format!("<!-- {} -->\n<svg", "x".repeat(2000)), 1);
    std::fs::write(input.join("late.svg"), late).unwrap();
    // A web page with an inline SVG is not a drawing.
    let page = format!("<!DOCTYPE html>\n<html><body>{SQUARE_SVG}</body></html>");
    std::fs::write(input.join("page.html"), page).unwrap();
    // Gzipped (SVGZ), with a stored (uncompressed) deflate block.
    std::fs::write(
        input.join("zipped.svgz"),
        gzip_stored(SQUARE_SVG.as_bytes()),
    )
    .unwrap();
    // The same under its other usual name; any other gzipped file is no image.
    std::fs::write(
        input.join("logo.svg.gz"),
        gzip_stored(SQUARE_SVG.as_bytes()),
    )
    .unwrap();
    std::fs::write(input.join("notes.txt.gz"), gzip_stored(b"not a drawing")).unwrap();
    // Broken: one clear error.
    std::fs::write(
        input.join("broken.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect",
    )
    .unwrap();
    let out = dir.path().join("out");
    presize()
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["-w", "32"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("broken.svg: cannot decode SVG"))
        .stderr(predicate::str::contains("page.html").not())
        .stderr(predicate::str::contains("notes.txt.gz").not());
    let mut written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(
        written,
        ["drawing.png", "late.png", "logo.png", "zipped.png"]
    );
    for name in written {
        let img = image::open(out.join(&name)).unwrap().to_rgb8();
        assert_eq!((img.dimensions(), greys(&img)), ((32, 32), 0), "{name}");
    }
}

/// `data` as a gzip file holding one stored deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).unwrap();
    let mut out = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF, 1];
    out.extend(len.to_le_bytes());
    out.extend((!len).to_le_bytes());
    out.extend(data);
    out.extend(crc32fast::hash(data).to_le_bytes());
    out.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    out
}

#[cfg(feature = "heif")]
#[test]
fn the_default_build_reads_a_real_avif_with_alpha() {
    // Issue #13 item 7: libheif is a default feature.
    assert!(Format::Avif.is_readable() && Format::Heic.is_readable());
    let file = std::fs::read(testdata("heif/transparency_300x300_alpha.avif")).unwrap();
    let dir = TempDir::new().unwrap();
    let out = resize(&dir, "t.avif", &file, &["-w", "100", "-f", "png"]);
    let got = image::open(out.join("t.png")).unwrap().to_rgba8();
    // Its source, resized the same way.
    let source = std::fs::read(testdata("photos/transparency_rgba8.png")).unwrap();
    let dir = TempDir::new().unwrap();
    let out = resize(&dir, "t.png", &source, &["-w", "100"]);
    let want = image::open(out.join("t.png")).unwrap().to_rgba8();
    assert_eq!(got.dimensions(), want.dimensions());
    let alpha_error: f64 = got
        .pixels()
        .zip(want.pixels())
        .map(|(a, b)| f64::from(a.0[3].abs_diff(b.0[3])))
        .sum::<f64>()
        / f64::from(100 * 100);
    assert!(got.pixels().any(|p| p.0[3] == 0), "transparent parts");
    assert!(alpha_error < 4.0, "mean alpha error {alpha_error}");
}

/// The band pattern as a PNG whose image data chunk has a wrong CRC (the data itself intact).
fn png_with_bad_crc() -> Vec<u8> {
    let mut png = encoded(&DynamicImage::ImageRgba8(pattern(64, 32)), ImageFormat::Png);
    let at = png.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
    let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
    png[at + 8 + len] ^= 0xFF;
    png
}

#[test]
fn a_png_checksum_error_fails_from_fail_on_error_up() {
    // libvips ignores PNG checksums below `error`: `truncated` is the level that tells apart.
    let file = png_with_bad_crc();
    for level in ["warning", "error"] {
        let dir = TempDir::new().unwrap();
        let (_, assert) = run_one(&dir, "crc.png", &file, &["-w", "32", "--fail-on", level]);
        assert
            .code(1)
            .stderr(predicate::str::contains("crc.png: cannot decode PNG"))
            .stderr(predicate::str::contains("CRC error"))
            .stderr(predicate::str::contains(
                "--fail-on truncated reads past it",
            ));
    }
    for level in ["truncated", "none"] {
        let dir = TempDir::new().unwrap();
        let (out, assert) = run_one(&dir, "crc.png", &file, &["-w", "32", "--fail-on", level]);
        assert
            .code(0)
            .stderr(predicate::str::contains("crc.png: warning: damaged PNG"));
        let img = image::open(out.join("crc.png")).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (32, 16));
        assert_bands(&img, 1, |c| c, level);
    }
}

#[test]
fn the_json_line_of_a_rescued_file_carries_its_warning() {
    let dir = TempDir::new().unwrap();
    let file = cut(ImageFormat::Png);
    let (_, assert) = run_one(
        &dir,
        "cut.png",
        &file,
        &["-w", "16", "--fail-on", "none", "--json"],
    );
    let stdout = String::from_utf8(assert.code(0).get_output().stdout.clone()).unwrap();
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "written");
    assert!(
        line["warning"]
            .as_str()
            .unwrap()
            .starts_with("truncated PNG"),
        "{line}"
    );
}

#[test]
fn the_pixel_limit_applies_to_an_svgs_render_not_its_nominal_size() {
    let huge = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000">
        <rect width="100000" height="100000"/></svg>"#;
    let dir = TempDir::new().unwrap();
    let out = resize(&dir, "huge.svg", huge.as_bytes(), &["-w", "64"]);
    let img = image::open(out.join("huge.png")).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    let dir = TempDir::new().unwrap();
    let (_, assert) = run_one(
        &dir,
        "huge.svg",
        huge.as_bytes(),
        &["-w", "50%", "--max-pixels", "1000000"],
    );
    assert
        .code(1)
        .stderr(predicate::str::contains("huge.svg: image is 50000x50000"));
}

/// A 1600x1200 picture with texture everywhere, encoded by jpeg-encoder at quality 90 (4:2:2),
/// progressive or baseline: the same quantised coefficients either way.
fn textured_jpeg(progressive: bool) -> Vec<u8> {
    let (w, h) = (1600u16, 1200u16);
    let pixels: Vec<u8> = (0..u32::from(h))
        .flat_map(|y| {
            (0..u32::from(w)).flat_map(move |x| {
                [
                    ((x / 7 + y / 5 + (x * y) % 19) % 256) as u8,
                    ((x / 3 + ((x ^ y) & 31)) % 256) as u8,
                    ((y / 4 + (x * 7 + y * 3) % 23) % 256) as u8,
                ]
            })
        })
        .collect();
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_2);
    enc.set_progressive(progressive);
    enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

#[test]
fn a_progressive_jpeg_thumbnail_equals_its_baseline_twins_and_a_cut_short_one_is_named() {
    // Issue #17 target 5: at 1/8 (-w 100 of 1600 px) a progressive JPEG is decoded from its DC
    // scans only; the pixels must be those of the baseline file with the same coefficients,
    // which is decoded whole.
    let progressive = textured_jpeg(true);
    let baseline = textured_jpeg(false);
    let thumb = |name: &str, file: &[u8]| {
        let dir = TempDir::new().unwrap();
        let (out, assert) = run_one(&dir, name, file, &["-w", "100", "-f", "png"]);
        assert.code(0);
        image::open(out.join(name).with_extension("png"))
            .unwrap()
            .to_rgb8()
    };
    let a = thumb("p.jpg", &progressive);
    let b = thumb("b.jpg", &baseline);
    assert_eq!(a.dimensions(), (100, 75));
    assert!(
        a == b,
        "the progressive thumbnail differs from the baseline one"
    );
    // Cut short after its DC scans (a half-downloaded file): named, and by default no output.
    let sos: Vec<usize> = progressive
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0xFF, 0xDA])
        .map(|(i, _)| i)
        .collect();
    let first_ac = sos[3]; // jpeg-encoder writes one DC scan per component
    let dir = TempDir::new().unwrap();
    let (out, assert) = run_one(
        &dir,
        "half.jpg",
        &progressive[..first_ac + 100],
        &["-w", "100"],
    );
    assert
        .code(1)
        .stderr(predicate::str::contains("half.jpg: cannot decode JPEG"));
    assert!(!out.join("half.jpg").exists());
}
