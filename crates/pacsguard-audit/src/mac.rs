//! Record MACs: how a writer tells records a PacsGuard command wrote (and was killed
//! before signing) from records someone else appended.
//!
//! Every record line ends with `,"mac":"<64 hex digits>"}`: keyed BLAKE3, under a secret
//! derived from the home's signing key, of the line's bytes before that field. Only
//! records after the last checkpoint need it (the checkpoint's signature covers the
//! rest): a writer opening the trail adopts unsigned records that carry a valid MAC (a
//! command killed between writing and signing; the adoption is recorded) and refuses any
//! that do not (forged or edited). Whoever can read `signing.key` can forge both the MAC
//! and the checkpoints: this keeps out writers of `audit.log`, not holders of the key.

use pacsguard_trail::note::Signer;

/// The domain of the key derived from the signing key.
const MAC_CONTEXT: &str = "PacsGuard audit record MAC v1";
/// What precedes the MAC at the end of a record line.
const MAC_FIELD: &[u8] = b",\"mac\":\"";
/// `,"mac":"` + 64 hex digits + `"}`.
const MAC_SUFFIX_LEN: usize = MAC_FIELD.len() + 64 + 2;

#[derive(Clone)]
pub struct RecordKey([u8; 32]);

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

impl RecordKey {
    pub fn of(signer: &Signer) -> RecordKey {
        RecordKey(signer.derive_secret(MAC_CONTEXT))
    }

    /// `json` (a serialized object) with its MAC as the last field.
    pub fn seal(&self, mut json: Vec<u8>) -> Vec<u8> {
        if json.last() == Some(&b'}') {
            json.pop();
        }
        let tag = blake3::keyed_hash(&self.0, &json);
        json.extend_from_slice(MAC_FIELD);
        json.extend_from_slice(tag.to_hex().as_bytes());
        json.extend_from_slice(b"\"}");
        json
    }

    /// Whether `line` (without its newline) ends with a valid MAC of the rest.
    pub fn check(&self, line: &[u8]) -> bool {
        let Some(split) = line.len().checked_sub(MAC_SUFFIX_LEN) else {
            return false;
        };
        let (body, suffix) = line.split_at(split);
        let Some(hex) = suffix
            .strip_prefix(MAC_FIELD)
            .and_then(|rest| rest.strip_suffix(b"\"}"))
        else {
            return false;
        };
        let Ok(tag) = std::str::from_utf8(hex).map(blake3::Hash::from_hex) else {
            return false;
        };
        // blake3::Hash compares in constant time.
        tag.is_ok_and(|tag| tag == blake3::keyed_hash(&self.0, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn a_sealed_record_checks_and_any_change_breaks_it() {
        let signer = Signer::new("t", SigningKey::from_bytes(&[7; 32])).expect("signer");
        let key = RecordKey::of(&signer);
        let sealed = key.seal(br#"{"seq":3,"action":"check"}"#.to_vec());
        assert!(key.check(&sealed));
        let value: serde_json::Value = serde_json::from_slice(&sealed).expect("still JSON");
        assert_eq!(value["seq"], 3);
        for i in 0..sealed.len() {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(!key.check(&bent), "byte {i}");
        }
        let other = Signer::new("t", SigningKey::from_bytes(&[8; 32])).expect("signer");
        assert!(!RecordKey::of(&other).check(&sealed));
        assert!(!key.check(br#"{"seq":3}"#));
    }
}
