//! The session's side of `pacsguard gateway`: the DICOM gateway (crate
//! `pacsguard-gateway`) runs its associations on tasks of its own and hands its events
//! and quarantine copies here, where the one writer of the trail and the vault keeps them
//! in order. Nothing here touches the network.

use std::path::{Path, PathBuf};

use pacsguard_events::{Action, Event, Finding, Outcome};
use pacsguard_fs::{Meta, Timestamp};
use pacsguard_screen::Screener;

use super::Session;
use super::scan::{ScanRequest, build_screener};
use crate::error::EngineError;
use crate::home::hostname;
use crate::vault::{Original, QuarantineRecord, Vault};

/// The screener `scan` would build for `--rules DIR` and `--hashlist FILE`: the gateway
/// screens data sets with exactly what `scan` screens files with.
pub fn screener(
    rules: Option<PathBuf>,
    hashlist: Option<PathBuf>,
) -> Result<Screener, EngineError> {
    build_screener(&ScanRequest {
        rules,
        hashlist,
        ..ScanRequest::default()
    })
}

impl Session {
    /// Writes events of a service beside this session (the gateway) to the trail, in the
    /// order given.
    pub fn record_events(&mut self, events: Vec<Event>) -> Result<(), EngineError> {
        for event in events {
            self.emit(event)?;
        }
        Ok(())
    }

    /// Makes what was recorded durable and signs a checkpoint over it.
    pub fn sign(&mut self) -> Result<(), EngineError> {
        Ok(self.bus.flush()?)
    }

    /// Keeps a copy of bytes received over the network (a data set as a Part 10 file)
    /// that raised an alert, under `name` (where it came from), and records it;
    /// `forwarded` says whether the instance went on (false: refused by its route).
    pub fn quarantine_received(
        &mut self,
        name: &str,
        bytes: &[u8],
        findings: &[Finding],
        forwarded: bool,
    ) -> Result<QuarantineRecord, EngineError> {
        let (record, event) =
            quarantine_received(&self.home, &self.actor, name, bytes, findings, forwarded)?;
        self.emit(event)?;
        Ok(record)
    }
}

/// [`Session::quarantine_received`] for a service beside the trail's writer (the gateway
/// inside `serve`, whose session the watcher owns): the copy is put into the vault here
/// (the vault takes concurrent writers), and the event that records it is returned for
/// the caller to hand to the writer (its inbox).
pub fn quarantine_received(
    home: &crate::home::Home,
    actor: &pacsguard_events::Actor,
    name: &str,
    bytes: &[u8],
    findings: &[Finding],
    forwarded: bool,
) -> Result<(QuarantineRecord, Event), EngineError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let meta = Meta {
        size: bytes.len() as u64,
        mode: 0o400,
        mtime: Timestamp { sec: now, nsec: 0 },
        ..Meta::default()
    };
    let path = Path::new(name);
    let original = Original {
        path,
        meta: &meta,
        bytes,
        findings,
    };
    let actor_name = match &actor.sudo_user {
        Some(sudo) => format!("{} (sudo from {sudo})", actor.user),
        None => actor.user.clone(),
    };
    let vault = Vault::new(home.quarantine_dir());
    let record = vault.put(&original, &hostname(), &actor_name)?;
    let detail = format!(
        "received over DICOM and copied into the vault as SHA-256 {} ({} bytes); {}",
        record.sha256,
        record.size,
        if forwarded {
            "the instance was forwarded unchanged"
        } else {
            "the instance was refused by its route and not forwarded"
        }
    );
    let event = Event::new(actor.clone(), Action::Quarantine, Outcome::Success, detail)
        .with_objects(vec![path.to_path_buf()]);
    Ok((record, event))
}
