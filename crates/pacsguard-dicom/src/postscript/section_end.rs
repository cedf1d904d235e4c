//! Where an `eexec` section ends: at the `closefile` Ghostscript runs, found by reading
//! the plaintext as its scanner does, not as bytes. The word in a comment or a string
//! (`% closefile`, `(closefile) pop`) is no end: gs -dNOSAFER ran the pipe written after
//! each (review s17-r10). A font's charstrings and subroutines are binary data read by
//! `RD` (or `-|`, `N RD <N bytes>`), not tokens: their bytes are stepped over, or a `(`
//! among them would open a string that swallows the real `closefile` and the code
//! before it.

use super::{Token, next_token};

/// The names Type 1 fonts define as `{string currentfile exch readstring pop}`: the
/// number before is how many bytes of the file, after one blank, they read as data.
const READS_DATA: [&[u8]; 2] = [b"RD", b"-|"];

/// The end of a section found so far, read as the plaintext grows.
#[derive(Default)]
pub(super) struct SectionEnd {
    /// Where the next token not yet read starts.
    pos: usize,
    /// The number just before, if the last token read was one.
    count: Option<usize>,
    /// The length of the string `N string` just made, if the last token was that.
    string_len: Option<usize>,
    /// The data `RD` reads, stepped over (blanked before the section is read as code).
    pub(super) data: Vec<std::ops::Range<usize>>,
    /// The plaintext length from which the next look is worth it: a token still open
    /// (a string not yet closed) is read again at each look, so looks are spaced by its
    /// length, which keeps the work linear whatever the plaintext.
    next_look: usize,
    /// After the `closefile` Ghostscript runs, once found: `currentfile closefile`
    /// outside any procedure, as every font ends its section.
    pub(super) end: Option<usize>,
    /// After the first other place the section may close its file: `closefile` after
    /// another operand (`currentfile dup pop closefile`, a filter's `f closefile`), or
    /// what runs `closefile` written in a procedure or named as a literal or a string
    /// (`{currentfile closefile} exec`, `currentfile /closefile load exec`, `systemdict
    /// /closefile get exec`, `/cf /closefile load def … currentfile cf`; gs -dNOSAFER
    /// ran the cleartext pipe after each section, session 18). Whether it does close
    /// the file is not known: the file is read on from here too
    /// ([`super::eexec_section`]).
    pub(super) may_end: Option<usize>,
    /// How deep inside `{` the next token is.
    depth: usize,
    /// Whether the token before was `currentfile`.
    after_currentfile: bool,
    /// Whether `closefile` was named (a literal, a string, in a procedure) and not run
    /// yet: the next operator that runs a value may run it.
    named: bool,
    /// The literal name last written outside procedures (what `def` defines).
    literal: Option<Vec<u8>>,
    /// Names the section defines as what runs `closefile` (`/cf /closefile load def`,
    /// `/c {currentfile closefile} def`).
    aliases: std::collections::HashSet<Vec<u8>>,
    /// Whether the section read its file as data of a length not known here
    /// (`currentfile 21 string readstring`, `readline`, a procedure of its own doing so
    /// called): the bytes read are no tokens, and a `currentfile closefile` among them is
    /// no end Ghostscript runs (gs -dNOSAFER ran the pipe after it; review s18-r10). Past
    /// such a read, `currentfile closefile` is a possible end only.
    reads_unknown: bool,
    /// Whether the procedure being written reads its file ([`READS_FILE`]).
    proc_reads: bool,
    /// Names defined as procedures that read their file (other than [`READS_DATA`]).
    readers: std::collections::HashSet<Vec<u8>>,
    /// The file's deadline: a look reads up to the whole plaintext at once, and stops
    /// there (asked once per token).
    clock: crate::Clock,
}

/// Operators that read bytes of a file as data, not tokens.
const READS_FILE: [&[u8]; 4] = [b"readstring", b"readhexstring", b"readline", b"read"];

/// Operators that run a value handed to them (a procedure, an operator fetched by `load`
/// or `get`): where `closefile` named before may run.
const RUNS_VALUES: [&[u8]; 8] = [
    b"exec", b"if", b"ifelse", b"loop", b"repeat", b"for", b"forall", b"stopped",
];

impl SectionEnd {
    /// Looks that stop at `clock`'s deadline.
    pub(super) fn until(clock: &crate::Clock) -> SectionEnd {
        SectionEnd {
            clock: clock.clone(),
            ..SectionEnd::default()
        }
    }

