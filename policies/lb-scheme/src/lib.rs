//! `lb-scheme`: load balancers are internal unless they are meant to be public.
//!
//! One `internet-facing` annotation puts a service on the internet. This rule
//! makes that a decision of the platform team: only namespaces listed in
//! `publicNamespaces` may have public load balancers, and a public Ingress may
//! only serve hosts listed in `publicHosts`.

use bouncer_eks::gateway::{
    AwsGateway, CONFIG_API_VERSIONS, GATEWAY_API, GATEWAY_CLASS_API, GATEWAY_GROUP, GatewayRefs,
    LB_CONFIG_KIND, LISTENER_SET,
};
use bouncer_eks::ingress_class::{
    AUTO_MODE_PARAMS_API, Alb, Classes, INGRESS_CLASS, INGRESS_CLASS_API, PARAMS_API, PARAMS_KIND,
    group_of,
};
use bouncer_eks::ingress_group::other_members;
use bouncer_eks::model::{self, LoadBalancer, Provisioner, ServiceLb, Source, Topic};
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
    /// Ingress classes of the AWS Load Balancer Controller: values of the legacy
    /// `kubernetes.io/ingress.class` annotation, and the names to judge by when an
    /// IngressClass cannot be looked up.
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
            .governs(&[GATEWAY_GROUP], &["Gateway", LISTENER_SET])
            .context(INGRESS_CLASS_API, INGRESS_CLASS)
            .context(PARAMS_API, PARAMS_KIND)
            .context(AUTO_MODE_PARAMS_API, PARAMS_KIND)
            .context("networking.k8s.io/v1", "Ingress")
            .context(GATEWAY_CLASS_API, "GatewayClass")
            .context(GATEWAY_API, "Gateway")
            .context(CONFIG_API_VERSIONS[0], LB_CONFIG_KIND)
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
                let classes = Classes::look_up();
                let owner = classes.owner(ingress, &settings.alb_class_names);
                if let Some(alb) = &owner.alb {
                    let hosts = ingress.rule_hosts();
                    let meta = &ingress.metadata;
                    let scheme =
                        ingress_scheme(&object, ingress, alb, &classes, &rule, &mut findings);
                    rule.check(&object, &scheme, Some(&hosts), &mut findings);
                    // An NLB in front of the ALB is a load balancer of its own:
                    // internet-facing, it makes an internal ALB public.
                    if meta
                        .annotation(INGRESS_FRONTEND_NLB)
                        .and_then(model::go_bool)
                        == Some(true)
                    {
                        let frontend = Stated::annotation(meta, INGRESS_FRONTEND_NLB_SCHEME);
                        rule.check(
                            &format!("{object} (its frontend NLB)"),
                            &frontend,
                            Some(&hosts),
                            &mut findings,
                        );
                    }
                }
                owner.explain(&mut findings);
                findings
            })
        } else if request.is_kind("gateway.networking.k8s.io", "Gateway") {
            let object = format!("Gateway {}", request.object_ref());
            judge(request, |gateway: &Gateway| {
                let mut findings = Findings::new();
                let aws = AwsGateway::look_up(&gateway.spec.refs, &namespace);
                gateway_scheme(
                    &object,
                    &aws,
                    &gateway.spec.listeners,
                    None,
                    &rule,
                    &mut findings,
                );
                findings
            })
        } else if request.is_kind(GATEWAY_GROUP, LISTENER_SET) {
            let object = format!("ListenerSet {}", request.object_ref());
            judge(request, |set: &ListenerSet| {
                let mut findings = Findings::new();
                let parent = &set.spec.parent_ref;
                let aws = AwsGateway::of_parent(parent, &namespace);
                if let Some(why) = &aws.class_unseen {
                    findings.warn(format!(
                        "{object}: {why}; the scheme of the load balancer its listeners join is not judged"
                    ));
                }
                let target = parent.target(&namespace);
                gateway_scheme(
                    &object,
                    &aws,
                    &set.spec.listeners,
                    Some(&target),
                    &rule,
                    &mut findings,
                );
                findings
            })
        } else if request.is_kind("", "Service") {
            let object = format!("Service {}", request.object_ref());
            judge(request, |service: &Service| {
                let mut findings = Findings::new();
                if let Some(ServiceLb::Built(lb)) = model::service(service) {
                    findings
                        .warnings
                        .extend(lb.notes_on(Topic::Scheme).map(|n| format!("{object} {n}")));
                    let scheme = service_scheme(&service.metadata, &lb);
                    rule.check(&object, &scheme, None, &mut findings);
                }
                findings
            })
        } else {
            Ok(Verdict::allow())
        }
    }
}

