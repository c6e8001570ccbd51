//! The contract across versions: components built against an older
//! `bouncer:policy@0.1.x` keep loading, and every built-in describes itself.

use bouncer::config::{FailureMode, Mode};
use bouncer::policy::{BUILTINS, Source};
use bouncer_tests::{LEGACY_POLICY, engine, fixture, load, run};
use serde_json::json;

#[test]
fn a_policy_built_against_wit_0_1_1_loads_without_metadata_and_runs() {
    let engine = engine();
    let policy =
        load(&engine, "legacy", LEGACY_POLICY, json!({})).expect("a 0.1.1 component loads");
    assert!(policy.metadata().is_none());

    let response = run(
        &policy,
        &fixture("deployment-create.json"),
        Mode::Enforce,
        FailureMode::Closed,
        false,
    );
    let response = &response["response"];
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("legacy 0.1.1 policy refuses report-generator"),
        "{message}"
    );

    let description = engine
        .describe("legacy", &Source::parse(LEGACY_POLICY).unwrap())
        .unwrap();
    assert!(description.metadata.is_none());
    assert!(!description.imports_wasi);
}

#[test]
fn every_builtin_describes_itself_and_accepts_empty_settings_by_its_schema() {
    let engine = engine();
    for builtin in BUILTINS {
        let source = Source::builtin(builtin.name).unwrap();
        let description = engine.describe(builtin.name, &source).unwrap();
        let metadata = description
            .metadata
            .unwrap_or_else(|| panic!("built-in `{}` has no metadata", builtin.name));
        assert_eq!(metadata.name, builtin.name);
        assert_eq!(metadata.description, builtin.description);
        assert!(
            !metadata.kinds.is_empty(),
            "{} governs no kinds",
            builtin.name
        );
        assert!(metadata.settings_schema.is_some(), "{}", builtin.name);
        assert_eq!(
            metadata.check_settings(&json!({})),
            Ok(()),
            "{}",
            builtin.name
        );
        // Unknown keys are refused by the schema (deny_unknown_fields), with their path.
        let problems = metadata
            .check_settings(&json!({"noSuchSetting": 1}))
            .unwrap_err();
        assert!(problems[0].contains("noSuchSetting"), "{problems:?}");
    }
}
