//! Shadow candidates on live traffic: every review an entry with a loaded
//! candidate evaluates is also handed to the candidate, after the answer is
//! made, and what the two said is compared.
//!
//! A candidate can never change or delay an answer: its job is built from
//! what the review already decided, it holds one of its own evaluation slots
//! (taken when the job is made; with none free the review is not shadowed and
//! that is counted), its own memory cap and its own timeout, and it runs on
//! threads that only run on idle CPU (`policy::Threads::idle`), its timeout
//! judged on the CPU time it had. A candidate that the wall clock stopped
//! before it had used its timeout's worth of CPU never got the CPU, and is
//! counted as starved, not as a disagreement.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::decision::{Decision, Effect, PolicyResult};
use super::review::Request;
use crate::config::{FailureMode, Mode};
use crate::policy::bindings::Request as WitRequest;
use crate::policy::{ContextSource, ErrorKind, Policy, Slot};

/// What a policy said, in the terms a comparison needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Stance {
    /// Allowed without a change.
    Allowed,
    /// Allowed and changed the object (on the mutating endpoint) into this.
    Mutated(Value),
    /// Denied (enforced or not: the policy's own verdict), saying this.
    Denied(String),
    /// Failed this way.
    Failed(ErrorKind),
}

impl Stance {
    /// The stance of a recorded result; `mutated` is the object after it.
    pub(super) fn of(result: &PolicyResult, mutated: Option<&Value>) -> Self {
        if let Some(kind) = result.error {
            return Self::Failed(kind);
        }
        match result.effect {
            Effect::Denied | Effect::Warned => {
                Self::Denied(result.message.clone().unwrap_or_default())
            }
            Effect::Mutated => mutated.map_or(Self::Allowed, |o| Self::Mutated(o.clone())),
            Effect::Allowed | Effect::Failed => Self::Allowed,
        }
    }

    /// In words, for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Allowed => "allowed".into(),
            Self::Mutated(_) => "allowed with a patch".into(),
            Self::Denied(message) => format!("denied: {message}"),
            Self::Failed(kind) => format!("failed ({})", kind.as_str()),
        }
    }

    fn denies(&self) -> bool {
        matches!(self, Self::Denied(_))
    }
}

/// How a candidate disagreed with the policy it shadows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// The candidate denies what the policy allows.
    NewlyDenied,
    /// The candidate allows what the policy denies.
    NewlyAllowed,
    /// Both allow, with different patches.
    Patch,
    /// One failed where the other did not, or they failed differently.
    Failure,
}

impl Change {
    /// The `change` label of `bouncer_shadow_disagreements_total`, and the word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewlyDenied => "newly-denied",
            Self::NewlyAllowed => "newly-allowed",
            Self::Patch => "patch",
            Self::Failure => "failure",
        }
    }

    /// How `candidate` differs from `current`; `None` when they agree.
    pub fn between(current: &Stance, candidate: &Stance) -> Option<Self> {
        match (current, candidate) {
            (Stance::Failed(a), Stance::Failed(b)) => (a != b).then_some(Self::Failure),
            (Stance::Failed(_), _) | (_, Stance::Failed(_)) => Some(Self::Failure),
            (a, b) if !a.denies() && b.denies() => Some(Self::NewlyDenied),
            (a, b) if a.denies() && !b.denies() => Some(Self::NewlyAllowed),
            (Stance::Denied(_), Stance::Denied(_)) => None,
            (a, b) => (a != b).then_some(Self::Patch),
        }
    }
}

/// The object a review was about, as a disagreement names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// `apiVersion` of the object.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace, when namespaced.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid, when it has one yet.
    pub uid: Option<String>,
}

impl Subject {
    fn of(request: &Request) -> Self {
        let kind = &request.kind;
        let object = request.object.as_ref().or(request.old_object.as_ref());
        Self {
            api_version: if kind.group.is_empty() {
                kind.version.clone()
            } else {
                format!("{}/{}", kind.group, kind.version)
            },
            kind: kind.kind.clone(),
            namespace: request.namespace.clone().filter(|n| !n.is_empty()),
            name: request.name.clone(),
            uid: object.and_then(|o| o.metadata.uid.clone()),
        }
    }

