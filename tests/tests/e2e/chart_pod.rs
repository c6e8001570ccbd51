//! The chart's own pod, run by the e2e kubelet (`kubelet.rs`) and reached by
//! the API server through the chart's Service and caBundle, with tracing on
//! and off, and with the trace collector down.

use crate::say;
use std::path::Path;
use std::time::{Duration, Instant};

use bouncer_tests::free_port;
use serde_json::Value;

use super::cluster::Cluster;
use super::kubelet::Pod;
use super::scenarios::{HTTPS, Steps, bouncer_webhook, contains, ingress, refused, succeeded};

/// Reviews sent straight to the pod while the collector is down.
const REVIEWS_WITHOUT_COLLECTOR: usize = 3_000;

pub(super) fn scenarios(cluster: &Cluster, steps: &mut Steps) {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/bouncer");
    let chart = chart.to_str().expect("utf-8 path");
    let binary = bouncer_tests::bouncer_binary();
    let (port, health) = (free_port(), free_port());
    let upgrade = |tracing: bool| {
        let sets = [
            "webhook.url=".to_owned(),
            "tls.caBundle=".to_owned(),
            "webhook.failurePolicy=Fail".to_owned(),
            format!("server.port={port}"),
            format!("server.healthPort={health}"),
            format!("tracing.enabled={tracing}"),
            format!("tracing.endpoint={}", cluster.jaeger.otlp_http_url()),
        ];
        let mut args = vec![
            "upgrade",
            "bouncer",
            chart,
            "--namespace",
            "bouncer-system",
            "--reuse-values",
        ];
        for set in &sets {
            args.extend(["--set", set]);
        }
        succeeded("helm upgrade", cluster.helm(&args)).map(drop)
    };

    steps.check(
        "helm upgrade points the webhooks at the chart's Service with the generated CA",
        (|| {
            upgrade(true)?;
            let webhook = bouncer_webhook(cluster)?;
            let webhook: Value = serde_json::from_str(&webhook).map_err(|e| e.to_string())?;
            let client = &webhook["webhooks"][0]["clientConfig"];
            if client["service"]["name"] != "bouncer" || client.get("url").is_some() {
                return Err(format!("the webhook does not call the Service: {client}"));
            }
            if client["caBundle"] != generated_ca(cluster)?.as_str() {
                return Err("the webhook's caBundle is not the generated CA".into());
            }
            Ok(())
        })(),
    );

    let mut pod = match start_pod(cluster, &binary, "pod-traced.log") {
        Ok(pod) => pod,
        Err(error) => {
            steps.check("the chart's pod runs as a kubelet would run it", Err(error));
            return;
        }
    };
    steps.check(
        "the chart's pod runs as a kubelet would run it: its user, read-only root, probes and endpoint",
        (|| {
            let took = pod.wait_ready(Duration::from_secs(180))?;
            say!("e2e: the chart's pod {} was ready {took:.1?} after it started", pod.name);
            let status = std::fs::read_to_string(format!("/proc/{}/status", pod.pid()))
                .map_err(|e| e.to_string())?;
            let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
            if !uid.split_whitespace().skip(1).all(|id| id == "65532") {
                return Err(format!("the container does not run as runAsUser 65532: {uid}"));
            }
            let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap_or("");
            if !caps.ends_with("0000000000000000") {
                return Err(format!("the container kept capabilities: {caps}"));
            }
            let (slice, _) = succeeded(
                "get endpointslices",
                cluster.kubectl(
                    &["-n", "bouncer-system", "get", "endpointslices", "-l",
                      "kubernetes.io/service-name=bouncer", "-o",
                      "jsonpath={.items[0].endpoints[0].conditions.ready} {.items[0].ports[*].port}"],
                    None,
                ),
            )?;
            contains(&slice, "true ")?;
            contains(&slice, &port.to_string())
        })(),
    );

    let name = format!("traced-{}", std::process::id());
    let mut evaluated = Vec::new();
    steps.check(
        "a write bouncer denies reaches the pod through the Service, and the answer is bouncer's",
        (|| {
            let before = evaluations(&pod)?;
            let manifest = ingress("shop", &name, HTTPS);
            let deadline = Instant::now() + Duration::from_secs(30);
            let err = loop {
                let output = cluster.kubectl(&["apply", "-f", "-"], Some(&manifest));
                let text = String::from_utf8_lossy(&output.stderr).into_owned();
                if text.contains("denied the request") || Instant::now() > deadline {
                    break refused("kubectl apply", output)?;
                }
                let _ = cluster.kubectl(&["-n", "shop", "delete", "ingress", &name], None);
                std::thread::sleep(Duration::from_millis(500));
            };
            contains(&err, "denied the request: alb-target-type-ip:")?;
            // What bouncer evaluated for the write, by its own count.
            let after = evaluations(&pod)?;
            evaluated = after
                .into_iter()
                .filter(|(policy, n)| before.get(policy).copied().unwrap_or(0) < *n)
                .map(|(policy, _)| policy)
                .collect();
            Ok(())
        })(),
    );

    steps.check(
        "the denied write is one trace: bouncer's review span under the API server's, a child per policy",
        the_write_is_one_trace(cluster, &name, &evaluated),
    );

    steps.check(
        "with the collector down, reviews are answered as before and bouncer's memory does not grow",
        (|| {
            cluster.jaeger.stop();
            let ca = secret_ca(cluster)?;
            let outcome = reviews_to(&pod, &ca, REVIEWS_WITHOUT_COLLECTOR)?;
            say!(
                "e2e: {REVIEWS_WITHOUT_COLLECTOR} reviews with the collector down: p99 {:?}, \
                 slowest {:?}; RSS {} KiB after the first third, {} KiB at the end",
                outcome.p99, outcome.slowest, outcome.rss_after_warmup, outcome.rss_at_end
            );
            // Generous: a review here takes milliseconds; the bound is the
            // webhook's own deadline, which a blocked exporter would exceed.
            if outcome.slowest > Duration::from_secs(1) {
                return Err(format!("a review took {:?}", outcome.slowest));
            }
            // The export queue holds at most 2,048 spans, full long before the
            // first third is over; growth past that is a leak.
            let growth = outcome.rss_at_end.saturating_sub(outcome.rss_after_warmup);
            if growth > 16 * 1024 {
                return Err(format!("bouncer's RSS grew {growth} KiB after its export queue filled"));
            }
            if pod.probing().unready_spells.load(std::sync::atomic::Ordering::Acquire) > 0 {
                return Err("the pod turned unready while the collector was down".into());
            }
            Ok(())
        })(),
    );

    steps.check(
        "stopping the pod takes its endpoint out, runs the preStop sleep, and bouncer exits on SIGTERM",
        (|| {
            let stopped = pod.stop()?;
            say!("e2e: the pod stopped in {:.1?} ({})", stopped.took, stopped.status);
            if stopped.killed || !stopped.status.success() {
                return Err(format!(
                    "bouncer did not exit cleanly within its grace period: {} (killed: {})",
                    stopped.status, stopped.killed
                ));
            }
            if stopped.took < Duration::from_secs(5) {
                return Err(format!(
                    "the preStop sleep of 5 s did not run: stopped in {:?}",
                    stopped.took
                ));
            }
            Ok(())
        })(),
    );

    steps.check(
        "with tracing off, bouncer exports nothing while the API server's traces reach it",
        (|| {
            upgrade(false)?;
            cluster.jaeger.run();
            let mut pod = start_pod(cluster, &binary, "pod-untraced.log")?;
            pod.wait_ready(Duration::from_secs(180))?;
            let untraced = format!("untraced-{}", std::process::id());
            let manifest = ingress("shop", &untraced, HTTPS);
            let err = refused(
                "kubectl apply",
                cluster.kubectl(&["apply", "-f", "-"], Some(&manifest)),
            )?;
            contains(&err, "denied the request: alb-target-type-ip:")?;
            // Past bouncer's batch delay (5 s) and Jaeger's, had it exported.
            std::thread::sleep(Duration::from_secs(8));
            let services = cluster.jaeger.services()?;
            if services.iter().any(|s| s == "bouncer") {
                return Err(format!(
                    "bouncer exported spans with tracing off: {services:?}"
                ));
            }
            if services.is_empty() {
                return Err("the API server's spans did not reach Jaeger either".into());
            }
            Ok(())
        })(),
    );
}

