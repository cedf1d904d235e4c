//! Accounts, sign-in and sessions: the console's security core, without HTTP.
//!
//! * First start: no default password. A one-time setup token (256 bits, stored as its
//!   SHA-256, valid [`SETUP_TOKEN_LIFETIME`], spent in the transaction that creates the
//!   first administrator) is the only way in.
//! * Sign-in: name, password (Argon2id) and a TOTP code or a recovery code. An account
//!   that has not enrolled its second factor yet (the first administrator right after
//!   setup, an account an administrator just created) gets a session that reaches only
//!   the enrolment page.
//! * Sessions: opaque 256-bit tokens, stored as SHA-256, with a CSRF token of their own;
//!   ended after [`IDLE_SECONDS`] without a request and [`ABSOLUTE_SECONDS`] after sign-in.
//!   Every sign-in and enrolment issues a new token (no fixation).
//! * Every outcome is an event for the audit trail; an event that cannot be queued
//!   stops the action ([`AuthError::Unrecorded`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pacsguard_events::{
    Action, Actor, Event, Finding, FindingKind, Inbox, Outcome, Severity, escape_bytes,
};
use pacsguard_store::{AccountRow, ConsoleDb, StoreError};
use subtle::ConstantTimeEq as _;

use crate::clock::Clock;
use crate::guard::GuardState;
use crate::password::{self, PasswordError};
use crate::roles::Role;
use crate::secret;
use crate::throttle::{self, AddressThrottle};
use crate::totp;

/// Said on the trail at an enrolment of the first second factor, which ends every
/// session of the account: a session holds no record of how it was opened, so one
/// opened with the password only (before enrolment) would otherwise count as signed in
/// with both factors once the account has one (found in review: a thief who knew the
/// password before enrolment kept an administrator's session without the passkey).
pub(crate) const ENROLMENT_ENDS_SESSIONS: &str =
    "every session of the account opened before it ended (they had the password only)";

/// Sign-in pauses let go at [`throttle::MAX_TRACKED_ADDRESSES`], written rate-limited.
static RELEASED: crate::refusals::RefusalLog = crate::refusals::RefusalLog::new("pacsguard serve");

/// What a request does with its session ([`Console::authenticate_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionUse {
    /// A request that may change something (a POST): its session's last use must be
    /// renewed in the store, else it is refused (503 when the store cannot be written).
    Acts,
    /// A request that only reads (a GET): served also when the store cannot renew the
    /// session now (a full disk, review r29-console: every page was answered 503, and
    /// the people who must see what happens on the night the disk fills saw nothing).
    Reads,
}

/// Pages served without their session's renewal: said on the log, rate-limited.
static UNRENEWED: crate::refusals::RefusalLog = crate::refusals::RefusalLog::new("pacsguard serve");

