//! The EKS vocabulary shared by bouncer's built-in house rules.
//!
//! Several rules must agree on what "an ALB Ingress" or "a Service of the AWS
//! Load Balancer Controller" is; defining it once here keeps them from
//! drifting. The types decode only the fields the rules read: serde skips the
//! rest of an object without building it.

pub mod arn;
pub mod gateway;
pub mod ingress_class;
pub mod ingress_group;
pub mod lb;
pub mod listeners;
pub mod model;
pub mod names;
pub mod network_policy;

pub use lb::{Ingress, Metadata, Service};

/// Whether `value` matches any of the shell-style globs (`team-*`, `*.example.com`).
///
/// An invalid glob matches nothing; settings are checked with [`check_globs`] at load.
pub fn matches_any(globs: &[String], value: &str) -> bool {
    globs.iter().any(|g| {
        glob::Pattern::new(g)
            .map(|p| p.matches(value))
            .unwrap_or(false)
    })
}

/// Checks a settings list of globs, naming the setting and the bad entry.
pub fn check_globs(setting: &str, globs: &[String]) -> Result<(), String> {
    for g in globs {
        glob::Pattern::new(g).map_err(|e| format!("{setting}: `{g}` is not a valid glob: {e}"))?;
    }
    Ok(())
}

/// Checks an `allowedAccounts` setting: 12-digit AWS account IDs.
pub fn check_accounts(accounts: &[String]) -> Result<(), String> {
    match accounts
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        Some(bad) => Err(format!(
            "allowedAccounts: `{bad}` is not a 12-digit AWS account"
        )),
        None => Ok(()),
    }
}

/// The default of every `albClassNames` setting.
pub fn default_alb_classes() -> Vec<String> {
    vec!["alb".to_owned()]
}

/// Checks an `albClassNames` setting.
pub fn check_alb_classes(classes: &[String]) -> Result<(), String> {
    if classes.is_empty() {
        return Err("albClassNames must name at least one ingress class".into());
    }
    if classes.iter().any(|c| c.trim().is_empty()) {
        return Err("albClassNames must not contain an empty class name".into());
    }
    Ok(())
}
