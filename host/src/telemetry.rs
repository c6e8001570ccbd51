//! OpenTelemetry traces of reviews, `check` and `audit` runs.
//!
//! Off unless the standard `OTEL_*` environment says where to send them
//! ([`Tracing::from_env`]). Spans are ordinary `tracing` spans under the
//! `bouncer` target; when tracing is off no layer wants them, so each span
//! macro is an atomic load and nothing is built. When on, a
//! `tracing-opentelemetry` layer turns them into OpenTelemetry spans and the
//! SDK's batch processor exports them over OTLP/HTTP from a thread of its own:
//! a review only ever pushes into its bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`,
//! 2,048 spans), which drops spans when full, so a collector that is down or
//! slow can neither block a review nor grow memory.
//!
//! A review span joins the API server's trace when the request carries W3C
//! trace context (`traceparent`), which kube-apiserver sends to webhooks when
//! its own tracing is on ([`join`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer;

/// The most bytes of an attribute taken from outside (an object's name, a
/// policy's message): a tenant's 1 MiB name must not become a 1 MiB span.
pub const ATTRIBUTE_BYTES: usize = 256;

/// How long a run's end waits for its last spans to be exported.
const FLUSH_WAIT: Duration = Duration::from_secs(3);

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP protocol asked for is not one bouncer speaks.
    #[error(
        "{variable}={value}: bouncer exports traces over OTLP/HTTP only; set it to \
         http/protobuf and point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port \
         (4318 by default)"
    )]
    Protocol {
        /// The variable that named it.
        variable: &'static str,
        /// What it said.
        value: String,
    },
    /// The exporter could not be built from the environment.
    #[error("cannot set up the OTLP trace exporter from the OTEL_* environment")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// The trace pipeline of this process, while tracing is on.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// The pipeline the environment asks for, or `None` (the default) when it
    /// asks for none.
    ///
    /// Tracing is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER=otlp`;
    /// `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true` turn it off
    /// whatever else is set. The SDK reads the rest itself: sampler
    /// (`OTEL_TRACES_SAMPLER`, `_ARG`), batch and span limits (`OTEL_BSP_*`,
    /// `OTEL_SPAN_*`), resource (`OTEL_SERVICE_NAME`, default `bouncer`;
    /// `OTEL_RESOURCE_ATTRIBUTES`), headers, timeout and compression
    /// (`OTEL_EXPORTER_OTLP_*`).
    ///
    /// # Errors
    /// A protocol other than `http/protobuf`, or an exporter the SDK cannot build.
    pub fn from_env() -> Result<Option<Self>, TelemetryError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, TelemetryError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let exporter = set("OTEL_TRACES_EXPORTER").map(|v| v.to_ascii_lowercase());
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
        match exporter.as_deref() {
            Some("none") => return Ok(None),
            Some("otlp") => {}
            _ if endpoint.is_some() => {}
            _ => return Ok(None),
        }
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = set(variable) {
                if value != "http/protobuf" {
                    return Err(TelemetryError::Protocol { variable, value });
                }
                break;
            }
        }
        // The exporter's HTTP client speaks TLS to an `https://` collector.
        crate::crypto::install_default_provider();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(TelemetryError::Exporter)?;
        // Where the SDK sends them (its own default when neither is set).
        let endpoint = endpoint.unwrap_or_else(|| "http://localhost:4318".to_owned());
        let exporter = Reporting::new(exporter, endpoint);
        let mut resource = opentelemetry_sdk::Resource::builder();
        if set("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("bouncer");
        }
        let resource = resource
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Some(Self { provider }))
    }

    /// The layer that turns bouncer's spans into OpenTelemetry spans. It
    /// takes spans only: log lines stay logs, and a span's size stays bounded.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("bouncer"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("bouncer")
            }))
    }

    /// Exports what is still queued, waiting at most a few seconds: a run's
    /// end is never held up for long by a collector that is away.
    pub fn finish(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(FLUSH_WAIT) {
            tracing::warn!(
                %error,
                "trace spans not all exported within {FLUSH_WAIT:?} at exit; is the collector at \
                 OTEL_EXPORTER_OTLP_ENDPOINT reachable?"
            );
        }
    }
}

