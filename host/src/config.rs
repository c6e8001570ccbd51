//! The configuration file, `policies.yaml`: which policies run, on what, and how.
//!
//! Start from [`Config`] ([`Config::from_yaml`], [`Config::default_config`]) and
//! [`PolicyConfig`]; [`matching`] holds an entry's `match` rules.

mod file;
mod matching;
mod modes;
mod source;

pub use file::{Config, ConfigError, DEFAULT_CONFIG, Origin, PolicyConfig, parse_quantity};
pub use matching::MatchRules;
pub use modes::{FailureMode, Mode};
pub use source::ConfigSource;
