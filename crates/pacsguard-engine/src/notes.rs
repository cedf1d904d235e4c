//! Notes for a later trail: what a guard's stop or a delivery run could not put on the
//! trail itself (its last records undelivered, the names of records that went as
//! stand-ins), kept in a small file of the home until a later command records it and
//! removes the file.
//!
//! A note is written whole (a new file renamed over the name) and never through a link;
//! a note no command has recorded yet is kept after a new one, not replaced, so two
//! stops in a row lose neither. The reader takes at most [`MAX_STOP_NOTE_BYTES`] (more is
//! cut, and the record says so).

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

/// Where the home's delivery note is.
pub fn delivery_note_path(home: &Home) -> PathBuf {
    home.dir.join(DELIVERY_NOTE)
}

/// Leaves `text` at `path` for a later trail as "`by` at TIME: text", written whole,
/// earlier notes kept after it.
pub fn leave(path: &Path, by: &str, text: &str) -> std::io::Result<()> {
    let earlier = read(path)?;
    write(path, by, text, earlier.as_deref()).map(drop)
}

/// Writes the note at `path` whole as "`by` at TIME: text", `earlier` (what the note
/// held before, read with [`read`]) after it; returns the bytes written.
pub fn write(
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
        note.extend_from_slice(b"; before it, ");
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
