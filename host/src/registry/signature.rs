//! Signatures in cosign's keyed format, so `cosign verify --key` accepts what
//! `bouncer push --sign` writes and bouncer accepts what `cosign sign --key` writes.
//!
//! A signature lives in the policy's repository under the tag
//! `sha256-<manifest hex>.sig`: an OCI manifest whose layers are
//! simple-signing payloads (`application/vnd.dev.cosign.simplesigning.v1+json`)
//! naming the signed manifest digest, each with its ECDSA P-256 / SHA-256
//! signature (DER, base64) in the `dev.cosignproject.cosign/signature`
//! annotation. Several signers append layers to the same manifest.
//!
//! Verification material that checked out is kept in the store beside the
//! component, so a pinned digest verifies again at the next start without the
//! registry; the keys of the configuration in force are applied every time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};

use super::client::Connection;
use super::error::RegistryError;
use super::reference::PolicyRef;
use super::store::Store;
use super::store::sha256;

/// The layer media type of a simple-signing payload.
const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation that carries a payload's signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// A payload is a few hundred bytes; anything far larger is not one.
const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Signature layers considered per component.
const MAX_SIGNATURES: usize = 32;

/// Public keys a registry policy must be signed by: the `verify:` block of
/// `policies.yaml`. With no keys, nothing is checked.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Verification {
    /// PEM public keys (cosign's `cosign.pub`, or any P-256 SPKI PEM); a
    /// component signed by any one of them loads.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
}

/// One signed payload: what cosign stores per signature.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Signed {
    /// The payload, base64.
    payload: String,
    /// Its signature, base64 of DER.
    signature: String,
}

/// The simple-signing payload for `digest` in `repository` (`registry/repo`).
fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .unwrap_or_default()
}

fn signature_tag(reference: &PolicyRef, digest: &str) -> PolicyRef {
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    PolicyRef {
        inner: oci_client::Reference::with_tag(
            reference.inner.registry().to_owned(),
            reference.repository().to_owned(),
            tag,
        ),
    }
}

fn repository_of(reference: &PolicyRef) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// Reads a P-256 private key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`).
fn signing_key(path: &Path) -> Result<SigningKey, RegistryError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RegistryError::file("signing key", path, e))?;
    if text.contains("ENCRYPTED") {
        return Err(RegistryError::file(
            "signing key",
            path,
            "it is encrypted; bouncer reads unencrypted P-256 PEM keys (openssl genpkey \
             -algorithm EC -pkeyopt ec_paramgen_curve:P-256); cosign verifies with its public half",
        ));
    }
    SigningKey::from_pkcs8_pem(&text)
        .or_else(|_| p256::SecretKey::from_sec1_pem(&text).map(SigningKey::from))
        .map_err(|_| {
            RegistryError::file(
                "signing key",
                path,
                "not a P-256 private key in PEM (PKCS#8 `BEGIN PRIVATE KEY` or SEC1 `BEGIN EC PRIVATE KEY`)",
            )
        })
}

fn verifying_key(path: &Path) -> Result<VerifyingKey, RegistryError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RegistryError::file("verification key", path, e))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|_| {
        RegistryError::file(
            "verification key",
            path,
            "not a P-256 public key in PEM (`BEGIN PUBLIC KEY`, as in cosign.pub)",
        )
    })
}

/// Signs the manifest `digest` of `reference` with the key in `key` and pushes
/// the signature under cosign's tag, keeping signatures already there.
pub(crate) async fn sign(
    connection: &Connection,
    reference: &PolicyRef,
    digest: &str,
    key: &Path,
) -> Result<PolicyRef, RegistryError> {
    let key = signing_key(key)?;
    let payload = payload(&repository_of(reference), digest);
    let signature: Signature = key.sign(&payload);
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let target = signature_tag(reference, digest);
    let failed = |e: super::client::Failure| RegistryError::registry(&target, e.to_string());

    let layer = ImageLayer::new(
        payload,
        PAYLOAD_MEDIA_TYPE.to_owned(),
        Some(BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), encoded)])),
    );
    let config = Config::new(
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
        oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE.to_owned(),
        None,
    );
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
    // Signatures already there (other keys, earlier runs) stay: their blobs
    // are in the repository, so only the manifest has to name them.
    // Best effort: a signature manifest that cannot be read is replaced.
    if let Ok(Some(existing)) = signature_manifest(connection, &target).await {
        let ours = std::mem::take(&mut manifest.layers);
        let kept: Vec<OciDescriptor> = existing
            .layers
            .into_iter()
            // Every signer's payload is the same blob; the annotation differs.
            .filter(|l| {
                !ours
                    .iter()
                    .any(|o| o.digest == l.digest && o.annotations == l.annotations)
            })
            .collect();
        manifest.layers = kept.into_iter().chain(ours).collect();
    }
    super::upload::upload(connection, &target, &[layer], &config, &manifest)
        .await
        .map_err(failed)?;
    Ok(target)
}

