//! What a vim script writes into its buffer, for a register yanked or deleted from it
//! and then run (`:%yank a` then `@a`, `:norm! "ayy` then `@a`).
//!
//! vim -es ran each of these (created RAN; issue 10, session 17): lines put in with
//! `:put ='…'`, `setline()`, `append()`, `:append`/`:insert`/`:change` blocks, a
//! `:substitute` replacement and `:normal` insert keys, yanked into a register and run
//! as Ex lines. The buffer's lines are not modelled in order: every line the script
//! writes from its own text is put in (more, never less). A line written from a
//! variable or a call is known only at run time. Lines from elsewhere (`:put a` of a
//! register filled by `:redir` with vim's output, `:read`, `:edit`) are not the
//! script's text and are not put in: vim's own `syntax/hitest.vim` yanks and runs such
//! lines (`syn keyword …`). What the script itself `:echo`es under `:redir` is its
//! text, and is put in (review s18-r10).
//!
//! Issue 10 (session 18): the same commands in a string run as Ex lines (`exe "norm!
//! i!sh …"`, `exe "call setline(…)"`, `call execute("put =…")`, `exe "%yank a"`) write
//! and yank the buffer as well, and vim 9's `:source` with no file (`:so`, `:%so`, a
//! range) or of `%`, or of a file the script writes (`:w`, `writefile()`, whose lines
//! are put in too), runs the buffer's lines as Ex commands: vim -es ran each (created
//! RAN).

use super::{VimValue, after_first_argument, normal_keys, vim_expression, vim_list};

/// The script's own text that can land in its buffer, and where it writes a line known
/// only at run time (a variable, a call).
pub(super) struct Buffer {
    pub(super) text: Vec<u8>,
    pub(super) built: Option<usize>,
}

/// Ex commands that write lines of the buffer into a register (`:yank`, `:delete`, in
/// any abbreviation).
const YANKS: [&[u8]; 2] = [b"yank", b"delete"];

/// Ex commands followed by lines of text put into the buffer, up to a line of `.`.
const TEXT_BLOCKS: [&[u8]; 3] = [b"append", b"insert", b"change"];

/// Keys of `:normal` that start inserting text (the rest of the keys, to an Escape, is
/// what they put in).
const INSERT_KEYS: &[u8] = b"iaoOAIsScCR";

/// Whether `word` is `full` or an abbreviation of it vim takes (at least one letter).
fn abbreviates(word: &[u8], full: &[u8]) -> bool {
    !word.is_empty() && full.starts_with(word)
}

/// The command word of an Ex command `segment` (after blanks, colons and a range) and
/// what follows it; `:g/pat/cmd` and `:v/pat/cmd` give the command they run.
fn command_word(segment: &[u8]) -> (&[u8], &[u8]) {
    let (word, after) = word_after_range(segment);
    if !(abbreviates(word, b"global") || abbreviates(word, b"vglobal")) {
        return (word, after);
    }
    let after = after.strip_prefix(b"!").unwrap_or(after);
    match after.first() {
        Some(&delimiter)
            if !delimiter.is_ascii_alphanumeric()
                && !matches!(delimiter, b' ' | b'\t' | b'"' | b'|') =>
        {
            let end = after[1..]
                .iter()
                .position(|&c| c == delimiter)
                .map_or(after.len(), |n| n + 2);
            word_after_range(&after[end..])
        }
        _ => (word, after),
    }
}

/// The command word after blanks, colons and a range (numbers, `.`, `$`, `%`, marks,
/// `/pattern/`), and what follows it.
fn word_after_range(segment: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0usize;
    while let Some(&b) = segment.get(i) {
        match b {
            b' ' | b'\t' | b':' | b'%' | b'.' | b',' | b';' | b'$' | b'+' | b'-' | b'0'..=b'9' => {
                i += 1;
            }
            b'\'' => i += 2,
            b'/' | b'?' => {
                i = segment[i + 1..]
                    .iter()
                    .position(|&c| c == b)
                    .map_or(segment.len(), |n| i + n + 2);
            }
            _ => break,
        }
    }
    let rest = segment.get(i..).unwrap_or_default();
    let len = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    (&rest[..len], &rest[len..])
}

