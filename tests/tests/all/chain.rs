//! The offline admission chain (`bouncer test`, `bouncer check`): mutating
//! webhook, then validating webhook on the mutated object, with real components
//! and the captured pod review whose object the mutating call sends incomplete.

use bouncer::admission::admit;
use bouncer::admission::synthetic::{RequestSpec, build};
use bouncer::admission::{PolicySet, Pulls, loader, review};
use bouncer::config::{Config, ConfigSource};
use bouncer::context::{Cluster, NoCluster};
use bouncer_tests::{engine, fixture};
use serde_json::json;

fn no_cluster() -> std::sync::Arc<dyn Cluster> {
    std::sync::Arc::new(NoCluster)
}

fn set(yaml: &str) -> PolicySet {
    let config = Config::from_yaml(yaml, "<test>", std::path::Path::new(".")).unwrap();
    let source = ConfigSource::Given(Box::new(config), "<test>".into());
    loader::load(&engine(), &source, Pulls::Now)
        .unwrap()
        .strict()
        .unwrap()
        .set
}

const MUTATE_THEN_REPORT: &str = "
policies:
  - name: fix
    source: builtin:alb-target-type-ip
    settings: {mutate: true}
  - name: report
    source: builtin:alb-target-type-ip
    mode: monitor
";

fn ingress(annotations: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "annotations": annotations},
        "spec": {"ingressClassName": "alb"}
    })
}

#[test]
fn validation_sees_the_object_the_mutating_phase_made() {
    let set = set(MUTATE_THEN_REPORT);
    let request = build(&RequestSpec::create(ingress(json!({})), "shop"), "u1").unwrap();
    let admission = admit(&set, &request, &no_cluster());
    assert!(admission.allowed(), "{:?}", admission.response);
    let patched = admission.patched.as_ref().expect("patched");
    assert_eq!(
        patched["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"],
        "ip"
    );
    let fix = &admission.policies[0];
    assert_eq!(
        (fix.policy.as_str(), fix.mutated, fix.allowed()),
        ("fix", true, true)
    );
    // `report` runs after `fix`, on the patched object, in both phases: nothing to say.
    let report = &admission.policies[1];
    assert_eq!((report.allowed(), report.message.as_deref()), (true, None));
    // The patch the API server gets takes the object as sent to the result.
    assert!(admission.response.patch.is_some());
}

#[test]
fn a_warning_given_in_both_phases_is_reported_once() {
    let set = set(MUTATE_THEN_REPORT);
    let explicit = ingress(json!({"alb.ingress.kubernetes.io/target-type": "instance"}));
    let request = build(&RequestSpec::create(explicit, "shop"), "u2").unwrap();
    let admission = admit(&set, &request, &no_cluster());
    // `fix` denies on /mutate: the API server stops there.
    assert!(!admission.allowed());
    assert!(
        admission
            .response
            .result
            .message
            .starts_with("fix: Ingress shop/web")
    );

    let report_only = self::set(
        "policies:\n  - name: report\n    source: builtin:alb-target-type-ip\n    mode: monitor\n",
    );
    let explicit = ingress(json!({"alb.ingress.kubernetes.io/target-type": "instance"}));
    let request = build(&RequestSpec::create(explicit, "shop"), "u3").unwrap();
    let admission = admit(&report_only, &request, &no_cluster());
    assert!(admission.allowed());
    let warnings = admission.response.warnings.clone().unwrap_or_default();
    // The finding once, and once the note that the IngressClass was guessed.
    let findings: Vec<_> = warnings
        .iter()
        .filter(|w| w.starts_with("report: Ingress shop/web"))
        .collect();
    assert_eq!(findings.len(), 1, "{warnings:?}");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(admission.policies.len(), 1);
    assert_eq!(admission.policies[0].warnings.len(), 2);
}

#[test]
fn a_captured_review_with_an_incomplete_object_goes_through_the_chain() {
    // The mutating call for a generateName pod: no name, no uid yet.
    let body = fixture("pod-create-generatename-mutate.json").to_string();
    let request = review::decode(body.as_bytes()).unwrap();
    let admission = admit(&set(MUTATE_THEN_REPORT), &request, &no_cluster());
    assert!(admission.allowed());
    assert!(admission.patched.is_none());
    assert!(admission.policies.iter().all(|p| p.allowed() && !p.mutated));
}
