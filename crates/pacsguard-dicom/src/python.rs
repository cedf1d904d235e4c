//! Python source without `#!`: `python3 FILE` runs any file, whatever its name, but
//! CPython compiles the whole file before it runs a line of it, so text runs only if
//! all of it is Python. A README, a log, an SR report's text breaks that within a line
//! or two (two words side by side, `1.2.3`, an apostrophe, `---`), and so does a file
//! that holds a script after anything else. The model here reads a file as CPython's
//! tokenizer does (strings, brackets, indentation, numbers) and checks the shape of
//! each line as the grammar would (no two operands side by side, no operator where an
//! operand must be); text that gets through and imports a module or calls a function
//! outside a function's body is a program `python3` runs.
//!
//! It errs towards "not Python" where it is unsure (f-strings with nested quotes,
//! rare grammar): that loses a finding on the rare real program, never raises one on
//! text.

use crate::budget::Clock;

/// Indentation levels CPython's tokenizer accepts (`MAXINDENT`); deeper is its
/// "too many levels of indentation" error, and nothing runs.
pub const PYTHON_MAX_INDENT: usize = 100;
/// Brackets open at once that CPython's tokenizer accepts (`MAXLEVEL`); deeper is its
/// "too many nested parentheses" error, and nothing runs.
pub const PYTHON_MAX_BRACKETS: usize = 200;

/// What `python3 FILE` would make of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The whole file reads as Python, and what it runs at its top level imports or
    /// calls: `offset` is that line's start.
    Runs { offset: usize, detail: String },
    /// A syntax error somewhere (or nothing that runs): not a program.
    NotPython,
    /// The caller's deadline passed before the end of the file.
    CannotTell,
    /// A `coding:` cookie names a codec that CPython decodes the file with and that the
    /// model does not read (an EBCDIC code page, a stateful 7-bit one): what it runs is
    /// not known. The codec's name as written.
    Undecoded(String),
}

/// What `python3` would do with `bytes` as a source file; the model stops at `clock`'s
/// deadline ([`Verdict::CannotTell`]).
pub fn python_program(bytes: &[u8], clock: &Clock) -> Verdict {
    let Some(Source { text, bom, latin1 }) = (match source_text(bytes) {
        Ok(source) => source,
        Err(codec) => return Verdict::Undecoded(codec),
    }) else {
        return Verdict::NotPython;
    };
    let mut reader = Reader::new(&text);
    match reader.read(clock) {
        Err(Stop::Syntax) => Verdict::NotPython,
        Err(Stop::Deadline) => Verdict::CannotTell,
        Ok(None) => Verdict::NotPython,
        Ok(Some((at, what))) => {
            let line = text[..at].matches('\n').count() + 1;
            let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
            let shown: String = text[at..end].chars().take(120).collect();
            // A Latin-1 file's bytes are one character each in the decoded text.
            let in_file = bom
                + if latin1 == Some(true) {
                    text[..at].chars().count()
                } else {
                    at
                };
            // Decoded from UTF-7, the text's offsets are not the file's: its start.
            let in_file = if latin1 == Some(false) { 0 } else { in_file };
            let in_file = in_file.min(bytes.len().saturating_sub(1));
            Verdict::Runs {
                offset: in_file,
                detail: format!(
                    "all of it reads as Python source, and line {line} (offset {in_file}) {what} at its top level: \"{}\"",
                    shown.escape_debug()
                ),
            }
        }
    }
}

/// A file's text as CPython decodes a source file.
struct Source {
    text: String,
    /// Bytes of a UTF-8 byte order mark before the text.
    bom: usize,
    /// `Some(true)`: decoded byte by byte (a `coding:` cookie), not as UTF-8;
    /// `Some(false)`: decoded from UTF-7, whose offsets are not the file's.
    latin1: Option<bool>,
}

/// How a codec a `coding:` cookie names is read here.
#[derive(Debug, PartialEq, Eq)]
enum CookieCodec {
    /// ASCII bytes are ASCII characters (UTF-8, Latin-1, the Windows and ISO code
    /// pages, ...): the text is read byte by byte.
    AsciiCompatible,
    /// UTF-7 (`utf-7`, `utf7`, `u7`, `unicode-1-1-utf-7`): ASCII letters may be written
    /// as base64 of UTF-16 (`+AGkAbQBw...-` is `imp...`), decoded here.
    Utf7,
    /// Codecs in which ASCII bytes are other characters, which CPython accepts for a
    /// source file: EBCDIC code pages (`cp037`, `cp500`, ...) and stateful 7-bit
    /// encodings (`hz`, `iso2022_kr`). Not read here: the file is a warning.
    Unread,
}

