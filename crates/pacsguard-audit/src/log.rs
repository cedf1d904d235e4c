//! `audit.log`: one JSON record per line, each line a Merkle leaf.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use pacsguard_trail::merkle::{Frontier, Hash, leaf_hash};

use crate::mac::RecordKey;
use crate::verify::Problem;

/// Longest record line accepted. PacsGuard's own records are a few hundred bytes to a few
/// KiB (a finding with long paths); a longer line is damage or an attack on the reader.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("audit trail {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("audit trail {} is damaged ({problem}); keep it as evidence, move it aside and run `pacsguard audit verify` on the copy", .path.display())]
    Damaged { path: PathBuf, problem: String },
    /// The trail is intact but its witness does not hold its last checkpoint: a person
    /// must check the witness (the problem says what to do), not the trail.
    #[error("audit trail witness {}: {problem}", .path.display())]
    Witness { path: PathBuf, problem: String },
}

/// What a pass over the log found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub frontier: Frontier,
    /// Roots at the sizes asked for (those the log reaches).
    pub roots: BTreeMap<u64, Hash>,
    /// Bytes of complete lines.
    pub complete_bytes: u64,
    /// A last line without its newline: (offset, length).
    pub torn_tail: Option<(u64, u64)>,
    pub problems: Vec<Problem>,
    /// Heartbeats that came later than promised: the guard was stopped uncleanly. Reported
    /// by `verify`; no reason to refuse appending.
    pub heartbeat_gaps: Vec<Problem>,
    /// The baseline generations the records read announce and sign.
    pub generations: Generations,
}

/// The newest baseline generations records announce (`profile`/`accept` started) and
/// sign (their success), as [`crate::TrailState`] follows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generations {
    pub baseline: u64,
    pub announced: u64,
    /// The watcher's row-set tags the records announce and confirm (see
    /// [`crate::SeenMarks`]), relative to the state the reading started from.
    pub seen: crate::SeenMarks,
}

impl Generations {
    /// Follows one record: only `profile` and `accept` records that carry a generation.
    pub(crate) fn observe(&mut self, action: &str, outcome: &str, generation: Option<u64>) {
        let Some(generation) = generation else {
            return;
        };
        if action != "profile" && action != "accept" {
            return;
        }
        match outcome {
            "started" => self.announced = self.announced.max(generation),
            "success" | "findings" => {
                self.baseline = self.baseline.max(generation);
                self.announced = self.announced.max(generation);
            }
            _ => {}
        }
    }

    fn observe_record(&mut self, record: &serde_json::Value) {
        let text = |field: &str| record.get(field).and_then(serde_json::Value::as_str);
        if let (Some(action), Some(outcome)) = (text("action"), text("outcome")) {
            let generation = record.get("generation").and_then(serde_json::Value::as_u64);
            self.observe(action, outcome, generation);
            if action == "watch"
                && let Some(tag) = text("watch_seen").and_then(crate::decode_tag)
            {
                self.seen.observe(outcome, tag);
            }
        }
    }
}

/// Slack on a heartbeat's promise before its absence counts as a gap: a busy machine may
/// be late, a stopped guard is never back on time.
pub(crate) const HEARTBEAT_SLACK: f64 = 2.0;

/// Reads every complete line, checking that each is a JSON object whose `seq` is its
/// position, and builds the tree. Never holds more than one line in memory. `start` is
/// the tree and byte offset the reader begins at (empty and 0 for the whole log).
///
/// With `mac` (a key and the first index it applies from: the size of the last
/// checkpoint), every record from that index on must carry a valid MAC (see `mac.rs`).
pub(crate) fn scan(
    reader: impl io::Read,
    roots_at: &BTreeSet<u64>,
    start: (u64, Frontier),
    mac: Option<(&RecordKey, u64)>,
) -> io::Result<Scan> {
    let start = Cursor {
        bytes: start.0,
        frontier: start.1,
        heartbeats: Heartbeats::default(),
    };
    scan_from(reader, roots_at, start, mac, None).map(|(scan, _)| scan)
}

