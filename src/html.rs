//! `--report FILE.html`: one self-contained page describing a finished run.
//!
//! [`crate::run`] calls [`write()`] once every thread is joined, with the per-file records the
//! reporter collected. The page has inline CSS only, no scripts, fonts or network references, and
//! links every output by a URL relative to the page's own folder, so it works opened straight
//! from disk and keeps working when the page and the outputs are moved together.

use std::fmt::{self, Write as _};
use std::path::{Component, Path, PathBuf, Prefix};

use crate::bench::{self, finite, BenchRow};
use crate::config::{Config, Filter, Settings, Shrink};
use crate::format::Format;
use crate::geometry::{Dim, Fit};
use crate::report::{human_bytes, FileRecord, Summary};

/// Renders the report page. `report_path` is where the page will live, so links to outputs can
/// be made relative to it (the page must work when opened straight from disk).
///
/// The output depends only on the arguments (records are sorted by input path; no clock is
/// read), so the same run renders the same page.
pub(crate) fn render(
    records: &[FileRecord],
    summary: &Summary,
    config: &Config,
    report_path: &Path,
) -> String {
    let mut sorted: Vec<&FileRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.input.cmp(&b.input));
    let base = report_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let page = Page {
        records: &sorted,
        summary,
        config,
        base: resolve(base),
    };
    let mut html = String::with_capacity(16 * 1024 + 1024 * records.len());
    page.write(&mut html)
        .expect("writing to a String cannot fail");
    html
}

/// Renders and writes the report atomically.
pub(crate) fn write(
    records: &[FileRecord],
    summary: &Summary,
    config: &Config,
    report_path: &Path,
) -> Result<(), crate::api::Error> {
    let page = render(records, summary, config, report_path);
    crate::atomic::write_atomic(
        &crate::atomic::WriteTarget::replacing(report_path),
        page.as_bytes(),
    )
    .map_err(|source| crate::api::Error::Report {
        path: report_path.to_owned(),
        source,
    })
}

/// Everything one rendering needs; the sections are its methods, in page order.
struct Page<'a> {
    records: &'a [&'a FileRecord],
    summary: &'a Summary,
    config: &'a Config,
    /// The page's folder, absolute and canonical where it exists; `None` if even the current
    /// folder is unknown.
    base: Option<PathBuf>,
}

