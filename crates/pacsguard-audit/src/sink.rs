//! The audit trail as a sink of the event bus.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Event, EventSink, Outcome, SinkError};
use pacsguard_trail::note::Signer;
use serde::Serialize;

use crate::checkpoint::{Checkpoint, TrailState};
use crate::log::{AuditLog, Generations, LogError, Opened};
use crate::mac::RecordKey;
use crate::verify::{MAX_CHECKPOINT_LINE_BYTES, witness_file, witness_path};
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
    /// The witness held the checkpoint before the last (of this many records): a command
    /// was killed between its checkpoint and the witness copy. The next checkpoint brings
    /// the witness up to date; the caller records that it did.
    pub witness_behind_by_crash: Option<u64>,
    /// Records covered by the last checkpoint (0: a new trail, or one whose checkpoints
    /// and records were all deleted).
    pub signed_size: u64,
    /// The state signed into the last checkpoint, followed through the records written
    /// after it (`None`: no checkpoint yet, or one written before checkpoints carried it).
    pub state: Option<TrailState>,
    /// Complete records in the log.
    pub records: u64,
    /// A checkpoint line cut short by an interrupted write (a full disk, a power loss),
    /// cut off: (offset, length). The records it would have signed are adopted.
    pub torn_checkpoint: Option<(u64, u64)>,
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
    /// Where every new signed checkpoint is also kept (the home's store), so the trail
    /// put back to an earlier copy disagrees with it.
    mirror: Option<Mirror>,
}

/// Keeps a copy of each new signed checkpoint (its note) elsewhere.
pub type MirrorFn = Box<dyn FnMut(&str) -> Result<(), String> + Send>;