/// Where a reading of the log stands: the next byte, the tree of the records before it,
/// and the last heartbeat's promise, so that a later reading goes on from here exactly as
/// one reading from the start would.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cursor {
    pub bytes: u64,
    pub frontier: Frontier,
    heartbeats: Heartbeats,
}

/// [`scan`] from a cursor, stopping once the tree holds `stop_at` records (the end of the
/// log without it). Returns the cursor after the last complete record read. The reader
/// must stand at `start.bytes`.
pub(crate) fn scan_from(
    reader: impl io::Read,
    roots_at: &BTreeSet<u64>,
    start: Cursor,
    mac: Option<(&RecordKey, u64)>,
    stop_at: Option<u64>,
) -> io::Result<(Scan, Cursor)> {
    scan_gathering(reader, roots_at, start, mac, stop_at, &mut [])
}

/// [`scan_from`], handing every line read to each of `gathers` (see [`crate::Gather`]).
pub(crate) fn scan_gathering(
    reader: impl io::Read,
    roots_at: &BTreeSet<u64>,
    start: Cursor,
    mac: Option<(&RecordKey, u64)>,
    stop_at: Option<u64>,
    gathers: &mut [&mut crate::Gather],
) -> io::Result<(Scan, Cursor)> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut scan = Scan {
        complete_bytes: start.bytes,
        frontier: start.frontier,
        ..Scan::default()
    };
    let mut line = Vec::new();
    let mut heartbeats = start.heartbeats;
    if roots_at.contains(&scan.frontier.size()) {
        scan.roots
            .insert(scan.frontier.size(), scan.frontier.root());
    }
    loop {
        if stop_at.is_some_and(|stop| scan.frontier.size() >= stop) {
            break;
        }
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let index = scan.frontier.size();
        let offset = scan.complete_bytes;
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_RECORD_BYTES {
                scan.problems.push(Problem::at_record(
                    index,
                    offset,
                    format!("longer than {MAX_RECORD_BYTES} bytes"),
                ));
                for gather in gathers.iter_mut() {
                    gather.damaged(index);
                }
                let skipped = skip_line(&mut reader)?;
                scan.complete_bytes += line.len() as u64 + skipped;
                scan.frontier.push(leaf_hash(&line));
                continue;
            }
            scan.torn_tail = Some((offset, line.len() as u64));
            break;
        }
        let record = &line[..line.len() - 1];
        if let Some((key, from)) = mac
            && index >= from
            && !key.check(record)
        {
            scan.problems.push(Problem::at_record(
                index,
                offset,
                "after the last checkpoint, and without a valid MAC of this home: not written by PacsGuard (appended or edited by someone else); it is not signed. Keep the trail as evidence".into(),
            ));
        }
        let mut seq_ok = false;
        match serde_json::from_slice::<serde_json::Value>(record) {
            Ok(value) if value.get("seq").and_then(serde_json::Value::as_u64) == Some(index) => {
                seq_ok = true;
                heartbeats.observe(&value, index, offset, &mut scan.heartbeat_gaps);
                scan.generations.observe_record(&value);
            }
            Ok(value) => {
                let seq = value
                    .get("seq")
                    .map_or("none".to_string(), ToString::to_string);
                scan.problems.push(Problem::at_record(
                    index,
                    offset,
                    format!("sequence number {seq} where {index} belongs: a record was deleted, inserted or reordered"),
                ));
            }
            Err(e) => scan.problems.push(Problem::at_record(
                index,
                offset,
                format!("not a JSON record ({e})"),
            )),
        }
        for gather in gathers.iter_mut() {
            gather.line(index, offset, record, seq_ok);
        }
        scan.frontier.push(leaf_hash(record));
        scan.complete_bytes += line.len() as u64;
        if roots_at.contains(&scan.frontier.size()) {
            scan.roots
                .insert(scan.frontier.size(), scan.frontier.root());
        }
    }
    let cursor = Cursor {
        bytes: scan.complete_bytes,
        frontier: scan.frontier.clone(),
        heartbeats,
    };
    Ok((scan, cursor))
}

