//! Reloading the configuration without downtime.
//!
//! On SIGHUP, or when the config file or a `.wasm` it references changes, the
//! new set is loaded in the background (compiling can take a while) and swapped
//! in atomically; requests in flight finish on the set they started with. A set
//! that fails to load is refused: the old one keeps serving, and `/readyz` and
//! the `config_last_reload_successful` metric say so.
//!
//! A changed file is only read once it has stayed unchanged for the settle
//! time: an editor or `cp` that writes a file in pieces would otherwise have
//! its first half loaded as the whole configuration (ConfigMap mounts swap
//! atomically; direct edits do not). SIGHUP reloads at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::state::{AppState, ConfigStatus};
use crate::admission::loader::{FileStamp, Loaded, file_times, load};
use crate::admission::{PolicySet, Pulls};
use crate::config::ConfigSource;
use crate::policy::PolicyEngine;

/// [`load`] on a thread of its own. Not `spawn_blocking`: the runtime waits
/// for those when it shuts down, and a load waiting on a registry must not
/// hold SIGTERM up (each pull ends within `registry.timeout`, but that is
/// longer than a pod's grace period).
pub(super) async fn load_off_thread(
    engine: Arc<PolicyEngine>,
    source: ConfigSource,
    pulls: Pulls,
) -> anyhow::Result<Loaded> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bouncer-load".into())
        .spawn(move || {
            let loaded = load(&engine, &source, pulls);
            if let Ok(loaded) = &loaded {
                for warning in loaded.set.warnings() {
                    tracing::warn!("{warning}");
                }
            }
            let _ = sender.send(loaded.map_err(anyhow::Error::from));
        })
        .map_err(|e| anyhow::anyhow!("cannot start a thread to load the configuration: {e}"))?;
    receiver
        .await
        .map_err(|_| anyhow::anyhow!("the configuration loader crashed"))?
}

/// Why the set may not replace `current`: a failing entry that is loaded in
/// `current` (a reload must never take a serving policy away), or one that
/// is new (it would start answering by its failure mode unasked). Entries
/// that were already unloaded may stay so.
fn refusal(loaded: &Loaded, current: &PolicySet) -> Option<String> {
    let already: Vec<&str> = current.unloaded().map(|u| u.name.as_str()).collect();
    // Until the pulls after start have settled, only taking a loaded
    // policy away refuses a set: refusing for a new broken entry would
    // leave the pending ones pending.
    let settling = current.pending().next().is_some();
    let failing: Vec<_> = loaded
        .failures
        .iter()
        .filter(|f| !already.contains(&f.policy.as_str()))
        .filter(|f| {
            !settling
                || current
                    .entries()
                    .iter()
                    .any(|e| e.policy.name() == f.policy)
        })
        .map(ToString::to_string)
        .collect();
    (!failing.is_empty()).then(|| failing.join("; "))
}

/// Registers the SIGHUP handler. Call it before the server starts serving: until
/// a handler exists, SIGHUP's default action ends the process.
pub(super) fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    }
}

/// How the reloader watches.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watching {
    /// How often the files are checked for changes.
    pub interval: Duration,
    /// How long a changed file must stay unchanged before it is read.
    pub settle: Duration,
}

