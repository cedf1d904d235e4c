//! One stream of a compound file ([MS-CFB]: legacy Office documents), read as Office
//! reads it: through the FAT and the directory, so that a stream whose sectors are
//! scattered (or kept in the mini stream) reads as one run of bytes. A chance
//! `BOUNDSHEET` in the raw file says nothing; one in the `Workbook` stream is a sheet.
//!
//! Every chain is followed at most as many steps as the file has sectors (a loop in the
//! FAT ends there), and nothing is read that is not in the bytes given: the work is
//! linear in the size of the file.

use crate::format::{u16_le, u32_le};

const SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// FAT values from here up end a chain (ENDOFCHAIN, FREESECT, FATSECT, DIFSECT).
const LAST_SECTOR: u32 = 0xFFFF_FFFA;
const DIRECTORY_ENTRY: usize = 128;
const STREAM: u8 = 2;
const ROOT: u8 = 5;
/// Sector numbers the header holds itself; more are in DIFAT sectors.
const HEADER_DIFAT: usize = 109;

struct File<'a> {
    bytes: &'a [u8],
    sector: usize,
    fat: Vec<u32>,
}

impl File<'_> {
    fn sector(&self, n: u32) -> Option<&[u8]> {
        let start = (usize::try_from(n).ok()? + 1).checked_mul(self.sector)?;
        let end = start.saturating_add(self.sector).min(self.bytes.len());
        self.bytes.get(start..end)
    }

    /// The sectors of the chain from `start`, in order.
    fn chain(&self, start: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        let mut next = start;
        while next < LAST_SECTOR && chain.len() <= self.fat.len() {
            chain.push(next);
            match self.fat.get(next as usize) {
                Some(&after) => next = after,
                None => break,
            }
        }
        chain
    }

    fn read_chain(&self, start: u32, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for n in self.chain(start) {
            if out.len() >= limit {
                break;
            }
            match self.sector(n) {
                Some(sector) => out.extend_from_slice(sector),
                None => break,
            }
        }
        out.truncate(limit);
        out
    }
}

/// The mini stream cutoff [MS-CFB] 2.2 requires: a stream shorter than this lives in the
/// mini stream. The header repeats it; a file can say otherwise there.
const MINI_STREAM_CUTOFF: usize = 4096;

/// The stream of the root storage named by the first of `names` it has (without case, as
/// compound files compare names), or nothing when the file is no compound file or has no
/// such stream. Read as a reader that takes the header's mini stream cutoff reads it
/// (olefile, so olevba), and, when the header gives another cutoff than the 4096 the
/// specification requires, also as a reader that keeps to 4096: one or two readings,
/// each to be judged (a cutoff of 0 sent a small Workbook stream to the FAT here, while
/// olevba read its macro sheet from the mini stream).
pub(super) fn stream(bytes: &[u8], names: &[&str]) -> Vec<Vec<u8>> {
    let Some((header, specified)) = stream_by_cutoff(bytes, names, None) else {
        return Vec::new();
    };
    let mut readings = vec![header];
    if !specified
        && let Some((reading, _)) = stream_by_cutoff(bytes, names, Some(MINI_STREAM_CUTOFF))
    {
        readings.push(reading);
    }
    readings
}

