//! Combining the outcomes of the policies run on one request into the single
//! `AdmissionResponse` the API server receives.

use std::time::Duration;

use kube::core::admission::AdmissionResponse;
use serde::Serialize;
use serde_json::Value;

use super::review::Request;
use crate::config::{FailureMode, Mode};

use crate::policy::{ErrorKind, Mutation, Outcome, PolicyError};

/// The HTTP code of a denial when the policy gives none.
pub(super) const DEFAULT_DENY_CODE: u16 = 403;
/// The HTTP code of a denial caused by a policy failing (failure mode closed).
pub(super) const POLICY_FAILURE_CODE: u16 = 500;

/// What one policy did with the request, as recorded by [`Decision::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Allowed, object unchanged.
    Allowed,
    /// Allowed, and the object was changed.
    Mutated,
    /// Denied (enforced).
    Denied,
    /// Denied, but in monitor mode: a warning only.
    Warned,
    /// The policy failed; the failure mode decided.
    Failed,
}

impl Effect {
    /// The word logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Mutated => "mutated",
            Self::Denied => "denied",
            Self::Warned => "warned",
            Self::Failed => "failed",
        }
    }

    /// The `result` label of `bouncer_evaluations_total`: a monitor-mode
    /// denial counts as a denial, a failure as an error.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Mutated => "mutated",
            Self::Denied | Self::Warned => "denied",
            Self::Failed => "error",
        }
    }
}

/// What one policy did with one request: returned by [`Decision::record`],
/// listed per review, and merged across the mutating and validating phases
/// offline.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// The policy's configured name.
    pub policy: String,
    /// Enforce or monitor.
    pub mode: Mode,
    /// What it did (offline, across both phases: the last thing it did).
    pub effect: Effect,
    /// Whether it refused the request: an enforced denial, or a failure with
    /// failure mode closed.
    pub refused: bool,
    /// Whether it changed the object.
    pub mutated: bool,
    /// Its denial, its monitor-mode message, or what its failure meant, as the
    /// user reads it (without the `"<policy>: "` prefix the response adds).
    pub message: Option<String>,
    /// The warnings it added, without the `"<policy>: "` prefix, each once.
    pub warnings: Vec<String>,
    /// The class of its failure, when it failed.
    pub error: Option<ErrorKind>,
    /// Its failure in full, for the log (a trap's internals are here, not in `message`).
    pub detail: Option<String>,
    /// How long its evaluation took.
    pub elapsed: Duration,
    /// The exception that let the request through although the policy
    /// denied it (its description), when one did.
    pub excepted: Option<String>,
}

impl PolicyResult {
    /// Whether it let the request through.
    pub fn allowed(&self) -> bool {
        !self.refused
    }
}

/// What one policy's result comes to, in the words reports use (OpenReports'
/// `result`): the one classification `check`, `audit` and their reports share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The policy would refuse the object.
    Fail,
    /// The policy could not judge it (a trap, a timeout, an object it cannot read).
    Error,
    /// Not met but not enforced (monitor mode), or allowed with warnings.
    Warn,
    /// Met.
    Pass,
    /// Not judged: a `PolicyException` excepts the object from the policy.
    Skip,
}

impl Verdict {
    /// The verdict of one policy's result.
    pub fn of(result: &PolicyResult) -> Self {
        if result.excepted.is_some() {
            Self::Skip
        } else if result.error.is_some() {
            Self::Error
        } else if result.refused {
            Self::Fail
        } else if result.message.is_some() || !result.warnings.is_empty() {
            Self::Warn
        } else {
            Self::Pass
        }
    }

    /// The word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Pass => "pass",
            Self::Skip => "skip",
        }
    }
}

/// One enforced denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The policy that denied.
    pub policy: String,
    /// Its message.
    pub message: String,
    /// The HTTP code.
    pub code: u16,
    /// The policy failed (failure mode closed) rather than denied: no
    /// exception covers that.
    pub failure: bool,
}

/// The running verdict on one request, fed policy by policy in configuration order.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The object's JSON text as received.
    original_text: Option<String>,
    /// The original and current object as JSON trees, built on the first mutation only.
    mutated: Option<(Value, Value)>,
    /// The current object's serialised size in bytes.
    size: usize,
    /// The largest the object may become (the request body limit).
    max_object: usize,
    denials: Vec<Denial>,
    warnings: Vec<Warning>,
}

