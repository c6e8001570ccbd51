//! The seven house rules refuse bad settings at load, naming the setting, and
//! each loads with its defaults. Their behaviour on requests is covered by the
//! suites next to each crate (`bouncer test policies/`, run by host/tests/all/offline.rs).

use bouncer::policy::BUILTINS;
use bouncer_tests::{engine, load};
use serde_json::json;

#[test]
fn every_house_rule_loads_with_its_defaults_and_refuses_unknown_settings() {
    let engine = engine();
    for builtin in BUILTINS {
        let source = format!("builtin:{}", builtin.name);
        load(&engine, builtin.name, &source, json!({}))
            .unwrap_or_else(|e| panic!("{} with defaults: {e}", builtin.name));
        let error = load(&engine, builtin.name, &source, json!({"colour": "blue"}))
            .expect_err(builtin.name);
        assert_eq!(error.policy(), Some(builtin.name));
        let error = error.to_string();
        assert!(
            error.contains("settings schema") && error.contains("'colour' was unexpected"),
            "{}: {error}",
            builtin.name
        );
    }
}

#[test]
fn bad_settings_are_refused_naming_the_setting() {
    let cases = [
        (
            "alb-target-type-ip",
            json!({"albClassNames": []}),
            "albClassNames must name at least one",
        ),
        (
            "ingress-tls",
            json!({"allowedAccounts": ["1234"]}),
            "allowedAccounts: `1234` is not a 12-digit AWS account",
        ),
        (
            "lb-scheme",
            json!({"publicNamespaces": ["team-["]}),
            "publicNamespaces: `team-[` is not a valid glob",
        ),
        (
            "aws-lb-controller-only",
            // Gone: the entry's `match.namespaces.exclude` does this.
            json!({"exemptNamespaces": ["legacy-*"]}),
            "exemptNamespaces",
        ),
        (
            "require-irsa",
            json!({"allowedAccounts": ["abcdefghijkl"]}),
            "allowedAccounts: `abcdefghijkl`",
        ),
        (
            "require-irsa",
            json!({"hostNetworkNamespaces": ["a["]}),
            "hostNetworkNamespaces",
        ),
        (
            "gateway-ownership",
            json!({"allowedGateways": ["public"]}),
            "allowedGateways: `public` is not `namespace/name`",
        ),
        (
            "security-group-policy",
            json!({"allowedGroupIds": ["sg-nothex00"]}),
            "allowedGroupIds: `sg-nothex00` is not a security group ID",
        ),
        (
            "ingress-tls",
            json!({"allowHttpListeners": "yes"}),
            "/allowHttpListeners: \"yes\" is not of type \"boolean\"",
        ),
    ];
    let engine = engine();
    for (policy, settings, expected) in cases {
        let error = load(&engine, policy, &format!("builtin:{policy}"), settings)
            .expect_err(policy)
            .to_string();
        assert!(error.contains(expected), "{policy}: {error}");
    }
}
