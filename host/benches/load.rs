//! The load harness: `bouncer serve` (a child process, as deployed) driven over
//! TLS with keep-alive at concurrency 1, 8 and 64, against a null webhook (the
//! same server with no policies) in the same run.
//!
//! Run with: `cargo bench --workspace --bench load`
//!
//! - `BOUNCER_LOAD_SECONDS`: time per scenario (default 5);
//! - `BOUNCER_LOAD_CONCURRENCY`: e.g. `8` or `1,8` (default `1,8,64`);
//! - `BOUNCER_LOAD_URL`: also drive another webhook, e.g. a peer's
//!   `http://127.0.0.1:3000/validate/annotations` (https with
//!   `BOUNCER_LOAD_CA=ca.pem`), with the Ingress review; `BOUNCER_LOAD_PID` names
//!   its process so its CPU per review is measured too.
//!
//! Every scenario sends reviews its policies evaluate (no request takes a
//! no-match fast path unless the scenario says so). Figures and how to read
//! them: `host/benches/README.md`.

#[allow(dead_code)]
#[path = "../tests/all/support/otlp_sink.rs"]
mod otlp_sink;
#[path = "../tests/all/support/tls.rs"]
mod tls;
// The tests' way to start `bouncer serve` as a child process, shared.
#[allow(dead_code)]
#[path = "../tests/all/support/serve.rs"]
mod serve;

/// The workspace root, where `serve` runs from (for `support/serve.rs`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

/// A webhook to drive: where it listens and which process serves it.
struct Target {
    host: String,
    port: u16,
    /// The CA to trust for HTTPS; plain HTTP when `None`.
    ca: Option<PathBuf>,
    pid: Option<u32>,
}

impl Target {
    /// CPU seconds (user + system) the serving process has used, from `/proc`.
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the command name (which may hold spaces) start at `) `.
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / clock_ticks_per_second())
    }

    /// Peak resident set size, in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A `bouncer serve` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    target: Target,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, name: &str, config: Option<&str>, args: &[&str]) -> ServerProcess {
    start_with(dir, name, config, args, &[])
}

