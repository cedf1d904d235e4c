//! `pacsguard audit witness init`: a person re-initialises a witness that is missing or
//! behind the trail, and that act is itself on the record.
//!
//! Every other command refuses such a witness: deleting the witness file must not switch
//! the rollback check off, and a trail rolled back must never be signed over it. Only
//! this command writes over it, after the trail was proven to extend what the witness
//! held (RFC 6962 consistency proof); a witness ahead of the trail or forked from it is
//! refused here too.

use std::path::PathBuf;

use pacsguard_audit::WitnessMode;
use pacsguard_events::{Action, Event, Outcome};
use serde::Serialize;

use super::Session;
use super::accept::MAX_REASON_BYTES;
use crate::error::EngineError;
use crate::home::Home;

#[derive(Debug, Serialize)]
pub struct WitnessInitReport {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub witness: PathBuf,
    /// Records covered by the witness's checkpoint before (`None`: it held none).
    pub previous: Option<u64>,
}

impl Session {
    /// Re-initialises the configured witness with this trail's next checkpoint.
    pub fn witness_init(home: Home, reason: &str) -> Result<WitnessInitReport, EngineError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::Usage(
                "--reason must say why the witness is re-initialised".into(),
            ));
        }
        if reason.len() > MAX_REASON_BYTES {
            return Err(EngineError::Usage(format!(
                "--reason is longer than {MAX_REASON_BYTES} bytes"
            )));
        }
        let (mut session, opening) = Session::open_with(home, WitnessMode::Reinitialise, false)?;
        let Some(witness) = session.config.audit.witness.clone() else {
            return Err(EngineError::Usage(format!(
                "no witness is configured ([audit] witness in {})",
                session.home.config_path().display()
            )));
        };
        let held = match opening.witness_was {
            Some(size) => format!("it held a checkpoint of {size} records"),
            None => "it held no checkpoint of this trail".into(),
        };
        let detail = format!(
            "{} ({held}); it receives this trail's next checkpoint",
            pacsguard_audit::WITNESS_REINIT_WORDS
        );
        session.finish(
            Event::new(
                session.actor.clone(),
                Action::Audit,
                Outcome::Success,
                detail,
            )
            .with_objects(vec![witness.clone()])
            .with_reason(reason),
        )?;
        Ok(WitnessInitReport {
            witness,
            previous: opening.witness_was,
        })
    }
}
