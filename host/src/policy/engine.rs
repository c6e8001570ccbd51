//! The policy engine: one wasmtime engine, its compile cache, and the set of
//! prepared components.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{Policy as PolicyWorld, PolicyPre};
use super::cache::ArtifactCache;
use super::error::PolicyError;
use super::imports::StoreState;
use super::limits::Limits;
use super::loaded::{Policy, Prepared};
use super::metadata::Metadata;
use super::quota::Quotas;
use super::reset::{ResetChoice, ResetDecision, ResetPath};
use super::source::Source;
use super::wasi;

/// How often the epoch advances. Deadlines are rounded up to whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Settings of a [`PolicyEngine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled policies are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// How many policy instances may exist at once (concurrent evaluations).
    pub max_instances: u32,
    /// Bytes of linear memory every live instance together may hold (see
    /// `quota.rs` for how it is shared between policies).
    pub instance_memory: usize,
    /// How instance slots are reset between evaluations (see `reset.rs`).
    pub reset: ResetChoice,
}

impl EngineConfig {
    /// The default instance memory budget outside a server: far above what
    /// offline tools use, and still a bound.
    pub const DEFAULT_INSTANCE_MEMORY: usize = 2 * 1024 * 1024 * 1024;
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
            max_instances: 256,
            instance_memory: Self::DEFAULT_INSTANCE_MEMORY,
            reset: ResetChoice::Auto,
        }
    }
}

/// The default compile cache: `$XDG_CACHE_HOME/bouncer/compiled` or the platform equivalent.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("bouncer").join("compiled"))
}

/// What `bouncer inspect` shows of a component.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    /// The policy's own metadata; `None` when built against WIT 0.1.0 or 0.1.1.
    pub metadata: Option<Metadata>,
    /// Component size in bytes.
    pub size: usize,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// Whether it imports WASI (built for `wasm32-wasip2`, or from JavaScript or Python).
    pub imports_wasi: bool,
}

/// Counters of how components were obtained, for tests and metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Components compiled with Cranelift.
    pub compiled: AtomicU64,
    /// Components loaded from the on-disk cache.
    pub cache_hits: AtomicU64,
    /// Components already prepared in this engine and shared.
    pub reused: AtomicU64,
}

/// Loads policies and hosts their evaluations.
///
/// # Sandbox
/// Policies are linked against the `bouncer:policy` interfaces and a locked-down
/// WASI (see `wasi.rs`: no files, network, environment or arguments, frozen clocks):
/// - an import the host does not provide (such as `wasi:http`) links, but traps if called;
/// - every evaluation runs in a fresh instance from a pooled slot, with its own
///   deadline (epoch interruption) and memory cap.
pub struct PolicyEngine {
    engine: wasmtime::Engine,
    linker: Linker<StoreState>,
    cache: Option<ArtifactCache>,
    prepared: Mutex<HashMap<String, Prepared>>,
    quotas: Quotas,
    max_instances: u32,
    stats: EngineStats,
    config: EngineConfig,
    reset: ResetDecision,
}

impl PolicyEngine {
    /// Creates an engine with the pooling allocator and starts its epoch ticker.
    ///
    /// # Errors
    /// wasmtime cannot reserve the instance pool, or the cache directory cannot be created.
    pub fn new(config: &EngineConfig) -> Result<Arc<Self>, PolicyError> {
        let reset = ResetDecision::decide(config.reset);
        let scan = match reset.path {
            ResetPath::Scan => wasmtime::Enabled::Yes,
            ResetPath::Full => wasmtime::Enabled::No,
        };
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_core_instances(config.max_instances.saturating_mul(4))
            .max_memory_size(Limits::MAX_MEMORY)
            // Keeping the first pages of a reused slot resident saves page
            // faults on every instantiation (about a third of the call cost).
            // The full reset rewrites all of them each time, so they should be
            // the pages a review touches: a built-in's 128 KiB stack, its data
            // and its first allocations (`STACK_SIZE` in policies/build). 256
            // KiB measured best for the full reset (host/benches/README.md).
            .linear_memory_keep_resident(256 * 1024)
            .table_keep_resident(64 * 1024)
            .pagemap_scan(scan);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&wasm)
            .map_err(|e| engine_error("cannot create the wasmtime engine", e))?;