/// Watches for SIGHUP (through `hangup`) and file changes and reloads, until
/// the task is dropped. With `pull_first`, it starts with a load that asks the
/// registries what the start-up load took from the store alone.
///
/// A load never blocks the watch: a SIGHUP that arrives during one is queued
/// and carried out when it ends (each registry pull ends within
/// `registry.timeout`), and `/readyz` says so meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) async fn watch(
    state: Arc<AppState>,
    mut engine: Arc<PolicyEngine>,
    source: ConfigSource,
    mut files: Vec<PathBuf>,
    mut seen: Vec<FileStamp>,
    watching: Watching,
    mut hangup: Option<tokio::signal::unix::Signal>,
    pull_first: bool,
) {
    let mut next = pull_first.then_some("registry pulls after start");
    loop {
        let mut pulls = Pulls::Now;
        let trigger = match next.take() {
            Some(trigger) => trigger,
            None => tokio::select! {
                Some(()) = hangup_recv(&mut hangup) => "SIGHUP",
                () = tokio::time::sleep(watching.interval) => {
                    if let Some(why) = engine.reset_proof_lost() {
                        // The scan could now leave a swapped-out page of one
                        // review in the next one's instance: the same
                        // components go into an engine that resets in full.
                        match engine.with_full_reset() {
                            Ok(full) => {
                                tracing::warn!(%why, "the proof that memory cannot swap no longer holds; moving policy instances to the full reset");
                                engine = full;
                                pulls = Pulls::StoreOnly;
                                "memory may now swap"
                            }
                            Err(error) => {
                                tracing::error!(%error, %why, "memory may now swap, and an engine with the full reset cannot be made");
                                continue;
                            }
                        }
                    } else {
                    let now = file_times(&files);
                    if now == seen { continue; }
                    seen = settle(&state, &files, now, watching).await;
                    "file change"
                    }
                }
            },
        };
        set_pending(&state, Some(format!("a reload ({trigger}) is in progress")));
        tracing::info!(trigger, config = %source.describe(), "reloading configuration");
        let load = load_off_thread(engine.clone(), source.clone(), pulls);
        tokio::pin!(load);
        let loaded = loop {
            tokio::select! {
                loaded = &mut load => break loaded,
                Some(()) = hangup_recv(&mut hangup) => {
                    next = Some("SIGHUP during a reload");
                    set_pending(&state, Some(format!(
                        "a reload ({trigger}) is in progress; another (SIGHUP) follows when it ends"
                    )));
                }
            }
        };
        set_pending(&state, None);
        match loaded {
            Ok(loaded) => {
                if let Some(refusal) = refusal(&loaded, &state.policies.load()) {
                    refuse(&state, &source, refusal);
                    // Retry only after the next change, not every interval.
                    files = loaded.files;
                    seen = loaded.times;
                    continue;
                }
                let Loaded {
                    set,
                    files: new_files,
                    times,
                    ..
                } = loaded;
                let count = set.entries().len();
                state.cluster.watch(&set.context_kinds());
                set.start_serving(&engine);
                state.policies.store(Arc::new(set));
                if **state.reset.load() != *engine.reset() {
                    state.reset.store(Arc::new(engine.reset().clone()));
                    state.metrics.reset_path(engine.reset().path);
                }
                state.status.rcu(|status| ConfigStatus {
                    origin: source.describe(),
                    last_error: None,
                    pending: status.pending.clone(),
                });
                state.metrics.reload(true);
                files = new_files;
                seen = times;
                tracing::info!(policies = count, "configuration reloaded");
            }
            Err(error) => refuse(&state, &source, format!("{error:#}")),
        }
    }
}

async fn hangup_recv(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup.as_mut() {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits until `files` have stayed as `now` for the settle time, saying so on
/// `/readyz`; returns their stamps then.
async fn settle(
    state: &AppState,
    files: &[PathBuf],
    mut now: Vec<FileStamp>,
    watching: Watching,
) -> Vec<FileStamp> {
    let mut stable_since = tokio::time::Instant::now();
    while stable_since.elapsed() < watching.settle {
        let changed: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        set_pending(
            state,
            Some(format!(
                "a change to {} was seen; it is loaded once the files stay unchanged for {}",
                changed.join(", "),
                humantime::format_duration(watching.settle)
            )),
        );
        tokio::time::sleep(watching.interval.min(watching.settle)).await;
        let latest = file_times(files);
        if latest != now {
            tracing::info!("configuration files still changing; waiting for them to settle");
            now = latest;
            stable_since = tokio::time::Instant::now();
        }
    }
    now
}

fn set_pending(state: &AppState, pending: Option<String>) {
    state.status.rcu(|status| ConfigStatus {
        pending: pending.clone(),
        ..(**status).clone()
    });
}

fn refuse(state: &AppState, source: &ConfigSource, error: String) {
    tracing::error!(config = %source.describe(), %error, "configuration refused; the previous policies keep serving");
    state.status.rcu(|status| ConfigStatus {
        origin: source.describe(),
        last_error: Some(error.clone()),
        pending: status.pending.clone(),
    });
    state.metrics.reload(false);
}
