//! The operations, over an open [`Session`].

mod accept;
mod check;
mod diff;
mod export;
mod gateway;
mod generations;
mod guard_sight;
mod held_findings;
mod keys;
mod media;
mod profile;
mod quarantine;
mod recover;
mod remove_root;
mod requests;
mod reset;
mod root_presence;
mod sanitize;
mod scan;
pub(crate) mod store_companions;
mod store_reset;
mod streamed_check;
mod streamed_patch;
mod streamed_rewrite;
mod targets;
mod unlisted;
mod watch;
mod witness;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use nix::fcntl::Flock;
use pacsguard_audit::{Opening, TrailOptions, WitnessMode};
use pacsguard_events::{Action, Actor, Event, EventBus, Finding, Inbox, Outcome};
use pacsguard_fs::{Content, EntryType, HashRequest, Tree, WalkError};
use pacsguard_profile::{
    Baseline, Policy, ProfileError, RootProfile, RootSpec, hash_request, hash_tree,
    reuse_unchanged, walk_root,
};
use pacsguard_store::{SignedInfo, Store};
use serde::Serialize;

pub use accept::{AcceptReport, AcceptRequest};
pub use check::{CheckReport, CheckRequest};
pub use diff::{DiffCounts, DiffReport, DirectoryChanges, ProfileRef, Side};
pub use export::{ExportReport, MAX_EXPORT_BYTES, read_trusted_key};
pub use gateway::{quarantine_received, screener};
pub use generations::{
    GenerationsReport, KeptGeneration, MAX_KEPT_GENERATION_ENTRIES, MAX_KEPT_GENERATIONS,
};
pub use guard_sight::Shown;
pub use held_findings::MAX_PROFILE_FINDINGS;
pub use keys::{OLD_SEALING_WORDS, PassphraseReport, ProtectReport};
pub use media::{
    Copied, DestinationReport, Expected, MAX_MANIFEST_BYTES, MAX_MEDIA_FILE_BYTES,
    MAX_REPORTED_EXTRA, MAX_UID_NAME_LEN, MediaReport, MediaRequest, Refused, VerifiedManifest,
    verify_destination, verify_manifest,
};
pub use profile::{ProfileReport, ProfileRequest};
pub use recover::{
    BackupSummary, MAX_ARCHIVE_MEMBERS, MAX_CACHE_BYTES, MAX_JOURNAL_BYTES, Readiness,
    RecoverCounts, RecoverFile, RecoverReport, RecoverRequest, RootReadiness, Source, Status,
    Unrestorable,
};
pub use requests::{MAX_QUEUED_REQUESTS, Reply, Request, Requests};
pub use reset::ReinitReport;
pub(crate) use reset::{finding as reset_finding, trail_is_gone};
pub use sanitize::SanitizeReport;
pub use scan::{
    MAX_SCAN_FILE_BYTES, MAX_SCAN_MEMORY_BYTES, MAX_WHOLE_FILE_BYTES, SCAN_WINDOW_BYTES,
    ScanReport, ScanRequest,
};
pub use store_reset::{KeptEvidence, StoreReinitReport};
pub use streamed_patch::MAX_PATCHED_CHUNK_ENTRIES;
pub use watch::boot_id;
pub(crate) use watch::watcher_pid;
pub use watch::{
    SCRUB_PROGRESS_INTERVAL, ScrubProgress, Settled, WatchOutput, WatchReport, WatchRequest,
};
pub use witness::WitnessInitReport;

use crate::actor::current_actor;
use crate::config::Config;
use crate::error::EngineError;
use crate::home::Home;
use crate::progress::Progress;

