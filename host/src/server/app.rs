//! The HTTP application: routes, handlers and their shared state.
//!
//! Handlers are plain async functions over [`AppState`]; they decode, hand the
//! request to the policy set, and encode. They never touch wasmtime.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use http_body_util::BodyExt;
use tracing::Instrument as _;

use super::connection::Arrived;
use super::metrics::{ErrorLabels, EvaluationLabels, Metrics, PolicyLabels};
use super::state::AppState;
use crate::admission::Effect;
use crate::admission::{Budget, Endpoint, Request, Reviewed, review};
use crate::policy::Run;

/// The router of the webhook: reviews, and the probes and metrics too.
pub(super) fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/validate/{policy}", post(validate_one))
        .route("/mutate/{policy}", post(mutate_one))
        .merge(health_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The router of the plain-HTTP health port: probes and metrics only, so the
/// kubelet and Prometheus need no client certificate when reviews do.
pub(super) fn health_app(state: Arc<AppState>) -> Router {
    health_routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn health_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(super::readiness::readyz))
        .route("/metrics", get(metrics))
}

async fn validate(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    review(&state, Endpoint::Validate, None, request).await
}

async fn mutate(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    review(&state, Endpoint::Mutate, None, request).await
}

async fn validate_one(
    State(state): State<Arc<AppState>>,
    Path(policy): Path<String>,
    request: axum::extract::Request,
) -> Response {
    review(&state, Endpoint::Validate, Some(policy), request).await
}

