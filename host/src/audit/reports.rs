//! Audit findings as reports in the cluster, for Policy Reporter and other
//! consumers: one `openreports.io/v1alpha1` Report per namespace and a
//! ClusterReport for cluster-scoped objects (or `wgpolicyk8s.io/v1alpha2`
//! PolicyReports for older consumers).
//!
//! Each run rewrites the reports it owns (server-side apply, field manager
//! `bouncer-audit`) from what it found, so a fixed or deleted object's result
//! is gone on the next run, and deletes those of its namespaces where nothing
//! is left to report. Reports are bounded: results are capped per report
//! (failures first) by count and by serialized bytes (etcd refuses objects
//! over 1.5 MiB), and messages are shortened; the summary still counts all.
//!
//! What a run could not see it does not rewrite: when a kind's list failed,
//! the results the previous reports held for that kind are carried over, and
//! no report that may hold them is deleted. A report that cannot be written
//! does not stop the others.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::findings::{AuditReport, Counts, Unseen};
use crate::admission::Verdict;
use crate::findings::Finding;
pub(super) use crate::openreports::MANAGED_BY;
use crate::openreports::{ReportResult, time_now};

/// The name of bouncer's report in each namespace, and of its cluster report.
pub(super) const REPORT_NAME: &str = "bouncer-audit";
/// The most a report may weigh, serialized: etcd's request limit is 1.5 MiB,
/// and the API server adds its own fields (managedFields) to what it stores.
pub(super) const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// Which report kinds to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `openreports.io/v1alpha1` Report and ClusterReport.
    Openreports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    Wgpolicyk8s,
}

impl Format {
    fn resource(self, cluster: bool) -> ApiResource {
        let (group, version, kind) = match (self, cluster) {
            (Self::Openreports, false) => ("openreports.io", "v1alpha1", "Report"),
            (Self::Openreports, true) => ("openreports.io", "v1alpha1", "ClusterReport"),
            (Self::Wgpolicyk8s, false) => ("wgpolicyk8s.io", "v1alpha2", "PolicyReport"),
            (Self::Wgpolicyk8s, true) => ("wgpolicyk8s.io", "v1alpha2", "ClusterPolicyReport"),
        };
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
    }
}

/// How reports are written.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The report kinds.
    pub format: Format,
    /// Results per report at most.
    pub max_results: usize,
    /// Include passing results (they count in the summary either way).
    pub passes: bool,
}

/// What writing the reports did.
#[derive(Debug, Default)]
pub struct Written {
    /// Reports created or updated.
    pub written: usize,
    /// Stale reports deleted.
    pub deleted: usize,
    /// Results left out because a report was full.
    pub dropped: usize,
    /// Results carried over from the previous reports for kinds this run
    /// could not list.
    pub carried: usize,
    /// Reports that could not be written or deleted (the others were).
    pub failed: Vec<ReportError>,
}

/// Writing reports failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report kind is not served: its CRD is missing.
    #[error(
        "the cluster does not serve {0} (its CRD is not installed); install the OpenReports CRDs \
         (the bouncer chart ships them in crds/) or pick another --report-format"
    )]
    NotServed(String),
    /// The API server refused a write.
    #[error("writing {what}: {message}")]
    Write {
        /// Which report.
        what: String,
        /// Why, in words ([`crate::context::explain`]).
        message: String,
    },
}

