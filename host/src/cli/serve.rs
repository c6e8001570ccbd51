//! `bouncer serve`: the admission webhook over HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::choices::ResetChoiceArg;
use bouncer::config::ConfigSource;
use bouncer::policy::EngineConfig;
use bouncer::server::{RequestLimits, ServeOptions, Server, Stop};

/// Arguments of `bouncer serve`.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BOUNCER_ADDR", default_value = "0.0.0.0:8443")]
    addr: SocketAddr,
    /// Policy configuration (policies.yaml); default: the embedded config with every house rule.
    #[arg(long, env = "BOUNCER_CONFIG")]
    config: Option<PathBuf>,
    /// Serving certificate chain (PEM). Without it, a self-signed one is generated at start.
    #[arg(long, env = "BOUNCER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "BOUNCER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Write the CA of the generated certificate here, for clients to trust.
    #[arg(long, env = "BOUNCER_WRITE_CA", conflicts_with = "tls_cert")]
    write_ca: Option<PathBuf>,
    /// Require client certificates signed by this CA bundle (mTLS from the API server).
    #[arg(long, env = "BOUNCER_CLIENT_CA")]
    client_ca: Option<PathBuf>,
    /// Answer every review within this time; policies still running are handled by their failure mode.
    #[arg(long, env = "BOUNCER_REQUEST_DEADLINE", default_value = "2s", value_parser = humantime::parse_duration)]
    request_deadline: Duration,
    /// Largest review body accepted, in bytes.
    #[arg(long, env = "BOUNCER_MAX_BODY", default_value_t = 3 * 1024 * 1024)]
    max_body: usize,
    /// How often the config, `.wasm` and certificate files are checked for changes.
    #[arg(long, env = "BOUNCER_WATCH_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    watch_interval: Duration,
    /// Kubeconfig for the watch caches of context-aware policies [default: in-cluster
    /// credentials, else KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "BOUNCER_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// How long SIGTERM waits for in-flight requests before exiting.
    #[arg(long, env = "BOUNCER_DRAIN_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// After SIGTERM, keep accepting reviews this long while /readyz fails, so
    /// endpoints drop the pod before its listener closes (Ctrl-C skips it).
    #[arg(long, env = "BOUNCER_SHUTDOWN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    shutdown_delay: Duration,
    /// A changed config file is loaded once it has stayed unchanged this long
    /// (a half-written file is never loaded); SIGHUP reloads at once.
    #[arg(long, env = "BOUNCER_CONFIG_SETTLE", default_value = "5s", value_parser = humantime::parse_duration)]
    config_settle: Duration,
    /// Also serve /healthz, /readyz and /metrics over plain HTTP here (for
    /// kubelet probes and Prometheus when --client-ca guards the main port).
    #[arg(long, env = "BOUNCER_HEALTH_ADDR")]
    health_addr: Option<SocketAddr>,
    /// Most client connections open at once; more are answered 503 and closed.
    #[arg(long, env = "BOUNCER_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: u32,
    /// Close a connection (HTTP/1 or HTTP/2) with no request in flight for this long.
    #[arg(long, env = "BOUNCER_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Exit at start when any configured policy cannot be loaded. Default:
    /// serve the others; the broken entry answers by its failure mode.
    #[arg(long, env = "BOUNCER_STRICT_START")]
    strict_start: bool,
    /// Policy instances that may exist at once; every policy's `concurrency`
    /// together must fit in it, less a reserve of an eighth (at most 16).
    #[arg(long, env = "BOUNCER_MAX_INSTANCES", default_value_t = 256)]
    max_instances: u32,
    /// Bytes of linear memory all policy instances together may hold, such as
    /// `256Mi` [default: from --memory-limit, else 2Gi].
    #[arg(long, env = "BOUNCER_INSTANCE_MEMORY", value_parser = parse_bytes)]
    instance_memory: Option<usize>,
    /// The container's memory limit, in bytes or with Ki/Mi/Gi (the chart
    /// passes it from the downward API): the instance memory budget is this
    /// minus 128Mi for the server itself.
    #[arg(long, env = "BOUNCER_MEMORY_LIMIT", value_parser = parse_bytes)]
    memory_limit: Option<usize>,
    /// How instance slots are wiped between evaluations: `auto` restores only
    /// the pages a policy wrote where this memory provably cannot swap (cgroup
    /// v2 `memory.swap.max` 0, or no swap device) and rewrites every resident
    /// page elsewhere; `full` always rewrites; `scan` always restores only
    /// written pages, which is unsound where memory can swap (for benchmarks).
    /// `/readyz` says which is in use.
    #[arg(long, env = "BOUNCER_INSTANCE_RESET", value_enum, default_value_t = ResetChoiceArg::Auto)]
    instance_reset: ResetChoiceArg,
    /// How often the report of shadow disagreements (an OpenReports Report
    /// `bouncer-shadow` per namespace) is written, when a candidate disagreed.
    #[arg(long, env = "BOUNCER_SHADOW_REPORT_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    shadow_report_interval: Duration,
    /// Also run the companion: give every namespace the configuration's
    /// `companion` block governs a default-deny NetworkPolicy (and an
    /// allow-DNS one when egress is denied), and keep them there. Replicas
    /// elect one writer with the Lease `bouncer-companion`.
    #[arg(long, env = "BOUNCER_COMPANION")]
    companion: bool,
    /// bouncer's own namespace: left alone by the companion, and where its
    /// Lease lives.
    #[arg(long, env = "POD_NAMESPACE", default_value = "bouncer-system")]
    companion_namespace: String,
    /// How long the companion's Lease holds without renewal: how long a
    /// dead leader's replicas wait before one of them takes over.
    #[arg(long, env = "BOUNCER_COMPANION_LEASE", default_value = "15s", value_parser = humantime::parse_duration)]
    companion_lease_duration: Duration,
}

