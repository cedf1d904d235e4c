//! A read-only ISO 9660 (ECMA-119) reader for patient CDs and DVDs, so that `media
//! import` reads an image file without mounting it (mounting needs root, and a kernel
//! driver parsing a hostile image is more attack surface than this reader).
//!
//! Why not a crate: `cdfs` 0.2 and `iso9660` 0.1 were read (2026-12) and both panic on
//! input (`panic!()` on a short read, `assert!`s on directory sizes and Rock Ridge
//! entries), and `cdfs` pulls a FUSE binding and a CLI parser into any user.
//!
//! What is read: the volume descriptors (the Primary, and a Joliet Supplementary one
//! whose UCS-2 names are preferred when present), and the directory tree from the root
//! record, breadth-first. With a Joliet tree the primary tree is walked too: a file only
//! the primary tree shows (hidden from Windows, seen by Linux and macOS) is listed under
//! its primary name and named in `primary_only`, never left unscreened. Every length and offset comes from the image and is checked
//! against the image before use; every amount of work is bounded by a named constant;
//! a directory that points back at one already read (a loop) is read once. Files the
//! reader cannot give whole (multi-extent, interleaved, data beyond the image) are
//! listed as problems, never silently dropped. Rock Ridge names are not read: the
//! Joliet or primary names are what a Windows viewer and a DICOMDIR see.
//!
//! This module never opens a file: the image is a [`Source`] given by the caller.

use std::collections::{HashSet, VecDeque};

use crate::format::u32_le;

/// The logical sector of CD/DVD media. Volume descriptors start at sector 16.
pub const SECTOR: u64 = 2048;
/// Volume descriptors read before the set terminator. Real media have 2 to 4; a forged
/// image could chain thousands.
pub const MAX_VOLUME_DESCRIPTORS: usize = 64;
/// Entries (files and directories) listed from one image. A full DVD of 1 KB files holds
/// ~4.5 million, but a patient medium holds some thousands of instances; past this the
/// listing stops and says so. Counted over both trees of a Joliet image.
pub const MAX_ISO_ENTRIES: usize = 200_000;
/// Directory levels followed. ECMA-119 allows 8; Joliet and Rock Ridge media go deeper,
/// real ones never this deep.
pub const MAX_ISO_DEPTH: usize = 32;
/// The largest directory extent read (one directory's records). 64 KiB holds ~1,500
/// entries; real directories of DICOM media hold a few hundred.
pub const MAX_DIRECTORY_BYTES: u64 = 8 * 1024 * 1024;
/// Directory bytes read from one image in all. Without it, a forged image of a few
/// hundred MB whose directory records point at overlapping 8 MiB extents would make the
/// reader go through terabytes; a real DVD's directories are a few MB.
pub const MAX_TOTAL_DIRECTORY_BYTES: u64 = 256 * 1024 * 1024;

/// File bytes listed from one image, at most this many times the image's own size (plus
/// [`LISTED_BYTES_SLACK`]). Extents may overlap, so without it a 256 MiB image whose
/// 200,000 records all point at one 256 MiB extent lists 51 TB for an import to read and
/// screen. Real media share an extent only between hard links and empty files.
pub const MAX_LISTED_BYTES_PER_IMAGE_BYTE: u64 = 2;
/// What [`MAX_LISTED_BYTES_PER_IMAGE_BYTE`] allows beyond its multiple (small images
/// whose hard-linked files share extents).
pub const LISTED_BYTES_SLACK: u64 = 64 * 1024 * 1024;

/// The image: its size and random access to its bytes.
pub trait Source {
    fn size(&self) -> u64;
    /// `len` bytes at `offset`; fewer only at the end of the source.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, String>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let end = start.saturating_add(len).min(self.len());
        Ok(self[start..end].to_vec())
    }
}

/// A regular file of the image, whole and inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoFile {
    /// Components joined by `/`, versions (`;1`) and a bare trailing dot removed.
    pub path: String,
    /// Where its data starts in the image.
    pub offset: u64,
    pub size: u64,
}

/// A file or directory the reader could not give whole, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoProblem {
    pub path: String,
    pub reason: String,
}

