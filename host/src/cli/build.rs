//! `bouncer build`: a policy project into a checked component.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use bouncer::authoring::build;
use bouncer::policy::{EngineConfig, PolicyEngine};

/// Arguments of `bouncer build`.
#[derive(Debug, clap::Args)]
pub(super) struct BuildArgs {
    /// The policy project (default: the current directory).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Runs `bouncer build`.
pub(super) fn run(args: &BuildArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let engine = PolicyEngine::new(engine)?;
    let built = build::build(&args.dir, &engine, &|line| eprintln!("{line}"))?;
    let size = built.description.size;
    println!(
        "built {} ({} bytes, {}) from {}",
        built.path.display(),
        size,
        built.language,
        args.dir.display()
    );
    match &built.description.metadata {
        Some(m) => println!(
            "implements bouncer:policy: {} {} ({})",
            m.name,
            m.version,
            if m.mutating { "mutating" } else { "validating" }
        ),
        None => println!("implements bouncer:policy 0.1.0/0.1.1 (no metadata export)"),
    }
    Ok(ExitCode::SUCCESS)
}
