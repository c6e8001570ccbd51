//! A TLS client that trusts only the CA `bouncer serve --write-ca` wrote:
//! shared by the process tests and the load bench (included there by path).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// A rustls client configuration (ring) whose only root is the CA in `ca`.
pub(crate) fn client_config(ca: &Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the CA file reads") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
