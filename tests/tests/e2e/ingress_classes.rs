//! The ingress rules read IngressClasses and IngressClassParams from bouncer's
//! watch caches: who owns an Ingress is the class's `spec.controller`, not its
//! name, and a kind the cluster does not serve yet is an empty cache that
//! starts filling once its CRD is installed.

use std::time::{Duration, Instant};

use bouncer_tests::server::TestServer;

use super::cluster::Cluster;
use super::scenarios::{
    HTTPS, Steps, admitted_within, contains, e2e_file, ingress_of_class, refused, succeeded,
};
use crate::say;

const PARAMS_KIND: &str = "elbv2.k8s.aws/v1beta1 IngressClassParams";

/// An HTTPS Ingress of `class` in `shop` without a target type.
fn classed_ingress(name: &str, class: &str) -> String {
    ingress_of_class("shop", name, class, HTTPS)
}

fn ingress_class(name: &str, params: Option<&str>) -> String {
    let parameters = params.map_or_else(String::new, |p| {
        format!("  parameters: {{apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: {p}}}\n")
    });
    format!(
        "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: {name}
spec:
  controller: ingress.k8s.aws/alb
{parameters}"
    )
}

pub fn scenarios(
    cluster: &Cluster,
    runtime: &tokio::runtime::Runtime,
    server: &TestServer,
    steps: &mut Steps,
) {
    steps.check(
        "a context kind the cluster does not serve (IngressClassParams, no CRD) is an empty, synced cache: /readyz is ready",
        (|| {
            let ready = runtime.block_on(server.get_text("/readyz"));
            contains(&ready, "ready:")?;
            let metrics = runtime.block_on(server.get_text("/metrics"));
            contains(
                &metrics,
                &format!(r#"bouncer_context_cache_synced{{kind="{PARAMS_KIND}"}} 1"#),
            )
        })(),
    );

    steps.check(
        "an IngressClass of the controller whose name albClassNames does not list is read from the cluster and judged",
        (|| {
            succeeded(
                "apply IngressClass",
                cluster.kubectl(&["apply", "-f", "-"], Some(&ingress_class("team-alb", None))),
            )?;
            let manifest = classed_ingress("team-site", "team-alb");
            // The watch sees the new class within moments.
            let deadline = Instant::now() + Duration::from_secs(10);
            let err = loop {
                let output = cluster.kubectl(&["apply", "-f", "-"], Some(&manifest));
                let err = refused("apply Ingress", output)
                    .map_err(|e| format!("an Ingress of an ALB class without a target type was admitted: {e}"))?;
                if err.contains("IngressClass `team-alb`") || Instant::now() > deadline {
                    break err;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            say!("kubectl said: {}", err.trim());
            contains(
                &err,
                "alb-target-type-ip: Ingress shop/team-site is handled by the AWS Load Balancer Controller \
                 (IngressClass `team-alb`, controller `ingress.k8s.aws/alb`) but has no \
                 `alb.ingress.kubernetes.io/target-type` annotation",
            )
        })(),
    );

    steps.check(
        "IngressClassParams served later are watched: the class's targetType ip admits an Ingress without the annotation",
        (|| {
            let crd = e2e_file("ingressclassparams-crd.yaml");
            succeeded(
                "apply CRD",
                cluster.kubectl(&["apply", "-f", crd.to_str().unwrap()], None),
            )?;
            succeeded(
                "wait for CRD",
                cluster.kubectl(
                    &["wait", "--for=condition=Established", "crd/ingressclassparams.elbv2.k8s.aws", "--timeout=30s"],
                    None,
                ),
            )?;
            let params = "apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata:
  name: ip-targets
spec:
  targetType: ip
";
            succeeded("apply IngressClassParams", cluster.kubectl(&["apply", "-f", "-"], Some(params)))?;
            succeeded(
                "apply IngressClass",
                cluster.kubectl(&["apply", "-f", "-"], Some(&ingress_class("ip-alb", Some("ip-targets")))),
            )?;
            // Discovery of an absent kind is retried every few seconds.
            let took = admitted_within(cluster, &classed_ingress("ip-site", "ip-alb"), Duration::from_secs(40))?;
            say!("the Ingress was admitted {took:?} after its class parameters were created");
            let metrics = runtime.block_on(server.get_text("/metrics"));
            contains(
                &metrics,
                &format!(r#"bouncer_context_cache_objects{{kind="{PARAMS_KIND}"}} 1"#),
            )
        })(),
    );
}