/// The Ex command segments of `bytes`: each line, split at `|` (the same parts as
/// splitting lines and then each line at `|`). Found with `memchr2`: pixel data holds a
/// `\n` or `|` every ~128 bytes, and a byte-by-byte split of every file was a third of
/// the time `inspect` spent on an ordinary CT instance (session 20's profile).
fn segments(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    let mut start = 0usize;
    memchr::memchr2_iter(b'\n', b'|', bytes)
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let at = start;
            let end = end.unwrap_or(bytes.len());
            start = end + 1;
            (at, &bytes[at..end])
        })
}

/// How deep strings run as Ex lines are read for what they write into the buffer
/// (`exe "exe \"norm! i…\""`); deeper is a warning.
pub const MAX_VIM_EXECUTE_NESTING: usize = 8;

/// A string run as Ex lines, evaluated, with the offset of the command in the file that
/// runs it (for one inside a string, the outer one's).
pub(super) type Executed = Vec<(usize, VimValue)>;

/// The strings the script runs as Ex lines (`:execute` in any abbreviation, `execute()`
/// with a string or a list), evaluated, read [`MAX_VIM_EXECUTE_NESTING`] deep; past it,
/// `Err` with the offset.
pub(super) fn executed_strings(
    bytes: &[u8],
    named: &dyn Fn(&[u8]) -> bool,
) -> Result<Executed, usize> {
    // The strings one text runs, found in one search for `exe` (the command and the
    // call): each with where it is (`outer` for a string's, the outer command's).
    let read = |text: &[u8], outer: Option<usize>| {
        let mut strings = Vec::new();
        for at in crate::literals::find_iter(text, b"exe") {
            if text[at..].starts_with(b"execute(") {
                if at > 0
                    && (text[at - 1].is_ascii_alphanumeric()
                        || matches!(text[at - 1], b'_' | b':' | b'#'))
                {
                    continue;
                }
                let argument = text[at + 8..].trim_ascii_start();
                let value = match argument.strip_prefix(b"[") {
                    Some(list) => Some(vim_list(list)),
                    None => vim_expression(argument, false, named),
                };
                if let Some(value) = value {
                    strings.push((outer.unwrap_or(at), value));
                }
                continue;
            }
            if let Some((word, after)) = command_at(text, at)
                && word.len() >= 3
                && abbreviates(word, b"execute")
                && let Some(value) = vim_expression(after.trim_ascii_start(), true, named)
            {
                strings.push((outer.unwrap_or(at), value));
            }
        }
        strings
    };
    let mut found: Executed = Vec::new();
    let mut pending: Vec<(usize, usize)> = Vec::new();
    for (offset, value) in read(bytes, None) {
        pending.push((found.len(), 1));
        found.push((offset, value));
    }
    while let Some((index, depth)) = pending.pop() {
        let (offset, text) = (found[index].0, found[index].1.text.clone());
        for (at, value) in read(&text, Some(offset)) {
            if depth >= MAX_VIM_EXECUTE_NESTING {
                return Err(at);
            }
            pending.push((found.len(), depth + 1));
            found.push((at, value));
        }
    }
    Ok(found)
}

/// The Ex commands of `text` whose word starts with `head`: each with where its word
/// starts, the word and what follows it on its line. Found by searching for `head`
/// (one pass of memchr's search, not a split of the whole text into lines), each
/// checked to start a command: after a line start or `|`, blanks, colons and a range.
fn commands<'t>(
    text: &'t [u8],
    head: &'t [u8],
) -> impl Iterator<Item = (usize, &'t [u8], &'t [u8])> + 't {
    crate::literals::find_iter(text, head)
        .filter_map(move |at| command_at(text, at).map(|(word, line)| (at, word, line)))
}

/// The Ex command whose word starts at `text[at]`, if one starts there (after a line
/// start or `|`, blanks, colons and a range): the word, and what follows it on its line.
fn command_at(text: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    {
        let before = &text[..at];
        let lead = before
            .iter()
            .rev()
            .take_while(|b| {
                b.is_ascii_digit()
                    || matches!(
                        b,
                        b' ' | b'\t' | b':' | b'%' | b'$' | b'.' | b',' | b';' | b'+' | b'-'
                    )
            })
            .count();
        let start = at - lead;
        if start != 0 && !matches!(text[start - 1], b'\n' | b'|') {
            return None;
        }
        let rest = &text[at..];
        let len = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let line = rest[len..]
            .iter()
            .position(|&b| matches!(b, b'\n' | b'|'))
            .map_or(&rest[len..], |end| &rest[len..len + end]);
        Some((&rest[..len], line))
    }
}

