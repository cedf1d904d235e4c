//! How an instance's Pixel Data is to be read as an image: its Photometric
//! Interpretation, Samples per Pixel, Bits Allocated, Rows and Columns, as the data set
//! states them (review r27-watch). The profile keeps them beside the pixels' digest, so
//! that the pixels decoded from a re-compressed image are judged against the form they
//! were stored in, not the one a rewritten header claims.

use std::ops::Range;

use crate::dataset::PIXEL_FORM_VALUES;

/// The longest Photometric Interpretation kept: a CS value holds at most 16 characters
/// (PS3.5 table 6.2-1); a longer one is cut, and differs from any standard term anyway.
pub const MAX_PHOTOMETRIC_BYTES: usize = 16;

/// The form of an instance's pixels. A value the data set does not hold, or holds with
/// another length than its VR's, is empty (`""`) or `0`: no valid image has either.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PixelForm {
    /// Photometric Interpretation `(0028,0004)`, without its padding, at most
    /// [`MAX_PHOTOMETRIC_BYTES`]; bytes that are not text shown as `?`.
    pub photometric: String,
    /// Samples per Pixel `(0028,0002)`.
    pub samples: u16,
    /// Bits Allocated `(0028,0100)`.
    pub bits_allocated: u16,
    /// Rows `(0028,0010)`.
    pub rows: u16,
    /// Columns `(0028,0011)`.
    pub columns: u16,
}

impl PixelForm {
    /// The form read from `values` of `bytes` ([`crate::PIXEL_FORM_TAGS`], in that
    /// order), the US values in the data set's byte order.
    pub(crate) fn read(
        bytes: &[u8],
        values: &[Option<Range<usize>>; PIXEL_FORM_VALUES],
        big_endian: bool,
    ) -> Self {
        let value = |slot: usize| values[slot].clone().and_then(|r| bytes.get(r));
        let us = |slot: usize| match value(slot) {
            Some(&[a, b]) if big_endian => u16::from_be_bytes([a, b]),
            Some(&[a, b]) => u16::from_le_bytes([a, b]),
            _ => 0,
        };
        let photometric = value(0).map_or_else(String::new, |v| {
            let end = v
                .iter()
                .rposition(|&b| b != b' ' && b != 0)
                .map_or(0, |last| last + 1);
            v[..end]
                .iter()
                .take(MAX_PHOTOMETRIC_BYTES)
                .map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '?'
                    }
                })
                .collect()
        });
        PixelForm {
            photometric,
            samples: us(1),
            bits_allocated: us(2),
            rows: us(3),
            columns: us(4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_in_the_data_sets_byte_order_and_padding_is_dropped() {
        let bytes = b"MONOCHROME2 \x01\x00\x10\x00\x00\x02\x02\x00";
        let values = [
            Some(0..12),
            Some(12..14),
            Some(14..16),
            Some(16..18),
            Some(18..20),
        ];
        let little = PixelForm::read(bytes, &values, false);
        assert_eq!(
            little,
            PixelForm {
                photometric: "MONOCHROME2".into(),
                samples: 1,
                bits_allocated: 16,
                rows: 512,
                columns: 2,
            }
        );
        let big = PixelForm::read(bytes, &values, true);
        assert_eq!((big.samples, big.bits_allocated, big.rows), (256, 4096, 2));
        // Absent, of another length, not text, too long.
        let odd = b"\x01RGB\xffXXXXXXXXXXXXXXXXXXXX\x01";
        let values = [Some(0..25), None, Some(25..26), Some(0..4), Some(40..42)];
        let form = PixelForm::read(odd, &values, false);
        assert_eq!(form.photometric, "?RGB?XXXXXXXXXXX");
        assert_eq!(
            (form.samples, form.bits_allocated, form.rows, form.columns),
            (0, 0, 0, 0)
        );
    }
}
