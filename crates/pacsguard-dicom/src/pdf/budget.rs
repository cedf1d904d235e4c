//! The work one PDF may cost, per file (not per stream): every limit an attacker controls
//! is here, and reaching one is remembered so that the caller can say which one stopped
//! the inspection (a `not-inspected` warning) instead of ending silently. Time is one of
//! them: the file's [`INSPECTION_DEADLINE`] holds inside the PDF reader too.

use std::time::Instant;

use crate::budget::INSPECTION_DEADLINE;

/// Indirect objects parsed per document (direct, in object streams, every revision).
/// Real reports hold hundreds; large scanned documents tens of thousands.
pub const MAX_PDF_OBJECTS: usize = 200_000;
/// Streams decoded per document. Only streams that can act are decoded (object and
/// cross-reference streams, scripts, XFA, embedded files), not page contents or images.
pub const MAX_PDF_STREAMS: usize = 4096;
/// Decoding work per document: bytes read plus bytes written by every filter of every
/// stream. A decompression bomb stops here, and so does memory.
pub const MAX_PDF_INFLATED_BYTES: usize = 64 * 1024 * 1024;
/// Nesting of arrays and dictionaries inside one object; deeper is not parsed (and never
/// recursed into, so the stack stays bounded).
pub const MAX_PDF_NESTING_DEPTH: usize = 64;
/// Filters applied to one stream. Real files use one or two.
pub const MAX_PDF_FILTERS: usize = 8;
/// Cross-reference entries read per document (tables and streams, every revision).
pub const MAX_PDF_XREF_ENTRIES: usize = 1_000_000;
/// Bytes the lexer may read per document: objects whose bodies overlap (an unterminated
/// string swallowing the rest of the file, then the next header inside it) cost a pass
/// each, and this bounds their sum. Stream data is not lexed, so even image-heavy
/// documents of hundreds of megabytes parse a few megabytes of dictionaries.
pub const MAX_PDF_PARSED_BYTES: usize = 64 * 1024 * 1024;
/// PDFs attached to PDFs that are opened in turn; deeper ones are reported, not read.
pub const MAX_PDF_ATTACHMENT_DEPTH: usize = 2;
/// Versions of the encryption dictionary (distinct values under its one number) read
/// besides the one read first, each a reading of the whole document; more are reported,
/// not read.
pub const MAX_PDF_ENCRYPTION_VERSIONS: usize = 3;

/// A limit of [`Budget`], named in the finding when it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    Objects,
    Streams,
    DecodedBytes,
    Nesting,
    Filters,
    XrefEntries,
    ParsedBytes,
    AttachmentDepth,
    EncryptionVersions,
    /// The file's [`INSPECTION_DEADLINE`] passed.
    Deadline,
}

impl Limit {
    pub fn describe(self) -> String {
        match self {
            Limit::Objects => format!("objects parsed (limit {MAX_PDF_OBJECTS})"),
            Limit::Streams => format!("streams decoded (limit {MAX_PDF_STREAMS})"),
            Limit::DecodedBytes => {
                format!("bytes decoded by stream filters (limit {MAX_PDF_INFLATED_BYTES})")
            }
            Limit::Nesting => format!("nesting depth (limit {MAX_PDF_NESTING_DEPTH})"),
            Limit::Filters => format!("filters on one stream (limit {MAX_PDF_FILTERS})"),
            Limit::XrefEntries => {
                format!("cross-reference entries (limit {MAX_PDF_XREF_ENTRIES})")
            }
            Limit::ParsedBytes => format!("bytes parsed (limit {MAX_PDF_PARSED_BYTES})"),
            Limit::AttachmentDepth => {
                format!("PDFs attached inside PDFs (limit {MAX_PDF_ATTACHMENT_DEPTH} levels)")
            }
            Limit::EncryptionVersions => format!(
                "other versions of the encryption dictionary read (limit {MAX_PDF_ENCRYPTION_VERSIONS})"
            ),
            Limit::Deadline => format!(
                "inspection time (INSPECTION_DEADLINE, {} s per file)",
                INSPECTION_DEADLINE.as_secs()
            ),
        }
    }
}

