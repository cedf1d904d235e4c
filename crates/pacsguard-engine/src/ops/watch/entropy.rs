//! Entropy as evidence of encryption, only where it means something: a DICOM image that
//! was stored uncompressed holds structured pixels, far from random; a block of it that
//! now reads as random bytes was most likely encrypted. Compressed images (JPEG, JPEG
//! 2000, RLE, deflate) are near-random already, so nothing is concluded for them.

use std::path::Path;

use pacsguard_fs::{Content, Entry, read_head};

/// How much of a changed file is read to look for random-looking blocks.
pub const ENTROPY_SAMPLE_BYTES: usize = 1 << 20;

/// Changed files sampled per verification batch: evidence, not a second scan of the store.
pub const MAX_ENTROPY_SAMPLES_PER_BATCH: usize = 8;

/// The block the entropy is measured over: intermittent encryption encrypts some blocks
/// and leaves the rest, so the file's average would hide it.
const BLOCK: usize = 4096;

/// Bits per byte at or above which a block reads as random (a random 4 KiB block measures
/// about 7.95; uncompressed medical images stay well below).
pub const RANDOM_BITS_PER_BYTE: f64 = 7.9;

/// Implicit VR Little Endian, Explicit VR Little Endian, Explicit VR Big Endian.
const UNCOMPRESSED: [&str; 3] = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
];

/// Shannon entropy in bits per byte.
pub fn bits_per_byte(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// The highest block entropy in the first MiB of `path`, when the file was an uncompressed
/// DICOM image before the change and a block now reads as random.
pub fn random_where_structured(old: &Entry, path: &Path) -> Option<f64> {
    let Content::Hashed {
        dicom: Some(facts), ..
    } = &old.content
    else {
        return None;
    };
    if !UNCOMPRESSED.contains(&facts.transfer_syntax.as_str()) {
        return None;
    }
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    let highest = head
        .bytes
        .chunks_exact(BLOCK)
        .map(bits_per_byte)
        .fold(0.0, f64::max);
    (highest >= RANDOM_BITS_PER_BYTE).then_some(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_measure_near_eight_and_structure_far_below() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..BLOCK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(bits_per_byte(&random) >= RANDOM_BITS_PER_BYTE);
        // 12-bit CT values stored in 16 bits: the high byte holds a few values only.
        let ct: Vec<u8> = (0..BLOCK / 2)
            .flat_map(|i| (((i * 37) % 4096) as u16).to_le_bytes())
            .collect();
        assert!(bits_per_byte(&ct) < RANDOM_BITS_PER_BYTE);
        assert_eq!(bits_per_byte(&[]), 0.0);
        assert_eq!(bits_per_byte(&[7; 100]), 0.0);
    }
}
