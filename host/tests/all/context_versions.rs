//! Offline cluster state behaves as the API server does: an object is visible
//! to a lookup at any version of its group and kind (the API server serves a
//! CRD's objects at every served version), and an object given twice is named
//! with the one lookups see.

use std::path::PathBuf;

use crate::support::{bouncer, stdout};

fn scratch(name: &str) -> PathBuf {
    crate::support::scratch("context-versions", name)
}

/// The LBC docs write GatewayClasses as v1beta1 and the EKS workshop its
/// LoadBalancerConfiguration as v1beta1; the default config looks both up at v1.
const V1BETA1_CLASS_AND_CONFIG: &str = "\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: GatewayClass
metadata: {name: aws-alb-gateway-class}
spec: {controllerName: gateway.k8s.aws/alb}
---
apiVersion: gateway.k8s.aws/v1beta1
kind: LoadBalancerConfiguration
metadata: {name: edge, namespace: shop}
spec: {scheme: internet-facing}
";

/// A Gateway that only the AWS rules deny: the generic rule accepts its
/// `certificateRefs`, and without its configuration it would be internal.
const GATEWAY: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: aws-alb-gateway-class
  infrastructure: {parametersRef: {group: gateway.k8s.aws, kind: LoadBalancerConfiguration, name: edge}}
  listeners:
    - {name: https, port: 443, protocol: HTTPS, hostname: shop.example.com, tls: {certificateRefs: [{name: shop-tls}]}}
";

#[test]
fn check_sees_v1beta1_objects_through_v1_lookups() {
    let dir = scratch("v1beta1-objects");
    std::fs::write(dir.join("class.yaml"), V1BETA1_CLASS_AND_CONFIG).unwrap();
    std::fs::write(dir.join("gateway.yaml"), GATEWAY).unwrap();
    let out = bouncer(
        &["check", "--color", "never", "-f", dir.to_str().unwrap()],
        None,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "ingress-tls: Gateway shop/edge listener `https` (HTTPS on port 443) terminates TLS without a \
             certificate: the AWS Load Balancer Controller does not read `tls.certificateRefs`"
        ),
        "the v1beta1 GatewayClass was not seen by the v1 lookup: {text}"
    );
    assert!(
        text.contains(
            "lb-scheme: Gateway shop/edge is `internet-facing` by the `scheme` of its LoadBalancerConfiguration \
             `shop/edge` of the Gateway"
        ),
        "the v1beta1 LoadBalancerConfiguration was not seen by the v1 lookup: {text}"
    );
    assert!(
        !text.contains("does not exist"),
        "no warning may say an object in the run is missing: {text}"
    );
}

#[test]
fn check_sees_v1_objects_through_v1beta1_lookups() {
    let dir = scratch("v1-objects");
    // Only v1beta1 LoadBalancerConfigurations are declared; the object is written as v1.
    std::fs::write(
        dir.join("config.yaml"),
        "policies:
  - name: ingress-tls
    source: builtin:ingress-tls
    context:
      - {apiVersion: gateway.networking.k8s.io/v1, kind: GatewayClass}
      - {apiVersion: gateway.k8s.aws/v1beta1, kind: LoadBalancerConfiguration}
",
    )
    .unwrap();
    std::fs::write(
        dir.join("objects.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: aws-alb-gateway-class}
spec: {controllerName: gateway.k8s.aws/alb}
---
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata: {name: edge, namespace: shop}
spec: {listenerConfigurations: [{protocolPort: 'HTTPS:443', defaultCertificate: '<my cert arn>'}]}
",
    )
    .unwrap();
    std::fs::write(dir.join("gateway.yaml"), GATEWAY).unwrap();
    let config = dir.join("config.yaml");
    let out = bouncer(
        &[
            "check",
            "--color",
            "never",
            "-c",
            config.to_str().unwrap(),
            "-f",
            dir.join("gateway.yaml").to_str().unwrap(),
            "--context",
            dir.join("objects.yaml").to_str().unwrap(),
        ],
        None,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "its LoadBalancerConfiguration gives `HTTPS:443` the certificate `<my cert arn>`, which is not an ACM \
             certificate ARN"
        ),
        "the v1 LoadBalancerConfiguration was not seen by the v1beta1 lookup: {text}"
    );
}

#[test]
fn check_names_an_object_defined_twice_and_the_one_lookups_see() {
    let dir = scratch("twice");
    std::fs::write(
        dir.join("a-alb.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: alb}\nspec: {controller: ingress.k8s.aws/alb}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b-nginx.yaml"),
        "# another team's class of the same name\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: alb}\nspec: {controller: k8s.io/ingress-nginx}\n",
    )
    .unwrap();
    let a = dir.join("a-alb.yaml");
    let b = dir.join("b-nginx.yaml");
    let out = bouncer(
        &[
            "check",
            "--color",
            "never",
            "-f",
            a.to_str().unwrap(),
            "-f",
            b.to_str().unwrap(),
        ],
        None,
    );
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning is not a failure: {text}"
    );
    let (a, b) = (a.display(), b.display());
    let expected = format!(
        "WARN  {b}:2 IngressClass/alb is defined twice: here and at {a}:1; policies that look it up see only the one at {a}:1"
    );
    assert!(
        text.contains(&expected),
        "expected `{expected}` in:\n{text}"
    );
    let json = bouncer(
        &[
            "check",
            "-o",
            "json",
            "-f",
            a.to_string().as_str(),
            "-f",
            b.to_string().as_str(),
        ],
        None,
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["duplicates"][0]["object"], "IngressClass/alb");
    assert_eq!(report["duplicates"][0]["used"], format!("{a}:1"));
}
