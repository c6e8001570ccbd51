//! The CNCF Wasm OCI artifact layout, as bouncer writes and accepts it.
//!
//! Written by hand rather than with the `oci-wasm` crate: its current release
//! pins an older `oci-client` and a third copy of `wit-component`, and what it
//! adds here is two media types and a small config document.

use std::collections::BTreeMap;

use oci_client::manifest::OciImageManifest;

/// The config media type of a Wasm artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a Wasm component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Layer media types bouncer also accepts (written by older Wasm OCI tools).
const OTHER_LAYER_MEDIA_TYPES: &[&str] = &[oci_client::manifest::WASM_LAYER_MEDIA_TYPE];
/// The largest component bouncer pulls: the biggest real policies (Python,
/// JavaScript) are under 20 MiB; anything far beyond is refused before download.
pub const MAX_LAYER_BYTES: u64 = 128 * 1024 * 1024;

/// The component layer of a checked manifest, and the manifest's annotations.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The component's digest (`sha256:…`).
    pub layer_digest: String,
    /// The component's size in bytes.
    pub layer_size: u64,
    /// The manifest's annotations: the policy's metadata when bouncer pushed it.
    pub annotations: BTreeMap<String, String>,
}

impl Artifact {
    /// Checks that `manifest` holds one Wasm component layer of a size bouncer
    /// will pull. Returns why not, for the error message.
    pub(crate) fn check(manifest: &OciImageManifest) -> Result<Self, String> {
        let [layer] = manifest.layers.as_slice() else {
            return Err(format!(
                "it has {} layers; a policy artifact has exactly one `{LAYER_MEDIA_TYPE}` layer \
                 (push it with `bouncer push`)",
                manifest.layers.len()
            ));
        };
        if layer.media_type != LAYER_MEDIA_TYPE
            && !OTHER_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str())
        {
            return Err(format!(
                "its layer has media type `{}`, not `{LAYER_MEDIA_TYPE}` (is it a container image?)",
                layer.media_type
            ));
        }
        let size =
            u64::try_from(layer.size).map_err(|_| "its layer has a negative size".to_owned())?;
        if size > MAX_LAYER_BYTES {
            return Err(format!(
                "its layer is {size} bytes, over the {MAX_LAYER_BYTES}-byte limit for a policy"
            ));
        }
        if !super::reference::is_sha256(&layer.digest) {
            return Err(format!(
                "its layer digest `{}` is not a sha256 digest",
                layer.digest
            ));
        }
        Ok(Self {
            layer_digest: layer.digest.clone(),
            layer_size: size,
            annotations: manifest.annotations.clone().unwrap_or_default(),
        })
    }
}

/// The config document of a component layer with `layer_digest`.
///
/// `created` is the Unix epoch, as reproducible image builders write it: the
/// same component with the same metadata always gets the same digest, so
/// pushing again (a re-run CI job, a second signer) names the same artifact.
pub(crate) fn config(layer_digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    }))
    .unwrap_or_default()
}
