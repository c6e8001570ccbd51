//! `bouncer test` and `bouncer check` as a user runs them: the built binary,
//! real suite files and manifests, exit codes and what is printed.

use std::path::{Path, PathBuf};

use crate::support::{bouncer, stderr, stdout, stdout_json, workspace};

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch("offline", name)
}

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or("")
}

const INGRESSES: &str = "policies/alb-target-type-ip/testdata/ingresses.yaml";

/// A suite with one passing and one failing case: the expected patched object
/// differs from the real one in a single annotation.
fn failing_suite(dir: &Path) -> PathBuf {
    let manifest = workspace().join(INGRESSES);
    let expected = std::fs::read_to_string(
        workspace().join("policies/alb-target-type-ip/testdata/storefront-patched.yaml"),
    )
    .unwrap()
    .replace("scheme: internet-facing", "scheme: internal");
    std::fs::write(dir.join("expected.yaml"), expected).unwrap();
    let suite = format!(
        "\
apiVersion: bouncer.dev/v1alpha1
kind: TestSuite
name: mutate
policy: builtin:alb-target-type-ip
settings: {{mutate: true}}
cases:
  - name: compliant passes
    manifest: {manifest}
    document: 0
    expect: {{allowed: true, patched: false}}
  - name: wrong patch
    manifest: {manifest}
    select: {{name: storefront}}
    expect:
      allowed: true
      patchedManifest: expected.yaml
",
        manifest = manifest.display()
    );
    let path = dir.join("mutate.bouncer-test.yaml");
    std::fs::write(&path, suite).unwrap();
    path
}

#[test]
fn every_builtin_policy_suite_and_example_suite_passes() {
    // examples/policies/ holds custom policies that must be built first; the
    // authoring tests (tests/tests/all/authoring.rs) build and test them.
    let output = bouncer(
        &[
            "test",
            "policies/",
            "examples/testing/",
            "examples/policies.bouncer-test.yaml",
        ],
        None,
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert!(!out.contains("FAIL"), "{out}");
    let summary = last_line(&out);
    let passed: usize = summary
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary line: {summary:?}"));
    // Every built-in ships a suite; each suite has cases.
    assert!(passed >= 10, "{out}");
    assert!(out.contains("PASS example-config/"), "{out}");
    assert!(out.contains("PASS team-namespaces/"), "{out}");
    for policy in bouncer::policy::BUILTINS {
        assert!(
            out.contains(&format!("PASS {}/", policy.name)),
            "no passing suite for built-in `{}`:\n{out}",
            policy.name
        );
    }
}

#[test]
fn a_failing_case_exits_1_and_shows_a_diff_of_the_patched_object() {
    let dir = scratch("failing");
    let suite = failing_suite(&dir);
    let output = bouncer(&["test", "--color", "never", suite.to_str().unwrap()], None);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}{}", stderr(&output));
    assert!(out.contains("PASS mutate/compliant passes"), "{out}");
    assert!(out.contains("FAIL mutate/wrong patch"), "{out}");
    assert!(
        out.contains(&format!("at {}:11", suite.display())),
        "the failure names the case's line:\n{out}"
    );
    assert!(
        out.contains("-    alb.ingress.kubernetes.io/scheme: internal"),
        "{out}"
    );
    assert!(
        out.contains("+    alb.ingress.kubernetes.io/scheme: internet-facing"),
        "{out}"
    );
    assert_eq!(last_line(&out), "1 passed, 1 failed");

    let coloured = bouncer(
        &["test", "--color", "always", suite.to_str().unwrap()],
        None,
    );
    let out = stdout(&coloured);
    assert!(
        out.contains("\u{1b}[31m-    alb.ingress.kubernetes.io/scheme: internal"),
        "removed lines are red:\n{out:?}"
    );
    assert_eq!(last_line(&out), "1 passed, 1 failed");
}

