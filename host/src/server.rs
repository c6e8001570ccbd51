//! The HTTPS admission webhook: `bouncer serve`.
//!
//! Start from [`ServeOptions`] and [`Server`]: [`Server::bind`] loads the
//! configuration and binds the socket, [`Server::run`] serves until its shutdown
//! future resolves, then drains in-flight requests.

mod app;
mod client_ca;
mod connection;
mod metrics;
mod readiness;
mod reload;
mod shadow_reports;
mod shadows;
mod state;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use self::client_ca::ClientCa;
pub use self::connection::ConnectionLimits;
use self::connection::{Admit, Connections};
pub use self::state::{AppState, RequestLimits};
pub use self::tls::{install_default_provider, provider};

use self::metrics::Metrics;
use self::state::ConfigStatus;
use self::tls::CertStore;
use crate::admission::Pulls;
use crate::admission::loader::FileStamp;
use crate::config::ConfigSource;
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
    /// How long a changed config file must stay unchanged before it is loaded.
    pub config_settle: Duration,
    /// After SIGTERM, how long `/readyz` fails while reviews are still
    /// accepted, so endpoints stop sending before the listener closes.
    pub shutdown_delay: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Plain-HTTP address for `/healthz`, `/readyz` and `/metrics`.
    pub health_addr: Option<SocketAddr>,
    /// Connection cap and timeouts.
    pub connections: ConnectionLimits,
    /// Exit at start when a policy cannot be loaded, instead of serving the others.
    pub strict_start: bool,
    /// The policy engine's settings.
    pub engine: EngineConfig,
    /// How to reach the API server for context lookups.
    pub kube: KubeAccess,
    /// How often the shadow disagreement reports are written.
    pub shadow_report_interval: Duration,
    /// Run the companion (default-deny NetworkPolicies per namespace) too.
    pub companion: Option<crate::companion::CompanionOptions>,
}

/// How `bouncer serve` reaches the API server (for the watch caches of
/// context-aware policies only; admission itself needs no connection).
pub use crate::context::KubeAccess;

/// A client per `access`; without credentials `serve` still runs, and
/// context-aware policies fail their lookups.
async fn kube_client(access: &KubeAccess) -> anyhow::Result<Option<kube::Client>> {
    match access.client().await {
        Err(crate::context::AccessError::NotFound(error)) => {
            tracing::warn!(%error, "no cluster credentials found; context-aware policies will fail their lookups");
            Ok(None)
        }
        other => Ok(other?),
    }
}

/// Why the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: fail readiness, keep accepting for the shutdown delay, then drain.
    Terminate,
    /// Ctrl-C: someone at a terminal; drain at once.
    Interrupt,
}

impl From<()> for Stop {
    fn from((): ()) -> Self {
        Self::Terminate
    }
}

