//! Finding the parts of a PDF that act when it is opened: JavaScript, launch actions,
//! embedded files. Names are read the way a PDF reader reads them (`#xx` escapes decoded,
//! so `/J#61vaScript` is `/JavaScript`), and Flate streams are inflated within a budget
//! so that names hidden in compressed object streams are seen too.

use std::collections::BTreeSet;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Inflating work per document: compressed bytes read plus inflated bytes written, over
/// all its streams, whether they inflate cleanly or not. A deflate bomb stops here, and so
/// do thousands of streams that each run on to the end of the document before failing.
pub const MAX_PDF_INFLATED_BYTES: usize = 32 * 1024 * 1024;
/// Streams tried per document.
pub const MAX_PDF_STREAMS: usize = 4096;

/// The names that make a PDF act on its own: `/JavaScript` and `/JS` run script,
/// `/Launch` starts a program, `/EmbeddedFile(s)` carry a file to drop, `/RichMedia`
/// carries Flash.
const ACTIVE_NAMES: [&[u8]; 6] = [
    b"JavaScript",
    b"JS",
    b"Launch",
    b"EmbeddedFile",
    b"EmbeddedFiles",
    b"RichMedia",
];

/// The active-content names present in `pdf`, sorted, each once.
pub fn active_names(pdf: &[u8]) -> Vec<String> {
    let mut found = BTreeSet::new();
    collect_names(pdf, &mut found);
    inflate_streams(pdf, &mut found);
    found.into_iter().collect()
}

/// Collects the names in every Flate stream, within [`MAX_PDF_STREAMS`] and
/// [`MAX_PDF_INFLATED_BYTES`]; returns the work spent.
fn inflate_streams(pdf: &[u8], found: &mut BTreeSet<String>) -> usize {
    let mut budget = MAX_PDF_INFLATED_BYTES;
    // Made at the first stream: a `%PDF-` that starts no real PDF should not pay for
    // clearing the decompressor's tables.
    let mut decompressor: Option<Box<DecompressorOxide>> = None;
    let mut inflated = Vec::new();
    let mut total = 0usize;
    for start in stream_starts(pdf).take(MAX_PDF_STREAMS) {
        if budget == 0 {
            break;
        }
        let decompressor = decompressor.get_or_insert_with(Box::default);
        let spent = inflate_zlib(decompressor, &pdf[start..], budget, &mut inflated);
        budget = budget.saturating_sub(spent);
        total = total.saturating_add(spent);
        collect_names(&inflated, found);
    }
    total
}

/// Inflates the zlib stream at the start of `input` into `out`, spending about `budget`
/// bytes of work at most (compressed bytes read plus bytes written; one step over at
/// worst), and returns the work spent. Whatever was inflated stays in `out`, also when the
/// stream is damaged, ends early or runs over the budget: a lenient reader shows that
/// much, and a stream that is not Flate at all costs two bytes.
///
/// The input is handed over a step at a time rather than whole: a stream may run on to the
/// end of the document before it fails, and without a bound on what it reads, thousands
/// of such streams in one document cost thousands of passes over it.
fn inflate_zlib(
    decompressor: &mut DecompressorOxide,
    input: &[u8],
    budget: usize,
    out: &mut Vec<u8>,
) -> usize {
    const STEP: usize = 64 * 1024;
    decompressor.init();
    out.clear();
    let (mut read, mut written) = (0usize, 0usize);
    loop {
        let left = budget.saturating_sub(read + written);
        if left == 0 {
            break;
        }
        let rest = input.get(read..).unwrap_or_default();
        let offered = &rest[..rest.len().min(left).min(STEP)];
        // The whole output so far is handed back each time (back-references read it),
        // with room to grow by one step when it is full.
        if out.len() == written {
            out.resize(written + left.min(STEP), 0);
        }
        let mut flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | inflate_flags::TINFL_FLAG_COMPUTE_ADLER32;
        let more_input = offered.len() < rest.len();
        if more_input {
            flags |= inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        }
        let (status, consumed, produced) = decompress(decompressor, offered, out, written, flags);
        read += consumed;
        written += produced;
        let progress = consumed > 0 || produced > 0;
        match status {
            TINFLStatus::HasMoreOutput if progress => {}
            TINFLStatus::NeedsMoreInput if more_input && progress => {}
            // Done, damaged, cut short, or stuck.
            _ => break,
        }
    }
    out.truncate(written);
    read + written
}

/// Where the data of each `stream` keyword starts (after its end-of-line).
fn stream_starts(pdf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memmem::find_iter(pdf, b"stream").filter_map(move |at| {
        let after = at + b"stream".len();
        if pdf.get(after..after + 2) == Some(b"\r\n") {
            Some(after + 2)
        } else if matches!(pdf.get(after), Some(b'\n') | Some(b'\r')) {
            Some(after + 1)
        } else {
            None // "endstream", or the word inside text
        }
    })
}

