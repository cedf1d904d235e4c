//! Records gathered from a whole verification's own pass (`verify_gathering`), each said
//! proven or not: what a reader that binds state to the trail may trust.

use std::io::Write as _;
use std::path::Path;

use pacsguard_audit::{Gather, RecordKey, verify_gathering};
use pacsguard_events::{Action, Actor, Event, EventSink, Outcome};

mod support;
use support::{commands, open, signer};

/// Every record gathered (each names "action"), with the home's record key or without.
fn gather(dir: &Path, with_key: bool) -> (Gather, pacsguard_audit::VerifyReport) {
    let mut gather = Gather::new(&["\"action\""]);
    if with_key {
        gather.set_record_key(RecordKey::of(&signer()));
    }
    let report = verify_gathering(
        &dir.join("audit.log"),
        &dir.join("checkpoints.jsonl"),
        signer().verifier(),
        None,
        &mut gather,
    )
    .expect("verify");
    (gather, report)
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.log"))
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn append(dir: &Path, line: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("audit.log"))
        .expect("open");
    file.write_all(line).expect("write");
    file.write_all(b"\n").expect("write");
}

/// The sizes of the signed checkpoints, oldest first.
fn checkpoint_sizes(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("checkpoints.jsonl"))
        .expect("read")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let note = v["note"].as_str().expect("note").to_string();
            note.lines().nth(1).expect("size").parse().expect("number")
        })
        .collect()
}

#[test]
fn an_intact_trail_proves_every_record_gathered_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 4, 3);
    let (gather, report) = gather(dir.path(), false);
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(gather.proven_records(), Some(report.records));
    let indices: Vec<u64> = gather.records().iter().map(|r| r.index).collect();
    assert_eq!(indices, (0..report.records).collect::<Vec<_>>());
    assert!(gather.records().iter().all(|r| r.proven));
}

/// A record edited in place (same length): proven are only the records under the
/// largest checkpoint whose root is still reproduced, all before the edit; the edited one
/// and everything after are not, however well formed.
#[test]
fn an_edited_signed_record_and_all_after_the_last_reproduced_root_are_unproven() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 5, 3);
    let sizes = checkpoint_sizes(dir.path());
    let mut all = lines(dir.path());
    let edited = 8usize;
    assert!(all[edited].contains("\"root\""), "{}", all[edited]);
    all[edited] = all[edited].replacen("\"root\"", "\"toor\"", 1);
    std::fs::write(
        dir.path().join("audit.log"),
        format!("{}\n", all.join("\n")),
    )
    .expect("write");
    let (gather, report) = gather(dir.path(), true);
    assert!(!report.is_intact());
    let reproduced = sizes
        .iter()
        .copied()
        .filter(|s| *s <= edited as u64)
        .max()
        .unwrap_or(0);
    assert!(reproduced > 0, "{sizes:?}");
    assert_eq!(gather.proven_records(), Some(reproduced));
    for record in gather.records() {
        assert_eq!(record.proven, record.index < reproduced, "{}", record.index);
    }
}

/// After the newest checkpoint: a record sealed with the home's MAC at its own position is
/// proven (with the key; never without it); a forged one is not, nor anything after it.
#[test]
fn records_after_the_newest_checkpoint_are_proven_by_their_mac_up_to_the_first_forged() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 2, 3);
    let signed = lines(dir.path()).len() as u64;
    let key = RecordKey::of(&signer());
    let sealed = |seq: u64| {
        key.seal(
            format!("{{\"seq\":{seq},\"action\":\"check\",\"detail\":\"sealed\"}}").into_bytes(),
        )
    };
    append(dir.path(), &sealed(signed));
    // Forged: no valid MAC (a copy of a sealed line with another seq).
    let forged = String::from_utf8(sealed(signed + 1))
        .expect("utf-8")
        .replace("\"sealed\"", "\"forged\"");
    append(dir.path(), forged.as_bytes());
    append(dir.path(), &sealed(signed + 2));
    let (gathered, report) = gather(dir.path(), true);
    assert_eq!(report.records, signed + 3);
    assert_eq!(gathered.proven_records(), Some(signed + 1));
    let proven: Vec<(u64, bool)> = gathered
        .records()
        .iter()
        .skip(signed as usize)
        .map(|r| (r.index, r.proven))
        .collect();
    assert_eq!(
        proven,
        [(signed, true), (signed + 1, false), (signed + 2, false)]
    );
    assert_eq!(
        gathered.records()[signed as usize + 1].position(),
        format!(
            "record {} (byte {})",
            signed + 1,
            lines(dir.path())
                .iter()
                .take(signed as usize + 1)
                .map(|l| l.len() as u64 + 1)
                .sum::<u64>()
        )
    );
    // Without the key, nothing after the newest checkpoint is proven.
    let (gathered, _) = gather(dir.path(), false);
    assert_eq!(gathered.proven_records(), Some(signed));
}

