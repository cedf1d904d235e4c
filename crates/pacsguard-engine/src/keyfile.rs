//! The profile-signing key protected by a passphrase (`HOME/profile.key`), for a
//! standalone host with no console to hold approvals off the machine.
//!
//! Why a key of its own: `signing.key` also signs the audit trail's checkpoints, keys the
//! record MACs, the watcher's seen-state MACs and the maintenance windows' seals, and
//! `watch`/`serve` need all of those unattended. The passphrase must stand between a
//! reader of the home and a new signed profile, not between the guard and its trail. So a
//! protected home has two keys: `signing.key` (unchanged, unattended: the trail and its
//! MACs) and `profile.key` (the baseline, acceptances, exports, kept generations, media
//! manifests; unlocked with the passphrase by the commands that sign). Its public half,
//! `profile.pub`, is all `check`, `watch`, `scan` and `audit verify` need.
//!
//! Layout, lines of text (each `name value`) so that a person can read the parameters:
//!
//! ```text
//! PacsGuard Ed25519 signing key v2 (passphrase)
//! kdf argon2id v=19 m=65536 t=3 p=1
//! salt <16 bytes hex>
//! aead chacha20-poly1305
//! nonce <12 bytes hex>
//! public <32 bytes hex>
//! sealed <the 32-byte seed and the 16-byte tag, hex>
//! ```
//!
//! The AEAD key is Argon2id(passphrase, salt) with the parameters written in the file;
//! the associated data are every line before `sealed`, so the public key (and the
//! parameters) cannot be swapped without the tag failing; and the seed opened must give
//! that public key. A wrong passphrase and an edited file are told apart only as far as
//! an AEAD can: "the passphrase is wrong, or the file was altered".

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::EngineError;

pub(crate) const HEADER: &str = "PacsGuard Ed25519 signing key v2 (passphrase)";

/// Argon2id memory for a new key file, in KiB (64 MiB), passes and lanes: RFC 9106's
/// second recommended option (§4) in memory and passes. Above the console's login
/// parameters (19 MiB, t=2: OWASP's floor) because a stolen key file is attacked
/// offline, without the console's throttling; unlocking happens once per command.
pub const KDF_M_COST_KIB: u32 = 64 * 1024;
pub const KDF_T_COST: u32 = 3;
pub const KDF_P_COST: u32 = 1;
/// The weakest parameters a key file may state: the console's (OWASP's minimum). A file
/// asking for less was not written by PacsGuard; refused rather than used.
pub const MIN_KDF_M_COST_KIB: u32 = 19 * 1024;
pub const MIN_KDF_T_COST: u32 = 2;
/// The most a key file may ask for (it is read before anything proves who wrote it): at
/// most 1 GiB of memory, 16 passes and 8 lanes.
pub const MAX_KDF_M_COST_KIB: u32 = 1024 * 1024;
pub const MAX_KDF_T_COST: u32 = 16;
pub const MAX_KDF_P_COST: u32 = 8;
/// The longest passphrase accepted (Argon2 reads every byte): the console's limit for a
/// password.
pub const MAX_PASSPHRASE_BYTES: usize = 1024;
/// The shortest new passphrase (characters): the key file is open to offline guessing,
/// so longer than the console's 8 (which a second factor backs).
pub const MIN_PASSPHRASE_CHARS: usize = 12;

const SALT_BYTES: usize = 16;

/// A passphrase, wiped from memory when dropped, never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// A passphrase as read (a prompt's line or a file's first line); too long a one is
    /// refused here so that no caller hands Argon2 an unbounded input.
    pub fn new(text: Zeroizing<String>) -> Result<Passphrase, EngineError> {
        if text.len() > MAX_PASSPHRASE_BYTES {
            return Err(EngineError::Usage(format!(
                "the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes (MAX_PASSPHRASE_BYTES)"
            )));
        }
        Ok(Passphrase(text))
    }

    /// Refuses a passphrase too weak to protect a key open to offline guessing.
    pub fn check_new(&self) -> Result<(), EngineError> {
        if self.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(EngineError::Usage(format!(
                "the new passphrase is shorter than {MIN_PASSPHRASE_CHARS} characters; nothing was changed"
            )));
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The text, for the one place it must travel: the request a command relays to the
    /// running guard over the home's 0600 socket.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Clone for Passphrase {
    fn clone(&self) -> Passphrase {
        Passphrase(self.0.clone())
    }
}

/// The key-derivation parameters of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kdf {
    m: u32,
    t: u32,
    p: u32,
}

impl Kdf {
    const NEW: Kdf = Kdf {
        m: KDF_M_COST_KIB,
        t: KDF_T_COST,
        p: KDF_P_COST,
    };

    fn line(self) -> String {
        format!("kdf argon2id v=19 m={} t={} p={}", self.m, self.t, self.p)
    }

