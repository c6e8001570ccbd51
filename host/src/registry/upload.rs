//! One image uploaded: its blobs first, then the manifest that names them, as
//! a registry requires. Both a policy and its signature are uploaded this way.

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;

use super::client::{Connection, Failure};
use super::reference::PolicyRef;
use super::store::sha256;

/// Uploads `layers` and `config` as blobs, then `manifest` under the
/// reference's tag; returns the manifest's digest (of the exact bytes sent).
pub(super) async fn upload(
    connection: &Connection,
    reference: &PolicyRef,
    layers: &[ImageLayer],
    config: &Config,
    manifest: &OciImageManifest,
) -> Result<String, Failure> {
    for layer in layers {
        connection
            .push_blob(reference, &layer.sha256_digest(), &layer.data)
            .await?;
    }
    connection
        .push_blob(reference, &config.sha256_digest(), &config.data)
        .await?;
    let bytes = serde_json::to_vec(manifest)
        .map_err(|e| Failure::Protocol(format!("cannot write the manifest: {e}")))?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.to_owned());
    connection
        .push_manifest(reference, &media_type, &bytes)
        .await?;
    Ok(sha256(&bytes))
}
