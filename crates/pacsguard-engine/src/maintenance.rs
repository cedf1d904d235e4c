//! Maintenance windows: a legitimate mass change (studies migrated into an archive tree,
//! originals deleted) announced beforehand, with a reason, a root and an end time.
//!
//! `pacsguard maintenance start|list|end` writes `HOME/maintenance.json` without taking
//! the home's lock (the running watcher holds it); the watcher reads the file again
//! whenever it changes, puts each window it learns of on the trail (a
//! `maintenance-window` warning: who declared it, why, until when), reports changes
//! inside it as `info` (each still on the trail) and never calls them ransomware, and
//! summarises the window when it ends or expires. A window expires on its own: nothing
//! has to remember to end it. A touched canary and malicious content in an arrival still
//! alert inside a window.
//!
//! A window covers a guarded root or a directory inside one, never more: `maintenance
//! start /` is refused. Each window carries a seal (keyed BLAKE3 under a secret derived
//! from the home's signing key) over every field; the watcher refuses, with a finding, a
//! window whose seal does not match (edited on disk: a reason, an owner or an end changed)
//! or that covers no guarded root. Whoever can read `signing.key` can forge the seal, as
//! they can forge the trail: it keeps out writers of `maintenance.json`, not key holders.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::durable::write_atomically;
use crate::error::EngineError;
use crate::home::Home;

/// The file in the home.
pub const MAINTENANCE_FILE: &str = "maintenance.json";

/// Windows declared at once: each one opens a blind spot for ransomware detection, so
/// their number is bounded.
pub const MAX_MAINTENANCE_WINDOWS: usize = 32;

/// The longest window: a maintenance that outlasts a week is a configuration change
/// (`accept`, a new policy), not a window.
pub const MAX_MAINTENANCE_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Bytes of the file read; a larger one is refused (it is not what the CLI writes).
pub const MAX_MAINTENANCE_FILE_BYTES: u64 = 256 * 1024;

/// Bytes of a reason kept.
pub const MAX_REASON_BYTES: usize = 1000;

/// The file in the home where a running watcher lists the windows it has taken (their id
/// and seal, with its pid), written each time it opens or closes one: what
/// `maintenance start` waits for ([`wait_for_ack`]).
pub const ACK_FILE: &str = "maintenance-ack.json";

/// The longest `maintenance start` waits for a running watcher to acknowledge the window
/// it declared (issue 11, session 50: it returned before the watcher had looked, up to a
/// second (the watcher's `MAINTENANCE_POLL`) later, so a change made right after the command
/// could be judged outside the window). The watcher looks every second, between two
/// turns of its loop; a turn busy with a large batch can hold it longer, and past this
/// the command says so rather than wait on.
pub const MAINTENANCE_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the acknowledgement read: the watcher writes about 100 per open window (at
/// most [`MAX_MAINTENANCE_WINDOWS`]); a larger file is not its own.
pub const MAX_ACK_FILE_BYTES: u64 = 16 * 1024;

/// Whether a running watcher took a declared window ([`wait_for_ack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledged {
    /// The watcher with this pid listed it: changes from now on are judged inside it.
    Yes { pid: u32 },
    /// No watcher runs on this home: the next one takes it at its start.
    NoWatcher,
    /// The watcher with this pid did not list it within the wait.
    NotInTime { pid: u32, waited: Duration },
}

