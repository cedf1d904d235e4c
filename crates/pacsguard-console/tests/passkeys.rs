//! Passkeys through the console's own API and router, with a real store, a clock the
//! test moves, and a software authenticator (a P-256 key in `ring`) that answers each
//! ceremony as a browser and its authenticator would, or as an attacker would: wrong
//! origin, wrong or replayed challenge, no user verification, a cloned counter, another
//! account's credential. The real browser with Chromium's virtual authenticator is in
//! crates/pacsguard/tests/serve.rs.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use pacsguard_console::auth::{AuthError, Authenticated};
use pacsguard_console::passkey::{
    Assertion, CHALLENGE_LIFETIME, CreationOptions, MAX_PASSKEYS_PER_ACCOUNT, Registration,
    RequestOptions,
};
use pacsguard_console::throttle::LOCKOUT_SECONDS;
use pacsguard_console::webauthn::RelyingParty;
use pacsguard_console::{Console, GuardState, ManualClock, STEP_UP_WINDOW, totp};
use pacsguard_events::{Action, Event, FindingKind, Inbox, Outcome};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

const START: i64 = 1_800_000_000;
const PASSWORD: &str = "amber lantern over quiet harbour";
const ORIGIN: &str = "https://pacs01.example.org:8443";
const ADDRESS: [u8; 4] = [127, 0, 0, 1];

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .expect("base64url")
}

/// A minimal CBOR writer (definite lengths) for the authenticator's own structures.
fn head(major: u8, n: usize, out: &mut Vec<u8>) {
    match n {
        0..=23 => out.push((major << 5) | n as u8),
        24..=255 => out.extend_from_slice(&[(major << 5) | 24, n as u8]),
        _ => {
            out.push((major << 5) | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len(), out);
    out.extend_from_slice(b);
}

/// A software authenticator: one P-256 credential and a signature counter.
struct Authenticator {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    id: Vec<u8>,
    user: Vec<u8>,
    count: u32,
    /// What the browser puts into clientDataJSON as the origin.
    origin: String,
    rp_id: String,
    /// Whether the authenticator verified its user (PIN, biometric).
    verifies: bool,
}

impl Authenticator {
    fn new(id: u8) -> Authenticator {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        Authenticator {
            key,
            rng,
            id: vec![id; 16],
            user: Vec::new(),
            count: 0,
            origin: ORIGIN.into(),
            rp_id: "pacs01.example.org".into(),
            verifies: true,
        }
    }

    fn cose(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let mut out = Vec::new();
        head(5, 5, &mut out);
        out.extend_from_slice(&[0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]);
        bytes(&point[1..33], &mut out);
        out.push(0x22);
        bytes(&point[33..65], &mut out);
        out
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{}","crossOrigin":false}}"#,
            self.origin
        )
        .into_bytes()
    }

    fn auth_data(&mut self, attested: bool) -> Vec<u8> {
        self.count += 1;
        let mut out = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        let mut flags = 0x01;
        if self.verifies {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        out.push(flags);
        out.extend_from_slice(&self.count.to_be_bytes());
        if attested {
            out.extend_from_slice(&[0u8; 16]);
            out.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.id.clone());
            out.extend_from_slice(&self.cose());
        }
        out
    }

    /// `navigator.credentials.create()` with attestation "none".
    fn register(&mut self, options: &CreationOptions, label: &str) -> Registration {
        self.user = unb64(&options.user_id);
        let client = self.client_data("webauthn.create", &options.challenge);
        let auth = self.auth_data(true);
        let mut object = Vec::new();
        head(5, 3, &mut object);
        text("fmt", &mut object);
        text("none", &mut object);
        text("attStmt", &mut object);
        head(5, 0, &mut object);
        text("authData", &mut object);
        bytes(&auth, &mut object);
        Registration {
            client_data: b64(&client),
            attestation_object: b64(&object),
            label: label.into(),
        }
    }

    /// `navigator.credentials.get()` answering `challenge` (base64url).
    fn assert(&mut self, challenge: &str) -> Assertion {
        let client = self.client_data("webauthn.get", challenge);
        let auth = self.auth_data(false);
        let mut message = auth.clone();
        message.extend_from_slice(&Sha256::digest(&client));
        let signature = self.key.sign(&self.rng, &message).expect("sign");
        Assertion {
            credential_id: b64(&self.id),
            client_data: b64(&client),
            authenticator_data: b64(&auth),
            signature: b64(signature.as_ref()),
            user_handle: b64(&self.user),
        }
    }
}

struct Harness {
    home: tempfile::TempDir,
    console: Arc<Console>,
    clock: ManualClock,
    inbox: Inbox,
}

fn ip() -> IpAddr {
    IpAddr::from(ADDRESS)
}

fn harness() -> Harness {
    let home = tempfile::tempdir().expect("tempdir");
    let store = home.path().join("store.sqlite");
    drop(pacsguard_store::Store::open(&store).expect("store"));
    harness_in(home, ManualClock::new(START), Inbox::new())
}

fn harness_in(home: tempfile::TempDir, clock: ManualClock, inbox: Inbox) -> Harness {
    let store = home.path().join("store.sqlite");
    let db = pacsguard_store::ConsoleDb::open(&store).expect("console tables");
    let console = Console::new(
        db,
        Arc::new(clock.clone()),
        inbox.clone(),
        store,
        "test-host",
        Arc::new(GuardState::new()),
    )
    .expect("console")
    .with_relying_party(RelyingParty::from_origin(ORIGIN).expect("origin"));
    Harness {
        home,
        console: Arc::new(console),
        clock,
        inbox,
    }
}

impl Harness {
    /// A new console on the same store, clock and inbox. These tests put accounts into
    /// the store directly; a console without a trail (no guardian here) binds the
    /// accounts it finds at its start on trust, so they are usable after it. (A running
    /// console refuses an account planted behind its back: `console-account-altered`.)
    fn restarted(self) -> Harness {
        let Harness {
            home,
            console,
            clock,
            inbox,
        } = self;
        drop(console);
        harness_in(home, clock, inbox)
    }

    fn session(&self, token: &str) -> Authenticated {
        self.console
            .authenticate(token)
            .expect("store")
            .expect("a live session")
    }

    /// The first administrator, set up from the one-time link, enrolled with a passkey:
    /// its authenticator and session.
    fn admin_with_passkey(&self) -> (Authenticator, Authenticated) {
        let token = self
            .console
            .issue_setup_token()
            .expect("issued")
            .expect("first");
        let session = self
            .console
            .setup(&token, "admin", PASSWORD, ip())
            .expect("setup");
        let auth = self.session(&session.token);
        assert!(!auth.enrolled);
        let mut key = Authenticator::new(1);
        let options = self
            .console
            .begin_passkey_registration(&auth)
            .expect("options");
        let registration = key.register(&options, "YubiKey 5");
        let (codes, session) = self
            .console
            .finish_passkey_registration(&auth, &registration, ip())
            .expect("registered")
            .expect("the first factor: recovery codes and a new session");
        assert_eq!(codes.len(), pacsguard_console::auth::RECOVERY_CODES);
        let auth = self.session(&session.token);
        assert!(auth.enrolled);
        (key, auth)
    }

    fn sign_in_challenge(&self) -> RequestOptions {
        self.console.passkey_sign_in_options().expect("options")
    }

    fn login(&self, name: &str, assertion: &Assertion) -> Result<String, AuthError> {
        self.console
            .login_with_passkey(name, PASSWORD, assertion, ip(), None)
            .map(|s| s.token)
    }

    fn events(&self) -> Vec<Event> {
        self.inbox.take()
    }

    /// A second account, enrolled with TOTP (directly in the store).
    fn bob(&self) -> i64 {
        let mut db =
            pacsguard_store::ConsoleDb::open(&self.home.path().join("store.sqlite")).expect("db");
        let hash = pacsguard_console::password::hash(PASSWORD).expect("hash");
        let id = db
            .create_account("bob", "approver", &hash, START)
            .expect("bob");
        assert!(
            db.enrol_totp(id, &[5u8; totp::SECRET_BYTES], 0, &[])
                .expect("totp")
        );
        id
    }
}

fn failures(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.action == Action::Login && e.outcome == Outcome::Failure)
        .map(|e| e.detail.clone())
        .collect()
}