/// Judges the scheme of a Gateway's load balancer, for the Gateway itself or
/// for a ListenerSet (`parent`: `namespace/name`) whose listeners join it.
fn gateway_scheme(
    object: &str,
    aws: &AwsGateway,
    listeners: &[Listener],
    parent: Option<&str>,
    rule: &Rule<'_>,
    findings: &mut Findings,
) {
    if !aws.is_aws() {
        return;
    }
    findings.warnings.extend(
        aws.unseen
            .iter()
            .map(|u| format!("{object}: {u}; its scheme is judged from what bouncer can see")),
    );
    let joins = parent.map_or_else(String::new, |p| {
        format!("adds listeners to Gateway `{p}`, whose load balancer ")
    });
    let scheme = match aws.scheme() {
        Some((scheme, from)) => Stated::via(
            Some(scheme),
            format!("{joins}is `{scheme}` by the `scheme` of its {from}"),
            match parent {
                None => format!("set `scheme: internal` in the {from}"),
                Some(p) => format!("attach the listeners to an internal Gateway instead of `{p}`"),
            },
        ),
        None => Stated::via(
            None,
            format!("{joins}has no `scheme` in a LoadBalancerConfiguration"),
            "set `scheme: internal` in its LoadBalancerConfiguration".into(),
        ),
    };
    let hosts: Vec<&str> = listeners
        .iter()
        .map(|l| l.hostname.as_deref().unwrap_or(""))
        .collect();
    rule.check(object, &scheme, Some(&hosts), findings);
}

/// The parts of a ListenerSet this rule reads.
type ListenerSet = bouncer_eks::gateway::ListenerSet<Listener>;

