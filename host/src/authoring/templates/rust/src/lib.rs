//! {{name}}: {{description}}

use bouncer_sdk::serde_json::Value;
use bouncer_sdk::{Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge};
use serde::Deserialize;

/// Settings, from the policy's entry in policies.yaml. Doc comments become the
/// descriptions `bouncer inspect` shows; the host checks settings against the
/// JSON Schema derived from this type before `validate_settings` runs.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Labels every governed object must carry.
    pub required_labels: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            required_labels: vec!["owner".to_owned()],
        }
    }
}

/// The policy.
pub struct ThisPolicy;

impl Policy for ThisPolicy {
    type Settings = Settings;

    /// What the policy governs: the host warns when a configuration entry sends it other kinds.
    fn metadata() -> Metadata {
        Metadata::new()
            .governs(&[""], &["Pod"])
            .governs(&["apps"], &["Deployment"])
            .operations(&[Operation::Create, Operation::Update])
    }

    /// What a schema cannot say about the settings.
    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        match settings.required_labels.iter().find(|l| l.is_empty()) {
            Some(_) => Err("requiredLabels: a label name cannot be empty".into()),
            None => Ok(()),
        }
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        // judge() skips deletes and sub-resources, and on UPDATE refuses only
        // problems the update introduces (existing ones become warnings).
        judge(request, |object: &Value| {
            let mut findings = Findings::default();
            let labels = &object["metadata"]["labels"];
            for label in &settings.required_labels {
                if labels.get(label).is_none() {
                    findings.deny(format!(
                        "{} {} has no `{label}` label",
                        request.kind.kind,
                        request.object_ref()
                    ));
                }
            }
            findings
        })
    }
}

export_policy!(ThisPolicy);
