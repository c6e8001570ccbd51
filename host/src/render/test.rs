//! How `bouncer test` shows results: one line per case, the details of each
//! failure under it (with a coloured diff of objects), and the summary line;
//! and JUnit XML for CI systems (one `<testsuite>` per suite file, one
//! `<testcase>` per case run, failures with what was expected and what came
//! back).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use similar::{ChangeTag, TextDiff};

use crate::offline::testing::{CaseOutcome, CaseResult, Failure, Suite, case_id};

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

/// Builds the report for `results` of `suites`.
pub fn junit(suites: &[Suite], results: &[CaseResult]) -> quick_junit::Report {
    let mut report = quick_junit::Report::new("bouncer test");
    for (index, suite) in suites.iter().enumerate() {
        let mut junit_suite = TestSuite::new(suite.name.as_str());
        for result in results.iter().filter(|r| r.suite == index) {
            let case = &suite.cases[result.case];
            let status = match &result.outcome {
                CaseOutcome::Passed => TestCaseStatus::success(),
                CaseOutcome::Failed(failures) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let summary = failures
                        .iter()
                        .map(|f| f.what.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    status.set_message(format!("unmet: {summary}"));
                    let details = failures
                        .iter()
                        .map(|f| {
                            format!(
                                "{}:\n  expected: {}\n  actual: {}",
                                f.what, f.expected, f.actual
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    status.set_description(format!(
                        "at {}:{}\n{details}",
                        suite.path.display(),
                        case.line
                    ));
                    status
                }
                CaseOutcome::Error(error) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                    status.set_message(error.as_str());
                    status
                }
            };
            let mut junit_case = TestCase::new(case.name.as_str(), status);
            junit_case.set_classname(suite.name.as_str());
            junit_case.set_time(result.elapsed);
            junit_suite.add_test_case(junit_case);
        }
        report.add_test_suite(junit_suite);
    }
    report
}
