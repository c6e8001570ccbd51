//! `bouncer audit`'s report: text (one line per finding, then what could not
//! be audited and the summary), the metrics line, and JUnit.

use super::{DENY, ERROR, OK, SKIP, WARN, line, object_label};
use crate::admission::Verdict;
use crate::audit::{AuditReport, Level};

/// One line per finding, `LABEL Kind/namespace/name policy: message`, then problems and the summary.
pub fn text(
    out: &mut impl std::io::Write,
    report: &AuditReport,
    policies: usize,
) -> std::io::Result<()> {
    for finding in &report.results {
        let object = object_label(&finding.object);
        let policy = &finding.policy;
        let message = finding.message.as_deref().unwrap_or_default();
        match finding.result {
            Verdict::Fail => writeln!(
                out,
                "{}",
                line(DENY, "DENY", None, &object, policy, message)
            )?,
            Verdict::Error => writeln!(
                out,
                "{}",
                line(ERROR, "ERROR", None, &object, policy, message)
            )?,
            Verdict::Warn if !message.is_empty() => {
                writeln!(
                    out,
                    "{}",
                    line(WARN, "WARN", None, &object, policy, message)
                )?;
            }
            Verdict::Skip => writeln!(
                out,
                "{}",
                line(SKIP, "SKIP", None, &object, policy, message)
            )?,
            Verdict::Warn | Verdict::Pass => {}
        }
        for warning in &finding.warnings {
            writeln!(
                out,
                "{}",
                line(WARN, "WARN", None, &object, policy, warning)
            )?;
        }
    }
    for problem in &report.errors {
        let (style, label) = match problem.level {
            Level::Skip => (SKIP, "SKIP"),
            Level::Error => (ERROR, "ERROR"),
        };
        writeln!(
            out,
            "{style}{label:<5}{style:#} {}: {}",
            problem.subject, problem.message
        )?;
    }
    if !report.results.is_empty() || !report.errors.is_empty() {
        writeln!(out)?;
    }
    let s = &report.summary;
    let clean = s.objects - s.denied - s.warned - s.failed;
    let verdict = if s.denied > 0 || s.errors > 0 {
        DENY
    } else {
        OK
    };
    let mut tail = String::new();
    if s.failed > 0 {
        tail.push_str(&format!(", {} not judged (policy errors)", s.failed));
    }
    if s.skipped > 0 {
        tail.push_str(&format!("; {} governed kinds not served", s.skipped));
    }
    if s.errors > 0 {
        tail.push_str(&format!("; {} could not be audited", s.errors));
    }
    writeln!(
        out,
        "{verdict}{} objects of {} kinds audited against {} {}{verdict:#}: {} denied, {} with warnings, {} clean{tail}",
        s.objects,
        s.kinds,
        policies,
        if policies == 1 { "policy" } else { "policies" },
        s.denied,
        s.warned,
        clean,
    )
}

/// The run's metrics as one log line: objects per kind, violations per policy, duration.
pub fn metrics_line(report: &AuditReport) -> String {
    let m = &report.metrics;
    let join = |map: &std::collections::BTreeMap<String, usize>| {
        map.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "audit metrics: objects={} duration_seconds={:.3} pages={} objects_by_kind={} violations_by_policy={} errors={}",
        report.summary.objects,
        m.duration_seconds,
        m.pages,
        join(&m.objects_by_kind),
        join(&m.violations_by_policy),
        report.summary.errors,
    )
}

/// One test suite per policy, a test case per result reported (failures and
/// errors as such), and one suite for what could not be audited.
pub fn junit(report: &AuditReport) -> quick_junit::Report {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut junit = quick_junit::Report::new("bouncer audit");
    let mut suites: std::collections::BTreeMap<&str, TestSuite> = Default::default();
    for finding in &report.results {
        let status = match finding.result {
            Verdict::Fail | Verdict::Error => {
                let kind = if finding.result == Verdict::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut status = TestCaseStatus::non_success(kind);
                status.set_message(finding.message.clone().unwrap_or_default());
                status
            }
            Verdict::Skip => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(finding.message.clone().unwrap_or_default());
                status
            }
            Verdict::Warn | Verdict::Pass => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(object_label(&finding.object), status);
        case.set_classname(finding.policy.as_str());
        let notes: Vec<&str> = finding
            .message
            .iter()
            .filter(|_| finding.result == Verdict::Warn)
            .map(String::as_str)
            .chain(finding.warnings.iter().map(String::as_str))
            .collect();
        if !notes.is_empty() {
            case.set_system_out(notes.join("\n"));
        }
        suites
            .entry(finding.policy.as_str())
            .or_insert_with(|| TestSuite::new(finding.policy.as_str()))
            .add_test_case(case);
    }
    junit.add_test_suites(suites.into_values());
    if !report.errors.is_empty() {
        let mut problems = TestSuite::new("not audited");
        for problem in &report.errors {
            let status = match problem.level {
                Level::Skip => TestCaseStatus::skipped(),
                Level::Error => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                    status.set_message(problem.message.as_str());
                    status
                }
            };
            let mut case = TestCase::new(problem.subject.as_str(), status);
            if problem.level == Level::Skip {
                case.set_system_out(problem.message.as_str());
            }
            problems.add_test_case(case);
        }
        junit.add_test_suite(problems);
    }
    junit
}