/// The whole stylesheet. System fonts only: the page must not fetch anything.
const CSS: &str = "\
:root{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--bg:#f6f8fa;--card:#fff;--good:#1a7f37;\
--bad:#cf222e;--warn:#9a6700;--link:#0969da}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);\
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:22px;margin:0}
h2{font-size:16px;margin:28px 0 10px}
a{color:var(--link);text-decoration:none}
a:hover{text-decoration:underline}
.sub{color:var(--muted);margin:2px 0 16px;overflow-wrap:anywhere}
.banner{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;\
margin:0 0 16px}
.stats{display:flex;flex-wrap:wrap;gap:10px}
.stat{flex:1 1 auto;min-width:110px;background:var(--card);border:1px solid var(--line);\
border-radius:8px;padding:10px 14px}
.stat b{display:block;font-size:19px;font-weight:600;white-space:nowrap}
.stat span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat.bad b{color:var(--bad)}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:0 24px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0;\
background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
dd span{white-space:nowrap}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:6px 12px;border-bottom:1px solid var(--line);vertical-align:top;\
overflow-wrap:anywhere}
th{background:var(--bg);font-weight:600}
td.err{color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:14px}
.card{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;\
display:flex;flex-direction:column}
.thumb{display:flex;align-items:center;justify-content:center;height:200px;padding:8px;\
background:#eef1f4}
.thumb img{display:block;width:100%;height:100%;object-fit:scale-down}
.thumb .none{color:var(--muted);font-size:13px;text-align:center;padding:0 12px}
.meta{padding:8px 12px 10px;font-size:13px;line-height:1.5}
.name{display:block;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.dim,.bytes{color:var(--muted)}
.smaller,.larger{font-weight:600;white-space:nowrap}
.smaller{color:var(--good)}
.larger{color:var(--bad)}
ul.compact{list-style:none;margin:0;padding:10px 14px;background:var(--card);\
border:1px solid var(--line);border-radius:8px;columns:3 260px;font-size:13px}
ul.compact li{overflow-wrap:anywhere}
footer{margin-top:32px;color:var(--muted);font-size:12px}
";

impl Page<'_> {
    fn write(&self, w: &mut String) -> fmt::Result {
        let s = self.summary;
        w.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        // Enforces "no network" in the browser itself: only local images and the inline style.
        w.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             img-src 'self' file: data:; style-src 'unsafe-inline'\">\n",
        );
        w.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        writeln!(
            w,
            "<title>presize report: {} image{}</title>",
            s.inputs,
            plural(s.inputs)
        )?;
        writeln!(w, "<style>\n{CSS}</style>\n</head>\n<body>\n<main>")?;
        self.header(w)?;
        w.push_str("<div class=\"panels\">\n");
        self.settings(w)?;
        self.timing(w)?;
        w.push_str("</div>\n");
        self.failures(w)?;
        self.cards(w)?;
        self.skipped(w)?;
        writeln!(
            w,
            "<footer>Written by presize {}.</footer>\n</main>\n</body>\n</html>",
            env!("CARGO_PKG_VERSION")
        )
    }

    fn header(&self, w: &mut String) -> fmt::Result {
        let s = self.summary;
        let c = self.config;
        w.push_str("<header>\n<h1>presize report</h1>\n<p class=\"sub\">");
        for (i, input) in c.inputs.iter().enumerate() {
            if i > 0 {
                w.push_str(", ");
            }
            write!(w, "{}", EscPath(input))?;
        }
        writeln!(w, " &rarr; {}</p>", EscPath(&c.out_dir))?;
        if s.interrupted {
            w.push_str(
                "<p class=\"banner\">The run was interrupted: the outputs listed are complete, \
                 the rest was not processed.</p>\n",
            );
        }
        if c.dry_run {
            w.push_str("<p class=\"banner\">Dry run: nothing was written.</p>\n");
        }
        w.push_str("<section class=\"stats\">\n");
        stat(w, "", "images", &s.inputs.to_string())?;
        stat(w, "", "written", &s.written.to_string())?;
        if s.planned > 0 {
            stat(w, "", "planned", &s.planned.to_string())?;
        }
        stat(w, "", "skipped", &s.skipped.to_string())?;
        let failed_class = if s.failed > 0 { " bad" } else { "" };
        stat(w, failed_class, "failed", &s.failed.to_string())?;
        stat(w, "", "time", &format!("{:.2} s", s.elapsed.as_secs_f64()))?;
        stat(w, "", "images/s", &format!("{:.1}", s.images_per_s()))?;
        stat(
            w,
            "",
            "bytes before → after",
            &format!("{} → {}", human_bytes(s.bytes_in), human_bytes(s.bytes_out)),
        )?;
        stat(
            w,
            "",
            "saving",
            &saving_percent(s.bytes_in, s.bytes_out).map_or_else(|| "–".into(), |p| p.short()),
        )?;
        w.push_str("</section>\n</header>\n");
        Ok(())
    }

    fn settings(&self, w: &mut String) -> fmt::Result {
        let c = self.config;
        w.push_str("<section>\n<h2>Settings</h2>\n<dl>\n");
        for (label, value) in settings_rows(&c.settings) {
            row(w, label, &value)?;
        }
        row(w, "workers", &c.workers.to_string())?;
        row(w, "overwrite", yes_no(c.overwrite))?;
        w.push_str("</dl>\n</section>\n");
        Ok(())
    }

    fn timing(&self, w: &mut String) -> fmt::Result {
        let s = self.summary;
        let st = &s.stages;
        let secs = |d: std::time::Duration| format!("{:.2} s", d.as_secs_f64());
        w.push_str("<section>\n<h2>Timing</h2>\n<dl>\n");
        row(w, "wall clock", &secs(s.elapsed))?;
        row(
            w,
            "workers",
            &format!("{} worker{}", s.workers, plural(s.workers as u64)),
        )?;
        row(
            w,
            "throughput",
            &format!("{:.1} images/s", s.images_per_s()),
        )?;
        w.push_str("<dt>stages, all workers</dt><dd>");
        let stages = [
            ("read", st.read),
            ("decode", st.decode),
            ("resize", st.resize),
            ("encode", st.encode),
            ("write", st.write),
        ];
        for (i, (name, d)) in stages.into_iter().enumerate() {
            let sep = if i > 0 { " · " } else { "" };
            write!(w, "{sep}<span>{name} {}</span>", secs(d))?;
        }
        w.push_str("</dd>\n</dl>\n</section>\n");
        Ok(())
    }

    /// The records with the given status, in page order.
    fn with_status(&self, status: &str) -> Vec<&FileRecord> {
        self.records
            .iter()
            .copied()
            .filter(|r| r.status == status)
            .collect()
    }

    fn failures(&self, w: &mut String) -> fmt::Result {
        let failed = self.with_status("failed");
        if failed.is_empty() {
            return Ok(());
        }
        writeln!(
            w,
            "<section id=\"failures\">\n<h2>Failures ({})</h2>",
            failed.len()
        )?;
        w.push_str("<table>\n<thead><tr><th>file</th><th>error</th></tr></thead>\n<tbody>\n");
        for r in failed {
            let error = r.error.as_deref().unwrap_or("unknown error");
            writeln!(
                w,
                "<tr><td>{}</td><td class=\"err\">{}</td></tr>",
                EscPath(&r.input),
                Esc(error)
            )?;
        }
        w.push_str("</tbody>\n</table>\n</section>\n");
        Ok(())
    }

    fn cards(&self, w: &mut String) -> fmt::Result {
        let shown: Vec<&FileRecord> = self
            .records
            .iter()
            .copied()
            .filter(|r| matches!(r.status, "written" | "planned") && !r.outputs.is_empty())
            .collect();
        if shown.is_empty() {
            return Ok(());
        }
        let heading = if self.config.dry_run {
            "Would be written"
        } else {
            "Outputs"
        };
        writeln!(
            w,
            "<section id=\"outputs\">\n<h2>{heading} ({})</h2>\n<div class=\"grid\">",
            shown.len()
        )?;
        for r in shown {
            self.card(w, r)?;
        }
        w.push_str("</div>\n</section>\n");
        Ok(())
    }

    fn card(&self, w: &mut String, r: &FileRecord) -> fmt::Result {
        let first = &r.outputs[0];
        let written = r.status == "written";
        let href = self.href(&first.path);
        let name = self.output_name(&first.path);
        w.push_str("<figure class=\"card\">\n<div class=\"thumb\">");
        if !written {
            w.push_str("<span class=\"none\">not written (dry run)</span>");
        } else if first.format == Format::Tiff {
            // Browsers do not display TIFF; a broken-image icon would look like a failure.
            write!(
                w,
                "<a class=\"none\" href=\"{}\">TIFF: no preview in browsers</a>",
                Esc(&href)
            )?;
        } else {
            write!(
                w,
                "<a href=\"{0}\"><img src=\"{0}\" loading=\"lazy\" decoding=\"async\" \
                 alt=\"{1}\" width=\"{2}\" height=\"{3}\"></a>",
                Esc(&href),
                Esc(&name),
                first.width,
                first.height
            )?;
        }
        w.push_str("</div>\n<figcaption class=\"meta\">");
        let title = format!(
            "{} → {}",
            r.input.to_string_lossy(),
            first.path.to_string_lossy()
        );
        if written {
            write!(
                w,
                "<a class=\"name\" href=\"{}\" title=\"{}\">{}</a>",
                Esc(&href),
                Esc(&title),
                Esc(&name)
            )?;
        } else {
            write!(
                w,
                "<span class=\"name\" title=\"{}\">{}</span>",
                Esc(&title),
                Esc(&name)
            )?;
        }
        let before = r
            .input_size
            .map_or_else(|| "?".to_string(), |(iw, ih)| format!("{iw}×{ih}"));
        write!(
            w,
            "<span class=\"dim\">{before} → {}×{} {}</span><br>",
            first.width,
            first.height,
            first.format.display_name()
        )?;
        if written {
            let out: u64 = r.outputs.iter().map(|o| o.bytes).sum();
            write!(
                w,
                "<span class=\"bytes\">{} → {}</span>",
                human_bytes(r.input_bytes),
                human_bytes(out)
            )?;
            if let Some(p) = saving_percent(r.input_bytes, out) {
                write!(
                    w,
                    " <span class=\"{}\" title=\"{}\">{}</span>",
                    p.class(),
                    p.words(),
                    p.delta()
                )?;
            }
        }
        for extra in &r.outputs[1..] {
            let name = self.output_name(&extra.path);
            if written {
                write!(
                    w,
                    "<br>also <a href=\"{}\">{}</a>",
                    Esc(&self.href(&extra.path)),
                    Esc(&name)
                )?;
            } else {
                write!(w, "<br>also {}", Esc(&name))?;
            }
        }
        w.push_str("</figcaption>\n</figure>\n");
        Ok(())
    }

    fn skipped(&self, w: &mut String) -> fmt::Result {
        let skipped = self.with_status("skipped");
        if skipped.is_empty() {
            return Ok(());
        }
        writeln!(
            w,
            "<section id=\"skipped\">\n<h2>Skipped ({}): outputs already up to date</h2>\n\
             <ul class=\"compact\">",
            skipped.len()
        )?;
        for r in skipped {
            writeln!(w, "<li>{}</li>", EscPath(&r.input))?;
        }
        w.push_str("</ul>\n</section>\n");
        Ok(())
    }

    /// The output's path below the output folder (its file name if it lies elsewhere).
    fn output_name(&self, path: &Path) -> String {
        path.strip_prefix(&self.config.out_dir)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| path.file_name().map(Path::new))
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// The URL of `target` as written in this page (not yet HTML-escaped).
    fn href(&self, target: &Path) -> String {
        let Some(target_abs) = resolve(target) else {
            return encode_relative(target);
        };
        self.base
            .as_deref()
            .and_then(|base| relative_url(base, &target_abs))
            .unwrap_or_else(|| file_url(&target_abs))
    }
}

