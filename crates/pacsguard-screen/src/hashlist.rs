//! Known-bad SHA-256 lists: one hash per line (`sha256sum` output works: the first field
//! is taken), or a CSV with a `sha256_hash` column (the MalwareBazaar export, whose header
//! is a `#` comment line).

use std::collections::HashSet;

/// Entries accepted from one list. MalwareBazaar's full export is under a million; ten
/// million hashes are 320 MB of set, the most a screening host should give to this.
pub const MAX_HASHLIST_ENTRIES: usize = 10_000_000;
/// Longest line read; a CSV line of MalwareBazaar is a few hundred bytes.
pub const MAX_HASHLIST_LINE: usize = 64 * 1024;

const CSV_COLUMN: &str = "sha256_hash";

#[derive(Debug, thiserror::Error)]
pub enum HashListError {
    #[error("{origin}, line {line}: {reason}")]
    Line {
        origin: String,
        line: usize,
        reason: String,
    },
    #[error("{origin}: more than {limit} hashes (MAX_HASHLIST_ENTRIES)")]
    TooMany { origin: String, limit: usize },
    #[error("{origin}: no hashes in the list")]
    Empty { origin: String },
}

/// A set of known-bad SHA-256 digests.
#[derive(Clone, Debug, Default)]
pub struct HashList {
    origin: String,
    hashes: HashSet<[u8; 32]>,
}

impl HashList {
    /// Parses the list read from `origin` (a file name, for messages).
    pub fn parse(origin: &str, text: &[u8]) -> Result<HashList, HashListError> {
        HashList::parse_at_most(origin, text, MAX_HASHLIST_ENTRIES)
    }

    /// [`HashList::parse`] with `limit` for [`MAX_HASHLIST_ENTRIES`]: the same code, so
    /// that its boundary is tested without ten million lines.
    fn parse_at_most(origin: &str, text: &[u8], limit: usize) -> Result<HashList, HashListError> {
        let mut list = HashList {
            origin: origin.to_owned(),
            hashes: HashSet::new(),
        };
        let mut csv_column: Option<usize> = None;
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line_number = index + 1;
            let fail = |reason: String| HashListError::Line {
                origin: origin.to_owned(),
                line: line_number,
                reason,
            };
            if raw.len() > MAX_HASHLIST_LINE {
                return Err(fail(format!("longer than {MAX_HASHLIST_LINE} bytes")));
            }
            let line = std::str::from_utf8(raw)
                .map_err(|_| fail("not UTF-8 text".to_owned()))?
                .trim();
            if line.is_empty() {
                continue;
            }
            let header = line.trim_start_matches('#').trim();
            if csv_column.is_none() && header.contains(CSV_COLUMN) {
                let fields = csv_fields(header);
                csv_column = fields.iter().position(|f| f == CSV_COLUMN);
                if csv_column.is_none() {
                    return Err(fail(format!("a header without a \"{CSV_COLUMN}\" column")));
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let field = match csv_column {
                Some(column) => csv_fields(line)
                    .into_iter()
                    .nth(column)
                    .ok_or_else(|| fail(format!("no field {} (\"{CSV_COLUMN}\")", column + 1)))?,
                None => line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            };
            let hash = parse_hex(&field).ok_or_else(|| {
                fail(format!(
                    "\"{}\" is not a SHA-256 hash (64 hexadecimal digits)",
                    field.escape_debug()
                ))
            })?;
            list.hashes.insert(hash);
            if list.hashes.len() > limit {
                return Err(HashListError::TooMany {
                    origin: origin.to_owned(),
                    limit,
                });
            }
        }
        if list.hashes.is_empty() {
            return Err(HashListError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(list)
    }

    pub fn contains(&self, sha256: &[u8; 32]) -> bool {
        self.hashes.contains(sha256)
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote) into trimmed fields.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field).trim().to_owned()),
            c => field.push(c),
        }
    }
    fields.push(field.trim().to_owned());
    fields
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digits = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// The entry limit at a value small enough to reach: that many distinct hashes are
    /// read (a repeated one is not counted twice), one more is an error naming the list
    /// and the limit, never a list silently cut short.
    #[test]
    fn hashes_at_the_entry_limit_are_read_and_one_more_is_an_error() {
        let lines = |n: usize| -> String { (0..n).map(|i| format!("{i:064x}\n")).collect() };
        let list =
            HashList::parse_at_most("bad.txt", lines(3).as_bytes(), 3).expect("at the limit");
        assert_eq!(list.hashes.len(), 3);
        let repeated = format!("{}{}", lines(3), lines(1));
        assert!(HashList::parse_at_most("bad.txt", repeated.as_bytes(), 3).is_ok());
        let error = HashList::parse_at_most("bad.txt", lines(4).as_bytes(), 3)
            .expect_err("one past the limit");
        assert!(
            matches!(error, HashListError::TooMany { limit: 3, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "bad.txt: more than 3 hashes (MAX_HASHLIST_ENTRIES)"
        );
    }

    fn digest_of_empty() -> [u8; 32] {
        parse_hex(EMPTY_SHA256).expect("hex")
    }

    #[test]
    fn plain_lists_and_sha256sum_output() {
        let text = format!(
            "# bad things\n\n{}  evil.exe\r\n",
            EMPTY_SHA256.to_uppercase()
        );
        let list = HashList::parse("bad.txt", text.as_bytes()).expect("parses");
        assert!(list.contains(&digest_of_empty()));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn malwarebazaar_csv_with_a_commented_header_and_quoted_commas() {
        let text = format!(
            "################\n# MalwareBazaar export\n\
             # \"first_seen_utc\",\"sha256_hash\",\"md5_hash\",\"file_name\"\n\
             \"2026-01-01 00:00:00\", \"{EMPTY_SHA256}\", \"d41d8cd98f00b204e9800998ecf8427e\", \"a,b.exe\"\n"
        );
        let list = HashList::parse("full.csv", text.as_bytes()).expect("parses");
        assert!(list.contains(&digest_of_empty()));
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let text = format!("{EMPTY_SHA256}\nnot-a-hash\n");
        let err = HashList::parse("bad.txt", text.as_bytes()).expect_err("bad line");
        assert_eq!(
            err.to_string(),
            "bad.txt, line 2: \"not-a-hash\" is not a SHA-256 hash (64 hexadecimal digits)"
        );
        let err = HashList::parse("empty.txt", b"# nothing\n").expect_err("empty");
        assert!(matches!(err, HashListError::Empty { .. }));
    }

    #[test]
    fn a_line_over_the_limit_is_refused() {
        let mut text = EMPTY_SHA256.as_bytes().to_vec();
        text.extend(vec![b' '; MAX_HASHLIST_LINE - text.len()]);
        assert!(HashList::parse("at-limit.txt", &text).is_ok());
        text.push(b' ');
        let err = HashList::parse("over.txt", &text).expect_err("too long");
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
