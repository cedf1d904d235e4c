//! The failure budgets (`lockout`) kept across restarts: a JSON file under the
//! gateway's state directory, replaced atomically (written beside, synced, renamed over,
//! the directory synced), so a crash leaves the old state or the new, never half of
//! one. Without it a restart forgot every lock and every trusted address: a guesser
//! whose lock was on could try again at once, and the right sender lost the trust that
//! let it through a lock.
//!
//! A file that is there but cannot be read as this module writes it stops the gateway's
//! start with its path and reason: a lock silently dropped is what a guesser wants.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::lockout::{Lockouts, Saved};
use crate::tls::{FileError, error};

/// The largest state file read or written: [`crate::lockout::MAX_TRACKED_UNKNOWN`]
/// unknown usernames and a configuration's known ones, each with its bounded addresses,
/// take well under this.
pub const MAX_LOCKOUT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The least time between two saves by the saver thread: a spray of wrong passcodes for
/// thousands of names changes the budgets at every check, and each save writes them all
/// and syncs the disk. A crash loses at most this much; a stop saves what is left.
pub const MIN_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The file's name in the gateway's state directory.
pub const LOCKOUT_FILE_NAME: &str = "lockouts.json";

/// Reads the budgets kept in `path`; none when there is no file yet. Temporary files a
/// crash left beside it (`.NAME.PID.tmp`, see [`write`]) are removed: the caller holds
/// the home's lock, so no other writer is at work.
pub fn load(path: &Path, now: SystemTime) -> Result<Lockouts, FileError> {
    remove_leftovers(path);
    let file = match open_without_waiting(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lockouts::default()),
        Err(e) => return Err(error(path, e)),
    };
    let meta = file.metadata().map_err(|e| error(path, e))?;
    if !meta.is_file() {
        return Err(error(path, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_LOCKOUT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(path, e))?;
    if bytes.len() as u64 > MAX_LOCKOUT_FILE_BYTES {
        return Err(error(
            path,
            format!(
                "larger than {MAX_LOCKOUT_FILE_BYTES} bytes (lockout_file::MAX_LOCKOUT_FILE_BYTES)"
            ),
        ));
    }
    let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| {
        error(
            path,
            format!("not the gateway's lockout state: {e} (move it away to start with no locks and no trusted addresses)"),
        )
    })?;
    Lockouts::restore(saved, now).map_err(|e| {
        error(
            path,
            format!("not the gateway's lockout state: {e} (move it away to start with no locks and no trusted addresses)"),
        )
    })
}

/// Opens `path` to read without waiting: a FIFO put in a file's place (or a device)
/// would hold the open until a writer came, and with it the gateway's start or reload
/// (review s11-r16); the caller refuses what is not a regular file.
pub fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