/// A home opened for one command: locked, key loaded, store open, sinks ready.
pub struct Session {
    home: Home,
    _lock: Flock<File>,
    /// The home key (`signing.key`): the trail's checkpoints, the record and seen-state
    /// MACs, the maintenance windows' seals. Always loaded: the guard runs unattended.
    key: SigningKey,
    /// What signs profiles, acceptances, exports, kept generations and media manifests:
    /// the home key itself, or the passphrase-protected `profile.key` once unlocked
    /// (`None` until then; see `keyfile.rs`).
    profile_key: Option<SigningKey>,
    /// What verifies them (the public half of the above, known without the passphrase).
    profile_public: ed25519_dalek::VerifyingKey,
    store: Store,
    config: Config,
    bus: EventBus,
    actor: Actor,
    /// How the trail was opened (the settings signed into its checkpoints), so a watcher
    /// that lost its trail to a full disk reopens it the same way.
    trail_options: TrailOptions,
    /// Events of the console beside a running watcher, written by the watcher's loop.
    inbox: Inbox,
    /// Commands of other processes beside a running watcher, run by the watcher's loop.
    requests: Requests,
    /// What the trail last recorded of the watcher's kept row set (`watch_seen`): a
    /// watcher starts only from a set the trail allows (see `ops/watch/seen.rs`).
    trail_seen: pacsguard_audit::SeenMarks,
    /// Records a watcher held while the trail could not be written, left here when it
    /// panicked (its hold went with it), with the count it had already dropped past its
    /// limit: see [`Session::take_stranded`].
    stranded: (Vec<Event>, u64),
    /// Set by a running watcher for an acceptance it runs (and taken back after): what
    /// it has seen, so the acceptance signs nothing else ([`guard_sight`]).
    guard_sight: Option<Box<dyn guard_sight::GuardSight>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("home", &self.home.dir)
            .finish_non_exhaustive()
    }
}

/// What one root looked like in this run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RootSummary {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub path: PathBuf,
    pub policy: &'static str,
    pub hash: &'static str,
    pub files: u64,
    pub directories: u64,
    pub other: u64,
    pub bytes: u64,
    /// Files actually read and hashed in this run (the rest was trusted under `--fast`).
    pub hashed_files: u64,
    pub hashed_bytes: u64,
    /// Directories a re-profile could not list: what the profile holds below them was
    /// kept as profiled, not verified (review s18-r15).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_unlisted: Vec<PathBuf>,
}

impl RootSummary {
    fn of(spec: &RootSpec, entries: &[pacsguard_fs::Entry], hashed: (u64, u64)) -> RootSummary {
        let mut summary = RootSummary {
            path: spec.path.clone(),
            policy: spec.policy.as_str(),
            hash: spec.hash.as_str(),
            hashed_files: hashed.0,
            hashed_bytes: hashed.1,
            ..Default::default()
        };
        for entry in entries {
            summary.count(entry);
        }
        summary
    }

    /// Counts one entry of the tree as it is now.
    fn count(&mut self, entry: &pacsguard_fs::Entry) {
        match entry.kind {
            EntryType::File => {
                self.files += 1;
                self.bytes += entry.meta.size;
            }
            EntryType::Directory => self.directories += 1,
            _ => self.other += 1,
        }
    }
}

pub(crate) fn serialize_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&pacsguard_events::escape_path(path))
}

impl Session {
    pub fn open(home: Home) -> Result<Session, EngineError> {
        Ok(Session::open_with(home, WitnessMode::Required, false)?.0)
    }

