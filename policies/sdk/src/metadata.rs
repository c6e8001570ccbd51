//! What a policy says about itself: the kinds it governs, whether it mutates,
//! the cluster kinds it looks up. `bouncer inspect` prints it, and the host warns
//! when a configuration entry disagrees with it.

use crate::Operation;
use crate::bindings::bouncer::policy::types;

/// A policy's self-description, built with chained calls.
///
/// The name, description and version default to the crate's `Cargo.toml`
/// ([`export_policy!`](crate::export_policy) fills them in), and the settings
/// schema is derived from the policy's `Settings` type.
///
/// ```
/// use bouncer_sdk::{Metadata, Operation};
///
/// let metadata = Metadata::new()
///     .governs(&["apps"], &["Deployment", "StatefulSet"])
///     .operations(&[Operation::Create, Operation::Update])
///     .mutating();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    name: Option<String>,
    description: Option<String>,
    version: Option<String>,
    kinds: Vec<types::KindRule>,
    operations: Vec<Operation>,
    mutating: bool,
    context_kinds: Vec<types::ContextKind>,
}

impl Metadata {
    /// Metadata that governs every kind and operation, and does not mutate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overrides the name taken from `Cargo.toml`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Overrides the description taken from `Cargo.toml`.
    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }

    /// Overrides the version taken from `Cargo.toml`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// Declares that the policy governs `kinds` in `api_groups` (`""` is the core
    /// group, `"*"` any). Call it once per group set.
    pub fn governs(mut self, api_groups: &[&str], kinds: &[&str]) -> Self {
        self.kinds.push(types::KindRule {
            api_groups: api_groups.iter().map(|g| (*g).to_owned()).collect(),
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        });
        self
    }

    /// Declares the operations the policy judges (all when never called).
    pub fn operations(mut self, operations: &[Operation]) -> Self {
        self.operations.extend_from_slice(operations);
        self
    }

    /// Declares that the policy may return a mutation.
    pub fn mutating(mut self) -> Self {
        self.mutating = true;
        self
    }

    /// Declares a kind the policy looks up with [`context`](crate::context), such
    /// as `("networking.k8s.io/v1", "NetworkPolicy")`.
    pub fn context(mut self, api_version: &str, kind: &str) -> Self {
        self.context_kinds.push(types::ContextKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        });
        self
    }

    /// The WIT record, with the crate's defaults and the settings schema filled in.
    #[doc(hidden)]
    pub fn into_wit(
        self,
        defaults: [&str; 3],
        settings_schema: Option<String>,
    ) -> types::PolicyMetadata {
        let [name, description, version] = defaults;
        types::PolicyMetadata {
            name: self.name.unwrap_or_else(|| name.to_owned()),
            description: self.description.unwrap_or_else(|| description.to_owned()),
            version: self.version.unwrap_or_else(|| version.to_owned()),
            kinds: self.kinds,
            operations: self.operations,
            mutating: self.mutating,
            settings_schema,
            context_kinds: self.context_kinds,
        }
    }
}

/// Settings of a policy that takes none: only `{}` is accepted.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}
