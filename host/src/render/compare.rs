//! What `--compare` found, as text: one block per object whose answer
//! changes (what happens now, what would happen under the candidate), then
//! the counts. `check --compare` and `audit --compare` print the same way.

use super::{DENY, OK, PATCH, WARN, object_label};
use crate::comparison::{ChangeSummary, ObjectChange, Side};

/// The changes and the summary line; `judged` says what was compared
/// (`"objects in 3 files"`, `"objects in the cluster"`).
pub fn text(
    out: &mut impl std::io::Write,
    changes: &[ObjectChange],
    summary: &ChangeSummary,
    judged: &str,
) -> std::io::Result<()> {
    for change in changes {
        let (style, label) = match change.change {
            "newly-denied" => (DENY, "NEWLY DENIED"),
            "newly-allowed" => (WARN, "NEWLY ALLOWED"),
            _ => (PATCH, "PATCH CHANGES"),
        };
        let at = change
            .at
            .as_ref()
            .map(|p| format!("{}:{} ", p.file, p.line))
            .unwrap_or_default();
        writeln!(
            out,
            "{style}{label}{style:#} {at}{}",
            object_label(&change.object)
        )?;
        writeln!(out, "    now:       {}", side(&change.current))?;
        writeln!(out, "    candidate: {}", side(&change.candidate))?;
    }
    if !changes.is_empty() {
        writeln!(out)?;
    }
    let style = if summary.newly_denied > 0 { DENY } else { OK };
    writeln!(
        out,
        "{style}{} {judged} compared{style:#}: {} newly denied, {} newly allowed, {} with a different patch, {} unchanged",
        summary.objects,
        summary.newly_denied,
        summary.newly_allowed,
        summary.patch,
        summary.unchanged
    )
}

/// One side in words: who refuses and why, or what is stored.
fn side(side: &Side) -> String {
    if !side.allowed {
        return side
            .denied_by
            .iter()
            .map(|r| format!("denied by {}: {}", r.policy, r.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let Some(patch) = side.patch.as_ref().filter(|p| !p.0.is_empty()) else {
        return "admitted as written".into();
    };
    format!("admitted, changed: {}", super::patch_ops(patch))
}
