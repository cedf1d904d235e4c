//! Offline verification of a trail from its files and the public key alone.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read as _, Seek as _};
use std::path::{Path, PathBuf};

use pacsguard_trail::note::Verifier;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::log::scan_gathering;

/// One thing wrong with a trail, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `record 17 (byte 4096)`, `checkpoint 3`, `witness`.
    pub position: String,
    pub what: String,
}

impl Problem {
    pub(crate) fn at_record(index: u64, offset: u64, what: String) -> Problem {
        Problem {
            position: format!("record {index} (byte {offset})"),
            what,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.what)
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub records: u64,
    pub checkpoints: u64,
    /// Size of the newest checkpoint that verified.
    pub signed_size: u64,
    /// Records after the newest checkpoint: complete, but not yet covered by a signature.
    pub unsigned_records: u64,
    /// (offset, length) of a last line cut short by a crash: never counted as a record.
    pub torn_tail: Option<(u64, u64)>,
    /// (offset, length) of a last checkpoint line cut short by an interrupted write (a
    /// full disk, a crash): never counted as a checkpoint; the next command cuts it off.
    pub torn_checkpoint: Option<(u64, u64)>,
    pub problems: Vec<Problem>,
    /// The home's state signed into the newest checkpoint, for cross-checks by the caller.
    #[serde(skip)]
    pub state: Option<crate::checkpoint::TrailState>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the log against every checkpoint (and the witness's, if given).
pub fn verify(
    log: &Path,
    checkpoints: &Path,
    verifier: &Verifier,
    witness: Option<&Path>,
) -> io::Result<VerifyReport> {
    verify_anchored(log, checkpoints, verifier, witness, &mut []).map(|(report, _)| report)
}

/// [`verify`], gathering the records `gather` asks for from the very lines it verifies,
/// and saying which of them it proved (see [`crate::Gather`]).
pub fn verify_gathering(
    log: &Path,
    checkpoints: &Path,
    verifier: &Verifier,
    witness: Option<&Path>,
    gather: &mut crate::Gather,
) -> io::Result<VerifyReport> {
    verify_anchored(log, checkpoints, verifier, witness, &mut [gather]).map(|(report, _)| report)
}

/// What a whole verification leaves for a [`crate::Follower`] to go on from.
#[derive(Debug, Default)]
pub(crate) struct Anchor {
    /// Every checkpoint of `checkpoints.jsonl` that opened: size → signed root.
    pub signed: std::collections::BTreeMap<u64, pacsguard_trail::merkle::Hash>,
    /// The newest of them (sizes only grow).
    pub last: Option<Checkpoint>,
    /// Bytes of complete lines read from `checkpoints.jsonl`.
    pub checkpoint_bytes: u64,
    /// The log read up to the newest checkpoint's size.
    pub head: crate::log::Cursor,
}

/// [`verify`], also returning where it stopped, each of `gathers` gathering from its
/// one pass (a reader's bindings and `audit verify`'s store resets, say, whose needles
/// differ in kind: see [`crate::Gather::new`]).
pub(crate) fn verify_anchored(
    log: &Path,
    checkpoints: &Path,
    verifier: &Verifier,
    witness: Option<&Path>,
    gathers: &mut [&mut crate::Gather],
) -> io::Result<(VerifyReport, Anchor)> {
    let mut anchor = Anchor::default();
    let mut report = VerifyReport::default();
    let mut signed: Vec<(String, Checkpoint)> = Vec::new();
    match pacsguard_fs::open_regular(checkpoints) {
        Ok(file) => {
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            let mut offset = 0u64;
            for i in 0.. {
                line.clear();
                // A checkpoint line is a few KiB: a longer one is damage, never held whole.
                let n = (&mut reader)
                    .take(MAX_CHECKPOINT_LINE_BYTES + 1)
                    .read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                let position = format!("checkpoint {} ({})", i + 1, checkpoints.display());
                if line.len() as u64 > MAX_CHECKPOINT_LINE_BYTES {
                    report.problems.push(Problem {
                        position,
                        what: format!("longer than {MAX_CHECKPOINT_LINE_BYTES} bytes"),
                    });
                    offset += line.len() as u64 + crate::log::skip_line(&mut reader)?;
                    continue;
                }
                // A last line cut short by an interrupted write of this trail's writer is
                // torn, not tampering (the next command cuts it off and records that).
                if line.last() != Some(&b'\n')
                    && crate::sink::is_own_torn_line(&line, verifier.name())
                {
                    report.torn_checkpoint = Some((offset, line.len() as u64));
                    break;
                }
                offset += line.len() as u64;
                anchor.checkpoint_bytes = offset;
                let note = serde_json::from_slice::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("note").and_then(|n| n.as_str()).map(String::from));
                let Some(note) = note else {
                    report.problems.push(Problem {
                        position,
                        what: "not a checkpoint line".into(),
                    });
                    continue;
                };
                match Checkpoint::open(&note, verifier) {
                    Ok(checkpoint) => signed.push((position, checkpoint)),
                    Err(e) => report.problems.push(Problem {
                        position,
                        what: e.to_string(),
                    }),
                }
            }
        }
        Err(e) if e.is_missing() => {}
        Err(e) => return Err(as_io(e)),
    }
    report.checkpoints = signed.len() as u64;
    report.state = signed.last().and_then(|(_, c)| c.state);
    for (_, checkpoint) in &signed {
        anchor.signed.insert(checkpoint.size, checkpoint.root);
    }
    anchor.last = signed.last().map(|(_, c)| c.clone());
    if let Some(dir) = witness {
        let origin = signed.first().map(|(_, c)| c.origin.clone());
        match origin.map(|o| witness_path(dir, &o, verifier.key_id())) {
            Some(path) => match pacsguard_fs::read_file(&path, crate::sink::MAX_WITNESS_BYTES) {
                Ok(read) => match std::str::from_utf8(&read.bytes)
                    .map_err(|_| "not UTF-8 text".to_string())
                    .and_then(|note| Checkpoint::open(note, verifier).map_err(|e| e.to_string()))
                {
                    Ok(checkpoint) => {
                        // The home's checkpoint is synced before its witness copy is
                        // written: a witness ahead of checkpoints.jsonl means checkpoints
                        // were deleted or put back, even when the records are all there.
                        let last = signed.last().map_or(0, |(_, c)| c.size);
                        if checkpoint.size > last {
                            report.problems.push(Problem {
                                position: format!("witness {}", path.display()),
                                what: format!(
                                    "holds a checkpoint of {} records, newer than the last in {} ({last}): checkpoints were deleted, or the trail was rolled back",
                                    checkpoint.size,
                                    checkpoints.display()
                                ),
                            });
                        }
                        signed.push((format!("witness {}", path.display()), checkpoint))
                    }
                    Err(e) => report.problems.push(Problem {
                        position: format!("witness {}", path.display()),
                        what: e,
                    }),
                },
                Err(e) => report.problems.push(Problem {
                    position: format!("witness {}", path.display()),
                    what: if e.is_missing() {
                        "holds no checkpoint of this trail (deleted?)".into()
                    } else {
                        format!("cannot read: {e}")
                    },
                }),
            },
            None => report.problems.push(Problem {
                position: "witness".into(),
                what: "no checkpoint in the trail to compare it with".into(),
            }),
        }
    }

    let sizes: BTreeSet<u64> = signed.iter().map(|(_, c)| c.size).collect();
    // Read in two parts, up to the newest checkpoint and then the records after it, so
    // a follower can go on from the newest signed size without reading the log again.
    let newest = anchor.last.as_ref().map_or(0, |c| c.size);
    let mut file = pacsguard_fs::open_regular(log).map_err(as_io)?;
    for gather in gathers.iter_mut() {
        gather.start(newest);
    }
    let (signed_part, head) = scan_gathering(
        &mut file,
        &sizes,
        crate::log::Cursor::default(),
        None,
        Some(newest),
        gathers,
    )?;
    file.seek(io::SeekFrom::Start(head.bytes))?;
    let (mut scan, _) = scan_gathering(&mut file, &sizes, head.clone(), None, None, gathers)?;
    anchor.head = head;
    scan.roots.extend(signed_part.roots);
    let mut problems = signed_part.problems;
    problems.append(&mut scan.problems);
    scan.problems = problems;
    let mut gaps = signed_part.heartbeat_gaps;
    gaps.append(&mut scan.heartbeat_gaps);
    scan.heartbeat_gaps = gaps;
    if signed_part.torn_tail.is_some() {
        scan.torn_tail = signed_part.torn_tail;
    }
    report.records = scan.frontier.size();
    report.torn_tail = scan.torn_tail;
    report.problems.extend(scan.problems);
    report.problems.extend(scan.heartbeat_gaps);

    let mut previous: Option<&Checkpoint> = None;
    let mut last_good = 0u64;
    for (position, checkpoint) in &signed {
        if let Some(first) = signed.first()
            && checkpoint.origin != first.1.origin
        {
            report.problems.push(Problem {
                position: position.clone(),
                what: format!(
                    "origin {:?} is not this trail's {:?}",
                    checkpoint.origin, first.1.origin
                ),
            });
            continue;
        }
        if !position.starts_with("witness")
            && let Some(previous) = previous
            && checkpoint.size < previous.size
        {
            report.problems.push(Problem {
                position: position.clone(),
                what: format!(
                    "covers {} records, fewer than the checkpoint before it ({})",
                    checkpoint.size, previous.size
                ),
            });
        }
        match scan.roots.get(&checkpoint.size) {
            None => report.problems.push(Problem {
                position: position.clone(),
                what: format!(
                    "signed for {} records but the log holds only {}: records were deleted, or the log was truncated or rolled back",
                    checkpoint.size, report.records
                ),
            }),
            Some(root) if *root != checkpoint.root => report.problems.push(Problem {
                position: position.clone(),
                what: format!(
                    "the log's first {} records do not reproduce the signed root: a record from {} to {} was modified, inserted or removed",
                    checkpoint.size,
                    last_good.min(checkpoint.size),
                    checkpoint.size.saturating_sub(1)
                ),
            }),
            Some(_) => last_good = last_good.max(checkpoint.size),
        }
        if !position.starts_with("witness") {
            previous = Some(checkpoint);
        }
    }
    if signed.is_empty() && report.records > 0 {
        report.problems.push(Problem {
            position: format!("checkpoints ({})", checkpoints.display()),
            what: format!(
                "none for a log of {} records: the checkpoints were deleted",
                report.records
            ),
        });
    }
    for gather in gathers.iter_mut() {
        gather.finish(last_good, newest, report.records);
    }
    report.signed_size = signed.iter().map(|(_, c)| c.size).max().unwrap_or(0);
    report.unsigned_records = report.records.saturating_sub(report.signed_size);
    Ok((report, anchor))
}

/// The witness keeps one file per trail, named by the log's identity: its origin and its
/// key ID, so two homes (or two cloned hosts) sharing a witness directory never share a
/// file. A witness written before this naming (`<origin>.checkpoint`) is still read when
/// only it exists; the next checkpoint is written under the new name.
pub fn witness_path(dir: &Path, origin: &str, key_id: u32) -> PathBuf {
    let path = witness_file(dir, origin, key_id);
    let legacy = dir.join(format!("{}.checkpoint", safe_name(origin)));
    match (
        std::fs::symlink_metadata(&path),
        std::fs::symlink_metadata(&legacy),
    ) {
        (Err(e), Ok(_)) if e.kind() == io::ErrorKind::NotFound => legacy,
        _ => path,
    }
}

/// Where the witness copy of this trail's newest checkpoint is written.
pub fn witness_file(dir: &Path, origin: &str, key_id: u32) -> PathBuf {
    dir.join(format!("{}.{key_id:08x}.checkpoint", safe_name(origin)))
}

/// The longest checkpoint line read: a checkpoint with its resume line (at most 64
/// hashes) is under 4 KiB.
pub const MAX_CHECKPOINT_LINE_BYTES: u64 = 64 << 10;

fn as_io(e: pacsguard_fs::ReadError) -> io::Error {
    match e {
        pacsguard_fs::ReadError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// `text` with everything but ASCII letters, digits, `-` and `.` replaced by `_`: usable
/// as a file name, a signed-note key name and a checkpoint origin.
pub fn safe_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
