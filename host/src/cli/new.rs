//! `bouncer new`: scaffold a policy project.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::choices::LanguageChoice;
use bouncer::authoring::Language;
use bouncer::authoring::scaffold::{self, Options};

/// Arguments of `bouncer new`.
#[derive(Debug, clap::Args)]
pub(super) struct NewArgs {
    /// The policy's name: lowercase letters, digits and dashes (such as `deny-latest-tag`).
    name: String,
    /// The language to write the policy in.
    #[arg(long, value_enum, default_value = "rust")]
    lang: LanguageChoice,
    /// The directory to create (default: `./<name>`).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Rust only: a local bouncer-sdk to depend on, such as a checkout's `policies/sdk`
    /// (default: write the SDK embedded in this binary into the project as `bouncer-sdk/`, so
    /// it builds without a checkout or a published crate).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// Runs `bouncer new`.
pub(super) fn run(args: &NewArgs) -> Result<ExitCode> {
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let options = Options {
        name: args.name.clone(),
        language: args.lang.into(),
        path: path.clone(),
        sdk: args.sdk.clone(),
    };
    let files = scaffold::scaffold(&options)?;
    println!(
        "created {} policy `{}` in {}:",
        Language::from(args.lang),
        args.name,
        path.display()
    );
    for file in files {
        println!("  {}", file.display());
    }
    let shown = path.display();
    let install = match Language::from(args.lang) {
        Language::Rust => String::new(),
        Language::Js => format!("  (cd {shown} && npm install)\n"),
        Language::Python => format!("  pip install -r {shown}/requirements-dev.txt\n"),
    };
    println!("\nnext:\n{install}  bouncer build {shown}\n  bouncer test {shown}");
    Ok(ExitCode::SUCCESS)
}
