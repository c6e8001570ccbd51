//! The schema of `policies.yaml` and its loading.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::companion::CompanionConfig;
use super::exceptions::ExceptionsConfig;
use super::matching::MatchRules;
use super::modes::{FailureMode, Mode};
use super::quantity::Quantity;
use super::shadow::{DEFAULT_SHADOW_CONCURRENCY, ShadowConfig, candidate_name};
use crate::policy::{Limits, Source};
use crate::registry::{PolicyRef, RegistryOptions, Verification};

/// The embedded default configuration: every built-in house rule.
pub const DEFAULT_CONFIG: &str = include_str!("default.yaml");

/// A configuration file: the policies to run, in evaluation order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The policies, evaluated in this order.
    pub policies: Vec<PolicyConfig>,
    /// How `oci://` sources reach their registries.
    #[serde(default)]
    pub registry: RegistryOptions,
    /// Keys every `oci://` policy must be signed by (cosign's keyed format).
    #[serde(default)]
    pub verify: Verification,
    /// Where `PolicyException` objects are honoured; none are without it.
    pub exceptions: Option<ExceptionsConfig>,
    /// What `serve --companion` writes: default-deny and allow-DNS
    /// NetworkPolicies per namespace.
    #[serde(default)]
    pub companion: CompanionConfig,
    /// The directory relative `.wasm` paths are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// One policy entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyConfig {
    /// Unique name; used in messages, metrics and `/validate/{name}`.
    pub name: String,
    /// `builtin:<name>`, a path to a `.wasm` component (relative to the config
    /// file), or `oci://registry/repository:tag` (or `@sha256:<digest>`).
    pub source: String,
    /// The policy's settings, checked at load by its `validate-settings`.
    #[serde(default = "empty_settings")]
    pub settings: serde_json::Value,
    /// `enforce` (default) or `monitor` (denials become warnings).
    #[serde(default)]
    pub mode: Mode,
    /// `closed` (default: a failing policy denies) or `open` (allows with a warning).
    #[serde(default)]
    pub failure: FailureMode,
    /// Which requests the policy sees; all when absent.
    #[serde(default, rename = "match")]
    pub rules: MatchRules,
    /// Run on `/mutate` too. Default: whether the built-in can mutate; false for files.
    pub mutating: Option<bool>,
    /// Deadline of one evaluation, such as `250ms` (default) or `1s`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Memory cap of one evaluation: bytes, or `64Mi` (default), `512Ki`, `1Gi`.
    pub memory: Option<Quantity>,
    /// Evaluations of this policy that may run at once (default: twice the
    /// CPUs, 4 to 16); more wait for a slot within their deadline, and a review
    /// that gets none is this policy's failure.
    pub concurrency: Option<u32>,
    /// Kinds the policy may look up in the cluster (`[{apiVersion, kind}]`);
    /// `bouncer serve` watches exactly these.
    #[serde(default)]
    pub context: Vec<crate::policy::ContextKind>,
    /// A candidate version evaluated beside this one on live traffic; it
    /// never changes an answer, and where it disagrees is counted and reported.
    pub shadow: Option<ShadowConfig>,
}

/// Where an entry's component comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Built in, or a file.
    Local(Source),
    /// A registry, resolved at load into the store (`registry::fetch`).
    Registry(PolicyRef),
}

