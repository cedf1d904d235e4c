//! A stored file flipping between its content and a torn state (review r29-watch2).
//!
//! A writer that rewrites a stored instance whole in two steps (truncate, then write it
//! back: `O_TRUNC` with the same bytes, slow under load) leaves it at 0 bytes for a
//! moment at every rewrite. Judged then, the torn state is a change, reported (a stored
//! instance that reads as none any more); but the file then flipped between the torn
//! state and its content, and each flip was a `content-changed` of its own (5 in 3 s),
//! burying what matters. The first torn state is reported as ever; a flip between the
//! very two states (content, size, mode, owner, inode and flags; not the times) seen
//! then is counted per file, like the same-bytes repeats, and said with the count (see
//! [`super::Guard::report_repeats`]). Any other state is reported as ever: a flip never
//! hides a content that was not reported before.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pacsguard_events::{Finding, FindingKind};
use pacsguard_fs::{Digest, Entry, Meta, Timestamp};
use pacsguard_profile::RootProfile;

use super::{Repeats, absolute, entries_found_with, looks_torn, room_to_count};

/// The kinds of finding a flip between a file's content and a torn state gives.
const FLIP_KINDS: [FindingKind; 3] = [
    FindingKind::ContentChanged,
    FindingKind::NoLongerDicom,
    FindingKind::MetadataChanged,
];

/// A file's state as a flip compares it: its content and its attributes, not its times
/// (each rewrite moves them).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FlipState {
    digest: Digest,
    meta: Meta,
}

impl FlipState {
    fn of(entry: &Entry) -> Option<FlipState> {
        Some(FlipState {
            digest: *entry.content.digest()?,
            meta: Meta {
                mtime: Timestamp::default(),
                ctime: Timestamp::default(),
                ..entry.meta
            },
        })
    }
}

/// The states of a file whose torn state was reported: the content it held then
/// (`whole`), the torn state (`torn`), and the first state it left the torn state for
/// (`left_for`), reported as a change in its turn. The same content is not always the
/// same digest: a stored instance compared with a torn state (no DICOM) is hashed as
/// plain bytes, not by its parts as the profile recorded it, so the first return to its
/// content is reported (it cannot be told from another content) and each after it,
/// the very state reported, is a flip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TornPair {
    whole: FlipState,
    torn: FlipState,
    left_for: Option<FlipState>,
}

impl TornPair {
    /// Whether `state` is one of the contents this file flips back to.
    fn is_whole(&self, state: &FlipState) -> bool {
        state == &self.whole || self.left_for.as_ref() == Some(state)
    }

    /// Whether going from `was` to `now` is a flip between the torn state and a content
    /// reported with it.
    fn is_flip(&self, was: &FlipState, now: &FlipState) -> bool {
        (self.is_whole(was) && now == &self.torn) || (was == &self.torn && self.is_whole(now))
    }
}

/// Drops from `findings` (one verification of `root`, `base` what it was compared
/// with, `entries` what was found) those of a file flipping between the two states of
/// its reported torn pair, counted in `repeats`; records the pair of a file whose torn
/// state is reported now. At most `capacity` files counted and `capacity` pairs held:
/// past that, flips are reported as before, never hidden.
#[allow(clippy::too_many_arguments)]
pub(super) fn collapse_torn_flips(
    root: &Path,
    base: &RootProfile,
    entries: &[Entry],
    pairs: &mut HashMap<PathBuf, TornPair>,
    repeats: &mut HashMap<PathBuf, Repeats>,
    capacity: usize,
    now: Instant,
    findings: &mut Vec<Finding>,
) {
    let mut flipped: HashSet<PathBuf> = HashSet::new();
    for entry in entries_found_with(root, entries, findings, &FLIP_KINDS) {
        let Some(was) = base.entry(&entry.rel) else {
            continue;
        };
        let (Some(was_state), Some(now_state)) = (FlipState::of(was), FlipState::of(entry)) else {
            continue;
        };
        let path = absolute(root, &entry.rel);
        // Past the capacity of counts, a flip is reported as before.
        let room = room_to_count(repeats, &path, capacity);
        match pairs.get(&path) {
            Some(pair) if pair.is_flip(&was_state, &now_state) => {
                flipped.extend(room.then_some(path));
            }
            // Its first state after the torn one: reported, and a flip from now on.
            Some(pair) if pair.left_for.is_none() && was_state == pair.torn => {
                let left = TornPair {
                    left_for: Some(now_state),
                    ..pair.clone()
                };
                pairs.insert(path, left);
            }
            _ if looks_torn(was, entry) && room_to_count(pairs, &path, capacity) => {
                let pair = TornPair {
                    whole: was_state,
                    torn: now_state,
                    left_for: None,
                };
                pairs.insert(path, pair);
            }
            _ => {}
        }
    }
    if flipped.is_empty() {
        return;
    }
    findings.retain(|finding| {
        if !FLIP_KINDS.contains(&finding.kind) || !flipped.contains(&finding.path) {
            return true;
        }
        let counted = repeats.entry(finding.path.clone()).or_insert(Repeats {
            times: 0,
            fields: Vec::new(),
            flips: 0,
            severity: finding.severity,
            since: now,
        });
        counted.severity = counted.severity.max(finding.severity);
        false
    });
    for path in &flipped {
        if let Some(counted) = repeats.get_mut(path) {
            counted.flips += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(byte: u8, size: u64) -> FlipState {
        FlipState {
            digest: Digest([byte; 32]),
            meta: Meta {
                size,
                ..Meta::default()
            },
        }
    }

    /// Between the torn state and a content reported with it, either way, is a flip;
    /// a content never reported (another digest, or the same one with another size) is
    /// not, whichever state it comes from.
    #[test]
    fn only_a_return_to_a_reported_state_is_a_flip() {
        let (whole, torn, rewritten) = (state(1, 10), state(2, 0), state(3, 10));
        let mut pair = TornPair {
            whole: whole.clone(),
            torn: torn.clone(),
            left_for: None,
        };
        assert!(pair.is_flip(&whole, &torn) && pair.is_flip(&torn, &whole));
        assert!(!pair.is_flip(&torn, &rewritten), "not reported yet");
        pair.left_for = Some(rewritten.clone());
        assert!(pair.is_flip(&torn, &rewritten) && pair.is_flip(&rewritten, &torn));
        assert!(!pair.is_flip(&torn, &state(4, 10)), "another content");
        assert!(!pair.is_flip(&torn, &state(1, 11)), "another size");
        assert!(!pair.is_flip(&whole, &rewritten), "no torn state between");
    }
}
