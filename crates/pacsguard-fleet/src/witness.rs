//! The console as witness of one host's trail, without I/O.
//!
//! The console keeps every record a host delivered and the Merkle frontier over them.
//! A report continues that tree: its first record must be the next one expected (an
//! earlier one is the trail rewound, a later one a gap), each record is hashed into the
//! frontier, and a checkpoint must sign exactly the tree so obtained. That is the
//! strongest form of the RFC 6962 proofs: the console does not take an inclusion or
//! consistency proof from the host, it recomputes the root from the leaves it holds, so
//! a record that is not in the signed tree, or a checkpoint that does not extend the one
//! accepted before, cannot verify.

use pacsguard_audit::Checkpoint;
use pacsguard_trail::merkle::{Frontier, Hash, leaf_hash};
use pacsguard_trail::note::Verifier;

/// What the console holds of a host's trail.
#[derive(Clone, Debug, Default)]
pub struct Witnessed {
    /// The host's trail key, once it reported.
    pub trail_key: Option<String>,
    /// The frontier over every record accepted.
    pub frontier: Frontier,
    /// The size of the last checkpoint accepted (≤ the frontier's size).
    pub checkpoint_size: u64,
}

/// Why a report is refused; each is an alert on the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The host's trail key is not the one it reported with before.
    NewKey(String),
    /// A checkpoint inconsistent with what was accepted, or records again from an
    /// earlier position: the trail was forked, rewound or rewritten.
    Fork(String),
    /// Records after a gap: some were never delivered.
    Gap(String),
    /// Records the checkpoint does not sign: they are not in the host's signed tree.
    Inclusion(String),
    /// Not a well-formed report (a bad key, a record that is not the JSON of one).
    Malformed(String),
}

impl Refusal {
    pub fn detail(&self) -> &str {
        match self {
            Refusal::NewKey(d)
            | Refusal::Fork(d)
            | Refusal::Gap(d)
            | Refusal::Inclusion(d)
            | Refusal::Malformed(d) => d,
        }
    }

    /// The state name the console stores for the host while this holds.
    pub fn state(&self) -> &'static str {
        match self {
            Refusal::NewKey(_) => "new-key",
            Refusal::Fork(_) => "fork",
            Refusal::Gap(_) => "gap",
            Refusal::Inclusion(_) => "inclusion",
            Refusal::Malformed(_) => "malformed",
        }
    }
}

/// A report that verified: the new state and the checkpoint to cosign.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub frontier: Frontier,
    /// The checkpoint (verified), if the report carried one.
    pub checkpoint: Option<(Checkpoint, String)>,
    /// The records as (sequence number, bytes).
    pub records: Vec<(u64, Vec<u8>)>,
}

/// The public-key part of a note verifier (`name+id+key` → `key`): a trail started anew
/// keeps the host's key under a new origin name. Split from the left: the name holds no
/// '+' and the id is hex, but the key is base64, whose alphabet has '+' (half of all
/// keys hold one, one in 64 ends with it); the piece after the last '+' made such keys
/// one key, and a host was refused for good as a copy of another.
pub fn key_part(verifier: &str) -> &str {
    verifier.splitn(3, '+').nth(2).unwrap_or(verifier)
}

/// A trail key's name (its origin) or a whole key as the host sent it, quoted for the
/// console's own words: what a key name holds (`pacsguard.local/HOST/FINGERPRINT/N`,
/// `+`, base64) shown as it is, every other character escaped (`\u{..}`). A copy of
/// the host signs any origin it likes: spaces, brackets and terminal escapes in it
/// wrote the console's own sentence (`[refused again 0 times since ...`) and cleared
/// the terminal of `console hosts` (review rv38-console).
pub(crate) fn quoted_origin(name: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || "./+-_:=@".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    out.push('"');
    out
}

