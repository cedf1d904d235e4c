//! Passkeys (WebAuthn) as the console's phishing-resistant second factor: registration
//! (the first second factor at setup or invitation, or one more later), sign-in with the
//! password and a passkey, step-up with a passkey, listing and removal.
//!
//! * The relying party is the console's configured origin ([`crate::webauthn`] does the
//!   verification); without one (a console reached by IP address) passkeys are off and
//!   the pages say why.
//! * Challenges are issued by the server, 256 bits, single use (taken out when an answer
//!   arrives, whatever the outcome), valid [`CHALLENGE_LIFETIME`]: a registration's and a
//!   step-up's are bound to the session that asked, one slot per session and ceremony.
//!   A sign-in's (before anyone is known) are not kept at all: each carries when it was
//!   issued, its number and a MAC under a key of this process ([`SignInChallenges`]),
//!   so anyone may open the sign-in page as often as they like without pushing out
//!   someone else's challenge; only the answered ones (after a right password) are
//!   remembered, to refuse a replay.
//! * A passkey signs in only the account it is registered to (the server's
//!   `allowCredentials`), and a signature counter that does not move forward is a
//!   refusal, and a `passkey-clone-suspected` alert when the answer's challenge was
//!   issued after that credential's counter last moved (every challenge carries its
//!   number in the order issued, [`Passkeys::issued`]); one issued before, whose counter
//!   is above the stored one before that race, was overtaken by a newer answer of the
//!   same authenticator (two tabs at once), not made by a clone.
//! * Adding a passkey to an enrolled account and removing one are changes of the
//!   account's factors: both need a step-up within [`crate::STEP_UP_WINDOW`], and the
//!   last second factor cannot be removed.
//! * Every registration, use, failure, removal and counter regression is on the trail
//!   (sign-ins and step-ups as `login`, registration and removal as `account`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use hmac::{Hmac, KeyInit as _, Mac as _};
use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use pacsguard_store::{NewPasskey, PasskeyAdded, PasskeyRemoved, PasskeyRow};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::auth::{AuthError, Authenticated, Console, NewSession, lock};
use crate::secret;
use crate::webauthn::{self, CHALLENGE_BYTES, RelyingParty};

/// How long a challenge stays valid: the WebAuthn ceremony's recommended timeout
/// (5 minutes) is what the page asks the browser for.
pub const CHALLENGE_LIFETIME: i64 = 5 * 60;
/// Registration and step-up challenges outstanding at once (one per session and
/// ceremony: a registration started in one tab leaves a step-up in another); past this
/// the oldest of the account holding the most is forgotten (see [`heaviest_oldest`]) and
/// its ceremony must start again.
pub const MAX_SESSION_CHALLENGES: usize = 1_000;
/// Sign-in challenges answered within [`CHALLENGE_LIFETIME`] that are remembered to
/// refuse their replay. One is spent only by a sign-in whose password was right (an
/// account's failures lock it after [`crate::throttle::MAX_ACCOUNT_FAILURES`]), so this
/// is about 30 a second for five minutes; past it the oldest spent by the account that
/// spent the most is forgotten (see [`heaviest_oldest`]): only that account's own
/// answer could then be replayed, and only with its password.
pub const MAX_SPENT_SIGN_IN_CHALLENGES: usize = 10_000;
/// Passkeys one account may hold (each is listed in its step-up page).
pub const MAX_PASSKEYS_PER_ACCOUNT: usize = 10;
/// Longest label a person gives a passkey.
pub const MAX_LABEL_BYTES: usize = 64;
/// The ceremony timeout the pages ask the browser for, in milliseconds.
pub const CEREMONY_TIMEOUT_MS: i64 = CHALLENGE_LIFETIME * 1000;

/// The second factor presented at a sign-in or step-up.
#[derive(Clone, Copy, Debug)]
pub enum SecondFactor<'a> {
    /// A TOTP code or a recovery code.
    Code(&'a str),
    /// A passkey's assertion.
    Passkey(&'a Assertion),
}

/// `navigator.credentials.get()`'s answer as the console's script posts it: each binary
/// field base64url without padding.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Assertion {
    pub credential_id: String,
    pub client_data: String,
    pub authenticator_data: String,
    pub signature: String,
    pub user_handle: String,
}

/// `navigator.credentials.create()`'s answer as the console's script posts it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Registration {
    pub client_data: String,
    pub attestation_object: String,
    pub label: String,
}

/// What a page hands `navigator.credentials.create()` (binary fields base64url).
#[derive(Clone, Debug)]
pub struct CreationOptions {
    pub origin: String,
    pub rp_id: String,
    pub challenge: String,
    pub user_id: String,
    pub user_name: String,
    /// The account's credentials, so an authenticator does not register twice.
    pub exclude: Vec<String>,
}

/// What a page hands `navigator.credentials.get()`.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    pub origin: String,
    pub rp_id: String,
    pub challenge: String,
    /// The account's credentials (empty at sign-in: the passkey says whose it is).
    pub allow: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Purpose {
    Register,
    StepUp,
}

#[derive(Debug)]
struct Issued {
    /// Whose session asked (a full map forgets the heaviest account's first).
    account: i64,
    challenge: Vec<u8>,
    at: i64,
    /// Its place in the order challenges were issued ([`Passkeys::issued`]).
    seq: u64,
}

/// A session's slot for one ceremony: each ceremony of a session has its own, so a
/// registration started in one tab does not cancel a step-up under way in another.
type Slot = (Vec<u8>, Purpose);

