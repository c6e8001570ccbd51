//! JUnit XML for CI systems: one `<testsuite>` per suite file, one
//! `<testcase>` per case run, failures with what was expected and what came back.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::run::{CaseOutcome, CaseResult};
use super::suite::Suite;

/// Builds the report for `results` of `suites`.
pub fn report(suites: &[Suite], results: &[CaseResult]) -> Report {
    let mut report = Report::new("bouncer test");
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
