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
/// Command Data Set Type value meaning "no data set follows".
const NO_DATA_SET: u16 = 0x0101;

/// The elements of a command set the gateway looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub field: u16,
    pub affected_sop_class: String,
    pub affected_sop_instance: String,
    pub has_data_set: bool,
    /// (0000,0900) of a response.
    pub status: Option<u16>,
}

/// Reads a command set (implicit VR little endian, PS3.7 6.3.1). `None` when it is not
/// one: a truncated element, or no Command Field.
pub fn parse_command(bytes: &[u8]) -> Option<Command> {
    let mut command = Command {
        has_data_set: true,
        ..Command::default()
    };
    let mut field = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let head = rest.get(..8)?;
        let group = u16::from_le_bytes([head[0], head[1]]);
        let element = u16::from_le_bytes([head[2], head[3]]);
        let len = usize::try_from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])).ok()?;
        let value = rest.get(8..8usize.checked_add(len)?)?;
        rest = &rest[8 + len..];
        if group != 0 {
            continue;
        }
        let text = || String::from_utf8_lossy(crate::pdu::trim_uid_padding(value)).into_owned();
        let short = || value.get(..2).map(|v| u16::from_le_bytes([v[0], v[1]]));
        match element {
            0x0002 => command.affected_sop_class = text(),
            0x1000 => command.affected_sop_instance = text(),
            0x0100 => field = short(),
            0x0800 => command.has_data_set = short() != Some(NO_DATA_SET),
            0x0900 => command.status = short(),
            _ => {}
        }
    }
    command.field = field?;
    Some(command)
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
}

impl MemoryBudget {
    pub fn new(cap: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            cap,
            held: AtomicU64::new(0),
        })
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self, n: u64) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|total| *total <= self.cap)
            })
            .is_ok()
    }

    fn give(&self, n: u64) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(n))
            });
    }
}

/// Bytes taken from a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    fn new(budget: &Arc<MemoryBudget>) -> Reservation {
        Reservation {
            budget: Arc::clone(budget),
            bytes: 0,
        }
    }

    fn grow(&mut self, n: u64) -> bool {
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
    /// The shared [`MemoryBudget`] was spent by data sets in flight.
    MemoryBudget,
}

/// A C-STORE data set seen whole (or counted and hashed whole, when it was not kept).
#[derive(Debug)]
pub struct Instance {
    pub context_id: u8,
    pub sop_class: String,
    pub sop_instance: String,
    pub size: u64,
    pub sha256: [u8; 32],
    /// The data set's bytes, or why they were not kept.
    pub bytes: Result<Vec<u8>, Skipped>,
    /// Holds the bytes' share of the memory budget until the instance is dropped.
    pub reservation: Option<Reservation>,
}

#[derive(Debug, Default)]
struct Context {
    command: Vec<u8>,
    command_too_long: bool,
    /// The C-STORE whose data set is arriving.
    store: Option<Command>,
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
    /// C-STORE responses seen since [`Assembler::take_responses`].
    responses: Vec<Command>,
}

impl Assembler {
    pub fn new(limit: usize, budget: Arc<MemoryBudget>) -> Self {
        Assembler {
            limit,
            budget,
            contexts: HashMap::new(),
            responses: Vec::new(),
        }
    }

