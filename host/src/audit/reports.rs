//! Audit findings as reports in the cluster, for Policy Reporter and other
//! consumers: one `openreports.io/v1alpha1` Report per namespace and a
//! ClusterReport for cluster-scoped objects (or `wgpolicyk8s.io/v1alpha2`
//! PolicyReports for older consumers).
//!
//! Each run rewrites the reports it owns (server-side apply, field manager
//! `bouncer-audit`) from what it found, so a fixed or deleted object's result
//! is gone on the next run, and deletes those of its namespaces where nothing
//! is left to report. Reports are bounded: results are capped per report
//! (failures first) and messages are shortened; the summary still counts all.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::findings::{AuditFinding, AuditReport, Counts, Outcome};

/// The label on every report bouncer writes, and the selector that finds them.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "bouncer");
/// The name of bouncer's report in each namespace, and of its cluster report.
pub const REPORT_NAME: &str = "bouncer-audit";
/// Longest message kept in a result, in bytes.
const MAX_MESSAGE: usize = 1024;

/// Which report kinds to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Reports created or updated.
    pub written: usize,
    /// Stale reports deleted.
    pub deleted: usize,
    /// Results left out because a report was full.
    pub dropped: usize,
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
    #[error("writing {what}: {source}")]
    Write {
        /// Which report.
        what: String,
        /// Why.
        source: kube::Error,
    },
}

/// Writes the reports for `report` and removes stale ones.
///
/// # Errors
/// The report kind is not served, or a write is refused; reports written
/// before the failure stay.
pub async fn write(
    client: &kube::Client,
    report: &AuditReport,
    options: &ReportOptions,
) -> Result<Written, ReportError> {
    let now = time_now();
    let mut by_scope: BTreeMap<&str, Vec<&AuditFinding>> = BTreeMap::new();
    for finding in &report.results {
        if finding.result == Outcome::Pass && !options.passes {
            continue;
        }
        by_scope
            .entry(finding.object.namespace.as_deref().unwrap_or_default())
            .or_default()
            .push(finding);
    }
    let mut written = Written::default();
    let manager = PatchParams::apply("bouncer-audit").force();
    for (scope, findings) in &by_scope {
        let cluster = scope.is_empty();
        let resource = options.format.resource(cluster);
        let counts = report.scopes.get(*scope).copied().unwrap_or_default();
        let (object, dropped) = build(options, &resource, scope, findings, counts, &now);
        written.dropped += dropped;
        let api: Api<DynamicObject> = if cluster {
            Api::all_with(client.clone(), &resource)
        } else {
            Api::namespaced_with(client.clone(), scope, &resource)
        };
        api.patch(REPORT_NAME, &manager, &Patch::Apply(&object))
            .await
            .map_err(|source| classify(source, &resource, scope))?;
        written.written += 1;
    }
    written.deleted =
        remove_stale(client, report, options, &by_scope.keys().copied().collect()).await?;
    Ok(written)
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
            source,
        },
    }
}

/// The report object for one scope, and how many results did not fit.
fn build(
    options: &ReportOptions,
    resource: &ApiResource,
    scope: &str,
    findings: &[&AuditFinding],
    counts: Counts,
    now: &Value,
) -> (Value, usize) {
    let mut sorted: Vec<&&AuditFinding> = findings.iter().collect();
    // Failures first, so a full report keeps what matters most.
    sorted.sort_by_key(|f| f.result);
    let kept = sorted.len().min(options.max_results);
    let results: Vec<Value> = sorted[..kept].iter().map(|f| result(f, now)).collect();
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
            "skip": 0,
        },
        "results": results,
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
    (object, sorted.len() - kept)
}

fn result(finding: &AuditFinding, now: &Value) -> Value {
    let mut message = finding
        .message
        .clone()
        .unwrap_or_else(|| finding.warnings.join("; "));
    shorten(&mut message);
    let object = &finding.object;
    let mut resource = json!({
        "apiVersion": object.api_version,
        "kind": object.kind,
        "name": object.name,
    });
    if let Some(ns) = &object.namespace {
        resource["namespace"] = json!(ns);
    }
    if let Some(uid) = &object.uid {
        resource["uid"] = json!(uid);
    }
    json!({
        "source": "bouncer",
        "policy": finding.policy,
        "result": finding.result.as_str(),
        // Monitor-mode findings are reported, not enforced.
        "scored": finding.result != Outcome::Warn,
        "message": message,
        "timestamp": now,
        "resources": [resource],
        "properties": {"mode": serde_json::to_value(finding.mode).unwrap_or_default()},
    })
}