/// [`stream`] with the header's cutoff (`cutoff` `None`) or the one given; and whether
/// the header's cutoff is the one the specification requires.
fn stream_by_cutoff(
    bytes: &[u8],
    names: &[&str],
    cutoff: Option<usize>,
) -> Option<(Vec<u8>, bool)> {
    if !bytes.starts_with(&SIGNATURE) {
        return None;
    }
    let shift = u16_le(bytes, 0x1E)?;
    let sector = match shift {
        9 | 12 => 1usize << shift,
        _ => return None,
    };
    let sectors_in_file = u32::try_from(bytes.len() / sector).unwrap_or(u32::MAX);
    // FAT sectors: the header's list, then the DIFAT chain.
    let mut fat_sectors: Vec<u32> = (0..HEADER_DIFAT)
        .filter_map(|i| u32_le(bytes, 0x4C + 4 * i))
        .filter(|&n| n < LAST_SECTOR)
        .collect();
    let mut difat = u32_le(bytes, 0x44)?;
    let mut steps = 0u32;
    let mut file = File {
        bytes,
        sector,
        fat: Vec::new(),
    };
    while difat < LAST_SECTOR && steps < sectors_in_file {
        steps += 1;
        let Some(block) = file.sector(difat) else {
            break;
        };
        let ids = block.len() / 4;
        fat_sectors.extend(
            (0..ids.saturating_sub(1))
                .filter_map(|i| u32_le(block, 4 * i))
                .filter(|&n| n < LAST_SECTOR),
        );
        difat = u32_le(block, 4 * ids.saturating_sub(1)).unwrap_or(LAST_SECTOR);
    }
    // A FAT larger than the file has sectors would only describe sectors that are not
    // there: the same sector listed twice is read once.
    fat_sectors.truncate(sectors_in_file as usize);
    let mut fat = Vec::new();
    for &n in &fat_sectors {
        if let Some(block) = file.sector(n) {
            fat.extend(block.chunks_exact(4).filter_map(|c| u32_le(c, 0)));
        }
    }
    file.fat = fat;
    let directory = file.read_chain(u32_le(bytes, 0x30)?, bytes.len());
    let entry = |i: usize| directory.get(i * DIRECTORY_ENTRY..(i + 1) * DIRECTORY_ENTRY);
    let root = entry(0).filter(|e| e[0x42] == ROOT)?;
    // The root storage's own streams (a red-black tree of siblings under its child), as
    // Office looks them up: a `Workbook` inside an embedded object's storage, or listed
    // first in the directory, is not the one Excel reads.
    let mut children = Vec::new();
    let mut seen = vec![false; directory.len() / DIRECTORY_ENTRY];
    let mut stack = vec![u32_le(root, 0x4C)?];
    while let Some(id) = stack.pop() {
        let Some(slot) = seen.get_mut(id as usize).filter(|seen| !**seen) else {
            continue; // NOSTREAM, out of range, or a loop
        };
        *slot = true;
        let Some(child) = entry(id as usize) else {
            continue;
        };
        children.push(child);
        stack.extend(
            [u32_le(child, 0x44), u32_le(child, 0x48)]
                .into_iter()
                .flatten(),
        );
    }
    // In the order of `names`: Excel reads `Workbook` when both it and `Book` are there.
    let wanted = names.iter().find_map(|name| {
        children
            .iter()
            .find(|e| e[0x42] == STREAM && entry_named(e, name))
    })?;
    let start = u32_le(wanted, 0x74)?;
    let size = usize::try_from(u32_le(wanted, 0x78)?)
        .ok()?
        .min(bytes.len());
    let header_cutoff = usize::try_from(u32_le(bytes, 0x38)?).ok()?;
    let specified = header_cutoff == MINI_STREAM_CUTOFF;
    if size >= cutoff.unwrap_or(header_cutoff) {
        return Some((file.read_chain(start, size), specified));
    }
    // A small stream lives in the mini stream (the root entry's chain), in 64-byte
    // sectors chained by the mini FAT.
    let mini_shift = u16_le(bytes, 0x20)?;
    if mini_shift != 6 {
        return None;
    }
    let mini_sector = 64usize;
    let mini_stream = file.read_chain(u32_le(root, 0x74)?, bytes.len());
    let mini_fat: Vec<u32> = file
        .read_chain(u32_le(bytes, 0x3C)?, bytes.len())
        .chunks_exact(4)
        .filter_map(|c| u32_le(c, 0))
        .collect();
    let mut out = Vec::new();
    let mut next = start;
    let mut steps = 0usize;
    while next < LAST_SECTOR && out.len() < size && steps <= mini_fat.len() {
        steps += 1;
        let from = (next as usize).saturating_mul(mini_sector);
        let Some(block) =
            mini_stream.get(from..from.saturating_add(mini_sector).min(mini_stream.len()))
        else {
            break;
        };
        out.extend_from_slice(block);
        next = mini_fat.get(next as usize).copied().unwrap_or(LAST_SECTOR);
    }
    out.truncate(size);
    Some((out, specified))
}

/// Whether a directory entry is named `name` (its UTF-16 name, compared without case).
fn entry_named(entry: &[u8], name: &str) -> bool {
    let len = u16_le(entry, 0x40).map_or(0, usize::from).min(64);
    let units: Vec<u16> = entry[..len]
        .chunks_exact(2)
        .filter_map(|c| u16_le(c, 0))
        .take_while(|&u| u != 0)
        .collect();
    let wanted: Vec<u16> = name.encode_utf16().collect();
    units.len() == wanted.len()
        && units.iter().zip(&wanted).all(|(&a, &b)| {
            char::from_u32(a.into()).map(|c| c.to_ascii_lowercase())
                == char::from_u32(b.into()).map(|c| c.to_ascii_lowercase())
        })
}