/// What an image holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub files: Vec<IsoFile>,
    pub directories: usize,
    pub problems: Vec<IsoProblem>,
    /// The names are Joliet's (UCS-2) rather than the primary volume's.
    pub joliet: bool,
    /// Files of the primary (ISO 9660) tree whose data the Joliet tree does not show:
    /// hidden from a Windows reader, seen by one that mounts the primary or Rock Ridge
    /// tree (Linux, macOS). They are in `files` too, under their primary path, so they are
    /// screened; each is also named here because two trees that differ are a disguise.
    pub primary_only: Vec<IsoFile>,
    /// The volume's size as its descriptor states it.
    pub volume_bytes: u64,
}

/// An image that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsoError {
    #[error("not an ISO 9660 image: {0}")]
    NotIso(String),
    #[error(
        "the image is truncated: its volume descriptor says {declared} bytes, the file holds {actual}"
    )]
    Truncated { declared: u64, actual: u64 },
    #[error("cannot read the image: {0}")]
    Read(String),
}

/// One directory record, decoded.
struct Record {
    extent: u64,
    size: u64,
    directory: bool,
    multi_extent: bool,
    interleaved: bool,
    /// `None` for the `.` and `..` records.
    name: Option<String>,
}

struct Volume {
    block: u64,
    root: Record,
    joliet: bool,
    volume_bytes: u64,
    /// With a Joliet tree: the primary tree, walked too (a file can be in one only).
    primary: Option<(u64, Record)>,
}

/// Lists every file and directory of the image.
pub fn list<S: Source + ?Sized>(source: &S) -> Result<Listing, IsoError> {
    let volume = volume(source)?;
    if volume.volume_bytes > source.size() {
        return Err(IsoError::Truncated {
            declared: volume.volume_bytes,
            actual: source.size(),
        });
    }
    let mut listing = Listing {
        joliet: volume.joliet,
        volume_bytes: volume.volume_bytes,
        ..Listing::default()
    };
    let mut budget = Budget::default();
    let mut files = Vec::new();
    let complete = walk(
        source,
        volume.block,
        &volume.root,
        volume.joliet,
        &mut budget,
        &mut files,
        &mut listing,
    )?;
    listing.files = files;
    if let (true, Some((block, root))) = (complete, &volume.primary) {
        // The primary tree, with the same limits counted on: its files whose data the
        // Joliet tree does not show are listed too (under their primary names).
        let shown: HashSet<(u64, u64)> = listing.files.iter().map(|f| (f.offset, f.size)).collect();
        let mut primary = Vec::new();
        let mut primary_listing = Listing::default();
        walk(
            source,
            *block,
            root,
            false,
            &mut budget,
            &mut primary,
            &mut primary_listing,
        )?;
        listing.directories += primary_listing.directories;
        // Problems the Joliet walk reported already (the same extents) are not repeated.
        let new: Vec<IsoProblem> = primary_listing
            .problems
            .into_iter()
            .filter(|p| {
                !listing
                    .problems
                    .iter()
                    .any(|q| q.reason == p.reason && q.path.eq_ignore_ascii_case(&p.path))
            })
            .collect();
        listing.problems.extend(new);
        for file in primary {
            if !shown.contains(&(file.offset, file.size)) {
                listing.primary_only.push(file.clone());
                listing.files.push(file);
            }
        }
    }
    Ok(listing)
}

/// The work done so far on one image, across its trees.
#[derive(Default)]
struct Budget {
    entries: usize,
    directory_bytes: u64,
    file_bytes: u64,
}