struct Mirror(MirrorFn);

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mirror(..)")
    }
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
        let Tail {
            last,
            previous,
            torn: torn_checkpoint,
        } = read_tail(&files.checkpoints, &signer)?;
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
                    "the witness {} holds a checkpoint of {} records, newer than this trail's last ({last_size}) in {}: the checkpoints or the whole trail were rolled back",
                    witness_path
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string()),
                    witness.size,
                    files.checkpoints.display(),
                ),
            ));
        }
        if let (Some(path), Some(last)) = (&witness_path, &last)
            && witness_mode == WitnessMode::Required
        {
            let behind = match &witness {
                None => Some(format!(
                    "it holds no checkpoint of this trail (last checkpoint: {} records): the file was deleted, or the witness was configured after the trail began",
                    last.size
                )),
                // Exactly the checkpoint before the last: what a command killed between
                // its checkpoint (synced in the home first) and the witness copy leaves.
                // The log proves the last extends it (both roots are reproduced below), so
                // the next checkpoint brings the witness up to date, on the record. Anyone
                // who could put this copy back could equally roll back trail and witness
                // together, which no witness catches.
                Some(w) if previous.as_ref() == Some(w) => None,
                Some(w) if w.size < last.size => Some(format!(
                    "it holds a checkpoint of {} records, behind this trail's last ({}): a write to the witness failed (a full, read-only or unmounted share), or an older copy of the witness file was put back",
                    w.size, last.size
                )),
                Some(_) => None,
            };
            if let Some(behind) = behind {
                return Err(LogError::Witness {
                    path: path.clone(),
                    problem: format!(
                        "{behind}. The home's trail itself is not in question and must be kept as it is. Check the witness share (mounted? writable? restored from a backup?), then run `pacsguard audit witness init --reason TEXT`: it proves that the trail extends what the witness holds before it writes over it, and puts that on the record. Nothing is signed until then"
                    ),
                });
            }
        }
        // Continue from the signed frontier of the checkpoint before the last: only the
        // records written since are read, and the log proves the last checkpoint extends
        // the one before it (both roots reproduced from one run of records: an RFC 6962
        // consistency proof made of the log itself). Without them (a new trail, or
        // checkpoints written before they carried a frontier), the whole log is read.
        let previous = previous.filter(|p| {
            last.as_ref()
                .is_some_and(|l| p.size < l.size && p.frontier().is_some())
        });
        let resume = previous
            .as_ref()
            .or(last.as_ref())
            .and_then(Checkpoint::frontier);
        let mut sizes: BTreeSet<u64> = last.iter().chain(previous.iter()).map(|c| c.size).collect();
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
            generations,
        } = AuditLog::open(&files.log, &sizes, resume, Some((&record_key, last_size)))?;
        let mut expected = vec![
            ("last checkpoint", last.as_ref()),
            ("checkpoint before the last", previous.as_ref()),
        ];
        // Only where the records were read at its size: a witness further behind (a share
        // restored from a backup) was not, and is proven a prefix by `prove_consistent`
        // when a person re-initialises it (otherwise it is refused as behind). Comparing it
        // with a root never computed called a whole trail damaged.
        if witness
            .as_ref()
            .is_some_and(|w| roots.contains_key(&w.size))
        {
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
        // The records after the last checkpoint count as much as the signed ones: a
        // baseline they announce or sign is part of the state the store must match (a
        // checkpoint put back or deleted must not roll the state back with it).
        let follow = |state: TrailState| TrailState {
            baseline: state.baseline.max(generations.baseline),
            announced: state
                .announced
                .max(generations.announced)
                .max(generations.baseline),
            seen: state.seen.then(generations.seen),
            ..state
        };
        let state = follow(TrailState {
            settings,
            ..signed_state.unwrap_or(TrailState {
                baseline: baseline_if_unknown,
                announced: baseline_if_unknown,
                settings,
                seen: crate::SeenMarks::default(),
            })
        });
        // Only now that the trail is proven whole: our own torn checkpoint line goes.
        if let Some((offset, length)) = torn_checkpoint {
            cut_torn_line(&files.checkpoints, offset).map_err(|e| LogError::Io {
                path: files.checkpoints.clone(),
                source: std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot cut off the checkpoint line cut short ({length} bytes at byte {offset}): {e}"
                    ),
                ),
            })?;
        }
        let opening = Opening {
            signed_size,
            state: signed_state.map(follow),
            records: log.size(),
            torn_checkpoint,
            torn_tail: torn,
            adopted: log.size() - signed_size.min(log.size()),
            witness_behind_by_crash: match (&witness, &last) {
                (Some(w), Some(l)) if w.size < l.size && witness_mode == WitnessMode::Required => {
                    Some(w.size)
                }
                _ => None,
            },
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
                mirror: None,
            },
            opening,
        ))
    }

    /// Also hands every checkpoint signed from now on to `mirror` (after it is durable in
    /// `checkpoints.jsonl`). A mirror that fails leaves its copy behind, which is harmless
    /// (see `checkpoint`).
    pub fn mirror_checkpoints(&mut self, mirror: MirrorFn) {
        self.mirror = Some(Mirror(mirror));
    }

    pub fn size(&self) -> u64 {
        self.log.size()
    }

    /// Follows the baseline generations that `profile` and `accept` announce and sign.
    fn observe(&mut self, event: &Event) {
        let mut generations = Generations {
            baseline: self.state.baseline,
            announced: self.state.announced,
            seen: self.state.seen,
        };
        let outcome = match event.outcome {
            Outcome::Started => "started",
            Outcome::Success => "success",
            Outcome::Findings => "findings",
            Outcome::Failure => "failure",
        };
        generations.observe(event.action.as_str(), outcome, event.generation);
        if event.action.as_str() == "watch"
            && let Some(tag) = event.watch_seen.as_deref().and_then(crate::decode_tag)
        {
            generations.seen.observe(outcome, tag);
        }
        self.state.baseline = generations.baseline;
        self.state.announced = generations.announced;
        self.state.seen = generations.seen;
    }

    fn error(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError {
            sink: format!("audit trail {}", self.files.log.display()),
            reason: e.to_string(),
            recorded: false,
        }
    }

    /// The checkpoint of `size` records is written and synced in the home, but the
    /// witness copy failed: say exactly that, and what happens next.
    fn witness_error(&self, size: u64, e: impl std::fmt::Display) -> SinkError {
        SinkError {
            sink: format!("audit trail {}", self.files.log.display()),
            reason: format!(
                "the records are written and signed on the home's trail (a checkpoint of {size} records in {}), but its copy to the witness was not written: {e}. Until the witness holds it, the next command refuses the witness as behind: make the witness directory writable again, then run `pacsguard audit witness init --reason TEXT`",
                self.files.checkpoints.display()
            ),
            recorded: true,
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
                // A write cut short (a full disk) leaves no partial line behind: it is cut
                // off here, and a line torn by a crash is cut off by the next open.
                let before = f.metadata()?.len();
                f.write_all(&line)
                    .and_then(|()| f.sync_data())
                    .inspect_err(|_| {
                        let _ = f.set_len(before).and_then(|()| f.sync_data());
                    })
            })
            .map_err(|e| self.error(format!("{}: {e}", path.display())))?;
        // Signed and durable in the home: whatever happens to the copies.
        self.signed_size = checkpoint.size;
        // The copy only ever needs to be at most as new as the trail: a copy left behind
        // (a full disk, a crash right here) is what every crash leaves too and is accepted;
        // only a copy *ahead* of the trail means something (the trail was put back). So a
        // copy that cannot be written does not fail a command whose trail is whole.
        if let Some(Mirror(mirror)) = &mut self.mirror {
            let _ = mirror(&note);
        }
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
            let now = read_witness(read_from, &self.signer)
                .map_err(|e| self.witness_error(checkpoint.size, e))?;
            if now != *seen {
                return Err(self.witness_error(
                    checkpoint.size,
                    format!(
                        "witness {}: it changed while this command ran (another writer?); it was not overwritten",
                        read_from.display()
                    ),
                ));
            }
            write_atomically(write_to, note.as_bytes()).map_err(|e| {
                self.witness_error(
                    checkpoint.size,
                    format!("witness {}: {e}", write_to.display()),
                )
            })?;
            self.witness = Some(WitnessCopy {
                read_from: write_to.clone(),
                seen: Some(checkpoint.clone()),
                write_to: write_to.clone(),
            });
        }
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