/// Work a reading of one PDF did, counted rather than timed: what the tests bound (a
/// cost that grows with the square of the input shows here on any machine, where a
/// clock on a loaded one says little), and what a deadline check can be proven by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Streams decoded (decrypted and filtered), every reading of the document together.
    pub streams_decoded: usize,
    /// Other readings of the document made (see `Document::other_readings`).
    pub other_readings: usize,
    /// Bytes of attachments read to tell whether another reading extracted a file
    /// already kept.
    pub attachment_bytes_matched: usize,
    /// Trailers looked at to find the trailer of each cross-reference section in the
    /// chain from the last `startxref`.
    pub trailers_compared: usize,
    /// Versions of object streams looked at while expanding, first, those holding what
    /// the catalog reaches.
    pub holder_versions_visited: usize,
}

impl Work {
    /// Adds the work of another reading.
    pub fn add(&mut self, other: Work) {
        self.streams_decoded += other.streams_decoded;
        self.other_readings += other.other_readings;
        self.attachment_bytes_matched += other.attachment_bytes_matched;
        self.trailers_compared += other.trailers_compared;
        self.holder_versions_visited += other.holder_versions_visited;
    }
}

/// What is left of each limit for one file, and which limits were reached.
#[derive(Debug)]
pub struct Budget {
    objects: usize,
    streams: usize,
    decoded: usize,
    xref_entries: usize,
    parsed: usize,
    deadline: Instant,
    /// Work done since the clock was last read: reading it per cross-reference entry would
    /// cost more than the entry.
    ticks: usize,
    reached: Vec<Limit>,
    /// How many times a limit refused work, counted every time (`reached` keeps each
    /// limit once): whether one piece of work was stopped by a limit is whether this
    /// grew during it, however many limits were reached before it began.
    stops: usize,
    /// What was done so far, for the report.
    pub work: Work,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::until(Instant::now() + INSPECTION_DEADLINE)
    }
}

/// Units of cheap work (cross-reference entries) between two looks at the clock.
const TICKS_PER_CLOCK_READ: usize = 1024;

impl Budget {
    /// A full budget whose time runs out at `deadline` (the file's, when the PDF is part of
    /// a file under inspection).
    pub fn until(deadline: Instant) -> Budget {
        Budget {
            objects: MAX_PDF_OBJECTS,
            streams: MAX_PDF_STREAMS,
            decoded: MAX_PDF_INFLATED_BYTES,
            xref_entries: MAX_PDF_XREF_ENTRIES,
            parsed: MAX_PDF_PARSED_BYTES,
            deadline,
            ticks: 0,
            reached: Vec::new(),
            stops: 0,
            work: Work::default(),
        }
    }

    /// A full budget with the same deadline, for another reading of the same document
    /// (see `Document::other_readings`): the reading repeats the work of the first, so it
    /// cannot share its counts without a large benign document read twice reaching a
    /// limit it does not come near; the time is shared.
    pub fn renewed(&self) -> Budget {
        Budget::until(self.deadline)
    }

    /// Whether the deadline has passed (recorded once it has); every unit of work asks.
    pub fn out_of_time(&mut self) -> bool {
        if self.reached.contains(&Limit::Deadline) {
            self.stops += 1;
            return true;
        }
        if Instant::now() > self.deadline {
            self.reach(Limit::Deadline);
            return true;
        }
        false
    }

    /// [`Budget::out_of_time`] for cheap units of work: the clock is read every
    /// [`TICKS_PER_CLOCK_READ`] of them.
    fn out_of_time_ticked(&mut self) -> bool {
        self.ticks += 1;
        if self.ticks.is_multiple_of(TICKS_PER_CLOCK_READ) {
            return self.out_of_time();
        }
        let late = self.reached.contains(&Limit::Deadline);
        if late {
            self.stops += 1;
        }
        late
    }
    /// Records that `limit` stopped some work (once per limit).
    pub fn reach(&mut self, limit: Limit) {
        self.stops += 1;
        if !self.reached.contains(&limit) {
            self.reached.push(limit);
        }
    }

    pub fn reached(&self) -> &[Limit] {
        &self.reached
    }

    /// How many times a limit has refused work so far: compare before and after a piece
    /// of work to know whether a limit, and not the input, cut it short.
    pub fn stops(&self) -> usize {
        self.stops
    }

