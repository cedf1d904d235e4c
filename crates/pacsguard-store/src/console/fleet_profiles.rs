//! The profile generations enrolled hosts reported, and the console's approvals of them
//! (issue 14, approvals off the host).
//!
//! A host names its current signed profile generation in every report (its generation
//! number and a digest of its signature). The console keeps one row per (host,
//! generation, digest): when it was first and last claimed, and, once an approver
//! accepted it on the console, who, why and when. The host's highest generation is its
//! current profile. Only rows an approver decided are kept without bound (people make
//! them); a host can claim any number of generations, so at most
//! [`MAX_PENDING_PROFILES_PER_HOST`] unapproved rows are kept per host, the oldest
//! dropped first (each was raised as an alert when it arrived), and one more: a row of
//! the highest generation is never dropped, so the current profile cannot go back.

use rusqlite::params;

/// Unapproved profile generations kept per host: a host that re-baselines in a loop (or
/// an intruder on it sending made-up claims) cannot fill the console's store. Every one
/// was raised as `host-profile-unapproved` when it arrived; only the oldest rows go.
pub const MAX_PENDING_PROFILES_PER_HOST: usize = 16;

pub(super) const FLEET_PROFILES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fleet_profiles (
    host INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    digest TEXT NOT NULL,
    created INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    approved_by TEXT,
    reason TEXT,
    approved_at INTEGER,
    pending_id TEXT,
    pending_at INTEGER,
    seen_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER,
    approved_seq INTEGER,
    PRIMARY KEY (host, generation, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_quota (
    host INTEGER PRIMARY KEY,
    window_start INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
";

/// The digest of a row noted from the host's trail (a `profile` or `accept` record of a
/// generation the host never claimed): not hex, so no report's claim and no approval
/// ever matches it; it only makes the alert once per generation.
pub const FROM_TRAIL: &str = "trail";

/// One profile generation a host claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRow {
    pub host: i64,
    pub host_name: String,
    pub generation: u64,
    /// The digest of the generation's signature (hex).
    pub digest: String,
    /// When the host signed it (as the host says).
    pub created: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Who approved it on the console, why and when; `None` while pending.
    pub approved: Option<(String, String, i64)>,
    /// An approval written but not in effect: its trail record is not confirmed yet
    /// (see [`crate::fleet_store::FleetStore::propose_profile_approval`]).
    pub awaiting: Option<PendingApproval>,
    /// Of a host's current profile ([`crate::fleet_store::FleetStore::current_profiles`]):
    /// the highest generation of the other profiles the host reported (or its trail
    /// recorded) since this one was approved (unapproved: since it was first seen). Set,
    /// an approval of this row is not in effect: the host went back to it from another
    /// (its store restored from a copy, or made anew and then put back), whatever the
    /// generation numbers say (a store made anew starts again at 1).
    pub superseded: Option<u64>,
}

impl ProfileRow {
    /// Whether this profile counts as approved: an approver accepted it and the host did
    /// not go back to it from a generation it reported after ([`ProfileRow::superseded`]).
    pub fn in_effect(&self) -> bool {
        self.approved.is_some() && self.superseded.is_none()
    }
}

/// An approval of a profile generation written to the store but not in effect until
/// the console has seen its record (naming who and why) on its audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingApproval {
    /// The id the trail record names (`approval id …` in its detail).
    pub id: String,
    pub by: String,
    pub reason: String,
    pub at: i64,
}

/// What noting a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileNoted {
    /// Claimed for the first time (so raised once, not at every heartbeat), and not
    /// raised already from the host's trail.
    pub new: bool,
    /// When it was approved, if it was.
    pub approved_at: Option<i64>,
    /// Approved, but the host reported another profile since that approval: the highest
    /// generation of those (the host went back; the approval is not in effect, see
    /// [`ProfileRow::superseded`]).
    pub superseded: Option<u64>,
    /// The host's previous report named another profile than this one (or none): a
    /// rollback is raised when the host goes back, not at each heartbeat after.
    pub switched: bool,
    /// Switched ([`ProfileNoted::switched`]) to a profile the host named before (its row
    /// was there already): the host went back to it from another (review s18-r13: going
    /// back to an unapproved one, raised long ago, was said nowhere).
    pub returned: bool,
}

/// A host's current profile: its most recent claim (a claim before a row noted from
/// its trail, then the one named last, then the highest generation). Not the highest
/// generation it ever named (review s18): a host whose store was deleted and made again
/// starts again at generation 1, and was shown on its old approved generation.
/// Reports are ordered by `seen_seq` (the host's report count when it was last named),
/// not by their second: two reports within one second were not ordered, and the host's
/// going back to an older profile could be missed or said twice.
pub(crate) const CURRENT_ORDER: &str =
    "digest = 'trail', seen_seq DESC, last_seen DESC, generation DESC";

