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
//! RRDInfo, RRDHead) and a BoundSheet8's stream position are left as they are.
//!
//! And XOR obfuscation (FILEPASS type 0, [MS-OFFCRYPTO] 2.3.7, method 1, the one Excel
//! uses): the password's 16-bit verifier is checked, a 16-byte array is derived from the
//! password, and each encrypted record's data is XORed with it and rotated right by 5
//! bits, the array index starting at the stream position that follows the record's data
//! (plus 4 for a BoundSheet8, whose first four bytes are clear), modulo 16, as
//! msoffcrypto-tool decrypts Excel's files. (Method 2 is Word's: no workbook uses it.)
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
    /// An encryption this reader does not undo, or a FILEPASS record that cannot be read.
    NotDecrypted(&'static str),
}

/// The key of an encrypted workbook: one RC4 key per block.
enum Key {
    /// RC4 (1.1): the 40-bit truncated hash of the salted password.
    Rc4([u8; 5]),
    /// RC4 CryptoAPI: the salted password's SHA-1 and the key length in bytes.
    CryptoApi([u8; 20], usize),
    /// XOR obfuscation (method 1): the password's 16-byte XOR array.
    Xor([u8; 16]),
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
            // Never asked for: an XOR-obfuscated record is decoded in `Decryptor::record`.
            Key::Xor(_) => Vec::new(),
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
            Some(0) => {
                // XorObfuscation: key (2 bytes), verificationBytes (2 bytes).
                let verifier = u16_le(filepass, 4).ok_or(unreadable)?;
                let password = EXCEL_DEFAULT_PASSWORD.as_bytes();
                if xor_password_verifier(password) != verifier {
                    return Err(Locked::OtherPassword);
                }
                return Ok(Decryptor {
                    key: Key::Xor(xor_array(password)),
                    keystream: None,
                });
            }
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
        if let Key::Xor(array) = &self.key {
            // The index starts at the position after the record's data, as msoffcrypto-tool
            // reads Excel's files (a BoundSheet8 4 further on).
            let mut index = (offset + data.len() + skip) % 16;
            for byte in data.iter_mut().skip(skip) {
                *byte = (*byte ^ array[index]).rotate_right(5);
                index = (index + 1) % 16;
            }
            return;
        }
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

/// [MS-OFFCRYPTO] 2.3.7.1: the bytes that fill the XOR array past a short password.
const XOR_PAD: [u8; 15] = [
    0xBB, 0xFF, 0xFF, 0xBA, 0xFF, 0xFF, 0xB9, 0x80, 0x00, 0xBE, 0x0F, 0x00, 0xBF, 0x0F, 0x00,
];
/// [MS-OFFCRYPTO] 2.3.7.1: the XOR key's starting value, by password length.
const XOR_INITIAL_CODE: [u16; 15] = [
    0xE1F0, 0x1D0F, 0xCC9C, 0x84C0, 0x110C, 0x0E10, 0xF1CE, 0x313E, 0x1872, 0xE139, 0xD40F, 0x84F9,
    0x280C, 0xA96A, 0x4EC3,
];
/// [MS-OFFCRYPTO] 2.3.7.1: what each of the 7 low bits of each password character (the
/// last character first) XORs into the key.
const XOR_MATRIX: [u16; 105] = [
    0xAEFC, 0x4DD9, 0x9BB2, 0x2745, 0x4E8A, 0x9D14, 0x2A09, 0x7B61, 0xF6C2, 0xFDA5, 0xEB6B, 0xC6F7,
    0x9DCF, 0x2BBF, 0x4563, 0x8AC6, 0x05AD, 0x0B5A, 0x16B4, 0x2D68, 0x5AD0, 0x0375, 0x06EA, 0x0DD4,
    0x1BA8, 0x3750, 0x6EA0, 0xDD40, 0xD849, 0xA0B3, 0x5147, 0xA28E, 0x553D, 0xAA7A, 0x44D5, 0x6F45,
    0xDE8A, 0xAD35, 0x4A4B, 0x9496, 0x390D, 0x721A, 0xEB23, 0xC667, 0x9CEF, 0x29FF, 0x53FE, 0xA7FC,
    0x5FD9, 0x47D3, 0x8FA6, 0x0F6D, 0x1EDA, 0x3DB4, 0x7B68, 0xF6D0, 0xB861, 0x60E3, 0xC1C6, 0x93AD,
    0x377B, 0x6EF6, 0xDDEC, 0x45A0, 0x8B40, 0x06A1, 0x0D42, 0x1A84, 0x3508, 0x6A10, 0xAA51, 0x4483,
    0x8906, 0x022D, 0x045A, 0x08B4, 0x1168, 0x76B4, 0xED68, 0xCAF1, 0x85C3, 0x1BA7, 0x374E, 0x6E9C,
    0x3730, 0x6E60, 0xDCC0, 0xA9A1, 0x4363, 0x86C6, 0x1DAD, 0x3331, 0x6662, 0xCCC4, 0x89A9, 0x0373,
    0x06E6, 0x0DCC, 0x1021, 0x2042, 0x4084, 0x8108, 0x1231, 0x2462, 0x48C4,
];

/// CreatePasswordVerifier_Method1 ([MS-OFFCRYPTO] 2.3.7.1): the 16-bit verifier a FILEPASS
/// record holds, from the password's bytes (1 to 15 of them: Excel's default is 15).
fn xor_password_verifier(password: &[u8]) -> u16 {
    let length = u8::try_from(password.len()).unwrap_or(u8::MAX);
    let mut verifier = 0u16;
    for &byte in password.iter().rev().chain(std::iter::once(&length)) {
        let carry = u16::from(verifier & 0x4000 != 0);
        verifier = (carry ^ ((verifier << 1) & 0x7FFF)) ^ u16::from(byte);
    }
    verifier ^ 0xCE4B
}

/// CreateXorKey_Method1 ([MS-OFFCRYPTO] 2.3.7.2).
fn xor_key(password: &[u8]) -> u16 {
    let password = &password[..password.len().min(XOR_INITIAL_CODE.len())];
    let mut key = XOR_INITIAL_CODE[password.len().max(1) - 1];
    let mut element = XOR_MATRIX.len();
    for &byte in password.iter().rev() {
        let mut byte = byte;
        for _ in 0..7 {
            element = element.saturating_sub(1);
            if byte & 0x40 != 0 {
                key ^= XOR_MATRIX[element];
            }
            byte <<= 1;
        }
    }
    key
}

/// CreateXorArray_Method1 ([MS-OFFCRYPTO] 2.3.7.2): the password's bytes, then the pad,
/// each XORed with the key's high byte (odd places) or low byte (even places) and rotated
/// right by one bit.
fn xor_array(password: &[u8]) -> [u8; 16] {
    let password = &password[..password.len().min(XOR_PAD.len())];
    let [high, low] = xor_key(password).to_be_bytes();
    let mix = |byte: u8, index: usize| {
        let key = if index % 2 == 1 { high } else { low };
        (byte ^ key).rotate_right(1)
    };
    let mut array = [0u8; 16];
    for (index, slot) in array.iter_mut().enumerate() {
        let byte = match password.get(index) {
            Some(&byte) => byte,
            // The pad, from its first byte, after the password (a password has at least
            // one byte: the 16th place of an empty one has none).
            None => XOR_PAD.get(index - password.len()).copied().unwrap_or(0),
        };
        *slot = mix(byte, index);
    }
    array
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

    /// msoffcrypto-tool's test vector for the XOR verifier of Excel's default password
    /// (`verifypw` doctest: 0x9A0A); another password's verifier is another password.
    #[test]
    fn the_xor_verifier_of_the_default_password_matches_a_published_vector() {
        assert_eq!(xor_password_verifier(b"VelvetSweatshop"), 0x9A0A);
        let filepass = |verifier: u16| [&[0u8, 0, 0, 0][..], &verifier.to_le_bytes()].concat();
        assert!(Decryptor::with_default_password(&filepass(0x9A0A)).is_ok());
        assert!(matches!(
            Decryptor::with_default_password(&filepass(xor_password_verifier(b"hospital2024"))),
            Err(Locked::OtherPassword)
        ));
        // Every password length gives a whole array, without a panic.
        for length in 0..=20 {
            std::hint::black_box(xor_array(&b"abcdefghijklmnopqrst"[..length]));
        }
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
