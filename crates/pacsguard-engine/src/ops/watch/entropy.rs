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
/// The tail is measured in blocks counted back from the file's end, so that its last
/// bytes are in a block whatever the file's size (issue 11, review rv44-watch case 3:
/// the last 5,274 bytes encrypted, in blocks counted from the start, filled no block
/// whole, and 2 arrivals of 8 so encrypted were `info`), and in blocks counted from the
/// file's start too (review rv45-watch case 2 `tail64`: ransomware's 4 KiB chunks, aligned
/// to the file, half filled each block counted from the end).
pub const SAMPLE_TAIL_BYTES: u64 = 64 * 1024;
pub const SAMPLE_SPREAD_BLOCKS: usize = 32;

/// Of Pixel Data that ends within the first MiB read ([`random_pixels`]), the bytes
/// measured last, ending where it ends, beside its whole blocks counted from its start:
/// one [`BLOCK`] for random bytes, one [`INTERLEAVED_BLOCK`] for ciphertext in lanes.
/// Blocks counted from the start alone leave up to a block less one byte at the end
/// unmeasured, and an encryptor of the last ~5 KiB of a value filled no block whole
/// (issue 11, review rv44-watch case 3, `pixtail`: 2 of 8 arrivals `info`). So, of Pixel
/// Data: its head (the first MiB of the file), its end (these bytes, or the last
/// [`SAMPLE_TAIL_BYTES`] of a larger file) and, past the first MiB, its middle
/// ([`SAMPLE_SPREAD_BLOCKS`] blocks spread over it).
pub const PIXEL_DATA_END_BYTES: usize = INTERLEAVED_BLOCK;

/// The whole blocks of `size` bytes of `bytes` from its start and, when they leave bytes
/// over at its end, one more ending at its end (overlapping the last whole one): every
/// byte of `bytes` longer than a block is in a measured block.
pub fn blocks_to_end(bytes: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    let last = (size > 0 && bytes.len() > size && !bytes.len().is_multiple_of(size))
        .then(|| &bytes[bytes.len() - size..]);
    bytes.chunks_exact(size.max(1)).chain(last)
}

/// Changed files sampled per verification batch: evidence, not a second scan of the store.
pub const MAX_ENTROPY_SAMPLES_PER_BATCH: usize = 8;

/// The block the entropy is measured over: intermittent encryption encrypts some blocks
/// and leaves the rest, so the file's average would hide it.
const BLOCK: usize = 4096;

/// The sub-block Pixel Data in the first MiB is measured over too, in the alignments of
/// its blocks, when no whole block reads as random: intermittent encryption of 2 KiB of
/// every 4 KiB leaves no block of [`BLOCK`] more than half ciphertext (issue 11, review
/// rv45-watch case 2 `i2k4k`: 16 arrivals of 16 `info`). 2 KiB of random bytes measure
/// about 7.91 bits/byte, most of them at or above [`RANDOM_BITS_PER_BYTE`].
pub const SUB_BLOCK: usize = BLOCK / 2;

/// Sub-blocks ([`SUB_BLOCK`]) that must read as random for Pixel Data to: one honest
/// sub-block that happens to measure as random is no encryption (intermittent encryption
/// of half an image leaves hundreds). Of a small image, a quarter of the sub-blocks
/// measured (at least one) suffices: review rv45-watch case 2 `i2k4k` on a real 64x64
/// MR image (8 KiB of pixels) left 2 random, and it was `info`.
pub const MIN_RANDOM_SUB_BLOCKS: usize = 4;

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
    random_lane(block, 0, 1, MIN_RANDOM_ALPHABET)
}

/// The bytes of `block` at `phase`, `phase + width`, ... (one lane of its values).
fn lane(block: &[u8], phase: usize, width: usize) -> impl Iterator<Item = u8> + '_ {
    block.iter().skip(phase).step_by(width).copied()
}

/// How often each byte value occurs among `bytes`, and how many bytes there are.
fn histogram(bytes: impl Iterator<Item = u8>) -> ([u32; 256], usize) {
    let mut counts = [0u32; 256];
    let mut n = 0usize;
    for b in bytes {
        counts[usize::from(b)] += 1;
        n += 1;
    }
    (counts, n)
}

/// Shannon entropy, in bits per byte, of bytes counted in `counts` (`n` of them).
fn entropy_of(counts: &[u32; 256], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The byte values counted in `counts`, when they are at least `min_alphabet` and used
/// evenly (within [`RANDOM_DEFICIT_BITS`] of log2 of their number), with their entropy.
fn even_over(counts: &[u32; 256], n: usize, min_alphabet: usize) -> Option<(f64, usize)> {
    let values = counts.iter().filter(|&&c| c > 0).count();
    if values < min_alphabet {
        return None;
    }
    let bits = entropy_of(counts, n);
    (bits >= (values as f64).log2() - RANDOM_DEFICIT_BITS).then_some((bits, values))
}

/// Whether no step from one byte of `bytes` (`n` of them, over `values` values) to the
/// next is far more frequent than the others (see [`random_bits`]).
fn even_steps(mut bytes: impl Iterator<Item = u8>, n: usize, values: usize) -> bool {
    let mut steps = [0u32; 256];
    if let Some(mut last) = bytes.next() {
        for b in bytes {
            steps[usize::from(b.wrapping_sub(last))] += 1;
            last = b;
        }
    }
    let most_frequent_step = steps.iter().copied().max().unwrap_or(0) as usize;
    most_frequent_step <= 2 * n / values.max(1) + 16
}

/// [`random_bits`] of one lane of `block` ([`lane`]) over at least `min_alphabet` values:
/// its histogram first, its steps only when its values are used evenly (the usual
/// verdict, structure, is reached in one pass).
fn random_lane(block: &[u8], phase: usize, width: usize, min_alphabet: usize) -> Option<f64> {
    let (counts, n) = histogram(lane(block, phase, width));
    let (bits, values) = even_over(&counts, n, min_alphabet)?;
    even_steps(lane(block, phase, width), n, values).then_some(bits)
}

/// The highest [`random_bits`] among `blocks`.
fn most_random<'a>(blocks: impl Iterator<Item = &'a [u8]>) -> Option<f64> {
    blocks.filter_map(random_bits).reduce(f64::max)
}

/// Shannon entropy in bits per byte.
#[cfg(test)]
pub fn bits_per_byte(bytes: &[u8]) -> f64 {
    let (counts, n) = histogram(bytes.iter().copied());
    entropy_of(&counts, n)
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
    random_written_by(file, tail, spread, random_bits)
}

/// [`random_written`], each block measured by `measure` ([`random_bits`] or
/// [`cipher_bits`]).
pub fn random_written_by(
    file: &std::fs::File,
    tail: u64,
    spread: usize,
    measure: fn(&[u8]) -> Option<f64>,
) -> Option<f64> {
    use std::os::unix::fs::FileExt as _;
    let size = file.metadata().ok()?.len();
    let block = BLOCK as u64;
    // The tail ([`SAMPLE_TAIL_BYTES`]) in both alignments: blocks counted back from the
    // end, so that the file's last bytes are in one, and blocks counted from the file's
    // start, where ransomware encrypts its chunks (issue 11, review rv45-watch case 2
    // `tail64`: 4 KiB of every 8 KiB, aligned to the file, made each block counted from
    // the end half ciphertext, and 16 arrivals of 16 were `info`).
    let from = size.saturating_sub(tail) / block * block;
    let mut read = vec![0u8; usize::try_from(size - from).ok()?];
    file.read_exact_at(&mut read, from).ok()?;
    // When the size is a multiple of a block the two alignments are one.
    let end_aligned = (!size.is_multiple_of(block)).then(|| read.rchunks_exact(BLOCK));
    let mut highest = read
        .chunks_exact(BLOCK)
        .chain(end_aligned.into_iter().flatten())
        .filter_map(measure)
        .reduce(f64::max);
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
            highest = highest.into_iter().chain(measure(&one)).reduce(f64::max);
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
    blocks_by(path, random_bits)
}

/// [`random_blocks`] by [`cipher_bits`]: ciphertext as written, not text of a limited
/// alphabet (what a new file that is no DICOM is judged by: a base64 report or key is
/// no encryption, review rv40b).
pub fn cipher_blocks(path: &Path) -> Option<f64> {
    blocks_by(path, cipher_bits)
}

fn blocks_by(path: &Path, measure: fn(&[u8]) -> Option<f64>) -> Option<f64> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    if let Some(highest) = head
        .bytes
        .chunks_exact(BLOCK)
        .filter_map(measure)
        .reduce(f64::max)
    {
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
    random_written_by(&file, SAMPLE_TAIL_BYTES, SAMPLE_SPREAD_BLOCKS, measure)
}

