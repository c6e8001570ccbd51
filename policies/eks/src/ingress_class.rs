//! Which controller owns an Ingress, and what its IngressClassParams impose,
//! resolved the way the AWS Load Balancer Controller resolves them
//! (`classifyIngress` in `pkg/ingress/group_loader.go`, `Load` in
//! `pkg/ingress/class_loader.go`; docs/guide/ingress/ingress_class.md).
//!
//! The IngressClasses and their parameters are looked up through the context
//! interface. When they cannot be seen (not declared as context, or not in the
//! cluster yet) the rule falls back to its `albClassNames` setting and says so
//! in a warning, so a guess is never silent.

use std::cell::RefCell;
use std::collections::BTreeMap;

use bouncer_sdk::context;
use serde::Deserialize;

use crate::lb::{Ingress, Metadata};
use crate::model::Provisioner;
use crate::names::LEGACY_INGRESS_CLASS;

/// The apiVersion IngressClasses are looked up with.
pub const INGRESS_CLASS_API: &str = "networking.k8s.io/v1";
/// The IngressClass kind.
pub const INGRESS_CLASS: &str = "IngressClass";
/// The kind of the controllers' class parameters.
pub const PARAMS_KIND: &str = "IngressClassParams";
/// The AWS Load Balancer Controller's IngressClassParams.
pub const PARAMS_API: &str = "elbv2.k8s.aws/v1beta1";
/// EKS Auto Mode's IngressClassParams.
pub const AUTO_MODE_PARAMS_API: &str = "eks.amazonaws.com/v1";
/// The annotation that makes an IngressClass the cluster's default.
pub const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// `spec.controller` of the AWS Load Balancer Controller's IngressClasses.
pub const ALB_CONTROLLER: &str = "ingress.k8s.aws/alb";
/// `spec.controller` of EKS Auto Mode's IngressClasses.
pub const AUTO_MODE_ALB_CONTROLLER: &str = "eks.amazonaws.com/alb";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IngressClass {
    metadata: Metadata,
    spec: ClassSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClassSpec {
    controller: String,
    parameters: Option<ParamsRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ParamsRef {
    api_group: Option<String>,
    kind: String,
    name: String,
}

/// The fields of an IngressClassParams that override an Ingress's annotations.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClassParams {
    /// `spec.scheme`: overrides `alb.ingress.kubernetes.io/scheme`.
    pub scheme: Option<String>,
    /// `spec.group.name`: puts every Ingress of the class in one IngressGroup.
    pub group: Option<GroupParams>,
    /// `spec.certificateArn` (`certificateARNs` in EKS Auto Mode): overrides `certificate-arn`.
    #[serde(alias = "certificateARNs")]
    pub certificate_arn: Vec<String>,
    /// `spec.sslPolicy`: overrides `ssl-policy`.
    pub ssl_policy: Option<String>,
    /// `spec.sslRedirectPort`: overrides `ssl-redirect`.
    pub ssl_redirect_port: Option<String>,
    /// `spec.targetType`: overrides `target-type`.
    pub target_type: Option<String>,
}

/// `spec.group` of an IngressClassParams.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct GroupParams {
    /// The group's name.
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ParamsObject {
    spec: ClassParams,
}

/// An Ingress the AWS Load Balancer Controller (or EKS Auto Mode) reconciles.
#[derive(Debug, Clone)]
pub struct Alb {
    /// Why it is one, for messages: "IngressClass `alb` (controller `ingress.k8s.aws/alb`)".
    pub why: String,
    /// Its class's parameters, when the class has some bouncer could read.
    pub params: Option<Params>,
    /// The AWS Load Balancer Controller or EKS Auto Mode.
    pub provisioner: Provisioner,
}

/// IngressClassParams by name, with what they say.
#[derive(Debug, Clone)]
pub struct Params {
    /// `metadata.name`, for messages.
    pub name: String,
    /// The fields that override annotations.
    pub spec: ClassParams,
}

impl Alb {
    /// The value of an annotation the class parameters may override: the
    /// parameter when set, with "IngressClassParams `x` (`spec.field`)", else
    /// the annotation's, with `None`.
    pub fn pick<'a>(
        &'a self,
        meta: &'a Metadata,
        annotation: &str,
        field: &str,
        param: impl Fn(&'a ClassParams) -> Option<&'a str>,
    ) -> Option<(&'a str, Option<String>)> {
        if let Some(params) = &self.params
            && let Some(value) = param(&params.spec).filter(|v| !v.is_empty())
        {
            let from = format!("IngressClassParams `{}` (`spec.{field}`)", params.name);
            return Some((value, Some(from)));
        }
        meta.annotation(annotation).map(|value| (value, None))
    }
}

/// Who owns an Ingress, and any guess made on the way.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    /// `Some` when the AWS Load Balancer Controller reconciles it.
    pub alb: Option<Alb>,
    /// Set when bouncer could not see what it needed and judged by
    /// `albClassNames` (or could not read the class's parameters).
    pub warning: Option<String>,
}