/// Skips to just past the next newline; returns the bytes skipped.
/// Skips to just past the next newline (or the end), returning how many bytes it
/// skipped: how every reader of the trail's line files passes over a line too long to
/// hold, without holding it.
pub fn skip_line(reader: &mut impl io::BufRead) -> io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(skipped + i as u64 + 1);
            }
            None => {
                let n = buffer.len();
                reader.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// A log just opened: the log, its roots at the sizes asked for, and the torn tail it cut.
#[derive(Debug)]
pub struct Opened {
    pub log: AuditLog,
    pub roots: BTreeMap<u64, Hash>,
    pub torn_tail: Option<(u64, u64)>,
    /// The generations the records read (those after the resume point) announce and sign.
    pub generations: Generations,
}

/// The log opened for appending.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
    frontier: Frontier,
    /// Length of the log in bytes (complete records only).
    bytes: u64,
    /// A write failed: the log refuses further appends and checkpoints this run.
    poisoned: bool,
}

impl AuditLog {
    /// Opens (creating) the log and checks its records: all of them, or with `resume` (a
    /// signed byte offset and frontier) only those written after it. Returns it with the
    /// roots at the sizes asked for (those reached while reading) and the torn tail it cut
    /// off, if any. A torn tail (a crash while a record was written, never acknowledged) is
    /// removed so appends continue on a clean line; the caller records that it happened.
    /// Any other damage refuses the log.
    pub fn open(
        path: &Path,
        roots_at: &BTreeSet<u64>,
        resume: Option<(u64, Frontier)>,
        mac: Option<(&RecordKey, u64)>,
    ) -> Result<Opened, LogError> {
        let io_err = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Never through a link, never blocking on a FIFO; only a regular file is a log.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(io_err)?;
        if !file.metadata().map_err(io_err)?.is_file() {
            return Err(crate::sink::refused(
                path,
                pacsguard_fs::ReadError::NotRegular,
            ));
        }
        let start = match resume {
            Some((offset, frontier)) => {
                if !ends_a_line(&mut file, offset).map_err(io_err)? {
                    return Err(LogError::Damaged {
                        path: path.to_path_buf(),
                        problem: format!(
                            "the last checkpoint ends at byte {offset}, which is not the end of a record: truncated or edited"
                        ),
                    });
                }
                (offset, frontier)
            }
            None => (0, Frontier::new()),
        };
        file.seek(SeekFrom::Start(start.0)).map_err(io_err)?;
        let scan = scan(&mut file, roots_at, start, mac).map_err(io_err)?;
        if let Some(problem) = scan.problems.first() {
            return Err(LogError::Damaged {
                path: path.to_path_buf(),
                problem: problem.to_string(),
            });
        }
        if let Some((offset, length)) = scan.torn_tail {
            file.set_len(scan.complete_bytes)
                .and_then(|()| file.sync_data())
                .map_err(|e| {
                    let hint = if e.raw_os_error() == Some(libc::EPERM) {
                        " (is the file append-only, chattr +a? a person must remove the attribute for this repair)"
                    } else {
                        ""
                    };
                    io_err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot cut off the record cut short by a crash ({length} bytes at byte {offset}): {e}{hint}"
                        ),
                    ))
                })?;
        }
        Ok(Opened {
            log: AuditLog {
                file,
                path: path.to_path_buf(),
                frontier: scan.frontier,
                bytes: scan.complete_bytes,
                poisoned: false,
            },
            roots: scan.roots,
            torn_tail: scan.torn_tail,
            generations: scan.generations,
        })
    }

    /// The log's length in bytes, for the checkpoint's resume line.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The frontier of the tree, for the checkpoint's resume line.
    pub fn peaks(&self) -> Vec<Hash> {
        self.frontier.peaks()
    }

    /// Records so far; the sequence number of the next one.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Appends one record (without newline) in a single write.
    pub fn append(&mut self, record: &[u8]) -> Result<(), LogError> {
        if record.len() > MAX_RECORD_BYTES || record.contains(&b'\n') {
            return Err(LogError::Damaged {
                path: self.path.clone(),
                problem: "refusing to append a record that is too long or spans lines".into(),
            });
        }
        if self.poisoned {
            return Err(LogError::Damaged {
                path: self.path.clone(),
                problem: "an earlier write failed; nothing more is appended in this run".into(),
            });
        }
        let mut line = Vec::with_capacity(record.len() + 1);
        line.extend_from_slice(record);
        line.push(b'\n');
        if let Err(source) = self.file.write_all(&line) {
            // A partial line (disk full) must not stay behind a checkpoint that does not
            // know it: cut it off, and refuse further appends and checkpoints.
            let _ = self.file.set_len(self.bytes);
            self.poisoned = true;
            return Err(LogError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.frontier.push(leaf_hash(record));
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Whether a write failed in this run (no checkpoint may then be signed).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|source| LogError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The leaf hashes of the log's first `count` complete records (for a consistency proof;
/// 32 bytes per record in memory).
pub(crate) fn leaf_hashes(path: &Path, count: u64) -> Result<Vec<Hash>, LogError> {
    let io_err = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = pacsguard_fs::open_regular(path).map_err(|e| crate::sink::refused(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut leaves = Vec::new();
    let mut line = Vec::new();
    while (leaves.len() as u64) < count {
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_err)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        leaves.push(leaf_hash(&line[..line.len() - 1]));
    }
    Ok(leaves)
}

/// Whether the log is at least `offset` bytes long and a record ends there.
pub(crate) fn ends_a_line(file: &mut File, offset: u64) -> io::Result<bool> {
    if offset == 0 {
        return Ok(true);
    }
    if file.metadata()?.len() < offset {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(offset - 1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// The last heartbeat's promise, while reading a trail in order.
#[derive(Clone, Debug, Default)]
struct Heartbeats {
    /// (time, seconds promised, boot id and milliseconds since boot if recorded) of the
    /// last heartbeat that promised another.
    due: Option<(std::time::SystemTime, u64, Option<BootClock>)>,
}

/// A heartbeat's boot id and milliseconds since that boot.
type BootClock = (String, u64);

/// The boot id and milliseconds since boot a heartbeat carries, if any.
fn boot_clock(record: &serde_json::Value) -> Option<BootClock> {
    let id = record.get("boot_id")?.as_str()?;
    let ms = record.get("boottime_ms")?.as_u64()?;
    Some((id.to_string(), ms))
}

impl Heartbeats {
    fn observe(
        &mut self,
        record: &serde_json::Value,
        index: u64,
        offset: u64,
        gaps: &mut Vec<Problem>,
    ) {
        if record.get("action").and_then(serde_json::Value::as_str) != Some("heartbeat") {
            return;
        }
        let time = record
            .get("time")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        let interval = record
            .get("heartbeat_seconds")
            .and_then(serde_json::Value::as_u64);
        let (Some(time), Some(interval)) = (time, interval) else {
            gaps.push(Problem::at_record(
                index,
                offset,
                "a heartbeat without its time or interval".into(),
            ));
            return;
        };
        let clock = boot_clock(record);
        if let Some((last, promised, last_clock)) = self.due.take() {
            // Within one boot, the clock since boot measures the wait even across a step
            // of the wall clock; otherwise (older records, a reboot) the wall clock does.
            let waited = match (&last_clock, &clock) {
                (Some((boot0, ms0)), Some((boot1, ms1))) if boot0 == boot1 && ms1 >= ms0 => {
                    (ms1 - ms0) as f64 / 1000.0
                }
                _ => time.duration_since(last).map_or(0.0, |d| d.as_secs_f64()),
            };
            if waited > promised as f64 * HEARTBEAT_SLACK {
                gaps.push(Problem::at_record(
                    index,
                    offset,
                    format!(
                        "heartbeat gap of {waited:.0} s where one was due within {promised} s: the guard was stopped without a clean shutdown"
                    ),
                ));
            }
        }
        self.due = (interval > 0).then_some((time, interval, clock));
    }
}
