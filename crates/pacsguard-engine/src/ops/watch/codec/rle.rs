//! An RLE frame (PS3.5 Annex G) decoded segment by segment, for an encryptor that kept
//! its 64-byte header (the segment count and offsets) and overwrote the segments. Each
//! segment is one byte plane of the frame: it decodes to exactly Rows x Columns bytes
//! and ends there (one pad byte allowed, G.3.1). Random bytes decode to some other length
//! or run past the segment's end, nearly always.

/// Whether a frame (its header checked already: 1 to 15 rising offsets from 64, inside
/// the frame) holds a segment that does not decode to `plane` bytes (Rows x Columns)
/// ending at its end. `plane` is `None` when the image's Rows and Columns are not
/// known: then every segment of the frame must decode to the same length.
pub fn broken(frame: &[u8], plane: Option<usize>) -> bool {
    let word = |i: usize| {
        frame
            .get(i * 4..i * 4 + 4)
            .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
    };
    let count = word(0);
    let mut lengths = Vec::with_capacity(count);
    for i in 1..=count {
        let start = word(i);
        let end = if i == count { frame.len() } else { word(i + 1) };
        let Some(segment) = frame.get(start..end) else {
            return true;
        };
        match decoded_length(segment, plane) {
            Some(length) => lengths.push(length),
            None => return true,
        }
    }
    match plane {
        Some(plane) => lengths.iter().any(|&l| l != plane),
        None => lengths.windows(2).any(|w| w[0] != w[1]),
    }
}

/// The length a PackBits segment decodes to, if it ends at the segment's end (one pad
/// byte allowed) without a run past `limit` (the plane's size, when known) or past the
/// segment. Never allocates: only counted.
fn decoded_length(segment: &[u8], limit: Option<usize>) -> Option<usize> {
    let mut out = 0usize;
    let mut at = 0usize;
    while at < segment.len() {
        if limit.is_some_and(|l| out == l) {
            // The plane is complete: what is left may only be the pad byte.
            return (segment.len() - at <= 1).then_some(out);
        }
        let n = segment[at];
        at += 1;
        match n {
            0..=127 => {
                let run = usize::from(n) + 1;
                if at + run > segment.len() {
                    // A literal run cut by the end: the pad byte of a segment that
                    // ended on the previous run reads as a one-byte literal.
                    return (at == segment.len() && n == 0 && limit.is_none()).then_some(out);
                }
                at += run;
                out += run;
            }
            128 => {}
            _ => {
                if at >= segment.len() {
                    return None;
                }
                at += 1;
                out += 257 - usize::from(n);
            }
        }
        if limit.is_some_and(|l| out > l) {
            return None;
        }
    }
    Some(out)
}

/// The byte planes of a frame (its header checked already), each decoded to `plane`
/// bytes, or `None` when one does not decode to exactly that (see [`broken`]).
pub fn planes(frame: &[u8], plane: usize) -> Option<Vec<Vec<u8>>> {
    let word = |i: usize| {
        frame
            .get(i * 4..i * 4 + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
    };
    let count = word(0)?;
    (1..=count)
        .map(|i| {
            let start = word(i)?;
            let end = if i == count {
                frame.len()
            } else {
                word(i + 1)?
            };
            decode(frame.get(start..end)?, plane)
        })
        .collect()
}

/// A PackBits segment decoded, when it decodes to exactly `plane` bytes (one pad byte
/// allowed after them).
fn decode(segment: &[u8], plane: usize) -> Option<Vec<u8>> {
    decoded_length(segment, Some(plane)).filter(|&n| n == plane)?;
    let mut out = Vec::with_capacity(plane);
    let mut at = 0usize;
    while out.len() < plane {
        let n = *segment.get(at)?;
        at += 1;
        match n {
            0..=127 => {
                let run = usize::from(n) + 1;
                out.extend_from_slice(segment.get(at..at + run)?);
                at += run;
            }
            128 => {}
            _ => {
                let b = *segment.get(at)?;
                at += 1;
                out.resize(out.len() + 257 - usize::from(n), b);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of one header and the segments given.
    fn frame(segments: &[&[u8]]) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut offset = 64u32;
        let mut body = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            header[4 + i * 4..8 + i * 4].copy_from_slice(&offset.to_le_bytes());
            offset += s.len() as u32;
            body.extend_from_slice(s);
        }
        header.extend(body);
        header
    }

    #[test]
    fn planes_decode_literals_and_runs() {
        let good: &[u8] = &[2, 1, 2, 3, 0xFE, 9, 0];
        let other: &[u8] = &[0xFB, 7];
        assert_eq!(
            planes(&frame(&[good, other]), 6),
            Some(vec![vec![1, 2, 3, 9, 9, 9], vec![7; 6]])
        );
        assert_eq!(planes(&frame(&[good, other]), 5), None);
    }

    #[test]
    fn each_segment_must_decode_to_the_plane_and_end_there() {
        // 6 bytes: a literal of 3 then a run of 3; padded to even with a zero.
        let good: &[u8] = &[2, 1, 2, 3, 0xFE, 9, 0];
        assert_eq!(decoded_length(good, Some(6)), Some(6));
        assert!(!broken(&frame(&[good, good]), Some(6)));
        assert!(!broken(&frame(&[good, good]), None));
        assert!(
            broken(&frame(&[good, good]), Some(5)),
            "a run past the plane"
        );
        assert!(broken(&frame(&[good, good]), Some(7)), "short of the plane");
        // A literal run past the segment's end.
        assert!(broken(&frame(&[&[5, 1, 2]]), Some(6)));
        // Segments of different lengths when the plane is not known.
        assert!(broken(&frame(&[good, &[0xFE, 9]]), None));
        // Bytes left after the plane beyond one pad byte.
        assert!(broken(&frame(&[&[2, 1, 2, 3, 0xFE, 9, 0, 0, 0]]), Some(6)));
    }
}
