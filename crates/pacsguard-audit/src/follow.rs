//! Following a trail as it grows, for a long-running process that shows whether its trail
//! is intact (the console's overview).
//!
//! Verifying the whole trail every minute costs a read of every record (39 s of CPU at a
//! million records in a debug build). A [`Follower`] verifies the whole trail once, at
//! [`Follower::start`], and remembers the tree at the newest checkpoint it verified. Each
//! [`Follower::step`] then reads only what was appended since: the new checkpoints (each
//! signature checked) and the new records, hashed onto the remembered tree. A new
//! checkpoint whose root is reproduced that way is consistent with the tree head verified
//! before it (the remembered tree *is* that head plus the new leaves), and the new records
//! are included in it: the consistency and inclusion proofs of RFC 6962, computed from
//! the log itself.
//!
//! What a step cannot see is an old record edited in place without changing its length:
//! the remembered tree is not recomputed. So each step also re-reads a slice of the old
//! records from the start of the log (a rolling full pass, [`sweep_budget`]): every record
//! is read again at least once per [`FULL_PASS_PERIOD`], and the signed roots it passes
//! are compared again. An edit that changes the length of an old record is seen at once:
//! the byte where the remembered tree ends is no longer the end of a record.
//!
//! The records after the newest checkpoint (not signed yet) are read again at every
//! step, and the tree of those read at the last step must be found again: records cut
//! off the log's end, edited or replaced before their checkpoint are seen at the next
//! step, with or without the home's MAC key.
//!
//! Problems stay reported once found (a trail found damaged is not intact again until a
//! person verifies it whole, which a restart does).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pacsguard_trail::merkle::Hash;
use pacsguard_trail::note::Verifier;

use crate::checkpoint::Checkpoint;
use crate::log::{Cursor, ends_a_line, scan_from};
use crate::verify::{MAX_CHECKPOINT_LINE_BYTES, Problem, VerifyReport, verify_anchored};

/// Every old record is read again at least once in this period by the rolling full pass:
/// a record edited in place (same length) is found within a day at most.
pub const FULL_PASS_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// Old records re-read per step at least, whatever the period asks: a small trail is
/// swept in a few steps, and 10,000 records cost well under a second of CPU.
pub const MIN_SWEEP_RECORDS: u64 = 10_000;

/// Problems kept for the report: the same damage found again by each pass is kept once,
/// and past this many distinct problems the trail is damaged beyond listing them all.
pub const MAX_KEPT_PROBLEMS: usize = 100;

/// How many old records a step re-reads for a trail of `records` when steps come every
/// `interval`: enough to finish a full pass within [`FULL_PASS_PERIOD`], at least
/// [`MIN_SWEEP_RECORDS`].
pub fn sweep_budget(records: u64, interval: Duration) -> u64 {
    let steps = (FULL_PASS_PERIOD.as_secs() / interval.as_secs().max(1)).max(1);
    records.div_ceil(steps).max(MIN_SWEEP_RECORDS)
}

/// A step's view of the trail.
#[derive(Clone, Debug, Default)]
pub struct FollowReport {
    /// As [`crate::verify`] reports it; `problems` holds every problem found since the start.
    pub report: VerifyReport,
    /// Records the rolling full pass has re-read in its current round.
    pub swept: u64,
    /// Rounds of the rolling full pass completed since the start.
    pub full_passes: u64,
}