impl Acknowledged {
    /// One line for the operator.
    pub fn describe(&self) -> String {
        match self {
            Acknowledged::Yes { pid } => format!(
                "acknowledged by the running watcher (pid {pid}): changes from now on are \
                 judged inside the window"
            ),
            Acknowledged::NoWatcher => "no watcher is running on this home: the window is \
                 taken by the next one at its start"
                .to_string(),
            Acknowledged::NotInTime { pid, waited } => format!(
                "the running watcher (pid {pid}) has not acknowledged the window within {} s \
                 (MAINTENANCE_ACK_TIMEOUT): changes made before it does may be judged \
                 outside it; `pacsguard maintenance list` shows it declared, the trail's \
                 `maintenance-window` record when it is taken",
                waited.as_secs()
            ),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Ack {
    pid: u32,
    /// (id, seal) of each window open.
    windows: Vec<(u64, String)>,
}

/// The watcher's side: lists `open` as the windows it has taken.
pub(crate) fn write_ack<'a>(
    home: &Path,
    open: impl Iterator<Item = &'a MaintenanceWindow>,
) -> Result<(), EngineError> {
    let ack = Ack {
        pid: std::process::id(),
        windows: open.map(|w| (w.id, w.seal.clone())).collect(),
    };
    // A struct of numbers and strings always serializes.
    let text = serde_json::to_vec(&ack).unwrap_or_default();
    write_atomically(&home.join(ACK_FILE), &text, 0o600)
}

/// Whether the watcher `pid` lists `window` in its acknowledgement.
fn acknowledged_by(home: &Path, pid: u32, window: &MaintenanceWindow) -> bool {
    let Ok(Some(bytes)) = crate::files::read_bounded(&home.join(ACK_FILE), MAX_ACK_FILE_BYTES)
    else {
        return false;
    };
    serde_json::from_slice::<Ack>(&bytes).is_ok_and(|ack| {
        ack.pid == pid
            && ack
                .windows
                .iter()
                .any(|(id, seal)| *id == window.id && *seal == window.seal)
    })
}

/// Waits, at most `timeout` ([`MAINTENANCE_ACK_TIMEOUT`]), until the watcher running on
/// `home` lists `window` as taken; says at once when none runs.
pub fn wait_for_ack(home: &Home, window: &MaintenanceWindow, timeout: Duration) -> Acknowledged {
    let began = std::time::Instant::now();
    loop {
        let Some(pid) = crate::ops::watcher_pid(&home.dir) else {
            return Acknowledged::NoWatcher;
        };
        if acknowledged_by(&home.dir, pid, window) {
            return Acknowledged::Yes { pid };
        }
        let waited = began.elapsed();
        if waited >= timeout {
            return Acknowledged::NotInTime { pid, waited };
        }
        std::thread::sleep(Duration::from_millis(50).min(timeout - waited));
    }
}

/// One announced window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    /// Unique within the file; `end` takes it.
    pub id: u64,
    /// The directory the window covers (and everything below it), canonical.
    pub root: PathBuf,
    /// Seconds since the epoch when it ends by itself.
    pub until: u64,
    pub reason: String,
    /// Who declared it (the real user, and the sudo user if any).
    pub declared_by: String,
    pub declared_at: u64,
    /// Keyed BLAKE3 (hex) of the other fields (see [`SealKey`]).
    #[serde(default)]
    pub seal: String,
}

/// The secret that seals windows, derived from the home's signing key.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn of(key: &ed25519_dalek::SigningKey) -> SealKey {
        SealKey(blake3::derive_key(
            "PacsGuard maintenance window seal v1",
            &key.to_bytes(),
        ))
    }

    fn tag(&self, window: &MaintenanceWindow) -> String {
        let unsealed = MaintenanceWindow {
            seal: String::new(),
            ..window.clone()
        };
        // Serializing a struct of strings and numbers cannot fail; an empty input would
        // only make the seal not match.
        let bytes = serde_json::to_vec(&unsealed).unwrap_or_default();
        blake3::keyed_hash(&self.0, &bytes).to_hex().to_string()
    }

    /// A key for another MAC of the watcher's, derived from this one under `context`
    /// (the windows kept for held images, see `Windows::save_kept`).
    pub(crate) fn derive(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.0)
    }

    pub fn seal(&self, window: &mut MaintenanceWindow) {
        window.seal = self.tag(window);
    }

    /// Whether `window` is as `pacsguard maintenance start` wrote it.
    pub fn check(&self, window: &MaintenanceWindow) -> bool {
        let tag = self.tag(window);
        // Compared in constant time: the tag is a secret's output.
        window.seal.len() == tag.len()
            && blake3::Hash::from_hex(&window.seal)
                .is_ok_and(|seal| blake3::Hash::from_hex(&tag).is_ok_and(|t| t == seal))
    }
}

