//! `bouncer serve` as a process: start with no config, answer, drain on SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::serve::{free_port, post_raw, serve_command, tls_connect, wait_until_serving};

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
    wait_until_serving(&mut child);

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
    let body = crate::support::serve::ingress_review_without_target_type();
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

#[tokio::test]
async fn sigterm_fails_readiness_and_keeps_answering_for_the_shutdown_delay() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let port = free_port();
    let mut child = serve_command(port, &ca)
        .args(["--shutdown-delay", "3s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = wait_until_serving(&mut child);
    let get = async |path: &str| crate::support::serve::get_raw(port, &ca, path).await;
    assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Inside the delay: endpoints are told to stop sending (readiness fails),
    // and whatever still arrives on new connections is answered.
    let ready = get("/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(
        ready
            .ends_with("not ready: shutting down (in-flight and new reviews are still answered)\n"),
        "{ready}"
    );
    let review = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/apiserver-v1.36/ingress-create.json"),
    )
    .unwrap();
    let answer = post_raw(port, &ca, "/validate", &review).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains(r#""allowed":true"#), "{answer}");

    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "bouncer exits 0 after the delay and the drain"
    );
    let said: Vec<String> = log.try_iter().collect();
    assert!(
        said.iter()
            .any(|l| l
                .contains("shutting down: readiness fails; still answering until the delay ends")),
        "{said:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
}
