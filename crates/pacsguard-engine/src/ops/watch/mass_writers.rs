//! One process writing many guarded image files at once. A PACS receiver writes a few
//! *new* files; it never holds existing images of an `append-only` root open for
//! writing by the dozen, nor rewrites dozens of them within seconds. Ransomware does
//! both, and an encryptor that keeps its write descriptors open and keeps touching the
//! files could otherwise outwait the watcher: each file is waited for while a process
//! still writes it ([`super::writers`]), up to `MAX_WRITER_WAIT` (30 s) after the
//! longest debounce (10 s).
//!
//! So a process is a *mass writer* when either
//! * a pass over `/proc` finds it holding [`MASS_WRITER_FILES`] or more guarded files of
//!   append-only roots (known to the view, not arrivals of this run) open for writing at
//!   once, or two or more processes hold that many between them, taken per effective
//!   user and then all together (review s11-r11: an encryptor spread over processes of
//!   a few descriptors each; see [`together`]); or
//! * fanotify saw it close [`MASS_WRITER_FILES`] or more such files after writing them
//!   within [`MASS_WRITER_WINDOW`].
//!
//! That is evidence in itself: every file it holds or wrote is judged as it stands,
//! without waiting for it (or any other holder) to let go. A process holding them is
//! named in one `ransomware-suspected` alert (pid, executable, user, from `/proc`)
//! once one of the files it holds is judged changed (review s11-r11: a backup tool or a
//! PACS holding many images read-write and changing nothing is no ransomware); the
//! rewrites of one that closed them are each judged
//! at once and counted by the ransomware detector, whose alert names it. Detection only
//! reports: it never stops the process.
//!
//! A pass over `/proc` that counts the holders (a *census*) runs beside the usual look
//! for other writers, and on its own when [`MASS_WRITER_FILES`] guarded files were
//! written without a close within [`MASS_WRITER_WINDOW`], at most every
//! [`CENSUS_INTERVAL`]: nothing is added while guarded images are left alone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bounded::BoundedMap;

/// Guarded files of append-only roots that one process holds open for writing at once,
/// or closes after writing within [`MASS_WRITER_WINDOW`], that make it a mass writer.
/// A receiver holds the few new files it is receiving (not counted: they are not in
/// the view yet); a rewrite of ten stored images by one process is no ingest.
pub const MASS_WRITER_FILES: usize = 10;

/// The window over which the files a process closed after writing, and the guarded
/// files written without a close (which call for a census), are counted.
pub const MASS_WRITER_WINDOW: Duration = Duration::from_secs(10);

/// At most one census of its own this often (a pass over `/proc`, milliseconds): while
/// an encryptor keeps touching the files it holds, once a second.
pub const CENSUS_INTERVAL: Duration = Duration::from_secs(1);

/// Processes whose recent rewrites are counted. Full, all are forgotten (a process
/// then needs [`MASS_WRITER_FILES`] more rewrites to be named; its changes are each
/// verified and counted by the ransomware detector meanwhile, never missed).
pub const MAX_TRACKED_PROCESSES: usize = 4096;

/// Mass writers remembered, so each is alerted once. Full, all are forgotten: a process
/// still at it is then alerted again, never silently.
pub const MAX_MASS_WRITERS: usize = 4096;

/// Processes named in the alert of a group of mass writers (see [`together`]); the
/// count covers all of them.
pub const MAX_NAMED_MEMBERS: usize = 8;

/// How the holders of a census were taken together to reach [`MASS_WRITER_FILES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Together {
    /// One process holds that many.
    Alone,
    /// Processes of one (effective) user do, none of them alone.
    User(u32),
    /// Processes of several users do, no user's alone.
    Everyone,
}

