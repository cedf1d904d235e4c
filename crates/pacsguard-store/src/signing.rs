//! What exactly is signed, and how keys are named.

use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};

/// Domain separation: a baseline signature can never be replayed as any other signature
/// made with the same key (audit checkpoints, for instance).
pub const SIGNATURE_DOMAIN: &[u8] = b"PacsGuard baseline signature v1\n";

/// The signed message of stores written before acceptances were signed (still verified,
/// so older homes keep working until their next profile or accept re-signs them): the
/// domain, then the baseline's canonical digest.
pub fn signing_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut message = SIGNATURE_DOMAIN.to_vec();
    message.extend_from_slice(digest);
    message
}

/// Domain of the signature over the baseline and the acceptances together.
pub const SIGNATURE_DOMAIN_V2: &[u8] = b"PacsGuard baseline and acceptances signature v2\n";

/// The signed message: the domain, the baseline's canonical digest, then the digest of
/// every acceptance (who, when, why, which paths, which generation), so an acceptance
/// edited, added or deleted in the store breaks the signature like an edited entry.
pub fn signing_message_v2(digest: &[u8; 32], acceptances: &[u8; 32]) -> Vec<u8> {
    let mut message = SIGNATURE_DOMAIN_V2.to_vec();
    message.extend_from_slice(digest);
    message.extend_from_slice(acceptances);
    message
}

/// Domain of the signature over the tree of digests ([`crate::merkle`]) and the
/// acceptances: its own string, so a v2 message can never verify as a v3 one.
pub const SIGNATURE_DOMAIN_V3: &[u8] = b"PacsGuard baseline tree and acceptances signature v3\n";

/// The signed message of stores signed since the baseline became a tree of digests: the
/// domain, the tree's root (the generation, every root's spec and entry count, and every
/// stored chunk's leaf) and the digest of every acceptance, as in v2.
pub fn signing_message_v3(tree_root: &[u8; 32], acceptances: &[u8; 32]) -> Vec<u8> {
    let mut message = SIGNATURE_DOMAIN_V3.to_vec();
    message.extend_from_slice(tree_root);
    message.extend_from_slice(acceptances);
    message
}

/// `SHA256:` and the hex SHA-256 of the public key: what `init` prints and `check` shows,
/// so an administrator can compare it with the one written down at installation.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{hex}")
}
