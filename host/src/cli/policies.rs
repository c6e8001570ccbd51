//! `bouncer policies`: the built-in house rules, and what each governs.
//!
//! What a built-in governs (kinds, operations, mutation) is read from its own
//! metadata, the one place it is declared. `--output json` prints the table the
//! Helm chart builds its webhook rules from (`charts/bouncer/files/builtins.json`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use bouncer::policy::{BUILTINS, EngineConfig, Metadata, PolicyEngine, Source};

/// Arguments of `bouncer policies`.
#[derive(Debug, clap::Args)]
pub(super) struct PoliciesArgs {
    /// `text`: one line per policy; `json`: what each governs, keyed by source
    /// (the chart's `files/builtins.json`).
    #[arg(long, short = 'o', value_enum, default_value_t = super::Output::Text)]
    output: super::Output,
}

/// Prints every built-in policy with what it governs.
pub(super) fn run(args: &PoliciesArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let engine = PolicyEngine::new(engine)?;
    let described = builtin_metadata(&engine)?;
    match args.output {
        super::Output::Json => println!("{}", serde_json::to_string_pretty(&governs(&described))?),
        super::Output::Text => {
            let width = BUILTINS.iter().map(|b| b.name.len()).max().unwrap_or(0);
            for (name, metadata) in &described {
                let kinds: Vec<String> = metadata
                    .kinds
                    .iter()
                    .flat_map(|k| k.kinds.iter().cloned())
                    .collect();
                let mutating = if metadata.mutating {
                    ", can mutate"
                } else {
                    ""
                };
                println!(
                    "{name:width$}  {} [{}{mutating}]",
                    metadata.description,
                    kinds.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every built-in's metadata, in name order.
fn builtin_metadata(engine: &Arc<PolicyEngine>) -> Result<Vec<(&'static str, Metadata)>> {
    BUILTINS
        .iter()
        .map(|builtin| {
            let source = Source::Builtin(builtin);
            let description = engine
                .describe(builtin.name, &source)
                .with_context(|| format!("built-in policy `{}`", builtin.name))?;
            let metadata = description
                .metadata
                .with_context(|| format!("built-in `{}` has no metadata", builtin.name))?;
            Ok((builtin.name, metadata))
        })
        .collect()
}

/// `{"builtin:<name>": {"kinds": …, "operations": …, "mutating": …}}`.
fn governs(described: &[(&str, Metadata)]) -> Value {
    described
        .iter()
        .map(|(name, metadata)| {
            (
                format!("builtin:{name}"),
                json!({
                    "kinds": metadata.kinds,
                    "operations": metadata.operations,
                    "mutating": metadata.mutating,
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