/// The holders of one census taken together (review s11-r11): an encryptor spread over
/// processes of a few descriptors each (eight, or one) holds the store as surely as one
/// process holding them all, and each of its files would otherwise be waited for the
/// writer wait. A process holding [`MASS_WRITER_FILES`] alone is [`Together::Alone`];
/// the others are taken per effective user (`user`: `None` when `/proc` no longer
/// shows the process), then all the rest together. A group needs two processes or more
/// and [`MASS_WRITER_FILES`] distinct files; nothing is read of `/proc` unless the
/// processes under the limit hold that many files between them. Returned with the pids
/// of each group, lowest first.
pub fn together<K: Clone + Eq + std::hash::Hash>(
    holders: &HashMap<u32, Vec<K>>,
    user: &mut dyn FnMut(u32) -> Option<u32>,
) -> Vec<(Together, Vec<u32>)> {
    let mut groups: Vec<(Together, Vec<u32>)> = Vec::new();
    let mut rest: Vec<u32> = Vec::new();
    for (pid, files) in holders {
        if files.len() >= MASS_WRITER_FILES {
            groups.push((Together::Alone, vec![*pid]));
        } else if !files.is_empty() {
            rest.push(*pid);
        }
    }
    rest.sort_unstable();
    let distinct = |pids: &[u32]| {
        pids.iter()
            .flat_map(|pid| holders[pid].iter())
            .collect::<HashSet<&K>>()
            .len()
    };
    if rest.len() < 2 || distinct(&rest) < MASS_WRITER_FILES {
        groups.sort_by_key(|(_, pids)| pids[0]);
        return groups;
    }
    let mut per_user: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    let mut left: Vec<u32> = Vec::new();
    for pid in rest {
        // Gone: its files were closed, and are each verified as they come.
        if let Some(uid) = user(pid) {
            per_user.entry(uid).or_default().push(pid);
        }
    }
    for (uid, pids) in per_user {
        if pids.len() >= 2 && distinct(&pids) >= MASS_WRITER_FILES {
            groups.push((Together::User(uid), pids));
        } else {
            left.extend(pids);
        }
    }
    left.sort_unstable();
    if left.len() >= 2 && distinct(&left) >= MASS_WRITER_FILES {
        groups.push((Together::Everyone, left));
    }
    groups.sort_by_key(|(_, pids)| pids[0]);
    groups
}

/// How a group is named: `lead` (the member holding the most) and the others.
pub fn describe_group(how: Together, lead: &Process, members: &[Process]) -> String {
    let others: Vec<String> = members
        .iter()
        .filter(|m| m.pid != lead.pid)
        .take(MAX_NAMED_MEMBERS)
        .map(|m| m.pid.to_string())
        .collect();
    let more = members.len().saturating_sub(1 + MAX_NAMED_MEMBERS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let whose = match how {
        Together::Alone => return lead.describe(),
        Together::User(uid) => format!("with the other processes of its user (uid {uid})"),
        Together::Everyone => "with the other processes of every user".to_string(),
    };
    format!(
        "{} {whose} ({} processes in all, also pids {}{more}; none holds MASS_WRITER_FILES \
         alone)",
        lead.describe(),
        members.len(),
        others.join(", ")
    )
}

/// Bytes read of `/proc/PID/status` and `/proc/PID/stat`: their first lines hold what is
/// needed (a process name is at most 64 bytes escaped).
const PROC_TEXT_BYTES: u64 = 4096;

/// A process as the findings name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Clock ticks since boot when it started (`/proc/PID/stat` field 22): a pid
    /// reused by another process is another process.
    pub started: u64,
    pub comm: String,
    pub exe: Option<PathBuf>,
    /// Real and effective user ids.
    pub uid: Option<(u32, u32)>,
}

impl Process {
    /// The process `pid` as `/proc` shows it now; `None` once it has exited.
    pub fn of(pid: u32) -> Option<Process> {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let stat = read_bounded(&base.join("stat"))?;
        let started = start_time(&stat)?;
        let comm = read_bounded(&base.join("comm"))
            .map(|c| pacsguard_events::escape_bytes(c.trim_end().as_bytes()))
            .unwrap_or_default();
        // Unreadable for another user's process without CAP_SYS_PTRACE: left out.
        let exe = std::fs::read_link(base.join("exe")).ok();
        let uid = read_bounded(&base.join("status")).and_then(|s| uids(&s));
        Some(Process {
            pid,
            started,
            comm,
            exe,
            uid,
        })
    }

    /// "python3 (pid 123, exe /usr/bin/python3.11, uid 1000)".
    pub fn describe(&self) -> String {
        let exe = self.exe.as_ref().map_or_else(
            || "exe not readable".to_string(),
            |e| format!("exe {}", pacsguard_events::escape_path(e)),
        );
        let uid = match self.uid {
            Some((real, effective)) if real == effective => format!("uid {real}"),
            Some((real, effective)) => format!("uid {real}, euid {effective}"),
            None => "uid not readable".to_string(),
        };
        let name = if self.comm.is_empty() {
            "a process"
        } else {
            &self.comm
        };
        format!("{name} (pid {}, {exe}, {uid})", self.pid)
    }
}

