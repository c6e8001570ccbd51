//! The one TLS crypto provider of the process: ring, already in the
//! dependency tree. rustls panics on first use when two providers are compiled
//! in and none was chosen, and both the server and the registry client use it.
//! Also the self-signed certificates both the server and the tests generate.

use std::sync::Arc;

/// The crypto provider bouncer uses everywhere.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs [`provider`] as the process default; a second call does nothing.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A CA and a serving certificate for `localhost` and `127.0.0.1` signed by
/// it: `bouncer serve` without certificate files, and the tests' registries.
pub struct SelfSigned {
    /// The CA, PEM: what clients trust.
    pub ca_pem: String,
    /// The CA, DER.
    pub ca_der: rustls_pki_types::CertificateDer<'static>,
    /// The serving certificate, PEM.
    pub leaf_pem: String,
    /// The serving certificate, DER.
    pub leaf_der: rustls_pki_types::CertificateDer<'static>,
    /// The serving certificate's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The serving certificate's private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl SelfSigned {
    /// Generates a fresh pair.
    ///
    /// # Errors
    /// Key generation or signing failed.
    pub fn generate() -> Result<Self, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "bouncer self-signed CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "bouncer");
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            leaf_pem: leaf.pem(),
            leaf_der: leaf.der().clone(),
            key_pem: leaf_key.serialize_pem(),
            key_der: leaf_key.serialize_der(),
        })
    }
}
