//! `alb-target-type-ip`: load balancers made by the AWS Load Balancer Controller
//! must send traffic straight to pod IPs.
//!
//! With target type `instance` (the controller's default) the load balancer
//! targets node ports, so every request takes an extra hop through kube-proxy
//! on a random node, source IPs are lost, and health checks see nodes rather
//! than pods. With VPC CNI pods have real VPC addresses, so `ip` is the way.

mod gateway;

use bouncer_eks::gateway::{
    CONFIG_API_VERSIONS, CONFIG_GROUP, GATEWAY_CLASS_API, LB_CONFIG_KIND, TG_CONFIG_KIND,
    TargetGroupConfiguration,
};
use bouncer_eks::ingress_class::{
    AUTO_MODE_PARAMS_API, Classes, INGRESS_CLASS, INGRESS_CLASS_API, PARAMS_API, PARAMS_KIND,
};
use bouncer_eks::model::{self, LoadBalancer, Provisioner, ServiceLb, Source, Topic};
use bouncer_eks::names::{INGRESS_TARGET_TYPE, SERVICE_TARGET_TYPE};
use bouncer_eks::{Ingress, Metadata, Service};
use bouncer_sdk::object::set_annotation;
use bouncer_sdk::{
    Error, Findings, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

/// Settings of `alb-target-type-ip`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Ingress classes of the AWS Load Balancer Controller: values of the legacy
    /// `kubernetes.io/ingress.class` annotation, and the names to judge by when an
    /// IngressClass cannot be looked up.
    pub alb_class_names: Vec<String>,
    /// Add a missing target-type annotation as `ip` instead of denying.
    pub mutate: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            alb_class_names: bouncer_eks::default_alb_classes(),
            mutate: false,
        }
    }
}

/// The policy.
pub struct AlbTargetTypeIp;

impl Policy for AlbTargetTypeIp {
    type Settings = Settings;

    fn metadata() -> bouncer_sdk::Metadata {
        bouncer_sdk::Metadata::new()
            .governs(&["networking.k8s.io"], &["Ingress"])
            .governs(&[""], &["Service"])
            .governs(&["gateway.networking.k8s.io"], &["Gateway"])
            .governs(&[CONFIG_GROUP], &[TG_CONFIG_KIND])
            .context(INGRESS_CLASS_API, INGRESS_CLASS)
            .context(PARAMS_API, PARAMS_KIND)
            .context(AUTO_MODE_PARAMS_API, PARAMS_KIND)
            .context(GATEWAY_CLASS_API, "GatewayClass")
            .context(CONFIG_API_VERSIONS[0], LB_CONFIG_KIND)
            .context(CONFIG_API_VERSIONS[0], TG_CONFIG_KIND)
            .operations(&[Operation::Create, Operation::Update])
            .mutating()
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_alb_classes(&settings.alb_class_names)
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        let object = request.object_ref();
        if request.is_kind("networking.k8s.io", "Ingress") {
            let check = |ingress: &Ingress| {
                let owner = Classes::look_up().owner(ingress, &settings.alb_class_names);
                let target = match &owner.alb {
                    Some(alb) => {
                        let lb = model::ingress(&ingress.metadata, alb);
                        judge_model(&format!("Ingress {object}"), &lb, INGRESS_TARGET_TYPE)
                    }
                    None => Target::Fine,
                };
                let guess = owner.warning_if(!matches!(target, Target::Fine));
                (target, guess.into_iter().collect())
            };
            judge_target(request, settings, check)
        } else if request.is_kind("", "Service") {
            let check = |service: &Service| match model::service(service) {
                Some(ServiceLb::Built(lb)) if lb.provisioner != Provisioner::InTree => {
                    let target =
                        judge_model(&format!("Service {object}"), &lb, SERVICE_TARGET_TYPE);
                    let notes = lb.notes_on(Topic::TargetType);
                    (
                        target,
                        notes.map(|n| format!("Service {object} {n}")).collect(),
                    )
                }
                Some(ServiceLb::Nobody(why)) => {
                    (unreconciled(&object, &why, &service.metadata), Vec::new())
                }
                _ => (Target::Fine, Vec::new()),
            };
            judge_target(request, settings, check)
        } else if request.is_kind(CONFIG_GROUP, TG_CONFIG_KIND) {
            judge(request, |tgc: &TargetGroupConfiguration| {
                gateway::check_tgc(&format!("TargetGroupConfiguration {object}"), tgc)
            })
        } else if request.is_kind("gateway.networking.k8s.io", "Gateway") {
            let namespace = request.namespace.clone().unwrap_or_default();
            judge(request, |g: &gateway::Gateway| {
                gateway::check_gateway(&format!("Gateway {object}"), g, &namespace)
            })
        } else {
            Ok(Verdict::allow())
        }
    }
}

