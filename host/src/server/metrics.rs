//! Prometheus metrics of the webhook, in the text exposition format.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod companion;
mod rollout;
pub(super) use companion::CompanionMetrics;
pub(super) use rollout::RolloutMetrics;

/// `endpoint` and `result` of a review request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `validate`, `mutate`, or another path.
    pub endpoint: String,
    /// `allowed`, `denied`, `mutated`, `invalid`.
    pub result: String,
}

/// One policy evaluation's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvaluationLabels {
    /// Policy name.
    pub policy: String,
    /// `enforce` or `monitor`.
    pub mode: String,
    /// `allowed`, `denied`, `mutated`, `error`.
    pub result: String,
}

/// A policy's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// Policy name.
    pub policy: String,
}

/// A policy error's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Policy name.
    pub policy: String,
    /// `deadline`, `memory`, `trap`, `bad_verdict`, `engine`.
    pub kind: String,
}

/// An endpoint's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `validate` or `mutate`.
    pub endpoint: String,
}

/// A result label (`ok` or `failed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `failed`.
    pub result: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 10 µs to ~42 s: policies take tens of microseconds, and the buckets
    // reach past the longest webhook timeout the API server allows (30 s),
    // so a slow review lands in a bucket that says how slow.
    prometheus_client::metrics::histogram::exponential_buckets(0.000_01, 2.0, 23)
}

/// Every metric bouncer exports.
pub struct Metrics {
    registry: Registry,
    /// Review requests by endpoint and result.
    pub requests: Family<RequestLabels, Counter>,
    /// Policy evaluations by policy, mode and result.
    pub evaluations: Family<EvaluationLabels, Counter>,
    /// Evaluation latency per policy.
    pub evaluation_seconds: Family<PolicyLabels, Histogram>,
    /// Request latency per endpoint.
    pub request_seconds: Family<EndpointLabels, Histogram>,
    /// Policy failures by kind.
    pub policy_errors: Family<ErrorLabels, Counter>,
    /// Configuration reloads by result.
    pub reloads: Family<ResultLabels, Counter>,
    /// 1 when the last configuration load succeeded, 0 when it was refused.
    pub config_ok: Gauge,
    /// Reviews being answered now.
    pub in_flight: Gauge,
    /// 1 once a context cache has synced.
    pub context_synced: Family<ContextLabels, Gauge>,
    /// 1 while a context watch is failing and its cache serves its last state.
    pub context_stale: Family<ContextLabels, Gauge>,
    /// Objects in a context cache.
    pub context_objects: Family<ContextLabels, Gauge>,
    /// 1 for a configured policy that is loaded, 0 for one that could not be.
    pub policy_loaded: Family<PolicyLabels, Gauge>,
    /// Evaluations of a policy running now.
    pub policy_running: Family<PolicyLabels, Gauge>,
    /// Linear memory a policy's live instances hold.
    pub policy_memory: Family<PolicyLabels, Gauge>,
    /// Log lines of a policy dropped by the log bounds.
    pub policy_log_dropped: Family<PolicyLabels, Counter>,
    /// Connections open now.
    pub connections_open: Gauge,
    /// Connections refused at the connection cap.
    pub connections_refused: Counter,
    /// 1 for the way instance slots are reset now (`scan` or `full`), 0 for the other.
    pub instance_reset: Family<ResetLabels, Gauge>,
    /// Shadow candidates and exceptions.
    pub rollout: RolloutMetrics,
    /// Evaluations whose policy failed and whose request was let through
    /// (failure mode open), per policy.
    pub failed_open: Family<PolicyLabels, Counter>,
    /// When the serving certificate expires, in Unix seconds.
    pub certificate_expiry: Gauge,
    /// The companion's work.
    pub companion: CompanionMetrics,
}

/// An instance reset path's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResetLabels {
    /// `scan` or `full`.
    pub path: String,
}

