//! The configuration file, `policies.yaml`: which policies run, on what, and how.
//!
//! Start from [`Config`] ([`Config::from_yaml`], [`Config::default_config`]) and
//! [`PolicyConfig`]; [`matching`] decides whether a policy applies to a request.

pub mod file;
pub mod matching;

pub use file::{Config, ConfigError, PolicyConfig};
pub use matching::{MatchRules, NamespaceLabels};
