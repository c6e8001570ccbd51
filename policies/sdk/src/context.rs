//! Looking up other objects in the cluster, for rules that depend on more than
//! the request ("no workload without a default-deny NetworkPolicy").
//!
//! A policy may look up only the kinds its configuration entry declares in
//! `context: [{apiVersion, kind}]`; anything else returns an error naming the
//! missing declaration. In a cluster the host answers from watch caches; in
//! `bouncer test` from the case's `context` objects.

use serde::de::DeserializeOwned;

use crate::bindings::bouncer::policy::context::{self as wit, LookupError};
use crate::{Error, Result};

fn error(error: LookupError) -> Error {
    match error {
        LookupError::NotDeclared(message) => Error::new(message),
        LookupError::Failed(message) => Error::new(format!("context lookup failed: {message}")),
    }
}

fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::new(format!("cannot decode the {what} looked up: {e}")))
}

/// One object by apiVersion, kind, namespace (`None` for cluster-scoped kinds)
/// and name, decoded into `T`; `None` when it does not exist.
pub fn get<T: DeserializeOwned>(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<T>> {
    wit::get_object(api_version, kind, namespace, name)
        .map_err(error)?
        .map(|text| decode(&text, kind))
        .transpose()
}

/// Every object of a kind in `namespace` (all namespaces when `None`) matching
/// `selector` (kubectl syntax, `app=web,tier!=db`; everything when `None`).
pub fn list<T: DeserializeOwned>(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<T>> {
    wit::list_objects(api_version, kind, namespace, selector)
        .map_err(error)?
        .iter()
        .map(|text| decode(text, kind))
        .collect()
}

/// Which objects [`find`] returns: every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    label_selector: Option<String>,
    annotations: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

impl Query {
    /// Every object (narrow it with the methods below).
    pub fn new() -> Self {
        Self::default()
    }

    /// Only objects whose labels match `selector` (kubectl syntax).
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_owned());
        self
    }

    /// Only objects that carry annotation `key` with exactly `value`.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Only objects whose string field at the dotted `path`
    /// (`spec.ingressClassName`) is exactly `value`.
    pub fn field(mut self, path: &str, value: &str) -> Self {
        self.fields.push((path.to_owned(), value.to_owned()));
        self
    }
}

/// The objects of a kind in `namespace` (all namespaces when `None`) that
/// `query` selects, decoded into `T`. The host selects them from its indexes
/// before copying anything, so this costs what it returns: prefer it to
/// [`list`] plus a filter whenever an annotation or a field narrows the set.
pub fn find<T: DeserializeOwned>(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Vec<T>> {
    let query = wit::ObjectQuery {
        label_selector: query.label_selector.clone(),
        annotations: query.annotations.clone(),
        fields: query.fields.clone(),
    };
    wit::find_objects(api_version, kind, namespace, &query)
        .map_err(error)?
        .iter()
        .map(|text| decode(text, kind))
        .collect()
}
