//! User Identity Negotiation (PS3.7 D.3.3.7): a route may require a username and passcode
//! in the A-ASSOCIATE-RQ (sub-item 58H), checked against an Argon2id hash in the
//! configuration. An AE title is not authentication; this is the DICOM way to name who
//! sends, for senders that support it (DCMTK `--user/--password`, pynetdicom).
//!
//! No I/O and no hashing here: [`claim`] reads what the request says and picks the stored
//! hash to check against; the relay runs the check (Argon2id, the console's parameters and
//! code, handed in as a [`PasscodeCheck`]) on a blocking thread. An unknown username is
//! checked against another user's hash all the same, so it costs the time of a wrong
//! passcode (no timing oracle for names).
//!
//! On a route that requires an identity the 58H item is consumed by the gateway: it is
//! not forwarded upstream (the passcode is the gateway's credential, not the archive's),
//! and an identity answer (59H) from the upstream is dropped; the gateway itself answers
//! with an empty positive response (PS3.7 D.3.3.7.2: none for types 1 and 2 carries
//! data) when the sender asked for one. On a route that requires none, both pass through
//! unchanged, as before.

use crate::pdu::{Associate, SubItem, sub};

/// Most bytes of a username read from a request or the configuration: names are short,
/// and each is written to the trail.
pub const MAX_USERNAME_BYTES: usize = 256;
/// Most bytes of a passcode checked: Argon2 hashes every byte and anyone may send a
/// request (the console's `MAX_PASSWORD_BYTES` is the same figure). A longer one is
/// refused without hashing.
pub const MAX_PASSCODE_BYTES: usize = 1024;
/// Passcode checks running at once (each Argon2id check takes 19 MiB and a core for tens
/// of milliseconds): requests beyond wait for a turn within the ARTIM timer, then are
/// rejected transient (local limit exceeded) and recorded.
pub const IDENTITY_CHECKS_AT_ONCE: usize = 2;
/// Characters of a username written in a record (it is the sender's text).
const RECORDED_USERNAME_CHARS: usize = 64;

/// User-Identity-Type values (PS3.7 Table D.3-14).
pub mod kind {
    pub const USERNAME: u8 = 1;
    pub const USERNAME_AND_PASSCODE: u8 = 2;
    pub const KERBEROS: u8 = 3;
    pub const SAML: u8 = 4;
    pub const JWT: u8 = 5;
}

/// Checks a passcode against a stored hash (`argon2id$v=19$...`): the console's
/// `password::verify`, given by the binary (this crate does not depend on the console).
pub type PasscodeCheck = fn(passcode: &str, stored: &str) -> bool;

/// The check a gateway uses when none was given: nothing verifies, so a route that
/// requires an identity admits no one rather than everyone.
pub fn refuse_every_passcode(_: &str, _: &str) -> bool {
    false
}

/// A user a route admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// `argon2id$v=19$m=..,t=..,p=..$SALT$HASH` as `pacsguard gateway --hash-passcode`
    /// prints it.
    pub passcode_hash: String,
}

/// A user identity negotiation request sub-item (PS3.7 D.3.3.7.1), decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: u8,
    pub positive_response_requested: bool,
    pub primary: Vec<u8>,
    pub secondary: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("kind", &self.kind)
            .field(
                "positive_response_requested",
                &self.positive_response_requested,
            )
            .field("primary", &String::from_utf8_lossy(&self.primary))
            .finish_non_exhaustive()
    }
}

/// Takes a 16-bit length and that many bytes off the front of `bytes`.
fn field<'a>(bytes: &mut &'a [u8], what: &str) -> Result<&'a [u8], String> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or_else(|| format!("user identity item cut before the {what} length"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (value, rest) = rest
        .split_at_checked(len)
        .ok_or_else(|| format!("user identity item cut inside the {what}"))?;
    *bytes = rest;
    Ok(value)
}

