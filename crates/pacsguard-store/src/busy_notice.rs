//! A debug build's notice that a busy wait of a store began (review r31-console): a test
//! that makes another process hold the store's lock while the console writes (an intruder
//! with `sqlite3 ... 'BEGIN IMMEDIATE'`) must act once the console is waiting for that
//! lock, and the only way to know it without this was to sleep for a guessed time (3 s
//! for an Argon2id hash and a request), which a slow, loaded machine outruns.
//!
//! [`watch_busy_waits`] follows one store; [`BusyWaitWatch::first_wait`] returns once a
//! statement of this process on that store began to wait for another's lock (SQLite's
//! first call of the busy handler, [`crate::companions`]), at most [`MAX_NOTICE_WAIT`].
//! A release build never notices: its watch answers `false` at once and the busy handler
//! pays nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest [`BusyWaitWatch::first_wait`] waits: a test whose wait never begins fails
/// instead of hanging.
pub const MAX_NOTICE_WAIT: Duration = Duration::from_secs(120);

/// The stores followed, each with its notice.
static WATCHED: Mutex<Vec<(PathBuf, Arc<Notice>)>> = Mutex::new(Vec::new());

#[derive(Debug, Default)]
struct Notice {
    began: Mutex<bool>,
    said: Condvar,
}

/// A store followed for its busy waits (debug builds); no longer followed once dropped.
#[derive(Debug)]
pub struct BusyWaitWatch {
    store: PathBuf,
    notice: Arc<Notice>,
}

/// Follows the busy waits of the store at `store` (as it is named or through any link to
/// it) from now on.
pub fn watch_busy_waits(store: &Path) -> BusyWaitWatch {
    let store = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    let notice = Arc::new(Notice::default());
    if cfg!(debug_assertions)
        && let Ok(mut watched) = WATCHED.lock()
    {
        watched.push((store.clone(), notice.clone()));
    }
    BusyWaitWatch { store, notice }
}

impl BusyWaitWatch {
    /// Whether a busy wait of the store began since the watch did: waits for the first
    /// one, at most [`MAX_NOTICE_WAIT`]; `false` past it, or at once in a release build.
    pub fn first_wait(&self) -> bool {
        if !cfg!(debug_assertions) {
            return false;
        }
        let deadline = Instant::now() + MAX_NOTICE_WAIT;
        let Ok(mut began) = self.notice.began.lock() else {
            return false;
        };
        while !*began {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            began = match self.notice.said.wait_timeout(began, left) {
                Ok((began, _)) => began,
                Err(_) => return false,
            };
        }
        true
    }
}

impl Drop for BusyWaitWatch {
    fn drop(&mut self) {
        if let Ok(mut watched) = WATCHED.lock() {
            watched.retain(|(store, notice)| {
                !(store == &self.store && Arc::ptr_eq(notice, &self.notice))
            });
        }
    }
}

/// A busy wait of `store` began on this thread: the watches of it are told (debug
/// builds, and only when one is followed: no file system call otherwise).
pub(crate) fn busy_wait_began(store: &Path) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(watched) = WATCHED.lock() else {
        return;
    };
    if watched.is_empty() {
        return;
    }
    let store = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    for (_, notice) in watched.iter().filter(|(s, _)| *s == store) {
        if let Ok(mut began) = notice.began.lock() {
            *began = true;
            notice.said.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_hears_a_wait_of_its_store_only() {
        let home = tempfile::tempdir().expect("tempdir");
        let store = home.path().join("store.sqlite");
        std::fs::write(&store, b"").expect("store");
        let other = home.path().join("other.sqlite");
        let watch = watch_busy_waits(&store);
        busy_wait_began(&other);
        assert!(!*watch.notice.began.lock().expect("notice"));
        let began = std::thread::spawn(move || busy_wait_began(&store));
        assert!(watch.first_wait());
        began.join().expect("told");
        drop(watch);
        assert!(WATCHED.lock().expect("watched").iter().all(|(s, _)| {
            *s != home
                .path()
                .join("store.sqlite")
                .canonicalize()
                .expect("path")
        }));
    }
}