#[test]
fn filter_runs_only_matching_cases() {
    let dir = scratch("filter");
    let suite = failing_suite(&dir);
    let output = bouncer(
        &[
            "test",
            "--filter",
            "mutate/compliant",
            suite.to_str().unwrap(),
        ],
        None,
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(!out.contains("wrong patch"), "{out}");
    assert_eq!(last_line(&out), "1 passed, 0 failed");
}

#[test]
fn a_broken_suite_exits_2_naming_file_and_line_and_others_still_run() {
    let dir = scratch("broken");
    failing_suite(&dir);
    let broken = dir.join("typo.bouncer-test.yaml");
    std::fs::write(
        &broken,
        "\
apiVersion: bouncer.dev/v1alpha1
kind: TestSuite
policy: builtin:alb-target-type-ip
cases:
  - name: typo
    object: {apiVersion: v1, kind: Service, metadata: {name: x}}
    expect:
      alowed: true
",
    )
    .unwrap();
    let missing = dir.join("missing.bouncer-test.yaml");
    std::fs::write(
        &missing,
        "\
apiVersion: bouncer.dev/v1alpha1
kind: TestSuite
policy: builtin:alb-target-type-ip
cases:
  - name: fine
    object: {apiVersion: v1, kind: Service, metadata: {name: x}}
    expect: {allowed: true}
  - name: no such manifest
    manifest: nowhere.yaml
    expect: {allowed: true}
",
    )
    .unwrap();
    let output = bouncer(&["test", dir.to_str().unwrap()], None);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:8: cases[0].expect: unknown field `alowed`",
            broken.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:8: case `no such manifest`", missing.display())),
        "{err}"
    );
    assert!(err.contains("nowhere.yaml"), "{err}");
    // The readable suite still ran.
    assert_eq!(last_line(&stdout(&output)), "1 passed, 1 failed");
}

