//! `presize build`: a build file (`presize.toml`) becomes one [`Config`] per `[[job]]`.
//!
//! A job's keys are the long flags of the default mode (`out_dir` or `out-dir` for
//! `--out-dir`, `input` for the inputs): each key becomes `--key=value` and the job is parsed by
//! the same clap definition and [`Config::from_cli`] as a command line, so a flag added to
//! `cli.rs` works in a build file with no code here. Keys outside any `[[job]]` apply to every
//! job. Called by the binary before any worker starts; every problem is fatal and names the
//! file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::cli::{BuildArgs, Cli};
use crate::config::Config;

/// The key that lists a job's inputs: the positional arguments of the command line.
const INPUT_KEY: &str = "input";

/// The long flags that say something about presize rather than about a job.
const NOT_JOB_KEYS: [&str; 2] = ["help", "version"];

/// The jobs of the build file `args.config`, each validated as a command line would be.
///
/// Paths inside the file are relative to the file's folder, as in Cargo.toml: the process
/// moves there (before anything is opened), so every flag that names a path, present or
/// future, needs nothing here.
pub(crate) fn load(args: &BuildArgs) -> anyhow::Result<Vec<Config>> {
    let file = &args.config;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the build file {}", file.display()))?;
    let jobs = parse(&text, file, args.watch)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot enter the build file's folder {}", dir.display()))?;
    }
    let mut configs: Vec<Config> = Vec::with_capacity(jobs.len());
    for (n, job) in jobs.iter().enumerate() {
        let place = format!("{}: job {} (line {})", file.display(), n + 1, job.line);
        let cli = Cli::try_parse_from(job.argv()).map_err(|e| job.clap_error(&e, file, &place))?;
        let config = Config::from_cli(cli).map_err(|e| anyhow!("{place}: {e}"))?;
        if let Some(first) = configs.first() {
            if run_wide(first) != run_wide(&config) {
                bail!(
                    "{place}: differs from job 1 in a setting of the whole run ({}); set those \
                     once at the top of the file, before the first [[job]]",
                    RUN_WIDE_KEYS.join(", ")
                );
            }
        }
        // Each job's manifest records only that job's sources: a second job saving the same
        // file would drop the first job's records, and with --prune delete its outputs.
        if let Some(same) = config
            .manifest
            .as_ref()
            .and_then(|m| configs.iter().position(|c| c.manifest.as_ref() == Some(m)))
        {
            bail!(
                "{place}: its manifest is job {}'s too; give each job its own manifest",
                same + 1
            );
        }
        configs.push(config);
    }
    Ok(configs)
}

/// The keys behind [`run_wide`], as the file spells them.
const RUN_WIDE_KEYS: [&str; 11] = [
    "jobs",
    "quiet",
    "verbose",
    "json",
    "color",
    "progress",
    "timeout",
    "image_timeout",
    "memory",
    "report",
    "watch",
];

/// What one pool and one summary can only have once: the jobs of a build file must agree on
/// it (the pool uses the first job's).
fn run_wide(c: &Config) -> impl PartialEq + '_ {
    (
        c.workers,
        c.verbosity,
        (c.json, c.color, c.progress, c.watch),
        c.limits,
        c.report.as_deref(),
    )
}

/// One job: its flags, each with the line of the key it came from, and its inputs.
#[derive(Debug)]
struct Job {
    /// Line of the `[[job]]` header.
    line: usize,
    /// Flag name (as `--help` spells it) → (the key as written, its line, the argument).
    flags: BTreeMap<String, Key>,
    inputs: Vec<String>,
}

#[derive(Debug, Clone)]
struct Key {
    written: String,
    line: usize,
    /// `--flag=value`, `--flag`, or nothing for a switch set to false.
    arg: Option<String>,
    /// Inputs, for the `input` key.
    inputs: Vec<String>,
}

impl Job {
    /// The command line this job stands for.
    fn argv(&self) -> Vec<String> {
        let mut argv = vec!["presize".to_owned()];
        argv.extend(self.flags.values().filter_map(|k| k.arg.clone()));
        // After `--`, an input named like a flag or a subcommand is still an input.
        argv.push("--".to_owned());
        argv.extend(self.inputs.iter().cloned());
        argv
    }

