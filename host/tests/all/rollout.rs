//! Rolling a rule out, offline: `check --compare` and exceptions given as
//! manifests, through the `bouncer` binary, as docs/rolling-out.md shows them.
//! What users read is snapshot-tested; expiry times (relative to now) are masked.

use std::time::{Duration, SystemTime};

use crate::support::{bouncer, scratch, stderr, stdout};

macro_rules! snapshot {
    ($name:expr, $text:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]");
        settings.add_filter(r"/[^ ]*/rollout/[a-z-]+/", "[dir]/");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_snapshot_path("snapshots");
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}

const POLICIES: &str = "examples/rollout/policies.yaml";
const CANDIDATE: &str = "examples/rollout/candidate.yaml";
const MANIFESTS: &str = "examples/rollout/manifests/";

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A PolicyException manifest; `spec` is YAML indented by four spaces.
fn exception(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: bouncer.dev/v1alpha1\nkind: PolicyException\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}---\n"
    )
}

/// `bouncer check --compare` of the example manifests, `extra` arguments after.
fn compare(current: &str, candidate: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        "-c",
        current,
        "--compare",
        candidate,
        "-f",
        MANIFESTS,
    ];
    args.extend(extra);
    bouncer(&args, None)
}

/// `bouncer check` of `manifests` under the example configuration, with `context`.
fn check_with(manifests: &str, context: &std::path::Path) -> std::process::Output {
    let context = context.to_str().unwrap();
    bouncer(
        &[
            "check",
            "-c",
            POLICIES,
            "-f",
            manifests,
            "--context",
            context,
        ],
        None,
    )
}

fn billing_spec(expires: SystemTime, reason: &str) -> String {
    format!(
        "    policies: [require-irsa]\n    match:\n      kinds: [{{apiGroups: [apps], kinds: [Deployment]}}]\n      namespaces: {{include: [billing]}}\n      names: [invoices]\n    reason: {reason:?}\n    ticket: PLAT-1234\n    expires: {}\n",
        rfc3339(expires)
    )
}

