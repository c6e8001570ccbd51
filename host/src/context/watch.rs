//! `bouncer serve`'s view of the cluster: one watch cache (a kube-rs reflector)
//! per kind the configured policies declare, and nothing else.
//!
//! Lookups are answered from memory, never by an API call per admission: a
//! webhook that calls the API server while the API server waits on it adds
//! latency to every write and can deadlock under load. Caches keep serving
//! their last state while the connection is down and resume by re-listing.
//! `managedFields` are stripped on the way in: they are most of an object's
//! size and no policy reads them.
//!
//! A kind the cluster does not serve (its CRD is not installed) holds no
//! objects, and lookups say so instead of failing: a rule that reads the AWS
//! Load Balancer Controller's kinds must not keep `/readyz` waiting in a
//! cluster without that controller. Discovery keeps retrying, so a CRD
//! installed later is watched from then on.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind, TypeMeta};
use kube::discovery::Scope;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};

use super::Cluster;
use super::NamespaceLabels;
use super::index::Indexes;
use crate::policy::{
    ContextKind, ContextSource, Gathered, IndexKey, LookupFailure, Query, Queryable, too_large,
};

/// How one watched kind is doing, for `/readyz` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindHealth {
    /// The kind.
    pub kind: ContextKind,
    /// Whether the cache has been filled once.
    pub synced: bool,
    /// Whether the watch is failing (the cache serves its last state).
    pub stale: bool,
    /// Objects in the cache.
    pub objects: usize,
    /// The last watch error, when stale or not synced.
    pub error: Option<String>,
}

/// Watch caches of the declared kinds.
pub struct Watched {
    client: Option<kube::Client>,
    watches: RwLock<HashMap<ContextKind, Watch>>,
}

struct Watch {
    state: Arc<WatchState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct WatchState {
    /// Set once, when discovery has found the kind's resource and scope.
    store: OnceLock<(Store<DynamicObject>, ApiResource, bool)>,
    /// The cluster does not serve the kind (yet): it has no objects.
    absent: AtomicBool,
    synced: AtomicBool,
    stale: AtomicBool,
    error: Mutex<Option<String>>,
    /// Indexes of the values lookups select by, kept up to date by the watch.
    indexes: Mutex<Indexes<ObjectId>>,
}

/// An object's namespace (`""` when cluster-scoped) and name.
type ObjectId = (String, String);

fn id_of(object: &DynamicObject) -> ObjectId {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

impl Queryable for DynamicObject {
    fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }

    fn value_of(&self, key: &IndexKey) -> Option<&str> {
        match key {
            IndexKey::Annotation(name) => self
                .metadata
                .annotations
                .as_ref()?
                .get(name)
                .map(String::as_str),
            IndexKey::Field(path) => match path.segments() {
                [first, field] if first == "metadata" => match field.as_str() {
                    "name" => self.metadata.name.as_deref(),
                    "namespace" => self.metadata.namespace.as_deref(),
                    _ => None,
                },
                segments => segments
                    .iter()
                    .try_fold(&self.data, |value, segment| value.get(segment))?
                    .as_str(),
            },
        }
    }
}

impl Watched {
    /// Caches that will use `client`; without one, lookups fail with a clear message.
    pub fn new(client: Option<kube::Client>) -> Self {
        Self {
            client,
            watches: RwLock::new(HashMap::new()),
        }
    }