    fn parse(line: &str) -> Option<Kdf> {
        let rest = line.strip_prefix("kdf argon2id v=19 ")?;
        let mut fields = rest.split(' ');
        let mut value = |name: &str| {
            fields
                .next()?
                .strip_prefix(name)?
                .strip_prefix('=')?
                .parse::<u32>()
                .ok()
        };
        let kdf = Kdf {
            m: value("m")?,
            t: value("t")?,
            p: value("p")?,
        };
        fields.next().is_none().then_some(kdf)
    }

    fn within_limits(self) -> bool {
        (MIN_KDF_M_COST_KIB..=MAX_KDF_M_COST_KIB).contains(&self.m)
            && (MIN_KDF_T_COST..=MAX_KDF_T_COST).contains(&self.t)
            && (1..=MAX_KDF_P_COST).contains(&self.p)
    }

    fn derive(self, passphrase: &Passphrase, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
        let params = Params::new(self.m, self.t, self.p, Some(32)).map_err(|e| e.to_string())?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.bytes(), salt, out.as_mut_slice())
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

fn aead(key: &[u8; 32]) -> Result<LessSafeKey, String> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .map(LessSafeKey::new)
        .map_err(|_| "the AEAD key could not be made".to_owned())
}

/// The text of a key file holding `key` sealed under `passphrase`.
pub(crate) fn seal(key: &SigningKey, passphrase: &Passphrase) -> Result<Zeroizing<String>, String> {
    let mut salt = [0u8; SALT_BYTES];
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let kdf = Kdf::NEW;
    let head = format!(
        "{HEADER}\n{}\nsalt {}\naead chacha20-poly1305\nnonce {}\npublic {}\n",
        kdf.line(),
        hex::encode(salt),
        hex::encode(nonce),
        hex::encode(key.verifying_key().as_bytes())
    );
    let derived = kdf.derive(passphrase, &salt)?;
    let mut sealed = Zeroizing::new(key.to_bytes().to_vec());
    aead(&derived)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(head.as_bytes()),
            &mut *sealed,
        )
        .map_err(|_| "the key could not be sealed".to_owned())?;
    // The sealed bytes are ciphertext: no secret in the text.
    Ok(Zeroizing::new(format!(
        "{head}sealed {}\n",
        hex::encode(&*sealed)
    )))
}

/// The public key a key file names, read without the passphrase (it is authenticated
/// only when the file is opened).
pub(crate) fn public_of(path: &Path, text: &str) -> Result<VerifyingKey, EngineError> {
    Ok(parse(path, text)?.public)
}

struct Parsed<'a> {
    kdf: Kdf,
    salt: Vec<u8>,
    nonce: [u8; 12],
    public: VerifyingKey,
    head: &'a str,
    sealed: Vec<u8>,
}

fn parse<'a>(path: &Path, text: &'a str) -> Result<Parsed<'a>, EngineError> {
    let bad = |reason: &str| EngineError::Key {
        path: path.to_path_buf(),
        reason: format!("not a passphrase-protected PacsGuard key file: {reason}"),
    };
    let at = text
        .find("\nsealed ")
        .ok_or_else(|| bad("no sealed line"))?;
    let (head, sealed) = text.split_at(at + 1);
    let mut lines = head.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad("wrong first line"));
    }
    let kdf = lines
        .next()
        .and_then(Kdf::parse)
        .ok_or_else(|| bad("no kdf line (argon2id v=19 m= t= p=)"))?;
    if !kdf.within_limits() {
        return Err(bad(&format!(
            "its Argon2id parameters ({}) are outside the accepted range (m {MIN_KDF_M_COST_KIB}..={MAX_KDF_M_COST_KIB} KiB, t {MIN_KDF_T_COST}..={MAX_KDF_T_COST}, p 1..={MAX_KDF_P_COST})",
            kdf.line()
        )));
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(|| bad(&format!("no {name} line")))
    };
    let salt = hex::decode(field("salt")?).map_err(|_| bad("salt is not hex"))?;
    if salt.len() != SALT_BYTES {
        return Err(bad("salt is not 16 bytes"));
    }
    if field("aead")? != "chacha20-poly1305" {
        return Err(bad("an AEAD other than chacha20-poly1305"));
    }
    let nonce = hex::decode(field("nonce")?)
        .ok()
        .and_then(|n| <[u8; 12]>::try_from(n).ok())
        .ok_or_else(|| bad("nonce is not 12 bytes of hex"))?;
    let public = hex::decode(field("public")?)
        .ok()
        .and_then(|p| <[u8; 32]>::try_from(p).ok())
        .and_then(|p| VerifyingKey::from_bytes(&p).ok())
        .ok_or_else(|| bad("public is not an Ed25519 key"))?;
    if lines.next().is_some() {
        return Err(bad("unexpected lines"));
    }
    let sealed = sealed
        .strip_prefix("sealed ")
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| hex::decode(s).ok())
        .filter(|s| s.len() == 32 + CHACHA20_POLY1305.tag_len())
        .ok_or_else(|| bad("sealed is not 48 bytes of hex on the last line"))?;
    Ok(Parsed {
        kdf,
        salt,
        nonce,
        public,
        head,
        sealed,
    })
}

