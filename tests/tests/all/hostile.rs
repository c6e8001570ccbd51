use std::sync::Arc;
use std::time::Duration;

use bouncer::config::{FailureMode, Mode};
use bouncer::policy::{ErrorKind, Limits, Policy, PolicyEngine, PolicyError, Source};
use bouncer_tests::{
    HOSTILE_POLICY, HOSTILE_WASI_POLICY, assert_failed_open, engine, fixture, load, run,
};
use serde_json::json;

fn hostile(engine: &Arc<PolicyEngine>, behaviour: &str, limits: Limits) -> Policy {
    let source = Source::File(HOSTILE_POLICY.into());
    engine
        .load(
            &format!("hostile-{behaviour}"),
            &source,
            &json!({ "behaviour": behaviour }),
            limits,
        )
        .expect("hostile policy loads")
}

fn evaluate(policy: &Policy) -> Result<bouncer::policy::Outcome, PolicyError> {
    let body = serde_json::to_vec(&fixture("ingress-create.json")).unwrap();
    let request = bouncer::admission::review::decode(&body).unwrap();
    policy.evaluate(&bouncer::admission::wit::to_wit(&request))
}

/// After any misbehaviour, a healthy policy in the same engine still answers.
fn assert_healthy_policy_still_works(engine: &Arc<PolicyEngine>) {
    let alb = load(
        engine,
        "alb-target-type-ip",
        "builtin:alb-target-type-ip",
        json!({}),
    )
    .unwrap();
    let result = run(
        &alb,
        &fixture("ingress-create.json"),
        Mode::Enforce,
        FailureMode::Closed,
        true,
    );
    assert_eq!(result["response"]["allowed"], true, "{result}");
}

#[test]
fn an_infinite_loop_ends_at_the_deadline() {
    let engine = engine();
    let limits = Limits {
        timeout: Duration::from_millis(50),
        ..Limits::default()
    };
    let error = evaluate(&hostile(&engine, "loop", limits)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deadline, "{error:?}");
    assert_eq!(error.policy(), Some("hostile-loop"));
    assert_eq!(error.to_string(), "did not answer within its 50ms deadline");
    assert_healthy_policy_still_works(&engine);
}

#[test]
fn unbounded_allocation_ends_at_the_memory_cap() {
    let engine = engine();
    let limits = Limits {
        memory: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let error = evaluate(&hostile(&engine, "alloc", limits)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Memory, "{error:?}");
    assert_eq!(
        error.to_string(),
        "tried to use more than its 16 MiB memory limit"
    );
    assert_healthy_policy_still_works(&engine);
}

#[test]
fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let engine = engine();
    let error = evaluate(&hostile(&engine, "panic", Limits::default())).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Trap, "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("stopped with an error: policy panicked at"),
        "{message}"
    );
    assert!(
        message.contains("hostile policy panicked on purpose"),
        "{message}"
    );
    assert_healthy_policy_still_works(&engine);
}

/// The same probes from a WASI component: every call reaches the host's WASI
/// (no `Unsupported`), which has no preopened directory, no environment, no
/// arguments and no sockets to give.
#[test]
fn a_wasi_policy_that_pries_for_files_env_args_and_sockets_is_refused_by_the_sandbox() {
    let engine = engine();
    // SAFETY: the variable only exists to prove it does not reach the guest.
    unsafe { std::env::set_var("BOUNCER_TEST_SECRET", "hunter2") };
    let policy = engine
        .load(
            "hostile-wasi-pry",
            &Source::File(HOSTILE_WASI_POLICY.into()),
            &json!({ "behaviour": "pry" }),
            Limits::default(),
        )
        .expect("the WASI hostile policy loads");
    let outcome = evaluate(&policy).unwrap();
    let message = outcome.message.unwrap();
    assert!(!message.contains("Unsupported"), "{message}");
    assert!(
        message.starts_with("file: NotFound; dir: NotFound;"),
        "{message}"
    );
    assert!(
        message.contains("HOME: nothing; secret: nothing; args: 0;"),
        "{message}"
    );
    assert!(!message.contains("connected"), "{message}");
    assert_healthy_policy_still_works(&engine);
}

