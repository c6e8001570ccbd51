//! What can go wrong between bouncer and a registry, each naming the reference.

use std::path::PathBuf;

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference cannot be parsed.
    #[error("invalid OCI reference `{reference}`: {reason}")]
    Reference {
        /// The text as written.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry could not be reached or refused the request.
    #[error("{reference}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// What the registry or the network said, and what to do.
        message: String,
    },
    /// The registry's answer is not a policy artifact.
    #[error("{reference}: not a policy component: {reason}")]
    NotAPolicy {
        /// The reference.
        reference: String,
        /// What is wrong with the artifact.
        reason: String,
    },
    /// The content does not match its digest.
    #[error("{reference}: the layer's content does not match its digest {digest}; refusing it")]
    Digest {
        /// The reference.
        reference: String,
        /// The digest the manifest promised.
        digest: String,
    },
    /// Verification is on and no signature by the configured keys was found.
    #[error(
        "{reference}: component {digest} is not signed by any of the keys {keys}: {reason}; sign it with `bouncer push --sign <key>` or `cosign sign --key <key>`"
    )]
    Unsigned {
        /// The reference.
        reference: String,
        /// The manifest digest that was checked.
        digest: String,
        /// The public key files tried.
        keys: String,
        /// What was found instead.
        reason: String,
    },
    /// A local file (credentials, CA bundle, component, store) cannot be used.
    #[error("{what} {}: {message}", path.display())]
    File {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl RegistryError {
    pub(crate) fn registry(reference: &impl std::fmt::Display, message: impl Into<String>) -> Self {
        Self::Registry {
            reference: reference.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn file(
        what: &'static str,
        path: &std::path::Path,
        error: impl std::fmt::Display,
    ) -> Self {
        Self::File {
            what,
            path: path.to_owned(),
            message: error.to_string(),
        }
    }
}
