//! Entropy as evidence of encryption, only where it means something: a DICOM image that
//! was stored uncompressed holds structured pixels, far from random; a block of it that
//! now reads as random bytes was most likely encrypted. Compressed images (JPEG, JPEG
//! 2000, RLE, deflate) are near-random already, so nothing is concluded for them.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use pacsguard_fs::{Content, Entry, read_head};

/// How much of a changed file is read to look for random-looking blocks.
pub const ENTROPY_SAMPLE_BYTES: usize = 1 << 20;

/// Bytes read last, and 4 KiB blocks read spread over the rest, of a changed image
/// larger than [`ENTROPY_SAMPLE_BYTES`] (see [`random_written`]): encryption that left
/// the first MiB alone (review r22: a multi-frame image encrypted past it inside a
/// maintenance window was softened to `info`) is looked for there too.
pub const SAMPLE_TAIL_BYTES: u64 = 64 * 1024;
pub const SAMPLE_SPREAD_BLOCKS: usize = 32;

/// Changed files sampled per verification batch: evidence, not a second scan of the store.
pub const MAX_ENTROPY_SAMPLES_PER_BATCH: usize = 8;

/// The block the entropy is measured over: intermittent encryption encrypts some blocks
/// and leaves the rest, so the file's average would hide it.
const BLOCK: usize = 4096;

/// Bits per byte at or above which a block reads as random (a random 4 KiB block measures
/// about 7.95; uncompressed medical images stay well below).
pub const RANDOM_BITS_PER_BYTE: f64 = 7.9;

/// Distinct byte values a block must hold for evenness over them to mean randomness: hex
/// text of random bytes holds 16 (review r23).
pub const MIN_RANDOM_ALPHABET: usize = 16;

/// How far a random block's entropy may fall below log2 of the distinct byte values it
/// holds. Random bytes written as they are fill all 256 (7.9 bits/byte, as before:
/// [`RANDOM_BITS_PER_BYTE`]); written as base64 or hex text (review r23: ciphertext made
/// to measure 6 or 4 bits/byte, under 7.9, was softened inside a maintenance window)
/// they fill 64 or 16 as evenly: 5.99 and 4.00 bits/byte in 4 KiB. Blocks of the
/// uncompressed images of `.testdata` fall 0.40 bits short or more.
pub const RANDOM_DEFICIT_BITS: f64 = 8.0 - RANDOM_BITS_PER_BYTE;

/// The entropy of `block` when it reads as random bytes over the byte values it holds:
/// at least [`MIN_RANDOM_ALPHABET`] of them, used evenly (within
/// [`RANDOM_DEFICIT_BITS`]), and no step from one byte to the next far more frequent
/// than the others: a gradient or bars of a test pattern use their values as evenly,
/// but step by the same amount again and again (random bytes take any step about once
/// in as many bytes as they have values).
pub fn random_bits(block: &[u8]) -> Option<f64> {
    let mut counts = [0u32; 256];
    let mut steps = [0u32; 256];
    for &b in block {
        counts[usize::from(b)] += 1;
    }
    for pair in block.windows(2) {
        steps[usize::from(pair[1].wrapping_sub(pair[0]))] += 1;
    }
    let values = counts.iter().filter(|&&c| c > 0).count();
    if values < MIN_RANDOM_ALPHABET {
        return None;
    }
    let bits = bits_per_byte(block);
    let most_frequent_step = steps.iter().copied().max().unwrap_or(0) as usize;
    let even_steps = most_frequent_step <= 2 * block.len() / values + 16;
    (bits >= (values as f64).log2() - RANDOM_DEFICIT_BITS && even_steps).then_some(bits)
}

/// The highest [`random_bits`] among `blocks`.
fn most_random<'a>(blocks: impl Iterator<Item = &'a [u8]>) -> Option<f64> {
    blocks.filter_map(random_bits).reduce(f64::max)
}

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