    /// Opens the home; `witness` says whether a missing or behind witness is refused
    /// (always, but for `audit witness init`); `reinit`, whether a trail that is gone is
    /// started anew (only `audit reinit`, which puts that on the record).
    fn open_with(
        home: Home,
        witness: WitnessMode,
        reinit: bool,
    ) -> Result<(Session, pacsguard_audit::Opening), EngineError> {
        if !home.is_initialized() {
            return Err(EngineError::NotInitialized(home.dir.clone()));
        }
        home.check_permissions()?;
        let lock = home.lock()?;
        let key = home.load_key()?;
        let profile_public = home.profile_public_key(&key)?;
        let profile_key = (!home.is_profile_key_protected()).then(|| key.clone());
        // A signing key with no trail: the home was reset (or emptied) behind PacsGuard's
        // back. Starting a fresh trail here would sign over the loss of everything it held.
        let gone = reset::trail_is_gone(&home)?;
        match (gone, reinit) {
            (true, false) => return Err(reset::tampered(&home)),
            (false, true) => {
                return Err(EngineError::Usage(format!(
                    "the audit trail of {} is there (audit.log, checkpoints.jsonl): there is nothing to re-initialise",
                    home.dir.display()
                )));
            }
            (true, true) => reset::prepare(&home, &key)?,
            (false, false) => {}
        }
        let config = Config::load(&home.config_path())?;
        // The same bytes Config::load parsed a moment ago, under the lock.
        let config_text =
            crate::files::read_text(&home.config_path(), crate::config::MAX_CONFIG_BYTES)?
                .unwrap_or_default();
        let settings = crate::settings::settings_digest(&config_text);
        let resolved = if reinit {
            None
        } else {
            refuse_blank_store_unopened(&home, &key, &config, witness, settings)?;
            judge_companions_unopened(&home, &key, &profile_public, &config, witness, settings)?
        };
        // Only now read-write: a hot journal or a log beside the store was judged on a copy
        // first, and what SQLite does with it here is what was judged.
        let store = Store::open(&home.store_path())?;
        let stored = store.generation()?;
        let options = TrailOptions {
            witness,
            settings,
            baseline_if_unknown: stored,
            ..TrailOptions::default()
        };
        let (mut bus, opening) =
            home.open_trail(&key, &config.audit, options, &store.trail_mark_handoff())?;
        if !reinit {
            cross_check(&home, stored, &opening)?;
            let verifier = home.trail_verifier(&key)?;
            if let Some(problem) = mark_ahead(&store, &verifier, opening.signed_size)? {
                return Err(EngineError::io(
                    home.audit_log_path(),
                    format!("{problem}. Keep the home as evidence; nothing was changed"),
                ));
            }
        }
        crate::home::record_opening(&mut bus, &opening)?;
        let mut session = Session {
            home,
            _lock: lock,
            key,
            profile_key,
            profile_public,
            store,
            config,
            bus,
            actor: current_actor(),
            trail_options: options,
            inbox: Inbox::new(),
            requests: Requests::default(),
            trail_seen: opening.state.map(|s| s.seen).unwrap_or_default(),
            stranded: (Vec::new(), 0),
            guard_sight: None,
        };
        if let Some(resolved) = resolved {
            session.record_resolved_companions(&resolved)?;
        }
        if let Some(state) = opening.state
            && !reinit
            && stored > state.baseline
        {
            session.record_interrupted_signing(stored, state.baseline)?;
        }
        if let Some(state) = opening.state
            && state.settings != settings
        {
            let finding = Finding::new(
                session.home.config_path(),
                pacsguard_events::FindingKind::ConfigDiffers,
                pacsguard_events::Severity::Warning,
                "the [audit] or [watch] settings differ from those signed into the audit trail's last checkpoint: they were edited since; they are in force now and signed into the next checkpoint",
            );
            let mut event = Event::of_finding(session.actor.clone(), finding);
            event.action = Action::Audit;
            session.emit(event)?;
        }
        let cleaned =
            crate::vault::Vault::new(session.home.quarantine_dir()).clean_interrupted()?;
        if !cleaned.is_empty() {
            let detail = format!(
                "quarantine vault: removed {} leftover(s) of a quarantine that was interrupted (temporary files, entries without a copy)",
                cleaned.len()
            );
            session.emit(
                Event::new(
                    session.actor.clone(),
                    Action::Quarantine,
                    Outcome::Success,
                    detail,
                )
                .with_objects(cleaned),
            )?;
        }
        Ok((session, opening))
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Refuses a signed baseline of no root ([`EngineError::GuardsNoRoot`]): `check`,
    /// `accept`, `watch` and `serve` alike.
    pub(crate) fn refuse_no_root(
        &self,
        baseline: &pacsguard_profile::Baseline,
    ) -> Result<(), EngineError> {
        if !baseline.roots.is_empty() {
            return Ok(());
        }
        Err(EngineError::GuardsNoRoot {
            home: self.home.dir.clone(),
            store: self.home.store_path(),
            generation: baseline.generation,
        })
    }

    /// Puts on the record what SQLite acted on beside the store when it was opened (judged
    /// first on a copy: `judge_companions_unopened`): a writer killed inside its
    /// transaction, its journal rolled back, or another tool's log merged.
    fn record_resolved_companions(&mut self, resolved: &str) -> Result<(), EngineError> {
        let store = self.home.store_path();
        self.emit(
            Event::new(
                self.actor.clone(),
                Action::Profile,
                Outcome::Success,
                format!(
                    "the profile store had beside it what SQLite acts on when it opens a store for writing: {resolved}. Judged first on a private copy (the store untouched), the store as SQLite leaves it verifies against the audit trail, so it was opened and SQLite acted on it: a writer killed inside its transaction (a command, sqlite3, a power cut) has its journal rolled back and nothing it began is kept"
                ),
            )
            .with_objects(vec![store]),
        )
    }

    /// The store holds generation `stored`, newer than the `recorded` one the trail's
    /// last checkpoint names as signed: its signing was announced (`cross_check` refuses
    /// a generation never announced) and stopped after its store commit, before its
    /// success was recorded (kill -9, a power cut). Until the trail names it, a copy of
    /// the store taken before that signing, put back, would pass `cross_check` as
    /// current, the acceptance undone unseen (review r23-scale). So once the signature
    /// verifies (from the leaf rows: no chunk read for a store signed v3), the generation
    /// is recorded as signed, as the signing's own record would have; the record says its
    /// copy for `diff` may not have been kept (`generations::not_kept_on_trail`). A store
    /// that does not verify records nothing here: the command refuses it when it loads it.
    fn record_interrupted_signing(
        &mut self,
        stored: u64,
        recorded: u64,
    ) -> Result<(), EngineError> {
        let verified = match self.store.load_streamed(&self.profile_public) {
            Ok(Some(baseline)) => baseline.info.generation == stored,
            _ => false,
        };
        if !verified {
            return Ok(());
        }
        self.emit(
            Event::new(
                self.actor.clone(),
                Action::Profile,
                Outcome::Success,
                format!(
                    "baseline generation {stored} is signed in the store (verified) but the trail last recorded generation {recorded} as signed: the run that signed it was stopped after its store commit, before recording it; recorded now, so that a copy of the store from before it is refused as rolled back; if generations/ holds no copy of it, it was {} when the run stopped",
                    generations::NOT_KEPT_ON_TRAIL
                ),
            )
            .with_generation(stored),
        )?;
        Ok(self.bus.flush()?)
    }

    /// Where a service beside [`Session::watch`] (the console) puts its own events: the
    /// watcher writes them to the trail in order within one turn of its loop; once it
    /// stops, pushes fail. Take it before the watch starts.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// What a watcher that panicked held while the trail could not be written (oldest
    /// first), and how many it had already dropped past its limit: the caller that caught
    /// the panic writes them ([`Session::reopen_trail`]) or says they are lost.
    pub fn take_stranded(&mut self) -> (Vec<Event>, u64) {
        std::mem::take(&mut self.stranded)
    }

    /// Opens the trail again as a watcher does once a full disk has room again (it must
    /// still reproduce its last checkpoint; a record cut short is discarded and the
    /// opening recorded), replacing the one that failed.
    pub fn reopen_trail(&mut self) -> Result<(), EngineError> {
        let (mut bus, opening) = self.home.open_trail(
            &self.key,
            &self.config.audit,
            self.trail_options,
            &self.store.trail_mark_handoff(),
        )?;
        crate::home::record_opening(&mut bus, &opening)?;
        self.bus = bus;
        Ok(())
    }

    /// Where another process hands a `check`, `accept` or `scan` to [`Session::watch`],
    /// which runs them between two turns of its loop; once it stops, submissions fail.
    pub fn requests(&self) -> Requests {
        self.requests.clone()
    }

    /// The operating-system user running this command.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    fn load_baseline(&self) -> Result<Option<(Baseline, SignedInfo)>, EngineError> {
        self.store.load(&self.profile_public).map_err(|e| {
            self.key_protect_interrupted(&e, || self.store.load(&self.key.verifying_key()).is_ok())
                .unwrap_or_else(|| e.into())
        })
    }

