//! What is recorded about one entry of a tree.

use std::fs;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};

use serde::Serialize;

use crate::hash::Digest;

/// Extended attribute values up to this many bytes are kept verbatim (so a changed SELinux
/// label or capability can be shown); longer ones are kept as a BLAKE3 digest. The kernel
/// bounds an entry's attribute list to 64 KiB (`XATTR_LIST_MAX`), so with this cap the
/// memory per entry stays bounded whatever an attacker stores.
pub const XATTR_INLINE_MAX: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryType {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    BlockDevice,
    CharDevice,
}

impl EntryType {
    pub fn of(file_type: fs::FileType) -> EntryType {
        if file_type.is_symlink() {
            EntryType::Symlink
        } else if file_type.is_dir() {
            EntryType::Directory
        } else if file_type.is_file() {
            EntryType::File
        } else if file_type.is_fifo() {
            EntryType::Fifo
        } else if file_type.is_socket() {
            EntryType::Socket
        } else if file_type.is_block_device() {
            EntryType::BlockDevice
        } else {
            EntryType::CharDevice
        }
    }

    /// From the type bits of `st_mode` (as `statx` gives them).
    pub fn of_mode(mode: u32) -> EntryType {
        match mode & libc::S_IFMT {
            libc::S_IFLNK => EntryType::Symlink,
            libc::S_IFDIR => EntryType::Directory,
            libc::S_IFREG => EntryType::File,
            libc::S_IFIFO => EntryType::Fifo,
            libc::S_IFSOCK => EntryType::Socket,
            libc::S_IFBLK => EntryType::BlockDevice,
            _ => EntryType::CharDevice,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Directory => "directory",
            EntryType::Symlink => "symlink",
            EntryType::Fifo => "fifo",
            EntryType::Socket => "socket",
            EntryType::BlockDevice => "block-device",
            EntryType::CharDevice => "char-device",
        }
    }

