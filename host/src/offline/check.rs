//! Checking manifests against a policy set, offline: every object is admitted
//! as a CREATE through the mutating then validating webhook, and what each
//! policy said is recorded with the object's `file:line`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::admission::{PolicySet, Request, RequestSpec};
use crate::context::Cluster;
use crate::context::Snapshot;
use crate::findings::{Finding, ObjectRef, Place, judge};
use crate::manifest::Manifests;
use crate::manifest::placement::namespace_of;

/// Everything `bouncer check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// One entry per object and policy evaluated, in file order.
    pub results: Vec<Finding>,
    /// Documents and files that could not be checked.
    pub errors: Vec<InputError>,
    /// Objects defined twice: only one of each is the cluster state lookups see.
    pub duplicates: Vec<Duplicate>,
    /// Counts.
    pub summary: CheckSummary,
}

/// A document or file that could not be checked.
#[derive(Debug, Clone, Serialize)]
pub struct InputError {
    /// The file.
    pub file: String,
    /// The line (0 when the whole file is unreadable).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// An object defined twice among the manifests and `--context` files.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Duplicate {
    /// `Kind/namespace/name` (`Kind/name` when cluster-scoped).
    pub object: String,
    /// The file of the ignored definition.
    pub file: String,
    /// The line its document starts on.
    pub line: usize,
    /// Where the ignored definition is: `file:line`.
    pub ignored: String,
    /// Where the definition lookups see is: `file:line`.
    pub used: String,
}

/// Counts for the closing line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckSummary {
    /// Files read.
    pub files: usize,
    /// Objects checked.
    pub objects: usize,
    /// Objects at least one policy refused.
    pub denied: usize,
    /// Objects admitted with warnings (monitor-mode denials included).
    pub warned: usize,
    /// Objects a mutating policy would change.
    pub patched: usize,
    /// Documents or files that could not be checked.
    pub errors: usize,
}

/// Checks every object of `manifests` against `set`; objects naming no
/// namespace are checked in `namespace`. The manifests and the `context`
/// objects together stand for the cluster's state: context-aware policies look
/// them up, and `Namespace` labels feed `namespaceSelector` rules.
pub fn check(
    set: &PolicySet,
    manifests: &Manifests,
    context: &[crate::manifest::ManifestObject],
    namespace: &str,
) -> CheckReport {
    // One trace per run when tracing is on (`telemetry.rs`): a span per object.
    let run = tracing::info_span!(
        target: "bouncer::check",
        "check",
        otel.name = "bouncer check",
        bouncer.files = manifests.files,
        bouncer.objects = manifests.objects.len(),
    );
    let _run = run.enter();
    let (cluster, duplicates) = cluster_of(manifests, context, namespace);
    let mut report = CheckReport {
        results: Vec::new(),
        errors: input_errors(manifests),
        duplicates,
        summary: CheckSummary {
            files: manifests.files,
            ..CheckSummary::default()
        },
    };
    for (index, object) in manifests.objects.iter().enumerate() {
        let findings = match judge_object(set, object, index, namespace, &cluster) {
            Ok(findings) => findings,
            Err(error) => {
                report.errors.push(error);
                continue;
            }
        };
        report.summary.objects += 1;
        let before = report.results.len();
        report.results.extend(findings);
        let found = &report.results[before..];
        if found.iter().any(|f| !f.allowed) {
            report.summary.denied += 1;
        } else if found
            .iter()
            .any(|f| !f.warnings.is_empty() || f.message.is_some())
        {
            report.summary.warned += 1;
        }
        if found.iter().any(|f| f.patched.is_some()) {
            report.summary.patched += 1;
        }
    }
    report.summary.errors = report.errors.len();
    report
}

/// The manifests and `context` objects as the cluster's state, and the
/// objects defined twice among them.
pub(super) fn cluster_of(
    manifests: &Manifests,
    context: &[crate::manifest::ManifestObject],
    namespace: &str,
) -> (Arc<dyn Cluster>, Vec<Duplicate>) {
    let all: Vec<&crate::manifest::ManifestObject> =
        manifests.objects.iter().chain(context).collect();
    let snapshot = Snapshot::new(all.iter().map(|o| o.value()), namespace);
    let place = |o: &crate::manifest::ManifestObject| match o.origin.item {
        Some(item) => format!("{}:{} (items[{item}])", o.origin.file, o.origin.line),
        None => format!("{}:{}", o.origin.file, o.origin.line),
    };
    let duplicates = snapshot
        .duplicates()
        .iter()
        .map(|&(kept, ignored)| {
            let object = all[ignored];
            let value = object.value();
            let namespace = namespace_of(
                &value,
                value
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .and_then(|v| v.split_once('/'))
                    .map_or("", |(g, _)| g),
                object.kind(),
                namespace,
            );
            Duplicate {
                object: match namespace {
                    Some(ns) => format!("{}/{ns}/{}", object.kind(), object.name()),
                    None => format!("{}/{}", object.kind(), object.name()),
                },
                file: object.origin.file.clone(),
                line: object.origin.line,
                ignored: place(object),
                used: place(all[kept]),
            }
        })
        .collect();
    (Arc::new(snapshot), duplicates)
}

/// The documents and files of `manifests` that could not be read.
pub(super) fn input_errors(manifests: &Manifests) -> Vec<InputError> {
    manifests
        .errors
        .iter()
        .map(|e| InputError {
            file: e.origin.file.clone(),
            line: e.origin.line,
            message: e.message.clone(),
        })
        .collect()
}

/// What each policy of `set` says of the `index`th object of the manifests,
/// admitted as a CREATE in `cluster`.
pub(super) fn judge_object(
    set: &PolicySet,
    object: &crate::manifest::ManifestObject,
    index: usize,
    namespace: &str,
    cluster: &Arc<dyn Cluster>,
) -> Result<Vec<Finding>, InputError> {
    let span = crate::telemetry::object_span(
        object.kind(),
        object.name(),
        format_args!("{}:{}", object.origin.file, object.origin.line),
    );
    let _judging = span.enter();
    let value = object.value();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let spec = RequestSpec::create(value, namespace);
    let at = Place {
        file: object.origin.file.clone(),
        line: object.origin.line,
        item: object.origin.item,
    };
    let name = |request: &Request| ObjectRef {
        api_version: api_version.clone(),
        kind: object.kind().to_owned(),
        namespace: request.namespace.clone(),
        name: object.name().to_owned(),
        uid: None,
    };
    let uid = format!("bouncer-check-{index}");
    judge(set, &spec, &uid, cluster, name, Some(&at), true).map_err(|error| InputError {
        file: object.origin.file.clone(),
        line: object.origin.line,
        message: error.to_string(),
    })
}
