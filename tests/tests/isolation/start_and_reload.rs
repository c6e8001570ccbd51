//! A configuration entry that cannot be loaded does not stop the server: it
//! answers by its own failure mode until a reload brings it in. A config file
//! written in pieces is loaded only once it is whole.

use std::time::Duration;

use bouncer_tests::config::{alb, config, hostile};
use bouncer_tests::server::{options, start};
use bouncer_tests::{HOSTILE_POLICY, assert_failed_open, fixture};

use super::QUIET;

fn missing(name: &str, file: &std::path::Path, kind: &str, failure: &str) -> String {
    format!(
        "  - name: {name}\n    source: {}\n    failure: {failure}\n    match:\n      kinds: [{{apiGroups: [\"*\"], kinds: [{kind}]}}]\n",
        file.display()
    )
}

#[tokio::test]
async fn a_policy_that_cannot_load_at_start_answers_by_its_failure_mode_until_a_reload() {
    let _quiet = QUIET.read().await;
    let later = tempfile::tempdir().unwrap();
    let (closed_file, open_file) = (
        later.path().join("closed.wasm"),
        later.path().join("open.wasm"),
    );
    let entries = [
        alb("good", ""),
        missing("not-yet-closed", &closed_file, "Ingress", "closed"),
        missing("not-yet-open", &open_file, "Service", "open"),
    ]
    .concat();
    let server = start(Some(&config(&entries)), |_| {}).await;

    let (status, text) = server.get("/readyz").await;
    assert_eq!(status, 200, "the others serve");
    let unreadable = |file: &std::path::Path| format!("cannot read {}", file.display());
    assert!(text.starts_with("ready: 1 policies loaded from "), "{text}");
    assert!(
        text.contains(&format!(
            "policy `not-yet-closed` is not loaded (the requests it matches are denied): {}",
            unreadable(&closed_file)
        )),
        "{text}"
    );
    assert!(
        text.contains("policy `not-yet-open` is not loaded (the requests it matches are allowed with a warning)"),
        "{text}"
    );

    let (_, body) = server
        .post("/validate", &fixture("ingress-create.json"))
        .await;
    assert_eq!(body["response"]["allowed"], false, "{body}");
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("not-yet-closed: is not loaded: "),
        "{message}"
    );
    let (_, body) = server
        .post("/validate", &fixture("service-create.json"))
        .await;
    assert_failed_open(&body, "not-yet-open: is not loaded: ");
    let metrics = server.get_text("/metrics").await;
    for line in [
        r#"bouncer_policy_loaded{policy="good"} 1"#,
        r#"bouncer_policy_loaded{policy="not-yet-closed"} 0"#,
        r#"bouncer_policy_loaded{policy="not-yet-open"} 0"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }

    // The component appears: a reload brings the entry in.
    std::fs::copy(HOSTILE_POLICY, &closed_file).unwrap();
    server
        .wait_for("the late policy loading", async || {
            server
                .post("/validate", &fixture("ingress-create.json"))
                .await
                .1["response"]["allowed"]
                == true
        })
        .await;
    let text = server.get_text("/readyz").await;
    assert!(text.starts_with("ready: 2 policies loaded"), "{text}");
    assert!(!text.contains("not-yet-closed"), "{text}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn strict_start_refuses_to_serve_with_a_broken_entry() {
    let _quiet = QUIET.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policies.yaml");
    let absent = dir.path().join("absent.wasm");
    std::fs::write(
        &path,
        config(&missing("absent", &absent, "Ingress", "closed")),
    )
    .unwrap();
    let mut options = options(dir.path(), Some(path.clone()));
    options.strict_start = true;
    let error = match bouncer::server::Server::bind(options).await {
        Ok(_) => panic!("a broken entry was served with --strict-start"),
        Err(error) => format!("{error:#}"),
    };
    assert_eq!(
        error,
        format!(
            "loading {} (--strict-start): 1 of the configured policies cannot be loaded: \
             policy `absent`: cannot read {}: No such file or directory (os error 2)",
            path.display(),
            absent.display()
        )
    );
}

#[tokio::test]
async fn a_config_file_written_in_two_halves_is_loaded_only_once_whole() {
    let _quiet = QUIET.read().await;
    let server = start(Some(&config(&alb("first", ""))), |o| {
        o.config_settle = Duration::from_secs(2)
    })
    .await;
    let path = server.dir.path().join("policies.yaml");
    let whole = config(
        &[
            alb("first", ""),
            alb("second", ""),
            hostile("third", "allow", ""),
            hostile("fourth", "allow", ""),
        ]
        .concat(),
    );
    // The first half ends on an entry boundary: valid YAML, half the policies.
    let cut = whole.find("  - name: third").unwrap();
    std::fs::write(&path, &whole[..cut]).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let served: Vec<String> = names(&server);
    assert_eq!(served, ["first"], "a half-written file was loaded");
    let ready = server.get_text("/readyz").await;
    assert!(
        ready.contains(&format!(
            "a change to {} was seen; it is loaded once the files stay unchanged for 2s",
            path.display()
        )),
        "{ready}"
    );
    std::fs::write(&path, &whole).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(names(&server), ["first"], "loaded before the file settled");
    server
        .wait_for("the whole file loading", async || names(&server).len() == 4)
        .await;
    assert_eq!(names(&server), ["first", "second", "third", "fourth"]);
    let ready = server.get_text("/readyz").await;
    assert!(!ready.contains("was seen"), "{ready}");
    server.stop().await.unwrap();
}

fn names(server: &bouncer_tests::server::TestServer) -> Vec<String> {
    server
        .state
        .policies
        .load()
        .entries()
        .iter()
        .map(|e| e.policy.name().to_owned())
        .collect()
}
