//! PostScript's binary tokens (PLRM 3.14): bytes 128 to 159 where a token starts are
//! numbers, strings, names from the system name table and binary object sequences, not
//! text. Ghostscript reads them in any program (issue 10, session 17: gs -dNOSAFER ran
//! `(%pipe%…) (w) <146 65>`, the executable system name 65 being `file`, and the same
//! operator named in a binary object sequence). They are decoded here into the tokens
//! the text scanner gives, so that the same reading judges them.

use std::cell::Cell;

use super::Token;
use super::section_end::SectionEnd;

/// The system name table (PLRM Appendix F, as Ghostscript 10 installs it): the name of
/// each index, one a line; an empty line is an unassigned index.
const SYSTEM_NAMES: &str = include_str!("../postscript_system_names.txt");

/// Tokens decoded from binary tokens per file (all binary object sequences together):
/// an array of a sequence may name itself or share elements, so what a sequence expands
/// to is bounded by this, and past it the rest is a warning, not read.
pub const MAX_POSTSCRIPT_BINARY_TOKENS: usize = 1 << 20;

/// How deep arrays of a binary object sequence are read inside one another.
pub const MAX_POSTSCRIPT_BINARY_DEPTH: usize = 32;

/// The name of system name table entry `index`.
fn system_name(index: usize) -> Option<&'static [u8]> {
    static NAMES: std::sync::OnceLock<Vec<&'static [u8]>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| SYSTEM_NAMES.lines().map(str::as_bytes).collect());
    names.get(index).copied().filter(|n| !n.is_empty())
}

/// A token decoded, with the text the scanner would have read for it (what the model
/// steps on: `{`, `}`, `[`, `]`, a number).
pub(super) type Decoded = (Token, Vec<u8>);

/// The binary token starting at `p[at]` (a byte from 128 to 159): the tokens it stands
/// for and where the next token may start. `None` for bytes Ghostscript rejects (an
/// unassigned code, a token cut by the end of the program): its scanner stops there
/// with a syntax error.
pub(super) fn decode(p: &[u8], at: usize, spent: &Cell<usize>) -> Option<(Vec<Decoded>, usize)> {
    let code = *p.get(at)?;
    let byte = |n: usize| p.get(at + n).copied();
    let word = |n: usize, high_first: bool| {
        let b = p.get(at + n..at + n + 2)?;
        Some(usize::from(if high_first {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        }))
    };
    let number = |len: usize| -> Option<(Vec<Decoded>, usize)> {
        (at + len <= p.len()).then(|| (vec![(Token::Other, b"0".to_vec())], at + len))
    };
    match code {
        128..=131 => sequence(p, at, spent),
        132 | 133 | 138 | 139 | 140 => number(5),
        134 | 135 => number(3),
        136 => number(2),
        137 => {
            let representation = byte(1)? & 0x7f;
            number(if representation < 32 { 6 } else { 4 })
        }
        141 => number(2),
        142 => {
            let len = usize::from(byte(1)?);
            let text = p.get(at + 2..at + 2 + len)?;
            Some((vec![(Token::Text(text.to_vec()), Vec::new())], at + 2 + len))
        }
        143 | 144 => {
            let len = word(1, code == 143)?;
            let text = p.get(at + 3..at + 3 + len)?;
            Some((vec![(Token::Text(text.to_vec()), Vec::new())], at + 3 + len))
        }
        145 | 146 => {
            let name = system_name(usize::from(byte(1)?))?.to_vec();
            let token = if code == 145 {
                Token::Literal(name)
            } else {
                Token::Name(name)
            };
            Some((vec![(token, Vec::new())], at + 2))
        }
        // A user name (an index `defineusername` gave a name, which the program wrote as
        // a literal name and is judged there): which one is not followed.
        147 | 148 => {
            byte(1)?;
            let token = if code == 147 {
                Token::Other
            } else {
                Token::Name(b"\0user name".to_vec())
            };
            Some((vec![(token, b"0".to_vec())], at + 2))
        }
        149 => {
            let representation = byte(1)?;
            let count = word(2, representation < 128)?;
            let size = if (32..48).contains(&(representation & 0x7f)) {
                2
            } else {
                4
            };
            let end = at + 4 + count * size;
            (end <= p.len()).then(|| (vec![(Token::Other, b"0".to_vec())], end))
        }
        _ => None,
    }
}

