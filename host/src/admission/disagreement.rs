//! Where a configuration entry and its policy's own metadata disagree.
//!
//! None of these stop a configuration from loading: the entry is what runs.
//! They are warnings because each is usually a copy-paste slip that costs
//! latency (requests sent to a policy that ignores them) or silently does
//! nothing (a mutating entry for a policy that never mutates).

use crate::config::PolicyConfig;
use crate::policy::{Metadata, group_kind, operation_name};

/// Every disagreement between `entry` and `metadata`, as warnings naming the policy.
pub(super) fn find(entry: &PolicyConfig, metadata: &Metadata, mutating: bool) -> Vec<String> {
    let name = &entry.name;
    let mut warnings = Vec::new();
    let governed = metadata.governed_kinds().join(", ");
    if !metadata.kinds.is_empty() {
        if entry.rules.kinds.as_ref().is_some_and(Vec::is_empty) {
            warnings.push(format!(
                "policy `{name}`: its entry matches every kind, but the policy governs only \
                 {governed}; add `match.kinds` so other requests skip it"
            ));
        }
        let strays: Vec<String> = entry
            .rules
            .kinds
            .iter()
            .flatten()
            .flat_map(|rule| {
                rule.api_groups
                    .iter()
                    .flat_map(move |g| rule.kinds.iter().map(move |k| (g, k)))
            })
            .filter(|(group, kind)| {
                let wildcard = group.as_str() == "*" || kind.as_str() == "*";
                wildcard || !metadata.governs(group, kind)
            })
            .map(|(group, kind)| group_kind(group, kind))
            .collect();
        if !strays.is_empty() {
            warnings.push(format!(
                "policy `{name}`: its entry matches {}, which the policy does not govern (it \
                 governs {governed}); those requests reach it for nothing",
                strays.join(", ")
            ));
        }
    }
    if !metadata.operations.is_empty() {
        let strays: Vec<String> = match &entry.rules.operations {
            None => Vec::new(),
            Some(operations) if operations.is_empty() => vec!["every operation".to_owned()],
            Some(operations) => operations
                .iter()
                .map(|op| operation_name(super::wit::operation(op)).to_owned())
                .filter(|op| !metadata.operations.contains(op))
                .collect(),
        };
        if !strays.is_empty() {
            warnings.push(format!(
                "policy `{name}`: its entry matches {}, but the policy judges only {}",
                strays.join(", "),
                metadata.operations.join(", ")
            ));
        }
    }
    if mutating && !metadata.mutating {
        warnings.push(format!(
            "policy `{name}`: its entry runs it as mutating, but the policy never mutates"
        ));
    }
    warnings
}
