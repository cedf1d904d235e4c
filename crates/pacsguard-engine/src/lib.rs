//! The home and the operations over it: `init`, `profile`, `check`, `accept`.
//!
//! A [`Home`] is PacsGuard's state directory: `config.toml`, the Ed25519 signing key
//! (`signing.key`, mode 0600, and `signing.pub`), the store (`pacsguard.db`) and the audit
//! trail (`audit.log`, `checkpoints.jsonl`, and `trail.pub`, the key that verifies it). A [`Session`] holds the home open (under an exclusive lock, so two
//! commands never interleave their writes), its verified key, the store, and the event bus
//! that every finding and action goes through.
//!
//! Invariants:
//! * Nothing here writes outside the home. The guarded trees are only read, through
//!   `pacsguard-fs`; the home itself is skipped if it lies inside a guarded tree.
//! * Every action and every finding is emitted as an [`pacsguard_events::Event`]; no
//!   operation prints or logs security events by itself.

mod actor;
mod audit;
mod config;
mod durable;
mod error;
mod files;
mod home;
mod keyfile;
pub mod maintenance;
pub mod notes;
mod ops;
mod progress;
mod settings;
mod trail_page;
mod vault;

pub use actor::current_actor;
pub use audit::{
    AuditFollower, AuditVerifyReport, ExportFormat, ForwardReport, MAX_STORE_RESETS_LISTED,
    MAX_VERIFY_ATTEMPTS, ShowFilter, audit_export, audit_follow, audit_follow_gathering,
    audit_forward, audit_show, audit_verify, trail_origin,
};
pub use config::{
    CONFIG_TEMPLATE, Config, ConsoleConfig, ForwardConfig, MAX_WATCHES_LIMIT, RootConfig,
    WatchConfig,
};
pub use error::{EngineError, store_way_out};
pub use home::{Home, InitReport, default_home, hostname};
pub use keyfile::{
    KDF_M_COST_KIB, KDF_P_COST, KDF_T_COST, MAX_PASSPHRASE_BYTES, MIN_PASSPHRASE_CHARS, Passphrase,
};
pub use ops::boot_id;
pub use ops::{
    AcceptReport, AcceptRequest, BackupSummary, CheckReport, CheckRequest, DiffCounts, DiffReport,
    DirectoryChanges, ExportReport, MAX_ARCHIVE_MEMBERS, MAX_CACHE_BYTES, MAX_EXPORT_BYTES,
    MAX_JOURNAL_BYTES, MAX_QUEUED_REQUESTS, MAX_SCAN_FILE_BYTES, MAX_SCAN_MEMORY_BYTES,
    MAX_WHOLE_FILE_BYTES, ProfileRef, ProfileReport, ProfileRequest, Readiness, RecoverCounts,
    RecoverFile, RecoverReport, RecoverRequest, ReinitReport, Reply, Request, Requests,
    RootReadiness, RootSummary, SCAN_WINDOW_BYTES, SCRUB_PROGRESS_INTERVAL, SanitizeReport,
    ScanReport, ScanRequest, ScrubProgress, Session, Settled, Shown, Side, Source, Status,
    StoreReinitReport, Unrestorable, WatchOutput, WatchReport, WatchRequest, WitnessInitReport,
    quarantine_received, screener,
};
pub use ops::{
    Copied, DestinationReport, Expected, MAX_MANIFEST_BYTES, MAX_MEDIA_FILE_BYTES,
    MAX_REPORTED_EXTRA, MAX_UID_NAME_LEN, MediaReport, MediaRequest, Refused, VerifiedManifest,
    read_trusted_key, verify_destination, verify_manifest,
};
pub use ops::{
    GenerationsReport, KeptEvidence, KeptGeneration, MAX_KEPT_GENERATION_ENTRIES,
    MAX_KEPT_GENERATIONS, MAX_PATCHED_CHUNK_ENTRIES, MAX_PROFILE_FINDINGS,
};
pub use ops::{OLD_SEALING_WORDS, PassphraseReport, ProtectReport};
pub use progress::{NoProgress, Progress};
pub use trail_page::{MAX_TRAIL_PAGE_RECORDS, TrailPage, audit_page};
pub use vault::{QuarantineRecord, RecordedFinding, Vault};
