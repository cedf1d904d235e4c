//! The TLS record layer's framing, followed without opening a record (no I/O, no keys).
//!
//! A `tls-pass-through` route relays bytes it cannot read; what it can still hold them
//! to is the record layer every TLS version shares (RFC 8446 5.1, RFC 5246 6.2): a
//! 5-byte header (content type, legacy version 3.x, length) and that many bytes. So a
//! peer that speaks plain DICOM, or anything else, to a pass-through listener is refused
//! at its first byte instead of being relayed to an upstream that expects TLS, and the
//! gateway learns, from the first application data record of the peer, that its
//! handshake is over (the moment a pass-through connection stops holding a pending
//! place and takes an association's).

/// The content types a record may carry: change_cipher_spec (20), alert (21),
/// handshake (22), application_data (23). Heartbeat (24) and the rest are refused.
const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// The largest record body: a TLS 1.2 TLSCiphertext (2^14 + 2048, RFC 5246 6.2.3),
/// above TLS 1.3's (2^14 + 256).
pub const MAX_RECORD_BYTES: usize = (1 << 14) + 2048;
const HEADER_BYTES: usize = 5;

/// Why the bytes are not TLS records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset} of the stream: {what}")]
pub struct NotTls {
    pub offset: u64,
    pub what: String,
}

/// Follows the record framing of one direction of a stream.
#[derive(Debug, Default)]
pub struct Records {
    header: [u8; HEADER_BYTES],
    /// Header bytes of the current record seen so far.
    have: usize,
    /// Body bytes of the current record still to come.
    remaining: usize,
    /// Bytes of the stream seen.
    offset: u64,
    records: u64,
    application_data: bool,
    /// Set at the first byte that is not TLS: the framing is lost for good.
    lost: Option<NotTls>,
}

impl Records {
    /// Takes the next bytes of the stream; `Err` at the first byte that cannot be TLS
    /// record framing (and every call after it).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), NotTls> {
        if let Some(lost) = &self.lost {
            return Err(lost.clone());
        }
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                self.offset += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let byte = bytes[0];
            self.header[self.have] = byte;
            self.check(self.have, byte)?;
            self.have += 1;
            self.offset += 1;
            bytes = &bytes[1..];
            if self.have == HEADER_BYTES {
                self.have = 0;
                self.remaining = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.records += 1;
                if self.remaining > MAX_RECORD_BYTES {
                    return Err(self.not_tls(format!(
                        "a record of {} bytes, over the most TLS allows ({MAX_RECORD_BYTES})",
                        self.remaining
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks the header byte at `at` of the current record as it comes (so a single
    /// byte of plain DICOM is judged at once).
    fn check(&mut self, at: usize, byte: u8) -> Result<(), NotTls> {
        match at {
            0 if self.records == 0 && byte != HANDSHAKE => Err(self.not_tls(format!(
                "the first byte is {byte:#04x}, not a TLS handshake record (0x16){}",
                if byte == crate::pdu::kind::ASSOCIATE_RQ {
                    ": it begins a plain DICOM A-ASSOCIATE-RQ"
                } else {
                    ""
                }
            ))),
            0 if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&byte) => Err(self.not_tls(
                format!("record type {byte:#04x} is not one of TLS's (0x14 to 0x17)"),
            )),
            0 => {
                if byte == APPLICATION_DATA {
                    self.application_data = true;
                }
                Ok(())
            }
            1 if byte != 3 => {
                Err(self.not_tls(format!("record version {byte:#04x}.x is not TLS's (3.x)")))
            }
            2 if byte > 4 => {
                Err(self.not_tls(format!("record version 3.{byte} is not TLS's (3.0 to 3.4)")))
            }
            _ => Ok(()),
        }
    }

    fn not_tls(&mut self, what: String) -> NotTls {
        let e = NotTls {
            offset: self.offset,
            what,
        };
        // Every later call fails too: the framing is lost.
        self.lost = Some(e.clone());
        e
    }

    /// An application data record has begun (the handshake is over on this side).
    pub fn application_data(&self) -> bool {
        self.application_data
    }

    /// Records begun so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: usize) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&u16::try_from(body).expect("small").to_be_bytes());
        r.extend(std::iter::repeat_n(0xAB, body));
        r
    }

    #[test]
    fn records_split_anywhere_are_followed_and_application_data_is_seen() {
        let mut stream = record(HANDSHAKE, 300);
        stream.extend(record(HANDSHAKE, 2));
        stream.extend(record(CHANGE_CIPHER_SPEC, 1));
        let handshake = stream.len();
        stream.extend(record(APPLICATION_DATA, MAX_RECORD_BYTES));
        for cut in [1, 2, 5, 7, 300, 4096] {
            let mut r = Records::default();
            for (i, chunk) in stream.chunks(cut).enumerate() {
                r.feed(chunk).expect("TLS");
                assert_eq!(r.application_data(), (i + 1) * cut > handshake, "{cut} {i}");
            }
            assert_eq!(r.records(), 4);
        }
    }

    #[test]
    fn what_is_not_tls_is_refused_at_the_byte_that_shows_it() {
        // A plain A-ASSOCIATE-RQ: its first byte.
        let e = Records::default().feed(&[0x01]).expect_err("plain DICOM");
        assert_eq!(e.offset, 0);
        assert!(e.what.contains("A-ASSOCIATE-RQ"), "{e}");
        // SSLv2's hello, a wrong version, heartbeat, an application record first.
        for (bytes, at) in [
            (vec![0x80, 0x2e, 0x01], 0),
            (vec![HANDSHAKE, 2, 0], 1),
            (vec![HANDSHAKE, 3, 5], 2),
            (vec![APPLICATION_DATA, 3, 3], 0),
        ] {
            let e = Records::default().feed(&bytes).expect_err("not TLS");
            assert_eq!(e.offset, at, "{bytes:?}: {e}");
        }
        let mut r = Records::default();
        r.feed(&record(HANDSHAKE, 4)).expect("TLS");
        let e = r.feed(&[24, 3, 3, 0, 1]).expect_err("heartbeat");
        assert_eq!(e.offset, 9);
        assert!(
            r.feed(&[APPLICATION_DATA]).is_err(),
            "the framing stays lost"
        );
        // At the largest record: followed; one byte more: refused.
        let mut r = Records::default();
        let top = u16::try_from(MAX_RECORD_BYTES).expect("fits");
        r.feed(&[HANDSHAKE, 3, 1]).expect("TLS");
        r.feed(&top.to_be_bytes()).expect("at the limit");
        let mut r = Records::default();
        let e = r
            .feed(&[HANDSHAKE, 3, 1, 0, 0])
            .and_then(|()| r.feed(&[APPLICATION_DATA, 3, 3]))
            .and_then(|()| r.feed(&(top + 1).to_be_bytes()))
            .expect_err("over");
        assert!(e.what.contains("over the most"), "{e}");
    }
}