/// Codecs (as Python's `encodings` normalises their names and aliases: lower case,
/// `_` for other characters) whose ASCII bytes are not ASCII text and that CPython
/// accepts as a source encoding (checked with CPython 3.11's `compile`), besides UTF-7.
const UNREAD_CODECS: [&str; 40] = [
    "cp037",
    "037",
    "csibm037",
    "ebcdic_cp_ca",
    "ebcdic_cp_nl",
    "ebcdic_cp_us",
    "ebcdic_cp_wt",
    "ibm037",
    "ibm039",
    "cp1026",
    "1026",
    "csibm1026",
    "ibm1026",
    "cp1140",
    "1140",
    "ibm1140",
    "cp273",
    "273",
    "csibm273",
    "ibm273",
    "cp424",
    "424",
    "csibm424",
    "ebcdic_cp_he",
    "ibm424",
    "cp500",
    "500",
    "csibm500",
    "ebcdic_cp_be",
    "ebcdic_cp_ch",
    "ibm500",
    "cp875",
    "hz",
    "hz_gb",
    "hz_gb_2312",
    "hzgb",
    "iso2022_kr",
    "csiso2022kr",
    "iso2022kr",
    "iso_2022_kr",
];

/// UTF-7's names as Python's `encodings` normalises them.
const UTF7_CODECS: [&str; 4] = ["utf_7", "utf7", "u7", "unicode_1_1_utf_7"];

/// The codec a `coding:` cookie in the first two lines names, as CPython reads it
/// (`coding[:=]` in a comment line, then blanks, then `[-\w.]+`), normalised as
/// Python's `encodings` looks names up. `None` without a cookie.
fn cookie_codec(bytes: &[u8]) -> Option<String> {
    bytes.splitn(3, |&b| b == b'\n').take(2).find_map(|line| {
        let comment = line.trim_ascii_start();
        if !comment.starts_with(b"#") {
            return None;
        }
        let at = comment
            .windows(7)
            .position(|w| w == b"coding:" || w == b"coding=")?;
        let name: Vec<u8> = comment[at + 7..]
            .iter()
            .skip_while(|&&b| matches!(b, b' ' | b'\t'))
            .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .map(|&b| {
                if b.is_ascii_alphanumeric() {
                    b.to_ascii_lowercase()
                } else {
                    b'_'
                }
            })
            .collect();
        (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
    })
}

fn classify_codec(name: &str) -> CookieCodec {
    if UTF7_CODECS.contains(&name) {
        CookieCodec::Utf7
    } else if UNREAD_CODECS.contains(&name) {
        CookieCodec::Unread
    } else {
        CookieCodec::AsciiCompatible
    }
}

/// UTF-7 (RFC 2152) decoded as CPython's codec decodes it: ASCII as itself, `+-` as
/// `+`, and `+` then base64 of UTF-16BE up to the first byte that is not base64 (a
/// `-` there is dropped). `None` where CPython fails: a byte past ASCII, a lone
/// surrogate, an odd code unit.
fn utf7(bytes: &[u8]) -> Option<String> {
    let sextet = |b: u8| -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b >= 0x80 {
            return None;
        }
        if b != b'+' {
            units.push(u16::from(b));
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            units.push(u16::from(b'+'));
            i += 1;
            continue;
        }
        let (mut bits, mut held) = (0u32, 0u32);
        while let Some(value) = bytes.get(i).and_then(|&b| sextet(b)) {
            bits = (bits << 6) | value;
            held += 6;
            if held >= 16 {
                held -= 16;
                units.push((bits >> held) as u16);
                bits &= (1 << held) - 1;
            }
            i += 1;
        }
        if held >= 6 {
            return None; // a partial code unit
        }
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    String::from_utf16(&units).ok()
}

/// The file as CPython decodes a source file: UTF-8 (a BOM skipped), or the codec a
/// `coding:` cookie in the first two lines names. CPython honours the cookie whether or
/// not the bytes are valid UTF-8 (review r26-screen: `# coding: utf-7` then
/// `+AGkAbQBw...-` ran `import os; os.system(...)` and was read as UTF-8, a line of
/// base64, here): an ASCII-compatible codec is read byte by byte (Latin-1: only the
/// ASCII structure matters), UTF-7 is decoded, and a codec not read here is `Err` with
/// its name. NUL bytes are CPython's "source code cannot contain null bytes".
fn source_text(bytes: &[u8]) -> Result<Option<Source>, String> {
    if bytes.contains(&0) {
        return Ok(None);
    }
    let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bom = bytes.len() - without_bom.len();
    let codec = cookie_codec(without_bom);
    match codec.as_deref().map(classify_codec) {
        Some(CookieCodec::Unread) => return Err(codec.unwrap_or_default()),
        Some(CookieCodec::Utf7) => {
            return Ok(utf7(without_bom).map(|text| Source {
                text,
                bom,
                latin1: Some(false),
            }));
        }
        Some(CookieCodec::AsciiCompatible) | None => {}
    }
    if let Ok(text) = std::str::from_utf8(without_bom) {
        return Ok(Some(Source {
            text: text.to_owned(),
            bom,
            latin1: None,
        }));
    }
    Ok(codec.map(|_| Source {
        text: without_bom.iter().map(|&b| char::from(b)).collect(),
        bom,
        latin1: Some(true),
    }))
}

#[derive(Debug)]
enum Stop {
    Syntax,
    Deadline,
}

/// What came before the next token, for the grammar's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prev {
    /// The start of a statement (a line, or after `;`).
    Start,
    /// A name, number, string or closing bracket: an operator or the end comes next.
    Operand,
    /// A binary operator or `=`: an operand must come next.
    Operator,
    /// `(`, `[` or `{`.
    Open,
    Comma,
    Colon,
    /// `.`: an attribute name comes next (or more dots in `from .. import`).
    Dot,
    Keyword,
}

