//! The API server's admission chain, run by bouncer itself: the mutating
//! webhook first, then the validating webhook on the object as mutated.
//!
//! `bouncer test`, `bouncer check` and `bouncer audit` answer "what happens
//! when I apply this?", so they run both endpoints in the order a cluster calls
//! them, through the same [`PolicySet`] review the server uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::admission::AdmissionResponse;
use serde_json::Value;

use super::synthetic::with_object;
use super::{Effect, Endpoint, PolicyResult, PolicySet, Request};
use crate::context::Cluster;

/// How long an offline chain may take in all; each policy still has its own deadline.
pub(super) const CHAIN_DEADLINE: Duration = Duration::from_secs(30);

/// What the chain made of one request.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The response the API server would act on: the mutating phase's when it
    /// refused, else the validating phase's, carrying the mutating patch.
    pub response: AdmissionResponse,
    /// The object after the mutating policies, when they changed it.
    pub patched: Option<Value>,
    /// What each policy that matched did, across both phases, in order.
    pub policies: Vec<PolicyResult>,
}

impl Admission {
    /// Whether the request would be admitted.
    pub fn allowed(&self) -> bool {
        self.response.allowed
    }
}

/// Runs `request` through the mutating then the validating webhook of `set`,
/// stopping after the mutating webhook when it refuses, as the API server does.
pub fn admit(set: &PolicySet, request: &Request, cluster: &Arc<dyn Cluster>) -> Admission {
    run(set, request, cluster, false)
}

/// Like [`admit`], but runs the validating webhook even after the mutating one
/// refused, so a report shows every policy's findings at once. The response is
/// still the one the API server would act on.
pub fn admit_for_report(
    set: &PolicySet,
    request: &Request,
    cluster: &Arc<dyn Cluster>,
) -> Admission {
    run(set, request, cluster, true)
}

fn run(
    set: &PolicySet,
    request: &Request,
    cluster: &Arc<dyn Cluster>,
    report_all: bool,
) -> Admission {
    let deadline = Instant::now() + CHAIN_DEADLINE;
    let review = |request: &Request, endpoint| {
        // No server to keep responsive: evaluate on this thread.
        set.review_here(request, endpoint, cluster, deadline)
    };
    let mutating = review(request, Endpoint::Mutate);
    let mut policies = Vec::new();
    merge(&mut policies, &mutating.records);
    if !mutating.response.allowed {
        if report_all {
            let validating = review(request, Endpoint::Validate);
            merge(&mut policies, &validating.records);
        }
        return Admission {
            response: mutating.response,
            patched: None,
            policies,
        };
    }
    // Validation sees the mutated object; without a patch, the request as sent.
    let patched_request = mutating
        .patched
        .as_ref()
        .and_then(|object| with_object(request, object).ok());
    let validating = review(
        patched_request.as_ref().unwrap_or(request),
        Endpoint::Validate,
    );
    merge(&mut policies, &validating.records);
    let (mut mutated, mut validated) = (mutating.response, validating.response);
    let warnings = merged_warnings(mutated.warnings.take(), validated.warnings.take());
    // Admitted: the mutating response carries the patch the API server applies.
    let mut response = if validated.allowed {
        mutated
    } else {
        validated
    };
    response.warnings = warnings;
    Admission {
        response,
        patched: mutating.patched,
        policies,
    }
}

/// Adds one phase's results; a policy that ran in both phases keeps one result.
fn merge(results: &mut Vec<PolicyResult>, phase: &[PolicyResult]) {
    for result in phase {
        let Some(merged) = results.iter_mut().find(|r| r.policy == result.policy) else {
            results.push(result.clone());
            continue;
        };
        merged.refused |= result.refused;
        merged.mutated |= result.mutated;
        if result.effect != Effect::Allowed {
            merged.effect = result.effect;
        }
        if merged.message.is_none() {
            merged.message = result.message.clone();
        }
        merged.error = merged.error.or(result.error);
        if merged.detail.is_none() {
            merged.detail = result.detail.clone();
        }
        merged.elapsed += result.elapsed;
        for warning in &result.warnings {
            if !merged.warnings.contains(warning) {
                merged.warnings.push(warning.clone());
            }
        }
    }
}

/// A policy running on both endpoints warns twice; the API server would show
/// the user both, but once is what they mean.
fn merged_warnings(first: Option<Vec<String>>, second: Option<Vec<String>>) -> Option<Vec<String>> {
    let mut all: Vec<String> = Vec::new();
    for warning in first.into_iter().chain(second).flatten() {
        if !all.contains(&warning) {
            all.push(warning);
        }
    }
    (!all.is_empty()).then_some(all)
}
