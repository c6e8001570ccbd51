//! `PolicyException`s: a ticketed, expiring allowance for some objects to be
//! admitted although named policies deny them.
//!
//! An exception is honoured only in a namespace the configuration names
//! (`exceptions.namespaces`), so a team that can write in its own namespace
//! cannot exempt itself. Every exception expires: the webhook refuses one
//! without `expires`, or that would last longer than `exceptions.maxDuration`,
//! and an expired one no longer applies (the denial says so). Exceptions are
//! read through the context machinery (the watch cache in `serve`, the
//! checked manifests or `--context` offline), never by an API call per review.

use std::time::{Duration, SystemTime};

use glob::Pattern;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;

use super::matching::Matcher;
use super::review::Request;
use crate::config::{ExceptionsConfig, KindRule, MatchRules, NamespaceRule};
use crate::context::Cluster;
use crate::policy::{ContextKind, Query};

/// The API group of `PolicyException`.
pub const GROUP: &str = "bouncer.dev";
/// The kind.
pub const KIND: &str = "PolicyException";
/// The served version.
pub const VERSION: &str = "v1alpha1";

/// Exceptions read per review at most: more in the honoured namespaces are
/// not considered (and that is logged), so a flood of them costs a bounded time.
const MAX_EXCEPTIONS: usize = 1000;
/// Bytes of exceptions read per review at most.
const MAX_EXCEPTION_BYTES: usize = 4 << 20;
/// Exceptions expiring within this time count as expiring soon (metrics).
pub const EXPIRING_SOON: Duration = Duration::from_secs(7 * 24 * 3600);

/// The kind the context machinery watches when exceptions are honoured.
pub fn exception_kind() -> ContextKind {
    ContextKind {
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.to_owned(),
    }
}

/// Whether `request` writes a `PolicyException`.
pub(super) fn is_exception(request: &Request) -> bool {
    request.kind.group == GROUP && request.kind.kind == KIND
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    creation_timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default, rename = "match")]
    rules: ExceptionMatch,
    #[serde(default)]
    reason: String,
    ticket: Option<String>,
    expires: Option<String>,
}

/// Which objects an exception covers; every part given must match.
#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct ExceptionMatch {
    kinds: Option<Vec<KindRule>>,
    #[serde(default)]
    namespaces: NamespaceRule,
    /// Object names (shell globs).
    #[serde(default)]
    names: Vec<String>,
    object_selector: Option<LabelSelector>,
}

/// One exception, read and checked.
#[derive(Debug, Clone)]
pub struct Exception {
    /// `namespace/name` of the object.
    pub id: String,
    /// The policies it excepts from.
    pub policies: Vec<String>,
    /// Why the objects cannot comply yet.
    pub reason: String,
    /// Where the work to comply is tracked.
    pub ticket: Option<String>,
    /// When it stops applying.
    pub expires: SystemTime,
    /// When it was written, when the API server says.
    created: Option<SystemTime>,
    matcher: Matcher,
    names: Vec<Pattern>,
}

impl Exception {
    /// Reads an exception from its JSON text.
    ///
    /// # Errors
    /// What is wrong with it, naming the field, as the webhook refuses it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let object: Object =
            serde_json::from_str(text).map_err(|e| format!("it is not a PolicyException: {e}"))?;
        let spec = object.spec;
        if spec.policies.is_empty() {
            return Err("spec.policies must name at least one policy".into());
        }
        if spec.reason.trim().is_empty() {
            return Err("spec.reason is required: say why the objects cannot comply yet".into());
        }
        let expires = spec
            .expires
            .as_deref()
            .ok_or("spec.expires is required: every exception ends (an RFC 3339 time such as 2027-03-01T00:00:00Z)")?;
        let expires = humantime::parse_rfc3339_weak(expires).map_err(|e| {
            format!(
                "spec.expires `{expires}` is not an RFC 3339 time such as 2027-03-01T00:00:00Z: {e}"
            )
        })?;
        let rules = MatchRules {
            kinds: spec.rules.kinds.clone(),
            operations: None,
            namespaces: spec.rules.namespaces.clone(),
            namespace_selector: None,
            object_selector: spec.rules.object_selector.clone(),
        };
        let matcher = Matcher::new(&rules).map_err(|e| format!("spec.match: {e}"))?;
        let names = spec
            .rules
            .names
            .iter()
            .map(|n| Pattern::new(n).map_err(|e| format!("spec.match.names: `{n}`: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: format!("{}/{}", object.metadata.namespace, object.metadata.name),
            policies: spec.policies,
            reason: spec.reason,
            ticket: spec.ticket.filter(|t| !t.is_empty()),
            expires,
            created: object
                .metadata
                .creation_timestamp
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok()),
            matcher,
            names,
        })
    }

    /// Whether it excepts `request` from `policy` (expired or not).
    pub(super) fn covers(&self, policy: &str, request: &Request, cluster: &dyn Cluster) -> bool {
        self.policies.iter().any(|p| p == policy)
            && (self.names.is_empty() || self.names.iter().any(|n| n.matches(&request.name)))
            && self.matcher.matches(request, cluster)
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires <= now
    }

    /// Its expiry in RFC 3339.
    pub fn expires_text(&self) -> String {
        humantime::format_rfc3339_seconds(self.expires).to_string()
    }

    /// What a warning or a report says of it: which, until when, its ticket.
    pub fn describe(&self) -> String {
        let ticket = self
            .ticket
            .as_deref()
            .map_or_else(String::new, |t| format!(", ticket {t}"));
        format!(
            "PolicyException {} (expires {}{ticket})",
            self.id,
            self.expires_text()
        )
    }
}

