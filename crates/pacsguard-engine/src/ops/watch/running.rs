//! `HOME/watch-running.json`: present while a watcher runs, removed by its clean stop.
//! A start that finds it knows the previous watcher ended without one (`kill -9`, a
//! crash, power lost) and says so on the trail, as an `unclean-stop` warning: the time
//! nothing watched is evidence too.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::durable::write_atomically;
use crate::error::EngineError;

/// The marker's name in the home.
pub const MARKER_FILE: &str = "watch-running.json";

/// Bytes of the marker read at start: the watcher writes a few dozen; a larger file is
/// not its own, and only its first bytes are quoted.
pub const MAX_MARKER_BYTES: u64 = 4096;

pub fn marker_path(home: &Path) -> PathBuf {
    home.join(MARKER_FILE)
}

/// What the marker of a watcher that did not stop cleanly says (its pid and start), if
/// there is one.
pub fn previous_unclean(home: &Path) -> Option<String> {
    // Regular file only, no link followed, bounded: a FIFO planted here must not hang
    // the start. A marker that is there but cannot be read still means an unclean stop.
    let text = match crate::files::read_bounded(&marker_path(home), MAX_MARKER_BYTES) {
        Ok(Some(text)) => text,
        Ok(None) => return None,
        Err(e) => return Some(format!("its marker could not be read: {e}")),
    };
    let value: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
    let pid = value.get("pid").and_then(serde_json::Value::as_u64);
    let started = value.get("started").and_then(serde_json::Value::as_str);
    Some(match (pid, started) {
        (Some(pid), Some(started)) => format!("pid {pid}, started {started}"),
        _ => "its marker could not be read".to_string(),
    })
}

/// The pid of the watcher that runs on this home, if one does: its marker names a
/// process that is alive (a marker a `kill -9` left names one that is not, or one that
/// reuses its pid: then the acknowledgement it never writes is waited for in vain, and
/// said so, see [`crate::maintenance::wait_for_ack`]).
pub(crate) fn watcher_pid(home: &Path) -> Option<u32> {
    let text = crate::files::read_bounded(&marker_path(home), MAX_MARKER_BYTES)
        .ok()
        .flatten()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let pid = u32::try_from(value.get("pid")?.as_u64()?).ok()?;
    Path::new("/proc")
        .join(pid.to_string())
        .exists()
        .then_some(pid)
}

/// Says a watcher runs from now on.
pub fn mark_running(home: &Path) -> Result<(), EngineError> {
    let text = serde_json::json!({
        "pid": std::process::id(),
        "started": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    })
    .to_string();
    write_atomically(&marker_path(home), text.as_bytes(), 0o600)
}

/// The clean stop: the marker goes.
pub fn mark_stopped(home: &Path) -> Result<(), EngineError> {
    match std::fs::remove_file(marker_path(home)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(marker_path(home), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_left_behind_is_found_and_a_clean_stop_leaves_none() {
        let home = tempfile::tempdir().expect("test fixture");
        assert_eq!(previous_unclean(home.path()), None);
        mark_running(home.path()).expect("marker written");
        let found = previous_unclean(home.path()).expect("left behind");
        assert!(
            found.starts_with(&format!("pid {}", std::process::id())),
            "{found}"
        );
        mark_stopped(home.path()).expect("marker removed");
        assert_eq!(previous_unclean(home.path()), None);
        // Not our format, or larger than the limit: still an unclean stop, quoted safely.
        std::fs::write(
            marker_path(home.path()),
            vec![b'x'; MAX_MARKER_BYTES as usize * 2],
        )
        .expect("test fixture");
        let unreadable = previous_unclean(home.path()).expect("still an unclean stop");
        assert!(
            unreadable.starts_with("its marker could not be read") && unreadable.contains("limit"),
            "{unreadable}"
        );
    }
}