/// The highest block entropy of the Pixel Data of the DICOM file at `path`, when a block
/// of it reads as random: its whole blocks within the first MiB from where its Pixel Data
/// begins and, past that MiB, its last blocks and blocks spread over the rest (see
/// [`random_written`]; the Pixel Data is the data set's last large value). Only the
/// Pixel Data: an instance that carries compressed bytes elsewhere (an encapsulated PDF,
/// a private blob) is no image encrypted. `None` when no Pixel Data begins in the first
/// MiB or no block of it reads as random. Within the first MiB, ciphertext in the lanes
/// of 16- or 32-bit values ([`lanes`]) is found too (review rv39 B3: ciphertext written
/// as the 16-bit values of a new image, a zero high byte each; rv40b: two bytes a 32-bit
/// value, 12 bits a value, a filler not quite constant).
pub fn random_pixels(path: &Path) -> Option<Randomness> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    let (start, end) = match pacsguard_dicom::layout(&head.bytes) {
        Some(layout) if layout.pixels.start < head.bytes.len() => (
            layout.pixels.start,
            layout
                .pixels
                .end
                .clamp(layout.pixels.start, head.bytes.len()),
        ),
        // The head ends inside the Pixel Data (an image past the first MiB), which the
        // data set's reading refuses: where its value starts, from its header (review
        // rv40b: every encrypted native image over 1 MiB arriving under a new name was
        // `info`, its pixels never sampled).
        _ => (
            usize::try_from(pacsguard_dicom::native_pixels_in_head(&head.bytes)?.start).ok()?,
            head.bytes.len(),
        ),
    };
    let pixels = head.bytes.get(start..)?;
    if pixels.is_empty() {
        return None; // no Pixel Data found
    }
    // Its whole blocks, then its end ([`PIXEL_DATA_END_BYTES`]): where the value ends
    // within the head, else the head's end (the file's tail is read below).
    let value = head.bytes.get(start..end).unwrap_or(pixels);
    let end_of = |size: usize| value.len().checked_sub(size).and_then(|at| value.get(at..));
    // And its blocks counted from the file's start, where ransomware encrypts its chunks
    // (issue 11, review rv45-watch case 2 `if4k8k`: 4 KiB of every 8 KiB aligned to the
    // file made each block counted from the value's start half ciphertext, and 6 of 12
    // images under 1 MiB were `info`).
    let file_aligned = pixels
        .get(start.next_multiple_of(BLOCK) - start..)
        .unwrap_or_default()
        .chunks_exact(BLOCK);
    let blocks = blocks_to_end(pixels, BLOCK).chain(end_of(BLOCK)).chain(
        (!start.is_multiple_of(BLOCK))
            .then_some(file_aligned)
            .into_iter()
            .flatten(),
    );
    if let Some(highest) = most_random(blocks) {
        return Some(Randomness::Bytes(highest));
    }
    let interleaved = blocks_to_end(pixels, INTERLEAVED_BLOCK).chain(end_of(PIXEL_DATA_END_BYTES));
    if let Some(found) = interleaved.into_iter().find_map(lanes) {
        return Some(Randomness::Lanes(found));
    }
    // Its sub-blocks, counted from the value's start and from the file's start.
    let sub_file_aligned = pixels
        .get(start.next_multiple_of(SUB_BLOCK) - start..)
        .unwrap_or_default()
        .chunks_exact(SUB_BLOCK);
    let subs: Vec<&[u8]> = pixels
        .chunks_exact(SUB_BLOCK)
        .chain(
            (!start.is_multiple_of(SUB_BLOCK))
                .then_some(sub_file_aligned)
                .into_iter()
                .flatten(),
        )
        .collect();
    let needed = MIN_RANDOM_SUB_BLOCKS.min((subs.len() / 4).max(1));
    let random_subs: Vec<f64> = subs.into_iter().filter_map(random_bits).collect();
    if random_subs.len() >= needed {
        return random_subs
            .into_iter()
            .reduce(f64::max)
            .map(Randomness::Bytes);
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

/// The block over which bytes in lanes are measured ([`lanes`]): four times [`BLOCK`], so
/// that each lane of 32-bit values holds as many bytes as a block measured whole, and
/// measures as it would (a lane of 2 KiB of random bytes measures 7.91 bits/byte, too
/// near the 7.9 asked).
pub const INTERLEAVED_BLOCK: usize = 4 * BLOCK;

/// Byte values a text's alphabet holds at most: ASCII, and any 7-bit code. Ciphertext
/// uses all 256 (a 4 KiB block of it holds 255 or 256); base64, hex or any other
/// alphabet-limited text (in 8-bit units, or 16-bit ones: UTF-16LE, as PowerShell 5's
/// `Out-File` writes) holds at most this many however evenly it uses them, and is no
/// ciphertext written as it is (review rv40b: a base64 report or key arriving in a
/// window alerted as encryption).
pub const TEXT_ALPHABET_MAX: usize = 128;

/// The entropy of `block` when it reads as ciphertext as written: random bytes
/// ([`random_bits`]) over more than [`TEXT_ALPHABET_MAX`] values. Where an image's
/// structured pixels were, [`random_bits`] stands (review r23: ciphertext written there
/// as base64 or hex is no image either); what a file or a value holds by itself, text
/// of any alphabet included, is ciphertext only by this measure.
pub fn cipher_bits(block: &[u8]) -> Option<f64> {
    let (counts, n) = histogram(block.iter().copied());
    // The text's excuse holds for a 7-bit code only (ASCII, base64, hex, and UTF-16LE's
    // zero bytes beside them): 128 values of the high half are no text, and ciphertext
    // coded into them was `info` (review rv41-watch C3).
    let seven_bit = counts[0x80..].iter().all(|&c| c == 0);
    let alphabet = if seven_bit {
        TEXT_ALPHABET_MAX + 1
    } else {
        MIN_RANDOM_ALPHABET
    };
    let (bits, values) = even_over(&counts, n, alphabet)?;
    even_steps(block.iter().copied(), n, values).then_some(bits)
}

/// The lane widths ([`lanes`]) looked at, in bytes: 24-bit RGB pixels (a byte a
/// sample), 16-bit values and 32-bit values (review s42: ciphertext in R and G beside
/// B = 0 was looked at in 16- and 32-bit lanes only, and missed). Pixels of three bytes
/// first: the words name the width found first, and a colour image's planes read in
/// lanes of two were said "16-bit lanes: 1 of each 2 bytes" (issue 11, review of
/// session 42). Values of 2 or 4 bytes mix their low and high bytes in lanes of three,
/// which then read as neither ciphertext nor filler, and are found at their width.
pub const LANE_WIDTHS: [usize; 3] = [3, 2, 4];

/// Bits per byte at or below which a lane is filler beside ciphertext ([`lanes`]): a
/// constant, or one broken now and then (review rv40b: a zero filler with 0x01 every
/// 256th byte measures 0.04 bits/byte).
pub const FILLER_MAX_BITS: f64 = 1.0;

/// Pairs of neighbouring values whose byte beside a ciphertext lane steps by one, at
/// least, for [`lanes`] to judge whether that byte carries from the ciphertext lane
/// below it ([`CARRY_MAX_PERCENT`]); fewer, and the lane is not taken for one beside
/// ciphertext.
pub const MIN_CARRY_PAIRS: usize = 64;

/// The share of those pairs, in percent, in which the low byte stepped against the high
/// one (a carry: the high byte up by one, the low byte down), at or under which the high
/// byte carries nothing from the low one ([`lanes`]). A sample's low and high bytes are
/// one number: where the high byte steps up by one, the low byte wrapped round and
/// stepped down (an image's values step by less than 256 from one to the next in most
/// places: 70% and more of such pairs here, `.testdata`'s images); a ciphertext byte
/// put beside an image's own high byte, or beside bits packed above it, steps down half
/// the time whatever the byte above it does.
pub const CARRY_MAX_PERCENT: usize = 60;

/// What one lane of a block ([`lanes`]) reads as.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lane {
    /// Ciphertext ([`cipher_bits`]), at this many bits per byte.
    Cipher(f64),
    /// Random bits, this many, used evenly (a 9-, 10-, 11- or 12-bit packing's high
    /// bits), over fewer values than ciphertext.
    Packed(u32),
    /// Near constant ([`FILLER_MAX_BITS`]), mostly this byte.
    Filler(u8),
    /// Anything else: an image's high bytes, text, structure.
    Other,
}

/// The histogram of the lane at `phase` of `block` in values of `width` bytes: its
/// counts, bytes, values used and entropy.
struct LaneCounts {
    counts: [u32; 256],
    n: usize,
    values: usize,
    bits: f64,
}

impl LaneCounts {
    /// The lanes of `block` in values of `width` bytes, counted in one pass.
    fn all(block: &[u8], width: usize) -> Vec<LaneCounts> {
        let mut counts = vec![[0u32; 256]; width];
        let mut n = vec![block.len() / width; width];
        let values = block.chunks_exact(width);
        for (phase, &b) in values.remainder().iter().enumerate() {
            counts[phase][usize::from(b)] += 1;
            n[phase] += 1;
        }
        for value in values {
            for phase in 0..width {
                counts[phase][usize::from(value[phase])] += 1;
            }
        }
        counts
            .into_iter()
            .zip(n)
            .map(|(counts, n)| {
                let values = counts.iter().filter(|&&c| c > 0).count();
                let bits = entropy_of(&counts, n);
                LaneCounts {
                    counts,
                    n,
                    values,
                    bits,
                }
            })
            .collect()
    }

    /// Whether its values, two at least, are used evenly.
    fn even(&self) -> bool {
        self.values >= 2 && self.bits >= (self.values as f64).log2() - RANDOM_DEFICIT_BITS
    }

    /// What the lane reads as, its steps read when its values are used evenly.
    fn kind(&self, block: &[u8], phase: usize, width: usize) -> Lane {
        if self.even() && even_steps(lane(block, phase, width), self.n, self.values) {
            return if self.values > TEXT_ALPHABET_MAX {
                Lane::Cipher(self.bits)
            } else {
                Lane::Packed(self.bits.round() as u32)
            };
        }
        if self.bits <= FILLER_MAX_BITS {
            let most = (0..=255u8)
                .max_by_key(|&b| self.counts[usize::from(b)])
                .unwrap_or(0);
            return Lane::Filler(most);
        }
        Lane::Other
    }
}

/// Among the neighbouring values of `block` (of `width` bytes) whose byte at `high`
/// steps by one, how many there are whose byte at `low` steps too, and how many of those
/// step against it (a carry: the high byte up by one, the low byte down).
fn carries(block: &[u8], width: usize, low: usize, high: usize) -> (usize, usize) {
    let (mut pairs, mut carries) = (0usize, 0usize);
    let mut values = block.chunks_exact(width).map(|v| (v[low], v[high]));
    let Some(mut last) = values.next() else {
        return (0, 0);
    };
    for now in values {
        let dh = i16::from(now.1) - i16::from(last.1);
        let dl = i16::from(now.0) - i16::from(last.0);
        if dh.abs() == 1 && dl != 0 {
            pairs += 1;
            carries += usize::from((dh > 0) != (dl > 0));
        }
        last = now;
    }
    (pairs, carries)
}

/// Whether the byte at `high` of each value of `block` carries nothing from the
/// ciphertext byte at `low` beside it ([`CARRY_MAX_PERCENT`], [`MIN_CARRY_PAIRS`]).
fn carries_nothing(block: &[u8], width: usize, low: usize, high: usize) -> bool {
    let (pairs, carries) = carries(block, width, low, high);
    pairs >= MIN_CARRY_PAIRS && carries * 100 <= pairs * CARRY_MAX_PERCENT
}

/// Whether `block` holds 16-bit samples, one byte carrying into the other (more than
/// [`CARRY_MAX_PERCENT`] of at least [`MIN_CARRY_PAIRS`] steps, in either byte order):
/// an image's values, whatever its lanes read as at other widths (a steep 16-bit ramp
/// with noise reads as random bytes in lanes of three, each mixing low and high bytes).
fn sixteen_bit_samples(block: &[u8]) -> bool {
    [(0, 1), (1, 0)].into_iter().any(|(low, high)| {
        let (pairs, carries) = carries(block, 2, low, high);
        pairs >= MIN_CARRY_PAIRS && carries * 100 > pairs * CARRY_MAX_PERCENT
    })
}

