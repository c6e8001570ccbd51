//! `bouncer push`: a policy to an OCI registry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::registry_flags::RegistryArgs;
use bouncer::policy::{Description, EngineConfig, PolicyEngine};
use bouncer::registry::{Governs, PolicyAnnotations, PolicyRef, push};

/// Arguments of `bouncer push`.
#[derive(Debug, clap::Args)]
pub(super) struct PushArgs {
    /// The policy: a `.wasm` component, a policy project directory (its built
    /// `policy.wasm`), or a built-in name.
    policy: String,
    /// Where to push it: `registry/repository:tag` (`oci://` optional).
    reference: String,
    /// Also sign it with this P-256 private key (PEM), in cosign's format: the signature
    /// goes to the `sha256-<digest>.sig` tag, where `cosign verify --key` finds it.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs `bouncer push`.
pub(super) fn run(args: &PushArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let reference = PolicyRef::parse(&args.reference)?;
    let (name, source) = super::inspect::resolve(&args.policy)?;
    let engine = PolicyEngine::new(engine)?;
    // Loading it first: a component that is not a policy never reaches a registry.
    let description = engine
        .describe(&name, &source)
        .with_context(|| format!("{source} is not a policy bouncer can load; nothing pushed"))?;
    let component = source.bytes(&name)?;
    let pushed = RegistryArgs::exchange(push(
        &component,
        &reference,
        annotations(&description).to_map(),
        &args.registry.options(&reference),
        args.sign.as_deref(),
    ))??;
    println!("{}", reference.at(&pushed.digest));
    eprintln!("pushed {source} to {reference}: {}", pushed.digest);
    if let Some(signature) = &pushed.signature {
        eprintln!("signed: {signature}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the manifest says about the policy (`registry::PolicyAnnotations`).
fn annotations(description: &Description) -> PolicyAnnotations {
    let Some(m) = &description.metadata else {
        return PolicyAnnotations::default();
    };
    PolicyAnnotations {
        title: Some(m.name.clone()),
        version: Some(m.version.clone()),
        description: Some(m.description.clone()),
        governs: Some(Governs {
            kinds: m.governed_kinds(),
            operations: m.operations.clone(),
            mutating: m.mutating,
            imports_wasi: description.imports_wasi,
        }),
        settings_schema: m.settings_schema.as_ref().map(ToString::to_string),
    }
}
