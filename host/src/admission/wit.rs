//! Translating an admission request into the WIT request a policy receives.

use kube::core::admission::Operation as KubeOperation;

use super::review::Request;
use crate::policy::bindings::Request as WitRequest;
use crate::policy::bindings::bouncer::policy::types as wit;

/// Builds the WIT request for `request`, with `object` in place of the request's
/// object (the object as patched by earlier mutating policies, or the original).
///
/// # Errors
/// An object cannot be encoded as JSON (only possible for non-string map keys,
/// which a decoded request never has).
pub fn to_wit(
    request: &Request,
    object: Option<&serde_json::Value>,
) -> Result<WitRequest, serde_json::Error> {
    let object = object.map(serde_json::to_string).transpose()?;
    let old_object = request
        .old_object
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let user = &request.user_info;
    Ok(WitRequest {
        uid: request.uid.clone(),
        kind: wit::GroupVersionKind {
            group: request.kind.group.clone(),
            version: request.kind.version.clone(),
            kind: request.kind.kind.clone(),
        },
        api_resource: wit::GroupVersionResource {
            group: request.resource.group.clone(),
            version: request.resource.version.clone(),
            resource: request.resource.resource.clone(),
        },
        sub_resource: request.sub_resource.clone().filter(|s| !s.is_empty()),
        name: request.name.clone(),
        namespace: request.namespace.clone().filter(|s| !s.is_empty()),
        operation: match request.operation {
            KubeOperation::Create => wit::Operation::Create,
            KubeOperation::Update => wit::Operation::Update,
            KubeOperation::Delete => wit::Operation::Delete,
            KubeOperation::Connect => wit::Operation::Connect,
        },
        user_info: wit::UserInfo {
            username: user.username.clone().unwrap_or_default(),
            uid: user.uid.clone().unwrap_or_default(),
            groups: user.groups.clone().unwrap_or_default(),
            extra: user
                .extra
                .iter()
                .flatten()
                .map(|(key, values)| wit::UserExtra {
                    key: key.clone(),
                    values: values.clone(),
                })
                .collect(),
        },
        dry_run: request.dry_run,
        object,
        old_object,
    })
}

/// The request's object as JSON, the starting point of mutation.
pub fn object_json(request: &Request) -> Result<Option<serde_json::Value>, serde_json::Error> {
    request
        .object
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
}
