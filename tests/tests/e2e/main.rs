//! End to end against a real API server: etcd and a kube-apiserver built from
//! the Kubernetes sources, the Helm chart installed into it, and `bouncer serve`
//! (in-process, real TLS on a real socket) registered as its webhook through
//! the chart's `webhook.url`; at the end, the chart's own pod run as a kubelet
//! would run it behind the chart's Service, traced into Jaeger with the API
//! server's spans. kubectl drives it as a user would; what kubectl prints and
//! what the API server stored are both checked.
//!
//! One test runs the scenarios in order (they share the cluster, and the last
//! ones stop bouncer); every scenario's outcome is printed, and all failures
//! are reported together.

mod audit;
mod chart_pod;
mod cluster;
mod companion;
mod custom_policy;
mod gateway_versions;
mod ingress_classes;
mod ingress_groups;
mod jaeger;
mod kubelet;
mod rollout;
mod scenarios;
mod tools;

/// Writes to the process's stderr directly: the test harness captures
/// `eprintln!`, but the e2e progress (and a skip) must show in every CI log.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;

#[test]
fn bouncer_as_the_webhook_of_a_real_kube_apiserver() {
    let Some(tools) = tools::install() else {
        return;
    };
    let cluster = cluster::Cluster::start(&tools);
    let failures = scenarios::run_all(&cluster);
    if !failures.is_empty() {
        panic!(
            "{} end-to-end scenario(s) failed:\n\n{}\n\nkube-apiserver log tail:\n{}",
            failures.len(),
            failures.join("\n\n"),
            cluster.log("kube-apiserver.log")
        );
    }
}
