//! The host's view of the console's certificate: pinned by its SHA-256 fingerprint.
//!
//! A console's certificate is usually self-signed, so no CA vouches for it; the
//! administrator reads its fingerprint where `serve` prints it and gives it to
//! `pacsguard enroll --fingerprint`. The handshake is accepted only for a certificate
//! with exactly that fingerprint, and the server must still prove it holds its key
//! (the handshake signature is verified as usual).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug)]
pub struct Pinned {
    /// Lower-case hex SHA-256 of the certificate (DER).
    fingerprint: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    pub fn new(fingerprint: &str) -> Arc<Pinned> {
        Arc::new(Pinned {
            fingerprint: fingerprint.to_string(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = crate::cert_fingerprint(end_entity);
        if actual == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the console's certificate has the SHA-256 fingerprint {actual}, not the {} pinned: not the console, or the console's fleet identity was replaced; nothing was sent. Ask the console's administrator for the fleet identity's fingerprint `serve` prints (\"fleet identity\"); if it is {actual} and was replaced on purpose, move HOME/fleet aside and enrol this host again (the trail keeps every record meanwhile)",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
