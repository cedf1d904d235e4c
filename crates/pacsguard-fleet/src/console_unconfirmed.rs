//! Tests of the console's writes whose outcome the store leaves unknown, or that it
//! refuses for a while (review of session 33): each alert raised once, each waiting
//! write written, the log said once per change.

use std::path::Path;
use std::sync::{Arc, Mutex};

use pacsguard_events::{Finding, FindingKind};
use pacsguard_store::{ConsoleDb, FleetStore};

use super::{Fleet, now};
use crate::approval::ProfileClaim;
use crate::ca::HostCa;
use crate::cosign::Cosigner;
use crate::unanswered::{Lost, Unanswered};

type Shared<T> = Arc<Mutex<Vec<T>>>;

/// A console over `store` with its log and the findings it raised.
fn console(dir: &Path, store: &Path) -> (Fleet, Shared<String>, Shared<Finding>) {
    let logged = Shared::<String>::default();
    let log = logged.clone();
    let raised = Shared::<Finding>::default();
    let sink = raised.clone();
    let fleet = Fleet::new(
        store.to_path_buf(),
        HostCa::load_or_generate(dir, "console").expect("ca"),
        Cosigner::new("console/a", ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
        Box::new(move |f| sink.lock().expect("sink").push(f)),
    )
    .with_log(Arc::new(move |line: &str| {
        log.lock().expect("log").push(line.to_string());
    }));
    (fleet, logged, raised)
}

/// A store with one host `name` enrolled `ago` seconds ago (never heard since).
fn enrolled(name: &str, ago: i64) -> (tempfile::TempDir, std::path::PathBuf, Unanswered, i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store.sqlite");
    drop(pacsguard_store::Store::open(&store).expect("store"));
    let mut db = ConsoleDb::open(&store).expect("db");
    db.add_enrol_token(b"t", 0, i64::MAX).expect("token");
    let id = db
        .enrol_host(b"t", now() - ago, name, "a certificate's fingerprint")
        .expect("db")
        .expect("enrolled");
    let db = Unanswered {
        db,
        state: Lost::No,
        profile: Lost::No,
        profile_read: Lost::No,
    };
    (dir, store, db, id)
}

fn count(raised: &Shared<Finding>, kind: FindingKind) -> usize {
    raised
        .lock()
        .expect("raised")
        .iter()
        .filter(|f| f.kind == kind)
        .count()
}

fn lines(logged: &Shared<String>, words: &str) -> usize {
    logged
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.contains(words))
        .count()
}

/// Review of session 33, item 1: the write of a host's silence sent and never answered
/// (a COMMIT whose answer was lost) raised `host-silent` at each check that tried it
/// again while the store stayed so: one silence, one alert. Whether the write landed
/// or not, the silence is raised once, written once the store answers, and its end
/// raised when the host is heard.
#[test]
fn a_silence_whose_write_is_never_answered_is_raised_once() {
    for lost in [Lost::BeforeCommit, Lost::AfterCommit] {
        let (dir, store, mut db, id) = enrolled("ct-silent", 3600);
        let (fleet, _logged, raised) = console(dir.path(), &store);
        db.state = lost;
        for _ in 0..3 {
            let _ = fleet.check_silence(&mut db, 0);
        }
        assert_eq!(count(&raised, FindingKind::HostSilent), 1, "{lost:?}");
        db.state = Lost::No;
        fleet.check_silence(&mut db, 0).expect("the store answers");
        let host = db.host(id).expect("db").expect("host");
        assert_eq!(host.state, "silent", "{lost:?}: written once it answers");
        assert_eq!(count(&raised, FindingKind::HostSilent), 1, "{lost:?}");
    }
}

