//! Just enough DIMSE (PS3.7) to see C-STORE data sets in a stream of P-DATA: command sets
//! are read, data sets of C-STORE requests are reassembled from their fragments, bounded.
//! The bytes relayed are never rebuilt from this: it is a tap beside the relay.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::pdu::Pdv;

/// The largest command set reassembled. A command set is a handful of short elements
/// (PS3.7 E.1); one over this is not read (the data set after it is still relayed).
pub const MAX_COMMAND_SET_BYTES: usize = 64 * 1024;

/// The command field of a C-STORE-RQ (PS3.7 Table E.1-1).
pub const C_STORE_RQ: u16 = 0x0001;
/// The command field of a C-STORE-RSP.
pub const C_STORE_RSP: u16 = 0x8001;
/// Query/retrieve requests (PS3.7 E.1), recorded as queries (DICOM 110112).
pub const C_FIND_RQ: u16 = 0x0020;
pub const C_GET_RQ: u16 = 0x0010;
pub const C_MOVE_RQ: u16 = 0x0021;
/// C-CANCEL-RQ: a request that is never answered (PS3.7 9.3.2.3).
pub const C_CANCEL_RQ: u16 = 0x0fff;
/// The bit of a command field that makes it a response (PS3.7 Table E.1-1).
const RESPONSE_BIT: u16 = 0x8000;

/// The name of a request's service as the records say it ("C-ECHO-RQ"), or its command
/// field in hex for one the gateway has no name for.
pub fn request_name(field: u16) -> String {
    let name = match field {
        C_STORE_RQ => "C-STORE-RQ",
        0x0030 => "C-ECHO-RQ",
        0x0100 => "N-EVENT-REPORT-RQ",
        0x0110 => "N-GET-RQ",
        0x0120 => "N-SET-RQ",
        0x0130 => "N-ACTION-RQ",
        0x0140 => "N-CREATE-RQ",
        0x0150 => "N-DELETE-RQ",
        other => {
            return query_name(other)
                .map_or_else(|| format!("command {other:#06x}"), str::to_owned);
        }
    };
    name.to_owned()
}

/// A response of any service.
pub fn is_response(field: u16) -> bool {
    field & RESPONSE_BIT != 0
}

/// A request the other side owes an answer to: every request but C-CANCEL.
pub fn is_answered_request(field: u16) -> bool {
    !is_response(field) && field != C_CANCEL_RQ
}

/// The name of a query/retrieve request's command field, `None` for other commands.
pub fn query_name(field: u16) -> Option<&'static str> {
    match field {
        C_FIND_RQ => Some("C-FIND-RQ"),
        C_GET_RQ => Some("C-GET-RQ"),
        C_MOVE_RQ => Some("C-MOVE-RQ"),
        _ => None,
    }
}
/// Command Data Set Type value meaning "no data set follows".
const NO_DATA_SET: u16 = 0x0101;

/// The elements of a command set the gateway looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub field: u16,
    pub affected_sop_class: String,
    pub affected_sop_instance: String,
    /// (0000,0003) of the N- services.
    pub requested_sop_class: String,
    pub has_data_set: bool,
    /// (0000,0900) of a response.
    pub status: Option<u16>,
    /// (0000,0110) Message ID of a request: what its response names.
    pub message_id: Option<u16>,
    /// (0000,0120) Message ID Being Responded To, of a response.
    pub responding_to: Option<u16>,
    /// (0000,0600) Move Destination of a C-MOVE-RQ: the AE title the instances go to
    /// (where a retrieve sends a study is what its record must say).
    pub move_destination: String,
}

/// Reads a command set (implicit VR little endian, PS3.7 6.3.1). `None` when it is not
/// one a receiver must read the same way: a truncated element, an element of another
/// group, elements not in strictly increasing order (so none twice: PS3.7 6.3.1 says each
/// occurs at most once, in order), a US element whose value is not 2 bytes, or no Command
/// Field. Receivers differ on such sets (DCMTK keeps the first of two Command Fields, a
/// last-wins reader the second), so the gateway must not guess which one the upstream
/// will act on.
pub fn parse_command(bytes: &[u8]) -> Option<Command> {
    let mut command = Command {
        has_data_set: true,
        ..Command::default()
    };
    let mut field = None;
    let mut previous: Option<u16> = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let head = rest.get(..8)?;
        let group = u16::from_le_bytes([head[0], head[1]]);
        let element = u16::from_le_bytes([head[2], head[3]]);
        let len = usize::try_from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])).ok()?;
        let value = rest.get(8..8usize.checked_add(len)?)?;
        rest = &rest[8 + len..];
        if group != 0 || previous.is_some_and(|p| p >= element) {
            return None;
        }
        previous = Some(element);
        let text = || String::from_utf8_lossy(crate::pdu::trim_uid_padding(value)).into_owned();
        let short = || <[u8; 2]>::try_from(value).ok().map(u16::from_le_bytes);
        match element {
            0x0002 => command.affected_sop_class = text(),
            0x0003 => command.requested_sop_class = text(),
            0x1000 => command.affected_sop_instance = text(),
            0x0100 => field = Some(short()?),
            0x0110 => command.message_id = Some(short()?),
            0x0120 => command.responding_to = Some(short()?),
            0x0600 => {
                command.move_destination = String::from_utf8_lossy(value).trim().to_owned();
            }
            0x0800 => command.has_data_set = short()? != NO_DATA_SET,
            0x0900 => command.status = Some(short()?),
            _ => {}
        }
    }
    command.field = field?;
    Some(command)
}