/// The newest number of `host`'s sequence of events (its reports, the generations its
/// trail records, the approvals of its profiles), as an SQL expression for SQLite and
/// PostgreSQL alike (`host`: the placeholder of the host's id). The next event is this
/// plus one. Every column that holds a number of the sequence is read, not only
/// `seen_seq`: the row named last may be pruned ([`prune_pending`]), and a report after
/// an approval must still be numbered after it (never at or below `approved_seq`).
pub(crate) fn host_seq_sql(host: &str) -> String {
    format!(
        "(SELECT coalesce(max(s), 0) FROM (\
         SELECT seen_seq AS s FROM fleet_profiles WHERE host = {host} \
         UNION ALL SELECT first_seq FROM fleet_profiles WHERE host = {host} \
         UNION ALL SELECT approved_seq FROM fleet_profiles WHERE host = {host}) AS host_seq)"
    )
}

/// The generation that supersedes profile `p` (see [`ProfileRow::superseded`]), as an
/// SQL expression over the row `p`, for SQLite and PostgreSQL alike: the highest
/// generation of the host's other rows named (`seen_seq`) or noted from its trail
/// (`first_seq`) after `p` was approved (`approved_seq`: the host's sequence when the
/// approval was written) or, unapproved, after it was first noted (`first_seq`).
/// Ordered by the host's sequence, not by the second (review s19-r14): a report and an
/// approval within one second were not ordered (a host that went back to an approved
/// generation and was approved again in that second was shown superseded), and two
/// consoles on one PostgreSQL store, their clocks apart, could order a report made
/// after an approval before it (the approval taken as in effect).
/// A row written before these numbers (`approved_seq` or `first_seq` NULL) is ordered
/// by its seconds as then: a row first seen or named again in the same second as the
/// approval counts as after it (fail closed). Named again counts, not only first seen
/// (review s18-r13: an approver may approve an older profile while the host names a
/// newer one; the host going back to the approved one after that is not in effect).
pub(crate) const SUPERSEDED_SQL: &str = "(SELECT max(r.generation) FROM fleet_profiles r \
     WHERE r.host = p.host \
     AND NOT (r.generation = p.generation AND r.digest = p.digest) \
     AND CASE WHEN (CASE WHEN p.approved_at IS NULL THEN p.first_seq ELSE p.approved_seq END) IS NULL \
     THEN (r.first_seen >= coalesce(p.approved_at, p.first_seen) \
          OR r.last_seen >= coalesce(p.approved_at, p.first_seen)) \
     ELSE (r.seen_seq > (CASE WHEN p.approved_at IS NULL THEN p.first_seq ELSE p.approved_seq END) \
          OR coalesce(r.first_seq, 0) > (CASE WHEN p.approved_at IS NULL THEN p.first_seq ELSE p.approved_seq END)) \
     END)";

/// Clears the approval of a host's profile (`?1`/`$1` host, then generation, digest:
/// the placeholders given) when it is the host's current profile and superseded: the
/// host went back to it after reporting another, so the approval is not in effect, and
/// an approver who approves it again decides anew, numbered after the host's return.
pub(crate) fn reopen_superseded_sql(host: &str, generation: &str, digest: &str) -> String {
    format!(
        "UPDATE fleet_profiles SET approved_at = NULL, approved_by = NULL, reason = NULL, \
         pending_id = NULL, pending_at = NULL, approved_seq = NULL \
         WHERE host = {host} AND generation = {generation} AND digest = {digest} \
         AND approved_at IS NOT NULL \
         AND (generation, digest) = (SELECT generation, digest FROM fleet_profiles \
              WHERE host = {host} ORDER BY {CURRENT_ORDER} LIMIT 1) \
         AND EXISTS (SELECT 1 FROM fleet_profiles p WHERE p.host = {host} \
              AND p.generation = {generation} AND p.digest = {digest} \
              AND {SUPERSEDED_SQL} IS NOT NULL)"
    )
}

pub(super) const PROFILE_COLUMNS: &str = "p.host, h.name, p.generation, p.digest, p.created, p.first_seen, \
     p.last_seen, p.approved_by, p.reason, p.approved_at, p.pending_id, p.pending_at";

pub(super) fn profile_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProfileRow> {
    let approved_at: Option<i64> = r.get(9)?;
    let pending_id: Option<String> = r.get(10)?;
    Ok(ProfileRow {
        host: r.get(0)?,
        host_name: r.get(1)?,
        generation: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        digest: r.get(3)?,
        created: r.get(4)?,
        first_seen: r.get(5)?,
        last_seen: r.get(6)?,
        approved: match approved_at {
            Some(at) => Some((
                r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                at,
            )),
            None => None,
        },
        awaiting: match pending_id {
            Some(id) if approved_at.is_none() => Some(PendingApproval {
                id,
                by: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                reason: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                at: r.get::<_, Option<i64>>(11)?.unwrap_or(0),
            }),
            _ => None,
        },
        superseded: None,
    })
}

