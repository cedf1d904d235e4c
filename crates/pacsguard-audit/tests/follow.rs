//! A trail followed as it grows (`Follower`): the whole trail verified at the start, then
//! only what was appended, and the old records re-read by a rolling pass at a bounded rate.

use std::path::Path;
use std::time::Duration;

use pacsguard_audit::{
    FULL_PASS_PERIOD, Follower, MAX_KEPT_PROBLEMS, MIN_SWEEP_RECORDS, sweep_budget,
};
use pacsguard_events::{Action, Actor, Event, EventSink, Outcome};

mod support;
use support::{commands, open, signer};

fn start(dir: &Path) -> (Follower, pacsguard_audit::VerifyReport) {
    Follower::start(
        &dir.join("audit.log"),
        &dir.join("checkpoints.jsonl"),
        signer().verifier(),
        None,
    )
    .expect("start")
}

/// Edits record `index` in place without changing its length (the actor's name).
fn edit_in_place(dir: &Path, index: usize) {
    let path = dir.join("audit.log");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert!(lines[index].contains("\"root\""), "{}", lines[index]);
    lines[index] = lines[index].replacen("\"root\"", "\"toor\"", 1);
    std::fs::write(&path, format!("{}\n", lines.join("\n"))).expect("write");
    assert_eq!(std::fs::read(&path).expect("read").len(), text.len());
}

fn log_records(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("audit.log"))
        .expect("read")
        .lines()
        .count() as u64
}

#[test]
fn appended_records_and_checkpoints_are_verified_step_by_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 5, 4);
    let (mut follower, report) = start(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    let before = report.records;
    assert_eq!(follower.verified_records(), before);
    commands(dir.path(), 3, 4);
    let step = follower.step(MIN_SWEEP_RECORDS).expect("step");
    assert!(step.report.is_intact(), "{:?}", step.report.problems);
    assert_eq!(step.report.records, log_records(dir.path()));
    assert!(step.report.records > before);
    assert_eq!(step.report.checkpoints, report.checkpoints + 3);
    // The head moved to the newest checkpoint: nothing is left unsigned.
    assert_eq!(follower.verified_records(), step.report.records);
    assert_eq!(step.report.unsigned_records, 0);
}

#[test]
fn an_old_record_edited_before_the_start_is_found_at_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 10, 4);
    edit_in_place(dir.path(), 5);
    let (_, report) = start(dir.path());
    assert!(!report.is_intact());
}

#[test]
fn an_old_record_edited_in_place_later_is_found_by_the_rolling_pass_at_its_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 20, 4);
    let (mut follower, report) = start(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    let records = report.records;
    let tampered = (records / 2) as usize;
    edit_in_place(dir.path(), tampered);
    // A step reads only what was appended (nothing): the edit is invisible to it, and
    // each step re-reads `budget` old records from the start of the log.
    let budget = 10;
    let mut found_at = None;
    for step in 1..=records.div_ceil(budget) + 1 {
        let followed = follower.step(budget).expect("step");
        if !followed.report.is_intact() {
            found_at = Some(step);
            assert!(
                followed.report.problems[0]
                    .what
                    .contains("no longer reproduce its signed root"),
                "{:?}",
                followed.report.problems
            );
            break;
        }
        assert!(followed.swept <= step * budget, "{followed:?}");
    }
    let found_at = found_at.expect("the rolling pass finds the edit");
    // Not before the pass reaches the record, and in the step that reaches the next
    // checkpoint after it (a checkpoint every 4 records).
    let reaches = (tampered as u64 + 1).div_ceil(4) * 4;
    assert_eq!(found_at, reaches.div_ceil(budget), "tampered {tampered}");
    // Once found, the trail stays damaged.
    assert!(!follower.step(budget).expect("step").report.is_intact());
}

