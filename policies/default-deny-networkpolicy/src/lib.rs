//! `default-deny-networkpolicy`: "if your name's not on the list, you're not
//! getting in". A workload may be created only in a namespace that holds a
//! default-deny NetworkPolicy, and the last such policy of a namespace cannot
//! be deleted or weakened while it is the last.
//!
//! Kubernetes networking starts as a free-for-all: every pod can reach every
//! other. A default-deny policy per namespace turns that into an allow-list,
//! where each connection a workload needs is opened by its own NetworkPolicy.
//! This rule needs cluster context: it looks up the namespace's NetworkPolicies
//! (declare `context: [{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy}]`).

use bouncer_eks::network_policy::{self as netpol, NetworkPolicy};
use bouncer_sdk::workload::Workload;
use bouncer_sdk::{Metadata, Operation, Policy, Request, Result, Verdict, context, export_policy};
use serde::Deserialize;

/// Settings of `default-deny-networkpolicy`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Policy types a default-deny policy must deny: `Ingress`, `Egress` or both.
    pub require: Vec<String>,
    /// Also judge workloads created by a controller (Pods of a ReplicaSet, Jobs of
    /// a CronJob); by default they pass, because their owner was judged.
    pub check_owned: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            require: vec!["Ingress".into(), "Egress".into()],
            check_owned: false,
        }
    }
}

/// The policy.
pub struct DefaultDenyNetworkPolicy;

impl Policy for DefaultDenyNetworkPolicy {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs_workloads()
            .governs(&["networking.k8s.io"], &["NetworkPolicy"])
            .operations(&[Operation::Create, Operation::Update, Operation::Delete])
            .context("networking.k8s.io/v1", "NetworkPolicy")
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        if settings.require.is_empty() {
            return Err("require must name Ingress, Egress or both".into());
        }
        if let Some(bad) = settings
            .require
            .iter()
            .find(|t| *t != "Ingress" && *t != "Egress")
        {
            return Err(format!(
                "require: `{bad}` is not a policy type (Ingress or Egress)"
            ));
        }
        Ok(())
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        let namespace = request.namespace.clone().unwrap_or_default();
        // Namespaces that need no default-deny are excluded by the entry's
        // `match.namespaces.exclude`, before the policy runs.
        if request.sub_resource.is_some() {
            return Ok(Verdict::allow());
        }
        let (group, kind) = (request.kind.group.as_str(), request.kind.kind.as_str());
        if Workload::of(group, kind).is_some() && request.operation == Operation::Create {
            return judge_workload(request, &namespace, settings);
        }
        if (group, kind) == ("networking.k8s.io", "NetworkPolicy")
            && matches!(request.operation, Operation::Update | Operation::Delete)
        {
            return judge_removal(request, &namespace, settings);
        }
        Ok(Verdict::allow())
    }
}

fn namespace_policies(namespace: &str) -> Result<Vec<NetworkPolicy>> {
    context::list(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        Some(namespace),
        None,
    )
}

fn judge_workload(request: &Request, namespace: &str, settings: &Settings) -> Result<Verdict> {
    if !settings.check_owned && request.has_controller_owner()? {
        return Ok(Verdict::allow());
    }
    if namespace_policies(namespace)?
        .iter()
        .any(|p| p.denies_all(&settings.require))
    {
        return Ok(Verdict::allow());
    }
    Ok(Verdict::deny(format!(
        "{} {} cannot be created: namespace `{namespace}` has no default-deny NetworkPolicy \
         (podSelector: {{}}, policyTypes {}, and no {} rules); create one first: {}",
        request.kind.kind,
        request.object_ref(),
        netpol::types_list(&settings.require),
        settings.require.join("/").to_lowercase(),
        netpol::example(namespace, &settings.require)
    )))
}

/// Refuses deleting or weakening the namespace's last default-deny policy.
fn judge_removal(request: &Request, namespace: &str, settings: &Settings) -> Result<Verdict> {
    let Some(old) = request.old_object::<NetworkPolicy>()? else {
        return Ok(Verdict::allow());
    };
    if !old.denies_all(&settings.require) {
        return Ok(Verdict::allow());
    }
    if request.operation == Operation::Update
        && request
            .object::<NetworkPolicy>()?
            .is_some_and(|new| new.denies_all(&settings.require))
    {
        return Ok(Verdict::allow());
    }
    let others = namespace_policies(namespace)?
        .into_iter()
        .any(|p| p.name() != old.name() && p.denies_all(&settings.require));
    if others {
        return Ok(Verdict::allow());
    }
    let action = if request.operation == Operation::Delete {
        "deleted"
    } else {
        "changed into something weaker"
    };
    Ok(Verdict::deny(format!(
        "NetworkPolicy {} cannot be {action}: it is the last default-deny NetworkPolicy of namespace \
         `{namespace}`, and without one every pod there is reachable and can reach everything; \
         create another default-deny NetworkPolicy first: {}",
        request.object_ref(),
        netpol::example(namespace, &settings.require)
    )))
}

export_policy!(DefaultDenyNetworkPolicy);