    /// Inverse of [`EntryType::as_str`], for reading stored baselines.
    pub fn parse(s: &str) -> Option<EntryType> {
        [
            EntryType::File,
            EntryType::Directory,
            EntryType::Symlink,
            EntryType::Fifo,
            EntryType::Socket,
            EntryType::BlockDevice,
            EntryType::CharDevice,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Seconds and nanoseconds since the Unix epoch, exactly as the kernel reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

/// The `stat` fields a profile keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Meta {
    pub size: u64,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    /// Device number for block and character devices, 0 otherwise.
    pub rdev: u64,
    /// The inode flags of [`INODE_FLAGS`] that are set (`chattr +i`, `+a`), as `statx`
    /// reports them; `None` where they are not known (a file system that does not report
    /// them, a profile taken before they were recorded), and then never compared.
    pub flags: Option<u32>,
}

/// `chattr +i`: the file cannot be changed, renamed, linked or deleted, not even by root.
/// Same value as `STATX_ATTR_IMMUTABLE` and `FS_IMMUTABLE_FL`.
pub const FLAG_IMMUTABLE: u32 = 0x10;
/// `chattr +a`: the file can only be appended to (`STATX_ATTR_APPEND`, `FS_APPEND_FL`).
pub const FLAG_APPEND: u32 = 0x20;
/// The inode flags a profile records, with their `lsattr` names. Both change what may be
/// done to a file: an intruder who clears them prepares a change, one who sets them pins
/// a planted file in place.
pub const INODE_FLAGS: [(u32, &str); 2] =
    [(FLAG_IMMUTABLE, "immutable"), (FLAG_APPEND, "append-only")];

/// Names the flags set in `flags` (`immutable,append-only`, or `none`).
pub fn describe_flags(flags: u32) -> String {
    let names: Vec<&str> = INODE_FLAGS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

impl Meta {
    pub fn of(m: &fs::Metadata) -> Meta {
        Meta {
            size: m.size(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: Timestamp {
                sec: m.mtime(),
                nsec: clamp_nsec(m.mtime_nsec()),
            },
            ctime: Timestamp {
                sec: m.ctime(),
                nsec: clamp_nsec(m.ctime_nsec()),
            },
            ino: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
            rdev: m.rdev(),
            flags: None,
        }
    }

    /// From `statx`, with the inode flags where the file system reports them.
    pub fn of_statx(x: &rustix::fs::Statx) -> Meta {
        let known = INODE_FLAGS
            .iter()
            .all(|(bit, _)| x.stx_attributes_mask.bits() & u64::from(*bit) != 0);
        let recorded: u64 = INODE_FLAGS.iter().map(|(bit, _)| u64::from(*bit)).sum();
        Meta {
            size: x.stx_size,
            mode: u32::from(x.stx_mode) & 0o7777,
            uid: x.stx_uid,
            gid: x.stx_gid,
            mtime: Timestamp {
                sec: x.stx_mtime.tv_sec,
                nsec: x.stx_mtime.tv_nsec.min(999_999_999),
            },
            ctime: Timestamp {
                sec: x.stx_ctime.tv_sec,
                nsec: x.stx_ctime.tv_nsec.min(999_999_999),
            },
            ino: x.stx_ino,
            dev: rustix::fs::makedev(x.stx_dev_major, x.stx_dev_minor),
            nlink: u64::from(x.stx_nlink),
            rdev: rustix::fs::makedev(x.stx_rdev_major, x.stx_rdev_minor),
            flags: known.then(|| (x.stx_attributes.bits() & recorded) as u32),
        }
    }

    /// Whether stat alone says the content cannot have changed: the test `check --fast`
    /// relies on. ctime is in it because restoring mtime (touch -r) still moves ctime.
    pub fn looks_unchanged(&self, other: &Meta) -> bool {
        self.size == other.size
            && self.mtime == other.mtime
            && self.ctime == other.ctime
            && self.ino == other.ino
            && self.dev == other.dev
    }
}

fn clamp_nsec(nsec: i64) -> u32 {
    u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0)
}

/// An extended attribute's value, verbatim when short.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum XattrValue {
    Inline(Vec<u8>),
    /// BLAKE3 of a value longer than [`XATTR_INLINE_MAX`].
    Digest(Digest),
}

impl XattrValue {
    pub fn of(value: Vec<u8>) -> XattrValue {
        if value.len() <= XATTR_INLINE_MAX {
            XattrValue::Inline(value)
        } else {
            XattrValue::Digest(Digest(*blake3::hash(&value).as_bytes()))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: XattrValue,
}

/// What is known of an entry's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Not a regular file: there is no content to hash.
    NotApplicable,
    /// A regular file not hashed (yet).
    Pending,
    /// The hash of the whole file, and of a requested prefix. For a DICOM instance hashed
    /// with a [`crate::ContentSplitter`], `digest` is the hash of its two parts' digests
    /// (see [`DicomFacts`]) and `dicom` holds them. The prefix (length, digest) is boxed:
    /// only growing logs have one, and inline it cost 40 bytes in every entry of every
    /// tree a run holds.
    Hashed {
        digest: Digest,
        prefix: Option<Box<(u64, Digest)>>,
        dicom: Option<Box<DicomFacts>>,
    },
    /// The file could not be read; the reason.
    Unreadable(String),
    /// The file changed on every attempt to hash it.
    Unstable,
    /// The file disappeared between the walk and the hashing.
    Vanished,
    /// Not hashed because the root's policy does not compare content (`volatile`).
    Skipped,
}

/// What a DICOM-aware profile records of an instance besides its digest: the digest of
/// its Pixel Data value and of everything else (so that CT-GAN style pixel tampering is
/// told apart from a header edit), its SOP Instance UID (so that a renamed instance is
/// recognised), its transfer syntax and whom it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DicomFacts {
    pub header: Digest,
    pub pixels: Digest,
    pub instance_uid: String,
    pub transfer_syntax: String,
    /// The digest of the instance without its File Meta Information (group 0002) and
    /// Pixel Data: the same for the same image received again by another node or writer.
    /// `None` in profiles made before it was recorded.
    pub data_set: Option<Digest>,
    /// Whom the instance belongs to, as digests (see [`Identity`]), so that a header
    /// rewritten with well-formed values under the same SOP Instance UID is told from an
    /// edit of anything else: the image was cut off from its study or its patient.
    /// `None` in profiles made before it was recorded.
    pub identity: Option<Identity>,
    /// How its Pixel Data is to be read as an image (see [`PixelForm`]), recorded with an
    /// [`Identity::Parts`] only. `None` in profiles made before it was recorded (session
    /// 26 and earlier): then a change of it cannot be told, and a re-compression's
    /// decoded pixels are judged by the form the new header claims.
    pub form: Option<PixelForm>,
    /// What the instance is and how it is shown, as digests (see [`Description`]),
    /// recorded with a [`DicomFacts::form`] only. `None` in profiles made before it was
    /// recorded (session 27 and earlier): then a rewrite of those values alone is an edit
    /// of the same image, as it was.
    pub description: Option<Description>,
}

/// What a DICOM instance is and how it is shown, beside whom it belongs to ([`Identity`]):
/// two digests, each salted with the Series Instance UID (unique, and not in the profile)
/// so that a short value (a Modality of two letters) cannot be found again from it
/// (review r28-watch: a wiper rewriting these over a whole store counted nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Description {
    /// A digest of its Modality: nothing routine rewrites it in place, so each instance
    /// whose modality changed counts.
    pub modality: [u8; IDENTITY_PART_BYTES],
    /// A digest of its Series Description and Window Center and Width: a correction
    /// touches a series at a time, so a change made is counted once, however many
    /// instances of the series made it together.
    pub presentation: [u8; IDENTITY_PART_BYTES],
}

/// How an instance's Pixel Data is read as an image, as its data set stated it when it
/// was captured: Photometric Interpretation, Samples per Pixel, Bits Allocated, Rows and
/// Columns (review r27-watch: the decoded pixels of a re-compression were judged by the
/// form the new header claims, so an attacker rewriting the pixels and writing "RGB"
/// escaped the comparison, and Rows and Columns swapped misread every kept pixel unseen).
/// Not patient data: kept as values, so a finding can say what changed. A value absent
/// (or not of its VR's length) is `""` or `0`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PixelForm {
    /// Photometric Interpretation, without padding, at most 16 bytes of text.
    pub photometric: String,
    pub samples: u16,
    pub bits_allocated: u16,
    pub rows: u16,
    pub columns: u16,
}

