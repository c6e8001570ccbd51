//! Connections cannot exhaust the server: idle ones close (HTTP/1 and HTTP/2),
//! a cap refuses more with a readable 503 (and leaves the probes' port alone),
//! and an early error status reaches an HTTP/2 client as that status, not as a
//! reset stream.

use std::time::Duration;

use bouncer_tests::fixture;
use bouncer_tests::server::{h2_connect, h2_post, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::QUIET;

#[tokio::test]
async fn idle_connections_are_closed_over_http2_and_http1() {
    let _quiet = QUIET.read().await;
    let server = start(None, |o| {
        o.connections.idle_timeout = Duration::from_secs(1)
    })
    .await;
    let review = serde_json::to_vec(&fixture("ingress-create.json")).unwrap();

    let (mut sender, connection) = h2_connect(server.addr, &server.ca_pem).await;
    let (status, _) = h2_post(&mut sender, "/validate", review.clone()).await;
    assert_eq!(status, 200);
    // Nothing in flight: the server sends GOAWAY after the idle timeout and
    // the connection ends (it never did before: 20k of them took every fd).
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection stayed open");

    let mut h1 = bouncer_tests::server::tls_connect(server.addr, &server.ca_pem).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), h1.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "an idle HTTP/1 connection stayed open");

    // A connection with a request in flight is not idle, however long it takes.
    let slow = tokio::spawn({
        let (addr, ca) = (server.addr, server.ca_pem.clone());
        async move {
            let (mut sender, _connection) = h2_connect(addr, &ca).await;
            h2_post(&mut sender, "/validate", review).await
        }
    });
    assert_eq!(slow.await.unwrap().0, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_get_a_503_that_says_why() {
    let _quiet = QUIET.read().await;
    let server = start(None, |o| {
        o.connections.max_connections = 2;
        o.health_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let review = serde_json::to_vec(&fixture("ingress-create.json")).unwrap();
    let (mut first, _c1) = h2_connect(server.addr, &server.ca_pem).await;
    let (mut second, _c2) = h2_connect(server.addr, &server.ca_pem).await;
    assert_eq!(
        h2_post(&mut first, "/validate", review.clone()).await.0,
        200
    );
    assert_eq!(
        h2_post(&mut second, "/validate", review.clone()).await.0,
        200
    );

    let mut third = bouncer_tests::server::tls_connect(server.addr, &server.ca_pem).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(
            "bouncer is at its connection limit (2 open connections); retry, or raise --max-connections"
        ),
        "{answer}"
    );
    // The probes have connections of their own.
    let health = server.health_addr.unwrap();
    let probe = reqwest::get(format!("http://{health}/healthz"))
        .await
        .unwrap();
    assert_eq!(probe.status().as_u16(), 200, "the kubelet was locked out");
    let metrics = {
        drop(first);
        drop(_c1);
        // The slot is free again once a connection closes.
        let client = server.client();
        let mut text = String::new();
        for _ in 0..50 {
            if let Ok(response) = client.get(server.url("/metrics")).send().await
                && response.status() == 200
            {
                text = response.text().await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        text
    };
    // At least the third connection (and any retry above that came too early).
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bouncer_connections_refused_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no refusal count in {metrics}"));
    assert!(refused >= 1, "{metrics}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_oversized_body_over_http2_gets_its_413() {
    let _quiet = QUIET.read().await;
    let server = start(None, |o| o.limits.max_body = 8192).await;
    let (mut sender, _connection) = h2_connect(server.addr, &server.ca_pem).await;
    let (status, text) = h2_post(&mut sender, "/validate", vec![b' '; 256 * 1024]).await;
    assert_eq!(
        (status, text.as_str()),
        (413, "the request body is larger than the 8192 byte limit\n")
    );
    // The connection is still usable.
    let review = serde_json::to_vec(&fixture("ingress-create.json")).unwrap();
    let (status, text) = h2_post(&mut sender, "/validate", review).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await.unwrap();
}
