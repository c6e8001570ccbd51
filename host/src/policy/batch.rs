//! Evaluating a review's independent policies with one hand-off.
//!
//! Handing an evaluation to an evaluation thread and its answer back costs two
//! thread wake-ups, more than a built-in's whole evaluation when the server is
//! busy. So the policies of one `/validate` review go to one thread together
//! and run there one after the other. That alone would let a slow policy delay
//! the ones after it, so the batch is shared: when an evaluation runs long
//! (past two epoch ticks, when its thread is demoted, see `threads.rs`), the
//! rest of the batch is handed to another thread at once. Each policy's own
//! timeout counts from when it starts, and the review's deadline bounds all.
//!
//! A policy whose slots are all busy does not join the batch: it waits for a
//! slot on its own (see [`Policy::evaluate_by`]), so its queue never holds the
//! others up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument as _, Span};

use super::bindings::Request;
use super::error::PolicyError;
use super::evaluate::{Outcome, Run};
use super::loaded::Policy;
use super::lookup::ContextSource;
use super::threads::{self, Threads};

/// A policy's answer and how long its evaluation took.
type Answer = (Result<Outcome, PolicyError>, Duration);

/// Evaluates each of `policies` on `request` where `run` says, by `deadline`
/// at the latest; the answers, with how long each evaluation took, come back
/// in the order of `policies`. Each evaluation runs in its span of `spans`
/// (same order; see `spans.rs`), whatever thread it runs on.
///
/// # Guarantees
/// As [`Policy::evaluate_by`] for each policy: guest code never runs on an
/// async worker, each policy uses only its own slots, and one policy's
/// slowness does not spend another's timeout.
pub async fn evaluate_all(
    policies: &[&Policy],
    spans: Vec<Span>,
    run: Run,
    request: Arc<Request>,
    deadline: Instant,
    context: Option<Arc<dyn ContextSource>>,
) -> Vec<Answer> {
    if run == Run::Here {
        return evaluate_all_here(policies, spans, &request, deadline, context.as_ref());
    }
    let mut spans = spans.into_iter();
    let mut batched = Vec::new();
    let mut waiting = Vec::new();
    for (index, policy) in policies.iter().enumerate() {
        match policy.try_slot() {
            Some(slot) => batched.push(Item {
                index,
                policy: (*policy).clone(),
                slot,
                span: spans.next().unwrap_or_else(Span::none),
            }),
            None => waiting.push((index, *policy, spans.next().unwrap_or_else(Span::none))),
        }
    }
    let waiting_at: Vec<usize> = waiting.iter().map(|(index, _, _)| *index).collect();
    // Each future owns its span, so the span ends when its evaluation does.
    // `evaluate_by` marks the span when it does wait for a slot.
    let alone = futures::future::join_all(waiting.into_iter().map(|(_, policy, span)| {
        let evaluation = policy.evaluate_by(run, request.clone(), deadline, context.clone());
        let recorded = span.clone();
        async move {
            let started = Instant::now();
            let result = evaluation.await;
            super::spans::record_result(&recorded, super::evaluate::answered(&result));
            (result, started.elapsed())
        }
        .instrument(span)
    }));
    let batch = run_batch(batched, request.clone(), deadline, context.clone());
    let (alone, batch) = futures::future::join(alone, batch).await;

    let mut answers: Vec<Option<Answer>> = policies.iter().map(|_| None).collect();
    for (index, answer) in waiting_at.into_iter().zip(alone) {
        answers[index] = Some(answer);
    }
    for (index, answer) in batch {
        answers[index] = Some(answer);
    }
    answers
        .into_iter()
        .zip(policies)
        .map(|(answer, policy)| answer.unwrap_or_else(|| (Err(panicked(policy)), Duration::ZERO)))
        .collect()
}

/// Evaluates each of `policies` on this thread, in turn, by `deadline` at the
/// latest (each within its own timeout): [`Run::Here`] for callers with no
/// runtime to await on (`PolicySet::review_here`).
pub fn evaluate_all_here(
    policies: &[&Policy],
    spans: Vec<Span>,
    request: &Request,
    deadline: Instant,
    context: Option<&Arc<dyn ContextSource>>,
) -> Vec<Answer> {
    let mut spans = spans.into_iter();
    policies
        .iter()
        .map(|p| {
            let span = spans.next().unwrap_or_else(Span::none);
            span.in_scope(|| timed_in(&span, || p.evaluate_until(request, deadline, context)))
        })
        .collect()
}

/// Runs `evaluate`, timing it and recording its answer in `span`.
fn timed_in(span: &Span, evaluate: impl FnOnce() -> Result<Outcome, PolicyError>) -> Answer {
    let started = Instant::now();
    let result = evaluate();
    super::spans::record_result(span, super::evaluate::answered(&result));
    (result, started.elapsed())
}

fn panicked(policy: &Policy) -> PolicyError {
    PolicyError::Trap {
        policy: policy.name().to_owned(),
        reason: "the host panicked while running it".into(),
    }
}

/// Where a batch sends its answers, by policy index, once all are in.
type Done = tokio::sync::oneshot::Sender<Vec<(usize, Answer)>>;

/// One policy of a batch, holding its slot.
struct Item {
    index: usize,
    policy: Policy,
    slot: OwnedSemaphorePermit,
    span: Span,
}

/// A batch shared by the threads that work on it.
struct Batch {
    items: Vec<Mutex<Option<Item>>>,
    next: AtomicUsize,
    request: Arc<Request>,
    deadline: Instant,
    context: Option<Arc<dyn ContextSource>>,
    answers: Mutex<Vec<(usize, Answer)>>,
    left: AtomicUsize,
    done: Mutex<Option<Done>>,
}

async fn run_batch(
    items: Vec<Item>,
    request: Arc<Request>,
    deadline: Instant,
    context: Option<Arc<dyn ContextSource>>,
) -> Vec<(usize, Answer)> {
    if items.is_empty() {
        return Vec::new();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let batch = Arc::new(Batch {
        left: AtomicUsize::new(items.len()),
        items: items.into_iter().map(|i| Mutex::new(Some(i))).collect(),
        next: AtomicUsize::new(0),
        request,
        deadline,
        context,
        answers: Mutex::new(Vec::new()),
        done: Mutex::new(Some(tx)),
    });
    let worker = batch.clone();
    // The answers come through `done`; a panic drops the sender and the
    // missing answers become host-panic failures in `evaluate_all`.
    Threads::global().spawn(move || work(&worker));
    rx.await.unwrap_or_default()
}

/// Takes the batch's next policies, one after another, until none is left or
/// this thread was demoted by a long evaluation.
fn work(batch: &Arc<Batch>) {
    loop {
        let next = batch.next.fetch_add(1, Ordering::AcqRel);
        let Some(cell) = batch.items.get(next) else {
            return;
        };
        let Some(item) = cell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            continue;
        };
        let rest = batch.clone();
        let _hand_off = threads::on_demotion(move || {
            Threads::global().spawn(move || work(&rest));
        });
        let answer = item.span.in_scope(|| {
            timed_in(&item.span, || {
                item.policy
                    .validate_here(&batch.request, batch.deadline, batch.context.as_ref())
            })
        });
        drop((item.slot, item.span, _hand_off));
        let mut answers = batch
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        answers.push((item.index, answer));
        if batch.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let all = std::mem::take(&mut *answers);
            drop(answers);
            if let Some(done) = batch
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                let _ = done.send(all);
            }
            return;
        }
        drop(answers);
        if threads::demoted() {
            return;
        }
    }
}