/// Walks one directory tree from `root` breadth-first, pushing its files into `files`
/// and its problems and directory count into `listing`. `Ok(false)` when a limit of the
/// whole image stopped it.
fn walk<S: Source + ?Sized>(
    source: &S,
    block: u64,
    root: &Record,
    joliet: bool,
    budget: &mut Budget,
    files: &mut Vec<IsoFile>,
    listing: &mut Listing,
) -> Result<bool, IsoError> {
    let mut queue = VecDeque::from([(String::new(), root.extent, root.size, 0)]);
    let mut seen = HashSet::new();
    while let Some((path, extent, size, depth)) = queue.pop_front() {
        let shown = if path.is_empty() { "/" } else { &path };
        if !seen.insert(extent) {
            listing.problems.push(problem(
                shown,
                "a directory record points back at a directory already read (a loop): not read again",
            ));
            continue;
        }
        let Some(start) = extent.checked_mul(block) else {
            listing
                .problems
                .push(problem(shown, "directory extent out of range"));
            continue;
        };
        if size > MAX_DIRECTORY_BYTES {
            listing.problems.push(problem(
                shown,
                format!(
                    "directory of {size} bytes, over the {MAX_DIRECTORY_BYTES}-byte limit: not read"
                ),
            ));
            continue;
        }
        if budget.directory_bytes.saturating_add(size) > MAX_TOTAL_DIRECTORY_BYTES {
            listing.problems.push(problem(
                shown,
                format!("the image's directories hold more than {MAX_TOTAL_DIRECTORY_BYTES} bytes: the listing stopped here"),
            ));
            return Ok(false);
        }
        budget.directory_bytes += size;
        if start.saturating_add(size) > source.size() {
            listing.problems.push(problem(
                shown,
                "directory records beyond the end of the image (truncated image): not read",
            ));
            continue;
        }
        let bytes = source
            .read_at(start, usize::try_from(size).unwrap_or(usize::MAX))
            .map_err(IsoError::Read)?;
        listing.directories += 1;
        for record in records(&bytes, joliet) {
            let record = match record {
                Ok(record) => record,
                Err(reason) => {
                    listing.problems.push(problem(shown, reason));
                    break;
                }
            };
            let Some(name) = &record.name else { continue };
            budget.entries += 1;
            if budget.entries > MAX_ISO_ENTRIES {
                listing.problems.push(problem(
                    shown,
                    format!(
                        "more than {MAX_ISO_ENTRIES} entries on the image: the listing stopped here"
                    ),
                ));
                return Ok(false);
            }
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            if record.directory {
                if depth + 1 >= MAX_ISO_DEPTH {
                    listing.problems.push(problem(
                        &child,
                        format!("deeper than {MAX_ISO_DEPTH} directory levels: not read"),
                    ));
                } else {
                    queue.push_back((child, record.extent, record.size, depth + 1));
                }
                continue;
            }
            if record.multi_extent || record.interleaved {
                listing.problems.push(problem(
                    &child,
                    "a multi-extent or interleaved file, which this reader does not assemble: not read",
                ));
                continue;
            }
            let offset = record.extent.checked_mul(block);
            match offset {
                Some(_)
                    if budget.file_bytes.saturating_add(record.size)
                        > source
                            .size()
                            .saturating_mul(MAX_LISTED_BYTES_PER_IMAGE_BYTE)
                            .saturating_add(LISTED_BYTES_SLACK) =>
                {
                    listing.problems.push(problem(
                        &child,
                        format!(
                            "the image's files claim more than {MAX_LISTED_BYTES_PER_IMAGE_BYTE} times its {} bytes (extents that overlap): not read",
                            source.size()
                        ),
                    ));
                }
                Some(offset) if offset.saturating_add(record.size) <= source.size() => {
                    budget.file_bytes += record.size;
                    files.push(IsoFile {
                        path: child,
                        offset,
                        size: record.size,
                    });
                }
                _ => listing.problems.push(problem(
                    &child,
                    "its data lies beyond the end of the image (truncated image): not read",
                )),
            }
        }
    }
    Ok(true)
}

