//! PostScript and EPS as a PostScript interpreter reads them.
//!
//! Ghostscript (and ImageMagick, which hands `%!` and DOS EPS files to it) runs a
//! PostScript program token by token from its start: `(%pipe%cmd) (r) file` runs a shell
//! command, `<< /OutputFile (%pipe%cmd) >> setpagedevice` too, `deletefile` and
//! `renamefile` change files, `file` and `run` open and run others. `-dSAFER` refuses
//! them, but a file is screened for what any interpreter it may meet would do. A program
//! is read where those readers find one: a file starting with `%!` (`%!PS-Adobe-3.0
//! EPSF-3.0` among them), or the PostScript section a DOS EPS binary header
//! (`C5 D0 D3 C6`) points to, which in a DICOM file is the preamble pointing into an
//! element. Issue 10 (session 13).

use crate::budget::Clock;
use pacsguard_events::Severity;

mod binary;
mod section_end;

#[cfg(test)]
use binary::MAX_POSTSCRIPT_BINARY_TOKENS;

/// What a PostScript program found in the file does that counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// From the start of the file.
    pub offset: usize,
    pub severity: Severity,
    pub detail: String,
}

/// The magic of a DOS EPS binary header, then the PostScript section's offset and length
/// (little-endian 32-bit).
const DOS_EPS_MAGIC: [u8; 4] = [0xC5, 0xD0, 0xD3, 0xC6];

/// Operators that change, open or run files (or list them).
const FILE_OPERATORS: [&[u8]; 7] = [
    b"deletefile",
    b"renamefile",
    b"file",
    b"run",
    b"filenameforall",
    b"runlibfile",
    b".libfile",
];

/// File names `file` opens that are no file of the system: the interpreter's own streams.
const OWN_STREAMS: [&[u8]; 5] = [
    b"%stdin",
    b"%stdout",
    b"%stderr",
    b"%lineedit",
    b"%statementedit",
];

/// The first thing the PostScript program of `bytes` (the whole file) does that changes,
/// opens or runs a file or a command. A program is read where its readers find one: the
/// whole file when it starts with `%!` (or `^D%!`, which ImageMagick takes for
/// PostScript too), the section a DOS EPS header points to, and otherwise the file's
/// first bytes up to where Ghostscript, handed any file, stops on an error
/// ([`program_prefix`]; review s14-r01: a DICOM preamble of `(%pipe%cmd) (w) file`
/// ran under `gs file.dcm` and was clean).
pub fn find_postscript_action(bytes: &[u8]) -> Option<Action> {
    find_postscript_action_until(bytes, &Clock::default())
}

/// [`find_postscript_action`] that stops at `clock`'s deadline: a warning naming it.
pub fn find_postscript_action_until(bytes: &[u8], clock: &Clock) -> Option<Action> {
    let (start, end, what, declared) = if bytes.starts_with(b"%!") || bytes.starts_with(b"\x04%!") {
        (
            0,
            bytes.len(),
            "a PostScript program (%! at the file's start)",
            true,
        )
    } else if bytes.starts_with(&DOS_EPS_MAGIC) {
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
        };
        let start = word(4)?;
        let len = word(8)?;
        if start >= bytes.len() {
            return None;
        }
        let end = bytes.len().min(start.saturating_add(len));
        (
            start,
            end,
            "the PostScript section of a DOS EPS binary header",
            true,
        )
    } else {
        (
            0,
            bytes.len(),
            "PostScript at the file's start, which Ghostscript runs when handed the file whatever its first bytes",
            false,
        )
    };
    let program = &bytes[start..end];
    let shared = Shared {
        clock: clock.clone(),
        ..Shared::default()
    };
    let (at, how) = scan(program, !declared, 0, &shared)?;
    if let Some(lost) = how.strip_prefix(LOST) {
        return Some(Action {
            offset: start + at,
            severity: Severity::Warning,
            detail: format!("{what} that {lost}"),
        });
    }
    Some(Action {
        offset: start + at,
        severity: Severity::Alert,
        detail: format!(
            "{what} that {how}: Ghostscript (and ImageMagick, which hands such files to it) does so when the file is opened without -dSAFER"
        ),
    })
}

/// Names Ghostscript defines when it starts (systemdict and userdict of Ghostscript
/// 10.00, listed by `gs -dNOSAFER -c "systemdict {pop =} forall"`), sorted; and the
/// control-character names among them (`^D`, `^Z`, escape sequences), which a text
/// list cannot hold.
const DEFINED_NAMES: &str = include_str!("postscript_names.txt");
const DEFINED_CONTROL_NAMES: [&[u8]; 6] =
    [b"\x01M", b"\x04", b"\x1a", b"\x1b", b"\x1bE", b"\x1bE\x1b"];

fn defined_at_start(name: &[u8]) -> bool {
    static NAMES: std::sync::OnceLock<Vec<&'static [u8]>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut names: Vec<&[u8]> = DEFINED_NAMES.lines().map(str::as_bytes).collect();
        names.extend(DEFINED_CONTROL_NAMES);
        names.sort_unstable();
        names
    });
    names.binary_search(&name).is_ok()
}

/// Names that, in the first bytes of a file that does not declare itself PostScript,
/// make the program reach past where Ghostscript would stop on an error: reading the
/// file itself (`currentfile 300 string readstring` skips a DICOM header to a program
/// in an element), or taking over error handling (`errordict /undefined {pop} put`
/// makes every later undefined name a no-op, so the whole file runs; checked with gs).
const TAKE_OVER_NAMES: [&[u8]; 3] = [b"currentfile", b"errordict", b"$error"];

/// How deep strings run as code (`(…) cvx exec`) are read inside one another.
pub const MAX_POSTSCRIPT_STRING_NESTING: usize = 8;

/// Whether `head`, the first window of a longer file, starts a PostScript program that
/// runs on past it (`%!` at the start, a DOS EPS section ending past the window, or
/// PostScript at the start of any file that runs to the window's end with no error to
/// stop Ghostscript) with nothing found in the window: the program is read from its
/// start only, so the rest is not followed, which the caller says.
pub(crate) fn program_reads_past(head: &[u8]) -> bool {
    if find_postscript_action(head).is_some() {
        return false;
    }
    if head.starts_with(b"%!") || head.starts_with(b"\x04%!") {
        return true;
    }
    let word = |at: usize| {
        head.get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64)
    };
    if head.starts_with(&DOS_EPS_MAGIC) {
        return word(4)
            .zip(word(8))
            .is_some_and(|(start, len)| start + len > head.len() as u64);
    }
    prefix_runs_to_end(head)
}

/// One token of a program: where it starts and what it is.
enum Token {
    /// A string's bytes, decoded (`(…)` with its escapes, `<…>` in hex, `<~…~>` in
    /// ASCII85).
    Text(Vec<u8>),
    /// An executable name (or an immediately evaluated one, `//file`, which the scanner
    /// replaces by the operator it names, and which then runs).
    Name(Vec<u8>),
    /// A literal name (`/file`): what `load`, `get` and `cvx exec` run by name.
    Literal(Vec<u8>),
    /// Anything else (a number, a bracket).
    Other,
    /// A byte from 128 to 159 where a token starts: a binary token ([`binary`]), which
    /// [`Tokens`] decodes.
    Binary,
    /// A limit reached while decoding (the detail of the warning).
    Lost(String),
}

/// Bytes of `eexec` sections decrypted per file (each section and the ones inside it);
/// past it the rest is a warning, not read.
pub const MAX_POSTSCRIPT_EEXEC_BYTES: usize = 16 << 20;

/// What the readings of one file share: the work spent on binary tokens and on `eexec`
/// sections, bounded for the whole file whatever the nesting.
#[derive(Default)]
struct Shared {
    binary: std::cell::Cell<usize>,
    eexec: std::cell::Cell<usize>,
    /// Readings of the file on from a place a section may close it, as well as from
    /// where it does ([`MAX_POSTSCRIPT_REREADS`]).
    rereads: std::cell::Cell<usize>,
    /// The file's deadline: every token read asks it.
    clock: Clock,
}

/// Sections per file that may close their file before the place they do, whose rest of
/// the file is read a second time from there (the first reading goes on after the place
/// they do: review s18-r10, ciphertext read as plain opened a hex string that hid the
/// cleartext pipe gs -dNOSAFER ran). Past it, a warning.
pub const MAX_POSTSCRIPT_REREADS: usize = 16;

/// The tokens of a program as Ghostscript's scanner reads them: text tokens, and binary
/// tokens decoded into the tokens they stand for. Each comes with its start and the
/// text the model steps on.
struct Tokens<'p> {
    program: &'p [u8],
    i: usize,
    queue: std::collections::VecDeque<(usize, Token, std::borrow::Cow<'p, [u8]>)>,
    shared: &'p Shared,
    /// Whether a binary token Ghostscript rejects ends the reading: at the start of a
    /// file that is no declared program, where gs stops at its first error; in a program,
    /// such bytes are data the program reads and are stepped over.
    stop_on_error: bool,
}

impl<'p> Tokens<'p> {
    fn new(program: &'p [u8], shared: &'p Shared, stop_on_error: bool) -> Tokens<'p> {
        Tokens {
            program,
            i: 0,
            queue: std::collections::VecDeque::new(),
            shared,
            stop_on_error,
        }
    }
}

impl<'p> Iterator for Tokens<'p> {
    type Item = (usize, Token, std::borrow::Cow<'p, [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.shared.clock.expired() {
            let detail = format!(
                "was read up to here when {}: the rest of it was not inspected",
                self.shared.clock.reached()
            );
            return Some((
                self.i,
                Token::Lost(detail),
                std::borrow::Cow::Borrowed(&b""[..]),
            ));
        }
        if let Some(item) = self.queue.pop_front() {
            return Some(item);
        }
        let (at, token, next) = next_token(self.program, self.i)?;
        self.i = next;
        if !matches!(token, Token::Binary) {
            return Some((
                at,
                token,
                std::borrow::Cow::Borrowed(&self.program[at..next]),
            ));
        }
        // Ghostscript stops on a binary token it cannot read (a syntax error) when it
        // scans it as a token; but a program reads bytes of its own file as data
        // (`currentfile … readstring`, image data) and runs what follows, so such a
        // byte is stepped over, not the end of the reading (review s17-r10).
        let Some((decoded, next)) = binary::decode(self.program, at, &self.shared.binary) else {
            if self.stop_on_error {
                return None;
            }
            self.i = at + 1;
            return Some((at, Token::Other, std::borrow::Cow::Borrowed(&b""[..])));
        };
        self.i = next.max(at + 1);
        self.queue.extend(
            decoded
                .into_iter()
                .map(|(token, raw)| (at, token, std::borrow::Cow::Owned(raw))),
        );
        self.queue
            .pop_front()
            .or_else(|| Some((at, Token::Other, std::borrow::Cow::Borrowed(&b""[..]))))
    }
}

/// Whether the file's first bytes, read as Ghostscript reads any file it is handed, run
/// to the end of `head` without a name Ghostscript would stop on, having run at least one
/// operator.
fn prefix_runs_to_end(head: &[u8]) -> bool {
    let mut defined: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut ran = false;
    let mut i = 0usize;
    while let Some((_, token, next)) = next_token(head, i) {
        i = next;
        match token {
            Token::Literal(name) => {
                defined.insert(name);
            }
            Token::Name(name) => {
                if !defined_at_start(&name) && !defined.contains(&name) {
                    return false;
                }
                ran = true;
            }
            _ => {}
        }
    }
    ran
}