    /// Reads the tokens of `plain` (the plaintext after its four lead bytes) complete by
    /// now; `last` when no more plaintext follows (every token is then complete).
    pub(super) fn look(&mut self, plain: &[u8], last: bool) -> Option<usize> {
        if self.end.is_some() || (!last && plain.len() < self.next_look) {
            return self.end;
        }
        while let Some((at, token, next)) = next_token(plain, self.pos) {
            if self.clock.expired() {
                break;
            }
            // A token that runs to the end of what is decrypted may go on (a string not
            // closed, a name not ended): read again once more is known.
            if next >= plain.len() && !last {
                break;
            }
            let after_currentfile = std::mem::take(&mut self.after_currentfile);
            let string_len = self.string_len.take();
            if let Token::Name(name) = &token {
                let reads = READS_FILE.contains(&name.as_slice()) || self.readers.contains(name);
                if reads && self.depth == 0 {
                    // `N string readstring`, `N string readhexstring`, `readline`: the
                    // bytes read are known, stepped over as `RD`'s are; others are not.
                    let from =
                        next + usize::from(plain.get(next).is_some_and(u8::is_ascii_whitespace));
                    let to = match (name.as_slice(), string_len) {
                        (b"readstring", Some(n)) => Some(from.saturating_add(n)),
                        (b"readhexstring", Some(n)) => plain
                            .get(from..)
                            .unwrap_or_default()
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| b.is_ascii_hexdigit())
                            .nth(n.saturating_mul(2).saturating_sub(1))
                            .map(|(k, _)| from + k + 1)
                            .or(if n == 0 { Some(from) } else { Some(usize::MAX) }),
                        (b"readline", _) => plain
                            .get(from..)
                            .unwrap_or_default()
                            .iter()
                            .position(|&b| matches!(b, b'\n' | b'\r'))
                            .map(|k| from + k + 1)
                            .or(Some(usize::MAX)),
                        _ => None,
                    };
                    match to {
                        Some(to) if to > plain.len() && !last => {
                            // Read again once the data is decrypted.
                            self.string_len = string_len;
                            self.pos = at;
                            break;
                        }
                        Some(to) => {
                            self.data.push(from.min(plain.len())..to.min(plain.len()));
                            self.count = None;
                            self.pos = to.min(plain.len());
                            continue;
                        }
                        None => self.reads_unknown = true,
                    }
                } else if reads {
                    self.proc_reads = true;
                } else if name == b"def"
                    && self.depth == 0
                    && std::mem::take(&mut self.proc_reads)
                    && let Some(reader) = self.literal.clone()
                    && !READS_DATA.contains(&reader.as_slice())
                {
                    self.readers.insert(reader);
                }
            }
            match token {
                Token::Name(name) if name == b"closefile" => {
                    if self.depth == 0 && after_currentfile && self.reads_unknown {
                        self.may_end.get_or_insert(next);
                    } else if self.depth == 0 && after_currentfile {
                        self.end = Some(next);
                        return self.end;
                    }
                    if self.depth == 0 {
                        self.may_end.get_or_insert(next);
                    } else {
                        self.named = true;
                    }
                }
                Token::Literal(name) if name == b"closefile" => {
                    self.named = true;
                }
                // A string holding the word, which `cvx exec` runs as code (review
                // s18-r10: gs -dNOSAFER ran the pipe after `(currentfile closefile) cvx
                // exec`).
                Token::Text(text) if memchr::memmem::find(&text, b"closefile").is_some() => {
                    self.named = true;
                }
                Token::Literal(name) if self.depth == 0 => self.literal = Some(name),
                Token::Name(name) if self.aliases.contains(&name) => {
                    if self.depth == 0 {
                        self.may_end.get_or_insert(next);
                    } else {
                        self.named = true;
                    }
                }
                // Before the arm below: after `closefile` was named, `currentfile
                // closefile` is still the end (review s18-r10: `(closefile) pop` before
                // it made the section run to the end of the file, and the cleartext pipe
                // gs -dNOSAFER ran after it was clean).
                Token::Name(name) if name == b"currentfile" => {
                    self.after_currentfile = true;
                }
                Token::Name(name) if self.depth == 0 && self.named => {
                    if name == b"def" {
                        if let Some(alias) = self.literal.take() {
                            self.aliases.insert(alias);
                        }
                        self.named = false;
                    } else if RUNS_VALUES.contains(&name.as_slice()) {
                        self.may_end.get_or_insert(next);
                    }
                }
                Token::Name(name) if name == b"string" && self.count.is_some() => {
                    self.string_len = self.count;
                }
                Token::Name(name) if READS_DATA.contains(&name.as_slice()) => {
                    if let Some(n) = self.count.take() {
                        let from = next + 1;
                        let to = from.saturating_add(n);
                        if to > plain.len() && !last {
                            // Read again with its count once the data is decrypted.
                            self.count = Some(n);
                            self.pos = at;
                            break;
                        }
                        self.data.push(from.min(plain.len())..to.min(plain.len()));
                        self.pos = to.min(plain.len());
                        continue;
                    }
                }
                Token::Binary if self.depth == 0 => {
                    // A binary token or object sequence: what it runs (`[currentfile
                    // closefile]` in a sequence, names by index) is not read here; it
                    // may close the file (review s18-r10: gs -dNOSAFER ran the pipe
                    // after one).
                    self.may_end.get_or_insert(at);
                }
                Token::Other => {
                    match plain[at] {
                        b'{' => {
                            if self.depth == 0 {
                                self.proc_reads = false;
                            }
                            self.depth += 1;
                        }
                        b'}' => self.depth = self.depth.saturating_sub(1),
                        _ => {}
                    }
                    self.count = std::str::from_utf8(&plain[at..next])
                        .ok()
                        .and_then(|n| n.parse().ok());
                    self.pos = next;
                    continue;
                }
                _ => {}
            }
            self.count = None;
            self.pos = next;
        }
        self.next_look = plain.len() + (plain.len() - self.pos.min(plain.len()));
        self.end
    }

    /// `plain` to the end found, with the data `RD` reads blanked: the code Ghostscript
    /// runs.
    pub(super) fn code(&self, plain: &[u8]) -> Vec<u8> {
        let mut code = plain[..self.end.unwrap_or(plain.len()).min(plain.len())].to_vec();
        for range in &self.data {
            if let Some(bytes) = code.get_mut(range.clone()) {
                bytes.fill(b' ');
            }
        }
        code
    }
}