#[test]
fn a_policy_that_pries_for_files_env_and_args_gets_nothing() {
    let engine = engine();
    // SAFETY: single-threaded at this point of the test; the variable only
    // exists to prove it does not reach the guest.
    unsafe { std::env::set_var("BOUNCER_TEST_SECRET", "hunter2") };
    let outcome = evaluate(&hostile(&engine, "pry", Limits::default())).unwrap();
    // Without WASI std has nothing to call: its stubs answer.
    assert_eq!(
        outcome.message.as_deref(),
        Some(
            "file: Unsupported; dir: Unsupported; HOME: nothing; secret: nothing; args: 0; \
             socket: Unsupported"
        )
    );
    let error = evaluate(&hostile(&engine, "list-env", Limits::default())).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Trap, "{error:?}");
    assert!(
        error.to_string().contains("not supported on this platform"),
        "{error}"
    );
    assert_healthy_policy_still_works(&engine);
}

#[test]
fn garbage_output_is_a_bad_verdict_naming_the_policy() {
    let engine = engine();
    let error = evaluate(&hostile(&engine, "garbage", Limits::default())).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadVerdict, "{error:?}");
    assert_eq!(error.policy(), Some("hostile-garbage"));
    assert!(
        error
            .to_string()
            .starts_with("returned an unusable verdict: the patched object is not JSON"),
        "{error}"
    );
    let error = evaluate(&hostile(&engine, "bad-code", Limits::default())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "returned an unusable verdict: status code 200 is not an HTTP error code (400-599)"
    );
    assert_healthy_policy_still_works(&engine);
}

#[test]
fn failure_modes_decide_what_a_broken_policy_means_for_the_request() {
    let engine = engine();
    let policy = hostile(&engine, "panic", Limits::default());
    let review = fixture("ingress-create.json");

    let closed = run(&policy, &review, Mode::Enforce, FailureMode::Closed, true);
    assert_eq!(closed["response"]["allowed"], false);
    assert_eq!(closed["response"]["status"]["code"], 500);
    let message = closed["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("hostile-panic: stopped with an error: policy panicked at"),
        "{message}"
    );
    assert!(message.ends_with("(failure mode: closed)"), "{message}");

    let open = run(&policy, &review, Mode::Enforce, FailureMode::Open, true);
    assert_failed_open(&open, "hostile-panic: stopped with an error:");
}

#[test]
fn a_patch_that_does_not_apply_is_a_policy_failure() {
    let engine = engine();
    let policy = hostile(&engine, "bad-patch", Limits::default());
    let result = run(
        &policy,
        &fixture("ingress-create.json"),
        Mode::Enforce,
        FailureMode::Closed,
        true,
    );
    assert_eq!(result["response"]["allowed"], false);
    let message = result["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("its JSON patch does not apply"),
        "{message}"
    );
}

#[test]
fn no_state_survives_between_evaluations() {
    let engine = engine();
    let policy = hostile(&engine, "count", Limits::default());
    for _ in 0..3 {
        let outcome = evaluate(&policy).unwrap();
        assert_eq!(outcome.warnings, vec!["calls: 1".to_owned()]);
    }
}

#[test]
fn settings_refused_by_the_policy_fail_the_load() {
    let engine = engine();
    let source = Source::File(HOSTILE_POLICY.into());
    let error = engine
        .load(
            "picky",
            &source,
            &json!({"behaviour": "reject-settings"}),
            Limits::default(),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "rejected its settings: hostile policy refuses these settings"
    );
}

#[test]
fn bytes_that_are_not_a_component_are_a_load_error() {
    let engine = engine();
    let error = engine
        .load(
            "junk",
            &Source::Bytes(b"\0asm not really".to_vec()),
            &json!({}),
            Limits::default(),
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Load);
    assert_eq!(error.policy(), Some("junk"));
    assert_eq!(error.to_string(), "not a valid WebAssembly component");
    let missing = engine
        .load(
            "gone",
            &Source::File("/no/such/policy.wasm".into()),
            &json!({}),
            Limits::default(),
        )
        .unwrap_err();
    assert_eq!(missing.to_string(), "cannot read /no/such/policy.wasm");
}