/// A trail verified whole once, then followed as it grows. See the module docs.
#[derive(Debug)]
pub struct Follower {
    log: PathBuf,
    checkpoints: PathBuf,
    verifier: Verifier,
    witness: Option<PathBuf>,
    /// Every checkpoint read that opened: size → signed root.
    signed: BTreeMap<u64, Hash>,
    last: Option<Checkpoint>,
    checkpoint_count: u64,
    checkpoint_bytes: u64,
    /// The log verified up to the newest checkpoint.
    head: Cursor,
    /// The rolling full pass.
    sweep: Cursor,
    full_passes: u64,
    problems: Vec<Problem>,
    /// Problems not kept past [`MAX_KEPT_PROBLEMS`].
    dropped: u64,
    /// The home's record MAC key, when the reader has it: every record after the newest
    /// checkpoint must carry a valid MAC (checked on the records read, not the whole log).
    record_key: Option<crate::RecordKey>,
    /// The records read at the last step (how many, and the root of their tree): the
    /// unsigned ones among them must still be there, unchanged, at the next step. A MAC
    /// and a sequence number do not tell a tail cut off at a record's end from a log
    /// that never held it, and a writer killed meanwhile would sign what is left.
    seen: Option<(u64, Hash)>,
}

impl Follower {
    /// Verifies the whole trail (as [`crate::verify`] does) and returns its report with a
    /// follower that goes on from there.
    pub fn start(
        log: &Path,
        checkpoints: &Path,
        verifier: &Verifier,
        witness: Option<&Path>,
    ) -> io::Result<(Follower, VerifyReport)> {
        Follower::start_gathering(log, checkpoints, verifier, witness, &mut [])
    }

    /// [`Follower::start`], each of `gathers` gathering records from the whole
    /// verification's own pass as [`crate::verify_gathering`] does.
    pub fn start_gathering(
        log: &Path,
        checkpoints: &Path,
        verifier: &Verifier,
        witness: Option<&Path>,
        gathers: &mut [&mut crate::Gather],
    ) -> io::Result<(Follower, VerifyReport)> {
        let (report, anchor) = verify_anchored(log, checkpoints, verifier, witness, gathers)?;
        let mut follower = Follower {
            log: log.to_path_buf(),
            checkpoints: checkpoints.to_path_buf(),
            verifier: verifier.clone(),
            witness: witness.map(Path::to_path_buf),
            signed: anchor.signed,
            last: anchor.last,
            checkpoint_count: report.checkpoints,
            checkpoint_bytes: anchor.checkpoint_bytes,
            head: anchor.head,
            sweep: Cursor::default(),
            full_passes: 0,
            problems: Vec::new(),
            dropped: 0,
            record_key: None,
            seen: None,
        };
        follower.keep(report.problems.iter().cloned());
        Ok((follower, report))
    }

    /// Checks the MAC of every record after the newest checkpoint with `key` (the home's),
    /// as a writer does before it signs them.
    pub fn with_record_key(mut self, key: crate::RecordKey) -> Follower {
        self.record_key = Some(key);
        self
    }

    /// Records verified up to the newest checkpoint.
    pub fn verified_records(&self) -> u64 {
        self.head.frontier.size()
    }

    /// Reads what was appended since the last step, and `sweep_records` old records of the
    /// rolling full pass ([`sweep_budget`] says how many).
    pub fn step(&mut self, sweep_records: u64) -> io::Result<FollowReport> {
        let mut found = Vec::new();
        // The witness first: it is written after checkpoints.jsonl, so a witness read
        // before the checkpoints is never legitimately ahead of them.
        let witness = self.read_witness(&mut found);
        let new = self.read_new_checkpoints(&mut found)?;
        if let Some(witness) = witness {
            let last = self.last.as_ref().map_or(0, |c| c.size);
            match self.signed.get(&witness.size) {
                Some(root) if *root != witness.root => found.push(Problem {
                    position: "witness".into(),
                    what: format!(
                        "its checkpoint of {} records has another root than the trail's checkpoint of that size",
                        witness.size
                    ),
                }),
                None if witness.size > last => found.push(Problem {
                    position: "witness".into(),
                    what: format!(
                        "holds a checkpoint of {} records, newer than the last in the trail ({last}): checkpoints were deleted, or the trail was rolled back",
                        witness.size
                    ),
                }),
                _ => {}
            }
        }

        let mut file = pacsguard_fs::open_regular(&self.log).map_err(as_io)?;
        let mut report = VerifyReport {
            checkpoints: self.checkpoint_count,
            state: self.last.as_ref().and_then(|c| c.state),
            ..VerifyReport::default()
        };
        if !ends_a_line(&mut file, self.head.bytes)? {
            found.push(Problem {
                position: format!("byte {} of {}", self.head.bytes, self.log.display()),
                what: format!(
                    "the log verified up to record {} no longer ends a record there: it was truncated, or an earlier record was edited",
                    self.head.frontier.size()
                ),
            });
            report.records = self.head.frontier.size();
        } else {
            self.read_new_records(&mut file, &new, &mut found, &mut report)?;
        }
        self.sweep_old_records(&mut file, sweep_records, &mut found)?;

        self.keep(found);
        report.signed_size = self.last.as_ref().map_or(0, |c| c.size);
        report.unsigned_records = report.records.saturating_sub(report.signed_size);
        report.problems = self.problems.clone();
        if self.dropped > 0 {
            report.problems.push(Problem {
                position: "trail".into(),
                what: format!(
                    "{} more problems not listed (past {MAX_KEPT_PROBLEMS})",
                    self.dropped
                ),
            });
        }
        Ok(FollowReport {
            report,
            swept: self.sweep.frontier.size(),
            full_passes: self.full_passes,
        })
    }