/// The sign-in is refused with the uniform answer and the trail has the reason.
fn assert_refused(h: &Harness, result: Result<String, AuthError>, reason: &str) {
    assert!(
        matches!(result, Err(AuthError::SignInFailed)),
        "{reason}: {result:?}"
    );
    let failed = failures(&h.events());
    assert!(
        failed.iter().any(|d| d.contains(reason)),
        "the trail does not say {reason:?}: {failed:?}"
    );
    // Past the growing delay the throttle puts after each failure.
    h.clock.advance(LOCKOUT_SECONDS + 1);
}

#[test]
fn a_passkey_enrolled_at_setup_signs_in_with_the_password_and_is_on_the_trail() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    let events = h.events();
    assert!(
        events.iter().any(|e| e.action == Action::Account
            && e.outcome == Outcome::Success
            && e.detail.contains("registered the passkey \"YubiKey 5\"")
            && e.detail.contains("recovery codes issued")),
        "{events:?}"
    );
    let options = h.sign_in_challenge();
    assert!(
        options.allow.is_empty(),
        "sign-in names no account's credentials"
    );
    let assertion = key.assert(&options.challenge);
    let token = h.login("admin", &assertion).expect("signed in");
    assert!(h.session(&token).enrolled);
    let events = h.events();
    assert!(
        events.iter().any(|e| e.action == Action::Login
            && e.outcome == Outcome::Success
            && e.detail.contains("with the passkey \"YubiKey 5\"")),
        "{events:?}"
    );
    let stored = h.console.passkeys_of(&h.session(&token)).expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].sign_count, stored[0].last_used), (2, START));

    // The same answer again: its challenge is spent.
    assert_refused(&h, h.login("admin", &assertion), "replayed");
    // A wrong password is refused before the passkey is looked at.
    let fresh = key.assert(&h.sign_in_challenge().challenge);
    let wrong =
        h.console
            .login_with_passkey("admin", "not the password at all", &fresh, ip(), None);
    assert!(matches!(wrong, Err(AuthError::SignInFailed)));
    assert!(
        failures(&h.events())
            .iter()
            .any(|d| d.contains("wrong password"))
    );
}

