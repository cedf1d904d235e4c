//! Passwords: the rules a new one must meet, and Argon2id.
//!
//! Rules (NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS 5.0 V6.2): at least
//! [`MIN_PASSWORD_CHARS`] characters, because the second factor is mandatory for every
//! account (a password alone never opens a session, so 800-63B's 8-character floor for
//! a password used with a second factor applies; 15 is what we recommend on the page);
//! at most [`MAX_PASSWORD_BYTES`] bytes (an attacker controls the length and Argon2 reads
//! all of it); no composition rules; any Unicode, pasting allowed; not on the shipped
//! list of common passwords (`data/common-passwords.txt`, see `data/README.md`); and,
//! where an account is known ([`check_new_for`]), not a context-specific word (800-63B:
//! the account's name, the service's name) nor, at a change, the current password, each
//! compared by their letters and digits alone ([`folded`]), so "  Admin  " is the name
//! `admin` and "Amber-Lantern" the current "amber lantern".
//!
//! Hashing: Argon2id with [`M_COST_KIB`] KiB, [`T_COST`] passes, [`P_COST`] lane: OWASP's
//! minimum (m=19 MiB, t=2, p=1) and RFC 9106's second recommended option's memory class.
//! A hash is stored as `argon2id$v=19$m=..,t=..,p=..$SALT$HASH` (hex), so parameters can
//! be raised later and old hashes still verified.

use std::borrow::Cow;

use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq as _;
use unicode_normalization::{IsNormalized, UnicodeNormalization as _, is_nfkc_quick};

use crate::secret::{hex, random_bytes};

/// Fewest characters (Unicode scalar values) of a new password: 8, allowed because every
/// account must also pass a second factor; the form recommends 15 or more.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Characters the form recommends: NIST's floor for a password that is the only factor.
pub const RECOMMENDED_PASSWORD_CHARS: usize = 15;
/// Most bytes of a password accepted: Argon2 hashes every byte, and a login request is
/// anyone's to send.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Most bytes of a password once [`normalized`]: Unicode bounds what NFKC makes of one
/// character at 18 characters (U+FDFA), so 18 times [`MAX_PASSWORD_BYTES`] is an upper bound.
const MAX_NORMALIZED_BYTES: usize = MAX_PASSWORD_BYTES * 18;

/// Argon2id memory in KiB (19 MiB: OWASP's minimum).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const T_COST: u32 = 2;
/// Argon2id lanes.
pub const P_COST: u32 = 1;
/// Bytes of salt and of the hash.
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// Most bytes of a stored hash string parsed.
const MAX_STORED_HASH_BYTES: usize = 512;

static COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password is on the list of common passwords; choose another")]
    Common,
    /// The account's name or the service's, in other letters, spacing or punctuation.
    #[error(
        "the password is the name of the account (or of the service) in other letters or spacing; choose another"
    )]
    ContextWord,
    /// The new password is the current one, in other letters, spacing or punctuation.
    #[error("the new password is the current one (in other letters or spacing); choose another")]
    SameAsCurrent,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// A password as it is checked and hashed: NFKC (NIST SP 800-63B §3.1.1.2), so the same
/// characters typed on another keyboard or pasted from another program are one password
/// (a ligature "ﬁ" and "fi", a full-width "Ａ" and "A"), and a common password so spelled
/// is on the list. Asked only of a password within [`MAX_PASSWORD_BYTES`]: NFKC grows a
/// text by at most 18 times, so what Argon2 reads stays bounded.
pub fn normalized(password: &str) -> Cow<'_, str> {
    if is_nfkc_quick(password.chars()) == IsNormalized::Yes {
        Cow::Borrowed(password)
    } else {
        Cow::Owned(password.nfkc().collect())
    }
}

/// Whether a new password may be used, and if not, why (shown to the person choosing it).
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let password = normalized(password);
    let password = password.as_ref();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if is_common(password) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

/// Words a password of this console may not be (NIST SP 800-63B-4 §3.1.1.2: context-specific
/// words such as the service's name), besides the account's own name.
const SERVICE_WORDS: &[&str] = &["pacsguard", "pacsguard console"];

/// [`check_new`] for the account `name`: also refused when it is the account's name or the
/// service's ([`SERVICE_WORDS`]), compared [`folded`].
pub fn check_new_for(password: &str, name: &str) -> Result<(), PasswordError> {
    check_new(password)?;
    let word = folded(password);
    let is_context_word = std::iter::once(name)
        .chain(SERVICE_WORDS.iter().copied())
        .any(|context| same_when_folded(&word, password, context));
    if is_context_word {
        return Err(PasswordError::ContextWord);
    }
    Ok(())
}

/// At a change: [`check_new_for`], and refused when the new password is the `current` one
/// compared [`folded`] (a change of case or spacing is no change to a guesser).
pub fn check_change(new: &str, current: &str, name: &str) -> Result<(), PasswordError> {
    check_new_for(new, name)?;
    if same_when_folded(&folded(new), new, current) {
        return Err(PasswordError::SameAsCurrent);
    }
    Ok(())
}