/// Checks that the manifest `digest` of `reference` is signed by one of
/// `verification`'s keys (there is at least one), from the store's material
/// or the registry's.
pub(crate) async fn verify(
    connection: &Connection,
    reference: &PolicyRef,
    digest: &str,
    verification: &Verification,
    store: &Store,
) -> Result<(), RegistryError> {
    let keys = keys(verification)?;
    if verified_by_store(&keys, reference, digest, store) {
        return Ok(());
    }
    let expected = repository_of(reference);
    let signed = fetch_signatures(connection, reference, digest).await?;
    if signed.is_empty() {
        return Err(unsigned(
            reference,
            digest,
            &keys,
            "it has no cosign signature",
        ));
    }
    if !signed.iter().any(|s| {
        keys.iter()
            .any(|(_, key)| verifies(s, key, digest, &expected))
    }) {
        return Err(unsigned(
            reference,
            digest,
            &keys,
            &format!(
                "none of its {} signature(s) verifies with these keys",
                signed.len()
            ),
        ));
    }
    store.put_signatures(digest, &serde_json::to_vec(&signed).unwrap_or_default())?;
    Ok(())
}

/// Whether the store's verification material for `digest` verifies with one
/// of `verification`'s keys, without asking the registry.
///
/// # Errors
/// A key file cannot be read.
pub(crate) fn verified_in_store(
    reference: &PolicyRef,
    digest: &str,
    verification: &Verification,
    store: &Store,
) -> Result<bool, RegistryError> {
    Ok(verified_by_store(
        &keys(verification)?,
        reference,
        digest,
        store,
    ))
}

fn keys(verification: &Verification) -> Result<Vec<(&PathBuf, VerifyingKey)>, RegistryError> {
    verification
        .keys
        .iter()
        .map(|path| verifying_key(path).map(|key| (path, key)))
        .collect()
}

fn verified_by_store(
    keys: &[(&PathBuf, VerifyingKey)],
    reference: &PolicyRef,
    digest: &str,
    store: &Store,
) -> bool {
    let expected = repository_of(reference);
    store
        .signatures(digest)
        .and_then(|bytes| serde_json::from_slice::<Vec<Signed>>(&bytes).ok())
        .is_some_and(|signed| {
            signed.iter().any(|s| {
                keys.iter()
                    .any(|(_, key)| verifies(s, key, digest, &expected))
            })
        })
}

fn unsigned(
    reference: &PolicyRef,
    digest: &str,
    keys: &[(&PathBuf, VerifyingKey)],
    why: &str,
) -> RegistryError {
    RegistryError::Unsigned {
        reference: reference.to_string(),
        digest: digest.to_owned(),
        keys: keys
            .iter()
            .map(|(path, _)| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        reason: why.to_owned(),
    }
}

fn verifies(signed: &Signed, key: &VerifyingKey, digest: &str, repository: &str) -> bool {
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
    };
    let (Some(payload), Some(der)) = (decode(&signed.payload), decode(&signed.signature)) else {
        return false;
    };
    let Ok(signature) = Signature::from_der(&der) else {
        return false;
    };
    if key.verify(&payload, &signature).is_err() {
        return false;
    }
    // The signature is good; it must also be about this component, here.
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&payload) else {
        return false;
    };
    let critical = &claims["critical"];
    critical["image"]["docker-manifest-digest"] == digest
        && critical["type"] == "cosign container image signature"
        && critical["identity"]["docker-reference"]
            .as_str()
            .is_none_or(|r| r == repository)
}

/// The signature manifest under `target` (cosign's `.sig` tag), `None` when
/// nothing is signed yet.
async fn signature_manifest(
    connection: &Connection,
    target: &PolicyRef,
) -> Result<Option<OciImageManifest>, RegistryError> {
    match connection.manifest(target).await {
        Ok(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| RegistryError::NotAPolicy {
                reference: target.to_string(),
                reason: format!("its signature manifest is not an OCI manifest: {e}"),
            }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(RegistryError::registry(target, e.to_string())),
    }
}

async fn fetch_signatures(
    connection: &Connection,
    reference: &PolicyRef,
    digest: &str,
) -> Result<Vec<Signed>, RegistryError> {
    let target = signature_tag(reference, digest);
    let Some(manifest) = signature_manifest(connection, &target).await? else {
        return Ok(Vec::new());
    };
    let mut signed = Vec::new();
    for layer in manifest.layers.iter().take(MAX_SIGNATURES) {
        let Some(signature) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        if layer.media_type != PAYLOAD_MEDIA_TYPE
            || layer.size < 0
            || layer.size as u64 > MAX_PAYLOAD_BYTES
        {
            continue;
        }
        let Ok(payload) = connection
            .blob(&target, &layer.digest, layer.size as u64)
            .await
        else {
            continue;
        };
        if sha256(&payload) != layer.digest {
            continue;
        }
        signed.push(Signed {
            payload: base64::engine::general_purpose::STANDARD.encode(&payload),
            signature: signature.clone(),
        });
    }
    Ok(signed)
}
