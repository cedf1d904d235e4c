//! The end of `checkpoints.jsonl` as a writer reads it when it opens the trail: every line
//! in the last `CHECKPOINT_TAIL` (64 KiB) verified, sizes never decreasing, the last
//! proven to extend the one before it, and a torn line of its own cut off; and `verify`
//! over the whole trail, which notices any single byte changed anywhere in it.

use std::path::Path;

use pacsguard_audit::verify;

mod support;
use support::{commands, open, signer};

fn checkpoint_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("checkpoints.jsonl"))
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_trail_whose_checkpoints_outgrow_the_window_opens_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    // More checkpoint lines than the window read (CHECKPOINT_TAIL and room for a torn
    // line, 128 KiB): the window begins inside one.
    commands(dir.path(), 300, 2);
    let len = std::fs::metadata(dir.path().join("checkpoints.jsonl"))
        .expect("stat")
        .len();
    assert!(len > 128 << 10, "{len}");
    let (sink, opening) = open(dir.path()).expect("opens");
    assert_eq!(opening.signed_size, 600);
    assert_eq!(sink.size(), 600);
    let report = verify(
        &dir.path().join("audit.log"),
        &dir.path().join("checkpoints.jsonl"),
        signer().verifier(),
        None,
    )
    .expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
}

#[test]
fn an_older_checkpoint_within_the_window_is_refused_and_beyond_it_left_to_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 200, 2);
    let lines = checkpoint_lines(dir.path());
    let path = dir.path().join("checkpoints.jsonl");
    // The one before the last, appended again: fewer records than the last.
    let mut text = lines.join("\n");
    text.push('\n');
    text.push_str(&lines[lines.len() - 2]);
    text.push('\n');
    std::fs::write(&path, &text).expect("write");
    let err = open(dir.path()).expect_err("refused");
    assert!(
        err.to_string().contains("fewer than the one before it"),
        "{err}"
    );
    // Two lines swapped inside the window: refused too.
    let mut swapped = lines.clone();
    let n = swapped.len();
    swapped.swap(n - 5, n - 4);
    std::fs::write(&path, format!("{}\n", swapped.join("\n"))).expect("write");
    assert!(open(dir.path()).is_err());
    // The same swap far before the window is not what a writer reads; `verify` reads it.
    let mut early = lines;
    early.swap(3, 4);
    std::fs::write(&path, format!("{}\n", early.join("\n"))).expect("write");
    assert!(open(dir.path()).is_ok());
    let report = verify(
        &dir.path().join("audit.log"),
        &path,
        signer().verifier(),
        None,
    )
    .expect("verify");
    assert!(!report.is_intact());
}

#[test]
fn a_torn_last_checkpoint_line_up_to_the_line_limit_is_ours_and_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 3, 2);
    let path = dir.path().join("checkpoints.jsonl");
    let whole = std::fs::read(&path).expect("read");
    let last = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    for cut in [last + 1, last + 30, whole.len() - 1] {
        std::fs::write(&path, &whole[..cut]).expect("torn");
        let (_, opening) = open(dir.path()).expect("opens");
        assert_eq!(
            opening.torn_checkpoint,
            Some((last as u64, (cut - last) as u64))
        );
        assert_eq!(opening.adopted, 2, "the records it would have signed");
        assert_eq!(std::fs::read(&path).expect("read"), whole[..last]);
    }
    // A line of the trail's own beginning but longer than any checkpoint line
    // (MAX_CHECKPOINT_LINE_BYTES) is no torn write of ours.
    let mut long = whole[..last].to_vec();
    let head = &whole[last..last + 40];
    long.extend_from_slice(head);
    long.extend(std::iter::repeat_n(b'A', (64 << 10) + 1 - head.len()));
    std::fs::write(&path, &long).expect("write");
    let err = open(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("incomplete"), "{err}");
    // At the limit it still is.
    long.truncate(last + (64 << 10));
    std::fs::write(&path, &long).expect("write");
    assert!(open(dir.path()).is_ok());
}

/// Every byte of the log and of the checkpoints, flipped one at a time, is a problem that
/// `verify` places. Exhaustive here, in process; the CLI's `tests/trail.rs` flips a sample
/// through the real binary (one process per flip is what made that test long).
#[test]
fn every_flipped_byte_of_the_log_or_the_checkpoints_is_a_placed_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    commands(dir.path(), 4, 2);
    let log = dir.path().join("audit.log");
    let checkpoints = dir.path().join("checkpoints.jsonl");
    let check = || verify(&log, &checkpoints, signer().verifier(), None).expect("verify");
    assert!(check().is_intact());
    for path in [&log, &checkpoints] {
        let original = std::fs::read(path).expect("read");
        for i in 0..original.len() {
            let mut bytes = original.clone();
            bytes[i] ^= 0x01;
            std::fs::write(path, &bytes).expect("write");
            let report = check();
            assert!(
                !report.problems.is_empty(),
                "{}: flipping byte {i} went unnoticed",
                path.display()
            );
        }
        std::fs::write(path, &original).expect("restore");
    }
    assert!(check().is_intact());
}
