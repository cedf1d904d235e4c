//! `pacsguard store reinit --reason`: a new store in a home whose store the trail refuses.
//!
//! When `pacsguard.db` is deleted, emptied, overwritten or altered while the trail
//! remains, every command refuses the home (`crate::error::store_way_out`). The first way
//! out is a good copy put back; without one, a person runs `store reinit`: the refused
//! store (and its journal) is moved aside as evidence under a name of its own, its digest
//! on the record, and a new store begins with an empty baseline signed at a generation
//! past every one the trail ever announced. That generation is what keeps the old store
//! out afterwards: the trail records it as signed, so any copy from before the reset
//! (which holds an older generation) is refused as rolled back, as before the reset. The
//! empty baseline guards nothing: `check` says a `profile` is needed, as after `init`.
//!
//! Only for a store the trail refuses, and only over a trail that verifies: an intact
//! store is never thrown away, and a tampered trail is no reason to start a new store.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use pacsguard_audit::{TrailOptions, WitnessMode};
use pacsguard_events::{
    Action, Event, Finding, FindingKind, Outcome, Severity, escape_bytes, escape_path,
};
use pacsguard_store::Store;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::accept::checked_reason;
use super::store_companions::{JudgedCopy, Pending};
use super::{Session, now_unix, reset};
use crate::config::Config;
use crate::error::EngineError;
use crate::home::Home;

/// The companions SQLite keeps beside a store (its rollback journal; the WAL files of a
/// store opened by another tool): moved aside with it, never left beside the new store,
/// whose next open would roll a hot journal of the old one into it.
const COMPANIONS: [&str; 3] = pacsguard_store::COMPANION_SUFFIXES;

/// Where the new store is written before it takes the store's name (a rename, last).
const NEW_STORE_SUFFIX: &str = ".reinit-new";

