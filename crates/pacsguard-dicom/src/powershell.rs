//! What a PowerShell command line hides in `-EncodedCommand`: the base64 of the script's
//! UTF-16LE text, which `powershell.exe` and `pwsh` decode and run. The line is already
//! a command (see [`crate::shell`]); decoded, the finding says what it runs, and whether
//! that downloads and runs more, instead of a line of base64.

/// What PowerShell takes for `-EncodedCommand`: any prefix of the name from `-e` on (the
/// parameter binder accepts an unambiguous prefix, and `-e` resolves to it), and the
/// alias `-ec`; the switch character may be `-` or `/`, or an en dash, em dash or
/// horizontal bar (UTF-8), which PowerShell accepts as `-` too.
fn is_encoded_command_switch(token: &[u8]) -> bool {
    let name = if let Some(rest) = token.strip_prefix(b"-").or(token.strip_prefix(b"/")) {
        rest
    } else if let Some(rest) = [&b"\xE2\x80\x93"[..], b"\xE2\x80\x94", b"\xE2\x80\x95"]
        .iter()
        .find_map(|dash| token.strip_prefix(*dash))
    {
        rest
    } else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    name == b"ec" || (!name.is_empty() && b"encodedcommand".starts_with(&name))
}

/// The script an encoded command in `line` (a PowerShell command line) runs, decoded,
/// if the line has `-EncodedCommand` followed by base64 of UTF-16LE text. Called once
/// per file, on the line found: linear in its length.
pub fn encoded_command(line: &[u8]) -> Option<String> {
    let mut tokens = line
        .split(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .filter(|t| !t.is_empty());
    while let Some(token) = tokens.next() {
        if is_encoded_command_switch(token) {
            let value = tokens.next()?;
            let value = value.trim_ascii_end();
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            return utf16le_text(&base64(value)?);
        }
    }
    None
}

/// Whether a script downloads and runs what it downloads, as the cradles of malware do:
/// a download (`DownloadString`, `Invoke-WebRequest`, `Net.WebClient`, BITS) and a way to
/// run it (`Invoke-Expression`, `iex`, `Start-Process`, an assembly loaded from bytes).
pub fn downloads_and_runs(script: &str) -> bool {
    let lower = script.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let download = has(&[
        "downloadstring",
        "downloaddata",
        "downloadfile",
        "net.webclient",
        "invoke-webrequest",
        "invoke-restmethod",
        "iwr ",
        "irm ",
        "start-bitstransfer",
        "msxml2.xmlhttp",
    ]);
    let runs = has(&[
        "invoke-expression",
        "iex",
        "start-process",
        "invoke-item",
        "reflection.assembly",
        "| &",
        "&(",
        "& (",
    ]);
    download && runs
}

/// Standard base64 (with or without padding) decoded; `None` for any other byte.
fn base64(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text
        .strip_suffix(b"==")
        .or(text.strip_suffix(b"="))
        .unwrap_or(text);
    if text.len() < 4 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut word = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            word |= value(c)? << (18 - 6 * i);
        }
        let bytes = word.to_be_bytes();
        // 4 characters give 3 bytes, 3 give 2, 2 give 1; 1 is no byte.
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// UTF-16LE text with no control characters but whitespace: what PowerShell would parse.
fn utf16le_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 2 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let text = String::from_utf16(&units).ok()?;
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's own example (about_PowerShell_exe): `dir "c:\program files" `.
    #[test]
    fn the_documented_example_decodes() {
        let line = b"powershell.exe -encodedCommand ZABpAHIAIAAiAGMAOgBcAHAAcgBvAGcAcgBhAG0AIABmAGkAbABlAHMAIgAgAA==";
        assert_eq!(
            encoded_command(line).as_deref(),
            Some("dir \"c:\\program files\" ")
        );
        assert!(!downloads_and_runs("dir \"c:\\program files\" "));
    }

    #[test]
    fn every_spelling_of_the_switch_is_read() {
        for switch in [
            "-e",
            "-E",
            "-ec",
            "-enc",
            "-EncodedCommand",
            "/enc",
            "\u{2013}enc",
        ] {
            let line = format!(
                "pwsh -NoProfile {switch} ZABpAHIAIAAiAGMAOgBcAHAAcgBvAGcAcgBhAG0AIABmAGkAbABlAHMAIgAgAA=="
            );
            assert!(encoded_command(line.as_bytes()).is_some(), "{switch}");
        }
        for other in ["-ex", "-exec", "-f", "-", "/", "-encodedcommandx"] {
            let line = format!(
                "pwsh {other} ZABpAHIAIAAiAGMAOgBcAHAAcgBvAGcAcgBhAG0AIABmAGkAbABlAHMAIgAgAA=="
            );
            assert_eq!(encoded_command(line.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn what_is_not_base64_of_text_is_no_command() {
        assert_eq!(encoded_command(b"powershell -enc"), None);
        assert_eq!(encoded_command(b"powershell -enc !!!!"), None);
        assert_eq!(encoded_command(b"powershell -enc AAAA"), None); // NULs
        assert_eq!(encoded_command(b"powershell -enc QQ"), None); // too short
    }
}
