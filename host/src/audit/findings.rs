//! What an audit found: one [`Finding`] per object and policy that is not a
//! plain pass (passes too when asked), the objects and kinds that could not
//! be audited, counts, and the run's metrics.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::admission::Verdict;
use crate::findings::Finding;

/// Something that could not be audited: a kind (not served, forbidden), or one object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditError {
    /// Whether it leaves something unaudited (`error`) or there was nothing to audit (`skip`).
    pub level: Level,
    /// What: `Ingress.networking.k8s.io`, `Ingress/shop/web`, or a policy's name.
    pub subject: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// How much a problem matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing to audit: the cluster does not serve a governed kind.
    Skip,
    /// Something was not audited (forbidden, unreadable, a failed list).
    Error,
}

impl AuditError {
    /// Something was not audited.
    pub fn error(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            level: Level::Error,
            subject: subject.into(),
            message: message.into(),
        }
    }
}

/// Verdict counts of one report scope (a namespace, or the cluster-scoped objects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Results that passed.
    pub pass: usize,
    /// Results that failed.
    pub fail: usize,
    /// Results with warnings or monitor-mode violations.
    pub warn: usize,
    /// Results the policy could not produce.
    pub error: usize,
    /// Results a `PolicyException` excepted.
    pub skip: usize,
}

impl Counts {
    /// Counts one more result.
    pub fn add(&mut self, outcome: Verdict) {
        match outcome {
            Verdict::Pass => self.pass += 1,
            Verdict::Fail => self.fail += 1,
            Verdict::Warn => self.warn += 1,
            Verdict::Error => self.error += 1,
            Verdict::Skip => self.skip += 1,
        }
    }
}

/// Counts for the closing line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditSummary {
    /// Objects audited.
    pub objects: usize,
    /// Kinds listed.
    pub kinds: usize,
    /// Objects some policy would refuse.
    pub denied: usize,
    /// Objects with warnings or monitor-mode violations only.
    pub warned: usize,
    /// Objects some policy could not judge (and none refused).
    pub failed: usize,
    /// Kinds or objects that could not be audited.
    pub errors: usize,
    /// Governed kinds the cluster does not serve.
    pub skipped: usize,
}

/// How the run went, for the job's log and dashboards.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Wall-clock time of listing and judging.
    pub duration_seconds: f64,
    /// Objects audited per kind (`Ingress.networking.k8s.io`).
    pub objects_by_kind: BTreeMap<String, usize>,
    /// Failed and warned results per policy.
    pub violations_by_policy: BTreeMap<String, usize>,
    /// List requests made.
    pub pages: usize,
}

/// Everything an audit found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Results that are not a plain pass (passes too with `report_passes`), in listing order.
    pub results: Vec<Finding>,
    /// What could not be audited.
    pub errors: Vec<AuditError>,
    /// Counts.
    pub summary: AuditSummary,
    /// Verdict counts per namespace (`""`: cluster-scoped objects), passes included.
    pub scopes: BTreeMap<String, Counts>,
    /// The namespaces the audit was limited to (their reports are this run's
    /// to write); `None`: all of them, and the cluster-scoped kinds.
    #[serde(skip)]
    pub audited_namespaces: Option<Vec<String>>,
    /// The run's metrics.
    pub metrics: Metrics,
    /// Kinds this run could not list completely: their objects' results are
    /// unknown, so reports keep what they said of them before.
    #[serde(skip)]
    pub unseen: Vec<Unseen>,
    /// With a candidate configuration (`--compare`): what changes under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// What changes between the current configuration and a candidate, over
/// everything the audit judged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    /// The objects whose answer changes, in listing order.
    pub changes: Vec<crate::comparison::ObjectChange>,
    /// Counts.
    pub summary: crate::comparison::ChangeSummary,
}

/// A kind whose list failed (in one namespace, or in all when `namespace` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unseen {
    /// Its apiVersion.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// The namespace listed; `None`: every namespace (or a cluster-scoped kind).
    pub namespace: Option<String>,
}

impl Unseen {
    /// Whether objects of this kind in `scope` (`""`: cluster-scoped) went unseen.
    pub fn covers(&self, scope: &str) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == scope)
    }
}

impl AuditReport {
    /// Records what could not be audited, keeping the summary's counts.
    pub fn add_problems(&mut self, problems: impl IntoIterator<Item = AuditError>) {
        for problem in problems {
            match problem.level {
                Level::Error => self.summary.errors += 1,
                Level::Skip => self.summary.skipped += 1,
            }
            self.errors.push(problem);
        }
    }
}