/// The same, the host heard before the store answered the silence's write: its end is
/// raised, although the store never held the silence.
#[test]
fn a_silence_raised_unwritten_ends_when_the_host_is_heard() {
    let (dir, store, mut db, id) = enrolled("ct-heard", 3600);
    let (fleet, _logged, raised) = console(dir.path(), &store);
    db.state = Lost::BeforeCommit;
    let _ = fleet.check_silence(&mut db, 0);
    assert_eq!(count(&raised, FindingKind::HostSilent), 1);
    db.state = Lost::No;
    let host = db.host(id).expect("db").expect("host");
    fleet
        .note_heard(&mut db, &host, None, u64::MAX)
        .expect("db");
    assert_eq!(count(&raised, FindingKind::HostSilenceEnded), 1);
    fleet
        .note_heard(&mut db, &host, None, u64::MAX)
        .expect("db");
    assert_eq!(count(&raised, FindingKind::HostSilenceEnded), 1, "once");
}

fn claim() -> ProfileClaim {
    ProfileClaim {
        generation: 2,
        created: now(),
        digest: "ab".repeat(32),
    }
}

/// Review of session 33, item 2: a profile claim noted by a COMMIT whose answer was
/// lost was held by the store, so the host's next report found it known and its
/// `host-profile-unapproved` was never raised. Now it is raised once the store
/// answers: at the host's next report, or by the silence check if none comes.
#[test]
fn a_profile_noted_without_an_answer_is_raised_once_the_store_answers() {
    for (lost, by_check) in [
        (Lost::AfterCommit, false),
        (Lost::AfterCommit, true),
        (Lost::BeforeCommit, false),
        (Lost::BeforeCommit, true),
    ] {
        let (dir, store, mut db, id) = enrolled("ct-profile", 0);
        let (fleet, logged, raised) = console(dir.path(), &store);
        let host = db.host(id).expect("db").expect("host");
        db.profile = lost;
        assert!(fleet.judge_profile(&mut db, &host, &claim()).is_err());
        db.profile = Lost::No;
        if by_check {
            fleet.check_silence(&mut db, now()).expect("db");
        }
        fleet
            .judge_profile(&mut db, &host, &claim())
            .expect("judged");
        assert_eq!(
            count(&raised, FindingKind::HostProfileUnapproved),
            1,
            "{lost:?}, by the check: {by_check}"
        );
        fleet
            .judge_profile(&mut db, &host, &claim())
            .expect("judged");
        assert_eq!(count(&raised, FindingKind::HostProfileUnapproved), 1);
        assert_eq!(
            lines(&logged, "did not confirm that its profile generation 2"),
            1,
            "said"
        );
    }
}

fn refuse_state_writes(store: &Path, on: bool) {
    let planted = rusqlite::Connection::open(store).expect("sqlite");
    let sql = if on {
        "CREATE TRIGGER refuse_state BEFORE UPDATE OF state ON fleet_hosts \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    } else {
        "DROP TRIGGER refuse_state;"
    };
    planted.execute_batch(sql).expect("trigger");
}

/// Review of session 33, item 3: a `quota` refusal raised while the store refused its
/// write was written by the next batch's contact before that batch ended it, so the
/// host, its batch accepted, showed the quota refusal until its next batch. Now the
/// batch ends a refusal that does not stand, written now or before.
#[test]
fn a_waiting_refusal_written_with_an_accepted_batch_is_ended_by_it() {
    let (dir, store, mut db, id) = enrolled("ct-quota", 0);
    let (fleet, _logged, _raised) = console(dir.path(), &store);
    let host = db.host(id).expect("db").expect("host");
    refuse_state_writes(&store, true);
    assert!(
        fleet
            .set_refused_state(&mut db, &host, "quota", "over its quota")
            .expect("db"),
        "raised, not written"
    );
    refuse_state_writes(&store, false);
    // A batch judged from the host as it read it (`ok`), accepted.
    fleet
        .note_heard(&mut db, &host, Some("ok"), u64::MAX)
        .expect("db");
    let after = db.host(id).expect("db").expect("host");
    assert_eq!(after.state, "ok", "{after:?}");
    // A fork waiting stands all the same.
    refuse_state_writes(&store, true);
    assert!(
        fleet
            .set_refused_state(&mut db, &after, "fork", "records from 3 again")
            .expect("db")
    );
    refuse_state_writes(&store, false);
    fleet
        .note_heard(&mut db, &after, Some("ok"), u64::MAX)
        .expect("db");
    let forked = db.host(id).expect("db").expect("host");
    assert_eq!(forked.state, "fork", "{forked:?}");
}

