//! `ingress-tls`: what faces clients speaks HTTPS, with a certificate bouncer
//! can vouch for.
//!
//! For an ALB Ingress the listeners, redirect and certificate live in
//! annotations the AWS Load Balancer Controller parses at reconcile time: a
//! typo there is found minutes later, in the controller's logs. This rule parses
//! them as the controller will, at admission, and says what is wrong.

mod alb;
mod gateway;

use bouncer_eks::Ingress;
use bouncer_eks::gateway::{
    CONFIG_API_VERSIONS, GATEWAY_API, GATEWAY_CLASS_API, GATEWAY_GROUP, LB_CONFIG_KIND,
    LISTENER_SET,
};
use bouncer_eks::ingress_class::{
    AUTO_MODE_PARAMS_API, Classes, INGRESS_CLASS, INGRESS_CLASS_API, PARAMS_API, PARAMS_KIND,
};
use bouncer_sdk::{
    Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

/// Settings of `ingress-tls`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Ingress classes of the AWS Load Balancer Controller: values of the legacy
    /// `kubernetes.io/ingress.class` annotation, and the names to judge by when an
    /// IngressClass cannot be looked up.
    pub alb_class_names: Vec<String>,
    /// AWS accounts (12 digits) certificates may come from; any when empty.
    pub allowed_accounts: Vec<String>,
    /// Regions certificates may come from; any when empty.
    pub allowed_regions: Vec<String>,
    /// Accept an ALB Ingress without `certificate-arn` when it names hosts (in its
    /// rules or `spec.tls`): the controller then discovers certificates in ACM by host name.
    pub allow_certificate_discovery: bool,
    /// TLS policies `alb.ingress.kubernetes.io/ssl-policy` may name; any when empty.
    pub allowed_ssl_policies: Vec<String>,
    /// Allow plain HTTP listeners on Gateways.
    pub allow_http_listeners: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            alb_class_names: bouncer_eks::default_alb_classes(),
            allowed_accounts: Vec::new(),
            allowed_regions: Vec::new(),
            allow_certificate_discovery: false,
            allowed_ssl_policies: Vec::new(),
            allow_http_listeners: false,
        }
    }
}

/// The policy.
pub struct IngressTls;

impl Policy for IngressTls {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs(&["networking.k8s.io"], &["Ingress"])
            .governs(&[GATEWAY_GROUP], &["Gateway", LISTENER_SET])
            .context(INGRESS_CLASS_API, INGRESS_CLASS)
            .context(PARAMS_API, PARAMS_KIND)
            .context(AUTO_MODE_PARAMS_API, PARAMS_KIND)
            .context(GATEWAY_CLASS_API, "GatewayClass")
            .context(GATEWAY_API, "Gateway")
            .context(CONFIG_API_VERSIONS[0], LB_CONFIG_KIND)
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_alb_classes(&settings.alb_class_names)?;
        bouncer_eks::check_accounts(&settings.allowed_accounts)?;
        Ok(())
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        if request.is_kind("networking.k8s.io", "Ingress") {
            let object = format!("Ingress {}", request.object_ref());
            judge(request, |ingress: &Ingress| {
                let mut findings = Findings::new();
                let owner = Classes::look_up().owner(ingress, &settings.alb_class_names);
                match &owner.alb {
                    Some(alb) => alb::check(&object, ingress, alb, settings, &mut findings),
                    None => check_spec_tls(&object, ingress, &mut findings),
                }
                owner.explain(&mut findings);
                findings
            })
        } else if request.is_kind("gateway.networking.k8s.io", "Gateway") {
            let object = format!("Gateway {}", request.object_ref());
            let namespace = request.namespace.clone().unwrap_or_default();
            judge(request, |g: &gateway::Gateway| {
                gateway::check(&object, g, &namespace, settings)
            })
        } else if request.is_kind(GATEWAY_GROUP, LISTENER_SET) {
            let object = format!("ListenerSet {}", request.object_ref());
            let namespace = request.namespace.clone().unwrap_or_default();
            judge(request, |set: &gateway::ListenerSet| {
                gateway::check_listener_set(&object, set, &namespace, settings)
            })
        } else {
            Ok(Verdict::allow())
        }
    }
}

/// An Ingress of another controller terminates TLS from `spec.tls`: every host
/// it routes must be covered.
fn check_spec_tls(object: &str, ingress: &Ingress, findings: &mut Findings) {
    if ingress.spec.tls.is_empty() {
        findings.deny(format!(
            "{object} serves plain HTTP: it has no `spec.tls`; add a `spec.tls` entry with its hosts and a certificate Secret"
        ));
        return;
    }
    let covered = |host: &str| {
        host.is_empty()
            || ingress
                .spec
                .tls
                .iter()
                .flat_map(|t| &t.hosts)
                .any(|tls| covers(tls, host))
    };
    let uncovered: Vec<&str> = ingress
        .rule_hosts()
        .into_iter()
        .filter(|h| !covered(h))
        .collect();
    if !uncovered.is_empty() {
        findings.deny(format!(
            "{object} routes {} without TLS: no `spec.tls` entry lists {}; add them to `spec.tls[].hosts`",
            uncovered.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
            if uncovered.len() == 1 { "it" } else { "them" }
        ));
    }
}

/// Whether a certificate for `tls_host` (possibly `*.example.com`) serves `host`.
fn covers(tls_host: &str, host: &str) -> bool {
    match tls_host.strip_prefix("*.") {
        Some(domain) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
        None => tls_host == host,
    }
}

export_policy!(IngressTls);

#[cfg(test)]
mod tests {
    #[test]
    fn wildcards_cover_one_label() {
        assert!(super::covers("*.example.com", "a.example.com"));
        assert!(!super::covers("*.example.com", "a.b.example.com"));
        assert!(!super::covers("*.example.com", "example.com"));
        assert!(super::covers("shop.example.com", "shop.example.com"));
    }
}