#[test]
fn junit_output_parses_back_with_every_case() {
    let dir = scratch("junit");
    let suite = failing_suite(&dir);
    let report = dir.join("report.xml");
    let output = bouncer(
        &[
            "test",
            suite.to_str().unwrap(),
            "--output",
            "junit",
            report.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("mutate"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    let failed = cases
        .iter()
        .find(|c| c.attribute("name") == Some("wrong patch"))
        .unwrap();
    let failure = failed
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("a <failure> element");
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("patchedObject")
    );
    assert!(failure.text().unwrap().contains("scheme: internal"));
}

#[test]
fn check_a_directory_reports_each_violation_and_exits_1() {
    let output = bouncer(&["check", "-f", "examples/manifests/", "-o", "json"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = stdout_json(&output);
    let results = report["results"].as_array().unwrap();
    for result in results {
        for key in [
            "file",
            "line",
            "kind",
            "namespace",
            "name",
            "policy",
            "result",
            "allowed",
            "message",
            "warnings",
            "patched",
        ] {
            assert!(result.get(key).is_some(), "result lacks `{key}`: {result}");
        }
    }
    let flagged = |r: &&serde_json::Value| {
        r["allowed"] == false || !r["warnings"].as_array().unwrap().is_empty()
    };
    // The compliant manifests are quiet.
    let noisy: Vec<_> = results
        .iter()
        .filter(|r| r["file"].as_str().unwrap().contains("/compliant/"))
        .filter(flagged)
        .collect();
    assert!(noisy.is_empty(), "compliant manifests flagged: {noisy:#?}");
    // Every house rule fires on some violating manifest.
    for policy in bouncer::policy::BUILTINS {
        assert!(
            results
                .iter()
                .filter(flagged)
                .any(|r| r["policy"] == policy.name
                    && r["file"].as_str().unwrap().contains("/violating/")),
            "`{}` fires on no violating manifest",
            policy.name
        );
    }
    let storefront: Vec<_> = results
        .iter()
        .filter(|r| r["name"] == "storefront" && r["allowed"] == false)
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(storefront, ["alb-target-type-ip", "ingress-tls"]);
    let compliant = results
        .iter()
        .find(|r| r["name"] == "webapp-ingress")
        .unwrap();
    assert_eq!(compliant["line"], 3);
    assert_eq!(compliant["namespace"], "web");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);

    let text = bouncer(&["check", "-f", "examples/manifests/"], None);
    let out = stdout(&text);
    assert!(
        out.contains("DENY  examples/manifests/violating/legacy-ingress.yaml:3 Ingress/web/storefront alb-target-type-ip: Ingress web/storefront is handled"),
        "{out}"
    );
    assert!(
        out.contains("WARN  examples/manifests/violating/classic-elb-service.yaml:2 Service/web/legacy-api aws-lb-controller-only:"),
        "{out}"
    );
    assert!(last_line(&out).contains(" denied"), "{out}");
}

#[test]
fn check_reads_stdin_puts_unnamespaced_objects_in_default_and_reports_patches() {
    let manifest = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: storefront
spec:
  ingressClassName: alb
";
    let config = scratch("stdin").join("policies.yaml");
    std::fs::write(
        &config,
        "policies:\n  - name: alb\n    source: builtin:alb-target-type-ip\n    settings: {mutate: true}\n",
    )
    .unwrap();
    let output = bouncer(
        &[
            "check",
            "-f",
            "-",
            "-o",
            "json",
            "--config",
            config.to_str().unwrap(),
        ],
        Some(manifest),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = stdout_json(&output);
    let result = &report["results"][0];
    assert_eq!(result["file"], "-");
    assert_eq!(result["namespace"], "default");
    assert_eq!(result["allowed"], true);
    assert_eq!(
        result["patched"]["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"],
        "ip"
    );
    assert!(
        result["warnings"][0]
            .as_str()
            .unwrap()
            .contains("target-type")
    );

    let other = bouncer(
        &[
            "check",
            "-f",
            "-",
            "--namespace",
            "shop",
            "--color",
            "never",
        ],
        Some(manifest),
    );
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stdout(&other).contains("DENY  -:1 Ingress/shop/storefront alb-target-type-ip:"),
        "{}",
        stdout(&other)
    );
}

#[test]
fn a_bad_document_is_reported_with_its_line_and_the_others_are_checked() {
    let dir = scratch("bad-yaml");
    std::fs::write(
        dir.join("mixed.yaml"),
        "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: first}
spec: {ingressClassName: alb}
---
apiVersion: v1
kind: ConfigMap
metadata: [broken
---
metadata: {name: no-kind}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: last}
spec: {ingressClassName: alb}
",
    )
    .unwrap();
    let output = bouncer(&["check", "-f", dir.to_str().unwrap(), "-o", "json"], None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let report = stdout_json(&output);
    let names: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["policy"] == "alb-target-type-ip")
        .map(|r| (r["name"].as_str().unwrap(), r["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("first", 1), ("last", 12)]);
    let errors: Vec<_> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        (6..=9).contains(&errors[0].0) && errors[0].1.starts_with("not valid YAML"),
        "{errors:?}"
    );
    assert_eq!(errors[1], (10, "the document has no `kind`".to_owned()));

    let text = bouncer(
        &["check", "-f", dir.to_str().unwrap(), "--color", "never"],
        None,
    );
    let out = stdout(&text);
    assert!(
        out.contains(&format!(
            "ERROR {}:10 the document has no `kind`",
            dir.join("mixed.yaml").display()
        )),
        "{out}"
    );
    assert!(
        last_line(&out).ends_with("2 documents could not be read"),
        "{out}"
    );
}

#[test]
fn the_suite_in_docs_testing_md_is_a_passing_suite() {
    let doc = std::fs::read_to_string(workspace().join("docs/testing.md")).unwrap();
    let start = doc
        .find("```yaml\napiVersion: bouncer.dev/v1alpha1")
        .expect("docs/testing.md shows a suite");
    let body = &doc[start + "```yaml\n".len()..];
    let suite = &body[..body.find("```").unwrap()];
    let dir = scratch("docs");
    let testdata = dir.join("testdata");
    std::fs::create_dir_all(&testdata).unwrap();
    let policy_data = workspace().join("policies/alb-target-type-ip/testdata");
    for file in ["ingresses.yaml", "storefront-patched.yaml"] {
        std::fs::copy(policy_data.join(file), testdata.join(file)).unwrap();
    }
    std::fs::copy(
        workspace().join("tests/fixtures/apiserver-v1.36/ingress-create.json"),
        testdata.join("ingress-review.json"),
    )
    .unwrap();
    std::fs::write(dir.join("docs.bouncer-test.yaml"), suite).unwrap();
    let output = bouncer(&["test", dir.to_str().unwrap()], None);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert_eq!(last_line(&out), "5 passed, 0 failed", "{out}");
}

#[test]
fn check_looks_up_context_in_the_manifests_and_in_context_files() {
    let dir = scratch("context");
    let namespace_and_app = workspace().join("examples/manifests/violating/open-namespace.yaml");
    let netpol = dir.join("netpol.yaml");
    std::fs::write(
        &netpol,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny, namespace: experiments}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
    )
    .unwrap();
    let app = namespace_and_app.to_str().unwrap();
    let without = bouncer(&["check", "-f", app, "--color", "never"], None);
    assert_eq!(without.status.code(), Some(1), "{}", stdout(&without));
    assert!(
        stdout(&without).contains("namespace `experiments` has no default-deny NetworkPolicy"),
        "{}",
        stdout(&without)
    );
    // The cluster already holds the NetworkPolicy: given as context, not checked.
    let with_context = bouncer(
        &[
            "check",
            "-f",
            app,
            "--context",
            netpol.to_str().unwrap(),
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(
        with_context.status.code(),
        Some(0),
        "{}",
        stdout(&with_context)
    );
    let report = stdout_json(&with_context);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] != "NetworkPolicy"),
        "context objects are not checked: {report}"
    );
    // In the same manifests, it is both checked and looked up.
    let both = bouncer(&["check", "-f", app, "-f", netpol.to_str().unwrap()], None);
    assert_eq!(both.status.code(), Some(0), "{}", stdout(&both));
}

/// Regression: a key left empty (`annotations:`, `envFrom:`) is YAML null; the
/// API server drops it before admission, and so must `check`, or every rule
/// that reads the object failed to decode it.
#[test]
fn keys_left_empty_in_a_manifest_are_judged_not_failed() {
    let manifest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations:\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\nspec:\n  serviceAccountName: app\n  containers:\n    - name: c\n      image: nginx:1.27\n      envFrom:\n";
    let output = bouncer(&["check", "-f", "-", "--color", "never"], Some(manifest));
    let out = stdout(&output);
    assert!(!out.contains("stopped with an error"), "{out}");
    assert!(!out.contains("cannot read"), "{out}");
    assert!(
        out.contains("aws-lb-controller-only: Service default/s is a LoadBalancer"),
        "{out}"
    );
}

/// An unrendered Helm template is named as one, at its first `{{`.
#[test]
fn an_unrendered_helm_template_says_to_render_it() {
    let manifest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n";
    let output = bouncer(&["check", "-f", "-", "--color", "never"], Some(manifest));
    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert!(
        out.contains("-:4 not valid YAML: this is an unrendered Helm template"),
        "{out}"
    );
    assert!(
        out.contains("helm template <chart> | bouncer check -f -"),
        "{out}"
    );
}

/// Issue 25, item 9: YAML from an untrusted pull request is read under
/// bounds. A large scalar behind nested aliases (which serde_yaml's
/// repetition limit lets through) and deep flow nesting are refused with the
/// file and line, in bounded memory, and the other files are still checked;
/// the same holds for `bouncer test` suites and `config check`.
#[test]
fn yaml_bombs_are_refused_naming_the_file_and_the_rest_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(512 * 1024);
    let mut bomb = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bomb}}\ndata:\n  a0: &a0 \"{big}\"\n"
    );
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    std::fs::write(dir.path().join("bomb.yaml"), &bomb).unwrap();
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(dir.path().join("deep.yaml"), &deep).unwrap();
    std::fs::copy(
        workspace().join("examples/manifests/violating/legacy-ingress.yaml"),
        dir.path().join("legacy-ingress.yaml"),
    )
    .unwrap();

    let mut command = crate::support::bouncer_command();
    command.args(["check", "-f"]).arg(dir.path());
    let finished = crate::support::run_bounded(command, std::time::Duration::from_secs(120));
    let bomb_file = dir.path().join("bomb.yaml").display().to_string();
    let deep_file = dir.path().join("deep.yaml").display().to_string();
    let out = &finished.stdout;
    assert!(
        out.contains(&format!("ERROR {bomb_file}:1 "))
            && out.contains("aliases (`*name`) expand it to more than"),
        "{out}"
    );
    assert!(
        out.contains(&format!("ERROR {deep_file}:4 ")) && out.contains("nest more than 64 deep"),
        "{out}"
    );
    // The good file is still judged, in bounded memory; errors make it exit 2.
    assert!(
        out.contains("DENY") && out.contains("legacy-ingress.yaml"),
        "{out}"
    );
    assert_eq!(finished.code, Some(2), "{out}{}", finished.stderr);
    assert!(
        finished.peak_rss_mib < 400,
        "peak RSS {} MiB",
        finished.peak_rss_mib
    );

    // A test suite and a configuration with the same bomb fail alike.
    let suite = dir.path().join("bomb.bouncer-test.yaml");
    std::fs::write(&suite, &bomb).unwrap();
    let tested = bouncer(&["test", &suite.display().to_string()], None);
    assert!(
        stderr(&tested).contains("expand it to more than")
            || stdout(&tested).contains("expand it to more than"),
        "{}{}",
        stdout(&tested),
        stderr(&tested)
    );
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "policies: []\nbomb:\n{}",
            bomb.split_once("data:\n").unwrap().1
        ),
    )
    .unwrap();
    let checked = bouncer(&["config", "check", &config.display().to_string()], None);
    assert_eq!(checked.status.code(), Some(2), "{}", stdout(&checked));
    assert!(
        stderr(&checked).contains("expand it to more than"),
        "{}",
        stderr(&checked)
    );
}

