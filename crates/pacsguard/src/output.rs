//! What the commands print: one JSON document with `--json`, short human text otherwise.
//! Everything is built in memory and written once, so a closed pipe is handled in one place.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::Result;
use pacsguard_engine::{
    AcceptReport, AuditVerifyReport, CheckReport, DestinationReport, DiffReport, ExportReport,
    GenerationsReport, InitReport, MediaReport, ProfileReport, ProtectReport, QuarantineRecord,
    Readiness, RecoverReport, ReinitReport, RootSummary, SanitizeReport, ScanReport,
    StoreReinitReport, VerifiedManifest, WatchOutput, WatchReport, WitnessInitReport,
};
use pacsguard_events::{Finding, SeverityCounts, escape_bytes, escape_path};
use serde::Serialize;

/// 1 when a warning or alert needs someone's attention, else 0.
pub fn status(counts: &SeverityCounts) -> ExitCode {
    if counts.needs_attention() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    command: &'static str,
    #[serde(flatten)]
    report: &'a T,
}

fn json<T: Serialize>(command: &'static str, report: &T) -> Result<()> {
    write_stdout(&json_text(command, report)?)
}

fn json_text<T: Serialize>(command: &'static str, report: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(&Document { command, report })?;
    text.push('\n');
    Ok(text)
}

/// Writes to stdout. A reader that stopped early (`| head`) is not an error: the exit
/// status still tells the result. Every other write failure is.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `init`'s one JSON document: the home, and with `--passphrase` the protected
/// profile-signing key made right after (`profile_key`, as `key protect` reports it).
#[derive(Serialize)]
struct InitDocument<'a> {
    #[serde(flatten)]
    home: &'a InitReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_key: Option<&'a ProtectReport>,
}

pub fn init(report: &InitReport, protected: Option<&ProtectReport>, as_json: bool) -> Result<()> {
    if as_json {
        return json(
            "init",
            &InitDocument {
                home: report,
                profile_key: protected,
            },
        );
    }
    let home = escape_path(&report.home);
    let mut text = String::new();
    let _ = writeln!(text, "initialized PacsGuard home {home}");
    let _ = writeln!(text, "signing key fingerprint: {}", report.key_fingerprint);
    let _ = writeln!(
        text,
        "keep a copy of this fingerprint off this machine: it identifies every signed profile"
    );
    if report.config_written {
        let _ = writeln!(
            text,
            "list the trees to guard in {home}/config.toml, or run: pacsguard profile PATH"
        );
    }
    write_stdout(&text)?;
    match protected {
        Some(protected) => self::protected(protected, false),
        None => Ok(()),
    }
}

pub fn protected(report: &ProtectReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("key-protect", report);
    }
    write_stdout(&format!(
        "profiles are signed by the new key {}, protected by a passphrase (profile, accept, recover --apply, profile export and media import ask for it; check, watch, scan and audit verify do not)\n\
         baseline generation {} and {} kept generation(s) signed by it; the audit trail stays signed by the home key {}\n\
         keep a copy of the new fingerprint off this machine, and the passphrase: without it no profile can be signed\n",
        report.key_fingerprint,
        report.generation,
        report.generations_resigned,
        report.trail_key_fingerprint
    ))
}

pub fn passphrase_changed(
    report: &pacsguard_engine::PassphraseReport,
    as_json: bool,
) -> Result<()> {
    write_stdout(&passphrase_changed_text(report, as_json)?)
}

/// What `key passphrase` prints, for this process or for one that asked a running guard.
pub fn passphrase_changed_text(
    report: &pacsguard_engine::PassphraseReport,
    as_json: bool,
) -> Result<String> {
    if as_json {
        return json_text("key-passphrase", report);
    }
    Ok(format!(
        "the profile-signing key {} is sealed under the new passphrase; nothing was signed again\n{}\n",
        report.key_fingerprint,
        pacsguard_engine::OLD_SEALING_WORDS
    ))
}