    /// The stored baseline verified a chunk at a time (`check`), with the same account
    /// of an interrupted `key protect` as [`Session::load_baseline`].
    pub(crate) fn load_streamed_baseline(
        &self,
    ) -> Result<Option<pacsguard_store::StoredBaseline>, EngineError> {
        self.store.load_streamed(&self.profile_public).map_err(|e| {
            self.key_protect_interrupted(&e, || {
                self.store.load_streamed(&self.key.verifying_key()).is_ok()
            })
            .unwrap_or_else(|| e.into())
        })
    }

    /// A protected home whose store the home key still signs: `key protect` was
    /// interrupted between writing the new key and signing the store again. Said as such
    /// (not as a foreign signature), with the way to finish it; `None` when that is not
    /// what happened.
    fn key_protect_interrupted(
        &self,
        error: &pacsguard_store::StoreError,
        signed_by_home_key: impl FnOnce() -> bool,
    ) -> Option<EngineError> {
        (self.home.is_profile_key_protected() && signed_by_home_key()).then(|| EngineError::Key {
            path: self.home.profile_key_path(),
            reason: format!(
                "the stored profile is still signed by the home key ({error}): a `key protect` was interrupted before it signed it again; run `pacsguard key protect` again to finish it (it asks for the passphrase of this key); nothing was done"
            ),
        })
    }

