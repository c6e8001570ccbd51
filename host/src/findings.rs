//! What a policy said about one object: one model for every command that
//! judges objects (`check` over manifests, `audit` over a cluster), so their
//! reports, JSON and the renderer (`render`) share it.

use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use crate::admission::synthetic::{self, RequestSpec, SyntheticError};
use crate::admission::{PolicyResult, PolicySet, Request, Verdict, admit_for_report};
use crate::config::Mode;
use crate::context::Cluster;

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Its apiVersion.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// Where in a manifest the object was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The manifest file (`-` for stdin).
    pub file: String,
    /// The line the object's document starts on.
    pub line: usize,
    /// The index in a `List`'s items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
}

/// What one policy said about one object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The object.
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Where it was read from, for objects from manifests.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub at: Option<Place>,
    /// The policy's configured name.
    pub policy: String,
    /// `enforce` or `monitor`.
    pub mode: Mode,
    /// The verdict, in the words reports use.
    pub result: Verdict,
    /// False when the policy refused the object (an enforced denial, or a
    /// failure with failure mode closed).
    pub allowed: bool,
    /// The denial, the monitor-mode message, or what the failure meant.
    pub message: Option<String>,
    /// Warnings the policy gave.
    pub warnings: Vec<String>,
    /// The object after the mutating policies, when this policy changed it.
    pub patched: Option<Value>,
    /// The JSON Patch from the object as written to `patched`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<json_patch::Patch>,
}

/// Judges one object as the API server would send it for `spec` (a CREATE)
/// through `set`'s mutate-then-validate chain, every policy's findings at
/// once: what `check` does for each manifest object and `audit` for each
/// listed one. `object` names it once the request is built (its namespace
/// is the request's). With `changes`, a mutating policy's finding carries the
/// patched object and the JSON Patch (`check` shows them); `audit` does not
/// ask, as its findings are kept for the whole cluster.
///
/// # Errors
/// The object does not make an admission request (no `kind`, say).
pub fn judge(
    set: &PolicySet,
    spec: &RequestSpec,
    uid: &str,
    cluster: &Arc<dyn Cluster>,
    object: impl FnOnce(&Request) -> ObjectRef,
    at: Option<&Place>,
    changes: bool,
) -> Result<Vec<Finding>, SyntheticError> {
    let request = synthetic::build(spec, uid)?;
    let admission = admit_for_report(set, &request, cluster);
    let object = object(&request);
    let patched = admission.patched.as_ref().filter(|_| changes);
    let patch = patched.and_then(|patched| {
        let sent: Value = serde_json::from_str(request.object.as_ref()?.json()).ok()?;
        Some(json_patch::diff(&sent, patched))
    });
    Ok(admission
        .policies
        .iter()
        .map(|result| Finding::of(result, &object, at, patched, patch.as_ref()))
        .collect())
}

impl Finding {
    /// What `result` says about `object`; the patch and patched object only
    /// when this policy changed it.
    pub fn of(
        result: &PolicyResult,
        object: &ObjectRef,
        at: Option<&Place>,
        patched: Option<&Value>,
        patch: Option<&json_patch::Patch>,
    ) -> Self {
        let changed = result.mutated;
        Self {
            object: object.clone(),
            at: at.cloned(),
            policy: result.policy.clone(),
            mode: result.mode,
            result: Verdict::of(result),
            allowed: result.allowed(),
            message: match &result.excepted {
                // What the policy said, and who let it through.
                Some(exception) => Some(format!(
                    "excepted by {exception}: {}",
                    result.message.as_deref().unwrap_or("denied")
                )),
                None => result.message.clone(),
            },
            warnings: result.warnings.clone(),
            patched: patched.filter(|_| changed).cloned(),
            patch: patch.filter(|_| changed).cloned(),
        }
    }
}
