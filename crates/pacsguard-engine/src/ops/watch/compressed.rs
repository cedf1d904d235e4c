//! Compressed data told from ciphertext by its structure (review s42: zlib-compressed
//! projections in the OB items of a private sequence, as Hologic writes tomosynthesis
//! objects, and a single gzip'd private OB, as GE writes some, were taken for ciphertext
//! wrapped in a DICOM and alerted inside a window). Both read as random bytes; only
//! compressed data inflates: a zlib or gzip value is excused when the whole value
//! inflates, its stream ending where the value ends, to bytes that are not ciphertext
//! themselves (a stream of stored blocks holding ciphertext inflates too).
//!
//! A header alone, or a valid beginning, proves nothing: review rv42-watch wrote
//! `zlib.compress(4 MiB of zeros + ciphertext)` and a real JPEG or J2K header before
//! ciphertext stuffed as the format asks, and a first version that judged a value by its
//! first 64 KiB (and JPEG and J2K by their stuffing alone) excused all four, which the
//! build before had alerted. So the whole value is inflated, within
//! [`COMPRESSED_MAX_VALUE_BYTES`] and [`COMPRESSED_MAX_INFLATED_BYTES`]; past either it
//! is not excused. JPEG and JPEG 2000 streams in private values are not excused: their
//! coded data reads as random bytes, and nothing here tells it from ciphertext stuffed to
//! their rules.
//!
//! bzip2, xz and zstd are known by their magic, but nothing here decodes them, so they
//! are not excused (said in the finding's words, `magic`).

use std::fmt;

/// The largest value inflated to tell whether it is compressed: larger, it is not excused
/// (weighed as any private value). 16 values at most are looked at a file
/// (`MAX_BINARY_VALUES_NOTED`): 64 MiB read at most.
pub const COMPRESSED_MAX_VALUE_BYTES: usize = 4 << 20;

/// Bytes a value may inflate to at most (a deflate stream of zeros inflates 1,000-fold:
/// zeros before ciphertext would hide it past any smaller bound judged as "what was
/// inflated"): past it the value is not excused.
pub const COMPRESSED_MAX_INFLATED_BYTES: usize = 32 << 20;

/// One block of inflated bytes in this many is weighed for ciphertext (every block of a
/// value's first MiB out): ciphertext of 64 KiB or more in stored blocks is always met.
const WEIGHED_EVERY: usize = 4;

/// Bytes allowed after a deflate stream that ends inside a value: its checksum and a
/// pad; more, and the value holds more than the stream (ciphertext after a small one).
const TRAILING_MAX_BYTES: usize = 16;

/// A compressed format recognised in a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Zlib,
    Gzip,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Zlib => "zlib",
            Format::Gzip => "gzip",
        })
    }
}

/// The format of the compressed stream `value` (a whole value) is, when all of it
/// inflates to bytes that are not ciphertext.
pub fn verified(value: &[u8]) -> Option<Format> {
    if value.len() > COMPRESSED_MAX_VALUE_BYTES {
        return None;
    }
    if let Some(body) = zlib_body(value) {
        return inflates(body, 4).then_some(Format::Zlib);
    }
    if let Some(body) = gzip_body(value) {
        return inflates(body, 8).then_some(Format::Gzip);
    }
    None
}

/// The name of a compressed format nothing here decodes whose magic `prefix` begins with.
pub fn magic(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(b"BZh")
        && prefix.get(4..10) == Some(&[0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
    {
        Some("bzip2")
    } else if prefix.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if prefix.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Some("zstd")
    } else {
        None
    }
}

/// The deflate stream after a zlib header (RFC 1950: method 8, a window of 32 KiB at
/// most, its check bits, no preset dictionary).
fn zlib_body(bytes: &[u8]) -> Option<&[u8]> {
    let (&cmf, &flg) = (bytes.first()?, bytes.get(1)?);
    let header_ok = cmf & 0x0F == 8
        && cmf >> 4 <= 7
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
        && flg & 0x20 == 0;
    header_ok.then(|| &bytes[2..])
}

/// The deflate stream after a gzip member's header (RFC 1952), its optional fields
/// skipped.
fn gzip_body(bytes: &[u8]) -> Option<&[u8]> {
    if !bytes.starts_with(&[0x1F, 0x8B, 0x08]) {
        return None;
    }
    let flags = *bytes.get(3)?;
    if flags & 0xE0 != 0 {
        return None; // reserved flags set: no gzip member
    }
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let len = u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]);
        at = at.checked_add(2 + usize::from(len))?;
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let end = bytes.get(at..)?.iter().position(|&b| b == 0)?;
            at = at.checked_add(end + 1)?;
        }
    }
    if flags & 0x02 != 0 {
        at = at.checked_add(2)?;
    }
    bytes.get(at..)
}

