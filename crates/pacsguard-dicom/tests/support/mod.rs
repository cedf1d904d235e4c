//! What the tests of a payload placed after CT pixel values share (`shared_pass.rs`,
//! `byte_pairs.rs`): the pixel values, the slice that ends with the payload, and whether
//! an alert stands at the payload rather than in the data before it.

use pacsguard_dicom::Inspection;
use pacsguard_events::Severity;
use pacsguard_testkit::{DicomBuilder, Pixels};

/// Two tissues of a CT slice, each value within ±30 of one of them (a third of the
/// pixels `first`, the rest `second`), clamped to `range` and written as 16-bit
/// little-endian values: `len` bytes, the same for the same `seed`.
pub fn ct_pixels(
    len: usize,
    seed: u64,
    (first, second): (i16, i16),
    range: std::ops::RangeInclusive<i16>,
) -> Vec<u8> {
    let mut state = seed | 1;
    let mut pixels = Vec::with_capacity(len + 2);
    while pixels.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let base = if state.is_multiple_of(3) {
            first
        } else {
            second
        };
        let noise = i16::try_from(state % 61).expect("below 61") - 30;
        let value = base
            .saturating_add(noise)
            .clamp(*range.start(), *range.end());
        pixels.extend_from_slice(&value.to_le_bytes());
    }
    pixels.truncate(len);
    pixels
}

/// Whether `inspection` has an alert at or after `from` (the payload, not the data
/// before it).
pub fn alert_from(inspection: &Inspection, from: usize) -> bool {
    inspection
        .observations
        .iter()
        .any(|o| o.severity == Severity::Alert && o.offset.is_some_and(|at| at >= from as u64))
}

/// A CT slice (instance `uid`) whose Pixel Data ends with `payload` right after `pixels`:
/// the file's last byte is the payload's. The payload's offset.
pub fn slice_ending_with(uid: &str, mut pixels: Vec<u8>, payload: &[u8]) -> (Vec<u8>, usize) {
    // Pixel Data's length is even: one more byte of noise in front when it would not be.
    if (pixels.len() + payload.len()) % 2 == 1 {
        pixels.insert(0, 0);
    }
    pixels.extend_from_slice(payload);
    let file = DicomBuilder::ct(uid).pixels(Pixels::Native(pixels)).build();
    let at = file.len() - payload.len();
    assert!(file.ends_with(payload), "the payload ends the file");
    (file, at)
}
