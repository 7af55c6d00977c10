//! Output file-name templates: `--name '{stem}-{width}w.{ext}'`.
//!
//! A [`Template`] is parsed once (by `Config`) and rendered for every output of every source.
//! Rendering is pure: it builds a path relative to the output folder and guarantees that the
//! path stays inside it, whatever the template and the source names contain.
//!
//! Placeholders:
//!
//! | placeholder | value |
//! |---|---|
//! | `{stem}` | the source's file name without its last extension (`IMG_0001` for `IMG_0001.JPG`) |
//! | `{ext}` | the output's extension, as chosen by the caller (normally the output format's, or the source's own spelling such as `JPG` for a same-format output) |
//! | `{width}` `{height}` | the output's size in pixels |
//! | `{format}` | the output format's name (`jpeg`, `webp`, …) |
//! | `{hash}` | a short hash of the source's content (see [`crate::hash::short_hash`]) |
//! | `{dir}` | the source's folder relative to the input root, `/`-separated, empty at the top |
//!
//! `{{` and `}}` stand for literal braces. `/` in a template makes folders below the output
//! folder; `\` is refused so that a template means the same thing on every platform.
//!
//! Folder mirroring: the template is the path below the output folder, and `{dir}` is where
//! the source's folder goes. A template without `{dir}` gets `{dir}/` in front, so the input tree
//! is mirrored exactly as without `--name`; `{dir}/thumbs/{stem}.{ext}` or
//! `{width}/{dir}/{stem}.{ext}` place it elsewhere. Empty levels vanish: at the top of the tree
//! `{dir}/{stem}.{ext}` renders as `stem.ext`, never `/stem.ext`. A flat output (a possible
//! `--flat`) is the caller passing an empty `dir`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::format::Format;

/// A value a template can insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `{stem}`.
    Stem,
    /// `{ext}`.
    Ext,
    /// `{width}`.
    Width,
    /// `{height}`.
    Height,
    /// `{format}`.
    Format,
    /// `{hash}`.
    Hash,
    /// `{dir}`.
    Dir,
}

impl Var {
    const ALL: [Var; 7] = [
        Var::Stem,
        Var::Ext,
        Var::Width,
        Var::Height,
        Var::Format,
        Var::Hash,
        Var::Dir,
    ];

    /// The placeholder's name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Var::Stem => "stem",
            Var::Ext => "ext",
            Var::Width => "width",
            Var::Height => "height",
            Var::Format => "format",
            Var::Hash => "hash",
            Var::Dir => "dir",
        }
    }

    fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Why a template was refused, or why it could not be rendered for one output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is the empty string.
    #[error("the name template is empty")]
    Empty,
    /// `{something}` that presize does not know.
    #[error(
        "unknown placeholder {{{0}}} in the name template; \
         known: {{stem}} {{ext}} {{width}} {{height}} {{format}} {{hash}} {{dir}}"
    )]
    UnknownPlaceholder(String),
    /// A `{` without its `}`.
    #[error("unclosed '{{' at byte {0} of the name template (write '{{{{' for a literal brace)")]
    Unclosed(usize),
    /// A `}` without its `{`.
    #[error("unmatched '}}' at byte {0} of the name template (write '}}}}' for a literal brace)")]
    Unmatched(usize),
    /// The template starts at the file-system root.
    #[error("the name template must be relative to the output folder, not start with '/'")]
    Absolute,
    /// A `..` folder, which would climb out of the output folder.
    #[error("the name template must not contain a '..' folder")]
    ParentDir,
    /// A backslash, which is a separator on Windows only.
    #[error("the name template must use '/' to separate folders, not '\\'")]
    Backslash,
    /// A NUL character, which no file system accepts.
    #[error("the name template must not contain a NUL character")]
    Nul,
    /// The template ends with `/`, so it names a folder, not a file.
    #[error("the name template ends with '/' and so names no file")]
    NoFileName,
    /// `{hash}` is used but the caller supplied no content hash.
    #[error("the name template uses {{hash}} but no content hash was computed")]
    MissingHash,
    /// A substituted value made an unusable path (e.g. a `..` folder or an empty file name).
    #[error("the name template renders to an unusable path: {0}")]
    BadRender(String),
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed `--name` template. Cheap to clone and render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// The values for one output.
#[derive(Debug, Clone, Copy)]
pub struct NameVars<'a> {
    /// The source's folder relative to the input root (empty at the top).
    pub dir: &'a Path,
    /// The source's file stem; kept byte for byte, even when it is not UTF-8.
    pub stem: &'a OsStr,
    /// The output's extension without the dot.
    pub ext: &'a str,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Output format.
    pub format: Format,
    /// Short content hash of the source; required only when the template uses `{hash}`.
    pub hash: Option<&'a str>,
}

