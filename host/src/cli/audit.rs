//! `bouncer audit`: what the cluster already holds, against the policies, in
//! `bouncer check`'s format; with `--write-reports`, as OpenReports in the
//! cluster for Policy Reporter and friends.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::choices::FormatChoice;
use super::{EXIT_DENIED, EXIT_ERROR};
use bouncer::admission::PolicySet;
use bouncer::audit::{
    AuditError, AuditOptions, AuditReport, Progress, ReportError, ReportOptions, Written, audit,
    write_reports,
};
use bouncer::context::{Cluster, KubeAccess, Watched};
use bouncer::policy::EngineConfig;
use bouncer::render;

/// Arguments of `bouncer audit`.
#[derive(Debug, clap::Args)]
pub(super) struct AuditArgs {
    /// The policies to audit with [default: the embedded default config].
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// The cluster's kubeconfig [default: in-cluster credentials, else KUBECONFIG or ~/.kube/config].
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Audit only this namespace (repeat for several); cluster-scoped kinds are then left out.
    #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
    namespaces: Vec<String>,
    /// `text` for people, `json` for tools, `junit` for CI systems.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: AuditOutput,
    /// Objects per list request: memory holds one page at a time.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    page_size: u32,
    /// Write one report per namespace (and one for cluster-scoped objects) into the cluster,
    /// replacing the previous run's and deleting those with nothing left to report.
    #[arg(long)]
    write_reports: bool,
    /// The report kinds: `openreports` (openreports.io/v1alpha1 Report, ClusterReport) or
    /// `wgpolicyk8s` (wgpolicyk8s.io/v1alpha2 PolicyReport, ClusterPolicyReport).
    #[arg(
        long,
        value_enum,
        default_value = "openreports",
        requires = "write_reports"
    )]
    report_format: FormatChoice,
    /// Put passing results in the reports too (the summary counts them either way).
    #[arg(long)]
    report_passes: bool,
    /// Results per report at most (failures first); the summary still counts all.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_results: u32,
    /// How long to wait for the context caches of context-aware policies.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    context_timeout: u64,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// What makes the exit code non-zero: `violations` (1 for a denial, 2 when something
    /// could not be audited), `errors` (2 only: a scheduled job whose output is its reports),
    /// `never`.
    #[arg(long, value_enum, default_value = "violations")]
    fail_on: FailOn,
    /// A candidate configuration: print what changes object by object between
    /// the current one (--config) and it, over what the cluster holds: newly
    /// denied, newly allowed, a different patch. Exit code 1 when an object is
    /// newly denied, 3 when only other answers change, 0 when nothing does.
    #[arg(long, value_name = "FILE", conflicts_with = "write_reports")]
    compare: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    Violations,
    Errors,
    Never,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuditOutput {
    Text,
    Json,
    Junit,
}

