//! Ingresses and Services: the fields the house rules read. Who builds their
//! load balancer, and how, is `model`.

use std::collections::BTreeMap;

use serde::Deserialize;

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

impl Service {
    /// Whether `spec.type` is `LoadBalancer`.
    pub fn is_load_balancer(&self) -> bool {
        self.spec.type_.as_deref() == Some("LoadBalancer")
    }
}
