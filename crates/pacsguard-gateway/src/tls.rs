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
///
/// `certificate`: the key of the gateway's own certificate, on a listener's side. rustls
/// refuses with `NoCipherSuitesInCommon` also when the suites offered are good ones that
/// do not fit that key (an ECDSA certificate and only ECDHE-RSA suites), and with
/// `NoSignatureSchemesInCommon` when no signature algorithm offered fits it, so what is
/// said names the key and what fits it (review rv35-gateway: "offered none the gateway
/// accepts" sent an operator looking for an old client where the certificate's key type
/// was the cause).
pub fn handshake_failure(e: &std::io::Error, certificate: Option<CertificateKey>) -> String {
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
        // rustls reckons the suites in common among those usable with the certificate's
        // key (TLS 1.2's suites are each for one key type), so a client offering good
        // suites for another key type is refused alike: the record names the key and
        // the suites that fit it, so that neither cause is hidden behind the other.
        Some(Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon)) => {
            match certificate {
                Some(key) => format!(
                    "no cipher suite in common for the gateway's {key} certificate: the other side offered no TLS 1.3 suite the gateway takes (AES-GCM or ChaCha20-Poly1305) and no TLS 1.2 suite usable with an {key} key ({family} with AES-GCM or ChaCha20-Poly1305; a TLS 1.2 suite for another key type cannot be used with this certificate, and CBC and RSA key exchange are refused, BCP 195) (rustls: {e})",
                    family = key.tls12_family()
                ),
                None => format!(
                    "no cipher suite in common: the other side offered none the gateway takes (TLS 1.3 with AES-GCM or ChaCha20-Poly1305, or TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305; CBC and RSA key exchange are refused, BCP 195) (rustls: {e})"
                ),
            }
        }
        // The same cause by another way: suites in common, but no signature algorithm
        // offered that the certificate's key can sign with.
        Some(Error::PeerIncompatible(PeerIncompatible::NoSignatureSchemesInCommon)) => {
            match certificate {
                Some(key) => format!(
                    "no signature algorithm in common for the gateway's {key} certificate: the other side offered none an {key} key signs with (its signature_algorithms) (rustls: {e})"
                ),
                None => e.to_string(),
            }
        }
        Some(Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon)) => format!(
            "the key exchange was refused: the other side offered no ECDHE group the gateway accepts (X25519, P-256, P-384; RSA key exchange and finite-field groups are refused, BCP 195) (rustls: {e})"
        ),
        Some(Error::InvalidCertificate(refused)) => certificate_failure(refused, e),
        _ => e.to_string(),
    }
}

/// A failed handshake towards an upstream, in words: [`handshake_failure`]'s, and where
/// the upstream closed the connection or answered with bytes that are no TLS record, what
/// that most often means. A plain DICOM listener reads the ClientHello as an unknown PDU
/// and drops the connection: the trail said only "Connection reset by peer" (review
/// rv44-gate case21), which sent an operator looking at the network instead of at a
/// `upstream_tls` set for an upstream that does not speak TLS on that port.
pub fn upstream_handshake_failure(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let not_tls = matches!(
        e.kind(),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe
    ) || matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(_))
    );
    let said = handshake_failure(e, None);
    if not_tls {
        format!(
            "the upstream ended the TLS handshake without answering it ({said}): it may not speak TLS on this port (a plain DICOM listener drops a TLS ClientHello), or it refused the gateway's certificate or offer; check `upstream_tls` against the upstream's own configuration and its log"
        )
    } else {
        said
    }
}