impl Request {
    /// Decodes the value of a 58H sub-item: type, positive-response-requested, the
    /// primary field and the secondary field, each with its 16-bit length, nothing after.
    pub fn decode(value: &[u8]) -> Result<Request, String> {
        let [kind, respond, rest @ ..] = value else {
            return Err("user identity item shorter than its fixed fields".into());
        };
        let mut rest = rest;
        let primary = field(&mut rest, "primary field")?.to_vec();
        let secondary = field(&mut rest, "secondary field")?.to_vec();
        if !rest.is_empty() {
            return Err(format!(
                "user identity item has {} byte(s) after its secondary field",
                rest.len()
            ));
        }
        Ok(Request {
            kind: *kind,
            positive_response_requested: *respond == 1,
            primary,
            secondary,
        })
    }

    pub fn encode(&self) -> SubItem {
        let mut value = vec![self.kind, u8::from(self.positive_response_requested)];
        for f in [&self.primary, &self.secondary] {
            value.extend_from_slice(&u16::try_from(f.len()).unwrap_or(u16::MAX).to_be_bytes());
            value.extend_from_slice(f);
        }
        SubItem {
            kind: sub::USER_IDENTITY_RQ,
            value,
        }
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::USERNAME => "username only",
        kind::USERNAME_AND_PASSCODE => "username and passcode",
        kind::KERBEROS => "Kerberos ticket",
        kind::SAML => "SAML assertion",
        kind::JWT => "JSON Web Token",
        _ => "unknown type",
    }
}

/// A username (or other text the sender chose: an AE title in a command) as it goes on
/// the record: quoted, control characters escaped, cut.
pub fn recorded(username: &str) -> String {
    let mut text: String = username.chars().take(RECORDED_USERNAME_CHARS).collect();
    if text.len() < username.len() {
        text.push_str("...");
    }
    format!("{text:?}")
}

/// What the relay must check before it admits an association: a passcode against a
/// stored hash.
pub struct Claim {
    pub username: String,
    passcode: String,
    stored: String,
    /// False: the username is not one of the route's; `stored` is another user's hash,
    /// checked only so that this takes as long as a wrong passcode.
    known: bool,
    /// The sender asked for a positive response (59H) in the A-ASSOCIATE-AC.
    pub respond: bool,
    /// A JSON Web Token, verified already (see `jwt`): nothing left to check.
    token: bool,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("username", &self.username)
            .field("respond", &self.respond)
            .finish_non_exhaustive()
    }
}

impl Claim {
    /// What was verified, for the record.
    pub fn how(&self) -> &'static str {
        if self.token {
            "JSON Web Token"
        } else {
            "passcode"
        }
    }

    /// A passcode is to be checked (not a token, verified already): the username's
    /// failure budget applies (`lockout`).
    pub fn checks_passcode(&self) -> bool {
        !self.token
    }

    /// The username is one of the route's.
    pub fn known(&self) -> bool {
        self.known
    }

    /// Runs the check (Argon2id: call it off the async threads). `Err` says why for the
    /// record (the sender is told no more than the rejection's codes).
    pub fn verify(&self, check: PasscodeCheck) -> Result<(), String> {
        if self.token {
            return Ok(());
        }
        let matched = check(&self.passcode, &self.stored);
        if !self.known {
            return Err(format!(
                "user identity: unknown username {}",
                recorded(&self.username)
            ));
        }
        if !matched {
            return Err(format!(
                "user identity: wrong passcode for username {}",
                recorded(&self.username)
            ));
        }
        Ok(())
    }
}

