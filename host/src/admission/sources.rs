//! Where each configuration entry's component comes from, settled before any
//! is compiled: built-ins and files as they are; registry references pulled
//! all at once, each within `registry.timeout`, so ten unreachable tags cost
//! one timeout and not ten; or, for a server that must listen before any
//! registry has answered, from the store alone.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::{FutureExt as _, StreamExt as _};

use super::load_error::EntryError;
use crate::config::{Config, Origin, PolicyConfig};
use crate::policy::{PolicyEngine, Source};
use crate::registry::{Fetched, PolicyRef, Store, default_store_dir, fetch, fetch_stored};

/// How registry entries are resolved while a configuration loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulls {
    /// Ask the registries now (in parallel) and wait for every answer.
    Now,
    /// Use only what the store holds: a pinned digest, or the component a tag
    /// last loaded. An entry that needs the registry is left pending.
    StoreOnly,
}

/// Registry pulls under way at once, on the one runtime of a load.
const PARALLEL_PULLS: usize = 8;

/// One entry's component, found.
pub(super) enum Resolution {
    /// A built-in or a file.
    Local(Source),
    /// From a registry, through the store.
    Registry {
        fetched: Box<Fetched>,
        reference: PolicyRef,
        store: Store,
    },
    /// Only the registry can say, and it was not asked ([`Pulls::StoreOnly`]).
    Pending,
}

impl Resolution {
    pub(super) fn source(&self) -> Option<Source> {
        match self {
            Self::Local(source) => Some(source.clone()),
            Self::Registry { fetched, .. } => Some(Source::File(fetched.path.clone())),
            Self::Pending => None,
        }
    }
}

/// Resolves every entry of `config`, in configuration order.
pub(super) fn resolve_all(
    engine: &Arc<PolicyEngine>,
    config: &Config,
    pulls: Pulls,
) -> Vec<Result<Resolution, EntryError>> {
    let mut resolved: Vec<Option<Result<Resolution, EntryError>>> =
        config.policies.iter().map(|_| None).collect();
    let mut remote = Vec::new();
    for (index, entry) in config.policies.iter().enumerate() {
        match entry.origin(&config.base_dir) {
            Ok(Origin::Local(source)) => resolved[index] = Some(Ok(Resolution::Local(source))),
            Ok(Origin::Registry(reference)) => remote.push((index, entry, reference)),
            Err(e) => {
                resolved[index] = Some(Err(EntryError::Source(e)));
            }
        }
    }
    let store = store(engine, config);
    for (index, result) in pull_all(config, &remote, &store, pulls) {
        resolved[index] = Some(result);
    }
    resolved
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(EntryError::Pull("it was not resolved".into()))))
        .collect()
}

/// Pulls every remote entry on one runtime owned here, at most
/// [`PARALLEL_PULLS`] at once. Loading is synchronous; this is the one place
/// it crosses into async, and it does so on a thread with no runtime of its
/// own (a caller on an async worker gets a scoped thread for it).
fn pull_all(
    config: &Config,
    remote: &[(usize, &PolicyConfig, PolicyRef)],
    store: &Store,
    pulls: Pulls,
) -> Vec<(usize, Result<Resolution, EntryError>)> {
    if remote.is_empty() {
        return Vec::new();
    }
    let all_failed = |why: &str| {
        let failed = |(index, ..): &(usize, &PolicyConfig, PolicyRef)| {
            (*index, Err(EntryError::Pull(why.to_owned())))
        };
        remote.iter().map(failed).collect::<Vec<_>>()
    };
    let work = || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => return all_failed(&format!("cannot start the registry runtime: {e}")),
        };
        runtime.block_on(
            futures::stream::iter(remote.iter().map(|(index, entry, reference)| async move {
                let pulled = AssertUnwindSafe(pull(config, entry, reference, store.clone(), pulls))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(EntryError::Pull("its pull panicked".into())));
                (*index, pulled)
            }))
            .buffer_unordered(PARALLEL_PULLS)
            .collect(),
        )
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("bouncer-pull".into())
            .spawn_scoped(scope, work)
            .map_err(|e| e.to_string())
            .and_then(|t| t.join().map_err(|_| "it panicked".to_owned()))
            .unwrap_or_else(|why| all_failed(&format!("cannot run the registry pulls: {why}")))
    })
}

async fn pull(
    config: &Config,
    entry: &PolicyConfig,
    reference: &PolicyRef,
    store: Store,
    pulls: Pulls,
) -> Result<Resolution, EntryError> {
    let fetched = match pulls {
        Pulls::Now => fetch(reference, &config.registry, &config.verify, &store)
            .await
            .map_err(EntryError::Registry)?,
        Pulls::StoreOnly => match fetch_stored(reference, &config.verify, &store) {
            Some(fetched) => fetched,
            None => return Ok(Resolution::Pending),
        },
    };
    tracing::info!(policy = %entry.name, reference = %reference, digest = %fetched.digest, "resolved");
    Ok(Resolution::Registry {
        fetched: Box::new(fetched),
        reference: reference.clone(),
        store,
    })
}

fn store(engine: &PolicyEngine, config: &Config) -> Store {
    Store::new(
        config
            .registry
            .store
            .clone()
            .or_else(|| engine.cache_dir().map(|d| d.join("oci")))
            .or_else(default_store_dir)
            .unwrap_or_else(|| std::env::temp_dir().join("bouncer-oci")),
    )
}
