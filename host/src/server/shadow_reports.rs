//! The live report of shadow disagreements: on an interval, one
//! `openreports.io/v1alpha1` Report named `bouncer-shadow` per namespace where
//! a candidate disagreed (a ClusterReport for cluster-scoped objects), with
//! source `bouncer-shadow`, written by server-side apply. Only namespaces with
//! something new are written; a failed write is tried again next time.
//! Reports are bounded by the ledger's cap per namespace (`shadows.rs`) and
//! the results' message cap.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::shadows::Kept;
use super::state::AppState;
use crate::admission::shadow::Change;
use crate::admission::{Candidate, PolicySet};
use crate::findings::ObjectRef;
use crate::openreports::{MANAGED_BY, ReportResult, time_now};

/// The name of the shadow report in each namespace, and of its cluster report.
pub(super) const REPORT_NAME: &str = "bouncer-shadow";
/// The report's `source`, and each result's.
pub(super) const SOURCE: &str = "bouncer-shadow";

/// Writes the reports every `interval` until the task is aborted.
pub(super) async fn write_every(state: Arc<AppState>, client: kube::Client, interval: Duration) {
    let mut missing_crd_said = false;
    loop {
        tokio::time::sleep(interval).await;
        for (namespace, kept) in state.shadows.take_dirty() {
            let set = state.policies.load();
            match write(&client, &namespace, &kept, &set).await {
                Ok(()) => {}
                Err(error) => {
                    let missing = matches!(&error, kube::Error::Api(e) if e.code == 404);
                    if !missing || !missing_crd_said {
                        tracing::warn!(%namespace, error = %crate::context::explain(&error), "cannot write the shadow report; trying again at the next interval");
                    }
                    missing_crd_said |= missing;
                    state.shadows.mark_dirty(namespace);
                }
            }
        }
    }
}

async fn write(
    client: &kube::Client,
    namespace: &str,
    kept: &[Kept],
    set: &PolicySet,
) -> Result<(), kube::Error> {
    let cluster = namespace.is_empty();
    let kind = if cluster { "ClusterReport" } else { "Report" };
    let resource =
        ApiResource::from_gvk(&GroupVersionKind::gvk("openreports.io", "v1alpha1", kind));
    let api: Api<DynamicObject> = if cluster {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    };
    let object = report(&resource, namespace, kept, set);
    api.patch(
        REPORT_NAME,
        &PatchParams::apply(SOURCE).force(),
        &Patch::Apply(&object),
    )
    .await
    .map(drop)
}

/// The report of `kept` disagreements in `namespace` (`""`: cluster-scoped).
fn report(resource: &ApiResource, namespace: &str, kept: &[Kept], set: &PolicySet) -> Value {
    let now = time_now();
    let mut summary = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
    let results: Vec<Value> = kept
        .iter()
        .map(|k| {
            let verdict = match k.change {
                Change::NewlyDenied => "fail",
                Change::Failure => "error",
                Change::NewlyAllowed | Change::Patch => "warn",
            };
            summary[verdict] = json!(summary[verdict].as_u64().unwrap_or(0) + 1);
            let source = candidate_source(set, &k.policy).unwrap_or_default();
            let subject = &k.subject;
            let object = ObjectRef {
                api_version: subject.api_version.clone(),
                kind: subject.kind.clone(),
                namespace: subject.namespace.clone(),
                name: subject.name.clone(),
                uid: subject.uid.clone(),
            };
            ReportResult {
                source: SOURCE,
                policy: &k.policy,
                result: verdict,
                // A candidate's opinion is not enforced.
                scored: false,
                message: format!(
                    "the shadow candidate ({source}) would change this object's answer ({}): \
                     now {}; candidate {}",
                    k.change.as_str(),
                    k.current,
                    k.candidate
                ),
                object: &object,
                properties: json!({"change": k.change.as_str(), "candidate": source}),
            }
            .to_json(&now)
        })
        .collect();
    let mut metadata = json!({"name": REPORT_NAME, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "source": SOURCE,
        "summary": summary,
        "results": results,
    })
}

/// The configured source of `policy`'s candidate.
fn candidate_source(set: &PolicySet, policy: &str) -> Option<String> {
    set.entries()
        .iter()
        .find(|e| e.policy.name() == policy)
        .and_then(|e| match &e.shadow {
            Some(Candidate::Loaded { source, .. } | Candidate::Unloaded { source, .. }) => {
                Some(source.clone())
            }
            None => None,
        })
}
