//! How `check` and `audit` print a finding: one line a person can paste into a
//! review, `LABEL [file:line] Kind/namespace/name policy: message`.

use anstyle::{AnsiColor, Style};

/// Refused.
pub(super) const DENY: Style = AnsiColor::Red.on_default().bold();
/// Allowed with something to say.
pub(super) const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// Changed by a mutating policy.
pub(super) const PATCH: Style = AnsiColor::Cyan.on_default().bold();
/// Could not be judged.
pub(super) const ERROR: Style = AnsiColor::Magenta.on_default().bold();
/// Nothing found.
pub(super) const OK: Style = AnsiColor::Green.on_default().bold();
/// Nothing to judge.
pub(super) const SKIP: Style = AnsiColor::Blue.on_default().bold();

/// One finding's line; `at` is where the object was read from, when it was a file.
pub(super) fn line(
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

/// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
pub(super) fn object_label(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let name = if name.is_empty() { "<unnamed>" } else { name };
    match namespace {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
