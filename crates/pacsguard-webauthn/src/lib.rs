//! A WebAuthn relying party (W3C Web Authentication Level 3, §7.1 registration and §7.2
//! authentication), written for the console of `pacsguard serve` (which keeps the
//! challenges, the credentials and the trail): small, strict, without I/O, every
//! refusal a typed error, no panic on any input (fuzzed: `fuzz/`, target `webauthn`).
//!
//! What it accepts, and nothing else:
//! * ES256 credentials (COSE EC2 P-256, alg -7), verified with `ring`;
//! * attestation `none` and `packed` self attestation (the credential signs its own
//!   registration); a certificate chain (`x5c`) or any other format is refused with the
//!   format named: the console does not judge authenticator makes, it binds a key to a
//!   person;
//! * user presence **and user verification** on every ceremony (the authenticator checked
//!   a PIN or a biometric: with the password, that makes two factors even when the
//!   passkey is the second one).
//!
//! What it checks (the caller checks the rest: which challenge was issued and spent,
//! whose credential it is, the signature counter against the stored one):
//! `clientDataJSON` is at most [`MAX_CLIENT_DATA_BYTES`], its `type` is the ceremony's,
//! its `challenge` the expected one, its `origin` exactly the console's, `crossOrigin`
//! not true; the authenticator data's `rpIdHash` is SHA-256 of the RP ID, flags UP and UV
//! are set, BS only with BE, its lengths hold together; the signature verifies over
//! `authenticatorData || SHA-256(clientDataJSON)`.

pub mod cbor;
pub mod cose;

use sha2::{Digest as _, Sha256};

use cbor::{CborError, Value};
use cose::Es256Key;

