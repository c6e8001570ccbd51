//! How commands without a configuration reach a registry: the flags that
//! stand in for a configuration's `registry:` block.

use std::path::PathBuf;

use bouncer::registry::{PolicyRef, RegistryOptions};

/// How to reach a registry from the command line (the `registry:` block of a
/// configuration, for commands that have none).
#[derive(Debug, clap::Args)]
pub(super) struct RegistryArgs {
    /// A Docker config.json with credentials [default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,
    /// PEM certificates to trust for the registry, besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Reach the registry over plain HTTP (a local test registry).
    #[arg(long)]
    plain_http: bool,
    /// How long the whole exchange with the registry may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    registry_timeout: std::time::Duration,
}

impl RegistryArgs {
    /// Runs one exchange with a registry on a runtime of its own: the CLI's
    /// one crossing into async for `push` and `inspect`.
    pub(super) fn exchange<T>(work: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
        Ok(runtime.block_on(work))
    }

    pub(super) fn options(&self, reference: &PolicyRef) -> RegistryOptions {
        RegistryOptions {
            auth: self.auth.clone(),
            ca_bundle: self.ca_bundle.clone(),
            plain_http: if self.plain_http {
                vec![reference.registry().to_owned()]
            } else {
                Vec::new()
            },
            store: None,
            timeout: self.registry_timeout,
        }
    }
}
