//! Cluster state given up front: the context objects of a `bouncer test` case,
//! or the manifests `bouncer check` reads plus its `--context` files.

use std::collections::BTreeMap;

use serde_json::Value;

use super::request::{namespace_of, with_namespace};
use crate::context::Cluster;
use crate::context::NamespaceLabels;
use crate::policy::{ContextKind, ContextSource, Selector};

/// Objects held in memory, answering lookups and namespace labels.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    objects: Vec<Entry>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
struct Entry {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
    labels: BTreeMap<String, String>,
    json: String,
}

impl Snapshot {
    /// Holds `objects`; namespaced objects that name no namespace are in
    /// `default_namespace`, as `kubectl apply` would put them.
    pub fn new<'a>(objects: impl IntoIterator<Item = &'a Value>, default_namespace: &str) -> Self {
        let mut snapshot = Self::default();
        for object in objects {
            let text = |pointer: &str| {
                object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let (api_version, kind, name) =
                (text("/apiVersion"), text("/kind"), text("/metadata/name"));
            if api_version.is_empty() || kind.is_empty() || name.is_empty() {
                continue;
            }
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            let namespace = namespace_of(object, group, kind, default_namespace);
            let labels: BTreeMap<String, String> = object
                .pointer("/metadata/labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            if api_version == "v1" && kind == "Namespace" {
                let mut labels = labels.clone();
                // The API server sets this label on every namespace.
                labels.insert("kubernetes.io/metadata.name".into(), name.to_owned());
                snapshot.namespaces.insert(name.to_owned(), labels);
            }
            let object = with_namespace(object.clone(), namespace.as_deref());
            snapshot.objects.push(Entry {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                namespace,
                name: name.to_owned(),
                labels,
                json: object.to_string(),
            });
        }
        snapshot
    }

    fn of_kind<'a>(&'a self, kind: &'a ContextKind) -> impl Iterator<Item = &'a Entry> {
        self.objects
            .iter()
            .filter(move |e| e.api_version == kind.api_version && e.kind == kind.kind)
    }
}

impl Cluster for Snapshot {}

impl NamespaceLabels for Snapshot {
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(namespace).cloned()
    }
}

impl ContextSource for Snapshot {
    fn get(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, String> {
        Ok(self
            .of_kind(kind)
            .find(|e| e.name == name && e.namespace.as_deref() == namespace)
            .map(|e| e.json.clone()))
    }

    fn list(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> Result<Vec<String>, String> {
        Ok(self
            .of_kind(kind)
            .filter(|e| namespace.is_none() || e.namespace.as_deref() == namespace)
            .filter(|e| selector.matches(&e.labels))
            .map(|e| e.json.clone())
            .collect())
    }
}
