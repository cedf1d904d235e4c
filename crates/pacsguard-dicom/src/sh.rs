//! A model of how dash parses a file it runs: which complete commands it reaches before a
//! syntax error ends it, and what each command's name is once quotes are removed.
//!
//! dash reads one complete command at a time (a line, or a compound command to its
//! closing word), runs it, and reads the next; a syntax error ends the shell, so the
//! commands before it ran and none after it do. This model follows the grammar closely
//! enough that what dash accepts it accepts: words with quotes, backslashes, `$(...)`,
//! `$((...))`, `${...}` (with any bytes inside, `)` included) and backquotes; operators;
//! redirections and here-documents; `if`/`while`/`until`/`for`/`{ }`/subshells; `case`
//! with its patterns (`(a)`, `a|b)`, `;;`); function definitions `f() ...`.
//!
//! A command name is judged as the shell will run it: `\sh`, `s''h` and `"sh"` are `sh`;
//! a name made by an expansion (`${X}h`, `$(...)`) is unknown until it runs and counts as
//! hostile when the expansion can have a value: a parameter the script gave one (an
//! assignment, `read`, `for`, `export`, `${X:=…}`), a default written in it (`${X:-sh}`),
//! positional parameters after `set` or in a function, or a variable of the environment
//! that names a program ([`ENVIRONMENT_PROGRAMS`]). An unset `$m` expands to nothing and
//! runs nothing: random bytes hold `!$m;` about once per 100 MiB (a false alert on huge
//! private elements before session 11). A wrapper (`env`, `nice`, `command`, `timeout`...) runs the word after its
//! options, which is judged in turn.
//!
//! Where the model reaches one of its limits it cannot tell: that is reported (a
//! warning), never taken as "not a script".

use crate::budget::Clock;

/// Quotes and expansions nested inside one word (`"$(echo "${x:-$(...)}")"`).
pub const MAX_SHELL_WORD_NESTING: usize = 64;
/// `case` commands nested inside one another, each remembering where its patterns are.
pub const MAX_SHELL_CASE_NESTING: usize = 32;
/// Here-documents opened on one line, whose bodies follow it.
pub const MAX_SHELL_HEREDOCS: usize = 16;
/// Command substitutions nested in one another (`$(echo $(sh …))`) read for the command
/// each runs; deeper is a warning. Each level's text is read again by every level
/// around it, so the work grows with this.
pub const MAX_SHELL_SUBSTITUTION_NESTING: usize = 8;

/// Line continuations (a backslash and a newline) dropped from one file's text, each
/// remembered as an offset (8 bytes per 2 bytes of input): without a bound a file of
/// `\<newline>` cost four times its size (session 24). Past it the text is read no
/// further, and what dash runs after that point is a warning (not inspected). Real
/// scripts hold hundreds; random pixel data one per 64 KiB.
pub const MAX_SHELL_LINE_CONTINUATIONS: usize = 1 << 20;

/// Bytes of a command name kept for judging it (longer names are no known command).
pub const NAME_KEPT: usize = 64;

/// Names of parameters a script gives a value that the model remembers (a `HashSet`
/// lookup per expansion). Past it every parameter counts as having a value: more
/// commands reported, never fewer.
pub const MAX_SHELL_VALUED_NAMES: usize = 4096;

/// Variables of an ordinary environment whose value is a program: `$SHELL -c …` runs a
/// shell whoever starts it, `$BASH` is bash's path where vim's `:!` runs bash. (`$_`,
/// the program the invoking shell started, is `sh` itself when bash runs `sh file`: see
/// [`Context::underscore_is_shell`].) Other unset or data-valued variables (`$PATH`,
/// `$HOME`) run nothing.
pub const ENVIRONMENT_PROGRAMS: [&[u8]; 13] = [
    b"SHELL",
    b"BASH",
    b"EDITOR",
    b"VISUAL",
    b"PAGER",
    b"MANPAGER",
    b"BROWSER",
    b"GIT_EDITOR",
    b"GIT_PAGER",
    b"SUDO_EDITOR",
    b"FCEDIT",
    b"TERMINAL",
    b"SYSTEMD_PAGER",
];

/// Variables of every shell's environment whose value is a directory a payload is
/// dropped in: the home directory and the current one. `$HOME/x` and `$PWD/x` run the
/// file `x` there, as `~/x` and `./x` do (review r24-screen: dash ran each).
pub const DROP_DIRECTORY_VARIABLES: [&[u8]; 4] = [b"$HOME", b"${HOME}", b"$PWD", b"${PWD}"];

/// Expansions in a command name whose value has to be known to judge it, deferred to the
/// end of the compound command holding them (an assignment later in a loop's body gives
/// the value the next turn uses). Past it a name counts at once.
const DEFERRED_KEPT: usize = 16;

/// Parameter expansions of one word remembered for judging it.
const PARAMS_KEPT: usize = 4;

/// Where a parameter expansion in a word gets its value from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    /// `$NAME`, `${NAME}`, `${NAME%x}`, `${NAME:+x}`: what NAME holds (its place in the
    /// bytes).
    Named(usize, usize),
    /// `$1`…`$9`, `${10}`, `$@`, `$*`: empty in a file run as a script or a `sh -c`
    /// string, filled by `set` and by a function's arguments.
    Positional,
    /// `$0`: the file's own path when `sh file` runs it, the shell itself in `sh -c`.
    Zero,
    /// A value written in the expansion (`${X:-sh}`, `${X=sh}`), or a form the model
    /// does not read (dash says "Bad substitution"): counts as a value.
    Written,
}

/// What the text being modelled runs in: who gives `$0` and the environment a value.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// `$0` is the shell (a `sh -c` string: vim's `:!`), not a file's path.
    pub zero_is_shell: bool,
    /// `$_` is the shell: bash exports the path of the program it starts as `_`, which
    /// is `sh` for `sh file` (checked with dash) and vim itself for vim's `:!`.
    pub underscore_is_shell: bool,
    /// A command runs something only with an operand written as text: its input is not
    /// the file (vim's `:!sh` gets no input from the file it reads, checked with vim),
    /// and a program given random bytes as its operand finds no such file or host.
    pub operand_needed: bool,
    /// Variables given a value by the program handing the text to the shell beyond
    /// [`ENVIRONMENT_PROGRAMS`] (vim's `:let $X = …` before an escape).
    pub environment: &'a dyn Fn(&[u8]) -> bool,
}

impl Context<'static> {
    /// A file run by `sh file` or executed without `#!`.
    pub const FILE: Context<'static> = Context {
        zero_is_shell: false,
        underscore_is_shell: true,
        operand_needed: false,
        environment: &|_| false,
    };
}

/// The names a script has given a value so far.
#[derive(Debug, Default)]
struct Valued {
    names: std::collections::HashSet<Vec<u8>>,
    /// More than [`MAX_SHELL_VALUED_NAMES`]: every name counts as valued.
    all: bool,
}

impl Valued {
    fn give(&mut self, name: &[u8]) {
        if self.all || name.is_empty() || self.names.contains(name) {
            return;
        }
        if self.names.len() >= MAX_SHELL_VALUED_NAMES {
            self.give_all();
            return;
        }
        self.names.insert(name.to_vec());
    }

    fn give_all(&mut self) {
        self.all = true;
        self.names = Default::default();
    }

    fn has(&self, name: &[u8]) -> bool {
        self.all || self.names.contains(name)
    }
}

/// Why the parse stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// dash reports a syntax error here and runs nothing more.
    Syntax,
    /// The model reached one of its limits: it cannot tell what dash does next.
    Limit(&'static str),
    /// The bytes ended inside a quote, a substitution or an expansion. At the end of a
    /// file dash reports a syntax error there; in the first window of a file read in
    /// windows the closing byte may come later (see [`reads_past`]).
    End,
}

type Step<T> = Result<T, Stop>;

/// What [`first_command_until`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// dash runs the command whose name starts here; what a signal it sends does, when
    /// the command is one of [`Acts::Signal`].
    Runs(usize, Option<Effect>),
    /// The model stopped at a limit at this offset.
    CannotTell(usize, &'static str),
}

/// A word as the shell reads it.
#[derive(Debug, Default)]
struct Word {
    start: usize,
    /// Where the word ends in the file.
    end: usize,
    /// After quote removal (NUL bytes dropped, as dash drops them), the first
    /// [`NAME_KEPT`] bytes.
    text: Name,
    /// Holds an expansion (`$NAME`, `${...}`, `$(...)`, backquotes): known only when run.
    dynamic: bool,
    /// Holds a parameter expansion (`$NAME`, `${...}`).
    param: bool,
    /// Holds an expansion of any kind, arithmetic (`$((…))`) too: with no [`Word::text`]
    /// it may expand to anything, nothing included ([`Word::only_expansions`]).
    expands: bool,
    /// Where its parameter expansions take their values from: the first few.
    params: Vec<Param>,
    /// More than [`PARAMS_KEPT`] of them: counts as having a value.
    params_unread: bool,
    /// Names that `${NAME:=…}` / `${NAME=…}` in it assign (their place in the bytes).
    assigns: Vec<(usize, usize)>,
    /// More than [`PARAMS_KEPT`] of those: every name counts as valued from here on.
    assigns_unread: bool,
    /// What its command substitutions (`$(...)`, backquotes) run: every one (each is at
    /// least three bytes of the word). Session 21: only the first four were kept, and
    /// dash ran a fifth (`x=$(true)$(true)$(true)$(true)$(sh -c …)`) unreported.
    substs: Vec<(usize, usize)>,
    /// Where the parameter expansion the word starts with is (`$HOME` of `$HOME/x`).
    leading: Option<(usize, usize)>,
    /// Holds a quote or a backslash (a reserved word is then an ordinary word).
    quoted: bool,
    /// Holds anything but line continuations.
    real: bool,
}

/// The first [`NAME_KEPT`] bytes of a word, kept in place: a word per command of a
/// file of short commands was a heap allocation each (a third of the time of 100 MB of
/// `oN;`, perf on a release build).
#[derive(Clone, Copy)]
struct Name {
    bytes: [u8; NAME_KEPT],
    len: usize,
}

