//! TLS clients that trust only a test's CA (the one `bouncer serve --write-ca`
//! wrote, or one a test made): the one implementation, shared by the host's
//! process tests, the load bench and the `bouncer-tests` kit (both include
//! this file by path).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls client configuration (ring) whose only root is the CA in the file `ca`.
pub(crate) fn client_config(ca: &Path) -> rustls::ClientConfig {
    let pem = std::fs::read_to_string(ca).expect("the CA file reads");
    client_config_pem(&pem, None)
}

/// A rustls client configuration (ring) whose only root is `ca_pem`,
/// presenting `identity` (certificate chain PEM, key PEM) when given.
pub(crate) fn client_config_pem(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots);
    match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client chain");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client identity")
        }
    }
}
