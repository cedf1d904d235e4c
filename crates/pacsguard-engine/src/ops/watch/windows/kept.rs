//! The windows kept for images held for room ([`Windows::keep_for`]) outlive the
//! watcher: saved in the home at each checkpoint that changed them, restored at the next
//! start before its catch-up (issue 11, session 50). Lost at a stop, an honest
//! re-compression held at the stop was judged at the restart by the windows open then:
//! seen inside a window that ended meanwhile, it alerted.
//!
//! Verified, never trusted: the file carries a keyed BLAKE3 MAC (the key derived from the
//! windows' seal key, so from the home's signing key) over everything in it, and each
//! window in it must still pass [`maintenance::refusal`] (its own seal, a guarded root)
//! and cover each path kept under it. A file that fails is refused whole, said as an
//! alert, and every held image is judged by the windows open then (a false alarm at
//! worst, never a forged image softened). A file deleted does the same. An older file put
//! back is harmless: each entry names the file's state as the window saw it (device,
//! inode, size, mtime, ctime), and a window is used only while the file is in exactly
//! that state, which only a change the watcher saw inside that window left.

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::EngineError;

/// The file in the home.
pub const KEPT_WINDOWS_FILE: &str = "watch-kept-windows.json";

/// Bytes of the file read: [`MAX_KEPT_WINDOWS`] entries of paths of a few hundred bytes
/// (written in hex) fit; a larger file is not the watcher's, and is refused.
pub const MAX_KEPT_WINDOWS_FILE_BYTES: u64 = 96 * 1024 * 1024;

/// The MAC's key derivation context (never change it: a kept file would be refused).
const MAC_CONTEXT: &str = "pacsguard 2026-12 watch kept windows v1";

#[derive(Serialize, Deserialize)]
struct Saved {
    body: Body,
    /// Keyed BLAKE3 (hex) of `body` as serialized.
    mac: String,
}

#[derive(Serialize, Deserialize, Default)]
struct Body {
    windows: Vec<MaintenanceWindow>,
    kept: Vec<KeptEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeptEntry {
    /// The path's bytes, in hex (a path need not be UTF-8).
    path: String,
    /// Its window, by index in `windows`.
    window: usize,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
}

impl KeptEntry {
    fn state(&self) -> FileState {
        let at = |(sec, nsec): (i64, u32)| pacsguard_fs::Timestamp { sec, nsec };
        (
            self.dev,
            self.ino,
            self.size,
            at(self.mtime),
            at(self.ctime),
        )
    }
}

impl Windows {
    fn kept_path(&self) -> PathBuf {
        self.path.with_file_name(KEPT_WINDOWS_FILE)
    }

    fn mac(&self, body: &Body) -> blake3::Hash {
        // A struct of numbers and strings always serializes.
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        blake3::keyed_hash(&self.key.derive(MAC_CONTEXT), &bytes)
    }

    /// Saves the windows kept when they changed since the last save (none kept: the file
    /// goes). `Ok(true)` when it was written or removed.
    pub fn save_kept(&mut self) -> Result<bool, EngineError> {
        if !self.kept_changed {
            return Ok(false);
        }
        let path = self.kept_path();
        if self.kept.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io(&path, e)),
            }
            self.kept_changed = false;
            return Ok(true);
        }
        let mut body = Body::default();
        let mut index: HashMap<(u64, &str), usize> = HashMap::new();
        for (file, (window, state)) in &self.kept {
            let at = *index.entry((window.id, &window.seal)).or_insert_with(|| {
                body.windows.push(window.clone());
                body.windows.len() - 1
            });
            let (dev, ino, size, mtime, ctime) = *state;
            body.kept.push(KeptEntry {
                path: hex::encode(file.as_os_str().as_bytes()),
                window: at,
                dev,
                ino,
                size,
                mtime: (mtime.sec, mtime.nsec),
                ctime: (ctime.sec, ctime.nsec),
            });
        }
        let mac = self.mac(&body).to_hex().to_string();
        let text = serde_json::to_vec(&Saved { body, mac }).unwrap_or_default();
        crate::durable::write_atomically(&path, &text, 0o600)?;
        self.kept_changed = false;
        Ok(true)
    }

    /// Restores the windows a previous watcher kept ([`Windows::save_kept`]), verified:
    /// `Ok` with how many were restored (those whose file is no longer in the state seen
    /// are dropped: they would never be used), `Err` with why the file is refused whole
    /// (then replaced at the next save, so that it is said once, not at every start).
    pub fn restore_kept(&mut self) -> Result<usize, String> {
        let restored = self.restore_verified();
        if restored.is_err() {
            self.kept_changed = true;
        }
        restored
    }

    fn restore_verified(&mut self) -> Result<usize, String> {
        let path = self.kept_path();
        let bytes = match crate::files::read_bounded(&path, MAX_KEPT_WINDOWS_FILE_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(0),
            Err(e) => return Err(e.to_string()),
        };
        let saved: Saved = serde_json::from_slice(&bytes)
            .map_err(|e| format!("not what the watcher writes: {e}"))?;
        let mac = blake3::Hash::from_hex(&saved.mac).map_err(|_| "its MAC is not hex")?;
        // Compared in constant time (`blake3::Hash`'s equality).
        if self.mac(&saved.body) != mac {
            return Err("its MAC does not match (edited on disk)".to_string());
        }
        if saved.body.kept.len() > MAX_KEPT_WINDOWS {
            return Err(format!(
                "it keeps {} windows, more than MAX_KEPT_WINDOWS ({MAX_KEPT_WINDOWS})",
                saved.body.kept.len()
            ));
        }
        if let Some((window, why)) = saved
            .body
            .windows
            .iter()
            .find_map(|w| maintenance::refusal(w, &self.key, &self.roots).map(|why| (w, why)))
        {
            return Err(format!("{}: {why}", window.describe()));
        }
        let mut restored = Vec::new();
        for entry in &saved.body.kept {
            let file = hex::decode(&entry.path)
                .map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
                .map_err(|_| "a path in it is not hex".to_string())?;
            let window = saved
                .body
                .windows
                .get(entry.window)
                .ok_or_else(|| "an entry names no window in it".to_string())?;
            if !window.covers(&file) {
                return Err(format!(
                    "{} does not cover {} kept under it",
                    window.describe(),
                    pacsguard_events::escape_path(&file)
                ));
            }
            if file_state_now(&file) == Some(entry.state()) {
                restored.push((file, (window.clone(), entry.state())));
            }
        }
        let count = restored.len();
        for (file, kept) in restored {
            if self.kept.len() >= MAX_KEPT_WINDOWS {
                break;
            }
            self.kept.insert(file, kept);
        }
        // What was dropped goes at the next save.
        self.kept_changed = count != saved.body.kept.len();
        Ok(count)
    }
}
