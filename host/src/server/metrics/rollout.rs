//! Metrics of rolling rules out: shadow candidates and exceptions.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::PolicyLabels;
use crate::admission::shadow::Shadowed;

/// A shadow evaluation's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    /// The configured policy the candidate shadows.
    pub policy: String,
    /// `agreed`, `disagreed`, `busy` (not run: its slots were full) or
    /// `starved` (missed its deadline for want of CPU).
    pub result: String,
}

/// A disagreement's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisagreementLabels {
    /// The configured policy the candidate shadows.
    pub policy: String,
    /// The reviewed object's kind.
    pub kind: String,
    /// `newly-denied`, `newly-allowed`, `patch` or `failure`.
    pub change: String,
}

/// Shadow and exception metrics.
pub struct RolloutMetrics {
    /// Shadow evaluations by policy and result.
    pub shadow_evaluations: Family<ShadowLabels, Counter>,
    /// Disagreements by policy, object kind and change.
    pub shadow_disagreements: Family<DisagreementLabels, Counter>,
    /// Disagreement log lines dropped by the rate limit.
    pub shadow_log_dropped: Counter,
    /// Unexpired exceptions per policy (at scrape time).
    pub exceptions_active: Family<PolicyLabels, Gauge>,
    /// Of those, the ones expiring within 7 days.
    pub exceptions_expiring: Family<PolicyLabels, Gauge>,
    /// Denials an exception turned into an allow.
    pub exceptions_applied: Family<PolicyLabels, Counter>,
}

impl RolloutMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            shadow_evaluations: Family::default(),
            shadow_disagreements: Family::default(),
            shadow_log_dropped: Counter::default(),
            exceptions_active: Family::default(),
            exceptions_expiring: Family::default(),
            exceptions_applied: Family::default(),
        };
        registry.register(
            "shadow_evaluations",
            "Shadow candidate evaluations by policy and result (agreed, disagreed, busy: not run \
             because the candidate's slots were full, starved: no CPU to spare before its deadline)",
            metrics.shadow_evaluations.clone(),
        );
        registry.register(
            "shadow_disagreements",
            "Reviews where a shadow candidate disagreed with its policy, by policy, object kind \
             and change (newly-denied, newly-allowed, patch, failure)",
            metrics.shadow_disagreements.clone(),
        );
        registry.register(
            "shadow_log_lines_dropped",
            "Shadow disagreement log lines dropped by the rate limit",
            metrics.shadow_log_dropped.clone(),
        );
        registry.register(
            "exceptions_active",
            "Unexpired PolicyExceptions in the honoured namespaces, per policy they except from",
            metrics.exceptions_active.clone(),
        );
        registry.register(
            "exceptions_expiring_soon",
            "Unexpired PolicyExceptions that expire within 7 days, per policy",
            metrics.exceptions_expiring.clone(),
        );
        registry.register(
            "exceptions_applied",
            "Denials a PolicyException turned into an allow with a warning, per policy",
            metrics.exceptions_applied.clone(),
        );
        metrics
    }

    /// Counts one shadow outcome.
    pub fn shadowed(&self, outcome: &Shadowed) {
        let result = match outcome {
            Shadowed::Agreed { .. } => "agreed",
            Shadowed::Disagreed(d) => {
                self.shadow_disagreements
                    .get_or_create(&DisagreementLabels {
                        policy: d.policy.clone(),
                        kind: d.subject.kind.clone(),
                        change: d.change.as_str().to_owned(),
                    })
                    .inc();
                "disagreed"
            }
            Shadowed::Busy { .. } => "busy",
            Shadowed::Starved { .. } => "starved",
        };
        self.shadow_evaluations
            .get_or_create(&ShadowLabels {
                policy: outcome.policy().to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records the exceptions in force now (at scrape time); every policy of
    /// `policies` has a series, zero when nothing excepts from it.
    pub fn observe_exceptions<'p>(
        &self,
        exceptions: &[crate::admission::exceptions::Exception],
        policies: impl Iterator<Item = &'p str>,
    ) {
        self.exceptions_active.clear();
        self.exceptions_expiring.clear();
        for policy in policies {
            let labels = PolicyLabels {
                policy: policy.to_owned(),
            };
            self.exceptions_active.get_or_create(&labels).set(0);
            self.exceptions_expiring.get_or_create(&labels).set(0);
            let _ = self.exceptions_applied.get_or_create(&labels);
        }
        let now = std::time::SystemTime::now();
        let soon = now + crate::admission::exceptions::EXPIRING_SOON;
        for exception in exceptions.iter().filter(|e| !e.expired(now)) {
            for policy in &exception.policies {
                let labels = PolicyLabels {
                    policy: policy.clone(),
                };
                self.exceptions_active.get_or_create(&labels).inc();
                if exception.expires <= soon {
                    self.exceptions_expiring.get_or_create(&labels).inc();
                }
            }
        }
    }
}
