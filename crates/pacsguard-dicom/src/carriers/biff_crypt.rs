//! Excel 97–2003 workbooks encrypted with Excel's default password, decrypted as Excel
//! decrypts them. Excel tries the password "VelvetSweatshop" before it asks for one
//! ([MS-OFFCRYPTO] 2.4.2.3 / [MS-XLS] 2.2.10): a workbook "protected" with it opens
//! without a prompt, so the macro sheet in it runs, while its sheet types (the mark of a
//! macro sheet) are encrypted. Such a workbook is read here as Excel reads it; one with
//! another password stays a warning, since Excel asks for that one.
//!
//! Both RC4 schemes a BIFF8 `FILEPASS` record names ([MS-XLS] 2.4.117):
//! - RC4 (version 1.1, [MS-OFFCRYPTO] 2.3.6): MD5 of the password, salted and truncated
//!   to 40 bits; a 128-bit RC4 key per 1024-byte block from MD5 of that and the block number.
//! - RC4 CryptoAPI (versions 2–4 .2, [MS-OFFCRYPTO] 2.3.5): SHA-1 of the salt and the
//!   password; a key per block from SHA-1 of that and the block number, `KeySize` bits
//!   long (40-bit keys padded with zeros to 128 bits).
//!
//! In both, the password's verifier is checked first (an RC4-decrypted verifier whose
//! hash matches), and the workbook stream is decrypted in 1024-byte blocks counted from
//! the stream's start, the keystream position being the byte's offset in its block,
//! whether or not the bytes before it were encrypted ([MS-XLS] 2.2.10): record headers,
//! the records that are never encrypted (BOF, FILEPASS, UsrExcl, FileLock, InterfaceHdr,
//! RRDInfo, RRDHead) and a BoundSheet8's stream position are left as they are. XOR
//! obfuscation (FILEPASS type 0) is not decrypted: it stays a warning.
//!
//! MD5 and SHA-1 come from `md-5` and `sha1` (already in the tree); RC4 is the PDF
//! reader's ([`crate::pdf::crypt::rc4`]).

use md5::{Digest, Md5};
use sha1::Sha1;

use crate::format::{u16_le, u32_le};
use crate::pdf::crypt::rc4;

/// The password Excel tries before it asks for one.
pub(super) const EXCEL_DEFAULT_PASSWORD: &str = "VelvetSweatshop";

/// Bytes decrypted with one key: the keystream restarts with the next block's key.
const BLOCK: usize = 1024;

/// Records [MS-XLS] 2.2.10 says are never encrypted.
const NEVER_ENCRYPTED: [u16; 7] = [
    0x0809, // BOF
    0x002F, // FILEPASS
    0x0194, // UsrExcl
    0x0195, // FileLock
    0x00E1, // InterfaceHdr
    0x0196, // RRDInfo
    0x0138, // RRDHead
];
/// BoundSheet8: its first four bytes (lbPlyPos) are not encrypted, the rest is.
const BOUNDSHEET: u16 = 0x0085;

/// Why a workbook encrypted by its `FILEPASS` record is not read here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Locked {
    /// Encrypted with a password other than Excel's default: Excel asks for it.
    OtherPassword,
    /// XOR obfuscation, an encryption this reader does not undo, or a FILEPASS record
    /// that cannot be read.
    NotDecrypted(&'static str),
}

/// The key of an encrypted workbook: one RC4 key per block.
enum Key {
    /// RC4 (1.1): the 40-bit truncated hash of the salted password.
    Rc4([u8; 5]),
    /// RC4 CryptoAPI: the salted password's SHA-1 and the key length in bytes.
    CryptoApi([u8; 20], usize),
}

impl Key {
    /// The RC4 key of block `block`.
    fn block_key(&self, block: u32) -> Vec<u8> {
        match self {
            Key::Rc4(truncated) => {
                let mut md5 = Md5::new();
                md5.update(truncated);
                md5.update(block.to_le_bytes());
                md5.finalize().to_vec()
            }
            Key::CryptoApi(h0, len) => {
                let mut sha1 = Sha1::new();
                sha1.update(h0);
                sha1.update(block.to_le_bytes());
                let mut key = sha1.finalize()[..*len].to_vec();
                if *len == 5 {
                    key.resize(16, 0); // 40-bit keys are used as 128 bits, zero-padded
                }
                key
            }
        }
    }
}

/// Decrypts a workbook stream encrypted with Excel's default password.
pub(super) struct Decryptor {
    key: Key,
    /// The keystream of the last block used, by block number.
    keystream: Option<(u32, Vec<u8>)>,
}