#[test]
fn every_refusal_of_a_passkey_sign_in_is_uniform_and_recorded() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    h.events();

    // A challenge the server never issued.
    let invented = b64(&[0x5a; 32]);
    assert_refused(&h, h.login("admin", &key.assert(&invented)), "not issued");

    // Another site's origin (a phishing page relaying the ceremony).
    key.origin = "https://pacs01.example.org.evil.test".into();
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("admin", &key.assert(&challenge)),
        "is not the console's",
    );
    key.origin = ORIGIN.into();

    // A credential scoped to another relying party.
    key.rp_id = "example.org".into();
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("admin", &key.assert(&challenge)),
        "another relying party",
    );
    key.rp_id = "pacs01.example.org".into();

    // The authenticator did not verify its user.
    key.verifies = false;
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(&h, h.login("admin", &key.assert(&challenge)), "flag UV");
    key.verifies = true;

    // An unknown credential (another key under an unregistered ID).
    let mut stranger = Authenticator::new(9);
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("admin", &stranger.assert(&challenge)),
        "unknown credential",
    );

    // The registered ID, but signed by another key.
    stranger.id = key.id.clone();
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("admin", &stranger.assert(&challenge)),
        "does not verify",
    );

    // An expired challenge: valid CHALLENGE_LIFETIME, not a second more.
    let challenge = h.sign_in_challenge().challenge;
    h.clock.advance(CHALLENGE_LIFETIME - 1);
    assert!(
        h.login("admin", &key.assert(&challenge)).is_ok(),
        "just in time"
    );
    let challenge = h.sign_in_challenge().challenge;
    h.clock.advance(CHALLENGE_LIFETIME);
    assert_refused(&h, h.login("admin", &key.assert(&challenge)), "expired");
}

#[test]
fn a_counter_that_goes_back_is_a_clone_alert_and_refused() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    let challenge = h.sign_in_challenge().challenge;
    h.login("admin", &key.assert(&challenge))
        .expect("signed in");
    h.events();
    // A copy of the key that lags behind (its counter is where the original was).
    key.count -= 2;
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("admin", &key.assert(&challenge)),
        "did not move forward",
    );
    let challenge = h.sign_in_challenge().challenge;
    let result = h.login("admin", &key.assert(&challenge));
    assert!(result.is_err());
    let events = h.events();
    let alerts: Vec<_> = events
        .iter()
        .filter_map(|e| e.finding.as_ref())
        .filter(|f| f.kind == FindingKind::PasskeyCloneSuspected)
        .collect();
    assert_eq!(alerts.len(), 1, "{events:?}");
    assert!(
        alerts[0].detail.contains("YubiKey 5"),
        "{}",
        alerts[0].detail
    );
}

fn clone_alerts(events: &[Event]) -> usize {
    events
        .iter()
        .filter_map(|e| e.finding.as_ref())
        .filter(|f| f.kind == FindingKind::PasskeyCloneSuspected)
        .count()
}

/// Two sign-ins with one passkey at once (two tabs, or a retried request): the
/// authenticator answers them in order, the server gets the newer answer first. The
/// older one is refused, and it is no clone alert (found open in session 7: it was).
#[test]
fn an_answer_overtaken_by_a_newer_one_of_the_same_passkey_is_no_clone_alert() {
    let h = harness();
    let (mut key, auth) = h.admin_with_passkey();
    let first = h.sign_in_challenge().challenge;
    let second = h.sign_in_challenge().challenge;
    let older = key.assert(&first);
    let newer = key.assert(&second);
    h.login("admin", &newer).expect("signed in");
    h.events();
    assert_refused(&h, h.login("admin", &older), "overtaken by a newer one");
    // The same for two step-ups at once, in two tabs of one session, each with its own
    // challenge: a sign-in's challenge and a step-up's.
    let step_up = h.console.passkey_step_up_options(&auth).expect("options");
    let sign_in = h.sign_in_challenge().challenge;
    let older = key.assert(&step_up.challenge);
    let newer = key.assert(&sign_in);
    h.login("admin", &newer).expect("signed in");
    assert!(
        h.console.step_up_with_passkey(&auth, &older, ip()).is_err(),
        "refused"
    );
    assert_eq!(clone_alerts(&h.events()), 0);
    // A copy answering a challenge asked after the counter moved is still a clone.
    key.count -= 3;
    let later = h.sign_in_challenge().challenge;
    assert!(h.login("admin", &key.assert(&later)).is_err());
    assert_eq!(clone_alerts(&h.events()), 1);
}

/// Found in review s8-r13: a copy of a passkey made some uses ago that answered a
/// challenge asked before the original's next use was taken for an answer overtaken by
/// a newer one: refused, but no clone alert, so a copy racing the real authenticator (it
/// can ask for sign-in challenges at will) was never reported. An overtaken answer was
/// signed after the counter's value before the race; such a copy's is not above it.
#[test]
fn a_copy_behind_the_original_is_a_clone_even_with_a_challenge_asked_before_its_use() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    // The copy was made here; the original is used twice more, and time passes.
    let copied_at = key.count;
    for _ in 0..2 {
        let challenge = h.sign_in_challenge().challenge;
        h.login("admin", &key.assert(&challenge))
            .expect("signed in");
    }
    h.clock.advance(CHALLENGE_LIFETIME);
    h.events();
    // The copy asks for its challenge first; the original signs in after.
    let held = h.sign_in_challenge().challenge;
    let challenge = h.sign_in_challenge().challenge;
    h.login("admin", &key.assert(&challenge))
        .expect("the original signs in");
    key.count = copied_at;
    let result = h.login("admin", &key.assert(&held));
    assert!(result.is_err());
    assert_eq!(clone_alerts(&h.events()), 1, "{:?}", result.err());
}