impl Default for Name {
    fn default() -> Name {
        Name {
            bytes: [0; NAME_KEPT],
            len: 0,
        }
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

impl std::ops::Deref for Name {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Word {
    /// An empty word starting at `start`, keeping the room already allocated.
    fn clear(&mut self, start: usize) {
        self.start = start;
        self.end = start;
        self.text.len = 0;
        self.dynamic = false;
        self.param = false;
        self.expands = false;
        self.params.clear();
        self.params_unread = false;
        self.assigns.clear();
        self.assigns_unread = false;
        self.substs.clear();
        self.leading = None;
        self.quoted = false;
        self.real = false;
    }

    /// Whether the word is made of expansions only (`$NOPE`, `"$@"`, `${X:-}`,
    /// `$(true)`, `$((3-3))`): what it gives a command is known only when it runs, and
    /// may be nothing at all (review rv43-screen, case5 and case6).
    fn only_expansions(&self) -> bool {
        self.expands && self.text.is_empty()
    }

    fn subst(&mut self, from: usize, to: usize) {
        self.dynamic = true;
        self.expands = true;
        if from <= to {
            self.substs.push((from, to));
        }
    }

    fn param(&mut self, param: Param) {
        if self.params.len() < PARAMS_KEPT {
            self.params.push(param);
        } else {
            self.params_unread = true;
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.text.len >= NAME_KEPT {
                return;
            }
            if b != 0 {
                self.text.bytes[self.text.len] = b;
                self.text.len += 1;
            }
        }
    }
}

/// The limit a parse stopped at when `clock` passed its deadline
/// ([`Outcome::CannotTell`]); the caller names the deadline ([`Clock::reached`]).
pub const DEADLINE_REACHED: &str = "the inspection's deadline";

/// The first command dash runs from `bytes` (given to `sh`, or executed without a `#!`;
/// or text run in `context`: a `sh -c` string, an environment) whose name `hostile`
/// accepts, or `weak` accepts on a line with shell syntax. It stops once `clock` has
/// passed its deadline (the limit [`DEADLINE_REACHED`]): a whole file of three-byte
/// commands is read at tens of MB/s.
pub fn first_command_until(
    bytes: &[u8],
    hostile: &dyn Fn(&[u8]) -> bool,
    weak: &dyn Fn(&[u8]) -> bool,
    wrapper: &dyn Fn(&[u8]) -> bool,
    context: Context<'_>,
    clock: &Clock,
) -> Option<Outcome> {
    let (spliced, result, parser_pos, effect) =
        parse_spliced(bytes, hostile, weak, wrapper, context, Some(clock));
    if let Some(stopped) = spliced.stopped_at()
        && !matches!(result, Ok(Some(_)))
    {
        // The text ends where splicing stopped, not where the file does: whatever the
        // parser made of that end, what dash reads after it was not read.
        return Some(Outcome::CannotTell(stopped, "MAX_SHELL_LINE_CONTINUATIONS"));
    }
    match result {
        Ok(found) => found.map(|at| {
            Outcome::Runs(
                spliced.original(at),
                effect.filter(|&(e, _)| e == at).map(|(_, what)| what),
            )
        }),
        Err(Stop::Syntax | Stop::End) => None,
        Err(Stop::Limit(limit)) => Some(Outcome::CannotTell(
            spliced
                .original(parser_pos)
                .min(bytes.len().saturating_sub(1)),
            limit,
        )),
    }
}

/// Bytes of a file spliced before the shell model first reads it; the spliced part grows
/// fourfold while the model reads to its end (see [`Spliced::extend`]).
const FIRST_SPLICED: usize = 16 * 1024;

/// What [`parse_spliced`] gives: the splice, the parse's result, where it stopped (in
/// the spliced text), and what the signal of the command found does.
type Parsed = (Spliced, Step<Option<usize>>, usize, Option<(usize, Effect)>);

/// Parses `bytes` as dash's lexer reads them (see [`Spliced`]), splicing only as far as
/// the parse reads: dash stops at the first syntax error, in a DICOM file nearly always
/// in its header, and the pixel data after it need not be spliced (a whole-file splice
/// was half of `scan`'s time on CT slices: review r25-speed). The splice, the parse's
/// result and where it stopped (in the spliced text).
fn parse_spliced(
    bytes: &[u8],
    hostile: &dyn Fn(&[u8]) -> bool,
    weak: &dyn Fn(&[u8]) -> bool,
    wrapper: &dyn Fn(&[u8]) -> bool,
    context: Context<'_>,
    clock: Option<&Clock>,
) -> Parsed {
    let mut spliced = Spliced::lazy(bytes);
    let mut wanted = FIRST_SPLICED;
    loop {
        let whole = spliced.extend(bytes, wanted);
        let text = spliced.text(bytes);
        let mut parser = Parser::new(text, hostile, weak, wrapper);
        parser.context = context;
        parser.clock = clock;
        let result = parser.run();
        // The text ends at a newline outside quotes (see [`Spliced::extend`]): a token
        // before it ends there too, so the parse's result cannot depend on what follows.
        if whole || parser.stopped_before(&result, text.len().saturating_sub(1)) {
            let (pos, effect) = (parser.pos, parser.effect);
            return (spliced, result, pos, effect);
        }
        wanted = wanted.saturating_mul(4);
    }
}

/// The delimiter of a here-document whose `<<` ends at `at` (in the file as written): the
/// word, its quotes removed; whether any part of it was quoted (then dash keeps the body
/// as written, line continuations too: checked with dash); whether it is `<<-`.
fn heredoc_delimiter(bytes: &[u8], mut at: usize) -> (Vec<u8>, bool, bool) {
    let strip_tabs = bytes.get(at) == Some(&b'-');
    if strip_tabs {
        at += 1;
    }
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    let (word, quoted) = delimiter_word(bytes, at);
    (word, quoted, strip_tabs)
}

/// The here-document delimiter whose word starts at `at`: its quotes removed, its
/// expansions as written (dash does not expand it: `<<$E` ends at a line `$E`), its NUL
/// bytes dropped (dash drops them as it reads), however long; and whether any part of
/// it was quoted. Review r23-screen: the parser took the word's kept name (its first 64
/// bytes, expansions left out), so a longer delimiter or `$E` never ended the body, and
/// the commands dash ran after it were unread.
fn delimiter_word(bytes: &[u8], mut at: usize) -> (Vec<u8>, bool) {
    let mut word = Vec::new();
    let mut quoted = false;
    while let Some(&b) = bytes.get(at) {
        match b {
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => break,
            b'\\' if bytes.get(at + 1) == Some(&b'\n') => at += 2,
            b'\\' => {
                quoted = true;
                word.extend(bytes.get(at + 1));
                at += 2;
            }
            b'\'' | b'"' => {
                quoted = true;
                let end = memchr::memchr(b, &bytes[at + 1..]).map_or(bytes.len(), |n| at + 1 + n);
                word.extend_from_slice(&bytes[at + 1..end]);
                at = end + 1;
            }
            0 => at += 1,
            _ => {
                word.push(b);
                at += 1;
            }
        }
    }
    word.retain(|&b| b != 0);
    (word, quoted)
}

/// Whether `line` ends a here-document delimited by `delimiter`: the line as dash reads
/// it, its NUL bytes dropped (review r23-screen: dash ended a body at `E\0`, and the
/// commands after it ran unread), then its leading tabs for `<<-`.
fn is_delimiter_line(line: &[u8], delimiter: &[u8], strip_tabs: bool) -> bool {
    let mut read = line.iter().copied().filter(|&b| b != 0).peekable();
    if strip_tabs {
        while read.next_if_eq(&b'\t').is_some() {}
    }
    read.eq(delimiter.iter().copied())
}

/// Copies the body of a here-document starting at `at` into `text`, through the line
/// that is its delimiter, and returns where the body ends. A quoted delimiter keeps the
/// body as written (a `\<newline>` there is no continuation: `x\` then the delimiter
/// ends the body, and dash runs the next line); otherwise continuations are dropped
/// before the delimiter is looked for, as dash does.
fn heredoc_body(
    bytes: &[u8],
    mut at: usize,
    delimiter: &[u8],
    quoted: bool,
    strip_tabs: bool,
    text: &mut Vec<u8>,
    dropped: &mut Dropped,
) -> usize {
    while at < bytes.len() {
        let start = text.len();
        let mut newline = false;
        while let Some(&b) = bytes.get(at) {
            if !quoted && b == b'\\' {
                at = copy_escape(bytes, at, text, dropped);
                continue;
            }
            at += 1;
            if b == b'\n' {
                newline = true;
                break;
            }
            text.push(b);
        }
        let done = is_delimiter_line(&text[start..], delimiter, strip_tabs);
        if newline {
            text.push(b'\n');
        }
        if done {
            break;
        }
    }
    at.min(bytes.len())
}

/// Where the line continuations (a backslash and a newline, two bytes) were dropped
/// from a spliced text, in its offsets, at most [`MAX_SHELL_LINE_CONTINUATIONS`].
#[derive(Default)]
struct Dropped {
    offsets: Vec<usize>,
    /// Where splicing stopped, the table full, in the original bytes.
    stopped_at: Option<usize>,
}

impl Dropped {
    /// Records a continuation dropped at `at` in the spliced text, or says (false) that
    /// the table is full: the caller stops splicing at the continuation's backslash,
    /// `backslash` in the original bytes, which [`Dropped::stopped_at`] then names.
    fn continuation(&mut self, at: usize, backslash: usize) -> bool {
        if self.offsets.len() >= MAX_SHELL_LINE_CONTINUATIONS {
            self.stopped_at = Some(backslash);
            return false;
        }
        self.offsets.push(at);
        true
    }

    /// Where splicing stopped at [`MAX_SHELL_LINE_CONTINUATIONS`], in the original bytes.
    fn stopped_at(&self) -> Option<usize> {
        self.stopped_at
    }

    /// The offset in the original bytes of `at` in the spliced text.
    fn original(&self, at: usize) -> usize {
        at + 2 * self.offsets.partition_point(|&d| d <= at)
    }
}

/// Copies the escape whose backslash is at `at` to `text` as dash reads it, and returns
/// where it ends: dash drops NUL bytes before its lexer, so the backslash escapes the
/// first byte after it that is no NUL, and a backslash, NUL bytes and a newline are a
/// line continuation (review r24-screen: `s\\\0<newline>h` ran `sh`, read as an escaped
/// NUL and a name `s`). The NUL bytes are moved before the backslash, where the parser
/// passes over them as dash drops them: the text keeps its length, and offsets need no
/// table (one entry per NUL run cost 16 bytes per 2 bytes of `\\\0` pixel data). A
/// continuation is dropped; past [`MAX_SHELL_LINE_CONTINUATIONS`] splicing stops there
/// (the end of `bytes` is returned, which ends every caller's loop).
fn copy_escape(bytes: &[u8], at: usize, text: &mut Vec<u8>, dropped: &mut Dropped) -> usize {
    let escaped = past_nuls(bytes, at + 1);
    if bytes.get(escaped) == Some(&b'\n') {
        let spliced_at = text.len() + (escaped - at - 1);
        if !dropped.continuation(spliced_at, at) {
            return bytes.len();
        }
    }
    text.resize(text.len() + (escaped - at - 1), 0);
    match bytes.get(escaped) {
        Some(b'\n') => escaped + 1,
        Some(&b) => {
            text.extend_from_slice(&[b'\\', b]);
            escaped + 1
        }
        None => {
            text.push(b'\\');
            escaped
        }
    }
}

/// `bytes` as dash's lexer reads them: without the line continuations (a backslash and
/// a newline, dropped before words are made, wherever a word or an expansion is:
/// `s\<newline>h`, `$\<newline>X`, `${\<newline>X}`, `sh -\<newline>c`, all run by
/// dash, session 12), kept inside single quotes and ending a comment as any newline
/// does; NUL bytes between a backslash and what it escapes, or a `$` and what it
/// expands, are moved before it (dash drops them, and the parser passes over them).
/// Offsets found in the spliced text are mapped back to `bytes`.
struct Spliced {
    /// The spliced text, when `bytes` held a continuation or a NUL after a backslash
    /// or a `$`.
    text: Option<Vec<u8>>,
    /// Where continuations were dropped, in the spliced text's offsets.
    dropped: Dropped,
    /// Where splicing goes on, while `text` holds only the start of the file.
    resume: Option<Resume>,
}

/// The lexer's state where a splice stopped, after a newline outside quotes.
struct Resume {
    /// The offset in the original bytes.
    at: usize,
    state: In,
    heredocs: Vec<(Vec<u8>, bool, bool)>,
    arithmetic: usize,
}

/// Where the splicer's lexer is: what a backslash, a `$` or a newline means there.
#[derive(PartialEq)]
enum In {
    Plain,
    Single,
    Double,
    Comment,
}

impl Spliced {
    /// `bytes` spliced whole.
    #[cfg(test)]
    fn new(bytes: &[u8]) -> Spliced {
        let mut spliced = Spliced::lazy(bytes);
        spliced.extend(bytes, usize::MAX);
        spliced
    }

    /// Nothing spliced yet: [`Spliced::extend`] splices as much as is read.
    fn lazy(bytes: &[u8]) -> Spliced {
        let needed = [&b"\\\n"[..], b"\\\0", b"$\0"]
            .iter()
            .any(|joined| memchr::memmem::find(bytes, joined).is_some());
        Spliced {
            text: needed.then(Vec::new),
            dropped: Dropped::default(),
            resume: needed.then(|| Resume {
                at: 0,
                state: In::Plain,
                heredocs: Vec::new(),
                arithmetic: 0,
            }),
        }
    }

    /// Splices on until the text holds at least `wanted` bytes and ends at a newline
    /// outside quotes, comments and here-documents, or holds the whole file (then
    /// true).
    fn extend(&mut self, bytes: &[u8], wanted: usize) -> bool {
        let Some(Resume {
            at: mut i,
            mut state,
            // Here-documents whose bodies follow the line (delimiter, quoted, `<<-`), at
            // most as many as the parser reads.
            mut heredocs,
            // Open parentheses of `$((…))` arithmetic, where `<<` is a shift, no
            // here-document (review s12-r10: `$((1<<2))` taken for one spliced a
            // comment's end into the next line's command).
            mut arithmetic,
        }) = self.resume.take()
        else {
            return true;
        };
        let mut text = self.text.take().unwrap_or_default();
        let mut dropped = std::mem::take(&mut self.dropped);
        #[cfg(test)]
        let from = i;
        while let Some(&b) = bytes.get(i) {
            if b == b'$' && matches!(state, In::Plain | In::Double) {
                // dash drops NUL bytes before its lexer: `$\0(`, `$\0{` and `$\0((` are
                // a substitution, a parameter and arithmetic (review r24-screen: dash
                // ran `: $\0(sh -c …)`, read as a literal `$` and a syntax error).
                let next = past_nuls(bytes, i + 1);
                text.resize(text.len() + (next - i - 1), 0);
                text.push(b'$');
                i = next;
                if state == In::Plain && bytes.get(i..i + 2) == Some(b"((") {
                    arithmetic += 2;
                    text.extend_from_slice(b"((");
                    i += 2;
                }
                continue;
            }
            if state == In::Plain {
                if arithmetic > 0 && b == b'(' {
                    arithmetic += 1;
                } else if arithmetic > 0 && b == b')' {
                    arithmetic -= 1;
                }
            }
            if b == b'\n' && matches!(state, In::Plain | In::Comment) && !heredocs.is_empty() {
                text.push(b);
                i += 1;
                state = In::Plain;
                for (delimiter, quoted, strip_tabs) in std::mem::take(&mut heredocs) {
                    i = heredoc_body(
                        bytes,
                        i,
                        &delimiter,
                        quoted,
                        strip_tabs,
                        &mut text,
                        &mut dropped,
                    );
                }
                continue;
            }
            if state == In::Plain
                && arithmetic == 0
                && b == b'<'
                && bytes.get(i + 1) == Some(&b'<')
                && heredocs.len() < MAX_SHELL_HEREDOCS
            {
                heredocs.push(heredoc_delimiter(bytes, i + 2));
                text.extend_from_slice(b"<<");
                i += 2;
                continue;
            }
            match (&state, b) {
                (In::Plain | In::Double, b'\\') => {
                    i = copy_escape(bytes, i, &mut text, &mut dropped);
                    continue;
                }
                (In::Plain, b'\'') => state = In::Single,
                (In::Plain, b'"') => state = In::Double,
                (In::Plain, b'#')
                    if text.last().is_none_or(|p| {
                        matches!(p, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')')
                    }) =>
                {
                    state = In::Comment;
                }
                (In::Single, b'\'') | (In::Double, b'"') | (In::Comment, b'\n') => {
                    state = In::Plain;
                }
                _ => {}
            }
            text.push(b);
            i += 1;
            if b == b'\n'
                && state == In::Plain
                && arithmetic == 0
                && heredocs.is_empty()
                && text.len() >= wanted
            {
                // A newline outside quotes, comments and here-documents: every token
                // before it ends at it, so the parser can be given the text up to here.
                self.text = Some(text);
                self.dropped = dropped;
                self.resume = Some(Resume {
                    at: i,
                    state,
                    heredocs,
                    arithmetic,
                });
                #[cfg(test)]
                tests::SPLICED.with(|n| n.set(n.get() + (i - from)));
                return false;
            }
        }
        self.text = Some(text);
        self.dropped = dropped;
        #[cfg(test)]
        tests::SPLICED.with(|n| n.set(n.get() + i.saturating_sub(from)));
        true
    }

    fn text<'a>(&'a self, bytes: &'a [u8]) -> &'a [u8] {
        self.text.as_deref().unwrap_or(bytes)
    }

    /// Where splicing stopped at [`MAX_SHELL_LINE_CONTINUATIONS`] (the text ends there).
    fn stopped_at(&self) -> Option<usize> {
        self.dropped.stopped_at()
    }

    /// The offset in the original bytes of `at` in the spliced text.
    fn original(&self, at: usize) -> usize {
        self.dropped.original(at)
    }
}

/// Whether dash, reading `bytes` as the start of a longer file, would read on past their
/// end: no syntax error inside them (nothing, or an open quote or compound command at
/// their end), and no command found or limit reached (those are [`first_command_until`]'s).
/// A syntax error inside them ends the shell there, so nothing after them runs.
pub fn reads_past(
    bytes: &[u8],
    hostile: &dyn Fn(&[u8]) -> bool,
    weak: &dyn Fn(&[u8]) -> bool,
    wrapper: &dyn Fn(&[u8]) -> bool,
) -> bool {
    let (spliced, result, _, _) = parse_spliced(bytes, hostile, weak, wrapper, Context::FILE, None);
    // Splicing stopped at MAX_SHELL_LINE_CONTINUATIONS: the rest is unread, as a later
    // window is (the caller's warning says so).
    let unread = spliced.stopped_at().is_some() && !matches!(result, Ok(Some(_)));
    unread || matches!(result, Ok(None) | Err(Stop::End))
}

/// Commands that print a name another command runs, in a substitution used as a name.
const GENERATORS: [&[u8]; 12] = [
    b"echo",
    b"printf",
    b"cat",
    b"tr",
    b"rev",
    b"base64",
    b"xxd",
    b"sed",
    b"cut",
    b"head",
    b"expr",
    b"printenv",
];

impl<'a> Parser<'a> {
    fn new(
        bytes: &'a [u8],
        hostile: &'a dyn Fn(&[u8]) -> bool,
        weak: &'a dyn Fn(&[u8]) -> bool,
        wrapper: &'a dyn Fn(&[u8]) -> bool,
    ) -> Parser<'a> {
        Parser {
            bytes,
            hostile,
            weak,
            wrapper,
            nested: false,
            substitution_depth: 0,
            limit: None,
            pos: 0,
            reached: 0,
            command_start: true,
            redirect: false,
            input_redirect: false,
            heredoc_word: None,
            heredocs: Vec::new(),
            continued: false,
            depth: 0,
            empty: false,
            cases: Vec::new(),
            after_close: false,
            after_name: None,
            wrapped: false,
            running: None,
            assigned: false,
            line_has_syntax: false,
            weak_candidate: None,
            weak_current: false,
            weak_operand: false,
            program_candidate: None,
            name_vanished: false,
            pending: None,
            effect: None,
            dot: None,
            evaluates: None,
            finds: false,
            find_runs: false,
            context: Context::FILE,
            valued: Valued::default(),
            outer: None,
            positional: false,
            for_name: false,
            assigner: None,
            deferred: Vec::new(),
            functions: false,
            clock: None,
        }
    }
}

impl<'a> Parser<'a> {
    /// A parser of a string this one's script runs now (a command substitution): it
    /// sees the parameters given a value so far and the same context.
    fn inner<'b>(&'b self, bytes: &'b [u8], hostile: &'b dyn Fn(&[u8]) -> bool) -> Parser<'b>
    where
        'a: 'b,
    {
        let mut inner = Parser::new(bytes, hostile, &|_| false, self.wrapper);
        inner.nested = true;
        inner.substitution_depth = self.substitution_depth + 1;
        inner.context = self.context;
        inner.outer = Some(self.outer.unwrap_or(&self.valued));
        inner.valued.all = self.valued.all;
        inner.positional = self.positional;
        inner.clock = self.clock;
        inner
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaseState {
    /// After `case`: the word matched.
    Subject,
    /// Waiting for `in`.
    In,
    /// At the start of a pattern list (an optional `(` first), or `esac`.
    Pattern,
    /// After a pattern: `|` or `)`.
    PatternWord,
    /// The commands of a branch, up to `;;` or `esac`.
    Body,
}

#[derive(Debug)]
struct Case {
    /// `depth` when the case opened: it is the innermost construct while equal.
    depth: usize,
    state: CaseState,
}

struct Parser<'a> {
    bytes: &'a [u8],
    hostile: &'a dyn Fn(&[u8]) -> bool,
    weak: &'a dyn Fn(&[u8]) -> bool,
    wrapper: &'a dyn Fn(&[u8]) -> bool,
    /// Reading the inside of a command substitution (or a string run later).
    nested: bool,
    /// How many command substitutions (or strings) this text is inside of.
    substitution_depth: usize,
    /// A limit an inner text reached (its substitutions not read) and where: reported as
    /// the parse's limit at its end unless a command is found.
    limit: Option<(&'static str, usize)>,
    pos: usize,
    /// How far the parse had read when it stopped: the token it was reading, or past
    /// a newline and the here-document bodies after it (see [`Parser::stopped_before`]).
    reached: usize,
    /// The next word is a command name or a reserved word.
    command_start: bool,
    /// A redirection operator waits for its word.
    redirect: bool,
    /// The redirection being read is of the input (`<`, `<<`, `<&`, `<>`).
    input_redirect: bool,
    /// `<<` (or `<<-`, `true`) waits for its delimiter word.
    heredoc_word: Option<bool>,
    /// Delimiters (tab stripping, and whether the delimiter was quoted) of the
    /// here-documents whose bodies follow the line.
    heredocs: Vec<(Vec<u8>, bool, bool)>,
    /// The line ended in `|`, `&&`, `||` or a function header: the command goes on.
    continued: bool,
    /// Open compound commands and subshells.
    depth: usize,
    /// Nothing has run in the innermost compound yet (`( )`, `then fi` are errors).
    empty: bool,
    cases: Vec<Case>,
    /// After `)` or a closing word: only operators may follow.
    after_close: bool,
    /// The last token was a command name (where it started): `(` makes it a function.
    after_name: Option<usize>,
    /// The command name was a wrapper: its first operand is the command it runs.
    wrapped: bool,
    /// The wrapper's row of [`RUNNERS`] and how far its options are read (`None` for
    /// `find -exec`, whose next word is the command).
    running: Option<Running>,
    /// The command so far is assignments only (`X=1;` is a complete command).
    assigned: bool,
    line_has_syntax: bool,
    weak_candidate: Option<usize>,
    /// The command being read is named by a weak word.
    weak_current: bool,
    /// A weak command on this line has an operand or a redirection: `mv` or `;ls` alone
    /// does nothing an attacker wants (random bytes hold `;mv` once per few MiB).
    weak_operand: bool,
    /// A command named by a program of the environment (`$SHELL`, `$_`, `$0` in a
    /// `sh -c` string) that counts once it has an operand: started alone it reads its
    /// input, and random bytes hold `!$_ ` about once per GiB.
    program_candidate: Option<Candidate>,
    /// The command's name expanded to nothing: the next word names it.
    name_vanished: bool,
    pending: Option<usize>,
    /// What the signal of the command found sends does, where that command starts
    /// ([`Outcome::Runs`]).
    effect: Option<(usize, Effect)>,
    /// The command name was `.` (where): its operand is a script it runs.
    dot: Option<usize>,
    /// The command name was `trap` or `alias`: its operand is a string the shell runs
    /// later as a command (`trap "sh -c …" EXIT`, `alias t=sh`).
    evaluates: Option<Evaluated>,
    /// The command name was `find`: the word after `-exec`/`-execdir`/`-ok`/`-okdir` is a
    /// command it runs.
    finds: bool,
    /// A `find` read `-exec` (or another of [`FIND_RUNNERS`]): a `;` or `+` operand ends
    /// the command it runs, which is judged then as a command that ended.
    find_runs: bool,
    context: Context<'a>,
    /// Parameters given a value so far.
    valued: Valued,
    /// Those of the script around a command substitution being read.
    outer: Option<&'a Valued>,
    /// The positional parameters may hold words: after `set`, or once a function (whose
    /// body sees its arguments) is defined.
    positional: bool,
    /// After `for`: the next word is the loop's variable.
    for_name: bool,
    /// The command name gives its operands a value (`export X=…`, `read X`).
    assigner: Option<Assigner>,
    /// Command names made by expansions without a value yet, inside a compound command
    /// (where they start): judged again when it is complete.
    /// `(at, params, until_end)`: `until_end` once a function is defined (its body, and
    /// what follows, may run after any later assignment: judged at the script's end).
    deferred: Vec<(usize, Vec<Param>, bool)>,
    /// A function was defined: a name in its body runs when it is called, after
    /// assignments later in the script (`f() { $X …; }; X=sh; f`, review s11-r10).
    functions: bool,
    /// The file's deadline: the parse stops there ([`DEADLINE_REACHED`]).
    clock: Option<&'a Clock>,
}

/// A command that runs something once it has an operand (see
/// [`Parser::program_candidate`]).
#[derive(Clone, Copy, Debug)]
struct Candidate {
    at: usize,
    /// A program whose operand must be an option or a path (`$SHELL -c …`, `$0 ./x`):
    /// a shell given a bare word looks for a script of that name, which random bytes do
    /// not name.
    option_or_path: bool,
    /// A command that powers the machine off or restarts it ([`Acts::Bare`]): a time
    /// it takes (`now`, `+5`, `23:00`) counts as an option does, and so does no operand
    /// at all (`reboot` alone reboots).
    power: bool,
    /// `init` or `telinit` ([`Acts::Runlevel`]): it counts when its one operand is a
    /// runlevel that stops the machine or its services ([`is_stopping_runlevel`]).
    runlevel: bool,
    /// A command that acts given one of these operands ([`Acts::Given`]).
    given: Option<&'static [&'static [u8]]>,
    /// `kill`, `pkill`, `killall`, `killall5` ([`Acts::Signal`]): how far its command
    /// line has been read.
    kill: Option<Kill>,
    /// Operands read so far (written as text).
    operands: usize,
}

impl Candidate {
    fn program(at: usize, option_or_path: bool) -> Candidate {
        Candidate {
            at,
            option_or_path,
            power: false,
            runlevel: false,
            given: None,
            kill: None,
            operands: 0,
        }
    }

    /// Whether the command runs as read up to its end, with no operand that made it
    /// count on its way: a power command with no operand (`reboot`), `init` with a
    /// stopping runlevel as its only operand (`init 0`; `init 0 dose` is a usage error).
    fn runs_as_ended(&self) -> bool {
        (self.power && self.operands == 0)
            || (self.runlevel && self.operands == 1)
            || self.ended_effect().is_some()
    }

    /// What a signalling command judged at its end does ([`Kill::at_end`]).
    fn ended_effect(&self) -> Option<Effect> {
        self.kill.as_ref().and_then(Kill::at_end)
    }
}

/// How a command of [`POWER_COMMANDS`] powers the machine off or restarts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acts {
    /// With an option (`reboot -f`, `shutdown -h now`), a time (`shutdown now`,
    /// `shutdown +5`, `23:00`) or no operand at all (`reboot` alone on its line or before
    /// `;`, `&`, `|`): `halt`, `reboot` and `shutdown` are also words of prose, and
    /// "shutdown of the CT" takes no option, time or runlevel. Review of session 41
    /// (issue 10, item 3): the model had no rule for them.
    Bare,
    /// With a runlevel of [`is_stopping_runlevel`] as its only operand: `init 0` and
    /// `telinit 0` power off, `init 6` reboots, `init 1` / `init S` stop every service
    /// (review of session 42: clean); sysvinit's and systemd's `telinit` refuse more
    /// ("Init 0 dose" is no command, and `init 0 dose` a usage error).
    Runlevel,
    /// With one of these operands anywhere among its operands (`loginctl poweroff`,
    /// `kexec -e`, `openrc-shutdown -p now`, logind's D-Bus method named to
    /// `dbus-send`): review rv43-screen, case8, clean before.
    Given(&'static [&'static [u8]]),
    /// With any operand or none: a strong name of `crate::shell` (no word of prose),
    /// judged there (`poweroff`, `systemctl`: `systemctl stop pacs` counts too).
    Strong,
    /// `kill` sending one of [`PID1_POWER_SIGNALS`] to PID 1 (`kill -INT 1`, `kill -s
    /// RTMIN+4 1`: init reboots, halts or powers off), or a signal that ends processes
    /// to `-1`, every process (`kill -9 -1`, `kill -- -1`). Review rv45-screen case14:
    /// clean before. Any other target (`kill -9 1234`, `kill %1`) or `kill -l` is none.
    /// `pkill`, `killall` and `killall5` likewise, each read as its own reads its line
    /// ([`Signaller`]; review rv46-screen case2).
    Signal(Signaller),
}

/// Signals PID 1 answers by stopping the machine or every service, by number as Linux
/// and glibc number them (`SIGRTMIN` is 34: glibc keeps 32 and 33 for itself), with
/// the init that does: the one table of them. systemd(1), "Signals": SIGINT starts
/// ctrl-alt-del.target (a reboot), SIGRTMIN+1/+2 rescue and emergency mode (every
/// service stopped, as `init 1`), +3 halt, +4 poweroff, +5 reboot, +6 kexec, +13..+16
/// the same at once. busybox init (embedded Linux): SIGUSR1 halts, SIGUSR2 powers off,
/// SIGTERM reboots (given: `kill -TERM 1`; the default TERM is not counted); sysvinit runs its
/// `ctrlaltdel` line on SIGINT. Left out: SIGTERM to systemd re-executes it, SIGHUP
/// reloads it, SIGPWR starts sigpwr.target (empty unless a UPS tool fills it).
pub const PID1_POWER_SIGNALS: [(u8, &str); 14] = [
    (
        2,
        "SIGINT: systemd reboots (ctrl-alt-del.target), sysvinit runs ctrlaltdel",
    ),
    (10, "SIGUSR1: busybox init halts"),
    (12, "SIGUSR2: busybox init powers off"),
    (15, "SIGTERM: busybox init reboots"),
    (35, "SIGRTMIN+1: systemd enters rescue mode"),
    (36, "SIGRTMIN+2: systemd enters emergency mode"),
    (37, "SIGRTMIN+3: systemd halts"),
    (38, "SIGRTMIN+4: systemd powers off"),
    (39, "SIGRTMIN+5: systemd reboots"),
    (40, "SIGRTMIN+6: systemd reboots by kexec"),
    (47, "SIGRTMIN+13: systemd halts at once"),
    (48, "SIGRTMIN+14: systemd powers off at once"),
    (49, "SIGRTMIN+15: systemd reboots at once"),
    (50, "SIGRTMIN+16: systemd reboots by kexec at once"),
];

/// Signals every process survives by default (0 only checks, CHLD, CONT, URG and
/// WINCH are ignored): sent to `-1` they end nothing. Any other signal to `-1` ends or
/// stops every process the sender may signal (as root, all but init).
const SIGNALS_NO_PROCESS_DIES_OF: [u8; 5] = [0, 17, 18, 23, 28];

