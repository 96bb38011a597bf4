//! HTTP endpoint stage, TLS: the rustls server configuration from `--listen-tls-cert` and
//! `--listen-tls-key` (TLS 1.2 and 1.3 only, HTTP/1.1 ALPN). Setup only; must never accept a
//! certificate chain and key that do not fit each other.
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ServeError;

pub(super) fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServeError> {
    let read =
        |flag, path: &Path| std::fs::read(path).map_err(|source| ServeError::Read { flag, path: path.into(), source });
    let pem_err = |flag, path: &Path, what| ServeError::Pem { flag, path: path.into(), what };
    let cert_pem = read("--listen-tls-cert", cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| pem_err("--listen-tls-cert", cert, "CERTIFICATE"))?;
    if chain.is_empty() {
        return Err(pem_err("--listen-tls-cert", cert, "CERTIFICATE"));
    }
    let key_pem = read("--listen-tls-key", key)?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| pem_err("--listen-tls-key", key, "PRIVATE KEY"))?;
    let tls_err = |source| ServeError::Tls { cert: cert.into(), key: key.into(), source };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
