//! The store's memory limiter: the one place a guest's memory grows are
//! allowed or refused, against its own cap and its policy's share of the
//! instance memory budget (`quota.rs`).

use std::sync::Arc;

use super::limits::MemoryRefusal;
use super::quota::Quota;

/// Enforces the memory cap and the policy's share of the instance memory
/// budget, and remembers which refused, so the trap is reported as
/// [`PolicyError::Memory`](super::PolicyError::Memory) rather than as an
/// anonymous trap.
pub(crate) struct MemoryLimiter {
    limit: usize,
    quota: Option<Arc<Quota>>,
    /// Bytes of linear memory this instance holds, charged to the quota.
    charged: usize,
    /// The last grow permitted, undone when wasmtime then fails it.
    last_grow: usize,
    pub(crate) refused: Option<MemoryRefusal>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize, quota: Option<Arc<Quota>>) -> Self {
        Self {
            limit,
            quota,
            charged: 0,
            last_grow: 0,
            refused: None,
        }
    }
}

impl MemoryLimiter {
    /// Bytes the instance may still take before its limit.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.charged)
    }

    /// Charges `bytes` the host holds for this evaluation (lookup results on
    /// their way in) as if the instance had grown by them: to its limit and
    /// to the policy's share of the instance memory budget, until the
    /// evaluation ends.
    ///
    /// # Errors
    /// The limit or the budget would be passed; nothing is charged.
    pub(crate) fn charge_host(&mut self, bytes: usize) -> Result<(), MemoryRefusal> {
        if self.charged.saturating_add(bytes) > self.limit {
            return Err(MemoryRefusal::Cap);
        }
        if let Some(quota) = &self.quota {
            quota.charge_memory(bytes)?;
        }
        self.charged += bytes;
        Ok(())
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        if let Some(quota) = &self.quota {
            quota.release_memory(self.charged);
        }
    }
}

/// Policies are single components with one memory and one table; anything
/// beyond a handful is a malicious or broken component.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        // Trapping (rather than failing the grow) stops the guest at once:
        // a guest's out-of-memory path may otherwise loop or print.
        if self.charged.saturating_add(grow) > self.limit {
            self.refused = Some(MemoryRefusal::Cap);
            wasmtime::bail!("memory limit of {} bytes exceeded", self.limit);
        }
        if let Some(quota) = &self.quota
            && let Err(refusal) = quota.charge_memory(grow)
        {
            self.refused = Some(refusal);
            wasmtime::bail!("instance memory budget exhausted");
        }
        self.charged += grow;
        self.last_grow = grow;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        let grow = std::mem::take(&mut self.last_grow);
        self.charged -= grow;
        if let Some(quota) = &self.quota {
            quota.release_memory(grow);
        }
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