impl Owner {
    /// The guess warning, when the guess mattered (the rule denies or
    /// patches): a guess that changed nothing is not worth a warning on every
    /// compliant Ingress.
    pub fn warning_if(&self, mattered: bool) -> Option<String> {
        self.warning.clone().filter(|_| mattered)
    }

    /// Adds the guess warning to `findings` when they deny.
    pub fn explain(&self, findings: &mut bouncer_sdk::Findings) {
        let denied = !findings.denials.is_empty();
        findings.warnings.extend(self.warning_if(denied));
    }
}

/// The cluster's IngressClasses as one rule call sees them.
pub struct Classes {
    /// By name; `Err` with the reason when they cannot be looked up.
    seen: Result<BTreeMap<String, IngressClass>, String>,
    /// Each class's parameters once looked up: an IngressGroup's members
    /// mostly share a class.
    params: RefCell<BTreeMap<String, ParamsLookup>>,
}

/// A class's parameters, and the warning when they could not be read.
type ParamsLookup = (Option<Params>, Option<String>);

impl Classes {
    /// Lists the IngressClasses once (they are few) for every resolution of this call.
    pub fn look_up() -> Self {
        let seen = context::list::<IngressClass>(INGRESS_CLASS_API, INGRESS_CLASS, None, None)
            .map(|classes| {
                classes
                    .into_iter()
                    .map(|c| (c.metadata.name.clone().unwrap_or_default(), c))
                    .collect()
            })
            .map_err(|e| e.to_string());
        Self {
            seen,
            params: RefCell::default(),
        }
    }

    /// Resolves the owner of `ingress`; `fallback` is the rule's `albClassNames`.
    pub fn owner(&self, ingress: &Ingress, fallback: &[String]) -> Owner {
        let listed = |class: &str| fallback.iter().any(|c| c == class);
        // The legacy annotation wins over `ingressClassName`, and is matched
        // against the controller's `--ingress-class` (`albClassNames` here).
        if let Some(class) = ingress.metadata.annotation(LEGACY_INGRESS_CLASS) {
            return Owner {
                alb: listed(class).then(|| Alb {
                    why: format!("annotation `{LEGACY_INGRESS_CLASS}: {class}`"),
                    params: None,
                    // EKS Auto Mode does not read the legacy annotation (auto-configure-alb).
                    provisioner: Provisioner::Lbc,
                }),
                warning: None,
            };
        }
        let classes = match &self.seen {
            Ok(classes) => classes,
            Err(why) => {
                return guess(
                    ingress,
                    fallback,
                    &format!("bouncer cannot look up IngressClasses ({why})"),
                );
            }
        };
        let (name, defaulted) = match ingress.spec.ingress_class_name.as_deref() {
            Some(name) => (name, false),
            None => match default_class(classes) {
                Some(name) => (name, true),
                // The controller leaves classless Ingresses alone by default
                // (`--manage-ingresses-without-ingress-class`).
                None => return Owner::default(),
            },
        };
        let Some(class) = classes.get(name) else {
            return guess(
                ingress,
                fallback,
                &format!(
                    "bouncer sees no IngressClass `{name}` (in the cluster, or offline among the manifests and \
                     `--context`), and the controller does not reconcile an Ingress whose class is missing"
                ),
            );
        };
        let controller = class.spec.controller.as_str();
        if controller != ALB_CONTROLLER && controller != AUTO_MODE_ALB_CONTROLLER {
            return Owner::default();
        }
        let default = if defaulted { "the default " } else { "" };
        let why = format!("{default}IngressClass `{name}`, controller `{controller}`");
        let (params, warning) = match &class.spec.parameters {
            None => (None, None),
            Some(reference) => self
                .params
                .borrow_mut()
                .entry(name.to_owned())
                .or_insert_with(|| params(name, reference))
                .clone(),
        };
        let provisioner = if controller == AUTO_MODE_ALB_CONTROLLER {
            Provisioner::AutoMode
        } else {
            Provisioner::Lbc
        };
        Owner {
            alb: Some(Alb {
                why,
                params,
                provisioner,
            }),
            warning,
        }
    }
}

