//! What load balancer an object gets: who provisions it, its type, scheme and
//! target type, and where each value comes from.
//!
//! Every house rule that judges a load balancer judges this model instead of
//! re-deriving it, so the rules agree on the provisioner's defaults (the AWS
//! Load Balancer Controller targets instances, EKS Auto Mode pod IPs, the
//! in-tree provider makes public load balancers) and cite the same source in
//! their messages. The tables in `policies/eks/README.md` list each default
//! and its documentation.

use crate::lb::{Metadata, Service};
use crate::names::{
    AUTO_MODE_NLB_CLASS, INGRESS_SCHEME, INGRESS_TARGET_TYPE, NLB_CLASS, SERVICE_INTERNAL,
    SERVICE_LB_TYPE, SERVICE_SCHEME, SERVICE_TARGET_TYPE,
};

/// Who builds the load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioner {
    /// The AWS Load Balancer Controller (v2 for Ingresses and Services, v3 for Gateways).
    Lbc,
    /// EKS Auto Mode's built-in load balancing.
    AutoMode,
    /// Kubernetes' legacy in-tree AWS cloud provider (a Classic ELB, or an NLB).
    InTree,
}

impl Provisioner {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lbc => "the AWS Load Balancer Controller",
            Self::AutoMode => "EKS Auto Mode",
            Self::InTree => "the in-tree AWS cloud provider",
        }
    }

    /// The target type it uses when nothing sets one.
    pub fn default_target_type(self) -> &'static str {
        match self {
            // EKS user guide, auto-networking: "The default targeting mode is IP Mode".
            Self::AutoMode => "ip",
            Self::Lbc | Self::InTree => "instance",
        }
    }

    /// The scheme it uses when nothing sets one.
    pub fn default_scheme(self) -> &'static str {
        match self {
            Self::Lbc | Self::AutoMode => "internal",
            // `internalELB := false` unless `aws-load-balancer-internal` says otherwise.
            Self::InTree => "internet-facing",
        }
    }
}

/// The kind of load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbType {
    /// Application Load Balancer.
    Alb,
    /// Network Load Balancer.
    Nlb,
    /// Classic Load Balancer.
    Clb,
}

impl LbType {
    /// Its name with "a" or "an".
    pub fn with_article(self) -> &'static str {
        match self {
            Self::Alb => "an ALB",
            Self::Nlb => "an NLB",
            Self::Clb => "a Classic ELB",
        }
    }

    /// Its short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alb => "ALB",
            Self::Nlb => "NLB",
            Self::Clb => "Classic ELB",
        }
    }
}

/// Where a setting's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An annotation on the object itself.
    Annotation(&'static str),
    /// A field of the class's IngressClassParams, which overrides the annotation.
    ClassParams {
        /// The IngressClassParams' name.
        name: String,
        /// The field under `spec`.
        field: &'static str,
    },
    /// A Gateway's LoadBalancerConfiguration or TargetGroupConfiguration (its description).
    Config(String),
    /// Implied by something else the object says (its description).
    Implied(String),
    /// The provisioner's default: nothing sets it.
    Default(Provisioner),
}

impl Source {
    /// Whether nothing sets the value.
    pub fn is_default(&self) -> bool {
        matches!(self, Self::Default(_))
    }

    /// Where the value comes from, for messages: "annotation `…/scheme`".
    pub fn describe(&self) -> String {
        match self {
            Self::Annotation(key) => format!("annotation `{key}`"),
            Self::ClassParams { name, field } => {
                format!("IngressClassParams `{name}` (`spec.{field}`)")
            }
            Self::Config(what) | Self::Implied(what) => what.clone(),
            Self::Default(p) => format!("{}'s default", p.name()),
        }
    }
}

/// A setting's value and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value as the provisioner reads it.
    pub value: String,
    /// Where it comes from.
    pub from: Source,
}

impl Setting {
    fn new(value: impl Into<String>, from: Source) -> Self {
        Self {
            value: value.into(),
            from,
        }
    }

    fn default_of(value: &str, provisioner: Provisioner) -> Self {
        Self::new(value, Source::Default(provisioner))
    }
}

/// What a note is about, so each rule reports only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// The scheme.
    Scheme,
    /// The target type.
    TargetType,
    /// The IngressGroup.
    Group,
}

/// The load balancer an object gets.
#[derive(Debug, Clone)]
pub struct LoadBalancer {
    /// Who builds it.
    pub provisioner: Provisioner,
    /// Why, for messages: "IngressClass `alb`, controller `ingress.k8s.aws/alb`".
    pub why: String,
    /// Its type.
    pub lb_type: LbType,
    /// `internal` or `internet-facing` (or what the object wrongly says).
    pub scheme: Setting,
    /// `ip` or `instance` (or what the object wrongly says).
    pub target_type: Setting,
    /// Its listeners where the object declares them (an ALB Ingress); `Err`
    /// with why the provisioner cannot read them. Gateways' listeners are their own.
    pub listeners: Option<Result<crate::listeners::Listeners, String>>,
    /// The certificates it names (an ALB Ingress), and where from.
    pub certificates: Option<crate::listeners::Certificates>,
    /// Set when it is made through a deprecated way the provisioner still honours.
    pub deprecated: Option<String>,
    /// What the provisioner ignores or reads unusually, by topic; each reads
    /// after the object's name ("sets `x`, which …").
    pub notes: Vec<(Topic, String)>,
}

