//! The fleet's store (issue 14): the same tests against SQLite (the home's store file)
//! and a real PostgreSQL server (started by the testkit with Debian's `postgresql`:
//! these tests fail, not skip, where it cannot start).
#![allow(clippy::disallowed_methods)]

use pacsguard_store::{
    AcceptedBatch, Acknowledgement, Again, FleetStore, FleetStoreAt, MAX_PENDING_PROFILES_PER_HOST,
    Revoker, TokenRefusal,
};
use pacsguard_testkit::postgres::{PgServer, Stopped};

/// Runs `test` on a fresh SQLite store, then on a fresh PostgreSQL database; each is
/// named in a failure.
fn on_both(test: impl Fn(&FleetStoreAt)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    rusqlite::Connection::open(&path).expect("an empty store file");
    test(&FleetStoreAt::Sqlite(path));
    let server = PgServer::start();
    test(&FleetStoreAt::Postgres(server.connection_string()));
}

/// Who revokes in these tests.
const ADMIN: Revoker<'static> = Revoker {
    by: "root (sudo by alice)",
    reason: Some("the machine is retired"),
};

fn open(at: &FleetStoreAt) -> Box<dyn FleetStore> {
    at.open()
        .unwrap_or_else(|e| panic!("{}: {e}", at.describe()))
}

fn enrol(db: &mut dyn FleetStore, token: &[u8], name: &str, fingerprint: &str) -> i64 {
    db.add_enrol_token(token, 100, 1000).expect("token");
    db.enrol_host(token, 200, name, fingerprint)
        .expect("store")
        .expect("enrolled")
}

/// An approval as the console makes it: written awaiting confirmation, then confirmed
/// (once its trail record is written); `false` if no such profile waits.
#[allow(clippy::too_many_arguments)]
fn approve(
    db: &mut dyn FleetStore,
    host: i64,
    generation: u64,
    digest: &str,
    by: &str,
    reason: &str,
    now: i64,
) -> bool {
    let id = format!("{by}-{now}");
    db.propose_profile_approval(host, generation, digest, &id, by, reason, now)
        .expect("store")
        && db
            .confirm_profile_approval(host, generation, digest, &id)
            .expect("store")
}

fn batch<'a>(
    from: u64,
    records: &'a [(u64, Vec<u8>)],
    size: u64,
    note: &'a str,
) -> AcceptedBatch<'a> {
    AcceptedBatch {
        from_size: from,
        records,
        size,
        peaks: vec![size as u8; 32],
        trail_key: "host+1234+key",
        checkpoint: note,
        cosignature: "cosigned",
        now: 300,
        contact: true,
        trail_grew: None,
    }
}

#[test]
fn a_token_enrols_once_before_it_expires_and_a_name_is_held_once() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        assert_eq!(
            db.enrol_host(b"nope", 1, "a", "f0").expect("store"),
            Err(TokenRefusal::Unknown),
            "{what}"
        );
        db.add_enrol_token(b"t1", 100, 1000).expect("token");
        assert_eq!(
            db.enrol_token_refusal(b"t1", 999).expect("store"),
            None,
            "{what}"
        );
        assert_eq!(
            db.enrol_token_refusal(b"t1", 1000).expect("store"),
            Some(TokenRefusal::Expired),
            "{what}: the boundary, at the expiry"
        );
        let id = db
            .enrol_host(b"t1", 200, "ward-1", "f1")
            .expect("store")
            .expect("enrolled");
        assert_eq!(
            db.enrol_host(b"t1", 201, "ward-2", "f2").expect("store"),
            Err(TokenRefusal::Used),
            "{what}"
        );
        db.add_enrol_token(b"t2", 100, 1000).expect("token");
        assert_eq!(
            db.enrol_host(b"t2", 202, "ward-1", "f3").expect("store"),
            Err(TokenRefusal::NameTaken),
            "{what}"
        );
        // Its look-alikes are that name (review rv44-fleet: `H3`, `h3.`, `h3_` beside
        // `h3` were four hosts), in the enrolment's own transaction.
        for look_alike in ["WARD-1", "ward-1.", "Ward_1"] {
            assert_eq!(
                db.enrol_host(b"t2", 202, look_alike, "f3").expect("store"),
                Err(TokenRefusal::NameTaken),
                "{what}: {look_alike}"
            );
        }
        assert_eq!(
            db.enrol_token_refusal(b"t2", 203).expect("store"),
            None,
            "{what}: a refused name does not spend the token"
        );
        let host = db.host_by_fingerprint("f1").expect("store").expect("host");
        assert_eq!(
            (host.id, host.name.as_str(), host.size),
            (id, "ward-1", 0),
            "{what}"
        );
        // What the host pinned (issue 14, session 46): the last its enrolment or a
        // connection proved stands (review rv46-fleet: a pin kept wrong was never
        // corrected); a row of `fleet_settings` that no setting reads.
        assert_eq!(db.host_pins().expect("store"), [], "{what}");
        db.keep_host_pin("f1", &"a".repeat(64), 200).expect("store");
        db.keep_host_pin("f1", &"b".repeat(64), 201).expect("store");
        assert_eq!(
            db.host_pins().expect("store"),
            [("f1".to_string(), "b".repeat(64))],
            "{what}"
        );
        assert_eq!(db.host_four_eyes().expect("store"), None, "{what}");
        assert_eq!(
            db.fleet_identity_fingerprint().expect("store"),
            None,
            "{what}"
        );
        assert_eq!(
            db.revoke_host("ward-1", 300, &ADMIN).expect("store"),
            1,
            "{what}"
        );
        let revoked = db.host(id).expect("store").expect("host");
        assert_eq!(
            (
                revoked.revoked_by.as_deref(),
                revoked.revoked_reason.as_deref()
            ),
            (Some(ADMIN.by), ADMIN.reason),
            "{what}: who revoked it and why, kept with the revocation"
        );
        assert_eq!(
            db.revoke_host("ward-1", 301, &ADMIN).expect("store"),
            0,
            "{what}"
        );
        let other = db.enrol_host(b"t2", 302, "ward-1", "f3").expect("store");
        assert!(other.is_ok(), "{what}: a revoked host's name is free again");
        db.add_enrol_token(b"t3", 100, 1000).expect("token");
        db.enrol_host(b"t3", 303, "Zeta", "f4")
            .expect("store")
            .expect("enrolled");
        let names: Vec<String> = db
            .hosts()
            .expect("store")
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(
            names,
            ["Zeta", "ward-1", "ward-1"],
            "{what}: byte order, as SQLite sorts"
        );
    });
}

/// Enrolments racing for one name on two connections: exactly one wins.
#[test]
fn two_enrolments_under_one_name_at_once_enrol_one_host() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        for i in 0..8u8 {
            db.add_enrol_token(&[i], 100, 1000).expect("token");
        }
        let won: usize = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8u8)
                .map(|i| {
                    s.spawn(move || {
                        let mut db = open(at);
                        db.enrol_host(&[i], 200, "pacs", &format!("fp{i}"))
                            .expect("store")
                            .is_ok()
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .filter(|won| *won)
                .count()
        });
        assert_eq!(won, 1, "{what}");
        assert_eq!(db.hosts().expect("store").len(), 1, "{what}");
    });
}

/// Issue 14 (review r30-fleet): records no checkpoint signs yet are stored, but are no
/// contact: the host's last contact stays where its last signed report put it.
#[test]
fn a_batch_that_is_no_contact_is_stored_without_moving_the_last_contact() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let first: Vec<(u64, Vec<u8>)> = (0..3)
            .map(|i| (i, format!("record {i}").into_bytes()))
            .collect();
        assert!(
            db.accept_batch(host, &batch(0, &first, 3, "note\n3\n"))
                .expect("store")
        );
        let second: Vec<(u64, Vec<u8>)> = vec![(3, b"record 3".to_vec())];
        let unsigned = AcceptedBatch {
            now: 900,
            contact: false,
            ..batch(3, &second, 4, "note\n3\n")
        };
        assert!(db.accept_batch(host, &unsigned).expect("store"), "{what}");
        let held = db.host(host).expect("store").expect("host");
        assert_eq!(held.size, 4, "{what}: stored");
        assert_eq!(held.last_contact, 300, "{what}: no contact");
    });
}

/// Issue 14: an acknowledgement of a host's standing refusal keeps who, why, when and
/// the digest acknowledged; it is written only while the host is still in the state it
/// was judged from, with a detail that begins with the words acknowledged (the refusals
/// counted after them may grow it), never on a revoked host; a store made before it
/// reads none.
#[test]
fn an_acknowledgement_is_kept_only_for_the_refusal_it_was_judged_from() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        assert_eq!(
            db.host(host).expect("store").expect("host").acknowledged,
            None
        );
        let ack = Acknowledgement {
            by: "root (sudo by alice)".into(),
            reason: "a restore from last week's backup, ticket 4711".into(),
            at: 500,
            digest: "d1".into(),
        };
        let first = "records from 3 again, but 9 were accepted already";
        assert!(db.set_host_state(host, "fork", first).expect("store"));
        // Another state, or other words: not written.
        assert!(
            !db.acknowledge_host(host, "gap", first, &ack)
                .expect("store"),
            "{what}"
        );
        assert!(
            !db.acknowledge_host(host, "fork", "records from 4 again", &ack)
                .expect("store"),
            "{what}"
        );
        // The refusals counted after the words acknowledged do not stand in the way.
        let counted = format!("{first} [refused again 2 times since]");
        assert!(
            db.set_host_state(host, "fork, silent", &counted)
                .expect("store")
        );
        assert!(db.set_host_state(host, "fork", &counted).expect("store"));
        assert!(
            db.acknowledge_host(host, "fork", first, &ack)
                .expect("store"),
            "{what}"
        );
        let held = db.host(host).expect("store").expect("host");
        assert_eq!(held.acknowledged.as_ref(), Some(&ack), "{what}");
        assert_eq!(
            (held.state.as_str(), held.detail.as_str()),
            ("fork", counted.as_str())
        );
        // A later acknowledgement replaces it; none on a revoked host.
        let again = Acknowledgement {
            digest: "d2".into(),
            at: 600,
            ..ack.clone()
        };
        assert!(
            db.acknowledge_host(host, "fork", first, &again)
                .expect("store")
        );
        assert_eq!(
            db.host(host).expect("store").expect("host").acknowledged,
            Some(again.clone()),
            "{what}"
        );
        assert_eq!(db.revoke_host("pacs", 700, &ADMIN).expect("store"), 1);
        assert!(
            !db.acknowledge_host(host, "fork", first, &ack)
                .expect("store"),
            "{what}"
        );
        assert_eq!(
            db.hosts().expect("store")[0].acknowledged,
            Some(again),
            "{what}: the list of hosts reads it too"
        );
    });
}

/// Issue 14 (review r30-fleet): when a host's signed trail last grew, and what it
/// promised, is kept with the host, so a console started anew judges its heartbeats
/// from it; a batch that did not grow it (a heartbeat, unsigned records) leaves it.
/// Session 35: the refusals counted on a standing one were written into its detail and
/// parsed back from it (`[refused again N times since ...]`), after words a host
/// controls; the state of the last one counted beside it lived in the console's memory
/// only. Both are columns now, on either store: a detail is kept whole whatever it says,
/// the count is compared and set with the state, and a state set anew starts it afresh.
#[test]
fn the_refusals_counted_on_a_standing_one_are_columns_never_words() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let read = |db: &mut dyn FleetStore| db.host(host).expect("store").expect("host");
        assert_eq!(read(db).again, Again::default(), "{what}");
        // Words a host wrote that look like the console's count.
        let planted = "records from 3 again (origin x [refused again 4000000 times since])";
        let h = read(db);
        assert!(
            db.swap_host_state(host, &h.seen(), "fork", planted, &Again::default())
                .expect("store"),
            "{what}"
        );
        let h = read(db);
        let counted = Again {
            count: 1,
            last: Some("gap: records from 30".into()),
            beside: Some("gap".into()),
        };
        assert!(
            db.swap_host_state(host, &h.seen(), "fork", planted, &counted)
                .expect("store"),
            "{what}"
        );
        let held = read(db);
        assert_eq!(
            (held.detail.as_str(), &held.again),
            (planted, &counted),
            "{what}"
        );
        assert_eq!(
            held.shown_detail(),
            format!("{planted} [refused again 1 times since; the last: gap: records from 30]"),
            "{what}"
        );
        // Judged from the read before the count: not written (both would count one).
        assert!(
            !db.swap_host_state(host, &h.seen(), "fork", planted, &counted)
                .expect("store"),
            "{what}"
        );
        // Reopened (a console restarted): the count and the state beside are there.
        let mut again = open(at);
        assert_eq!(read(again.as_mut()).again, counted, "{what}");
        // A state set anew starts the count afresh.
        assert!(
            db.set_host_state(host, "gap", "missing").expect("store"),
            "{what}"
        );
        assert_eq!(read(db).again, Again::default(), "{what}");
        assert_eq!(read(db).shown_detail(), "missing", "{what}");
    });
}