/// Largest `clientDataJSON` read: browsers send about 150 to 300 bytes.
pub const MAX_CLIENT_DATA_BYTES: usize = 4 * 1024;
/// Largest attestation object read: a self or no attestation is a few hundred bytes.
pub const MAX_ATTESTATION_OBJECT_BYTES: usize = 8 * 1024;
/// Largest authenticator data in an assertion (37 bytes plus extensions).
pub const MAX_AUTHENTICATOR_DATA_BYTES: usize = 4 * 1024;
/// Longest credential ID accepted (WebAuthn §5.8.3 caps it at 1023 bytes).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;
/// Bytes of a challenge the console issues: 256 bits.
pub const CHALLENGE_BYTES: usize = 32;
/// Bytes of an origin or format name shown in an error (it is whatever a client sent).
const MAX_SHOWN_BYTES: usize = 100;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebauthnError {
    #[error("{0} is larger than the console reads")]
    TooLarge(&'static str),
    #[error("{0} is not base64url")]
    Encoding(&'static str),
    #[error("clientDataJSON: {0}")]
    BadClientData(&'static str),
    #[error("clientDataJSON is of the wrong ceremony (not {0})")]
    WrongType(&'static str),
    #[error("the challenge is not the one issued")]
    WrongChallenge,
    #[error("the origin {0} is not the console's")]
    WrongOrigin(String),
    #[error("the ceremony ran in a frame of another site (crossOrigin)")]
    CrossOrigin,
    #[error("{0}")]
    Cbor(#[from] CborError),
    #[error("attestation object: {0}")]
    BadAttestationObject(&'static str),
    #[error("authenticator data: {0}")]
    BadAuthenticatorData(&'static str),
    #[error("the credential is for another relying party (rpIdHash)")]
    WrongRpId,
    #[error("the authenticator did not see the user present (flag UP)")]
    UserNotPresent,
    #[error("the authenticator did not verify the user (flag UV: no PIN or biometric)")]
    UserNotVerified,
    #[error("credential public key: {0}")]
    BadKey(&'static str),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("attestation format {0} is not accepted (only none and packed self attestation)")]
    UnsupportedAttestation(String),
}

/// The console as a relying party: its RP ID (a domain) and the one origin its pages are
/// served from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origin: String,
}

impl RelyingParty {
    /// From the console's origin, `https://HOST[:PORT]`; the RP ID is `HOST`. Browsers
    /// refuse WebAuthn on an IP address, so HOST must be a domain name (`localhost`
    /// included).
    pub fn from_origin(origin: &str) -> Result<RelyingParty, String> {
        let origin = origin.trim().trim_end_matches('/');
        let Some(rest) = origin.strip_prefix("https://") else {
            return Err(format!("{origin:?}: the origin must start with https://"));
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        if let Some(port) = port
            && (port.is_empty()
                || port.len() > 5
                || !port.bytes().all(|b| b.is_ascii_digit())
                || port.parse::<u32>().map_or(true, |p| p == 0 || p > 65_535))
        {
            return Err(format!(
                "{origin:?}: the port is not a number from 1 to 65535"
            ));
        }
        let host = host.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(format!("{origin:?}: the host is not a domain name"));
        }
        if host
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "{origin:?}: browsers allow passkeys only on a domain name, not an IP address"
            ));
        }
        let origin = match port {
            Some(p) if p != "443" => format!("https://{host}:{p}"),
            _ => format!("https://{host}"),
        };
        Ok(RelyingParty { id: host, origin })
    }

    fn id_hash(&self) -> [u8; 32] {
        Sha256::digest(self.id.as_bytes()).into()
    }
}

/// Which ceremony a `clientDataJSON` must be from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceremony {
    Create,
    Get,
}

impl Ceremony {
    fn client_data_type(self) -> &'static str {
        match self {
            Ceremony::Create => "webauthn.create",
            Ceremony::Get => "webauthn.get",
        }
    }
}

/// The members of `clientDataJSON` a relying party reads (others are ignored, as the
/// specification requires; a repeated member is refused by serde).
#[derive(Debug, serde::Deserialize)]
struct RawClientData<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    challenge: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    origin: std::borrow::Cow<'a, str>,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

/// Bytes of text a client sent, bounded, for an error message.
fn shown(text: &str) -> String {
    let bytes = text.as_bytes();
    let cut = &bytes[..bytes.len().min(MAX_SHOWN_BYTES)];
    let mut out = pacsguard_events::escape_bytes(cut);
    if bytes.len() > MAX_SHOWN_BYTES {
        out.push('…');
    }
    out
}

/// Decodes base64url without padding (how the console's script sends binary fields).
pub fn base64url(text: &str, what: &'static str) -> Result<Vec<u8>, WebauthnError> {
    data_encoding::BASE64URL_NOPAD
        .decode(text.trim().as_bytes())
        .map_err(|_| WebauthnError::Encoding(what))
}

/// The challenge a `clientDataJSON` carries (to find which issued challenge it answers),
/// before anything else in it is trusted.
pub fn challenge_of(client_data_json: &[u8]) -> Result<Vec<u8>, WebauthnError> {
    let raw = parse_client_data(client_data_json)?;
    base64url(&raw.challenge, "the challenge").map_err(|_| WebauthnError::WrongChallenge)
}

fn parse_client_data(bytes: &[u8]) -> Result<RawClientData<'_>, WebauthnError> {
    if bytes.len() > MAX_CLIENT_DATA_BYTES {
        return Err(WebauthnError::TooLarge("clientDataJSON"));
    }
    serde_json::from_slice(bytes).map_err(|_| WebauthnError::BadClientData("not the JSON expected"))
}

/// §7.1 steps 7–12 / §7.2 steps 11–16: type, challenge, origin, crossOrigin.
pub fn check_client_data(
    rp: &RelyingParty,
    ceremony: Ceremony,
    expected_challenge: &[u8],
    client_data_json: &[u8],
) -> Result<(), WebauthnError> {
    let raw = parse_client_data(client_data_json)?;
    if raw.kind != ceremony.client_data_type() {
        return Err(WebauthnError::WrongType(ceremony.client_data_type()));
    }
    let challenge =
        base64url(&raw.challenge, "the challenge").map_err(|_| WebauthnError::WrongChallenge)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        challenge.as_slice(),
        expected_challenge,
    )) {
        return Err(WebauthnError::WrongChallenge);
    }
    if raw.origin != rp.origin {
        return Err(WebauthnError::WrongOrigin(shown(&raw.origin)));
    }
    if raw.cross_origin == Some(true) {
        return Err(WebauthnError::CrossOrigin);
    }
    Ok(())
}

