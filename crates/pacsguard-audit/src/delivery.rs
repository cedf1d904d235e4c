//! Delivery of the trail to its destinations: one mechanism, many transports.
//!
//! The trail itself is the durable queue. Each destination (a syslog collector, the
//! console) has its own cursor in `HOME/delivery/NAME.cursor`: the next record to send
//! and its byte offset in `audit.log`. [`Delivery::deliver`] reads the complete records
//! after the cursor, in order, hands them to a [`Transport`], and moves the cursor only
//! after the transport says the destination acknowledged them ([`Transport::confirm`]),
//! writing it atomically (a new file renamed over the old one). A destination that is
//! down or fails midway keeps its cursor where the batch began: it delays its own
//! delivery, never another destination's, and never loses a record. A record may be
//! sent twice to a destination that acknowledged it but whose acknowledgement was lost;
//! each record carries its sequence number (the dedup key), so a receiver can drop it.
//!
//! Before per-destination cursors, syslog forwarding kept one `HOME/forward.cursor`:
//! [`migrate_legacy_cursor`] turns it into the `syslog` destination's cursor, so an
//! upgrade neither sends again nor skips.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The most of a cursor file read: two numbers on one line.
pub const MAX_CURSOR_BYTES: u64 = 4096;

/// Longest destination name (it names a file in the home).
pub const MAX_DESTINATION_NAME: usize = 32;

/// The directory of the home that holds one cursor per destination.
pub const DELIVERY_DIR: &str = "delivery";

/// The single cursor of syslog forwarding before destinations had their own.
pub const LEGACY_CURSOR: &str = "forward.cursor";

/// The destination `audit forward` delivers to without `--destination`, and the one the
/// legacy cursor becomes.
pub const SYSLOG_DESTINATION: &str = "syslog";

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{}: {source}", .path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("{target}: {source} (delivery resumes from record {resume} next time)")]
    Send {
        target: String,
        resume: u64,
        source: io::Error,
    },
    #[error(
        "the stop no longer waited for this delivery: its cursor stays at record {resume} (what the destination took meanwhile it takes again as the same records)"
    )]
    Abandoned { resume: u64 },
    #[error(
        "destination name {0:?}: expected 1 to {MAX_DESTINATION_NAME} characters a-z, 0-9 or -"
    )]
    BadName(String),
    #[error(
        "destination name {0:?} is the console's delivery cursor: a syslog collector needs a name of its own"
    )]
    Reserved(String),
}

