//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more signature
//! lines `— <name> <base64(key hash ‖ signature)>`. The key hash is the first four bytes
//! of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key). Keys are written as
//! `<name>+<hex key hash>+<base64(0x01 ‖ public key)>` (verifier) and
//! `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>` (signer).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Largest note accepted for verification: a checkpoint is a few hundred bytes.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Most signature lines looked at in one note; more is refused, not skimmed.
pub const MAX_SIGNATURES: usize = 100;

const ALG_ED25519: u8 = 1;
const DASH: &str = "\u{2014} ";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    BadName(String),
    #[error("the note text must be UTF-8 ending in a newline, without a blank line at the end")]
    BadText,
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("the note is {0} bytes long, more than the {MAX_NOTE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("no signature by {0} on this note")]
    NotSignedBy(String),
    #[error("the signature by {0} does not verify: the note was altered")]
    BadSignature(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

fn key_hash(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public.as_bytes());
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Splits `<name>+<hex key hash>+<base64(0x01 ‖ 32 key bytes)>` (the form of both key
/// kinds, after the signer's `PRIVATE+KEY+` prefix).
fn split_key(text: &str) -> Result<(&str, &str, [u8; 32]), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey("expected name+hash+key"));
    };
    let raw = B64
        .decode(key)
        .map_err(|_| NoteError::BadKey("key is not base64"))?;
    let (&alg, bytes) = raw.split_first().ok_or(NoteError::BadKey("empty key"))?;
    if alg != ALG_ED25519 {
        return Err(NoteError::BadKey("not an Ed25519 key"));
    }
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| NoteError::BadKey("Ed25519 keys are 32 bytes"))?;
    Ok((name, hash, bytes))
}

/// The key hash written in a key must be the one its name and public key give.
fn check_key_hash(written: &str, actual: u32) -> Result<(), NoteError> {
    if written.len() != 8 || u32::from_str_radix(written, 16).ok() != Some(actual) {
        return Err(NoteError::BadKey("key hash does not match name and key"));
    }
    Ok(())
}

/// Who checks signatures: a name and an Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl Verifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Verifier, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadName(name.to_string()));
        }
        Ok(Verifier {
            name: name.to_string(),
            hash: key_hash(name, &key),
            key,
        })
    }

    /// Parses `<name>+<hex key hash>+<base64 key>`.
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let (name, hash, public) = split_key(text)?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::BadKey("not a valid Ed25519 point"))?;
        let verifier = Verifier::new(name, key)?;
        check_key_hash(hash, verifier.hash)?;
        Ok(verifier)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The C2SP key ID: the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key).
    pub fn key_id(&self) -> u32 {
        self.hash
    }

    /// The `<name>+<hash>+<key>` form, to publish.
    pub fn encode(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, B64.encode(raw))
    }
}

/// Who signs: a name and an Ed25519 signing key.
#[derive(Debug)]
pub struct Signer {
    verifier: Verifier,
    key: SigningKey,
}

impl Signer {
    pub fn new(name: &str, key: SigningKey) -> Result<Signer, NoteError> {
        Ok(Signer {
            verifier: Verifier::new(name, key.verifying_key())?,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Signer, NoteError> {
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("expected PRIVATE+KEY+"))?;
        let (name, hash, seed) = split_key(rest)?;
        let signer = Signer::new(name, SigningKey::from_bytes(&seed))?;
        check_key_hash(hash, signer.verifier.hash)?;
        Ok(signer)
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// A secret for another purpose, derived from the signing key and `context` (domain
    /// separation: SHA-256 of the context, a zero byte and the seed). Whoever holds the
    /// signing key can derive it; nobody else can.
    pub fn derive_secret(&self, context: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(context.as_bytes());
        h.update([0u8]);
        h.update(self.key.to_bytes());
        h.finalize().into()
    }

    /// Signs `text` (UTF-8, ending in exactly one newline) and returns the whole note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') || text.ends_with("\n\n") || text.contains("\n\n") {
            return Err(NoteError::BadText);
        }
        let signature = self.key.sign(text.as_bytes());
        let mut raw = self.verifier.hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{DASH}{} {}\n",
            self.verifier.name,
            B64.encode(raw)
        ))
    }
}

/// Checks that `note` carries a valid signature by `verifier` and returns its text.
/// Signatures by other keys are allowed and ignored (a witness may cosign).
pub fn open(note: &[u8], verifier: &Verifier) -> Result<String, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge(note.len()));
    }
    let note = std::str::from_utf8(note).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if !signatures.ends_with('\n') {
        return Err(NoteError::Malformed(
            "signature block does not end in a newline",
        ));
    }
    let lines: Vec<&str> = signatures[..signatures.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut found = false;
    for line in lines {
        let rest = line
            .strip_prefix(DASH)
            .ok_or(NoteError::Malformed("signature line without '— '"))?;
        let (name, sig) = rest
            .split_once(' ')
            .ok_or(NoteError::Malformed("signature line without a space"))?;
        if !valid_name(name) {
            return Err(NoteError::Malformed("invalid signer name"));
        }
        let raw = B64
            .decode(sig)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if raw.len() < 4 {
            return Err(NoteError::Malformed("signature too short"));
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if name != verifier.name || hash != verifier.hash {
            continue;
        }
        let signature = Signature::from_slice(&raw[4..])
            .map_err(|_| NoteError::BadSignature(name.to_string()))?;
        verifier
            .key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| NoteError::BadSignature(name.to_string()))?;
        found = true;
    }
    if found {
        Ok(text.to_string())
    } else {
        Err(NoteError::NotSignedBy(verifier.name.clone()))
    }
}
