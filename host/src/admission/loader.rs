//! The one way a configuration becomes a policy set, for every command and
//! for the server's reloads: read the configuration, resolve each entry's
//! component (`sources.rs`), load it, and build its match rules. What fails is
//! kept beside the set as a typed [`LoadFailure`], and the set holds the entry
//! as unloaded, so one broken entry does not stop the others from serving.

use std::path::PathBuf;
use std::sync::Arc;

use super::load_error::{EntryError, LoadError, LoadFailure};
use super::matching::Matcher;
use super::set::{Candidate, Entry, Member, PolicySet, Unloaded, everything};
use super::sources::{Pulls, Resolution, resolve_all};
use crate::config::{Config, ConfigError, ConfigSource, PolicyConfig, candidate_name};
use crate::policy::PolicyEngine;

/// A loaded set and the files it came from, with their modification times as
/// they were *before* reading, so an edit made during the load is not missed.
pub struct Loaded {
    /// The policies; entries that failed are in it as unloaded.
    pub set: PolicySet,
    /// Why each unloaded entry failed, in configuration order; pending
    /// entries (not pulled yet) have none.
    pub failures: Vec<LoadFailure>,
    /// The config file and the `.wasm` files it references.
    pub files: Vec<PathBuf>,
    /// Their modification times and lengths.
    pub times: Vec<FileStamp>,
}

impl Loaded {
    /// The set, or every failure when there is one: for commands that judge
    /// with the whole configuration or not at all.
    ///
    /// # Errors
    /// [`LoadError`] when any entry failed.
    pub fn strict(self) -> Result<Self, LoadError> {
        if self.failures.is_empty() {
            Ok(self)
        } else {
            Err(LoadError {
                failures: self.failures,
            })
        }
    }
}

/// What is compared to see a file change: its modification time and length.
pub type FileStamp = Option<(std::time::SystemTime, u64)>;

/// The stamps of `files`, in order.
pub fn file_times(files: &[PathBuf]) -> Vec<FileStamp> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// Reads the configuration of `source` and loads every policy that can be
/// loaded, registry entries resolved as `pulls` says (in parallel). With
/// [`Pulls::StoreOnly`], an entry only the registry can give is unloaded and
/// pending (no failure), and [`PolicySet::awaiting_registry`] names what a
/// later load with [`Pulls::Now`] must settle.
///
/// # Errors
/// The configuration cannot be read or is invalid.
pub fn load(
    engine: &Arc<PolicyEngine>,
    source: &ConfigSource,
    pulls: Pulls,
) -> Result<Loaded, ConfigError> {
    let config_times = file_times(source.file().map(std::slice::from_ref).unwrap_or_default());
    let config = source.read()?;
    let components = config.component_files();
    let times = [config_times, file_times(&components)].concat();
    let (set, failures) = load_set(engine, &config, pulls);
    let mut files = components;
    if let Some(path) = source.file() {
        files.insert(0, path.clone());
    }
    Ok(Loaded {
        set,
        failures,
        files,
        times,
    })
}

/// Instance slots kept back from the policies' quotas for `validate-settings`
/// calls and for a reload's new set while the old one still serves: an
/// eighth of the pool, 1 to 16.
fn reserved_instances(max_instances: u32) -> u32 {
    (max_instances / 8).clamp(1, 16)
}

fn load_set(
    engine: &Arc<PolicyEngine>,
    config: &Config,
    pulls: Pulls,
) -> (PolicySet, Vec<LoadFailure>) {
    let mut entries = Vec::new();
    let mut members = Vec::new();
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let mut awaiting = Vec::new();
    let reserved = reserved_instances(engine.max_instances());
    let mut pool = Pool {
        used: 0,
        available: engine.max_instances().saturating_sub(reserved).max(1),
        reserved,
    };
    // Candidates are resolved with the entries (one round of registry pulls)
    // and loaded after them: the entries' slots come first.
    let candidates = config.candidates();
    let expanded = Config {
        policies: [config.policies.clone(), candidates.clone()].concat(),
        ..config.clone()
    };
    let mut resolutions = resolve_all(engine, &expanded, pulls);
    let candidate_resolutions = resolutions.split_off(config.policies.len());
    for (entry, resolution) in config.policies.iter().zip(resolutions) {
        let asks_registry = match &resolution {
            Ok(Resolution::Pending) => true,
            Ok(Resolution::Registry { fetched, .. }) => fetched.stale.is_some(),
            _ => false,
        };
        if pulls == Pulls::StoreOnly && asks_registry {
            awaiting.push(entry.name.clone());
        }
        match pool.load(engine, entry, resolution, &mut warnings) {
            Ok(Some(loaded)) => {
                if let Some(metadata) = loaded.policy.metadata() {
                    warnings.extend(super::disagreement::find(entry, metadata, loaded.mutating));
                }
                members.push(Member::Loaded(entries.len()));
                entries.push(loaded);
            }
            Ok(None) => members.push(Member::Unloaded(Box::new(unloaded(
                entry,
                format!(
                    "not pulled yet: its registry is being asked (at most {}); until then it \
                     answers by its failure mode",
                    humantime::format_duration(config.registry.timeout)
                ),
                true,
            )))),
            Err(error) => {
                let failure = LoadFailure {
                    policy: entry.name.clone(),
                    error,
                };
                members.push(Member::Unloaded(Box::new(unloaded(
                    entry,
                    failure.reason(),
                    false,
                ))));
                failures.push(failure);
            }
        }
    }
    for (candidate, resolution) in candidates.iter().zip(candidate_resolutions) {
        let Some(entry) = primary_of(&mut entries, &candidate.name) else {
            // The entry itself did not load: there is nothing to compare with.
            continue;
        };
        if pulls == Pulls::StoreOnly && matches!(resolution, Ok(Resolution::Pending)) {
            awaiting.push(candidate.name.clone());
        }
        entry.shadow = Some(
            match pool.load(engine, candidate, resolution, &mut warnings) {
                Ok(Some(loaded)) => Candidate::Loaded {
                    policy: loaded.policy,
                    source: candidate.source.clone(),
                },
                Ok(None) => Candidate::Unloaded {
                    reason: "not pulled yet: its registry is being asked".into(),
                    source: candidate.source.clone(),
                },
                Err(error) => {
                    let reason = LoadFailure {
                        policy: candidate.name.clone(),
                        error,
                    }
                    .reason();
                    warnings.push(format!(
                        "policy `{}`: its shadow candidate is not loaded (the policy serves \
                     unshadowed): {reason}",
                        entry.policy.name()
                    ));
                    Candidate::Unloaded {
                        reason,
                        source: candidate.source.clone(),
                    }
                }
            },
        );
    }
    (
        PolicySet::new(
            entries,
            members,
            warnings,
            awaiting,
            config.exceptions.clone(),
        ),
        failures,
    )
}

