//! Running loaded cases, in parallel, through the same policy set and
//! admission chain `bouncer serve` uses.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::expect::{Failure, check};
use super::suite::{Case, Input, Suite};
use crate::admission::{admit, synthetic};
use crate::context::Cluster;
use crate::context::Snapshot;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOutcome {
    /// Every expectation held.
    Passed,
    /// Some did not.
    Failed(Vec<Failure>),
    /// The case could not run (its request could not be built).
    Error(String),
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Index of the suite in the slice given to [`run`].
    pub suite: usize,
    /// Index of the case in its suite.
    pub case: usize,
    /// How it ended.
    pub outcome: CaseOutcome,
    /// How long building the request and admitting it took.
    pub elapsed: Duration,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.outcome == CaseOutcome::Passed
    }
}

/// The id `--filter` matches against: `<suite>/<case>`.
pub fn case_id(suite: &Suite, case: &Case) -> String {
    format!("{}/{}", suite.name, case.name)
}

/// Runs every case whose id contains `filter` (all when `None`), on up to
/// `threads` threads, and returns the results in suite and case order.
pub fn run(suites: &[Suite], filter: Option<&str>, threads: usize) -> Vec<CaseResult> {
    let work: Vec<(usize, usize)> = suites
        .iter()
        .enumerate()
        .flat_map(|(s, suite)| {
            suite
                .cases
                .iter()
                .enumerate()
                .filter(move |(_, case)| filter.is_none_or(|f| case_id(suite, case).contains(f)))
                .map(move |(c, _)| (s, c))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, work.len().max(1)) {
            let send = send.clone();
            let (work, next) = (&work, &next);
            scope.spawn(move || {
                while let Some(&(s, c)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = run_case(&suites[s], s, c);
                    if send.send(result).is_err() {
                        break;
                    }
                }
            });
        }
    });
    drop(send);
    let mut results: Vec<CaseResult> = receive.into_iter().collect();
    results.sort_by_key(|r| (r.suite, r.case));
    results
}

fn run_case(suite: &Suite, suite_index: usize, case_index: usize) -> CaseResult {
    let case = &suite.cases[case_index];
    let started = Instant::now();
    let outcome = match request_of(case, suite_index, case_index) {
        Err(error) => CaseOutcome::Error(error),
        Ok(request) => {
            let namespace = request.namespace.as_deref().unwrap_or("default");
            let cluster: std::sync::Arc<dyn Cluster> =
                std::sync::Arc::new(Snapshot::new(&case.context, namespace));
            let admission = admit(&suite.set, &request, &cluster);
            let sent = request
                .object
                .as_ref()
                .or(request.old_object.as_ref())
                .and_then(|o| serde_json::from_str::<Value>(o.json()).ok());
            let failures = check(&case.expect, &admission, sent.as_ref());
            if failures.is_empty() {
                CaseOutcome::Passed
            } else {
                CaseOutcome::Failed(failures)
            }
        }
    };
    CaseResult {
        suite: suite_index,
        case: case_index,
        outcome,
        elapsed: started.elapsed(),
    }
}

fn request_of(
    case: &Case,
    suite: usize,
    index: usize,
) -> Result<crate::admission::Request, String> {
    match &case.input {
        Input::Request(request) => Ok((**request).clone()),
        Input::Spec(spec) => {
            let uid = format!("bouncer-test-{suite}-{index}");
            synthetic::build(spec, &uid).map_err(|e| e.to_string())
        }
    }
}