/// The first file or command action of `program`, and what it does. Every token is read,
/// inside procedures too (a procedure runs when it is called), in one pass. A `prefix`
/// (a file that does not declare itself PostScript) is read as Ghostscript runs it: up
/// to the first name it defines neither at start-up nor by a literal name of the program
/// (`DICM` after a DICOM preamble), where it stops on `undefined`; and reading the file
/// itself or taking over error handling there is an action (it lets the program run on
/// past that point). A string run as code (`(…) cvx exec`, `<hex> cvx`) is read as a
/// program of its own, [`MAX_POSTSCRIPT_STRING_NESTING`] deep (deeper is reported).
fn scan(program: &[u8], prefix: bool, depth: usize, shared: &Shared) -> Option<(usize, String)> {
    let mut recent: [Option<(usize, Token)>; 2] = [None, None];
    let mut defined: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut model = Model::default();
    let shown = |t: &[u8]| pacsguard_events::escape_bytes(&t[..t.len().min(60)]);
    let mut tokens = Tokens::new(program, shared, prefix);
    while let Some((at, token, raw)) = tokens.next() {
        if let Token::Lost(detail) = &token {
            return Some((at, format!("{LOST}{detail}")));
        }
        if let Token::Name(name) = &token
            && name == b"eexec"
            && model.deferred == 0
        {
            // Review s17-r10: only `currentfile eexec` decrypts the bytes after it; on a
            // string it decrypts the string, and written in a procedure it runs when the
            // procedure is called (below), so the bytes after it are read as they are.
            match &recent[0] {
                Some((_, Token::Name(operand))) if operand == b"currentfile" => {
                    let (found, resume) = eexec_section(program, tokens.i, depth, shared);
                    if let Some(found) = found {
                        return Some((at, found));
                    }
                    // Read on where Ghostscript does: after the section closed its file.
                    tokens.i = resume.max(tokens.i);
                    tokens.queue.clear();
                    continue;
                }
                Some((_, Token::Text(text))) => {
                    let text = text.clone();
                    let (found, _) = eexec_section(&text, 0, depth, shared);
                    if let Some(found) = found {
                        return Some((at, found));
                    }
                }
                _ => {
                    // A file not known (`cf eexec`): what it would decrypt is read, and
                    // the bytes after as they are.
                    if let (Some(found), _) = eexec_section(program, tokens.i, depth, shared) {
                        return Some((at, found));
                    }
                }
            }
        }
        if let Token::Text(text) = &token
            && text.starts_with(b"%pipe%")
        {
            return Some((
                at,
                format!("opens a pipe to a shell command (\"{}\")", shown(text)),
            ));
        }
        if let Token::Literal(name) = &token {
            if FILE_OPERATORS.contains(&name.as_slice()) {
                return Some((
                    at,
                    format!(
                        "names the file operator `/{}` to run it by name (`/file load exec`, `systemdict /file get exec`)",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            if name == b"OutputFile" {
                return Some((
                    at,
                    "sets the device's output file (`<< /OutputFile … >> setpagedevice`: a file it writes, or a `%pipe%` command it runs, perhaps built at run time)".to_owned(),
                ));
            }
            if prefix && TAKE_OVER_NAMES.contains(&name.as_slice()) {
                return Some((at, take_over(name)));
            }
            defined.insert(name.clone());
        }
        if let Token::Name(name) = &token {
            if prefix && !defined_at_start(name) && !defined.contains(name) {
                // Ghostscript stops here on `undefined`.
                return None;
            }
            if prefix && TAKE_OVER_NAMES.contains(&name.as_slice()) {
                return Some((at, take_over(name)));
            }
            if name == b"cvn"
                && let Some((_, Token::Text(text))) = &recent[0]
                && FILE_OPERATORS.contains(&text.as_slice())
            {
                return Some((
                    at,
                    format!(
                        "makes the name of the file operator `{}` from a string to run it",
                        String::from_utf8_lossy(text)
                    ),
                ));
            }
            // Code or a name the program builds at run time and then runs (issue 10,
            // session 15; gs -dNOSAFER ran each): an operator's name made with `cvn`
            // from a string the program changed or computed (`(xile) dup 0 102 put cvn
            // cvx exec` runs `file`), or code decoded by a filter and run
            // (`currentfile /ASCIIHexDecode filter cvx exec`). Which operator runs is
            // known only then, so running it is the alert (SECURITY.md).
            if matches!(name.as_slice(), b"cvx" | b"load")
                && let Some((_, Token::Name(previous))) = &recent[0]
                && previous == b"cvn"
                && !matches!(&recent[1], Some((_, Token::Text(_))))
            {
                return Some((
                    at,
                    format!(
                        "makes a name at run time from a string it builds (`cvn {}`) and runs what it names: which operator a static reading cannot tell",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            if name == b"cvx"
                && let Some((_, Token::Name(previous))) = &recent[0]
                && previous == b"filter"
            {
                return Some((
                    at,
                    "runs code decoded by a filter at run time (`filter cvx exec`, from the file itself with `currentfile`): what it runs a static reading cannot tell".to_owned(),
                ));
            }
            if name == b"cvx"
                && let Some((_, Token::Text(text))) = &recent[0]
            {
                // A string run as code: its tokens are a program too.
                if depth >= MAX_POSTSCRIPT_STRING_NESTING {
                    return Some((
                        at,
                        format!(
                            "runs strings as code nested more than {MAX_POSTSCRIPT_STRING_NESTING} deep (MAX_POSTSCRIPT_STRING_NESTING): not followed further"
                        ),
                    ));
                }
                if let Some((_, how)) = scan(text, false, depth + 1, shared) {
                    return Some((
                        at,
                        match how.strip_prefix(LOST) {
                            Some(lost) => format!("{LOST}runs a string as code that {lost}"),
                            None => format!("runs a string as code that {how}"),
                        },
                    ));
                }
            }
            // At the start of a file that is no declared program, an operator with no
            // operand before it stops Ghostscript (`run 2 of 3`: a stack underflow).
            let operand_given = !prefix
                || match &recent[0] {
                    Some((_, Token::Text(_) | Token::Literal(_) | Token::Other)) => true,
                    Some((_, Token::Name(n))) => defined.contains(n),
                    Some((_, Token::Binary | Token::Lost(_))) | None => false,
                };
            if FILE_OPERATORS.contains(&name.as_slice()) && operand_given {
                // `file`: `(name) (access) file`; `run`: `(name) run`: the name it opens.
                let operand = match name.as_slice() {
                    b"file" => &recent[1],
                    b"run" => &recent[0],
                    _ => &None,
                };
                let named = match operand {
                    Some((_, Token::Text(text))) => Some(text.as_slice()),
                    _ => None,
                };
                let own = named.is_some_and(|n| OWN_STREAMS.contains(&n));
                let pipe = named.is_some_and(|n| n.starts_with(b"|"));
                if !own {
                    let op = String::from_utf8_lossy(name);
                    let how = match named {
                        Some(n) if pipe => format!(
                            "opens a pipe to a shell command with `{op}` (\"{}\")",
                            shown(n)
                        ),
                        Some(n) => format!("uses the file operator `{op}` on \"{}\"", shown(n)),
                        None => format!("uses the file operator `{op}`"),
                    };
                    return Some((at, how));
                }
            }
        }
        if let Token::Name(name) = &token
            && name == b"cvx"
            && let Some((_, Token::Text(text))) = &recent[0]
        {
            model.text_runs = Some(runs_in(text));
        }
        if let Some(how) = model.step(&token, &raw) {
            return Some((at, how));
        }
        if std::mem::take(&mut model.eexec_called) {
            // A procedure holding `eexec` (or `eexec` fetched with `load` or `get`) ran:
            // it decrypts the bytes after the call (review s17-r10).
            let (found, resume) = eexec_section(program, tokens.i, depth, shared);
            if let Some(found) = found {
                return Some((at, found));
            }
            // Read on after the section where it closes its file; one that does not (the
            // procedure may not have run) hides nothing after it.
            if resume < program.len() {
                tokens.i = resume.max(tokens.i);
                tokens.queue.clear();
            }
        }
        recent = [Some((at, token)), recent[0].take()];
    }
    None
}

/// What the `eexec` section after `program[from..]` runs, decrypted ([`binary::eexec`])
/// and read as a program of its own (Ghostscript runs it, then reads on in the file
/// after `currentfile closefile`; issue 10, session 17: a pipe in an encrypted section
/// ran under gs -dNOSAFER). Sections inside sections are read
/// [`MAX_POSTSCRIPT_STRING_NESTING`] deep, and [`MAX_POSTSCRIPT_EEXEC_BYTES`] in all.
fn eexec_section(
    program: &[u8],
    from: usize,
    depth: usize,
    shared: &Shared,
) -> (Option<String>, usize) {
    if from >= program.len() {
        return (None, from);
    }
    if depth >= MAX_POSTSCRIPT_STRING_NESTING {
        return (
            Some(format!(
                "{LOST}runs `eexec` sections nested more than {MAX_POSTSCRIPT_STRING_NESTING} deep (MAX_POSTSCRIPT_STRING_NESTING): not followed further"
            )),
            from,
        );
    }
    let left = MAX_POSTSCRIPT_EEXEC_BYTES.saturating_sub(shared.eexec.get());
    let section = binary::eexec(program, from, left, &shared.clock);
    shared.eexec.set(shared.eexec.get() + section.read);
    let cut = section.read >= left && section.end() < program.len();
    // The section runs to where it closes its file; the rest of the plaintext is what
    // the bytes after would decrypt to, and is no code Ghostscript runs; the data its
    // `RD` reads is no code either (blanked).
    let closes = section.closes.end;
    let plain = section.closes.code(&section.plain);
    // The scanner takes the blank that ends the token which closes the file (a CR LF
    // as one): Ghostscript reads on after it. Read as the file's next byte, its
    // ciphertext could open a string that hides what follows (review s18-r10: gs
    // -dNOSAFER ran the pipe after `/x {currentfile closefile} bind def x`, clean).
    let past_blank = |n: usize| match section.plain.get(n..) {
        Some([b'\r', b'\n', ..]) => n + 2,
        Some([b, ..]) if is_space(*b) => n + 1,
        _ => n,
    };
    let resume = closes.map_or(section.end(), |n| {
        section.end_of_plain(program, past_blank(n))
    });
    // Where the section may close its file in another way (`/closefile load exec`), the
    // file is read on from there as well: what follows is ciphertext if it does not,
    // code Ghostscript runs if it does.
    // If it does not close there, Ghostscript reads on after the place it does: the file
    // is read on from there, and the rest read a second time from the possible place
    // (ciphertext read as plain there may open a string the first reading would not
    // have).
    let mut reread = None;
    let resume = match section.closes.may_end {
        Some(n) if closes.is_none() => section.end_of_plain(program, past_blank(n)),
        Some(n) if closes.is_some_and(|end| n < end) => {
            let from = section.end_of_plain(program, past_blank(n));
            if shared.rereads.get() >= MAX_POSTSCRIPT_REREADS {
                reread = Some(format!(
                    "{LOST}has more than {MAX_POSTSCRIPT_REREADS} encrypted sections (`eexec`) that may close their file before they do (MAX_POSTSCRIPT_REREADS): what follows such a place was not read"
                ));
            } else if from < program.len() {
                shared.rereads.set(shared.rereads.get() + 1);
                reread = scan(&program[from..], false, depth + 1, shared).map(|(_, how)| how);
            }
            resume
        }
        _ => resume,
    };
    let found = scan(&plain, false, depth + 1, shared)
        .map(|(_, how)| match how.strip_prefix(LOST) {
            Some(lost) => format!("{LOST}runs an encrypted section (`eexec`) that {lost}"),
            None => {
                format!("runs an encrypted section (`eexec`, Type 1 font encryption) that {how}")
            }
        })
        .or(reread);
    if found.is_none() && cut && closes.is_none() {
        return (
            Some(format!(
                "{LOST}runs encrypted sections (`eexec`) of more than {MAX_POSTSCRIPT_EEXEC_BYTES} bytes (MAX_POSTSCRIPT_EEXEC_BYTES): the rest was not decrypted"
            )),
            resume,
        );
    }
    (found, resume)
}

/// What [`scan`] returns before the detail of a limit reached (a warning, not an alert).
const LOST: &str = "\u{0}lost:";

/// Operand stack slots, and names defined with a string or built value, that the model of
/// [`scan`] keeps: past either, the oldest is dropped, and dropping one that holds a name,
/// string or code built at run time is a warning (not followed further).
pub const MAX_POSTSCRIPT_STACK_MODELLED: usize = 256;

/// A value on the operand stack as the model of [`scan`] knows it.
#[derive(Clone)]
enum Slot {
    Unknown,
    /// `[`, `<<` or `{`: where `]`, `>>` or `}` take their values back to.
    Mark,
    Number(i64),
    Literal(Vec<u8>),
    /// A string, and whether the program changed it (`put`, `putinterval`) or made it at
    /// run time (`string`): shared by its copies (`dup`, a name it is defined as).
    Text(std::rc::Rc<std::cell::Cell<bool>>),
    /// A name made by `cvn` from a string not written as such in the program.
    BuiltName,
    /// A file decoded by `filter`.
    Filtered,
    /// A procedure (`{…}`), and whether its body can make a value into code
    /// ([`MAKES_CODE`]: `cvx`, `token`) or look a name up ([`LOOKS_UP`]: `load`, `get`,
    /// `where`): what running it with a built value on the stack may do with that value;
    /// and the names its body calls that were no procedure of the program when it was
    /// written, resolved when it runs (a procedure calling one defined after it).
    Proc(u8, Calls),
}

/// The names a procedure body calls that the program had not defined as procedures when
/// the body was written (names Ghostscript defines at start-up left out), at most
/// [`MAX_POSTSCRIPT_PROC_CALLS`] distinct ones; `overflow` when the body named more.
#[derive(Clone, Default)]
struct Calls(std::rc::Rc<CallNames>);

#[derive(Default)]
struct CallNames {
    names: Vec<Vec<u8>>,
    overflow: bool,
}

/// Distinct names a procedure body calls that are kept to be resolved when it runs
/// (review s16-r10: `/p { q } def /q { cvx exec } def … cvn p` ran a pipe under gs
/// -dNOSAFER); a body naming more is a warning when it runs with a built value at hand.
pub const MAX_POSTSCRIPT_PROC_CALLS: usize = 256;

/// Procedures looked up, per file, while resolving the names procedures call when they
/// run with a built value at hand (each resolution visits each defined procedure once);
/// past it a call is a warning, not followed further.
pub const MAX_POSTSCRIPT_CALL_RESOLUTIONS: usize = 1 << 20;

/// A procedure body with `cvx` or `token`: it can run a string or a file it is handed.
const MAKES_CODE: u8 = 1;
/// A procedure body with `load`, `get` or `where`: it can run a name it is handed.
const LOOKS_UP: u8 = 2;
/// A procedure body with `eexec`: when it runs it decrypts the file after the call
/// (review s17-r10: `/e { currentfile eexec } def e <section>` ran a pipe).
const DECRYPTS: u8 = 4;

impl Slot {
    /// Which procedures can run the built value the slot holds ([`MAKES_CODE`],
    /// [`LOOKS_UP`]): a built name either, a string or a file only by `cvx` or `token`
    /// (a buffer made with `string` handed to a procedure that uses `get` is no code).
    fn run_by(&self) -> u8 {
        match self {
            Slot::BuiltName => MAKES_CODE | LOOKS_UP,
            _ if self.built().is_some() => MAKES_CODE,
            _ => 0,
        }
    }

    /// What built value the slot holds, if any.
    fn built(&self) -> Option<&'static str> {
        match self {
            Slot::BuiltName => Some("a name it makes at run time from a string it builds (`cvn`)"),
            Slot::Filtered => {
                Some("code decoded by a filter (`filter`, from the file itself with `currentfile`)")
            }
            Slot::Text(changed) if changed.get() => {
                Some("a string it changes or makes at run time (`put`, `putinterval`, `string`)")
            }
            _ => None,
        }
    }
}

/// A small model of the operand stack and of the names a program defines, so that a
/// built name or filtered code is followed to where it is run through `pop`, `dup`,
/// `exch`, `index`, `copy`, `roll`, `def` and `load` of a name, and the marks of `[`,
/// `<<` and `{` (review s15-r10: `cvn 0 pop cvx exec`, `cvn /op exch def op load exec`,
/// `(xile) dup 0 102 put cvx exec`, `filter /f exch def f cvx exec` ran under gs
/// -dNOSAFER). Any other operator empties the modelled stack (its values unknown, no
/// alert): what is run is judged only when the value reaches it through modelled
/// operators or a defined name.
#[derive(Default)]
struct Model {
    stack: std::collections::VecDeque<Slot>,
    defined: std::collections::HashMap<Vec<u8>, Slot>,
    /// The order names were defined in, oldest first, to drop the oldest.
    order: std::collections::VecDeque<Vec<u8>>,
    /// Whether the token before was the `>` that closes a dictionary.
    angle: bool,
    /// A built value dropped past [`MAX_POSTSCRIPT_STACK_MODELLED`]: a later `cvx` or
    /// `load` of a value not known is then a warning (it may be that one).
    lost: Option<String>,
    /// How deep inside a procedure's braces the scan is, and whether that body can run
    /// a value (review s16-r10: a procedure's body runs when it is called, not where it
    /// is written; modelled in place, `{ foo }` emptied the stack and `{ exch }` moved a
    /// built value out of reach).
    deferred: usize,
    deferred_runs: u8,
    deferred_calls: CallNames,
    /// Procedures looked up resolving calls ([`MAX_POSTSCRIPT_CALL_RESOLUTIONS`]).
    resolutions: usize,
    /// A built value that left the model other than by `pop` (an operator not modelled
    /// took it, or an array, dictionary or procedure holds it): a later `cvx` or `token`
    /// of a value not known, or a procedure that can run a value, may run it (review
    /// s16-r10: `cvn 1 setlinewidth cvx exec`, `[ exch ] aload pop cvx exec` ran).
    hidden: Option<(&'static str, u8)>,
    /// What the procedures the program defined can run, together ([`MAKES_CODE`],
    /// [`LOOKS_UP`]).
    defined_runs: u8,
    /// What the string just before can run once made a procedure ([`runs_in`]), set by
    /// [`scan`] for the `cvx` after it.
    text_runs: Option<u8>,
    /// A procedure holding `eexec` ([`DECRYPTS`]) just ran: [`scan`] decrypts what follows.
    eexec_called: bool,
}

/// Operators that take a known number of operands and leave a known number of results,
/// none of them built (drawing, arithmetic, dictionaries): the model pops and pushes
/// them as unknown values instead of emptying the stack, so that they do not walk a
/// built value around it (`filter 3 dict pop cvx`).
const KNOWN_ARITY: [(&[u8], usize, usize); 44] = [
    (b"dict", 1, 1),
    (b"array", 1, 1),
    (b"length", 1, 1),
    (b"add", 2, 1),
    (b"sub", 2, 1),
    (b"mul", 2, 1),
    (b"div", 2, 1),
    (b"idiv", 2, 1),
    (b"mod", 2, 1),
    (b"neg", 1, 1),
    (b"abs", 1, 1),
    (b"cvi", 1, 1),
    (b"cvr", 1, 1),
    (b"eq", 2, 1),
    (b"ne", 2, 1),
    (b"gt", 2, 1),
    (b"lt", 2, 1),
    (b"ge", 2, 1),
    (b"le", 2, 1),
    (b"not", 1, 1),
    (b"and", 2, 1),
    (b"or", 2, 1),
    (b"xor", 2, 1),
    (b"count", 0, 1),
    (b"get", 2, 1),
    (b"getinterval", 3, 1),
    (b"begin", 1, 0),
    (b"end", 0, 0),
    (b"moveto", 2, 0),
    (b"lineto", 2, 0),
    (b"rmoveto", 2, 0),
    (b"rlineto", 2, 0),
    (b"newpath", 0, 0),
    (b"stroke", 0, 0),
    (b"fill", 0, 0),
    (b"gsave", 0, 0),
    (b"grestore", 0, 0),
    (b"setgray", 1, 0),
    (b"translate", 2, 0),
    (b"scale", 2, 0),
    (b"show", 1, 0),
    (b"findfont", 1, 1),
    (b"scalefont", 2, 1),
    (b"setfont", 1, 0),
];

impl Model {
    fn pop(&mut self) -> Slot {
        self.stack.pop_back().unwrap_or(Slot::Unknown)
    }

    /// Pushes a slot; past [`MAX_POSTSCRIPT_STACK_MODELLED`] the bottom one is dropped.
    fn push(&mut self, slot: Slot) -> Option<String> {
        self.stack.push_back(slot);
        if self.stack.len() > MAX_POSTSCRIPT_STACK_MODELLED {
            let dropped = self.stack.pop_front()?;
            if let Some(what) = dropped.built() {
                self.lost = Some(format!(
                    "{LOST}keeps {what} deeper than {MAX_POSTSCRIPT_STACK_MODELLED} operand stack entries (MAX_POSTSCRIPT_STACK_MODELLED) and then runs something: whether it is that was not followed"
                ));
            }
        }
        None
    }

    fn define(&mut self, key: Vec<u8>, value: Slot) -> Option<String> {
        if let Slot::Proc(runs, _) = value {
            self.defined_runs |= runs;
        }
        let keep = match &value {
            Slot::Text(_) => true,
            Slot::Proc(runs, calls) => *runs != 0 || !calls.0.names.is_empty() || calls.0.overflow,
            _ => value.built().is_some(),
        };
        if !keep {
            self.defined.remove(&key);
            return None;
        }
        if self.defined.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            if self.order.len() > 2 * MAX_POSTSCRIPT_STACK_MODELLED {
                let defined = &self.defined;
                self.order.retain(|k| defined.contains_key(k));
            }
        }
        while self.defined.len() > MAX_POSTSCRIPT_STACK_MODELLED {
            let oldest = self.order.pop_front()?;
            if let Some(what) = self.defined.remove(&oldest).as_ref().and_then(Slot::built) {
                self.lost = Some(format!(
                    "{LOST}keeps {what} under more than {MAX_POSTSCRIPT_STACK_MODELLED} defined names (MAX_POSTSCRIPT_STACK_MODELLED) and then runs something: whether it is that was not followed"
                ));
            }
        }
        None
    }

    /// Runs one token on the model: what it runs that was built at run time, if anything.
    fn step(&mut self, token: &Token, raw: &[u8]) -> Option<String> {
        let text_runs = self.text_runs.take();
        if self.deferred > 0 {
            match (token, raw) {
                (Token::Other, b"{") => self.deferred += 1,
                (Token::Other, b"}") => {
                    self.deferred -= 1;
                    if self.deferred == 0 {
                        let runs = std::mem::take(&mut self.deferred_runs);
                        let calls = std::mem::take(&mut self.deferred_calls);
                        return self.push(Slot::Proc(runs, Calls(std::rc::Rc::new(calls))));
                    }
                }
                (Token::Name(name), _) => {
                    self.deferred_runs |= runs_of(name);
                    // A procedure calling one that can run a value can too; one it calls
                    // that is defined later (or again) is resolved when it runs.
                    if let Some(Slot::Proc(runs, _)) = self.defined.get(name.as_slice()) {
                        self.deferred_runs |= runs;
                    }
                    // Standard operators too: the program may redefine one after this
                    // body (`/p { show } def /show { cvx exec } def … cvn p` ran a pipe
                    // under gs -dNOSAFER; review s17-r10).
                    let calls = &mut self.deferred_calls;
                    if !calls.names.contains(name) {
                        if calls.names.len() < MAX_POSTSCRIPT_PROC_CALLS {
                            calls.names.push(name.clone());
                        } else {
                            calls.overflow = true;
                        }
                    }
                }
                _ => {}
            }
            return None;
        }
        if raw != b">" {
            self.angle = false;
        }
        let runs = |what: &str, how: &str| {
            format!(
                "runs {what} ({how}) through the operand stack or a name it defines: which operator or code a static reading cannot tell"
            )
        };
        match token {
            Token::Text(_) => {
                return self.push(Slot::Text(std::rc::Rc::default()));
            }
            Token::Literal(name) => return self.push(Slot::Literal(name.clone())),
            Token::Other => {
                return match raw {
                    b"{" => {
                        self.deferred = 1;
                        None
                    }
                    b"[" | b"<<" => self.push(Slot::Mark),
                    // The scanner gives `>>` as two `>`: the second is no other close.
                    b">" if std::mem::take(&mut self.angle) => None,
                    b"]" | b">" | b"}" => {
                        self.angle = raw == b">";
                        let mut runs = 0u8;
                        loop {
                            let slot = self.pop();
                            if matches!(slot, Slot::Mark) {
                                break;
                            }
                            if let Slot::Proc(by, _) = slot {
                                runs |= by;
                            }
                            if let Some(what) = slot.built()
                                && self.hidden.is_none_or(|(_, by)| by < slot.run_by())
                            {
                                self.hidden = Some((what, slot.run_by()));
                            }
                            if self.stack.is_empty() {
                                break;
                            }
                        }
                        // An array of operators that can run a value is such a procedure
                        // once made executable.
                        self.push(if runs != 0 && raw == b"]" {
                            Slot::Proc(runs, Calls::default())
                        } else {
                            Slot::Unknown
                        })
                    }
                    _ => {
                        let number = std::str::from_utf8(raw).ok().and_then(|n| n.parse().ok());
                        self.push(number.map_or(Slot::Unknown, Slot::Number))
                    }
                };
            }
            Token::Name(_) => {}
            Token::Binary | Token::Lost(_) => return None,
        }
        let Token::Name(name) = token else {
            return None;
        };
        if let Some(value) = self.defined.get(name.as_slice()) {
            let value = value.clone();
            if let Slot::Proc(runs, calls) = value {
                // Calling the procedure: it runs, with the stack as it is; one that holds
                // `eexec`, or calls one defined since that does, decrypts what follows.
                // Past MAX_POSTSCRIPT_CALL_RESOLUTIONS whether it decrypts is not known:
                // said, never taken as "it does not".
                let decrypts_later = runs & DECRYPTS == 0
                    && self.defined_runs & DECRYPTS != 0
                    && match self.resolve(0, &calls) {
                        Ok(by) => by & DECRYPTS != 0,
                        Err(lost) => {
                            self.stack.clear();
                            return Some(lost);
                        }
                    };
                self.eexec_called = runs & DECRYPTS != 0 || decrypts_later;
                return self.call(runs, &calls);
            }
            return self.push(value);
        }
        let top = |model: &Model| model.stack.back().cloned().unwrap_or(Slot::Unknown);
        match name.as_slice() {
            b"pop" => {
                self.pop();
            }
            b"dup" => return self.push(top(self)),
            b"exch" => {
                let a = self.pop();
                let b = self.pop();
                self.push(a);
                return self.push(b);
            }
            b"index" => {
                let Slot::Number(n) = self.pop() else {
                    return self.unmodelled(0);
                };
                let len = self.stack.len();
                let slot = usize::try_from(n)
                    .ok()
                    .filter(|&n| n < len)
                    .map_or(Slot::Unknown, |n| self.stack[len - 1 - n].clone());
                return self.push(slot);
            }
            b"copy" => {
                let n = match self.pop() {
                    Slot::Number(n) => usize::try_from(n).ok().filter(|&n| n <= self.stack.len()),
                    _ => None,
                };
                let Some(n) = n else {
                    return self.unmodelled(0);
                };
                let len = self.stack.len();
                let copied: Vec<Slot> = self.stack.range(len - n..).cloned().collect();
                for slot in copied {
                    if let Some(lost) = self.push(slot) {
                        return Some(lost);
                    }
                }
            }
            b"roll" => {
                let j = self.pop();
                let n = self.pop();
                match (n, j) {
                    (Slot::Number(n), Slot::Number(j))
                        if usize::try_from(n).is_ok_and(|n| n > 0 && n <= self.stack.len()) =>
                    {
                        let n = usize::try_from(n).unwrap_or(0);
                        let len = self.stack.len();
                        let shift = usize::try_from(j.rem_euclid(n as i64)).unwrap_or(0);
                        self.stack.make_contiguous()[len - n..].rotate_right(shift);
                    }
                    _ => return self.unmodelled(0),
                }
            }
            b"def" => {
                let value = self.pop();
                if let Slot::Literal(key) = self.pop() {
                    return self.define(key, value);
                }
            }
            b"load" => match self.pop() {
                Slot::BuiltName => {
                    return Some(runs(
                        "a name it makes at run time from a string it builds",
                        "`cvn` … `load`",
                    ));
                }
                Slot::Literal(key) => {
                    // An operator that can run a value, fetched to be put in a procedure
                    // (`[ /cvx load /exec load ] cvx exec`), runs like one.
                    let value =
                        self.defined
                            .get(&key)
                            .cloned()
                            .unwrap_or_else(|| match runs_of(&key) {
                                0 => Slot::Unknown,
                                runs => Slot::Proc(runs, Calls::default()),
                            });
                    return self.push(value);
                }
                Slot::Unknown if self.lost.is_some() => return self.lost.take(),
                _ => return self.push(Slot::Unknown),
            },
            b"cvx" | b"token" | b"exec" => {
                let top = top(self);
                if name.as_slice() == b"exec"
                    && let Slot::Proc(runs, _) = &top
                    && runs & DECRYPTS != 0
                {
                    self.eexec_called = true;
                }
                if name.as_slice() == b"cvx"
                    && let Slot::Text(changed) = &top
                    && !changed.get()
                {
                    // A string made a procedure: what its tokens can run (`(cvx exec) cvx
                    // exec`, review s16-r10).
                    let runs = text_runs.unwrap_or(MAKES_CODE | LOOKS_UP);
                    self.pop();
                    return self.push(Slot::Proc(runs, Calls::default()));
                }
                if let Some(what) = top.built() {
                    if name.as_slice() == b"token" {
                        // The tokens of a built string or a filtered file are executable
                        // names: what `exec` then runs.
                        self.pop();
                        self.push(Slot::Unknown);
                        self.push(Slot::BuiltName);
                        return self.push(Slot::Unknown);
                    }
                    if name.as_slice() == b"cvx" || matches!(top, Slot::BuiltName) {
                        return Some(runs(
                            what,
                            &format!("… `{}`", String::from_utf8_lossy(name)),
                        ));
                    }
                }
                if matches!(top, Slot::Unknown) && self.lost.is_some() {
                    return self.lost.take();
                }
                if name.as_slice() != b"exec"
                    && matches!(top, Slot::Unknown)
                    && let Some((what, _)) = self.hidden
                {
                    return Some(hidden_lost(what, name));
                }
                if name.as_slice() == b"exec"
                    && matches!(top, Slot::Unknown)
                    && self
                        .stack
                        .iter()
                        .any(|s| s.run_by() & self.defined_runs != 0)
                {
                    // A procedure not known run with a built value on the stack, in a
                    // program that defines one that can run it (`currentdict /p get
                    // exec`, review s16-r10).
                    self.stack.clear();
                    return Some(format!(
                        "{LOST}runs a procedure it does not know with a value built at run time on the operand stack, and defines procedures that can run such a value: whether it is one of them was not followed"
                    ));
                }
                if name.as_slice() != b"cvx" {
                    return self.unmodelled(0);
                }
            }
            b"get"
                if let Slot::Literal(key) = top(self)
                    && runs_of(&key) == DECRYPTS
                    && !self.defined.contains_key(&key) =>
            {
                // `systemdict /eexec get`: the operator, to be run.
                self.pop();
                self.pop();
                return self.push(Slot::Proc(DECRYPTS, Calls::default()));
            }
            b"get"
                if let Slot::Literal(key) = top(self)
                    && let Some(value @ Slot::Proc(..)) = self.defined.get(&key).cloned() =>
            {
                self.pop();
                self.pop();
                return self.push(value);
            }
            b"get" | b"where" if matches!(top(self), Slot::BuiltName) => {
                return Some(runs(
                    "a name it makes at run time from a string it builds",
                    &format!("`cvn` … `{}`", String::from_utf8_lossy(name)),
                ));
            }
            b"bind" => {}
            b"systemdict" | b"userdict" | b"globaldict" | b"statusdict" | b"currentdict"
            | b"errordict" => return self.push(Slot::Unknown),
            b"cvn" => {
                let built = match self.pop() {
                    Slot::Text(changed) => changed.get(),
                    Slot::Literal(_) => false,
                    _ => true,
                };
                return self.push(if built {
                    Slot::BuiltName
                } else {
                    Slot::Unknown
                });
            }
            b"filter" => {
                self.pop();
                self.pop();
                return self.push(Slot::Filtered);
            }
            b"put" | b"putinterval" => {
                let value = self.pop();
                let key = self.pop();
                let into = self.pop();
                if let Slot::Text(changed) = &into {
                    changed.set(true);
                }
                // A built value put into an array or dictionary is held there, and a
                // procedure put under a name is defined (`userdict /p {cvx exec} put`;
                // review s16-r10: `dup /k 4 -1 roll put /k get cvx exec` ran).
                for slot in [&value, &key] {
                    if let Some(what) = slot.built()
                        && self.hidden.is_none_or(|(_, by)| by < slot.run_by())
                    {
                        self.hidden = Some((what, slot.run_by()));
                    }
                }
                if let (Slot::Literal(key), Slot::Proc(..)) = (key, &value) {
                    return self.define(key, value);
                }
            }
            b"string" => {
                self.pop();
                return self.push(Slot::Text(std::rc::Rc::new(std::cell::Cell::new(true))));
            }
            b"currentfile" => return self.push(Slot::Unknown),
            other => match KNOWN_ARITY.iter().find(|(name, _, _)| *name == other) {
                Some(&(_, pops, pushes)) => {
                    for _ in 0..pops {
                        self.pop();
                    }
                    for _ in 0..pushes {
                        if let Some(lost) = self.push(Slot::Unknown) {
                            return Some(lost);
                        }
                    }
                }
                None => return self.unmodelled(0),
            },
        }
        None
    }
}

/// What running the operator `name` can do with a built value ([`MAKES_CODE`],
/// [`LOOKS_UP`]).
fn runs_of(name: &[u8]) -> u8 {
    match name {
        b"cvx" | b"token" => MAKES_CODE,
        b"load" | b"get" | b"where" => LOOKS_UP,
        b"eexec" => DECRYPTS,
        _ => 0,
    }
}

/// What the names of `text`, run as a procedure, can do with a built value.
fn runs_in(text: &[u8]) -> u8 {
    let mut runs = 0u8;
    let mut i = 0usize;
    while let Some((_, token, next)) = next_token(text, i) {
        if let Token::Name(name) = token {
            runs |= runs_of(&name);
        }
        i = next;
    }
    runs
}

fn hidden_lost(what: &str, name: &[u8]) -> String {
    format!(
        "{LOST}keeps {what} where the model of its operand stack does not follow it (an operator not modelled, an array, dictionary or procedure) and then runs a value it does not know with `{}`: whether it is that was not followed",
        String::from_utf8_lossy(name)
    )
}

impl Model {
    /// An operator or procedure whose effect on the stack is not modelled: the stack is
    /// emptied, and a built value on it is hidden, not forgotten. A procedure that can
    /// run a value (`runs`, or one on the stack that `if`, `forall`, `exec` … may call),
    /// called while a built value is on the stack or hidden, may run it.
    fn unmodelled(&mut self, runs: u8) -> Option<String> {
        self.call(runs, &Calls::default())
    }

    /// Whether a value built at run time is at hand for a procedure to run: on the
    /// stack, or hidden.
    fn built_at_hand(&self) -> bool {
        self.hidden.is_some() || self.stack.iter().any(|slot| slot.built().is_some())
    }

    /// What a procedure that can run `runs` and calls `calls` can run, with the
    /// procedures the program has defined by now: the names are followed through the
    /// defined procedures, each once, within [`MAX_POSTSCRIPT_CALL_RESOLUTIONS`] per file
    /// (past it, or past [`MAX_POSTSCRIPT_PROC_CALLS`] names in a body, the warning).
    fn resolve(&mut self, runs: u8, calls: &Calls) -> Result<u8, String> {
        let mut runs = runs;
        let mut seen: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        let mut pending: Vec<&CallNames> = vec![calls.0.as_ref()];
        while let Some(names) = pending.pop() {
            if names.overflow {
                return Err(format!(
                    "{LOST}runs a procedure naming more than {MAX_POSTSCRIPT_PROC_CALLS} procedures it may define later (MAX_POSTSCRIPT_PROC_CALLS) with a value built at run time at hand: whether one of them runs it was not followed"
                ));
            }
            for name in &names.names {
                if !seen.insert(name.as_slice()) {
                    continue;
                }
                self.resolutions += 1;
                if self.resolutions > MAX_POSTSCRIPT_CALL_RESOLUTIONS {
                    return Err(format!(
                        "{LOST}calls procedures more than {MAX_POSTSCRIPT_CALL_RESOLUTIONS} times with a value built at run time at hand (MAX_POSTSCRIPT_CALL_RESOLUTIONS): what they run was not followed further"
                    ));
                }
                if let Some(Slot::Proc(by, inner)) = self.defined.get(name.as_slice()) {
                    runs |= by;
                    pending.push(inner.0.as_ref());
                }
            }
        }
        Ok(runs)
    }

    /// A procedure (or an operator not modelled, with `runs` of [`runs_of`]) called with
    /// the stack as it is: what it calls is resolved when a built value is at hand.
    fn call(&mut self, runs: u8, calls: &Calls) -> Option<String> {
        let mut runs = runs;
        if self.built_at_hand() {
            let on_stack: Vec<Calls> = self
                .stack
                .iter()
                .filter_map(|slot| match slot {
                    Slot::Proc(_, calls) => Some(calls.clone()),
                    _ => None,
                })
                .chain(std::iter::once(calls.clone()))
                .collect();
            for calls in &on_stack {
                match self.resolve(0, calls) {
                    Ok(by) => runs |= by,
                    Err(lost) => {
                        self.stack.clear();
                        return Some(lost);
                    }
                }
            }
        }
        let calls = self.stack.iter().fold(runs, |calls, slot| match slot {
            Slot::Proc(runs, _) => calls | runs,
            _ => calls,
        });
        // A procedure holding `eexec` handed to `if`, `ifelse`, a loop or an operator
        // not modelled may run there (review s17-r10: `true { currentfile eexec } if`
        // ran the section after it).
        if calls & DECRYPTS != 0 {
            self.eexec_called = true;
        }
        let built = self
            .stack
            .iter()
            .rev()
            .filter_map(|slot| slot.built().map(|what| (what, slot.run_by())))
            .max_by_key(|&(_, run_by)| run_by);
        self.stack.clear();
        if let Some((what, run_by)) = built
            && run_by & calls != 0
        {
            return Some(format!(
                "hands {what} to a procedure that makes values into code or looks names up (`cvx`, `token`, `load`, `get`, `where`): which operator or code a static reading cannot tell"
            ));
        }
        if let Some((what, run_by)) = self.hidden
            && run_by & calls != 0
        {
            return Some(hidden_lost(what, b"a procedure"));
        }
        if let Some(built) = built
            && self.hidden.is_none_or(|(_, run_by)| run_by < built.1)
        {
            self.hidden = Some(built);
        }
        None
    }
}

fn take_over(name: &[u8]) -> String {
    format!(
        "uses `{}` before the first error that would stop Ghostscript: it reads on in the file itself or turns errors off, so what runs after is not bounded by the file's first bytes",
        String::from_utf8_lossy(name)
    )
}

fn is_space(b: u8) -> bool {
    matches!(b, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// A byte that starts a binary token (PLRM 3.14.1), and ends a name or number before it
/// (gs -dNOSAFER ran `x<146 65>` as `x` then `file`).
fn is_binary_token(b: u8) -> bool {
    (128..=159).contains(&b)
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// The token at or after `i`: its start, the token, and where the next one may start.
fn next_token(p: &[u8], mut i: usize) -> Option<(usize, Token, usize)> {
    loop {
        while p.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if p.get(i) == Some(&b'%') {
            // A comment, to the line's end.
            while p
                .get(i)
                .is_some_and(|&b| !matches!(b, b'\n' | b'\r' | 0x0c))
            {
                i += 1;
            }
            continue;
        }
        break;
    }
    let at = i;
    let first = *p.get(i)?;
    match first {
        b'(' => {
            let (text, next) = literal_string(p, i + 1);
            Some((at, Token::Text(text), next))
        }
        b'<' if p.get(i + 1) == Some(&b'~') => {
            let close = memchr::memmem::find(&p[i..], b"~>").map_or(p.len(), |n| i + n);
            let text = ascii85(&p[i + 2..close.max(i + 2)]);
            Some((at, Token::Text(text), (close + 2).min(p.len())))
        }
        b'<' if p.get(i + 1) == Some(&b'<') => Some((at, Token::Other, i + 2)),
        b'<' => {
            let end = memchr::memchr(b'>', &p[i..]).map_or(p.len(), |n| i + n);
            let digits: Vec<u8> = p[i + 1..end]
                .iter()
                .filter(|b| b.is_ascii_hexdigit())
                .copied()
                .collect();
            let text = digits
                .chunks(2)
                .map(|pair| {
                    let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                    hex(pair[0]) * 16 + pair.get(1).map_or(0, |&b| hex(b))
                })
                .collect();
            Some((at, Token::Text(text), (end + 1).min(p.len())))
        }
        b'>' | b')' | b'[' | b']' | b'{' | b'}' => Some((at, Token::Other, i + 1)),
        128..=159 => Some((at, Token::Binary, i + 1)),
        _ => {
            // A name (literal after `/`, evaluated at once after `//`), or a number.
            let slashes = p[i..].iter().take(2).take_while(|&&b| b == b'/').count();
            let literal = slashes == 1;
            i += slashes;
            let start = i;
            while p
                .get(i)
                .is_some_and(|&b| !is_space(b) && !is_delimiter(b) && !is_binary_token(b))
            {
                i += 1;
            }
            let name = &p[start..i];
            let token = if name.is_empty() || (!literal && is_number(name)) {
                Token::Other
            } else if literal {
                Token::Literal(name.to_vec())
            } else {
                Token::Name(name.to_vec())
            };
            Some((at, token, i.max(at + 1)))
        }
    }
}

/// Whether `name` is a number (an integer, a real, a radix number): no name to look up.
fn is_number(name: &[u8]) -> bool {
    let digits = name
        .strip_prefix(b"-")
        .or(name.strip_prefix(b"+"))
        .unwrap_or(name);
    !digits.is_empty()
        && digits
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'#' | b'-' | b'+'))
        && (digits[0].is_ascii_digit() || digits[0] == b'.')
}

/// The bytes of an ASCII85 string (between `<~` and `~>`): groups of five digits from
/// `!` to `u`, `z` for four zero bytes, white space ignored, a short last group padded.
fn ascii85(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 5 * 4 + 4);
    let mut group = [0u32; 5];
    let mut n = 0usize;
    for &b in text {
        match b {
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = u32::from(b - b'!');
                n += 1;
                if n == 5 {
                    let value = group
                        .iter()
                        .fold(0u32, |v, &d| v.wrapping_mul(85).wrapping_add(d));
                    out.extend_from_slice(&value.to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    if n > 1 {
        for d in group.iter_mut().skip(n) {
            *d = 84;
        }
        let value = group
            .iter()
            .fold(0u32, |v, &d| v.wrapping_mul(85).wrapping_add(d));
        out.extend_from_slice(&value.to_be_bytes()[..n - 1]);
    }
    out
}

/// A `(…)` string from just after its `(`: its bytes (escapes decoded, parentheses
/// balanced) and where the next token may start. A string the program ends inside is
/// taken to the end.
fn literal_string(p: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    let mut depth = 1usize;
    while let Some(&b) = p.get(i) {
        i += 1;
        match b {
            b'(' => {
                depth += 1;
                text.push(b);
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
                text.push(b);
            }
            b'\\' => {
                let Some(&e) = p.get(i) else { break };
                i += 1;
                match e {
                    b'n' => text.push(b'\n'),
                    b'r' => text.push(b'\r'),
                    b't' => text.push(b'\t'),
                    b'b' => text.push(8),
                    b'f' => text.push(0x0c),
                    b'\n' => {}
                    b'\r' => {
                        if p.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'0'..=b'7' => {
                        let mut value = u32::from(e - b'0');
                        for _ in 0..2 {
                            match p.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        text.push((value & 0xff) as u8);
                    }
                    other => text.push(other),
                }
            }
            _ => text.push(b),
        }
    }
    (text, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `plain` encrypted as an `eexec` section (Type 1 font encryption, key 55665), its
    /// four lead bytes first.
    fn eexec_encrypted(plain: &[u8]) -> Vec<u8> {
        let mut r: u16 = 55665;
        b"abcd"
            .iter()
            .chain(plain)
            .map(|&p| {
                let c = p ^ (r >> 8) as u8;
                r = u16::from(c)
                    .wrapping_add(r)
                    .wrapping_mul(52845)
                    .wrapping_add(22719);
                c
            })
            .collect()
    }

    /// Issue 16, session 24: one `eexec` section (decrypted, and its end looked for, in
    /// one step) could not be stopped by the caller's deadline: a section of nearly
    /// MAX_POSTSCRIPT_EEXEC_BYTES of one-byte names, its `closefile` at the end, held a
    /// screening thread well past the gateway's `limits.screening_deadline`. It stops
    /// there now, and says so (a warning, not an alert).
    #[test]
    fn an_eexec_section_stops_at_the_callers_deadline() {
        let mut plain: Vec<u8> = b"x "
            .iter()
            .copied()
            .cycle()
            .take(MAX_POSTSCRIPT_EEXEC_BYTES - 64)
            .collect();
        plain.extend_from_slice(b"currentfile closefile\n");
        let mut program = b"%!PS\ncurrentfile eexec\n".to_vec();
        program.extend(eexec_encrypted(&plain));
        program.extend_from_slice(b"\nshowpage\n");
        let deadline = std::time::Duration::from_millis(200);
        let began = std::time::Instant::now();
        let clock =
            crate::Budget::until(began + deadline, "a test deadline (200 ms)".into()).clock();
        let action = find_postscript_action_until(&program, &clock).expect("stopped");
        let took = began.elapsed();
        assert_eq!(action.severity, Severity::Warning, "{action:?}");
        assert!(
            action
                .detail
                .contains("the inspection took longer than a test deadline (200 ms)"),
            "{action:?}"
        );
        // Generous (a debug build on a shared machine): the step itself is what is
        // asserted, not its speed.
        assert!(
            took < deadline + std::time::Duration::from_millis(800),
            "stopped after {took:?}"
        );
    }

    fn eps(body: &str) -> Vec<u8> {
        format!("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{body}\nshowpage\n%%EOF\n")
            .into_bytes()
    }

    #[test]
    fn file_operators_and_pipes_are_found_however_the_name_is_written() {
        for body in [
            "(%pipe%touch RAN) (w) file",
            "(|touch RAN) (w) file",
            "<< /OutputFile (%pipe%touch RAN) >> setpagedevice",
            "<2570697065257475636820524\n14e> (w) file",
            "(\\045pipe\\045touch RAN) (r) file",
            "(/etc/passwd) deletefile",
            "(a) (b) renamefile",
            "(/tmp/x.ps) run",
            "/f { (x) (r) file } def",
            "name (r) file",
        ] {
            let found = find_postscript_action(&eps(body));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{body}: {found:?}"
            );
        }
        for body in [
            "0 0 moveto (Findings: run file|deletefile) show",
            "% (%pipe%x) (w) file\n/Helvetica findfont",
            "currentfile 10 string readhexstring",
            "(%stdin) (r) file",
            "(|) show",
        ] {
            assert_eq!(find_postscript_action(&eps(body)), None, "{body}");
        }
        // Not a PostScript program for those readers: no `%!` at the start.
        assert_eq!(find_postscript_action(b"x\n(|sh) (w) file\n"), None);
    }

    #[test]
    fn a_dos_eps_header_is_followed_to_its_postscript_section() {
        let section = b"%!PS-Adobe-3.0 EPSF-3.0\n(%pipe%id) (r) file\n";
        let mut file = DOS_EPS_MAGIC.to_vec();
        file.extend_from_slice(&64u32.to_le_bytes());
        file.extend_from_slice(&(section.len() as u32).to_le_bytes());
        file.resize(64, 0);
        file.extend_from_slice(section);
        let found = find_postscript_action(&file).expect("found");
        assert!(found.offset >= 64, "{found:?}");
        // A section beyond the file, or cut before the action, finds nothing.
        let mut short = file.clone();
        short[8..12].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(find_postscript_action(&short), None);
        let mut beyond = file.clone();
        beyond[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert_eq!(find_postscript_action(&beyond), None);
    }

    /// Review s14-r01: each of these ran a pipe under `gs -dNOSAFER` and was clean: the
    /// pipe's name in ASCII85, a file operator run by name (`/file cvx exec`, `//file`,
    /// `(file) cvn`), the output file set with the pipe built at run time, a string run
    /// as code, and `^D%!`, which ImageMagick hands to Ghostscript as PostScript.
    #[test]
    fn names_strings_and_pipes_built_at_run_time_are_found() {
        let built = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put";
        for body in [
            "<< /OutputFile <~-#dR;AL2G:F^o)-;F+%~> >> setpagedevice".to_owned(),
            format!("{built} s (w) /file cvx exec pop"),
            format!("{built} s (w) //file pop"),
            format!("{built} s (w) systemdict /file get exec pop"),
            format!("{built} s (w) (file) cvn cvx exec pop"),
            format!("{built} << /OutputFile s >> setpagedevice"),
            "<2825706970652520746f7563682052414e29202877292066696c6520706f70> cvx exec".to_owned(),
            "(\\(x\\) deletefile) cvx exec".to_owned(),
        ] {
            let found = find_postscript_action(&eps(&body));
            assert!(found.is_some(), "{body}");
        }
        let mut ctrl_d = b"\x04".to_vec();
        ctrl_d.extend_from_slice(&eps("(%pipe%touch RAN) (w) file"));
        assert!(find_postscript_action(&ctrl_d).is_some());
        // The ASCII85 above is `%pipe%touch RAN`.
        assert_eq!(ascii85(b"-#dR;AL2G:F^o)-;F+%"), b"%pipe%touch RAN");
        // Strings run as code inside strings, to the nesting limit and past it.
        let mut program = "(x) deletefile".to_owned();
        for _ in 0..MAX_POSTSCRIPT_STRING_NESTING {
            let hex: String = program.bytes().map(|b| format!("{b:02x}")).collect();
            program = format!("<{hex}> cvx exec");
        }
        let found = find_postscript_action(&eps(&program)).expect("nested");
        assert!(found.detail.contains("deletefile"), "{found:?}");
        let hex: String = program.bytes().map(|b| format!("{b:02x}")).collect();
        let deeper = find_postscript_action(&eps(&format!("<{hex}> cvx exec"))).expect("deeper");
        assert!(
            deeper.detail.contains("MAX_POSTSCRIPT_STRING_NESTING"),
            "{deeper:?}"
        );
        // Drawing, and images read from the file, are no action.
        for body in [
            "/Helvetica findfont 12 scalefont setfont (file run) show",
            "currentfile /ASCII85Decode filter 10 string readstring pop pop\nz!!~>",
            "<~87cURD]i,\"Ebo80~> show",
        ] {
            assert_eq!(find_postscript_action(&eps(body)), None, "{body}");
        }
    }

    /// Review s14-r01: Ghostscript runs any file it is handed from its first byte, `%!`
    /// or not, and stops at its first error (`DICM` after a DICOM preamble is an
    /// undefined name); a DICOM preamble of PostScript ran a pipe and the file was clean.
    /// What runs before that error is read; a program that reads on in the file or turns
    /// errors off is itself the finding.
    #[test]
    fn postscript_at_the_start_of_any_file_is_read_to_its_first_error() {
        let dicom = |preamble: &[u8], element: &[u8]| {
            let mut file = preamble.to_vec();
            file.resize(128, b' ');
            file.extend_from_slice(b"DICM\x02\0\x10\0UI\x14\x001.2.840.10008.1.2.1\0");
            file.extend_from_slice(b"\x10\0\x10\0PN\x08\0Doe^John\x08\0\x3e\x10LO");
            file.extend_from_slice(&(element.len() as u16).to_le_bytes());
            file.extend_from_slice(element);
            file
        };
        let pipe = b"(%pipe%touch RAN) (w) file pop";
        for preamble in [
            &pipe[..],
            b"\0\0(\\045pipe\\045touch RAN) (w) file pop",
            b"/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) /file cvx exec pop",
            b"errordict /undefined {pop} put",
            b"/DICM {currentfile 200 string readstring pop pop} def",
            b"(/tmp/x) deletefile",
        ] {
            let file = dicom(preamble, b"Head ");
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(preamble)
            );
        }
        // Ghostscript stops at `DICM`, `II*` or vendor text before the element's pipe.
        for preamble in [
            &b""[..],
            b"II*\0\x08\0\0\0",
            b"Philips Medical Systems",
            b"file run copy",
            b"run 2 of 3",
        ] {
            let file = dicom(preamble, pipe);
            assert_eq!(
                find_postscript_action(&file),
                None,
                "{}",
                String::from_utf8_lossy(preamble)
            );
        }
        assert_eq!(find_postscript_action(b"Run the file (w) later"), None);
    }

    /// Review s15-r10 (fixed in session 16): the rules for a built name (`cvn` then
    /// `cvx`/`load`) and for filtered code (`filter` then `cvx`) looked only at the token
    /// just before: anything between them that leaves the stack as it was (`0 pop`, `dup
    /// pop`), or the value kept under a name and fetched later (`/op exch def op load`),
    /// walked around them, and a string built with `put` was run with `cvx exec` without
    /// `cvn` at all. gs -dNOSAFER ran each (created RAN). The operand-stack model follows
    /// them; Ghostscript's own lib/ (viewmiff.ps, gslp.ps) raises nothing.
    #[test]
    fn names_and_filtered_code_run_after_other_tokens_are_found() {
        for body in [
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put cvn 0 pop cvx exec",
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put cvn /op exch def op load exec",
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put cvx exec",
            "currentfile /ASCIIHexDecode filter 0 pop cvx exec\n28257069706525746f7563682052414e29202877292066696c65>",
            "currentfile /ASCIIHexDecode filter /f exch def f cvx exec\n28257069706525746f7563682052414e29202877292066696c65>",
        ] {
            let found = find_postscript_action(&eps(body));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{body}: {found:?}"
            );
        }
    }

    /// Session 16: more spellings of the class, each of which gs -dNOSAFER ran (created
    /// RAN; checked by hand), and two it did not run (`7 exch pop` drops the name; `2 1
    /// roll 0 exch pop` runs the number), which are no alert.
    #[test]
    fn built_values_carried_by_stack_operators_and_names_are_found() {
        let s = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put";
        let hex = "\n28257069706525746f7563682052414e29202877292066696c65>";
        for body in [
            format!("{s} cvn 1 2 3 pop pop pop cvx exec"),
            format!("{s} cvn dup pop cvx exec"),
            format!("{s} cvn 5 1 index exch pop exch pop cvx exec"),
            format!("{s} cvn 1 2 3 3 -1 roll pop pop pop cvx exec"),
            format!("{s} cvn /op exch def /op load load exec"),
            format!("{s} cvn /op exch def /x 3 def op load exec"),
            format!("{s} cvn [ 1 2 ] pop cvx exec"),
            format!("{s} cvn 1 1 copy pop pop cvx exec"),
            format!("{s} cvn 10 10 moveto cvx exec"),
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) /t exch def t 0 102 put t cvn cvx exec".to_owned(),
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup dup 0 102 put exch pop cvx exec".to_owned(),
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put /c exch def c cvx exec".to_owned(),
            "(28257069706525746f7563682052414e29202877292066696c65>) /ASCIIHexDecode filter 1 pop cvx exec".to_owned(),
            format!("currentfile /ASCIIHexDecode filter 3 dict pop cvx exec{hex}"),
            format!("currentfile /ASCIIHexDecode filter << >> pop cvx exec{hex}"),
            format!("currentfile /ASCIIHexDecode filter 1 2 add pop cvx exec{hex}"),
        ] {
            let found = find_postscript_action(&eps(&body));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{body}: {found:?}"
            );
        }
        for body in [
            format!("{s} cvn 7 exch pop cvx exec"),
            format!("currentfile /ASCIIHexDecode filter 2 1 roll 0 exch pop cvx exec{hex}"),
        ] {
            assert_eq!(find_postscript_action(&eps(&body)), None, "{body}");
        }
    }

    /// Review s16-r10: each of these ran a pipe under gs -dNOSAFER (created RAN) and was
    /// clean: operators the model did not know emptied its stack (`systemdict exch get
    /// exec`, `where`, `setlinewidth`, `aload`, `token`), procedure bodies were modelled
    /// as if run where written (`{ foo } pop`, `{ exch } pop`), and procedures defined
    /// and called later, or run by `if`/`forall`, were not followed. A built value run
    /// where the model sees it is an alert; one it lost track of and then something not
    /// known run by `cvx`, `token` or a procedure that can run a value is a warning.
    #[test]
    fn built_values_run_through_unmodelled_operators_and_procedures_are_found() {
        let s = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put";
        let alerts = [
            format!("{s} cvn systemdict exch get exec pop"),
            format!("{s} cvn {{ foo }} pop cvx exec pop"),
            format!("{s} cvn {{ exch }} pop cvx exec pop"),
            format!("/p {{ cvx exec }} def {s} cvn p pop"),
            format!("{s} cvn /p {{ cvx exec }} bind def p pop"),
            format!("{s} cvn [ exch ] {{ cvx exec }} forall pop"),
            format!("{s} cvn where pop /file get exec pop"),
            format!("{s} cvn userdict begin systemdict exch get end exec pop"),
            format!("{s} token pop exch pop exec pop"),
            format!("/q {{ cvx exec }} def /p {{ q }} def {s} cvn p pop"),
            format!("/p {{ cvx exec }} def {s} cvn currentdict /p get exec pop"),
            format!("userdict /p {{ cvx exec }} put {s} cvn p pop"),
            format!("{s} cvn [ /cvx load /exec load ] cvx exec pop"),
            format!("{s} cvn (cvx exec) cvx exec pop"),
        ];
        for body in &alerts {
            let found = find_postscript_action(&eps(body));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{body}: {found:?}"
            );
        }
        for body in [
            format!("{s} cvn 1 setlinewidth cvx exec pop"),
            format!("{s} cvn [ exch ] aload pop cvx exec pop"),
            format!("{s} cvn true {{ cvx exec }} if pop"),
            format!("{s} cvn << /k 3 -1 roll >> /k get cvx exec pop"),
            format!(
                "/p {{ cvx exec }} def /d 1 dict def d /p /p load put {s} cvn d /p get exec pop"
            ),
            format!("{s} cvn 1 dict dup /k 4 -1 roll put /k get cvx exec pop"),
        ] {
            let found = find_postscript_action(&eps(&body)).expect(&body);
            assert!(
                found.severity != Severity::Info && !found.detail.is_empty(),
                "{body}: {found:?}"
            );
        }
        // Procedures that are only defined, buffers read into and handed to procedures
        // that look names up, images from a filter: no finding.
        for body in [
            "/p { cvx exec } def /buf 10 string def",
            "/buf 10 string def /q { 0 get pop } def currentfile buf readhexstring pop q",
            "/buf 10 string def buf { pop } forall",
            "<< /DataSource currentfile /ASCII85Decode filter >> image /x { load } def /y /x load def",
            "currentfile /ASCII85Decode filter /f exch def { f } image",
        ] {
            assert_eq!(find_postscript_action(&eps(body)), None, "{body}");
        }
    }

    /// Review s16-r10 (fixed in session 17): a procedure that calls one defined only after
    /// it (`/p { q } def /q { cvx exec } def … cvn p`): gs -dNOSAFER ran the pipe of each
    /// alert below (created RAN; checked by hand) and the file was clean. The names a body
    /// calls are kept and resolved against the procedures defined when it runs; the two
    /// that gs did not run (a recursion, a harmless procedure) are no finding.
    #[test]
    fn procedures_calling_ones_defined_later_are_followed() {
        let s = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put";
        for body in [
            format!("/p {{ q }} def /q {{ cvx exec }} def {s} cvn p pop"),
            format!("/p {{ q }} def /q {{ r }} def /r {{ cvx exec }} def {s} cvn p pop"),
            format!("/p {{ q }} def /q {{ load exec }} def {s} cvn p pop"),
            format!("/p {{ true {{ q }} if }} def /q {{ cvx exec }} def {s} cvn p pop"),
            format!("/q {{ }} def /p {{ q }} def /q {{ cvx exec }} def {s} cvn p pop"),
            format!("/p {{ q }} def /q {{ cvx exec }} bind def {s} cvn /p load exec pop"),
        ] {
            let found = find_postscript_action(&eps(&body));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{body}: {found:?}"
            );
        }
        for body in [
            format!("/p {{ q }} def /q {{ p }} def {s} cvn p pop"),
            format!("/p {{ q }} def /q {{ 1 pop }} def {s} cvn p pop"),
            "/p { q } def /q { cvx exec } def (x) p".to_owned(),
        ] {
            assert_eq!(find_postscript_action(&eps(&body)), None, "{body}");
        }
    }

    /// MAX_POSTSCRIPT_PROC_CALLS: a body naming that many later procedures is followed;
    /// one more, run with a built value at hand, is a warning naming the limit.
    /// MAX_POSTSCRIPT_CALL_RESOLUTIONS bounds the work of many calls (a warning past it).
    #[test]
    fn calls_kept_for_later_are_bounded_and_past_their_limit_reported() {
        let s = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put";
        let body = |n: usize| {
            let names: String = (0..n).map(|i| format!("n{i} ")).collect();
            format!("/p {{ {names}q }} def /q {{ cvx exec }} def {s} cvn p pop")
        };
        let found =
            find_postscript_action(&eps(&body(MAX_POSTSCRIPT_PROC_CALLS - 1))).expect("followed");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let past = find_postscript_action(&eps(&body(MAX_POSTSCRIPT_PROC_CALLS))).expect("told");
        assert_eq!(past.severity, Severity::Warning, "{past:?}");
        assert!(
            past.detail.contains("MAX_POSTSCRIPT_PROC_CALLS"),
            "{past:?}"
        );
        // Many procedures calling each other, called many times with a built value
        // hidden: bounded, and told.
        let defs: String = (0..200)
            .map(|i| format!("/f{i} {{ f{} }} def ", i + 1))
            .collect();
        let calls = "f0 ".repeat(MAX_POSTSCRIPT_CALL_RESOLUTIONS / 200 + 10);
        let many = format!("{defs}{s} cvn [ exch ] pop {calls}");
        let told = find_postscript_action(&eps(&many)).expect("told");
        assert_eq!(told.severity, Severity::Warning, "{told:?}");
        assert!(
            told.detail.contains("MAX_POSTSCRIPT_CALL_RESOLUTIONS"),
            "{told:?}"
        );
        // The same calls with no built value at hand but a procedure holding `eexec`
        // defined: whether each call decrypts what follows is looked up the same way,
        // and past the budget it is said, not taken as "it does not" (review s17-r10).
        let many = format!("/e {{ currentfile eexec }} def {defs}{calls}");
        let told = find_postscript_action(&eps(&many)).expect("told");
        assert_eq!(told.severity, Severity::Warning, "{told:?}");
        assert!(
            told.detail.contains("MAX_POSTSCRIPT_CALL_RESOLUTIONS"),
            "{told:?}"
        );
    }

    /// Type 1 font encryption of `plain` (four zero lead bytes), in binary or in hex
    /// lines of 64 digits, as fonts and `t1asm` write it.
    fn encrypt(plain: &[u8], hex: bool) -> Vec<u8> {
        let mut r: u16 = 55665;
        let mut out = Vec::new();
        for &p in [&[0u8; 4][..], plain].concat().iter() {
            let c = p ^ (r >> 8) as u8;
            out.push(c);
            r = u16::from(c)
                .wrapping_add(r)
                .wrapping_mul(52845)
                .wrapping_add(22719);
        }
        if !hex {
            return out;
        }
        let digits: String = out.iter().map(|b| format!("{b:02x}")).collect();
        digits
            .as_bytes()
            .chunks(64)
            .collect::<Vec<_>>()
            .join(&b"\n"[..])
    }

    fn ps(parts: &[&[u8]]) -> Vec<u8> {
        [&b"%!PS\n"[..], &parts.concat()].concat()
    }

    /// Issue 10 (session 17): the text after `eexec` is encrypted and Ghostscript runs
    /// it; a pipe there was clean. gs -dNOSAFER ran each of these (created RAN; the same
    /// bytes checked by hand): binary and hex sections, a section inside a section, and
    /// plain text after a section that closed its file. A font's Private dictionary is
    /// no finding.
    #[test]
    fn encrypted_eexec_sections_are_decrypted_and_read() {
        let pipe = b"(%pipe%touch RAN) (w) file pop currentfile closefile\n";
        let tail =
            b"\n0000000000000000000000000000000000000000000000000000000000000000\ncleartomark\n";
        let inner = [
            &b"currentfile eexec "[..],
            &encrypt(pipe, false),
            b" currentfile closefile\n",
        ]
        .concat();
        for file in [
            ps(&[b"currentfile eexec\n", &encrypt(pipe, false), tail]),
            ps(&[b"currentfile eexec\n", &encrypt(pipe, true), tail]),
            ps(&[
                b"currentfile eexec\r\n",
                &encrypt(pipe, true).to_ascii_uppercase(),
                tail,
            ]),
            ps(&[b"currentfile eexec ", &encrypt(&inner, false)]),
            ps(&[
                b"currentfile eexec\n",
                &encrypt(b"currentfile closefile\n", true),
                b"\n(%pipe%touch RAN) (w) file pop\n",
            ]),
        ] {
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(&file[..file.len().min(40)])
            );
        }
        let private = b"dup /Private 8 dict dup begin /RD{string currentfile exch readstring pop}executeonly def /ND{noaccess def}executeonly def /NP{noaccess put}executeonly def /MinFeature{16 16} ND /password 5839 def /Subrs 1 array dup 0 15 RD \x10\x9b\x8a\xa0\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b NP ND end mark currentfile closefile\n";
        for hex in [false, true] {
            let font = ps(&[
                b"/FontName /X def currentdict end currentfile eexec\n",
                &encrypt(private, hex),
                tail,
            ]);
            assert_eq!(find_postscript_action(&font), None, "hex {hex}");
        }
    }

    /// Review s17-r10: `eexec` other than a top-level `currentfile eexec` (inside a
    /// procedure never run, on a string, fetched with `load` or `get`, in a procedure
    /// called later) made the model decrypt the bytes after the token and skip the rest
    /// of the file; and the section's first byte was taken for a blank when it was a NUL
    /// or a form feed, which Ghostscript decrypts. gs -dNOSAFER ran each (created RAN;
    /// checked by hand with gs 10.00) and the file was clean.
    #[test]
    fn eexec_spelled_other_ways_is_followed_and_hides_nothing_after_it() {
        let pipe = b"(%pipe%touch RAN) (w) file pop\n";
        let section = [&pipe[..], b"currentfile closefile\n"].concat();
        let tail =
            b"\n0000000000000000000000000000000000000000000000000000000000000000\ncleartomark\n";
        let with_lead = |lead: u8| {
            let mut out = encrypt(&section, false);
            // The first lead byte chosen so that the first ciphertext byte is `lead`.
            let mut r: u16 = 55665;
            let mut plain = vec![lead ^ 0xD9, 0, 0, 0];
            plain.extend_from_slice(&section);
            out.clear();
            for p in plain {
                let c = p ^ (r >> 8) as u8;
                out.push(c);
                r = u16::from(c)
                    .wrapping_add(r)
                    .wrapping_mul(52845)
                    .wrapping_add(22719);
            }
            out
        };
        let string_section: Vec<u8> = encrypt(b"(%pipe%touch RAN) (w) file pop", false)
            .iter()
            .flat_map(|b| format!("\\{b:03o}").into_bytes())
            .collect();
        for file in [
            ps(&[b"{ eexec } pop\n", pipe]),
            ps(&[b"/e { eexec } def\n", pipe]),
            ps(&[b"(x) eexec\n", pipe]),
            ps(&[b"(", &string_section, b") eexec\n"]),
            ps(&[
                b"/e { currentfile eexec } def e\n",
                &encrypt(&section, false),
                tail,
            ]),
            ps(&[
                b"/e { currentfile eexec } def /f { e } def f\n",
                &encrypt(&section, true),
                tail,
            ]),
            ps(&[
                b"currentfile /eexec load exec\n",
                &encrypt(&section, false),
                tail,
            ]),
            ps(&[
                b"currentfile systemdict /eexec get exec\n",
                &encrypt(&section, false),
                tail,
            ]),
            ps(&[
                b"true { currentfile eexec } if\n",
                &encrypt(&section, false),
                tail,
            ]),
            ps(&[
                b"true { currentfile eexec } { } ifelse\n",
                &encrypt(&section, true),
                tail,
            ]),
            ps(&[b"{ currentfile eexec } executeonly pop\n", pipe]),
            ps(&[b"currentfile eexec\n", &with_lead(0), tail]),
            ps(&[b"currentfile eexec\n", &with_lead(0x0c), tail]),
        ] {
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(&file[..file.len().min(60)])
            );
        }
    }

    /// Review s17-r10: in hex, Ghostscript skips every byte that is no hex digit (gs
    /// -dNOSAFER ran a section with `g`, DEL, `%` or 0xFF between its digits); the model
    /// stopped at the first one and read no further.
    #[test]
    fn hex_eexec_sections_skip_every_byte_that_is_no_digit() {
        let section = b"(%pipe%touch RAN) (w) file pop\ncurrentfile closefile\n";
        let digits: Vec<u8> = encrypt(section, true)
            .into_iter()
            .filter(u8::is_ascii_hexdigit)
            .collect();
        for sep in [&b"g"[..], b"\x7f", b"%", b">", b"\xff"] {
            let file = ps(&[
                b"currentfile eexec\n",
                &digits[..10],
                sep,
                &digits[10..],
                b"\ncleartomark\n",
            ]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{sep:?}: {found:?}"
            );
        }
    }

    /// Several fonts in one file, each in a section that closes its file: each section is
    /// decrypted to where it closes, not to the end of the file, so the bytes of
    /// MAX_POSTSCRIPT_EEXEC_BYTES are not spent again per font (a document with many
    /// embedded fonts is no warning).
    #[test]
    fn many_fonts_in_one_file_do_not_spend_the_eexec_limit() {
        let private =
            b"dup /Private 8 dict dup begin /password 5839 def end mark currentfile closefile\n";
        let tail = [
            &b"\n"[..],
            &b"0".repeat(512),
            b"\ncleartomark\n",
            &b"% padding\n".repeat(MAX_POSTSCRIPT_EEXEC_BYTES / 10 / 8),
        ]
        .concat();
        for hex in [false, true] {
            let mut parts: Vec<Vec<u8>> = Vec::new();
            for _ in 0..10 {
                parts.push(b"/FontName /X def currentdict end currentfile eexec\n".to_vec());
                parts.push(encrypt(private, hex));
                parts.push(tail.clone());
            }
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            assert_eq!(find_postscript_action(&ps(&refs)), None, "hex {hex}");
        }
    }

    /// Review s17-r10: a section ended at the first `closefile` of its plaintext found
    /// as bytes, so the word in a comment or a string (`% closefile`, `(closefile) pop`)
    /// ended it early and what the section runs after was read as ciphertext: gs
    /// -dNOSAFER ran the pipe of each (created RAN). The end is now the `closefile`
    /// token, read with the data `RD` reads stepped over (`section_end`).
    #[test]
    fn closefile_in_a_comment_or_string_does_not_end_an_eexec_section() {
        let pipe = b"(%pipe%touch RAN) (w) file pop\n";
        for fake in [&b"% closefile\n"[..], b"(closefile) pop\n"] {
            let section = [fake, pipe, b"currentfile closefile\n"].concat();
            let file = ps(&[b"currentfile eexec\n", &encrypt(&section, false)]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{fake:?}: {found:?}"
            );
        }
    }

    /// The data a font's `RD` reads (charstrings, subroutines) is no code: a `(` in it
    /// does not open a string that swallows the code after it, and `closefile` in it
    /// does not end the section. gs 10 -dNOSAFER ran the pipe of each (created RAN).
    #[test]
    fn data_read_by_rd_in_an_eexec_section_is_stepped_over() {
        let define = &b"userdict begin /RD {string currentfile exch readstring pop} def\n"[..];
        let pipe = b"(%pipe%touch RAN) (w) file pop\n";
        for data in [
            &b"/a 3 RD x(y pop pop\n"[..],
            b"/a 9 -| closefile pop pop\n",
        ] {
            let section = [define, data, pipe, b"currentfile closefile\n"].concat();
            let file = ps(&[b"currentfile eexec\n", &encrypt(&section, false)]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{data:?}: {found:?}"
            );
        }
        // A string left open to the end of the section, `closefile` repeated in it: read
        // once to its end, and what the section closes is where it says.
        let open = [&b"(x "[..], &b"closefile ".repeat(10_000), b"\n"].concat();
        let file = ps(&[b"currentfile eexec\n", &encrypt(&open, false)]);
        assert_eq!(find_postscript_action(&file), None);
    }

    /// Session 18: a section closing its file other than by `currentfile closefile`
    /// (after other operands, in a procedure run, by `/closefile load exec`, `systemdict
    /// /closefile get exec`, a name defined as it): gs 10 -dNOSAFER ran the cleartext
    /// pipe after each section (created RAN), and the file was clean. A procedure
    /// holding `closefile` that is never run ends nothing.
    #[test]
    fn a_section_closing_its_file_another_way_is_read_on_after() {
        let tail = [
            &b"\n"[..],
            &[b'0'; 512],
            b"\ncleartomark\n(%pipe%touch RAN) (w) file pop\n",
        ]
        .concat();
        for close in [
            &b"mark {currentfile closefile} exec\n"[..],
            b"mark currentfile /closefile load exec\n",
            b"userdict begin /cf /closefile load def mark currentfile cf\n",
            b"mark currentfile systemdict /closefile get exec\n",
            b"mark currentfile dup pop closefile\n",
            b"userdict begin /c {currentfile closefile} def mark c\n",
        ] {
            let file = ps(&[b"currentfile eexec\n", &encrypt(close, false), &tail]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert && a.detail.contains("RAN")),
                "{close:?}: {found:?}"
            );
        }
        let quiet = b"/c {currentfile closefile} def (x) pop\nmark currentfile closefile\n";
        let file = ps(&[
            b"currentfile eexec\n",
            &encrypt(quiet, false),
            b"\n",
            &[b'0'; 512],
            b"\ncleartomark\n",
        ]);
        assert_eq!(find_postscript_action(&file), None);
    }

    /// Review s18-r10: a section closing its file by a string run as code (`(currentfile
    /// closefile) cvx exec`), by a binary object sequence (`[currentfile closefile]`,
    /// executable names), or by a name defined as a bound procedure holding it (whose
    /// blank after the name, read from the file as ciphertext, is `<`): gs 10 -dNOSAFER
    /// ran the cleartext pipe after each section (created RAN), and the file was clean.
    #[test]
    fn a_section_closed_by_a_string_or_binary_sequence_is_read_on_after() {
        let tail = [
            &b"\n"[..],
            &[b'0'; 512],
            b"\ncleartomark\n(%pipe%touch RAN) (w) file pop\n",
        ]
        .concat();
        // An executable array of two executable names given by their text (low byte
        // first): PLRM 3.14.2.
        let mut sequence = vec![129u8, 2];
        sequence.extend_from_slice(&(4u16 + 16 + 20).to_le_bytes());
        for (len, offset) in [(11u16, 16u32), (9, 27)] {
            sequence.extend_from_slice(&[0x83, 0]);
            sequence.extend_from_slice(&len.to_le_bytes());
            sequence.extend_from_slice(&offset.to_le_bytes());
        }
        sequence.extend_from_slice(b"currentfileclosefile");
        for close in [
            &b"mark (currentfile closefile) cvx exec\n"[..],
            &[&b"mark "[..], &sequence, b"\n"].concat(),
            b"userdict begin /x {currentfile closefile} bind def mark x\n",
        ] {
            let file = ps(&[b"currentfile eexec\n", &encrypt(close, false), &tail]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert && a.detail.contains("RAN")),
                "{close:?}: {found:?}"
            );
        }
    }

    /// Review s18-r10: a section that may close its file (`false {currentfile
    /// closefile} if`) before the place it does: the file read on from the possible place
    /// only took the ciphertext between for plain, whose `<` opened a hex string to the
    /// end of the file, and the cleartext pipe after the section (gs 10 -dNOSAFER ran
    /// it, created RAN) was clean. Past MAX_POSTSCRIPT_REREADS such sections, a warning.
    #[test]
    fn the_file_after_a_section_is_read_from_where_it_closes_too() {
        let tail = [
            &b"\n"[..],
            &[b'0'; 512],
            b"\ncleartomark\n(%pipe%touch RAN) (w) file pop\n",
        ]
        .concat();
        let section = b"false {currentfile closefile} if\n%x0x0x0\nmark currentfile closefile\n";
        let file = ps(&[b"currentfile eexec\n", &encrypt(section, false), &tail]);
        let found = find_postscript_action(&file);
        assert!(
            found
                .as_ref()
                .is_some_and(|a| a.severity == Severity::Alert && a.detail.contains("RAN")),
            "{found:?}"
        );
        let quiet = [
            &b"currentfile eexec\n"[..],
            &encrypt(section, false),
            b"\n",
            &[b'0'; 512],
            b"\ncleartomark\n",
        ]
        .concat();
        let within = quiet.repeat(MAX_POSTSCRIPT_REREADS);
        assert_eq!(find_postscript_action(&ps(&[&within])), None);
        let past = quiet.repeat(MAX_POSTSCRIPT_REREADS + 1);
        let told = find_postscript_action(&ps(&[&past])).expect("told");
        assert_eq!(told.severity, Severity::Warning, "{told:?}");
        assert!(told.detail.contains("MAX_POSTSCRIPT_REREADS"), "{told:?}");
    }

    /// Review s18-r10: `currentfile closefile` in bytes the section reads as data
    /// (`currentfile 21 string readstring`, `readline`, a procedure of its own reading
    /// so) is no end: gs 10 -dNOSAFER went on decrypting and ran the pipe after it (and
    /// the cleartext pipe after the real end), and the file was clean.
    #[test]
    fn a_closefile_read_as_data_ends_no_section() {
        let pipe = b"(%pipe%touch RAN) (w) file pop\n";
        for data in [
            &b"currentfile 21 string readstring\ncurrentfile closefile pop pop\n"[..],
            b"currentfile 99 string readline\ncurrentfile closefile\npop pop\n",
            b"currentfile 4 string readhexstring\ncurrentfile closefile pop pop\n",
            b"userdict begin /g {currentfile exch string readstring pop} def\n21 g currentfile closefile pop\n",
        ] {
            let inside = [data, pipe, b"mark currentfile closefile\n"].concat();
            let file = ps(&[b"currentfile eexec\n", &encrypt(&inside, false), b"\n"]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert && a.detail.contains("RAN")),
                "{data:?}: {found:?}"
            );
            let quiet = [data, b"mark currentfile closefile\n"].concat();
            let file = ps(&[
                b"currentfile eexec\n",
                &encrypt(&quiet, false),
                b"\n",
                &[b'0'; 512],
                b"\ncleartomark\n",
                pipe,
            ]);
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert && a.detail.contains("RAN")),
                "after {data:?}: {found:?}"
            );
        }
    }

    /// Real fonts (TeX Gyre's, installed by scripts/setup-test-deps.sh): the `closefile`
    /// token their section runs is the word where gs stops decrypting, read past every
    /// charstring `RD` reads, and no font is an action.
    #[test]
    fn real_fonts_end_their_eexec_section_at_their_closefile() {
        let dir = "/usr/share/texmf/fonts/type1/public/tex-gyre";
        #[allow(clippy::disallowed_methods)]
        let fonts: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e} (scripts/setup-test-deps.sh)"))
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "pfb"))
            .collect();
        assert!(fonts.len() > 10, "{fonts:?}");
        for path in fonts {
            #[allow(clippy::disallowed_methods)]
            let pfb = std::fs::read(&path).expect("font");
            // The program a PFB's segments hold (its headers, `80 0t` and a length, left
            // out), as font loaders hand it to the interpreter.
            let mut bytes = Vec::new();
            let mut i = 0usize;
            while let Some(&[0x80, 1 | 2, a, b, c, d]) = pfb.get(i..i + 6) {
                let len = u32::from_le_bytes([a, b, c, d]) as usize;
                bytes.extend_from_slice(&pfb[i + 6..(i + 6 + len).min(pfb.len())]);
                i += 6 + len;
            }
            let at = memchr::memmem::find(&bytes, b"currentfile eexec").expect("eexec") + 17;
            let section = binary::eexec(&bytes, at, MAX_POSTSCRIPT_EEXEC_BYTES, &Clock::default());
            let words = memchr::memmem::find(&section.plain, b"closefile").map(|k| k + 9);
            assert!(section.closes.end.is_some(), "{path:?}");
            assert_eq!(section.closes.end, words, "{path:?}");
            assert!(!section.closes.data.is_empty(), "{path:?}");
            assert_eq!(find_postscript_action(&bytes), None, "{path:?}");
        }
    }

    /// Review s17-r10: a procedure calling a standard operator that the program
    /// redefines after it (`/p { show } def /show { cvx exec } def … cvn p`): gs
    /// -dNOSAFER ran the pipe (created RAN). Standard names a body calls are kept to be
    /// resolved when it runs, as the program's own.
    #[test]
    fn standard_operators_redefined_later_are_followed() {
        let s = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put";
        let body = format!("/p {{ show }} def /show {{ cvx exec }} def {s} cvn p pop");
        let found = find_postscript_action(&eps(&body));
        assert!(
            found
                .as_ref()
                .is_some_and(|a| a.severity == Severity::Alert),
            "{body}: {found:?}"
        );
    }

    /// MAX_POSTSCRIPT_EEXEC_BYTES: a section that does not close its file within the
    /// limit is read to it and then a warning naming it; nested past
    /// MAX_POSTSCRIPT_STRING_NESTING is a warning too.
    #[test]
    fn eexec_sections_are_bounded_and_past_their_limit_reported() {
        let long = vec![b' '; MAX_POSTSCRIPT_EEXEC_BYTES + 16];
        let file = ps(&[b"currentfile eexec\n", &encrypt(&long, false)]);
        let found = find_postscript_action(&file).expect("told");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(
            found.detail.contains("MAX_POSTSCRIPT_EEXEC_BYTES"),
            "{found:?}"
        );
        let within = ps(&[b"currentfile eexec\n", &encrypt(&long[..1024], false)]);
        assert_eq!(find_postscript_action(&within), None);
        let mut section = b"(x) pop".to_vec();
        for _ in 0..=MAX_POSTSCRIPT_STRING_NESTING {
            section = [&b"currentfile eexec "[..], &encrypt(&section, false)].concat();
        }
        let found = find_postscript_action(&ps(&[&section])).expect("told");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
    }

    /// A binary object sequence (PLRM 3.14.2): `objects` (type, length, value) and the
    /// data after them, high byte first or not, with the short header.
    fn sequence(objects: &[(u8, u16, i32)], data: &[u8], low_first: bool) -> Vec<u8> {
        let mut body = Vec::new();
        for &(kind, len, value) in objects {
            body.push(kind);
            body.push(0);
            if low_first {
                body.extend_from_slice(&len.to_le_bytes());
                body.extend_from_slice(&value.to_le_bytes());
            } else {
                body.extend_from_slice(&len.to_be_bytes());
                body.extend_from_slice(&value.to_be_bytes());
            }
        }
        body.extend_from_slice(data);
        let len = u16::try_from(body.len() + 4).expect("short");
        let mut out = vec![if low_first { 129 } else { 128 }, objects.len() as u8];
        out.extend_from_slice(&if low_first {
            len.to_le_bytes()
        } else {
            len.to_be_bytes()
        });
        out.extend_from_slice(&body);
        out
    }

    /// Issue 10 (session 17): binary tokens spell operators without text (146 65 is the
    /// executable system name `file`) and were clean. gs -dNOSAFER ran each of these
    /// (created RAN; the same bytes checked by hand): a binary name after text strings
    /// or after a name it ends, binary strings, and binary object sequences naming the
    /// operator by its system index, by its text, and inside a procedure.
    #[test]
    fn binary_tokens_are_decoded_and_read() {
        let data = b"%pipe%touch RANw";
        for file in [
            ps(&[b"(%pipe%touch RAN) (w) \x92\x41 pop\n"]),
            ps(&[b"/x {} def (%pipe%touch RAN) (w) x\x92\x41 pop\n"]),
            ps(&[b"\x8e\x0f%pipe%touch RAN\x8e\x01w\x92\x41 pop\n"]),
            ps(&[
                &sequence(&[(5, 15, 24), (5, 1, 39), (0x83, 0xFFFF, 65)], data, false),
                b" pop\n",
            ]),
            ps(&[
                &sequence(
                    &[(5, 15, 24), (5, 1, 39), (0x83, 4, 40)],
                    b"%pipe%touch RANwfile",
                    true,
                ),
                b" pop\n",
            ]),
            ps(&[
                &sequence(
                    &[
                        (5, 15, 40),
                        (5, 1, 55),
                        (0x89, 1, 32),
                        (0x83, 0xFFFF, 63),
                        (0x83, 0xFFFF, 65),
                    ],
                    data,
                    false,
                )
                .into_iter()
                .enumerate()
                // Four top-level objects: the fifth is the procedure's element.
                .map(|(i, b)| if i == 1 { 4 } else { b })
                .collect::<Vec<_>>(),
                b" pop\n",
            ]),
            ps(&[b"(%pipe%touch RAN) (w) \x91\x41 load exec pop\n"]),
        ] {
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(&file)
            );
        }
        // Binary numbers and strings, and a string holding an operator's name: no action.
        for file in [
            ps(&[b"\x88\x05\x86\x00\x10 add pop \x8e\x04file show\n"]),
            ps(&[
                &sequence(&[(1, 0, 5), (5, 4, 16)], b"file", false),
                b" pop pop\n",
            ]),
        ] {
            assert_eq!(find_postscript_action(&file), None, "{file:?}");
        }
    }

    /// Review s17-r10: a byte Ghostscript's scanner rejects as a binary token (150 to
    /// 159) ended the reading of the whole file, but Ghostscript reads such bytes as data
    /// when the program reads its own file (`currentfile … readstring`, image data) and
    /// runs what follows: gs -dNOSAFER ran the pipe after each (created RAN; checked by
    /// hand with gs 10.00) and the file was clean.
    #[test]
    fn bytes_read_as_data_do_not_end_the_reading() {
        for file in [
            ps(&[b"currentfile 1 string readstring\n\x9f pop pop\n(%pipe%touch RAN) (w) file pop\n"]),
            ps(&[b"/b 4 string def 2 2 8 [2 0 0 2 0 0] {currentfile b readstring pop} image\n\x9f\x9f\x9f\x9f\n(%pipe%touch RAN) (w) file pop\n"]),
            ps(&[b"currentfile 2 string readstring\n\x96\x97 pop pop\n(%pipe%touch RAN) (w) \x92\x41 pop\n"]),
        ] {
            let found = find_postscript_action(&file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(&file)
            );
        }
    }

    /// Review s17-r10: a PFB font (TeX Gyre's qtmbi.pfb) starts with its segment header
    /// `80 01 <length>`, which gs 10 reads as a binary object sequence and rejects
    /// (`syntaxerror`, a null object with a length): it stops there. The model read on
    /// to the font's `currentfile eexec` and raised an alert on a real font. Objects gs
    /// rejects (unused byte set, a null or mark with a length or value, an integer or
    /// boolean with a length) now reject the sequence, as there.
    #[test]
    fn binary_object_sequences_gs_rejects_stop_the_reading_as_there() {
        // A file that starts with such a sequence (as a PFB's header does) and reads
        // itself after it: gs stopped at the sequence.
        for object in [(0u8, 0x2521u16, 0x5053_2d41i32), (1, 5, 1), (10, 0, 3)] {
            let file = [
                &sequence(&[object], b"", false)[..],
                b" currentfile 10 string readstring pop pop\n",
            ]
            .concat();
            assert_eq!(find_postscript_action(&file), None, "{object:?}");
        }
        for path in [
            "/usr/share/texmf/fonts/type1/public/tex-gyre/qtmbi.pfb",
            "/usr/share/texmf/fonts/type1/public/tex-gyre/qbkbi.pfb",
            "/usr/share/texmf/fonts/type1/public/tex-gyre/qcsr.pfb",
        ] {
            // Real fonts, installed by scripts/setup-test-deps.sh (Debian's tex-gyre).
            #[allow(clippy::disallowed_methods)]
            let bytes = std::fs::read(path).unwrap_or_else(|e| {
                panic!("{path}: {e} (scripts/setup-test-deps.sh installs tex-gyre)")
            });
            assert_eq!(find_postscript_action(&bytes), None, "{path}");
        }
        // In a declared program the same bytes are stepped over, not the end.
        for object in [(0u8, 5u16, 0i32), (1, 5, 1), (10, 0, 3)] {
            let file = ps(&[
                &sequence(&[object], b"", false),
                b" (%pipe%touch RAN) (w) file pop\n",
            ]);
            let found = find_postscript_action(&file);
            assert!(
                found.is_some_and(|a| a.severity == Severity::Alert),
                "{object:?}"
            );
        }
    }

    /// MAX_POSTSCRIPT_BINARY_DEPTH and MAX_POSTSCRIPT_BINARY_TOKENS: an array of a binary
    /// object sequence that holds itself is read to the limit and then a warning.
    #[test]
    fn binary_object_sequences_are_bounded_and_past_their_limit_reported() {
        let looped = sequence(&[(0x89, 1, 0)], b"", false);
        let found = find_postscript_action(&ps(&[&looped])).expect("told");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(found.detail.contains("MAX_POSTSCRIPT_BINARY"), "{found:?}");
        // Wide instead of deep: many top-level objects over many sequences.
        let wide = sequence(&vec![(1u8, 0u16, 1i32); 255], b"", false);
        let many = wide.repeat(MAX_POSTSCRIPT_BINARY_TOKENS / 255 + 2);
        let found = find_postscript_action(&ps(&[&many])).expect("told");
        assert!(
            found.detail.contains("MAX_POSTSCRIPT_BINARY_TOKENS"),
            "{found:?}"
        );
        let few = wide.repeat(4);
        assert_eq!(find_postscript_action(&ps(&[&few, b" clear"])), None);
    }

    /// Random programs rich in binary token bytes (128 to 159, sequence headers among
    /// them) and `eexec` sections: decoding never panics, and every input ends.
    /// Deterministic (xorshift), so a failure repeats.
    #[test]
    fn random_binary_tokens_and_eexec_sections_are_read_without_panic() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..64 {
            let mut program = b"%!PS\n".to_vec();
            while program.len() < 16 << 10 {
                let r = next();
                match r % 8 {
                    0..=3 => program.push(128 + (r >> 8) as u8 % 22),
                    4 => program.extend_from_slice(b" currentfile eexec "),
                    5 => program.extend_from_slice(b" {"),
                    6 => program.extend_from_slice(&[0, 0, 0xFF, 0xFF]),
                    _ => program.push((r >> 8) as u8),
                }
            }
            let _ = find_postscript_action(&program);
            let _ = program_reads_past(&program[..(round + 1) * 200]);
        }
    }

    /// MAX_POSTSCRIPT_STACK_MODELLED: filtered code under that many stack entries is
    /// followed to its `cvx` (`index` fetches it); one entry more drops it from the
    /// model, which is a warning naming the limit. Likewise for defined names.
    #[test]
    fn the_modelled_stack_and_names_are_kept_to_their_limit_and_past_it_reported() {
        let filtered = "currentfile /ASCIIHexDecode filter";
        let under = |n: usize| {
            let numbers = " 0".repeat(n);
            format!("{filtered}{numbers} {n} index cvx exec")
        };
        // The filtered file, the numbers and the count fill the stack to the limit.
        let found = find_postscript_action(&eps(&under(MAX_POSTSCRIPT_STACK_MODELLED - 2)))
            .expect("followed");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let past =
            find_postscript_action(&eps(&under(MAX_POSTSCRIPT_STACK_MODELLED))).expect("reported");
        assert_eq!(past.severity, Severity::Warning, "{past:?}");
        assert!(
            past.detail.contains("MAX_POSTSCRIPT_STACK_MODELLED"),
            "{past:?}"
        );
        let names = |n: usize| {
            let strings: String = (0..n).map(|i| format!("/s{i} (x) def ")).collect();
            format!("{filtered} /f exch def {strings}f cvx exec")
        };
        let found = find_postscript_action(&eps(&names(MAX_POSTSCRIPT_STACK_MODELLED - 1)))
            .expect("followed");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let past =
            find_postscript_action(&eps(&names(MAX_POSTSCRIPT_STACK_MODELLED))).expect("reported");
        assert_eq!(past.severity, Severity::Warning, "{past:?}");
        // Built values that are not run: no alert.
        for body in [
            "currentfile /ASCIIHexDecode filter 0 pop 1 2 exch pop pop /x exch def",
            "(abc) dup 0 65 put show",
            "/buf 10 string def (x) cvx exec",
        ] {
            assert_eq!(find_postscript_action(&eps(body)), None, "{body}");
        }
    }

    /// Review s14-r01 (fixed in session 15): a file operator's name built by `put` into a
    /// string and made a name with `cvn`, and code decoded by a filter from the file and
    /// run (`currentfile /ASCIIHexDecode filter cvx exec`): gs -dNOSAFER runs each
    /// (tests/real_readers.rs). What runs is known only at run time: running a name or
    /// code built so is the alert. A name made from a string and kept (a dictionary
    /// key), or made from a string written in the program, is not.
    #[test]
    fn names_built_in_strings_and_filtered_code_are_found() {
        for body in [
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put cvn cvx exec",
            "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put cvn load exec",
            "/n (fi) (le) 2 copy length exch length add string dup 0 4 index putinterval dup 2 3 index putinterval exch pop exch pop def n cvn cvx exec",
            "currentfile /ASCIIHexDecode filter cvx exec\n28257069706525746f7563682052414e29202877292066696c65>",
            "(28257069706525746f7563682052414e29202877292066696c65>) /ASCIIHexDecode filter cvx exec",
            "{ currentfile /ASCII85Decode filter cvx exec } bind def",
        ] {
            let found = find_postscript_action(&eps(body));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|a| a.severity == Severity::Alert),
                "{body}: {found:?}"
            );
        }
        for body in [
            "/n 8 string def 42 n cvs cvn 1 def",
            "(showpage) cvn cvx exec",
            "/Name (abc) cvn def currentfile /ASCIIHexDecode filter pop",
            "/F /Helvetica findfont def (]) cvn dup load",
        ] {
            assert_eq!(find_postscript_action(&eps(body)), None, "{body}");
        }
    }

    /// A file read in windows: a program its first window starts and does not end is
    /// said to be followed no further; one whose action is in the window, or that is no
    /// program, needs no word.
    #[test]
    fn a_program_running_past_the_first_window_is_told() {
        assert!(program_reads_past(&eps("0 0 moveto")));
        assert!(!program_reads_past(&eps("(x) deletefile")));
        assert!(!program_reads_past(b"\0\0\0\0DICM"));
        let mut file = DOS_EPS_MAGIC.to_vec();
        file.extend_from_slice(&64u32.to_le_bytes());
        file.extend_from_slice(&(1u32 << 20).to_le_bytes());
        file.resize(128, 0);
        assert!(program_reads_past(&file));
        file[8..12].copy_from_slice(&32u32.to_le_bytes());
        assert!(!program_reads_past(&file));
        let found = crate::inspect_first_window(&eps("0 0 moveto"), 1 << 30);
        assert!(
            found
                .observations
                .iter()
                .any(|o| o.severity == Severity::Warning
                    && o.format == Some(crate::Format::PostScript)),
            "{found:?}"
        );
    }
}