#[test]
fn when_a_hosts_trail_grew_is_kept_with_the_host() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let fresh = db.host(host).expect("store").expect("host");
        assert_eq!((fresh.trail_grew, fresh.trail_promise), (0, 0), "{what}");
        let first: Vec<(u64, Vec<u8>)> = (0..3)
            .map(|i| (i, format!("record {i}").into_bytes()))
            .collect();
        let grew = AcceptedBatch {
            trail_grew: Some((250, 3)),
            ..batch(0, &first, 3, "note\n3\n")
        };
        assert!(db.accept_batch(host, &grew).expect("store"), "{what}");
        let heartbeat = AcceptedBatch {
            now: 400,
            ..batch(3, &[], 3, "note\n3\n")
        };
        assert!(db.accept_batch(host, &heartbeat).expect("store"), "{what}");
        let held = db.host(host).expect("store").expect("host");
        assert_eq!((held.trail_grew, held.trail_promise), (250, 3), "{what}");
        assert_eq!(held.last_contact, 400, "{what}");
    });
}

#[test]
fn a_batch_is_stored_once_and_only_from_the_size_it_was_verified_against() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let first: Vec<(u64, Vec<u8>)> = (0..3)
            .map(|i| (i, format!("record {i}").into_bytes()))
            .collect();
        assert!(
            db.accept_batch(host, &batch(0, &first, 3, "note\n3\n"))
                .expect("store"),
            "{what}"
        );
        assert!(
            !db.accept_batch(host, &batch(0, &first, 3, "note\n3\n"))
                .expect("store"),
            "{what}: the same batch again (a lost answer) is not stored twice"
        );
        let second: Vec<(u64, Vec<u8>)> =
            (3..1003).map(|i| (i, vec![b'x'; i as usize % 7])).collect();
        assert!(
            db.accept_batch(host, &batch(3, &second, 1003, "note\n1003\n"))
                .expect("store"),
            "{what}"
        );
        let held = db.host(host).expect("store").expect("host");
        assert_eq!(held.size, 1003, "{what}");
        assert_eq!(held.peaks, vec![(1003 % 256) as u8; 32], "{what}");
        assert_eq!(held.checkpoint.as_deref(), Some("note\n1003\n"), "{what}");
        assert_eq!(held.trail_key.as_deref(), Some("host+1234+key"), "{what}");
        let all = db.host_records(host).expect("store");
        let expected: Vec<(u64, Vec<u8>)> = first.iter().chain(&second).cloned().collect();
        assert_eq!(
            all, expected,
            "{what}: every record once, in order, bytes as sent"
        );
        assert_eq!(
            db.host_records_between(host, 2, 5).expect("store"),
            expected[2..5],
            "{what}"
        );
        assert!(
            db.set_host_state(host, "fork", "rewound").expect("store"),
            "{what}"
        );
        assert!(
            !db.set_host_state(host, "fork", "again").expect("store"),
            "{what}: once per change"
        );
        db.touch_host(host, 400, 30).expect("store");
        let held = db.host(host).expect("store").expect("host");
        assert_eq!(
            (held.last_contact, held.interval, held.state.as_str()),
            (400, 30, "fork"),
            "{what}"
        );
    });
}

/// Two connections of one host storing at once: one batch moves the state, the other is
/// refused (and sent again by its host), never both.
#[test]
fn two_connections_of_one_host_never_interleave_their_batches() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let host = enrol(db.as_mut(), b"t", "pacs", "f");
        let stored: usize = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4u8)
                .map(|i| {
                    s.spawn(move || {
                        let mut db = open(at);
                        let records: Vec<(u64, Vec<u8>)> =
                            (0..50).map(|n| (n, vec![i; 10])).collect();
                        db.accept_batch(host, &batch(0, &records, 50, "note\n50\n"))
                            .expect("store") as usize
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().expect("racer")).sum()
        });
        assert_eq!(stored, 1, "{what}");
        let records = db.host_records(host).expect("store");
        assert_eq!(records.len(), 50, "{what}");
        assert!(
            records.iter().all(|(_, l)| *l == records[0].1),
            "{what}: one batch's records only"
        );
    });
}

#[test]
fn quota_charges_from_many_connections_are_all_counted_up_to_the_limit() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let host = enrol(db.as_mut(), b"t", "pacs", "f");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(move || {
                    let mut db = open(at);
                    for _ in 0..25 {
                        db.charge_quota(host, 1000, 100, 1_000_000, 10)
                            .expect("store")
                            .expect("within the limit");
                    }
                });
            }
        });
        assert_eq!(db.quota_used(host).expect("store"), (1000, 1000), "{what}");
        assert_eq!(
            db.charge_quota(host, 1050, 100, 1000, 1).expect("store"),
            Err((1000, 1000)),
            "{what}: one byte past the limit is refused, nothing charged"
        );
        assert_eq!(
            db.charge_quota(host, 1099, 100, 1001, 1).expect("store"),
            Ok((1000, 1001)),
            "{what}: at the limit exactly"
        );
        db.refund_quota(host, 1000, 5000).expect("store");
        assert_eq!(
            db.quota_used(host).expect("store"),
            (1000, 0),
            "{what}: never below 0"
        );
        assert_eq!(
            db.charge_quota(host, 1100, 100, 1000, 7).expect("store"),
            Ok((1100, 7)),
            "{what}: the window restarts once it has passed"
        );
    });
}

#[test]
fn profile_claims_are_new_once_approved_pruned_and_current_alike() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let noted = db.note_profile(host, 2, "aa", 10, 100).expect("store");
        assert!(noted.new && noted.approved_at.is_none(), "{what}");
        assert!(
            !db.note_profile(host, 2, "aa", 10, 101).expect("store").new,
            "{what}"
        );
        assert!(approve(db, host, 2, "aa", "ann", "checked", 150), "{what}");
        assert!(!approve(db, host, 2, "aa", "bob", "again", 151), "{what}");
        assert_eq!(
            db.note_profile(host, 2, "aa", 10, 160)
                .expect("store")
                .approved_at,
            Some(150),
            "{what}"
        );
        assert!(
            db.note_profile_in_trail(host, 3, 170).expect("store"),
            "{what}: a newer generation in the trail"
        );
        assert!(
            !db.note_profile_in_trail(host, 3, 171).expect("store"),
            "{what}: raised once"
        );
        assert!(
            !db.note_profile_in_trail(host, 1, 172).expect("store"),
            "{what}: older than the approved one"
        );
        let current = db.current_profiles().expect("store");
        assert_eq!(current.len(), 1, "{what}");
        // The host still names generation 2, approved; its trail recorded signing 3
        // since: generation 2 is shown, its approval not in effect.
        assert_eq!(
            (
                current[0].generation,
                current[0].digest.as_str(),
                current[0].superseded,
                current[0].in_effect()
            ),
            (2, "aa", Some(3), false),
            "{what}"
        );
        for generation in 10..10 + MAX_PENDING_PROFILES_PER_HOST as u64 + 5 {
            db.note_profile(host, generation, "bb", 10, 200 + generation as i64)
                .expect("store");
        }
        let pending = db.pending_profiles().expect("store");
        assert_eq!(
            pending.len(),
            MAX_PENDING_PROFILES_PER_HOST,
            "{what}: held to the limit"
        );
        assert_eq!(
            pending[0].generation,
            10 + MAX_PENDING_PROFILES_PER_HOST as u64 + 4,
            "{what}: newest first"
        );
        assert!(
            db.profile(host, 2, "aa")
                .expect("store")
                .is_some_and(|p| p.approved.is_some()),
            "{what}: approved kept"
        );
        assert!(
            !db.drop_profile_approval(host, 2, "aa", "ann-150")
                .expect("store"),
            "{what}: an approval in effect is not dropped as one awaiting confirmation"
        );
    });
}

/// Review s18: a host's current profile was its highest generation. Root on a host on
/// an approved generation 2 deletes its home and profiles anew (generation 1 again, a
/// new key): the console went on showing generation 2, approved. The current profile is
/// the one the host reports; a host going back to an approved profile after reporting
/// another (its old store put back) has it shown not in effect, said once when it goes
/// back, not signed; an approver approving the new one makes it count.
#[test]
fn a_host_made_anew_or_going_back_is_never_shown_approved() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let current = |db: &mut dyn FleetStore| {
            let rows = db.current_profiles().expect("store");
            assert_eq!(rows.len(), 1, "{what}");
            let p = &rows[0];
            (p.generation, p.digest.clone(), p.in_effect(), p.superseded)
        };
        db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert!(approve(db, host, 1, "a1", "ann", "install", 20), "{what}");
        db.note_profile(host, 2, "b2", 1, 30).expect("store");
        assert!(approve(db, host, 2, "b2", "ann", "patch", 40), "{what}");
        assert_eq!(current(db), (2, "b2".into(), true, None), "{what}");
        // Made anew: generation 1 again, another digest.
        let noted = db.note_profile(host, 1, "c1", 1, 50).expect("store");
        assert!(noted.new && noted.approved_at.is_none(), "{what}");
        assert_eq!(current(db), (1, "c1".into(), false, None), "{what}");
        // The old store put back: generation 2 as approved, named again.
        let noted = db.note_profile(host, 2, "b2", 1, 60).expect("store");
        assert_eq!(
            (noted.approved_at, noted.superseded, noted.switched),
            (Some(40), Some(1), true),
            "{what}: went back"
        );
        let noted = db.note_profile(host, 2, "b2", 1, 61).expect("store");
        assert_eq!(
            (noted.superseded, noted.switched),
            (Some(1), false),
            "{what}: said once"
        );
        assert_eq!(current(db), (2, "b2".into(), false, Some(1)), "{what}");
        // Back to the older approved generation 1 (its first store): not in effect either.
        let noted = db.note_profile(host, 1, "a1", 1, 70).expect("store");
        assert_eq!(
            (noted.superseded, noted.switched),
            (Some(2), true),
            "{what}"
        );
        assert_eq!(current(db), (1, "a1".into(), false, Some(2)), "{what}");
        // A person approves the host made anew: it counts from then on.
        db.note_profile(host, 1, "c1", 1, 80).expect("store");
        assert!(approve(db, host, 1, "c1", "bob", "rebuilt", 90), "{what}");
        let noted = db.note_profile(host, 1, "c1", 1, 91).expect("store");
        assert_eq!(
            (noted.approved_at, noted.superseded),
            (Some(90), None),
            "{what}"
        );
        assert_eq!(current(db), (1, "c1".into(), true, None), "{what}");
    });
}

