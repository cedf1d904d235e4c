//! The work one PDF may cost, per file (not per stream): every limit an attacker controls
//! is here, and reaching one is remembered so that the caller can say which one stopped
//! the inspection (a `not-inspected` warning) instead of ending silently.

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
        }
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
    reached: Vec<Limit>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            objects: MAX_PDF_OBJECTS,
            streams: MAX_PDF_STREAMS,
            decoded: MAX_PDF_INFLATED_BYTES,
            xref_entries: MAX_PDF_XREF_ENTRIES,
            parsed: MAX_PDF_PARSED_BYTES,
            reached: Vec::new(),
        }
    }
}

impl Budget {
    /// Records that `limit` stopped some work (once per limit).
    pub fn reach(&mut self, limit: Limit) {
        if !self.reached.contains(&limit) {
            self.reached.push(limit);
        }
    }

    pub fn reached(&self) -> &[Limit] {
        &self.reached
    }

    fn take(left: &mut usize, reached: &mut Vec<Limit>, limit: Limit) -> bool {
        if *left == 0 {
            if !reached.contains(&limit) {
                reached.push(limit);
            }
            return false;
        }
        *left -= 1;
        true
    }

    /// One more object, if the budget allows it.
    pub fn object(&mut self) -> bool {
        Self::take(&mut self.objects, &mut self.reached, Limit::Objects)
    }

    /// One more decoded stream, if the budget allows it.
    pub fn stream(&mut self) -> bool {
        Self::take(&mut self.streams, &mut self.reached, Limit::Streams)
    }

    /// One more cross-reference entry, if the budget allows it.
    pub fn xref_entry(&mut self) -> bool {
        Self::take(
            &mut self.xref_entries,
            &mut self.reached,
            Limit::XrefEntries,
        )
    }

    /// Decoding work left, in bytes.
    pub fn decoded_left(&self) -> usize {
        self.decoded
    }

    /// Charges `spent` bytes of decoding work; reaching zero is recorded.
    pub fn spend_decoded(&mut self, spent: usize) {
        self.decoded = self.decoded.saturating_sub(spent);
        if self.decoded == 0 {
            self.reach(Limit::DecodedBytes);
        }
    }

    /// Lexing work left, in bytes.
    pub fn parsed_left(&self) -> usize {
        self.parsed
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
}