/// The instance pool's slots, taken entry by entry in configuration order.
struct Pool {
    used: u32,
    available: u32,
    reserved: u32,
}

impl Pool {
    /// Loads `entry` from its resolution if its `concurrency` fits in what
    /// is left of the pool; its slots are taken once it has loaded.
    fn load(
        &mut self,
        engine: &Arc<PolicyEngine>,
        entry: &PolicyConfig,
        resolution: Result<Resolution, EntryError>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Entry>, EntryError> {
        let concurrency = entry.limits().concurrency;
        if self.used + concurrency > self.available {
            return Err(EntryError::Slots {
                total: self.used + concurrency,
                available: self.available,
                reserved: self.reserved,
            });
        }
        let loaded = load_entry(engine, entry, resolution?, warnings)?;
        if loaded.is_some() {
            self.used += concurrency;
        }
        Ok(loaded)
    }
}

/// The loaded entry whose candidate is named `candidate`.
fn primary_of<'e>(entries: &'e mut [Entry], candidate: &str) -> Option<&'e mut Entry> {
    entries
        .iter_mut()
        .find(|e| candidate_name(e.policy.name()) == candidate)
}

/// The longest reason an unloaded entry keeps: it is copied into `/readyz`,
/// every response for that policy and a log line per review.
const MAX_REASON_CHARS: usize = 1024;

fn unloaded(entry: &PolicyConfig, reason: String, pending: bool) -> Unloaded {
    let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((at, _)) => format!("{}… (cut at {MAX_REASON_CHARS} characters)", &reason[..at]),
        None => reason,
    };
    Unloaded {
        name: entry.name.clone(),
        reason,
        pending,
        failure: entry.failure,
        // Without its metadata it is not known to mutate.
        mutating: entry.mutating.unwrap_or(false),
        // Config checks the rules; if they still fail, answer for every request.
        matcher: Matcher::new(&entry.rules).unwrap_or_else(|_| everything()),
    }
}

/// Loads one entry from its resolved component; `None` when it is pending.
fn load_entry(
    engine: &Arc<PolicyEngine>,
    entry: &PolicyConfig,
    resolution: Resolution,
    warnings: &mut Vec<String>,
) -> Result<Option<Entry>, EntryError> {
    let Some(source) = resolution.source() else {
        return Ok(None);
    };
    let pinned = match &resolution {
        Resolution::Registry { fetched, .. } => {
            if let Some(why) = &fetched.stale {
                warnings.push(format!(
                    "policy `{}`: {why}; serving the last good {}",
                    entry.name, fetched.pinned
                ));
            }
            Some(fetched.pinned.to_string())
        }
        _ => None,
    };
    let policy = engine
        .load(&entry.name, &source, &entry.settings, entry.limits())
        .map_err(EntryError::Policy)?
        .with_context_kinds(entry.context.clone());
    // What an entry does not say follows the policy's own metadata.
    let mutating = entry
        .mutating
        .or(policy.metadata().map(|m| m.mutating))
        .unwrap_or(false);
    let matcher =
        Matcher::new(&entry.rules.filled_from(policy.metadata())).map_err(EntryError::Match)?;
    // Only a component that loaded becomes the tag's last good one (its
    // match rules built too).
    if let Resolution::Registry {
        fetched,
        reference,
        store,
    } = &resolution
        && let Err(error) = fetched.loaded(reference, store)
    {
        warnings.push(format!("policy `{}`: {error}", entry.name));
    }
    Ok(Some(Entry {
        policy,
        mode: entry.mode,
        failure: entry.failure,
        mutating,
        pinned,
        matcher,
        shadow: None,
    }))
}