const KEYWORDS: [&str; 32] = [
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];
/// Python's builtin functions: names a file calls without binding them (the site's
/// `license`, `credits`, `copyright` and `help` left out: `license(GPL);` is a line
/// of a C example, and they print text).
const BUILTINS: [&str; 72] = [
    "__import__",
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "breakpoint",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "compile",
    "complex",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "exit",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "locals",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "quit",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "vars",
    "zip",
];
/// Soft keywords: names, except at the start of a statement followed by an operand.
const SOFT_KEYWORDS: [&str; 3] = ["match", "case", "type"];
/// Operators, longest first.
const OPERATORS: [&str; 47] = [
    "**=", "//=", ">>=", "<<=", "...", "->", "**", "//", "<<", ">>", "<=", ">=", "==", "!=", ":=",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", "+", "-", "*", "/", "%", "@", "&", "|",
    "^", "~", "<", ">", "=", ".", ",", ":", ";", "(", ")", "[", "]", "{", "}",
];
/// Operators that may start an operand (unary, star-unpacking, a decorator).
const PREFIX_OPERATORS: [&str; 5] = ["+", "-", "~", "*", "**"];

struct Reader<'a> {
    text: &'a str,
    at: usize,
    prev: Prev,
    brackets: Vec<u8>,
    indents: Vec<usize>,
    /// The last logical line ended with `:` (a block opener): the next must indent.
    block_pending: bool,
    /// The indentation of the `def` whose body is being read: its calls run only
    /// when it is called.
    def_body: Option<usize>,
    /// The current logical line: its start, its indentation, its first word.
    line_start: usize,
    line_indent: usize,
    line_first: Option<&'a str>,
    /// A name that `def` or `class` just named: its `(` is no call.
    defining: bool,
    found: Option<(usize, &'static str)>,
    /// The last operand was a string literal.
    string_last: bool,
    /// The name a dotted chain of attributes being read starts with (`os` of
    /// `os.path.join`): what a call here calls, if it runs at all. A literal, or what
    /// a call or subscript returns, starts none.
    chain_head: Option<&'a str>,
    /// Names the file binds before using them: `def`/`class` names, imported modules
    /// and names, `as` targets, and names assigned at a statement's start.
    bound: std::collections::HashSet<&'a str>,
    /// The name that starts the current statement, bound if `=` follows it.
    statement_name: Option<&'a str>,
    /// In an `import` statement's names, or right after `as`, `def` or `class`: the
    /// next name read (not an attribute) is bound.
    binding: bool,
    /// In an `import` statement, past its `import`: every name it lists is bound.
    in_import: bool,
    /// The last keyword read (`import` before `*`).
    last_keyword: Option<&'a str>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            at: 0,
            prev: Prev::Start,
            brackets: Vec::new(),
            indents: vec![0],
            block_pending: false,
            def_body: None,
            line_start: 0,
            line_indent: 0,
            line_first: None,
            defining: false,
            found: None,
            string_last: false,
            chain_head: None,
            bound: std::collections::HashSet::new(),
            statement_name: None,
            binding: false,
            in_import: false,
            last_keyword: None,
        }
    }

    fn read(&mut self, clock: &Clock) -> Result<Option<(usize, &'static str)>, Stop> {
        let text: &'a str = self.text;
        let bytes = text.as_bytes();
        self.physical_line_start()?;
        while self.at < bytes.len() {
            if clock.expired() {
                return Err(Stop::Deadline);
            }
            let b = bytes[self.at];
            match b {
                b' ' | b'\t' | 0x0c => self.at += 1,
                b'#' => {
                    self.at = memchr::memchr(b'\n', &bytes[self.at..])
                        .map_or(bytes.len(), |n| self.at + n);
                }
                b'\\' => {
                    // An explicit line continuation, nothing else.
                    match bytes.get(self.at + 1..self.at + 3) {
                        Some([b'\r', b'\n']) => self.at += 3,
                        _ if matches!(bytes.get(self.at + 1), Some(b'\n' | b'\r')) => {
                            self.at += 2;
                        }
                        _ => return Err(Stop::Syntax),
                    }
                }
                b'\n' | b'\r' => {
                    self.at += if bytes.get(self.at..self.at + 2) == Some(b"\r\n") {
                        2
                    } else {
                        1
                    };
                    if self.brackets.is_empty() {
                        self.end_logical_line()?;
                        self.physical_line_start()?;
                    }
                }
                b'\'' | b'"' => self.string()?,
                b'0'..=b'9' => self.number()?,
                b'.' if bytes.get(self.at + 1).is_some_and(u8::is_ascii_digit) => {
                    self.number()?;
                }
                _ if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => self.name()?,
                _ => self.operator()?,
            }
        }
        if !self.brackets.is_empty() {
            return Err(Stop::Syntax);
        }
        self.end_logical_line()?;
        if self.block_pending {
            return Err(Stop::Syntax); // "expected an indented block" at the end
        }
        Ok(self.found)
    }

    /// At the start of a physical line outside brackets: its indentation, checked as
    /// CPython's tokenizer checks it (blank and comment lines aside).
    fn physical_line_start(&mut self) -> Result<(), Stop> {
        let text: &'a str = self.text;
        let bytes = text.as_bytes();
        loop {
            let mut column = 0;
            let mut i = self.at;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b' ' => column += 1,
                    b'\t' => column = (column / 8 + 1) * 8,
                    0x0c => column = 0,
                    _ => break,
                }
                i += 1;
            }
            match bytes.get(i) {
                None => {
                    self.at = i;
                    return Ok(());
                }
                Some(b'\n' | b'\r' | b'#') => {
                    // Blank or comment: no indentation, no statement.
                    let end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                    self.at = (end + 1).min(bytes.len());
                    if end >= bytes.len() {
                        return Ok(());
                    }
                    continue;
                }
                Some(_) => {}
            }
            let top = self.indents.last().copied().unwrap_or(0);
            if column > top {
                if !self.block_pending {
                    return Err(Stop::Syntax); // "unexpected indent"
                }
                if self.indents.len() >= PYTHON_MAX_INDENT {
                    return Err(Stop::Syntax);
                }
                self.indents.push(column);
            } else {
                if self.block_pending {
                    return Err(Stop::Syntax); // "expected an indented block"
                }
                while self.indents.last().is_some_and(|&level| level > column) {
                    self.indents.pop();
                }
                if self.indents.last() != Some(&column) {
                    return Err(Stop::Syntax); // "unindent does not match"
                }
            }
            if self.def_body.is_some_and(|def| column <= def) {
                self.def_body = None;
            }
            self.block_pending = false;
            self.prev = Prev::Start;
            self.line_start = i;
            self.line_indent = column;
            self.line_first = None;
            self.at = i;
            return Ok(());
        }
    }

    fn end_logical_line(&mut self) -> Result<(), Stop> {
        match self.prev {
            Prev::Operator | Prev::Dot | Prev::Open => Err(Stop::Syntax),
            Prev::Start => Ok(()),
            prev => {
                self.statement_ended();
                self.block_pending = prev == Prev::Colon;
                if self.block_pending && self.line_first == Some("def") && self.def_body.is_none() {
                    self.def_body = Some(self.line_indent);
                }
                self.prev = Prev::Start;
                Ok(())
            }
        }
    }

    /// Forgets what held for the statement that ended.
    fn statement_ended(&mut self) {
        self.in_import = false;
        self.binding = false;
        self.statement_name = None;
    }

    /// Notes the first word of a statement.
    fn first_word(&mut self, word: &'a str) {
        if self.prev == Prev::Start && self.line_first.is_none() {
            self.line_first = Some(word);
        }
    }

    fn name(&mut self) -> Result<(), Stop> {
        let text: &'a str = self.text;
        let rest = &text[self.at..];
        let len = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(rest.len(), |(n, _)| n);
        if len == 0 {
            return Err(Stop::Syntax); // a character past ASCII that is no letter
        }
        let word = &rest[..len];
        self.at += len;
        let prefix = word.len() <= 2
            && ["r", "u", "b", "f", "br", "rb", "fr", "rf"]
                .contains(&word.to_ascii_lowercase().as_str());
        if prefix && matches!(self.text.as_bytes().get(self.at), Some(b'\'' | b'"')) {
            return self.string();
        }
        if KEYWORDS.contains(&word) {
            return self.keyword(word);
        }
        if self.prev == Prev::Start && SOFT_KEYWORDS.contains(&word) {
            self.first_word(word);
            // `match x:`: a keyword when an operand follows; `match = 1`: a name.
            self.prev = if self.operand_follows() {
                Prev::Keyword
            } else {
                Prev::Operand
            };
            return Ok(());
        }
        let head = if self.prev == Prev::Dot {
            self.chain_head
        } else {
            if self.binding {
                self.bound.insert(word);
                self.binding = self.in_import;
            }
            if self.prev == Prev::Start {
                self.statement_name = Some(word);
            }
            Some(word)
        };
        // None, True and False are operands like any name.
        self.operand()?;
        self.chain_head = head;
        Ok(())
    }

    /// Whether the next token (after blanks) starts an operand.
    fn operand_follows(&self) -> bool {
        let rest = self.text[self.at..].trim_start_matches([' ', '\t']);
        rest.chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '\'' | '"' | '(' | '[' | '{'))
    }

    fn keyword(&mut self, word: &'a str) -> Result<(), Stop> {
        if !self.keyword_fits(word) {
            return Err(Stop::Syntax);
        }
        self.first_word(word);
        self.last_keyword = Some(word);
        match word {
            "def" | "class" => {
                self.defining = true;
                self.binding = true;
            }
            "as" => self.binding = true,
            "import" => {
                if self.def_body.is_none() {
                    self.found
                        .get_or_insert((self.line_start, "imports a module"));
                }
                self.in_import = true;
                self.binding = true;
            }
            _ => {}
        }
        self.prev = Prev::Keyword;
        Ok(())
    }

    /// Whether the keyword `word` may stand here: the operators among the keywords
    /// need an operand before them, the statements a statement's start (or an inline
    /// block's, after `:`). JavaScript's `{is: …}` and prose's "…, and so" break here,
    /// as they break CPython's parser.
    fn keyword_fits(&self, word: &str) -> bool {
        let after_operand = self.prev == Prev::Operand;
        let statement = matches!(self.prev, Prev::Start | Prev::Colon);
        let after =
            |keyword: &str| self.prev == Prev::Keyword && self.last_keyword == Some(keyword);
        match word {
            "and" | "or" | "is" | "as" => after_operand,
            "in" => after_operand || after("not"),
            "if" | "else" => after_operand || statement,
            "for" => after_operand || statement || after("async"),
            "from" => statement || after_operand || after("yield"),
            "import" => statement || self.line_first == Some("from"),
            "lambda" | "await" | "yield" => !after_operand,
            "not" | "async" => true,
            "def" | "with" => statement || after("async"),
            // assert, break, class, continue, del, elif, except, finally, global,
            // nonlocal, pass, raise, return, try, while
            _ => statement,
        }
    }

    /// An operand (name, number, string, closing bracket) where one may stand.
    fn operand(&mut self) -> Result<(), Stop> {
        if self.prev == Prev::Operand {
            return Err(Stop::Syntax); // two operands side by side: prose
        }
        self.prev = Prev::Operand;
        self.string_last = false;
        self.chain_head = None;
        Ok(())
    }

    fn number(&mut self) -> Result<(), Stop> {
        let text: &'a str = self.text;
        let bytes = text.as_bytes();
        let start = self.at;
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            let exponent_sign = matches!(b, b'+' | b'-')
                && matches!(bytes.get(i - 1), Some(b'e' | b'E'))
                && !bytes[start..i].iter().any(|b| matches!(b, b'x' | b'X'));
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                i += 1;
            } else {
                break;
            }
        }
        self.at = i;
        if !is_number(&text[start..i]) {
            return Err(Stop::Syntax);
        }
        self.operand()
    }

    /// A string literal from its quote (its prefix read by the caller): single-quoted
    /// ones end on their line, triple-quoted ones anywhere; a backslash escapes the
    /// next character (in raw strings too, as far as the end is concerned).
    fn string(&mut self) -> Result<(), Stop> {
        let text: &'a str = self.text;
        let bytes = text.as_bytes();
        let quote = bytes[self.at];
        let triple = bytes.get(self.at..self.at + 3) == Some(&[quote; 3][..]);
        let mut i = self.at + if triple { 3 } else { 1 };
        loop {
            match bytes.get(i) {
                None => return Err(Stop::Syntax), // unterminated
                Some(b'\\') => i += 2,
                Some(b'\n' | b'\r') if !triple => return Err(Stop::Syntax),
                Some(&b) if b == quote => {
                    if !triple {
                        i += 1;
                        break;
                    }
                    if bytes.get(i..i + 3) == Some(&[quote; 3][..]) {
                        i += 3;
                        break;
                    }
                    i += 1;
                }
                Some(_) => i += 1,
            }
        }
        self.at = i.min(bytes.len());
        // Strings side by side are one (implicit concatenation).
        if !(self.prev == Prev::Operand && self.string_last) {
            self.operand()?;
        }
        self.string_last = true;
        Ok(())
    }

    fn operator(&mut self) -> Result<(), Stop> {
        let rest = &self.text[self.at..];
        let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) else {
            return Err(Stop::Syntax); // `$`, `?`, `!`, a backtick: no Python
        };
        self.at += op.len();
        // A `def` line's parameters hold the bare markers `*` and `/`.
        let parameters = self.line_first == Some("def");
        match *op {
            "(" | "[" | "{" => {
                // A call runs only if its name is bound (a builtin, or bound earlier in
                // the file): JavaScript, Starlark BUILD files, LLVM's `.def` tables and
                // `see(below)` are valid syntax whose first call is a NameError.
                let callee = self
                    .chain_head
                    .filter(|head| BUILTINS.contains(head) || self.bound.contains(head));
                let call =
                    *op == "(" && self.prev == Prev::Operand && callee.is_some() && !self.defining;
                if call && self.def_body.is_none() && !parameters {
                    self.found
                        .get_or_insert((self.line_start, "calls a function"));
                }
                self.defining = false;
                if self.brackets.len() >= PYTHON_MAX_BRACKETS {
                    return Err(Stop::Syntax);
                }
                self.brackets.push(op.as_bytes()[0]);
                self.prev = Prev::Open;
            }
            ")" | "]" | "}" => {
                let open = match *op {
                    ")" => b'(',
                    "]" => b'[',
                    _ => b'{',
                };
                if self.brackets.pop() != Some(open)
                    || matches!(self.prev, Prev::Operator | Prev::Dot)
                {
                    return Err(Stop::Syntax);
                }
                self.prev = Prev::Operand;
                self.string_last = false;
                self.chain_head = None;
            }
            ";" => {
                if !self.brackets.is_empty() || self.prev == Prev::Start {
                    return Err(Stop::Syntax);
                }
                self.end_logical_line()?;
                if self.block_pending {
                    return Err(Stop::Syntax); // `if x:; y`
                }
                self.line_start = self.at;
                self.line_first = None;
            }
            "," => {
                let marker = parameters && self.prev == Prev::Operator;
                if !matches!(self.prev, Prev::Operand | Prev::Keyword | Prev::Colon) && !marker {
                    return Err(Stop::Syntax);
                }
                self.prev = Prev::Comma;
            }
            ":" => {
                if self.prev == Prev::Start || self.prev == Prev::Dot {
                    return Err(Stop::Syntax);
                }
                self.defining = false;
                self.prev = Prev::Colon;
            }
            "." => {
                let relative_import = self.line_first == Some("from")
                    && matches!(self.prev, Prev::Keyword | Prev::Dot);
                if self.prev != Prev::Operand && !relative_import {
                    return Err(Stop::Syntax);
                }
                self.prev = Prev::Dot;
            }
            "..." => self.operand()?,
            // `from tkinter import *`: everything, an operand.
            "*" if self.prev == Prev::Keyword && self.last_keyword == Some("import") => {
                self.operand()?;
            }
            "@" if self.prev == Prev::Start => self.prev = Prev::Operator, // a decorator
            _ => {
                if *op == "=" && self.brackets.is_empty() {
                    // `x = …` at a statement's start binds x (`x.y = …` too: harmless).
                    if let Some(name) = self.statement_name {
                        self.bound.insert(name);
                    }
                }
                let prefix = PREFIX_OPERATORS.contains(op) || (parameters && *op == "/");
                if self.prev != Prev::Operand && !prefix {
                    return Err(Stop::Syntax); // an operator where an operand must be
                }
                if self.prev == Prev::Dot {
                    return Err(Stop::Syntax);
                }
                self.prev = Prev::Operator;
            }
        }
        Ok(())
    }
}

