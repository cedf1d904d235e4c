//! Encryption of an image that was compressed already. Its fragments are near-random by
//! nature, so entropy says nothing (see [`super::entropy`]); but each fragment of a JPEG,
//! JPEG 2000 or RLE image is that codec's stream, with a shape a random byte string does
//! not have: JPEG and JPEG-LS start with SOI (`FF D8`) and a frame ends with EOI
//! (`FF D9`); a JPEG 2000 codestream starts with SOC and SIZ (`FF 4F FF 51`, or a JP2
//! signature box) and ends with EOC (`FF D9`); an RLE fragment starts with a 64-byte
//! header of 1 to 15 segment offsets, the first 64, rising, inside the fragment. A file
//! that kept its transfer syntax but whose fragments no longer have that shape was not
//! re-compressed: its fragments were overwritten, which in a maintenance window still
//! counts towards ransomware.
//!
//! Fragments are read from the encapsulated Pixel Data (PS3.5 A.4): items `(FFFE,E000)`
//! with a 32-bit length, the first the Basic Offset Table, up to the sequence delimiter.

use std::path::Path;

use pacsguard_fs::read_head;

/// Bytes of a changed file read to find its fragments: the Pixel Data of a compressed
/// image of this size is looked at; a larger file is judged on the fragments in it (at
/// least the first, which is the one a codec header must open).
pub const MAX_FRAGMENT_READ_BYTES: usize = 16 << 20;

/// Bytes before the layout's Pixel Data span searched for the element's header.
const PIXEL_HEADER_SEARCH: usize = 64;

/// `(7FE0,0010)`, any VR, undefined length (explicit VR little endian, as every
/// encapsulated transfer syntax is).
fn is_encapsulated_pixel_header(b: &[u8]) -> bool {
    b.len() == 12 && b[..4] == [0xE0, 0x7F, 0x10, 0x00] && b[6..8] == [0, 0] && b[8..] == [0xFF; 4]
}

/// Fragments looked at per file (a multi-frame image has one or more per frame; an
/// attacker can write millions of empty items): past it, the file is judged on the
/// fragments looked at, and the end marker of the last frame is not asked for.
pub const MAX_FRAGMENTS_CHECKED: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    /// JPEG (baseline, extended, lossless) and JPEG-LS: SOI ... EOI.
    Jpeg,
    /// JPEG 2000 and High-Throughput JPEG 2000: SOC SIZ ... EOC, or a JP2 file.
    J2k,
    Rle,
}

fn codec_of(transfer_syntax: &str) -> Option<Codec> {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70"
        | "1.2.840.10008.1.2.4.80"
        | "1.2.840.10008.1.2.4.81" => Some(Codec::Jpeg),
        "1.2.840.10008.1.2.4.90"
        | "1.2.840.10008.1.2.4.91"
        | "1.2.840.10008.1.2.4.201"
        | "1.2.840.10008.1.2.4.202"
        | "1.2.840.10008.1.2.4.203" => Some(Codec::J2k),
        "1.2.840.10008.1.2.5" => Some(Codec::Rle),
        _ => None,
    }
}

/// Whether the file at `path`, an image of a JPEG, JPEG 2000 or RLE `transfer_syntax`,
/// holds fragments that are not that codec's stream. `false` when nothing can be
/// concluded (another syntax, not readable, no encapsulated Pixel Data found).
pub fn fragments_broken(path: &Path, transfer_syntax: &str) -> bool {
    let Some(codec) = codec_of(transfer_syntax) else {
        return false;
    };
    let Ok(head) = read_head(path, MAX_FRAGMENT_READ_BYTES) else {
        return false;
    };
    broken_in(&head.bytes, codec)
}

