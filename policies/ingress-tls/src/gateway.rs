//! Gateway API `Gateway`: every listener that terminates TLS has a certificate,
//! and plain HTTP listeners need the platform's consent.
//!
//! A Gateway of the AWS Load Balancer Controller (its GatewayClass's
//! `controllerName` is `gateway.k8s.aws/alb` or `gateway.k8s.aws/nlb`) takes its
//! certificates from a `LoadBalancerConfiguration` (`listenerConfigurations[]`,
//! `defaultCertificate` per `PROTOCOL:PORT`) or discovers them by listener
//! hostname; `tls.certificateRefs` is not used there (docs/guide/gateway/gateway.md,
//! "Certificate Discovery for secure listeners"; loadbalancerconfig.md).

use std::collections::BTreeMap;

use bouncer_eks::arn::acm_certificate;
use bouncer_eks::gateway::{AwsGateway, GatewayRefs, ingress_annotations};
use bouncer_sdk::Findings;
use serde::Deserialize;

use crate::Settings;

/// The parts of a Gateway this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Gateway {
    metadata: bouncer_eks::Metadata,
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    #[serde(flatten)]
    refs: GatewayRefs,
    listeners: Vec<Listener>,
}

/// The parts of a ListenerSet this rule reads: listeners added to a parent Gateway.
pub type ListenerSet = bouncer_eks::gateway::ListenerSet<Listener>;

/// A listener, as this rule reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Listener {
    name: String,
    protocol: String,
    port: Option<u32>,
    hostname: Option<String>,
    tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Tls {
    mode: Option<String>,
    certificate_refs: Vec<serde_json::Value>,
    options: BTreeMap<String, String>,
}

/// Checks a Gateway's listeners, with what the cluster says of it.
pub fn check(object: &str, gateway: &Gateway, namespace: &str, settings: &Settings) -> Findings {
    let mut findings = Findings::new();
    findings
        .warnings
        .extend(ingress_annotations(&gateway.metadata, object));
    let seen = AwsGateway::look_up(&gateway.spec.refs, namespace);
    check_listeners(
        object,
        &gateway.spec.listeners,
        &seen,
        settings,
        &mut findings,
    );
    findings
}

/// Checks a ListenerSet's listeners as its parent Gateway's: the AWS Load
/// Balancer Controller programs them on the parent's load balancer, with the
/// certificates of the parent's LoadBalancerConfiguration.
pub fn check_listener_set(
    object: &str,
    set: &ListenerSet,
    namespace: &str,
    settings: &Settings,
) -> Findings {
    let mut findings = Findings::new();
    findings
        .warnings
        .extend(ingress_annotations(&set.metadata, object));
    let seen = AwsGateway::of_parent(&set.spec.parent_ref, namespace);
    check_listeners(object, &set.spec.listeners, &seen, settings, &mut findings);
    findings
}

fn check_listeners(
    object: &str,
    listeners: &[Listener],
    seen: &AwsGateway,
    settings: &Settings,
    findings: &mut Findings,
) {
    if seen.is_aws() {
        findings.warnings.extend(
            seen.unseen
                .iter()
                .map(|u| format!("{object}: {u}; its listeners are judged without it")),
        );
    }
    for listener in listeners {
        let at = format!(
            "{object} listener `{}` ({} on port {})",
            listener.name,
            listener.protocol,
            listener.port.map_or_else(|| "?".into(), |p| p.to_string())
        );
        match listener.protocol.as_str() {
            "HTTP" if !settings.allow_http_listeners => findings.deny(format!(
                "{at} serves plain HTTP (house rule: no plain HTTP listeners unless `allowHttpListeners`); {}",
                if seen.is_aws() {
                    "use protocol HTTPS, with a `defaultCertificate` for it in the Gateway's LoadBalancerConfiguration"
                } else {
                    "use protocol HTTPS with `tls.certificateRefs`"
                }
            )),
            "HTTPS" | "TLS" => {
                let tls = listener.tls.as_ref();
                let passthrough = tls.and_then(|t| t.mode.as_deref()) == Some("Passthrough");
                if listener.protocol == "TLS" && passthrough {
                    continue;
                }
                if seen.is_aws() {
                    aws_listener(&at, listener, seen, settings, findings);
                    continue;
                }
                let has_refs = tls.is_some_and(|t| !t.certificate_refs.is_empty());
                let has_arn =
                    tls.is_some_and(|t| t.options.values().any(|v| acm_certificate(v).is_ok()));
                if !has_refs && !has_arn {
                    findings.deny(format!(
                        "{at} terminates TLS without a certificate; add `tls.certificateRefs` \
                         (or an ACM certificate ARN in `tls.options`)"
                    ));
                }
            }
            _ => {}
        }
    }
    let denied = !findings.denials.is_empty();
    findings.warnings.extend(seen.guess_warning(object, denied));
}

/// A TLS listener of the AWS Load Balancer Controller: its certificate comes
/// from the LoadBalancerConfiguration, or from discovery by hostname.
fn aws_listener(
    at: &str,
    listener: &Listener,
    seen: &AwsGateway,
    settings: &Settings,
    findings: &mut Findings,
) {
    let protocol_port = format!(
        "{}:{}",
        listener.protocol,
        listener.port.map_or_else(|| "?".into(), |p| p.to_string())
    );
    match seen.certificate(&protocol_port) {
        Some(arn) => {
            if let Err(why) = acm_certificate(arn) {
                findings.deny(format!(
                    "{at}: its LoadBalancerConfiguration gives `{protocol_port}` the certificate `{arn}`, \
                     which is not an ACM certificate ARN ({why})"
                ));
            }
        }
        None if settings.allow_certificate_discovery && listener.hostname.is_some() => {}
        None => findings.deny(format!(
            "{at} terminates TLS without a certificate: the AWS Load Balancer Controller does not read \
             `tls.certificateRefs`; give `{protocol_port}` a `defaultCertificate` (an ACM ARN) in the \
             Gateway's LoadBalancerConfiguration (`listenerConfigurations`, referenced by \
             `spec.infrastructure.parametersRef`)"
        )),
    }
}
