//! Content hashing: BLAKE3 by default, SHA-256 for FIPS settings, at memory bandwidth on
//! every core, and never a torn hash of a file that changes underneath us.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rayon::prelude::*;
use serde::{Serialize, Serializer};
use sha2::Digest as _;

use crate::entry::{Content, Entry, EntryType, Meta};
use std::os::fd::OwnedFd;

use crate::open::{open_directory, open_directory_below, open_for_reading, open_in_directory};
use crate::walk::again_if_vanished;

/// Read size per system call. Large enough that syscall overhead vanishes against the hash.
pub const HASH_BUFFER_SIZE: usize = 1 << 20;

/// How many times a file that changed while being hashed is read again before it is
/// reported as unstable. An attacker who rewrites a file continuously gets a finding, not
/// an endless loop.
pub const MAX_HASH_ATTEMPTS: u32 = 3;

/// Files at least this large are hashed with BLAKE3's multi-threaded tree mode, so one
/// large file does not leave the other cores idle at the end of a run.
const PARALLEL_FILE_THRESHOLD: u64 = 8 << 20;

/// The content hash algorithm of a profile. Both produce 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Blake3,
    /// For FIPS 140 settings (hardware-accelerated with SHA-NI where present).
    Sha256,
}

impl HashAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Blake3 => "blake3",
            HashAlgorithm::Sha256 => "sha256",
        }
    }

    pub fn parse(s: &str) -> Option<HashAlgorithm> {
        match s {
            "blake3" => Some(HashAlgorithm::Blake3),
            "sha256" => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 32-byte digest (BLAKE3 or SHA-256; the profile records which).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// A running hash of either algorithm. Cloneable, so a prefix digest can be taken mid-stream.
#[derive(Clone, Debug)]
pub enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// Hashes `data`, on every core when it is large enough to be worth it.
    fn update_sized(&mut self, data: &[u8]) {
        if data.len() as u64 >= PARALLEL_FILE_THRESHOLD {
            self.update_large(data);
        } else {
            self.update(data);
        }
    }

    fn update_large(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update_rayon(data);
            }
            Hasher::Sha256(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> Digest {
        match self {
            Hasher::Blake3(h) => Digest(*h.finalize().as_bytes()),
            Hasher::Sha256(h) => Digest(h.finalize().into()),
        }
    }
}

/// What to hash for one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashRequest {
    Skip,
    Full,
    /// The whole file, and also its first `n` bytes (to prove a growing log kept its prefix).
    FullWithPrefix(u64),
    /// The whole file, split by the [`ContentSplitter`] into header and pixel data when it
    /// is a DICOM instance of at most [`MAX_SPLIT_BYTES`].
    Split,
}

/// Files up to this size are read whole to be split; a larger one is hashed as a plain
/// file (its DICOM facts are not recorded). Two workers hold at most twice this.
pub const MAX_SPLIT_BYTES: u64 = 256 * 1024 * 1024;

/// Where a DICOM instance's Pixel Data lies, and who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The Pixel Data value (or its fragments); empty for an instance without pixels.
    pub pixels: std::ops::Range<usize>,
    pub instance_uid: String,
    pub transfer_syntax: String,
    /// The File Meta Information elements (group 0002); empty for a bare data set. Left
    /// out of [`DicomFacts::data_set`], so that an instance received again (another
    /// sending AE, another writer) is told from one whose image was edited.
    pub file_meta: std::ops::Range<usize>,
    /// The values that say whom the instance belongs to and what its pixels are, without
    /// padding, each `None` when absent: the first [`PLACE_VALUES`] its place (for
    /// DICOM: its Study Instance UID, then Series Instance UID; the first also salts the
    /// details), the next [`DETAIL_VALUES`] its patient's and study's details, the rest
    /// its geometry and calibration; hashed into [`DicomFacts::identity`]. Ranges, not
    /// copies: a forged value costs no allocation.
    pub identity: [Option<std::ops::Range<usize>>; IDENTITY_VALUES],
    /// How its Pixel Data is read as an image; kept as [`DicomFacts::form`] beside an
    /// identity of parts.
    pub form: crate::PixelForm,
    /// The values that say what the instance is and how it is shown, without padding,
    /// each `None` when absent: its Modality, then its Series Description and Window
    /// Center and Width; hashed into [`DicomFacts::description`], salted with the Series
    /// Instance UID (the second of [`Split::identity`]).
    pub description: [Option<std::ops::Range<usize>>; DESCRIPTION_VALUES],
}

/// How many values say what an instance is and how it is shown (see
/// [`Split::description`]).
pub const DESCRIPTION_VALUES: usize = 4;

/// How many of the first [`Split::description`] values are its Modality.
pub const MODALITY_VALUES: usize = 1;

/// How many values say whom an instance belongs to and what its pixels are (see
/// [`Split::identity`]).
pub const IDENTITY_VALUES: usize = 16;

/// How many of the first [`Split::identity`] values are the instance's place.
pub const PLACE_VALUES: usize = 2;

/// How many of the [`Split::identity`] values after the place are its details; the rest
/// are its geometry.
pub const DETAIL_VALUES: usize = 8;

/// Finds the parts of a file to hash apart. Implemented above this crate (by the DICOM
/// inspection), so that reading stays here and parsing stays there.
pub trait ContentSplitter: Sync {
    /// `None`: not a file this splitter understands; it is hashed as a whole.
    fn split(&self, bytes: &[u8]) -> Option<Split>;
}

/// Domain separation of a split digest from a plain one (the digest of a file whose bytes
/// happen to be two digests).
const SPLIT_DIGEST_CONTEXT: &[u8] = b"pacsguard dicom instance v1\0header+pixels";

/// Chunk size of the pipelined path for large files: one chunk is read while the previous
/// one is hashed (by BLAKE3 on every core).
const PIPELINE_CHUNK: usize = 4 << 20;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; HASH_BUFFER_SIZE]);
    /// Whole files read to be split; kept per thread so its allocation is reused.
    static WHOLE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The running state of one file's hash: the hasher, the prefix digest once reached, and
/// the byte count.
struct Feed {
    hasher: Hasher,
    prefix: Option<u64>,
    prefix_digest: Option<(u64, Digest)>,
    total: u64,
    large: bool,
}

