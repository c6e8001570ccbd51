//! An OCI client configured from [`RegistryOptions`], and the thread its
//! async work runs on.

use std::future::Future;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};

use super::RegistryOptions;
use super::auth::Credentials;
use super::error::RegistryError;

/// A registry that accepts the connection but never answers is given this long.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client and the credentials to present.
pub(crate) struct Connection {
    pub(crate) client: oci_client::Client,
    pub(crate) credentials: Credentials,
}

impl Connection {
    pub(crate) fn new(options: &RegistryOptions) -> Result<Self, RegistryError> {
        crate::crypto::install_default_provider();
        let mut extra_root_certificates = Vec::new();
        if let Some(path) = &options.ca_bundle {
            let data =
                std::fs::read(path).map_err(|e| RegistryError::file("CA bundle", path, e))?;
            if !data.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(RegistryError::file(
                    "CA bundle",
                    path,
                    "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                ));
            }
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(options.plain_http.clone()),
            extra_root_certificates,
            read_timeout: Some(READ_TIMEOUT),
            connect_timeout: Some(CONNECT_TIMEOUT),
            user_agent: concat!("bouncer/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Ok(Self {
            client: oci_client::Client::new(config),
            credentials: Credentials::load(options.auth.as_deref())?,
        })
    }
}

/// Runs `work` to completion on a thread of its own with a small runtime:
/// loading is synchronous, and may be called from a thread that already
/// drives a runtime (where blocking on another would panic).
pub(crate) fn run<T: Send>(work: impl Future<Output = T> + Send) -> Result<T, RegistryError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("bouncer-registry".into())
            .spawn_scoped(scope, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(work))
            })
            .map_err(|e| {
                RegistryError::registry(&"registry client", format!("cannot start a thread: {e}"))
            })?;
        match thread.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(RegistryError::registry(
                &"registry client",
                format!("cannot start a runtime: {e}"),
            )),
            Err(_) => Err(RegistryError::registry(
                &"registry client",
                "the OCI client panicked",
            )),
        }
    })
}

/// Whether the registry said the manifest (or the repository) does not exist.
pub(crate) fn is_not_found(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as Code};
    match error {
        E::ImageManifestNotFoundError(_) => true,
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, Code::ManifestUnknown | Code::NameUnknown)),
        _ => false,
    }
}

/// Words an OCI client error for a user: what failed and what to do.
pub(crate) fn explain(error: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = inner.source();
    }
    match error {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => format!(
            "the registry refused the credentials ({text}); put them in the Docker config.json \
             named by `registry.auth` (or log in with `docker login`)"
        ),
        _ if is_not_found(error) => {
            format!("no such tag or digest in the registry ({text})")
        }
        E::RequestError(_) => format!(
            "cannot reach the registry ({text}); for a registry without TLS, list it under \
             `registry.plainHttp`"
        ),
        _ => text,
    }
}

/// A buffer that refuses to grow past the size the manifest declared, so a
/// registry cannot make the host hold more than it agreed to.
pub(crate) struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl Bounded {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            bytes: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.bytes.len() + buf.len() > self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the layer is longer than the {} bytes its manifest declares",
                self.limit
            ))));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
