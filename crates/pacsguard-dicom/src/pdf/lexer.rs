//! PDF tokens and objects (ISO 32000-1 §7.2–7.3), read the way lenient readers read them:
//! comments and every kind of whitespace between tokens, `#xx` escapes in names, octal and
//! line-continuation escapes in strings, junk keywords inside containers skipped.
//!
//! Total by construction: every read is a `get`, nesting is bounded by
//! [`MAX_PDF_NESTING_DEPTH`] (deeper content makes the object unreadable instead of
//! recursing further), and the lexer never looks past the end it is given, which the
//! caller sets from its byte budget.

use super::budget::MAX_PDF_NESTING_DEPTH;

/// A dictionary as written: every pair in order, duplicates kept (readers disagree on
/// which one wins, so the analysis looks at all of them).
pub type Dict = Vec<(Vec<u8>, Obj)>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real,
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(u32, u16),
    /// A bare keyword (`endobj`, `stream`, `R`, junk); never inside a returned container.
    Keyword(Vec<u8>),
}

impl Obj {
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(dict) => Some(dict),
            _ => None,
        }
    }

    pub fn as_name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(name) => Some(name),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Obj::Int(value) => Some(*value),
            _ => None,
        }
    }
}

/// The value under `key` in `dict` as readers read it: the last, where a key is written
/// twice (qpdf: "last occurrence overrides"; mutool alike). The first was read here, so
/// `/URI (https://…) /URI (\\host\share)` named the web link where a click opens the
/// share (review rv33-screen). What a security decision reads where an earlier duplicate
/// could still matter to some reader reads [`get_all`].
pub fn get<'d>(dict: &'d Dict, key: &[u8]) -> Option<&'d Obj> {
    dict.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Every value under `key` in `dict`, in the order written.
pub fn get_all<'d>(dict: &'d Dict, key: &'d [u8]) -> impl Iterator<Item = &'d Obj> + 'd {
    dict.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
}

pub fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

pub fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(byte: u8) -> bool {
    !is_whitespace(byte) && !is_delimiter(byte)
}

