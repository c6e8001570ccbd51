//! One evaluation of `alb-target-type-ip` on a ~4 KB Ingress AdmissionReview
//! captured from a real API server: fresh instance + validate + drop.
//!
//! Run with: `cargo bench -p bouncer --bench evaluate`
//! Figures and how to read them: `host/benches/README.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bouncer::admission::{Endpoint, Entry, PolicySet, review, wit};
use bouncer::config::{FailureMode, Mode};
use bouncer::context::{Cluster, NoCluster};
use bouncer::policy::{EngineConfig, Limits, PolicyEngine, Run, Source};
use criterion::{Criterion, criterion_group, criterion_main};

fn review_body() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/apiserver-v1.36/ingress-update.json"
    );
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    serde_json::to_vec(&value).expect("compact")
}

fn bench(c: &mut Criterion) {
    let engine = PolicyEngine::new(&EngineConfig::default()).expect("engine");
    let source = Source::parse("builtin:alb-target-type-ip").expect("builtin");
    let policy = engine
        .load(
            "alb-target-type-ip",
            &source,
            &serde_json::json!({}),
            Limits::default(),
        )
        .expect("policy");
    let body = review_body();
    let request = review::decode(&body).expect("review");
    let wit_request = wit::to_wit(&request);

    let mut group = c.benchmark_group("alb-target-type-ip");
    group.throughput(criterion::Throughput::Bytes(body.len() as u64));
    group.bench_function("evaluate (instantiate + validate + drop)", |b| {
        b.iter(|| black_box(policy.evaluate(black_box(&wit_request)).expect("evaluates")));
    });
    // The server's path: wait for one of the policy's slots, hand the
    // evaluation to a blocking thread, await it. Against the inline call above,
    // this is the cost of keeping guest code off the async workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let shared = std::sync::Arc::new(wit_request.clone());
    group.bench_function(
        "evaluate off-thread (slot + blocking-thread hand-off)",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let deadline = Instant::now() + Duration::from_secs(1);
                    black_box(
                        policy
                            .evaluate_by(Run::OffThread, shared.clone(), deadline, None)
                            .await
                            .expect("evaluates"),
                    )
                })
            });
        },
    );
    let set = PolicySet::of_one(Entry::matching_everything(
        policy.clone(),
        Mode::Enforce,
        FailureMode::Closed,
        true,
    ));
    let cluster: std::sync::Arc<dyn Cluster> = std::sync::Arc::new(NoCluster);
    group.bench_function("review (decode + evaluate + respond)", |b| {
        b.iter(|| {
            let request = review::decode(black_box(&body)).expect("review");
            let deadline = Instant::now() + Duration::from_secs(1);
            let reviewed = set.review_here(&request, Endpoint::Mutate, &cluster, deadline);
            black_box(review::encode_body(&reviewed.response))
        });
    });
    group.finish();

    // Criterion reports means and medians; the p99 of single evaluations is
    // measured here directly.
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let start = Instant::now();
            black_box(policy.evaluate(&wit_request).expect("evaluates"));
            start.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "alb-target-type-ip evaluate over {} samples ({} byte review): median {:?}, p99 {:?}, max {:?}",
        samples.len(),
        body.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
