//! Budgeted re-verification: every file of the view re-hashed, one after another, at a
//! configured byte rate and the lowest CPU priority, forever. A change no event announced
//! (bit rot, an edit through another mount, a write while the watcher was down and
//! restored timestamps) is found within one cycle.
//!
//! The scrub only detects that a digest differs; the watcher's main loop then verifies
//! the path like any event, so what is reported (and how it is deduplicated) is the same.
//! Where it stopped is kept in the home, so a restart resumes the cycle.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use pacsguard_fs::{Content, Entry};
use pacsguard_profile::{RootProfile, RootSpec, hash_tree, walk_subtrees};
use serde::{Deserialize, Serialize};

use super::Msg;
use super::view::{RootView, Views};
use crate::durable::write_atomically;

/// How often the position is saved while scrubbing.
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the position is published ([`ScrubProgress`], for the console's chart).
/// Counting the totals walks the views under their lock (about 10 ms at 1,000,000
/// files), so not after every file.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Where the scrub's cycle stands, published every [`PROGRESS_INTERVAL`] and when a
/// cycle completes (`WatchOutput::scrub_progress`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScrubProgress {
    /// Files and bytes re-verified in this cycle (over every run it took).
    pub files_done: u64,
    pub bytes_done: u64,
    /// Files and bytes the views hold now (a cycle's count can pass them when files
    /// arrived meanwhile: a reader clamps).
    pub files_total: u64,
    pub bytes_total: u64,
    /// When the cycle started, and when it should end at the rate seen so far (`None`
    /// before anything was read).
    pub started: std::time::SystemTime,
    pub estimated_end: Option<std::time::SystemTime>,
    /// The cycle is complete; the next one starts after the minimum cycle time.
    pub complete: bool,
}

impl ScrubProgress {
    /// The part done, 0.0 to 1.0: by bytes, or by files when the views hold no bytes.
    pub fn fraction(&self) -> f64 {
        let (done, total) = if self.bytes_total > 0 {
            (self.bytes_done, self.bytes_total)
        } else {
            (self.files_done, self.files_total)
        };
        if self.complete {
            1.0
        } else if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).min(1.0)
        }
    }
}

/// The progress of a cycle that has run `seconds` with `cursor`'s counts, `totals`
/// (files, bytes) held by the views, seen at `now`.
fn progress_of(
    cursor: &Cursor,
    seconds: f64,
    totals: (u64, u64),
    now: std::time::SystemTime,
    complete: bool,
) -> ScrubProgress {
    let started = now
        .checked_sub(Duration::from_secs_f64(seconds.max(0.0)))
        .unwrap_or(now);
    let mut progress = ScrubProgress {
        files_done: cursor.cycle_files,
        bytes_done: cursor.cycle_bytes,
        files_total: totals.0,
        bytes_total: totals.1,
        started,
        estimated_end: None,
        complete,
    };
    let done = progress.fraction();
    progress.estimated_end = if complete {
        Some(now)
    } else if done > 0.0 {
        let left = seconds * (1.0 - done) / done;
        Duration::try_from_secs_f64(left)
            .ok()
            .and_then(|left| now.checked_add(left))
    } else {
        None
    };
    progress
}

/// Files and bytes the views hold.
fn totals(views: &[RootView]) -> (u64, u64) {
    views
        .iter()
        .flat_map(|v| v.files())
        .fold((0, 0), |(files, bytes), e| {
            (files + 1, bytes.saturating_add(e.meta.size))
        })
}

/// Where a scrub cycle stands; saved in the home as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    /// The root being scrubbed and the last path verified in it (bytes, lossless).
    pub root: PathBuf,
    pub rel: Vec<u8>,
    pub cycle_files: u64,
    pub cycle_bytes: u64,
    /// Seconds the cycle has run, over all the runs it took.
    pub cycle_seconds: f64,
}

impl Cursor {
    fn load(path: &Path) -> Cursor {
        // A missing or unreadable cursor only costs starting the cycle over; it is read
        // like every home file (regular, no link followed, bounded), so a FIFO or a link
        // to /dev/zero in its place cannot hang or exhaust the watcher.
        crate::files::read_bounded(path, crate::files::MAX_SMALL_FILE_BYTES)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, path: &Path) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            let _ = write_atomically(path, &bytes, 0o600);
        }
    }
}

