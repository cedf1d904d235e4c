//! One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA-1, the
//! algorithm every authenticator app implements.
//!
//! Parameters (RFC 6238 §5.2, NIST SP 800-63B-4 for OTP authenticators): a 160-bit secret
//! (the length of SHA-1's output, RFC 4226 §4 R6), 6 digits, 30-second steps, a code of
//! the step before or after accepted for clock drift, and every step accepted once per
//! account (the store keeps the last step used: a replayed code is refused).

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

/// Bytes of a new TOTP secret: 160 bits.
pub const SECRET_BYTES: usize = 20;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of now whose codes are accepted (clock drift between the phone and
/// this host).
pub const DRIFT_STEPS: i64 = 1;

/// The HOTP value of `counter` (RFC 4226 §5.3), `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts a key of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    word % 10u32.pow(digits)
}

/// The time step of `unix_seconds` (T0 = 0).
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code of one step, as shown by an app: zero-padded to [`DIGITS`].
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    let counter = u64::try_from(step).unwrap_or(0);
    format!(
        "{:0width$}",
        hotp(secret, counter, DIGITS),
        width = DIGITS as usize
    )
}

/// The step within [`DRIFT_STEPS`] of `now` whose code `code` is, if any (compared in
/// constant time). The caller still has to spend the step once (replay).
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_seconds);
    let mut found = None;
    // Every candidate is computed and compared, so the time taken does not say which
    // step matched.
    for step in (now - DRIFT_STEPS)..=(now + DRIFT_STEPS) {
        if step < 0 {
            continue;
        }
        let expected = code_at_step(secret, step);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The secret as authenticator apps take it: RFC 4648 base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI (Google Authenticator's key URI format) an app scans or opens.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{}:{}", percent(issuer), percent(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret),
        percent(issuer)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D: the secret "12345678901234567890" and counters 0 to 9.
    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), value, "counter {counter}");
        }
    }

    /// RFC 6238 Appendix B, the SHA-1 rows (8 digits, the same 20-byte secret).
    #[test]
    fn rfc6238_appendix_b_totp_vectors() {
        let secret = b"12345678901234567890";
        let rows: [(i64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, value) in rows {
            let counter = u64::try_from(step_of(time)).expect("positive");
            assert_eq!(hotp(secret, counter, 8), value, "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_never_two() {
        let secret = [7u8; SECRET_BYTES];
        let now = 1_700_000_000;
        let step = step_of(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at_step(&secret, step + offset);
            let found = matching_step(&secret, &code, now);
            assert_eq!(found.is_some(), accepted, "offset {offset}");
            if accepted {
                assert_eq!(found, Some(step + offset));
            }
        }
        assert_eq!(matching_step(&secret, "12345", now), None, "too short");
        assert_eq!(matching_step(&secret, "12345a", now), None, "not digits");
    }

    #[test]
    fn the_uri_carries_the_base32_secret_and_parameters() {
        let uri = otpauth_uri("PacsGuard pacs01", "alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/PacsGuard%20pacs01:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=PacsGuard%20pacs01&algorithm=SHA1&digits=6&period=30"
        );
    }
}