/// Review s18-r13: an approval was superseded only by a profile *first seen* after it,
/// while the doc (and the report) said "reported since". The Hosts page lists every
/// profile waiting, not only the host's current one: a host on generation 2 made on it
/// (first seen before) has its older waiting generation 1 approved; it goes on naming
/// 2 after the approval; root then puts back the store of generation 1. The console
/// took it as in effect (approval signed, no alert) although the host went back to it
/// after reporting another. A profile reported at or after the approval supersedes it.
#[test]
fn a_profile_reported_after_an_approval_supersedes_it_even_if_first_seen_before() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "ws", "f");
        db.note_profile(host, 1, "a1", 1, 10).expect("store");
        db.note_profile(host, 2, "b2", 1, 20).expect("store");
        // An approver takes the older waiting one.
        assert!(approve(db, host, 1, "a1", "ann", "install", 30), "{what}");
        // The host goes on naming generation 2 after the approval.
        db.note_profile(host, 2, "b2", 1, 40).expect("store");
        // Then goes back to the approved generation 1.
        let noted = db.note_profile(host, 1, "a1", 1, 50).expect("store");
        assert_eq!(
            (
                noted.approved_at,
                noted.superseded,
                noted.switched,
                noted.returned
            ),
            (Some(30), Some(2), true, true),
            "{what}: went back after reporting generation 2"
        );
        let rows = db.current_profiles().expect("store");
        assert_eq!(
            (rows[0].generation, rows[0].in_effect(), rows[0].superseded),
            (1, false, Some(2)),
            "{what}"
        );
        // And to the unapproved generation 2 it named before: returned, not new.
        let noted = db.note_profile(host, 2, "b2", 1, 60).expect("store");
        assert_eq!(
            (noted.new, noted.approved_at, noted.returned),
            (false, None, true),
            "{what}"
        );
        let noted = db.note_profile(host, 2, "b2", 1, 70).expect("store");
        assert!(!noted.returned, "{what}: once");
        let noted = db.note_profile(host, 3, "c3", 1, 80).expect("store");
        assert!(noted.new && !noted.returned, "{what}: new, not returned");
    });
}

/// Review s19-r14: "superseded" was decided by seconds. Reports and approvals within
/// one second were not ordered: a host that went from generation 2 back to 1 and had 1
/// approved after, all in one second, was shown superseded (the approval never in
/// effect). And seconds from two clocks (two consoles on one PostgreSQL store, or a
/// clock set back) ordered a report made after an approval before it: the host going
/// to generation 2 and back to the approved 1, or its trail recording a re-baseline,
/// left the approval in effect. The host's sequence orders them, whatever the clocks.
#[test]
fn reports_and_approvals_are_ordered_by_the_hosts_sequence_not_by_the_second() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "ws", "f");
        let current = |db: &mut dyn FleetStore| {
            let rows = db.current_profiles().expect("store");
            let p = &rows[0];
            (p.generation, p.in_effect(), p.superseded)
        };
        // All in second 10: generation 2, back to 1, then 1 approved.
        db.note_profile(host, 2, "b2", 1, 10).expect("store");
        db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert!(approve(db, host, 1, "a1", "ann", "install", 10), "{what}");
        let noted = db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert_eq!(
            (noted.approved_at, noted.superseded),
            (Some(10), None),
            "{what}: approved after the host went back, in the same second"
        );
        assert_eq!(current(db), (1, true, None), "{what}");
        let status = db.current_profile_of(host).expect("store").expect("a row");
        assert!(status.in_effect(), "{what}: {status:?}");
        // Still second 10: to 2 and back to 1, after the approval.
        db.note_profile(host, 2, "b2", 1, 10).expect("store");
        let noted = db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert_eq!(noted.superseded, Some(2), "{what}: went back after it");
        assert_eq!(current(db), (1, false, Some(2)), "{what}");

        // A listener whose clock is behind the approving console's: its reports after
        // the approval are dated before it.
        let other = enrol(db, b"u", "ct", "g");
        db.note_profile(other, 1, "c1", 1, 100).expect("store");
        assert!(approve(db, other, 1, "c1", "ann", "install", 200), "{what}");
        db.note_profile(other, 2, "d2", 1, 150).expect("store");
        let noted = db.note_profile(other, 1, "c1", 1, 150).expect("store");
        assert_eq!(
            (noted.approved_at, noted.superseded),
            (Some(200), Some(2)),
            "{what}: reported after the approval, dated before it"
        );
        let row = db.current_profile_of(other).expect("store").expect("a row");
        assert!(!row.in_effect(), "{what}: {row:?}");
        // Its trail recording a re-baseline after the approval, dated before it.
        let third = enrol(db, b"v", "mr", "h");
        db.note_profile(third, 1, "e1", 1, 100).expect("store");
        assert!(approve(db, third, 1, "e1", "ann", "install", 200), "{what}");
        assert!(
            db.note_profile_in_trail(third, 2, 150).expect("store"),
            "{what}"
        );
        let row = db.current_profile_of(third).expect("store").expect("a row");
        assert_eq!(
            (row.in_effect(), row.superseded),
            (false, Some(2)),
            "{what}"
        );
    });
}

/// Review s19-r14 (N -> N+1 -> N): a host that went back to an approved generation
/// after reporting another has its approval superseded; only the approval of the host's
/// current, superseded profile can be cleared, for an approver to approve it anew, and
/// that new approval is in effect until the host reports another profile again.
#[test]
fn a_superseded_approval_of_the_current_profile_alone_is_reopened() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "ws", "f");
        db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert!(approve(db, host, 1, "a1", "ann", "install", 10), "{what}");
        assert!(
            !db.reopen_superseded_approval(host, 1, "a1").expect("store"),
            "{what}: in effect, not reopened"
        );
        db.note_profile(host, 2, "b2", 1, 10).expect("store");
        assert!(
            !db.reopen_superseded_approval(host, 1, "a1").expect("store"),
            "{what}: not the current profile"
        );
        db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert!(
            db.reopen_superseded_approval(host, 1, "a1").expect("store"),
            "{what}: went back, superseded"
        );
        let row = db.current_profile_of(host).expect("store").expect("a row");
        assert_eq!(
            (row.approved.clone(), row.in_effect()),
            (None, false),
            "{what}"
        );
        assert!(approve(db, host, 1, "a1", "bob", "restored", 10), "{what}");
        let row = db.current_profile_of(host).expect("store").expect("a row");
        assert!(row.in_effect(), "{what}: {row:?}");
        db.note_profile(host, 2, "b2", 1, 10).expect("store");
        let noted = db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert_eq!(noted.superseded, Some(2), "{what}: and again");
    });
}

/// Review s19-r14: the waiting rows kept past `MAX_PENDING_PROFILES_PER_HOST` were the
/// newest by the second they were first seen, ties by generation: within one second, a
/// claim made after an approval (of a low generation) was dropped for claims of higher
/// generations made before it, and with it what superseded the approval; the host went
/// back to the approved profile and the approval was in effect. Kept by the sequence.
#[test]
fn a_claim_after_an_approval_is_not_pruned_for_older_ones_of_the_same_second() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "ws", "f");
        let claims = MAX_PENDING_PROFILES_PER_HOST as u64;
        for n in 0..claims {
            db.note_profile(host, 100 - n, &format!("p{n}"), 1, 10)
                .expect("store");
        }
        db.note_profile(host, 3, "a3", 1, 10).expect("store");
        assert!(approve(db, host, 3, "a3", "ann", "install", 10), "{what}");
        db.note_profile(host, 1, "x1", 1, 10).expect("store");
        let noted = db.note_profile(host, 3, "a3", 1, 10).expect("store");
        assert_eq!(
            (noted.approved_at, noted.superseded.is_some()),
            (Some(10), true),
            "{what}: went to x1 and back after the approval"
        );
        let row = db.current_profile_of(host).expect("store").expect("a row");
        assert!(!row.in_effect(), "{what}: {row:?}");
    });
}

/// Review s18-r13 (held): root on a host on an approved generation floods made-up
/// claims past [`MAX_PENDING_PROFILES_PER_HOST`] so that the profile it went to (pruned,
/// the oldest waiting) no longer supersedes the approval, then goes back to it. Every
/// claim made after the approval supersedes it, and the newest are the ones kept: the
/// approval stays out of effect.
#[test]
fn a_flood_of_made_up_claims_does_not_bring_back_an_approval_gone_out_of_effect() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "ws", "f");
        db.note_profile(host, 2, "b2", 1, 10).expect("store");
        assert!(approve(db, host, 2, "b2", "ann", "patch", 20), "{what}");
        db.note_profile(host, 1, "c1", 1, 30).expect("store");
        for n in 0..MAX_PENDING_PROFILES_PER_HOST as i64 + 5 {
            db.note_profile(host, 1, &format!("x{n}"), 1, 40 + n)
                .expect("store");
        }
        let noted = db.note_profile(host, 2, "b2", 1, 100).expect("store");
        assert_eq!(
            (
                noted.approved_at,
                noted.superseded.is_some(),
                noted.switched
            ),
            (Some(20), true, true),
            "{what}"
        );
        let rows = db.current_profiles().expect("store");
        assert!(!rows[0].in_effect(), "{what}: {:?}", rows[0]);
    });
}

#[test]
fn a_revoked_hosts_trail_is_carried_over_once_to_the_host_that_continues_it() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let old = enrol(db, b"t1", "pacs", "f1");
        let records: Vec<(u64, Vec<u8>)> = (0..4).map(|i| (i, vec![b'r', i as u8])).collect();
        assert!(
            db.accept_batch(old, &batch(0, &records, 4, "note\n4\n"))
                .expect("store")
        );
        db.note_profile(old, 5, "cc", 1, 100).expect("store");
        assert!(approve(db, old, 5, "cc", "ann", "ok", 110), "{what}");
        db.revoke_host("pacs", 500, &ADMIN).expect("store");
        let revoked = db
            .revoked_host_with_trail("pacs")
            .expect("store")
            .expect("revoked");
        assert_eq!(revoked.id, old, "{what}");
        db.add_continue_token(b"t2", 600, 1000, old).expect("token");
        assert_eq!(
            db.enrol_host(b"t2", 601, "other", "f2").expect("store"),
            Err(TokenRefusal::ContinuesAnother),
            "{what}"
        );
        let new = db
            .enrol_host(b"t2", 602, "pacs", "f2")
            .expect("store")
            .expect("enrolled");
        assert_eq!(
            db.continued_host(new).expect("store").map(|h| h.id),
            Some(old),
            "{what}"
        );
        // The new enrolment named its profile already: the old, approved row replaces it.
        db.note_profile(new, 5, "cc", 1, 603).expect("store");
        assert!(db.carry_over_host(old, new).expect("store"), "{what}");
        assert!(
            !db.carry_over_host(old, new).expect("store"),
            "{what}: once"
        );
        assert_eq!(db.host_records(new).expect("store"), records, "{what}");
        assert!(db.host_records(old).expect("store").is_empty(), "{what}");
        let moved = db.host(new).expect("store").expect("host");
        assert_eq!(
            (moved.size, moved.checkpoint.as_deref()),
            (4, Some("note\n4\n")),
            "{what}"
        );
        assert!(
            db.continued_host(new).expect("store").is_none(),
            "{what}: the binding is spent"
        );
        let profile = db.profile(new, 5, "cc").expect("store").expect("profile");
        assert_eq!(
            profile.approved.map(|a| a.0),
            Some("ann".to_string()),
            "{what}"
        );
    });
}

/// The PostgreSQL server restarted under an open connection (a crash, then a start):
/// the call during the outage fails with the server's reason, the next one after it
/// reconnects, and a batch whose transaction the crash cut is not stored at all.
#[test]
fn a_restarted_postgresql_server_is_reconnected_and_nothing_is_stored_twice() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), b"t", "pacs", "f");
    let first: Vec<(u64, Vec<u8>)> = (0..10).map(|i| (i, vec![b'a'; 3])).collect();
    assert!(
        db.accept_batch(host, &batch(0, &first, 10, "note\n10\n"))
            .expect("store")
    );
    server.crash().expect("crash");
    let err = db
        .accept_batch(host, &batch(10, &first, 20, "note\n20\n"))
        .expect_err("the server is down");
    let text = err.to_string();
    assert!(
        text.contains("[console] fleet_store (PostgreSQL database postgres as postgres at"),
        "the error names the store: {text}"
    );
    server.start_again().expect("start again");
    let second: Vec<(u64, Vec<u8>)> = (10..20).map(|i| (i, vec![b'b'; 3])).collect();
    assert!(
        db.accept_batch(host, &batch(10, &second, 20, "note\n20\n"))
            .expect("reconnected"),
        "{}",
        server.log()
    );
    assert!(
        !db.accept_batch(host, &batch(10, &second, 20, "note\n20\n"))
            .expect("store")
    );
    let seqs: Vec<u64> = db
        .host_records(host)
        .expect("store")
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    let counted = server.psql("SELECT count(*), count(DISTINCT seq) FROM fleet_records");
    assert_eq!(counted.trim(), "20|20");
}

