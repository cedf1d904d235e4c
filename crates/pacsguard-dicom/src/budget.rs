//! The work one file may ask of the structure checks, shared by every search in it.
//!
//! A crafted file can hold a candidate header every few bytes (`MZ`, Mach-O magics, ZIP
//! end records), each asking a parser to read up to [`MAX_EXECUTABLE_PARSE_BYTES`]; the
//! sum, not each parse, must be bounded. When the budget runs out the search stops and
//! the file gets a `not-inspected` warning naming the budget: never a silent end.
//!
//! [`MAX_EXECUTABLE_PARSE_BYTES`]: crate::MAX_EXECUTABLE_PARSE_BYTES

use std::time::{Duration, Instant};

/// Candidates handed to a structure parser (goblin, the ZIP and PDF checks) per file.
/// Real files hold none or a few; pixel data holds magic numbers by chance at a rate of
/// a few per megabyte.
pub const MAX_CANDIDATES_PER_FILE: usize = 20_000;
/// Bytes handed to structure parsers per file, summed over candidates.
pub const MAX_PARSED_BYTES_PER_FILE: usize = 256 * 1024 * 1024;
/// Wall-clock time one file's inspection may take before the searches stop.
pub const INSPECTION_DEADLINE: Duration = Duration::from_secs(60);

/// What is left of one file's budget.
#[derive(Debug)]
pub struct Budget {
    candidates: usize,
    parsed_bytes: usize,
    deadline: Instant,
    /// The time limit as the message that it was reached names it.
    time_limit: String,
    /// Why the budget ran out, once it has.
    exhausted: Option<String>,
    /// What the readers of a file read in windows take from one window to the next.
    pub(crate) carried: Carried,
}

/// What an earlier window of a file read in windows leaves to the readers of later ones:
/// a PDF reader repairing the file reads objects after a header wherever they are, and
/// cmd.exe expands `%NAME%` with the value a `set` anywhere before gave it (a header in
/// one window and the catalog in the next, or `set p=powershell` in the preamble and
/// `%p% -nop ...` 200 MiB later, ran and got no finding: review s10-r10).
#[derive(Debug, Default)]
pub(crate) struct Carried {
    /// A `%PDF-` header was in an earlier window.
    pub(crate) pdf_header: bool,
    /// The `set` commands of earlier windows, in file order.
    pub(crate) batch_sets: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// More than [`crate::shell::MAX_BATCH_VARIABLES`] of them.
    pub(crate) batch_full: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(INSPECTION_DEADLINE)
    }
}

impl Budget {
    pub fn new(time: Duration) -> Budget {
        Budget::until(
            Instant::now() + time,
            format!("{} s (INSPECTION_DEADLINE)", INSPECTION_DEADLINE.as_secs()),
        )
    }

    /// A budget whose time runs out at `deadline` (a caller's own, sooner than
    /// [`INSPECTION_DEADLINE`]: the gateway's screening deadline of a data set, so that
    /// a screening nobody waits for any more stops and frees its thread); `time_limit`
    /// names it in the `not-inspected` warning ("the inspection took longer than ...").
    pub fn until(deadline: Instant, time_limit: String) -> Budget {
        Budget {
            candidates: 0,
            parsed_bytes: 0,
            deadline,
            time_limit,
            exhausted: None,
            carried: Carried::default(),
        }
    }

    /// Takes what the readers of later windows need from `window` (the first window or
    /// a later one, in file order, each once): what starts before its last
    /// `overlap` bytes, which the next window holds and reads itself (a `set` there
    /// is then not taken as set before the next window's start).
    pub fn carry(&mut self, window: &[u8], overlap: usize) {
        let upto = window.len().saturating_sub(overlap);
        if crate::readers::later_header(window).is_some_and(|at| at < upto) {
            self.carried.pdf_header = true;
        }
        crate::shell::carry_batch_sets(window, upto, &mut self.carried);
    }

    /// Charges one candidate of `bytes` bytes; `false` once the budget is spent.
    pub fn charge(&mut self, bytes: usize) -> bool {
        if self.exhausted.is_some() {
            return false;
        }
        self.candidates += 1;
        self.parsed_bytes = self.parsed_bytes.saturating_add(bytes);
        if self.candidates > MAX_CANDIDATES_PER_FILE {
            self.exhausted = Some(format!(
                "more than {MAX_CANDIDATES_PER_FILE} candidate headers (MAX_CANDIDATES_PER_FILE)"
            ));
        } else if self.parsed_bytes > MAX_PARSED_BYTES_PER_FILE {
            self.exhausted = Some(format!(
                "more than {MAX_PARSED_BYTES_PER_FILE} bytes parsed for candidates (MAX_PARSED_BYTES_PER_FILE)"
            ));
        } else if self.candidates.is_multiple_of(64) && Instant::now() > self.deadline {
            self.exhausted = Some(format!(
                "the inspection took longer than {}",
                self.time_limit
            ));
        }
        self.exhausted.is_none()
    }

    /// Bytes a parser may still be handed before [`MAX_PARSED_BYTES_PER_FILE`] is
    /// reached: how far a search for a candidate's extent may look before it is charged.
    pub(crate) fn bytes_left(&self) -> usize {
        MAX_PARSED_BYTES_PER_FILE.saturating_sub(self.parsed_bytes)
    }

    /// Whether time is up (checked by searches that do not parse candidates).
    pub fn out_of_time(&mut self) -> bool {
        if self.exhausted.is_none() && Instant::now() > self.deadline {
            self.exhausted = Some(format!(
                "the inspection took longer than {}",
                self.time_limit
            ));
        }
        self.exhausted.is_some()
    }

    /// When the file's time is up: the PDF reader and the whole-file readers stop there too.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The time limit as [`Budget::exhausted`] names it.
    pub fn time_limit(&self) -> &str {
        &self.time_limit
    }

    pub fn exhausted(&self) -> Option<&str> {
        self.exhausted.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_budget_holds_at_its_limit() {
        let mut budget = Budget::default();
        for _ in 0..MAX_CANDIDATES_PER_FILE {
            assert!(budget.charge(1));
        }
        assert!(!budget.charge(1));
        assert!(
            budget
                .exhausted()
                .expect("spent")
                .contains("MAX_CANDIDATES_PER_FILE")
        );
    }

    #[test]
    fn the_byte_budget_holds_at_its_limit() {
        let mut budget = Budget::default();
        assert!(budget.charge(MAX_PARSED_BYTES_PER_FILE));
        assert!(!budget.charge(1));
    }

    #[test]
    fn the_deadline_ends_the_search() {
        let mut budget = Budget::new(Duration::ZERO);
        assert!(budget.out_of_time());
        assert!(!budget.charge(1));
        assert_eq!(
            budget.exhausted(),
            Some("the inspection took longer than 60 s (INSPECTION_DEADLINE)")
        );
    }

    #[test]
    fn a_callers_deadline_is_named_as_the_caller_names_it() {
        let mut budget = Budget::until(Instant::now(), "limits.screening_deadline (5 ms)".into());
        assert!(budget.out_of_time());
        assert_eq!(
            budget.exhausted(),
            Some("the inspection took longer than limits.screening_deadline (5 ms)")
        );
    }
}
