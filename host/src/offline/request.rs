//! Admission requests built offline from a manifest, shaped as the API server
//! would send them, for `bouncer test` and `bouncer check`.
//!
//! The point is that a policy cannot tell the difference: the same fields are
//! set (`kind`, `resource` with its plural, `requestKind`, `options`, the
//! object's `metadata.namespace` filled in from the request), so a suite that
//! passes offline means the same thing on a cluster.

use kube::core::admission::Operation;
use serde_json::{Value, json};

use crate::admission::review::{Request, review_type};

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
    Invalid(#[from] serde_json::Error),
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

/// The namespace an object of `group`/`kind` lives in once applied: its own,
/// else `default_namespace`; `None` for cluster-scoped kinds.
pub fn namespace_of(
    object: &Value,
    group: &str,
    kind: &str,
    default_namespace: &str,
) -> Option<String> {
    if is_cluster_scoped(group, kind) {
        return None;
    }
    let own = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty());
    Some(own.unwrap_or(default_namespace).to_owned())
}

/// The API server decodes a manifest into its Go type before admission: a key
/// written without a value (`annotations:`, `envFrom:`) is YAML null and comes
/// out as an absent field. Policies never see those nulls from a cluster, so
/// they do not see them offline either.
pub fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The API server fills in `metadata.namespace` from the request path before
/// admission; policies see it set even when the manifest leaves it out.
pub fn with_namespace(mut object: Value, namespace: Option<&str>) -> Value {
    if let (Some(namespace), Some(map)) = (namespace, object.as_object_mut()) {
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata
                .entry("namespace")
                .or_insert_with(|| Value::String(namespace.to_owned()));
        }
    }
    object
}

/// Built-in kinds that live outside namespaces, and the cluster-scoped custom
/// kinds the house rules read. Other custom resources are assumed namespaced:
/// without a cluster there is no discovery to ask.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("elbv2.k8s.aws", "IngressClassParams"),
    ("eks.amazonaws.com", "IngressClassParams"),
];

/// Whether objects of this built-in kind have no namespace.
pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&(group, kind))
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
