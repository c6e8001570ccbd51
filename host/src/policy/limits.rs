//! Per-evaluation resource limits, and the limiter that enforces them.

use std::time::Duration;

/// How much time and memory one evaluation of a policy may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of one call, enforced by epoch interruption.
    pub timeout: Duration,
    /// Cap on the instance's linear memory, in bytes.
    pub memory: usize,
}

impl Limits {
    /// The default deadline: far above a healthy policy (tens of microseconds),
    /// far below the API server's webhook timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
    /// The default memory cap.
    pub const DEFAULT_MEMORY: usize = 64 * 1024 * 1024;
    /// The largest memory cap a policy may be given; the pooling allocator
    /// reserves slots of this size.
    pub const MAX_MEMORY: usize = 1024 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            memory: Self::DEFAULT_MEMORY,
        }
    }
}

/// Enforces the memory cap and remembers that it did, so a trap caused by the
/// cap is reported as [`PolicyError::Memory`](super::PolicyError::Memory)
/// rather than as an anonymous trap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    pub(crate) exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            exceeded: false,
        }
    }
}

/// Policies are single components with one memory and one table; anything
/// beyond a handful is a malicious or broken component.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            // Trapping (rather than failing the grow) stops the guest at once:
            // a guest's out-of-memory path may otherwise loop or print.
            wasmtime::bail!("memory limit of {} bytes exceeded", self.limit);
        }
        Ok(true)
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
