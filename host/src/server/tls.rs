//! TLS for the webhook: serving certificates (from files, re-read when they
//! change, or generated at start) and optional client-certificate checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub(super) enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {what} from {}", path.display())]
    Pem {
        /// What was expected (certificate chain, private key, client CA).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// rustls refused the material (key does not match, unsupported algorithm).
    #[error("invalid TLS material: {0}")]
    Rustls(rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate")]
    Generate(#[from] rcgen::Error),
    /// The CA file could not be written.
    #[error("cannot write the CA certificate to {}", path.display())]
    WriteCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The client CA bundle is unusable.
    #[error("invalid client CA bundle")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        Self::Rustls(error)
    }
}

pub use crate::crypto::{install_default_provider, provider};

/// The serving certificate, swapped in place when its files change.
#[derive(Debug)]
pub(super) struct CertStore {
    current: ArcSwap<CertifiedKey>,
    files: Option<(PathBuf, PathBuf)>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertStore {
    /// Loads the certificate chain and key from PEM files.
    pub(super) fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            current: ArcSwap::from_pointee(load_pair(cert, key)?),
            files: Some((cert.to_owned(), key.to_owned())),
        })
    }

    /// Generates a CA and a serving certificate for `localhost` and `127.0.0.1`
    /// signed by it, and returns the CA in PEM so clients can trust it.
    pub(super) fn self_signed() -> Result<(Self, String), TlsError> {
        let generated = crate::crypto::SelfSigned::generate()?;
        let chain = vec![generated.leaf_der.clone(), generated.ca_der.clone()];
        let key =
            PrivateKeyDer::try_from(generated.key_der.clone()).map_err(|e| TlsError::Pem {
                what: "generated private key",
                path: PathBuf::new(),
                source: e.into(),
            })?;
        let certified = CertifiedKey::from_der(chain, key, &provider())?;
        Ok((
            Self {
                current: ArcSwap::from_pointee(certified),
                files: None,
            },
            generated.ca_pem,
        ))
    }

    /// When the serving certificate (the chain's first) stops being valid, in
    /// seconds since the Unix epoch; `None` when it cannot be read.
    pub(super) fn expires(&self) -> Option<i64> {
        let current = self.current.load();
        let leaf = current.cert.first()?;
        let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        Some(certificate.validity().not_after.timestamp())
    }

    /// Re-reads the files every `interval` when their modification time changes.
    /// A bad new pair is logged and the current one keeps serving.
    pub(super) async fn watch(self: Arc<Self>, interval: Duration) {
        let Some((cert, key)) = self.files.clone() else {
            return;
        };
        watch_files(&[&cert, &key], interval, || match load_pair(&cert, &key) {
            Ok(pair) => {
                self.current.store(Arc::new(pair));
                tracing::info!(cert = %cert.display(), "serving certificate reloaded");
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "keeping the current certificate");
            }
        })
        .await;
    }
}

/// Calls `changed` every time the modification time of one of `paths` changes,
/// checking every `interval`, for ever.
pub(crate) async fn watch_files(paths: &[&Path], interval: Duration, mut changed: impl FnMut()) {
    let mut seen = mtimes(paths);
    loop {
        tokio::time::sleep(interval).await;
        let now = mtimes(paths);
        if now != seen {
            seen = now;
            changed();
        }
    }
}

/// Modification times of `paths` (`None` for unreadable ones).
pub(crate) fn mtimes(paths: &[&Path]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    fn pem_error<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl Fn(rustls_pki_types::pem::Error) -> TlsError + 'a {
        move |source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source: source.into(),
        }
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem_error("certificate chain", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error("certificate chain", cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate chain",
            path: cert.to_owned(),
            source: "no CERTIFICATE block found".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(pem_error("private key", key))?;
    Ok(CertifiedKey::from_der(chain, key_der, &provider())?)
}

/// Writes the CA PEM where clients will look for it.
pub(super) fn write_ca(path: &Path, pem: &str) -> Result<(), TlsError> {
    std::fs::write(path, pem).map_err(|source| TlsError::WriteCa {
        path: path.to_owned(),
        source,
    })
}

/// The rustls configuration: HTTP/2 and HTTP/1.1, certificates from `store`,
/// and client certificates required when `client_ca` is given (in `serve`,
/// `client_ca.rs`'s reloading verifier).
pub(super) fn server_config(
    store: Arc<CertStore>,
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
