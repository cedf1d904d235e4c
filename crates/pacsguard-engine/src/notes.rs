//! Notes for a later trail: what a guard's stop or a delivery run could not put on the
//! trail itself (its last records undelivered, the names of records that went as
//! stand-ins), kept in a small file of the home until a later command records it and
//! removes the file.
//!
//! A note is written whole (a new file renamed over the name) and never through a link;
//! a note no command has recorded yet is kept after a new one, not replaced, so two
//! stops in a row lose neither. The reader takes at most [`MAX_STOP_NOTE_BYTES`] (more is
//! cut, and the record says so). Every writer, and a reader that records a note and
//! removes it, holds the note's lock ([`lock`]) throughout: two writers at one stop (a
//! guard's stop and an `audit forward` run) each read the note and renamed their own
//! over it, and the first's words were lost (review rv38-console).

use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::Home;

/// The most of a note a later command reads (a stop writes far less; more is cut, and
/// said). Named after the stop's note, the first of them. Room for a few killed `audit
/// forward` runs' names one after the other (each at most `MAX_STAND_INS_LISTED` of
/// them, under a kilobyte), review rv38-lead: at 4,096 bytes the fourth cut the first.
pub const MAX_STOP_NOTE_BYTES: u64 = 16 * 1024;

/// The note of delivery records a guard's stop or an `audit forward` run could not put
/// on the trail, in the home (a collector's records are delivered without an enrolment,
/// so not in `fleet/`).
pub const DELIVERY_NOTE: &str = "delivery-unrecorded.txt";

/// How long a note's writer or recorder waits for another to let its lock go; then it
/// fails, naming the lock, and its caller says what it could not note.
pub const NOTE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A note's lock, held while it is read and written over, or recorded and removed
/// (released when dropped). Proof for [`write`] that its caller holds it.
#[derive(Debug)]
pub struct NoteLock {
    _file: std::fs::File,
}

/// Takes the lock of the note at `path` (a `.lock` file beside it, never through a
/// link), waiting at most [`NOTE_LOCK_WAIT`].
pub fn lock(path: &Path) -> std::io::Result<NoteLock> {
    let at = path.with_extension("lock");
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", at.display()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&at)
        .map_err(named)?;
    if !file.metadata().map_err(named)?.is_file() {
        return Err(named(std::io::Error::other("not a regular file")));
    }
    let began = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(NoteLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if began.elapsed() < NOTE_LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(named(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "held by another process for longer than {} s (NOTE_LOCK_WAIT)",
                        NOTE_LOCK_WAIT.as_secs()
                    ),
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(named(e)),
        }
    }
}

/// Where the home's delivery note is.
pub fn delivery_note_path(home: &Home) -> PathBuf {
    home.dir.join(DELIVERY_NOTE)
}

/// Leaves `text` at `path` for a later trail as "`by` at TIME: text", written whole,
/// earlier notes kept after it.
pub fn leave(path: &Path, by: &str, text: &str) -> std::io::Result<()> {
    let held = lock(path)?;
    let earlier = read(path)?;
    write(&held, path, by, text, earlier.as_deref()).map(drop)
}

/// Writes the note at `path` whole as "`by` at TIME: text", `earlier` (what the note
/// held before, read with [`read`] under the same lock) after it; returns the bytes
/// written.
pub fn write(
    _held: &NoteLock,
    path: &Path,
    by: &str,
    text: &str,
    earlier: Option<&[u8]>,
) -> std::io::Result<Vec<u8>> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut note = format!("{by} at {at}: {text}").into_bytes();
    if let Some(earlier) = earlier {
        note.extend_from_slice(BEFORE_IT);
        note.extend_from_slice(earlier);
    }
    // Each failure names the file it concerns (a directory planted at the `.tmp` was
    // said as the note's, review rv38-lead).
    let named = |at: &Path| {
        let at = at.display().to_string();
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{at}: {e}"))
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(named(&tmp))?;
    file.write_all(&note).map_err(named(&tmp))?;
    file.sync_all().map_err(named(&tmp))?;
    std::fs::rename(&tmp, path).map_err(named(path))?;
    // The rename itself made durable: a power cut must not keep a cursor moved after
    // this note and lose the note (review rv38-lead).
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(named(dir))?;
    }
    Ok(note)
}

/// The bytes of the note at `path`, at most one past [`MAX_STOP_NOTE_BYTES`] (so a
/// reader can tell it was longer), never through a link nor blocking on a FIFO; `None`
/// when there is none.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    read_at_least(path, 0)
}