    /// Runs `f` on the kind's cache; `Ok(None)` when the cluster does not serve the kind.
    fn with_store<T>(
        &self,
        kind: &ContextKind,
        f: impl FnOnce(&Store<DynamicObject>, &ApiResource, bool, &WatchState) -> T,
    ) -> Result<Option<T>, LookupFailure> {
        let unavailable = LookupFailure::Unavailable;
        if self.client.is_none() {
            return Err(unavailable(format!(
                "bouncer has no cluster connection (in-cluster credentials or --kubeconfig) to look up {kind}"
            )));
        }
        let watches = self
            .watches
            .read()
            .map_err(|_| unavailable("context caches poisoned".to_owned()))?;
        let watch = watches
            .get(kind)
            .ok_or_else(|| unavailable(format!("{kind} is not watched (no policy declares it)")))?;
        if !watch.state.synced.load(Ordering::Acquire) {
            let why = watch.state.error.lock().ok().and_then(|e| e.clone());
            return Err(unavailable(format!(
                "the cache of {kind} has not synced yet{}",
                why.map(|w| format!(": {w}")).unwrap_or_default()
            )));
        }
        if watch.state.absent.load(Ordering::Acquire) {
            return Ok(None);
        }
        let (store, resource, namespaced) = watch
            .state
            .store
            .get()
            .ok_or_else(|| unavailable(format!("the cache of {kind} is not ready")))?;
        Ok(Some(f(store, resource, *namespaced, &watch.state)))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(watches) = self.watches.get_mut() {
            for watch in watches.values() {
                watch.task.abort();
            }
        }
    }
}

/// Starts the watch of one kind: discovery (retried), then a reflector that
/// runs until the task is aborted.
async fn run_watch(client: kube::Client, kind: ContextKind, state: Arc<WatchState>) {
    let (group, version) = kind.group_version();
    let gvk = GroupVersionKind::gvk(group, version, &kind.kind);
    let mut delay = std::time::Duration::from_millis(200);
    let (resource, capabilities) = loop {
        match kube::discovery::pinned_kind(&client, &gvk).await {
            Ok(found) => break found,
            Err(error) if not_served(&error) => {
                if !state.absent.swap(true, Ordering::AcqRel) {
                    tracing::info!(%kind, "the cluster does not serve this kind; lookups find no objects until it does");
                }
                set_error(
                    &state,
                    format!(
                        "{kind} is not served by the cluster ({}): it has no objects",
                        super::explain(&error)
                    ),
                );
                state.synced.store(true, Ordering::Release);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
            Err(error) => {
                set_error(
                    &state,
                    format!("discovering {kind}: {}", super::explain(&error)),
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        }
    };
    let namespaced = capabilities.scope == Scope::Namespaced;
    let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
    // Each watch task runs discovery once, so the slot is always empty here.
    let _ = state
        .store
        .set((writer.as_reader(), resource.clone(), namespaced));
    // Still synced when the kind was absent: the new store stays empty until
    // its first list completes, which is what the absent kind held.
    if state.absent.swap(false, Ordering::AcqRel) {
        tracing::info!(%kind, "the cluster serves this kind now; watching it");
        if let Ok(mut error) = state.error.lock() {
            *error = None;
        }
    }
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let types = TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    };
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(move |object: &mut DynamicObject| {
            object.metadata.managed_fields = None;
            // List responses omit apiVersion/kind on items; policies expect them.
            object.types = Some(types.clone());
        })
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                keep_indexed(&state, &event);
                if matches!(event, watcher::Event::InitDone) {
                    state.synced.store(true, Ordering::Release);
                    tracing::info!(%kind, "context cache synced");
                }
                if state.stale.swap(false, Ordering::AcqRel) {
                    tracing::info!(%kind, "context watch resumed");
                }
            }
            Err(error) => {
                if !state.stale.swap(true, Ordering::AcqRel) {
                    tracing::warn!(%kind, %error, "context watch failing; serving the cached state");
                }
                set_error(&state, error.to_string());
            }
        }
    }
}

/// Follows a watch event in the kind's indexes. A relist replaces the store
/// when it is done; the indexes are then made anew on the next lookup.
fn keep_indexed(state: &WatchState, event: &watcher::Event<DynamicObject>) {
    let Ok(mut indexes) = state.indexes.lock() else {
        return;
    };
    match event {
        watcher::Event::Apply(object) => {
            indexes.update(&id_of(object), |key| {
                object.value_of(key).map(str::to_owned)
            });
        }
        watcher::Event::Delete(object) => indexes.remove(&id_of(object)),
        watcher::Event::InitDone => indexes.clear(),
        watcher::Event::Init | watcher::Event::InitApply(_) => {}
    }
}

/// Whether discovery failed because the cluster does not serve the kind, as
/// opposed to failing to answer.
fn not_served(error: &kube::Error) -> bool {
    use kube::error::DiscoveryError;
    match error {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(
            DiscoveryError::MissingKind(_)
            | DiscoveryError::MissingApiGroup(_)
            | DiscoveryError::MissingResource(_),
        ) => true,
        _ => false,
    }
}

fn set_error(state: &WatchState, message: String) {
    if let Ok(mut error) = state.error.lock() {
        *error = Some(message);
    }
}

fn labels_of(object: &DynamicObject) -> BTreeMap<String, String> {
    object.metadata.labels.clone().unwrap_or_default()
}

fn json(object: &DynamicObject) -> Result<String, LookupFailure> {
    serde_json::to_string(object)
        .map_err(|e| LookupFailure::Unavailable(format!("cannot encode a cached object: {e}")))
}

