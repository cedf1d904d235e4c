//! Many hosts, one console.
//!
//! A guarded host keeps evidence on itself (key, profile, trail); an attacker with root
//! there can rewrite it. This crate moves a copy of that evidence, and the judgement of
//! it, to a console on another machine:
//!
//! - **Enrolment** ([`ca`], [`host::enrol`]): the console issues one-time, expiring tokens
//!   (stored hashed). The host makes its own key pair (kept in its home, never sent),
//!   sends a certificate request with the token over TLS pinned to the console
//!   certificate's SHA-256 fingerprint, and receives a client certificate from the
//!   console's host CA. Every later connection is mutual TLS; a revoked host is refused
//!   at its first request.
//! - **Reporting** ([`host::ConsoleTransport`]): a transport of the trail's one delivery
//!   mechanism (`pacsguard_audit::delivery`): records from the `console` cursor, in order,
//!   with the newest checkpoint; the cursor moves only when the console answered.
//! - **Witness** ([`witness`], [`console`]): the console keeps each host's records and
//!   the Merkle frontier over them, so it proves every record's inclusion in, and every
//!   checkpoint's consistency with, the tree it already accepted by recomputing it; it
//!   answers with a C2SP tlog-cosignature ([`cosign`]) that the host keeps beside its
//!   trail. What does not verify (a fork or rollback, a gap, a record outside the
//!   signed tree, a new host key) is refused and raised as an alert on the console's
//!   own trail; a host that stops reporting is raised as silent.
//!
//! - **Approvals** ([`approval`]): each report names the host's signed profile
//!   generation; one made on the host is pending (and an alert) until an approver accepts
//!   it on the console, whose signed approval the host keeps and `check` verifies.
//!
//! The wire format ([`wire`]) is length-prefixed JSON frames, free of I/O.

pub mod acknowledge;
pub mod approval;
pub mod ca;
pub mod clock;
pub mod console;
pub mod cosign;
pub mod duplicates;
pub mod freshness;
pub mod hold;
pub mod host;
pub mod pin;
pub mod resolve;
pub mod silence;
#[cfg(test)]
mod unanswered;
pub mod unwritten;
pub mod wire;
pub mod witness;

/// SHA-256 of a DER certificate as lower-case hex without separators (how hosts are
/// keyed in the console's store).
pub fn cert_fingerprint(der: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fingerprint as a person types it (`AB:CD:...` as `serve` prints it, or plain hex),
/// normalized to lower-case hex; `None` if it is not 32 bytes of hex.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// A fingerprint as `serve` prints it (`AB:CD:...`), what a person compares with what
/// a host was given; one that is not 32 bytes of hex is shown as it is.
pub fn printed_fingerprint(text: &str) -> String {
    match normalize_fingerprint(text) {
        Some(hex) => hex
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_accepted_as_serve_prints_them() {
        let printed = "AB:".repeat(31) + "CD";
        assert_eq!(
            normalize_fingerprint(&printed),
            Some("ab".repeat(31) + "cd")
        );
        assert_eq!(
            normalize_fingerprint(&"ab".repeat(32)),
            Some("ab".repeat(32))
        );
        assert_eq!(normalize_fingerprint("ab:cd"), None);
        assert_eq!(normalize_fingerprint(&"zz".repeat(32)), None);
    }
}
