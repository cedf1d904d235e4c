//! Length-prefixed encoding of the list-valued columns (extended attributes, exclusions).
//! Decoding is total: any malformed blob is an error, never a panic or an out-of-range read.

use pacsguard_fs::{Digest, Xattr, XattrValue};

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(crate) fn encode_xattrs(xattrs: &[Xattr]) -> Vec<u8> {
    let mut out = Vec::new();
    for x in xattrs {
        put_bytes(&mut out, &x.name);
        match &x.value {
            XattrValue::Inline(v) => {
                out.push(0);
                put_bytes(&mut out, v);
            }
            XattrValue::Digest(d) => {
                out.push(1);
                put_bytes(&mut out, &d.0);
            }
        }
    }
    out
}

pub(crate) fn decode_xattrs(blob: &[u8]) -> Option<Vec<Xattr>> {
    let mut r = Reader::new(blob);
    let mut xattrs = Vec::new();
    while !r.is_empty() {
        let name = r.bytes()?.to_vec();
        let value = match r.u8()? {
            0 => XattrValue::Inline(r.bytes()?.to_vec()),
            1 => XattrValue::Digest(Digest(r.bytes()?.try_into().ok()?)),
            _ => return None,
        };
        xattrs.push(Xattr { name, value });
    }
    Some(xattrs)
}

pub(crate) fn encode_strings(items: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        put_bytes(&mut out, item.as_bytes());
    }
    out
}

pub(crate) fn decode_strings(blob: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(blob);
    let mut items = Vec::new();
    while !r.is_empty() {
        items.push(String::from_utf8(r.bytes()?.to_vec()).ok()?);
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_truncation_is_rejected() {
        let xattrs = vec![
            Xattr {
                name: b"security.selinux".to_vec(),
                value: XattrValue::Inline(b"system_u:object_r:etc_t:s0".to_vec()),
            },
            Xattr {
                name: b"user.big".to_vec(),
                value: XattrValue::Digest(Digest([9; 32])),
            },
        ];
        let blob = encode_xattrs(&xattrs);
        assert_eq!(decode_xattrs(&blob), Some(xattrs));
        for cut in 1..blob.len() {
            // A cut inside the blob never decodes to the original and never panics.
            assert_ne!(
                decode_xattrs(&blob[..cut]).map(|v| v.len()),
                Some(2),
                "cut {cut}"
            );
        }
        assert_eq!(
            decode_strings(&encode_strings(&["*.tmp".into(), "a/**".into()])),
            Some(vec!["*.tmp".into(), "a/**".into()])
        );
        assert_eq!(decode_strings(&[5, 0, 0, 0, b'a']), None);
    }
}