/// Opens the key file's text with `passphrase`.
pub(crate) fn open(
    path: &Path,
    text: &str,
    passphrase: &Passphrase,
) -> Result<SigningKey, EngineError> {
    let parsed = parse(path, text)?;
    let fail = |reason: String| EngineError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let derived = parsed.kdf.derive(passphrase, &parsed.salt).map_err(fail)?;
    let mut sealed = Zeroizing::new(parsed.sealed);
    let seed = aead(&derived)
        .map_err(fail)?
        .open_in_place(
            Nonce::assume_unique_for_key(parsed.nonce),
            Aad::from(parsed.head.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| {
            fail("the passphrase is wrong (or the key file was altered); nothing was done".into())
        })?;
    let seed = Zeroizing::new(
        <[u8; 32]>::try_from(&seed[..])
            .map_err(|_| fail("the sealed key is not 32 bytes".into()))?,
    );
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key() != parsed.public {
        return Err(fail(
            "the sealed key is not the public key the file names; refused".into(),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passphrase(text: &str) -> Passphrase {
        Passphrase::new(Zeroizing::new(text.to_owned())).expect("passphrase")
    }

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let text = seal(&key, &passphrase("correct horse battery")).expect("sealed");
        assert!(
            text.contains("kdf argon2id v=19 m=65536 t=3 p=1\n"),
            "{}",
            *text
        );
        assert!(
            !text.contains(&hex::encode([9u8; 32])),
            "the seed is not in clear"
        );
        let path = Path::new("profile.key");
        let opened = open(path, &text, &passphrase("correct horse battery")).expect("opens");
        assert_eq!(opened.to_bytes(), key.to_bytes());
        assert_eq!(public_of(path, &text).expect("public"), key.verifying_key());
        let wrong = open(path, &text, &passphrase("correct horse battery!")).expect_err("wrong");
        assert!(wrong.to_string().contains("passphrase is wrong"), "{wrong}");
        // Another public key written in: the tag covers it.
        let other = SigningKey::from_bytes(&[1u8; 32]);
        let swapped = text.replace(
            &hex::encode(key.verifying_key().as_bytes()),
            &hex::encode(other.verifying_key().as_bytes()),
        );
        assert!(open(path, &swapped, &passphrase("correct horse battery")).is_err());
    }

    #[test]
    fn kdf_parameters_are_bounded_at_both_ends() {
        let at = |m: u32, t: u32, p: u32| Kdf { m, t, p }.within_limits();
        assert!(at(MIN_KDF_M_COST_KIB, MIN_KDF_T_COST, 1));
        assert!(at(MAX_KDF_M_COST_KIB, MAX_KDF_T_COST, MAX_KDF_P_COST));
        assert!(!at(MIN_KDF_M_COST_KIB - 1, MIN_KDF_T_COST, 1));
        assert!(!at(MIN_KDF_M_COST_KIB, MIN_KDF_T_COST - 1, 1));
        assert!(!at(MAX_KDF_M_COST_KIB + 1, MIN_KDF_T_COST, 1));
        assert!(!at(MIN_KDF_M_COST_KIB, MAX_KDF_T_COST + 1, 1));
        assert!(!at(MIN_KDF_M_COST_KIB, MIN_KDF_T_COST, MAX_KDF_P_COST + 1));
        assert!(!at(MIN_KDF_M_COST_KIB, MIN_KDF_T_COST, 0));
        assert_eq!(Kdf::parse(&Kdf::NEW.line()), Some(Kdf::NEW));
        assert_eq!(Kdf::parse("kdf argon2id v=19 m=1 t=1 p=1 x=2"), None);
        // A file asking for 4 GiB is refused before Argon2 runs.
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let text = seal(&key, &passphrase("correct horse battery")).expect("sealed");
        let greedy = text.replace("m=65536", "m=4194304");
        let error = public_of(Path::new("k"), &greedy).expect_err("over the limit");
        assert!(
            error.to_string().contains("outside the accepted range"),
            "{error}"
        );
    }

    #[test]
    fn passphrases_are_bounded() {
        let at = "x".repeat(MAX_PASSPHRASE_BYTES);
        assert!(Passphrase::new(Zeroizing::new(at.clone())).is_ok());
        assert!(Passphrase::new(Zeroizing::new(at + "x")).is_err());
        assert!(
            passphrase(&"é".repeat(MIN_PASSPHRASE_CHARS))
                .check_new()
                .is_ok()
        );
        assert!(
            passphrase(&"x".repeat(MIN_PASSPHRASE_CHARS - 1))
                .check_new()
                .is_err()
        );
    }
}
