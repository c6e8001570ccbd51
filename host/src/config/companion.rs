//! The configuration's `companion` block: which namespaces bouncer's
//! companion gives a default-deny NetworkPolicy (and, when egress is denied,
//! an allow-DNS one), and how (`companion/`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;

use super::matching::NamespaceRule;

pub use bouncer_eks::network_policy::Dns;

/// The label a namespace opts out with unless the configuration says.
pub const DEFAULT_OPT_OUT: &str = "bouncer.dev/companion=off";

/// What the companion writes, and where.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompanionConfig {
    /// Namespace globs to include and exclude, as in a policy's `match`.
    /// `kube-system` and bouncer's own namespace are always left out.
    #[serde(default)]
    pub namespaces: NamespaceRule,
    /// Labels a namespace must have.
    pub namespace_selector: Option<LabelSelector>,
    /// `key=value`: a namespace with this label keeps what it has (default
    /// `bouncer.dev/companion=off`).
    pub opt_out_label: Option<String>,
    /// Whether opting out removes the policies the companion wrote there.
    #[serde(default)]
    pub remove_on_opt_out: bool,
    /// Policy types the default-deny policy denies; default: the
    /// `default-deny-networkpolicy` entry's `require`, else Ingress and Egress.
    pub policy_types: Option<Vec<String>>,
    /// Where the cluster's DNS runs (default: EKS's CoreDNS).
    #[serde(default)]
    pub dns: Dns,
}

impl CompanionConfig {
    /// The opt-out label as `(key, value)`.
    pub fn opt_out(&self) -> (String, String) {
        let text = self.opt_out_label.as_deref().unwrap_or(DEFAULT_OPT_OUT);
        match text.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (text.to_owned(), String::new()),
        }
    }

    /// What is wrong with the block, if anything.
    pub(super) fn check(&self) -> Result<(), String> {
        let rules = super::MatchRules {
            namespaces: self.namespaces.clone(),
            namespace_selector: self.namespace_selector.clone(),
            ..Default::default()
        };
        rules.check().map_err(|e| format!("companion: {e}"))?;
        if let Some(types) = &self.policy_types
            && (types.is_empty() || types.iter().any(|t| t != "Ingress" && t != "Egress"))
        {
            return Err("companion.policyTypes must name Ingress, Egress or both".into());
        }
        if self.opt_out().0.is_empty() {
            return Err("companion.optOutLabel must be `key=value` or `key`".into());
        }
        Ok(())
    }
}
