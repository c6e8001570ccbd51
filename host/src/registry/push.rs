//! `bouncer push`: a component to a registry as a Wasm OCI artifact.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;

use super::RegistryOptions;
use super::artifact::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, config};
use super::client::{Connection, explain, run};
use super::error::RegistryError;
use super::reference::PolicyRef;
use super::store::sha256;

/// Pushes `component` to `reference` with `annotations` on its manifest, and
/// returns the manifest digest the registry now serves under it.
///
/// # Errors
/// The registry cannot be reached, refuses the credentials or the push.
pub fn push(
    component: &[u8],
    reference: &PolicyRef,
    annotations: BTreeMap<String, String>,
    options: &RegistryOptions,
) -> Result<String, RegistryError> {
    if reference.digest().is_some() {
        return Err(RegistryError::Reference {
            reference: reference.to_string(),
            reason: "push to a tag; the registry gives the digest".into(),
        });
    }
    let connection = Connection::new(options)?;
    let layer = ImageLayer::new(component.to_vec(), LAYER_MEDIA_TYPE.to_owned(), None);
    let config = Config::new(
        config(&sha256(component)),
        CONFIG_MEDIA_TYPE.to_owned(),
        None,
    );
    let manifest =
        OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
    let auth = connection.credentials.for_registry(reference.registry());
    run(async {
        connection
            .client
            .push(&reference.inner, &[layer], config, &auth, Some(manifest))
            .await
            .map_err(|e| RegistryError::registry(reference, explain(&e)))?;
        connection
            .client
            .fetch_manifest_digest(&reference.inner, &auth)
            .await
            .map_err(|e| RegistryError::registry(reference, explain(&e)))
    })?
}
