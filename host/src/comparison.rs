//! What changes for one object between two configurations: the current one
//! and a candidate (`check --compare`, `audit --compare`). Each side is the
//! findings of the whole mutate-then-validate chain, so a change is what the
//! API server would do differently: admit what it refused, refuse what it
//! admitted, or store a different object.

use serde::Serialize;
use serde_json::Value;

use crate::admission::shadow::Change;
use crate::findings::{Finding, ObjectRef, Place};

/// The chain's answer on one object, under one configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// Whether it would be admitted.
    pub allowed: bool,
    /// The policies that would refuse it, each with its message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_by: Vec<Refusal>,
    /// The operations from the object as written to the object stored, when
    /// mutating policies change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<json_patch::Patch>,
    #[serde(skip)]
    patched: Option<Value>,
}

/// One policy's refusal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    /// The policy.
    pub policy: String,
    /// What it said.
    pub message: String,
}

impl Side {
    /// The side the findings of one object make.
    pub fn of(findings: &[Finding]) -> Self {
        let denied_by: Vec<Refusal> = findings
            .iter()
            .filter(|f| !f.allowed)
            .map(|f| Refusal {
                policy: f.policy.clone(),
                message: f.message.clone().unwrap_or_default(),
            })
            .collect();
        let allowed = denied_by.is_empty();
        let mutated = findings.iter().find(|f| f.patched.is_some());
        Self {
            allowed,
            denied_by,
            patch: mutated.and_then(|f| f.patch.clone()).filter(|_| allowed),
            patched: mutated.and_then(|f| f.patched.clone()).filter(|_| allowed),
        }
    }
}

/// An object whose answer changes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    /// The object.
    pub object: ObjectRef,
    /// Where it was read, for manifests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Place>,
    /// `newly-denied`, `newly-allowed` or `patch`.
    pub change: &'static str,
    /// Under the current configuration.
    pub current: Side,
    /// Under the candidate.
    pub candidate: Side,
}

/// How many objects changed, and how.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSummary {
    /// Objects judged under both.
    pub objects: usize,
    /// Admitted now, refused under the candidate.
    pub newly_denied: usize,
    /// Refused now, admitted under the candidate.
    pub newly_allowed: usize,
    /// Admitted under both, stored differently.
    pub patch: usize,
    /// Judged the same.
    pub unchanged: usize,
}

impl ChangeSummary {
    /// Counts one object, and returns its change when it has one.
    pub fn add(
        &mut self,
        object: &ObjectRef,
        at: Option<&Place>,
        current: &[Finding],
        candidate: &[Finding],
    ) -> Option<ObjectChange> {
        self.objects += 1;
        let (current, candidate) = (Side::of(current), Side::of(candidate));
        let change = match (current.allowed, candidate.allowed) {
            (true, false) => Change::NewlyDenied,
            (false, true) => Change::NewlyAllowed,
            (true, true) if current.patched != candidate.patched => Change::Patch,
            _ => {
                self.unchanged += 1;
                return None;
            }
        };
        match change {
            Change::NewlyDenied => self.newly_denied += 1,
            Change::NewlyAllowed => self.newly_allowed += 1,
            Change::Patch | Change::Failure => self.patch += 1,
        }
        Some(ObjectChange {
            object: object.clone(),
            at: at.cloned(),
            change: change.as_str(),
            current,
            candidate,
        })
    }

    /// Whether anything changes.
    pub fn changed(&self) -> bool {
        self.newly_denied + self.newly_allowed + self.patch > 0
    }
}
