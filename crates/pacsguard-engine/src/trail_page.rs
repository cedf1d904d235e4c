//! One page of the audit trail, newest first, read from the end of the log: the
//! console's trail page costs the same with ten records or ten million.
//!
//! Records are lines of JSON in `seq` order. The page before a given `seq` is found by a
//! binary search over byte offsets (each probe reads one line, at most
//! [`MAX_RECORD_BYTES`]); the page is then read backwards from there in blocks. A line
//! that is not a record (torn, damaged) is skipped here, as `audit show` skips it;
//! `audit verify` names it.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use pacsguard_audit::MAX_RECORD_BYTES;
use pacsguard_fs::open_regular;
use serde_json::Value;

use crate::error::EngineError;
use crate::home::Home;

/// Most records a page holds; a caller asking more gets this many.
pub const MAX_TRAIL_PAGE_RECORDS: usize = 1_000;
/// Bytes read at once when reading the log backwards.
const BLOCK_BYTES: u64 = 64 * 1024;

/// A page of records, newest first.
#[derive(Debug, Default)]
pub struct TrailPage {
    pub records: Vec<Value>,
    /// The `seq` to ask for the next (older) page with, if there are older records.
    pub older: Option<u64>,
}

/// The newest `limit` records with a `seq` below `before` (every record when `None`).
pub fn audit_page(
    home: &Home,
    before: Option<u64>,
    limit: usize,
) -> Result<TrailPage, EngineError> {
    home.check_permissions()?;
    page_of(&home.dir.join("audit.log"), before, limit)
}

fn page_of(log: &Path, before: Option<u64>, limit: usize) -> Result<TrailPage, EngineError> {
    let limit = limit.clamp(1, MAX_TRAIL_PAGE_RECORDS);
    let mut file =
        open_regular(log).map_err(|e| EngineError::io(log, crate::files::refusal(&e)))?;
    let size = file.metadata().map_err(|e| EngineError::io(log, e))?.len();
    let end = match before {
        None => size,
        Some(before) => first_line_at_or_after_seq(&mut file, size, before)
            .map_err(|e| EngineError::io(log, e))?,
    };
    let mut page = TrailPage::default();
    let mut pos = end;
    // The bytes of the line being assembled backwards (at most MAX_RECORD_BYTES + 1: a
    // longer line is damage, skipped whole).
    let mut tail: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut block = vec![0u8; BLOCK_BYTES as usize];
    while pos > 0 && page.records.len() < limit {
        let start = pos.saturating_sub(BLOCK_BYTES);
        let len = usize::try_from(pos - start).unwrap_or(0);
        file.seek(SeekFrom::Start(start))
            .map_err(|e| EngineError::io(log, e))?;
        file.read_exact(&mut block[..len])
            .map_err(|e| EngineError::io(log, e))?;
        let mut chunk_end = len;
        while let Some(nl) = block[..chunk_end].iter().rposition(|&b| b == b'\n') {
            // The bytes after this newline complete the line assembled so far.
            let piece = &block[nl + 1..chunk_end];
            let line_start = start + nl as u64 + 1;
            finish_line(piece, &mut tail, &mut too_long, &mut page);
            chunk_end = nl;
            if page.records.len() >= limit {
                page.older = older_than_last(&page, line_start);
                return Ok(page);
            }
        }
        prepend(&block[..chunk_end], &mut tail, &mut too_long);
        pos = start;
    }
    // The first line of the file (no newline before it).
    if page.records.len() < limit && (!tail.is_empty() || too_long) {
        finish_line(&[], &mut tail, &mut too_long, &mut page);
    }
    Ok(page)
}

/// The next page starts below the last record taken, if anything is left before it.
fn older_than_last(page: &TrailPage, line_start: u64) -> Option<u64> {
    if line_start == 0 {
        return None;
    }
    page.records.last()?.get("seq")?.as_u64()
}

fn prepend(bytes: &[u8], tail: &mut Vec<u8>, too_long: &mut bool) {
    if *too_long {
        return;
    }
    if tail.len() + bytes.len() > MAX_RECORD_BYTES + 1 {
        *too_long = true;
        tail.clear();
        return;
    }
    let mut joined = Vec::with_capacity(bytes.len() + tail.len());
    joined.extend_from_slice(bytes);
    joined.extend_from_slice(tail);
    *tail = joined;
}

/// A line is complete (`piece` before what was assembled): parsed and kept if it is a
/// record; the assembly starts again.
fn finish_line(piece: &[u8], tail: &mut Vec<u8>, too_long: &mut bool, page: &mut TrailPage) {
    prepend(piece, tail, too_long);
    if !*too_long
        && !tail.is_empty()
        && let Ok(record) = serde_json::from_slice::<Value>(tail)
        && record.get("seq").and_then(Value::as_u64).is_some()
    {
        page.records.push(record);
    }
    tail.clear();
    *too_long = false;
}