#[test]
fn a_full_round_of_the_rolling_pass_starts_again_from_the_first_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 5, 4);
    let (mut follower, report) = start(dir.path());
    let mut rounds = 0;
    for _ in 0..report.records.div_ceil(3) + 2 {
        let step = follower.step(3).expect("step");
        assert!(step.report.is_intact(), "{:?}", step.report.problems);
        rounds = step.full_passes;
    }
    assert_eq!(rounds, 1);
}

#[test]
fn an_old_record_whose_length_changed_is_found_at_the_next_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 10, 4);
    let (mut follower, report) = start(dir.path());
    assert!(report.is_intact());
    let path = dir.path().join("audit.log");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("\"root\"", "\"ro\"", 1)).expect("write");
    let step = follower.step(1).expect("step");
    assert!(!step.report.is_intact());
    assert!(
        step.report
            .problems
            .iter()
            .any(|p| p.what.contains("no longer ends a record")),
        "{:?}",
        step.report.problems
    );
}

#[test]
fn a_new_checkpoint_that_does_not_extend_the_verified_tree_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 4, 4);
    let (mut follower, _) = start(dir.path());
    commands(dir.path(), 2, 4);
    // A record appended since the start, edited after its checkpoint was signed.
    let last = log_records(dir.path()) as usize - 2;
    edit_in_place(dir.path(), last);
    let step = follower.step(1).expect("step");
    assert!(
        step.report
            .problems
            .iter()
            .any(|p| p.what.contains("does not extend the tree")),
        "{:?}",
        step.report.problems
    );
}

#[test]
fn a_truncated_log_and_deleted_checkpoints_are_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 4, 4);
    let (mut follower, _) = start(dir.path());
    let checkpoints = dir.path().join("checkpoints.jsonl");
    let text = std::fs::read_to_string(&checkpoints).expect("read");
    let first = text.lines().next().expect("a line");
    std::fs::write(&checkpoints, format!("{first}\n")).expect("write");
    let step = follower.step(1).expect("step");
    assert!(
        step.report
            .problems
            .iter()
            .any(|p| p.what.contains("checkpoints were deleted")),
        "{:?}",
        step.report.problems
    );
    let log = dir.path().join("audit.log");
    let bytes = std::fs::read(&log).expect("read");
    std::fs::write(&log, &bytes[..bytes.len() / 2]).expect("truncate");
    let step = follower.step(1).expect("step");
    assert!(
        step.report
            .problems
            .iter()
            .any(|p| p.what.contains("truncated")),
        "{:?}",
        step.report.problems
    );
}

#[test]
fn problems_are_kept_once_each_up_to_their_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 2, 2);
    let (mut follower, _) = start(dir.path());
    let log = dir.path().join("audit.log");
    let mut text = std::fs::read_to_string(&log).expect("read");
    for i in 0..MAX_KEPT_PROBLEMS {
        text.push_str(&format!("not a record {i}\n"));
    }
    std::fs::write(&log, &text).expect("write");
    let step = follower.step(1).expect("step");
    assert_eq!(step.report.problems.len(), MAX_KEPT_PROBLEMS);
    // The same problems found again are not kept twice.
    let step = follower.step(1).expect("step");
    assert_eq!(step.report.problems.len(), MAX_KEPT_PROBLEMS);
    // One more distinct problem is past the limit: counted, not listed.
    text.push_str("one more\n");
    std::fs::write(&log, &text).expect("write");
    let step = follower.step(1).expect("step");
    assert_eq!(step.report.problems.len(), MAX_KEPT_PROBLEMS + 1);
    assert!(
        step.report.problems[MAX_KEPT_PROBLEMS]
            .what
            .contains("1 more problems not listed"),
        "{:?}",
        step.report.problems
    );
}

