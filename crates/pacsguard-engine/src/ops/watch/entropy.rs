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
/// MiB or no block of it reads as random. Within the first MiB, random bytes interleaved
/// with a constant ([`interleaved_bits`]) are found too (review rv39 B3: ciphertext
/// written as the 16-bit values of a new image, a zero high byte each).
pub fn random_pixels(path: &Path) -> Option<Randomness> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    let start = match pacsguard_dicom::layout(&head.bytes) {
        Some(layout) if layout.pixels.start < head.bytes.len() => layout.pixels.start,
        // The head ends inside the Pixel Data (an image past the first MiB), which the
        // data set's reading refuses: where its value starts, from its header (review
        // rv40b: every encrypted native image over 1 MiB arriving under a new name was
        // `info`, its pixels never sampled).
        _ => usize::try_from(pacsguard_dicom::native_pixels_in_head(&head.bytes)?.start).ok()?,
    };
    let pixels = head.bytes.get(start..)?;
    if pixels.is_empty() {
        return None; // no Pixel Data found
    }
    if let Some(highest) = most_random(pixels.chunks_exact(BLOCK)) {
        return Some(Randomness::Bytes(highest));
    }
    if let Some((filler, bits)) = pixels
        .chunks_exact(INTERLEAVED_BLOCK)
        .find_map(interleaved_bits)
    {
        return Some(Randomness::Interleaved { filler, bits });
    }
    if head.meta.size <= ENTROPY_SAMPLE_BYTES as u64 {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    random_written(&file, SAMPLE_TAIL_BYTES, SAMPLE_SPREAD_BLOCKS).map(Randomness::Bytes)
}

/// The block over which bytes interleaved with a constant are measured
/// ([`interleaved_bits`]): twice [`BLOCK`], so that the lane that varies holds as many
/// bytes as a block measured whole, and measures as it would.
pub const INTERLEAVED_BLOCK: usize = 2 * BLOCK;

/// Random bytes, as found: written as they are, or each followed (or preceded) by the
/// same byte (review rv39 B3: ciphertext with a zero after each byte measures about
/// 4.96 bits/byte over 256 values, far short of random, and arrived `info` inside a
/// window).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Randomness {
    /// Random bytes ([`random_bits`]), at this many bits per byte.
    Bytes(f64),
    /// Every other byte is `filler`, and the bytes between read as random
    /// ([`interleaved_bits`]) at `bits` per byte.
    Interleaved { filler: u8, bits: f64 },
}

impl std::fmt::Display for Randomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Randomness::Bytes(bits) => write!(f, "random bytes ({bits:.2} bits/byte)"),
            Randomness::Interleaved { filler, bits } => write!(
                f,
                "random bytes interleaved with a constant: every other byte is \
                 0x{filler:02x}, the bytes between read as random ({bits:.2} bits/byte)"
            ),
        }
    }
}

/// When every other byte of `block` is one value (the even ones or the odd ones) and
/// the others read as random ([`random_bits`]): that value and their entropy. No
/// encoding of an image or a document writes this; ciphertext spread over 16-bit
/// lanes does (review rv39 B3). A block of 8-bit values stored in 16 bits has a
/// constant high byte too, but its low bytes are pixels, structured: [`random_bits`]
/// refuses them as it refuses them unspread.
pub fn interleaved_bits(block: &[u8]) -> Option<(u8, f64)> {
    (0..2).find_map(|phase| {
        let filler = *block.get(phase)?;
        if !block.iter().skip(phase).step_by(2).all(|&b| b == filler) {
            return None;
        }
        let lane: Vec<u8> = block.iter().skip(1 - phase).step_by(2).copied().collect();
        random_bits(&lane).map(|bits| (filler, bits))
    })
}

/// The first block of [`INTERLEAVED_BLOCK`] bytes among the first MiB of `path` whose
/// bytes are random bytes interleaved with a constant ([`interleaved_bits`]). Used on
/// new files that are no DICOM, beside [`random_blocks`].
pub fn interleaved_blocks(path: &Path) -> Option<Randomness> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    head.bytes
        .chunks_exact(INTERLEAVED_BLOCK)
        .find_map(interleaved_bits)
        .map(|(filler, bits)| Randomness::Interleaved { filler, bits })
}

/// The share of a file's bytes, in percent, a private (or unknown) binary value must
/// hold for [`wrapped_random`] to look at it: most of them. No migration or
/// re-compression writes an image whose bulk is a vendor's private value; real vendor
/// files carry private OB elements (a CSA header, a thumbnail) beside their pixels, a
/// fraction of the file.
pub const WRAPPED_MIN_SHARE_PERCENT: u64 = 50;

/// The bytes a private value must declare at least for [`wrapped_random`] to look at
/// it: a few blocks, below which nothing of an image's worth was wrapped.
pub const WRAPPED_MIN_BYTES: u64 = 4 * INTERLEAVED_BLOCK as u64;

