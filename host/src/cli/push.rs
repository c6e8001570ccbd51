//! `bouncer push`: a policy to an OCI registry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::policy::{Description, EngineConfig, PolicyEngine};
use crate::registry::{ANNOTATION_PREFIX, PolicyRef, RegistryOptions, push};

/// Arguments of `bouncer push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
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

/// How to reach a registry from the command line (the `registry:` block of a
/// configuration, for commands that have none).
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// A Docker config.json with credentials [default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,
    /// PEM certificates to trust for the registry, besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Reach the registry over plain HTTP (a local test registry).
    #[arg(long)]
    plain_http: bool,
    /// How long the whole exchange with the registry may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    registry_timeout: std::time::Duration,
}

impl RegistryArgs {
    pub(super) fn options(&self, reference: &PolicyRef) -> RegistryOptions {
        RegistryOptions {
            auth: self.auth.clone(),
            ca_bundle: self.ca_bundle.clone(),
            plain_http: if self.plain_http {
                vec![reference.registry().to_owned()]
            } else {
                Vec::new()
            },
            store: None,
            timeout: self.registry_timeout,
        }
    }
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
    let pushed = push(
        &component,
        &reference,
        annotations(&description),
        &args.registry.options(&reference),
        args.sign.as_deref(),
    )?;
    println!("{}", reference.at(&pushed.digest));
    eprintln!("pushed {source} to {reference}: {}", pushed.digest);
    if let Some(signature) = &pushed.signature {
        eprintln!("signed: {signature}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest annotations: OCI's own keys for name, version and
/// description, and bouncer's for what the policy governs.
pub(super) fn annotations(description: &Description) -> BTreeMap<String, String> {
    // No creation time: the same policy pushed twice keeps its digest.
    let mut out = BTreeMap::new();
    let Some(m) = &description.metadata else {
        return out;
    };
    let key = |k: &str| format!("{ANNOTATION_PREFIX}{k}");
    out.insert("org.opencontainers.image.title".to_owned(), m.name.clone());
    out.insert(
        "org.opencontainers.image.version".to_owned(),
        m.version.clone(),
    );
    out.insert(
        "org.opencontainers.image.description".to_owned(),
        m.description.clone(),
    );
    out.insert(key("kinds"), m.governed_kinds().join(","));
    out.insert(key("operations"), m.operations.join(","));
    out.insert(key("mutating"), m.mutating.to_string());
    out.insert(key("imports-wasi"), description.imports_wasi.to_string());
    if let Some(schema) = &m.settings_schema {
        out.insert(key("settings-schema"), schema.to_string());
    }
    out
}
