//! `bouncer check`: manifests against the house rules, as a report a person
//! can paste into a pull-request review, or as JSON for tools.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::{EXIT_DENIED, EXIT_ERROR};
use bouncer::offline::{check, compare};
use bouncer::policy::EngineConfig;
use bouncer::render;

/// Arguments of `bouncer check`.
#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    /// Manifests: files, directories (searched recursively for .yaml, .yml, .json) or `-` for stdin.
    #[arg(
        long = "filename",
        short = 'f',
        required = true,
        value_name = "FILE|DIR|-"
    )]
    files: Vec<PathBuf>,
    /// The policies to check against [default: the embedded default config].
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Cluster state for context-aware policies: objects that exist but are not checked
    /// (files or directories, like -f).
    #[arg(long, value_name = "FILE|DIR")]
    context: Vec<PathBuf>,
    /// The namespace of objects whose manifest names none.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// `text` for people, `json` for tools.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: super::Output,
    /// A candidate configuration: print what changes object by object between
    /// the current one (--config) and it: newly denied, newly allowed, a
    /// different patch. Exit code 1 when an object is newly denied, 3 when
    /// only other answers change, 0 when nothing does.
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
}

/// Runs `bouncer check`.
pub(super) fn run(args: &CheckArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let set = super::load_set(args.config.as_deref(), engine)?;
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("`-f -` (stdin) can be given once");
    }
    let manifests = bouncer::manifest::read_paths(&args.files);
    let context = bouncer::manifest::read_paths(&args.context);
    if let Some(error) = context.errors.first() {
        bail!("reading --context: {error}");
    }
    if let Some(candidate) = &args.compare {
        let candidate = super::load_set(Some(candidate), engine)?;
        let report = compare(
            &set,
            &candidate,
            &manifests,
            &context.objects,
            &args.namespace,
        );
        let mut out = anstream::stdout().lock();
        match args.output {
            super::Output::Json => writeln!(out, "{}", render::json(&report)?)?,
            super::Output::Text => {
                for error in &report.errors {
                    writeln!(out, "ERROR {}:{} {}", error.file, error.line, error.message)?;
                }
                let files = format!("objects in {} files", manifests.files);
                render::compare::text(&mut out, &report.changes, &report.summary, &files)?;
            }
        }
        return Ok(super::compare_exit(
            &report.summary,
            !report.errors.is_empty(),
        ));
    }
    let report = check(&set, &manifests, &context.objects, &args.namespace);

    let mut out = anstream::stdout().lock();
    match args.output {
        super::Output::Json => writeln!(out, "{}", render::json(&report)?)?,
        super::Output::Text => render::check::text(&mut out, &report, set.entries().len())?,
    }
    Ok(if !report.errors.is_empty() {
        ExitCode::from(EXIT_ERROR)
    } else if report.summary.denied > 0 {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}
