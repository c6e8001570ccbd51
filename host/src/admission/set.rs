//! A loaded configuration: the policies in order, each with its compiled match
//! rules, ready to review requests (`admission::dispatch`).

use std::collections::HashMap;

use super::matching::Matcher;
use crate::config::{ExceptionsConfig, FailureMode, MatchRules, Mode};
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
    /// Its shadow candidate, when the entry has one.
    pub shadow: Option<Candidate>,
    pub(super) matcher: Matcher,
}

/// The candidate version of an entry's policy (its `shadow`).
#[derive(Debug, Clone)]
pub enum Candidate {
    /// Loaded: it sees the entry's requests.
    Loaded {
        /// The candidate, named `<policy>@shadow`, with its own slots and limits.
        policy: Policy,
        /// Its `source` as configured.
        source: String,
    },
    /// Not loaded: the entry serves unshadowed.
    Unloaded {
        /// Why.
        reason: String,
        /// Its `source` as configured.
        source: String,
    },
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
            shadow: None,
            matcher: everything(),
        }
    }
}

pub(super) fn everything() -> Matcher {
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
    /// Where `PolicyException`s are honoured; `None`: nowhere.
    exceptions: Option<ExceptionsConfig>,
}

impl PolicySet {
    /// A set made by the loader (`loader.rs`).
    pub(super) fn new(
        entries: Vec<Entry>,
        members: Vec<Member>,
        warnings: Vec<String>,
        awaiting: Vec<String>,
        exceptions: Option<ExceptionsConfig>,
    ) -> Self {
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.policy.name().to_owned(), i))
            .collect();
        Self {
            entries,
            members,
            by_name,
            warnings,
            awaiting,
            exceptions,
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
            exceptions: None,
        }
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

    /// Where `PolicyException`s are honoured; `None` when nowhere.
    pub fn exceptions(&self) -> Option<&ExceptionsConfig> {
        self.exceptions.as_ref()
    }

    /// Every kind some policy may look up, each once, and `PolicyException`
    /// when exceptions are honoured: what serve mode watches.
    pub fn context_kinds(&self) -> Vec<crate::policy::ContextKind> {
        let mut kinds: Vec<_> = self
            .entries
            .iter()
            .flat_map(|e| e.policy.context_kinds().iter().cloned())
            .chain(
                self.exceptions
                    .is_some()
                    .then(super::exceptions::exception_kind),
            )
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