impl DeliveryError {
    /// Whether a transport's named deadline ended the run (a slow or stalling
    /// destination). Nothing was lost (the cursor stayed where the unconfirmed batch
    /// began); a warning, not a failure.
    pub fn deadline_passed(&self) -> bool {
        matches!(self, DeliveryError::Send { source, .. }
            if matches!(source.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

/// How far delivery to one destination got: the next record to send and its offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub seq: u64,
    pub offset: u64,
}

/// One way records reach a destination. Sending may buffer; only [`Transport::confirm`]
/// returning `Ok` means the destination has everything sent since the last confirmation.
pub trait Transport {
    /// How the destination is named in messages (`tls://siem:6514`).
    fn describe(&self) -> String;
    /// Sends one record: `line` is its bytes in the trail (the Merkle leaf, without the
    /// newline), `record` the same parsed.
    fn send(&mut self, line: &[u8], record: &Value) -> io::Result<()>;
    /// Whether this batch should end here (a deadline, a size): what was sent is
    /// confirmed, the rest waits for the next run.
    fn batch_full(&self) -> bool {
        false
    }
    /// Waits for the destination to acknowledge everything sent; `after` is the cursor
    /// that results (the next record to send).
    fn confirm(&mut self, after: Cursor) -> io::Result<()>;
}

/// A destination's name: a file name in the home, so a closed alphabet.
pub fn check_name(name: &str) -> Result<(), DeliveryError> {
    let fine = !name.is_empty()
        && name.len() <= MAX_DESTINATION_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fine {
        Ok(())
    } else {
        Err(DeliveryError::BadName(name.to_string()))
    }
}

/// The console's delivery destination (its cursor's name).
pub const CONSOLE_DESTINATION: &str = "console";

/// Names that belong to another transport: a syslog destination of the console's name
/// would make two reporters move one cursor (each skipping what the other took).
pub const RESERVED_DESTINATIONS: &[&str] = &[CONSOLE_DESTINATION];

/// A syslog destination's name: [`check_name`], and none of [`RESERVED_DESTINATIONS`].
pub fn check_syslog_name(name: &str) -> Result<(), DeliveryError> {
    check_name(name)?;
    if RESERVED_DESTINATIONS.contains(&name) {
        return Err(DeliveryError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Where `name`'s cursor is kept in the home `home_dir`.
pub fn cursor_path(home_dir: &Path, name: &str) -> Result<PathBuf, DeliveryError> {
    check_name(name)?;
    Ok(home_dir.join(DELIVERY_DIR).join(format!("{name}.cursor")))
}

fn file_err(path: &Path) -> impl Fn(io::Error) -> DeliveryError + '_ {
    move |source| DeliveryError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a cursor file; a missing one is the start of the trail.
pub fn read_cursor(path: &Path) -> Result<Cursor, DeliveryError> {
    match pacsguard_fs::read_file(path, MAX_CURSOR_BYTES) {
        Ok(read) => {
            let text = String::from_utf8_lossy(&read.bytes);
            let mut parts = text.split_whitespace().map(str::parse::<u64>);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(Ok(seq)), Some(Ok(offset)), None) => Ok(Cursor { seq, offset }),
                _ => Err(file_err(path)(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a delivery cursor (expected: NEXT-RECORD BYTE-OFFSET)",
                ))),
            }
        }
        Err(e) if e.is_missing() => Ok(Cursor::default()),
        Err(e) => Err(file_err(path)(io::Error::other(e.to_string()))),
    }
}

/// Writes a cursor atomically: a new private file, synced, renamed over the old one.
/// Whatever stands at the temporary name (a crash's leftover, or a symlink planted to
/// make root overwrite another file) is removed, never written through.
pub fn write_cursor(path: &Path, cursor: Cursor) -> Result<(), DeliveryError> {
    let err = file_err(path);
    if let Some(dir) = path.parent() {
        ensure_dir(dir).map_err(file_err(dir))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&tmp)
        .map_err(&err)?;
    file.write_all(format!("{} {}\n", cursor.seq, cursor.offset).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(&err)?;
    fs::rename(&tmp, path).map_err(&err)?;
    if let Some(dir) = path.parent() {
        // The rename is durable only once the directory is.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(file_err(dir))?;
    }
    Ok(())
}

/// Creates the delivery directory (0700) or accepts it if it is a real directory: a
/// symlink in its place is refused, never followed.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a directory (a link or a file stands in its place)",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().mode(0o700).create(dir)
        }
        Err(e) => Err(e),
    }
}

/// Every destination's cursor in the home (and the legacy one if it is still there),
/// as (destination name, cursor file, cursor).
pub fn all_cursors(home_dir: &Path) -> Result<Vec<(String, PathBuf, Cursor)>, DeliveryError> {
    let mut found = Vec::new();
    let legacy = home_dir.join(LEGACY_CURSOR);
    if fs::symlink_metadata(&legacy).is_ok() {
        found.push((
            SYSLOG_DESTINATION.to_string(),
            legacy.clone(),
            read_cursor(&legacy)?,
        ));
    }
    let dir = home_dir.join(DELIVERY_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(file_err(&dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(file_err(&dir))?;
        let file_name = entry.file_name();
        if let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".cursor"))
            && check_name(name).is_ok()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    for name in names {
        let path = cursor_path(home_dir, &name)?;
        let cursor = read_cursor(&path)?;
        found.push((name, path, cursor));
    }
    Ok(found)
}

/// Turns the single `forward.cursor` of earlier versions into the `syslog`
/// destination's cursor (same position: nothing sent again, nothing skipped). A crash
/// between writing the new one and removing the old leaves both, equal: the next run
/// finishes the move. Both present and different is refused (someone edited one).
/// Returns whether a cursor was moved.
pub fn migrate_legacy_cursor(home_dir: &Path) -> Result<bool, DeliveryError> {
    let legacy = home_dir.join(LEGACY_CURSOR);
    if fs::symlink_metadata(&legacy).is_err() {
        return Ok(false);
    }
    let position = read_cursor(&legacy)?;
    let new = cursor_path(home_dir, SYSLOG_DESTINATION)?;
    if fs::symlink_metadata(&new).is_ok() {
        let current = read_cursor(&new)?;
        if current != position {
            return Err(file_err(&legacy)(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "left from an earlier version at record {}, beside {} at record {}: one of them was edited; keep the home as evidence and remove the one that is wrong",
                    position.seq,
                    new.display(),
                    current.seq
                ),
            )));
        }
    } else {
        write_cursor(&new, position)?;
    }
    fs::remove_file(&legacy).map_err(file_err(&legacy))?;
    Ok(true)
}

