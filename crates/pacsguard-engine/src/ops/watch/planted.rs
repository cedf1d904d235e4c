//! A journal or write-ahead log planted beside the store while the guard runs (review
//! r28-store2). The store is judged with what stands beside it when the guard opens it;
//! from then on SQLite would roll a `-journal` that appears into the store at the
//! guard's next write and delete it. `pacsguard-store` refuses every such write
//! (`LIVE_JOURNAL_WAIT`); this says why, once per companion, as an alert on the trail.

use std::path::Path;

use pacsguard_events::{Finding, FindingKind, Severity, escape_path};
use pacsguard_store::{Beside, LIVE_JOURNAL_WAIT, planted_companion};

use crate::ops::store_companions::sha256_of;

/// The companion last said, so that one standing there is said once (a new one, or the
/// same one grown, is said again).
#[derive(Debug, Default)]
pub(super) struct PlantedCompanions {
    said: Option<Beside>,
}

impl PlantedCompanions {
    /// The alert for a companion no writer made standing beside `store` now, unless it
    /// was said already; `None` when none stands there.
    pub(super) fn look(&mut self, store: &Path) -> Option<Finding> {
        let Some(beside) = planted_companion(store) else {
            self.said = None;
            return None;
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
             and no writer of the store made it (it stood {} ms, LIVE_JOURNAL_WAIT): SQLite \
             would roll it into the store at the guard's next write, putting back whatever its \
             planter chose (an older generation, edited rows), and delete it. No write of this \
             guard touches the store while it stands (its checkpoint copies and what it saw \
             are not kept there meanwhile); keep both as evidence, stop the guard and run \
             `pacsguard check`: the store is judged with it on a private copy and the refusal \
             names the way out",
            escape_path(&beside.path),
            escape_path(store),
            LIVE_JOURNAL_WAIT.as_millis()
        ),
    )
}
