//! An entry's `shadow`: a candidate version of the same policy (another
//! source, other settings, or both) that sees the entry's requests on live
//! traffic and never changes an answer (`admission::shadow`).

use std::time::Duration;

use serde::Deserialize;

use super::quantity::Quantity;

/// Evaluations of a candidate that may run at once unless its `shadow` says:
/// few, because a candidate is best effort and is dropped when they are busy.
pub const DEFAULT_SHADOW_CONCURRENCY: u32 = 2;

/// What a candidate changes from its entry; what it does not say is the entry's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShadowConfig {
    /// The candidate's component (same forms as an entry's `source`).
    pub source: Option<String>,
    /// The candidate's settings.
    pub settings: Option<serde_json::Value>,
    /// Deadline of one candidate evaluation; the entry's by default.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Memory cap of one candidate evaluation; the entry's by default.
    pub memory: Option<Quantity>,
    /// Candidate evaluations that may run at once (default 2); a review that
    /// finds them all busy is not shadowed, and counted as dropped.
    pub concurrency: Option<u32>,
}

/// The name a candidate runs under: in messages, metrics and its own quota.
/// `@` is not allowed in entry names, so it names no configured policy.
pub fn candidate_name(policy: &str) -> String {
    format!("{policy}@shadow")
}
