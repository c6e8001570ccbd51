//! What bouncer knows of the cluster beyond the request: namespace labels for
//! `namespaceSelector`, and the objects context-aware policies look up.
//!
//! Three sources, one trait: [`Cluster`]. In `bouncer serve`, [`watch`] keeps
//! watch caches of exactly the declared kinds; offline,
//! [`Snapshot`] answers
//! from the objects a suite case or the checked manifests give; [`NoCluster`]
//! knows nothing (lookups fail, selectors on namespace labels match).

pub mod access;
pub mod index;
pub mod snapshot;
pub mod watch;

use std::collections::BTreeMap;

use crate::policy::{ContextKind, ContextSource, LookupFailure, Query};

pub use access::{AccessError, KubeAccess, explain};
pub use snapshot::Snapshot;
pub use watch::{KindHealth, Watched};

/// Where namespace labels come from, for `namespaceSelector`.
pub trait NamespaceLabels {
    /// The labels of `namespace`, or `None` when they are not known.
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

/// A view of the cluster: namespace labels and object lookups.
pub trait Cluster: NamespaceLabels + ContextSource {
    /// Keeps exactly `kinds` available for lookups (called when a configuration loads).
    fn watch(&self, kinds: &[ContextKind]) {
        let _ = kinds;
    }

    /// `Err` with what is missing while lookups cannot be answered yet.
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }

    /// Per-kind state of the caches, for metrics.
    fn health(&self) -> Vec<watch::KindHealth> {
        Vec::new()
    }
}

impl Cluster for NoCluster {}

/// No knowledge of the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCluster;

impl NamespaceLabels for NoCluster {
    fn labels(&self, _namespace: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

impl ContextSource for NoCluster {
    fn get(
        &self,
        kind: &ContextKind,
        _: Option<&str>,
        _: &str,
        _: usize,
    ) -> Result<Option<String>, LookupFailure> {
        Err(LookupFailure::Unavailable(format!(
            "bouncer has no cluster connection to look up {kind}"
        )))
    }

    fn list(
        &self,
        kind: &ContextKind,
        _: Option<&str>,
        _: &Query,
        _: usize,
    ) -> Result<Vec<String>, LookupFailure> {
        Err(LookupFailure::Unavailable(format!(
            "bouncer has no cluster connection to look up {kind}"
        )))
    }
}
