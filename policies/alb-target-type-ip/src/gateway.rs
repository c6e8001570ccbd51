//! Gateway API with the AWS Load Balancer Controller (v3): target types live in
//! `TargetGroupConfiguration`s, and the controller's default is `instance`
//! (docs/guide/gateway/targetgroupconfig.md, "Configuration Resolution Order").

use bouncer_eks::gateway::{AwsGateway, GatewayRefs, TargetGroupConfiguration, target_types};
use bouncer_sdk::Findings;
use serde::Deserialize;

/// The parts of a Gateway this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Gateway {
    spec: GatewayRefs,
}

/// Every target type a TargetGroupConfiguration sets must be `ip`. A Gateway
/// default (no `targetReference`) must set one: without it the Services behind
/// the Gateway fall back to the controller's `instance`. A Service's own
/// configuration and route configurations may leave it out: they inherit.
pub fn check_tgc(object: &str, tgc: &TargetGroupConfiguration) -> Findings {
    let mut findings = Findings::new();
    for (at, target_type) in target_types(tgc) {
        match target_type {
            Some("ip") => {}
            Some(other) => findings.deny(format!(
                "{object} sets `{at}.targetType: {other}`; target groups of the AWS Load Balancer Controller \
                 must send traffic straight to pod IPs: set `targetType: ip`"
            )),
            None if at == "defaultConfiguration" && tgc.spec.target_reference.is_none() => {
                findings.deny(format!(
                    "{object} is a Gateway default (it has no `targetReference`) without \
                     `defaultConfiguration.targetType`, so Services behind its Gateways get the controller's \
                     default `instance`; set `defaultConfiguration.targetType: ip`"
                ))
            }
            None => {}
        }
    }
    findings
}

/// A Gateway of the controller: its merged default TargetGroupConfiguration
/// decides the target type of every Service without one of its own.
pub fn check_gateway(object: &str, gateway: &Gateway, namespace: &str) -> Findings {
    let mut findings = Findings::new();
    let spec = &gateway.spec;
    let mut aws = AwsGateway::look_up(spec, namespace);
    if !aws.is_aws() {
        return findings;
    }
    match aws.default_target_type() {
        Some((t, _)) if t == "ip" => {}
        Some((t, from)) => findings.deny(format!(
            "{object} gets target type `{t}` for its Services from {from}; set `defaultConfiguration.targetType: ip` there"
        )),
        None => findings.warn(format!(
            "{object}: no default TargetGroupConfiguration of its LoadBalancerConfiguration sets a target type, so \
             each Service it routes to gets the controller's default `instance` unless its own \
             TargetGroupConfiguration sets `targetType: ip`; set `defaultTargetGroupConfiguration` in the \
             LoadBalancerConfiguration to one with `targetType: ip`"
        )),
    }
    findings.warnings.extend(
        aws.unseen
            .iter()
            .map(|u| format!("{object}: {u}; its target type is judged without it")),
    );
    findings
}
