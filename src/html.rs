//! `--report FILE.html`: one self-contained page describing a finished run.
//!
//! [`crate::run`] calls [`write()`] once every thread is joined, with the per-file records the
//! reporter collected. The page has inline CSS only, no scripts, fonts or network references, and
//! links every output by a URL relative to the page's own folder, so it works opened straight
//! from disk and keeps working when the page and the outputs are moved together.

use std::fmt::{self, Write as _};
use std::path::{Component, Path, PathBuf, Prefix};

use crate::config::{Config, Filter, Shrink};
use crate::format::Format;
use crate::geometry::{Dim, Fit};
use crate::report::{human_bytes, FileRecord, Summary};

/// Renders the report page. `report_path` is where the page will live, so links to outputs can
/// be made relative to it (the page must work when opened straight from disk).
///
/// The output depends only on the arguments (records are sorted by input path; no clock is
/// read), so the same run renders the same page.
pub fn render(
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
pub fn write(
    records: &[FileRecord],
    summary: &Summary,
    config: &Config,
    report_path: &Path,
) -> anyhow::Result<()> {
    let page = render(records, summary, config, report_path);
    crate::pipeline::encode::write_atomic(report_path, page.as_bytes(), true)
        .map_err(|e| anyhow::anyhow!("cannot write report {}: {e}", report_path.display()))
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
        let st = &c.settings;
        let t = &st.target;
        let size = match (t.width, t.height) {
            (Some(wd), Some(h)) => format!("width {}, height {}", dim(wd), dim(h)),
            (Some(wd), None) => format!("width {}", dim(wd)),
            (None, Some(h)) => format!("height {}", dim(h)),
            (None, None) => "unchanged".into(),
        };
        let fit = match t.fit {
            Fit::Inside => "inside (aspect kept)",
            Fit::Cover => "cover (aspect kept, cropped)",
            Fit::Fill => "fill (aspect ignored)",
            Fit::Contain => "contain (aspect kept, padded)",
        };
        let format = st
            .format
            .map_or("same as input", |f: Format| f.display_name());
        let quality = if st.lossless {
            format!("{} (lossless WebP)", st.quality)
        } else {
            st.quality.to_string()
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
        w.push_str("<section>\n<h2>Settings</h2>\n<dl>\n");
        row(w, "target size", &size)?;
        row(w, "fit", fit)?;
        row(w, "upscale", yes_no(t.upscale))?;
        row(w, "format", format)?;
        row(w, "quality", &quality)?;
        row(w, "filter", filter)?;
        row(w, "JPEG shrink-on-load", shrink)?;
        row(w, "background", &format!("#{r:02x}{g:02x}{b:02x}"))?;
        row(w, "jobs", &c.jobs.to_string())?;
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

    fn failures(&self, w: &mut String) -> fmt::Result {
        let failed: Vec<&FileRecord> = self
            .records
            .iter()
            .copied()
            .filter(|r| r.status == "failed")
            .collect();
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
        let skipped: Vec<&FileRecord> = self
            .records
            .iter()
            .copied()
            .filter(|r| r.status == "skipped")
            .collect();
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
struct Esc<'a>(&'a str);

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
    use crate::pipeline::Output;

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
}
