//! Per-evaluation resource limits and the bounds on what a policy may hand
//! back. The limiter that enforces the memory cap is in `limiter.rs`.

use std::time::Duration;

/// How much time, memory and concurrency a policy may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of one call, enforced by epoch interruption. In the
    /// server it runs from when the evaluation was asked for, so time spent
    /// waiting for a slot counts.
    pub timeout: Duration,
    /// Cap on one instance's linear memory, in bytes.
    pub memory: usize,
    /// How many evaluations of this policy may run at once in the server; the
    /// rest wait for a slot until their deadline.
    pub concurrency: u32,
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
    /// The most evaluation slots one policy may be given.
    pub const MAX_CONCURRENCY: u32 = 64;

    /// The default number of slots: twice the CPUs (at least 4). More than the
    /// CPUs cannot run faster, and a policy that loops in every slot still
    /// leaves the server's other threads most of the machine.
    pub fn default_concurrency() -> u32 {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        u32::try_from(cpus * 2).unwrap_or(u32::MAX).clamp(4, 16)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            memory: Self::DEFAULT_MEMORY,
            concurrency: Self::default_concurrency(),
        }
    }
}

/// Bounds on what one verdict may hold. The host's work on a verdict (copying
/// it out, parsing a patch, building the response) is proportional to these, so
/// a policy cannot make the host do unbounded work on its behalf; a verdict over
/// one is the policy's failure, answered by its failure mode.
pub struct OutputLimits;

impl OutputLimits {
    /// Longest denial message, in bytes (kubectl prints it whole).
    pub const MESSAGE_BYTES: usize = 4 * 1024;
    /// Most warnings in one verdict (kubectl prints one line each).
    pub const WARNINGS: usize = 16;
    /// Longest warning, in bytes (the API server itself truncates at 256 characters).
    pub const WARNING_BYTES: usize = 1024;
    /// Longest mutation text (patched object or JSON Patch), in bytes: the API
    /// server's own request size limit.
    pub const MUTATION_BYTES: usize = 3 * 1024 * 1024;
    /// Most operations in one JSON Patch.
    pub const PATCH_OPERATIONS: usize = 1000;
}

/// Bounds on a policy's log: it cannot flood the host's log however it loops.
pub struct LogLimits;

impl LogLimits {
    /// Lines one evaluation may write; later ones are dropped.
    pub const LINES: u32 = 64;
    /// Bytes (messages and fields) one evaluation may write; later lines are dropped.
    pub const EVALUATION_BYTES: usize = 16 * 1024;
    /// Longest message kept, in bytes; longer ones are cut.
    pub const MESSAGE_BYTES: usize = 4 * 1024;
    /// Fields kept per line.
    pub const FIELDS: usize = 16;
    /// Longest field key and value kept, in bytes; longer ones are cut.
    pub const FIELD_BYTES: usize = 512;
    /// Bytes per second one policy may log across all its evaluations, with a
    /// burst of [`Self::BURST_BYTES`]; beyond it lines are dropped and counted.
    pub const BYTES_PER_SECOND: usize = 64 * 1024;
    /// The burst of the per-policy log rate.
    pub const BURST_BYTES: usize = 256 * 1024;
}

/// Why a memory grow was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryRefusal {
    /// Past the instance's own cap.
    Cap,
    /// The server's instance memory budget had no room for it.
    Budget {
        /// The policy's guaranteed share of the budget, in bytes.
        share: usize,
        /// The whole budget, in bytes.
        budget: usize,
    },
}
