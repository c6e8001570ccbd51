//! `bouncer test`: run policy test suites offline.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::{EXIT_DENIED, EXIT_ERROR};
use bouncer::offline::testing;
use bouncer::policy::{EngineConfig, PolicyEngine};
use bouncer::render;

/// Arguments of `bouncer test`.
#[derive(Debug, clap::Args)]
pub(super) struct TestArgs {
    /// Suite files, or directories searched for `*.bouncer-test.yaml` [default: .]
    paths: Vec<PathBuf>,
    /// Run only the cases whose `<suite>/<case>` contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Also write a report file; the one format is `junit`: `--output junit report.xml`.
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"])]
    output: Option<Vec<String>>,
    /// How many cases run at once [default: one per core].
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

/// Runs `bouncer test`.
pub(super) fn run(args: &TestArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let junit_file = match args.output.as_deref() {
        None => None,
        Some([format, file]) if format == "junit" => Some(PathBuf::from(file)),
        Some([format, _]) => bail!("unknown --output format `{format}`: the one format is `junit`"),
        Some(_) => bail!("--output takes a format and a file: --output junit report.xml"),
    };
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let (files, mut errors) = testing::discover(&paths);
    let engine = PolicyEngine::new(engine)?;
    let mut suites = Vec::new();
    for file in &files {
        match testing::load(file, &engine) {
            Ok(suite) => suites.push(suite),
            Err(error) => errors.push(error),
        }
    }
    for error in &errors {
        eprintln!("error: {error}");
    }
    if files.is_empty() && errors.is_empty() {
        let searched: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "no suite files (*.bouncer-test.yaml) under {}",
            searched.join(", ")
        );
    }

    let threads = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1);
    let results = testing::run(&suites, args.filter.as_deref(), threads);

    let mut out = anstream::stdout().lock();
    for result in &results {
        render::test::write_case(&mut out, &suites, result)?;
    }
    if let Some(file) = &junit_file {
        let xml = render::test::junit(&suites, &results)
            .to_string()
            .context("rendering the JUnit report")?;
        std::fs::write(file, xml).with_context(|| format!("writing {}", file.display()))?;
    }
    writeln!(out, "{}", render::test::summary(&results))?;
    Ok(if !errors.is_empty() {
        ExitCode::from(EXIT_ERROR)
    } else if results.iter().any(|r| !r.passed()) {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}