    /// A clap error, attributed to the key it is about when clap names one.
    fn clap_error(&self, err: &clap::Error, file: &Path, place: &str) -> anyhow::Error {
        // clap's text up to its usage lines, on one line.
        let rendered = err.render().to_string();
        let message = rendered
            .lines()
            .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let message = message.trim_start_matches("error: ");
        let flag = match err.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => arg
                .trim_start_matches('-')
                .split([' ', '='])
                .next()
                .map(str::to_owned),
            _ => None,
        };
        match flag.and_then(|f| self.flags.get(&f)) {
            Some(key) => anyhow!(
                "{}:{}: key `{}`: {message}",
                file.display(),
                key.line,
                key.written
            ),
            None => anyhow!("{place}: {message}"),
        }
    }
}

/// Reads the jobs of a build file's `text` (named `file` in errors); `watch` adds `watch = true`
/// to every job that does not say otherwise.
fn parse(text: &str, file: &Path, watch: bool) -> anyhow::Result<Vec<Job>> {
    let root = DeTable::parse(text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let flags = long_flags();
    let line_of =
        |span: std::ops::Range<usize>| text[..span.start.min(text.len())].matches('\n').count() + 1;
    let key = |name: &Spanned<toml::de::DeString<'_>>, value: &Spanned<DeValue<'_>>| {
        let written = name.get_ref().to_string();
        let at = line_of(name.span());
        let flag = written.replace('_', "-");
        if flag == INPUT_KEY || flag == "inputs" {
            let inputs = strings(value.get_ref()).ok_or_else(|| {
                anyhow!(
                    "{}:{at}: key `{written}`: give a path or a list of paths",
                    file.display()
                )
            })?;
            return Ok((
                INPUT_KEY.to_owned(),
                Key {
                    written,
                    line: at,
                    arg: None,
                    inputs,
                },
            ));
        }
        if !flags.contains(flag.as_str()) {
            bail!(
                "{}:{at}: unknown key `{written}`: not a flag of presize (see presize --help; \
                 the build file uses the long flags' names)",
                file.display()
            );
        }
        let arg = argument(&flag, value.get_ref())
            .map_err(|what| anyhow!("{}:{at}: key `{written}`: {what}", file.display()))?;
        Ok((
            flag,
            Key {
                written,
                line: at,
                arg,
                inputs: Vec::new(),
            },
        ))
    };
    let mut shared = BTreeMap::new();
    let mut tables = None;
    for (name, value) in root.get_ref() {
        if name.get_ref() == "job" {
            tables = Some(value);
            continue;
        }
        let (flag, k) = key(name, value)?;
        shared.insert(flag, k);
    }
    let no_job = || {
        anyhow!(
            "{}: no [[job]]: add one, e.g. [[job]] with input = \"photos\", out_dir = \"out\", width = 800",
            file.display()
        )
    };
    let tables = tables.ok_or_else(no_job)?;
    let DeValue::Array(tables_list) = tables.get_ref() else {
        bail!(
            "{}:{}: `job` must be [[job]] tables",
            file.display(),
            line_of(tables.span())
        );
    };
    let mut jobs = Vec::new();
    for table in tables_list {
        let DeValue::Table(entries) = table.get_ref() else {
            bail!(
                "{}:{}: `job` must be [[job]] tables",
                file.display(),
                line_of(table.span())
            );
        };
        let mut keys = shared.clone();
        for (name, value) in entries {
            let (flag, k) = key(name, value)?;
            keys.insert(flag, k);
        }
        if watch && !keys.contains_key("watch") {
            let arg = Some("--watch".to_owned());
            let k = Key {
                written: "watch".into(),
                line: 0,
                arg,
                inputs: Vec::new(),
            };
            keys.insert("watch".into(), k);
        }
        let inputs = keys.remove(INPUT_KEY).map(|k| k.inputs).unwrap_or_default();
        // The job's first line: its header is the line before its first key.
        let first = entries.iter().map(|(n, _)| line_of(n.span())).min();
        jobs.push(Job {
            line: first.map_or(line_of(table.span()), |l| l.saturating_sub(1).max(1)),
            flags: keys,
            inputs,
        });
    }
    if jobs.is_empty() {
        return Err(no_job());
    }
    Ok(jobs)
}

/// The long flags of the default mode, the keys a job may use.
fn long_flags() -> HashSet<String> {
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_JOB_KEYS.contains(l))
        .map(str::to_owned)
        .collect()
}