    /// The new records: up to the newest new checkpoint (each new checkpoint's root
    /// checked), then the unsigned ones after it (structure only, as `verify` does).
    fn read_new_records(
        &mut self,
        file: &mut std::fs::File,
        new: &[(String, Checkpoint)],
        found: &mut Vec<Problem>,
        report: &mut VerifyReport,
    ) -> io::Result<()> {
        let sizes: BTreeSet<u64> = new.iter().map(|(_, c)| c.size).collect();
        let newest = sizes
            .last()
            .copied()
            .unwrap_or(0)
            .max(self.head.frontier.size());
        // The tree of the records seen at the last step is recomputed by whichever
        // reading below passes its size.
        let seen_size: BTreeSet<u64> = self.seen.iter().map(|(size, _)| *size).collect();
        let signed_sizes: BTreeSet<u64> = sizes.union(&seen_size).copied().collect();
        file.seek(SeekFrom::Start(self.head.bytes))?;
        let (signed_part, head) = scan_from(
            &mut *file,
            &signed_sizes,
            self.head.clone(),
            None,
            Some(newest),
        )?;
        let mut intact = signed_part.problems.is_empty();
        found.extend(signed_part.problems);
        found.extend(signed_part.heartbeat_gaps);
        for (position, checkpoint) in new {
            match signed_part.roots.get(&checkpoint.size) {
                None => {
                    intact = false;
                    found.push(Problem {
                        position: position.clone(),
                        what: format!(
                            "signed for {} records but the log holds only {}: records were deleted, or the log was truncated or rolled back",
                            checkpoint.size,
                            head.frontier.size()
                        ),
                    });
                }
                Some(root) if *root != checkpoint.root => {
                    intact = false;
                    found.push(Problem {
                        position: position.clone(),
                        what: format!(
                            "does not extend the tree of {} records verified before it: a record before {} was modified, inserted or removed",
                            self.head.frontier.size(),
                            checkpoint.size
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        // Go on from the new head only when it verified: otherwise the same damage is
        // found again at the next step rather than built upon.
        if intact {
            self.head = head;
        }
        file.seek(SeekFrom::Start(self.head.bytes))?;
        let mac = self
            .record_key
            .as_ref()
            .map(|key| (key, self.head.frontier.size()));
        let (tail, end) = scan_from(&mut *file, &seen_size, self.head.clone(), mac, None)?;
        if let Some((size, root)) = self.seen {
            match tail.roots.get(&size).or(signed_part.roots.get(&size)) {
                None => found.push(Problem {
                    position: format!("{}", self.log.display()),
                    what: format!(
                        "holds {} records where {size} were read at the last step: records after the newest checkpoint were removed (the log was truncated)",
                        end.frontier.size()
                    ),
                }),
                Some(now) if *now != root => found.push(Problem {
                    position: format!("{}", self.log.display()),
                    what: format!(
                        "its first {size} records, read at the last step, changed since: a record after the newest checkpoint was edited, removed or replaced"
                    ),
                }),
                Some(_) => {}
            }
        }
        self.seen = Some((end.frontier.size(), end.frontier.root()));
        found.extend(tail.problems);
        found.extend(tail.heartbeat_gaps);
        report.records = end.frontier.size();
        report.torn_tail = tail.torn_tail;
        Ok(())
    }

    /// The rolling full pass: `budget` records from where it stopped, the signed roots it
    /// passes compared again; from the start once it reaches the verified head.
    fn sweep_old_records(
        &mut self,
        file: &mut std::fs::File,
        budget: u64,
        found: &mut Vec<Problem>,
    ) -> io::Result<()> {
        let head = self.head.frontier.size();
        if self.sweep.frontier.size() >= head {
            if head > 0 {
                self.full_passes += 1;
            }
            self.sweep = Cursor::default();
        }
        let from = self.sweep.frontier.size();
        let stop = from.saturating_add(budget.max(1)).min(head);
        if !ends_a_line(file, self.sweep.bytes)? {
            found.push(Problem {
                position: format!("byte {} of {}", self.sweep.bytes, self.log.display()),
                what: format!(
                    "no longer the end of record {}: the log was truncated, or an earlier record was edited",
                    from.saturating_sub(1)
                ),
            });
            self.sweep = Cursor::default();
            return Ok(());
        }
        let sizes: BTreeSet<u64> = self.signed.range(from..=stop).map(|(s, _)| *s).collect();
        file.seek(SeekFrom::Start(self.sweep.bytes))?;
        let (scan, cursor) = scan_from(&mut *file, &sizes, self.sweep.clone(), None, Some(stop))?;
        found.extend(scan.problems);
        found.extend(scan.heartbeat_gaps);
        for (size, root) in &scan.roots {
            if self.signed.get(size).is_some_and(|signed| signed != root) {
                found.push(Problem {
                    position: format!("checkpoint of {size} records"),
                    what: format!(
                        "the log's first {size} records no longer reproduce its signed root: a record from {from} to {} was modified after it was verified",
                        size.saturating_sub(1)
                    ),
                });
            }
        }
        if cursor.frontier.size() < stop {
            found.push(Problem {
                position: format!("{}", self.log.display()),
                what: format!(
                    "holds {} records where {stop} were verified: records were deleted or the log truncated",
                    cursor.frontier.size()
                ),
            });
            self.sweep = Cursor::default();
        } else {
            self.sweep = cursor;
        }
        Ok(())
    }

    /// Checkpoint lines appended since the last step (complete lines only: a line being
    /// written is read at the next step), each opened with the trail's key.
    fn read_new_checkpoints(
        &mut self,
        found: &mut Vec<Problem>,
    ) -> io::Result<Vec<(String, Checkpoint)>> {
        let mut new = Vec::new();
        let file = match pacsguard_fs::open_regular(&self.checkpoints) {
            Ok(file) => file,
            Err(e) if e.is_missing() && self.checkpoint_bytes == 0 => return Ok(new),
            Err(e) if e.is_missing() => {
                found.push(Problem {
                    position: format!("checkpoints ({})", self.checkpoints.display()),
                    what: "deleted after they were verified".into(),
                });
                return Ok(new);
            }
            Err(e) => return Err(as_io(e)),
        };
        let mut file = file;
        if file.metadata()?.len() < self.checkpoint_bytes {
            found.push(Problem {
                position: format!("checkpoints ({})", self.checkpoints.display()),
                what: format!(
                    "shorter than the {} bytes verified before: checkpoints were deleted",
                    self.checkpoint_bytes
                ),
            });
            return Ok(new);
        }
        file.seek(SeekFrom::Start(self.checkpoint_bytes))?;
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_CHECKPOINT_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                if line.len() as u64 > MAX_CHECKPOINT_LINE_BYTES {
                    found.push(Problem {
                        position: format!(
                            "byte {} of {}",
                            self.checkpoint_bytes,
                            self.checkpoints.display()
                        ),
                        what: format!("a line longer than {MAX_CHECKPOINT_LINE_BYTES} bytes"),
                    });
                }
                break;
            }
            self.checkpoint_bytes += line.len() as u64;
            let position = format!(
                "checkpoint {} ({})",
                self.checkpoint_count + 1,
                self.checkpoints.display()
            );
            let note = serde_json::from_slice::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("note").and_then(|n| n.as_str()).map(String::from));
            let opened = match note {
                Some(note) => Checkpoint::open(&note, &self.verifier).map_err(|e| e.to_string()),
                None => Err("not a checkpoint line".into()),
            };
            let checkpoint = match opened {
                Ok(checkpoint) => checkpoint,
                Err(what) => {
                    found.push(Problem { position, what });
                    continue;
                }
            };
            self.checkpoint_count += 1;
            if let Some(last) = &self.last {
                if checkpoint.origin != last.origin {
                    found.push(Problem {
                        position,
                        what: format!(
                            "origin {:?} is not this trail's {:?}",
                            checkpoint.origin, last.origin
                        ),
                    });
                    continue;
                }
                if checkpoint.size < last.size {
                    found.push(Problem {
                        position,
                        what: format!(
                            "covers {} records, fewer than the checkpoint before it ({})",
                            checkpoint.size, last.size
                        ),
                    });
                    continue;
                }
            }
            if checkpoint.size < self.head.frontier.size() {
                // Sizes only grow and the head is the newest checkpoint: unreachable for
                // an intact trail, but never taken on trust.
                found.push(Problem {
                    position,
                    what: format!(
                        "covers {} records, fewer than the {} already verified",
                        checkpoint.size,
                        self.head.frontier.size()
                    ),
                });
                continue;
            }
            self.signed.insert(checkpoint.size, checkpoint.root);
            self.last = Some(checkpoint.clone());
            new.push((position, checkpoint));
        }
        Ok(new)
    }

    /// The witness's checkpoint, if one is configured; a problem if it cannot be read.
    fn read_witness(&self, found: &mut Vec<Problem>) -> Option<Checkpoint> {
        let dir = self.witness.as_deref()?;
        let origin = &self.last.as_ref()?.origin;
        let path = crate::verify::witness_path(dir, origin, self.verifier.key_id());
        let read = pacsguard_fs::read_file(&path, crate::sink::MAX_WITNESS_BYTES)
            .map_err(|e| {
                if e.is_missing() {
                    "holds no checkpoint of this trail (deleted?)".to_string()
                } else {
                    format!("cannot read: {e}")
                }
            })
            .and_then(|read| {
                let note =
                    std::str::from_utf8(&read.bytes).map_err(|_| "not UTF-8 text".to_string())?;
                Checkpoint::open(note, &self.verifier).map_err(|e| e.to_string())
            });
        match read {
            Ok(checkpoint) => Some(checkpoint),
            Err(what) => {
                found.push(Problem {
                    position: format!("witness {}", path.display()),
                    what,
                });
                None
            }
        }
    }

    /// Keeps the problems not already kept, up to [`MAX_KEPT_PROBLEMS`].
    fn keep(&mut self, found: impl IntoIterator<Item = Problem>) {
        for problem in found {
            if self.problems.contains(&problem) {
                continue;
            }
            if self.problems.len() >= MAX_KEPT_PROBLEMS {
                self.dropped += 1;
            } else {
                self.problems.push(problem);
            }
        }
    }
}

fn as_io(e: pacsguard_fs::ReadError) -> io::Error {
    match e {
        pacsguard_fs::ReadError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}