impl Decryptor {
    /// The decryptor for the workbook whose `FILEPASS` record holds `filepass`, if it is
    /// encrypted with Excel's default password.
    pub(super) fn with_default_password(filepass: &[u8]) -> Result<Decryptor, Locked> {
        let password: Vec<u8> = EXCEL_DEFAULT_PASSWORD
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let unreadable = Locked::NotDecrypted("a FILEPASS record that cannot be read");
        match u16_le(filepass, 0) {
            Some(0) => return Err(Locked::NotDecrypted("XOR obfuscation")),
            Some(1) => {}
            _ => return Err(unreadable),
        }
        let (Some(major), Some(minor)) = (u16_le(filepass, 2), u16_le(filepass, 4)) else {
            return Err(unreadable);
        };
        let key = match (major, minor) {
            (1, 1) => {
                let field = |at: usize| filepass.get(at..at + 16).ok_or(unreadable);
                let (salt, verifier, hash) = (field(6)?, field(22)?, field(38)?);
                let key = rc4_key(&password, salt);
                let plain = rc4(&key.block_key(0), &[verifier, hash].concat());
                if Md5::digest(&plain[..16])[..] != plain[16..] {
                    return Err(Locked::OtherPassword);
                }
                key
            }
            (2..=4, 2) => {
                // Flags (4), EncryptionHeaderSize (4), EncryptionHeader, EncryptionVerifier.
                let header_size = u32_le(filepass, 10)
                    .and_then(|size| usize::try_from(size).ok())
                    .ok_or(unreadable)?;
                let header = filepass
                    .get(14..14usize.saturating_add(header_size))
                    .ok_or(unreadable)?;
                let bits = match u32_le(header, 16).ok_or(unreadable)? {
                    0 => 40, // "MUST be interpreted as 40"
                    bits @ 40..=128 if bits % 8 == 0 => bits,
                    _ => return Err(Locked::NotDecrypted("an RC4 key size out of range")),
                };
                let verifier = &filepass[14 + header_size..];
                let salt_size = u32_le(verifier, 0).ok_or(unreadable)?;
                if salt_size != 16 {
                    return Err(unreadable);
                }
                let field = |at: usize, len: usize| verifier.get(at..at + len).ok_or(unreadable);
                let (salt, encrypted, hash) = (field(4, 16)?, field(20, 16)?, field(40, 20)?);
                let mut sha1 = Sha1::new();
                sha1.update(salt);
                sha1.update(&password);
                let key = Key::CryptoApi(sha1.finalize().into(), (bits / 8) as usize);
                let plain = rc4(&key.block_key(0), &[encrypted, hash].concat());
                if Sha1::digest(&plain[..16])[..] != plain[16..] {
                    return Err(Locked::OtherPassword);
                }
                key
            }
            _ => return Err(Locked::NotDecrypted("an encryption other than RC4")),
        };
        Ok(Decryptor {
            key,
            keystream: None,
        })
    }

    /// The data of record `id`, which lies at `offset` in the workbook stream, decrypted
    /// (in place).
    pub(super) fn record(&mut self, id: u16, offset: usize, data: &mut [u8]) {
        if NEVER_ENCRYPTED.contains(&id) {
            return;
        }
        let skip = if id == BOUNDSHEET { 4 } else { 0 };
        for (at, byte) in data.iter_mut().enumerate().skip(skip) {
            *byte ^= self.keystream_at(offset + at);
        }
    }

    /// The keystream byte for stream offset `offset`.
    fn keystream_at(&mut self, offset: usize) -> u8 {
        // A stream is read from a compound file held in memory: far below 4 TiB.
        let block = u32::try_from(offset / BLOCK).unwrap_or(u32::MAX);
        if self.keystream.as_ref().is_none_or(|(n, _)| *n != block) {
            let key = self.key.block_key(block);
            self.keystream = Some((block, rc4(&key, &[0; BLOCK])));
        }
        self.keystream
            .as_ref()
            .map_or(0, |(_, stream)| stream[offset % BLOCK])
    }
}

/// RC4 (1.1): the password's MD5 truncated to 40 bits, sixteen times with the salt, hashed
/// and truncated again ([MS-OFFCRYPTO] 2.3.6.2).
fn rc4_key(password: &[u8], salt: &[u8]) -> Key {
    let h0 = Md5::digest(password);
    let mut md5 = Md5::new();
    for _ in 0..16 {
        md5.update(&h0[..5]);
        md5.update(salt);
    }
    let h1 = md5.finalize();
    let mut truncated = [0u8; 5];
    truncated.copy_from_slice(&h1[..5]);
    Key::Rc4(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// msoffcrypto-tool's test vector for the RC4 (1.1) key ("password1", block 0), from
    /// its `method/rc4.py` doctest.
    #[test]
    fn the_rc4_key_matches_a_published_vector() {
        let password: Vec<u8> = "password1"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let salt = b"\xe8w,\x1d\x91\xc5j7\x96Ga\xb2\x80\x182\x17";
        assert_eq!(
            rc4_key(&password, salt).block_key(0),
            b" \xbf2\xdd\xf5@\x85\x8cQ7D\xaf\x0f$\xe0<"
        );
        // Its verifier: this password opens it, Excel's default does not.
        let mut filepass = vec![1, 0, 1, 0, 1, 0];
        filepass.extend_from_slice(salt);
        filepass.extend_from_slice(b"\xc9\xe9\x97\xd4T\x97=1\x0b\xb1\xbap\x14&\x83~");
        filepass.extend_from_slice(b"\xb1\xde\x17\x8f\x07\xe9\x89\xc4M\xae^L\xf9j\xc4\x07");
        let key = rc4_key(&password, salt);
        let plain = rc4(&key.block_key(0), &filepass[22..54]);
        assert_eq!(Md5::digest(&plain[..16])[..], plain[16..]);
        assert!(matches!(
            Decryptor::with_default_password(&filepass),
            Err(Locked::OtherPassword)
        ));
    }

    #[test]
    fn filepass_records_that_cannot_be_read_are_no_panic() {
        for filepass in [
            &b""[..],
            &[0, 0],
            &[1, 0],
            &[1, 0, 1, 0, 1, 0, 9],
            &[1, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
            &[1, 0, 4, 0, 2, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4],
            &[7, 0, 1, 0, 1, 0],
        ] {
            assert!(Decryptor::with_default_password(filepass).is_err());
        }
    }
}
