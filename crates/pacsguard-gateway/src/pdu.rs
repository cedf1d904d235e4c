//! DICOM Upper Layer PDUs (PS3.8 9.3), decoded totally and encoded back byte for byte.
//!
//! Every read goes through [`Reader`], which returns an error instead of indexing past
//! the end; a length field opens a sub-reader over exactly that many bytes, and bytes
//! left over inside an item are an error. Nothing is allocated before its length has
//! been checked against the bytes actually present, and a whole PDU is refused before it
//! is read when its length exceeds [`MAX_PDU_LENGTH`]. Items the gateway does not
//! interpret (user information sub-items, unknown item types) are kept as raw bytes, so
//! `encode(decode(x)) == x` for every PDU whose reserved fields are zero, as PS3.8
//! requires senders to write them.

use thiserror::Error;

/// Size of the header every PDU starts with: type, reserved, 32-bit big-endian length.
pub const PDU_HEADER_BYTES: usize = 6;

/// The largest PDU body the gateway reads (the length field of its header). PS3.8 lets a
/// receiver state its maximum P-DATA length in the association; the gateway states this
/// (or less) to both sides, so a compliant peer never sends more. Anything larger is
/// refused before a byte of it is buffered: an attacker's 4 GiB length field costs
/// nothing.
pub const MAX_PDU_LENGTH: u32 = 1024 * 1024;

/// The largest A-ASSOCIATE-RQ/AC body accepted. 128 presentation contexts with a dozen
/// transfer syntaxes each and a user identity item fit in well under this.
pub const MAX_ASSOCIATE_LENGTH: u32 = 256 * 1024;

/// Presentation contexts per association: their IDs are odd numbers from 1 to 255
/// (PS3.8 9.3.2.2), so a request with more is malformed.
pub const MAX_PRESENTATION_CONTEXTS: usize = 128;

/// The application context every DICOM association uses (PS3.7 A.2.1).
pub const DICOM_APPLICATION_CONTEXT: &[u8] = b"1.2.840.10008.3.1.1.1";

