//! The admission request as a policy sees it.

use serde::de::DeserializeOwned;

use crate::bindings::bouncer::policy::types;
use crate::{Error, Result};

pub use types::{GroupVersionKind, GroupVersionResource, Operation, UserInfo};

/// One admission request: who asks to do what to which object.
///
/// The object texts are kept as the API server sent them and decoded on demand,
/// so a policy that ignores a kind never pays for parsing it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Identifier of this admission call.
    pub uid: String,
    /// Kind of the object (for a sub-resource, the sub-resource's kind).
    pub kind: GroupVersionKind,
    /// Resource being requested.
    pub resource: GroupVersionResource,
    /// Sub-resource such as `status` or `scale`; `None` for the main resource.
    pub sub_resource: Option<String>,
    /// Object name; empty when the client used `generateName` (mutating calls).
    pub name: String,
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The operation being admitted.
    pub operation: Operation,
    /// The user making the request.
    pub user_info: UserInfo,
    /// True for `--dry-run=server` requests.
    pub dry_run: bool,
    object: Option<String>,
    old_object: Option<String>,
}

impl Request {
    /// True when the object is of `kind` in API `group` (any version; `""` is the core group).
    pub fn is_kind(&self, group: &str, kind: &str) -> bool {
        self.kind.group == group && self.kind.kind == kind
    }

    /// `namespace/name`, or `name` for cluster-scoped objects: how messages name the object.
    pub fn object_ref(&self) -> String {
        let name = if self.name.is_empty() {
            "<generated name>"
        } else {
            &self.name
        };
        match &self.namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name.to_owned(),
        }
    }

    /// Decodes the object (absent on DELETE) into `T`, such as a k8s-openapi type.
    pub fn object<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        decode(self.object.as_deref(), "object")
    }

    /// Decodes the old object (present on UPDATE and DELETE) into `T`.
    pub fn old_object<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        decode(self.old_object.as_deref(), "oldObject")
    }

    /// Whether the object has a controller owner reference (a Pod of a
    /// ReplicaSet, a Job of a CronJob): rules often judge the owner instead.
    pub fn has_controller_owner(&self) -> Result<bool> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Owned {
            metadata: OwnedMeta,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct OwnedMeta {
            owner_references: Vec<OwnerRef>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct OwnerRef {
            controller: bool,
        }
        let owned: Option<Owned> = self.object()?;
        Ok(owned.is_some_and(|o| o.metadata.owner_references.iter().any(|r| r.controller)))
    }

    /// The object as generic JSON, for kinds without a Rust type and for mutation.
    pub fn object_json(&self) -> Result<Option<serde_json::Value>> {
        self.object()
    }

    /// The object's JSON text exactly as the API server sent it.
    pub fn object_text(&self) -> Option<&str> {
        self.object.as_deref()
    }

    /// The old object's JSON text exactly as the API server sent it.
    pub fn old_object_text(&self) -> Option<&str> {
        self.old_object.as_deref()
    }

    /// Builds a request by hand, for a policy's own unit tests.
    pub fn for_test(kind: GroupVersionKind, operation: Operation, object: Option<String>) -> Self {
        Self {
            uid: "test".into(),
            resource: GroupVersionResource {
                group: kind.group.clone(),
                version: kind.version.clone(),
                resource: String::new(),
            },
            kind,
            sub_resource: None,
            name: String::new(),
            namespace: None,
            operation,
            user_info: UserInfo {
                username: "test".into(),
                uid: String::new(),
                groups: Vec::new(),
                extra: Vec::new(),
            },
            dry_run: false,
            object,
            old_object: None,
        }
    }

    /// Converts the WIT request.
    pub(crate) fn from_wit(raw: types::Request) -> Self {
        Self {
            uid: raw.uid,
            kind: raw.kind,
            resource: raw.api_resource,
            sub_resource: raw.sub_resource,
            name: raw.name,
            namespace: raw.namespace,
            operation: raw.operation,
            user_info: raw.user_info,
            dry_run: raw.dry_run,
            object: raw.object,
            old_object: raw.old_object,
        }
    }
}

fn decode<T: DeserializeOwned>(text: Option<&str>, field: &str) -> Result<Option<T>> {
    match text {
        None => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| Error::new(format!("cannot decode request.{field}: {e}"))),
    }
}
