//! The console's host CA: it issues each enrolled host's client certificate.
//!
//! Generated on first use (rcgen, ECDSA P-256) in `HOME/console/hosts-ca.pem` and
//! `hosts-ca.key` (0600). It signs only what a host asked for in its certificate request
//! (its own public key, so the private key never leaves the host), under the name the
//! console records, for client authentication, valid [`HOST_CERT_LIFETIME`].

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateSigningRequestDer;

/// How long a host's certificate is valid: long enough that hosts do not need a renewal
/// protocol in this first increment; revocation, not expiry, is how a host is removed.
pub const HOST_CERT_LIFETIME: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// Largest CA file read.
const MAX_CA_FILE_BYTES: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("the certificate request: {0}")]
    Request(String),
    #[error("issuing the certificate: {0}")]
    Issue(String),
}

pub struct HostCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for HostCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCa")
    }
}

fn read(path: &Path) -> Result<Option<String>, CaError> {
    match pacsguard_fs::read_file(path, MAX_CA_FILE_BYTES) {
        Ok(read) => String::from_utf8(read.bytes)
            .map(Some)
            .map_err(|_| CaError::File {
                path: path.to_path_buf(),
                reason: "not PEM text".into(),
            }),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(CaError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Writes a new file (never over one, never through a link) with `mode`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let err = |e: std::io::Error| CaError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(err)
}

impl HostCa {
    /// The CA in `dir` (`hosts-ca.pem`, `hosts-ca.key`), generated there if neither exists.
    pub fn load_or_generate(dir: &Path, console_name: &str) -> Result<HostCa, CaError> {
        let cert_path = dir.join("hosts-ca.pem");
        let key_path = dir.join("hosts-ca.key");
        let (cert_pem, key_pem) = match (read(&cert_path)?, read(&key_path)?) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                let key = KeyPair::generate().map_err(|e| CaError::Issue(e.to_string()))?;
                let mut params = CertificateParams::default();
                let mut name = DistinguishedName::new();
                name.push(
                    DnType::CommonName,
                    format!("PacsGuard host CA of {console_name}"),
                );
                params.distinguished_name = name;
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
                let cert = params
                    .self_signed(&key)
                    .map_err(|e| CaError::Issue(e.to_string()))?;
                let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
                write_new(&key_path, key_pem.as_bytes(), 0o600)?;
                write_new(&cert_path, cert_pem.as_bytes(), 0o644)?;
                (cert_pem, key_pem)
            }
            (Some(_), None) => {
                return Err(CaError::File {
                    path: key_path,
                    reason: "missing beside hosts-ca.pem: hosts enrolled so far can no longer be told from others; keep the home as evidence".into(),
                });
            }
            (None, Some(_)) => {
                return Err(CaError::File {
                    path: cert_path,
                    reason: "missing beside hosts-ca.key".into(),
                });
            }
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CaError::File {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| CaError::File {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
        Ok(HostCa { cert_pem, issuer })
    }

    /// The CA certificate (DER), the root that client certificates are verified against.
    pub fn cert_der(&self) -> Result<rustls::pki_types::CertificateDer<'static>, CaError> {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| CaError::Issue(e.to_string()))
    }

    /// A client certificate for the key in `csr` (DER, its signature checked), named
    /// `name`; returns (PEM, DER).
    pub fn issue(&self, csr: &[u8], name: &str) -> Result<(String, Vec<u8>), CaError> {
        let request = CertificateSigningRequestParams::from_der(
            &CertificateSigningRequestDer::from(csr.to_vec()),
        )
        .map_err(|e| CaError::Request(e.to_string()))?;
        // Only the key is taken from the request: the name, the use and the validity are
        // the console's.
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = std::time::SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + HOST_CERT_LIFETIME).into();
        let serial: [u8; 16] = {
            let mut s = [0u8; 16];
            getrandom::fill(&mut s).map_err(|e| CaError::Issue(e.to_string()))?;
            s[0] &= 0x7f;
            s
        };
        params.serial_number = Some(serial.to_vec().into());
        let cert = params
            .signed_by(&request.public_key, &self.issuer)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok((cert.pem(), cert.der().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_gets_a_client_certificate_for_its_own_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = HostCa::load_or_generate(dir.path(), "console").expect("ca");
        let again = HostCa::load_or_generate(dir.path(), "console").expect("again");
        assert_eq!(ca.cert_pem, again.cert_pem, "made once");
        let key = KeyPair::generate().expect("key");
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .expect("csr");
        let (pem, der) = ca.issue(csr.der(), "pacs-01").expect("issued");
        assert!(pem.contains("BEGIN CERTIFICATE"));
        assert!(!der.is_empty());
        // A request whose signature does not verify (one byte of the key changed).
        let mut bad = csr.der().to_vec();
        let at = bad.len() - 80;
        bad[at] ^= 1;
        assert!(ca.issue(&bad, "pacs-01").is_err());
    }
}
