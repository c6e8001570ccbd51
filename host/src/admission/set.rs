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
use crate::policy::{ErrorKind, Outcome, Policy, PolicyEngine, PolicyError, Run};

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

/// How a review is carried out.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Where guest code runs.
    pub run: Run,
    /// The answer is due by then, whatever the policies do.
    pub deadline: Instant,
    /// The largest a mutated object may become, in bytes (the request body limit).
    pub max_object: usize,
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
    mutating: bool,
    matcher: Matcher,
}

impl Unloaded {
    /// What answering for it means: a failure by its failure mode.
    fn error(&self) -> PolicyError {
        PolicyError::NotLoaded {
            policy: self.name.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// One configuration entry, in evaluation order.
#[derive(Debug, Clone)]
enum Member {
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
    entries: Vec<Entry>,
    members: Vec<Member>,
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
                load_entry(engine, config, entry)
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
                        mutating: entry.mutating.unwrap_or_else(|| entry.is_mutating()),
                        matcher: Matcher::new(&entry.rules)
                            .or_else(|_| Matcher::new(&Default::default()))
                            .expect("empty match rules always build"),
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

    /// Reviews `request` through `endpoint`, with every matching policy or only
    /// `only`, within `budget`: a policy that would run past its deadline is cut
    /// short and handled by its failure mode.
    ///
    /// # Isolation
    /// On [`Endpoint::Validate`] the matching policies are independent, so they
    /// run at once and each has the whole time to `deadline` (within its own
    /// timeout): a slow policy cannot spend another's budget. Their outcomes are
    /// recorded in configuration order whatever order they finish in, so the
    /// response (denial order, warnings) is deterministic. On
    /// [`Endpoint::Mutate`] each policy sees the object patched by the ones
    /// before, so they run in turn, and each may use only the time left after
    /// the later ones' guarantees (see [`mutate_share`]): a policy that runs
    /// long spends its own share, not the next one's.
    pub async fn review(
        &self,
        request: &Request,
        endpoint: Endpoint,
        only: Option<&str>,
        cluster: &Arc<dyn Cluster>,
        budget: Budget,
    ) -> Reviewed {
        let Budget {
            run,
            deadline,
            max_object,
        } = budget;
        let mutate = endpoint == Endpoint::Mutate;
        let matching: Vec<Matched> = self
            .members
            .iter()
            .filter_map(|m| match m {
                Member::Loaded(i) => {
                    let e = &self.entries[*i];
                    let wanted = match only {
                        Some(name) => e.policy.name() == name,
                        None => !mutate || e.mutating,
                    };
                    (wanted && e.matcher.matches(request, &**cluster)).then_some(Matched::Loaded(e))
                }
                Member::Unloaded(u) => {
                    let wanted = match only {
                        Some(name) => u.name == name,
                        None => !mutate || u.mutating,
                    };
                    (wanted && u.matcher.matches(request, &**cluster))
                        .then_some(Matched::Unloaded(u))
                }
            })
            .collect();
        if matching.is_empty() {
            // Most requests match no policy: answer without building anything.
            return Reviewed {
                response: AdmissionResponse::from(request),
                records: Vec::new(),
                patched: None,
            };
        }
        let mut wit_request = Arc::new(to_wit(request));
        let mut decision = Decision::new(request.object.as_ref().map(|o| o.json()), max_object);
        let mut records = Vec::with_capacity(matching.len());
        let context: Arc<dyn crate::policy::ContextSource> = cluster.clone();
        if mutate {
            let timeouts: Vec<Duration> = matching.iter().map(Matched::timeout).collect();
            for (i, matched) in matching.iter().enumerate() {
                let started = Instant::now();
                let left = deadline.saturating_duration_since(started);
                let share = mutate_share(left, timeouts[i], &timeouts[i + 1..]);
                let result = matched
                    .evaluate(run, wit_request.clone(), started + share, &context)
                    .await;
                let effect = record(&mut decision, &mut records, matched, result, true);
                if effect == Effect::Mutated {
                    let mut next = (*wit_request).clone();
                    next.object = decision.patched_object_text();
                    wit_request = Arc::new(next);
                }
            }
        } else {
            // Independent: one hand-off for all (see `policy::evaluate_all`).
            let loaded: Vec<&Policy> = matching
                .iter()
                .filter_map(|m| match m {
                    Matched::Loaded(entry) => Some(&entry.policy),
                    Matched::Unloaded(_) => None,
                })
                .collect();
            let mut answers =
                crate::policy::evaluate_all(&loaded, run, wit_request, deadline, Some(context))
                    .await
                    .into_iter();
            for matched in &matching {
                let answer = match matched {
                    // One answer per policy given, in order.
                    Matched::Loaded(entry) => answers.next().unwrap_or_else(|| {
                        let error = PolicyError::Trap {
                            policy: entry.policy.name().to_owned(),
                            reason: "the host lost its answer".into(),
                        };
                        (Err(error), Duration::ZERO)
                    }),
                    Matched::Unloaded(unloaded) => (Err(unloaded.error()), Duration::ZERO),
                };
                record(&mut decision, &mut records, matched, answer, false);
            }
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

/// The time a mutating policy may use when `left` remains for it and the
/// policies after it, whose timeouts are `later`: its own timeout, less what
/// the later ones are guaranteed. Each later policy is guaranteed its timeout
/// or an equal split of `left`, whichever is less, so a policy with a long
/// timeout (or none that it honours) cannot spend the next one's time; time a
/// policy does not use flows on to the ones after it.
fn mutate_share(left: Duration, own: Duration, later: &[Duration]) -> Duration {
    let fair = left / u32::try_from(later.len() + 1).unwrap_or(u32::MAX);
    let reserved: Duration = later.iter().map(|t| (*t).min(fair)).sum();
    own.min(left.saturating_sub(reserved))
}

/// A configuration entry that matched the request.
enum Matched<'a> {
    Loaded(&'a Entry),
    Unloaded(&'a Unloaded),
}

impl Matched<'_> {
    fn name(&self) -> &str {
        match self {
            Self::Loaded(e) => e.policy.name(),
            Self::Unloaded(u) => &u.name,
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Self::Loaded(e) => e.policy.limits().timeout,
            Self::Unloaded(_) => Duration::ZERO,
        }
    }

    /// Runs the policy; the result and how long it took.
    async fn evaluate(
        &self,
        run: Run,
        request: Arc<crate::policy::bindings::Request>,
        deadline: Instant,
        context: &Arc<dyn crate::policy::ContextSource>,
    ) -> (Result<Outcome, PolicyError>, Duration) {
        let started = Instant::now();
        let result = match self {
            Self::Loaded(entry) => {
                entry
                    .policy
                    .evaluate_by(run, request, deadline, Some(context.clone()))
                    .await
            }
            Self::Unloaded(unloaded) => Err(unloaded.error()),
        };
        (result, started.elapsed())
    }
}

/// Records one policy's result in `decision` and `records`.
fn record(
    decision: &mut Decision,
    records: &mut Vec<Record>,
    matched: &Matched<'_>,
    result: (Result<Outcome, PolicyError>, Duration),
    mutate: bool,
) -> Effect {
    let (result, elapsed) = result;
    let (mode, failure) = match matched {
        Matched::Loaded(e) => (e.mode, e.failure),
        Matched::Unloaded(u) => (Mode::Enforce, u.failure),
    };
    let name = matched.name();
    let error = result.as_ref().err().map(PolicyError::kind);
    let (denials, warnings) = (decision.denials().len(), decision.warnings().len());
    let effect = decision.record(name, mode, failure, result, mutate);
    let reason = decision
        .denials()
        .get(denials)
        .map(|d| d.message.clone())
        .or_else(|| decision.warnings().get(warnings).cloned());
    let prefix = format!("{name}: ");
    records.push(Record {
        policy: name.to_owned(),
        mode,
        effect: effect.clone(),
        reason,
        denied: decision.denials().len() > denials,
        warnings: decision.warnings()[warnings..]
            .iter()
            .map(|w| w.strip_prefix(&prefix).unwrap_or(w).to_owned())
            .collect(),
        error,
        elapsed,
    });
    effect
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_mutating_policy_with_a_long_timeout_leaves_the_later_ones_their_time() {
        // 600 ms left; a 10 s policy, then a 250 ms one: the second keeps its 250 ms.
        assert_eq!(mutate_share(600 * MS, 10_000 * MS, &[250 * MS]), 350 * MS);
        // Many later policies: each is guaranteed an equal split at least.
        assert_eq!(
            mutate_share(600 * MS, 10_000 * MS, &[1000 * MS; 2]),
            200 * MS
        );
        // Enough time for everyone: each gets its own timeout.
        assert_eq!(mutate_share(2000 * MS, 250 * MS, &[250 * MS; 3]), 250 * MS);
        // The last one gets whatever is left, up to its timeout.
        assert_eq!(mutate_share(40 * MS, 250 * MS, &[]), 40 * MS);
    }
}
