//! What can go wrong loading or running a policy.
//!
//! A policy's *denial* is not an error. These are failures of the policy
//! itself, which the admission layer answers according to the policy's failure
//! mode.

use std::path::PathBuf;
use std::time::Duration;

/// A boxed cause from wasmtime or the file system.
pub(super) type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A policy failed to load or to evaluate.
///
/// `Display` is the sentence about the policy without its name ("did not
/// answer within its 100ms deadline"): the caller, which knows how the name is
/// shown (a response's `name: `, a log field, `policy `x`: `), adds it once.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The component file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// Policy name.
        policy: String,
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component")]
    Compile {
        /// Policy name.
        policy: String,
        /// What wasmtime reported.
        #[source]
        source: Cause,
    },
    /// The component does not implement the `bouncer:policy` world.
    #[error("does not implement the bouncer:policy world (wit/policy.wit)")]
    Contract {
        /// Policy name.
        policy: String,
        /// What wasmtime reported.
        #[source]
        source: Cause,
    },
    /// `validate-settings` refused the settings.
    #[error("rejected its settings: {message}")]
    Settings {
        /// Policy name.
        policy: String,
        /// The policy's own message.
        message: String,
    },
    /// The evaluation ran past its deadline.
    #[error("did not answer within its {}ms deadline", (timeout.as_micros() + 500) / 1000)]
    Deadline {
        /// Policy name.
        policy: String,
        /// The deadline it missed.
        timeout: Duration,
    },
    /// The evaluation tried to grow memory past its cap.
    #[error("tried to use more than its {} MiB memory limit", limit / (1024 * 1024))]
    Memory {
        /// Policy name.
        policy: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The instance memory budget of the server had no room for the evaluation
    /// to grow, and the policy had used its guaranteed share of it.
    #[error(
        "needed more memory than the server's instance memory budget could give it \
         (it is guaranteed {} MiB of {} MiB; the rest was in use by other evaluations)",
        share / (1024 * 1024), budget / (1024 * 1024)
    )]
    MemoryBudget {
        /// Policy name.
        policy: String,
        /// Its guaranteed share, in bytes.
        share: usize,
        /// The whole budget, in bytes.
        budget: usize,
    },
    /// Every evaluation slot of the policy stayed busy until the deadline.
    #[error(
        "was not evaluated: all {slots} of its evaluation slots were busy for {}ms",
        waited.as_millis()
    )]
    Busy {
        /// Policy name.
        policy: String,
        /// Its concurrency quota.
        slots: u32,
        /// How long the evaluation waited for a slot.
        waited: Duration,
    },
    /// The configured policy could not be loaded, so it cannot judge.
    #[error("is not loaded: {reason}")]
    NotLoaded {
        /// Policy name.
        policy: String,
        /// Why loading it failed.
        reason: String,
    },
    /// The guest stopped with an error of its own (a Rust panic, an uncaught
    /// exception): its last error log line, which its author wrote for people.
    #[error("stopped with an error: {message}")]
    Panic {
        /// Policy name.
        policy: String,
        /// The guest's last error log line.
        message: String,
    },
    /// The guest trapped (an abort, an illegal operation) without saying why.
    #[error("crashed: {reason}")]
    Trap {
        /// Policy name.
        policy: String,
        /// The guest's last error log line (its panic message) or the trap.
        reason: String,
    },
    /// The verdict could not be used (for example a patch that is not JSON).
    #[error("returned an unusable verdict: {reason}")]
    BadVerdict {
        /// Policy name.
        policy: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The engine could not be set up or could not host another instance.
    #[error("policy engine: {message}")]
    Engine {
        /// What failed.
        message: String,
        /// What wasmtime reported.
        #[source]
        source: Cause,
    },
}

/// A coarse class of [`PolicyError`], stable for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Could not read, compile or link the component, or settings refused.
    Load,
    /// Ran past the deadline.
    Deadline,
    /// Ran out of memory (its own cap or its share of the budget).
    Memory,
    /// Its evaluation slots were all busy.
    Busy,
    /// Trapped.
    Trap,
    /// Returned an unusable verdict.
    BadVerdict,
    /// Host-side engine failure.
    Engine,
}

impl ErrorKind {
    /// Every kind, for metrics that start each series at zero.
    pub const ALL: [Self; 7] = [
        Self::Load,
        Self::Deadline,
        Self::Memory,
        Self::Busy,
        Self::Trap,
        Self::BadVerdict,
        Self::Engine,
    ];

    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::Busy => "busy",
            Self::Trap => "trap",
            Self::BadVerdict => "bad_verdict",
            Self::Engine => "engine",
        }
    }
}

impl PolicyError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Read { .. }
            | Self::Compile { .. }
            | Self::Contract { .. }
            | Self::Settings { .. }
            | Self::NotLoaded { .. } => ErrorKind::Load,
            Self::Deadline { .. } => ErrorKind::Deadline,
            Self::Memory { .. } | Self::MemoryBudget { .. } => ErrorKind::Memory,
            Self::Busy { .. } => ErrorKind::Busy,
            Self::Trap { .. } | Self::Panic { .. } => ErrorKind::Trap,
            Self::BadVerdict { .. } => ErrorKind::BadVerdict,
            Self::Engine { .. } => ErrorKind::Engine,
        }
    }

    /// The name of the policy concerned, when there is one.
    pub fn policy(&self) -> Option<&str> {
        match self {
            Self::Read { policy, .. }
            | Self::Compile { policy, .. }
            | Self::Contract { policy, .. }
            | Self::Settings { policy, .. }
            | Self::Deadline { policy, .. }
            | Self::Memory { policy, .. }
            | Self::MemoryBudget { policy, .. }
            | Self::Busy { policy, .. }
            | Self::NotLoaded { policy, .. }
            | Self::Trap { policy, .. }
            | Self::Panic { policy, .. }
            | Self::BadVerdict { policy, .. } => Some(policy),
            Self::Engine { .. } => None,
        }
    }
}

impl PolicyError {
    /// What the user (kubectl, the API server's log) is told: the sentence
    /// without internals (a trap's backtrace, wasmtime's words), which go to
    /// bouncer's log. Like `Display`, it leaves the policy's name to the caller.
    pub fn for_user(&self) -> String {
        match self {
            Self::MemoryBudget { share, budget, .. } => format!(
                "needed more memory than the server's instance memory budget could give it \
                 (it is guaranteed {} MiB of {} MiB)",
                share / (1024 * 1024),
                budget / (1024 * 1024)
            ),
            Self::Trap { .. } => {
                "crashed while judging this request; the details are in bouncer's log".into()
            }
            Self::Read { .. } | Self::Compile { .. } | Self::Contract { .. } => {
                "could not be loaded; the details are in bouncer's log".into()
            }
            Self::Engine { .. } => {
                "could not be run: the policy engine failed; the details are in bouncer's log"
                    .into()
            }
            _ => self.to_string(),
        }
    }
}
