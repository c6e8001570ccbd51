//! Resolving a reference to a stored component: from the store when the
//! digest is known, from the registry otherwise, from the last good
//! resolution when the registry fails.

use std::path::PathBuf;

use oci_client::manifest::OciImageManifest;

use super::RegistryOptions;
use super::artifact::Artifact;
use super::client::{Connection, within};
use super::error::RegistryError;
use super::reference::PolicyRef;
use super::signature::{Verification, verified_in_store, verify};
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
/// Every answer is read under a byte bound, and the whole resolution (manifest,
/// component, signatures) ends within `registry.timeout`. The tag is not
/// recorded as good here: the caller does that with [`Fetched::loaded`] once
/// the component has loaded.
///
/// # Errors
/// The registry cannot be used (and nothing was resolved before), or its
/// answer is not a policy component, does not match its digest, is too big,
/// or is not signed by the keys.
pub async fn fetch(
    reference: &PolicyRef,
    options: &RegistryOptions,
    verification: &Verification,
    store: &Store,
) -> Result<Fetched, RegistryError> {
    if verification.keys.is_empty()
        && let Some(digest) = reference.digest()
        && let Some(fetched) = from_store(reference, digest, store)
    {
        return Ok(fetched);
    }
    let connection = Connection::new(options)?;
    let timeout = options.timeout;
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let fetched = resolve(&connection, reference, store, deadline, timeout).await?;
        if !verification.keys.is_empty() {
            within(
                deadline,
                timeout,
                reference,
                verify(
                    &connection,
                    &fetched.pinned,
                    &fetched.digest,
                    verification,
                    store,
                ),
            )
            .await?;
        }
        Ok(fetched)
    }
}

/// Resolves `reference` from the store alone, never asking the registry: a
/// pinned digest that is stored, or the component a tag last loaded (marked
/// [`Fetched::stale`]), verified by stored signatures when keys are
/// configured. `None`: only the registry can say.
pub fn fetch_stored(
    reference: &PolicyRef,
    verification: &Verification,
    store: &Store,
) -> Option<Fetched> {
    let (digest, stale) = match reference.digest() {
        Some(digest) => (digest.to_owned(), None),
        None => (
            store.last_good(reference)?,
            Some("the registry is being asked in the background".to_owned()),
        ),
    };
    let mut fetched = from_store(reference, &digest, store)?;
    if !verification.keys.is_empty()
        && !verified_in_store(reference, &digest, verification, store).ok()?
    {
        return None;
    }
    fetched.stale = stale;
    Some(fetched)
}

impl Fetched {
    /// Records this component as the last good resolution of `reference`'s
    /// tag. Call it only once the component has loaded (and verified): a tag
    /// that now names a broken component must keep its previous good one.
    ///
    /// # Errors
    /// The store cannot be written.
    pub fn loaded(&self, reference: &PolicyRef, store: &Store) -> Result<(), RegistryError> {
        if self.stale.is_some() {
            return Ok(());
        }
        store.put_tag(reference, &self.digest)
    }
}

async fn resolve(
    connection: &Connection,
    reference: &PolicyRef,
    store: &Store,
    deadline: tokio::time::Instant,
    timeout: std::time::Duration,
) -> Result<Fetched, RegistryError> {
    if let Some(digest) = reference.digest()
        && let Some(fetched) = from_store(reference, digest, store)
    {
        return Ok(fetched);
    }
    match within(
        deadline,
        timeout,
        reference,
        pull(connection, reference, store),
    )
    .await
    {
        Ok(fetched) => Ok(fetched),
        Err(error @ RegistryError::Registry { .. }) => {
            let fallback = store
                .last_good(reference)
                .and_then(|digest| from_store(reference, &digest, store));
            match fallback {
                Some(mut fetched) => {
                    fetched.stale = Some(format!("the registry failed ({error})"));
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
pub async fn inspect(
    reference: &PolicyRef,
    options: &RegistryOptions,
) -> Result<(String, Artifact), RegistryError> {
    let connection = Connection::new(options)?;
    let timeout = options.timeout;
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let (_, digest, artifact) = within(
            deadline,
            timeout,
            reference,
            manifest(&connection, reference),
        )
        .await?;
        Ok((digest, artifact))
    }
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

/// The manifest and the component from the registry into the store (the
/// component only when the store lacks it). The tag is not recorded here: see
/// [`Fetched::loaded`].
async fn pull(
    connection: &Connection,
    reference: &PolicyRef,
    store: &Store,
) -> Result<Fetched, RegistryError> {
    let (raw, digest, artifact) = manifest(connection, reference).await?;
    let path = match store.blob(&artifact.layer_digest) {
        Some(path) => path,
        None => {
            let bytes = layer(connection, reference, &artifact).await?;
            store.put_blob(&artifact.layer_digest, &bytes)?
        }
    };
    store.put_manifest(&digest, &raw)?;
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
    let raw = connection
        .manifest(reference)
        .await
        .map_err(|e| RegistryError::registry(reference, e.to_string()))?;
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
    Ok((raw, digest, artifact))
}

/// The component layer, at most its declared size, checked against its digest.
async fn layer(
    connection: &Connection,
    reference: &PolicyRef,
    artifact: &Artifact,
) -> Result<Vec<u8>, RegistryError> {
    let bytes = connection
        .blob(reference, &artifact.layer_digest, artifact.layer_size)
        .await
        .map_err(|e| RegistryError::registry(reference, e.to_string()))?;
    if sha256(&bytes) != artifact.layer_digest {
        return Err(RegistryError::Digest {
            reference: reference.to_string(),
            digest: artifact.layer_digest.clone(),
        });
    }
    Ok(bytes)
}
