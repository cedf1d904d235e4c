//! The audit trail as a sink of the event bus.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Event, EventSink, SinkError};
use pacsguard_trail::note::Signer;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::log::{AuditLog, LogError, Opened};
use crate::verify::witness_file_name;

/// Where a trail lives.
#[derive(Clone, Debug)]
pub struct TrailFiles {
    pub log: PathBuf,
    pub checkpoints: PathBuf,
    /// A directory on another disk or share that keeps the newest checkpoint, so a log
    /// rolled back on this disk is caught against it.
    pub witness: Option<PathBuf>,
}

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync once per command, before its checkpoint is signed (group commit). A crash
    /// loses at most the records of the command that was running; earlier ones are safe.
    #[default]
    Batch,
    /// fsync after every record.
    EveryRecord,
}

/// One line of `audit.log`.
#[derive(Serialize)]
struct Record<'a> {
    seq: u64,
    host: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Debug)]
pub struct AuditSink {
    log: AuditLog,
    files: TrailFiles,
    host: String,
    origin: String,
    signer: Signer,
    durability: Durability,
    signed_size: u64,
}

fn damaged(path: &Path, problem: String) -> LogError {
    LogError::Damaged {
        path: path.to_path_buf(),
        problem,
    }
}

impl AuditSink {
    /// Opens the trail and proves it reproduces its last signed checkpoint (and the
    /// witness's) before anything is appended. Returns the torn tail it cut off, if any,
    /// for the caller to record.
    pub fn open(
        files: TrailFiles,
        host: String,
        origin: String,
        signer: Signer,
        durability: Durability,
    ) -> Result<(AuditSink, Option<(u64, u64)>), LogError> {
        let last = last_checkpoint(&files.checkpoints, &signer)?;
        let witness = match &files.witness {
            Some(dir) => read_witness(&dir.join(witness_file_name(&origin)), &signer)?,
            None => None,
        };
        // A witness ahead of our own last checkpoint means this trail was rolled back.
        if let Some(witness) = &witness
            && witness.size > last.as_ref().map_or(0, |c| c.size)
        {
            return Err(damaged(
                &files.log,
                format!(
                    "the witness holds a checkpoint of {} records, newer than this trail's last ({}): rolled back",
                    witness.size,
                    last.as_ref().map_or(0, |c| c.size)
                ),
            ));
        }
        // Continue from the last checkpoint's signed frontier: only records written since
        // are read. Without one (a new trail), the whole log is read.
        let resume = last.as_ref().and_then(Checkpoint::frontier);
        let mut sizes: BTreeSet<u64> = last.iter().map(|c| c.size).collect();
        if let Some(witness) = &witness
            && resume.is_none()
        {
            sizes.insert(witness.size);
        }
        let Opened {
            log,
            roots,
            torn_tail: torn,
        } = AuditLog::open(&files.log, &sizes, resume)?;
        let mut expected = vec![("last checkpoint", last.as_ref())];
        if sizes.len() > 1 || last.is_none() {
            expected.push(("witness checkpoint", witness.as_ref()));
        }
        for (what, checkpoint) in expected {
            if let Some(checkpoint) = checkpoint
                && roots.get(&checkpoint.size) != Some(&checkpoint.root)
            {
                return Err(damaged(
                    &files.log,
                    format!(
                        "it does not reproduce the {what} ({} records; the log holds {}): truncated, rolled back or edited",
                        checkpoint.size,
                        log.size()
                    ),
                ));
            }
        }
        // `init` signs a checkpoint for its first record, so records without any checkpoint
        // mean checkpoints.jsonl was deleted or emptied: refuse rather than sign them anew.
        if last.is_none() && log.size() > 0 {
            return Err(damaged(
                &files.checkpoints,
                format!(
                    "the log holds {} records but there is no checkpoint: the checkpoints were deleted",
                    log.size()
                ),
            ));
        }
        // The witness and the trail must agree where they cover the same records.
        if let (Some(last), Some(witness)) = (&last, &witness)
            && witness.size == last.size
            && witness.root != last.root
        {
            return Err(damaged(
                &files.log,
                "the witness holds a different tree of the same size: the trail was forked".into(),
            ));
        }
        let signed_size = last.map_or(0, |c| c.size);
        Ok((
            AuditSink {
                log,
                files,
                host,
                origin,
                signer,
                durability,
                signed_size,
            },
            torn,
        ))
    }