/// Whether `token` is a Python number literal: decimal (no leading zeros but for zero
/// itself), hex, octal, binary, float with a fraction or exponent, imaginary; `_`
/// between digits. `1.2.3`, `2nd`, `01` are CPython's syntax errors.
fn is_number(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    let radixes: [(&str, DigitTest); 3] = [
        ("0x", is_hex_digit),
        ("0o", is_octal_digit),
        ("0b", is_binary_digit),
    ];
    for (prefix, is_digit) in radixes {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = rest.strip_prefix('_').unwrap_or(rest);
            return digits(rest, is_digit);
        }
    }
    let body = lower.strip_suffix('j').unwrap_or(&lower);
    let imaginary = body.len() != lower.len();
    let (mantissa, exponent) = match body.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    if let Some(exponent) = exponent {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if !digits(exponent, is_decimal_digit) {
            return false;
        }
    }
    let decimal = |s: &str| digits(s, is_decimal_digit);
    match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() || decimal(whole))
                && (fraction.is_empty() || decimal(fraction))
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => {
            let float = exponent.is_some() || imaginary;
            decimal(mantissa)
                && (float
                    || !mantissa.starts_with('0')
                    || mantissa.chars().all(|c| c == '0' || c == '_'))
        }
    }
}

/// Whether a character is a digit of some radix.
type DigitTest = fn(char) -> bool;

