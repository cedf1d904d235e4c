//! `pacsguard profile export --out FILE`: the signed profile as one self-contained file
//! (a vendor can publish the profile of a release or a patch; a test system's profile
//! can be kept before a patch), and the reader of such a file for `diff`.
//!
//! Layout: the magic line, then u32-length-prefixed fields (the same encoding as the
//! store, `pacsguard_profile::codec`): the signer's Ed25519 public key, generation,
//! creation time, root count, and per root its path, policy, hash, exclusions,
//! cross-mounts flag and entries; then the Ed25519 signature over
//! `EXPORT_CONTEXT || SHA-256(everything before it)`. Decoding is total: a malformed or
//! truncated file is an error naming it, never a panic.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use pacsguard_events::{Action, Event, Outcome, escape_path};
use pacsguard_profile::codec::{
    Reader, decode_entries, decode_strings, encode_entry, encode_strings, put_bytes,
};
use pacsguard_profile::{Baseline, HashAlgorithm, Policy, RootProfile, RootSpec};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::Session;
use crate::error::EngineError;

const MAGIC: &[u8] = b"PACSGUARD-PROFILE-EXPORT 1\n";
const EXPORT_CONTEXT: &[u8] = b"pacsguard profile export v1\0";

/// The largest export read back: about 5 million entries. A larger file is refused
/// (exit 2) rather than read into memory.
pub const MAX_EXPORT_BYTES: u64 = 1 << 30;

#[derive(Debug, Serialize)]
pub struct ExportReport {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub out: PathBuf,
    pub generation: u64,
    pub entries: u64,
    pub key_fingerprint: String,
}

/// A profile read from an export, with who signed it.
#[derive(Debug)]
pub struct Exported {
    pub baseline: Baseline,
    pub signer: VerifyingKey,
}

impl Session {
    pub fn profile_export(&mut self, out: &Path) -> Result<ExportReport, EngineError> {
        self.recorded(Action::Profile, vec![out.to_path_buf()], |s| {
            let (baseline, _) = s.require_baseline()?;
            let bytes = encode(&baseline, &s.profile_signer()?);
            crate::durable::write_new(out, &bytes, 0o644)?;
            let fingerprint = s.profile_fingerprint();
            let entries = baseline.entry_count() as u64;
            s.finish(
                Event::new(
                    s.actor.clone(),
                    Action::Profile,
                    Outcome::Success,
                    format!(
                        "exported baseline generation {} ({entries} entries) to {}, signed by {fingerprint}",
                        baseline.generation,
                        escape_path(out)
                    ),
                )
                .with_objects(vec![out.to_path_buf()]),
            )?;
            Ok(ExportReport {
                out: out.to_path_buf(),
                generation: baseline.generation,
                entries,
                key_fingerprint: fingerprint,
            })
        })
    }
}

pub(super) fn encode(baseline: &Baseline, key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, key.verifying_key().as_bytes());
    put_bytes(&mut out, &baseline.generation.to_le_bytes());
    put_bytes(&mut out, &baseline.created.to_le_bytes());
    put_bytes(&mut out, &(baseline.roots.len() as u64).to_le_bytes());
    for root in &baseline.roots {
        let spec = &root.spec;
        put_bytes(&mut out, spec.path.as_os_str().as_bytes());
        put_bytes(&mut out, spec.policy.as_str().as_bytes());
        put_bytes(&mut out, spec.hash.as_str().as_bytes());
        put_bytes(&mut out, &encode_strings(&spec.exclude));
        put_bytes(&mut out, &[u8::from(spec.cross_mounts)]);
        let mut entries = Vec::new();
        for entry in &root.entries {
            encode_entry(&mut entries, entry);
        }
        put_bytes(&mut out, &entries);
    }
    let signature = key.sign(&signing_message(&out));
    put_bytes(&mut out, &signature.to_bytes());
    out
}

fn signing_message(body: &[u8]) -> Vec<u8> {
    let mut message = EXPORT_CONTEXT.to_vec();
    message.extend_from_slice(&Sha256::digest(body));
    message
}