/// Why the watcher does not honour a window, if it does not.
pub fn refusal(window: &MaintenanceWindow, key: &SealKey, roots: &[PathBuf]) -> Option<String> {
    if !key.check(window) {
        return Some(
            "its seal does not match what was declared (maintenance.json edited on disk, \
             or written by something other than `pacsguard maintenance start`)"
                .to_string(),
        );
    }
    if !roots.iter().any(|root| window.root.starts_with(root)) {
        return Some(format!(
            "{} is not a guarded root or inside one",
            pacsguard_events::escape_path(&window.root)
        ));
    }
    None
}

/// Every root of the signed profile: what a window may cover.
pub fn guarded_roots(home: &Home) -> Result<Vec<PathBuf>, EngineError> {
    let key = home.load_key()?;
    // Read only: this never judges the store, the commands that use it do.
    let Some(store) = pacsguard_store::Store::open_read_only(&home.store_path())? else {
        return Ok(Vec::new());
    };
    Ok(store
        .load(&home.profile_public_key(&key)?)?
        .map(|(baseline, _)| baseline.roots.iter().map(|r| r.spec.path.clone()).collect())
        .unwrap_or_default())
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl MaintenanceWindow {
    pub fn is_active(&self, now: SystemTime) -> bool {
        epoch(now) < self.until
    }

    pub fn covers(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
    }

    pub fn until_text(&self) -> String {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(self.until);
        humantime::format_rfc3339_seconds(t).to_string()
    }

    /// One line for people and the trail.
    pub fn describe(&self) -> String {
        format!(
            "maintenance window {} on {} until {}, declared by {}: {}",
            self.id,
            pacsguard_events::escape_path(&self.root),
            self.until_text(),
            self.declared_by,
            self.reason
        )
    }
}

pub fn maintenance_path(home: &Home) -> PathBuf {
    home.dir.join(MAINTENANCE_FILE)
}

/// Every window in the file (none when there is no file).
pub fn load(path: &Path) -> Result<Vec<MaintenanceWindow>, EngineError> {
    // Regular file only, no link followed, never more than the limit: a FIFO or a link to
    // /dev/zero planted in the home must not hang or exhaust the watcher.
    let Some(bytes) = crate::files::read_bounded(path, MAX_MAINTENANCE_FILE_BYTES)? else {
        return Ok(Vec::new());
    };
    let windows: Vec<MaintenanceWindow> =
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
            path: path.to_path_buf(),
            reason: format!("not a list of maintenance windows: {e}"),
        })?;
    // A window ends at most MAX_MAINTENANCE_DURATION after it was declared: one that
    // claims to run further (an edited file: "until the year 10000") is refused whole,
    // not taken as a week-long blind spot, and never shown as a time that cannot be
    // formatted.
    let latest = epoch(SystemTime::now()).saturating_add(MAX_MAINTENANCE_DURATION.as_secs());
    if let Some(window) = windows.iter().find(|w| w.until > latest) {
        return Err(EngineError::Config {
            path: path.to_path_buf(),
            reason: format!(
                "window {} ends more than {} days from now (until = {}): refused",
                window.id,
                MAX_MAINTENANCE_DURATION.as_secs() / 86_400,
                window.until
            ),
        });
    }
    if windows.len() > MAX_MAINTENANCE_WINDOWS {
        return Err(EngineError::Config {
            path: path.to_path_buf(),
            reason: format!("more than {MAX_MAINTENANCE_WINDOWS} windows"),
        });
    }
    Ok(windows)
}