/// A credential's data as its registration created it.
#[derive(Debug, PartialEq, Eq)]
pub struct AttestedCredential<'a> {
    pub aaguid: &'a [u8],
    pub credential_id: &'a [u8],
    /// The COSE_Key as the authenticator encoded it (stored as it is).
    pub public_key: &'a [u8],
    pub key: Es256Key,
}

/// Authenticator data (§6.1), every length checked.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthenticatorData<'a> {
    pub rp_id_hash: &'a [u8],
    pub flags: u8,
    pub sign_count: u32,
    pub attested: Option<AttestedCredential<'a>>,
}

impl<'a> AuthenticatorData<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<AuthenticatorData<'a>, WebauthnError> {
        let short = WebauthnError::BadAuthenticatorData("shorter than its fields");
        let head = bytes.get(..37).ok_or(short.clone())?;
        let rp_id_hash = &head[..32];
        let flags = head[32];
        let sign_count = u32::from_be_bytes([head[33], head[34], head[35], head[36]]);
        let mut rest = &bytes[37..];
        let attested = if flags & FLAG_AT != 0 {
            let aaguid = rest.get(..16).ok_or(short.clone())?;
            let len = rest.get(16..18).ok_or(short.clone())?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            if len == 0 || len > MAX_CREDENTIAL_ID_BYTES {
                return Err(WebauthnError::BadAuthenticatorData(
                    "the credential ID is empty or longer than 1023 bytes",
                ));
            }
            let credential_id = rest.get(18..18 + len).ok_or(short.clone())?;
            let after = &rest[18 + len..];
            let (key_value, used) = cbor::decode_prefix(after)?;
            let key = Es256Key::from_cose(&key_value)?;
            let public_key = &after[..used];
            rest = &after[used..];
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key,
                key,
            })
        } else {
            None
        };
        if flags & FLAG_ED != 0 {
            // Extensions: one CBOR map filling the rest.
            if !matches!(cbor::decode(rest)?, Value::Map(_)) {
                return Err(WebauthnError::BadAuthenticatorData(
                    "the extensions are not a map",
                ));
            }
        } else if !rest.is_empty() {
            return Err(WebauthnError::BadAuthenticatorData(
                "bytes follow the last field",
            ));
        }
        Ok(AuthenticatorData {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }

    /// Whether the authenticator says the credential may be synced (backup eligible).
    pub fn backup_eligible(&self) -> bool {
        self.flags & FLAG_BE != 0
    }

    /// §7.1 steps 13–15 and 17 / §7.2 steps 15–17 and 19: rpIdHash, UP, UV, and BS
    /// only with BE (a credential cannot be backed up if it may not be).
    fn check(&self, rp: &RelyingParty) -> Result<(), WebauthnError> {
        if self.flags & FLAG_BS != 0 && self.flags & FLAG_BE == 0 {
            return Err(WebauthnError::BadAuthenticatorData(
                "flag BS (backed up) without flag BE (backup eligible)",
            ));
        }
        if self.rp_id_hash != rp.id_hash() {
            return Err(WebauthnError::WrongRpId);
        }
        if self.flags & FLAG_UP == 0 {
            return Err(WebauthnError::UserNotPresent);
        }
        if self.flags & FLAG_UV == 0 {
            return Err(WebauthnError::UserNotVerified);
        }
        Ok(())
    }
}

/// What a verified registration binds to the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub credential_id: Vec<u8>,
    /// The COSE_Key, as the authenticator encoded it.
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub aaguid: Vec<u8>,
    /// `none` or `packed` (self).
    pub format: &'static str,
    pub backup_eligible: bool,
}

fn signed_message(authenticator_data: &[u8], client_data_json: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(authenticator_data.len() + 32);
    message.extend_from_slice(authenticator_data);
    message.extend_from_slice(&Sha256::digest(client_data_json));
    message
}

