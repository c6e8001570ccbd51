//! What a policy says about itself (the `metadata` export, WIT 0.1.2), and the
//! settings check its schema allows before the policy's own `validate-settings`.

use std::sync::Arc;

use serde::Serialize;

use super::bindings::bouncer::policy::types::{self as wit, Operation};
use super::lookup::ContextKind;

/// A policy's self-description: what it governs, whether it mutates, its settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Short name, such as `deny-latest-tag`.
    pub name: String,
    /// What the policy enforces.
    pub description: String,
    /// The policy's own version.
    pub version: String,
    /// The kinds it governs; empty means any kind.
    pub kinds: Vec<GovernedKinds>,
    /// The operations it judges (`CREATE`, …); empty means all.
    pub operations: Vec<String>,
    /// Whether it may return a mutation.
    pub mutating: bool,
    /// JSON Schema of its settings, when it declares one.
    pub settings_schema: Option<serde_json::Value>,
    /// The kinds it looks up in the cluster.
    pub context_kinds: Vec<ContextKind>,
    /// `settings_schema`, compiled once when the metadata is read.
    #[serde(skip)]
    validator: Option<Arc<jsonschema::Validator>>,
}

/// A set of kinds in a set of API groups, as a policy declares it governs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GovernedKinds {
    /// API groups; `""` is core, `*` any.
    pub api_groups: Vec<String>,
    /// Kinds; `*` any.
    pub kinds: Vec<String>,
}

impl Metadata {
    /// Converts the WIT record, parsing the schema text.
    ///
    /// # Errors
    /// The settings schema is not JSON, or not a JSON Schema a validator can compile.
    pub(crate) fn from_wit(raw: wit::PolicyMetadata) -> Result<Self, String> {
        let (settings_schema, validator) = match raw.settings_schema {
            None => (None, None),
            Some(text) => {
                let schema: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("its settings schema is not JSON: {e}"))?;
                let validator = jsonschema::validator_for(&schema)
                    .map_err(|e| format!("its settings schema is not a valid JSON Schema: {e}"))?;
                (Some(schema), Some(Arc::new(validator)))
            }
        };
        Ok(Self {
            name: raw.name,
            description: raw.description,
            version: raw.version,
            kinds: raw
                .kinds
                .into_iter()
                .map(|k| GovernedKinds {
                    api_groups: k.api_groups,
                    kinds: k.kinds,
                })
                .collect(),
            operations: raw
                .operations
                .iter()
                .map(|o| operation_name(*o).to_owned())
                .collect(),
            mutating: raw.mutating,
            settings_schema,
            context_kinds: raw
                .context_kinds
                .into_iter()
                .map(|k| ContextKind {
                    api_version: k.api_version,
                    kind: k.kind,
                })
                .collect(),
            validator,
        })
    }

    /// The governed kinds as kubectl names them: `Ingress.networking.k8s.io`, or
    /// `Service` for the core group.
    pub fn governed_kinds(&self) -> Vec<String> {
        self.kinds
            .iter()
            .flat_map(|rule| {
                rule.api_groups.iter().flat_map(move |group| {
                    rule.kinds.iter().map(move |kind| group_kind(group, kind))
                })
            })
            .collect()
    }

    /// Whether the policy governs `kind` in `group` (an empty declaration governs everything).
    pub fn governs(&self, group: &str, kind: &str) -> bool {
        self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                k.api_groups.iter().any(|g| g == "*" || g == group)
                    && k.kinds.iter().any(|k| k == "*" || k == kind)
            })
    }

    /// Checks settings against the declared schema; every violation, with its JSON path.
    ///
    /// # Errors
    /// One line per violation, such as `/maxReplicas: "ten" is not of type "integer"`.
    pub fn check_settings(&self, settings: &serde_json::Value) -> Result<(), Vec<String>> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        // A policy that takes no settings (`additionalProperties: false` and no
        // `properties`): jsonschema reports each key as a bare "False schema"
        // without naming it, so name the keys here, in its usual words.
        let takes_none = self.settings_schema.as_ref().is_some_and(|schema| {
            schema.get("additionalProperties") == Some(&serde_json::Value::Bool(false))
                && schema.get("properties").is_none()
        });
        if takes_none && let Some(keys) = settings.as_object().filter(|o| !o.is_empty()) {
            let unexpected: Vec<String> = keys.keys().map(|k| format!("'{k}'")).collect();
            return Err(vec![format!(
                "/: Additional properties are not allowed ({} {} unexpected): the policy takes no settings",
                unexpected.join(", "),
                if unexpected.len() == 1 { "was" } else { "were" }
            )]);
        }
        let problems: Vec<String> = validator
            .iter_errors(settings)
            .map(|error| {
                let path = error.instance_path().to_string();
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
                format!("{path}: {error}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// `Ingress.networking.k8s.io`, or `Service` for the core group, as kubectl names kinds.
pub fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

/// The admission name of an operation, as the API server spells it.
pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}
