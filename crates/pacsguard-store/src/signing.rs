//! What exactly is signed, and how keys are named.

use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};

/// Domain separation: a baseline signature can never be replayed as any other signature
/// made with the same key (audit checkpoints, for instance).
pub const SIGNATURE_DOMAIN: &[u8] = b"PacsGuard baseline signature v1\n";

/// The signed message: the domain, then the baseline's canonical digest.
pub fn signing_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut message = SIGNATURE_DOMAIN.to_vec();
    message.extend_from_slice(digest);
    message
}

/// `SHA256:` and the hex SHA-256 of the public key: what `init` prints and `check` shows,
/// so an administrator can compare it with the one written down at installation.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{hex}")
}