/// §7.1: verifies a registration (`navigator.credentials.create()`'s response) made for
/// `expected_challenge`.
pub fn verify_registration(
    rp: &RelyingParty,
    expected_challenge: &[u8],
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<Registered, WebauthnError> {
    check_client_data(rp, Ceremony::Create, expected_challenge, client_data_json)?;
    if attestation_object.len() > MAX_ATTESTATION_OBJECT_BYTES {
        return Err(WebauthnError::TooLarge("the attestation object"));
    }
    let object = cbor::decode(attestation_object)?;
    let Value::Map(entries) = &object else {
        return Err(WebauthnError::BadAttestationObject("not a map"));
    };
    if entries.len() != 3 {
        return Err(WebauthnError::BadAttestationObject(
            "not exactly fmt, attStmt and authData",
        ));
    }
    let Some(Value::Text(format)) = object.get_text_key("fmt") else {
        return Err(WebauthnError::BadAttestationObject("no fmt"));
    };
    let Some(statement @ Value::Map(statement_entries)) = object.get_text_key("attStmt") else {
        return Err(WebauthnError::BadAttestationObject("no attStmt map"));
    };
    let Some(Value::Bytes(auth_bytes)) = object.get_text_key("authData") else {
        return Err(WebauthnError::BadAttestationObject("no authData"));
    };
    let auth = AuthenticatorData::parse(auth_bytes)?;
    let Some(credential) = &auth.attested else {
        return Err(WebauthnError::BadAuthenticatorData(
            "no attested credential data (flag AT)",
        ));
    };
    let format = match *format {
        "none" => {
            if !statement_entries.is_empty() {
                return Err(WebauthnError::BadAttestationObject(
                    "a none attestation with a statement",
                ));
            }
            "none"
        }
        "packed" => {
            if statement.get_text_key("x5c").is_some() {
                return Err(WebauthnError::UnsupportedAttestation(
                    "packed with a certificate chain (x5c)".into(),
                ));
            }
            if statement_entries.len() != 2 {
                return Err(WebauthnError::UnsupportedAttestation(
                    "packed with members other than alg and sig".into(),
                ));
            }
            if statement.get_text_key("alg") != Some(&Value::Int(cose::ES256)) {
                return Err(WebauthnError::BadAttestationObject(
                    "a packed self attestation whose alg is not the credential's (ES256)",
                ));
            }
            let Some(Value::Bytes(signature)) = statement.get_text_key("sig") else {
                return Err(WebauthnError::BadAttestationObject("packed without sig"));
            };
            credential
                .key
                .verify(&signed_message(auth_bytes, client_data_json), signature)?;
            "packed"
        }
        other => return Err(WebauthnError::UnsupportedAttestation(shown(other))),
    };
    auth.check(rp)?;
    Ok(Registered {
        credential_id: credential.credential_id.to_vec(),
        public_key: credential.public_key.to_vec(),
        sign_count: auth.sign_count,
        aaguid: credential.aaguid.to_vec(),
        format,
        backup_eligible: auth.backup_eligible(),
    })
}

/// §7.2: verifies an assertion (`navigator.credentials.get()`'s response) made for
/// `expected_challenge` by the credential whose stored COSE key is `public_key`. Gives
/// the authenticator's signature counter; comparing it with the stored one is the
/// caller's (it holds the store).
pub fn verify_assertion(
    rp: &RelyingParty,
    expected_challenge: &[u8],
    public_key: &[u8],
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
) -> Result<u32, WebauthnError> {
    check_client_data(rp, Ceremony::Get, expected_challenge, client_data_json)?;
    if authenticator_data.len() > MAX_AUTHENTICATOR_DATA_BYTES {
        return Err(WebauthnError::TooLarge("the authenticator data"));
    }
    let auth = AuthenticatorData::parse(authenticator_data)?;
    if auth.attested.is_some() {
        return Err(WebauthnError::BadAuthenticatorData(
            "an assertion with attested credential data",
        ));
    }
    let key = Es256Key::from_cose_bytes(public_key)?;
    key.verify(
        &signed_message(authenticator_data, client_data_json),
        signature,
    )?;
    auth.check(rp)?;
    Ok(auth.sign_count)
}

#[cfg(test)]
mod tests;
