//! Random tokens and their digests.
//!
//! Session tokens, CSRF tokens, the setup token and recovery codes are 256-bit (recovery
//! codes 80-bit) values from the operating system's generator. Only their SHA-256 is
//! stored: a copy of the store does not let anyone act as a session or spend a code, and
//! a fast hash suffices because the values are random, not chosen by people.

use sha2::{Digest as _, Sha256};

/// Bytes of a session, CSRF or setup token: 256 bits.
pub const TOKEN_BYTES: usize = 32;

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// A new random token as URL-safe text (base64url without padding is not in our
/// dependencies; hex is as safe in a cookie, a URL and a form field).
pub fn new_token() -> Result<String, getrandom::Error> {
    Ok(hex(&random_bytes(TOKEN_BYTES)?))
}

/// The digest under which a token is stored and looked up.
pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` looks like a token we issue (64 lower-case hex digits): anything else
/// is refused before it reaches the store.
pub fn is_token(text: &str) -> bool {
    text.len() == TOKEN_BYTES * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_hex_and_differ() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert!(is_token(&a) && is_token(&b));
        assert_ne!(a, b);
        assert!(!is_token(&a[1..]));
        assert!(!is_token(&a.to_uppercase()));
        assert_eq!(digest(&a).len(), 32);
    }
}