/// Reads and verifies an export. Any malformed field or a signature that does not
/// verify with the key it names is an error naming the file.
pub fn read_export(path: &Path) -> Result<Exported, EngineError> {
    let file = pacsguard_fs::read_file(path, MAX_EXPORT_BYTES)
        .map_err(|e| EngineError::io(path, crate::files::refusal(&e)))?;
    let bytes = file.bytes;
    let bad = |what: &str| EngineError::io(path, format!("not a PacsGuard profile export: {what}"));
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no header line"))?;
    let mut r = Reader::new(body);
    let key: [u8; 32] = field(path, &mut r)?.try_into().map_err(|_| bad("key"))?;
    let signer = VerifyingKey::from_bytes(&key).map_err(|_| bad("key"))?;
    let number = |r: &mut Reader<'_>| -> Result<[u8; 8], EngineError> {
        field(path, r)?.try_into().map_err(|_| bad("a number"))
    };
    let generation = u64::from_le_bytes(number(&mut r)?);
    let created = i64::from_le_bytes(number(&mut r)?);
    let count = u64::from_le_bytes(number(&mut r)?);
    let mut roots = Vec::new();
    for _ in 0..count {
        use std::os::unix::ffi::OsStrExt as _;
        let path_bytes = field(path, &mut r)?;
        let text = |r: &mut Reader<'_>| -> Result<String, EngineError> {
            String::from_utf8(field(path, r)?.to_vec()).map_err(|_| bad("a name"))
        };
        let policy = Policy::parse(&text(&mut r)?).ok_or_else(|| bad("policy"))?;
        let hash = HashAlgorithm::parse(&text(&mut r)?).ok_or_else(|| bad("hash"))?;
        let exclude = decode_strings(field(path, &mut r)?).ok_or_else(|| bad("exclusions"))?;
        let cross_mounts = match field(path, &mut r)? {
            [0] => false,
            [1] => true,
            _ => return Err(bad("cross-mounts flag")),
        };
        let mut entries = Vec::new();
        decode_entries(field(path, &mut r)?, &mut entries).ok_or_else(|| bad("entries"))?;
        if !entries.windows(2).all(|w| w[0].rel < w[1].rel) {
            return Err(bad("entries out of order"));
        }
        roots.push(RootProfile {
            spec: RootSpec {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(path_bytes)),
                policy,
                hash,
                exclude,
                cross_mounts,
            },
            entries,
        });
    }
    let signed_len = bytes.len() - r.remaining();
    let signature: [u8; 64] = field(path, &mut r)?
        .try_into()
        .map_err(|_| bad("signature"))?;
    if !r.is_empty() {
        return Err(bad("bytes after the signature"));
    }
    signer
        .verify_strict(
            &signing_message(&bytes[..signed_len]),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| {
            EngineError::io(
                path,
                "the export's signature does not verify: it was modified after it was signed",
            )
        })?;
    Ok(Exported {
        baseline: Baseline {
            generation,
            created,
            roots,
        },
        signer,
    })
}

/// A trusted public key: a `signing.pub` file (the hex key on its first line), as
/// `pacsguard init` writes it in the home of whoever signs exports.
pub fn read_trusted_key(path: &Path) -> Result<VerifyingKey, EngineError> {
    let text = crate::files::read_text(path, crate::files::MAX_SMALL_FILE_BYTES)?
        .ok_or_else(|| EngineError::io(path, "no such file"))?;
    let bad = || {
        EngineError::io(
            path,
            "not a public key (64 hex digits on the first line, as in signing.pub)",
        )
    };
    let first = text.lines().next().ok_or_else(bad)?.trim();
    let bytes: [u8; 32] = hex::decode(first)
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

fn field<'a>(path: &Path, r: &mut Reader<'a>) -> Result<&'a [u8], EngineError> {
    r.bytes().ok_or_else(|| {
        EngineError::io(
            path,
            "not a PacsGuard profile export: truncated or malformed",
        )
    })
}
