//! The configuration's `exceptions` block: where `PolicyException` objects
//! are honoured, how long one may last, and what a denial says about asking
//! for one. Without the block no exception is honoured.

use std::time::Duration;

use serde::Deserialize;

/// The longest an exception may last unless the configuration says.
pub const DEFAULT_MAX_EXCEPTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Where exceptions are honoured, and their bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptionsConfig {
    /// Namespaces whose `PolicyException` objects count. Only the platform
    /// team should be able to write there: an exception elsewhere is refused
    /// by the webhook and ignored if it exists, so a team cannot exempt itself.
    pub namespaces: Vec<String>,
    /// The longest `expires` may be from the time the exception is written
    /// (default `90d`).
    #[serde(default = "default_max", with = "humantime_serde")]
    pub max_duration: Duration,
    /// Added to every enforced denial: how to ask for an exception (a
    /// channel, a form, a runbook link).
    pub hint: Option<String>,
}

fn default_max() -> Duration {
    DEFAULT_MAX_EXCEPTION
}

impl ExceptionsConfig {
    /// What is wrong with the block, if anything.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.namespaces.is_empty() || self.namespaces.iter().any(String::is_empty) {
            return Err("`exceptions.namespaces` must name at least one namespace \
                        (where the platform team writes PolicyExceptions)"
                .into());
        }
        if self.max_duration.is_zero() {
            return Err("`exceptions.maxDuration` must be more than zero".into());
        }
        Ok(())
    }

    /// Whether exceptions written in `namespace` are honoured.
    pub fn honours(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
    }
}