/// Why bytes are not a PDU.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PduError {
    #[error("truncated {what}: {needed} more bytes needed")]
    Truncated { what: &'static str, needed: usize },
    #[error("unknown PDU type 0x{0:02x}")]
    UnknownType(u8),
    #[error("PDU length {length} exceeds the limit of {limit} bytes")]
    TooLong { length: u32, limit: u32 },
    #[error("{what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

fn malformed(what: &'static str, detail: impl Into<String>) -> PduError {
    PduError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// A cursor over bytes that never reads past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PduError> {
        if n > self.bytes.len() {
            return Err(PduError::Truncated {
                what: self.what,
                needed: n - self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, PduError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PduError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PduError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PduError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A sub-reader over the next `n` bytes.
    fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, PduError> {
        let saved = self.what;
        self.what = what;
        let bytes = self.take(n);
        self.what = saved;
        Ok(Reader::new(bytes?, what))
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// A sub-item or item kept as its type and raw value (the 4-byte item header is rebuilt
/// on encoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubItem {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// A variable item of an A-ASSOCIATE-RQ or -AC (PS3.8 9.3.2, 9.3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// 10H: the application context name.
    ApplicationContext(Vec<u8>),
    /// 20H: a proposed presentation context: its ID, then the abstract syntax (30H) and
    /// transfer syntax (40H) sub-items as sent.
    ProposedContext { id: u8, sub_items: Vec<SubItem> },
    /// 21H: the answer to a proposed context: its ID, the result/reason and (for an
    /// acceptance) one transfer syntax sub-item.
    AcceptedContext {
        id: u8,
        result: u8,
        sub_items: Vec<SubItem>,
    },
    /// 50H: user information; sub-items 51H (maximum length), 52H, 55H, 58H/59H (user
    /// identity) and others.
    UserInformation(Vec<SubItem>),
    /// Any other item type, kept as it came.
    Other(SubItem),
}

/// Presentation context results (PS3.8 Table 9-18).
pub mod result {
    pub const ACCEPTANCE: u8 = 0;
    pub const USER_REJECTION: u8 = 1;
    pub const NO_REASON: u8 = 2;
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: u8 = 3;
    pub const TRANSFER_SYNTAXES_NOT_SUPPORTED: u8 = 4;
}

/// Sub-item types used by the gateway.
pub mod sub {
    pub const ABSTRACT_SYNTAX: u8 = 0x30;
    pub const TRANSFER_SYNTAX: u8 = 0x40;
    pub const MAXIMUM_LENGTH: u8 = 0x51;
    /// User identity negotiation, in the request (PS3.7 D.3.3.7.1).
    pub const USER_IDENTITY_RQ: u8 = 0x58;
    /// User identity negotiation, the acceptor's answer (PS3.7 D.3.3.7.2).
    pub const USER_IDENTITY_AC: u8 = 0x59;
}

/// The fixed fields and items of an A-ASSOCIATE-RQ or -AC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Associate {
    pub protocol_version: u16,
    /// Space-padded, as on the wire. In an AC these are echoed from the RQ.
    pub called_ae: [u8; 16],
    pub calling_ae: [u8; 16],
    pub items: Vec<Item>,
}

/// One presentation data value of a P-DATA-TF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdv {
    pub context_id: u8,
    /// Message control header: bit 0 set = command, bit 1 set = last fragment.
    pub control: u8,
    pub data: Vec<u8>,
}

impl Pdv {
    pub fn is_command(&self) -> bool {
        self.control & 0x01 != 0
    }
    pub fn is_last(&self) -> bool {
        self.control & 0x02 != 0
    }
}

/// A-ASSOCIATE-RJ fields (PS3.8 Table 9-21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// 1 rejected-permanent, 2 rejected-transient.
    pub result: u8,
    /// 1 DICOM UL service-user, 2 service-provider (ACSE), 3 service-provider
    /// (presentation).
    pub source: u8,
    pub reason: u8,
}

impl Rejection {
    pub const PERMANENT: u8 = 1;
    pub const TRANSIENT: u8 = 2;
    pub const SERVICE_USER: u8 = 1;
    pub const PROVIDER_ACSE: u8 = 2;
    pub const PROVIDER_PRESENTATION: u8 = 3;

    /// Rejected-permanent by the service user: calling AE title not recognised (3),
    /// called AE title not recognised (7), no reason given (1), application context
    /// name not supported (2).
    pub fn by_user(reason: u8) -> Self {
        Rejection {
            result: Self::PERMANENT,
            source: Self::SERVICE_USER,
            reason,
        }
    }
}

/// A-ABORT sources (PS3.8 Table 9-26): 0 service user, 2 service provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    pub source: u8,
    pub reason: u8,
}

/// A decoded PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pdu {
    AssociateRq(Associate),
    AssociateAc(Associate),
    AssociateRj(Rejection),
    PData(Vec<Pdv>),
    ReleaseRq,
    ReleaseRp,
    Abort(Abort),
}

pub mod kind {
    pub const ASSOCIATE_RQ: u8 = 0x01;
    pub const ASSOCIATE_AC: u8 = 0x02;
    pub const ASSOCIATE_RJ: u8 = 0x03;
    pub const P_DATA: u8 = 0x04;
    pub const RELEASE_RQ: u8 = 0x05;
    pub const RELEASE_RP: u8 = 0x06;
    pub const ABORT: u8 = 0x07;
}