/// Whether the raw deflate stream `body` inflates whole, ending where the value ends (but
/// its `trailer`, a checksum, and a pad), within [`COMPRESSED_MAX_INFLATED_BYTES`], to
/// bytes of which no block weighed reads as ciphertext.
fn inflates(body: &[u8], trailer: usize) -> bool {
    let mut inflater = flate2::Decompress::new(false);
    let mut out = vec![0u8; super::entropy::INTERLEAVED_BLOCK.max(4096) * 16];
    let mut blocks = 0usize;
    loop {
        let read = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let Some(rest) = body.get(read..) else {
            return false;
        };
        let before = inflater.total_out();
        let status = inflater.decompress(rest, &mut out, flate2::FlushDecompress::None);
        let written = usize::try_from(inflater.total_out() - before).unwrap_or(usize::MAX);
        if usize::try_from(inflater.total_out()).unwrap_or(usize::MAX)
            > COMPRESSED_MAX_INFLATED_BYTES
        {
            return false;
        }
        for block in out[..written.min(out.len())].chunks_exact(4096) {
            let weighed = blocks < 256 || blocks.is_multiple_of(WEIGHED_EVERY);
            blocks += 1;
            if weighed
                && (super::entropy::cipher_bits(block).is_some()
                    || super::entropy::lanes(block).is_some())
            {
                return false;
            }
        }
        match status {
            Ok(flate2::Status::StreamEnd) => {
                let read = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
                // More in the value than the stream: ciphertext after a small one.
                return inflater.total_out() > 0
                    && body.len().saturating_sub(read) <= trailer + TRAILING_MAX_BYTES;
            }
            // The value ends before its stream, or the stream is no deflate.
            Ok(flate2::Status::BufError) | Err(_) => return false,
            Ok(flate2::Status::Ok) if written == 0 => return false,
            Ok(flate2::Status::Ok) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entropy::tests::xorshift;
    use super::*;
    use std::io::Write as _;

    /// Structured 16-bit pixels with some noise: they compress, not to nothing.
    fn pixels(len: usize) -> Vec<u8> {
        let noise = xorshift(len, 7);
        (0..len / 2)
            .flat_map(|i| ((((i * 31) % 4096) as u16) + u16::from(noise[i] % 16)).to_le_bytes())
            .collect()
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).expect("in memory");
        e.finish().expect("in memory")
    }

    /// Real zlib and gzip streams (flate2's and the `gzip` program's) are verified
    /// whole; a zlib or gzip header on ciphertext, a small real stream followed by
    /// ciphertext, ciphertext in stored blocks, a value cut before its stream's end, and
    /// ciphertext after a long run of zeros or plain data compressed with it (review
    /// rv42-watch: a first version judged the first 64 KiB only) are not.
    #[test]
    fn deflate_streams_inflate_and_a_header_on_ciphertext_does_not() {
        let plain = pixels(400_000);
        let z = zlib(&plain);
        assert!(z.len() > 64 * 1024);
        assert_eq!(verified(&z), Some(Format::Zlib));
        assert_eq!(verified(&z[..64 * 1024]), None, "cut before its end");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p");
        std::fs::write(&path, &plain).expect("write");
        let ok = std::process::Command::new("gzip")
            .arg(&path)
            .status()
            .expect("gzip runs");
        assert!(ok.success());
        let gz = std::fs::read(dir.path().join("p.gz")).expect("gzip's output");
        assert_eq!(verified(&gz), Some(Format::Gzip));
        let ct = xorshift(300_000, 9);
        for header in [
            &[0x78u8, 0x9C][..],
            &[0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 3],
        ] {
            let forged = [header, &ct].concat();
            assert_eq!(verified(&forged), None, "{header:02x?}");
        }
        // A small real stream, then ciphertext: more than the stream.
        let small = zlib(&plain[..20_000]);
        assert_eq!(verified(&[&small[..], &ct].concat()), None);
        // Ciphertext in stored blocks inflates, to ciphertext.
        let mut stored = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
        stored.write_all(&ct).expect("in memory");
        let stored = stored.finish().expect("in memory");
        assert_eq!(verified(&stored), None);
        // A value that ends before its stream does.
        assert_eq!(verified(&small[..small.len() / 2]), None);
        assert_eq!(verified(&small), Some(Format::Zlib));
        // Ciphertext compressed after 4 MiB of zeros, and after plain data.
        let zeros_first = zlib(&[&vec![0u8; 4 << 20][..], &ct].concat());
        assert_eq!(verified(&zeros_first), None, "zeros then ciphertext");
        let plain_first = zlib(&[&plain[..], &plain[..], &ct].concat());
        assert_eq!(verified(&plain_first), None, "plain then ciphertext");
        // Past the bounds: not excused.
        let huge = zlib(&vec![0u8; COMPRESSED_MAX_INFLATED_BYTES + 4096]);
        assert_eq!(verified(&huge), None, "inflates past the bound");
    }

    /// A real JPEG (pydicom's test file's fragment) and a JPEG 2000 codestream are not
    /// excused: their coded data is what ciphertext stuffed to their rules looks like
    /// (review rv42-watch).
    #[test]
    fn jpeg_and_j2k_streams_are_not_excused() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files");
        for (name, soc) in [
            ("JPEG-lossy.dcm", &[0xFF, 0xD8, 0xFF][..]),
            ("JPEG2000.dcm", &[0xFF, 0x4F, 0xFF, 0x51][..]),
        ] {
            let bytes = std::fs::read(samples.join(name)).expect("pydicom's test files");
            let at = bytes
                .windows(soc.len())
                .position(|w| w == soc)
                .expect("a stream");
            assert_eq!(verified(&bytes[at..]), None, "{name}");
        }
    }

    #[test]
    fn bzip2_xz_and_zstd_are_named_by_their_magic_only() {
        assert_eq!(magic(b"BZh91AY&SY\x01\x02"), Some("bzip2"));
        assert_eq!(magic(&[0xFD, b'7', b'z', b'X', b'Z', 0, 0, 4]), Some("xz"));
        assert_eq!(magic(&[0x28, 0xB5, 0x2F, 0xFD, 0x24]), Some("zstd"));
        assert_eq!(magic(&xorshift(64, 11)), None);
        assert_eq!(verified(b"BZh91AY&SY\x01\x02"), None);
    }
}