    /// Gives the session the profile-signing key a passphrase unlocked
    /// ([`Home::unlock_profile_key`]); it must be the key `profile.pub` names.
    pub fn use_profile_key(&mut self, key: SigningKey) -> Result<(), EngineError> {
        if key.verifying_key() != self.profile_public {
            return Err(EngineError::Key {
                path: self.home.profile_key_path(),
                reason: "is not the key that signs this home's profile".into(),
            });
        }
        self.profile_key = Some(key);
        Ok(())
    }

    /// Holds the guard's heartbeat interval (`[watch] heartbeat_seconds`) to at most
    /// `most` seconds; the interval configured, when it was longer and so lowered. A
    /// host reporting to a console is judged alive by its trail growing within a bound
    /// the console sets (issue 14, review r30-fleet): a longer interval written in its
    /// heartbeat records would leave it taken for silent between two of them.
    pub fn hold_heartbeat_to(&mut self, most: u64) -> Option<u64> {
        let configured = self.config.watch.heartbeat_seconds;
        (configured > most).then(|| {
            self.config.watch.heartbeat_seconds = most;
            configured
        })
    }

    /// Forgets an unlocked profile-signing key (a protected home's, after the one
    /// command that needed it: a watcher keeps none between requests).
    pub fn forget_profile_key(&mut self) {
        if self.home.is_profile_key_protected() {
            self.profile_key = None;
        }
    }

    /// Whether signing needs a passphrase this session was not given.
    pub fn profile_key_locked(&self) -> bool {
        self.profile_key.is_none()
    }

    /// The key that signs profiles, or the error that says a passphrase is needed. Taken
    /// before an operation changes anything, so that a locked key refuses it whole.
    fn profile_signer(&self) -> Result<SigningKey, EngineError> {
        self.profile_key.clone().ok_or_else(|| EngineError::Key {
            path: self.home.profile_key_path(),
            reason: "signing needs its passphrase (a terminal prompt, --passphrase-file FILE or --passphrase-fd N); nothing was done".into(),
        })
    }

    /// The fingerprint of the key that signs this home's profile.
    fn profile_fingerprint(&self) -> String {
        pacsguard_store::fingerprint(&self.profile_public)
    }

    fn require_baseline(&self) -> Result<(Baseline, SignedInfo), EngineError> {
        self.load_baseline()?
            .ok_or_else(|| EngineError::NoBaseline(self.home.dir.clone()))
    }

    fn skip_dirs(&self) -> Vec<(u64, u64)> {
        self.home.identity().into_iter().collect()
    }

    /// Walks a root (optionally only the subtree `within`, a relative path), takes the
    /// baseline's hashes where `fast` allows, and hashes the rest in parallel.
    fn capture(
        &self,
        spec: &RootSpec,
        base: Option<&RootProfile>,
        within: &[u8],
        fast: bool,
        progress: &dyn Progress,
    ) -> Result<(Tree, (u64, u64)), EngineError> {
        capture_skipping(spec, base, within, fast, progress, &self.skip_dirs())
    }

    fn emit(&mut self, event: Event) -> Result<(), EngineError> {
        Ok(self.bus.emit(&event)?)
    }

    fn emit_findings(
        &mut self,
        action: Action,
        reason: Option<&str>,
        findings: &[Finding],
    ) -> Result<(), EngineError> {
        for finding in findings {
            let mut event = Event::of_finding(self.actor.clone(), finding.clone());
            event.action = action;
            if let Some(reason) = reason {
                event = event.with_reason(reason);
            }
            self.bus.emit(&event)?;
        }
        Ok(())
    }

