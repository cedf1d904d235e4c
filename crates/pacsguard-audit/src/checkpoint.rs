//! Checkpoints: `origin`, tree size and root hash, as a signed note.
//!
//! PacsGuard adds one extension line (C2SP checkpoints allow them after the root, and other
//! readers ignore them): `pacsguard-resume <byte offset> <peak>...`, the log's length in
//! bytes and the roots of the tree's perfect subtrees at that size. Because it is signed
//! with the rest, the next command can continue the tree from it and read only the records
//! written since, instead of re-hashing the whole trail on every start.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pacsguard_trail::merkle::{Frontier, Hash};
use pacsguard_trail::note::{self, NoteError, Signer, Verifier};

const RESUME: &str = "pacsguard-resume";
const STATE: &str = "pacsguard-state";
const SEEN: &str = "pacsguard-seen";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Where the log stood at this size: its length in bytes and the tree's frontier.
    pub resume: Option<(u64, Vec<Hash>)>,
    /// What the home looked like to the trail (`None` in checkpoints written before it).
    pub state: Option<TrailState>,
}

/// The home's state as the trail knows it, signed into every checkpoint
/// (`pacsguard-state <signed generation> <announced generation> <settings digest>`), so
/// the store and the configuration can be checked against the trail: a store rolled back
/// or deleted, or a trail emptied while the store goes on, disagree with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrailState {
    /// The newest baseline generation the trail records as signed.
    pub baseline: u64,
    /// The newest baseline generation announced (about to be signed): the store holds
    /// one from `baseline` to `announced` (a command killed in between leaves either).
    pub announced: u64,
    /// SHA-256 of the `[audit]` and `[watch]` settings in force.
    pub settings: Hash,
    /// What the watcher last recorded of the rows it keeps in the store (its `watch_seen`
    /// set): signed here so a store put back to an older set disagrees with the trail.
    pub seen: SeenMarks,
}

/// The tags of the watcher's kept row set as the trail records them
/// (`pacsguard-seen <confirmed> <pending>`, `-` for none): a save announces the tag of
/// the set it is about to write (`watch` record, outcome `started`, made durable before
/// the store is written) and confirms it once written (outcome `success`). The store must
/// hold the confirmed set, or the pending one (a watcher stopped between the two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeenMarks {
    /// The tag of the last set written and confirmed.
    pub confirmed: Option<Hash>,
    /// The tag announced after it and not (yet) confirmed.
    pub pending: Option<Hash>,
}

impl SeenMarks {
    /// Follows one `watch` record carrying a tag.
    pub fn observe(&mut self, outcome: &str, tag: Hash) {
        match outcome {
            "started" => self.pending = Some(tag),
            "success" => {
                self.confirmed = Some(tag);
                self.pending = None;
            }
            _ => {}
        }
    }

    /// These marks followed by `later` (the marks of the records that come after).
    pub fn then(self, later: SeenMarks) -> SeenMarks {
        if later.confirmed.is_some() {
            later
        } else if later.pending.is_some() {
            SeenMarks {
                pending: later.pending,
                ..self
            }
        } else {
            self
        }
    }

    /// Whether the trail recorded anything of the set yet.
    pub fn is_empty(&self) -> bool {
        self.confirmed.is_none() && self.pending.is_none()
    }

    /// Whether a set with `tag` is one the trail allows the store to hold.
    pub fn allows(&self, tag: &Hash) -> bool {
        self.confirmed.as_ref() == Some(tag) || self.pending.as_ref() == Some(tag)
    }
}

/// The base64 form of a tag in a record's `watch_seen` field.
pub fn encode_tag(tag: &Hash) -> String {
    B64.encode(tag)
}

/// A record's `watch_seen` field, if it is a tag.
pub fn decode_tag(text: &str) -> Option<Hash> {
    B64.decode(text)
        .ok()
        .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("malformed checkpoint body: {0}")]
    Body(&'static str),
}

