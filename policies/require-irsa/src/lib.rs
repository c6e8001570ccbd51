//! `require-irsa`: workloads get AWS credentials from an IAM role bound to
//! their ServiceAccount (IRSA), never from static keys or the node.
//!
//! Static keys in an environment variable leak through `kubectl describe`,
//! crash dumps and CI logs, and never rotate. A pod on the host network can
//! reach the node's instance metadata and act as the node's role, which is
//! every pod's role at once. IRSA gives each ServiceAccount its own role,
//! with short-lived tokens.

mod keys;
mod pod_identity;
mod stored;
mod workload;

use bouncer_eks::Metadata;
use bouncer_eks::arn::iam_role;
use bouncer_eks::names::{ROLE_ARN, TOKEN_EXPIRATION};
use bouncer_sdk::workload::Workload;
use bouncer_sdk::{Findings, Operation, Policy, Request, Result, Verdict, export_policy, judge};
use serde::Deserialize;

/// Settings of `require-irsa`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
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
    /// has an IAM role: a valid `eks.amazonaws.com/role-arn` (IRSA) or an EKS Pod
    /// Identity association, as `credentials` allows (a cluster lookup: declare
    /// `context: [{apiVersion: v1, kind: ServiceAccount}]`).
    pub require_role_in: Vec<String>,
    /// Which mechanisms give a workload its role under `requireRoleIn`: `any`
    /// (default), `irsa` or `podIdentity`.
    pub credentials: Credentials,
    /// ServiceAccounts (`namespace/name` globs) with an EKS Pod Identity association.
    pub pod_identity_service_accounts: Vec<String>,
    /// Also look up ACK `PodIdentityAssociation` objects (declare
    /// `context: [{apiVersion: eks.services.k8s.aws/v1alpha1, kind: PodIdentityAssociation}]`).
    pub look_up_pod_identity_associations: bool,
    /// Workloads (name globs) that may use `hostNetwork` in any namespace; by
    /// default the EKS Pod Identity agent, which runs on the host network by design.
    pub host_network_workloads: Vec<String>,
}

/// Which mechanisms may give a workload its IAM role.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Credentials {
    /// IRSA or EKS Pod Identity.
    #[default]
    Any,
    /// Only IRSA (`eks.amazonaws.com/role-arn`).
    Irsa,
    /// Only EKS Pod Identity.
    PodIdentity,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allowed_accounts: Vec::new(),
            forbidden_secret_names: Vec::new(),
            host_network_namespaces: Vec::new(),
            require_service_account_in: Vec::new(),
            inspect_env_from_config_maps: false,
            require_role_in: Vec::new(),
            credentials: Credentials::Any,
            pod_identity_service_accounts: Vec::new(),
            look_up_pod_identity_associations: false,
            host_network_workloads: vec!["eks-pod-identity-agent*".to_owned()],
        }
    }
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
            .context(
                pod_identity::ASSOCIATION_API_VERSION,
                pod_identity::ASSOCIATION_KIND,
            )
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_accounts(&settings.allowed_accounts)?;
        bouncer_eks::check_globs("hostNetworkNamespaces", &settings.host_network_namespaces)?;
        bouncer_eks::check_globs(
            "requireServiceAccountIn",
            &settings.require_service_account_in,
        )?;
        bouncer_eks::check_globs("requireRoleIn", &settings.require_role_in)?;
        bouncer_eks::check_globs(
            "podIdentityServiceAccounts",
            &settings.pod_identity_service_accounts,
        )?;
        bouncer_eks::check_globs("hostNetworkWorkloads", &settings.host_network_workloads)
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
        let name = request.name.clone();
        let namespace = request.namespace.clone().unwrap_or_default();
        // A lookup that fails is the policy failing (its failure mode decides), not a denial.
        let lookup_error = std::cell::RefCell::new(None);
        let verdict = judge(request, |value: &serde_json::Value| {
            let mut findings = Findings::new();
            match workload::pod_spec(kind, value) {
                Ok(Some(pod)) => {
                    workload::check(&object, &name, &namespace, &pod, settings, &mut findings);
                    if settings.inspect_env_from_config_maps
                        && let Err(error) =
                            check_config_maps(&object, &namespace, &pod, &mut findings)
                    {
                        lookup_error.borrow_mut().get_or_insert(error);
                    }
                    if bouncer_eks::matches_any(&settings.require_role_in, &namespace)
                        && let Err(error) =
                            check_role(&object, &namespace, &pod, settings, &mut findings)
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

/// The workload's ServiceAccount must exist and have a role: a valid, allowed
/// IRSA annotation or an EKS Pod Identity association, as `credentials` allows.
fn check_role(
    object: &str,
    namespace: &str,
    pod: &workload::PodSpec,
    settings: &Settings,
    findings: &mut Findings,
) -> Result<()> {
    let account = pod.account();
    let found: Option<ServiceAccount> =
        bouncer_sdk::context::get("v1", "ServiceAccount", Some(namespace), account)?;
    let Some(sa) = found else {
        findings.deny(format!(
            "{object} runs as ServiceAccount `{account}`, which does not exist in namespace `{namespace}`; \
             workloads there need an IAM role (requireRoleIn): create the ServiceAccount with \
             `{ROLE_ARN}` (IRSA) or an EKS Pod Identity association first"
        ));
        return Ok(());
    };
    let pod_identity = || -> Result<bool> {
        Ok(pod.has_env(pod_identity::INJECTED_VARIABLE)
            || pod_identity::declared(&settings.pod_identity_service_accounts, namespace, account)
            || (settings.look_up_pod_identity_associations
                && pod_identity::associated(namespace, account)?))
    };
    let irsa = sa.metadata.annotation(ROLE_ARN).is_some();
    let problems = check_service_account(
        &format!("its ServiceAccount `{account}`"),
        &sa.metadata,
        settings,
    );
    let accepted = match settings.credentials {
        Credentials::Any => irsa || pod_identity()?,
        Credentials::Irsa => irsa,
        Credentials::PodIdentity => pod_identity()?,
    };
    if !accepted {
        let wanted = match settings.credentials {
            Credentials::Any => {
                format!("a `{ROLE_ARN}` annotation (IRSA) or an EKS Pod Identity association")
            }
            Credentials::Irsa => format!("a `{ROLE_ARN}` annotation (IRSA; credentials: irsa)"),
            Credentials::PodIdentity => {
                "an EKS Pod Identity association (credentials: podIdentity)".to_owned()
            }
        };
        findings.deny(format!(
            "{object} runs as ServiceAccount `{account}`, which has no IAM role: workloads in namespace \
             `{namespace}` need {wanted} (requireRoleIn); an association bouncer cannot see counts when \
             listed in podIdentityServiceAccounts"
        ));
    } else if irsa && let Some(problem) = problems.denials.first() {
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
