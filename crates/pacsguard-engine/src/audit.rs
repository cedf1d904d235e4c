//! `pacsguard audit verify|show|export`: reading the trail, from the home or from an
//! exported copy. None of these writes to the trail.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pacsguard_audit::{VerifyReport, verify};
use pacsguard_trail::note::Verifier;
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::error::EngineError;
use crate::home::Home;

/// The three files that make a trail verifiable anywhere.
const TRAIL_FILES: [&str; 3] = ["audit.log", "checkpoints.jsonl", "trail.pub"];

#[derive(Debug, Serialize)]
pub struct AuditVerifyReport {
    /// The key the checkpoints were verified with (C2SP verifier key).
    pub trail_key: String,
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub log: PathBuf,
    #[serde(flatten)]
    pub report: VerifyReport,
}

/// Where the trail to read is: the home, or a directory holding an exported copy.
fn trail_dir(home: &Home, dir: Option<&Path>) -> PathBuf {
    dir.map_or_else(|| home.dir.clone(), Path::to_path_buf)
}

fn read_verifier(path: &Path, expected: Option<&str>) -> Result<Verifier, EngineError> {
    let bad = |reason: String| EngineError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let text = fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let verifier = Verifier::parse(text.trim()).map_err(|e| bad(e.to_string()))?;
    if let Some(expected) = expected {
        let expected = Verifier::parse(expected.trim())
            .map_err(|e| EngineError::Usage(format!("--key: {e}")))?;
        if expected != verifier {
            return Err(bad(format!(
                "the trail's key {} is not the expected {}",
                verifier.encode(),
                expected.encode()
            )));
        }
    }
    Ok(verifier)
}

/// Verifies the trail offline. `key` pins the expected verifier key (otherwise the one
/// stored beside the trail is used and shown); the witness defaults to the configured one
/// when verifying the home.
pub fn audit_verify(
    home: &Home,
    dir: Option<&Path>,
    witness: Option<&Path>,
    key: Option<&str>,
) -> Result<AuditVerifyReport, EngineError> {
    let base = trail_dir(home, dir);
    let verifier = read_verifier(&base.join("trail.pub"), key)?;
    let configured_witness = if dir.is_none() && witness.is_none() && home.config_path().exists() {
        Config::load(&home.config_path())?.audit.witness
    } else {
        None
    };
    let witness = witness.map(Path::to_path_buf).or(configured_witness);
    let log = base.join("audit.log");
    let report = verify(
        &log,
        &base.join("checkpoints.jsonl"),
        &verifier,
        witness.as_deref(),
    )
    .map_err(|e| EngineError::io(&log, e))?;
    Ok(AuditVerifyReport {
        trail_key: verifier.encode(),
        log,
        report,
    })
}

/// Filters for `audit show`.
#[derive(Clone, Debug, Default)]
pub struct ShowFilter {
    pub since: Option<SystemTime>,
    pub action: Option<String>,
    /// Substring of a path the record concerns.
    pub path: Option<String>,
}

/// The records that pass the filter, oldest first (complete lines only).
pub fn audit_show(
    home: &Home,
    dir: Option<&Path>,
    filter: &ShowFilter,
) -> Result<Vec<Value>, EngineError> {
    let log = trail_dir(home, dir).join("audit.log");
    let file = fs::File::open(&log).map_err(|e| EngineError::io(&log, e))?;
    let mut out = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| EngineError::io(&log, e))?;
        let Ok(record) = serde_json::from_slice::<Value>(&line) else {
            continue; // a torn or damaged line: `audit verify` says which
        };
        if let Some(action) = &filter.action
            && record["action"].as_str() != Some(action.as_str())
        {
            continue;
        }
        if let Some(since) = filter.since {
            let time = record["time"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339(t).ok());
            if time.is_none_or(|t| t < since) {
                continue;
            }
        }
        if let Some(needle) = &filter.path {
            let mentions = record["objects"].as_array().is_some_and(|objects| {
                objects
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|p| p.contains(needle.as_str()))
            }) || record["finding"]["path"]
                .as_str()
                .is_some_and(|p| p.contains(needle.as_str()));
            if !mentions {
                continue;
            }
        }
        out.push(record);
    }
    Ok(out)
}

/// What `audit export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// The trail's three files, verifiable elsewhere with `audit verify --dir`.
    Jsonl,
    /// One DICOM audit message (PS3.15 A.5) per record, `<seq>.xml`.
    DicomXml,
}

/// Exports the trail into `out`, a new or empty directory; never overwrites anything.
pub fn audit_export(
    home: &Home,
    out: &Path,
    format: ExportFormat,
) -> Result<Vec<PathBuf>, EngineError> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(EngineError::io(
                    out,
                    "not empty; refusing to overwrite anything",
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(|e| EngineError::io(out, e))?
        }
        Err(e) => return Err(EngineError::io(out, e)),
    }
    let mut written = Vec::new();
    match format {
        ExportFormat::Jsonl => {
            for name in TRAIL_FILES {
                let from = home.dir.join(name);
                let to = out.join(name);
                fs::copy(&from, &to).map_err(|e| EngineError::io(&from, e))?;
                written.push(to);
            }
        }
        ExportFormat::DicomXml => {
            for record in audit_show(home, None, &ShowFilter::default())? {
                let seq = record
                    .get("seq")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX);
                let to = out.join(format!("{seq:010}.xml"));
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&to)
                    .and_then(|mut f| {
                        std::io::Write::write_all(
                            &mut f,
                            pacsguard_audit::audit_message(&record).as_bytes(),
                        )
                    })
                    .map_err(|e| EngineError::io(&to, e))?;
                written.push(to);
            }
        }
    }
    Ok(written)
}

/// Sends the home's trail to a syslog collector from where the last run stopped (the
/// cursor `forward.cursor` in the home); returns the number of records delivered.
pub fn audit_forward(
    home: &Home,
    target: &pacsguard_audit::syslog::Target,
) -> Result<u64, EngineError> {
    let _lock = home.lock()?;
    let verifier = read_verifier(&home.trail_key_path(), None)?;
    let forwarder = pacsguard_audit::syslog::Forwarder {
        log: home.audit_log_path(),
        cursor: home.dir.join("forward.cursor"),
        origin: verifier.name().to_string(),
    };
    forwarder
        .forward(target)
        .map_err(|e| EngineError::Usage(e.to_string()))
}