/// Linux's signal names, numbered as `kill -l` numbers them.
const SIGNAL_NAMES: [(&[u8], u8); 34] = [
    (b"HUP", 1),
    (b"INT", 2),
    (b"QUIT", 3),
    (b"ILL", 4),
    (b"TRAP", 5),
    (b"ABRT", 6),
    (b"IOT", 6),
    (b"BUS", 7),
    (b"FPE", 8),
    (b"KILL", 9),
    (b"USR1", 10),
    (b"SEGV", 11),
    (b"USR2", 12),
    (b"PIPE", 13),
    (b"ALRM", 14),
    (b"TERM", 15),
    (b"STKFLT", 16),
    (b"CHLD", 17),
    (b"CLD", 17),
    (b"CONT", 18),
    (b"STOP", 19),
    (b"TSTP", 20),
    (b"TTIN", 21),
    (b"TTOU", 22),
    (b"URG", 23),
    (b"XCPU", 24),
    (b"XFSZ", 25),
    (b"VTALRM", 26),
    (b"PROF", 27),
    (b"WINCH", 28),
    (b"IO", 29),
    (b"POLL", 29),
    (b"PWR", 30),
    (b"SYS", 31),
];

/// glibc's `SIGRTMIN` and `SIGRTMAX`.
const SIGRTMIN: u8 = 34;
const SIGRTMAX: u8 = 64;

/// The number of the signal `spec` names, as any `kill` reads it: a number, or a name
/// in any case with or without `SIG` (dash takes `int`, bash and procps `SIGINT`),
/// `RTMIN+N` or `RTMAX-N`. `None` for no signal (kill then fails and sends nothing).
fn signal_number(spec: &[u8]) -> Option<u8> {
    let number = |digits: &[u8]| -> Option<u8> {
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Leading zeros are read as the shells and procps read them: `0002` is INT
        // (review rv46-screen w12-w15).
        let first = digits
            .iter()
            .position(|&d| d != b'0')
            .unwrap_or(digits.len() - 1);
        let digits = &digits[first..];
        if digits.len() > 3 {
            return None;
        }
        let value = digits
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        u8::try_from(value).ok().filter(|&n| n <= SIGRTMAX)
    };
    if let Some(n) = number(spec) {
        return Some(n);
    }
    let upper = spec.to_ascii_uppercase();
    let name = upper.strip_prefix(b"SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNAL_NAMES.iter().find(|(known, _)| *known == name) {
        return Some(n);
    }
    match name {
        b"RTMIN" => Some(SIGRTMIN),
        b"RTMAX" => Some(SIGRTMAX),
        _ => {
            if let Some(k) = name.strip_prefix(b"RTMIN+") {
                number(k).map(|k| SIGRTMIN + k).filter(|&n| n <= SIGRTMAX)
            } else {
                let k = number(name.strip_prefix(b"RTMAX-")?)?;
                SIGRTMAX.checked_sub(k).filter(|&n| n >= SIGRTMIN)
            }
        }
    }
}

/// A process operand of `kill` as dash, bash and procps read it: blanks around it (a
/// DICOM text's CR LF line ends leave `1\r`), a `+` and leading zeros ignored, so `1\r`,
/// ` 1`, `+1` and `01` are 1, and `-01`, `-+1` and `- 1` are -1 (review rv46-screen
/// w02-w09, w16-w18). Only 1 and -1 are told apart; any other number is `None`.
fn process_number(word: &[u8]) -> Option<i8> {
    let trimmed = word.trim_ascii();
    let (negative, rest) = match trimmed.strip_prefix(b"-") {
        Some(rest) => (true, rest.trim_ascii_start()),
        None => (false, trimmed),
    };
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let first = rest.iter().position(|&d| d != b'0')?;
    if &rest[first..] != b"1" {
        return None;
    }
    Some(if negative { -1 } else { 1 })
}

/// A program that sends signals ([`Acts::Signal`]), each read as its own reads its
/// command line (review rv46-screen case2: only `kill` was read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signaller {
    /// `kill` (dash, bash, procps, util-linux): processes by number.
    Kill,
    /// procps `pkill`: processes whose name (or, `-f`, command line) an extended regular
    /// expression matches, and selectors (`-P 0`, `-u root`).
    Pkill,
    /// psmisc `killall`: processes of these names (`-r`: regular expressions).
    Killall,
    /// sysvinit's (or busybox's) `killall5`: every process but init, kernel threads and
    /// the caller's session.
    Killall5,
}

/// What a signal a command sends does: said in the finding ([`Outcome::Runs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// It reaches init (PID 1): the words of [`PID1_POWER_SIGNALS`] for the signal.
    Init(&'static str),
    /// It ends or stops every process of these words.
    Every(&'static str),
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Init(what) => write!(f, "the signal reaches init (PID 1), {what}"),
            Effect::Every(whom) => write!(f, "the signal ends or stops {whom}"),
        }
    }
}

/// The limit a parse stops at when `pkill` or `killall` signals with a pattern the model
/// cannot match ([`Kill::unjudged`]): whether it reaches init is not known.
pub const UNJUDGED_PATTERN: &str = "a pattern of pkill or killall the model does not match";

/// `kill` to `-1`.
const EVERY_SIGNALLED: &str =
    "every process the sender may signal (-1: as root, every process but init)";
/// `pkill` or `killall` with a pattern that matches every name.
const EVERY_MATCHED: &str =
    "every process (its pattern matches every name: the scanner's services with them)";
/// `killall5`.
const EVERY_BUT_SESSION: &str =
    "every process but init, kernel threads and the caller's session (killall5)";

/// What init's signal does, if it is one of [`PID1_POWER_SIGNALS`].
fn init_effect(signal: u8) -> Option<Effect> {
    PID1_POWER_SIGNALS
        .iter()
        .find(|&&(n, _)| n == signal)
        .map(|&(_, what)| Effect::Init(what))
}

/// Init's command names (what `pkill` and `killall` match by default).
const INIT_NAMES: [&[u8]; 2] = [b"systemd", b"init"];
/// Init's paths and command lines as distributions start it (what `pkill -f` matches,
/// and `killall /sbin/init` names: psmisc compares the file, links followed).
const INIT_PATHS: [&[u8]; 5] = [
    b"/sbin/init",
    b"/lib/systemd/systemd",
    b"/usr/lib/systemd/systemd",
    b"/sbin/init splash",
    b"/usr/lib/systemd/systemd --switched-root --system --deserialize 31",
];
/// Names and command lines of other processes: a pattern that matches these and init's
/// matches every process.
const OTHER_NAMES: [&[u8]; 6] = [
    b"sshd",
    b"storescp",
    b"kworker/0:1-events",
    b"postgres",
    b"x",
    b"/usr/sbin/sshd -D",
];

/// The bytes a bracket expression holds (`[s]`, `[a-z]`, `[^x]`), as a set, and where it
/// ends (past its `]`); `pattern[at]` is its `[`. `None` for a character class
/// (`[[:alpha:]]`), an equivalence class or collating element, or no closing `]`: not
/// judged.
fn bracket_set(pattern: &[u8], at: usize) -> Option<([u128; 2], usize)> {
    let mut set = [0u128; 2];
    let mut add = |b: u8| set[usize::from(b >> 7)] |= 1u128 << (b & 127);
    let mut i = at + 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *pattern.get(i)?;
        if c == b']' && !first {
            break;
        }
        first = false;
        if c == b'[' && matches!(pattern.get(i + 1), Some(b':' | b'=' | b'.')) {
            return None;
        }
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            let end = pattern[i + 2];
            if end == b'[' || end < c {
                return None;
            }
            for b in c..=end {
                add(b);
            }
            i += 3;
        } else {
            add(c);
            i += 1;
        }
    }
    if negated {
        set = [!set[0], !set[1]];
    }
    Some((set, i + 1))
}

/// Whether the extended regular expression `pattern` matches `subject` (anywhere, or
/// `whole`), as regexec does for the forms modelled: literal bytes, `\` escapes of
/// punctuation, `.`, bracket expressions (`[s]`, `[a-z]`, `[^x]`), the quantifiers `*`,
/// `+`, `?`, and `^`/`$` at the ends. `None` for any other syntax (groups, alternation,
/// braces, character classes, GNU's `\<`, `\b`, `` \` ``): not judged. Linear in
/// `pattern.len() * subject.len()` (a set of states, no backtracking).
fn regex_matches(pattern: &[u8], subject: &[u8], whole: bool, ignore_case: bool) -> Option<bool> {
    let (start, pattern) = match pattern.strip_prefix(b"^") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (end, pattern) = match pattern.strip_suffix(b"$") {
        Some(rest) if !rest.ends_with(b"\\") => (true, rest),
        _ => (false, pattern),
    };
    // Each atom is the set of bytes it matches (bit `b` of the pair).
    let byte = |b: u8| {
        let mut set = [0u128; 2];
        set[usize::from(b >> 7)] |= 1u128 << (b & 127);
        set
    };
    let mut atoms: Vec<([u128; 2], u8)> = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while let Some(&c) = pattern.get(i) {
        let atom = match c {
            b'.' => [u128::MAX; 2],
            b'[' => {
                let (set, past) = bracket_set(pattern, i)?;
                i = past - 1;
                set
            }
            b'\\' => {
                i += 1;
                let escaped = *pattern.get(i)?;
                // GNU reads `\<`, `\>`, `` \` `` and `\'` as anchors.
                if escaped.is_ascii_alphanumeric() || matches!(escaped, b'<' | b'>' | b'`' | b'\'')
                {
                    return None;
                }
                byte(escaped)
            }
            b']' | b'(' | b')' | b'{' | b'}' | b'|' | b'*' | b'+' | b'?' | b'^' | b'$' => {
                return None;
            }
            _ => byte(c),
        };
        i += 1;
        let quantifier = match pattern.get(i) {
            Some(&q @ (b'*' | b'+' | b'?')) => {
                i += 1;
                q
            }
            _ => b'1',
        };
        atoms.push((atom, quantifier));
    }
    let n = atoms.len();
    let holds = |set: [u128; 2], b: u8| set[usize::from(b >> 7)] >> (b & 127) & 1 != 0;
    let same = |set: [u128; 2], b: u8| {
        holds(set, b)
            || (ignore_case
                && (holds(set, b.to_ascii_lowercase()) || holds(set, b.to_ascii_uppercase())))
    };
    // An atom that may match nothing lets its state move on at once.
    let close = |states: &mut Vec<bool>| {
        for k in 0..n {
            if states[k] && matches!(atoms[k].1, b'*' | b'?') {
                states[k + 1] = true;
            }
        }
    };
    let (start, end) = (start || whole, end || whole);
    let mut states = vec![false; n + 1];
    states[0] = true;
    close(&mut states);
    if states[n] && !end {
        return Some(true);
    }
    for &b in subject {
        let mut next = vec![false; n + 1];
        for k in 0..n {
            if states[k] && same(atoms[k].0, b) {
                next[k + 1] = true;
                if matches!(atoms[k].1, b'*' | b'+') {
                    next[k] = true;
                }
            }
        }
        if !start {
            next[0] = true;
        }
        close(&mut next);
        if next[n] && !end {
            return Some(true);
        }
        states = next;
    }
    Some(states[n])
}

/// For each way of reading a pattern (bit `i` of the masks is reading `i`: see
/// [`Kill::pkill_reading`], [`Kill::killall_reading`]), whether it matches init and
/// whether it matches every process, and whether the model cannot tell (syntax
/// [`regex_matches`] does not judge, or a pattern of [`NAME_KEPT`] bytes or more: the
/// word kept may be cut short).
fn pattern_masks(pattern: &[u8], program: Signaller) -> (u8, u8, u8) {
    let (mut init, mut every, mut unjudged) = (0u8, 0u8, 0u8);
    let cut = pattern.len() >= NAME_KEPT;
    for reading in 0..8u8 {
        let regex = match program {
            Signaller::Pkill => true,
            Signaller::Killall => reading < 4 && reading & 1 != 0,
            _ => false,
        };
        if cut || (regex && regex_matches(pattern, b"", false, false).is_none()) {
            unjudged |= 1 << reading;
        }
        let (reaches, all) = match program {
            Signaller::Pkill => {
                let (exact, full, ignore_case) =
                    (reading & 1 != 0, reading & 2 != 0, reading & 4 != 0);
                let names: &[&[u8]] = if full { &INIT_PATHS } else { &INIT_NAMES };
                let matches = |subject: &[u8]| {
                    regex_matches(pattern, subject, exact, ignore_case).unwrap_or(false)
                };
                let reaches = names.iter().any(|name| matches(name));
                (
                    reaches,
                    reaches && OTHER_NAMES.iter().all(|name| matches(name)),
                )
            }
            Signaller::Killall if reading < 4 => {
                let (regex, ignore_case) = (reading & 1 != 0, reading & 2 != 0);
                if regex {
                    let matches = |subject: &[u8]| {
                        regex_matches(pattern, subject, false, ignore_case).unwrap_or(false)
                    };
                    let reaches = INIT_NAMES.iter().any(|name| matches(name));
                    (
                        reaches,
                        reaches && OTHER_NAMES.iter().all(|name| matches(name)),
                    )
                } else {
                    let same = |name: &&[u8]| {
                        if ignore_case {
                            name.eq_ignore_ascii_case(pattern)
                        } else {
                            *name == pattern
                        }
                    };
                    // A name with a `/` names a file, compared as a file: the path
                    // as the kernel resolves it (review rv49-screen: `/sbin/./init`,
                    // `//sbin//init`, `/proc/1/exe` were clean).
                    let file = pattern.contains(&b'/').then(|| normal_path(pattern));
                    (
                        INIT_NAMES.iter().any(same)
                            || file.is_some_and(|file| KILLALL_INIT_FILES.contains(&&*file)),
                        false,
                    )
                }
            }
            _ => (false, false),
        };
        init |= u8::from(reaches) << reading;
        every |= u8::from(all) << reading;
    }
    (init, every, unjudged)
}

/// Init's program as files psmisc's `killall` compares a name with a `/` to (the
/// link `/proc/1/exe` is init's file; `/usr/sbin/init` is `/sbin/init` where `/sbin`
/// is a link to it).
const KILLALL_INIT_FILES: [&[u8]; 6] = [
    b"/sbin/init",
    b"/usr/sbin/init",
    b"/lib/systemd/systemd",
    b"/usr/lib/systemd/systemd",
    b"/proc/1/exe",
    b"/bin/systemd",
];

/// A path with its doubled `/` and its `.` components dropped and each `..` taking the
/// component before it away (`//sbin/./init` is `/sbin/init`): as the kernel finds
/// the file where no link is on the way.
fn normal_path(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let mut normal = Vec::with_capacity(path.len());
    for part in parts {
        if !normal.is_empty() || path.starts_with(b"/") {
            normal.push(b'/');
        }
        normal.extend_from_slice(part);
    }
    normal
}

/// Whether the comma-separated `list` (a selector's value) holds `item`.
fn list_holds(list: &[u8], item: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|part| part.trim_ascii() == item)
}

/// The value of an integer the shell's arithmetic expansion computes from sums and
/// differences of numbers (`1`, `2-1`, `-1`, `0+1`; dash reads `010` as octal): the
/// forms a process number is hidden in (review rv46-screen item 2). `None` for
/// anything else.
fn arithmetic_value(expression: &[u8]) -> Option<i64> {
    let mut total: i64 = 0;
    let mut sign: i64 = 1;
    let mut number_next = true;
    let mut i = 0;
    while let Some(&b) = expression.get(i) {
        match b {
            b' ' | b'\t' | b'\n' => i += 1,
            b'+' if number_next => i += 1,
            b'-' if number_next => {
                sign = -sign;
                i += 1;
            }
            b'+' | b'-' => {
                sign = if b == b'-' { -1 } else { 1 };
                number_next = true;
                i += 1;
            }
            b'0'..=b'9' if number_next => {
                let digits = expression[i..]
                    .iter()
                    .take_while(|d| d.is_ascii_digit())
                    .count();
                let text = std::str::from_utf8(&expression[i..i + digits]).ok()?;
                let radix = if digits > 1 && b == b'0' { 8 } else { 10 };
                let value = i64::from_str_radix(text, radix).ok()?;
                total = total.checked_add(sign.checked_mul(value)?)?;
                sign = 1;
                number_next = false;
                i += digits;
            }
            _ => return None,
        }
    }
    (!number_next).then_some(total)
}

/// How far a signalling command's line has been read ([`Acts::Signal`]).
#[derive(Clone, Copy, Debug)]
struct Kill {
    program: Signaller,
    /// The signal given (`None`: the program's default).
    signal: Option<u8>,
    /// The next word is the signal (`-s`, `-n`, `--signal`).
    signal_next: bool,
    /// The next word is an option's value that selects nothing (`--queue`, killall5's
    /// `-o`).
    value_next: bool,
    /// After `--`: every word is a process (a pattern, a name).
    options_ended: bool,
    /// pkill and killall: the next word is the value of this option (its letter).
    option_value_next: Option<u8>,
    /// pkill: a word named the signal (`-INT`); procps takes a second as an option it
    /// does not know.
    signal_word: bool,
    /// Patterns (pkill) or names (killall) read.
    patterns: u8,
    /// Whether they match init, and every process, for each way of reading them
    /// ([`pattern_masks`]).
    init_mask: u8,
    every_mask: u8,
    /// For each way of reading them, whether the model cannot tell ([`pattern_masks`]).
    unjudged_mask: u8,
    /// killall `-u`: with no name it signals the user's processes (psmisc).
    killall_user: bool,
    /// pkill `-x`, `-f`, `-i`; killall `-r`, `-I`.
    exact: bool,
    full: bool,
    ignore_case: bool,
    regex: bool,
    /// pkill: a selector was given (`-P`, `-u`...): with no pattern it selects.
    selected: bool,
    /// An option leaves init out (`-u pacs`, `-n`, `-A`, killall `-y`).
    init_left_out: bool,
    /// An option keeps to a few processes (`-P 0`, `-o`, `-g 1`): not every one.
    narrowed: bool,
    /// An operand made of expansions: what it selects is not known.
    unknown: bool,
    /// killall5: words read; its first is the signal, unless it is `-o`.
    words: u8,
    /// killall5's first word was `-o`: sysvinit then reads the signal from it and fails.
    omit_first: bool,
}

/// What a word of a signalling command's line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillWord {
    /// An option, a signal or a process it leaves alone: read on.
    Read,
    /// It lists signals, or fails: nothing is sent.
    Nothing,
    /// The signal goes to PID 1 or to every process and stops the machine.
    Acts(Effect),
}

impl Kill {
    fn new(program: Signaller) -> Kill {
        Kill {
            program,
            signal: None,
            signal_next: false,
            value_next: false,
            options_ended: false,
            option_value_next: None,
            signal_word: false,
            patterns: 0,
            init_mask: 0,
            every_mask: 0,
            unjudged_mask: 0,
            killall_user: false,
            exact: false,
            full: false,
            ignore_case: false,
            regex: false,
            selected: false,
            init_left_out: false,
            narrowed: false,
            unknown: false,
            words: 0,
            omit_first: false,
        }
    }

    /// An operand made of expansions (`kill -INT $P`, `pkill $NAME`): any process.
    fn expanded(&mut self) {
        self.signal_next = false;
        self.value_next = false;
        self.option_value_next = None;
        if self.program != Signaller::Kill {
            self.unknown = true;
        }
    }

    fn read(&mut self, word: &[u8]) -> KillWord {
        if self.value_next {
            self.value_next = false;
            return KillWord::Read;
        }
        if self.signal_next {
            self.signal_next = false;
            return self.read_signal(word);
        }
        if let Some(option) = self.option_value_next.take() {
            self.select(option, word);
            return KillWord::Read;
        }
        match self.program {
            Signaller::Kill => self.read_kill(word),
            Signaller::Pkill => self.read_pkill(word),
            Signaller::Killall => self.read_killall(word),
            Signaller::Killall5 => self.read_killall5(word),
        }
    }

    /// What the command does once its line has ended, for those judged then (pkill,
    /// killall, killall5: a pattern or an option may follow the signal, and bare
    /// `killall5` acts).
    fn at_end(&self) -> Option<Effect> {
        if self.unknown || self.signal_next || self.value_next || self.option_value_next.is_some() {
            return None;
        }
        match self.program {
            Signaller::Kill => None,
            Signaller::Killall5 => {
                // sysvinit's default is KILL (busybox's TERM: both end processes).
                let signal = self.signal.unwrap_or(9);
                (!SIGNALS_NO_PROCESS_DIES_OF.contains(&signal))
                    .then_some(Effect::Every(EVERY_BUT_SESSION))
            }
            Signaller::Pkill | Signaller::Killall => {
                let signal = self.signal.unwrap_or(15);
                let (init, every) = if self.patterns == 0 {
                    // pkill with selectors only: every process they select; with
                    // neither, and killall without names, nothing is sent.
                    // psmisc's killall takes no name with `-u`: the user's processes.
                    if !(self.selected && (self.program == Signaller::Pkill || self.killall_user)) {
                        return None;
                    }
                    (true, true)
                } else {
                    let reading = if self.program == Signaller::Pkill {
                        self.pkill_reading()
                    } else {
                        self.killall_reading()
                    };
                    (
                        self.init_mask >> reading & 1 != 0,
                        self.every_mask >> reading & 1 != 0,
                    )
                };
                if every && !self.narrowed && !SIGNALS_NO_PROCESS_DIES_OF.contains(&signal) {
                    return Some(Effect::Every(EVERY_MATCHED));
                }
                if init && !self.init_left_out {
                    return init_effect(signal);
                }
                None
            }
        }
    }

