//! An entry's `shadow`: a candidate version of the same policy (another
//! source, other settings, or both) that sees the entry's requests on live
//! traffic and never changes an answer (`admission::shadow`).

use std::time::Duration;

use serde::Deserialize;

use super::file::{PolicyConfig, Quantity};

/// Evaluations of a candidate that may run at once unless its `shadow` says:
/// few, because a candidate is best effort and is dropped when they are busy.
pub const DEFAULT_SHADOW_CONCURRENCY: u32 = 2;

/// What a candidate changes from its entry; what it does not say is the entry's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShadowConfig {
    /// The candidate's component (same forms as an entry's `source`).
    pub source: Option<String>,
    /// The candidate's settings.
    pub settings: Option<serde_json::Value>,
    /// Deadline of one candidate evaluation; the entry's by default.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Memory cap of one candidate evaluation; the entry's by default.
    pub memory: Option<Quantity>,
    /// Candidate evaluations that may run at once (default 2); a review that
    /// finds them all busy is not shadowed, and counted as dropped.
    pub concurrency: Option<u32>,
}

/// The name a candidate runs under: in messages, metrics and its own quota.
/// `@` is not allowed in entry names, so it names no configured policy.
pub fn candidate_name(policy: &str) -> String {
    format!("{policy}@shadow")
}

impl PolicyConfig {
    /// The entry its `shadow` describes, as a policy entry of its own (named
    /// by [`candidate_name`]); `None` without a shadow.
    pub fn candidate(&self) -> Option<PolicyConfig> {
        let shadow = self.shadow.as_ref()?;
        Some(PolicyConfig {
            name: candidate_name(&self.name),
            source: shadow.source.clone().unwrap_or_else(|| self.source.clone()),
            settings: shadow
                .settings
                .clone()
                .unwrap_or_else(|| self.settings.clone()),
            timeout: shadow.timeout.or(self.timeout),
            memory: shadow.memory.or(self.memory),
            concurrency: Some(shadow.concurrency.unwrap_or(DEFAULT_SHADOW_CONCURRENCY)),
            shadow: None,
            ..self.clone()
        })
    }

    /// What is wrong with its `shadow`, if anything.
    pub(super) fn check_shadow(&self) -> Result<(), String> {
        let Some(shadow) = &self.shadow else {
            return Ok(());
        };
        if shadow.source.is_none() && shadow.settings.is_none() {
            return Err(
                "its `shadow` has neither `source` nor `settings`: it would compare \
                        the policy with itself; give the candidate's source or settings"
                    .into(),
            );
        }
        Ok(())
    }
}
