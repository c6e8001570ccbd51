//! A good policy's and `/healthz`'s latency while a hostile neighbour loops.
//!
//! A real `bouncer serve` (in this process, on its own two-worker runtime as
//! in production, over TLS on loopback) with three policies: the good
//! `alb-target-type-ip`, and the hostile guest looping until its timeout, once
//! built without WASI (like the built-ins) and once for WASI (like custom
//! policies). A prober sends `/healthz` and a review the good policy evaluates,
//! one at a time, first with nothing else running, then while 8 clients keep
//! the looping policy busy.
//!
//! Run with: `cargo bench -p bouncer-tests --bench isolation`
//! (`BOUNCER_BENCH_SECONDS` sets the time per scenario, default 5.)
//! Figures: `host/benches/README.md`.

use std::time::{Duration, Instant};

use bouncer_tests::config::{alb, config, hostile, hostile_wasi};
use bouncer_tests::fixture;
use bouncer_tests::server::{TestServer, post, start};

fn seconds() -> Duration {
    let seconds = std::env::var("BOUNCER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

struct Latencies {
    health: Vec<Duration>,
    good: Vec<Duration>,
}

fn at(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * q).round() as usize]
}

/// `/healthz` and a good review, one after the other, for `length`.
async fn probe(server: &TestServer, length: Duration) -> Latencies {
    let client = server.client();
    let review = fixture("ingress-create.json");
    let (url_health, url_good) = (server.url("/healthz"), server.url("/validate/good"));
    let mut latencies = Latencies {
        health: Vec::new(),
        good: Vec::new(),
    };
    let end = Instant::now() + length;
    while Instant::now() < end {
        let started = Instant::now();
        let ok = client
            .get(&url_health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        assert!(ok, "/healthz failed");
        latencies.health.push(started.elapsed());
        let started = Instant::now();
        let (status, body) = post(&client, &url_good, &review).await;
        assert!(
            status == 200 && body["response"]["allowed"] == true,
            "{body}"
        );
        latencies.good.push(started.elapsed());
    }
    latencies
}

fn main() {
    let length = seconds();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let entries = [
        alb("good", ""),
        hostile("spin", "loop", "    timeout: 1s\n    failure: open\n"),
        hostile_wasi("wasi-spin", "loop", "    timeout: 1s\n    failure: open\n"),
    ]
    .concat();
    let server = server_runtime.block_on(start(Some(&config(&entries)), |o| {
        o.limits.deadline = Duration::from_secs(5)
    }));
    let _ = client_runtime.block_on(probe(&server, Duration::from_millis(500)));

    println!(
        "| neighbour | /healthz p50 | /healthz p99 | good policy p50 | good policy p99 | probes |"
    );
    println!("|---|---|---|---|---|---|");
    for neighbour in [None, Some("spin"), Some("wasi-spin")] {
        let mut latencies = client_runtime.block_on(async {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut load = Vec::new();
            if let Some(name) = neighbour {
                for _ in 0..8 {
                    let (client, url, mut stop) = (
                        server.client(),
                        server.url(&format!("/validate/{name}")),
                        stop_rx.clone(),
                    );
                    let review = fixture("ingress-create.json");
                    load.push(tokio::spawn(async move {
                        while !*stop.borrow_and_update() {
                            let _ = post(&client, &url, &review).await;
                        }
                    }));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let latencies = probe(&server, length).await;
            stop_tx.send(true).unwrap();
            for task in load {
                let _ = task.await;
            }
            latencies
        });
        let label = match neighbour {
            None => "none".to_owned(),
            Some(name) => format!("`{name}` looping at c=8"),
        };
        let count = latencies.good.len();
        println!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {count} |",
            ms(at(&mut latencies.health, 0.5)),
            ms(at(&mut latencies.health, 0.99)),
            ms(at(&mut latencies.good, 0.5)),
            ms(at(&mut latencies.good, 0.99)),
        );
    }
    server_runtime.block_on(server.stop()).unwrap();
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