/// Checks one report against what the console holds of the host.
pub fn verify_report(
    held: &Witnessed,
    trail_key: &str,
    first: u64,
    records: &[String],
    checkpoint: Option<&str>,
) -> Result<Accepted, Refusal> {
    let verifier = Verifier::parse(trail_key)
        .map_err(|e| Refusal::Malformed(format!("the trail key does not parse: {e}")))?;
    if let Some(known) = &held.trail_key
        && known != trail_key
    {
        return Err(if key_part(known) == key_part(trail_key) {
            Refusal::Fork(format!(
                "the host's trail was started anew (origin {} after {}): its earlier records ({} accepted) are no longer the trail it writes",
                quoted_origin(verifier.name()),
                quoted_origin(known.split('+').next().unwrap_or("")),
                held.frontier.size()
            ))
        } else {
            Refusal::NewKey(format!(
                "the host reports with another trail key ({}) than the one it reported with before ({}): its home was made anew, or someone else holds its identity",
                quoted_origin(&verifier.encode()),
                quoted_origin(known)
            ))
        });
    }
    let size = held.frontier.size();
    if let Some(line) = records.first()
        && first < size
    {
        // The first record's hash tells this branch from another at the same position
        // (a second restore of one backup, a rewrite from there): see
        // `crate::acknowledge::point`.
        return Err(Refusal::Fork(format!(
            "records from {first} again ({LEAF_HASH}{}), but {size} were accepted already: the trail was rewound or rewritten",
            hex(&leaf_hash(line.as_bytes()))
        )));
    }
    if !records.is_empty() && first > size {
        return Err(Refusal::Gap(format!(
            "records from {first}, but only {size} were delivered: records {size} to {} are missing",
            first - 1
        )));
    }
    let mut frontier = held.frontier.clone();
    let mut kept = Vec::with_capacity(records.len());
    for (i, line) in records.iter().enumerate() {
        let seq = first + i as u64;
        let stated = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64));
        if stated != Some(seq) {
            return Err(Refusal::Malformed(format!(
                "record {seq} is not a trail record of that number"
            )));
        }
        frontier.push(leaf_hash(line.as_bytes()));
        kept.push((seq, line.as_bytes().to_vec()));
    }
    let checkpoint = match checkpoint {
        None => None,
        Some(note) => {
            let opened = Checkpoint::open(note, &verifier).map_err(|e| {
                Refusal::Malformed(format!(
                    "the checkpoint does not verify with the trail key: {e}"
                ))
            })?;
            if opened.origin != verifier.name() {
                return Err(Refusal::Malformed(format!(
                    "the checkpoint's origin {} is not the trail key's {}",
                    opened.origin,
                    verifier.name()
                )));
            }
            check_against(held, &frontier, &opened)?;
            Some((opened, note.to_string()))
        }
    };
    Ok(Accepted {
        frontier,
        checkpoint,
        records: kept,
    })
}

/// A signed checkpoint must agree with the tree the console holds: below the last one
/// accepted is a rollback, at the size held it must have the root the console computed.
fn check_against(
    held: &Witnessed,
    frontier: &Frontier,
    checkpoint: &Checkpoint,
) -> Result<(), Refusal> {
    if checkpoint.size < held.checkpoint_size {
        return Err(Refusal::Fork(format!(
            "a checkpoint of {} records ({ROOT}{}) after one of {} was accepted: the trail was rolled back",
            checkpoint.size,
            hex(&checkpoint.root),
            held.checkpoint_size
        )));
    }
    if checkpoint.size == frontier.size() {
        if checkpoint.root != frontier.root() {
            return Err(if checkpoint.size == held.frontier.size() {
                Refusal::Fork(format!(
                    "a checkpoint of {} records ({ROOT}{}) with another root than the tree accepted at that size: the trail was forked",
                    checkpoint.size,
                    hex(&checkpoint.root)
                ))
            } else {
                Refusal::Inclusion(format!(
                    "records {} to {} are not in the tree the host's checkpoint of {} records signs",
                    held.frontier.size(),
                    frontier.size().saturating_sub(1),
                    checkpoint.size
                ))
            });
        }
        return Ok(());
    }
    if checkpoint.size > frontier.size() {
        return Err(Refusal::Gap(format!(
            "a checkpoint of {} records, but only {} were delivered",
            checkpoint.size,
            frontier.size()
        )));
    }
    // Between the last checkpoint accepted and the records held. A host delivers records
    // only up to its newest checkpoint, so the console never holds more records than the
    // host's newest checkpoint covers: a checkpoint behind the records it delivered means
    // its checkpoints went back (the file rolled back or edited). An alert, like every
    // other rollback; it was refused without one, so the host's checkpoints could be
    // rewound unseen once records ran ahead of the last one accepted.
    Err(Refusal::Fork(format!(
        "a checkpoint of {} records ({ROOT}{}) after {} of its records were delivered: the host's checkpoints went back (rolled back or rewritten)",
        checkpoint.size,
        hex(&checkpoint.root),
        frontier.size()
    )))
}

/// How a fork's words name the leaf hash of the first record sent again, and the root of
/// a checkpoint refused (hex, after the size): what tells one branch of the trail from
/// another at the same size (`crate::acknowledge::point` reads them back).
pub const LEAF_HASH: &str = "the first of leaf hash ";
pub const ROOT: &str = "root ";