impl PixelForm {
    /// Whether the image is monochrome: MONOCHROME1 or MONOCHROME2, one sample a pixel
    /// (or the count not stated). A lossless re-compression keeps each of its samples as
    /// it was: no color transform applies.
    pub fn is_monochrome(&self) -> bool {
        matches!(self.photometric.as_str(), "MONOCHROME1" | "MONOCHROME2")
            && matches!(self.samples, 0 | 1)
    }
}

impl std::fmt::Display for PixelForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let photometric = if self.photometric.is_empty() {
            "(no photometric interpretation)"
        } else {
            &self.photometric
        };
        write!(
            f,
            "{photometric}, {} sample(s) of {} bits allocated, {} x {} (rows x columns)",
            self.samples, self.bits_allocated, self.rows, self.columns
        )
    }
}

/// Whom a DICOM instance belongs to, as digests of its values: the profile holds no
/// patient data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// One digest of the Study and Series Instance UIDs and the Patient ID, as profiles
    /// of session 25 recorded it (codec tag 9): kept so that their entries encode to the
    /// bytes they were signed as. Nothing can be told of it against [`Identity::Parts`].
    Whole(Digest),
    /// The instance's place, its details and its geometry apart, so that a change of
    /// place or geometry (counted per instance: a patient merge never moves an instance
    /// to another study or series, and nothing routine rewrites where its pixels lie or
    /// what they measure) is told from a change of the patient's or study's details
    /// (counted once per change made: a merge or a correction does that to a study at a
    /// time).
    Parts {
        /// A digest of the Study and Series Instance UIDs.
        place: [u8; IDENTITY_PART_BYTES],
        /// A digest of the patient's and study's details (Patient ID, name, birth date,
        /// sex, the study's dates), salted with the Study Instance UID: a Patient ID or a
        /// name and birth date alone could be found again from its digest by trying
        /// them all; the Study Instance UID is unique, and not in the profile.
        details: [u8; IDENTITY_PART_BYTES],
        /// A digest of its geometry and calibration (Image Position and Orientation,
        /// Pixel Spacing, Slice Thickness, Rescale Intercept and Slope).
        geometry: [u8; IDENTITY_PART_BYTES],
    },
}

/// Bytes kept of each digest of an [`Identity::Parts`]: 128 bits, far past any chance
/// match.
pub const IDENTITY_PART_BYTES: usize = 16;

impl Content {
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Content::Hashed { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the root, exact bytes; empty for the root itself.
    pub rel: Vec<u8>,
    pub kind: EntryType,
    pub meta: Meta,
    /// Target of a symbolic link, exact bytes (never followed).
    pub link_target: Option<Vec<u8>>,
    /// Sorted by name.
    pub xattrs: Vec<Xattr>,
    pub content: Content,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tree a run holds is a vector of entries, so their size is memory per file
    /// (issue 15). Boxing the prefix of a growing log took 272 bytes down to 232.
    #[test]
    fn an_entry_stays_small() {
        let size = std::mem::size_of::<Entry>();
        assert!(size <= 232, "an Entry takes {size} bytes");
    }

    /// A DICOM instance's facts are boxed beside its entry: 152 bytes before the identity
    /// digest was recorded, 184 with it (review r25-watch, issue 15: +32 bytes per
    /// instance held; the profile's store gains 33 per instance on disk), and 200 with
    /// its place, details and geometry apart (review r26-watch: three digests of 16
    /// bytes, +16 bytes per instance held and on disk), and 232 with the pixels' form
    /// (review r27-watch: a String and four u16, +32 bytes per instance held, 23 on disk
    /// for MONOCHROME2; a photometric code of one byte would save 24 of them), and 264
    /// with what it is and how it is shown (review r28-watch: two digests of 16 bytes and
    /// their presence, +32 bytes per instance held and on disk).
    #[test]
    fn the_facts_of_an_instance_stay_small() {
        let size = std::mem::size_of::<DicomFacts>();
        assert!(size <= 264, "DicomFacts takes {size} bytes");
    }
}
