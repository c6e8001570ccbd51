//! A loaded configuration: the policies in order, each with its compiled match
//! rules, ready to review requests (`admission::reviewing`).

use std::collections::HashMap;
use std::sync::Arc;

use super::matching::Matcher;
use super::sources::{Pulls, Resolution, resolve_all};
use crate::config::{Config, FailureMode, MatchRules, Mode, PolicyConfig};
use crate::policy::{Policy, PolicyEngine, PolicyError};

/// One configured policy, loaded.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The loaded policy.
    pub policy: Policy,
    /// Enforce or monitor.
    pub mode: Mode,
    /// What the policy's own failure means.
    pub failure: FailureMode,
    /// Whether it runs on `/mutate`.
    pub mutating: bool,
    /// For a registry source, the reference pinned to the digest it resolved to.
    pub pinned: Option<String>,
    pub(super) matcher: Matcher,
}

/// Loading a configuration failed for one or more policies.
#[derive(Debug, thiserror::Error)]
#[error("{} of the configured policies cannot be loaded: {}", errors.len(), errors.iter().map(|e| format!("{e:#}")).collect::<Vec<_>>().join("; "))]
pub struct LoadError {
    /// Every failure, in configuration order.
    pub errors: Vec<anyhow::Error>,
}

/// A configured policy that could not be loaded. It still answers for the
/// requests it matches, by its failure mode: closed denies them saying why,
/// open allows them with a warning.
#[derive(Debug, Clone)]
pub struct Unloaded {
    /// The entry's name.
    pub name: String,
    /// Why it is not loaded.
    pub reason: String,
    /// Not failed but not pulled yet: its registry is being asked.
    pub pending: bool,
    /// What its absence means for the requests it matches.
    pub failure: FailureMode,
    pub(super) mutating: bool,
    pub(super) matcher: Matcher,
}

impl Entry {
    /// Its effective `match` rules: the configuration's, with what they leave
    /// out taken from the policy's metadata.
    pub fn match_rules(&self) -> &MatchRules {
        self.matcher.rules()
    }

    /// A policy that sees every request (`bouncer eval`, tests, benchmarks).
    pub fn matching_everything(
        policy: Policy,
        mode: Mode,
        failure: FailureMode,
        mutating: bool,
    ) -> Self {
        Self {
            policy,
            mode,
            failure,
            mutating,
            pinned: None,
            matcher: everything(),
        }
    }
}

fn everything() -> Matcher {
    Matcher::new(&MatchRules::default()).expect("empty match rules always build")
}