/// Nice 19 for the calling thread.
fn lowest_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

/// Paces work to `rate` bytes per second without bursting after a pause.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(bytes_per_second: u64) -> Pacer {
        Pacer {
            rate: bytes_per_second as f64,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// How long to wait after `bytes` more were read.
    fn after(&mut self, bytes: u64) -> Duration {
        self.bytes += bytes;
        let due = self.start + Duration::from_secs_f64(self.bytes as f64 / self.rate);
        let now = Instant::now();
        if now > due + Duration::from_secs(1) {
            // Far behind (a long file, a busy disk): start a new ledger rather than race.
            self.start = now;
            self.bytes = 0;
            return Duration::ZERO;
        }
        due.saturating_duration_since(now)
    }
}

/// What the scrub thread needs.
pub struct Scrub {
    pub views: Arc<Views>,
    pub bytes_per_second: u64,
    /// A cycle that ends sooner waits this long from its start before the next begins.
    pub min_cycle: Duration,
    pub cursor_path: PathBuf,
    pub skip_dirs: Vec<(u64, u64)>,
    pub stop: Arc<AtomicBool>,
    pub tx: SyncSender<Msg>,
}

impl std::fmt::Debug for Scrub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrub")
            .field("bytes_per_second", &self.bytes_per_second)
            .finish_non_exhaustive()
    }
}

/// The next file to verify after `cursor`, moving to the next root (and wrapping round to
/// a new cycle) when one is done. `None` when there is no file at all.
fn next_file(views: &[RootView], cursor: &mut Cursor) -> Option<(RootSpec, Entry, bool)> {
    if views.is_empty() {
        return None;
    }
    let (start, rel) = match views.iter().position(|v| v.spec.path == cursor.root) {
        Some(index) => (index, cursor.rel.clone()),
        None => (0, Vec::new()),
    };
    // The rest of this root, then each following root, then round to where it started.
    for step in 0..=views.len() {
        let index = (start + step) % views.len();
        let after: &[u8] = if step == 0 { &rel } else { &[] };
        if let Some(entry) = views[index].file_after(after) {
            cursor.root = views[index].spec.path.clone();
            cursor.rel = entry.rel.clone();
            let wrapped = start + step >= views.len();
            return Some((views[index].spec.clone(), entry.clone(), wrapped));
        }
    }
    None
}

/// Whether the file still has the digest and the inode flags the view holds. Files the
/// view holds no digest for (volatile roots, unreadable files) are not re-verified here.
/// Inode flags are here because changing them (`chattr +i/+a`) raises no inotify event
/// (chattr only opens and closes the file): the scrub is what sees it while watching.
fn still_matches(spec: &RootSpec, entry: &Entry, skip_dirs: &[(u64, u64)]) -> bool {
    let Content::Hashed { digest, .. } = &entry.content else {
        return true;
    };
    let Ok(mut tree) = walk_subtrees(spec, std::slice::from_ref(&entry.rel), skip_dirs) else {
        return false;
    };
    let base = RootProfile {
        spec: spec.clone(),
        entries: vec![entry.clone()],
    };
    hash_tree(spec, Some(&base), &mut tree, &|_| {});
    tree.entries
        .iter()
        .find(|e| e.rel == entry.rel)
        .is_some_and(|e| {
            matches!(&e.content, Content::Hashed { digest: d, .. } if d == digest)
                && match (e.meta.flags, entry.meta.flags) {
                    (Some(now), Some(then)) => now == then,
                    _ => true,
                }
        })
}

