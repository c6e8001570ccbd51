//! `bouncer audit` over 5,000 objects in a real kube-apiserver: how long it
//! takes and how much memory it holds at its peak.
//!
//! The control plane is the end-to-end test's (etcd and a kube-apiserver built
//! from source). The objects, in ten namespaces: 2,500 Ingresses (half without
//! a target type) and 2,500 Services (half controller NLBs targeting node
//! ports), all stored before any audit. Then the release `bouncer audit`
//! binary runs with the embedded default config, at the default page size and
//! at a small one, and its wall time and peak RSS (`wait4`'s `ru_maxrss`) are
//! printed.
//!
//! Run with: `cargo bench -p bouncer-tests --bench audit`.
//! Figures: `host/benches/README.md`.

mod control_plane;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// `crate::say`, as the control plane's files name it.
use control_plane::{cluster, say, tools};

const NAMESPACES: usize = 10;
const PER_NAMESPACE: usize = 250;

/// A namespace's Ingresses and Services as one `List` document.
fn objects(namespace: &str) -> String {
    let mut items = Vec::new();
    for i in 0..PER_NAMESPACE {
        let target = if i % 2 == 0 {
            r#""alb.ingress.kubernetes.io/target-type": "ip","#
        } else {
            ""
        };
        items.push(format!(
            r#"{{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
  "metadata": {{"name": "web-{i}", "namespace": "{namespace}", "annotations": {{{target}
    "alb.ingress.kubernetes.io/listen-ports": "[{{\"HTTPS\": 443}}]",
    "alb.ingress.kubernetes.io/certificate-arn": "arn:aws:acm:us-east-1:123456789012:certificate/bench"}}}},
  "spec": {{"ingressClassName": "alb", "rules": [{{"host": "web-{i}.example.com"}}]}}}}"#
        ));
        let target_type = if i % 2 == 0 { "ip" } else { "instance" };
        items.push(format!(
            r#"{{"apiVersion": "v1", "kind": "Service",
  "metadata": {{"name": "api-{i}", "namespace": "{namespace}", "annotations": {{
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "{target_type}"}}}},
  "spec": {{"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb", "ports": [{{"port": 80}}]}}}}"#
        ));
    }
    format!(
        r#"{{"apiVersion": "v1", "kind": "List", "items": [{}]}}"#,
        items.join(",")
    )
}

/// Runs `bouncer audit` to completion; its wall time and peak RSS in KiB.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped with wait4, for its resource usage"
)]
fn measure(
    bin: &std::path::Path,
    kubeconfig: &std::path::Path,
    page_size: &str,
) -> (Duration, i64, String) {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["audit", "--kubeconfig"])
        .arg(kubeconfig)
        .args([
            "--page-size",
            page_size,
            "--fail-on",
            "never",
            "-q",
            "-o",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bouncer audit starts");
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, by pid, once; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let elapsed = started.elapsed();
    let log = reader.join().unwrap_or_default();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "bouncer audit failed:\n{log}"
    );
    (elapsed, usage.ru_maxrss, log)
}

fn main() {
    let Some(tools) = tools::install() else {
        return;
    };
    let bin = bouncer_tests::bouncer_binary();
    let cluster = cluster::Cluster::start(&tools);
    let created = Instant::now();
    for n in 0..NAMESPACES {
        let namespace = format!("bench-{n}");
        let output = cluster.kubectl(&["create", "namespace", &namespace], None);
        assert!(output.status.success(), "create namespace");
        let output = cluster.kubectl(&["create", "-f", "-"], Some(&objects(&namespace)));
        assert!(
            output.status.success(),
            "create objects: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let objects = NAMESPACES * PER_NAMESPACE * 2;
    say!("created {objects} objects in {:.1?}", created.elapsed());
    for page_size in ["500", "50"] {
        let (elapsed, rss_kib, log) = measure(&bin, &cluster.kubeconfig, page_size);
        let metrics = log
            .lines()
            .find(|l| l.starts_with("audit metrics:"))
            .unwrap_or_default();
        say!(
            "audit, default config, page size {page_size}: {objects} objects in {:.2} s \
             ({:.0} objects/s), peak RSS {:.1} MiB\n  {metrics}",
            elapsed.as_secs_f64(),
            objects as f64 / elapsed.as_secs_f64(),
            rss_kib as f64 / 1024.0,
        );
    }
}
