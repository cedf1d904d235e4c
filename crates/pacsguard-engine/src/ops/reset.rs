//! A home whose trail is gone while its signing key remains, and `pacsguard audit reinit`.
//!
//! `init` writes the key last, after the trail's first checkpoint, so a key without a
//! trail never happens by itself: `audit.log` and `checkpoints.jsonl` (and usually
//! `pacsguard.db`) were deleted or emptied, which hides everything the home recorded.
//! Every command refuses such a home with a `trail-reset` alert (exit 2) and writes
//! nothing, until a person has checked why and runs `audit reinit --reason`: that starts a
//! new trail, under a new origin (one key never signs two unrelated trees under one
//! name), whose first records are the alert and the person's reason.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use pacsguard_audit::WitnessMode;
use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use serde::Serialize;

use super::Session;
use super::accept::MAX_REASON_BYTES;
use crate::error::EngineError;
use crate::home::Home;

#[derive(Debug, Serialize)]
pub struct ReinitReport {
    /// The new trail's verifier key (C2SP), under its new origin.
    pub trail_key: String,
    /// Where the forwarding cursor of the old trail was moved, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_cursor: Option<String>,
}

/// Whether a file of the trail is absent or empty (anything else is opened, and refused
/// if it is not a regular file).
fn absent_or_empty(path: &Path) -> Result<bool, EngineError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_file() && meta.len() == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(EngineError::io(path, e)),
    }
}

/// Whether the home's trail is gone: no record and no checkpoint.
pub(crate) fn trail_is_gone(home: &Home) -> Result<bool, EngineError> {
    Ok(absent_or_empty(&home.audit_log_path())? && absent_or_empty(&home.checkpoints_path())?)
}

/// The `trail-reset` alert.
pub(crate) fn finding(home: &Home) -> Finding {
    let path = home.store_path();
    let store = if std::fs::symlink_metadata(&path).is_err() {
        ", and the store pacsguard.db with them".to_string()
    } else {
        // Read only when it is there: opening a missing store would create one.
        // Read only: a journal beside it is never rolled in (review r28-store).
        match pacsguard_store::Store::open_read_only(&path)
            .and_then(|s| s.map_or(Ok(0), |s| s.generation()))
        {
            Ok(0) => String::new(),
            Ok(generation) => format!(
                "; the store's signature row names baseline generation {generation} (read as it stands, not verified: the trail that recorded its signing is what is gone)"
            ),
            Err(_) => String::new(),
        }
    };
    Finding::new(
        home.dir.clone(),
        FindingKind::TrailReset,
        Severity::Alert,
        format!(
            "the audit trail is gone (audit.log and checkpoints.jsonl deleted or emptied{store}) while the home's signing key remains: the home was reset, which hides everything it recorded. Nothing was done and nothing was written. Keep the home as evidence; once a person has checked why, `pacsguard audit reinit --reason TEXT` starts a new trail on the record"
        ),
    )
}

pub(crate) fn tampered(home: &Home) -> EngineError {
    EngineError::Tampered(Box::new(finding(home)))
}

/// Before the new trail is opened: the old trail's forwarding cursor is moved aside (its
/// position belongs to the old trail), and the trail gets a new origin.
pub(crate) fn prepare(home: &Home, key: &SigningKey) -> Result<(), EngineError> {
    home.new_trail_origin(key, super::now_unix())
}

/// The old trail's delivery cursors (the `delivery` directory, and the single
/// `forward.cursor` of earlier versions) are moved aside together: their positions
/// belong to the old trail. Returns where the last one went.
fn move_cursor_aside(home: &Home) -> Result<Option<PathBuf>, EngineError> {
    let stamp = super::now_unix();
    let mut moved = None;
    for name in [
        pacsguard_audit::delivery::LEGACY_CURSOR,
        pacsguard_audit::delivery::DELIVERY_DIR,
    ] {
        let cursor = home.dir.join(name);
        if std::fs::symlink_metadata(&cursor).is_err() {
            continue;
        }
        let aside = home.dir.join(format!("{name}.before-reinit-{stamp}"));
        std::fs::rename(&cursor, &aside).map_err(|e| EngineError::io(&cursor, e))?;
        moved = Some(aside);
    }
    Ok(moved)
}

impl Session {
    /// Starts a new trail in a home whose trail is gone, on the record.
    pub fn trail_reinit(home: Home, reason: &str) -> Result<ReinitReport, EngineError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::Usage(
                "--reason must say why the trail is started anew".into(),
            ));
        }
        if reason.len() > MAX_REASON_BYTES {
            return Err(EngineError::Usage(format!(
                "--reason is longer than {MAX_REASON_BYTES} bytes"
            )));
        }
        let evidence = finding(&home);
        let (mut session, _) = Session::open_with(home, WitnessMode::Required, true)?;
        let old_cursor = move_cursor_aside(&session.home)?;
        let mut event = Event::of_finding(session.actor.clone(), evidence);
        event.action = Action::Audit;
        session.emit(event)?;
        let moved = old_cursor.as_ref().map_or(String::new(), |p| {
            format!(
                "; the old trail's delivery cursors were moved to {}",
                pacsguard_events::escape_path(p)
            )
        });
        session.finish(
            Event::new(
                session.actor.clone(),
                Action::Audit,
                Outcome::Success,
                format!(
                    "{} after it was found gone: a new trail begins here, under a new origin{moved}",
                    pacsguard_audit::TRAIL_REINIT_WORDS
                ),
            )
            .with_objects(vec![session.home.dir.clone()])
            .with_reason(reason),
        )?;
        let trail_key = crate::files::read_text(
            &session.home.trail_key_path(),
            crate::files::MAX_SMALL_FILE_BYTES,
        )?
        .unwrap_or_default()
        .trim()
        .to_string();
        Ok(ReinitReport {
            trail_key,
            old_cursor: old_cursor.map(|p| pacsguard_events::escape_path(&p)),
        })
    }
}