/// Ciphertext spread over the lanes of small values ([`lanes`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanes {
    /// The bytes of a value: 2, 3 or 4 ([`LANE_WIDTHS`]).
    pub width: usize,
    /// The lanes (byte positions in a value) whose bytes read as ciphertext
    /// ([`cipher_bits`]).
    pub cipher: usize,
    /// The lanes whose bytes are random bits over fewer values, beside a ciphertext
    /// lane (a 9- to 12-bit packing's high bits), and the most bits one holds.
    pub packed: usize,
    pub packed_bits: u32,
    /// The lanes of other bytes (an image's own high bytes) beside a ciphertext lane
    /// that carry nothing from it ([`CARRY_MAX_PERCENT`]).
    pub beside: usize,
    /// The most frequent byte of the filler lanes, when there are any.
    pub filler: Option<u8>,
    /// The highest entropy of a ciphertext lane.
    pub bits: f64,
    /// The least 16-bit value, taken from each value before the lanes were read, when
    /// they were read so ([`rebased`]).
    pub less: Option<u16>,
}

impl std::fmt::Display for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Lanes {
            width,
            cipher,
            packed,
            packed_bits,
            beside,
            filler,
            bits,
            less,
        } = *self;
        if let Some(least) = less {
            write!(f, "(its 16-bit values less their least, {least}) ")?;
        }
        let filler = filler.map_or(String::new(), |b| format!("0x{b:02x}"));
        if width == 2 && packed == 0 && beside == 0 {
            return write!(
                f,
                "random bytes interleaved with filler: every other byte is {filler} or \
                 mostly so, the bytes between read as random ({bits:.2} bits/byte)"
            );
        }
        write!(
            f,
            "random bytes in {}-bit lanes: {cipher} of each {width} bytes read as random \
             ({bits:.2} bits/byte)",
            width * 8
        )?;
        if packed > 0 {
            let s = if packed_bits == 1 { "" } else { "s" };
            write!(
                f,
                ", {packed} as random bits packed beside them (up to {packed_bits} bit{s} \
                 a byte, used evenly)"
            )?;
        }
        if beside > 0 {
            write!(
                f,
                ", {beside} as other bytes beside them that carry nothing from them (no \
                 sample's low and high bytes)"
            )?;
        }
        let fillers = width - cipher - packed - beside;
        if fillers > 0 {
            write!(f, ", {fillers} are filler (mostly {filler})")?;
        }
        Ok(())
    }
}

/// Random bytes, as found: written as they are, or spread over the lanes of 16- or
/// 32-bit values beside filler or packed bits ([`lanes`]; review rv39 B3: ciphertext with
/// a zero after each byte measures about 4.96 bits/byte over 256 values, far short of
/// random, and arrived `info` inside a window).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Randomness {
    /// Random bytes ([`random_bits`] or [`cipher_bits`]), at this many bits per byte.
    Bytes(f64),
    /// Ciphertext in lanes ([`lanes`]).
    Lanes(Lanes),
}

impl Randomness {
    /// Its bits per byte (of the ciphertext lanes, for lanes).
    pub fn bits(&self) -> f64 {
        match self {
            Randomness::Bytes(bits) => *bits,
            Randomness::Lanes(lanes) => lanes.bits,
        }
    }
}

impl std::fmt::Display for Randomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Randomness::Bytes(bits) => write!(f, "random bytes ({bits:.2} bits/byte)"),
            Randomness::Lanes(lanes) => lanes.fmt(f),
        }
    }
}

/// When `block`, taken as values of 2, 3 or 4 bytes ([`LANE_WIDTHS`]), has a lane (a byte
/// position of each value) of ciphertext ([`cipher_bits`]) and every other lane is
/// ciphertext, filler ([`FILLER_MAX_BITS`]), or, next to a ciphertext lane in the same
/// value, random bits packed above it (the high bits of a 9- to 12-bit packing) or other
/// bytes (an image's own high bytes) that carry nothing from it ([`CARRY_MAX_PERCENT`]):
/// how. Review rv39 B3, rv40b and s42: ciphertext written a byte a 16-bit value (a zero
/// high byte each), two bytes a 32-bit value, two samples of three in RGB, 9 to 12 bits
/// a value, beside a filler that is not quite constant, or beside a stored image's own
/// high bytes. No encoding of an image writes this: its values' low bytes may be noisy,
/// but the byte above a low byte is the same number's, and steps up by one where the
/// low byte wrapped round (a carry); 8-bit values stored in 16 bits have filler above
/// structured low bytes, which are no ciphertext.
///
/// And `block` as 16-bit little-endian values less their least ([`rebased`]): ciphertext
/// bytes added to a base value (1000 + a random byte) carry into the byte above, as an
/// image's values do, where less the base they are a random byte beside a zero (issue
/// 11, review rv45-watch case 1 `band`: 24 such arrivals were `info`).
pub fn lanes(block: &[u8]) -> Option<Lanes> {
    lanes_as_written(block).or_else(|| {
        let (least, values) = rebased(block)?;
        lanes_as_written(&values).map(|found| Lanes {
            less: Some(least),
            ..found
        })
    })
}

/// The widest span (most less least) of the 16-bit values of a block [`lanes`] reads
/// rebased: a random byte, or the 9 to 12 random bits a packing holds, offset into a
/// band. Wider spans are an image's own values, and the lanes of a 12-bit packing are the
/// widest [`lanes`] reads.
pub const MAX_REBASED_SPAN: u16 = 0x0FFF;

/// `block` as 16-bit little-endian values less their least (and that least), when the
/// least is at least 256 (below, the high byte holds the band's base already, and the
/// values are read as written) and they span at most [`MAX_REBASED_SPAN`]; `None`
/// otherwise.
fn rebased(block: &[u8]) -> Option<(u16, Vec<u8>)> {
    let values = || {
        block
            .chunks_exact(2)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
    };
    let least = values().min()?;
    let most = values().max()?;
    if least < 0x100 || most - least > MAX_REBASED_SPAN {
        return None;
    }
    Some((
        least,
        values().flat_map(|v| (v - least).to_le_bytes()).collect(),
    ))
}

/// [`lanes`] of `block` as written.
fn lanes_as_written(block: &[u8]) -> Option<Lanes> {
    // One histogram of the whole block first: a lane of ciphertext holds more than
    // TEXT_ALPHABET_MAX values, so a block of fewer (text, most images' blocks) holds
    // none, and the lanes of three widths are not counted (session 42: 400 decoy text
    // files counted so used up a batch's sampling time under load).
    let (whole, _) = histogram(block.iter().copied());
    if whole.iter().filter(|&&c| c > 0).count() <= TEXT_ALPHABET_MAX {
        return None;
    }
    let found = LANE_WIDTHS.iter().find_map(|&width| {
        // The histograms first: no lane that may be ciphertext, or every lane so (random
        // bytes, which the plain checks see), nothing more to look at (the usual
        // verdicts, reached without reading the steps).
        let counts = LaneCounts::all(block, width);
        let may_be_cipher = counts
            .iter()
            .filter(|c| c.even() && c.values > TEXT_ALPHABET_MAX)
            .count();
        if may_be_cipher == 0 || may_be_cipher == width {
            return None;
        }
        let kinds: Vec<Lane> = counts
            .iter()
            .enumerate()
            .map(|(p, c)| c.kind(block, p, width))
            .collect();
        let is_cipher = |p: usize| matches!(kinds.get(p), Some(Lane::Cipher(_)));
        let mut found = Lanes {
            width,
            cipher: 0,
            packed: 0,
            packed_bits: 0,
            beside: 0,
            filler: None,
            bits: 0.0,
            less: None,
        };
        for (phase, kind) in kinds.iter().enumerate() {
            // A lane beside ciphertext: the ciphertext lanes next to it in the value (in
            // either byte order) must carry into it no more than chance.
            // In lanes of three (a pixel's R, G and B, a byte each) every sample is beside
            // the other two: no sample is another's high byte, and the pixel's bytes
            // follow one another round (B, then the next pixel's R). Issue 11 (review of
            // session 42): R alone turned ciphertext left B beside no ciphertext lane,
            // and the image passed.
            let beside_cipher = || {
                let near: Vec<usize> = if width == 3 {
                    (0..width).filter(|&p| p != phase).collect()
                } else {
                    [phase.checked_sub(1), Some(phase + 1)]
                        .into_iter()
                        .flatten()
                        .collect()
                };
                let neighbours: Vec<usize> = near.into_iter().filter(|&p| is_cipher(p)).collect();
                !neighbours.is_empty()
                    && neighbours
                        .iter()
                        .all(|&low| carries_nothing(block, width, low, phase))
            };
            match *kind {
                Lane::Cipher(bits) => {
                    found.cipher += 1;
                    found.bits = found.bits.max(bits);
                }
                Lane::Filler(most) => {
                    found.filler = found.filler.or(Some(most));
                }
                Lane::Packed(bits) if beside_cipher() => {
                    found.packed += 1;
                    found.packed_bits = found.packed_bits.max(bits);
                }
                Lane::Other if beside_cipher() => found.beside += 1,
                Lane::Packed(_) | Lane::Other => return None,
            }
        }
        // Every lane ciphertext is random bytes, which the plain checks see: lanes are
        // ciphertext beside something else.
        (found.cipher > 0 && found.cipher < width).then_some(found)
    })?;
    // Read last, when something was found: most blocks end at their histograms.
    (!sixteen_bit_samples(block)).then_some(found)
}

/// The first block of [`INTERLEAVED_BLOCK`] bytes among the first MiB of `path` holding
/// ciphertext in lanes ([`lanes`]). Used on new files that are no DICOM, beside
/// [`cipher_blocks`].
pub fn lane_blocks(path: &Path) -> Option<Randomness> {
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    head.bytes
        .chunks_exact(INTERLEAVED_BLOCK)
        .find_map(lanes)
        .map(Randomness::Lanes)
}

/// The share of a file's bytes, in percent, its private (or unknown) binary values must
/// hold together for [`wrapped_random`] to look at them: most of them. No migration or
/// re-compression writes an image whose bulk is a vendor's private values; real vendor
/// files carry private OB elements (a CSA header, a thumbnail) beside their pixels, a
/// fraction of the file.
pub const WRAPPED_MIN_SHARE_PERCENT: u64 = 50;

/// The bytes private values must hold at least for [`wrapped_random`] to look at them: a
/// few blocks, below which nothing of an image's worth was wrapped.
pub const WRAPPED_MIN_BYTES: u64 = 2 * INTERLEAVED_BLOCK as u64;