impl Template {
    /// Parses a template, refusing anything that could name a path outside the output folder
    /// (`../{stem}.{ext}` is refused).
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        if s.is_empty() {
            return Err(TemplateError::Empty);
        }
        if s.contains('\0') {
            return Err(TemplateError::Nul);
        }
        if s.contains('\\') {
            return Err(TemplateError::Backslash);
        }
        if s.starts_with('/') || Path::new(s).is_absolute() {
            return Err(TemplateError::Absolute);
        }
        if s.ends_with('/') {
            return Err(TemplateError::NoFileName);
        }
        let pieces = split_pieces(s)?;
        // A literal `..` folder is refused here so the user hears about it before any work; one
        // produced by substitution is caught again in `render`.
        if literal_components(&pieces).any(|c| c == "..") {
            return Err(TemplateError::ParentDir);
        }
        Ok(Template {
            source: s.to_owned(),
            pieces,
        })
    }

    /// The default: `{stem}.{ext}` for one width, `{stem}-{width}w.{ext}` for several.
    pub fn default_for(widths: usize) -> Template {
        let source = if widths > 1 {
            "{stem}-{width}w.{ext}"
        } else {
            "{stem}.{ext}"
        };
        // Both literals are valid templates; the fallback keeps this total without a panic.
        Template::parse(source).unwrap_or_else(|_| Template {
            source: source.to_owned(),
            pieces: vec![Piece::Var(Var::Stem)],
        })
    }

    /// The template as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Returns true if and only if the template contains the placeholder `var`.
    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// Returns true if and only if the template needs the source's content hash, so the caller
    /// must read and hash each source before naming its outputs.
    pub fn uses_hash(&self) -> bool {
        self.uses(Var::Hash)
    }

    /// Checks, before any work, whether distinct outputs of one run could get the same name.
    ///
    /// `widths` and `formats` are how many output widths and formats each source produces.
    /// Returns a message naming every problem, or `None`. `{height}` does not count as telling
    /// widths apart: two widths can share a height (`-w 320,640 -H 200 --fit cover`).
    pub fn can_collide(&self, widths: usize, formats: usize) -> Option<String> {
        let mut problems = Vec::new();
        if widths > 1 && !self.uses(Var::Width) {
            problems.push(format!(
                "{widths} widths per image but no {{width}}, so they would overwrite each other"
            ));
        }
        if formats > 1 && !self.uses(Var::Ext) && !self.uses(Var::Format) {
            problems.push(format!(
                "{formats} formats per image but no {{ext}} or {{format}}, \
                 so they would overwrite each other"
            ));
        }
        if !self.uses(Var::Stem) && !self.uses(Var::Hash) {
            problems.push(
                "no {stem} or {hash}, so all images in a folder would get the same name".to_owned(),
            );
        }
        if problems.is_empty() {
            None
        } else {
            Some(format!(
                "name template '{}': {}",
                self.source,
                problems.join("; ")
            ))
        }
    }

    /// Renders the output path for one output, relative to the output folder.
    ///
    /// Without `{dir}` in the template, the result is placed in `vars.dir`. The result never
    /// contains `..`, a root or a prefix, and its file name is never empty.
    pub fn render(&self, vars: &NameVars<'_>) -> Result<PathBuf, TemplateError> {
        let dir = relative_dir(vars.dir)?;
        check_stem(vars.stem)?;
        let mut parts = Components::default();
        if !self.uses(Var::Dir) {
            for c in &dir {
                parts.push_str(c);
                parts.end();
            }
        }
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => parts.push_text(text),
                Piece::Var(Var::Stem) => parts.push_str(vars.stem),
                Piece::Var(Var::Ext) => parts.push_text(vars.ext),
                Piece::Var(Var::Width) => parts.push_text(&vars.width.to_string()),
                Piece::Var(Var::Height) => parts.push_text(&vars.height.to_string()),
                Piece::Var(Var::Format) => parts.push_text(vars.format.name()),
                Piece::Var(Var::Hash) => {
                    parts.push_text(vars.hash.ok_or(TemplateError::MissingHash)?)
                }
                Piece::Var(Var::Dir) => {
                    for (i, c) in dir.iter().enumerate() {
                        if i > 0 {
                            parts.end();
                        }
                        parts.push_str(c);
                    }
                }
            }
        }
        parts.finish()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

