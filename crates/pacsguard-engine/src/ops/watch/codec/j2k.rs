//! A JPEG 2000 codestream (ITU T.800 Annex A) walked as a decoder reads it, for an
//! encryptor that kept its markers (SOC, SIZ, COD, QCD, each SOT and SOD, EOC) and
//! overwrote the tile data between them. Two things such a stream breaks:
//!
//! - the chain: each tile-part starts with SOT, whose `Psot` is the tile-part's length,
//!   so the next SOT (or EOC, at the end) lies exactly there; a `Psot` of 0 runs the
//!   last tile-part to EOC;
//! - the tile data: the arithmetic coder and the packet headers stuff a bit after every
//!   `FF`, so no `FF` in them is followed by a byte above `8F` (T.800 A.1: markers
//!   `FF90`-`FFFF` cannot occur in packet data), except the in-stream SOP (`FF91`) and
//!   EPH (`FF92`) markers. Random bytes hold an `FF` followed by one of the other 110
//!   values every ~600 bytes; [`MIN_BAD_MARKERS`] of them mean the data is not a coder's.
//!
//! High-Throughput JPEG 2000 (T.814) is held to the chain only (`stuffed` false): no
//! HTJ2K image was at hand to prove its code-blocks keep the same rule.

/// `FF` bytes followed by a value a coder never writes after one, in all tile-parts of a
/// codestream, that make it not a coder's output (one could be a damaged byte).
pub const MIN_BAD_MARKERS: usize = 2;

const SOC: u8 = 0x4F;
const SIZ: u8 = 0x51;
const SOT: u8 = 0x90;
const SOP: u8 = 0x91;
const EPH: u8 = 0x92;
const SOD: u8 = 0x93;
const EOC: u8 = 0xD9;

/// Whether a codestream (a frame's fragments joined, from SOC) is not what an encoder
/// wrote: its tile-part chain does not hold, or its tile data holds [`MIN_BAD_MARKERS`]
/// unstuffed `FF`s (`stuffed`: Part 1 code-blocks). `complete`: the codestream was read
/// to its end (its EOC is asked for; a stream cut by the bytes read is judged on what
/// was read).
pub fn broken(stream: &[u8], complete: bool, stuffed: bool) -> bool {
    if !stream.starts_with(&[0xFF, SOC, 0xFF, SIZ]) {
        return true;
    }
    let Some(mut at) = main_header_end(stream) else {
        return complete;
    };
    let mut bad = 0usize;
    loop {
        match marker(stream, at) {
            Some(SOT) => {}
            Some(EOC) => return bad >= MIN_BAD_MARKERS || !ends_at(stream, at + 2, complete),
            // The stream read stops inside a tile-part: judged on what was read.
            None if !complete => return bad >= MIN_BAD_MARKERS,
            _ => return true,
        }
        // SOT: Lsot (10), Isot, Psot (4 bytes), TPsot, TNsot.
        let Some(sot) = stream.get(at + 2..at + 12) else {
            return complete;
        };
        if u16::from_be_bytes([sot[0], sot[1]]) != 10 {
            return true;
        }
        let psot = u32::from_be_bytes([sot[4], sot[5], sot[6], sot[7]]) as usize;
        let Some(sod) = tile_header_end(stream, at + 12) else {
            return complete;
        };
        let end = if psot == 0 {
            // The last tile-part: up to EOC at the end.
            let Some(eoc) = last_eoc(stream) else {
                return complete;
            };
            eoc
        } else {
            match at.checked_add(psot) {
                Some(end) if end > sod => end,
                _ => return true,
            }
        };
        let body = &stream[sod.min(stream.len())..end.min(stream.len())];
        if stuffed {
            bad += unstuffed(body);
        }
        if bad >= MIN_BAD_MARKERS {
            return true;
        }
        if end > stream.len() {
            return complete;
        }
        at = end;
    }
}

/// The marker code at `at` (`FF xx`).
fn marker(stream: &[u8], at: usize) -> Option<u8> {
    match stream.get(at..at + 2)? {
        [0xFF, code] => Some(*code),
        _ => None,
    }
}

/// Where the main header's marker segments (SIZ, COD, QCD, ...) end: the first SOT.
/// `None` when a segment's length does not land on the next marker.
fn main_header_end(stream: &[u8]) -> Option<usize> {
    let mut at = 2; // past SOC
    loop {
        let code = marker(stream, at)?;
        if code == SOT {
            return Some(at);
        }
        at = segment_end(stream, at)?;
    }
}

