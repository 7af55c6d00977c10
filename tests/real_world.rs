//! Real-world files that came out wrong when presize was compared with `vipsthumbnail` on
//! public test-suite images (issue #13). Each test pins one item of the issue, on a small file
//! committed under `testdata/realworld/` or on one built here byte by byte, and checks what a
//! user would see: the decoded output's size and pixels, and its metadata read back with
//! kamadak-exif. No external program is run.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use image::{DynamicImage, GenericImageView, RgbImage};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A committed file under `testdata/realworld/`.
fn realworld(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/realworld")
        .join(name)
}

/// Runs presize on `input` with `args` into a fresh folder and returns that folder; the run
/// must exit with `code`.
fn run(input: &Path, args: &[&str], code: i32) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().unwrap();
    let assert = Command::cargo_bin("presize")
        .expect("the presize binary is built")
        .args(["--progress", "never"])
        .arg(input)
        .arg("-o")
        .arg(out.path())
        .args(args)
        .assert()
        .code(code);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    (out, stderr)
}

/// One output presize made: the decoded image and its path (valid while `_dir` lives).
struct Made {
    img: DynamicImage,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Writes `bytes` as `name` in a fresh folder, runs presize on that file with `args` and
/// returns the output of the same stem with extension `ext`.
fn resize_bytes(name: &str, bytes: &[u8], args: &[&str], ext: &str) -> Made {
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join(name);
    fs::write(&path, bytes).unwrap();
    resize_file(&path, args, ext)
}

/// Runs presize on the file `src` with `args` and returns its output with extension `ext`.
fn resize_file(src: &Path, args: &[&str], ext: &str) -> Made {
    let (dir, stderr) = run(src, args, 0);
    let stem = src.file_stem().unwrap().to_str().unwrap();
    let path = dir.path().join(format!("{stem}.{ext}"));
    let img = decode(&path).unwrap_or_else(|| panic!("{}: no output; {stderr}", path.display()));
    Made {
        img,
        path,
        _dir: dir,
    }
}

fn decode(path: &Path) -> Option<DynamicImage> {
    let reader = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?;
    reader.decode().ok()
}

/// The EXIF fields of a file (JPEG, PNG, WebP, TIFF), as kamadak-exif reads them.
fn exif_of(path: &Path) -> Option<exif::Exif> {
    let file = fs::File::open(path).ok()?;
    exif::Reader::new()
        .read_from_container(&mut std::io::BufReader::new(file))
        .ok()
}

fn exif_uint(exif: &exif::Exif, tag: exif::Tag) -> Option<u32> {
    exif.get_field(tag, exif::In::PRIMARY)?.value.get_uint(0)
}

/// Mean absolute difference per sample of two same-sized images, as RGB.
fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// A smooth gradient, different in every channel, so a turned or mirrored copy is obvious.
fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let fx = x * 255 / (w - 1);
        let fy = y * 255 / (h - 1);
        image::Rgb([fx as u8, fy as u8, (255 - (fx + fy) / 2) as u8])
    })
}