/// Issue 25, item 3: lb-scheme reads only an IngressGroup's members, not
/// every Ingress of the cluster. 300 legal Ingresses with 200 KB annotations
/// (60 MB, about the policy's whole 64 MiB memory) in other namespaces used to
/// be copied into every grouped review, which then ran out of memory and was
/// denied; now the grouped Ingresses are judged on their group alone.
#[test]
fn a_tenants_large_ingresses_do_not_reach_another_groups_review() {
    let dir = tempfile::tempdir().unwrap();
    let padding = "p".repeat(200 * 1024);
    // Three files: one of 60 MB would pass the 32 MiB bound on a file.
    let mut tenant = String::new();
    for i in 0..300 {
        if i > 0 && i % 100 == 0 {
            std::fs::write(dir.path().join(format!("tenant-{i}.yaml")), &tenant).unwrap();
            tenant.clear();
        }
        tenant.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: big-{i}\n  namespace: tenant\n  annotations:\n    alb.ingress.kubernetes.io/target-type: ip\n    padding: {padding}\nspec:\n  ingressClassName: alb\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"
        ));
    }
    std::fs::write(dir.path().join("tenant-300.yaml"), tenant).unwrap();
    let mut group = String::new();
    for name in ["orders", "billing"] {
        group.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations:\n    alb.ingress.kubernetes.io/target-type: ip\n    alb.ingress.kubernetes.io/group.name: shop\n    alb.ingress.kubernetes.io/scheme: internal\nspec:\n  ingressClassName: alb\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"
        ));
    }
    std::fs::write(dir.path().join("group.yaml"), group).unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        "policies:\n  - name: lb-scheme\n    source: builtin:lb-scheme\n    context:\n      - {apiVersion: networking.k8s.io/v1, kind: Ingress}\n      - {apiVersion: networking.k8s.io/v1, kind: IngressClass}\n",
    )
    .unwrap();
    let mut command = crate::support::bouncer_command();
    command
        .args(["check", "-o", "json", "-c"])
        .arg(&config)
        .arg("-f")
        .arg(dir.path());
    let finished = crate::support::run_bounded(command, std::time::Duration::from_secs(300));
    assert_eq!(
        finished.code,
        Some(0),
        "{}{}",
        finished.stdout,
        finished.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    // Neither denied (out of memory) nor warned (a lookup too large to
    // read): the group's two members are all the grouped reviews read.
    assert_eq!(
        report["summary"]["denied"],
        0,
        "{}",
        finished.stdout.chars().take(4000).collect::<String>()
    );
    assert_eq!(
        report["summary"]["warned"],
        0,
        "{}",
        finished.stdout.chars().take(4000).collect::<String>()
    );
    assert_eq!(report["summary"]["objects"], 302);
}