/// One file kept as evidence.
#[derive(Debug, Serialize)]
pub struct KeptEvidence {
    /// Where it was, as shown.
    pub was: String,
    /// Where it is kept now, as shown.
    pub kept_as: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct StoreReinitReport {
    /// Why every command refused the store.
    pub refusal: String,
    /// The empty baseline's generation in the new store.
    pub generation: u64,
    /// The refused store and its companions as kept (none for a deleted store).
    pub evidence: Vec<KeptEvidence>,
}

/// What the store is, judged against the verified trail.
pub(crate) enum Judgement {
    /// Every command uses it: nothing to re-initialise. `resolved`: what SQLite acts on
    /// beside it (a hot journal, a write-ahead log), judged on a copy and described.
    Intact { resolved: Option<String> },
    /// Every command refuses it, for this reason.
    Refused(String),
}

/// A debug build's fault hook: `PACSGUARD_TEST_STORE_REINIT_STOP_AT=<step>` ends the
/// process at that step as a kill would (no destructor, no further record), said on
/// stderr. Tests prove that each step leaves the old refusal or the finished reinit.
fn stop_here_for_tests(step: &str) {
    if cfg!(debug_assertions)
        && std::env::var("PACSGUARD_TEST_STORE_REINIT_STOP_AT").is_ok_and(|v| v == step)
    {
        eprintln!(
            "pacsguard: debug build: PACSGUARD_TEST_STORE_REINIT_STOP_AT={step}: stopping here as a kill would"
        );
        std::process::exit(137);
    }
}

/// The trail must verify whole before anything is judged by it: a trail rolled back or
/// edited would make a good store look refused (exit 2, naming `audit verify`).
fn verify_trail(home: &Home, key: &SigningKey, config: &Config) -> Result<(), EngineError> {
    let verifier = home.trail_verifier(key)?;
    let log = home.audit_log_path();
    let report = pacsguard_audit::verify(
        &log,
        &home.checkpoints_path(),
        &verifier,
        config.audit.witness.as_deref(),
    )
    .map_err(|e| EngineError::io(&log, e))?;
    match report.problems.first() {
        None => Ok(()),
        Some(first) => Err(EngineError::io(
            &log,
            format!(
                "the audit trail does not verify ({} problem(s); the first, at {}: {}): a tampered trail is no reason to start a new store, and the store cannot be judged by it. Run `pacsguard --home {} audit verify`, keep the home as evidence; nothing was done",
                report.problems.len(),
                first.position,
                first.what,
                home.dir.display()
            ),
        )),
    }
}

/// Judges the store at `path` as every command would, against the trail's state, reading
/// it as evidence (never written). A store refused for the trail's sake (ahead of it, or
/// keeping a newer checkpoint of it) is the trail's problem, not the store's: an error.
/// A store with a hot journal or a write-ahead log beside it is judged as SQLite would
/// leave it, on a copy (`store_companions`): what every command's opening would make of
/// it (review r28-store: judged as the file alone, a store every command used after
/// rolling its journal back was refused here and thrown away).
pub(crate) fn judge_store(
    home: &Home,
    key: &SigningKey,
    profile_public: &ed25519_dalek::VerifyingKey,
    state: Option<pacsguard_audit::TrailState>,
    signed_size: u64,
) -> Result<Judgement, EngineError> {
    judge_store_as(home, key, profile_public, state, signed_size, true)
}

/// Whether the store, refused as SQLite would leave it, is refused only for what stands
/// beside it (a journal or a log SQLite would act on): the store file alone, judged as if
/// nothing stood there, is one every command uses. A PacsGuard writer killed inside its
/// transaction never leaves that (its journal holds the verified state it began from):
/// what stands there was put there. Moving it aside, not a new store, is the way out.
pub(crate) fn refused_only_beside(
    home: &Home,
    key: &SigningKey,
    profile_public: &ed25519_dalek::VerifyingKey,
    state: Option<pacsguard_audit::TrailState>,
    signed_size: u64,
) -> Result<bool, EngineError> {
    if Pending::of(&home.store_path())?.is_none() {
        return Ok(false);
    }
    Ok(matches!(
        judge_store_as(home, key, profile_public, state, signed_size, false)?,
        Judgement::Intact { .. }
    ))
}

/// How to take aside what stands beside the store, for a person to run.
pub(crate) fn move_companions_aside(store: &Path) -> String {
    let moves: Vec<String> = COMPANIONS
        .iter()
        .map(|suffix| pacsguard_store::companion_path(store, suffix))
        .filter(|path| std::fs::symlink_metadata(path).is_ok())
        .map(|path| format!("mv {0} {0}.refused", path.display()))
        .collect();
    format!(
        "move what stands beside it aside as evidence, never delete it (`{}`)",
        moves.join("; ")
    )
}

fn judge_store_as(
    home: &Home,
    key: &SigningKey,
    profile_public: &ed25519_dalek::VerifyingKey,
    state: Option<pacsguard_audit::TrailState>,
    signed_size: u64,
    with_companions: bool,
) -> Result<Judgement, EngineError> {
    let path = home.store_path();
    let signed = state.map_or(0, |s| s.baseline);
    let announced = state.map_or(0, |s| s.announced);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(if signed > 0 {
            Judgement::Refused(format!(
                "{} is missing (deleted) while the trail records baseline generation {signed} as signed",
                path.display()
            ))
        } else {
            Judgement::Intact { resolved: None }
        });
    }
    let pending = if with_companions {
        Pending::of(&path)?
    } else {
        None
    };
    let mut copy = match pending {
        Some(pending) => Some(pending.copy_into(&home.dir)?),
        None => None,
    };
    let judged = |copy: Option<&mut JudgedCopy>| -> Result<Judgement, JudgeError> {
        let evidence;
        let store = match copy {
            Some(copy) => Some(copy.open()?),
            None => {
                evidence = Store::open_evidence(&path)?;
                evidence.as_ref()
            }
        };
        judge_readable_store(
            home,
            key,
            profile_public,
            &path,
            store,
            signed,
            announced,
            signed_size,
        )
    };
    // Every error reading the store that says it is not what was signed (unreadable,
    // a table dropped, a schema version changed, a chunk or signature altered) is the
    // refusal itself; any other (busy, I/O) stops here with nothing done.
    let judgement = match judged(copy.as_mut()) {
        Err(JudgeError::Store(e)) if e.refused_store().is_some() => {
            Judgement::Refused(e.to_string())
        }
        Err(JudgeError::Store(e)) => return Err(e.into()),
        Err(JudgeError::Engine(e)) => return Err(e),
        Ok(judgement) => judgement,
    };
    Ok(match (judgement, copy) {
        (Judgement::Refused(why), Some(copy)) => Judgement::Refused(format!(
            "{why} (judged as SQLite leaves it once it acts on what stands beside it, judged on a copy, the store untouched: {})",
            copy.describe()
        )),
        (Judgement::Intact { .. }, Some(copy)) => Judgement::Intact {
            resolved: Some(copy.describe()),
        },
        (judgement, None) => judgement,
    })
}

