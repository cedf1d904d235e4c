//! The signed manifest of one media import: what was copied (with digest and SOP
//! Instance UID), what was refused and why, what was expected and left on the medium.
//! It is the evidence a PACS administrator hands on with the images: verifiable offline
//! with the home's public key (`media verify`), like a profile export.
//!
//! Layout, three lines of text so that a person can read it and `grep` it:
//! `PACSGUARD-MEDIA-MANIFEST 1`, the body as one line of JSON (it names the signer's
//! public key), and `ed25519 <hex signature>` over
//! `MANIFEST_CONTEXT || SHA-256(first line, newline, body line, newline)`.

use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::EngineError;

const HEADER: &str = "PACSGUARD-MEDIA-MANIFEST 1";
const MANIFEST_CONTEXT: &[u8] = b"pacsguard media manifest v1\0";
/// The largest manifest read back: a DVD of 200,000 entries fits in ~60 MB.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// The signed bytes of `body` (any serializable value with a `signer` field).
pub(super) fn encode(body: &impl Serialize, key: &SigningKey) -> Result<Vec<u8>, EngineError> {
    let json = serde_json::to_string(body)
        .map_err(|e| EngineError::Usage(format!("cannot encode the manifest: {e}")))?;
    let signed = format!("{HEADER}\n{json}\n");
    let signature = key.sign(&message(signed.as_bytes()));
    Ok(format!("{signed}ed25519 {}\n", hex::encode(signature.to_bytes())).into_bytes())
}

fn message(signed: &[u8]) -> Vec<u8> {
    let mut message = MANIFEST_CONTEXT.to_vec();
    message.extend_from_slice(&Sha256::digest(signed));
    message
}

/// A manifest that verified, and its body.
#[derive(Debug, Serialize)]
pub struct VerifiedManifest {
    pub signer_fingerprint: String,
    pub body: serde_json::Value,
}

/// Reads `path` and verifies its signature with `trusted`. A manifest signed by another
/// key, edited, truncated or malformed is an error naming it.
pub fn verify(path: &Path, trusted: &VerifyingKey) -> Result<VerifiedManifest, EngineError> {
    let bytes = crate::files::read_bounded(path, MAX_MANIFEST_BYTES)?
        .ok_or_else(|| EngineError::io(path, "no such file"))?;
    let bad = |what: &str| EngineError::io(path, format!("not a PacsGuard media manifest: {what}"));
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text"))?;
    let mut lines = text.split_inclusive('\n');
    let (Some(header), Some(body), Some(signature), None) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return Err(bad("not three lines"));
    };
    if header != format!("{HEADER}\n") {
        return Err(bad("no header line"));
    }
    let signature = signature
        .strip_prefix("ed25519 ")
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| hex::decode(s).ok())
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| bad("no signature line"))?;
    let signed = &text[..header.len() + body.len()];
    trusted
        .verify_strict(&message(signed.as_bytes()), &Signature::from_bytes(&signature))
        .map_err(|_| {
            EngineError::io(
                path,
                "the manifest's signature does not verify with the trusted key: it was modified after it was signed, or signed by another key",
            )
        })?;
    let body: serde_json::Value =
        serde_json::from_str(body).map_err(|_| bad("the body is not JSON"))?;
    Ok(VerifiedManifest {
        signer_fingerprint: pacsguard_store::fingerprint(trusted),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_verifies_and_any_edit_or_other_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let bytes = encode(&serde_json::json!({"copied": [1, 2]}), &key).expect("encode");
        let path = dir.path().join("m");
        std::fs::write(&path, &bytes).expect("write");
        let verified = verify(&path, &key.verifying_key()).expect("verifies");
        assert_eq!(verified.body["copied"][1], 2);

        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(verify(&path, &other.verifying_key()).is_err());
        let edited = String::from_utf8(bytes)
            .expect("text")
            .replace("[1,2]", "[1,3]");
        std::fs::write(&path, edited).expect("write");
        let error = verify(&path, &key.verifying_key()).expect_err("edited");
        assert!(error.to_string().contains("does not verify"), "{error}");
    }
}
