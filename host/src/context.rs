//! What bouncer knows of the cluster beyond the request: namespace labels for
//! `namespaceSelector`, and the objects context-aware policies look up.
//!
//! Three sources, one trait: [`Cluster`]. In `bouncer serve`, [`watch`] keeps
//! watch caches of exactly the declared kinds; offline, [`snapshot`] answers
//! from the objects a suite case or the checked manifests give; [`NoCluster`]
//! knows nothing (lookups fail, selectors on namespace labels match).

pub mod snapshot;
// pub mod watch;

use std::collections::BTreeMap;

use crate::config::matching::NamespaceLabels;
use crate::policy::{ContextKind, ContextSource, Selector};

pub use snapshot::Snapshot;

/// A view of the cluster: namespace labels and object lookups.
pub trait Cluster: NamespaceLabels + ContextSource {}

impl<T: NamespaceLabels + ContextSource> Cluster for T {}

/// No knowledge of the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCluster;

impl NamespaceLabels for NoCluster {
    fn labels(&self, _namespace: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

impl ContextSource for NoCluster {
    fn get(&self, kind: &ContextKind, _: Option<&str>, _: &str) -> Result<Option<String>, String> {
        Err(format!(
            "bouncer has no cluster connection to look up {kind}"
        ))
    }

    fn list(
        &self,
        kind: &ContextKind,
        _: Option<&str>,
        _: &Selector,
    ) -> Result<Vec<String>, String> {
        Err(format!(
            "bouncer has no cluster connection to look up {kind}"
        ))
    }
}