/// Whether an image stored in transfer syntax `ts` holds structured (uncompressed)
/// pixels, where a random-looking block means something.
pub fn structured(ts: &str) -> bool {
    pacsguard_dicom::is_native(ts)
}

/// Whether a `pixel-data-changed` image stored in the uncompressed syntax `before`, now
/// in `after`, had its pixel values rewritten: uncompressed on both sides in the same
/// byte order (the same syntax, or implicit and explicit VR little endian), where the
/// Pixel Data bytes are the pixel values themselves, so bytes that changed are pixels
/// that changed. A migration copies, moves, deletes or re-compresses images; it never
/// rewrites the values of pixels it keeps uncompressed. Review r33-watch: each byte XORed
/// with a 16-byte key keeps an image's entropy (no block reads as random), and inside a
/// window 200 images of 200 were softened to `info`, no alert; 60 of 60 when each was
/// then written again in implicit VR. Big endian to or from little endian is left out:
/// 16-bit pixels keep their values with their bytes swapped, which a profile's hash of
/// the old bytes cannot tell from a change ([`byte_order_changed`]).
pub fn uncompressed_pixels_rewritten(before: &str, after: &str) -> bool {
    let little = pacsguard_dicom::is_native_little_endian;
    pacsguard_dicom::is_native(before) && (before == after || (little(before) && little(after)))
}

/// Whether an image stored uncompressed in `before` was written again uncompressed in
/// `after` in the other byte order (little to big endian or back): its pixels kept their
/// values only if its Pixel Data, each value's bytes swapped back, is the one stored
/// (`codec::byte_order_proof`; review r33b-watch: XORed, then `dcmconv +tb`, 60 of 60
/// softened inside a window).
pub fn byte_order_changed(before: &str, after: &str) -> bool {
    let native = pacsguard_dicom::is_native;
    let little = pacsguard_dicom::is_native_little_endian;
    native(before) && native(after) && little(before) != little(after)
}

/// The highest entropy of the whole blocks (aligned to the file's start) among the last
/// `tail` bytes of `file` and `spread` more blocks spread over the rest of it, one in
/// each of `spread` equal strides, when one reads as random. A stored uncompressed image
/// being written again: the bytes a receiver writes are structured pixels; an encryptor
/// that kept the header writes random bytes after it, last (the tail) or in the middle
/// behind an end it grows with the image's own bytes or zeros (the spread). Which block
/// of each stride is read is drawn afresh by each call (review r22: at fixed positions,
/// an encryptor that left those 32 blocks alone was never seen).
pub fn random_written(file: &std::fs::File, tail: u64, spread: usize) -> Option<f64> {
    use std::os::unix::fs::FileExt as _;
    let size = file.metadata().ok()?.len();
    let block = BLOCK as u64;
    let from = size.saturating_sub(tail) / block * block;
    let whole = (size - from) / block * block;
    let mut read = vec![0u8; usize::try_from(whole).ok()?];
    file.read_exact_at(&mut read, from).ok()?;
    let mut highest = most_random(read.chunks_exact(BLOCK));
    // The blocks before the tail, the first (the header) left out.
    let blocks = from / block;
    if blocks > 1 && spread > 0 {
        use std::hash::BuildHasher as _;
        let mut one = vec![0u8; BLOCK];
        let step = ((blocks - 1) / spread as u64).max(1);
        // The standard library's hasher keys are random to each process (and differ
        // for each `RandomState`): positions nobody outside can foresee.
        let draw = std::collections::hash_map::RandomState::new();
        for k in 0..spread as u64 {
            let at = 1 + k * step + draw.hash_one(k) % step;
            if at >= blocks {
                break;
            }
            file.read_exact_at(&mut one, at * block).ok()?;
            highest = highest
                .into_iter()
                .chain(random_bits(&one))
                .reduce(f64::max);
        }
    }
    highest
}

