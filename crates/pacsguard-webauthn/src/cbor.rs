//! A bounded CBOR decoder (RFC 8949) for what WebAuthn hands a relying party: the
//! attestation object, its statement and the COSE key inside the authenticator data.
//!
//! Only what those need is read: unsigned and negative integers, byte and text strings,
//! arrays, maps, `false`/`true`/`null`. Everything else (tags, floats, indefinite
//! lengths, other simple values) is refused: CTAP2's canonical encoding never uses them.
//! Every length is checked against the bytes left before anything is allocated, so a
//! hostile length cannot make the decoder allocate; nesting and the number of items are
//! bounded by [`MAX_DEPTH`] and [`MAX_ITEMS`]. Byte and text strings borrow from the
//! input.

/// Deepest nesting of arrays and maps read: an attestation object is a map holding a
/// map holding an array of certificates (3); extensions may add a level or two.
pub const MAX_DEPTH: usize = 8;
/// Most data items (every integer, string, array and map counts one) in one decoded
/// value: an attestation object with a self attestation holds about 20.
pub const MAX_ITEMS: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Major types 0 and 1: `-2^64 ..= 2^64 - 1` fits an `i128`.
    Int(i128),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Value<'a>>),
    /// In the order encoded; duplicate keys are refused.
    Map(Vec<(Value<'a>, Value<'a>)>),
    Bool(bool),
    Null,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum CborError {
    #[error("CBOR: the data ends inside an item")]
    Truncated,
    #[error("CBOR: nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("CBOR: more than {MAX_ITEMS} items")]
    TooManyItems,
    #[error("CBOR: {0} is not used by WebAuthn and is refused")]
    Unsupported(&'static str),
    #[error("CBOR: a text string is not UTF-8")]
    BadText,
    #[error("CBOR: a map repeats a key")]
    DuplicateKey,
    #[error("CBOR: {0} bytes follow the item")]
    TrailingBytes(usize),
}

impl<'a> Value<'a> {
    /// The value under `key` in a map whose keys are text (`None` if absent or not a map).
    pub fn get_text_key(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Text(t) if *t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value under the integer `key` in a map (COSE keys use integer labels).
    pub fn get_int_key(&self, key: i128) -> Option<&Value<'a>> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Int(i) if *i == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Decodes exactly one item that fills `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value<'_>, CborError> {
    let (value, used) = decode_prefix(bytes)?;
    match bytes.len() - used {
        0 => Ok(value),
        rest => Err(CborError::TrailingBytes(rest)),
    }
}

/// Decodes the first item of `bytes`: it and the number of bytes it took (the COSE key
/// in authenticator data is followed by other data).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value<'_>, usize), CborError> {
    let mut reader = Reader {
        bytes,
        at: 0,
        items: 0,
    };
    let value = reader.item(0)?;
    Ok((value, reader.at))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    items: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CborError> {
        let b = *self.bytes.get(self.at).ok_or(CborError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        let left = self.bytes.len() - self.at;
        let n = usize::try_from(n).map_err(|_| CborError::Truncated)?;
        if n > left {
            return Err(CborError::Truncated);
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    /// The argument of an initial byte's additional information.
    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        let width = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Err(CborError::Unsupported("an indefinite length")),
            _ => return Err(CborError::Unsupported("a reserved additional information")),
        };
        let raw = self.take(width)?;
        Ok(raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A container's element count, refused before any allocation if the bytes left
    /// cannot hold that many items (each takes at least one byte).
    fn count(&mut self, n: u64, per_item: u64) -> Result<usize, CborError> {
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(per_item) > left {
            return Err(CborError::Truncated);
        }
        if n > MAX_ITEMS as u64 {
            return Err(CborError::TooManyItems);
        }
        usize::try_from(n).map_err(|_| CborError::TooManyItems)
    }

    fn item(&mut self, depth: usize) -> Result<Value<'a>, CborError> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(CborError::TooManyItems);
        }
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        match major {
            0 => Ok(Value::Int(i128::from(self.argument(info)?))),
            1 => Ok(Value::Int(-1 - i128::from(self.argument(info)?))),
            2 => {
                let n = self.argument(info)?;
                Ok(Value::Bytes(self.take(n)?))
            }
            3 => {
                let n = self.argument(info)?;
                let raw = self.take(n)?;
                std::str::from_utf8(raw)
                    .map(Value::Text)
                    .map_err(|_| CborError::BadText)
            }
            4 | 5 => {
                if depth >= MAX_DEPTH {
                    return Err(CborError::TooDeep);
                }
                let n = self.argument(info)?;
                if major == 4 {
                    let n = self.count(n, 1)?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.item(depth + 1)?);
                    }
                    Ok(Value::Array(items))
                } else {
                    let n = self.count(n, 2)?;
                    let mut entries: Vec<(Value<'a>, Value<'a>)> = Vec::with_capacity(n);
                    for _ in 0..n {
                        let key = self.item(depth + 1)?;
                        let value = self.item(depth + 1)?;
                        if entries.iter().any(|(k, _)| *k == key) {
                            return Err(CborError::DuplicateKey);
                        }
                        entries.push((key, value));
                    }
                    Ok(Value::Map(entries))
                }
            }
            6 => Err(CborError::Unsupported("a tag")),
            _ => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 => Ok(Value::Null),
                25..=27 => Err(CborError::Unsupported("a floating-point number")),
                31 => Err(CborError::Unsupported("a break")),
                _ => Err(CborError::Unsupported("a simple value")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .expect("hex")
    }

    /// RFC 8949 Appendix A: the examples within what WebAuthn uses.
    #[test]
    fn rfc8949_appendix_a_examples() {
        let ints: [(&str, i128); 14] = [
            ("00", 0),
            ("01", 1),
            ("0a", 10),
            ("17", 23),
            ("1818", 24),
            ("1819", 25),
            ("1864", 100),
            ("1903e8", 1000),
            ("1a000f4240", 1_000_000),
            ("1b000000e8d4a51000", 1_000_000_000_000),
            ("1bffffffffffffffff", 18_446_744_073_709_551_615),
            ("3bffffffffffffffff", -18_446_744_073_709_551_616),
            ("20", -1),
            ("3903e7", -1000),
        ];
        for (encoded, value) in ints {
            assert_eq!(decode(&hex(encoded)), Ok(Value::Int(value)), "{encoded}");
        }
        assert_eq!(decode(&hex("29")), Ok(Value::Int(-10)));
        assert_eq!(decode(&hex("3863")), Ok(Value::Int(-100)));
        assert_eq!(decode(&hex("f4")), Ok(Value::Bool(false)));
        assert_eq!(decode(&hex("f5")), Ok(Value::Bool(true)));
        assert_eq!(decode(&hex("f6")), Ok(Value::Null));
        assert_eq!(decode(&hex("40")), Ok(Value::Bytes(&[])));
        assert_eq!(decode(&hex("4401020304")), Ok(Value::Bytes(&[1, 2, 3, 4])));
        assert_eq!(decode(&hex("60")), Ok(Value::Text("")));
        assert_eq!(decode(&hex("6161")), Ok(Value::Text("a")));
        assert_eq!(decode(&hex("6449455446")), Ok(Value::Text("IETF")));
        assert_eq!(decode(&hex("62c3bc")), Ok(Value::Text("ü")));
        assert_eq!(decode(&hex("80")), Ok(Value::Array(vec![])));
        assert_eq!(
            decode(&hex("83010203")),
            Ok(Value::Array(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(3)
            ]))
        );
        assert_eq!(
            decode(&hex("8301820203820405")),
            Ok(Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::Int(2), Value::Int(3)]),
                Value::Array(vec![Value::Int(4), Value::Int(5)]),
            ]))
        );
        let long = hex("98190102030405060708090a0b0c0d0e0f101112131415161718181819");
        let long = decode(&long).expect("25 items");
        assert!(matches!(long, Value::Array(ref v) if v.len() == 25));
        assert_eq!(decode(&hex("a0")), Ok(Value::Map(vec![])));
        assert_eq!(
            decode(&hex("a201020304")),
            Ok(Value::Map(vec![
                (Value::Int(1), Value::Int(2)),
                (Value::Int(3), Value::Int(4))
            ]))
        );
        let map = hex("a26161016162820203");
        let map = decode(&map).expect("map");
        assert_eq!(map.get_text_key("a"), Some(&Value::Int(1)));
        // What WebAuthn never uses is refused, with the reason.
        for (encoded, what) in [
            ("c074323031332d30332d32315432303a30343a30305a", "a tag"),
            ("f93c00", "a floating-point number"),
            ("fb3ff199999999999a", "a floating-point number"),
            ("5f42010243030405ff", "an indefinite length"),
            ("9fff", "an indefinite length"),
            ("f0", "a simple value"),
            ("f7", "a simple value"),
        ] {
            assert_eq!(
                decode(&hex(encoded)),
                Err(CborError::Unsupported(what)),
                "{encoded}"
            );
        }
    }

    #[test]
    fn hostile_lengths_and_shapes_are_refused_without_allocating() {
        // A byte string claiming 2^64-1 bytes, an array claiming 2^32 items.
        assert_eq!(
            decode(&hex("5bffffffffffffffff")),
            Err(CborError::Truncated)
        );
        assert_eq!(decode(&hex("9affffffff00")), Err(CborError::Truncated));
        assert_eq!(
            decode(&hex("bb7fffffffffffffff")),
            Err(CborError::Truncated)
        );
        assert_eq!(decode(&hex("")), Err(CborError::Truncated));
        assert_eq!(decode(&hex("18")), Err(CborError::Truncated));
        assert_eq!(decode(&hex("6261")), Err(CborError::Truncated));
        assert_eq!(decode(&hex("62ff00")), Err(CborError::BadText));
        assert_eq!(
            decode(&hex("a2010201ff")),
            Err(CborError::Unsupported("a break"))
        );
        assert_eq!(decode(&hex("a201020103")), Err(CborError::DuplicateKey));
        assert_eq!(decode(&hex("0000")), Err(CborError::TrailingBytes(1)));
        assert_eq!(decode_prefix(&hex("0000")), Ok((Value::Int(0), 1)));
    }

    #[test]
    fn nesting_is_read_to_max_depth_and_refused_past_it() {
        let nested = |levels: usize| {
            let mut bytes = vec![0x81u8; levels];
            bytes.push(0x00);
            bytes
        };
        assert!(decode(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(decode(&nested(MAX_DEPTH + 1)), Err(CborError::TooDeep));
    }

    #[test]
    fn items_are_read_to_max_items_and_refused_past_it() {
        let array = |n: usize| {
            let mut bytes = vec![0x99u8];
            bytes.extend_from_slice(&u16::try_from(n).expect("small").to_be_bytes());
            bytes.extend(std::iter::repeat_n(0u8, n));
            bytes
        };
        // The array itself counts one item.
        assert!(decode(&array(MAX_ITEMS - 1)).is_ok());
        assert_eq!(decode(&array(MAX_ITEMS)), Err(CborError::TooManyItems));
    }
}