/// What a request's user identity means for a route with `users` and `jwt`: `Ok(None)`
/// when the route requires none; a [`Claim`] to verify; or why the request is refused at
/// once (a token is verified here: Ed25519 is cheap).
pub fn claim(
    users: &[User],
    jwt: Option<&crate::jwt::JwtRule>,
    rq: &Associate,
) -> Result<Option<Claim>, String> {
    if users.is_empty() && jwt.is_none() {
        return Ok(None);
    }
    let required = match (users.is_empty(), jwt.is_some()) {
        (false, true) => "a username and passcode (type 2) or a JSON Web Token (type 5)",
        (true, _) => "a JSON Web Token (type 5)",
        (false, false) => "a username and passcode (type 2)",
    };
    let items: Vec<&SubItem> = rq
        .user_sub_items()
        .filter(|s| s.kind == sub::USER_IDENTITY_RQ)
        .collect();
    let item = match items.as_slice() {
        [] => {
            return Err(format!(
                "user identity: the request carries none, and the route requires {required}"
            ));
        }
        [one] => one,
        more => {
            return Err(format!(
                "user identity: the request carries {} user identity items (PS3.7 allows one)",
                more.len()
            ));
        }
    };
    let request = Request::decode(&item.value).map_err(|e| format!("user identity: {e}"))?;
    if let (kind::JWT, Some(rule)) = (request.kind, jwt) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let username = crate::jwt::verify(rule, &request.primary, now)
            .map_err(|e| format!("user identity: {e}"))?;
        return Ok(Some(Claim {
            username,
            passcode: String::new(),
            stored: String::new(),
            known: true,
            respond: request.positive_response_requested,
            token: true,
        }));
    }
    let Some(first) = users
        .first()
        .filter(|_| request.kind == kind::USERNAME_AND_PASSCODE)
    else {
        return Err(format!(
            "user identity: type {} ({}), and the route requires {required}",
            request.kind,
            kind_name(request.kind)
        ));
    };
    // An empty username names no one (the configuration's have 1 to
    // MAX_USERNAME_BYTES bytes): refused at once, and never counted in the failure
    // budgets, whose state file holds only names of 1 to MAX_USERNAME_BYTES bytes (an
    // empty one counted there stopped the next start: review s11-r16).
    if request.primary.is_empty() {
        return Err(format!(
            "user identity: an empty username, and the route requires {required}"
        ));
    }
    if request.primary.len() > MAX_USERNAME_BYTES {
        return Err(format!(
            "user identity: a username of {} bytes, more than {MAX_USERNAME_BYTES}",
            request.primary.len()
        ));
    }
    if request.secondary.len() > MAX_PASSCODE_BYTES {
        return Err(format!(
            "user identity: a passcode of {} bytes, more than {MAX_PASSCODE_BYTES}",
            request.secondary.len()
        ));
    }
    let Ok(username) = String::from_utf8(request.primary) else {
        return Err("user identity: the username is not UTF-8 (PS3.7 D.3.3.7.1)".into());
    };
    // PS3.7 leaves the passcode's encoding open; every sender we know sends text, and
    // the stored hash is of UTF-8 text.
    let Ok(passcode) = String::from_utf8(request.secondary) else {
        return Err(format!(
            "user identity: the passcode for username {} is not UTF-8 text",
            recorded(&username)
        ));
    };
    let user = users.iter().find(|u| u.username == username);
    Ok(Some(Claim {
        known: user.is_some(),
        stored: user.unwrap_or(first).passcode_hash.clone(),
        username,
        passcode,
        respond: request.positive_response_requested,
        token: false,
    }))
}

