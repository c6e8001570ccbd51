//! `bouncer serve` as a process: start with no config, answer, drain on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn tls_connect(
    port: u16,
    ca: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let config = support::tls::client_config(ca);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// `bouncer serve` on loopback `port`, writing its generated CA to `ca`, with the shared compile cache.
fn serve_command(port: u16, ca: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bouncer"));
    command
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--write-ca",
        ])
        .arg(ca)
        .env(
            "BOUNCER_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        // No cluster, whatever the machine has: context lookups fail, readiness does not wait.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST");
    command
}

#[tokio::test]
async fn serve_with_no_arguments_answers_and_sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let port = free_port();
    let mut child = serve_command(port, &ca)
        .env("BOUNCER_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the start-up log line.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("bouncer starts");
        if line.contains("bouncer is serving") {
            break;
        }
    }

    let review = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/apiserver-v1.36/ingress-create.json"),
    )
    .unwrap();
    // Send the headers and half the body, then SIGTERM, then the rest.
    let mut stream = tls_connect(port, &ca).await;
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        review.len()
    );
    let (first, second) = review.split_at(review.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(second.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains(r#""allowed":true"#), "{response}");

    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "bouncer exits 0 after draining");
    // New connections are refused once it is gone.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
}

/// One HTTP/1.1 POST over TLS; returns the whole raw response.
async fn post_raw(port: u16, ca: &Path, path: &str, body: &str) -> String {
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

#[tokio::test]
async fn sighup_reloads_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, config) = (dir.path().join("ca.pem"), dir.path().join("policies.yaml"));
    let entry = |mode: &str| {
        format!(
            "policies:\n  - name: alb\n    source: builtin:alb-target-type-ip\n    mode: {mode}\n"
        )
    };
    std::fs::write(&config, entry("enforce")).unwrap();
    let port = free_port();
    // File watching is effectively off (1 h), so only SIGHUP can reload.
    let mut child = serve_command(port, &ca)
        .args(["--watch-interval", "1h", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..1200 {
        if ca.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let body = review.to_string();
    let denied = post_raw(port, &ca, "/validate", &body).await;
    assert!(denied.contains(r#""allowed":false"#), "{denied}");

    std::fs::write(&config, entry("monitor")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut reloaded = false;
    for _ in 0..100 {
        if post_raw(port, &ca, "/validate", &body)
            .await
            .contains(r#""allowed":true"#)
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(reloaded, "SIGHUP did not switch the policy to monitor mode");
    assert_eq!(status.code(), Some(0));
}
