//! TIFF variants from photo and scan folders (issue #13 item 6): BigTIFF, 2- and 4-bit grey,
//! signed samples, YCbCr (uncompressed and JPEG), CIE L*a*b*, CCITT Group 3 fax. Each is run
//! through the presize binary and its output decoded and compared with the picture it holds;
//! the variants presize does not read must fail with one line naming the file and the variant.
//!
//! Files whose bytes are simple are built here (BigTIFF, signed, uncompressed YCbCr, the
//! refusals); files whose point is that a real encoder wrote them are committed under
//! `testdata/tiff/` (libtiff's Group 3 and JPEG, libvips' CIE L*a*b* and its 2- and 4-bit
//! test images; `testdata/README.md` says how each was made). No external program is run.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use image::{DynamicImage, GenericImageView};

// ---------------------------------------------------------------------------------------------
// Helpers

fn committed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tiff")
        .join(name)
}

/// Runs presize on `input` with `args` (`-f png` and a width no source here reaches, so the
/// output has the source's pixels, turned upright) into a fresh folder; the run must exit
/// with `code`. Returns the folder and stderr.
fn run(input: &Path, code: i32) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().unwrap();
    let assert = Command::cargo_bin("presize")
        .expect("the presize binary is built")
        .args(["--progress", "never", "-w", "4000", "-f", "png"])
        .arg(input)
        .arg("-o")
        .arg(out.path())
        .assert()
        .code(code);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    (out, stderr)
}

/// The decoded PNG presize made of `input`.
fn resized(input: &Path) -> DynamicImage {
    let (dir, stderr) = run(input, 0);
    let stem = input.file_stem().unwrap().to_str().unwrap();
    let path = dir.path().join(format!("{stem}.png"));
    image::open(&path).unwrap_or_else(|e| panic!("{}: {e}; {stderr}", path.display()))
}

/// Writes `bytes` as `name` in a fresh folder and returns presize's output of it.
fn resized_bytes(name: &str, bytes: &[u8]) -> DynamicImage {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, bytes).unwrap();
    resized(&path)
}

/// Writes `bytes` as `name`, runs presize on it, which must fail, and returns its stderr.
fn refused(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, bytes).unwrap();
    refused_file(&path)
}

fn refused_file(path: &Path) -> String {
    let (out, stderr) = run(path, 1);
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0, "{stderr}");
    let name = path.file_name().unwrap().to_str().unwrap();
    // The failure line, repeated word for word in the summary's list of failed files.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(name))
        .collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(
        lines.iter().all(|l| *l == lines[0]),
        "one message: {stderr}"
    );
    lines[0].to_string()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    10.0 * (255.0 * 255.0 / (se / a.len() as f64).max(1e-12)).log10()
}

/// The smooth gradient `testdata/tiff/gradient` files were made from (and `real_world.rs`
/// uses): different in every channel, so a turned or swapped copy is obvious.
fn gradient(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let fx = x * 255 / (w - 1);
            let fy = y * 255 / (h - 1);
            out.extend([fx, fy, 255 - (fx + fy) / 2].map(|v| u8::try_from(v).unwrap()));
        }
    }
    out
}

/// The 64x32 bilevel pattern the committed fax files hold: stripes of 8x4 cells and a line.
fn bilevel_is_black(x: u32, y: u32) -> bool {
    ((x / 8) + (y / 4)).is_multiple_of(2) || x == y * 2
}

/// One IFD entry to write: tag, TIFF type (3 SHORT, 4 LONG, 5 RATIONAL) and its values (a
/// RATIONAL as numerator and denominator).
struct Tag(u16, u16, Vec<u32>);