    /// Whether the command would act were its pattern to match init or every process
    /// and the model cannot tell whether it does ([`pattern_masks`]): said as
    /// [`UNJUDGED_PATTERN`], never taken as "no match" (review rv49-screen: `pkill -INT
    /// '[s]ystemd'`, `'(systemd|init)'` were clean; procps reboots the machine).
    fn unjudged(&self) -> bool {
        if self.unknown
            || self.patterns == 0
            || self.signal_next
            || self.value_next
            || self.option_value_next.is_some()
            || self.at_end().is_some()
        {
            return false;
        }
        let reading = match self.program {
            Signaller::Pkill => self.pkill_reading(),
            Signaller::Killall => self.killall_reading(),
            Signaller::Kill | Signaller::Killall5 => return false,
        };
        let signal = self.signal.unwrap_or(15);
        self.unjudged_mask >> reading & 1 != 0
            && ((init_effect(signal).is_some() && !self.init_left_out)
                || (!self.narrowed && !SIGNALS_NO_PROCESS_DIES_OF.contains(&signal)))
    }

    /// pkill's way of reading its pattern: bit 0 `-x`, 1 `-f`, 2 `-i`.
    fn pkill_reading(&self) -> u8 {
        u8::from(self.exact) | u8::from(self.full) << 1 | u8::from(self.ignore_case) << 2
    }

    /// killall's way of reading its names: bit 0 `-r`, 1 `-I`.
    fn killall_reading(&self) -> u8 {
        u8::from(self.regex) | u8::from(self.ignore_case) << 1
    }

    fn read_kill(&mut self, word: &[u8]) -> KillWord {
        if word == b"--" && !self.options_ended {
            self.options_ended = true;
            return KillWord::Read;
        }
        // The signal is the first option; after it a `-N` is a process group, and `-1`
        // every process (dash and procps read them so); a signal option given again
        // replaces it, the last one sent (review rv46-screen w01: `kill -s HUP -s INT 1`).
        let signal_again = self.signal.is_some()
            && (matches!(word, b"-s" | b"-n")
                || word.starts_with(b"--signal")
                || word.strip_prefix(b"-s").is_some_and(|name| {
                    !name.is_empty() && !name[0].is_ascii_digit() && signal_number(name).is_some()
                }));
        if !self.options_ended
            && (self.signal.is_none() || signal_again)
            && word.len() > 1
            && word[0] == b'-'
        {
            let option = &word[1..];
            if let Some(long) = option.strip_prefix(b"-") {
                let (name, value) = split_long(long);
                return match (name, value) {
                    (b"signal", Some(value)) => self.read_signal(value),
                    (b"signal", None) => {
                        self.signal_next = true;
                        KillWord::Read
                    }
                    (b"queue", None) => {
                        self.value_next = true;
                        KillWord::Read
                    }
                    (b"queue", Some(_)) | (b"timeout", _) | (b"verbose", _) => KillWord::Read,
                    // --list, --table, --help, --version, or no option: nothing is sent.
                    _ => KillWord::Nothing,
                };
            }
            return match option {
                b"s" | b"n" => {
                    self.signal_next = true;
                    KillWord::Read
                }
                b"q" => {
                    self.value_next = true;
                    KillWord::Read
                }
                [b'l' | b'L', ..] => KillWord::Nothing,
                // A signal first (`-STOP`, `-sys`); else dash reads `-sINT` as getopt
                // reads it.
                [b's', rest @ ..] if signal_number(option).is_none() => self.read_signal(rest),
                _ => self.read_signal(option),
            };
        }
        match process_number(word) {
            // TERM, the default, to every process ends them all.
            Some(-1) if !SIGNALS_NO_PROCESS_DIES_OF.contains(&self.signal.unwrap_or(15)) => {
                KillWord::Acts(Effect::Every(EVERY_SIGNALLED))
            }
            // PID 1 stops the machine only on a signal given: TERM by default restarts
            // systemd, and "kill 1 in 10 clonogens" at a line's start is prose (review
            // rv46-screen case3); `kill -TERM 1` (busybox init reboots) still counts.
            Some(1) => match self.signal.and_then(init_effect) {
                Some(effect) => KillWord::Acts(effect),
                None => KillWord::Read,
            },
            _ => KillWord::Read,
        }
    }

    /// procps pkill: the first word anywhere that names a signal (`-INT`, `-9`,
    /// `-RTMIN+4`) is the signal, the rest read by getopt (options may follow the
    /// pattern); one pattern, an extended regular expression matched against the
    /// command name (`-f`: the command line), `-x` whole, `-i` in any case.
    fn read_pkill(&mut self, word: &[u8]) -> KillWord {
        // procps takes the signal word out of its arguments before getopt reads them,
        // after `--` too (review rv49-screen: `pkill -x -- -INT systemd` reboots).
        if word.len() > 1
            && word[0] == b'-'
            && let Some(n) = pkill_signal_number(&word[1..])
        {
            if self.signal_word {
                return KillWord::Nothing;
            }
            self.signal_word = true;
            self.signal = Some(n);
            return KillWord::Read;
        }
        if !self.options_ended && word.len() > 1 && word[0] == b'-' {
            if let Some(long) = word[1..].strip_prefix(b"-") {
                if long.is_empty() {
                    self.options_ended = true;
                    return KillWord::Read;
                }
                let (name, value) = split_long(long);
                // getopt_long takes a unique prefix (`--sig=INT`, `--exa`).
                let Some(name) = long_option(PKILL_LONG_OPTIONS, name) else {
                    return KillWord::Nothing;
                };
                let letter = match name {
                    b"signal" => {
                        return match value {
                            Some(value) => self.read_signal(value),
                            None => {
                                self.signal_next = true;
                                KillWord::Read
                            }
                        };
                    }
                    b"queue" => b'q',
                    b"pgroup" => b'g',
                    b"group" => b'G',
                    b"older" => b'O',
                    b"parent" => b'P',
                    b"session" => b's',
                    b"terminal" => b't',
                    b"euid" => b'u',
                    b"uid" => b'U',
                    b"pidfile" => b'F',
                    b"runstates" => b'r',
                    b"cgroup" => b'C',
                    b"ns" | b"nslist" => b'N',
                    b"echo" | b"count" | b"logpidfile" => return KillWord::Read,
                    b"full" => b'f',
                    b"ignore-case" => b'i',
                    b"exact" => b'x',
                    b"newest" => b'n',
                    b"oldest" => b'o',
                    b"ignore-ancestors" => b'A',
                    _ => return KillWord::Nothing,
                };
                if matches!(letter, b'f' | b'i' | b'x' | b'n' | b'o' | b'A') {
                    self.pkill_flag(letter);
                } else if let Some(value) = value {
                    self.select(letter, value);
                } else {
                    self.option_value_next = Some(letter);
                }
                return KillWord::Read;
            }
            // A cluster of short options (`-fx`): flags, then one taking the rest of the
            // word or the next word as its value.
            for (k, &c) in word[1..].iter().enumerate() {
                match c {
                    b'c' | b'e' | b'L' => {}
                    b'f' | b'i' | b'x' | b'n' | b'o' | b'A' => self.pkill_flag(c),
                    b'q' | b'g' | b'G' | b'O' | b'P' | b's' | b't' | b'u' | b'U' | b'F' | b'r' => {
                        let rest = &word[2 + k..];
                        if rest.is_empty() {
                            self.option_value_next = Some(c);
                        } else {
                            self.select(c, rest);
                        }
                        return KillWord::Read;
                    }
                    // `-h`, `-V`, or an option pkill does not know: nothing is sent.
                    _ => return KillWord::Nothing,
                }
            }
            return KillWord::Read;
        }
        // procps takes one pattern ("only one pattern can be provided").
        if self.patterns > 0 {
            return KillWord::Nothing;
        }
        self.pattern(word);
        KillWord::Read
    }

    fn pkill_flag(&mut self, letter: u8) {
        match letter {
            b'f' => self.full = true,
            b'i' => self.ignore_case = true,
            b'x' => self.exact = true,
            // The newest of the processes matched: a later one than init, as a rule.
            b'n' => {
                self.init_left_out = true;
                self.narrowed = true;
            }
            // The oldest: init, when it matches.
            b'o' => self.narrowed = true,
            // Init is the ancestor of every process.
            _ => self.init_left_out = true,
        }
    }

    /// A selector's value (pkill's `-P 0`, `-u root`; killall's `-u`, `-y`): whether
    /// init passes it, and whether it keeps to a few processes.
    fn select(&mut self, option: u8, value: &[u8]) {
        if option == b'u' && self.program == Signaller::Killall {
            self.killall_user = true;
        }
        let passes = match option {
            b'q' | b'o' | b'n' | b'Z' if self.program == Signaller::Killall => true,
            b'q' => return,
            // Init's parent is 0, its process group and session 1, its user root.
            b'P' => {
                self.narrowed = true;
                list_holds(value, b"0")
            }
            b'g' | b's' => {
                self.narrowed = true;
                list_holds(value, b"1")
            }
            // A user's or a group's processes, never every process (review rv49-screen:
            // `pkill -9 -u pacs`, the usual way to log a user out, alerted as a kill of
            // every process); root's take in init.
            b'u' | b'U' | b'G' => {
                self.narrowed = true;
                list_holds(value, b"root") || list_holds(value, b"0")
            }
            // Init runs in /init.scope, in the state S (sleeping), older than any.
            b'C' => {
                self.narrowed = true;
                memchr::memmem::find(value, b"init.scope").is_some()
            }
            b'r' => {
                self.narrowed = true;
                value.contains(&b'S')
            }
            // Processes in the namespaces of a given one: a container's, as a rule;
            // init's own when that one is init.
            b'N' => {
                self.narrowed = true;
                list_holds(value, b"1")
            }
            // Older than a given age: init and every long-running service.
            b'O' => true,
            // A terminal (init has none), a pid file, killall's `-y` (younger than).
            _ => {
                self.narrowed = true;
                false
            }
        };
        self.selected = true;
        if !passes {
            self.init_left_out = true;
        }
    }

    /// psmisc killall: `-s SIG`, `--signal`, or `-SIG` (a word starting with a capital
    /// or a digit, as psmisc reads it); names matched whole against the command name (a
    /// path: the file), `-I` in any case, `-r` as extended regular expressions; `-i`
    /// asks first and `-l` lists: nothing is sent.
    fn read_killall(&mut self, word: &[u8]) -> KillWord {
        if !self.options_ended && word.len() > 1 && word[0] == b'-' {
            // getopt_long_only: `-signal` is `--signal`, a single letter of its short
            // options is that one (review rv49-screen: `-signal INT`, `--sig INT`).
            let single = !word[1..].starts_with(b"-");
            let long = if single {
                let (name, _) = split_long(&word[1..]);
                let short = name.len() == 1 && b"egyoilqrsuvwZVIn".contains(&name[0]);
                (!short && long_option(KILLALL_LONG_OPTIONS, name).is_some()).then_some(&word[1..])
            } else {
                Some(&word[2..])
            };
            if let Some(long) = long {
                if long.is_empty() {
                    self.options_ended = true;
                    return KillWord::Read;
                }
                let (name, value) = split_long(long);
                let Some(name) = long_option(KILLALL_LONG_OPTIONS, name) else {
                    return KillWord::Nothing;
                };
                let letter = match name {
                    b"signal" => b's',
                    b"user" => b'u',
                    b"younger-than" => b'y',
                    b"older-than" => b'o',
                    b"ns" => b'n',
                    b"context" => b'Z',
                    b"ignore-case" => {
                        self.ignore_case = true;
                        return KillWord::Read;
                    }
                    b"regexp" => {
                        self.regex = true;
                        return KillWord::Read;
                    }
                    b"exact" | b"process-group" | b"quiet" | b"verbose" | b"wait" => {
                        return KillWord::Read;
                    }
                    _ => return KillWord::Nothing,
                };
                return self.killall_value(letter, value);
            }
            if (word[1].is_ascii_uppercase() || word[1].is_ascii_digit())
                && let Some(n) = atoi_signal_number(&word[1..])
            {
                self.signal = Some(n);
                return KillWord::Read;
            }
            for (k, &c) in word[1..].iter().enumerate() {
                match c {
                    b'e' | b'g' | b'q' | b'v' | b'w' => {}
                    b'I' => self.ignore_case = true,
                    b'r' => self.regex = true,
                    b's' | b'u' | b'y' | b'o' | b'n' | b'Z' => {
                        let rest = &word[2 + k..];
                        return self.killall_value(c, (!rest.is_empty()).then_some(rest));
                    }
                    _ => return KillWord::Nothing,
                }
            }
            return KillWord::Read;
        }
        self.pattern(word);
        KillWord::Read
    }

    fn killall_value(&mut self, letter: u8, value: Option<&[u8]>) -> KillWord {
        match (letter, value) {
            (b's', Some(value)) => self.read_signal(value),
            (b's', None) => {
                self.signal_next = true;
                KillWord::Read
            }
            (_, Some(value)) => {
                self.select(letter, value);
                KillWord::Read
            }
            (_, None) => {
                self.option_value_next = Some(letter);
                KillWord::Read
            }
        }
    }

    /// A pattern (pkill) or name (killall): whether it matches init or every process,
    /// in each way the options may yet make it read.
    fn pattern(&mut self, word: &[u8]) {
        let (init, every, unjudged) = pattern_masks(word, self.program);
        self.patterns = self.patterns.saturating_add(1);
        self.init_mask |= init;
        self.every_mask |= every;
        self.unjudged_mask |= unjudged;
    }

    /// sysvinit killall5: each word loses one `-`; `o…` takes the next as pids to
    /// omit; the signal is the number the first word begins with (sysvinit reads it
    /// from the first word whatever its place, so after a first `-o` it fails), 1 to
    /// 31; busybox also takes a name (`-TERM`). Nothing acts before the line ends.
    fn read_killall5(&mut self, word: &[u8]) -> KillWord {
        let arg = word.strip_prefix(b"-").unwrap_or(word);
        let first = self.words == 0;
        self.words = self.words.saturating_add(1);
        if arg.first() == Some(&b'o') {
            self.omit_first |= first;
            self.value_next = true;
            return KillWord::Read;
        }
        if !first {
            return if self.omit_first {
                KillWord::Nothing
            } else {
                KillWord::Read
            };
        }
        // atoi: blanks and a `+` before the number (`killall5 +9`: review rv49-screen).
        let signal = atoi_signal_number(arg);
        match signal {
            Some(n) if n > 0 => {
                self.signal = Some(n);
                KillWord::Read
            }
            _ => KillWord::Nothing,
        }
    }

    /// A signal option's value, read as the program reads it.
    fn read_signal(&mut self, spec: &[u8]) -> KillWord {
        let signal = match self.program {
            Signaller::Pkill => pkill_signal_number(spec),
            Signaller::Killall => atoi_signal_number(spec),
            Signaller::Kill | Signaller::Killall5 => signal_number(spec),
        };
        match signal {
            Some(n) => {
                self.signal = Some(n);
                KillWord::Read
            }
            None => KillWord::Nothing,
        }
    }
}

/// What a word made of one expansion gives when the shell reduces it to text written in
/// the file: an arithmetic expansion of sums and differences (`$((1))`, `"$((2-1))"`:
/// [`arithmetic_value`]), or a command substitution that echoes one plain word (`$(echo
/// 1)`, `` `echo 1` ``, `$(printf 1)`). `None` for anything else (`$P`, `$(cat x)`).
fn expanded_value(bytes: &[u8], word: &Word) -> Option<Vec<u8>> {
    let raw = bytes.get(word.start..word.end)?;
    let raw = raw
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
        .unwrap_or(raw);
    if let Some(expression) = raw
        .strip_prefix(b"$((")
        .and_then(|inner| inner.strip_suffix(b"))"))
    {
        return Some(arithmetic_value(expression)?.to_string().into_bytes());
    }
    let &[(from, to)] = word.substs.as_slice() else {
        return None;
    };
    let whole = (raw.starts_with(b"$(") && raw.ends_with(b")"))
        || (raw.starts_with(b"`") && raw.ends_with(b"`"));
    if !whole {
        return None;
    }
    let content = substitution_text(bytes, from, to)?;
    let mut parts = content
        .split(|&b| matches!(b, b' ' | b'\t' | b'\n'))
        .filter(|part| !part.is_empty());
    let (Some(b"echo" | b"printf"), Some(value), None) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_'))
        .then(|| value.to_vec())
}

/// procps pkill's long options (procps-ng 4, pgrep.c), for getopt_long's prefixes.
const PKILL_LONG_OPTIONS: &[&[u8]] = &[
    b"signal",
    b"count",
    b"cgroup",
    b"delimiter",
    b"list-name",
    b"list-full",
    b"full",
    b"pgroup",
    b"group",
    b"ignore-ancestors",
    b"ignore-case",
    b"newest",
    b"oldest",
    b"older",
    b"parent",
    b"session",
    b"terminal",
    b"euid",
    b"uid",
    b"inverse",
    b"lightweight",
    b"exact",
    b"pidfile",
    b"logpidfile",
    b"echo",
    b"runstates",
    b"ns",
    b"nslist",
    b"queue",
    b"require-handler",
    b"help",
    b"version",
];

/// psmisc killall's long options (killall.c), for getopt_long_only's prefixes.
const KILLALL_LONG_OPTIONS: &[&[u8]] = &[
    b"exact",
    b"ignore-case",
    b"process-group",
    b"younger-than",
    b"older-than",
    b"interactive",
    b"list",
    b"quiet",
    b"regexp",
    b"signal",
    b"user",
    b"verbose",
    b"version",
    b"wait",
    b"ns",
    b"context",
    b"help",
];