/// Lets whoever stops waiting for a delivery (a guard's stop past its deadline) end it
/// as far as the cursor goes: once [`Abandon::abandon`] returns, no cursor of a
/// [`Delivery`] that shares it moves, so what the stop then reads and says is left for
/// the next start stays true (session 35: a report thread left running confirmed a
/// batch and moved the console's cursor after the stop had said, and noted for the
/// trail, that those records were not delivered). The destination may still hold what
/// it took unconfirmed: it takes it again as the same records.
#[derive(Clone, Debug, Default)]
pub struct Abandon(std::sync::Arc<std::sync::Mutex<bool>>);

impl Abandon {
    /// No cursor moves from now on; waits for a cursor write under way to finish.
    pub fn abandon(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    }
}

/// Reads the trail `log` from the cursor in `cursor` and delivers it.
#[derive(Debug)]
pub struct Delivery {
    pub log: PathBuf,
    pub cursor: PathBuf,
    /// Set by a stop that no longer waits: the cursor stays ([`Abandon`]).
    abandon: Abandon,
}

impl Delivery {
    /// The delivery of the home `home_dir`'s trail to the destination `name`.
    pub fn of(home_dir: &Path, log: PathBuf, name: &str) -> Result<Delivery, DeliveryError> {
        Ok(Delivery {
            log,
            cursor: cursor_path(home_dir, name)?,
            abandon: Abandon::default(),
        })
    }

    /// This delivery's cursor stays once `abandon` is abandoned.
    pub fn with_abandon(mut self, abandon: Abandon) -> Delivery {
        self.abandon = abandon;
        self
    }

    pub fn read_cursor(&self) -> Result<Cursor, DeliveryError> {
        read_cursor(&self.cursor)
    }

