//! The API server serves a CRD's objects at every served version: a
//! GatewayClass created as `v1beta1` (as every AWS Load Balancer Controller
//! Gateway doc writes it) is in bouncer's `v1` watch cache, and a Gateway of
//! that class is judged as the controller's.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::scenarios::{Steps, contains, e2e_file, refused, succeeded};
use crate::say;

/// A Gateway the generic rule admits (it has `certificateRefs`) but the
/// controller's rule refuses: the controller does not read them.
const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: aws-alb-v1beta1
  listeners:
    - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: shop-tls}]}}
";

pub fn scenarios(cluster: &Cluster, steps: &mut Steps) {
    steps.check(
        "a GatewayClass created as v1beta1 is seen by the v1 lookup: its Gateway is judged as the AWS Load Balancer Controller's",
        (|| {
            let crds = e2e_file("gateway-crds.yaml");
            succeeded("apply CRDs", cluster.kubectl(&["apply", "-f", crds.to_str().unwrap()], None))?;
            for crd in ["crd/gatewayclasses.gateway.networking.k8s.io", "crd/gateways.gateway.networking.k8s.io"] {
                succeeded(
                    "wait for CRD",
                    cluster.kubectl(&["wait", "--for=condition=Established", crd, "--timeout=30s"], None),
                )?;
            }
            let class = "apiVersion: gateway.networking.k8s.io/v1beta1
kind: GatewayClass
metadata: {name: aws-alb-v1beta1}
spec: {controllerName: gateway.k8s.aws/alb}
";
            succeeded("apply v1beta1 GatewayClass", cluster.kubectl(&["apply", "-f", "-"], Some(class)))?;
            // Discovery of a kind served later is retried every few seconds;
            // until the class is in the cache the generic rule admits the Gateway.
            let deadline = Instant::now() + Duration::from_secs(40);
            let err = loop {
                let output = cluster.kubectl(&["apply", "-f", "-"], Some(GATEWAY));
                match refused("apply Gateway", output) {
                    Ok(err) => break err,
                    Err(_) if Instant::now() < deadline => {
                        let _ = cluster.kubectl(&["-n", "shop", "delete", "gateway", "edge"], None);
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Err(e) => {
                        return Err(format!("the Gateway was still admitted as another controller's after 40 s: {e}"));
                    }
                }
            };
            say!("kubectl said: {}", err.trim());
            contains(
                &err,
                "ingress-tls: Gateway shop/edge listener `https` (HTTPS on port 443) terminates TLS without a \
                 certificate: the AWS Load Balancer Controller does not read `tls.certificateRefs`",
            )
        })(),
    );
}
