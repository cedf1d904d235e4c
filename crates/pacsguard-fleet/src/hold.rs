//! A debug build's race hook (issue 14, review r28-fleet): holds a console's request, or
//! its silence check, between reading a host's state and writing the change it judged
//! from it, so that a test can make another process move the state in that window, as
//! two reports of a host (or a copy of its home) and the silence check racing would.
//!
//! `PACSGUARD_TEST_FLEET_HOLD=<point>:<file>` holds every pass at `<point>` while
//! `<file>` exists, at most [`MAX_HOLD`], said on the console's log when it holds and
//! when it goes on. A release build never reads the variable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The variable naming the point held and the file that holds it.
pub const HOLD_VARIABLE: &str = "PACSGUARD_TEST_FLEET_HOLD";
/// The longest a pass is held: a test that forgets its file does not hang the console.
pub const MAX_HOLD: Duration = Duration::from_secs(120);

/// Where a host's state is read and then written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The silence check found a host silent and is about to write it so.
    Silence,
    /// A report was refused and its refused state is about to be written.
    Refusal,
    /// A report verified and the contact's state is about to be written.
    Contact,
    /// A report verified (its host found not revoked) and its batch is about to be
    /// stored: where a revocation races it (review r29-fleet).
    Store,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Silence => "silence",
            Point::Refusal => "refusal",
            Point::Contact => "contact",
            Point::Store => "store",
        }
    }
}

/// Holds here while the test's file exists, if the variable names `point` (debug builds
/// only); `say` is the console's log.
pub fn here(point: Point, host: &str, say: &dyn Fn(&str)) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(file) = held_by(point) else {
        return;
    };
    if !file.exists() {
        return;
    }
    say(&format!(
        "pacsguard: debug build: {HOLD_VARIABLE}: holding the {} of host {host} while {} exists",
        point.name(),
        file.display()
    ));
    let started = Instant::now();
    while file.exists() && started.elapsed() < MAX_HOLD {
        std::thread::sleep(Duration::from_millis(20));
    }
    say(&format!(
        "pacsguard: debug build: {HOLD_VARIABLE}: the {} of host {host} goes on",
        point.name()
    ));
}

fn held_by(point: Point) -> Option<PathBuf> {
    let value = std::env::var(HOLD_VARIABLE).ok()?;
    let (name, file) = value.split_once(':')?;
    (name == point.name()).then(|| PathBuf::from(file))
}
