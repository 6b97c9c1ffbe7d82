//! TLS trust for the CLI talking to its own relay (`cc-relay status` and `health`): the
//! built-in roots plus the PEM files the operator names (`--ca-file`, the config's
//! `server.tls.cert_file`), each certificate in them trusted as a root and also as
//! itself. The second is what makes a self-signed relay work: webpki, rightly for the
//! internet, refuses a self-signed certificate marked as a CA (what `openssl req -x509`
//! makes) as a server's own, and a relay's operator who names that exact certificate
//! has already said who the relay is. rustls still checks the handshake signature with
//! the presented certificate's key, so only the holder of its private key gets through;
//! a pinned certificate's names and dates are not checked.
//!
//! Never used for upstreams: there, webpki's checks stand as they are
//! (`net::client::tls_client_config`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::client::read_pem_certificates;

/// The client TLS config for reaching a relay: webpki roots and every certificate in
/// `files` as roots, and those certificates pinned as described above.
pub fn relay_client_config(files: &[&str]) -> Result<Arc<rustls::ClientConfig>, String> {
    let verifier = PinnedOrWebPki::new(files)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// webpki first; when it refuses, a server certificate byte for byte equal to one the
/// operator named is accepted.
#[derive(Debug)]
struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl PinnedOrWebPki {
    fn new(files: &[&str]) -> Result<PinnedOrWebPki, String> {
        let mut pinned = Vec::new();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for &path in files {
            for cert in read_pem_certificates(path)? {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("CA file {path}: {e}"))?;
                pinned.push(cert);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PinnedOrWebPki { pinned, webpki })
    }

    fn is_pinned(&self, cert: &CertificateDer<'_>) -> bool {
        self.pinned.iter().any(|p| p.as_ref() == cert.as_ref())
    }
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(_) if self.is_pinned(end_entity) => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn verifier(files: &[&str]) -> PinnedOrWebPki {
        PinnedOrWebPki::new(files).unwrap_or_else(|e| panic!("{e}"))
    }

    fn verify(verifier: &PinnedOrWebPki, cert_file: &str, name: &str) -> Result<(), String> {
        let certs = read_pem_certificates(&fixture(cert_file)).unwrap_or_else(|e| panic!("{e}"));
        let name = ServerName::try_from(name.to_string()).unwrap_or_else(|e| panic!("{e}"));
        verifier
            .verify_server_cert(&certs[0], &certs[1..], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_named_certificate_is_trusted_as_itself_only() {
        let pinned = verifier(&[&fixture("selfsigned.pem")]);
        assert_eq!(verify(&pinned, "selfsigned.pem", "localhost"), Ok(()));
        // Pinned: the name it is reached by does not matter.
        assert_eq!(verify(&pinned, "selfsigned.pem", "relay.internal"), Ok(()));
        assert_eq!(
            verify(&pinned, "server.pem", "localhost"),
            Err("invalid peer certificate: UnknownIssuer".to_string())
        );
        // webpki alone refuses the same self-signed certificate.
        let unpinned = PinnedOrWebPki {
            pinned: Vec::new(),
            webpki: pinned.webpki.clone(),
        };
        assert!(verify(&unpinned, "selfsigned.pem", "localhost").is_err());
    }

    #[test]
    fn a_named_ca_is_trusted_with_webpki_checks() {
        let with_ca = verifier(&[&fixture("ca.pem")]);
        assert_eq!(verify(&with_ca, "server.pem", "localhost"), Ok(()));
        assert!(verify(&with_ca, "server.pem", "relay.internal").is_err());
    }

    #[test]
    fn every_named_file_must_hold_a_certificate() {
        assert!(relay_client_config(&[]).is_ok());
        assert!(relay_client_config(&[&fixture("ca.pem"), &fixture("selfsigned.pem")]).is_ok());
        let key = fixture("selfsigned.key");
        assert_eq!(
            relay_client_config(&[&key]).err(),
            Some(format!("CA file {key}: no certificates found"))
        );
    }
}
