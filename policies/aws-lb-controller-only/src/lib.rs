//! `aws-lb-controller-only`: every Service of type LoadBalancer is provisioned
//! by the AWS Load Balancer Controller.
//!
//! Kubernetes' legacy in-tree AWS provider makes a Classic ELB (or, with
//! `aws-load-balancer-type: nlb`, an NLB) that targets node ports, ignores the
//! controller's annotations, and is frozen upstream. A cluster that standardises
//! on the controller gets one set of annotations, IP targets and one place to
//! audit.

use bouncer_eks::Service;
use bouncer_eks::model::{self, LbType, Provisioner, ServiceLb};
use bouncer_eks::names::{NLB_CLASS, SERVICE_LB_TYPE, SERVICE_TARGET_TYPE};
use bouncer_sdk::{
    Findings, Metadata, NoSettings, Operation, Policy, Request, Result, Verdict, export_policy,
    judge,
};

/// The policy.
pub struct AwsLbControllerOnly;

impl Policy for AwsLbControllerOnly {
    // Namespaces that may keep other load balancers are excluded by the
    // configuration entry (`match.namespaces.exclude`), before the policy runs.
    type Settings = NoSettings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs(&[""], &["Service"])
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate(request: &Request, _: &NoSettings) -> Result<Verdict> {
        if !request.is_kind("", "Service") {
            return Ok(Verdict::allow());
        }
        let object = format!("Service {}", request.object_ref());
        judge(request, |service: &Service| check(&object, service))
    }
}

fn check(object: &str, service: &Service) -> Findings {
    let mut findings = Findings::new();
    let fix = format!(
        "add the annotations `{SERVICE_LB_TYPE}: external` and `{SERVICE_TARGET_TYPE}: ip` (or set \
         `spec.loadBalancerClass: {NLB_CLASS}`) so the AWS Load Balancer Controller provisions it"
    );
    match model::service(service) {
        None => {}
        Some(ServiceLb::Built(lb)) => match (lb.provisioner, &lb.deprecated) {
            (Provisioner::Lbc, Some(why)) => findings.warn(format!(
                "{object} uses the deprecated {why}; replace it with `{SERVICE_LB_TYPE}: external` and \
                 `{SERVICE_TARGET_TYPE}: ip`"
            )),
            (Provisioner::Lbc | Provisioner::AutoMode, _) => {}
            (Provisioner::InTree, _) => findings.deny(format!(
                "{object} is a LoadBalancer for the legacy in-tree AWS provider ({}; it makes {} \
                 targeting node ports); {fix}",
                lb.why,
                if lb.lb_type == LbType::Nlb { "an NLB" } else { "a Classic ELB" }
            )),
        },
        Some(ServiceLb::Nobody(why)) => findings.deny(format!(
            "{object} has {why}: the in-tree provider steps aside, but the AWS Load Balancer Controller \
             takes a Service only with a target type, so nobody provisions it and it stays pending \
             (docs/guide/service/nlb.md); set `{SERVICE_TARGET_TYPE}: ip`"
        )),
        Some(ServiceLb::OtherClass(why)) => findings.deny(format!(
            "{object} asks another controller for its load balancer ({why}); {fix}"
        )),
    }
    findings
}

export_policy!(AwsLbControllerOnly);