/// A text's letters and digits, lower-cased: what two spellings of one word share.
pub fn folded(text: &str) -> String {
    normalized(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `text` (whose [`folded`] form is `text_folded`) is `other` in other letters or
/// spacing. Texts with no letter or digit at all are compared as they are.
fn same_when_folded(text_folded: &str, text: &str, other: &str) -> bool {
    if text_folded.is_empty() {
        return text == other;
    }
    text_folded == folded(other)
}

/// Whether the password, lower-cased, is on the shipped list.
pub fn is_common(password: &str) -> bool {
    let lower = normalized(password).to_lowercase();
    COMMON_PASSWORDS.lines().any(|line| line == lower)
}

fn argon2(m: u32, t: u32, p: u32) -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(m, t, p, Some(HASH_BYTES)).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The string stored for a new password.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    hash_exact(&normalized(password))
}

/// The string stored for these exact characters.
fn hash_exact(password: &str) -> Result<String, PasswordError> {
    let salt = random_bytes(SALT_BYTES).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let mut out = [0u8; HASH_BYTES];
    argon2(M_COST_KIB, T_COST, P_COST)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(format!(
        "argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}",
        hex(&salt),
        hex(&out)
    ))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A stored hash: m, t, p, salt, hash.
type Stored = (u32, u32, u32, Vec<u8>, Vec<u8>);

/// Parameters of a stored hash, bounded so a damaged row cannot ask for unbounded work.
fn parse(stored: &str) -> Option<Stored> {
    if stored.len() > MAX_STORED_HASH_BYTES {
        return None;
    }
    let mut parts = stored.split('$');
    if parts.next()? != "argon2id" || parts.next()? != "v=19" {
        return None;
    }
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in parts.next()?.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return None,
        }
    }
    let salt = unhex(parts.next()?)?;
    let hash = unhex(parts.next()?)?;
    if parts.next().is_some() || hash.len() != HASH_BYTES {
        return None;
    }
    let (m, t, p) = (m?, t?, p?);
    // Never less than today's floor (a downgraded row), never absurdly more.
    if !(M_COST_KIB..=1024 * 1024).contains(&m)
        || !(T_COST..=64).contains(&t)
        || !(P_COST..=16).contains(&p)
    {
        return None;
    }
    Some((m, t, p, salt, hash))
}

/// Whether `password` matches the stored hash, [`normalized`]. A stored value that does
/// not parse never matches (and still costs one hash, like every other failure). A
/// password chosen before passwords were normalised was hashed as typed: one that NFKC
/// changes is tried as typed too (a second hash, for such characters only).
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        let _ = dummy_verify(password);
        return false;
    }
    match normalized(password) {
        Cow::Borrowed(same) => verify_exact(same, stored),
        Cow::Owned(nfkc) => verify_exact(&nfkc, stored) || verify_exact(password, stored),
    }
}

/// Whether these exact characters match the stored hash.
fn verify_exact(password: &str, stored: &str) -> bool {
    if password.len() > MAX_NORMALIZED_BYTES {
        let _ = dummy_verify(password);
        return false;
    }
    let Some((m, t, p, salt, expected)) = parse(stored) else {
        let _ = dummy_verify(password);
        return false;
    };
    let mut out = [0u8; HASH_BYTES];
    let Ok(argon) = argon2(m, t, p) else {
        return false;
    };
    if argon
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .is_err()
    {
        return false;
    }
    bool::from(out.ct_eq(&expected[..]))
}

