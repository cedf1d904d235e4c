//! The Standard security handler (ISO 32000-1 §7.6.3, ISO 32000-2 §7.6.4), for documents
//! whose user password is empty: a reader opens them without asking, so the key is
//! derived from the empty password exactly as the reader derives it, and strings and
//! streams are decrypted before they are inspected. RC4 (40 to 128 bits, R2–R4),
//! AES-128 (AESV2, R4) and AES-256 (AESV3, R5 and R6).
//!
//! RC4 is the ten lines below; AES comes from the RustCrypto `aes` crate, MD5 and SHA-2 from
//! `md-5` and `sha2` (already in the workspace).

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use md5::{Digest, Md5};
use sha2::{Sha256, Sha384, Sha512};

use super::lexer::{Dict, Obj, get};

/// The padding string of Algorithm 2, also the whole "password" when it is empty.
const PAD: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
    0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Identity,
    Rc4,
    Aes128,
    Aes256,
}

/// How to decrypt one document's strings and streams.
#[derive(Clone, Debug)]
pub struct Decryptor {
    key: Vec<u8>,
    strings: Method,
    streams: Method,
    /// The crypt filters of `/CF` by name, for streams that name theirs ([`StreamCrypt`]).
    named: Vec<(Vec<u8>, Method)>,
}

/// Which crypt filter decrypts a stream (ISO 32000-1 §7.6.5): the document's `/StmF`, or
/// the one the stream names with a leading `/Crypt` filter, as qpdf and mutool read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCrypt<'a> {
    Document,
    Named(&'a [u8]),
}

/// What the encryption dictionary allows.
#[derive(Debug)]
pub enum Setup {
    Open(Decryptor),
    /// The user password is not empty: a reader asks for it, and so the content cannot be
    /// read here either.
    NeedsPassword,
    /// A handler or revision this reader does not implement, named.
    Unsupported(String),
}

/// Derives the key for the empty user password from the encryption dictionary and the
/// first element of the trailer's `/ID`.
pub fn setup(encrypt: &Dict, id0: &[u8]) -> Setup {
    let name = |key: &[u8]| get(encrypt, key).and_then(Obj::as_name).map(<[u8]>::to_vec);
    let int = |key: &[u8]| get(encrypt, key).and_then(Obj::as_int);
    let bytes = |key: &[u8]| match get(encrypt, key) {
        Some(Obj::Str(s)) => s.clone(),
        _ => Vec::new(),
    };
    let filter = name(b"Filter").unwrap_or_default();
    if filter != b"Standard" {
        return Setup::Unsupported(format!(
            "the security handler /{}",
            String::from_utf8_lossy(&filter)
        ));
    }
    let v = int(b"V").unwrap_or(0);
    let r = int(b"R").unwrap_or(0);
    let (o, u) = (bytes(b"O"), bytes(b"U"));
    let mut named = Vec::new();
    let (strings, streams, key_len) = match v {
        1 | 2 => {
            let bits = if v == 1 {
                40
            } else {
                int(b"Length").unwrap_or(40)
            };
            (Method::Rc4, Method::Rc4, key_bytes(bits))
        }
        4 | 5 => {
            let filters = get(encrypt, b"CF").and_then(Obj::as_dict);
            let method = |which: &[u8]| {
                let chosen = name(which).unwrap_or_else(|| b"Identity".to_vec());
                if chosen == b"Identity" {
                    return Some((Method::Identity, 16));
                }
                filters
                    .and_then(|f| get(f, &chosen))
                    .and_then(Obj::as_dict)
                    .and_then(crypt_filter_method)
            };
            let (Some((strings, a)), Some((streams, b))) = (method(b"StrF"), method(b"StmF"))
            else {
                return Setup::Unsupported("a crypt filter method".to_owned());
            };
            named = filters
                .into_iter()
                .flatten()
                .filter_map(|(name, cf)| {
                    let (method, _) = cf.as_dict().and_then(crypt_filter_method)?;
                    Some((name.clone(), method))
                })
                .collect();
            (strings, streams, a.max(b))
        }
        _ => return Setup::Unsupported(format!("encryption version {v}")),
    };
    // A reader first tries the empty password as the user password, then as the owner
    // password (qpdf and mutool both do): a document whose owner password is empty opens
    // without a prompt too.
    let key = match r {
        2..=4 => {
            let metadata = !matches!(get(encrypt, b"EncryptMetadata"), Some(Obj::Bool(false)));
            let p = int(b"P").unwrap_or(0) as i32;
            let key_len = if r == 2 { 5 } else { key_len.min(16) };
            let derive = |user_password: &[u8; 32]| {
                legacy_key(user_password, &o, p, id0, r, key_len, metadata)
            };
            let as_user = derive(&PAD);
            if legacy_user_password_is_empty(&as_user, &u, id0, r) {
                as_user
            } else {
                let as_owner = derive(&user_password_from_owner(&o, r, key_len));
                if !legacy_user_password_is_empty(&as_owner, &u, id0, r) {
                    return Setup::NeedsPassword;
                }
                as_owner
            }
        }
        5 | 6 => match modern_key(r, &u, &bytes(b"UE"), &[])
            .or_else(|| modern_owner_key(r, &o, &u, &bytes(b"OE")))
        {
            Some(key) => key,
            None => return Setup::NeedsPassword,
        },
        _ => return Setup::Unsupported(format!("security handler revision {r}")),
    };
    Setup::Open(Decryptor {
        key,
        strings,
        streams,
        named,
    })
}