impl LoadBalancer {
    /// The notes on `topic`.
    pub fn notes_on(&self, topic: Topic) -> impl Iterator<Item = &String> {
        self.notes
            .iter()
            .filter(move |(t, _)| *t == topic)
            .map(|(_, n)| n)
    }
}

/// What becomes of a `type: LoadBalancer` Service.
#[derive(Debug, Clone)]
pub enum ServiceLb {
    /// A load balancer is built.
    Built(Box<LoadBalancer>),
    /// Nobody builds one; why.
    Nobody(String),
    /// Another controller's `loadBalancerClass`; which.
    OtherClass(String),
}

/// Resolves a Service: `None` when it is not `type: LoadBalancer`.
///
/// As the controller decides it (`IsServiceSupported` in
/// `pkg/service/service_utils.go`, docs/guide/service/nlb.md), EKS Auto Mode
/// (auto-configure-nlb) and the in-tree provider (`aws.go` in
/// cloud-provider-aws, `EnsureLoadBalancer`).
pub fn service(service: &Service) -> Option<ServiceLb> {
    if !service.is_load_balancer() {
        return None;
    }
    let meta = &service.metadata;
    let lb_type_annotation = meta.annotation(SERVICE_LB_TYPE);
    let built = |provisioner, why: String, lb_type| {
        let mut lb = LoadBalancer {
            provisioner,
            why,
            lb_type,
            scheme: Setting::default_of(provisioner.default_scheme(), provisioner),
            target_type: Setting::default_of(provisioner.default_target_type(), provisioner),
            listeners: None,
            certificates: None,
            deprecated: None,
            notes: Vec::new(),
        };
        service_scheme(meta, &mut lb);
        if provisioner != Provisioner::InTree
            && let Some(t) = meta.annotation(SERVICE_TARGET_TYPE)
        {
            lb.target_type = Setting::new(t, Source::Annotation(SERVICE_TARGET_TYPE));
        }
        Box::new(lb)
    };
    if let Some(class) = service.spec.load_balancer_class.as_deref() {
        return Some(match class {
            NLB_CLASS => ServiceLb::Built(built(
                Provisioner::Lbc,
                format!("loadBalancerClass `{NLB_CLASS}`"),
                LbType::Nlb,
            )),
            AUTO_MODE_NLB_CLASS => {
                let mut lb = built(
                    Provisioner::AutoMode,
                    format!("loadBalancerClass `{AUTO_MODE_NLB_CLASS}`"),
                    LbType::Nlb,
                );
                if let Some(t) = lb_type_annotation {
                    lb.notes.push((
                        Topic::TargetType,
                        format!(
                            "sets `{SERVICE_LB_TYPE}: {t}`, which EKS Auto Mode does not support \
                             (auto-configure-nlb): `spec.loadBalancerClass` chooses the load balancer; \
                             remove the annotation"
                        ),
                    ));
                }
                ServiceLb::Built(lb)
            }
            other => ServiceLb::OtherClass(format!("loadBalancerClass `{other}`")),
        });
    }
    Some(match lb_type_annotation {
        Some("external") => match meta.annotation(SERVICE_TARGET_TYPE) {
            Some("ip" | "instance") => ServiceLb::Built(built(
                Provisioner::Lbc,
                format!("annotations `{SERVICE_LB_TYPE}: external` and `{SERVICE_TARGET_TYPE}`"),
                LbType::Nlb,
            )),
            _ => ServiceLb::Nobody(format!(
                "`{SERVICE_LB_TYPE}: external` without `{SERVICE_TARGET_TYPE}: ip` or `instance`"
            )),
        },
        Some("nlb-ip") => {
            let why = format!("annotation `{SERVICE_LB_TYPE}: nlb-ip`");
            let mut lb = built(Provisioner::Lbc, why.clone(), LbType::Nlb);
            // `nlb-ip` means IP targets whatever the target-type annotation says
            // (`buildTargetType` in pkg/service/model_build_target_group.go).
            lb.target_type = Setting::new("ip", Source::Implied(why.clone()));
            lb.deprecated = Some(why);
            ServiceLb::Built(lb)
        }
        Some("nlb") => ServiceLb::Built(built(
            Provisioner::InTree,
            format!("annotation `{SERVICE_LB_TYPE}: nlb`"),
            LbType::Nlb,
        )),
        Some(other) => ServiceLb::Built(built(
            Provisioner::InTree,
            format!("annotation `{SERVICE_LB_TYPE}: {other}`"),
            LbType::Clb,
        )),
        None => ServiceLb::Built(built(
            Provisioner::InTree,
            format!("no `{SERVICE_LB_TYPE}` annotation and no loadBalancerClass"),
            LbType::Clb,
        )),
    })
}

