//! The client CA bundle of mTLS, re-read when its file changes, like the
//! serving certificate: rotating the API server's client certificate authority
//! must not need a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::tls::{TlsError, provider, watch_files};

/// Verifies client certificates against the current CA bundle.
#[derive(Debug)]
pub(super) struct ClientCa {
    current: ArcSwap<Verifier>,
    path: PathBuf,
}

#[derive(Debug)]
struct Verifier(Arc<dyn ClientCertVerifier>);

impl ClientCa {
    /// Reads the CA bundle at `path`.
    ///
    /// # Errors
    /// The file is unreadable, holds no certificate, or one is invalid.
    pub(super) fn from_file(path: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            current: ArcSwap::from_pointee(Verifier(read(path)?)),
            path: path.to_owned(),
        })
    }

    /// Re-reads the bundle every `interval` when it changes; a bad new bundle
    /// is logged and the current one stays in force.
    pub(super) async fn watch(self: Arc<Self>, interval: Duration) {
        let path = self.path.clone();
        watch_files(&[&path], interval, || match read(&path) {
            Ok(verifier) => {
                self.current.store(Arc::new(Verifier(verifier)));
                tracing::info!(client_ca = %path.display(), "client CA bundle reloaded");
            }
            Err(error) => tracing::error!(
                error = %format!("{error:#}"),
                "keeping the current client CA bundle"
            ),
        })
        .await;
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.current.load().0.clone()
    }
}

fn read(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(std::iter::Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| TlsError::Pem {
            what: "client CA bundle",
            path: path.to_owned(),
            source: e.into(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: "client CA bundle",
            path: path.to_owned(),
            source: "no CERTIFICATE block found".into(),
        });
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?)
}

impl ClientCertVerifier for ClientCa {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints would borrow from a bundle that may be swapped mid-handshake;
        // clients with one certificate (the API server) send it without hints.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}
