//! The house rules embedded in the `bouncer` binary.
//!
//! `build.rs` compiles every crate under `policies/` marked
//! `[package.metadata.bouncer] builtin = true` and generates this table.

/// A built-in policy.
#[derive(Debug)]
pub struct Builtin {
    /// Name, as used in `builtin:<name>`.
    pub name: &'static str,
    /// One line saying what it enforces.
    pub description: &'static str,
    /// The component.
    pub component: &'static [u8],
}

/// Every built-in policy, sorted by name.
pub static BUILTINS: &[Builtin] = include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// Other names of built-ins, `(alias, name)`: a rule whose name no longer
/// says all it checks gets a better one, and the old name keeps working.
pub(super) const ALIASES: &[(&str, &str)] = &[
    // IRSA or EKS Pod Identity, static keys, the host network: a workload's AWS identity.
    ("workload-aws-identity", "require-irsa"),
];

/// The built-in policy called `name` (or one of its [`ALIASES`]).
pub(super) fn find(name: &str) -> Option<&'static Builtin> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| target);
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_names_a_builtin() {
        for (alias, name) in ALIASES {
            assert_eq!(find(alias).map(|b| b.name), Some(*name), "{alias}");
        }
    }
}