/// Runs `bouncer audit`.
pub(super) fn run(args: &AuditArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let set = super::load_set(args.config.as_deref(), engine)?;
    let candidate = match &args.compare {
        Some(path) => Some(Arc::new(super::load_set(Some(path), engine)?)),
        None => None,
    };
    let access = match &args.kubeconfig {
        Some(path) => KubeAccess::Kubeconfig(path.clone()),
        None => KubeAccess::Infer,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (report, written) = judge(args, &set, candidate, &access, &runtime)?;

    let mut out = anstream::stdout().lock();
    if let Some(comparison) = &report.comparison {
        match args.output {
            AuditOutput::Json => writeln!(out, "{}", render::json(comparison)?)?,
            AuditOutput::Junit | AuditOutput::Text => {
                for error in &report.errors {
                    writeln!(out, "ERROR {}: {}", error.subject, error.message)?;
                }
                render::compare::text(
                    &mut out,
                    &comparison.changes,
                    &comparison.summary,
                    "objects in the cluster",
                )?;
            }
        }
        return Ok(super::compare_exit(
            &comparison.summary,
            report.summary.errors > 0,
        ));
    }
    match args.output {
        AuditOutput::Json => writeln!(out, "{}", render::json(&report)?)?,
        AuditOutput::Junit => writeln!(out, "{}", render::audit::junit(&report).to_string()?)?,
        AuditOutput::Text => render::audit::text(&mut out, &report, set.entries().len())?,
    }
    eprintln!("{}", render::audit::metrics_line(&report));
    let error_exit = if args.fail_on == FailOn::Never {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    };
    match written {
        Some(Ok(w)) => {
            eprintln!(
                "reports: {} written, {} stale deleted{}{}",
                w.written,
                w.deleted,
                match w.dropped {
                    0 => String::new(),
                    n => format!(", {n} results left out of full reports"),
                },
                match w.carried {
                    0 => String::new(),
                    n => format!(
                        ", {n} results kept from the previous reports for kinds that could not be listed"
                    ),
                }
            );
            for error in &w.failed {
                eprintln!("error: {error}");
            }
            if !w.failed.is_empty() {
                return Ok(error_exit);
            }
        }
        Some(Err(error)) => {
            eprintln!("error: {error}");
            return Ok(error_exit);
        }
        None => {}
    }
    Ok(match args.fail_on {
        FailOn::Never => ExitCode::SUCCESS,
        _ if report.summary.errors > 0 => ExitCode::from(EXIT_ERROR),
        FailOn::Violations if report.summary.denied > 0 => ExitCode::from(EXIT_DENIED),
        _ => ExitCode::SUCCESS,
    })
}

type ReportsWritten = Option<Result<Written, ReportError>>;

/// Connects, audits and writes the reports. The audit's walk runs here, off
/// the runtime (`audit::audit` asks the API server on it); connecting and
/// writing reports are the runtime's.
fn judge(
    args: &AuditArgs,
    set: &PolicySet,
    candidate: Option<Arc<PolicySet>>,
    access: &KubeAccess,
    runtime: &tokio::runtime::Runtime,
) -> Result<(AuditReport, ReportsWritten)> {
    let mut kinds = set.context_kinds();
    if let Some(candidate) = &candidate {
        kinds.extend(candidate.context_kinds());
        kinds.sort();
        kinds.dedup();
    }
    let (client, cluster, context_errors) = runtime.block_on(connect(args, &kinds, access))?;
    let options = AuditOptions {
        namespaces: args.namespaces.clone(),
        page_size: args.page_size,
        report_passes: args.report_passes,
        compare: candidate,
    };
    let quiet = args.quiet;
    let mut progress = move |p: Progress<'_>| {
        if quiet {
            return;
        }
        let namespace = p
            .namespace
            .map(|ns| format!(" in {ns}"))
            .unwrap_or_default();
        match p.total {
            Some(total) => eprintln!("audit: {}{namespace}: {}/{total}", p.kind, p.done),
            None => eprintln!("audit: {}{namespace}: {}", p.kind, p.done),
        }
    };
    let mut report = audit(
        set,
        &client,
        &cluster,
        &options,
        runtime.handle(),
        &mut progress,
    );
    report.add_problems(context_errors);
    let written = if args.write_reports {
        let options = ReportOptions {
            format: args.report_format.into(),
            max_results: args.max_results as usize,
            passes: args.report_passes,
        };
        Some(runtime.block_on(write_reports(&client, &report, &options)))
    } else {
        None
    };
    Ok((report, written))
}

/// A client, the watch caches of the kinds the policies look up (synced, or
/// what has not synced said), on the runtime.
async fn connect(
    args: &AuditArgs,
    kinds: &[bouncer::policy::ContextKind],
    access: &KubeAccess,
) -> Result<(kube::Client, Arc<dyn Cluster>, Vec<AuditError>)> {
    let Some(client) = access.client().await? else {
        bail!("bouncer audit needs a cluster: give --kubeconfig, or run it in the cluster");
    };
    let watched = Watched::new(Some(client.clone()));
    watched.watch(kinds);
    let context_errors =
        wait_for_context(&watched, Duration::from_secs(args.context_timeout)).await;
    let cluster: Arc<dyn Cluster> = Arc::new(watched);
    Ok((client, cluster, context_errors))
}

/// Waits for the context caches; what has not synced by then is reported, and
/// the policies that look it up fail by their failure mode.
async fn wait_for_context(watched: &Watched, timeout: Duration) -> Vec<AuditError> {
    let started = Instant::now();
    loop {
        match watched.readiness() {
            Ok(()) => return Vec::new(),
            Err(why) if started.elapsed() >= timeout => {
                return vec![AuditError::error(
                    "context",
                    format!(
                        "{why} after {timeout:?}; lookups of those kinds fail, and so do the policies that need them"
                    ),
                )];
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
