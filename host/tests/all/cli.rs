//! The `bouncer` binary as a user runs it: exit codes, stdout, stderr.

use std::path::Path;

use crate::support::{bouncer, stderr, stdout_json, workspace};

const MISSING: &str = "examples/requests/alb-ingress-missing-target-type.yaml";

#[test]
fn eval_denies_an_alb_ingress_without_target_type_in_plain_words() {
    let output = bouncer(
        &[
            "eval",
            "--policy",
            "alb-target-type-ip",
            "--request",
            MISSING,
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let review = stdout_json(&output);
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = &review["response"];
    assert_eq!(response["uid"], "6f1c2a4e-0000-4000-8000-000000000001");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "alb-target-type-ip: Ingress web/webapp-ingress is handled by the AWS Load Balancer Controller \
         (ingressClassName `alb`) but has no `alb.ingress.kubernetes.io/target-type` annotation, so it \
         defaults to `instance` and routes traffic through node ports; set the annotation \
         `alb.ingress.kubernetes.io/target-type: ip`"
    );
    assert!(
        stderr(&output)
            .starts_with("denied (403) by alb-target-type-ip: Ingress web/webapp-ingress")
    );
}

#[test]
fn eval_allows_a_captured_compliant_review() {
    let output = bouncer(
        &[
            "eval",
            "-p",
            "builtin:alb-target-type-ip",
            "-r",
            "tests/fixtures/apiserver-v1.36/ingress-create.json",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout_json(&output)["response"]["allowed"], true);
}

#[test]
fn eval_mutates_with_settings_and_reads_stdin() {
    let request = std::fs::read_to_string(workspace().join(MISSING)).unwrap();
    let output = bouncer(
        &[
            "eval",
            "-p",
            "alb-target-type-ip",
            "-r",
            "-",
            "-s",
            "examples/requests/mutate-settings.yaml",
        ],
        Some(&request),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let response = &stdout_json(&output)["response"];
    assert_eq!(response["patchType"], "JSONPatch");
    assert!(
        response["patch"].is_string(),
        "patch is base64 text: {response}"
    );
    assert!(
        stderr(&output)
            .contains("warning: alb-target-type-ip: Ingress web/webapp-ingress: bouncer added")
    );
}

#[test]
fn eval_usage_and_load_errors_exit_2_with_the_reason() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["eval", "-p", "nope", "-r", MISSING],
            "error: unknown built-in policy `nope`; `bouncer policies` lists them (known: alb-target-type-ip",
        ),
        (
            &["eval", "-p", "alb-target-type-ip", "-r", "Cargo.toml"],
            "error: reading the request from Cargo.toml: not valid YAML or JSON",
        ),
        (
            &[
                "eval",
                "-p",
                "alb-target-type-ip",
                "-r",
                "/no/such/file.json",
            ],
            "error: reading /no/such/file.json:",
        ),
        (
            &["eval", "-p", "/no/such/policy.wasm", "-r", MISSING],
            "error: loading policy `such` from /no/such/policy.wasm: cannot read /no/such/policy.wasm:",
        ),
        (
            &["eval", "--policy"],
            "error: a value is required for '--policy <POLICY>'",
        ),
    ];
    for (args, expected) in cases {
        let output = bouncer(args, None);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).starts_with(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn eval_refuses_settings_the_policy_rejects() {
    let output = bouncer(
        &[
            "eval",
            "-p",
            "alb-target-type-ip",
            "-r",
            MISSING,
            "-s",
            "/dev/stdin",
        ],
        Some("albClassNames: []\n"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "policy `alb-target-type-ip` from builtin:alb-target-type-ip: rejected its settings: albClassNames must name at least one ingress class"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn eval_rejects_a_review_of_the_wrong_version() {
    let output = bouncer(
        &["eval", "-p", "alb-target-type-ip", "-r", "-"],
        Some(r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("missing field"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn policies_lists_every_builtin_with_its_description() {
    let output = bouncer(&["policies"], None);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        bouncer::policy::BUILTINS.len(),
        "{text}"
    );
    for builtin in bouncer::policy::BUILTINS {
        assert!(
            text.lines()
                .any(|l| l.starts_with(builtin.name) && l.contains(builtin.description)),
            "{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.starts_with("alb-target-type-ip ")
            && l.contains("  Load balancers of the AWS Load Balancer Controller")),
        "{text}"
    );
}

#[test]
fn config_default_prints_a_config_that_checks_and_the_commented_example_checks_too() {
    let output = bouncer(&["config", "default"], None);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("source: builtin:alb-target-type-ip"),
        "{text}"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let printed = dir.join("printed-default.yaml");
    std::fs::write(&printed, &text).unwrap();
    let check = bouncer(&["config", "check", printed.to_str().unwrap()], None);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));

    let example = bouncer(&["config", "check", "examples/policies.yaml"], None);
    assert_eq!(example.status.code(), Some(0), "{}", stderr(&example));
    assert_eq!(
        String::from_utf8_lossy(&example.stdout),
        "examples/policies.yaml: 2 policies load\n"
    );
}

#[test]
fn config_check_names_the_unknown_key_and_its_line() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("typo.yaml");
    std::fs::write(
        &file,
        "policies:\n  - name: a\n    source: builtin:alb-target-type-ip\n    failur: open\n",
    )
    .unwrap();
    let output = bouncer(&["config", "check", file.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("policies[0]: unknown field `failur`"),
        "{text}"
    );
    assert!(text.contains("line 4"), "{text}");
}

#[test]
fn a_config_entry_that_disagrees_with_its_policys_metadata_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        "policies:
  - name: tls
    source: builtin:ingress-tls
    mutating: true
    match:
      kinds:
        - {apiGroups: [networking.k8s.io], kinds: [Ingress]}
        - {apiGroups: [\"\"], kinds: [Pod, ConfigMap]}
      operations: [CREATE, DELETE]
",
    )
    .unwrap();
    let output = bouncer(
        &[
            "check",
            "-f",
            "examples/manifests/compliant/",
            "--config",
            config.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    for warning in [
        "warning: policy `tls`: its entry matches Pod, ConfigMap, which the policy does not govern \
         (it governs Ingress.networking.k8s.io, Gateway.gateway.networking.k8s.io, ListenerSet.gateway.networking.k8s.io)",
        "warning: policy `tls`: its entry matches DELETE, but the policy judges only CREATE, UPDATE",
        "warning: policy `tls`: its entry runs it as mutating, but the policy never mutates",
    ] {
        assert!(err.contains(warning), "no `{warning}` in:\n{err}");
    }

    // The embedded default agrees with every built-in's metadata.
    let output = bouncer(&["check", "-f", "examples/manifests/compliant/"], None);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("warning:"), "{err}");
}

#[test]
fn settings_that_break_the_declared_schema_are_refused_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        "policies:
  - name: alb
    source: builtin:alb-target-type-ip
    settings: {albClassNames: alb, mutate: \"yes\", colour: blue}
",
    )
    .unwrap();
    let output = bouncer(&["config", "check", config.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("policy `alb`: rejected its settings: they do not match its settings schema"),
        "{err}"
    );
    for problem in [
        "/albClassNames: \"alb\" is not of type \"array\"",
        "/mutate: \"yes\" is not of type \"boolean\"",
        "colour",
    ] {
        assert!(err.contains(problem), "no `{problem}` in:\n{err}");
    }
}

/// The chart builds webhook rules for built-ins from `files/builtins.json`;
/// it must say what the built-ins' own metadata says.
#[test]
fn the_charts_builtin_table_is_what_the_builtins_declare() {
    let output = bouncer(&["policies", "--output", "json"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let declared = stdout_json(&output);
    let file = workspace().join("charts/bouncer/files/builtins.json");
    let shipped: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        shipped,
        declared,
        "{} is stale: regenerate it with `bouncer policies --output json > {}`",
        file.display(),
        file.display()
    );
    assert_eq!(declared["builtin:alb-target-type-ip"]["mutating"], true);
}