/// The relying party and the challenges outstanding.
#[derive(Debug, Default)]
pub(crate) struct Passkeys {
    rp: Option<RelyingParty>,
    by_session: Mutex<HashMap<Slot, Issued>>,
    sign_in: SignInChallenges,
    /// Challenges issued by this process so far (sign-in and session alike): each
    /// challenge carries its number, so an answer can be told to have been asked before
    /// or after a passkey's counter last moved.
    issued: std::sync::atomic::AtomicU64,
    /// Per credential: how its signature counter last moved forward ([`Moved`]). An
    /// answer to a challenge issued before that move, with a counter not above the
    /// stored one but above the counter before the moves, was overtaken by a newer answer
    /// of the same authenticator (two tabs, two requests at once), not made by a clone.
    /// Entries older than [`CHALLENGE_LIFETIME`] are dropped (every challenge issued
    /// before them has expired), so this holds at most the credentials used within that
    /// time.
    advanced: Mutex<HashMap<Vec<u8>, Moved>>,
}

/// A credential's signature counter moving forward, for telling an overtaken answer from
/// a clone's.
#[derive(Clone, Copy, Debug)]
struct Moved {
    /// Challenges issued when it last moved.
    issued: u64,
    /// The stored counter before the first of its moves still remembered: an answer
    /// overtaken in a race was signed after it, so its counter is above it; a copy of
    /// the authenticator made before the race is not (found in review s8-r13: a copy
    /// answering a challenge asked before the original's next use passed as overtaken).
    before: i64,
    /// When it last moved.
    at: i64,
}

/// Sign-in challenges, which anyone may ask for (the page is shown before anyone is
/// known): none is stored when issued, so no number of requests can push out another
/// person's. A challenge is `issued at (8 bytes, big-endian seconds) || nonce (8) ||
/// tag (16)`, the tag the first 16 bytes of HMAC-SHA-256 under a key drawn once per
/// process: the server knows it issued a challenge, and when, from the challenge
/// itself. Single use: an answered challenge is remembered until it expires (at most
/// [`MAX_SPENT_SIGN_IN_CHALLENGES`]). A restart draws a new key, so challenges issued
/// before it are refused (the page is reloaded).
#[derive(Debug, Default)]
struct SignInChallenges {
    key: Mutex<Option<Vec<u8>>>,
    /// Answered challenges: the account that answered and when each was issued.
    spent: Mutex<HashMap<Vec<u8>, (i64, i64)>>,
}

/// Which entry a full map of challenges forgets: the oldest of the account holding the
/// most. One person (or one insider's thousand sessions) filling the map then pushes out
/// only their own, never another account's challenge mid-ceremony (found in review: the
/// oldest overall went, so anyone able to open enough sessions could make every other
/// person's step-up and registration fail).
fn heaviest_oldest<'a, K: Clone + 'a>(
    entries: impl Iterator<Item = (&'a K, i64, i64)> + Clone,
) -> Option<K> {
    let mut held: HashMap<i64, usize> = HashMap::new();
    for (_, account, _) in entries.clone() {
        *held.entry(account).or_default() += 1;
    }
    let heaviest = held
        .into_iter()
        .max_by_key(|&(account, n)| (n, std::cmp::Reverse(account)))
        .map(|(account, _)| account)?;
    entries
        .filter(|&(_, account, _)| account == heaviest)
        .min_by_key(|&(_, _, at)| at)
        .map(|(key, _, _)| key.clone())
}

/// Bytes of a sign-in challenge's parts (together [`CHALLENGE_BYTES`]).
const SIGN_IN_AT_BYTES: usize = 8;
const SIGN_IN_NONCE_BYTES: usize = 8;
const SIGN_IN_TAG_BYTES: usize = CHALLENGE_BYTES - SIGN_IN_AT_BYTES - SIGN_IN_NONCE_BYTES;
/// Domain separation for the sign-in challenge's MAC.
const SIGN_IN_MAC_CONTEXT: &[u8] = b"pacsguard console passkey sign-in challenge\0";
/// Bytes of the process's sign-in MAC key.
const SIGN_IN_KEY_BYTES: usize = 32;

impl SignInChallenges {
    /// The process's MAC key, drawn at first use.
    fn key(&self) -> Result<Vec<u8>, AuthError> {
        let mut key = lock(&self.key)?;
        if let Some(k) = key.as_ref() {
            return Ok(k.clone());
        }
        let drawn = secret::random_bytes(SIGN_IN_KEY_BYTES)
            .map_err(|e| AuthError::Random(e.to_string()))?;
        *key = Some(drawn.clone());
        Ok(drawn)
    }

    fn tag(key: &[u8], at_and_nonce: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|e| AuthError::Internal(format!("sign-in challenge key: {e}")))?;
        mac.update(SIGN_IN_MAC_CONTEXT);
        mac.update(at_and_nonce);
        Ok(mac.finalize().into_bytes()[..SIGN_IN_TAG_BYTES].to_vec())
    }

    /// A new challenge, issued `now` as the `seq`th of this process (nothing is stored):
    /// the number is the nonce (unique in this process; the MAC key is drawn again at a
    /// restart), so the answer tells when it was asked.
    fn issue(&self, now: i64, seq: u64) -> Result<Vec<u8>, AuthError> {
        let key = self.key()?;
        let mut challenge = now.to_be_bytes().to_vec();
        challenge.extend(seq.to_be_bytes());
        let tag = SignInChallenges::tag(&key, &challenge)?;
        challenge.extend(tag);
        Ok(challenge)
    }

    /// Spends `presented` for `account` (single use): `Ok(its number)` if this process
    /// issued it, it has not expired and was not answered before; else the reason.
    fn spend(
        &self,
        presented: &[u8],
        account: i64,
        now: i64,
    ) -> Result<Result<u64, String>, AuthError> {
        let not_issued = "the challenge was not issued by this console (or before it restarted)";
        if presented.len() != CHALLENGE_BYTES {
            return Ok(Err(not_issued.into()));
        }
        let (signed, tag) = presented.split_at(SIGN_IN_AT_BYTES + SIGN_IN_NONCE_BYTES);
        let expected = SignInChallenges::tag(&self.key()?, signed)?;
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Ok(Err(not_issued.into()));
        }
        let mut at = [0u8; SIGN_IN_AT_BYTES];
        at.copy_from_slice(&signed[..SIGN_IN_AT_BYTES]);
        let at = i64::from_be_bytes(at);
        if !Passkeys::fresh(now, at) {
            return Ok(Err("the challenge expired".into()));
        }
        let mut spent = lock(&self.spent)?;
        spent.retain(|_, &mut (_, issued)| Passkeys::fresh(now, issued));
        if spent.contains_key(presented) {
            return Ok(Err("the challenge was used already (replayed)".into()));
        }
        if spent.len() >= MAX_SPENT_SIGN_IN_CHALLENGES
            && let Some(forget) = heaviest_oldest(spent.iter().map(|(k, &(a, t))| (k, a, t)))
        {
            spent.remove(&forget);
        }
        spent.insert(presented.to_vec(), (account, at));
        let mut seq = [0u8; SIGN_IN_NONCE_BYTES];
        seq.copy_from_slice(&signed[SIGN_IN_AT_BYTES..]);
        Ok(Ok(u64::from_be_bytes(seq)))
    }
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// The WebAuthn user handle of an account: opaque, stable, not its name.
fn user_handle(account: i64) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console user handle\0");
    hash.update(account.to_be_bytes());
    hash.finalize().to_vec()
}