impl Checkpoint {
    /// `origin\nsize\nbase64(root)\n` and the resume line, the C2SP checkpoint body.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        if let Some((offset, peaks)) = &self.resume {
            body.push_str(&format!("{RESUME} {offset}"));
            for peak in peaks {
                body.push(' ');
                body.push_str(&B64.encode(peak));
            }
            body.push('\n');
        }
        if let Some(state) = &self.state {
            body.push_str(&format!(
                "{STATE} {} {} {}\n",
                state.baseline,
                state.announced,
                B64.encode(state.settings)
            ));
            // Only once the watcher recorded a set: earlier checkpoints keep their bytes.
            if !state.seen.is_empty() {
                let tag = |t: &Option<Hash>| t.as_ref().map_or("-".to_string(), encode_tag);
                body.push_str(&format!(
                    "{SEEN} {} {}\n",
                    tag(&state.seen.confirmed),
                    tag(&state.seen.pending)
                ));
            }
        }
        body
    }

    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        Ok(signer.sign(&self.body())?)
    }

    /// Verifies the signature, then parses the body.
    pub fn open(signed: &str, verifier: &Verifier) -> Result<Checkpoint, CheckpointError> {
        let text = note::open(signed.as_bytes(), verifier)?;
        let mut lines = text.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(CheckpointError::Body("no origin"))?;
        let size = lines
            .next()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0'))
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CheckpointError::Body("size is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or(CheckpointError::Body("root is not a base64 SHA-256 hash"))?;
        let mut resume = None;
        let mut state: Option<TrailState> = None;
        let mut seen = None;
        for line in lines {
            if let Some(rest) = line.strip_prefix(RESUME).and_then(|r| r.strip_prefix(' ')) {
                resume = Some(
                    parse_resume(rest, size, &root)
                        .ok_or(CheckpointError::Body("malformed resume line"))?,
                );
            } else if let Some(rest) = line.strip_prefix(STATE).and_then(|r| r.strip_prefix(' ')) {
                state =
                    Some(parse_state(rest).ok_or(CheckpointError::Body("malformed state line"))?);
            } else if let Some(rest) = line.strip_prefix(SEEN).and_then(|r| r.strip_prefix(' ')) {
                seen = Some(parse_seen(rest).ok_or(CheckpointError::Body("malformed seen line"))?);
            }
        }
        if let (Some(state), Some(seen)) = (state.as_mut(), seen) {
            state.seen = seen;
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            resume,
            state,
        })
    }

    /// The frontier this checkpoint lets a writer continue from, with the byte offset.
    pub fn frontier(&self) -> Option<(u64, Frontier)> {
        let (offset, peaks) = self.resume.as_ref()?;
        Some((*offset, Frontier::from_peaks(self.size, peaks)?))
    }
}

/// `<baseline> <announced> <base64 settings digest>`.
fn parse_state(text: &str) -> Option<TrailState> {
    let mut parts = text.split(' ');
    let baseline = parts.next()?.parse().ok()?;
    let announced = parts.next()?.parse().ok()?;
    let settings = B64
        .decode(parts.next()?)
        .ok()
        .and_then(|b| <Hash>::try_from(b.as_slice()).ok())?;
    (parts.next().is_none() && baseline <= announced).then_some(TrailState {
        baseline,
        announced,
        settings,
        seen: SeenMarks::default(),
    })
}

/// `<confirmed> <pending>`, each a base64 tag or `-`.
fn parse_seen(text: &str) -> Option<SeenMarks> {
    let mut parts = text.split(' ');
    let mut tag = || match parts.next()? {
        "-" => Some(None),
        t => decode_tag(t).map(Some),
    };
    let marks = SeenMarks {
        confirmed: tag()?,
        pending: tag()?,
    };
    (parts.next().is_none() && !marks.is_empty()).then_some(marks)
}

/// `<offset> <peak>...`; the peaks must rebuild the signed root.
fn parse_resume(text: &str, size: u64, root: &Hash) -> Option<(u64, Vec<Hash>)> {
    let mut parts = text.split(' ');
    let offset = parts.next()?.parse().ok()?;
    let peaks: Vec<Hash> = parts
        .map(|p| {
            B64.decode(p)
                .ok()
                .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
        })
        .collect::<Option<_>>()?;
    let frontier = Frontier::from_peaks(size, &peaks)?;
    (frontier.root() == *root).then_some((offset, peaks))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watcher's row-set tags survive the signed body, a checkpoint without them keeps
    /// its old bytes, and marks follow announce/confirm records in order.
    #[test]
    fn seen_marks_are_signed_into_the_body_and_follow_announce_then_confirm() {
        let state = TrailState {
            baseline: 2,
            announced: 3,
            settings: [5; 32],
            seen: SeenMarks::default(),
        };
        let mut checkpoint = Checkpoint {
            origin: "example.org/pacsguard".into(),
            size: 4,
            root: [1; 32],
            resume: None,
            state: Some(state),
        };
        assert!(!checkpoint.body().contains(SEEN), "{}", checkpoint.body());
        let mut marks = SeenMarks::default();
        marks.observe("started", [9; 32]);
        assert!(marks.allows(&[9; 32]) && marks.confirmed.is_none());
        marks.observe("success", [9; 32]);
        marks.observe("started", [10; 32]);
        assert!(marks.allows(&[9; 32]) && marks.allows(&[10; 32]) && !marks.allows(&[8; 32]));
        checkpoint.state = Some(TrailState {
            seen: marks,
            ..state
        });
        let body = checkpoint.body();
        let parsed = body
            .lines()
            .find_map(|l| l.strip_prefix("pacsguard-seen "))
            .map(parse_seen);
        assert_eq!(parsed, Some(Some(marks)), "{body}");
        // Later records win: a confirmation replaces both, an announcement only the pending.
        let later_pending = SeenMarks {
            confirmed: None,
            pending: Some([11; 32]),
        };
        assert_eq!(marks.then(later_pending).confirmed, Some([9; 32]));
        assert_eq!(marks.then(later_pending).pending, Some([11; 32]));
        let later_confirmed = SeenMarks {
            confirmed: Some([12; 32]),
            pending: None,
        };
        assert_eq!(marks.then(later_confirmed), later_confirmed);
        assert_eq!(marks.then(SeenMarks::default()), marks);
        assert_eq!(parse_seen("- -"), None, "a seen line says something");
        assert_eq!(parse_seen("x -"), None);
    }
}
