//! The content-addressed store of pulled components, on disk.
//!
//! ```text
//! <dir>/blobs/sha256/<hex>               a component, named by its digest
//! <dir>/manifests/sha256/<hex>           a manifest, named by its digest
//! <dir>/tags/<registry>/<repository>/<tag>  the manifest digest the tag last resolved to
//! <dir>/signatures/sha256/<hex>          cosign signatures of a manifest that verified
//! ```
//!
//! A digest names its content forever, so a pinned reference found here needs
//! no registry at all, across restarts and across replicas sharing a volume.
//! The tag files are the last good resolution: when the registry is down, a
//! tag still loads what it loaded before. Every file is written to a temporary
//! name and renamed, so a crash never leaves half a component under a digest;
//! contents are checked against their digest again when read.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::RegistryError;
use super::reference::{PolicyRef, is_sha256};

/// The store's default place: `oci/` in the user's cache directory.
pub fn default_store_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("bouncer").join("oci"))
}

/// A store directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs").join(digest.replacen(':', "/", 1))
    }

    fn manifest_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("manifests")
            .join(digest.replacen(':', "/", 1))
    }

    fn signatures_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("signatures")
            .join(digest.replacen(':', "/", 1))
    }

    /// The verification material kept for the manifest `digest`.
    pub(crate) fn signatures(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.signatures_path(digest)).ok()
    }

    pub(crate) fn put_signatures(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        self.write(&self.signatures_path(digest), bytes)
    }

    fn tag_path(&self, reference: &PolicyRef) -> Option<PathBuf> {
        let tag = reference.tag()?;
        Some(
            self.dir
                .join("tags")
                .join(reference.registry())
                .join(reference.repository())
                .join(tag),
        )
    }

    /// The blob with `digest`, if stored and intact.
    pub(crate) fn blob(&self, digest: &str) -> Option<PathBuf> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).ok()?;
        (sha256(&bytes) == digest).then_some(path)
    }

    /// The manifest with `digest`, if stored and intact.
    pub(crate) fn manifest(&self, digest: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.manifest_path(digest)).ok()?;
        (sha256(&bytes) == digest).then_some(bytes)
    }

    /// The manifest digest `reference`'s tag last resolved to.
    pub(crate) fn last_good(&self, reference: &PolicyRef) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_path(reference)?).ok()?;
        let digest = text.trim();
        is_sha256(digest).then(|| digest.to_owned())
    }

    pub(crate) fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, RegistryError> {
        let path = self.blob_path(digest);
        self.write(&path, bytes)?;
        Ok(path)
    }

    pub(crate) fn put_manifest(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        self.write(&self.manifest_path(digest), bytes)
    }

    pub(crate) fn put_tag(&self, reference: &PolicyRef, digest: &str) -> Result<(), RegistryError> {
        match self.tag_path(reference) {
            Some(path) => self.write(&path, digest.as_bytes()),
            None => Ok(()),
        }
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        let failed = |e: &dyn std::fmt::Display| RegistryError::file("policy store", path, e);
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(|e| failed(&e))?;
        let mut file = tempfile::NamedTempFile::new_in(parent).map_err(|e| failed(&e))?;
        std::io::Write::write_all(&mut file, bytes).map_err(|e| failed(&e))?;
        file.persist(path).map_err(|e| failed(&e.error))?;
        Ok(())
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_blob_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let digest = sha256(b"component");
        let path = store.put_blob(&digest, b"component").unwrap();
        assert_eq!(store.blob(&digest), Some(path.clone()));
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(store.blob(&digest), None);
    }

    #[test]
    fn tags_remember_their_last_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let tagged = PolicyRef::parse("oci://localhost:5000/team/p:1.0").unwrap();
        assert_eq!(store.last_good(&tagged), None);
        let digest = sha256(b"manifest");
        store.put_tag(&tagged, &digest).unwrap();
        assert_eq!(store.last_good(&tagged), Some(digest.clone()));
        assert_eq!(
            store.last_good(&tagged.at(&digest)),
            None,
            "a digest has no tag"
        );
    }
}
