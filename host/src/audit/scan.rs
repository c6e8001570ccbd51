//! Listing and judging: each governed kind is listed page by page (`limit` and
//! `continue`), so memory holds one page and the findings, never the cluster.
//! Each object is admitted as the API server would send it for a CREATE,
//! through the same mutate-then-validate chain `bouncer check` runs.
//!
//! The walk is synchronous, on the caller's thread; it crosses into async in
//! one place, [`ask`], to talk to the API server on the caller's
//! runtime. Judging (guest code) never runs in an async context.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::TypeMeta;
use serde_json::Value;

use super::findings::{AuditError, AuditReport, Unseen};
use super::governed::{self, Target};
use crate::admission::PolicySet;
use crate::admission::RequestSpec;
use crate::admission::Verdict;
use crate::context::Cluster;
use crate::findings::{ObjectRef, judge};

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Only these namespaces (cluster-scoped kinds are then skipped); all when empty.
    pub namespaces: Vec<String>,
    /// Objects per list request.
    pub page_size: u32,
    /// Keep passing results too (for reports that list them).
    pub report_passes: bool,
    /// A candidate configuration: each object is judged under it too, and
    /// what changes is in [`AuditReport::comparison`].
    pub compare: Option<Arc<PolicySet>>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            page_size: 500,
            report_passes: false,
            compare: None,
        }
    }
}

/// One page of one kind done, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// `Ingress.networking.k8s.io`.
    pub kind: &'a str,
    /// The namespace listed, when the audit is limited to some.
    pub namespace: Option<&'a str>,
    /// Objects of this kind judged so far.
    pub done: usize,
    /// All of them, when the API server says how many remain.
    pub total: Option<usize>,
}

/// Audits what the cluster holds of every kind `set` governs. Lookups of
/// context-aware policies go to `cluster` (live watch caches, kept by
/// `runtime`). Call it off the runtime (a thread that is not one of its
/// workers): the API server is asked on `runtime`, and the policies judge on
/// this thread.
pub fn audit(
    set: &PolicySet,
    client: &kube::Client,
    cluster: &Arc<dyn Cluster>,
    options: &AuditOptions,
    runtime: &tokio::runtime::Handle,
    progress: &mut dyn FnMut(Progress<'_>),
) -> AuditReport {
    let started = Instant::now();
    // One trace per run when tracing is on (`telemetry.rs`): a span per kind
    // listed, per page, per object.
    let run = tracing::info_span!(target: "bouncer::audit", "audit", otel.name = "bouncer audit");
    let _run = run.enter();
    let mut report = AuditReport {
        audited_namespaces: (!options.namespaces.is_empty()).then(|| options.namespaces.clone()),
        ..AuditReport::default()
    };
    let sets: Vec<&PolicySet> = std::iter::once(set)
        .chain(options.compare.as_deref())
        .collect();
    if options.compare.is_some() {
        report.comparison = Some(Default::default());
    }
    let (targets, problems) = ask(runtime, governed::targets(&sets, client));
    report.add_problems(problems);
    let terminating = ask(runtime, terminating_namespaces(client, &mut report));
    let mut audit = Sweep {
        set,
        cluster,
        options,
        runtime,
        terminating: &terminating,
        report: &mut report,
        judged: 0,
    };
    for target in &targets {
        let scopes: Vec<Option<&str>> = match (target.namespaced, options.namespaces.is_empty()) {
            (_, true) => vec![None],
            (true, false) => options
                .namespaces
                .iter()
                .map(|n| Some(n.as_str()))
                .collect(),
            (false, false) => continue,
        };
        audit.report.summary.kinds += 1;
        for namespace in scopes {
            audit.list(client, target, namespace, progress);
        }
    }
    report.metrics.duration_seconds = started.elapsed().as_secs_f64();
    report
}

/// Asks the API server on the caller's runtime: the walk's one crossing into
/// async. The caller's thread waits; the runtime's workers keep the watch
/// caches current meanwhile.
fn ask<T>(runtime: &tokio::runtime::Handle, work: impl std::future::Future<Output = T>) -> T {
    runtime.block_on(work)
}

/// Namespaces being deleted: their objects are on their way out and their
/// reports cannot be written (`kube-controller-manager` empties them).
async fn terminating_namespaces(
    client: &kube::Client,
    report: &mut AuditReport,
) -> BTreeSet<String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter(|ns| ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"))
            .filter_map(|ns| ns.metadata.name)
            .collect(),
        Err(error) => {
            report.add_problems([AuditError::error(
                "Namespace",
                format!(
                    "listing namespaces: {}; objects of namespaces being deleted are audited too",
                    crate::context::explain(&error)
                ),
            )]);
            BTreeSet::new()
        }
    }
}