/// A label as a person typed it: trimmed, cut to [`MAX_LABEL_BYTES`] on a character
/// boundary, "passkey" when empty.
fn label_of(text: &str) -> String {
    let text = text.trim();
    let mut end = text.len().min(MAX_LABEL_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // Controls and characters that reorder or hide text (U+202E) are dropped: a label is
    // shown to its holder and on the trail as the name of a factor.
    let label: String = text[..end]
        .chars()
        .filter(|&c| !pacsguard_events::hides_text(c))
        .collect();
    if label.is_empty() {
        "passkey".into()
    } else {
        label
    }
}

/// The first bytes of a credential ID, for the trail (enough to tell passkeys apart).
fn short_id(id: &[u8]) -> String {
    secret::hex(&id[..id.len().min(8)])
}

const PASSKEYS_OFF: &str = "passkeys are off: the console has no origin with a domain name (set [console] origin = \"https://HOST:PORT\" and open the console there)";

impl Passkeys {
    /// Whether a challenge issued `at` is still valid `now`.
    fn fresh(now: i64, at: i64) -> bool {
        now - at < CHALLENGE_LIFETIME && now >= at
    }

    /// The number of the next challenge issued.
    fn next_seq(&self) -> u64 {
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Console {
    /// Turns passkeys on, for this relying party (before it serves).
    pub fn with_relying_party(mut self, rp: RelyingParty) -> Console {
        self.passkeys.rp = Some(rp);
        self
    }

    /// Turns passkeys on when there is a relying party.
    pub fn with_relying_party_if(self, rp: Option<RelyingParty>) -> Console {
        match rp {
            Some(rp) => self.with_relying_party(rp),
            None => self,
        }
    }

    /// The relying party, if passkeys are on.
    pub fn relying_party(&self) -> Option<&RelyingParty> {
        self.passkeys.rp.as_ref()
    }

    fn rp(&self) -> Result<&RelyingParty, AuthError> {
        self.relying_party()
            .ok_or_else(|| AuthError::Invalid(PASSKEYS_OFF.into()))
    }

    fn new_challenge() -> Result<Vec<u8>, AuthError> {
        secret::random_bytes(CHALLENGE_BYTES).map_err(|e| AuthError::Random(e.to_string()))
    }

    /// A challenge for this session's ceremony, replacing one it had.
    fn issue_for_session(
        &self,
        auth: &Authenticated,
        purpose: Purpose,
    ) -> Result<Vec<u8>, AuthError> {
        let challenge = Console::new_challenge()?;
        let now = self.now();
        let seq = self.passkeys.next_seq();
        let slot = (auth.token_hash.clone(), purpose);
        let mut map = lock(&self.passkeys.by_session)?;
        map.retain(|_, i| Passkeys::fresh(now, i.at));
        if map.len() >= MAX_SESSION_CHALLENGES
            && !map.contains_key(&slot)
            && let Some(forget) = heaviest_oldest(map.iter().map(|(k, i)| (k, i.account, i.at)))
        {
            map.remove(&forget);
        }
        map.insert(
            slot,
            Issued {
                account: auth.account,
                challenge: challenge.clone(),
                at: now,
                seq,
            },
        );
        Ok(challenge)
    }

    /// Takes the session's challenge for `purpose` out (single use) with its number: it,
    /// if it is `presented` and has not expired. A challenge of the session's other
    /// ceremony presented here is spent too (refused, never reusable).
    fn take_for_session(
        &self,
        token_hash: &[u8],
        purpose: Purpose,
        presented: &[u8],
    ) -> Result<(Vec<u8>, u64), String> {
        let now = self.now();
        let mut map = lock(&self.passkeys.by_session).map_err(|e| e.to_string())?;
        let issued = map.remove(&(token_hash.to_vec(), purpose));
        let other = match purpose {
            Purpose::Register => Purpose::StepUp,
            Purpose::StepUp => Purpose::Register,
        };
        let other_slot = (token_hash.to_vec(), other);
        let misused = map
            .get(&other_slot)
            .is_some_and(|i| i.challenge == presented);
        if misused {
            map.remove(&other_slot);
        }
        drop(map);
        match issued {
            Some(i) if i.challenge == presented && Passkeys::fresh(now, i.at) => {
                Ok((i.challenge, i.seq))
            }
            Some(i) if i.challenge == presented => Err("the challenge expired".into()),
            _ if misused => Err("the challenge was issued for another ceremony".into()),
            _ => {
                Err("the challenge is not one this session was given (replayed, or unknown)".into())
            }
        }
    }

    fn take_for_sign_in(&self, presented: &[u8], account: i64) -> Result<(Vec<u8>, u64), String> {
        match self.passkeys.sign_in.spend(presented, account, self.now()) {
            Ok(Ok(seq)) => Ok((presented.to_vec(), seq)),
            Ok(Err(reason)) => Err(reason),
            Err(e) => Err(e.to_string()),
        }
    }

    fn credential_ids(&self, account: i64) -> Result<Vec<String>, AuthError> {
        Ok(lock(&self.db)?
            .passkeys_of(account)?
            .iter()
            .map(|p| b64(&p.credential_id))
            .collect())
    }

    /// Begins registering a passkey for this session's account. An enrolled account
    /// must have stepped up (adding a factor is changing the account's factors).
    pub fn begin_passkey_registration(
        &self,
        auth: &Authenticated,
    ) -> Result<CreationOptions, AuthError> {
        let rp = self.rp()?.clone();
        if auth.enrolled && !self.stepped_up(auth) {
            return Err(AuthError::StepUpNeeded);
        }
        let challenge = self.issue_for_session(auth, Purpose::Register)?;
        Ok(CreationOptions {
            origin: rp.origin,
            rp_id: rp.id,
            challenge: b64(&challenge),
            user_id: b64(&user_handle(auth.account)),
            user_name: auth.name.clone(),
            exclude: self.credential_ids(auth.account)?,
        })
    }

    /// Records a refused registration and says why.
    fn registration_refused(&self, auth: &Authenticated, reason: &str) -> AuthError {
        self.refused_with(
            self.event(
                &auth.name,
                Action::Account,
                Outcome::Failure,
                format!(
                    "{}: a passkey registration was refused: {reason}",
                    auth.name
                ),
            ),
            AuthError::Invalid(format!("the passkey was not registered: {reason}")),
        )
    }

    /// Verifies and stores a passkey registration. For an account without a second
    /// factor (setup, invitation) it is the enrolment: recovery codes (returned once) and
    /// a new session token, as for TOTP. For an enrolled account it is one more passkey
    /// (a step-up needed): `None`.
    pub fn finish_passkey_registration(
        &self,
        auth: &Authenticated,
        form: &Registration,
        address: IpAddr,
    ) -> Result<Option<(Vec<String>, NewSession)>, AuthError> {
        let rp = self.rp()?.clone();
        if auth.enrolled && !self.stepped_up(auth) {
            return Err(AuthError::StepUpNeeded);
        }
        let decoded = webauthn::base64url(&form.client_data, "clientDataJSON").and_then(|c| {
            Ok((
                c,
                webauthn::base64url(&form.attestation_object, "the attestation object")?,
            ))
        });
        let (client_data, attestation) =
            decoded.map_err(|e| self.registration_refused(auth, &e.to_string()))?;
        let presented = webauthn::challenge_of(&client_data)
            .map_err(|e| self.registration_refused(auth, &e.to_string()))?;
        let (challenge, _) = self
            .take_for_session(&auth.token_hash, Purpose::Register, &presented)
            .map_err(|e| self.registration_refused(auth, &e))?;
        let registered = webauthn::verify_registration(&rp, &challenge, &client_data, &attestation)
            .map_err(|e| self.registration_refused(auth, &e.to_string()))?;
        if lock(&self.db)?
            .passkey(&registered.credential_id)?
            .is_some()
        {
            return Err(self.registration_refused(auth, "this passkey is registered already"));
        }
        let label = label_of(&form.label);
        let first = !auth.enrolled;
        let recovery = if first {
            Some(crate::auth::new_recovery_codes()?)
        } else {
            None
        };
        // Recorded inside the hold, once the passkey is added: the record waits for
        // the hold's commit ([`crate::held`]; review r28-console2: queued before the
        // hold, it reached the trail when a full disk refused the write).
        let registered_record = self.event(
            &auth.name,
            Action::Account,
            Outcome::Success,
            format!(
                "{} registered the passkey \"{}\" (credential {}…, attestation {}, user verified) from {address}{}",
                auth.name,
                pacsguard_events::escape_bytes(label.as_bytes()),
                short_id(&registered.credential_id),
                registered.format,
                if first {
                    format!(
                        " as the second factor; {} single-use recovery codes issued (earlier ones void); {}",
                        crate::auth::RECOVERY_CODES,
                        crate::auth::ENROLMENT_ENDS_SESSIONS
                    )
                } else {
                    " (after a step-up)".into()
                }
            ),
        );
        self.ensure_bound()?;
        let added = {
            // One guard for both: no request sees the account enrolled while a session
            // opened with the password only is still alive.
            let mut guard = lock(&self.db)?;
            // The check, the write and the record's read: one transaction (review s11-r13).
            let mut db = guard.hold()?;
            let said = self.hold_begins()?;
            self.unaltered_before_change(
                &db,
                auth.account,
                &auth.name,
                "the passkey's registration",
            )?;
            let added = db.add_passkey(
                auth.account,
                NewPasskey {
                    credential_id: &registered.credential_id,
                    public_key: &registered.public_key,
                    sign_count: registered.sign_count,
                    label: &label,
                    format: registered.format,
                    created: self.now(),
                },
                MAX_PASSKEYS_PER_ACCOUNT,
                recovery.as_ref().map(|(_, hashes)| hashes.as_slice()),
            )?;
            if added == PasskeyAdded::Added {
                self.record(registered_record)?;
            }
            if first && added == PasskeyAdded::Added {
                self.close_sessions_of(
                    &db,
                    auth.account,
                    &auth.name,
                    "the first second factor was enrolled (it had the password only)",
                )?;
            }
            if added == PasskeyAdded::Added {
                self.rebind_under(
                    &db,
                    auth.account,
                    "its credentials bound to the trail after a passkey was registered",
                )?;
            }
            said.commit(db)?;
            added
        };
        let refused = match added {
            PasskeyAdded::Added => None,
            PasskeyAdded::Duplicate => Some("this passkey is registered already".to_string()),
            PasskeyAdded::Full => Some(format!(
                "an account holds at most {MAX_PASSKEYS_PER_ACCOUNT} passkeys: remove one first"
            )),
            PasskeyAdded::AlreadyEnrolled => {
                Some("a second factor was enrolled meanwhile in another session".to_string())
            }
        };
        if let Some(reason) = refused {
            return Err(self.registration_refused(auth, &reason));
        }
        let Some((codes, _)) = recovery else {
            return Ok(None);
        };
        {
            let db = lock(&self.db)?;
            self.close_session_by_hash(
                &db,
                &auth.token_hash,
                &auth.name,
                format!(
                    "the session of {} was replaced by a new one after the enrolment",
                    auth.name
                ),
            )?;
        }
        lock(&self.pending)?.remove(&auth.token_hash);
        let session = self.new_session(auth.account, true, address)?;
        Ok(Some((codes, session)))
    }

    /// A sign-in challenge, for the page that asks for a passkey before anyone is known.
    pub fn passkey_sign_in_options(&self) -> Result<RequestOptions, AuthError> {
        let rp = self.rp()?.clone();
        let challenge = self
            .passkeys
            .sign_in
            .issue(self.now(), self.passkeys.next_seq())?;
        Ok(RequestOptions {
            origin: rp.origin,
            rp_id: rp.id,
            challenge: b64(&challenge),
            allow: Vec::new(),
        })
    }

    /// A challenge of the sign-in's kind for `account`'s own passkeys, for a page that
    /// knows its account without a session (a password reset link's): `None` when
    /// passkeys are off or the account has none.
    pub(crate) fn passkey_options_for(
        &self,
        account: i64,
    ) -> Result<Option<RequestOptions>, AuthError> {
        let Some(rp) = self.relying_party().cloned() else {
            return Ok(None);
        };
        let allow = self.credential_ids(account)?;
        if allow.is_empty() {
            return Ok(None);
        }
        let challenge = self
            .passkeys
            .sign_in
            .issue(self.now(), self.passkeys.next_seq())?;
        Ok(Some(RequestOptions {
            origin: rp.origin,
            rp_id: rp.id,
            challenge: b64(&challenge),
            allow,
        }))
    }

    /// A step-up challenge for this session, offering the account's own passkeys.
    pub fn passkey_step_up_options(
        &self,
        auth: &Authenticated,
    ) -> Result<RequestOptions, AuthError> {
        let rp = self.rp()?.clone();
        let allow = self.credential_ids(auth.account)?;
        if allow.is_empty() {
            return Err(AuthError::Invalid(
                "this account has no passkey: confirm with a code instead".into(),
            ));
        }
        let challenge = self.issue_for_session(auth, Purpose::StepUp)?;
        Ok(RequestOptions {
            origin: rp.origin,
            rp_id: rp.id,
            challenge: b64(&challenge),
            allow,
        })
    }

    /// Signs in with name, password and a passkey (see [`Console::login`]).
    pub fn login_with_passkey(
        &self,
        name: &str,
        password: &str,
        assertion: &Assertion,
        address: IpAddr,
        previous: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        self.login_with(
            name,
            password,
            SecondFactor::Passkey(assertion),
            address,
            previous,
        )
    }

    /// Confirms the second factor for decisions with a passkey (see [`Console::step_up`]).
    pub fn step_up_with_passkey(
        &self,
        auth: &Authenticated,
        assertion: &Assertion,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.step_up_with(auth, SecondFactor::Passkey(assertion), address)
    }

    /// Checks a second factor of an enrolled account: `Ok(detail for the trail)` or
    /// `Err(the reason for the trail)`; the outer error is a store failure. `session`:
    /// the step-up's session (its challenge), `None` at sign-in.
    pub(crate) fn check_factor(
        &self,
        account: &pacsguard_store::AccountRow,
        factor: SecondFactor<'_>,
        now: i64,
        session: Option<&[u8]>,
    ) -> Result<Result<String, String>, AuthError> {
        match factor {
            SecondFactor::Code(code) => {
                let code_is_totp = code.trim().len() == crate::totp::DIGITS as usize;
                match (&account.totp_secret, code_is_totp) {
                    (Some(secret), _) => Ok(self
                        .second_factor(account, secret, code, now)?
                        .map_err(str::to_string)),
                    // No app enrolled: a six-digit code is never right; anything else
                    // may be a recovery code.
                    (None, true) => Ok(Err("wrong code (no authenticator app enrolled)".into())),
                    (None, false) => Ok(self
                        .second_factor(account, &[], code, now)?
                        .map_err(str::to_string)),
                }
            }
            SecondFactor::Passkey(assertion) => {
                self.check_passkey(account, assertion, now, session)
            }
        }
    }

    fn check_passkey(
        &self,
        account: &pacsguard_store::AccountRow,
        assertion: &Assertion,
        now: i64,
        session: Option<&[u8]>,
    ) -> Result<Result<String, String>, AuthError> {
        let refused = |reason: String| Ok(Err(format!("passkey: {reason}")));
        let Ok(rp) = self.rp() else {
            return refused("passkeys are off".into());
        };
        let decoded = (|| {
            Ok::<_, webauthn::WebauthnError>((
                webauthn::base64url(&assertion.credential_id, "the credential ID")?,
                webauthn::base64url(&assertion.client_data, "clientDataJSON")?,
                webauthn::base64url(&assertion.authenticator_data, "the authenticator data")?,
                webauthn::base64url(&assertion.signature, "the signature")?,
                webauthn::base64url(&assertion.user_handle, "the user handle")?,
            ))
        })();
        let (id, client_data, authenticator_data, signature, handle) = match decoded {
            Ok(d) => d,
            Err(e) => return refused(e.to_string()),
        };
        let presented = match webauthn::challenge_of(&client_data) {
            Ok(c) => c,
            Err(e) => return refused(e.to_string()),
        };
        let taken = match session {
            Some(token_hash) => self.take_for_session(token_hash, Purpose::StepUp, &presented),
            None => self.take_for_sign_in(&presented, account.id),
        };
        let (challenge, asked) = match taken {
            Ok(c) => c,
            Err(e) => return refused(e),
        };
        let Some(passkey) = lock(&self.db)?.passkey(&id)? else {
            return refused("an unknown credential".into());
        };
        if passkey.account != account.id {
            return refused("a credential of another account".into());
        }
        if !handle.is_empty() && handle != user_handle(account.id) {
            return refused("the authenticator names another user".into());
        }
        let count = match webauthn::verify_assertion(
            rp,
            &challenge,
            &passkey.public_key,
            &client_data,
            &authenticator_data,
            &signature,
        ) {
            Ok(count) => count,
            Err(e) => return refused(e.to_string()),
        };
        // The counter's move and its record in `advanced` happen under one lock, so an
        // answer overtaken at the same moment sees the move it lost to.
        let mut advanced = lock(&self.passkeys.advanced)?;
        advanced.retain(|_, moved| Passkeys::fresh(now, moved.at));
        if lock(&self.db)?.use_passkey(&id, count, now)? {
            let before = advanced
                .get(&id)
                .map_or(passkey.sign_count, |moved| moved.before);
            advanced.insert(
                id.clone(),
                Moved {
                    issued: self
                        .passkeys
                        .issued
                        .load(std::sync::atomic::Ordering::SeqCst),
                    before,
                    at: now,
                },
            );
        } else {
            // A counter that does not move forward is a clone signal, unless the answer
            // was asked before the counter last moved and signed after the counter's
            // value before those moves: overtaken by a newer answer of the same
            // authenticator (two requests or tabs at once).
            if advanced
                .get(&id)
                .is_some_and(|moved| asked < moved.issued && i64::from(count) > moved.before)
            {
                return refused(format!(
                    "an answer overtaken by a newer one of the same passkey (counter {count}, already at {}; two ceremonies at once): not a clone, but refused; try again",
                    passkey.sign_count
                ));
            }
            drop(advanced);
            self.clone_suspected(account, &passkey, count)?;
            return refused(format!(
                "its signature counter did not move forward ({count} after {}): a cloned authenticator?",
                passkey.sign_count
            ));
        }
        drop(advanced);
        Ok(Ok(format!(
            " with the passkey \"{}\" (credential {}…)",
            pacsguard_events::escape_bytes(passkey.label.as_bytes()),
            short_id(&passkey.credential_id)
        )))
    }

    /// Records the alert that `passkey` looks cloned; [`AuthError::Unrecorded`] when
    /// the trail cannot take it (the sign-in is refused either way).
    fn clone_suspected(
        &self,
        account: &pacsguard_store::AccountRow,
        passkey: &PasskeyRow,
        count: u32,
    ) -> Result<(), AuthError> {
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::PasskeyCloneSuspected,
            Severity::Alert,
            format!(
                "console: the passkey \"{}\" (credential {}…) of {} presented the signature counter {count}, not above the {} it reached before: two authenticators hold its key; refused",
                pacsguard_events::escape_bytes(passkey.label.as_bytes()),
                short_id(&passkey.credential_id),
                account.name,
                passkey.sign_count
            ),
        );
        let mut event = Event::of_finding(self.actor(&account.name), finding);
        event.action = Action::Login;
        self.record_refusal(event)
    }

    /// This account's passkeys.
    pub fn passkeys_of(&self, auth: &Authenticated) -> Result<Vec<PasskeyRow>, AuthError> {
        Ok(lock(&self.db)?.passkeys_of(auth.account)?)
    }

    /// Removes one of this account's passkeys (`credential_id` base64url), after a
    /// step-up; never the last second factor.
    pub fn remove_passkey(
        &self,
        auth: &Authenticated,
        credential_id: &str,
        address: IpAddr,
    ) -> Result<(), AuthError> {
        if !self.stepped_up(auth) {
            return Err(AuthError::StepUpNeeded);
        }
        let id = webauthn::base64url(credential_id, "the credential ID")
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let (row, others, totp) = {
            let db = lock(&self.db)?;
            let mine = db.passkeys_of(auth.account)?;
            let totp = db
                .account_by_id(auth.account)?
                .is_some_and(|a| a.totp_secret.is_some());
            let row = mine.iter().find(|p| p.credential_id == id).cloned();
            (row, mine.len().saturating_sub(1), totp)
        };
        let Some(row) = row else {
            return Err(AuthError::Invalid("no such passkey of yours".into()));
        };
        let last = "it is your last second factor: register another passkey first";
        if others == 0 && !totp {
            return Err(AuthError::Invalid(last.into()));
        }
        // Recorded inside the hold once the passkey is removed, queued with its commit
        // ([`crate::held`]).
        let removed_record = self.event(
            &auth.name,
            Action::Account,
            Outcome::Success,
            format!(
                "{} removed the passkey \"{}\" (credential {}…) after a step-up, from {address}",
                auth.name,
                pacsguard_events::escape_bytes(row.label.as_bytes()),
                short_id(&row.credential_id)
            ),
        );
        self.ensure_bound()?;
        let removed = {
            let mut guard = lock(&self.db)?;
            // The check, the removal and the record's read: one transaction.
            let mut db = guard.hold()?;
            let said = self.hold_begins()?;
            self.unaltered_before_change(&db, auth.account, &auth.name, "the passkey's removal")?;
            let removed = match db.remove_passkey(auth.account, &id)? {
                PasskeyRemoved::Removed => {
                    self.record(removed_record)?;
                    Ok(self.rebind_under(
                        &db,
                        auth.account,
                        "its credentials bound to the trail after a passkey was removed",
                    )?)
                }
                other => Err(other),
            };
            said.commit(db)?;
            removed
        };
        match removed {
            Ok(()) => Ok(()),
            // Another session changed the factors between the check and the removal:
            // nothing was removed, and the refusal is recorded.
            other => Err(self.refused_with(
                self.event(
                    &auth.name,
                    Action::Account,
                    Outcome::Failure,
                    format!(
                        "{}: the passkey (credential {}…) was not removed after all ({other:?})",
                        auth.name,
                        short_id(&row.credential_id)
                    ),
                ),
                AuthError::Invalid(last.into()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    /// A challenge number never given before in this test process.
    fn fresh_seq() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    use super::*;

    fn console(clock: &crate::ManualClock) -> (tempfile::TempDir, Console) {
        let home = tempfile::tempdir().expect("tempdir");
        let store = home.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let db = pacsguard_store::ConsoleDb::open(&store).expect("console tables");
        let console = Console::new(
            db,
            std::sync::Arc::new(clock.clone()),
            pacsguard_events::Inbox::new(),
            store,
            "test-host",
            std::sync::Arc::new(crate::GuardState::new()),
        )
        .expect("console");
        (home, console)
    }

    fn session(n: usize) -> Authenticated {
        session_of(1, n)
    }

    fn session_of(account: i64, n: usize) -> Authenticated {
        Authenticated {
            account,
            name: "ann".into(),
            role: crate::Role::Viewer,
            enrolled: false,
            csrf: String::new(),
            token_hash: (n as u64).to_be_bytes().to_vec(),
            stepped_up_at: None,
        }
    }

    #[test]
    fn session_challenges_are_kept_to_their_limit_and_the_oldest_forgotten() {
        let clock = crate::ManualClock::new(1_800_000_000);
        let (_home, console) = console(&clock);
        let first = console
            .issue_for_session(&session(0), Purpose::Register)
            .expect("issued");
        clock.advance(1);
        let second = console
            .issue_for_session(&session(1), Purpose::Register)
            .expect("issued");
        clock.advance(1);
        for n in 2..MAX_SESSION_CHALLENGES {
            console
                .issue_for_session(&session(n), Purpose::StepUp)
                .expect("issued");
        }
        assert_eq!(
            lock(&console.passkeys.by_session).expect("lock").len(),
            MAX_SESSION_CHALLENGES
        );
        console
            .issue_for_session(&session(MAX_SESSION_CHALLENGES), Purpose::StepUp)
            .expect("issued");
        assert_eq!(
            console
                .take_for_session(&session(1).token_hash, Purpose::Register, &second)
                .map(|(c, _)| c),
            Ok(second.clone())
        );
        assert!(
            console
                .take_for_session(&session(0).token_hash, Purpose::Register, &first)
                .is_err(),
            "the oldest was forgotten"
        );
        // A challenge is for its own purpose and session only, and once.
        let step_up = console
            .issue_for_session(&session(7), Purpose::StepUp)
            .expect("issued");
        assert!(
            console
                .take_for_session(&session(7).token_hash, Purpose::Register, &step_up)
                .is_err()
        );
        assert!(
            console
                .take_for_session(&session(7).token_hash, Purpose::StepUp, &step_up)
                .is_err(),
            "spent by the refused answer"
        );
    }

    /// Found open in session 7: registration and step-up shared one slot per session, so
    /// a registration started in one tab cancelled a step-up under way in another.
    #[test]
    fn a_registration_started_in_another_tab_leaves_the_step_up_under_way() {
        let clock = crate::ManualClock::new(1_800_000_000);
        let (_home, console) = console(&clock);
        let step_up = console
            .issue_for_session(&session(3), Purpose::StepUp)
            .expect("issued");
        let register = console
            .issue_for_session(&session(3), Purpose::Register)
            .expect("issued");
        assert_eq!(
            console
                .take_for_session(&session(3).token_hash, Purpose::StepUp, &step_up)
                .map(|(c, _)| c),
            Ok(step_up)
        );
        assert_eq!(
            console
                .take_for_session(&session(3).token_hash, Purpose::Register, &register)
                .map(|(c, _)| c),
            Ok(register)
        );
    }

    /// Found in review: the oldest challenge overall was forgotten, so an insider with
    /// enough sessions (a passkey signs in as often as one likes) made an
    /// administrator's step-up or registration fail mid-ceremony.
    #[test]
    fn a_full_session_pool_forgets_the_flooding_accounts_challenges_only() {
        let clock = crate::ManualClock::new(1_800_000_000);
        let (_home, console) = console(&clock);
        let admin = session_of(1, 0);
        let mine = console
            .issue_for_session(&admin, Purpose::StepUp)
            .expect("issued");
        clock.advance(1);
        for n in 1..=2 * MAX_SESSION_CHALLENGES {
            console
                .issue_for_session(&session_of(2, n), Purpose::StepUp)
                .expect("issued");
        }
        assert_eq!(
            lock(&console.passkeys.by_session).expect("lock").len(),
            MAX_SESSION_CHALLENGES
        );
        assert_eq!(
            console
                .take_for_session(&admin.token_hash, Purpose::StepUp, &mine)
                .map(|(c, _)| c),
            Ok(mine.clone())
        );
    }

    #[test]
    fn spent_sign_in_challenges_are_kept_to_their_limit_and_then_the_heaviest_forgets() {
        let challenges = SignInChallenges::default();
        let now = 1_800_000_000;
        // Account 1's answer first (the oldest), then account 2 fills the rest.
        let mine = challenges.issue(now - 1, fresh_seq()).expect("issued");
        assert!(challenges.spend(&mine, 1, now).expect("lock").is_ok());
        let flooder_first = challenges.issue(now, fresh_seq()).expect("issued");
        assert!(
            challenges
                .spend(&flooder_first, 2, now)
                .expect("lock")
                .is_ok()
        );
        for _ in 2..MAX_SPENT_SIGN_IN_CHALLENGES {
            let c = challenges.issue(now, fresh_seq()).expect("issued");
            assert!(challenges.spend(&c, 2, now).expect("lock").is_ok());
        }
        assert_eq!(
            lock(&challenges.spent).expect("lock").len(),
            MAX_SPENT_SIGN_IN_CHALLENGES
        );
        // One more: still accepted, and one of account 2's is forgotten, not account 1's.
        let one_more = challenges.issue(now + 1, fresh_seq()).expect("issued");
        assert!(
            challenges
                .spend(&one_more, 2, now + 1)
                .expect("lock")
                .is_ok()
        );
        assert_eq!(
            lock(&challenges.spent).expect("lock").len(),
            MAX_SPENT_SIGN_IN_CHALLENGES
        );
        let replay = challenges.spend(&mine, 1, now + 1).expect("lock");
        assert!(
            matches!(&replay, Err(r) if r.contains("replayed")),
            "{replay:?}"
        );
        let spent = lock(&challenges.spent).expect("lock");
        assert_eq!(spent.values().filter(|(a, _)| *a == 1).count(), 1);
        assert!(spent.contains_key(&one_more));
    }

    #[test]
    fn a_sign_in_challenge_is_valid_for_its_lifetime_only() {
        let challenges = SignInChallenges::default();
        let now = 1_800_000_000;
        let seq = fresh_seq();
        let c = challenges.issue(now, seq).expect("issued");
        assert_eq!(
            challenges
                .spend(&c, 1, now + CHALLENGE_LIFETIME - 1)
                .expect("lock"),
            Ok(seq)
        );
        let c = challenges.issue(now, fresh_seq()).expect("issued");
        assert_eq!(
            challenges
                .spend(&c, 1, now + CHALLENGE_LIFETIME)
                .expect("lock"),
            Err("the challenge expired".to_string())
        );
        // Issued "in the future" (a forged time cannot carry a valid tag, but the clock
        // may step back): refused.
        let c = challenges.issue(now + 10, fresh_seq()).expect("issued");
        assert!(challenges.spend(&c, 1, now).expect("lock").is_err());
        // Its time changed: the tag no longer matches.
        let mut c = challenges
            .issue(now - CHALLENGE_LIFETIME, fresh_seq())
            .expect("issued");
        c[..8].copy_from_slice(&now.to_be_bytes());
        let forged = challenges.spend(&c, 1, now).expect("lock");
        assert!(
            matches!(&forged, Err(r) if r.contains("not issued")),
            "{forged:?}"
        );
        assert!(challenges.spend(&c[..31], 1, now).expect("lock").is_err());
    }

    #[test]
    fn labels_are_bounded_trimmed_and_never_empty() {
        assert_eq!(label_of("  YubiKey 5  "), "YubiKey 5");
        assert_eq!(label_of(""), "passkey");
        assert_eq!(label_of("a\u{7}b"), "ab");
        // U+202E would show "YubiKey fdp.exe" as "YubiKey exe.pdf".
        assert_eq!(label_of("YubiKey \u{202e}fdp.exe"), "YubiKey fdp.exe");
        assert_eq!(label_of("\u{202e}\u{2066}\u{200b}"), "passkey");
        // Found in review s8-r13: invisible characters outside the bidi set stayed.
        assert_eq!(label_of("Yubi\u{ad}Key\u{3164}\u{e0100}"), "YubiKey");
        let long = "é".repeat(MAX_LABEL_BYTES);
        let cut = label_of(&long);
        assert!(cut.len() <= MAX_LABEL_BYTES && cut.chars().all(|c| c == 'é'));
        assert_eq!(
            label_of(&"x".repeat(MAX_LABEL_BYTES)).len(),
            MAX_LABEL_BYTES
        );
        assert_eq!(
            label_of(&"x".repeat(MAX_LABEL_BYTES + 1)).len(),
            MAX_LABEL_BYTES
        );
    }
}