impl ContextSource for Watched {
    fn get(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        name: &str,
        max_bytes: usize,
    ) -> Result<Option<String>, LookupFailure> {
        self.with_store(kind, |store, resource, namespaced, _| {
            let mut key = ObjectRef::new_with(name, resource.clone());
            if namespaced {
                key = key.within(namespace.unwrap_or_default());
            }
            let Some(object) = store.get(&key) else {
                return Ok(None);
            };
            let text = json(&object)?;
            if text.len() > max_bytes {
                return Err(too_large(max_bytes));
            }
            Ok(Some(text))
        })?
        .unwrap_or(Ok(None))
    }

    fn list(
        &self,
        kind: &ContextKind,
        namespace: Option<&str>,
        query: &Query,
        max_bytes: usize,
    ) -> Result<Vec<String>, LookupFailure> {
        self.with_store(kind, |store, resource, namespaced, state| {
            let indexed = query.exact().next().and_then(|(key, value)| {
                let mut indexes = state.indexes.lock().ok()?;
                indexes.lookup(&key, value, || {
                    store
                        .state()
                        .iter()
                        .map(|o| (id_of(o), o.value_of(&key).map(str::to_owned)))
                        .collect::<Vec<_>>()
                })
            });
            let candidates: Vec<Arc<DynamicObject>> = match indexed {
                Some(ids) => ids
                    .into_iter()
                    .filter_map(|(ns, name)| {
                        let mut key = ObjectRef::new_with(&name, resource.clone());
                        if namespaced {
                            key = key.within(&ns);
                        }
                        store.get(&key)
                    })
                    .collect(),
                None => store.state(),
            };
            let mut gathered = Gathered::new(max_bytes);
            for object in candidates
                .iter()
                .filter(|o| namespace.is_none() || o.metadata.namespace.as_deref() == namespace)
                .filter(|o| query.matches(&***o))
            {
                gathered.push(json(object)?)?;
            }
            Ok(gathered.into_texts())
        })?
        .unwrap_or(Ok(Vec::new()))
    }
}

impl NamespaceLabels for Watched {
    /// Known when some policy declares `v1` `Namespace`; otherwise unknown.
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let kind = ContextKind {
            api_version: "v1".into(),
            kind: "Namespace".into(),
        };
        self.with_store(&kind, |store, resource, _, _| {
            store
                .get(&ObjectRef::new_with(namespace, resource.clone()))
                .map(|o| labels_of(&o))
        })
        .ok()
        .flatten()
        .flatten()
    }
}

impl Cluster for Watched {
    fn watch(&self, kinds: &[ContextKind]) {
        let Some(client) = &self.client else {
            if !kinds.is_empty() {
                tracing::warn!(
                    kinds = ?kinds.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "policies declare context kinds but bouncer has no cluster connection; their lookups will fail"
                );
            }
            return;
        };
        let Ok(mut watches) = self.watches.write() else {
            return;
        };
        watches.retain(|kind, watch| {
            let keep = kinds.contains(kind);
            if !keep {
                watch.task.abort();
                tracing::info!(%kind, "no policy declares this kind any more; its watch stopped");
            }
            keep
        });
        for kind in kinds {
            if watches.contains_key(kind) {
                continue;
            }
            let state = Arc::new(WatchState::default());
            let task = tokio::spawn(run_watch(client.clone(), kind.clone(), state.clone()));
            tracing::info!(%kind, "watching for context lookups");
            watches.insert(kind.clone(), Watch { state, task });
        }
    }

    fn readiness(&self) -> Result<(), String> {
        let waiting: Vec<String> = self
            .health()
            .into_iter()
            .filter(|h| !h.synced)
            .map(|h| match h.error {
                Some(error) => format!("{} ({error})", h.kind),
                None => h.kind.to_string(),
            })
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "waiting for context caches to sync: {}",
                waiting.join(", ")
            ))
        }
    }

    fn health(&self) -> Vec<KindHealth> {
        let Ok(watches) = self.watches.read() else {
            return Vec::new();
        };
        let mut health: Vec<KindHealth> = watches
            .iter()
            .map(|(kind, watch)| {
                let state = &watch.state;
                let objects = state
                    .store
                    .get()
                    .map_or(0, |(store, _, _)| store.state().len());
                let stale = state.stale.load(Ordering::Acquire);
                let synced = state.synced.load(Ordering::Acquire);
                KindHealth {
                    kind: kind.clone(),
                    synced,
                    stale,
                    objects,
                    error: (stale || !synced)
                        .then(|| state.error.lock().ok().and_then(|e| e.clone()))
                        .flatten(),
                }
            })
            .collect();
        health.sort_by(|a, b| a.kind.cmp(&b.kind));
        health
    }
}