/// Why the gateway cannot follow a direction's DIMSE messages. Each is a breach of PS3.7
/// or PS3.8 Annex E that a lenient receiver may still act on, storing a data set the
/// gateway did not see as a C-STORE: the association is aborted instead of relayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(
        "the command set on presentation context {0} cannot be read unambiguously (truncated, an element repeated, out of order or of another group, a wrong value length, or no Command Field)"
    )]
    UnreadableCommand(u8),
    #[error(
        "the command set on presentation context {0} is larger than {MAX_COMMAND_SET_BYTES} bytes"
    )]
    CommandTooLong(u8),
    #[error(
        "a data set fragment on presentation context {0} where no command announced a data set"
    )]
    UnannouncedDataSet(u8),
    #[error(
        "a command fragment on presentation context {0} while the data set of the message before was still due"
    )]
    CommandInDataSet(u8),
    #[error(
        "a fragment on presentation context {got} while the message on context {open} was not complete (PS3.8 E.1: messages are not interleaved)"
    )]
    Interleaved { open: u8, got: u8 },
    #[error(
        "a C-STORE-RQ on presentation context {0} whose Command Data Set Type says no data set follows (a C-STORE must carry a data set, PS3.7 9.3.1.1)"
    )]
    StoreWithoutDataSet(u8),
    #[error(
        "the command on presentation context {context} names SOP class {command:?}, the context was negotiated for {negotiated} (PS3.7: a refused SOP class may not ride another context)"
    )]
    SopClassMismatch {
        context: u8,
        command: String,
        negotiated: String,
    },
}

/// Data set bytes held for screening by every association together: each data set
/// takes its bytes from this budget as they arrive and gives them back once screened.
/// Several associations (or one that interleaves data sets on many presentation
/// contexts) cannot hold more; past it a data set is relayed and reported
/// `not-inspected`.
#[derive(Debug)]
pub struct MemoryBudget {
    cap: u64,
    held: AtomicU64,
    /// A peer's share takes from the budget of all peers too (see [`MemoryBudget::share`]).
    parent: Option<Arc<MemoryBudget>>,
}

impl MemoryBudget {
    pub fn new(cap: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            cap,
            held: AtomicU64::new(0),
            parent: None,
        })
    }

    /// A share of `parent` of at most `cap` bytes (one peer's): what it takes is taken
    /// from both, so one peer cannot hold the whole of `parent`.
    pub fn share(parent: &Arc<MemoryBudget>, cap: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            cap,
            held: AtomicU64::new(0),
            parent: Some(Arc::clone(parent)),
        })
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self, n: u64) -> bool {
        let own = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|total| *total <= self.cap)
            })
            .is_ok();
        if !own {
            return false;
        }
        if let Some(parent) = &self.parent
            && !parent.take(n)
        {
            self.give_own(n);
            return false;
        }
        true
    }

    fn give_own(&self, n: u64) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(n))
            });
    }

    fn give(&self, n: u64) {
        self.give_own(n);
        if let Some(parent) = &self.parent {
            parent.give(n);
        }
    }
}

/// Bytes taken from a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    pub(crate) fn new(budget: &Arc<MemoryBudget>) -> Reservation {
        Reservation {
            budget: Arc::clone(budget),
            bytes: 0,
        }
    }

    pub(crate) fn grow(&mut self, n: u64) -> bool {
        let ok = self.budget.take(n);
        if ok {
            self.bytes += n;
        }
        ok
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

/// Why a data set was relayed without being kept for screening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// Larger than the per-data-set limit.
    TooLarge,
    /// The shared [`MemoryBudget`], or the peer's share of it, was spent by data sets
    /// in flight.
    MemoryBudget,
}