#[test]
fn the_rolling_pass_rereads_every_record_within_its_period() {
    let minute = Duration::from_secs(60);
    let steps = FULL_PASS_PERIOD.as_secs() / 60;
    // Small trails: the floor.
    assert_eq!(sweep_budget(0, minute), MIN_SWEEP_RECORDS);
    assert_eq!(
        sweep_budget(steps * MIN_SWEEP_RECORDS, minute),
        MIN_SWEEP_RECORDS
    );
    // Past the floor: a round still fits in the period.
    let records = steps * MIN_SWEEP_RECORDS + 1;
    let budget = sweep_budget(records, minute);
    assert_eq!(budget, MIN_SWEEP_RECORDS + 1);
    assert!(budget * steps >= records);
}

/// With the home's record key, a record appended after the newest checkpoint without a
/// valid MAC (not written by PacsGuard) is found by the step that reads it.
#[test]
fn an_unsigned_record_without_the_homes_mac_is_found_by_the_next_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 3, 4);
    let (follower, _) = start(dir.path());
    let mut follower = follower.with_record_key(pacsguard_audit::RecordKey::of(&signer()));
    assert!(follower.step(1).expect("step").report.is_intact());
    let log = dir.path().join("audit.log");
    let mut text = std::fs::read_to_string(&log).expect("read");
    let records = text.lines().count();
    text.push_str(&format!(
        "{{\"seq\":{records},\"action\":\"check\",\"outcome\":\"success\",\"detail\":\"forged\"}}\n"
    ));
    std::fs::write(&log, &text).expect("write");
    let step = follower.step(1).expect("step");
    assert!(
        step.report
            .problems
            .iter()
            .any(|p| p.what.contains("without a valid MAC")),
        "{:?}",
        step.report.problems
    );
}

/// Found in review s8-r13: records after the newest checkpoint that a step had read were
/// cut off the log's end (at a record's end) and the next step reported a shorter trail,
/// intact: their MACs and sequence numbers say nothing of records no longer there, and a
/// writer killed before its next checkpoint would sign what is left. The follower now
/// keeps the tree of what it read and finds it again, or says what went.
#[test]
fn unsigned_records_read_at_a_step_and_then_cut_off_or_edited_are_found() {
    for attack in ["truncated", "edited"] {
        let dir = tempfile::tempdir().expect("tempdir");
        commands(dir.path(), 2, 4);
        let (follower, _) = start(dir.path());
        // Cut off: even with the home's key. Edited: by a follower without the key (a
        // console that cannot read it), which checks no MACs.
        let mut follower = if attack == "truncated" {
            follower.with_record_key(pacsguard_audit::RecordKey::of(&signer()))
        } else {
            follower
        };
        let signed = follower.verified_records() as usize;
        // A writer still running: its records wait for its next checkpoint.
        let (mut sink, _) = open(dir.path()).expect("open");
        for n in 0..3 {
            let actor = Actor {
                user: "root".into(),
                uid: 0,
                sudo_user: None,
            };
            let event = Event::new(actor, Action::Check, Outcome::Success, format!("later {n}"));
            sink.record(&event).expect("record");
        }
        let step = follower.step(1).expect("step");
        assert!(step.report.is_intact(), "{:?}", step.report.problems);
        assert!(step.report.unsigned_records >= 3);
        let log = dir.path().join("audit.log");
        let text = std::fs::read_to_string(&log).expect("read");
        let mut lines: Vec<&str> = text.lines().collect();
        let edited;
        if attack == "truncated" {
            lines.truncate(signed + 1);
        } else {
            // The last record's detail, same length: structure and sequence still hold.
            let last = lines.len() - 1;
            edited = lines[last].replacen("later 2", "later 9", 1);
            lines[last] = &edited;
        }
        std::fs::write(&log, format!("{}\n", lines.join("\n"))).expect("write");
        let step = follower.step(1).expect("step");
        assert!(
            !step.report.is_intact()
                && step
                    .report
                    .problems
                    .iter()
                    .any(|p| p.what.contains("read at the last step")),
            "{attack}: {:?}",
            step.report.problems
        );
        drop(sink);
    }
}