pub fn profile(report: &ProfileReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("profile", report);
    }
    let mut text = findings_text(&report.findings);
    if report.unlisted_findings > 0 {
        let _ = writeln!(
            text,
            "{} more findings not listed (over {}): they are on the audit trail",
            report.unlisted_findings,
            pacsguard_engine::MAX_PROFILE_FINDINGS
        );
    }
    for root in &report.roots {
        let _ = writeln!(text, "profiled {}", describe_root(root));
        for dir in &root.kept_unlisted {
            let _ = writeln!(
                text,
                "warning: {} could not be listed: what the profile holds below it was kept as profiled, not verified",
                escape_path(dir)
            );
        }
    }
    let _ = writeln!(
        text,
        "baseline generation {} signed with key {}",
        report.generation, report.key_fingerprint
    );
    write_stdout(&text)
}

pub fn check(report: &CheckReport, as_json: bool) -> Result<()> {
    write_stdout(&check_text(report, as_json)?)
}

/// What `check` prints, for this process or for one that asked a running guard.
pub fn check_text(report: &CheckReport, as_json: bool) -> Result<String> {
    if as_json {
        return json_text("check", report);
    }
    let mut text = findings_text(&report.findings);
    for root in &report.roots {
        let _ = writeln!(text, "checked {}", describe_root(root));
    }
    let c = &report.counts;
    let verdict = if c.needs_attention() {
        "DIFFERENCES FOUND"
    } else {
        "intact"
    };
    let _ = writeln!(
        text,
        "{verdict}: {} alert, {} warning, {} info (baseline generation {}, key {}{})",
        c.alert,
        c.warning,
        c.info,
        report.generation,
        report.key_fingerprint,
        if report.fast { ", --fast" } else { "" }
    );
    Ok(text)
}

pub fn accept(report: &AcceptReport, as_json: bool) -> Result<()> {
    write_stdout(&accept_text(report, as_json)?)
}

/// What `accept` prints, for this process or for one that asked a running guard.
pub fn accept_text(report: &AcceptReport, as_json: bool) -> Result<String> {
    if as_json {
        return json_text("accept", report);
    }
    let mut text = if !report.removed_roots.is_empty() {
        let named: Vec<String> = report
            .removed_roots
            .iter()
            .map(|p| escape_path(p))
            .collect();
        format!(
            "removed from the profile: {}; baseline generation {}\n",
            named.join(", "),
            report.generation
        )
    } else if report.accepted.is_empty() {
        format!(
            "nothing differs from the baseline; nothing accepted (generation {})\n",
            report.generation
        )
    } else {
        let mut text = findings_text(&report.accepted);
        let _ = writeln!(
            text,
            "accepted {} differences into baseline generation {}",
            report.accepted.len(),
            report.generation
        );
        text
    };
    for root in &report.still_configured {
        let _ = writeln!(
            text,
            "note: {} is still listed in config.toml: take it out there too, or `check` warns config-differs",
            escape_path(root)
        );
    }
    for dir in &report.kept_unlisted {
        let _ = writeln!(
            text,
            "warning: {} could not be listed: what the profile holds below it was kept as profiled, not verified and not accepted",
            escape_path(dir)
        );
    }
    Ok(text)
}

fn describe_root(root: &RootSummary) -> String {
    format!(
        "{} ({}, {}): {} files, {} directories, {} other, {} bytes; hashed {} files, {} bytes",
        escape_path(&root.path),
        root.policy,
        root.hash,
        root.files,
        root.directories,
        root.other,
        root.bytes,
        root.hashed_files,
        root.hashed_bytes
    )
}

/// Most serious first, then by path, so the top of the screen is what matters.
/// Findings an operation made but could not record (the error follows on stderr).
/// Findings that could not be recorded on the trail (a full home disk): shown all the
/// same, with the error, before the command fails.
pub fn unrecorded(
    command: &'static str,
    findings: &[Finding],
    error: &str,
    recorded: bool,
    as_json: bool,
) -> Result<()> {
    if as_json {
        #[derive(Serialize)]
        struct Unrecorded<'a> {
            recorded: bool,
            error: &'a str,
            findings: &'a [Finding],
        }
        return json(
            command,
            &Unrecorded {
                recorded,
                error,
                findings,
            },
        );
    }
    write_stdout(&findings_text(findings))
}

