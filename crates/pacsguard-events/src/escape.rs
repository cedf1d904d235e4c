//! Escaping of attacker-chosen bytes for terminals and reports.
//!
//! File names on Unix are arbitrary bytes except `/` and NUL. A hostile name can carry
//! terminal control sequences (`ESC [ ... `), line breaks that forge extra report lines,
//! or bidirectional overrides that make `exe.dcm` read as `mcd.exe`. Every path PacsGuard
//! shows goes through [`escape_bytes`], whose output is printable and reversible:
//!
//! * printable UTF-8 stays as it is;
//! * `\` becomes `\\`;
//! * a control or invisible-formatting character becomes `\u{XXXX}`;
//! * a byte that is not part of valid UTF-8 becomes `\xNN`.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Escapes arbitrary bytes into printable, reversible text (see the module docs).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if needs_escape(c) {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Escapes a path's exact bytes (see [`escape_bytes`]).
pub fn escape_path(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_bytes())
}

/// Whether `c` is escaped by [`escape_bytes`]: a control character, or one that reorders
/// or hides what a reader sees (bidirectional overrides such as U+202E, zero-width
/// marks, tag characters). Pages that show text people typed neutralise the same set.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional embeddings, overrides and isolates, and zero-width marks:
            // they reorder or hide what a reader sees without being control characters.
            '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            // The Arabic letter mark, a bidirectional mark like U+200F.
            | '\u{061c}'
            // Line and paragraph separators: not controls, yet terminals, editors and
            // JSON-in-JavaScript readers break lines at them (a forged report line).
            | '\u{2028}'
            | '\u{2029}'
            // Tag characters: invisible, they smuggle text a reader cannot see.
            | '\u{e0000}'..='\u{e007f}')
}

/// Whether `c` hides or reorders text for a person who reads it rendered (a console
/// page, a passkey label, a reason): what [`needs_escape`] escapes, and the rest of
/// Unicode's default-ignorable code points, which a browser draws as nothing (U+00AD soft
/// hyphen, U+3164 and U+115F Hangul fillers, U+180E, variation selectors U+FE00..FE0F and
/// U+E0100..E01EF, ...): a file named "report\u{ad}.pdf" is shown as "report.pdf"
/// beside the real one, and a reason can carry text nobody sees. Not used by
/// [`escape_bytes`], whose escaping of paths is compared across versions (profiles,
/// acceptances).
pub fn hides_text(c: char) -> bool {
    needs_escape(c)
        || matches!(c,
            '\u{00ad}'
            | '\u{034f}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{2065}'
            | '\u{206a}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{ffa0}'
            // Unassigned specials and the interlinear annotation marks (which hide the
            // annotated text in some renderers).
            | '\u{fff0}'..='\u{fffb}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0080}'..='\u{e0fff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            escape_bytes(b"/srv/pacs/CT 1/\xc3\xa9.dcm"),
            "/srv/pacs/CT 1/é.dcm"
        );
    }

    #[test]
    fn controls_backslashes_and_invalid_bytes_are_escaped() {
        assert_eq!(escape_bytes(b"a\nb"), "a\\u{000a}b");
        assert_eq!(escape_bytes(b"\x1b[31mred"), "\\u{001b}[31mred");
        assert_eq!(escape_bytes(b"back\\slash"), "back\\\\slash");
        assert_eq!(escape_bytes(b"bad\xff\xfe"), "bad\\xff\\xfe");
        assert_eq!(
            escape_bytes("x\u{202e}gpj.exe".as_bytes()),
            "x\\u{202e}gpj.exe"
        );
        assert_eq!(escape_bytes(b"\x7f"), "\\u{007f}");
    }

    #[test]
    fn separators_the_arabic_letter_mark_and_tag_characters_are_escaped() {
        assert_eq!(
            escape_bytes("a\u{2028}b\u{2029}c".as_bytes()),
            "a\\u{2028}b\\u{2029}c"
        );
        assert_eq!(escape_bytes("x\u{061c}y".as_bytes()), "x\\u{061c}y");
        assert_eq!(
            escape_bytes("ok\u{e0001}\u{e0041}\u{e007f}".as_bytes()),
            "ok\\u{e0001}\\u{e0041}\\u{e007f}"
        );
        // The neighbours of the tag block are ordinary (private use, variation selectors).
        assert_eq!(escape_bytes("\u{e0100}".as_bytes()), "\u{e0100}");
    }

    #[test]
    fn output_is_always_printable() {
        let all: Vec<u8> = (0..=255u8).collect();
        let escaped = escape_bytes(&all);
        assert!(escaped.chars().all(|c| !c.is_control()));
    }
}