/// Every exception in the honoured namespaces that reads, in name order;
/// one that does not read (written before the webhook judged them) is skipped.
pub fn honoured(config: &ExceptionsConfig, cluster: &dyn Cluster) -> Vec<Exception> {
    let kind = exception_kind();
    let mut found = Vec::new();
    for namespace in &config.namespaces {
        let texts = match cluster.list(
            &kind,
            Some(namespace),
            &Query::default(),
            MAX_EXCEPTION_BYTES,
        ) {
            Ok(texts) => texts,
            Err(error) => {
                tracing::debug!(%namespace, %error, "cannot read PolicyExceptions");
                continue;
            }
        };
        for text in texts
            .iter()
            .take(MAX_EXCEPTIONS.saturating_sub(found.len()))
        {
            match Exception::parse(text) {
                Ok(mut exception) => {
                    // One written while bouncer did not judge them (before it
                    // was the webhook, or while it was down with failurePolicy
                    // Ignore) still lasts no longer than the maximum.
                    if let Some(created) = exception.created {
                        exception.expires = exception.expires.min(created + config.max_duration);
                    }
                    found.push(exception);
                }
                Err(error) => tracing::debug!(%namespace, %error, "PolicyException ignored"),
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// Why a write of a `PolicyException` is refused, if it is: bouncer judges
/// them itself, as it is the one that knows where they are honoured, how long
/// they may last and which policies exist.
pub(super) fn judge_write(
    config: &ExceptionsConfig,
    request: &Request,
    policy_exists: impl Fn(&str) -> bool,
    now: SystemTime,
) -> Option<String> {
    use kube::core::admission::Operation;
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return None;
    }
    let object = request.object.as_ref()?;
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let id = format!("{namespace}/{}", request.name);
    if !config.honours(namespace) {
        return Some(format!(
            "PolicyException {id}: exceptions are honoured only in {}; one in `{namespace}` \
             would never apply (a team cannot exempt itself): ask the platform team to write it there",
            config
                .namespaces
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let exception = match Exception::parse(object.json()) {
        Ok(exception) => exception,
        Err(problem) => return Some(format!("PolicyException {id}: {problem}")),
    };
    let unknown: Vec<&str> = exception
        .policies
        .iter()
        .map(String::as_str)
        .filter(|p| !policy_exists(p))
        .collect();
    if !unknown.is_empty() {
        return Some(format!(
            "PolicyException {id}: spec.policies names {}, which bouncer does not run; \
             use the names of `bouncer policies` entries in its configuration",
            unknown
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let latest = now + config.max_duration;
    if exception.expires > latest {
        return Some(format!(
            "PolicyException {id}: spec.expires {} is more than {} from now; the latest \
             allowed is {} (exceptions.maxDuration)",
            exception.expires_text(),
            in_days(config.max_duration),
            humantime::format_rfc3339_seconds(latest)
        ));
    }
    if exception.expired(now) && request.operation == Operation::Create {
        return Some(format!(
            "PolicyException {id}: spec.expires {} has already passed",
            exception.expires_text()
        ));
    }
    None
}

/// `90 days` for whole days, else humantime's words.
fn in_days(duration: Duration) -> String {
    const DAY: u64 = 24 * 3600;
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(DAY) && duration.subsec_nanos() == 0 {
        match seconds / DAY {
            1 => "1 day".into(),
            days => format!("{days} days"),
        }
    } else {
        humantime::format_duration(duration).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exception(spec: &str) -> Result<Exception, String> {
        Exception::parse(&format!(
            r#"{{"metadata":{{"name":"legacy","namespace":"bouncer-exceptions"}},"spec":{spec}}}"#
        ))
    }

    #[test]
    fn an_exception_needs_policies_a_reason_and_an_expiry() {
        let missing = |spec: &str| exception(spec).unwrap_err();
        assert!(
            missing(r#"{"reason":"r","expires":"2027-01-01T00:00:00Z"}"#).contains("spec.policies")
        );
        assert!(
            missing(r#"{"policies":["p"],"expires":"2027-01-01T00:00:00Z"}"#)
                .contains("spec.reason is required")
        );
        assert!(missing(r#"{"policies":["p"],"reason":"r"}"#).contains("spec.expires is required"));
        assert!(
            missing(r#"{"policies":["p"],"reason":"r","expires":"soon"}"#)
                .contains("not an RFC 3339 time")
        );
        let ok = exception(
            r#"{"policies":["p"],"reason":"r","ticket":"PLAT-1","expires":"2027-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            ok.describe(),
            "PolicyException bouncer-exceptions/legacy (expires 2027-01-01T00:00:00Z, ticket PLAT-1)"
        );
    }

    #[test]
    fn an_exception_written_unjudged_lasts_no_longer_than_the_maximum() {
        let config = ExceptionsConfig {
            namespaces: vec!["x".into()],
            max_duration: Duration::from_secs(24 * 3600),
            hint: None,
        };
        let text = r#"{"metadata":{"name":"e","namespace":"x","creationTimestamp":"2026-01-01T00:00:00Z"},
            "spec":{"policies":["p"],"reason":"r","expires":"2030-01-01T00:00:00Z"}}"#;
        let snapshot = crate::context::Snapshot::new(
            [serde_json::from_str::<serde_json::Value>(&text.replace(
                r#"{"metadata""#,
                r#"{"apiVersion":"bouncer.dev/v1alpha1","kind":"PolicyException","metadata""#,
            ))
            .unwrap()],
            "default",
        );
        let found = honoured(&config, &snapshot);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].expires_text(), "2026-01-02T00:00:00Z");
    }
}
