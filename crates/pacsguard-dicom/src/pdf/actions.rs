//! What a PDF does when it is opened or clicked, read from its objects: actions (`/S`),
//! scripts (`/JS` anywhere: document, page and annotation `/AA`, form fields, name tree,
//! renditions), XFA scripts inside the XFA XML, and attached files (`/EF` of a file
//! specification, `/Type /EmbeddedFile` streams).
//!
//! Every object of every revision is looked at, reachable from the catalog or not: which
//! objects a reader uses depends on how it repairs a damaged file, and an attacker chooses
//! the damage.

use std::collections::{BTreeMap, HashMap, HashSet};

use pacsguard_events::{FindingKind, Severity, escape_bytes};

use super::document::{Document, type_is};
use super::lexer::{Dict, Obj, get, get_all};

/// Characters of a script, URI or file name quoted in a finding.
const QUOTED: usize = 80;

/// One thing found, before attachments are screened.
#[derive(Debug)]
pub enum Found {
    Action {
        kind: FindingKind,
        severity: Severity,
        offset: usize,
        detail: String,
    },
    Attachment {
        /// Index of the stream object.
        object: usize,
        name: Vec<u8>,
    },
}

/// What an action dictionary is, before a document's links are folded into one finding.
enum Acts {
    Found(Found),
    /// A URI action to a web page or a mail address ([`is_folded`]): a link a reader
    /// opens when clicked.
    Link {
        offset: usize,
        target: Vec<u8>,
    },
}

