//! `require-irsa`: workloads get AWS credentials from an IAM role bound to
//! their ServiceAccount (IRSA), never from static keys or the node.
//!
//! Static keys in an environment variable leak through `kubectl describe`,
//! crash dumps and CI logs, and never rotate. A pod on the host network can
//! reach the node's instance metadata and act as the node's role, which is
//! every pod's role at once. IRSA gives each ServiceAccount its own role,
//! with short-lived tokens.

mod stored;
mod workload;

use bouncer_eks::Metadata;
use bouncer_eks::arn::iam_role;
use bouncer_eks::names::{ROLE_ARN, TOKEN_EXPIRATION};
use bouncer_sdk::workload::Workload;
use bouncer_sdk::{Findings, Operation, Policy, Request, Result, Verdict, export_policy, judge};
use serde::Deserialize;

/// Settings of `require-irsa`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// AWS accounts (12 digits) whose roles ServiceAccounts may assume; any when empty.
    pub allowed_accounts: Vec<String>,
    /// Secrets that hold AWS keys: containers may not load them with `envFrom`.
    pub forbidden_secret_names: Vec<String>,
    /// Namespaces (globs) where `hostNetwork: true` is allowed.
    pub host_network_namespaces: Vec<String>,
    /// Namespaces (globs) whose workloads must name a ServiceAccount other than `default`.
    pub require_service_account_in: Vec<String>,
    /// Look up the ConfigMaps containers load with `envFrom` and deny those holding AWS
    /// keys (a cluster lookup: declare `context: [{apiVersion: v1, kind: ConfigMap}]`).
    pub inspect_env_from_config_maps: bool,
    /// Namespaces (globs) whose workloads must run as a ServiceAccount that exists and
    /// carries a valid `eks.amazonaws.com/role-arn` (a cluster lookup: declare
    /// `context: [{apiVersion: v1, kind: ServiceAccount}]`).
    pub require_role_in: Vec<String>,
}

/// The policy.
pub struct RequireIrsa;

impl Policy for RequireIrsa {
    type Settings = Settings;

    fn metadata() -> bouncer_sdk::Metadata {
        bouncer_sdk::Metadata::new()
            .governs(&[""], &["ServiceAccount", "Secret"])
            .governs_workloads()
            .operations(&[Operation::Create, Operation::Update])
            .context("v1", "ServiceAccount")
            .context("v1", "ConfigMap")
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_accounts(&settings.allowed_accounts)?;
        bouncer_eks::check_globs("hostNetworkNamespaces", &settings.host_network_namespaces)?;
        bouncer_eks::check_globs(
            "requireServiceAccountIn",
            &settings.require_service_account_in,
        )?;
        bouncer_eks::check_globs("requireRoleIn", &settings.require_role_in)
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        if request.is_kind("", "ServiceAccount") {
            let object = format!("ServiceAccount {}", request.object_ref());
            return judge(request, |sa: &ServiceAccount| {
                check_service_account(&object, &sa.metadata, settings)
            });
        }
        if request.is_kind("", "Secret") {
            let object = format!("Secret {}", request.object_ref());
            return judge(request, |secret: &stored::Secret| {
                let mut findings = Findings::new();
                for what in stored::keys_in_secret(secret) {
                    findings.deny(format!(
                        "{object} holds {what}: static AWS keys are not allowed in the cluster; give the \
                         workload an IAM role instead (IRSA: `{ROLE_ARN}` on its ServiceAccount)"
                    ));
                }
                findings
            });
        }
        let Some(kind) = Workload::of_request(request) else {
            return Ok(Verdict::allow());
        };
        if request.made_by_builtin_controller()? {
            return Ok(Verdict::allow());
        }
        let object = format!("{} {}", request.kind.kind, request.object_ref());
        let namespace = request.namespace.clone().unwrap_or_default();
        // A lookup that fails is the policy failing (its failure mode decides), not a denial.
        let lookup_error = std::cell::RefCell::new(None);
        let verdict = judge(request, |value: &serde_json::Value| {
            let mut findings = Findings::new();
            match workload::pod_spec(kind, value) {
                Ok(Some(pod)) => {
                    workload::check(&object, &namespace, &pod, settings, &mut findings);
                    if settings.inspect_env_from_config_maps
                        && let Err(error) =
                            check_config_maps(&object, &namespace, &pod, &mut findings)
                    {
                        lookup_error.borrow_mut().get_or_insert(error);
                    }
                    if bouncer_eks::matches_any(&settings.require_role_in, &namespace)
                        && let Err(error) =
                            check_role(&object, &namespace, pod.account(), settings, &mut findings)
                    {
                        lookup_error.borrow_mut().get_or_insert(error);
                    }
                }
                Ok(None) => {}
                Err(error) => findings.deny(format!(
                    "{object} has a pod spec bouncer cannot read: {error}"
                )),
            }
            findings
        })?;
        match lookup_error.into_inner() {
            Some(error) => Err(error),
            None => Ok(verdict),
        }
    }
}