/// Past a tile-part header's marker segments (from after SOT's) and its SOD: where the
/// tile data starts.
fn tile_header_end(stream: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let code = marker(stream, at)?;
        if code == SOD {
            return Some(at + 2);
        }
        at = segment_end(stream, at)?;
    }
}

/// The end of the marker segment at `at` (its length counts itself, not the marker),
/// if it ends on another marker.
fn segment_end(stream: &[u8], at: usize) -> Option<usize> {
    let len = stream.get(at + 2..at + 4)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let end = at + 2 + len;
    (len >= 2 && stream.get(end) == Some(&0xFF)).then_some(end)
}

/// Where the EOC closing the stream is: the last two bytes, or before one pad byte.
fn last_eoc(stream: &[u8]) -> Option<usize> {
    let n = stream.len();
    [n.checked_sub(2)?, n.checked_sub(3)?]
        .into_iter()
        .find(|&at| stream.get(at..at + 2) == Some(&[0xFF, EOC][..]))
}

/// Whether what follows EOC (at `after`) is the end, one pad byte allowed (PS3.5 A.4
/// pads a fragment to an even length).
fn ends_at(stream: &[u8], after: usize, complete: bool) -> bool {
    !complete || stream.len().saturating_sub(after) <= 1
}

/// `FF` bytes in tile data followed by a value above `8F` that is not SOP or EPH. An SOP
/// marker segment (`FF91`, `Lsop` = 4, the packet's 16-bit sequence number `Nsop`) is
/// stepped over whole: its number is not stuffed (packet 65,425 is `FF91`), and its last
/// byte is followed by the packet header's first.
fn unstuffed(body: &[u8]) -> usize {
    let mut bad = 0;
    let mut at = 0;
    while at + 1 < body.len() {
        if body[at] != 0xFF {
            at += 1;
            continue;
        }
        match body[at + 1] {
            SOP => at += 6,
            EPH => at += 2,
            code if code > 0x8F => {
                bad += 1;
                at += 2;
            }
            _ => at += 2,
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A codestream of one tile-part holding `data`, `Psot` as given (`None`: its own
    /// length).
    fn stream(data: &[u8], psot: Option<u32>) -> Vec<u8> {
        let mut s = vec![0xFF, SOC, 0xFF, SIZ, 0, 4, 1, 2];
        s.extend([0xFF, 0x52, 0, 3, 0]); // COD with a 1-byte body
        let own = (12 + 2 + data.len()) as u32;
        s.extend([0xFF, SOT, 0, 10, 0, 0]);
        s.extend(psot.unwrap_or(own).to_be_bytes());
        s.extend([0, 1]);
        s.extend([0xFF, SOD]);
        s.extend(data);
        s.extend([0xFF, EOC]);
        s
    }

    #[test]
    fn the_chain_and_the_stuffing_are_checked() {
        let clean = [
            0x12, 0xFF, 0x7F, 0xFF, 0x8F, 0xFF, SOP, 0, 4, 0, 0, 0xFF, EPH, 0x55,
        ];
        assert!(!broken(&stream(&clean, None), true, true));
        assert!(
            !broken(&stream(&clean, Some(0)), true, true),
            "Psot 0: to EOC"
        );
        // One unstuffed FF could be a damaged byte; two are not a coder's output.
        let one = [0x12, 0xFF, 0xA0, 0x33];
        assert!(!broken(&stream(&one, None), true, true));
        let two = [0x12, 0xFF, 0xA0, 0x33, 0xFF, 0xFE];
        assert!(broken(&stream(&two, None), true, true));
        assert!(
            !broken(&stream(&two, None), true, false),
            "HTJ2K: the chain only"
        );
        // A tile-part length that does not land on the next marker.
        assert!(broken(&stream(&clean, Some(20)), true, true));
        // Something after EOC beyond a pad byte; a pad byte is fine.
        let mut padded = stream(&clean, None);
        padded.push(0);
        assert!(!broken(&padded, true, true));
        padded.extend([1, 2]);
        assert!(broken(&padded, true, true));
        assert!(
            !broken(&padded, false, true),
            "a stream cut short is not asked for its end"
        );
        // An SOP whose packet number is FFxx, followed by a packet header starting FF:
        // neither is a coder's FF.
        let sop = [
            0x12, 0xFF, SOP, 0, 4, 0xFF, 0xA0, 0xFF, 0x20, 0xFF, SOP, 0, 4, 0xFF, 0xFF, 0x7F,
        ];
        assert_eq!(unstuffed(&sop), 0);
        // Not a codestream at all.
        assert!(broken(&[0x12; 64], true, true));
    }
}
