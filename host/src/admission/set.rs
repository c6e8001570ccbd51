//! A loaded configuration: the policies in order, ready to review requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::admission::AdmissionResponse;

use super::decision::{Decision, Effect, FailureMode, Mode};
use super::review::Request;
use super::wit::to_wit;
use crate::config::matching::Matcher;
use crate::config::{Config, PolicyConfig};
use crate::context::Cluster;
use crate::policy::{ErrorKind, Policy, PolicyEngine, PolicyError};

/// Which webhook endpoint a review came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Validating: every matching policy; mutations are ignored.
    Validate,
    /// Mutating: matching mutating policies; each sees the object patched by the ones before.
    Mutate,
}

impl Endpoint {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Mutate => "mutate",
        }
    }
}

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
    matcher: Matcher,
}

/// What one policy did with one request.
#[derive(Debug, Clone)]
pub struct Record {
    /// The policy.
    pub policy: String,
    /// Its mode.
    pub mode: Mode,
    /// What it did.
    pub effect: Effect,
    /// Why it denied or failed.
    pub reason: Option<String>,
    /// Whether it refused the request (an enforced denial, or a failure with failure mode closed).
    pub denied: bool,
    /// The warnings it added, without the `"<policy>: "` prefix the response carries.
    pub warnings: Vec<String>,
    /// The class of its failure, when it failed.
    pub error: Option<ErrorKind>,
    /// How long the evaluation took.
    pub elapsed: Duration,
}

/// The answer to one review, with what each policy did.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The response for the API server.
    pub response: AdmissionResponse,
    /// One record per policy that matched, in order.
    pub records: Vec<Record>,
    /// The object after all mutations, when a policy changed it.
    pub patched: Option<serde_json::Value>,
}

/// Loading a configuration failed for one or more policies.
#[derive(Debug, thiserror::Error)]
#[error("{} of the configured policies cannot be loaded: {}", errors.len(), errors.iter().map(|e| format!("{e:#}")).collect::<Vec<_>>().join("; "))]
pub struct LoadError {
    /// Every failure, in configuration order.
    pub errors: Vec<anyhow::Error>,
}

/// The policies of a configuration, loaded, in evaluation order.
#[derive(Debug, Clone)]
pub struct PolicySet {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    warnings: Vec<String>,
}

impl PolicySet {
    /// Loads every policy of `config`; all failures are collected, not just the first.
    pub fn load(engine: &Arc<PolicyEngine>, config: &Config) -> Result<Self, LoadError> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for entry in &config.policies {
            match load_entry(engine, config, entry) {
                Ok(loaded) => {
                    if let Some(metadata) = loaded.policy.metadata() {
                        warnings.extend(super::disagreement::find(
                            entry,
                            metadata,
                            loaded.mutating,
                        ));
                    }
                    entries.push(loaded);
                }
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Err(LoadError { errors });
        }
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.policy.name().to_owned(), i))
            .collect();
        Ok(Self {
            entries,
            by_name,
            warnings,
        })
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

    /// Whether a policy of this name is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Reviews `request` through `endpoint`, with every matching policy or only
    /// `only`, answering by `deadline` at the latest: a policy that would run past
    /// it is cut short and handled by its failure mode.
    pub fn review(
        &self,
        request: &Request,
        endpoint: Endpoint,
        only: Option<&str>,
        deadline: Instant,
        cluster: &Arc<dyn Cluster>,
    ) -> Reviewed {
        let mutate = endpoint == Endpoint::Mutate;
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| match only {
                Some(name) => e.policy.name() == name,
                None => !mutate || e.mutating,
            })
            .filter(|e| e.matcher.matches(request, &**cluster))
            .collect();
        if matching.is_empty() {
            // Most requests match no policy: answer without building anything.
            return Reviewed {
                response: AdmissionResponse::from(request),
                records: Vec::new(),
                patched: None,
            };
        }
        let mut wit_request = to_wit(request);
        let mut decision = Decision::new(request.object.as_ref().map(|o| o.json()));
        let mut records = Vec::with_capacity(matching.len());
        let context: Arc<dyn crate::policy::ContextSource> = cluster.clone();
        for entry in matching {
            let started = Instant::now();
            let budget = deadline.saturating_duration_since(started);
            let result = if budget.is_zero() {
                Err(PolicyError::Deadline {
                    policy: entry.policy.name().to_owned(),
                    timeout: Duration::ZERO,
                })
            } else {
                entry
                    .policy
                    .evaluate_in(&wit_request, budget, Some(&context))
            };
            let elapsed = started.elapsed();
            let error = result.as_ref().err().map(PolicyError::kind);
            let (denials, warnings) = (decision.denials().len(), decision.warnings().len());
            let effect = decision.record(
                entry.policy.name(),
                entry.mode,
                entry.failure,
                result,
                mutate,
            );
            let reason = decision
                .denials()
                .get(denials)
                .map(|d| d.message.clone())
                .or_else(|| decision.warnings().get(warnings).cloned());
            if effect == Effect::Mutated {
                wit_request.object = decision.patched_object_text();
            }
            let prefix = format!("{}: ", entry.policy.name());
            records.push(Record {
                policy: entry.policy.name().to_owned(),
                mode: entry.mode,
                effect,
                reason,
                denied: decision.denials().len() > denials,
                warnings: decision.warnings()[warnings..]
                    .iter()
                    .map(|w| w.strip_prefix(&prefix).unwrap_or(w).to_owned())
                    .collect(),
                error,
                elapsed,
            });
        }
        let patched = decision
            .is_mutated()
            .then(|| decision.patched_object().cloned())
            .flatten();
        Reviewed {
            response: decision.into_response(request),
            records,
            patched,
        }
    }
}

fn load_entry(
    engine: &Arc<PolicyEngine>,
    config: &Config,
    entry: &PolicyConfig,
) -> anyhow::Result<Entry> {
    use anyhow::Context as _;
    let source = entry
        .source_in(&config.base_dir)
        .with_context(|| format!("policy `{}`", entry.name))?;
    let policy = engine
        .load(&entry.name, &source, &entry.settings, entry.limits())?
        .with_context_kinds(entry.context.clone());
    // An entry that does not say follows the policy's own metadata.
    let mutating = match (entry.mutating, policy.metadata()) {
        (Some(configured), _) => configured,
        (None, Some(metadata)) => metadata.mutating,
        (None, None) => entry.is_mutating(),
    };
    let matcher =
        Matcher::new(&entry.rules).map_err(|m| anyhow::anyhow!("policy `{}`: {m}", entry.name))?;
    Ok(Entry {
        policy,
        mode: entry.mode,
        failure: entry.failure,
        mutating,
        matcher,
    })
}
