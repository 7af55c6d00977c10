//! Criterion benches for presize, from the codec and resize kernels up to a whole run.
//!
//! Groups: `decode`, `resize`, `encode` (one stage each, on a real photo), `process` (one file
//! end to end), `tune` (`--quality auto` and `--max-bytes` against a fixed quality) and `run` (a temp folder at several worker counts). `cargo bench` runs them all;
//! see `benches/README.md` for filters and for how to read the results.

use std::ffi::OsString;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::Duration;

use clap::Parser;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};

use presize::internals::pipeline::decode::{self, DecodeScratch, Header};
use presize::internals::pipeline::encode::{self, EncodeScratch};
use presize::internals::pipeline::pixels::Pixels;
use presize::internals::pipeline::resize::{self, ResizeScratch};
use presize::internals::pipeline::{self, Context, Mode, Scratch};
use presize::internals::{
    settings_for_width, Cli, Config, Filter, ImageJob, JobHandle, Outcome, Rect, Settings, Shrink,
};
use presize::Format;

use presize::internals::Reporter;

/// A 12 MP phone photo from the shared corpus, present on dev and CI machines beside the
/// checkout but not in the repository.
const CORPUS_PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/corpus/photos/cranes_nexus6p_4032x3024_exif_gps.jpg"
);

/// Used when the corpus is absent. At 1680x1050 it is too small for shrink-on-load to 800x600,
/// so `decode` and `resize` then show one size only.
const FALLBACK_PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/photos/dune_1680x1050_exif.jpg"
);

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

/// The output box of the stage benches: a typical web size.
const TARGET: (u32, u32) = (800, 600);

/// A JPEG read into memory, with its header parsed once.
struct Photo {
    path: PathBuf,
    bytes: Vec<u8>,
    header: Header,
    max_pixels: u64,
}

impl Photo {
    /// The photo, read and announced on stderr once per bench process.
    fn get() -> &'static Photo {
        static PHOTO: OnceLock<Photo> = OnceLock::new();
        PHOTO.get_or_init(Photo::load)
    }

    fn load() -> Photo {
        let path = [CORPUS_PHOTO, FALLBACK_PHOTO]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("neither the corpus photo nor the testdata fallback exists");
        let bytes = fs::read(&path).expect("photo is readable");
        let max_pixels = settings_for_width(TARGET.0).max_pixels;
        let header = decode::read_header(
            &bytes,
            Format::Jpeg,
            max_pixels,
            &mut DecodeScratch::default(),
        )
        .expect("photo header parses");
        eprintln!(
            "presize benches: photo {} ({}x{})",
            path.display(),
            header.width,
            header.height
        );
        Photo {
            path,
            bytes,
            header,
            max_pixels,
        }
    }

    fn decode(&self, min_size: Option<(f64, f64)>, scratch: &mut DecodeScratch) -> Pixels {
        decode::decode(
            black_box(&self.bytes),
            Format::Jpeg,
            &self.header,
            min_size,
            self.max_pixels,
            scratch,
        )
        .expect("photo decodes")
    }
}

/// The shrink-on-load policies, named as in the bench ids: `--no-fast-shrink`, the default,
/// and `--fast` (which keeps exactly the 800x600 target).
const SHRINKS: [(&str, Shrink); 3] = [
    ("full", Shrink::Off),
    ("shrink_quality", Shrink::Quality),
    ("shrink_fast", Shrink::Fast),
];

/// The smallest size the JPEG decoder may produce for a [`TARGET`] output under `shrink`,
/// computed as `pipeline::process` does for an uncropped image.
fn min_size(shrink: Shrink) -> Option<(f64, f64)> {
    shrink
        .margin()
        .map(|k| (k * f64::from(TARGET.0), k * f64::from(TARGET.1)))
}

fn whole(px: &Pixels) -> Rect {
    Rect {
        left: 0.0,
        top: 0.0,
        width: f64::from(px.width),
        height: f64::from(px.height),
    }
}

fn size_label(px: &Pixels) -> String {
    format!("{}x{}", px.width, px.height)
}