impl Feed {
    fn new(algorithm: HashAlgorithm, prefix: Option<u64>, large: bool) -> Feed {
        Feed {
            hasher: algorithm.hasher(),
            prefix,
            prefix_digest: None,
            total: 0,
            large,
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        let n = chunk.len() as u64;
        if let Some(want) = self.prefix
            && self.prefix_digest.is_none()
            && self.total + n >= want
        {
            // `want - total` is at most `n` here, so the split is in range.
            let split = usize::try_from(want - self.total)
                .unwrap_or(chunk.len())
                .min(chunk.len());
            self.hasher.update(&chunk[..split]);
            self.prefix_digest = Some((want, self.hasher.clone().finalize()));
            chunk = &chunk[split..];
        }
        if self.large {
            self.hasher.update_large(chunk);
        } else {
            self.hasher.update(chunk);
        }
        self.total += n;
    }

    fn finish(mut self, algorithm: HashAlgorithm) -> (Hasher, Option<(u64, Digest)>, u64) {
        if self.prefix == Some(0) && self.prefix_digest.is_none() {
            self.prefix_digest = Some((0, algorithm.hasher().finalize()));
        }
        (self.hasher, self.prefix_digest, self.total)
    }
}

/// Reads until `buffer` is full or the file ends; returns the byte count (0 at the end).
pub(crate) fn read_full(file: &mut std::fs::File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Large files: the copy out of the page cache of chunk n+1 overlaps the hashing of
/// chunk n, so neither core waits for the other.
fn hash_pipelined(file: &mut std::fs::File, feed: &mut Feed, size: u64) -> io::Result<()> {
    let (mut current, mut next) = (vec![0u8; PIPELINE_CHUNK], vec![0u8; PIPELINE_CHUNK]);
    let mut n = read_full(file, &mut current)?;
    // A file that keeps growing while we read it is not followed forever: past the size
    // fstat gave, the read stops and the size check reports the change.
    while n > 0 && feed.total <= size {
        let chunk = &current[..n];
        let (read, ()) = rayon::join(|| read_full(file, &mut next), || feed.feed(chunk));
        n = read?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok(())
}

/// Zeros fed to the hasher for a hole, without reading them from disk.
static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];
const ZERO_CHUNK: usize = 4 << 20;

/// Whether the file has fewer blocks allocated than its size needs: it has holes, which
/// `SEEK_DATA`/`SEEK_HOLE` let us skip instead of reading zeros from the page cache.
fn is_sparse(file: &std::fs::File, size: u64) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(size >= PARALLEL_FILE_THRESHOLD && file.metadata()?.blocks().saturating_mul(512) < size)
}

/// Hashes a sparse file: its data regions are read, its holes (`SEEK_HOLE`) fed to the
/// hasher as zeros from a static buffer. The digest is the digest of the file's content,
/// the same as `b3sum` or `sha256sum` give; only the disk reads of the holes are saved.
/// (BLAKE3 and SHA-256 still hash every zero: each BLAKE3 chunk depends on its position,
/// so there is no shortcut for a run of zeros.) Past `size`, nothing more is fed; growth
/// or shrinking is caught by the size check after reading.
fn hash_sparse(file: &mut std::fs::File, feed: &mut Feed, size: u64) -> io::Result<()> {
    use rustix::fs::SeekFrom;
    let mut at = 0u64;
    while at < size {
        // The next data at or after `at`; ENXIO: only a hole remains up to the end.
        let data = match rustix::fs::seek(&*file, SeekFrom::Data(at)) {
            Ok(data) => data.min(size),
            Err(rustix::io::Errno::NXIO) => size,
            Err(e) => return Err(e.into()),
        };
        feed_zeros(feed, data - at);
        at = data;
        if at >= size {
            break;
        }
        let hole = rustix::fs::seek(&*file, SeekFrom::Hole(at))?.min(size);
        rustix::fs::seek(&*file, SeekFrom::Start(at))?;
        let mut remaining = hole - at;
        let done = BUFFER.with_borrow_mut(|buffer| -> io::Result<bool> {
            while remaining > 0 {
                let want = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buffer.len());
                match read_full(file, &mut buffer[..want])? {
                    0 => return Ok(true), // shrank: the size check reports it
                    n => {
                        feed.feed(&buffer[..n]);
                        remaining -= n as u64;
                    }
                }
            }
            Ok(false)
        })?;
        if done {
            break;
        }
        at = hole;
    }
    Ok(())
}

fn feed_zeros(feed: &mut Feed, mut n: u64) {
    while n > 0 {
        let take = usize::try_from(n).unwrap_or(ZERO_CHUNK).min(ZERO_CHUNK);
        feed.feed(&ZEROS[..take]);
        n -= take as u64;
    }
}

