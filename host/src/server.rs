//! The HTTPS admission webhook: `bouncer serve`.
//!
//! Start from [`ServeOptions`] and [`Server`]: [`Server::bind`] loads the
//! configuration and binds the socket, [`Server::run`] serves until its shutdown
//! future resolves, then drains in-flight requests.

pub mod app;
pub mod metrics;
pub mod reload;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use self::app::{AppState, ConfigStatus, RequestLimits};
use self::metrics::Metrics;
use self::reload::ConfigSource;
use self::tls::CertStore;
use crate::policy::{EngineConfig, PolicyEngine};

/// Everything `bouncer serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Policy configuration.
    pub config: ConfigSource,
    /// Serving certificate and key (PEM); generated when `None`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where to write the generated CA.
    pub write_ca: Option<PathBuf>,
    /// Require client certificates signed by this CA bundle.
    pub client_ca: Option<PathBuf>,
    /// Bounds on requests.
    pub limits: RequestLimits,
    /// How often config, `.wasm` and certificate files are checked for changes.
    pub watch_interval: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout: Duration,
    /// The policy engine's settings.
    pub engine: EngineConfig,
    /// How to reach the API server for context lookups.
    pub kube: KubeAccess,
}

/// How `bouncer serve` reaches the API server (for the watch caches of
/// context-aware policies only; admission itself needs no connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeAccess {
    /// Never: context lookups fail.
    None,
    /// In-cluster credentials, else `KUBECONFIG` or `~/.kube/config`; none found is a warning.
    Infer,
    /// This kubeconfig file; unusable is an error.
    Kubeconfig(PathBuf),
}

/// A client per `access`, or `None` when there is no connection to make.
async fn kube_client(access: &KubeAccess) -> anyhow::Result<Option<kube::Client>> {
    match access {
        KubeAccess::None => Ok(None),
        KubeAccess::Infer => match kube::Config::infer().await {
            Ok(config) => Ok(Some(kube::Client::try_from(config)?)),
            Err(error) => {
                tracing::warn!(%error, "no cluster credentials found; context-aware policies will fail their lookups");
                Ok(None)
            }
        },
        KubeAccess::Kubeconfig(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?;
            Ok(Some(kube::Client::try_from(config)?))
        }
    }
}

/// Slow clients: a TLS handshake or request header must arrive within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, configured webhook server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<AppState>,
    engine: Arc<PolicyEngine>,
    certs: Arc<CertStore>,
    files: (Vec<PathBuf>, Vec<Option<std::time::SystemTime>>),
    options: ServeOptions,
}

impl Server {
    /// Loads the configuration, prepares TLS, and binds the listener.
    ///
    /// # Errors
    /// The configuration or a policy cannot be loaded, TLS material is unusable,
    /// or the address cannot be bound.
    pub async fn bind(options: ServeOptions) -> anyhow::Result<Self> {
        tls::install_default_provider();
        let engine = PolicyEngine::new(&options.engine)?;
        let (engine2, source) = (engine.clone(), options.config.clone());
        let loaded = tokio::task::spawn_blocking(move || reload::load(&engine2, &source))
            .await?
            .with_context(|| format!("loading {}", options.config.describe()))?;

        let certs = match &options.tls {
            Some((cert, key)) => Arc::new(CertStore::from_files(cert, key)?),
            None => {
                let (store, ca) = CertStore::self_signed()?;
                if let Some(path) = &options.write_ca {
                    tls::write_ca(path, &ca)?;
                }
                Arc::new(store)
            }
        };
        let acceptor = TlsAcceptor::from(tls::server_config(
            certs.clone(),
            options.client_ca.as_deref(),
        )?);
        let listener = TcpListener::bind(options.addr)
            .await
            .with_context(|| format!("binding {}", options.addr))?;

        let cluster: Arc<dyn crate::context::Cluster> = Arc::new(crate::context::Watched::new(
            kube_client(&options.kube).await?,
        ));
        cluster.watch(&loaded.set.context_kinds());
        let metrics = Metrics::new();
        metrics.reload(true);
        let state = Arc::new(AppState {
            policies: ArcSwap::from_pointee(loaded.set),
            metrics,
            status: ArcSwap::from_pointee(ConfigStatus {
                origin: options.config.describe(),
                last_error: None,
            }),
            limits: options.limits,
            cluster: cluster.clone(),
        });
        Ok(Self {
            listener,
            acceptor,
            state,
            engine,
            certs,
            files: (loaded.files, loaded.times),
            options,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (metrics, live policy set).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits up to the
    /// drain timeout for in-flight requests.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            listener,
            acceptor,
            state,
            engine,
            certs,
            files,
            options,
        } = self;
        let reloader = tokio::spawn(reload::watch(
            state.clone(),
            engine,
            options.config.clone(),
            files.0,
            files.1,
            options.watch_interval,
            reload::hangup_signal(),
        ));
        let cert_watcher = tokio::spawn(certs.watch(options.watch_interval));

        let router = app::app(state.clone());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HANDSHAKE_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tracing::info!(addr = %listener.local_addr()?, policies = state.policies.load().entries().len(), "bouncer is serving");

        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Nagle + delayed ACK on split TLS writes adds ~40 ms to some responses.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let connection = builder
                    .serve_connection(TokioIo::new(tls), service)
                    .into_owned();
                if let Err(error) = watcher.watch(connection).await {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            });
        }

        tracing::info!("shutting down: draining in-flight requests");
        drop(listener);
        reloader.abort();
        cert_watcher.abort();
        if tokio::time::timeout(options.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
        Ok(())
    }
}
