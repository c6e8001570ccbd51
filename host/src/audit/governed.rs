//! Which kinds an audit lists: every kind some policy judges on CREATE, per
//! its effective `match` rules, resolved against the cluster's discovery (the
//! served version, the plural, the scope). A kind the cluster does not serve is
//! reported and skipped.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::ApiResource;
use kube::core::admission::Operation;
use kube::discovery::{ApiCapabilities, ApiGroup, Scope, verbs};

use super::findings::{AuditError, Level};
use crate::admission::PolicySet;

/// One kind to list.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Its served resource.
    pub resource: ApiResource,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
    /// The policies that govern it, for messages.
    pub policies: Vec<String>,
}

impl Target {
    /// `Ingress.networking.k8s.io`, or `Service` for the core group.
    pub(super) fn label(&self) -> String {
        kind_label(&self.resource.group, &self.resource.kind)
    }
}

/// `Kind.group`, or `Kind` for the core group.
pub(super) fn kind_label(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

/// The `(group, kind)` pairs the policies judge on CREATE (`*` for any), with
/// the policies that want each.
fn wanted(set: &PolicySet) -> BTreeMap<(String, String), Vec<String>> {
    let mut wanted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for entry in set.entries() {
        let rules = entry.match_rules();
        let operations = rules.operations.as_deref().unwrap_or_default();
        if !operations.is_empty() && !operations.contains(&Operation::Create) {
            continue;
        }
        let name = entry.policy.name().to_owned();
        let kinds = rules.kinds.as_deref().unwrap_or_default();
        if kinds.is_empty() {
            wanted
                .entry(("*".into(), "*".into()))
                .or_default()
                .push(name.clone());
        }
        for rule in kinds {
            for group in &rule.api_groups {
                for kind in &rule.kinds {
                    let policies = wanted.entry((group.clone(), kind.clone())).or_default();
                    if !policies.contains(&name) {
                        policies.push(name.clone());
                    }
                }
            }
        }
    }
    wanted
}

/// Resolves the kinds the `sets` govern (one, or the current and the
/// candidate of a comparison) against the cluster's discovery.
pub(super) async fn targets(
    sets: &[&PolicySet],
    client: &kube::Client,
) -> (Vec<Target>, Vec<AuditError>) {
    let mut wanted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for set in sets {
        for (kind, policies) in self::wanted(set) {
            let names = wanted.entry(kind).or_default();
            for policy in policies {
                if !names.contains(&policy) {
                    names.push(policy);
                }
            }
        }
    }
    let mut errors = Vec::new();
    let groups = discover(client, wanted.keys().map(|(g, _)| g.as_str()), &mut errors).await;
    let mut found: BTreeMap<(String, String), Target> = BTreeMap::new();
    for ((group, kind), policies) in &wanted {
        let mut matched = false;
        for (_, resources) in groups
            .iter()
            .filter(|(name, _)| group == "*" || name == group)
        {
            for (resource, capabilities) in resources.iter().cloned() {
                if !(kind == "*" || resource.kind == *kind)
                    || !capabilities.supports_operation(verbs::LIST)
                {
                    continue;
                }
                matched = true;
                let target = found
                    .entry((resource.group.clone(), resource.kind.clone()))
                    .or_insert_with(|| Target {
                        namespaced: capabilities.scope == Scope::Namespaced,
                        resource,
                        policies: Vec::new(),
                    });
                for policy in policies {
                    if !target.policies.contains(policy) {
                        target.policies.push(policy.clone());
                    }
                }
            }
        }
        if !matched && group != "*" && kind != "*" {
            errors.push(AuditError {
                level: Level::Skip,
                subject: kind_label(group, kind),
                message: format!(
                    "the cluster does not serve this kind, which {} {}{}; skipped",
                    policies.join(", "),
                    if policies.len() == 1 {
                        "governs"
                    } else {
                        "govern"
                    },
                    if group.is_empty() {
                        ""
                    } else {
                        " (is its CRD installed?)"
                    }
                ),
            });
        }
    }
    (found.into_values().collect(), errors)
}

/// A discovered group: its name and the resources of its preferred versions.
type Discovered = (String, Vec<(ApiResource, ApiCapabilities)>);

fn discovered(group: &ApiGroup) -> Discovered {
    (group.name().to_owned(), group.recommended_resources())
}

/// Discovers the groups asked for; every group when one is `*`. A group that
/// cannot be discovered is an error for the kinds in it, not for the audit.
async fn discover<'a>(
    client: &kube::Client,
    names: impl Iterator<Item = &'a str>,
    errors: &mut Vec<AuditError>,
) -> Vec<Discovered> {
    let names: BTreeSet<&str> = names.collect();
    if names.contains("*") {
        match kube::Discovery::new(client.clone()).run().await {
            Ok(discovery) => return discovery.groups().map(discovered).collect(),
            Err(error) => errors.push(AuditError::error(
                "*",
                format!(
                    "discovering the cluster's API groups: {}; auditing only named groups",
                    crate::context::explain(&error)
                ),
            )),
        }
    }
    let mut groups = Vec::new();
    for name in names.into_iter().filter(|n| *n != "*") {
        match kube::discovery::group(client, name).await {
            Ok(group) => groups.push(discovered(&group)),
            // A missing group is reported per kind, once, by the caller.
            Err(kube::Error::Discovery(_)) => {}
            Err(error) => errors.push(AuditError::error(
                if name.is_empty() { "core" } else { name },
                format!(
                    "discovering API group `{name}`: {}",
                    crate::context::explain(&error)
                ),
            )),
        }
    }
    groups
}
