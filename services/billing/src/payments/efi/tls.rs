//! Both directions of Efí's mutual TLS, rustls with the ring provider (as everywhere else in
//! the platform; reqwest is built without a provider of its own).
//!
//! - [`client_config`]: our API client presents the certificate Efí issued with the
//!   application's credentials; the Pix API refuses any call made without it.
//! - [`webhook_acceptor`]: the Pix webhook listener requires a client certificate chaining to
//!   Efí's published chain, so anyone else is refused during the handshake, before a byte of
//!   HTTP is read. Efí checks this when the webhook is registered: it first calls without a
//!   certificate and expects to be turned away.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file that could not be read or held nothing usable.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls: client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file (a chain: leaf first).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// The API client's TLS: our certificate and key, and `server_ca` as the only trusted root
/// when given (a private CA, a test's), else the operating system's trust store.
pub fn client_config(
    certificate: &Path,
    private_key_file: &Path,
    server_ca: Option<&Path>,
) -> Result<ClientConfig, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match server_ca {
        Some(ca) => builder.with_root_certificates(roots(ca)?),
        None => builder.with_platform_verifier()?,
    };
    Ok(
        builder
            .with_client_auth_cert(certificates(certificate)?, private_key(private_key_file)?)?,
    )
}

/// The webhook listener's TLS: its own certificate, and a client certificate required and
/// verified against `client_ca` (TLS 1.2 and 1.3: Efí asks for at least 1.2).
pub fn webhook_acceptor(
    certificate: &Path,
    private_key_file: &Path,
    client_ca: &Path,
) -> Result<TlsAcceptor, TlsError> {
    let provider = provider();
    // No `allow_unauthenticated`: a client without a certificate fails the handshake.
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca)?), provider.clone())
            .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(certificate)?, private_key(private_key_file)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