impl Scrub {
    pub fn run(self) {
        // Lowest CPU priority for this thread and the one that hashes for it (Linux applies
        // nice per thread); the hashing must not run on the pool the main loop uses.
        lowest_priority();
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "scrub-hash".into())
            .start_handler(|_| lowest_priority())
            .build()
        {
            Ok(pool) => pool,
            Err(_) => return,
        };
        pool.install(|| self.scrub());
    }

    fn scrub(&self) {
        let mut cursor = Cursor::load(&self.cursor_path);
        let mut pacer = Pacer::new(self.bytes_per_second.max(1));
        let mut saved = Instant::now();
        let mut resumed = Instant::now();
        // Published at once, so a console shows where a resumed cycle stands.
        let mut published: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let next = match self.views.lock() {
                Ok(views) => next_file(&views, &mut cursor),
                Err(_) => return,
            };
            let Some((spec, entry, wrapped)) = next else {
                self.sleep(Duration::from_secs(1));
                continue;
            };
            if wrapped {
                let seconds = cursor.cycle_seconds + resumed.elapsed().as_secs_f64();
                self.publish(&cursor, seconds, true);
                let _ = self.tx.send(Msg::ScrubCycle {
                    files: cursor.cycle_files,
                    bytes: cursor.cycle_bytes,
                    seconds,
                });
                cursor.cycle_files = 0;
                cursor.cycle_bytes = 0;
                cursor.cycle_seconds = 0.0;
                // A small tree is re-verified often enough at the minimum cycle time;
                // more would be reading for its own sake.
                self.sleep(
                    self.min_cycle
                        .saturating_sub(Duration::from_secs_f64(seconds)),
                );
                resumed = Instant::now();
                pacer = Pacer::new(self.bytes_per_second.max(1));
            }
            if !still_matches(&spec, &entry, &self.skip_dirs) {
                let _ = self.tx.send(Msg::ScrubDiffers(
                    spec.path.join(std::ffi::OsStr::from_bytes(&entry.rel)),
                ));
            }
            cursor.cycle_files += 1;
            cursor.cycle_bytes += entry.meta.size;
            if published.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
                let seconds = cursor.cycle_seconds + resumed.elapsed().as_secs_f64();
                self.publish(&cursor, seconds, false);
                published = Some(Instant::now());
            }
            if saved.elapsed() >= CURSOR_SAVE_INTERVAL {
                self.save(&mut cursor, &mut resumed);
                saved = Instant::now();
            }
            self.sleep(pacer.after(entry.meta.size));
        }
        self.save(&mut cursor, &mut resumed);
    }

    /// Sends where the cycle stands to the main loop (dropped when it is busy: the next
    /// one follows within [`PROGRESS_INTERVAL`]).
    fn publish(&self, cursor: &Cursor, seconds: f64, complete: bool) {
        let Ok(totals) = self.views.lock().map(|views| totals(&views)) else {
            return;
        };
        let progress = progress_of(
            cursor,
            seconds,
            totals,
            std::time::SystemTime::now(),
            complete,
        );
        let _ = self.tx.try_send(Msg::ScrubProgress(progress));
    }

    fn save(&self, cursor: &mut Cursor, resumed: &mut Instant) {
        cursor.cycle_seconds += resumed.elapsed().as_secs_f64();
        *resumed = Instant::now();
        cursor.save(&self.cursor_path);
    }

    /// Sleeps, waking early when the watcher stops.
    fn sleep(&self, total: Duration) {
        let end = Instant::now() + total;
        while !self.stop.load(Ordering::Relaxed) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_fs::{EntryType, HashAlgorithm, Meta};
    use pacsguard_profile::Policy;

    fn view(root: &str, files: &[&str]) -> RootView {
        RootView::new(RootProfile {
            spec: RootSpec {
                path: root.into(),
                policy: Policy::AppendOnly,
                hash: HashAlgorithm::Blake3,
                exclude: Vec::new(),
                cross_mounts: false,
            },
            entries: files
                .iter()
                .map(|f| Entry {
                    rel: f.as_bytes().to_vec(),
                    kind: EntryType::File,
                    meta: Meta::default(),
                    link_target: None,
                    xattrs: Vec::new(),
                    content: Content::Skipped,
                })
                .collect(),
        })
    }

    fn walk(views: &[RootView], cursor: &mut Cursor, n: usize) -> Vec<(String, bool)> {
        (0..n)
            .filter_map(|_| next_file(views, cursor))
            .map(|(spec, e, wrapped)| {
                (
                    format!(
                        "{}:{}",
                        spec.path.display(),
                        String::from_utf8_lossy(&e.rel)
                    ),
                    wrapped,
                )
            })
            .collect()
    }

    #[test]
    fn the_cursor_walks_every_root_in_order_and_wraps_into_a_new_cycle() {
        let views = vec![view("/a", &["1", "2"]), view("/b", &["3"])];
        let mut cursor = Cursor::default();
        let seen = walk(&views, &mut cursor, 4);
        assert_eq!(
            seen,
            [
                ("/a:1".to_string(), false),
                ("/a:2".to_string(), false),
                ("/b:3".to_string(), false),
                ("/a:1".to_string(), true)
            ]
        );
    }

    #[test]
    fn a_saved_cursor_resumes_after_the_last_file_verified() {
        let views = vec![view("/a", &["1", "2", "3"])];
        let mut cursor = Cursor {
            root: "/a".into(),
            rel: b"2".to_vec(),
            ..Cursor::default()
        };
        let seen = walk(&views, &mut cursor, 2);
        assert_eq!(
            seen,
            [("/a:3".to_string(), false), ("/a:1".to_string(), true)]
        );
        let tmp = tempfile::tempdir().expect("test fixture");
        let path = tmp.path().join("scrub.json");
        cursor.save(&path);
        assert_eq!(Cursor::load(&path), cursor);
        // A cursor naming a root no longer watched starts at the first root.
        let mut stale = Cursor {
            root: "/gone".into(),
            rel: b"9".to_vec(),
            ..Cursor::default()
        };
        assert_eq!(walk(&views, &mut stale, 1)[0].0, "/a:1");
    }

    #[test]
    fn progress_counts_the_views_and_estimates_the_end_from_the_rate_seen() {
        let mut views = vec![view("/a", &["1", "2"]), view("/b", &["3", "4"])];
        for v in &mut views {
            for rel in [b"1", b"2", b"3", b"4"] {
                if let Some(mut e) = v.entry(rel) {
                    e.meta.size = 250;
                    v.set(rel, Some(e));
                }
            }
        }
        assert_eq!(totals(&views), (4, 1000));
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cursor = Cursor {
            cycle_files: 1,
            cycle_bytes: 250,
            ..Cursor::default()
        };
        // A quarter read in 10 s: 30 s left.
        let p = progress_of(&cursor, 10.0, totals(&views), now, false);
        assert_eq!((p.files_done, p.files_total, p.bytes_done), (1, 4, 250));
        assert_eq!(p.started, now - Duration::from_secs(10));
        assert_eq!(p.estimated_end, Some(now + Duration::from_secs(30)));
        assert!((p.fraction() - 0.25).abs() < 1e-9);
        // Nothing read yet: no estimate; files arrived meanwhile: clamped; complete: all.
        assert_eq!(
            progress_of(&Cursor::default(), 0.0, (4, 1000), now, false).estimated_end,
            None
        );
        let over = Cursor {
            cycle_files: 9,
            cycle_bytes: 9000,
            ..Cursor::default()
        };
        assert_eq!(
            progress_of(&over, 5.0, (4, 1000), now, false).fraction(),
            1.0
        );
        assert_eq!(
            progress_of(&cursor, 5.0, (4, 1000), now, true).fraction(),
            1.0
        );
        // Empty files only: counted by files.
        assert_eq!(
            progress_of(&cursor, 5.0, (4, 0), now, false).fraction(),
            0.25
        );
    }

    #[test]
    fn no_files_means_no_work() {
        let views = vec![view("/a", &[])];
        assert_eq!(next_file(&views, &mut Cursor::default()), None);
        assert_eq!(next_file(&[], &mut Cursor::default()), None);
    }

    #[test]
    fn the_pacer_keeps_the_rate_without_bursting_after_a_pause() {
        let mut pacer = Pacer::new(1_000_000);
        let wait = pacer.after(500_000);
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        pacer.start -= Duration::from_secs(10); // a long stall
        assert_eq!(pacer.after(1), Duration::ZERO);
        assert!(pacer.after(1_000_000) > Duration::from_millis(900));
    }
}