impl Classes {
    /// The ALB classes whose IngressClassParams put every Ingress of the class
    /// in `group`, and whether the default class is one of them (its
    /// Ingresses name no class at all).
    pub fn grouped_by_params(&self, group: &str) -> (Vec<String>, bool) {
        let Ok(classes) = &self.seen else {
            return (Vec::new(), false);
        };
        let default = default_class(classes);
        let mut names = Vec::new();
        for (name, class) in classes {
            let controller = class.spec.controller.as_str();
            let Some(reference) = &class.spec.parameters else {
                continue;
            };
            if controller != ALB_CONTROLLER && controller != AUTO_MODE_ALB_CONTROLLER {
                continue;
            }
            let (params, _) = self
                .params
                .borrow_mut()
                .entry(name.clone())
                .or_insert_with(|| params(name, reference))
                .clone();
            if params
                .and_then(|p| p.spec.group)
                .is_some_and(|g| g.name == group)
            {
                names.push(name.clone());
            }
        }
        let has_default = default.is_some_and(|d| names.iter().any(|n| n == d));
        (names, has_default)
    }
}

/// The class marked default; the controller refuses to pick when several are.
fn default_class(classes: &BTreeMap<String, IngressClass>) -> Option<&str> {
    let mut defaults = classes
        .iter()
        .filter(|(_, c)| c.metadata.annotation(DEFAULT_CLASS) == Some("true"));
    match (defaults.next(), defaults.next()) {
        (Some((name, _)), None) => Some(name),
        _ => None,
    }
}

/// Judges by `albClassNames` when the class cannot be seen, and says so when
/// that makes the Ingress an ALB one.
fn guess(ingress: &Ingress, fallback: &[String], unseen: &str) -> Owner {
    let Some(name) = ingress.spec.ingress_class_name.as_deref() else {
        return Owner::default();
    };
    if !fallback.iter().any(|c| c == name) {
        return Owner::default();
    }
    Owner {
        alb: Some(Alb {
            why: format!("ingressClassName `{name}`"),
            params: None,
            provisioner: Provisioner::Lbc,
        }),
        warning: Some(format!(
            "{unseen}; judged as an ALB Ingress because `albClassNames` lists `{name}`"
        )),
    }
}

/// Reads the parameters an ALB class references.
fn params(class: &str, reference: &ParamsRef) -> ParamsLookup {
    let api = match (reference.api_group.as_deref(), reference.kind.as_str()) {
        (Some("elbv2.k8s.aws"), PARAMS_KIND) => PARAMS_API,
        (Some("eks.amazonaws.com"), PARAMS_KIND) => AUTO_MODE_PARAMS_API,
        (group, kind) => {
            return (
                None,
                Some(format!(
                    "IngressClass `{class}` references parameters of kind `{kind}` in group `{}`, which the \
                     controller does not know: it will not reconcile Ingresses of this class",
                    group.unwrap_or("")
                )),
            );
        }
    };
    let name = &reference.name;
    match context::get::<ParamsObject>(api, PARAMS_KIND, None, name) {
        Ok(Some(found)) => (
            Some(Params {
                name: name.clone(),
                spec: found.spec,
            }),
            None,
        ),
        Ok(None) => (
            None,
            Some(format!(
                "IngressClassParams `{name}` of IngressClass `{class}` does not exist: the controller will not \
                 reconcile this Ingress until it does; judged by its annotations"
            )),
        ),
        Err(e) => (
            None,
            Some(format!(
                "bouncer cannot read IngressClassParams `{name}` of IngressClass `{class}` ({e}); judged by \
                 its annotations, which those parameters may override"
            )),
        ),
    }
}

/// The IngressGroup an ALB Ingress belongs to: the class parameters' group,
/// else `group.name` (which EKS Auto Mode does not read); `None` for an
/// implicit group of its own.
pub fn group_of(ingress: &Ingress, alb: &Alb) -> Option<String> {
    if let Some(group) = alb.params.as_ref().and_then(|p| p.spec.group.as_ref()) {
        return Some(group.name.clone());
    }
    if alb.provisioner == Provisioner::AutoMode {
        return None;
    }
    ingress
        .metadata
        .annotation(crate::names::INGRESS_GROUP_NAME)
        .map(str::to_owned)
}
