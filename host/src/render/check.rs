//! `bouncer check`'s report as text: one line per finding, grouped by file.

use anstyle::Style;

use super::{DENY, ERROR, OK, PATCH, SKIP, WARN, line, object_label};
use crate::admission::Verdict;
use crate::findings::Finding;
use crate::offline::CheckReport;

/// One line per finding, `file:line kind/namespace/name policy: message`,
/// grouped by file (a blank line between files), then the summary.
pub fn text(
    out: &mut impl std::io::Write,
    report: &CheckReport,
    policies: usize,
) -> std::io::Result<()> {
    let mut lines: Vec<(&str, usize, String)> = Vec::new();
    for finding in &report.results {
        // `check` reads objects from manifests: each finding has a place.
        let Some(place) = &finding.at else { continue };
        let at = format!("{}:{}", place.file, place.line);
        let mut object = object_label(&finding.object);
        if let Some(item) = place.item {
            object = format!("{object} (items[{item}])");
        }
        let mut push = |style: Style, label: &str, text: String| {
            lines.push((
                &place.file,
                place.line,
                line(style, label, Some(&at), &object, &finding.policy, &text),
            ));
        };
        if !finding.allowed {
            push(DENY, "DENY", finding.message.clone().unwrap_or_default());
        }
        if finding.result == Verdict::Skip {
            push(SKIP, "SKIP", finding.message.clone().unwrap_or_default());
        }
        for warning in &finding.warnings {
            push(WARN, "WARN", warning.clone());
        }
        if finding.allowed && finding.patched.is_some() {
            push(PATCH, "PATCH", describe_patch(finding));
        }
    }
    for error in &report.errors {
        let at = if error.line == 0 {
            error.file.clone()
        } else {
            format!("{}:{}", error.file, error.line)
        };
        lines.push((
            &error.file,
            error.line,
            format!("{ERROR}ERROR{ERROR:#} {at} {}", error.message),
        ));
    }
    for duplicate in &report.duplicates {
        lines.push((
            &duplicate.file,
            duplicate.line,
            format!(
                "{WARN}WARN{WARN:#}  {} {} is defined twice: here and at {}; policies that look it up \
                 see only the one at {}",
                duplicate.ignored, duplicate.object, duplicate.used, duplicate.used
            ),
        ));
    }
    // Stable: findings keep policy order within an object.
    lines.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut previous: Option<&str> = None;
    for (file, _, line) in &lines {
        if previous.is_some_and(|p| p != *file) {
            writeln!(out)?;
        }
        previous = Some(file);
        writeln!(out, "{line}")?;
    }
    if !lines.is_empty() {
        writeln!(out)?;
    }
    let s = &report.summary;
    let clean = s.objects - s.denied - s.warned;
    let verdict = if s.denied > 0 || s.errors > 0 {
        DENY
    } else {
        OK
    };
    writeln!(
        out,
        "{verdict}{} objects in {} files checked against {} {}{verdict:#}: {} denied, {} with warnings, {} patched, {} clean{}",
        s.objects,
        s.files,
        policies,
        if policies == 1 { "policy" } else { "policies" },
        s.denied,
        s.warned,
        s.patched,
        clean,
        match s.errors {
            0 => String::new(),
            1 => "; 1 document could not be read".into(),
            n => format!("; {n} documents could not be read"),
        }
    )
}

/// The mutation in words: the JSON Patch operations from the manifest to the result.
fn describe_patch(finding: &Finding) -> String {
    let Some(patch) = &finding.patch else {
        return "changes the object".into();
    };
    format!("changes the object: {}", super::patch_ops(patch))
}
