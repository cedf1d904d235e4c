//! A journal or write-ahead log planted beside the store while the guard runs (reviews
//! r28-store2, r29-store). The store is judged with what stands beside it when the guard
//! opens it; from then on SQLite would roll a `-journal` that appears into the store at
//! the guard's next write and delete it. `pacsguard-store` refuses every such write while
//! no live writer holds the store's lock (`planted_companion`); this says why, once per
//! companion, as an alert on the trail. The journal of another process's transaction,
//! however long it lasts, holds that lock and is never said.

use std::path::Path;

use pacsguard_events::{Finding, FindingKind, Severity, escape_path};
use pacsguard_store::{Beside, planted_companion};

use crate::ops::store_companions::sha256_of;

/// The companion last said, so that one standing there is said once (a new one, or the
/// same one grown, is said again).
#[derive(Debug, Default)]
pub(super) struct PlantedCompanions {
    said: Option<Beside>,
}

impl PlantedCompanions {
    /// The alert for a companion no live writer made standing beside `store` now, unless
    /// it was said already; `None` when none stands there (or a writer holds the lock: its
    /// journal is live). When the lock cannot be asked about, nothing is said here: the
    /// store refuses the guard's writes with the reason, which the guard reports as a
    /// failed save.
    pub(super) fn look(&mut self, store: &Path) -> Option<Finding> {
        let beside = match planted_companion(store) {
            Ok(Some(beside)) => beside,
            Ok(None) => {
                self.said = None;
                return None;
            }
            Err(_) => return None,
        };
        if self.said.as_ref() == Some(&beside) {
            return None;
        }
        let finding = alert(store, &beside);
        self.said = Some(beside);
        Some(finding)
    }
}

fn alert(store: &Path, beside: &Beside) -> Finding {
    let what = match sha256_of(&beside.path) {
        Ok((bytes, sha256)) => format!("{bytes} bytes, sha256 {sha256}"),
        Err(e) => format!("not read: {e}"),
    };
    Finding::new(
        beside.path.clone(),
        FindingKind::StoreCompanionPlanted,
        Severity::Alert,
        format!(
            "{} ({what}) appeared beside the profile store {} while this guard keeps it open, \
             and no live writer of the store made it (no connection holds the store's writer \
             lock: it was planted, or left by a writer that died inside its write): SQLite \
             would roll it into the store at the guard's next write, putting back whatever its \
             planter chose (an older generation, edited rows), and delete it. No write of this \
             guard touches the store while it stands (its checkpoint copies and what it saw \
             are not kept there meanwhile); keep both as evidence, stop the guard and run \
             `pacsguard check`: the store is judged with it on a private copy and the refusal \
             names the way out",
            escape_path(&beside.path),
            escape_path(store),
        ),
    )
}
