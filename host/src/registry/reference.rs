//! `oci://<registry>/<repository>:<tag>` and `oci://…@sha256:<digest>`.

use std::fmt;

use super::error::RegistryError;

/// The scheme that marks a registry source in a configuration.
const SCHEME: &str = "oci://";

/// A policy in a registry, by tag or by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    pub(crate) inner: oci_client::Reference,
}

impl PolicyRef {
    /// Whether `text` names a registry source (starts with `oci://`).
    pub fn is_oci(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// Parses `oci://registry/repository:tag` or `oci://registry/repository@sha256:…`;
    /// the `oci://` prefix is optional (`bouncer push` takes either).
    ///
    /// # Errors
    /// [`RegistryError::Reference`] saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let bare = text.strip_prefix(SCHEME).unwrap_or(text);
        let bad = |reason: String| RegistryError::Reference {
            reference: text.to_owned(),
            reason,
        };
        // Without a registry host the OCI rules would silently mean Docker Hub.
        let host = bare.split('/').next().unwrap_or_default();
        if !bare.contains('/') || !(host.contains('.') || host.contains(':') || host == "localhost")
        {
            return Err(bad(
                "name the registry host, as in oci://registry.example.com/policies/name:1.0".into(),
            ));
        }
        if let Some((_, digest)) = bare.split_once('@')
            && !is_sha256(digest)
        {
            return Err(bad(format!(
                "the digest `{digest}` is not sha256:<64 hex digits>"
            )));
        }
        let inner: oci_client::Reference = bare.parse().map_err(|e| {
            bad(format!(
                "{e}; expected registry/repository:tag or registry/repository@sha256:<digest>, \
                 with a lower-case repository"
            ))
        })?;
        Ok(Self { inner })
    }

    /// The registry host (and port).
    pub fn registry(&self) -> &str {
        self.inner.resolve_registry()
    }

    /// The repository within the registry.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, when the reference names one (the default tag is `latest`).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The pinned digest, when the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The same repository pinned to `digest`.
    pub fn at(&self, digest: &str) -> Self {
        Self {
            inner: oci_client::Reference::with_digest(
                self.inner.registry().to_owned(),
                self.inner.repository().to_owned(),
                digest.to_owned(),
            ),
        }
    }
}

/// `sha256:` followed by 64 lower-case hex digits.
pub(crate) fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.inner.whole())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests_parse() {
        let tagged = PolicyRef::parse("oci://localhost:5000/policies/deny-latest:1.0").unwrap();
        assert_eq!(tagged.registry(), "localhost:5000");
        assert_eq!(tagged.repository(), "policies/deny-latest");
        assert_eq!(tagged.tag(), Some("1.0"));
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = PolicyRef::parse(&format!("oci://reg.example.com/p@{digest}")).unwrap();
        assert_eq!(pinned.digest(), Some(digest.as_str()));
        assert_eq!(
            pinned.to_string(),
            format!("oci://reg.example.com/p@{digest}")
        );
    }

    #[test]
    fn bad_references_say_why() {
        for (text, says) in [
            ("oci://deny-latest:1.0", "name the registry host"),
            ("oci://reg.example.com/p@sha256:abc", "is not sha256"),
            (
                "oci://reg.example.com/UPPER:1",
                "oci://reg.example.com/UPPER:1",
            ),
        ] {
            let error = PolicyRef::parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