/// Splits template text into literal text and placeholders, resolving `{{` and `}}`.
fn split_pieces(s: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s.char_indices().peekable();
    while let Some((at, ch)) = rest.next() {
        match ch {
            '{' if rest.peek().is_some_and(|&(_, c)| c == '{') => {
                rest.next();
                text.push('{');
            }
            '}' if rest.peek().is_some_and(|&(_, c)| c == '}') => {
                rest.next();
                text.push('}');
            }
            '}' => return Err(TemplateError::Unmatched(at)),
            '{' => {
                let close = s[at..].find('}').ok_or(TemplateError::Unclosed(at))?;
                let name = &s[at + 1..at + close];
                if name.contains('{') {
                    return Err(TemplateError::Unclosed(at));
                }
                let var = Var::from_name(name)
                    .ok_or_else(|| TemplateError::UnknownPlaceholder(name.to_owned()))?;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(var));
                while rest.peek().is_some_and(|&(i, _)| i <= at + close) {
                    rest.next();
                }
            }
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The folder components made only of literal text (those a substitution cannot change).
fn literal_components(pieces: &[Piece]) -> impl Iterator<Item = String> + '_ {
    let mut components = vec![(String::new(), true)];
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                let mut segments = text.split('/');
                if let (Some(first), Some(last)) = (segments.next(), components.last_mut()) {
                    last.0.push_str(first);
                }
                components.extend(segments.map(|s| (s.to_owned(), true)));
            }
            Piece::Var(_) => {
                if let Some(last) = components.last_mut() {
                    last.1 = false;
                }
            }
        }
    }
    components
        .into_iter()
        .filter(|(_, literal)| *literal)
        .map(|(c, _)| c)
}

/// The normal components of the source's relative folder; anything else is refused, since it
/// would place outputs outside the mirrored tree.
fn relative_dir(dir: &Path) -> Result<Vec<&OsStr>, TemplateError> {
    let mut out = Vec::new();
    for c in dir.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(TemplateError::BadRender(format!(
                    "the source folder '{}' is not a plain relative path",
                    dir.display()
                )))
            }
        }
    }
    Ok(out)
}

/// A stem comes from a file name, so it cannot hold a separator; checked anyway because the
/// output path's safety must not depend on every caller getting that right.
fn check_stem(stem: &OsStr) -> Result<(), TemplateError> {
    let bytes = stem.as_encoded_bytes();
    if bytes.iter().any(|&b| matches!(b, b'/' | b'\\' | 0)) {
        return Err(TemplateError::BadRender(format!(
            "the file stem '{}' contains a separator or NUL",
            stem.to_string_lossy()
        )));
    }
    if bytes == b".." {
        return Err(TemplateError::BadRender("the file stem is '..'".to_owned()));
    }
    Ok(())
}

/// Returns true if and only if `name` parses as exactly one ordinary path component.
pub(crate) fn is_one_normal_component(name: &OsStr) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    )
}

/// Path components under construction. Built from `OsString`s so that a non-UTF-8 stem reaches
/// the file system unchanged.
#[derive(Default)]
struct Components {
    done: Vec<OsString>,
    current: OsString,
}

impl Components {
    fn push_str(&mut self, s: &OsStr) {
        self.current.push(s);
    }

    /// Appends text in which `/` separates components.
    fn push_text(&mut self, text: &str) {
        let mut segments = text.split('/');
        if let Some(first) = segments.next() {
            self.current.push(first);
        }
        for segment in segments {
            self.end();
            self.current.push(segment);
        }
    }

    fn end(&mut self) {
        self.done.push(std::mem::take(&mut self.current));
    }