    /// Delivers every complete record after the cursor (at most `limit`), in order, and
    /// moves the cursor once the transport confirmed them; returns how many were
    /// confirmed. On a transport's error the cursor stays where this run began.
    pub fn deliver(
        &self,
        transport: &mut dyn Transport,
        limit: Option<u64>,
    ) -> Result<u64, DeliveryError> {
        let log_err = file_err(&self.log);
        let mut cursor = self.read_cursor()?;
        let start = cursor.seq;
        let mut file = pacsguard_fs::open_regular(&self.log)
            .map_err(|e| log_err(io::Error::other(e.to_string())))?;
        if file.metadata().map_err(&log_err)?.len() < cursor.offset {
            return Err(log_err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "shorter than the delivery cursor {}: truncated",
                    self.cursor.display()
                ),
            )));
        }
        file.seek(SeekFrom::Start(cursor.offset))
            .map_err(&log_err)?;
        let mut reader = BufReader::new(file);
        let target = transport.describe();
        let send_err = |source| DeliveryError::Send {
            target: target.clone(),
            resume: start,
            source,
        };
        let mut sent = 0u64;
        let mut line = Vec::new();
        while limit.is_none_or(|limit| sent < limit) && !transport.batch_full() {
            line.clear();
            let n = (&mut reader)
                .take(crate::MAX_RECORD_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(&log_err)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break; // the end, or a record still being written
            }
            let record: Value = serde_json::from_slice(&line[..n - 1]).map_err(|e| {
                log_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("record {}: {e}", cursor.seq),
                ))
            })?;
            // The cursor belongs to this trail only if the record where it points carries
            // the sequence number it expects (a trail moved aside and started anew does not).
            if record.get("seq").and_then(Value::as_u64) != Some(cursor.seq) {
                return Err(log_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the record at byte {} is not record {}: the trail does not match {} (delete it to send everything again)",
                        cursor.offset,
                        cursor.seq,
                        self.cursor.display()
                    ),
                )));
            }
            transport.send(&line[..n - 1], &record).map_err(send_err)?;
            cursor = Cursor {
                seq: cursor.seq.saturating_add(1),
                offset: cursor.offset + n as u64,
            };
            sent += 1;
        }
        transport.confirm(cursor).map_err(send_err)?;
        if sent > 0 {
            // Under the lock, so a stop that abandons waits for a write under way and
            // then reads the cursor as it will stay.
            let abandoned = self
                .abandon
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *abandoned {
                return Err(DeliveryError::Abandoned { resume: start });
            }
            write_cursor(&self.cursor, cursor)?;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that records what it was given and fails while `down`.
    #[derive(Default)]
    struct Memory {
        down: bool,
        pending: Vec<u64>,
        received: Vec<u64>,
    }

    impl Transport for Memory {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn send(&mut self, _line: &[u8], record: &Value) -> io::Result<()> {
            self.pending
                .push(record["seq"].as_u64().expect("seq in test record"));
            Ok(())
        }
        fn confirm(&mut self, _after: Cursor) -> io::Result<()> {
            if self.down {
                self.pending.clear();
                return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "down"));
            }
            self.received.append(&mut self.pending);
            Ok(())
        }
    }

    fn append(log: &Path, from: u64, to: u64) {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .expect("log");
        for seq in from..to {
            writeln!(file, "{{\"seq\":{seq}}}").expect("write");
        }
    }

    #[test]
    fn a_destination_that_is_down_does_not_hold_back_another() {
        let home = tempfile::tempdir().expect("tempdir");
        let log = home.path().join("audit.log");
        append(&log, 0, 5);
        let a = Delivery::of(home.path(), log.clone(), "siem-a").expect("a");
        let b = Delivery::of(home.path(), log.clone(), "siem-b").expect("b");
        let (mut up, mut down) = (
            Memory::default(),
            Memory {
                down: true,
                ..Memory::default()
            },
        );
        assert_eq!(a.deliver(&mut up, None).expect("a delivers"), 5);
        let err = b.deliver(&mut down, None).expect_err("b is down");
        assert!(err.to_string().contains("resumes from record 0"), "{err}");
        append(&log, 5, 8);
        assert_eq!(a.deliver(&mut up, Some(2)).expect("a"), 2);
        assert_eq!(a.deliver(&mut up, None).expect("a"), 1);
        down.down = false;
        assert_eq!(b.deliver(&mut down, None).expect("b is back"), 8);
        assert_eq!(up.received, (0..8).collect::<Vec<_>>());
        assert_eq!(down.received, (0..8).collect::<Vec<_>>());
        assert_eq!(b.deliver(&mut down, None).expect("nothing new"), 0);
    }

    /// Session 35: once abandoned (a stop that no longer waits), a batch the
    /// destination confirms late does not move the cursor.
    #[test]
    fn an_abandoned_delivery_never_moves_its_cursor() {
        let home = tempfile::tempdir().expect("tempdir");
        let log = home.path().join("audit.log");
        append(&log, 0, 3);
        let abandon = Abandon::default();
        let d = Delivery::of(home.path(), log.clone(), "console")
            .expect("d")
            .with_abandon(abandon.clone());
        let mut to = Memory::default();
        assert_eq!(d.deliver(&mut to, Some(1)).expect("delivered"), 1);
        abandon.abandon();
        let err = d.deliver(&mut to, None).expect_err("abandoned");
        assert!(
            err.to_string().contains("cursor stays at record 1"),
            "{err}"
        );
        assert_eq!(d.read_cursor().expect("cursor").seq, 1);
        let other = Delivery::of(home.path(), log, "syslog").expect("other");
        assert_eq!(
            other.deliver(&mut to, None).expect("its own"),
            3,
            "not shared"
        );
    }

    #[test]
    fn the_legacy_cursor_becomes_syslog_s_without_resending_or_skipping() {
        let home = tempfile::tempdir().expect("tempdir");
        let log = home.path().join("audit.log");
        append(&log, 0, 4);
        // An earlier version delivered two records (each line is 10 bytes).
        fs::write(home.path().join(LEGACY_CURSOR), "2 20\n").expect("legacy");
        assert!(migrate_legacy_cursor(home.path()).expect("migrates"));
        assert!(!home.path().join(LEGACY_CURSOR).exists());
        let syslog = Delivery::of(home.path(), log, SYSLOG_DESTINATION).expect("syslog");
        let mut to = Memory::default();
        assert_eq!(syslog.deliver(&mut to, None).expect("delivers"), 2);
        assert_eq!(to.received, vec![2, 3]);
        assert!(
            !migrate_legacy_cursor(home.path()).expect("nothing left"),
            "once"
        );
    }

    #[test]
    fn a_crash_mid_migration_is_finished_and_a_disagreement_refused() {
        let home = tempfile::tempdir().expect("tempdir");
        let new = cursor_path(home.path(), SYSLOG_DESTINATION).expect("path");
        write_cursor(&new, Cursor { seq: 2, offset: 20 }).expect("new");
        fs::write(home.path().join(LEGACY_CURSOR), "2 20\n").expect("legacy");
        assert!(migrate_legacy_cursor(home.path()).expect("finishes"));
        fs::write(home.path().join(LEGACY_CURSOR), "3 30\n").expect("legacy");
        let err = migrate_legacy_cursor(home.path()).expect_err("disagree");
        assert!(err.to_string().contains("edited"), "{err}");
        assert!(home.path().join(LEGACY_CURSOR).exists(), "kept as evidence");
    }

    #[test]
    fn destination_names_are_file_names_of_a_closed_alphabet() {
        assert!(check_name("syslog").is_ok());
        assert!(check_name(&"a".repeat(MAX_DESTINATION_NAME)).is_ok());
        assert!(check_name(&"a".repeat(MAX_DESTINATION_NAME + 1)).is_err());
        for bad in ["", "../x", "a/b", "Siem", "a.cursor", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
