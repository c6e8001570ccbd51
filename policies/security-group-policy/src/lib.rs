//! `security-group-policy`: `SecurityGroupPolicy` objects (security groups for
//! pods, `vpcresources.k8s.aws/v1beta1`) select pods precisely and name valid,
//! allowed security groups.
//!
//! A SecurityGroupPolicy replaces the node's security groups on the ENI of every
//! pod it selects. An empty selector selects every pod in the namespace; a
//! typo'd group ID leaves pods stuck in `ContainerCreating`; a foreign group
//! opens doors the platform team never reviewed.

use std::collections::BTreeMap;

use bouncer_sdk::{
    Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

/// The most security groups a pod's branch ENI takes.
pub const MAX_GROUPS: usize = 16;

/// Settings of `security-group-policy`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Security groups policies may name; any well-formed ID when empty.
    pub allowed_group_ids: Vec<String>,
    /// Allow an empty selector, which selects every pod (or ServiceAccount) in the namespace.
    pub allow_select_all: bool,
}

/// The policy.
pub struct SecurityGroupPolicyRule;

impl Policy for SecurityGroupPolicyRule {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs(&["vpcresources.k8s.aws"], &["SecurityGroupPolicy"])
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        match settings
            .allowed_group_ids
            .iter()
            .find(|id| !is_group_id(id))
        {
            Some(bad) => Err(format!(
                "allowedGroupIds: `{bad}` is not a security group ID (sg- and 8 or 17 hex digits)"
            )),
            None => Ok(()),
        }
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        if !request.is_kind("vpcresources.k8s.aws", "SecurityGroupPolicy") {
            return Ok(Verdict::allow());
        }
        let object = format!("SecurityGroupPolicy {}", request.object_ref());
        judge(request, |sgp: &Sgp| check(&object, sgp, settings))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Sgp {
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    pod_selector: Option<Selector>,
    service_account_selector: Option<Selector>,
    security_groups: Option<Groups>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
    match_expressions: Vec<serde_json::Value>,
}

impl Selector {
    fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Groups {
    group_ids: Vec<String>,
}

/// `sg-` and 8 or 17 lowercase hex digits, as EC2 writes them.
fn is_group_id(id: &str) -> bool {
    id.strip_prefix("sg-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check(object: &str, sgp: &Sgp, settings: &Settings) -> Findings {
    let mut findings = Findings::new();
    let spec = &sgp.spec;
    match (&spec.pod_selector, &spec.service_account_selector) {
        (Some(_), Some(_)) => findings.deny(format!(
            "{object} sets both `podSelector` and `serviceAccountSelector`; keep exactly one"
        )),
        (None, None) => findings.deny(format!(
            "{object} selects nothing: set exactly one of `podSelector` or `serviceAccountSelector`"
        )),
        (Some(selector), None) | (None, Some(selector)) => {
            let field = if spec.pod_selector.is_some() {
                "podSelector"
            } else {
                "serviceAccountSelector"
            };
            if selector.is_empty() && !settings.allow_select_all {
                findings.deny(format!(
                    "{object} has an empty `{field}`, which selects every pod in the namespace; \
                     add `matchLabels` or `matchExpressions`"
                ));
            }
        }
    }
    let ids = spec
        .security_groups
        .as_ref()
        .map(|g| g.group_ids.as_slice())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_GROUPS {
        findings.deny(format!(
            "{object} lists {} security groups in `securityGroups.groupIds`; list 1 to {MAX_GROUPS}",
            ids.len()
        ));
    }
    for id in ids {
        if !is_group_id(id) {
            findings.deny(format!(
                "{object} lists `{id}` in `securityGroups.groupIds`, which is not a security group ID \
                 (sg- and 8 or 17 lowercase hex digits, such as sg-0123456789abcdef0)"
            ));
        } else if !settings.allowed_group_ids.is_empty() && !settings.allowed_group_ids.contains(id)
        {
            findings.deny(format!(
                "{object} lists security group `{id}`, which is not one of the allowed groups {:?}",
                settings.allowed_group_ids
            ));
        }
    }
    findings
}

export_policy!(SecurityGroupPolicyRule);

#[cfg(test)]
mod tests {
    #[test]
    fn group_ids() {
        assert!(super::is_group_id("sg-0123456789abcdef0"));
        assert!(super::is_group_id("sg-12345678"));
        for bad in [
            "sg-1234567",
            "sg-0123456789ABCDEF0",
            "0123456789abcdef0",
            "sg-0123456789abcdef",
            "sg-",
        ] {
            assert!(!super::is_group_id(bad), "{bad}");
        }
    }
}