/// The long option `name` names as getopt_long reads it: the option itself, or the
/// one option it is a prefix of. `None` for none, or a prefix of several (getopt
/// fails: nothing is sent).
fn long_option(options: &[&'static [u8]], name: &[u8]) -> Option<&'static [u8]> {
    if let Some(&exact) = options.iter().find(|&&option| option == name) {
        return Some(exact);
    }
    let mut found = options.iter().filter(|option| option.starts_with(name));
    match (found.next(), found.next()) {
        (Some(&option), None) if !name.is_empty() => Some(option),
        _ => None,
    }
}

/// The signal procps reads from a word (without its `-`): a name, or a number as
/// strtol reads it, blanks and a `+` before it (`-+2`, `-' 2'` are INT: review
/// rv49-screen).
fn pkill_signal_number(spec: &[u8]) -> Option<u8> {
    signal_number(spec).or_else(|| {
        let number = spec.trim_ascii_start();
        let number = number.strip_prefix(b"+").unwrap_or(number);
        number
            .first()
            .is_some_and(u8::is_ascii_digit)
            .then(|| signal_number(number))
            .flatten()
    })
}

/// The signal psmisc reads from a number as atoi does (`2x` is INT: review
/// rv49-screen), or from a name.
fn atoi_signal_number(spec: &[u8]) -> Option<u8> {
    let number = spec.trim_ascii_start();
    let number = number.strip_prefix(b"+").unwrap_or(number);
    let digits = number.iter().take_while(|d| d.is_ascii_digit()).count();
    if digits > 0 {
        signal_number(&number[..digits])
    } else {
        signal_number(spec)
    }
}

/// A long option's name and its `=value`.
fn split_long(long: &[u8]) -> (&[u8], Option<&[u8]>) {
    match long.iter().position(|&b| b == b'=') {
        Some(eq) => (&long[..eq], Some(&long[eq + 1..])),
        None => (long, None),
    }
}

/// logind's methods that power the machine off, restart it or put it to sleep (a
/// scanner asleep stops acquiring as one powered off does: `systemctl suspend` is an
/// alert), and systemd's own Manager methods that do, as `dbus-send`, `gdbus` and
/// `qdbus` name them (review rv45-screen case14: the `*WithFlags` methods,
/// ScheduleShutdown, Sleep, systemd1's PowerOff and SoftReboot, qdbus were clean).
const LOGIND_POWER_METHODS: [&[u8]; 23] = [
    b"org.freedesktop.login1.Manager.PowerOff",
    b"org.freedesktop.login1.Manager.Reboot",
    b"org.freedesktop.login1.Manager.Halt",
    b"org.freedesktop.login1.Manager.KExec",
    b"org.freedesktop.login1.Manager.Suspend",
    b"org.freedesktop.login1.Manager.Hibernate",
    b"org.freedesktop.login1.Manager.HybridSleep",
    b"org.freedesktop.login1.Manager.SuspendThenHibernate",
    b"org.freedesktop.login1.Manager.PowerOffWithFlags",
    b"org.freedesktop.login1.Manager.RebootWithFlags",
    b"org.freedesktop.login1.Manager.HaltWithFlags",
    b"org.freedesktop.login1.Manager.KExecWithFlags",
    b"org.freedesktop.login1.Manager.SuspendWithFlags",
    b"org.freedesktop.login1.Manager.HibernateWithFlags",
    b"org.freedesktop.login1.Manager.HybridSleepWithFlags",
    b"org.freedesktop.login1.Manager.SuspendThenHibernateWithFlags",
    b"org.freedesktop.login1.Manager.ScheduleShutdown",
    b"org.freedesktop.login1.Manager.Sleep",
    b"org.freedesktop.systemd1.Manager.PowerOff",
    b"org.freedesktop.systemd1.Manager.Reboot",
    b"org.freedesktop.systemd1.Manager.Halt",
    b"org.freedesktop.systemd1.Manager.KExec",
    b"org.freedesktop.systemd1.Manager.SoftReboot",
];

/// The same methods as `busctl call` names them: the interface and the member are
/// operands of their own (review rv44-screen case4: `busctl call … PowerOff` was clean),
/// and the power targets systemd1's StartUnit is given (`StartUnit ss reboot.target`).
const LOGIND_POWER_MEMBERS: [&[u8]; 23] = [
    b"PowerOff",
    b"Reboot",
    b"Halt",
    b"KExec",
    b"Suspend",
    b"Hibernate",
    b"HybridSleep",
    b"SuspendThenHibernate",
    b"PowerOffWithFlags",
    b"RebootWithFlags",
    b"HaltWithFlags",
    b"KExecWithFlags",
    b"SuspendWithFlags",
    b"HibernateWithFlags",
    b"HybridSleepWithFlags",
    b"SuspendThenHibernateWithFlags",
    b"ScheduleShutdown",
    b"Sleep",
    b"SoftReboot",
    b"reboot.target",
    b"poweroff.target",
    b"halt.target",
    b"kexec.target",
];

/// Every command that powers a Linux machine off or restarts it, and when it does: the
/// one table of them (the README names these). The rule is sh's grammar, not a word
/// search: the name counts only as a command word (at a command's start, after
/// assignments, after a wrapper such as `env`, `command` or `xargs`, or as the command
/// `find -exec` runs), judged as sh runs it, its quotes and backslashes removed
/// (`'shutdown'`, `"reboot"`, `\reboot`, `s''hutdown` are the same command: review of
/// session 42, checked with dash; session 41 judged only unquoted names). sh is
/// case-sensitive, so `Shutdown` and `Reboot` are no command; "the scanner will reboot
/// at 10:40" has `the` as its command.
pub const POWER_COMMANDS: [(&[u8], Acts); 18] = [
    (b"shutdown", Acts::Bare),
    (b"reboot", Acts::Bare),
    (b"halt", Acts::Bare),
    (b"init", Acts::Runlevel),
    (b"telinit", Acts::Runlevel),
    (
        b"loginctl",
        Acts::Given(&[
            b"poweroff",
            b"reboot",
            b"halt",
            b"kexec",
            b"suspend",
            b"hibernate",
            b"hybrid-sleep",
            b"suspend-then-hibernate",
        ]),
    ),
    (b"kexec", Acts::Given(&[b"-e", b"--exec"])),
    (
        b"openrc-shutdown",
        Acts::Given(&[
            b"-p",
            b"--poweroff",
            b"-r",
            b"--reboot",
            b"-H",
            b"--halt",
            b"-k",
            b"--kexec",
        ]),
    ),
    (b"dbus-send", Acts::Given(&LOGIND_POWER_METHODS)),
    (b"gdbus", Acts::Given(&LOGIND_POWER_METHODS)),
    (b"qdbus", Acts::Given(&LOGIND_POWER_METHODS)),
    (b"busctl", Acts::Given(&LOGIND_POWER_MEMBERS)),
    (b"kill", Acts::Signal(Signaller::Kill)),
    (b"pkill", Acts::Signal(Signaller::Pkill)),
    (b"killall", Acts::Signal(Signaller::Killall)),
    (b"killall5", Acts::Signal(Signaller::Killall5)),
    (b"poweroff", Acts::Strong),
    (b"systemctl", Acts::Strong),
];

/// How `name` acts, if it is one of [`POWER_COMMANDS`] judged here.
fn power_command(name: &[u8]) -> Option<Acts> {
    POWER_COMMANDS
        .iter()
        .find(|(power, acts)| *power == name && *acts != Acts::Strong)
        .map(|&(_, acts)| acts)
}

/// Whether `word` is a runlevel that stops the machine (`0`, `6`) or its services
/// (`1`, `s`, `S`).
fn is_stopping_runlevel(word: &[u8]) -> bool {
    matches!(word, b"0" | b"1" | b"6" | b"s" | b"S")
}

/// Whether `word` is a time `shutdown` takes: `now`, `+N` (minutes), `hh:mm`.
fn is_shutdown_time(word: &[u8]) -> bool {
    match word {
        b"now" => true,
        [b'+', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        [h @ .., b':', m1, m2] => {
            (1..=2).contains(&h.len())
                && h.iter().all(u8::is_ascii_digit)
                && m1.is_ascii_digit()
                && m2.is_ascii_digit()
        }
        _ => false,
    }
}

/// What an expansion used as a command name holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    /// Nothing: the name is empty and runs nothing.
    None,
    /// A program of the environment: it counts with an operand.
    Program,
    /// Something the script gave it: a name that runs.
    Yes,
}

/// Builtins that give their operands a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Assigner {
    /// `export`, `readonly`, `local`: operands of the form `NAME=value`.
    Assignments,
    /// `read`, `getopts`: operands that are names (read gives them the next input line,
    /// which for `sh < file` is the file itself).
    Names,
}

/// How a program of [`RUNNERS`] reads its command line before the command it runs.
#[derive(Debug)]
pub struct Runner {
    pub name: &'static [u8],
    /// Short options that take an argument: the next word, or the rest of the word
    /// (`-u HOME`, `-uHOME`).
    pub short_arguments: &'static [u8],
    /// Long options that take an argument: the next word unless written `--name=value`.
    pub long_arguments: &'static [&'static [u8]],
    /// Options whose argument is a command line the program has a shell run (`su -c`,
    /// `script -c`, `flock -c`; env's `-S` splits it into the command): short letters
    /// and long names.
    pub command_short: &'static [u8],
    pub command_long: &'static [&'static [u8]],
    /// Operands before the command: `timeout DURATION`, `chroot NEWROOT`, `flock FILE`,
    /// `taskset MASK`, `chrt PRIORITY`.
    pub operands_before: usize,
    /// Whether its first other operand is the command it runs. `su USER` passes its
    /// operands to the shell as arguments and `script FILE` names its typescript: only
    /// their command option runs something, wherever it stands (getopt reads options
    /// after operands too: `su root -c reboot`).
    pub runs_operands: bool,
    /// The options (short, long) that make its operands the command it runs:
    /// `runuser -u USER CMD` runs CMD, `runuser USER ARGS` has the shell take ARGS.
    pub operands_run_by: (&'static [u8], &'static [&'static [u8]]),
    /// Whether any option of its own stands for the operands before the command:
    /// `runcon CONTEXT COMMAND`, but `runcon -t TYPE COMMAND` (coreutils: a context
    /// operand only without `-c`, `-u`, `-r`, `-t`, `-l`).
    pub options_replace_operands: bool,
    /// Whether the command it runs is one word that `sh -c` runs (`sg GROUP 'init 0'`,
    /// shadow's sg), and a lone `-` before it an option (`sg - GROUP COMMAND`).
    pub runs_a_command_line: bool,
}

const fn runs(name: &'static [u8], short: &'static [u8], long: &'static [&'static [u8]]) -> Runner {
    Runner {
        name,
        short_arguments: short,
        long_arguments: long,
        command_short: b"",
        command_long: &[],
        operands_before: 0,
        runs_operands: true,
        operands_run_by: (b"", &[]),
        options_replace_operands: false,
        runs_a_command_line: false,
    }
}

/// Every program that runs the command named by its operands (`env sh`, `nice -n 5 sh`,
/// `timeout -s KILL 9 sh`, `chroot / sh`) or by an option's argument (`su -c 'sh …'`),
/// with how its options take arguments: the one table of them (the wrapper alone is no
/// command: `time`, `command`, `nice` and `watch` are English words too). Review
/// rv44-screen case2 (checked with dash and stand-ins): an option's argument was taken
/// for the command (`timeout -s KILL 9 reboot` ran `KILL`, `env -u HOME reboot` `HOME`,
/// `chroot / reboot` `/`), and `su -c`, `script -c`, `runuser`, `systemd-run`, `pkexec`
/// were no runners. Options as the GNU coreutils, util-linux, systemd and polkit
/// manuals give them.
pub const RUNNERS: [Runner; 38] = [
    Runner {
        long_arguments: &[b"unset", b"chdir", b"argv0"],
        command_short: b"S",
        command_long: &[b"split-string"],
        ..runs(b"env", b"uCaP", &[])
    },
    runs(b"nice", b"n", &[b"adjustment"]),
    runs(b"command", b"", &[]),
    runs(b"builtin", b"", &[]),
    runs(b"time", b"fo", &[b"format", b"output"]),
    Runner {
        operands_before: 1,
        ..runs(b"timeout", b"sk", &[b"signal", b"kill-after"])
    },
    runs(b"stdbuf", b"ioe", &[b"input", b"output", b"error"]),
    runs(
        b"ionice",
        b"cnpPu",
        &[b"class", b"classdata", b"pid", b"pgid", b"uid"],
    ),
    Runner {
        operands_before: 1,
        ..runs(
            b"chrt",
            b"TPD",
            &[b"sched-runtime", b"sched-period", b"sched-deadline"],
        )
    },
    Runner {
        operands_before: 1,
        ..runs(b"taskset", b"", &[])
    },
    runs(
        b"xargs",
        b"InPLsdEa",
        &[
            b"max-args",
            b"max-procs",
            b"max-lines",
            b"max-chars",
            b"delimiter",
            b"arg-file",
            b"process-slot-var",
        ],
    ),
    Runner {
        operands_before: 1,
        ..runs(b"chroot", b"", &[b"userspec", b"groups"])
    },
    runs(
        b"unshare",
        b"SGRw",
        &[
            b"setuid",
            b"setgid",
            b"root",
            b"wd",
            b"propagation",
            b"map-user",
            b"map-group",
            b"map-users",
            b"map-groups",
        ],
    ),
    runs(
        b"nsenter",
        b"tSG",
        &[b"target", b"setuid", b"setgid", b"env"],
    ),
    Runner {
        operands_before: 1,
        command_short: b"c",
        command_long: &[b"command"],
        ..runs(
            b"flock",
            b"wE",
            &[b"timeout", b"wait", b"conflict-exit-code"],
        )
    },
    Runner {
        command_short: b"c",
        command_long: &[b"command", b"session-command"],
        runs_operands: false,
        operands_run_by: (b"u", &[b"user"]),
        ..runs(
            b"runuser",
            b"ugGsw",
            &[
                b"user",
                b"group",
                b"supp-group",
                b"shell",
                b"whitelist-environment",
            ],
        )
    },
    runs(
        b"setpriv",
        b"",
        &[
            b"reuid",
            b"regid",
            b"ruid",
            b"rgid",
            b"euid",
            b"egid",
            b"groups",
            b"inh-caps",
            b"ambient-caps",
            b"bounding-set",
            b"securebits",
            b"pdeathsig",
            b"selinux-label",
            b"apparmor-profile",
            b"landlock-access",
            b"landlock-rule",
        ],
    ),
    runs(
        b"strace",
        b"eopsuEPabIOSXU",
        &[b"output", b"attach", b"user", b"env"],
    ),
    runs(b"ltrace", b"eopsuaADFlnxw", &[b"output", b"library"]),
    runs(b"watch", b"n", &[b"interval"]),
    Runner {
        command_short: b"c",
        command_long: &[b"command", b"session-command"],
        runs_operands: false,
        ..runs(
            b"su",
            b"sgGw",
            &[b"shell", b"group", b"supp-group", b"whitelist-environment"],
        )
    },
    Runner {
        command_short: b"c",
        command_long: &[b"command"],
        runs_operands: false,
        ..runs(
            b"script",
            b"EIOBTmo",
            &[
                b"echo",
                b"log-in",
                b"log-out",
                b"log-io",
                b"log-timing",
                b"logging-format",
                b"output-limit",
            ],
        )
    },
    runs(
        b"systemd-run",
        b"upMHE",
        &[
            b"unit",
            b"property",
            b"description",
            b"slice",
            b"uid",
            b"gid",
            b"nice",
            b"working-directory",
            b"setenv",
            b"machine",
            b"host",
            b"service-type",
            b"on-active",
            b"on-boot",
            b"on-startup",
            b"on-unit-active",
            b"on-unit-inactive",
            b"on-calendar",
            b"timer-property",
            b"path-property",
            b"socket-property",
            b"expand-environment",
        ],
    ),
    runs(b"pkexec", b"", &[b"user"]),
    // Review rv45-screen case11 (sh45/r*): more programs that run their operand.
    // prlimit's resource options take their limits attached only (`-n1024`).
    runs(b"prlimit", b"po", &[b"pid", b"output"]),
    Runner {
        operands_before: 1,
        ..runs(b"setarch", b"", &[])
    },
    runs(b"linux64", b"", &[]),
    runs(b"linux32", b"", &[]),
    runs(b"choom", b"np", &[b"adjust", b"pid"]),
    runs(b"ssh-agent", b"aEPtO", &[]),
    runs(b"dbus-run-session", b"", &[b"config-file", b"dbus-daemon"]),
    runs(b"fakeroot", b"lsib", &[b"lib", b"faked"]),
    runs(b"systemd-inhibit", b"", &[b"what", b"who", b"why", b"mode"]),
    runs(
        b"systemd-cat",
        b"tp",
        &[
            b"identifier",
            b"priority",
            b"stderr-priority",
            b"level-prefix",
            b"namespace",
        ],
    ),
    runs(b"uclampset", b"mMp", &[b"pid"]),
    // `sg [-] GROUP [-c] COMMAND` (sg(1), shadow): its command goes to `sh -c`.
    Runner {
        operands_before: 1,
        command_short: b"c",
        runs_a_command_line: true,
        ..runs(b"sg", b"", &[])
    },
    // `runcon CONTEXT COMMAND`, or `runcon [-c] [-u USER] [-r ROLE] [-t TYPE] [-l
    // RANGE] COMMAND` without the context (review rv45-screen: the context was taken
    // for the command).
    Runner {
        operands_before: 1,
        options_replace_operands: true,
        ..runs(b"runcon", b"urtl", &[b"user", b"role", b"type", b"range"])
    },
    runs(
        b"run0",
        b"ugD",
        &[
            b"unit",
            b"property",
            b"description",
            b"slice",
            b"user",
            b"group",
            b"nice",
            b"chdir",
            b"setenv",
            b"background",
            b"machine",
        ],
    ),
];

impl Runner {
    /// The long option `name` stands for: itself, or the one option of this row it is a
    /// prefix of (GNU getopt_long takes any unique prefix: `env --u HOME`, `su --comm`;
    /// review rv45-screen case11). `None` when it is no option of the row, or a prefix
    /// of two (getopt_long then fails and nothing runs).
    fn long_option(&self, name: &[u8]) -> Option<&'static [u8]> {
        let all = || {
            self.command_long
                .iter()
                .chain(self.long_arguments)
                .chain(self.operands_run_by.1)
                .copied()
        };
        if let Some(exact) = all().find(|&option| option == name) {
            return Some(exact);
        }
        if name.is_empty() {
            return None;
        }
        let mut found: Option<&'static [u8]> = None;
        for option in all().filter(|option| option.starts_with(name)) {
            if found.is_some_and(|seen| seen != option) {
                return None;
            }
            found = Some(option);
        }
        found
    }
}

/// The length of the longest name of [`RUNNERS`].
pub const LONGEST_RUNNER_NAME: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < RUNNERS.len() {
        if RUNNERS[i].name.len() > longest {
            longest = RUNNERS[i].name.len();
        }
        i += 1;
    }
    longest
};

/// The row of [`RUNNERS`] for `name`.
fn runner(name: &[u8]) -> Option<&'static Runner> {
    // Every name is lower case and at most LONGEST_RUNNER_NAME bytes: most words are
    // none of them without a comparison.
    if name.len() > LONGEST_RUNNER_NAME || !name.first().is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    RUNNERS.iter().find(|runner| runner.name == name)
}

/// Whether `name` is a program of [`RUNNERS`].
pub fn is_runner(name: &[u8]) -> bool {
    runner(name).is_some()
}

/// A word skipped before a wrapper's command: an option, a number (nice's `-5`,
/// timeout's `9`) or an assignment (`env X=1`). A word with no text is none of them: a
/// variable (`find -exec $C`, `xargs $C`, `env $C`) is the command (review rv44-screen
/// case1/case7: an empty text counted as a number, and dash ran `$C`'s reboot).
fn is_option_word(word: &[u8]) -> bool {
    word.first() == Some(&b'-')
        || (!word.is_empty() && word.iter().all(u8::is_ascii_digit))
        || is_assignment(word)
}

/// What a word after a runner is to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// An option, an option's argument or an operand before the command.
    Skipped,
    /// The command it runs.
    Command,
    /// A command line it has a shell run, from this offset of the unquoted word.
    CommandString(usize),
}

/// How far a runner's command line has been read.
#[derive(Clone, Copy, Debug)]
struct Running {
    runner: &'static Runner,
    /// The next word is an option's argument: a command line when `true`.
    argument: Option<bool>,
    operands_left: usize,
    /// After `--`: no more options.
    options_ended: bool,
    /// Its first other operand is the command ([`Runner::runs_operands`], or an option
    /// of [`Runner::operands_run_by`] seen).
    operands_run: bool,
}

impl Running {
    fn new(runner: &'static Runner) -> Running {
        Running {
            runner,
            argument: None,
            operands_left: runner.operands_before,
            options_ended: false,
            operands_run: runner.runs_operands,
        }
    }

    fn role(&mut self, word: &[u8]) -> Role {
        let runner = self.runner;
        if let Some(command) = self.argument.take() {
            return if command {
                Role::CommandString(0)
            } else {
                Role::Skipped
            };
        }
        // sg's `-` (a login shell) is an option, not its group.
        if !self.options_ended && word == b"-" && runner.runs_a_command_line {
            return Role::Skipped;
        }
        if !self.options_ended && word.len() > 1 && word[0] == b'-' {
            if word == b"--" {
                self.options_ended = true;
                return Role::Skipped;
            }
            if runner.options_replace_operands {
                self.operands_left = 0;
            }
            if let Some(long) = word.strip_prefix(b"--") {
                let (name, value) = match long.iter().position(|&b| b == b'=') {
                    Some(eq) => (&long[..eq], Some(2 + eq + 1)),
                    None => (long, None),
                };
                let name = runner.long_option(name).unwrap_or(name);
                let command = runner.command_long.contains(&name);
                self.operands_run |= runner.operands_run_by.1.contains(&name);
                match value {
                    Some(from) if command => return Role::CommandString(from),
                    Some(_) => {}
                    None if command || runner.long_arguments.contains(&name) => {
                        self.argument = Some(command);
                    }
                    None => {}
                }
                return Role::Skipped;
            }
            for (k, letter) in word.iter().enumerate().skip(1) {
                self.operands_run |= runner.operands_run_by.0.contains(letter);
                let command = runner.command_short.contains(letter);
                if command || runner.short_arguments.contains(letter) {
                    if k + 1 < word.len() {
                        return if command {
                            Role::CommandString(k + 1)
                        } else {
                            Role::Skipped
                        };
                    }
                    self.argument = Some(command);
                    return Role::Skipped;
                }
            }
            return Role::Skipped;
        }
        if self.operands_left > 0 {
            self.operands_left -= 1;
            return Role::Skipped;
        }
        // GNU env reads its NAME=value operands after `--` too: an assignment is
        // never env's command (review rv45-screen case11: `env -- X=1 reboot`).
        let env_assignment = runner.name == b"env" && is_assignment(word);
        if (!self.options_ended && is_option_word(word)) || env_assignment || !self.operands_run {
            return Role::Skipped;
        }
        if runner.runs_a_command_line {
            return Role::CommandString(0);
        }
        Role::Command
    }
}

/// Builtins whose operand is a command string that dash parses and runs later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evaluated {
    /// `trap ACTION SIGNAL...`: the first operand.
    Trap,
    /// `alias NAME=VALUE...`: every operand's value.
    Alias,
}