impl Unloaded {
    /// What answering for it means: a failure by its failure mode.
    pub(super) fn error(&self) -> PolicyError {
        PolicyError::NotLoaded {
            policy: self.name.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// One configuration entry, in evaluation order.
#[derive(Debug, Clone)]
pub(super) enum Member {
    Loaded(usize),
    Unloaded(Box<Unloaded>),
}

/// Instance slots kept back from the policies' quotas for `validate-settings`
/// calls and for a reload's new set while the old one still serves: an
/// eighth of the pool, 1 to 16.
fn reserved_instances(max_instances: u32) -> u32 {
    (max_instances / 8).clamp(1, 16)
}

/// The policies of a configuration, loaded, in evaluation order.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(super) entries: Vec<Entry>,
    pub(super) members: Vec<Member>,
    by_name: HashMap<String, usize>,
    warnings: Vec<String>,
    /// Entries whose registry was not asked ([`Pulls::StoreOnly`]): pending,
    /// or serving a tag's last good component.
    awaiting: Vec<String>,
}

impl PolicySet {
    /// Loads every policy of `config`; all failures are collected, not just the first.
    ///
    /// # Errors
    /// [`LoadError`] when any entry cannot be loaded.
    pub fn load(engine: &Arc<PolicyEngine>, config: &Config) -> Result<Self, LoadError> {
        let (set, errors) = Self::load_available(engine, config);
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(LoadError { errors })
        }
    }

    /// A set of one entry.
    pub fn of_one(entry: Entry) -> Self {
        let by_name = HashMap::from([(entry.policy.name().to_owned(), 0)]);
        Self {
            entries: vec![entry],
            members: vec![Member::Loaded(0)],
            by_name,
            warnings: Vec::new(),
            awaiting: Vec::new(),
        }
    }

    /// Loads what can be loaded: an entry that fails becomes [`Unloaded`] and
    /// its error is returned beside the set, so one broken entry does not stop
    /// the others from serving. Registry entries are pulled in parallel.
    pub fn load_available(
        engine: &Arc<PolicyEngine>,
        config: &Config,
    ) -> (Self, Vec<anyhow::Error>) {
        Self::load_with(engine, config, Pulls::Now)
    }

    /// As [`PolicySet::load_available`], with registry entries resolved as
    /// `pulls` says. With [`Pulls::StoreOnly`], an entry only the registry can
    /// give is [`Unloaded`] and pending (no error), and
    /// [`PolicySet::awaiting_registry`] names what a later load with
    /// [`Pulls::Now`] must settle.
    pub fn load_with(
        engine: &Arc<PolicyEngine>,
        config: &Config,
        pulls: Pulls,
    ) -> (Self, Vec<anyhow::Error>) {
        let mut entries = Vec::new();
        let mut members = Vec::new();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut awaiting = Vec::new();
        let mut slots = 0u32;
        let reserved = reserved_instances(engine.max_instances());
        let available = engine.max_instances().saturating_sub(reserved).max(1);
        let resolutions = resolve_all(engine, config, pulls);
        for (entry, resolution) in config.policies.iter().zip(resolutions) {
            let concurrency = entry.limits().concurrency;
            let asks_registry = match &resolution {
                Ok(Resolution::Pending) => true,
                Ok(Resolution::Registry { fetched, .. }) => fetched.stale.is_some(),
                _ => false,
            };
            if pulls == Pulls::StoreOnly && asks_registry {
                awaiting.push(entry.name.clone());
            }
            let loaded = if slots + concurrency > available {
                Err(anyhow::anyhow!(
                    "policy `{}`: the policies' concurrency adds up to {}, more than the {available} \
                     instance slots the engine can give them (--max-instances minus {reserved}); \
                     lower `concurrency` or raise --max-instances",
                    entry.name,
                    slots + concurrency
                ))
            } else {
                resolution.and_then(|r| load_entry(engine, entry, r, &mut warnings))
            };
            match loaded {
                Ok(Some(loaded)) => {
                    slots += concurrency;
                    if let Some(metadata) = loaded.policy.metadata() {
                        warnings.extend(super::disagreement::find(
                            entry,
                            metadata,
                            loaded.mutating,
                        ));
                    }
                    members.push(Member::Loaded(entries.len()));
                    entries.push(loaded);
                }
                Ok(None) => members.push(Member::Unloaded(Box::new(Unloaded::new(
                    entry,
                    format!(
                        "not pulled yet: its registry is being asked (at most {}); until then it \
                         answers by its failure mode",
                        humantime::format_duration(config.registry.timeout)
                    ),
                    true,
                )))),
                Err(error) => {
                    members.push(Member::Unloaded(Box::new(Unloaded::new(
                        entry,
                        format!("{error:#}"),
                        false,
                    ))));
                    errors.push(error);
                }
            }
        }
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.policy.name().to_owned(), i))
            .collect();
        let set = Self {
            entries,
            members,
            by_name,
            warnings,
            awaiting,
        };
        (set, errors)
    }

    /// Entries a load with [`Pulls::StoreOnly`] left to the registry: pending,
    /// or serving a tag's last good component until the registry answers.
    pub fn awaiting_registry(&self) -> &[String] {
        &self.awaiting
    }

    /// Entries whose registry is being asked; until it answers they answer
    /// by their failure mode.
    pub fn pending(&self) -> impl Iterator<Item = &Unloaded> {
        self.unloaded().filter(|u| u.pending)
    }

    /// Where configuration entries disagree with their policies' metadata
    /// (kinds or operations the policy does not judge, mutation it never does).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The loaded entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries that could not be loaded, in order.
    pub fn unloaded(&self) -> impl Iterator<Item = &Unloaded> {
        self.members.iter().filter_map(|m| match m {
            Member::Unloaded(u) => Some(&**u),
            Member::Loaded(_) => None,
        })
    }

    /// Tells the engine which policies now serve, so each gets its share of
    /// the instance memory budget. Call it when the set starts serving.
    pub fn start_serving(&self, engine: &PolicyEngine) {
        let names: Vec<&str> = self.entries.iter().map(|e| e.policy.name()).collect();
        engine.apportion(&names);
    }

    /// Every kind some policy may look up, each once: what serve mode watches.
    pub fn context_kinds(&self) -> Vec<crate::policy::ContextKind> {
        let mut kinds: Vec<_> = self
            .entries
            .iter()
            .flat_map(|e| e.policy.context_kinds().iter().cloned())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Whether a policy of this name is configured (loaded or not).
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.unloaded().any(|u| u.name == name)
    }
}

/// The longest reason an unloaded entry keeps: it is copied into `/readyz`,
/// every response for that policy and a log line per review.
const MAX_REASON_CHARS: usize = 1024;

impl Unloaded {
    fn new(entry: &PolicyConfig, reason: String, pending: bool) -> Self {
        let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
            Some((at, _)) => format!("{}… (cut at {MAX_REASON_CHARS} characters)", &reason[..at]),
            None => reason,
        };
        Self {
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
}

/// Loads one entry from its resolved component; `None` when it is pending.
fn load_entry(
    engine: &Arc<PolicyEngine>,
    entry: &PolicyConfig,
    resolution: Resolution,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<Entry>> {
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
        .load(&entry.name, &source, &entry.settings, entry.limits())?
        .with_context_kinds(entry.context.clone());
    // What an entry does not say follows the policy's own metadata.
    let mutating = entry
        .mutating
        .or(policy.metadata().map(|m| m.mutating))
        .unwrap_or(false);
    let matcher = Matcher::new(&entry.rules.filled_from(policy.metadata()))
        .map_err(|m| anyhow::anyhow!("policy `{}`: {m}", entry.name))?;
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
    }))
}