fn broken_in(bytes: &[u8], codec: Codec) -> bool {
    // A layout that cannot be read (the header damaged too) is no-longer-dicom, an
    // alert already: nothing to add here.
    let Some(layout) = pacsguard_dicom::layout(bytes) else {
        return false;
    };
    // The Pixel Data element of undefined length that holds the items, found just before
    // where the layout places its value (the layout's span may start past the first
    // item's header).
    let from = layout.pixels.start.saturating_sub(PIXEL_HEADER_SEARCH);
    let Some(header) = bytes
        .get(from..layout.pixels.start.min(bytes.len()))
        .and_then(|b| b.windows(12).rposition(is_encapsulated_pixel_header))
    else {
        return false;
    };
    let Some(value) = bytes.get(from + header + 12..) else {
        return false;
    };
    let (fragments, all) = match fragments(value) {
        Some(f) => f,
        // Items that do not parse where encapsulated Pixel Data must be: overwritten.
        None => return !value.is_empty(),
    };
    let (Some(first), Some(last)) = (fragments.first(), fragments.last()) else {
        return false;
    };
    let complete = all && bytes.len() < MAX_FRAGMENT_READ_BYTES;
    match codec {
        Codec::Jpeg => !first.starts_with(&[0xFF, 0xD8]) || !ends_with_eoi(last, complete),
        Codec::J2k => {
            let codestream = first.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]);
            let jp2 = first.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' ']);
            !(codestream || jp2) || (codestream && !ends_with_eoi(last, complete))
        }
        Codec::Rle => fragments.iter().any(|f| !rle_header_holds(f)),
    }
}

/// Whether a frame's last fragment ends with `FF D9`, one pad byte allowed after it
/// (PS3.5 A.4 pads a fragment to an even length: dcmtk writes `00`, other encoders an
/// `FF` fill byte). When the file was not read whole, the last fragment read is not the
/// last: not judged.
fn ends_with_eoi(last: &[u8], complete: bool) -> bool {
    let eoi = |end: &[u8]| end.ends_with(&[0xFF, 0xD9]);
    !complete || eoi(last) || last.split_last().is_some_and(|(_, rest)| eoi(rest))
}

/// The fragments (Basic Offset Table left out), and whether they are all of them (not
/// cut by the bytes read or by [`MAX_FRAGMENTS_CHECKED`]); `None` when the items do not
/// parse.
fn fragments(value: &[u8]) -> Option<(Vec<&[u8]>, bool)> {
    let mut at = 0usize;
    let mut items = Vec::new();
    let mut all = false;
    while at + 8 <= value.len() {
        let tag = &value[at..at + 4];
        let len = u32::from_le_bytes([value[at + 4], value[at + 5], value[at + 6], value[at + 7]]);
        if tag == [0xFE, 0xFF, 0xDD, 0xE0] {
            all = true;
            break;
        }
        if tag != [0xFE, 0xFF, 0x00, 0xE0] || len == u32::MAX {
            return None;
        }
        if items.len() > MAX_FRAGMENTS_CHECKED {
            break; // the Basic Offset Table and MAX_FRAGMENTS_CHECKED fragments
        }
        let start = at + 8;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > value.len() {
            break; // past what was read
        }
        items.push(&value[start..end]);
        at = end;
    }
    if items.is_empty() {
        return None;
    }
    Some((items.split_off(1), all))
}