/// A C-STORE data set seen whole (or counted and hashed whole, when it was not kept).
#[derive(Debug)]
pub struct Instance {
    pub context_id: u8,
    pub sop_class: String,
    pub sop_instance: String,
    /// The request's Message ID (what a C-STORE-RSP answering it names).
    pub message_id: Option<u16>,
    pub size: u64,
    pub sha256: [u8; 32],
    /// The data set's bytes, or why they were not kept.
    pub bytes: Result<Vec<u8>, Skipped>,
    /// Holds the bytes' share of the memory budget until the instance is dropped.
    pub reservation: Option<Reservation>,
    /// False when the association ended before the data set's last fragment.
    pub complete: bool,
}

#[derive(Debug, Default)]
struct Context {
    command: Vec<u8>,
    /// The C-STORE whose data set is arriving.
    store: Option<Command>,
    /// Another request whose data set is arriving: counted once it is whole (its
    /// receiver cannot answer before).
    request: Option<Command>,
    /// A command announced a data set (of any service) not yet complete.
    awaiting_data: bool,
    data: Vec<u8>,
    data_size: u64,
    skipped: Option<Skipped>,
    reservation: Option<Reservation>,
    hash: Sha256,
}

/// Reassembles the C-STORE data sets of one direction of one association.
#[derive(Debug)]
pub struct Assembler {
    /// Bytes of one data set kept for inspection; past it the rest is hashed only.
    limit: usize,
    budget: Arc<MemoryBudget>,
    contexts: HashMap<u8, Context>,
    /// Responses of every service seen since [`Assembler::take_responses`].
    responses: Vec<Command>,
    /// Requests other than C-STORE that are answered, seen whole (command and data
    /// set) since [`Assembler::take_requests`] (at most one per command set read, so as
    /// many as the PDU held: bounded by the PDU). A C-STORE is counted by the relay once
    /// its data set is whole (or once screened, on a refusing route).
    requests: Vec<Command>,
    /// The context whose message has begun and is not complete: no other may be used
    /// until it is (PS3.8 E.1).
    open: Option<u8>,
    /// The abstract syntax each accepted context was negotiated for; a command naming
    /// another SOP class is a [`Violation`]. Empty: not checked.
    negotiated: HashMap<u8, String>,
}

impl Assembler {
    pub fn new(limit: usize, budget: Arc<MemoryBudget>) -> Self {
        Assembler {
            limit,
            budget,
            contexts: HashMap::new(),
            responses: Vec::new(),
            requests: Vec::new(),
            open: None,
            negotiated: HashMap::new(),
        }
    }

    /// The abstract syntax of each accepted presentation context, to hold commands to.
    #[must_use]
    pub fn with_contexts(mut self, negotiated: HashMap<u8, String>) -> Self {
        self.negotiated = negotiated;
        self
    }