fn bench_decode(c: &mut Criterion) {
    let photo = Photo::get();
    let mut scratch = DecodeScratch::default();
    let mut group = c.benchmark_group("decode");
    // Tens of milliseconds per iteration, as in `process` below.
    group.sampling_mode(SamplingMode::Flat);
    for (name, shrink) in SHRINKS {
        let min_size = min_size(shrink);
        // The id carries the decoded size, so results from different photos never get compared.
        let id = BenchmarkId::new(name, size_label(&photo.decode(min_size, &mut scratch)));
        group.bench_function(id, |b| b.iter(|| photo.decode(min_size, &mut scratch)));
    }
    group.finish();
}

/// A real progressive photo (12 MP, 4:2:2) from the shared corpus, or the smaller one in
/// testdata when the corpus is absent.
const PROGRESSIVE_PHOTOS: [&str; 2] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/photos/dragonfly_plant_4224x3168_progressive.jpg"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/photos/colorful_cups_1280x800_progressive.jpg"
    ),
];

/// Issue #17 target 5: a progressive JPEG decoded at 1/8 from the scans that scale reads (the
/// default) against every scan (what libjpeg-turbo does on its own). Same pixels.
fn bench_progressive(c: &mut Criterion) {
    let path = PROGRESSIVE_PHOTOS
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("a progressive photo exists");
    let bytes = fs::read(path).expect("photo is readable");
    let mut scratch = DecodeScratch::default();
    let header = decode::read_header(&bytes, Format::Jpeg, u64::MAX, &mut scratch)
        .expect("photo header parses");
    eprintln!("presize benches: progressive photo {path}");
    let eighth = Some((
        f64::from(header.width) / 8.0,
        f64::from(header.height) / 8.0,
    ));
    let mut group = c.benchmark_group("progressive");
    group.sampling_mode(SamplingMode::Flat);
    for (name, all_scans) in [("needed_scans", false), ("all_scans", true)] {
        scratch.set_all_scans(all_scans);
        let mut run = || {
            decode::decode(
                black_box(&bytes),
                Format::Jpeg,
                &header,
                eighth,
                u64::MAX,
                &mut scratch,
            )
            .expect("photo decodes")
        };
        let id = BenchmarkId::new(name, size_label(&run()));
        group.bench_function(id, |b| b.iter(&mut run));
    }
    group.finish();
}

fn bench_resize(c: &mut Criterion) {
    let photo = Photo::get();
    let mut decode_scratch = DecodeScratch::default();
    // One source per distinct decoded size (with a small photo the policies may coincide).
    let mut sources: Vec<Pixels> = Vec::new();
    for (_, shrink) in SHRINKS {
        let px = photo.decode(min_size(shrink), &mut decode_scratch);
        if !sources
            .iter()
            .any(|s| (s.width, s.height) == (px.width, px.height))
        {
            sources.push(px);
        }
    }
    sources.sort_by_key(|s| s.width);

    let mut scratch = ResizeScratch::default();
    let mut group = c.benchmark_group("resize");
    for (name, filter) in [
        ("lanczos3", Filter::Lanczos3),
        ("bilinear", Filter::Bilinear),
        ("box", Filter::Box),
    ] {
        for src in &sources {
            let id = BenchmarkId::new(name, format!("from_{}", size_label(src)));
            let crop = whole(src);
            // `resize` consumes its input, so each iteration gets a fresh copy, made untimed.
            group.bench_function(id, |b| {
                b.iter_batched(
                    || src.clone(),
                    |px| resize::resize(px, crop, TARGET, filter, &mut scratch).expect("resizes"),
                    BatchSize::LargeInput,
                );
            });
        }
    }
    group.finish();
}

