//! What makes a NetworkPolicy a default-deny one, and the NetworkPolicies
//! bouncer's companion writes: the `default-deny-networkpolicy` rule and the
//! companion agree by construction, because both read this one definition
//! (the tests below hold the companion's objects to the rule's test).

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

/// The name of the default-deny NetworkPolicy the companion writes.
pub const DEFAULT_DENY_NAME: &str = "bouncer-default-deny";
/// The name of the allow-DNS NetworkPolicy it writes when egress is denied.
pub const ALLOW_DNS_NAME: &str = "bouncer-allow-dns";
/// The label on every object the companion owns, and its value.
pub const OWNED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "bouncer-companion");

/// Where the cluster's DNS runs: what the allow-DNS policy lets pods reach.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Dns {
    /// The namespace of the DNS pods.
    pub namespace: String,
    /// The labels of the DNS pods.
    pub pod_labels: BTreeMap<String, String>,
    /// The port, over UDP and TCP.
    pub port: u16,
}

impl Default for Dns {
    /// EKS's CoreDNS add-on: `k8s-app: kube-dns` pods in `kube-system`, port 53.
    fn default() -> Self {
        Self {
            namespace: "kube-system".into(),
            pod_labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
            port: 53,
        }
    }
}

fn owned_metadata(name: &str, namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "namespace": namespace,
        "labels": {OWNED_BY.0: OWNED_BY.1},
    })
}

/// The default-deny NetworkPolicy of `namespace` denying `types`: every pod,
/// no rules. What the rule accepts as default-deny ([`NetworkPolicy::denies_all`]).
pub fn default_deny(namespace: &str, types: &[String]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": owned_metadata(DEFAULT_DENY_NAME, namespace),
        "spec": {"podSelector": {}, "policyTypes": types},
    })
}

/// The policy that lets every pod of `namespace` reach the cluster's DNS,
/// needed once egress is denied. It allows egress only, so it does not
/// weaken the default-deny policy beside it.
pub fn allow_dns(namespace: &str, dns: &Dns) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": owned_metadata(ALLOW_DNS_NAME, namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": dns.namespace}},
                    "podSelector": {"matchLabels": dns.pod_labels},
                }],
                "ports": [
                    {"protocol": "UDP", "port": dns.port},
                    {"protocol": "TCP", "port": dns.port},
                ],
            }],
        },
    })
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

    #[test]
    fn what_the_companion_writes_is_what_the_rule_accepts() {
        for types in [both(), vec!["Ingress".into()], vec!["Egress".into()]] {
            let written: NetworkPolicy =
                serde_json::from_value(default_deny("team-a", &types)).unwrap();
            assert!(written.denies_all(&types), "{types:?}");
            assert_eq!(written.name(), DEFAULT_DENY_NAME);
        }
        // The DNS policy is not a default-deny one, and does not weaken one: it
        // only allows egress, which the default-deny policy beside it denies.
        let dns: NetworkPolicy =
            serde_json::from_value(allow_dns("team-a", &Dns::default())).unwrap();
        assert!(!dns.denies_all(&both()));
        let written = allow_dns("team-a", &Dns::default());
        assert_eq!(
            written["spec"]["policyTypes"],
            serde_json::json!(["Egress"])
        );
        assert_eq!(written["spec"]["egress"][0]["ports"][0]["port"], 53);
        assert_eq!(written["metadata"]["labels"][OWNED_BY.0], OWNED_BY.1);
    }
}
