//! Cluster state given up front: the context objects of a `bouncer test` case,
//! or the manifests `bouncer check` reads plus its `--context` files.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::Value;

use super::index::Indexes;
use super::{Cluster, NamespaceLabels};
use crate::manifest::placement::{namespace_of, with_namespace};
use crate::policy::{
    ContextKind, ContextSource, Gathered, LookupFailure, Query, Queryable as _, too_large,
};

/// Objects held in memory, answering lookups and namespace labels.
///
/// Objects are kept by group and kind, not by version: the API server serves
/// a CRD's objects at every version it serves, so a lookup at `v1` sees an
/// object written as `v1beta1` (and is given it as written).
#[derive(Debug, Default)]
pub struct Snapshot {
    kinds: HashMap<(String, String), Objects>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    duplicates: Vec<(usize, usize)>,
}

/// The objects of one group and kind, and their indexes.
#[derive(Debug, Default)]
struct Objects {
    entries: Vec<Entry>,
    by_name: HashMap<(Option<String>, String), usize>,
    indexes: Mutex<Indexes<usize>>,
}

/// One object, kept as compact JSON (what lookups return) with what a scan
/// by labels needs; its other values are read from the JSON when asked.
#[derive(Debug, Clone)]
struct Entry {
    /// Its position among the objects the snapshot was made from.
    index: usize,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    json: String,
}

impl Entry {
    fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

/// The group of `api_version` (`""` for core) and `kind`: what a snapshot keys by.
fn group_kind(api_version: &str, kind: &str) -> (String, String) {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    (group.to_owned(), kind.to_owned())
}

impl Snapshot {
    /// Holds `objects`; namespaced objects that name no namespace are in
    /// `default_namespace`, as `kubectl apply` would put them.
    pub fn new<V: std::borrow::Borrow<Value>>(
        objects: impl IntoIterator<Item = V>,
        default_namespace: &str,
    ) -> Self {
        let mut snapshot = Self::default();
        for (index, object) in objects.into_iter().enumerate() {
            let object = object.borrow();
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
            let json = with_namespace(object.clone(), namespace.as_deref()).to_string();
            let objects = snapshot
                .kinds
                .entry(group_kind(api_version, kind))
                .or_default();
            let key = (namespace.clone(), name.to_owned());
            match objects.by_name.entry(key) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    let kept = objects.entries[*first.get()].index;
                    snapshot.duplicates.push((kept, index));
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(objects.entries.len());
                }
            }
            objects.entries.push(Entry {
                index,
                namespace,
                labels,
                json,
            });
        }
        snapshot
    }

    /// Objects given twice (same group, kind, namespace and name), as
    /// `(kept, ignored)` positions among the objects given: lookups see the
    /// first, so a caller can say which one is used.
    pub fn duplicates(&self) -> &[(usize, usize)] {
        &self.duplicates
    }

    fn of_kind(&self, kind: &ContextKind) -> Option<&Objects> {
        self.kinds.get(&group_kind(&kind.api_version, &kind.kind))
    }
}

impl Objects {
    /// The entries `query` selects in `namespace`, through an index when the
    /// query has an exact condition (each candidate's JSON is read to check
    /// the rest); a query of labels alone scans.
    fn select<'a>(&'a self, namespace: Option<&'a str>, query: &'a Query) -> Vec<&'a Entry> {
        let in_namespace = |e: &&Entry| namespace.is_none() || e.namespace.as_deref() == namespace;
        let exact = query.exact().next();
        let indexed = exact.as_ref().and_then(|(key, value)| {
            let mut indexes = self.indexes.lock().ok()?;
            indexes.lookup(key, value, || {
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i, e.value().value_of(key).map(str::to_owned)))
                    .collect::<Vec<_>>()
            })
        });
        let candidates: Box<dyn Iterator<Item = &Entry>> = match indexed {
            Some(ids) => Box::new(ids.into_iter().filter_map(|i| self.entries.get(i))),
            None => Box::new(self.entries.iter()),
        };
        candidates
            .filter(in_namespace)
            .filter(|e| match exact {
                Some(_) => query.matches(&e.value()),
                None => query.selector.matches(&e.labels),
            })
            .collect()
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
        max_bytes: usize,
    ) -> Result<Option<String>, LookupFailure> {
        let Some(objects) = self.of_kind(kind) else {
            return Ok(None);
        };
        let key = (namespace.map(str::to_owned), name.to_owned());
        let Some(entry) = objects
            .by_name
            .get(&key)
            .and_then(|&i| objects.entries.get(i))
        else {
            return Ok(None);
        };
        if entry.json.len() > max_bytes {
            return Err(too_large(max_bytes));
        }
        Ok(Some(entry.json.clone()))
    }

    fn list(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        query: &Query,
        max_bytes: usize,
    ) -> Result<Vec<String>, LookupFailure> {
        let Some(objects) = self.of_kind(kind) else {
            return Ok(Vec::new());
        };
        let mut gathered = Gathered::new(max_bytes);
        for entry in objects.select(namespace, query) {
            gathered.push(entry.json.clone())?;
        }
        Ok(gathered.into_texts())
    }
}