/// Two authenticators of one account keep a counter each: their uses interleaved (one
/// far ahead of the other) are no clone signal.
#[test]
fn two_passkeys_of_one_account_keep_their_own_counters() {
    let h = harness();
    let (mut key, auth) = h.admin_with_passkey();
    key.count = 1_000;
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    let session = h
        .console
        .step_up_with_passkey(&auth, &key.assert(&options.challenge), ip())
        .expect("stepped up");
    let auth = h.session(&session.token);
    let mut laptop = Authenticator::new(2);
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    h.console
        .finish_passkey_registration(&auth, &laptop.register(&options, "lap\u{202e}top"), ip())
        .expect("added");
    // The label's U+202E is dropped at input.
    let labels: Vec<String> = h
        .console
        .passkeys_of(&auth)
        .expect("list")
        .into_iter()
        .map(|p| p.label)
        .collect();
    assert!(labels.contains(&"laptop".to_string()), "{labels:?}");
    for _ in 0..3 {
        for authenticator in [&mut key, &mut laptop] {
            let challenge = h.sign_in_challenge().challenge;
            h.login("admin", &authenticator.assert(&challenge))
                .expect("signed in");
        }
    }
    assert_eq!(clone_alerts(&h.events()), 0);
}

#[test]
fn a_passkey_signs_in_only_its_own_account() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    h.bob();
    let h = h.restarted();
    h.events();
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("bob", &key.assert(&challenge)),
        "a credential of another account",
    );
}

#[test]
fn step_up_with_a_passkey_counts_for_the_window_and_only_with_this_sessions_challenge() {
    let h = harness();
    let (mut key, auth) = h.admin_with_passkey();
    assert!(!h.console.stepped_up(&auth));
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    assert_eq!(
        options.allow,
        vec![b64(&key.id)],
        "allowCredentials: the account's own"
    );
    // A sign-in challenge is not a step-up challenge.
    let other = h.sign_in_challenge().challenge;
    assert!(matches!(
        h.console
            .step_up_with_passkey(&auth, &key.assert(&other), ip()),
        Err(AuthError::StepUpFailed)
    ));
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    let session = h
        .console
        .step_up_with_passkey(&auth, &key.assert(&options.challenge), ip())
        .expect("stepped up");
    let stepped = h.session(&session.token);
    assert!(h.console.stepped_up(&stepped));
    assert!(h.events().iter().any(|e| e.action == Action::Login
        && e.outcome == Outcome::Success
        && e.detail.contains("with the passkey")
        && e.detail.contains("(step-up)")),);
    h.clock.advance(STEP_UP_WINDOW + 1);
    assert!(!h.console.stepped_up(&h.session(&session.token)));
    // Without UV the step-up is refused.
    key.verifies = false;
    let auth = h.session(&session.token);
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    assert!(matches!(
        h.console
            .step_up_with_passkey(&auth, &key.assert(&options.challenge), ip()),
        Err(AuthError::StepUpFailed)
    ));
    assert!(failures(&h.events()).iter().any(|d| d.contains("flag UV")));
}

#[test]
fn adding_and_removing_passkeys_needs_a_step_up_and_keeps_the_last_factor() {
    let h = harness();
    let (mut key, auth) = h.admin_with_passkey();
    assert!(matches!(
        h.console.begin_passkey_registration(&auth),
        Err(AuthError::StepUpNeeded)
    ));
    assert!(matches!(
        h.console.remove_passkey(&auth, &b64(&key.id), ip()),
        Err(AuthError::StepUpNeeded)
    ));
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    let session = h
        .console
        .step_up_with_passkey(&auth, &key.assert(&options.challenge), ip())
        .expect("stepped up");
    let auth = h.session(&session.token);
    // The last second factor stays.
    let kept = h.console.remove_passkey(&auth, &b64(&key.id), ip());
    assert!(
        matches!(kept, Err(AuthError::Invalid(ref m)) if m.contains("last second factor")),
        "{kept:?}"
    );
    // A second passkey; the same one again is refused (unique credential IDs).
    let mut second = Authenticator::new(2);
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    assert_eq!(options.exclude, vec![b64(&key.id)]);
    let again = key.register(&options, "again");
    let refused = h.console.finish_passkey_registration(&auth, &again, ip());
    assert!(
        matches!(refused, Err(AuthError::Invalid(ref m)) if m.contains("registered already")),
        "{refused:?}"
    );
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    let added = h
        .console
        .finish_passkey_registration(&auth, &second.register(&options, "laptop"), ip())
        .expect("added");
    assert!(added.is_none(), "one more passkey: no new recovery codes");
    h.console
        .remove_passkey(&auth, &b64(&key.id), ip())
        .expect("removed");
    let left = h.console.passkeys_of(&auth).expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].label, "laptop");
    let events = h.events();
    assert!(
        events.iter().any(|e| e.action == Action::Account
            && e.detail.contains("removed the passkey \"YubiKey 5\"")),
        "{events:?}"
    );
    // The removed key no longer signs in; the remaining one does.
    let challenge = h.sign_in_challenge().challenge;
    assert_refused(
        &h,
        h.login("admin", &key.assert(&challenge)),
        "unknown credential",
    );
    let challenge = h.sign_in_challenge().challenge;
    assert!(h.login("admin", &second.assert(&challenge)).is_ok());
}