    /// A command whose SOP class is not its context's: refused SOP classes would
    /// otherwise ride an accepted context.
    fn check_sop_class(&self, context_id: u8, command: &Command) -> Result<(), Violation> {
        let Some(negotiated) = self.negotiated.get(&context_id) else {
            return Ok(());
        };
        let named = [&command.affected_sop_class, &command.requested_sop_class];
        let store_without_class =
            command.field == C_STORE_RQ && command.affected_sop_class.is_empty();
        match named
            .into_iter()
            .find(|c| !c.is_empty() && *c != negotiated)
        {
            Some(other) => Err(Violation::SopClassMismatch {
                context: context_id,
                command: other.clone(),
                negotiated: negotiated.clone(),
            }),
            None if store_without_class => Err(Violation::SopClassMismatch {
                context: context_id,
                command: String::new(),
                negotiated: negotiated.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The responses seen since the last call (at most one per command set, so bounded
    /// by the PDVs pushed).
    pub fn take_responses(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.responses)
    }

    /// The requests other than C-STORE that are answered (C-ECHO, C-FIND, C-GET,
    /// C-MOVE, the N- services) seen since the last call.
    pub fn take_requests(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.requests)
    }

    /// Takes one PDV; returns the instance whose data set it completed, if any, or the
    /// [`Violation`] that makes the stream impossible to follow (the caller aborts).
    pub fn push(&mut self, pdv: &Pdv) -> Result<Option<Instance>, Violation> {
        let id = pdv.context_id;
        if let Some(open) = self.open
            && open != id
        {
            return Err(Violation::Interleaved { open, got: id });
        }
        self.open = Some(id);
        let context = self.contexts.entry(id).or_default();
        if pdv.is_command() {
            if context.awaiting_data {
                return Err(Violation::CommandInDataSet(id));
            }
            if context.command.len() + pdv.data.len() > MAX_COMMAND_SET_BYTES {
                return Err(Violation::CommandTooLong(id));
            }
            context.command.extend_from_slice(&pdv.data);
            if pdv.is_last() {
                let parsed = parse_command(&context.command);
                context.command.clear();
                let parsed = parsed.ok_or(Violation::UnreadableCommand(id))?;
                self.check_sop_class(id, &parsed)?;
                // Review rv44-gate case22: relayed, it made the archive store a 0-byte
                // instance, and the data set sent after it (a PE) was the receiver's to
                // read as it liked. No receiver can store what it says, so it is not
                // followed: the PDU is not relayed and the association aborted.
                if parsed.field == C_STORE_RQ && !parsed.has_data_set {
                    return Err(Violation::StoreWithoutDataSet(id));
                }
                let context = self.contexts.entry(id).or_default();
                let request = (parsed.field != C_STORE_RQ && is_answered_request(parsed.field))
                    .then(|| parsed.clone());
                if is_response(parsed.field) {
                    self.responses.push(parsed.clone());
                }
                context.awaiting_data = parsed.has_data_set;
                if !parsed.has_data_set {
                    self.open = None;
                    self.requests.extend(request);
                    context.request = None;
                } else {
                    context.request = request;
                }
                context.store = Some(parsed).filter(|c| c.field == C_STORE_RQ && c.has_data_set);
                context.data = Vec::new();
                context.data_size = 0;
                context.skipped = None;
                context.reservation = Some(Reservation::new(&self.budget));
                context.hash = Sha256::new();
            }
            return Ok(None);
        }
        if !context.awaiting_data {
            return Err(Violation::UnannouncedDataSet(id));
        }
        if pdv.is_last() {
            context.awaiting_data = false;
            self.open = None;
            self.requests.extend(context.request.take());
        }
        if context.store.is_none() {
            // The data set of another service (a C-FIND identifier, ...): relayed as is.
            return Ok(None);
        }
        context.hash.update(&pdv.data);
        context.data_size += pdv.data.len() as u64;
        if context.skipped.is_none() {
            let growth = pdv.data.len() as u64;
            if context.data.len() + pdv.data.len() > self.limit {
                context.skipped = Some(Skipped::TooLarge);
            } else if !context.reservation.as_mut().is_some_and(|r| r.grow(growth)) {
                context.skipped = Some(Skipped::MemoryBudget);
            } else {
                context.data.extend_from_slice(&pdv.data);
            }
            if context.skipped.is_some() {
                context.data = Vec::new();
                context.reservation = None;
            }
        }
        if !pdv.is_last() {
            return Ok(None);
        }
        Ok(context.take_instance(id, true))
    }

    /// A message has begun and its last fragment has not arrived.
    pub fn mid_message(&self) -> bool {
        self.open.is_some()
    }

    /// The C-STORE data set still arriving when the association ended (its last
    /// fragment never came): what arrived was relayed all the same, so it is screened
    /// and recorded like a whole one, marked incomplete.
    pub fn unfinished(&mut self) -> Option<Instance> {
        let id = self.open.take()?;
        self.contexts.get_mut(&id)?.take_instance(id, false)
    }
}

impl Context {
    /// The C-STORE whose data set this context holds, as an instance.
    fn take_instance(&mut self, id: u8, complete: bool) -> Option<Instance> {
        let command = self.store.take()?;
        self.awaiting_data = false;
        let hash = std::mem::take(&mut self.hash);
        let bytes = std::mem::take(&mut self.data);
        Some(Instance {
            context_id: id,
            sop_class: command.affected_sop_class,
            sop_instance: command.affected_sop_instance,
            message_id: command.message_id,
            size: std::mem::take(&mut self.data_size),
            sha256: hash.finalize().into(),
            bytes: match self.skipped.take() {
                Some(why) => Err(why),
                None => Ok(bytes),
            },
            reservation: self.reservation.take(),
            complete,
        })
    }
}

/// The command set of a C-STORE-RSP (PS3.7 9.3.1.2, implicit VR little endian): the
/// gateway's own answer to a C-STORE it does not forward. `comment` becomes the Error
/// Comment (0000,0902), cut to its 64 characters (LO).
pub fn store_response(
    sop_class: &str,
    sop_instance: &str,
    message_id: u16,
    status: u16,
    comment: &str,
) -> Vec<u8> {
    fn element(out: &mut Vec<u8>, tag: u16, value: &[u8], pad: u8) {
        let padded = value.len() + value.len() % 2;
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&u32::try_from(padded).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(value);
        if value.len() % 2 == 1 {
            out.push(pad);
        }
    }
    let comment: String = comment
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '\\')
        .take(64)
        .collect();
    let mut body = Vec::new();
    element(&mut body, 0x0002, sop_class.as_bytes(), 0);
    element(&mut body, 0x0100, &C_STORE_RSP.to_le_bytes(), 0);
    element(&mut body, 0x0120, &message_id.to_le_bytes(), 0);
    element(&mut body, 0x0800, &NO_DATA_SET.to_le_bytes(), 0);
    element(&mut body, 0x0900, &status.to_le_bytes(), 0);
    if !comment.is_empty() {
        element(&mut body, 0x0902, comment.as_bytes(), b' ');
    }
    element(&mut body, 0x1000, sop_instance.as_bytes(), 0);
    let mut out = Vec::with_capacity(body.len() + 12);
    element(
        &mut out,
        0x0000,
        &u32::try_from(body.len()).unwrap_or(0).to_le_bytes(),
        0,
    );
    out.extend_from_slice(&body);
    out
}

/// A DICOM Part 10 file of a data set received over the network: a zero preamble, `DICM`
/// and a File Meta group naming the SOP class and instance and the transfer syntax the
/// data set came in (PS3.10 7.1). This is what is screened and what the quarantine keeps,
/// so that any DICOM reader opens the copy.
pub fn part10(sop_class: &str, sop_instance: &str, transfer_syntax: &str, data: &[u8]) -> Vec<u8> {
    /// PacsGuard's implementation class UID (a UUID-derived 2.25 UID).
    const IMPLEMENTATION_CLASS_UID: &str = "2.25.262113318453702349961853829106473105512";
    let mut meta = Vec::new();
    let mut element = |elem: u16, vr: &[u8; 2], value: &[u8]| {
        let mut value = value.to_vec();
        if value.len() % 2 == 1 {
            value.push(if vr == b"UI" { 0 } else { b' ' });
        }
        meta.extend_from_slice(&2u16.to_le_bytes());
        meta.extend_from_slice(&elem.to_le_bytes());
        meta.extend_from_slice(vr);
        if vr == b"OB" {
            meta.extend_from_slice(&[0, 0]);
            meta.extend_from_slice(&u32::try_from(value.len()).unwrap_or(0).to_le_bytes());
        } else {
            meta.extend_from_slice(&u16::try_from(value.len()).unwrap_or(0).to_le_bytes());
        }
        meta.extend_from_slice(&value);
    };
    element(0x0001, b"OB", &[0, 1]);
    element(0x0002, b"UI", sop_class.as_bytes());
    element(0x0003, b"UI", sop_instance.as_bytes());
    element(0x0010, b"UI", transfer_syntax.as_bytes());
    element(0x0012, b"UI", IMPLEMENTATION_CLASS_UID.as_bytes());
    let mut out = Vec::with_capacity(144 + meta.len() + data.len());
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    out.extend_from_slice(&[2, 0, 0, 0, b'U', b'L', 4, 0]);
    out.extend_from_slice(&u32::try_from(meta.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_own_store_response_reads_back_as_one() {
        // An odd UID (padded with NUL) and a comment of 70 characters (cut to 64, LO).
        let comment = "x".repeat(70);
        let rsp = store_response("1.2.840.10008.5.1.4.1.1.2", "1.2.3", 7, 0xc000, &comment);
        let read = parse_command(&rsp).expect("a valid command set");
        assert_eq!(read.field, C_STORE_RSP);
        assert_eq!(read.status, Some(0xc000));
        assert_eq!(read.affected_sop_class, "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(read.affected_sop_instance, "1.2.3");
        assert!(!read.has_data_set);
        // Group length: the bytes after its own element.
        let length = u32::from_le_bytes([rsp[8], rsp[9], rsp[10], rsp[11]]);
        assert_eq!(length as usize, rsp.len() - 12);
        assert!(rsp.windows(64).any(|w| w == "x".repeat(64).as_bytes()));
        assert!(!rsp.windows(65).any(|w| w == "x".repeat(65).as_bytes()));
        // Every element has an even length.
        assert_eq!(rsp.len() % 2, 0);
    }

    fn element(out: &mut Vec<u8>, elem: u16, value: &[u8]) {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }

    fn store_command() -> Vec<u8> {
        let mut c = Vec::new();
        element(&mut c, 0x0002, b"1.2.840.10008.5.1.4.1.1.2\0");
        element(&mut c, 0x0100, &1u16.to_le_bytes());
        element(&mut c, 0x0800, &0u16.to_le_bytes());
        element(&mut c, 0x1000, b"1.2.3.4");
        c
    }

    /// A C-ECHO-RQ: no data set follows.
    fn echo_command() -> Vec<u8> {
        let mut c = Vec::new();
        element(&mut c, 0x0002, b"1.2.840.10008.1.1\0");
        element(&mut c, 0x0100, &0x0030u16.to_le_bytes());
        element(&mut c, 0x0800, &NO_DATA_SET.to_le_bytes());
        c
    }

    fn pdv(control: u8, data: &[u8]) -> Pdv {
        Pdv {
            context_id: 1,
            control,
            data: data.to_vec(),
        }
    }

    #[test]
    fn a_fragmented_c_store_is_reassembled_with_its_uids() {
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        let command = store_command();
        assert!(a.push(&pdv(1, &command[..10])).expect("valid").is_none());
        assert!(a.push(&pdv(3, &command[10..])).expect("valid").is_none());
        assert!(a.push(&pdv(0, b"abc")).expect("valid").is_none());
        let instance = a.push(&pdv(2, b"def")).expect("valid").expect("complete");
        assert_eq!(instance.sop_instance, "1.2.3.4");
        assert_eq!(instance.sop_class, "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(instance.bytes.as_deref(), Ok(&b"abcdef"[..]));
        assert_eq!(instance.sha256, <[u8; 32]>::from(Sha256::digest(b"abcdef")));
    }

    /// Review r28-gateway: a request is owed an answer once its receiver has it whole:
    /// a C-FIND's identifier arriving slowly does not start its answer deadline; a
    /// C-ECHO (no data set) is whole with its command; a C-CANCEL is never answered.
    #[test]
    fn requests_are_counted_once_whole_and_cancels_never() {
        let command = |field: u16, data_set: bool| {
            let mut c = Vec::new();
            element(&mut c, 0x0100, &field.to_le_bytes());
            element(&mut c, 0x0110, &7u16.to_le_bytes());
            let kind: u16 = if data_set { 0x0000 } else { NO_DATA_SET };
            element(&mut c, 0x0800, &kind.to_le_bytes());
            c
        };
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        a.push(&pdv(3, &command(C_FIND_RQ, true))).expect("valid");
        assert_eq!(a.take_requests(), [], "its identifier has not come");
        a.push(&pdv(0, b"ab")).expect("valid");
        assert_eq!(a.take_requests(), [], "nor all of it");
        a.push(&pdv(2, b"cd")).expect("valid");
        let whole = a.take_requests();
        assert_eq!(
            whole
                .iter()
                .map(|c| (c.field, c.message_id))
                .collect::<Vec<_>>(),
            [(C_FIND_RQ, Some(7))]
        );
        a.push(&pdv(3, &command(C_CANCEL_RQ, false)))
            .expect("valid");
        a.push(&pdv(3, &command(0x0030, false))).expect("valid");
        assert_eq!(
            a.take_requests()
                .iter()
                .map(|c| c.field)
                .collect::<Vec<_>>(),
            [0x0030],
            "the C-ECHO, not the C-CANCEL"
        );
        a.push(&pdv(3, &command(0x8030, false))).expect("valid");
        assert_eq!(a.take_responses().len(), 1, "a C-ECHO-RSP is a response");
    }

    #[test]
    fn a_data_set_at_the_limit_is_kept_and_one_byte_over_is_hashed_only() {
        for (size, kept) in [(8usize, true), (9, false)] {
            let mut a = Assembler::new(8, MemoryBudget::new(1024));
            a.push(&pdv(3, &store_command())).expect("valid");
            let data = vec![7u8; size];
            let instance = a.push(&pdv(2, &data)).expect("valid").expect("complete");
            assert_eq!(instance.bytes.is_ok(), kept, "{size} bytes");
            assert_eq!(instance.size, size as u64);
            assert_eq!(instance.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        }
    }

    #[test]
    fn data_sets_in_flight_share_one_memory_budget_and_give_it_back() {
        let budget = MemoryBudget::new(10);
        let mut a = Assembler::new(100, Arc::clone(&budget));
        let mut b = Assembler::new(100, Arc::clone(&budget));
        a.push(&pdv(3, &store_command())).expect("valid");
        b.push(&pdv(3, &store_command())).expect("valid");
        assert!(a.push(&pdv(0, &[1; 6])).expect("valid").is_none());
        // 6 + 4 = 10: at the budget, kept.
        let at = b.push(&pdv(2, &[2; 4])).expect("valid").expect("complete");
        assert!(at.bytes.is_ok());
        assert_eq!(budget.held(), 10);
        // One byte more while both are held: the budget is spent.
        let over = a.push(&pdv(2, &[1; 1])).expect("valid").expect("complete");
        assert_eq!(over.bytes.err(), Some(Skipped::MemoryBudget));
        assert_eq!(over.size, 7);
        assert_eq!(budget.held(), 4);
        drop(at);
        assert_eq!(budget.held(), 0);
    }

    /// A peer's share: at its cap it holds, one byte more is refused (and nothing of the
    /// refused byte stays taken from either); the total bounds the shares together.
    #[test]
    fn a_peers_share_bounds_it_and_the_total_bounds_all_shares() {
        let total = MemoryBudget::new(10);
        let (one, two) = (
            MemoryBudget::share(&total, 6),
            MemoryBudget::share(&total, 6),
        );
        let mut a = Reservation::new(&one);
        assert!(a.grow(6), "at the share");
        assert!(!a.grow(1), "one byte past the share");
        assert_eq!((one.held(), total.held()), (6, 6));
        let mut b = Reservation::new(&two);
        assert!(b.grow(4), "the rest of the total");
        assert!(!b.grow(1), "past the total, within the share");
        assert_eq!((two.held(), total.held()), (4, 10));
        drop(a);
        assert_eq!((one.held(), total.held()), (0, 4));
        assert!(b.grow(2));
        drop(b);
        assert_eq!(total.held(), 0);
    }

    #[test]
    fn a_command_set_at_its_limit_is_read() {
        let mut command = store_command();
        // Filled to the limit with a (0000,4000) element, which the gateway does not read.
        let fill = MAX_COMMAND_SET_BYTES - command.len() - 8;
        element(&mut command, 0x4000, &vec![b' '; fill]);
        assert_eq!(command.len(), MAX_COMMAND_SET_BYTES);
        let mut a = Assembler::new(8, MemoryBudget::new(8));
        assert!(a.push(&pdv(1, &command[..100])).expect("valid").is_none());
        assert!(a.push(&pdv(3, &command[100..])).expect("valid").is_none());
        let instance = a
            .push(&pdv(2, b"data"))
            .expect("valid")
            .expect("the C-STORE was read");
        assert_eq!(instance.sop_instance, "1.2.3.4");
    }

    #[test]
    fn truncated_or_oversized_command_sets_are_not_read() {
        let command = store_command();
        for n in 0..command.len() {
            let _ = parse_command(&command[..n]);
        }
        assert!(parse_command(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_none());
        // One byte over the limit is a violation (the association is aborted), never a
        // data set relayed unread.
        let mut a = Assembler::new(8, MemoryBudget::new(8));
        let big = vec![0u8; MAX_COMMAND_SET_BYTES + 1];
        assert_eq!(
            a.push(&pdv(3, &big)).err(),
            Some(Violation::CommandTooLong(1))
        );
    }

    /// Command sets a receiver may read otherwise than the gateway (PS3.7 6.3.1: each
    /// element at most once, in increasing order, of group 0000) are not followed: with
    /// two Command Fields DCMTK's storescp keeps the first (a C-STORE) and stored a PE
    /// the gateway had taken for the data set of a C-ECHO and never screened.
    #[test]
    fn command_sets_read_two_ways_are_violations() {
        let store = store_command();
        let with = |at: usize, extra: &[u8]| {
            let mut c = store[..at].to_vec();
            c.extend_from_slice(extra);
            c.extend_from_slice(&store[at..]);
            c
        };
        // (0000,0002) takes 34 bytes of store_command(), (0000,0100) the next 10.
        let mut echo = Vec::new();
        element(&mut echo, 0x0100, &0x0030u16.to_le_bytes());
        let mut no_data = Vec::new();
        element(&mut no_data, 0x0800, &0x0101u16.to_le_bytes());
        let mut wide = Vec::new();
        element(&mut wide, 0x0100, &[1, 0, 0x30, 0]);
        let mut data_element = Vec::new();
        data_element.extend_from_slice(&[8, 0, 0x18, 0, 2, 0, 0, 0, b'1', 0]);
        let mut ok = store.clone();
        element(&mut ok, 0x4000, b"ok");
        assert!(parse_command(&ok).is_some(), "a well-formed set is read");
        for (name, bad) in [
            ("a second Command Field", with(44, &echo)),
            ("a second Command Data Set Type", {
                let mut c = store.clone();
                element(&mut c, 0x0800, &0x0101u16.to_le_bytes());
                c
            }),
            ("elements out of order", with(0, &no_data)),
            ("a 4-byte Command Field", {
                let mut c = store[..34].to_vec();
                c.extend_from_slice(&wide);
                c.extend_from_slice(&store[44..]);
                c
            }),
            ("a data element", {
                let mut c = store.clone();
                c.extend_from_slice(&data_element);
                c
            }),
            ("trailing bytes", {
                let mut c = store.clone();
                c.extend_from_slice(&[0, 0]);
                c
            }),
        ] {
            assert!(parse_command(&bad).is_none(), "{name}");
            let mut a = Assembler::new(1024, MemoryBudget::new(1024));
            assert_eq!(
                a.push(&pdv(3, &bad)).err(),
                Some(Violation::UnreadableCommand(1)),
                "{name}"
            );
        }
    }

    /// Review rv44-gate case22: a C-STORE-RQ whose Command Data Set Type said no data
    /// set (0x0101) was relayed, and the archive stored a 0-byte instance; a PE sent
    /// after it was never screened as a C-STORE's. It is a violation at its command now,
    /// before anything of it is relayed; with a data set announced it is followed.
    #[test]
    fn a_c_store_saying_no_data_set_follows_is_a_violation() {
        let mut no_data = store_command();
        no_data[34 + 10 + 8..34 + 10 + 10].copy_from_slice(&0x0101u16.to_le_bytes());
        assert!(!parse_command(&no_data).expect("readable").has_data_set);
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        let refused = a.push(&pdv(3, &no_data)).err();
        assert_eq!(refused, Some(Violation::StoreWithoutDataSet(1)));
        assert!(refused.is_some_and(|v| v.to_string().contains("a C-STORE must carry a data set")),);
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        assert!(a.push(&pdv(3, &store_command())).expect("valid").is_none());
        assert!(a.push(&pdv(2, b"DICM")).expect("valid").is_some());
    }

    /// A data set fragment the gateway cannot attribute to a C-STORE it screens is a
    /// violation: without a command, after a command saying no data set follows, on
    /// another context than its command's (storescp aborts; a lenient reader would
    /// join them), or interleaved with another message (PS3.8 E.1).
    #[test]
    fn fragments_not_following_their_command_are_violations() {
        let on = |context_id, control, data: &[u8]| Pdv {
            context_id,
            control,
            data: data.to_vec(),
        };
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        assert_eq!(
            a.push(&pdv(2, b"MZ")).err(),
            Some(Violation::UnannouncedDataSet(1))
        );
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        assert!(a.push(&pdv(3, &echo_command())).expect("valid").is_none());
        assert_eq!(
            a.push(&pdv(2, b"MZ")).err(),
            Some(Violation::UnannouncedDataSet(1))
        );
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        a.push(&pdv(3, &store_command())).expect("valid");
        assert_eq!(
            a.push(&on(3, 0, b"MZ")).err(),
            Some(Violation::Interleaved { open: 1, got: 3 })
        );
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        a.push(&pdv(1, &store_command()[..10])).expect("valid");
        assert_eq!(
            a.push(&on(3, 3, &store_command())).err(),
            Some(Violation::Interleaved { open: 1, got: 3 })
        );
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        a.push(&pdv(3, &store_command())).expect("valid");
        a.push(&pdv(0, b"ab")).expect("valid");
        assert_eq!(
            a.push(&pdv(3, &store_command())).err(),
            Some(Violation::CommandInDataSet(1))
        );
        // After a whole message, another context may begin the next.
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        a.push(&pdv(3, &store_command())).expect("valid");
        a.push(&pdv(2, b"ab")).expect("valid").expect("complete");
        a.push(&on(3, 3, &store_command())).expect("valid");
        a.push(&on(3, 2, b"cd")).expect("valid").expect("complete");
    }

    /// A C-STORE naming a SOP class other than its context's: the route refused
    /// Encapsulated PDF, the peer sent one on its CT context and storescp stored it.
    #[test]
    fn a_command_for_another_sop_class_than_its_context_is_a_violation() {
        let contexts = || HashMap::from([(1u8, "1.2.840.10008.5.1.4.1.1.4".to_owned())]);
        let mut a = Assembler::new(1024, MemoryBudget::new(1024)).with_contexts(contexts());
        assert_eq!(
            a.push(&pdv(3, &store_command())).err(),
            Some(Violation::SopClassMismatch {
                context: 1,
                command: "1.2.840.10008.5.1.4.1.1.2".into(),
                negotiated: "1.2.840.10008.5.1.4.1.1.4".into()
            })
        );
        let mut a = Assembler::new(1024, MemoryBudget::new(1024)).with_contexts(HashMap::from([(
            1u8,
            "1.2.840.10008.5.1.4.1.1.2".to_owned(),
        )]));
        a.push(&pdv(3, &store_command())).expect("its own class");
        // A C-STORE without an Affected SOP Class UID cannot be held to its context.
        let mut a = Assembler::new(1024, MemoryBudget::new(1024)).with_contexts(contexts());
        assert!(matches!(
            a.push(&pdv(3, &store_command()[34..])),
            Err(Violation::SopClassMismatch { .. })
        ));
    }

    /// A data set whose last fragment never came (the peer released instead) was
    /// relayed all the same: it is given back for screening, marked incomplete.
    #[test]
    fn a_data_set_never_completed_is_given_back_at_the_end() {
        let mut a = Assembler::new(1024, MemoryBudget::new(1024));
        assert!(a.unfinished().is_none(), "nothing begun");
        a.push(&pdv(3, &store_command())).expect("valid");
        a.push(&pdv(0, b"MZ")).expect("valid");
        a.push(&pdv(0, b"PE")).expect("valid");
        let instance = a.unfinished().expect("the data set begun");
        assert!(!instance.complete);
        assert_eq!(instance.sop_instance, "1.2.3.4");
        assert_eq!(instance.bytes.as_deref(), Ok(&b"MZPE"[..]));
        assert!(a.unfinished().is_none(), "given back once");
    }
}