/// One audit in progress.
struct Sweep<'a> {
    set: &'a PolicySet,
    cluster: &'a Arc<dyn Cluster>,
    options: &'a AuditOptions,
    runtime: &'a tokio::runtime::Handle,
    terminating: &'a BTreeSet<String>,
    report: &'a mut AuditReport,
    judged: usize,
}

impl Sweep<'_> {
    /// Lists one kind (in one namespace, or all) page by page and judges each object.
    fn list(
        &mut self,
        client: &kube::Client,
        target: &Target,
        namespace: Option<&str>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        let label = target.label();
        let span = tracing::info_span!(
            target: "bouncer::audit",
            "list",
            otel.name = %format_args!("list {label}"),
            bouncer.kind = %label,
            bouncer.namespace = namespace,
            bouncer.objects = tracing::field::Empty,
        );
        let _listing = span.enter();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &target.resource),
            None => Api::all_with(client.clone(), &target.resource),
        };
        let types = TypeMeta {
            api_version: target.resource.api_version.clone(),
            kind: target.resource.kind.clone(),
        };
        let mut token: Option<String> = None;
        let mut done = 0;
        // Pages are sized by bytes, not only by count: 500 objects of 1 MB
        // each would be half a gigabyte at once. The first page is small;
        // later ones hold what fits in PAGE_BYTES at the sizes seen so far.
        let mut limit = self.options.page_size.min(FIRST_PAGE);
        let (mut seen_bytes, mut seen_objects) = (0u64, 0u64);
        loop {
            let mut params = ListParams::default().limit(limit);
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            let page_span = tracing::info_span!(
                target: "bouncer::audit",
                "page",
                bouncer.limit = limit,
                bouncer.objects = tracing::field::Empty,
            );
            let _page = page_span.enter();
            let page = match ask(self.runtime, api.list(&params)) {
                Ok(page) => page,
                Err(error) => {
                    let subject = match namespace {
                        Some(ns) => format!("{label} in {ns}"),
                        None => label.clone(),
                    };
                    self.report
                        .add_problems([AuditError::error(subject, list_error(&error, target))]);
                    // What was judged of this kind stays in the results, but
                    // reports must not drop what the failed pages held.
                    self.report.unseen.push(Unseen {
                        api_version: target.resource.api_version.clone(),
                        kind: target.resource.kind.clone(),
                        namespace: namespace.map(str::to_owned),
                    });
                    return;
                }
            };
            self.report.metrics.pages += 1;
            page_span.record("bouncer.objects", page.items.len());
            let remaining = page.metadata.remaining_item_count;
            for mut object in page.items {
                object.types = Some(types.clone());
                seen_bytes += self.judge(object, target, &label);
                seen_objects += 1;
                done += 1;
            }
            limit = page_limit(self.options.page_size, seen_bytes, seen_objects);
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            // The last page has no count of what remains: it is all there.
            let total = match (&token, remaining) {
                (None, _) => Some(done),
                (Some(_), remaining) => remaining
                    .and_then(|r| usize::try_from(r).ok())
                    .map(|r| r + done),
            };
            span.record("bouncer.objects", done);
            progress(Progress {
                kind: &label,
                namespace,
                done,
                total,
            });
            if token.is_none() {
                return;
            }
        }
    }

    /// Judges one object as a CREATE and records what each policy said;
    /// returns the object's size in JSON bytes.
    fn judge(&mut self, object: DynamicObject, target: &Target, label: &str) -> u64 {
        let size = crate::admission::patch::serialized_len(&object) as u64;
        if object.metadata.deletion_timestamp.is_some()
            || object
                .metadata
                .namespace
                .as_ref()
                .is_some_and(|ns| self.terminating.contains(ns))
        {
            return size;
        }
        let reference = ObjectRef {
            api_version: target.resource.api_version.clone(),
            kind: target.resource.kind.clone(),
            namespace: object.metadata.namespace.clone(),
            name: object.metadata.name.clone().unwrap_or_default(),
            uid: object.metadata.uid.clone(),
        };
        let span = crate::telemetry::object_span(
            &reference.kind,
            &reference.name,
            format_args!("{}", reference.namespace.as_deref().unwrap_or("")),
        );
        let _judging = span.enter();
        let subject = match &reference.namespace {
            Some(ns) => format!("{}/{ns}/{}", reference.kind, reference.name),
            None => format!("{}/{}", reference.kind, reference.name),
        };
        let mut value = match serde_json::to_value(&object) {
            Ok(value) => value,
            Err(error) => {
                self.unreadable(subject, error.to_string());
                return size;
            }
        };
        // As the API server would send it: no server-side bookkeeping of other writers.
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        let spec = RequestSpec {
            cluster_scoped: Some(!target.namespaced),
            ..RequestSpec::create(value, reference.namespace.as_deref().unwrap_or_default())
        };
        self.judged += 1;
        let uid = format!("bouncer-audit-{}", self.judged);
        let named = |_: &crate::admission::Request| reference.clone();
        // A comparison needs what each side would store; a plain audit does not.
        let changes = self.options.compare.is_some();
        let mut findings = match judge(self.set, &spec, &uid, self.cluster, named, None, changes) {
            Ok(findings) => findings,
            Err(error) => {
                self.unreadable(subject, error.to_string());
                return size;
            }
        };
        if let Some(candidate) = self.options.compare.as_deref() {
            match judge(candidate, &spec, &uid, self.cluster, named, None, true) {
                Ok(then) => {
                    let comparison = self.report.comparison.get_or_insert_default();
                    if let Some(change) = comparison.summary.add(&reference, None, &findings, &then)
                    {
                        comparison.changes.push(change);
                    }
                }
                Err(error) => {
                    self.unreadable(subject, format!("under the candidate: {error}"));
                    return size;
                }
            }
            for finding in &mut findings {
                finding.patched = None;
                finding.patch = None;
            }
        }
        let report = &mut *self.report;
        report.summary.objects += 1;
        *report
            .metrics
            .objects_by_kind
            .entry(label.to_owned())
            .or_default() += 1;
        let scope = report
            .scopes
            .entry(reference.namespace.clone().unwrap_or_default())
            .or_default();
        let mut worst = Verdict::Pass;
        for finding in findings {
            let outcome = finding.result;
            scope.add(outcome);
            worst = worst.min(outcome);
            if matches!(outcome, Verdict::Fail | Verdict::Warn) {
                *report
                    .metrics
                    .violations_by_policy
                    .entry(finding.policy.clone())
                    .or_default() += 1;
            }
            if outcome != Verdict::Pass || self.options.report_passes {
                report.results.push(finding);
            }
        }
        match worst {
            Verdict::Fail => report.summary.denied += 1,
            Verdict::Error => report.summary.failed += 1,
            Verdict::Warn => report.summary.warned += 1,
            Verdict::Pass | Verdict::Skip => {}
        }
        size
    }

    fn unreadable(&mut self, subject: String, why: String) {
        self.report.add_problems([AuditError::error(
            subject,
            format!("cannot be judged: {why}"),
        )]);
    }
}