/// Issue 25, item 10: `check` holds a pull request's objects as compact JSON,
/// parsed one document at a time, not as a file's worth of parsed values:
/// 20 MB of manifests stay well under the ~250 MiB they took before.
#[test]
fn checking_20_mb_of_manifests_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let note = "x".repeat(1500);
    let env: String = (0..20)
        .map(|j| format!("            - {{name: E{j}, value: {}}}\n", "v".repeat(40)))
        .collect();
    let mut text = String::new();
    for i in 0..6000 {
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-{}\n  labels: {{app: app-{i}}}\n  annotations: {{note: {note}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n      serviceAccountName: sa\n      containers:\n        - name: c\n          image: nginx:1.27\n          env:\n{env}",
            i % 50
        ));
    }
    assert!(text.len() > 15_000_000, "{}", text.len());
    std::fs::write(dir.path().join("many.yaml"), &text).unwrap();
    let mut command = crate::support::bouncer_command();
    command.args(["check", "-f"]).arg(dir.path());
    let finished = crate::support::run_bounded(command, std::time::Duration::from_secs(300));
    assert!(
        finished.stdout.contains("6000 objects in 1 files checked"),
        "{}",
        finished.stdout.lines().last().unwrap_or_default()
    );
    assert!(
        finished.peak_rss_mib < 180,
        "peak RSS {} MiB",
        finished.peak_rss_mib
    );
}

