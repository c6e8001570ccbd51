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