/// The positive response the gateway gives to types 1 and 2: a 59H sub-item with an
/// empty server response (PS3.7 D.3.3.7.2).
pub fn positive_response() -> SubItem {
    SubItem {
        kind: sub::USER_IDENTITY_AC,
        value: vec![0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{Item, ae_field};

    fn users() -> Vec<User> {
        vec![
            User {
                username: "alice".into(),
                passcode_hash: "hash-a".into(),
            },
            User {
                username: "bob".into(),
                passcode_hash: "hash-b".into(),
            },
        ]
    }

    fn rq(subs: Vec<SubItem>) -> Associate {
        Associate {
            protocol_version: 1,
            called_ae: ae_field("PACS"),
            calling_ae: ae_field("CT1"),
            items: vec![Item::UserInformation(subs)],
        }
    }

    fn identity(kind: u8, primary: &[u8], secondary: &[u8]) -> SubItem {
        Request {
            kind,
            positive_response_requested: true,
            primary: primary.to_vec(),
            secondary: secondary.to_vec(),
        }
        .encode()
    }

    /// A stand-in for Argon2: "hash-" followed by the passcode.
    fn check(passcode: &str, stored: &str) -> bool {
        stored.strip_prefix("hash-") == Some(passcode)
    }

    #[test]
    fn a_username_and_passcode_are_checked_against_that_users_hash() {
        let users = users();
        let c = claim(&users, None, &rq(vec![identity(2, b"bob", b"b")]))
            .expect("read")
            .expect("claim");
        assert!(c.respond);
        assert_eq!(c.verify(check), Ok(()));
        let c = claim(&users, None, &rq(vec![identity(2, b"bob", b"a")]))
            .expect("read")
            .expect("claim");
        assert!(
            c.verify(check)
                .expect_err("wrong")
                .contains("wrong passcode")
        );
        // Alice's passcode under an unknown name: checked (the time of a wrong passcode)
        // and refused.
        let c = claim(&users, None, &rq(vec![identity(2, b"mallory", b"a")]))
            .expect("read")
            .expect("claim");
        assert!(
            c.verify(check)
                .expect_err("unknown")
                .contains("unknown username")
        );
        // No users: nothing required, whatever the request carries.
        assert!(claim(&[], None, &rq(vec![])).expect("read").is_none());
    }

    #[test]
    fn what_cannot_be_checked_is_refused_with_its_reason() {
        let users = users();
        let long_name = vec![b'a'; MAX_USERNAME_BYTES + 1];
        let long_pass = vec![b'p'; MAX_PASSCODE_BYTES + 1];
        let cases: Vec<(Vec<SubItem>, &str)> = vec![
            (vec![], "carries none"),
            (vec![identity(1, b"alice", b"")], "type 1 (username only)"),
            (vec![identity(5, b"eyJ", b"")], "type 5 (JSON Web Token)"),
            (
                vec![identity(2, b"alice", b"a"), identity(2, b"bob", b"b")],
                "2 user identity items",
            ),
            (vec![identity(2, &long_name, b"a")], "more than 256"),
            (vec![identity(2, b"", b"a")], "an empty username"),
            (vec![identity(2, b"alice", &long_pass)], "more than 1024"),
            (vec![identity(2, b"\xff", b"a")], "not UTF-8"),
            (
                vec![SubItem {
                    kind: sub::USER_IDENTITY_RQ,
                    value: vec![2, 0, 0, 9, b'a'],
                }],
                "cut inside the primary field",
            ),
            (
                vec![SubItem {
                    kind: sub::USER_IDENTITY_RQ,
                    value: vec![2, 0, 0, 0, 0, 0, 7],
                }],
                "1 byte(s) after",
            ),
        ];
        for (subs, want) in cases {
            let e = claim(&users, None, &rq(subs)).expect_err(want);
            assert!(e.contains(want), "{want}: {e}");
        }
        // At the limits: read.
        let at_name = vec![b'a'; MAX_USERNAME_BYTES];
        let at_pass = vec![b'p'; MAX_PASSCODE_BYTES];
        assert!(claim(&users, None, &rq(vec![identity(2, &at_name, &at_pass)])).is_ok());
    }

    #[test]
    fn the_item_decodes_back_to_what_was_encoded_and_usernames_are_recorded_bounded() {
        let r = Request {
            kind: 2,
            positive_response_requested: false,
            primary: b"user".to_vec(),
            secondary: b"pass".to_vec(),
        };
        assert_eq!(Request::decode(&r.encode().value), Ok(r));
        assert_eq!(recorded("a\u{1b}b"), "\"a\\u{1b}b\"");
        assert_eq!(recorded(&"x".repeat(65)).len(), 64 + 3 + 2);
        assert!(
            !format!("{:?}", Request::decode(&identity(2, b"u", b"secret").value))
                .contains("secret")
        );
        assert!(!refuse_every_passcode("p", "p"));
    }
}
