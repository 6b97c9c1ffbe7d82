//! TLS settings for both directions, built once and shared: the listener's server
//! config from PEM files (re-read on reload), and nothing else. rustls with the ring
//! provider does all the cryptography; this file only loads material and picks options.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The HTTPS listener's config: certificate chain and key (PKCS#8, PKCS#1 or SEC1) from
/// PEM files, TLS 1.2 and 1.3, ALPN `http/1.1`. Errors name the file, never key bytes.
pub fn server_config_from_files(
    cert_file: &str,
    key_file: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("server.tls.cert_file {cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("server.tls.cert_file {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tls.cert_file {cert_file}: no certificate found"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("server.tls.key_file {key_file}: no usable private key ({e})"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: certificate and key do not match or are invalid: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
