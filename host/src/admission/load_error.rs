//! Why a configuration entry could not be loaded, typed, so the server can
//! tell a reload's new failures from old ones and commands can say which
//! policy failed once.

use crate::policy::PolicyError;
use crate::registry::RegistryError;

/// Why one configuration entry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Its `source` is not a built-in, a file or a registry reference.
    #[error("{0}")]
    Source(String),
    /// Its registry could not give the component (or its signature).
    #[error("{0}")]
    Registry(RegistryError),
    /// The thread that pulls it could not run.
    #[error("{0}")]
    Pull(String),
    /// The policies' concurrency is more than the engine's instance slots.
    #[error(
        "the policies' concurrency adds up to {total}, more than the {available} instance slots \
         the engine can give them (--max-instances minus {reserved}); lower `concurrency` or \
         raise --max-instances"
    )]
    Slots {
        /// The concurrency of the entries so far, this one included.
        total: u32,
        /// Slots the policies may have.
        available: u32,
        /// Slots kept back.
        reserved: u32,
    },
    /// The component did not load (read, compile, contract, settings).
    #[error(transparent)]
    Policy(PolicyError),
    /// Its `match` rules, filled from the policy's metadata, do not build.
    #[error("{0}")]
    Match(String),
}

/// One configuration entry that could not be loaded, and why.
#[derive(Debug)]
pub struct LoadFailure {
    /// The entry's name.
    pub policy: String,
    /// What went wrong.
    pub error: EntryError,
}

impl LoadFailure {
    /// Why, without the policy's name: the error and its causes.
    pub fn reason(&self) -> String {
        let mut text = self.error.to_string();
        let mut cause = std::error::Error::source(&self.error);
        while let Some(next) = cause {
            text.push_str(": ");
            text.push_str(&next.to_string());
            cause = next.source();
        }
        text
    }
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy `{}`: {}", self.policy, self.reason())
    }
}

impl std::error::Error for LoadFailure {}

/// Loading a configuration failed for one or more policies.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} of the configured policies cannot be loaded: {}",
    failures.len(),
    failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
)]
pub struct LoadError {
    /// Every failure, in configuration order.
    pub failures: Vec<LoadFailure>,
}