/// [`start`] with more environment (`OTEL_*` for the traced scenarios).
fn start_with(
    dir: &Path,
    name: &str,
    config: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> ServerProcess {
    let port = serve::free_port();
    let ca = dir.join(format!("{name}-ca.pem"));
    let mut command = serve::serve_command(port, &ca);
    command
        .envs(env.iter().copied())
        .env("BOUNCER_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .args(args);
    if let Some(config) = config {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config).unwrap();
        command.arg("--config").arg(path);
    }
    let child = command.spawn().expect("bouncer starts");
    let target = Target {
        host: "localhost".into(),
        port,
        ca: Some(ca),
        pid: Some(child.id()),
    };
    let server = ServerProcess { child, target };
    for _ in 0..60_000 {
        let ca_written = server.target.ca.as_ref().is_some_and(|ca| ca.exists());
        if ca_written && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("bouncer did not start listening on {port}");
}

/// How long `bouncer serve` with the embedded config takes from spawn to its
/// first 200 on `/readyz`, with the compiled policies already cached.
fn restart_to_ready(dir: &Path, run: usize, runtime: &tokio::runtime::Runtime) -> Duration {
    let started = Instant::now();
    let server = start(dir, &format!("restart-{run}"), None, &[]);
    runtime.block_on(async {
        loop {
            let mut sender = connect(&server.target).await;
            let request = hyper::Request::get("/readyz")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap();
            if let Ok(response) = sender.send_request(request).await
                && response.status() == 200
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(target: &Target) -> Sender {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, connection) = match &target.ca {
        Some(ca) => {
            let tls = tokio_rustls::TlsConnector::from(Arc::new(tls::client_config(ca)));
            let name = ServerName::try_from(target.host.clone()).unwrap();
            let stream = tls.connect(name, tcp).await.unwrap();
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            (
                sender,
                tokio::spawn(async move { connection.await.map(drop) }),
            )
        }
        None => {
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            (
                sender,
                tokio::spawn(async move { connection.await.map(drop) }),
            )
        }
    };
    drop(connection);
    sender
}

/// GETs `path` from `target`; the body as text.
async fn get_text(target: &Target, path: &str) -> String {
    let mut sender = connect(target).await;
    let request = hyper::Request::get(path)
        .header("host", target.host.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

struct Run {
    requests: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// Server CPU per answered review, when the server's process is known.
    cpu_per_review: Option<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn quantile(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 * q) as usize)
            .min(self.latencies.len().saturating_sub(1));
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

/// Sends `body` to `path` on `target` from `concurrency` keep-alive connections for `duration`.
async fn drive(
    target: &Target,
    path: &str,
    body: &Bytes,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        senders.push(connect(target).await);
    }
    let cpu_before = target.cpu_seconds();
    let started = Instant::now();
    let until = started + duration;
    let host = target.host.clone();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let (path, body, host) = (path.to_owned(), body.clone(), host.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < until {
                    let request = hyper::Request::post(path.as_str())
                        .header("host", host.as_str())
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let sent = Instant::now();
                    match sender.send_request(request).await {
                        Ok(response) if response.status() == 200 => {
                            let _ = response.into_body().collect().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run {
        requests: 0,
        errors: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
        cpu_per_review: None,
    };
    for task in tasks {
        let (latencies, errors) = task.await.unwrap();
        run.requests += latencies.len();
        run.errors += errors;
        run.latencies.extend(latencies);
    }
    run.elapsed = started.elapsed();
    if let (Some(before), Some(after)) = (cpu_before, target.cpu_seconds()) {
        run.cpu_per_review = Some(Duration::from_secs_f64(
            (after - before) / run.requests.max(1) as f64,
        ));
    }
    run.latencies.sort();
    run
}

/// A captured review as compact JSON.
fn review(name: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/apiserver-v1.36")
        .join(name);
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    Bytes::from(serde_json::to_vec(&value).unwrap())
}

/// `BOUNCER_LOAD_URL` (and its CA and process), as a target and a path.
fn external() -> Option<(Target, String)> {
    let url = std::env::var("BOUNCER_LOAD_URL").ok()?;
    let (scheme, rest) = url
        .split_once("://")
        .expect("BOUNCER_LOAD_URL is scheme://host:port/path");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority
        .rsplit_once(':')
        .expect("BOUNCER_LOAD_URL has a port");
    let ca = std::env::var_os("BOUNCER_LOAD_CA").map(PathBuf::from);
    assert_eq!(
        scheme == "https",
        ca.is_some(),
        "https needs BOUNCER_LOAD_CA, http must not have it"
    );
    let target = Target {
        host: host.to_owned(),
        port: port.parse().expect("a port number"),
        ca,
        pid: std::env::var("BOUNCER_LOAD_PID")
            .ok()
            .and_then(|p| p.parse().ok()),
    };
    Some((
        target,
        if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
    ))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: only run under bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds: u64 = std::env::var("BOUNCER_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let concurrencies: Vec<usize> = std::env::var("BOUNCER_LOAD_CONCURRENCY").ok().map_or_else(
        || vec![1, 8, 64],
        |list| {
            list.split(',')
                .map(|c| c.trim().parse().expect("a concurrency"))
                .collect()
        },
    );
    let duration = Duration::from_secs(seconds);
    let (ingress, pod) = (
        review("ingress-create.json"),
        review("pod-create-kubectl-run.json"),
    );

    let dir = tempfile::tempdir().unwrap();
    let null = start(dir.path(), "null", Some("policies: []\n"), &[]);
    // Both ways of resetting instance slots (policy/reset.rs): `full` is what
    // a node whose memory can swap gets; `scan` where it provably cannot.
    let full = start(dir.path(), "full", None, &["--instance-reset", "full"]);
    let scan = start(dir.path(), "scan", None, &["--instance-reset", "scan"]);
    // The same one policy without and with a shadow candidate that disagrees
    // on every review (it requires the Pod's namespace to name a ServiceAccount):
    // what a shadow costs the enforced path.
    let irsa = "policies:\n  - name: require-irsa\n    source: builtin:require-irsa\n";
    let unshadowed = start(dir.path(), "unshadowed", Some(irsa), &[]);
    let shadowed_config =
        format!("{irsa}    shadow:\n      settings: {{requireServiceAccountIn: [\"*\"]}}\n");
    let shadowed = start(dir.path(), "shadowed", Some(&shadowed_config), &[]);
    // Tracing on (telemetry.rs): every review is sampled (the drive sends no
    // trace context, so bouncer starts each trace itself), exported over
    // OTLP/HTTP to a local sink; and with the collector down (nothing listens).
    let sink = otlp_sink::start(false);
    let traced = start_with(
        dir.path(),
        "traced",
        None,
        &["--instance-reset", "scan"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url)],
    );
    // The same, keeping 1 % of the traces it starts (`tracing.sampleRatio=0.01`).
    let traced_sampled = start_with(
        dir.path(),
        "traced-sampled",
        None,
        &["--instance-reset", "scan"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ],
    );
    let nowhere = format!("http://127.0.0.1:{}", serve::free_port());
    let traced_down = start_with(
        dir.path(),
        "traced-down",
        None,
        &["--instance-reset", "scan"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &nowhere)],
    );
    let external = external();
    // The generator gets one core's worth of threads; the server the rest.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let mut scenarios: Vec<(String, &Target, String, &Bytes)> = vec![(
        "null webhook (no policies), Ingress".to_owned(),
        &null.target,
        "/validate".to_owned(),
        &ingress,
    )];
    for (reset, server) in [("full reset", &full), ("scan", &scan)] {
        scenarios.extend([
            (
                format!("one policy: /validate/alb-target-type-ip, Ingress ({reset})"),
                &server.target,
                "/validate/alb-target-type-ip".to_owned(),
                &ingress,
            ),
            (
                format!("one policy: /validate/require-irsa, Pod ({reset})"),
                &server.target,
                "/validate/require-irsa".to_owned(),
                &pod,
            ),
            (
                format!("default set /validate, Ingress, 3 policies ({reset})"),
                &server.target,
                "/validate".to_owned(),
                &ingress,
            ),
        ]);
    }
    scenarios.extend([
        (
            "one policy alone: /validate, Pod (require-irsa)".to_owned(),
            &unshadowed.target,
            "/validate".to_owned(),
            &pod,
        ),
        (
            "one policy with a shadow that disagrees on every review: /validate, Pod".to_owned(),
            &shadowed.target,
            "/validate".to_owned(),
            &pod,
        ),
        (
            "tracing on, every review sampled: default set /validate, Ingress, 3 policies (scan)"
                .to_owned(),
            &traced.target,
            "/validate".to_owned(),
            &ingress,
        ),
        (
            "tracing on, 1 % sampled: default set /validate, Ingress, 3 policies (scan)".to_owned(),
            &traced_sampled.target,
            "/validate".to_owned(),
            &ingress,
        ),
        (
            "tracing on, collector down: default set /validate, Ingress, 3 policies (scan)"
                .to_owned(),
            &traced_down.target,
            "/validate".to_owned(),
            &ingress,
        ),
    ]);
    let scenarios: Vec<(String, &Target, String, &Bytes)> = scenarios
        .into_iter()
        .chain(external.as_ref().map(|(target, path)| {
            (
                "BOUNCER_LOAD_URL, Ingress".to_owned(),
                target,
                path.clone(),
                &ingress,
            )
        }))
        .collect();

    println!(
        "{seconds}s per scenario; Ingress review {} bytes, Pod review {} bytes",
        ingress.len(),
        pod.len()
    );
    println!("| c | scenario | req/s | p50 | p99 | server CPU per review | errors | vs null |");
    println!("|---|---|---|---|---|---|---|---|");
    for &concurrency in &concurrencies {
        let mut baseline = None;
        for (name, target, path, body) in &scenarios {
            let run = runtime.block_on(drive(target, path, body, concurrency, duration));
            let base = *baseline.get_or_insert(run.rate());
            println!(
                "| {concurrency} | {name} | {:.0} | {:.0} µs | {:.0} µs | {} | {} | {:.0} % |",
                run.rate(),
                run.quantile(0.5).as_secs_f64() * 1e6,
                run.quantile(0.99).as_secs_f64() * 1e6,
                run.cpu_per_review.map_or("–".to_owned(), |cpu| format!(
                    "{:.0} µs",
                    cpu.as_secs_f64() * 1e6
                )),
                run.errors,
                100.0 * run.rate() / base
            );
        }
    }
    // What became of the shadow evaluations (every run's, all concurrencies).
    let metrics = runtime.block_on(get_text(&shadowed.target, "/metrics"));
    let outcomes: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("bouncer_shadow_evaluations_total{"))
        .collect();
    println!("shadow outcomes: {}", outcomes.join(", "));
    let (exports, bytes) = sink.received();
    println!("OTLP sink: {exports} exports, {bytes} bytes");
    println!(
        "peak RSS: tracing on {:.1} MiB, tracing on with the collector down {:.1} MiB",
        traced.target.peak_rss_mib().unwrap_or(f64::NAN),
        traced_down.target.peak_rss_mib().unwrap_or(f64::NAN)
    );
    println!(
        "peak RSS: null webhook {:.1} MiB, bouncer (default set) full reset {:.1} MiB, scan {:.1} MiB",
        null.target.peak_rss_mib().unwrap_or(f64::NAN),
        full.target.peak_rss_mib().unwrap_or(f64::NAN),
        scan.target.peak_rss_mib().unwrap_or(f64::NAN)
    );
    let ready: Vec<Duration> = (0..3)
        .map(|run| restart_to_ready(dir.path(), run, &runtime))
        .collect();
    println!("warm restart to ready (embedded config, 3 runs): {ready:?}");
}
