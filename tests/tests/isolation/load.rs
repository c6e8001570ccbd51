//! A policy that loops, hoards memory or floods with requests spends its own
//! evaluation slots, time and memory share: other policies, `/healthz` and the
//! server keep answering.

use std::time::{Duration, Instant};

use bouncer_tests::config::{alb, config, hostile, hostile_wasi};
use bouncer_tests::fixture;
use bouncer_tests::server::{TestServer, post, start};
use futures::StreamExt as _;

use super::{MIB, QUIET, quantile, reset_peak_rss, rss};

/// Hammers `path` with `concurrency` clients until `stop` turns true.
fn hammer(
    server: &TestServer,
    path: &str,
    concurrency: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    let (client, url) = (server.client(), server.url(path));
    let review = fixture("ingress-create.json");
    tokio::spawn(async move {
        let clients = (0..concurrency).map(|_| {
            let (client, url, review, mut stop) =
                (client.clone(), url.clone(), review.clone(), stop.clone());
            async move {
                let mut sent = 0;
                while !*stop.borrow_and_update() {
                    let _ = post(&client, &url, &review).await;
                    sent += 1;
                }
                sent
            }
        });
        futures::future::join_all(clients).await.into_iter().sum()
    })
}

/// Latencies of `/healthz` and of a good policy's reviews, one at a time, for `length`.
async fn probe(
    server: &TestServer,
    good: &str,
    length: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let client = server.client();
    let review = fixture("ingress-create.json");
    let (mut health, mut reviews) = (Vec::new(), Vec::new());
    let end = Instant::now() + length;
    while Instant::now() < end {
        let started = Instant::now();
        let response = client
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("/healthz answers");
        assert_eq!(response.status().as_u16(), 200);
        health.push(started.elapsed());

        let started = Instant::now();
        let (status, body) = post(&client, &server.url(good), &review).await;
        reviews.push(started.elapsed());
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["response"]["allowed"], true,
            "the good policy was harmed: {body}"
        );
        assert!(body["response"].get("warnings").is_none(), "{body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (health, reviews)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_neighbour_at_concurrency_8_leaves_healthz_and_a_good_policy_responsive() {
    let _quiet = QUIET.write().await;
    // The loops run to a 2 s timeout, so any request that waited for one
    // would take more than 2 s.
    let timeout = Duration::from_secs(2);
    let entries = [
        alb("good", ""),
        hostile("spin", "loop", "    timeout: 2s\n    failure: open\n"),
        hostile_wasi("wasi-spin", "loop", "    timeout: 2s\n    failure: open\n"),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |o| {
        o.limits.deadline = Duration::from_secs(5)
    })
    .await;
    let _ = probe(&server, "/validate/good", Duration::from_millis(200)).await;
    let (mut quiet_health, mut quiet_reviews) =
        probe(&server, "/validate/good", Duration::from_secs(1)).await;

    for looping in ["/validate/spin", "/validate/wasi-spin"] {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let load = hammer(&server, looping, 8, stop_rx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (mut health, mut reviews) =
            probe(&server, "/validate/good", Duration::from_secs(3)).await;
        stop_tx.send(true).unwrap();
        let sent = load.await.unwrap();
        assert!(sent > 0);
        eprintln!(
            "{looping} looping at c=8: /healthz p99 {:?} (quiet {:?}), good policy p99 {:?} (quiet {:?}), {} reviews",
            quantile(&mut health, 0.99),
            quantile(&mut quiet_health, 0.99),
            quantile(&mut reviews, 0.99),
            quantile(&mut quiet_reviews, 0.99),
            reviews.len(),
        );
        // A generous bound: nothing waited for a loop's timeout. The figures
        // themselves are the isolation benchmark's (tests/benches/isolation.rs).
        for (what, samples) in [("/healthz", &health), ("good policy", &reviews)] {
            let worst = samples.iter().max().unwrap();
            assert!(
                *worst < timeout / 2,
                "{what} took {worst:?} next to {looping}"
            );
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_loop_at_concurrency_300_never_refuses_another_policy() {
    let _quiet = QUIET.write().await;
    let entries = [
        alb("good", ""),
        hostile_wasi(
            "wasi-spin",
            "loop",
            "    timeout: 200ms\n    failure: open\n",
        ),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |_| {}).await;
    let client = server.client();
    let review = fixture("ingress-create.json");
    let (spin_url, good_url) = (
        server.url("/validate/wasi-spin"),
        server.url("/validate/good"),
    );
    let spin = futures::stream::iter(0..300)
        .map(|_| post(&client, &spin_url, &review))
        .buffer_unordered(300)
        .collect::<Vec<_>>();
    let good = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        futures::stream::iter(0..200)
            .map(|_| post(&client, &good_url, &review))
            .buffer_unordered(10)
            .collect::<Vec<_>>()
            .await
    };
    let (spun, good) = tokio::join!(spin, good);
    for (status, body) in &good {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["response"]["allowed"], true, "{body}");
        assert!(body["response"].get("warnings").is_none(), "{body}");
    }
    // The looping policy's own requests are answered by its failure mode:
    // its deadline, or its slots being busy.
    for (status, body) in &spun {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["response"]["allowed"], true, "{body}");
        let warning = body["response"]["warnings"][0].as_str().unwrap();
        assert!(
            warning.contains("did not answer within")
                || warning.contains("evaluation slots were busy"),
            "{warning}"
        );
        assert!(!warning.contains("instance slot"), "{warning}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_slow_fail_open_policy_cannot_spend_a_fail_closed_policys_time() {
    let _quiet = QUIET.read().await;
    let entries = [
        hostile(
            "slow",
            "loop",
            "    timeout: 10s\n    failure: open\n    mutating: true\n",
        ),
        alb("strict", "    failure: closed\n    mutating: false\n"),
        alb(
            "fixer",
            "    failure: closed\n    settings: {mutate: true}\n",
        ),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |o| {
        o.limits.deadline = Duration::from_millis(600)
    })
    .await;
    let mut review = fixture("ingress-create.json");
    bouncer_tests::set_annotation(&mut review, "alb.ingress.kubernetes.io/target-type", None);

    // Validating: the policies are independent and each has the whole deadline.
    let (_, body) = server.post("/validate", &review).await;
    let response = &body["response"];
    assert_eq!(response["allowed"], false, "{body}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "strict: Ingress web/webapp-ingress is handled by the AWS Load Balancer Controller"
        ),
        "the fail-closed policy judged the object, not its deadline: {message}"
    );
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("slow: did not answer within"),
        "{warning}"
    );

    // Mutating: in turn, and the slow one only spends its share of the time.
    let (_, body) = server.post("/mutate", &review).await;
    let response = &body["response"];
    assert_eq!(response["allowed"], true, "{body}");
    assert_eq!(
        response["patchType"], "JSONPatch",
        "the second policy still mutated: {body}"
    );
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("slow: did not answer within"),
        "{body}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoarding_instances_stay_within_the_memory_budget_and_leave_others_their_share() {
    let _quiet = QUIET.write().await;
    let budget = 128 * MIB;
    let entries = [
        alb("good", ""),
        hostile(
            "hoard",
            "alloc",
            "    memory: 64Mi\n    concurrency: 8\n    timeout: 2s\n    failure: open\n",
        ),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |o| {
        o.engine.instance_memory = budget as usize
    })
    .await;
    let client = server.client();
    let review = fixture("ingress-create.json");
    let _ = server.post("/validate/good", &review).await;
    let (before, _) = rss();
    reset_peak_rss();
    let (hoard_url, good_url) = (server.url("/validate/hoard"), server.url("/validate/good"));
    let hoard = futures::stream::iter(0..48)
        .map(|_| post(&client, &hoard_url, &review))
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let good = futures::stream::iter(0..48)
        .map(|_| post(&client, &good_url, &review))
        .buffer_unordered(2)
        .collect::<Vec<_>>();
    let (hoarded, good) = tokio::join!(hoard, good);
    let (_, peak) = rss();
    for (_, body) in &good {
        assert_eq!(body["response"]["allowed"], true, "{body}");
        assert!(body["response"].get("warnings").is_none(), "{body}");
    }
    let mut by_budget = 0;
    for (_, body) in &hoarded {
        let warning = body["response"]["warnings"][0].as_str().unwrap_or_default();
        if warning.contains("instance memory budget") {
            by_budget += 1;
        } else {
            // Its own cap, or (on a busy machine, where a long evaluation only
            // gets leftover CPU) its deadline or its slots: its own failures all.
            assert!(
                warning.contains("tried to use more than its 64 MiB memory limit")
                    || warning.contains("did not answer within")
                    || warning.contains("evaluation slots were busy"),
                "{body}"
            );
        }
    }
    // 16 hoarders × 64 MiB would be 1 GiB; the budget lets 128 MiB be held.
    assert!(by_budget > 0, "no hoarder met the budget: {hoarded:?}");
    let grown = peak.saturating_sub(before);
    eprintln!(
        "hoarders: peak RSS grew by {} MiB (budget {} MiB)",
        grown / MIB,
        budget / MIB
    );
    assert!(
        grown < budget + 96 * MIB,
        "peak RSS grew by {} MiB",
        grown / MIB
    );
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains(r#"bouncer_policy_instance_memory_bytes{policy="hoard"} 0"#),
        "memory is given back once evaluations end: {metrics}"
    );
    server.stop().await.unwrap();
}
