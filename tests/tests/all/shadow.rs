//! Shadow candidates in `bouncer serve`, over real TLS: a candidate sees the
//! entry's reviews and never changes or holds up an answer, however it
//! behaves; what it would have done differently is counted and shown.

use std::time::{Duration, Instant};

use bouncer_tests::config::{config, hostile};
use bouncer_tests::server::start;
use bouncer_tests::{fixture, metric};

/// A hostile entry that allows, shadowed by a candidate behaving as `candidate`.
fn shadowed(name: &str, candidate: &str, shadow_extra: &str) -> String {
    hostile(
        name,
        "allow",
        &format!("    shadow:\n      settings: {{behaviour: {candidate}}}\n{shadow_extra}"),
    )
}

#[tokio::test]
async fn candidates_that_deny_loop_or_hoard_memory_change_no_answer_and_are_counted() {
    let entries = [
        shadowed("gate", "deny", ""),
        shadowed("looper", "loop", "      timeout: 150ms\n"),
        shadowed("hoarder", "alloc", "      memory: 16Mi\n"),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |_| {}).await;
    let review = fixture("deployment-create.json");
    let rounds = 12;
    for _ in 0..rounds {
        let asked = Instant::now();
        let (status, body) = server.post("/validate", &review).await;
        let took = asked.elapsed();
        assert_eq!(status, 200);
        assert_eq!(body["response"]["allowed"], true, "{body}");
        assert!(
            body["response"].get("warnings").is_none(),
            "a candidate spoke in the answer: {body}"
        );
        // The looping candidate runs until its wall-clock stop (8 × 150 ms, at
        // least 1 s); an answer that waited for it would show.
        assert!(took < Duration::from_secs(1), "a review took {took:?}");
    }
    let done = async || {
        let metrics = server.get_text("/metrics").await;
        let judged = |policy: &str| {
            ["agreed", "disagreed", "busy", "starved"]
                .iter()
                .map(|r| {
                    metric(
                        &metrics,
                        &format!(
                            "bouncer_shadow_evaluations_total{{policy=\"{policy}\",result=\"{r}\"}}"
                        ),
                    )
                })
                .sum::<u64>()
        };
        ["gate", "looper", "hoarder"]
            .iter()
            .all(|p| judged(p) == rounds)
    };
    for _ in 0..200 {
        if done().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = server.get_text("/metrics").await;
    let count = |policy: &str, result: &str| {
        metric(
            &metrics,
            &format!("bouncer_shadow_evaluations_total{{policy=\"{policy}\",result=\"{result}\"}}"),
        )
    };
    // Every review the deny-all candidate judged, it disagreed with; a review
    // that found its two slots busy was not shadowed, and is counted so.
    let denied = metric(
        &metrics,
        "bouncer_shadow_disagreements_total{policy=\"gate\",kind=\"Deployment\",change=\"newly-denied\"}",
    );
    assert!(denied >= 1, "{metrics}");
    assert_eq!(count("gate", "agreed"), 0, "{metrics}");
    assert_eq!(
        denied + count("gate", "busy") + count("gate", "starved"),
        rounds,
        "{metrics}"
    );
    // Two slots each: reviews that found both busy were not shadowed, and say so.
    for policy in ["looper", "hoarder"] {
        let failed = metric(
            &metrics,
            &format!(
                "bouncer_shadow_disagreements_total{{policy=\"{policy}\",kind=\"Deployment\",change=\"failure\"}}"
            ),
        );
        let (busy, starved) = (count(policy, "busy"), count(policy, "starved"));
        assert!(failed >= 1, "{policy}: no failure counted\n{metrics}");
        assert_eq!(failed + busy + starved, rounds, "{policy}\n{metrics}");
    }
    let ready = server.get_text("/readyz").await;
    assert!(
        ready.contains(&format!(
            "policy `gate` is shadowed by {}: {denied} compared, {denied} disagreed ({denied} newly-denied)",
            bouncer_tests::HOSTILE_POLICY
        )),
        "{ready}"
    );
    // The entries themselves were never slowed or failed by their candidates.
    for policy in ["gate", "looper", "hoarder"] {
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    "bouncer_evaluations_total{{policy=\"{policy}\",mode=\"enforce\",result=\"allowed\"}}"
                )
            ),
            rounds,
            "{metrics}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_candidate_that_fails_to_load_leaves_its_entry_serving() {
    let entries = hostile(
        "gate",
        "allow",
        "    shadow:\n      settings: {behaviour: reject-settings}\n",
    );
    let server = start(Some(&config(&entries)), |_| {}).await;
    let (status, body) = server
        .post("/validate", &fixture("deployment-create.json"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let ready = server.get_text("/readyz").await;
    assert!(
        ready.contains("policy `gate` has a shadow candidate")
            && ready.contains("that is not loaded")
            && ready.contains("hostile policy refuses these settings"),
        "{ready}"
    );
    server.stop().await.unwrap();
}
