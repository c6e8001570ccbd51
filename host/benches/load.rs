//! Load-test harness: `bouncer serve` (a child process, as deployed) driven over
//! TLS with keep-alive at concurrency 1, 8 and 64, against a null webhook (the
//! same server with no policies) in the same run.
//!
//! Run with: `cargo bench -p bouncer --bench load`
//! (`BOUNCER_LOAD_SECONDS` sets the time per scenario, default 5.)
//! Figures and how to read them: `host/benches/README.md`.

#[path = "../tests/support/tls.rs"]
mod tls;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

/// The captured reviews the load cycles through.
const CORPUS: &[&str] = &[
    "ingress-create.json",
    "service-create.json",
    "pod-create-kubectl-run.json",
    "deployment-create.json",
    "serviceaccount-create.json",
];

struct ServerProcess {
    child: Child,
    port: u16,
    ca: std::path::PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Peak resident set size of the server, in MiB, from `/proc`.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

fn start(dir: &Path, name: &str, config: Option<&str>) -> ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ca = dir.join(format!("{name}-ca.pem"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_bouncer"));
    command
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--write-ca",
        ])
        .arg(&ca)
        .env("BOUNCER_LOG", "error")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(config) = config {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config).unwrap();
        command.arg("--config").arg(path);
    }
    let child = command.spawn().expect("bouncer starts");
    let server = ServerProcess { child, port, ca };
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && server.ca.exists() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("bouncer did not start listening on {port}");
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(port: u16, tls: &tokio_rustls::TlsConnector) -> Sender {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

struct Run {
    requests: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
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

async fn drive(
    server: &ServerProcess,
    path: &str,
    concurrency: usize,
    duration: Duration,
    corpus: &Arc<Vec<Bytes>>,
) -> Run {
    let config = tls::client_config(&server.ca);
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let mut sender = connect(server.port, &tls).await;
        let (corpus, path) = (corpus.clone(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut i) = (Vec::new(), 0usize, worker);
            while Instant::now() < until {
                let body = corpus[i % corpus.len()].clone();
                i += 1;
                let request = hyper::Request::post(path.as_str())
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(body))
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
        }));
    }
    let mut run = Run {
        requests: 0,
        errors: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (latencies, errors) = task.await.unwrap();
        run.requests += latencies.len();
        run.errors += errors;
        run.latencies.extend(latencies);
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
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
    let duration = Duration::from_secs(seconds);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/apiserver-v1.36");
    let corpus: Arc<Vec<Bytes>> = Arc::new(
        CORPUS
            .iter()
            .map(|name| {
                let value: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(fixtures.join(name)).unwrap()).unwrap();
                Bytes::from(serde_json::to_vec(&value).unwrap())
            })
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let null = start(dir.path(), "null", Some("policies: []\n"));
    let bouncer = start(dir.path(), "default", None);
    // The generator gets one core's worth of threads; the server the rest.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    println!("{seconds}s per scenario, corpus: {CORPUS:?}");
    println!("| concurrency | scenario | req/s | p50 | p99 | errors | vs null |");
    println!("|---|---|---|---|---|---|---|");
    for concurrency in [1, 8, 64] {
        let baseline = runtime.block_on(drive(&null, "/validate", concurrency, duration, &corpus));
        let scenarios = [
            ("null webhook (no policies) /validate", &baseline),
            (
                "one policy /validate/alb-target-type-ip",
                &runtime.block_on(drive(
                    &bouncer,
                    "/validate/alb-target-type-ip",
                    concurrency,
                    duration,
                    &corpus,
                )),
            ),
            (
                "default set /validate",
                &runtime.block_on(drive(&bouncer, "/validate", concurrency, duration, &corpus)),
            ),
        ];
        for (name, run) in scenarios {
            println!(
                "| {concurrency} | {name} | {:.0} | {:.0} µs | {:.0} µs | {} | {:.0} % |",
                run.rate(),
                run.quantile(0.5).as_secs_f64() * 1e6,
                run.quantile(0.99).as_secs_f64() * 1e6,
                run.errors,
                100.0 * run.rate() / baseline.rate()
            );
        }
    }
    println!(
        "peak RSS: null webhook {:.1} MiB, bouncer (default set) {:.1} MiB",
        null.peak_rss_mib().unwrap_or(f64::NAN),
        bouncer.peak_rss_mib().unwrap_or(f64::NAN)
    );
}