    /// The C-STORE responses seen since the last call (at most one per command set, so
    /// bounded by the PDVs pushed).
    pub fn take_responses(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.responses)
    }

    /// Takes one PDV; returns the instance whose data set it completed, if any.
    pub fn push(&mut self, pdv: &Pdv) -> Option<Instance> {
        let context = self.contexts.entry(pdv.context_id).or_default();
        if pdv.is_command() {
            if context.command.len() + pdv.data.len() > MAX_COMMAND_SET_BYTES {
                context.command_too_long = true;
                context.command.clear();
            } else if !context.command_too_long {
                context.command.extend_from_slice(&pdv.data);
            }
            if pdv.is_last() {
                let parsed = (!context.command_too_long)
                    .then(|| parse_command(&context.command))
                    .flatten();
                context.command.clear();
                context.command_too_long = false;
                if let Some(response) = parsed.as_ref().filter(|c| c.field == C_STORE_RSP) {
                    self.responses.push(response.clone());
                }
                context.store = parsed.filter(|c| c.field == C_STORE_RQ && c.has_data_set);
                context.data = Vec::new();
                context.data_size = 0;
                context.skipped = None;
                context.reservation = Some(Reservation::new(&self.budget));
                context.hash = Sha256::new();
            }
            return None;
        }
        context.store.as_ref()?;
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
            return None;
        }
        let command = context.store.take()?;
        let hash = std::mem::take(&mut context.hash);
        let bytes = std::mem::take(&mut context.data);
        Some(Instance {
            context_id: pdv.context_id,
            sop_class: command.affected_sop_class,
            sop_instance: command.affected_sop_instance,
            size: std::mem::take(&mut context.data_size),
            sha256: hash.finalize().into(),
            bytes: match context.skipped.take() {
                Some(why) => Err(why),
                None => Ok(bytes),
            },
            reservation: context.reservation.take(),
        })
    }
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
        assert!(a.push(&pdv(1, &command[..10])).is_none());
        assert!(a.push(&pdv(3, &command[10..])).is_none());
        assert!(a.push(&pdv(0, b"abc")).is_none());
        let instance = a.push(&pdv(2, b"def")).expect("complete");
        assert_eq!(instance.sop_instance, "1.2.3.4");
        assert_eq!(instance.sop_class, "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(instance.bytes.as_deref(), Ok(&b"abcdef"[..]));
        assert_eq!(instance.sha256, <[u8; 32]>::from(Sha256::digest(b"abcdef")));
    }

    #[test]
    fn a_data_set_at_the_limit_is_kept_and_one_byte_over_is_hashed_only() {
        for (size, kept) in [(8usize, true), (9, false)] {
            let mut a = Assembler::new(8, MemoryBudget::new(1024));
            a.push(&pdv(3, &store_command()));
            let data = vec![7u8; size];
            let instance = a.push(&pdv(2, &data)).expect("complete");
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
        a.push(&pdv(3, &store_command()));
        b.push(&pdv(3, &store_command()));
        assert!(a.push(&pdv(0, &[1; 6])).is_none());
        // 6 + 4 = 10: at the budget, kept.
        let at = b.push(&pdv(2, &[2; 4])).expect("complete");
        assert!(at.bytes.is_ok());
        assert_eq!(budget.held(), 10);
        // One byte more while both are held: the budget is spent.
        let over = a.push(&pdv(2, &[1; 1])).expect("complete");
        assert_eq!(over.bytes.err(), Some(Skipped::MemoryBudget));
        assert_eq!(over.size, 7);
        assert_eq!(budget.held(), 4);
        drop(at);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_command_set_at_its_limit_is_read() {
        let mut command = store_command();
        // Filled to the limit with a (0000,4000) element, which the gateway does not read.
        let fill = MAX_COMMAND_SET_BYTES - command.len() - 8;
        element(&mut command, 0x4000, &vec![b' '; fill]);
        assert_eq!(command.len(), MAX_COMMAND_SET_BYTES);
        let mut a = Assembler::new(8, MemoryBudget::new(8));
        assert!(a.push(&pdv(1, &command[..100])).is_none());
        assert!(a.push(&pdv(3, &command[100..])).is_none());
        let instance = a.push(&pdv(2, b"data")).expect("the C-STORE was read");
        assert_eq!(instance.sop_instance, "1.2.3.4");
    }

    #[test]
    fn truncated_or_oversized_command_sets_are_not_read() {
        let command = store_command();
        for n in 0..command.len() {
            let _ = parse_command(&command[..n]);
        }
        assert!(parse_command(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_none());
        let mut a = Assembler::new(8, MemoryBudget::new(8));
        let big = vec![0u8; MAX_COMMAND_SET_BYTES + 1];
        assert!(a.push(&pdv(3, &big)).is_none());
        assert!(a.push(&pdv(2, b"data")).is_none());
    }
}
