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
        let mut state = None;
        for line in lines {
            if let Some(rest) = line.strip_prefix(RESUME).and_then(|r| r.strip_prefix(' ')) {
                resume = Some(
                    parse_resume(rest, size, &root)
                        .ok_or(CheckpointError::Body("malformed resume line"))?,
                );
            } else if let Some(rest) = line.strip_prefix(STATE).and_then(|r| r.strip_prefix(' ')) {
                state =
                    Some(parse_state(rest).ok_or(CheckpointError::Body("malformed state line"))?);
            }
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
    })
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
