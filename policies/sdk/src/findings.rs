//! Rules that list what is wrong with an object, and the one way bouncer's
//! built-ins turn that list into a verdict.
//!
//! A rule implements "what is wrong with this object?" once; [`judge`] applies
//! it to the request: nothing to judge on DELETE, CONNECT or a sub-resource,
//! and on UPDATE only problems the change *introduces* deny. Problems the old
//! object already had become warnings, so an object admitted before a rule
//! existed can still be scaled, relabelled or cleaned up, while every warning
//! reminds its owner to fix it.

use serde::de::DeserializeOwned;

use crate::{Operation, Request, Result, Verdict};

/// The first `shown` of `items` joined by `, `, then how many more there are:
/// a message that names everything it could grows with the cluster, and past
/// bouncer's 4 KiB the verdict is refused as unusable.
pub fn a_few(items: &[String], shown: usize) -> String {
    let named = items[..items.len().min(shown)].join(", ");
    match items.len().saturating_sub(shown) {
        0 => named,
        more => format!("{named} and {more} more"),
    }
}

/// What a rule found in one object: reasons to deny and things to warn about.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Each a full sentence naming the object, the field, the value found and the fix.
    pub denials: Vec<String>,
    /// Allowed, but worth telling the user.
    pub warnings: Vec<String>,
}

impl Findings {
    /// No findings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a reason to deny.
    pub fn deny(&mut self, message: impl Into<String>) {
        self.denials.push(message.into());
    }

    /// Records a warning.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// The verdict for these findings: denied with every reason joined by `; `,
    /// or allowed; warnings either way.
    pub fn into_verdict(self) -> Verdict {
        let mut verdict = if self.denials.is_empty() {
            Verdict::allow()
        } else {
            Verdict::deny(self.denials.join("; "))
        };
        verdict.warnings = self.warnings;
        verdict
    }
}

/// Judges `request` by running `check` on its object decoded as `T`.
///
/// DELETE, CONNECT and sub-resources (`status`, `scale`: written by
/// controllers, and never the fields a house rule is about) are allowed
/// without looking. On UPDATE, a denial that `check` also gives for the old
/// object is turned into a warning starting with "already present: ".
pub fn judge<T: DeserializeOwned>(
    request: &Request,
    check: impl Fn(&T) -> Findings,
) -> Result<Verdict> {
    if matches!(request.operation, Operation::Delete | Operation::Connect)
        || request.sub_resource.is_some()
    {
        return Ok(Verdict::allow());
    }
    let Some(object) = request.object::<T>()? else {
        return Ok(Verdict::allow());
    };
    let mut findings = check(&object);
    if request.operation == Operation::Update
        && !findings.denials.is_empty()
        && let Some(old) = request.old_object::<T>()?
    {
        let before = check(&old);
        let (kept, new): (Vec<_>, Vec<_>) = findings
            .denials
            .into_iter()
            .partition(|d| before.denials.contains(d));
        findings.denials = new;
        findings
            .warnings
            .extend(kept.into_iter().map(|d| format!("already present: {d}")));
    }
    Ok(findings.into_verdict())
}
