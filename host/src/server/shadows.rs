//! What the server keeps of its shadow candidates' outcomes: a tally per
//! policy for `/readyz`, one log line per object and change (rate-limited),
//! and the disagreements the live reports are written from
//! (`shadow_reports.rs`). Everything here is bounded: the log by a token
//! bucket and a capped memory of what was logged, the disagreements by a cap
//! per namespace and in all.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::admission::shadow::{Change, Disagreement, Shadowed, Subject};

/// Disagreements kept per namespace (the newest replace the oldest).
pub(super) const MAX_PER_NAMESPACE: usize = 200;
/// Disagreements kept in all; past it, new namespaces are not recorded.
const MAX_KEPT: usize = 5000;
/// Objects remembered as logged; the memory starts over when full.
const MAX_LOGGED: usize = 10_000;
/// Disagreement log lines per second, and the burst allowed.
const LOG_RATE: f64 = 10.0;
const LOG_BURST: f64 = 50.0;
/// Longest text kept of either verdict.
const MAX_VERDICT: usize = 512;

/// One policy's shadow outcomes so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Tally {
    pub(super) agreed: u64,
    pub(super) disagreed: BTreeMap<Change, u64>,
    pub(super) busy: u64,
    pub(super) starved: u64,
}

/// A disagreement as kept for the reports: the object and both verdicts in words.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    pub(super) policy: String,
    pub(super) change: Change,
    pub(super) subject: Subject,
    pub(super) current: String,
    pub(super) candidate: String,
}

#[derive(Default)]
struct Ledger {
    tallies: BTreeMap<String, Tally>,
    logged: HashSet<(String, Change, String)>,
    tokens: f64,
    refilled: Option<Instant>,
    /// By namespace (`""` for cluster-scoped objects), newest last.
    kept: BTreeMap<String, Vec<Kept>>,
    kept_total: usize,
    /// Namespaces whose disagreements changed since the last report.
    dirty: BTreeSet<String>,
}

/// The server's record of its shadows.
#[derive(Default)]
pub struct ShadowLedger {
    ledger: Mutex<Ledger>,
}

impl ShadowLedger {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // Every critical section only moves values in and out of maps.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one outcome: tallied, and a disagreement logged (once per
    /// policy, object and change, within the rate) and kept for the reports.
    /// Returns whether a log line was dropped by the rate.
    pub fn record(&self, outcome: &Shadowed) -> bool {
        let mut ledger = self.lock();
        let tally = ledger
            .tallies
            .entry(outcome.policy().to_owned())
            .or_default();
        let disagreement = match outcome {
            Shadowed::Agreed { .. } => {
                tally.agreed += 1;
                return false;
            }
            Shadowed::Busy { .. } => {
                tally.busy += 1;
                return false;
            }
            Shadowed::Starved { .. } => {
                tally.starved += 1;
                return false;
            }
            Shadowed::Disagreed(d) => {
                *tally.disagreed.entry(d.change).or_default() += 1;
                d
            }
        };
        ledger.keep(disagreement);
        ledger.log(disagreement)
    }

    /// Each policy's tally so far.
    pub(super) fn tallies(&self) -> BTreeMap<String, Tally> {
        self.lock().tallies.clone()
    }

    /// The namespaces whose disagreements changed since the last call, with
    /// all their disagreements kept.
    pub(super) fn take_dirty(&self) -> Vec<(String, Vec<Kept>)> {
        let mut ledger = self.lock();
        let dirty = std::mem::take(&mut ledger.dirty);
        dirty
            .into_iter()
            .map(|ns| {
                let kept = ledger.kept.get(&ns).cloned().unwrap_or_default();
                (ns, kept)
            })
            .collect()
    }

    /// Marks `namespace` for the next report again (its write failed).
    pub(super) fn mark_dirty(&self, namespace: String) {
        self.lock().dirty.insert(namespace);
    }
}

