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
/// opens or runs a file or a command, if the file is a PostScript program for the
/// readers that open one.
pub fn find_postscript_action(bytes: &[u8]) -> Option<Action> {
    let (start, end, what) = if bytes.starts_with(b"%!") {
        (
            0,
            bytes.len(),
            "a PostScript program (%! at the file's start)",
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
        )
    } else {
        return None;
    };
    let program = &bytes[start..end];
    let (at, how) = scan(program)?;
    Some(Action {
        offset: start + at,
        severity: Severity::Alert,
        detail: format!(
            "{what} that {how}: Ghostscript (and ImageMagick, which hands such files to it) does so when the file is opened without -dSAFER"
        ),
    })
}

/// Whether `head`, the first window of a longer file, starts a PostScript program that
/// runs on past it (`%!` at the start, or a DOS EPS section ending past the window) with
/// nothing found in the window: the program is read from its start only, so the rest is
/// not followed, which the caller says.
pub(crate) fn program_reads_past(head: &[u8]) -> bool {
    if find_postscript_action(head).is_some() {
        return false;
    }
    if head.starts_with(b"%!") {
        return true;
    }
    let word = |at: usize| {
        head.get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64)
    };
    head.starts_with(&DOS_EPS_MAGIC)
        && word(4)
            .zip(word(8))
            .is_some_and(|(start, len)| start + len > head.len() as u64)
}

/// One token of a program: where it starts and what it is.
enum Token {
    /// A string's bytes, decoded (`(…)` with its escapes, `<…>` in hex).
    Text(Vec<u8>),
    /// An executable name.
    Name(Vec<u8>),
    /// Anything else (a literal name, a number, a bracket, an ASCII85 string).
    Other,
}

/// The first file or command action of `program`, and what it does. Every token is read,
/// inside procedures too (a procedure runs when it is called), in one pass.
fn scan(program: &[u8]) -> Option<(usize, String)> {
    let mut recent: [Option<(usize, Token)>; 2] = [None, None];
    let mut i = 0usize;
    while let Some((at, token, next)) = next_token(program, i) {
        i = next;
        if let Token::Text(text) = &token
            && text.starts_with(b"%pipe%")
        {
            return Some((
                at,
                format!(
                    "opens a pipe to a shell command (\"{}\")",
                    pacsguard_events::escape_bytes(&text[..text.len().min(60)])
                ),
            ));
        }
        if let Token::Name(name) = &token
            && FILE_OPERATORS.contains(&name.as_slice())
        {
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
                let shown = String::from_utf8_lossy(name);
                let how = match named {
                    Some(n) if pipe => format!(
                        "opens a pipe to a shell command with `{shown}` (\"{}\")",
                        pacsguard_events::escape_bytes(&n[..n.len().min(60)])
                    ),
                    Some(n) => format!(
                        "uses the file operator `{shown}` on \"{}\"",
                        pacsguard_events::escape_bytes(&n[..n.len().min(60)])
                    ),
                    None => format!("uses the file operator `{shown}`"),
                };
                return Some((at, how));
            }
        }
        recent = [Some((at, token)), recent[0].take()];
    }
    None
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
            let end = memchr::memmem::find(&p[i..], b"~>").map_or(p.len(), |n| i + n + 2);
            Some((at, Token::Other, end))
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
            // A name (literal after `/` or `//`), or a number.
            let literal = first == b'/';
            while p.get(i) == Some(&b'/') {
                i += 1;
            }
            let start = i;
            while p.get(i).is_some_and(|&b| !is_space(b) && !is_delimiter(b)) {
                i += 1;
            }
            let name = &p[start..i];
            let token = if literal || name.is_empty() {
                Token::Other
            } else {
                Token::Name(name.to_vec())
            };
            Some((at, token, i.max(at + 1)))
        }
    }
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