/// A binary object sequence: its top-level objects, run in order as if written as
/// text, its arrays as procedures (executable) or `[ … ]`.
fn sequence(p: &[u8], at: usize, spent: &Cell<usize>) -> Option<(Vec<Decoded>, usize)> {
    let high_first = matches!(p[at], 128 | 130);
    let u16_at = |n: usize| {
        let b = p.get(n..n + 2)?;
        Some(usize::from(if high_first {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        }))
    };
    let u32_at = |n: usize| {
        let b = p.get(n..n + 4)?;
        let v = if high_first {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        usize::try_from(v).ok()
    };
    let (count, length, header) = match *p.get(at + 1)? {
        0 => (u16_at(at + 2)?, u32_at(at + 4)?, 8),
        n => (usize::from(n), u16_at(at + 2)?, 4),
    };
    let end = at.checked_add(length)?;
    let body = p.get(at + header..end)?;
    let mut out = Vec::new();
    let reader = Objects {
        body,
        high_first,
        spent,
        bad: Cell::new(false),
    };
    for n in 0..count {
        if !reader.object(n * 8, 0, &mut out) {
            break;
        }
    }
    // Ghostscript rejects the whole sequence (a syntax error).
    (!reader.bad.get()).then_some((out, end))
}

struct Objects<'b> {
    /// The sequence after its header: offsets are from its start.
    body: &'b [u8],
    high_first: bool,
    spent: &'b Cell<usize>,
    /// An object Ghostscript 10 rejects (review s17-r10: the segment header of a PFB
    /// font, `80 01 …`, read as a sequence whose null object has a length, made the
    /// model read on where gs stops with `syntaxerror`, and TeX Gyre fonts were an
    /// alert): its unused byte not zero, a null or mark with a length or a value, an
    /// integer or boolean with a length.
    bad: Cell<bool>,
}

impl Objects<'_> {
    /// Decodes the object at `offset` into `out`; false once the budget is spent (a
    /// warning token is then the last of `out`).
    fn object(&self, offset: usize, depth: usize, out: &mut Vec<Decoded>) -> bool {
        let spent = self.spent.get() + 1;
        self.spent.set(spent);
        if spent > MAX_POSTSCRIPT_BINARY_TOKENS || depth > MAX_POSTSCRIPT_BINARY_DEPTH {
            out.push((
                Token::Lost(format!(
                    "holds binary object sequences of more than {MAX_POSTSCRIPT_BINARY_TOKENS} objects or arrays nested more than {MAX_POSTSCRIPT_BINARY_DEPTH} deep (MAX_POSTSCRIPT_BINARY_TOKENS, MAX_POSTSCRIPT_BINARY_DEPTH): the rest was not read"
                )),
                Vec::new(),
            ));
            return false;
        }
        let Some(object) = offset
            .checked_add(8)
            .and_then(|end| self.body.get(offset..end))
        else {
            out.push((Token::Other, b"0".to_vec()));
            return true;
        };
        let (len, value) = if self.high_first {
            (
                usize::from(u16::from_be_bytes([object[2], object[3]])),
                i32::from_be_bytes([object[4], object[5], object[6], object[7]]),
            )
        } else {
            (
                usize::from(u16::from_le_bytes([object[2], object[3]])),
                i32::from_le_bytes([object[4], object[5], object[6], object[7]]),
            )
        };
        let executable = object[0] & 0x80 != 0;
        let rejected = object[1] != 0
            || match object[0] & 0x7f {
                0 | 10 => len != 0 || value != 0,
                1 | 4 => len != 0,
                _ => false,
            };
        if rejected {
            self.bad.set(true);
            return false;
        }
        let text = |len: usize| {
            usize::try_from(value)
                .ok()
                .and_then(|start| self.body.get(start..start.checked_add(len)?))
        };
        match object[0] & 0x7f {
            // A string.
            5 => out.push((
                Token::Text(text(len).unwrap_or_default().to_vec()),
                Vec::new(),
            )),
            // A name (6: immediately evaluated, which runs what it names): text at the
            // offset, or an index in the system table (length 0xFFFF) or user table (0).
            kind @ (3 | 6) => {
                let name = match len {
                    0xFFFF => usize::try_from(value)
                        .ok()
                        .and_then(system_name)
                        .map(<[u8]>::to_vec),
                    0 => None,
                    _ => text(len).map(<[u8]>::to_vec),
                };
                let token = match name {
                    Some(name) if executable || kind == 6 => Token::Name(name),
                    Some(name) => Token::Literal(name),
                    None if executable => Token::Name(b"\0user name".to_vec()),
                    None => Token::Other,
                };
                out.push((token, b"0".to_vec()));
            }
            // An array: its elements, in braces when executable (a procedure).
            9 => {
                let (open, close) = if executable {
                    (&b"{"[..], &b"}"[..])
                } else {
                    (&b"["[..], &b"]"[..])
                };
                out.push((Token::Other, open.to_vec()));
                let start = usize::try_from(value).unwrap_or(usize::MAX);
                for n in 0..len {
                    let Some(element) = start.checked_add(n * 8) else {
                        break;
                    };
                    if !self.object(element, depth + 1, out) {
                        return false;
                    }
                }
                out.push((Token::Other, close.to_vec()));
            }
            // A mark.
            10 => out.push((Token::Other, b"[".to_vec())),
            _ => out.push((Token::Other, b"0".to_vec())),
        }
        true
    }
}

