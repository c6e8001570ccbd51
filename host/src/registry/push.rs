//! `bouncer push`: a component to a registry as a Wasm OCI artifact.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;

use super::RegistryOptions;
use super::artifact::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, config};
use super::client::{Connection, within};
use super::error::RegistryError;
use super::reference::PolicyRef;
use super::store::sha256;
use super::upload::upload;

/// What a push left in the registry.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest digest the registry serves under the tag.
    pub digest: String,
    /// Where the signature went (cosign's `sha256-<hex>.sig` tag), when signed.
    pub signature: Option<PolicyRef>,
}

/// Pushes `component` to `reference` with `annotations` on its manifest and,
/// with `sign`, a cosign signature by that private key.
///
/// # Errors
/// The registry cannot be reached, refuses the credentials or the push, or
/// the key cannot be read.
pub async fn push(
    component: &[u8],
    reference: &PolicyRef,
    annotations: BTreeMap<String, String>,
    options: &RegistryOptions,
    sign: Option<&std::path::Path>,
) -> Result<Pushed, RegistryError> {
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
    let timeout = options.timeout;
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let digest = within(deadline, timeout, reference, async {
            upload(&connection, reference, &[layer], &config, &manifest)
                .await
                .map_err(|e| RegistryError::registry(reference, e.to_string()))
        })
        .await?;
        let signature = match sign {
            Some(key) => Some(
                within(
                    deadline,
                    timeout,
                    reference,
                    super::signature::sign(&connection, reference, &digest, key),
                )
                .await?,
            ),
            None => None,
        };
        Ok(Pushed { digest, signature })
    }
}
