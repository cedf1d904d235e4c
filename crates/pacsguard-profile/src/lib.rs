//! Baselines ("system profiles") of directory trees and their verification.
//!
//! A [`Baseline`] holds, per profiled root, the [`RootSpec`] it was taken under (policy,
//! hash algorithm, exclusions) and every entry the walk recorded. [`Baseline::digest`] is
//! the canonical SHA-256 over all of it that the store signs: any edited, added, removed
//! or reordered entry, or a changed policy, changes the digest.
//!
//! [`compare`] turns a baseline root and a freshly captured tree into findings, each with
//! the severity its root's [`Policy`] gives it; [`capture`] holds the walk-then-hash
//! sequence shared by `profile`, `check` and `accept`.

mod baseline;
mod capture;
pub mod codec;
mod compare;
mod policy;
mod xattr_text;

pub use baseline::{
    Baseline, BaselineDigest, FORMAT_VERSION, ProfileError, RootProfile, RootSpec,
    encode_generation_header, is_excluded,
};
pub use capture::{
    DicomSplitter, capture_findings, hash_request, hash_tree, is_within, profile_digest,
    reuse_unchanged, reuse_unchanged_where, walk_root, walk_subtrees,
};
pub use compare::{
    GEOMETRY_CHANGED_FIELD, IDENTITY_CHANGE_HEX, IDENTITY_CHANGE_PREFIX, IDENTITY_CHANGED_FIELD,
    MODALITY_CHANGED_FIELD, PIXEL_FORM_CHANGED_FIELD, PLACE_CHANGED_FIELD,
    PRESENTATION_CHANGE_PREFIX, PRESENTATION_CHANGED_FIELD, RE_ENCODED_FIELD, StreamingCompare,
    compare, compare_followed, geometry_changed, identity_change_of, modality_changed,
    of_unknown_state, pixel_form_changed, place_changed, presentation_change_of,
};
pub use pacsguard_fs::HashAlgorithm;
pub use policy::{Change, Policy};
pub use xattr_text::show_xattr;
