//! The trace spans of evaluations: one per policy evaluated in a review, with
//! its context lookups as children (`telemetry.rs` says where they go).
//!
//! The span is made by whoever knows the entry (the admission layer: name and
//! mode) and handed to the runtime, which fills in what only it knows (a slot
//! wait, the answer) and drops it when the evaluation ends. An evaluation
//! thread enters it while it runs the guest, so a lookup made from inside the
//! guest is the evaluation's child whatever thread it is on.

use tracing::Span;
use tracing::field::Empty;

use super::bindings::bouncer::policy::context::LookupError;

/// A span for one evaluation of `policy` in `mode` (`enforce` or `monitor`),
/// a child of the current span (the review's).
pub fn evaluation(policy: &str, mode: &'static str) -> Span {
    tracing::info_span!(
        target: "bouncer::evaluation",
        "evaluation",
        otel.name = %format_args!("policy {policy}"),
        otel.status_code = Empty,
        bouncer.policy = policy,
        bouncer.mode = mode,
        bouncer.effect = Empty,
        bouncer.failure = Empty,
        bouncer.slot_wait = false,
    )
}

/// What an evaluation answered, as its span records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Allowed, unchanged.
    Allowed,
    /// Denied (the entry's mode says whether the denial refused).
    Denied,
    /// Allowed with a change to the object.
    Mutated,
    /// Failed, with the kind of failure (`PolicyError::kind`).
    Failed(&'static str),
}

/// Records what the evaluation in `span` answered. Recorded where the answer
/// is made, so the span ends with the evaluation, not with the review.
pub fn record_result(span: &Span, answered: Answered) {
    if span.is_disabled() {
        return;
    }
    let effect = match answered {
        Answered::Allowed => "allowed",
        Answered::Denied => "denied",
        Answered::Mutated => "mutated",
        Answered::Failed(kind) => {
            span.record("bouncer.failure", kind);
            span.record("otel.status_code", "ERROR");
            "failed"
        }
    };
    span.record("bouncer.effect", effect);
}

/// Marks `span` as having waited for one of its policy's slots.
pub(crate) fn record_slot_wait(span: &Span) {
    span.record("bouncer.slot_wait", true);
}

/// A span for one context lookup made by the guest, a child of the
/// evaluation the calling thread has entered.
pub(crate) fn lookup(api_version: &str, kind: &str, namespace: Option<&str>) -> Span {
    tracing::info_span!(
        target: "bouncer::lookup",
        "lookup",
        otel.name = %format_args!("lookup {kind}"),
        bouncer.api_version = %crate::telemetry::bounded(api_version),
        bouncer.kind = %crate::telemetry::bounded(kind),
        bouncer.namespace = namespace.map(crate::telemetry::bounded).as_deref(),
        bouncer.found = Empty,
        bouncer.failure = Empty,
    )
}

/// Runs `lookup` in `span` (from [`lookup`]) and records its end: how many
/// objects it `found`, or why it failed.
pub(crate) fn traced_lookup<T>(
    span: Span,
    found: impl FnOnce(&T) -> usize,
    lookup: impl FnOnce() -> Result<T, LookupError>,
) -> Result<T, LookupError> {
    let result = span.in_scope(lookup);
    if !span.is_disabled() {
        match &result {
            Ok(answer) => span.record("bouncer.found", found(answer)),
            Err(LookupError::NotDeclared(why) | LookupError::Failed(why)) => {
                span.record("bouncer.failure", crate::telemetry::bounded(why).as_ref())
            }
        };
    }
    result
}