/// The ConfigMaps the containers load with `envFrom` must not hold AWS keys.
/// One that does not exist (yet) is not judged: the kubelet will not start
/// the pod without it, and it is judged when a workload is next written.
fn check_config_maps(
    object: &str,
    namespace: &str,
    pod: &workload::PodSpec,
    findings: &mut Findings,
) -> Result<()> {
    for (container, name) in pod.env_from_config_maps() {
        let found: Option<stored::ConfigMap> =
            bouncer_sdk::context::get("v1", "ConfigMap", Some(namespace), name)?;
        for what in found
            .as_ref()
            .map(stored::keys_in_config_map)
            .unwrap_or_default()
        {
            findings.deny(format!(
                "{object} container `{container}` loads ConfigMap `{name}` with `envFrom`, and it holds \
                 {what}: static AWS keys are not allowed; remove them and give the workload an IAM role \
                 (IRSA: `{ROLE_ARN}` on its ServiceAccount)"
            ));
        }
    }
    Ok(())
}

/// The workload's ServiceAccount must exist and carry a valid, allowed role.
fn check_role(
    object: &str,
    namespace: &str,
    account: &str,
    settings: &Settings,
    findings: &mut Findings,
) -> Result<()> {
    let found: Option<ServiceAccount> =
        bouncer_sdk::context::get("v1", "ServiceAccount", Some(namespace), account)?;
    let Some(sa) = found else {
        findings.deny(format!(
            "{object} runs as ServiceAccount `{account}`, which does not exist in namespace `{namespace}`; \
             workloads there need an IAM role (requireRoleIn): create the ServiceAccount with \
             `{ROLE_ARN}` first"
        ));
        return Ok(());
    };
    let problems = check_service_account(
        &format!("its ServiceAccount `{account}`"),
        &sa.metadata,
        settings,
    );
    if sa.metadata.annotation(ROLE_ARN).is_none() {
        findings.deny(format!(
            "{object} runs as ServiceAccount `{account}`, which has no `{ROLE_ARN}` annotation; \
             workloads in namespace `{namespace}` need an IAM role (requireRoleIn)"
        ));
    } else if let Some(problem) = problems.denials.first() {
        findings.deny(format!("{object}: {problem}"));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceAccount {
    metadata: Metadata,
}

fn check_service_account(object: &str, meta: &Metadata, settings: &Settings) -> Findings {
    let mut findings = Findings::new();
    if let Some(arn) = meta.annotation(ROLE_ARN) {
        match iam_role(arn) {
            Err(why) => findings.deny(format!(
                "{object} sets `{ROLE_ARN}: {arn:?}`, which is not an IAM role ARN ({why}); \
                 use arn:<partition>:iam::<account>:role/<name>"
            )),
            Ok(role)
                if !settings.allowed_accounts.is_empty()
                    && !settings.allowed_accounts.iter().any(|a| a == role.account) =>
            {
                findings.deny(format!(
                    "{object} assumes role `{arn}` in account {}, which is not one of the allowed accounts {:?}",
                    role.account, settings.allowed_accounts
                ));
            }
            Ok(_) => {}
        }
    }
    if let Some(text) = meta.annotation(TOKEN_EXPIRATION) {
        match text.trim().parse::<u64>() {
            Ok(seconds) if (3600..=86400).contains(&seconds) => {}
            _ => findings.deny(format!(
                "{object} sets `{TOKEN_EXPIRATION}: {text:?}`; it must be a number of seconds from 3600 to 86400"
            )),
        }
    }
    findings
}

export_policy!(RequireIrsa);