/// The bytes of the note at `path`, as [`read`] but at least `at_least` of them (what a
/// writer knows it wrote, to tell its own words apart).
pub fn read_at_least(path: &Path, at_least: usize) -> std::io::Result<Option<Vec<u8>>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let most = (MAX_STOP_NOTE_BYTES + 1).max(at_least as u64 + 1);
    let mut text = Vec::new();
    file.take(most).read_to_end(&mut text)?;
    Ok(Some(text))
}

/// The note at `path`, recorded on the trail by `push` (a `delivery` record by `actor`,
/// `prefix` before it) and then removed; cut at [`MAX_STOP_NOTE_BYTES`], said so.
/// Returns the record's words (`None`: no note), or why the note could not be read,
/// recorded (it is kept for the next command) or removed once recorded.
pub fn record<E: std::fmt::Display>(
    path: &Path,
    prefix: &str,
    (outcome, actor): (pacsguard_events::Outcome, &pacsguard_events::Actor),
    push: impl FnOnce(pacsguard_events::Event) -> Result<(), E>,
) -> Result<Option<String>, String> {
    // No note, no lock (nor a lock file made where none is needed: `fleet/` of a home
    // never enrolled does not exist); one left after this look waits for the next start.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    // Held to the removal: a note left meanwhile would go unrecorded with it.
    let _held = lock(path).map_err(|e| format!("{e}; the note is kept for the next start"))?;
    let text = match read(path) {
        Ok(Some(text)) if !text.trim_ascii().is_empty() => text,
        // An empty note says nothing: removed, no empty record (review rv38-lead).
        Ok(Some(_)) => {
            std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(None);
        }
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = words(prefix, text, path);
    let event = pacsguard_events::Event::new(
        actor.clone(),
        pacsguard_events::Action::Delivery,
        outcome,
        text.clone(),
    );
    push(event).map_err(|e| {
        format!(
            "{}: not recorded on the trail ({e}); kept for the next start",
            path.display()
        )
    })?;
    std::fs::remove_file(path)
        .map_err(|e| format!("{text}; {}: recorded, not removed: {e}", path.display()))?;
    Ok(Some(text))
}

/// What a writer that last wrote `written` over `earlier` keeps after its next words,
/// the note now holding `current` (read under the lock): `earlier` when the note is as
/// it left it; when another writer put its words before it since, theirs, then
/// `earlier` (its own old words are replaced); nothing when a start recorded and removed
/// the note meanwhile; anything else whole (a name may then be said twice, none lost).
/// A writer that has not written yet keeps what the note holds now.
pub fn kept_after(
    current: Option<Vec<u8>>,
    written: Option<&[u8]>,
    earlier: Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let (Some(now), Some(written)) = (current.as_deref(), written) else {
        return current;
    };
    if now == written {
        return earlier;
    }
    let own = [BEFORE_IT, written].concat();
    match now.strip_suffix(own.as_slice()) {
        Some(theirs) => Some(match earlier {
            Some(earlier) => [theirs, BEFORE_IT, &earlier].concat(),
            None => theirs.to_vec(),
        }),
        None => current,
    }
}

/// What joins a note's new words to what it held before.
const BEFORE_IT: &[u8] = b"; before it, ";

/// A note's bytes as a record's words: `prefix`, the note cut at
/// [`MAX_STOP_NOTE_BYTES`] (said so), and where it was noted.
pub fn words(prefix: &str, mut text: Vec<u8>, path: &Path) -> String {
    let cut = text.len() as u64 > MAX_STOP_NOTE_BYTES;
    text.truncate(usize::try_from(MAX_STOP_NOTE_BYTES).unwrap_or(usize::MAX));
    format!(
        "{prefix}{}{} (noted in {})",
        String::from_utf8_lossy(&text).trim(),
        if cut {
            format!(" [cut at {MAX_STOP_NOTE_BYTES} bytes, MAX_STOP_NOTE_BYTES]")
        } else {
            String::new()
        },
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review rv38-console: two writers at one stop each read the note and renamed
    /// their own over it, and one's words were lost. A writer waits for the lock of
    /// the one before it and keeps what it wrote.
    #[test]
    fn writers_at_one_stop_lose_none_of_each_others_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let note = dir.path().join(DELIVERY_NOTE);
        let first = lock(&note).expect("the first writer's lock");
        std::thread::scope(|scope| {
            let (began, begun) = std::sync::mpsc::channel();
            let note = &note;
            let second = scope.spawn(move || {
                began.send(()).expect("sent");
                leave(note, "the stop", "<second>")
            });
            begun.recv().expect("the second began");
            std::thread::sleep(std::time::Duration::from_millis(500));
            assert!(read(note).expect("read").is_none(), "the second waits");
            write(&first, note, "audit forward", "<first>", None).expect("written");
            drop(first);
            second.join().expect("joined").expect("left");
        });
        let all = String::from_utf8(read(&note).expect("read").expect("a note")).expect("utf8");
        assert!(
            all.starts_with("the stop at ")
                && all.contains("<second>; before it, audit forward at "),
            "{all}"
        );
        assert!(all.ends_with("<first>"), "{all}");
        // Many at once: none lost.
        std::thread::scope(|scope| {
            for writer in ["a", "b", "c"] {
                let note = &note;
                scope.spawn(move || {
                    for i in 0..25 {
                        leave(note, writer, &format!("<{writer}{i}>")).expect("left");
                    }
                });
            }
        });
        let all = String::from_utf8(read(&note).expect("read").expect("a note")).expect("utf8");
        for writer in ["a", "b", "c"] {
            for i in 0..25 {
                assert!(
                    all.contains(&format!("<{writer}{i}>")),
                    "{writer}{i} lost: {all}"
                );
            }
        }
    }

    /// No note, nothing made: a home never enrolled has no `fleet/` to hold a lock.
    #[test]
    fn recording_where_no_note_is_makes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let note = dir.path().join("fleet").join("stop-undelivered.txt");
        let actor = pacsguard_events::Actor {
            user: "root".into(),
            uid: 0,
            sudo_user: None,
        };
        let recorded = record(
            &note,
            "",
            (pacsguard_events::Outcome::Failure, &actor),
            |_| Ok::<(), String>(()),
        );
        assert_eq!(recorded, Ok(None));
        assert!(!dir.path().join("fleet").exists());
    }

    /// A lock another process holds makes a writer fail after NOTE_LOCK_WAIT, naming
    /// the lock, never write unlocked; a directory planted at the lock is refused.
    #[test]
    fn a_lock_held_elsewhere_or_planted_is_said_never_written_past() {
        let dir = tempfile::tempdir().expect("tempdir");
        let note = dir.path().join(DELIVERY_NOTE);
        let holder = std::fs::File::create(note.with_extension("lock")).expect("lock file");
        holder.lock().expect("held");
        let began = std::time::Instant::now();
        let e = leave(&note, "the stop", "x").expect_err("waits, then fails");
        assert!(began.elapsed() >= NOTE_LOCK_WAIT);
        assert!(
            e.to_string().contains("NOTE_LOCK_WAIT") && e.to_string().contains(".lock"),
            "{e}"
        );
        assert!(
            read(&note).expect("read").is_none(),
            "nothing written unlocked"
        );
        drop(holder);
        leave(&note, "the stop", "x").expect("free again");
        let other = dir.path().join("other.txt");
        std::fs::create_dir(other.with_extension("lock")).expect("planted");
        let e = leave(&other, "the stop", "y").expect_err("refused");
        assert!(e.to_string().contains("other.lock"), "{e}");
    }

    #[test]
    fn a_writer_keeps_what_others_put_before_its_words_and_drops_its_own_old_ones() {
        let earlier = Some(b"E".to_vec());
        let mine: &[u8] = b"mine";
        // Not written yet: what the note holds now.
        assert_eq!(
            kept_after(Some(b"N".to_vec()), None, earlier.clone()),
            Some(b"N".to_vec())
        );
        // As it left it: its earlier.
        assert_eq!(
            kept_after(Some(mine.to_vec()), Some(mine), earlier.clone()),
            earlier
        );
        // Another's words before its own: theirs, then its earlier.
        let theirs = [&b"the stop at T: X"[..], BEFORE_IT, mine].concat();
        assert_eq!(
            kept_after(Some(theirs), Some(mine), earlier.clone()),
            Some([&b"the stop at T: X"[..], BEFORE_IT, b"E"].concat())
        );
        // Recorded and removed meanwhile: nothing.
        assert_eq!(kept_after(None, Some(mine), earlier.clone()), None);
        // Anything else: whole.
        assert_eq!(
            kept_after(Some(b"other".to_vec()), Some(mine), earlier),
            Some(b"other".to_vec())
        );
    }
}