/// Runs the pod of the release's Deployment as the API server now holds it.
fn start_pod(cluster: &Cluster, binary: &Path, log: &str) -> Result<Pod, String> {
    let (deployment, _) = succeeded(
        "get deployment",
        cluster.kubectl(
            &[
                "-n",
                "bouncer-system",
                "get",
                "deployment",
                "bouncer",
                "-o",
                "json",
            ],
            None,
        ),
    )?;
    let deployment: Value = serde_json::from_str(&deployment).map_err(|e| e.to_string())?;
    Pod::run(cluster, &deployment, binary, &cluster.dir.path().join(log))
}

/// The CA of the chart's generated Secret, base64-encoded as stored.
fn generated_ca(cluster: &Cluster) -> Result<String, String> {
    let (ca, _) = succeeded(
        "get secret",
        cluster.kubectl(
            &[
                "-n",
                "bouncer-system",
                "get",
                "secret",
                "bouncer-tls",
                "-o",
                r"jsonpath={.data.ca\.crt}",
            ],
            None,
        ),
    )?;
    Ok(ca.trim().to_owned())
}

/// The CA of the chart's generated Secret, as PEM.
fn secret_ca(cluster: &Cluster) -> Result<String, String> {
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(generated_ca(cluster)?)
        .map_err(|e| e.to_string())?;
    String::from_utf8(pem).map_err(|e| e.to_string())
}

