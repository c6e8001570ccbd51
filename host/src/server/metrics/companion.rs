//! Metrics of the companion (`serve --companion`), read from its counters at
//! scrape time.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::catch_up;
use crate::companion::Stats;

/// What was done to a NetworkPolicy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionLabels {
    /// `created`, `restored` or `removed`.
    pub(super) action: String,
}

/// The companion's metrics.
pub struct CompanionMetrics {
    reconciled: Counter,
    policies: Family<ActionLabels, Counter>,
    errors: Counter,
    leader: Gauge,
}

impl CompanionMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciled: Counter::default(),
            policies: Family::default(),
            errors: Counter::default(),
            leader: Gauge::default(),
        };
        registry.register(
            "companion_namespaces_reconciled",
            "Namespaces the companion reconciled",
            metrics.reconciled.clone(),
        );
        registry.register(
            "companion_policies",
            "NetworkPolicies the companion created, restored (after a deletion or a change) or removed (opt-out)",
            metrics.policies.clone(),
        );
        registry.register(
            "companion_errors",
            "Namespace reconciles that failed (each is tried again)",
            metrics.errors.clone(),
        );
        registry.register(
            "companion_leader",
            "1 while this replica holds the companion's Lease and writes",
            metrics.leader.clone(),
        );
        metrics
    }

    /// Brings the metrics up to the companion's counters.
    pub fn observe(&self, stats: &Stats) {
        catch_up(&self.reconciled, stats.reconciled.load(Ordering::Relaxed));
        catch_up(&self.errors, stats.errors.load(Ordering::Relaxed));
        for (action, total) in [
            ("created", &stats.created),
            ("restored", &stats.restored),
            ("removed", &stats.removed),
        ] {
            let counter = self.policies.get_or_create(&ActionLabels {
                action: action.to_owned(),
            });
            catch_up(&counter, total.load(Ordering::Relaxed));
        }
        self.leader
            .set(i64::from(stats.leader.load(Ordering::Relaxed)));
    }
}