/// Review of session 33, item 4: a waiting write the store refused was said on the log
/// at every check (a line a second per host). Now once per change of the store's
/// answer, again every REFUSED_WRITE_SAID_EVERY (see `crate::unwritten`), and its end.
#[test]
fn a_waiting_write_the_store_refuses_is_said_once_and_its_end_said() {
    let (dir, store, mut db, id) = enrolled("ct-said", 0);
    let (fleet, logged, _raised) = console(dir.path(), &store);
    let host = db.host(id).expect("db").expect("host");
    refuse_state_writes(&store, true);
    assert!(
        fleet
            .set_refused_state(&mut db, &host, "quota", "over its quota")
            .expect("db")
    );
    for _ in 0..5 {
        fleet.check_silence(&mut db, now()).expect("db");
    }
    assert_eq!(
        lines(&logged, "is still not written"),
        1,
        "{:?}",
        logged.lock().expect("log")
    );
    refuse_state_writes(&store, false);
    fleet.check_silence(&mut db, now()).expect("db");
    fleet.check_silence(&mut db, now()).expect("db");
    assert_eq!(lines(&logged, "the store takes its writes again"), 1);
    assert_eq!(db.host(id).expect("db").expect("host").state, "quota");
}

/// Review of session 34, item 1: a refusal that does not stand (a quota), raised while
/// the store refused writes after a fork, was written over the fork when the store came
/// back (the waiting writes oldest first), and the batch accepted next ended it: the
/// fork, cleared to `ok` with no acknowledgement. A standing state is ended only by an
/// acknowledgement.
#[test]
fn a_waiting_refusal_written_after_a_fork_does_not_end_it() {
    let (dir, store, mut db, id) = enrolled("ct-fork-quota", 0);
    let (fleet, _logged, _raised) = console(dir.path(), &store);
    let host = db.host(id).expect("db").expect("host");
    refuse_state_writes(&store, true);
    for (state, words) in [
        ("fork", "records from 3 again"),
        ("quota", "over its quota"),
    ] {
        assert!(
            fleet
                .set_refused_state(&mut db, &host, state, words)
                .expect("db"),
            "{state}: raised, not written"
        );
    }
    refuse_state_writes(&store, false);
    fleet
        .note_heard(&mut db, &host, Some("ok"), u64::MAX)
        .expect("db");
    let after = db.host(id).expect("db").expect("host");
    assert_eq!(after.state, "fork", "{after:?}");
}

/// Review of session 34, item 1: a hostile copy forks, then sends one malformed report
/// (which raises nothing); the real host's next batch ended the `malformed` state, and
/// the fork with it. Now the refusal that does not stand is raised once (its state
/// named on the fork's detail), counted after, and the fork stays through any refusal
/// that does not stand and any batch.
#[test]
fn a_refusal_that_does_not_stand_keeps_a_fork() {
    for refused in ["malformed", "gap", "quota", "new-key", "inclusion"] {
        let (dir, store, mut db, id) = enrolled("ct-fork-then", 0);
        let (fleet, _logged, _raised) = console(dir.path(), &store);
        let host = db.host(id).expect("db").expect("host");
        assert!(
            fleet
                .set_refused_state(&mut db, &host, "fork", "records from 3 again")
                .expect("db")
        );
        for (time, news) in [(1, true), (2, false)] {
            let forked = db.host(id).expect("db").expect("host");
            assert_eq!(
                fleet
                    .set_refused_state(&mut db, &forked, refused, "a report of the copy")
                    .expect("db"),
                news,
                "{refused} {time}: raised once, then counted"
            );
        }
        let counted = db.host(id).expect("db").expect("host");
        assert_eq!(counted.state, "fork", "{refused}: {counted:?}");
        assert_eq!(
            counted.detail, "records from 3 again",
            "{refused}: {counted:?}"
        );
        assert_eq!(counted.again.count, 2, "{refused}: {counted:?}");
        assert!(
            counted
                .shown_detail()
                .starts_with("records from 3 again [refused again 2 times since; the last: "),
            "{refused}: {counted:?}"
        );
        fleet
            .note_heard(&mut db, &counted, Some(&counted.state), u64::MAX)
            .expect("db");
        let after = db.host(id).expect("db").expect("host");
        assert_eq!(after.state, "fork", "{refused}: {after:?}");
    }
}