/// Issue 14 (review s15-r13): a console id is held by one running console (instance) at
/// a time on a shared PostgreSQL store: another instance presenting it is refused while
/// the holder's heartbeat is younger than the staleness bound (by the server's clock),
/// and takes it once it is older or given back.
#[test]
fn a_console_id_is_held_by_one_live_instance_at_a_time() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (mut a, mut b) = (open(&at), open(&at));
    assert!(a.claim_console("c1", "i-a", 120).expect("claim"), "free");
    assert!(
        a.claim_console("c1", "i-a", 120).expect("claim"),
        "its own (heartbeat)"
    );
    assert!(
        !b.claim_console("c1", "i-b", 120).expect("claim"),
        "held by a live instance"
    );
    assert!(
        b.claim_console("c2", "i-b", 120).expect("claim"),
        "another id is free"
    );
    b.release_console("c1", "i-b").expect("release");
    assert!(
        !b.claim_console("c1", "i-b", 120).expect("claim"),
        "not b's to give back"
    );
    // The holder's heartbeat 200 s old: taken as gone.
    server.psql("UPDATE fleet_consoles SET heartbeat = heartbeat - 200 WHERE console = 'c1'");
    assert!(
        b.claim_console("c1", "i-b", 120).expect("claim"),
        "stale: taken over"
    );
    assert!(
        !a.claim_console("c1", "i-a", 120).expect("claim"),
        "lost to the live one"
    );
    a.release_console("c1", "i-a").expect("release");
    assert!(
        !a.claim_console("c1", "i-a", 120).expect("claim"),
        "still b's"
    );
    b.release_console("c1", "i-b").expect("release");
    assert!(
        a.claim_console("c1", "i-a", 120).expect("claim"),
        "given back: free"
    );
    // Two consoles of one copied home started at the same instant (review s16-r13):
    // whatever the order the server sees them in, exactly one holds the id.
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let claims: Vec<_> = [(a, "i-x"), (b, "i-y")]
        .into_iter()
        .map(|(mut db, instance)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                db.claim_console("c9", instance, 120).expect("claim")
            })
        })
        .collect();
    let won: Vec<bool> = claims
        .into_iter()
        .map(|t| t.join().expect("claim"))
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
}

#[test]
fn a_fleet_store_setting_that_is_no_connection_string_is_refused_by_name() {
    let store = std::path::PathBuf::from("/home/store.sqlite");
    assert_eq!(
        FleetStoreAt::from_config(store.clone(), None),
        Ok(FleetStoreAt::Sqlite(store.clone()))
    );
    assert_eq!(
        FleetStoreAt::from_config(store.clone(), Some("sqlite")),
        Ok(FleetStoreAt::Sqlite(store.clone()))
    );
    let err = FleetStoreAt::from_config(store.clone(), Some("postgres://u@h:notaport/db"))
        .expect_err("refused");
    assert!(
        err.starts_with("[console] fleet_store:") && err.contains("option `port`"),
        "where it is wrong, when that shows no password: {err}"
    );
    let at =
        FleetStoreAt::from_config(store, Some("postgres://fleet:s3cret@db.example:5433/fleet"))
            .expect("a URL");
    let described = format!("{} {at:?}", at.describe());
    assert!(
        !described.contains("s3cret"),
        "never the password: {described}"
    );
    assert!(
        described.contains("database fleet as fleet at db.example port 5433"),
        "{described}"
    );
}

/// READ COMMITTED (review s10-r14): a batch of the revoked host that commits while its
/// trail is being carried over (its revocation raced its report) must go over with the
/// frontier that covers it, as under SQLite's write lock: not stay behind under the old
/// host, nor leave the new one with records past its size.
#[test]
fn a_batch_committing_during_a_carry_over_goes_over_with_its_frontier() {
    let server = PgServer::start();
    let target = server.connection_string();
    let at = FleetStoreAt::Postgres(target.clone());
    let mut db = open(&at);
    let old = enrol(db.as_mut(), b"t1", "pacs", "f1");
    let first: Vec<(u64, Vec<u8>)> = (0..10).map(|i| (i, vec![b'a'])).collect();
    assert!(
        db.accept_batch(old, &batch(0, &first, 10, "note\n10\n"))
            .expect("store")
    );
    db.revoke_host("pacs", 500, &ADMIN).expect("store");
    db.add_continue_token(b"t2", 600, 1000, old).expect("token");
    let new = db
        .enrol_host(b"t2", 602, "pacs", "f2")
        .expect("store")
        .expect("enrolled");
    // Connected before the batch begins (connecting makes the tables, which waits for
    // open writes to them).
    let mut carrier = open(&at);
    // The old host's batch 10..20, its transaction open (as accept_batch's is).
    let mut racer = postgres::Client::connect(&target, postgres::NoTls).expect("connect");
    let mut tx = racer.transaction().expect("begin");
    tx.execute(
        "UPDATE fleet_hosts SET size = 20, checkpoint = 'note\n20\n' WHERE id = $1 AND size = 10",
        &[&old],
    )
    .expect("update");
    tx.execute(
        "INSERT INTO fleet_records (host, seq, line, received) \
         SELECT $1, s, '\\x62'::bytea, 300 FROM generate_series(10, 19) AS s",
        &[&old],
    )
    .expect("insert");
    let carried = std::thread::spawn(move || carrier.carry_over_host(old, new).expect("store"));
    // The batch commits once the carry-over waits on its locks, as the server shows it:
    // a fixed second, on a loaded machine, could end before the carry-over began, and the
    // race was then not run at all (the carry-over after the commit passes as well).
    let by = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server
        .psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND backend_type = 'client backend'",
        )
        .trim()
        != "1"
    {
        assert!(
            !carried.is_finished() && std::time::Instant::now() < by,
            "the carry-over waits on the open batch's locks"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tx.commit().expect("commit");
    assert!(carried.join().expect("carry-over"));
    let moved = db.host(new).expect("store").expect("host");
    let seqs: Vec<u64> = db
        .host_records(new)
        .expect("store")
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        (moved.size, seqs),
        (20, (0..20).collect::<Vec<_>>()),
        "the frontier and the records it covers, together"
    );
    assert!(
        db.host_records(old).expect("store").is_empty(),
        "none left behind"
    );
}

/// Every host's connection opens the store (review s10-r14): once the tables exist,
/// opening must not wait for the writes in flight (making the tables again took a SHARE
/// lock on fleet_hosts: a host connecting waited for every open write to it).
#[test]
fn opening_the_store_does_not_wait_for_a_write_in_flight() {
    let server = PgServer::start();
    let target = server.connection_string();
    let at = FleetStoreAt::Postgres(target.clone());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), b"t", "pacs", "f");
    let mut writer = postgres::Client::connect(&target, postgres::NoTls).expect("connect");
    let mut tx = writer.transaction().expect("begin");
    tx.execute(
        "UPDATE fleet_hosts SET last_contact = 1 WHERE id = $1",
        &[&host],
    )
    .expect("update");
    let (sent, opened) = std::sync::mpsc::channel();
    let opener = std::thread::spawn(move || {
        let mut db = open(&at);
        let _ = sent.send(db.host(host).expect("store").is_some());
    });
    let answer = opened.recv_timeout(std::time::Duration::from_secs(60));
    tx.commit().expect("commit");
    opener.join().expect("opener");
    assert_eq!(answer, Ok(true), "opened while the write was in flight");
}

/// Not a test on its own: the process [`a_server_left_by_a_killed_test_is_stopped_by_the_next_start`]
/// kills while its server runs.
#[test]
#[ignore = "run by a_server_left_by_a_killed_test_is_stopped_by_the_next_start"]
fn a_test_process_killed_with_its_server_running() {
    let server = PgServer::start();
    println!("socket {}", server.socket_dir().display());
    std::thread::sleep(std::time::Duration::from_secs(600));
}

/// A test process killed (a CI timeout) leaves its server running: the next start
/// stops and removes it (review s10-r14).
#[test]
fn a_server_left_by_a_killed_test_is_stopped_by_the_next_start() {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "a_test_process_killed_with_its_server_running",
            "--ignored",
            "--nocapture",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let socket = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("socket ").map(std::path::PathBuf::from))
        .expect("the child's server started");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let base = socket.parent().expect("base").to_path_buf();
    let pid_file = base.join("data/postmaster.pid");
    let postmaster = std::fs::read_to_string(&pid_file).expect("the left server runs");
    let postmaster = postmaster.lines().next().expect("pid").trim().to_string();
    assert!(std::path::Path::new("/proc").join(&postmaster).exists());
    let _next = PgServer::start();
    assert!(!base.exists(), "{} removed", base.display());
    // `pg_ctl stop` returns once the server removed its pid file, a moment before the
    // process ends; and the orphaned server's new parent (PID 1 of a container) may leave
    // it a zombie for a while: stopped means gone or a zombie, within a generous bound.
    let stopped_by = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while runs(&postmaster) && std::time::Instant::now() < stopped_by {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!runs(&postmaster), "the left server {postmaster} stopped");
}

/// Whether process `pid` runs: it exists and is not a zombie (its state, the field after
/// the command's closing parenthesis in `/proc/PID/stat`, is not `Z` or `X`).
fn runs(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(std::path::Path::new("/proc").join(pid).join("stat"))
    else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Runs `work` on a thread of its own and waits for it at most `bound` (an upper bound
/// for a failure, never a measure): `None` if it is still running then.
fn within<T: Send + 'static>(
    bound: std::time::Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (sent, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(work());
    });
    done.recv_timeout(bound).ok()
}

/// A listener that takes every TCP connection and never says a word (a `nc -l`, a
/// firewall's tarpit, a wrong port): opening the store gives up within its start-up
/// deadline, naming it, instead of waiting for ever (only the socket's connect was
/// bounded).
#[test]
fn a_listener_that_never_answers_is_given_up_within_the_connect_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // kept open, never read nor written
        }
    });
    let target = format!("host=127.0.0.1 port={port} user=fleet dbname=fleet");
    let bound = pacsguard_store::PG_CONNECT_TIMEOUT * 6;
    let opened = within(bound, move || {
        FleetStoreAt::Postgres(target).open().map(|_| ())
    })
    .unwrap_or_else(|| panic!("still waiting after {bound:?}"));
    let err = opened.expect_err("nothing answered");
    let text = err.to_string();
    assert!(
        matches!(err, pacsguard_store::StoreError::PostgresDeadline { .. })
            && text.contains("PG_CONNECT_TIMEOUT")
            && text.starts_with(
                "[console] fleet_store (PostgreSQL database fleet as fleet at 127.0.0.1"
            ),
        "{text}"
    );
    assert!(!err.is_permanent(), "a server stuck now may answer later");
}

/// A real PostgreSQL backend stopped (SIGSTOP) under an open connection, as a server
/// that stops answering mid-query does: the call gives up within its deadline with an
/// error naming it; another connection is served meanwhile; once the backend runs
/// again the same store object works (on a new connection).
#[test]
fn a_backend_stopped_mid_query_is_given_up_and_the_store_works_again() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), b"t", "pacs", "f");
    let stuck = server.client_backends(None);
    assert_eq!(stuck.len(), 1, "one connection: {stuck:?}");
    let stopped = Stopped::stop(stuck[0]);
    let bound = pacsguard_store::PG_CALL_DEADLINE * 6;
    let (mut db, answer) = within(bound, move || {
        let answer = db.host(host);
        (db, answer)
    })
    .unwrap_or_else(|| panic!("still waiting after {bound:?}"));
    let err = answer.expect_err("the backend is stopped");
    let text = err.to_string();
    assert!(
        matches!(err, pacsguard_store::StoreError::PostgresDeadline { .. })
            && text.contains("PG_CALL_DEADLINE"),
        "{text}"
    );
    // The server itself still serves others.
    let other_at = at.clone();
    let other = within(bound, move || {
        open(&other_at).host(host).map(|h| h.is_some())
    })
    .expect("another connection is served");
    assert!(other.expect("store"), "the host is found");
    drop(stopped);
    let back = within(bound, move || db.host(host).map(|h| h.map(|h| h.name)))
        .expect("answered once the backend runs");
    assert_eq!(back.expect("reconnected").as_deref(), Some("pacs"));
}