/// A bound, configured webhook server.
pub struct Server {
    listener: TcpListener,
    health: Option<TcpListener>,
    acceptor: TlsAcceptor,
    client_ca: Option<Arc<ClientCa>>,
    state: Arc<AppState>,
    engine: Arc<PolicyEngine>,
    certs: Arc<CertStore>,
    files: (Vec<PathBuf>, Vec<FileStamp>),
    /// The start-up load left registry entries to a background pull.
    pull_first: bool,
    /// The API server, when credentials were found: for the context caches
    /// and the shadow reports.
    client: Option<kube::Client>,
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
        // The ports open before any registry is asked: a registry that is
        // down or stalls must not keep the probes (and the built-ins) from
        // answering. What only a registry can give is pulled right after,
        // and answers by its failure mode until then. --strict-start wants
        // every policy before serving, so it waits for the pulls.
        let pulls = if options.strict_start {
            Pulls::Now
        } else {
            Pulls::StoreOnly
        };
        let loaded = reload::load_off_thread(engine.clone(), options.config.clone(), pulls)
            .await
            .with_context(|| format!("loading {}", options.config.describe()))?;
        let pull_first = !loaded.set.awaiting_registry().is_empty();
        if pull_first {
            tracing::info!(policies = ?loaded.set.awaiting_registry(), "listening before the registries answer; these policies are pulled in the background");
        }
        let loaded = if options.strict_start {
            loaded.strict().with_context(|| {
                format!("loading {} (--strict-start)", options.config.describe())
            })?
        } else {
            for error in &loaded.failures {
                tracing::error!(error = %format!("{error:#}"), "policy not loaded; it answers by its failure mode until a reload brings it in");
            }
            loaded
        };
        loaded.set.start_serving(&engine);

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
        let client_ca = match &options.client_ca {
            Some(path) => Some(Arc::new(ClientCa::from_file(path)?)),
            None => None,
        };
        if client_ca.is_some() && options.health_addr.is_none() {
            tracing::warn!(
                "--client-ca without --health-addr: probes and metrics need a client certificate too"
            );
        }
        let acceptor = TlsAcceptor::from(tls::server_config(
            certs.clone(),
            client_ca
                .clone()
                .map(|ca| ca as Arc<dyn rustls::server::danger::ClientCertVerifier>),
        )?);
        let listener = TcpListener::bind(options.addr)
            .await
            .with_context(|| format!("binding {}", options.addr))?;
        let health = match options.health_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the health port {addr}"))?,
            ),
            None => None,
        };

        let client = kube_client(&options.kube).await?;
        let cluster: Arc<dyn crate::context::Cluster> =
            Arc::new(crate::context::Watched::new(client.clone()));
        cluster.watch(&loaded.set.context_kinds());
        let metrics = Metrics::new();
        metrics.reload(true);
        let state = Arc::new(AppState {
            policies: ArcSwap::from_pointee(loaded.set),
            metrics,
            status: ArcSwap::from_pointee(ConfigStatus {
                origin: options.config.describe(),
                last_error: None,
                pending: None,
            }),
            limits: options.limits,
            cluster: cluster.clone(),
            shutting_down: AtomicBool::new(false),
            reset: ArcSwap::from_pointee(engine.reset().clone()),
            shadows: Default::default(),
            companion: Default::default(),
            certs: certs.clone(),
        });
        state.metrics.reset_path(engine.reset().path);
        tracing::info!(path = engine.reset().path.name(), why = %engine.reset().why, "policy instance slots reset");
        Ok(Self {
            listener,
            health,
            acceptor,
            client_ca,
            state,
            engine,
            certs,
            files: (loaded.files, loaded.times),
            pull_first,
            client,
            options,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The health port actually bound, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (metrics, live policy set).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` resolves. On [`Stop::Terminate`] `/readyz`
    /// fails at once while reviews are still accepted for the shutdown delay
    /// (endpoints take a moment to drop the pod); then the listeners close and
    /// in-flight requests are answered, up to the drain timeout.
    pub async fn run<S: Into<Stop>>(self, shutdown: impl Future<Output = S>) -> anyhow::Result<()> {
        let Self {
            listener,
            health,
            acceptor,
            client_ca,
            state,
            engine,
            certs,
            files,
            pull_first,
            client,
            options,
        } = self;
        let watching = reload::Watching {
            interval: options.watch_interval,
            settle: options.config_settle,
        };
        let mut background = vec![
            tokio::spawn(reload::watch(
                state.clone(),
                engine,
                options.config.clone(),
                files.0,
                files.1,
                watching,
                reload::hangup_signal(),
                pull_first,
            )),
            tokio::spawn(certs.watch(options.watch_interval)),
        ];
        if let Some(client) = client {
            if let Some(companion) = options.companion.clone() {
                let config = options.config.read()?;
                let stats = state.companion.clone();
                let client = client.clone();
                background.push(tokio::spawn(async move {
                    crate::companion::run(client, &config, companion, stats).await;
                }));
            }
            background.push(tokio::spawn(shadow_reports::write_every(
                state.clone(),
                client,
                options.shadow_report_interval,
            )));
        } else if options.companion.is_some() {
            anyhow::bail!(
                "--companion needs the API server: give --kubeconfig, or run in the cluster"
            );
        }
        if let Some(client_ca) = client_ca {
            background.push(tokio::spawn(client_ca.watch(options.watch_interval)));
        }
        let connections = Arc::new(Connections::new(options.connections, &state.metrics));
        let (stop_accepting, accepting) = tokio::sync::watch::channel(true);
        if let Some(health) = health {
            // A cap of its own: a flood of review connections must not lock
            // the kubelet out of its probes (it would restart the pod).
            let limits = ConnectionLimits {
                max_connections: HEALTH_CONNECTIONS,
                ..options.connections
            };
            background.push(tokio::spawn(accept_plain(
                health,
                app::health_app(state.clone()),
                Arc::new(Connections::new(limits, &state.metrics)),
                accepting.clone(),
            )));
        }
        tracing::info!(addr = %listener.local_addr()?, policies = state.policies.load().entries().len(), "bouncer is serving");
        let webhook = tokio::spawn(accept_tls(
            listener,
            acceptor,
            app::app(state.clone()),
            connections.clone(),
            accepting,
        ));

        let stop = shutdown.await.into();
        state.shutting_down.store(true, Ordering::Relaxed);
        if stop == Stop::Terminate && !options.shutdown_delay.is_zero() {
            tracing::info!(delay = ?options.shutdown_delay, "shutting down: readiness fails; still answering until the delay ends");
            tokio::time::sleep(options.shutdown_delay).await;
        }
        tracing::info!("shutting down: draining in-flight requests");
        stop_accepting.send_replace(false);
        let _ = webhook.await;
        connections.shut_down();
        if tokio::time::timeout(options.drain_timeout, connections.drained())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
        for task in background {
            task.abort();
        }
        Ok(())
    }
}

/// Connections the plain health port takes at once: probes and a scraper.
const HEALTH_CONNECTIONS: u32 = 16;

/// Accepts TLS connections on `listener` until `accepting` turns false.
async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    connections: Arc<Connections>,
    mut accepting: tokio::sync::watch::Receiver<bool>,
) {
    let handshake = connections.limits().handshake_timeout;
    while let Some((tcp, peer)) = accept(&listener, &mut accepting).await {
        let admitted = connections.admit();
        if matches!(admitted, Admit::Drop) {
            continue;
        }
        let (acceptor, router, connections) =
            (acceptor.clone(), router.clone(), connections.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
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
            match admitted {
                Admit::Serve(slot) => connections.serve(tls, router, slot).await,
                Admit::Refuse(permit) => connections.refuse(tls, permit).await,
                Admit::Drop => {}
            }
        });
    }
}

/// Accepts plain-HTTP connections (the health port) until `accepting` turns false.
async fn accept_plain(
    listener: TcpListener,
    router: axum::Router,
    connections: Arc<Connections>,
    mut accepting: tokio::sync::watch::Receiver<bool>,
) {
    while let Some((tcp, _peer)) = accept(&listener, &mut accepting).await {
        let (router, connections) = (router.clone(), connections.clone());
        match connections.admit() {
            Admit::Serve(slot) => {
                tokio::spawn(async move { connections.serve(tcp, router, slot).await });
            }
            Admit::Refuse(permit) => {
                tokio::spawn(async move { connections.refuse(tcp, permit).await });
            }
            Admit::Drop => {}
        }
    }
}

/// The next connection, or `None` once `accepting` turns false.
async fn accept(
    listener: &TcpListener,
    accepting: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        if !*accepting.borrow() {
            return None;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Nagle + delayed ACK on split TLS writes adds ~40 ms to some responses.
                    let _ = tcp.set_nodelay(true);
                    return Some((tcp, peer));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = accepting.changed() => if changed.is_err() { return None; },
        }
    }
}
