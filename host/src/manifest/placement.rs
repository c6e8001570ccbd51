//! Where a manifest object lands once applied, and how the API server has
//! shaped it by the time admission sees it: its namespace (filled in from the
//! request path, none for cluster-scoped kinds) and no YAML nulls.
//!
//! Offline requests and the offline cluster snapshot both need these answers,
//! and must give the same ones.

use serde_json::{Value, json};

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
