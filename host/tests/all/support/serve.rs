//! `bouncer serve` as a child process on a loopback port, and raw HTTPS to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback port nothing listens on (until the server binds it).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `bouncer serve` on loopback `port`, writing its generated CA to `ca`, with the
/// shared compile cache, from the workspace root, and no cluster whatever the machine has.
pub(crate) fn serve_command(port: u16, ca: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bouncer"));
    command
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--write-ca",
        ])
        .arg(ca)
        .current_dir(super::workspace())
        .env(
            "BOUNCER_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        // Context lookups fail and readiness does not wait for a cluster.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST");
    command
}

/// Reads the child's piped stderr until it logs that it serves; returns the
/// later lines. Panics with the log when it does not start within 3 minutes.
pub(crate) fn wait_until_serving(child: &mut Child) -> Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    while !log.contains("bouncer is serving") {
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(_) => panic!("bouncer serve did not start:\n{log}"),
        }
    }
    rx
}

/// A TLS connection to `localhost:port`, trusting only `ca`.
pub(crate) async fn tls_connect(
    port: u16,
    ca: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let config = super::tls::client_config(ca);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// One HTTP/1.1 POST over TLS; returns the whole raw response.
pub(crate) async fn post_raw(port: u16, ca: &Path, path: &str, body: &str) -> String {
    let mut stream = tls_connect(port, ca).await;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// One HTTP/1.1 GET over TLS; returns the whole raw response.
pub(crate) async fn get_raw(port: u16, ca: &Path, path: &str) -> String {
    let mut stream = tls_connect(port, ca).await;
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The captured Ingress review without its target type: `alb-target-type-ip` denies it.
pub(crate) fn ingress_review_without_target_type() -> String {
    let mut review: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/apiserver-v1.36/ingress-create.json"),
        )
        .unwrap(),
    )
    .unwrap();
    review["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("alb.ingress.kubernetes.io/target-type");
    review.to_string()
}