/// A one-strip TIFF of `width`×`height` holding `data`, with `tags` besides the size, the
/// strip and SamplesPerPixel (from the BitsPerSample count); classic or BigTIFF, little- or
/// big-endian.
fn tiff_file(
    big: bool,
    big_endian: bool,
    width: u32,
    height: u32,
    tags: Vec<Tag>,
    data: &[u8],
) -> Vec<u8> {
    let samples = tags
        .iter()
        .find(|t| t.0 == 258)
        .map_or(1, |t| u32::try_from(t.2.len()).unwrap());
    let mut all = vec![
        Tag(256, 4, vec![width]),
        Tag(257, 4, vec![height]),
        Tag(273, 4, vec![0]),
        Tag(277, 3, vec![samples]),
        Tag(278, 4, vec![height]),
        Tag(279, 4, vec![u32::try_from(data.len()).unwrap()]),
    ];
    all.extend(tags);
    all.sort_by_key(|t| t.0);
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u64b = |v: u64| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let value = |t: &Tag| -> Vec<u8> {
        match t.1 {
            3 => {
                t.2.iter()
                    .flat_map(|&v| u16b(u16::try_from(v).unwrap()))
                    .collect()
            }
            _ => t.2.iter().flat_map(|&v| u32b(v)).collect(),
        }
    };
    let count = |t: &Tag| if t.1 == 5 { t.2.len() / 2 } else { t.2.len() };
    let (header, count_len, entry_len, inline) = if big { (16, 8, 20, 8) } else { (8, 2, 12, 4) };
    let ifd_len = count_len + entry_len * all.len() + inline;
    // Out-of-line values follow the IFD, then the strip.
    let mut extra: Vec<u8> = Vec::new();
    let mut places = Vec::new();
    for t in &all {
        let v = value(t);
        if v.len() > inline {
            places.push(Some(header + ifd_len + extra.len()));
            extra.extend(&v);
        } else {
            places.push(None);
        }
    }
    let strip_at = u32::try_from(header + ifd_len + extra.len()).unwrap();
    let mut out = Vec::new();
    out.extend(if big_endian { b"MM" } else { b"II" });
    if big {
        out.extend(u16b(43));
        out.extend(u16b(8));
        out.extend(u16b(0));
        out.extend(u64b(16));
        out.extend(u64b(all.len() as u64));
    } else {
        out.extend(u16b(42));
        out.extend(u32b(8));
        out.extend(u16b(u16::try_from(all.len()).unwrap()));
    }
    for (t, place) in all.iter().zip(&places) {
        out.extend(u16b(t.0));
        out.extend(u16b(t.1));
        let n = count(t) as u64;
        if big {
            out.extend(u64b(n));
        } else {
            out.extend(u32b(u32::try_from(n).unwrap()));
        }
        let mut v = if t.0 == 273 {
            u32b(strip_at).to_vec()
        } else {
            value(t)
        };
        if let Some(at) = place {
            v = if big {
                u64b(*at as u64).to_vec()
            } else {
                u32b(u32::try_from(*at).unwrap()).to_vec()
            };
        }
        v.resize(inline, 0);
        out.extend(v);
    }
    out.extend(vec![0; inline]);
    out.extend(extra);
    out.extend(data);
    out
}

/// BitsPerSample, Compression 1, PhotometricInterpretation and SampleFormat tags.
fn basic(bits: &[u32], photometric: u32, sample_format: u32) -> Vec<Tag> {
    vec![
        Tag(258, 3, bits.to_vec()),
        Tag(259, 3, vec![1]),
        Tag(262, 3, vec![photometric]),
        Tag(339, 3, vec![sample_format; bits.len()]),
    ]
}

// ---------------------------------------------------------------------------------------------
// BigTIFF

#[test]
fn bigtiff_is_read_like_a_classic_tiff_orientation_included() {
    let (w, h) = (48, 32);
    let pixels = gradient(w, h);
    for big_endian in [false, true] {
        let mut tags = basic(&[8, 8, 8], 2, 1);
        tags.push(Tag(274, 3, vec![6])); // turned: shows rotated 90° clockwise
        let file = tiff_file(true, big_endian, w, h, tags, &pixels);
        let out = resized_bytes("big.tif", &file).to_rgb8();
        assert_eq!(out.dimensions(), (h, w), "big-endian: {big_endian}");
        let want =
            image::imageops::rotate90(&image::RgbImage::from_raw(w, h, pixels.clone()).unwrap());
        assert!(out == want, "big-endian: {big_endian}: pixels differ");
    }
}

