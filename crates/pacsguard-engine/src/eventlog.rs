//! The home's event log: one JSON object per line, appended and synced.
//!
//! This is the interim record of every action and finding until the tamper-evident audit
//! trail replaces it as the sink behind the same [`EventSink`] interface.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Event, EventSink, SinkError};

#[derive(Debug)]
pub struct JsonlSink {
    file: File,
    path: PathBuf,
}

impl JsonlSink {
    pub fn open(path: &Path) -> Result<JsonlSink, SinkError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| SinkError {
                sink: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(JsonlSink {
            file,
            path: path.to_path_buf(),
        })
    }

    fn error(&self, reason: impl std::fmt::Display) -> SinkError {
        SinkError {
            sink: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

impl EventSink for JsonlSink {
    fn record(&mut self, event: &Event) -> Result<(), SinkError> {
        let mut line = serde_json::to_vec(event).map_err(|e| self.error(e))?;
        line.push(b'\n');
        // One write of the whole line in O_APPEND mode: lines of concurrent writers never
        // interleave.
        self.file.write_all(&line).map_err(|e| self.error(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.file.sync_data().map_err(|e| self.error(e))
    }
}
