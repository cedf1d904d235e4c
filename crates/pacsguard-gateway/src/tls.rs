//! TLS on either side of the gateway (PS3.15 B.9 "BCP 195 non-downgrading" secure
//! transport): rustls with the ring provider, TLS 1.2 and 1.3 only, and ring's default
//! suites, which are all AEAD with ECDHE (BCP 195: no RSA key exchange, no CBC, no RC4,
//! no export or NULL suites).
//!
//! * A listener with `tls` terminates TLS; with `client_ca` it demands a client
//!   certificate issued by that CA (IHE ATNA node authentication).
//! * A route with `upstream_tls` originates TLS to its upstream, checking the upstream's
//!   certificate against `ca` (and presenting `cert`/`key` when given).
//! * A route with `mode = "tls-pass-through"` does neither: the peer's TLS goes to the
//!   upstream unopened (`relay::pass_through`, `tls_records`).
//!
//! Files are read when the gateway binds; an error names the file and the reason.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// What a record says of a failed TLS handshake: rustls's reason, or that the protocol
/// version was refused when that is why. rustls refuses a ClientHello without the
/// signature_algorithms extension before it looks at the version, and TLS 1.0 and 1.1
/// clients never send that extension, so a TLS 1.1 peer was recorded as "peer is
/// incompatible: SignatureAlgorithmsExtensionRequired" (review rv34-gateway); an
/// operator reading that could not tell the peer needs TLS 1.2. A refused cipher suite or
/// key exchange is said as such too.
pub fn handshake_failure(e: &std::io::Error) -> String {
    use rustls::{AlertDescription, Error, PeerIncompatible};
    let refused_version = matches!(
        e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()),
        Some(Error::PeerIncompatible(
            PeerIncompatible::SignatureAlgorithmsExtensionRequired
                | PeerIncompatible::SupportedVersionsExtensionRequired
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::ServerDoesNotSupportTls12Or13,
        )) | Some(Error::AlertReceived(AlertDescription::ProtocolVersion))
    );
    if refused_version {
        return format!(
            "the protocol version was refused: the other side offered no TLS 1.2 or later (TLS 1.0 and 1.1 are refused, BCP 195; rustls: {e})"
        );
    }
    // A downgrade below what BCP 195 recommends (RSA key exchange, CBC with SHA-1) is
    // refused by the provider's defaults: said as such, as the version is (session 35:
    // `openssl s_client -tls1_2 -cipher AES128-SHA` was "peer is incompatible:
    // NoKxGroupsInCommon").
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon)) => format!(
            "the cipher suites were refused: the other side offered none the gateway accepts (TLS 1.3, or TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305; CBC and RSA key exchange are refused, BCP 195) (rustls: {e})"
        ),
        Some(Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon)) => format!(
            "the key exchange was refused: the other side offered no ECDHE group the gateway accepts (X25519, P-256, P-384; RSA key exchange and finite-field groups are refused, BCP 195) (rustls: {e})"
        ),
        _ => e.to_string(),
    }
}

/// Largest certificate, key or CA file read.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// A file the gateway reads when it binds or reloads (a certificate, a key, a CA, the
/// passcode of `upstream_identity`) that cannot be used: its path and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", .path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub reason: String,
}

pub(crate) fn error(path: &Path, reason: impl ToString) -> FileError {
    FileError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    let file = std::fs::File::open(path).map_err(|e| error(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(path, e))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(error(path, format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    Ok(bytes)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let bytes = read(path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| error(path, format!("not PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(error(path, "holds no certificate"));
    }
    Ok(chain)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    PrivateKeyDer::from_pem_slice(&read(path)?)
        .map_err(|e| error(path, format!("not a PEM private key: {e}")))
}

fn roots(path: &Path) -> Result<Arc<rustls::RootCertStore>, FileError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certificates(path)? {
        store
            .add(cert)
            .map_err(|e| error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(store))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of a listener: its certificate and key, and the CA its clients'
/// certificates must chain to (mutual TLS) when given.
pub fn server(
    cert: &Path,
    key_path: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, FileError> {
    let chain = certificates(cert)?;
    let key = key(key_path)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| error(cert, e))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                    .build()
                    .map_err(|e| error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| error(cert, format!("certificate and key do not go together: {e}")))?;
    Ok(Arc::new(config))
}

/// The client side towards an upstream: the CA its certificate must chain to, and the
/// gateway's own certificate when the upstream demands one.
pub fn client(
    ca: &Path,
    cert: Option<&Path>,
    key_path: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, FileError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| error(ca, e))?
        .with_root_certificates(roots(ca)?);
    let config = match (cert, key_path) {
        (Some(cert), Some(key_path)) => builder
            .with_client_auth_cert(certificates(cert)?, key(key_path)?)
            .map_err(|e| error(cert, format!("certificate and key do not go together: {e}")))?,
        (None, None) => builder.with_no_client_auth(),
        (Some(path), None) | (None, Some(path)) => {
            return Err(error(
                path,
                "cert and key go together: give both or neither",
            ));
        }
    };
    Ok(Arc::new(config))
}

/// The name the upstream's certificate must carry: `server_name`, else the host of
/// `HOST:PORT` (a name or an IP address).
pub fn upstream_name(upstream: &str, server_name: Option<&str>) -> Option<ServerName<'static>> {
    let host = match server_name {
        Some(name) => name,
        None => upstream.rsplit_once(':').map(|(h, _)| h)?,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: rustls::Error) -> std::io::Error {
        // As tokio-rustls hands a rustls error on.
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    /// Review rv34-gateway: a TLS 1.1 client (`openssl s_client -tls1_1`) was recorded
    /// as "peer is incompatible: SignatureAlgorithmsExtensionRequired".
    #[test]
    fn a_refused_protocol_version_is_said_as_such() {
        for e in [
            rustls::PeerIncompatible::SignatureAlgorithmsExtensionRequired.into(),
            rustls::PeerIncompatible::Tls12NotOffered.into(),
            rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13.into(),
            rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion),
        ] {
            let said = handshake_failure(&io(e));
            assert!(
                said.starts_with(
                    "the protocol version was refused: the other side offered no TLS 1.2 or later"
                ),
                "{said}"
            );
        }
        let other = handshake_failure(&io(
            rustls::PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon.into(),
        ));
        assert_eq!(
            other,
            "peer is incompatible: NoCertificateRequestSignatureSchemesInCommon"
        );
        let plain = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(handshake_failure(&plain), "tls handshake eof");
    }

    /// Session 35: a TLS 1.2 client offering only suites without forward secrecy or
    /// authenticated encryption (`openssl s_client -tls1_2 -cipher AES128-SHA`, or
    /// `ECDHE-RSA-AES128-SHA`) was recorded as "peer is incompatible:
    /// NoKxGroupsInCommon" or "NoCipherSuitesInCommon": a downgrade attempt, or a sender
    /// needing a newer TLS stack, the record did not say which of its offers was refused.
    #[test]
    fn a_refused_cipher_suite_or_key_exchange_is_said_as_such() {
        for (e, what) in [
            (
                rustls::PeerIncompatible::NoCipherSuitesInCommon,
                "the cipher suites were refused",
            ),
            (
                rustls::PeerIncompatible::NoKxGroupsInCommon,
                "the key exchange was refused",
            ),
        ] {
            let said = handshake_failure(&io(e.clone().into()));
            assert!(said.starts_with(what), "{said}");
            assert!(said.contains("BCP 195"), "{said}");
            assert!(
                said.ends_with(&format!("(rustls: peer is incompatible: {e:?})")),
                "{said}"
            );
        }
    }
}