/// Regression for the built-ins' 128 KiB stack (`STACK_SIZE` in
/// policies/build): the deepest object the host accepts (serde_json's limit of
/// 128 levels, 125 below `spec`) is parsed by every built-in that reads it,
/// without overflowing the stack (which would trap and fail the policy).
#[test]
fn the_deepest_object_the_host_accepts_fits_the_built_ins_stack() {
    let dir = scratch("deep");
    let mut nested = "\"x\"".to_owned();
    for _ in 0..125 {
        nested = format!("{{\"a\":{nested}}}");
    }
    let ingress = format!(
        r#"{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"deep","namespace":"web","annotations":{{"alb.ingress.kubernetes.io/target-type":"ip","alb.ingress.kubernetes.io/listen-ports":"[{{\"HTTPS\": 443}}]","alb.ingress.kubernetes.io/certificate-arn":"arn:aws:acm:us-east-1:123456789012:certificate/abc"}}}},"spec":{{"ingressClassName":"alb","deep":{nested},"rules":[{{"host":"a.example.com"}}]}}}}"#
    );
    let class = r#"{"apiVersion":"networking.k8s.io/v1","kind":"IngressClass","metadata":{"name":"alb"},"spec":{"controller":"ingress.k8s.aws/alb"}}"#;
    let path = dir.join("deep.json");
    std::fs::write(&path, format!("{ingress}\n{class}\n")).unwrap();
    let out = bouncer(
        &["check", "--color", "never", "-f", path.to_str().unwrap()],
        None,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("2 objects in 1 files checked against 8 policies: 0 denied, 0 with warnings"),
        "{text}"
    );
}
