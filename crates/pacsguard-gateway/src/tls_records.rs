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
                Err(self.not_tls(format!(
                    "record version {byte:#04x}.. is none of TLS's (0x0300, SSL 3.0, to 0x0304, TLS 1.3)"
                )))
            }
            2 if byte > 4 => {
                // Named as TLS names its versions (0x0303 is TLS 1.2), not as wire digits
                // ("3.4" read as a TLS version that does not exist; review s19-r16).
                Err(self.not_tls(format!(
                    "record version {:#06x} is none of TLS's (0x0300, SSL 3.0, to 0x0304, TLS 1.3)",
                    0x0300 | u16::from(byte)
                )))
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

/// The oldest TLS version a pass-through lets an upstream negotiate: TLS 1.2 (0x0303;
/// PS3.15's secure transport profiles follow BCP195: TLS 1.2 or later, never a
/// downgrade). The gateway holds no key, but the version chosen is in the clear in the
/// upstream's ServerHello (its `supported_versions` extension for TLS 1.3).
pub const MIN_PASSED_THROUGH_VERSION: u16 = 0x0303;
const ALERT: u8 = 21;
const SERVER_HELLO: u8 = 2;
const SUPPORTED_VERSIONS: u16 = 43;
/// The most of the upstream's bytes held before its ServerHello is complete: two whole
/// records (a ServerHello fits in one).
pub const MAX_HELD_BYTES: usize = 2 * (MAX_RECORD_BYTES + HEADER_BYTES);

/// What the upstream's first records say of the session (review s19-r16: a
/// pass-through relayed a TLS 1.0 session, recorded as a success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSaid {
    /// The version the upstream chose in its ServerHello.
    Version(u16),
    /// The upstream's first record is an alert: it refused the handshake itself.
    Alert,
}

/// The name of a TLS version for the record (`0x0301` is "TLS 1.0").
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSL 3.0".to_owned(),
        0x0301..=0x0304 => format!("TLS 1.{}", version - 0x0301),
        v => format!("version {v:#06x}"),
    }
}

/// The upstream's bytes of a pass-through, held until its ServerHello shows the version
/// it chose (bounded: the ServerHello's records, at most two records' worth).
#[derive(Debug, Default)]
pub struct ServerHello {
    held: Vec<u8>,
}

impl ServerHello {
    /// Takes the upstream's next bytes; `Ok(None)` while the ServerHello is incomplete,
    /// then what it says; `Err` when the upstream's first bytes are not a ServerHello in
    /// TLS records.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<ServerSaid>, String> {
        self.held.extend_from_slice(bytes);
        if self.held.len() > MAX_HELD_BYTES {
            return Err(format!(
                "no ServerHello in the upstream's first {MAX_HELD_BYTES} bytes"
            ));
        }
        // The handshake messages so far, from the records' bodies.
        let mut handshake = Vec::new();
        let mut at = 0;
        while self.held.len() >= at + HEADER_BYTES {
            let header = &self.held[at..at + HEADER_BYTES];
            let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if header[1] != 3 || length > MAX_RECORD_BYTES {
                return Err(format!(
                    "the upstream's record at byte {at} is not TLS framing ({:02x?})",
                    header
                ));
            }
            match header[0] {
                ALERT if at == 0 => return Ok(Some(ServerSaid::Alert)),
                HANDSHAKE => {}
                other => {
                    return Err(format!(
                        "the upstream sent a record of type {other:#04x} before its ServerHello"
                    ));
                }
            }
            let body = at + HEADER_BYTES;
            let end = (body + length).min(self.held.len());
            handshake.extend_from_slice(&self.held[body..end]);
            at = body + length;
            if handshake.len() >= 4 {
                break;
            }
        }
        if handshake.len() < 4 {
            return Ok(None);
        }
        if handshake[0] != SERVER_HELLO {
            return Err(format!(
                "the upstream's first handshake message is of type {}, not a ServerHello (2)",
                handshake[0]
            ));
        }
        let length = usize::from(handshake[1]) << 16
            | usize::from(handshake[2]) << 8
            | usize::from(handshake[3]);
        if length > MAX_RECORD_BYTES {
            return Err(format!("a ServerHello of {length} bytes"));
        }
        // The rest of the message may come in the next handshake records.
        while handshake.len() < 4 + length && self.held.len() >= at + HEADER_BYTES {
            let header = &self.held[at..at + HEADER_BYTES];
            let record = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if header[0] != HANDSHAKE || header[1] != 3 || record > MAX_RECORD_BYTES {
                return Err(format!(
                    "the upstream's ServerHello is cut by a record that is not a handshake's ({:02x?})",
                    header
                ));
            }
            let body = at + HEADER_BYTES;
            let end = (body + record).min(self.held.len());
            handshake.extend_from_slice(&self.held[body..end]);
            at = body + record;
        }
        if handshake.len() < 4 + length {
            return Ok(None);
        }
        server_hello_version(&handshake[4..4 + length])
            .map(|v| Some(ServerSaid::Version(v)))
            .ok_or_else(|| "the upstream's ServerHello cannot be read".to_owned())
    }

    /// The upstream's bytes held so far (to be relayed once the version is judged).
    pub fn held(&self) -> &[u8] {
        &self.held
    }
}

