//! Taking a copy out of the quarantine vault: evidence leaves only on the record.

use std::path::{Path, PathBuf};

use pacsguard_events::{Action, Event, Outcome, escape_path};

use super::Session;
use crate::error::EngineError;
use crate::vault::Vault;

impl Session {
    /// Writes the vault copy whose SHA-256 starts with `prefix` to the new file `out` and
    /// records who took it out, where to; returns the full SHA-256.
    pub fn quarantine_export(&mut self, prefix: &str, out: &Path) -> Result<String, EngineError> {
        let objects = vec![out.to_path_buf()];
        self.recorded(Action::Quarantine, objects.clone(), |s| {
            let vault = Vault::new(s.home.quarantine_dir());
            let sha256 = vault.export(prefix, out)?;
            let detail = format!(
                "exported the vault copy with SHA-256 {sha256} to {} (mode 0400)",
                escape_path(out)
            );
            s.finish(
                Event::new(
                    s.actor.clone(),
                    Action::Quarantine,
                    Outcome::Success,
                    detail,
                )
                .with_objects(objects.iter().map(PathBuf::from).collect()),
            )?;
            Ok(sha256)
        })
    }
}