/// The share of the blocks sampled in wrapped values, in percent, that must read as
/// ciphertext ([`cipher_bits`] or [`lanes`]) for them to be called ciphertext, each
/// weighed by the bytes it stands for (a block of the first MiB, itself; one spread past
/// it, its stride): most, as in ciphertext, not the one compressed piece a structured
/// private block may hold.
pub const WRAPPED_MIN_RANDOM_PERCENT: usize = 50;

/// Blocks of [`INTERLEAVED_BLOCK`] bytes sampled, spread, in the parts of wrapped values
/// past the first MiB, all values together (at least one a value).
pub const WRAPPED_SPREAD_BLOCKS: usize = 16;

/// Bytes read at a time past the first MiB to go on reading a data set's element headers
/// after a value that runs past it ([`wrapped_random`]), and how many such reads at most:
/// an attacker chooses how many values follow (review rv40b: ciphertext split over three
/// private values, the second and third past the first MiB, was never weighed). Past
/// them the values not read are not counted, and a finding says the reading stopped.
pub const WRAPPED_HOP_BYTES: usize = 64 * 1024;
pub const MAX_WRAPPED_HOPS: usize = 16;

/// The rest of a file past [`MAX_WRAPPED_HOPS`] hops, not read as elements, sampled
/// spread by offset ([`wrapped_random`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unread {
    /// Where it begins, and its bytes.
    pub from: u64,
    pub bytes: u64,
    /// Its blocks sampled that read as ciphertext, of those sampled.
    pub random: usize,
    pub sampled: usize,
}

/// Ciphertext wrapped in a valid DICOM (review rv39 B3, rv40b): its private (odd group)
/// or unknown (VR `UN`) binary values (OB, OW or UN), at any depth, holding most of its
/// bytes together ([`WRAPPED_MIN_SHARE_PERCENT`]), and most of the blocks sampled in
/// them reading as ciphertext ([`WRAPPED_MIN_RANDOM_PERCENT`]): the ransomware kept a
/// valid header (a new SOP Instance UID, a tiny real image or none) and put the
/// encrypted image there, in one value or several, or inside a sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Wrapped {
    /// The longest of them, and how many there are (all met).
    pub value: pacsguard_dicom::LargestValue,
    pub values: usize,
    /// The bytes they hold together.
    pub held: u64,
    pub size: u64,
    /// The length the Pixel Data declares, if it has one.
    pub pixels: Option<u64>,
    /// Whether the data set was read to its end ([`MAX_WRAPPED_HOPS`]): else values and
    /// a Pixel Data past what was read are not known.
    pub complete: bool,
    /// The rest of the file past the hops ([`MAX_WRAPPED_HOPS`]), sampled by offset,
    /// when the verdict needed it: then it is a warning, not an alert ([`Self::is_warning`]).
    pub unread: Option<Unread>,
    /// Binary values excused as compressed data (`compressed::verified`), not counted.
    pub excused: usize,
    /// A compressed format nothing here decodes whose magic a value counted begins
    /// with (`compressed::magic`).
    pub magic: Option<&'static str>,
    pub random: usize,
    pub sampled: usize,
    /// The share of the bytes the sampled blocks stand for that read as ciphertext, in
    /// percent (see [`WRAPPED_MIN_RANDOM_PERCENT`]).
    pub random_percent: u64,
    /// The highest randomness among the blocks read.
    pub highest: Randomness,
}

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Wrapped {
            value,
            values,
            held,
            size,
            pixels,
            complete,
            unread,
            excused,
            magic,
            random,
            sampled,
            random_percent,
            highest,
        } = self;
        let kind = if value.is_private() {
            "private"
        } else {
            "unknown"
        };
        let pixels = match (pixels, complete) {
            (Some(len), _) => format!("its Pixel Data {len} bytes"),
            (None, true) => "no Pixel Data".to_owned(),
            (None, false) => "no Pixel Data in what was read of its data set".to_owned(),
        };
        let elements = if *values == 1 {
            format!("its {kind} element {}", value.describe())
        } else {
            format!(
                "its {values} private or unknown binary elements (the longest {kind}, {})",
                value.describe()
            )
        };
        let verb = if *values == 1 { "holds" } else { "hold" };
        if let Some(Unread {
            from,
            bytes,
            random: r,
            sampled: n,
        }) = unread
        {
            return write!(
                f,
                "its data set was read as elements for {MAX_WRAPPED_HOPS} values past its \
                 first MiB only (MAX_WRAPPED_HOPS); the {bytes} bytes after offset {from} \
                 were sampled by offset instead, and {r} of {n} blocks there read as \
                 ciphertext; with {elements} they make {held} of its {size} bytes, \
                 {random} of {sampled} blocks sampled ({random_percent}% of the bytes they \
                 stand for) reading as {highest}: ciphertext pushed past the values read?"
            );
        }
        // A value opening with a compressed format's magic that nothing here decodes is
        // counted (ciphertext behind such a magic is not told apart), but said to be
        // either (session 43: an honest bzip2, xz or zstd private value was called
        // ciphertext, and bzip2 and xz an executable besides).
        let what = match magic {
            Some(magic) => format!(
                "{magic}-compressed data (its magic opens one of them; nothing here decodes \
                 {magic}) or ciphertext wrapped in a DICOM, not told apart: counted"
            ),
            None => "ciphertext wrapped in a DICOM".to_owned(),
        };
        write!(
            f,
            "{elements} {verb} {held} of its {size} bytes ({pixels}), {random} of \
             {sampled} blocks sampled there ({random_percent}% of the bytes they stand \
             for) read as {highest}: {what}"
        )?;
        if *excused > 0 {
            write!(f, " ({excused} more, compressed data, not counted)")?;
        }
        Ok(())
    }
}

impl Wrapped {
    /// Whether it stands on the bytes past [`MAX_WRAPPED_HOPS`] ([`Unread`]), not known
    /// to be private values: a warning, not an alert.
    pub fn is_warning(&self) -> bool {
        self.unread.is_some()
    }
}

/// The randomness of one sampled block of a wrapped value: its halves as ciphertext, or
/// the whole as ciphertext in lanes.
fn block_randomness(block: &[u8]) -> Option<Randomness> {
    let (first, second) = block.split_at(block.len() / 2);
    cipher_bits(first)
        .into_iter()
        .chain(cipher_bits(second))
        .reduce(f64::max)
        .map(Randomness::Bytes)
        .or_else(|| lanes(block).map(Randomness::Lanes))
}

/// Whether the DICOM file at `path` wraps ciphertext ([`Wrapped`]): its first MiB read
/// for its values' headers, and past a value running beyond it [`WRAPPED_HOP_BYTES`] at
/// a time ([`MAX_WRAPPED_HOPS`]); the blocks of its private binary values in that MiB
/// and [`WRAPPED_SPREAD_BLOCKS`] spread over their parts past it sampled. Cost: at most
/// 1 MiB + 16 x 64 KiB + 16 x 16 KiB read.
pub fn wrapped_random(path: &Path) -> Option<Wrapped> {
    use std::os::unix::fs::FileExt as _;
    let head = read_head(path, ENTROPY_SAMPLE_BYTES).ok()?;
    let size = head.meta.size;
    let mut found = pacsguard_dicom::binary_values(&head.bytes)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let mut chunk = vec![0u8; WRAPPED_HOP_BYTES];
    let mut hops = 0;
    while let Some(next) = found.runs_to {
        if next >= size || hops == MAX_WRAPPED_HOPS {
            break;
        }
        hops += 1;
        let len = usize::try_from((size - next).min(WRAPPED_HOP_BYTES as u64)).ok()?;
        if file.read_exact_at(&mut chunk[..len], next).is_err()
            || !pacsguard_dicom::binary_values_after(&head.bytes, &chunk[..len], next, &mut found)
        {
            break;
        }
    }
    let complete = found.complete || found.runs_to.is_some_and(|end| end >= size);
    // Where the hops ran out, the rest of the file is not read as elements (review s42:
    // 16 plain decoys of 70 KiB after the first MiB pushed the ciphertext past them).
    let unread_from = found
        .runs_to
        .filter(|&end| !complete && hops == MAX_WRAPPED_HOPS && end < size);
    let held_of = |v: &pacsguard_dicom::LargestValue| {
        v.start
            .saturating_add(v.declared)
            .min(size)
            .saturating_sub(v.start)
    };
    // A declared length past the file's end counts for what the file holds (the values
    // not kept are shorter than those kept, and within the file).
    let overclaimed: u64 = found.values.iter().map(|v| v.declared - held_of(v)).sum();
    let mut held = found.declared.saturating_sub(overclaimed);
    let head_len = head.bytes.len() as u64;
    // Compressed values (zlib, gzip, JPEG, JPEG 2000: `compressed::verified`) are no
    // ciphertext however random they read (review s42: zlib'd projections in a private
    // sequence, a gzip'd private OB), and do not count.
    let mut kept = Vec::new();
    let mut excused = 0usize;
    let mut magic = None;
    // A value is excused whole or not at all (review rv42-watch: judged by its first
    // 64 KiB, zeros compressed before ciphertext hid it): read whole when within
    // COMPRESSED_MAX_VALUE_BYTES, else only its head, for the magic's name.
    let mut whole_value = Vec::new();
    for v in &found.values {
        let value_len = usize::try_from(held_of(v)).unwrap_or(usize::MAX);
        let len = if value_len <= super::compressed::COMPRESSED_MAX_VALUE_BYTES {
            value_len
        } else {
            16
        };
        let start = usize::try_from(v.start).ok()?;
        let bytes = match head.bytes.get(start..start.saturating_add(len)) {
            Some(bytes) => bytes,
            None => {
                whole_value.resize(len, 0);
                if file.read_exact_at(&mut whole_value, v.start).is_ok() {
                    &whole_value[..]
                } else {
                    &[][..]
                }
            }
        };
        if len == value_len && super::compressed::verified(bytes).is_some() {
            excused += 1;
            held = held.saturating_sub(held_of(v));
        } else {
            magic = magic.or(super::compressed::magic(bytes));
            kept.push(*v);
        }
    }
    if held < WRAPPED_MIN_BYTES && unread_from.is_none() {
        return None;
    }
    let longest = *kept.first()?;
    kept.sort_by_key(|v| v.start);
    // Their bytes in the first MiB, joined in the file's order: pieces shorter than a
    // block are sampled too.
    let mut joined = Vec::new();
    for v in &kept {
        let from = usize::try_from(v.start).ok()?;
        let to = usize::try_from(v.start.saturating_add(held_of(v)).min(head_len)).ok()?;
        joined.extend_from_slice(head.bytes.get(from..to).unwrap_or_default());
    }
    let mut random: Vec<Randomness> = Vec::new();
    let mut sampled = 0usize;
    // The bytes each sampled block stands for, all and those read as ciphertext: a
    // block spread past the first MiB stands for its stride (review rv40b: a 7 MB
    // value whose first MiB was left plain, the rest encrypted, sampled 64 plain blocks
    // in the head and 16 random ones past it, 20% random, and was `info`).
    let (mut weighed, mut weighed_random) = (0u64, 0u64);
    for block in joined.chunks_exact(INTERLEAVED_BLOCK) {
        sampled += 1;
        weighed += INTERLEAVED_BLOCK as u64;
        if let Some(found) = block_randomness(block) {
            random.push(found);
            weighed_random += INTERLEAVED_BLOCK as u64;
        }
    }
    let block = INTERLEAVED_BLOCK as u64;
    let past: Vec<(u64, u64)> = kept
        .iter()
        .filter_map(|v| {
            let from = v.start.max(head_len);
            let end = v.start.saturating_add(held_of(v));
            (end.saturating_sub(from) >= block).then_some((from, end))
        })
        .collect();
    let per = (WRAPPED_SPREAD_BLOCKS / past.len().max(1)).max(1) as u64;
    let mut one = vec![0u8; INTERLEAVED_BLOCK];
    // One span's blocks spread (`per` of them), each weighed by its stride.
    let mut spread = |from: u64, end: u64, per: u64, random: &mut Vec<Randomness>| {
        let stride = (end - from - block) / per;
        let stands_for = if stride == 0 { end - from } else { stride };
        let (mut all, mut hit, mut n, mut r) = (0u64, 0u64, 0usize, 0usize);
        for k in 0..per {
            if file.read_exact_at(&mut one, from + k * stride).is_err() {
                break;
            }
            n += 1;
            all += stands_for;
            if let Some(found) = block_randomness(&one) {
                random.push(found);
                r += 1;
                hit += stands_for;
            }
            if stride == 0 {
                break;
            }
        }
        (all, hit, n, r)
    };
    for (from, end) in past {
        let (all, hit, n, _) = spread(from, end, per, &mut random);
        (weighed, weighed_random, sampled) = (weighed + all, weighed_random + hit, sampled + n);
    }
    let verdict = |held: u64, random: usize, sampled: usize, weighed: u64, hit: u64| {
        // Most of the blocks sampled (the first MiB encrypted, the rest left:
        // intermittent encryption) or most of the bytes they stand for (the first MiB
        // left plain), in values holding most of the file.
        let by_count = random * 100 >= sampled * WRAPPED_MIN_RANDOM_PERCENT;
        let by_bytes =
            hit.saturating_mul(100) >= weighed.saturating_mul(WRAPPED_MIN_RANDOM_PERCENT as u64);
        held >= WRAPPED_MIN_BYTES
            && held.saturating_mul(100) >= size.saturating_mul(WRAPPED_MIN_SHARE_PERCENT)
            && sampled > 0
            && (by_count || by_bytes)
    };
    let mut unread = None;
    let mut alert = verdict(held, random.len(), sampled, weighed, weighed_random);
    if !alert && let Some(from) = unread_from {
        // Past the hops, the rest sampled spread by offset, as one value not read: what
        // it holds is not known to be a private value, so what it tips is a warning.
        let before = random.len();
        let (all, hit, n, r) = spread(from, size, WRAPPED_SPREAD_BLOCKS as u64, &mut random);
        let rest = size - from;
        if r > 0
            && verdict(
                held + rest,
                random.len(),
                sampled + n,
                weighed + all,
                weighed_random + hit,
            )
        {
            unread = Some(Unread {
                from,
                bytes: rest,
                random: r,
                sampled: n,
            });
            held += rest;
            sampled += n;
            weighed += all;
            weighed_random += hit;
            alert = true;
        } else {
            random.truncate(before);
        }
    }
    if !alert {
        return None;
    }
    let highest = random
        .iter()
        .copied()
        .reduce(|a, b| if b.bits() > a.bits() { b } else { a })?;
    Some(Wrapped {
        value: longest,
        values: found.count.saturating_sub(excused),
        excused,
        magic,
        held,
        size,
        pixels: found.pixels.map(|(_, len)| len),
        complete,
        unread,
        random: random.len(),
        sampled,
        random_percent: weighed_random.saturating_mul(100) / weighed.max(1),
        highest,
    })
}