fn empty_settings() -> serde_json::Value {
    serde_json::json!({})
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (the message names the key and line).
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `<embedded default>`.
        origin: String,
        /// serde's message, with the line and column.
        message: String,
    },
    /// An entry is inconsistent.
    #[error("{origin}: policy `{policy}`: {message}")]
    Invalid {
        /// The file, or `<embedded default>`.
        origin: String,
        /// The entry's name.
        policy: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The embedded default configuration.
    pub fn default_config() -> Self {
        // The embedded file is checked by a test; a broken one is a build bug.
        Self::from_yaml(DEFAULT_CONFIG, "<embedded default>", Path::new("."))
            .unwrap_or_else(|e| panic!("the embedded default config is invalid: {e}"))
    }

    /// Reads and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::manifest::yaml::read_file(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        Self::from_yaml(&text, &path.display().to_string(), &base)
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config: Config =
            crate::manifest::yaml::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.to_owned(),
                message: e.to_string(),
            })?;
        config.base_dir = base_dir.to_owned();
        config.check(origin)?;
        Ok(config)
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |policy: &str, message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            policy: policy.to_owned(),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        for entry in &self.policies {
            let name = entry.name.as_str();
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            if !valid_name {
                return Err(invalid(
                    name,
                    "a name must be non-empty and use only letters, digits, `-`, `_` and `.`"
                        .into(),
                ));
            }
            if !seen.insert(name) {
                return Err(invalid(name, "the name is used twice".into()));
            }
            entry.origin(Path::new("")).map_err(|e| invalid(name, e))?;
            if let Some(timeout) = entry.timeout
                && timeout.is_zero()
            {
                return Err(invalid(name, "timeout must be more than zero".into()));
            }
            if let Some(Quantity(memory)) = entry.memory
                && !(1 << 20..=Limits::MAX_MEMORY).contains(&memory)
            {
                return Err(invalid(
                    name,
                    format!(
                        "memory must be between 1Mi and {}Mi",
                        Limits::MAX_MEMORY >> 20
                    ),
                ));
            }
            if let Some(concurrency) = entry.concurrency
                && !(1..=Limits::MAX_CONCURRENCY).contains(&concurrency)
            {
                return Err(invalid(
                    name,
                    format!(
                        "concurrency must be between 1 and {}",
                        Limits::MAX_CONCURRENCY
                    ),
                ));
            }
            entry
                .rules
                .check()
                .map_err(|message| invalid(name, message))?;
            entry
                .check_shadow()
                .map_err(|message| invalid(name, message))?;
            if let Some(candidate) = entry.candidate() {
                candidate
                    .origin(Path::new(""))
                    .map_err(|e| invalid(name, format!("shadow: {e}")))?;
            }
        }
        if let Some(exceptions) = &self.exceptions {
            exceptions.check().map_err(|message| ConfigError::Parse {
                origin: origin.to_owned(),
                message,
            })?;
        }
        self.companion
            .check()
            .map_err(|message| ConfigError::Parse {
                origin: origin.to_owned(),
                message,
            })?;
        Ok(())
    }

    /// Every `.wasm` file the configuration loads, for change detection.
    pub fn component_files(&self) -> Vec<PathBuf> {
        self.policies
            .iter()
            .chain(self.candidates().iter())
            .filter_map(|p| match p.origin(&self.base_dir) {
                Ok(Origin::Local(Source::File(path))) => Some(path),
                _ => None,
            })
            .collect()
    }

    /// The policy types the companion's default-deny policy denies: its
    /// own setting, else what the `default-deny-networkpolicy` entry requires,
    /// so the two agree, else Ingress and Egress.
    pub fn companion_policy_types(&self) -> Vec<String> {
        if let Some(types) = &self.companion.policy_types {
            return types.clone();
        }
        self.policies
            .iter()
            .find(|p| p.source == "builtin:default-deny-networkpolicy")
            .and_then(|p| p.settings.get("require"))
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_else(|| vec!["Ingress".to_owned(), "Egress".to_owned()])
    }

    /// The shadow candidates of its entries, each as an entry of its own.
    pub fn candidates(&self) -> Vec<PolicyConfig> {
        self.policies
            .iter()
            .filter_map(PolicyConfig::candidate)
            .collect()
    }
}

impl PolicyConfig {
    /// Where the component comes from, with a relative path resolved against
    /// `base_dir`; the error says what is wrong with `source`.
    pub fn origin(&self, base_dir: &Path) -> Result<Origin, String> {
        if PolicyRef::is_oci(&self.source) {
            return PolicyRef::parse(&self.source)
                .map(Origin::Registry)
                .map_err(|e| e.to_string());
        }
        Ok(Origin::Local(
            match Source::parse(&self.source).map_err(|e| e.to_string())? {
                Source::File(path) if path.is_relative() => Source::File(base_dir.join(path)),
                other => other,
            },
        ))
    }

    /// The evaluation limits, defaults filled in.
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout.unwrap_or(Limits::DEFAULT_TIMEOUT),
            memory: self.memory.map_or(Limits::DEFAULT_MEMORY, |q| q.0),
            concurrency: self.concurrency.unwrap_or_else(Limits::default_concurrency),
        }
    }
}