/// The method and key length of one crypt filter dictionary; `None` for a method not
/// known here.
fn crypt_filter_method(cf: &Dict) -> Option<(Method, usize)> {
    let length = get(cf, b"Length").and_then(Obj::as_int);
    match get(cf, b"CFM").and_then(Obj::as_name) {
        Some(b"V2") => Some((Method::Rc4, length.map_or(16, key_bytes))),
        Some(b"AESV2") => Some((Method::Aes128, 16)),
        Some(b"AESV3") => Some((Method::Aes256, 32)),
        Some(b"None") | None => Some((Method::Identity, 16)),
        Some(_) => None,
    }
}

fn key_bytes(length: i64) -> usize {
    // /Length is in bits, but some writers put bytes in crypt filters.
    let bytes = if length <= 32 { length } else { length / 8 };
    usize::try_from(bytes).unwrap_or(16).clamp(5, 16)
}

/// Algorithm 2 (§7.6.3.3): the file key from a (padded) user password.
fn legacy_key(
    password: &[u8; 32],
    o: &[u8],
    p: i32,
    id0: &[u8],
    r: i64,
    len: usize,
    metadata: bool,
) -> Vec<u8> {
    let mut md5 = Md5::new();
    md5.update(password);
    md5.update(o.get(..32).unwrap_or(o));
    md5.update(p.to_le_bytes());
    md5.update(id0);
    if r >= 4 && !metadata {
        md5.update([0xFF; 4]);
    }
    let mut hash: Vec<u8> = md5.finalize().to_vec();
    if r >= 3 {
        for _ in 0..50 {
            hash = Md5::digest(&hash[..len]).to_vec();
        }
    }
    hash.truncate(len);
    hash
}

/// Algorithm 7 (§7.6.3.4) for the empty owner password: `/O` decrypted with the key of
/// the empty owner password gives the (padded) user password.
fn user_password_from_owner(o: &[u8], r: i64, len: usize) -> [u8; 32] {
    let mut hash: Vec<u8> = Md5::digest(PAD).to_vec();
    if r >= 3 {
        for _ in 0..50 {
            hash = Md5::digest(&hash[..len]).to_vec();
        }
    }
    hash.truncate(len);
    let mut x = o.get(..32).unwrap_or(o).to_vec();
    if r == 2 {
        x = rc4(&hash, &x);
    } else {
        for i in (0..=19u8).rev() {
            let round: Vec<u8> = hash.iter().map(|k| k ^ i).collect();
            x = rc4(&round, &x);
        }
    }
    let mut password = PAD;
    for (slot, byte) in password.iter_mut().zip(x) {
        *slot = byte;
    }
    password
}

