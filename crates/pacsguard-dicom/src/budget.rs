//! The work one file may ask of the structure checks, shared by every search in it.
//!
//! A crafted file can hold a candidate header every few bytes (`MZ`, Mach-O magics, ZIP
//! end records), each asking a parser to read up to [`MAX_EXECUTABLE_PARSE_BYTES`]; the
//! sum, not each parse, must be bounded. When the budget runs out the search stops and
//! the file gets a `not-inspected` warning naming the budget: never a silent end.
//!
//! [`MAX_EXECUTABLE_PARSE_BYTES`]: crate::MAX_EXECUTABLE_PARSE_BYTES

use std::cell::Cell;
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
    /// The deadline is a caller's ([`Budget::until`]): it stops the whole-file readers
    /// too ([`Clock`]).
    callers_deadline: bool,
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

/// How many calls of [`Clock::expired`] read the clock once: the readers ask once per
/// token or candidate, and a read of the clock (~25 ns) per three-byte shell command
/// would cost a quarter of the dash model's time; a thousand tokens take microseconds.
pub const CLOCK_READ_EVERY: u32 = 1024;

/// A caller's deadline as the whole-file readers (the dash, cmd.exe, ex/vim, mshta and
/// PostScript models) see it: each asks it once per unit of work and stops, with a
/// `not-inspected` warning naming [`Clock::reached`], once it has passed. Review
/// r24-scan: they ignored the gateway's `limits.screening_deadline`, and a data set made
/// slow for them held a screening thread up to minutes past it.
///
/// Only a caller's deadline ([`Budget::until`]) stops them: `scan`'s own
/// [`INSPECTION_DEADLINE`] does not (it bounds the search for hidden executables and the
/// PDF reader, as before). The readers' own limits bound their work in bytes; a
/// wall-clock stop would make a file's findings depend on the machine's load (a 259 MiB
/// file read in windows missed its planted alerts in a loaded debug run when it did).
/// Not `Sync` (a counter in a `Cell`): one per file, on the thread that reads it; a
/// clone reads the same deadline.
#[derive(Clone, Debug)]
pub struct Clock {
    deadline: Instant,
    /// Whether the deadline stops the readers (a caller's, not INSPECTION_DEADLINE).
    stops_readers: bool,
    time_limit: String,
    calls: Cell<u32>,
    passed: Cell<bool>,
}

impl Default for Clock {
    /// [`INSPECTION_DEADLINE`] from now, as a [`Budget::default`]: it stops no reader.
    fn default() -> Clock {
        Budget::default().clock()
    }
}

impl Clock {
    /// Whether the deadline has passed (read from the clock at the first call and every
    /// [`CLOCK_READ_EVERY`] calls after; once passed, always).
    pub fn expired(&self) -> bool {
        if self.passed.get() {
            return true;
        }
        if !self.stops_readers {
            return false;
        }
        let calls = self.calls.get();
        self.calls.set(calls.wrapping_add(1));
        if calls.is_multiple_of(CLOCK_READ_EVERY) && Instant::now() > self.deadline {
            self.passed.set(true);
        }
        self.passed.get()
    }

    /// Whether the deadline has passed, reading the clock now (for coarse units of work:
    /// a candidate, a line).
    pub fn expired_now(&self) -> bool {
        if self.stops_readers && !self.passed.get() && Instant::now() > self.deadline {
            self.passed.set(true);
        }
        self.passed.get()
    }

    /// When the time is up, a caller's or INSPECTION_DEADLINE (the PDF reader, which
    /// keeps its own budget, stops there either way).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What stopped a reader, as a budget's exhaustion names it: "the inspection took
    /// longer than ...".
    pub fn reached(&self) -> String {
        format!("the inspection took longer than {}", self.time_limit)
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(INSPECTION_DEADLINE)
    }
}

impl Budget {
    pub fn new(time: Duration) -> Budget {
        Budget {
            callers_deadline: false,
            ..Budget::until(
                Instant::now() + time,
                format!("{} s (INSPECTION_DEADLINE)", INSPECTION_DEADLINE.as_secs()),
            )
        }
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
            callers_deadline: true,
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
        } else if Instant::now() > self.deadline {
            // Read at every candidate (~25 ns against a parse): one candidate can be an
            // archive inflating MAX_ARCHIVE_INFLATED_BYTES, and 64 of them between reads
            // could run far past a gateway's deadline (review r24-scan).
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

    /// The file's deadline for the whole-file readers ([`Clock`]).
    pub fn clock(&self) -> Clock {
        Clock {
            deadline: self.deadline,
            stops_readers: self.callers_deadline,
            time_limit: self.time_limit.clone(),
            calls: Cell::new(0),
            passed: Cell::new(false),
        }
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
    fn a_clock_past_its_deadline_says_so_within_its_reads_and_stays_expired() {
        let budget = Budget::until(
            Instant::now() + Duration::from_millis(50),
            "limits.screening_deadline (50 ms)".into(),
        );
        let clock = budget.clock();
        assert!(!clock.expired(), "the first call reads the clock");
        std::thread::sleep(Duration::from_millis(60));
        let calls = (1..=CLOCK_READ_EVERY).find(|_| clock.expired());
        assert_eq!(
            calls,
            Some(CLOCK_READ_EVERY),
            "read once per CLOCK_READ_EVERY calls"
        );
        assert!(clock.expired() && clock.expired_now());
        assert!(
            budget.clock().expired(),
            "a clock past its deadline says so at once"
        );
        assert_eq!(
            clock.reached(),
            "the inspection took longer than limits.screening_deadline (50 ms)"
        );
        let unbounded = Budget::new(Duration::ZERO).clock();
        assert!(
            !unbounded.expired() && !unbounded.expired_now(),
            "INSPECTION_DEADLINE stops no reader"
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