fn encoded(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A TIFF value as it is stored: its type and raw bytes in the file's byte order.
struct TiffValue {
    kind: u16,
    count: u32,
    bytes: Vec<u8>,
}

/// A TIFF structure builder for one IFD, in either byte order: enough to write EXIF blocks and
/// small uncompressed TIFF files with exactly the tags a test needs.
struct TiffBuilder {
    big_endian: bool,
    entries: Vec<(u16, TiffValue)>,
}

impl TiffBuilder {
    fn new(big_endian: bool) -> Self {
        TiffBuilder {
            big_endian,
            entries: Vec::new(),
        }
    }

    fn u16s(&self, v: &[u16]) -> Vec<u8> {
        v.iter()
            .flat_map(|&x| {
                if self.big_endian {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            })
            .collect()
    }

    fn u32s(&self, v: &[u32]) -> Vec<u8> {
        v.iter()
            .flat_map(|&x| {
                if self.big_endian {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            })
            .collect()
    }

    fn raw(mut self, tag: u16, kind: u16, count: u32, bytes: Vec<u8>) -> Self {
        self.entries.push((tag, TiffValue { kind, count, bytes }));
        self
    }

    fn short(self, tag: u16, v: &[u16]) -> Self {
        let bytes = self.u16s(v);
        self.raw(tag, 3, v.len() as u32, bytes)
    }

    fn long(self, tag: u16, v: &[u32]) -> Self {
        let bytes = self.u32s(v);
        self.raw(tag, 4, v.len() as u32, bytes)
    }

    fn slong(self, tag: u16, v: i32) -> Self {
        let bytes = self.u32s(&[v as u32]);
        self.raw(tag, 9, 1, bytes)
    }

    fn ascii(self, tag: u16, text: &str) -> Self {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        let count = bytes.len() as u32;
        self.raw(tag, 2, count, bytes)
    }

    fn rational(self, tag: u16, num: u32, den: u32) -> Self {
        let bytes = self.u32s(&[num, den]);
        self.raw(tag, 5, 1, bytes)
    }

    fn undefined(self, tag: u16, bytes: &[u8]) -> Self {
        self.raw(tag, 7, bytes.len() as u32, bytes.to_vec())
    }

    /// The TIFF bytes: header, IFD0 (tags sorted), values, then `data` (whose offset in the
    /// file is patched into StripOffsets, tag 273, when that tag is present).
    fn build(mut self, data: &[u8]) -> Vec<u8> {
        self.entries.sort_by_key(|e| e.0);
        let n = self.entries.len();
        let ifd_end = 8 + 2 + 12 * n + 4;
        let values: usize = self
            .entries
            .iter()
            .filter(|e| e.1.bytes.len() > 4)
            .map(|e| e.1.bytes.len() + e.1.bytes.len() % 2)
            .sum();
        let data_at = (ifd_end + values) as u32;
        let mut out = if self.big_endian {
            b"MM\0*\0\0\0\x08".to_vec()
        } else {
            b"II*\0\x08\0\0\0".to_vec()
        };
        out.extend(self.u16s(&[n as u16]));
        let mut tail = Vec::new();
        for (tag, v) in &self.entries {
            out.extend(self.u16s(&[*tag, v.kind]));
            out.extend(self.u32s(&[v.count]));
            let bytes = if *tag == 273 {
                self.u32s(&[data_at])
            } else {
                v.bytes.clone()
            };
            if bytes.len() <= 4 {
                let mut inline = bytes.clone();
                inline.resize(4, 0);
                out.extend(inline);
            } else {
                out.extend(self.u32s(&[(ifd_end + tail.len()) as u32]));
                tail.extend(&bytes);
                if bytes.len() % 2 == 1 {
                    tail.push(0);
                }
            }
        }
        out.extend([0; 4]);
        out.extend(tail);
        out.extend(data);
        out
    }

    /// An uncompressed, single-strip TIFF of `width`×`height` with `samples` 8-bit samples a
    /// pixel and the given photometric interpretation, plus the tags already added.
    fn image(
        self,
        width: u32,
        height: u32,
        samples: u16,
        photometric: u16,
        data: &[u8],
    ) -> Vec<u8> {
        assert_eq!(data.len(), (width * height) as usize * usize::from(samples));
        self.long(256, &[width])
            .long(257, &[height])
            .short(258, &vec![8; usize::from(samples)])
            .short(259, &[1])
            .short(262, &[photometric])
            .long(273, &[0])
            .short(277, &[samples])
            .long(278, &[height])
            .long(279, &[data.len() as u32])
            .short(284, &[1])
            .build(data)
    }
}

/// An EXIF block made by a camera that writes Orientation as `kind` (LONG 4 or SLONG 9).
fn camera_exif(big_endian: bool, kind: u16, orientation: i32) -> Vec<u8> {
    let b = TiffBuilder::new(big_endian).ascii(0x010F, "Panasonic");
    match kind {
        4 => b.long(0x0112, &[orientation as u32]),
        9 => b.slong(0x0112, orientation),
        3 => b.short(0x0112, &[orientation as u16]),
        _ => unreachable!("types used by the tests"),
    }
    .build(&[])
}

/// `jpeg` with an APP1 EXIF segment inserted right after SOI.
fn jpeg_with_exif(jpeg: &[u8], exif: &[u8]) -> Vec<u8> {
    let len = (exif.len() + 8) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(exif);
    out.extend(&jpeg[2..]);
    out
}

/// A PNG chunk with its CRC.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(kind);
    out.extend(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.finalize().to_be_bytes());
    out
}

/// `png` with `chunk` inserted right after IHDR.
fn png_with_chunk(png: &[u8], chunk: &[u8]) -> Vec<u8> {
    let at = 8 + 12 + 13;
    [&png[..at], chunk, &png[at..]].concat()
}

/// A lossless WebP of `img` in the extended format, carrying `exif`.
fn webp_with_exif(img: &RgbImage, exif: &[u8]) -> Vec<u8> {
    let simple = webp::Encoder::from_rgb(img.as_raw(), img.width(), img.height())
        .encode_lossless()
        .to_vec();
    let image_chunk = &simple[12..]; // the VP8L chunk, header included
    let mut vp8x = vec![0x08, 0, 0, 0]; // EXIF flag
    vp8x.extend(&(img.width() - 1).to_le_bytes()[..3]);
    vp8x.extend(&(img.height() - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    for (fourcc, data) in [(b"VP8X", vp8x.as_slice()), (b"EXIF", exif)] {
        body.extend(fourcc);
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
        if fourcc == b"VP8X" {
            body.extend(image_chunk);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

// ---------------------------------------------------------------------------------------------
// Item 1: an EXIF Orientation of any integer type is applied, wherever it is stored

/// Asserts that `output` shows `stored` turned a quarter clockwise (Orientation 6) and that its
/// EXIF, if any, no longer asks viewers to turn it.
fn assert_turned_upright(what: &str, stored: &RgbImage, made: &Made, tolerance: f64) {
    let (output, path) = (&made.img, made.path.as_path());
    let stored = DynamicImage::ImageRgb8(stored.clone());
    let upright = stored.rotate90();
    assert_eq!(
        output.dimensions(),
        upright.dimensions(),
        "{what}: not turned"
    );
    let right = mean_abs_diff(output, &upright);
    let wrong = mean_abs_diff(output, &stored.rotate270());
    assert!(
        right < tolerance && wrong > 10.0 * right.max(1.0),
        "{what}: {right:.2} from the upright image, {wrong:.2} from the one turned the other way"
    );
    if let Some(exif) = exif_of(path) {
        let tag = exif_uint(&exif, exif::Tag::Orientation);
        assert!(
            tag.is_none() || tag == Some(1),
            "{what}: output says Orientation {tag:?}"
        );
    }
}

#[test]
fn issue_13_long_and_slong_orientation_is_applied_in_jpeg_png_webp_and_tiff() {
    let stored = gradient(48, 32);
    let dynamic = DynamicImage::ImageRgb8(stored.clone());
    for big_endian in [true, false] {
        for kind in [4, 9] {
            let what = |container: &str| format!("{container}, type {kind}, MM {big_endian}");
            let exif = camera_exif(big_endian, kind, 6);

            let jpeg = jpeg_with_exif(&encoded(&dynamic, image::ImageFormat::Jpeg), &exif);
            let made = resize_bytes("p.jpg", &jpeg, &["-w", "100%"], "jpg");
            assert_turned_upright(&what("JPEG APP1"), &stored, &made, 6.0);
            let exif_out = exif_of(&made.path).expect("the camera's EXIF is kept");
            assert_eq!(exif_uint(&exif_out, exif::Tag::Orientation), Some(1));

            let png = png_with_chunk(
                &encoded(&dynamic, image::ImageFormat::Png),
                &png_chunk(b"eXIf", &exif),
            );
            let made = resize_bytes("p.png", &png, &["-w", "100%"], "png");
            assert_turned_upright(&what("PNG eXIf"), &stored, &made, 0.01);

            let webp = webp_with_exif(&stored, &exif);
            let made = resize_bytes("p.webp", &webp, &["-w", "100%", "--lossless"], "webp");
            assert_turned_upright(&what("WebP EXIF"), &stored, &made, 0.01);

            let tiff = TiffBuilder::new(big_endian);
            let tiff = match kind {
                4 => tiff.long(0x0112, &[6]),
                _ => tiff.slong(0x0112, 6),
            }
            .image(48, 32, 3, 2, stored.as_raw());
            let made = resize_bytes("p.tiff", &tiff, &["-w", "100%"], "tiff");
            assert_turned_upright(&what("TIFF IFD0"), &stored, &made, 0.01);
        }
    }
}

#[test]
fn issue_13_an_orientation_nobody_can_read_leaves_the_pixels_and_the_tag_meaning_alike() {
    // Orientation 0 (invalid, shown as 1 by every viewer): the pixels stay as stored, and the
    // output says 1, which viewers show the same way.
    let stored = gradient(48, 32);
    let jpeg = jpeg_with_exif(
        &encoded(
            &DynamicImage::ImageRgb8(stored.clone()),
            image::ImageFormat::Jpeg,
        ),
        &camera_exif(false, 4, 0),
    );
    let made = resize_bytes("zero.jpg", &jpeg, &["-w", "100%"], "jpg");
    assert_eq!(made.img.dimensions(), (48, 32));
    assert!(mean_abs_diff(&made.img, &DynamicImage::ImageRgb8(stored)) < 6.0);
    let exif = exif_of(&made.path).expect("the camera's EXIF is kept");
    assert_eq!(exif_uint(&exif, exif::Tag::Orientation), Some(1));
}

// ---------------------------------------------------------------------------------------------
// Item 12: the summary names the files of every kind of failure

#[test]
fn issue_13_the_summary_names_images_over_the_pixel_limit_after_many_broken_ones() {
    let src = tempfile::tempdir().unwrap();
    for i in 0..24 {
        fs::write(
            src.path().join(format!("broken{i:02}.jpg")),
            b"\xFF\xD8\xFF\xE0garbage",
        )
        .unwrap();
    }
    let big = encoded(
        &DynamicImage::ImageRgb8(gradient(40, 40)),
        image::ImageFormat::Png,
    );
    fs::write(src.path().join("zz_big1.png"), &big).unwrap();
    fs::write(src.path().join("zz_big2.png"), &big).unwrap();
    let (_out, stderr) = run(
        src.path(),
        &["-w", "10", "--max-pixels", "1000", "-j", "1"],
        1,
    );
    let at = stderr
        .find("images over the pixel limit (2):")
        .unwrap_or_else(|| panic!("{stderr}"));
    let listed: Vec<&str> = stderr[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    let listed = listed.join("\n");
    for name in ["zz_big1.png", "zz_big2.png"] {
        assert!(listed.contains(name), "{name} not named in:\n{listed}");
    }
    assert!(!listed.contains("more"), "{listed}");
}

// ---------------------------------------------------------------------------------------------
// Item 13: an opaque GIF gives an opaque output, without an alpha channel

/// The PNG colour type of `png` (IHDR byte 9): 2 is RGB, 6 is RGBA.
fn png_color_type(png: &[u8]) -> u8 {
    assert_eq!(&png[12..16], b"IHDR");
    png[25]
}

#[test]
fn issue_13_an_opaque_gif_becomes_an_rgb_png_and_a_transparent_one_keeps_alpha() {
    // 10x10, three colours, a transparent index declared but used by no pixel: libvips reads
    // three bands.
    let gif = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/formats/simple_sample_1.gif");
    let made = resize_file(&gif, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(
        png_color_type(&fs::read(&made.path).unwrap()),
        2,
        "RGB, no alpha"
    );
    let source = image::open(&gif).unwrap().to_rgb8();
    assert_eq!(made.img.to_rgb8(), source, "same pixels");

    // A GIF with one transparent pixel keeps it.
    let mut frame = image::RgbaImage::from_pixel(8, 8, image::Rgba([200, 30, 30, 255]));
    frame.put_pixel(3, 3, image::Rgba([0, 0, 0, 0]));
    let gif = encoded(&DynamicImage::ImageRgba8(frame), image::ImageFormat::Gif);
    let made = resize_bytes("hole.gif", &gif, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(png_color_type(&fs::read(&made.path).unwrap()), 6, "RGBA");
    let out = made.img.to_rgba8();
    assert_eq!(out.get_pixel(3, 3)[3], 0);
    assert_eq!(out.get_pixel(0, 0)[3], 255);
}

// ---------------------------------------------------------------------------------------------
// Item 14: --fit cover of a source smaller than the box

#[test]
fn issue_13_cover_of_a_small_source_crops_to_the_box_without_enlarging() {
    let src = gradient(320, 240);
    let png = encoded(
        &DynamicImage::ImageRgb8(src.clone()),
        image::ImageFormat::Png,
    );
    let made = resize_bytes(
        "small.png",
        &png,
        &["-s", "300x300", "--fit", "cover"],
        "png",
    );
    assert_eq!(
        made.img.dimensions(),
        (300, 240),
        "as vipsthumbnail -s '300x300>' --smartcrop centre"
    );
    // One source pixel per output pixel: the centre 300 columns, untouched.
    let centre = DynamicImage::ImageRgb8(src).crop_imm(10, 0, 300, 240);
    let diff = mean_abs_diff(&made.img, &centre);
    assert!(diff < 0.5, "mean difference {diff:.2} from the centre crop");

    // --upscale still fills the box.
    let made = resize_bytes(
        "small.png",
        &png,
        &["-s", "300x300", "--fit", "cover", "--upscale"],
        "png",
    );
    assert_eq!(made.img.dimensions(), (300, 300));
}

// ---------------------------------------------------------------------------------------------
// Item 11: TIFF outputs with alpha say what the alpha is

/// The integer values of IFD0 tag `tag` of a TIFF file, as kamadak-exif reads them.
fn tiff_tag(path: &Path, tag: u16) -> Option<Vec<u32>> {
    let exif = exif_of(path)?;
    let field = exif.get_field(exif::Tag(exif::Context::Tiff, tag), exif::In::PRIMARY)?;
    let values = field.value.iter_uint()?.collect();
    Some(values)
}

#[test]
fn issue_13_tiff_outputs_with_alpha_declare_unassociated_alpha() {
    let mut rgba = image::RgbaImage::from_fn(40, 30, |x, y| {
        image::Rgba([(x * 6) as u8, (y * 8) as u8, 90, (x * 255 / 39) as u8])
    });
    rgba.put_pixel(0, 0, image::Rgba([10, 20, 30, 0]));
    let png = encoded(
        &DynamicImage::ImageRgba8(rgba.clone()),
        image::ImageFormat::Png,
    );
    let made = resize_bytes("alpha.png", &png, &["-w", "100%", "-f", "tiff"], "tif");
    assert_eq!(
        tiff_tag(&made.path, 338),
        Some(vec![2]),
        "ExtraSamples = unassociated alpha"
    );
    assert_eq!(tiff_tag(&made.path, 277), Some(vec![4]));
    let out = made.img.to_rgba8();
    assert_eq!(out.dimensions(), (40, 30));
    // Straight alpha, as declared: the colour of a half-transparent pixel is unchanged.
    assert_eq!(out.get_pixel(20, 10), rgba.get_pixel(20, 10));

    // Grey with alpha is written as RGBA, with the same declaration; opaque RGB gets none.
    let la = DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_pixel(
        8,
        8,
        image::LumaA([70, 128]),
    ));
    let made = resize_bytes(
        "la.png",
        &encoded(&la, image::ImageFormat::Png),
        &["-w", "100%", "-f", "tiff"],
        "tif",
    );
    assert_eq!(tiff_tag(&made.path, 338), Some(vec![2]));
    let rgb = DynamicImage::ImageRgb8(gradient(8, 8));
    let made = resize_bytes(
        "rgb.png",
        &encoded(&rgb, image::ImageFormat::Png),
        &["-w", "100%", "-f", "tiff"],
        "tif",
    );
    assert_eq!(tiff_tag(&made.path, 338), None);
}

// ---------------------------------------------------------------------------------------------
// Item 4: BMP alpha and embedded profiles

/// A 40-byte-header (Windows V3) BMP, 32 bits a pixel, `BI_RGB`, bottom-up, of BGRA pixels
/// given top row first.
fn bmp_v3_32bit(width: u32, height: u32, bgra_top_down: &[[u8; 4]]) -> Vec<u8> {
    let mut pixels: Vec<u8> = Vec::new();
    for row in bgra_top_down.chunks(width as usize).rev() {
        pixels.extend(row.iter().flatten());
    }
    let mut out = b"BM".to_vec();
    out.extend((54 + pixels.len() as u32).to_le_bytes());
    out.extend([0; 4]);
    out.extend(54u32.to_le_bytes());
    out.extend(40u32.to_le_bytes());
    out.extend((width as i32).to_le_bytes());
    out.extend((height as i32).to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(32u16.to_le_bytes());
    out.extend([0; 24]); // BI_RGB, size, resolution, colours
    out.extend(pixels);
    out
}

#[test]
fn issue_13_a_32_bit_bmp_keeps_its_alpha_as_libvips_reads_it() {
    // libvips' test-suite small.bmp: 16x12, V3 header, top-down, a real alpha mask.
    let src = realworld("small.bmp");
    let bytes = fs::read(&src).unwrap();
    let made = resize_file(&src, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(png_color_type(&fs::read(&made.path).unwrap()), 6, "RGBA");
    let out = made.img.to_rgba8();
    assert_eq!(out.dimensions(), (16, 12));
    // Top-down: the file's first row is the top one; pixels are B, G, R, A.
    for (i, px) in bytes[54..].chunks_exact(4).enumerate() {
        let (x, y) = (i as u32 % 16, i as u32 / 16);
        assert_eq!(
            out.get_pixel(x, y).0,
            [px[2], px[1], px[0], px[3]],
            "pixel ({x}, {y})"
        );
    }

    // A fourth byte that is 0 everywhere is padding: the image is opaque (Chrome, libvips).
    let unused = bmp_v3_32bit(2, 2, &[[10, 20, 30, 0]; 4]);
    let made = resize_bytes("pad.bmp", &unused, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(png_color_type(&fs::read(&made.path).unwrap()), 2, "RGB");
    assert_eq!(made.img.to_rgb8().get_pixel(1, 1).0, [30, 20, 10]);

    // Bottom-up rows: the alpha goes with its own pixel.
    let rows = [
        [1, 2, 3, 255],
        [4, 5, 6, 255],
        [7, 8, 9, 0],
        [10, 11, 12, 128],
    ];
    let made = resize_bytes(
        "up.bmp",
        &bmp_v3_32bit(2, 2, &rows),
        &["-w", "100%", "-f", "png"],
        "png",
    );
    let out = made.img.to_rgba8();
    assert_eq!(out.get_pixel(0, 0).0, [3, 2, 1, 255]);
    assert_eq!(out.get_pixel(0, 1).0[3], 0);
    assert_eq!(out.get_pixel(1, 1).0, [12, 11, 10, 128]);
}

#[test]
fn issue_13_a_bmp_profile_is_kept_or_converted_like_any_other() {
    // image-rs' rgb24prof2.bmp: V5 header, red and green stored swapped, and a 540-byte
    // embedded profile that swaps them back. Colour-managed, it shows like rgb24.bmp.
    let src = realworld("rgb24prof2.bmp");
    let bytes = fs::read(&src).unwrap();
    let at = 14 + u32::from_le_bytes(bytes[14 + 112..14 + 116].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(bytes[14 + 116..14 + 120].try_into().unwrap()) as usize;
    let profile = &bytes[at..at + len];
    assert_eq!(len, 540);
    let plain =
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/formats/rgb24.bmp"))
            .unwrap();

    // --icc keep: the profile travels with the unchanged pixels.
    let made = resize_file(&src, &["-w", "100%", "-f", "png"], "png");
    let mut decoder = image::codecs::png::PngDecoder::new(std::io::BufReader::new(
        fs::File::open(&made.path).unwrap(),
    ))
    .unwrap();
    use image::ImageDecoder;
    assert_eq!(decoder.icc_profile().unwrap().as_deref(), Some(profile));
    assert_eq!(made.img.to_rgb8(), image::open(&src).unwrap().to_rgb8());

    // --icc srgb: converted as libvips converts it (`vips icc_transform … srgb`, lcms2; measured
    // mean 0.06, at most 1 per sample), and so close to the picture stored without the trick
    // (libvips itself: mean 1.47; the profile is not exactly sRGB with two primaries swapped).
    let made = resize_file(&src, &["-w", "100%", "-f", "png", "--icc", "srgb"], "png");
    let vips = image::open(realworld("rgb24prof2_vips_srgb.png")).unwrap();
    let (ours, theirs) = (made.img.to_rgb8(), vips.to_rgb8());
    let worst = ours
        .as_raw()
        .iter()
        .zip(theirs.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    assert!(worst <= Some(2), "up to {worst:?} from libvips' conversion");
    let diff = mean_abs_diff(&made.img, &vips);
    assert!(
        diff < 0.3,
        "mean difference {diff:.2} from libvips' conversion"
    );
    let diff = mean_abs_diff(&made.img, &plain);
    assert!(diff < 2.0, "mean difference {diff:.2} from rgb24.bmp");
    let swapped = mean_abs_diff(&image::open(&src).unwrap(), &plain);
    assert!(swapped > 20.0, "the stored pixels differ: {swapped:.1}");
}

// ---------------------------------------------------------------------------------------------
// Item 3: TIFF with associated (premultiplied) alpha

#[test]
fn issue_13_premultiplied_tiff_alpha_is_divided_out_exactly() {
    // Straight colours whose premultiplied forms are exact: alpha 51 is 1/5, 85 is 1/3.
    let straight: [[u8; 4]; 4] = [
        [200, 100, 255, 51],
        [90, 30, 255, 85],
        [12, 34, 56, 255],
        [0, 0, 0, 0],
    ];
    let stored: Vec<u8> = straight
        .iter()
        .flat_map(|p| {
            let a = u32::from(p[3]);
            [0, 1, 2]
                .map(|i| (u32::from(p[i]) * a / 255) as u8)
                .into_iter()
                .chain([p[3]])
        })
        .collect();
    for big_endian in [false, true] {
        let tiff = TiffBuilder::new(big_endian)
            .short(338, &[1]) // ExtraSamples: associated alpha
            .image(2, 2, 4, 2, &stored);
        let made = resize_bytes("assoc.tiff", &tiff, &["-w", "100%", "-f", "png"], "png");
        let out = made.img.to_rgba8();
        for (i, want) in straight.iter().enumerate() {
            let got = out.get_pixel(i as u32 % 2, i as u32 / 2).0;
            assert_eq!(&got, want, "pixel {i}, MM {big_endian}");
        }
    }
    // The same bytes declared straight (ExtraSamples 2) are taken as they are.
    let tiff = TiffBuilder::new(false)
        .short(338, &[2])
        .image(2, 2, 4, 2, &stored);
    let made = resize_bytes("straight.tiff", &tiff, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(made.img.to_rgba8().into_raw(), stored);
}

#[test]
fn issue_13_image_rs_premultiplied_tiffs_match_the_pngsuite_image_they_came_from() {
    // hpredict.tiff and hpredict_packbits.tiff are PngSuite's bgan6a16 (the picture of the
    // committed basi6a16.png) stored with associated alpha. Compared where alpha says what
    // is seen: premultiplied colour within 3, and straight colour within 4 where alpha is at
    // least 128 (8-bit premultiplication loses colour; ImageMagick 6.9's decodes of the two
    // files are off by 2/2 and 3/4, presize's by 2/2 and 3/3). Read as straight alpha, as
    // before the fix, hpredict.tiff was off by 65 and 123.
    let reference =
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/formats/basi6a16.png"))
            .unwrap()
            .to_rgba8();
    let packbits =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/formats/hpredict_packbits.tiff");
    for src in [realworld("hpredict.tiff"), packbits] {
        let made = resize_file(&src, &["-w", "100%", "-f", "png"], "png");
        let out = made.img.to_rgba8();
        assert_eq!(out.dimensions(), (32, 32));
        let (mut worst_premultiplied, mut worst_opaque) = (0u32, 0u32);
        for (o, r) in out.pixels().zip(reference.pixels()) {
            assert!(o[3].abs_diff(r[3]) <= 1, "{}: alpha", src.display());
            for i in 0..3 {
                let pre = |p: &image::Rgba<u8>| u32::from(p[i]) * u32::from(p[3]) / 255;
                worst_premultiplied = worst_premultiplied.max(pre(o).abs_diff(pre(r)));
                if r[3] >= 128 {
                    worst_opaque = worst_opaque.max(u32::from(o[i].abs_diff(r[i])));
                }
            }
        }
        assert!(
            worst_premultiplied <= 3 && worst_opaque <= 4,
            "{}: premultiplied off by {worst_premultiplied}, straight by {worst_opaque}",
            src.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 2: CMYK TIFF through its embedded profile

/// The ICC profile of a JPEG, from its APP2 `ICC_PROFILE` segments in order.
fn jpeg_icc(jpeg: &[u8]) -> Vec<u8> {
    let mut chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut at = 2;
    while jpeg[at] == 0xFF && jpeg[at + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let body = &jpeg[at + 4..at + 2 + len];
        if jpeg[at + 1] == 0xE2 && body.starts_with(b"ICC_PROFILE\0") {
            chunks.push((body[12], &body[14..]));
        }
        at += 2 + len;
    }
    chunks.sort_by_key(|c| c.0);
    chunks.iter().flat_map(|c| c.1.iter().copied()).collect()
}

#[test]
fn issue_13_a_cmyk_tiff_is_converted_through_its_profile() {
    // The SWOP profile of the committed CMYK JPEG, embedded in a CMYK TIFF built here.
    let swop = jpeg_icc(
        &fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/photos/cmyk_ycck_500x333_swop_icc.jpg"),
        )
        .unwrap(),
    );
    assert_eq!(&swop[16..20], b"CMYK");
    // Ink amounts (255 = full ink) and what lcms2 makes of them with the same profile,
    // relative colorimetric: `convert -size 6x1 -depth 8 cmyk:inks -profile swop.icc x.tif`,
    // then `convert x.tif -intent Relative -profile <ghostscript default_rgb.icc> txt:`
    // (ImageMagick 6.9.11-60); `vips icc_transform` agrees within 1.
    let cases: [([u8; 4], [u8; 3]); 6] = [
        ([0, 255, 255, 0], [237, 51, 55]), // press red; the plain formula gives (255, 0, 0)
        ([0, 0, 0, 0], [254, 255, 254]),
        ([255, 0, 0, 0], [0, 175, 239]),
        ([0, 0, 0, 255], [55, 52, 53]),
        ([128, 64, 0, 30], [118, 154, 196]),
        ([20, 200, 40, 100], [153, 71, 104]),
    ];
    let inks: Vec<u8> = cases.iter().flat_map(|c| c.0).collect();
    let tiff = TiffBuilder::new(false)
        .short(332, &[1]) // InkSet: CMYK
        .undefined(34675, &swop)
        .image(6, 1, 4, 5, &inks);
    for icc in ["keep", "srgb"] {
        let made = resize_bytes(
            "press.tiff",
            &tiff,
            &["-w", "100%", "-f", "png", "--icc", icc],
            "png",
        );
        let out = made.img.to_rgb8();
        for (x, (ink, want)) in cases.iter().enumerate() {
            let got = out.get_pixel(x as u32, 0).0;
            let off = (0..3).map(|i| got[i].abs_diff(want[i])).max().unwrap();
            assert!(
                off <= 2,
                "--icc {icc}: {ink:?} gave {got:?}, lcms2 {want:?}"
            );
        }
        // The pixels are sRGB now: no CMYK profile (nor any other) rides along.
        let png = fs::read(&made.path).unwrap();
        assert!(!png.windows(4).any(|w| w == b"iCCP"), "--icc {icc}");
    }

    // Without a profile the formula is all there is (as for CMYK JPEGs).
    let bare = TiffBuilder::new(false).image(6, 1, 4, 5, &inks);
    let made = resize_bytes("bare.tiff", &bare, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(made.img.to_rgb8().get_pixel(0, 0).0, [255, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// Item 5: --icc srgb converts an XYB JPEG, and fails a file it cannot convert

/// Mean of each channel of an RGB image.
fn channel_means(img: &DynamicImage) -> [f64; 3] {
    let rgb = img.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let mut sum = [0u64; 3];
    for p in rgb.pixels() {
        for i in 0..3 {
            sum[i] += u64::from(p[i]);
        }
    }
    sum.map(|s| s as f64 / n)
}

#[test]
fn issue_13_an_xyb_jpeg_is_converted_to_srgb() {
    // libvips' sample-xyb.jpg: jpegli's XYB encoding, whose 720-byte profile has only a
    // perceptual table (A2B0). What lcms2 makes of it, `convert sample-xyb.jpg -profile
    // <ghostscript default_rgb.icc> x.png` (ImageMagick 6.9.11-60): channel means and a few
    // pixels. The stored pixels are far off (means 96.9, 126.5, 103.0).
    let lcms_means = [126.725, 117.483, 108.265];
    let lcms_pixels = [
        ((100, 100), [72, 75, 116]),
        ((10, 10), [147, 127, 87]),
        ((200, 300), [127, 121, 105]),
        ((145, 221), [69, 74, 113]),
        ((280, 430), [138, 128, 97]),
    ];
    let made = resize_file(
        &realworld("sample-xyb.jpg"),
        &["-w", "100%", "-f", "png", "--icc", "srgb"],
        "png",
    );
    assert_eq!(made.img.dimensions(), (290, 442));
    let means = channel_means(&made.img);
    for i in 0..3 {
        assert!(
            (means[i] - lcms_means[i]).abs() < 1.0,
            "channel {i}: mean {:.2}, lcms2 {:.2}",
            means[i],
            lcms_means[i]
        );
    }
    let out = made.img.to_rgb8();
    for ((x, y), want) in lcms_pixels {
        let got = out.get_pixel(x, y).0;
        let off = (0..3).map(|i| got[i].abs_diff(want[i])).max().unwrap();
        assert!(off <= 3, "({x}, {y}): {got:?}, lcms2 {want:?}");
    }
    // And the output says sRGB, in the profile presize embeds for converted images.
    let png = fs::read(&made.path).unwrap();
    assert!(png.windows(4).any(|w| w == b"iCCP"));
}

/// `jpeg` with `icc` as one APP2 `ICC_PROFILE` segment after SOI.
fn jpeg_with_icc(jpeg: &[u8], icc: &[u8]) -> Vec<u8> {
    let len = (icc.len() + 2 + 14) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE2]);
    out.extend(len.to_be_bytes());
    out.extend(b"ICC_PROFILE\0\x01\x01");
    out.extend(icc);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn issue_13_icc_srgb_fails_a_file_whose_profile_it_cannot_convert_and_says_why() {
    // A profile header that claims RGB and then holds nothing usable.
    let mut bogus = vec![0u8; 200];
    bogus[0..4].copy_from_slice(&200u32.to_be_bytes());
    bogus[12..20].copy_from_slice(b"mntrRGB ");
    bogus[36..40].copy_from_slice(b"acsp");
    let jpeg = jpeg_with_icc(
        &encoded(
            &DynamicImage::ImageRgb8(gradient(32, 24)),
            image::ImageFormat::Jpeg,
        ),
        &bogus,
    );
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("bogus.jpg");
    fs::write(&path, &jpeg).unwrap();
    let (out, stderr) = run(&path, &["-w", "100%", "--icc", "srgb"], 1);
    assert!(!out.path().join("bogus.jpg").exists(), "nothing written");
    let line = stderr
        .lines()
        .find(|l| l.contains("bogus.jpg") && l.contains("--icc srgb"))
        .unwrap_or_else(|| panic!("no reason given:\n{stderr}"));
    assert!(line.contains("ICC profile"), "{line}");
    // --icc keep passes the same file through, profile and all.
    let (out, _) = run(&path, &["-w", "100%"], 0);
    assert!(out.path().join("bogus.jpg").exists());
    // AVIF cannot embed it, so its pixels would go out labelled sRGB: that output fails too.
    let (out, stderr) = run(&path, &["-w", "100%", "-f", "avif,webp"], 1);
    let line = stderr
        .lines()
        .find(|l| l.contains("bogus.jpg") && l.contains("AVIF"))
        .unwrap_or_else(|| panic!("no reason given:\n{stderr}"));
    assert!(line.contains("ICC profile"), "{line}");
    assert!(!out.path().join("bogus.avif").exists(), "nothing written");
}

// ---------------------------------------------------------------------------------------------
// Item 10: print resolution, kept or scaled (--dpi keep|scale|N)

/// The JFIF density of a JPEG: (units, x, y); units 1 is dots per inch.
fn jfif_density(jpeg: &[u8]) -> (u8, u16, u16) {
    assert_eq!(&jpeg[2..4], &[0xFF, 0xE0], "APP0 first");
    assert_eq!(&jpeg[6..11], b"JFIF\0");
    (
        jpeg[13],
        u16::from_be_bytes([jpeg[14], jpeg[15]]),
        u16::from_be_bytes([jpeg[16], jpeg[17]]),
    )
}

/// `jpeg` (which starts with a JFIF APP0) with its density set to `x`×`y` per inch.
fn with_jfif_dpi(mut jpeg: Vec<u8>, x: u16, y: u16) -> Vec<u8> {
    assert_eq!(&jpeg[6..11], b"JFIF\0");
    jpeg[13] = 1;
    jpeg[14..16].copy_from_slice(&x.to_be_bytes());
    jpeg[16..18].copy_from_slice(&y.to_be_bytes());
    jpeg
}

/// A PNG's `pHYs`: (x, y, unit), unit 1 being pixels per metre.
fn png_phys(png: &[u8]) -> Option<(u32, u32, u8)> {
    let at = png.windows(4).position(|w| w == b"pHYs")?;
    let d = &png[at + 4..at + 13];
    Some((
        u32::from_be_bytes(d[0..4].try_into().unwrap()),
        u32::from_be_bytes(d[4..8].try_into().unwrap()),
        d[8],
    ))
}

fn exif_rational(exif: &exif::Exif, tag: exif::Tag) -> Option<f64> {
    match &exif.get_field(tag, exif::In::PRIMARY)?.value {
        exif::Value::Rational(v) => Some(v[0].to_f64()),
        _ => None,
    }
}

#[test]
fn issue_13_a_300_dpi_jpeg_keeps_its_resolution_or_scales_it() {
    let src = with_jfif_dpi(
        encoded(
            &DynamicImage::ImageRgb8(gradient(200, 100)),
            image::ImageFormat::Jpeg,
        ),
        300,
        300,
    );
    // Default: kept, as libvips and ImageMagick keep it.
    let made = resize_bytes("print.jpg", &src, &["-w", "100"], "jpg");
    assert_eq!(made.img.dimensions(), (100, 50));
    assert_eq!(jfif_density(&fs::read(&made.path).unwrap()), (1, 300, 300));
    // Scaled: half the pixels at half the density print at the same size.
    let made = resize_bytes("print.jpg", &src, &["-w", "100", "--dpi", "scale"], "jpg");
    assert_eq!(jfif_density(&fs::read(&made.path).unwrap()), (1, 150, 150));
    // Set.
    let made = resize_bytes("print.jpg", &src, &["-w", "100", "--dpi", "72"], "jpg");
    assert_eq!(jfif_density(&fs::read(&made.path).unwrap()), (1, 72, 72));
    // Other formats carry it their own way: PNG in pixels per metre, TIFF in its tags.
    let made = resize_bytes("print.jpg", &src, &["-w", "100", "-f", "png"], "png");
    assert_eq!(
        png_phys(&fs::read(&made.path).unwrap()),
        Some((11_811, 11_811, 1))
    );
    let made = resize_bytes(
        "print.jpg",
        &src,
        &["-w", "100", "-f", "tiff", "--dpi", "scale"],
        "tif",
    );
    assert_eq!(tiff_tag(&made.path, 296), Some(vec![2]), "inches");
    let exif = exif_of(&made.path).unwrap();
    assert_eq!(exif_rational(&exif, exif::Tag::XResolution), Some(150.0));
    assert_eq!(exif_rational(&exif, exif::Tag::YResolution), Some(150.0));

    // A source without a resolution gets none invented, except by an explicit number.
    let plain = encoded(
        &DynamicImage::ImageRgb8(gradient(200, 100)),
        image::ImageFormat::Png,
    );
    let made = resize_bytes("plain.png", &plain, &["-w", "100", "--dpi", "scale"], "png");
    assert_eq!(png_phys(&fs::read(&made.path).unwrap()), None);
    let made = resize_bytes("plain.png", &plain, &["-w", "100", "--dpi", "254"], "png");
    assert_eq!(
        png_phys(&fs::read(&made.path).unwrap()),
        Some((10_000, 10_000, 1))
    );
}

#[test]
fn issue_13_exif_resolution_is_scaled_with_the_image_and_turned_with_it() {
    // A camera JPEG: EXIF says 300 across and 150 down (of the stored pixels), Orientation 6.
    let exif = TiffBuilder::new(true)
        .ascii(0x010F, "Panasonic")
        .short(0x0112, &[6])
        .rational(0x011A, 300, 1)
        .rational(0x011B, 150, 1)
        .short(0x0128, &[2])
        .build(&[]);
    let jpeg = jpeg_with_exif(
        &encoded(
            &DynamicImage::ImageRgb8(gradient(200, 100)),
            image::ImageFormat::Jpeg,
        ),
        &exif,
    );
    // Displayed 100x200; -w 50 is half of it.
    let made = resize_bytes("cam.jpg", &jpeg, &["-w", "50", "--dpi", "scale"], "jpg");
    assert_eq!(made.img.dimensions(), (50, 100));
    let out = exif_of(&made.path).expect("EXIF kept");
    assert_eq!(exif_uint(&out, exif::Tag::Orientation), Some(1));
    // Across the upright image is down the stored one: 150, then half of it.
    assert_eq!(exif_rational(&out, exif::Tag::XResolution), Some(75.0));
    assert_eq!(exif_rational(&out, exif::Tag::YResolution), Some(150.0));
    assert_eq!(
        out.get_field(exif::Tag::Make, exif::In::PRIMARY)
            .map(|f| f.display_value().to_string()),
        Some("\"Panasonic\"".into()),
        "the rest of the EXIF is intact"
    );
    assert_eq!(jfif_density(&fs::read(&made.path).unwrap()), (1, 75, 150));
    // A fraction survives in EXIF; JFIF holds whole numbers.
    let made = resize_bytes("cam.jpg", &jpeg, &["-w", "40", "--dpi", "scale"], "jpg");
    let out = exif_of(&made.path).expect("EXIF kept");
    assert_eq!(exif_rational(&out, exif::Tag::XResolution), Some(60.0));
    assert_eq!(exif_rational(&out, exif::Tag::YResolution), Some(120.0));
    let made = resize_bytes("cam.jpg", &jpeg, &["-w", "30", "--dpi", "scale"], "jpg");
    let out = exif_of(&made.path).expect("EXIF kept");
    assert_eq!(exif_rational(&out, exif::Tag::XResolution), Some(45.0));
    let made = resize_bytes("cam.jpg", &jpeg, &["-w", "25", "--dpi", "scale"], "jpg");
    let out = exif_of(&made.path).expect("EXIF kept");
    assert_eq!(exif_rational(&out, exif::Tag::XResolution), Some(37.5));
    assert_eq!(jfif_density(&fs::read(&made.path).unwrap()), (1, 38, 75));
}

#[test]
fn issue_13_a_bmp_resolution_reaches_the_png() {
    // small.bmp: 2400 pixels per metre (61 dpi) both ways.
    let made = resize_file(&realworld("small.bmp"), &["-w", "100%", "-f", "png"], "png");
    assert_eq!(
        png_phys(&fs::read(&made.path).unwrap()),
        Some((2400, 2400, 1))
    );
}

#[test]
fn issue_13_bad_dpi_values_are_refused_by_name() {
    for bad in ["0", "-3", "lots", "70000"] {
        let bad = &format!("--dpi={bad}");
        let out = Command::cargo_bin("presize")
            .unwrap()
            .args([".", "-o", "out", "-w", "10", bad])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("--dpi") && stderr.contains("keep, scale"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn issue_13_in_place_rewrites_an_image_that_fits_when_dpi_sets_a_number() {
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("fits.jpg");
    fs::write(
        &path,
        encoded(
            &DynamicImage::ImageRgb8(gradient(60, 40)),
            image::ImageFormat::Jpeg,
        ),
    )
    .unwrap();
    let in_place = |extra: &[&str]| {
        Command::cargo_bin("presize")
            .unwrap()
            .args(["--progress", "never", "--in-place", "-w", "200"])
            .args(extra)
            .arg(&path)
            .assert()
            .code(0);
        jfif_density(&fs::read(&path).unwrap())
    };
    // Already within 200 px and nothing asked: left alone (no resolution, JFIF 1:1).
    assert_eq!(in_place(&[]), (0, 1, 1));
    assert_eq!(in_place(&["--dpi", "300"]), (1, 300, 300));
}

/// The bytes of entry `i` of an icon, as its directory places them.
fn icon_entry(icon: &[u8], i: usize) -> &[u8] {
    let at = 6 + 16 * i;
    let u32_at = |p: usize| u32::from_le_bytes(icon[p..p + 4].try_into().unwrap()) as usize;
    &icon[u32_at(at + 12)..u32_at(at + 12) + u32_at(at + 8)]
}

/// An icon holding only `entry` (its directory entry copied from entry `i` of `icon`), which
/// the `image` crate decodes without having to choose.
fn single_entry_icon(icon: &[u8], i: usize) -> DynamicImage {
    let entry = icon_entry(icon, i);
    let mut out = vec![0, 0, 1, 0, 1, 0];
    out.extend_from_slice(&icon[6 + 16 * i..6 + 16 * i + 12]);
    out.extend(22u32.to_le_bytes());
    out.extend_from_slice(entry);
    image::load_from_memory_with_format(&out, image::ImageFormat::Ico).unwrap()
}

#[test]
fn issue_13_an_icon_is_read_from_its_largest_deepest_first_image() {
    // image-rs' two-entry-order-test.ico: two 48x48 8-bit images that differ; the first listed
    // is the one ImageMagick (so libvips) and Windows show.
    let src = realworld("two-entry-order-test.ico");
    let icon = fs::read(&src).unwrap();
    let (first, second) = (single_entry_icon(&icon, 0), single_entry_icon(&icon, 1));
    assert!(
        mean_abs_diff(&first, &second) > 1.0,
        "the two images must differ for this test to mean anything"
    );
    let made = resize_file(&src, &["-w", "100%", "-f", "png"], "png");
    assert_eq!(made.img.dimensions(), (48, 48));
    assert_eq!(made.img.to_rgba8(), first.to_rgba8());
}

#[test]
fn issue_13_a_32_bit_icon_keeps_its_alpha_over_a_conflicting_mask() {
    // image-rs' bmp-32bpp-conflicting-and-mask.ico: 16x16 blue at alpha 128 whose AND mask
    // says "transparent" everywhere. The alpha bytes win (Windows, browsers, libvips: 128).
    let made = resize_file(
        &realworld("bmp-32bpp-conflicting-and-mask.ico"),
        &["-w", "100%", "-f", "png"],
        "png",
    );
    let out = made.img.to_rgba8();
    assert_eq!(out.dimensions(), (16, 16));
    assert!(
        out.pixels().all(|p| p.0 == [0, 0, 255, 128]),
        "{:?}",
        out.get_pixel(0, 0)
    );
}

#[test]
fn issue_13_png_icons_of_any_colour_type_are_read() {
    // image-rs' png_l8.ico and png_rgb8.ico hold a grey and an RGB PNG (the `image` crate's
    // ICO decoder refuses anything but RGBA): the output is that PNG's picture, still grey.
    for (name, colour_type) in [("png_l8.ico", 0), ("png_rgb8.ico", 2)] {
        let src = realworld(name);
        let icon = fs::read(&src).unwrap();
        let inner =
            image::load_from_memory_with_format(icon_entry(&icon, 0), image::ImageFormat::Png)
                .unwrap();
        let made = resize_file(&src, &["-w", "100%", "-f", "png"], "png");
        assert_eq!(
            png_color_type(&fs::read(&made.path).unwrap()),
            colour_type,
            "{name}"
        );
        assert_eq!(made.img.to_rgba8(), inner.to_rgba8(), "{name}");
    }
}