/// The command-line argument for `--flag` set to `value`: a string or number as it is, a list
/// joined by commas (as the list flags take them), an inline table as `key=value` pairs
/// (`quality = { webp = 75, avif = 45 }`), a switch as the bare flag (`false`: left out).
fn argument(flag: &str, value: &DeValue<'_>) -> Result<Option<String>, String> {
    let scalar = |v: &DeValue<'_>| -> Option<String> {
        match v {
            DeValue::String(s) => Some(s.to_string()),
            DeValue::Integer(i) => Some(i.to_string()),
            DeValue::Float(f) => Some(f.to_string()),
            _ => None,
        }
    };
    let text = match value {
        DeValue::Boolean(true) => return Ok(Some(format!("--{flag}"))),
        DeValue::Boolean(false) => return Ok(None),
        DeValue::Array(items) => items
            .iter()
            .map(|i| scalar(i.get_ref()))
            .collect::<Option<Vec<_>>>()
            .ok_or("a list may hold strings and numbers only")?
            .join(","),
        DeValue::Table(entries) => entries
            .iter()
            .map(|(k, v)| scalar(v.get_ref()).map(|v| format!("{}={v}", k.get_ref())))
            .collect::<Option<Vec<_>>>()
            .ok_or("a table may hold strings and numbers only")?
            .join(","),
        other => scalar(other).ok_or("dates are not a flag's value")?,
    };
    Ok(Some(format!("--{flag}={text}")))
}

/// A path or a list of paths.
fn strings(value: &DeValue<'_>) -> Option<Vec<String>> {
    match value {
        DeValue::String(s) => Some(vec![s.to_string()]),
        DeValue::Array(items) => items
            .iter()
            .map(|i| match i.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
        Ok(parse(text, Path::new("presize.toml"), false)?
            .iter()
            .map(Job::argv)
            .collect())
    }

    #[test]
    fn keys_become_long_flags_and_top_level_keys_apply_to_every_job() {
        let text = r#"
width = [320, 640]
strip = true
quality = { webp = 75, avif = 45 }

[[job]]
input = "photos"
out_dir = "site/img"
format = ["avif", "webp"]

[[job]]
input = ["a.png", "-b.png"]
out-dir = "thumbs"
width = 100
strip = false
"#;
        let jobs = argvs(text).unwrap();
        assert_eq!(
            jobs[0],
            [
                "presize",
                "--format=avif,webp",
                "--out-dir=site/img",
                "--quality=avif=45,webp=75",
                "--strip",
                "--width=320,640",
                "--",
                "photos"
            ]
        );
        assert_eq!(
            jobs[1],
            [
                "presize",
                "--out-dir=thumbs",
                "--quality=avif=45,webp=75",
                "--width=100",
                "--",
                "a.png",
                "-b.png"
            ]
        );
    }

    #[test]
    fn every_long_flag_is_a_key() {
        // The build file has no list of its own: whatever the CLI grows is a key.
        let flags = long_flags();
        for flag in [
            "out-dir", "width", "format", "quality", "manifest", "prune", "watch", "crop", "focal",
        ] {
            assert!(flags.contains(flag), "{flag}");
        }
        assert!(!flags.contains("help"));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_its_line() {
        let err = argvs("[[job]]\ninput = \"a\"\n\nwidht = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("presize.toml:4: unknown key `widht`"), "{err}");
        let err = argvs("width = 5\n[[job]]\nformat = 2020-01-01\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("presize.toml:3: key `format`"), "{err}");
        let err = argvs("width = 5\n").unwrap_err().to_string();
        assert!(err.contains("no [[job]]"), "{err}");
        let err = argvs("[[job]\n").unwrap_err().to_string();
        assert!(err.contains("presize.toml"), "{err}");
    }
}
