//! `policies.yaml` text for test servers: entries for a built-in and for the
//! hostile guests, so every test spells a configuration the same way.

use crate::{HOSTILE_POLICY, HOSTILE_WASI_POLICY};

/// A whole configuration from entries made by the functions below.
pub fn config(entries: &str) -> String {
    format!("policies:\n{entries}")
}

/// An `alb-target-type-ip` entry named `name`; `extra` adds indented keys.
pub fn alb(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    source: builtin:alb-target-type-ip\n{extra}")
}

/// A hostile guest entry (built without WASI, like the built-ins) misbehaving as `behaviour`.
pub fn hostile(name: &str, behaviour: &str, extra: &str) -> String {
    entry(name, HOSTILE_POLICY, behaviour, extra)
}

/// A hostile guest entry built for WASI (like a custom policy).
pub fn hostile_wasi(name: &str, behaviour: &str, extra: &str) -> String {
    entry(name, HOSTILE_WASI_POLICY, behaviour, extra)
}

fn entry(name: &str, source: &str, behaviour: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    source: {source}\n    settings: {{behaviour: {behaviour}}}\n{extra}"
    )
}
