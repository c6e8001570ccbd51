//! What makes a NetworkPolicy a default-deny one.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The parts of a NetworkPolicy this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkPolicy {
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    pod_selector: Selector,
    policy_types: Option<Vec<String>>,
    ingress: Vec<serde_json::Value>,
    egress: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
    match_expressions: Vec<serde_json::Value>,
}

impl NetworkPolicy {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether it selects every pod and denies all traffic of each `types`.
    pub fn denies_all(&self, types: &[String]) -> bool {
        let spec = &self.spec;
        let all_pods = spec.pod_selector.match_labels.is_empty()
            && spec.pod_selector.match_expressions.is_empty();
        // Without policyTypes, Kubernetes infers Ingress, plus Egress when egress rules exist.
        let effective: Vec<&str> = match &spec.policy_types {
            Some(types) => types.iter().map(String::as_str).collect(),
            None if spec.egress.is_empty() => vec!["Ingress"],
            None => vec!["Ingress", "Egress"],
        };
        all_pods
            && types.iter().all(|t| {
                effective.contains(&t.as_str())
                    && match t.as_str() {
                        "Ingress" => spec.ingress.is_empty(),
                        "Egress" => spec.egress.is_empty(),
                        _ => false,
                    }
            })
    }
}

/// `[Ingress, Egress]`.
pub fn types_list(types: &[String]) -> String {
    format!("[{}]", types.join(", "))
}

/// The NetworkPolicy to create, as one line of YAML a person can paste.
pub fn example(namespace: &str, types: &[String]) -> String {
    format!(
        "{{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {{name: default-deny, namespace: {namespace}}}, \
         spec: {{podSelector: {{}}, policyTypes: {}}}}}",
        types_list(types)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}, "spec": spec}))
            .unwrap()
    }

    fn both() -> Vec<String> {
        vec!["Ingress".into(), "Egress".into()]
    }

    #[test]
    fn default_deny_needs_every_pod_every_type_and_no_rules() {
        assert!(
            policy(serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
                .denies_all(&both())
        );
        assert!(
            !policy(serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress"]}))
                .denies_all(&both())
        );
        assert!(policy(serde_json::json!({"podSelector": {}})).denies_all(&["Ingress".into()]));
        assert!(!policy(serde_json::json!({"podSelector": {"matchLabels": {"a": "b"}}, "policyTypes": ["Ingress", "Egress"]})).denies_all(&both()));
        assert!(!policy(serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]})).denies_all(&both()));
    }
}
