//! A real `bouncer serve` in-process on `127.0.0.1:0`, and an HTTPS client that
//! verifies its certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bouncer::config::ConfigSource;
use bouncer::policy::EngineConfig;
use bouncer::server::{AppState, RequestLimits};
use bouncer::server::{ConnectionLimits, KubeAccess, ServeOptions, Server};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and what a client needs to reach it.
pub struct TestServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The plain-HTTP health port, when the options asked for one.
    pub health_addr: Option<SocketAddr>,
    /// The CA that signed the serving certificate, in PEM.
    pub ca_pem: String,
    /// A scratch directory holding the config (and anything a test adds).
    pub dir: tempfile::TempDir,
    /// The server's shared state (metrics, live policies).
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

/// Default options for tests: loopback, port 0, fast file watching, shared compile cache.
pub fn options(dir: &Path, config: Option<PathBuf>) -> ServeOptions {
    ServeOptions {
        addr: "127.0.0.1:0".parse().expect("address"),
        config: config.map_or(ConfigSource::Embedded, ConfigSource::File),
        tls: None,
        write_ca: Some(dir.join("ca.pem")),
        client_ca: None,
        limits: RequestLimits::default(),
        watch_interval: Duration::from_millis(100),
        config_settle: Duration::from_millis(300),
        shutdown_delay: Duration::ZERO,
        drain_timeout: Duration::from_secs(5),
        health_addr: None,
        connections: ConnectionLimits::default(),
        strict_start: false,
        engine: EngineConfig {
            cache_dir: Some(Path::new(env!("OUT_DIR")).join("compiled-cache")),
            max_instances: 128,
            ..EngineConfig::default()
        },
        kube: KubeAccess::None,
        shadow_report_interval: Duration::from_secs(1),
        companion: None,
    }
}

/// Starts a server with `config` (YAML written to `policies.yaml`; the embedded
/// default when `None`), after `tweak` adjusts the options.
pub async fn start(config: Option<&str>, tweak: impl FnOnce(&mut ServeOptions)) -> TestServer {
    bouncer::server::install_default_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = config.map(|text| {
        let path = dir.path().join("policies.yaml");
        std::fs::write(&path, text).expect("write config");
        path
    });
    let mut options = options(dir.path(), config_path);
    tweak(&mut options);
    let ca_file = options.write_ca.clone();
    let server = Server::bind(options).await.expect("server binds");
    let addr = server.local_addr().expect("address");
    let health_addr = server.health_addr();
    let state = server.state().clone();
    let ca_pem = ca_file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    // Registry policies are pulled after the port opens; tests of a loaded
    // configuration start once the pulls have ended (each within its
    // `registry.timeout`).
    let pulled = tokio::time::timeout(Duration::from_secs(180), async {
        while state.policies.load().pending().next().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(pulled.is_ok(), "registry pulls did not end within 180 s");
    TestServer {
        addr,
        health_addr,
        ca_pem,
        dir,
        state,
        shutdown: Some(tx),
        handle,
    }
}

impl TestServer {
    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A client trusting the server's CA (and nothing else).
    pub fn client(&self) -> reqwest::Client {
        client(&self.ca_pem, None)
    }

    /// POSTs a JSON review and returns the status and the JSON (or text) body.
    pub async fn post(&self, path: &str, review: &Value) -> (u16, Value) {
        post(&self.client(), &self.url(path), review).await
    }

    /// GETs `path` and returns the status and the body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client()
            .get(self.url(path))
            .send()
            .await
            .expect("GET succeeds");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// GETs `path` and returns the body text, whatever the status.
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.1
    }

    /// Polls `done` every 50 ms for 5 s; panics naming `what`, with `/readyz`, when it stays false.
    pub async fn wait_for(&self, what: &str, mut done: impl AsyncFnMut() -> bool) {
        for _ in 0..100 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ready = self.get_text("/readyz").await;
        panic!("{what} did not happen in 5 s; /readyz says: {ready}");
    }

    /// Stops accepting, drains, and returns what `run` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.await.expect("server task")
    }
}

/// POSTs JSON with `client`; the body comes back as JSON when it is JSON, else as a string.
pub async fn post(client: &reqwest::Client, url: &str, review: &Value) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(review).expect("encode"))
        .send()
        .await
        .expect("request succeeds");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A client trusting `ca_pem`, presenting `identity` (cert chain PEM, key PEM) when given.
pub fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(ca_pem, identity))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The rustls client configuration of [`client`] (the host's test kit's,
/// `host/tests/all/support/tls.rs`).
pub fn tls_config(ca_pem: &str, identity: Option<(&str, &str)>) -> rustls::ClientConfig {
    bouncer::server::install_default_provider();
    crate::tls::client_config_pem(ca_pem, identity)
}

/// The sending half of an HTTP/2 connection, as the API server keeps one.
pub type H2Sender = hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// Opens one HTTP/2 connection over TLS (ALPN `h2`) to `addr`, trusting
/// `ca_pem`; the handle ends when the connection closes, whoever closed it.
pub async fn h2_connect(
    addr: SocketAddr,
    ca_pem: &str,
) -> (H2Sender, JoinHandle<Result<(), hyper::Error>>) {
    let tls = connect_tls(addr, ca_pem, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    (sender, tokio::spawn(connection))
}

/// A raw TLS connection to `addr` for HTTP/1.1 written by hand, trusting `ca_pem`.
pub async fn tls_connect(addr: SocketAddr, ca_pem: &str) -> TlsStream {
    connect_tls(addr, ca_pem, b"http/1.1").await
}

/// A client TLS stream over TCP.
pub type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect_tls(addr: SocketAddr, ca_pem: &str, alpn: &[u8]) -> TlsStream {
    let mut config = tls_config(ca_pem, None);
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("TCP connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("TLS handshake")
}

/// Sends one POST over `sender`; the status and the body text.
pub async fn h2_post(sender: &mut H2Sender, path: &str, body: Vec<u8>) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let request = hyper::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