/// The type and body length a PDU header announces, checked against `limit` before
/// anything else is read.
pub fn header(bytes: &[u8; PDU_HEADER_BYTES], limit: u32) -> Result<(u8, u32), PduError> {
    let kind = bytes[0];
    if !(kind::ASSOCIATE_RQ..=kind::ABORT).contains(&kind) {
        return Err(PduError::UnknownType(kind));
    }
    let length = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    // Association PDUs carry no data set and have a bound of their own; every other
    // PDU the caller's limit (what was stated to the peer), never above MAX_PDU_LENGTH.
    let limit = if matches!(kind, kind::ASSOCIATE_RQ | kind::ASSOCIATE_AC) {
        MAX_ASSOCIATE_LENGTH
    } else {
        limit.min(MAX_PDU_LENGTH)
    };
    if length > limit {
        return Err(PduError::TooLong { length, limit });
    }
    Ok((kind, length))
}

impl Pdu {
    /// Decodes one whole PDU (header included); bytes after it are an error.
    pub fn decode(bytes: &[u8]) -> Result<Pdu, PduError> {
        let mut r = Reader::new(bytes, "PDU header");
        let head: [u8; PDU_HEADER_BYTES] = r.array()?;
        let (kind, length) = header(&head, MAX_PDU_LENGTH)?;
        let body_len = usize::try_from(length).map_err(|_| malformed("PDU", "length"))?;
        let mut body = r.sub(body_len, "PDU body")?;
        if !r.is_empty() {
            return Err(malformed("PDU", "bytes after the PDU's length"));
        }
        let pdu = match kind {
            kind::ASSOCIATE_RQ => Pdu::AssociateRq(decode_associate(&mut body)?),
            kind::ASSOCIATE_AC => Pdu::AssociateAc(decode_associate(&mut body)?),
            kind::ASSOCIATE_RJ => {
                body.u8()?;
                let rejection = Rejection {
                    result: body.u8()?,
                    source: body.u8()?,
                    reason: body.u8()?,
                };
                Pdu::AssociateRj(rejection)
            }
            kind::P_DATA => Pdu::PData(decode_pdvs(&mut body)?),
            kind::RELEASE_RQ => {
                body.take(4)?;
                Pdu::ReleaseRq
            }
            kind::RELEASE_RP => {
                body.take(4)?;
                Pdu::ReleaseRp
            }
            _ => {
                body.take(2)?;
                Pdu::Abort(Abort {
                    source: body.u8()?,
                    reason: body.u8()?,
                })
            }
        };
        if !body.is_empty() {
            return Err(malformed("PDU", "bytes left over inside its length"));
        }
        Ok(pdu)
    }

    /// The PDU's bytes, header included.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body) = match self {
            Pdu::AssociateRq(a) => (kind::ASSOCIATE_RQ, encode_associate(a)),
            Pdu::AssociateAc(a) => (kind::ASSOCIATE_AC, encode_associate(a)),
            Pdu::AssociateRj(r) => (kind::ASSOCIATE_RJ, vec![0, r.result, r.source, r.reason]),
            Pdu::PData(pdvs) => {
                let mut body = Vec::new();
                for pdv in pdvs {
                    let len = u32::try_from(pdv.data.len() + 2).unwrap_or(u32::MAX);
                    body.extend_from_slice(&len.to_be_bytes());
                    body.push(pdv.context_id);
                    body.push(pdv.control);
                    body.extend_from_slice(&pdv.data);
                }
                (kind::P_DATA, body)
            }
            Pdu::ReleaseRq => (kind::RELEASE_RQ, vec![0; 4]),
            Pdu::ReleaseRp => (kind::RELEASE_RP, vec![0; 4]),
            Pdu::Abort(a) => (kind::ABORT, vec![0, 0, a.source, a.reason]),
        };
        let mut out = Vec::with_capacity(PDU_HEADER_BYTES + body.len());
        out.push(kind);
        out.push(0);
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