impl Ledger {
    fn keep(&mut self, d: &Disagreement) {
        let namespace = d.subject.namespace.clone().unwrap_or_default();
        if !self.kept.contains_key(&namespace) && self.kept_total >= MAX_KEPT {
            return;
        }
        let list = self.kept.entry(namespace.clone()).or_default();
        // The latest verdicts on an object replace the earlier ones.
        let before = list.len();
        list.retain(|k| {
            !(k.policy == d.policy
                && k.subject.name == d.subject.name
                && k.subject.kind == d.subject.kind)
        });
        if list.len() >= MAX_PER_NAMESPACE {
            list.remove(0);
        }
        list.push(Kept {
            policy: d.policy.clone(),
            change: d.change,
            subject: d.subject.clone(),
            current: cut(d.current.describe()),
            candidate: cut(d.candidate.describe()),
        });
        self.kept_total = self.kept_total + list.len() - before;
        self.dirty.insert(namespace);
    }

    /// Logs `d` unless this object and change were logged already; false
    /// when the rate dropped the line.
    fn log(&mut self, d: &Disagreement) -> bool {
        let key = (d.policy.clone(), d.change, d.subject.label());
        if self.logged.contains(&key) {
            return false;
        }
        let now = Instant::now();
        let elapsed = self.refilled.map_or(LOG_BURST / LOG_RATE, |t| {
            now.duration_since(t).as_secs_f64()
        });
        self.tokens = (self.tokens + elapsed * LOG_RATE).min(LOG_BURST);
        self.refilled = Some(now);
        if self.tokens < 1.0 {
            return true;
        }
        self.tokens -= 1.0;
        if self.logged.len() >= MAX_LOGGED {
            self.logged.clear();
        }
        self.logged.insert(key);
        tracing::warn!(
            policy = %d.policy,
            change = d.change.as_str(),
            object = %d.subject.label(),
            current = %cut(d.current.describe()),
            candidate = %cut(d.candidate.describe()),
            "shadow candidate disagrees (logged once per object and change)"
        );
        false
    }
}

fn cut(text: String) -> String {
    crate::openreports::cut(text, MAX_VERDICT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::shadow::Stance;

    fn disagreement(namespace: &str, name: &str) -> Shadowed {
        Shadowed::Disagreed(Box::new(Disagreement {
            policy: "p".into(),
            change: Change::NewlyDenied,
            subject: Subject {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some(namespace.into()),
                name: name.into(),
                uid: None,
            },
            current: Stance::Allowed,
            candidate: Stance::Denied("x".repeat(4096)),
        }))
    }

    #[test]
    fn disagreements_are_kept_once_per_object_and_bounded_per_namespace() {
        let ledger = ShadowLedger::default();
        for round in 0..3 {
            for i in 0..(MAX_PER_NAMESPACE + 50) {
                ledger.record(&disagreement("shop", &format!("d{i}")));
            }
            let dirty = ledger.take_dirty();
            assert_eq!(dirty.len(), 1, "round {round}");
            assert_eq!(dirty[0].1.len(), MAX_PER_NAMESPACE);
            assert!(dirty[0].1.iter().all(|k| k.candidate.len() <= MAX_VERDICT));
        }
        assert!(ledger.take_dirty().is_empty(), "nothing new since");
        let tally = &ledger.tallies()["p"];
        assert_eq!(
            tally.disagreed[&Change::NewlyDenied],
            3 * (MAX_PER_NAMESPACE as u64 + 50)
        );
    }

    #[test]
    fn the_log_is_rate_limited() {
        let ledger = ShadowLedger::default();
        let dropped = (0..1000)
            .filter(|i| ledger.record(&disagreement("shop", &format!("d{i}"))))
            .count();
        assert!(
            dropped >= 1000 - 2 * LOG_BURST as usize,
            "{dropped} dropped"
        );
        // The same object and change again is not logged, so never dropped.
        assert!(!ledger.record(&disagreement("shop", "d0")));
    }
}