async fn mutate_one(
    State(state): State<Arc<AppState>>,
    Path(policy): Path<String>,
    request: axum::extract::Request,
) -> Response {
    review(&state, Endpoint::Mutate, Some(policy), request).await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.observe_context(&state.cluster.health());
    let set = state.policies.load();
    state.metrics.observe_policies(&set);
    state.metrics.companion.observe(&state.companion);
    if let Some(expires) = state.certs.expires() {
        state.metrics.certificate_expiry.set(expires);
    }
    if let Some(config) = set.exceptions() {
        let exceptions = crate::admission::exceptions::honoured(config, &*state.cluster);
        let policies = set.entries().iter().map(|e| e.policy.name());
        state
            .metrics
            .rollout
            .observe_exceptions(&exceptions, policies);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    rejection(
        StatusCode::NOT_FOUND,
        format!("no endpoint {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    rejection(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// Reads `body` up to `max` bytes, leaving the rest unread in it.
async fn read_body(body: &mut Body, max: usize) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// A rejection sent before the request body was read to its end.
///
/// Dropping an unread HTTP/2 request body before the response is complete makes
/// hyper reset the stream, and clients report the reset instead of the status.
/// So the body is kept inside the response body and dropped only once the
/// response has been sent; the stream then ends with the status the client
/// can read.
fn early_rejection(status: StatusCode, reason: String, request_body: Body) -> Response {
    tracing::info!(status = status.as_u16(), %reason, "request rejected");
    let text = axum::body::Bytes::from(format!("{reason}\n"));
    let keep = Some(request_body);
    let tail = futures::stream::poll_fn(move |_| {
        let _ = &keep;
        std::task::Poll::Ready(None)
    });
    let stream = futures::stream::once(std::future::ready(Ok::<_, std::convert::Infallible>(text)))
        .chain(tail);
    (status, Body::from_stream(stream)).into_response()
}

/// A 4xx answer with a one-line reason, logged.
fn rejection(status: StatusCode, reason: String) -> Response {
    tracing::info!(status = status.as_u16(), %reason, "request rejected");
    (status, format!("{reason}\n")).into_response()
}

/// Decrements the in-flight gauge however the handler ends.
struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Answers one review, in a trace span that joins the API server's trace
/// when the request carries one (`telemetry.rs`).
async fn review(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    only: Option<String>,
    request: axum::extract::Request,
) -> Response {
    use tracing::field::Empty;
    let span = tracing::info_span!(
        target: "bouncer::review",
        "review",
        otel.name = %format_args!("review {}", endpoint.as_str()),
        otel.kind = "server",
        otel.status_code = Empty,
        bouncer.endpoint = endpoint.as_str(),
        bouncer.only = only.as_deref().map(crate::telemetry::bounded).as_deref(),
        bouncer.uid = Empty,
        bouncer.kind = Empty,
        bouncer.operation = Empty,
        bouncer.namespace = Empty,
        bouncer.name = Empty,
        bouncer.user = Empty,
        bouncer.result = Empty,
    );
    crate::telemetry::join(&span, request.headers());
    answer(state, endpoint, only, request, &span)
        .instrument(span.clone())
        .await
}

async fn answer(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    only: Option<String>,
    request: axum::extract::Request,
    span: &tracing::Span,
) -> Response {
    let started = Instant::now();
    let arrived = request
        .extensions()
        .get::<Arrived>()
        .map_or(started, |a| a.0);
    state.metrics.in_flight.inc();
    let _in_flight = InFlight(&state.metrics);
    let deadline = arrived + state.limits.deadline;
    let mut body = request.into_body();
    let invalid = |status: StatusCode, reason: String, body: Body| {
        state
            .metrics
            .request(endpoint.as_str(), "invalid", started.elapsed());
        span.record("bouncer.result", "invalid");
        span.record("otel.status_code", "ERROR");
        early_rejection(status, reason, body)
    };

    let decode = tracing::info_span!(target: "bouncer::review", "decode", bouncer.bytes = tracing::field::Empty);
    let request = match receive(state, &mut body, deadline)
        .instrument(decode.clone())
        .await
    {
        Ok((request, bytes)) => {
            decode.record("bouncer.bytes", bytes);
            request
        }
        Err(Unreadable::KeepBody(status, reason)) => return invalid(status, reason, body),
        Err(Unreadable::Read(status, reason)) => return invalid(status, reason, Body::empty()),
    };
    drop(decode);
    if !span.is_disabled() {
        trace_request(span, &request);
    }
    let set = state.policies.load_full();
    if let Some(name) = only.as_deref().filter(|name| !set.contains(name)) {
        return invalid(
            StatusCode::NOT_FOUND,
            format!("no policy named `{name}` is configured"),
            Body::empty(),
        );
    }

    let budget = Budget {
        run: Run::OffThread,
        deadline,
        max_object: state.limits.max_body,
    };
    let mut reviewed = set
        .review(&request, endpoint, only.as_deref(), &state.cluster, budget)
        .await;
    observe(state, endpoint, &request, &reviewed);
    shadow(state, std::mem::take(&mut reviewed.shadows));
    let result = if !reviewed.response.allowed {
        "denied"
    } else if reviewed.response.patch.is_some() {
        "mutated"
    } else {
        "allowed"
    };
    span.record("bouncer.result", result);
    state
        .metrics
        .request(endpoint.as_str(), result, started.elapsed());
    (
        [(header::CONTENT_TYPE, "application/json")],
        review::encode_body(&reviewed.response),
    )
        .into_response()
}

/// Why a review could not be read: the status and reason to answer with,
/// and whether the request body must be kept until the answer is sent
/// (`early_rejection`).
enum Unreadable {
    KeepBody(StatusCode, String),
    Read(StatusCode, String),
}

/// Reads the review's body, within the size limit and by `deadline`, and
/// decodes it; the request and its size in bytes.
async fn receive(
    state: &AppState,
    body: &mut Body,
    deadline: Instant,
) -> Result<(Request, usize), Unreadable> {
    let limit = state.limits.max_body;
    let bytes = match tokio::time::timeout_at(deadline.into(), read_body(body, limit)).await {
        Err(_) => {
            return Err(Unreadable::KeepBody(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time".into(),
            ));
        }
        Ok(Err(BodyError::TooLarge)) => {
            return Err(Unreadable::KeepBody(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than the {limit} byte limit"),
            ));
        }
        Ok(Err(BodyError::Read(error))) => {
            return Err(Unreadable::KeepBody(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {error}"),
            ));
        }
        Ok(Ok(bytes)) => bytes,
    };
    match review::decode(&bytes) {
        Ok(request) => Ok((request, bytes.len())),
        Err(error) => Err(Unreadable::Read(
            StatusCode::BAD_REQUEST,
            format!("{:#}", anyhow::Error::from(error)),
        )),
    }
}

/// What the review span says of the request: who wrote what, each attribute
/// bounded (a tenant chooses names).
fn trace_request(span: &tracing::Span, request: &Request) {
    use crate::telemetry::bounded;
    span.record("bouncer.uid", bounded(&request.uid).as_ref());
    span.record("bouncer.kind", bounded(&request.kind.kind).as_ref());
    span.record(
        "bouncer.operation",
        crate::policy::operation_name(crate::admission::wit::operation(&request.operation)),
    );
    if let Some(namespace) = request.namespace.as_deref().filter(|n| !n.is_empty()) {
        span.record("bouncer.namespace", bounded(namespace).as_ref());
    }
    span.record("bouncer.name", bounded(&request.name).as_ref());
    if let Some(user) = request.user_info.username.as_deref() {
        span.record("bouncer.user", bounded(user).as_ref());
    }
}

/// Runs the shadow candidates a review calls for, after its answer: they
/// can neither change nor delay it (`admission::shadow`).
fn shadow(state: &Arc<AppState>, work: crate::admission::shadow::ShadowWork) {
    for busy in &work.busy {
        record_shadow(state, busy);
    }
    if work.jobs.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let outcomes = futures::future::join_all(
            work.jobs
                .into_iter()
                .map(crate::admission::shadow::ShadowJob::run),
        )
        .await;
        for outcome in &outcomes {
            record_shadow(&state, outcome);
        }
    });
}

fn record_shadow(state: &AppState, outcome: &crate::admission::shadow::Shadowed) {
    state.metrics.rollout.shadowed(outcome);
    if state.shadows.record(outcome) {
        state.metrics.rollout.shadow_log_dropped.inc();
    }
}

/// Metrics per evaluation, and one log line per review that was not a plain allow.
fn observe(state: &AppState, endpoint: Endpoint, request: &Request, reviewed: &Reviewed) {
    let metrics = &state.metrics;
    for record in &reviewed.records {
        let result = record.effect.metric_label();
        let mode = record.mode.as_str();
        metrics
            .evaluations
            .get_or_create(&EvaluationLabels {
                policy: record.policy.clone(),
                mode: mode.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        metrics
            .evaluation_seconds
            .get_or_create(&PolicyLabels {
                policy: record.policy.clone(),
            })
            .observe(record.elapsed.as_secs_f64());
        if record.effect == Effect::Failed && !record.refused {
            metrics
                .failed_open
                .get_or_create(&PolicyLabels {
                    policy: record.policy.clone(),
                })
                .inc();
        }
        if record.excepted.is_some() {
            metrics
                .rollout
                .exceptions_applied
                .get_or_create(&PolicyLabels {
                    policy: record.policy.clone(),
                })
                .inc();
        }
        if let Some(kind) = record.error {
            metrics
                .policy_errors
                .get_or_create(&ErrorLabels {
                    policy: record.policy.clone(),
                    kind: kind.as_str().to_owned(),
                })
                .inc();
        }
    }

    let notable: Vec<_> = reviewed
        .records
        .iter()
        .filter(|r| r.effect != Effect::Allowed)
        .collect();
    let object = match &request.namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", request.name),
        _ => request.name.clone(),
    };
    let user = request.user_info.username.as_deref().unwrap_or("");
    if notable.is_empty() {
        tracing::debug!(uid = %request.uid, endpoint = endpoint.as_str(), kind = %request.kind.kind, %object, user, "review allowed");
        return;
    }
    let policies = notable
        .iter()
        .map(|r| r.policy.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let effects = notable
        .iter()
        .map(|r| r.effect.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let reason = notable
        .iter()
        // The log gets a failure in full (a trap's internals); the user got a sentence.
        .filter_map(|r| {
            let text = r.detail.as_deref().or(r.message.as_deref())?;
            Some(format!("{}: {text}", r.policy))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let allowed = reviewed.response.allowed;
    if notable.iter().any(|r| r.effect == Effect::Failed) {
        tracing::warn!(uid = %request.uid, endpoint = endpoint.as_str(), kind = %request.kind.kind, %object, user, policy = %policies, effect = %effects, allowed, %reason, "review with failing policy");
    } else {
        tracing::info!(uid = %request.uid, endpoint = endpoint.as_str(), kind = %request.kind.kind, %object, user, policy = %policies, effect = %effects, allowed, %reason, "review");
    }
}