fn decode_associate(r: &mut Reader<'_>) -> Result<Associate, PduError> {
    let protocol_version = r.u16()?;
    r.take(2)?;
    let called_ae = r.array()?;
    let calling_ae = r.array()?;
    r.take(32)?;
    let mut items = Vec::new();
    let mut contexts = 0usize;
    while !r.is_empty() {
        let kind = r.u8()?;
        r.u8()?;
        let len = usize::from(r.u16()?);
        let mut item = r.sub(len, "variable item")?;
        items.push(match kind {
            0x10 => Item::ApplicationContext(item.rest().to_vec()),
            0x20 | 0x21 => {
                contexts += 1;
                if contexts > MAX_PRESENTATION_CONTEXTS {
                    return Err(malformed(
                        "A-ASSOCIATE",
                        format!("more than {MAX_PRESENTATION_CONTEXTS} presentation contexts"),
                    ));
                }
                let id = item.u8()?;
                item.u8()?;
                let result = item.u8()?;
                item.u8()?;
                let sub_items = decode_sub_items(&mut item)?;
                if kind == 0x20 {
                    Item::ProposedContext { id, sub_items }
                } else {
                    Item::AcceptedContext {
                        id,
                        result,
                        sub_items,
                    }
                }
            }
            0x50 => Item::UserInformation(decode_sub_items(&mut item)?),
            _ => Item::Other(SubItem {
                kind,
                value: item.rest().to_vec(),
            }),
        });
    }
    Ok(Associate {
        protocol_version,
        called_ae,
        calling_ae,
        items,
    })
}

fn decode_sub_items(r: &mut Reader<'_>) -> Result<Vec<SubItem>, PduError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let kind = r.u8()?;
        r.u8()?;
        let len = usize::from(r.u16()?);
        let value = r.sub(len, "sub-item")?.rest().to_vec();
        out.push(SubItem { kind, value });
    }
    Ok(out)
}

fn decode_pdvs(r: &mut Reader<'_>) -> Result<Vec<Pdv>, PduError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = usize::try_from(r.u32()?).map_err(|_| malformed("PDV", "length"))?;
        if len < 2 {
            return Err(malformed("PDV", format!("item length {len} < 2")));
        }
        let mut pdv = r.sub(len, "presentation data value")?;
        let context_id = pdv.u8()?;
        let control = pdv.u8()?;
        out.push(Pdv {
            context_id,
            control,
            data: pdv.rest().to_vec(),
        });
    }
    if out.is_empty() {
        return Err(malformed("P-DATA-TF", "no presentation data value"));
    }
    Ok(out)
}

fn push_item(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(value);
}

fn encode_sub_items(sub_items: &[SubItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in sub_items {
        push_item(&mut out, s.kind, &s.value);
    }
    out
}

fn encode_associate(a: &Associate) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&a.protocol_version.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&a.called_ae);
    out.extend_from_slice(&a.calling_ae);
    out.extend_from_slice(&[0; 32]);
    for item in &a.items {
        match item {
            Item::ApplicationContext(name) => push_item(&mut out, 0x10, name),
            Item::ProposedContext { id, sub_items } => {
                let mut value = vec![*id, 0, 0, 0];
                value.extend(encode_sub_items(sub_items));
                push_item(&mut out, 0x20, &value);
            }
            Item::AcceptedContext {
                id,
                result,
                sub_items,
            } => {
                let mut value = vec![*id, 0, *result, 0];
                value.extend(encode_sub_items(sub_items));
                push_item(&mut out, 0x21, &value);
            }
            Item::UserInformation(sub_items) => {
                push_item(&mut out, 0x50, &encode_sub_items(sub_items))
            }
            Item::Other(s) => push_item(&mut out, s.kind, &s.value),
        }
    }
    out
}

/// An AE title as PS3.5 compares it: leading and trailing spaces (and NUL padding some
/// senders use) are not significant.
pub fn ae_text(ae: &[u8; 16]) -> String {
    let trimmed = trim_uid_padding(ae);
    String::from_utf8_lossy(trimmed.trim_ascii()).into_owned()
}

