//! The paths waiting to be verified, each with the moment it becomes due.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A path to verify now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub path: PathBuf,
    /// An event said the content may have changed: re-hash even if `stat` looks the same.
    /// A rescan (overflow, polling) sets it false: trust what `stat` says is unchanged.
    pub rehash: bool,
    /// The last event said nobody is writing it (closed, deleted, renamed); false when it
    /// is due because it has been quiet or waited long enough.
    pub settled: bool,
    /// Some event since the path was last taken said a writer let go of it (a close, a
    /// rename, a delete), even when a write came after it: the caller still asks who
    /// else holds it open for writing. A probe closing the file while its writer writes
    /// on, both read in one turn, must not leave the path merely "quiet" (judged
    /// half-written without that question) when in two turns the close would have
    /// been taken alone and the writer found.
    pub closed: bool,
    /// Some event since the path was last taken gave it to a file or directory by a
    /// rename (see [`Debounce::mark_renamed_in`]).
    pub renamed_in: bool,
}

#[derive(Debug)]
struct Slot {
    key: (Instant, u64),
    first: Instant,
    rehash: bool,
    settled: bool,
    closed: bool,
    renamed_in: bool,
    /// Due at this moment at the latest, whatever events come (see
    /// [`Debounce::mark_again_after`]).
    pinned: Option<Instant>,
}

/// Paths marked by events, in the order they become due.
///
/// A path whose writer closed it (or that was deleted or renamed) is due at once; a path
/// still being written is due once it has been quiet for `quiet`, but never later than
/// `max_defer` after its first event, so a file written without pause is still verified.
/// A path marked again while waiting is one path: it is verified once.
#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    max_defer: Duration,
    queue: BTreeMap<(Instant, u64), PathBuf>,
    pending: HashMap<PathBuf, Slot>,
    seq: u64,
}

impl Debounce {
    pub fn new(quiet: Duration, max_defer: Duration) -> Debounce {
        Debounce {
            quiet,
            max_defer: max_defer.max(quiet),
            queue: BTreeMap::new(),
            pending: HashMap::new(),
            seq: 0,
        }
    }

    /// Marks `path` changed at `now`; `settled` when nobody is writing it any more.
    pub fn mark(&mut self, path: PathBuf, now: Instant, settled: bool, rehash: bool) {
        let wait = if settled { None } else { Some(self.quiet) };
        self.schedule(path, now, wait, settled, rehash);
    }

    /// Marks `path`, just given to a file or directory by a rename, due at once (settled),
    /// and remembers the rename until it is taken: renamed on again before it is looked
    /// at, it is a link of a rename chain in flight (`X` → `X.tmp` → `X.locked`), which a
    /// path merely closed and removed again (a scratch file) is not.
    pub fn mark_renamed_in(&mut self, path: PathBuf, now: Instant) {
        self.schedule(path.clone(), now, None, true, true);
        if let Some(slot) = self.pending.get_mut(&path) {
            slot.renamed_in = true;
        }
    }

    /// Marks `path`, closed by its writer, due `grace` from now (never later than
    /// `max_defer` after its first event): a new file closed and renamed into place at
    /// once (`X.part` → `X`, an editor's save) is then verified with its rename, as one
    /// change, instead of as a file that existed only between two looks.
    pub fn mark_closed_after(&mut self, path: PathBuf, now: Instant, grace: Duration) {
        self.schedule(path, now, Some(grace), true, true);
    }

    /// Marks `path` due again `wait` from now (never later than `max_defer` after its
    /// first event), for a re-hash, as it was when it came due: `settled` or merely
    /// quiet. A caller that cannot look at a due path yet (its pass over /proc ran a
    /// moment ago) hands it back unchanged, so the next look asks what this one would
    /// have asked.
    ///
    /// A path due because it went quiet (not `settled`: a writer may hold it) keeps that
    /// moment however many events for it come meanwhile: a file written without pause
    /// would otherwise have each event push it out again, up to the longest debounce,
    /// and, handed back at every pass another file's look made (issue 11, session 11: an
    /// image rewritten under a held descriptor went unjudged for the whole rewrite while
    /// new files kept the passes busy), never be looked at. A closed one is pushed out
    /// by new events as before: a burst of saves (`sed -i`, rename after rename) is
    /// verified once it stops, not replaced under every look.
    pub fn mark_again_after(&mut self, path: PathBuf, now: Instant, wait: Duration, settled: bool) {
        self.schedule(path.clone(), now, Some(wait), settled, true);
        if !settled && let Some(slot) = self.pending.get_mut(&path) {
            slot.pinned = Some(slot.key.0);
        }
    }

