//! `bouncer serve` over real TLS on a real socket.

use std::time::Duration;

use bouncer_tests::certs::issue_cert;
use bouncer_tests::config::{alb, config, hostile};
use bouncer_tests::server::{client, post, start};
use bouncer_tests::{apply_patch, assert_failed_open, fixture, set_annotation};
use serde_json::{Value, json};

const TARGET_TYPE: &str = "alb.ingress.kubernetes.io/target-type";

fn missing_target_type() -> Value {
    let mut review = fixture("ingress-create.json");
    set_annotation(&mut review, TARGET_TYPE, None);
    review
}

/// The warning a rule adds to a denial when it could not see the IngressClass
/// and judged by `albClassNames` (no cluster here; `why` says what was missing).
fn guessed(policy: &str, why: &str) -> String {
    format!(
        "{policy}: bouncer cannot look up IngressClasses ({why}); judged as an ALB Ingress because \
         `albClassNames` lists `alb`"
    )
}

fn undeclared(policy: &str) -> String {
    guessed(
        policy,
        &format!(
            "policy `{policy}` may not look up networking.k8s.io/v1 IngressClass: its configuration declares \
             no context kinds; add `context: [{{apiVersion: networking.k8s.io/v1, kind: IngressClass}}]` to its entry"
        ),
    )
}

fn uid(review: &Value) -> Value {
    review["request"]["uid"].clone()
}

const DENIAL: &str = "alb-target-type-ip: Ingress web/webapp-ingress is handled by the AWS Load Balancer \
Controller (ingressClassName `alb`) but has no `alb.ingress.kubernetes.io/target-type` annotation, so it \
defaults to `instance` and routes traffic through node ports; set the annotation \
`alb.ingress.kubernetes.io/target-type: ip`";

