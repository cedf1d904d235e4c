//! Markup in a page that declares ISO-2022-JP, read as a browser decodes it.
//!
//! ISO-2022-JP is the one charset browsers still support in which ASCII bytes are not
//! the characters they look like: the escape sequences that switch between its modes
//! (`ESC ( B`, `ESC $ B`, …) decode to nothing, so `on␛(Berror=` is `onerror=` and
//! `<scr␛(Bipt>` is `<script>` to chromium once the page says `<meta
//! charset="iso-2022-jp">` (even after a CT's Pixel Data); read byte by byte, neither is
//! a handler or a tag. Issue 10 (review r22-screen): chromium ran both, and the file was
//! clean. Chromium did not guess the charset of a page that does not declare it.
//!
//! [`reading`] decodes such a file with the WHATWG Encoding Standard's ISO-2022-JP
//! decoder (§ 12.2.1), one byte per character as the markup grammar reads UTF-16: ASCII
//! as itself, every other character and every decoding error (U+FFFD) as
//! [`WIDE_OTHER_CHARACTER`], a byte outside ASCII that the grammar reads as any other
//! character of a name, a value or text.

use super::WIDE_OTHER_CHARACTER;

/// The labels by which a page names ISO-2022-JP (WHATWG Encoding Standard, § 4.2), each
/// as the bytes before and after the `2022` it contains, compared with ASCII case ignored.
const LABELS: [(&[u8], &[u8]); 2] = [(b"iso-", b"-jp"), (b"csiso", b"jp")];

/// Whether `bytes` names ISO-2022-JP anywhere (a `<meta charset>`, an `http-equiv`
/// content type, an XML declaration's `encoding`) and holds an escape byte, without
/// which the decoder changes no ASCII byte. Anywhere: mshta and chromium differ in how
/// far they look for the declaration, and a look further costs only a second reading.
fn declared(bytes: &[u8]) -> bool {
    let names = crate::literals::find_iter(bytes, b"2022").any(|at| {
        LABELS.iter().any(|(before, after)| {
            at.checked_sub(before.len())
                .is_some_and(|from| bytes[from..at].eq_ignore_ascii_case(before))
                && bytes
                    .get(at + 4..at + 4 + after.len())
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(after))
        })
    });
    names && memchr::memchr(0x1B, bytes).is_some()
}

/// The decoder's states (WHATWG Encoding Standard, § 12.2.1).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Ascii,
    Roman,
    Katakana,
    LeadByte,
    TrailByte,
    EscapeStart,
    Escape,
}

/// What one byte decodes to.
enum Step {
    /// Nothing yet (a lead byte, an escape sequence read so far).
    Continue,
    /// One character, as the markup grammar reads it.
    Character(u8),
    /// A decoding error (U+FFFD), then the bytes given back to be read again, in order
    /// (the standard prepends them to the stream).
    Error { give_back: GiveBack },
}

struct Decoder {
    state: State,
    output_state: State,
    lead: u8,
    output: bool,
}

impl Decoder {
    fn new() -> Decoder {
        Decoder {
            state: State::Ascii,
            output_state: State::Ascii,
            lead: 0,
            output: false,
        }
    }

    /// One byte, as the standard's decoder handles it.
    fn step(&mut self, byte: u8) -> Step {
        match self.state {
            State::Ascii | State::Roman | State::Katakana | State::LeadByte if byte == 0x1B => {
                self.state = State::EscapeStart;
                Step::Continue
            }
            State::Ascii if byte <= 0x7F && !matches!(byte, 0x0E | 0x0F) => {
                self.output = false;
                Step::Character(byte)
            }
            State::Roman if byte <= 0x7F && !matches!(byte, 0x0E | 0x0F) => {
                self.output = false;
                // 0x5C is U+00A5 and 0x7E U+203E in JIS X 0201 Roman.
                Step::Character(if matches!(byte, 0x5C | 0x7E) {
                    WIDE_OTHER_CHARACTER
                } else {
                    byte
                })
            }
            State::Katakana if (0x21..=0x5F).contains(&byte) => {
                self.output = false;
                Step::Character(WIDE_OTHER_CHARACTER)
            }
            State::LeadByte if (0x21..=0x7E).contains(&byte) => {
                self.output = false;
                self.lead = byte;
                self.state = State::TrailByte;
                Step::Continue
            }
            State::Ascii | State::Roman | State::Katakana | State::LeadByte => {
                self.output = false;
                Step::Error {
                    give_back: GiveBack::default(),
                }
            }
            State::TrailByte => {
                self.state = State::LeadByte;
                if byte == 0x1B {
                    self.state = State::EscapeStart;
                    Step::Error {
                        give_back: GiveBack::default(),
                    }
                } else if (0x21..=0x7E).contains(&byte) {
                    // A JIS X 0208 character, or an error where the index has none:
                    // either way not ASCII.
                    Step::Character(WIDE_OTHER_CHARACTER)
                } else {
                    Step::Error {
                        give_back: GiveBack::default(),
                    }
                }
            }
            State::EscapeStart => {
                if matches!(byte, 0x24 | 0x28) {
                    self.lead = byte;
                    self.state = State::Escape;
                    Step::Continue
                } else {
                    self.output = false;
                    self.state = self.output_state;
                    Step::Error {
                        give_back: GiveBack::of(&[byte]),
                    }
                }
            }
            State::Escape => {
                let lead = std::mem::replace(&mut self.lead, 0);
                let next = match (lead, byte) {
                    (0x28, 0x42) => Some(State::Ascii),
                    (0x28, 0x4A) => Some(State::Roman),
                    (0x28, 0x49) => Some(State::Katakana),
                    (0x24, 0x40 | 0x42) => Some(State::LeadByte),
                    _ => None,
                };
                match next {
                    Some(next) => {
                        self.state = next;
                        self.output_state = next;
                        // Two escape sequences with no character between: an error.
                        let error = std::mem::replace(&mut self.output, true);
                        if error {
                            Step::Error {
                                give_back: GiveBack::default(),
                            }
                        } else {
                            Step::Continue
                        }
                    }
                    None => {
                        self.output = false;
                        self.state = self.output_state;
                        Step::Error {
                            give_back: GiveBack::of(&[lead, byte]),
                        }
                    }
                }
            }
        }
    }
}