/// Which of a host's pending rows are the newest, kept by [`prune_pending`]: the ones
/// named or noted last in the host's sequence (review s19-r14: by the second they were
/// first seen, rows of one second were ordered by their generation, so a claim made
/// after an approval could be dropped for older ones of the same second, and with it
/// what superseded the approval), then by the second (rows of an earlier version).
pub(crate) const PRUNE_ORDER: &str = "CASE WHEN seen_seq > coalesce(first_seq, 0) THEN seen_seq \
     ELSE coalesce(first_seq, 0) END DESC, first_seen DESC, generation DESC";

/// Drops a host's oldest pending rows past [`MAX_PENDING_PROFILES_PER_HOST`] (never an
/// approved one, never the one just noted: it is the newest), and never the last row of
/// the host's highest generation: the pages show that generation as the host's current
/// one, so a host that sent made-up claims of an older generation could otherwise push
/// its unapproved re-baseline out and be shown on an older, approved generation again.
pub(super) fn prune_pending(conn: &rusqlite::Connection, host: i64) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
        "DELETE FROM fleet_profiles WHERE host = ?1 AND approved_at IS NULL AND pending_id IS NULL AND \
         (generation, digest) NOT IN (SELECT generation, digest FROM fleet_profiles \
          WHERE host = ?1 AND approved_at IS NULL \
          ORDER BY {PRUNE_ORDER} LIMIT ?2) AND \
         (generation, digest) NOT IN (SELECT generation, digest FROM fleet_profiles \
          WHERE host = ?1 ORDER BY generation DESC, first_seen DESC LIMIT 1)"),
        params![host, to_i64(MAX_PENDING_PROFILES_PER_HOST as u64)],
    )
}