// ---------------------------------------------------------------------------------------------
// 2- and 4-bit grey

#[test]
fn two_and_four_bit_grey_is_stretched_to_the_full_range() {
    // libvips' test images: a ramp across 256 pixels, 4 and 16 levels.
    for (file, levels) in [("2bit.tif", 4u32), ("4bit.tif", 16)] {
        let out = resized(&committed(file));
        let DynamicImage::ImageLuma8(grey) = out else {
            panic!("{file}: not 8-bit grey: {:?}", out.color());
        };
        assert_eq!(grey.dimensions(), (256, 4), "{file}");
        let step = 255 / (levels - 1);
        for (x, y, p) in grey.enumerate_pixels() {
            let want = x * levels / 256 * step;
            assert_eq!(u32::from(p.0[0]), want, "{file} at {x},{y}");
        }
    }
    // WhiteIsZero, 4 bits, an odd width (rows padded to a byte): 0 is white.
    let data = [0x0F, 0x80, 0x0F, 0x80];
    let file = tiff_file(false, false, 3, 2, basic(&[4], 0, 1), &data);
    let out = resized_bytes("white_is_zero.tif", &file).to_luma8();
    assert_eq!(out.into_raw(), [255, 0, 119, 255, 0, 119]);
}

// ---------------------------------------------------------------------------------------------
// Signed samples

#[test]
fn signed_samples_keep_their_value_and_negatives_are_black() {
    // 8-bit grey, as libvips shows it: the value, clipped at 0.
    let values: [i8; 6] = [-128, -1, 0, 1, 64, 127];
    let data: Vec<u8> = values.iter().map(|v| v.to_le_bytes()[0]).collect();
    let file = tiff_file(false, false, 6, 1, basic(&[8], 1, 2), &data);
    let out = resized_bytes("signed8.tif", &file);
    assert_eq!(out.to_luma8().into_raw(), [0, 0, 0, 1, 64, 127]);
    // 16-bit RGB, big-endian: kept at 16 bits.
    let values: [i16; 6] = [-32768, -5, 0, 1000, 32767, 20000];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let file = tiff_file(false, true, 2, 1, basic(&[16, 16, 16], 2, 2), &data);
    let DynamicImage::ImageRgb16(rgb) = resized_bytes("signed16.tif", &file) else {
        panic!("not 16-bit RGB");
    };
    assert_eq!(rgb.into_raw(), [0, 0, 0, 1000, 32767, 20000]);
}

