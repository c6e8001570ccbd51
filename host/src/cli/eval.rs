//! `bouncer eval`: one policy, one request, the response on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use super::EXIT_DENIED;
use crate::admission::{FailureMode, Mode, decide_one, review};
use crate::policy::{EngineConfig, Limits, PolicyEngine, Source};

/// Arguments of `bouncer eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
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
    let source = policy_source(&args.policy)?;
    let name = match &source {
        Source::Builtin(b) => b.name.to_owned(),
        _ => crate::authoring::project::name_of_component(Path::new(&args.policy)),
    };
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
        .with_context(|| format!("loading policy {source}"))?;

    let decision = decide_one(
        &policy,
        &request,
        Mode::Enforce,
        FailureMode::Closed,
        args.mutate,
    );
    let denied = !decision.denials().is_empty();
    for denial in decision.denials() {
        eprintln!(
            "denied ({}) by {}: {}",
            denial.code, denial.policy, denial.message
        );
    }
    for warning in decision.warnings() {
        eprintln!("warning: {warning}");
    }
    let review = review::encode(decision.into_response(&request));
    println!("{}", serde_json::to_string_pretty(&review)?);
    Ok(if denied {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

fn policy_source(policy: &str) -> Result<Source> {
    let is_path = policy.ends_with(".wasm") || policy.contains(std::path::MAIN_SEPARATOR);
    if is_path {
        return Ok(Source::File(PathBuf::from(policy)));
    }
    Ok(Source::builtin(
        policy.strip_prefix("builtin:").unwrap_or(policy),
    )?)
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_settings(path: &Path) -> Result<serde_json::Value> {
    let text = read_input(path)?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing settings file {}", path.display()))
}