/// The version a ServerHello's body chose: its `supported_versions` extension, else its
/// `legacy_version` (RFC 8446 4.1.3, 4.2.1; RFC 5246 7.4.1.3).
fn server_hello_version(body: &[u8]) -> Option<u16> {
    let legacy = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    // legacy_version, random, session id.
    let mut at = 2 + 32;
    let session = usize::from(*body.get(at)?);
    at += 1 + session;
    // cipher suite, compression method.
    at += 3;
    if at == body.len() {
        return Some(legacy);
    }
    let extensions = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    at += 2;
    let end = at.checked_add(extensions)?;
    if end > body.len() {
        return None;
    }
    while at + 4 <= end {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let length = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        at += 4;
        if at + length > end {
            return None;
        }
        if kind == SUPPORTED_VERSIONS {
            return (length == 2).then(|| u16::from_be_bytes([body[at], body[at + 1]]));
        }
        at += length;
    }
    Some(legacy)
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
        // The versions are named as TLS names them (review s19-r16: "3.0 to 3.4").
        let e = Records::default()
            .feed(&[HANDSHAKE, 3, 5])
            .expect_err("0x0305");
        assert!(
            e.what.contains("record version 0x0305")
                && e.what.contains("0x0300, SSL 3.0, to 0x0304, TLS 1.3")
                && !e.what.contains("3.4"),
            "{e}"
        );
        let e = Records::default()
            .feed(&[HANDSHAKE, 2])
            .expect_err("0x02..");
        assert!(
            e.what.contains("SSL 3.0") && e.what.contains("TLS 1.3"),
            "{e}"
        );
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

    /// A ServerHello record choosing `legacy`, with a `supported_versions` extension
    /// choosing `chosen` when given.
    fn server_hello(legacy: u16, chosen: Option<u16>) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend([0x5A; 32]);
        body.extend([32]);
        body.extend([0x11; 32]);
        body.extend([0x13, 0x01, 0]);
        if let Some(v) = chosen {
            // key_share (empty for the test), then supported_versions.
            let mut ext = vec![0, 51, 0, 0, 0, 43, 0, 2];
            ext.extend(v.to_be_bytes());
            body.extend(u16::try_from(ext.len()).expect("small").to_be_bytes());
            body.extend(ext);
        }
        let mut message = vec![SERVER_HELLO, 0];
        message.extend(u16::try_from(body.len()).expect("small").to_be_bytes());
        message.extend(body);
        let mut r = vec![HANDSHAKE, 3, 3];
        r.extend(u16::try_from(message.len()).expect("small").to_be_bytes());
        r.extend(message);
        r
    }

    /// Review s19-r16: the version an upstream chose is read from its ServerHello, cut
    /// anywhere, TLS 1.3's from its extension; an alert first is said as such; what is
    /// not a ServerHello is refused, and what is held is bounded.
    #[test]
    fn the_version_the_upstream_chose_is_read_from_its_server_hello() {
        for (legacy, chosen, said) in [
            (0x0301, None, 0x0301),
            (0x0300, None, 0x0300),
            (0x0303, None, 0x0303),
            (0x0303, Some(0x0304), 0x0304),
        ] {
            let mut stream = server_hello(legacy, chosen);
            stream.extend(record(HANDSHAKE, 900));
            for cut in [1, 3, 5, 40, 4096] {
                let mut hello = ServerHello::default();
                let mut got = None;
                for chunk in stream.chunks(cut) {
                    if let Some(v) = hello.feed(chunk).expect("a ServerHello") {
                        got = Some(v);
                        break;
                    }
                }
                assert_eq!(got, Some(ServerSaid::Version(said)), "{legacy:#x} {cut}");
            }
        }
        // A ServerHello split over two handshake records.
        let whole = server_hello(0x0301, None);
        let message = &whole[HEADER_BYTES..];
        let mut stream = vec![HANDSHAKE, 3, 1, 0, 10];
        stream.extend(&message[..10]);
        stream.extend([HANDSHAKE, 3, 1]);
        stream.extend(
            u16::try_from(message.len() - 10)
                .expect("small")
                .to_be_bytes(),
        );
        stream.extend(&message[10..]);
        assert_eq!(
            ServerHello::default().feed(&stream),
            Ok(Some(ServerSaid::Version(0x0301)))
        );
        assert_eq!(
            ServerHello::default().feed(&[ALERT, 3, 3, 0, 2, 2, 70]),
            Ok(Some(ServerSaid::Alert))
        );
        assert!(
            ServerHello::default().feed(&record(HANDSHAKE, 40)).is_err(),
            "not a ServerHello (0xAB)"
        );
        assert!(
            ServerHello::default()
                .feed(&[APPLICATION_DATA, 3, 3, 0, 1, 0])
                .is_err()
        );
        assert!(
            ServerHello::default()
                .feed(b"\x02\x00\x00\x00\x00\x44")
                .is_err(),
            "plain DICOM"
        );
        // Empty handshake records without end: refused past the bound.
        let mut hello = ServerHello::default();
        let empty = [HANDSHAKE, 3, 3, 0, 0];
        let mut result = Ok(None);
        for _ in 0..=MAX_HELD_BYTES / empty.len() {
            result = hello.feed(&empty);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err(), "held without bound");
        assert_eq!(version_name(0x0301), "TLS 1.0");
        assert_eq!(version_name(0x0304), "TLS 1.3");
    }
}
