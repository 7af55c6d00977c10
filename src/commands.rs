//! The subcommands beside the default resize: `bench`, `manifest merge`, `manifest html`,
//! `completions`, `man`, and the dispatch that turns a command line into the jobs to run (the
//! default mode, or the jobs of `presize build`).
//!
//! Completions and the man page are generated from the same clap definition as `--help`, so
//! they never drift from the real flags.

use std::io::Write;

use clap::CommandFactory;

use crate::bench;
use crate::cli::{Cli, Command, ManifestAction};
use crate::config::Config;
use crate::exit::Exit;
use crate::manifest::Manifest;
use crate::report;

/// What a command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Jobs to run in one pool: the default mode's one, or a build file's.
    Run(Vec<Config>),
    /// A subcommand that has run, with its exit code.
    Done(Exit),
}

/// Turns a parsed command line into jobs, or runs the subcommand it names.
pub fn dispatch(mut cli: Cli) -> anyhow::Result<Request> {
    Ok(match cli.command.take() {
        None => Request::Run(vec![Config::from_cli(cli)?]),
        Some(Command::Build(args)) => Request::Run(crate::build::load(&args)?),
        Some(command) => Request::Done(run(command)?),
    })
}

/// Runs a subcommand, writing its output to stdout.
fn run(command: Command) -> anyhow::Result<Exit> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Build(_) => unreachable!("`dispatch` turns `build` into jobs"),
        Command::Bench(args) => {
            let plan = bench::Plan::new(*args)?;
            let json = plan.args.json;
            if !json {
                report::bench_header(&mut out, plan.repeat, plan.args.write)?;
            }
            let rows = bench::run(&plan, |row| {
                if json {
                    writeln!(out, "{}", serde_json::to_string(row)?)
                } else {
                    report::bench_row(&mut out, row)
                }
            })?;
            if let (Some(first), false) = (rows.first(), json) {
                report::bench_footer(&mut out, first)?;
            }
            if let Some(path) = &plan.args.report {
                crate::html::write_bench(&rows, &crate::html::bench_params(&plan), path)?;
                if !json {
                    writeln!(out, "report: {}", path.display())?;
                }
            }
            let failed = rows.iter().any(|r| r.failed > 0);
            Ok(if failed {
                Exit::SomeFailed
            } else {
                Exit::Success
            })
        }
        Command::Manifest {
            action: ManifestAction::Merge { parts, output },
        } => {
            drop(out);
            let loaded = parts
                .iter()
                .map(|p| Manifest::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = crate::manifest::merge(&loaded)?;
            merged.save_atomic(&output)?;
            report::merged(loaded.len(), merged.sources.len(), &output);
            Ok(Exit::Success)
        }
        Command::Manifest {
            action:
                ManifestAction::Html {
                    manifest,
                    sizes,
                    density,
                    prefix,
                },
        } => {
            // `Manifest::load` takes a missing file for a first build; here it is a mistake.
            if let Err(e) = std::fs::metadata(&manifest) {
                anyhow::bail!("cannot read manifest {}: {e}", manifest.display());
            }
            let loaded = Manifest::load(&manifest)?;
            let markup = crate::markup::Markup {
                sizes: Some(&sizes),
                density: &density,
                prefix: prefix.as_deref(),
            };
            out.write_all(crate::markup::render(&loaded, &markup).as_bytes())?;
            Ok(Exit::Success)
        }
        Command::Completions { shell } => {
            // `generate` panics when its writer fails; a closed pipe must end quietly instead.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "presize", &mut script);
            out.write_all(&script)?;
            Ok(Exit::Success)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            Ok(Exit::Success)
        }
    }
}
