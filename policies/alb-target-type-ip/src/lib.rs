//! `alb-target-type-ip`: load balancers made by the AWS Load Balancer Controller
//! must send traffic straight to pod IPs.
//!
//! With target type `instance` (the controller's default) the load balancer
//! targets node ports, so every request takes an extra hop through kube-proxy
//! on a random node, source IPs are lost, and health checks see nodes rather
//! than pods. With VPC CNI pods have real VPC addresses, so `ip` is the way.

use bouncer_eks::lb::Provisioner;
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
    /// Ingress class names handled by the AWS Load Balancer Controller.
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
            .operations(&[Operation::Create, Operation::Update])
            .mutating()
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_alb_classes(&settings.alb_class_names)
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        let object = request.object_ref();
        if request.is_kind("networking.k8s.io", "Ingress") {
            let check = |ingress: &Ingress| match ingress.alb_class(&settings.alb_class_names) {
                Some(class) => target(
                    &object,
                    "Ingress",
                    &class,
                    &ingress.metadata,
                    INGRESS_TARGET_TYPE,
                ),
                None => Target::Fine,
            };
            judge_target(request, settings, check)
        } else if request.is_kind("", "Service") {
            let check = |service: &Service| match service.provisioner() {
                Some(Provisioner::Controller(why)) => target(
                    &object,
                    "Service",
                    &why,
                    &service.metadata,
                    SERVICE_TARGET_TYPE,
                ),
                // `nlb-ip` means IP targets whatever the target-type annotation says
                // (`buildTargetType` in pkg/service/model_build_target_group.go).
                Some(Provisioner::ControllerDeprecated(_)) => Target::Fine,
                Some(Provisioner::Unreconciled(why)) => {
                    unreconciled(&object, &why, &service.metadata)
                }
                _ => Target::Fine,
            };
            judge_target(request, settings, check)
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

fn target(
    object: &str,
    kind: &str,
    handler: &str,
    meta: &Metadata,
    annotation: &'static str,
) -> Target {
    let object = format!("{kind} {object}");
    let fix = format!("set the annotation `{annotation}: ip`");
    match meta.annotation(annotation) {
        Some("ip") => Target::Fine,
        Some("instance") => Target::Wrong(format!(
            "{object} is handled by the AWS Load Balancer Controller ({handler}) and sets `{annotation}: instance`, \
             which routes traffic through node ports; {fix} to send it straight to pod IPs"
        )),
        Some(other) => Target::Wrong(format!(
            "{object} sets `{annotation}: {other:?}`, which is not a target type the AWS Load Balancer \
             Controller knows; {fix}"
        )),
        None => Target::Missing {
            annotation,
            message: format!(
                "{object} is handled by the AWS Load Balancer Controller ({handler}) but has no `{annotation}` \
                 annotation, so the controller defaults to `instance` and routes traffic through \
                 node ports; {fix}"
            ),
            object,
        },
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
    check: impl Fn(&T) -> Target,
) -> Result<Verdict> {
    let mutable = settings.mutate
        && matches!(request.operation, Operation::Create | Operation::Update)
        && request.sub_resource.is_none();
    if mutable
        && let Some(object) = request.object::<T>()?
        && let Target::Missing {
            annotation,
            object: name,
            ..
        } = check(&object)
    {
        let mut patched = request
            .object_json()?
            .ok_or_else(|| Error::new("the request has no object to mutate"))?;
        set_annotation(&mut patched, annotation, "ip");
        return Ok(Verdict::mutate(&patched)?.with_warning(format!(
            "{name}: bouncer added `{annotation}: ip` (the controller's default is `instance`)"
        )));
    }
    judge(request, |object: &T| {
        let mut findings = Findings::new();
        match check(object) {
            Target::Fine => {}
            Target::Missing { message, .. } | Target::Wrong(message) => findings.deny(message),
        }
        findings
    })
}

export_policy!(AlbTargetTypeIp);