#[cfg(test)]
pub(super) mod tests {
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

    /// Issue 11, review rv44-watch case 3 (`pixtail`): the last 5,274 bytes of an
    /// arrival's Pixel Data encrypted. `examples_overlay.dcm` (pydicom, a real 12-bit
    /// image) holds 290,400 bytes of Pixel Data, 3,680 past its last whole 4 KiB block:
    /// in blocks counted from its start, the ciphertext filled none whole, and 2 of 8
    /// such arrivals were `info`. Its end is measured now: in the first MiB
    /// ([`PIXEL_DATA_END_BYTES`]), and past it in a larger file (its tail counted back
    /// from the end, [`SAMPLE_TAIL_BYTES`]). The same files unencrypted read as no
    /// random bytes.
    #[test]
    fn the_last_bytes_of_pixel_data_are_read_whatever_its_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = pacsguard_testkit::pydicom_sample("examples_overlay.dcm");
        let layout = pacsguard_dicom::layout(&real).expect("a layout");
        assert_eq!(layout.pixels.end, real.len(), "Pixel Data last");
        assert_eq!(layout.pixels.len() % BLOCK, 3_680);
        // Larger than the first MiB read: its own pixels three times more after it (read
        // as the file's tail), cut to end 3,680 bytes past a block of the file too.
        let mut large = real.clone();
        for _ in 0..3 {
            large.extend_from_slice(&real[layout.pixels.clone()]);
        }
        large.truncate(large.len() / BLOCK * BLOCK - BLOCK + 3_680);
        assert!(large.len() > ENTROPY_SAMPLE_BYTES);
        assert_eq!(large.len() % BLOCK, 3_680);
        let mut state = 0x5274_u64;
        for (name, honest) in [("small", real), ("large", large)] {
            let path = dir.path().join(format!("{name}.dcm"));
            std::fs::write(&path, &honest).expect("test fixture");
            assert_eq!(random_pixels(&path), None, "{name}, honest");
            let mut encrypted = honest.clone();
            let end = encrypted.len();
            for b in &mut encrypted[end - 5_274..] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            std::fs::write(&path, &encrypted).expect("test fixture");
            assert!(
                matches!(random_pixels(&path), Some(Randomness::Bytes(_))),
                "{name}: its last 5,274 bytes encrypted"
            );
        }
    }

    /// Issue 11, review rv45-watch case 2 (`tail64`, `if4k8k`): ransomware's usual
    /// chunking, 4 KiB of every 8 KiB encrypted aligned to the file, in the last 64 KiB
    /// of a file whose size is no multiple of 4 KiB (the tail's blocks, counted back from
    /// its end, each held half ciphertext: 16 of 16 arrivals `info`), or over the Pixel
    /// Data of a real image of under 1 MiB whose value does not begin on a 4 KiB boundary
    /// (its blocks counted from where it begins: half ciphertext each). Both are found;
    /// the honest files are not.
    #[test]
    fn ciphertext_in_file_aligned_chunks_is_found_whatever_the_other_alignment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chunk_every_8k = |bytes: &mut Vec<u8>, from: usize, seed: u64| {
            let end = bytes.len();
            for at in (from..end).step_by(2 * BLOCK) {
                let to = (at + BLOCK).min(end);
                bytes[at..to].copy_from_slice(&xorshift(to - at, seed + at as u64));
            }
        };
        // 2 MiB of 12-bit values and 2,000 bytes more: the tail.
        let honest: Vec<u8> = (0..(1_048_576 + 1_000))
            .flat_map(|i: usize| (((i * 31) % 4096) as u16).to_le_bytes())
            .collect();
        assert_ne!(honest.len() % BLOCK, 0);
        let look = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("test fixture");
            let file = std::fs::File::open(&path).expect("open");
            random_written(&file, SAMPLE_TAIL_BYTES, 0)
        };
        assert_eq!(look("honest", &honest), None);
        let mut tail = honest.clone();
        let tail_from = (honest.len() - SAMPLE_TAIL_BYTES as usize) / BLOCK * BLOCK;
        chunk_every_8k(&mut tail, tail_from, 64);
        assert!(look("tail64", &tail).is_some(), "file-aligned tail chunks");
        // Counted back from the end, as before, still: the end's last bytes alone.
        let mut end = honest.clone();
        let at = end.len() - BLOCK;
        end[at..].copy_from_slice(&xorshift(BLOCK, 65));
        assert!(look("end", &end).is_some(), "the last 4 KiB");

        // A real image under 1 MiB, its Pixel Data not on a 4 KiB boundary.
        let real = pacsguard_testkit::pydicom_sample("examples_overlay.dcm");
        let layout = pacsguard_dicom::layout(&real).expect("a layout");
        assert_ne!(layout.pixels.start % BLOCK, 0);
        assert!(real.len() < ENTROPY_SAMPLE_BYTES);
        let path = dir.path().join("small.dcm");
        std::fs::write(&path, &real).expect("test fixture");
        assert_eq!(random_pixels(&path), None, "honest");
        let mut encrypted = real.clone();
        // From its first 8 KiB boundary: a header left readable.
        chunk_every_8k(
            &mut encrypted,
            layout.pixels.start.next_multiple_of(2 * BLOCK),
            66,
        );
        std::fs::write(&path, &encrypted).expect("test fixture");
        assert!(
            matches!(random_pixels(&path), Some(Randomness::Bytes(_))),
            "4 KiB of every 8 KiB aligned to the file"
        );
    }

    /// Issue 11, review rv45-watch case 2 `i2k4k`: 2 KiB of every 4 KiB of a real image's
    /// Pixel Data encrypted, from its start or aligned to the file: no 4 KiB block, in any
    /// alignment, is more than half ciphertext; its 2 KiB sub-blocks are found.
    #[test]
    fn half_of_every_block_encrypted_is_found_in_sub_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = pacsguard_testkit::pydicom_sample("examples_overlay.dcm");
        let layout = pacsguard_dicom::layout(&real).expect("a layout");
        let path = dir.path().join("i2k4k.dcm");
        // A real 64x64 MR image too: 8 KiB of pixels, 2 sub-blocks encrypted.
        let small = pacsguard_testkit::pydicom_sample("MR_small.dcm");
        let small_layout = pacsguard_dicom::layout(&small).expect("a layout");
        assert_eq!(small_layout.pixels.len(), 8_192);
        for (real, from) in [
            (&real, layout.pixels.start),
            (&real, layout.pixels.start.next_multiple_of(BLOCK)),
            (&small, small_layout.pixels.start),
        ] {
            std::fs::write(&path, real).expect("test fixture");
            assert_eq!(random_pixels(&path), None, "honest");
            let mut encrypted = real.clone();
            for at in (from..encrypted.len()).step_by(BLOCK) {
                let to = (at + SUB_BLOCK).min(encrypted.len());
                encrypted[at..to].copy_from_slice(&xorshift(to - at, 70 + at as u64));
            }
            std::fs::write(&path, &encrypted).expect("test fixture");
            assert!(
                matches!(random_pixels(&path), Some(Randomness::Bytes(_))),
                "2 KiB of every 4 KiB from {from}"
            );
        }
    }

    /// Every real uncompressed image of pydicom's and pynetdicom's test files reads as
    /// honest pixels, in every alignment measured (blocks counted from the value's start,
    /// from the file's start, back from its end).
    #[test]
    fn real_uncompressed_images_hold_no_random_pixels() {
        let mut seen = 0;
        let mut random = Vec::new();
        for dir in [
            pacsguard_testkit::pydicom_files(),
            pacsguard_testkit::pynetdicom_files(),
        ] {
            for path in pacsguard_testkit::files_under(&dir) {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                if bytes.get(128..132) != Some(b"DICM".as_slice()) {
                    continue;
                }
                let inspection = pacsguard_dicom::inspect(&bytes);
                if !inspection
                    .transfer_syntax
                    .as_deref()
                    .is_some_and(structured)
                {
                    continue;
                }
                if pacsguard_dicom::layout(&bytes).is_none() {
                    continue;
                }
                seen += 1;
                if let Some(found) = random_pixels(&path) {
                    random.push(format!("{}: {found}", path.display()));
                }
            }
        }
        assert!(seen > 30, "{seen} real uncompressed images");
        assert!(random.is_empty(), "{random:#?}");
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

    /// Random-looking bytes, the same for a seed (the watch modules' tests share it).
    pub(in crate::ops::watch) fn xorshift(len: usize, seed: u64) -> Vec<u8> {
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

    /// Issue 11, review rv45-watch case 1 `band`: a random byte added to a base value
    /// (1000 + r, 1000 + 10 random bits) carries into the byte above as an image's values
    /// do, and read as written the block was no ciphertext; less its least value it is a
    /// random byte (or packing) beside a zero. A smooth ramp offset as high, and a band
    /// wider than `MAX_REBASED_SPAN`, are not rebased into ciphertext.
    #[test]
    fn random_values_offset_into_a_band_read_as_lanes() {
        for (base, bits) in [(1000u16, 8u32), (3000, 8), (1000, 10), (20_000, 8)] {
            let random = xorshift(INTERLEAVED_BLOCK, u64::from(base) + u64::from(bits));
            let mask = u16::MAX >> (16 - bits);
            let block: Vec<u8> = random
                .chunks_exact(2)
                .flat_map(|r| (base + (u16::from_le_bytes([r[0], r[1]]) & mask)).to_le_bytes())
                .collect();
            let found = lanes(&block).expect("a band of random values");
            // 10 random bits above 1000 step the high byte by more than a carry: read
            // as written already.
            if bits == 8 {
                assert!(found.less.is_some_and(|least| least >= base), "{base}");
            }
        }
        let ramp: Vec<u8> = (0..INTERLEAVED_BLOCK / 2)
            .flat_map(|i| (1000 + (i % 256) as u16).to_le_bytes())
            .collect();
        assert_eq!(lanes(&ramp), None);
        // A zero value leaves the band unrebased, and so does a span of 13 bits.
        assert_eq!(rebased(&[0, 0, 0xE8, 0x03]), None);
        assert_eq!(rebased(&[0, 4, 0, 0x24]), None);
        assert_eq!(
            rebased(&[0xE8, 0x03, 0xE9, 0x03]),
            Some((1000, vec![0, 0, 1, 0]))
        );
    }

    /// Review rv39 B3: random bytes each followed (or preceded) by one constant read as
    /// random over their lane; 8-bit pixels stored in 16 bits (a constant high byte)
    /// and a block whose other lane is structured do not.
    #[test]
    fn random_bytes_interleaved_with_a_constant_read_as_interleaved() {
        let random = xorshift(INTERLEAVED_BLOCK / 2, 11);
        let zeros: Vec<u8> = random.iter().flat_map(|&b| [b, 0]).collect();
        assert_eq!(zeros.len(), INTERLEAVED_BLOCK);
        // Whole, it is far from random: the plain check misses it.
        assert_eq!(random_bits(&zeros[..BLOCK]), None);
        let found = lanes(&zeros).expect("zero lanes");
        assert_eq!((found.width, found.cipher, found.filler), (2, 1, Some(0)));
        assert!(found.bits >= RANDOM_BITS_PER_BYTE, "{found:?}");
        let ff_first: Vec<u8> = random.iter().flat_map(|&b| [0xFF, b]).collect();
        assert_eq!(lanes(&ff_first).and_then(|l| l.filler), Some(0xFF));
        // 8-bit CT-like values in 16 bits: a constant high byte, structured low bytes.
        let pixels: Vec<u8> = (0..INTERLEAVED_BLOCK / 2)
            .flat_map(|i| [((i * 37) % 251) as u8, 0])
            .collect();
        assert_eq!(lanes(&pixels), None);
        // The other lane structured (12-bit values' smooth high bytes) beside random
        // bytes that do not carry into it: no sample's low and high bytes, but
        // ciphertext beside an image's high bytes (review s42; session 40 took it for
        // pixels).
        let noisy: Vec<u8> = random
            .iter()
            .enumerate()
            .flat_map(|(i, &b)| [b, ((i / 64) % 16) as u8])
            .collect();
        assert_eq!(lanes(&noisy).map(|l| (l.cipher, l.beside)), Some((1, 1)));
        let shown = Randomness::Lanes(found).to_string();
        assert!(shown.contains("every other byte is 0x00"), "{shown}");
    }

    /// Review rv40b: ciphertext beside a filler that is not constant (0x01 every 256th
    /// filler byte), two bytes a 32-bit value, 12 bits a value (a byte and a nibble in
    /// each 16-bit value): each read as ciphertext in lanes; the plain and the 16-bit
    /// checks of session 40 missed all three (a filler had to be constant, lanes were
    /// 16-bit only, a nibble lane was no constant).
    #[test]
    fn ciphertext_in_lanes_beside_a_varying_filler_32_bit_or_12_bit_packed_is_found() {
        let ct = xorshift(INTERLEAVED_BLOCK, 12);
        let not_constant: Vec<u8> = ct[..INTERLEAVED_BLOCK / 2]
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| [c, u8::from(i % 256 == 255)])
            .collect();
        let found = lanes(&not_constant).expect("a filler not quite constant");
        assert_eq!((found.width, found.filler), (2, Some(0)));
        let four: Vec<u8> = ct[..INTERLEAVED_BLOCK / 2]
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[1], 0, 0])
            .collect();
        let found = lanes(&four).expect("32-bit lanes");
        assert_eq!((found.width, found.cipher, found.packed), (4, 2, 0));
        assert!(
            Randomness::Lanes(found)
                .to_string()
                .contains("32-bit lanes")
        );
        let twelve: Vec<u8> = ct
            .chunks_exact(3)
            .flat_map(|t| [t[0], t[1] & 0x0F, t[2], t[1] >> 4])
            .take(INTERLEAVED_BLOCK)
            .collect();
        let found = lanes(&twelve).expect("12-bit packing");
        assert_eq!((found.width, found.cipher, found.packed), (2, 1, 1));
        assert!(Randomness::Lanes(found).to_string().contains("packed"));
        for block in [&not_constant, &four, &twelve] {
            assert_eq!(
                random_bits(&block[..BLOCK]),
                None,
                "the plain check misses it"
            );
        }
        // FILLER_MAX_BITS: a lane near constant (1 bit/byte at most, not used evenly)
        // is filler; one of two or four values used evenly at random is bits packed
        // (9- or 10-bit packing, review s42); one of four values in a pattern, neither.
        let filler = |values: u8| -> Vec<u8> {
            ct[..INTERLEAVED_BLOCK / 2]
                .iter()
                .zip(xorshift(INTERLEAVED_BLOCK / 2, 13))
                .flat_map(|(&c, r)| [c, r % values])
                .collect()
        };
        assert_eq!(lanes(&filler(2)).map(|l| l.packed_bits), Some(1));
        assert_eq!(lanes(&filler(4)).map(|l| l.packed_bits), Some(2));
        let pattern: Vec<u8> = ct[..INTERLEAVED_BLOCK / 2]
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| [c, ((i / 512) % 4) as u8])
            .collect();
        assert_eq!(lanes(&pattern), None);
    }

    /// A minimal base64 encoder (RFC 4648, with `=` padding), lines of 76 characters
    /// ended by CRLF as PowerShell and `openssl base64` write them.
    fn base64(bytes: &[u8]) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
                } else {
                    b'='
                });
            }
        }
        out.chunks(76)
            .flat_map(|l| [l, &b"\r\n"[..]].concat())
            .collect()
    }

    /// Review rv40b: base64 text is no ciphertext, in 8-bit units or 16-bit ones
    /// (UTF-16LE, as PowerShell 5's `Out-File` writes): the base64 of real files (real
    /// images, a compressed archive of them, whose base64 uses its 64 characters evenly)
    /// and of random bytes (a key) reads neither as ciphertext ([`cipher_bits`]) nor as
    /// ciphertext in lanes; the bytes themselves, compressed or random, do.
    #[test]
    fn base64_text_of_real_files_is_no_ciphertext_in_bytes_or_lanes() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
        let mut files = Vec::new();
        for name in [
            "CT_small.dcm",
            "MR_small.dcm",
            "JPEG2000.dcm",
            "liver_1frame.dcm",
        ] {
            files.push(std::fs::read(samples.join(name)).expect("pydicom's test files"));
        }
        // A gzip of real images: compressed, it reads as random bytes itself.
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = dir.path().join("images.tar");
        std::fs::write(&tar, files.concat()).expect("write");
        let gzip = std::process::Command::new("gzip")
            .arg("-9")
            .arg(&tar)
            .status()
            .expect("gzip runs");
        assert!(gzip.success());
        let archive = std::fs::read(dir.path().join("images.tar.gz")).expect("gzip's output");
        assert!(
            archive[BLOCK..]
                .chunks_exact(BLOCK)
                .any(|b| cipher_bits(b).is_some()),
            "a compressed archive reads as random bytes"
        );
        files.push(archive);
        files.push(xorshift(300_000, 14)); // a key
        let mut blocks = 0;
        for file in &files {
            let ascii = base64(file);
            let utf16: Vec<u8> = [0xFF, 0xFE]
                .into_iter()
                .chain(ascii.iter().flat_map(|&c| [c, 0]))
                .collect();
            for block in ascii.chunks_exact(BLOCK) {
                blocks += 1;
                assert_eq!(cipher_bits(block), None);
            }
            for block in utf16.chunks_exact(INTERLEAVED_BLOCK) {
                blocks += 1;
                assert_eq!(lanes(block), None);
                assert_eq!(block_randomness(block), None);
            }
        }
        assert!(blocks > 100, "{blocks} blocks of base64 text");
        // The base64 of the key still reads as random where pixels were (review r23).
        assert!(random_bits(&base64(&files[files.len() - 1])[..BLOCK]).is_some());
    }

    /// Review rv41-watch (C3): random bytes coded into the 128 values of the high half
    /// (0x80-0xFF: no text's alphabet) are ciphertext; base64 of the same bytes is not.
    #[test]
    fn random_bytes_coded_into_the_high_half_are_ciphertext() {
        let key = xorshift(BLOCK * 8 / 7 + 64, 41);
        let high: Vec<u8> = key.iter().map(|b| 0x80 | (b & 0x7F)).collect();
        assert!(cipher_bits(&high[..BLOCK]).is_some());
        assert_eq!(cipher_bits(&base64(&key)[..BLOCK]), None);
        // The same coded into the low half (a 7-bit code) is excused as text is.
        let low: Vec<u8> = key.iter().map(|b| b & 0x7F).collect();
        assert_eq!(cipher_bits(&low[..BLOCK]), None);
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

    /// A CT image of 64 bytes of pixels with the private OB values `values`, (0099,1000)
    /// on, written to `dir`.
    fn private_values_file(dir: &Path, name: &str, values: &[Vec<u8>]) -> std::path::PathBuf {
        let mut builder = pacsguard_testkit::DicomBuilder::ct("1.2.826.0.1.3680043.10.1137.41.1")
            .element(0x0099, 0x0010, *b"LO", b"ACME BACKUP");
        for (k, value) in values.iter().enumerate() {
            let element = 0x1000 + u16::try_from(k).expect("few");
            builder = builder.element(0x0099, element, *b"OB", value);
        }
        let path = dir.join(name);
        let bytes = builder
            .pixels(pacsguard_testkit::Pixels::Native(vec![7; 64]))
            .build();
        std::fs::write(&path, bytes).expect("write");
        path
    }

    /// MAX_BINARY_VALUES_NOTED: ciphertext split over more private values than are kept
    /// is weighed whole (all counted) and sampled in the values kept, pieces shorter than
    /// a block joined; review rv40b's three values, each a third of the file, are found.
    #[test]
    fn ciphertext_split_over_private_values_is_weighed_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let three: Vec<Vec<u8>> = (0..3).map(|k| xorshift(300_000, 70 + k)).collect();
        let wrapped = wrapped_random(&private_values_file(dir.path(), "three", &three))
            .expect("three values, each under half of the file");
        assert_eq!(wrapped.values, 3);
        assert!(
            wrapped
                .to_string()
                .contains("3 private or unknown binary elements")
        );
        assert!(
            wrapped.to_string().contains("its Pixel Data 64 bytes"),
            "{wrapped}"
        );
        let many = pacsguard_dicom::MAX_BINARY_VALUES_NOTED + 4;
        let pieces: Vec<Vec<u8>> = (0..many).map(|k| xorshift(8192, 80 + k as u64)).collect();
        let wrapped = wrapped_random(&private_values_file(dir.path(), "many", &pieces))
            .expect("pieces of half a block");
        assert_eq!(wrapped.values, many);
        // The kept ones joined: 16 x 8 KiB, 8 blocks.
        assert_eq!(
            wrapped.sampled,
            pacsguard_dicom::MAX_BINARY_VALUES_NOTED * 8192 / INTERLEAVED_BLOCK
        );
        assert_eq!(wrapped.random, wrapped.sampled);
    }

    /// MAX_WRAPPED_HOPS: past the first MiB the element headers are read one hop a value
    /// at most that many times; the values past them are not counted, and the finding
    /// says its data set was not read to its end (not "no Pixel Data").
    #[test]
    fn values_past_the_first_mib_are_read_up_to_the_hop_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut values = vec![xorshift(1 << 20, 90)];
        for k in 0..MAX_WRAPPED_HOPS + 4 {
            values.push(xorshift(WRAPPED_HOP_BYTES + 16_384, 91 + k as u64));
        }
        let wrapped =
            wrapped_random(&private_values_file(dir.path(), "hops", &values)).expect("wrapped");
        assert_eq!(wrapped.values, 1 + MAX_WRAPPED_HOPS);
        assert!(!wrapped.complete);
        assert_eq!(wrapped.pixels, None);
        let said = wrapped.to_string();
        assert!(said.contains("no Pixel Data in what was read"), "{said}");
        // Four values fewer: all read, and the Pixel Data after them.
        values.truncate(1 + MAX_WRAPPED_HOPS - 4);
        let wrapped =
            wrapped_random(&private_values_file(dir.path(), "fewer", &values)).expect("wrapped");
        assert_eq!(wrapped.values, values.len());
        assert!(wrapped.complete);
        assert_eq!(wrapped.pixels, Some(64));
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
            matches!(
                wrapped.highest,
                Randomness::Lanes(Lanes {
                    filler: Some(0),
                    ..
                })
            ),
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

    /// Review rv40b (`repro_B_tail.sh`): a wrapped value whose first MiB was left plain
    /// (an image's own bytes) and the rest encrypted is weighed by the bytes each sampled
    /// block stands for: 6 MiB of ciphertext past 1 MiB plain is ciphertext wrapped (by
    /// counting blocks, 64 plain against 16 random, it was not); the other way round,
    /// 1 MiB of ciphertext before 6 MiB plain (intermittent encryption) still is, by
    /// count; 1 MiB plain with ciphertext in a quarter of the rest is not.
    #[test]
    fn a_wrapped_value_encrypted_past_its_first_mib_is_weighed_by_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain: Vec<u8> = (0..(1usize << 20) / 2)
            .flat_map(|i| (((i * 31) % 4096) as u16).to_le_bytes())
            .collect();
        let mut value = plain.clone();
        value.extend(xorshift(6 << 20, 55));
        let wrapped = wrapped_random(&wrapped_file(dir.path(), "tail", 0, &value))
            .expect("encrypted past its first MiB");
        assert_eq!(wrapped.random, WRAPPED_SPREAD_BLOCKS);
        assert!(wrapped.sampled > 4 * wrapped.random, "{wrapped:?}");
        assert!((80..90).contains(&wrapped.random_percent), "{wrapped:?}");
        assert!(
            wrapped
                .to_string()
                .contains("% of the bytes they stand for")
        );
        let mut value = xorshift(1 << 20, 56);
        for _ in 0..6 {
            value.extend(&plain);
        }
        assert!(wrapped_random(&wrapped_file(dir.path(), "head", 0, &value)).is_some());
        let mut value = plain.clone();
        for k in 0..6 {
            if k % 4 == 0 {
                value.extend(xorshift(1 << 20, 57 + k));
            } else {
                value.extend(&plain);
            }
        }
        assert_eq!(
            wrapped_random(&wrapped_file(dir.path(), "some", 0, &value)),
            None
        );
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
                Some(Randomness::Lanes(Lanes {
                    filler: Some(0),
                    ..
                }))
            ),
            "interleaved ciphertext as pixels"
        );
        let eight_bit: Vec<u8> = (0..65_536usize)
            .flat_map(|i| [((i * 37 + i / 256) % 251) as u8, 0])
            .collect();
        assert_eq!(random_pixels(&image("eight", eight_bit)), None);
    }

    /// The native Pixel Data of the pydicom test file `name`.
    fn pydicom_pixels(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files")
            .join(name);
        let bytes = std::fs::read(path).expect("pydicom's test files");
        let layout = pacsguard_dicom::layout(&bytes).expect("a data set");
        bytes[layout.pixels].to_vec()
    }

    /// Review s42 (1): ciphertext in the lanes [`lanes`] did not look at: R and G of
    /// 24-bit RGB beside B = 0; the low byte of each 16-bit value beside the high byte of
    /// a real image (CT_small's, MR_small's); 10- and 11-bit packing (2 or 3 random bits
    /// above each ciphertext byte). Each is found; the real images themselves, whose low
    /// bytes carry into their high ones, are not; nor are noisy synthetic ones.
    #[test]
    fn ciphertext_in_rgb_lanes_beside_an_images_high_bytes_or_packed_10_or_11_bits_is_found() {
        let ct = xorshift(INTERLEAVED_BLOCK, 42);
        let rgb: Vec<u8> = ct
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[1], 0])
            .take(INTERLEAVED_BLOCK)
            .collect();
        let found = lanes(&rgb).expect("R and G of ciphertext beside B = 0");
        assert_eq!((found.width, found.cipher, found.filler), (3, 2, Some(0)));
        assert!(found.to_string().contains("24-bit lanes"), "{found}");
        for name in ["CT_small.dcm", "MR_small.dcm"] {
            // Repeated to two blocks at least (MR_small holds 8 KiB).
            let image: Vec<u8> = pydicom_pixels(name)
                .iter()
                .copied()
                .cycle()
                .take(2 * INTERLEAVED_BLOCK)
                .collect();
            for block in image.chunks_exact(INTERLEAVED_BLOCK) {
                assert_eq!(lanes(block), None, "{name} itself");
            }
            let beside: Vec<u8> = image
                .chunks_exact(2)
                .zip(&ct)
                .flat_map(|(v, &c)| [c, v[1]])
                .collect();
            let found = lanes(&beside[..INTERLEAVED_BLOCK])
                .unwrap_or_else(|| panic!("ciphertext beside {name}'s high bytes"));
            assert_eq!((found.width, found.cipher, found.beside), (2, 1, 1));
            assert!(found.to_string().contains("carry nothing"), "{found}");
        }
        for bits in [2u8, 3] {
            let packed: Vec<u8> = ct
                .iter()
                .zip(xorshift(INTERLEAVED_BLOCK, 43))
                .flat_map(|(&c, r)| [c, r % (1 << bits)])
                .take(INTERLEAVED_BLOCK)
                .collect();
            let found = lanes(&packed).unwrap_or_else(|| panic!("{} bits", 8 + bits));
            assert_eq!((found.packed, found.packed_bits), (1, u32::from(bits)));
        }
        // Noisy images: a slow ramp over the 16-bit range, noise of up to +-64 and +-192
        // on each value (the low byte reads as random), stays unfound: the high byte
        // carries from the low one.
        for noise in [128u32, 384] {
            let r = xorshift(INTERLEAVED_BLOCK, 44);
            let noisy: Vec<u8> = (0..INTERLEAVED_BLOCK / 2)
                .flat_map(|i| {
                    let jitter = u32::from(u16::from_le_bytes([r[2 * i], r[2 * i + 1]])) % noise;
                    (((i as u32 * 7) + jitter) as u16).to_le_bytes()
                })
                .collect();
            assert_eq!(lanes(&noisy), None, "noise {noise}");
        }
    }

    /// Issue 11 (review of session 42, 2): one colour plane of a real 24-bit RGB image
    /// turned ciphertext, the other two its own, was not found (the plane not beside it
    /// in the pixel's bytes was no lane "beside ciphertext"); two planes were said as
    /// "16-bit lanes: 1 of each 2 bytes", untrue of 3-byte pixels. Each plane alone and
    /// each pair is found, in 24-bit lanes; the image itself is not.
    #[test]
    fn one_or_two_planes_of_a_real_rgb_image_turned_ciphertext_are_found_in_24_bit_lanes() {
        // A real colour photograph, and a grey image (MR_small's 16-bit values scaled
        // to 8 bits) made RGB as a secondary capture does, R = G = B, repeated to 8
        // blocks.
        let grey: Vec<u8> = pydicom_pixels("MR_small.dcm")
            .chunks_exact(2)
            .map(|v| (u16::from_le_bytes([v[0], v[1]]) >> 4) as u8)
            .flat_map(|v| [v, v, v])
            .cycle()
            .take(8 * INTERLEAVED_BLOCK)
            .collect();
        // No block of any uncompressed image among pydicom's test files reads so
        // (its lanes of three looked at first now, beside ciphertext anywhere).
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
        let mut looked = 0;
        for entry in std::fs::read_dir(&dir)
            .expect("pydicom's test files")
            .flatten()
        {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let Some(layout) = pacsguard_dicom::layout(&bytes) else {
                continue;
            };
            if !structured(&layout.transfer_syntax) {
                continue;
            }
            for block in bytes[layout.pixels].chunks_exact(INTERLEAVED_BLOCK) {
                looked += 1;
                assert_eq!(lanes(block), None, "{:?}", entry.file_name());
            }
        }
        assert!(looked >= 60, "{looked} blocks of real images");
        for image in [pydicom_pixels("examples_rgb_color.dcm"), grey] {
            let ct = xorshift(image.len(), 47);
            let blocks = image.len() / INTERLEAVED_BLOCK;
            assert!(blocks >= 8, "{blocks} blocks");
            for block in image.chunks_exact(INTERLEAVED_BLOCK) {
                assert_eq!(lanes(block), None, "the image itself");
            }
            for planes in [&[0usize, 1][..], &[1, 2], &[0, 2], &[0], &[1], &[2]] {
                let turned: Vec<u8> = image
                    .iter()
                    .zip(&ct)
                    .enumerate()
                    .map(|(i, (&p, &c))| if planes.contains(&(i % 3)) { c } else { p })
                    .collect();
                // The block's start is no pixel's in general: each block is read as it lies.
                let found: Vec<Lanes> = turned
                    .chunks_exact(INTERLEAVED_BLOCK)
                    .filter_map(lanes)
                    .collect();
                assert!(
                    found.len() * 2 >= blocks,
                    "planes {planes:?}: {} of {blocks} blocks",
                    found.len()
                );
                for lanes in &found {
                    assert_eq!((lanes.width, lanes.cipher), (3, planes.len()), "{planes:?}");
                    assert!(lanes.to_string().contains("24-bit lanes"), "{lanes}");
                }
            }
        }
    }

    /// Review s42 (5): ciphertext packed 9 bits a value (a random bit above each
    /// ciphertext byte, 0x00 and 0x01 as often) is said as a bit packed, not a filler of
    /// 0x01.
    #[test]
    fn nine_bit_packing_is_said_as_a_random_bit_not_as_filler() {
        let ct = xorshift(INTERLEAVED_BLOCK, 45);
        let nine: Vec<u8> = ct
            .iter()
            .zip(xorshift(INTERLEAVED_BLOCK, 46))
            .flat_map(|(&c, r)| [c, r & 1])
            .take(INTERLEAVED_BLOCK)
            .collect();
        let found = lanes(&nine).expect("9-bit packing");
        assert_eq!(
            (found.packed, found.packed_bits, found.filler),
            (1, 1, None)
        );
        let said = Randomness::Lanes(found).to_string();
        assert!(said.contains("up to 1 bit a byte"), "{said}");
        assert!(!said.contains("0x01") && !said.contains("filler"), "{said}");
    }

    /// Review s42 (2): ciphertext pushed past MAX_WRAPPED_HOPS by 16 plain decoy values
    /// of 70 KiB after a plain first MiB was `info`: the rest of the file is now sampled
    /// by offset and, reading as ciphertext, makes a warning naming the constant and
    /// the bytes past; plain bytes there make nothing.
    #[test]
    fn ciphertext_past_the_hop_limit_behind_decoys_is_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = |len: usize| -> Vec<u8> {
            (0..len / 2)
                .flat_map(|i| (((i * 31) % 4096) as u16).to_le_bytes())
                .collect()
        };
        let mut values = vec![plain(1 << 20)];
        for _ in 0..MAX_WRAPPED_HOPS {
            values.push(plain(70 * 1024));
        }
        values.push(xorshift(3 << 20, 92));
        let path = private_values_file(dir.path(), "decoys", &values);
        let wrapped = wrapped_random(&path).expect("ciphertext past the decoys");
        assert!(wrapped.is_warning(), "{wrapped:?}");
        let unread = wrapped.unread.expect("sampled past the hops");
        assert!(unread.bytes >= 3 << 20, "{unread:?}");
        let said = wrapped.to_string();
        assert!(said.contains("MAX_WRAPPED_HOPS"), "{said}");
        assert!(
            said.contains(&format!("the {} bytes after offset", unread.bytes)),
            "{said}"
        );
        // Plain bytes past the decoys: nothing.
        *values.last_mut().expect("values") = plain(3 << 20);
        let path = private_values_file(dir.path(), "plain", &values);
        assert_eq!(wrapped_random(&path), None);
    }

    /// Review s42 (3): compressed data in private values (zlib'd projections, a single
    /// gzip'd value), holding most of the file, is no ciphertext wrapped; a zlib or gzip
    /// header put before ciphertext is.
    #[test]
    fn compressed_private_values_are_not_wrapped_ciphertext_and_a_forged_header_is() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let noise = xorshift(1 << 20, 93);
        let projection = |k: usize| -> Vec<u8> {
            (0..(1usize << 20) / 2)
                .flat_map(|i| {
                    ((((i * (31 + k)) % 4096) as u16) + u16::from(noise[i] % 64)).to_le_bytes()
                })
                .collect()
        };
        let zlib = |bytes: &[u8]| {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(bytes).expect("in memory");
            e.finish().expect("in memory")
        };
        let projections: Vec<Vec<u8>> = (0..4).map(|k| zlib(&projection(k))).collect();
        assert!(
            projections[0][4096..]
                .chunks_exact(INTERLEAVED_BLOCK)
                .any(|b| block_randomness(b).is_some()),
            "compressed, it reads as random"
        );
        let path = private_values_file(dir.path(), "zlib", &projections);
        assert_eq!(wrapped_random(&path), None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&projection(5)).expect("in memory");
        let gz = gz.finish().expect("in memory");
        assert_eq!(
            wrapped_random(&private_values_file(dir.path(), "gz", &[gz])),
            None
        );
        let ct = xorshift(1 << 20, 94);
        for header in [
            &[0x78u8, 0x9C][..],
            &[0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 3],
        ] {
            let forged = [header, &ct].concat();
            let path = private_values_file(dir.path(), "forged", &[forged]);
            assert!(wrapped_random(&path).is_some(), "{header:02x?}");
        }
        // bzip2's magic before ciphertext: counted, and said.
        let bz = [&b"BZh91AY&SY"[..], &ct].concat();
        let wrapped = wrapped_random(&private_values_file(dir.path(), "bz", &[bz])).expect("bz");
        assert!(
            wrapped.to_string().contains("nothing here decodes bzip2"),
            "{wrapped}"
        );
    }

    /// Review s42 (4), the decision documented: random bytes written as text of a 7-bit
    /// code, base64 of any alphabet (a permuted one included), hex, or base85 (Ascii85,
    /// 85 characters from `!`), are no ciphertext as a file by themselves
    /// ([`cipher_bits`]: a new file of them is `info`), but read as random where an
    /// image's pixels were ([`random_bits`]); an alphabet of 64 values of the high half
    /// is no text.
    #[test]
    fn hex_base85_and_custom_base64_are_text_as_files_and_random_where_pixels_were() {
        let key = xorshift(4 * BLOCK, 47);
        let coded = |alphabet: &[u8], bits: u32| -> Vec<u8> {
            // Each byte's low `bits` bits through the alphabet (hex: 4, base64: 6).
            key.iter()
                .map(|&b| alphabet[usize::from(b) % (1 << bits)])
                .collect()
        };
        let hex = coded(b"0123456789abcdef", 4);
        let mut permuted: Vec<u8> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec();
        permuted.reverse();
        let custom64 = coded(&permuted, 6);
        // Ascii85: four bytes as five digits of base 85, from '!'.
        let base85: Vec<u8> = key
            .chunks_exact(4)
            .flat_map(|q| {
                let mut n = u32::from_be_bytes([q[0], q[1], q[2], q[3]]);
                let mut digits = [0u8; 5];
                for d in digits.iter_mut().rev() {
                    *d = b'!' + (n % 85) as u8;
                    n /= 85;
                }
                digits
            })
            .collect();
        for (name, text) in [("hex", &hex), ("custom64", &custom64), ("base85", &base85)] {
            assert_eq!(cipher_bits(&text[..BLOCK]), None, "{name} as a file");
            assert!(
                random_bits(&text[..BLOCK]).is_some(),
                "{name} where pixels were"
            );
        }
        let high: Vec<u8> = (0x80..0xC0).collect();
        assert!(cipher_bits(&coded(&high, 6)[..BLOCK]).is_some());
    }
}
