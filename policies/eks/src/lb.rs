//! Ingresses and Services as the AWS Load Balancer Controller sees them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::names::{AUTO_MODE_NLB_CLASS, NLB_CLASS, SERVICE_LB_TYPE, SERVICE_TARGET_TYPE};

/// The metadata rules read.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// An annotation's value; `Some("")` for an empty one, `None` when absent.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// An Ingress: class, TLS and hosts.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Ingress {
    /// Its metadata.
    pub metadata: Metadata,
    /// Its spec.
    pub spec: IngressSpec,
}

/// The parts of `Ingress.spec` rules read.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IngressSpec {
    /// `spec.ingressClassName`.
    pub ingress_class_name: Option<String>,
    /// `spec.tls`.
    pub tls: Vec<IngressTls>,
    /// `spec.rules`.
    pub rules: Vec<IngressRule>,
}

/// One `spec.tls` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IngressTls {
    /// Hosts the certificate covers.
    pub hosts: Vec<String>,
    /// The Secret holding it.
    pub secret_name: Option<String>,
}

/// One `spec.rules` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct IngressRule {
    /// The host; `None` is a catch-all rule.
    pub host: Option<String>,
}

impl Ingress {
    /// The hosts of its rules, with `""` for a catch-all rule.
    pub fn rule_hosts(&self) -> Vec<&str> {
        self.spec
            .rules
            .iter()
            .map(|r| r.host.as_deref().unwrap_or(""))
            .collect()
    }
}

/// A Service: type, class and annotations.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Its metadata.
    pub metadata: Metadata,
    /// Its spec.
    pub spec: ServiceSpec,
}

/// The parts of `Service.spec` rules read.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `spec.type`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<String>,
}

/// How a Service of type LoadBalancer is provisioned, as the AWS Load Balancer
/// Controller decides it (`IsServiceSupported` in `pkg/service/service_utils.go`;
/// docs/guide/service/nlb.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioner {
    /// By the controller (or EKS Auto Mode's); the reason names the class or
    /// annotations. The target type follows `aws-load-balancer-nlb-target-type`,
    /// `instance` when absent (with a loadBalancerClass).
    Controller(String),
    /// By the controller through the deprecated `aws-load-balancer-type: nlb-ip`,
    /// which means IP targets whatever `aws-load-balancer-nlb-target-type` says.
    ControllerDeprecated(String),
    /// By nobody: `aws-load-balancer-type: external` makes the in-tree provider
    /// step aside, but the controller takes the Service only with a valid
    /// `aws-load-balancer-nlb-target-type`; the Service stays pending.
    Unreconciled(String),
    /// By Kubernetes' legacy in-tree AWS provider (a Classic ELB, or an NLB with `nlb`).
    InTree(String),
    /// By another controller's `loadBalancerClass`.
    OtherClass(String),
}

impl Service {
    /// Whether `spec.type` is `LoadBalancer`.
    pub fn is_load_balancer(&self) -> bool {
        self.spec.type_.as_deref() == Some("LoadBalancer")
    }

    /// Who provisions this load balancer, or `None` when it is not a LoadBalancer Service.
    pub fn provisioner(&self) -> Option<Provisioner> {
        if !self.is_load_balancer() {
            return None;
        }
        if let Some(class) = self.spec.load_balancer_class.as_deref() {
            return Some(match class {
                NLB_CLASS => Provisioner::Controller(format!("loadBalancerClass `{NLB_CLASS}`")),
                AUTO_MODE_NLB_CLASS => Provisioner::Controller(format!(
                    "loadBalancerClass `{AUTO_MODE_NLB_CLASS}`, EKS Auto Mode"
                )),
                other => Provisioner::OtherClass(format!("loadBalancerClass `{other}`")),
            });
        }
        Some(match self.metadata.annotation(SERVICE_LB_TYPE) {
            Some("external") => match self.metadata.annotation(SERVICE_TARGET_TYPE) {
                Some("ip" | "instance") => Provisioner::Controller(format!(
                    "annotations `{SERVICE_LB_TYPE}: external` and `{SERVICE_TARGET_TYPE}`"
                )),
                _ => Provisioner::Unreconciled(format!(
                    "`{SERVICE_LB_TYPE}: external` without `{SERVICE_TARGET_TYPE}: ip` or `instance`"
                )),
            },
            Some("nlb-ip") => {
                Provisioner::ControllerDeprecated(format!("annotation `{SERVICE_LB_TYPE}: nlb-ip`"))
            }
            Some(other) => Provisioner::InTree(format!("annotation `{SERVICE_LB_TYPE}: {other}`")),
            None => Provisioner::InTree(format!(
                "no `{SERVICE_LB_TYPE}` annotation and no loadBalancerClass"
            )),
        })
    }

    /// Why the controller handles this Service, or `None`: a "Controller Service".
    pub fn controller(&self) -> Option<String> {
        match self.provisioner()? {
            Provisioner::Controller(why) | Provisioner::ControllerDeprecated(why) => Some(why),
            _ => None,
        }
    }
}
