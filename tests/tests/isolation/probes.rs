//! With mTLS on the review port, the kubelet's probes (which present no client
//! certificate) use the plain health port; and the client CA bundle is re-read
//! when it changes, like the serving certificate.

use bouncer_tests::certs::issue_cert;
use bouncer_tests::fixture;
use bouncer_tests::server::{client, post, start};

use super::QUIET;

#[tokio::test]
async fn with_mtls_probes_use_the_health_port_and_the_client_ca_reloads() {
    let _quiet = QUIET.read().await;
    let dir = tempfile::tempdir().unwrap();
    let client_ca = dir.path().join("client-ca.pem");
    let (old_ca, old_cert, old_key) = issue_cert("API server client CA");
    std::fs::write(&client_ca, &old_ca).unwrap();
    let server = start(None, |o| {
        o.client_ca = Some(client_ca.clone());
        o.health_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let health = server.health_addr.expect("a health port is bound");

    // Probes: plain HTTP, no certificate.
    let plain = reqwest::Client::new();
    for (path, expected) in [("/healthz", "ok\n"), ("/readyz", "ready: ")] {
        let response = plain
            .get(format!("http://{health}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(
            response.text().await.unwrap().starts_with(expected),
            "{path}"
        );
    }
    let metrics = plain
        .get(format!("http://{health}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("bouncer_connections_open")
    );
    // The health port serves no reviews.
    let review = fixture("ingress-create.json");
    let refused = plain
        .post(format!("http://{health}/validate"))
        .body(review.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 404);

    // Reviews: a client certificate is required.
    let anonymous = post_result(&server.client(), &server.url("/validate"), &review).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate got through"
    );
    let old_client = client(&server.ca_pem, Some((&old_cert, &old_key)));
    let (status, body) = post(&old_client, &server.url("/validate"), &review).await;
    assert_eq!(
        (status, &body["response"]["allowed"]),
        (200, &serde_json::json!(true))
    );

    // Rotate the client CA: the new one is trusted, the old one no longer.
    let (new_ca, new_cert, new_key) = issue_cert("rotated client CA");
    std::fs::write(&client_ca, &new_ca).unwrap();
    server
        .wait_for("the client CA rotation", async || {
            let new_client = client(&server.ca_pem, Some((&new_cert, &new_key)));
            post_result(&new_client, &server.url("/validate"), &review)
                .await
                .is_ok()
        })
        .await;
    let old_again = client(&server.ca_pem, Some((&old_cert, &old_key)));
    assert!(
        post_result(&old_again, &server.url("/validate"), &review)
            .await
            .is_err(),
        "a certificate of the old client CA is still accepted"
    );
    server.stop().await.unwrap();
}

async fn post_result(
    client: &reqwest::Client,
    url: &str,
    review: &serde_json::Value,
) -> reqwest::Result<reqwest::Response> {
    client.post(url).body(review.to_string()).send().await
}
