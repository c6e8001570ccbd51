//! One evaluation of a loaded policy (`loaded.rs`) in a fresh, limited instance,
//! on this thread or an evaluation thread, and the host's check of its verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::bouncer::policy::types::Mutation as WitMutation;
use super::bindings::bouncer::policy::types::PolicyMetadata;
use super::bindings::{PolicyPre, Request, Verdict};
use super::engine::EPOCH_TICK;
use super::error::PolicyError;
use super::imports::StoreState;
use super::limits::{MemoryRefusal, OutputLimits};
use super::loaded::Policy;
use super::lookup::ContextSource;
use super::metadata::Metadata;
use super::threads::{self, Threads};

/// Ticks (5 ms each) after which an evaluation counts as long, and its thread
/// gives way to others (see `threads.rs`). Healthy policies answer in well
/// under a millisecond; JavaScript and Python ones in a few.
const LONG_AFTER_TICKS: u64 = 2;

/// Where an evaluation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// On the calling thread, at once: offline tools (`bouncer test`, `check`, `eval`).
    Here,
    /// On one of the evaluation threads (`threads.rs`), once one of the
    /// policy's evaluation slots is free: the server, whose async workers must
    /// never run guest code (a looping policy would stall accept, TLS and probes).
    OffThread,
}

/// What a policy decided about one request, checked by the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why it was denied (always set when denied).
    pub message: Option<String>,
    /// HTTP status code of a denial, 400–599, when the policy chose one.
    pub code: Option<u16>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// How the policy changed the object, when allowed and it did.
    pub mutation: Option<Mutation>,
}

/// What `result` comes to in an evaluation's trace span (`spans.rs`).
pub fn answered(result: &Result<Outcome, PolicyError>) -> super::spans::Answered {
    use super::spans::Answered;
    match result {
        Ok(outcome) if !outcome.allowed => Answered::Denied,
        Ok(outcome) if outcome.mutation.is_some() => Answered::Mutated,
        Ok(_) => Answered::Allowed,
        Err(error) => Answered::Failed(error.kind().as_str()),
    }
}

/// A policy's change to the object.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// The whole object after the change.
    Object(serde_json::Value),
    /// A JSON Patch to apply to the object.
    Patch(json_patch::Patch),
}

impl Policy {
    /// Calls the component's `metadata` export, when it has one, and keeps the answer.
    pub(crate) fn load_metadata(&mut self) -> Result<(), PolicyError> {
        if !self.prepared.metadata {
            return Ok(());
        }
        let raw = self.call("metadata", self.limits.timeout, None, |pre, store| {
            let instance = pre.instance_pre().instantiate(&mut *store)?;
            let metadata =
                instance.get_typed_func::<(), (PolicyMetadata,)>(&mut *store, "metadata")?;
            Ok(metadata.call(&mut *store, ())?.0)
        })?;
        let metadata = Metadata::from_wit(raw).map_err(|reason| PolicyError::BadVerdict {
            policy: self.name.to_string(),
            reason,
        })?;
        self.metadata = Some(Arc::new(metadata));
        Ok(())
    }

    /// Runs the policy's `validate-settings` on its settings.
    ///
    /// # Errors
    /// [`PolicyError::Settings`] with the policy's message, or a failure of the call.
    pub fn validate_settings(&self) -> Result<(), PolicyError> {
        self.call(
            "validate-settings",
            self.limits.timeout,
            None,
            |pre, store| {
                pre.instantiate(&mut *store)?
                    .call_validate_settings(store, &self.settings)
            },
        )?
        .map_err(|message| PolicyError::Settings {
            policy: self.name.to_string(),
            message,
        })
    }