/// Writes the reports for `report` and removes stale ones.
///
/// # Errors
/// The report kind is not served. A refused write or delete does not stop
/// the others: it is in [`Written::failed`].
pub async fn write(
    client: &kube::Client,
    report: &AuditReport,
    options: &ReportOptions,
) -> Result<Written, ReportError> {
    let now = time_now();
    let mut by_scope: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for finding in &report.results {
        if finding.result == Verdict::Pass && !options.passes {
            continue;
        }
        by_scope
            .entry(finding.object.namespace.as_deref().unwrap_or_default())
            .or_default()
            .push(result(finding, &now));
    }
    let mut written = Written::default();
    // A scope where some kind went unseen keeps that kind's results even
    // when this run found nothing else there.
    let previous = if report.unseen.is_empty() {
        Vec::new()
    } else {
        existing_scopes(client, report, options).await?
    };
    for scope in &previous {
        if report.unseen.iter().any(|u| u.covers(scope)) {
            by_scope.entry(scope.as_str()).or_default();
        }
    }
    let manager = PatchParams::apply("bouncer-audit").force();
    for (scope, results) in &mut by_scope {
        let cluster = scope.is_empty();
        let resource = options.format.resource(cluster);
        let api: Api<DynamicObject> = if cluster {
            Api::all_with(client.clone(), &resource)
        } else {
            Api::namespaced_with(client.clone(), scope, &resource)
        };
        let mut counts = report.scopes.get(*scope).copied().unwrap_or_default();
        let blind: Vec<&Unseen> = report.unseen.iter().filter(|u| u.covers(scope)).collect();
        if !blind.is_empty() {
            match api.get_opt(REPORT_NAME).await {
                Ok(previous) => {
                    let carried = carry_over(previous.as_ref(), &blind, &mut counts);
                    written.carried += carried.len();
                    results.extend(carried);
                }
                Err(source) => {
                    // Without the previous results this report would drop them.
                    written.failed.push(classify(source, &resource, scope));
                    continue;
                }
            }
        }
        let (object, dropped) = build(options, &resource, scope, std::mem::take(results), counts);
        written.dropped += dropped;
        match api
            .patch(REPORT_NAME, &manager, &Patch::Apply(&object))
            .await
        {
            Ok(_) => written.written += 1,
            Err(source) => match classify(source, &resource, scope) {
                error @ ReportError::NotServed(_) => return Err(error),
                error => written.failed.push(error),
            },
        }
    }
    let kept: BTreeSet<&str> = by_scope.keys().copied().collect();
    remove_stale(client, report, options, &kept, &mut written).await?;
    Ok(written)
}

/// The audited scopes (`""`: the cluster) that hold one of bouncer's reports.
async fn existing_scopes(
    client: &kube::Client,
    report: &AuditReport,
    options: &ReportOptions,
) -> Result<Vec<String>, ReportError> {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let namespaced = options.format.resource(false);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &namespaced);
    let mut scopes: Vec<String> = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| classify(source, &namespaced, "*"))?
        .items
        .into_iter()
        .filter_map(|r| r.metadata.namespace)
        .filter(|ns| {
            report
                .audited_namespaces
                .as_ref()
                .is_none_or(|audited| audited.contains(ns))
        })
        .collect();
    if report.audited_namespaces.is_none() {
        let cluster = options.format.resource(true);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &cluster);
        if let Ok(Some(_)) = api.get_metadata_opt(REPORT_NAME).await {
            scopes.push(String::new());
        }
    }
    Ok(scopes)
}

/// The previous report's results about objects of `blind` kinds, counted
/// into `counts`: this run did not see those objects, so what was said of
/// them stands.
fn carry_over(
    previous: Option<&DynamicObject>,
    blind: &[&Unseen],
    counts: &mut Counts,
) -> Vec<Value> {
    let Some(results) = previous
        .and_then(|p| p.data.get("results"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    for result in results {
        let resource = &result["resources"][0];
        let unseen = blind.iter().any(|u| {
            resource["apiVersion"].as_str() == Some(u.api_version.as_str())
                && resource["kind"].as_str() == Some(u.kind.as_str())
        });
        if !unseen {
            continue;
        }
        match result["result"].as_str() {
            Some("fail") => counts.fail += 1,
            Some("warn") => counts.warn += 1,
            Some("error") => counts.error += 1,
            Some("pass") => counts.pass += 1,
            _ => {}
        }
        kept.push(result.clone());
    }
    kept
}

fn classify(source: kube::Error, resource: &ApiResource, scope: &str) -> ReportError {
    match &source {
        kube::Error::Api(status)
            if status.code == 404
                && status.reason == "NotFound"
                && status.details.as_ref().is_none_or(|d| d.name.is_empty()) =>
        {
            ReportError::NotServed(format!(
                "{}/{} {}",
                resource.group, resource.version, resource.kind
            ))
        }
        _ => ReportError::Write {
            what: if scope.is_empty() {
                format!("{} {REPORT_NAME}", resource.kind)
            } else {
                format!("{} {scope}/{REPORT_NAME}", resource.kind)
            },
            message: crate::context::explain(&source),
        },
    }
}

/// The report object for one scope, and how many results did not fit: at
/// most `max_results`, failures first, and no more than fit in
/// [`MAX_REPORT_BYTES`] serialized.
fn build(
    options: &ReportOptions,
    resource: &ApiResource,
    scope: &str,
    mut results: Vec<Value>,
    counts: Counts,
) -> (Value, usize) {
    let total = results.len();
    // Failures first, so a full report keeps what matters most.
    results.sort_by_key(|r| match r["result"].as_str() {
        Some("fail") => 0,
        Some("error") => 1,
        Some("warn") => 2,
        _ => 3,
    });
    results.truncate(options.max_results);
    let mut metadata = json!({
        "name": REPORT_NAME,
        "labels": {MANAGED_BY.0: MANAGED_BY.1},
    });
    if !scope.is_empty() {
        metadata["namespace"] = json!(scope);
    }
    let mut object = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "summary": {
            "pass": counts.pass,
            "fail": counts.fail,
            "warn": counts.warn,
            "error": counts.error,
            "skip": counts.skip,
        },
        "results": [],
    });
    if options.format == Format::Openreports {
        let mut filter = vec!["fail", "warn", "error"];
        if options.passes {
            filter.push("pass");
        }
        object["source"] = json!("bouncer");
        object["configuration"] =
            json!({"limits": {"maxResults": options.max_results, "statusFilter": filter}});
    }
    let mut size = serde_json::to_vec(&object).map_or(0, |b| b.len());
    let mut kept = Vec::with_capacity(results.len());
    for result in results {
        let cost = serde_json::to_vec(&result).map_or(0, |b| b.len()) + 1;
        if size + cost > MAX_REPORT_BYTES {
            break;
        }
        size += cost;
        kept.push(result);
    }
    let dropped = total - kept.len();
    object["results"] = Value::Array(kept);
    (object, dropped)
}

