//! A policy's output is bounded, and so is the host's work on it: over a bound
//! is that policy's failure, answered by its failure mode with a clear reason.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bouncer::policy::{Limits, LogLimits, OutputLimits, Source};
use bouncer_tests::config::{config, hostile, hostile_wasi};
use bouncer_tests::server::start;
use bouncer_tests::{HOSTILE_POLICY, engine, fixture};
use futures::StreamExt as _;
use serde_json::json;

use super::{MIB, QUIET, reset_peak_rss, rss};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_bomb_is_the_policys_failure_and_the_host_stays_small() {
    let _quiet = QUIET.write().await;
    let entries = [
        hostile("bomb", "patch-bomb", "    mutating: true\n"),
        hostile_wasi(
            "wasi-bomb",
            "patch-bomb",
            "    mutating: true\n    failure: open\n",
        ),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |_| {}).await;
    let review = fixture("deployment-create.json");
    // Warm up (compile caches, connection pools), then measure the peak from here.
    let _ = server.post("/mutate/bomb", &review).await;
    let (before, _) = rss();
    reset_peak_rss();

    let client = server.client();
    let urls = [server.url("/mutate/bomb"), server.url("/mutate/wasi-bomb")];
    let answers: Vec<_> = futures::stream::iter(0..24)
        .map(|i| bouncer_tests::server::post(&client, &urls[i % 2], &review))
        .buffer_unordered(4)
        .collect()
        .await;
    let (_, peak) = rss();

    let too_large = format!(
        "its JSON patch would make the object larger than {} bytes",
        3 * MIB
    );
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let response = &body["response"];
        assert!(
            response.get("patch").is_none(),
            "a bomb's patch was sent: {body}"
        );
        if response["allowed"] == false {
            let message = response["status"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("bomb: returned an unusable verdict: "),
                "{message}"
            );
            assert!(message.contains(&too_large), "{message}");
            assert!(message.ends_with("(failure mode: closed)"), "{message}");
        } else {
            let warning = response["warnings"][0].as_str().unwrap();
            assert!(warning.starts_with("wasi-bomb: "), "{warning}");
            assert!(warning.contains(&too_large), "{warning}");
        }
    }
    // Unbounded, one bomb took 1.6–6.8 GB of host memory. Bounded, the host
    // holds at most a few copies of a 3 MiB object per review in flight.
    let grown = peak.saturating_sub(before);
    eprintln!("patch bombs: peak RSS grew by {} MiB", grown / MIB);
    assert!(grown < 200 * MIB, "peak RSS grew by {} MiB", grown / MIB);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn huge_messages_and_warning_floods_get_a_short_answer_by_the_failure_mode() {
    let _quiet = QUIET.read().await;
    let entries = [
        hostile("shouter", "huge-message", ""),
        hostile_wasi("warner", "many-warnings", "    failure: open\n"),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |_| {}).await;
    let review = fixture("ingress-create.json");
    let response = server
        .client()
        .post(server.url("/validate"))
        .body(review.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    // An 8 MiB message and 200,000 warnings became a response of a few hundred bytes.
    assert!(text.len() < 2048, "{} bytes: {text}", text.len());
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["response"]["status"]["message"],
        json!(format!(
            "shouter: returned an unusable verdict: its message is {} bytes, \
             over the {}-byte limit (failure mode: closed)",
            8 * MIB,
            OutputLimits::MESSAGE_BYTES
        ))
    );
    assert_eq!(
        body["response"]["warnings"],
        json!([format!(
            "warner: returned an unusable verdict: it returned 200000 warnings, \
             over the limit of {}; request allowed (failure mode: open)",
            OutputLimits::WARNINGS
        )])
    );
    server.stop().await.unwrap();
}

/// A log sink that counts the bytes written to it.
#[derive(Clone, Default)]
struct Counted(Arc<AtomicUsize>);

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_log_flood_is_cut_to_the_per_evaluation_and_per_policy_bounds() {
    let engine = engine();
    let policy = engine
        .load(
            "flood",
            &Source::File(HOSTILE_POLICY.into()),
            &json!({"behaviour": "log-flood"}),
            Limits::default(),
        )
        .unwrap();
    let body = serde_json::to_vec(&fixture("ingress-create.json")).unwrap();
    let request =
        bouncer::admission::wit::to_wit(&bouncer::admission::review::decode(&body).unwrap());
    let written = Counted::default();
    let sink = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let started = std::time::Instant::now();
    let evaluations = 40;
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..evaluations {
            policy.evaluate(&request).expect("the flood is allowed");
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = written.0.load(Ordering::Relaxed);
    // 40 evaluations × 500 lines × 64 fields × 4 KiB asked for 5 GB of log.
    // Allowed: the policy's burst plus its rate over the run, each line with
    // its formatting (timestamp, level, policy, uid: < 400 bytes).
    let lines_per_evaluation = LogLimits::LINES as usize + 1;
    let allowed = LogLimits::BURST_BYTES
        + (LogLimits::BYTES_PER_SECOND as f64 * elapsed) as usize
        + evaluations * lines_per_evaluation * 400;
    eprintln!("log flood: {bytes} bytes written in {elapsed:.2}s (bound {allowed})");
    assert!(bytes <= allowed, "{bytes} bytes of log, over {allowed}");
    assert!(bytes > 0, "nothing was logged at all");
    assert!(
        policy.log_lines_dropped() >= (evaluations * (500 - lines_per_evaluation)) as u64,
        "dropped {}",
        policy.log_lines_dropped()
    );
}
