//! How bouncer reaches the API server: in-cluster credentials, a kubeconfig,
//! or not at all. `serve` needs a connection only for context lookups;
//! `audit` needs one to list what the cluster holds.
//!
//! Errors name what failed and keep the cause as their source (not in their
//! message), so a report that prints the chain says each part once.

use std::path::PathBuf;

/// How to reach the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeAccess {
    /// Never: context lookups fail.
    None,
    /// In-cluster credentials, else `KUBECONFIG` or `~/.kube/config`.
    Infer,
    /// This kubeconfig file; unusable is an error.
    Kubeconfig(PathBuf),
}

/// Connecting to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The kubeconfig file could not be read or parsed.
    #[error("reading kubeconfig {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig names no usable cluster or user.
    #[error("using kubeconfig {}", path.display())]
    Use {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// No credentials were found (in-cluster, `KUBECONFIG`, `~/.kube/config`).
    #[error("no cluster credentials found (in-cluster, KUBECONFIG or ~/.kube/config): {0}")]
    NotFound(kube::config::InferConfigError),
    /// The client could not be built from the credentials.
    #[error("building a Kubernetes client")]
    Client(#[from] kube::Error),
}

/// A Kubernetes client error in words: the API server's status as code,
/// reason and message, not kube's `ApiError: … (Status { … })` dump.
pub fn explain(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(" {}", status.reason)
            };
            format!(
                "the API server answered {}{reason}: {}",
                status.code, status.message
            )
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(inner) = cause {
                let more = inner.to_string();
                if !text.contains(&more) {
                    text = format!("{text}: {more}");
                }
                cause = inner.source();
            }
            text
        }
    }
}

impl KubeAccess {
    /// A client per this access; `Ok(None)` for [`KubeAccess::None`].
    ///
    /// # Errors
    /// An unreadable or unusable kubeconfig, or, for [`KubeAccess::Infer`],
    /// no credentials at all.
    pub async fn client(&self) -> Result<Option<kube::Client>, AccessError> {
        let config = match self {
            Self::None => return Ok(None),
            Self::Infer => kube::Config::infer().await.map_err(AccessError::NotFound)?,
            Self::Kubeconfig(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    AccessError::Read {
                        path: path.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|source| AccessError::Use {
                        path: path.clone(),
                        source,
                    })?
            }
        };
        Ok(Some(kube::Client::try_from(config)?))
    }
}