// ---- `presize bench --report` ------------------------------------------------------------------

/// Renders the `presize bench --report` page: throughput and parallel efficiency against the
/// worker count, the share of worker time per stage, the table of rows and the run parameters
/// (`params`, label and value, shown in the given order).
///
/// Charts are inline SVG; the page has inline CSS only, no scripts, fonts or network references.
/// Rows are shown by worker count (a stable sort, so repeated counts keep their order). The output
/// depends only on the arguments, so the same rows render the same page.
pub(crate) fn render_bench(rows: &[BenchRow], params: &[(String, String)]) -> String {
    let mut sorted: Vec<&BenchRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.jobs);
    let mut html = String::with_capacity(24 * 1024 + 1024 * rows.len());
    bench_page(&mut html, rows.first(), &sorted, params).expect("writing to a String cannot fail");
    html
}

/// Renders the `presize bench` page and writes it atomically to `report_path`.
pub(crate) fn write_bench(
    rows: &[BenchRow],
    params: &[(String, String)],
    report_path: &Path,
) -> Result<(), crate::api::Error> {
    let page = render_bench(rows, params);
    crate::atomic::write_atomic(
        &crate::atomic::WriteTarget::replacing(report_path),
        page.as_bytes(),
    )
    .map_err(|source| crate::api::Error::Report {
        path: report_path.to_owned(),
        source,
    })
}

/// The run parameters shown on the `--report` page, in page order.
pub(crate) fn bench_params(plan: &bench::Plan) -> Vec<(String, String)> {
    let (args, settings, jobs, repeat) = (&plan.args, &plan.settings, &plan.jobs, plan.repeat);
    let inputs: Vec<String> = args
        .inputs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let counts: Vec<String> = jobs.iter().map(ToString::to_string).collect();
    let cpus = num_cpus::get();
    let mut params = vec![("inputs".to_string(), inputs.join(", "))];
    params.extend(
        settings_rows(settings)
            .into_iter()
            .map(|(label, value)| (label.to_string(), value)),
    );
    params.extend([
        ("worker counts".to_string(), counts.join(", ")),
        (
            "runs per worker count".to_string(),
            format!("{repeat} (the median run is shown)"),
        ),
        (
            "outputs".to_string(),
            if args.write {
                "written to a temporary folder, then deleted"
            } else {
                "encoded, not written"
            }
            .to_string(),
        ),
        (
            "machine".to_string(),
            format!(
                "{} {}, {cpus} CPU{}",
                std::env::consts::OS,
                std::env::consts::ARCH,
                if cpus == 1 { "" } else { "s" }
            ),
        ),
    ]);
    params
}