/// Hashes, in parallel, every regular file of `entries` for which `request` asks it.
///
/// Each entry's `content` becomes `Hashed`, `Unreadable`, `Unstable` or `Vanished`, and its
/// `meta` is refreshed from the open file, so the recorded metadata and hash describe the
/// same state. `progress` is called with the byte count of every file done.
pub fn hash_files(
    root: &Path,
    entries: &mut [Entry],
    algorithm: HashAlgorithm,
    request: impl Fn(&Entry) -> HashRequest + Sync,
    splitter: Option<&dyn ContentSplitter>,
    progress: &(dyn Fn(u64) + Sync),
) {
    // Entries are sorted by path, so the files of one directory mostly sit together: each
    // batch opens its directory once and its files relative to it.
    // The walk's record of each batch's directory, where the entries hold it: the
    // directory reopened for hashing must be that one (a directory moved in from outside
    // the tree since the walk, or replaced, is not the one walked: nothing in it is opened).
    let walked_dirs: Vec<Option<DirId>> = entries
        .chunk_by(|a, b| parent(&a.rel) == parent(&b.rel))
        .flat_map(|same_dir| {
            let id = walked_directory(entries, parent(&same_dir[0].rel));
            std::iter::repeat_n(id, same_dir.len().div_ceil(FILES_PER_BATCH))
        })
        .collect();
    let batches: Vec<(&mut [Entry], Option<DirId>)> = entries
        .chunk_by_mut(|a, b| parent(&a.rel) == parent(&b.rel))
        .flat_map(|same_dir| same_dir.chunks_mut(FILES_PER_BATCH))
        .zip(walked_dirs)
        .collect();
    // Every directory is opened from the root's descriptor one component at a time,
    // without following links: no PATH_MAX limit, and no symlink swapped in for a
    // directory since the walk can lead the hashing elsewhere.
    let root_fd = open_directory(root).ok();
    batches.into_par_iter().for_each(|(batch, walked_dir)| {
        let mut dir: Option<io::Result<OwnedFd>> = None;
        for entry in batch.iter_mut() {
            if entry.kind != EntryType::File {
                continue;
            }
            let (prefix, split) = match request(entry) {
                HashRequest::Skip => continue,
                HashRequest::Full => (None, None),
                HashRequest::FullWithPrefix(n) => (Some(n), None),
                HashRequest::Split => (None, splitter),
            };
            // Borrowed by the opener while `hash_entry` updates the rest of the entry; put
            // back right after.
            let rel = std::mem::take(&mut entry.rel);
            let dir = dir.get_or_insert_with(|| match &root_fd {
                // An ancestor renamed away and back since the walk is looked for again:
                // taken as gone, every file of the batch would be judged removed.
                Some(root_fd) => again_if_vanished(|| open_directory_below(root_fd, parent(&rel)))
                    .and_then(|fd| confirm_directory(fd, walked_dir)),
                None => Err(io::ErrorKind::NotADirectory.into()),
            });
            let walked_file = (entry.meta.dev, entry.meta.ino);
            let open = || match (dir.as_ref(), root_fd.is_some() && !rel.is_empty()) {
                (Ok(fd), true) => {
                    again_if_vanished(|| open_walked_file(fd, file_name(&rel), walked_file))
                }
                // The directory, listed by the walk, still not found after the looks
                // above: its files are judged vanished (`removed`). Said `unreadable`
                // instead, a directory renamed away during the hashing hid a changed
                // file in it at will (review s10-r15).
                // The directory is replaced (ELOOP: a symlink stands on the way, which is
                // not followed): the caller reports it as changed.
                // ENOTDIR: a file, or a symlink (O_NOFOLLOW), stands on the way: said so,
                // not "Not a directory" of a file (review s11-r15).
                (Err(e), true) => Err(match e.raw_os_error() {
                    Some(libc::ENOTDIR) => io::Error::other(
                        "its directory was replaced by a non-directory (a link, not \
                         followed, or a file) since the walk: nothing in it was opened",
                    ),
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(e.kind(), e.to_string()),
                }),
                // The root itself is the file.
                (_, false) => open_for_reading(&absolute(root, &rel)),
            };
            hash_entry(&open, entry, algorithm, prefix, split);
            entry.rel = rel;
            progress(entry.meta.size);
        }
    });
}

/// A directory's (device, inode).
type DirId = (u64, u64);

/// The walk's (device, inode) of the directory `rel`, if `entries` (sorted by path) hold it.
fn walked_directory(entries: &[Entry], rel: &[u8]) -> Option<(u64, u64)> {
    let found = entries
        .binary_search_by(|e| e.rel.as_slice().cmp(rel))
        .ok()?;
    let entry = &entries[found];
    (entry.kind == EntryType::Directory).then_some((entry.meta.dev, entry.meta.ino))
}

/// The directory reopened for hashing, if it is the one the walk listed (when known).
fn confirm_directory(fd: OwnedFd, walked: Option<(u64, u64)>) -> io::Result<OwnedFd> {
    let meta = crate::walk::fstat_meta(&fd)?;
    match walked {
        Some(id) if id != (meta.dev, meta.ino) => Err(io::Error::other(
            "its directory was replaced since the walk (another directory stands at its \
             path): nothing in it was opened",
        )),
        _ => Ok(fd),
    }
}

/// Marks an open refused because another inode than the walk's stands at the path.
#[derive(Debug)]
struct NotTheWalkedFile;

impl fmt::Display for NotTheWalkedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("another file than the one walked stands at its path")
    }
}

impl std::error::Error for NotTheWalkedFile {}

/// Opens the file `name` of `dir` only if it is still the inode the walk recorded: a
/// file (or FIFO, or device) swapped in since is looked at (`statx`), never opened.
/// What is swapped in between the look and the open is caught by the fstat after it.
fn open_walked_file(dir: &OwnedFd, name: &[u8], walked: (u64, u64)) -> io::Result<std::fs::File> {
    let (_, meta) = crate::walk::statx_at(dir, name)?;
    if (meta.dev, meta.ino) != walked {
        return Err(io::Error::other(NotTheWalkedFile));
    }
    open_in_directory(dir, name)
}

fn absolute(root: &Path, rel: &[u8]) -> std::path::PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}

fn file_name(rel: &[u8]) -> &[u8] {
    rel.rsplit(|&b| b == b'/').next().unwrap_or(rel)
}

/// Files hashed by one task: small enough that a directory of 100,000 images still
/// spreads over every core.
const FILES_PER_BATCH: usize = 64;

fn parent(rel: &[u8]) -> &[u8] {
    rel.iter()
        .rposition(|&b| b == b'/')
        .map_or(&[][..], |i| &rel[..i])
}

fn hash_entry(
    open: &dyn Fn() -> io::Result<std::fs::File>,
    entry: &mut Entry,
    algorithm: HashAlgorithm,
    prefix: Option<u64>,
    split: Option<&dyn ContentSplitter>,
) {
    for _ in 0..MAX_HASH_ATTEMPTS {
        match hash_once(open, entry, algorithm, prefix, split) {
            Ok(Attempt::Done(content, meta)) => {
                // fstat does not report inode flags; the walk's statx did.
                entry.meta = Meta {
                    flags: entry.meta.flags,
                    ..meta
                };
                entry.content = content;
                return;
            }
            Ok(Attempt::Changed) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                entry.content = Content::Vanished;
                return;
            }
            // ELOOP: a symlink now stands where the file was; ENXIO: a FIFO or socket;
            // or another inode altogether. The path changed since the walk; look again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => continue,
            Err(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.is::<NotTheWalkedFile>()) =>
            {
                continue;
            }
            Err(e) => {
                entry.content = Content::Unreadable(e.to_string());
                return;
            }
        }
    }
    entry.content = Content::Unstable;
}