/// What webpki (through rustls) refused in the other side's certificate, in words that
/// say what to do, with rustls's own words kept in parentheses. Its raw form was all
/// the trail said ("invalid peer certificate: Other(OtherError(UnsupportedCertVersion))",
/// review rv44-gate case9b/case21): an operator whose CA issued a certificate the way
/// `openssl x509 -req` does by default (X.509 v1) could not tell why `openssl verify`
/// accepted what the gateway refused. Errors webpki has no rustls name for come as
/// `Other`, named by their Debug form (`UnsupportedCertVersion`, `CaUsedAsEndEntity`).
fn certificate_failure(refused: &rustls::CertificateError, e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let other = match refused {
        C::Other(other) => format!("{:?}", other.0),
        _ => String::new(),
    };
    let words = match (refused, other.as_str()) {
        (C::Other(_), "UnsupportedCertVersion") => {
            "an X.509 v1 certificate: webpki accepts v3 only; re-issue it as v3 with the extensions (basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage clientAuth or serverAuth, subjectAltName; `openssl x509 -req` makes v1 unless given -extfile)"
        }
        (C::Other(_), "CaUsedAsEndEntity") => {
            "a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes a self-signed one) presented as the peer's own: give the peer a certificate of its own (CA:FALSE) issued by the CA the gateway trusts"
        }
        (C::Other(_), "EndEntityUsedAsCa") => {
            "a chain in which a peer's certificate (not a CA's) issued another: the chain must go through the CA's certificates only"
        }
        (C::Other(_), "RequiredEkuNotFound" | "RequiredEkuNotFoundContext") => {
            "a certificate without the extended key usage for this side (clientAuth for a client, serverAuth for a server): re-issue it with it"
        }
        (C::UnknownIssuer, _) => {
            "a certificate not issued by the CA the gateway trusts for this side (a self-signed one, or another CA's), or sent without its intermediate certificates"
        }
        (C::BadSignature, _) => "a certificate whose signature does not verify",
        (C::Expired | C::ExpiredContext { .. }, _) => "an expired certificate",
        (C::NotValidYet | C::NotValidYetContext { .. }, _) => "a certificate not yet valid",
        (C::NotValidForName | C::NotValidForNameContext { .. }, _) => {
            "a certificate not issued for the name the gateway connected to (server_name, else the upstream's host)"
        }
        (C::Revoked, _) => "a revoked certificate",
        (C::InvalidPurpose | C::InvalidPurposeContext { .. }, _) => {
            "a certificate not issued for this use (its extended key usage)"
        }
        (C::BadEncoding, _) => "a certificate that is not valid DER",
        (
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
            _,
        ) => "a certificate signed with an algorithm the gateway does not accept",
        _ => return e.to_string(),
    };
    format!("the other side's certificate was refused: {words} ({e})")
}

/// The kind of key of the gateway's own certificate (RSA, ECDSA, Ed25519), named in what
/// a refused handshake says ([`handshake_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateKey(rustls::SignatureAlgorithm);

impl CertificateKey {
    /// The TLS 1.2 suites usable with the key, as OpenSSL names them (`-cipher`): each
    /// TLS 1.2 suite is for one key type, and Ed25519 and Ed448 sign the ECDSA ones.
    fn tls12_family(self) -> &'static str {
        match self.0 {
            rustls::SignatureAlgorithm::RSA => "ECDHE-RSA",
            _ => "ECDHE-ECDSA",
        }
    }
}

