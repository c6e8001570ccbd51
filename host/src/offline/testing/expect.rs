//! Checking what came back against what a case expects.

use jsonpath_rust::JsonPath;
use serde_json::Value;

use super::suite::Expect;
use crate::admission::Admission;

/// One unmet expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which expectation, such as `allowed` or `assertions[0] $.spec.x`.
    pub what: String,
    /// What the case expected.
    pub expected: String,
    /// What came back.
    pub actual: String,
    /// Whether `expected` and `actual` are multi-line documents worth a diff.
    pub document: bool,
}

impl Failure {
    fn new(
        what: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Self {
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
            document: false,
        }
    }
}

/// Every way `admission` falls short of `expect`; empty when the case passes.
///
/// `object` is the object as sent; assertions run on it when nothing patched it.
pub(super) fn check(
    expect: &Expect,
    admission: &Admission,
    object: Option<&Value>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let response = &admission.response;
    let message = &response.result.message;
    if response.allowed != expect.allowed {
        let actual = if response.allowed {
            "allowed".to_owned()
        } else {
            format!("denied: {message}")
        };
        let expected = if expect.allowed { "allowed" } else { "denied" };
        failures.push(Failure::new("allowed", expected, actual));
    }
    if let Some(part) = &expect.message
        && !message.contains(part.as_str())
    {
        failures.push(Failure::new(
            "message",
            format!("contains {part:?}"),
            quoted(message),
        ));
    }
    if let Some(pattern) = &expect.message_matches
        && !pattern.is_match(message)
    {
        failures.push(Failure::new(
            "messageMatches",
            format!("matches /{pattern}/"),
            quoted(message),
        ));
    }
    if let Some(code) = expect.code
        && (response.allowed || response.result.code != code)
    {
        let actual = if response.allowed {
            "allowed (no code)".to_owned()
        } else {
            response.result.code.to_string()
        };
        failures.push(Failure::new("code", code.to_string(), actual));
    }
    if let Some(expected) = &expect.warnings {
        check_warnings(
            expected,
            response.warnings.as_deref().unwrap_or_default(),
            &mut failures,
        );
    }
    check_patch(expect, admission, &mut failures);
    let result_object = admission.patched.as_ref().or(object);
    for (index, assertion) in expect.assertions.iter().enumerate() {
        let what = format!("assertions[{index}] {}", assertion.path);
        let found: Vec<&Value> = match result_object {
            Some(object) => match object.query(&assertion.path) {
                Ok(found) => found,
                Err(error) => {
                    failures.push(Failure::new(what, "a valid JSONPath", error.to_string()));
                    continue;
                }
            },
            None => Vec::new(),
        };
        let shown = || match found.as_slice() {
            [] => "nothing".to_owned(),
            [one] => one.to_string(),
            many => Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string(),
        };
        if let Some(exists) = assertion.exists
            && exists == found.is_empty()
        {
            let expected = if exists {
                "selects something"
            } else {
                "selects nothing"
            };
            failures.push(Failure::new(what.clone(), expected, shown()));
        }
        if let Some(equals) = &assertion.equals
            && (found.is_empty() || found.iter().any(|v| *v != equals))
        {
            failures.push(Failure::new(what, equals.to_string(), shown()));
        }
    }
    failures
}

fn check_warnings(expected: &[String], actual: &[String], failures: &mut Vec<Failure>) {
    if expected.is_empty() && !actual.is_empty() {
        failures.push(Failure::new("warnings", "none", actual.join("\n")));
        return;
    }
    for part in expected {
        if !actual.iter().any(|w| w.contains(part.as_str())) {
            let shown = if actual.is_empty() {
                "none".to_owned()
            } else {
                actual.join("\n")
            };
            failures.push(Failure::new(
                "warnings",
                format!("one containing {part:?}"),
                shown,
            ));
        }
    }
}

fn check_patch(expect: &Expect, admission: &Admission, failures: &mut Vec<Failure>) {
    let patched = admission.patched.is_some();
    if let Some(want) = expect.patched
        && want != patched
    {
        let actual = match &admission.patched {
            Some(object) => format!("patched:\n{}", yaml(object)),
            None => "not patched".to_owned(),
        };
        let expected = if want { "patched" } else { "not patched" };
        failures.push(Failure::new("patched", expected, actual));
    }
    if let Some(expected) = &expect.patched_object {
        match &admission.patched {
            None => failures.push(Failure::new(
                "patchedObject",
                "a patched object",
                "not patched",
            )),
            Some(actual) => {
                let expected = with_namespace_of(expected, actual);
                if &expected != actual {
                    failures.push(Failure {
                        what: "patchedObject".into(),
                        expected: yaml(&expected),
                        actual: yaml(actual),
                        document: true,
                    });
                }
            }
        }
    }
}

/// The API server fills in `metadata.namespace` before admission; an expected
/// object written from the manifest leaves it out, and that is not a difference.
fn with_namespace_of(expected: &Value, actual: &Value) -> Value {
    let mut expected = expected.clone();
    if let (Some(namespace), Some(meta)) = (
        actual.pointer("/metadata/namespace"),
        expected
            .pointer_mut("/metadata")
            .and_then(Value::as_object_mut),
    ) {
        meta.entry("namespace").or_insert_with(|| namespace.clone());
    }
    expected
}

/// An object as YAML, for people to read and diff.
pub(super) fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_else(|_| value.to_string())
}

fn quoted(message: &str) -> String {
    if message.is_empty() {
        "no message".into()
    } else {
        format!("{message:?}")
    }
}