impl Parser<'_> {
    fn run(&mut self) -> Step<Option<usize>> {
        let bytes = self.bytes;
        let mut i = 0usize;
        let mut word = Word::default();
        while let Some(&b) = bytes.get(i) {
            self.pos = i;
            self.reached = i;
            if self.clock.is_some_and(Clock::expired) {
                return Err(Stop::Limit(DEADLINE_REACHED));
            }
            match b {
                0 | b' ' | b'\t' => i += 1,
                b'\n' => {
                    i = self.newline(i + 1)?;
                    self.reached = i;
                    if let Some(at) = self.complete() {
                        return Ok(Some(at));
                    }
                    // A complete command whose substitutions were read to a limit: dash
                    // runs it before reading on (a syntax error further on stops
                    // nothing of it).
                    if let Some((reached, at)) = self.limit
                        && self.depth == 0
                        && self.cases.is_empty()
                        && !self.continued
                    {
                        self.pos = at;
                        return Err(Stop::Limit(reached));
                    }
                }
                // At the start of a token (words are read whole): a comment.
                b'#' => i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n),
                // dash drops NUL bytes before its lexer: `;\0;`, `&\0&` and `|\0|`
                // are `;;`, `&&` and `||` (review r23-screen: dash ran the command
                // after `true &\0&`, read as an empty command and the end of the file).
                b';' if bytes.get(past_nuls(bytes, i + 1)) == Some(&b';') => {
                    self.case_break()?;
                    i = past_nuls(bytes, i + 1) + 1;
                }
                b';' | b'&' | b'|' => {
                    let next = past_nuls(bytes, i + 1);
                    let doubled = b != b';' && bytes.get(next) == Some(&b);
                    if doubled {
                        i = next - 1;
                    }
                    if b == b'|' && !doubled && self.case_state() == Some(CaseState::PatternWord) {
                        self.set_case_state(CaseState::Pattern);
                    } else {
                        self.separator(b == b'|' || doubled)?;
                    }
                    i += 1 + usize::from(doubled);
                }
                b'(' => i = self.open_paren(i + 1)?,
                b')' => {
                    self.close_paren()?;
                    i += 1;
                }
                b'<' | b'>' => i = self.redirection(i)?,
                _ => {
                    // One word, read in place: moving it from call to call cost more
                    // than reading it (perf, 100 MB of `oN\n`).
                    let end = read_word(bytes, i, 0, &mut word)?;
                    // Digits right before `<` or `>` are the redirection's file
                    // descriptor (an IO_NUMBER, POSIX XCU 2.10.1), no word: review
                    // r23-screen, dash ran `2>/dev/null sh -c …`, read as a command `2`.
                    if bytes[i..end].iter().any(u8::is_ascii_digit)
                        && bytes[i..end].iter().all(|&b| b.is_ascii_digit() || b == 0)
                        && matches!(bytes.get(end), Some(b'<' | b'>'))
                    {
                        i = end;
                        continue;
                    }
                    self.backquotes_parse(&word)?;
                    if word.real {
                        self.word(&word)?;
                    }
                    i = end.max(i + 1);
                }
            }
        }
        self.pos = bytes.len();
        self.reached = bytes.len();
        // What a limit left unread is said when nothing runs (never silence).
        let unread = |parser: &mut Parser<'_>| match parser.limit {
            Some((reached, at)) => {
                parser.pos = at;
                Err(Stop::Limit(reached))
            }
            None => Ok(None),
        };
        // At the end of the file whatever is still open is a syntax error.
        if self.redirect
            || self.heredoc_word.is_some()
            || self.continued
            || self.depth > 0
            || !self.cases.is_empty()
        {
            return unread(self);
        }
        self.forget_operand_roles(); // the last command ends with the file
        self.judge_deferred(true);
        self.promote_weak();
        match self.pending {
            Some(at) => Ok(Some(at)),
            None => unread(self),
        }
    }

    /// Whether `result`, this parse's, is the same for any bytes after the first `end`:
    /// it stopped before reading them (a syntax error, a command that runs or a limit, in
    /// a token before `end` or after a newline and the here-documents it ends, all before
    /// `end`). Reading to the text's end (in a quote, a substitution or a here-document, or
    /// the last line) is no stop: there more text could change what dash does.
    fn stopped_before(&self, result: &Step<Option<usize>>, end: usize) -> bool {
        !matches!(result, Err(Stop::End)) && self.reached < end
    }

    fn innermost_case(&self) -> Option<&Case> {
        self.cases.last().filter(|c| c.depth == self.depth)
    }

    fn case_state(&self) -> Option<CaseState> {
        self.innermost_case().map(|c| c.state)
    }

    fn set_case_state(&mut self, state: CaseState) {
        if let Some(case) = self.cases.last_mut() {
            case.state = state;
        }
    }

    /// A newline at `i - 1`: here-document bodies are skipped, and the line's command is
    /// complete unless something keeps it open.
    fn newline(&mut self, mut i: usize) -> Step<usize> {
        if self.redirect
            || self.heredoc_word.is_some()
            || matches!(
                self.case_state(),
                Some(CaseState::Subject | CaseState::PatternWord)
            )
        {
            return Err(Stop::Syntax);
        }
        for (delimiter, strip_tabs, quoted) in std::mem::take(&mut self.heredocs) {
            let body = i;
            i = skip_heredoc(self.bytes, i, &delimiter, strip_tabs);
            if !quoted {
                // An unquoted delimiter: dash expands the body, and the command
                // substitutions in it run (session 21: `cat <<E`, `$(sh -c …)`, `E` ran).
                let mut expanded = Word::default();
                expanded.clear(body);
                inner_substitutions(self.bytes, body..i, 0, &mut expanded);
                expanded.end = i;
                self.judge_substitutions(&expanded);
            }
        }
        self.promote_weak();
        if self.case_state().is_none_or(|s| s == CaseState::Body) {
            self.command_start = true;
        }
        self.after_close = false;
        self.after_name = None;
        self.forget_operand_roles();
        self.assigned = false;
        Ok(i)
    }

    /// After a newline: the command found, if the complete command holding it ended.
    fn complete(&mut self) -> Option<usize> {
        if self.continued || self.depth > 0 || !self.cases.is_empty() {
            return None;
        }
        self.judge_deferred(false);
        if let Some(at) = self.pending.take() {
            return Some(at);
        }
        self.line_has_syntax = false;
        self.weak_candidate = None;
        self.weak_operand = false;
        None
    }

    /// `;`, `&`, `|`, `&&`, `||`: each needs a command before it.
    fn separator(&mut self, continues: bool) -> Step<()> {
        if (self.command_start && !self.assigned)
            || self.redirect
            || self.heredoc_word.is_some()
            || self.case_state().is_some_and(|s| s != CaseState::Body)
        {
            return Err(Stop::Syntax);
        }
        self.line_has_syntax = true;
        self.command_start = true;
        self.assigned = false;
        self.after_close = false;
        self.after_name = None;
        self.forget_operand_roles();
        self.continued = continues;
        Ok(())
    }

    /// `;;` ends a branch of the innermost `case`.
    fn case_break(&mut self) -> Step<()> {
        if self.case_state() != Some(CaseState::Body) || self.redirect {
            return Err(Stop::Syntax);
        }
        self.set_case_state(CaseState::Pattern);
        self.command_start = false;
        self.after_close = false;
        self.after_name = None;
        self.forget_operand_roles();
        Ok(())
    }

    /// `(` at `i - 1`: a case pattern's opening, a function definition, or a subshell.
    fn open_paren(&mut self, i: usize) -> Step<usize> {
        if self.case_state() == Some(CaseState::Pattern) {
            return Ok(i);
        }
        if let Some(name) = self.after_name.take() {
            // `name ( )`: blanks, then `)`, then the body (possibly on later lines).
            let close = i + self.bytes[i..]
                .iter()
                .take_while(|&&b| matches!(b, b' ' | b'\t' | 0))
                .count();
            if self.bytes.get(close) != Some(&b')') {
                return Err(Stop::Syntax);
            }
            // Its body sees the arguments of each call as positional parameters, and
            // the values given before each call.
            self.positional = true;
            self.functions = true;
            // Defining a function runs nothing: its name is not a command run here.
            if self.pending == Some(name) {
                self.pending = None;
            }
            if self.weak_candidate == Some(name) {
                self.weak_candidate = None;
            }
            if self.program_candidate.is_some_and(|c| c.at == name) {
                self.program_candidate = None;
            }
            self.line_has_syntax = true;
            self.command_start = true;
            self.continued = true;
            self.forget_operand_roles();
            return Ok(close + 1);
        }
        if self.command_start && !self.redirect && !self.after_close {
            self.depth += 1;
            self.empty = true;
            return Ok(i);
        }
        Err(Stop::Syntax)
    }

    /// `)`: a case pattern's end, or a subshell's.
    fn close_paren(&mut self) -> Step<()> {
        match self.case_state() {
            Some(CaseState::PatternWord) => {
                self.set_case_state(CaseState::Body);
                self.command_start = true;
                return Ok(());
            }
            Some(_) => return Err(Stop::Syntax),
            None => {}
        }
        let floor = self.cases.last().map_or(0, |c| c.depth);
        if self.redirect || self.empty || self.depth <= floor {
            return Err(Stop::Syntax);
        }
        self.depth -= 1;
        self.forget_operand_roles(); // `(reboot)` ends its command
        self.after_close = true;
        self.command_start = false;
        self.continued = false;
        self.after_name = None;
        Ok(())
    }

    /// A redirection operator at `i`.
    fn redirection(&mut self, i: usize) -> Step<usize> {
        if self.redirect
            || self.heredoc_word.is_some()
            || self.case_state().is_some_and(|s| s != CaseState::Body)
        {
            return Err(Stop::Syntax);
        }
        let bytes = self.bytes;
        // dash drops NUL bytes before its lexer: `<\0<` is `<<` (review r23-screen).
        let mut j = past_nuls(bytes, i + 1);
        if bytes[i] == b'<' && bytes.get(j) == Some(&b'<') {
            j = past_nuls(bytes, j + 1);
            let strip_tabs = bytes.get(j) == Some(&b'-');
            j += usize::from(strip_tabs);
            self.heredoc_word = Some(strip_tabs);
        } else if matches!(
            (bytes[i], bytes.get(j)),
            (b'>', Some(b'>' | b'&' | b'|')) | (b'<', Some(b'&' | b'>'))
        ) {
            j += 1;
        }
        self.redirect = true;
        self.input_redirect = bytes[i] == b'<';
        self.line_has_syntax = true;
        self.after_name = None;
        Ok(j)
    }

    fn word(&mut self, word: &Word) -> Step<()> {
        self.note_values(word);
        if let Some(strip_tabs) = self.heredoc_word.take() {
            if self.heredocs.len() >= MAX_SHELL_HEREDOCS {
                return Err(Stop::Limit("MAX_SHELL_HEREDOCS"));
            }
            let bytes = self.bytes.get(..word.end).unwrap_or(self.bytes);
            let (delimiter, _) = delimiter_word(bytes, word.start);
            self.heredocs.push((delimiter, strip_tabs, word.quoted));
            self.redirect = false;
            self.program_given_input();
            return Ok(());
        }
        if self.redirect {
            self.redirect = false;
            self.line_has_syntax = true;
            if std::mem::take(&mut self.input_redirect) && self.written(word) {
                self.program_given_input();
            }
            // `cat >/etc/x` writes the file's input there (`sh < file`); a `sh -c`
            // string has no such input: `!mv>x` does nothing.
            if self.weak_current && !self.context.operand_needed && self.written(word) {
                self.weak_operand = true;
            }
            self.judge_substitutions(word); // `>$(curl …)` runs curl
            return Ok(());
        }
        let reserved = |name: &[u8]| !word.quoted && !word.dynamic && *word.text == *name;
        if let Some(state) = self.case_state().filter(|s| *s != CaseState::Body) {
            // The word matched and the patterns are expanded (the patterns in order
            // until one matches): `case $(sh -c …) in` runs it (review r22-screen:
            // dash ran it, and the file was clean).
            if matches!(state, CaseState::Subject | CaseState::Pattern) {
                self.judge_substitutions(word);
            }
            let next = match state {
                CaseState::Subject => CaseState::In,
                CaseState::In if reserved(b"in") => CaseState::Pattern,
                CaseState::Pattern if reserved(b"esac") => {
                    self.cases.pop();
                    self.closed();
                    return Ok(());
                }
                CaseState::Pattern => CaseState::PatternWord,
                _ => return Err(Stop::Syntax),
            };
            self.set_case_state(next);
            return Ok(());
        }
        if self.after_close {
            return Err(Stop::Syntax); // `(x) word`, `fi word`: "word unexpected"
        }
        self.after_name = None;
        if !self.command_start {
            if std::mem::take(&mut self.name_vanished) {
                // `$m sh -c …` with m unset: the name expands to no field at all and the
                // next word is the command (checked with dash).
                self.name(word);
            } else {
                self.argument(word);
            }
            return Ok(());
        }
        if !word.quoted && !word.dynamic {
            match &*word.text {
                b"if" | b"while" | b"until" | b"{" => {
                    self.open();
                    return Ok(());
                }
                b"for" => {
                    self.open();
                    self.command_start = false; // its name and words are not commands
                    self.for_name = true;
                    return Ok(());
                }
                b"case" => {
                    if self.cases.len() >= MAX_SHELL_CASE_NESTING {
                        return Err(Stop::Limit("MAX_SHELL_CASE_NESTING"));
                    }
                    self.cases.push(Case {
                        depth: self.depth,
                        state: CaseState::Subject,
                    });
                    self.command_start = false;
                    self.continued = false;
                    return Ok(());
                }
                b"!" => return Ok(()),
                b"then" | b"do" | b"else" | b"elif" => {
                    if self.depth <= self.cases.last().map_or(0, |c| c.depth) {
                        return Err(Stop::Syntax);
                    }
                    self.empty = true;
                    return Ok(());
                }
                b"fi" | b"done" | b"}" => {
                    if self.empty || self.depth <= self.cases.last().map_or(0, |c| c.depth) {
                        return Err(Stop::Syntax);
                    }
                    self.depth -= 1;
                    self.closed();
                    return Ok(());
                }
                b"esac" => {
                    if self.case_state() != Some(CaseState::Body) {
                        return Err(Stop::Syntax);
                    }
                    self.cases.pop();
                    self.closed();
                    return Ok(());
                }
                _ => {}
            }
        }
        if is_assignment(&word.text) {
            // `VAR=value cmd`: the command comes next (or none: `VAR=value;`).
            self.give_assigned(word);
            self.assigned = true;
            self.empty = false;
            self.judge_substitutions(word); // `X=$(curl … | sh)` runs both
            return Ok(());
        }
        self.command_start = false;
        self.assigned = false;
        self.continued = false;
        self.empty = false;
        self.after_name = Some(word.start);
        self.name(word);
        Ok(())
    }

    /// What a builtin named by `word` gives a value to. A quoted or escaped name still
    /// runs the builtin (`"read" X`, `\set -- …`: only reserved words lose their meaning
    /// when quoted, checked with dash), and so does one after `command` (review s11-r10).
    /// `getopts` also gives `OPTARG` the option's argument.
    fn builtin(&mut self, word: &Word) {
        if word.dynamic {
            return;
        }
        match &*word.text {
            b"export" | b"readonly" | b"local" | b"declare" | b"typeset" => {
                self.assigner = Some(Assigner::Assignments);
            }
            b"read" => self.assigner = Some(Assigner::Names),
            b"getopts" => {
                self.assigner = Some(Assigner::Names);
                self.valued.give(b"OPTARG");
            }
            b"set" => self.positional = true,
            _ => {}
        }
    }

    /// The word that names the command: what it says about its operands, and whether it
    /// is one to report.
    fn name(&mut self, word: &Word) {
        self.builtin(word);
        self.judge(word);
        // Unquoted expansions without a value and nothing else: no field is left. So
        // for command substitutions alone, whose output may be nothing: `$(:) init 0`,
        // `` `true` reboot `` run the next word (review rv44-screen case3, checked with
        // dash); written as text only (binary headers hold chance backquotes).
        let by_parameter =
            word.param && word.substs.is_empty() && self.value_of(word) == Value::None;
        let by_substitution = !word.param && !word.substs.is_empty() && self.written(word);
        self.name_vanished =
            !word.quoted && word.text.is_empty() && (by_parameter || by_substitution);
    }

    /// `NAME=value`: NAME has a value from here on, unless the value is empty (`x=`).
    fn give_assigned(&mut self, word: &Word) {
        let raw = self.bytes.get(word.start..word.end).unwrap_or_default();
        let Some(eq) = word.text.iter().position(|&b| b == b'=') else {
            return;
        };
        let has_value = raw
            .iter()
            .position(|&b| b == b'=')
            .is_some_and(|raw_eq| raw_eq + 1 < raw.len());
        if has_value {
            let name = word.text[..eq].to_vec();
            self.valued.give(&name);
        }
    }

    /// A new command starts: what the last command's name said about its operands ends,
    /// and a command that runs as it ended ([`Candidate::runs_as_ended`]) is reported.
    fn forget_operand_roles(&mut self) {
        if let Some(candidate) = self.program_candidate
            && candidate.runs_as_ended()
            && !self.context.operand_needed
            && self.pending.is_none()
        {
            self.pending = Some(candidate.at);
            self.effect = candidate
                .ended_effect()
                .map(|effect| (candidate.at, effect));
        } else if let Some(candidate) = self.program_candidate
            && candidate.kill.as_ref().is_some_and(Kill::unjudged)
            && !self.context.operand_needed
        {
            self.limit.get_or_insert((UNJUDGED_PATTERN, candidate.at));
        }
        self.name_vanished = false;
        self.weak_current = false;
        self.program_candidate = None;
        self.assigner = None;
        self.for_name = false;
        self.wrapped = false;
        self.running = None;
        self.dot = None;
        self.evaluates = None;
        self.finds = false;
        self.find_runs = false;
    }

    fn open(&mut self) {
        self.depth += 1;
        self.empty = true;
        self.command_start = true;
        self.continued = false;
    }

    fn closed(&mut self) {
        self.after_close = true;
        self.command_start = false;
        self.continued = false;
        self.empty = false;
    }

    fn argument(&mut self, word: &Word) {
        // `find … -exec reboot \;`: the `;` (or `+`) ends the command `find` runs, which
        // is judged as it ended (`reboot` alone reboots; review rv43-screen, case7).
        if self.find_runs && matches!(&*word.text, b";" | b"+") {
            self.find_runs = false;
            if let Some(candidate) = self.program_candidate.take()
                && candidate.runs_as_ended()
                && !self.context.operand_needed
                && self.pending.is_none()
            {
                self.pending = Some(candidate.at);
                self.effect = candidate
                    .ended_effect()
                    .map(|effect| (candidate.at, effect));
            }
            return;
        }
        // `find … -exec reboot {} \;`: the path find puts there is an operand systemd's
        // reboot takes as its parameter and busybox's ignores; both reboot (review
        // rv44-screen case1). Not counted, so the command is judged as given none.
        if self.find_runs && &*word.text == b"{}" {
            return;
        }
        if self.written(word) {
            self.an_operand(word);
        }
        if std::mem::take(&mut self.for_name) {
            let name = word.text.to_vec();
            self.valued.give(&name);
        }
        match self.assigner {
            Some(Assigner::Assignments) if is_assignment(&word.text) => self.give_assigned(word),
            Some(Assigner::Names) if word.text.first().is_some_and(|&b| b != b'-') => {
                let name = word.text.to_vec();
                self.valued.give(&name);
            }
            _ => {}
        }
        if let Some(at) = self.dot.take() {
            // `. FILE` runs FILE as a script in this shell (`. /dev/stdin <<E` runs the
            // here-document). Only a path counts: a bare name is looked up in PATH, where
            // an attacker's file is not, and ". Impression: normal" starts report lines;
            // a path from the root, the current or the home directory (`. a/b` needs a
            // directory `a` where the shell runs: random bytes hold `!. 'a/b'`).
            if self.pending.is_none()
                && word.text.contains(&b'/')
                && matches!(word.text.first(), Some(b'/' | b'.' | b'~'))
                && self.written(word)
            {
                self.pending = Some(at);
            }
        }
        if let Some(evaluated) = self.evaluates {
            self.judge_evaluated(evaluated, word);
        }
        if self.finds && FIND_RUNNERS.contains(&&*word.text) {
            self.wrapped = true;
            self.running = None;
            self.find_runs = true;
        }
        if self.wrapped {
            let role = match self.running.as_mut() {
                Some(running) => running.role(&word.text),
                None if is_option_word(&word.text) => Role::Skipped,
                None => Role::Command,
            };
            match role {
                Role::Skipped => {}
                Role::Command => {
                    self.wrapped = false;
                    self.running = None;
                    self.builtin(word); // `command read X`, `command set -- …`
                    self.judge(word);
                }
                Role::CommandString(from) => self.judge_command_string(word, from),
            }
        }
        if word.dynamic || (word.text.first() == Some(&b'/') && word.text.len() > 1) {
            self.line_has_syntax = true;
        }
        self.judge_substitutions(word); // `: $(sh -c …)`, `echo "$(wget …)"`
    }

    /// dash parses a backquoted substitution's text as a script where it reads it: a
    /// quote left open in it (a chance backquote in an element's header paired with one
    /// in a text value, an apostrophe between them) is a syntax error of the whole file,
    /// and dash runs nothing after it (review s19-r10: a processing note with backquotes
    /// in a CT was an alert for commands dash never reached). Read at the top level only.
    fn backquotes_parse(&self, word: &Word) -> Step<()> {
        if self.nested {
            return Ok(());
        }
        for &(from, to) in &word.substs {
            if from == 0 || self.bytes.get(from - 1) != Some(&b'`') {
                continue;
            }
            // Parsed as dash parses it, its escaped backquotes and dollars unescaped.
            let Some(content) = substitution_text(self.bytes, from, to) else {
                continue;
            };
            let never = |_: &[u8]| false;
            let mut inner = self.inner(&content, &never);
            if matches!(inner.run(), Err(Stop::Syntax | Stop::End)) {
                return Err(Stop::Syntax);
            }
        }
        Ok(())
    }

    /// A command substitution runs wherever its word stands (an assignment, an argument,
    /// a redirection target), not only in a command name: a hostile command in one is
    /// reported. Read [`MAX_SHELL_SUBSTITUTION_NESTING`] deep (session 21: dash ran
    /// `x=$(echo $(sh -c …))`, read one level deep), and only when the substitution is
    /// written as text (binary DICOM headers hold chance backquotes); the bytes around it
    /// in its word may be binary (an element's header).
    fn judge_substitutions(&mut self, word: &Word) {
        if self.pending.is_some() || word.substs.is_empty() {
            return;
        }
        if self.substitution_depth >= MAX_SHELL_SUBSTITUTION_NESTING {
            self.limit
                .get_or_insert(("MAX_SHELL_SUBSTITUTION_NESTING", word.start));
            return;
        }
        let hostile = self.hostile;
        let limit = std::cell::Cell::new(None);
        let runs = |content: &[u8]| {
            let mut inner = self.inner(content, hostile);
            match inner.run() {
                Ok(Some(_)) => true,
                Err(Stop::Limit(reached)) => {
                    limit.set(limit.get().or(Some(reached)));
                    false
                }
                _ => false,
            }
        };
        if let Some(&(from, _)) = word.substs.iter().find(|&&(from, to)| {
            substitution_text(self.bytes, from, to)
                .is_some_and(|content| is_text(&content) && runs(&content))
        }) {
            // From the substitution when binary bytes lead the word (see `judge`).
            self.pending = Some(if self.written(word) { word.start } else { from });
        } else if let Some(reached) = limit.get() {
            self.limit.get_or_insert((reached, word.start));
        }
    }

    /// The operand of `trap` or `alias` is a command string: dash parses and runs it
    /// when the trap fires or the alias is used, so it is read as a script (one level
    /// deep, like a command substitution).
    fn judge_evaluated(&mut self, evaluated: Evaluated, word: &Word) {
        if self.pending.is_some() || self.nested {
            return;
        }
        let raw = self.bytes.get(word.start..word.end).unwrap_or_default();
        let value = match evaluated {
            Evaluated::Trap => {
                // Only the first operand is the action; the rest are signal names.
                self.evaluates = None;
                raw
            }
            Evaluated::Alias => match raw.iter().position(|&b| b == b'=') {
                Some(eq) => &raw[eq + 1..],
                None => return,
            },
        };
        let value = unquoted(value);
        let hostile = self.hostile;
        let mut inner = self.inner(&value, hostile);
        // It runs later (at the trap's signal, where the alias is used): any parameter
        // may have a value by then.
        inner.valued.all = true;
        inner.positional = true;
        if matches!(inner.run(), Ok(Some(_))) {
            self.pending = Some(word.start);
        }
    }

    /// The argument of a runner's command option (`su -c CMD`, `script -qc CMD`,
    /// `flock x -c CMD`, `env -S CMD`), from `from` of the word as written once unquoted:
    /// a command line the program has a shell run (env splits it as one), read as a
    /// script now, as a command substitution is, to the same depth.
    fn judge_command_string(&mut self, word: &Word, from: usize) {
        if self.pending.is_some() || !self.written(word) {
            return;
        }
        if self.substitution_depth >= MAX_SHELL_SUBSTITUTION_NESTING {
            self.limit
                .get_or_insert(("MAX_SHELL_SUBSTITUTION_NESTING", word.start));
            return;
        }
        let raw = self.bytes.get(word.start..word.end).unwrap_or_default();
        let value = unquoted(raw);
        let Some(command) = value.get(from..) else {
            return;
        };
        let hostile = self.hostile;
        let mut inner = self.inner(command, hostile);
        match inner.run() {
            Ok(Some(_)) => self.pending = Some(word.start),
            Err(Stop::Limit(reached)) => {
                self.limit.get_or_insert((reached, word.start));
            }
            _ => {}
        }
    }

    /// Whether the command name in `word` is one to report.
    fn judge(&mut self, word: &Word) {
        if self.pending.is_some() {
            return;
        }
        // A name made by an expansion is unknown until it runs: it counts when it is
        // written as text (an attacker's `${X}h`), not when the expansion is a run of
        // binary bytes that happens to hold a `$` or a backquote (DICOM headers do).
        let written = self.written(word);
        let value = if word.param && written {
            self.value_of(word)
        } else {
            Value::None
        };
        let by_parameter = value == Value::Yes;
        if value == Value::Program && self.program_candidate.is_none() {
            self.program_candidate = Some(Candidate::program(word.start, true));
        }
        if word.param
            && written
            && value == Value::None
            && (self.depth > 0 || !self.cases.is_empty())
        {
            // `while :; do $x; x=sh; done`: a later turn has the value.
            if self.deferred.len() < DEFERRED_KEPT {
                self.deferred
                    .push((word.start, word.params.clone(), self.functions));
            } else {
                self.pending = Some(word.start);
            }
        }
        // A substitution is judged by its own text: a value written right after an
        // element's binary header (`` `sh -c …` `` as a whole UT value) is one word with
        // those header bytes, and dash runs the substitution all the same.
        // Inside a substitution too (review r22-screen: dash ran `` x=$(`echo sh` -c …) ``
        // and `x=$($(sh -c …))`), to MAX_SHELL_SUBSTITUTION_NESTING; past it a warning.
        let by_substitution = if word.substs.is_empty() {
            None
        } else if self.substitution_depth >= MAX_SHELL_SUBSTITUTION_NESTING {
            self.limit
                .get_or_insert(("MAX_SHELL_SUBSTITUTION_NESTING", word.start));
            None
        } else {
            let mut reached = None;
            let found = word.substs.iter().find_map(|&(from, to)| {
                substitution_text(self.bytes, from, to)
                    .filter(|content| {
                        is_text(content) && self.generates_a_name(content, &mut reached)
                    })
                    .map(|_| from)
            });
            if let (None, Some(reached)) = (found, reached) {
                self.limit.get_or_insert((reached, word.start));
            }
            found
        };
        // Reported from the word, or from the substitution when binary bytes lead the
        // word: the finding then quotes the command, not the header.
        let at = match by_substitution {
            Some(from) if !written => from,
            _ => word.start,
        };
        let by_substitution = by_substitution.is_some();
        if *word.text == *b"." && !word.quoted {
            self.dot = Some(word.start);
        } else if !word.quoted && (*word.text == *b"trap" || *word.text == *b"alias") {
            self.evaluates = Some(if *word.text == *b"trap" {
                Evaluated::Trap
            } else {
                Evaluated::Alias
            });
        } else if !word.quoted && *word.text == *b"find" {
            self.finds = true;
        } else if let Some(acts) = power_command(&word.text)
            && self.program_candidate.is_none()
        {
            // Quoted or escaped, the name is the same command to sh (see
            // [`POWER_COMMANDS`]).
            self.program_candidate = Some(Candidate {
                power: acts == Acts::Bare,
                runlevel: acts == Acts::Runlevel,
                given: match acts {
                    Acts::Given(operands) => Some(operands),
                    _ => None,
                },
                kill: match acts {
                    Acts::Signal(program) => Some(Kill::new(program)),
                    _ => None,
                },
                ..Candidate::program(word.start, true)
            });
            // `kill` is also a weak name of `crate::shell` (`kill $(pidof x) 2>&1`
            // counts by the line's syntax): it stays one.
            if (self.weak)(&word.text) {
                self.weak_candidate = Some(word.start);
                self.weak_current = true;
            }
        } else if by_parameter
            || by_substitution
            || self.in_drop_directory(word) == Some(DropFile::Program)
            || (self.hostile)(&word.text)
        {
            if !self.context.operand_needed {
                self.pending = Some(at);
            } else if self.program_candidate.is_none() {
                self.program_candidate = Some(Candidate::program(word.start, false));
            }
        } else if (self.wrapper)(&word.text) {
            self.wrapped = true;
            self.running = runner(&word.text).map(Running::new);
        } else if (self.weak)(&word.text)
            || self.in_drop_directory(word) == Some(DropFile::Configuration)
        {
            self.weak_candidate = Some(word.start);
            self.weak_current = true;
        }
    }

    /// What `word` names in a directory of [`DROP_DIRECTORY_VARIABLES`], if it starts
    /// with one, written as text, and goes on with a path to a name.
    fn in_drop_directory(&self, word: &Word) -> Option<DropFile> {
        let (from, to) = word.leading?;
        let variable = self.bytes.get(from..to).unwrap_or_default();
        let alone = word.params.len() == 1 && word.substs.is_empty();
        if DROP_DIRECTORY_VARIABLES.contains(&variable) && alone {
            names_a_file(&word.text)
        } else {
            None
        }
    }

    /// Whether an expansion in `word` can have a value (see [`Param`]): what
    /// [`Parser::judge`] needs before a name made by expansions runs anything.
    fn value_of(&self, word: &Word) -> Value {
        if word.params_unread {
            return Value::Yes;
        }
        match word
            .params
            .iter()
            .map(|&param| self.param_value(param))
            .max()
            .unwrap_or(Value::None)
        {
            // A program's path with text added (`$SHELL.2`) names no program.
            Value::Program if !word.text.is_empty() => Value::None,
            value => value,
        }
    }

    fn param_value(&self, param: Param) -> Value {
        let yes = |has: bool| if has { Value::Yes } else { Value::None };
        match param {
            Param::Named(from, to) => {
                let name = self.bytes.get(from..to).unwrap_or_default();
                // dash gives IFS its value (blank, tab, newline) in every shell: a name
                // split by it (`sh${IFS}-c${IFS}…`) runs its first field (review
                // r22-screen: dash ran it, and the file was clean).
                if self.valued.has(name)
                    || self.outer.is_some_and(|outer| outer.has(name))
                    || (self.context.environment)(name)
                    || name == b"IFS"
                {
                    Value::Yes
                } else if ENVIRONMENT_PROGRAMS.contains(&name)
                    || (name == b"_" && self.context.underscore_is_shell)
                {
                    Value::Program
                } else {
                    Value::None
                }
            }
            Param::Positional => yes(self.positional),
            Param::Zero if self.context.zero_is_shell => Value::Program,
            Param::Zero => Value::None,
            Param::Written => Value::Yes,
        }
    }

    /// Names made by expansions inside the compound command just completed: those whose
    /// parameters were given a value in it run.
    /// At a complete command (`at_end` false) those of function bodies wait for the
    /// script's end (`at_end`).
    fn judge_deferred(&mut self, at_end: bool) {
        for (at, params, until_end) in std::mem::take(&mut self.deferred) {
            if until_end && !at_end {
                self.deferred.push((at, params, until_end));
                continue;
            }
            if self.pending.is_none() && params.iter().any(|&p| self.param_value(p) != Value::None)
            {
                self.pending = Some(at);
            }
        }
    }

    /// What `word` gives a value to: `${X:=…}` anywhere, the operands of an assigner,
    /// a `for` loop's variable.
    fn note_values(&mut self, word: &Word) {
        if word.assigns_unread {
            self.valued.give_all();
        }
        for &(from, to) in &word.assigns {
            let name = self.bytes.get(from..to).unwrap_or_default();
            self.valued.give(name);
        }
    }

    /// Whether a command substitution in a command name runs a command that writes the
    /// name (`$(echo sh)`, `` `printf %s sh` ``) or a hostile command itself; a limit
    /// the reading reached is put in `reached`.
    fn generates_a_name(&self, content: &[u8], reached: &mut Option<&'static str>) -> bool {
        let hostile = self.hostile;
        let names = |name: &[u8]| hostile(name) || GENERATORS.contains(&name);
        let mut inner = self.inner(content, &names);
        match inner.run() {
            Ok(Some(_)) => true,
            Err(Stop::Limit(limit)) => {
                reached.get_or_insert(limit);
                false
            }
            _ => false,
        }
    }

    /// Whether `word` is written as text (printable ASCII): what an attacker writes, and
    /// what a run of binary bytes that happens to hold a `$`, a `/` or a backquote is not.
    fn written(&self, word: &Word) -> bool {
        is_written(self.bytes.get(word.start..word.end).unwrap_or_default())
    }

    /// The command being read gets its input from the script (`$SHELL <<E`, `$SHELL <
    /// ./x`): a shell named by the environment then runs that input (review s11-r10:
    /// checked with dash). Not in a `sh -c` string (vim's `:!`), whose here-documents
    /// cannot hold a line.
    fn program_given_input(&mut self) {
        if self.context.operand_needed {
            return;
        }
        if let Some(candidate) = self.program_candidate.take()
            && self.pending.is_none()
        {
            self.pending = Some(candidate.at);
        }
    }

    /// An operand (written as text) of the command being read.
    fn an_operand(&mut self, word: &Word) {
        if self.weak_current {
            self.weak_operand = true;
        }
        let option_or_path = matches!(word.text.first(), Some(b'-' | b'/' | b'.' | b'~'))
            || word.text.contains(&b'/');
        if let Some(candidate) = self.program_candidate.as_mut() {
            candidate.operands += 1;
        }
        // Made of expansions only, the operand may be a stopping runlevel, a time or
        // nothing (`L=0; init $L`, `T=now; shutdown $T`, `reboot $NOPE`: dash runs
        // them, review rv43-screen): the command counts, as the first operand of a power
        // command (after a written one, `halt the ${X} infusion`, it takes none).
        let may_act = word.only_expansions();
        // An empty word written as quotes (`reboot ''`, `reboot ""`) is an empty
        // operand: systemd's reboot takes it as its (empty) parameter, busybox's ignores
        // it; both reboot (review rv44-screen case3, checked with dash).
        let empty = word.text.is_empty() && word.quoted && !word.expands;
        if let Some(candidate) = self.program_candidate.as_mut()
            && let Some(kill) = candidate.kill.as_mut()
        {
            // An operand made of expansions (`kill -INT $P`) is any process: not judged,
            // unless the shell reduces it to a number or a word written in the file
            // (`$((1))`, `$((2-1))`, `$(echo 1)`: review rv46-screen item 2).
            let read = if may_act {
                match expanded_value(self.bytes, word) {
                    Some(value) => kill.read(&value),
                    None => {
                        // A signal or value made of expansions is read as unknown.
                        kill.expanded();
                        KillWord::Read
                    }
                }
            } else {
                kill.read(&word.text)
            };
            let at = candidate.at;
            match read {
                KillWord::Read => {}
                KillWord::Nothing => self.program_candidate = None,
                KillWord::Acts(effect) => {
                    self.program_candidate = None;
                    if self.pending.is_none() {
                        self.pending = Some(at);
                        self.effect = Some((at, effect));
                    }
                }
            }
        } else if let Some(candidate) = self.program_candidate
            && let Some(acting) = candidate.given
        {
            // Any other operand leaves it waiting for one that acts (`kexec -l x` loads).
            // An option's value counts as the operand it is (`--method=…Reboot`).
            let value = word
                .text
                .iter()
                .position(|&b| b == b'=')
                .filter(|_| word.text.first() == Some(&b'-'))
                .map_or(&*word.text, |eq| &word.text[eq + 1..]);
            if may_act || acting.contains(&&*word.text) || acting.contains(&value) {
                self.program_candidate = None;
                if self.pending.is_none() {
                    self.pending = Some(candidate.at);
                }
            }
        } else if let Some(candidate) = self.program_candidate
            && candidate.runlevel
        {
            // Judged at the command's end: one operand, a stopping runlevel.
            if candidate.operands > 1 || !(may_act || is_stopping_runlevel(&word.text)) {
                self.program_candidate = None;
            }
        } else if let Some(candidate) = self.program_candidate
            && (option_or_path
                || !candidate.option_or_path
                || (candidate.power
                    && (((may_act || empty) && candidate.operands == 1)
                        || is_shutdown_time(&word.text))))
        {
            self.program_candidate = None;
            if self.pending.is_none() {
                self.pending = Some(candidate.at);
            }
        }
    }

    /// A weak command name counts once its line shows shell syntax and it has an
    /// operand or a redirection.
    fn promote_weak(&mut self) {
        if self.line_has_syntax
            && self.weak_operand
            && self.pending.is_none()
            && let Some(at) = self.weak_candidate.take()
        {
            self.pending = Some(at);
        }
    }
}