/// The share of the blocks sampled in a wrapped value, in percent, that must read as
/// random ([`random_bits`] or [`interleaved_bits`]) for it to be called ciphertext:
/// most, as in ciphertext, not the one compressed piece a structured private block
/// may hold.
pub const WRAPPED_MIN_RANDOM_PERCENT: usize = 50;

/// Blocks of [`INTERLEAVED_BLOCK`] bytes sampled, spread, in the part of a wrapped value
/// past the first MiB.
pub const WRAPPED_SPREAD_BLOCKS: usize = 16;

/// Ciphertext wrapped in a valid DICOM (review rv39 B3): its longest value, private
/// (odd group) or unknown (VR `UN`), binary (OB, OW or UN), holding most of its bytes
/// ([`WRAPPED_MIN_SHARE_PERCENT`]), and most of its blocks sampled reading as random
/// ([`WRAPPED_MIN_RANDOM_PERCENT`]): the ransomware kept a valid header (a new SOP
/// Instance UID, a tiny real image or none) and put the encrypted image there.
#[derive(Clone, Debug, PartialEq)]
pub struct Wrapped {
    pub value: pacsguard_dicom::LargestValue,
    pub size: u64,
    /// The length the Pixel Data declares, if it has one.
    pub pixels: Option<u64>,
    pub random: usize,
    pub sampled: usize,
    /// The highest randomness among the blocks read.
    pub highest: Randomness,
}

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Wrapped {
            value,
            size,
            pixels,
            random,
            sampled,
            highest,
        } = self;
        let kind = if value.is_private() {
            "private"
        } else {
            "unknown"
        };
        let pixels = match pixels {
            Some(len) => format!("its Pixel Data {len} bytes"),
            None => "no Pixel Data".to_owned(),
        };
        write!(
            f,
            "its {kind} element {} holds {} of its {size} bytes ({pixels}), {random} of \
             {sampled} blocks sampled there read as {highest}: ciphertext wrapped in a DICOM",
            value.describe(),
            value.declared.min(*size)
        )
    }
}

/// The randomness of one sampled block of a wrapped value: its halves as random bytes,
/// or the whole as interleaved with a constant.
fn block_randomness(block: &[u8]) -> Option<Randomness> {
    let (first, second) = block.split_at(block.len() / 2);
    random_bits(first)
        .into_iter()
        .chain(random_bits(second))
        .reduce(f64::max)
        .map(Randomness::Bytes)
        .or_else(|| {
            interleaved_bits(block).map(|(filler, bits)| Randomness::Interleaved { filler, bits })
        })
}

