//! The 128-byte preamble of a DICOM Part 10 file (PS3.10 §7.1, §7.5).
//!
//! The standard lets an application put anything there, which is what makes a DICOM file
//! able to be a valid Windows executable at the same time (CVE-2019-11687). PS3.10 §7.5
//! names the safe contents: all zeros, or a TIFF header for dual-personality files. Real
//! modalities also leave vendor text and stray bytes; those are recorded as `info` and
//! must never page anyone.

use pacsguard_events::escape_bytes;

use crate::format::{self, Format};

/// The length of the preamble before `DICM`.
pub const PREAMBLE_LEN: usize = 128;

/// What the preamble holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preamble {
    /// All zero bytes: the standard's default.
    Zero,
    /// A TIFF or BigTIFF header in either byte order (PS3.10 §7.5 dual personality). The
    /// IFD offset is not checked: real files carry one that points past their end.
    Tiff,
    /// An executable or active-content format: the CVE-2019-11687 polyglot.
    Executable { format: Format, detail: String },
    /// Anything else: vendor text, a stray byte.
    Nonstandard { detail: String },
}

/// Classifies `preamble` (the first 128 bytes). `whole_file` lets a PE header be followed:
/// in a polyglot `e_lfanew` points past the preamble, into a data element.
pub fn classify(preamble: &[u8], whole_file: &[u8]) -> Preamble {
    if preamble.iter().all(|&b| b == 0) {
        return Preamble::Zero;
    }
    const TIFF_MAGICS: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];
    // A TIFF header does not make the rest of the preamble harmless: a PDF header after it
    // still opens the file as a PDF.
    if TIFF_MAGICS.iter().any(|magic| preamble.starts_with(magic))
        && format::find(preamble, b"%PDF-").is_none()
    {
        return Preamble::Tiff;
    }
    if let Some(format) = format::sniff(preamble) {
        let detail = match format {
            Format::Pe => pe_detail(whole_file),
            Format::Pdf => "a PDF header in the preamble: the file opens as a PDF".to_owned(),
            other => format!("the preamble starts like a {other} file"),
        };
        return Preamble::Executable { format, detail };
    }
    let nonzero = preamble.iter().filter(|&&b| b != 0).count();
    Preamble::Nonstandard {
        detail: format!(
            "{nonzero} non-zero byte(s) in the preamble, starting {}",
            printable_excerpt(preamble)
        ),
    }
}

fn pe_detail(whole_file: &[u8]) -> String {
    match format::pe_headers(whole_file) {
        Some(headers) if headers.valid_nt_headers => format!(
            "Windows PE: e_lfanew {:#x} reaches a PE\\0\\0 signature with valid NT headers; \
             Windows runs this file",
            headers.e_lfanew
        ),
        Some(headers) if headers.reaches_signature => format!(
            "Windows PE: e_lfanew {:#x} reaches a PE\\0\\0 signature, NT headers damaged",
            headers.e_lfanew
        ),
        Some(headers) => format!(
            "MZ header; e_lfanew {:#x} does not reach a PE\\0\\0 signature",
            headers.e_lfanew
        ),
        None => "MZ header too short to hold e_lfanew".to_owned(),
    }
}

/// Up to 32 bytes from the first non-zero one, shown the one safe way PacsGuard shows
/// attacker-chosen bytes: vendor text reads as text, control bytes are escaped.
fn printable_excerpt(preamble: &[u8]) -> String {
    let start = preamble.iter().position(|&b| b != 0).unwrap_or(0);
    let last = preamble.iter().rposition(|&b| b != 0).unwrap_or(start);
    let end = (last + 1).min(start + 32);
    format!(
        "at offset {start}: \"{}\"",
        escape_bytes(&preamble[start..end])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preamble_with(head: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; PREAMBLE_LEN];
        bytes[..head.len()].copy_from_slice(head);
        bytes
    }

    #[test]
    fn zero_and_tiff_in_both_byte_orders_are_clean() {
        assert_eq!(classify(&[0; 128], &[0; 128]), Preamble::Zero);
        for magic in [&b"II*\0"[..], b"MM\0*", b"II+\0", b"MM\0+"] {
            // The IFD offset points far past the end, as in real dual-personality files.
            let mut head = magic.to_vec();
            head.extend_from_slice(&u32::MAX.to_le_bytes());
            let bytes = preamble_with(&head);
            assert_eq!(classify(&bytes, &bytes), Preamble::Tiff, "{magic:?}");
        }
    }

    #[test]
    fn vendor_text_is_nonstandard_and_shown_safely() {
        let bytes = preamble_with(b"ACME \"CT\"\x01");
        let Preamble::Nonstandard { detail } = classify(&bytes, &bytes) else {
            panic!("expected nonstandard");
        };
        assert!(detail.contains(r#""ACME "CT"\u{0001}""#), "{detail}");
    }

    #[test]
    fn an_mz_says_whether_it_reaches_a_pe_signature() {
        let mut file = preamble_with(b"MZ");
        file[0x3C] = 0x90; // past the preamble, as in CVE-2019-11687 files
        file.resize(0x200, 0);
        let Preamble::Executable { format, detail } = classify(&file[..128], &file) else {
            panic!("expected executable");
        };
        assert_eq!(format, Format::Pe);
        assert!(detail.contains("does not reach"), "{detail}");
        file[0x90..0x94].copy_from_slice(b"PE\0\0");
        let Preamble::Executable { detail, .. } = classify(&file[..128], &file) else {
            panic!("expected executable");
        };
        assert!(detail.contains("reaches a PE"), "{detail}");
    }
}