/// Where `text` has a `:source` that runs the buffer's lines: with no file (vim 9
/// sources the buffer: `:so`, `:%so`, `:1,$source`), of `%`, or of any file when
/// `writes` says the script writes files (the one it sources may hold its buffer).
fn sources_in(text: &[u8], writes: &dyn Fn() -> bool) -> Option<usize> {
    commands(text, b"so").find_map(|(at, word, after)| {
        if !(word.len() >= 2 && abbreviates(word, b"source")) {
            return None;
        }
        let argument = after.strip_prefix(b"!").unwrap_or(after).trim_ascii();
        (argument.is_empty() || argument == b"%" || writes()).then_some(at)
    })
}

/// The command word and what follows of `segment`, modifiers (`:silent`, `:silent!`)
/// stepped over.
fn unmodified(segment: &[u8]) -> (&[u8], &[u8]) {
    past_modifier(command_word(segment))
}

/// A command word and what follows it, past a modifier (`:silent`, `:silent!`).
fn past_modifier<'s>((word, after): (&'s [u8], &'s [u8])) -> (&'s [u8], &'s [u8]) {
    if word.len() >= 3 && abbreviates(word, b"silent") {
        return word_after_range(after.strip_prefix(b"!").unwrap_or(after));
    }
    (word, after)
}

/// Whether `segment` starts a `:redir` (to a file, a register or a variable), and
/// whether it ends one (`:redir END`).
fn redir(segment: &[u8]) -> Option<bool> {
    redir_of(command_word(segment))
}

/// [`redir`] of a segment's command word and what follows it.
fn redir_of(command: (&[u8], &[u8])) -> Option<bool> {
    let (word, after) = past_modifier(command);
    (word.len() >= 4 && abbreviates(word, b"redir")).then(|| {
        !after
            .trim_ascii()
            .get(..3)
            .is_some_and(|end| end.eq_ignore_ascii_case(b"end"))
    })
}

/// Whether `text` starts a `:redir`: what it echoes lands in a register, a file or a
/// variable a script can run (review s18-r10: vim -es ran `redir @a`, `echo "!sh …"`,
/// `redir END`, `@a`, and `redir! > r.vim` … `so r.vim`).
pub(super) fn redirects(text: &[u8]) -> bool {
    segments(text).any(|(_, segment)| redir(segment) == Some(true))
}

/// Whether `text` writes a file (`:w`, `:wq`, `:x`, `:sav`, `:up`, `writefile()`,
/// `:redir`).
fn writes_files(text: &[u8]) -> bool {
    crate::literals::find(text, b"writefile(").is_some()
        || redirects(text)
        || segments(text).any(|(_, segment)| {
            let (word, _) = command_word(segment);
            [&b"write"[..], b"wq", b"xit", b"saveas", b"update", b"wall"]
                .iter()
                .any(|full| abbreviates(word, full))
        })
}

/// Where the script (or a string it runs as Ex lines) first runs its buffer's lines
/// with `:source` ([`sources_in`]).
pub(super) fn sources_buffer(bytes: &[u8], executed: &Executed) -> Option<usize> {
    // Whether the script writes files is read only for a `:source` of a file.
    let writes = std::cell::OnceCell::new();
    let writes = || {
        *writes.get_or_init(|| {
            writes_files(bytes) || executed.iter().any(|(_, v)| writes_files(&v.text))
        })
    };
    let run = executed
        .iter()
        .filter(|(_, value)| sources_in(&value.text, &writes).is_some())
        .map(|(at, _)| *at);
    let lines = executes_lines(bytes).into_iter().chain(
        executed
            .iter()
            .filter(|(_, value)| executes_lines(&value.text).is_some())
            .map(|(at, _)| *at),
    );
    sources_in(bytes, &writes)
        .into_iter()
        .chain(run)
        .chain(lines)
        .min()
}

