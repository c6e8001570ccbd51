//! Static AWS keys kept in the cluster rather than in a pod spec: a Secret
//! with key entries (see `keys`) or an AWS `credentials` file, and a
//! ConfigMap with such entries that a container loads with `envFrom`.

use std::collections::BTreeMap;

use base64::Engine as _;
use bouncer_eks::Metadata;
use serde::Deserialize;

use crate::keys;

/// A Secret, as far as keys go.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Secret {
    pub metadata: Metadata,
    /// Values are base64.
    data: BTreeMap<String, String>,
    string_data: BTreeMap<String, String>,
}

/// A ConfigMap, as far as keys go.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigMap {
    data: BTreeMap<String, String>,
}

/// What in `secret` carries static keys, each as a phrase for a message.
pub fn keys_in_secret(secret: &Secret) -> Vec<String> {
    let decoded = secret.data.iter().map(|(key, value)| {
        let text = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        (key.as_str(), text)
    });
    let plain = secret
        .string_data
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()));
    keys::in_entries(decoded.chain(plain))
}

/// What in `config_map` carries static keys.
pub fn keys_in_config_map(config_map: &ConfigMap) -> Vec<String> {
    keys::in_entries(config_map.data.iter().map(|(k, v)| (k.as_str(), v.clone())))
}