/// How long the setup link printed at first start stays valid.
pub const SETUP_TOKEN_LIFETIME: i64 = 15 * 60;
/// A session unused this long ends.
pub const IDLE_SECONDS: i64 = 15 * 60;
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE_SECONDS: i64 = 12 * 3600;
/// Recovery codes issued at enrolment, each usable once.
pub const RECOVERY_CODES: usize = 10;
/// Bytes of a recovery code: 80 bits, 16 base32 characters.
const RECOVERY_CODE_BYTES: usize = 10;
/// Longest account name: 1 to 64 of `a-z 0-9 . _ -`, so names are unambiguous in the
/// trail and in a URL.
pub const MAX_NAME_BYTES: usize = 64;
/// Bytes of a refused name shown in the trail (it may be anything a client sent).
const MAX_SHOWN_ATTEMPT_BYTES: usize = 64;
/// Enrolments begun and not confirmed, remembered per session (one each); past this the
/// oldest are forgotten and must be begun again.
pub const MAX_PENDING_ENROLMENTS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Sign-in refused: one answer for every reason (unknown name, wrong password, wrong
    /// or replayed code, locked), so the answer tells an attacker nothing.
    #[error("sign-in failed")]
    SignInFailed,
    /// The setup link is unknown, spent or expired.
    #[error("this setup link is not valid (unknown, already used, or expired)")]
    SetupRefused,
    #[error("{0}")]
    Password(#[from] PasswordError),
    /// A form field a person can correct.
    #[error("{0}")]
    Invalid(String),
    /// The code did not confirm the enrolment.
    #[error("the code does not match; check the phone's clock and enter the current code")]
    WrongCode,
    /// The second factor was not confirmed for a decision (wrong, replayed, paused).
    #[error("the code was not accepted; enter the current code of your authenticator")]
    StepUpFailed,
    /// A decision without a second factor confirmed within the step-up window.
    #[error("confirm your second factor first (it counts for 5 minutes)")]
    StepUpNeeded,
    /// The event could not be queued for the trail: nothing was done.
    #[error("the audit trail cannot record this action, so it was not done: {0}")]
    Unrecorded(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The guard could not write the home's store or trail now (its disk full): nothing
    /// was done. Answered 503 like a [`StoreError::is_unavailable`].
    #[error("the guard cannot write the home's store or trail now: {0}")]
    Unavailable(String),
    #[error("the system's random generator failed: {0}")]
    Random(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A decision written and recorded (or queued for the trail) but not in effect yet:
    /// it settles without the person (a host's profile approval awaiting its record on
    /// the trail, issue 14). Said to the person as it is, not as a failure.
    #[error("{0}")]
    Awaiting(String),
    /// A decision on something shown to the person that changed since it was shown (a
    /// host's standing refusal refused anew, issue 14): nothing was done; the page answers
    /// 409 Conflict, the CLI exits 2.
    #[error("{0}")]
    Changed(String),
}

/// A request's authenticated session.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub account: i64,
    pub name: String,
    pub role: Role,
    /// Whether the second factor is enrolled; if not, only enrolment is open.
    pub enrolled: bool,
    pub csrf: String,
    pub(crate) token_hash: Vec<u8>,
    /// When this session confirmed its second factor for decisions, read with the
    /// session and checked against its seal (review s14-r04).
    pub(crate) stepped_up_at: Option<i64>,
}

/// A new session: the cookie's value.
#[derive(Debug)]
pub struct NewSession {
    pub token: String,
    pub enrolled: bool,
}

/// What a person needs to enrol: shown once.
#[derive(Clone, Debug)]
pub struct Enrolment {
    pub secret_base32: String,
    pub uri: String,
}

/// An enrolment begun and not confirmed, by session digest: when, and the secret.
type PendingEnrolment = (i64, Vec<u8>);

/// The console's state: the store's tables, the clock, the trail's inbox.
#[derive(Debug)]
pub struct Console {
    pub(crate) db: Mutex<ConsoleDb>,
    pub(crate) clock: Arc<dyn Clock>,
    inbox: Inbox,
    uid: u32,
    /// The store file: the path of `account-locked` findings.
    pub(crate) store_path: PathBuf,
    /// Issuer shown in authenticator apps: "PacsGuard HOST".
    issuer: String,
    addresses: Mutex<AddressThrottle>,
    pub(crate) pending: Mutex<HashMap<Vec<u8>, PendingEnrolment>>,
    pub guard: Arc<GuardState>,
    /// The guard's hands: what decisions act on (`None`: decisions are refused).
    pub(crate) guardian: Option<Arc<dyn crate::decide::Guardian>>,
    /// Passkeys: the relying party and the challenges issued (see [`crate::passkey`]).
    pub(crate) passkeys: crate::passkey::Passkeys,
    /// Vault copies being read now ([`crate::quarantine::MAX_VAULT_READS`]).
    pub(crate) vault_reads: Mutex<usize>,
    /// The digest of each request waiting for a second approver that this process asked
    /// (at most [`crate::decide::MAX_PENDING_ACCEPTS`]): what its confirmation is checked
    /// against before the trail, which root can edit as well as the store.
    pub(crate) asked: Mutex<HashMap<u64, String>>,
    /// The accounts' digests the trail holds ([`crate::bound`]).
    pub(crate) bindings: Mutex<crate::bound::Bindings>,
    /// What the hold of the store open now will record and change in memory once it
    /// commits ([`crate::held`]; sessions' ends: [`crate::closing`], review s14-r04).
    pub(crate) held: Mutex<Option<crate::held::HeldChanges>>,
    /// The alerts of edits the store refused to undo, rate-limited
    /// ([`crate::undo_refused`]).
    pub(crate) undo_refused: Mutex<crate::undo_refused::UndoRefusedAlerts>,
    /// The connections to the fleet's tables when not in the home's store (`[console]
    /// fleet_store`: PostgreSQL), shared with the fleet listener (see
    /// [`Console::with_fleet`]).
    fleet: Option<Arc<pacsguard_store::FleetPool>>,
    /// This process's random instance value and the console id it holds on the shared
    /// fleet store ([`crate::identity`]).
    pub(crate) identity: crate::identity::Identity,
    /// `[console] needs_second_host_approver`: approving a host's profile generation
    /// needs a second, different approver ([`crate::host_approvals`]).
    pub(crate) second_host_approver: bool,
    /// Where people open this console (`https://HOST[:PORT]`, as `serve` prints it or
    /// `[console] origin`): the links it hands out are built on it, never on a request's
    /// `Host` header, which whoever sends the request chooses (review r24-console: an
    /// invitation link pointing at an attacker's host, by DNS rebinding or a forged
    /// header, gave the attacker the link's token).
    public_origin: Option<String>,
    /// The host names (lowercase, no port) this console answers to besides IP
    /// addresses: a request naming another in its `Host` header is refused
    /// ([`crate::http`]: DNS rebinding). `None`: every name (the router alone, in tests).
    known_names: Option<Vec<String>>,
    /// Who is revoking hosts of a name through this process now (`console revoke-host`
    /// relayed to `serve`): the revocation's record names that person, also when the
    /// listener's silence check finds the store's row first
    /// ([`crate::host_revocations`], review r27-fleet).
    pub(crate) revokers: Mutex<HashMap<String, crate::host_revocations::Revoker>>,
    /// The digest of a host's standing refusal as the fleet's listener names it, for the
    /// pages to tell whether an acknowledgement is still in effect (set by `serve`;
    /// unset: none is shown acknowledged).
    pub(crate) standing_digest: std::sync::OnceLock<crate::host_acknowledgements::StandingJudge>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, AuthError> {
    m.lock()
        .map_err(|_| AuthError::Internal("a lock was poisoned by a panic".into()))
}

fn random(n: usize) -> Result<Vec<u8>, AuthError> {
    secret::random_bytes(n).map_err(|e| AuthError::Random(e.to_string()))
}

fn token() -> Result<String, AuthError> {
    secret::new_token().map_err(|e| AuthError::Random(e.to_string()))
}

/// An attempted name as the trail shows it: escaped, bounded.
fn shown(name: &str) -> String {
    let bytes = name.as_bytes();
    let cut = &bytes[..bytes.len().min(MAX_SHOWN_ATTEMPT_BYTES)];
    let mut text = escape_bytes(cut);
    if bytes.len() > MAX_SHOWN_ATTEMPT_BYTES {
        text.push('…');
    }
    text
}

/// Whether `name` is a valid account name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// A recovery code as typed: case, spaces and dashes do not matter.
fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

impl Console {
    pub fn new(
        db: ConsoleDb,
        clock: Arc<dyn Clock>,
        inbox: Inbox,
        store_path: PathBuf,
        host: &str,
        guard: Arc<GuardState>,
    ) -> Result<Console, AuthError> {
        // The failures counted per address before a restart still count.
        let addresses =
            AddressThrottle::from_rows(db.address_failures(throttle::MAX_TRACKED_ADDRESSES)?);
        // A first start makes the console's id before any account exists, so an id found
        // missing later, beside accounts, was deleted: raised when it is claimed
        // (`crate::identity`), never taken quietly as a first start. A home of a version
        // before console ids takes its id at start, when the trail shows no version
        // with them ran (`end_unsealed_at_start`, review s18-r13).
        if db.account_count()? == 0 {
            db.stored_console_id()?;
        }
        Ok(Console {
            db: Mutex::new(db),
            clock,
            inbox,
            uid: pacsguard_events::process_uid(),
            store_path,
            issuer: format!("PacsGuard {host}"),
            addresses: Mutex::new(addresses),
            pending: Mutex::new(HashMap::new()),
            guard,
            guardian: None,
            passkeys: crate::passkey::Passkeys::default(),
            vault_reads: Mutex::new(0),
            asked: Mutex::new(HashMap::new()),
            bindings: Mutex::new(crate::bound::Bindings::default()),
            held: Mutex::new(None),
            undo_refused: Mutex::new(crate::undo_refused::UndoRefusedAlerts::default()),
            fleet: None,
            identity: crate::identity::Identity::new()?,
            second_host_approver: false,
            public_origin: None,
            known_names: None,
            revokers: Mutex::new(HashMap::new()),
            standing_digest: std::sync::OnceLock::new(),
        })
    }

    /// The fleet's tables on another store than the home's (the fleet listener's, from
    /// `[console] fleet_store`), so the Hosts page and its approvals read and write
    /// what the listener does. The home's store is the default.
    pub fn with_fleet_store(self, at: pacsguard_store::FleetStoreAt) -> Console {
        self.with_fleet_pool(pacsguard_store::FleetPool::new(at))
    }

    /// Where people open this console, for the links it hands out (see the field).
    pub fn with_public_origin(mut self, origin: &str) -> Console {
        self.public_origin = Some(origin.trim_end_matches('/').to_string());
        self
    }

    /// The host names this console answers to besides IP addresses (see the field).
    pub fn with_known_names(mut self, names: &[String]) -> Console {
        self.known_names = Some(names.iter().map(|n| host_name(n)).collect());
        self
    }

    /// Whether a request whose `Host` header is `host` is for this console: an IP
    /// address (no page of another site is served under one: a DNS rebinding attack
    /// needs a name of its own), or one of its names.
    pub fn answers_to(&self, host: &str) -> bool {
        let Some(names) = &self.known_names else {
            return true;
        };
        let name = host_name(host);
        name.parse::<IpAddr>().is_ok() || names.contains(&name)
    }

    /// The enrolment link of an invitation's `token`: on the console's public origin,
    /// or a path alone when it has none (the administrator adds where they opened it).
    pub fn invitation_link(&self, token: &str) -> String {
        self.link_on_origin(&format!("/welcome?token={token}"))
    }

    /// A link the console hands out (`path` with its query): on its public origin, or a
    /// path alone when it has none. Never on a request's `Host` header (see the field).
    pub(crate) fn link_on_origin(&self, path: &str) -> String {
        format!("{}{path}", self.public_origin.as_deref().unwrap_or(""))
    }

    /// Four eyes for host approvals (`[console] needs_second_host_approver`): a host's
    /// profile generation is signed only once a second, different approver confirms
    /// the first one's approval.
    pub fn with_second_host_approver(mut self, needed: bool) -> Console {
        self.second_host_approver = needed;
        self
    }

    /// As [`Console::with_fleet_store`], sharing the pool of the fleet listener: one
    /// bound on the connections of one console.
    pub fn with_fleet_pool(mut self, pool: Arc<pacsguard_store::FleetPool>) -> Console {
        // Held on the store it was claimed on, if any: claimed again on this one.
        self.identity = self.identity.unclaimed();
        self.fleet = match pool.at() {
            pacsguard_store::FleetStoreAt::Sqlite(_) => None,
            _ => Some(pool),
        };
        self
    }

    /// Runs `work` on the fleet's store: a connection of the configured one's pool
    /// (connected at first use, so a database down when `serve` starts is an error of
    /// the page, not of the start; each call bounded by the store's deadlines, and a
    /// stuck call holds up its own page only), else the console's own connection to
    /// the home's store.
    /// Whether the fleet's tables are on a store other consoles may share (PostgreSQL).
    pub(crate) fn fleet_shared(&self) -> bool {
        self.fleet.is_some()
    }

    pub(crate) fn with_fleet<R>(
        &self,
        work: impl FnOnce(&mut dyn pacsguard_store::FleetStore) -> Result<R, AuthError>,
    ) -> Result<R, AuthError> {
        let Some(pool) = &self.fleet else {
            let mut db = lock(&self.db)?;
            return work(&mut *db);
        };
        let mut store = pool.get()?;
        work(&mut *store)
    }

    /// Ends every session past its idle or absolute limit, whether or not its browser
    /// comes back, and records how many: the store keeps no dead token.
    pub fn purge_expired_sessions(&self) -> Result<usize, AuthError> {
        let now = self.now();
        // Emergency accesses first: each end is a record of its own (110138).
        self.end_expired_emergencies(now)?;
        let purged = {
            let db = lock(&self.db)?;
            let mut ended = 0;
            for session in db.live_sessions(None)? {
                if !session.malformed.is_empty() {
                    // Read as 0, it would end as idle with a plain record (review
                    // s15-r13): the edit it is goes unsaid unless its holder comes back.
                    let mut event = Event::of_finding(
                        self.actor(&session.name),
                        Finding::new(
                            self.store_path.clone(),
                            FindingKind::ConsoleSessionAltered,
                            Severity::Alert,
                            format!(
                                "console: a session of {} is not as the console wrote it (its {} hold(s) a value of another type in the store): the store was edited; the session was ended",
                                session.name,
                                session.malformed.join(", ")
                            ),
                        ),
                    );
                    event.action = Action::Logout;
                    // An alert: its room is kept before the row is ended (review
                    // r30-console2, [`Console::close_session`]); refused, the row stays
                    // for the next sweep.
                    self.close_session(
                        &db,
                        &session.token_hash,
                        session.account,
                        session.created,
                        event,
                    )?;
                    ended += 1;
                    continue;
                }
                let why = if now - session.last_seen >= IDLE_SECONDS {
                    format!("idle for {} minutes", IDLE_SECONDS / 60)
                } else if now - session.created >= ABSOLUTE_SECONDS {
                    format!("{} hours after sign-in", ABSOLUTE_SECONDS / 3600)
                } else {
                    continue;
                };
                let event = self.session_end_event(
                    &session.name,
                    format!("the session of {} ended: {why}", session.name),
                );
                self.close_session(
                    &db,
                    &session.token_hash,
                    session.account,
                    session.created,
                    event,
                )?;
                ended += 1;
            }
            // Rows of no account (deleted from the store) go too, each end recorded as
            // at a request (review s11-r13: deleted unrecorded, a row put back with its
            // account was kept at the next start).
            for (token_hash, account, created) in db.orphan_sessions()? {
                let event = self.event(
                    "sessions",
                    Action::Logout,
                    Outcome::Success,
                    format!("a session of account {account} ended: the account is no longer in the store"),
                );
                self.close_session(&db, &token_hash, account, created, event)?;
                ended += 1;
            }
            ended + db.purge_sessions(now - IDLE_SECONDS, now - ABSOLUTE_SECONDS)?
        };
        self.prune_sessions()?;
        if purged > 0 {
            self.record(self.event(
                "sessions",
                Action::Logout,
                Outcome::Success,
                format!(
                    "{purged} expired session(s) ended (idle {} minutes or {} hours after sign-in)",
                    IDLE_SECONDS / 60,
                    ABSOLUTE_SECONDS / 3600
                ),
            ))?;
        }
        // The counts of edited rows not used again since their interval (review
        // r31-console): this sweep runs at every sign-in and every verification of the
        // trail, so no count waits for a use that never comes.
        self.say_undo_refused_counts()?;
        Ok(purged)
    }

    /// Counts a failed sign-in against an address, in memory and in the store; true
    /// when it reached the lockout.
    pub(crate) fn fail_address(&self, addr: &str, now: i64) -> Result<bool, AuthError> {
        Ok(self.count_failure(addr, None, now)?.0)
    }

    /// Counts a failed sign-in against an address and, when the name is an account's,
    /// against the account (read, counted and written under the one hold, from the count
    /// as it is now: two failures checked at once both counted, and a lockout never
    /// shortened, review r23), in one transaction of the store: an unknown name and a wrong password cost the same one commit (the
    /// account's count was a second commit, about 7 ms here: a wrong password to a
    /// real name answered measurably later than an unknown name, review r23). Whether
    /// the address reached its pause, and the account's count and whether it locked.
    pub(crate) fn count_failure(
        &self,
        addr: &str,
        account: Option<i64>,
        now: i64,
    ) -> Result<(bool, Option<(i64, bool)>), AuthError> {
        let key = throttle::address_key(addr);
        let addr = key.as_str();
        let (locked, entry, forgotten, released) = {
            let mut addresses = lock(&self.addresses)?;
            let locked = addresses.fail(addr, now);
            (
                locked,
                addresses.entry(addr),
                addresses.take_forgotten(),
                addresses.take_released(),
            )
        };
        // A pause let go to make room (the table full of running pauses: failures from
        // very many addresses at once) is said on the service's log, rate-limited.
        for address in &released {
            RELEASED.refused(&format!(
                "to keep the sign-in pause of {address}: MAX_TRACKED_ADDRESSES ({}) addresses are paused or delayed, and its pause was the oldest; it was let go for {addr}",
                throttle::MAX_TRACKED_ADDRESSES
            ));
        }
        let mut guard = lock(&self.db)?;
        let db = guard.hold()?;
        for address in forgotten {
            db.forget_address(&address)?;
        }
        if let Some((failures, until)) = entry {
            db.set_address_failures(addr, failures, until)?;
        }
        // The same read for an unknown name (an id no account has), so both paths do
        // the same work before the one commit.
        let row = db.account_by_id(account.unwrap_or(-1))?;
        let counted = match row {
            Some(row) => Some(Self::counted_failure(&db, &row, now)?),
            None => None,
        };
        db.commit()?;
        Ok((locked, counted))
    }

    /// One more failure of the account `account` alone, not of the address it came
    /// from ([`crate::counted::Counts::Account`]): its count and whether it locked the
    /// account (`None`: no such account).
    pub(crate) fn count_account_failure(
        &self,
        account: i64,
        now: i64,
    ) -> Result<Option<(i64, bool)>, AuthError> {
        let mut guard = lock(&self.db)?;
        let db = guard.hold()?;
        let counted = match db.account_by_id(account)? {
            Some(row) => Some(Self::counted_failure(&db, &row, now)?),
            None => None,
        };
        db.commit()?;
        Ok(counted)
    }

    /// One more failure of the account `row` (as read under the caller's hold of the
    /// store's lock), written: its count and whether it locked the account. The account
    /// stays closed at least as long as it was.
    fn counted_failure(
        db: &ConsoleDb,
        row: &AccountRow,
        now: i64,
    ) -> Result<(i64, bool), AuthError> {
        let (failures, until, locked) =
            throttle::after_failure(row.failures, now, throttle::MAX_ACCOUNT_FAILURES);
        db.set_failures(row.id, failures, until.max(row.locked_until))?;
        Ok((failures, locked))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The store file: the path of the console's own findings.
    pub(crate) fn store_path(&self) -> &std::path::Path {
        &self.store_path
    }

    /// Whether sign-in from `addr` is paused now (its failures reached the limit).
    pub(crate) fn address_closed(&self, addr: &str, now: i64) -> Result<bool, AuthError> {
        Ok(lock(&self.addresses)?.is_closed(&throttle::address_key(addr), now))
    }

    /// When sign-in from `address` is paused now: the attempt of `name` recorded as
    /// refused unchecked, and true (the caller answers the one refusal without hashing).
    pub fn refuse_if_address_paused(&self, name: &str, address: IpAddr) -> Result<bool, AuthError> {
        let addr = address.to_string();
        if !self.address_closed(&addr, self.now())? {
            return Ok(false);
        }
        self.record_refusal(self.event(
            name,
            Action::Login,
            Outcome::Failure,
            format!(
                "sign-in of {} from {addr} refused unchecked: sign-in is paused for this address",
                shown(name)
            ),
        ))?;
        Ok(true)
    }

    /// Counts a failed sign-in of any kind against `addr`; its lockout is an alert.
    pub(crate) fn count_address_failure(&self, addr: &str, now: i64) -> Result<(), AuthError> {
        if self.fail_address(addr, now)? {
            self.locked(
                addr,
                format!(
                    "sign-in from {} paused for {} minutes after {} failed sign-ins",
                    throttle::address_key(addr),
                    throttle::LOCKOUT_SECONDS / 60,
                    throttle::MAX_ADDRESS_FAILURES
                ),
            )?;
        }
        Ok(())
    }

    pub(crate) fn actor(&self, name: &str) -> Actor {
        Actor {
            user: format!("console:{name}"),
            uid: self.uid,
            sudo_user: None,
        }
    }

    /// Queues an event for the trail; failing that, the action is refused. Inside a hold
    /// of the store a record of success waits for the hold's commit ([`crate::held`]).
    pub(crate) fn record(&self, event: Event) -> Result<(), AuthError> {
        let Some(event) = self.held_back(event)? else {
            return Ok(());
        };
        self.inbox
            .push(event)
            .map_err(|e| AuthError::Unrecorded(e.to_string()))
    }

    /// The trail's inbox.
    pub(crate) fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    pub(crate) fn event(
        &self,
        who: &str,
        action: Action,
        outcome: Outcome,
        detail: String,
    ) -> Event {
        Event::new(
            self.actor(who),
            action,
            outcome,
            format!("console: {detail}"),
        )
    }

    /// At start: if no account exists, a new setup token (replacing any earlier one),
    /// returned once to be printed; else `None`.
    pub fn issue_setup_token(&self) -> Result<Option<String>, AuthError> {
        let db = lock(&self.db)?;
        if db.account_count()? > 0 {
            return Ok(None);
        }
        let token = token()?;
        db.set_setup_token(&secret::digest(&token), self.now() + SETUP_TOKEN_LIFETIME)?;
        drop(db);
        self.record(self.event(
            "setup",
            Action::Account,
            Outcome::Success,
            format!(
                "no account exists: a one-time setup link was issued, valid for {} minutes",
                SETUP_TOKEN_LIFETIME / 60
            ),
        ))?;
        Ok(Some(token))
    }

    /// Whether a setup token is the outstanding, unexpired one (for showing the form).
    pub fn setup_token_valid(&self, token: &str) -> Result<bool, AuthError> {
        if !secret::is_token(token) {
            return Ok(false);
        }
        let db = lock(&self.db)?;
        Ok(match db.setup_token()? {
            Some((hash, expires)) => {
                bool::from(hash.ct_eq(&secret::digest(token))) && expires > self.now()
            }
            None => false,
        })
    }

    /// Creates the first administrator with the setup token, and a session that can only
    /// enrol the second factor.
    pub fn setup(
        &self,
        token: &str,
        name: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        if !self.setup_token_valid(token)? {
            return Err(self.link_refused(
                "setup",
                format!("a setup link was refused (unknown, used or expired) from {address}"),
            ));
        }
        if !valid_name(name) {
            return Err(AuthError::Invalid(format!(
                "a name is 1 to {MAX_NAME_BYTES} characters of a-z, 0-9, '.', '_' and '-'"
            )));
        }
        password::check_new_for(password, name)?;
        let hash = password::hash(password)?;
        self.ensure_bound()?;
        // Recorded before the account exists: a crash in between leaves a record of an
        // attempt, never an account without a record.
        self.record(self.event(
            name,
            Action::Account,
            Outcome::Started,
            format!(
                "first administrator {name} being created with the one-time setup link from {address}"
            ),
        ))?;
        let now = self.now();
        // The account, its record's read and the record in one transaction: no other
        // writer edits the new row before it is bound (review s11-r13).
        let mut guard = lock(&self.db)?;
        let mut db = guard.hold()?;
        let said = self.hold_begins()?;
        let id = db.create_first_account(
            &secret::digest(token),
            name,
            Role::Administrator.as_str(),
            &hash,
            now,
        )?;
        let Some(id) = id else {
            drop(db);
            drop(guard);
            return Err(self.refused_with(
                self.event(
                    name,
                    Action::Account,
                    Outcome::Failure,
                    "the setup link was spent or expired meanwhile: no account created".into(),
                ),
                AuthError::SetupRefused,
            ));
        };
        self.record(self.event(
            name,
            Action::Account,
            Outcome::Success,
            format!(
                "first administrator {name} created; the setup link is spent; the second factor must be enrolled before anything else"
            ),
        ))?;
        self.rebind_under(&db, id, "created with the one-time setup link")?;
        said.commit(db)?;
        drop(guard);
        self.new_session(id, false, address)
    }

    pub(crate) fn new_session(
        &self,
        account: i64,
        enrolled: bool,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.new_session_with(account, enrolled, address, None)
    }

    /// [`Console::new_session`], its opening bound to the trail on `opening` (the record
    /// that opens it, recorded here) rather than on a record of its own.
    pub(crate) fn new_session_with(
        &self,
        account: i64,
        enrolled: bool,
        address: IpAddr,
        opening: Option<Event>,
    ) -> Result<NewSession, AuthError> {
        self.new_session_since(account, enrolled, address, opening, self.now())
    }

    /// [`Console::new_session_with`] for a sign-in made at `signed_in` (a new token
    /// for a session that goes on: a step-up), so the absolute limit counts from the
    /// sign-in, not from the new token (review r23: stepping up, with the second factor
    /// alone, before each 12 hours kept one sign-in alive for ever).
    pub(crate) fn new_session_since(
        &self,
        account: i64,
        enrolled: bool,
        address: IpAddr,
        opening: Option<Event>,
        signed_in: i64,
    ) -> Result<NewSession, AuthError> {
        self.new_session_if(account, enrolled, address, opening, signed_in, &|_| Ok(()))
    }

    /// [`Console::new_session_since`], inserted only if `still` holds under the same
    /// hold of the store's lock as the insert: what was checked before (a password
    /// verified against the hash read then, the session a step-up replaces) is still so.
    /// A password change or a disable commits under that lock and ends every session of
    /// the account; a sign-in verified against the old row just before it would
    /// otherwise insert its session just after, and that session would survive the
    /// change (review r24-console).
    pub(crate) fn new_session_if(
        &self,
        account: i64,
        enrolled: bool,
        address: IpAddr,
        opening: Option<Event>,
        signed_in: i64,
        still: &dyn Fn(&ConsoleDb) -> Result<(), AuthError>,
    ) -> Result<NewSession, AuthError> {
        let token = token()?;
        let csrf = token_csrf()?;
        let hash = secret::digest(&token);
        let now = self.now();
        // Room for its opening on the trail first, queued once the row is written (review
        // r29-console: queued before, a row the store refused, a full disk, left "signed
        // in" on the trail for a session that never was). A session row the trail does
        // not know of is refused ([`crate::bound`]).
        let (opening, digest) = self.session_opening(&hash, account, signed_in, opening)?;
        let room = self.room_for_record()?;
        let address = address.to_string();
        let seal = crate::session_seal::seal(
            &token,
            &crate::session_seal::SealedRow {
                token_hash: &hash,
                account,
                created: signed_in,
                last_seen: now,
                csrf: &csrf,
                address: &address,
            },
        )?;
        let db = lock(&self.db)?;
        if let Err(refused) = still(&db) {
            drop(db);
            drop(room);
            let detail =
                format!("a session of account {account} was not opened after all: {refused}");
            return Err(self.refused_with(
                self.event("sessions", Action::Logout, Outcome::Success, detail),
                refused,
            ));
        }
        self.keep_session(&hash, digest)?;
        db.insert_session_since(&hash, account, &csrf, signed_in, now, &address, &seal)?;
        crate::held::record_in(room, opening)?;
        Ok(NewSession { token, enrolled })
    }

    /// Signs in with name, password and (once enrolled) a TOTP or recovery code. Ends the
    /// session `previous` (the cookie the browser still had), so a token is never reused
    /// across sign-ins.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        code: &str,
        address: IpAddr,
        previous: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        self.login_with(
            name,
            password,
            crate::passkey::SecondFactor::Code(code),
            address,
            previous,
        )
    }

    /// [`Console::login`] with either second factor (a code, or a passkey's assertion).
    pub(crate) fn login_with(
        &self,
        name: &str,
        password: &str,
        factor: crate::passkey::SecondFactor<'_>,
        address: IpAddr,
        previous: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        self.purge_expired_sessions()?;
        let now = self.now();
        let addr = address.to_string();
        let address_closed = self.address_closed(&addr, now)?;
        self.ensure_bound()?;
        let account = if valid_name(name) {
            lock(&self.db)?.account_by_name(name)?
        } else {
            None
        };
        let Some(account) = account else {
            password::dummy_verify(password);
            return self.refuse(None, name, &addr, "no such account", address_closed);
        };
        if address_closed || account.locked_until > now {
            password::dummy_verify(password);
            self.record_refusal(self.event(
                name,
                Action::Login,
                Outcome::Failure,
                format!(
                    "sign-in of {} from {addr} refused unchecked: sign-in is paused for {}",
                    shown(name),
                    if address_closed {
                        "this address"
                    } else {
                        "this account"
                    }
                ),
            ))?;
            return Err(AuthError::SignInFailed);
        }
        if !password::verify(password, &account.password_hash) {
            return self.refuse(Some(&account), name, &addr, "wrong password", false);
        }
        // An account inserted or promoted in the store is refused like any failure (its
        // alert is on the trail), after the password's cost, so its timing tells nothing.
        let as_recorded = self.account_read_as_recorded(&*lock(&self.db)?, &account)?;
        if !as_recorded {
            return self.refuse(
                Some(&account),
                name,
                &addr,
                "the account is not as the trail recorded it",
                false,
            );
        }
        // Disabled: the same refusal as a wrong password, after the same cost, so the
        // answer tells nothing of the account (issue 13).
        if account.disabled {
            return self.refuse(
                Some(&account),
                name,
                &addr,
                "the account is disabled",
                false,
            );
        }
        let mut how = String::new();
        if account.enrolled() {
            match self.check_factor(&account, factor, now, None)? {
                Ok(detail) => how = detail,
                Err(reason) => return self.refuse(Some(&account), name, &addr, &reason, false),
            }
        }
        let role = Role::parse(&account.role)
            .ok_or_else(|| AuthError::Internal(format!("account {name}: unknown role")))?;
        lock(&self.db)?.set_failures(account.id, 0, 0)?;
        let enrolled = account.enrolled();
        let opening = self.event(
            name,
            Action::Login,
            Outcome::Success,
            if enrolled {
                format!("{name} signed in ({}) from {addr}{how}", role.as_str())
            } else {
                format!(
                    "{name} signed in with the password only, from {addr}: the session reaches only the enrolment of the second factor"
                )
            },
        );
        let verified = account.password_hash.clone();
        let session = self.new_session_if(
            account.id,
            enrolled,
            address,
            Some(opening),
            self.now(),
            &|db| still_as_verified(db, account.id, &verified),
        )?;
        // Only a sign-in that succeeded replaces the browser's session (review s34: a
        // wrong password ended it, and the trail said a new sign-in had replaced it).
        // Should its end fail, the new token is never handed out and lapses unused.
        if let Some(previous) = previous.filter(|t| secret::is_token(t)) {
            self.end_replaced_session(previous)?;
        }
        Ok(session)
    }

    /// Ends the session a browser still had when it signs in again (a token is never
    /// reused across sign-ins), and records whose it was.
    fn end_replaced_session(&self, token: &str) -> Result<(), AuthError> {
        let hash = secret::digest(token);
        let db = lock(&self.db)?;
        let Some(session) = db.session(&hash)? else {
            return Ok(());
        };
        let name = db
            .account_by_id(session.account)?
            .map_or_else(|| "an account since removed".to_string(), |a| a.name);
        let event = self.event(
            &name,
            Action::Logout,
            Outcome::Success,
            format!("the session of {name} ended: a new sign-in from the same browser replaced it"),
        );
        self.close_session(&db, &hash, session.account, session.created, event)?;
        Ok(())
    }

    /// Checks a TOTP code (spending its step) or a recovery code (spending it). The
    /// outer error is a store failure; the inner one the reason for the trail.
    pub(crate) fn second_factor(
        &self,
        account: &AccountRow,
        secret: &[u8],
        code: &str,
        now: i64,
    ) -> Result<Result<String, &'static str>, AuthError> {
        let code = code.trim();
        if code.len() == totp::DIGITS as usize {
            let Some(step) = totp::matching_step(secret, code, now) else {
                return Ok(Err("wrong code"));
            };
            if !lock(&self.db)?.spend_totp_step(account.id, step)? {
                return Ok(Err("a code already used (replay)"));
            }
            return Ok(Ok(String::new()));
        }
        let normalised = normalise_recovery(code);
        if normalised.is_empty() {
            return Ok(Err("no code"));
        }
        let db = lock(&self.db)?;
        if db.spend_recovery_code(account.id, &secret::digest(&normalised))? {
            let left = db.unused_recovery_codes(account.id)?;
            return Ok(Ok(format!(" with a recovery code ({left} left)")));
        }
        Ok(Err("wrong recovery code"))
    }

    /// Counts a failure against the address and the account, records it, and answers
    /// the one uniform refusal.
    fn refuse(
        &self,
        account: Option<&AccountRow>,
        name: &str,
        addr: &str,
        reason: &str,
        address_closed: bool,
    ) -> Result<NewSession, AuthError> {
        let now = self.now();
        // A refusal the trail cannot take is answered as not recorded (the same for
        // every name, known or not: each is recorded alike).
        if address_closed {
            self.record_refusal(self.event(
                name,
                Action::Login,
                Outcome::Failure,
                format!(
                    "sign-in of {} from {addr} refused unchecked: sign-in is paused for this address",
                    shown(name)
                ),
            ))?;
            return Err(AuthError::SignInFailed);
        }
        // Counted (always), and at the limit the lockout is an alert.
        let (address_locked, counted) = self.count_failure(addr, account.map(|a| a.id), now)?;
        self.record_refusal(self.event(
            name,
            Action::Login,
            Outcome::Failure,
            format!("sign-in of {} from {addr} failed: {reason}", shown(name)),
        ))?;
        if let Some(account) = account
            && let Some((failures, true)) = counted
        {
            self.locked(
                &account.name,
                format!(
                    "account {} locked for {} minutes after {failures} failed sign-ins (the last from {addr})",
                    account.name,
                    throttle::LOCKOUT_SECONDS / 60
                ),
            )?;
        }
        if address_locked {
            self.locked(
                name,
                format!(
                    "sign-in from {} paused for {} minutes after {} failed sign-ins",
                    throttle::address_key(addr),
                    throttle::LOCKOUT_SECONDS / 60,
                    throttle::MAX_ADDRESS_FAILURES
                ),
            )?;
        }
        Err(AuthError::SignInFailed)
    }

    /// Records the lockout alert `detail`. The lockout stands either way; an alert the
    /// trail cannot take is said on the service's log and given back as
    /// [`AuthError::Unrecorded`], so the request says the security team was not told.
    pub(crate) fn locked(&self, who: &str, detail: String) -> Result<(), AuthError> {
        self.record_refusal(self.lockout_alert(who, detail))
    }

    /// The alert that a sign-in pause (of an account or an address) began.
    pub(crate) fn lockout_alert(&self, who: &str, detail: String) -> Event {
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::AccountLocked,
            Severity::Alert,
            format!("console: {detail}"),
        );
        let mut event = Event::of_finding(self.actor(who), finding);
        event.action = Action::Login;
        event
    }

    /// Records a request refused for its role. The refusal stands either way; a record
    /// the trail cannot take is [`AuthError::Unrecorded`], for the request to say so.
    pub fn denied(
        &self,
        auth: &Authenticated,
        method: &str,
        path: &str,
        needed: Role,
    ) -> Result<(), AuthError> {
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::AccessDenied,
            Severity::Warning,
            format!(
                "console: {} ({}) was refused {method} {path}: it needs the role {}",
                auth.name,
                auth.role.as_str(),
                needed.as_str()
            ),
        );
        self.record_refusal(Event::of_finding(self.actor(&auth.name), finding))
    }

    /// The session of a cookie's token, if it is valid now; an expired one is ended and
    /// its end recorded. Its last use is renewed in the store, or the request refused.
    pub fn authenticate(&self, token: &str) -> Result<Option<Authenticated>, AuthError> {
        self.authenticate_for(token, SessionUse::Acts)
    }

    /// [`Console::authenticate`] for a request that `used` the session so: one that only
    /// reads is served when the store cannot renew the session now ([`SessionUse::Reads`]).
    pub fn authenticate_for(
        &self,
        token: &str,
        used: SessionUse,
    ) -> Result<Option<Authenticated>, AuthError> {
        if !secret::is_token(token) {
            return Ok(None);
        }
        let hash = secret::digest(token);
        self.ensure_bound()?;
        let db = lock(&self.db)?;
        let Some(session) = db.session(&hash)? else {
            return Ok(None);
        };
        let Some(account) = db.account_by_id(session.account)? else {
            // A row whose account was edited to one that does not exist is an edit of
            // the store like any other (review s14-r04: it ended with a plain record,
            // no alert): the row against its opening first.
            let name = format!("account {}", session.account);
            if !self.session_as_recorded(&db, &hash, &session, &name)? {
                return Ok(None);
            }
            // Its end recorded too: the account and the row put back later are refused.
            let event = self.event(
                "sessions",
                Action::Logout,
                Outcome::Success,
                format!(
                    "a session of account {} ended: the account is no longer in the store",
                    session.account
                ),
            );
            self.close_session(&db, &hash, session.account, session.created, event)?;
            return Ok(None);
        };
        // Promoted (or planted) in the store behind the console's back: its sessions end.
        // The row read here (its role is what the request may do) is the one checked.
        if !self.account_read_as_recorded(&db, &account)? {
            self.close_sessions_of(
                &db,
                account.id,
                &account.name,
                "the account is not as the audit trail recorded it",
            )?;
            return Ok(None);
        }
        // A session row planted for an account as recorded: refused and ended.
        if !self.session_as_recorded(&db, &hash, &session, &account.name)? {
            return Ok(None);
        }
        // Disabling ends every session at once; one found still alive (opened in a race
        // with the disable) ends at its first request.
        if account.disabled {
            self.close_sessions_of(&db, account.id, &account.name, "the account is disabled")?;
            return Ok(None);
        }
        // Its last use, CSRF token and address as the console sealed them: checked
        // before any of them is trusted (the idle limit reads `last_seen`).
        if !self.session_seal_holds(&db, token, &hash, &session, &account.name)? {
            return Ok(None);
        }
        let now = self.now();
        let expired = if now - session.last_seen >= IDLE_SECONDS {
            Some(format!("idle for {} minutes", IDLE_SECONDS / 60))
        } else if now - session.created >= ABSOLUTE_SECONDS {
            Some(format!("{} hours after sign-in", ABSOLUTE_SECONDS / 3600))
        } else if account.name == crate::breakglass::BREAK_GLASS_ACCOUNT
            && now - session.created >= crate::breakglass::BREAK_GLASS_SECONDS
        {
            Some(format!(
                "its {} minutes are over",
                crate::breakglass::BREAK_GLASS_SECONDS / 60
            ))
        } else {
            None
        };
        if let Some(why) = expired {
            let event = self.session_end_event(
                &account.name,
                format!("the session of {} ended: {why}", account.name),
            );
            self.close_session(&db, &hash, session.account, session.created, event)?;
            return Ok(None);
        }
        let seal = crate::session_seal::seal(
            token,
            &crate::session_seal::SealedRow {
                token_hash: &hash,
                account: session.account,
                created: session.created,
                last_seen: now,
                csrf: &session.csrf,
                address: &session.address,
            },
        )?;
        match db.touch_session(&hash, now, &seal) {
            Ok(()) => {}
            // Not renewed, the row and its seal stay as the store kept them: the idle
            // limit counts from that renewal, so the session ends sooner, never later.
            Err(e) if used == SessionUse::Reads && e.is_unavailable() => {
                UNRENEWED.refused(&format!(
                    "a page served without renewing its session's last use, the console's store cannot be written now: {e}"
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let stepped_up_at = self.sealed_step_up(&db, token, &hash, &account.name)?;
        let role = Role::parse(&account.role).ok_or_else(|| {
            AuthError::Internal(format!("account {}: unknown role", account.name))
        })?;
        let enrolled = account.enrolled();
        Ok(Some(Authenticated {
            account: account.id,
            name: account.name,
            role,
            enrolled,
            csrf: session.csrf,
            token_hash: hash,
            stepped_up_at,
        }))
    }

    /// Whether `presented` is the session's CSRF token.
    pub fn csrf_matches(auth: &Authenticated, presented: &str) -> bool {
        !presented.is_empty() && bool::from(auth.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    pub fn logout(&self, auth: &Authenticated) -> Result<(), AuthError> {
        let db = lock(&self.db)?;
        self.close_session_by_hash(
            &db,
            &auth.token_hash,
            &auth.name,
            format!("{} signed out", auth.name),
        )?;
        Ok(())
    }

    /// A new secret for this session's enrolment (replacing one begun before).
    pub fn begin_enrolment(&self, auth: &Authenticated) -> Result<Enrolment, AuthError> {
        let secret = random(totp::SECRET_BYTES)?;
        let mut pending = lock(&self.pending)?;
        if pending.len() >= MAX_PENDING_ENROLMENTS
            && !pending.contains_key(&auth.token_hash)
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, (since, _))| *since)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(auth.token_hash.clone(), (self.now(), secret.clone()));
        Ok(Enrolment {
            secret_base32: totp::base32(&secret),
            uri: totp::otpauth_uri(&self.issuer, &auth.name, &secret),
        })
    }

    /// The enrolment begun in this session, again (to show the same secret after a
    /// wrong code).
    pub fn pending_enrolment(&self, auth: &Authenticated) -> Result<Option<Enrolment>, AuthError> {
        Ok(lock(&self.pending)?
            .get(&auth.token_hash)
            .map(|(_, secret)| Enrolment {
                secret_base32: totp::base32(secret),
                uri: totp::otpauth_uri(&self.issuer, &auth.name, secret),
            }))
    }

    /// Confirms the enrolment with a current code: stores the secret, issues recovery
    /// codes (returned once) and a new session token (the old one ends).
    pub fn confirm_enrolment(
        &self,
        auth: &Authenticated,
        code: &str,
        address: IpAddr,
    ) -> Result<(Vec<String>, NewSession), AuthError> {
        let secret = lock(&self.pending)?
            .get(&auth.token_hash)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| AuthError::Invalid("no enrolment was begun in this session".into()))?;
        let Some(step) = totp::matching_step(&secret, code, self.now()) else {
            return Err(self.refused_with(
                self.event(
                    &auth.name,
                    Action::Account,
                    Outcome::Failure,
                    format!("{}: a TOTP enrolment code did not match", auth.name),
                ),
                AuthError::WrongCode,
            ));
        };
        let (codes, hashes) = new_recovery_codes()?;
        // Recorded inside the hold once the factor is stored, queued with its commit
        // ([`crate::held`], review r28-console2).
        let enrolled_record = self.event(
            &auth.name,
            Action::Account,
            Outcome::Success,
            format!(
                "{} enrolled a TOTP second factor; {RECOVERY_CODES} single-use recovery codes issued (earlier ones void); {ENROLMENT_ENDS_SESSIONS}",
                auth.name
            ),
        );
        self.ensure_bound()?;
        {
            // One guard for both: no request sees the account enrolled while a session
            // opened with the password only is still alive.
            let mut guard = lock(&self.db)?;
            // The check, the write and the record's read: one transaction.
            let mut db = guard.hold()?;
            let said = self.hold_begins()?;
            self.unaltered_before_change(
                &db,
                auth.account,
                &auth.name,
                "the TOTP second factor's enrolment",
            )?;
            if !db.enrol_totp(auth.account, &secret, step, &hashes)? {
                drop(said);
                drop(db);
                drop(guard);
                return Err(self.refused_with(
                    self.event(
                        &auth.name,
                        Action::Account,
                        Outcome::Failure,
                        format!(
                            "{}: the TOTP second factor was not enrolled: one was enrolled meanwhile in another session",
                            auth.name
                        ),
                    ),
                    AuthError::Invalid(
                        "a second factor was enrolled meanwhile in another session".into(),
                    ),
                ));
            }
            self.record(enrolled_record)?;
            self.close_sessions_of(
                &db,
                auth.account,
                &auth.name,
                "the first second factor was enrolled (it had the password only)",
            )?;
            self.rebind_under(
                &db,
                auth.account,
                "its credentials bound to the trail after the enrolment of a TOTP second factor and new recovery codes",
            )?;
            said.commit(db)?;
        };
        lock(&self.pending)?.remove(&auth.token_hash);
        let session = self.new_session(auth.account, true, address)?;
        Ok((codes, session))
    }

    /// An administrator creates an account; its holder signs in with the password and
    /// must enrol a second factor first. A decision, as [`Console::invite`] is (a step-up
    /// and a reason): granting a role to a new account is granting a role.
    pub fn create_account(
        &self,
        by: &Authenticated,
        name: &str,
        role: &str,
        password: &str,
        reason: &str,
    ) -> Result<(), AuthError> {
        let reason = self.decision(by, reason)?;
        if !valid_name(name) {
            return Err(AuthError::Invalid(format!(
                "a name is 1 to {MAX_NAME_BYTES} characters of a-z, 0-9, '.', '_' and '-'"
            )));
        }
        let role = Role::parse(role).ok_or_else(|| {
            AuthError::Invalid("a role is viewer, operator, approver or administrator".into())
        })?;
        password::check_new_for(password, name)?;
        let hash = password::hash(password)?;
        self.ensure_bound()?;
        let mut guard = lock(&self.db)?;
        let db = guard.hold()?;
        let said = self.hold_begins()?;
        if db.account_by_name(name)?.is_some() {
            return Err(AuthError::Invalid(format!(
                "the account {name} exists already"
            )));
        }
        self.record(
            self.event(
                &by.name,
                Action::Account,
                Outcome::Success,
                format!(
                    "{} created the account {name} with the role {} after a step-up (it must enrol a second factor at its first sign-in)",
                    by.name,
                    role.as_str()
                ),
            )
            .with_reason(reason),
        )?;
        // The account, its origin and its record in one hold of the lock.
        let now = self.now();
        let id = db.create_account(name, role.as_str(), &hash, now)?;
        db.record_origin(id, by.account, now)?;
        self.rebind_under(&db, id, &format!("created by {}", by.name))?;
        said.commit(db)?;
        Ok(())
    }

    /// Every account: name, role, second factors.
    pub fn accounts(&self) -> Result<Vec<pacsguard_store::AccountListed>, AuthError> {
        Ok(lock(&self.db)?.accounts()?)
    }
}

/// [`RECOVERY_CODES`] new recovery codes as shown once, and their digests as stored.
pub(crate) fn new_recovery_codes() -> Result<(Vec<String>, Vec<Vec<u8>>), AuthError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code = data_encoding::BASE32_NOPAD.encode(&random(RECOVERY_CODE_BYTES)?);
        hashes.push(secret::digest(&code));
        let shown = format!(
            "{}-{}-{}-{}",
            &code[..4],
            &code[4..8],
            &code[8..12],
            &code[12..]
        );
        codes.push(shown);
    }
    Ok((codes, hashes))
}

/// The name part of a `Host` header (or a configured name): lowercase, without its port,
/// its trailing dot or an IPv6 literal's brackets.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether account `id` is still signed in by the password hash `verified` (checked
/// before its session is inserted) and not disabled: else the sign-in is refused, as
/// any failure is.
pub(crate) fn still_as_verified(db: &ConsoleDb, id: i64, verified: &str) -> Result<(), AuthError> {
    match db.account_by_id(id)? {
        Some(now) if now.password_hash == verified && !now.disabled => Ok(()),
        _ => Err(AuthError::SignInFailed),
    }
}

fn token_csrf() -> Result<String, AuthError> {
    token()
}

/// A console over a real SQLite store in `home` (its clock at a fixed time, its host
/// `test-host`) sharing `guard`, with its trail's inbox: the one fixture of the unit
/// tests that need a whole [`Console`].
#[cfg(test)]
pub(crate) fn test_console_in(
    home: &std::path::Path,
    guard: Arc<GuardState>,
) -> (Console, pacsguard_events::Inbox) {
    let store = home.join("store.sqlite");
    drop(pacsguard_store::Store::open(&store).expect("store"));
    let db = ConsoleDb::open(&store).expect("console tables");
    let inbox = pacsguard_events::Inbox::new();
    let console = Console::new(
        db,
        Arc::new(crate::clock::ManualClock::new(1_800_000_000)),
        inbox.clone(),
        store,
        "test-host",
        guard,
    )
    .expect("console");
    (console, inbox)
}
