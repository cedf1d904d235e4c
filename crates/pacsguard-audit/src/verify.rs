//! Offline verification of a trail from its files and the public key alone.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader};
use std::path::Path;

use pacsguard_trail::note::Verifier;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::log::scan;

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
    pub problems: Vec<Problem>,
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
    let mut report = VerifyReport::default();
    let mut signed: Vec<(String, Checkpoint)> = Vec::new();
    match File::open(checkpoints) {
        Ok(file) => {
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let position = format!("checkpoint {} ({})", i + 1, checkpoints.display());
                let line = line?;
                let note = serde_json::from_str::<serde_json::Value>(&line)
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
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    report.checkpoints = signed.len() as u64;
    if let Some(dir) = witness {
        let origin = signed.first().map(|(_, c)| c.origin.clone());
        match origin.map(|o| dir.join(witness_file_name(&o))) {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(note) => match Checkpoint::open(&note, verifier) {
                    Ok(checkpoint) => {
                        signed.push((format!("witness {}", path.display()), checkpoint))
                    }
                    Err(e) => report.problems.push(Problem {
                        position: format!("witness {}", path.display()),
                        what: e.to_string(),
                    }),
                },
                Err(e) => report.problems.push(Problem {
                    position: format!("witness {}", path.display()),
                    what: format!("cannot read: {e}"),
                }),
            },
            None => report.problems.push(Problem {
                position: "witness".into(),
                what: "no checkpoint in the trail to compare it with".into(),
            }),
        }
    }

    let sizes: BTreeSet<u64> = signed.iter().map(|(_, c)| c.size).collect();
    let scan = scan(
        File::open(log)?,
        &sizes,
        (0, pacsguard_trail::merkle::Frontier::new()),
    )?;
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
    report.signed_size = signed.iter().map(|(_, c)| c.size).max().unwrap_or(0);
    report.unsigned_records = report.records.saturating_sub(report.signed_size);
    Ok(report)
}

/// The witness keeps one file per trail, named after its origin.
pub fn witness_file_name(origin: &str) -> String {
    format!("{}.checkpoint", safe_name(origin))
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