/// A 16-byte AE field, space-padded.
pub fn ae_field(text: &str) -> [u8; 16] {
    let mut out = [b' '; 16];
    for (slot, byte) in out.iter_mut().zip(text.bytes()) {
        *slot = byte;
    }
    out
}

/// A UID value without the trailing NUL (or space) padding to an even length.
pub fn trim_uid_padding(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .rposition(|b| *b != 0 && *b != b' ')
        .map_or(0, |i| i + 1);
    &value[..end]
}

impl Associate {
    pub fn application_context(&self) -> Option<&[u8]> {
        self.items.iter().find_map(|i| match i {
            Item::ApplicationContext(name) => Some(trim_uid_padding(name)),
            _ => None,
        })
    }

    /// The maximum length sub-item of the user information, if any (0: no limit).
    pub fn maximum_length(&self) -> Option<u32> {
        self.user_sub_items()
            .find(|s| s.kind == sub::MAXIMUM_LENGTH)
            .and_then(|s| <[u8; 4]>::try_from(s.value.as_slice()).ok())
            .map(u32::from_be_bytes)
    }

    /// The user information sub-items, in order.
    pub fn user_sub_items(&self) -> impl Iterator<Item = &SubItem> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::UserInformation(subs) => Some(subs.iter()),
                _ => None,
            })
            .flatten()
    }

    /// Removes every user information sub-item of `kind`; how many there were.
    pub fn remove_user_sub_items(&mut self, kind: u8) -> usize {
        let mut removed = 0;
        for item in &mut self.items {
            if let Item::UserInformation(subs) = item {
                let before = subs.len();
                subs.retain(|s| s.kind != kind);
                removed += before - subs.len();
            }
        }
        removed
    }

    /// Appends a user information sub-item (to the first user information item, made
    /// if there is none).
    pub fn push_user_sub_item(&mut self, sub_item: SubItem) {
        for item in &mut self.items {
            if let Item::UserInformation(subs) = item {
                subs.push(sub_item);
                return;
            }
        }
        self.items.push(Item::UserInformation(vec![sub_item]));
    }

    /// States `limit` as the maximum P-DATA length this side receives: a stated length of
    /// 0 (unlimited) or one above `limit` becomes `limit`; one is added where missing.
    pub fn cap_maximum_length(&mut self, limit: u32) {
        let capped = match self.maximum_length() {
            Some(n) if n != 0 && n <= limit => n,
            _ => limit,
        };
        let value = capped.to_be_bytes().to_vec();
        for item in &mut self.items {
            if let Item::UserInformation(subs) = item {
                match subs.iter_mut().find(|s| s.kind == sub::MAXIMUM_LENGTH) {
                    Some(s) => s.value = value,
                    None => subs.insert(
                        0,
                        SubItem {
                            kind: sub::MAXIMUM_LENGTH,
                            value,
                        },
                    ),
                }
                return;
            }
        }
        self.items.push(Item::UserInformation(vec![SubItem {
            kind: sub::MAXIMUM_LENGTH,
            value,
        }]));
    }
}

