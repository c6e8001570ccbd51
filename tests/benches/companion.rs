//! The companion under a burst: 500 namespaces created at once in a real
//! kube-apiserver, and the time until every one holds its default-deny and
//! allow-DNS NetworkPolicies, with the release `bouncer serve --companion`'s
//! peak RSS (`VmHWM`).
//!
//! The control plane is the end-to-end test's (etcd and a kube-apiserver built
//! from source). Kyverno's published figure for the same job (generate rules,
//! 100 namespaces): 56–85 s (kyverno#1670).
//!
//! Run with: `cargo bench -p bouncer-tests --bench companion`.
//! Figures: `host/benches/README.md`.

mod control_plane;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// `crate::say`, as the control plane's files name it.
use control_plane::{cluster, say, tools};

const NAMESPACES: usize = 500;

/// Peak resident memory of `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Owned NetworkPolicies in the cluster now.
fn owned(cluster: &cluster::Cluster) -> usize {
    let output = cluster.kubectl(
        &[
            "get",
            "networkpolicies",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=bouncer-companion",
            "-o",
            "name",
        ],
        None,
    );
    String::from_utf8_lossy(&output.stdout).lines().count()
}

fn main() {
    let Some(tools) = tools::install() else {
        return;
    };
    let bin = bouncer_tests::bouncer_binary();
    let cluster = cluster::Cluster::start(&tools);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        "companion:\n  namespaces: {include: [\"burst-*\"]}\npolicies: []\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&bin)
        .args(["serve", "--companion", "--companion-namespace", "default"])
        .arg(format!("--addr=127.0.0.1:{port}"))
        .arg("--config")
        .arg(&config)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .env("BOUNCER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bouncer serve starts");
    // It holds the Lease and has listed the (few) namespaces before the burst.
    std::thread::sleep(Duration::from_secs(3));
    let items: Vec<String> = (0..NAMESPACES)
        .map(|n| {
            format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"burst-{n}"}}}}"#)
        })
        .collect();
    let list = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
        items.join(",")
    );
    let started = Instant::now();
    let output = cluster.kubectl(&["create", "-f", "-"], Some(&list));
    assert!(
        output.status.success(),
        "create namespaces: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created = started.elapsed();
    let wanted = NAMESPACES * 2;
    let mut seen = 0;
    while started.elapsed() < Duration::from_secs(600) {
        seen = owned(&cluster);
        if seen >= wanted {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let done = started.elapsed();
    let rss = peak_rss_mib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(seen, wanted, "not every namespace got its policies");
    say!(
        "companion: {NAMESPACES} namespaces created in one request ({:.1} s); every one held \
         its 2 NetworkPolicies {:.1} s after the request was sent; bouncer peak RSS {rss:.1} MiB",
        created.as_secs_f64(),
        done.as_secs_f64(),
    );
}
