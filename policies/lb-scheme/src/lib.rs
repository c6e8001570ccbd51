//! `lb-scheme`: load balancers are internal unless they are meant to be public.
//!
//! One `internet-facing` annotation puts a service on the internet. This rule
//! makes that a decision of the platform team: only namespaces listed in
//! `publicNamespaces` may have public load balancers, and a public Ingress may
//! only serve hosts listed in `publicHosts`.

use bouncer_eks::names::{
    INGRESS_FRONTEND_NLB, INGRESS_FRONTEND_NLB_SCHEME, INGRESS_SCHEME, SERVICE_INTERNAL,
    SERVICE_SCHEME,
};
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
                    let meta = &ingress.metadata;
                    let scheme = Stated::annotation(meta, INGRESS_SCHEME);
                    rule.check(&object, scheme, Some(&hosts), &mut findings);
                    // An NLB in front of the ALB is a load balancer of its own:
                    // internet-facing, it makes an internal ALB public.
                    if meta.annotation(INGRESS_FRONTEND_NLB).and_then(go_bool) == Some(true) {
                        let frontend = Stated::annotation(meta, INGRESS_FRONTEND_NLB_SCHEME);
                        rule.check(
                            &format!("{object} (its frontend NLB)"),
                            frontend,
                            Some(&hosts),
                            &mut findings,
                        );
                    }
                }
                findings
            })
        } else if request.is_kind("", "Service") {
            let object = format!("Service {}", request.object_ref());
            judge(request, |service: &Service| {
                let mut findings = Findings::new();
                if service.controller().is_some() {
                    let scheme = service_scheme(&service.metadata, &object, &mut findings);
                    rule.check(&object, scheme, None, &mut findings);
                }
                findings
            })
        } else {
            Ok(Verdict::allow())
        }
    }
}

/// A scheme as the controller reads it, and how the object states it (for messages).
#[derive(Debug, Clone, Copy)]
struct Stated<'a> {
    /// `internal`, `internet-facing`, something invalid, or `None` (the default, internal).
    scheme: Option<&'a str>,
    /// The annotation that states it.
    annotation: &'a str,
    /// The annotation's own text, when it is not the scheme itself (the legacy flag).
    written: Option<&'a str>,
}

impl<'a> Stated<'a> {
    fn annotation(meta: &'a Metadata, annotation: &'a str) -> Self {
        Self {
            scheme: meta.annotation(annotation),
            annotation,
            written: None,
        }
    }

    /// `annotation: value` as the object has it.
    fn as_written(&self) -> String {
        match (self.written, self.scheme) {
            (Some(text), _) => format!("{}: {text:?}", self.annotation),
            (None, Some(scheme)) => format!("{}: {scheme}", self.annotation),
            (None, None) => self.annotation.to_owned(),
        }
    }
}

/// A Service's scheme as the controller resolves it
/// (docs/guide/service/annotations.md, `lb-scheme` and `lb-internal`):
/// `aws-load-balancer-scheme` when present, else the deprecated boolean
/// `aws-load-balancer-internal` (`"false"` means internet-facing), else internal.
fn service_scheme<'a>(meta: &'a Metadata, object: &str, findings: &mut Findings) -> Stated<'a> {
    let scheme = Stated::annotation(meta, SERVICE_SCHEME);
    let Some(legacy) = meta.annotation(SERVICE_INTERNAL) else {
        return scheme;
    };
    let internal = go_bool(legacy);
    if scheme.scheme.is_some() {
        if internal.is_some_and(|internal| {
            Some(if internal {
                "internal"
            } else {
                "internet-facing"
            }) != scheme.scheme
        }) {
            findings.warn(format!(
                "{object} sets both `{SERVICE_SCHEME}` and `{SERVICE_INTERNAL}: {legacy:?}`, which disagree; \
                 the controller uses `{SERVICE_SCHEME}`: remove `{SERVICE_INTERNAL}`"
            ));
        }
        return scheme;
    }
    findings.warn(format!(
        "{object} uses the deprecated annotation `{SERVICE_INTERNAL}`; the controller still honours it, \
         but `{SERVICE_SCHEME}` says the same and takes precedence"
    ));
    Stated {
        scheme: match internal {
            Some(true) => Some("internal"),
            Some(false) => Some("internet-facing"),
            None => Some(legacy),
        },
        annotation: SERVICE_INTERNAL,
        written: Some(legacy),
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it, which the controller's
/// annotation parser uses.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
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
        stated: Stated<'_>,
        hosts: Option<&[&str]>,
        findings: &mut Findings,
    ) {
        let annotation = stated.annotation;
        let written = stated.as_written();
        match stated.scheme {
            Some("internal") => {}
            None if !self.settings.require_explicit_scheme => {}
            None => findings.deny(format!(
                "{object} does not state its scheme; add the annotation `{annotation}: internal` \
                 (or `internet-facing` where public load balancers are allowed)"
            )),
            Some("internet-facing") => {
                let makes = if stated.written.is_some() { ", which makes it internet-facing" } else { "" };
                if !matches_any(&self.settings.public_namespaces, self.namespace) {
                    let fix = if annotation == SERVICE_INTERNAL {
                        format!("set `{SERVICE_SCHEME}: internal`")
                    } else {
                        format!("set `{annotation}: internal`")
                    };
                    findings.deny(format!(
                        "{object} sets `{written}`{makes}, but namespace `{}` may not have \
                         public load balancers (publicNamespaces: {:?}); {fix}",
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
                        "{object} sets `{written}` for {}, which publicHosts {:?} \
                         does not allow; serve those hosts from an internal load balancer",
                        private.join(", "),
                        self.settings.public_hosts
                    ));
                }
            }
            Some(_) if annotation == SERVICE_INTERNAL => findings.deny(format!(
                "{object} sets `{written}`, which is not a boolean: the controller cannot parse it and \
                 does not reconcile the Service; use `{SERVICE_SCHEME}: internal` or `internet-facing`"
            )),
            Some(other) => findings.deny(format!(
                "{object} sets `{annotation}: {other:?}`; the scheme is `internal` or `internet-facing`"
            )),
        }
    }
}

export_policy!(LbScheme);