fn findings_text(findings: &[Finding]) -> String {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
    });
    let mut text = String::new();
    for finding in sorted {
        let _ = writeln!(text, "{finding}");
    }
    text
}

pub fn audit_verify(report: &AuditVerifyReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("audit verify", report);
    }
    let r = &report.report;
    let mut text = String::new();
    for problem in &r.problems {
        let _ = writeln!(
            text,
            "TAMPERED {}",
            escape_bytes(problem.to_string().as_bytes())
        );
    }
    if let Some((offset, length)) = r.torn_tail {
        let _ = writeln!(
            text,
            "torn tail: {length} bytes at byte {offset} are an incomplete record (a crash mid-write), not part of the trail"
        );
    }
    if let Some((offset, length)) = r.torn_checkpoint {
        let _ = writeln!(
            text,
            "torn checkpoint: {length} bytes at byte {offset} of the checkpoints are an incomplete checkpoint line (a write cut short by a full disk or a crash), not a checkpoint; the next command cuts it off"
        );
    }
    for reset in &report.store_resets {
        let _ = writeln!(text, "store-reset {}", escape_bytes(reset.as_bytes()));
    }
    for warning in &report.warnings {
        let _ = writeln!(text, "warning: {}", escape_bytes(warning.as_bytes()));
    }
    let verdict = if !r.is_intact() {
        "AUDIT TRAIL ALTERED"
    } else if !report.warnings.is_empty() {
        "intact, but not witnessed (see the warning)"
    } else if r.unsigned_records > 0 {
        "intact, but the newest records are not covered by a checkpoint yet"
    } else {
        "intact"
    };
    let _ = writeln!(
        text,
        "{verdict}: {} records, {} checkpoints, {} records signed, {} unsigned (log {}, key {})",
        r.records,
        r.checkpoints,
        r.signed_size,
        r.unsigned_records,
        escape_path(&report.log),
        report.trail_key
    );
    write_stdout(&text)
}

pub fn audit_show(records: &[serde_json::Value], as_json: bool) -> Result<()> {
    if as_json {
        return json("audit show", &serde_json::json!({ "records": records }));
    }
    let mut text = String::new();
    for r in records {
        let field = |v: &serde_json::Value| escape_bytes(v.as_str().unwrap_or("").as_bytes());
        let _ = writeln!(
            text,
            "{:>6} {} {} {} {} {}",
            r["seq"],
            field(&r["time"]),
            field(&r["actor"]["user"]),
            field(&r["action"]),
            field(&r["outcome"]),
            field(&r["detail"])
        );
    }
    write_stdout(&text)
}

pub fn audit_export(written: &[std::path::PathBuf], verifiable: bool) -> Result<()> {
    let mut text = String::new();
    let dir = written
        .first()
        .and_then(|p| p.parent())
        .map(escape_path)
        .unwrap_or_default();
    let _ = writeln!(text, "wrote {} files to {dir}", written.len());
    if verifiable {
        let _ = writeln!(
            text,
            "verify the copy anywhere with: pacsguard audit verify --dir {dir} --key \"$(cat {dir}/trail.pub)\""
        );
    }
    write_stdout(&text)
}

pub fn witness_init(report: &WitnessInitReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("audit-witness-init", report);
    }
    write_stdout(&format!(
        "witness {} re-initialised ({}); the act and its reason are on the audit trail\n",
        escape_path(&report.witness),
        match report.previous {
            Some(size) => format!("it held a checkpoint of {size} records"),
            None => "it held no checkpoint of this trail".into(),
        }
    ))
}

/// Tampering found before a command could run: the finding (stdout, one JSON document
/// with `--json`), and the same words on stderr.
pub fn tampered(finding: &Finding, as_json: bool) -> Result<()> {
    eprintln!("pacsguard: {}", escape_bytes(finding.detail.as_bytes()));
    if as_json {
        #[derive(Serialize)]
        struct Tampered<'a> {
            error: &'a str,
            findings: [&'a Finding; 1],
        }
        return json(
            "tampered",
            &Tampered {
                error: &finding.detail,
                findings: [finding],
            },
        );
    }
    write_stdout(&findings_text(std::slice::from_ref(finding)))
}

