//! `bouncer serve`: the admission webhook over HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::policy::EngineConfig;
use crate::server::app::RequestLimits;
use crate::server::reload::ConfigSource;
use crate::server::{ServeOptions, Server};

/// Arguments of `bouncer serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
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
        drain_timeout: args.drain_timeout,
        kube: match &args.kubeconfig {
            Some(path) => crate::server::KubeAccess::Kubeconfig(path.clone()),
            None => crate::server::KubeAccess::Infer,
        },
        engine: engine.clone(),
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
async fn shutdown_signal() {
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
        () = terminate => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
}