/// Where `text` runs lines of its buffer as Ex commands with `:execute` of `getline()`
/// (`exe getline(1)`, `g/^/exe getline('.')`, `call execute(getline(1, '$'))`): as a
/// `:source` of the buffer does (review s18-r10: vim -es ran `call setline(1, "!sh …")`
/// then `g/^/exe getline('.')`).
fn executes_lines(text: &[u8]) -> Option<usize> {
    crate::literals::find_iter(text, b"getline(").find(|&at| {
        let start = text[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        let line = &text[start..at];
        memchr::memmem::find_iter(line, b"exe").any(|k| {
            k == 0
                || !(line[k - 1].is_ascii_alphanumeric()
                    || matches!(line[k - 1], b'_' | b'#' | b':' | b'.'))
                || line[k - 1] == b':'
        })
    })
}

/// Whether the text (the script's own, or a string it runs as Ex lines) writes lines
/// into a register: an Ex `:yank` or `:delete`, `:normal` keys that yank or delete, or a
/// `:redir` ([`redirects`]), read in one pass over its segments (each pass was a sixth
/// of an ordinary instance's screening time).
pub(super) fn yanks_or_redirects(bytes: &[u8]) -> bool {
    // Each segment's command word is read once, and a segment without one (a line of
    // `\`, of `^`) goes no further: 64 MiB of `\`+newline, 32 million segments, were a
    // third of a 27 s debug scan when each was read twice (review r26-screen).
    segments(bytes).any(|(_, segment)| {
        let command = command_word(segment);
        !command.0.is_empty()
            && (YANKS.iter().any(|full| abbreviates(command.0, full))
                || redir_of(command) == Some(true))
    }) || normal_yanks(bytes)
}

/// Whether `:normal` keys in `bytes` yank or delete.
fn normal_yanks(bytes: &[u8]) -> bool {
    crate::literals::find_iter(bytes, b"norm").any(|at| {
        normal_keys(bytes, at, Some(b'\n'))
            .is_some_and(|keys| keys.iter().any(|b| matches!(b, b'y' | b'd')))
    })
}

/// The lines the script writes into its buffer from its own text and from the strings
/// it runs as Ex lines (`executed`, [`executed_strings`]; see the module). A string
/// with a part known only at run time that writes lines makes them known only then.
pub(super) fn buffer_text(
    bytes: &[u8],
    executed: &Executed,
    named: &dyn Fn(&[u8]) -> bool,
) -> Buffer {
    // A `:redir` begun in one text and echoed into in another (`exe "redir @a"`, then
    // `echo "!sh …"`; `redir @a`, then `exe "echo …"`: vim -es ran both, session 21):
    // which echo runs under which redirection is not modelled, so once a string run as
    // Ex lines redirects, every echo of every text is taken as written (more never less).
    let executed_redirects = executed.iter().any(|(_, value)| redirects(&value.text));
    let any_redirects = executed_redirects || redirects(bytes);
    let mut buffer = own_buffer_text(bytes, named, executed_redirects);
    for (at, value) in executed {
        let inner = own_buffer_text(&value.text, named, any_redirects);
        if inner.built.is_some() || (!value.holes.is_empty() && !inner.text.is_empty()) {
            buffer.built = Some(buffer.built.map_or(*at, |b| b.min(*at)));
        }
        buffer.text.extend_from_slice(&inner.text);
    }
    buffer
}

/// The lines `bytes` writes into the buffer from its own text (see the module); with
/// `redirected_elsewhere`, a `:redir` of another text may be on: every echo counts.
fn own_buffer_text(
    bytes: &[u8],
    named: &dyn Fn(&[u8]) -> bool,
    redirected_elsewhere: bool,
) -> Buffer {
    let mut buffer = Buffer {
        text: Vec::new(),
        built: None,
    };
    let add = |buffer: &mut Buffer, at: usize, value: Option<VimValue>| match value {
        Some(value) if value.holes.is_empty() => {
            buffer.text.extend_from_slice(&value.text);
            buffer.text.push(b'\n');
        }
        Some(_) => {
            buffer.built.get_or_insert(at);
        }
        None => {}
    };
    let mut block_until_dot = false;
    let mut redirected = false;
    for (at, segment) in segments(bytes) {
        if let Some(starts) = redir(segment) {
            redirected = starts;
            continue;
        }
        if redirected || redirected_elsewhere {
            // What `:echo` writes while redirected: a line of what a register, a file
            // or a variable then holds (taken as the buffer's, more never less).
            let (word, after) = unmodified(segment);
            if word.len() >= 2 && (abbreviates(word, b"echo") || abbreviates(word, b"echon"))
                || word.len() >= 5 && abbreviates(word, b"echomsg")
            {
                add(
                    &mut buffer,
                    at,
                    vim_expression(after.trim_ascii(), false, named),
                );
                continue;
            }
        }
        if block_until_dot {
            // A line of an `:append` block: text of the buffer, to a line of `.`.
            if segment.trim_ascii() == b"." {
                block_until_dot = false;
            } else {
                buffer.text.extend_from_slice(segment);
                buffer.text.push(b'\n');
            }
            continue;
        }
        let (word, after) = command_word(segment);
        if TEXT_BLOCKS.iter().any(|full| abbreviates(word, full))
            && after
                .strip_prefix(b"!")
                .unwrap_or(after)
                .trim_ascii()
                .is_empty()
        {
            block_until_dot = true;
            continue;
        }
        if abbreviates(word, b"put") && word.len() >= 2 {
            let rest = after.strip_prefix(b"!").unwrap_or(after).trim_ascii_start();
            if let Some(expression) = rest.strip_prefix(b"=") {
                let expression = expression.trim_ascii_start();
                let value = match expression.strip_prefix(b"[") {
                    Some(list) => Some(vim_list(list)),
                    None => vim_expression(expression, false, named),
                };
                add(&mut buffer, at, value);
            }
            continue;
        }
        if abbreviates(word, b"substitute")
            && let Some(&delimiter) = after.first()
            && !delimiter.is_ascii_alphanumeric()
            && !matches!(delimiter, b' ' | b'\t' | b'"' | b'|' | b'\\')
        {
            let mut parts = after[1..].splitn(3, |&b| b == delimiter);
            let _pattern = parts.next();
            if let Some(replacement) = parts.next() {
                buffer.text.extend_from_slice(replacement);
                buffer.text.push(b'\n');
            }
        }
    }
    // `setline(lnum, text)`, `append(lnum, text)`: the text, a string or a list.
    for name in [&b"setline("[..], b"append("] {
        for at in crate::literals::find_iter(bytes, name) {
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || matches!(bytes[at - 1], b'_' | b':' | b'#'))
            {
                continue;
            }
            let Some(rest) = after_first_argument(&bytes[at + name.len()..]) else {
                continue;
            };
            let rest = rest.trim_ascii_start();
            let value = match rest.strip_prefix(b"[") {
                Some(list) => Some(vim_list(list)),
                None => vim_expression(rest, false, named),
            };
            add(&mut buffer, at, value);
        }
    }
    // `writefile(lines, file)`: lines of a file the script writes, which a `:source` of
    // it runs as the buffer's are (session 18: vim -es ran `call writefile(["!sh …"],
    // "w.vim")` then `so w.vim`).
    for at in crate::literals::find_iter(bytes, b"writefile(") {
        if at > 0
            && (bytes[at - 1].is_ascii_alphanumeric()
                || matches!(bytes[at - 1], b'_' | b':' | b'#'))
        {
            continue;
        }
        let rest = bytes[at + 10..].trim_ascii_start();
        let value = match rest.strip_prefix(b"[") {
            Some(list) => Some(vim_list(list)),
            None => vim_expression(rest, false, named),
        };
        add(&mut buffer, at, value);
    }
    // `:normal` keys that insert text: what follows the first insert key, to an Escape.
    for at in crate::literals::find_iter(bytes, b"norm") {
        let Some(keys) = normal_keys(bytes, at, Some(b'\n')) else {
            continue;
        };
        if let Some(start) = keys.iter().position(|b| INSERT_KEYS.contains(b)) {
            let text = &keys[start + 1..];
            let end = memchr::memchr(0x1b, text).unwrap_or(text.len());
            let mut text = &text[..end];
            // `CTRL-R =` types an expression's value, to an Enter (review s18-r10: vim
            // -es ran `exe "norm! i\<C-R>=\"!sh …\"\<CR>"` yanked and run).
            while let Some(k) = memchr::memchr(0x12, text) {
                buffer.text.extend_from_slice(&text[..k]);
                let Some(expression) = text[k + 1..].strip_prefix(b"=") else {
                    text = &text[k + 1..];
                    continue;
                };
                let close = memchr::memchr2(b'\r', b'\n', expression).unwrap_or(expression.len());
                match vim_expression(expression[..close].trim_ascii(), false, named) {
                    Some(value) if value.holes.is_empty() => {
                        buffer.text.extend_from_slice(&value.text);
                    }
                    _ => {
                        buffer.built.get_or_insert(at);
                    }
                }
                text = expression.get(close + 1..).unwrap_or_default();
            }
            buffer.text.extend_from_slice(text);
            buffer.text.push(b'\n');
        }
    }
    buffer
}
