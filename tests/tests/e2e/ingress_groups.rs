//! IngressGroups through the live watch cache: lb-scheme finds a group's
//! members with `find-objects`, which the cache answers from its index of
//! `alb.ingress.kubernetes.io/group.name`, and a member stored after the
//! index was made is found too (the index follows the watch).

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::scenarios::{Steps, contains, ingress, succeeded};

const NAMESPACE: &str = "groups";

/// A compliant ALB Ingress of `group` stating `scheme`.
fn member(name: &str, group: &str, scheme: &str) -> String {
    ingress(
        NAMESPACE,
        name,
        &[
            ("alb.ingress.kubernetes.io/group.name", group),
            ("alb.ingress.kubernetes.io/scheme", scheme),
            ("alb.ingress.kubernetes.io/target-type", "ip"),
            (
                "alb.ingress.kubernetes.io/listen-ports",
                r#"[{"HTTPS":443}]"#,
            ),
            (
                "alb.ingress.kubernetes.io/certificate-arn",
                "arn:aws:acm:us-east-1:123456789012:certificate/your-cert-id",
            ),
        ],
    )
}

/// Dry-runs `manifest` until bouncer refuses it (the watch delivers a new
/// member to the cache moments after it is stored) or `within` passes; the
/// refusal.
fn refused_within(cluster: &Cluster, manifest: &str, within: Duration) -> Result<String, String> {
    let started = Instant::now();
    loop {
        let output = cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(manifest));
        if !output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        if started.elapsed() > within {
            return Err(format!("still admitted after {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn scenarios(cluster: &Cluster, steps: &mut Steps) {
    steps.check(
        "an IngressGroup member whose scheme disagrees with another member's is refused, naming it",
        (|| {
            succeeded(
                "create namespace",
                cluster.kubectl(&["create", "namespace", NAMESPACE], None),
            )?;
            succeeded(
                "apply",
                cluster.kubectl(
                    &["apply", "-f", "-"],
                    Some(&member("orders", "shop", "internal")),
                ),
            )?;
            let err = refused_within(
                cluster,
                &member("billing", "shop", "internet-facing"),
                Duration::from_secs(20),
            )?;
            contains(
                &err,
                "joins IngressGroup `shop`, whose members disagree on the scheme",
            )?;
            contains(&err, "`groups/orders` is `internal`")
        })(),
    );
    steps.check(
        "a member stored after the group index was made is found by the next lookup",
        (|| {
            succeeded(
                "apply",
                cluster.kubectl(
                    &["apply", "-f", "-"],
                    Some(&member("ledger", "books", "internal")),
                ),
            )?;
            let err = refused_within(
                cluster,
                &member("payroll", "books", "internet-facing"),
                Duration::from_secs(20),
            )?;
            contains(&err, "`groups/ledger` is `internal`")
        })(),
    );
}