fn collect_names(bytes: &[u8], found: &mut BTreeSet<String>) {
    for slash in memchr::memchr_iter(b'/', bytes) {
        let name = decode_name(&bytes[slash + 1..]);
        if let Some(active) = ACTIVE_NAMES
            .iter()
            .find(|active| **active == name.as_slice())
        {
            found.insert(String::from_utf8_lossy(active).into_owned());
        }
    }
}

/// A PDF name up to its delimiter, with `#xx` escapes decoded. Names longer than any
/// active name are cut short: they cannot match.
fn decode_name(bytes: &[u8]) -> Vec<u8> {
    const LONGEST: usize = 16;
    let mut name = Vec::new();
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte.is_ascii_whitespace() || b"()<>[]{}/%".contains(&byte) || name.len() > LONGEST {
            break;
        }
        if byte == b'#' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                name.push(value);
                i += 3;
                continue;
            }
        }
        name.push(byte);
        i += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_and_escaped_names_but_not_lookalikes() {
        let pdf = b"%PDF-1.4 1 0 obj << /OpenAction << /S /J#61vaScript /JS (app.alert(1)) >> >>";
        assert_eq!(active_names(pdf), vec!["JS", "JavaScript"]);
        assert!(active_names(b"%PDF-1.4 << /JSON /Launcher /Type /Page >>").is_empty());
    }

    #[test]
    fn finds_names_inside_compressed_object_streams() {
        let hidden =
            miniz_oxide::deflate::compress_to_vec_zlib(b"<< /S /Launch /F (cmd.exe) >>", 6);
        let mut pdf =
            b"%PDF-1.5\n1 0 obj << /Type /ObjStm /Filter /FlateDecode >>\nstream\r\n".to_vec();
        pdf.extend_from_slice(&hidden);
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
        assert_eq!(active_names(&pdf), vec!["Launch"]);
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_budget() {
        let bomb =
            miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 2 * MAX_PDF_INFLATED_BYTES], 9);
        let mut pdf = b"%PDF-1.5\nstream\n".to_vec();
        pdf.extend_from_slice(&bomb);
        assert!(active_names(&pdf).is_empty());
    }

    #[test]
    fn a_stream_spends_what_it_reads_and_writes_within_the_budget() {
        let text = b"<< /S /Launch >>".repeat(1000);
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&text, 6);
        let mut decompressor = DecompressorOxide::default();
        let mut out = Vec::new();
        let spent = inflate_zlib(&mut decompressor, &compressed, usize::MAX, &mut out);
        assert_eq!(out, text);
        assert_eq!(spent, compressed.len() + text.len());
        // Over the budget, what was inflated so far is kept, and no more is spent than
        // one step past it.
        let spent = inflate_zlib(&mut decompressor, &compressed, 100, &mut out);
        assert!(!out.is_empty() && out.len() < text.len() && text.starts_with(&out));
        assert!(spent <= 100 + 2 * 64 * 1024, "{spent}");
        // Not Flate: nothing inflated, next to nothing spent.
        let spent = inflate_zlib(&mut decompressor, b"BT /F1 12 Tf ET", usize::MAX, &mut out);
        assert!(out.is_empty() && spent <= 2, "{spent}");
    }

    /// Thousands of streams that each run on to the end of the document before they
    /// break cost one pass over the rest of the document each, and used to be charged
    /// nothing: a 56 KB value took 0.26 s, and some megabytes would take hours. Here each
    /// stream is a zlib header and stored blocks that hold the next `stream` keyword, with
    /// no final block; together they would read and write 180 MB.
    #[test]
    fn streams_that_never_end_are_charged_for_what_they_read() {
        let mut pdf = b"%PDF-1.5\nstream\n\x78\x01".to_vec();
        for _ in 0..4000 {
            pdf.extend_from_slice(b"\x00\x09\x00\xf6\xffstream\n\x78\x01");
        }
        let mut decompressor = DecompressorOxide::default();
        let mut out = Vec::new();
        let spent = inflate_zlib(&mut decompressor, &pdf[16..], usize::MAX, &mut out);
        assert_eq!(
            spent,
            pdf.len() - 16 + out.len(),
            "a stream reads to the end"
        );
        let spent = inflate_streams(&pdf, &mut BTreeSet::new());
        assert!(spent <= MAX_PDF_INFLATED_BYTES + 2 * 64 * 1024, "{spent}");
        assert!(
            spent >= MAX_PDF_INFLATED_BYTES,
            "the budget ran out: {spent}"
        );
    }
}