    fn finish(mut self) -> Result<PathBuf, TemplateError> {
        if self.current.is_empty() || self.current == "." {
            return Err(TemplateError::BadRender(
                "the file name is empty".to_owned(),
            ));
        }
        self.end();
        let mut path = PathBuf::new();
        for c in self.done {
            // Empty levels come from an empty `{dir}` (`{dir}/x` at the top of the tree).
            if c.is_empty() || c == "." {
                continue;
            }
            if c == ".." {
                return Err(TemplateError::BadRender(
                    "a substituted value made a '..' folder".to_owned(),
                ));
            }
            // On Windows `C:x` is a drive prefix, and pushing it would replace the whole path.
            if !is_one_normal_component(&c) {
                return Err(TemplateError::BadRender(format!(
                    "'{}' is not a plain file or folder name here",
                    c.to_string_lossy()
                )));
            }
            path.push(c);
        }
        Ok(path)
    }
}

/// The path below the output folder for one output of `rel`.
///
/// `{ext}` is the output format's extension, except that a same-format output keeps the
/// input's own spelling (`.JPG`, `.jpeg`).
pub(crate) fn output_name(
    template: &Template,
    rel: &Path,
    input_format: Format,
    output_format: Format,
    size: (u32, u32),
    hash: Option<&str>,
) -> Result<PathBuf, TemplateError> {
    let mut stem = rel
        .file_stem()
        .or_else(|| rel.file_name())
        .unwrap_or(OsStr::new("image"));
    let mut src_ext = rel.extension().and_then(OsStr::to_str);
    // `logo.svg.gz` is named as `logo.svgz` would be: its stem is `logo`.
    if src_ext.is_some_and(|e| e.eq_ignore_ascii_case("gz")) && Format::extension_of(rel) == "svgz"
    {
        stem = Path::new(stem).file_stem().unwrap_or(stem);
        src_ext = Some("svgz");
    }
    let ext = match src_ext {
        Some(e) if input_format == output_format && output_format.accepts_extension(e) => e,
        _ => output_format.extension(),
    };
    let dir = rel.parent().unwrap_or(Path::new(""));
    template.render(&NameVars {
        dir,
        stem,
        ext,
        width: size.0,
        height: size.1,
        format: output_format,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(dir: &'a str, stem: &'a str, width: u32) -> NameVars<'a> {
        NameVars {
            dir: Path::new(dir),
            stem: OsStr::new(stem),
            ext: "webp",
            width,
            height: width * 3 / 4,
            format: Format::Webp,
            hash: Some("0123abcd"),
        }
    }

    fn render(template: &str, v: &NameVars<'_>) -> PathBuf {
        Template::parse(template)
            .and_then(|t| t.render(v))
            .unwrap_or_else(|e| panic!("{template}: {e}"))
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases: [(&str, TemplateError); 13] = [
            ("", TemplateError::Empty),
            (
                "{size}.{ext}",
                TemplateError::UnknownPlaceholder("size".into()),
            ),
            ("{}.{ext}", TemplateError::UnknownPlaceholder(String::new())),
            (
                "{Stem}.{ext}",
                TemplateError::UnknownPlaceholder("Stem".into()),
            ),
            ("{stem.{ext}", TemplateError::Unclosed(0)),
            ("a-{stem", TemplateError::Unclosed(2)),
            ("stem}.{ext}", TemplateError::Unmatched(4)),
            ("/tmp/{stem}.{ext}", TemplateError::Absolute),
            ("../{stem}.{ext}", TemplateError::ParentDir),
            ("a/../../{stem}", TemplateError::ParentDir),
            ("a\\{stem}", TemplateError::Backslash),
            ("{stem}\0.jpg", TemplateError::Nul),
            ("{stem}/", TemplateError::NoFileName),
        ];
        for (template, want) in cases {
            assert_eq!(Template::parse(template), Err(want), "{template:?}");
        }
        let message = Template::parse("{size}.{ext}").unwrap_err().to_string();
        assert!(
            message.contains("{size}") && message.contains("{stem}"),
            "{message}"
        );
    }

    #[test]
    fn dots_next_to_placeholders_are_not_parent_folders() {
        assert!(Template::parse("{stem}..{ext}").is_ok());
        assert!(Template::parse("..{stem}").is_ok());
        assert!(Template::parse("./{stem}.{ext}").is_ok());
    }

    #[test]
    fn doubled_braces_are_literal() {
        let v = vars("", "a", 320);
        assert_eq!(render("{{{stem}}}.{ext}", &v), PathBuf::from("{a}.webp"));
        assert_eq!(render("x}}{{y-{stem}", &v), PathBuf::from("x}{y-a"));
    }

    #[test]
    fn renders_every_placeholder() {
        let v = vars("", "IMG_1", 640);
        assert_eq!(
            render("{stem}_{width}x{height}_{format}_{hash}.{ext}", &v),
            PathBuf::from("IMG_1_640x480_webp_0123abcd.webp")
        );
    }

    #[test]
    fn defaults_depend_on_the_number_of_widths() {
        let v = vars("2024/05", "a", 320);
        assert_eq!(Template::default_for(1).as_str(), "{stem}.{ext}");
        assert_eq!(
            Template::default_for(1).render(&v),
            Ok(PathBuf::from("2024/05/a.webp"))
        );
        assert_eq!(
            Template::default_for(3).render(&v),
            Ok(PathBuf::from("2024/05/a-320w.webp"))
        );
    }

    #[test]
    fn mirrors_the_folder_unless_the_template_places_it() {
        let v = vars("trip/day1", "a", 320);
        assert_eq!(
            render("{stem}.{ext}", &v),
            PathBuf::from("trip/day1/a.webp")
        );
        assert_eq!(
            render("{dir}/thumbs/{stem}.{ext}", &v),
            PathBuf::from("trip/day1/thumbs/a.webp")
        );
        assert_eq!(
            render("{width}/{dir}/{stem}.{ext}", &v),
            PathBuf::from("320/trip/day1/a.webp")
        );
        assert_eq!(
            render("flat/{dir}-{stem}.{ext}", &v),
            PathBuf::from("flat/trip/day1-a.webp")
        );
    }

    #[test]
    fn an_empty_dir_leaves_no_empty_folder() {
        let v = vars("", "a", 320);
        assert_eq!(render("{dir}/{stem}.{ext}", &v), PathBuf::from("a.webp"));
        assert_eq!(
            render("{width}/{dir}/{stem}.{ext}", &v),
            PathBuf::from("320/a.webp")
        );
        assert_eq!(render("./{stem}.{ext}", &v), PathBuf::from("a.webp"));
        assert_eq!(
            render("{dir}/{stem}.{ext}", &vars(".", "a", 1)),
            PathBuf::from("a.webp")
        );
    }

    #[test]
    fn refuses_renders_that_would_leave_the_output_folder() {
        let t = Template::parse("{stem}.{ext}").unwrap();
        for dir in ["../x", "/abs", "a/../../b"] {
            let err = t.render(&vars(dir, "a", 1)).unwrap_err();
            assert!(matches!(err, TemplateError::BadRender(_)), "{dir}: {err}");
        }
        for stem in ["a/b", "..", "a\\b", "a\0b"] {
            let err = t.render(&vars("", stem, 1)).unwrap_err();
            assert!(
                matches!(err, TemplateError::BadRender(_)),
                "{stem:?}: {err}"
            );
        }
        // `..{dir}` is harmless in the template but becomes `..` at the top of the tree.
        let t = Template::parse("..{dir}/{stem}").unwrap();
        assert!(matches!(
            t.render(&vars("", "a", 1)),
            Err(TemplateError::BadRender(_))
        ));
        assert_eq!(t.render(&vars("x", "a", 1)), Ok(PathBuf::from("..x/a")));
    }

    #[test]
    fn an_empty_file_name_is_refused() {
        let t = Template::parse("{stem}/{dir}").unwrap();
        assert!(matches!(
            t.render(&vars("", "a", 1)),
            Err(TemplateError::BadRender(_))
        ));
        assert_eq!(t.render(&vars("x", "a", 1)), Ok(PathBuf::from("a/x")));
    }

    #[test]
    fn one_normal_component_means_a_plain_name() {
        for ok in ["a", "a.b", "10:30", "..x"] {
            assert_eq!(
                is_one_normal_component(OsStr::new(ok)),
                cfg!(unix) || !ok.contains(':'),
                "{ok}"
            );
        }
        for bad in ["", ".", "..", "a/b", "/", "/a"] {
            assert!(!is_one_normal_component(OsStr::new(bad)), "{bad}");
        }
        #[cfg(windows)]
        assert!(!is_one_normal_component(OsStr::new("C:x")));
    }

    #[test]
    fn hash_is_required_only_when_used() {
        let mut v = vars("", "a", 1);
        v.hash = None;
        assert_eq!(render("{stem}.{ext}", &v), PathBuf::from("a.webp"));
        let t = Template::parse("{hash}.{ext}").unwrap();
        assert!(t.uses_hash());
        assert_eq!(t.render(&v), Err(TemplateError::MissingHash));
        assert!(!Template::default_for(2).uses_hash());
    }

    #[test]
    fn collision_check_names_each_missing_placeholder() {
        let check = |t: &str, w, f| Template::parse(t).unwrap().can_collide(w, f);
        assert_eq!(check("{stem}.{ext}", 1, 1), None);
        assert_eq!(check("{stem}-{width}w.{ext}", 4, 2), None);
        assert_eq!(check("{hash}-{width}.{format}", 4, 2), None);
        let several = check("{stem}.{ext}", 3, 1).unwrap();
        assert!(
            several.contains("{width}") && several.contains("3 widths"),
            "{several}"
        );
        let by_height = check("{stem}-{height}.{ext}", 2, 1).unwrap();
        assert!(by_height.contains("{width}"), "{by_height}");
        let formats = check("{stem}-{width}", 2, 2).unwrap();
        assert!(formats.contains("{ext} or {format}"), "{formats}");
        let all = check("{dir}/out", 2, 2).unwrap();
        assert_eq!(all.matches("; ").count(), 2, "{all}");
        assert!(all.contains("{stem} or {hash}"), "{all}");
    }

    #[test]
    fn display_and_from_str_round_trip() {
        let t: Template = "{dir}/{stem}-{width}w.{ext}".parse().unwrap();
        assert_eq!(t.to_string(), "{dir}/{stem}-{width}w.{ext}");
        assert_eq!(Template::parse(&t.to_string()), Ok(t));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_stems_and_folders_survive_byte_for_byte() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};

        let stem = OsStr::from_bytes(b"caf\xe9");
        let dir = Path::new(OsStr::from_bytes(b"\xff\xfe/sub"));
        let v = NameVars {
            dir,
            stem,
            ext: "jpg",
            width: 320,
            height: 240,
            format: Format::Jpeg,
            hash: None,
        };
        let flat = Template::default_for(2).render(&v).unwrap();
        assert_eq!(
            flat.into_os_string().into_vec(),
            b"\xff\xfe/sub/caf\xe9-320w.jpg".to_vec()
        );
        let placed = Template::parse("{width}/{dir}/{stem}.{ext}")
            .unwrap()
            .render(&v)
            .unwrap();
        assert_eq!(
            placed.into_os_string().into_vec(),
            b"320/\xff\xfe/sub/caf\xe9.jpg".to_vec()
        );
    }
}