/// What the target-type annotation of a governed object says.
enum Target {
    /// `ip`, or not governed.
    Fine,
    /// No annotation: the controller uses `instance`.
    Missing {
        annotation: &'static str,
        message: String,
        object: String,
    },
    /// A wrong value.
    Wrong(String),
}

/// Judges the target type the model gives an object; `annotation` is the
/// one that sets it (and the fix).
fn judge_model(object: &str, lb: &LoadBalancer, annotation: &'static str) -> Target {
    let fix = format!("set the annotation `{annotation}: ip`");
    let handler = format!("{} ({})", lb.provisioner.name(), lb.why);
    let setting = &lb.target_type;
    match (setting.value.as_str(), &setting.from) {
        ("ip", _) => Target::Fine,
        (value, Source::Default(_)) => Target::Missing {
            annotation,
            message: format!(
                "{object} is handled by {handler} but has no `{annotation}` annotation, so it defaults to \
                 `{value}` and routes traffic through node ports; {fix}"
            ),
            object: object.to_owned(),
        },
        ("instance", Source::Annotation(_)) => Target::Wrong(format!(
            "{object} is handled by {handler} and sets `{annotation}: instance`, \
             which routes traffic through node ports; {fix} to send it straight to pod IPs"
        )),
        ("instance", from) => Target::Wrong(format!(
            "{object} is handled by {handler} and gets target type `instance` \
             from {}, which overrides `{annotation}` and routes traffic through node ports; \
             set `targetType: ip` there, or use another IngressClass",
            from.describe()
        )),
        (other, Source::Annotation(_)) => Target::Wrong(format!(
            "{object} sets `{annotation}: {other:?}`, which is not a target type {} knows; {fix}",
            lb.provisioner.name()
        )),
        (other, from) => Target::Wrong(format!(
            "{object} gets target type {other:?} from {}, which is not a target type {} knows; {fix}",
            from.describe(),
            lb.provisioner.name()
        )),
    }
}

/// A Service nobody provisions: `external` without a usable target type. The
/// fix is the same annotation, so a missing one is `Missing` (and mutable).
fn unreconciled(object: &str, why: &str, meta: &Metadata) -> Target {
    let object = format!("Service {object}");
    let consequence = format!(
        "with {why}, neither the in-tree provider nor the AWS Load Balancer Controller provisions it \
         and it stays pending (docs/guide/service/nlb.md)"
    );
    let fix = format!("set the annotation `{SERVICE_TARGET_TYPE}: ip`");
    match meta.annotation(SERVICE_TARGET_TYPE) {
        Some(other) => Target::Wrong(format!(
            "{object} sets `{SERVICE_TARGET_TYPE}: {other:?}`, which is not a target type the AWS Load \
             Balancer Controller knows; {consequence}; {fix}"
        )),
        None => Target::Missing {
            annotation: SERVICE_TARGET_TYPE,
            message: format!("{object}: {consequence}; {fix}"),
            object,
        },
    }
}

/// Mutates a missing annotation when asked to; otherwise every problem goes
/// through [`judge`], so UPDATEs are judged on what they change.
fn judge_target<T: serde::de::DeserializeOwned>(
    request: &Request,
    settings: &Settings,
    check: impl Fn(&T) -> (Target, Vec<String>),
) -> Result<Verdict> {
    let mutable = settings.mutate
        && matches!(request.operation, Operation::Create | Operation::Update)
        && request.sub_resource.is_none();
    if mutable
        && let Some(object) = request.object::<T>()?
        && let (
            Target::Missing {
                annotation,
                object: name,
                ..
            },
            guess,
        ) = check(&object)
    {
        let mut patched = request
            .object_json()?
            .ok_or_else(|| Error::new("the request has no object to mutate"))?;
        set_annotation(&mut patched, annotation, "ip");
        let mut verdict = Verdict::mutate(&patched)?.with_warning(format!(
            "{name}: bouncer added `{annotation}: ip` (the controller's default is `instance`)"
        ));
        verdict.warnings.extend(guess);
        return Ok(verdict);
    }
    judge(request, |object: &T| {
        let mut findings = Findings::new();
        let (target, guess) = check(object);
        findings.warnings.extend(guess);
        match target {
            Target::Fine => {}
            Target::Missing { message, .. } | Target::Wrong(message) => findings.deny(message),
        }
        findings
    })
}

export_policy!(AlbTargetTypeIp);