/// The pool opens at most its size; a request past it waits for one given back, and
/// one that waited its whole wait is refused naming the limit, and counted.
#[test]
fn the_pool_holds_its_size_and_a_request_past_it_is_refused_by_name() {
    on_both(|at| {
        drop(open(at)); // the tables
        let pool = pacsguard_store::FleetPool::with_limits(
            at.clone(),
            2,
            std::time::Duration::from_millis(300),
        );
        let first = pool.get().expect("one");
        let second = pool.get().expect("two: at the limit");
        assert_eq!(pool.in_use(), 2);
        let err = pool.get().expect_err("past the limit");
        let text = err.to_string();
        assert!(
            text.contains("all 2 connections (PG_POOL_SIZE)") && text.contains("PG_POOL_WAIT"),
            "{text}"
        );
        assert_eq!(pool.exhausted(), 1, "reported");
        // A request whose budget ends before PG_POOL_WAIT would is refused naming its
        // budget, with the time it waited (review s12-r14: said "0 s (PG_POOL_WAIT)").
        let err = pool
            .get_until(std::time::Instant::now() + std::time::Duration::from_millis(100))
            .expect_err("past the limit");
        let text = err.to_string();
        assert!(
            text.contains("(FLEET_REQUEST_BUDGET)")
                && !text.contains("PG_POOL_WAIT")
                && !text.contains(" 0 ms"),
            "{text}"
        );
        assert_eq!(pool.exhausted(), 2, "reported");
        drop(first);
        drop(second);
        assert_eq!(pool.in_use(), 0);
        // A request waiting while every connection is taken gets the one given back
        // (whether it came before or after the give-back), not an error after its wait.
        let one = pacsguard_store::FleetPool::with_limits(
            at.clone(),
            1,
            std::time::Duration::from_secs(120),
        );
        let taken = one.get().expect("the one");
        let waiter = {
            let one = one.clone();
            std::thread::spawn(move || one.get().map(|_| ()))
        };
        drop(taken);
        assert!(waiter.join().expect("waiter").is_ok());
        assert_eq!(one.exhausted(), 0);
        assert_eq!(pool.in_use(), 0);
        let again = pool.get().expect("an idle one");
        drop(again);
    });
}

/// Many requests at once on PostgreSQL: never more server connections than the pool's
/// size (one per host connection before).
#[test]
fn many_requests_at_once_open_no_more_connections_than_the_pool_holds() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let host = enrol(open(&at).as_mut(), b"t", "pacs", "f");
    let pool = pacsguard_store::FleetPool::with_limits(at, 3, std::time::Duration::from_secs(120));
    let mut most = 0;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..12)
            .map(|_| {
                let pool = pool.clone();
                s.spawn(move || {
                    for _ in 0..20 {
                        let mut db = pool.get().expect("a connection");
                        db.touch_host(host, 1, 5).expect("store");
                    }
                })
            })
            .collect();
        while workers.iter().any(|w| !w.is_finished()) {
            most = most.max(server.client_backends(None).len());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for w in workers {
            w.join().expect("worker");
        }
    });
    most = most.max(server.client_backends(None).len());
    assert!(
        (1..=3).contains(&most),
        "{most} server connections for a pool of 3"
    );
    assert!(pool.in_use() == 0 && pool.exhausted() == 0);
}

/// An unencoded '@', '#' or '/' in a URL's password (the URL then reads in more than
/// one way, and a fragment of the password was taken for the host and shown) is refused
/// by name, and no message or debug text holds any part of the password.
#[test]
fn a_password_with_an_unencoded_at_hash_or_slash_is_refused_and_never_shown() {
    let store = std::path::PathBuf::from("/home/store.sqlite");
    let fragments = ["Xq7", "Zr9", "Lm2", "Kp4"];
    for (url, named) in [
        ("postgres://fleet:Xq7@Zr9Lm2Kp4@db.example/fleet", "'@'"),
        ("postgres://fleet:Xq7#Zr9Lm2Kp4@db.example/fleet", "'#'"),
        ("postgresql://fleet:Xq7/Zr9Lm2Kp4@db.example/fleet", "'/'"),
    ] {
        let err = FleetStoreAt::from_config(store.clone(), Some(url)).expect_err(url);
        assert!(
            err.starts_with("[console] fleet_store:") && err.contains(named),
            "{err}"
        );
        let at = FleetStoreAt::Postgres(url.to_string());
        let opened = at
            .open()
            .map(|_| ())
            .expect_err("refused before connecting");
        assert!(opened.is_permanent(), "{opened}");
        for text in [err, opened.to_string(), at.describe(), format!("{at:?}")] {
            for fragment in fragments {
                assert!(!text.contains(fragment), "{fragment} shown: {text}");
            }
        }
    }
    // The key=value form, a password with a space left unquoted: the parser's words
    // ("unknown option `Zr9`") would show a part of it.
    for text in [
        "host=db.example user=fleet password=Xq7 Zr9=Lm2 dbname=fleet",
        "host=db.example user=fleet password='Xq7 Zr9Lm2 dbname=fleet",
    ] {
        let err = FleetStoreAt::from_config(store.clone(), Some(text)).expect_err(text);
        assert!(err.starts_with("[console] fleet_store:"), "{err}");
        let opened = FleetStoreAt::Postgres(text.to_string())
            .open()
            .map(|_| ())
            .expect_err(text);
        for shown in [err, opened.to_string()] {
            for fragment in fragments {
                assert!(!shown.contains(fragment), "{fragment} shown: {shown}");
            }
        }
    }
    // Percent-encoded, it is one reading: taken, and still never shown.
    let at = FleetStoreAt::from_config(
        store,
        Some("postgres://fleet:Xq7%40Zr9%23Lm2%2FKp4@db.example/fleet"),
    )
    .expect("encoded");
    let shown = format!("{} {at:?}", at.describe());
    assert!(
        shown.contains("database fleet as fleet at db.example") && !shown.contains("Xq7"),
        "{shown}"
    );
}

/// What will not change however often it is tried (no such database, no such user) is
/// permanent (`serve` exits 2 on it); a server down is not.
#[test]
fn a_missing_database_or_user_is_permanent_and_a_server_down_is_not() {
    let server = PgServer::start();
    let socket = server.socket_dir().display().to_string();
    for target in [
        format!("host={socket} port=5432 user=postgres dbname=nosuchdb"),
        format!("host={socket} port=5432 user=nosuchuser dbname=postgres"),
    ] {
        let err = FleetStoreAt::Postgres(target.clone())
            .open()
            .map(|_| ())
            .expect_err(&target);
        assert!(err.is_permanent(), "{err}");
        assert!(
            err.to_string().contains("does not exist"),
            "the server's reason is shown: {err}"
        );
    }
    server.stop().expect("stop");
    let err = FleetStoreAt::Postgres(server.connection_string())
        .open()
        .map(|_| ())
        .expect_err("down");
    assert!(!err.is_permanent(), "{err}");
}

/// Session 32: a call whose connection could not be opened again (the server down)
/// sent nothing, but `outcome_unknown` took its refused connection for a statement whose
/// answer was lost: a caller raising an alert for the write took "not done" for "may
/// have been done". Now such a failure is known not done.
#[test]
fn a_call_whose_connection_could_not_be_opened_is_known_not_done() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let host = enrol(db.as_mut(), b"t", "pacs", "f");
    let current = db.host(host).expect("store").expect("enrolled");
    server.stop().expect("stop");
    // The first call may find the old connection broken mid-exchange (unknown); the
    // next one opens a new connection, which the server down refuses.
    let _ = db.swap_host_state(
        host,
        &current.seen(),
        "fork",
        "records from 3 again",
        &Default::default(),
    );
    let err = db
        .swap_host_state(
            host,
            &current.seen(),
            "fork",
            "records from 3 again",
            &Default::default(),
        )
        .expect_err("the server is down");
    assert!(!err.outcome_unknown(), "nothing was sent: {err}");
    assert!(!err.is_permanent(), "{err}");
    // Opened afresh, the same.
    let err = at.open().map(|_| ()).expect_err("down");
    assert!(!err.outcome_unknown(), "{err}");
}

/// A TCP proxy (python) in front of a server's socket: after a client chunk holding
/// `argv[2]`, the next one (the statement's execution, after its preparation) starts a
/// stall of the server's answers while the file `argv[3]` exists: the server has done
/// the statement, the client never hears of it.
const STALLING_PROXY: &str = r#"
# TCP 127.0.0.1:0 -> unix socket; after a client chunk holding MARKER, the next client
# chunk starts a stall of server->client bytes while the file STALL exists.
import os, socket, sys, threading, time
sock_path, marker, stall = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(64)
print(ls.getsockname()[1], flush=True)
def serve(c):
    s = socket.socket(socket.AF_UNIX); s.connect(sock_path)
    state = {"armed": False, "stalling": False}
    def up():
        try:
            while True:
                d = c.recv(65536)
                if not d: break
                if state["armed"] and os.path.exists(stall):
                    state["stalling"] = True
                if marker in d: state["armed"] = True
                s.sendall(d)
        except OSError: pass
        try: s.shutdown(socket.SHUT_WR)
        except OSError: pass
    def down():
        try:
            while True:
                d = s.recv(65536)
                if not d: break
                while state["stalling"] and os.path.exists(stall): time.sleep(0.05)
                state["stalling"] = False
                c.sendall(d)
        except OSError: pass
        try: c.close()
        except OSError: pass
    threading.Thread(target=up, daemon=True).start()
    threading.Thread(target=down, daemon=True).start()
while True:
    c, _ = ls.accept()
    serve(c)
"#;

/// A transaction given up at its deadline after its `LOCK TABLE` was done by the
/// server (an enrolment whose answers were stalled on the network): once its connection
/// is given back to the pool, the lock is gone at once, not held by a server session
/// idle in its transaction until the connection's next use or
/// PG_IDLE_IN_TRANSACTION_TIMEOUT, every host's report waiting on it meanwhile
/// (review s11-r14).
#[test]
fn a_transaction_given_up_at_its_deadline_holds_no_lock_once_given_back() {
    use std::io::BufRead as _;
    let server = PgServer::start();
    let mut db = open(&FleetStoreAt::Postgres(server.connection_string()));
    let host = enrol(db.as_mut(), b"t", "pacs", "f");
    db.add_enrol_token(b"u", 100, i64::MAX).expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let stall = dir.path().join("stall");
    let mut proxy = std::process::Command::new("python3")
        .args(["-c", STALLING_PROXY])
        .arg(server.socket_dir().join(".s.PGSQL.5432"))
        .arg("LOCK TABLE fleet_hosts")
        .arg(&stall)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut port = String::new();
    std::io::BufReader::new(proxy.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("the proxy's port");
    let at = FleetStoreAt::Postgres(format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        port.trim()
    ));
    let pool = pacsguard_store::FleetPool::with_limits(at, 2, std::time::Duration::from_secs(60));
    let mut slow = pool.get().expect("a connection");
    std::fs::write(&stall, b"").expect("stall");
    let err = slow
        .enrol_host(b"u", 300, "other", "g")
        .expect_err("its answers never came");
    assert!(
        matches!(err, pacsguard_store::StoreError::PostgresDeadline { .. }),
        "{err}"
    );
    std::fs::remove_file(&stall).expect("no more stall");
    drop(slow);
    let started = std::time::Instant::now();
    let touched = db.touch_host(host, 400, 30);
    let _ = proxy.kill();
    let _ = proxy.wait();
    touched.expect("another host's report is not held up by the lock of the call given up");
    assert!(
        started.elapsed() < pacsguard_store::PG_STATEMENT_TIMEOUT / 2,
        "waited {:?}",
        started.elapsed()
    );
}