fn save(path: &Path, windows: &[MaintenanceWindow]) -> Result<(), EngineError> {
    let text = serde_json::to_vec_pretty(windows).map_err(|e| EngineError::Config {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomically(path, &text, 0o600)
}

fn usage(text: String) -> EngineError {
    EngineError::Usage(text)
}

/// Declares a window on `root` (a guarded root or inside one) until `until`; expired
/// windows are dropped from the file.
pub fn start(
    home: &Home,
    root: &Path,
    until: SystemTime,
    reason: &str,
) -> Result<MaintenanceWindow, EngineError> {
    if !home.is_initialized() {
        return Err(EngineError::NotInitialized(home.dir.clone()));
    }
    declare(home, &guarded_roots(home)?, root, until, reason)
}

/// [`start`] with the guarded roots given.
pub(crate) fn declare(
    home: &Home,
    roots: &[PathBuf],
    root: &Path,
    until: SystemTime,
    reason: &str,
) -> Result<MaintenanceWindow, EngineError> {
    let root = root.canonicalize().map_err(|e| EngineError::io(root, e))?;
    if !root.is_dir() {
        return Err(usage(format!(
            "maintenance: {} is not a directory",
            pacsguard_events::escape_path(&root)
        )));
    }
    // A window is a blind spot: it covers a guarded root or part of one, never more.
    if !roots.iter().any(|r| root.starts_with(r)) {
        return Err(usage(format!(
            "maintenance: {} is not a guarded root or inside one (guarded: {}); nothing was declared",
            pacsguard_events::escape_path(&root),
            if roots.is_empty() {
                "nothing yet".to_string()
            } else {
                roots
                    .iter()
                    .map(|r| pacsguard_events::escape_path(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    let key = SealKey::of(&home.load_key()?);
    let now = SystemTime::now();
    let length = until
        .duration_since(now)
        .map_err(|_| usage("maintenance: --until is in the past".into()))?;
    if length > MAX_MAINTENANCE_DURATION {
        return Err(usage(format!(
            "maintenance: a window may last at most {} days (--until is {:.1} days away)",
            MAX_MAINTENANCE_DURATION.as_secs() / 86_400,
            length.as_secs_f64() / 86_400.0
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(usage("maintenance: --reason must say why".into()));
    }
    let mut reason = pacsguard_events::escape_bytes(reason.as_bytes());
    if reason.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let path = maintenance_path(home);
    let mut windows = load(&path)?;
    windows.retain(|w| w.is_active(now));
    if windows.len() >= MAX_MAINTENANCE_WINDOWS {
        return Err(usage(format!(
            "maintenance: {MAX_MAINTENANCE_WINDOWS} windows are open already; end one first"
        )));
    }
    let actor = crate::actor::current_actor();
    let mut window = MaintenanceWindow {
        id: windows.iter().map(|w| w.id).max().unwrap_or(0) + 1,
        root,
        until: epoch(until).max(epoch(now) + 1),
        reason,
        declared_by: match &actor.sudo_user {
            Some(sudo) => format!("{} (sudo by {sudo})", actor.user),
            None => actor.user.clone(),
        },
        declared_at: epoch(now),
        seal: String::new(),
    };
    key.seal(&mut window);
    windows.push(window.clone());
    save(&path, &windows)?;
    Ok(window)
}

/// The windows still open.
pub fn list(home: &Home) -> Result<Vec<MaintenanceWindow>, EngineError> {
    let now = SystemTime::now();
    Ok(load(&maintenance_path(home))?
        .into_iter()
        .filter(|w| w.is_active(now))
        .collect())
}

/// Ends the window `id` now; returns it.
pub fn end(home: &Home, id: u64) -> Result<MaintenanceWindow, EngineError> {
    let path = maintenance_path(home);
    let now = SystemTime::now();
    let mut windows = load(&path)?;
    windows.retain(|w| w.is_active(now));
    let Some(index) = windows.iter().position(|w| w.id == id) else {
        return Err(usage(format!("maintenance: no open window {id}")));
    };
    let window = windows.remove(index);
    save(&path, &windows)?;
    Ok(window)
}

/// Parses `--until`: an RFC 3339 time, or a duration from now ("2h", "90min").
pub fn parse_until(text: &str) -> Result<SystemTime, EngineError> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    humantime::parse_duration(text)
        .map(|d| SystemTime::now() + d)
        .map_err(|_| {
            usage(format!(
                "maintenance: --until {text:?} is neither a time (2026-12-01T18:00:00Z) nor a duration (2h)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_declared_listed_ended_and_expire() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let home = Home::new(tmp.path().join("home"));
        home.init().expect("init");
        let root = tmp.path().join("store");
        std::fs::create_dir(&root).expect("test fixture");
        let soon = SystemTime::now() + Duration::from_secs(3600);
        let roots = vec![root.canonicalize().expect("test fixture")];
        let w = declare(&home, &roots, &root, soon, "migration to archive B").expect("start");
        assert_eq!(w.id, 1);
        assert!(w.covers(&root.canonicalize().expect("test fixture").join("a/b.dcm")));
        assert_eq!(list(&home).expect("list"), vec![w.clone()]);
        // The limits: too long, in the past, no reason.
        let far = SystemTime::now() + MAX_MAINTENANCE_DURATION + Duration::from_secs(60);
        assert!(declare(&home, &roots, &root, far, "x").is_err());
        let just = SystemTime::now() + MAX_MAINTENANCE_DURATION - Duration::from_secs(60);
        assert!(declare(&home, &roots, &root, just, "at the limit").is_ok());
        assert!(
            declare(
                &home,
                &roots,
                &root,
                SystemTime::now() - Duration::from_secs(1),
                "x"
            )
            .is_err()
        );
        assert!(declare(&home, &roots, &root, soon, "  ").is_err());
        assert_eq!(end(&home, 1).expect("end"), w);
        assert!(end(&home, 1).is_err());
        // Expired windows are not listed.
        let mut windows = load(&maintenance_path(&home)).expect("load");
        windows[0].until = epoch(SystemTime::now()) - 1;
        save(&maintenance_path(&home), &windows).expect("save");
        assert!(list(&home).expect("list").is_empty());
    }

    /// Issue 11, session 50: `maintenance start` waits for the running watcher to list the
    /// window it declared: none running is said at once; one running that lists it, or
    /// only an older window under the same id, or nothing, is waited for at most the
    /// timeout given, and said.
    #[test]
    fn a_declared_window_waits_for_the_running_watchers_acknowledgement() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let home = Home::new(tmp.path().join("home"));
        home.init().expect("init");
        let root = tmp.path().canonicalize().expect("test fixture");
        let soon = SystemTime::now() + Duration::from_secs(3600);
        let window =
            declare(&home, std::slice::from_ref(&root), &root, soon, "CHG-1").expect("start");
        let short = Duration::from_millis(200);
        assert_eq!(wait_for_ack(&home, &window, short), Acknowledged::NoWatcher);
        // A watcher runs (this process stands for it): nothing listed yet.
        let pid = std::process::id();
        std::fs::write(
            home.dir.join("watch-running.json"),
            format!("{{\"pid\": {pid}}}"),
        )
        .expect("test fixture");
        let began = std::time::Instant::now();
        let late = wait_for_ack(&home, &window, short);
        assert!(
            matches!(late, Acknowledged::NotInTime { pid: p, .. } if p == pid),
            "{late:?}"
        );
        assert!(began.elapsed() >= short);
        assert!(late.describe().contains("not acknowledged"), "{late:?}");
        // An acknowledgement of an older window under the same id is not this one's.
        let mut older = window.clone();
        older.reason = "CHG-0".into();
        SealKey::of(&home.load_key().expect("key")).seal(&mut older);
        write_ack(&home.dir, std::iter::once(&older)).expect("ack");
        assert!(matches!(
            wait_for_ack(&home, &window, short),
            Acknowledged::NotInTime { .. }
        ));
        write_ack(&home.dir, [&older, &window].into_iter()).expect("ack");
        assert_eq!(
            wait_for_ack(&home, &window, MAINTENANCE_ACK_TIMEOUT),
            Acknowledged::Yes { pid }
        );
        // Larger than the limit (the same acknowledgement, padded): not the watcher's.
        let mut padded = std::fs::read(home.dir.join(ACK_FILE)).expect("test fixture");
        padded.resize(MAX_ACK_FILE_BYTES as usize + 1, b' ');
        std::fs::write(home.dir.join(ACK_FILE), padded).expect("test fixture");
        assert!(matches!(
            wait_for_ack(&home, &window, short),
            Acknowledged::NotInTime { .. }
        ));
    }

    /// Review finding: a window edited to end in the year 10000 made the watcher panic
    /// at every start (the time could not be shown), and any far end blinded it.
    #[test]
    fn a_window_edited_to_end_beyond_the_limit_is_refused_not_shown() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let home = Home::new(tmp.path().join("home"));
        home.init().expect("init");
        let soon = SystemTime::now() + Duration::from_secs(3600);
        declare(
            &home,
            &[tmp.path().canonicalize().expect("test fixture")],
            tmp.path(),
            soon,
            "routine",
        )
        .expect("start");
        let path = maintenance_path(&home);
        let mut windows = load(&path).expect("load");
        windows[0].until = 253_402_300_800; // 10000-01-01
        save(&path, &windows).expect("save");
        let refused = load(&path).expect_err("refused");
        assert!(refused.to_string().contains("refused"), "{refused}");
        assert!(list(&home).is_err());
    }

    #[test]
    fn the_number_of_windows_is_bounded() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let home = Home::new(tmp.path().join("home"));
        home.init().expect("init");
        let soon = SystemTime::now() + Duration::from_secs(3600);
        for _ in 0..MAX_MAINTENANCE_WINDOWS {
            declare(
                &home,
                &[tmp.path().canonicalize().expect("test fixture")],
                tmp.path(),
                soon,
                "one of many",
            )
            .expect("start");
        }
        assert!(
            declare(
                &home,
                &[tmp.path().canonicalize().expect("test fixture")],
                tmp.path(),
                soon,
                "one too many"
            )
            .is_err()
        );
        assert!(parse_until("2h").is_ok());
        assert!(parse_until("2026-12-01T18:00:00Z").is_ok());
        assert!(parse_until("tomorrow-ish").is_err());
    }

    /// Review finding: `maintenance start /` was accepted and blinded every root for a
    /// week, and a window's reason or owner could be edited on disk unnoticed.
    #[test]
    fn a_window_covers_guarded_roots_only_and_carries_a_seal() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let home = Home::new(tmp.path().join("home"));
        home.init().expect("init");
        let store = tmp
            .path()
            .canonicalize()
            .expect("test fixture")
            .join("store");
        std::fs::create_dir_all(store.join("study")).expect("test fixture");
        let roots = vec![store.clone()];
        let soon = SystemTime::now() + Duration::from_secs(3600);
        for outside in [Path::new("/"), tmp.path()] {
            let refused = declare(&home, &roots, outside, soon, "everything").expect_err("refused");
            assert!(
                refused
                    .to_string()
                    .contains("is not a guarded root or inside one"),
                "{refused}"
            );
        }
        assert!(!maintenance_path(&home).exists(), "nothing was written");
        let inside =
            declare(&home, &roots, &store.join("study"), soon, "one study").expect("start");
        let key = SealKey::of(&home.load_key().expect("key"));
        assert_eq!(refusal(&inside, &key, &roots), None);
        // Edited on disk: the reason, the owner, the end, the root.
        let edits: [fn(&mut MaintenanceWindow); 4] = [
            |w| w.reason = "approved by the CISO".into(),
            |w| w.declared_by = "pacs-admin".into(),
            |w| w.until += 60,
            |w| w.root = "/".into(),
        ];
        for edit in edits {
            let mut edited = inside.clone();
            edit(&mut edited);
            let why = refusal(&edited, &key, &roots).expect("refused");
            assert!(why.contains("seal does not match"), "{why}");
        }
        // A window sealed right but outside the roots (the roots changed since).
        assert!(
            refusal(&inside, &key, &[tmp.path().join("other")])
                .is_some_and(|why| why.contains("not a guarded root"))
        );
        let mut unsealed = inside.clone();
        unsealed.seal.clear();
        assert!(refusal(&unsealed, &key, &roots).is_some());
    }
}
