//! How bouncer reaches the API server: in-cluster credentials, a kubeconfig,
//! or not at all. `serve` needs a connection only for context lookups;
//! `audit` needs one to list what the cluster holds.
//!
//! kube's errors repeat their sources in their own messages, so they are put
//! into words here, where they enter ([`explain`], [`in_words`]), and carried
//! in messages, not as sources: a report that prints a chain says each part
//! once.

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
    #[error("reading kubeconfig {}: {}", path.display(), in_words(error))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: kube::config::KubeconfigError,
    },
    /// The kubeconfig names no usable cluster or user.
    #[error("using kubeconfig {}: {}", path.display(), in_words(error))]
    Use {
        /// The file.
        path: PathBuf,
        /// Why.
        error: kube::config::KubeconfigError,
    },
    /// No credentials were found (in-cluster, `KUBECONFIG`, `~/.kube/config`).
    #[error("no cluster credentials found (in-cluster, KUBECONFIG or ~/.kube/config): {0}")]
    NotFound(kube::config::InferConfigError),
    /// The client could not be built from the credentials.
    #[error("building a Kubernetes client: {}", explain(.0))]
    Client(kube::Error),
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
        other => in_words(other),
    }
}

/// A foreign error and its causes in one line, each part once: kube's (and
/// std's I/O) errors often repeat their source in their own message.
pub fn in_words(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = inner.source();
    }
    text
}

impl From<kube::Error> for AccessError {
    fn from(error: kube::Error) -> Self {
        Self::Client(error)
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
                let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|error| {
                    AccessError::Read {
                        path: path.clone(),
                        error,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|error| AccessError::Use {
                        path: path.clone(),
                        error,
                    })?
            }
        };
        Ok(Some(kube::Client::try_from(config)?))
    }
}
