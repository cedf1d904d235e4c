//! The fleet's store on the console's side (issue 14): enrolment tokens, hosts, what
//! each host delivered (records, checkpoints, cosignatures), quotas and the profile
//! generations hosts claimed, behind one trait with two implementations:
//!
//! * SQLite ([`ConsoleDb`], the home's store file): the embedded default for a console
//!   with few hosts.
//! * PostgreSQL ([`PgFleet`]): a real server for fleets, selected by the console's
//!   configuration (`[console] fleet_store = "postgres://…"`).
//!
//! Both keep the same invariants, which the store tests run against both: a token is
//! spent once, in the transaction that enrols its host; a host's witness state moves
//! only from the size the caller verified against, in the transaction that stores the
//! records it covers (so two connections of one host cannot interleave, and a batch is
//! stored exactly once); a quota charge is read and written in one transaction.

use std::path::PathBuf;

use crate::console::{
    AcceptedBatch, Acknowledgement, Again, ConsoleDb, HostRow, ProfileNoted, ProfileRow,
    QuotaWindow, Revoker, SeenState, TokenRefusal,
};
use crate::sqlite::StoreError;

mod deadline;
mod partitions;
mod pool;
mod postgres;
pub use self::deadline::{
    FLEET_REQUEST_BUDGET, PG_CALL_DEADLINE, PG_CONNECT_TIMEOUT, PG_IDLE_IN_TRANSACTION_TIMEOUT,
    PG_KEEPALIVE_IDLE, PG_KEEPALIVE_INTERVAL, PG_KEEPALIVE_RETRIES, PG_LOCK_TIMEOUT,
    PG_MIN_STATEMENT_TIME, PG_STATEMENT_TIMEOUT, PG_TCP_USER_TIMEOUT,
};
pub use self::partitions::{
    DEFAULT_PARTITION, PARTITION_MONTHS_AHEAD, PG_MIGRATION_DEADLINE, PG_MONTH_RETRY_AFTER,
    PG_MOVE_CLIENT_CHECK, RECEIPT_FLOOR_STEP,
};
pub use self::pool::{
    FleetPool, PG_MOVE_FAILURES_LOUD, PG_MOVE_RETRY_AFTER, PG_MOVE_RETRY_AFTER_LONG, PG_POOL_SIZE,
    PG_POOL_WAIT, Pooled,
};
pub use self::postgres::PgFleet;

/// A setting of the whole fleet, held in its store: its value, who set it, why, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSetting {
    /// Whether the setting is on: anything but the `false` a console writes counts as
    /// on (fail closed: a value edited in the store to `TRUE`, `1` or `yes` was read as
    /// off, and four eyes with it, review s21).
    pub on: bool,
    /// The value as the store holds it (`true` or `false` when a console wrote it), so
    /// that one written otherwise is named in the console's alert.
    pub value: String,
    pub by: String,
    pub reason: String,
    pub at: i64,
}

/// The name of the four-eyes setting in `fleet_settings`.
pub const HOST_FOUR_EYES: &str = "needs_second_host_approver";
/// The name of [`FleetStore::fleet_identity_fingerprint`] in `fleet_settings`.
pub const FLEET_IDENTITY_FINGERPRINT: &str = "fleet_identity_fingerprint";
/// What the name of a [`FleetStore::host_pins`] row in `fleet_settings` begins with, the
/// host's certificate fingerprint after it (a row per host, no new table or column: an
/// older console's store needs no migration).
pub const HOST_PIN_PREFIX: &str = "host_pin:";
/// The most [`FleetStore::host_pins`] rows read at once (one per host ever enrolled;
/// only an administrator's enrolments make them, but rows written in the store by hand
/// must not exhaust the console's memory). Past it the rest are not compared (said).
pub const MAX_HOST_PINS_READ: usize = 100_000;

impl FleetSetting {
    /// The setting as read from a stored value (see [`FleetSetting::on`]).
    pub(crate) fn read(value: String, by: String, reason: String, at: i64) -> FleetSetting {
        FleetSetting {
            on: value != "false",
            value,
            by,
            reason,
            at,
        }
    }