#[test]
fn a_registration_is_refused_for_each_broken_check_and_recorded() {
    let h = harness();
    let token = h
        .console
        .issue_setup_token()
        .expect("issued")
        .expect("first");
    let session = h
        .console
        .setup(&token, "admin", PASSWORD, ip())
        .expect("setup");
    let auth = h.session(&session.token);
    let refused = |key: &mut Authenticator, options: &CreationOptions, reason: &str| {
        let result =
            h.console
                .finish_passkey_registration(&auth, &key.register(options, "x"), ip());
        assert!(
            matches!(result, Err(AuthError::Invalid(ref m)) if m.contains(reason)),
            "{reason}: {result:?}"
        );
        let events = h.events();
        assert!(
            events.iter().any(|e| e.action == Action::Account
                && e.outcome == Outcome::Failure
                && e.detail.contains(reason)),
            "{reason}: {events:?}"
        );
    };
    let mut key = Authenticator::new(3);
    key.verifies = false;
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    refused(&mut key, &options, "flag UV");
    key.verifies = true;
    // The challenge was spent by the refused answer.
    refused(&mut key, &options, "replayed");
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    key.origin = "https://evil.test".into();
    refused(&mut key, &options, "is not the console's");
    key.origin = ORIGIN.into();
    let mut forged = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    forged.challenge = b64(&[1u8; 32]);
    refused(&mut key, &forged, "not one this session was given");
    // Still not enrolled: nothing was stored.
    assert!(!h.session(&session.token).enrolled);
}

/// Found in review: the sign-in page is public and every showing of it stored a
/// challenge in a pool of 1,000 that forgot the oldest, so one anonymous client fetching
/// the page a few hundred times a second made every person's passkey sign-in fail (and
/// put a false "replayed" and a failure towards the account's lock on the trail). A
/// sign-in challenge is now checked from itself (a MAC and its time): no number of
/// pages shown forgets one.
#[test]
fn a_flood_of_sign_in_pages_forgets_nobodys_challenge() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    let mine = h.sign_in_challenge().challenge;
    h.clock.advance(1);
    for _ in 0..5_000 {
        h.sign_in_challenge();
    }
    h.events();
    assert!(h.login("admin", &key.assert(&mine)).is_ok());
    // Still single use, and only what this console issued.
    assert_refused(&h, h.login("admin", &key.assert(&mine)), "replayed");
    let mut forged = unb64(&h.sign_in_challenge().challenge);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_refused(
        &h,
        h.login("admin", &key.assert(&b64(&forged))),
        "not issued",
    );
    let elsewhere = harness().sign_in_challenge().challenge;
    assert_refused(&h, h.login("admin", &key.assert(&elsewhere)), "not issued");
}

#[test]
fn an_account_holds_at_most_its_limit_of_passkeys() {
    let h = harness();
    let (mut key, auth) = h.admin_with_passkey();
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    let session = h
        .console
        .step_up_with_passkey(&auth, &key.assert(&options.challenge), ip())
        .expect("stepped up");
    let auth = h.session(&session.token);
    for i in 1..MAX_PASSKEYS_PER_ACCOUNT {
        let options = h
            .console
            .begin_passkey_registration(&auth)
            .expect("options");
        let mut more = Authenticator::new(10 + i as u8);
        h.console
            .finish_passkey_registration(&auth, &more.register(&options, "more"), ip())
            .expect("under the limit");
    }
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    let mut one_more = Authenticator::new(99);
    let refused = h.console.finish_passkey_registration(
        &auth,
        &one_more.register(&options, "one more"),
        ip(),
    );
    assert!(
        matches!(refused, Err(AuthError::Invalid(ref m)) if m.contains("at most")),
        "{refused:?}"
    );
    assert_eq!(
        h.console.passkeys_of(&auth).expect("list").len(),
        MAX_PASSKEYS_PER_ACCOUNT
    );
}

#[test]
fn without_a_domain_origin_passkeys_are_off_and_say_why() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = home.path().join("store.sqlite");
    drop(pacsguard_store::Store::open(&store).expect("store"));
    let db = pacsguard_store::ConsoleDb::open(&store).expect("console tables");
    let console = Console::new(
        db,
        Arc::new(ManualClock::new(START)),
        Inbox::new(),
        store,
        "test-host",
        Arc::new(GuardState::new()),
    )
    .expect("console");
    let off = console.passkey_sign_in_options();
    assert!(
        matches!(off, Err(AuthError::Invalid(ref m)) if m.contains("[console] origin")),
        "{off:?}"
    );
}