/// A warning a policy added: its name and its words, kept apart until the
/// response puts them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The policy's configured name.
    pub policy: String,
    /// What it said (or what its failure meant).
    pub text: String,
}

impl Decision {
    /// Starts a decision on a request whose object's JSON text is `object`;
    /// mutations may not make the object larger than `max_object` bytes.
    pub fn new(object: Option<&str>, max_object: usize) -> Self {
        Self {
            original_text: object.map(str::to_owned),
            mutated: None,
            size: object.map_or(0, str::len),
            max_object,
            denials: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The object as patched by the mutating policies recorded so far, as JSON
    /// text; `None` until a policy mutates it.
    pub fn patched_object_text(&self) -> Option<String> {
        self.mutated
            .as_ref()
            .map(|(_, current)| current.to_string())
    }

    /// The object as patched so far, as a JSON tree; `None` until a policy mutates it.
    pub fn patched_object(&self) -> Option<&Value> {
        self.mutated.as_ref().map(|(_, current)| current)
    }

    /// The enforced denials so far, in order.
    pub fn denials(&self) -> &[Denial] {
        &self.denials
    }

    /// The warnings so far, in order.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// True when a mutating policy changed the object.
    pub fn is_mutated(&self) -> bool {
        self.mutated
            .as_ref()
            .is_some_and(|(original, current)| original != current)
    }

    /// Records what `policy` returned, and returns what it did. Mutations are
    /// applied only when `mutate` is true (the mutating endpoint), so a
    /// validating call never patches.
    pub fn record(
        &mut self,
        policy: &str,
        mode: Mode,
        failure: FailureMode,
        evaluated: (Result<Outcome, PolicyError>, Duration),
        mutate: bool,
    ) -> PolicyResult {
        let (result, elapsed) = evaluated;
        let (denials, warnings) = (self.denials.len(), self.warnings.len());
        let error = result.as_ref().err().map(PolicyError::kind);
        let detail = result.as_ref().err().map(ToString::to_string);
        let effect = self.apply_result(policy, mode, failure, result, mutate);
        let new_warnings: Vec<String> = self.warnings[warnings..]
            .iter()
            .map(|w| w.text.clone())
            .collect();
        let message = match self.denials.get(denials) {
            Some(denial) => Some(denial.message.clone()),
            // A monitor-mode denial or an open failure is its last warning.
            None if matches!(effect, Effect::Warned | Effect::Failed) => {
                new_warnings.last().cloned()
            }
            None => None,
        };
        PolicyResult {
            policy: policy.to_owned(),
            mode,
            refused: self.denials.len() > denials,
            mutated: effect == Effect::Mutated,
            effect,
            message,
            warnings: new_warnings,
            error,
            detail,
            elapsed,
            excepted: None,
        }
    }

    /// Applies exceptions to the enforced denials so far: a denial that
    /// `covering(policy)` answers with an unexpired exception becomes a
    /// warning naming it; one covered only by expired exceptions says they no
    /// longer apply; every denial left says how to ask for one when `hint` is
    /// given. A policy's failure is never excepted. Returns the policies let
    /// through, with the exception that did it.
    pub(super) fn except(
        &mut self,
        covering: impl Fn(&str) -> (Option<String>, Option<String>),
        hint: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut excepted = Vec::new();
        let mut kept = Vec::new();
        for mut denial in std::mem::take(&mut self.denials) {
            if denial.failure {
                kept.push(denial);
                continue;
            }
            let (active, expired) = covering(&denial.policy);
            if let Some(exception) = active {
                self.warnings.push(Warning {
                    policy: denial.policy.clone(),
                    text: format!("allowed by {exception}: {}", denial.message),
                });
                excepted.push((denial.policy, exception));
                continue;
            }
            if let Some(expired) = expired {
                denial
                    .message
                    .push_str(&format!(" ({expired} has expired and no longer applies)"));
            }
            if let Some(hint) = hint {
                denial
                    .message
                    .push_str(&format!(" (to ask for an exception: {hint})"));
            }
            kept.push(denial);
        }
        self.denials = kept;
        excepted
    }

    fn apply_result(
        &mut self,
        policy: &str,
        mode: Mode,
        failure: FailureMode,
        result: Result<Outcome, PolicyError>,
        mutate: bool,
    ) -> Effect {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => return self.record_failure(policy, failure, &error.for_user()),
        };
        self.warnings
            .extend(outcome.warnings.iter().map(|w| Warning {
                policy: policy.to_owned(),
                text: w.clone(),
            }));
        if !outcome.allowed {
            let message = outcome.message.unwrap_or_default();
            return match mode {
                Mode::Monitor => {
                    self.warnings.push(Warning {
                        policy: policy.to_owned(),
                        text: message,
                    });
                    Effect::Warned
                }
                Mode::Enforce => {
                    self.denials.push(Denial {
                        policy: policy.to_owned(),
                        message,
                        code: outcome.code.unwrap_or(DEFAULT_DENY_CODE),
                        failure: false,
                    });
                    Effect::Denied
                }
            };
        }
        match outcome.mutation {
            Some(mutation) if mutate => match self.apply(&mutation) {
                Ok(true) => Effect::Mutated,
                Ok(false) => Effect::Allowed,
                Err(reason) => self.record_failure(
                    policy,
                    failure,
                    // The same words as a verdict the runtime refused.
                    &PolicyError::BadVerdict {
                        policy: policy.to_owned(),
                        reason,
                    }
                    .for_user(),
                ),
            },
            _ => Effect::Allowed,
        }
    }

    fn record_failure(&mut self, policy: &str, failure: FailureMode, error: &str) -> Effect {
        match failure {
            FailureMode::Closed => self.denials.push(Denial {
                policy: policy.to_owned(),
                message: format!("{error} (failure mode: closed)"),
                code: POLICY_FAILURE_CODE,
                failure: true,
            }),
            FailureMode::Open => self.warnings.push(Warning {
                policy: policy.to_owned(),
                text: format!("{error}; request allowed (failure mode: open)"),
            }),
        }
        Effect::Failed
    }

    /// Applies a mutation to the current object; `Ok(false)` when nothing changed.
    fn apply(&mut self, mutation: &Mutation) -> Result<bool, String> {
        if self.mutated.is_none() {
            let Some(text) = &self.original_text else {
                return Err("it mutated a request that has no object".into());
            };
            let original: Value = serde_json::from_str(text)
                .map_err(|e| format!("the request's object is not JSON: {e}"))?;
            self.mutated = Some((original.clone(), original));
        }
        let Some((_, current)) = self.mutated.as_mut() else {
            return Err("no object to mutate".into());
        };
        let changed = match mutation {
            Mutation::Object(object) => {
                let size = super::patch::serialized_len(object);
                if size > self.max_object {
                    return Err(format!(
                        "its patched object is {size} bytes, more than the {} the API server accepts",
                        self.max_object
                    ));
                }
                self.size = size;
                let changed = current != object;
                *current = object.clone();
                changed
            }
            Mutation::Patch(patch) => {
                let changed = super::patch::apply(current, self.size, &patch.0, self.max_object)
                    .map_err(|e| e.to_string())?;
                self.size = super::patch::serialized_len(current);
                changed
            }
        };
        Ok(changed)
    }

    /// The response for `request`: denied with every enforced denial, or allowed
    /// with one JSONPatch from the original object to the final one.
    pub fn into_response(self, request: &Request) -> AdmissionResponse {
        let mut response = AdmissionResponse::from(request);
        if !self.warnings.is_empty() {
            response.warnings = Some(
                self.warnings
                    .iter()
                    .map(|w| format!("{}: {}", w.policy, w.text))
                    .collect(),
            );
        }
        if let Some(first) = self.denials.first() {
            let code = first.code;
            let message = self
                .denials
                .iter()
                .map(|d| format!("{}: {}", d.policy, d.message))
                .collect::<Vec<_>>()
                .join("; ");
            let mut response = response.deny(message);
            response.result.code = code;
            response.result.status = Some(kube::core::response::StatusSummary::Failure);
            response.result.reason = reason_for(code).to_owned();
            return response;
        }
        if let Some((original, current)) = &self.mutated {
            let patch = json_patch::diff(original, current);
            if !patch.0.is_empty() {
                // Serialising a patch of JSON values cannot fail.
                if let Ok(patched) = response.clone().with_patch(patch) {
                    return patched;
                }
            }
        }
        response
    }
}

/// The Kubernetes `Status.reason` matching an HTTP code.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}