enum Attempt {
    Done(Content, Meta),
    /// The file changed (or was replaced) while we read it.
    Changed,
}

fn hash_once(
    open: &dyn Fn() -> io::Result<std::fs::File>,
    entry: &Entry,
    algorithm: HashAlgorithm,
    prefix: Option<u64>,
    split: Option<&dyn ContentSplitter>,
) -> io::Result<Attempt> {
    let mut file = open()?;
    let before = file.metadata()?;
    if !before.is_file() {
        return Ok(Attempt::Changed);
    }
    let before = Meta::of(&before);
    // Only hash the inode the walk saw at this path: anything else was swapped in since.
    if (before.dev, before.ino) != (entry.meta.dev, entry.meta.ino) {
        return Ok(Attempt::Changed);
    }
    if let Some(splitter) = split
        && before.size <= MAX_SPLIT_BYTES
    {
        return hash_split(&mut file, &before, algorithm, splitter);
    }
    let mut feed = Feed::new(algorithm, prefix, before.size >= PARALLEL_FILE_THRESHOLD);
    if is_sparse(&file, before.size)? {
        hash_sparse(&mut file, &mut feed, before.size)?;
    } else if feed.large {
        hash_pipelined(&mut file, &mut feed, before.size)?;
    } else {
        // Read exactly the size fstat gave, without the extra read that would only confirm
        // the end: growth after the fstat is caught by the size check after reading.
        BUFFER.with_borrow_mut(|buffer| -> io::Result<()> {
            let mut remaining = before.size;
            while remaining > 0 {
                let want = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buffer.len());
                match read_full(&mut file, &mut buffer[..want])? {
                    0 => return Ok(()),
                    n => {
                        feed.feed(&buffer[..n]);
                        remaining -= n as u64;
                    }
                }
            }
            Ok(())
        })?;
    }
    let (hasher, prefix_digest, total) = feed.finish(algorithm);
    let after = Meta::of(&file.metadata()?);
    let stable = after.size == before.size
        && after.mtime == before.mtime
        && after.ctime == before.ctime
        && total == before.size;
    if !stable {
        return Ok(Attempt::Changed);
    }
    let digest = hasher.finalize();
    Ok(Attempt::Done(
        Content::Hashed {
            digest,
            prefix: prefix_digest.map(Box::new),
            dicom: None,
        },
        after,
    ))
}

/// Reads the whole file, asks the splitter where its parts are, and hashes them apart;
/// a file the splitter does not understand is hashed whole, as usual.
fn hash_split(
    file: &mut std::fs::File,
    before: &Meta,
    algorithm: HashAlgorithm,
    splitter: &dyn ContentSplitter,
) -> io::Result<Attempt> {
    WHOLE.with_borrow_mut(|bytes| {
        let size = usize::try_from(before.size).map_err(io::Error::other)?;
        bytes.clear();
        bytes.reserve(size);
        // `read_to_end` fills the spare capacity without zeroing it first: one pass over
        // the bytes instead of two. `take` stops at the size fstat gave; growth is caught
        // by the check after reading.
        let read = io::Read::read_to_end(&mut io::Read::take(&mut *file, before.size), bytes)?;
        let after = Meta::of(&file.metadata()?);
        let stable = read == size
            && after.size == before.size
            && after.mtime == before.mtime
            && after.ctime == before.ctime;
        if !stable {
            return Ok(Attempt::Changed);
        }
        let content = digest_bytes(bytes, algorithm, Some(splitter));
        Ok(Attempt::Done(content, after))
    })
}

/// The digest a profile records for a file holding `bytes`: split into header and Pixel
/// Data by `splitter` when it understands them (a DICOM instance), else of the whole.
/// The same computation as hashing the file from disk; `recover` uses it for copies read
/// from backups (archive members have no path to hash).
pub fn digest_bytes(
    bytes: &[u8],
    algorithm: HashAlgorithm,
    splitter: Option<&dyn ContentSplitter>,
) -> Content {
    let size = bytes.len();
    match splitter.and_then(|s| s.split(bytes)) {
        Some(split) if split.pixels.start <= split.pixels.end && split.pixels.end <= size => {
            let pixels = &bytes[split.pixels.clone()];
            let mut header = algorithm.hasher();
            header.update(&bytes[..split.pixels.start]);
            header.update(&bytes[split.pixels.end..]);
            let header = header.finalize();
            let data_set = data_set_digest(bytes, &split, algorithm);
            let identity = identity_digest(bytes, &split.identity, algorithm);
            // Recorded with the identity's parts only: the profile's codec keeps them
            // together (tag 11), so what is held in memory is what is signed.
            // Recorded with the form only (codec tag 12 extends tag 11).
            let description = identity
                .is_some()
                .then(|| description_digest(bytes, &split, algorithm))
                .flatten();
            let form = identity.is_some().then_some(split.form);
            let mut pixel_hasher = algorithm.hasher();
            pixel_hasher.update_sized(pixels);
            let pixels = pixel_hasher.finalize();
            let mut combined = algorithm.hasher();
            combined.update(SPLIT_DIGEST_CONTEXT);
            combined.update(&header.0);
            combined.update(&pixels.0);
            Content::Hashed {
                digest: combined.finalize(),
                prefix: None,
                dicom: Some(Box::new(crate::entry::DicomFacts {
                    header,
                    pixels,
                    instance_uid: split.instance_uid,
                    transfer_syntax: split.transfer_syntax,
                    data_set,
                    identity,
                    form,
                    description,
                })),
            }
        }
        _ => {
            let mut whole = algorithm.hasher();
            whole.update_sized(bytes);
            Content::Hashed {
                digest: whole.finalize(),
                prefix: None,
                dicom: None,
            }
        }
    }
}