    fn schedule(
        &mut self,
        path: PathBuf,
        now: Instant,
        wait: Option<Duration>,
        settled: bool,
        rehash: bool,
    ) {
        // When it comes due stays what the last event says (a write after a close is
        // waited for as a write: an earlier due changed what a batch of saves looked
        // like, review s9 d482a8f); only the close is remembered.
        let (first, rehash, closed, renamed_in, pinned) = match self.pending.remove(&path) {
            Some(slot) => {
                self.queue.remove(&slot.key);
                (
                    slot.first,
                    slot.rehash || rehash,
                    slot.closed || settled,
                    slot.renamed_in,
                    slot.pinned,
                )
            }
            None => (now, rehash, settled, false, None),
        };
        let due = match wait {
            None => now,
            Some(wait) => (now + wait).min(first + self.max_defer),
        };
        let due = pinned.map_or(due, |pinned| due.min(pinned));
        self.seq += 1;
        let key = (due, self.seq);
        self.queue.insert(key, path.clone());
        self.pending.insert(
            path,
            Slot {
                key,
                first,
                rehash,
                settled,
                closed,
                renamed_in,
                pinned,
            },
        );
    }

    /// Takes `path` out of the waiting set, if it is there: it is being verified now with
    /// another path (the other half of a rename) and must not come due again alone.
    pub fn forget(&mut self, path: &std::path::Path) -> bool {
        match self.pending.remove(path) {
            Some(slot) => {
                self.queue.remove(&slot.key);
                true
            }
            None => false,
        }
    }

