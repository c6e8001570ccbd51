//! `aws-lb-controller-only`: every Service of type LoadBalancer is provisioned
//! by the AWS Load Balancer Controller.
//!
//! Kubernetes' legacy in-tree AWS provider makes a Classic ELB (or, with
//! `aws-load-balancer-type: nlb`, an NLB) that targets node ports, ignores the
//! controller's annotations, and is frozen upstream. A cluster that standardises
//! on the controller gets one set of annotations, IP targets and one place to
//! audit.

use bouncer_eks::Service;
use bouncer_eks::lb::Provisioner;
use bouncer_eks::names::{NLB_CLASS, SERVICE_LB_TYPE};
use bouncer_sdk::{
    Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

/// Settings of `aws-lb-controller-only`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Namespaces (globs) where any load balancer is allowed.
    pub exempt_namespaces: Vec<String>,
}

/// The policy.
pub struct AwsLbControllerOnly;

impl Policy for AwsLbControllerOnly {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs(&[""], &["Service"])
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_globs("exemptNamespaces", &settings.exempt_namespaces)
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        if !request.is_kind("", "Service") {
            return Ok(Verdict::allow());
        }
        let namespace = request.namespace.as_deref().unwrap_or("");
        if bouncer_eks::matches_any(&settings.exempt_namespaces, namespace) {
            return Ok(Verdict::allow());
        }
        let object = format!("Service {}", request.object_ref());
        judge(request, |service: &Service| check(&object, service))
    }
}

fn check(object: &str, service: &Service) -> Findings {
    let mut findings = Findings::new();
    let fix = format!(
        "add the annotation `{SERVICE_LB_TYPE}: external` (or set `spec.loadBalancerClass: {NLB_CLASS}`) \
         so the AWS Load Balancer Controller provisions it"
    );
    match service.provisioner() {
        None | Some(Provisioner::Controller(_)) => {}
        Some(Provisioner::ControllerDeprecated(why)) => findings.warn(format!(
            "{object} uses the deprecated {why}; replace it with `{SERVICE_LB_TYPE}: external` and \
             `service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip`"
        )),
        Some(Provisioner::InTree(why)) => findings.deny(format!(
            "{object} is a LoadBalancer for the legacy in-tree AWS provider ({why}); {fix}"
        )),
        Some(Provisioner::OtherClass(why)) => findings.deny(format!(
            "{object} asks another controller for its load balancer ({why}); {fix}"
        )),
    }
    findings
}

export_policy!(AwsLbControllerOnly);
