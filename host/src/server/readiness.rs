//! `/readyz`: whether this replica should get reviews, and in words what
//! it is serving: policies loaded and not, how instances are reset, reloads,
//! context caches, shadow candidates.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::shadows::Tally;
use super::state::AppState;
use crate::admission::shadow::Change;
use crate::admission::{Candidate, PolicySet};

pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state
        .shutting_down
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down (in-flight and new reviews are still answered)\n",
        )
            .into_response();
    }
    if let Err(waiting) = state.cluster.readiness() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {waiting}\n"),
        )
            .into_response();
    }
    let set = state.policies.load();
    let pending: Vec<String> = set
        .pending()
        .map(|u| format!("policy `{}`: {}", u.name, u.reason))
        .collect();
    if !pending.is_empty() {
        // Another replica that has its policies should take the traffic;
        // this one answers too (by failure mode) if it gets any.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {} policies are being pulled from their registries\n{}\n",
                pending.len(),
                pending.join("\n")
            ),
        )
            .into_response();
    }
    let count = set.entries().len();
    let status = state.status.load();
    let mut text = format!("ready: {count} policies loaded from {}\n", status.origin);
    let reset = state.reset.load();
    text.push_str(&format!(
        "instances are reset by {}: {}\n",
        match reset.path {
            crate::policy::ResetPath::Scan => "scan (only the pages a policy wrote)",
            crate::policy::ResetPath::Full => "full reset (every resident page)",
        },
        reset.why
    ));
    for unloaded in set.unloaded() {
        let answer = match unloaded.failure {
            crate::config::FailureMode::Closed => "the requests it matches are denied",
            crate::config::FailureMode::Open => {
                "the requests it matches are allowed with a warning"
            }
        };
        text.push_str(&format!(
            "policy `{}` is not loaded ({answer}): {}\n",
            unloaded.name, unloaded.reason
        ));
    }
    text.push_str(&shadows(&set, &state.shadows.tallies()));
    if let Some(error) = &status.last_error {
        text.push_str(&format!(
            "the last configuration reload was refused (the previous policies keep serving): {error}\n"
        ));
    }
    if let Some(pending) = &status.pending {
        text.push_str(&format!("{pending}\n"));
    }
    for health in state.cluster.health().iter().filter(|h| h.stale) {
        text.push_str(&format!(
            "context cache of {} is stale (serving its last state): {}\n",
            health.kind,
            health.error.as_deref().unwrap_or("watch failing")
        ));
    }
    text.into_response()
}

/// A line per shadowed entry: its candidate and what it said so far.
fn shadows(set: &PolicySet, tallies: &std::collections::BTreeMap<String, Tally>) -> String {
    let mut text = String::new();
    for entry in set.entries() {
        let name = entry.policy.name();
        match &entry.shadow {
            None => {}
            Some(Candidate::Unloaded { source, reason }) => {
                let _ = writeln!(
                    text,
                    "policy `{name}` has a shadow candidate ({source}) that is not loaded: {reason}"
                );
            }
            Some(Candidate::Loaded { source, .. }) => {
                let tally = tallies.get(name).cloned().unwrap_or_default();
                let disagreed: u64 = tally.disagreed.values().sum();
                let changes: Vec<String> = [
                    Change::NewlyDenied,
                    Change::NewlyAllowed,
                    Change::Patch,
                    Change::Failure,
                ]
                .iter()
                .filter_map(|c| {
                    let n = tally.disagreed.get(c).copied().unwrap_or(0);
                    (n > 0).then(|| format!("{n} {}", c.as_str()))
                })
                .collect();
                let changes = if changes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", changes.join(", "))
                };
                let _ = writeln!(
                    text,
                    "policy `{name}` is shadowed by {source}: {} compared, {disagreed} disagreed{changes}, \
                     {} not run (candidate slots busy), {} starved (no CPU to spare)",
                    tally.agreed + disagreed,
                    tally.busy,
                    tally.starved,
                );
            }
        }
    }
    text
}