/// The highest block entropy of `path` (see [`random_blocks`]), when the file was an
/// uncompressed DICOM image before the change and a block now reads as random.
pub fn random_where_structured(old: &Entry, path: &Path) -> Option<f64> {
    let Content::Hashed {
        dicom: Some(facts), ..
    } = &old.content
    else {
        return None;
    };
    if !structured(&facts.transfer_syntax) {
        return None;
    }
    random_blocks(path)
}

/// The highest block entropy among the first MiB of `path` and, past it, its last
/// blocks and blocks spread over the rest, when one reads as random.
pub fn random_blocks(path: &Path) -> Option<f64> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    if let Some(highest) = most_random(head.bytes.chunks_exact(BLOCK)) {
        return Some(highest);
    }
    if head.meta.size <= ENTROPY_SAMPLE_BYTES as u64 {
        return None;
    }
    // Past the first MiB: its last blocks and blocks spread over the rest.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    random_written(&file, SAMPLE_TAIL_BYTES, SAMPLE_SPREAD_BLOCKS)
}

/// The highest block entropy of the Pixel Data of the DICOM file at `path`, when a block
/// of it reads as random: its whole blocks within the first MiB from where its Pixel Data
/// begins and, past that MiB, its last blocks and blocks spread over the rest (see
/// [`random_written`]; the Pixel Data is the data set's last large value). Only the
/// Pixel Data: an instance that carries compressed bytes elsewhere (an encapsulated PDF,
/// a private blob) is no image encrypted. `None` when no Pixel Data begins in the first
/// MiB or no block of it reads as random.
pub fn random_pixels(path: &Path) -> Option<f64> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    let layout = pacsguard_dicom::layout(&head.bytes)?;
    let pixels = head.bytes.get(layout.pixels.start..)?;
    if pixels.is_empty() {
        return None; // no Pixel Data found
    }
    if let Some(highest) = most_random(pixels.chunks_exact(BLOCK)) {
        return Some(highest);
    }
    if head.meta.size <= ENTROPY_SAMPLE_BYTES as u64 {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    random_written(&file, SAMPLE_TAIL_BYTES, SAMPLE_SPREAD_BLOCKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncompressed_pixels_rewritten_only_where_the_bytes_are_the_values() {
        const IMPLICIT: &str = "1.2.840.10008.1.2";
        const EXPLICIT: &str = "1.2.840.10008.1.2.1";
        const BIG: &str = "1.2.840.10008.1.2.2";
        const JPEG_LS: &str = "1.2.840.10008.1.2.4.80";
        assert!(uncompressed_pixels_rewritten(EXPLICIT, EXPLICIT));
        assert!(uncompressed_pixels_rewritten(EXPLICIT, IMPLICIT));
        assert!(uncompressed_pixels_rewritten(IMPLICIT, EXPLICIT));
        assert!(uncompressed_pixels_rewritten(BIG, BIG));
        // Byte order swapped: the same pixels have other bytes.
        assert!(!uncompressed_pixels_rewritten(BIG, EXPLICIT));
        assert!(!uncompressed_pixels_rewritten(EXPLICIT, BIG));
        // Compressed on either side: judged by the codec's checks, not here.
        assert!(!uncompressed_pixels_rewritten(EXPLICIT, JPEG_LS));
        assert!(!uncompressed_pixels_rewritten(JPEG_LS, JPEG_LS));
        assert!(byte_order_changed(EXPLICIT, BIG));
        assert!(byte_order_changed(BIG, IMPLICIT));
        assert!(!byte_order_changed(EXPLICIT, IMPLICIT));
        assert!(!byte_order_changed(BIG, BIG));
        assert!(!byte_order_changed(BIG, JPEG_LS));
        assert!(!byte_order_changed(JPEG_LS, EXPLICIT));
    }

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

    /// Review r23: random bytes written as base64 or hex text read as random (6 and 4
    /// bits/byte, under RANDOM_BITS_PER_BYTE); structured pixels, a gradient through all
    /// 256 values and bars of 16 grey levels (each used as evenly) do not.
    #[test]
    fn random_bytes_written_as_text_read_as_random_and_patterns_do_not() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..BLOCK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let base64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let as_text = |alphabet: &[u8]| -> Vec<u8> {
            random
                .iter()
                .map(|&b| alphabet[usize::from(b) % alphabet.len()])
                .collect()
        };
        assert!(random_bits(&random).is_some_and(|b| b >= RANDOM_BITS_PER_BYTE));
        let b64 = random_bits(&as_text(base64)).expect("base64 of random bytes");
        assert!((5.9..6.0).contains(&b64), "{b64}");
        let hex = random_bits(&as_text(b"0123456789abcdef")).expect("hex of random bytes");
        assert!((3.9..4.0).contains(&hex), "{hex}");
        // Fifteen values used evenly: below MIN_RANDOM_ALPHABET.
        assert_eq!(random_bits(&as_text(b"0123456789abcde")), None);
        let ct: Vec<u8> = (0..BLOCK / 2)
            .flat_map(|i| (((i * 37) % 4096) as u16).to_le_bytes())
            .collect();
        assert_eq!(random_bits(&ct), None);
        let gradient: Vec<u8> = (0..BLOCK).map(|i| i as u8).collect();
        assert_eq!(bits_per_byte(&gradient), 8.0);
        assert_eq!(random_bits(&gradient), None);
        let bars: Vec<u8> = (0..BLOCK).map(|i| ((i / 16) % 16 * 16) as u8).collect();
        assert_eq!(random_bits(&bars), None);
    }

    /// 256 KiB of 12-bit pixels with random bytes at the end, in the middle (the end the
    /// image's own), or nowhere: the first two read as random, the last does not.
    #[test]
    fn random_bytes_written_last_or_in_the_middle_are_found() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        };
        let ct: Vec<u8> = (0..131_072usize)
            .flat_map(|i| (((i * 31) % 4096) as u16).to_le_bytes())
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let look = |bytes: &[u8]| {
            let path = dir.path().join("image");
            std::fs::write(&path, bytes).expect("write");
            let file = std::fs::File::open(&path).expect("open");
            random_written(&file, 65_536, 32)
        };
        assert_eq!(look(&ct), None);
        let mut last = ct[..100_000].to_vec();
        last.extend(random(20_000));
        assert!(look(&last).is_some());
        let mut middle = ct.clone();
        middle[8192..131_072].copy_from_slice(&random(131_072 - 8192));
        assert!(look(&middle).is_some());
        // The spread alone finds the middle: no tail read.
        let file = {
            let path = dir.path().join("image");
            std::fs::write(&path, &middle).expect("write");
            std::fs::File::open(&path).expect("open")
        };
        assert!(random_written(&file, 0, 32).is_some());
        assert_eq!(random_written(&file, 0, 0), None);
        // Review r22: 1 MiB random everywhere but the first block and the blocks a
        // fixed spread read (the first of each of 32 strides of 7 blocks): the blocks
        // read now are drawn within each stride, and found random.
        let image: Vec<u8> = (0..524_288usize)
            .flat_map(|i| (((i * 31) % 4096) as u16).to_le_bytes())
            .collect();
        let blocks = image.len() / BLOCK;
        let step = (blocks - 1) / 32;
        assert_eq!(step, 7);
        let mut around = random(image.len());
        around[..BLOCK].copy_from_slice(&image[..BLOCK]);
        for k in 0..32 {
            let at = (1 + k * step) * BLOCK;
            around[at..at + BLOCK].copy_from_slice(&image[at..at + BLOCK]);
        }
        let path = dir.path().join("around");
        std::fs::write(&path, &around).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        assert!(random_written(&file, 0, 32).is_some());
    }
}