/// What stops the judging of a store file that is there.
enum JudgeError {
    /// Reading the store failed (see [`pacsguard_store::StoreError::refused_store`]).
    Store(pacsguard_store::StoreError),
    /// Anything else: the trail's problem, named.
    Engine(EngineError),
}

impl From<pacsguard_store::StoreError> for JudgeError {
    fn from(e: pacsguard_store::StoreError) -> Self {
        JudgeError::Store(e)
    }
}

/// [`judge_store`] of a store file that is there, opened as `store` (`None`: no store in
/// it at all).
#[allow(clippy::too_many_arguments)]
fn judge_readable_store(
    home: &Home,
    key: &SigningKey,
    profile_public: &ed25519_dalek::VerifyingKey,
    path: &Path,
    store: Option<&Store>,
    signed: u64,
    announced: u64,
    signed_size: u64,
) -> Result<Judgement, JudgeError> {
    let stored = match store {
        Some(store) => store.generation()?,
        None => 0,
    };
    if stored < signed {
        return Ok(Judgement::Refused(format!(
            "{} holds baseline generation {stored}{} but the trail records generation {signed} as signed: it was deleted, emptied, replaced or rolled back",
            path.display(),
            if stored == 0 { " (none)" } else { "" }
        )));
    }
    let Some(store) = store else {
        return Ok(Judgement::Intact { resolved: None });
    };
    let trail_problem = |what: String| {
        JudgeError::Engine(EngineError::io(
            home.audit_log_path(),
            format!(
                "{what}: the trail may be the one rolled back or replaced, which is no reason to start a new store. Run `pacsguard --home {} audit verify`, keep the home as evidence; nothing was done",
                home.dir.display()
            ),
        ))
    };
    // Verified before the generation is compared with the trail's: a store whose
    // generation was edited past the trail's does not verify (the generation is signed),
    // and is the store's problem; one that verifies ahead of the trail is the trail's.
    if let Err(e) = verify_whole(store, profile_public) {
        // A `key protect` interrupted before it signed the store again: its own way
        // out, not a reason to throw the profile away.
        if e.refused_store().is_some()
            && home.is_profile_key_protected()
            && store.load_streamed(&key.verifying_key()).is_ok()
        {
            return Err(JudgeError::Engine(EngineError::Key {
                path: home.profile_key_path(),
                reason: "the stored profile is still signed by the home key: a `key protect` was interrupted; run `pacsguard key protect` again to finish it; nothing was done".into(),
            }));
        }
        return Err(e.into());
    }
    if stored > announced {
        return Err(trail_problem(format!(
            "the store holds baseline generation {stored}, signed and verified, which the trail never announced (it announced up to {announced})"
        )));
    }
    if let Some(problem) = super::mark_ahead(
        store,
        &home.trail_verifier(key).map_err(JudgeError::Engine)?,
        signed_size,
    )
    .map_err(JudgeError::Engine)?
    {
        return Err(trail_problem(problem));
    }
    Ok(Judgement::Intact { resolved: None })
}