#[cfg(test)]
mod output_name_tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn one(rel: &str, i: Format, o: Format) -> PathBuf {
        output_name(&Template::default_for(1), &p(rel), i, o, (10, 10), None).unwrap()
    }

    #[test]
    fn mirrors_the_relative_folder() {
        assert_eq!(
            one("2024/a.jpg", Format::Jpeg, Format::Jpeg),
            p("2024/a.jpg")
        );
        assert_eq!(one("a.png", Format::Png, Format::Png), p("a.png"));
    }

    #[test]
    fn extension_follows_the_output_format() {
        let cases = [
            ("a.JPG", Format::Jpeg, Format::Jpeg, "a.JPG"),
            ("a.jpeg", Format::Jpeg, Format::Jpeg, "a.jpeg"),
            ("a.jpeg", Format::Jpeg, Format::Webp, "a.webp"),
            ("noext", Format::Png, Format::Png, "noext.png"),
            ("png_named.jpg", Format::Png, Format::Png, "png_named.png"),
            ("a.b.tiff", Format::Tiff, Format::Jpeg, "a.b.jpg"),
        ];
        for (src, i, o, want) in cases {
            assert_eq!(one(src, i, o), p(want), "{src}");
        }
    }

    #[test]
    fn several_widths_get_the_width_in_the_name() {
        let t = Template::default_for(3);
        let name = output_name(
            &t,
            &p("x/a.jpg"),
            Format::Jpeg,
            Format::Webp,
            (320, 200),
            None,
        );
        assert_eq!(name.unwrap(), p("x/a-320w.webp"));
        let t = Template::parse("{dir}/{width}/{stem}-{hash}.{ext}").unwrap();
        let name = output_name(
            &t,
            &p("x/a.jpg"),
            Format::Jpeg,
            Format::Jpeg,
            (320, 200),
            Some("0123abcd"),
        );
        assert_eq!(name.unwrap(), p("x/320/a-0123abcd.jpg"));
    }
}
