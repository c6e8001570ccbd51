//! Translating an admission request into the WIT request a policy receives.

use kube::core::admission::Operation as KubeOperation;

use super::review::Request;
use crate::policy::bindings::Request as WitRequest;
use crate::policy::bindings::bouncer::policy::types as wit;

/// Builds the WIT request for `request`; the object texts are copied as received.
pub fn to_wit(request: &Request) -> WitRequest {
    let user = &request.user_info;
    WitRequest {
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
        operation: operation(&request.operation),
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
        object: request.object.as_ref().map(|o| o.json().to_owned()),
        old_object: request.old_object.as_ref().map(|o| o.json().to_owned()),
    }
}

/// The WIT form of an admission operation.
pub fn operation(operation: &KubeOperation) -> wit::Operation {
    match operation {
        KubeOperation::Create => wit::Operation::Create,
        KubeOperation::Update => wit::Operation::Update,
        KubeOperation::Delete => wit::Operation::Delete,
        KubeOperation::Connect => wit::Operation::Connect,
    }
}