/// Reads one word from `i` into `word` (what it held before is forgotten): up to an
/// unquoted blank or operator. Returns where it ends.
fn read_word(bytes: &[u8], mut i: usize, depth: usize, word: &mut Word) -> Step<usize> {
    word.clear(i);
    while let Some(&b) = bytes.get(i) {
        match b {
            0 => i += 1,
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => break,
            b'\\' => {
                match bytes.get(i + 1) {
                    Some(b'\n') => {} // a line continuation: the word goes on
                    Some(&next) => {
                        word.push(&[next]);
                        word.quoted = true;
                        word.real = true;
                    }
                    None => word.real = true,
                }
                i = (i + 2).min(bytes.len());
            }
            b'\'' => {
                let close = memchr::memchr(b'\'', &bytes[i + 1..]).ok_or(Stop::End)?;
                word.push(&bytes[i + 1..i + 1 + close]);
                word.quoted = true;
                word.real = true;
                i += close + 2;
            }
            b'"' => {
                i = skip_double(bytes, i + 1, depth + 1, Some(&mut *word))?;
                word.quoted = true;
                word.real = true;
            }
            b'`' => {
                let end = skip_backquote(bytes, i + 1)?;
                word.subst(i + 1, end - 1);
                word.real = true;
                i = end;
            }
            b'$' => {
                i = dollar_in_word(bytes, i, depth, word)?;
                word.real = true;
            }
            _ => {
                // A run of ordinary bytes at once: per byte, this loop cost more than
                // the rest of the parse of a file of short commands.
                let run = bytes[i..]
                    .iter()
                    .position(|b| {
                        matches!(
                            b,
                            0 | b' '
                                | b'\t'
                                | b'\n'
                                | b';'
                                | b'&'
                                | b'|'
                                | b'<'
                                | b'>'
                                | b'('
                                | b')'
                                | b'\\'
                                | b'\''
                                | b'"'
                                | b'`'
                                | b'$'
                        )
                    })
                    .unwrap_or(bytes.len() - i)
                    .max(1);
                word.push(&bytes[i..i + run]);
                word.real = true;
                i += run;
            }
        }
    }
    word.end = i.min(bytes.len());
    Ok(i)
}

/// Whether `bytes` are written as text (printable ASCII, tabs, newlines): what an
/// attacker writes, and what a run of binary bytes between chance backquotes is not.
fn is_written(bytes: &[u8]) -> bool {
    // A word at a CR LF line end (DICOM text's) holds the CR: written all the same
    // (review rv46-screen w16: `kill -INT 1\r\n` was never read; dash reads `1\r` as 1).
    bytes
        .strip_suffix(b"\r")
        .unwrap_or(bytes)
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) || b == b'\t' || b == b'\n')
}

/// Whether the text of a substitution is written as text: [`is_written`], or letters
/// outside ASCII (`é` in UTF-8 or Latin-1, as DICOM text holds them), which dash passes
/// through: one in a comment hid the substitution (review s19-r10). The bytes binary
/// headers hold (NUL, lengths below 0x20) are no text.
fn is_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) || b == b'\t' || b == b'\n' || b >= 0x80)
}

fn nested(depth: usize) -> Step<()> {
    if depth > MAX_SHELL_WORD_NESTING {
        return Err(Stop::Limit("MAX_SHELL_WORD_NESTING"));
    }
    Ok(())
}

/// A `$` at `i` inside a word: the literal text, parameter or substitution goes to
/// `word`; returns where it ends.
fn dollar_in_word(bytes: &[u8], i: usize, depth: usize, word: &mut Word) -> Step<usize> {
    let (end, expansion) = skip_dollar(bytes, i + 1, depth + 1)?;
    word.expands |= expansion;
    if !expansion && end == i + 2 && matches!(bytes[i + 1], b'#' | b'?' | b'$' | b'!' | b'-') {
        // `$?`, `$#`, `$$`, `$!`, `$-`: numbers and option letters, never a program's
        // name, but an operand made of them alone is what they hold: `true; init $?` is
        // `init 0`, `set --; init $#` too (review rv44-screen case3: dash ran them, and
        // the text was clean). No field vanishes: `$? reboot` runs `0`.
        word.expands = true;
        word.dynamic = true;
    } else if !expansion {
        word.push(&bytes[i..end]);
    } else if bytes.get(i + 1..i + 3) == Some(b"((") {
        // `$((…))` is arithmetic, whose substitutions run (review s19-r10).
        inner_substitutions(bytes, i + 3..end.saturating_sub(2), depth, word);
    } else if bytes.get(i + 1) == Some(&b'(') {
        word.subst(i + 2, end - 1);
    } else {
        if word.text.is_empty() && !word.param && word.substs.is_empty() {
            word.leading = Some((i, end));
        }
        word.param = true;
        word.dynamic = true;
        if let Some(param) = parameter(bytes, i, end, word) {
            word.param(param);
        }
        if bytes.get(i + 1) == Some(&b'{') {
            // `${X:-$(sh …)}` runs the substitution in its word: remembered as one.
            inner_substitutions(bytes, i + 2..end.saturating_sub(1), depth, word);
        }
    }
    Ok(end)
}

/// The substitutions within `inner` (a `${…}` or a `$((…))`), `$(…)` and backquoted
/// alike (`${X:=`sh …`}`: review s19-r10), remembered in `word`: they run in its word.
fn inner_substitutions(bytes: &[u8], inner: std::ops::Range<usize>, depth: usize, word: &mut Word) {
    let mut at = inner.start;
    while let Some(found) = bytes
        .get(at..inner.end)
        .and_then(|rest| memchr::memchr2(b'$', b'`', rest))
    {
        let start = at + found;
        if bytes[start] == b'`' {
            let Ok(close) = skip_backquote(bytes, start + 1) else {
                break;
            };
            word.subst(start + 1, close.saturating_sub(1));
            at = close.max(start + 1);
        } else if bytes.get(start + 1) == Some(&b'(') {
            let open = start + 2;
            let Ok(close) = skip_parens(bytes, open, depth + 2) else {
                break;
            };
            word.subst(open, close.saturating_sub(1));
            at = close.max(open);
        } else {
            at = start + 1;
        }
    }
}

