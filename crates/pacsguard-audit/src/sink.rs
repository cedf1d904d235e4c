//! The audit trail as a sink of the event bus.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Action, Event, EventSink, Outcome, SinkError};
use pacsguard_trail::note::Signer;
use serde::Serialize;

use crate::checkpoint::{Checkpoint, TrailState};
use crate::log::{AuditLog, LogError, Opened};
use crate::mac::RecordKey;
use crate::verify::{witness_file, witness_path};
use pacsguard_trail::merkle::Hash;
use pacsguard_trail::merkle::{consistency_proof, verify_consistency};

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

/// What a configured witness must hold when the trail is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WitnessMode {
    /// This trail's last checkpoint. A missing witness file or one behind the trail is
    /// refused: deleting the witness must not switch it off, and a rolled-back trail must
    /// never be signed over it.
    #[default]
    Required,
    /// A person re-initialises a missing or behind witness (`audit witness init`): a
    /// witness that is behind must still be proven consistent with the trail (an RFC 6962
    /// consistency proof); one ahead of it or forked from it is refused as always.
    Reinitialise,
}

/// How a trail is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrailOptions {
    pub durability: Durability,
    pub witness: WitnessMode,
    /// SHA-256 of the settings in force (`[audit]`, `[watch]`), signed into every
    /// checkpoint.
    pub settings: Hash,
    /// The baseline generation to start from when the last checkpoint states none (one
    /// written before checkpoints carried the state): the store's, on the record.
    pub baseline_if_unknown: u64,
}

/// What opening a trail found, for the caller to put on the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opening {
    /// A record cut short by a crash, discarded: (offset, length).
    pub torn_tail: Option<(u64, u64)>,
    /// Complete records after the last checkpoint, each with a valid MAC: written by a
    /// PacsGuard command that was killed before it signed them. The next checkpoint signs
    /// them; the caller records that it did.
    pub adopted: u64,
    /// The size of the witness's checkpoint before it is re-initialised (`None` when
    /// there was none); only in [`WitnessMode::Reinitialise`].
    pub witness_was: Option<u64>,
    /// Records covered by the last checkpoint (0: a new trail, or one whose checkpoints
    /// and records were all deleted).
    pub signed_size: u64,
    /// The state signed into the last checkpoint (`None`: none yet, or a checkpoint
    /// written before checkpoints carried it).
    pub state: Option<TrailState>,
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
    record_key: RecordKey,
    durability: Durability,
    signed_size: u64,
    /// The state the next checkpoint signs: from the last one, updated by events.
    state: TrailState,
    /// Where the witness file is read, what it held when the trail was opened (it is
    /// written over only while it still holds exactly that), and where it is written.
    witness: Option<WitnessCopy>,
}

#[derive(Debug)]
struct WitnessCopy {
    read_from: PathBuf,
    seen: Option<Checkpoint>,
    write_to: PathBuf,
}

fn damaged(path: &Path, problem: String) -> LogError {
    LogError::Damaged {
        path: path.to_path_buf(),
        problem,
    }
}