/// The records kept are bounded (MAX_GATHERED_RECORDS; a smaller limit here): at the
/// limit all are kept, one more is said overflowed and not kept.
#[test]
fn the_records_gathered_stop_at_the_limit_and_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 2, 3);
    let records = lines(dir.path()).len();
    let run = |limit: usize| {
        let mut gather = Gather::new(&["\"action\""]).with_limit(limit);
        verify_gathering(
            &dir.path().join("audit.log"),
            &dir.path().join("checkpoints.jsonl"),
            signer().verifier(),
            None,
            &mut gather,
        )
        .expect("verify");
        gather
    };
    let at = run(records);
    assert!(!at.overflowed());
    assert_eq!(at.records().len(), records);
    let over = run(records - 1);
    assert!(over.overflowed());
    assert_eq!(over.records().len(), records - 1);
}

/// Review s10-r13: a record gathered for quoted field names keeps only those fields. A
/// whole parsed record costs ~3 KB (measured: 560-byte sign-in records, 200,000 of them,
/// 592 MiB); every sign-in and step-up of the console is one, so `serve`'s start held
/// them all at once, up to MAX_GATHERED_RECORDS (~3 GB).
#[test]
fn records_gathered_by_field_name_keep_only_those_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 2, 3);
    let mut gather = Gather::new(&["\"action\""]);
    verify_gathering(
        &dir.path().join("audit.log"),
        &dir.path().join("checkpoints.jsonl"),
        signer().verifier(),
        None,
        &mut gather,
    )
    .expect("verify");
    assert!(!gather.records().is_empty());
    for found in gather.records() {
        let keys: Vec<&String> = found.record.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["action"], "{}", found.record);
    }
    // A needle that is no field name keeps the whole record, as before.
    let mut gather = Gather::new(&["action"]);
    verify_gathering(
        &dir.path().join("audit.log"),
        &dir.path().join("checkpoints.jsonl"),
        signer().verifier(),
        None,
        &mut gather,
    )
    .expect("verify");
    assert!(
        gather
            .records()
            .iter()
            .all(|r| r.record.get("seq").is_some())
    );
}

/// Issue 13, session 11: at the limit the newest records were the ones dropped, so the
/// console bound an account, session or request to an older record than its newest (a
/// session's opening without its end, an account's role before its change). With
/// `newest_per_id` the limit keeps the newest record of each id (a field's value up to
/// its first ':') and counts the older ones let go; only more distinct ids than the
/// limit overflow. Boundary: exactly at the limit nothing is let go.
#[test]
fn at_the_limit_the_newest_record_of_each_id_is_kept_and_the_older_ones_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Records binding ids 0..4, each twice (an opening, then "<id>:closed"), then id 9.
    let mut values = Vec::new();
    for id in 0..4 {
        values.push(format!("{id}:opened"));
    }
    for id in 0..4 {
        values.push(format!("{id}:closed"));
    }
    values.push("9:opened".to_string());
    {
        let (mut sink, _) = open(dir.path()).expect("open");
        for value in &values {
            let actor = Actor {
                user: "console:test".into(),
                uid: 0,
                sudo_user: None,
            };
            let mut event = Event::new(actor, Action::Logout, Outcome::Success, "bound");
            event.session_digest = Some(value.clone());
            sink.record(&event).expect("record");
        }
        sink.flush().expect("flush");
    }
    let run = |limit: usize| {
        let mut gather = Gather::new(&["\"session_digest\""])
            .newest_per_id()
            .with_limit(limit);
        verify_gathering(
            &dir.path().join("audit.log"),
            &dir.path().join("checkpoints.jsonl"),
            signer().verifier(),
            None,
            &mut gather,
        )
        .expect("verify");
        gather
    };
    let kept = |gather: &Gather| -> Vec<String> {
        gather
            .records()
            .iter()
            .map(|r| {
                r.record["session_digest"]
                    .as_str()
                    .expect("kept")
                    .to_string()
            })
            .collect()
    };
    // At the limit: every record kept, none let go.
    let at = run(values.len());
    assert_eq!((at.overflowed(), at.superseded()), (false, 0));
    assert_eq!(kept(&at), values);
    // One under: the newest of each id, in log order, the older ones counted.
    let under = run(values.len() - 1);
    assert!(!under.overflowed());
    assert_eq!(under.superseded(), 4);
    assert_eq!(
        kept(&under),
        ["0:closed", "1:closed", "2:closed", "3:closed", "9:opened"]
    );
    // Five distinct ids and room for four: overflowed, and said so.
    let few = run(4);
    assert!(few.overflowed());
    assert_eq!(kept(&few), ["0:closed", "1:closed", "2:closed", "3:closed"]);
}
