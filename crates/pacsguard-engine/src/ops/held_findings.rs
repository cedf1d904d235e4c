//! The findings a streamed `profile` holds for its report, bounded.
//!
//! A profile reports what it could not read and what it took in without review. Each
//! such finding is held until the end (the report lists them, the trail records them
//! after the signature): on a tree where a whole archive changed, or a mount went
//! unreadable, that is one finding per file, memory growing with the tree. Beyond
//! [`MAX_PROFILE_FINDINGS`] a finding is written to the audit trail as it is found and
//! only counted: the report and the profile's closing record say how many, by severity.
//! Never dropped: every finding is on the trail. Those recorded early are recorded before
//! the generation is signed: `profile` words them as taken in only if it is signed, and
//! records, when it then fails, that they were not.

use pacsguard_events::{Finding, Severity, SeverityCounts};

use crate::error::EngineError;

/// Findings of one `profile` held for its report; beyond, they go to the trail at once
/// and are counted (a finding is a few hundred bytes: a few megabytes at most).
pub const MAX_PROFILE_FINDINGS: usize = 10_000;

/// Writes a finding not held to the trail.
type Record<'r> = dyn FnMut(&Finding) -> Result<(), EngineError> + 'r;

/// See the module documentation.
pub(super) struct HeldFindings<'r> {
    held: Vec<Finding>,
    limit: usize,
    unlisted: SeverityCounts,
    /// Writes a finding not held to the trail.
    record: Box<Record<'r>>,
}

impl<'r> HeldFindings<'r> {
    pub(super) fn new(
        limit: usize,
        record: impl FnMut(&Finding) -> Result<(), EngineError> + 'r,
    ) -> Self {
        HeldFindings {
            held: Vec::new(),
            limit,
            unlisted: SeverityCounts::default(),
            record: Box::new(record),
        }
    }

    /// How many more findings are held before they go to the trail.
    pub(super) fn room(&self) -> usize {
        self.limit.saturating_sub(self.held.len())
    }

    /// Holds `finding`, or (over the limit) records and counts it.
    pub(super) fn push(&mut self, finding: Finding) -> Result<(), EngineError> {
        if self.held.len() < self.limit {
            self.held.push(finding);
            return Ok(());
        }
        self.spill(finding)
    }

    /// Records and counts `finding` without holding it: one a holder of findings still
    /// to come here (a comparison) took beyond [`HeldFindings::room`].
    pub(super) fn spill(&mut self, finding: Finding) -> Result<(), EngineError> {
        (self.record)(&finding)?;
        match finding.severity {
            Severity::Info => self.unlisted.info += 1,
            Severity::Warning => self.unlisted.warning += 1,
            Severity::Alert => self.unlisted.alert += 1,
        }
        Ok(())
    }

    pub(super) fn extend(
        &mut self,
        findings: impl IntoIterator<Item = Finding>,
    ) -> Result<(), EngineError> {
        findings.into_iter().try_for_each(|f| self.push(f))
    }

    /// The findings held, and the counts of those only recorded.
    pub(super) fn finish(self) -> (Vec<Finding>, SeverityCounts) {
        (self.held, self.unlisted)
    }
}
