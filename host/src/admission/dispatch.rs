//! A review carried out: the entries that match a request, evaluated within
//! the review's budget, and what each did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::admission::AdmissionResponse;
use tracing::{Instrument as _, Span};

use super::decision::{Decision, PolicyResult};
use super::review::Request;
use super::set::{Candidate, Entry, Member, PolicySet, Unloaded};
use super::shadow::{ShadowWork, Stance};
use super::wit::to_wit;
use crate::config::Mode;
use crate::context::Cluster;
use crate::policy::{Outcome, OutputLimits, Policy, PolicyError, Run};

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

    /// `/mutate` when `mutate`, else `/validate`.
    pub fn for_mutation(mutate: bool) -> Self {
        if mutate { Self::Mutate } else { Self::Validate }
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

impl Budget {
    /// Evaluation on the calling thread, due by `deadline`, a mutated object
    /// bounded as the API server bounds a request: for callers with no server
    /// to keep responsive (`bouncer test`, `check`, `eval`, tests, benchmarks).
    pub fn here(deadline: Instant) -> Self {
        Self {
            run: Run::Here,
            deadline,
            max_object: OutputLimits::MUTATION_BYTES,
        }
    }
}

/// The answer to one review, with what each policy did.
#[derive(Debug)]
pub struct Reviewed {
    /// The response for the API server.
    pub response: AdmissionResponse,
    /// One record per policy that matched, in order.
    pub records: Vec<PolicyResult>,
    /// The object after all mutations, when a policy changed it.
    pub patched: Option<serde_json::Value>,
    /// The shadow evaluations it calls for (server reviews only), to run
    /// once the answer is sent.
    pub shadows: ShadowWork,
}

impl Reviewed {
    /// The answer when no policy matched: allowed, nothing said.
    fn unmatched(request: &Request) -> Self {
        Self {
            response: AdmissionResponse::from(request),
            records: Vec::new(),
            patched: None,
            shadows: ShadowWork::default(),
        }
    }
}

impl PolicySet {
    /// Reviews `request` through `endpoint`, with every matching policy or only
    /// `only`, within `budget`: a policy that would run past its deadline is cut
    /// short and handled by its failure mode.
    ///
    /// # Isolation
    /// On [`Endpoint::Validate`] the matching policies are independent: each
    /// has the whole time to `deadline` (within its own timeout), and they go
    /// to one evaluation thread together; when one runs long the rest move to
    /// another thread (`policy::evaluate_all`), so a slow policy cannot spend
    /// another's budget. Their outcomes are
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
        let run = budget.run;
        if only.is_none()
            && let Some(refused) = self.judge_exception_write(request, endpoint)
        {
            return refused;
        }
        let Some(mut review) = Underway::start(self, request, endpoint, only, cluster, budget)
        else {
            return Reviewed::unmatched(request);
        };
        if endpoint == Endpoint::Mutate {
            while let Some((matched, wit, deadline, span)) = review.next_mutation() {
                let answer = matched
                    .evaluate(run, wit, deadline, &review.context())
                    .instrument(span)
                    .await;
                review.record_mutation(matched, answer);
            }
        } else {
            // Independent: one hand-off for all (see `policy::evaluate_all`).
            let (policies, spans, wit) = review.independent();
            let context = Some(review.context());
            let answers =
                crate::policy::evaluate_all(&policies, spans, run, wit, review.deadline, context)
                    .await;
            review.record_independent(answers);
        }
        review.finish()
    }

    /// [`review`](Self::review) on the calling thread, by `deadline`: for
    /// callers with no server to keep responsive (`check`, `test`, `audit`,
    /// `eval`, tests and benchmarks). Synchronous all the way down: guest code
    /// runs here, in turn.
    pub fn review_here(
        &self,
        request: &Request,
        endpoint: Endpoint,
        cluster: &Arc<dyn Cluster>,
        deadline: Instant,
    ) -> Reviewed {
        let budget = Budget::here(deadline);
        if let Some(refused) = self.judge_exception_write(request, endpoint) {
            return refused;
        }
        let Some(mut review) = Underway::start(self, request, endpoint, None, cluster, budget)
        else {
            return Reviewed::unmatched(request);
        };
        if endpoint == Endpoint::Mutate {
            while let Some((matched, wit, deadline, span)) = review.next_mutation() {
                let answer =
                    span.in_scope(|| matched.evaluate_here(&wit, deadline, &review.context()));
                review.record_mutation(matched, answer);
            }
        } else {
            let (policies, spans, wit) = review.independent();
            let context = review.context();
            let answers = crate::policy::evaluate_all_here(
                &policies,
                spans,
                &wit,
                review.deadline,
                Some(&context),
            );
            review.record_independent(answers);
        }
        review.finish()
    }
}