/// The parts of a Gateway this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Gateway {
    spec: GatewaySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GatewaySpec {
    #[serde(flatten)]
    refs: GatewayRefs,
    listeners: Vec<Listener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Listener {
    hostname: Option<String>,
}

/// An ALB Ingress's scheme: its class parameters', else its annotation, and
/// in an IngressGroup the group's (docs/guide/ingress/ingress_class.md,
/// `spec.scheme`; annotations.md, "IngressGroup").
fn ingress_scheme(
    object: &str,
    ingress: &Ingress,
    alb: &Alb,
    classes: &Classes,
    rule: &Rule<'_>,
    findings: &mut Findings,
) -> Stated {
    let meta = &ingress.metadata;
    let lb = model::ingress(meta, alb);
    findings
        .warnings
        .extend(lb.notes_on(Topic::Group).map(|n| format!("{object} {n}")));
    let stated = match &lb.scheme.from {
        from @ Source::ClassParams { .. } => {
            let (scheme, from) = (&lb.scheme.value, from.describe());
            Stated::via(
                Some(scheme),
                format!("is `{scheme}` by {from}, which overrides `{INGRESS_SCHEME}`"),
                format!("use an IngressClass whose parameters make it internal, or change {from}"),
            )
        }
        _ => Stated::annotation(meta, INGRESS_SCHEME),
    };
    let Some(group) = group_of(ingress, alb) else {
        return stated;
    };
    let namespace = rule.namespace;
    let members = match other_members(
        &group,
        ingress,
        namespace,
        classes,
        &rule.settings.alb_class_names,
    ) {
        Ok(members) => members,
        Err(why) => {
            findings.warn(format!(
                "{object} joins IngressGroup `{group}`, but bouncer cannot see its other members ({why}); \
                 judged by its own scheme, though the group's ALB takes any member's"
            ));
            return stated;
        }
    };
    let stating: Vec<_> = members
        .iter()
        .filter_map(|m| Some((m, m.scheme.as_ref()?)))
        .collect();
    let reference = stated
        .scheme
        .as_deref()
        .or_else(|| stating.first().map(|(_, (s, _))| s.as_str()));
    let conflicting: Vec<String> = stating
        .iter()
        .filter(|(_, (scheme, _))| Some(scheme.as_str()) != reference)
        .map(|(m, (scheme, from))| format!("`{}` is `{scheme}` by {from}", m.name))
        .collect();
    if !conflicting.is_empty() {
        let mine = stated
            .scheme
            .as_deref()
            .map_or_else(String::new, |s| format!("it is `{s}`, but "));
        let message = format!(
            "{object} joins IngressGroup `{group}`, whose members disagree on the scheme: {mine}{}; \
             the controller fails the whole group until they agree",
            bouncer_sdk::a_few(&conflicting, 3)
        );
        if stated.scheme.is_some() {
            findings.deny(message)
        } else {
            findings.warn(message)
        }
        return stated;
    }
    match (stated.scheme.as_deref(), stating.first()) {
        (None, Some((member, (scheme, from)))) => Stated::via(
            Some(scheme.as_str()),
            format!(
                "joins IngressGroup `{group}`, whose ALB is `{scheme}` because member `{}` states it ({from})",
                member.name
            ),
            format!("leave IngressGroup `{group}`, or make the group internal"),
        ),
        _ => stated,
    }
}

/// A scheme as the controller resolves it, and how the object comes to have it (for messages).
#[derive(Debug, Clone)]
struct Stated {
    /// `internal`, `internet-facing`, something invalid, or `None` (the default, internal).
    scheme: Option<String>,
    /// What the object does, for messages: "sets `…/scheme: internet-facing`".
    says: String,
    /// How to make it internal.
    fix: String,
    /// Whether it comes from the deprecated boolean flag (an invalid value is then "not a boolean").
    legacy: bool,
}

impl Stated {
    /// Stated by `annotation` on the object itself.
    fn annotation(meta: &Metadata, annotation: &str) -> Self {
        let scheme = meta.annotation(annotation);
        Self {
            says: match scheme {
                Some(s @ ("internal" | "internet-facing")) => format!("sets `{annotation}: {s}`"),
                Some(s) => format!("sets `{annotation}: {s:?}`"),
                None => format!("has no `{annotation}`"),
            },
            fix: format!("set `{annotation}: internal`"),
            scheme: scheme.map(str::to_owned),
            legacy: false,
        }
    }

    /// Given by something else than the object's own annotation.
    fn via(scheme: Option<&str>, says: String, fix: String) -> Self {
        Self {
            scheme: scheme.map(str::to_owned),
            says,
            fix,
            legacy: false,
        }
    }
}

/// A Service's scheme, as the model resolves it, in words.
fn service_scheme(meta: &Metadata, lb: &LoadBalancer) -> Stated {
    let scheme = &lb.scheme;
    let in_tree = lb.provisioner == Provisioner::InTree;
    match &scheme.from {
        Source::Annotation(SERVICE_INTERNAL) => {
            let raw = meta.annotation(SERVICE_INTERNAL).unwrap_or_default();
            let makes = if scheme.value == "internet-facing" {
                ", which makes it internet-facing"
            } else {
                ""
            };
            Stated {
                scheme: Some(scheme.value.clone()),
                says: format!("sets `{SERVICE_INTERNAL}: {raw:?}`{makes}"),
                fix: if in_tree {
                    format!("set `{SERVICE_INTERNAL}: \"true\"`")
                } else {
                    format!("set `{SERVICE_SCHEME}: internal`")
                },
                legacy: true,
            }
        }
        Source::Default(provisioner) if in_tree => Stated::via(
            Some(&scheme.value),
            format!(
                "is {} of {} ({}), which is `{}` unless `{SERVICE_INTERNAL}` says otherwise",
                lb.lb_type.with_article(),
                provisioner.name(),
                lb.why,
                scheme.value
            ),
            format!("set `{SERVICE_INTERNAL}: \"true\"`"),
        ),
        _ => Stated::annotation(meta, SERVICE_SCHEME),
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
        stated: &Stated,
        hosts: Option<&[&str]>,
        findings: &mut Findings,
    ) {
        let says = &stated.says;
        let fix = &stated.fix;
        match stated.scheme.as_deref() {
            Some("internal") => {}
            None if !self.settings.require_explicit_scheme => {}
            None => findings.deny(format!(
                "{object} does not state its scheme ({says}); {fix} \
                 (or `internet-facing` where public load balancers are allowed)"
            )),
            Some("internet-facing") => {
                if !matches_any(&self.settings.public_namespaces, self.namespace) {
                    findings.deny(format!(
                        "{object} {says}, but namespace `{}` may not have \
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
                        "{object} {says} for {}, which publicHosts {:?} \
                         does not allow; serve those hosts from an internal load balancer",
                        private.join(", "),
                        self.settings.public_hosts
                    ));
                }
            }
            Some(_) if stated.legacy => findings.deny(format!(
                "{object} {says}, which is not a boolean: the controller cannot parse it and \
                 does not reconcile the Service; use `{SERVICE_SCHEME}: internal` or `internet-facing`"
            )),
            Some(_) => findings.deny(format!(
                "{object} {says}; the scheme is `internal` or `internet-facing`"
            )),
        }
    }
}

export_policy!(LbScheme);