/// Objects in the first page of a kind, before their sizes are known.
const FIRST_PAGE: u32 = 4;
/// What one page may hold, in JSON bytes of its objects. Parsed, objects
/// made of many small maps (an Ingress with thousands of paths) take up to
/// ~20 times their JSON, so a page costs up to ~80 MiB whatever the objects'
/// sizes and `--page-size`.
pub(super) const PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// The next page's size: as many objects as fit in [`PAGE_BYTES`] at the
/// average size seen, between 1 and `page_size`.
fn page_limit(page_size: u32, seen_bytes: u64, seen_objects: u64) -> u32 {
    if seen_objects == 0 {
        return page_size.min(FIRST_PAGE);
    }
    let average = (seen_bytes / seen_objects).max(1);
    u32::try_from(PAGE_BYTES / average)
        .unwrap_or(u32::MAX)
        .clamp(1, page_size.max(1))
}

/// A failed list, in words that say what to do.
fn list_error(error: &kube::Error, target: &Target) -> String {
    let plural = &target.resource.plural;
    let group = &target.resource.group;
    match error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "forbidden: bouncer may not list {plural} (apiGroups [\"{group}\"]); grant `list` on it \
             (the chart's audit ClusterRole does) or leave it out; the other kinds were audited"
        ),
        kube::Error::Api(status) if status.code == 410 => format!(
            "the list expired while paging ({}); run the audit again, or raise --page-size",
            status.message
        ),
        other => format!(
            "listing {plural}: {}; the other kinds were audited",
            crate::context::explain(other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_bytes_not_counts() {
        // Before any object is seen, a small first page.
        assert_eq!(page_limit(500, 0, 0), FIRST_PAGE);
        // Small objects: the page size asked for.
        assert_eq!(page_limit(500, 16 * 2_000, 16), 500);
        // 1.2 MB objects: what fits in PAGE_BYTES.
        let limit = page_limit(500, 16 * 1_200_000, 16);
        assert_eq!(u64::from(limit), PAGE_BYTES / 1_200_000);
        // Objects larger than a page: one at a time.
        assert_eq!(page_limit(500, 2 * PAGE_BYTES, 1), 1);
        assert_eq!(page_limit(2, 10, 10), 2);
    }
}
