//! Building blocks of the tamper-evident audit trail, free of I/O so they can be tested
//! byte for byte against published vectors.
//!
//! * [`merkle`]: the RFC 6962 / RFC 9162 Merkle tree over audit records (leaf hash
//!   SHA-256(0x00 ‖ record), node hash SHA-256(0x01 ‖ left ‖ right)), an append-only
//!   [`merkle::Frontier`] that keeps the root of a growing log in O(log n) memory, and
//!   inclusion and consistency proofs: generation and verification.
//! * [`note`]: C2SP signed notes with Ed25519, the format of the trail's checkpoints
//!   (`origin`, tree size, root hash), interoperable with Go's `golang.org/x/mod/sumdb/note`.

pub mod merkle;
pub mod note;