fn remove_leftovers(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(&prefix) && file_name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Replaces `path` with `saved`, atomically.
pub fn write(path: &Path, saved: &Saved) -> Result<(), FileError> {
    let bytes = serde_json::to_vec(saved).map_err(|e| error(path, e))?;
    if bytes.len() as u64 > MAX_LOCKOUT_FILE_BYTES {
        return Err(error(
            path,
            format!(
                "the state would take {} bytes, more than {MAX_LOCKOUT_FILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error(path, e));
    }
    Ok(())
}

/// Saves the budgets when they changed: marked by [`Store::changed`], written by
/// [`Store::save`] (the gateway's saver thread, and once more at the stop).
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    dirty: AtomicBool,
    /// One write at a time, so the last snapshot taken is the last one written.
    writing: Mutex<()>,
}

impl Store {
    pub fn new(path: PathBuf) -> Store {
        Store {
            path,
            dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn changed(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }

    /// Writes the budgets if they changed since the last write; a write that fails
    /// leaves them marked changed (the next change or the stop tries again).
    pub fn save(&self, lockouts: &Mutex<Lockouts>) -> Result<(), FileError> {
        let _one = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let saved = lockouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .saved(SystemTime::now());
        write(&self.path, &saved).inspect_err(|_| self.changed())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::IpAddr;

    pub(crate) fn make_fifo(path: &Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {}", path.display());
    }

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pacsguard-lockout-file-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn a_saved_state_is_loaded_back_and_a_missing_file_is_no_state() {
        let d = dir("round");
        let path = d.join(LOCKOUT_FILE_NAME);
        let now = SystemTime::now();
        assert!(
            load(&path, now)
                .expect("none yet")
                .saved(now)
                .usernames
                .is_empty()
        );
        let store = Store::new(path.clone());
        let lockouts = Mutex::new(Lockouts::default());
        let ip = IpAddr::from([10, 0, 0, 1]);
        lockouts
            .lock()
            .expect("lock")
            .admitted("ct", ip, SystemTime::now());
        store
            .save(&lockouts)
            .expect("nothing changed: nothing written");
        assert!(!path.exists());
        store.changed();
        store.save(&lockouts).expect("written");
        let back = load(&path, SystemTime::now()).expect("read");
        assert_eq!(back.saved(now), lockouts.lock().expect("lock").saved(now));
        let names: Vec<String> = std::fs::read_dir(&d)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [LOCKOUT_FILE_NAME], "no temporary file left");
        // A temporary file a crash left is removed by the next load; others stay.
        std::fs::write(d.join(".lockouts.json.4242.tmp"), b"{").expect("write");
        std::fs::write(d.join("other.tmp"), b"x").expect("write");
        load(&path, SystemTime::now()).expect("read");
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [LOCKOUT_FILE_NAME, "other.tmp"]);
        let _ = std::fs::remove_dir_all(d);
    }

    /// Issue 16, session 15: a spray of unknown usernames, each as long as a request may
    /// send (`identity::MAX_USERNAME_BYTES`) and of characters JSON writes in six bytes,
    /// each failing from more IPv6 networks than are kept: the state file stays within
    /// [`MAX_LOCKOUT_FILE_BYTES`] (it is written, and read back at a restart), the stalest
    /// unknown names give way with a warning (none gave way in silence), and the locks
    /// and trust of a route's users survive the spray and the restart.
    #[test]
    fn a_spray_of_unknown_usernames_keeps_the_file_bounded_and_the_real_locks() {
        use crate::lockout::{
            FREE_FAILURES, FULL_WARNING_INTERVAL, Gate, MAX_ADDRESSES_PER_USERNAME,
            MAX_TRACKED_UNKNOWN,
        };
        use std::time::Duration;
        let d = dir("spray");
        let path = d.join(LOCKOUT_FILE_NAME);
        let locked = |g: Gate| matches!(g, Gate::Locked { .. });
        let v6 = |net: u16, host: u16| {
            IpAddr::from([0xfedc, 0xba98, 0x7654, net, 0xffff, 0xffff, 0xffff, host])
        };
        let t0 = SystemTime::now() - Duration::from_secs(300);
        let mut l = Lockouts::default();
        // A route's user locked everywhere (failures from many addresses), trusted where
        // it was admitted; another locked at one address only.
        let trusted = IpAddr::from([10, 0, 0, 1]);
        l.admitted("ct", trusted, t0);
        for i in 0..FREE_FAILURES + 5 {
            l.failed("ct", true, IpAddr::from([10, 1, 0, i as u8]), t0);
        }
        let guesser = IpAddr::from([10, 2, 0, 1]);
        for _ in 0..FREE_FAILURES + 5 {
            l.failed("mr", true, guesser, t0);
        }
        let spray = MAX_TRACKED_UNKNOWN + 10;
        let mut warnings = Vec::new();
        for i in 0..spray {
            let mut name = "\u{1}".repeat(crate::identity::MAX_USERNAME_BYTES - 8);
            name.push_str(&format!("{i:08}"));
            let at = t0 + Duration::from_millis(i as u64);
            for n in 0..=MAX_ADDRESSES_PER_USERNAME {
                l.failed(&name, false, v6(n as u16, i as u16), at);
            }
            warnings.extend(l.full_warning(at));
        }
        let end = t0 + Duration::from_millis(spray as u64);
        assert_eq!(warnings, [1], "warned at the first that gave way, once");
        assert_eq!(
            l.full_warning(end + FULL_WARNING_INTERVAL),
            Some(9),
            "the rest counted for the next warning"
        );
        let store = Store::new(path.clone());
        let lockouts = Mutex::new(l);
        store.changed();
        store.save(&lockouts).expect("within the limit: written");
        let size = std::fs::metadata(&path).expect("written").len();
        assert!(size <= MAX_LOCKOUT_FILE_BYTES, "{size}");
        let back = load(&path, SystemTime::now()).expect("read back at a restart");
        assert_eq!(
            back.saved(end)
                .usernames
                .iter()
                .filter(|e| !e.known)
                .count(),
            MAX_TRACKED_UNKNOWN
        );
        for l in [&*lockouts.lock().expect("lock"), &back] {
            assert!(locked(l.gate("ct", IpAddr::from([10, 3, 0, 1]), end)));
            assert_eq!(l.gate("ct", trusted, end), Gate::Open, "trust kept");
            assert!(locked(l.gate("mr", guesser, end)));
            assert_eq!(l.gate("mr", IpAddr::from([10, 3, 0, 1]), end), Gate::Open);
        }
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_file_not_written_by_the_gateway_is_an_error_naming_it() {
        let d = dir("bad");
        let path = d.join(LOCKOUT_FILE_NAME);
        let now = SystemTime::now();
        for (bytes, why) in [
            (
                &b"{\"version\":1,\"usernames\":["[..],
                "not the gateway's lockout state",
            ),
            (b"garbage", "not the gateway's lockout state"),
            (b"{\"version\":7,\"usernames\":[]}", "version 7"),
        ] {
            std::fs::write(&path, bytes).expect("write");
            let e = load(&path, now).expect_err(why);
            assert_eq!(e.path, path);
            assert!(e.reason.contains(why), "{why}: {e}");
        }
        // At the size limit it is read (and refused for what it holds); one byte more is
        // refused for its size.
        let mut big = b"{\"version\":1,\"usernames\":[]}".to_vec();
        big.resize(MAX_LOCKOUT_FILE_BYTES as usize, b' ');
        std::fs::write(&path, &big).expect("write");
        assert!(load(&path, now).is_ok(), "whitespace to the limit");
        big.push(b' ');
        std::fs::write(&path, &big).expect("write");
        assert!(
            load(&path, now)
                .expect_err("too big")
                .reason
                .contains("larger than")
        );
        let e = load(&d, now).expect_err("a directory");
        assert!(e.reason.contains("not a regular file"), "{e}");
        // A FIFO in the file's place is refused at once (opening it waited for a
        // writer: the start hung).
        std::fs::remove_file(&path).expect("rm");
        make_fifo(&path);
        let (tx, rx) = std::sync::mpsc::channel();
        let fifo = path.clone();
        std::thread::spawn(move || tx.send(load(&fifo, now).map(|_| ())));
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("answered, not waiting for a writer")
            .expect_err("a FIFO");
        assert!(e.reason.contains("not a regular file"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }
}