/// The signed tree and every chunk against its leaf.
fn verify_whole(
    store: &Store,
    profile_public: &ed25519_dalek::VerifyingKey,
) -> Result<(), pacsguard_store::StoreError> {
    match store.load_streamed(profile_public)? {
        Some(baseline) => store.verify_stored(&baseline),
        None => Ok(()),
    }
}

/// The store and its companions as they are now, each with the name it is kept under.
/// The name says when and why (`pacsguard.db.refused-by-store-reinit-<unix time>`), and
/// a name taken already (two reinits in one second) gets `.2`, `.3`…: nothing is ever
/// overwritten.
fn evidence_names(store: &Path, stamp: i64) -> Vec<(PathBuf, PathBuf)> {
    let with = |path: &Path, suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let base = with(store, &format!(".refused-by-store-reinit-{stamp}"));
    let mut n = 1u32;
    loop {
        let kept = if n == 1 {
            base.clone()
        } else {
            with(&base, &format!(".{n}"))
        };
        let pairs: Vec<(PathBuf, PathBuf)> = std::iter::once((store.to_path_buf(), kept.clone()))
            .chain(COMPANIONS.iter().map(|c| (with(store, c), with(&kept, c))))
            .filter(|(was, _)| std::fs::symlink_metadata(was).is_ok())
            .collect();
        let free = std::iter::once(kept.clone())
            .chain(COMPANIONS.iter().map(|c| with(&kept, c)))
            .all(|p| std::fs::symlink_metadata(p).is_err());
        if free {
            return pairs;
        }
        n += 1;
    }
}

/// SHA-256 and length of a file kept as evidence, read a block at a time (a store of
/// millions of entries is hundreds of MB). A store replaced by a link or a directory is
/// refused by name, never followed.
fn digest_of(path: &Path) -> Result<(String, u64), EngineError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| EngineError::io(path, e))?;
    if !meta.is_file() {
        return Err(EngineError::io(
            path,
            "is not a regular file (a link, a directory, a device): it is left as it is for a person to look at; nothing was done",
        ));
    }
    let mut file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| EngineError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Moves `was` to `kept` without ever replacing a file: a hard link (which fails on a
/// name taken), then the old name removed. A kill in between leaves both names on one
/// inode: nothing lost.
fn move_aside(was: &Path, kept: &Path) -> Result<(), EngineError> {
    std::fs::hard_link(was, kept).map_err(|e| EngineError::io(kept, e))?;
    std::fs::remove_file(was).map_err(|e| EngineError::io(was, e))
}

fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io(dir, e))
}

/// A leftover new store of a reinit killed before its rename: never the store, never
/// evidence (nothing names it on the trail as such), removed before a new one is made.
fn remove_leftover(new: &Path) -> Result<(), EngineError> {
    for suffix in std::iter::once("").chain(COMPANIONS) {
        let mut name = new.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(PathBuf::from(name), e)),
        }
    }
    Ok(())
}