/// Algorithms 4 and 5 (§7.6.3.4): the `/U` entry the empty password would give.
fn legacy_user_password_is_empty(key: &[u8], u: &[u8], id0: &[u8], r: i64) -> bool {
    if r == 2 {
        return rc4(key, &PAD) == u.get(..32).unwrap_or(u);
    }
    let mut md5 = Md5::new();
    md5.update(PAD);
    md5.update(id0);
    let mut x = rc4(key, &md5.finalize());
    for i in 1..=19u8 {
        let round: Vec<u8> = key.iter().map(|k| k ^ i).collect();
        x = rc4(&round, &x);
    }
    u.get(..16) == Some(&x[..])
}

/// R5 and R6 (ISO 32000-2 §7.6.4.3.3): checks the empty password against `/U` and
/// unwraps the file key from `/UE`. `udata` is empty for the user password.
fn modern_key(r: i64, u: &[u8], ue: &[u8], udata: &[u8]) -> Option<Vec<u8>> {
    let (hash, validation, key_salt) = (u.get(..32)?, u.get(32..40)?, u.get(40..48)?);
    unwrap_key(r, hash, validation, key_salt, udata, ue)
}

/// The same for the empty owner password (Algorithm 12): `/O` and `/OE`, with the first 48
/// bytes of `/U` as user data.
fn modern_owner_key(r: i64, o: &[u8], u: &[u8], oe: &[u8]) -> Option<Vec<u8>> {
    let (hash, validation, key_salt) = (o.get(..32)?, o.get(32..40)?, o.get(40..48)?);
    unwrap_key(r, hash, validation, key_salt, u.get(..48)?, oe)
}

fn unwrap_key(
    r: i64,
    hash: &[u8],
    validation: &[u8],
    key_salt: &[u8],
    udata: &[u8],
    wrapped: &[u8],
) -> Option<Vec<u8>> {
    let check = |salt: &[u8]| -> Vec<u8> {
        if r == 5 {
            let mut sha = Sha256::new();
            sha.update(salt);
            sha.update(udata);
            sha.finalize().to_vec()
        } else {
            hash_2b(salt, udata)
        }
    };
    if check(validation) != hash {
        return None;
    }
    let wrapping = check(key_salt);
    let cipher = Aes256::new_from_slice(&wrapping).ok()?;
    let mut key = cbc_decrypt_aes256(&cipher, &[0; 16], wrapped.get(..32)?);
    key.truncate(32);
    Some(key)
}

/// Algorithm 2.B of ISO 32000-2 for the empty password.
fn hash_2b(salt: &[u8], udata: &[u8]) -> Vec<u8> {
    let mut sha = Sha256::new();
    sha.update(salt);
    sha.update(udata);
    let mut k: Vec<u8> = sha.finalize().to_vec();
    let mut round = 0usize;
    let mut last = 0u8;
    while round < 64 || usize::from(last) > round - 32 {
        let k1 = [&k[..], udata].concat().repeat(64);
        let (Some(key), Some(iv)) = (k.get(..16), k.get(16..32)) else {
            return k;
        };
        let Ok(cipher) = Aes128::new_from_slice(key) else {
            return k;
        };
        let e = cbc_encrypt_aes128(&cipher, iv, &k1);
        let modulo = e.iter().take(16).map(|b| u32::from(*b)).sum::<u32>() % 3;
        k = match modulo {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        last = e.last().copied().unwrap_or(0);
        round += 1;
    }
    k.truncate(32);
    k
}

fn cbc_encrypt_aes128(cipher: &Aes128, iv: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut previous = [0u8; 16];
    previous.copy_from_slice(iv.get(..16).unwrap_or(&[0; 16]));
    for chunk in data.chunks_exact(16) {
        let mut block = [0u8; 16];
        for (b, (c, p)) in block.iter_mut().zip(chunk.iter().zip(previous.iter())) {
            *b = c ^ p;
        }
        let mut block = Array::from(block);
        cipher.encrypt_block(&mut block);
        previous.copy_from_slice(&block);
        out.extend_from_slice(&block);
    }
    out
}

fn cbc_decrypt<C: BlockCipherDecrypt<BlockSize = aes::cipher::consts::U16>>(
    cipher: &C,
    iv: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut previous = [0u8; 16];
    previous.copy_from_slice(iv.get(..16).unwrap_or(&[0; 16]));
    for chunk in data.chunks_exact(16) {
        let mut input = [0u8; 16];
        input.copy_from_slice(chunk);
        let mut block = Array::from(input);
        cipher.decrypt_block(&mut block);
        out.extend(block.iter().zip(previous.iter()).map(|(b, p)| b ^ p));
        previous = input;
    }
    out
}

fn cbc_decrypt_aes256(cipher: &Aes256, iv: &[u8], data: &[u8]) -> Vec<u8> {
    cbc_decrypt(cipher, iv, data)
}

/// RC4: the key schedule and the keystream, XORed over `data`.
pub fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j
            .wrapping_add(s[i])
            .wrapping_add(key.get(i % key.len().max(1)).copied().unwrap_or(0));
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[usize::from(i)]);
            s.swap(usize::from(i), usize::from(j));
            byte ^ s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))]
        })
        .collect()
}