/// The abstract syntax and transfer syntaxes of a proposed context's sub-items.
pub fn proposed_syntaxes(sub_items: &[SubItem]) -> (Option<&[u8]>, Vec<&[u8]>) {
    let mut abstract_syntax = None;
    let mut transfer = Vec::new();
    for s in sub_items {
        match s.kind {
            sub::ABSTRACT_SYNTAX => abstract_syntax = Some(trim_uid_padding(&s.value)),
            sub::TRANSFER_SYNTAX => transfer.push(trim_uid_padding(&s.value)),
            _ => {}
        }
    }
    (abstract_syntax, transfer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rq() -> Pdu {
        Pdu::AssociateRq(Associate {
            protocol_version: 1,
            called_ae: ae_field("PACS"),
            calling_ae: ae_field("CT1"),
            items: vec![
                Item::ApplicationContext(DICOM_APPLICATION_CONTEXT.to_vec()),
                Item::ProposedContext {
                    id: 1,
                    sub_items: vec![
                        SubItem {
                            kind: sub::ABSTRACT_SYNTAX,
                            value: b"1.2.840.10008.1.1".to_vec(),
                        },
                        SubItem {
                            kind: sub::TRANSFER_SYNTAX,
                            value: b"1.2.840.10008.1.2".to_vec(),
                        },
                    ],
                },
                Item::UserInformation(vec![SubItem {
                    kind: sub::MAXIMUM_LENGTH,
                    value: 16384u32.to_be_bytes().to_vec(),
                }]),
            ],
        })
    }

    #[test]
    fn every_pdu_type_round_trips() {
        let pdus = [
            rq(),
            Pdu::AssociateRj(Rejection::by_user(3)),
            Pdu::PData(vec![Pdv {
                context_id: 1,
                control: 3,
                data: vec![1, 2, 3],
            }]),
            Pdu::ReleaseRq,
            Pdu::ReleaseRp,
            Pdu::Abort(Abort {
                source: 2,
                reason: 0,
            }),
        ];
        for pdu in pdus {
            let bytes = pdu.encode();
            assert_eq!(Pdu::decode(&bytes), Ok(pdu.clone()));
            assert_eq!(Pdu::decode(&bytes).map(|p| p.encode()), Ok(bytes));
        }
    }

    #[test]
    fn every_prefix_of_a_pdu_is_an_error_not_a_panic() {
        let bytes = rq().encode();
        for n in 0..bytes.len() {
            assert!(Pdu::decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn a_length_at_the_limit_is_read_and_one_past_it_refused_from_the_header() {
        let at = MAX_PDU_LENGTH.to_be_bytes();
        let head = [4, 0, at[0], at[1], at[2], at[3]];
        assert_eq!(header(&head, MAX_PDU_LENGTH), Ok((4, MAX_PDU_LENGTH)));
        let past = (MAX_PDU_LENGTH + 1).to_be_bytes();
        let head = [4, 0, past[0], past[1], past[2], past[3]];
        assert!(matches!(
            header(&head, MAX_PDU_LENGTH),
            Err(PduError::TooLong { .. })
        ));
        // The declared length is never trusted for allocation: 4 GiB declared, 6 bytes given.
        let head = [4, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(Pdu::decode(&head).is_err());
    }

    #[test]
    fn an_association_pdu_has_its_own_bound_checked_from_the_header() {
        let at = MAX_ASSOCIATE_LENGTH.to_be_bytes();
        let head = [1, 0, at[0], at[1], at[2], at[3]];
        assert_eq!(header(&head, 4096), Ok((1, MAX_ASSOCIATE_LENGTH)));
        let past = (MAX_ASSOCIATE_LENGTH + 1).to_be_bytes();
        let head = [2, 0, past[0], past[1], past[2], past[3]];
        assert!(matches!(header(&head, 4096), Err(PduError::TooLong { .. })));
        // Any other PDU is held to the caller's (smaller) limit.
        let head = [4, 0, 0, 0, 0x10, 1];
        assert!(matches!(header(&head, 4096), Err(PduError::TooLong { .. })));
    }

    #[test]
    fn more_presentation_contexts_than_the_standard_allows_are_refused() {
        let context = Item::ProposedContext {
            id: 1,
            sub_items: vec![],
        };
        let mut a = Associate {
            protocol_version: 1,
            called_ae: ae_field("A"),
            calling_ae: ae_field("B"),
            items: vec![context.clone(); MAX_PRESENTATION_CONTEXTS],
        };
        assert!(Pdu::decode(&Pdu::AssociateRq(a.clone()).encode()).is_ok());
        a.items.push(context);
        assert!(Pdu::decode(&Pdu::AssociateRq(a).encode()).is_err());
    }

    #[test]
    fn a_pdv_shorter_than_its_header_and_an_empty_p_data_are_errors() {
        assert!(Pdu::decode(&[4, 0, 0, 0, 0, 4, 0, 0, 0, 1]).is_err());
        assert!(Pdu::decode(&[4, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn the_maximum_length_is_capped_and_added_where_missing() {
        let Pdu::AssociateRq(mut a) = rq() else {
            unreachable!()
        };
        a.cap_maximum_length(8192);
        assert_eq!(a.maximum_length(), Some(8192));
        a.cap_maximum_length(65536);
        assert_eq!(a.maximum_length(), Some(8192));
        a.items.retain(|i| !matches!(i, Item::UserInformation(_)));
        a.cap_maximum_length(4096);
        assert_eq!(a.maximum_length(), Some(4096));
    }

    /// A small deterministic generator (xorshift): proptest would bring a second major
    /// version of rand_core into the lock, so random valid PDUs are made here.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn bytes(&mut self, max: u64) -> Vec<u8> {
            let n = self.below(max + 1);
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn sub_items(&mut self) -> Vec<SubItem> {
            (0..self.below(5))
                .map(|_| SubItem {
                    kind: self.next() as u8,
                    value: self.bytes(40),
                })
                .collect()
        }
        fn ae(&mut self) -> [u8; 16] {
            let mut out = [0u8; 16];
            out.iter_mut().for_each(|b| *b = self.next() as u8);
            out
        }
        fn pdu(&mut self) -> Pdu {
            match self.below(7) {
                0 | 1 => {
                    let items = (0..self.below(8))
                        .map(|_| match self.below(5) {
                            0 => Item::ApplicationContext(self.bytes(64)),
                            1 => Item::ProposedContext {
                                id: self.next() as u8,
                                sub_items: self.sub_items(),
                            },
                            2 => Item::AcceptedContext {
                                id: self.next() as u8,
                                result: self.next() as u8,
                                sub_items: self.sub_items(),
                            },
                            3 => Item::UserInformation(self.sub_items()),
                            _ => Item::Other(SubItem {
                                // Not one of the types decoded into their own variant.
                                kind: 0x60 | (self.next() as u8 & 0x0f),
                                value: self.bytes(40),
                            }),
                        })
                        .collect();
                    let a = Associate {
                        protocol_version: self.next() as u16,
                        called_ae: self.ae(),
                        calling_ae: self.ae(),
                        items,
                    };
                    if self.below(2) == 0 {
                        Pdu::AssociateRq(a)
                    } else {
                        Pdu::AssociateAc(a)
                    }
                }
                2 => Pdu::AssociateRj(Rejection {
                    result: self.next() as u8,
                    source: self.next() as u8,
                    reason: self.next() as u8,
                }),
                3 => Pdu::PData(
                    (0..1 + self.below(4))
                        .map(|_| Pdv {
                            context_id: self.next() as u8,
                            control: self.next() as u8,
                            data: self.bytes(300),
                        })
                        .collect(),
                ),
                4 => Pdu::ReleaseRq,
                5 => Pdu::ReleaseRp,
                _ => Pdu::Abort(Abort {
                    source: self.next() as u8,
                    reason: self.next() as u8,
                }),
            }
        }
    }

    #[test]
    fn random_valid_pdus_round_trip_byte_for_byte_and_their_mutations_never_panic() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let pdu = g.pdu();
            let bytes = pdu.encode();
            let decoded = Pdu::decode(&bytes);
            assert_eq!(decoded.as_ref(), Ok(&pdu));
            assert_eq!(decoded.map(|p| p.encode()), Ok(bytes.clone()));
            // Flip a byte, cut, or extend: an answer, never a panic.
            let mut mutated = bytes.clone();
            let at = g.below(mutated.len() as u64) as usize;
            mutated[at] ^= (g.next() as u8) | 1;
            let _ = Pdu::decode(&mutated);
            let _ = Pdu::decode(&bytes[..at]);
            mutated.push(0);
            let _ = Pdu::decode(&mutated);
        }
    }
}