    /// One unit from `left`, or the limit recorded as having refused it.
    fn take(&mut self, limit: Limit) -> bool {
        let left = match limit {
            Limit::Objects => &mut self.objects,
            Limit::Streams => &mut self.streams,
            Limit::XrefEntries => &mut self.xref_entries,
            _ => {
                self.reach(limit);
                return false;
            }
        };
        if *left == 0 {
            self.reach(limit);
            return false;
        }
        *left -= 1;
        true
    }

    /// One more object, if the budget allows it.
    pub fn object(&mut self) -> bool {
        !self.out_of_time_ticked() && self.take(Limit::Objects)
    }

    /// One more decoded stream, if the budget allows it.
    pub fn stream(&mut self) -> bool {
        let allowed = !self.out_of_time() && self.take(Limit::Streams);
        if allowed {
            self.work.streams_decoded += 1;
        }
        allowed
    }

    /// One more cross-reference entry, if the budget allows it.
    pub fn xref_entry(&mut self) -> bool {
        !self.out_of_time_ticked() && self.take(Limit::XrefEntries)
    }

    /// Decoding work left, in bytes (none once time is up).
    pub fn decoded_left(&mut self) -> usize {
        if self.out_of_time() { 0 } else { self.decoded }
    }

    /// Charges `spent` bytes of decoding work; reaching zero is recorded.
    pub fn spend_decoded(&mut self, spent: usize) {
        self.decoded = self.decoded.saturating_sub(spent);
        if self.decoded == 0 {
            self.reach(Limit::DecodedBytes);
        }
    }

    /// Lexing work left, in bytes (none once time is up).
    pub fn parsed_left(&mut self) -> usize {
        if self.out_of_time_ticked() {
            0
        } else {
            self.parsed
        }
    }

    /// Charges `spent` bytes of lexing; reaching zero is recorded.
    pub fn spend_parsed(&mut self, spent: usize) {
        self.parsed = self.parsed.saturating_sub(spent);
        if self.parsed == 0 {
            self.reach(Limit::ParsedBytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_work_is_reported_exactly_when_it_runs_out() {
        let mut budget = Budget::default();
        budget.spend_decoded(MAX_PDF_INFLATED_BYTES - 1);
        assert!(budget.reached().is_empty());
        budget.spend_decoded(1);
        assert_eq!(budget.reached(), [Limit::DecodedBytes]);
        let mut budget = Budget::default();
        budget.spend_parsed(MAX_PDF_PARSED_BYTES - 1);
        assert!(budget.reached().is_empty());
        budget.spend_parsed(1);
        assert_eq!(budget.reached(), [Limit::ParsedBytes]);
    }

    #[test]
    fn counted_limits_allow_exactly_their_number() {
        let mut budget = Budget::default();
        assert!((0..MAX_PDF_STREAMS).all(|_| budget.stream()));
        assert!(budget.reached().is_empty());
        assert!(!budget.stream());
        assert_eq!(budget.reached(), [Limit::Streams]);
        let mut budget = Budget::default();
        assert!((0..MAX_PDF_XREF_ENTRIES).all(|_| budget.xref_entry()));
        assert!(!budget.xref_entry());
        assert_eq!(budget.reached(), [Limit::XrefEntries]);
    }

    #[test]
    fn the_deadline_stops_every_kind_of_work_and_is_named() {
        let mut budget = Budget::until(Instant::now() + INSPECTION_DEADLINE);
        assert!(budget.stream() && budget.object() && budget.decoded_left() > 0);
        assert!(budget.reached().is_empty());
        // A deadline already past, not one waited for (no sleep in a test).
        let past = Instant::now()
            .checked_sub(std::time::Duration::from_secs(1))
            .expect("a clock running for a second");
        let mut budget = Budget::until(past);
        assert!(!budget.stream());
        assert!(!budget.object());
        assert_eq!(budget.decoded_left(), 0);
        assert_eq!(budget.parsed_left(), 0);
        assert_eq!(budget.reached(), [Limit::Deadline]);
        assert!(Limit::Deadline.describe().contains("INSPECTION_DEADLINE"));
    }
}