/// Memory the server needs besides policy instances: code, compiled
/// components, connections, request and response buffers.
pub(crate) const SERVER_MEMORY: usize = 128 * 1024 * 1024;
/// The smallest instance memory budget derived from a memory limit.
const MIN_INSTANCE_MEMORY: usize = 32 * 1024 * 1024;

/// The instance memory budget: `--instance-memory`, else the memory limit
/// minus [`SERVER_MEMORY`], else the engine's default.
fn instance_memory(args: &ServeArgs, default: usize) -> usize {
    match (args.instance_memory, args.memory_limit) {
        (Some(bytes), _) => bytes,
        (None, Some(limit)) => limit.saturating_sub(SERVER_MEMORY).max(MIN_INSTANCE_MEMORY),
        (None, None) => default,
    }
}

fn parse_bytes(text: &str) -> Result<usize, String> {
    bouncer::config::parse_quantity(text)
        .ok_or_else(|| format!("`{text}`: use bytes or a number with Ki, Mi or Gi"))
}

/// This replica's name: the pod's (`POD_NAME`), else the host's, with the process id.
fn replica_name() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "bouncer".into(), |h| h.trim().to_owned());
        format!("{host}-{}", std::process::id())
    })
}

/// Runs the webhook until SIGTERM or Ctrl-C.
pub(super) fn run(args: &ServeArgs, engine: &EngineConfig) -> Result<ExitCode> {
    if args.request_deadline.is_zero() {
        bail!("--request-deadline must be more than zero");
    }
    let options = ServeOptions {
        addr: args.addr,
        config: match &args.config {
            Some(path) => ConfigSource::File(path.clone()),
            None => ConfigSource::Embedded,
        },
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        write_ca: args.write_ca.clone(),
        client_ca: args.client_ca.clone(),
        limits: RequestLimits {
            deadline: args.request_deadline,
            max_body: args.max_body,
        },
        watch_interval: args.watch_interval,
        config_settle: args.config_settle,
        shutdown_delay: args.shutdown_delay,
        drain_timeout: args.drain_timeout,
        health_addr: args.health_addr,
        connections: bouncer::server::ConnectionLimits {
            max_connections: args.max_connections.max(1),
            idle_timeout: args.idle_timeout,
            ..Default::default()
        },
        strict_start: args.strict_start,
        kube: match &args.kubeconfig {
            Some(path) => bouncer::server::KubeAccess::Kubeconfig(path.clone()),
            None => bouncer::server::KubeAccess::Infer,
        },
        shadow_report_interval: args.shadow_report_interval.max(Duration::from_secs(1)),
        companion: args
            .companion
            .then(|| bouncer::companion::CompanionOptions {
                namespace: args.companion_namespace.clone(),
                identity: replica_name(),
                lease_duration: args.companion_lease_duration.max(Duration::from_secs(3)),
            }),
        engine: EngineConfig {
            instance_memory: instance_memory(args, engine.instance_memory),
            max_instances: args.max_instances.max(2),
            reset: args.instance_reset.into(),
            ..engine.clone()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(options).await?;
        server.run(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn shutdown_signal() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => {
            tracing::info!("SIGTERM received");
            Stop::Terminate
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupt received");
            Stop::Interrupt
        }
    }
}