/// What the bench page adds to [`CSS`]. Series colours are from the Okabe-Ito palette, which
/// stays distinguishable with the common colour-vision deficiencies.
const BENCH_CSS: &str = "\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(440px,100%),1fr));gap:16px}
.scroll{overflow-x:auto}
.chart{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;\
padding:12px 16px 12px}
.chart figcaption{font-weight:600;margin:0 0 2px}
.chart p{color:var(--muted);font-size:12px;margin:0 0 6px}
.chart svg{display:block;width:100%;height:auto}
.chart text{font-size:11px;fill:var(--muted)}
.chart .ttl{font-size:12px}
.chart .axis{stroke:#8c959f}
.chart .gl{stroke:#eaeef2}
.chart .ref{stroke:#d55e00;stroke-opacity:.45;stroke-dasharray:2 3}
.chart .lbl{font-size:11px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;\
stroke-linejoin:round}
.chart .seg{font-size:11px;font-weight:600}
.tput{color:#0072b2;fill:#0072b2;stroke:#0072b2}
.eff{color:#d55e00;fill:#d55e00;stroke:#d55e00}
text.tput,text.eff{stroke:none}
.chart text.lbl.tput,.chart text.ttl.tput{fill:#0072b2}
.chart text.lbl.eff,.chart text.ttl.eff{fill:#d55e00}
polyline.tput{fill:none;stroke-width:2.5;stroke-linejoin:round}
polyline.eff{fill:none;stroke-width:2;stroke-dasharray:6 4;stroke-linejoin:round}
.pt,.mark{stroke:#fff;stroke-width:1.5}
.track{fill:#eef1f4}
.s0{fill:#56b4e9;background:#56b4e9}
.s1{fill:#0072b2;background:#0072b2}
.s2{fill:#e69f00;background:#e69f00}
.s3{fill:#cc79a7;background:#cc79a7}
.s4{fill:#009e73;background:#009e73}
.chart text.on-light{fill:#1f2328}
.chart text.on-dark{fill:#fff}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px;margin:8px 0 0;padding:0;\
font-size:12px;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:6px}
.legend svg{width:24px;height:12px;display:inline}
.key{display:inline-block;width:12px;height:12px;border-radius:2px}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.empty{color:var(--muted);background:var(--card);border:1px solid var(--line);border-radius:8px;\
padding:12px 16px}
";

/// The stages of [`BenchRow::stage_share`], in its order: name and whether its colour is light
/// (labels on it are dark).
const STAGES: [(&str, bool); 5] = [
    ("read", true),
    ("decode", false),
    ("resize", true),
    ("encode", true),
    ("write", false),
];

fn workers(n: usize) -> String {
    format!("{n} worker{}", plural(n as u64))
}

/// `baseline` is the first row measured (speed-up and efficiency are relative to it); `rows` are
/// sorted by worker count.
fn bench_page(
    w: &mut String,
    baseline: Option<&BenchRow>,
    rows: &[&BenchRow],
    params: &[(String, String)],
) -> fmt::Result {
    w.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Enforces "no network" in the browser itself: nothing but the inline style.
    w.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n",
    );
    w.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let counts: Vec<String> = rows.iter().map(|r| r.jobs.to_string()).collect();
    writeln!(
        w,
        "<title>presize bench: {} worker count{}</title>",
        rows.len(),
        plural(rows.len() as u64)
    )?;
    writeln!(
        w,
        "<style>\n{CSS}{BENCH_CSS}</style>\n</head>\n<body>\n<main>"
    )?;
    w.push_str("<header>\n<h1>presize bench</h1>\n<p class=\"sub\">");
    match baseline {
        Some(base) => write!(
            w,
            "Worker threads measured: {}. Each row is the median run; speed-up and efficiency \
             are relative to -j{}.",
            counts.join(", "),
            base.jobs
        )?,
        None => w.push_str("No worker count was measured."),
    }
    w.push_str("</p>\n");
    if rows.iter().any(|r| r.failed > 0) {
        w.push_str(
            "<p class=\"banner\">Some images failed; the figures count only the images that \
             were processed.</p>\n",
        );
    }
    bench_stats(w, rows)?;
    w.push_str("</header>\n");
    if rows.is_empty() {
        w.push_str("<p class=\"empty\">Nothing to chart.</p>\n");
    } else {
        w.push_str("<section>\n<h2>Scaling</h2>\n<div class=\"charts\">\n");
        throughput_chart(w, rows)?;
        stage_chart(w, rows)?;
        w.push_str("</div>\n</section>\n");
        bench_table(w, rows)?;
    }
    if !params.is_empty() {
        w.push_str("<section id=\"parameters\">\n<h2>Parameters</h2>\n<dl>\n");
        for (label, value) in params {
            row(w, label, value)?;
        }
        w.push_str("</dl>\n</section>\n");
    }
    writeln!(
        w,
        "<footer>Written by presize {}.</footer>\n</main>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    )
}

fn bench_stats(w: &mut String, rows: &[&BenchRow]) -> fmt::Result {
    let best = rows.iter().copied().reduce(|a, b| {
        if finite(b.images_per_s) > finite(a.images_per_s) {
            b
        } else {
            a
        }
    });
    let Some(best) = best else { return Ok(()) };
    let last = rows[rows.len() - 1];
    w.push_str("<section class=\"stats\">\n");
    stat(w, "", "images per run", &best.images.to_string())?;
    stat(
        w,
        "",
        &format!("peak images/s ({})", workers(best.jobs)),
        &format!("{:.1}", finite(best.images_per_s)),
    )?;
    stat(
        w,
        "",
        &format!("peak MP/s ({})", workers(best.jobs)),
        &format!("{:.1}", finite(best.megapixels_per_s)),
    )?;
    stat(
        w,
        "",
        &format!("speed-up at {}", workers(last.jobs)),
        &format!("{:.2}×", finite(last.speedup)),
    )?;
    stat(
        w,
        "",
        &format!("efficiency at {}", workers(last.jobs)),
        &format!("{:.0}%", finite(last.efficiency) * 100.0),
    )?;
    let failed = rows.iter().map(|r| r.failed).max().unwrap_or(0);
    let class = if failed > 0 { " bad" } else { "" };
    stat(w, class, "failed per run", &failed.to_string())?;
    w.push_str("</section>\n");
    Ok(())
}

/// Axis ticks from 0: a step of 1, 2, 2.5 or 5 × 10ⁿ and at most five intervals of it that
/// reach at least `max`; returns (step, intervals).
fn nice_axis(max: f64) -> (f64, u32) {
    let max = if finite(max) > 0.0 { max } else { 1.0 };
    let magnitude = 10f64.powf((max / 5.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| (max / step).ceil() <= 5.0)
        .unwrap_or(10.0 * magnitude);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let intervals = (max / step).ceil().clamp(1.0, 5.0) as u32;
    (step, intervals)
}

/// A tick value with no more decimals than the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let mut decimals = 0;
    while decimals < 6
        && ((step * 10f64.powi(decimals)).round() - step * 10f64.powi(decimals)).abs() > 1e-6
    {
        decimals += 1;
    }
    format!("{v:.*}", decimals as usize)
}

/// Both charts share one frame, so a worker count sits at the same place in each.
const CHART_W: f64 = 560.0;
const CHART_H: f64 = 300.0;
const CHART_LEFT: f64 = 58.0;
const CHART_RIGHT: f64 = 58.0;
const CHART_TOP: f64 = 18.0;
const CHART_BOTTOM: f64 = 46.0;

/// The plot area of a chart with `n` worker counts along the x axis.
struct Frame {
    n: f64,
    /// Plot width and height.
    pw: f64,
    ph: f64,
    /// The y of the x axis.
    base: f64,
}

impl Frame {
    fn new(n: usize) -> Frame {
        let ph = CHART_H - CHART_TOP - CHART_BOTTOM;
        Frame {
            n: n.max(1) as f64,
            pw: CHART_W - CHART_LEFT - CHART_RIGHT,
            ph,
            base: CHART_TOP + ph,
        }
    }

    /// The x of the `i`-th worker count: the middle of its slot.
    fn x(&self, i: usize) -> f64 {
        CHART_LEFT + (i as f64 + 0.5) * self.pw / self.n
    }

    fn right(&self) -> f64 {
        CHART_LEFT + self.pw
    }

    /// The axis lines (the right one only with `right_axis`), the worker counts under the x
    /// axis and its title.
    fn frame(&self, w: &mut String, rows: &[&BenchRow], right_axis: bool) -> fmt::Result {
        let (base, right) = (self.base, self.right());
        writeln!(
            w,
            "<line class=\"axis\" x1=\"{CHART_LEFT}\" y1=\"{CHART_TOP}\" x2=\"{CHART_LEFT}\" \
             y2=\"{base}\"/><line class=\"axis\" x1=\"{CHART_LEFT}\" y1=\"{base}\" \
             x2=\"{right:.1}\" y2=\"{base}\"/>"
        )?;
        if right_axis {
            writeln!(
                w,
                "<line class=\"axis\" x1=\"{right:.1}\" y1=\"{CHART_TOP}\" x2=\"{right:.1}\" \
                 y2=\"{base}\"/>"
            )?;
        }
        for (i, r) in rows.iter().enumerate() {
            writeln!(
                w,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                self.x(i),
                base + 16.0,
                r.jobs
            )?;
        }
        writeln!(
            w,
            "<text class=\"ttl\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">worker threads \
             (--jobs)</text>",
            CHART_LEFT + self.pw / 2.0,
            CHART_H - 8.0
        )
    }
}

/// The two vertical scales of the throughput chart: images per second on the left,
/// efficiency (percent) on the right, each rounded up to nice ticks with headroom for labels.
struct DualAxis {
    ips_step: f64,
    ips_n: u32,
    eff_step: f64,
    eff_n: u32,
    base: f64,
    height: f64,
}

impl DualAxis {
    fn new(f: &Frame, rows: &[&BenchRow]) -> DualAxis {
        let max =
            |v: &dyn Fn(&BenchRow) -> f64| rows.iter().map(|r| finite(v(r))).fold(0.0, f64::max);
        let (ips_step, ips_n) = nice_axis(max(&|r| r.images_per_s) * 1.12);
        let (eff_step, eff_n) = nice_axis((max(&|r| r.efficiency) * 100.0 * 1.12).max(100.0));
        DualAxis {
            ips_step,
            ips_n,
            eff_step,
            eff_n,
            base: f.base,
            height: f.ph,
        }
    }

    fn y_ips(&self, v: f64) -> f64 {
        self.base - self.height * finite(v) / (self.ips_step * f64::from(self.ips_n))
    }

    /// `v` is a fraction (1.0 is 100 %).
    fn y_eff(&self, v: f64) -> f64 {
        self.base - self.height * finite(v) * 100.0 / (self.eff_step * f64::from(self.eff_n))
    }
}

fn throughput_chart(w: &mut String, rows: &[&BenchRow]) -> fmt::Result {
    let f = Frame::new(rows.len());
    let axis = DualAxis::new(&f, rows);
    w.push_str("<figure class=\"chart\" id=\"throughput\">\n");
    w.push_str("<figcaption>Throughput and parallel efficiency</figcaption>\n");
    w.push_str(
        "<p>Images per second (left axis) and efficiency: speed-up ÷ worker ratio (right \
         axis).</p>\n",
    );
    writeln!(
        w,
        "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"Images per second \
         and parallel efficiency for each worker count\">"
    )?;
    throughput_axes(w, &f, &axis)?;
    f.frame(w, rows, true)?;
    throughput_series(w, &f, &axis, rows)?;
    w.push_str("</svg>\n<ul class=\"legend\">\n");
    w.push_str(
        "<li><svg viewBox=\"0 0 24 12\" aria-hidden=\"true\"><polyline class=\"tput\" \
         points=\"0,6 24,6\"/><circle class=\"mark tput\" cx=\"12\" cy=\"6\" r=\"4\"/></svg>\
         images/s</li>\n\
         <li><svg viewBox=\"0 0 24 12\" aria-hidden=\"true\"><polyline class=\"eff\" \
         points=\"0,6 24,6\"/><rect class=\"mark eff\" x=\"8\" y=\"2\" width=\"8\" height=\"8\"/>\
         </svg>parallel efficiency</li>\n\
         <li><svg viewBox=\"0 0 24 12\" aria-hidden=\"true\"><line class=\"ref\" x1=\"0\" \
         y1=\"6\" x2=\"24\" y2=\"6\"/></svg>100% efficiency (perfect scaling)</li>\n",
    );
    w.push_str("</ul>\n</figure>\n");
    Ok(())
}

/// The grid and left axis (throughput), the right axis (efficiency: ticks, no grid), the
/// perfect-scaling line and the axis titles.
fn throughput_axes(w: &mut String, f: &Frame, axis: &DualAxis) -> fmt::Result {
    let right = f.right();
    for k in 0..=axis.ips_n {
        let v = axis.ips_step * f64::from(k);
        let y = axis.y_ips(v);
        writeln!(
            w,
            "<line class=\"gl\" x1=\"{CHART_LEFT}\" y1=\"{y:.1}\" x2=\"{right:.1}\" \
             y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            CHART_LEFT - 8.0,
            y + 4.0,
            tick_label(v, axis.ips_step)
        )?;
    }
    for k in 0..=axis.eff_n {
        let e = axis.eff_step * f64::from(k);
        let y = axis.y_eff(e / 100.0);
        writeln!(
            w,
            "<line class=\"axis\" x1=\"{right:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}%</text>",
            right + 4.0,
            right + 7.0,
            y + 4.0,
            tick_label(e, axis.eff_step)
        )?;
    }
    writeln!(
        w,
        "<line class=\"ref\" x1=\"{CHART_LEFT}\" y1=\"{0:.1}\" x2=\"{right:.1}\" y2=\"{0:.1}\"/>",
        axis.y_eff(1.0)
    )?;
    writeln!(
        w,
        "<text class=\"ttl tput\" transform=\"translate(16 {0:.1}) rotate(-90)\" \
         text-anchor=\"middle\">images/s</text>\
         <text class=\"ttl eff\" transform=\"translate({1:.1} {0:.1}) rotate(90)\" \
         text-anchor=\"middle\">parallel efficiency</text>",
        CHART_TOP + f.ph / 2.0,
        CHART_W - 12.0
    )
}

/// Both series: lines first, then the points and their labels on top.
fn throughput_series(
    w: &mut String,
    f: &Frame,
    axis: &DualAxis,
    rows: &[&BenchRow],
) -> fmt::Result {
    let points = |y: &dyn Fn(&BenchRow) -> f64| {
        rows.iter()
            .enumerate()
            .map(|(i, r)| format!("{:.1},{:.1}", f.x(i), y(r)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if rows.len() > 1 {
        writeln!(
            w,
            "<polyline class=\"eff\" points=\"{}\"/>\n<polyline class=\"tput\" points=\"{}\"/>",
            points(&|r| axis.y_eff(r.efficiency)),
            points(&|r| axis.y_ips(r.images_per_s))
        )?;
    }
    for (i, r) in rows.iter().enumerate() {
        let (cx, ye, yi) = (f.x(i), axis.y_eff(r.efficiency), axis.y_ips(r.images_per_s));
        let eff = finite(r.efficiency) * 100.0;
        let ips = finite(r.images_per_s);
        // Each label goes on the side of its point away from the other series' point, so the
        // two never overlap; a label that would drop below the x axis goes above instead.
        let place = |y: f64, above: bool| {
            if above || y + 17.0 > f.base - 2.0 {
                y - 9.0
            } else {
                y + 17.0
            }
        };
        let tput_above = yi <= ye;
        writeln!(
            w,
            "<rect class=\"pt eff\" x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\">\
             <title>{}: efficiency {eff:.0}%, speed-up {:.2}×</title></rect>",
            cx - 4.0,
            ye - 4.0,
            workers(r.jobs),
            finite(r.speedup)
        )?;
        writeln!(
            w,
            "<circle class=\"pt tput\" cx=\"{cx:.1}\" cy=\"{yi:.1}\" r=\"4.5\">\
             <title>{}: {ips:.1} images/s, {:.1} MP/s</title></circle>",
            workers(r.jobs),
            finite(r.megapixels_per_s),
        )?;
        writeln!(
            w,
            "<text class=\"lbl eff\" x=\"{cx:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\">{eff:.0}%</text><text class=\"lbl tput\" x=\"{cx:.1}\" \
             y=\"{:.1}\" text-anchor=\"middle\">{ips:.1}</text>",
            place(ye, !tput_above),
            place(yi, tput_above),
        )?;
    }
    Ok(())
}

fn stage_chart(w: &mut String, rows: &[&BenchRow]) -> fmt::Result {
    let f = Frame::new(rows.len());
    let bar = (0.6 * f.pw / rows.len() as f64).min(64.0);
    w.push_str("<figure class=\"chart\" id=\"stages\">\n");
    w.push_str("<figcaption>Share of worker time per stage</figcaption>\n");
    w.push_str("<p>Time in each stage, summed over all workers, as a share of their total.</p>\n");
    writeln!(
        w,
        "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"Share of worker time \
         per stage for each worker count\">"
    )?;
    for pct in [0u32, 25, 50, 75, 100] {
        let y = f.base - f.ph * f64::from(pct) / 100.0;
        writeln!(
            w,
            "<line class=\"gl\" x1=\"{CHART_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{pct}%</text>",
            f.right(),
            CHART_LEFT - 8.0,
            y + 4.0
        )?;
    }
    f.frame(w, rows, false)?;
    writeln!(
        w,
        "<text class=\"ttl\" transform=\"translate(16 {:.1}) rotate(-90)\" \
         text-anchor=\"middle\">share of worker time</text>",
        CHART_TOP + f.ph / 2.0
    )?;
    for (i, r) in rows.iter().enumerate() {
        let x = f.x(i) - bar / 2.0;
        writeln!(
            w,
            "<g class=\"bar\"><rect class=\"track\" x=\"{x:.1}\" y=\"{CHART_TOP}\" \
             width=\"{bar:.1}\" height=\"{:.1}\"/>",
            f.ph
        )?;
        let total: f64 = r.stage_share.iter().copied().map(finite).sum();
        // Stacked from the bottom in stage order, so read sits on the axis.
        let mut done = 0.0;
        for (s, &(name, light)) in STAGES.iter().enumerate() {
            let share = if total > 0.0 {
                finite(r.stage_share[s]) / total
            } else {
                0.0
            };
            if share <= 0.0 {
                continue;
            }
            let (y0, y1) = (f.base - f.ph * (done + share), f.base - f.ph * done);
            done += share;
            writeln!(
                w,
                "<rect class=\"s{s}\" x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{bar:.1}\" \
                 height=\"{:.1}\"><title>{}: {name} {:.1}% of worker time</title></rect>",
                y1 - y0,
                workers(r.jobs),
                share * 100.0
            )?;
            if y1 - y0 >= 15.0 && bar >= 26.0 {
                writeln!(
                    w,
                    "<text class=\"seg {}\" x=\"{:.1}\" y=\"{:.1}\" \
                     text-anchor=\"middle\">{:.0}%</text>",
                    if light { "on-light" } else { "on-dark" },
                    f.x(i),
                    (y0 + y1) / 2.0 + 4.0,
                    share * 100.0
                )?;
            }
        }
        w.push_str("</g>\n");
    }
    w.push_str("</svg>\n<ul class=\"legend\">\n");
    for (s, (name, _)) in STAGES.iter().enumerate() {
        writeln!(w, "<li><span class=\"key s{s}\"></span>{name}</li>")?;
    }
    w.push_str("</ul>\n</figure>\n");
    Ok(())
}

fn bench_table(w: &mut String, rows: &[&BenchRow]) -> fmt::Result {
    w.push_str(
        "<section id=\"rows\">\n<h2>Measurements (median run per worker count)</h2>\n\
         <div class=\"scroll\">\n<table>\n<thead><tr>",
    );
    for column in &bench::COLUMNS {
        write!(w, "<th class=\"num\">{}</th>", column.head)?;
    }
    w.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        w.push_str("<tr>");
        for column in &bench::COLUMNS {
            let class = if column.head == "failed" && r.failed > 0 {
                "num err"
            } else {
                "num"
            };
            write!(w, "<td class=\"{class}\">{}</td>", (column.cell)(r))?;
        }
        w.push_str("</tr>\n");
    }
    w.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    Ok(())
}

/// The image settings in words, as label and value, in the order both pages show them.
pub(crate) fn settings_rows(st: &Settings) -> Vec<(&'static str, String)> {
    let t = &st.targets[0];
    let size = st
        .targets
        .iter()
        .map(|t| match (t.width, t.height) {
            (Some(wd), Some(h)) => format!("width {}, height {}", dim(wd), dim(h)),
            (Some(wd), None) => format!("width {}", dim(wd)),
            (None, Some(h)) => format!("height {}", dim(h)),
            (None, None) => "unchanged".into(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let fit = match t.fit {
        Fit::Inside => "inside (aspect kept)",
        Fit::Cover => "cover (aspect kept, cropped)",
        Fit::Fill => "fill (aspect ignored)",
        Fit::Contain => "contain (aspect kept, padded)",
    };
    let format = st
        .formats
        .iter()
        .map(|f| f.map_or("same as input", |f: Format| f.display_name()))
        .collect::<Vec<_>>()
        .join(", ");
    let q = st.quality;
    let quality = if st.lossless {
        format!("JPEG {}, WebP lossless", q.jpeg)
    } else {
        format!("JPEG {}, WebP {}, AVIF {}", q.jpeg, q.webp, q.avif)
    };
    let filter = match st.filter {
        Filter::Lanczos3 => "Lanczos3",
        Filter::Mitchell => "Mitchell",
        Filter::CatmullRom => "Catmull-Rom",
        Filter::Bilinear => "bilinear",
        Filter::Box => "box",
        Filter::Nearest => "nearest",
    };
    let shrink = match st.shrink {
        Shrink::Quality => "quality (keeps 2× the target)",
        Shrink::Fast => "fast",
        Shrink::Off => "off",
    };
    let [r, g, b] = st.background;
    vec![
        ("target size", size),
        ("fit", fit.into()),
        ("upscale", yes_no(t.upscale).into()),
        ("format", format),
        ("quality", quality),
        ("filter", filter.into()),
        ("JPEG shrink-on-load", shrink.into()),
        ("background", format!("#{r:02x}{g:02x}{b:02x}")),
    ]
}

/// One tile of the summary; `class` is empty or starts with a space.
fn stat(w: &mut String, class: &str, label: &str, value: &str) -> fmt::Result {
    writeln!(
        w,
        "<div class=\"stat{class}\"><b>{}</b><span>{}</span></div>",
        Esc(value),
        Esc(label)
    )
}

fn row(w: &mut String, label: &str, value: &str) -> fmt::Result {
    writeln!(w, "<dt>{}</dt><dd>{}</dd>", Esc(label), Esc(value))
}

fn dim(d: Dim) -> String {
    match d {
        Dim::Px(v) => format!("{v} px"),
        Dim::Percent(_) => d.to_string(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// How much smaller (positive) or larger (negative) the output is, in percent of the input.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Saving(f64);

impl Saving {
    /// As a saving: "93%", or "−12%" when the output grew.
    fn short(self) -> String {
        if self.0 >= 0.0 {
            format!("{:.0}%", self.0)
        } else {
            format!("−{:.0}%", -self.0)
        }
    }

    /// As a change in size: "−93%" (smaller), "+12%" (larger).
    fn delta(self) -> String {
        if self.0 >= 0.0 {
            format!("−{:.0}%", self.0)
        } else {
            format!("+{:.0}%", -self.0)
        }
    }

    fn words(self) -> String {
        if self.0 >= 0.0 {
            format!("{:.0}% smaller", self.0)
        } else {
            format!("{:.0}% larger", -self.0)
        }
    }

    fn class(self) -> &'static str {
        if self.0 >= 0.0 {
            "smaller"
        } else {
            "larger"
        }
    }
}

fn saving_percent(before: u64, after: u64) -> Option<Saving> {
    (before > 0).then(|| Saving((1.0 - after as f64 / before as f64) * 100.0))
}

/// HTML-escapes text for element content and double- or single-quoted attribute values.
pub(crate) struct Esc<'a>(pub(crate) &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A path shown as text: lossily decoded, then escaped.
struct EscPath<'a>(&'a Path);

impl fmt::Display for EscPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Esc(&self.0.to_string_lossy()).fmt(f)
    }
}

/// Makes `path` absolute and canonical as far as it exists, so that the page's folder and the
/// outputs are compared on the same terms even through symlinks (`/tmp` → `/private/tmp`). The
/// page's folder may not exist yet when the page is rendered, hence the partial canonicalisation.
/// `None` only if the current folder is unknown.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(canonical) = path.canonicalize() {
        return Some(canonical);
    }
    let mut missing = Vec::new();
    let mut existing = PathBuf::new();
    for c in std::path::absolute(path).ok()?.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if missing.pop().is_none() {
                    existing.pop();
                }
            }
            Component::Normal(name) if !missing.is_empty() || !existing.join(name).exists() => {
                missing.push(name.to_os_string());
            }
            other => existing.push(other),
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(missing);
    Some(out)
}

/// The relative URL from folder `base` to file `target`, both absolute and normalised; `None`
/// when they share no root (another drive on Windows).
fn relative_url(base: &Path, target: &Path) -> Option<String> {
    let base: Vec<Component> = base.components().collect();
    let target: Vec<Component> = target.components().collect();
    if base.first() != target.first() {
        return None;
    }
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    if common == target.len() {
        return None;
    }
    let mut url = "../".repeat(base.len() - common);
    for (i, c) in target[common..].iter().enumerate() {
        if i > 0 {
            url.push('/');
        }
        match c {
            Component::Normal(name) => percent_encode(name.as_encoded_bytes(), &mut url),
            // Normalised paths have nothing else after the shared root.
            _ => return None,
        }
    }
    Some(url)
}

/// An absolute `file://` URL, for outputs that no relative URL reaches.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for c in path.components() {
        match c {
            Component::Prefix(p) => match p.kind() {
                Prefix::Disk(d) | Prefix::VerbatimDisk(d) => {
                    let _ = write!(url, "/{}:", char::from(d));
                }
                Prefix::UNC(server, share) | Prefix::VerbatimUNC(server, share) => {
                    // file://server/share/… : the server is the URL's host.
                    url.truncate("file:".len());
                    url.push_str("//");
                    percent_encode(server.as_encoded_bytes(), &mut url);
                    url.push('/');
                    percent_encode(share.as_encoded_bytes(), &mut url);
                }
                _ => percent_encode(p.as_os_str().as_encoded_bytes(), &mut url),
            },
            Component::RootDir => {}
            Component::Normal(name) => {
                url.push('/');
                percent_encode(name.as_encoded_bytes(), &mut url);
            }
            Component::CurDir => url.push_str("/."),
            Component::ParentDir => url.push_str("/.."),
        }
    }
    if url.len() == "file://".len() {
        url.push('/');
    }
    url
}

/// Last resort when even the current folder is unknown: the path as given, as a relative URL.
fn encode_relative(path: &Path) -> String {
    let mut url = String::new();
    for (i, c) in path.components().enumerate() {
        if i > 0 {
            url.push('/');
        }
        percent_encode(c.as_os_str().as_encoded_bytes(), &mut url);
    }
    url
}

/// Appends one path segment, percent-encoding every byte that is not plainly safe in a URL path.
/// `:` is encoded too, so a segment like `a:b.jpg` is never read as a URL scheme.
fn percent_encode(segment: &[u8], url: &mut String) {
    for &b in segment {
        if b.is_ascii_alphanumeric() || b"-._~!$'()*+,;=@".contains(&b) {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::cli::Cli;
    use crate::job::Output;

    fn config(extra: &[&str]) -> Config {
        let photos = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/photos");
        let mut argv = vec!["presize", photos, "-o", "out", "-w", "200"];
        argv.extend_from_slice(extra);
        Config::from_cli(Cli::try_parse_from(argv).expect("clap accepts")).expect("valid config")
    }

    fn written(input: &str, output: &str) -> FileRecord {
        FileRecord {
            input: input.into(),
            input_bytes: 40_000,
            input_size: Some((1600, 1200)),
            status: "written",
            outputs: vec![Output {
                path: output.into(),
                width: 200,
                height: 150,
                format: Format::Jpeg,
                bytes: 10_000,
                saved: 0,
            }],
            error: None,
        }
    }

    fn failed(input: &str, error: &str) -> FileRecord {
        FileRecord {
            input: input.into(),
            input_bytes: 123,
            input_size: None,
            status: "failed",
            outputs: Vec::new(),
            error: Some(error.into()),
        }
    }

    fn summary() -> Summary {
        Summary {
            inputs: 3,
            written: 2,
            failed: 1,
            bytes_in: 80_000,
            bytes_out: 20_000,
            elapsed: Duration::from_millis(1500),
            workers: 2,
            ..Summary::default()
        }
    }

    fn page(records: &[FileRecord]) -> String {
        render(records, &summary(), &config(&[]), Path::new("report.html"))
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            Esc(r#"<a href="x">Tom & 'Jerry'</a>"#).to_string(),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(Esc("plain é").to_string(), "plain é");
    }

    #[test]
    fn file_names_are_escaped_everywhere_in_the_page() {
        let html = page(&[
            written("in/<b>x&y\".jpg", "out/<b>x&y\".jpg"),
            failed("in/<script>.jpg", "cannot decode JPEG: <bad> & \"worse\""),
        ]);
        assert!(!html.contains("<b>x"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;b&gt;x&amp;y&quot;.jpg"), "{html}");
        assert!(html.contains("src=\"out/%3Cb%3Ex%26y%22.jpg\""), "{html}");
        assert!(
            html.contains("cannot decode JPEG: &lt;bad&gt; &amp; &quot;worse&quot;"),
            "{html}"
        );
    }

    #[test]
    fn a_failure_appears_with_its_error() {
        let html = page(&[
            written("in/a.jpg", "out/a.jpg"),
            failed("in/broken.jpg", "cannot decode JPEG: premature end of data"),
        ]);
        let failures = &html[html.find("id=\"failures\"").expect("failures section")..];
        let row = &failures[..failures.find("</tr>\n</tbody>").unwrap()];
        assert!(row.contains("in/broken.jpg"), "{row}");
        assert!(
            row.contains("cannot decode JPEG: premature end of data"),
            "{row}"
        );
        assert!(!page(&[written("in/a.jpg", "out/a.jpg")]).contains("id=\"failures\""));
    }

    #[test]
    fn the_page_references_nothing_on_the_network() {
        let mut skipped = written("in/c.jpg", "out/c.jpg");
        skipped.status = "skipped";
        skipped.outputs.clear();
        let html = page(&[
            written("in/a.jpg", "out/a.jpg"),
            failed("in/b.jpg", "oops"),
            skipped,
        ]);
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link"));
        assert!(!html.contains("@import") && !html.contains("url("));
    }

    #[test]
    fn records_are_shown_in_input_order_whatever_order_they_finished_in() {
        let a = written("in/a.jpg", "out/a.jpg");
        let b = written("in/b.jpg", "out/b.jpg");
        let c = failed("in/c.jpg", "oops");
        let forward = page(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(forward, page(&[c, b, a]));
        assert!(forward.find("out/a.jpg").unwrap() < forward.find("out/b.jpg").unwrap());
    }

    #[test]
    fn cards_show_sizes_before_and_after_and_the_saving() {
        let html = page(&[written("in/a.jpg", "out/a.jpg")]);
        assert!(html.contains("1600×1200 → 200×150 JPEG"), "{html}");
        assert!(html.contains("40.0 KB → 10.0 KB"), "{html}");
        assert!(html.contains("title=\"75% smaller\">−75%"), "{html}");
        assert!(html.contains("loading=\"lazy\""), "{html}");
    }

    #[test]
    fn relative_urls_climb_out_of_the_report_folder_as_needed() {
        #[cfg(unix)]
        let root = "/";
        #[cfg(windows)]
        let root = "C:\\";
        let p = |s: &str| Path::new(root).join(s);
        let cases = [
            ("r", "r/out/a.jpg", "out/a.jpg"),
            ("r/out", "r/out/a.jpg", "a.jpg"),
            ("r/reports", "r/out/a.jpg", "../out/a.jpg"),
            ("a/b/c", "x/y.jpg", "../../../x/y.jpg"),
            (
                "r",
                "r/sub dir/a b#1?%.jpg",
                "sub%20dir/a%20b%231%3F%25.jpg",
            ),
            (
                "r",
                "r/été & co/x:y.jpg",
                "%C3%A9t%C3%A9%20%26%20co/x%3Ay.jpg",
            ),
        ];
        for (base, target, want) in cases {
            assert_eq!(
                relative_url(&p(base), &p(target)).as_deref(),
                Some(want),
                "{base} → {target}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn file_urls_are_absolute_and_encoded() {
        assert_eq!(
            file_url(Path::new("/tmp/a b/ü#.jpg")),
            "file:///tmp/a%20b/%C3%BC%23.jpg"
        );
    }

    #[test]
    fn links_are_relative_whether_paths_are_given_relative_or_absolute() {
        // Tests run in the crate root, so relative paths resolve against it.
        let rel = Path::new("testdata/photos/rocket_640x427_adobergb_icc.jpg");
        let abs = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        let want = "testdata/photos/rocket_640x427_adobergb_icc.jpg";
        for report in [
            PathBuf::from("report.html"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("report.html"),
        ] {
            for target in [rel, abs.as_path()] {
                let html = render(
                    &[written("in/r.jpg", target.to_str().unwrap())],
                    &summary(),
                    &config(&[]),
                    &report,
                );
                assert!(
                    html.contains(&format!("src=\"{want}\"")),
                    "{} / {}",
                    report.display(),
                    target.display()
                );
            }
        }
    }

    #[test]
    fn the_report_folder_need_not_exist_yet() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("a.jpg"), b"x").unwrap();
        let report = tmp.path().join("not/yet/../there/report.html");
        let html = render(
            &[written("in/a.jpg", out.join("a.jpg").to_str().unwrap())],
            &summary(),
            &config(&[]),
            &report,
        );
        assert!(html.contains("src=\"../../out/a.jpg\""), "{html}");
    }

    fn bench_row(jobs: usize, images_per_s: f64, efficiency: f64) -> BenchRow {
        BenchRow {
            jobs,
            images: 6,
            failed: 0,
            wall_s: 6.0 / images_per_s,
            images_per_s,
            megapixels_per_s: images_per_s * 0.6,
            speedup: efficiency * jobs as f64,
            efficiency,
            stage_share: [0.01, 0.2, 0.7, 0.08, 0.01],
            p50_ms: 80.0,
            p95_ms: 120.0,
        }
    }

    fn bench_rows() -> Vec<BenchRow> {
        vec![
            bench_row(1, 10.0, 1.0),
            bench_row(2, 18.0, 0.9),
            bench_row(4, 30.0, 0.75),
        ]
    }

    fn params() -> Vec<(String, String)> {
        vec![
            ("inputs".into(), "photos".into()),
            ("target size".into(), "width 200 px".into()),
        ]
    }

    #[test]
    fn bench_page_charts_every_row_once() {
        let html = render_bench(&bench_rows(), &params());
        assert_eq!(
            html.matches("<svg viewBox=\"0 0 560 300\"").count(),
            2,
            "{html}"
        );
        assert_eq!(html.matches("class=\"pt tput\"").count(), 3, "{html}");
        assert_eq!(html.matches("class=\"pt eff\"").count(), 3, "{html}");
        assert_eq!(html.matches("<g class=\"bar\">").count(), 3, "{html}");
        let table = &html[html.find("id=\"rows\"").expect("a table of rows")..];
        assert_eq!(table.matches("<tr><td").count(), 3, "{table}");
        // Five stages per bar, each with its share in a tooltip.
        assert_eq!(html.matches("% of worker time</title>").count(), 15);
        assert!(
            html.contains("<title>4 workers: 30.0 images/s, 18.0 MP/s</title>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"num\">75%</td>"), "{html}");
        assert!(
            html.contains("<dt>target size</dt><dd>width 200 px</dd>"),
            "{html}"
        );
    }

    #[test]
    fn bench_page_orders_by_worker_count_and_is_deterministic() {
        let mut rows = bench_rows();
        rows.rotate_left(2); // measured as -j4, -j1, -j2
        let html = render_bench(&rows, &params());
        assert_eq!(html, render_bench(&rows, &params()));
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
        assert!(at("<title>1 worker: ") < at("<title>2 workers: "));
        assert!(at("<title>2 workers: ") < at("<title>4 workers: "));
        // Speed-up and efficiency are relative to the first row measured, whatever its place.
        assert!(html.contains("relative to -j4."), "{html}");
    }

    #[test]
    fn bench_page_escapes_parameters() {
        let params = vec![(
            "in<put>".to_string(),
            "<script>alert('x')</script> & \"q\"".to_string(),
        )];
        let html = render_bench(&bench_rows(), &params);
        assert!(
            !html.contains("<script") && !html.contains("<put>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<dt>in&lt;put&gt;</dt><dd>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; \
                 &amp; &quot;q&quot;</dd>"
            ),
            "{html}"
        );
    }

    #[test]
    fn bench_page_references_nothing_on_the_network() {
        let html = render_bench(&bench_rows(), &params());
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("<img"));
        assert!(
            !html.contains("@import") && !html.contains("url(") && !html.contains("@font-face")
        );
        assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    }

    #[test]
    fn bench_page_copes_with_no_rows_and_odd_values() {
        let empty = render_bench(&[], &params());
        assert!(
            !empty.contains("<svg") && empty.contains("Nothing to chart."),
            "{empty}"
        );

        let mut odd = bench_row(2, f64::NAN, f64::INFINITY);
        odd.images = 0;
        odd.failed = 3;
        odd.stage_share = [0.0; 5];
        let html = render_bench(&[bench_row(1, 0.0, 0.0), odd], &[]);
        for bad in ["NaN", ">inf", "\"inf", ",inf", "inf%", "inf×"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert_eq!(html.matches("class=\"pt tput\"").count(), 2);
        assert!(html.contains("class=\"banner\""), "{html}");
        assert!(!html.contains("id=\"parameters\""));
    }

    #[test]
    fn axes_use_round_steps() {
        assert_eq!(nice_axis(22.4), (5.0, 5));
        assert_eq!(nice_axis(112.0), (25.0, 5));
        assert_eq!(nice_axis(7.0), (2.0, 4));
        assert_eq!(nice_axis(0.0), (0.2, 5));
        assert_eq!(tick_label(7.5, 2.5), "7.5");
        assert_eq!(tick_label(10.0, 2.5), "10.0");
        assert_eq!(tick_label(40.0, 20.0), "40");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
    }
}