fn read_bounded(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PROC_TEXT_BYTES).read_to_end(&mut text))
        .ok()?;
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// Field 22 of `/proc/PID/stat`, counted after the command name's closing parenthesis
/// (the name may hold spaces and parentheses of its own).
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields 3 onwards; the start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The real and effective ids of the `Uid:` line of `/proc/PID/status`.
fn uids(status: &str) -> Option<(u32, u32)> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|n| n.parse::<u32>().ok());
    Some((ids.next()??, ids.next()??))
}

/// What the watcher knows of mass writers: the evidence that calls for a census, the
/// recent rewrites of each process, and the processes found so far.
#[derive(Debug)]
pub struct MassWriters {
    /// Guarded files written without a close, and when, most recent last (at most
    /// [`MASS_WRITER_FILES`]: enough to know a census is called for).
    open_writes: VecDeque<(Instant, PathBuf)>,
    last_census: Option<Instant>,
    /// Per process (pid, start time): the distinct guarded files it closed after
    /// writing within the window, oldest first.
    rewrites: BoundedMap<u32, VecDeque<(Instant, PathBuf)>>,
    /// The mass writers found holding stored images, by (pid, start time), with how
    /// each is named: each alerted once.
    found: BoundedMap<(u32, u64), String>,
    /// The processes found rewriting stored images by the dozen (closed after writing):
    /// their files are not waited for. Not alerted on their own: each rewrite is
    /// verified at once and counted by the ransomware detector, which names them.
    rewriters: BoundedMap<(u32, u64), String>,
    /// Mass writers found holding stored images whose alert waits for a first change
    /// among the files they hold (review s11-r11: a PACS or backup tool holding many
    /// images read-write and writing nothing, or the same bytes, is no ransomware), with
    /// the files each was found holding; oldest first, at most [`MAX_MASS_WRITERS`].
    unconfirmed: VecDeque<(Process, String, HashSet<PathBuf>)>,
    /// The mass writers alerted (by pid and start time): each is alerted once, however
    /// often a census finds it again.
    alerted: BoundedMap<(u32, u64), ()>,
}

impl Default for MassWriters {
    fn default() -> Self {
        MassWriters {
            open_writes: VecDeque::new(),
            last_census: None,
            rewrites: BoundedMap::new(MAX_TRACKED_PROCESSES),
            found: BoundedMap::new(MAX_MASS_WRITERS),
            rewriters: BoundedMap::new(MAX_MASS_WRITERS),
            unconfirmed: VecDeque::new(),
            alerted: BoundedMap::new(MAX_MASS_WRITERS),
        }
    }
}

impl MassWriters {
    /// A guarded file of an append-only root was written and not closed (inotify): a
    /// writer holding it, perhaps one of many.
    pub fn written_open(&mut self, path: &Path, now: Instant) {
        self.open_writes.retain(|(_, p)| p != path);
        self.open_writes.push_back((now, path.to_path_buf()));
        while self.open_writes.len() > MASS_WRITER_FILES {
            self.open_writes.pop_front();
        }
    }

    /// Whether a census of its own is due: [`MASS_WRITER_FILES`] guarded files written
    /// without a close within [`MASS_WRITER_WINDOW`], and none for [`CENSUS_INTERVAL`].
    pub fn census_due(&mut self, now: Instant) -> bool {
        self.open_writes
            .retain(|(at, _)| now.saturating_duration_since(*at) <= MASS_WRITER_WINDOW);
        self.open_writes.len() >= MASS_WRITER_FILES
            && self
                .last_census
                .is_none_or(|t| now.saturating_duration_since(t) >= CENSUS_INTERVAL)
    }

    /// A pass over `/proc` counted the holders (whatever called it).
    pub fn census_done(&mut self, now: Instant) {
        self.last_census = Some(now);
        self.open_writes.clear();
    }

