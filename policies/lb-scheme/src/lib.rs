//! `lb-scheme`: load balancers are internal unless they are meant to be public.
//!
//! One `internet-facing` annotation puts a service on the internet. This rule
//! makes that a decision of the platform team: only namespaces listed in
//! `publicNamespaces` may have public load balancers, and a public Ingress may
//! only serve hosts listed in `publicHosts`.

use bouncer_eks::names::{INGRESS_SCHEME, SERVICE_INTERNAL, SERVICE_SCHEME};
use bouncer_eks::{Ingress, Metadata, Service, matches_any};
use bouncer_sdk::{Findings, Operation, Policy, Request, Result, Verdict, export_policy, judge};
use serde::Deserialize;

/// Settings of `lb-scheme`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Ingress class names handled by the AWS Load Balancer Controller.
    pub alb_class_names: Vec<String>,
    /// Namespaces (globs) whose load balancers may be `internet-facing`.
    pub public_namespaces: Vec<String>,
    /// Hosts (globs) a public Ingress may serve; a rule without a host counts as `""`.
    pub public_hosts: Vec<String>,
    /// Deny a load balancer that does not state its scheme.
    pub require_explicit_scheme: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            alb_class_names: bouncer_eks::default_alb_classes(),
            public_namespaces: Vec::new(),
            public_hosts: vec!["*".to_owned()],
            require_explicit_scheme: false,
        }
    }
}

/// The policy.
pub struct LbScheme;

impl Policy for LbScheme {
    type Settings = Settings;

    fn metadata() -> bouncer_sdk::Metadata {
        bouncer_sdk::Metadata::new()
            .governs(&["networking.k8s.io"], &["Ingress"])
            .governs(&[""], &["Service"])
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_alb_classes(&settings.alb_class_names)?;
        bouncer_eks::check_globs("publicNamespaces", &settings.public_namespaces)?;
        bouncer_eks::check_globs("publicHosts", &settings.public_hosts)
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        let namespace = request.namespace.clone().unwrap_or_default();
        let rule = Rule {
            settings,
            namespace: &namespace,
        };
        if request.is_kind("networking.k8s.io", "Ingress") {
            let object = format!("Ingress {}", request.object_ref());
            judge(request, |ingress: &Ingress| {
                let mut findings = Findings::new();
                if ingress.alb_class(&settings.alb_class_names).is_some() {
                    let hosts = ingress.rule_hosts();
                    rule.check(
                        &object,
                        &ingress.metadata,
                        INGRESS_SCHEME,
                        Some(&hosts),
                        &mut findings,
                    );
                }
                findings
            })
        } else if request.is_kind("", "Service") {
            let object = format!("Service {}", request.object_ref());
            judge(request, |service: &Service| {
                let mut findings = Findings::new();
                if service.controller().is_some() {
                    rule.check(
                        &object,
                        &service.metadata,
                        SERVICE_SCHEME,
                        None,
                        &mut findings,
                    );
                }
                if service.is_load_balancer()
                    && service.metadata.annotation(SERVICE_INTERNAL).is_some()
                {
                    findings.warn(format!(
                        "{object} uses the deprecated annotation `{SERVICE_INTERNAL}`, which the AWS Load \
                         Balancer Controller ignores; use `{SERVICE_SCHEME}: internal` instead"
                    ));
                }
                findings
            })
        } else {
            Ok(Verdict::allow())
        }
    }
}

struct Rule<'a> {
    settings: &'a Settings,
    namespace: &'a str,
}

impl Rule<'_> {
    fn check(
        &self,
        object: &str,
        meta: &Metadata,
        annotation: &str,
        hosts: Option<&[&str]>,
        findings: &mut Findings,
    ) {
        match meta.annotation(annotation) {
            Some("internal") => {}
            None if !self.settings.require_explicit_scheme => {}
            None => findings.deny(format!(
                "{object} does not state its scheme; add the annotation `{annotation}: internal` \
                 (or `internet-facing` where public load balancers are allowed)"
            )),
            Some("internet-facing") => {
                if !matches_any(&self.settings.public_namespaces, self.namespace) {
                    findings.deny(format!(
                        "{object} sets `{annotation}: internet-facing`, but namespace `{}` may not have \
                         public load balancers (publicNamespaces: {:?}); set `{annotation}: internal`",
                        self.namespace, self.settings.public_namespaces
                    ));
                    return;
                }
                let private: Vec<String> = hosts
                    .unwrap_or_default()
                    .iter()
                    .filter(|h| !matches_any(&self.settings.public_hosts, h))
                    .map(|h| if h.is_empty() { "a rule without a host".to_owned() } else { format!("`{h}`") })
                    .collect();
                if !private.is_empty() {
                    findings.deny(format!(
                        "{object} sets `{annotation}: internet-facing` for {}, which publicHosts {:?} \
                         does not allow; serve those hosts from an internal load balancer",
                        private.join(", "),
                        self.settings.public_hosts
                    ));
                }
            }
            Some(other) => findings.deny(format!(
                "{object} sets `{annotation}: {other:?}`; the scheme is `internal` or `internet-facing`"
            )),
        }
    }
}

export_policy!(LbScheme);