/// An RLE fragment's header (PS3.5 G.3.1): 1 to 15 segments, the first at offset 64,
/// each next offset higher and inside the fragment, the unused ones zero.
fn rle_header_holds(fragment: &[u8]) -> bool {
    if fragment.len() < 64 {
        return false;
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            fragment[i * 4],
            fragment[i * 4 + 1],
            fragment[i * 4 + 2],
            fragment[i * 4 + 3],
        ]) as usize
    };
    let segments = word(0);
    if !(1..=15).contains(&segments) || word(1) != 64 {
        return false;
    }
    let mut previous = 64;
    for i in 2..=segments {
        let offset = word(i);
        if offset <= previous || offset >= fragment.len() {
            return false;
        }
        previous = offset;
    }
    (segments + 1..16).all(|i| word(i) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every fragment overwritten with keystream bytes, lengths and items kept (what an
    /// encryptor that knows DICOM does to keep the file looking whole).
    fn encrypt_fragments(bytes: &mut [u8]) {
        let value_start = bytes
            .windows(12)
            .rposition(is_encapsulated_pixel_header)
            .expect("encapsulated Pixel Data")
            + 12;
        let spans: Vec<(usize, usize)> = {
            let value = &bytes[value_start..];
            let mut at = 0;
            let mut spans = Vec::new();
            while at + 8 <= value.len() && value[at..at + 4] == [0xFE, 0xFF, 0x00, 0xE0] {
                let len = u32::from_le_bytes([
                    value[at + 4],
                    value[at + 5],
                    value[at + 6],
                    value[at + 7],
                ]) as usize;
                spans.push((value_start + at + 8, len));
                at += 8 + len;
            }
            spans
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for (start, len) in spans.into_iter().skip(1) {
            for b in &mut bytes[start..start + len] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
        }
    }

    /// Real compressed images from pydicom's test files: as written by their encoders
    /// they hold; with every fragment encrypted in place they do not.
    #[test]
    fn real_compressed_fragments_hold_and_encrypted_ones_do_not() {
        for (name, codec) in [
            ("SC_rgb_jpeg_dcmtk.dcm", Codec::Jpeg),
            ("JPEG-lossy.dcm", Codec::Jpeg),
            ("SC_rgb_jpeg_gdcm.dcm", Codec::Jpeg),
            ("MR_small_jpeg_ls_lossless.dcm", Codec::Jpeg),
            ("JPEG2000.dcm", Codec::J2k),
            ("MR_small_jp2klossless.dcm", Codec::J2k),
            ("MR_small_RLE.dcm", Codec::Rle),
            ("SC_rgb_rle_2frame.dcm", Codec::Rle),
            ("rtdose_rle.dcm", Codec::Rle),
        ] {
            let mut bytes = sample(name);
            let layout = pacsguard_dicom::layout(&bytes).expect("a layout");
            assert_eq!(codec_of(&layout.transfer_syntax), Some(codec), "{name}");
            assert!(!broken_in(&bytes, codec), "{name} as written holds");
            encrypt_fragments(&mut bytes);
            assert!(
                broken_in(&bytes, codec),
                "{name} with its fragments encrypted"
            );
        }
    }

    /// No false alarm on what real encoders wrote: every compressed image among
    /// pydicom's test files (dcmtk, GDCM, pydicom, vendors) holds as it is.
    #[test]
    fn every_real_compressed_sample_holds_as_written() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
        let mut looked = 0;
        let mut broken = Vec::new();
        for entry in std::fs::read_dir(&dir)
            .expect("pydicom's test files")
            .flatten()
        {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let Some(codec) =
                pacsguard_dicom::layout(&bytes).and_then(|l| codec_of(&l.transfer_syntax))
            else {
                continue;
            };
            looked += 1;
            if broken_in(&bytes, codec) {
                broken.push(entry.file_name());
            }
        }
        assert!(looked >= 20, "{looked} compressed samples");
        assert!(broken.is_empty(), "{broken:?}");
    }

    /// A JPEG image with more fragments than are looked at: judged on the first
    /// MAX_FRAGMENTS_CHECKED (each opened by SOI), without asking the last one read for
    /// the frame's end marker (it is not the last); one fragment fewer, it is asked.
    #[test]
    fn fragments_past_the_limit_are_not_judged_as_the_last() {
        let item = |body: &[u8]| {
            let mut b = vec![0xFE, 0xFF, 0x00, 0xE0];
            b.extend((body.len() as u32).to_le_bytes());
            b.extend(body);
            b
        };
        let value = |n: usize| {
            let mut v = item(b"");
            for _ in 0..n {
                v.extend(item(&[0xFF, 0xD8, 0xAB, 0xCD])); // SOI, no EOI: only the last lacks it
            }
            v.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
            v
        };
        let at_limit = value(MAX_FRAGMENTS_CHECKED);
        let (seen, all) = fragments(&at_limit).expect("items");
        assert_eq!((seen.len(), all), (MAX_FRAGMENTS_CHECKED, true));
        let over = value(MAX_FRAGMENTS_CHECKED + 1);
        let (seen, all) = fragments(&over).expect("items");
        assert_eq!((seen.len(), all), (MAX_FRAGMENTS_CHECKED, false));
        assert!(fragments(&[0x01; 16]).is_none(), "not items");
    }

    #[test]
    fn rle_headers_are_checked_field_by_field() {
        let mut header = vec![0u8; 200];
        header[0] = 2;
        header[4] = 64;
        header[8] = 130;
        assert!(rle_header_holds(&header));
        header[8] = 50; // not rising
        assert!(!rle_header_holds(&header));
        header[8] = 130;
        header[12] = 7; // an unused offset that is not zero
        assert!(!rle_header_holds(&header));
        assert!(!rle_header_holds(&[1; 10]));
    }
}
