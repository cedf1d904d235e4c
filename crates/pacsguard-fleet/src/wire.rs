//! The wire between a host and the console: length-prefixed JSON frames over TLS.
//!
//! A frame is a 4-byte big-endian length and that many bytes of JSON. The reader refuses
//! a length over [`MAX_FRAME_BYTES`] before reading it, so a peer cannot make the other
//! side allocate more than that.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::approval::ProfileClaim;

/// Largest frame either side reads: a batch ([`MAX_BATCH_BYTES`] of record lines,
/// escaped as JSON strings at most doubles them) with room for one record at the edge.
pub const MAX_FRAME_BYTES: u32 = 16 << 20;

/// Largest frame read from a peer without a client certificate: it may only enrol, and
/// an enrolment (a 64-digit token, a host name, a CSR of one P-256 or Ed25519 key) is a
/// few kilobytes. Anyone who reaches the listener can open connections, so without this
/// each of them could make the console hold [`MAX_FRAME_BYTES`].
pub const MAX_ENROL_FRAME_BYTES: u32 = 64 << 10;

/// Record bytes a host puts in one report before it sends it.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// What a host asks of the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    /// Enrolment, before the host has an identity: the token and a PKCS#10 request
    /// (base64 DER) for the key the host made.
    Enrol {
        token: String,
        name: String,
        csr: String,
    },
    /// Trail records (each as written in `audit.log`, in order) and the newest
    /// checkpoint; an empty list with a checkpoint is a heartbeat.
    Report {
        /// The host's trail key (a note verifier: `origin+keyid+key`).
        trail_key: String,
        /// The most seconds until the next report, as the host promises.
        interval: u64,
        /// Sequence number of the first record.
        first: u64,
        records: Vec<String>,
        checkpoint: Option<String>,
        /// The host's current signed profile generation, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<ProfileClaim>,
        /// The host's clock when it sent this report (Unix seconds), which the console
        /// compares with its own (`clock::MAX_CLOCK_SKEW`); absent from hosts before
        /// session 25.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_at: Option<i64>,
    },
    /// `check` on the host: whether the console's approval of this profile generation
    /// is still the one in effect for this host (not superseded, not revoked). Read
    /// only: it notes nothing (a report does).
    ApprovalStatus { profile: ProfileClaim },
}

/// The console's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Response {
    Enrolled {
        /// The host's client certificate (PEM), issued by the console's host CA.
        certificate: String,
        /// The console's witness key (a note verifier for cosignatures).
        witness: String,
    },
    /// Records up to `size` are stored; `cosigned` is the checkpoint with the console's
    /// cosignature line added, when one was sent and verified.
    Witnessed {
        size: u64,
        cosigned: Option<String>,
        /// The console's approval of the profile generation the report named, once an
        /// approver accepted it there ([`crate::approval`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<String>,
    },
    /// The answer to [`Request::ApprovalStatus`]: whether the approval is in effect, and
    /// why not when it is not.
    ApprovalStatus { in_effect: bool, detail: String },
    /// Refused, with the reason a person can act on.
    Refused { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("a frame of {0} bytes, more than the {1}-byte limit")]
    TooLarge(u64, u32),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Writes one frame.
