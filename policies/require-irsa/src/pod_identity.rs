//! EKS Pod Identity, AWS's successor to IRSA: the role is bound to a
//! ServiceAccount by an association in the EKS API, not by an annotation, so
//! it is seen only where it shows (docs.aws.amazon.com/eks/latest/userguide/pod-identities.html):
//! - a ServiceAccount declared in the settings as associated;
//! - an ACK `PodIdentityAssociation` (`eks.services.k8s.aws/v1alpha1`) for it,
//!   looked up in the cluster;
//! - a Pod the Pod Identity webhook already prepared: it injects
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI` before validating webhooks run.

use bouncer_sdk::Result;
use serde::Deserialize;

/// The env variable the EKS Pod Identity webhook injects into pods.
pub const INJECTED_VARIABLE: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
/// The ACK kind that declares an association as a Kubernetes object.
pub const ASSOCIATION_API_VERSION: &str = "eks.services.k8s.aws/v1alpha1";
/// Its kind.
pub const ASSOCIATION_KIND: &str = "PodIdentityAssociation";

/// An ACK association, as far as this rule reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Association {
    spec: AssociationSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AssociationSpec {
    namespace: String,
    service_account: String,
}

/// Whether `namespace/account` is listed in `declared` (globs on `namespace/name`).
pub fn declared(declared: &[String], namespace: &str, account: &str) -> bool {
    bouncer_eks::matches_any(declared, &format!("{namespace}/{account}"))
}

/// Whether an ACK association in the cluster binds `namespace/account` to a role.
pub fn associated(namespace: &str, account: &str) -> Result<bool> {
    let all: Vec<Association> =
        bouncer_sdk::context::list(ASSOCIATION_API_VERSION, ASSOCIATION_KIND, None, None)?;
    Ok(all
        .iter()
        .any(|a| a.spec.namespace == namespace && a.spec.service_account == account))
}
