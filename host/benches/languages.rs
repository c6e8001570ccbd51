//! What a policy costs per request in each language: the three custom examples
//! (Rust on wasm32-wasip2, JavaScript, Python) and a built-in (Rust on
//! wasm32-unknown-unknown) on the captured `deployment-create.json` review.
//!
//! Run with: `cargo bench -p bouncer --bench languages` after building the examples
//! (`bouncer build examples/policies/<name>`). Figures: `host/benches/README.md`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bouncer::admission::{review, wit};
use bouncer::policy::{EngineConfig, Limits, Policy, PolicyEngine, Source};
use serde_json::json;

const ROUNDS: usize = 2_000;

fn main() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/apiserver-v1.36/deployment-create.json");
    let body = std::fs::read(fixture).expect("fixture");
    let request = review::decode(&body).expect("review");
    let request = wit::to_wit(&request);

    let candidates = [
        (
            "builtin require-irsa (Rust, wasm32-unknown-unknown)",
            Source::parse("builtin:require-irsa").expect("builtin"),
            json!({}),
        ),
        (
            "deny-latest-tag (Rust, wasm32-wasip2)",
            Source::File(examples.join("deny-latest-tag/policy.wasm")),
            json!({}),
        ),
        (
            "require-team-label (JavaScript)",
            Source::File(examples.join("require-team-label/policy.wasm")),
            json!({"teams": ["reports"]}),
        ),
        (
            "max-replicas (Python)",
            Source::File(examples.join("max-replicas/policy.wasm")),
            json!({"maxReplicas": 5}),
        ),
    ];
    println!("| policy | size | compile (cold) | median | p99 | median from an async worker |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (label, source, settings) in candidates {
        if let Source::File(path) = &source
            && !path.is_file()
        {
            println!(
                "| {label} | not built: run `bouncer build {}` | | | | |",
                path.parent().expect("dir").display()
            );
            continue;
        }
        // A fresh engine without a cache: the first load is a cold compile.
        let engine = PolicyEngine::new(&EngineConfig {
            cache_dir: None,
            max_instances: 16,
            ..EngineConfig::default()
        })
        .expect("engine");
        let started = Instant::now();
        let policy = engine
            .load(label, &source, &settings, Limits::default())
            .expect("loads");
        let compile = started.elapsed();
        let size = engine.describe(label, &source).expect("describes").size;

        let direct = sample(&policy, &request);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let policy = Arc::new(policy);
        let from_worker = {
            let (policy, request) = (policy.clone(), request.clone());
            runtime.block_on(async move {
                tokio::spawn(async move { sample(&policy, &request) })
                    .await
                    .expect("task")
            })
        };
        println!(
            "| {label} | {:.1} MiB | {:.2} s | {} | {} | {} |",
            size as f64 / 1048576.0,
            compile.as_secs_f64(),
            show(direct.0),
            show(direct.1),
            show(from_worker.0),
        );
    }
}

/// Median and p99 of single evaluations.
fn sample(policy: &Policy, request: &bouncer::policy::bindings::Request) -> (Duration, Duration) {
    for _ in 0..50 {
        black_box(policy.evaluate(request).expect("evaluates"));
    }
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            black_box(policy.evaluate(request).expect("evaluates"));
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[ROUNDS / 2], times[ROUNDS * 99 / 100])
}

fn show(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}
