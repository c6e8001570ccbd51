//! What one policy may hold at once: evaluation slots, a share of the server's
//! instance memory, and a log rate.
//!
//! Quotas are kept by the engine per policy name, so a reloaded configuration
//! shares them with evaluations still running on the set it replaced: a
//! reload never doubles what a policy may hold.
//!
//! # The memory budget
//! Instances of every policy together hold at most the budget. Half of it is
//! reserved: each of the `n` configured policies is guaranteed `budget / (2 n)`.
//! The other half is shared, first come first served. So a policy that fills
//! its slots with memory bombs takes its own share and the shared half, and
//! every other policy still has its guaranteed share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Semaphore;

use super::limits::{LogLimits, MemoryRefusal};

/// The instance memory budget of one engine.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    total: usize,
    /// Bytes borrowed from the shared half, by every policy together.
    borrowed: AtomicUsize,
}

impl MemoryBudget {
    pub(crate) fn new(total: usize) -> Self {
        Self {
            total,
            borrowed: AtomicUsize::new(0),
        }
    }

    fn shared(&self) -> usize {
        self.total / 2
    }

    fn borrow(&self, bytes: usize) -> bool {
        self.borrowed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&n| n <= self.shared())
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.borrowed.fetch_sub(bytes, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
struct Account {
    /// Bytes this policy's live instances hold.
    used: usize,
    /// Of those, bytes borrowed from the shared half.
    borrowed: usize,
    /// Bytes guaranteed to this policy.
    share: usize,
}

/// A token bucket of log bytes.
#[derive(Debug)]
struct LogBucket {
    tokens: f64,
    refilled: Instant,
}

/// One policy's quota.
#[derive(Debug)]
pub(crate) struct Quota {
    concurrency: u32,
    slots: Arc<Semaphore>,
    budget: Arc<MemoryBudget>,
    account: Mutex<Account>,
    log: Mutex<LogBucket>,
    log_dropped: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few arithmetic steps that cannot panic halfway.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Quota {
    fn new(concurrency: u32, budget: Arc<MemoryBudget>) -> Self {
        Self {
            concurrency,
            slots: Arc::new(Semaphore::new(concurrency as usize)),
            budget,
            account: Mutex::new(Account::default()),
            log: Mutex::new(LogBucket {
                tokens: LogLimits::BURST_BYTES as f64,
                refilled: Instant::now(),
            }),
            log_dropped: AtomicU64::new(0),
        }
    }

    /// How many evaluations may run at once.
    pub(crate) fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// The evaluation slots.
    pub(crate) fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// Charges `bytes` of a growing instance to the policy: from its share
    /// first, then from the shared half of the budget.
    pub(crate) fn charge_memory(&self, bytes: usize) -> Result<(), MemoryRefusal> {
        let mut account = lock(&self.account);
        let used = account.used.saturating_add(bytes);
        let needed = used.saturating_sub(account.share);
        let more = needed.saturating_sub(account.borrowed);
        if more > 0 && !self.budget.borrow(more) {
            return Err(MemoryRefusal::Budget {
                share: account.share,
                budget: self.budget.total,
            });
        }
        account.used = used;
        account.borrowed += more;
        Ok(())
    }

    /// Gives back what a finished instance held.
    pub(crate) fn release_memory(&self, bytes: usize) {
        let mut account = lock(&self.account);
        account.used = account.used.saturating_sub(bytes);
        let keep = account
            .used
            .saturating_sub(account.share)
            .min(account.borrowed);
        self.budget.give_back(account.borrowed - keep);
        account.borrowed = keep;
    }

    /// Takes `bytes` from the policy's log rate; false when the line must be dropped.
    pub(crate) fn take_log(&self, bytes: usize) -> bool {
        let mut bucket = lock(&self.log);
        let now = Instant::now();
        let refill =
            now.duration_since(bucket.refilled).as_secs_f64() * LogLimits::BYTES_PER_SECOND as f64;
        bucket.tokens = (bucket.tokens + refill).min(LogLimits::BURST_BYTES as f64);
        bucket.refilled = now;
        if bucket.tokens < bytes as f64 {
            drop(bucket);
            self.log_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        bucket.tokens -= bytes as f64;
        true
    }

    /// Log lines dropped so far, by either log bound.
    pub(crate) fn log_dropped(&self) -> u64 {
        self.log_dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn count_dropped_log(&self) {
        self.log_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes this policy's live instances hold now.
    pub(crate) fn memory_in_use(&self) -> usize {
        lock(&self.account).used
    }

    fn set_share(&self, share: usize) {
        let mut account = lock(&self.account);
        account.share = share;
        // Re-balance what is borrowed against the new share.
        let keep = account.used.saturating_sub(share);
        if keep < account.borrowed {
            self.budget.give_back(account.borrowed - keep);
            account.borrowed = keep;
        } else if keep > account.borrowed && self.budget.borrow(keep - account.borrowed) {
            // A smaller share: what is held past it now counts as borrowed.
            // (When the shared half cannot cover it, the instances keep what
            // they hold and their next grow is refused.)
            account.borrowed = keep;
        }
    }
}

/// The quotas of an engine, by policy name.
#[derive(Debug)]
pub(crate) struct Quotas {
    budget: Arc<MemoryBudget>,
    by_name: Mutex<HashMap<String, Arc<Quota>>>,
}

impl Quotas {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget: Arc::new(MemoryBudget::new(budget)),
            by_name: Mutex::new(HashMap::new()),
        }
    }

    /// The whole instance memory budget, in bytes.
    pub(crate) fn budget(&self) -> usize {
        self.budget.total
    }

    /// The quota of policy `name` with `concurrency` slots: the existing one
    /// when its size is unchanged (a reload), else a new one.
    pub(crate) fn get(&self, name: &str, concurrency: u32) -> Arc<Quota> {
        let mut by_name = lock(&self.by_name);
        match by_name.get(name) {
            Some(quota) if quota.concurrency == concurrency => quota.clone(),
            _ => {
                let quota = Arc::new(Quota::new(concurrency, self.budget.clone()));
                by_name.insert(name.to_owned(), quota.clone());
                quota
            }
        }
    }

    /// Makes `names` the configured policies: each is guaranteed an equal part
    /// of the reserved half; quotas of other names are forgotten (evaluations
    /// still running keep theirs alive until they end).
    pub(crate) fn apportion(&self, names: &[&str]) {
        let mut by_name = lock(&self.by_name);
        by_name.retain(|name, _| names.contains(&name.as_str()));
        let share = (self.budget.total - self.budget.shared()) / names.len().max(1);
        for quota in by_name.values() {
            quota.set_share(share);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn a_policy_past_its_share_borrows_and_cannot_take_anothers_share() {
        let quotas = Quotas::new(64 * MIB);
        let (greedy, modest) = (quotas.get("greedy", 4), quotas.get("modest", 4));
        quotas.apportion(&["greedy", "modest"]);
        // Each is guaranteed 16 MiB; 32 MiB are shared.
        assert_eq!(greedy.charge_memory(48 * MIB), Ok(()));
        assert_eq!(
            greedy.charge_memory(MIB),
            Err(MemoryRefusal::Budget {
                share: 16 * MIB,
                budget: 64 * MIB
            })
        );
        assert_eq!(modest.charge_memory(16 * MIB), Ok(()));
        assert!(
            modest.charge_memory(MIB).is_err(),
            "the shared half is gone"
        );
        greedy.release_memory(48 * MIB);
        assert_eq!(modest.charge_memory(32 * MIB), Ok(()));
        assert_eq!(modest.memory_in_use(), 48 * MIB);
        modest.release_memory(48 * MIB);
        assert_eq!(quotas.budget.borrowed.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_reload_keeps_a_quota_of_the_same_size_and_replaces_a_resized_one() {
        let quotas = Quotas::new(64 * MIB);
        let first = quotas.get("p", 4);
        assert!(Arc::ptr_eq(&first, &quotas.get("p", 4)));
        assert!(!Arc::ptr_eq(&first, &quotas.get("p", 8)));
    }

    #[test]
    fn the_log_rate_drops_a_flood_and_counts_it() {
        let quotas = Quotas::new(64 * MIB);
        let quota = quotas.get("loud", 1);
        let kept = (0..1000).filter(|_| quota.take_log(4096)).count();
        assert!(kept <= LogLimits::BURST_BYTES / 4096 + 2, "{kept}");
        assert_eq!(quota.log_dropped(), 1000 - kept as u64);
    }
}