fn result(finding: &Finding, now: &Value) -> Value {
    ReportResult {
        source: "bouncer",
        policy: &finding.policy,
        result: finding.result.as_str(),
        // Monitor-mode findings are reported, not enforced.
        scored: finding.result != Verdict::Warn,
        message: finding
            .message
            .clone()
            .unwrap_or_else(|| finding.warnings.join("; ")),
        object: &finding.object,
        properties: json!({"mode": serde_json::to_value(finding.mode).unwrap_or_default()}),
    }
    .to_json(now)
}

/// Deletes bouncer's reports in the audited scopes that got none this run:
/// every object there is fixed, gone, or in a namespace being deleted. A
/// scope where some kind could not be listed keeps its report.
async fn remove_stale(
    client: &kube::Client,
    report: &AuditReport,
    options: &ReportOptions,
    written: &BTreeSet<&str>,
    outcome: &mut Written,
) -> Result<(), ReportError> {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let blind = |scope: &str| report.unseen.iter().any(|u| u.covers(scope));
    let namespaced = options.format.resource(false);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &namespaced);
    let existing = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| classify(source, &namespaced, "*"))?;
    for stale in existing.items {
        let (Some(ns), Some(name)) = (stale.metadata.namespace, stale.metadata.name) else {
            continue;
        };
        let in_scope = report
            .audited_namespaces
            .as_ref()
            .is_none_or(|audited| audited.contains(&ns));
        if in_scope && !written.contains(ns.as_str()) && !blind(&ns) {
            match delete(client, &namespaced, Some(&ns), &name).await {
                Ok(()) => outcome.deleted += 1,
                Err(error) => outcome.failed.push(error),
            }
        }
    }
    if report.audited_namespaces.is_none() && !written.contains("") && !blind("") {
        let resource = options.format.resource(true);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        match api.get_metadata_opt(REPORT_NAME).await {
            Ok(Some(_)) => match delete(client, &resource, None, REPORT_NAME).await {
                Ok(()) => outcome.deleted += 1,
                Err(error) => outcome.failed.push(error),
            },
            Ok(None) => {}
            Err(source) => outcome.failed.push(classify(source, &resource, "")),
        }
    }
    Ok(())
}

