//! `bouncer check --compare`: the manifests judged under the current
//! configuration and under a candidate, and what changes object by object.

use serde::Serialize;

use super::check::{InputError, cluster_of, input_errors, judge_object};
use crate::admission::PolicySet;
use crate::comparison::{ChangeSummary, ObjectChange};
use crate::manifest::{ManifestObject, Manifests};

/// What changes between two configurations on a set of manifests.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// The objects whose answer changes, in file order.
    pub changes: Vec<ObjectChange>,
    /// Documents and files that could not be judged.
    pub errors: Vec<InputError>,
    /// Counts.
    pub summary: ChangeSummary,
}

/// Judges every object of `manifests` under `current` and `candidate`, with
/// the manifests and `context` as the cluster's state (as `check` does).
pub fn compare(
    current: &PolicySet,
    candidate: &PolicySet,
    manifests: &Manifests,
    context: &[ManifestObject],
    namespace: &str,
) -> CompareReport {
    let (cluster, _) = cluster_of(manifests, context, namespace);
    let mut report = CompareReport {
        changes: Vec::new(),
        errors: input_errors(manifests),
        summary: ChangeSummary::default(),
    };
    for (index, object) in manifests.objects.iter().enumerate() {
        let judged = judge_object(current, object, index, namespace, &cluster).and_then(|now| {
            let then = judge_object(candidate, object, index, namespace, &cluster)?;
            Ok((now, then))
        });
        let (now, then) = match judged {
            Ok(both) => both,
            Err(error) => {
                report.errors.push(error);
                continue;
            }
        };
        // Both sides name the object the same way; either may have no findings.
        let Some(first) = now.first().or(then.first()) else {
            report.summary.objects += 1;
            report.summary.unchanged += 1;
            continue;
        };
        let (object, at) = (first.object.clone(), first.at.clone());
        if let Some(change) = report.summary.add(&object, at.as_ref(), &now, &then) {
            report.changes.push(change);
        }
    }
    report
}
