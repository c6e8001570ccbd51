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

/// The built-in policy called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
