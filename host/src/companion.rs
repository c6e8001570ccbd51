//! The other half of default-deny: a controller, run by `bouncer serve
//! --companion`, that gives every governed namespace the default-deny
//! NetworkPolicy the `default-deny-networkpolicy` rule requires (and, when
//! egress is denied, one that allows DNS), and keeps them there.
//!
//! Only one replica writes: the one holding the Lease `bouncer-companion` in
//! bouncer's namespace (`lease.rs`). It watches Namespaces and its own
//! NetworkPolicies (by label) with kube-rs's controller, which re-lists after
//! a watch expires or the API server restarts, and reconciles each namespace
//! (`reconcile.rs`). Followers hold no watches; when the leader stops renewing,
//! one of them takes over after the Lease's duration.

mod lease;
mod reconcile;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};

use crate::config::Config;
use bouncer_eks::network_policy::OWNED_BY;

/// The Lease the replicas elect a writer with.
pub const LEASE_NAME: &str = "bouncer-companion";

/// How the companion runs.
#[derive(Debug, Clone)]
pub struct CompanionOptions {
    /// bouncer's own namespace: never given policies; where the Lease lives.
    pub namespace: String,
    /// This replica's name in the Lease (its pod name).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
}

/// What the companion did, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Namespaces reconciled.
    pub reconciled: AtomicU64,
    /// NetworkPolicies created.
    pub created: AtomicU64,
    /// NetworkPolicies restored after a deletion or a change.
    pub restored: AtomicU64,
    /// NetworkPolicies removed from namespaces that opted out.
    pub removed: AtomicU64,
    /// Reconciles that failed (tried again).
    pub errors: AtomicU64,
    /// This replica holds the Lease and writes.
    pub leader: AtomicBool,
}

/// Runs the companion until the task is dropped: elects, and while leading
/// reconciles every namespace.
pub async fn run(
    client: kube::Client,
    config: &Config,
    options: CompanionOptions,
    stats: Arc<Stats>,
) {
    let lock = lease::LeaseLock::new(
        client.clone(),
        &options.namespace,
        LEASE_NAME,
        &options.identity,
        options.lease_duration,
    );
    let retry = options.lease_duration / 3;
    loop {
        match lock.try_acquire_or_renew().await {
            Ok(true) => {
                tracing::info!(identity = %options.identity, "companion: leading (holds the Lease)");
                stats.leader.store(true, Ordering::Relaxed);
                lead(&client, config, &options, &stats, &lock).await;
                stats.leader.store(false, Ordering::Relaxed);
                tracing::warn!(identity = %options.identity, "companion: lost the Lease; following");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %crate::context::explain(&error), "companion: cannot read the Lease");
            }
        }
        tokio::time::sleep(retry).await;
    }
}

/// Reconciles while the Lease is renewed; returns once it is not.
async fn lead(
    client: &kube::Client,
    config: &Config,
    options: &CompanionOptions,
    stats: &Arc<Stats>,
    lock: &lease::LeaseLock,
) {
    let (lost, on_lost) = tokio::sync::oneshot::channel::<()>();
    let context = Arc::new(context(client, config, options, stats));
    let owned = watcher::Config::default().labels(&format!("{}={}", OWNED_BY.0, OWNED_BY.1));
    let controller = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<NetworkPolicy>::all(client.clone()),
        owned,
        |policy: NetworkPolicy| {
            policy
                .metadata
                .namespace
                .map(|ns| ObjectRef::<Namespace>::new(&ns))
        },
    )
    .graceful_shutdown_on(async move {
        let _ = on_lost.await;
    })
    .run(reconcile::reconcile, reconcile::retry, context)
    .for_each(|_| std::future::ready(()));
    let renew = async {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(options.lease_duration / 3).await;
            match lock.try_acquire_or_renew().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(error = %crate::context::explain(&error), "companion: cannot renew the Lease");
                    // Step down before another replica may take over.
                    if last_renewed.elapsed() > options.lease_duration * 2 / 3 {
                        return;
                    }
                }
            }
        }
    };
    tokio::pin!(controller);
    tokio::select! {
        () = &mut controller => {}
        () = renew => {
            let _ = lost.send(());
            controller.await;
        }
    }
}

fn context(
    client: &kube::Client,
    config: &Config,
    options: &CompanionOptions,
    stats: &Arc<Stats>,
) -> reconcile::Context {
    let companion = &config.companion;
    // Checked when the configuration loaded.
    let rules = crate::config::MatchRules {
        namespaces: companion.namespaces.clone(),
        namespace_selector: companion.namespace_selector.clone(),
        ..Default::default()
    };
    let (include, mut exclude) = rules.namespace_globs().unwrap_or_default();
    let selector = rules
        .selectors()
        .ok()
        .and_then(|(namespaces, _)| namespaces);
    for never in ["kube-system", options.namespace.as_str()] {
        if let Ok(pattern) = glob::Pattern::new(&glob::Pattern::escape(never)) {
            exclude.push(pattern);
        }
    }
    reconcile::Context {
        client: client.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: reconcile::FIELD_MANAGER.to_owned(),
                instance: Some(options.identity.clone()),
            },
        ),
        stats: stats.clone(),
        types: config.companion_policy_types(),
        dns: companion.dns.clone(),
        include,
        exclude,
        selector,
        opt_out: companion.opt_out(),
        remove_on_opt_out: companion.remove_on_opt_out,
        written: Default::default(),
    }
}