        let mut linker = Linker::new(&engine);
        PolicyWorld::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state)
            .map_err(|e| engine_error("cannot link the host interface", e))?;
        wasi::add_to_linker(&mut linker).map_err(|e| engine_error("cannot link WASI", e))?;

        let cache = match &config.cache_dir {
            Some(dir) => match ArtifactCache::open(dir, &engine) {
                Ok(cache) => Some(cache),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "compiled-policy cache disabled");
                    None
                }
            },
            None => None,
        };
        start_epoch_ticker(&engine);
        Ok(Arc::new(Self {
            engine,
            linker,
            cache,
            prepared: Mutex::new(HashMap::new()),
            quotas: Quotas::new(config.instance_memory),
            max_instances: config.max_instances,
            stats: EngineStats::default(),
            config: config.clone(),
            reset,
        }))
    }

    /// How instance slots are reset, and why.
    pub fn reset(&self) -> &ResetDecision {
        &self.reset
    }

    /// A new engine with this one's settings and the full reset: for when the
    /// scan's proof no longer holds (policies must be loaded into it anew).
    ///
    /// # Errors
    /// As [`PolicyEngine::new`].
    pub fn with_full_reset(&self) -> Result<Arc<Self>, PolicyError> {
        Self::new(&EngineConfig {
            reset: ResetChoice::Full,
            ..self.config.clone()
        })
    }

    /// Whether the scan is in use although its proof no longer holds; why.
    pub fn reset_proof_lost(&self) -> Option<String> {
        self.reset.proof_lost(self.config.reset)
    }

    /// How many instances the pool holds: the most evaluations that can run at once.
    pub fn max_instances(&self) -> u32 {
        self.max_instances
    }

    /// The instance memory budget, in bytes.
    pub fn instance_memory(&self) -> usize {
        self.quotas.budget()
    }

    /// Makes `names` the configured policies: each is guaranteed an equal part
    /// of half the instance memory budget (see `quota.rs`). Call it when a set
    /// of policies starts serving.
    pub fn apportion(&self, names: &[&str]) {
        self.quotas.apportion(names);
    }

    /// The compile cache's directory, when there is one: other caches
    /// (the registry store) live beside what it holds.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache.as_ref().map(ArtifactCache::dir)
    }

    /// How components were obtained so far.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Loads a policy: compiles (or reuses) its component, then checks its settings
    /// with the policy's own `validate-settings`.
    ///
    /// # Errors
    /// The source cannot be read, is not a policy component, or refuses `settings`.
    pub fn load(
        self: &Arc<Self>,
        name: &str,
        source: &Source,
        settings: &serde_json::Value,
        limits: Limits,
    ) -> Result<Policy, PolicyError> {
        let bytes = source.bytes(name)?;
        let policy = self.described(name, &bytes, settings.to_string(), limits)?;
        if let Some(metadata) = policy.metadata() {
            metadata
                .check_settings(settings)
                .map_err(|problems| PolicyError::Settings {
                    policy: name.to_owned(),
                    message: format!(
                        "they do not match its settings schema:\n  {}",
                        problems.join("\n  ")
                    ),
                })?;
        }
        policy.validate_settings()?;
        Ok(policy)
    }

    /// Compiles a component and asks it to describe itself, without settings.
    ///
    /// # Errors
    /// The source cannot be read, is not a policy component, or its metadata is unusable.
    pub fn describe(
        self: &Arc<Self>,
        name: &str,
        source: &Source,
    ) -> Result<Description, PolicyError> {
        let bytes = source.bytes(name)?;
        let policy = self.described(name, &bytes, "{}".to_owned(), Limits::default())?;
        Ok(Description {
            metadata: policy.metadata().cloned(),
            size: bytes.len(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            imports_wasi: policy.imports_wasi(),
        })
    }

    /// A policy from component bytes, with the metadata it declares (settings unchecked).
    fn described(
        &self,
        name: &str,
        bytes: &[u8],
        settings: String,
        limits: Limits,
    ) -> Result<Policy, PolicyError> {
        let quota = self.quotas.get(name, limits.concurrency);
        let mut policy = Policy::new(name, self.prepare(name, bytes)?, settings, limits, quota);
        policy.load_metadata()?;
        Ok(policy)
    }

    /// Returns the prepared instance factory for a component, compiling at most once.
    fn prepare(&self, name: &str, bytes: &[u8]) -> Result<Prepared, PolicyError> {
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(pre) = self.lock_prepared().get(&digest) {
            self.stats.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(pre.clone());
        }
        let component = self.component(name, &digest, bytes)?;
        let contract = |e: wasmtime::Error| PolicyError::Contract {
            policy: name.to_owned(),
            source: e.into(),
        };
        // Link against what the host provides first: trap stubs are matched by
        // exact name, so adding them up front would shadow a WASI import that the
        // linker resolves by semver (a guest's 0.2.9 against the host's 0.2.12).
        let pre = match self.linker.instantiate_pre(&component) {
            Ok(pre) => pre,
            Err(_) => {
                let mut linker = self.linker.clone();
                linker
                    .define_unknown_imports_as_traps(&component)
                    .map_err(contract)?;
                linker.instantiate_pre(&component).map_err(contract)?
            }
        };
        let prepared = Prepared {
            pre: PolicyPre::new(pre).map_err(contract)?,
            wasi: wasi::imports_wasi(&component, &self.engine),
            metadata: component.get_export_index(None, "metadata").is_some(),
        };
        self.lock_prepared().insert(digest, prepared.clone());
        Ok(prepared)
    }

    fn component(&self, name: &str, digest: &str, bytes: &[u8]) -> Result<Component, PolicyError> {
        if let Some(component) = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, digest))
        {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        if let Err(why) = header(bytes) {
            return Err(PolicyError::Compile {
                policy: name.to_owned(),
                source: anyhow::anyhow!(why).into(),
            });
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| PolicyError::Compile {
            policy: name.to_owned(),
            source: e.into(),
        })?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            match component.serialize() {
                Ok(artifact) => cache.store(digest, &artifact),
                Err(error) => {
                    tracing::warn!(policy = name, %error, "cannot serialise compiled policy");
                }
            }
        }
        Ok(component)
    }

    fn lock_prepared(&self) -> std::sync::MutexGuard<'_, HashMap<String, Prepared>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (single inserts), so a poisoned lock is still usable.
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn engine_error(message: &str, error: wasmtime::Error) -> PolicyError {
    PolicyError::Engine {
        message: message.to_owned(),
        source: error.into(),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &wasmtime::Engine) {
    let weak = engine.weak();
    let spawned = thread::Builder::new()
        .name("bouncer-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the epoch ticker; policy deadlines will not fire");
    }
}

