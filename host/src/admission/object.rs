//! The object of an admission request, kept as the JSON text the API server sent.
//!
//! Policies receive the object as text, so decoding it into a generic tree and
//! encoding it back (what `DynamicObject` costs) would be wasted work on every
//! request. [`RawObject`] keeps the text and decodes only the metadata bouncer
//! itself needs for matching and messages.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A Kubernetes object as raw JSON, with its identifying metadata decoded.
#[derive(Debug, Clone)]
pub struct RawObject {
    /// `metadata`: name, namespace, generateName, uid, labels, annotations and owner references only.
    pub metadata: ObjectMeta,
    json: Box<RawValue>,
}

impl RawObject {
    /// The object's JSON text, exactly as received.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// Parses JSON text into a raw object.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The metadata fields bouncer reads; everything else (notably `managedFields`)
/// is skipped without being built.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
    generate_name: Option<String>,
    uid: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: Option<Metadata>,
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer)?;
        let head: Head = serde_json::from_str(json.get()).map_err(serde::de::Error::custom)?;
        let meta = head.metadata.unwrap_or_default();
        Ok(Self {
            metadata: ObjectMeta {
                name: meta.name,
                namespace: meta.namespace,
                generate_name: meta.generate_name,
                uid: meta.uid,
                labels: meta.labels,
                annotations: meta.annotations,
                owner_references: meta.owner_references,
                ..ObjectMeta::default()
            },
            json,
        })
    }
}

impl Serialize for RawObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