/// Reads objects from `bytes` starting at `pos`, never past `bytes.len()`.
#[derive(Debug)]
pub struct Lexer<'a> {
    bytes: &'a [u8],
    pub pos: usize,
    /// Set when content nested deeper than [`MAX_PDF_NESTING_DEPTH`] was met.
    pub too_deep: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(bytes: &'a [u8], pos: usize) -> Self {
        Lexer {
            bytes,
            pos,
            too_deep: false,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips whitespace and comments.
    pub fn skip_space(&mut self) {
        while let Some(byte) = self.peek() {
            if is_whitespace(byte) {
                self.pos += 1;
            } else if byte == b'%' {
                while let Some(byte) = self.peek() {
                    if byte == b'\r' || byte == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The next value; containers are read whole (references folded), a keyword comes
    /// back as [`Obj::Keyword`]. `None` at the end or on unreadable input.
    pub fn token(&mut self, depth: usize) -> Option<Obj> {
        self.skip_space();
        let byte = self.peek()?;
        match byte {
            b'/' => {
                self.pos += 1;
                Some(Obj::Name(self.name()))
            }
            b'(' => {
                self.pos += 1;
                Some(Obj::Str(self.literal_string()))
            }
            b'<' if self.bytes.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                self.container(depth, b'>')
                    .map(|items| Obj::Dict(pairs(items)))
            }
            b'<' => {
                self.pos += 1;
                Some(Obj::Str(self.hex_string()))
            }
            b'[' => {
                self.pos += 1;
                self.container(depth, b']').map(Obj::Array)
            }
            b'>' | b']' | b')' | b'{' | b'}' => {
                // A stray closer (or a PostScript brace): a keyword of its own.
                self.pos += 1;
                Some(Obj::Keyword(vec![byte]))
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(is_regular) {
                    self.pos += 1;
                }
                let word = self.bytes.get(start..self.pos)?;
                Some(word_value(word))
            }
        }
    }

    /// Reads items up to `close` (`>` of `>>` or `]`), folding `N G R`.
    fn container(&mut self, depth: usize, close: u8) -> Option<Vec<Obj>> {
        if depth >= MAX_PDF_NESTING_DEPTH {
            self.too_deep = true;
            return None;
        }
        let mut items: Vec<Obj> = Vec::new();
        loop {
            self.skip_space();
            // An unclosed container at the end: a lenient reader keeps what it read.
            let Some(byte) = self.peek() else {
                return Some(items);
            };
            if byte == close {
                self.pos += 1;
                if close == b'>' && self.peek() == Some(b'>') {
                    self.pos += 1;
                }
                return Some(items);
            }
            let Some(token) = self.token(depth + 1) else {
                return if self.too_deep { None } else { Some(items) };
            };
            match token {
                Obj::Keyword(word) if word == b"R" => fold_reference(&mut items),
                Obj::Keyword(word) if word == b"endobj" || word == b"stream" => {
                    // An unclosed container: the object ends here for a lenient reader.
                    return Some(items);
                }
                Obj::Keyword(_) => {}
                value => items.push(value),
            }
        }
    }

    fn name(&mut self) -> Vec<u8> {
        let mut name = Vec::new();
        while let Some(byte) = self.peek() {
            if !is_regular(byte) {
                break;
            }
            if byte == b'#'
                && let Some(value) = self
                    .bytes
                    .get(self.pos + 1..self.pos + 3)
                    .and_then(hex_pair)
            {
                name.push(value);
                self.pos += 3;
                continue;
            }
            name.push(byte);
            self.pos += 1;
        }
        name
    }

    fn literal_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut open = 1usize;
        while let Some(byte) = self.peek() {
            self.pos += 1;
            match byte {
                b'(' => {
                    open += 1;
                    out.push(byte);
                }
                b')' => {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                    out.push(byte);
                }
                b'\\' => self.escape(&mut out),
                _ => out.push(byte),
            }
        }
        out
    }

    fn escape(&mut self, out: &mut Vec<u8>) {
        let Some(byte) = self.peek() else { return };
        self.pos += 1;
        match byte {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            b'\n' => {}
            b'0'..=b'7' => {
                let mut value = u32::from(byte - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            other => out.push(other),
        }
    }

    fn hex_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(byte) = self.peek() {
            self.pos += 1;
            if byte == b'>' {
                break;
            }
            let Some(nibble) = hex_digit(byte) else {
                continue; // whitespace, and junk a reader skips
            };
            match high.take() {
                Some(h) => out.push(h << 4 | nibble),
                None => high = Some(nibble),
            }
        }
        if let Some(h) = high {
            out.push(h << 4);
        }
        out
    }

    /// After `stream`: spaces, then CRLF, LF or a lone CR. Returns where the data starts.
    pub fn stream_data_start(&mut self) -> usize {
        while matches!(self.peek(), Some(b' ') | Some(b'\t')) {
            self.pos += 1;
        }
        if self.bytes.get(self.pos..self.pos + 2) == Some(b"\r\n") {
            self.pos += 2;
        } else if matches!(self.peek(), Some(b'\n') | Some(b'\r')) {
            self.pos += 1;
        }
        self.pos
    }

    /// Reads the body of an indirect object after its `obj` keyword: the value, and, if a
    /// `stream` keyword follows a dictionary, where its data starts.
    pub fn object_body(&mut self) -> Option<(Obj, Option<usize>)> {
        let mut items: Vec<Obj> = Vec::new();
        // A value is at most `N G R`: three tokens, and then its end keyword.
        for _ in 0..4 {
            match self.token(0) {
                Some(Obj::Keyword(word)) if word == b"R" => fold_reference(&mut items),
                Some(Obj::Keyword(word)) if word == b"stream" => {
                    let start = self.stream_data_start();
                    let value = items.into_iter().next()?;
                    return value.as_dict().is_some().then_some((value, Some(start)));
                }
                Some(Obj::Keyword(_)) | None => break,
                Some(value) => items.push(value),
            }
        }
        items.into_iter().next().map(|value| (value, None))
    }
}

/// `N G R` with the two integers already in `items`: they become one reference.
fn fold_reference(items: &mut Vec<Obj>) {
    let n = items.len();
    if n >= 2
        && let (Some(Obj::Int(num)), Some(Obj::Int(generation))) =
            (items.get(n - 2), items.get(n - 1))
        && let (Ok(num), Ok(generation)) = (u32::try_from(*num), u16::try_from(*generation))
    {
        items.truncate(n - 2);
        items.push(Obj::Ref(num, generation));
    }
}

/// A dictionary's items as pairs: a name, then its value. A non-name where a key is due is
/// skipped, as lenient readers do.
fn pairs(items: Vec<Obj>) -> Dict {
    let mut dict = Dict::new();
    let mut items = items.into_iter();
    while let Some(item) = items.next() {
        if let Obj::Name(key) = item {
            let value = items.next().unwrap_or(Obj::Null);
            dict.push((key, value));
        }
    }
    dict
}

fn word_value(word: &[u8]) -> Obj {
    match word {
        b"true" => Obj::Bool(true),
        b"false" => Obj::Bool(false),
        b"null" => Obj::Null,
        _ => number(word).unwrap_or_else(|| Obj::Keyword(word.to_vec())),
    }
}

fn number(word: &[u8]) -> Option<Obj> {
    let digits = word
        .strip_prefix(b"-")
        .or_else(|| word.strip_prefix(b"+"))
        .unwrap_or(word);
    if digits.is_empty() {
        return None;
    }
    if digits.iter().all(u8::is_ascii_digit) {
        let text = std::str::from_utf8(word).ok()?;
        return Some(text.parse::<i64>().map(Obj::Int).unwrap_or(Obj::Real));
    }
    let real = digits.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && digits.iter().any(u8::is_ascii_digit);
    real.then_some(Obj::Real)
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    match pair {
        [h, l] => Some(hex_digit(*h)? << 4 | hex_digit(*l)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Option<Obj> {
        Lexer::new(text, 0).object_body().map(|(value, _)| value)
    }

    #[test]
    fn reads_names_strings_and_references_as_readers_do() {
        let value =
            parse(b"<</S/J#61vaScript%c\n/JS(a\\)b\\101\\\nc)/K[1 0 R 2]/H<41 4>>>").expect("dict");
        let dict = value.as_dict().expect("dict");
        assert_eq!(get(dict, b"S"), Some(&Obj::Name(b"JavaScript".to_vec())));
        assert_eq!(get(dict, b"JS"), Some(&Obj::Str(b"a)bAc".to_vec())));
        assert_eq!(
            get(dict, b"K"),
            Some(&Obj::Array(vec![Obj::Ref(1, 0), Obj::Int(2)]))
        );
        assert_eq!(get(dict, b"H"), Some(&Obj::Str(b"A@".to_vec())));
    }

    #[test]
    fn stream_keyword_may_be_followed_by_spaces() {
        let mut lexer = Lexer::new(b"<< /Length 3 >>\nstream  \r\nabc", 0);
        let (_, start) = lexer.object_body().expect("stream");
        assert_eq!(start, Some(26));
    }

    #[test]
    fn nesting_at_the_limit_is_read_and_one_deeper_is_not() {
        let at_limit = [
            b"[".repeat(MAX_PDF_NESTING_DEPTH),
            b"]".repeat(MAX_PDF_NESTING_DEPTH),
        ]
        .concat();
        let mut lexer = Lexer::new(&at_limit, 0);
        assert!(lexer.token(0).is_some() && !lexer.too_deep);
        let deeper = [
            b"[".repeat(MAX_PDF_NESTING_DEPTH + 1),
            b"]".repeat(MAX_PDF_NESTING_DEPTH + 1),
        ]
        .concat();
        let mut lexer = Lexer::new(&deeper, 0);
        assert!(lexer.token(0).is_none() && lexer.too_deep);
    }
}