/// The name bouncer's own judgement of `PolicyException` writes goes by in
/// responses, reports and metrics.
pub const EXCEPTION_JUDGE: &str = "bouncer-exceptions";

impl PolicySet {
    /// bouncer's own refusal of a `PolicyException` write (on the validating
    /// endpoint, where exceptions are honoured): outside the honoured
    /// namespaces, without a reason, lasting too long, or naming a policy
    /// that does not run.
    fn judge_exception_write(&self, request: &Request, endpoint: Endpoint) -> Option<Reviewed> {
        let config = self.exceptions()?;
        if endpoint != Endpoint::Validate || !super::exceptions::is_exception(request) {
            return None;
        }
        let message = super::exceptions::judge_write(
            config,
            request,
            |policy| self.contains(policy),
            std::time::SystemTime::now(),
        )?;
        let mut decision = Decision::new(None, 0);
        let outcome = Outcome {
            allowed: false,
            message: Some(message),
            code: Some(422),
            warnings: Vec::new(),
            mutation: None,
        };
        let record = decision.record(
            EXCEPTION_JUDGE,
            Mode::Enforce,
            crate::config::FailureMode::Closed,
            (Ok(outcome), Duration::ZERO),
            false,
        );
        Some(Reviewed {
            response: decision.into_response(request),
            records: vec![record],
            patched: None,
            shadows: ShadowWork::default(),
        })
    }
}

/// One policy's answer and how long it took.
type Answer = (Result<Outcome, PolicyError>, Duration);

/// A review under way: what matched, the decision so far, and what is left
/// to evaluate. [`PolicySet::review`] (async, for the server) and
/// [`PolicySet::review_here`] (synchronous) drive the same steps; only how
/// each evaluation is awaited differs.
struct Underway<'s> {
    set: &'s PolicySet,
    cluster: Arc<dyn Cluster>,
    matching: Vec<Matched<'s>>,
    /// The trace span of each matching entry's evaluation, taken when it runs.
    spans: Vec<Option<Span>>,
    timeouts: Vec<Duration>,
    next: usize,
    wit: Arc<crate::policy::bindings::Request>,
    decision: Decision,
    records: Vec<PolicyResult>,
    deadline: Instant,
    /// Shadow evaluations are collected (the server's reviews).
    shadowing: bool,
    shadows: ShadowWork,
    max_object: usize,
    request: &'s Request,
}

