//! Stream filters (ISO 32000-1 §7.4): the chain a reader applies before it sees a script,
//! an XFA form or an attached file. FlateDecode (zlib, and raw deflate as lenient readers
//! accept), LZWDecode with EarlyChange, ASCIIHexDecode, ASCII85Decode, RunLengthDecode,
//! PNG and TIFF predictors. Image codecs (DCT, JPX, CCITT, JBIG2) are not decoded: what
//! they carry is pixels, never an action.
//!
//! Every filter writes at most what the per-file [`Budget`] has left, and charges what it
//! read and wrote; running out stops the chain with what was decoded so far.

use std::borrow::Cow;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

use super::budget::{Budget, Limit, MAX_PDF_FILTERS};
use super::lexer::{Dict, Obj, get};

/// One filter of a chain, with its parameters.
#[derive(Debug)]
pub struct Filter {
    pub name: Vec<u8>,
    pub parms: Option<Dict>,
}

/// Applies `chain` to `data`. `None` when a filter cannot be applied (an image codec, an
/// unknown name, parameters no reader accepts); a budget that runs out keeps what was
/// decoded so far (and is recorded in `budget`).
pub fn decode(data: &[u8], chain: &[Filter], budget: &mut Budget) -> Option<Vec<u8>> {
    if chain.len() > MAX_PDF_FILTERS {
        budget.reach(Limit::Filters);
        return None;
    }
    // The budget is asked before any byte is touched: with it spent, thousands of streams
    // of a crafted file each cost a look at a counter, not a copy of their data.
    if budget.decoded_left() == 0 {
        budget.reach(Limit::DecodedBytes);
        return None;
    }
    let mut current: Cow<[u8]> = Cow::Borrowed(data);
    for filter in chain {
        let cap = budget.decoded_left();
        if cap == 0 {
            budget.reach(Limit::DecodedBytes);
            break;
        }
        let input_len = current.len();
        let decoded = match filter.name.as_slice() {
            b"FlateDecode" | b"Fl" => {
                let out = inflate(&current, cap);
                predict(out, filter.parms.as_ref())?
            }
            b"LZWDecode" | b"LZW" => {
                let early = filter
                    .parms
                    .as_ref()
                    .and_then(|p| get(p, b"EarlyChange"))
                    .and_then(Obj::as_int)
                    .unwrap_or(1);
                let out = lzw(&current, early != 0, cap);
                predict(out, filter.parms.as_ref())?
            }
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(&current, cap),
            b"ASCII85Decode" | b"A85" => ascii85(&current, cap),
            b"RunLengthDecode" | b"RL" => run_length(&current, cap),
            // Encryption is undone before the chain; the Identity crypt filter is a no-op.
            b"Crypt" => continue,
            _ => return None,
        };
        budget.spend_decoded(input_len.saturating_add(decoded.len()));
        current = Cow::Owned(decoded);
    }
    Some(match current {
        Cow::Owned(decoded) => decoded,
        // Unfiltered data is copied out: that copy is decoding work too, and stops where
        // the budget does.
        Cow::Borrowed(raw) => {
            let kept = &raw[..raw.len().min(budget.decoded_left())];
            budget.spend_decoded(raw.len());
            kept.to_vec()
        }
    })
}

/// Inflates a zlib stream, or raw deflate if the zlib header is wrong, writing at most
/// `cap` bytes. A damaged or cut stream keeps what inflated before the damage, as readers
/// show it.
fn inflate(input: &[u8], cap: usize) -> Vec<u8> {
    let mut decompressor = Box::<DecompressorOxide>::default();
    let zlib = inflate_with(&mut decompressor, input, cap, true);
    if !zlib.is_empty() {
        return zlib;
    }
    inflate_with(&mut decompressor, input, cap, false)
}

fn inflate_with(
    decompressor: &mut DecompressorOxide,
    input: &[u8],
    cap: usize,
    zlib: bool,
) -> Vec<u8> {
    const STEP: usize = 64 * 1024;
    // The room first given, doubled as it fills up to STEP: a stream that inflates to a
    // few bytes must not cost a zeroed STEP (4,096 streams a reading, up to five readings).
    const FIRST_STEP: usize = 4 * 1024;
    decompressor.init();
    let mut out = Vec::new();
    let (mut read, mut written) = (0usize, 0usize);
    loop {
        let left = cap.saturating_sub(written);
        if left == 0 {
            break;
        }
        let rest = input.get(read..).unwrap_or_default();
        if out.len() == written {
            out.resize(written + left.min(written.clamp(FIRST_STEP, STEP)), 0);
        }
        let mut flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        if zlib {
            flags |= inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER;
        }
        let (status, consumed, produced) = decompress(decompressor, rest, &mut out, written, flags);
        read += consumed;
        written += produced;
        let progress = consumed > 0 || produced > 0;
        match status {
            TINFLStatus::HasMoreOutput if progress => {}
            _ => break, // done, damaged, cut short, or stuck
        }
    }
    out.truncate(written);
    out
}