#[test]
fn check_compare_lists_what_the_candidate_would_change_and_exits_1_on_a_new_denial() {
    let output = compare(POLICIES, CANDIDATE, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    snapshot!("check-compare", stdout(&output));
    let output = compare(POLICIES, CANDIDATE, &["-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["summary"]["newlyDenied"], 2, "{report:#}");
    assert_eq!(report["changes"][0]["change"], "newly-denied");
    assert_eq!(
        report["changes"][0]["candidate"]["deniedBy"][0]["policy"],
        "require-irsa"
    );
}

#[test]
fn check_compare_exits_0_when_nothing_changes_and_3_when_only_allowing_more() {
    let same = compare(POLICIES, POLICIES, &[]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(
        stdout(&same)
            .contains("0 newly denied, 0 newly allowed, 0 with a different patch, 5 unchanged")
    );
    // The other way round: the candidate is the laxer one.
    let looser = compare(CANDIDATE, POLICIES, &[]);
    assert_eq!(looser.status.code(), Some(3), "{}", stdout(&looser));
    assert!(
        stdout(&looser).contains("NEWLY ALLOWED"),
        "{}",
        stdout(&looser)
    );
}

#[test]
fn an_exception_given_as_a_manifest_lets_a_denied_object_through_until_it_expires() {
    let dir = scratch("rollout", "exception");
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 3600);
    let active = dir.join("active.yaml");
    std::fs::write(
        &active,
        exception(
            "platform-exceptions",
            "billing-static-keys",
            &billing_spec(
                now + 30 * day,
                "invoices moves to IRSA in its March release",
            ),
        ),
    )
    .unwrap();
    let manifests = format!("{MANIFESTS}billing.yaml");
    let output = check_with(&manifests, &active);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    snapshot!("check-exception-active", stdout(&output));

    // Expired: it no longer applies, and the denial says so.
    let expired = dir.join("expired.yaml");
    std::fs::write(
        &expired,
        exception(
            "platform-exceptions",
            "billing-static-keys",
            &billing_spec(now - day, "invoices moves to IRSA in its March release"),
        ),
    )
    .unwrap();
    let output = check_with(&manifests, &expired);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains("(PolicyException platform-exceptions/billing-static-keys (expires ")
            && text.contains("ticket PLAT-1234) has expired and no longer applies)"),
        "{text}"
    );

    // Outside the honoured namespaces it is ignored, so a team cannot exempt itself.
    let own = dir.join("own.yaml");
    std::fs::write(
        &own,
        exception("billing", "mine", &billing_spec(now + day, "we said so")),
    )
    .unwrap();
    let output = check_with(&manifests, &own);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
}

#[test]
fn bouncer_refuses_exceptions_that_are_misplaced_unexplained_too_long_or_for_no_policy() {
    let dir = scratch("rollout", "refused");
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 3600);
    let spec = |policies: &str, reason: &str, expires: SystemTime| {
        format!(
            "    policies: [{policies}]\n    reason: {reason:?}\n    expires: {}\n",
            rfc3339(expires)
        )
    };
    let manifests = [
        exception(
            "billing",
            "in-my-own-namespace",
            &spec("require-irsa", "r", now + day),
        ),
        exception(
            "platform-exceptions",
            "no-reason",
            &spec("require-irsa", "", now + day),
        ),
        exception(
            "platform-exceptions",
            "too-long",
            &spec("require-irsa", "r", now + 365 * day),
        ),
        exception(
            "platform-exceptions",
            "unknown-policy",
            &spec("requires-irsa", "r", now + day),
        ),
        exception(
            "platform-exceptions",
            "fine",
            &spec("require-irsa", "r", now + day),
        ),
    ]
    .concat();
    let file = dir.join("exceptions.yaml");
    std::fs::write(&file, manifests).unwrap();
    let output = bouncer(
        &["check", "-c", POLICIES, "-f", file.to_str().unwrap()],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    snapshot!("check-exceptions-refused", stdout(&output));
}

/// docs/rolling-out.md quotes what `bouncer check` prints: each quoted
/// command runs, and every line quoted after it must be a line it prints.
/// The example exception's expiry is moved to 30 days from now (and times are
/// masked), so the quote stays true after its date.
#[test]
fn the_outputs_quoted_in_rolling_out_are_what_bouncer_prints() {
    let doc =
        std::fs::read_to_string(crate::support::workspace().join("docs/rolling-out.md")).unwrap();
    let dir = scratch("rollout", "docs");
    let exceptions = dir.join("exceptions");
    std::fs::create_dir_all(&exceptions).unwrap();
    let example = std::fs::read_to_string(
        crate::support::workspace().join("examples/rollout/exceptions/billing-static-keys.yaml"),
    )
    .unwrap();
    let soon = rfc3339(SystemTime::now() + Duration::from_secs(30 * 24 * 3600));
    std::fs::write(
        exceptions.join("billing-static-keys.yaml"),
        example.replace("2027-03-01T00:00:00Z", &soon),
    )
    .unwrap();
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap();
    let mut quoted = 0;
    for block in doc.split("```sh\n").skip(1) {
        let Some((command, rest)) = block.split_once("\n```\n\n```text\n") else {
            continue;
        };
        let Some(args) = command.strip_prefix("bouncer check ") else {
            continue;
        };
        let output_quoted = rest.split("\n```").next().unwrap();
        let args: Vec<String> = args
            .split_whitespace()
            .map(|a| match a {
                "examples/rollout/exceptions/" => exceptions.display().to_string(),
                other => other.to_owned(),
            })
            .collect();
        let mut all = vec!["check".to_owned()];
        all.extend(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let output = bouncer(&all, None);
        let printed = times.replace_all(&stdout(&output), "[time]").into_owned();
        for line in output_quoted.lines().filter(|l| *l != "...") {
            let line = times.replace_all(line, "[time]");
            assert!(
                printed.lines().any(|p| p == line),
                "docs/rolling-out.md quotes a line `bouncer {}` does not print:\n{line}\n\nit prints:\n{printed}",
                all.join(" ")
            );
        }
        quoted += 1;
    }
    assert_eq!(quoted, 3, "the commands quoted with their output");
}
