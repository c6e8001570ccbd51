//! Whether a policy sees a request: an entry's `match` rules, compiled once
//! when the configuration loads, checked against every request.
//!
//! Every part that is set must match; an absent or empty part matches
//! everything.

use glob::Pattern;

use super::review::Request;
use crate::config::MatchRules;
use crate::context::NamespaceLabels;
use crate::policy::Selector;

/// Match rules compiled for fast checks.
#[derive(Debug, Clone)]
pub(super) struct Matcher {
    rules: MatchRules,
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    namespace_selector: Option<Selector>,
    object_selector: Option<Selector>,
}

impl Matcher {
    /// Compiles rules.
    ///
    /// # Errors
    /// What [`MatchRules::check`] reports.
    pub(super) fn new(rules: &MatchRules) -> Result<Self, String> {
        let (include, exclude) = rules.namespace_globs()?;
        let (namespace_selector, object_selector) = rules.selectors()?;
        Ok(Self {
            rules: rules.clone(),
            include,
            exclude,
            namespace_selector,
            object_selector,
        })
    }

    /// The rules, as filled in from the policy's metadata.
    pub(super) fn rules(&self) -> &MatchRules {
        &self.rules
    }

    /// Whether the policy should see `request`.
    ///
    /// When namespace labels are unknown, a `namespaceSelector` matches: running
    /// a policy that did not need to run is safer than skipping one that did.
    pub(super) fn matches(&self, request: &Request, namespaces: &dyn NamespaceLabels) -> bool {
        let rules = &self.rules;
        let kinds = rules.kinds.as_deref().unwrap_or_default();
        let kind_ok = kinds.is_empty()
            || kinds.iter().any(|k| {
                let any =
                    |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
                any(&k.api_groups, &request.kind.group) && any(&k.kinds, &request.kind.kind)
            });
        if !kind_ok {
            return false;
        }
        let operations = rules.operations.as_deref().unwrap_or_default();
        if !operations.is_empty() && !operations.contains(&request.operation) {
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
        if let Some(selector) = &self.object_selector
            && !selector.matches(&object_labels)
        {
            return false;
        }
        if let Some(selector) = &self.namespace_selector {
            // A Namespace is judged by its own labels, as the API server does.
            let labels = if request.kind.group.is_empty() && request.kind.kind == "Namespace" {
                Some(object_labels)
            } else {
                namespace.and_then(|ns| namespaces.labels(ns))
            };
            if let Some(labels) = labels
                && !selector.matches(&labels)
            {
                return false;
            }
        }
        true
    }
}
