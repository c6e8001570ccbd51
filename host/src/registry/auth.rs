//! Registry credentials from a Docker `config.json`.
//!
//! Only the `auths` map: the format of a `kubernetes.io/dockerconfigjson`
//! Secret, which is what a cluster mounts. Credential helpers (`credsStore`)
//! run programs and do not exist in a pod, so they are not consulted; the
//! `docker_credential` crate would add them for laptops, at the price of
//! running helpers from a webhook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::error::RegistryError;

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "identitytoken")]
    identity_token: Option<String>,
}

/// A user and password to present to one registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.user)
    }
}

/// Credentials per registry host.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    by_host: BTreeMap<String, Secret>,
}

impl Credentials {
    /// Reads `path`, or the default Docker config when `path` is `None` (none
    /// there is no error: anonymous access).
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, RegistryError> {
        let (path, required) = match path {
            Some(path) => (path.to_owned(), true),
            None => match default_path() {
                Some(path) => (path, false),
                None => return Ok(Self::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => return Err(RegistryError::file("registry credentials", &path, e)),
        };
        Self::parse(&text)
            .map_err(|message| RegistryError::file("registry credentials", &path, message))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let config: DockerConfig = serde_json::from_str(text)
            .map_err(|e| format!("not a Docker config.json ({e}); expected {{\"auths\": {{\"host\": {{\"auth\": \"<base64 user:password>\"}}}}}}"))?;
        let mut by_host = BTreeMap::new();
        for (key, entry) in config.auths {
            let pair = match (
                entry.auth,
                entry.username,
                entry.password,
                entry.identity_token,
            ) {
                (Some(auth), ..) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(|| {
                            format!("auths.\"{key}\".auth is not base64 of user:password")
                        })?;
                    let (user, password) = decoded.split_once(':').ok_or_else(|| {
                        format!("auths.\"{key}\".auth has no `:` between user and password")
                    })?;
                    Secret {
                        user: user.to_owned(),
                        password: password.to_owned(),
                    }
                }
                (None, Some(user), Some(password), _) => Secret { user, password },
                (None, _, _, Some(token)) => Secret {
                    user: "<token>".to_owned(),
                    password: token,
                },
                _ => continue,
            };
            by_host.insert(host_of(&key).to_owned(), pair);
        }
        Ok(Self { by_host })
    }

    /// What to present to `registry` (a host, with its port if any); `None`: anonymous.
    pub(crate) fn for_registry(&self, registry: &str) -> Option<&Secret> {
        self.by_host.get(registry)
    }
}

/// `https://index.docker.io/v1/` and `registry.example.com` both name a host.
fn host_of(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    dirs::home_dir().map(|home| home.join(".docker").join("config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerconfigjson_entries_become_basic_auth() {
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret");
        let text = format!(
            r#"{{"auths": {{"https://reg.example.com/v1/": {{"auth": "{auth}"}},
                "localhost:5000": {{"username": "u", "password": "p"}}}}}}"#
        );
        let creds = Credentials::parse(&text).unwrap();
        let secret = |user: &str, password: &str| Secret {
            user: user.into(),
            password: password.into(),
        };
        assert_eq!(
            creds.for_registry("reg.example.com"),
            Some(&secret("ci", "s3cret"))
        );
        assert_eq!(
            creds.for_registry("localhost:5000"),
            Some(&secret("u", "p"))
        );
        assert_eq!(creds.for_registry("other.example.com"), None);
    }

    #[test]
    fn a_broken_entry_is_named() {
        let error = Credentials::parse(r#"{"auths": {"reg": {"auth": "!!"}}}"#).unwrap_err();
        assert!(error.contains("auths.\"reg\".auth"), "{error}");
    }
}