/// The OTLP exporter, saying when exports fail: at the first failure, then at
/// most once a minute with how many spans were lost since, so a collector
/// that is away shows in the log without flooding it.
#[derive(Debug)]
struct Reporting<E> {
    inner: E,
    endpoint: String,
    lost: AtomicU64,
    said: Mutex<Option<Instant>>,
}

/// How often a failing exporter says so again.
const REPORT_EVERY: Duration = Duration::from_secs(60);

impl<E> Reporting<E> {
    fn new(inner: E, endpoint: String) -> Self {
        Self {
            inner,
            endpoint,
            lost: AtomicU64::new(0),
            said: Mutex::new(None),
        }
    }

    fn failed(&self, spans: usize, error: &OTelSdkError) {
        let lost = self.lost.fetch_add(spans as u64, Ordering::Relaxed) + spans as u64;
        let mut said = self.said.lock().unwrap_or_else(PoisonError::into_inner);
        if said.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
            return;
        }
        *said = Some(Instant::now());
        tracing::warn!(
            endpoint = %self.endpoint,
            %error,
            lost,
            "cannot export trace spans to the collector; they are dropped (answers are not \
             affected); check OTEL_EXPORTER_OTLP_ENDPOINT and the collector"
        );
    }
}

impl<E: SpanExporter> SpanExporter for Reporting<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len();
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            if let Err(error) = &result {
                self.failed(spans, error);
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Makes `span` a child of the trace `headers` carry (W3C `traceparent` and
/// `tracestate`), as kube-apiserver sends them to webhooks when its own
/// tracing is on. No-op when tracing is off or there is no trace context.
pub fn join(span: &tracing::Span, headers: &http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// The span of one object judged by `check` or `audit` (not by the webhook:
/// its review span says more), with the evaluations as children. `at` says
/// where the object came from: `file:line`, or its namespace; it is only
/// formatted when tracing is on.
pub fn object_span(kind: &str, name: &str, at: std::fmt::Arguments<'_>) -> tracing::Span {
    tracing::info_span!(
        target: "bouncer::judge",
        "object",
        otel.name = %format_args!("judge {}", bounded(kind)),
        bouncer.kind = %bounded(kind),
        bouncer.name = %bounded(name),
        bouncer.at = %bounded(&at.to_string()),
    )
}

/// `text` cut to [`ATTRIBUTE_BYTES`] at a character boundary, marked `…`
/// when cut: for attributes whose text comes from outside.
pub fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= ATTRIBUTE_BYTES {
        return text.into();
    }
    format!("{}…", &text[..text.floor_char_boundary(ATTRIBUTE_BYTES)]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Option<Tracing>, TelemetryError> {
        Tracing::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn tracing_is_off_unless_an_endpoint_or_the_exporter_asks_for_it() {
        assert!(from(&[]).unwrap().is_none());
        assert!(
            from(&[("OTEL_TRACES_SAMPLER", "always_on")])
                .unwrap()
                .is_none()
        );
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(from(&[endpoint]).unwrap().is_some());
        assert!(from(&[("OTEL_TRACES_EXPORTER", "otlp")]).unwrap().is_some());
        assert!(
            from(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])
                .unwrap()
                .is_none()
        );
        assert!(
            from(&[endpoint, ("OTEL_SDK_DISABLED", "true")])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_grpc_protocol_is_refused_with_what_to_set_instead() {
        let error = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .err()
        .expect("refused");
        let text = error.to_string();
        assert!(
            text.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: "),
            "{text}"
        );
        assert!(text.contains("http/protobuf"), "{text}");
    }

    #[test]
    fn long_attributes_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(ATTRIBUTE_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= ATTRIBUTE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
