//! The `match` section of a policy entry, as written, and its checks. The
//! per-request matcher is `admission::matching`.
//!
//! Every part that is set must match; an absent or empty part matches
//! everything. Namespace globs use shell syntax (`team-*`, `kube-?`).

use glob::Pattern;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde::Deserialize;

use crate::policy::{Metadata, Requirement, Selector};

/// A policy's `match` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchRules {
    /// API groups and kinds; `""` is the core group and `*` matches any.
    /// Absent: the kinds the policy's metadata declares (every kind without metadata).
    pub kinds: Option<Vec<KindRule>>,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`; empty means all.
    /// Absent: the operations the policy's metadata declares (all without metadata).
    pub operations: Option<Vec<kube::core::admission::Operation>>,
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

impl MatchRules {
    /// These rules with what they leave out taken from the policy's own
    /// metadata, the one place a policy declares what it governs.
    pub fn filled_from(&self, metadata: Option<&Metadata>) -> Self {
        let mut rules = self.clone();
        let Some(metadata) = metadata else {
            return rules;
        };
        if rules.kinds.is_none() {
            rules.kinds = Some(
                metadata
                    .kinds
                    .iter()
                    .map(|k| KindRule {
                        api_groups: k.api_groups.clone(),
                        kinds: k.kinds.clone(),
                    })
                    .collect(),
            );
        }
        if rules.operations.is_none() {
            rules.operations = Some(
                metadata
                    .operations
                    .iter()
                    .filter_map(|op| serde_json::from_value(serde_json::json!(op)).ok())
                    .collect(),
            );
        }
        rules
    }

    /// Checks globs and selectors.
    ///
    /// # Errors
    /// A message naming the glob or selector operator that is not valid.
    pub fn check(&self) -> Result<(), String> {
        self.namespace_globs()?;
        self.selectors()?;
        Ok(())
    }

    /// The compiled `namespaces.include` and `namespaces.exclude` globs.
    ///
    /// # Errors
    /// A message naming the glob that does not compile.
    pub fn namespace_globs(&self) -> Result<(Vec<Pattern>, Vec<Pattern>), String> {
        Ok((
            compile(&self.namespaces.include)?,
            compile(&self.namespaces.exclude)?,
        ))
    }

    /// The `namespaceSelector` and `objectSelector` as selectors the host evaluates.
    ///
    /// # Errors
    /// A message naming an operator that is not one of Kubernetes' four.
    pub fn selectors(&self) -> Result<(Option<Selector>, Option<Selector>), String> {
        let convert =
            |selector: &Option<LabelSelector>| selector.as_ref().map(selector_of).transpose();
        Ok((
            convert(&self.namespace_selector)?,
            convert(&self.object_selector)?,
        ))
    }
}

fn compile(globs: &[String]) -> Result<Vec<Pattern>, String> {
    globs
        .iter()
        .map(|g| Pattern::new(g).map_err(|e| format!("invalid namespace glob `{g}`: {e}")))
        .collect()
}

/// Kubernetes label selector semantics: every `matchLabels` pair and every expression must hold.
fn selector_of(selector: &LabelSelector) -> Result<Selector, String> {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()));
    let expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|LabelSelectorRequirement { key, operator, values }| {
            let (key, values) = (key.clone(), values.clone().unwrap_or_default());
            match operator.as_str() {
                "In" => Ok(Requirement::In(key, values)),
                "NotIn" => Ok(Requirement::NotIn(key, values)),
                "Exists" => Ok(Requirement::Exists(key)),
                "DoesNotExist" => Ok(Requirement::NotExists(key)),
                other => Err(format!(
                    "label selector operator `{other}` is not one of In, NotIn, Exists, DoesNotExist"
                )),
            }
        });
    pairs
        .map(Ok)
        .chain(expressions)
        .collect::<Result<_, _>>()
        .map(Selector::new)
}
