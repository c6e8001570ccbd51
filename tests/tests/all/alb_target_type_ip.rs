use bouncer::config::{FailureMode, Mode};
use bouncer::policy::PolicyError;
use bouncer_tests::{apply_patch, engine, fixture, load, run, set_annotation};
use serde_json::{Value, json};

const INGRESS_ANNOTATION: &str = "alb.ingress.kubernetes.io/target-type";
const SERVICE_ANNOTATION: &str = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";

fn policy(settings: Value) -> bouncer::policy::Policy {
    load(
        &engine(),
        "alb-target-type-ip",
        "builtin:alb-target-type-ip",
        settings,
    )
    .expect("policy loads")
}

fn validate(review: &Value, settings: Value) -> Value {
    run(
        &policy(settings),
        review,
        Mode::Enforce,
        FailureMode::Closed,
        true,
    )
}

fn response(result: &Value) -> &Value {
    &result["response"]
}

/// The four captured reviews the rule governs, with their annotation key.
fn governed() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ingress-create.json", INGRESS_ANNOTATION),
        ("ingress-update.json", INGRESS_ANNOTATION),
        ("service-create.json", SERVICE_ANNOTATION),
        ("service-update.json", SERVICE_ANNOTATION),
    ]
}

#[test]
fn compliant_ingress_and_service_are_allowed_on_create_and_update() {
    for (file, _) in governed() {
        let review = fixture(file);
        let result = validate(&review, json!({}));
        let response = response(&result);
        assert_eq!(response["allowed"], true, "{file}: {result}");
        assert_eq!(
            response["uid"], review["request"]["uid"],
            "{file}: uid echoed"
        );
        assert!(response.get("patch").is_none(), "{file}: no patch");
        assert!(response.get("warnings").is_none(), "{file}: no warnings");
    }
}

#[test]
fn missing_annotation_is_denied_with_403_and_the_fix() {
    for (file, key) in governed() {
        let mut review = fixture(file);
        set_annotation(&mut review, key, None);
        let result = validate(&review, json!({}));
        let response = response(&result);
        assert_eq!(response["allowed"], false, "{file}");
        assert_eq!(response["status"]["code"], 403, "{file}");
        let message = response["status"]["message"].as_str().unwrap();
        let kind = review["request"]["kind"]["kind"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("alb-target-type-ip: {kind} web/")),
            "{file}: {message}"
        );
        // The captured Service is `aws-load-balancer-type: external`: without a
        // target type nobody provisions it (docs/guide/service/nlb.md).
        let why = if kind == "Service" {
            "neither the in-tree provider nor the AWS Load Balancer Controller provisions it"
                .to_owned()
        } else {
            format!("has no `{key}` annotation")
        };
        assert!(message.contains(&why), "{file}: {message}");
        assert!(
            message.contains(&format!("set the annotation `{key}: ip`")),
            "{file}: {message}"
        );
    }
}

#[test]
fn instance_target_type_is_denied_and_never_overwritten_even_when_mutating() {
    for (file, key) in governed() {
        let mut review = fixture(file);
        set_annotation(&mut review, key, Some("instance"));
        let result = validate(&review, json!({"mutate": true}));
        let response = response(&result);
        assert_eq!(response["allowed"], false, "{file}");
        assert!(response.get("patch").is_none(), "{file}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("sets `{key}: instance`")),
            "{file}: {message}"
        );
    }
}

#[test]
fn unknown_target_type_value_is_denied_with_the_value_found() {
    let mut review = fixture("ingress-create.json");
    set_annotation(&mut review, INGRESS_ANNOTATION, Some("pod"));
    let result = validate(&review, json!({}));
    let message = response(&result)["status"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("\"pod\""), "{message}");
}

#[test]
fn mutate_adds_ip_warns_and_the_patch_gives_the_expected_object() {
    for (file, key) in governed() {
        let mut review = fixture(file);
        set_annotation(&mut review, key, None);
        let result = validate(&review, json!({"mutate": true}));
        let response = response(&result);
        assert_eq!(response["allowed"], true, "{file}: {result}");
        assert_eq!(response["patchType"], "JSONPatch", "{file}");
        let warnings = response["warnings"].as_array().expect("a warning");
        // Besides the patch's warning, an Ingress judged without its IngressClass says so.
        let (added, others): (Vec<_>, Vec<_>) = warnings
            .iter()
            .filter_map(Value::as_str)
            .partition(|w| w.contains(&format!("bouncer added `{key}: ip`")));
        assert_eq!(added.len(), 1, "{file}: {warnings:?}");
        assert!(
            others
                .iter()
                .all(|w| w.contains("judged as an ALB Ingress because `albClassNames` lists `alb`")),
            "{file}: {warnings:?}"
        );

        let original = &review["request"]["object"];
        let mut expected = original.clone();
        expected["metadata"]["annotations"][key] = json!("ip");
        assert_eq!(apply_patch(&result, original), expected, "{file}");

        // Idempotent: the patched object passes with no further patch.
        let mut again = review.clone();
        again["request"]["object"] = expected;
        let second = validate(&again, json!({"mutate": true}));
        assert_eq!(second["response"]["allowed"], true);
        assert!(
            second["response"].get("patch").is_none(),
            "{file}: second pass patched again"
        );
    }
}

