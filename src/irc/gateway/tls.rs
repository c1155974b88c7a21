//! Optional TLS for the gateway: loads the configured PEM certificate chain
//! and private key into a `tokio-rustls` acceptor (ring provider).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::GatewayTlsConfig;

use super::GatewayError;

fn open(path: &Path) -> Result<BufReader<File>, GatewayError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", path.display())))
}

/// A TLS acceptor for the configured certificate and key.
pub fn acceptor(config: &GatewayTlsConfig) -> Result<TlsAcceptor, GatewayError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open(&config.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", config.cert.display())))?;
    if certs.is_empty() {
        return Err(GatewayError::Tls(format!(
            "{}: no certificate found",
            config.cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut open(&config.key)?)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", config.key.display())))?
        .ok_or_else(|| {
            GatewayError::Tls(format!("{}: no private key found", config.key.display()))
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| GatewayError::Tls(format!("certificate and key do not fit: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