pub fn write_frame(out: &mut impl Write, message: &impl Serialize) -> Result<(), WireError> {
    let body = serde_json::to_vec(message).map_err(|e| WireError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|n| *n <= MAX_FRAME_BYTES)
        .ok_or(WireError::TooLarge(body.len() as u64, MAX_FRAME_BYTES))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(&body)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame; `Ok(None)` at a clean end of the stream before a frame began.
pub fn read_frame<T: for<'de> Deserialize<'de>>(
    input: &mut impl Read,
) -> Result<Option<T>, WireError> {
    read_frame_within(input, MAX_FRAME_BYTES)
}

/// Reads one frame of at most `limit` bytes (itself at most [`MAX_FRAME_BYTES`]), the
/// length refused before any of the body is read.
pub fn read_frame_within<T: for<'de> Deserialize<'de>>(
    input: &mut impl Read,
    limit: u32,
) -> Result<Option<T>, WireError> {
    let limit = limit.min(MAX_FRAME_BYTES);
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(WireError::Malformed(
                    "the stream ended inside a length".into(),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len);
    if len > limit {
        return Err(WireError::TooLarge(u64::from(len), limit));
    }
    let mut body = Vec::new();
    input.take(u64::from(len)).read_to_end(&mut body)?;
    if body.len() as u64 != u64::from(len) {
        return Err(WireError::Malformed(
            "the stream ended inside a frame".into(),
        ));
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut bytes = Vec::new();
        let sent = Response::Witnessed {
            size: 3,
            cosigned: None,
            approval: Some("approved".into()),
        };
        write_frame(&mut bytes, &sent).expect("write");
        let mut input = bytes.as_slice();
        assert_eq!(
            read_frame::<Response>(&mut input).expect("read"),
            Some(sent)
        );
        assert_eq!(read_frame::<Response>(&mut input).expect("end"), None);
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_it_is_read() {
        let at_limit = MAX_FRAME_BYTES.to_be_bytes();
        // At the limit the length is accepted, and the short body is what fails.
        let err =
            read_frame::<Response>(&mut at_limit.as_slice().chain(&b"{}"[..])).expect_err("short");
        assert!(matches!(err, WireError::Malformed(_)), "{err}");
        let over = (MAX_FRAME_BYTES + 1).to_be_bytes();
        let err = read_frame::<Response>(&mut over.as_slice()).expect_err("over");
        assert!(matches!(err, WireError::TooLarge(..)), "{err}");
        // A peer that may only enrol is held to the enrolment limit.
        let at_limit = MAX_ENROL_FRAME_BYTES.to_be_bytes();
        let err = read_frame_within::<Response>(
            &mut at_limit.as_slice().chain(&b"{}"[..]),
            MAX_ENROL_FRAME_BYTES,
        )
        .expect_err("short");
        assert!(matches!(err, WireError::Malformed(_)), "{err}");
        let over = (MAX_ENROL_FRAME_BYTES + 1).to_be_bytes();
        let err = read_frame_within::<Response>(&mut over.as_slice(), MAX_ENROL_FRAME_BYTES)
            .expect_err("over");
        assert!(matches!(err, WireError::TooLarge(..)), "{err}");
        let torn = [0u8, 0];
        assert!(read_frame::<Response>(&mut torn.as_slice()).is_err());
    }

    /// Hostile bytes (random, and a valid frame cut or flipped anywhere) are an error or a
    /// message, never a panic. A smoke test beside the fuzzing of the other parsers.
    #[test]
    fn hostile_frames_never_panic() {
        let mut valid = Vec::new();
        write_frame(
            &mut valid,
            &Request::Report {
                sent_at: None,
                trail_key: "h+00000000+AQ==".into(),
                interval: 5,
                first: 0,
                records: vec!["{\"seq\":0}".into()],
                checkpoint: Some("h\n1\nAA==\n\n".into()),
                profile: Some(ProfileClaim {
                    generation: 2,
                    created: 3,
                    digest: "ab".repeat(32),
                }),
            },
        )
        .expect("write");
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let mut bytes = valid.clone();
            let cut = (next() as usize) % (bytes.len() + 1);
            bytes.truncate(cut.max(4));
            let at = (next() as usize) % bytes.len();
            bytes[at] ^= (next() & 0xff) as u8;
            if let Ok(Some(Request::Report {
                trail_key,
                first,
                records,
                checkpoint,
                ..
            })) = read_frame::<Request>(&mut bytes.as_slice())
            {
                let _ = crate::witness::verify_report(
                    &crate::witness::Witnessed::default(),
                    &trail_key,
                    first,
                    &records,
                    checkpoint.as_deref(),
                );
            }
            let random: Vec<u8> = (0..(next() % 64)).map(|_| (next() & 0xff) as u8).collect();
            let _ = read_frame::<Request>(&mut random.as_slice());
        }
    }
}