/// The router: the script is served under the CSP, the ceremony pages carry their
/// options, and a registration posted without the session's CSRF token is refused.
#[tokio::test]
async fn the_routes_serve_the_script_and_refuse_a_post_without_the_csrf_token() {
    let h = harness();
    let (mut key, _) = h.admin_with_passkey();
    let token = h
        .login("admin", &key.assert(&h.sign_in_challenge().challenge))
        .expect("signed in");
    let csrf = h.session(&token).csrf;
    let app = pacsguard_console::http::app(h.console.clone());
    let send = |method: &str, uri: &str, cookie: Option<String>, body: &str| {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "pacs01.example.org:8443");
        if let Some(token) = cookie {
            builder = builder.header(header::COOKIE, format!("__Host-pacsguard={token}"));
        }
        if method == "POST" {
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let mut request = builder.body(Body::from(body.to_string())).expect("request");
        request
            .extensions_mut()
            .insert(axum::Extension(pacsguard_console::http::Peer(
                "127.0.0.1:5000".parse().expect("addr"),
            )));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("infallible");
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (status, headers, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, headers, body) = send("GET", "/static/passkey.js", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    assert!(body.contains("navigator.credentials.create"));
    let (status, _, body) = send("GET", "/login/passkey", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("data-passkey=\"get\"") && body.contains("data-challenge=\""));
    assert!(body.contains("<script src=\"/static/passkey.js\" defer></script>"));
    assert!(!body.contains("<script>"), "no inline script");
    // Signed in, but without the session's CSRF token: refused before the handler.
    for path in ["/passkeys/register", "/passkeys/remove", "/step-up/passkey"] {
        let (status, _, body) = send("POST", path, Some(token.clone()), "id=x").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("security token"), "{path}: {body}");
    }
    // With it, a removal still needs a step-up.
    let (status, _, body) = send(
        "POST",
        "/passkeys/remove",
        Some(token.clone()),
        &format!("csrf={csrf}&id={}", b64(&key.id)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("confirm your second factor first"), "{body}");
    let (status, _, body) = send("GET", "/passkeys", Some(token.clone()), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("YubiKey 5") && body.contains("id=\"passkeys-step-up-needed\""));
    // Review r26-console: the accounts page said "TOTP" of an account with a passkey
    // alone; it says which factor, and so does the API.
    let (status, _, body) = send("GET", "/accounts", Some(token.clone()), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(
            "<tr id=\"account-admin\"><td>admin</td><td>administrator</td><td>passkey</td>"
        ),
        "{body}"
    );
    let (status, _, body) = send("GET", "/api/accounts", Some(token.clone()), "").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["accounts"][0]["passkey"], true, "{json}");
    assert_eq!(json["accounts"][0]["totp"], false, "{json}");
    let (status, _, _) = send(
        "POST",
        "/passkeys/register",
        None,
        "client_data=x&attestation_object=y",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// An invited person chooses the password with the one-time link and enrols a passkey as
/// the second factor, in place of an authenticator app; then signs in with it.
#[test]
fn an_invited_person_enrols_a_passkey_instead_of_totp() {
    let h = harness();
    let (mut admin_key, auth) = h.admin_with_passkey();
    let options = h.console.passkey_step_up_options(&auth).expect("options");
    let session = h
        .console
        .step_up_with_passkey(&auth, &admin_key.assert(&options.challenge), ip())
        .expect("stepped up");
    let admin = h.session(&session.token);
    let link = h
        .console
        .invite(&admin, "bob", "approver", "new PACS approver, ticket HR-12")
        .expect("invited");
    let session = h
        .console
        .redeem_invitation(&link, PASSWORD, ip())
        .expect("redeemed");
    let bob = h.session(&session.token);
    assert!(!bob.enrolled);
    let mut key = Authenticator::new(42);
    let options = h.console.begin_passkey_registration(&bob).expect("options");
    assert!(options.exclude.is_empty());
    let (codes, session) = h
        .console
        .finish_passkey_registration(&bob, &key.register(&options, "bob's key"), ip())
        .expect("registered")
        .expect("first factor");
    assert_eq!(codes.len(), pacsguard_console::auth::RECOVERY_CODES);
    assert!(h.session(&session.token).enrolled);
    let challenge = h.sign_in_challenge().challenge;
    let token = h
        .login("bob", &key.assert(&challenge))
        .expect("bob signs in");
    assert_eq!(h.session(&token).name, "bob");
    // A recovery code still signs bob in (he has no authenticator app).
    let by_code = h
        .console
        .login("bob", PASSWORD, &codes[0], ip(), None)
        .expect("recovery code");
    assert!(h.session(&by_code.token).enrolled);
    // A six-digit guess is never a code of an account without an app.
    h.clock.advance(LOCKOUT_SECONDS + 1);
    assert!(matches!(
        h.console.login("bob", PASSWORD, "123456", ip(), None),
        Err(AuthError::SignInFailed)
    ));
}

/// Found in review: a session keeps no record of how it was opened, so one opened with
/// the password only before the account had a second factor counted as fully signed in
/// once the account enrolled one in another session (a thief who knew the password
/// before enrolment kept an administrator's session, never presenting the passkey).
/// Enrolling the first second factor, a passkey or TOTP, ends every session of the
/// account; the enrolling browser gets a new one.
#[test]
fn enrolling_a_second_factor_ends_the_sessions_opened_with_the_password_only() {
    let h = harness();
    let token = h
        .console
        .issue_setup_token()
        .expect("issued")
        .expect("first");
    let owner = h
        .console
        .setup(&token, "admin", PASSWORD, ip())
        .expect("setup");
    let thief = h
        .console
        .login("admin", PASSWORD, "", ip(), None)
        .expect("the password alone opens an enrolment session");
    assert!(!h.session(&thief.token).enrolled);
    let auth = h.session(&owner.token);
    let mut key = Authenticator::new(1);
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    let (_, session) = h
        .console
        .finish_passkey_registration(&auth, &key.register(&options, "mine"), ip())
        .expect("registered")
        .expect("first factor");
    assert!(h.session(&session.token).enrolled);
    assert!(
        h.console
            .authenticate(&thief.token)
            .expect("store")
            .is_none(),
        "the password-only session outlived the enrolment"
    );
    assert!(h.events().iter().any(|e| {
        e.detail
            .contains("every session of the account opened before it ended")
    }));

    // The same with TOTP, for an account created with a password.
    let db = pacsguard_store::ConsoleDb::open(&h.home.path().join("store.sqlite")).expect("db");
    let hash = pacsguard_console::password::hash(PASSWORD).expect("hash");
    db.create_account("carol", "viewer", &hash, START)
        .expect("carol");
    drop(db);
    let h = h.restarted();
    let enrolling = h
        .console
        .login("carol", PASSWORD, "", ip(), None)
        .expect("signed in");
    let thief = h
        .console
        .login("carol", PASSWORD, "", ip(), None)
        .expect("signed in");
    let auth = h.session(&enrolling.token);
    let enrolment = h.console.begin_enrolment(&auth).expect("begun");
    let secret = data_encoding::BASE32_NOPAD
        .decode(enrolment.secret_base32.as_bytes())
        .expect("base32");
    let code = totp::code_at_step(&secret, totp::step_of(START));
    h.console
        .confirm_enrolment(&auth, &code, ip())
        .expect("enrolled");
    assert!(
        h.console
            .authenticate(&thief.token)
            .expect("store")
            .is_none(),
        "the password-only session outlived the TOTP enrolment"
    );
}

/// Found in review: a TOTP enrolment confirmed in one session after a passkey was
/// enrolled in another (both begun before either finished) replaced the recovery codes
/// the passkey's enrolment had just shown, voiding them silently, and added a second
/// factor nobody had stepped up for. It is now refused, with the reason.
#[test]
fn a_totp_enrolment_after_a_passkey_enrolment_elsewhere_is_refused() {
    let h = harness();
    let token = h
        .console
        .issue_setup_token()
        .expect("issued")
        .expect("first");
    let first = h
        .console
        .setup(&token, "admin", PASSWORD, ip())
        .expect("setup");
    let second = h
        .console
        .login("admin", PASSWORD, "", ip(), None)
        .expect("signed in");
    let totp_session = h.session(&second.token);
    let enrolment = h.console.begin_enrolment(&totp_session).expect("begun");
    let passkey_session = h.session(&first.token);
    let mut key = Authenticator::new(1);
    let options = h
        .console
        .begin_passkey_registration(&passkey_session)
        .expect("options");
    let (codes, _) = h
        .console
        .finish_passkey_registration(&passkey_session, &key.register(&options, "mine"), ip())
        .expect("registered")
        .expect("first factor");
    // The TOTP confirmation was already under way (authenticated before the passkey).
    let secret = data_encoding::BASE32_NOPAD
        .decode(enrolment.secret_base32.as_bytes())
        .expect("base32");
    let code = totp::code_at_step(&secret, totp::step_of(START));
    let refused = h.console.confirm_enrolment(&totp_session, &code, ip());
    assert!(matches!(refused, Err(AuthError::Invalid(_))), "{refused:?}");
    // The recovery codes the passkey's enrolment showed still sign in.
    h.console
        .login("admin", PASSWORD, &codes[0], ip(), None)
        .expect("a recovery code shown at the passkey's enrolment works");
}

/// Review r26-console: a password reset link asked for a code of the authenticator app
/// or a recovery code only, so an account with passkeys alone and no recovery code left
/// could not finish its reset (and the holder was pushed to spend a recovery code). The
/// link's page offers the account's own passkeys; an assertion with user verification
/// finishes the reset; one without it, another account's passkey, or one answering
/// another challenge is refused, counted, and leaves the link.
#[test]
fn a_reset_link_is_finished_with_the_accounts_own_passkey() {
    let h = harness();
    let (mut admin_key, auth) = h.admin_with_passkey();
    let step_up = |auth: &Authenticated, key: &mut Authenticator| {
        let options = h.console.passkey_step_up_options(auth).expect("options");
        let session = h
            .console
            .step_up_with_passkey(auth, &key.assert(&options.challenge), ip())
            .expect("stepped up");
        h.session(&session.token)
    };
    let admin = step_up(&auth, &mut admin_key);
    let link = h
        .console
        .invite(&admin, "bob", "approver", "new PACS approver")
        .expect("invited");
    let session = h
        .console
        .redeem_invitation(&link, PASSWORD, ip())
        .expect("redeemed");
    let bob = h.session(&session.token);
    let mut key = Authenticator::new(42);
    let options = h.console.begin_passkey_registration(&bob).expect("options");
    h.console
        .finish_passkey_registration(&bob, &key.register(&options, "bob's key"), ip())
        .expect("registered")
        .expect("first factor");
    let reset = h
        .console
        .reset_password(&admin, "bob", "forgot it")
        .expect("reset");
    let offer = |h: &Harness| {
        h.console
            .reset_offer(&reset.token)
            .expect("store")
            .expect("a valid link")
            .passkey
            .expect("bob's passkeys offered")
    };
    let options = offer(&h);
    assert_eq!(options.allow, vec![b64(&[42u8; 16])], "bob's own key only");
    let new_password = "seven herons above the estuary";
    let refused = |result: Result<pacsguard_console::auth::NewSession, AuthError>| {
        assert!(
            matches!(&result, Err(AuthError::Invalid(m)) if m == pacsguard_console::reset::RESET_CODE_REFUSED),
            "{result:?}"
        );
    };
    // Without user verification.
    key.verifies = false;
    refused(h.console.redeem_reset_with_passkey(
        &reset.token,
        new_password,
        &key.assert(&offer(&h).challenge),
        ip(),
    ));
    key.verifies = true;
    // The administrator's own passkey.
    refused(h.console.redeem_reset_with_passkey(
        &reset.token,
        new_password,
        &admin_key.assert(&offer(&h).challenge),
        ip(),
    ));
    // A challenge never issued.
    refused(h.console.redeem_reset_with_passkey(
        &reset.token,
        new_password,
        &key.assert(&b64(&[7u8; 32])),
        ip(),
    ));
    let failed: Vec<String> = h
        .events()
        .into_iter()
        .filter(|e| e.action == Action::Account && e.outcome == Outcome::Failure)
        .map(|e| e.detail)
        .collect();
    assert!(
        failed
            .iter()
            .any(|d| d.contains("a new password with the reset link") && d.contains("passkey")),
        "{failed:?}"
    );
    h.clock.advance(LOCKOUT_SECONDS + 1);
    let session = h
        .console
        .redeem_reset_with_passkey(
            &reset.token,
            new_password,
            &key.assert(&offer(&h).challenge),
            ip(),
        )
        .expect("finished with the passkey");
    assert_eq!(h.session(&session.token).name, "bob");
    assert!(
        h.console
            .reset_offer(&reset.token)
            .expect("store")
            .is_none(),
        "spent"
    );
    let token = h
        .console
        .login_with_passkey(
            "bob",
            new_password,
            &key.assert(&h.sign_in_challenge().challenge),
            ip(),
            None,
        )
        .expect("the new password with the passkey")
        .token;
    assert_eq!(h.session(&token).name, "bob");
}

/// Review r27-console: a refused registration's record was dropped when the trail
/// could not take it (`let _ = self.record(..)`), and the refusal answered as if it
/// were on the trail. It is answered as not recorded now.
#[test]
fn a_registration_refusal_the_trail_cannot_record_is_answered_as_not_recorded() {
    let h = harness();
    let token = h
        .console
        .issue_setup_token()
        .expect("issued")
        .expect("first");
    let session = h
        .console
        .setup(&token, "admin", PASSWORD, ip())
        .expect("setup");
    let auth = h.session(&session.token);
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    let mut key = Authenticator::new(3);
    key.verifies = false;
    // The trail takes nothing more: the guard lags behind a flood.
    h.events();
    let filler = || {
        Event::new(
            pacsguard_events::Actor {
                user: "watch".into(),
                uid: 0,
                sudo_user: None,
            },
            Action::Check,
            Outcome::Success,
            "a finding of the flood",
        )
    };
    while h.inbox.push(filler()).is_ok() {}
    let result = h
        .console
        .finish_passkey_registration(&auth, &key.register(&options, "x"), ip());
    assert!(
        matches!(result, Err(AuthError::Unrecorded(_))),
        "{result:?}"
    );
    assert!(!h.session(&session.token).enrolled);
}

/// A small file system (a tmpfs) mounted on a directory for the length of a test, that
/// the test can fill; unmounted when dropped. Mounting needs root.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount tmpfs");
        SmallDisk(at.to_path_buf())
    }

    /// Writes until the file system says it is full; the file that fills it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).expect("create");
        let block = vec![0xa5u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout == b"0\n")
}

/// Review r28-console2, issue 13: the record of a passkey's registration was queued
/// before the store's write, so a full disk that refused the write (answered as an
/// error) left "admin registered the passkey" on the trail for a passkey the store
/// never held. On a real full disk (a tmpfs) the registration fails and nothing of it is
/// recorded; with room again the same passkey registers, which it would not if the
/// console's binding of the account had moved to the row that was never written.
#[test]
fn a_passkey_registration_refused_by_a_full_disk_is_not_on_the_trail() {
    if !is_root() {
        eprintln!("skipped: mounting a small file system for the store needs root");
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let disk = SmallDisk::mount(home.path(), "8m");
    drop(pacsguard_store::Store::open(&home.path().join("store.sqlite")).expect("store"));
    let h = harness_in(home, ManualClock::new(START), Inbox::new());
    let token = h
        .console
        .issue_setup_token()
        .expect("issued")
        .expect("first");
    let session = h
        .console
        .setup(&token, "admin", PASSWORD, ip())
        .expect("setup");
    let auth = h.session(&session.token);
    let mut key = Authenticator::new(7);
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    let registration = key.register(&options, "YubiKey 5");
    h.events();

    let filler = disk.fill();
    let result = h
        .console
        .finish_passkey_registration(&auth, &registration, ip());
    assert!(result.is_err(), "the store cannot take it: {result:?}");
    let said: Vec<String> = h
        .events()
        .into_iter()
        .filter(|e| e.outcome == Outcome::Success || e.account_digest.is_some())
        .map(|e| e.detail)
        .collect();
    assert!(
        said.is_empty(),
        "the trail says what the store does not hold: {said:?}"
    );

    std::fs::remove_file(&filler).expect("room again");
    let options = h
        .console
        .begin_passkey_registration(&auth)
        .expect("options");
    let registration = key.register(&options, "YubiKey 5");
    let (_, session) = h
        .console
        .finish_passkey_registration(&auth, &registration, ip())
        .expect("registered with room")
        .expect("the first factor");
    assert!(h.session(&session.token).enrolled);
    let events = h.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.detail.contains("registered the passkey \"YubiKey 5\""))
            .count(),
        1,
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.finding.is_some()),
        "no alert: {events:?}"
    );
    drop(h);
    drop(disk);
}
