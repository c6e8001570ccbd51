//! `alb-target-type-ip`: load balancers made by the AWS Load Balancer Controller
//! must send traffic straight to pod IPs.
//!
//! With target type `instance` (the controller's default) the load balancer
//! targets node ports, so every request takes an extra hop through kube-proxy
//! on a random node, source IPs are lost, and health checks see nodes rather
//! than pods. With VPC CNI pods have real VPC addresses, so `ip` is the way.

use std::collections::BTreeMap;

use bouncer_sdk::object::{annotation, set_annotation};
use bouncer_sdk::{Error, Operation, Policy, Request, Result, Verdict, export_policy};
use serde::Deserialize;

/// The Ingress annotation that chooses the ALB target type.
pub const INGRESS_TARGET_TYPE: &str = "alb.ingress.kubernetes.io/target-type";
/// The Service annotation that chooses the NLB target type.
pub const SERVICE_TARGET_TYPE: &str =
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
/// The legacy Ingress class annotation.
pub const LEGACY_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
/// The Service annotation that hands a Service to the controller.
pub const SERVICE_LB_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
/// The load balancer class of the controller's NLBs.
pub const NLB_CLASS: &str = "service.k8s.aws/nlb";

/// Settings of `alb-target-type-ip`.
#[derive(Debug, Deserialize)]
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
            alb_class_names: vec!["alb".to_owned()],
            mutate: false,
        }
    }
}

/// The fields of an Ingress or Service this rule reads.
///
/// Decoding only these (serde skips the rest without allocating) is about twice
/// as fast as decoding a whole k8s-openapi object with its `managedFields`.
#[derive(Debug, Deserialize)]
struct Object {
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    ingress_class_name: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    load_balancer_class: Option<String>,
}

/// The policy.
pub struct AlbTargetTypeIp;

impl Policy for AlbTargetTypeIp {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        if settings.alb_class_names.is_empty() {
            return Err("albClassNames must name at least one ingress class".into());
        }
        if settings.alb_class_names.iter().any(|c| c.trim().is_empty()) {
            return Err("albClassNames must not contain an empty class name".into());
        }
        Ok(())
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        // Status and other sub-resources are written by controllers; only the
        // main resource carries the annotations this rule is about.
        if request.operation == Operation::Delete || request.sub_resource.is_some() {
            return Ok(Verdict::allow());
        }
        let target = if request.is_kind("networking.k8s.io", "Ingress") {
            let Some(ingress) = request.object::<Object>()? else {
                return Ok(Verdict::allow());
            };
            match alb_class(&ingress, settings) {
                Some(class) => Target {
                    what: "Ingress",
                    handler: class,
                    annotation: INGRESS_TARGET_TYPE,
                    value: annotation(&ingress.metadata.annotations, INGRESS_TARGET_TYPE)
                        .map(str::to_owned),
                },
                None => return Ok(Verdict::allow()),
            }
        } else if request.is_kind("", "Service") {
            let Some(service) = request.object::<Object>()? else {
                return Ok(Verdict::allow());
            };
            match controller_service(&service) {
                Some(handler) => Target {
                    what: "Service",
                    handler,
                    annotation: SERVICE_TARGET_TYPE,
                    value: annotation(&service.metadata.annotations, SERVICE_TARGET_TYPE)
                        .map(str::to_owned),
                },
                None => return Ok(Verdict::allow()),
            }
        } else {
            return Ok(Verdict::allow());
        };
        target.judge(request, settings)
    }
}

/// A load-balanced object handled by the controller, and its target-type annotation.
struct Target {
    what: &'static str,
    handler: String,
    annotation: &'static str,
    value: Option<String>,
}

impl Target {
    fn judge(self, request: &Request, settings: &Settings) -> Result<Verdict> {
        let object = format!("{} {}", self.what, request.object_ref());
        let fix = format!("set the annotation `{}: ip`", self.annotation);
        match self.value.as_deref() {
            Some("ip") => Ok(Verdict::allow()),
            Some("instance") => Ok(Verdict::deny(format!(
                "{object} is handled by the AWS Load Balancer Controller ({}) and sets `{}: instance`, \
                 which routes traffic through node ports; {fix} to send it straight to pod IPs",
                self.handler, self.annotation
            ))),
            Some(other) => Ok(Verdict::deny(format!(
                "{object} sets `{}: {other:?}`, which is not a target type the AWS Load Balancer \
                 Controller knows; {fix}",
                self.annotation
            ))),
            None if settings.mutate => {
                let mut patched = request
                    .object_json()?
                    .ok_or_else(|| Error::new("the request has no object to mutate"))?;
                set_annotation(&mut patched, self.annotation, "ip");
                Ok(Verdict::mutate(&patched)?.with_warning(format!(
                    "{object}: bouncer added `{}: ip` (the controller's default is `instance`)",
                    self.annotation
                )))
            }
            None => Ok(Verdict::deny(format!(
                "{object} is handled by the AWS Load Balancer Controller ({}) but has no `{}` \
                 annotation, so the controller defaults to `instance` and routes traffic through \
                 node ports; {fix}",
                self.handler, self.annotation
            ))),
        }
    }
}

/// Why an Ingress belongs to the ALB controller, or `None` when it does not.
fn alb_class(ingress: &Object, settings: &Settings) -> Option<String> {
    let is_alb = |class: &str| settings.alb_class_names.iter().any(|c| c == class);
    let class_name = ingress.spec.ingress_class_name.as_deref();
    if let Some(class) = class_name.filter(|c| is_alb(c)) {
        return Some(format!("ingressClassName `{class}`"));
    }
    match annotation(&ingress.metadata.annotations, LEGACY_INGRESS_CLASS) {
        Some(class) if is_alb(class) => {
            Some(format!("annotation `{LEGACY_INGRESS_CLASS}: {class}`"))
        }
        _ => None,
    }
}

/// Why a Service belongs to the controller's NLB support, or `None`.
fn controller_service(service: &Object) -> Option<String> {
    let spec = &service.spec;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return None;
    }
    if spec.load_balancer_class.as_deref() == Some(NLB_CLASS) {
        return Some(format!("loadBalancerClass `{NLB_CLASS}`"));
    }
    match annotation(&service.metadata.annotations, SERVICE_LB_TYPE) {
        Some("external") => Some(format!("annotation `{SERVICE_LB_TYPE}: external`")),
        _ => None,
    }
}

export_policy!(AlbTargetTypeIp);