/// Spends the time of one verification without an account: an unknown name, a locked
/// account and a wrong password take as long as each other.
pub fn dummy_verify(password: &str) -> bool {
    let bytes = password.as_bytes();
    let bytes = &bytes[..bytes.len().min(MAX_PASSWORD_BYTES)];
    let mut out = [0u8; HASH_BYTES];
    if let Ok(argon) = argon2(M_COST_KIB, T_COST, P_COST) {
        let _ = argon.hash_password_into(bytes, &[0u8; SALT_BYTES], &mut out);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{AssociatedData, ParamsBuilder};

    /// The blocklist holds the maintained list of zxcvbn-ts (`@zxcvbn-ts/language-common`,
    /// its entries of 8 characters or more) besides Django's 8,359: before (review s35)
    /// "swordfis", "voxstrange" and "87654321vv" were accepted, so spelled or typed
    /// full-width (NFKC makes them the listed password). Every entry is as a password is
    /// compared: NFKC, lower case, 8 characters or more.
    #[test]
    fn passwords_of_the_maintained_list_are_refused_after_nfkc() {
        for common in [
            "swordfis",
            "voxstrange",
            "87654321vv",
            "Liverpoo",
            "ｓｗｏｒｄｆｉｓ",
        ] {
            assert_eq!(check_new(common), Err(PasswordError::Common), "{common}");
        }
        assert!(COMMON_PASSWORDS.lines().count() > 20_000);
        for entry in COMMON_PASSWORDS.lines() {
            assert_eq!(normalized(entry).to_lowercase(), entry, "{entry}");
            assert!(entry.chars().count() >= MIN_PASSWORD_CHARS, "{entry}");
        }
        assert!(check_new("amber lantern over quiet harbour").is_ok());
    }

    /// RFC 9106 §5.3: the Argon2id test vector (with secret and associated data).
    #[test]
    fn rfc9106_argon2id_known_answer() {
        let params = ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .data(AssociatedData::new(&[4u8; 12]).expect("ad"))
            .output_len(32)
            .build()
            .expect("params");
        let secret = [3u8; 8];
        let argon = Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params)
            .expect("context");
        let mut tag = [0u8; 32];
        argon
            .hash_password_into(&[1u8; 32], &[2u8; 16], &mut tag)
            .expect("hash");
        assert_eq!(
            hex(&tag),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery staple").expect("hash");
        assert!(stored.starts_with("argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple", &stored));
        assert!(!verify("correct horse battery stapler", &stored));
        assert!(!verify(
            "correct horse battery staple",
            "argon2id$v=19$m=8,t=1,p=1$00$00"
        ));
        assert!(!verify("x", "garbage"));
    }

    #[test]
    fn a_downgraded_stored_hash_never_verifies() {
        let stored = hash("correct horse battery staple").expect("hash");
        let weaker = stored.replace("m=19456", "m=8");
        assert!(!verify("correct horse battery staple", &weaker));
    }

    #[test]
    fn the_rules_are_length_and_the_list_not_composition() {
        assert_eq!(check_new("short"), Err(PasswordError::TooShort));
        // Exactly at the limit: 8 characters (é counts once).
        assert_eq!(check_new("abcdéfgh"), Ok(()));
        assert_eq!(check_new("abcdéfg"), Err(PasswordError::TooShort));
        assert_eq!(
            check_new(&"a".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(check_new(&"ab".repeat(MAX_PASSWORD_BYTES / 2)), Ok(()));
        // On the list whatever the case; no digits or symbols required.
        assert_eq!(check_new("password1"), Err(PasswordError::Common));
        assert_eq!(check_new("PassWord1"), Err(PasswordError::Common));
        assert_eq!(check_new("iloveyou"), Err(PasswordError::Common));
        assert_eq!(check_new("staple horse correct battery"), Ok(()));
    }

    /// Review r25-console: a new password equal to the account's name (padded to the
    /// length with spaces, in capitals) or to the current one was accepted.
    #[test]
    fn the_accounts_name_and_the_current_password_are_refused_in_any_spelling() {
        let name = "radiology.admin";
        for word in [
            "radiology.admin",
            "Radiology.Admin",
            "  radiology.admin  ",
            "RADIOLOGY ADMIN",
            "radiology-admin",
            "radiology\tadmin\n",
            "PacsGuard",
            "pacs guard console",
        ] {
            assert_eq!(
                check_new_for(word, name),
                Err(PasswordError::ContextWord),
                "{word:?}"
            );
        }
        // Short names padded past the length floor.
        assert_eq!(
            check_new_for("   bob    ", "bob"),
            Err(PasswordError::ContextWord)
        );
        assert_eq!(check_new_for("radiology admin 7", name), Ok(()));
        let current = "amber lantern over quiet harbour";
        for same in [
            current,
            "Amber Lantern Over Quiet Harbour",
            "amberlanternoverquietharbour",
            " amber-lantern-over-quiet-harbour ",
        ] {
            assert_eq!(
                check_change(same, current, name),
                Err(PasswordError::SameAsCurrent),
                "{same:?}"
            );
        }
        assert_eq!(
            check_change("seven herons above the estuary", current, name),
            Ok(())
        );
        // Texts of symbols only are compared as they are.
        assert_eq!(check_change("!!!!!!!!!", "!!!!!!!!!!", name), Ok(()));
        assert_eq!(
            check_change("!!!!!!!!!", "!!!!!!!!!", name),
            Err(PasswordError::SameAsCurrent)
        );
        // The rules before the context: a short name-password is too short first.
        assert_eq!(check_new_for("bob", "bob"), Err(PasswordError::TooShort));
    }

    /// NIST SP 800-63B: a password is normalised (NFKC) before it is checked and hashed,
    /// so one typed with full-width letters or a ligature is the same password, and a
    /// common one so spelled is refused (review s34: "ｐａｓｓｗｏｒｄ１" passed the list).
    #[test]
    fn a_password_is_normalised_before_it_is_checked_and_hashed() {
        assert_eq!(check_new("ｐａｓｓｗｏｒｄ"), Err(PasswordError::Common));
        let stored = hash("ﬁne amber lantern").expect("hash");
        assert!(verify("fine amber lantern", &stored));
        assert!(verify("ﬁne amber lantern", &stored));
        assert!(!verify("fine amber lanterns", &stored));
        assert_eq!(
            check_new_for("ＡＤＭＩＮ-admin", "adminadmin"),
            Err(PasswordError::ContextWord)
        );
    }

    /// A password chosen before passwords were normalised, holding a character NFKC
    /// changes, was hashed as typed: it still signs in as typed.
    #[test]
    fn a_password_hashed_before_normalisation_still_verifies() {
        let typed = "ﬁne amber lantern";
        let stored = hash_exact(typed).expect("hash");
        assert!(verify(typed, &stored));
    }
}