/// Whether `s` is digits that `is_digit` accepts, with single `_` between them.
fn digits(s: &str, is_digit: DigitTest) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.chars().all(|c| c == '_' || is_digit(c))
}

fn is_hex_digit(c: char) -> bool {
    c.is_ascii_hexdigit()
}

fn is_octal_digit(c: char) -> bool {
    ('0'..='7').contains(&c)
}

fn is_binary_digit(c: char) -> bool {
    matches!(c, '0' | '1')
}

fn is_decimal_digit(c: char) -> bool {
    c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_cpython_reads_them() {
        for number in [
            "0", "00", "10", "1_000", "0x1F", "0x_1f", "0o17", "0b1", "1.5", ".5", "5.", "1e5",
            "1E-5", "3j", "1.5e+3j", "01j", "00.5",
        ] {
            assert!(is_number(number), "{number}");
        }
        // Versions, dates, ordinals: CPython's "invalid decimal literal" and the like.
        for text in [
            "01", "1.2.3", "2nd", "1__0", "0x", "1e", "1_", "0b2", "2024-03",
        ] {
            assert!(!is_number(text), "{text}");
        }
    }

    fn verdict(source: &str) -> Verdict {
        python_program(source.as_bytes(), &Clock::default())
    }

    /// The offset of what runs is the file's, past a byte order mark too.
    #[test]
    fn the_offset_is_the_line_of_what_runs_in_the_file() {
        let source = "\u{feff}\"\"\"Doc.\"\"\"\nx = 1\nprint(x)\n";
        match verdict(source) {
            Verdict::Runs { offset, detail } => {
                assert_eq!(&source.as_bytes()[offset..offset + 5], b"print");
                assert!(
                    detail.contains("line 3 (offset 20) calls a function"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// A call runs what the file bound first: a function it defines, a module it
    /// imports under another name, a name it assigns.
    #[test]
    fn calls_of_names_the_file_binds_run() {
        for source in [
            "def main():\n    pass\nmain()\n",
            "x = print\nx('RAN')\n",
            "from os import system as run\n",
        ] {
            assert!(
                matches!(verdict(source), Verdict::Runs { .. }),
                "{source:?}"
            );
        }
    }

    /// Definitions alone, data alone: nothing runs at the top level.
    /// Review r26-screen: CPython decodes a file with the codec its `coding:` cookie
    /// names, even when the bytes are valid UTF-8: `# coding: utf-7` then the base64 of
    /// `import os` ran it (python3 3.11 created the file it was told to) and was read
    /// here as UTF-8, one line of base64: not Python. UTF-7 is decoded now, and an
    /// EBCDIC or stateful codec (`# coding: cp037`: ASCII bytes are other characters)
    /// is said as not read.
    #[test]
    fn a_coding_cookie_decodes_the_file_as_cpython_does() {
        // `import os\nos.system("id")\n` as UTF-7 base64, made by Python's codec.
        let hidden = "# -*- coding: utf-7 -*-\n+AGkAbQBwAG8AcgB0ACAAbwBzAAoAbwBzAC4AcwB5AHMAdABlAG0AKAAiAGkAZAAiACkACg-\n";
        assert!(
            matches!(verdict(hidden), Verdict::Runs { .. }),
            "{:?}",
            verdict(hidden)
        );
        assert!(matches!(
            verdict("# vim: set fileencoding=utf7 :\nimport os\n"),
            Verdict::Runs { .. }
        ));
        // `+-` is `+`; a partial code unit is CPython's decoding error: nothing runs.
        assert_eq!(utf7(b"a+-b").as_deref(), Some("a+b"));
        assert_eq!(utf7(b"+AGkAbQ-").as_deref(), Some("im"));
        assert_eq!(utf7(b"+2D3cAA-").as_deref(), Some("\u{1f400}"));
        assert_eq!(utf7(b"+AGkA-"), None);
        for cookie in ["cp037", "IBM500", "ebcdic-cp-us", "hz"] {
            assert_eq!(
                verdict(&format!("# coding: {cookie}\nimport os\n")),
                Verdict::Undecoded(cookie.to_ascii_lowercase().replace('-', "_"))
            );
        }
        // An ASCII-compatible codec reads as before.
        assert!(matches!(
            verdict("# -*- coding: latin-1 -*-\nimport os\n"),
            Verdict::Runs { .. }
        ));
    }

    #[test]
    fn definitions_and_data_alone_run_nothing() {
        for source in [
            "def f():\n    import os\n    os.system('x')\n",
            "{\"a\": [1, 2], \"b\": \"c\"}\n",
            "a,b,c\n1,2,3\n",
            // A Debian source format file: a float "called", nothing called.
            "3.0 (native)\n",
            // Valid syntax whose first call is a NameError: JavaScript, a Starlark BUILD
            // file, an LLVM `.def` table, a note.
            "module.exports = {\n  clone: require('./clone.js'),\n}\n",
            "java_library(name = \"x\", srcs = [\"X.java\"])\n",
            "ELF_RELOC(R_X86_64_NONE, 0)\n",
            "see(below)\n",
            // `is` as a key, "and" after a comma: CPython's syntax errors.
            "x = {\n  is: 1,\n}\nprint(x)\n",
            "a, and b\nprint(a)\n",
            "# only a comment\n",
            "",
        ] {
            assert_eq!(verdict(source), Verdict::NotPython, "{source:?}");
        }
    }
}
