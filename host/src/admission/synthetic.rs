//! Admission requests built from a manifest object, shaped as the API server
//! would send them, for `bouncer test`, `bouncer check` and `bouncer audit`.
//!
//! The point is that a policy cannot tell the difference: the same fields are
//! set (`kind`, `resource` with its plural, `requestKind`, `options`, the
//! object's `metadata.namespace` filled in from the request), so a suite that
//! passes offline means the same thing on a cluster.

use kube::core::admission::Operation;
use serde_json::{Value, json};

use super::review::{Request, review_type};
use crate::manifest::placement::{namespace_of, with_namespace, without_nulls};

/// What a request is made of; everything but the object has a default.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// The operation; `CREATE` unless said otherwise.
    pub operation: Operation,
    /// The object (absent on DELETE).
    pub object: Option<Value>,
    /// The object before the change (UPDATE, DELETE).
    pub old_object: Option<Value>,
    /// The namespace of a namespaced object whose manifest names none.
    pub default_namespace: String,
    /// Who makes the request; [`default_user`] when `None`.
    pub user_info: Option<Value>,
    /// Whether it is a dry run.
    pub dry_run: bool,
    /// The subresource (`status`, `scale`), if any.
    pub sub_resource: Option<String>,
    /// Whether the kind is cluster-scoped, when known (from discovery);
    /// `None`: judged from the built-in kinds.
    pub cluster_scoped: Option<bool>,
}

impl RequestSpec {
    /// A CREATE of `object` in `default_namespace` when it names none.
    pub fn create(object: Value, default_namespace: &str) -> Self {
        Self {
            operation: Operation::Create,
            object: Some(object),
            old_object: None,
            default_namespace: default_namespace.to_owned(),
            user_info: None,
            dry_run: false,
            sub_resource: None,
            cluster_scoped: None,
        }
    }
}

/// Why a request cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    /// Neither object nor old object was given.
    #[error("the request has no object (and no oldObject)")]
    NoObject,
    /// The object lacks `apiVersion` or `kind`.
    #[error("the object has no `{0}`")]
    MissingField(&'static str),
    /// The result does not decode as an admission request (a malformed object).
    #[error("the object does not make a valid admission request: {0}")]
    Invalid(serde_json::Error),
}

impl From<serde_json::Error> for SyntheticError {
    fn from(error: serde_json::Error) -> Self {
        Self::Invalid(error)
    }
}

/// The user offline requests come from unless a case says otherwise.
pub fn default_user() -> Value {
    json!({
        "username": "bouncer:offline",
        "groups": ["system:authenticated"],
    })
}

/// Builds the request the API server would send for `spec`.
///
/// `uid` should be unique per request within a run; policies may log it.
pub fn build(spec: &RequestSpec, uid: &str) -> Result<Request, SyntheticError> {
    let reference = spec
        .object
        .as_ref()
        .or(spec.old_object.as_ref())
        .ok_or(SyntheticError::NoObject)?;
    let api_version =
        text(reference, "apiVersion").ok_or(SyntheticError::MissingField("apiVersion"))?;
    let kind = text(reference, "kind").ok_or(SyntheticError::MissingField("kind"))?;
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let plural = kube::core::ApiResource::from_gvk(&gvk).plural;

    let namespace = match spec.cluster_scoped {
        Some(true) => None,
        Some(false) => Some(
            reference
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or(&spec.default_namespace)
                .to_owned(),
        ),
        None => namespace_of(reference, group, kind, &spec.default_namespace),
    };
    let object = spec
        .object
        .clone()
        .map(|o| with_namespace(without_nulls(o), namespace.as_deref()));
    let old_object = spec
        .old_object
        .clone()
        .map(|o| with_namespace(without_nulls(o), namespace.as_deref()));
    let name = reference
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let gvk_json = json!({"group": group, "version": version, "kind": kind});
    let gvr_json = json!({"group": group, "version": version, "resource": plural});
    let options_kind = match spec.operation {
        Operation::Create => Some("CreateOptions"),
        Operation::Update => Some("UpdateOptions"),
        Operation::Delete => Some("DeleteOptions"),
        Operation::Connect => None,
    };
    let mut request = json!({
        "uid": uid,
        "kind": gvk_json,
        "resource": gvr_json,
        "requestKind": gvk_json,
        "requestResource": gvr_json,
        "name": name,
        "operation": spec.operation,
        "userInfo": spec.user_info.clone().unwrap_or_else(default_user),
        "object": object,
        "oldObject": old_object,
        "dryRun": spec.dry_run,
    });
    if let Some(namespace) = namespace {
        request["namespace"] = Value::String(namespace);
    }
    if let Some(sub) = &spec.sub_resource {
        request["subResource"] = Value::String(sub.clone());
        request["requestSubResource"] = Value::String(sub.clone());
    }
    if let Some(kind) = options_kind {
        request["options"] = json!({"apiVersion": "meta.k8s.io/v1", "kind": kind});
    }
    // Through text: raw objects keep the JSON text they were read from.
    let mut request: Request = serde_json::from_str(&request.to_string())?;
    request.types = review_type();
    Ok(request)
}