pub fn store_reinit(report: &StoreReinitReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("store-reinit", report);
    }
    let mut text = format!(
        "a new, empty store begins at baseline generation {}, on the record with the reason; every root must be profiled (and approved) again\nthe store was refused: {}\n",
        report.generation,
        escape_bytes(report.refusal.as_bytes())
    );
    if report.evidence.is_empty() {
        text.push_str("no store file was left to keep (it was deleted)\n");
    }
    for kept in &report.evidence {
        let _ = writeln!(
            text,
            "kept as evidence: {} (was {}; sha256 {}, {} bytes)",
            kept.kept_as, kept.was, kept.sha256, kept.bytes
        );
    }
    write_stdout(&text)
}

pub fn trail_reinit(report: &ReinitReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("audit-reinit", report);
    }
    let mut text = format!(
        "a new audit trail begins, on the record with the reason; its key: {}\n",
        report.trail_key
    );
    if let Some(cursor) = &report.old_cursor {
        let _ = writeln!(
            text,
            "the old trail's delivery cursors were moved to {cursor}"
        );
    }
    write_stdout(&text)
}

/// An error as one JSON document on stdout, for `--json` callers that parse stdout only
/// (the message also goes to stderr as always).
pub fn error_json(message: &str) -> Result<()> {
    let mut text = error_json_text(message);
    text.push('\n');
    write_stdout(&text)
}

/// The `--json` error document, one line without its newline.
pub fn error_json_text(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

pub fn audit_forward(sent: u64, to: &str) -> Result<()> {
    write_stdout(&format!(
        "forwarded {sent} records to {}\n",
        escape_bytes(to.as_bytes())
    ))
}

pub fn scan(report: &ScanReport, as_json: bool) -> Result<()> {
    write_stdout(&scan_text(report, as_json)?)
}

/// What `scan` prints, for this process or for one that asked a running guard.
pub fn scan_text(report: &ScanReport, as_json: bool) -> Result<String> {
    if as_json {
        return json_text("scan", report);
    }
    let mut text = findings_text(&report.findings);
    for record in &report.quarantined {
        let _ = writeln!(
            text,
            "quarantined {} as {} (original untouched)",
            record.original_path, record.sha256
        );
    }
    let c = &report.counts;
    let verdict = if c.alert > 0 {
        "MALICIOUS CONTENT FOUND"
    } else if c.warning > 0 {
        "needs review"
    } else {
        "clean"
    };
    let _ = writeln!(
        text,
        "{verdict}: {} alert, {} warning, {} info in {} files ({}, {} DICOM; {} YARA rules, {} listed hashes)",
        c.alert,
        c.warning,
        c.info,
        report.files,
        human_bytes(report.bytes),
        report.dicom_files,
        report.rules,
        report.hashlist_entries
    );
    Ok(text)
}

pub fn media_import(report: &MediaReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("media-import", report);
    }
    let mut text = findings_text(&report.findings);
    for copy in &report.copied {
        let _ = writeln!(
            text,
            "copied   {} -> {} (SHA-256 {})",
            escape_bytes(copy.path.as_bytes()),
            copy.file,
            copy.sha256
        );
    }
    for refused in &report.refused {
        let _ = writeln!(
            text,
            "REFUSED  {} ({})",
            escape_bytes(refused.path.as_bytes()),
            refused.kinds.join(", ")
        );
    }
    for expected in &report.expected {
        let _ = writeln!(
            text,
            "expected {} ({}, {} bytes): left on the medium, never run",
            escape_bytes(expected.path.as_bytes()),
            expected.what,
            expected.size
        );
    }
    let c = &report.counts;
    let verdict = if c.alert > 0 {
        "MALICIOUS CONTENT FOUND"
    } else if report.needs_attention() {
        "needs review"
    } else {
        "clean"
    };
    let _ = writeln!(
        text,
        "{verdict}: {} of {} referenced instances copied into {}, {} refused, {} expected files left on the medium ({} files, {} screened); {} alert, {} warning, {} info\nsigned manifest: {}",
        report.copied.len(),
        report.referenced,
        escape_path(&report.destination),
        report.refused.len(),
        report.expected.len(),
        report.files,
        human_bytes(report.bytes),
        c.alert,
        c.warning,
        c.info,
        escape_path(&report.manifest)
    );
    write_stdout(&text)
}