/// A context cache's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContextLabels {
    /// `networking.k8s.io/v1 NetworkPolicy`.
    pub kind: String,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bouncer");
        let requests = Family::default();
        let evaluations = Family::default();
        let evaluation_seconds = Family::<PolicyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let request_seconds = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let policy_errors = Family::default();
        let reloads = Family::default();
        let config_ok = Gauge::default();
        let in_flight = Gauge::default();
        registry.register(
            "requests",
            "Admission review requests by endpoint and result",
            requests.clone(),
        );
        registry.register(
            "evaluations",
            "Policy evaluations by policy, mode and result",
            evaluations.clone(),
        );
        registry.register(
            "evaluation_duration_seconds",
            "Time to evaluate one policy on one request",
            evaluation_seconds.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer one review request",
            request_seconds.clone(),
        );
        registry.register(
            "policy_errors",
            "Policy failures by kind",
            policy_errors.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 when the last configuration load succeeded",
            config_ok.clone(),
        );
        let context_synced = Family::default();
        let context_stale = Family::default();
        let context_objects = Family::default();
        registry.register(
            "context_cache_synced",
            "1 once the watch cache of a context kind has synced",
            context_synced.clone(),
        );
        registry.register(
            "context_cache_stale",
            "1 while the watch of a context kind is failing (lookups use the last state)",
            context_stale.clone(),
        );
        registry.register(
            "context_cache_objects",
            "Objects in the watch cache of a context kind",
            context_objects.clone(),
        );
        let policy_loaded = Family::default();
        let policy_running = Family::default();
        let policy_memory = Family::default();
        let policy_log_dropped = Family::default();
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        registry.register(
            "policy_loaded",
            "1 for a configured policy that is loaded, 0 for one that could not be (see /readyz)",
            policy_loaded.clone(),
        );
        registry.register(
            "policy_evaluations_running",
            "Evaluations of a policy running now",
            policy_running.clone(),
        );
        registry.register(
            "policy_instance_memory_bytes",
            "Linear memory the live instances of a policy hold",
            policy_memory.clone(),
        );
        registry.register(
            "policy_log_lines_dropped",
            "Log lines of a policy dropped by the log bounds",
            policy_log_dropped.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused at the --max-connections cap",
            connections_refused.clone(),
        );
        let instance_reset = Family::default();
        registry.register(
            "instance_reset",
            "1 for how policy instance slots are reset between evaluations now: `scan` (only written \
             pages, where memory cannot swap) or `full` (see /readyz)",
            instance_reset.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Review requests being answered",
            in_flight.clone(),
        );
        let rollout = RolloutMetrics::register(&mut registry);
        let companion = CompanionMetrics::register(&mut registry);
        let failed_open = Family::default();
        registry.register(
            "policy_failed_open",
            "Evaluations whose policy failed and whose request was allowed anyway (failure mode open)",
            failed_open.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the serving certificate stops being valid, in seconds since the Unix epoch",
            certificate_expiry.clone(),
        );
        Self {
            registry,
            requests,
            evaluations,
            evaluation_seconds,
            request_seconds,
            policy_errors,
            reloads,
            config_ok,
            in_flight,
            context_synced,
            context_stale,
            context_objects,
            policy_loaded,
            policy_running,
            policy_memory,
            policy_log_dropped,
            connections_open,
            connections_refused,
            instance_reset,
            rollout,
            companion,
            failed_open,
            certificate_expiry,
        }
    }

    /// Records how instance slots are reset now.
    pub fn reset_path(&self, path: crate::policy::ResetPath) {
        for other in [
            crate::policy::ResetPath::Scan,
            crate::policy::ResetPath::Full,
        ] {
            self.instance_reset
                .get_or_create(&ResetLabels {
                    path: other.name().to_owned(),
                })
                .set(i64::from(other == path));
        }
    }

    /// Records the state of the serving policies (at scrape time).
    pub fn observe_policies(&self, set: &crate::admission::PolicySet) {
        self.policy_loaded.clear();
        self.policy_running.clear();
        self.policy_memory.clear();
        for entry in set.entries() {
            let labels = PolicyLabels {
                policy: entry.policy.name().to_owned(),
            };
            // Failures start at zero, so rate() and alerts see their first one.
            for kind in crate::policy::ErrorKind::ALL {
                let _ = self.policy_errors.get_or_create(&ErrorLabels {
                    policy: labels.policy.clone(),
                    kind: kind.as_str().to_owned(),
                });
            }
            let _ = self.failed_open.get_or_create(&labels);
            self.policy_loaded.get_or_create(&labels).set(1);
            self.policy_running
                .get_or_create(&labels)
                .set(i64::from(entry.policy.evaluations_running()));
            self.policy_memory
                .get_or_create(&labels)
                .set(i64::try_from(entry.policy.memory_in_use()).unwrap_or(i64::MAX));
            catch_up(
                &self.policy_log_dropped.get_or_create(&labels),
                entry.policy.log_lines_dropped(),
            );
        }
        for unloaded in set.unloaded() {
            let labels = PolicyLabels {
                policy: unloaded.name.clone(),
            };
            self.policy_loaded.get_or_create(&labels).set(0);
        }
    }

    /// Counts a review request.
    pub fn request(&self, endpoint: &str, result: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a configuration load.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.config_ok.set(i64::from(ok));
    }

    /// Records the state of the context caches (at scrape time: they change on their own).
    pub fn observe_context(&self, health: &[crate::context::KindHealth]) {
        for kind in health {
            let labels = ContextLabels {
                kind: kind.kind.to_string(),
            };
            self.context_synced
                .get_or_create(&labels)
                .set(i64::from(kind.synced));
            self.context_stale
                .get_or_create(&labels)
                .set(i64::from(kind.stale));
            self.context_objects
                .get_or_create(&labels)
                .set(i64::try_from(kind.objects).unwrap_or(i64::MAX));
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Brings `counter` up to `total`, a count kept elsewhere (read at scrape time).
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
