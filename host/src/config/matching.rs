//! Match rules: which requests a policy sees.
//!
//! Every part that is set must match; an absent or empty part matches
//! everything. Namespace globs use shell syntax (`team-*`, `kube-?`).

use std::collections::BTreeMap;

use glob::Pattern;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde::Deserialize;

use crate::admission::Request;

/// A policy's `match` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchRules {
    /// API groups and kinds; `""` is the core group and `*` matches any.
    #[serde(default)]
    pub kinds: Vec<KindRule>,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`; empty means all.
    #[serde(default)]
    pub operations: Vec<kube::core::admission::Operation>,
    /// Namespace globs to include and exclude.
    #[serde(default)]
    pub namespaces: NamespaceRule,
    /// Labels of the request's namespace.
    pub namespace_selector: Option<LabelSelector>,
    /// Labels of the object (the old object on DELETE).
    pub object_selector: Option<LabelSelector>,
}

/// A set of kinds in a set of API groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KindRule {
    /// API groups, such as `networking.k8s.io`; `""` for core, `*` for any.
    pub api_groups: Vec<String>,
    /// Kinds, such as `Ingress`; `*` for any.
    pub kinds: Vec<String>,
}

/// Namespace include/exclude globs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRule {
    /// When set, only these namespaces (cluster-scoped objects never match).
    #[serde(default)]
    pub include: Vec<String>,
    /// Never these namespaces.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Where namespace labels come from, for `namespaceSelector`.
pub trait NamespaceLabels {
    /// The labels of `namespace`, or `None` when they are not known.
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

/// Match rules compiled for fast checks.
#[derive(Debug, Clone)]
pub struct Matcher {
    rules: MatchRules,
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

fn compile(globs: &[String]) -> Result<Vec<Pattern>, String> {
    globs
        .iter()
        .map(|g| Pattern::new(g).map_err(|e| format!("invalid namespace glob `{g}`: {e}")))
        .collect()
}

impl MatchRules {
    /// Checks globs and selectors.
    pub fn check(&self) -> Result<(), String> {
        Matcher::new(self).map(drop)
    }
}

impl Matcher {
    /// Compiles rules.
    pub fn new(rules: &MatchRules) -> Result<Self, String> {
        for selector in [&rules.namespace_selector, &rules.object_selector]
            .into_iter()
            .flatten()
        {
            for requirement in selector.match_expressions.iter().flatten() {
                if !matches!(
                    requirement.operator.as_str(),
                    "In" | "NotIn" | "Exists" | "DoesNotExist"
                ) {
                    return Err(format!(
                        "label selector operator `{}` is not one of In, NotIn, Exists, DoesNotExist",
                        requirement.operator
                    ));
                }
            }
        }
        Ok(Self {
            include: compile(&rules.namespaces.include)?,
            exclude: compile(&rules.namespaces.exclude)?,
            rules: rules.clone(),
        })
    }

    /// Whether the policy should see `request`.
    ///
    /// When namespace labels are unknown, a `namespaceSelector` matches: running
    /// a policy that did not need to run is safer than skipping one that did.
    pub fn matches(&self, request: &Request, namespaces: &dyn NamespaceLabels) -> bool {
        let rules = &self.rules;
        let kind_ok = rules.kinds.is_empty()
            || rules.kinds.iter().any(|k| {
                let any =
                    |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
                any(&k.api_groups, &request.kind.group) && any(&k.kinds, &request.kind.kind)
            });
        if !kind_ok {
            return false;
        }
        if !rules.operations.is_empty() && !rules.operations.contains(&request.operation) {
            return false;
        }
        let namespace = request.namespace.as_deref().filter(|n| !n.is_empty());
        match namespace {
            Some(ns) => {
                if !self.include.is_empty() && !self.include.iter().any(|p| p.matches(ns)) {
                    return false;
                }
                if self.exclude.iter().any(|p| p.matches(ns)) {
                    return false;
                }
            }
            None if !self.include.is_empty() => return false,
            None => {}
        }
        let object = request.object.as_ref().or(request.old_object.as_ref());
        let object_labels = object
            .and_then(|o| o.metadata.labels.clone())
            .unwrap_or_default();
        if let Some(selector) = &rules.object_selector
            && !selector_matches(selector, &object_labels)
        {
            return false;
        }
        if let Some(selector) = &rules.namespace_selector {
            // A Namespace is judged by its own labels, as the API server does.
            let labels = if request.kind.group.is_empty() && request.kind.kind == "Namespace" {
                Some(object_labels)
            } else {
                namespace.and_then(|ns| namespaces.labels(ns))
            };
            if let Some(labels) = labels
                && !selector_matches(selector, &labels)
            {
                return false;
            }
        }
        true
    }
}

/// Kubernetes label selector semantics: every `matchLabels` pair and every expression must hold.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    pairs_ok
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|requirement| requirement_matches(requirement, labels))
}

fn requirement_matches(
    requirement: &LabelSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let value = labels.get(&requirement.key);
    let values = requirement.values.as_deref().unwrap_or_default();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}
