//! Finding the parts of a PDF that act when it is opened: JavaScript, launch actions,
//! embedded files. Names are read the way a PDF reader reads them (`#xx` escapes decoded,
//! so `/J#61vaScript` is `/JavaScript`), and Flate streams are inflated within a budget
//! so that names hidden in compressed object streams are seen too.

use std::collections::BTreeSet;

/// Inflated bytes looked at per document; a deflate bomb stops here.
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
    let mut budget = MAX_PDF_INFLATED_BYTES;
    for start in stream_starts(pdf).take(MAX_PDF_STREAMS) {
        if budget == 0 {
            break;
        }
        let Ok(inflated) =
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&pdf[start..], budget)
        else {
            continue; // not Flate, damaged, or over the budget: the raw names were read
        };
        budget = budget.saturating_sub(inflated.len());
        collect_names(&inflated, &mut found);
    }
    found.into_iter().collect()
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
}
