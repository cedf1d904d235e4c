//! Heartbeats: a guard stopped without a clean shutdown leaves a gap `verify` names.

use std::time::{Duration, SystemTime};

use ed25519_dalek::SigningKey;
use pacsguard_audit::{AuditSink, Durability, TrailFiles, TrailOptions, verify};
use pacsguard_events::{Actor, Event, EventSink};
use pacsguard_trail::note::Signer;

fn actor() -> Actor {
    Actor {
        user: "root".into(),
        uid: 0,
        sudo_user: None,
    }
}

/// A heartbeat: seconds from the start, seconds promised, and the boot id with the
/// milliseconds since boot it carries, if any.
type Beat<'a> = (u64, u64, Option<(&'a str, u64)>);

/// Writes heartbeats at the given offsets (seconds from a fixed start) with the given
/// promises, then verifies.
fn trail(beats: &[(u64, u64)]) -> pacsguard_audit::VerifyReport {
    let beats: Vec<Beat> = beats.iter().map(|&(at, every)| (at, every, None)).collect();
    trail_with_boot_clock(&beats)
}

/// The same, each heartbeat optionally carrying a boot id and the milliseconds since boot.
fn trail_with_boot_clock(beats: &[Beat]) -> pacsguard_audit::VerifyReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = TrailFiles {
        log: dir.path().join("audit.log"),
        checkpoints: dir.path().join("checkpoints.jsonl"),
        witness: None,
    };
    let signer = Signer::new("pacsguard-test", SigningKey::from_bytes(&[5; 32])).expect("signer");
    let verifier = signer.verifier().clone();
    let (mut sink, _) = AuditSink::open(
        files.clone(),
        "test".into(),
        "pacsguard-test".into(),
        signer,
        TrailOptions {
            durability: Durability::Batch,
            ..TrailOptions::default()
        },
    )
    .expect("open");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for &(at, interval, boot) in beats {
        let mut event = Event::heartbeat(actor(), interval);
        event.time = start + Duration::from_secs(at);
        if let Some((id, ms)) = boot {
            event.boot_id = Some(id.to_string());
            event.boottime_ms = Some(ms);
        }
        sink.record(&event).expect("record");
    }
    sink.flush().expect("flush");
    verify(&files.log, &files.checkpoints, &verifier, None).expect("verify")
}

#[test]
fn regular_heartbeats_verify() {
    let report = trail(&[(0, 60), (60, 60), (125, 60), (180, 60)]);
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn a_missing_stretch_of_heartbeats_is_a_gap_named_at_the_record() {
    let report = trail(&[(0, 60), (60, 60), (1000, 60), (1060, 60)]);
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(
        report.problems[0].position.starts_with("record 2"),
        "{report:?}"
    );
    assert!(
        report.problems[0].what.contains("heartbeat gap"),
        "{report:?}"
    );
}

#[test]
fn a_clean_stop_promises_nothing() {
    let report = trail(&[(0, 60), (60, 0), (5000, 60), (5060, 60)]);
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn a_wall_clock_step_between_heartbeats_of_one_boot_is_no_gap() {
    // The wall clock jumped a day forward between the second and third heartbeat; the
    // clock since boot says a minute passed.
    let report = trail_with_boot_clock(&[
        (0, 60, Some(("b1", 1_000))),
        (60, 60, Some(("b1", 61_000))),
        (86_520, 60, Some(("b1", 121_000))),
    ]);
    assert!(report.is_intact(), "{report:?}");
    // A real gap within one boot is still one, whatever the wall clock says.
    let report = trail_with_boot_clock(&[
        (0, 60, Some(("b1", 1_000))),
        (60, 60, Some(("b1", 1_000_000))),
    ]);
    assert_eq!(report.problems.len(), 1, "{report:?}");
    // Across a reboot, the wall clock is all there is.
    let report = trail_with_boot_clock(&[
        (0, 60, Some(("b1", 1_000))),
        (5000, 60, Some(("b2", 2_000))),
    ]);
    assert_eq!(report.problems.len(), 1, "{report:?}");
}