/// A Service's scheme, as its provisioner reads the annotations.
fn service_scheme(meta: &Metadata, lb: &mut LoadBalancer) {
    let scheme = meta.annotation(SERVICE_SCHEME);
    let internal = meta.annotation(SERVICE_INTERNAL);
    let mut note = |text: String| lb.notes.push((Topic::Scheme, text));
    match lb.provisioner {
        // The in-tree provider reads only the boolean: "false" is public,
        // any other non-empty value internal, none public.
        Provisioner::InTree => {
            if scheme.is_some() {
                note(format!(
                    "sets `{SERVICE_SCHEME}`, which the in-tree AWS cloud provider does not read; only \
                     `{SERVICE_INTERNAL}` makes its load balancer internal"
                ));
            }
            if let Some(value) = internal.filter(|v| !v.is_empty()) {
                let scheme = if value == "false" {
                    "internet-facing"
                } else {
                    "internal"
                };
                lb.scheme = Setting::new(scheme, Source::Annotation(SERVICE_INTERNAL));
            }
        }
        Provisioner::AutoMode => {
            if let Some(value) = internal {
                note(format!(
                    "sets `{SERVICE_INTERNAL}: {value:?}`, which EKS Auto Mode does not support \
                     (auto-configure-nlb) and ignores; use `{SERVICE_SCHEME}`"
                ));
            }
            if let Some(s) = scheme {
                lb.scheme = Setting::new(s, Source::Annotation(SERVICE_SCHEME));
            }
        }
        // docs/guide/service/annotations.md: `lb-scheme` wins; the deprecated
        // boolean is honoured without it.
        Provisioner::Lbc => match (scheme, internal) {
            (Some(s), legacy) => {
                let internal = legacy.and_then(go_bool);
                if let (Some(flag), Some(legacy)) = (internal, legacy)
                    && (if flag { "internal" } else { "internet-facing" }) != s
                {
                    note(format!(
                        "sets both `{SERVICE_SCHEME}` and `{SERVICE_INTERNAL}: {legacy:?}`, which disagree; \
                         the controller uses `{SERVICE_SCHEME}`: remove `{SERVICE_INTERNAL}`"
                    ));
                }
                lb.scheme = Setting::new(s, Source::Annotation(SERVICE_SCHEME));
            }
            (None, Some(legacy)) => {
                note(format!(
                    "uses the deprecated annotation `{SERVICE_INTERNAL}`; the controller still honours it, \
                     but `{SERVICE_SCHEME}` says the same and takes precedence"
                ));
                let value = match go_bool(legacy) {
                    Some(true) => "internal",
                    Some(false) => "internet-facing",
                    None => legacy,
                };
                lb.scheme = Setting::new(value, Source::Annotation(SERVICE_INTERNAL));
            }
            (None, None) => {}
        },
    }
}

/// An ALB Ingress's load balancer, given who reconciles it.
pub fn ingress(meta: &Metadata, alb: &crate::ingress_class::Alb) -> LoadBalancer {
    let provisioner = alb.provisioner;
    let pick = |annotation: &'static str, field: &'static str, value: Option<&str>| {
        if let (Some(params), Some(v)) = (&alb.params, value.filter(|v| !v.is_empty())) {
            return Some(Setting::new(
                v,
                Source::ClassParams {
                    name: params.name.clone(),
                    field,
                },
            ));
        }
        meta.annotation(annotation)
            .map(|v| Setting::new(v, Source::Annotation(annotation)))
    };
    let params = alb.params.as_ref().map(|p| &p.spec);
    let scheme = pick(
        INGRESS_SCHEME,
        "scheme",
        params.and_then(|p| p.scheme.as_deref()),
    );
    // The class parameters' `targetType` makes the controller ignore the
    // annotation (`buildTargetGroupTargetType` in model_build_target_group.go).
    let target_type = pick(
        INGRESS_TARGET_TYPE,
        "targetType",
        params.and_then(|p| p.target_type.as_deref()),
    );
    let mut notes = Vec::new();
    if provisioner == Provisioner::AutoMode
        && let Some(group) = meta.annotation(crate::names::INGRESS_GROUP_NAME)
    {
        notes.push((
            Topic::Group,
            format!(
                "sets `{}: {group}`, which EKS Auto Mode does not support (auto-configure-alb) and \
                 ignores; put Ingresses in a group with the IngressClassParams' `group.name`",
                crate::names::INGRESS_GROUP_NAME
            ),
        ));
    }
    let certificates = crate::listeners::certificates(meta, alb);
    let listeners = crate::listeners::listeners(meta, provisioner, certificates.is_some());
    LoadBalancer {
        provisioner,
        why: alb.why.clone(),
        lb_type: LbType::Alb,
        listeners: Some(listeners),
        certificates,
        scheme: scheme
            .unwrap_or_else(|| Setting::default_of(provisioner.default_scheme(), provisioner)),
        target_type: target_type
            .unwrap_or_else(|| Setting::default_of(provisioner.default_target_type(), provisioner)),
        deprecated: None,
        notes,
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it, which the controller's
/// annotation parser uses.
pub fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}
