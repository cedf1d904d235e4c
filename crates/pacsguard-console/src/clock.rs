//! The console's clock, in whole seconds since the epoch. Session limits, lockouts, the
//! setup token's expiry and TOTP steps all read it, so a test can move time forward
//! instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// A clock that stands still until told to move: for tests.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Whether this build honours a test clock ([`offset_clock`]): only one with the cargo
/// feature `test-clock` *and* debug assertions. The feature alone is not enough: the
/// `pacsguard` package enables it for its own tests (a dev-dependency), and cargo unifies
/// dev-dependency features into the binary `cargo test` builds, so `target/debug/pacsguard`
/// has it after a test run. Debug assertions are what the release profile never has (the
/// workspace's `[profile.release]` must not turn them on; a test checks it), so the
/// binary that is shipped (`cargo build --release`, `cargo install`, `scripts/guard.sh`)
/// has no such code, whatever features were asked for.
pub const TEST_CLOCK_BUILT_IN: bool = cfg!(all(feature = "test-clock", debug_assertions));

/// The system's clock moved ahead by the number of seconds in `file` (read at each
/// look; absent or unreadable: none), in a build with the `test-clock` feature and debug
/// assertions ([`TEST_CLOCK_BUILT_IN`]); `None` in every other build, which has no such
/// code. A browser test moves the console past
/// its 15-minute idle limit this way instead of sleeping.
pub fn offset_clock(file: std::path::PathBuf) -> Option<Arc<dyn Clock>> {
    #[cfg(all(feature = "test-clock", debug_assertions))]
    {
        Some(Arc::new(offset::OffsetClock { file }))
    }
    #[cfg(not(all(feature = "test-clock", debug_assertions)))]
    {
        let _ = file;
        None
    }
}

#[cfg(all(feature = "test-clock", debug_assertions))]
mod offset {
    use super::{Clock, SystemClock};

    /// Longest offset file read (a number of seconds).
    const MAX_OFFSET_FILE_BYTES: u64 = 32;

    #[derive(Debug)]
    pub(super) struct OffsetClock {
        pub(super) file: std::path::PathBuf,
    }

    impl Clock for OffsetClock {
        fn now(&self) -> i64 {
            use std::io::Read as _;
            let mut text = String::new();
            let offset = std::fs::File::open(&self.file)
                .and_then(|f| f.take(MAX_OFFSET_FILE_BYTES).read_to_string(&mut text))
                .ok()
                .and_then(|_| text.trim().parse::<i64>().ok())
                .unwrap_or(0);
            SystemClock.now().saturating_add(offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset file is honoured exactly when the feature is built in: `cargo test -p
    /// pacsguard-console` runs this without it (ignored), the workspace's tests with it
    /// (the `pacsguard` package's dev-dependency turns it on).
    #[test]
    fn the_offset_clock_exists_only_with_the_test_clock_feature() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("offset");
        std::fs::write(&file, "5000").expect("write");
        let clock = offset_clock(file);
        assert_eq!(clock.is_some(), TEST_CLOCK_BUILT_IN);
        if let Some(clock) = clock {
            assert!(clock.now() - SystemClock.now() >= 4_990);
        }
    }
}
