//! The configuration file, `policies.yaml`: which policies run, on what, and how.
//!
//! Start from [`Config`] ([`Config::from_yaml`], [`Config::default_config`]) and
//! [`PolicyConfig`]; [`matching`] holds an entry's `match` rules.

pub mod file;
pub mod matching;
pub mod modes;
pub mod source;

pub use file::{Config, ConfigError, Origin, PolicyConfig};
pub use matching::MatchRules;
pub use modes::{FailureMode, Mode};
pub use source::ConfigSource;
