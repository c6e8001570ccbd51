//! Reloading the configuration without downtime.
//!
//! On SIGHUP, or when the config file or a `.wasm` it references changes, the
//! new set is loaded in the background (compiling can take a while) and swapped
//! in atomically; requests in flight finish on the set they started with. A set
//! that fails to load is refused: the old one keeps serving, and `/readyz` and
//! the `config_last_reload_successful` metric say so.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::app::{AppState, ConfigStatus};
use super::tls::mtimes;
use crate::admission::PolicySet;
use crate::config::Config;
use crate::policy::PolicyEngine;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The embedded default configuration.
    Embedded,
    /// A file.
    File(PathBuf),
}

impl ConfigSource {
    /// How `/readyz` and logs name it.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "the embedded default config".into(),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// Reads the configuration.
    pub fn read(&self) -> Result<Config, crate::config::ConfigError> {
        match self {
            Self::Embedded => Ok(Config::default_config()),
            Self::File(path) => Config::from_file(path),
        }
    }
}

/// A loaded set and the files it came from, with their modification times as
/// they were *before* reading, so an edit made during the load is not missed.
pub struct Loaded {
    /// The policies.
    pub set: PolicySet,
    /// The config file and the `.wasm` files it references.
    pub files: Vec<PathBuf>,
    /// Their modification times.
    pub times: Vec<Option<std::time::SystemTime>>,
}

/// Reads and loads a configuration.
pub fn load(engine: &Arc<PolicyEngine>, source: &ConfigSource) -> anyhow::Result<Loaded> {
    let config_times = match source {
        ConfigSource::File(path) => file_times(std::slice::from_ref(path)),
        ConfigSource::Embedded => Vec::new(),
    };
    let config = source.read()?;
    let components = config.component_files();
    let times = [config_times, file_times(&components)].concat();
    let set = PolicySet::load(engine, &config)?;
    for warning in set.warnings() {
        tracing::warn!("{warning}");
    }
    let mut files = components;
    if let ConfigSource::File(path) = source {
        files.insert(0, path.clone());
    }
    Ok(Loaded { set, files, times })
}

/// Registers the SIGHUP handler. Call it before the server starts serving: until
/// a handler exists, SIGHUP's default action ends the process.
pub fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    }
}

/// Watches for SIGHUP (through `hangup`) and file changes and reloads, until the task is dropped.
pub async fn watch(
    state: Arc<AppState>,
    engine: Arc<PolicyEngine>,
    source: ConfigSource,
    mut files: Vec<PathBuf>,
    mut seen: Vec<Option<std::time::SystemTime>>,
    interval: Duration,
    mut hangup: Option<tokio::signal::unix::Signal>,
) {
    loop {
        let trigger = tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            () = tokio::time::sleep(interval) => {
                let now = file_times(&files);
                if now == seen { continue; }
                seen = now;
                "file change"
            }
        };
        tracing::info!(trigger, config = %source.describe(), "reloading configuration");
        let (engine2, source2) = (engine.clone(), source.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&engine2, &source2)).await;
        match loaded {
            Ok(Ok(Loaded {
                set,
                files: new_files,
                times,
            })) => {
                let count = set.entries().len();
                state.cluster.watch(&set.context_kinds());
                state.policies.store(Arc::new(set));
                state.status.store(Arc::new(ConfigStatus {
                    origin: source.describe(),
                    last_error: None,
                }));
                state.metrics.reload(true);
                files = new_files;
                seen = times;
                tracing::info!(policies = count, "configuration reloaded");
            }
            Ok(Err(error)) => refuse(&state, &source, format!("{error:#}")),
            Err(join) => refuse(&state, &source, format!("the loader crashed: {join}")),
        }
    }
}

fn refuse(state: &AppState, source: &ConfigSource, error: String) {
    tracing::error!(config = %source.describe(), %error, "configuration refused; the previous policies keep serving");
    state.status.store(Arc::new(ConfigStatus {
        origin: source.describe(),
        last_error: Some(error),
    }));
    state.metrics.reload(false);
}

fn file_times(files: &[PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    mtimes(&refs)
}