impl PolicyConfig {
    /// The entry its `shadow` describes, as a policy entry of its own (named
    /// by [`candidate_name`]); `None` without a shadow.
    pub fn candidate(&self) -> Option<PolicyConfig> {
        let shadow = self.shadow.as_ref()?;
        Some(PolicyConfig {
            name: candidate_name(&self.name),
            source: shadow.source.clone().unwrap_or_else(|| self.source.clone()),
            settings: shadow
                .settings
                .clone()
                .unwrap_or_else(|| self.settings.clone()),
            timeout: shadow.timeout.or(self.timeout),
            memory: shadow.memory.or(self.memory),
            concurrency: Some(shadow.concurrency.unwrap_or(DEFAULT_SHADOW_CONCURRENCY)),
            shadow: None,
            ..self.clone()
        })
    }

    /// What is wrong with its `shadow`, if anything.
    fn check_shadow(&self) -> Result<(), String> {
        let Some(shadow) = &self.shadow else {
            return Ok(());
        };
        if shadow.source.is_none() && shadow.settings.is_none() {
            return Err(
                "its `shadow` has neither `source` nor `settings`: it would compare \
                        the policy with itself; give the candidate's source or settings"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_config_is_valid_and_names_every_builtin() {
        let config = Config::default_config();
        for builtin in crate::policy::BUILTINS {
            assert!(
                config
                    .policies
                    .iter()
                    .any(|p| p.source == format!("builtin:{}", builtin.name)),
                "{} missing from the default config",
                builtin.name
            );
        }
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_line() {
        let text =
            "policies:\n  - name: a\n    source: builtin:alb-target-type-ip\n    mdoe: monitor\n";
        let error = Config::from_yaml(text, "p.yaml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("p.yaml: policies[0]: unknown field `mdoe`"),
            "{error}"
        );
        assert!(error.contains("line 4"), "{error}");
    }

    #[test]
    fn quantities_durations_and_duplicates_are_checked() {
        let entry = |extra: &str| {
            format!("policies:\n  - name: a\n    source: builtin:alb-target-type-ip\n{extra}")
        };
        let ok = Config::from_yaml(
            &entry("    memory: 32Mi\n    timeout: 1s\n    concurrency: 3\n"),
            "p",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            ok.policies[0].limits(),
            Limits {
                timeout: Duration::from_secs(1),
                memory: 32 << 20,
                concurrency: 3,
            }
        );
        let bad = Config::from_yaml(&entry("    memory: 32MB\n"), "p", Path::new(".")).unwrap_err();
        assert!(
            bad.to_string().contains("invalid memory quantity `32MB`"),
            "{bad}"
        );
        let twice = format!(
            "{}  - name: a\n    source: builtin:alb-target-type-ip\n",
            entry("")
        );
        let bad = Config::from_yaml(&twice, "p", Path::new(".")).unwrap_err();
        assert_eq!(bad.to_string(), "p: policy `a`: the name is used twice");
        let unknown = Config::from_yaml(
            "policies:\n  - name: a\n    source: builtin:nope\n",
            "p",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            unknown
                .to_string()
                .starts_with("p: policy `a`: unknown built-in policy `nope`"),
            "{unknown}"
        );
    }

    #[test]
    fn the_companion_denies_what_the_default_deny_rule_requires() {
        let rule = |require: &str| {
            format!(
                "policies:\n  - name: d\n    source: builtin:default-deny-networkpolicy\n    settings: {{require: {require}}}\n"
            )
        };
        let config = Config::from_yaml(&rule("[Ingress]"), "p", Path::new(".")).unwrap();
        assert_eq!(config.companion_policy_types(), ["Ingress"]);
        let config = Config::from_yaml("policies: []\n", "p", Path::new(".")).unwrap();
        assert_eq!(config.companion_policy_types(), ["Ingress", "Egress"]);
        let own = format!(
            "{}companion: {{policyTypes: [Egress]}}\n",
            rule("[Ingress]")
        );
        let config = Config::from_yaml(&own, "p", Path::new(".")).unwrap();
        assert_eq!(config.companion_policy_types(), ["Egress"]);
        let bad = Config::from_yaml(
            "policies: []\ncompanion: {policyTypes: [Sideways]}\n",
            "p",
            Path::new("."),
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("companion.policyTypes")
        );
        let config = Config::from_yaml(
            "policies: []\ncompanion: {optOutLabel: team/opt=out}\n",
            "p",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            config.companion.opt_out(),
            ("team/opt".to_owned(), "out".to_owned())
        );
    }
}
