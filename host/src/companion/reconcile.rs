//! One namespace reconciled: when the companion governs it, its default-deny
//! NetworkPolicy (and, when egress is denied, its allow-DNS one) exist exactly
//! as `bouncer_eks::network_policy` defines them. Only objects with the
//! companion's label are ever written or removed; a NetworkPolicy of the same
//! name without it is left alone and reported.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use glob::Pattern;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource as _, ResourceExt as _};
use serde_json::Value;

use super::Stats;
use crate::policy::Selector;
use bouncer_eks::network_policy::{self as netpol, Dns, OWNED_BY};

/// The field manager of every write.
pub(crate) const FIELD_MANAGER: &str = "bouncer-companion";
/// How often a governed namespace is looked at again without an event.
const RESYNC: Duration = Duration::from_secs(300);

/// What reconciling needs: where to write, what, and where not.
pub(crate) struct Context {
    pub(crate) client: kube::Client,
    pub(crate) recorder: Recorder,
    pub(crate) stats: Arc<Stats>,
    pub(crate) types: Vec<String>,
    pub(crate) dns: Dns,
    pub(crate) include: Vec<Pattern>,
    pub(crate) exclude: Vec<Pattern>,
    pub(crate) selector: Option<Selector>,
    pub(crate) opt_out: (String, String),
    pub(crate) remove_on_opt_out: bool,
    /// Objects this process wrote: one missing later was deleted, and is restored.
    pub(crate) written: Mutex<HashSet<(String, String)>>,
}

/// Why a namespace could not be reconciled (tried again shortly).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    /// The API server refused or could not be reached.
    #[error("namespace {namespace}: {message}")]
    Api {
        /// The namespace.
        namespace: String,
        /// What the API server said, in words.
        message: String,
    },
}

impl Context {
    /// Whether the companion gives `namespace` its policies (opt-out aside).
    fn governs(&self, namespace: &Namespace) -> bool {
        let name = namespace.name_any();
        let labels = namespace.labels();
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(&name)))
            && !self.exclude.iter().any(|p| p.matches(&name))
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }

    fn opted_out(&self, namespace: &Namespace) -> bool {
        let (key, value) = &self.opt_out;
        namespace
            .labels()
            .get(key)
            .is_some_and(|v| value.is_empty() || v == value)
    }

    /// The objects `namespace` should hold.
    fn desired(&self, namespace: &str) -> Vec<Value> {
        let mut desired = vec![netpol::default_deny(namespace, &self.types)];
        if self.types.iter().any(|t| t == "Egress") {
            desired.push(netpol::allow_dns(namespace, &self.dns));
        }
        desired
    }

    async fn event(&self, namespace: &Namespace, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self
            .recorder
            .publish(&event, &namespace.object_ref(&()))
            .await
        {
            tracing::debug!(%error, "cannot record an event");
        }
    }
}

fn owned(policy: &NetworkPolicy) -> bool {
    policy.labels().get(OWNED_BY.0).map(String::as_str) == Some(OWNED_BY.1)
}

/// Whether `existing` is `desired` as far as what the companion sets goes.
fn as_desired(existing: &NetworkPolicy, desired: &Value) -> bool {
    serde_json::to_value(&existing.spec).ok().as_ref() == desired.get("spec")
}

/// Brings one namespace to what the companion wants of it.
pub(crate) async fn reconcile(
    namespace: Arc<Namespace>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let name = namespace.name_any();
    if namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &name);
    let failed = |error: kube::Error| ReconcileError::Api {
        namespace: name.clone(),
        message: crate::context::explain(&error),
    };
    let opted_out = ctx.opted_out(&namespace);
    if !ctx.governs(&namespace) || opted_out {
        if opted_out && ctx.remove_on_opt_out {
            for desired in ctx.desired(&name) {
                let policy = desired["metadata"]["name"].as_str().unwrap_or_default();
                if let Some(existing) = api.get_opt(policy).await.map_err(failed)?
                    && owned(&existing)
                {
                    api.delete(policy, &DeleteParams::default())
                        .await
                        .map_err(failed)?;
                    ctx.stats.removed.fetch_add(1, Ordering::Relaxed);
                    ctx.event(
                        &namespace,
                        EventType::Normal,
                        "Removed",
                        format!("removed NetworkPolicy {policy}: the namespace opted out"),
                    )
                    .await;
                }
            }
        }
        return Ok(Action::await_change());
    }
    for desired in ctx.desired(&name) {
        let policy = desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = (name.clone(), policy.clone());
        match api.get_opt(&policy).await.map_err(failed)? {
            Some(existing) if !owned(&existing) => {
                ctx.event(
                    &namespace,
                    EventType::Warning,
                    "NameTaken",
                    format!("NetworkPolicy {policy} exists without the label {}={}; bouncer leaves it alone", OWNED_BY.0, OWNED_BY.1),
                )
                .await;
            }
            Some(existing) if as_desired(&existing, &desired) => {}
            Some(existing) => {
                // Weakened: an apply would keep fields another manager added
                // (an `ingress` rule), so the whole object is replaced.
                let mut replacement: NetworkPolicy = serde_json::from_value(desired.clone())
                    .map_err(|e| ReconcileError::Api {
                        namespace: name.clone(),
                        message: e.to_string(),
                    })?;
                replacement.metadata.resource_version = existing.metadata.resource_version.clone();
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PostParams::default()
                };
                api.replace(&policy, &params, &replacement)
                    .await
                    .map_err(failed)?;
                ctx.stats.restored.fetch_add(1, Ordering::Relaxed);
                ctx.event(
                    &namespace,
                    EventType::Normal,
                    "Restored",
                    format!("restored NetworkPolicy {policy}, which had been changed"),
                )
                .await;
            }
            None => {
                api.patch(
                    &policy,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
                .map_err(failed)?;
                let again = !lock(&ctx.written).insert(key);
                let (counter, reason, note) = if again {
                    (
                        &ctx.stats.restored,
                        "Restored",
                        format!("restored NetworkPolicy {policy}, which had been deleted"),
                    )
                } else {
                    (
                        &ctx.stats.created,
                        "Created",
                        format!("created NetworkPolicy {policy}"),
                    )
                };
                counter.fetch_add(1, Ordering::Relaxed);
                ctx.event(&namespace, EventType::Normal, reason, note).await;
            }
        }
    }
    ctx.stats.reconciled.fetch_add(1, Ordering::Relaxed);
    Ok(Action::requeue(RESYNC))
}

/// What a failed reconcile does: counted, logged, tried again shortly.
pub(crate) fn retry(_: Arc<Namespace>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.stats.errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(%error, "companion: reconcile failed; trying again in 5 s");
    Action::requeue(Duration::from_secs(5))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
