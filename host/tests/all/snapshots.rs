//! What users read, snapshot-tested: CLI output and error messages, and the
//! outputs README.md quotes. A change shows up as a diff to review; bless it
//! with `cargo insta review` (or `INSTA_UPDATE=always cargo test --workspace
//! --test all snapshots::`) once it is what a user should see. Under `CI=true` a
//! mismatch fails and nothing is written.

use crate::support::{bouncer, stderr, workspace};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Timings, digests and sizes change from run to run and build to build.
macro_rules! snapshot {
    ($name:expr, $text:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\(\d+(\.\d+)? ms\)", "([time])");
        settings.add_filter(r"[0-9a-f]{64}", "[sha256]");
        settings.add_filter(r"sha256 [0-9a-f]{12}…", "sha256 [sha256]…");
        settings.add_filter(r"\d+(\.\d+)? (KiB|MiB)\b", "[size]");
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}

#[test]
fn policies_lists_every_builtin_with_what_it_governs() {
    let output = bouncer(&["policies"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    snapshot!("policies", stdout(&output));
}

#[test]
fn check_reports_each_object_and_a_summary() {
    let output = bouncer(&["check", "-f", "examples/manifests/"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    snapshot!("check-examples", stdout(&output));
}

#[test]
fn test_reports_each_case_and_a_summary() {
    let output = bouncer(&["test", "examples/policies.bouncer-test.yaml"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    snapshot!("test-examples", stdout(&output));
}

#[test]
fn inspect_describes_a_builtin() {
    let output = bouncer(&["inspect", "alb-target-type-ip"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    snapshot!("inspect-alb-target-type-ip", stdout(&output));
}

/// `bouncer <command> --help`, with this machine's cache directory masked.
fn help(command: &str) -> String {
    let output = bouncer(&[command, "--help"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let cache = regex::Regex::new(r"\[env:\s*BOUNCER_CACHE_DIR=[^\]]*\]").unwrap();
    cache
        .replace(&stdout(&output), "[env: BOUNCER_CACHE_DIR=[cache]]")
        .into_owned()
}

#[test]
fn push_help_teaches_pushing_signing_and_pinning() {
    snapshot!("push-help", help("push"));
}

#[test]
fn audit_help_teaches_listing_reporting_and_exit_codes() {
    snapshot!("audit-help", help("audit"));
}

#[test]
fn eval_says_who_denied_and_why_on_stderr() {
    let output = bouncer(
        &[
            "eval",
            "-p",
            "alb-target-type-ip",
            "-r",
            "examples/requests/alb-ingress-missing-target-type.yaml",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    snapshot!("eval-denied-stderr", stderr(&output));
}

#[test]
fn error_messages_say_what_was_wrong_and_what_to_do() {
    let cases: &[&[&str]] = &[
        &["eval", "-p", "nope", "-r", "-"],
        &["inspect", "examples/policies/deny-latest-tag/no-such.wasm"],
        &["config", "check", "examples/no-such-config.yaml"],
        &["check", "-f", "examples/no-such-manifests/"],
        &["audit", "--kubeconfig", "examples/no-such-kubeconfig"],
        &["audit", "--report-format", "wgpolicyk8s"],
    ];
    let mut all = String::new();
    for args in cases {
        let output = bouncer(args, Some(""));
        // Both streams: an error that reaches only stdout (or neither) shows.
        all.push_str(&format!(
            "$ bouncer {}\nexit {:?}\nstdout: {}\nstderr: {}\n",
            args.join(" "),
            output.status.code(),
            stdout(&output).trim_end(),
            stderr(&output)
        ));
    }
    snapshot!("error-messages", all);
}

/// README.md quotes `bouncer check`'s output: every line it quotes must be a
/// line the command prints today.
#[test]
fn the_check_output_quoted_in_the_readme_is_what_check_prints() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let quoted = readme
        .split("check -f examples/manifests/\n```\n\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("README.md quotes the output of `check -f examples/manifests/`");
    let output = bouncer(&["check", "-f", "examples/manifests/"], None);
    let printed = stdout(&output);
    for line in quoted.lines().filter(|l| *l != "...") {
        assert!(
            printed.lines().any(|p| p == line),
            "README.md quotes a line `check` no longer prints:\n{line}\n\nit prints:\n{printed}"
        );
    }
}