#[tokio::test]
async fn allowed_and_denied_reviews_have_exact_bodies() {
    let server = start(None, |_| {}).await;
    let allowed = fixture("ingress-create.json");
    let (status, body) = server.post("/validate", &allowed).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": uid(&allowed), "allowed": true, "status": {}}})
    );

    let denied = missing_target_type();
    let (status, body) = server.post("/validate", &denied).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": uid(&denied), "allowed": false,
                            "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": DENIAL},
                            "warnings": [guessed("alb-target-type-ip", "context lookup failed: bouncer has no cluster \
                                connection (in-cluster credentials or --kubeconfig) to look up networking.k8s.io/v1 IngressClass")]}})
    );
    // The per-policy endpoint gives the same answer.
    let (_, one) = server.post("/validate/alb-target-type-ip", &denied).await;
    assert_eq!(one, body);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mutate_patches_once_and_a_second_pass_is_empty() {
    let server = start(
        Some(&config(&alb("alb", "    settings: {mutate: true}\n"))),
        |_| {},
    )
    .await;
    let review = missing_target_type();
    let (status, body) = server.post("/mutate", &review).await;
    assert_eq!(status, 200);
    let response = &body["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    assert_eq!(
        response["warnings"],
        json!([
            "alb: Ingress web/webapp-ingress: bouncer added `alb.ingress.kubernetes.io/target-type: ip` (the controller's default is `instance`)",
            undeclared("alb")
        ])
    );
    let original = &review["request"]["object"];
    let patched = apply_patch(&body, original);
    let mut expected = original.clone();
    expected["metadata"]["annotations"][TARGET_TYPE] = json!("ip");
    assert_eq!(patched, expected);

    let mut again = review.clone();
    again["request"]["object"] = patched;
    let (_, second) = server.post("/mutate", &again).await;
    assert_eq!(
        second,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": uid(&review), "allowed": true, "status": {}}})
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn monitor_mode_allows_with_a_warning_and_counts_it() {
    let server = start(
        Some(&config(&alb("alb-watch", "    mode: monitor\n"))),
        |_| {},
    )
    .await;
    let review = missing_target_type();
    let (_, body) = server.post("/validate", &review).await;
    let expected_warning = DENIAL.replacen("alb-target-type-ip:", "alb-watch:", 1);
    assert_eq!(
        body,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": uid(&review), "allowed": true, "status": {},
                            "warnings": [undeclared("alb-watch"), expected_warning]}})
    );
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"bouncer_evaluations_total{policy="alb-watch",mode="monitor",result="denied"} 1"#
        ),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn match_rules_decide_which_policies_see_a_request() {
    let entries = format!(
        "{}{}",
        alb(
            "alb",
            "    match:\n      namespaces: {exclude: [\"we*\"]}\n",
        ),
        // The positive control: the same policy where `web` is not excluded.
        alb(
            "alb-control",
            "    match:\n      namespaces: {exclude: [\"other*\"]}\n",
        ),
    );
    let server = start(Some(&config(&entries)), |_| {}).await;
    let (_, body) = server.post("/validate", &missing_target_type()).await;
    let message = body["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert!(message.starts_with("alb-control: "), "{message}");
    assert!(
        !message.contains("alb: "),
        "namespace `web` is excluded for `alb`: {message}"
    );
    // Without `match.kinds` an entry governs what its policy declares: a
    // ConfigMap never reaches `alb-target-type-ip`.
    let mut config_map = missing_target_type();
    config_map["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    config_map["request"]["resource"] =
        json!({"group": "", "version": "v1", "resource": "configmaps"});
    let (_, body) = server.post("/validate", &config_map).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let metrics = server.get_text("/metrics").await;
    let evaluated = |policy: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("bouncer_evaluations_total{{policy=\"{policy}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    assert_eq!(evaluated("alb-control"), 1, "the Ingress only: {metrics}");
    assert_eq!(evaluated("alb"), 0, "{metrics}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn failure_modes_with_a_crashing_policy() {
    let entries = format!(
        "{}{}",
        hostile(
            "crash-closed",
            "panic",
            "    failure: closed\n    match: {operations: [CREATE]}\n"
        ),
        hostile(
            "crash-open",
            "panic",
            "    failure: open\n    match: {operations: [UPDATE]}\n"
        ),
    );
    let server = start(Some(&config(&entries)), |_| {}).await;
    let (_, closed) = server
        .post("/validate", &fixture("ingress-create.json"))
        .await;
    assert_eq!(closed["response"]["allowed"], false);
    assert_eq!(closed["response"]["status"]["code"], 500);
    let message = closed["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("crash-closed: stopped with an error: policy panicked at"),
        "{message}"
    );
    // The policy's name once: the response names it in front of a sentence.
    assert_eq!(message.matches("crash-closed").count(), 1, "{message}");

    let (_, open) = server
        .post("/validate", &fixture("ingress-update.json"))
        .await;
    assert_failed_open(&open, "crash-open: stopped with an error:");

    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains(r#"bouncer_policy_errors_total{policy="crash-closed",kind="trap"} 1"#),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_review_past_the_request_deadline_is_answered_by_the_failure_mode() {
    // The policy's own timeout is long; the request deadline cuts it short.
    let entries = hostile("spin", "loop", "    timeout: 30s\n    failure: open\n");
    let server = start(Some(&config(&entries)), |o| {
        o.limits.deadline = Duration::from_millis(200)
    })
    .await;
    let (status, body) = server
        .post("/validate", &fixture("ingress-create.json"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], true);
    let warning = body["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("spin: did not answer within its"),
        "{warning}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_one_line_reason() {
    let server = start(None, |o| o.limits.max_body = 64 * 1024).await;
    let client = server.client();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (client.post(server.url("/validate")).body("<html>"), 400, "not a valid AdmissionReview: expected value at line 1 column 1"),
        (
            client.post(server.url("/validate")).body(r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#),
            400,
            "expected apiVersion `admission.k8s.io/v1` and kind `AdmissionReview`, got apiVersion `admission.k8s.io/v1beta1` and kind `AdmissionReview`",
        ),
        (
            client.post(server.url("/validate")).body(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            400,
            "the AdmissionReview has no `request`",
        ),
        (client.post(server.url("/validate")).body(vec![b' '; 100 * 1024]), 413, "the request body is larger than the 65536 byte limit"),
        (client.get(server.url("/validate")), 405, "method GET is not allowed on /validate"),
        (client.post(server.url("/nowhere")), 404, "no endpoint POST /nowhere"),
        (client.post(server.url("/validate/no-such-policy")).body(fixture("ingress-create.json").to_string()), 404, "no policy named `no-such-policy` is configured"),
    ];
    for (request, status, reason) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{reason}");
        let text = response.text().await.unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.trim_end().starts_with(reason),
            "expected `{reason}`, got `{text}`"
        );
    }
    let mut no_uid = fixture("ingress-create.json");
    no_uid["request"]["uid"] = json!("");
    let (status, body) = server.post("/validate", &no_uid).await;
    assert_eq!(
        (status, body),
        (400, json!("the admission request has an empty `uid`\n"))
    );
    let mut missing = fixture("ingress-create.json");
    missing["request"].as_object_mut().unwrap().remove("uid");
    let (status, body) = server.post("/validate", &missing).await;
    assert_eq!(status, 400);
    assert!(
        body.as_str().unwrap().contains("missing field `uid`"),
        "{body}"
    );

    // The server is unharmed.
    let (status, _) = server
        .post("/validate", &fixture("ingress-create.json"))
        .await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = start(None, |_| {}).await;
    let client = server.client();
    let get = |path: &str| client.get(server.url(path)).send();
    assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok\n");
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let ready = ready.text().await.unwrap();
    let (first, reset) = ready.split_once('\n').unwrap();
    assert_eq!(
        first,
        format!(
            "ready: {} policies loaded from the embedded default config",
            bouncer::config::Config::default_config().policies.len()
        )
    );
    // Which reset is in use depends on the machine's swap (policy/reset.rs);
    // /readyz and the metric must agree on it.
    let path = if reset.starts_with(
        "instances are reset by scan (only the pages a policy wrote): memory cannot swap",
    ) {
        "scan"
    } else if reset
        .starts_with("instances are reset by full reset (every resident page): memory may swap")
    {
        "full"
    } else {
        panic!("no reset line in /readyz: {ready}")
    };
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(&format!("bouncer_instance_reset{{path=\"{path}\"}} 1")),
        "{metrics}"
    );
    server
        .post("/validate", &fixture("ingress-create.json"))
        .await;
    server.post("/validate", &missing_target_type()).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for line in [
        r#"bouncer_requests_total{endpoint="validate",result="allowed"} 1"#,
        r#"bouncer_requests_total{endpoint="validate",result="denied"} 1"#,
        r#"bouncer_evaluations_total{policy="alb-target-type-ip",mode="enforce",result="denied"} 1"#,
        r#"bouncer_evaluation_duration_seconds_count{policy="alb-target-type-ip"} 2"#,
        r#"bouncer_request_duration_seconds_count{endpoint="validate"} 2"#,
        "bouncer_config_last_reload_successful 1",
        "bouncer_in_flight_requests 0",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reload_swaps_policies_without_failing_a_request_and_refuses_a_broken_config() {
    let server = start(Some(&config(&alb("alb", "    mode: enforce\n"))), |_| {}).await;
    let path = server.dir.path().join("policies.yaml");
    let url = server.url("/validate");
    let review = missing_target_type();

    // A client keeps sending while the config changes underneath it.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let load = {
        let (client, url, review) = (server.client(), url.clone(), review.clone());
        tokio::spawn(async move {
            let (mut sent, mut failed) = (0u32, 0u32);
            while !*stop_rx.borrow_and_update() {
                match client.post(&url).body(review.to_string()).send().await {
                    Ok(r) if r.status() == 200 => {}
                    _ => failed += 1,
                }
                sent += 1;
            }
            (sent, failed)
        })
    };
    std::fs::write(&path, config(&alb("alb", "    mode: monitor\n"))).unwrap();
    server
        .wait_for("the switch to monitor mode", async || {
            server.post("/validate", &review).await.1["response"]["allowed"] == true
        })
        .await;
    stop_tx.send(true).unwrap();
    let (sent, failed) = load.await.unwrap();
    assert!(sent > 0);
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the reload"
    );

    // A broken config is refused; the monitor-mode set keeps serving.
    std::fs::write(&path, "policies:\n  - name: alb\n    source: builtin:alb-target-type-ip\n    settings: {albClassNames: []}\n").unwrap();
    server
        .wait_for("the refusal", async || {
            let ready = server.get_text("/readyz").await;
            ready.contains("the last configuration reload was refused")
        })
        .await;
    let (status, text) = server.get("/readyz").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("albClassNames must name at least one ingress class"),
        "{text}"
    );
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains("bouncer_config_last_reload_successful 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bouncer_config_reloads_total{result="failed"} 1"#),
        "{metrics}"
    );
    assert_eq!(
        server.post("/validate", &review).await.1["response"]["allowed"],
        true
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotated_certificate_is_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (old_ca, old_cert, old_key) = issue_cert("old CA");
    std::fs::write(&cert_path, old_cert).unwrap();
    std::fs::write(&key_path, old_key).unwrap();
    let server = start(None, |o| {
        o.tls = Some((cert_path.clone(), key_path.clone()));
        o.write_ca = None;
    })
    .await;
    let review = fixture("ingress-create.json");
    let (status, _) = post(&client(&old_ca, None), &server.url("/validate"), &review).await;
    assert_eq!(status, 200);

    let (new_ca, new_cert, new_key) = issue_cert("new CA");
    std::fs::write(&key_path, new_key).unwrap();
    std::fs::write(&cert_path, new_cert).unwrap();
    server
        .wait_for("the certificate rotation", async || {
            // A new client each time: a fresh TLS handshake.
            client(&new_ca, None)
                .post(server.url("/validate"))
                .body(review.to_string())
                .send()
                .await
                .is_ok()
        })
        .await;
    assert!(
        client(&old_ca, None)
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err(),
        "old CA still accepted"
    );
    server.stop().await.unwrap();
}