    /// Whether the stored value is one a console writes (`true` or `false`).
    pub fn well_formed(&self) -> bool {
        matches!(self.value.as_str(), "true" | "false")
    }
}

/// What the fleet's console side needs of its store. Every method takes `&mut self`: a
/// PostgreSQL client needs it for any query, and reconnects in it after the server
/// restarted.
pub trait FleetStore: Send + std::fmt::Debug {
    /// Stores a new enrolment token's digest, valid until `expires`.
    fn add_enrol_token(
        &mut self,
        token_hash: &[u8],
        now: i64,
        expires: i64,
    ) -> Result<(), StoreError>;
    /// The newest revoked host named `name` whose trail the console still holds.
    fn revoked_host_with_trail(&mut self, name: &str) -> Result<Option<HostRow>, StoreError>;
    /// Stores a token that enrols a host continuing the revoked host `continues`.
    fn add_continue_token(
        &mut self,
        token_hash: &[u8],
        now: i64,
        expires: i64,
        continues: i64,
    ) -> Result<(), StoreError>;
    /// The revoked host whose trail host `id` was enrolled to continue, until carried over.
    fn continued_host(&mut self, id: i64) -> Result<Option<HostRow>, StoreError>;
    /// Why the token would be refused now, if it would.
    fn enrol_token_refusal(
        &mut self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<TokenRefusal>, StoreError>;
    /// Spends the token and enrols a host in one transaction.
    fn enrol_host(
        &mut self,
        token_hash: &[u8],
        now: i64,
        name: &str,
        fingerprint: &str,
    ) -> Result<Result<i64, TokenRefusal>, StoreError>;
    fn host_by_fingerprint(&mut self, fingerprint: &str) -> Result<Option<HostRow>, StoreError>;
    fn host(&mut self, id: i64) -> Result<Option<HostRow>, StoreError>;
    /// Every host, by name.
    fn hosts(&mut self) -> Result<Vec<HostRow>, StoreError>;
    /// Revokes the hosts named `name` that are not revoked yet, noting who and why;
    /// returns how many.
    fn revoke_host(
        &mut self,
        name: &str,
        now: i64,
        revoker: &Revoker<'_>,
    ) -> Result<usize, StoreError>;
    /// Notes a contact from the host and the heartbeat interval it promises, unless it is
    /// revoked.
    fn touch_host(&mut self, id: i64, now: i64, interval: i64) -> Result<(), StoreError>;
    /// Sets the host's state; whether it changed. Unconditional: the console moves a
    /// host's state with [`FleetStore::swap_host_state`] only (a test or a tool puts one).
    fn set_host_state(&mut self, id: i64, state: &str, detail: &str) -> Result<bool, StoreError>;
    /// Sets the host's state to `state` (with `detail`) only if it is still the one the
    /// caller judged from (`seen`: its state and its last contact as read): a compare
    /// and set, so a refusal, a silence or a contact judged from a state that another
    /// request (a second report of the host, a copy of its home, the silence check)
    /// moved meanwhile is never written over it (issue 14, review r28-fleet); never on a
    /// revoked host (review r29-fleet). Whether it was set; `false`: read the host again
    /// and judge anew. `again`: the refusals counted on a standing one after `detail`'s
    /// (session 35: kept in columns, never in words a host controls).
    fn swap_host_state(
        &mut self,
        id: i64,
        seen: &SeenState<'_>,
        state: &str,
        detail: &str,
        again: &Again,
    ) -> Result<bool, StoreError>;
    /// Notes an administrator's acknowledgement `ack` of host `id`'s standing refusal
    /// (issue 14), only while the host is still in `state` with a detail that begins
    /// with `kept` (the refusal's words as acknowledged: the refusals counted after them
    /// may have grown the detail meanwhile) and is not revoked; an acknowledgement before
    /// it is replaced. Whether it was written; `false`: read the host again.
    fn acknowledge_host(
        &mut self,
        id: i64,
        state: &str,
        kept: &str,
        ack: &Acknowledgement,
    ) -> Result<bool, StoreError>;
    /// The trail key of the first process found reporting beside host `id` under its
    /// certificate (`host-identity-duplicated`, review r26), if one ever was: kept
    /// across restarts of the console, so that a copy of the host's enrolment is never
    /// judged as the host made anew once it was found running beside the host.
    fn identity_duplicated(&mut self, id: i64) -> Result<Option<String>, StoreError>;
    /// Notes that a process with trail key `stranger` reports beside host `id` under its
    /// certificate; the first one noted is kept. Whether this was the first.
    fn note_identity_duplicated(
        &mut self,
        id: i64,
        stranger: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Stores a verified batch only if the host's size is still `batch.from_size` and it
    /// is not revoked (a revocation racing the report wins, review r29-fleet), and
    /// notes the contact (`batch.now`); the host's state is left to
    /// [`FleetStore::swap_host_state`].
    fn accept_batch(&mut self, host: i64, batch: &AcceptedBatch<'_>) -> Result<bool, StoreError>;
    /// Moves the witness state of the revoked host `from` to `to`: see the SQLite
    /// implementation (`console/fleet.rs`) for what moves and when it refuses.
    fn carry_over_host(&mut self, from: i64, to: i64) -> Result<bool, StoreError>;
    /// The records of `host` with sequence numbers in `from..to`, in order.
    fn host_records_between(
        &mut self,
        host: i64,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Every record of `host`, in order.
    fn host_records(&mut self, host: i64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Notes that `host` reports (`generation`, `digest`) as its current profile.
    fn note_profile(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        created: i64,
        now: i64,
    ) -> Result<ProfileNoted, StoreError>;
    /// Notes that the host's trail records signing `generation`; `true`: raise it.
    fn note_profile_in_trail(
        &mut self,
        host: i64,
        generation: u64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Writes an approver's acceptance of a pending profile as *awaiting confirmation*
    /// under `id` (not in effect: no report gets an approval for it, the pages show it
    /// unapproved) — `false` if no such profile waits (unknown, approved already, or an
    /// approval of it awaits confirmation). The console then records the approval on its
    /// trail, naming `id`, and confirms it only once that record is on the trail
    /// ([`FleetStore::confirm_profile_approval`]): an approval whose COMMIT's answer was
    /// lost, or whose console died before its record was written, is never in effect
    /// without a record of who made it.
    #[allow(clippy::too_many_arguments)]
    fn propose_profile_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Puts the approval awaiting confirmation under `id` in effect; `true` once it is in
    /// effect (also when an earlier confirmation whose answer was lost made it so);
    /// `false` when it is not, also when the profile is approved under another id (this
    /// one was dropped and another approval made: a late confirmation lost to it).
    fn confirm_profile_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        id: &str,
    ) -> Result<bool, StoreError>;
    /// Drops the approval awaiting confirmation under `id` (its record is not on the
    /// trail); the profile is pending again. `false` if there was none.
    fn drop_profile_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        id: &str,
    ) -> Result<bool, StoreError>;
    /// Every profile with an approval awaiting confirmation, oldest approval first.
    fn awaiting_approvals(&mut self) -> Result<Vec<ProfileRow>, StoreError>;
    /// The bytes charged to `host` in its current quota window.
    fn quota_used(&mut self, host: i64) -> Result<QuotaWindow, StoreError>;
    /// Charges `adding` bytes to `host`'s quota in one transaction.
    fn charge_quota(
        &mut self,
        host: i64,
        now: i64,
        window: i64,
        limit: u64,
        adding: u64,
    ) -> Result<Result<QuotaWindow, QuotaWindow>, StoreError>;
    /// Gives back `bytes` charged in the window that began at `window_start`.
    fn refund_quota(&mut self, host: i64, window_start: i64, bytes: u64) -> Result<(), StoreError>;
    fn profile(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
    ) -> Result<Option<ProfileRow>, StoreError>;
    /// Each host's current profile (its highest generation), by host name.
    fn current_profiles(&mut self) -> Result<Vec<ProfileRow>, StoreError>;
    /// One host's current profile, as [`FleetStore::current_profiles`] gives it, read
    /// from that host's rows only: `check` asks it of each host, and the whole fleet's
    /// for one host cost the console the fleet's size per question (review s19-r14).
    fn current_profile_of(&mut self, host: i64) -> Result<Option<ProfileRow>, StoreError>;
    /// The profiles waiting for an approver, hosts not revoked, newest first.
    fn pending_profiles(&mut self) -> Result<Vec<ProfileRow>, StoreError>;
    /// Claims console id `console` for the running console `instance` (a random value
    /// made at each start of a console process): `true` when this instance holds it now
    /// (the id was free, already this instance's, or its holder's heartbeat is older than
    /// `stale_after` seconds by the store's clock), `false` when another live instance
    /// holds it (a console started from a copy of this one's home, on the same shared
    /// store: it must take a fresh id, issue 14). Called again as the heartbeat.
    fn claim_console(
        &mut self,
        console: &str,
        instance: &str,
        stale_after: i64,
    ) -> Result<bool, StoreError>;
    /// Gives the id back at a clean stop (only if `instance` still holds it), so the
    /// next start of this console takes it again at once.
    fn release_console(&mut self, console: &str, instance: &str) -> Result<(), StoreError>;
    /// Hands the claim of console id `console` from instance `from` to instance `to`,
    /// live or not (review r24: the same console's previous run on this machine, killed,
    /// whose claim is still live): `true` when `to` holds it now, `false` when `from`
    /// did not hold it (another instance took it: then `to` claims as any other).
    fn take_over_console(
        &mut self,
        console: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError>;
    /// Clears the approval of the host's current profile (`generation`, `digest`) when
    /// it is superseded (the host went back to it after reporting another: its store
    /// restored), so that an approver can approve it again, knowingly: `true` when
    /// cleared. An approval in effect, or of a profile not current, is left as it is.
    fn reopen_superseded_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
    ) -> Result<bool, StoreError>;
    /// Whether approving a host's profile needs a second approver (four eyes), as the
    /// fleet holds it: a setting of the store every console on it shares, not of each
    /// console process (review s19-r14: two consoles on one PostgreSQL store could
    /// disagree, and an approver went to the one without). `None` when never set.
    fn host_four_eyes(&mut self) -> Result<Option<FleetSetting>, StoreError>;
    /// Sets [`FleetStore::host_four_eyes`] (an administrator's decision, after a
    /// step-up, with its reason; the console records it on its trail).
    fn set_host_four_eyes(
        &mut self,
        on: bool,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The SHA-256 fingerprint of the console's fleet identity (what hosts pin at
    /// enrolment) as kept when it was first made or first seen: a start that finds
    /// other files compares (review rv45-fleet case5, case15). `None` when never kept.
    fn fleet_identity_fingerprint(&mut self) -> Result<Option<String>, StoreError>;
    /// Keeps [`FleetStore::fleet_identity_fingerprint`] (at `now`).
    fn set_fleet_identity_fingerprint(
        &mut self,
        fingerprint: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The SHA-256 fingerprint of the certificate each host pinned (what the fleet
    /// listener presented when it enrolled, or when it first connected to a console that
    /// keeps pins): `(host certificate fingerprint, pinned fingerprint)`, at most
    /// [`MAX_HOST_PINS_READ`] (issue 14, session 46, review rv45-fleet: a console whose
    /// fleet identity changed cut its hosts off without a word).
    fn host_pins(&mut self) -> Result<Vec<(String, String)>, StoreError>;
    /// Keeps the fingerprint `pinned` the host of certificate `host` pinned, in place of
    /// any kept before: called with what its enrolment showed it or what a connection of
    /// it accepted, each a proof of its pin (a pin kept wrong is corrected).
    fn keep_host_pin(&mut self, host: &str, pinned: &str, now: i64) -> Result<(), StoreError>;
    /// Closes now what no call can use again: a PostgreSQL connection a call gave up on
    /// at its deadline, whose server session may still hold the locks of the
    /// transaction it was in (a `LOCK TABLE fleet_hosts` of an enrolment: every host's
    /// report waits on it) until the connection is closed. Called when a connection is
    /// given back to its pool (review s11-r14: it stayed open until its next use).
    fn close_if_broken(&mut self) {}
    /// Bounds every call from now on by `until` too (the deadline of the request being
    /// served, see [`FLEET_REQUEST_BUDGET`]; `None`: each call by its own deadline only).
    /// A PostgreSQL call past it fails naming `FLEET_REQUEST_BUDGET`; SQLite has no
    /// client-side deadline (its busy wait is its own bound).
    fn set_request_deadline(&mut self, until: Option<std::time::Instant>) {
        let _ = until;
    }
}

/// Where the fleet's tables live: the home's SQLite store (the default) or a
/// PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum FleetStoreAt {
    Sqlite(PathBuf),
    /// A connection string as `postgres` takes it: `postgres://USER@HOST:PORT/DB` or
    /// `host=/run/postgresql port=5432 user=pacsguard dbname=fleet`.
    Postgres(String),
}

impl std::fmt::Debug for FleetStoreAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetStoreAt::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            // Never the connection string itself: it may hold a password.
            FleetStoreAt::Postgres(target) => {
                write!(f, "Postgres({})", self::postgres::describe(target))
            }
        }
    }
}

impl From<PathBuf> for FleetStoreAt {
    fn from(path: PathBuf) -> FleetStoreAt {
        FleetStoreAt::Sqlite(path)
    }
}

impl FleetStoreAt {
    /// The home's SQLite store (`store`), unless `configured` names a PostgreSQL server.
    /// A configured value that is not a PostgreSQL connection string is refused, naming
    /// the setting, not taken for a file.
    pub fn from_config(store: PathBuf, configured: Option<&str>) -> Result<FleetStoreAt, String> {
        match configured.map(str::trim) {
            None | Some("") | Some("sqlite") => Ok(FleetStoreAt::Sqlite(store)),
            Some(text) => {
                self::postgres::parse(text).map_err(|e| {
                    format!("[console] fleet_store: not a PostgreSQL connection string (postgres://USER@HOST:PORT/DB, or host=… dbname=…), nor \"sqlite\": {e}")
                })?;
                Ok(FleetStoreAt::Postgres(text.to_string()))
            }
        }
    }

    /// Opens a connection to the store (creating the fleet's tables if missing).
    pub fn open(&self) -> Result<Box<dyn FleetStore>, StoreError> {
        self.open_by(None)
    }

    /// As [`FleetStoreAt::open`], by the request's deadline `until` when given (kept
    /// set on the connection for the calls after).
    pub fn open_by(
        &self,
        until: Option<std::time::Instant>,
    ) -> Result<Box<dyn FleetStore>, StoreError> {
        Ok(match self {
            FleetStoreAt::Sqlite(path) => Box::new(ConsoleDb::open(path)?),
            FleetStoreAt::Postgres(target) => Box::new(PgFleet::connect_by(target, until)?),
        })
    }

    /// As [`FleetStoreAt::open_by`] for a connection of the pool: it never runs the
    /// move of a version before's records ([`PgFleet::connect_pooled`]).
    pub fn open_pooled(
        &self,
        until: Option<std::time::Instant>,
    ) -> Result<Box<dyn FleetStore>, StoreError> {
        Ok(match self {
            FleetStoreAt::Sqlite(path) => Box::new(ConsoleDb::open(path)?),
            FleetStoreAt::Postgres(target) => Box::new(PgFleet::connect_pooled(target, until)?),
        })
    }

    /// What to call it in messages (a PostgreSQL target without its password).
    pub fn describe(&self) -> String {
        match self {
            FleetStoreAt::Sqlite(path) => format!("SQLite {}", path.display()),
            FleetStoreAt::Postgres(target) => {
                format!("PostgreSQL {}", self::postgres::describe(target))
            }
        }
    }
}
