//! The trace backend: Jaeger v2 (built by `tools.sh`) with an in-memory store,
//! receiving OTLP from kube-apiserver (gRPC) and bouncer (HTTP), read back
//! through its query API as a user's Jaeger UI would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bouncer_tests::free_port;
use serde_json::Value;

/// A Jaeger process on fixed loopback ports (kept across restarts, since the
/// API server's tracing configuration names them once).
pub struct Jaeger {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// OTLP over gRPC: what kube-apiserver exports to.
    pub otlp_grpc: u16,
    /// OTLP over HTTP: what bouncer exports to.
    pub otlp_http: u16,
    query: u16,
    client: reqwest::blocking::Client,
    child: Mutex<Option<Child>>,
}

impl Jaeger {
    /// Writes its configuration into `dir` and starts it.
    pub fn start(bin: &Path, dir: &Path) -> Self {
        let (otlp_grpc, otlp_http, query, query_grpc) =
            (free_port(), free_port(), free_port(), free_port());
        let config = dir.join("jaeger.yaml");
        std::fs::write(
            &config,
            format!(
                "service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memory
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
      http:
        endpoint: 127.0.0.1:{otlp_http}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory
"
            ),
        )
        .expect("jaeger config");
        // reqwest's rustls needs the process's crypto provider, even for http://.
        bouncer::crypto::install_default_provider();
        let jaeger = Self {
            bin: bin.to_owned(),
            config,
            log: dir.join("jaeger.log"),
            otlp_grpc,
            otlp_http,
            query,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            child: Mutex::new(None),
        };
        jaeger.run();
        jaeger
    }

    /// Starts it (again, with an empty store) and waits for its query API.
    pub fn run(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("jaeger log");
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("jaeger starts");
        *self.child.lock().expect("jaeger") = Some(child);
        let started = Instant::now();
        while self.get("/api/services", &[]).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "jaeger's query API did not answer within 30 s; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it: the collector is down.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().expect("jaeger").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The OTLP/HTTP base URL bouncer exports to.
    pub fn otlp_http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_http)
    }

    /// A query API answer, as JSON.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.query);
        let path_and_query = format!("{path}?{query:?}");
        let response = self
            .client
            .get(&url)
            .query(query)
            .send()
            .map_err(|e| format!("jaeger query {path_and_query}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "jaeger answered {path_and_query}: {}",
                response.status()
            ));
        }
        response
            .json()
            .map_err(|e| format!("jaeger's answer to {path_and_query}: {e}"))
    }

    /// The services that have sent spans.
    pub fn services(&self) -> Result<Vec<String>, String> {
        let answer = self.get("/api/services", &[])?;
        Ok(answer["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The IDs of `service`'s traces holding a span with `tag` = `value`.
    pub fn find(&self, service: &str, tag: &str, value: &str) -> Result<Vec<String>, String> {
        let tags = serde_json::json!({ tag: value }).to_string();
        let answer = self.get(
            "/api/traces",
            &[("service", service), ("limit", "20"), ("tags", &tags)],
        )?;
        Ok(answer["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["traceID"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// One whole trace: its spans and the processes (services) they come from.
    pub fn trace(&self, id: &str) -> Result<Trace, String> {
        let answer = self.get(&format!("/api/traces/{id}"), &[])?;
        let trace = &answer["data"][0];
        let services = trace["processes"].as_object().cloned().unwrap_or_default();
        let spans = trace["spans"]
            .as_array()
            .ok_or_else(|| format!("no trace {id}"))?
            .iter()
            .map(|span| {
                let tag = |key: &str| {
                    span["tags"]
                        .as_array()
                        .and_then(|tags| tags.iter().find(|t| t["key"] == key))
                        .map(|t| match &t["value"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                };
                Span {
                    id: span["spanID"].as_str().unwrap_or_default().to_owned(),
                    parent: span["references"]
                        .as_array()
                        .and_then(|r| r.iter().find(|r| r["refType"] == "CHILD_OF"))
                        .and_then(|r| r["spanID"].as_str())
                        .map(str::to_owned),
                    operation: span["operationName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    service: span["processID"]
                        .as_str()
                        .and_then(|p| services.get(p))
                        .and_then(|p| p["serviceName"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    policy: tag("bouncer.policy"),
                    effect: tag("bouncer.effect"),
                    name: tag("bouncer.name"),
                }
            })
            .collect();
        Ok(Trace { spans })
    }
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A trace as Jaeger holds it.
pub struct Trace {
    /// Every span, from every service.
    pub spans: Vec<Span>,
}

impl Trace {
    /// The spans whose parent is `id`.
    pub fn children<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Span> {
        self.spans
            .iter()
            .filter(move |s| s.parent.as_deref() == Some(id))
    }

    /// The span `id`.
    pub fn span(&self, id: &str) -> Option<&Span> {
        self.spans.iter().find(|s| s.id == id)
    }
}

/// One span, with the attributes the scenarios read.
pub struct Span {
    pub id: String,
    pub parent: Option<String>,
    pub operation: String,
    pub service: String,
    pub policy: Option<String>,
    pub effect: Option<String>,
    pub name: Option<String>,
}