/// Evaluations per policy so far, from the pod's `/metrics` (health port).
fn evaluations(pod: &Pod) -> Result<std::collections::BTreeMap<String, u64>, String> {
    bouncer::crypto::install_default_provider();
    let port = pod
        .port("health")
        .ok_or("the container has no `health` port")?;
    let url = format!("http://{}:{port}/metrics", pod.ip);
    let text = reqwest::blocking::get(&url)
        .and_then(reqwest::blocking::Response::text)
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("bouncer_evaluations_total{policy=\"") else {
            continue;
        };
        let (policy, rest) = rest.split_once('"').ok_or("a malformed metric line")?;
        let value: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or("a metric line without a count")?;
        *counts.entry(policy.to_owned()).or_insert(0) += value;
    }
    Ok(counts)
}

/// Finds the write's trace in Jaeger and checks its shape: bouncer's review
/// span (the webhook call that denied it) under the API server's span, and
/// one child per policy bouncer counted as evaluated for it.
///
/// Each side exports on its own schedule (bouncer's batches and the API
/// server's), so the trace is read again until it is whole or 30 s passed.
fn the_write_is_one_trace(
    cluster: &Cluster,
    name: &str,
    evaluated: &[String],
) -> Result<(), String> {
    if evaluated.is_empty() {
        return Err("bouncer counted no evaluation for the write".into());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match trace_as_read(cluster, name, evaluated) {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_secs(1)),
            done => return done,
        }
    }
}

