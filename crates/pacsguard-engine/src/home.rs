//! The home directory: layout, creation, key handling and the lock.

use std::fs::{self, File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::PathBuf;

use ed25519_dalek::{SigningKey, VerifyingKey};
use nix::fcntl::{Flock, FlockArg};
use pacsguard_audit::{AuditSink, Durability, Opening, TrailFiles, TrailOptions};
use pacsguard_events::{Action, Event, EventBus, Outcome};
use pacsguard_store::{Store, TrailMarkHandoff, fingerprint};
use pacsguard_trail::note::{Signer, Verifier};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::actor::current_actor;
use crate::config::CONFIG_TEMPLATE;
use crate::config::{AuditConfig, FsyncPolicy};
use crate::durable::write_atomically;
use crate::error::EngineError;

/// The most of a lock file's holder line shown (it is written by whoever holds the lock).
const MAX_LOCK_HOLDER_BYTES: u64 = 512;

/// Where state lives without `--home` or `$PACSGUARD_HOME`: `/var/lib/pacsguard` for root
/// (a system service), `$XDG_DATA_HOME/pacsguard` or `~/.local/share/pacsguard` otherwise.
pub fn default_home() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/pacsguard");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(data).join("pacsguard");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/pacsguard")
}

#[derive(Clone, Debug)]
pub struct Home {
    pub dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub home: PathBuf,
    pub key_fingerprint: String,
    pub config_written: bool,
}

const KEY_HEADER: &str = "PacsGuard Ed25519 signing key v1";

/// The most of `signing.key` read: the header and 64 hex digits are under 100 bytes.
const MAX_KEY_FILE_BYTES: u64 = 4096;

