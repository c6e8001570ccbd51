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
///
/// Each answer is gathered under `max_bytes` (see [`Gathered`]): a source
/// stops copying once a result would pass it, so a lookup never costs the
/// host more memory than the policy may still use.
pub trait ContextSource: Send + Sync {
    /// One object, or `None` when it does not exist.
    ///
    /// # Errors
    /// A message when the source cannot answer (not synced, kind not watched),
    /// or the object is longer than `max_bytes`.
    fn get(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        name: &str,
        max_bytes: usize,
    ) -> Result<Option<String>, LookupFailure>;

    /// Every object of `kind` in `namespace` (all when `None`) that `query` selects.
    ///
    /// # Errors
    /// A message when the source cannot answer, or the objects together are
    /// longer than `max_bytes`.
    fn list(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        query: &Query,
        max_bytes: usize,
    ) -> Result<Vec<String>, LookupFailure>;
}

/// Lookup results gathered under a byte bound.
#[derive(Debug)]
pub struct Gathered {
    texts: Vec<String>,
    bytes: usize,
    limit: usize,
}

impl Gathered {
    /// Nothing yet; at most `limit` bytes in all.
    pub fn new(limit: usize) -> Self {
        Self {
            texts: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// Adds one object's text.
    ///
    /// # Errors
    /// The texts together pass the bound; the message says so.
    pub fn push(&mut self, text: String) -> Result<(), LookupFailure> {
        self.bytes += text.len();
        if self.bytes > self.limit {
            return Err(too_large(self.limit));
        }
        self.texts.push(text);
        Ok(())
    }

    /// The texts.
    pub fn into_texts(self) -> Vec<String> {
        self.texts
    }
}

/// Why a source could not answer a lookup; its text is what the policy reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupFailure {
    /// The result would pass the bytes the evaluation may still use.
    #[error(
        "the lookup's result is longer than the {limit} bytes this evaluation may still use for \
         lookups (a quarter of the policy's `memory`, less what earlier lookups took); narrow it \
         (a namespace, a label selector, `find-objects`) or raise the policy's `memory`"
    )]
    TooLarge {
        /// The bytes it could have had.
        limit: usize,
    },
    /// The source cannot answer for this kind now (no cluster, not watched,
    /// not synced): why, in words.
    #[error("{0}")]
    Unavailable(String),
}

/// A lookup whose result passes `limit` bytes.
pub fn too_large(limit: usize) -> LookupFailure {
    LookupFailure::TooLarge { limit }
}

/// What a listing selects: labels, and exact annotation and field values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The label selector.
    pub selector: Selector,
    /// Annotations an object must carry with exactly these values.
    pub annotations: Vec<(String, String)>,
    /// String fields an object must have with exactly these values.
    pub fields: Vec<(FieldPath, String)>,
}

impl Query {
    /// Objects whose labels `selector` matches.
    pub fn labels(selector: Selector) -> Self {
        Self {
            selector,
            ..Self::default()
        }
    }

    /// The exact conditions an index can answer, annotations first.
    pub fn exact(&self) -> impl Iterator<Item = (IndexKey, &str)> {
        let annotations = self
            .annotations
            .iter()
            .map(|(k, v)| (IndexKey::Annotation(k.clone()), v.as_str()));
        let fields = self
            .fields
            .iter()
            .map(|(p, v)| (IndexKey::Field(p.clone()), v.as_str()));
        annotations.chain(fields)
    }

    /// Whether `object` satisfies every condition.
    pub fn matches(&self, object: &impl Queryable) -> bool {
        self.selector.matches_by(|key| object.label(key))
            && self
                .exact()
                .all(|(key, value)| object.value_of(&key) == Some(value))
    }
}

/// An object a [`Query`] can be checked against as it is held.
pub trait Queryable {
    /// The value of label `key`.
    fn label(&self, key: &str) -> Option<&str>;
    /// The value `key` selects.
    fn value_of(&self, key: &IndexKey) -> Option<&str>;
}

impl Queryable for serde_json::Value {
    fn label(&self, key: &str) -> Option<&str> {
        self.get("metadata")?.get("labels")?.get(key)?.as_str()
    }

    fn value_of(&self, key: &IndexKey) -> Option<&str> {
        match key {
            IndexKey::Annotation(name) => self
                .get("metadata")?
                .get("annotations")?
                .get(name)?
                .as_str(),
            IndexKey::Field(path) => path.get(self),
        }
    }
}

/// A dotted path to a string field, from the object's root (`spec.ingressClassName`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses `a.b.c`.
    ///
    /// # Errors
    /// An empty path or an empty segment.
    pub fn parse(text: &str) -> Result<Self, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "`{text}` is not a dotted field path such as `spec.ingressClassName`"
            ));
        }
        Ok(Self(segments))
    }

    /// The string at this path in `object`.
    pub fn get<'a>(&self, object: &'a serde_json::Value) -> Option<&'a str> {
        self.0
            .iter()
            .try_fold(object, |value, segment| value.get(segment))?
            .as_str()
    }

    /// The path's segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

/// One exact condition: what an index is kept by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexKey {
    /// `metadata.annotations[<key>]`.
    Annotation(String),
    /// A string field.
    Field(FieldPath),
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
        self.matches_by(|key| labels.get(key).map(String::as_str))
    }

    /// Whether the labels `label` gives (by key) satisfy every requirement.
    pub fn matches_by<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        let is = |k: &str, v: &str| label(k) == Some(v);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => is(k, v),
            Requirement::NotEquals(k, v) => !is(k, v),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
            Requirement::In(k, vs) => label(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
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