/// Where the parameter expansion from the `$` at `i` to `end` takes its value (None: a
/// number, never a program); the names `${NAME:=…}` assigns go to `word`.
fn parameter(bytes: &[u8], i: usize, end: usize, word: &mut Word) -> Option<Param> {
    let name_kind = |name: &[u8], at: usize| match name {
        [b'0'] => Some(Param::Zero),
        [b'@' | b'*'] => Some(Param::Positional),
        [first, ..] if first.is_ascii_digit() => Some(Param::Positional),
        [b'#' | b'?' | b'$' | b'!' | b'-'] => None,
        _ => Some(Param::Named(at, at + name.len())),
    };
    if bytes.get(i + 1) != Some(&b'{') {
        return name_kind(bytes.get(i + 1..end)?, i + 1);
    }
    // `${…}`: the name, then what is done with it.
    let from = i + 2;
    let inner = bytes.get(from..end.checked_sub(1)?)?;
    if inner.first() == Some(&b'#') && inner.len() > 1 {
        return None; // `${#X}`: a length
    }
    let name_len = match inner.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => inner
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count(),
        Some(b) if b.is_ascii_digit() => inner.iter().take_while(|b| b.is_ascii_digit()).count(),
        Some(b'@' | b'*' | b'#' | b'?' | b'$' | b'!' | b'-') => 1,
        _ => return Some(Param::Written),
    };
    let (name, operation) = inner.split_at(name_len);
    let named = name_kind(name, from);
    let default = |op: &[u8]| operation.strip_prefix(op);
    if operation.is_empty() {
        return named;
    }
    if let Some(value) = default(b":-").or_else(|| default(b"-")) {
        return if value.is_empty() {
            named
        } else {
            Some(Param::Written)
        };
    }
    if let Some(value) = default(b":=").or_else(|| default(b"=")) {
        if let Some(Param::Named(from, to)) = named {
            if word.assigns.len() < PARAMS_KEPT {
                word.assigns.push((from, to));
            } else {
                word.assigns_unread = true;
            }
        }
        return if value.is_empty() {
            named
        } else {
            Some(Param::Written)
        };
    }
    // `${X:+w}` is w only when X is set; `${X%p}`, `${X#p}`, `${X:?w}` are X or less.
    if [&b":+"[..], b"+", b"%", b"#", b":?", b"?"]
        .iter()
        .any(|op| operation.starts_with(op))
    {
        return named;
    }
    Some(Param::Written)
}

/// Inside double quotes from `i` to the closing quote: where it ends. The literal text
/// and the expansions go to `word`, if given.
fn skip_double(
    bytes: &[u8],
    mut i: usize,
    depth: usize,
    mut word: Option<&mut Word>,
) -> Step<usize> {
    nested(depth)?;
    loop {
        let rest = bytes.get(i..).unwrap_or_default();
        let special = rest
            .iter()
            .position(|b| matches!(b, b'"' | b'\\' | b'$' | b'`'))
            .ok_or(Stop::End)?;
        if let Some(word) = word.as_deref_mut() {
            word.push(&rest[..special]);
        }
        i += special;
        match bytes[i] {
            b'"' => return Ok(i + 1),
            b'\\' => {
                if let (Some(word), Some(&next)) = (word.as_deref_mut(), bytes.get(i + 1))
                    && next != b'\n'
                {
                    if !matches!(next, b'$' | b'`' | b'"' | b'\\') {
                        word.push(b"\\");
                    }
                    word.push(&[next]);
                }
                i += 2;
            }
            b'`' => {
                let end = skip_backquote(bytes, i + 1)?;
                if let Some(word) = word.as_deref_mut() {
                    word.subst(i + 1, end - 1);
                }
                i = end;
            }
            _ => match word.as_deref_mut() {
                Some(word) => i = dollar_in_word(bytes, i, depth, word)?,
                None => i = skip_dollar(bytes, i + 1, depth + 1)?.0,
            },
        }
    }
}

/// The text dash parses for the substitution at `from..to` of `bytes`. In a backquoted
/// one a backslash before `$`, `` ` `` or `\` is removed first (POSIX XCU 2.6.3), so
/// `` \` `` in it opens a substitution nested in it (review r22-screen: dash ran
/// `` x=`echo \`sh -c …\`` `` and the file was clean). Its NUL bytes are dropped, as
/// dash drops them before it reads (review r24-screen: dash ran `` `\0sh -c …` ``, whose
/// text was judged binary for its NUL and not read).
fn substitution_text(bytes: &[u8], from: usize, to: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
    let content = bytes.get(from..to)?;
    let backquoted = from > 0 && bytes[from - 1] == b'`';
    let unescapes = backquoted && memchr::memchr(b'\\', content).is_some();
    if !unescapes && memchr::memchr(0, content).is_none() {
        return Some(std::borrow::Cow::Borrowed(content));
    }
    let mut text = Vec::with_capacity(content.len());
    let mut i = 0;
    while let Some(&byte) = content.get(i) {
        match content.get(i + 1) {
            Some(&next @ (b'$' | b'`' | b'\\')) if unescapes && byte == b'\\' => {
                text.push(next);
                i += 2;
            }
            _ => {
                if byte != 0 {
                    text.push(byte);
                }
                i += 1;
            }
        }
    }
    Some(std::borrow::Cow::Owned(text))
}

/// After a backquote at `i - 1`: past the closing one.
fn skip_backquote(bytes: &[u8], mut i: usize) -> Step<usize> {
    loop {
        let n =
            memchr::memchr2(b'`', b'\\', bytes.get(i..).unwrap_or_default()).ok_or(Stop::End)?;
        i += n;
        if bytes[i] == b'`' {
            return Ok(i + 1);
        }
        i += 2;
    }
}

/// After a `$` at `i - 1`: where what it starts ends, and whether it is an expansion
/// (`false`: a literal `$`, or a special parameter holding a number or option letters).
fn skip_dollar(bytes: &[u8], i: usize, depth: usize) -> Step<(usize, bool)> {
    nested(depth)?;
    match bytes.get(i) {
        Some(b'(') => Ok((skip_parens(bytes, i + 1, depth + 1)?, true)),
        Some(b'{') => Ok((skip_braces(bytes, i + 1, depth + 1)?, true)),
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
            let len = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            Ok((i + len, true))
        }
        // `"$@"`, `$*` and `$1` expand to the positional parameters, which `set --`
        // fills with a command line: as a command name they run it. `$0` names the
        // shell in a `sh -c` string.
        Some(b'@' | b'*') => Ok((i + 1, true)),
        Some(b) if b.is_ascii_digit() => Ok((i + 1, true)),
        // Numbers and option letters: never a program.
        Some(b'#' | b'?' | b'$' | b'!' | b'-') => Ok((i + 1, false)),
        _ => Ok((i, false)),
    }
}

/// Inside `$(` (or `$((`) from `i`: past the matching `)`. A `$(` inside is one more
/// `(` to count, not a level of recursion: x86 code is full of `D$(` (`[rsp+28h]`), and
/// counting keeps such bytes from looking deep.
fn skip_parens(bytes: &[u8], mut i: usize, depth: usize) -> Step<usize> {
    nested(depth)?;
    let mut open = 1usize;
    while let Some(&b) = bytes.get(i) {
        if let Some(next) = skip_quoted(bytes, i, depth)? {
            i = next;
            continue;
        }
        match b {
            b'(' => open += 1,
            b')' => {
                open -= 1;
                if open == 0 {
                    return Ok(i + 1);
                }
            }
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                i = skip_braces(bytes, i + 2, depth + 1)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Err(Stop::End)
}

/// Inside `${` from `i`: past the `}` that closes it (any `)` inside is literal).
fn skip_braces(bytes: &[u8], mut i: usize, depth: usize) -> Step<usize> {
    nested(depth)?;
    while let Some(&b) = bytes.get(i) {
        if let Some(next) = skip_quoted(bytes, i, depth)? {
            i = next;
            continue;
        }
        match b {
            b'}' => return Ok(i + 1),
            b'$' => {
                i = skip_dollar(bytes, i + 1, depth + 1)?.0.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Err(Stop::End) // "Missing '}'" at the end of a file
}

/// A quote or an escape at `i` (`'...'`, `"..."`, `` `...` ``, `\x`): the index past
/// it, or None for any other byte. `$(...)` and `${...}` skip quotes alike; only what
/// they do with `(`, `)`, `}` and `$` differs.
fn skip_quoted(bytes: &[u8], i: usize, depth: usize) -> Step<Option<usize>> {
    Ok(Some(match bytes.get(i) {
        Some(b'\'') => i + 2 + memchr::memchr(b'\'', &bytes[i + 1..]).ok_or(Stop::End)?,
        Some(b'"') => skip_double(bytes, i + 1, depth + 1, None)?,
        Some(b'`') => skip_backquote(bytes, i + 1)?,
        Some(b'\\') => i + 2,
        _ => return Ok(None),
    }))
}

/// `find` operands after which the next word is a command `find` runs.
const FIND_RUNNERS: [&[u8]; 4] = [b"-exec", b"-execdir", b"-ok", b"-okdir"];

/// A command string as the builtin receives it: the word after quote removal as dash
/// does it (POSIX XCU 2.2), for the one-level read of [`Parser::judge_evaluated`]. Review
/// r23-screen: only one pair of enclosing quotes was removed, so `\"` inside them and `\ `
/// outside them stayed backslashes, the string read as a syntax error or as one long
/// name, and dash ran `trap "sh -c \"(…) > f\"" EXIT` and `trap sh\ -c\ … EXIT`
/// unreported. Expansions are left as written (the string is read as a script, where
/// they are expansions again).
fn unquoted(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !value.iter().any(|b| matches!(b, b'\'' | b'"' | b'\\')) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut text = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        match byte {
            // `\x` is `x`; a backslash before a newline joins the lines.
            b'\\' => {
                match value.get(i + 1) {
                    Some(b'\n') => {}
                    Some(&next) => text.push(next),
                    None => text.push(byte),
                }
                i += 2;
            }
            // Everything to the closing quote, as it is.
            b'\'' => {
                let end = memchr::memchr(b'\'', &value[i + 1..]).map_or(value.len(), |e| i + 1 + e);
                text.extend_from_slice(&value[i + 1..end]);
                i = end + 1;
            }
            // A backslash only before `$`, `` ` ``, `"`, `\` or a newline quotes it.
            b'"' => {
                i += 1;
                while let Some(&inner) = value.get(i) {
                    match (inner, value.get(i + 1)) {
                        (b'"', _) => {
                            i += 1;
                            break;
                        }
                        (b'\\', Some(&next @ (b'$' | b'`' | b'"' | b'\\' | b'\n'))) => {
                            if next != b'\n' {
                                text.push(next);
                            }
                            i += 2;
                        }
                        _ => {
                            text.push(inner);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                text.push(byte);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(text)
}

/// What a command name in a directory of [`DROP_DIRECTORY_VARIABLES`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropFile {
    /// A program's file: a command, as `./x` is.
    Program,
    /// A configuration file's name ([`is_configuration_name`]): dash runs it as any
    /// program, but manuals list such files on lines of their own (`$HOME/_vimrc ~`), so
    /// it counts as a weak name does, with shell syntax and an operand on its line.
    Configuration,
}

/// What `rest`, what follows a directory in a command name, names: a path to a file
/// (`/x`, `/sub/x.sh`, printable, its last component holding a letter or digit:
/// `$HOME/` alone, or `$PWD/*`, names no file of an attacker's), or nothing.
fn names_a_file(rest: &[u8]) -> Option<DropFile> {
    let name = rest.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let file = rest.first() == Some(&b'/')
        && rest
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
        && name.iter().any(u8::is_ascii_alphanumeric);
    file.then(|| {
        if is_configuration_name(name) {
            DropFile::Configuration
        } else {
            DropFile::Program
        }
    })
}

/// Whether `name`, of a file in the home directory, is a configuration file's: a dot
/// file (`.vimrc`, `.profile`) or, as Windows ports name them, an underscore one
/// (`_vimrc`). Manuals list them on lines of their own (`~/.vimrc ~` and
/// `$HOME/_vimrc ~` in vim's usr_05.txt, the one alert of 16,166 real text files when
/// a home path was first judged a program's, review r24-screen).
pub(crate) fn is_configuration_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'.' | b'_'))
}

/// The first index from `i` that holds no NUL byte (dash drops them as it reads).
fn past_nuls(bytes: &[u8], i: usize) -> usize {
    i + bytes
        .get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&b| b == 0).count())
}

fn is_assignment(word: &[u8]) -> bool {
    let Some(eq) = word.iter().position(|&b| b == b'=') else {
        return false;
    };
    eq > 0
        && (word[0].is_ascii_alphabetic() || word[0] == b'_')
        && word[..eq]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Past a here-document body from `at`: the line after the one that is exactly
/// `delimiter` (leading tabs stripped for `<<-`). Unterminated, the body runs to the end
/// of the file, and dash still runs the command.
fn skip_heredoc(bytes: &[u8], mut at: usize, delimiter: &[u8], strip_tabs: bool) -> usize {
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
        if is_delimiter_line(&bytes[at..end], delimiter, strip_tabs) {
            return (end + 1).min(bytes.len());
        }
        at = end + 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NUL bytes after a `$` or a backslash are moved, not dropped: the spliced text
    /// keeps the file's length and records nothing per NUL run, so pixel data of
    /// `$\0` or `\\\0` costs one copy of the file, not a table entry per two bytes
    /// (review r24-screen: 64 MiB of `$\0` took 666 MB with a table, 179 MB now).
    #[test]
    fn nul_bytes_after_a_dollar_or_a_backslash_cost_no_table() {
        let bytes = [&b"$\0"[..], b"\\\0x", b"$\0\0(", b"\\\0\0\0y"]
            .concat()
            .repeat(1000);
        let spliced = Spliced::new(&bytes);
        assert_eq!(spliced.text(&bytes).len(), bytes.len());
        assert!(spliced.dropped.offsets.is_empty());
        // A continuation split by NUL bytes is still dropped, and offsets map back.
        let joined = b"s\\\0\0\nh -c x\n";
        let spliced = Spliced::new(joined);
        assert_eq!(spliced.text(joined), b"s\0\0h -c x\n");
        assert_eq!(spliced.original(3), 5);
    }

    /// The table of dropped continuations holds at most MAX_SHELL_LINE_CONTINUATIONS
    /// offsets; splicing stops at the backslash of the one past it.
    #[test]
    fn line_continuations_past_the_limit_stop_the_splicing() {
        let bytes = b"\\\n".repeat(MAX_SHELL_LINE_CONTINUATIONS + 10);
        let spliced = Spliced::new(&bytes);
        assert_eq!(spliced.dropped.offsets.len(), MAX_SHELL_LINE_CONTINUATIONS);
        assert_eq!(spliced.stopped_at(), Some(2 * MAX_SHELL_LINE_CONTINUATIONS));
    }

    thread_local! {
        /// Bytes of files spliced (see [`Spliced::extend`]), on this thread.
        pub(super) static SPLICED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// 16-bit CT pixel data as stored (air to soft tissue, 0 to 1400 with the usual
    /// -1024 intercept): `\\\0` and `$\0` every few kilobytes, so a whole-file splice
    /// ran on nearly every CT slice.
    fn ct_pixels(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = (state % 1400) as u16;
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Review r25-speed: a DICOM file whose header stops dash (here the Rows tag,
    /// `(\0\x10\0`, a `(` after the word `DICM` that no `)` follows) had its 4 MiB of
    /// pixel data spliced whole before the parse, half of `scan`'s time on CT slices.
    /// The splice now goes as far as the parse reads, and finds the same: nothing.
    /// The regular expressions pkill and killall match init with (review rv46-screen
    /// case2), as regexec reads the forms modelled; other syntax is not judged. Checked
    /// against procps `pgrep -x 'sl.*p'`, `pgrep 'le?ep$'` on a running `sleep`.
    #[test]
    fn patterns_are_matched_as_regexec_matches_them() {
        for (pattern, subject, whole, matches) in [
            (&b"."[..], &b"systemd"[..], false, Some(true)),
            (b"", b"init", false, Some(true)),
            (b"", b"init", true, Some(false)),
            (b"sl.*p", b"sleep", true, Some(true)),
            (b"le?ep$", b"sleep", false, Some(true)),
            (b"^syst", b"systemd", false, Some(true)),
            (b"^ystem", b"systemd", false, Some(false)),
            (b"sys", b"systemd", true, Some(false)),
            (b"s+y", b"ssystemd", false, Some(true)),
            (b"\\.", b"a.b", false, Some(true)),
            // Review rv49-screen: bracket expressions are matched (pgrep '[s]ystemd'
            // lists a process named systemd); GNU's anchors are not judged.
            (b"[s]ystemd", b"systemd", false, Some(true)),
            (b"[^s]ystemd", b"systemd", false, Some(false)),
            (b"[]a-z]+", b"systemd", true, Some(true)),
            (b"[a-c]", b"systemd", false, Some(false)),
            (b"[[:alpha:]]", b"systemd", false, None),
            (b"[s", b"systemd", false, None),
            (b"\\<systemd", b"systemd", false, None),
            (b"\\`systemd", b"systemd", false, None),
            (b"sy{1}stemd", b"systemd", false, None),
            (b"init|x", b"init", false, None),
        ] {
            assert_eq!(
                regex_matches(pattern, subject, whole, false),
                matches,
                "{pattern:?}"
            );
        }
        assert_eq!(
            regex_matches(b"SYSTEMD", b"systemd", true, true),
            Some(true)
        );
        // Linear: a pattern of many stars against a long subject ends at once.
        let many = b".*".repeat(32);
        assert_eq!(regex_matches(&many, &[b'a'; 4096], true, false), Some(true));
        // psmisc compares a name with a `/` as the file it is (review rv49-screen).
        for (path, normal) in [
            (&b"/sbin/./init"[..], &b"/sbin/init"[..]),
            (b"//sbin//init", b"/sbin/init"),
            (b"/usr/lib/../../sbin/init", b"/sbin/init"),
        ] {
            assert_eq!(normal_path(path), normal, "{path:?}");
        }
        // getopt_long's unique prefixes: `--sig` is signal, `--s` signal or session.
        assert_eq!(
            long_option(PKILL_LONG_OPTIONS, b"sig"),
            Some(&b"signal"[..])
        );
        assert_eq!(long_option(PKILL_LONG_OPTIONS, b"ns"), Some(&b"ns"[..]));
        assert_eq!(long_option(PKILL_LONG_OPTIONS, b"s"), None);
        // strtol and atoi read the numbers procps and psmisc take.
        assert_eq!(pkill_signal_number(b"+2"), Some(2));
        assert_eq!(pkill_signal_number(b" 2"), Some(2));
        assert_eq!(pkill_signal_number(b"2x"), None);
        assert_eq!(atoi_signal_number(b"2x"), Some(2));
        assert_eq!(atoi_signal_number(b"+9"), Some(9));
        for (expression, value) in [
            (&b"1"[..], Some(1)),
            (b" 2-1 ", Some(1)),
            (b"-1", Some(-1)),
            (b"0-1", Some(-1)),
            (b"010", Some(8)),
            (b"1+", None),
            (b"x", None),
            (b"2*1", None),
        ] {
            assert_eq!(arithmetic_value(expression), value, "{expression:?}");
        }
    }

    #[test]
    fn a_file_whose_header_stops_sh_has_its_pixel_data_left_unspliced() {
        let file = [
            &[0u8; 128][..],
            b"DICM\x28\x00\x10\x00US\x02\x00\x00\x02",
            &ct_pixels(4 << 20),
        ]
        .concat();
        assert!(memchr::memmem::find(&file, b"\\\0").is_some());
        SPLICED.with(|n| n.set(0));
        assert_eq!(crate::shell::find_shell_command(&file), None);
        let spliced = SPLICED.with(std::cell::Cell::get);
        assert!(
            spliced < 4 * FIRST_SPLICED,
            "{spliced} bytes spliced of {}",
            file.len()
        );
    }

    /// The splice stops at a newline outside quotes and goes on while the parse reads
    /// to its end: a command far past the first part spliced is found at its offset in
    /// the file, whatever is open across the first cut (a quote, a here-document, a
    /// substitution, a compound command), and a syntax error far past it still stops
    /// the shell before the command.
    #[test]
    fn a_command_far_past_the_first_splice_is_found() {
        let lines = b"x=1\n".repeat(FIRST_SPLICED);
        let command = b"s\\\nh -c id\n";
        for (opened, closed) in [
            (&b""[..], &b""[..]),
            (b"y='\n", b"'\n"),
            (b"y=\"\n", b"\"\n"),
            (b": <<E\n", b"E\n"),
            (b"y=$(\n", b")\n"),
            (b"if true\nthen\n", b"fi\n"),
            (b"# a comment \\\n", b""),
        ] {
            let file = [&b"true \\\0x\n"[..], opened, &lines, closed, command].concat();
            let found = crate::shell::find_shell_command(&file);
            assert_eq!(
                found.map(|c| c.offset),
                Some(file.len() - command.len()),
                "{}",
                String::from_utf8_lossy(opened)
            );
        }
        let file = [&b"true \\\0x\n"[..], &lines, b")\n", command].concat();
        assert_eq!(crate::shell::find_shell_command(&file), None);
    }
}