/// One image on several cores: the split resize, and the restart-marker band decode of the
/// photo given a marker per MCU row by `jpegtran` (skipped, with a note, when it is missing).
fn bench_split(c: &mut Criterion) {
    let photo = Photo::get();
    let full = photo.decode(None, &mut DecodeScratch::default());
    let crop = whole(&full);
    let mut scratch = ResizeScratch::default();
    let mut group = c.benchmark_group("split");
    group.sampling_mode(SamplingMode::Flat);
    for threads in [1, 2] {
        let id = BenchmarkId::new(
            "resize_lanczos3",
            format!("from_{}_threads_{threads}", size_label(&full)),
        );
        group.bench_function(id, |b| {
            b.iter(|| {
                resize::resize_ref_par(&full, crop, TARGET, Filter::Lanczos3, &mut scratch, threads)
                    .expect("resizes")
            });
        });
    }
    let restart = std::process::Command::new("jpegtran")
        .args(["-copy", "none", "-restart", "1"])
        .arg(&photo.path)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout);
    let Some(restart) = restart else {
        eprintln!("presize benches: jpegtran not found, split/decode_restart skipped");
        group.finish();
        return;
    };
    let mut decoder = DecodeScratch::default();
    for threads in [1, 2] {
        let id = BenchmarkId::new(
            "decode_restart",
            format!(
                "{}x{}_threads_{threads}",
                photo.header.width, photo.header.height
            ),
        );
        group.bench_function(id, |b| {
            b.iter(|| {
                let probe = decode::probe(&restart, Format::Jpeg, photo.max_pixels, &mut decoder)
                    .expect("probes");
                decode::decode_probed(&restart, Format::Jpeg, probe, None, &mut decoder, threads)
                    .expect("decodes")
            });
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let photo = Photo::get();
    let src = photo.decode(min_size(Shrink::Quality), &mut DecodeScratch::default());
    let crop = whole(&src);
    // Real photo content: encoders are far faster on flat or synthetic images.
    let px = resize::resize(
        src,
        crop,
        TARGET,
        Filter::Lanczos3,
        &mut ResizeScratch::default(),
    )
    .expect("resizes");
    let settings = settings_for_width(TARGET.0);
    let q = settings.quality;

    let mut scratch = EncodeScratch::default();
    let mut group = c.benchmark_group("encode");
    // WebP takes tens of milliseconds per iteration.
    group.sampling_mode(SamplingMode::Flat);
    // The AVIF encoder's speed around the default effort too (libaom speed 10 − effort; rav1e
    // in builds without libheif): what each step costs, beside the default.
    let with_avif_effort = |effort: u8| {
        let mut s = settings.clone();
        s.effort.avif = effort;
        s
    };
    let cases = [
        (format!("jpeg_q{}", q.jpeg), Format::Jpeg, settings.clone()),
        (format!("webp_q{}", q.webp), Format::Webp, settings.clone()),
        (format!("avif_q{}", q.avif), Format::Avif, settings.clone()),
        (
            format!("avif_q{}_effort1", q.avif),
            Format::Avif,
            with_avif_effort(1),
        ),
        (
            format!("avif_q{}_effort5", q.avif),
            Format::Avif,
            with_avif_effort(5),
        ),
        ("png".to_owned(), Format::Png, settings.clone()),
    ];
    for (name, format, settings) in cases {
        let id = BenchmarkId::new(name, size_label(&px));
        group.bench_function(id, |b| {
            b.iter(|| {
                encode::encode(
                    black_box(&px),
                    format,
                    &settings,
                    &Default::default(),
                    &mut scratch,
                )
                .expect("encodes")
            });
        });
    }
    group.finish();
}

/// Runs `process` on the photo with `settings` into `out` once (it must write), then benches it
/// as `id` in `group`.
fn bench_photo_process(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    settings: Settings,
    out: &Path,
    scratch: &mut Scratch,
) {
    let photo = Photo::get();
    let job = ImageJob {
        src: photo.path.clone(),
        rel: "photo.jpg".into(),
        input_format: Format::Jpeg,
        bytes: photo.bytes.len() as u64,
        group: 0,
    };
    let ctx = Context {
        mode: Mode {
            overwrite: true,
            ..Mode::default()
        },
        out_dir: out.to_path_buf(),
        ..Context::new(settings)
    };
    let first = pipeline::process(&job, &ctx, scratch, &JobHandle::detached());
    assert!(
        matches!(first.outcome, Ok(Outcome::Written(_))),
        "process failed: {:?}",
        first.outcome
    );
    group.bench_function(id, |b| {
        b.iter(|| pipeline::process(black_box(&job), &ctx, scratch, &JobHandle::detached()));
    });
}

fn bench_process(c: &mut Criterion) {
    let out = tempfile::tempdir().expect("temp dir");
    let mut scratch = Scratch::default();
    let mut group = c.benchmark_group("process");
    // Iterations take tens of milliseconds: the default linear sampling would run hundreds.
    group.sampling_mode(SamplingMode::Flat);
    for (name, shrink) in SHRINKS {
        let settings = Settings {
            shrink,
            ..settings_for_width(TARGET.0)
        };
        let id = BenchmarkId::new(name, "w800");
        bench_photo_process(&mut group, id, settings, out.path(), &mut scratch);
    }
    group.finish();
}

/// `--quality auto` and `--max-bytes` against the fixed default quality, one lossy format at a
/// time, through `process` on one photo at 800 px: what the search costs per output.
fn bench_tune(c: &mut Criterion) {
    let out = tempfile::tempdir().expect("temp dir");
    let mut scratch = Scratch::default();
    let mut group = c.benchmark_group("tune");
    group.sampling_mode(SamplingMode::Flat);
    for format in [Format::Jpeg, Format::Webp, Format::Avif] {
        for (name, score, max_bytes) in [
            ("fixed", None, None),
            ("auto70", Some(70.0), None),
            ("max40k", None, Some(40 << 10)),
        ] {
            let mut settings = Settings {
                formats: vec![Some(format)],
                ..settings_for_width(TARGET.0)
            };
            settings.tuning.score = score;
            settings.tuning.max_bytes = max_bytes;
            let id = BenchmarkId::new(name, format.name());
            bench_photo_process(&mut group, id, settings, out.path(), &mut scratch);
        }
    }
    group.finish();
}

/// Copies the files (not sub-folders) of `from` into a new folder `to`.
fn copy_files(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create bench input folder");
    for entry in fs::read_dir(from).expect("testdata folder is readable") {
        let path = entry.expect("testdata entry").path();
        if path.is_file() {
            fs::copy(&path, to.join(path.file_name().expect("file name")))
                .expect("copy testdata file");
        }
    }
}

fn bench_run(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let inputs = tmp.path().join("in");
    let out_dir = tmp.path().join("out");
    for sub in ["photos", "orientation"] {
        copy_files(&Path::new(TESTDATA).join(sub), &inputs.join(sub));
    }

    let cpus = num_cpus::get();
    let mut worker_counts = vec![1, 2, 4, cpus];
    worker_counts.retain(|&j| j <= cpus.max(2));
    worker_counts.sort_unstable();
    worker_counts.dedup();

    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let mut group = c.benchmark_group("run");
    group.sampling_mode(SamplingMode::Flat);
    for jobs in worker_counts {
        let jobs_arg = jobs.to_string();
        let mut args: Vec<OsString> = vec![
            "presize".into(),
            inputs.clone().into(),
            "-o".into(),
            out_dir.clone().into(),
        ];
        args.extend(
            [
                "-w",
                "400",
                "-j",
                &jobs_arg,
                "--overwrite",
                "--quiet",
                "--progress",
                "never",
            ]
            .map(OsString::from),
        );
        let cli = Cli::try_parse_from(args).expect("bench command line parses");
        let config = Config::from_cli(cli).expect("bench config is valid");

        let first =
            presize::internals::run(&config, &cancel, Reporter::silent(jobs)).expect("run starts");
        assert!(
            first.failed == 0 && first.written > 0,
            "bench run wrote {} and failed {}: {:?}",
            first.written,
            first.failed,
            first.failures
        );
        group.throughput(Throughput::Elements(first.written));
        group.bench_function(BenchmarkId::new("testdata_w400", format!("j{jobs}")), |b| {
            b.iter(|| {
                presize::internals::run(&config, &cancel, Reporter::silent(jobs))
                    .expect("run starts")
            });
        });
    }
    group.finish();
}

/// Short runs: the whole suite should finish in about three minutes on two cores. Flags such
/// as `--sample-size` or `--measurement-time` on the command line override these.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_progressive, bench_resize, bench_split, bench_encode, bench_process, bench_tune, bench_run
}
criterion_main!(benches);