    pub fn size(&self) -> u64 {
        self.log.size()
    }

    fn error(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError {
            sink: format!("audit trail {}", self.files.log.display()),
            reason: e.to_string(),
        }
    }

    /// Signs a checkpoint for everything appended, keeps it, and hands it to the witness.
    fn checkpoint(&mut self) -> Result<(), SinkError> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: self.log.size(),
            root: self.log.root(),
            resume: Some((self.log.bytes(), self.log.peaks())),
        };
        let note = checkpoint.sign(&self.signer).map_err(|e| self.error(e))?;
        let mut line =
            serde_json::to_vec(&serde_json::json!({ "note": note })).map_err(|e| self.error(e))?;
        line.push(b'\n');
        let path = &self.files.checkpoints;
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(&line).and_then(|()| f.sync_data()))
            .map_err(|e| self.error(format!("{}: {e}", path.display())))?;
        if let Some(dir) = &self.files.witness {
            let target = dir.join(witness_file_name(&self.origin));
            write_atomically(&target, note.as_bytes())
                .map_err(|e| self.error(format!("witness {}: {e}", target.display())))?;
        }
        self.signed_size = checkpoint.size;
        Ok(())
    }
}

impl EventSink for AuditSink {
    fn record(&mut self, event: &Event) -> Result<(), SinkError> {
        let record = Record {
            seq: self.log.size(),
            host: &self.host,
            event,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| self.error(e))?;
        self.log.append(&bytes).map_err(|e| self.error(e))?;
        if self.durability == Durability::EveryRecord {
            self.log.sync().map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.log.is_poisoned() {
            return Err(self.error("an earlier write failed; no checkpoint is signed in this run"));
        }
        self.log.sync().map_err(|e| self.error(e))?;
        if self.log.size() > self.signed_size {
            self.checkpoint()?;
        }
        Ok(())
    }
}

/// How far from the end of `checkpoints.jsonl` the newest checkpoint is looked for: a
/// checkpoint line is a few hundred bytes to a few KiB (its resume line holds at most 64
/// hashes), so this always holds the last one without reading the whole file.
const CHECKPOINT_TAIL: u64 = 64 << 10;

/// The newest checkpoint of the trail, verified; `None` for a new trail.
///
/// A last line without its newline is refused, not repaired: cutting it off would let the
/// next command resume from the checkpoint before it and sign whatever records follow,
/// including records edited since. (A single `write` of a checkpoint line is not torn by
/// a killed process; only a full disk or a power loss can do that, and then a person
/// should look.)
fn last_checkpoint(path: &Path, signer: &Signer) -> Result<Option<Checkpoint>, LogError> {
    let io_err = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let len = file.metadata().map_err(io_err)?.len();
    let start = len.saturating_sub(CHECKPOINT_TAIL);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(io_err)?;
    if tail.last().is_some_and(|&b| b != b'\n') {
        return Err(damaged(
            path,
            "its last line is incomplete (a write cut short, or an edit)".into(),
        ));
    }
    let Some(line) = tail.split(|&b| b == b'\n').rfind(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let note = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("note").and_then(|n| n.as_str()).map(String::from))
        .ok_or_else(|| damaged(path, "its last line is not a checkpoint".into()))?;
    Checkpoint::open(&note, signer.verifier())
        .map(Some)
        .map_err(|e| damaged(path, format!("its last checkpoint does not verify: {e}")))
}

fn read_witness(path: &Path, signer: &Signer) -> Result<Option<Checkpoint>, LogError> {
    match fs::read_to_string(path) {
        Ok(note) => Checkpoint::open(&note, signer.verifier())
            .map(Some)
            .map_err(|e| damaged(path, format!("the witness checkpoint does not verify: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // The witness directory may be a share others can write to: never follow or reuse a
    // file found there; create a fresh one and rename it over the old checkpoint.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