fn shown(evidence: &[KeptEvidence]) -> String {
    if evidence.is_empty() {
        return "nothing to keep (the store file was deleted)".into();
    }
    evidence
        .iter()
        .map(|e| {
            format!(
                "{} kept as {} (sha256 {}, {} bytes)",
                e.was, e.kept_as, e.sha256, e.bytes
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Session {
    /// `store reinit`: see the module's comment. `profile_key` is the unlocked key of a
    /// protected home (the empty baseline is signed like any other).
    pub fn store_reinit(
        home: Home,
        reason: &str,
        profile_key: Option<SigningKey>,
    ) -> Result<StoreReinitReport, EngineError> {
        let reason = checked_reason(reason)?.to_string();
        if !home.is_initialized() {
            return Err(EngineError::NotInitialized(home.dir.clone()));
        }
        home.check_permissions()?;
        let lock = home.lock()?;
        let key = home.load_key()?;
        let profile_public = home.profile_public_key(&key)?;
        if reset::trail_is_gone(&home)? {
            return Err(reset::tampered(&home));
        }
        let signer = match profile_key {
            Some(k) if k.verifying_key() == profile_public => k,
            Some(_) => {
                return Err(EngineError::Key {
                    path: home.profile_key_path(),
                    reason: "is not the key that signs this home's profile".into(),
                });
            }
            None if home.is_profile_key_protected() => {
                return Err(EngineError::Key {
                    path: home.profile_key_path(),
                    reason: "the new store's empty baseline is signed: it needs the passphrase (a terminal prompt, --passphrase-file FILE or --passphrase-fd N); nothing was done".into(),
                });
            }
            None => key.clone(),
        };
        let config = Config::load(&home.config_path())?;
        verify_trail(&home, &key, &config)?;
        // The new store is made first, under its own name: the trail's checkpoint copies
        // go into it, never into the refused store (evidence, read only from here on).
        let store_path = home.store_path();
        let mut new_path = store_path.as_os_str().to_owned();
        new_path.push(NEW_STORE_SUFFIX);
        let new_path = PathBuf::from(new_path);
        remove_leftover(&new_path)?;
        let store = Store::open(&new_path)?;
        let config_text =
            crate::files::read_text(&home.config_path(), crate::config::MAX_CONFIG_BYTES)?
                .unwrap_or_default();
        let options = TrailOptions {
            witness: WitnessMode::Required,
            settings: crate::settings::settings_digest(&config_text),
            ..TrailOptions::default()
        };
        let (mut bus, opening) = home.open_trail_keeping_marks_in(
            &key,
            &config.audit,
            options,
            &store.trail_mark_handoff(),
            new_path.clone(),
        )?;
        let judged = judge_store(
            &home,
            &key,
            &profile_public,
            opening.state,
            opening.signed_size,
        );
        let refusal = match judged {
            Err(e) => {
                // Nothing was done: the new store made for the trail's copies goes too.
                drop(bus);
                drop(store);
                remove_leftover(&new_path)?;
                return Err(e);
            }
            Ok(Judgement::Refused(why))
                if refused_only_beside(
                    &home,
                    &key,
                    &profile_public,
                    opening.state,
                    opening.signed_size,
                )? =>
            {
                drop(bus);
                drop(store);
                remove_leftover(&new_path)?;
                return Err(EngineError::Usage(format!(
                    "{why}; but the store file {} alone verifies against the audit trail: what stands beside it is what every command refuses; {}, after which every command uses the store: `store reinit` never throws a good profile away; nothing was done",
                    store_path.display(),
                    move_companions_aside(&store_path)
                )));
            }
            Ok(Judgement::Refused(why)) => why,
            Ok(Judgement::Intact { .. }) => {
                drop(store);
                remove_leftover(&new_path)?;
                return Err(EngineError::Usage(format!(
                    "the store {} verifies against the audit trail: every command uses it, and `store reinit` never throws a good profile away; nothing was done",
                    store_path.display()
                )));
            }
        };
        crate::home::record_opening(&mut bus, &opening)?;
        // Past every generation the trail ever announced: each copy of the store from
        // before the reset holds one of those, and is refused as rolled back once this
        // one is recorded as signed.
        let announced = opening.state.map_or(0, |s| s.announced);
        let generation = announced.checked_add(1).ok_or_else(|| {
            EngineError::io(
                home.audit_log_path(),
                format!("the trail announces baseline generation {announced}, the last there can be: no generation can follow it; nothing was done"),
            )
        })?;
        let mut session = Session {
            home,
            _lock: lock,
            key,
            profile_key: Some(signer.clone()),
            profile_public,
            store,
            config,
            bus,
            actor: crate::actor::current_actor(),
            trail_options: options,
            inbox: pacsguard_events::Inbox::new(),
            requests: super::Requests::default(),
            trail_seen: opening.state.map(|s| s.seen).unwrap_or_default(),
            stranded: (Vec::new(), 0),
            guard_sight: None,
        };
        let done = session.reinit_store(&refusal, &reason, generation, &signer, &new_path);
        if done.is_err() {
            // Stopped before its rename (a store file that is a link, a move refused):
            // the new store is no one's; the refusal stands as before.
            let _ = remove_leftover(&new_path);
        }
        done
    }

    fn reinit_store(
        &mut self,
        refusal: &str,
        reason: &str,
        generation: u64,
        signer: &SigningKey,
        new_path: &Path,
    ) -> Result<StoreReinitReport, EngineError> {
        let store_path = self.home.store_path();
        let mut evidence = Vec::new();
        let moves = evidence_names(&store_path, now_unix());
        for (was, kept) in &moves {
            let (sha256, bytes) = digest_of(was)?;
            evidence.push(KeptEvidence {
                was: escape_path(was),
                kept_as: escape_path(kept),
                sha256,
                bytes,
            });
        }
        let kept = shown(&evidence);
        // On the record first, durably, with everything a reader needs (the refusal, the
        // evidence's names and digests, who and why): then every later step is covered.
        // A kill before the rename leaves the store refused as before (the announced
        // generation is not signed until the store holding it is in place); a kill after
        // it leaves the new store, whose generation the next opening verifies and records
        // as signed (`record_interrupted_signing`): the finished reinit.
        let alert = Finding::new(
            store_path.clone(),
            FindingKind::StoreReset,
            Severity::Alert,
            format!(
                "the profile store was refused by every command ({}) and a person started a new, empty one in its place, giving as the reason: {}. Nothing is guarded until the roots are profiled (and approved) again. The refused store is kept as evidence: {kept}",
                escape_bytes(refusal.as_bytes()),
                // In the text too: a DICOM audit message forwarded to a collector carries
                // the detail, not the record's reason field.
                escape_bytes(reason.as_bytes())
            ),
        );
        let mut event = Event::of_finding(self.actor.clone(), alert);
        event.action = Action::Profile;
        self.emit(event.with_reason(reason))?;
        self.emit(
            Event::new(
                self.actor.clone(),
                Action::Profile,
                Outcome::Started,
                format!(
                    "store reinit: signing baseline generation {generation}, empty, in a new store; the refused one is moved aside as evidence ({kept})"
                ),
            )
            .with_objects(vec![store_path.clone()])
            .with_reason(reason)
            .with_generation(generation),
        )?;
        self.bus.flush()?;
        stop_here_for_tests("recorded");
        let created = now_unix();
        let writer = self.store.begin_streamed_save()?;
        writer.commit(generation, created, None, signer, None)?;
        stop_here_for_tests("signed");
        for (was, kept) in &moves {
            move_aside(was, kept)?;
        }
        sync_dir(&self.home.dir)?;
        stop_here_for_tests("aside");
        // Last: the new store takes the name (its connection holds no transaction, and
        // is replaced by one opened under the store's name right after).
        std::fs::rename(new_path, &store_path).map_err(|e| EngineError::io(&store_path, e))?;
        sync_dir(&self.home.dir)?;
        stop_here_for_tests("renamed");
        self.store = Store::open(&store_path)?;
        let kept_generation = self.keep_generation_of(generation, 0, signer, || {
            let (baseline, _) = self.require_baseline()?;
            self.write_generation(&baseline, signer)
        });
        self.finish(
            Event::new(
                self.actor.clone(),
                Action::Profile,
                Outcome::Success,
                format!(
                    "store re-initialised by a person: baseline generation {generation}, empty, signed by key {} in a new store; every copy of the store from before it is refused as rolled back; nothing is guarded until `pacsguard profile` is run again. Evidence: {kept}; {kept_generation}",
                    self.profile_fingerprint()
                ),
            )
            .with_objects(vec![store_path.clone()])
            .with_reason(reason)
            .with_generation(generation),
        )?;
        Ok(StoreReinitReport {
            refusal: refusal.to_string(),
            generation,
            evidence,
        })
    }
}