/// [`the_write_is_one_trace`], from what Jaeger holds now.
fn trace_as_read(cluster: &Cluster, name: &str, evaluated: &[String]) -> Result<(), String> {
    let ids = cluster.jaeger.find("bouncer", "bouncer.name", name)?;
    let id = ids
        .first()
        .ok_or_else(|| format!("no trace of service `bouncer` names the Ingress {name}"))?;
    let trace = cluster.jaeger.trace(id)?;
    // The mutating webhook is called first; a denial there ends the write.
    let reviews: Vec<_> = trace
        .spans
        .iter()
        .filter(|s| s.operation.starts_with("review ") && s.name.as_deref() == Some(name))
        .collect();
    let shape = || {
        trace
            .spans
            .iter()
            .map(|s| {
                format!(
                    "  {} `{}` {} (parent {:?})",
                    s.service, s.operation, s.id, s.parent
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let [review] = reviews[..] else {
        return Err(format!(
            "expected one bouncer review span for the Ingress, found {}:\n{}",
            reviews.len(),
            shape()
        ));
    };
    let parent = review
        .parent
        .as_deref()
        .and_then(|p| trace.span(p))
        .ok_or("bouncer's review span has no parent in the trace")?;
    if parent.service == "bouncer" {
        return Err(format!(
            "the review's parent is bouncer's own {}",
            parent.operation
        ));
    }
    say!(
        "e2e: bouncer's `{}` span is a child of {}'s `{}`; the trace:\n{}",
        review.operation,
        parent.service,
        parent.operation,
        shape()
    );
    let mut policies: Vec<&str> = trace
        .children(&review.id)
        .filter(|s| s.operation.starts_with("policy "))
        .filter_map(|s| s.policy.as_deref())
        .collect();
    policies.sort_unstable();
    if policies != evaluated {
        return Err(format!(
            "the review's policy spans are {policies:?}; bouncer evaluated {evaluated:?}:\n{}",
            shape()
        ));
    }
    let denied = trace
        .children(&review.id)
        .find(|s| s.policy.as_deref() == Some("alb-target-type-ip"))
        .and_then(|s| s.effect.as_deref());
    if denied != Some("denied") {
        return Err(format!(
            "alb-target-type-ip's span says {denied:?}, not denied"
        ));
    }
    Ok(())
}

/// What sending reviews straight to the pod showed.
struct Outcome {
    p99: Duration,
    slowest: Duration,
    rss_after_warmup: u64,
    rss_at_end: u64,
}

/// Sends `count` sampled reviews (each with a `traceparent`) to the pod over
/// its serving port, 8 at a time, as the API server's webhook client would.
fn reviews_to(pod: &Pod, ca: &str, count: usize) -> Result<Outcome, String> {
    bouncer::crypto::install_default_provider();
    let port = pod
        .port("https")
        .ok_or("the container has no `https` port")?;
    let host = "bouncer.bouncer-system.svc";
    let address: std::net::SocketAddr = format!("{}:{port}", pod.ip)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.as_bytes()).map_err(|e| e.to_string())?,
        )
        .resolve(host, address)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let review = bouncer_tests::fixture("ingress-create.json").to_string();
    let url = format!("https://{host}:{port}/validate");
    let rss = || -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", pod.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    let send = |n: usize| -> Result<Vec<Duration>, String> {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|worker| {
                    let (client, url, review) = (&client, &url, &review);
                    scope.spawn(move || {
                        let mut took = Vec::new();
                        for i in (worker..n).step_by(8) {
                            let started = Instant::now();
                            let traceparent = format!("00-{:032x}-{:016x}-01", i + 1, worker + 1);
                            let response = client
                                .post(url)
                                .header("content-type", "application/json")
                                .header("traceparent", traceparent)
                                .body(review.clone())
                                .send()
                                .map_err(|e| format!("review {i}: {e}"))?;
                            if !response.status().is_success() {
                                return Err(format!("review {i}: HTTP {}", response.status()));
                            }
                            took.push(started.elapsed());
                        }
                        Ok(took)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for worker in workers {
                all.extend(worker.join().map_err(|_| "a sender panicked")??);
            }
            Ok(all)
        })
    };
    let mut took = send(count / 3)?;
    let rss_after_warmup = rss();
    took.extend(send(count - count / 3)?);
    let rss_at_end = rss();
    took.sort_unstable();
    Ok(Outcome {
        p99: took[took.len() * 99 / 100],
        slowest: *took.last().unwrap_or(&Duration::ZERO),
        rss_after_warmup,
        rss_at_end,
    })
}