/// An `eexec` section decrypted: its plaintext (the four lead bytes dropped), where its
/// ciphertext starts, whether it is in hex, and how many bytes of ciphertext were read.
pub(super) struct Eexec {
    pub(super) plain: Vec<u8>,
    /// Where in `plain` the section closes its file, and the data its `RD` reads.
    pub(super) closes: SectionEnd,
    start: usize,
    hex: bool,
    pub(super) read: usize,
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The blanks Ghostscript skips before an `eexec` section (gs 10.00 decrypted a section
/// whose first byte was a NUL or a form feed: those are ciphertext; review s17-r10).
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The `eexec` section starting at `p[at]` (after the `eexec` token), decrypted: Type 1
/// font encryption (r = 55665, c1 = 52845, c2 = 22719), in hex when its first four bytes
/// (after blanks) are hex digits and in binary otherwise, at most `limit` bytes of
/// ciphertext read. In hex every byte that is no digit is skipped, as Ghostscript does
/// (review s17-r10). Decryption stops once the plaintext reaches the `closefile` it runs
/// ([`SectionEnd`]), where the section ends in every font, so that each section spends only its own bytes of the
/// limit (review s17-r10: ten fonts each decrypted to the end of the file spent it).
/// Decryption, and the look for the section's end, stop once `clock`'s deadline has
/// passed (asked once per byte, read every `CLOCK_READ_EVERY`): a section of
/// [`super::MAX_POSTSCRIPT_EEXEC_BYTES`] kept a screening thread past the gateway's
/// deadline (session 24); the reading of the plaintext after says where it stopped.
pub(super) fn eexec(p: &[u8], at: usize, limit: usize, clock: &crate::Clock) -> Eexec {
    let at = at.min(p.len());
    let start = at + p[at..].iter().take_while(|&&b| is_blank(b)).count();
    let rest = &p[start..];
    let hex = rest.len() >= 4 && rest[..4].iter().all(u8::is_ascii_hexdigit);
    let mut r: u16 = 55665;
    let mut plain = Vec::new();
    let mut closes = SectionEnd::until(clock);
    let mut decrypt = |c: u8, plain: &mut Vec<u8>| {
        plain.push(c ^ (r >> 8) as u8);
        r = u16::from(c)
            .wrapping_add(r)
            .wrapping_mul(52845)
            .wrapping_add(22719);
        // A look once the word and the byte after it are decrypted: whether it is the
        // `closefile` Ghostscript runs is told by its tokens ([`SectionEnd`]).
        plain.len() > 4 + 8
            && plain[..plain.len() - 1].ends_with(b"closefile")
            && closes.look(&plain[4..], false).is_some()
    };
    let mut read = 0usize;
    if hex {
        let mut high: Option<u8> = None;
        for &b in rest.iter().take(limit) {
            if clock.expired() {
                break;
            }
            read += 1;
            let Some(digit) = hex_digit(b) else {
                continue;
            };
            if let Some(h) = high.take() {
                if decrypt((h << 4) | digit, &mut plain) {
                    break;
                }
            } else {
                high = Some(digit);
            }
        }
    } else {
        for &c in rest.iter().take(limit) {
            if clock.expired() {
                break;
            }
            read += 1;
            if decrypt(c, &mut plain) {
                break;
            }
        }
    }
    let plain = plain.get(4..).map(<[u8]>::to_vec).unwrap_or_default();
    closes.look(&plain, true);
    Eexec {
        plain,
        closes,
        start,
        hex,
        read,
    }
}

impl Eexec {
    /// Where in `p` the ciphertext of the first `n` plaintext bytes ends (the four lead
    /// bytes counted): where Ghostscript reads on in the file once the section closes
    /// its file (`currentfile closefile`).
    pub(super) fn end_of_plain(&self, p: &[u8], n: usize) -> usize {
        let bytes = n + 4;
        if !self.hex {
            return (self.start + bytes).min(p.len());
        }
        let mut digits = 0usize;
        for (i, &b) in p[self.start..].iter().enumerate() {
            if hex_digit(b).is_some() {
                digits += 1;
                if digits == 2 * bytes {
                    return self.start + i + 1;
                }
            }
        }
        p.len()
    }

    /// Where the ciphertext read ends.
    pub(super) fn end(&self) -> usize {
        self.start + self.read
    }
}