pub fn generations(report: &GenerationsReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("profile-generations", report);
    }
    let mut text = match report.store.generation {
        0 => "store: no baseline signed yet\n".to_owned(),
        generation => format!(
            "store: generation {generation} verified ({} entries, every chunk against its signed leaf)\n",
            report.store.entries
        ),
    };
    for g in &report.generations {
        let _ = writeln!(
            text,
            "generation {:>6}  created {}  {} entries in {} root(s)",
            g.generation,
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(g.created.max(0) as u64)
            ),
            g.entries,
            g.roots
        );
    }
    if report.generations.is_empty() {
        text.push_str("no generation kept yet (each profile or accept keeps one)\n");
    }
    write_stdout(&text)
}

pub fn media_verify(
    verified: &VerifiedManifest,
    destination: Option<&DestinationReport>,
    as_json: bool,
) -> Result<()> {
    if as_json {
        #[derive(serde::Serialize)]
        struct Both<'a> {
            #[serde(flatten)]
            manifest: &'a VerifiedManifest,
            #[serde(skip_serializing_if = "Option::is_none")]
            destination: Option<&'a DestinationReport>,
        }
        return json(
            "media-verify",
            &Both {
                manifest: verified,
                destination,
            },
        );
    }
    let body = &verified.body;
    let count = |field: &str| body[field].as_array().map_or(0, Vec::len);
    if let Some(report) = destination {
        let mut text = findings_text(&report.findings);
        let _ = writeln!(
            text,
            "{}: {} of {} copies present with the manifest's SHA-256; {} alert(s), {} warning(s)",
            escape_path(&report.destination),
            report.matching,
            count("copied"),
            report.counts.alert,
            report.counts.warning,
        );
        write_stdout(&text)?;
    }
    write_stdout(&format!(
        "manifest verified, signed by {}: {} copied, {} refused, {} expected, from {} into {}{}\n",
        verified.signer_fingerprint,
        count("copied"),
        count("refused"),
        count("expected"),
        body["source"].as_str().unwrap_or("?"),
        body["destination"].as_str().unwrap_or("?"),
        body["incomplete"]
            .as_str()
            .map(|e| format!(" (INCOMPLETE: {e})"))
            .unwrap_or_default()
    ))
}

pub fn sanitize(report: &SanitizeReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("sanitize", report);
    }
    let mut text = findings_text(&report.remaining);
    let _ = writeln!(
        text,
        "wrote {} with the preamble zeroed (it held: {}); {} bytes after it verified identical to {}",
        escape_path(&report.output),
        report.preamble_was,
        report.identical_bytes,
        escape_path(&report.input)
    );
    let _ = writeln!(text, "output SHA-256 {}", report.output_sha256);
    if report.counts.needs_attention() {
        let _ = writeln!(
            text,
            "the copy still carries the findings above: sanitize clears the preamble only"
        );
    }
    write_stdout(&text)
}

pub fn export(report: &ExportReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("profile export", report);
    }
    write_stdout(&format!(
        "exported baseline generation {} ({} entries) to {}, signed by {}\n",
        report.generation,
        report.entries,
        escape_path(&report.out),
        report.key_fingerprint
    ))
}

pub fn diff(report: &DiffReport, as_json: bool) -> Result<()> {
    write_stdout(&diff_text(report, as_json)?)
}