/// Lower-case hex of a hash.
fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The frontier's peaks as stored (32 bytes each).
pub fn peaks_bytes(frontier: &Frontier) -> Vec<u8> {
    frontier.peaks().concat()
}

/// A frontier from stored peaks; `None` if they do not fit the size.
pub fn frontier_from(size: u64, peaks: &[u8]) -> Option<Frontier> {
    if !peaks.len().is_multiple_of(32) {
        return None;
    }
    let peaks: Vec<Hash> = peaks
        .chunks(32)
        .filter_map(|c| <Hash>::try_from(c).ok())
        .collect();
    Frontier::from_peaks(size, &peaks)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Review rv38-console: a host's origin is quoted with everything but a key name's
    /// characters escaped, so it cannot write the console's words nor a terminal's.
    #[test]
    fn a_hosts_origin_is_quoted_with_all_but_a_key_names_characters_escaped() {
        assert_eq!(
            quoted_origin("pacsguard.local/host1/3f77+6e97/2"),
            "\"pacsguard.local/host1/3f77+6e97/2\""
        );
        let forged = quoted_origin("x] \u{1b}[2J host1 ok [refused again 0 times since");
        assert!(!forged.contains('\u{1b}') && !forged.contains(' ') && !forged.contains('['));
        assert!(
            forged.contains("\\u{001b}") && forged.contains("\\u{005b}"),
            "{forged}"
        );
    }
    use ed25519_dalek::SigningKey;
    use pacsguard_trail::note::Signer;

    pub(crate) fn signer(origin: &str) -> Signer {
        Signer::new(origin, SigningKey::from_bytes(&[3; 32])).expect("signer")
    }

    pub(crate) fn records(from: u64, to: u64, tag: &str) -> Vec<String> {
        (from..to)
            .map(|seq| format!("{{\"seq\":{seq},\"detail\":\"{tag}\"}}"))
            .collect()
    }

    pub(crate) fn checkpoint(signer: &Signer, all: &[String]) -> String {
        let mut frontier = Frontier::new();
        for line in all {
            frontier.push(leaf_hash(line.as_bytes()));
        }
        Checkpoint {
            origin: signer.verifier().name().to_string(),
            size: frontier.size(),
            root: frontier.root(),
            resume: None,
            state: None,
        }
        .sign(signer)
        .expect("sign")
    }

    /// The key part of a verifier is its whole base64 key, '+' included (base64 uses
    /// '+'): distinct keys have distinct key parts. Taking the piece after the last '+'
    /// made every key ending with '+' the same key.
    #[test]
    fn key_part_is_the_whole_key_even_with_a_plus_in_it() {
        let mut seen = std::collections::HashSet::new();
        let mut with_plus = 0;
        for seed in 0u8..=255 {
            let verifier = Signer::new("trail", SigningKey::from_bytes(&[seed; 32]))
                .expect("signer")
                .verifier()
                .encode();
            let key = verifier.splitn(3, '+').nth(2).expect("name+id+key");
            with_plus += usize::from(key.contains('+'));
            assert_eq!(key_part(&verifier), key, "{verifier}");
            assert!(seen.insert(key_part(&verifier).to_string()), "{verifier}");
        }
        assert!(with_plus > 0, "keys with a '+' were tried");
    }

    fn accept(held: &mut Witnessed, key: &str, first: u64, recs: &[String], ck: Option<&str>) {
        let ok = verify_report(held, key, first, recs, ck).expect("accepted");
        held.frontier = ok.frontier;
        held.trail_key = Some(key.to_string());
        if let Some((c, _)) = ok.checkpoint {
            held.checkpoint_size = c.size;
        }
    }

    #[test]
    fn an_honest_trail_is_accepted_batch_after_batch() {
        let s = signer("host-a");
        let key = s.verifier().encode();
        let all = records(0, 10, "x");
        let mut held = Witnessed::default();
        accept(
            &mut held,
            &key,
            0,
            &all[..4],
            Some(&checkpoint(&s, &all[..4])),
        );
        // A batch cut short without a checkpoint, then the rest with it.
        accept(&mut held, &key, 4, &all[4..6], None);
        accept(&mut held, &key, 6, &all[6..], Some(&checkpoint(&s, &all)));
        assert_eq!(held.checkpoint_size, 10);
        // A heartbeat: the same checkpoint again.
        accept(&mut held, &key, 10, &[], Some(&checkpoint(&s, &all)));
    }

    #[test]
    fn a_rewritten_trail_is_a_fork_and_a_restarted_one_too() {
        let s = signer("host-a");
        let key = s.verifier().encode();
        let all = records(0, 6, "x");
        let mut held = Witnessed::default();
        accept(&mut held, &key, 0, &all, Some(&checkpoint(&s, &all)));
        // Rewritten from record 2 on, resent from 2: rewound.
        let other = [&all[..2], &records(2, 8, "y")[..]].concat();
        let refusal = verify_report(&held, &key, 2, &other[2..], Some(&checkpoint(&s, &other)))
            .expect_err("rewound");
        assert!(matches!(refusal, Refusal::Fork(_)), "{refusal:?}");
        // Only the checkpoint of the rewritten trail at the accepted size: forked.
        let refusal = verify_report(&held, &key, 6, &[], Some(&checkpoint(&s, &other[..6])))
            .expect_err("forked");
        assert!(matches!(refusal, Refusal::Fork(_)), "{refusal:?}");
        // An older checkpoint put back: rolled back.
        let refusal = verify_report(&held, &key, 6, &[], Some(&checkpoint(&s, &all[..3])))
            .expect_err("rolled back");
        assert!(matches!(refusal, Refusal::Fork(_)), "{refusal:?}");
        // The trail started anew (`audit reinit`): same key, new origin.
        let anew = signer("host-a/1700000000");
        let fresh = records(0, 2, "z");
        let refusal = verify_report(
            &held,
            &anew.verifier().encode(),
            0,
            &fresh,
            Some(&checkpoint(&anew, &fresh)),
        )
        .expect_err("restarted");
        assert!(matches!(refusal, Refusal::Fork(_)), "{refusal:?}");
    }

    #[test]
    fn gaps_foreign_records_and_new_keys_are_refused() {
        let s = signer("host-a");
        let key = s.verifier().encode();
        let all = records(0, 6, "x");
        let mut held = Witnessed::default();
        accept(
            &mut held,
            &key,
            0,
            &all[..2],
            Some(&checkpoint(&s, &all[..2])),
        );
        let refusal =
            verify_report(&held, &key, 4, &all[4..], Some(&checkpoint(&s, &all))).expect_err("gap");
        assert!(matches!(refusal, Refusal::Gap(_)), "{refusal:?}");
        // Records 2.. altered in transit (or on disk after signing): not in the tree.
        let altered = records(2, 6, "altered");
        let refusal = verify_report(&held, &key, 2, &altered, Some(&checkpoint(&s, &all)))
            .expect_err("inclusion");
        assert!(matches!(refusal, Refusal::Inclusion(_)), "{refusal:?}");
        let stranger = Signer::new("host-a", SigningKey::from_bytes(&[4; 32])).expect("signer");
        let refusal = verify_report(
            &held,
            &stranger.verifier().encode(),
            2,
            &all[2..],
            Some(&checkpoint(&stranger, &all)),
        )
        .expect_err("new key");
        assert!(matches!(refusal, Refusal::NewKey(_)), "{refusal:?}");
        // A checkpoint signed by another key than the trail key it came with.
        let refusal = verify_report(
            &held,
            &key,
            2,
            &all[2..],
            Some(&checkpoint(&stranger, &all)),
        )
        .expect_err("not signed");
        assert!(matches!(refusal, Refusal::Malformed(_)), "{refusal:?}");
    }

    /// A checkpoint between the last one accepted and the records held is the host's
    /// checkpoints gone back: an alert (a fork), not a silent refusal.
    #[test]
    fn a_checkpoint_behind_the_records_delivered_is_a_rollback() {
        let s = signer("host-a");
        let key = s.verifier().encode();
        let all = records(0, 6, "x");
        let mut held = Witnessed::default();
        accept(
            &mut held,
            &key,
            0,
            &all[..2],
            Some(&checkpoint(&s, &all[..2])),
        );
        // A batch cut short without its checkpoint: records held past the last one.
        accept(&mut held, &key, 2, &all[2..5], None);
        assert_eq!((held.checkpoint_size, held.frontier.size()), (2, 5));
        let refusal = verify_report(&held, &key, 5, &[], Some(&checkpoint(&s, &all[..3])))
            .expect_err("behind");
        assert!(matches!(refusal, Refusal::Fork(_)), "{refusal:?}");
        // The checkpoint of what is held still verifies.
        accept(&mut held, &key, 5, &[], Some(&checkpoint(&s, &all[..5])));
    }

    #[test]
    fn stored_peaks_round_trip() {
        let mut frontier = Frontier::new();
        for line in records(0, 11, "x") {
            frontier.push(leaf_hash(line.as_bytes()));
        }
        let back = frontier_from(11, &peaks_bytes(&frontier)).expect("fits");
        assert_eq!(back.root(), frontier.root());
        assert!(frontier_from(12, &peaks_bytes(&frontier)).is_none());
    }
}
