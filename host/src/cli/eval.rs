//! `bouncer eval`: one policy, one request, the response on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::EXIT_DENIED;
use bouncer::admission::{Endpoint, Entry, PolicySet, review};
use bouncer::config::{FailureMode, Mode};
use bouncer::context::{Cluster, NoCluster};
use bouncer::policy::{EngineConfig, Limits, PolicyEngine};

/// Arguments of `bouncer eval`.
#[derive(Debug, clap::Args)]
pub(super) struct EvalArgs {
    /// The policy: a built-in name (see `bouncer policies`, `builtin:` prefix optional) or a `.wasm` component path.
    #[arg(long, short = 'p')]
    policy: String,
    /// The request: an AdmissionReview or AdmissionRequest file (JSON or YAML); `-` reads stdin.
    #[arg(long, short = 'r')]
    request: PathBuf,
    /// The policy's settings: a JSON or YAML file.
    #[arg(long, short = 's')]
    settings: Option<PathBuf>,
    /// Evaluate as the mutating webhook would (apply and return the policy's patch).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mutate: bool,
    /// Deadline of the evaluation, in milliseconds.
    #[arg(long, default_value_t = Limits::DEFAULT_TIMEOUT.as_millis() as u64)]
    timeout_ms: u64,
    /// Memory cap of the evaluation, in MiB.
    #[arg(long, default_value_t = Limits::DEFAULT_MEMORY / (1024 * 1024))]
    memory_mib: usize,
}

/// Runs `bouncer eval`.
pub(super) fn run(args: &EvalArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let (name, source) = bouncer::authoring::project::resolve(&args.policy, Path::new(""))
        .map_err(anyhow::Error::msg)?;
    let settings = match &args.settings {
        Some(path) => read_settings(path)?,
        None => serde_json::json!({}),
    };
    let text = read_input(&args.request)?;
    let request = review::decode_document(&text)
        .with_context(|| format!("reading the request from {}", args.request.display()))?;

    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms),
        memory: args
            .memory_mib
            .saturating_mul(1024 * 1024)
            .min(Limits::MAX_MEMORY),
        ..Limits::default()
    };
    let engine = PolicyEngine::new(engine)?;
    let policy = engine
        .load(&name, &source, &settings, limits)
        .with_context(|| format!("loading policy `{name}` from {source}"))?;

    let set = PolicySet::of_one(Entry::matching_everything(
        policy,
        Mode::Enforce,
        FailureMode::Closed,
        args.mutate,
    ));
    let cluster: Arc<dyn Cluster> = Arc::new(NoCluster);
    let deadline = Instant::now() + limits.timeout + Duration::from_secs(1);
    let endpoint = Endpoint::for_mutation(args.mutate);
    let reviewed = set.review_here(&request, endpoint, &cluster, deadline);
    let code = reviewed.response.result.code;
    for result in reviewed.records.iter().filter(|r| r.refused) {
        let message = result.message.as_deref().unwrap_or_default();
        eprintln!("denied ({code}) by {}: {message}", result.policy);
    }
    for warning in reviewed.response.warnings.iter().flatten() {
        eprintln!("warning: {warning}");
    }
    let denied = !reviewed.response.allowed;
    let review = review::encode(reviewed.response);
    println!("{}", serde_json::to_string_pretty(&review)?);
    Ok(if denied {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        return bouncer::manifest::yaml::read_bounded(std::io::stdin()).context("reading stdin");
    }
    bouncer::manifest::yaml::read_file(path).with_context(|| format!("reading {}", path.display()))
}

fn read_settings(path: &Path) -> Result<serde_json::Value> {
    let text = read_input(path)?;
    bouncer::manifest::yaml::from_str(&text)
        .with_context(|| format!("parsing settings file {}", path.display()))
}