/// Review of session 34, item 2: a claim whose noting went unanswered (C1), then the
/// host's profile changed and its report with C2 was judged first: the waiting C1 was
/// noted again after it (`note_heard` → `write_waiting`), the store took C1 as the
/// host's current profile, and the host's next report with C2 raised a false "went
/// back to it" alert. Now a newer claim noted drops the older waiting ones, judged
/// from a read: C1's own alert raised once, C2 current, no "went back".
#[test]
fn an_older_waiting_claim_is_not_noted_again_after_a_newer_one() {
    for lost in [Lost::AfterCommit, Lost::BeforeCommit] {
        let (dir, store, mut db, id) = enrolled("ct-replay", 0);
        let (fleet, _logged, raised) = console(dir.path(), &store);
        let host = db.host(id).expect("db").expect("host");
        let older = claim();
        let newer = ProfileClaim {
            generation: 3,
            created: now(),
            digest: "cd".repeat(32),
        };
        db.profile = lost;
        assert!(fleet.judge_profile(&mut db, &host, &older).is_err());
        db.profile = Lost::No;
        fleet.judge_profile(&mut db, &host, &newer).expect("judged");
        fleet
            .note_heard(&mut db, &host, None, u64::MAX)
            .expect("db");
        fleet.check_silence(&mut db, now()).expect("db");
        fleet.judge_profile(&mut db, &host, &newer).expect("judged");
        let current = db.current_profile_of(id).expect("db").expect("current");
        assert_eq!(current.generation, 3, "{lost:?}: {current:?}");
        let unapproved: Vec<String> = raised
            .lock()
            .expect("raised")
            .iter()
            .filter(|f| f.kind == FindingKind::HostProfileUnapproved)
            .map(|f| f.detail.clone())
            .collect();
        assert!(
            !unapproved.iter().any(|d| d.contains("went back")),
            "{lost:?}: {unapproved:?}"
        );
        assert_eq!(
            unapproved
                .iter()
                .filter(|d| d.contains("generation 2 "))
                .count(),
            1,
            "{lost:?}: the older claim's own alert, once: {unapproved:?}"
        );
        assert_eq!(
            unapproved
                .iter()
                .filter(|d| d.contains("generation 3 "))
                .count(),
            1,
            "{lost:?}: {unapproved:?}"
        );
    }
}

/// Review of session 34, item 5: a refusal that does not stand raised by another
/// request after a batch was judged (its write refused, so waiting), written by that
/// batch's contact, was ended by it as if raised before: the batch's records mend only
/// what it was judged from. Now a waiting refusal raised past the batch's mark stays.
#[test]
fn a_waiting_refusal_raised_after_the_batch_was_judged_is_not_ended_by_it() {
    let (dir, store, mut db, id) = enrolled("ct-after", 0);
    let (fleet, _logged, _raised) = console(dir.path(), &store);
    let host = db.host(id).expect("db").expect("host");
    let judged = fleet.lock_unwritten().mark();
    refuse_state_writes(&store, true);
    assert!(
        fleet
            .set_refused_state(&mut db, &host, "quota", "over its quota")
            .expect("db")
    );
    refuse_state_writes(&store, false);
    fleet
        .note_heard(&mut db, &host, Some("ok"), judged)
        .expect("db");
    let after = db.host(id).expect("db").expect("host");
    assert_eq!(after.state, "quota", "{after:?}");
}