#[test]
fn mutate_creates_the_annotations_map_when_the_object_has_none() {
    let mut review = fixture("ingress-create.json");
    review["request"]["object"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let result = validate(&review, json!({"mutate": true}));
    let patched = apply_patch(&result, &review["request"]["object"]);
    assert_eq!(
        patched["metadata"]["annotations"],
        json!({INGRESS_ANNOTATION: "ip"})
    );
}

#[test]
fn monitor_mode_turns_the_denial_into_a_warning() {
    let mut review = fixture("service-create.json");
    set_annotation(&mut review, SERVICE_ANNOTATION, None);
    let result = run(
        &policy(json!({})),
        &review,
        Mode::Monitor,
        FailureMode::Closed,
        false,
    );
    let response = response(&result);
    assert_eq!(response["allowed"], true);
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("alb-target-type-ip: Service web/webapp-service"),
        "{warning}"
    );
}

#[test]
fn a_validating_call_never_patches() {
    let mut review = fixture("ingress-create.json");
    set_annotation(&mut review, INGRESS_ANNOTATION, None);
    let result = run(
        &policy(json!({"mutate": true})),
        &review,
        Mode::Enforce,
        FailureMode::Closed,
        false,
    );
    assert_eq!(response(&result)["allowed"], true);
    assert!(response(&result).get("patch").is_none());
}

#[test]
fn legacy_ingress_class_annotation_and_custom_class_names_count() {
    let mut review = fixture("ingress-create.json");
    review["request"]["object"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("ingressClassName");
    set_annotation(&mut review, INGRESS_ANNOTATION, None);
    // No class at all: not an ALB Ingress.
    assert_eq!(validate(&review, json!({}))["response"]["allowed"], true);
    set_annotation(&mut review, "kubernetes.io/ingress.class", Some("alb"));
    assert_eq!(validate(&review, json!({}))["response"]["allowed"], false);

    let mut custom = fixture("ingress-create.json");
    set_annotation(&mut custom, INGRESS_ANNOTATION, None);
    custom["request"]["object"]["spec"]["ingressClassName"] = json!("internal-alb");
    assert_eq!(validate(&custom, json!({}))["response"]["allowed"], true);
    let settings = json!({"albClassNames": ["alb", "internal-alb"]});
    assert_eq!(validate(&custom, settings)["response"]["allowed"], false);
}

#[test]
fn services_not_handled_by_the_controller_are_ignored() {
    let mut review = fixture("service-create.json");
    set_annotation(&mut review, SERVICE_ANNOTATION, None);
    set_annotation(
        &mut review,
        "service.beta.kubernetes.io/aws-load-balancer-type",
        None,
    );
    assert_eq!(validate(&review, json!({}))["response"]["allowed"], true);
    review["request"]["object"]["spec"]["loadBalancerClass"] = json!("service.k8s.aws/nlb");
    assert_eq!(validate(&review, json!({}))["response"]["allowed"], false);
}

#[test]
fn deletes_subresources_and_other_kinds_pass() {
    for file in [
        "ingress-delete.json",
        "deployment-scale-update.json",
        "deployment-create.json",
        "pod-create-kubectl-run.json",
    ] {
        let result = validate(&fixture(file), json!({}));
        assert_eq!(result["response"]["allowed"], true, "{file}: {result}");
    }
}

#[test]
fn bad_settings_are_refused_by_the_schema_or_the_policys_message() {
    let engine = engine();
    let cases = [
        (
            json!({"albClassNames": []}),
            "albClassNames must name at least one ingress class",
        ),
        (
            json!({"albClassNames": [""]}),
            "albClassNames must not contain an empty class name",
        ),
        // Type and key errors are caught by the schema the policy declares,
        // before its own validate-settings runs.
        (
            json!({"mutate": "yes"}),
            "they do not match its settings schema:\n  /mutate: \"yes\" is not of type \"boolean\"",
        ),
        (json!({"mutat": true}), "'mutat' was unexpected"),
    ];
    for (settings, expected) in cases {
        let error = load(
            &engine,
            "alb",
            "builtin:alb-target-type-ip",
            settings.clone(),
        )
        .unwrap_err();
        match &error {
            PolicyError::Settings { policy, message } => {
                assert_eq!(policy, "alb");
                assert!(message.contains(expected), "{settings}: {message}");
            }
            other => panic!("{settings}: expected a settings error, got {other:?}"),
        }
        assert!(error.to_string().starts_with("rejected its settings: "));
    }
}