impl AuditSink {
    /// Opens the trail and proves it reproduces its last signed checkpoint (and the
    /// witness's) before anything is appended. Returns what the caller must record: the
    /// torn tail it cut off and the unsigned records it adopted.
    pub fn open(
        files: TrailFiles,
        host: String,
        origin: String,
        signer: Signer,
        options: TrailOptions,
    ) -> Result<(AuditSink, Opening), LogError> {
        let TrailOptions {
            durability,
            witness: witness_mode,
            settings,
            baseline_if_unknown,
        } = options;
        let last = last_checkpoint(&files.checkpoints, &signer)?;
        let key_id = signer.verifier().key_id();
        let (witness_path, witness) = match &files.witness {
            Some(dir) => {
                let path = witness_path(dir, &origin, key_id);
                let witness = read_witness(&path, &signer)?;
                (Some(path), witness)
            }
            None => (None, None),
        };
        let last_size = last.as_ref().map_or(0, |c| c.size);
        // A witness ahead of our own last checkpoint means this trail was rolled back.
        if let Some(witness) = &witness
            && witness.size > last_size
        {
            return Err(damaged(
                &files.log,
                format!(
                    "the witness holds a checkpoint of {} records, newer than this trail's last ({last_size}): rolled back",
                    witness.size,
                ),
            ));
        }
        if let (Some(path), Some(last)) = (&witness_path, &last)
            && witness_mode == WitnessMode::Required
        {
            let behind = match &witness {
                None => Some("holds no checkpoint of this trail (deleted, or configured after the trail began)".to_string()),
                Some(w) if w.size < last.size => Some(format!(
                    "holds a checkpoint of {} records, behind this trail's last ({}): a witness write was lost, or the trail was rolled forward elsewhere",
                    w.size, last.size
                )),
                Some(_) => None,
            };
            if let Some(behind) = behind {
                return Err(damaged(
                    &files.log,
                    format!(
                        "the witness {} {behind}; nothing is signed over it until a person has checked why and runs `pacsguard audit witness init --reason TEXT`",
                        path.display()
                    ),
                ));
            }
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
        let record_key = RecordKey::of(&signer);
        let Opened {
            log,
            roots,
            torn_tail: torn,
        } = AuditLog::open(&files.log, &sizes, resume, Some((&record_key, last_size)))?;
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
        // A person re-initialises a witness that is behind: it must still be a prefix of
        // this trail, proven with an RFC 6962 consistency proof over the whole log.
        if let (WitnessMode::Reinitialise, Some(last), Some(witness)) =
            (witness_mode, &last, &witness)
            && witness.size < last.size
        {
            prove_consistent(&files.log, witness, last)?;
        }
        let signed_size = last.as_ref().map_or(0, |c| c.size);
        let signed_state = last.as_ref().and_then(|c| c.state);
        let state = TrailState {
            settings,
            ..signed_state.unwrap_or(TrailState {
                baseline: baseline_if_unknown,
                announced: baseline_if_unknown,
                settings,
            })
        };
        let opening = Opening {
            signed_size,
            state: signed_state,
            torn_tail: torn,
            adopted: log.size() - signed_size.min(log.size()),
            witness_was: match witness_mode {
                WitnessMode::Reinitialise => witness.as_ref().map(|w| w.size),
                WitnessMode::Required => None,
            },
        };
        // Read where it is (a witness named the old way, too); written under the new name.
        let witness = match (witness_path, &files.witness) {
            (Some(read_from), Some(dir)) => Some(WitnessCopy {
                read_from,
                seen: witness,
                write_to: witness_file(dir, &origin, key_id),
            }),
            _ => None,
        };
        Ok((
            AuditSink {
                log,
                files,
                host,
                origin,
                signer,
                record_key,
                durability,
                signed_size,
                state,
                witness,
            },
            opening,
        ))
    }

    pub fn size(&self) -> u64 {
        self.log.size()
    }

    /// Follows the baseline generations that `profile` and `accept` announce and sign.
    fn observe(&mut self, event: &Event) {
        let (Some(generation), Action::Profile | Action::Accept) = (event.generation, event.action)
        else {
            return;
        };
        match event.outcome {
            Outcome::Started => {
                self.state.announced = self.state.announced.max(generation);
            }
            Outcome::Success | Outcome::Findings => {
                self.state.baseline = self.state.baseline.max(generation);
                self.state.announced = self.state.announced.max(generation);
            }
            Outcome::Failure => {}
        }
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
            state: Some(self.state),
        };
        let note = checkpoint.sign(&self.signer).map_err(|e| self.error(e))?;
        let mut line =
            serde_json::to_vec(&serde_json::json!({ "note": note })).map_err(|e| self.error(e))?;
        line.push(b'\n');
        let path = &self.files.checkpoints;
        // Opened again for every checkpoint: never through a link swapped in meanwhile
        // (root would append to whatever it names), and never to a FIFO or device.
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .and_then(|mut f| {
                if !f.metadata()?.is_file() {
                    return Err(std::io::Error::other(
                        "not a regular file (a FIFO, socket or device stands there); refused",
                    ));
                }
                f.write_all(&line).and_then(|()| f.sync_data())
            })
            .map_err(|e| self.error(format!("{}: {e}", path.display())))?;
        if let Some(WitnessCopy {
            read_from,
            seen,
            write_to,
        }) = &self.witness
        {
            // The new tree extends the one the witness held when the trail was opened
            // (it continues from that checkpoint's signed frontier, or was proven to
            // extend it): write over the witness only if it still holds exactly that, so
            // one key never signs two inconsistent trees into it.
            let now = read_witness(read_from, &self.signer).map_err(|e| self.error(e))?;
            if now != *seen {
                return Err(self.error(format!(
                    "witness {}: it changed while this command ran (another writer?); it was not overwritten",
                    read_from.display()
                )));
            }
            write_atomically(write_to, note.as_bytes())
                .map_err(|e| self.error(format!("witness {}: {e}", write_to.display())))?;
            self.witness = Some(WitnessCopy {
                read_from: write_to.clone(),
                seen: Some(checkpoint.clone()),
                write_to: write_to.clone(),
            });
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
        let bytes = self.record_key.seal(bytes);
        self.observe(event);
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
    let mut file = match pacsguard_fs::open_regular(path) {
        Ok(file) => file,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(refused(path, e)),
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

/// The most of a witness file read: one checkpoint, a few KiB at most.
pub const MAX_WITNESS_BYTES: u64 = 64 << 10;

/// The witness's checkpoint of this trail; `None` when the witness holds none.
fn read_witness(path: &Path, signer: &Signer) -> Result<Option<Checkpoint>, LogError> {
    let note = match pacsguard_fs::read_file(path, MAX_WITNESS_BYTES) {
        Ok(read) => read.bytes,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(refused(path, e)),
    };
    let note = String::from_utf8(note)
        .map_err(|_| damaged(path, "the witness checkpoint is not UTF-8 text".into()))?;
    Checkpoint::open(&note, signer.verifier())
        .map(Some)
        .map_err(|e| damaged(path, format!("the witness checkpoint does not verify: {e}")))
}

/// A file of the trail that could not be read as a regular file within its bound.
pub(crate) fn refused(path: &Path, e: pacsguard_fs::ReadError) -> LogError {
    let source = match e {
        pacsguard_fs::ReadError::Io(source) => source,
        pacsguard_fs::ReadError::NotRegular => std::io::Error::other(
            "not a regular file (a symbolic link, FIFO, socket or device stands there); refused",
        ),
        other => std::io::Error::other(other.to_string()),
    };
    LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Proves with an RFC 6962 consistency proof that the tree `witness` holds is a prefix of
/// the tree signed in `last`, from every leaf of the log.
fn prove_consistent(log: &Path, witness: &Checkpoint, last: &Checkpoint) -> Result<(), LogError> {
    let leaves = crate::log::leaf_hashes(log, last.size)?;
    let inconsistent = |why: String| {
        damaged(
            log,
            format!(
                "the witness's checkpoint of {} records is not a prefix of this trail's {} ({why}): refusing to re-initialise it",
                witness.size, last.size
            ),
        )
    };
    if (leaves.len() as u64) < last.size {
        return Err(inconsistent("the log is shorter".into()));
    }
    let proof =
        consistency_proof(&leaves, witness.size).map_err(|e| inconsistent(e.to_string()))?;
    verify_consistency(witness.size, last.size, &proof, &witness.root, &last.root)
        .map_err(|e| inconsistent(e.to_string()))
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