/// Review of session 34 (third round), item 3: the older claims waiting were taken out
/// of memory before they were settled, and a store error settling one dropped them
/// all, with their `host-profile-unapproved`. Now those not settled are put back, and
/// settled (raised once) at the next report the store answers.
#[test]
fn an_older_claim_not_settled_on_a_store_error_is_settled_later() {
    let (dir, store, mut db, id) = enrolled("ct-settle", 0);
    let (fleet, _logged, raised) = console(dir.path(), &store);
    let host = db.host(id).expect("db").expect("host");
    let older = claim();
    let newer = ProfileClaim {
        generation: 3,
        created: now(),
        digest: "cd".repeat(32),
    };
    db.profile = Lost::BeforeCommit;
    assert!(fleet.judge_profile(&mut db, &host, &older).is_err());
    db.profile = Lost::No;
    db.profile_read = Lost::BeforeCommit;
    assert!(
        fleet.judge_profile(&mut db, &host, &newer).is_err(),
        "the older claim could not be read: the report is refused"
    );
    db.profile_read = Lost::No;
    fleet.judge_profile(&mut db, &host, &newer).expect("judged");
    let unapproved: Vec<String> = raised
        .lock()
        .expect("raised")
        .iter()
        .filter(|f| f.kind == FindingKind::HostProfileUnapproved)
        .map(|f| f.detail.clone())
        .collect();
    assert_eq!(
        unapproved
            .iter()
            .filter(|d| d.contains("generation 2 "))
            .count(),
        1,
        "the older claim's own alert, once: {unapproved:?}"
    );
}

/// A fork whose host then has a gap refused (raised, counted on the fork's detail).
fn forked_then(fleet: &Fleet, db: &mut Unanswered, id: i64, refused: &str, words: &str) -> bool {
    let host = db.host(id).expect("db").expect("host");
    fleet
        .set_refused_state(db, &host, refused, words)
        .expect("db")
}

/// Review of session 34 (third round), item 1: once a gap was counted on a fork, an
/// accepted batch did not end that episode, so a gap weeks later (a new one) was only
/// counted, never raised, for as long as the fork stood. Now an accepted batch ends
/// it: the next gap is raised once again, then counted.
#[test]
fn a_refusal_counted_on_a_fork_is_raised_again_after_an_accepted_batch() {
    let (dir, store, mut db, id) = enrolled("ct-episode", 0);
    let (fleet, _logged, _raised) = console(dir.path(), &store);
    assert!(forked_then(
        &fleet,
        &mut db,
        id,
        "fork",
        "records from 3 again"
    ));
    assert!(forked_then(&fleet, &mut db, id, "gap", "records from 30"));
    assert!(!forked_then(&fleet, &mut db, id, "gap", "records from 31"));
    let counted = db.host(id).expect("db").expect("host");
    fleet
        .note_heard(&mut db, &counted, Some(&counted.state), u64::MAX)
        .expect("db");
    assert!(
        forked_then(&fleet, &mut db, id, "gap", "records from 90"),
        "a gap after an accepted batch is a new one: raised"
    );
    assert!(!forked_then(&fleet, &mut db, id, "gap", "records from 91"));
    assert_eq!(db.host(id).expect("db").expect("host").state, "fork");
}

/// Review of session 34 (third round), item 2: the last kind counted was read from the
/// end of the fork's detail, after words the host controls: a copy whose malformed
/// report's words ended "; the last: new-key: …" made its next new-key refusal count
/// silently. Now the kind is kept apart from the words.
#[test]
fn words_the_host_writes_do_not_silence_the_next_refusal() {
    let (dir, store, mut db, id) = enrolled("ct-forged", 0);
    let (fleet, _logged, _raised) = console(dir.path(), &store);
    assert!(forked_then(
        &fleet,
        &mut db,
        id,
        "fork",
        "records from 3 again"
    ));
    assert!(forked_then(
        &fleet,
        &mut db,
        id,
        "malformed",
        "its checkpoint's origin is \"x; the last: new-key: y\""
    ));
    assert!(
        forked_then(
            &fleet,
            &mut db,
            id,
            "new-key",
            "a key the console does not witness"
        ),
        "a new-key refusal after a malformed one is news"
    );
}
