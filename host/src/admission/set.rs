//! A loaded configuration: the policies in order, each with its compiled match
//! rules, ready to review requests (`admission::reviewing`).

use std::collections::HashMap;
use std::sync::Arc;

use super::matching::Matcher;
use crate::config::{Config, FailureMode, MatchRules, Mode, Origin, PolicyConfig};
use crate::policy::{Policy, PolicyEngine, PolicyError, Source};
use crate::registry::{Store, default_store_dir, fetch};

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
        }
    }

    /// Loads what can be loaded: an entry that fails becomes [`Unloaded`] and
    /// its error is returned beside the set, so one broken entry does not stop
    /// the others from serving.
    pub fn load_available(
        engine: &Arc<PolicyEngine>,
        config: &Config,
    ) -> (Self, Vec<anyhow::Error>) {
        let mut entries = Vec::new();
        let mut members = Vec::new();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut slots = 0u32;
        let reserved = reserved_instances(engine.max_instances());
        let available = engine.max_instances().saturating_sub(reserved).max(1);
        for entry in &config.policies {
            let concurrency = entry.limits().concurrency;
            let loaded = if slots + concurrency > available {
                Err(anyhow::anyhow!(
                    "policy `{}`: the policies' concurrency adds up to {}, more than the {available} \
                     instance slots the engine can give them (--max-instances minus {reserved}); \
                     lower `concurrency` or raise --max-instances",
                    entry.name,
                    slots + concurrency
                ))
            } else {
                load_entry(engine, config, entry, &mut warnings)
            };
            match loaded {
                Ok(loaded) => {
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
                Err(error) => {
                    members.push(Member::Unloaded(Box::new(Unloaded {
                        name: entry.name.clone(),
                        reason: format!("{error:#}"),
                        failure: entry.failure,
                        // Without its metadata it is not known to mutate.
                        mutating: entry.mutating.unwrap_or(false),
                        // Config checks the rules; if they still fail, answer for every request.
                        matcher: Matcher::new(&entry.rules).unwrap_or_else(|_| everything()),
                    })));
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
        };
        (set, errors)
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

fn load_entry(
    engine: &Arc<PolicyEngine>,
    config: &Config,
    entry: &PolicyConfig,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Entry> {
    let origin = entry
        .origin(&config.base_dir)
        .map_err(|e| anyhow::anyhow!("policy `{}`: {e}", entry.name))?;
    let (source, pinned) = match origin {
        Origin::Local(source) => (source, None),
        Origin::Registry(reference) => {
            let store = Store::new(
                config
                    .registry
                    .store
                    .clone()
                    .or_else(|| engine.cache_dir().map(|d| d.join("oci")))
                    .or_else(default_store_dir)
                    .unwrap_or_else(|| std::env::temp_dir().join("bouncer-oci")),
            );
            let fetched = fetch(&reference, &config.registry, &config.verify, &store)
                .map_err(|e| anyhow::anyhow!("policy `{}`: {e}", entry.name))?;
            if let Some(why) = &fetched.stale {
                warnings.push(format!(
                    "policy `{}`: the registry failed, serving the last good {} ({why})",
                    entry.name, fetched.pinned
                ));
            }
            tracing::info!(policy = %entry.name, reference = %reference, digest = %fetched.digest, "resolved");
            (Source::File(fetched.path), Some(fetched.pinned.to_string()))
        }
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
    Ok(Entry {
        policy,
        mode: entry.mode,
        failure: entry.failure,
        mutating,
        pinned,
        matcher,
    })
}