impl Home {
    pub fn new(dir: PathBuf) -> Home {
        Home { dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("signing.key")
    }
    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join("signing.pub")
    }
    /// The passphrase-protected profile-signing key, when the home has one (`key protect`,
    /// `init --passphrase`; see `keyfile.rs`).
    pub fn profile_key_path(&self) -> PathBuf {
        self.dir.join("profile.key")
    }
    /// The public half of `profile.key`: what verifies the signed profile, exports,
    /// generations and media manifests of a protected home.
    pub fn profile_public_key_path(&self) -> PathBuf {
        self.dir.join("profile.pub")
    }
    /// The public key that must have signed this home's profile (and its exports and
    /// media manifests): `profile.pub` when it is protected, else `signing.pub`.
    pub fn profile_trust_path(&self) -> PathBuf {
        if self.is_profile_key_protected() {
            self.profile_public_key_path()
        } else {
            self.public_key_path()
        }
    }
    pub fn store_path(&self) -> PathBuf {
        self.dir.join("pacsguard.db")
    }
    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }
    pub fn checkpoints_path(&self) -> PathBuf {
        self.dir.join("checkpoints.jsonl")
    }
    /// The C2SP verifier key of the trail: name, key hash and public key. Enough, with
    /// `audit.log` and `checkpoints.jsonl`, to verify the trail anywhere.
    pub fn trail_key_path(&self) -> PathBuf {
        self.dir.join("trail.pub")
    }
    /// The Unix socket (0600) through which a running `watch` or `serve` takes the
    /// commands started beside it (see [`crate::Requests`]).
    pub fn control_socket_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// The DICOM gateway's state kept across restarts (the failure budgets of user
    /// identities: `pacsguard_gateway::lockout_file`).
    pub fn gateway_dir(&self) -> PathBuf {
        self.dir.join("gateway")
    }

    /// The quarantine vault: copies of files that raised an alert.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.dir.join("quarantine")
    }

    pub fn is_initialized(&self) -> bool {
        self.key_path().exists()
    }

    /// (device, inode) of the home, so walks can leave it out.
    pub fn identity(&self) -> Option<(u64, u64)> {
        fs::metadata(&self.dir).ok().map(|m| (m.dev(), m.ino()))
    }

    /// Creates the home: directory (0700), signing key (0600, written atomically),
    /// public key, config template (kept if one is already there), store and event log.
    pub fn init(&self) -> Result<InitReport, EngineError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| EngineError::io(&self.dir, e))?;
        let _lock = self.lock()?;
        if self.is_initialized() {
            return Err(EngineError::AlreadyInitialized(self.dir.clone()));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| EngineError::Key {
            path: self.key_path(),
            reason: format!("no randomness: {e}"),
        })?;
        let key = SigningKey::from_bytes(&seed);
        let fingerprint = fingerprint(&key.verifying_key());
        let public_hex = hex::encode(key.verifying_key().as_bytes());
        let config_written = !self.config_path().exists();
        if config_written {
            write_atomically(&self.config_path(), CONFIG_TEMPLATE.as_bytes(), 0o600)?;
        }
        write_atomically(
            &self.public_key_path(),
            format!("{public_hex}\n# {fingerprint}\n").as_bytes(),
            0o644,
        )?;
        // A trail without a key: an interrupted init, or a key deleted. Never signed over
        // with a new key.
        if !crate::ops::trail_is_gone(self)? && !self.set_aside_interrupted_init()? {
            return Err(EngineError::io(
                &self.dir,
                "it holds an audit trail (audit.log, checkpoints.jsonl) but no signing key: an interrupted init or a deleted key; keep it as evidence and move it aside to start a new home",
            ));
        }
        let store = Store::open(&self.store_path())?;
        let config_text =
            crate::files::read_text(&self.config_path(), crate::config::MAX_CONFIG_BYTES)?
                .unwrap_or_default();
        let options = TrailOptions {
            settings: crate::settings::settings_digest(&config_text),
            ..TrailOptions::default()
        };
        let (mut bus, _) = self.open_trail(
            &key,
            &AuditConfig::default(),
            options,
            &store.trail_mark_handoff(),
        )?;
        let event = Event::new(
            current_actor(),
            Action::Init,
            Outcome::Success,
            format!("home created, signing key {fingerprint}"),
        )
        .with_objects(vec![self.dir.clone()]);
        bus.emit(&event)?;
        bus.flush()?;
        // The key goes last, after the trail's first checkpoint: its presence is what marks
        // the home as initialized, so a key without a trail means the trail was removed.
        let secret = Zeroizing::new(format!("{KEY_HEADER}\n{}\n", hex::encode(seed.as_slice())));
        write_atomically(&self.key_path(), secret.as_bytes(), 0o600)?;
        Ok(InitReport {
            home: self.dir.clone(),
            key_fingerprint: fingerprint,
            config_written,
        })
    }

    /// An init killed after the trail's first checkpoint but before it wrote the key (the
    /// key goes last) leaves a trail holding only its own `init` record: no key can ever
    /// extend it, and it records nothing but the attempt. Its files (`audit.log`,
    /// `checkpoints.jsonl`, `trail.pub`) are moved aside, kept, so `init` can start over
    /// instead of refusing the home until a person moves them. A trail holding anything
    /// else is evidence: it is left alone and refused.
    fn set_aside_interrupted_init(&self) -> Result<bool, EngineError> {
        let log = self.audit_log_path();
        let bytes = match pacsguard_fs::read_file(&log, MAX_INTERRUPTED_INIT_LOG_BYTES) {
            Ok(read) => read.bytes,
            Err(e) if e.is_missing() => Vec::new(),
            // Larger, not a regular file, unreadable: not what an init leaves.
            Err(_) => return Ok(false),
        };
        let complete = bytes
            .split_inclusive(|b| *b == b'\n')
            .filter(|line| line.ends_with(b"\n"));
        for line in complete {
            let action = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(String::from));
            if action.as_deref() != Some(Action::Init.as_str()) {
                return Ok(false);
            }
        }
        let stamp = crate::ops::now_unix();
        for path in [log, self.checkpoints_path(), self.trail_key_path()] {
            if fs::symlink_metadata(&path).is_err() {
                continue;
            }
            let mut aside = path.clone().into_os_string();
            aside.push(format!(".interrupted-init-{stamp}"));
            fs::rename(&path, &aside).map_err(|e| EngineError::io(&path, e))?;
        }
        Ok(true)
    }

    /// Refuses a home that others could write to: whoever can replace the store, the key
    /// or the configuration can forge what PacsGuard reports.
    pub fn check_permissions(&self) -> Result<(), EngineError> {
        let meta = fs::metadata(&self.dir).map_err(|e| EngineError::io(&self.dir, e))?;
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(EngineError::io(
                &self.dir,
                format!(
                    "home is writable by group or others (mode {:04o}); run chmod 700",
                    mode & 0o7777
                ),
            ));
        }
        Ok(())
    }

    /// Reads the signing key, refusing one that others can read.
    pub fn load_key(&self) -> Result<SigningKey, EngineError> {
        let path = self.key_path();
        let bad = |reason: String| EngineError::Key {
            path: path.clone(),
            reason,
        };
        // No link followed, no FIFO waited on; the mode is that of the file read.
        let read = match pacsguard_fs::read_file(&path, MAX_KEY_FILE_BYTES) {
            Ok(read) => read,
            Err(pacsguard_fs::ReadError::TooLarge { .. }) => {
                return Err(bad("not a PacsGuard key file (too large)".into()));
            }
            Err(e) => return Err(bad(crate::files::refusal(&e))),
        };
        let bytes = Zeroizing::new(read.bytes);
        if read.meta.mode & 0o077 != 0 {
            return Err(bad(format!(
                "mode {:04o} lets others read it; run chmod 600",
                read.meta.mode
            )));
        }
        let text = Zeroizing::new(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| bad("not a PacsGuard key file (not text)".into()))?,
        );
        let mut lines = text.lines();
        if lines.next() != Some(KEY_HEADER) {
            return Err(bad(format!(
                "not a PacsGuard key file (first line must be {KEY_HEADER:?})"
            )));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(lines.next().unwrap_or("").trim(), seed.as_mut_slice())
            .map_err(|e| bad(format!("malformed key: {e}")))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// Whether profiles are signed by a passphrase-protected key of their own (anything
    /// standing at `profile.key`, a link included, counts: it is then refused when read,
    /// never silently replaced by `signing.key`).
    pub fn is_profile_key_protected(&self) -> bool {
        std::fs::symlink_metadata(self.profile_key_path()).is_ok()
    }

    /// Refused (exit 2, nothing changed) unless the profile-signing key is protected: a
    /// change of its passphrase has nothing to change. The one wording of it, for the
    /// CLI (before it asks a passphrase) and the session alike.
    pub fn require_protected_profile_key(&self) -> Result<(), EngineError> {
        if self.is_profile_key_protected() {
            return Ok(());
        }
        Err(EngineError::Usage(format!(
            "{} does not exist: this home's profile-signing key is not protected by a passphrase (pacsguard key protect); nothing was changed",
            self.profile_key_path().display()
        )))
    }

    /// The text of `profile.key`, refused if others can read it.
    fn read_profile_key_file(&self) -> Result<Zeroizing<String>, EngineError> {
        let path = self.profile_key_path();
        let bad = |reason: String| EngineError::Key {
            path: path.clone(),
            reason,
        };
        let read = pacsguard_fs::read_file(&path, MAX_KEY_FILE_BYTES)
            .map_err(|e| bad(crate::files::refusal(&e)))?;
        if read.meta.mode & 0o077 != 0 {
            return Err(bad(format!(
                "mode {:04o} lets others read it; run chmod 600",
                read.meta.mode
            )));
        }
        String::from_utf8(read.bytes)
            .map(Zeroizing::new)
            .map_err(|_| bad("not a PacsGuard key file (not text)".into()))
    }

    /// The public key that verifies this home's profile: the home key's own for a home
    /// without `profile.key`; else the one `profile.key` names, which `profile.pub` must
    /// repeat (a pair that disagrees was tampered with or half replaced).
    pub fn profile_public_key(&self, home_key: &SigningKey) -> Result<VerifyingKey, EngineError> {
        if !self.is_profile_key_protected() {
            return Ok(home_key.verifying_key());
        }
        let text = self.read_profile_key_file()?;
        let named = crate::keyfile::public_of(&self.profile_key_path(), &text)?;
        let published = crate::ops::read_trusted_key(&self.profile_public_key_path())?;
        if named != published {
            return Err(EngineError::Key {
                path: self.profile_public_key_path(),
                reason: format!(
                    "is not the public key of {} (one of the pair was replaced); nothing was done",
                    self.profile_key_path().display()
                ),
            });
        }
        Ok(named)
    }

    /// Opens `profile.key` with `passphrase`: exit 2 on a wrong one, before any command
    /// has opened the home, so nothing is written.
    pub fn unlock_profile_key(
        &self,
        passphrase: &crate::keyfile::Passphrase,
    ) -> Result<SigningKey, EngineError> {
        let text = self.read_profile_key_file()?;
        crate::keyfile::open(&self.profile_key_path(), &text, passphrase)
    }

    /// Takes the home's exclusive lock, or fails at once if another command holds it,
    /// naming the holder (its process and command line, written into the lock file by
    /// whoever holds it).
    pub fn lock(&self) -> Result<Flock<File>, EngineError> {
        let path = self.lock_path();
        // Never through a link, never blocking on a FIFO planted there.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        if !file
            .metadata()
            .map_err(|e| EngineError::io(&path, e))?
            .is_file()
        {
            return Err(EngineError::io(
                &path,
                "not a regular file (a FIFO, socket or device stands there); refused",
            ));
        }
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => {
                // args_os: an argument that is not UTF-8 (a hostile file name) must not panic.
                let command: Vec<String> = std::env::args_os()
                    .map(|a| pacsguard_events::escape_bytes(a.as_encoded_bytes()))
                    .collect();
                let holder = format!("pid {}: {}", std::process::id(), command.join(" "));
                // Only a courtesy for the next command's message: the lock is what counts.
                // Written over the old line and then cut to length (not emptied first), so
                // a command reading it meanwhile never finds it empty.
                let _ = std::os::unix::fs::FileExt::write_all_at(&*locked, holder.as_bytes(), 0)
                    .and_then(|()| locked.set_len(holder.len() as u64));
                Ok(locked)
            }
            Err((mut file, _)) => {
                // Bytes, not a String: a line cut inside a multi-byte character (a long
                // command line) must still name the holder, not read as nothing.
                let mut holder = Vec::new();
                let _ = (&mut file)
                    .take(MAX_LOCK_HOLDER_BYTES)
                    .read_to_end(&mut holder);
                let holder = pacsguard_events::escape_bytes(holder.trim_ascii());
                Err(EngineError::Locked {
                    home: self.dir.clone(),
                    lock: path,
                    holder: if holder.is_empty() {
                        "a command that has not named itself yet".into()
                    } else {
                        holder
                    },
                })
            }
        }
    }

    /// The bus with this home's sinks: the audit trail. Returns also what opening the
    /// trail found (a torn tail cut off, unsigned records adopted), for the caller to put
    /// on the record. Each checkpoint is also kept in the store through `handoff`, that
    /// of the caller's own store handle, so that a checkpoint signed while that handle
    /// writes is written by it rather than wait on its lock.
    pub fn open_trail(
        &self,
        key: &SigningKey,
        audit: &AuditConfig,
        options: TrailOptions,
        handoff: &TrailMarkHandoff,
    ) -> Result<(EventBus, Opening), EngineError> {
        self.open_trail_keeping_marks_in(key, audit, options, handoff, self.store_path())
    }

    /// [`Home::open_trail`], keeping the checkpoint copies in the store at `store`
    /// (`store reinit`: the new store, never the refused one, which is evidence).
    pub(crate) fn open_trail_keeping_marks_in(
        &self,
        key: &SigningKey,
        audit: &AuditConfig,
        options: TrailOptions,
        handoff: &TrailMarkHandoff,
        store: PathBuf,
    ) -> Result<(EventBus, Opening), EngineError> {
        let signer = self.trail_signer(key)?;
        let origin = signer.verifier().name().to_string();
        let files = TrailFiles {
            log: self.audit_log_path(),
            checkpoints: self.checkpoints_path(),
            witness: audit.witness.clone(),
        };
        let durability = match audit.fsync {
            FsyncPolicy::Batch => Durability::Batch,
            FsyncPolicy::Record => Durability::EveryRecord,
        };
        let options = TrailOptions {
            durability,
            ..options
        };
        let (mut sink, opening) = AuditSink::open(files, hostname(), origin, signer, options)?;
        // The store keeps the newest checkpoint too: a trail put back to an earlier copy
        // then disagrees with it even when no baseline changed in between.
        let handoff = handoff.clone();
        sink.mirror_checkpoints(Box::new(move |note| {
            if std::fs::symlink_metadata(&store).is_err() {
                return Err(format!("{}: missing", store.display()));
            }
            handoff.keep(&store, note).map_err(|e| e.to_string())
        }));
        let mut bus = EventBus::new();
        bus.add_sink(Box::new(sink));
        Ok((bus, opening))
    }

    /// The trail's signer: this home's key under the name recorded in `trail.pub`
    /// (written on first use). The name is the trail's origin, a schema-less URL-like
    /// name as C2SP recommends: `pacsguard.local/<host>/<key fingerprint>`, so two hosts
    /// of the same name (a cloned machine) never share one. Homes created before keep
    /// the name in their `trail.pub` (`pacsguard-<host>`).
    pub(crate) fn trail_signer(&self, key: &SigningKey) -> Result<Signer, EngineError> {
        let path = self.trail_key_path();
        let bad = |reason: String| EngineError::Key {
            path: path.clone(),
            reason,
        };
        match crate::files::read_text(&path, crate::files::MAX_SMALL_FILE_BYTES)? {
            Some(text) => {
                let verifier = Verifier::parse(text.trim()).map_err(|e| bad(e.to_string()))?;
                let signer =
                    Signer::new(verifier.name(), key.clone()).map_err(|e| bad(e.to_string()))?;
                if signer.verifier() != &verifier {
                    return Err(bad(
                        "it is not the public key of this home's signing key".into()
                    ));
                }
                Ok(signer)
            }
            None => self.write_trail_key(key, &trail_origin(key)),
        }
    }

    /// The key that verifies this home's trail (as `trail.pub` names it).
    pub(crate) fn trail_verifier(&self, key: &SigningKey) -> Result<Verifier, EngineError> {
        Ok(self.trail_signer(key)?.verifier().clone())
    }

    /// Writes `trail.pub` for a trail of `origin` signed by `key`.
    fn write_trail_key(&self, key: &SigningKey, origin: &str) -> Result<Signer, EngineError> {
        let path = self.trail_key_path();
        let signer = Signer::new(origin, key.clone()).map_err(|e| EngineError::Key {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(
            &path,
            format!("{}\n", signer.verifier().encode()).as_bytes(),
            0o644,
        )?;
        Ok(signer)
    }

    /// Gives the next trail of this home its own origin (`audit reinit`): the same key
    /// never signs two unrelated trees under one name, so a checkpoint of the old trail
    /// held by a witness or a collector is never mistaken for a fork of the new one.
    pub(crate) fn new_trail_origin(&self, key: &SigningKey, epoch: i64) -> Result<(), EngineError> {
        self.write_trail_key(key, &format!("{}/{epoch}", trail_origin(key)))
            .map(|_| ())
    }
}

/// Puts on the record what opening the trail repaired or adopted, whoever opened it (a
/// command once its cross-checks passed, a watcher catching up after a full disk).
pub fn record_opening(bus: &mut EventBus, opening: &Opening) -> Result<(), EngineError> {
    for detail in opening_details(opening) {
        bus.emit(&Event::new(
            current_actor(),
            Action::Audit,
            Outcome::Success,
            detail,
        ))?;
    }
    Ok(())
}

/// The origin of a home's trail: a schema-less URL-like name, as C2SP recommends, unique
/// per key: `pacsguard.local/<host>/<key fingerprint>`.
fn trail_origin(key: &SigningKey) -> String {
    let public = hex::encode(key.verifying_key().as_bytes());
    format!(
        "pacsguard.local/{}/{}",
        pacsguard_audit::safe_name(&hostname()),
        &public[..16]
    )
}

/// What opening the trail found and did, one sentence each.
fn opening_details(opening: &Opening) -> Vec<String> {
    let mut details = Vec::new();
    if let Some((offset, length)) = opening.torn_tail {
        details.push(format!(
            "audit trail: a record cut short by a crash ({length} bytes at byte {offset}) was discarded; it was never acknowledged"
        ));
    }
    if let Some((offset, length)) = opening.torn_checkpoint {
        details.push(format!(
            "audit trail: a checkpoint line cut short by an interrupted write (a full disk or a crash; {length} bytes at byte {offset} of checkpoints.jsonl) was cut off; the records it would have signed are signed into the next checkpoint"
        ));
    }
    if let Some(size) = opening.witness_behind_by_crash {
        details.push(format!(
            "audit trail: the witness held the checkpoint before the last ({size} records; a command was killed between its checkpoint and the witness copy); the next checkpoint brings it up to date"
        ));
    }
    if opening.adopted > 0 {
        details.push(format!(
            "audit trail: {} record(s) after the last checkpoint, each carrying this home's record MAC (written by a PacsGuard command killed, or stopped by a full disk, before it signed them), are signed into the next checkpoint",
            opening.adopted
        ));
    }
    details
}

/// The most of `audit.log` read to tell an interrupted init (one record of a few hundred
/// bytes) from a trail that holds more; anything larger is kept and refused.
const MAX_INTERRUPTED_INIT_LOG_BYTES: u64 = 64 << 10;

/// This machine's name, for records and the trail's origin.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
