//! The console's certificate: the administrator's own (`[console] cert/key`), or one
//! generated on first start (rcgen, ECDSA P-256) and kept in `HOME/console/` with its key
//! private (0600). Its SHA-256 fingerprint is printed at every start so a person can
//! check what the browser shows before trusting it.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};

/// Largest certificate or key file read.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("generating the console's certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The server's TLS configuration and what to tell the administrator.
#[derive(Debug)]
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate (DER), as browsers show it: `AB:CD:...`.
    pub fingerprint: String,
    pub cert_path: PathBuf,
    /// Whether the certificate was generated in this start.
    pub generated: bool,
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    pacsguard_fs::read_file(path, MAX_PEM_BYTES)
        .map(|f| f.bytes)
        .map_err(|e| file_error(path, e))
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The certificate in the configuration, else the generated one in `home/console/`
/// (created now if absent, for `names`).
pub fn load_or_generate(
    home: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    names: Vec<String>,
) -> Result<Tls, TlsError> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        (Some(c), None) | (None, Some(c)) => {
            return Err(file_error(
                c,
                "[console] needs both cert and key, or neither",
            ));
        }
        (None, None) => own_pair(home, names)?,
    };
    let cert_bytes = read(&cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&cert_path, format!("not a PEM certificate chain: {e}")))?;
    let Some(first) = chain.first() else {
        return Err(file_error(&cert_path, "holds no certificate"));
    };
    let fingerprint = fingerprint(first);
    check_key_private(&key_path)?;
    let key_bytes = read(&key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| file_error(&key_path, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            file_error(
                &cert_path,
                format!("certificate and key do not go together: {e}"),
            )
        })?;
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
        cert_path,
        generated,
    })
}

/// The console's own certificate and key in `home/console/` (`cert.pem`, `key.pem`),
/// generated now (for `names`) if neither exists; (cert, key, generated now).
fn own_pair(home: &Path, names: Vec<String>) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let dir = home.join("console");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let generated = match (cert.exists(), key.exists()) {
        (true, true) => false,
        (false, false) => {
            generate(&dir, &cert, &key, names)?;
            true
        }
        (true, false) => {
            return Err(file_error(
                &key,
                "missing beside cert.pem; remove cert.pem to generate both again",
            ));
        }
        (false, true) => {
            return Err(file_error(
                &cert,
                "missing beside key.pem; remove key.pem to generate both again",
            ));
        }
    };
    Ok((cert, key, generated))
}

/// What the fleet listener presents to hosts: the console's own certificate.
#[derive(Debug)]
pub struct FleetIdentity {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// SHA-256 of the certificate (DER), `AB:CD:...`: what a host pins at enrolment.
    pub fingerprint: String,
    /// Whether it was generated in this start.
    pub generated: bool,
}

/// Whether the console's own certificate (`home/console/cert.pem` and `key.pem`, the
/// fleet identity) exists.
pub fn fleet_identity_exists(home: &Path) -> bool {
    let dir = home.join("console");
    dir.join("cert.pem").exists() || dir.join("key.pem").exists()
}

/// The console's fleet identity: its own certificate in `home/console/`, made at the
/// first start (for `names`) and never replaced by `[console] cert/key`. Hosts pin its
/// fingerprint at enrolment, so the web certificate shown to browsers (the hospital's
/// own, renewed every year) can change without cutting off a single host (review
/// rv44-fleet case17: the fleet listener presented the web certificate, and setting
/// `[console] cert` silently cut off every enrolled host).
pub fn fleet_identity(home: &Path, names: Vec<String>) -> Result<FleetIdentity, TlsError> {
    let (cert_path, key_path, generated) = own_pair(home, names)?;
    check_key_private(&key_path)?;
    let cert_bytes = read(&cert_path)?;
    let first = CertificateDer::pem_slice_iter(&cert_bytes)
        .next()
        .ok_or_else(|| file_error(&cert_path, "holds no certificate"))?
        .map_err(|e| file_error(&cert_path, format!("not a PEM certificate: {e}")))?;
    Ok(FleetIdentity {
        fingerprint: fingerprint(&first),
        cert_path,
        key_path,
        generated,
    })
}

/// A key readable by group or others is refused, like the home's signing key.
fn check_key_private(path: &Path) -> Result<(), TlsError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| file_error(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(file_error(
            path,
            format!(
                "the private key is readable or writable by group or others (mode {:o}); chmod 600 it",
                meta.permissions().mode() & 0o777
            ),
        ));
    }
    Ok(())
}

fn generate(dir: &Path, cert: &Path, key: &Path, names: Vec<String>) -> Result<(), TlsError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
        .map_err(|e| file_error(dir, e))?;
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    // The key first, never over an existing file, private from its creation.
    write_new(key, certified.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, certified.cert.pem().as_bytes(), 0o644)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    file.write_all(bytes).map_err(|e| file_error(path, e))?;
    file.sync_all().map_err(|e| file_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_kept_private_and_reused() {
        let home = tempfile::tempdir().expect("tempdir");
        let first =
            load_or_generate(home.path(), None, None, vec!["localhost".into()]).expect("generated");
        assert!(first.generated);
        let key = home.path().join("console/key.pem");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again =
            load_or_generate(home.path(), None, None, vec!["localhost".into()]).expect("reused");
        assert!(!again.generated);
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let home = tempfile::tempdir().expect("tempdir");
        load_or_generate(home.path(), None, None, vec!["localhost".into()]).expect("generated");
        let key = home.path().join("console/key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_generate(home.path(), None, None, vec![]).expect_err("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    /// Review rv44-fleet case17: the hospital's own certificate for browsers leaves the
    /// fleet identity (what hosts pinned) as it was.
    #[test]
    fn the_fleet_identity_is_the_consoles_own_whatever_the_web_certificate() {
        let home = tempfile::tempdir().expect("tempdir");
        let fleet = fleet_identity(home.path(), vec!["localhost".into()]).expect("made");
        assert!(fleet.generated);
        let own = load_or_generate(home.path(), None, None, vec![]).expect("web");
        assert_eq!(
            own.fingerprint, fleet.fingerprint,
            "one certificate until configured"
        );
        // The hospital's own, configured for browsers.
        let other = home.path().join("pki");
        std::fs::create_dir(&other).expect("pki");
        generate(
            &other,
            &other.join("c.pem"),
            &other.join("k.pem"),
            vec!["pacs".into()],
        )
        .expect("hospital's");
        let web = load_or_generate(
            home.path(),
            Some(&other.join("c.pem")),
            Some(&other.join("k.pem")),
            vec![],
        )
        .expect("configured");
        assert_ne!(web.fingerprint, fleet.fingerprint);
        let again = fleet_identity(home.path(), vec![]).expect("kept");
        assert!(!again.generated);
        assert_eq!(again.fingerprint, fleet.fingerprint, "hosts' pin unchanged");
    }
}
