//! Helpers for reading and editing Kubernetes objects as raw JSON.
//!
//! Mutating the raw JSON (rather than a re-serialised typed object) keeps every
//! field the API server sent, so the host's JSONPatch touches only what changed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Reads `metadata.annotations[key]` from a typed object's annotations map.
pub fn annotation<'a>(
    annotations: &'a Option<BTreeMap<String, String>>,
    key: &str,
) -> Option<&'a str> {
    annotations.as_ref()?.get(key).map(String::as_str)
}

/// Sets `metadata.annotations[key] = value` on a raw object, creating the maps as needed.
pub fn set_annotation(object: &mut Value, key: &str, value: &str) {
    let metadata = child_object(object, "metadata");
    let annotations = child_object(metadata, "annotations");
    if let Value::Object(map) = annotations {
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// Returns `parent[key]`, replacing it with `{}` when absent or not an object.
fn child_object<'a>(parent: &'a mut Value, key: &str) -> &'a mut Value {
    if !parent.is_object() {
        *parent = Value::Object(Map::new());
    }
    let Value::Object(map) = parent else {
        unreachable!("replaced by an object above")
    };
    let child = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    child
}