    /// Evaluates one request in a fresh instance, on this thread, within the
    /// policy's own timeout.
    ///
    /// # Guarantees
    /// Nothing survives the call: the instance and its memory are discarded, so
    /// no state leaks between requests and a trapped instance never runs again.
    ///
    /// # Errors
    /// The policy ran past its deadline or memory cap, trapped, or returned a
    /// verdict the host cannot use. Never panics, whatever the guest does.
    pub fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        self.evaluate_until(request, Instant::now() + self.limits.timeout, None)
    }

    /// Like [`evaluate`](Self::evaluate), stopping at `deadline` when that comes
    /// before the policy's own timeout, and answering the policy's context lookups
    /// from `context` (lookups fail when it is `None`).
    pub fn evaluate_until(
        &self,
        request: &Request,
        deadline: Instant,
        context: Option<&Arc<dyn ContextSource>>,
    ) -> Result<Outcome, PolicyError> {
        self.validate(request, deadline, context, false)
    }

    /// Evaluates `request` where `run` says, by `deadline` at the latest and
    /// within the policy's own timeout, counted from this call.
    ///
    /// # Guarantees
    /// With [`Run::OffThread`], guest code never runs on an async worker; the
    /// evaluation first takes one of the policy's own slots, so a policy that
    /// loops or floods uses its slots and nobody else's. Waiting for a slot
    /// counts against the deadline.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate), and [`PolicyError::Busy`] when no slot
    /// came free before the deadline.
    pub async fn evaluate_by(
        &self,
        run: Run,
        request: Arc<Request>,
        deadline: Instant,
        context: Option<Arc<dyn ContextSource>>,
    ) -> Result<Outcome, PolicyError> {
        let asked = Instant::now();
        let deadline = deadline.min(asked + self.limits.timeout);
        if run == Run::Here {
            return self.evaluate_until(&request, deadline, context.as_ref());
        }
        let span = tracing::Span::current();
        let permit = match self.quota.slots().clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                super::spans::record_slot_wait(&span);
                let slot = self.quota.slots().clone().acquire_owned();
                let Ok(Ok(permit)) = tokio::time::timeout_at(deadline.into(), slot).await else {
                    return Err(PolicyError::Busy {
                        policy: self.name.to_string(),
                        slots: self.quota.concurrency(),
                        waited: asked.elapsed(),
                    });
                };
                permit
            }
        };
        let policy = self.clone();
        // The evaluation thread works in the caller's span (the evaluation's),
        // so the guest's lookups are its children.
        let evaluation = Threads::global().run(move || {
            let _slot = permit;
            span.in_scope(|| policy.validate_here(&request, deadline, context.as_ref()))
        });
        evaluation.await.unwrap_or_else(|| {
            Err(PolicyError::Trap {
                policy: self.name.to_string(),
                reason: "the host panicked while running it".into(),
            })
        })
    }

    /// A free evaluation slot of this policy, if one is free now.
    pub(crate) fn try_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.quota.slots().clone().try_acquire_owned().ok()
    }

    /// One of this policy's evaluation slots if one is free now, for
    /// [`evaluate_in_shadow`](Self::evaluate_in_shadow); `None` when all are busy.
    pub fn free_slot(&self) -> Option<Slot> {
        self.try_slot().map(|permit| Slot { _permit: permit })
    }

    /// Evaluates `request` as a shadow candidate, in `slot`, on a thread
    /// that only runs when a CPU would otherwise be idle (`Threads::idle`).
    ///
    /// Its timeout is judged on the CPU time it had, not on the wall clock:
    /// such a thread may wait long for a CPU, so the wall clock only stops it
    /// at [`SHADOW_WALL_FACTOR`] times its timeout, and an evaluation that
    /// used more CPU than its timeout failed by its deadline, as it would
    /// have served. Returns the CPU time too: a deadline missed with less is
    /// a candidate that never got the CPU, not one that runs long.
    pub async fn evaluate_in_shadow(
        &self,
        slot: Slot,
        request: Arc<Request>,
        context: Option<Arc<dyn ContextSource>>,
    ) -> (Result<Outcome, PolicyError>, Duration) {
        let policy = self.clone();
        let evaluation = Threads::idle().run(move || {
            let _slot = slot;
            let started = thread_cpu_time();
            let wall = (policy.limits.timeout * SHADOW_WALL_FACTOR).max(SHADOW_WALL_MIN);
            let result = policy.validate_within(&request, wall, context.as_ref(), true);
            let cpu = thread_cpu_time().saturating_sub(started);
            let result = match result {
                Ok(_) if cpu > policy.limits.timeout => Err(PolicyError::Deadline {
                    policy: policy.name.to_string(),
                    timeout: policy.limits.timeout,
                }),
                other => other,
            };
            (result, cpu)
        });
        evaluation.await.unwrap_or_else(|| {
            let error = PolicyError::Trap {
                policy: self.name.to_string(),
                reason: "the host panicked while running it".into(),
            };
            (Err(error), Duration::ZERO)
        })
    }

    /// Evaluates on this thread, which runs no async tasks (an evaluation
    /// thread), by `deadline` and within the policy's timeout from now.
    pub(crate) fn validate_here(
        &self,
        request: &Request,
        deadline: Instant,
        context: Option<&Arc<dyn ContextSource>>,
    ) -> Result<Outcome, PolicyError> {
        self.validate(request, deadline, context, true)
    }

    /// Calls `validate` in a fresh instance by `deadline`. `off_worker`: this
    /// thread runs no async tasks, so WASI calls need no hand-off (see [`Self::call`]).
    fn validate(
        &self,
        request: &Request,
        deadline: Instant,
        context: Option<&Arc<dyn ContextSource>>,
        off_worker: bool,
    ) -> Result<Outcome, PolicyError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(PolicyError::Deadline {
                policy: self.name.to_string(),
                timeout,
            });
        }
        self.validate_within(
            request,
            timeout.min(self.limits.timeout),
            context,
            off_worker,
        )
    }

    /// Calls `validate` in a fresh instance, stopped after `timeout`.
    fn validate_within(
        &self,
        request: &Request,
        timeout: Duration,
        context: Option<&Arc<dyn ContextSource>>,
        off_worker: bool,
    ) -> Result<Outcome, PolicyError> {
        let validate = |pre: &PolicyPre<StoreState>, store: &mut Store<StoreState>| {
            pre.instantiate(&mut *store)?
                .call_validate(store, request, &self.settings)
        };
        let verdict = if off_worker {
            self.call_here(&request.uid, timeout, context, validate)
        } else {
            self.call(&request.uid, timeout, context, validate)
        }?;
        self.check(verdict)
    }

    /// Runs `f` (which instantiates the component) in a fresh store with this
    /// policy's limits.
    ///
    /// WASI calls block on an async runtime internally, which panics on a thread
    /// that is already driving one. No path of bouncer's calls guest code in an
    /// async context (the server evaluates on its evaluation threads, `check`,
    /// `test` and `audit` on plain threads); this guards library callers that
    /// do: there it runs in `block_in_place`, which hands the worker's other
    /// tasks to another thread, or, on a current-thread runtime, on a
    /// short-lived thread of its own.
    fn call<R: Send>(
        &self,
        uid: &str,
        timeout: Duration,
        context: Option<&Arc<dyn ContextSource>>,
        f: impl FnOnce(&PolicyPre<StoreState>, &mut Store<StoreState>) -> wasmtime::Result<R> + Send,
    ) -> Result<R, PolicyError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let Some(handle) = self
            .prepared
            .wasi
            .then(Handle::try_current)
            .and_then(Result::ok)
        else {
            return self.call_here(uid, timeout, context, f);
        };
        if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
            return tokio::task::block_in_place(|| self.call_here(uid, timeout, context, f));
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("bouncer-wasi".into())
                .spawn_scoped(scope, || self.call_here(uid, timeout, context, f))
                .map_err(|e| PolicyError::Engine {
                    message: format!("cannot start a thread for policy `{}`", self.name),
                    source: e.into(),
                })?
                .join()
                .unwrap_or_else(|_| {
                    Err(PolicyError::Trap {
                        policy: self.name.to_string(),
                        reason: "the host's WASI implementation panicked".into(),
                    })
                })
        })
    }

    fn call_here<R>(
        &self,
        uid: &str,
        timeout: Duration,
        context: Option<&Arc<dyn ContextSource>>,
        f: impl FnOnce(&PolicyPre<StoreState>, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let mut state = StoreState::new(
            self.name.clone(),
            uid.to_owned(),
            self.limits.memory,
            Some(self.quota.clone()),
        );
        state.context_kinds = self.context_kinds.clone();
        state.context = context.cloned();
        let mut store = Store::new(self.prepared.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // One extra tick: the ticker may advance the epoch right after we read it.
        let ticks = timeout.as_micros().div_ceil(EPOCH_TICK.as_micros()) + 1;
        let ticks = u64::try_from(ticks).unwrap_or(u64::MAX);
        // Past a couple of ticks the evaluation is a long one: its thread
        // yields the CPU to short evaluations and the server from then on.
        let first = ticks.min(LONG_AFTER_TICKS);
        let mut rest = ticks - first;
        store.set_epoch_deadline(first);
        store.epoch_deadline_callback(move |_| {
            if rest == 0 {
                return Err(Trap::Interrupt.into());
            }
            threads::demote_current_thread();
            Ok(UpdateDeadline::Continue(std::mem::take(&mut rest)))
        });
        let result = f(&self.prepared.pre, &mut store);
        store.data_mut().flush_wasi_output();
        result.map_err(|error| self.classify(error, store.data(), timeout))
    }

    /// Turns a wasmtime error into the [`PolicyError`] that says what happened.
    fn classify(
        &self,
        error: wasmtime::Error,
        state: &StoreState,
        timeout: Duration,
    ) -> PolicyError {
        let policy = self.name.to_string();
        match state.limiter.refused {
            Some(MemoryRefusal::Cap) => {
                return PolicyError::Memory {
                    policy,
                    limit: self.limits.memory,
                };
            }
            Some(MemoryRefusal::Budget { share, budget }) => {
                return PolicyError::MemoryBudget {
                    policy,
                    share,
                    budget,
                };
            }
            None => {}
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PolicyError::Deadline { policy, timeout },
            Some(trap) => match state.last_error.clone() {
                Some(message) => PolicyError::Panic { policy, message },
                None => PolicyError::Trap {
                    policy,
                    reason: trap.to_string(),
                },
            },
            None if error
                .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some() =>
            {
                PolicyError::Engine {
                    message: format!("no free instance slot to run policy `{policy}`"),
                    source: error.into(),
                }
            }
            None => PolicyError::Trap {
                policy,
                reason: format!("{error:#}"),
            },
        }
    }

    /// Checks a verdict the guest returned; guests are untrusted. Sizes are
    /// checked before anything is parsed, so the host's work stays bounded by
    /// [`OutputLimits`].
    fn check(&self, verdict: Verdict) -> Result<Outcome, PolicyError> {
        let bad = |reason: String| PolicyError::BadVerdict {
            policy: self.name.to_string(),
            reason,
        };
        if let Some(code) = verdict.code.filter(|c| !(400..=599).contains(c)) {
            return Err(bad(format!(
                "status code {code} is not an HTTP error code (400-599)"
            )));
        }
        let over = |what: &str, len: usize, limit: usize| {
            bad(format!(
                "{what} is {len} bytes, over the {limit}-byte limit"
            ))
        };
        if let Some(message) = verdict
            .message
            .as_ref()
            .filter(|m| m.len() > OutputLimits::MESSAGE_BYTES)
        {
            return Err(over(
                "its message",
                message.len(),
                OutputLimits::MESSAGE_BYTES,
            ));
        }
        if verdict.warnings.len() > OutputLimits::WARNINGS {
            return Err(bad(format!(
                "it returned {} warnings, over the limit of {}",
                verdict.warnings.len(),
                OutputLimits::WARNINGS
            )));
        }
        if let Some(long) = verdict
            .warnings
            .iter()
            .find(|w| w.len() > OutputLimits::WARNING_BYTES)
        {
            return Err(over("a warning", long.len(), OutputLimits::WARNING_BYTES));
        }
        let message = match verdict.message {
            Some(m) if !m.trim().is_empty() => Some(m),
            _ if !verdict.allowed => Some(format!("denied by policy `{}`", self.name)),
            _ => None,
        };
        let mutation = match verdict.mutation {
            Some(_) if !verdict.allowed => None,
            None => None,
            Some(WitMutation::PatchedObject(text) | WitMutation::JsonPatch(text))
                if text.len() > OutputLimits::MUTATION_BYTES =>
            {
                return Err(over(
                    "its mutation",
                    text.len(),
                    OutputLimits::MUTATION_BYTES,
                ));
            }
            Some(WitMutation::PatchedObject(text)) => match serde_json::from_str(&text) {
                Ok(object @ serde_json::Value::Object(_)) => Some(Mutation::Object(object)),
                Ok(_) => return Err(bad("the patched object is not a JSON object".into())),
                Err(e) => return Err(bad(format!("the patched object is not JSON: {e}"))),
            },
            Some(WitMutation::JsonPatch(text)) => {
                match serde_json::from_str::<json_patch::Patch>(&text) {
                    Ok(patch) if patch.0.len() > OutputLimits::PATCH_OPERATIONS => {
                        return Err(bad(format!(
                            "its JSON patch has {} operations, over the limit of {}",
                            patch.0.len(),
                            OutputLimits::PATCH_OPERATIONS
                        )));
                    }
                    Ok(patch) => Some(Mutation::Patch(patch)),
                    Err(e) => {
                        return Err(bad(format!("the JSON patch is not an RFC 6902 patch: {e}")));
                    }
                }
            }
        };
        Ok(Outcome {
            allowed: verdict.allowed,
            message,
            code: verdict.code,
            warnings: verdict.warnings,
            mutation,
        })
    }
}

/// How many times its timeout a shadow evaluation may wait, on the wall
/// clock, for the idle CPU it runs on.
const SHADOW_WALL_FACTOR: u32 = 8;
/// The least wall-clock time a shadow evaluation is given.
const SHADOW_WALL_MIN: Duration = Duration::from_secs(1);

/// An evaluation slot taken ahead of the evaluation ([`Policy::free_slot`]).
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// CPU time the calling thread has had.
fn thread_cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a plain system call writing into a valid timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0 {
            return Duration::new(
                u64::try_from(now.tv_sec).unwrap_or(0),
                u32::try_from(now.tv_nsec).unwrap_or(0),
            );
        }
    }
    Duration::ZERO
}