/// A `psql` session holding host `host`'s row lock in an open transaction, its backend
/// then stopped (SIGSTOP): a backend stopped inside a transaction keeps its locks and
/// cannot end its own idle transaction. Ended (SIGCONT, then its input closed: the
/// server rolls back) when dropped.
struct StuckLockHolder {
    psql: std::process::Child,
    stopped: Option<Stopped>,
}

impl StuckLockHolder {
    fn hold(server: &PgServer, host: i64) -> StuckLockHolder {
        use std::io::Write as _;
        let before = server.client_backends(None);
        let mut psql = std::process::Command::new(
            pacsguard_testkit::postgres::program("psql").unwrap_or_else(|e| panic!("{e}")),
        )
        .args(["-X", "-q", "-h"])
        .arg(server.socket_dir())
        .args(["-p", "5432", "-U", "postgres", "-d", "postgres"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql runs");
        let mut input = psql.stdin.take().expect("stdin");
        writeln!(
            input,
            "BEGIN; SELECT id FROM fleet_hosts WHERE id = {host} FOR UPDATE;"
        )
        .expect("psql takes the statements");
        psql.stdin = Some(input);
        // Found via pg_stat_activity: the new backend, idle in its transaction (the
        // row lock taken), within a generous bound.
        let by = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let pid = loop {
            let holding = server.client_backends(Some("idle in transaction"));
            if let Some(pid) = holding.into_iter().find(|p| !before.contains(p)) {
                break pid;
            }
            assert!(std::time::Instant::now() < by, "psql's transaction began");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        StuckLockHolder {
            psql,
            stopped: Some(Stopped::stop(pid)),
        }
    }
}

impl Drop for StuckLockHolder {
    fn drop(&mut self) {
        drop(self.stopped.take()); // SIGCONT
        drop(self.psql.stdin.take()); // end of input: psql ends, the server rolls back
        let _ = self.psql.wait();
    }
}

/// A backend stopped while it holds a host's row lock (issue 14, session 12): a request
/// needing that row fails once the server's PG_LOCK_TIMEOUT passes, with an error naming
/// the store and the reason (not the deadline that closes the connection); requests for
/// other hosts are served meanwhile, on the pool's connections, the one that waited
/// included; once the backend runs again and its session ends, the host is served again.
#[test]
fn a_stopped_backend_holding_a_row_lock_fails_requests_for_that_host_only() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&at);
    let locked = enrol(db.as_mut(), b"t", "pacs", "f");
    let other = enrol(db.as_mut(), b"u", "ward-3", "g");
    drop(db);
    let holder = StuckLockHolder::hold(&server, locked);
    let pool = pacsguard_store::FleetPool::with_limits(at, 2, std::time::Duration::from_secs(60));
    let bound = pacsguard_store::PG_CALL_DEADLINE * 6;
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mut db = pool.get().expect("a connection");
            db.touch_host(locked, 400, 30)
        })
    };
    // While that request waits on the lock (seen as a lock wait by the server, or
    // already ended by it), another host's requests are served.
    let by = std::time::Instant::now() + bound;
    while !waiter.is_finished()
        && !server
            .psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND backend_type = 'client backend'",
            )
            .trim()
            .starts_with('1')
    {
        assert!(
            std::time::Instant::now() < by,
            "the request waits on the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    {
        let pool = pool.clone();
        let served = within(bound, move || {
            let mut db = pool.get().expect("a connection");
            db.touch_host(other, 401, 30)?;
            db.host(other)
        })
        .unwrap_or_else(|| panic!("another host still waiting after {bound:?}"));
        assert_eq!(served.expect("served").map(|h| h.last_contact), Some(401));
    }
    let err = within(bound, move || waiter.join().expect("waiter"))
        .unwrap_or_else(|| panic!("the locked host's request still waiting after {bound:?}"))
        .expect_err("the row stays locked by the stopped backend");
    let text = err.to_string();
    assert!(
        matches!(err, pacsguard_store::StoreError::PostgresLockTimeout { .. })
            && text.starts_with("[console] fleet_store (PostgreSQL database postgres")
            && text.contains("PG_LOCK_TIMEOUT")
            && text.contains("nothing was stored"),
        "{text}"
    );
    assert!(!err.is_permanent(), "a lock held now may be free later");
    // Both of the pool's connections serve the other host (the one that waited too:
    // the server cancelled its statement, the connection stays usable).
    for _ in 0..2 {
        let (mut one, mut two) = (
            pool.get().expect("a connection"),
            pool.get().expect("another"),
        );
        one.touch_host(other, 402, 30).expect("served");
        two.touch_host(other, 403, 30).expect("served");
    }
    drop(holder);
    let mut db = pool.get().expect("a connection");
    // psql has ended; its backend ends when it reads the close, at once or soon.
    let by = std::time::Instant::now() + bound;
    loop {
        match db.touch_host(locked, 404, 30) {
            Ok(()) => break,
            Err(pacsguard_store::StoreError::PostgresLockTimeout { .. })
                if std::time::Instant::now() < by => {}
            Err(e) => panic!("the lock is gone with the stopped session: {e}"),
        }
    }
    assert_eq!(
        db.host(locked).expect("store").map(|h| h.last_contact),
        Some(404)
    );
}

/// A request given a deadline (the console bounds a host's request below the host's
/// IO_TIMEOUT, issue 14, session 12): a call whose backend stopped answering gives up by
/// the request's deadline, naming FLEET_REQUEST_BUDGET, not by its own PG_CALL_DEADLINE;
/// the connection given back serves the next request (on a new connection) with no
/// deadline of the request before it left on it.
#[test]
fn a_request_with_a_deadline_gives_up_by_it_and_leaves_none_behind() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let host = enrol(open(&at).as_mut(), b"t", "pacs", "f");
    let pool = pacsguard_store::FleetPool::with_limits(at, 1, std::time::Duration::from_secs(60));
    let mut db = pool
        .get_until(std::time::Instant::now() + std::time::Duration::from_secs(60))
        .expect("a connection");
    db.touch_host(host, 300, 30).expect("served");
    let backend = server.client_backends(None);
    assert_eq!(backend.len(), 1, "the pool's one connection: {backend:?}");
    drop(db);
    let stopped = Stopped::stop(backend[0]);
    let bound = pacsguard_store::PG_CALL_DEADLINE * 6;
    let answer = {
        let pool = pool.clone();
        within(bound, move || {
            // More than PG_MIN_STATEMENT_TIME: the query is sent, and its answer
            // waited for until the request's deadline.
            let mut db = pool
                .get_until(std::time::Instant::now() + pacsguard_store::PG_MIN_STATEMENT_TIME * 3)
                .expect("the idle connection");
            db.host(host).map(|_| ())
        })
        .unwrap_or_else(|| panic!("still waiting after {bound:?}"))
    };
    let err = answer.expect_err("the backend is stopped");
    let text = err.to_string();
    assert!(
        matches!(err, pacsguard_store::StoreError::PostgresDeadline { .. })
            && text.contains("FLEET_REQUEST_BUDGET")
            && !text.contains("PG_CALL_DEADLINE"),
        "{text}"
    );
    drop(stopped);
    let back = within(bound, move || {
        let mut db = pool.get().expect("a connection");
        db.touch_host(host, 301, 30)?;
        db.host(host)
    })
    .unwrap_or_else(|| panic!("still waiting after {bound:?}"));
    assert_eq!(
        back.expect("served without the old deadline")
            .map(|h| h.last_contact),
        Some(301)
    );
}

/// Session 31 (issue 14): a request that spent its budget waiting (in a lock, a slow
/// store, the console's race hook) sent its next statement with a few milliseconds left,
/// gave up on the answer, and took the failure for "not written" while PostgreSQL had
/// carried the statement out: a host's state written as a fork, its alert never raised.
/// Now a statement is not sent with less than PG_MIN_STATEMENT_TIME left: nothing of it
/// is done, and the error says so.
#[test]
fn a_statement_with_too_little_of_its_budget_left_is_not_sent() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let host = enrol(open(&at).as_mut(), b"t", "pacs", "f");
    let pool = pacsguard_store::FleetPool::with_limits(at, 1, std::time::Duration::from_secs(60));
    // The pool's one connection, opened and given back: the next request takes it idle.
    pool.get()
        .expect("a connection")
        .host(host)
        .expect("served");
    let mut db = pool
        .get_until(std::time::Instant::now() + pacsguard_store::PG_MIN_STATEMENT_TIME / 2)
        .expect("the idle connection");
    let seen = pacsguard_store::SeenState {
        state: "",
        last_contact: 0,
        again: 0,
    };
    let before = server.psql(&format!(
        "SELECT state, last_contact FROM fleet_hosts WHERE id = {host}"
    ));
    let err = db
        .swap_host_state(
            host,
            &seen,
            "fork",
            "records from 3 again",
            &Default::default(),
        )
        .expect_err("too little left to send it");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            pacsguard_store::StoreError::PostgresDeadline { sent: false, .. }
        ) && text.contains("was not sent")
            && text.contains("PG_MIN_STATEMENT_TIME"),
        "{text}"
    );
    assert!(!err.outcome_unknown(), "known not done: {text}");
    drop(db);
    assert_eq!(
        server.psql(&format!(
            "SELECT state, last_contact FROM fleet_hosts WHERE id = {host}"
        )),
        before,
        "nothing of it was done"
    );
    assert!(!before.contains("fork"), "{before}");
}

/// What PG_MIN_STATEMENT_TIME guards against, on a real server: a statement sent and
/// given up on at the request's deadline is still carried out by the server (a trigger
/// slows the update down past the deadline, as a loaded server would). The error says
/// its outcome is unknown, so that a caller raising an alert for the change does not
/// take it for "not written".
#[test]
fn a_statement_given_up_after_it_was_sent_is_of_unknown_outcome_and_may_stand() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let host = enrol(open(&at).as_mut(), b"t", "pacs", "f");
    server.psql(
        "CREATE FUNCTION slow_fork() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(4); RETURN NEW; END $$; \
         CREATE TRIGGER slow_fork BEFORE UPDATE ON fleet_hosts FOR EACH ROW \
         WHEN (NEW.state = 'fork') EXECUTE FUNCTION slow_fork()",
    );
    let pool = pacsguard_store::FleetPool::with_limits(at, 1, std::time::Duration::from_secs(60));
    let current = pool
        .get()
        .expect("a connection")
        .host(host)
        .expect("store")
        .expect("enrolled");
    let mut db = pool
        .get_until(std::time::Instant::now() + pacsguard_store::PG_MIN_STATEMENT_TIME * 2)
        .expect("a connection");
    let err = db
        .swap_host_state(
            host,
            &current.seen(),
            "fork",
            "records from 3 again",
            &Default::default(),
        )
        .expect_err("given up before the server answered");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            pacsguard_store::StoreError::PostgresDeadline { sent: true, .. }
        ) && text.contains("FLEET_REQUEST_BUDGET"),
        "{text}"
    );
    assert!(err.outcome_unknown(), "{text}");
    drop(db);
    // The server carries the update out once the trigger's sleep ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = server.psql(&format!("SELECT state FROM fleet_hosts WHERE id = {host}"));
        if state.trim() == "fork" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the update never landed: {state}; {}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The administrator's own `lock_timeout` in the connection string's `options` wins
/// over PG_LOCK_TIMEOUT, and a lock wait it ended is said as such, not as PG_LOCK_TIMEOUT's
/// 2 s (review s12-r14: the message said "for 2 s (PG_LOCK_TIMEOUT)" whatever was set).
#[test]
fn a_lock_wait_ended_by_the_administrators_lock_timeout_is_said_as_theirs() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let locked = enrol(open(&at).as_mut(), b"t", "pacs", "f");
    let holder = StuckLockHolder::hold(&server, locked);
    let theirs = FleetStoreAt::Postgres(format!(
        "{} options='-c lock_timeout=300'",
        server.connection_string()
    ));
    let bound = pacsguard_store::PG_CALL_DEADLINE * 6;
    let err = within(bound, move || {
        let mut db = open(&theirs);
        db.touch_host(locked, 400, 30)
    })
    .unwrap_or_else(|| panic!("still waiting after {bound:?}"))
    .expect_err("the row stays locked by the stopped backend");
    let text = err.to_string();
    assert!(
        matches!(err, pacsguard_store::StoreError::PostgresLockTimeout { .. })
            && text.contains("lock_timeout set in the connection string's options")
            && !text.contains("2 s"),
        "{text}"
    );
    drop(holder);
}