/// Collects actions and attachments from every object of `doc`.
pub fn find(doc: &mut Document) -> Vec<Found> {
    let mut found = Vec::new();
    let mut xfa: Vec<(usize, Obj)> = Vec::new();
    let mut scripts: Vec<(usize, Obj)> = Vec::new();
    // One attachment per stream object (`/F` and `/UF` often name the same one), named
    // when any file specification names it: kept by object, never once per naming.
    let mut attachments: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    // The streams file specifications name, each once with its first name, and each
    // version of them taken once below: once per file specification and version was
    // (file specifications × versions) entries, 3,000 of each (a 500 kB PDF) 680 MB and
    // 18 s (review r30-screen).
    let mut named_streams: HashMap<Obj, Vec<u8>> = HashMap::new();
    let mut links: Vec<(usize, Vec<u8>)> = Vec::new();
    let base = uri_base(doc);
    let shared: &Document = doc;
    for (i, object) in shared.objects.iter().enumerate() {
        let doc = shared;
        let offset = object.offset;
        if object.stream.is_some() && type_is(&object.value, b"EmbeddedFile") {
            attachments.entry(i).or_default();
        }
        let mut visit = |dict: &Dict| {
            for action in action_types(doc, dict) {
                match action_finding(doc, dict, action, offset, base.as_deref()) {
                    Some(Acts::Found(f)) => found.push(f),
                    Some(Acts::Link { offset, target }) => links.push((offset, target)),
                    None => {}
                }
            }
            for (key, value) in dict {
                match key.as_slice() {
                    // `/OnInstantiate` of a 3D stream is JavaScript run when the 3D
                    // artwork is activated.
                    b"JS" | b"OnInstantiate" => scripts.push((offset, value.clone())),
                    b"XFA" => xfa.push((offset, value.clone())),
                    b"Subtype" if value.as_name() == Some(b"RichMedia") => {
                        found.push(Found::Action {
                            kind: FindingKind::ActiveContent,
                            severity: Severity::Alert,
                            offset,
                            detail: "PDF with a RichMedia (Flash) annotation".to_owned(),
                        });
                    }
                    b"EF" => {
                        let name = file_name(doc, dict);
                        if let Some(ef) = doc.resolve(value).as_dict() {
                            for (_, stream) in ef {
                                let named = named_streams.entry(stream.clone()).or_default();
                                if named.is_empty() {
                                    named.clone_from(&name);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        };
        walk(&object.value, 0, &mut visit);
    }
    // Every version of a stream a file specification names is screened as an
    // attachment (an update may redefine it under its number).
    for (stream, name) in &named_streams {
        for &index in shared.lookup_every_version(stream) {
            if shared
                .objects
                .get(index)
                .is_some_and(|o| o.stream.is_some())
            {
                let entry = attachments.entry(index).or_default();
                if entry.is_empty() {
                    entry.clone_from(name);
                }
            }
        }
    }
    found.extend(links_finding(&links));
    // A script object named from many places is decoded once.
    let mut seen = std::collections::HashSet::new();
    scripts.retain(|(_, value)| !matches!(value, Obj::Ref(..)) || seen.insert(value.clone()));
    for (offset, script) in scripts {
        let text = text_of(doc, &script);
        found.push(Found::Action {
            kind: FindingKind::ActiveContent,
            severity: Severity::Alert,
            offset,
            detail: format!("PDF with JavaScript: \"{}\"", quote(&text)),
        });
    }
    found.extend(xfa_scripts(doc, xfa));
    // The versions readers extract first, then the others: the streams decoded stop at
    // MAX_PDF_STREAMS, and 5,000 versions of an attached stream, the program in the
    // newest (what qpdf extracts), reached it on older versions in file order and
    // warned without the alert (review r30-screen).
    let (read, other): (Vec<_>, Vec<_>) = attachments
        .into_iter()
        .partition(|&(object, _)| doc.is_the_version_read(object));
    found.extend(
        read.into_iter()
            .chain(other)
            .map(|(object, name)| Found::Attachment { object, name }),
    );
    found
}

/// The action types an action dictionary names, each once: readers act on the last `/S`,
/// an attacker may write another earlier for a reader that takes the first, and a type
/// written twice is one action (`/S /URI /S /URI` counted one link twice: task r34-screen).
fn action_types<'d>(doc: &'d Document, dict: &'d Dict) -> Vec<&'d [u8]> {
    let mut types: Vec<&[u8]> = Vec::new();
    for value in get_all(dict, b"S") {
        if let Some(action) = doc.resolve(value).as_name()
            && !types.contains(&action)
        {
            types.push(action);
        }
    }
    types
}

/// The catalog's `/URI /Base` (ISO 32000-1 §12.6.4.7, table 207), against which readers
/// resolve a link written without a scheme; `None` when the catalog has none.
fn uri_base(doc: &Document) -> Option<Vec<u8>> {
    let (_, catalog) = doc.catalog()?;
    let uri = doc.resolve(get(catalog, b"URI")?).as_dict()?;
    match doc.resolve(get(uri, b"Base")?) {
        Obj::Str(s) => Some(text_string(s)),
        _ => None,
    }
}

/// Visits every dictionary in `value`, depth-first, within the nesting the lexer allowed.
fn walk(value: &Obj, depth: usize, visit: &mut impl FnMut(&Dict)) {
    if depth > super::budget::MAX_PDF_NESTING_DEPTH {
        return;
    }
    match value {
        Obj::Dict(dict) => {
            visit(dict);
            for (_, item) in dict {
                walk(item, depth + 1, visit);
            }
        }
        Obj::Array(items) => {
            for item in items {
                walk(item, depth + 1, visit);
            }
        }
        _ => {}
    }
}

/// The one finding for a document's links (URI actions to ordinary targets), if it has
/// any: how many, and the first URI_TARGETS_NAMED distinct targets. A link is evidence (a
/// report may send its reader to a phishing page) but says nothing more the fortieth time:
/// a warning per link made an ordinary report with 16 links 16 warnings on every `check`,
/// `watch` arrival and gateway record (task r33-screen). Only web and mail links are
/// folded: one to another scheme is a warning of its own, one to a file share an alert
/// of its own ([`uri_finding`]).
fn links_finding(links: &[(usize, Vec<u8>)]) -> Option<Found> {
    let (offset, first) = links.first()?;
    let detail = if links.len() == 1 {
        format!("PDF with a URI action (\"{}\")", quote(first))
    } else {
        let mut seen = HashSet::new();
        let distinct: Vec<&[u8]> = links
            .iter()
            .map(|(_, target)| target.as_slice())
            .filter(|target| seen.insert(*target))
            .collect();
        let named: Vec<String> = distinct
            .iter()
            .take(super::URI_TARGETS_NAMED)
            .map(|target| format!("\"{}\"", quote(target)))
            .collect();
        let more = distinct.len().saturating_sub(named.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "PDF with {} URI actions (links a reader opens when clicked) to {} distinct targets: {}{more}",
            links.len(),
            distinct.len(),
            named.join(", ")
        )
    };
    Some(Found::Action {
        kind: FindingKind::ActiveContent,
        severity: Severity::Warning,
        offset: *offset,
        detail,
    })
}

/// A URI action: a link, or, when clicking it reaches a file share, an alert. Every `/URI`
/// written is looked at: readers click the last, and a share under an earlier one is an
/// alert still (review rv33-screen); the link is the last.
fn uri_finding(doc: &Document, dict: &Dict, offset: usize, base: Option<&[u8]>) -> Acts {
    let targets: Vec<Vec<u8>> = get_all(dict, b"URI")
        .map(|value| match doc.resolve(value) {
            Obj::Str(s) => resolved(&text_string(s), base),
            Obj::Name(n) => resolved(n, base),
            _ => Vec::new(),
        })
        .collect();
    if let Some(share) = targets.iter().rev().find(|t| is_file_share(t)) {
        return Acts::Found(Found::Action {
            kind: FindingKind::ActiveContent,
            severity: Severity::Alert,
            offset,
            detail: format!(
                "PDF with a URI action to a file share (\"{}\"): clicking it sends the user's credentials to that host",
                quote(share)
            ),
        });
    }
    if let Some(runs) = targets.iter().rev().find(|t| runs_code(t)) {
        return Acts::Found(Found::Action {
            kind: FindingKind::ActiveContent,
            severity: Severity::Alert,
            offset,
            detail: format!(
                "PDF with a URI action to a scheme that runs code (\"{}\"): clicking it hands a command to a script engine or a Windows handler",
                quote(runs)
            ),
        });
    }
    let target = targets.last().cloned().unwrap_or_default();
    if is_folded(&target) {
        return Acts::Link { offset, target };
    }
    Acts::Found(Found::Action {
        kind: FindingKind::ActiveContent,
        severity: Severity::Warning,
        offset,
        detail: format!(
            "PDF with a URI action to \"{}\": not a web or mail link, a reader hands it to whatever program handles it",
            quote(&target)
        ),
    })
}

/// The schemes of the links folded into one warning: a web page or a mail address. Any
/// other (`javascript:`, `ms-msdt:`, `search-ms:`, `ms-word:`, a relative name) is handed
/// to another program and is its own finding: folded, behind three web links it went
/// unnamed (review rv33-screen).
const FOLDED_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// The schemes whose handler runs what the link says: a script (`javascript:`,
/// `vbscript:`), the troubleshooter of the Follina exploit (`ms-msdt:`, CVE-2022-30190),
/// Office's and Windows' command handlers (`ms-officecmd:`, `ms-cxh:`, `ms-cxh-full:`,
/// `shell:`), and the compiled-help and help-centre handlers (`its:`, `ms-its:`, `mk:`,
/// `hcp:`). A link to one is an alert, as a Launch action is: a reader hands it on when
/// clicked (after a prompt at most), and no clinical report links to one.
const CODE_RUNNING_SCHEMES: [&str; 11] = [
    "javascript",
    "vbscript",
    "ms-msdt",
    "ms-officecmd",
    "ms-cxh",
    "ms-cxh-full",
    "shell",
    "its",
    "ms-its",
    "mk",
    "hcp",
];

/// Whether a URI's scheme (escapes undone, case ignored) is one whose handler runs code.
fn runs_code(uri: &[u8]) -> bool {
    let uri = String::from_utf8_lossy(&percent_decoded(uri)).to_ascii_lowercase();
    scheme_and_rest(&normalised(&uri))
        .is_some_and(|(scheme, _)| CODE_RUNNING_SCHEMES.contains(&scheme))
}

/// Whether a URI is a web or mail link, folded into the links' warning.
fn is_folded(uri: &[u8]) -> bool {
    let uri = String::from_utf8_lossy(uri).to_ascii_lowercase();
    scheme_and_rest(&normalised(&uri)).is_some_and(|(scheme, _)| FOLDED_SCHEMES.contains(&scheme))
}

/// A URI as a reader parses it (WHATWG URL parsing): without the blanks, controls and
/// byte-order marks around it, and without the tabs and line breaks inside it, which
/// parsers drop (`file:\t//host/share` is `file://host/share`, a share: review
/// rv34-screen). Every test of a link starts from this one reading.
fn normalised(uri: &str) -> String {
    uri.trim_matches(|c: char| c.is_whitespace() || c.is_control() || c == '\u{feff}')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// The scheme of a URI (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`, then `:`)
/// and what follows it.
fn scheme_and_rest(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `%XX` escapes undone (Windows undoes them before it opens a `file:` URL, so
/// `file:///%5C%5Chost` is `\\host`); a `%` not followed by two hex digits kept.
fn percent_decoded(uri: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(uri.len());
    let mut i = 0;
    while let Some(&byte) = uri.get(i) {
        let hex = uri
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(decoded) if byte == b'%' => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// How many `/` or `\` a text starts with.
fn separators(s: &str) -> usize {
    s.chars().take_while(|c| matches!(c, '/' | '\\')).count()
}

/// Whether a URI reaches a file share, where Windows authenticates with the user's
/// credentials (NTLM) before anything is shown: a UNC path (`\\host\share`, with `/` or
/// `\` in any mix, its WebDAV forms `\\host@SSL\DavWWWRoot`, and the NT forms
/// `\\?\UNC\host` and `\??\UNC\host`), `file:` naming another host
/// (`file://host/share`, `file:////host/share`, `file://localhost//host/share`), the
/// `smb:` and `cifs:` schemes, and a UNC path after any other scheme but the web's
/// (`search-ms:…location:\\host`, `ms-word:ofe|u|\\host`), each with `%XX` escapes undone.
/// `file:///C:/x` and `file://C:/x` are the reader's own disk.
fn is_file_share(uri: &[u8]) -> bool {
    let uri = String::from_utf8_lossy(&percent_decoded(uri)).to_ascii_lowercase();
    let normal = normalised(&uri);
    let uri = normal.as_str();
    if separators(uri) >= 2 || uri.starts_with("\\??\\unc\\") {
        return true;
    }
    match scheme_and_rest(uri) {
        Some(("smb" | "cifs", _)) => true,
        Some(("file", rest)) => file_url_is_share(rest),
        Some((scheme, _)) if FOLDED_SCHEMES.contains(&scheme) => false,
        Some((_, rest)) => {
            holds_unc(rest)
                || rest
                    .match_indices("file:")
                    .any(|(at, _)| file_url_is_share(&rest[at + "file:".len()..]))
        }
        None => false,
    }
}

/// Whether a text holds a UNC path anywhere: two separators together, one of them `\`
/// (`//` alone is any URL's authority).
fn holds_unc(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|pair| matches!(pair, [b'\\', b'\\' | b'/'] | [b'/', b'\\']))
}

/// Whether what follows `file:` names another host. The separators after `file:` are read
/// as one run, `/` and `\` alike (Windows takes either for the other, and WHATWG URL
/// parsing does for `file:`): two name a host (`file://host/share`, `file:\/host`); three
/// that mix in a `\` (`file:/\/host/share`, `file:\\\host`) are the same host, as no writer
/// of a local `file:///C:/x` puts a backslash there; four or more are a UNC path.
/// Only three forward slashes are the reader's own disk (`file:///C:/x`, `file:///tmp/x`).
fn file_url_is_share(rest: &str) -> bool {
    let run = separators(rest);
    let mixed = rest[..run].contains('\\');
    match run {
        2 => names_another_host(&rest[run..]),
        3 if mixed => names_another_host(&rest[run..]),
        n => n >= 4,
    }
}

/// Whether the authority of a `file:` URL (what follows its separators) is another host:
/// not empty, not a drive letter (`C:`, `C|`), and not `localhost` unless a UNC path
/// follows it (`file://localhost//host/share`).
fn names_another_host(after: &str) -> bool {
    let host = after.split(['/', '\\']).next().unwrap_or_default();
    let drive = host.len() == 2 && host.ends_with([':', '|']);
    if host == "localhost" {
        return separators(&after[host.len()..]) >= 2;
    }
    !host.is_empty() && !drive
}

/// The schemes whose base a scheme-relative link (`//host/path`) takes (RFC 3986 §5.2),
/// the web's: a browser resolves it so. Under any other base (`C:`, `x-foo:`, `file:`) it
/// stays the UNC path Windows reads (review rv34-screen).
const WEB_SCHEMES: [&str; 2] = ["http", "https"];

/// The URI a reader opens for `uri`, given the document's `/URI /Base`. A URI with a
/// scheme is taken as written. One without follows the base, as MuPDF joins them
/// (`mutool run`, `page.getLinks()`: base then URI), whether the base has a scheme or not:
/// under `\\evil\share\`, `x.pdf` is `\\evil\share\x.pdf`, a share (review
/// rv34-screen). A scheme-relative `//host/path` takes a web base's scheme (RFC 3986
/// §5.2): with an `https:` base, `//cdn.example.org/x` is a web link, not a share. Without a
/// base, or under another, it is left as written, and `//host/path` stays a UNC path:
/// MuPDF prepends `file://` (`file:////host/path`) and Windows' shell opens `//host/path`
/// on the share, credentials sent. `\\host`, `///host` and `//\host` are never resolved: no
/// web address starts so, and Windows reads them as UNC; nor is a `//host` in a WebDAV
/// UNC form ([`is_webdav_unc`]: `//evil@SSL/DavWWWRoot`), which MuPDF joins to a web
/// base but every reader taking the link as written opens on the share (session 35).
fn resolved(uri: &[u8], base: Option<&[u8]>) -> Vec<u8> {
    let Some(base) = base else {
        return uri.to_vec();
    };
    let written = normalised(&String::from_utf8_lossy(uri));
    let base = normalised(&String::from_utf8_lossy(base));
    if scheme_and_rest(&written).is_some() {
        return uri.to_vec();
    }
    let leading = &written[..separators(&written)];
    if leading.len() < 2 {
        return format!("{base}{written}").into_bytes();
    }
    match scheme_and_rest(&base) {
        Some((scheme, _))
            if leading == "//"
                && WEB_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
                && !is_webdav_unc(&written[leading.len()..]) =>
        {
            format!("{scheme}:{written}").into_bytes()
        }
        _ => uri.to_vec(),
    }
}

/// Whether what follows the `//` of a scheme-relative link names a share in Windows'
/// WebDAV UNC form (the WebClient's syntax, `\\host[@SSL][@port]\DavWWWRoot\path`), `%XX`
/// escapes undone and case ignored: an authority ending with `@SSL` or `@` and a port
/// (`evil@SSL`, `evil@SSL@443`, `evil@8080`), or a first path segment `DavWWWRoot`. No web
/// address is written so: as a URL `evil@SSL` is the user `evil` at a host named `SSL`.
fn is_webdav_unc(after_slashes: &str) -> bool {
    let decoded =
        String::from_utf8_lossy(&percent_decoded(after_slashes.as_bytes())).to_ascii_lowercase();
    let mut parts = decoded.split(['/', '\\']);
    let authority = parts.next().unwrap_or_default();
    let port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let webdav_host = authority
        .split('@')
        .skip(1)
        .any(|part| part == "ssl" || port(part));
    webdav_host || parts.next() == Some("davwwwroot")
}

/// The finding for an action dictionary of type `action`, if it is one that matters.
fn action_finding(
    doc: &Document,
    dict: &Dict,
    action: &[u8],
    offset: usize,
    base: Option<&[u8]>,
) -> Option<Acts> {
    let target = |key: &[u8]| -> String {
        match get(dict, key).map(|v| doc.resolve(v)) {
            Some(Obj::Str(s)) => quote(s),
            Some(Obj::Dict(spec)) => quote(&file_name(doc, spec)),
            Some(Obj::Name(n)) => quote(n),
            _ => String::new(),
        }
    };
    let (severity, what) = match action {
        b"Launch" => {
            let win = get(dict, b"Win")
                .map(|w| doc.resolve(w))
                .and_then(Obj::as_dict)
                .and_then(|w| get(w, b"F"))
                .map(|f| match doc.resolve(f) {
                    Obj::Str(s) => quote(s),
                    _ => String::new(),
                })
                .unwrap_or_default();
            let shown = if win.is_empty() { target(b"F") } else { win };
            (
                Severity::Alert,
                format!("a Launch action (starts \"{shown}\")"),
            )
        }
        b"GoToR" | b"GoToE" => {
            let file = target(b"F");
            let remote = if is_remote(&file) {
                " on a remote host: opening it sends the user's credentials"
            } else {
                ""
            };
            let kind = String::from_utf8_lossy(action);
            (
                Severity::Alert,
                format!("a {kind} action to another document \"{file}\"{remote}"),
            )
        }
        b"ImportData" => (
            Severity::Alert,
            format!("an ImportData action (from \"{}\")", target(b"F")),
        ),
        b"SubmitForm" => (
            Severity::Alert,
            format!("a SubmitForm action (to \"{}\")", target(b"F")),
        ),
        b"URI" => return Some(uri_finding(doc, dict, offset, base)),
        // Reported from its /JS, with the script quoted; one without /JS is reported too,
        // as a script a reader may still find where this parser did not.
        b"JavaScript" if get(dict, b"JS").is_some() => return None,
        b"JavaScript" => (Severity::Alert, "a JavaScript action".to_owned()),
        // Actions that run code or content a reader hands to a player or a host
        // (ISO 32000-2 §12.6.4.19, Adobe's Flash and 3D extensions): each runs script.
        b"RichMediaExecute" => (
            Severity::Alert,
            format!(
                "a RichMediaExecute action (runs a command in the rich media instance: \"{}\")",
                target(b"CMD")
            ),
        ),
        _ => return None,
    };
    Some(Acts::Found(Found::Action {
        kind: FindingKind::ActiveContent,
        severity,
        offset,
        detail: format!("PDF with {what}"),
    }))
}

/// A file share (read as [`is_file_share`] reads a link: one vocabulary) or a URL:
/// reaching it leaks credentials.
fn is_remote(target: &str) -> bool {
    is_file_share(target.as_bytes()) || target.contains("://")
}

/// The file name of a file specification: `/UF`, else `/F`, else `/DOS` / `/Unix` /
/// `/Mac`; a string or a name.
pub fn file_name(doc: &Document, spec: &Dict) -> Vec<u8> {
    for key in [&b"UF"[..], b"F", b"DOS", b"Unix", b"Mac"] {
        match get(spec, key).map(|v| doc.resolve(v)) {
            Some(Obj::Str(s)) => return text_string(s),
            Some(Obj::Name(n)) => return n.clone(),
            _ => {}
        }
    }
    Vec::new()
}

/// A PDF text string as bytes to show: UTF-16BE (with its byte-order mark) narrowed to
/// UTF-8, anything else as it is.
pub fn text_string(s: &[u8]) -> Vec<u8> {
    if let Some(rest) = s.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units).into_bytes();
    }
    s.to_vec()
}

/// The text a `/JS` or XFA value holds: a string, or a stream decoded.
fn text_of(doc: &mut Document, value: &Obj) -> Vec<u8> {
    match doc.lookup(value) {
        Some(index) => text_of_version(doc, index),
        None => match doc.resolve(value) {
            Obj::Str(s) => text_string(s),
            _ => Vec::new(),
        },
    }
}

/// The text of object `index` (one version of an object): its stream decoded, or its
/// string.
fn text_of_version(doc: &mut Document, index: usize) -> Vec<u8> {
    match doc.objects.get(index) {
        Some(object) if object.stream.is_some() => doc.decode_stream(index).unwrap_or_default(),
        Some(object) => match &object.value {
            Obj::Str(s) => text_string(s),
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// The XFA forms of `doc` (each `/XFA` value with the object it is in) that hold a
/// script, each distinct list of packets once.
///
/// The form a reader runs (the catalog's) is finished whole first: its packets decoded
/// and searched, put together, their other versions read, before any budget goes on
/// other forms. Every form's packets decoded before any was put together, one other
/// `/XFA` naming a stream inflating to MAX_PDF_INFLATED_BYTES left nothing to put the
/// catalog's packets together with, and its script split across two was a warning
/// without the alert (review r32-pdf). The other forms then have every packet decoded
/// (once, however many arrays name it) and searched on its own before any of them is
/// put together: putting packets together costs decoding work, and that cost must not
/// keep a packet from being read; MAX_PDF_STREAMS + 1 arrays naming one stream decoded
/// it each time and hid a later form's script (task r32-pdf).
fn xfa_scripts(doc: &mut Document, xfa: Vec<(usize, Obj)>) -> Vec<Found> {
    let mut forms: Vec<(usize, Vec<Obj>)> = Vec::new();
    let mut distinct: HashSet<Vec<Obj>> = HashSet::new();
    for (offset, value) in xfa {
        let parts = xfa_packets(doc, &value);
        if distinct.insert(parts.clone()) {
            forms.push((offset, parts));
        }
    }
    let run = catalog_form(doc);
    let (run, others): (Vec<_>, Vec<_>) = forms
        .into_iter()
        .partition(|(_, parts)| Some(parts) == run.as_ref());
    let mut packets = Packets::default();
    let mut found = Vec::new();
    for (offset, parts) in run {
        packets.decode(doc, &parts);
        found.extend(packets.form_script(doc, offset, &parts));
    }
    for (_, parts) in &others {
        packets.decode(doc, parts);
    }
    for (offset, parts) in others {
        found.extend(packets.form_script(doc, offset, &parts));
    }
    found
}

/// The XFA packets read so far, over every form of a document: each object decoded and
/// searched once, however many forms name it.
#[derive(Default)]
struct Packets {
    /// The decoded text of each packet object.
    texts: HashMap<Obj, Vec<u8>>,
    /// The script each packet holds on its own.
    alone: HashMap<Obj, Vec<u8>>,
    /// Packets whose decoded text was copied into a form put together: the first copy is
    /// paid for by the decoding (charging it again made a real form of 2 x 20 MiB cost
    /// 80 MiB and reach the limit, review r32-pdf); every later one is charged.
    copied: HashSet<Obj>,
    /// Packets whose other versions were read.
    versions_read: HashSet<Obj>,
}

impl Packets {
    /// Decodes the packets of `parts` not decoded yet, and searches each on its own.
    fn decode(&mut self, doc: &mut Document, parts: &[Obj]) {
        for part in parts {
            if self.texts.contains_key(part) {
                continue;
            }
            let text = text_of(doc, part);
            if let Some(script) = xfa_script_in_any_encoding(&text) {
                self.alone.insert(part.clone(), script);
            }
            self.texts.insert(part.clone(), text);
        }
    }

    /// The finding for the form of packets `parts` (decoded already), if it holds a
    /// script: in a packet alone, in the packets put together, or in another version of
    /// one.
    fn form_script(&mut self, doc: &mut Document, offset: usize, parts: &[Obj]) -> Option<Found> {
        let script = parts
            .iter()
            .find_map(|part| self.alone.get(part).cloned())
            // One packet alone was searched already; two or more make a document in which
            // a tag may be split across packets.
            .or_else(|| {
                (parts.len() > 1)
                    .then(|| xfa_script_in_any_encoding(&self.xml(doc, parts)))
                    .flatten()
            })
            .or_else(|| script_in_other_versions(doc, parts, &mut self.versions_read))?;
        Some(Found::Action {
            kind: FindingKind::ActiveContent,
            severity: Severity::Alert,
            offset,
            detail: format!("PDF with an XFA form script: \"{}\"", quote(&script)),
        })
    }

    /// The XML document the packets `parts` make together, in their order, each packet's
    /// text repeated where the array repeats it. Copies beyond a packet's first are
    /// charged as decoding work, so that the XML stays within MAX_PDF_INFLATED_BYTES
    /// however often arrays repeat a packet; reaching it cuts the XML there and is said.
    fn xml(&mut self, doc: &mut Document, parts: &[Obj]) -> Vec<u8> {
        let mut xml = Vec::new();
        for part in parts {
            let Some(text) = self.texts.get(part) else {
                continue;
            };
            if !self.copied.insert(part.clone()) {
                if text.len() > doc.budget.decoded_left() {
                    doc.budget.reach(super::budget::Limit::DecodedBytes);
                    break;
                }
                doc.budget.spend_decoded(text.len());
            }
            xml.extend_from_slice(text);
        }
        xml
    }
}

/// The packets of the XFA form a reader runs: the catalog's `/AcroForm` `/XFA`.
fn catalog_form(doc: &Document) -> Option<Vec<Obj>> {
    let (_, catalog) = doc.catalog()?;
    let form = doc.resolve(get(catalog, b"AcroForm")?).as_dict()?;
    Some(xfa_packets(doc, get(form, b"XFA")?))
}

/// The packets of an `/XFA` value: the objects an array names (its packet names are not
/// read), or the one stream or string it is.
fn xfa_packets(doc: &Document, value: &Obj) -> Vec<Obj> {
    match doc.resolve(value) {
        Obj::Array(items) => items
            .iter()
            .filter(|i| matches!(i, Obj::Ref(..)))
            .cloned()
            .collect(),
        _ => vec![value.clone()],
    }
}

/// An XFA script in a version of a packet other than the one read: an update can
/// redefine a packet under its number, and readers take the version the newest
/// cross-reference section names (a reader repairing the file, the last in it), which
/// need not be the last parsed. Each such version is read on its own.
fn script_in_other_versions(
    doc: &mut Document,
    parts: &[Obj],
    read_already: &mut HashSet<Obj>,
) -> Option<Vec<u8>> {
    // Each object once, however many packets (of however many forms) name it: read once
    // per naming, 10,000 packets naming one object defined 10,000 times (a 900 kB PDF)
    // ran past 300 s (review r30-screen).
    for part in parts {
        if !read_already.insert(part.clone()) {
            continue;
        }
        let versions = doc.lookup_every_version(part).to_vec();
        if versions.len() < 2 {
            continue;
        }
        let read = doc.lookup(part);
        for index in versions.into_iter().filter(|&i| Some(i) != read) {
            if let Some(script) = xfa_script_in_any_encoding(&text_of_version(doc, index)) {
                return Some(script);
            }
        }
    }
    None
}

/// The first `<script>` of an XFA form, in whichever encoding its XML parser reads it:
/// UTF-8 (or any ASCII superset), or UTF-16 in either byte order, with or without a byte
/// order mark (XML 1.0 appendix F: `<?` as `3C 00 3F 00` or `00 3C 00 3F` is enough, and
/// expat, which python3's XML parser is, reads either). The XFA packets are one XML
/// document put together from several streams, so a UTF-16 packet may start at an odd
/// offset of it: both alignments of both byte orders are read. The content, as UTF-8.
///
/// A `<` in any of these readings is the code unit 0x003C: the byte 0x3C beside a zero
/// byte in the raw bytes. Without such a pair no UTF-16 reading holds a tag (a unit of
/// other bytes is another character; a surrogate pair is one past U+FFFF), so the four
/// are not made: a decoy of 64 MiB of zeros was widened four times over for nothing
/// (task r33-screen).
fn xfa_script_in_any_encoding(xml: &[u8]) -> Option<Vec<u8>> {
    if let Some(script) = xfa_script(xml) {
        return Some(script.to_vec());
    }
    if !may_hold_utf16_tag(xml) {
        return None;
    }
    let utf16 = |from: usize, unit: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = xml
            .get(from..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|pair| unit([pair[0], pair[1]]))
            .collect();
        String::from_utf16_lossy(&units).into_bytes()
    };
    [0, 1]
        .into_iter()
        .flat_map(|from| {
            [
                utf16(from, u16::from_le_bytes),
                utf16(from, u16::from_be_bytes),
            ]
        })
        .find_map(|text| xfa_script(&text).map(<[u8]>::to_vec))
}

/// Whether some UTF-16 reading of `xml` (either byte order, either alignment) may hold a
/// `<`: only where the bytes `3C 00` or `00 3C` occur.
fn may_hold_utf16_tag(xml: &[u8]) -> bool {
    memchr::memchr_iter(b'<', xml).any(|at| {
        at.checked_sub(1).and_then(|before| xml.get(before)) == Some(&0)
            || xml.get(at + 1) == Some(&0)
    })
}

/// The first `<script>` element of an XFA form (any namespace prefix), its content.
fn xfa_script(xml: &[u8]) -> Option<&[u8]> {
    for open in memchr::memchr_iter(b'<', xml) {
        let rest = xml.get(open + 1..)?;
        let name_len = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
        if local.eq_ignore_ascii_case(b"script") {
            let close = rest.iter().position(|b| *b == b'>')?;
            if close > 0 && rest.get(close - 1) == Some(&b'/') {
                continue; // <script/>: empty
            }
            let body = &rest[close + 1..];
            let end = memchr::memmem::find(body, b"</").unwrap_or(body.len());
            let script = body[..end].trim_ascii();
            if !script.is_empty() {
                return Some(script);
            }
        }
    }
    None
}

/// Attacker-chosen text shown safely and cut short.
pub fn quote(text: &[u8]) -> String {
    let text = text.trim_ascii();
    let mut shown = escape_bytes(&text[..text.len().min(QUOTED)]);
    if text.len() > QUOTED {
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfa_scripts_are_found_with_any_prefix_and_empty_ones_are_not() {
        let xml = b"<xdp:xdp><template><field><event activity=\"initialize\"><script contentType=\"application/x-javascript\">app.alert(1)</script></event></field></template></xdp:xdp>";
        assert_eq!(xfa_script(xml), Some(&b"app.alert(1)"[..]));
        assert_eq!(
            xfa_script(b"<x:Script>xfa.host.gotoURL()</x:Script>"),
            Some(&b"xfa.host.gotoURL()"[..])
        );
        assert_eq!(xfa_script(b"<script/><scripts>no</scripts>"), None);
    }

    /// XFA in UTF-16, as expat reads it: little and big endian, with and without a byte
    /// order mark, and a packet at an odd offset after a UTF-8 one (review r29-screen:
    /// none of these was searched).
    #[test]
    fn xfa_scripts_are_found_in_utf16_packets() {
        let xml = "<?xml version=\"1.0\"?><xdp:xdp><script>app.alert(16)</script></xdp:xdp>";
        let le: Vec<u8> = xml.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = xml.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let found = Some(b"app.alert(16)".to_vec());
        for (name, bytes) in [
            ("le", le.clone()),
            ("be", be.clone()),
            ("le bom", [&[0xFF, 0xFE][..], &le].concat()),
            ("be bom", [&[0xFE, 0xFF][..], &be].concat()),
            ("odd", [&b"<xdp>"[..], &le].concat()),
        ] {
            assert_eq!(xfa_script_in_any_encoding(&bytes), found, "{name}");
        }
        // What no UTF-16 reading can make a tag of is not read as UTF-16: a `<` is a
        // 0x3C byte beside a zero byte.
        assert!(!may_hold_utf16_tag(&[0; 64]));
        assert!(!may_hold_utf16_tag(b"<a<b"));
        assert!(may_hold_utf16_tag(b"x<\0"));
        assert!(may_hold_utf16_tag(b"\0<"));
        for from in [0, 1] {
            for wide in [le.as_slice(), be.as_slice()] {
                let shifted = [&b"x"[..from], wide].concat();
                assert!(may_hold_utf16_tag(&shifted));
            }
        }
        let empty = "<script/><scripts>no</scripts>";
        let empty: Vec<u8> = empty.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(xfa_script_in_any_encoding(&empty), None);
    }

    #[test]
    fn remote_targets_are_unc_paths_and_urls() {
        assert!(is_remote("\\\\\\\\10.0.0.1\\\\share\\\\x.pdf"));
        assert!(is_remote("\\\\host\\share"));
        assert!(is_remote("http://evil.example/x.pdf"));
        assert!(!is_remote("other.pdf"));
    }

    #[test]
    fn file_shares_are_unc_paths_remote_file_urls_and_smb() {
        for share in [
            &b"\\\\host\\share"[..],
            b"//host/share",
            b"\\/host/share",
            b" \\\\host@SSL\\DavWWWRoot\\x",
            b"file://host/share/x.pdf",
            b"FILE:////host/share",
            b"file:\\\\host\\share",
            // One class with `file://host/share` however the separators mix (task r34-screen).
            b"file:/\\/host/share",
            b"file:\\/host/share",
            b"file:\\\\\\host\\share",
            b"FILE:/\\/host/share",
            // Review rv34-screen: tabs and line breaks inside are dropped, as URL parsers do.
            b"file:\t//evil/share",
            b"file:/\n/evil/share",
            b"fi\tle://evil/share",
            b"\t/\r/evil/share",
            b"smb://host/share",
            b"cifs://host/share",
            // Review rv33-screen: through escapes, the NT forms, localhost and other
            // schemes.
            b"file:///%5C%5Chost%5Cshare",
            b"%5c%5chost%5cshare",
            b"file://localhost//host/share",
            b"\\??\\UNC\\host\\share",
            b"\xef\xbb\xbf\\\\host\\share",
            b"search-ms:query=x&crumb=location:\\\\host\\share",
            b"ms-word:ofe|u|\\\\host\\share\\x.docx",
            b"ms-word:ofe|u|file://host/share/x.docx",
        ] {
            assert!(is_file_share(share), "{}", String::from_utf8_lossy(share));
        }
        for local in [
            &b"https://example.org/"[..],
            b"mailto:a@example.org",
            b"file:///C:/reports/x.pdf",
            b"file://C:/reports/x.pdf",
            b"file://localhost/x.pdf",
            b"file:report.pdf",
            b"/reports/x.pdf",
            b"",
            b"ms-word:ofe|u|https://example.org/x.docx",
            b"https://example.org/a\\\\b",
            b"file://localhost/C:/x.pdf",
            b"file:///host/share/local.pdf",
            b"file:/\\/C:/reports/x.pdf",
        ] {
            assert!(!is_file_share(local), "{}", String::from_utf8_lossy(local));
        }
    }

    /// Only web and mail links are folded into one warning (review rv33-screen).
    #[test]
    fn only_web_and_mail_links_are_folded() {
        for folded in [&b"https://example.org/"[..], b"HTTP://x", b" mailto:a@b"] {
            assert!(is_folded(folded), "{}", String::from_utf8_lossy(folded));
        }
        for own in [
            &b"javascript:app.alert(1)"[..],
            b"ms-msdt:/id PCWDiagnostic",
            b"search-ms:query=x",
            b"report.pdf",
            b"1http://x",
            b"",
        ] {
            assert!(!is_folded(own), "{}", String::from_utf8_lossy(own));
        }
        assert_eq!(percent_decoded(b"%5C%5c%zz%4"), b"\\\\%zz%4");
    }

    #[test]
    fn links_to_schemes_that_run_code_are_told_apart_from_other_links() {
        for runs in [
            &b"javascript:app.alert(1)"[..],
            b" JavaScript:x",
            b"ms-msdt:/id PCWDiagnostic /skip force /param \"IT_BrowseForFile=x\"",
            b"ms-officecmd:{}",
            b"vbscript:msgbox(1)",
            b"ms-its:mhtml:file://x.chm::/a.htm",
            b"hcp://services/search?query=x",
            b"shell:startup",
            b"%6Ds-msdt:/id x",
        ] {
            assert!(runs_code(runs), "{}", String::from_utf8_lossy(runs));
        }
        for other in [
            &b"https://example.org/javascript:x"[..],
            b"mailto:ms-msdt@example.org",
            b"search-ms:query=x",
            b"report.pdf",
            b"tel:+3212345678",
            b"",
        ] {
            assert!(!runs_code(other), "{}", String::from_utf8_lossy(other));
        }
    }

    /// Task r34-screen: a scheme-relative link is resolved against the `/URI /Base` as
    /// MuPDF and RFC 3986 do; without a base, or written with a `\`, it stays the UNC path
    /// Windows reads.
    #[test]
    fn links_without_a_scheme_are_resolved_against_the_base() {
        let https = Some(&b"https://example.org/reports/"[..]);
        let shown = |uri: &[u8], base| String::from_utf8_lossy(&resolved(uri, base)).into_owned();
        assert_eq!(
            shown(b"//cdn.example.org/x", https),
            "https://cdn.example.org/x"
        );
        assert_eq!(
            shown(b"guide.html", https),
            "https://example.org/reports/guide.html"
        );
        assert_eq!(shown(b"//cdn.example.org/x", None), "//cdn.example.org/x");
        // Review rv34-screen: `//host` takes only a web base's scheme; a base without a
        // scheme is joined too, and a share base makes a share.
        for base in [
            &b"file:///C:/docs/"[..],
            b"C:",
            b"x-foo:",
            b"FILE:///C:/docs/",
        ] {
            assert_eq!(shown(b"//host/share", Some(base)), "//host/share");
        }
        assert_eq!(
            shown(b"//cdn.example.org/x", Some(b"HTTPS:")),
            "HTTPS://cdn.example.org/x"
        );
        for (base, joined) in [
            (&b"\\\\evil\\share\\"[..], "\\\\evil\\share\\x.pdf"),
            (b"//evil/share/", "//evil/share/x.pdf"),
            (b"file://evil/share/", "file://evil/share/x.pdf"),
        ] {
            assert_eq!(shown(b"x.pdf", Some(base)), joined);
            assert!(is_file_share(joined.as_bytes()), "{joined}");
        }
        for kept in [
            &b"\\\\host\\share"[..],
            b"/\\host/share",
            b"///host/share",
            b"//\\host",
        ] {
            assert_eq!(
                resolved(kept, https),
                kept,
                "{}",
                String::from_utf8_lossy(kept)
            );
        }
        assert_eq!(shown(b"mailto:a@b", https), "mailto:a@b");
        assert_eq!(
            shown(b"//cdn.example.org/x", Some(b"no scheme")),
            "//cdn.example.org/x"
        );
        assert!(!is_file_share(&resolved(b"//cdn.example.org/x", https)));
        assert!(is_file_share(&resolved(b"//cdn.example.org/x", None)));
        assert!(is_file_share(&resolved(
            b"//host/share",
            Some(b"file:///C:/docs/")
        )));
    }
}
