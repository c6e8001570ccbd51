//! The configuration file, `policies.yaml`: which policies run, on what, and how.
//!
//! Start from [`Config`] ([`Config::from_yaml`], [`Config::default_config`]) and
//! [`PolicyConfig`]; [`matching`] holds an entry's `match` rules.

mod companion;
mod exceptions;
mod file;
mod matching;
mod modes;
mod quantity;
mod shadow;
mod source;

pub use companion::{CompanionConfig, DEFAULT_OPT_OUT, Dns};
pub use exceptions::{DEFAULT_MAX_EXCEPTION, ExceptionsConfig};
pub use file::{Config, ConfigError, DEFAULT_CONFIG, Origin, PolicyConfig};
pub use matching::{KindRule, MatchRules, NamespaceRule};
pub use modes::{FailureMode, Mode};
pub use quantity::{Quantity, parse_quantity};
pub use shadow::{DEFAULT_SHADOW_CONCURRENCY, ShadowConfig, candidate_name};
pub use source::ConfigSource;
