//! The tamper-evident audit trail.
//!
//! Every PacsGuard action and finding becomes one line of `audit.log`: a JSON record with a
//! gapless sequence number, the time with its zone, the host, the actor, the action, the
//! outcome, the objects and the finding. The lines are the leaves of an RFC 6962 Merkle
//! tree. At the end of every command the [`AuditSink`] makes the new lines durable
//! (fsync: group commit per command) and signs a checkpoint — a C2SP signed note naming
//! the origin, the tree size and the root — appended to `checkpoints.jsonl` and, when
//! configured, copied to a witness directory on another disk.
//!
//! [`verify`] works offline from those files and the public key: it recomputes the tree,
//! checks every checkpoint's signature and that each one's root is the log's root at its
//! size (which proves consecutive checkpoints consistent), and names the position of a
//! modified, deleted, inserted or reordered record, a truncated log, or a log rolled back
//! behind a checkpoint the witness holds. A torn last line (a crash mid-write) is reported
//! as torn and never taken as a record.
//!
//! Invariants: a checkpoint is never signed for a log that does not reproduce the last
//! signed checkpoint; the sink never rewrites a complete record.

mod atna;
mod checkpoint;
pub mod delivery;
mod follow;
mod gather;
mod log;
mod mac;
mod sink;
pub mod syslog;
mod verify;

pub use atna::{TRAIL_REINIT_WORDS, WITNESS_REINIT_WORDS, audit_message};
pub use checkpoint::{Checkpoint, CheckpointError, SeenMarks, TrailState, decode_tag, encode_tag};
pub use follow::{
    FULL_PASS_PERIOD, FollowReport, Follower, MAX_KEPT_PROBLEMS, MIN_SWEEP_RECORDS, sweep_budget,
};
pub use gather::{Gather, GatheredRecord, MAX_GATHERED_RECORDS};
pub use log::{AuditLog, LogError, MAX_RECORD_BYTES, skip_line};
pub use mac::RecordKey;
pub use sink::{
    AuditSink, Durability, MAX_WITNESS_BYTES, MirrorFn, Opening, TrailFiles, TrailOptions,
    WitnessMode,
};
pub use verify::{
    MAX_CHECKPOINT_LINE_BYTES, Problem, VerifyReport, safe_name, verify, verify_gathering,
    witness_file, witness_path,
};