impl Decryptor {
    pub fn string(&self, num: u32, generation: u16, data: &[u8]) -> Vec<u8> {
        self.apply(self.strings, num, generation, data)
    }

    pub fn stream(&self, crypt: StreamCrypt, num: u32, generation: u16, data: &[u8]) -> Vec<u8> {
        self.apply(self.stream_method(crypt), num, generation, data)
    }

    /// Whether a stream decrypted through `crypt` is changed by it (not `Identity`).
    pub fn decrypts(&self, crypt: StreamCrypt) -> bool {
        self.stream_method(crypt) != Method::Identity
    }

    /// `Identity` is no filter; a name `/CF` does not hold (or whose method is not known
    /// here) is taken as the document's own stream filter.
    fn stream_method(&self, crypt: StreamCrypt) -> Method {
        match crypt {
            StreamCrypt::Document => self.streams,
            StreamCrypt::Named(b"Identity") => Method::Identity,
            StreamCrypt::Named(name) => self
                .named
                .iter()
                .find(|(known, _)| known == name)
                .map_or(self.streams, |(_, method)| *method),
        }
    }

    fn apply(&self, method: Method, num: u32, generation: u16, data: &[u8]) -> Vec<u8> {
        match method {
            Method::Identity => data.to_vec(),
            Method::Rc4 => rc4(&self.object_key(num, generation, false), data),
            Method::Aes128 => {
                let key = self.object_key(num, generation, true);
                match Aes128::new_from_slice(&key) {
                    Ok(cipher) => aes_payload(&cipher, data),
                    Err(_) => Vec::new(),
                }
            }
            Method::Aes256 => match Aes256::new_from_slice(&self.key) {
                Ok(cipher) => aes_payload(&cipher, data),
                Err(_) => Vec::new(),
            },
        }
    }

    /// Algorithm 1 (§7.6.2): the file key extended with the object number and generation.
    fn object_key(&self, num: u32, generation: u16, aes: bool) -> Vec<u8> {
        let mut md5 = Md5::new();
        md5.update(&self.key);
        md5.update(&num.to_le_bytes()[..3]);
        md5.update(generation.to_le_bytes());
        if aes {
            md5.update(b"sAlT");
        }
        let mut key = md5.finalize().to_vec();
        key.truncate((self.key.len() + 5).min(16));
        key
    }
}

/// An AES string or stream: a 16-byte IV, CBC blocks, PKCS#7 padding (left in place when
/// it is not valid, as lenient readers do).
fn aes_payload<C: BlockCipherDecrypt<BlockSize = aes::cipher::consts::U16>>(
    cipher: &C,
    data: &[u8],
) -> Vec<u8> {
    let (Some(iv), Some(body)) = (data.get(..16), data.get(16..)) else {
        return Vec::new();
    };
    let mut out = cbc_decrypt(cipher, iv, body);
    if let Some(&pad) = out.last() {
        let pad = usize::from(pad);
        if (1..=16).contains(&pad)
            && pad <= out.len()
            && out[out.len() - pad..]
                .iter()
                .all(|b| usize::from(*b) == pad)
        {
            out.truncate(out.len() - pad);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_matches_the_published_test_vector() {
        // RFC 6229 is for longer keys; this is the classic "Key"/"Plaintext" vector.
        assert_eq!(
            rc4(b"Key", b"Plaintext"),
            [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]
        );
    }
}
