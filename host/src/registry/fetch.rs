//! Resolving a reference to a stored component: from the store when the
//! digest is known, from the registry otherwise, from the last good
//! resolution when the registry fails.

use std::path::PathBuf;

use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};

use super::RegistryOptions;
use super::artifact::Artifact;
use super::client::{Bounded, Connection, explain, run};
use super::error::RegistryError;
use super::reference::PolicyRef;
use super::signature::{Verification, verify};
use super::store::{Store, sha256};

/// A component resolved from a registry reference.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The reference pinned to the manifest digest it resolved to.
    pub pinned: PolicyRef,
    /// The manifest digest (`sha256:…`): what to pin in a configuration.
    pub digest: String,
    /// The component file in the store.
    pub path: PathBuf,
    /// Set when the registry failed and the last good component was used: why.
    pub stale: Option<String>,
    /// The artifact's layer and annotations.
    pub artifact: Artifact,
}

/// Resolves `reference` to a component in `store`.
///
/// A digest already in the store is used without asking the registry. A tag
/// is resolved by the registry every time this is called (at load and on
/// reload); when that fails and the tag resolved before, the last good
/// component is returned with [`Fetched::stale`] saying why. Only an
/// unreachable or refusing registry falls back: a component that fails its
/// digest or its signature check is an error, whatever was loaded before.
///
/// With keys in `verification`, the component must carry a cosign signature
/// by one of them (checked against the store's material first, then the
/// registry's).
///
/// # Errors
/// The registry cannot be used (and nothing was resolved before), or its
/// answer is not a policy component, does not match its digest, is too big,
/// or is not signed by the keys.
pub fn fetch(
    reference: &PolicyRef,
    options: &RegistryOptions,
    verification: &Verification,
    store: &Store,
) -> Result<Fetched, RegistryError> {
    let fetched = resolve(reference, options, store)?;
    if verification.keys.is_empty() {
        return Ok(fetched);
    }
    let connection = Connection::new(options)?;
    run(verify(
        &connection,
        &fetched.pinned,
        &fetched.digest,
        verification,
        store,
    ))??;
    Ok(fetched)
}

fn resolve(
    reference: &PolicyRef,
    options: &RegistryOptions,
    store: &Store,
) -> Result<Fetched, RegistryError> {
    if let Some(digest) = reference.digest()
        && let Some(fetched) = from_store(reference, digest, store)
    {
        return Ok(fetched);
    }
    match pull(reference, options, store) {
        Ok(fetched) => Ok(fetched),
        Err(error @ RegistryError::Registry { .. }) => {
            let fallback = store
                .last_good(reference)
                .and_then(|digest| from_store(reference, &digest, store));
            match fallback {
                Some(mut fetched) => {
                    fetched.stale = Some(error.to_string());
                    Ok(fetched)
                }
                None => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// Reads `reference`'s manifest and checks it is a policy, without pulling
/// the component: what `bouncer inspect oci://…` shows.
///
/// # Errors
/// As [`fetch`], without the fallback.
pub fn inspect(
    reference: &PolicyRef,
    options: &RegistryOptions,
) -> Result<(String, Artifact), RegistryError> {
    let connection = Connection::new(options)?;
    run(async {
        let (_, digest, artifact) = manifest(&connection, reference).await?;
        Ok((digest, artifact))
    })?
}

fn from_store(reference: &PolicyRef, digest: &str, store: &Store) -> Option<Fetched> {
    let manifest: OciImageManifest = serde_json::from_slice(&store.manifest(digest)?).ok()?;
    let artifact = Artifact::check(&manifest).ok()?;
    let path = store.blob(&artifact.layer_digest)?;
    Some(Fetched {
        pinned: reference.at(digest),
        digest: digest.to_owned(),
        path,
        stale: None,
        artifact,
    })
}

fn pull(
    reference: &PolicyRef,
    options: &RegistryOptions,
    store: &Store,
) -> Result<Fetched, RegistryError> {
    let connection = Connection::new(options)?;
    let (raw, digest, artifact) = run(manifest(&connection, reference))??;
    let path = match store.blob(&artifact.layer_digest) {
        Some(path) => path,
        None => {
            let bytes = run(layer(&connection, reference, &artifact))??;
            store.put_blob(&artifact.layer_digest, &bytes)?
        }
    };
    store.put_manifest(&digest, &raw)?;
    store.put_tag(reference, &digest)?;
    Ok(Fetched {
        pinned: reference.at(&digest),
        digest,
        path,
        stale: None,
        artifact,
    })
}

/// The raw manifest, its digest (checked against the reference's), and the
/// checked artifact.
async fn manifest(
    connection: &Connection,
    reference: &PolicyRef,
) -> Result<(Vec<u8>, String, Artifact), RegistryError> {
    let auth = connection.credentials.for_registry(reference.registry());
    let (raw, _) = connection
        .client
        .pull_manifest_raw(&reference.inner, &auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .map_err(|e| RegistryError::registry(reference, explain(&e)))?;
    let digest = sha256(&raw);
    if let Some(pinned) = reference.digest()
        && pinned != digest
    {
        return Err(RegistryError::Digest {
            reference: reference.to_string(),
            digest: pinned.to_owned(),
        });
    }
    let not_a_policy = |reason: String| RegistryError::NotAPolicy {
        reference: reference.to_string(),
        reason,
    };
    let parsed: OciImageManifest = serde_json::from_slice(&raw)
        .map_err(|e| not_a_policy(format!("its manifest is not an OCI image manifest: {e}")))?;
    let artifact = Artifact::check(&parsed).map_err(not_a_policy)?;
    Ok((raw.to_vec(), digest, artifact))
}

/// The component layer, at most its declared size, checked against its digest.
async fn layer(
    connection: &Connection,
    reference: &PolicyRef,
    artifact: &Artifact,
) -> Result<Vec<u8>, RegistryError> {
    let mut out = Bounded::new(artifact.layer_size);
    connection
        .client
        .pull_blob(&reference.inner, &artifact.layer(), &mut out)
        .await
        .map_err(|e| match e {
            oci_client::errors::OciDistributionError::DigestError(_) => RegistryError::Digest {
                reference: reference.to_string(),
                digest: artifact.layer_digest.clone(),
            },
            other => RegistryError::registry(reference, explain(&other)),
        })?;
    if sha256(out.bytes()) != artifact.layer_digest {
        return Err(RegistryError::Digest {
            reference: reference.to_string(),
            digest: artifact.layer_digest.clone(),
        });
    }
    Ok(out.into_bytes())
}
