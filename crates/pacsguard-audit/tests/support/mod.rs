//! What the trail tests share (`checkpoint_tail.rs`, `follow.rs`, `gather.rs`): one
//! signing key, the trail's two files in a directory, and trails written as PacsGuard's
//! commands write them (each command opens the trail, records, signs a checkpoint).

// Each test target uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;

use ed25519_dalek::SigningKey;
use pacsguard_audit::{AuditSink, LogError, Opening, TrailFiles, TrailOptions};
use pacsguard_events::EventSink as _;
use pacsguard_events::{Action, Actor, Event, Outcome};
use pacsguard_trail::note::Signer;

/// The one key every trail of these tests is signed with.
pub fn signer() -> Signer {
    Signer::new(
        "pacsguard.local/test/audit",
        SigningKey::from_bytes(&[9; 32]),
    )
    .expect("signer")
}

/// `audit.log` and `checkpoints.jsonl` in `dir`, with no witness.
pub fn files(dir: &Path) -> TrailFiles {
    TrailFiles {
        log: dir.join("audit.log"),
        checkpoints: dir.join("checkpoints.jsonl"),
        witness: None,
    }
}

/// The trail in `dir` opened for writing, as a command opens it.
pub fn open(dir: &Path) -> Result<(AuditSink, Opening), LogError> {
    AuditSink::open(
        files(dir),
        "test".into(),
        signer().verifier().name().to_string(),
        signer(),
        TrailOptions::default(),
    )
}

/// Record `n` of a trail: root's `check`, told apart by its detail.
pub fn event(n: u64) -> Event {
    let actor = Actor {
        user: "root".into(),
        uid: 0,
        sudo_user: None,
    };
    Event::new(actor, Action::Check, Outcome::Success, format!("run {n}"))
}

/// `commands` commands, each `per` records and a signed checkpoint.
pub fn commands(dir: &Path, commands: u64, per: u64) {
    for n in 0..commands {
        let (mut sink, _) = open(dir).expect("open");
        for _ in 0..per {
            sink.record(&event(n)).expect("record");
        }
        sink.flush().expect("flush");
    }
}
