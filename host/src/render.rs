//! What people and tools read of a run: `check`'s, `audit`'s and `test`'s
//! reports as text, JSON and JUnit, in one place, so a finding looks the same
//! whichever command found it: `LABEL [file:line] Kind/namespace/name policy:
//! message`.
//!
//! It writes to the writer it is given and never prints on its own; styles
//! are always written, and `anstream` strips them when the output is not a
//! terminal, or when `NO_COLOR` or `--color never` says so.

pub mod audit;
pub mod check;
pub mod compare;
pub mod test;

use anstyle::{AnsiColor, Style};

use crate::findings::ObjectRef;

/// Refused.
pub(crate) const DENY: Style = AnsiColor::Red.on_default().bold();
/// Allowed with something to say.
pub(crate) const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// Changed by a mutating policy.
pub(crate) const PATCH: Style = AnsiColor::Cyan.on_default().bold();
/// Could not be judged.
pub(crate) const ERROR: Style = AnsiColor::Magenta.on_default().bold();
/// Nothing found.
pub(crate) const OK: Style = AnsiColor::Green.on_default().bold();
/// Nothing to judge.
pub(crate) const SKIP: Style = AnsiColor::Blue.on_default().bold();

/// One finding's line; `at` is where the object was read from, when it was a file.
pub(crate) fn line(
    style: Style,
    label: &str,
    at: Option<&str>,
    object: &str,
    policy: &str,
    text: &str,
) -> String {
    let at = at.map(|a| format!("{a} ")).unwrap_or_default();
    format!("{style}{label:<5}{style:#} {at}{object} {policy}: {text}")
}

/// JSON Patch operations in words: `add /a = 1, set /b = 2, remove /c`.
pub(crate) fn patch_ops(patch: &json_patch::Patch) -> String {
    patch
        .0
        .iter()
        .map(|op| match op {
            json_patch::PatchOperation::Add(op) => format!("add {} = {}", op.path, op.value),
            json_patch::PatchOperation::Replace(op) => format!("set {} = {}", op.path, op.value),
            json_patch::PatchOperation::Remove(op) => format!("remove {}", op.path),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
pub(crate) fn object_label(object: &ObjectRef) -> String {
    let name = if object.name.is_empty() {
        "<unnamed>"
    } else {
        &object.name
    };
    match &object.namespace {
        Some(namespace) => format!("{}/{namespace}/{name}", object.kind),
        None => format!("{}/{name}", object.kind),
    }
}

/// A report as JSON for tools: pretty, one document.
///
/// # Errors
/// The report cannot be written as JSON (it always can: reports hold only
/// JSON-compatible data).
pub fn json(report: &impl serde::Serialize) -> serde_json::Result<String> {
    serde_json::to_string_pretty(report)
}