/// The digest of everything but the File Meta Information elements and the Pixel Data
/// (the preamble and `DICM` included), or `None` when the parts overlap or fall outside
/// the file (a splitter's bug: then nothing is claimed about the data set).
fn data_set_digest(bytes: &[u8], split: &Split, algorithm: HashAlgorithm) -> Option<Digest> {
    let (meta, pixels) = (&split.file_meta, &split.pixels);
    let in_order = meta.start <= meta.end && meta.end <= pixels.start;
    if !in_order || pixels.start > pixels.end || pixels.end > bytes.len() {
        return None;
    }
    let mut hasher = algorithm.hasher();
    hasher.update(DATA_SET_DIGEST_CONTEXT);
    hasher.update(&bytes[..meta.start]);
    hasher.update(&bytes[meta.end..pixels.start]);
    hasher.update(&bytes[pixels.end..]);
    Some(hasher.finalize())
}

/// Keeps the data-set digest of a file from ever equalling a header digest.
const DATA_SET_DIGEST_CONTEXT: &[u8] = b"pacsguard data set without file meta v1\0";

/// Whom an instance belongs to and what its pixels are ([`crate::Identity::Parts`]): a
/// digest of its place (the first [`PLACE_VALUES`] values), one of its details (the next
/// [`DETAIL_VALUES`]) salted with the first value (the Study Instance UID), and one of its
/// geometry (the rest), or `None` when a range falls outside the file (a splitter's bug:
/// then nothing is claimed).
fn identity_digest(
    bytes: &[u8],
    values: &[Option<std::ops::Range<usize>>; IDENTITY_VALUES],
    algorithm: HashAlgorithm,
) -> Option<crate::Identity> {
    let (place, rest) = values.split_at(PLACE_VALUES);
    let (details, geometry) = rest.split_at(DETAIL_VALUES);
    let place = values_digest(bytes, PLACE_DIGEST_CONTEXT, place, algorithm)?;
    let salted: Vec<Option<std::ops::Range<usize>>> =
        values[..1].iter().chain(details).cloned().collect();
    let details = values_digest(bytes, DETAILS_DIGEST_CONTEXT, &salted, algorithm)?;
    let geometry = values_digest(bytes, GEOMETRY_DIGEST_CONTEXT, geometry, algorithm)?;
    Some(crate::Identity::Parts {
        place: first_bytes(&place),
        details: first_bytes(&details),
        geometry: first_bytes(&geometry),
    })
}

/// What an instance is and how it is shown ([`crate::Description`]): a digest of its
/// Modality and one of the rest, each salted with the Series Instance UID, or `None` when
/// a range falls outside the file (a splitter's bug: then nothing is claimed).
fn description_digest(
    bytes: &[u8],
    split: &Split,
    algorithm: HashAlgorithm,
) -> Option<crate::Description> {
    let series = &split.identity[PLACE_VALUES - 1];
    let (modality, presentation) = split.description.split_at(MODALITY_VALUES);
    let salted =
        |values: &[Option<std::ops::Range<usize>>]| -> Vec<Option<std::ops::Range<usize>>> {
            std::iter::once(series).chain(values).cloned().collect()
        };
    let modality = values_digest(bytes, MODALITY_DIGEST_CONTEXT, &salted(modality), algorithm)?;
    let presentation = values_digest(
        bytes,
        PRESENTATION_DIGEST_CONTEXT,
        &salted(presentation),
        algorithm,
    )?;
    Some(crate::Description {
        modality: first_bytes(&modality),
        presentation: first_bytes(&presentation),
    })
}

fn first_bytes(digest: &Digest) -> [u8; crate::IDENTITY_PART_BYTES] {
    let mut out = [0; crate::IDENTITY_PART_BYTES];
    out.copy_from_slice(&digest.0[..crate::IDENTITY_PART_BYTES]);
    out
}

/// The digest of `values` under `context`, each marked present or absent and
/// length-prefixed (so that no two lists of values share an encoding), or `None` when a
/// range falls outside the file.
fn values_digest(
    bytes: &[u8],
    context: &[u8],
    values: &[Option<std::ops::Range<usize>>],
    algorithm: HashAlgorithm,
) -> Option<Digest> {
    let mut hasher = algorithm.hasher();
    hasher.update(context);
    for value in values {
        match value {
            None => hasher.update(&[0]),
            Some(range) => {
                let value = bytes.get(range.clone())?;
                hasher.update(&[1]);
                hasher.update(&(value.len() as u64).to_le_bytes());
                hasher.update(value);
            }
        }
    }
    Some(hasher.finalize())
}

/// Keep the digests of an instance's place and details from ever equalling any other
/// digest, or each other.
const PLACE_DIGEST_CONTEXT: &[u8] = b"pacsguard instance place v2\0study+series uid";
const DETAILS_DIGEST_CONTEXT: &[u8] =
    b"pacsguard instance details v2\0study uid+patient id+name+birth+sex+dates";
const GEOMETRY_DIGEST_CONTEXT: &[u8] =
    b"pacsguard instance geometry v2\0position+orientation+spacing+thickness+rescale";
