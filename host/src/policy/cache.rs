//! The on-disk cache of compiled policies.
//!
//! Compiling a component with Cranelift takes 100–700 ms; loading the native
//! artifact takes about 100 µs. Artifacts are keyed by the component's SHA-256
//! and by the engine's compatibility hash (wasmtime version, target, settings),
//! so a changed policy or an upgraded bouncer never loads a stale artifact.
//!
//! # Caveats
//! Loading an artifact runs native code from it: the cache directory must be
//! writable only by the user running bouncer.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

/// A directory of precompiled components for one engine configuration.
#[derive(Debug)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// The cache's directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Opens (creating) `dir` for artifacts of `engine`.
    pub(crate) fn open(dir: &Path, engine: &wasmtime::Engine) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        // `DefaultHasher::new()` uses fixed keys, so the key is the same in every
        // process of the same build.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// Loads the artifact for `digest`, or `None` when absent or unusable.
    pub(crate) fn load(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the artifact was written by `store` from `Component::serialize`
        // of the same engine configuration (the file name carries the engine's
        // compatibility hash), and the cache directory is trusted (module docs).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "discarding unusable compiled policy");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an artifact; a failure only costs a recompile next time, so it is logged, not returned.
    pub(crate) fn store(&self, digest: &str, artifact: &[u8]) {
        let path = self.path(digest);
        // Write then rename, so a concurrent reader never sees half a file.
        let result = tempfile::NamedTempFile::new_in(&self.dir).and_then(|mut file| {
            file.write_all(artifact)?;
            file.as_file().sync_all()?;
            file.persist(&path).map(drop).map_err(|e| e.error)
        });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "cannot cache compiled policy");
        }
    }
}
