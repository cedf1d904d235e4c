//! Read-only capture of directory trees: the inspection layer under integrity profiles.
//!
//! [`walk`] lists a tree without following a single symbolic link, every directory
//! opened relative to its parent's descriptor (no path length limit, no directory swapped
//! for a link followed), records for every entry its type, size, permission bits, owner,
//! times, inode, link count, inode flags, symlink target and extended attributes, and
//! never opens anything but a directory for listing.
//! [`hash_files`] then hashes the regular files in parallel, each opened read-only with
//! `O_NOFOLLOW | O_NONBLOCK` (a FIFO swapped in cannot block us, a symlink swapped in
//! cannot redirect us) and checked before and after reading, so a file that changes while
//! it is hashed is re-read or reported as unstable, never recorded with a torn hash.
//!
//! Invariant: nothing in this crate writes, renames, deletes or changes the metadata of
//! anything. `clippy.toml` enforces it; `open.rs` is the single place a file is opened.

mod entry;
mod hash;
mod listing;
mod open;
mod read;
mod stream;
mod walk;
mod window;

pub use entry::{
    Content, Description, DicomFacts, Entry, EntryType, FLAG_APPEND, FLAG_IMMUTABLE,
    IDENTITY_PART_BYTES, INODE_FLAGS, Identity, Meta, PixelForm, Timestamp, XATTR_INLINE_MAX,
    Xattr, XattrValue, describe_flags,
};
pub use hash::{
    ContentSplitter, DESCRIPTION_VALUES, DETAIL_VALUES, Digest, HASH_BUFFER_SIZE, HashAlgorithm,
    HashRequest, Hasher, IDENTITY_VALUES, MAX_HASH_ATTEMPTS, MAX_SPLIT_BYTES, MODALITY_VALUES,
    PLACE_VALUES, Split, digest_bytes, hash_files,
};
pub use listing::{LISTING_BATCH, MAX_LISTINGS, MAX_RACY_WAIT};
pub use read::{FileBytes, ReadError, open_regular, read_file, read_head};
pub use stream::OrderedWalk;
pub use walk::{
    MAX_OPEN_DIRS, MAX_TREE_DEPTH, MAX_VANISHED_LOOKUPS, Problem, ProblemKind, Tree,
    VANISHED_FIRST_PAUSE, WalkError, WalkOptions, walk,
};
pub use window::WindowReader;
