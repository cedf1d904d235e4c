//! Checkpoints: `origin`, tree size and root hash, as a signed note.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pacsguard_trail::merkle::Hash;
use pacsguard_trail::note::{self, NoteError, Signer, Verifier};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("malformed checkpoint body: {0}")]
    Body(&'static str),
}

impl Checkpoint {
    /// `origin\nsize\nbase64(root)\n`, the C2SP checkpoint body.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
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
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}