/// Issue 14: an approval is written awaiting confirmation and is not in effect until
/// confirmed (the console confirms it once its trail record is written): no report
/// gets it (`note_profile` says unapproved), the pages show it unapproved, and it is
/// dropped by its id only. A store closed between the steps (the console killed) keeps
/// it awaiting, still not in effect. Both stores alike.
#[test]
fn an_approval_awaiting_its_record_is_not_in_effect_until_confirmed() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let host = enrol(db.as_mut(), b"t", "pacs", "f");
        db.note_profile(host, 2, "aa", 10, 100).expect("store");
        db.note_profile(host, 3, "bb", 10, 101).expect("store");
        assert!(
            db.propose_profile_approval(host, 2, "aa", "id-1", "console:ann", "change 7", 150)
                .expect("store"),
            "{what}"
        );
        assert!(
            !db.propose_profile_approval(host, 2, "aa", "id-2", "console:bob", "again", 151)
                .expect("store"),
            "{what}: one approval awaits at a time"
        );
        // The console dies here: a new connection finds it awaiting, not in effect.
        drop(db);
        let mut db = open(at);
        let row = db.profile(host, 2, "aa").expect("store").expect("kept");
        assert_eq!(row.approved, None, "{what}");
        let awaiting = row.awaiting.expect("awaiting");
        assert_eq!(
            (
                awaiting.id.as_str(),
                awaiting.by.as_str(),
                awaiting.reason.as_str(),
                awaiting.at
            ),
            ("id-1", "console:ann", "change 7", 150),
            "{what}"
        );
        assert_eq!(
            db.note_profile(host, 2, "aa", 10, 160)
                .expect("store")
                .approved_at,
            None,
            "{what}: no report gets an approval awaiting confirmation"
        );
        assert!(
            db.pending_profiles()
                .expect("store")
                .iter()
                .any(|p| p.generation == 2 && p.approved.is_none()),
            "{what}"
        );
        let awaiting = db.awaiting_approvals().expect("store");
        assert_eq!(awaiting.len(), 1, "{what}");
        // Never pruned while it awaits: more claims than the limit keep it.
        for generation in 10..10 + MAX_PENDING_PROFILES_PER_HOST as u64 + 5 {
            db.note_profile(host, generation, "cc", 10, 200 + generation as i64)
                .expect("store");
        }
        assert!(
            db.profile(host, 2, "aa").expect("store").is_some(),
            "{what}"
        );
        // Dropped by its id only; then it waits for an approver again.
        assert!(
            !db.drop_profile_approval(host, 2, "aa", "id-other")
                .expect("store"),
            "{what}"
        );
        assert!(
            !db.confirm_profile_approval(host, 2, "aa", "id-other")
                .expect("store"),
            "{what}: another id confirms nothing"
        );
        assert!(
            db.drop_profile_approval(host, 2, "aa", "id-1")
                .expect("store"),
            "{what}"
        );
        let row = db.profile(host, 2, "aa").expect("store").expect("kept");
        assert_eq!((row.approved, row.awaiting), (None, None), "{what}");
        // Approved anew, confirmed: in effect, with who, why and when.
        assert!(
            db.propose_profile_approval(host, 2, "aa", "id-3", "console:bob", "change 8", 300)
                .expect("store"),
            "{what}"
        );
        assert!(
            db.confirm_profile_approval(host, 2, "aa", "id-3")
                .expect("store"),
            "{what}"
        );
        assert!(
            db.confirm_profile_approval(host, 2, "aa", "id-3")
                .expect("store"),
            "{what}: a confirmation asked again (its answer lost) still says in effect"
        );
        assert_eq!(
            db.note_profile(host, 2, "aa", 10, 400)
                .expect("store")
                .approved_at,
            Some(300),
            "{what}"
        );
        let row = db.profile(host, 2, "aa").expect("store").expect("kept");
        assert_eq!(
            row.approved,
            Some(("console:bob".to_string(), "change 8".to_string(), 300)),
            "{what}"
        );
        assert!(db.awaiting_approvals().expect("store").is_empty(), "{what}");
    });
}

/// A TCP proxy in front of the test server's Unix socket that forwards both ways and,
/// once the client has sent the statement whose text holds `marker` and the `Sync` that
/// makes the server commit it, forwards that `Sync` and cuts the client's connection:
/// the server commits, the client never gets the answer (a connection lost right after
/// COMMIT was sent). Returns the port.
fn cutting_proxy(server: &PgServer, marker: &'static str) -> u16 {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let socket = server
        .socket_dir()
        .join(format!(".s.PGSQL.{}", pacsguard_testkit::postgres::PORT));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let upstream = std::os::unix::net::UnixStream::connect(&socket).expect("server");
                let cut = Arc::new(AtomicBool::new(false));
                let (mut from_server, mut to_client) = (
                    upstream.try_clone().expect("clone"),
                    client.try_clone().expect("clone"),
                );
                let answers_cut = cut.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    loop {
                        match from_server.read(&mut buf) {
                            // Set before the committing Sync was forwarded: its answer
                            // (and anything after) never reaches the client.
                            Ok(n) if n > 0 && !answers_cut.load(Ordering::SeqCst) => {
                                if to_client.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                            _ => return,
                        }
                    }
                });
                let (mut from_client, mut to_server) = (client, upstream);
                // The start-up message: a length, no type byte.
                let mut len = [0u8; 4];
                if from_client.read_exact(&mut len).is_err() {
                    return;
                }
                let n = u32::from_be_bytes(len) as usize;
                let mut body = vec![0u8; n.saturating_sub(4)];
                from_client.read_exact(&mut body).expect("start-up");
                assert_ne!(
                    &body[..4],
                    &[0x04, 0xd2, 0x16, 0x2f],
                    "no TLS request expected"
                );
                to_server.write_all(&len).expect("forward");
                to_server.write_all(&body).expect("forward");
                let (mut armed, mut executed) = (false, false);
                loop {
                    let mut head = [0u8; 5];
                    if from_client.read_exact(&mut head).is_err() {
                        return;
                    }
                    let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                    let mut body = vec![0u8; n.saturating_sub(4)];
                    if from_client.read_exact(&mut body).is_err() {
                        return;
                    }
                    armed |= head[0] == b'P' && String::from_utf8_lossy(&body).contains(marker);
                    executed |= armed && head[0] == b'E';
                    let committing = executed && head[0] == b'S';
                    if committing {
                        cut.store(true, Ordering::SeqCst);
                    }
                    if to_server
                        .write_all(&head)
                        .and_then(|()| to_server.write_all(&body))
                        .is_err()
                    {
                        return;
                    }
                    if committing {
                        // The server reads this Sync, commits, then reads the end of
                        // its input and ends the session; the client sees its
                        // connection cut with no answer.
                        let _ = to_server.shutdown(std::net::Shutdown::Write);
                        let _ = from_client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Issue 14, the lost COMMIT: the connection between the console and PostgreSQL is cut
/// right after the approval's statement and its commit were sent. The console sees an
/// error; the server committed the approval, but only as awaiting confirmation: not in
/// effect (no report gets it) until its trail record is written and it is confirmed. The
/// confirmation's answer lost in turn: the approval is in effect (its record came
/// first), and asking again on a new connection says so.
#[test]
fn an_approval_whose_commit_answer_is_lost_is_not_in_effect_without_its_record() {
    let server = PgServer::start();
    let direct = FleetStoreAt::Postgres(server.connection_string());
    let mut db = open(&direct);
    let host = enrol(db.as_mut(), b"t", "pacs", "f");
    db.note_profile(host, 2, "aa", 10, 100).expect("store");

    let port = cutting_proxy(&server, "pending_id = $6");
    let cut = FleetStoreAt::Postgres(format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres"
    ));
    let mut through = open(&cut);
    through
        .propose_profile_approval(host, 2, "aa", "id-1", "console:ann", "change 7", 150)
        .expect_err("the answer is lost");
    // Committed on the server (polled within a bound: the server may still be at it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let row = loop {
        let row = db.profile(host, 2, "aa").expect("store").expect("kept");
        if row.awaiting.is_some() || std::time::Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        row.awaiting.map(|a| a.id),
        Some("id-1".to_string()),
        "the server committed the approval awaiting confirmation"
    );
    assert_eq!(row.approved, None, "not in effect");
    assert_eq!(
        db.note_profile(host, 2, "aa", 10, 160)
            .expect("store")
            .approved_at,
        None,
        "no report gets an approval whose record was never written"
    );

    // The confirmation (after the record) cut the same way: in effect, and asking again
    // on a new connection says so.
    let port = cutting_proxy(&server, "approved_at = pending_at");
    let cut = FleetStoreAt::Postgres(format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres"
    ));
    let mut through = open(&cut);
    through
        .confirm_profile_approval(host, 2, "aa", "id-1")
        .expect_err("the answer is lost");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while db
        .profile(host, 2, "aa")
        .expect("store")
        .expect("kept")
        .approved
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the confirmation was committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        db.confirm_profile_approval(host, 2, "aa", "id-1")
            .expect("store"),
        "asked again: in effect"
    );
    assert_eq!(
        db.note_profile(host, 2, "aa", 10, 170)
            .expect("store")
            .approved_at,
        Some(150)
    );
}

/// Review s14-r03: a fleet store made before approvals awaited their trail record (no
/// `pending_id`, `pending_at` in `fleet_profiles`: every console upgraded to this
/// version has one) gets the columns when it is opened, keeps the approvals it holds in
/// effect, and takes new ones. Both stores alike.
#[test]
fn a_store_made_before_approvals_awaited_their_record_gets_their_columns() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let host = enrol(db.as_mut(), b"t", "pacs", "f");
        db.note_profile(host, 2, "aa", 10, 100).expect("store");
        assert!(
            approve(db.as_mut(), host, 2, "aa", "ann", "ok", 150),
            "{what}"
        );
        db.note_profile(host, 3, "bb", 10, 101).expect("store");
        drop(db);
        // As the version before left it.
        // (And before reports were ordered by `seen_seq`.)
        let older = "ALTER TABLE fleet_profiles DROP COLUMN pending_id; \
                     ALTER TABLE fleet_profiles DROP COLUMN pending_at; \
                     ALTER TABLE fleet_profiles DROP COLUMN seen_seq;";
        match at {
            FleetStoreAt::Sqlite(path) => rusqlite::Connection::open(path)
                .expect("store")
                .execute_batch(older)
                .expect("columns dropped"),
            FleetStoreAt::Postgres(target) => postgres::Client::connect(target, postgres::NoTls)
                .expect("connect")
                .batch_execute(older)
                .expect("columns dropped"),
        }
        let mut db = open(at);
        assert_eq!(
            db.note_profile(host, 2, "aa", 10, 200)
                .expect("store")
                .approved_at,
            Some(150),
            "{what}: an approval made before stays in effect"
        );
        assert!(db.awaiting_approvals().expect("store").is_empty(), "{what}");
        assert!(
            approve(db.as_mut(), host, 3, "bb", "bob", "ok", 250),
            "{what}"
        );
        assert_eq!(
            db.note_profile(host, 3, "bb", 10, 300)
                .expect("store")
                .approved_at,
            Some(250),
            "{what}"
        );
    });
}