    /// `pid` closed the guarded file `path` after writing it (fanotify). Returns the
    /// files it rewrote within the window when that makes it a mass writer for the
    /// first time (then the evidence is handed over once).
    pub fn rewrote(&mut self, pid: u32, path: &Path, now: Instant) -> Option<Vec<PathBuf>> {
        let mut files = self.rewrites.remove(&pid).unwrap_or_default();
        files.retain(|(at, p)| {
            now.saturating_duration_since(*at) <= MASS_WRITER_WINDOW && p != path
        });
        files.push_back((now, path.to_path_buf()));
        let reached = files.len() >= MASS_WRITER_FILES;
        let paths = reached.then(|| files.iter().map(|(_, p)| p.clone()).collect());
        if reached {
            // Counted again from nothing: a process already named is not named twice
            // (see `is_new`), and one whose pid was reused starts clean.
            files.clear();
        }
        self.rewrites.insert(pid, files);
        paths
    }

    /// Records `process` (named `name`: alone, or leading a group) as a mass writer;
    /// true the first time (its files are all judged then).
    pub fn is_new(&mut self, process: &Process, name: &str) -> bool {
        self.found
            .insert((process.pid, process.started), name.to_string())
            .is_none()
    }

    /// Records `process` as rewriting stored images by the dozen.
    pub fn rewrites_en_masse(&mut self, process: &Process) {
        self.rewriters
            .insert((process.pid, process.started), process.describe());
    }

    /// `process`, a mass writer holding `files`, is alerted once one of the files it
    /// holds is found changed (see [`MassWriters::confirmed_by`]); found again, the
    /// files it holds now are added. Full, the oldest waiting is dropped (its files are
    /// each judged and counted by the ransomware detector all the same).
    pub fn await_change(&mut self, process: &Process, name: &str, files: &[PathBuf]) {
        let key = (process.pid, process.started);
        if self.alerted.contains(&key) {
            return;
        }
        if let Some((_, _, held)) = self
            .unconfirmed
            .iter_mut()
            .find(|(p, _, _)| (p.pid, p.started) == key)
        {
            held.extend(files.iter().cloned());
            return;
        }
        if self.unconfirmed.len() >= MAX_MASS_WRITERS {
            self.unconfirmed.pop_front();
        }
        self.unconfirmed.push_back((
            process.clone(),
            name.to_string(),
            files.iter().cloned().collect(),
        ));
    }

    /// The mass writers waiting for a change that hold `path`, each with the files it
    /// was found holding: `path` was found changed, so they are alerted now (once).
    pub fn confirmed_by(&mut self, path: &Path) -> Vec<(String, Vec<PathBuf>)> {
        if self.unconfirmed.is_empty() {
            return Vec::new();
        }
        let mut confirmed = Vec::new();
        self.unconfirmed.retain(|(process, name, held)| {
            if held.contains(path) {
                self.alerted.insert((process.pid, process.started), ());
                confirmed.push((name.clone(), held.iter().cloned().collect()));
                false
            } else {
                true
            }
        });
        confirmed
    }