#[test]
fn signed_32_bit_samples_are_refused_by_name() {
    let data = [0u8; 8];
    let file = tiff_file(false, false, 2, 1, basic(&[32], 1, 2), &data);
    let line = refused("signed32.tif", &file);
    assert!(
        line.contains("unsupported: TIFF with signed integer samples of 32 bits"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// YCbCr

/// RGB → TIFF YCbCr with luma weights `k` and ReferenceBlackWhite `reference`, the inverse
/// of what a reader must do (TIFF 6.0 section 21).
fn to_ycbcr(rgb: [f64; 3], k: [f64; 3], reference: [f64; 6]) -> [u8; 3] {
    let y = k[0] * rgb[0] + k[1] * rgb[1] + k[2] * rgb[2];
    let cb = (rgb[2] - y) / (2.0 - 2.0 * k[2]);
    let cr = (rgb[0] - y) / (2.0 - 2.0 * k[0]);
    let code = |v: f64, i: usize, range: f64| {
        (v * (reference[i + 1] - reference[i]) / range + reference[i]).round() as u8
    };
    [code(y, 0, 255.0), code(cb, 2, 127.0), code(cr, 4, 127.0)]
}

#[test]
fn uncompressed_ycbcr_is_converted_with_its_coefficients_and_reference_range() {
    let colours = [
        [255.0, 255.0, 255.0],
        [0.0, 0.0, 0.0],
        [200.0, 40.0, 30.0],
        [20.0, 180.0, 90.0],
        [60.0, 70.0, 220.0],
        [128.0, 128.0, 128.0],
    ];
    // TIFF's defaults (Rec. 601, full range), then Rec. 709 in studio range (16-235/240),
    // both stated in tags, as some scanners write them.
    let rec709 = [0.2126, 0.7152, 0.0722];
    let studio = [16.0, 235.0, 128.0, 240.0, 128.0, 240.0];
    for (k, reference, tags) in [
        (
            [0.299, 0.587, 0.114],
            [0.0, 255.0, 128.0, 255.0, 128.0, 255.0],
            vec![],
        ),
        (
            rec709,
            studio,
            vec![
                Tag(529, 5, vec![2126, 10_000, 7152, 10_000, 722, 10_000]),
                Tag(532, 5, vec![16, 1, 235, 1, 128, 1, 240, 1, 128, 1, 240, 1]),
            ],
        ),
    ] {
        let data: Vec<u8> = colours
            .iter()
            .flat_map(|&c| to_ycbcr(c, k, reference))
            .collect();
        let mut all = basic(&[8, 8, 8], 6, 1);
        all.push(Tag(530, 3, vec![1, 1])); // no chroma subsampling
        all.extend(tags);
        let file = tiff_file(false, false, 3, 2, all, &data);
        let out = resized_bytes("ycbcr.tif", &file).to_rgb8().into_raw();
        let want: Vec<u8> = colours.iter().flatten().map(|&v| v as u8).collect();
        for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
            // Studio range keeps fewer codes per level: within 2 levels.
            assert!(
                got.abs_diff(want) <= 2,
                "k {k:?} sample {i}: {got} for {want}; {out:?}"
            );
        }
    }
}

#[test]
fn jpeg_compressed_ycbcr_matches_the_picture_libtiff_encoded() {
    // libtiff's `tiffcp -c jpeg:90 -r 16`: YCbCr 4:2:0 in three strips sharing JPEGTables.
    let out = resized(&committed("ycbcr_jpeg_q90.tif"));
    assert_eq!(out.dimensions(), (64, 48));
    let db = psnr(&out.to_rgb8().into_raw(), &gradient(64, 48));
    // Measured 45.0 dB: what quality 90 leaves.
    assert!(db >= 40.0, "{db:.1} dB");
}

#[test]
fn chroma_subsampled_ycbcr_outside_jpeg_is_refused_by_name() {
    let mut tags = basic(&[8, 8, 8], 6, 1);
    tags.push(Tag(530, 3, vec![2, 2]));
    let file = tiff_file(false, false, 2, 2, tags, &[128; 6]);
    let line = refused("subsampled.tif", &file);
    assert!(
        line.contains("YCbCr chroma subsampled 2x2 outside JPEG compression"),
        "{line}"
    );
}

#[test]
fn old_style_jpeg_is_refused_by_name() {
    let mut tags = basic(&[8, 8, 8], 6, 1);
    tags[1] = Tag(259, 3, vec![6]);
    let file = tiff_file(false, false, 2, 2, tags, &[0; 16]);
    let line = refused("ojpeg.tif", &file);
    assert!(
        line.contains("old-style JPEG compression (compression 6)"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// CIE L*a*b*

#[test]
fn cie_lab_becomes_srgb() {
    // libvips wrote both from the gradient: 16 bits (signed, as it writes LabS) and 8 bits
    // (its LabQ, coarser), LZW.
    for (file, min_db) in [("lab16_lzw.tif", 55.0), ("lab8_lzw.tif", 35.0)] {
        let out = resized(&committed(file));
        assert_eq!(out.dimensions(), (64, 48), "{file}");
        let db = psnr(&out.to_rgb8().into_raw(), &gradient(64, 48));
        // Measured 63.1 and 39.4 dB.
        assert!(db >= min_db, "{file}: {db:.1} dB");
    }
}

// ---------------------------------------------------------------------------------------------
// CCITT Group 3

#[test]
fn group_3_fax_matches_the_bilevel_picture() {
    // libtiff's `tiffcp -c g3:1d`: four strips of 8 rows; and one strip with FillOrder 2.
    for file in ["fax_g3_1d.tif", "fax_g3_1d_lsb_first.tif"] {
        let out = resized(&committed(file));
        let DynamicImage::ImageLuma8(grey) = out else {
            panic!("{file}: not 8-bit grey");
        };
        assert_eq!(grey.dimensions(), (64, 32), "{file}");
        for (x, y, p) in grey.enumerate_pixels() {
            let want = if bilevel_is_black(x, y) { 0 } else { 255 };
            assert_eq!(p.0[0], want, "{file} at {x},{y}");
        }
    }
}

#[test]
fn two_dimensional_group_3_fax_is_refused_by_name() {
    let line = refused_file(&committed("fax_g3_2d.tif"));
    assert!(
        line.contains("unsupported: TIFF with two-dimensional CCITT Group 3 fax compression"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// Floating point

#[test]
fn floating_point_rgb_is_linear_light() {
    // Linear 0.214 is sRGB's middle (0.5); out-of-range values clamp, as libvips shows them.
    let linear: [f32; 6] = [0.0, 0.214_041_14, 1.0, 2.0, -1.0, 0.003_130_8];
    let want: [u16; 6] = [0, 32_768, 65_535, 65_535, 0, 2_651];
    for big_endian in [false, true] {
        let data: Vec<u8> = linear
            .iter()
            .flat_map(|v| {
                if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            })
            .collect();
        let file = tiff_file(false, big_endian, 2, 1, basic(&[32, 32, 32], 2, 3), &data);
        let DynamicImage::ImageRgb16(rgb) = resized_bytes("float.tif", &file) else {
            panic!("not 16-bit RGB");
        };
        for (got, want) in rgb.into_raw().into_iter().zip(want) {
            assert!(
                got.abs_diff(want) <= 2,
                "big-endian {big_endian}: {got} for {want}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Palette

#[test]
fn palette_colour_takes_its_colour_map() {
    // Red, green, blue, white, then black for the rest; 4-bit and 8-bit indices.
    let colours: [[u32; 3]; 4] = [
        [65_535, 0, 0],
        [0, 65_535, 0],
        [0, 0, 65_535],
        [65_535, 65_535, 65_535],
    ];
    for (bits, data) in [
        (4u32, vec![0x01, 0x23, 0x32, 0x10]),
        (8, vec![0, 1, 2, 3, 3, 2, 1, 0]),
    ] {
        let n = 1usize << bits;
        let mut map = vec![0; 3 * n];
        for (i, c) in colours.iter().enumerate() {
            for (channel, &v) in c.iter().enumerate() {
                map[channel * n + i] = v;
            }
        }
        let mut tags = basic(&[bits], 3, 1);
        tags.push(Tag(320, 3, map));
        let file = tiff_file(false, false, 4, 2, tags, &data);
        let out = resized_bytes("palette.tif", &file).to_rgb8().into_raw();
        let want: Vec<u8> = [0, 1, 2, 3, 3, 2, 1, 0]
            .iter()
            .flat_map(|&i: &usize| colours[i].map(|v| u8::try_from(v / 257).unwrap()))
            .collect();
        assert_eq!(out, want, "{bits} bits");
    }
}

// ---------------------------------------------------------------------------------------------
// Anything else

#[test]
fn a_tiff_nothing_reads_is_refused_with_what_it_holds() {
    let file = tiff_file(false, false, 2, 1, basic(&[12, 12, 12], 2, 1), &[0; 9]);
    let line = refused("twelve_bit.tif", &file);
    assert!(
        line.contains(
            "unsupported: TIFF with unsigned RGB samples of 12 bits, 3 a pixel, no compression"
        ),
        "{line}"
    );
}
