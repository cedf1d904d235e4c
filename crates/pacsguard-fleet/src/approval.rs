//! Approvals off the host: a host's signed profile generation counts as approved only
//! when its console signed it after an approver accepted it there.
//!
//! The host names each generation by a digest of the signature its own key made over
//! it ([`profile_digest`]: the signature covers the whole profile and its acceptances,
//! so a new `profile` or `accept` gives a new digest) and sends it with every report.
//! The console keeps what each host claimed; a generation it has not approved is
//! pending and raised as `host-profile-unapproved`. Once an approver accepted it (on
//! the console, after a step-up, with a reason), the console answers the host's next
//! report with an approval: its witness key's signature over (host, generation,
//! digest, time), which the host keeps in `fleet/approvals.jsonl` and `check` verifies
//! with the witness key the host recorded at enrolment. The console signs only an
//! approval its own audit trail records (`console::Proof`, session 22): a row the store
//! holds as approved, written there by whoever holds the database, is not enough.
//!
//! The approval is signed with the console's witness key, under a message that begins
//! with [`APPROVAL_DOMAIN`]: a C2SP cosignature message begins with `cosignature/v1\n`,
//! so neither kind of signature can ever be taken for the other.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The first line of every approval message (domain separation from cosignatures).
pub const APPROVAL_DOMAIN: &str = "pacsguard profile approval v1";
const DASH: &str = "\u{2014} ";

/// What a host says of its current profile in each report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileClaim {
    pub generation: u64,
    /// When the generation was signed on the host (Unix seconds), for the pages.
    pub created: i64,
    /// [`profile_digest`] of the generation's signature (64 lower-case hex digits).
    pub digest: String,
}

impl ProfileClaim {
    /// Whether the claim is well formed (the console stores and shows only such).
    pub fn is_well_formed(&self) -> bool {
        self.digest.len() == 64
            && self
                .digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// The name of a signed profile generation: SHA-256 over a domain, the public key that
/// signed it and the signature (lower-case hex).
pub fn profile_digest(public_key: &[u8], signature: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"pacsguard signed profile v1\0");
    h.update((public_key.len() as u64).to_le_bytes());
    h.update(public_key);
    h.update(signature);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed message of an approval.
fn message(host: &str, claim: &ProfileClaim, time: u64) -> String {
    format!(
        "{APPROVAL_DOMAIN}\nhost {host}\ngeneration {}\nprofile {}\ntime {time}\n",
        claim.generation, claim.digest
    )
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("not an approval of the console")]
    Malformed,
    #[error("the approval is not signed by the console's witness key")]
    BadSignature,
    #[error("the approval is for another host or profile generation")]
    OtherProfile,
}

impl crate::cosign::Cosigner {
    /// The console's approval of `claim` for `host`, made at `time` (Unix seconds): the
    /// message and one signature line, as [`verify`] reads it.
    pub fn approve(&self, host: &str, claim: &ProfileClaim, time: u64) -> String {
        let text = message(host, claim, time);
        let line = self.sign_line(text.as_bytes());
        format!("{text}{line}")
    }
}

/// Checks that `approval` is the console's (the witness verifier key `verifier`, as
/// recorded at enrolment) approval of `claim` for `host`; returns when it was made.
pub fn verify(
    approval: &str,
    verifier: &str,
    host: &str,
    claim: &ProfileClaim,
) -> Result<u64, ApprovalError> {
    let split = approval
        .rfind(DASH)
        .filter(|&at| at > 0 && approval[..at].ends_with('\n'))
        .ok_or(ApprovalError::Malformed)?;
    let (text, line) = approval.split_at(split);
    let time = text
        .lines()
        .find_map(|l| l.strip_prefix("time "))
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or(ApprovalError::Malformed)?;
    if text != message(host, claim, time) {
        return Err(ApprovalError::OtherProfile);
    }
    crate::cosign::verify_line(text.as_bytes(), line.trim_end_matches('\n'), verifier)
        .map_err(|_| ApprovalError::BadSignature)?;
    Ok(time)
}

/// An approval as the host keeps it (one JSON line of `fleet/approvals.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kept {
    pub approval: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::Cosigner;
    use ed25519_dalek::SigningKey;

    fn claim() -> ProfileClaim {
        ProfileClaim {
            generation: 4,
            created: 1_700_000_000,
            digest: profile_digest(&[1; 32], &[2; 64]),
        }
    }

    #[test]
    fn an_approval_binds_the_host_the_generation_and_the_profile() {
        let console = Cosigner::new(
            "console/pacsguard-console",
            SigningKey::from_bytes(&[7; 32]),
        );
        let approval = console.approve("pacs-01", &claim(), 1_800_000_000);
        assert!(approval.starts_with(APPROVAL_DOMAIN));
        let verifier = console.verifier();
        assert_eq!(
            verify(&approval, &verifier, "pacs-01", &claim()),
            Ok(1_800_000_000)
        );
        assert_eq!(
            verify(&approval, &verifier, "pacs-02", &claim()),
            Err(ApprovalError::OtherProfile),
            "another host"
        );
        let mut newer = claim();
        newer.generation = 5;
        assert_eq!(
            verify(&approval, &verifier, "pacs-01", &newer),
            Err(ApprovalError::OtherProfile),
            "another generation"
        );
        let mut other = claim();
        other.digest = profile_digest(&[1; 32], &[3; 64]);
        assert_eq!(
            verify(&approval, &verifier, "pacs-01", &other),
            Err(ApprovalError::OtherProfile),
            "another profile under the same generation"
        );
        // The time is signed too.
        let moved = approval.replace("time 1800000000", "time 1900000000");
        assert_eq!(
            verify(&moved, &verifier, "pacs-01", &claim()),
            Err(ApprovalError::BadSignature)
        );
        let stranger = Cosigner::new(
            "console/pacsguard-console",
            SigningKey::from_bytes(&[8; 32]),
        );
        assert_eq!(
            verify(&approval, &stranger.verifier(), "pacs-01", &claim()),
            Err(ApprovalError::BadSignature),
            "another console"
        );
        assert_eq!(
            verify("", &verifier, "pacs-01", &claim()),
            Err(ApprovalError::Malformed)
        );
    }

    #[test]
    fn an_approval_is_never_a_cosignature_nor_the_reverse() {
        let console = Cosigner::new(
            "console/pacsguard-console",
            SigningKey::from_bytes(&[7; 32]),
        );
        let note = "host/trail\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n";
        let cosigned = console.cosign(note, 5).expect("cosign");
        assert!(verify(&cosigned, &console.verifier(), "pacs-01", &claim()).is_err());
        let approval = console.approve("pacs-01", &claim(), 5);
        assert!(crate::cosign::verify(&approval, &console.verifier()).is_err());
    }

    #[test]
    fn the_profile_digest_names_the_signature() {
        assert_ne!(
            profile_digest(&[1; 32], &[2; 64]),
            profile_digest(&[1; 32], &[3; 64])
        );
        assert!(claim().is_well_formed());
        let mut bad = claim();
        bad.digest.push('0');
        assert!(!bad.is_well_formed());
        bad.digest = "Z".repeat(64);
        assert!(!bad.is_well_formed());
    }
}