impl<'s> Underway<'s> {
    /// The entries that match; `None` when none does (most requests: they
    /// are answered without building anything).
    fn start(
        set: &'s PolicySet,
        request: &'s Request,
        endpoint: Endpoint,
        only: Option<&str>,
        cluster: &Arc<dyn Cluster>,
        budget: Budget,
    ) -> Option<Self> {
        let mutate = endpoint == Endpoint::Mutate;
        let matching: Vec<Matched<'s>> = set
            .members
            .iter()
            .filter_map(|m| match m {
                Member::Loaded(i) => {
                    let e = &set.entries[*i];
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
            return None;
        }
        // Only the mutating endpoint shares time out in turn (`mutate_share`).
        let timeouts = if mutate {
            matching.iter().map(Matched::timeout).collect()
        } else {
            Vec::new()
        };
        let spans = matching
            .iter()
            .map(|m| {
                Some(crate::policy::spans::evaluation(
                    m.name(),
                    m.mode().as_str(),
                ))
            })
            .collect();
        Some(Self {
            set,
            cluster: cluster.clone(),
            spans,
            timeouts,
            records: Vec::with_capacity(matching.len()),
            matching,
            next: 0,
            wit: Arc::new(to_wit(request)),
            decision: Decision::new(
                request.object.as_ref().map(super::object::RawObject::json),
                budget.max_object,
            ),
            deadline: budget.deadline,
            shadowing: budget.run != Run::Here,
            shadows: ShadowWork::default(),
            max_object: budget.max_object,
            request,
        })
    }

    /// The next mutating policy, the request as patched so far, its
    /// deadline and its span; `None` when every one has answered.
    fn next_mutation(
        &mut self,
    ) -> Option<(
        Matched<'s>,
        Arc<crate::policy::bindings::Request>,
        Instant,
        Span,
    )> {
        let matched = *self.matching.get(self.next)?;
        let span = self.take_span(self.next);
        let started = Instant::now();
        let left = self.deadline.saturating_duration_since(started);
        let share = mutate_share(
            left,
            self.timeouts[self.next],
            &self.timeouts[self.next + 1..],
        );
        Some((matched, self.wit.clone(), started + share, span))
    }

    /// The span of the `index`th matching entry (once).
    fn take_span(&mut self, index: usize) -> Span {
        self.spans
            .get_mut(index)
            .and_then(Option::take)
            .unwrap_or_else(Span::none)
    }

    /// Records a mutating policy's answer; the next one sees its patch.
    fn record_mutation(&mut self, matched: Matched<'s>, answer: Answer) {
        self.next += 1;
        let recorded = record(&mut self.decision, &matched, answer, true);
        if let Some(candidate) = self.shadowed(&matched) {
            // The object as this policy left it: what its candidate's patch is
            // compared with. `self.wit` is still what this policy saw.
            let after = self
                .decision
                .patched_object()
                .filter(|_| recorded.mutated)
                .cloned();
            self.shadow(&matched, candidate, &recorded, after, true);
        }
        if recorded.mutated {
            let mut next = (*self.wit).clone();
            next.object = self.decision.patched_object_text();
            self.wit = Arc::new(next);
        }
        self.records.push(recorded);
    }

    /// The loaded policies that matched (independent: the validating
    /// endpoint), and the request they judge.
    fn independent(
        &mut self,
    ) -> (
        Vec<&'s Policy>,
        Vec<Span>,
        Arc<crate::policy::bindings::Request>,
    ) {
        let mut policies = Vec::with_capacity(self.matching.len());
        let mut spans = Vec::with_capacity(self.matching.len());
        for index in 0..self.matching.len() {
            if let Matched::Loaded(entry) = self.matching[index] {
                policies.push(&entry.policy);
                spans.push(self.take_span(index));
            }
        }
        (policies, spans, self.wit.clone())
    }

    /// Records the independent answers, one per loaded policy in order, and
    /// an unloaded entry's failure in its place.
    fn record_independent(&mut self, answers: Vec<Answer>) {
        let mut answers = answers.into_iter();
        for index in 0..self.matching.len() {
            let matched = self.matching[index];
            let answer = match matched {
                Matched::Loaded(entry) => answers.next().unwrap_or_else(|| {
                    let error = PolicyError::Trap {
                        policy: entry.policy.name().to_owned(),
                        reason: "the host lost its answer".into(),
                    };
                    (Err(error), Duration::ZERO)
                }),
                Matched::Unloaded(unloaded) => {
                    let result = Err(unloaded.error());
                    let span = self.take_span(index);
                    crate::policy::spans::record_result(&span, crate::policy::answered(&result));
                    (result, Duration::ZERO)
                }
            };
            let recorded = record(&mut self.decision, &matched, answer, false);
            if let Some(candidate) = self.shadowed(&matched) {
                self.shadow(&matched, candidate, &recorded, None, false);
            }
            self.records.push(recorded);
        }
    }

    /// The candidate that shadows `matched` in this review, if any.
    fn shadowed(&self, matched: &Matched<'s>) -> Option<&'s Policy> {
        matched.candidate().filter(|_| self.shadowing)
    }

    /// Adds the shadow of `matched`'s evaluation of the request as it saw
    /// it (`self.wit`) by `candidate`.
    fn shadow(
        &mut self,
        matched: &Matched<'s>,
        candidate: &'s Policy,
        recorded: &PolicyResult,
        after: Option<serde_json::Value>,
        mutate: bool,
    ) {
        self.shadows.add(
            matched.name(),
            candidate,
            self.request,
            self.wit.clone(),
            Stance::of(recorded, after.as_ref()),
            mutate,
            self.max_object,
            &self.context(),
        );
    }

    /// What policies look their lookups up in.
    fn context(&self) -> Arc<dyn crate::policy::ContextSource> {
        self.cluster.clone()
    }

    fn finish(mut self) -> Reviewed {
        let merge = tracing::info_span!(
            target: "bouncer::merge",
            "merge",
            bouncer.policies = self.records.len(),
            bouncer.excepted = tracing::field::Empty,
        );
        let _merging = merge.enter();
        self.apply_exceptions();
        if !merge.is_disabled() {
            let excepted: Vec<&str> = self
                .records
                .iter()
                .filter(|r| r.excepted.is_some())
                .map(|r| r.policy.as_str())
                .collect();
            if !excepted.is_empty() {
                merge.record("bouncer.excepted", excepted.join(",").as_str());
            }
        }
        let request = self.request;
        let patched = self
            .decision
            .is_mutated()
            .then(|| self.decision.patched_object().cloned())
            .flatten();
        Reviewed {
            response: self.decision.into_response(request),
            records: self.records,
            patched,
            shadows: self.shadows,
        }
    }

    /// Lets through what an unexpired `PolicyException` covers, where the
    /// configuration honours exceptions (`exceptions.rs`), and keeps the
    /// records in step with the denials left.
    fn apply_exceptions(&mut self) {
        let request = self.request;
        let Some(config) = self.set.exceptions() else {
            return;
        };
        if self.decision.denials().iter().all(|d| d.failure) {
            return;
        }
        let found = super::exceptions::honoured(config, &*self.cluster);
        let now = std::time::SystemTime::now();
        let cluster = &*self.cluster;
        let covering = |policy: &str| {
            let covers: Vec<_> = found
                .iter()
                .filter(|e| e.covers(policy, request, cluster))
                .collect();
            let active = covers
                .iter()
                .find(|e| !e.expired(now))
                .map(|e| e.describe());
            let expired = covers.iter().find(|e| e.expired(now)).map(|e| e.describe());
            (active, expired)
        };
        let excepted = self.decision.except(covering, config.hint.as_deref());
        for record in &mut self.records {
            if let Some((_, exception)) = excepted.iter().find(|(p, _)| *p == record.policy) {
                record.refused = false;
                record.excepted = Some(exception.clone());
            } else if let Some(denial) = self
                .decision
                .denials()
                .iter()
                .find(|d| d.policy == record.policy && !d.failure)
            {
                record.message = Some(denial.message.clone());
            }
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
#[derive(Clone, Copy)]
enum Matched<'a> {
    Loaded(&'a Entry),
    Unloaded(&'a Unloaded),
}

impl<'a> Matched<'a> {
    /// Its loaded shadow candidate, if it has one.
    fn candidate(&self) -> Option<&'a Policy> {
        match self {
            Self::Loaded(Entry {
                shadow: Some(Candidate::Loaded { policy, .. }),
                ..
            }) => Some(policy),
            _ => None,
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::Loaded(e) => e.policy.name(),
            Self::Unloaded(u) => &u.name,
        }
    }

    fn mode(&self) -> Mode {
        match self {
            Self::Loaded(e) => e.mode,
            Self::Unloaded(_) => Mode::Enforce,
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
        // Runs in its evaluation's span (`PolicySet::review`).
        crate::policy::spans::record_result(&Span::current(), crate::policy::answered(&result));
        (result, started.elapsed())
    }

    /// Runs the policy on this thread (within its own timeout: `evaluate_until`
    /// holds it to that).
    fn evaluate_here(
        &self,
        request: &crate::policy::bindings::Request,
        deadline: Instant,
        context: &Arc<dyn crate::policy::ContextSource>,
    ) -> Answer {
        let started = Instant::now();
        let result = match self {
            Self::Loaded(entry) => entry
                .policy
                .evaluate_until(request, deadline, Some(context)),
            Self::Unloaded(unloaded) => Err(unloaded.error()),
        };
        // Runs in its evaluation's span (`PolicySet::review`).
        crate::policy::spans::record_result(&Span::current(), crate::policy::answered(&result));
        (result, started.elapsed())
    }
}

/// Records one policy's result in `decision`.
fn record(
    decision: &mut Decision,
    matched: &Matched<'_>,
    evaluated: (Result<Outcome, PolicyError>, Duration),
    mutate: bool,
) -> PolicyResult {
    let failure = match matched {
        Matched::Loaded(e) => e.failure,
        Matched::Unloaded(u) => u.failure,
    };
    decision.record(matched.name(), matched.mode(), failure, evaluated, mutate)
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