/// The bytes of a listed file.
pub fn read<S: Source + ?Sized>(source: &S, file: &IsoFile) -> Result<Vec<u8>, String> {
    let len = usize::try_from(file.size).map_err(|_| "too large for memory".to_owned())?;
    let bytes = source.read_at(file.offset, len)?;
    if bytes.len() != len {
        return Err(format!(
            "short read: {} of {len} bytes (the image shrank)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn problem(path: &str, reason: impl Into<String>) -> IsoProblem {
    IsoProblem {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The Primary Volume Descriptor, or a Joliet Supplementary one when present.
fn volume<S: Source + ?Sized>(source: &S) -> Result<Volume, IsoError> {
    let mut primary = None;
    let mut joliet = None;
    for index in 0..MAX_VOLUME_DESCRIPTORS as u64 {
        let at = (16 + index) * SECTOR;
        let bytes = source
            .read_at(at, SECTOR as usize)
            .map_err(IsoError::Read)?;
        if bytes.len() < SECTOR as usize {
            break;
        }
        if &bytes[1..6] != b"CD001" {
            return Err(IsoError::NotIso(format!(
                "no volume descriptor at byte {at} (the set ends without a terminator)"
            )));
        }
        match bytes[0] {
            1 if primary.is_none() => primary = Some(bytes),
            // Joliet: a Supplementary descriptor with a UCS-2 escape sequence.
            2 if joliet.is_none() && matches!(&bytes[88..91], b"%/@" | b"%/C" | b"%/E") => {
                joliet = Some(bytes);
            }
            255 => break,
            _ => {}
        }
    }
    let Some(primary) = primary else {
        return Err(IsoError::NotIso("no primary volume descriptor".to_owned()));
    };
    let chosen = joliet.as_deref().unwrap_or(&primary);
    let (block, root) = tree(chosen)?;
    let blocks = u64::from(u32_le(chosen, 80).unwrap_or(0));
    let primary_tree = match joliet {
        Some(_) => Some(tree(&primary)?),
        None => None,
    };
    Ok(Volume {
        block,
        root,
        joliet: joliet.is_some(),
        volume_bytes: blocks * block,
        primary: primary_tree,
    })
}

/// The logical block size and root directory record of one volume descriptor.
fn tree(descriptor: &[u8]) -> Result<(u64, Record), IsoError> {
    let block = u64::from(u16::from_le_bytes([descriptor[128], descriptor[129]]));
    if !matches!(block, 512 | 1024 | 2048) {
        return Err(IsoError::NotIso(format!("logical block size {block}")));
    }
    match decode(&descriptor[156..190], false) {
        Ok(Some((record, _))) if record.directory => Ok((block, record)),
        _ => Err(IsoError::NotIso("bad root directory record".to_owned())),
    }
}

/// The records of one directory extent, in order.
fn records(bytes: &[u8], joliet: bool) -> impl Iterator<Item = Result<Record, String>> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        loop {
            if at >= bytes.len() {
                return None;
            }
            match decode(&bytes[at..], joliet) {
                // A zero length pads to the end of the sector: records never cross one.
                Ok(None) => {
                    let next = (at / SECTOR as usize + 1) * SECTOR as usize;
                    at = next;
                }
                Ok(Some((record, len))) => {
                    at += len;
                    return Some(Ok(record));
                }
                Err(reason) => {
                    at = bytes.len();
                    return Some(Err(reason));
                }
            }
        }
    })
}

/// One directory record at the start of `bytes`: `None` for padding, else the record and
/// its length.
fn decode(bytes: &[u8], joliet: bool) -> Result<Option<(Record, usize)>, String> {
    let len = usize::from(*bytes.first().ok_or("empty record")?);
    if len == 0 {
        return Ok(None);
    }
    let record = bytes
        .get(..len)
        .filter(|r| r.len() >= 34)
        .ok_or_else(|| format!("directory record of {len} bytes does not fit"))?;
    let name_len = usize::from(record[32]);
    let raw = record
        .get(33..33 + name_len)
        .ok_or("directory record name longer than the record")?;
    let flags = record[25];
    let name = match raw {
        [0] | [1] => None,
        _ => Some(file_name(raw, joliet)?),
    };
    let extra = u64::from(record[1]);
    Ok(Some((
        Record {
            extent: u64::from(u32_le(record, 2).unwrap_or(0)) + extra,
            size: u64::from(u32_le(record, 10).unwrap_or(0)),
            directory: flags & 0x02 != 0,
            multi_extent: flags & 0x80 != 0,
            interleaved: record[26] != 0 || record[27] != 0,
            name,
        },
        len,
    )))
}

/// A name as a reader shows it: Joliet's UCS-2 or the primary's d-characters, without
/// the `;1` version and the dot of a name without extension. A name that is empty,
/// `.`/`..`, or holds `/` or NUL is refused: it could not be a path component.
fn file_name(raw: &[u8], joliet: bool) -> Result<String, String> {
    let mut name = if joliet {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        raw.iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{fffd}'
                }
            })
            .collect()
    };
    if let Some(semicolon) = name.rfind(';')
        && name[semicolon + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        name.truncate(semicolon);
    }
    if name.ends_with('.') && name.len() > 1 {
        name.pop();
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!(
            "a directory record named {name:?}: not a path component"
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal image: system area, a primary descriptor, a terminator, a root
    /// directory at sector 18 and whatever files `files` describe at sector 19 on.
    fn image(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut image = vec![0u8; 18 * SECTOR as usize];
        let pvd = 16 * SECTOR as usize;
        image[pvd] = 1;
        image[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
        image[pvd + 6] = 1;
        image[pvd + 128..pvd + 130].copy_from_slice(&2048u16.to_le_bytes());
        let root = record(18, SECTOR as u32, true, &[0]);
        image[pvd + 156..pvd + 156 + root.len()].copy_from_slice(&root);
        let term = 17 * SECTOR as usize;
        image[term] = 255;
        image[term + 1..term + 6].copy_from_slice(b"CD001");
        let mut dir = record(18, SECTOR as u32, true, &[0]);
        dir.extend(record(18, SECTOR as u32, true, &[1]));
        let mut data = Vec::new();
        for (i, (name, bytes)) in files.iter().enumerate() {
            dir.extend(record(
                19 + i as u32,
                bytes.len() as u32,
                false,
                name.as_bytes(),
            ));
            let mut sector = bytes.to_vec();
            sector.resize(SECTOR as usize, 0);
            data.extend(sector);
        }
        dir.resize(SECTOR as usize, 0);
        image.extend(dir);
        image.extend(data);
        let blocks = (image.len() as u64 / SECTOR) as u32;
        image[pvd + 80..pvd + 84].copy_from_slice(&blocks.to_le_bytes());
        image
    }

    fn record(extent: u32, size: u32, directory: bool, name: &[u8]) -> Vec<u8> {
        let len = 33 + name.len() + (name.len() + 1) % 2;
        let mut r = vec![0u8; len];
        r[0] = len as u8;
        r[2..6].copy_from_slice(&extent.to_le_bytes());
        r[10..14].copy_from_slice(&size.to_le_bytes());
        r[25] = if directory { 2 } else { 0 };
        r[32] = name.len() as u8;
        r[33..33 + name.len()].copy_from_slice(name);
        r
    }

    #[test]
    fn files_are_listed_with_versions_removed_and_read_whole() {
        let image = image(&[("DICOMDIR.;1", b"dir"), ("AUTORUN.INF;1", b"[autorun]")]);
        let listing = list(image.as_slice()).expect("list");
        let names: Vec<&str> = listing.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["DICOMDIR", "AUTORUN.INF"]);
        assert_eq!(
            read(image.as_slice(), &listing.files[1]).expect("read"),
            b"[autorun]"
        );
        assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    }

    #[test]
    fn a_truncated_image_is_an_error_and_a_file_beyond_the_end_a_problem() {
        let full = image(&[("A;1", b"a")]);
        let cut = &full[..full.len() - 10];
        assert!(matches!(list(cut), Err(IsoError::Truncated { .. })));
        // The descriptor agrees with the size but the file's extent lies beyond it.
        let mut lying = full.clone();
        let dir = 18 * SECTOR as usize;
        let first_file = dir + 34 + 34; // after . and ..
        lying[first_file + 2..first_file + 6].copy_from_slice(&1000u32.to_le_bytes());
        let listing = list(lying.as_slice()).expect("list");
        assert!(listing.files.is_empty());
        assert!(listing.problems[0].reason.contains("beyond the end"));
    }

    #[test]
    fn a_directory_pointing_at_its_parent_is_read_once() {
        let mut image = image(&[]);
        // A subdirectory record "LOOP" whose extent is the root's own.
        let dir = 18 * SECTOR as usize;
        let looped = record(18, SECTOR as u32, true, b"LOOP");
        image[dir + 68..dir + 68 + looped.len()].copy_from_slice(&looped);
        let listing = list(image.as_slice()).expect("list");
        assert_eq!(listing.directories, 1);
        assert!(listing.problems.iter().any(|p| p.reason.contains("loop")));
    }

    #[test]
    fn not_an_image_and_bytes_that_end_anywhere_are_errors_not_panics() {
        assert!(list(b"hello".as_slice()).is_err());
        let image = image(&[("A;1", b"a")]);
        for cut in (0..image.len()).step_by(97) {
            let _ = list(&image[..cut]);
        }
    }

    /// An image whose root directory (sector 18) holds `root_records` after `.` and
    /// `..`, sized `root_size`, followed by `extra` sectors of whatever `fill` writes.
    fn raw_image(root_records: &[u8], root_size: u32, extra: usize) -> Vec<u8> {
        let sectors = 18 + (root_size as usize).div_ceil(SECTOR as usize) + extra;
        let mut image = vec![0u8; sectors * SECTOR as usize];
        let pvd = 16 * SECTOR as usize;
        image[pvd] = 1;
        image[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
        image[pvd + 80..pvd + 84].copy_from_slice(&(sectors as u32).to_le_bytes());
        image[pvd + 128..pvd + 130].copy_from_slice(&2048u16.to_le_bytes());
        let root = record(18, root_size, true, &[0]);
        image[pvd + 156..pvd + 156 + root.len()].copy_from_slice(&root);
        let term = 17 * SECTOR as usize;
        image[term] = 255;
        image[term + 1..term + 6].copy_from_slice(b"CD001");
        let dir = 18 * SECTOR as usize;
        let mut records = record(18, root_size, true, &[0]);
        records.extend(record(18, root_size, true, &[1]));
        records.extend_from_slice(root_records);
        image[dir..dir + records.len()].copy_from_slice(&records);
        image
    }

    #[test]
    fn entries_up_to_the_limit_are_listed_and_one_more_is_reported() {
        // Records never cross a sector: 60 of 34 bytes per sector.
        let listed = |count: usize| {
            // After `.` and `..` (68 bytes), as many 34-byte records as fit a sector.
            let sector = SECTOR as usize;
            let mut records = Vec::new();
            for _ in 0..count {
                let at = 68 + records.len();
                if at % sector + 34 > sector {
                    records.resize(records.len() + sector - at % sector, 0);
                }
                records.extend(record(18, 0, false, b"F"));
            }
            let sectors = (68 + records.len()).div_ceil(sector);
            let image = raw_image(&records, (sectors * SECTOR as usize) as u32, 0);
            list(image.as_slice()).expect("list")
        };
        let at = listed(MAX_ISO_ENTRIES);
        assert_eq!(at.files.len(), MAX_ISO_ENTRIES);
        assert!(at.problems.is_empty(), "{:?}", at.problems.first());
        let over = listed(MAX_ISO_ENTRIES + 1);
        assert_eq!(over.files.len(), MAX_ISO_ENTRIES);
        assert!(over.problems[0].reason.contains("listing stopped"));
    }

    #[test]
    fn directories_down_to_the_depth_limit_are_read_and_deeper_ones_reported() {
        // A chain of directories, one per sector after the root: D/D/D/...
        let chain = |levels: usize| {
            let mut image = raw_image(
                &record(19, SECTOR as u32, true, b"D"),
                SECTOR as u32,
                levels,
            );
            for level in 1..=levels {
                let at = (18 + level) * SECTOR as usize;
                let mut records = record(18 + level as u32, SECTOR as u32, true, &[0]);
                records.extend(record(17 + level as u32, SECTOR as u32, true, &[1]));
                if level < levels {
                    records.extend(record(19 + level as u32, SECTOR as u32, true, b"D"));
                }
                image[at..at + records.len()].copy_from_slice(&records);
            }
            list(image.as_slice()).expect("list")
        };
        let at = chain(MAX_ISO_DEPTH - 1);
        assert_eq!(at.directories, MAX_ISO_DEPTH);
        assert!(at.problems.is_empty(), "{:?}", at.problems);
        let over = chain(MAX_ISO_DEPTH);
        assert_eq!(over.directories, MAX_ISO_DEPTH);
        assert!(
            over.problems[0].reason.contains("deeper than"),
            "{:?}",
            over.problems
        );
    }

    #[test]
    fn a_directory_at_the_size_limit_is_read_and_a_larger_one_reported() {
        let at = raw_image(&[], MAX_DIRECTORY_BYTES as u32, 0);
        let listing = list(at.as_slice()).expect("list");
        assert_eq!(listing.directories, 1);
        assert!(listing.problems.is_empty(), "{:?}", listing.problems);
        let over = raw_image(&[], MAX_DIRECTORY_BYTES as u32 + 1, 0);
        let listing = list(over.as_slice()).expect("list");
        assert_eq!(listing.directories, 0);
        assert!(
            listing.problems[0].reason.contains("over the"),
            "{:?}",
            listing.problems
        );
    }

    #[test]
    fn directory_bytes_past_the_total_limit_stop_the_listing() {
        // Subdirectories that all point at one 8 MiB extent (distinct LBAs, overlapping
        // data in a real attack; here each its own LBA into the same zeroed area).
        let per = MAX_DIRECTORY_BYTES;
        let fits = (MAX_TOTAL_DIRECTORY_BYTES / per) as usize; // root's 2 KiB aside
        let listed = |subdirectories: usize| {
            let mut records = Vec::new();
            for i in 0..subdirectories {
                records.extend(record(
                    19 + i as u32,
                    per as u32,
                    true,
                    format!("D{i}").as_bytes(),
                ));
            }
            let extra = (per / SECTOR) as usize + subdirectories + 1;
            let image = raw_image(&records, SECTOR as u32, extra);
            list(image.as_slice()).expect("list")
        };
        let at = listed(fits - 1);
        assert_eq!(at.directories, fits);
        assert!(at.problems.is_empty(), "{:?}", at.problems.first());
        let over = listed(fits);
        assert_eq!(over.directories, fits);
        assert!(
            over.problems[0].reason.contains("listing stopped"),
            "{:?}",
            over.problems
        );
    }

    #[test]
    fn files_over_the_listed_bytes_limit_are_reported_not_listed() {
        // Records that all point at one extent of the image (sector 19 on): as many as
        // the limit allows are listed, the next one is a problem.
        let listed = |extent_bytes: u64, count: usize| {
            let mut records = Vec::new();
            for i in 0..count {
                records.extend(record(
                    19,
                    extent_bytes as u32,
                    false,
                    format!("F{i}").as_bytes(),
                ));
            }
            let extra = extent_bytes.div_ceil(SECTOR) as usize;
            let image = raw_image(&records, SECTOR as u32, extra);
            let allowed = (image.len() as u64 * MAX_LISTED_BYTES_PER_IMAGE_BYTE
                + LISTED_BYTES_SLACK)
                / extent_bytes;
            (list(image.as_slice()).expect("list"), allowed as usize)
        };
        let extent = 16 * 1024 * 1024;
        let (_, allowed) = listed(extent, 1);
        let (at, _) = listed(extent, allowed);
        assert_eq!(at.files.len(), allowed);
        assert!(at.problems.is_empty(), "{:?}", at.problems.first());
        let (over, _) = listed(extent, allowed + 1);
        assert_eq!(over.files.len(), allowed);
        assert!(
            over.problems[0].reason.contains("overlap"),
            "{:?}",
            over.problems
        );
    }

    #[test]
    fn the_primary_descriptor_is_found_only_within_the_descriptor_limit() {
        let with_pvd_at = |index: usize| {
            let mut image = image(&[("A;1", b"a")]);
            let pvd = image[16 * SECTOR as usize..17 * SECTOR as usize].to_vec();
            let mut descriptors = Vec::new();
            for _ in 0..index {
                let mut other = vec![0u8; SECTOR as usize];
                other[0] = 3; // a Volume Partition descriptor, skipped
                other[1..6].copy_from_slice(b"CD001");
                descriptors.extend(other);
            }
            descriptors.extend(pvd);
            // Move the tree after the descriptors: rebuild offsets by shifting sectors.
            let shift = index;
            let mut rest = image.split_off(16 * SECTOR as usize);
            rest.drain(..SECTOR as usize); // the original PVD
            image.extend(descriptors);
            image.extend(rest);
            // The root and file extents move by `shift` sectors.
            let pvd_at = (16 + index) * SECTOR as usize;
            let root_extent = pvd_at + 156 + 2;
            let moved = |image: &mut Vec<u8>, at: usize| {
                let v = u32_le(image, at).expect("extent") + shift as u32;
                image[at..at + 4].copy_from_slice(&v.to_le_bytes());
            };
            moved(&mut image, root_extent);
            let blocks = pvd_at + 80;
            moved(&mut image, blocks);
            let dir = (18 + shift) * SECTOR as usize;
            for record_at in [dir, dir + 34, dir + 68] {
                moved(&mut image, record_at + 2);
            }
            list(image.as_slice())
        };
        let found = with_pvd_at(MAX_VOLUME_DESCRIPTORS - 1).expect("within the limit");
        assert_eq!(found.files.len(), 1);
        let over = with_pvd_at(MAX_VOLUME_DESCRIPTORS).expect_err("past the limit");
        assert!(
            over.to_string().contains("no primary volume descriptor"),
            "{over}"
        );
    }

    #[test]
    fn names_that_are_not_path_components_are_refused() {
        assert!(file_name(b"..", false).is_err());
        assert!(file_name(b"A/B;1", false).is_err());
        assert_eq!(
            file_name(b"VIEWER.EXE;1", false).expect("name"),
            "VIEWER.EXE"
        );
        let joliet: Vec<u8> = "viewer.exe;1"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(file_name(&joliet, true).expect("name"), "viewer.exe");
    }
}