    /// How a mass writer found earlier is named, if `pid` is (still) one.
    pub fn named(&self, pid: u32) -> Option<String> {
        // The usual case (none found) costs no look at /proc.
        if self.found.is_empty() && self.rewriters.is_empty() {
            return None;
        }
        let process = Process::of(pid)?;
        let key = (pid, process.started);
        self.found
            .get(&key)
            .or_else(|| self.rewriters.get(&key))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_and_user_ids_are_read_as_proc_writes_them() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_time(stat), Some(987_654));
        assert_eq!(start_time("garbage"), None);
        assert_eq!(
            uids("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n"),
            Some((1000, 0))
        );
        assert_eq!(uids("Uid:\tnope\n"), None);
        let me = Process::of(std::process::id()).expect("this process");
        assert!(me.started > 0);
        assert!(me.exe.is_some());
        assert!(me.describe().contains(&format!("(pid {}, exe /", me.pid)));
    }

    /// The boundary of MASS_WRITER_FILES for rewrites: one process closing one file
    /// under the limit within the window is no mass writer; the limit itself is, once;
    /// the same file written again counts once; files older than the window drop out;
    /// another process's rewrites are its own.
    #[test]
    fn a_process_rewriting_mass_writer_files_within_the_window_is_one() {
        let mut m = MassWriters::default();
        let t0 = Instant::now();
        let file = |i: usize| PathBuf::from(format!("/srv/pacs/{i}.dcm"));
        for i in 0..MASS_WRITER_FILES - 1 {
            assert_eq!(m.rewrote(7, &file(i), t0), None);
            assert_eq!(
                m.rewrote(7, &file(i), t0),
                None,
                "the same file counts once"
            );
            assert_eq!(m.rewrote(8, &file(i), t0), None);
        }
        let reached = m
            .rewrote(7, &file(MASS_WRITER_FILES - 1), t0)
            .expect("the limit makes a mass writer");
        assert_eq!(reached.len(), MASS_WRITER_FILES);
        // Past the window, the earlier rewrites no longer count.
        let later = t0 + MASS_WRITER_WINDOW + Duration::from_millis(1);
        for i in 0..MASS_WRITER_FILES - 1 {
            assert_eq!(m.rewrote(8, &file(100 + i), later), None);
        }
        assert!(m.rewrote(8, &file(200), later).is_some());
    }

    /// Review s11-r11: a mass writer is alerted at the first change among the files it
    /// holds, once (found again by later passes, it is not alerted again); a change to a
    /// file it does not hold says nothing of it; files found on a later pass count.
    #[test]
    fn a_mass_writer_is_alerted_once_at_the_first_change_among_its_files() {
        let mut m = MassWriters::default();
        let process = Process {
            pid: 7,
            started: 1,
            comm: "x".into(),
            exe: None,
            uid: None,
        };
        let file = |i: usize| PathBuf::from(format!("/srv/pacs/{i}.dcm"));
        let files: Vec<PathBuf> = (0..MASS_WRITER_FILES).map(file).collect();
        m.await_change(&process, "x", &files);
        assert!(m.confirmed_by(&file(100)).is_empty());
        m.await_change(&process, "x", &[file(100)]);
        let confirmed = m.confirmed_by(&file(100));
        assert_eq!(confirmed.len(), 1);
        assert_eq!(confirmed[0].1.len(), MASS_WRITER_FILES + 1);
        m.await_change(&process, "x", &files);
        assert!(m.confirmed_by(&file(0)).is_empty(), "alerted once");
        // The same pid started again is another process.
        let again = Process {
            started: 2,
            ..process
        };
        m.await_change(&again, "x", &files);
        assert_eq!(m.confirmed_by(&file(3)).len(), 1);
    }

    /// Review s11-r11: processes under the limit are taken together: per user (two or
    /// more processes of one user holding MASS_WRITER_FILES distinct files: eight and
    /// two, or ten of one each), then every user's left over together; one file under the
    /// limit between them is nothing, and then no user is even asked; a file held by two
    /// processes counts once; a process alone at the limit stays alone.
    #[test]
    fn processes_under_the_limit_holding_the_store_between_them_are_taken_together() {
        let files = |from: u64, n: u64| (from..from + n).collect::<Vec<u64>>();
        let asked = std::cell::Cell::new(0);
        let mut user = |pid: u32| {
            asked.set(asked.get() + 1);
            Some(if pid < 100 { 1000 } else { pid })
        };
        let limit = MASS_WRITER_FILES as u64;
        // One under the limit between them: no group, no look at /proc.
        let under = HashMap::from([
            (1, files(0, limit - 2)),
            (2, files(0, 1)),
            (3, files(50, 1)),
        ]);
        assert!(together(&under, &mut user).is_empty());
        assert_eq!(asked.get(), 0);
        // One user's two processes: eight and two.
        let user_pair = HashMap::from([(1, files(0, limit - 2)), (2, files(100, 2))]);
        assert_eq!(
            together(&user_pair, &mut user),
            vec![(Together::User(1000), vec![1, 2])]
        );
        // Ten processes of one file each, one user.
        let singles: HashMap<u32, Vec<u64>> = (0..MASS_WRITER_FILES as u32)
            .map(|p| (p, vec![u64::from(p)]))
            .collect();
        let pids: Vec<u32> = (0..MASS_WRITER_FILES as u32).collect();
        assert_eq!(
            together(&singles, &mut user),
            vec![(Together::User(1000), pids)]
        );
        // One process per user, each under the limit: every user together. A process
        // at the limit stays alone.
        let spread: HashMap<u32, Vec<u64>> = HashMap::from([
            (100, files(0, limit / 2)),
            (200, files(100, limit - limit / 2)),
            (300, files(200, limit)),
        ]);
        assert_eq!(
            together(&spread, &mut user),
            vec![
                (Together::Everyone, vec![100, 200]),
                (Together::Alone, vec![300])
            ]
        );
        // The same files held twice count once; a process gone is left out.
        let shared = HashMap::from([(1, files(0, limit - 1)), (2, files(0, limit - 1))]);
        assert!(together(&shared, &mut user).is_empty());
        let gone = HashMap::from([(1, files(0, limit - 1)), (2, files(100, 1))]);
        assert!(together(&gone, &mut |pid| (pid == 1).then_some(0)).is_empty());
        // The group's name: the lead, the user, the others (MAX_NAMED_MEMBERS at most).
        let process = |pid| Process {
            pid,
            started: 1,
            comm: "python3".into(),
            exe: None,
            uid: Some((0, 0)),
        };
        let members: Vec<Process> = (1..=MAX_NAMED_MEMBERS as u32 + 3).map(process).collect();
        let name = describe_group(Together::User(0), &members[0], &members);
        assert!(
            name.starts_with("python3 (pid 1, exe not readable, uid 0) with the other processes of its user (uid 0) (11 processes in all, also pids 2, 3, 4, 5, 6, 7, 8, 9 and 2 more;"),
            "{name}"
        );
    }

    /// The boundary of MASS_WRITER_FILES for files written without a close: one under
    /// the limit calls for no census, the limit does, at most every CENSUS_INTERVAL,
    /// and writes older than the window do not count.
    #[test]
    fn a_census_is_due_at_mass_writer_files_written_open_and_not_more_often() {
        let mut m = MassWriters::default();
        let t0 = Instant::now();
        for i in 0..MASS_WRITER_FILES - 1 {
            m.written_open(Path::new(&format!("/srv/pacs/{i}.dcm")), t0);
            m.written_open(Path::new(&format!("/srv/pacs/{i}.dcm")), t0);
        }
        assert!(!m.census_due(t0));
        m.written_open(Path::new("/srv/pacs/last.dcm"), t0);
        assert!(m.census_due(t0));
        m.census_done(t0);
        for i in 0..MASS_WRITER_FILES {
            m.written_open(Path::new(&format!("/srv/pacs/{i}.dcm")), t0);
        }
        assert!(!m.census_due(t0 + CENSUS_INTERVAL - Duration::from_millis(1)));
        assert!(m.census_due(t0 + CENSUS_INTERVAL));
        assert!(!m.census_due(t0 + MASS_WRITER_WINDOW + Duration::from_millis(1)));
    }

    /// The boundary of MASS_WRITER_FILES for holders: a real process (`bash`) holding
    /// one file under the limit open for writing is not over it; holding the limit is.
    #[test]
    fn a_real_process_holding_mass_writer_files_open_for_writing_is_over_the_limit() {
        use std::collections::HashSet;
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = (0..MASS_WRITER_FILES)
            .map(|i| {
                let path = dir.path().join(format!("{i}.dcm"));
                std::fs::write(&path, b"DICM").expect("test fixture");
                path
            })
            .collect();
        let keys: HashSet<(u64, u64)> = paths
            .iter()
            .map(|p| {
                let m = std::fs::metadata(p).expect("test fixture");
                (m.dev(), m.ino())
            })
            .collect();
        for held in [MASS_WRITER_FILES - 1, MASS_WRITER_FILES] {
            let mut script = String::new();
            for (fd, path) in (3..).zip(&paths[..held]) {
                script.push_str(&format!("exec {fd}<>'{}'; ", path.display()));
            }
            script.push_str("echo held; exec sleep 60");
            // bash: dash takes only one-digit descriptor numbers in a redirection.
            let mut child = std::process::Command::new("bash")
                .args(["-c", &script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("bash runs");
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
                &mut line,
            )
            .expect("sh reports");
            let scan = super::super::writers::other_writers(
                &HashSet::new(),
                &|key| keys.contains(&key),
                super::super::writers::MAX_FDS_PER_WRITER_SCAN,
            );
            let _ = child.kill();
            let _ = child.wait();
            let pid = child.id();
            let over = together(&scan.holders, &mut |_| Some(0));
            if held < MASS_WRITER_FILES {
                assert!(over.is_empty(), "{held}: {over:?}");
                assert_eq!(scan.holders.get(&pid).map(Vec::len), Some(held));
            } else {
                assert_eq!(over, vec![(Together::Alone, vec![pid])], "{scan:?}");
                let process = Process {
                    pid,
                    started: 1,
                    comm: "bash".into(),
                    exe: None,
                    uid: Some((0, 0)),
                };
                let mut m = MassWriters::default();
                assert!(m.is_new(&process, "bash"));
                assert!(!m.is_new(&process, "bash"), "alerted once");
            }
        }
    }
}