    /// Runs `op`; if it fails, the failure is recorded before the error is returned.
    fn recorded<T>(
        &mut self,
        action: Action,
        objects: Vec<PathBuf>,
        op: impl FnOnce(&mut Self) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        match op(self) {
            Ok(value) => Ok(value),
            Err(e) => self.failed(action, objects, e),
        }
    }

    /// Records that an operation failed (a bad signature is evidence too), then returns
    /// the error. A failure to record is secondary to the error being returned.
    fn failed<T>(
        &mut self,
        action: Action,
        objects: Vec<PathBuf>,
        error: EngineError,
    ) -> Result<T, EngineError> {
        if error.refused_store().is_some() {
            // Evidence from here on: the failure's checkpoint is not copied into it.
            self.store.trail_mark_handoff().refuse();
        }
        let event = Event::new(
            self.actor.clone(),
            action,
            Outcome::Failure,
            error.to_string(),
        )
        .with_objects(objects);
        let _ = self.bus.emit(&event);
        let _ = self.bus.flush();
        Err(error)
    }

    /// Puts on the record, durably, that the baseline is about to be replaced.
    fn announce(
        &mut self,
        action: Action,
        generation: u64,
        objects: Vec<PathBuf>,
    ) -> Result<(), EngineError> {
        let detail = format!("signing baseline generation {generation}");
        self.emit(
            Event::new(self.actor.clone(), action, Outcome::Started, detail)
                .with_objects(objects)
                .with_generation(generation),
        )?;
        Ok(self.bus.flush()?)
    }

    fn finish(&mut self, event: Event) -> Result<(), EngineError> {
        self.emit(event)?;
        Ok(self.bus.flush()?)
    }

    fn actor_name(&self) -> String {
        match &self.actor.sudo_user {
            Some(sudo) => format!("{} (sudo from {sudo})", self.actor.user),
            None => self.actor.user.clone(),
        }
    }
}

/// Whether the store file is deleted or emptied (no byte): opening it read-write would
/// create it, or write the schema into it.
fn store_is_blank(path: &Path) -> Result<bool, EngineError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_file() && meta.len() == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(EngineError::io(path, e)),
    }
}

/// A store deleted or emptied while the trail records a signed baseline is refused
/// before it is opened: `Store::open` would create the deleted file or write the schema
/// into the emptied one, so the evidence `store reinit` keeps was no longer what the
/// intruder left (review r27-store). The trail is opened only to read its state (no
/// record, no checkpoint), its checkpoint copies handed to no store.
fn refuse_blank_store_unopened(
    home: &Home,
    key: &SigningKey,
    config: &Config,
    witness: WitnessMode,
    settings: [u8; 32],
) -> Result<(), EngineError> {
    if !store_is_blank(&home.store_path())? {
        return Ok(());
    }
    let opening = trail_state_unwritten(home, key, config, witness, settings)?;
    cross_check(home, 0, &opening)
}

/// The trail's state read without writing anything: no record, no checkpoint, and no
/// checkpoint copy handed to the store (which is not judged yet).
fn trail_state_unwritten(
    home: &Home,
    key: &SigningKey,
    config: &Config,
    witness: WitnessMode,
    settings: [u8; 32],
) -> Result<Opening, EngineError> {
    let options = TrailOptions {
        witness,
        settings,
        baseline_if_unknown: 0,
        ..TrailOptions::default()
    };
    let handoff = pacsguard_store::TrailMarkHandoff::default();
    handoff.refuse();
    let (bus, opening) = home.open_trail(key, &config.audit, options, &handoff)?;
    drop(bus);
    Ok(opening)
}