/// Says in one line what `bytes` are when they are not a component:
/// wasmparser's own errors print the expected magic bytes as a multi-line
/// debug list, which would end up in every denial of the policy.
fn header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];
    if !bytes.starts_with(MAGIC) {
        let shown: String = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(format!(
            "it is not WebAssembly (it starts with `{shown}`, not `00 61 73 6d`, \\0asm); is it the .wasm file you meant?"
        ));
    }
    match bytes.get(6..8) {
        Some(layer) if layer == COMPONENT_LAYER => Ok(()),
        Some([0x00, 0x00]) => Err(
            "it is a core WebAssembly module, not a component; build it as a component (cargo's wasm32-wasip2 target, componentize-js, componentize-py) or wrap it with `wasm-tools component new`".into(),
        ),
        _ => Err("its WebAssembly header is truncated or of an unknown version".into()),
    }
}

#[cfg(test)]
mod header_tests {
    use super::header;

    #[test]
    fn what_is_not_a_component_is_said_in_one_line() {
        let html = header(b"<!doctype html><html>").unwrap_err();
        assert!(
            html.contains("not WebAssembly") && html.contains("3c 21 64 6f"),
            "{html}"
        );
        let module = header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(module.contains("core WebAssembly module"), "{module}");
        assert!(header(b"\0asm").is_err());
        assert!(header(b"\0asm\x0d\0\x01\0").is_ok());
        for message in [html, module] {
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