/// Replaces the object of `request` (after mutation), keeping everything else.
pub fn with_object(request: &Request, object: &Value) -> Result<Request, serde_json::Error> {
    let mut next = request.clone();
    next.object = Some(crate::admission::RawObject::from_json(&object.to_string())?);
    Ok(next)
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress() -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web"},
            "spec": {"ingressClassName": "alb"}
        })
    }

    #[test]
    fn keys_left_empty_are_absent_as_after_the_api_servers_decoding() {
        let object = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": null},
            "spec": {"containers": [{"name": "c", "envFrom": null, "image": "x"}]}});
        let request = build(&RequestSpec::create(object, "default"), "uid").unwrap();
        let object: Value = serde_json::from_str(request.object.unwrap().json()).unwrap();
        assert_eq!(object["metadata"].get("annotations"), None);
        assert_eq!(object["spec"]["containers"][0].get("envFrom"), None);
        assert_eq!(object["spec"]["containers"][0]["image"], "x");
    }

    #[test]
    fn a_create_looks_like_the_api_servers() {
        let request = build(&RequestSpec::create(ingress(), "shop"), "uid-1").unwrap();
        assert_eq!(request.uid, "uid-1");
        assert_eq!(request.kind.kind, "Ingress");
        assert_eq!(request.resource.resource, "ingresses");
        assert_eq!(request.resource.group, "networking.k8s.io");
        assert_eq!(request.namespace.as_deref(), Some("shop"));
        assert_eq!(request.name, "web");
        assert_eq!(request.operation, Operation::Create);
        let object: Value = serde_json::from_str(request.object.unwrap().json()).unwrap();
        assert_eq!(object["metadata"]["namespace"], "shop");
    }

    #[test]
    fn the_manifests_namespace_wins_and_cluster_kinds_have_none() {
        let mut object = ingress();
        object["metadata"]["namespace"] = json!("team-a");
        let request = build(&RequestSpec::create(object, "default"), "u").unwrap();
        assert_eq!(request.namespace.as_deref(), Some("team-a"));

        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        let request = build(&RequestSpec::create(namespace, "default"), "u").unwrap();
        assert_eq!(request.namespace, None);
        assert_eq!(request.resource.resource, "namespaces");
    }

    #[test]
    fn a_delete_names_the_old_object() {
        let spec = RequestSpec {
            operation: Operation::Delete,
            object: None,
            old_object: Some(ingress()),
            ..RequestSpec::create(Value::Null, "default")
        };
        let request = build(&spec, "u").unwrap();
        assert!(request.object.is_none());
        assert_eq!(request.name, "web");
        assert!(request.old_object.is_some());
    }

    #[test]
    fn an_object_without_kind_is_refused_by_name() {
        let error = build(
            &RequestSpec::create(json!({"apiVersion": "v1"}), "default"),
            "u",
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "the object has no `kind`");
    }
}