    /// When the next path becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(due, _)| *due)
    }

    /// Every path due at `now`, removed from the waiting set.
    pub fn take_due(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let path = entry.remove();
            let (rehash, settled, closed, renamed_in) = self
                .pending
                .remove(&path)
                .map_or((false, false, false, false), |s| {
                    (s.rehash, s.settled, s.closed, s.renamed_in)
                });
            due.push(Due {
                path,
                rehash,
                settled,
                closed,
                renamed_in,
            });
        }
        due
    }

    /// Every path waiting, due or not (what a stop names if it cannot judge them).
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.pending.keys()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debounce() -> Debounce {
        Debounce::new(Duration::from_millis(100), Duration::from_millis(1000))
    }

    /// A path due because quiet, handed back for a moment (its pass over /proc must
    /// wait), stays due then however many writes mark it meanwhile: before, each write
    /// pushed it out again, up to the longest debounce, at every hand-back.
    #[test]
    fn a_path_handed_back_is_due_when_said_whatever_writes_come() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark_again_after("/a".into(), t0, Duration::from_millis(60), false);
        for ms in [20, 40, 50] {
            d.mark("/a".into(), t0 + Duration::from_millis(ms), false, true);
        }
        assert!(d.take_due(t0 + Duration::from_millis(59)).is_empty());
        let due = d.take_due(t0 + Duration::from_millis(60));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].path, PathBuf::from("/a"));
        // Taken, the pin is gone: the next writes wait for quiet as ever.
        d.mark("/a".into(), t0 + Duration::from_millis(70), false, true);
        assert!(d.take_due(t0 + Duration::from_millis(169)).is_empty());
        assert_eq!(d.take_due(t0 + Duration::from_millis(170)).len(), 1);
        // A closed path handed back is pushed out by new events, as before.
        d.mark_again_after("/b".into(), t0, Duration::from_millis(60), true);
        d.mark("/b".into(), t0 + Duration::from_millis(50), false, true);
        assert!(d.take_due(t0 + Duration::from_millis(149)).is_empty());
        assert_eq!(d.take_due(t0 + Duration::from_millis(150)).len(), 1);
    }

    #[test]
    fn a_closed_file_is_due_at_once_and_a_written_one_when_quiet() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark("/a".into(), t0, true, true);
        d.mark("/b".into(), t0, false, true);
        let due = d.take_due(t0);
        assert_eq!(
            due,
            vec![Due {
                path: "/a".into(),
                rehash: true,
                settled: true,
                closed: true,
                renamed_in: false
            }]
        );
        assert!(d.take_due(t0 + Duration::from_millis(99)).is_empty());
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(100)));
        let quiet = d.take_due(t0 + Duration::from_millis(100));
        assert_eq!(quiet.len(), 1);
        assert!(!quiet[0].settled);
        assert!(d.is_empty());
    }

    /// A new file closed by its writer waits only its grace, not the quiet period, and is
    /// due as settled (closed): the report latency of an arriving image is the grace.
    #[test]
    fn a_closed_new_file_is_due_after_its_grace_as_settled() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark_closed_after("/new".into(), t0, Duration::from_millis(20));
        assert!(d.take_due(t0 + Duration::from_millis(19)).is_empty());
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(20)));
        let due = d.take_due(t0 + Duration::from_millis(20));
        assert_eq!(
            due,
            vec![Due {
                path: "/new".into(),
                rehash: true,
                settled: true,
                closed: true,
                renamed_in: false
            }]
        );
    }

    #[test]
    fn a_path_marked_many_times_is_due_once_and_keeps_rehash() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark("/a".into(), t0, false, true);
        d.mark("/a".into(), t0 + Duration::from_millis(50), false, false);
        d.mark("/a".into(), t0 + Duration::from_millis(60), true, false);
        assert_eq!(d.len(), 1);
        let due = d.take_due(t0 + Duration::from_millis(60));
        assert_eq!(
            due,
            vec![Due {
                path: "/a".into(),
                rehash: true,
                settled: true,
                closed: true,
                renamed_in: false
            }]
        );
        assert!(d.take_due(t0 + Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn a_forgotten_path_never_comes_due() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark("/a".into(), t0, false, true);
        d.mark("/b".into(), t0, false, true);
        assert!(d.forget(std::path::Path::new("/a")));
        assert!(!d.forget(std::path::Path::new("/a")));
        let due = d.take_due(t0 + Duration::from_secs(10));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].path, PathBuf::from("/b"));
        assert!(d.is_empty());
    }

    #[test]
    fn a_file_written_without_pause_is_due_after_max_defer() {
        let mut d = debounce();
        let t0 = Instant::now();
        let mut t = t0;
        while t < t0 + Duration::from_millis(2000) {
            d.mark("/log".into(), t, false, true);
            if !d.take_due(t).is_empty() {
                break;
            }
            t += Duration::from_millis(10);
        }
        assert!(
            t <= t0 + Duration::from_millis(1000),
            "verified at {:?}",
            t - t0
        );
    }

    /// A close and a write after it, read in one turn (a probe closes while the writer
    /// writes on): the path is due as a write is (once quiet, not settled), but the close
    /// is remembered so who else holds it is asked. Once taken, a write alone is a write.
    #[test]
    fn a_close_followed_by_a_write_in_one_turn_is_remembered() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark("/a".into(), t0, true, true);
        d.mark("/a".into(), t0 + Duration::from_millis(1), false, true);
        assert!(d.take_due(t0 + Duration::from_millis(100)).is_empty());
        let due = d.take_due(t0 + Duration::from_millis(101));
        assert_eq!(
            due,
            vec![Due {
                path: "/a".into(),
                rehash: true,
                settled: false,
                closed: true,
                renamed_in: false
            }]
        );
        d.mark("/a".into(), t0 + Duration::from_millis(200), false, true);
        let due = d.take_due(t0 + Duration::from_millis(300));
        assert_eq!(due.len(), 1);
        assert!(!due[0].settled && !due[0].closed);
    }

    /// A path renamed in keeps that until it is taken, whatever events come meanwhile (its
    /// departure, renamed on: a chain link), and is taken without it the next time.
    #[test]
    fn a_rename_in_is_remembered_until_the_path_is_taken() {
        let mut d = debounce();
        let t0 = Instant::now();
        d.mark_renamed_in("/a.tmp".into(), t0);
        d.mark_closed_after("/a.tmp".into(), t0, Duration::from_millis(100));
        d.mark("/b".into(), t0, true, true);
        let due = d.take_due(t0 + Duration::from_millis(100));
        let renamed: Vec<(&str, bool)> = due
            .iter()
            .map(|due| (due.path.to_str().unwrap_or_default(), due.renamed_in))
            .collect();
        assert_eq!(renamed, vec![("/b", false), ("/a.tmp", true)]);
        d.mark("/a.tmp".into(), t0, true, true);
        assert!(!d.take_due(t0 + Duration::from_millis(200))[0].renamed_in);
    }
}