impl std::fmt::Display for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use rustls::SignatureAlgorithm as A;
        match self.0 {
            A::RSA => f.write_str("RSA"),
            A::ECDSA => f.write_str("ECDSA"),
            A::ED25519 => f.write_str("Ed25519"),
            A::ED448 => f.write_str("Ed448"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A listener's TLS: its rustls configuration and the key of its certificate.
#[derive(Debug)]
pub struct Server {
    pub config: Arc<rustls::ServerConfig>,
    pub key: CertificateKey,
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
pub fn server(cert: &Path, key_path: &Path, client_ca: Option<&Path>) -> Result<Server, FileError> {
    let chain = certificates(cert)?;
    let key = key(key_path)?;
    // Its kind, named when a client's suites do not fit it (see [`handshake_failure`]).
    let kind = provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map(|signing| CertificateKey(signing.algorithm()))
        .map_err(|e| error(key_path, format!("not a usable private key: {e}")))?;
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
    Ok(Server {
        config: Arc::new(config),
        key: kind,
    })
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
            let said = handshake_failure(&io(e), None);
            assert!(
                said.starts_with(
                    "the protocol version was refused: the other side offered no TLS 1.2 or later"
                ),
                "{said}"
            );
        }
        let other = handshake_failure(
            &io(rustls::PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon.into()),
            None,
        );
        assert_eq!(
            other,
            "peer is incompatible: NoCertificateRequestSignatureSchemesInCommon"
        );
        let plain = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(handshake_failure(&plain, None), "tls handshake eof");
        // Towards an upstream, a connection dropped in the handshake says what it most
        // often means (review rv44-gate case21: a plain upstream, "Connection reset by peer").
        for e in [
            plain,
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            io(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
            )),
        ] {
            let said = upstream_handshake_failure(&e);
            assert!(
                said.contains("it may not speak TLS on this port") && said.contains("upstream_tls"),
                "{said}"
            );
        }
        let refused = upstream_handshake_failure(&io(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(
            refused.contains("not issued by the CA") && !refused.contains("speak TLS"),
            "{refused}"
        );
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
                "no cipher suite in common: the other side offered none the gateway takes",
            ),
            (
                rustls::PeerIncompatible::NoKxGroupsInCommon,
                "the key exchange was refused",
            ),
        ] {
            let said = handshake_failure(&io(e.clone().into()), None);
            assert!(said.starts_with(what), "{said}");
            assert!(said.contains("BCP 195"), "{said}");
            assert!(
                said.ends_with(&format!("(rustls: peer is incompatible: {e:?})")),
                "{said}"
            );
        }
    }

    /// A self-signed certificate and its key made by the openssl CLI in a directory of
    /// its own: `kind` is `ec` (P-256) or `rsa`.
    fn made_with_openssl(kind: &str) -> (PathBuf, PathBuf) {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "pacsguard-gateway-tls-{}-{n}-{kind}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a directory");
        let (cert, key) = (dir.join("gateway.pem"), dir.join("gateway.key"));
        let newkey: &[&str] = match kind {
            "ec" => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => &["-newkey", "rsa:2048"],
        };
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=gateway",
            ])
            .args(newkey)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    }

    /// Review rv44-gate case9b: a client certificate the trusted CA issued as X.509 v1
    /// (`openssl x509 -req` without -extfile) was recorded as "invalid peer certificate:
    /// Other(OtherError(UnsupportedCertVersion))", and the CA's own certificate as a
    /// client's as "Other(OtherError(CaUsedAsEndEntity))". Real certificates (the openssl
    /// CLI), refused by the verifier the listener uses.
    #[test]
    fn a_refused_certificate_is_said_in_words_with_its_raw_name() {
        let (ca, ca_key) = made_with_openssl("ec");
        let dir = ca.parent().expect("a directory").to_path_buf();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "v1.key",
            "-out",
            "v1.csr",
            "-subj",
            "/CN=CT1",
        ]);
        let (ca_arg, key_arg) = (ca.display().to_string(), ca_key.display().to_string());
        run(&[
            "x509",
            "-req",
            "-in",
            "v1.csr",
            "-CA",
            &ca_arg,
            "-CAkey",
            &key_arg,
            "-set_serial",
            "7",
            "-out",
            "v1.pem",
            "-days",
            "2",
        ]);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots(&ca).expect("CA"),
            provider(),
        )
        .build()
        .expect("verifier");
        let said = |leaf: &Path| {
            let leaf = certificates(leaf).expect("PEM").remove(0);
            let refused = verifier
                .verify_client_cert(&leaf, &[], rustls::pki_types::UnixTime::now())
                .expect_err("refused");
            handshake_failure(&io(refused), None)
        };
        let v1 = said(&dir.join("v1.pem"));
        assert!(
            v1.contains("an X.509 v1 certificate: webpki accepts v3 only; re-issue it as v3")
                && v1.contains(
                    "(invalid peer certificate: Other(OtherError(UnsupportedCertVersion)))"
                ),
            "{v1}"
        );
        let ca_as_leaf = said(&ca);
        assert!(
            ca_as_leaf.contains(
                "a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes a self-signed one) presented as the peer's own"
            ) && ca_as_leaf.contains("CaUsedAsEndEntity"),
            "{ca_as_leaf}"
        );
    }

    /// What the gateway's server side says of a client offering only `suites` and the
    /// signature algorithms of `schemes` (all when none) of `version`, in memory.
    fn refused_by(
        server: Arc<rustls::ServerConfig>,
        suites: Vec<rustls::SupportedCipherSuite>,
        schemes: Option<&[rustls::SignatureScheme]>,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> std::io::Error {
        let ring = rustls::crypto::ring::default_provider();
        let mut verification = ring.signature_verification_algorithms;
        if let Some(schemes) = schemes {
            // The client offers the schemes it can verify: only these.
            let mapping: Vec<_> = verification
                .mapping
                .iter()
                .filter(|(scheme, _)| schemes.contains(scheme))
                .copied()
                .collect();
            verification.mapping = Box::leak(mapping.into_boxed_slice());
        }
        let client = rustls::crypto::CryptoProvider {
            cipher_suites: suites,
            signature_verification_algorithms: verification,
            ..ring
        };
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(client))
            .with_protocol_versions(&[version])
            .expect("the versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = ServerName::try_from("gateway").expect("a name");
        let mut client = rustls::ClientConnection::new(Arc::new(client), name).expect("client");
        let mut server = rustls::ServerConnection::new(server).expect("server");
        let mut hello = Vec::new();
        client.write_tls(&mut hello).expect("the ClientHello");
        server
            .read_tls(&mut hello.as_slice())
            .expect("the ClientHello read");
        io(server
            .process_new_packets()
            .expect_err("the handshake is refused"))
    }

    /// Review rv35-gateway: rustls refuses with `NoCipherSuitesInCommon` also when the
    /// client's suites are good ones that do not fit the gateway's certificate (an ECDSA
    /// certificate and `-cipher ECDHE-RSA-AES128-GCM-SHA256`; an RSA one and ECDHE-ECDSA
    /// suites), and the record said the client "offered none the gateway accepts": an
    /// operator would look for an old client where the certificate's key type is the
    /// cause. It names the certificate's key type and the suites that fit it. Seen
    /// failing before the change: "the cipher suites were refused: the other side offered
    /// none the gateway accepts (...)".
    #[test]
    fn suites_refused_for_the_certificates_key_type_name_it() {
        use rustls::crypto::ring::cipher_suite as suite;
        for (kind, offered, named, family) in [
            (
                "ec",
                suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                "ECDSA",
                "ECDHE-ECDSA",
            ),
            (
                "rsa",
                suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                "RSA",
                "ECDHE-RSA",
            ),
        ] {
            let (cert, key) = made_with_openssl(kind);
            let config = server(&cert, &key, None).expect("a usable certificate");
            assert_eq!(config.key.to_string(), named);
            let e = refused_by(config.config, vec![offered], None, &rustls::version::TLS12);
            let said = handshake_failure(&e, Some(config.key));
            assert!(
                said.starts_with(&format!(
                    "no cipher suite in common for the gateway's {named} certificate: "
                )) && said.contains(&format!(
                    "no TLS 1.2 suite usable with an {named} key ({family} with AES-GCM"
                )),
                "{kind}: {said}"
            );
            assert!(!said.contains("offered none the gateway"), "{said}");
            let _ = std::fs::remove_dir_all(cert.parent().expect("its directory"));
        }
    }

    /// The same cause by another way: a TLS 1.3 client whose signature algorithms are
    /// all RSA ones, against an ECDSA certificate, is refused with
    /// `NoSignatureSchemesInCommon`, which was said as rustls's bare "peer is
    /// incompatible" (review rv35-gateway): the record names the key type.
    #[test]
    fn signature_algorithms_refused_for_the_certificates_key_type_name_it() {
        let (cert, key) = made_with_openssl("ec");
        let config = server(&cert, &key, None).expect("a usable certificate");
        let rsa_only = [
            rustls::SignatureScheme::RSA_PSS_SHA256,
            rustls::SignatureScheme::RSA_PSS_SHA384,
            rustls::SignatureScheme::RSA_PSS_SHA512,
            rustls::SignatureScheme::RSA_PKCS1_SHA256,
        ];
        let e = refused_by(
            config.config,
            rustls::crypto::ring::default_provider().cipher_suites,
            Some(&rsa_only),
            &rustls::version::TLS13,
        );
        let said = handshake_failure(&e, Some(config.key));
        assert!(
            said.starts_with(
                "no signature algorithm in common for the gateway's ECDSA certificate: the other side offered none an ECDSA key signs with"
            ),
            "{said}"
        );
        assert!(said.contains("NoSignatureSchemesInCommon"), "{said}");
        let _ = std::fs::remove_dir_all(cert.parent().expect("its directory"));
    }
}
