//! What in a pod spec gives away AWS credentials. Where each workload kind
//! keeps its pod spec is the SDK's `workload`.

use bouncer_sdk::Findings;
use bouncer_sdk::workload::Workload;
use serde::Deserialize;

use crate::Settings;

/// The pod spec inside an object of `workload`'s kind, or `None` when it has none.
pub fn pod_spec(
    workload: Workload,
    object: &serde_json::Value,
) -> Result<Option<PodSpec>, serde_json::Error> {
    workload
        .pod_spec(object)
        .map(PodSpec::deserialize)
        .transpose()
}

/// The parts of a pod spec this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    service_account_name: Option<String>,
    service_account: Option<String>,
    host_network: bool,
    containers: Vec<Container>,
    init_containers: Vec<Container>,
    ephemeral_containers: Vec<Container>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Container {
    name: String,
    env: Vec<EnvVar>,
    env_from: Vec<EnvFrom>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EnvVar {
    name: String,
    value: Option<String>,
    value_from: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EnvFrom {
    secret_ref: Option<NameRef>,
    config_map_ref: Option<NameRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NameRef {
    name: String,
}

impl PodSpec {
    /// Containers, init containers and ephemeral containers.
    fn all_containers(&self) -> impl Iterator<Item = &Container> {
        [
            &self.containers,
            &self.init_containers,
            &self.ephemeral_containers,
        ]
        .into_iter()
        .flatten()
    }

    /// Whether any container sets the environment variable `name`.
    pub fn has_env(&self, name: &str) -> bool {
        self.all_containers()
            .any(|c| c.env.iter().any(|v| v.name == name))
    }

    /// `(container, ConfigMap)` for every ConfigMap a container loads with `envFrom`.
    pub fn env_from_config_maps(&self) -> Vec<(&str, &str)> {
        self.all_containers()
            .flat_map(|c| {
                c.env_from
                    .iter()
                    .filter_map(|e| e.config_map_ref.as_ref())
                    .map(|r| (c.name.as_str(), r.name.as_str()))
            })
            .collect()
    }

    /// The ServiceAccount the pods run as (`default` when none is named).
    pub fn account(&self) -> &str {
        self.service_account_name
            .as_deref()
            .or(self.service_account.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    }
}

/// Checks one pod spec of the workload `object` in `namespace`.
pub fn check(
    object: &str,
    name: &str,
    namespace: &str,
    pod: &PodSpec,
    settings: &Settings,
    findings: &mut Findings,
) {
    let all = [
        ("container", &pod.containers),
        ("init container", &pod.init_containers),
        ("ephemeral container", &pod.ephemeral_containers),
    ];
    for (what, containers) in all {
        for container in containers {
            for var in &container.env {
                let how = if crate::keys::is_aws_name(&var.name) {
                    if var.value_from.is_some() {
                        "from a reference"
                    } else {
                        "as a literal"
                    }
                } else if var
                    .value
                    .as_deref()
                    .is_some_and(crate::keys::has_access_key_id)
                {
                    "to a literal AWS access key ID (AKIA…/ASIA…)"
                } else {
                    continue;
                };
                findings.deny(format!(
                    "{object} {what} `{}` sets `{}` {how}: static AWS keys are not allowed; \
                     annotate its ServiceAccount with `eks.amazonaws.com/role-arn` (IRSA) and remove the variable",
                    container.name, var.name
                ));
            }
            for source in &container.env_from {
                if let Some(secret) = &source.secret_ref
                    && settings.forbidden_secret_names.contains(&secret.name)
                {
                    findings.deny(format!(
                        "{object} {what} `{}` loads Secret `{}` with `envFrom`, and that Secret holds AWS keys \
                         (forbiddenSecretNames); use IRSA instead",
                        container.name, secret.name
                    ));
                }
            }
        }
    }
    if pod.host_network
        && !bouncer_eks::matches_any(&settings.host_network_namespaces, namespace)
        && !bouncer_eks::matches_any(&settings.host_network_workloads, name)
    {
        findings.deny(format!(
            "{object} sets `hostNetwork: true` in namespace `{namespace}`: on the host network a pod reaches \
             the node's instance metadata and its IAM role; remove it, or run it in a namespace listed in \
             hostNetworkNamespaces (or name the workload in hostNetworkWorkloads)"
        ));
    }
    if bouncer_eks::matches_any(&settings.require_service_account_in, namespace)
        && pod.account() == "default"
    {
        findings.deny(format!(
                "{object} runs as the `default` ServiceAccount in namespace `{namespace}`, where workloads must \
                 name their own (requireServiceAccountIn); set `serviceAccountName` to a ServiceAccount with an \
                 IRSA role"
            ));
    }
}
