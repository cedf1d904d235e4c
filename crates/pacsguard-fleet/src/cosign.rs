//! The console's cosignatures of host checkpoints: C2SP tlog-cosignature v1 (Ed25519).
//!
//! The key ID is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key); the
//! signature line is `— <name> base64(key ID ‖ u64 timestamp ‖ Ed25519 signature)` over
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's whole note body. The
//! witness key is the console's own (`HOME/console/witness.key`, 0600). Besides
//! cosignatures it signs only the console's approvals of host profiles
//! ([`crate::approval`]), under messages of their own domain that no cosignature
//! message can equal (the format asks that the key sign nothing a verifier could take
//! for a cosignature; it does not commit to the cosigner's name).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The algorithm byte of Ed25519 cosignatures in key IDs and verifier keys.
const ALG_COSIGNATURE_V1: u8 = 0x04;
const DASH: &str = "\u{2014} ";
/// The most of a witness key file read.
const MAX_KEY_FILE_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("{path}: {reason}")]
    Key { path: String, reason: String },
    #[error("malformed note: {0}")]
    Note(&'static str),
    #[error("no valid cosignature by {0} on this checkpoint")]
    NotCosigned(String),
}

/// A cosigner: its name and Ed25519 key.
#[derive(Debug)]
pub struct Cosigner {
    name: String,
    key: SigningKey,
}

fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_COSIGNATURE_V1]);
    h.update(public.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The note body (text up to and including the blank line's first newline) of a signed
/// note: everything before `\n\n`, with its final newline.
fn note_body(note: &str) -> Result<&str, CosignError> {
    let split = note
        .find("\n\n")
        .ok_or(CosignError::Note("no blank line before the signatures"))?;
    Ok(&note[..split + 1])
}

fn message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

impl Cosigner {
    pub fn new(name: &str, key: SigningKey) -> Cosigner {
        Cosigner {
            name: name.to_string(),
            key,
        }
    }

    /// The key at `path`, or a new one written there (0600) if none exists.
    pub fn load_or_generate(path: &Path, name: &str) -> Result<Cosigner, CosignError> {
        let bad = |reason: String| CosignError::Key {
            path: path.display().to_string(),
            reason,
        };
        match pacsguard_fs::read_file(path, MAX_KEY_FILE_BYTES) {
            Ok(read) => {
                let seed = B64
                    .decode(String::from_utf8_lossy(&read.bytes).trim())
                    .map_err(|_| bad("not a base64 Ed25519 seed".into()))?;
                let seed: [u8; 32] = seed
                    .try_into()
                    .map_err(|_| bad("an Ed25519 seed is 32 bytes".into()))?;
                Ok(Cosigner::new(name, SigningKey::from_bytes(&seed)))
            }
            Err(e) if e.is_missing() => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| bad(e.to_string()))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|e| bad(e.to_string()))?;
                file.write_all(format!("{}\n", B64.encode(seed)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Cosigner::new(name, SigningKey::from_bytes(&seed)))
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The verifier key: `<name>+<hex key ID>+<base64(0x04 ‖ public key)>`.
    pub fn verifier(&self) -> String {
        let public = self.key.verifying_key();
        let mut raw = vec![ALG_COSIGNATURE_V1];
        raw.extend_from_slice(public.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            key_id(&self.name, &public)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            B64.encode(raw)
        )
    }

    /// The checkpoint `note` (already verified by the caller) with this cosigner's
    /// signature line added, made at `timestamp` (POSIX seconds).
    pub fn cosign(&self, note: &str, timestamp: u64) -> Result<String, CosignError> {
        let body = note_body(note)?;
        let signature = self.key.sign(message(body, timestamp).as_bytes());
        let mut raw = key_id(&self.name, &self.key.verifying_key()).to_vec();
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&signature.to_bytes());
        if !note.ends_with('\n') {
            return Err(CosignError::Note("a note ends in a newline"));
        }
        Ok(format!("{note}{DASH}{} {}\n", self.name, B64.encode(raw)))
    }
}

impl Cosigner {
    /// A signature line (`— <name> base64(key ID ‖ Ed25519 signature)`) over `message`,
    /// for the console's other signed statements ([`crate::approval`]): their messages
    /// begin with their own domain, never with `cosignature/v1`, and the line carries no
    /// timestamp, so it is never read as a cosignature.
    pub fn sign_line(&self, message: &[u8]) -> String {
        let signature = self.key.sign(message);
        let mut raw = key_id(&self.name, &self.key.verifying_key()).to_vec();
        raw.extend_from_slice(&signature.to_bytes());
        format!("{DASH}{} {}\n", self.name, B64.encode(raw))
    }
}

/// The name and public key of a verifier key (as [`Cosigner::verifier`] writes it).
fn parse_verifier(verifier: &str) -> Result<(&str, VerifyingKey), CosignError> {
    let mut parts = verifier.splitn(3, '+');
    let (Some(name), Some(_), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CosignError::Note("a verifier key is name+id+key"));
    };
    let raw = B64
        .decode(key)
        .map_err(|_| CosignError::Note("the verifier key is not base64"))?;
    let public = match raw.split_first() {
        Some((&ALG_COSIGNATURE_V1, bytes)) => <[u8; 32]>::try_from(bytes)
            .ok()
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or(CosignError::Note("not an Ed25519 key"))?,
        _ => return Err(CosignError::Note("not a cosignature/v1 key")),
    };
    Ok((name, public))
}

/// Checks a line made by [`Cosigner::sign_line`] over `message` with `verifier`.
pub fn verify_line(message: &[u8], line: &str, verifier: &str) -> Result<(), CosignError> {
    let (name, public) = parse_verifier(verifier)?;
    let refused = || CosignError::NotCosigned(name.to_string());
    let (who, sig) = line
        .strip_prefix(DASH)
        .and_then(|l| l.split_once(' '))
        .ok_or_else(refused)?;
    let raw = B64.decode(sig).map_err(|_| refused())?;
    if who != name || raw.len() != 4 + 64 || raw[..4] != key_id(name, &public) {
        return Err(refused());
    }
    let signature = Signature::from_slice(&raw[4..]).map_err(|_| refused())?;
    public
        .verify_strict(message, &signature)
        .map_err(|_| refused())
}

/// Checks `note` for a cosignature by the verifier key `verifier` (as
/// [`Cosigner::verifier`] writes it); returns its timestamp.
pub fn verify(note: &str, verifier: &str) -> Result<u64, CosignError> {
    let (name, public) = parse_verifier(verifier)?;
    let id = key_id(name, &public);
    let body = note_body(note)?;
    let signatures = &note[body.len() + 1..];
    for line in signatures.lines() {
        let Some((who, sig)) = line.strip_prefix(DASH).and_then(|l| l.split_once(' ')) else {
            continue;
        };
        let Ok(raw) = B64.decode(sig) else { continue };
        if who != name || raw.len() != 4 + 8 + 64 || raw[..4] != id {
            continue;
        }
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&raw[4..12]);
        let timestamp = u64::from_be_bytes(stamp);
        let Ok(signature) = Signature::from_slice(&raw[12..]) else {
            continue;
        };
        if public
            .verify_strict(message(body, timestamp).as_bytes(), &signature)
            .is_ok()
        {
            return Ok(timestamp);
        }
    }
    Err(CosignError::NotCosigned(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

    #[test]
    fn a_cosignature_verifies_and_binds_the_checkpoint_and_the_time() {
        let cosigner = Cosigner::new("console.example/witness", SigningKey::from_bytes(&[7; 32]));
        let cosigned = cosigner.cosign(NOTE, 1_679_315_147).expect("cosign");
        assert!(cosigned.starts_with(NOTE), "the log's signature stays");
        assert_eq!(
            verify(&cosigned, &cosigner.verifier()).expect("verifies"),
            1_679_315_147
        );
        // Another root under the same signature line does not verify.
        let forged = cosigned.replace("CsUYap", "DsUYap");
        assert!(verify(&forged, &cosigner.verifier()).is_err());
        let other = Cosigner::new("console.example/witness", SigningKey::from_bytes(&[8; 32]));
        assert!(verify(&cosigned, &other.verifier()).is_err(), "another key");
    }

    #[test]
    fn the_signed_message_is_the_one_the_format_defines() {
        // The message of the specification's example, byte for byte.
        let body = note_body(NOTE).expect("body");
        assert_eq!(
            message(body, 1_679_315_147),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    #[test]
    fn the_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("witness.key");
        let a = Cosigner::load_or_generate(&path, "w").expect("new");
        let b = Cosigner::load_or_generate(&path, "w").expect("read");
        assert_eq!(a.verifier(), b.verifier());
    }
}