const MODALITY_DIGEST_CONTEXT: &[u8] = b"pacsguard instance modality v1\0series uid+modality";
const PRESENTATION_DIGEST_CONTEXT: &[u8] =
    b"pacsguard instance presentation v1\0series uid+series description+window center+width";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Timestamp;
    use std::os::fd::OwnedFd;

    fn file_entry(dir: &Path, name: &str) -> Entry {
        let meta = std::fs::symlink_metadata(dir.join(name)).expect("stat");
        Entry {
            rel: name.as_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta::of(&meta),
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Pending,
        }
    }

    fn write(dir: &Path, name: &str, data: &[u8]) {
        #[allow(clippy::disallowed_methods)] // test fixture, not a guarded tree
        std::fs::write(dir.join(name), data).expect("write fixture");
    }

    /// Splits at fixed offsets when the file starts with `SPLIT`.
    struct FixedSplitter(std::ops::Range<usize>);

    impl ContentSplitter for FixedSplitter {
        fn split(&self, bytes: &[u8]) -> Option<Split> {
            bytes.starts_with(b"SPLIT").then(|| Split {
                pixels: self.0.clone(),
                instance_uid: "1.2.3".into(),
                transfer_syntax: "1.2.840.10008.1.2.1".into(),
                file_meta: 5..6,
                identity: values(&[Some(6..12), None, Some(20..27)]),
                description: Default::default(),
                form: crate::PixelForm {
                    photometric: "MONOCHROME2".into(),
                    samples: 1,
                    bits_allocated: 16,
                    rows: 2,
                    columns: 3,
                },
            })
        }
    }

    /// The identity values `given`, the rest absent.
    fn values(
        given: &[Option<std::ops::Range<usize>>],
    ) -> [Option<std::ops::Range<usize>>; IDENTITY_VALUES] {
        let mut values: [Option<std::ops::Range<usize>>; IDENTITY_VALUES] = Default::default();
        values[..given.len()].clone_from_slice(given);
        values
    }

    /// Review r26-watch: the place digest covers the study and series alone, the details
    /// digest the patient's and study's salted with the study, the geometry digest the
    /// rest: a detail changed leaves the place alone, a series changed leaves the details
    /// alone, a study changed changes both (the details are salted with it), and a
    /// geometry value the geometry alone.
    #[test]
    fn the_place_and_the_details_of_an_instance_are_told_apart() {
        let bytes = b"1.2|1.2.3|PAT|DOE^J|1.9|1.2.3.4|PAX";
        let parts = |given: &[Option<std::ops::Range<usize>>]| match identity_digest(
            bytes,
            &values(given),
            HashAlgorithm::Blake3,
        ) {
            Some(crate::Identity::Parts {
                place,
                details,
                geometry,
            }) => (place, details, geometry),
            other => panic!("{other:?}"),
        };
        let stored = parts(&[Some(0..3), Some(4..9), Some(10..13), Some(14..19)]);
        let renamed = parts(&[Some(0..3), Some(4..9), Some(10..13), Some(20..23)]);
        assert_eq!(renamed.0, stored.0);
        assert_ne!(renamed.1, stored.1);
        let re_id = parts(&[Some(0..3), Some(4..9), Some(32..35), Some(14..19)]);
        assert_eq!(re_id.0, stored.0);
        assert_ne!(re_id.1, stored.1);
        let other_series = parts(&[Some(0..3), Some(24..31), Some(10..13), Some(14..19)]);
        assert_ne!(other_series.0, stored.0);
        assert_eq!(other_series.1, stored.1);
        let other_study = parts(&[Some(20..23), Some(4..9), Some(10..13), Some(14..19)]);
        assert_ne!(other_study.0, stored.0);
        assert_ne!(other_study.1, stored.1);
        assert_eq!(other_study.2, stored.2);
        // A geometry value changes the geometry alone.
        let mut given = vec![Some(0..3), Some(4..9), Some(10..13), Some(14..19)];
        given.resize(PLACE_VALUES + DETAIL_VALUES, None);
        given.push(Some(20..23));
        let measured = parts(&given);
        assert_eq!((measured.0, measured.1), (stored.0, stored.1));
        assert_ne!(measured.2, stored.2);
    }

    /// Review r28-watch: what an instance is (its Modality) and how it is shown (Series
    /// Description, Window Center and Width) are two digests apart, neither touching the
    /// identity's, each salted with the Series Instance UID: the same Modality in two
    /// series is two digests, so the profile does not show which instances are CT.
    #[test]
    fn the_modality_and_the_presentation_are_digested_apart_salted_with_the_series() {
        let bytes = b"1.2|1.2.3|CT|MR|HEAD|40|400|1.2.4";
        let split = |series: std::ops::Range<usize>,
                     description: [Option<std::ops::Range<usize>>; 4]| Split {
            pixels: 0..0,
            instance_uid: "1.2.3.4".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            file_meta: 0..0,
            identity: values(&[Some(0..3), Some(series)]),
            description,
            form: crate::PixelForm::default(),
        };
        let digest = |series, description| {
            description_digest(bytes, &split(series, description), HashAlgorithm::Blake3)
                .expect("within the file")
        };
        let stored = digest(
            4..9,
            [Some(10..12), Some(16..20), Some(21..23), Some(24..27)],
        );
        let as_mr = digest(
            4..9,
            [Some(13..15), Some(16..20), Some(21..23), Some(24..27)],
        );
        assert_ne!(as_mr.modality, stored.modality);
        assert_eq!(as_mr.presentation, stored.presentation);
        let rewindowed = digest(4..9, [Some(10..12), Some(16..20), Some(21..23), None]);
        assert_eq!(rewindowed.modality, stored.modality);
        assert_ne!(rewindowed.presentation, stored.presentation);
        let other_series = digest(
            28..33,
            [Some(10..12), Some(16..20), Some(21..23), Some(24..27)],
        );
        assert_ne!(other_series.modality, stored.modality);
        assert_ne!(other_series.presentation, stored.presentation);
        // Past the file: nothing is claimed.
        let split = split(4..9, [Some(10..12), None, None, Some(30..99)]);
        assert_eq!(
            description_digest(bytes, &split, HashAlgorithm::Blake3),
            None
        );
    }

    /// Review r25-watch: the identity digest covers the values the splitter names, each
    /// marked present or absent and length-prefixed, so that no other list of values
    /// (a byte moved from one to the next, a value emptied or removed) shares it; a range
    /// outside the file claims nothing.
    #[test]
    fn the_identity_digest_tells_lists_of_values_apart_and_claims_nothing_past_the_file() {
        let bytes = b"ab|cd";
        let digest = |given: [Option<std::ops::Range<usize>>; 3]| {
            identity_digest(bytes, &values(&given), HashAlgorithm::Blake3)
        };
        let stored = digest([Some(0..2), Some(3..5), None]);
        assert!(stored.is_some());
        assert_eq!(stored, digest([Some(0..2), Some(3..5), None]));
        assert_ne!(stored, digest([Some(0..1), Some(3..5), None]));
        assert_ne!(
            digest([Some(0..1), Some(1..2), None]),
            digest([Some(0..2), Some(2..2), None])
        );
        assert_ne!(digest([Some(0..0), None, None]), digest([None, None, None]));
        assert_ne!(digest([None, None, Some(0..0)]), digest([None, None, None]));
        assert_eq!(digest([Some(0..9), None, None]), None);
        assert_eq!(digest([None, None, Some(0..9)]), None);
    }

    #[test]
    fn split_digests_cover_both_parts_and_other_files_are_hashed_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.dcm", b"SPLIT-header|PIXELS|trailer");
        write(dir.path(), "b.txt", b"plain text");
        let mut entries = vec![
            file_entry(dir.path(), "a.dcm"),
            file_entry(dir.path(), "b.txt"),
        ];
        let splitter = FixedSplitter(13..19);
        hash_files(
            dir.path(),
            &mut entries,
            HashAlgorithm::Blake3,
            |_| HashRequest::Split,
            Some(&splitter),
            &|_| {},
        );
        let Content::Hashed {
            digest,
            dicom: Some(facts),
            ..
        } = &entries[0].content
        else {
            panic!("split: {:?}", entries[0].content);
        };
        assert_eq!(facts.pixels.0, *blake3::hash(b"PIXELS").as_bytes());
        assert_eq!(
            facts.header.0,
            *blake3::hash(b"SPLIT-header||trailer").as_bytes()
        );
        let mut combined = blake3::Hasher::new();
        combined.update(SPLIT_DIGEST_CONTEXT);
        combined.update(&facts.header.0);
        combined.update(&facts.pixels.0);
        assert_eq!(digest.0, *combined.finalize().as_bytes());
        // The identity is recorded beside the digests, and the digest does not cover it
        // (profiles made before it was recorded keep their digests).
        assert_eq!(
            facts.identity,
            identity_digest(
                b"SPLIT-header|PIXELS|trailer",
                &values(&[Some(6..12), None, Some(20..27)]),
                HashAlgorithm::Blake3
            )
        );
        assert!(facts.identity.is_some());
        assert_eq!(
            entries[1].content.digest().map(|d| d.0),
            Some(*blake3::hash(b"plain text").as_bytes())
        );

        // A range past the end (a splitter's bug or a file that shrank) is never sliced:
        // the file is hashed whole.
        let mut entries = vec![file_entry(dir.path(), "a.dcm")];
        hash_files(
            dir.path(),
            &mut entries,
            HashAlgorithm::Blake3,
            |_| HashRequest::Split,
            Some(&FixedSplitter(13..4000)),
            &|_| {},
        );
        assert_eq!(
            entries[0].content.digest().map(|d| d.0),
            Some(*blake3::hash(b"SPLIT-header|PIXELS|trailer").as_bytes())
        );
    }

    #[test]
    fn known_answers_for_both_algorithms() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "abc", b"abc");
        for (algorithm, want) in [
            (
                HashAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgorithm::Blake3,
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
        ] {
            let mut entries = vec![file_entry(dir.path(), "abc")];
            hash_files(
                dir.path(),
                &mut entries,
                algorithm,
                |_| HashRequest::Full,
                None,
                &|_| {},
            );
            assert_eq!(
                entries[0].content.digest().map(Digest::to_hex).as_deref(),
                Some(want)
            );
        }
    }

    #[test]
    fn prefix_digest_equals_digest_of_the_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..3 * HASH_BUFFER_SIZE + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        write(dir.path(), "log", &data);
        for cut in [
            0usize,
            1,
            HASH_BUFFER_SIZE,
            HASH_BUFFER_SIZE + 5,
            data.len(),
        ] {
            let mut entries = vec![file_entry(dir.path(), "log")];
            hash_files(
                dir.path(),
                &mut entries,
                HashAlgorithm::Blake3,
                |_| HashRequest::FullWithPrefix(cut as u64),
                None,
                &|_| {},
            );
            let Content::Hashed { digest, prefix, .. } = &entries[0].content else {
                panic!("not hashed: {:?}", entries[0].content)
            };
            assert_eq!(*digest, Digest(*blake3::hash(&data).as_bytes()));
            assert_eq!(
                prefix.as_deref().copied(),
                Some((cut as u64, Digest(*blake3::hash(&data[..cut]).as_bytes()))),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn the_pipelined_path_for_large_files_agrees_with_one_shot_hashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = PARALLEL_FILE_THRESHOLD as usize + 2 * PIPELINE_CHUNK + 12345;
        let data: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        write(dir.path(), "big", &data);
        for cut in [
            0,
            PIPELINE_CHUNK - 1,
            PIPELINE_CHUNK,
            3 * PIPELINE_CHUNK + 7,
            len,
        ] {
            for algorithm in [HashAlgorithm::Blake3, HashAlgorithm::Sha256] {
                let mut entries = vec![file_entry(dir.path(), "big")];
                hash_files(
                    dir.path(),
                    &mut entries,
                    algorithm,
                    |_| HashRequest::FullWithPrefix(cut as u64),
                    None,
                    &|_| {},
                );
                let one_shot = |bytes: &[u8]| {
                    let mut h = algorithm.hasher();
                    h.update(bytes);
                    h.finalize()
                };
                let Content::Hashed { digest, prefix, .. } = &entries[0].content else {
                    panic!("not hashed: {:?}", entries[0].content)
                };
                assert_eq!(*digest, one_shot(&data), "{algorithm} whole file");
                assert_eq!(
                    prefix.as_deref().copied(),
                    Some((cut as u64, one_shot(&data[..cut]))),
                    "{algorithm} cut {cut}"
                );
            }
        }
    }

    /// Bytes this process has read through read(2) and friends (`/proc/self/io` rchar),
    /// page cache or not: holes read as zeros count, holes skipped do not.
    fn bytes_read() -> u64 {
        let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("rchar")
    }

    fn digest_by(program: &str, path: &Path) -> String {
        let out = std::process::Command::new(program)
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("{program} runs (scripts/setup-test-deps.sh): {e}"));
        assert!(out.status.success(), "{program}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .expect("a digest")
            .to_string()
    }

    #[test]
    fn sparse_files_are_hashed_without_reading_their_holes() {
        // Alone in a child process, so that the read counter counts only this test.
        const CHILD: &str = "PACSGUARD_SPARSE_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "hash::tests::sparse_files_are_hashed_without_reading_their_holes",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .status()
                .expect("child runs");
            assert!(status.success());
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sparse");
        const SIZE: u64 = 512 << 20;
        {
            use std::os::unix::fs::FileExt as _;
            #[allow(clippy::disallowed_methods)] // the test writes its own fixture
            let file = std::fs::File::create(&path).expect("create");
            file.set_len(SIZE).expect("truncate");
            // Data islands at odd offsets, one straddling a block, one at the very end.
            for (at, data) in [
                (0u64, &b"head"[..]),
                (12_345_678, &b"island in the middle"[..]),
                (200 << 20, &[0xa5; 70_000][..]),
                (SIZE - 3, &b"end"[..]),
            ] {
                file.write_all_at(data, at).expect("write");
            }
            file.sync_all().expect("sync");
        }
        for (algorithm, program) in [
            (HashAlgorithm::Blake3, "b3sum"),
            (HashAlgorithm::Sha256, "sha256sum"),
        ] {
            let mut entries = vec![file_entry(dir.path(), "sparse")];
            let before = bytes_read();
            hash_files(
                dir.path(),
                &mut entries,
                algorithm,
                |_| HashRequest::FullWithPrefix(12_345_680),
                None,
                &|_| {},
            );
            let read = bytes_read() - before;
            assert!(
                read < 16 << 20,
                "{algorithm}: {read} bytes read for a {SIZE}-byte file of a few KiB of data"
            );
            let Content::Hashed { digest, prefix, .. } = &entries[0].content else {
                panic!("not hashed: {:?}", entries[0].content)
            };
            assert_eq!(digest.to_hex(), digest_by(program, &path), "{algorithm}");
            // The prefix digest ends inside a data island.
            let mut h = algorithm.hasher();
            h.update(b"head");
            h.update(&vec![0; 12_345_678 - 4]);
            h.update(b"is");
            assert_eq!(
                prefix.as_deref().copied(),
                Some((12_345_680, h.finalize())),
                "{algorithm} prefix"
            );
        }
    }

    #[test]
    fn a_file_replaced_since_the_walk_is_not_hashed_as_if_it_were_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "f", b"old");
        let mut entry = file_entry(dir.path(), "f");
        entry.meta.ino += 1; // the walk saw another inode at this path
        entry.meta.mtime = Timestamp::default();
        let mut entries = vec![entry];
        hash_files(
            dir.path(),
            &mut entries,
            HashAlgorithm::Blake3,
            |_| HashRequest::Full,
            None,
            &|_| {},
        );
        assert_eq!(entries[0].content, Content::Unstable);
    }

    #[test]
    fn vanished_and_unreadable_are_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "gone", b"x");
        let mut entries = vec![file_entry(dir.path(), "gone")];
        #[allow(clippy::disallowed_methods)] // test fixture
        std::fs::remove_file(dir.path().join("gone")).expect("rm");
        hash_files(
            dir.path(),
            &mut entries,
            HashAlgorithm::Blake3,
            |_| HashRequest::Full,
            None,
            &|_| {},
        );
        assert_eq!(entries[0].content, Content::Vanished);
    }

    /// Whether anything opened the files watched by `inotify` since it was made.
    fn opened(inotify: &OwnedFd) -> bool {
        let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = rustix::fs::inotify::Reader::new(inotify, &mut buffer);
        match reader.next() {
            Ok(event) => event
                .events()
                .contains(rustix::fs::inotify::ReadFlags::OPEN),
            Err(rustix::io::Errno::AGAIN) => false,
            Err(e) => panic!("inotify: {e}"),
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test builds and swaps its own fixtures
    fn what_stands_at_a_walked_path_since_the_walk_is_never_opened() {
        // After the walk, the study directory `a` is exchanged with a directory from
        // outside the tree holding its own `f` (renameat2 RENAME_EXCHANGE: a real
        // directory, no symlink to refuse), and the file `b` is replaced by another.
        // Hashing must open neither stand-in (an open alone rewinds a tape, or wakes a
        // FIFO's writer), and must not take either for the walked file.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("a")).expect("mkdir");
        std::fs::create_dir(&outside).expect("mkdir");
        write(&root, "a/f", b"walked");
        write(&root, "b", b"walked");
        write(&outside, "f", b"outside the tree");
        write(dir.path(), "b2", b"stand-in");
        let mut tree = crate::walk(&root, &crate::WalkOptions::default()).expect("walk");
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            root.join("a"),
            rustix::fs::CWD,
            &outside,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .expect("exchange");
        std::fs::rename(dir.path().join("b2"), root.join("b")).expect("replace");
        let inotify = rustix::fs::inotify::init(
            rustix::fs::inotify::CreateFlags::NONBLOCK | rustix::fs::inotify::CreateFlags::CLOEXEC,
        )
        .expect("inotify");
        for stand_in in [root.join("a/f"), root.join("b")] {
            rustix::fs::inotify::add_watch(
                &inotify,
                &stand_in,
                rustix::fs::inotify::WatchFlags::OPEN,
            )
            .expect("watch");
        }
        hash_files(
            &root,
            &mut tree.entries,
            HashAlgorithm::Blake3,
            |_| HashRequest::Full,
            None,
            &|_| {},
        );
        assert!(!opened(&inotify), "a stand-in was opened");
        let content = |rel: &[u8]| {
            let found = tree.entries.iter().find(|e| e.rel == rel).expect("entry");
            found.content.clone()
        };
        assert!(
            matches!(content(b"a/f"), Content::Unreadable(ref why) if why.contains("replaced")),
            "{:?}",
            content(b"a/f")
        );
        assert_eq!(content(b"b"), Content::Unstable);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test builds and swaps its own fixtures
    fn a_directory_replaced_by_a_link_since_the_walk_is_said_so() {
        // Seen in a real check raced by a swapper (review s11-r15): `d/x` was reported
        // "cannot read: Not a directory (os error 20)", naming the file but not why.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("d")).expect("mkdir");
        std::fs::create_dir(&outside).expect("mkdir");
        write(&root, "d/x", b"walked");
        write(&outside, "x", b"outside the tree");
        let mut tree = crate::walk(&root, &crate::WalkOptions::default()).expect("walk");
        std::fs::rename(root.join("d"), dir.path().join("d.away")).expect("away");
        std::os::unix::fs::symlink(&outside, root.join("d")).expect("symlink");
        hash_files(
            &root,
            &mut tree.entries,
            HashAlgorithm::Blake3,
            |_| HashRequest::Full,
            None,
            &|_| {},
        );
        let found = tree
            .entries
            .iter()
            .find(|e| e.rel == b"d/x")
            .expect("entry");
        assert!(
            matches!(&found.content, Content::Unreadable(why) if why.contains("replaced by a non-directory")),
            "{:?}",
            found.content
        );
    }
}
