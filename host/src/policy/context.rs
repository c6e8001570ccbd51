//! Cluster lookups as a policy sees them: the kinds a policy may read, the
//! source the host answers from, and label selectors in kubectl's syntax.
//!
//! The runtime only knows the [`ContextSource`] trait; where answers come from
//! (watch caches in a cluster, objects given to `bouncer test`) is decided by
//! the caller, so the policy runtime never talks to the API server itself.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// An apiVersion and kind a policy declares it will look up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContextKind {
    /// `v1`, `networking.k8s.io/v1`, …
    pub api_version: String,
    /// `NetworkPolicy`, …
    pub kind: String,
}

impl ContextKind {
    /// The API group (`""` for core) and version.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", &self.api_version),
        }
    }
}

impl fmt::Display for ContextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)
    }
}

/// Where lookups are answered from. Objects are JSON texts.
pub trait ContextSource: Send + Sync {
    /// One object, or `None` when it does not exist.
    ///
    /// # Errors
    /// A message when the source cannot answer (not synced, kind not watched).
    fn get(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, String>;

    /// Every object of `kind` in `namespace` (all when `None`) matching `selector`.
    ///
    /// # Errors
    /// A message when the source cannot answer.
    fn list(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> Result<Vec<String>, String>;
}

/// A label selector in kubectl's syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`,
/// `a in (x,y)`, `a notin (x,y)`, joined by commas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One requirement of a [`Selector`] on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
}

impl Selector {
    /// A selector that holds when every one of `requirements` does; the one
    /// matcher for both kubectl's syntax and a `LabelSelector`'s fields.
    pub fn new(requirements: Vec<Requirement>) -> Self {
        Self { requirements }
    }

    /// Parses a selector; the empty string selects everything.
    ///
    /// # Errors
    /// A message naming the part that does not parse.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// Splits on commas outside parentheses: `a in (x,y),b` is two parts.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0u32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let key = |k: &str| {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            Err(format!("`{part}` has no valid label key"))
        } else {
            Ok(k.to_owned())
        }
    };
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(key(k)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(key(k)?, v.trim().to_owned()));
    }
    for (word, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = part.split_once(word) {
            let values = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("`{part}`: the values of `in`/`notin` go in parentheses"))?;
            let values = values.split(',').map(|v| v.trim().to_owned()).collect();
            let k = key(k)?;
            return Ok(if negated {
                Requirement::NotIn(k, values)
            } else {
                Requirement::In(k, values)
            });
        }
    }
    match part.strip_prefix('!') {
        Some(k) => Ok(Requirement::NotExists(key(k)?)),
        None => Ok(Requirement::Exists(key(part)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_follow_kubectl() {
        let s = Selector::parse("app=web, tier!=db,env in (prod, staging),!legacy,team").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "a")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("team", "a"),
            ("legacy", "")
        ])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        assert!(
            Selector::parse("env notin (prod)")
                .unwrap()
                .matches(&labels(&[]))
        );
        assert!(Selector::parse("a in x").is_err());
        assert!(Selector::parse("=x").is_err());
    }
}