async fn delete(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), ReportError> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(classify(source, resource, namespace.unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::findings::ObjectRef;

    fn finding(name: &str, result: Verdict, message: &str) -> Finding {
        Finding {
            object: ObjectRef {
                api_version: "networking.k8s.io/v1".into(),
                kind: "Ingress".into(),
                namespace: Some("shop".into()),
                name: name.into(),
                uid: Some(format!("uid-{name}")),
            },
            policy: "alb-target-type-ip".into(),
            mode: if result == Verdict::Warn {
                Mode::Monitor
            } else {
                Mode::Enforce
            },
            at: None,
            allowed: result != Verdict::Fail,
            result,
            message: Some(message.into()),
            warnings: Vec::new(),
            patched: None,
            patch: None,
        }
    }

    fn options(max_results: usize) -> ReportOptions {
        ReportOptions {
            format: Format::Openreports,
            max_results,
            passes: false,
        }
    }

    #[test]
    fn a_full_report_keeps_failures_first_and_counts_everything() {
        let findings = [
            finding("a", Verdict::Warn, "would be refused"),
            finding("b", Verdict::Fail, "refused"),
            finding("c", Verdict::Error, "trapped"),
            finding("d", Verdict::Fail, "refused too"),
        ];
        let now = json!({"seconds": 1, "nanos": 0});
        let results: Vec<Value> = findings.iter().map(|f| result(f, &now)).collect();
        let counts = Counts {
            pass: 7,
            fail: 2,
            warn: 1,
            error: 1,
            skip: 0,
        };
        let resource = Format::Openreports.resource(false);
        let (report, dropped) = build(&options(2), &resource, "shop", results, counts);
        assert_eq!(dropped, 2);
        let results = report["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| r["result"] == "fail"), "{results:?}");
        assert_eq!(
            report["summary"],
            json!({"pass": 7, "fail": 2, "warn": 1, "error": 1, "skip": 0})
        );
        assert_eq!(report["metadata"]["namespace"], "shop");
        assert_eq!(report["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
        assert_eq!(report["kind"], "Report");
        assert_eq!(report["configuration"]["limits"]["maxResults"], 2);
        assert_eq!(results[0]["resources"][0]["uid"], "uid-b");
    }

    #[test]
    fn monitor_findings_are_not_scored_and_wgpolicyk8s_has_no_openreports_fields() {
        let findings = [finding("a", Verdict::Warn, "would be refused")];
        let results: Vec<Value> = findings.iter().map(|f| result(f, &json!(null))).collect();
        let resource = Format::Wgpolicyk8s.resource(true);
        let options = ReportOptions {
            format: Format::Wgpolicyk8s,
            ..options(10)
        };
        let (report, _) = build(&options, &resource, "", results, Counts::default());
        assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(report["kind"], "ClusterPolicyReport");
        assert!(report["metadata"].get("namespace").is_none());
        assert!(report.get("source").is_none() && report.get("configuration").is_none());
        assert_eq!(report["results"][0]["scored"], false);
        assert_eq!(report["results"][0]["properties"]["mode"], "monitor");
    }

    #[test]
    fn a_report_stays_under_etcds_limit_whatever_the_result_count() {
        let long = "x".repeat(crate::openreports::MAX_MESSAGE);
        let findings: Vec<Finding> = (0..3000)
            .map(|i| {
                finding(
                    &format!("ingress-{i}-{}", "n".repeat(200)),
                    Verdict::Fail,
                    &long,
                )
            })
            .collect();
        let now = json!({"seconds": 1, "nanos": 0});
        let results: Vec<Value> = findings.iter().map(|f| result(f, &now)).collect();
        let resource = Format::Openreports.resource(false);
        let (report, dropped) = build(
            &options(5000),
            &resource,
            "shop",
            results,
            Counts::default(),
        );
        let size = serde_json::to_vec(&report).unwrap().len();
        assert!(size <= MAX_REPORT_BYTES, "{size}");
        let kept = report["results"].as_array().unwrap().len();
        assert!(kept > 100, "{kept}");
        assert_eq!(kept + dropped, 3000);
    }

    #[test]
    fn results_of_unseen_kinds_are_carried_over_and_counted() {
        let previous: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "openreports.io/v1alpha1", "kind": "Report",
            "metadata": {"name": REPORT_NAME, "namespace": "shop"},
            "results": [
                {"result": "fail", "resources": [{"apiVersion": "v1", "kind": "Service", "name": "a"}]},
                {"result": "warn", "resources": [{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "b"}]},
            ],
        }))
        .unwrap();
        let unseen = Unseen {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: None,
        };
        let mut counts = Counts::default();
        let kept = carry_over(Some(&previous), &[&unseen], &mut counts);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["resources"][0]["name"], "a");
        assert_eq!(counts.fail, 1);
        assert_eq!(counts.warn, 0);
        assert!(unseen.covers("shop") && unseen.covers(""));
        let here = Unseen {
            namespace: Some("shop".into()),
            ..unseen
        };
        assert!(here.covers("shop") && !here.covers("web"));
    }
}
