//! Traces as a collector receives them: `bouncer check` with the `OTEL_*`
//! environment naming a collector (a local OTLP/HTTP sink) sends one trace
//! per run, a span per object and one per policy under it; turned off, it
//! sends nothing; with the collector down, it answers as without.

use std::collections::HashMap;
use std::process::Output;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use crate::support::{bouncer_command, otlp_sink};

const MANIFESTS: &str = "examples/manifests/violating/";

fn check(env: &[(&str, &str)]) -> Output {
    let mut command = bouncer_command();
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    command
        .args(["check", "--color", "never", "-f", MANIFESTS])
        .envs(env.iter().copied())
        .output()
        .expect("bouncer runs")
}

/// Every span the sink received, with the resource's `service.name`.
fn received(sink: &otlp_sink::Sink) -> Vec<(String, Span)> {
    let mut spans = Vec::new();
    for body in sink.bodies() {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    AnyValue::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
    }
    spans
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

/// The object count of `check`'s summary line (`N objects in M files …`).
fn objects_checked(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| l.split_once(" objects in ")?.0.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"))
}

#[test]
fn check_sends_one_trace_per_run_with_a_span_per_object_and_per_policy() {
    let sink = otlp_sink::start(true);
    let plain = check(&[]);
    let traced = check(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url)]);
    // The same verdict and report, traced or not.
    assert_eq!(traced.status.code(), plain.status.code());
    assert_eq!(traced.stdout, plain.stdout);
    let stdout = String::from_utf8_lossy(&traced.stdout);

    let spans = received(&sink);
    assert!(!spans.is_empty(), "the sink received no span");
    assert!(spans.iter().all(|(service, _)| service == "bouncer"));
    let trace = &spans[0].1.trace_id;
    assert!(
        spans.iter().all(|(_, s)| s.trace_id == *trace),
        "one trace per run"
    );
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|(_, s)| (&s.span_id[..], s)).collect();
    let roots: Vec<&str> = spans
        .iter()
        .filter(|(_, s)| s.parent_span_id.is_empty())
        .map(|(_, s)| s.name.as_str())
        .collect();
    assert_eq!(roots, ["bouncer check"]);

    let objects: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name.starts_with("judge "))
        .collect();
    assert_eq!(objects.len(), objects_checked(&stdout));
    let policies: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name.starts_with("policy "))
        .collect();
    assert!(!policies.is_empty());
    for policy in &policies {
        let parent = by_id
            .get(&policy.parent_span_id[..])
            .map(|p| p.name.as_str());
        assert!(
            parent.is_some_and(|p| p.starts_with("judge ")),
            "{} is under {parent:?}, not an object's span",
            policy.name
        );
        assert!(
            attribute(policy, "bouncer.effect").is_some(),
            "{}",
            policy.name
        );
    }
    // The run denies something (the manifests violate the rules), and its
    // span says which policy did.
    assert!(
        policies
            .iter()
            .any(|p| attribute(p, "bouncer.effect").as_deref() == Some("denied")),
        "no policy span says denied"
    );
}

#[test]
fn the_exporter_can_be_turned_off_whatever_else_is_set() {
    let sink = otlp_sink::start(true);
    for off in [
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_SDK_DISABLED", "true"),
    ] {
        let output = check(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url), off]);
        assert_eq!(output.status.code(), Some(1), "{off:?}");
    }
    assert_eq!(sink.received(), (0, 0), "nothing may be exported when off");
}

#[test]
fn with_the_collector_down_check_answers_as_without_and_says_so_once() {
    let nowhere = format!("http://127.0.0.1:{}", crate::support::serve::free_port());
    let plain = check(&[]);
    let down = check(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &nowhere)]);
    assert_eq!(down.status.code(), plain.status.code());
    assert_eq!(down.stdout, plain.stdout);
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(
        stderr
            .matches("cannot export trace spans to the collector")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_grpc_protocol_is_refused_at_start_with_what_to_set() {
    let output = check(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "error: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: bouncer exports traces over OTLP/HTTP only"
        ),
        "{stderr}"
    );
}