/// Issue 14: a confirmation that comes after its approval was dropped and the profile
/// approved under another id answered "in effect" (it looked only at whether the profile
/// was approved): the console's request that lost said "approved". It is in effect only
/// under its own id; asked again under that id, still in effect.
#[test]
fn a_late_confirmation_that_lost_to_another_approval_is_not_in_effect() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let host = enrol(db.as_mut(), b"t", "pacs", "f");
        db.note_profile(host, 2, "aa", 10, 100).expect("store");
        assert!(
            db.propose_profile_approval(host, 2, "aa", "c1-late", "console:ann", "one", 150)
                .expect("store"),
            "{what}"
        );
        assert!(
            db.drop_profile_approval(host, 2, "aa", "c1-late")
                .expect("store"),
            "{what}"
        );
        assert!(
            approve(db.as_mut(), host, 2, "aa", "console:bob", "two", 300),
            "{what}"
        );
        assert!(
            !db.confirm_profile_approval(host, 2, "aa", "c1-late")
                .expect("store"),
            "{what}: the late confirmation lost"
        );
        assert!(
            db.confirm_profile_approval(host, 2, "aa", "console:bob-300")
                .expect("store"),
            "{what}: the one in effect, asked again"
        );
        let row = db.profile(host, 2, "aa").expect("store").expect("kept");
        assert_eq!(
            (row.approved, row.awaiting),
            (
                Some(("console:bob".to_string(), "two".to_string(), 300)),
                None
            ),
            "{what}"
        );
    });
}

/// Item 3 of session 19: a host's reports in one second were ordered by their second
/// only, then by generation, so the last reported was ambiguous: a host that went from
/// generation 2 back to 1 within a second was still shown on 2, and its going back was
/// neither raised nor shown. Reports are ordered by a sequence now, on both stores.
#[test]
fn reports_within_one_second_are_ordered_as_they_came() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"t", "pacs", "f");
        let current = |db: &mut dyn FleetStore| {
            let rows = db.current_profiles().expect("store");
            assert_eq!(rows.len(), 1, "{what}");
            (rows[0].generation, rows[0].digest.clone())
        };
        db.note_profile(host, 1, "a1", 1, 10).expect("store");
        assert!(approve(db, host, 1, "a1", "ann", "install", 10), "{what}");
        db.note_profile(host, 2, "b2", 1, 50).expect("store");
        assert_eq!(current(db), (2, "b2".into()), "{what}");
        // Back to generation 1 in the same second: the last reported.
        let noted = db.note_profile(host, 1, "a1", 1, 50).expect("store");
        assert!(noted.switched && noted.returned, "{what}: went back");
        assert_eq!(noted.superseded, Some(2), "{what}");
        assert_eq!(current(db), (1, "a1".into()), "{what}");
        // And forth again, still in that second: said once each way.
        let noted = db.note_profile(host, 2, "b2", 1, 50).expect("store");
        assert!(noted.switched, "{what}");
        assert_eq!(current(db), (2, "b2".into()), "{what}");
        let noted = db.note_profile(host, 2, "b2", 1, 50).expect("store");
        assert!(!noted.switched, "{what}: a heartbeat is no switch");
    });
}

/// Review s19-r14: `check` asks the console of its host's current profile, and the
/// console read every host's (`current_profiles`, a window over the whole table: about
/// 100 ms at 10,000 hosts, per question, uncharged) to keep one. One host's rows are
/// read now; the answer is the same, superseded included, on both stores.
#[test]
fn one_hosts_current_profile_is_as_in_the_fleets() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let a = enrol(db, b"t", "pacs", "f");
        let b = enrol(db, b"u", "ws-01", "g");
        let same = |db: &mut dyn FleetStore| {
            let all = db.current_profiles().expect("store");
            for host in [a, b] {
                let one = db.current_profile_of(host).expect("store");
                let mut theirs = all.iter().find(|p| p.host == host).cloned();
                assert_eq!(
                    one.as_ref().map(|p| (
                        p.generation,
                        p.digest.clone(),
                        p.superseded,
                        p.approved.clone()
                    )),
                    theirs
                        .take()
                        .map(|p| (p.generation, p.digest, p.superseded, p.approved)),
                    "{what}: host {host}"
                );
            }
        };
        same(db);
        assert_eq!(
            db.current_profile_of(a).expect("store").map(|p| p.host),
            None
        );
        db.note_profile(a, 1, "a1", 1, 10).expect("store");
        db.note_profile(b, 1, "b1", 1, 10).expect("store");
        same(db);
        assert!(approve(db, a, 1, "a1", "ann", "install", 11), "{what}");
        db.note_profile(a, 2, "a2", 1, 20).expect("store");
        db.note_profile(b, 2, "b2", 1, 20).expect("store");
        same(db);
        db.note_profile(a, 1, "a1", 1, 20).expect("store");
        same(db);
        let back = db.current_profile_of(a).expect("store").expect("a");
        assert_eq!((back.generation, back.superseded), (1, Some(2)), "{what}");
        assert_eq!(
            db.current_profile_of(999).expect("store").map(|p| p.host),
            None
        );
    });
}

/// Review s21: the fleet's four-eyes value edited in the store to one no console writes
/// (`TRUE`, `1`, `off`, empty) was read as off, so four eyes was off for every console.
/// Anything but `false` now reads as on, and the value is kept for the console's alert.
#[test]
fn a_four_eyes_value_no_console_writes_reads_as_on() {
    let check = |at: &FleetStoreAt, edit: &dyn Fn(&str)| {
        let mut db = open(at);
        assert_eq!(
            db.host_four_eyes().expect("read"),
            None,
            "{}",
            at.describe()
        );
        db.set_host_four_eyes(false, "console:admin", "policy 7.2", 10)
            .expect("set");
        let set = db.host_four_eyes().expect("read").expect("set");
        assert!(!set.on && set.well_formed(), "{set:?}");
        for value in ["TRUE", "1", "off", "yes", ""] {
            edit(value);
            let read = db.host_four_eyes().expect("read").expect("row");
            assert!(read.on, "{}: {value:?} reads as on", at.describe());
            assert!(!read.well_formed());
            assert_eq!(read.value, value);
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    rusqlite::Connection::open(&path).expect("an empty store file");
    check(&FleetStoreAt::Sqlite(path.clone()), &|value| {
        rusqlite::Connection::open(&path)
            .expect("sqlite")
            .execute("UPDATE fleet_settings SET value = ?1", [value])
            .expect("edited");
    });
    let server = PgServer::start();
    check(
        &FleetStoreAt::Postgres(server.connection_string()),
        &|value| {
            server.psql(&format!("UPDATE fleet_settings SET value = '{value}'"));
        },
    );
}

/// Review r24: a console killed and started again takes its previous run's claim over,
/// conditionally on the store still naming that run's instance: a claim another
/// instance took meanwhile is not taken, and of two successors only the first takes it.
#[test]
fn a_claim_is_taken_over_only_from_the_instance_that_holds_it() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    let (mut a, mut b) = (open(&at), open(&at));
    assert!(a.claim_console("c1", "i-killed", 120).expect("claim"));
    assert!(
        !b.take_over_console("c1", "i-other", "i-next")
            .expect("take over"),
        "not held by that instance"
    );
    assert!(
        b.take_over_console("c1", "i-killed", "i-next")
            .expect("take over"),
        "the previous run's claim, live"
    );
    assert!(
        !a.take_over_console("c1", "i-killed", "i-copy")
            .expect("take over"),
        "a second successor finds it taken"
    );
    assert!(
        !a.claim_console("c1", "i-killed", 120).expect("claim"),
        "the killed instance's claim is gone"
    );
    assert!(b.claim_console("c1", "i-next", 120).expect("claim"));
}

/// Review r26: who reports beside a host under its certificate was the console's memory
/// only, forgotten at a restart. The first duplication noted is kept, per host, and read
/// back on another connection (a console restarted, or another on the same store).
#[test]
fn a_duplicated_identity_is_kept_first_and_read_back_on_another_connection() {
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let host = enrol(db.as_mut(), b"t1", "pacs", "f1");
        let other = enrol(db.as_mut(), b"t2", "ward", "f2");
        assert_eq!(db.identity_duplicated(host).expect("store"), None, "{what}");
        assert!(
            db.note_identity_duplicated(host, "copy+1+K2", 400)
                .expect("store"),
            "{what}"
        );
        assert!(
            !db.note_identity_duplicated(host, "copy+2+K3", 401)
                .expect("store"),
            "{what}: the first one is kept"
        );
        drop(db);
        let mut again = open(at);
        assert_eq!(
            again.identity_duplicated(host).expect("store").as_deref(),
            Some("copy+1+K2"),
            "{what}"
        );
        assert_eq!(
            again.identity_duplicated(other).expect("store"),
            None,
            "{what}: another host's identity is its own"
        );
    });
}

/// Issue 14 (review r28-fleet): a host's state is written only over the state and
/// contact it was judged from (compare and set), on both stores: a silence judged
/// before a report verified, or a refusal judged before another was written, is not
/// written; a batch stored no longer writes `ok` over whatever state stands.
#[test]
fn a_hosts_state_is_written_only_over_the_state_it_was_judged_from() {
    use pacsguard_store::SeenState;
    on_both(|at| {
        let what = at.describe();
        let mut db = open(at);
        let db = db.as_mut();
        let host = enrol(db, b"cas", "ct-cas", "fcas");
        db.touch_host(host, 400, 15).expect("store");
        let judged = db.host(host).expect("store").expect("host");
        // A report verified after the silence check read the host: its contact moved.
        db.touch_host(host, 420, 15).expect("store");
        assert!(
            !db.swap_host_state(
                host,
                &judged.seen(),
                "silent",
                "no report",
                &Default::default()
            )
            .expect("store"),
            "{what}: a silence judged from an older contact is not written"
        );
        let now_seen = db.host(host).expect("store").expect("host");
        assert!(
            db.swap_host_state(
                host,
                &now_seen.seen(),
                "fork",
                "rewound",
                &Default::default()
            )
            .expect("store"),
            "{what}"
        );
        // A second refusal judged from `ok` (read before the fork was written).
        assert!(
            !db.swap_host_state(
                host,
                &now_seen.seen(),
                "gap",
                "missing",
                &Default::default()
            )
            .expect("store"),
            "{what}: a refusal judged from a state since moved is not written"
        );
        let held = db.host(host).expect("store").expect("host");
        assert_eq!(
            (held.state.as_str(), held.detail.as_str()),
            ("fork", "rewound"),
            "{what}"
        );
        assert_eq!(
            held.seen(),
            SeenState {
                state: "fork",
                last_contact: 420,
                again: 0,
            },
            "{what}"
        );
        // A batch stored moves the contact, not the state: the caller does.
        let records: Vec<(u64, Vec<u8>)> = (0..2).map(|i| (i, vec![b'r'; 8])).collect();
        assert!(
            db.accept_batch(host, &batch(0, &records, 2, "note\n2\n"))
                .expect("store"),
            "{what}"
        );
        let held = db.host(host).expect("store").expect("host");
        assert_eq!(
            (held.state.as_str(), held.last_contact),
            ("fork", 300),
            "{what}"
        );
    });
}

/// Issue 14 (review r28-fleet): who revoked a host and why are kept in the fleet's store
/// (`console revoke-host` with no `serve` running had nowhere to put them). A PostgreSQL
/// database made before those columns opens, gets them, and its earlier revocation says
/// neither ("not recorded"); a revocation made now keeps both. (SQLite: the store unit
/// test `fleet_tables_made_before_the_continues_columns_get_them`.)
#[test]
fn a_fleet_database_made_before_revokers_were_kept_opens_and_keeps_them_from_now_on() {
    let server = PgServer::start();
    let at = FleetStoreAt::Postgres(server.connection_string());
    {
        let mut db = open(&at);
        enrol(db.as_mut(), b"old", "ward-9", "f9");
    }
    // The database as a version before this one left it: no such columns, a host
    // revoked by that version.
    server.psql(
        "ALTER TABLE fleet_hosts DROP COLUMN revoked_by, DROP COLUMN revoked_reason; \
         UPDATE fleet_hosts SET revoked = 250 WHERE name = 'ward-9'",
    );
    let mut db = open(&at);
    let old = db
        .host_by_fingerprint("f9")
        .expect("an old database is read")
        .expect("host");
    assert_eq!(
        (old.revoked, old.revoked_by, old.revoked_reason),
        (Some(250), None, None)
    );
    let id = enrol(db.as_mut(), b"new", "ward-9", "f10");
    assert_eq!(db.revoke_host("ward-9", 300, &ADMIN).expect("store"), 1);
    let new = db.host(id).expect("store").expect("host");
    assert_eq!(
        (new.revoked_by.as_deref(), new.revoked_reason.as_deref()),
        (Some(ADMIN.by), ADMIN.reason)
    );
}