/// How far from the end of `checkpoints.jsonl` checkpoints are read when a trail is
/// opened: a checkpoint line is a few hundred bytes to a few KiB (its resume line holds at
/// most 64 hashes), so this holds the last dozens of checkpoints without reading the whole
/// file. Every line in it must verify and none may cover fewer records than the one before
/// (`audit verify` checks the whole file the same way).
const CHECKPOINT_TAIL: u64 = 64 << 10;

/// The end of `checkpoints.jsonl`, verified.
#[derive(Debug, Default)]
struct Tail {
    /// The newest complete checkpoint (`None` for a new trail).
    last: Option<Checkpoint>,
    /// The one before it, if it was within [`CHECKPOINT_TAIL`].
    previous: Option<Checkpoint>,
    /// A last line cut short by an interrupted write of this trail's writer (a full disk,
    /// a power loss): (offset, length). Cut off once the trail is otherwise proven whole.
    torn: Option<(u64, u64)>,
}

/// The newest checkpoints of the trail, verified, and a torn last line of ours.
///
/// Refused: a line that does not verify, a checkpoint covering fewer records than the one
/// before it (an older checkpoint put back), two of one size with different roots (a
/// fork), and an incomplete last line that is not the beginning of one of this trail's
/// checkpoint lines (an edit). A torn line of ours is safe to cut off: the checkpoint
/// before it is then the last, and the records written since must each carry the home's
/// record MAC to be signed again, so nothing edited can be laundered by tearing a line.
fn read_tail(path: &Path, signer: &Signer) -> Result<Tail, LogError> {
    let io_err = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match pacsguard_fs::open_regular(path) {
        Ok(file) => file,
        Err(e) if e.is_missing() => return Ok(Tail::default()),
        Err(e) => return Err(refused(path, e)),
    };
    let len = file.metadata().map_err(io_err)?.len();
    // The window: the last CHECKPOINT_TAIL bytes of complete lines, and after them room
    // for a torn last line as long as the longest checkpoint line.
    let window = CHECKPOINT_TAIL + MAX_CHECKPOINT_LINE_BYTES;
    let start = len.saturating_sub(window);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.take(window).read_to_end(&mut tail))
        .map_err(io_err)?;
    let complete_end = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Complete lines only: the window may begin inside one (the first byte of the file,
    // or one just after a newline, begins a line).
    let mut from = complete_end.saturating_sub(CHECKPOINT_TAIL as usize);
    let begins_a_line = if from == 0 {
        start == 0
    } else {
        tail[from - 1] == b'\n'
    };
    if !begins_a_line {
        from = tail[from..complete_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(complete_end, |i| from + i + 1);
    }
    let mut found = Tail::default();
    let rest = &tail[complete_end..];
    if !rest.is_empty() {
        let offset = start + complete_end as u64;
        if !is_own_torn_line(rest, signer.verifier().name()) {
            return Err(damaged(
                path,
                format!(
                    "its last line (at byte {offset}) is incomplete and is not the beginning of a checkpoint of this trail: edited"
                ),
            ));
        }
        found.torn = Some((offset, rest.len() as u64));
    }
    let mut line_start = start + from as u64;
    for line in tail[from..complete_end].split_inclusive(|&b| b == b'\n') {
        let at = line_start;
        line_start += line.len() as u64;
        let line = &line[..line.len() - 1];
        if line.is_empty() {
            continue;
        }
        let note = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("note").and_then(|n| n.as_str()).map(String::from))
            .ok_or_else(|| damaged(path, format!("the line at byte {at} is not a checkpoint")))?;
        let checkpoint = Checkpoint::open(&note, signer.verifier()).map_err(|e| {
            damaged(
                path,
                format!("the checkpoint at byte {at} does not verify: {e}"),
            )
        })?;
        if let Some(before) = &found.last {
            if checkpoint.size < before.size {
                return Err(damaged(
                    path,
                    format!(
                        "the checkpoint at byte {at} covers {} records, fewer than the one before it ({}): an older checkpoint was put back (rolled back)",
                        checkpoint.size, before.size
                    ),
                ));
            }
            if checkpoint.size == before.size && checkpoint.root != before.root {
                return Err(damaged(
                    path,
                    format!(
                        "the checkpoint at byte {at} signs another tree of the same size ({}) as the one before it: the trail was forked",
                        checkpoint.size
                    ),
                ));
            }
            let offset = |c: &Checkpoint| c.resume.as_ref().map(|(o, _)| *o);
            if let (Some(now), Some(then)) = (offset(&checkpoint), offset(before))
                && now < then
            {
                return Err(damaged(
                    path,
                    format!(
                        "the checkpoint at byte {at} ends the log at byte {now}, before the one before it ({then}): rolled back"
                    ),
                ));
            }
        }
        found.previous = found.last.replace(checkpoint);
    }
    Ok(found)
}

/// Whether `bytes` (an incomplete last line) is the beginning of a checkpoint line this
/// trail's writer writes: `{"note":"<origin>\n...` cut anywhere, or a whole line that only
/// lacks its newline. The writer writes JSON, which never holds a raw control byte.
pub(crate) fn is_own_torn_line(bytes: &[u8], origin: &str) -> bool {
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let Ok(quoted) = serde_json::to_string(&format!("{origin}\n")) else {
        return false;
    };
    // `{"note":"<origin>\n` without the closing quote of the string.
    let head = format!("{{\"note\":{}", &quoted[..quoted.len() - 1]);
    let head = head.as_bytes();
    let common = bytes.len().min(head.len());
    bytes.len() as u64 <= MAX_CHECKPOINT_LINE_BYTES && bytes[..common] == head[..common]
}

/// Cuts the torn last line of `checkpoints.jsonl` off at `offset`.
fn cut_torn_line(path: &Path, offset: u64) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file; refused"));
    }
    file.set_len(offset)?;
    file.sync_data()
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