/// A store with a hot journal or a write-ahead log beside it (what a read-write opening
/// would roll back or merge into it, then delete) is judged as SQLite would leave it, on
/// a private copy, before anything opens it for writing (`store_companions`): `Some`
/// (what stands beside it, described) when that store is one every command uses, and
/// SQLite may act on it; a refusal otherwise, the store and its companions untouched
/// (review r28-store: a journal planted beside an intact store was rolled into it, and
/// deleted, by the command that then refused the store).
fn judge_companions_unopened(
    home: &Home,
    key: &SigningKey,
    profile_public: &ed25519_dalek::VerifyingKey,
    config: &Config,
    witness: WitnessMode,
    settings: [u8; 32],
) -> Result<Option<String>, EngineError> {
    if store_companions::Pending::of(&home.store_path())?.is_none() {
        return Ok(None);
    }
    let opening = trail_state_unwritten(home, key, config, witness, settings)?;
    let judged = store_reset::judge_store(
        home,
        key,
        profile_public,
        opening.state,
        opening.signed_size,
    )?;
    let why = match judged {
        store_reset::Judgement::Intact { resolved } => return Ok(resolved),
        store_reset::Judgement::Refused(why) => why,
    };
    let store = home.store_path();
    // The store file alone may be the intact one, the journal planted beside it.
    let hint = if store_reset::refused_only_beside(
        home,
        key,
        profile_public,
        opening.state,
        opening.signed_size,
    )? {
        format!(
            "The store file alone verifies against the trail: a PacsGuard writer killed inside its transaction never leaves that, so what stands beside it was put there to roll the store back or alter it: {}, and run the command again. Otherwise: ",
            store_reset::move_companions_aside(&store)
        )
    } else {
        String::new()
    };
    Err(EngineError::io(
        &store,
        format!(
            "{why}. Nothing was changed. {hint}{}",
            crate::error::store_way_out(&store)
        ),
    ))
}

/// The store and the trail each state the other's last known state: the trail's last
/// checkpoint signs the baseline generations it recorded, the store signs its generation.
/// A disagreement is tampering (exit 2), named.
fn cross_check(home: &Home, stored: u64, opening: &Opening) -> Result<(), EngineError> {
    let store = home.store_path();
    let problem = match opening.state {
        Some(state) if stored < state.baseline => Some(format!(
            "it holds baseline generation {stored}{} but the audit trail's last checkpoint records generation {} as signed: the store was deleted, emptied, replaced or rolled back. {}",
            if stored == 0 { " (none)" } else { "" },
            state.baseline,
            crate::error::store_way_out(&store)
        )),
        Some(state) if stored > state.announced => Some(format!(
            "it holds baseline generation {stored} but the audit trail never announced one after generation {}: the trail was rolled back or replaced, or the store comes from elsewhere, or its generation was edited (then its signature does not verify, and `pacsguard --home {} store reinit --reason TEXT` keeps it as evidence and starts a new store on the record if no good copy can be put back)",
            state.announced,
            home.dir.display()
        )),
        Some(_) => None,
        None if opening.signed_size == 0 && stored > 0 => Some(format!(
            "it holds baseline generation {stored} but the audit trail is empty (no checkpoint): the trail (audit.log, checkpoints.jsonl) was deleted or emptied"
        )),
        None => None,
    };
    if problem.is_none()
        && let Some((_, problem)) = forwarded_beyond(home, opening.records)?
    {
        return Err(EngineError::io(
            home.audit_log_path(),
            format!("{problem}. Keep the home as evidence; nothing was changed"),
        ));
    }
    match problem {
        Some(problem) => Err(EngineError::io(
            &store,
            format!("{problem}. Keep the home as evidence; nothing was changed"),
        )),
        None => Ok(()),
    }
}

/// Whether the store keeps a checkpoint of this trail newer than the trail's own last
/// one: the trail (`audit.log`, `checkpoints.jsonl`) was put back to an earlier copy. A
/// checkpoint of another origin (a trail started anew by `audit reinit`) says nothing
/// about this one.
pub(crate) fn mark_ahead(
    store: &Store,
    verifier: &pacsguard_trail::note::Verifier,
    signed_size: u64,
) -> Result<Option<String>, EngineError> {
    let Some(note) = store.trail_mark()? else {
        return Ok(None);
    };
    if note.lines().next() != Some(verifier.name()) {
        return Ok(None);
    }
    let mark = match pacsguard_audit::Checkpoint::open(&note, verifier) {
        Ok(mark) => mark,
        Err(e) => {
            return Ok(Some(format!(
                "the checkpoint the store keeps of this trail does not verify ({e}): the store was edited"
            )));
        }
    };
    Ok((mark.size > signed_size).then(|| {
        format!(
            "the store keeps a checkpoint of {} records of this trail, but the trail's last checkpoint covers {signed_size}: the trail (audit.log, checkpoints.jsonl) was put back to an earlier copy",
            mark.size
        )
    }))
}

