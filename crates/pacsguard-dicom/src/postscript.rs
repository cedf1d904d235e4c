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

use pacsguard_events::Severity;

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
    let (at, how) = scan(program, !declared, 0)?;
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
fn scan(program: &[u8], prefix: bool, depth: usize) -> Option<(usize, String)> {
    let mut recent: [Option<(usize, Token)>; 2] = [None, None];
    let mut defined: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut model = Model::default();
    let mut i = 0usize;
    let shown = |t: &[u8]| pacsguard_events::escape_bytes(&t[..t.len().min(60)]);
    while let Some((at, token, next)) = next_token(program, i) {
        i = next;
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
                if let Some((_, how)) = scan(text, false, depth + 1) {
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
                    None => false,
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
        if let Some(how) = model.step(&token, &program[at..next]) {
            return Some((at, how));
        }
        recent = [Some((at, token)), recent[0].take()];
    }
    None
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
    /// `where`): what running it with a built value on the stack may do with that value.
    Proc(u8),
}

/// A procedure body with `cvx` or `token`: it can run a string or a file it is handed.
const MAKES_CODE: u8 = 1;
/// A procedure body with `load`, `get` or `where`: it can run a name it is handed.
const LOOKS_UP: u8 = 2;

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
        if let Slot::Proc(runs) = value {
            self.defined_runs |= runs;
        }
        if !matches!(value, Slot::Text(_) | Slot::Proc(1..)) && value.built().is_none() {
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
                        return self.push(Slot::Proc(runs));
                    }
                }
                (Token::Name(name), _) => {
                    self.deferred_runs |= runs_of(name);
                    // A procedure calling one that can run a value can too.
                    if let Some(Slot::Proc(runs)) = self.defined.get(name.as_slice()) {
                        self.deferred_runs |= runs;
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
                            if let Slot::Proc(by) = slot {
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
                            Slot::Proc(runs)
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
        }
        let Token::Name(name) = token else {
            return None;
        };
        if let Some(value) = self.defined.get(name.as_slice()) {
            let value = value.clone();
            if let Slot::Proc(runs) = value {
                // Calling the procedure: it runs, with the stack as it is.
                return self.unmodelled(runs);
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
                                runs => Slot::Proc(runs),
                            });
                    return self.push(value);
                }
                Slot::Unknown if self.lost.is_some() => return self.lost.take(),
                _ => return self.push(Slot::Unknown),
            },
            b"cvx" | b"token" | b"exec" => {
                let top = top(self);
                if name.as_slice() == b"cvx"
                    && let Slot::Text(changed) = &top
                    && !changed.get()
                {
                    // A string made a procedure: what its tokens can run (`(cvx exec) cvx
                    // exec`, review s16-r10).
                    let runs = text_runs.unwrap_or(MAKES_CODE | LOOKS_UP);
                    self.pop();
                    return self.push(Slot::Proc(runs));
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
                    && let Some(value @ Slot::Proc(_)) = self.defined.get(&key).cloned() =>
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
                if let (Slot::Literal(key), Slot::Proc(_)) = (key, &value) {
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
        let calls = self.stack.iter().fold(runs, |calls, slot| match slot {
            Slot::Proc(runs) => calls | runs,
            _ => calls,
        });
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
        _ => {
            // A name (literal after `/`, evaluated at once after `//`), or a number.
            let slashes = p[i..].iter().take(2).take_while(|&&b| b == b'/').count();
            let literal = slashes == 1;
            i += slashes;
            let start = i;
            while p.get(i).is_some_and(|&b| !is_space(b) && !is_delimiter(b)) {
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

    /// Open (review s16-r10): a procedure that calls one defined only after it (`/p { q }
    /// def /q { cvx exec } def … cvn p`): gs -dNOSAFER ran the pipe and the file is
    /// clean. What a body can run is taken from the procedures defined when it is
    /// written; a forward reference is common in benign prologs, so taking every one as
    /// able to run a value would page on them. Needs the names a body calls kept and
    /// resolved when it is called.
    #[test]
    #[ignore = "open, review s16-r10: a procedure calling one defined after it"]
    fn procedures_calling_ones_defined_later_are_followed() {
        let s = "/s (XpipeXtouch RAN) def s 0 37 put s 5 37 put s (w) (xile) dup 0 102 put";
        let body = format!("/p {{ q }} def /q {{ cvx exec }} def {s} cvn p pop");
        assert!(find_postscript_action(&eps(&body)).is_some(), "{body}");
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
