//! Policies as OCI artifacts: pushing a component to a registry, and pulling
//! one into a content-addressed store on disk that serving, `bouncer test` and
//! `bouncer check` all load from.
//!
//! The artifact is the CNCF Wasm layout (`artifact.rs`): a
//! `application/vnd.wasm.config.v0+json` config and one `application/wasm`
//! layer, with the policy's metadata as manifest annotations so a registry
//! listing (and `bouncer inspect oci://…`) can show what a policy governs
//! without running it.
//!
//! Network work happens only here and only when a configuration is loaded or
//! reloaded, never per review: a tag is resolved to a digest then, and the
//! component is read from the store afterwards. This module names no other
//! module of the crate: it turns a reference into a file and a digest.

mod annotations;
mod artifact;
mod auth;
mod challenge;
mod client;
mod error;
mod fetch;
mod push;
mod reference;
mod signature;
mod store;
mod upload;

pub use annotations::{Governs, PolicyAnnotations};
pub use artifact::{Artifact, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MAX_LAYER_BYTES};
pub use error::RegistryError;
pub use fetch::{Fetched, fetch, fetch_stored, inspect};
pub use push::{Pushed, push};
pub use reference::PolicyRef;
pub use signature::Verification;
pub use store::{Store, default_store_dir};

/// How to reach registries: credentials, trust, plain HTTP, and the store.
/// The `registry:` block of `policies.yaml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryOptions {
    /// A Docker `config.json` (the format of a `kubernetes.io/dockerconfigjson`
    /// Secret) with credentials per registry. Default: `$DOCKER_CONFIG/config.json`
    /// or `~/.docker/config.json` when one exists.
    pub auth: Option<std::path::PathBuf>,
    /// PEM certificates to trust besides the system's (a private registry's CA).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Registries (`host:port`) reached over plain HTTP; every other one over HTTPS.
    #[serde(default)]
    pub plain_http: Vec<String>,
    /// Where pulled components are stored. Default: `oci/` in the cache directory.
    pub store: Option<std::path::PathBuf>,
    /// How long one pull (manifest, component and signatures) or push may take
    /// in all. Default: 60 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: std::time::Duration,
}

/// Long enough for a 20 MiB component over a slow link, short enough that a
/// stalled registry costs a reload one minute, not forever.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn default_timeout() -> std::time::Duration {
    DEFAULT_TIMEOUT
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            auth: None,
            ca_bundle: None,
            plain_http: Vec::new(),
            store: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}
