//! How `bouncer test` shows results: one line per case, the details of each
//! failure under it (with a coloured diff of objects), and the summary line.
//!
//! Styles are always written; `anstream` strips them when stdout is not a
//! terminal, or when `NO_COLOR` or `--color never` says so.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use similar::{ChangeTag, TextDiff};

use super::expect::Failure;
use super::run::{CaseOutcome, CaseResult, case_id};
use super::suite::Suite;

const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();
const ADDED: Style = AnsiColor::Green.on_default();
const REMOVED: Style = AnsiColor::Red.on_default();

/// Writes one case's line, and its failures when it failed.
pub fn write_case(out: &mut impl Write, suites: &[Suite], result: &CaseResult) -> io::Result<()> {
    let suite = &suites[result.suite];
    let case = &suite.cases[result.case];
    let (label, style) = if result.passed() {
        ("PASS", PASS)
    } else {
        ("FAIL", FAIL)
    };
    writeln!(
        out,
        "{style}{label}{style:#} {} {DIM}({}){DIM:#}",
        case_id(suite, case),
        millis(result.elapsed)
    )?;
    match &result.outcome {
        CaseOutcome::Passed => Ok(()),
        CaseOutcome::Error(error) => {
            writeln!(out, "     at {}:{}", suite.path.display(), case.line)?;
            writeln!(out, "     error: {error}")
        }
        CaseOutcome::Failed(failures) => {
            writeln!(out, "     at {}:{}", suite.path.display(), case.line)?;
            failures.iter().try_for_each(|f| write_failure(out, f))
        }
    }
}

fn write_failure(out: &mut impl Write, failure: &Failure) -> io::Result<()> {
    if failure.document {
        writeln!(
            out,
            "     {}: differs ({REMOVED}-expected{REMOVED:#} {ADDED}+actual{ADDED:#})",
            failure.what
        )?;
        return write_diff(out, &failure.expected, &failure.actual);
    }
    writeln!(out, "     {}:", failure.what)?;
    writeln!(out, "       expected: {}", indent_rest(&failure.expected))?;
    writeln!(out, "       actual:   {}", indent_rest(&failure.actual))
}

/// A unified diff of two documents, three lines of context per hunk.
fn write_diff(out: &mut impl Write, expected: &str, actual: &str) -> io::Result<()> {
    let diff = TextDiff::from_lines(expected, actual);
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        writeln!(out, "       {DIM}{}{DIM:#}", hunk.header())?;
        for change in hunk.iter_changes() {
            let (sign, style) = match change.tag() {
                ChangeTag::Delete => ('-', REMOVED),
                ChangeTag::Insert => ('+', ADDED),
                ChangeTag::Equal => (' ', Style::new()),
            };
            let line = change.value();
            writeln!(
                out,
                "       {style}{sign}{}{style:#}",
                line.trim_end_matches('\n')
            )?;
        }
    }
    Ok(())
}

fn indent_rest(text: &str) -> String {
    text.trim_end().replace('\n', "\n                 ")
}

fn millis(elapsed: std::time::Duration) -> String {
    format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0)
}

/// The closing line: `N passed, N failed`.
pub fn summary(results: &[CaseResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}
