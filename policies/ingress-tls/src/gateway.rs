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
use bouncer_sdk::Findings;
use serde::Deserialize;

use crate::Settings;

/// The parts of a Gateway this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Gateway {
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    gateway_class_name: String,
    listeners: Vec<Listener>,
    infrastructure: Option<Infrastructure>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Infrastructure {
    parameters_ref: Option<ParametersRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ParametersRef {
    group: String,
    kind: String,
    name: String,
}

/// The controller names of the AWS Load Balancer Controller's GatewayClasses.
const AWS_CONTROLLERS: &[&str] = &["gateway.k8s.aws/alb", "gateway.k8s.aws/nlb"];
/// Where the controller's LoadBalancerConfiguration lives.
pub const LB_CONFIG_GROUP: &str = "gateway.k8s.aws";
/// Its kind.
pub const LB_CONFIG_KIND: &str = "LoadBalancerConfiguration";
/// The version looked up (the controller serves v1beta1 and v1 alike).
pub const LB_CONFIG_API_VERSION: &str = "gateway.k8s.aws/v1beta1";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatewayClass {
    spec: GatewayClassSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GatewayClassSpec {
    controller_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LbConfig {
    spec: LbConfigSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LbConfigSpec {
    listener_configurations: Vec<ListenerConfiguration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ListenerConfiguration {
    protocol_port: String,
    default_certificate: Option<String>,
}

/// What the cluster says of a Gateway, looked up by the caller.
#[derive(Debug, Default)]
pub struct Seen {
    /// The GatewayClass's `controllerName`, when it could be looked up.
    controller: Option<String>,
    /// The Gateway's LoadBalancerConfiguration, when it names one that exists.
    config: Option<LbConfig>,
}

impl Seen {
    /// Looks up the Gateway's class and its LoadBalancerConfiguration. A
    /// lookup that cannot be made (the kinds are not declared as context)
    /// leaves them unknown: the Gateway is then judged as any other.
    pub fn look_up(gateway: &Gateway, namespace: &str) -> Self {
        let class: Option<GatewayClass> = bouncer_sdk::context::get(
            "gateway.networking.k8s.io/v1",
            "GatewayClass",
            None,
            &gateway.spec.gateway_class_name,
        )
        .ok()
        .flatten();
        let controller = class.map(|c| c.spec.controller_name);
        let config = gateway
            .spec
            .infrastructure
            .as_ref()
            .and_then(|i| i.parameters_ref.as_ref())
            .filter(|r| r.group == LB_CONFIG_GROUP && r.kind == LB_CONFIG_KIND)
            .and_then(|r| {
                bouncer_sdk::context::get(
                    LB_CONFIG_API_VERSION,
                    LB_CONFIG_KIND,
                    Some(namespace),
                    &r.name,
                )
                .ok()
                .flatten()
            });
        Self { controller, config }
    }

    fn is_aws(&self) -> bool {
        self.controller
            .as_deref()
            .is_some_and(|c| AWS_CONTROLLERS.contains(&c))
    }

    /// The certificate the LoadBalancerConfiguration gives `PROTOCOL:PORT`.
    fn certificate(&self, protocol: &str, port: Option<u32>) -> Option<&str> {
        let wanted = format!("{protocol}:{}", port?);
        self.config
            .as_ref()?
            .spec
            .listener_configurations
            .iter()
            .find(|l| l.protocol_port == wanted)?
            .default_certificate
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Listener {
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
pub fn check(object: &str, gateway: &Gateway, seen: &Seen, settings: &Settings) -> Findings {
    let mut findings = Findings::new();
    for listener in &gateway.spec.listeners {
        let at = format!(
            "{object} listener `{}` ({} on port {})",
            listener.name,
            listener.protocol,
            listener.port.map_or_else(|| "?".into(), |p| p.to_string())
        );
        match listener.protocol.as_str() {
            "HTTP" if !settings.allow_http_listeners => findings.deny(format!(
                "{at} serves plain HTTP; use protocol HTTPS with `tls.certificateRefs`"
            )),
            "HTTPS" | "TLS" => {
                let tls = listener.tls.as_ref();
                let passthrough = tls.and_then(|t| t.mode.as_deref()) == Some("Passthrough");
                if listener.protocol == "TLS" && passthrough {
                    continue;
                }
                if seen.is_aws() {
                    aws_listener(&at, listener, seen, settings, &mut findings);
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
    findings
}

/// A TLS listener of the AWS Load Balancer Controller: its certificate comes
/// from the LoadBalancerConfiguration, or from discovery by hostname.
fn aws_listener(
    at: &str,
    listener: &Listener,
    seen: &Seen,
    settings: &Settings,
    findings: &mut Findings,
) {
    let protocol_port = format!(
        "{}:{}",
        listener.protocol,
        listener.port.map_or_else(|| "?".into(), |p| p.to_string())
    );
    match seen.certificate(&listener.protocol, listener.port) {
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