/// Cuts `message` to [`MAX_MESSAGE`] bytes on a character boundary.
fn shorten(message: &mut String) {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
}

fn time_now() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    json!({"seconds": now.as_secs(), "nanos": 0})
}

/// Deletes bouncer's reports in the audited scopes that got none this run:
/// every object there is fixed, gone, or in a namespace being deleted.
async fn remove_stale(
    client: &kube::Client,
    report: &AuditReport,
    options: &ReportOptions,
    written: &BTreeSet<&str>,
) -> Result<usize, ReportError> {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let mut deleted = 0;
    let namespaced = options.format.resource(false);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &namespaced);
    let existing = api
        .list(&ListParams::default().labels(&selector))
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
        if in_scope && !written.contains(ns.as_str()) {
            delete(client, &namespaced, Some(&ns), &name).await?;
            deleted += 1;
        }
    }
    if report.audited_namespaces.is_none() && !written.contains("") {
        let resource = options.format.resource(true);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        match api.get_opt(REPORT_NAME).await {
            Ok(Some(_)) => {
                delete(client, &resource, None, REPORT_NAME).await?;
                deleted += 1;
            }
            Ok(None) => {}
            Err(source) => return Err(classify(source, &resource, "")),
        }
    }
    Ok(deleted)
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
    use crate::audit::findings::ObjectRef;
    use crate::config::Mode;

    fn finding(name: &str, result: Outcome, message: &str) -> AuditFinding {
        AuditFinding {
            object: ObjectRef {
                api_version: "networking.k8s.io/v1".into(),
                kind: "Ingress".into(),
                namespace: Some("shop".into()),
                name: name.into(),
                uid: Some(format!("uid-{name}")),
            },
            policy: "alb-target-type-ip".into(),
            mode: if result == Outcome::Warn {
                Mode::Monitor
            } else {
                Mode::Enforce
            },
            result,
            message: Some(message.into()),
            warnings: Vec::new(),
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
            finding("a", Outcome::Warn, "would be refused"),
            finding("b", Outcome::Fail, "refused"),
            finding("c", Outcome::Error, "trapped"),
            finding("d", Outcome::Fail, "refused too"),
        ];
        let refs: Vec<&AuditFinding> = findings.iter().collect();
        let counts = Counts {
            pass: 7,
            fail: 2,
            warn: 1,
            error: 1,
        };
        let resource = Format::Openreports.resource(false);
        let (report, dropped) = build(
            &options(2),
            &resource,
            "shop",
            &refs,
            counts,
            &json!({"seconds": 1, "nanos": 0}),
        );
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
        let findings = [finding("a", Outcome::Warn, "would be refused")];
        let refs: Vec<&AuditFinding> = findings.iter().collect();
        let resource = Format::Wgpolicyk8s.resource(true);
        let options = ReportOptions {
            format: Format::Wgpolicyk8s,
            ..options(10)
        };
        let (report, _) = build(
            &options,
            &resource,
            "",
            &refs,
            Counts::default(),
            &json!(null),
        );
        assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(report["kind"], "ClusterPolicyReport");
        assert!(report["metadata"].get("namespace").is_none());
        assert!(report.get("source").is_none() && report.get("configuration").is_none());
        assert_eq!(report["results"][0]["scored"], false);
        assert_eq!(report["results"][0]["properties"]["mode"], "monitor");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let mut message = "é".repeat(MAX_MESSAGE);
        shorten(&mut message);
        assert!(message.len() <= MAX_MESSAGE, "{}", message.len());
        assert!(message.ends_with("..."));
        let mut short = "fine".to_owned();
        shorten(&mut short);
        assert_eq!(short, "fine");
    }
}
