//! The embedded default store: one SQLite file in the home holding the signed baseline.
//!
//! Invariants:
//! * A baseline is replaced in one SQLite transaction (rollback journal,
//!   `synchronous=FULL`): a process killed at any instant leaves the previous baseline,
//!   with its signature, or the new one.
//! * [`Store::load`] returns a baseline only after its Ed25519 signature verified against
//!   the home's key over [`Baseline::digest`]; an edited, truncated or swapped store is an
//!   error naming what failed, never a silently trusted profile.
//! * Every acceptance (who, why, which paths) is written in the same transaction as the
//!   baseline it produced, and the signature covers every acceptance with the baseline:
//!   an acceptance edited, added or deleted in the store fails verification.
//! * Since v3 the signature covers a tree of digests ([`merkle`]): the generation, every
//!   root's spec and entry count, and each stored chunk's leaf (root, place, counts,
//!   first path, SHA-256 of its bytes). Loading verifies the tree from the leaf rows;
//!   a chunk's bytes are checked against its leaf before any entry of it is used.

mod busy_notice;
mod companions;
mod console;
mod fleet_store;
mod lock;
mod merkle;
mod seen;
mod signing;
mod sqlite;
mod streamed;
mod view;

pub use busy_notice::{BusyWaitWatch, MAX_NOTICE_WAIT, watch_busy_waits};
pub use companions::{Beside, companion_beside, planted_companion};
pub use console::QuotaWindow;
pub use console::{
    AcceptedBatch, AccountBinding, AccountListed, AccountRow, Acknowledgement, Again, ConsoleDb,
    ConsoleHolder, Credentials, DisabledRow, FROM_TRAIL, Held, HostRow, LiveSession,
    MAX_CONSOLE_ID_BYTES, MAX_PENDING_PROFILES_PER_HOST, NewPasskey, PasskeyAdded, PasskeyRemoved,
    PasskeyRow, PendingAcceptRow, PendingApproval, PendingReset, ProfileNoted, ProfileRow, Revoker,
    SealBinding, SealRow, SeenState, SessionEnd, SessionRow, StoredConsoleId, TokenRefusal,
    host_name_key,
};
pub use fleet_store::{
    DEFAULT_PARTITION, FLEET_REQUEST_BUDGET, FleetPool, FleetSetting, FleetStore, FleetStoreAt,
    HOST_FOUR_EYES, HOST_PIN_PREFIX, MAX_HOST_PINS_READ, PARTITION_MONTHS_AHEAD, PG_CALL_DEADLINE,
    PG_CONNECT_TIMEOUT, PG_IDLE_IN_TRANSACTION_TIMEOUT, PG_KEEPALIVE_IDLE, PG_KEEPALIVE_INTERVAL,
    PG_KEEPALIVE_RETRIES, PG_LOCK_TIMEOUT, PG_MIGRATION_DEADLINE, PG_MIN_STATEMENT_TIME,
    PG_MONTH_RETRY_AFTER, PG_MOVE_CLIENT_CHECK, PG_MOVE_FAILURES_LOUD, PG_MOVE_RETRY_AFTER,
    PG_MOVE_RETRY_AFTER_LONG, PG_POOL_SIZE, PG_POOL_WAIT, PG_STATEMENT_TIMEOUT,
    PG_TCP_USER_TIMEOUT, PgFleet, Pooled, RECEIPT_FLOOR_STEP,
};
pub use lock::{
    STORE_BUSY_WAIT, TEST_BUSY_WAIT_VAR, TRAIL_MARK_WAIT, TrailMarkHandoff, store_busy_wait,
};
pub use seen::SeenRow;
pub use signing::{
    SIGNATURE_DOMAIN, SIGNATURE_DOMAIN_V2, SIGNATURE_DOMAIN_V3, fingerprint, signing_message,
    signing_message_v2, signing_message_v3,
};
pub use sqlite::{
    Acceptance, COMPANION_SUFFIXES, SCHEMA_VERSION, SignedHead, SignedInfo, Store, StoreError,
    companion_path, header_says_wal,
};
pub use streamed::{StoredBaseline, StoredCursor, StoredEntries, StreamedSave};
pub use view::{
    VIEW_BUSY_WAIT, VIEW_CACHE_KIB, VIEW_REBUILT_SUFFIX, VIEW_TURN_WAIT, ViewDb, ViewRow,
    ViewWaitTurn,
};