/// Up to two bytes an error gives back, read again in order before the file's next byte.
#[derive(Clone, Copy, Default)]
struct GiveBack {
    bytes: [u8; 2],
    len: usize,
}

impl GiveBack {
    fn of(given: &[u8]) -> GiveBack {
        let mut back = GiveBack::default();
        for (slot, &byte) in back.bytes.iter_mut().zip(given) {
            *slot = byte;
            back.len += 1;
        }
        back
    }

    fn pop_front(&mut self) -> Option<u8> {
        let first = *self.bytes[..self.len].first()?;
        self.bytes = [self.bytes[1], 0];
        self.len -= 1;
        Some(first)
    }
}

/// The characters of `bytes` decoded as ISO-2022-JP, each with the offset in `bytes` of
/// the byte that completed it.
fn decode(bytes: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let mut decoder = Decoder::new();
    let mut at = 0usize;
    // Bytes given back by an error, read again before the file's next byte.
    let mut again = GiveBack::default();
    let mut pending_error: Option<usize> = None;
    std::iter::from_fn(move || {
        loop {
            if let Some(offset) = pending_error.take() {
                return Some((offset, WIDE_OTHER_CHARACTER));
            }
            let (byte, offset) = match again.pop_front() {
                Some(byte) => (byte, at.saturating_sub(1)),
                None => {
                    let byte = *bytes.get(at)?;
                    at += 1;
                    (byte, at - 1)
                }
            };
            match decoder.step(byte) {
                Step::Continue => {}
                Step::Character(c) => return Some((offset, c)),
                Step::Error { give_back } => {
                    again = give_back;
                    pending_error = Some(offset);
                }
            }
        }
    })
}

/// `bytes` read as ISO-2022-JP, one byte per character, where the file declares that
/// charset and holds an escape byte; else `None` (the ASCII reading is the reading).
pub(super) fn reading(bytes: &[u8]) -> Option<Vec<u8>> {
    declared(bytes).then(|| decode(bytes).map(|(_, c)| c).collect())
}

/// The offset in `bytes` of the character at `index` of its [`reading`].
pub(super) fn offset_in_file(bytes: &[u8], index: usize) -> usize {
    decode(bytes).nth(index).map_or(bytes.len(), |(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Vec<u8> {
        decode(bytes).map(|(_, c)| c).collect()
    }

    #[test]
    fn escape_sequences_decode_to_nothing_and_two_byte_text_to_other_characters() {
        assert_eq!(read(b"on\x1b(Berror"), b"onerror");
        assert_eq!(read(b"<scr\x1b(Jipt>"), b"<script>");
        // Kanji (two bytes each) are one character each.
        assert_eq!(read(b"a\x1b$B;3ED\x1b(Bb"), b"a\x80\x80b");
        // Two escapes in a row: an error between them, as the standard says.
        assert_eq!(read(b"o\x1b(B\x1b(Bn"), b"o\x80n");
        // An escape that is none: an error, then its bytes read again.
        assert_eq!(read(b"a\x1b(Zb"), b"a\x80(Zb");
        assert_eq!(read(b"a\x1bxb"), b"a\x80xb");
        // Bytes outside ASCII are errors.
        assert_eq!(read(b"a\xffb"), b"a\x80b");
    }

    #[test]
    fn only_a_declared_charset_with_an_escape_is_read_again() {
        assert!(declared(b"<meta charset=\"ISO-2022-JP\">x\x1b(B"));
        assert!(declared(b"<meta charset=csISO2022JP>\x1b"));
        assert!(!declared(b"<meta charset=\"ISO-2022-JP\">x"));
        // DICOM's own name for the Japanese character set is not a page's charset.
        assert!(!declared(
            b"ISO 2022 IR 87\\ISO 2022 IR 13 \x1b$B;3ED\x1b(B"
        ));
    }
}
