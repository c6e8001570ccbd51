//! A fresh instance stays fresh when the node swaps: a real `bouncer serve`
//! (the built binary, in its own process as a node runs it), real swap, and
//! its memory paged out (`process_madvise(MADV_PAGEOUT)`) while a probe policy
//! has written its statics and scratch memory. Every later evaluation must
//! find them pristine: `calls: 1`, `dirty: 0`.
//!
//! On a machine without swap it starts the server first (the scan is proven
//! safe there), enables a swap file, and waits for the server to move to the
//! full reset while serving. It needs root (to enable a swap file, and to page
//! out another process's memory). Without root it says why and skips; as root
//! under `CI=true` it must run.
//!
//! Its own test binary because it changes the machine: swap enabled
//! system-wide and pages pushed out would slow and skew every test running
//! beside it in one process.

mod swap;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bouncer_tests::{HOSTILE_POLICY, bouncer_binary, fixture};
use serde_json::Value;

/// Iterations the probe spins after writing its memory in the concurrent
/// phase: a few milliseconds, so page-outs land while pages are written.
const BUSY: u64 = 3_000_000;

struct Server {
    child: Child,
    port: u16,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ca = dir.join("ca.pem");
        let config = dir.join("policies.yaml");
        // Two entries of one component: state must not cross entries either.
        std::fs::write(
            &config,
            format!(
                "policies:
  - name: slow
    source: {HOSTILE_POLICY}
    settings: {{behaviour: probe, spin: {}}}
    timeout: 1s
    failure: open
  - name: quick
    source: {HOSTILE_POLICY}
    settings: {{behaviour: probe, spin: 0}}
  - name: busy
    source: {HOSTILE_POLICY}
    settings: {{behaviour: probe, spin: {BUSY}}}
    timeout: 2s
",
                u64::MAX
            ),
        )
        .unwrap();
        let child = Command::new(bouncer_binary())
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--write-ca",
            ])
            .arg(&ca)
            .arg("--config")
            .arg(&config)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            // The reset's proof is re-checked at this interval.
            .args(["--watch-interval", "1s"])
            .env("BOUNCER_LOG", "error")
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bouncer serve starts");
        let deadline = Instant::now() + Duration::from_secs(180);
        while !(ca.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            assert!(Instant::now() < deadline, "bouncer serve did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pem = std::fs::read_to_string(&ca).unwrap();
        Self {
            child,
            port,
            client: bouncer_tests::server::client(&pem, None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// What an evaluation of `policy` found: `(calls, dirty bytes)`, or
    /// `None` when it did not answer (a deadline, with failure open).
    async fn probe(&self, policy: &str) -> Option<(u64, u64)> {
        let review = fixture("ingress-create.json");
        let response: Value = self
            .client
            .post(self.url(&format!("/validate/{policy}")))
            .json(&review)
            .send()
            .await
            .expect("the review is answered")
            .json()
            .await
            .expect("a JSON review");
        let warnings: Vec<&str> = response["response"]["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let field = |name: &str| {
            warnings.iter().find_map(|w| {
                w.split_once(&format!("{name}: "))
                    .and_then(|(_, n)| n.trim().parse::<u64>().ok())
            })
        };
        Some((field("calls")?, field("dirty")?))
    }

    async fn readyz(&self) -> String {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Pages the server out every `every` until `stop`; counts the page-outs.
fn page_out_until(
    pid: u32,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut count = 0;
        while !stop.load(Ordering::Relaxed) {
            swap::page_out(pid);
            count += 1;
            std::thread::sleep(every);
        }
        count
    })
}

#[test]
fn evaluations_stay_fresh_while_the_server_is_paged_out() {
    let Some(mut swap) = swap::Swap::prepare() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let swap_at_start = swap.on();
    let server = Server::start(dir.path());
    let pid = server.child.id();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if !swap_at_start {
            // Without a swap device the scan is proven safe; a swapon while
            // serving must move the server to the full reset.
            let ready = server.readyz().await;
            assert!(
                ready.contains("instances are reset by scan") && ready.contains("no swap device"),
                "{ready}"
            );
            if !swap.enable() {
                return;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while !server
                .readyz()
                .await
                .contains("instances are reset by full reset")
            {
                assert!(
                    Instant::now() < deadline,
                    "30 s after swapon the server still resets by scan:\n{}",
                    server.readyz().await
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let ready = server.readyz().await;
        assert!(
            ready.contains("instances are reset by full reset"),
            "with a swap device and no cgroup bar, the scan must not be used:\n{ready}"
        );
        assert_eq!(server.probe("quick").await, Some((1, 0)));

        // Deterministic: the slow probe writes its pages, is paged out while
        // it spins, and ends by its deadline, so nothing touches those pages
        // again before its slot is reset. The quick entry (same component,
        // another entry) must then find nothing of it.
        let mut swapped = 0;
        for round in 0..8 {
            let stop = Arc::new(AtomicBool::new(false));
            let pager = page_out_until(pid, Duration::from_millis(100), stop.clone());
            assert_eq!(
                server.probe("slow").await,
                None,
                "the slow probe ends by its deadline"
            );
            swapped = swapped.max(swap::swapped_kib(pid));
            stop.store(true, Ordering::Relaxed);
            assert!(pager.join().unwrap() > 0);
            assert_eq!(
                server.probe("quick").await,
                Some((1, 0)),
                "round {round}: a fresh instance found an earlier evaluation's state"
            );
        }
        assert!(
            swapped > 0,
            "the page-outs never moved the server's memory to swap: this test proved nothing"
        );

        // Concurrent: 8 clients of the busy probe, the server paged out every
        // second; 6 s here, `BOUNCER_FRESH_SECONDS=60` for the measurement
        // recorded in host/benches/README.md.
        let seconds = std::env::var("BOUNCER_FRESH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(6);
        let stop = Arc::new(AtomicBool::new(false));
        let pager = page_out_until(pid, Duration::from_secs(1), stop.clone());
        let (fresh, stale) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let until = Instant::now() + Duration::from_secs(seconds);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let (fresh, stale) = (fresh.clone(), stale.clone());
                let server = &server;
                async move {
                    while Instant::now() < until {
                        match server.probe("busy").await {
                            Some((1, 0)) => fresh.fetch_add(1, Ordering::Relaxed),
                            _ => stale.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            })
            .collect();
        futures::future::join_all(clients).await;
        stop.store(true, Ordering::Relaxed);
        let page_outs = pager.join().unwrap();
        let (fresh, stale) = (fresh.load(Ordering::Relaxed), stale.load(Ordering::Relaxed));
        eprintln!("{fresh} fresh evaluations, {stale} not, across {page_outs} page-outs");
        assert!(fresh > 100, "too few evaluations to mean anything: {fresh}");
        assert_eq!(stale, 0, "evaluations that saw an earlier one's state");
    });
}