/// The byte offset of the first line whose record has `seq >= before` (the file's size
/// when none has).
fn first_line_at_or_after_seq(
    file: &mut std::fs::File,
    size: u64,
    before: u64,
) -> std::io::Result<u64> {
    let (mut lo, mut hi) = (0u64, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match record_from(file, mid, size)? {
            Some((start, seq)) if seq < before => lo = start.max(mid) + 1,
            Some(_) | None => hi = mid,
        }
    }
    // `lo` is within or at the start of the line sought: its start.
    Ok(record_from(file, lo, size)?.map_or(size, |(start, _)| start))
}

/// The first record line starting at `pos` or after (at `pos` only when `pos` is 0 or
/// follows a newline): its start and `seq`. Damaged lines are stepped over.
fn record_from(
    file: &mut std::fs::File,
    pos: u64,
    size: u64,
) -> std::io::Result<Option<(u64, u64)>> {
    let mut at = pos;
    if at > 0 {
        // Is `pos` a line's start? Only if the byte before it is a newline.
        file.seek(SeekFrom::Start(at - 1))?;
        let mut one = [0u8; 1];
        file.read_exact(&mut one)?;
        if one[0] != b'\n' {
            at = match next_newline(file, at, size)? {
                Some(nl) => nl + 1,
                None => return Ok(None),
            };
        }
    }
    while at < size {
        file.seek(SeekFrom::Start(at))?;
        let mut line = Vec::new();
        (&mut *file)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_to_end(&mut line)?;
        let end = line.iter().position(|&b| b == b'\n');
        if let Some(end) = end
            && let Ok(record) = serde_json::from_slice::<Value>(&line[..end])
            && let Some(seq) = record.get("seq").and_then(Value::as_u64)
        {
            return Ok(Some((at, seq)));
        }
        if end.is_none() && at + (line.len() as u64) >= size {
            // The last line, unterminated (torn): a record if it parses.
            if let Ok(record) = serde_json::from_slice::<Value>(&line)
                && let Some(seq) = record.get("seq").and_then(Value::as_u64)
            {
                return Ok(Some((at, seq)));
            }
            return Ok(None);
        }
        at = match end {
            Some(end) => at + end as u64 + 1,
            None => match next_newline(file, at, size)? {
                Some(nl) => nl + 1,
                None => return Ok(None),
            },
        };
    }
    Ok(None)
}

/// The offset of the next newline at or after `from`.
fn next_newline(file: &mut std::fs::File, from: u64, size: u64) -> std::io::Result<Option<u64>> {
    let mut at = from;
    let mut block = vec![0u8; BLOCK_BYTES as usize];
    while at < size {
        file.seek(SeekFrom::Start(at))?;
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = block[..n].iter().position(|&b| b == b'\n') {
            return Ok(Some(at + i as u64));
        }
        at += n as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn log_of(lines: &[String]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let mut file = std::fs::File::create(&path).expect("create");
        for line in lines {
            file.write_all(line.as_bytes()).expect("write");
            file.write_all(b"\n").expect("write");
        }
        (dir, path)
    }

    fn seqs(page: &TrailPage) -> Vec<u64> {
        page.records
            .iter()
            .filter_map(|r| r["seq"].as_u64())
            .collect()
    }

    #[test]
    fn pages_walk_the_whole_log_newest_first_each_record_once() {
        // Records of varied length (some longer than a read block), and damage.
        let mut lines: Vec<String> = (1..=500u64)
            .map(|seq| {
                let pad = "x".repeat(usize::try_from(seq * 397 % 70_000).expect("small"));
                format!("{{\"seq\":{seq},\"detail\":\"{pad}\"}}")
            })
            .collect();
        lines.insert(250, "torn {\"seq\": 99999".into());
        let (_dir, log) = log_of(&lines);
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page = page_of(&log, before, 37).expect("page");
            assert!(page.records.len() <= 37);
            all.extend(seqs(&page));
            match page.older {
                Some(seq) => before = Some(seq),
                None => break,
            }
        }
        let expected: Vec<u64> = (1..=500).rev().collect();
        assert_eq!(all, expected);
        // A page before a seq in the middle starts right below it.
        let page = page_of(&log, Some(300), 3).expect("page");
        assert_eq!(seqs(&page), vec![299, 298, 297]);
        assert_eq!(page.older, Some(297));
        // Before the first: empty; past the last: the newest.
        assert!(page_of(&log, Some(1), 5).expect("page").records.is_empty());
        assert_eq!(
            seqs(&page_of(&log, Some(10_000), 1).expect("page")),
            vec![500]
        );
    }

    #[test]
    fn a_page_is_bounded_at_its_limit_and_an_empty_log_is_an_empty_page() {
        let lines: Vec<String> = (1..=(MAX_TRAIL_PAGE_RECORDS as u64 + 5))
            .map(|seq| format!("{{\"seq\":{seq}}}"))
            .collect();
        let (_dir, log) = log_of(&lines);
        let page = page_of(&log, None, usize::MAX).expect("page");
        assert_eq!(page.records.len(), MAX_TRAIL_PAGE_RECORDS);
        assert_eq!(page.older, Some(6));
        let (_dir, empty) = log_of(&[]);
        let page = page_of(&empty, None, 10).expect("page");
        assert!(page.records.is_empty() && page.older.is_none());
    }
}
