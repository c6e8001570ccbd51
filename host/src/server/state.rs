//! What every handler shares: the live policy set, metrics, status, the
//! cluster view and the shadow ledger, passed to handlers explicitly.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::metrics::Metrics;
use crate::admission::PolicySet;
use crate::context::Cluster;

/// Bounds on one review request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Answer within this time, whatever the policies do.
    pub deadline: Duration,
    /// Largest accepted body, in bytes.
    pub max_body: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            // Below the API server's default webhook timeout (10 s) and the chart's 3 s.
            deadline: Duration::from_secs(2),
            // The API server's own request size limit.
            max_body: 3 * 1024 * 1024,
        }
    }
}

/// How the configuration was last loaded, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct ConfigStatus {
    /// Where the configuration comes from.
    pub origin: String,
    /// The error of the last refused reload, if the last attempt failed.
    pub last_error: Option<String>,
    /// A change seen but not loaded yet (waiting for the files to settle).
    pub pending: Option<String>,
}

/// What every handler shares.
pub struct AppState {
    /// The live policy set, swapped whole on reload.
    pub policies: ArcSwap<PolicySet>,
    /// Metrics.
    pub metrics: Metrics,
    /// The state of the configuration.
    pub status: ArcSwap<ConfigStatus>,
    /// Bounds on requests.
    pub limits: RequestLimits,
    /// The cluster view: namespace labels for `namespaceSelector`, and the
    /// objects context-aware policies look up.
    pub cluster: Arc<dyn Cluster>,
    /// Set on SIGTERM: `/readyz` fails so endpoints drop the pod while it
    /// still answers.
    pub shutting_down: std::sync::atomic::AtomicBool,
    /// How instance slots are reset now, and why (see `policy/reset.rs`).
    pub reset: ArcSwap<crate::policy::ResetDecision>,
    /// What the shadow candidates said so far.
    pub shadows: super::shadows::ShadowLedger,
    /// What the companion did (`serve --companion`).
    pub companion: Arc<crate::companion::Stats>,
    /// The serving certificate (its expiry is a metric).
    pub(super) certs: Arc<super::tls::CertStore>,
}