/// A host's quota window: (when it began, Unix seconds; bytes charged in it).
pub type QuotaWindow = (i64, u64);

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConsoleDb;
    use crate::fleet_store::FleetStore as _;

    /// An approval as the console makes it: awaiting confirmation, then confirmed.
    fn approve(
        db: &mut ConsoleDb,
        host: i64,
        generation: u64,
        digest: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> bool {
        let id = format!("{by}-{now}");
        db.propose_profile_approval(host, generation, digest, &id, by, reason, now)
            .expect("propose")
            && db
                .confirm_profile_approval(host, generation, digest, &id)
                .expect("confirm")
    }

    fn db_with_host() -> (tempfile::TempDir, ConsoleDb, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(crate::Store::open(&path).expect("store"));
        let mut db = ConsoleDb::open(&path).expect("db");
        db.add_enrol_token(b"t", 0, 100).expect("token");
        let host = db
            .enrol_host(b"t", 1, "pacs-01", "ff")
            .expect("db")
            .expect("enrolled");
        (dir, db, host)
    }

    #[test]
    fn a_claim_is_new_once_pending_until_approved_and_current_when_last() {
        let (_dir, mut db, host) = db_with_host();
        let a = "aa".repeat(32);
        let noted = db.note_profile(host, 1, &a, 10, 20).expect("note");
        assert_eq!(
            noted,
            ProfileNoted {
                new: true,
                approved_at: None,
                superseded: None,
                switched: true,
                returned: false,
            }
        );
        assert!(!db.note_profile(host, 1, &a, 10, 21).expect("again").new);
        assert_eq!(db.pending_profiles().expect("pending").len(), 1);
        assert!(approve(&mut db, host, 1, &a, "alice", "change 42", 30));
        assert!(
            !approve(&mut db, host, 1, &a, "bob", "again", 31),
            "approved once"
        );
        assert_eq!(
            db.note_profile(host, 1, &a, 10, 32)
                .expect("note")
                .approved_at,
            Some(30)
        );
        assert!(db.pending_profiles().expect("pending").is_empty());
        let b = "bb".repeat(32);
        db.note_profile(host, 2, &b, 40, 41).expect("note");
        let current = db.current_profiles().expect("current");
        assert_eq!(current.len(), 1);
        assert_eq!(
            (current[0].generation, current[0].approved.clone()),
            (2, None)
        );
        let row = db.profile(host, 1, &a).expect("db").expect("kept");
        assert_eq!(row.approved, Some(("alice".into(), "change 42".into(), 30)));
    }

    /// A host on an approved generation re-baselines (a newer, pending generation), then
    /// sends made-up claims of the older generation until the oldest pending rows go:
    /// the newest generation is still the one shown, unapproved.
    #[test]
    fn claims_of_an_older_generation_never_push_the_newest_out() {
        let (_dir, mut db, host) = db_with_host();
        let approved = "aa".repeat(32);
        db.note_profile(host, 1, &approved, 1, 1).expect("note");
        assert!(approve(&mut db, host, 1, &approved, "alice", "ok", 2));
        db.note_profile(host, 2, &"bb".repeat(32), 3, 3)
            .expect("re-baseline");
        for n in 0..=MAX_PENDING_PROFILES_PER_HOST {
            db.note_profile(host, 1, &format!("{n:064x}"), 4, 10 + n as i64)
                .expect("made-up claim");
        }
        db.note_profile(host, 1, &approved, 1, 100)
            .expect("the approved one named again");
        // The host named the approved generation 1 last, after generation 2: shown, its
        // approval not in effect (the host went back from 2).
        let current = db.current_profiles().expect("current");
        assert_eq!(
            (
                current[0].generation,
                current[0].in_effect(),
                current[0].superseded
            ),
            (1, false, Some(2)),
            "{current:?}"
        );
        assert!(
            db.pending_profiles().expect("pending").len() <= MAX_PENDING_PROFILES_PER_HOST + 1,
            "still bounded"
        );
    }

    /// Once a generation was approved, a made-up claim of a huge generation does not hide
    /// a newer generation the host's trail records signing.
    #[test]
    fn a_huge_claim_does_not_hide_a_re_baseline_in_the_trail() {
        let (_dir, mut db, host) = db_with_host();
        let approved = "aa".repeat(32);
        db.note_profile(host, 1, &approved, 1, 1).expect("note");
        assert!(approve(&mut db, host, 1, &approved, "alice", "ok", 2));
        assert!(
            !db.note_profile_in_trail(host, 1, 3).expect("trail"),
            "named"
        );
        db.note_profile(host, 1 << 40, &"cc".repeat(32), 1, 4)
            .expect("made-up claim");
        assert!(
            db.note_profile_in_trail(host, 2, 5).expect("trail"),
            "the re-baseline in the trail is raised"
        );
        assert!(
            !db.note_profile_in_trail(host, 2, 6).expect("trail"),
            "once"
        );
    }

    /// Handles of one store charging side by side (a host's connections): every charge
    /// is counted, none lost between a read and a write.
    #[test]
    fn quota_charges_from_many_connections_are_all_counted() {
        let (dir, _db, host) = db_with_host();
        let path = dir.path().join("store.sqlite");
        // Each handle opened here (opening side by side is not what is tested).
        let handles: Vec<ConsoleDb> = (0..2)
            .map(|_| ConsoleDb::open(&path).expect("db"))
            .collect();
        let threads: Vec<_> = handles
            .into_iter()
            .map(|mut db| {
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        db.charge_quota(host, 1_000, 3_600, u64::MAX, 1)
                            .expect("charge")
                            .expect("within");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let mut db = ConsoleDb::open(&path).expect("db");
        assert_eq!(db.quota_used(host).expect("used"), (1_000, 50));
        assert_eq!(
            db.charge_quota(host, 1_000, 3_600, 50, 1).expect("db"),
            Err((1_000, 50)),
            "past the limit nothing is charged"
        );
        assert_eq!(
            db.charge_quota(host, 4_600, 3_600, 1_000, 5).expect("db"),
            Ok((4_600, 5)),
            "a new window"
        );
    }

    #[test]
    fn pending_claims_are_held_to_their_limit_per_host_approved_ones_kept() {
        let (_dir, mut db, host) = db_with_host();
        let digest = |n: usize| format!("{n:064x}");
        db.note_profile(host, 0, &digest(999), 1, 1).expect("note");
        assert!(approve(&mut db, host, 0, &digest(999), "alice", "ok", 2));
        for n in 0..MAX_PENDING_PROFILES_PER_HOST {
            db.note_profile(host, n as u64 + 1, &digest(n), 5, 10 + n as i64)
                .expect("note");
        }
        assert_eq!(
            db.pending_profiles().expect("pending").len(),
            MAX_PENDING_PROFILES_PER_HOST,
            "at the limit every pending claim is kept"
        );
        let over = MAX_PENDING_PROFILES_PER_HOST;
        db.note_profile(host, over as u64 + 1, &digest(over), 5, 100)
            .expect("note");
        let pending = db.pending_profiles().expect("pending");
        assert_eq!(pending.len(), MAX_PENDING_PROFILES_PER_HOST);
        assert!(
            pending.iter().all(|p| p.digest != digest(0)),
            "the oldest pending claim went"
        );
        assert!(pending.iter().any(|p| p.digest == digest(over)));
        assert!(
            db.profile(host, 0, &digest(999)).expect("db").is_some(),
            "an approved profile is never dropped"
        );
    }
}