/// Entries of an LZW code table: the format's own size (12-bit codes, ISO 32000-1
/// §7.4.4.2), not a budget of ours. A stream whose table fills without a clear code goes
/// on being decoded here with the table as it is (as pdf.js does); qpdf ("LZWDecoder:
/// table full") and mutool ("out of range code") stop there. So reaching it hides
/// nothing that any reader shows, and is no `not-inspected` warning: what a stream
/// holds past it is read (tested below); the work stays bounded by the decoded-bytes
/// budget, which is reported when reached.
pub(crate) const LZW_TABLE_CODES: usize = 4096;

/// LZW as PDF uses it (§7.4.4): 9- to 12-bit codes, most significant bit first, 256 to
/// clear, 257 to end; with `early` the code width grows one code early.
fn lzw(input: &[u8], early: bool, cap: usize) -> Vec<u8> {
    const CLEAR: usize = 256;
    const END: usize = 257;
    // Each entry: (prefix code, last byte, length); the first 256 are single bytes.
    let mut table: Vec<(usize, u8, usize)> = (0..=255u8).map(|b| (usize::MAX, b, 1)).collect();
    table.push((usize::MAX, 0, 0));
    table.push((usize::MAX, 0, 0));
    let mut out: Vec<u8> = Vec::new();
    let (mut bits, mut nbits, mut at) = (0u32, 0u32, 0usize);
    let mut previous: Option<usize> = None;
    loop {
        let next = table.len() + usize::from(early);
        let width = match next {
            0..=511 => 9,
            512..=1023 => 10,
            1024..=2047 => 11,
            _ => 12,
        };
        while nbits < width {
            let Some(&byte) = input.get(at) else {
                return out;
            };
            at += 1;
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
        }
        let code = ((bits >> (nbits - width)) & ((1 << width) - 1)) as usize;
        nbits -= width;
        bits &= (1u32 << nbits).wrapping_sub(1);
        if code == CLEAR {
            table.truncate(258);
            previous = None;
            continue;
        }
        if code == END {
            return out;
        }
        let first_of = |table: &Vec<(usize, u8, usize)>, mut code: usize| -> u8 {
            while let Some(&(prefix, byte, _)) = table.get(code) {
                if prefix == usize::MAX {
                    return byte;
                }
                code = prefix;
            }
            0
        };
        let entry = if code < table.len() && code != CLEAR && code != END {
            if let Some(prev) = previous
                && table.len() < LZW_TABLE_CODES
            {
                let first = first_of(&table, code);
                let length = table.get(prev).map_or(1, |e| e.2) + 1;
                table.push((prev, first, length));
            }
            code
        } else if code == table.len()
            && let Some(prev) = previous
            && table.len() < LZW_TABLE_CODES
        {
            let first = first_of(&table, prev);
            let length = table.get(prev).map_or(1, |e| e.2) + 1;
            table.push((prev, first, length));
            code
        } else {
            return out; // damaged
        };
        let Some(&(_, _, length)) = table.get(entry) else {
            return out;
        };
        if out.len().saturating_add(length) > cap {
            return out;
        }
        let start = out.len();
        out.resize(start + length, 0);
        let mut code = entry;
        let mut index = start + length;
        while let Some(&(prefix, byte, _)) = table.get(code) {
            if index == start {
                break;
            }
            index -= 1;
            if let Some(slot) = out.get_mut(index) {
                *slot = byte;
            }
            if prefix == usize::MAX {
                break;
            }
            code = prefix;
        }
        previous = Some(entry);
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

fn ascii_hex(input: &[u8], cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut high: Option<u8> = None;
    for &byte in input {
        if byte == b'>' || out.len() >= cap {
            break;
        }
        let Some(nibble) = hex_value(byte) else {
            continue;
        };
        match high.take() {
            Some(h) => out.push(h << 4 | nibble),
            None => high = Some(nibble),
        }
    }
    if let Some(h) = high
        && out.len() < cap
    {
        out.push(h << 4);
    }
    out
}

fn ascii85(input: &[u8], cap: usize) -> Vec<u8> {
    let input = input.strip_prefix(b"<~").unwrap_or(input);
    let mut out = Vec::new();
    let mut group = [0u8; 5];
    let mut n = 0usize;
    for &byte in input {
        if out.len() >= cap {
            return out;
        }
        match byte {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = byte - b'!';
                n += 1;
                if n == 5 {
                    out.extend_from_slice(&base85_word(&group).to_be_bytes());
                    n = 0;
                }
            }
            _ => {} // whitespace and junk
        }
    }
    if n > 1 {
        for slot in group.iter_mut().skip(n) {
            *slot = 84;
        }
        let word = base85_word(&group).to_be_bytes();
        out.extend_from_slice(&word[..n - 1]);
    }
    out.truncate(cap);
    out
}

fn base85_word(group: &[u8; 5]) -> u32 {
    group.iter().fold(0u32, |acc, &digit| {
        acc.wrapping_mul(85).wrapping_add(u32::from(digit))
    })
}

fn run_length(input: &[u8], cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(&length) = input.get(at) {
        at += 1;
        match length {
            128 => break,
            0..=127 => {
                let count = usize::from(length) + 1;
                let end = (at + count).min(input.len());
                out.extend_from_slice(input.get(at..end).unwrap_or_default());
                at = end;
            }
            _ => {
                let Some(&byte) = input.get(at) else { break };
                at += 1;
                out.resize(out.len() + (257 - usize::from(length)), byte);
            }
        }
        if out.len() >= cap {
            out.truncate(cap);
            break;
        }
    }
    out
}

/// Undoes a PNG (10–15) or TIFF (2) predictor (§7.4.4.4). `None` for parameters no reader
/// accepts.
fn predict(data: Vec<u8>, parms: Option<&Dict>) -> Option<Vec<u8>> {
    let Some(parms) = parms else {
        return Some(data);
    };
    let int = |key: &[u8], default: i64| get(parms, key).and_then(Obj::as_int).unwrap_or(default);
    let predictor = int(b"Predictor", 1);
    if predictor < 2 {
        return Some(data);
    }
    let colors = usize::try_from(int(b"Colors", 1))
        .ok()
        .filter(|c| (1..=32).contains(c))?;
    let bpc = usize::try_from(int(b"BitsPerComponent", 8))
        .ok()
        .filter(|b| [1, 2, 4, 8, 16].contains(b))?;
    let columns = usize::try_from(int(b"Columns", 1))
        .ok()
        .filter(|c| *c >= 1)?;
    let row = columns.checked_mul(colors)?.checked_mul(bpc)?.div_ceil(8);
    let pixel = (colors * bpc).div_ceil(8).max(1);
    match predictor {
        2 => Some(tiff(data, row, colors, bpc)),
        10.. => Some(png(&data, row, pixel)),
        _ => Some(data), // 3 to 9 name no predictor; readers pass the data through
    }
}

fn png(data: &[u8], row: usize, pixel: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(data.len());
    let mut previous = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        let Some((&kind, line)) = chunk.split_first() else {
            break;
        };
        let mut current = line.to_vec();
        for i in 0..current.len() {
            let left = if i >= pixel { current[i - pixel] } else { 0 };
            let up = previous.get(i).copied().unwrap_or(0);
            let up_left = if i >= pixel {
                previous.get(i - pixel).copied().unwrap_or(0)
            } else {
                0
            };
            let add = match kind {
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                _ => 0,
            };
            current[i] = current[i].wrapping_add(add);
        }
        out.extend_from_slice(&current);
        previous[..current.len()].copy_from_slice(&current);
    }
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

fn tiff(mut data: Vec<u8>, row: usize, colors: usize, bpc: usize) -> Vec<u8> {
    for line in data.chunks_mut(row) {
        match bpc {
            8 => {
                for i in colors..line.len() {
                    line[i] = line[i].wrapping_add(line[i - colors]);
                }
            }
            16 => {
                let step = 2 * colors;
                let mut i = step;
                while i + 1 < line.len() {
                    let left = u16::from_be_bytes([line[i - step], line[i - step + 1]]);
                    let value = u16::from_be_bytes([line[i], line[i + 1]]).wrapping_add(left);
                    line[i..i + 2].copy_from_slice(&value.to_be_bytes());
                    i += 2;
                }
            }
            _ => {} // sub-byte TIFF prediction: not used for anything that can act
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: &[u8]) -> Filter {
        Filter {
            name: name.to_vec(),
            parms: None,
        }
    }

    #[test]
    fn the_ascii_filters_and_run_length_decode() {
        let mut budget = Budget::default();
        let hex = decode(b"4a 53\n3>", &[filter(b"ASCIIHexDecode")], &mut budget);
        assert_eq!(hex.as_deref(), Some(&b"JS0"[..]));
        // "app.alert" in ASCII85 (Adobe's encoder), with the end marker.
        let a85 = decode(
            b"<~@;p0<@;KLqF8~>",
            &[filter(b"ASCII85Decode")],
            &mut budget,
        );
        assert_eq!(a85.as_deref(), Some(&b"app.alert"[..]));
        let rl = decode(
            b"\x02abc\xfdx\x80",
            &[filter(b"RunLengthDecode")],
            &mut budget,
        );
        assert_eq!(rl.as_deref(), Some(&b"abcxxxx"[..]));
    }

    #[test]
    fn lzw_decodes_the_specification_example() {
        // ISO 32000-1 §7.4.4.2: 45 45 45 45 45 65 45 45 45 66 encodes to 80 0B 60 50 22 0C 0C 85 01.
        let out = lzw(
            &[0x80, 0x0B, 0x60, 0x50, 0x22, 0x0C, 0x0C, 0x85, 0x01],
            true,
            1000,
        );
        assert_eq!(out, [45, 45, 45, 45, 45, 65, 45, 45, 45, 66]);
    }

    /// An LZW encoder as PDF writers have it (EarlyChange 1), that emits a clear code
    /// when its table is full, or (`clear_when_full` false) goes on with the full table,
    /// as a crafted stream does. (Its output checked with qpdf: it reads what this
    /// writes, up to "LZWDecoder: table full" for the second kind.)
    fn lzw_encode(data: &[u8], clear_when_full: bool) -> Vec<u8> {
        let fresh = || -> std::collections::HashMap<Vec<u8>, usize> {
            (0..=255u8).map(|b| (vec![b], usize::from(b))).collect()
        };
        let mut table = fresh();
        let mut next = 258usize;
        let (mut width, mut bits, mut nbits) = (9u32, 0u64, 0u32);
        let mut out = Vec::new();
        let mut emit = |code: usize, width: u32, out: &mut Vec<u8>| {
            bits = (bits << width) | code as u64;
            nbits += width;
            while nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
            }
            bits &= (1u64 << nbits) - 1;
        };
        emit(256, width, &mut out);
        let mut word: Vec<u8> = Vec::new();
        for &byte in data {
            let mut longer = word.clone();
            longer.push(byte);
            if table.contains_key(&longer) {
                word = longer;
                continue;
            }
            emit(table[&word], width, &mut out);
            if next < LZW_TABLE_CODES {
                table.insert(longer, next);
                next += 1;
            } else if clear_when_full {
                emit(256, width, &mut out);
                table = fresh();
                next = 258;
            }
            // The decoder's table is one entry behind; EarlyChange grows the width one
            // code early.
            width = match next {
                0..=511 => 9,
                512..=1023 => 10,
                1024..=2047 => 11,
                _ => 12,
            };
            word = vec![byte];
        }
        if !word.is_empty() {
            emit(table[&word], width, &mut out);
        }
        emit(257, width, &mut out);
        if nbits > 0 {
            out.push((bits << (8 - nbits)) as u8);
        }
        out
    }

    /// LZW_TABLE_CODES at its value: a stream whose table fills (3,838 codes after the
    /// 258 fixed ones) is decoded past that point, with a clear code there or without
    /// one (a crafted stream: qpdf and mutool stop at the full table, pdf.js goes on, and
    /// so does this decoder, so a script written after it is read, not missed).
    #[test]
    fn an_lzw_stream_is_decoded_past_its_full_table() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut noise: Vec<u8> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        noise.extend_from_slice(b"app.launchURL('http://203.0.113.9/x')");
        for length in [3_000, 3_838, 3_839, 3_900, noise.len()] {
            let data = if length == noise.len() {
                noise.clone()
            } else {
                [&noise[..length], b"/JS(app.alert(1))"].concat()
            };
            for clear in [true, false] {
                let encoded = lzw_encode(&data, clear);
                let decoded = lzw(&encoded, true, usize::MAX);
                assert!(decoded == data, "{length} bytes, clear {clear}");
            }
        }
        // The table does fill: random bytes add one entry per code.
        let codes_without_clear = lzw_encode(&noise, false).len() * 8 / 12;
        assert!(codes_without_clear > LZW_TABLE_CODES);
    }

    #[test]
    fn png_up_predictor_is_undone() {
        let parms: Dict = vec![
            (b"Predictor".to_vec(), Obj::Int(12)),
            (b"Columns".to_vec(), Obj::Int(3)),
        ];
        let data = vec![2, 1, 2, 3, 2, 1, 1, 1];
        assert_eq!(predict(data, Some(&parms)), Some(vec![1, 2, 3, 2, 3, 4]));
    }

    #[test]
    fn a_chain_longer_than_the_limit_is_not_decoded_and_says_so() {
        let mut budget = Budget::default();
        let chain: Vec<Filter> = (0..MAX_PDF_FILTERS)
            .map(|_| filter(b"ASCIIHexDecode"))
            .collect();
        assert!(decode(b"41", &chain, &mut budget).is_some());
        assert!(budget.reached().is_empty());
        let chain: Vec<Filter> = (0..=MAX_PDF_FILTERS)
            .map(|_| filter(b"ASCIIHexDecode"))
            .collect();
        assert!(decode(b"41", &chain, &mut budget).is_none());
        assert_eq!(budget.reached(), [Limit::Filters]);
    }
}