/// What `diff` prints, for this process or for one that asked a running guard.
pub fn diff_text(report: &DiffReport, as_json: bool) -> Result<String> {
    if as_json {
        return json_text("diff", report);
    }
    let mut text = String::new();
    for (name, side) in [("a", &report.a), ("b", &report.b)] {
        let _ = writeln!(
            text,
            "{name}: {} (generation {}, signed by {})",
            side.source, side.generation, side.key_fingerprint
        );
    }
    for dir in &report.directories {
        let _ = writeln!(text, "{}/", escape_path(&dir.directory));
        for change in &dir.changes {
            let name = change.path.file_name().map_or_else(
                || escape_path(&change.path),
                |n| escape_bytes(n.as_encoded_bytes()),
            );
            let _ = writeln!(
                text,
                "  {:<16} {name}: {}",
                change.kind.as_str(),
                change.detail
            );
        }
    }
    let c = &report.counts;
    let _ = writeln!(
        text,
        "{} added, {} removed, {} moved, {} changed",
        c.added, c.removed, c.moved, c.changed
    );
    Ok(text)
}

pub fn recover(report: &RecoverReport, as_json: bool) -> Result<()> {
    if as_json {
        return json("recover", report);
    }
    let mut text = findings_text(&report.problems);
    for cleaned in &report.cleaned {
        let _ = writeln!(
            text,
            "removed a temporary file of an interrupted recover: {}",
            escape_path(cleaned)
        );
    }
    for file in &report.files {
        let status = match file.status {
            pacsguard_engine::Status::Recoverable => "recoverable",
            pacsguard_engine::Status::NotRecoverable => "NOT RECOVERABLE",
            pacsguard_engine::Status::Restored => "restored",
            pacsguard_engine::Status::Failed => "FAILED",
        };
        let _ = write!(
            text,
            "{status:<15} {} ({})",
            escape_path(&file.path),
            file.damage
        );
        if let Some(source) = &file.source {
            let _ = write!(text, " from {source}");
        }
        if let Some(detail) = &file.detail {
            let _ = write!(text, ": {}", escape_bytes(detail.as_bytes()));
        }
        text.push('\n');
    }
    let c = &report.counts;
    let _ = writeln!(
        text,
        "{} damaged: {} recoverable, {} not recoverable{}",
        c.damaged,
        c.recoverable + c.restored + c.failed,
        c.not_recoverable,
        if report.apply {
            format!(", {} restored, {} failed", c.restored, c.failed)
        } else {
            String::new()
        }
    );
    if let Some(generation) = report.new_generation {
        let _ = writeln!(
            text,
            "the restored files' new inodes are signed into baseline generation {generation}"
        );
    }
    if !report.apply && c.recoverable > 0 {
        let _ = writeln!(
            text,
            "nothing was written; run again with --apply to restore"
        );
    }
    write_stdout(&text)
}

pub fn readiness(report: &Readiness, as_json: bool) -> Result<()> {
    if as_json {
        return json("recover --readiness", report);
    }
    let mut text = findings_text(&report.problems);
    for missing in &report.unrestorable {
        let _ = write!(text, "{:<8} {}", missing.state, escape_path(&missing.path));
        if let Some(copy) = &missing.backup_copy {
            let _ = write!(text, " (the backup's {} differs)", escape_path(copy));
        }
        text.push('\n');
    }
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            100.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    for root in &report.roots {
        let _ = writeln!(
            text,
            "{}: {} of {} files ({:.1}%), {} of {} bytes ({:.1}%) restorable byte-identical",
            escape_path(&root.path),
            root.restorable_files,
            root.files,
            percent(root.restorable_files, root.files),
            root.restorable_bytes,
            root.bytes,
            percent(root.restorable_bytes, root.bytes)
        );
    }
    write_stdout(&text)
}

pub fn quarantine_list(records: &[QuarantineRecord], as_json: bool) -> Result<()> {
    if as_json {
        #[derive(Serialize)]
        struct Listed<'a> {
            records: &'a [QuarantineRecord],
        }
        return json("quarantine list", &Listed { records });
    }
    let mut text = String::new();
    for record in records {
        let first = record
            .findings
            .iter()
            .find(|f| f.severity == "alert")
            .or(record.findings.first());
        let _ = writeln!(
            text,
            "{}  {}  {}  {}",
            &record.sha256[..16.min(record.sha256.len())],
            record.quarantined_at,
            record.original_path,
            first.map_or(String::new(), |f| f.kind.clone())
        );
    }
    let _ = writeln!(text, "{} quarantined copies", records.len());
    write_stdout(&text)
}