/// Whether a destination's delivery cursor says more records were delivered than the
/// trail holds: the trail was rolled back to an earlier copy (or the cursor edited).
/// Each cursor is one more copy of a later state, beside the witness and the store.
pub(crate) fn forwarded_beyond(
    home: &Home,
    records: u64,
) -> Result<Option<(PathBuf, String)>, EngineError> {
    let cursors = pacsguard_audit::delivery::all_cursors(&home.dir)
        .map_err(|e| EngineError::Usage(e.to_string()))?;
    Ok(cursors
        .into_iter()
        .find(|(_, _, cursor)| cursor.seq > records)
        .map(|(name, path, cursor)| {
            let what = format!(
                "{} records that {} records were delivered to the {name} destination, but the trail holds only {records}: the trail was rolled back to an earlier copy (or the cursor edited); the destination holds the later records",
                path.display(),
                cursor.seq
            );
            (path, what)
        }))
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Entries of a captured tree ready to be stored: everything was hashed or skipped.
fn entries_for_store(spec: &RootSpec, tree: Tree) -> RootProfile {
    let mut entries = tree.entries;
    for entry in &mut entries {
        if let Content::Hashed { prefix, .. } = &mut entry.content {
            *prefix = None; // a prefix digest is a comparison aid, not part of the record
        }
        if entry.content == Content::Pending {
            entry.content = if spec.policy == Policy::Volatile {
                Content::Skipped
            } else {
                Content::Unstable
            };
        }
    }
    RootProfile {
        spec: spec.clone(),
        entries,
    }
}

/// [`Session::capture`] with the directories left out of walks given (`skip`): needs no
/// session, so it can run beside a thread that writes the session's trail.
pub(crate) fn capture_skipping(
    spec: &RootSpec,
    base: Option<&RootProfile>,
    within: &[u8],
    fast: bool,
    progress: &dyn Progress,
    skip: &[(u64, u64)],
) -> Result<(Tree, (u64, u64)), EngineError> {
    progress.phase(&format!(
        "walking {}",
        pacsguard_events::escape_path(&spec.path)
    ));
    let mut tree = match walk_root(spec, within, skip) {
        // A profiled root that is gone (wiped, unmounted) is the biggest difference of
        // all: every entry is reported removed, not hidden behind an error.
        Err(ProfileError::Walk(WalkError::Root { source, .. }))
            if base.is_some() && source.kind() == std::io::ErrorKind::NotFound =>
        {
            Tree {
                root: spec.path.clone(),
                entries: Vec::new(),
                problems: Vec::new(),
            }
        }
        other => other?,
    };
    if !within.is_empty() {
        tree.entries.retain(|e| targets::is_within(&e.rel, within));
        tree.problems.retain(|p| targets::is_within(&p.rel, within));
    }
    if fast && let Some(base) = base {
        reuse_unchanged(base, &mut tree);
    }
    let (mut files, mut bytes) = (0u64, 0u64);
    if spec.policy.hashes_content() {
        for entry in tree
            .entries
            .iter()
            .filter(|e| hash_request(spec, base, e) != HashRequest::Skip)
        {
            files += 1;
            bytes += entry.meta.size;
        }
    }
    // Only what was read to its end and got a digest counts as hashed: an unreadable,
    // unstable or vanished file was attempted, not hashed. A file holds a digest before
    // hashing only when `--fast` reused the profile's, and hashing never drops one, so
    // the digests the hashing added are those after minus those before (no set of the
    // requested paths: that was a copy of every path).
    let digests = |tree: &Tree| {
        tree.entries
            .iter()
            .filter(|e| matches!(e.content, Content::Hashed { .. }))
            .fold((0u64, 0u64), |(n, b), e| (n + 1, b + e.meta.size))
    };
    let before = digests(&tree);
    progress.start(&spec.path, files, bytes);
    hash_tree(spec, base, &mut tree, &|n| progress.advance(n));
    progress.finish();
    let after = digests(&tree);
    let (files, bytes) = (
        after.0.saturating_sub(before.0),
        after.1.saturating_sub(before.1),
    );
    Ok((tree, (files, bytes)))
}
