//! The `bouncer` command line: parsing, logging set-up, and exit codes.
//!
//! Exit codes are fixed across subcommands: 0 success/allowed, 1 denied (or
//! test failures), 2 usage, input or load errors.

mod audit;
mod build;
mod check;
mod choices;
mod eval;
mod inspect;
mod new;
mod policies;
mod push;
mod registry_flags;
mod serve;
mod test;

use bouncer::admission::{Pulls, loader};
use bouncer::config::ConfigSource;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a denial.
pub(crate) const EXIT_DENIED: u8 = 1;
/// Exit code for bad usage, unreadable input or a policy that cannot load.
pub(crate) const EXIT_ERROR: u8 = 2;
/// Exit code of `--compare` when answers change but nothing is newly denied.
pub(crate) const EXIT_CHANGED: u8 = 3;

/// The exit code of a `--compare`: what would break first.
fn compare_exit(summary: &bouncer::comparison::ChangeSummary, errors: bool) -> ExitCode {
    if errors {
        ExitCode::from(EXIT_ERROR)
    } else if summary.newly_denied > 0 {
        ExitCode::from(EXIT_DENIED)
    } else if summary.changed() {
        ExitCode::from(EXIT_CHANGED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Kubernetes admission webhook: house rules for EKS as sandboxed WebAssembly policies.
#[derive(Debug, Parser)]
#[command(name = "bouncer", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "BOUNCER_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// When to colour output: `auto` (a terminal, and `NO_COLOR` unset), `always`, `never`.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    color: ColorWhen,
    /// Where compiled policies are cached (default: the user cache directory).
    #[arg(long, global = true, env = "BOUNCER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// How a command that reports prints: for people or for tools.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate one policy on one admission request and print the AdmissionReview response.
    ///
    /// The request file may be a full AdmissionReview (as the API server sends it) or a bare
    /// AdmissionRequest, in JSON or YAML. Exit code: 0 allowed, 1 denied, 2 usage or load error.
    ///
    /// Example: bouncer eval --policy alb-target-type-ip --request ingress-review.json
    Eval(eval::EvalArgs),
    /// List the built-in policies and what each governs (kinds, mutation).
    ///
    /// Example: bouncer policies --output json
    Policies(policies::PoliciesArgs),
    /// Show what a policy says about itself: kinds, operations, mutation, settings, context.
    ///
    /// Accepts a built-in name, a `.wasm` component or a policy project directory (after
    /// `bouncer build`). Components built against bouncer:policy 0.1.0/0.1.1 have no metadata.
    ///
    /// Example: bouncer inspect examples/policies/max-replicas
    Inspect(inspect::InspectArgs),
    /// Run the admission webhook over HTTPS.
    ///
    /// Endpoints: POST /validate, /mutate (every matching policy), /validate/{policy} and
    /// /mutate/{policy} (one policy); GET /healthz, /readyz, /metrics (also on the plain
    /// --health-addr port). Each policy runs off the server's threads within its own time,
    /// memory and concurrency; a policy that cannot be loaded answers by its failure mode
    /// (--strict-start exits instead). The configuration is reloaded on SIGHUP and when its
    /// files change (once they stop changing); rotated certificates and client CAs are re-read.
    /// On SIGTERM, readiness fails, requests are still answered for --shutdown-delay, then
    /// in-flight requests drain. Guide: docs/install.md.
    ///
    /// Example: bouncer serve --write-ca /tmp/bouncer-ca.pem
    Serve(Box<serve::ServeArgs>),
    /// Run policy test suites offline: each case a request, each expectation checked.
    ///
    /// Searches the given directories for `*.bouncer-test.yaml` (a file given by name is read
    /// whatever its name), runs every case in parallel through the same runtime as `serve`, and
    /// prints one line per case and the summary `N passed, N failed`. Exit code: 0 all passed,
    /// 1 a case failed, 2 a suite cannot be read or loaded. The format: docs/testing.md.
    ///
    /// Example: bouncer test policies/ --output junit target/bouncer-tests.xml
    Test(test::TestArgs),
    /// Check Kubernetes manifests against the policies, as `kubectl apply` would be admitted.
    ///
    /// Every object (multi-document YAML, JSON, `List` kinds, directories recursively, `-` for
    /// stdin) is admitted as a CREATE through the mutating and then the validating webhook,
    /// honouring each policy's match rules. Exit code: 0 clean (warnings allowed), 1 something
    /// is denied, 2 a manifest cannot be read (the other documents are still checked).
    ///
    /// Example: bouncer check -f k8s/ --config policies.yaml
    Check(check::CheckArgs),
    /// Audit what the cluster already holds against the policies, as the webhook would judge it.
    ///
    /// Lists every kind the policies govern, page by page, judges each object as a CREATE
    /// (context lookups from live watch caches), and prints findings as `bouncer check` does.
    /// Monitor-mode violations are reported as warnings. With --write-reports, writes one
    /// OpenReports Report per namespace and a ClusterReport, for Policy Reporter and others.
    /// Exit code: 0 clean (warnings allowed), 1 something would be denied, 2 something could
    /// not be audited (a forbidden or failing kind, an unreadable object; the rest is audited).
    ///
    /// Example: bouncer audit --kubeconfig ~/.kube/config -n shop -o json
    Audit(Box<audit::AuditArgs>),
    /// Create a policy project in Rust, JavaScript or Python that builds and passes its suite.
    ///
    /// The project has the policy's source, a settings type with its schema, a test suite with
    /// one allowed and one denied case, and a README. Then `bouncer build` and `bouncer test`.
    /// Guide: docs/authoring.md.
    ///
    /// Example: bouncer new require-owner --lang python
    New(new::NewArgs),
    /// Build a policy project into a component (policy.wasm) and check it loads as a policy.
    ///
    /// Rust: cargo build --target wasm32-wasip2 --release; JavaScript: componentize-js;
    /// Python: componentize-py. A fresh JavaScript or Python project gets its pinned toolchain
    /// installed on the first build (npm into node_modules/, a virtualenv in .venv/); what
    /// cannot be installed (Node.js, Python, the Rust target) is named with its install command.
    ///
    /// Example: bouncer build examples/policies/deny-latest-tag
    Build(build::BuildArgs),
    /// Push a policy to an OCI registry as a Wasm artifact and print its pinned reference.
    ///
    /// The policy is loaded first (a component that is not a policy is refused), then pushed
    /// in the CNCF Wasm layout with its metadata (name, version, kinds, settings schema) as
    /// manifest annotations. Use the printed `oci://…@sha256:…` as a config `source`.
    ///
    /// Example: bouncer push examples/policies/deny-latest-tag registry.example.com/policies/deny-latest-tag:0.1.0
    Push(push::PushArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the embedded default configuration (every built-in house rule).
    Default,
    /// Check a configuration file: syntax, unknown keys, and every policy loads with its settings.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
}

/// Parses the command line, runs it, and maps the result to an exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server reports what it does; a one-shot command only what went wrong.
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let ansi = match cli.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let tracing = match init_logging(cli.log_format, default_level, ansi) {
        Ok(tracing) => tracing,
        Err(error) => {
            eprintln!("error: {}", causes(&error));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    }
    .write_global();
    let engine_config = bouncer::policy::EngineConfig {
        cache_dir: cli
            .cache_dir
            .clone()
            .or_else(bouncer::policy::default_cache_dir),
        ..Default::default()
    };
    let result = match cli.command {
        Command::Eval(args) => eval::run(&args, &engine_config),
        Command::Policies(args) => policies::run(&args, &engine_config),
        Command::Inspect(args) => inspect::run(&args, &engine_config),
        Command::New(args) => new::run(&args),
        Command::Build(args) => build::run(&args, &engine_config),
        Command::Push(args) => push::run(&args, &engine_config),
        Command::Serve(args) => serve::run(&args, &engine_config),
        Command::Test(args) => test::run(&args, &engine_config),
        Command::Check(args) => check::run(&args, &engine_config),
        Command::Audit(args) => audit::run(&args, &engine_config),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", bouncer::config::DEFAULT_CONFIG);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => check_config(&file, &engine_config),
    };
    if let Some(tracing) = tracing {
        tracing.finish();
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", causes(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes, `: `-joined. Each error of ours says its own
/// part only (none prints its `#[source]` too), and foreign errors that repeat
/// theirs (kube's) are put in words where they enter (`context::explain`).
fn causes(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Loads `config` (the embedded default when `None`) strictly, and prints
/// where its entries and their policies disagree: what `check` and `audit` judge with.
fn load_set(
    config: Option<&std::path::Path>,
    engine: &bouncer::policy::EngineConfig,
) -> anyhow::Result<bouncer::admission::PolicySet> {
    let source = match config {
        Some(path) => ConfigSource::File(path.to_owned()),
        None => ConfigSource::Embedded,
    };
    let engine = bouncer::policy::PolicyEngine::new(engine)?;
    let set = loader::load(&engine, &source, Pulls::Now)?.strict()?.set;
    for warning in set.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(set)
}

fn check_config(
    file: &std::path::Path,
    engine: &bouncer::policy::EngineConfig,
) -> anyhow::Result<ExitCode> {
    let engine = bouncer::policy::PolicyEngine::new(engine)?;
    let source = ConfigSource::File(file.to_owned());
    let loaded = loader::load(&engine, &source, Pulls::Now)?.strict()?;
    println!(
        "{}: {} policies load",
        file.display(),
        loaded.set.entries().len()
    );
    for entry in loaded.set.entries() {
        if let Some(pinned) = &entry.pinned {
            println!("  {}: {pinned}", entry.policy.name());
        }
    }
    for warning in loaded.set.warnings() {
        println!("  warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr, and traces where the `OTEL_*` environment says
/// (`bouncer::telemetry`); the trace pipeline, when on, is flushed at exit.
fn init_logging(
    format: LogFormat,
    default_level: &str,
    ansi: bool,
) -> anyhow::Result<Option<bouncer::telemetry::Tracing>> {
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, fmt};

    let filter = tracing_subscriber::EnvFilter::try_from_env("BOUNCER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Log lines are events only: a trace's spans would otherwise prefix them.
    fn is_event(meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event()
    }
    let events = filter.and(tracing_subscriber::filter::filter_fn(is_event));
    let logs = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_filter(events)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(events)
            .boxed(),
    };
    let tracing = bouncer::telemetry::Tracing::from_env()?;
    let traces = tracing.as_ref().map(bouncer::telemetry::Tracing::layer);
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    Ok(tracing)
}