pub fn quarantine_show(
    records: &[QuarantineRecord],
    content: &std::path::Path,
    as_json: bool,
) -> Result<()> {
    #[derive(Serialize)]
    struct Shown<'a> {
        content: String,
        records: &'a [QuarantineRecord],
    }
    let shown = Shown {
        content: escape_path(content),
        records,
    };
    if as_json {
        return json("quarantine show", &shown);
    }
    let mut text = String::new();
    for record in records {
        let _ = writeln!(text, "sha256      {}", record.sha256);
        let _ = writeln!(text, "blake3      {}", record.blake3);
        let _ = writeln!(text, "size        {}", record.size);
        let _ = writeln!(text, "original    {}", record.original_path);
        let _ = writeln!(
            text,
            "owner/mode  {}:{} {}",
            record.uid, record.gid, record.mode
        );
        let _ = writeln!(
            text,
            "copied      {} on {} by {}",
            record.quarantined_at, record.host, record.actor
        );
        for finding in &record.findings {
            let _ = writeln!(
                text,
                "  {:<7} {:<20} {}",
                finding.severity, finding.kind, finding.detail
            );
        }
        text.push('\n');
    }
    if records.is_empty() {
        let _ = writeln!(
            text,
            "no record: the quarantine was interrupted (killed) after the copy was written and before its record; `pacsguard audit show --action quarantine` names what was copied"
        );
    }
    let _ = writeln!(text, "content (verified) {}", shown.content);
    write_stdout(&text)
}

pub fn quarantine_export(sha256: &str, out: &std::path::Path) -> Result<()> {
    write_stdout(&format!(
        "wrote {} (SHA-256 {sha256}, mode 0400): it is the malicious file; open it only for analysis\n",
        escape_path(out)
    ))
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `watch` prints each finding as it happens: a line of text, or with `--json` one JSON
/// object per line (the finding and the time it was reported), through the outlet (a
/// stalled stdout never holds up the watcher, which writes the trail). Notices go to
/// stderr.
pub struct WatchLines {
    json: bool,
    outlet: std::sync::Arc<crate::outlet::Outlet>,
}

#[derive(Serialize)]
struct TimedFinding<'a> {
    time: String,
    #[serde(flatten)]
    finding: &'a Finding,
}

impl WatchLines {
    pub fn new(json: bool, outlet: std::sync::Arc<crate::outlet::Outlet>) -> WatchLines {
        WatchLines { json, outlet }
    }
}

impl WatchOutput for WatchLines {
    /// `watch` has no console: nothing is shown there to accept.
    fn open_digest(&self, _root: &str) -> Option<String> {
        None
    }

    /// Nothing kept open here: each finding was printed as it came.
    fn settled(&mut self, _settled: pacsguard_engine::Settled<'_>) {}

    fn finding(&mut self, finding: &Finding) {
        let line = if self.json {
            let timed = TimedFinding {
                time: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
                finding,
            };
            serde_json::to_string(&timed).unwrap_or_default()
        } else {
            finding.to_string()
        };
        // The finding is already on the audit trail; a closed or stalled stdout must not
        // stop the watcher (the outlet drops and counts what it cannot take).
        self.outlet.line(line);
    }

    fn notice(&mut self, text: &str) {
        // The watcher writes the trail: through stderr's outlet, so a closed or stopped
        // stderr reader never holds it up (eprintln! would panic, a write would wait).
        crate::outlet::say(format!("pacsguard watch: {text}"));
    }
}

pub fn watch_stopped(report: &WatchReport) {
    let _ = writeln!(
        io::stderr(),
        "pacsguard watch: stopped cleanly after {} notices and {} verifications ({} overflows, {} scrub cycles, {} watches, {} directories polled): {} alert, {} warning, {} info",
        report.notices,
        report.verifications,
        report.overflows,
        report.scrub_cycles,
        report.watches,
        report.polled_directories,
        report.counts.alert,
        report.counts.warning,
        report.counts.info
    );
}