    /// `namespace/name`, or `name` when cluster-scoped.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// One disagreement between a policy and its candidate.
#[derive(Debug, Clone)]
pub struct Disagreement {
    /// The configured policy.
    pub policy: String,
    /// How the candidate differs.
    pub change: Change,
    /// The object.
    pub subject: Subject,
    /// What the policy said.
    pub current: Stance,
    /// What the candidate said.
    pub candidate: Stance,
}

/// What became of one shadow evaluation.
#[derive(Debug, Clone)]
pub enum Shadowed {
    /// The candidate said what the policy said.
    Agreed {
        /// The configured policy.
        policy: String,
    },
    /// It did not.
    Disagreed(Box<Disagreement>),
    /// Its slots were all busy, so the review was not shadowed.
    Busy {
        /// The configured policy.
        policy: String,
    },
    /// It missed its deadline for want of CPU: nothing is known.
    Starved {
        /// The configured policy.
        policy: String,
    },
}

impl Shadowed {
    /// The configured policy it is about.
    pub fn policy(&self) -> &str {
        match self {
            Self::Agreed { policy } | Self::Busy { policy } | Self::Starved { policy } => policy,
            Self::Disagreed(d) => &d.policy,
        }
    }
}

/// A candidate evaluation a review calls for, its slot already taken.
pub struct ShadowJob {
    policy: String,
    candidate: Policy,
    slot: Slot,
    request: Arc<WitRequest>,
    current: Stance,
    mutate: bool,
    max_object: usize,
    context: Arc<dyn ContextSource>,
    subject: Subject,
}

/// The shadow evaluations one review calls for.
#[derive(Default)]
pub struct ShadowWork {
    /// Those that got a slot, to run.
    pub jobs: Vec<ShadowJob>,
    /// Those that did not: already decided.
    pub busy: Vec<Shadowed>,
}

impl std::fmt::Debug for ShadowWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowWork")
            .field("jobs", &self.jobs.len())
            .field("busy", &self.busy)
            .finish()
    }
}

impl ShadowWork {
    /// Adds the shadow of `policy`'s evaluation of `request` (the WIT request
    /// as the policy saw it), which came to `result`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        policy: &str,
        candidate: &Policy,
        request: &Request,
        wit: Arc<WitRequest>,
        current: Stance,
        mutate: bool,
        max_object: usize,
        context: &Arc<dyn ContextSource>,
    ) {
        let Some(slot) = candidate.free_slot() else {
            self.busy.push(Shadowed::Busy {
                policy: policy.to_owned(),
            });
            return;
        };
        self.jobs.push(ShadowJob {
            policy: policy.to_owned(),
            candidate: candidate.clone(),
            slot,
            request: wit,
            current,
            mutate,
            max_object,
            context: context.clone(),
            subject: Subject::of(request),
        });
    }
}

impl ShadowJob {
    /// Runs the candidate and compares.
    pub async fn run(self) -> Shadowed {
        let timeout = self.candidate.limits().timeout;
        let object = self.request.object.clone();
        let (result, cpu) = self
            .candidate
            .evaluate_in_shadow(self.slot, self.request, Some(self.context))
            .await;
        if matches!(&result, Err(e) if e.kind() == ErrorKind::Deadline) && cpu < timeout {
            return Shadowed::Starved {
                policy: self.policy,
            };
        }
        let mut decision = Decision::new(object.as_deref(), self.max_object);
        let name = self.candidate.name();
        let recorded = decision.record(
            name,
            Mode::Enforce,
            FailureMode::Closed,
            (result, Duration::ZERO),
            self.mutate,
        );
        let candidate = Stance::of(&recorded, decision.patched_object());
        match Change::between(&self.current, &candidate) {
            None => Shadowed::Agreed {
                policy: self.policy,
            },
            Some(change) => Shadowed::Disagreed(Box::new(Disagreement {
                policy: self.policy,
                change,
                subject: self.subject,
                current: self.current,
                candidate,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disagreements_are_told_apart() {
        let denied = Stance::Denied("no".into());
        let patched = Stance::Mutated(serde_json::json!({"a": 1}));
        let cases = [
            (Stance::Allowed, Stance::Allowed, None),
            (Stance::Allowed, denied.clone(), Some(Change::NewlyDenied)),
            (patched.clone(), denied.clone(), Some(Change::NewlyDenied)),
            (denied.clone(), Stance::Allowed, Some(Change::NewlyAllowed)),
            (denied.clone(), Stance::Denied("other words".into()), None),
            (Stance::Allowed, patched.clone(), Some(Change::Patch)),
            (
                patched.clone(),
                Stance::Mutated(serde_json::json!({"a": 2})),
                Some(Change::Patch),
            ),
            (patched.clone(), patched.clone(), None),
            (
                Stance::Allowed,
                Stance::Failed(ErrorKind::Memory),
                Some(Change::Failure),
            ),
            (
                Stance::Failed(ErrorKind::Trap),
                Stance::Failed(ErrorKind::Trap),
                None,
            ),
            (
                Stance::Failed(ErrorKind::Trap),
                denied,
                Some(Change::Failure),
            ),
        ];
        for (current, candidate, want) in cases {
            assert_eq!(
                Change::between(&current, &candidate),
                want,
                "{current:?} vs {candidate:?}"
            );
        }
    }
}