/// Whether the DICOM file at `path` wraps ciphertext ([`Wrapped`]): its first MiB read
/// for its values' headers, the blocks of its longest value in that MiB and
/// [`WRAPPED_SPREAD_BLOCKS`] spread over the rest of it sampled.
pub fn wrapped_random(path: &Path) -> Option<Wrapped> {
    use std::os::unix::fs::FileExt as _;
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    let (value, pixels) = pacsguard_dicom::largest_value(&head.bytes)?;
    if !value.private_or_unknown_binary() {
        return None;
    }
    let size = head.meta.size;
    // A declared length past the file's end counts for what the file holds.
    let end = value.start.saturating_add(value.declared).min(size);
    let held = end.saturating_sub(value.start);
    if held < WRAPPED_MIN_BYTES
        || held.saturating_mul(100) < size.saturating_mul(WRAPPED_MIN_SHARE_PERCENT)
    {
        return None;
    }
    let mut found: Vec<Randomness> = Vec::new();
    let mut sampled = 0usize;
    let start = usize::try_from(value.start).ok()?;
    let in_head = usize::try_from(end).ok()?.min(head.bytes.len());
    for block in head
        .bytes
        .get(start..in_head)
        .unwrap_or_default()
        .chunks_exact(INTERLEAVED_BLOCK)
    {
        sampled += 1;
        found.extend(block_randomness(block));
    }
    let past = (start.max(head.bytes.len()) as u64).min(end);
    let block = INTERLEAVED_BLOCK as u64;
    if end.saturating_sub(past) >= block {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let stride = (end - past - block) / WRAPPED_SPREAD_BLOCKS as u64;
        let mut one = vec![0u8; INTERLEAVED_BLOCK];
        for k in 0..WRAPPED_SPREAD_BLOCKS as u64 {
            let at = past + k * stride;
            if file.read_exact_at(&mut one, at).is_err() {
                break;
            }
            sampled += 1;
            found.extend(block_randomness(&one));
            if stride == 0 {
                break;
            }
        }
    }
    if sampled == 0 || found.len() * 100 < sampled * WRAPPED_MIN_RANDOM_PERCENT {
        return None;
    }
    let bits = |r: &Randomness| match r {
        Randomness::Bytes(bits) | Randomness::Interleaved { bits, .. } => *bits,
    };
    let highest = found
        .iter()
        .copied()
        .reduce(|a, b| if bits(&b) > bits(&a) { b } else { a })?;
    Some(Wrapped {
        value,
        size,
        pixels: pixels.map(|(_, len)| len),
        random: found.len(),
        sampled,
        highest,
    })
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

    fn xorshift(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// Review rv39 B3: random bytes each followed (or preceded) by one constant read as
    /// random over their lane; 8-bit pixels stored in 16 bits (a constant high byte)
    /// and a block whose other lane varies do not.
    #[test]
    fn random_bytes_interleaved_with_a_constant_read_as_interleaved() {
        let random = xorshift(INTERLEAVED_BLOCK / 2, 11);
        let zeros: Vec<u8> = random.iter().flat_map(|&b| [b, 0]).collect();
        assert_eq!(zeros.len(), INTERLEAVED_BLOCK);
        // Whole, it is far from random: the plain check misses it.
        assert_eq!(random_bits(&zeros[..BLOCK]), None);
        let (filler, bits) = interleaved_bits(&zeros).expect("zero lanes");
        assert_eq!(filler, 0);
        assert!(bits >= RANDOM_BITS_PER_BYTE, "{bits}");
        let ff_first: Vec<u8> = random.iter().flat_map(|&b| [0xFF, b]).collect();
        assert_eq!(interleaved_bits(&ff_first).map(|(f, _)| f), Some(0xFF));
        // 8-bit CT-like values in 16 bits: a constant high byte, structured low bytes.
        let pixels: Vec<u8> = (0..INTERLEAVED_BLOCK / 2)
            .flat_map(|i| [((i * 37) % 251) as u8, 0])
            .collect();
        assert_eq!(interleaved_bits(&pixels), None);
        // The other lane varies: no constant, not this check's.
        let mut varied = zeros.clone();
        varied[1] = 1;
        assert_eq!(interleaved_bits(&varied), None);
        let shown = Randomness::Interleaved { filler, bits }.to_string();
        assert!(shown.contains("every other byte is 0x00"), "{shown}");
    }

    /// A CT image with `pixels` bytes of structured Pixel Data and `private` bytes in a
    /// private OB element (0099,1000), written to `dir`.
    fn wrapped_file(dir: &Path, name: &str, pixels: usize, private: &[u8]) -> std::path::PathBuf {
        let structured: Vec<u8> = (0..pixels / 2)
            .flat_map(|i| (((i * 31) % 4096) as u16).to_le_bytes())
            .collect();
        let mut builder = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.40.1")
            .element(0x0099, 0x0010, *b"LO", b"ACME BACKUP")
            .element(0x0099, 0x1000, *b"OB", private);
        builder = if pixels == 0 {
            builder.without_pixels()
        } else {
            builder.pixels(pacsguard_testkit::Pixels::Native(structured))
        };
        let path = dir.join(name);
        std::fs::write(&path, builder.build()).expect("write");
        path
    }

    /// WRAPPED_MIN_SHARE_PERCENT: random bytes in a private OB holding most of a file
    /// (beside a tiny image, or none) are ciphertext wrapped; the same bytes beside
    /// pixels larger than them (a vendor's compressed thumbnail) are not.
    #[test]
    fn a_private_value_of_random_bytes_holding_most_of_a_file_is_wrapped_ciphertext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ct = xorshift(200_000, 21);
        let tiny = wrapped_file(dir.path(), "tiny", 64, &ct);
        let wrapped = wrapped_random(&tiny).expect("wrapped beside a tiny image");
        assert_eq!(wrapped.pixels, Some(64));
        assert_eq!(wrapped.random, wrapped.sampled);
        let said = wrapped.to_string();
        assert!(said.contains("private element (0099,1000) OB"), "{said}");
        assert!(wrapped_random(&wrapped_file(dir.path(), "none", 0, &ct)).is_some());
        // Just under and just over the share, pixels making up the rest.
        let share = |percent: u64| {
            let pixels = (ct.len() as u64 * (100 - percent) / percent) as usize / 2 * 2;
            wrapped_file(dir.path(), &format!("share{percent}"), pixels, &ct)
        };
        assert!(wrapped_random(&share(WRAPPED_MIN_SHARE_PERCENT - 5)).is_none());
        assert!(wrapped_random(&share(WRAPPED_MIN_SHARE_PERCENT + 5)).is_some());
        // A thumbnail: a quarter of the pixels.
        let thumb = xorshift(50_000, 22);
        assert!(wrapped_random(&wrapped_file(dir.path(), "thumb", 200_000, &thumb)).is_none());
        // An encapsulated PDF (a standard element, (0042,0011)) of compressed-looking
        // bytes is no private value.
        let pdf = pacsguard_testkit::DicomBuilder::encapsulated_pdf("1.2.3.4", &ct).build();
        let pdf_path = dir.path().join("pdf");
        std::fs::write(&pdf_path, pdf).expect("write");
        assert!(wrapped_random(&pdf_path).is_none());
        // A private header of structured values (a CSA header: names padded with
        // zeros to 64 bytes, a VR, a value), however large.
        let mut csa = Vec::new();
        for i in 0..3_000usize {
            let mut name = format!("SliceMeasurementDuration{i}").into_bytes();
            name.resize(64, 0);
            csa.extend(name);
            csa.extend(b"DS\0\0\x01\0\0\0");
            csa.extend(format!("{}.5\0\0", i * 7).into_bytes());
        }
        assert!(wrapped_random(&wrapped_file(dir.path(), "csa", 64, &csa)).is_none());
    }

    /// WRAPPED_MIN_BYTES: a private value of random bytes below it is no image's worth.
    #[test]
    fn a_wrapped_value_below_its_minimum_is_not_looked_at() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at =
            |len: u64, name: &str| wrapped_file(dir.path(), name, 0, &xorshift(len as usize, 23));
        assert!(wrapped_random(&at(WRAPPED_MIN_BYTES - 2, "under")).is_none());
        assert!(wrapped_random(&at(WRAPPED_MIN_BYTES, "at")).is_some());
    }

    /// WRAPPED_MIN_RANDOM_PERCENT: most sampled blocks of the value must read as random.
    #[test]
    fn a_wrapped_value_must_be_mostly_random() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocks = 20usize;
        let mixed = |random_blocks: usize, name: &str| {
            let mut value = Vec::new();
            for k in 0..blocks {
                if k < random_blocks {
                    value.extend(xorshift(INTERLEAVED_BLOCK, 30 + k as u64));
                } else {
                    value.extend(std::iter::repeat_n(b'A', INTERLEAVED_BLOCK));
                }
            }
            wrapped_file(dir.path(), name, 0, &value)
        };
        let under = blocks * WRAPPED_MIN_RANDOM_PERCENT / 100 - 1;
        let over = blocks * WRAPPED_MIN_RANDOM_PERCENT / 100 + 1;
        assert!(wrapped_random(&mixed(under, "under")).is_none());
        assert!(wrapped_random(&mixed(over, "over")).is_some());
        // Interleaved with zeros, the value reads as interleaved.
        let zeros: Vec<u8> = xorshift(100_000, 40).iter().flat_map(|&b| [b, 0]).collect();
        let wrapped = wrapped_random(&wrapped_file(dir.path(), "zeros", 0, &zeros))
            .expect("interleaved ciphertext wrapped");
        assert!(
            matches!(wrapped.highest, Randomness::Interleaved { filler: 0, .. }),
            "{wrapped:?}"
        );
    }

    /// WRAPPED_SPREAD_BLOCKS: past the first MiB, that many blocks spread over the rest
    /// of the value are read.
    #[test]
    fn a_wrapped_value_past_the_first_mib_is_sampled_spread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = wrapped_file(dir.path(), "big", 0, &xorshift(3 << 20, 50));
        let wrapped = wrapped_random(&path).expect("wrapped");
        let start = usize::try_from(wrapped.value.start).expect("small");
        let in_head = (ENTROPY_SAMPLE_BYTES - start) / INTERLEAVED_BLOCK;
        assert_eq!(wrapped.sampled, in_head + WRAPPED_SPREAD_BLOCKS);
        assert_eq!(wrapped.random, wrapped.sampled);
    }

    /// Review rv39 B3: a new image whose 16-bit Pixel Data is ciphertext, a byte a value
    /// (a zero high byte each), reads as interleaved; 8-bit values in 16 bits do not.
    #[test]
    fn pixels_of_ciphertext_a_byte_a_value_read_as_interleaved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = |name: &str, pixels: Vec<u8>| {
            let path = dir.path().join(name);
            let bytes = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.40.2")
                .pixels(pacsguard_testkit::Pixels::Native(pixels))
                .build();
            std::fs::write(&path, bytes).expect("write");
            path
        };
        let lanes: Vec<u8> = xorshift(65_536, 60).iter().flat_map(|&b| [b, 0]).collect();
        assert!(
            matches!(
                random_pixels(&image("lanes", lanes)),
                Some(Randomness::Interleaved { filler: 0, .. })
            ),
            "interleaved ciphertext as pixels"
        );
        let eight_bit: Vec<u8> = (0..65_536usize)
            .flat_map(|i| [((i * 37 + i / 256) % 251) as u8, 0])
            .collect();
        assert_eq!(random_pixels(&image("eight", eight_bit)), None);
    }
}
