//! Acknowledging a host's standing refusal (issue 14).
//!
//! A `fork` or a `duplicated` identity stands until the host is revoked (see
//! [`crate::silence`]): a team that investigated it and knows its cause (a restore
//! from a backup, a cloned virtual machine since destroyed) had no way to say so, and
//! every later fork of the host was counted on the first one's detail, never raised:
//! a second copy hid behind the first. An administrator now acknowledges the refusal
//! (`console acknowledge-host NAME --reason`), which the console records on its own
//! trail (`host-acknowledged`) and the fleet's store keeps with the digest of the
//! refusal acknowledged ([`digest`]). The state stays, shown acknowledged while that
//! digest is still the host's standing refusal's; a refusal of another kind moves the
//! state (raised, as always), and one of the same kind at another [`point`] is raised
//! again instead of counted.

use sha2::{Digest as _, Sha256};

use crate::silence;

/// A host's standing refusal as an acknowledgement names it: its state without the
/// silence found after it, and the words of the first refusal (the refusals counted
/// after it, and the silence's own sentence, left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub state: String,
    pub words: String,
    /// The beginning of the stored detail that holds `words`, which the refusals counted
    /// after it do not change: what the store compares when it writes an acknowledgement.
    pub kept: String,
}

/// The standing refusal of a host in `state` with `detail`, if it is in one.
pub fn standing(state: &str, detail: &str) -> Option<Standing> {
    if !silence::is_standing(state) {
        return None;
    }
    let refused = silence::heard_again(state);
    // The refusals counted after the first are kept in the store's own columns
    // (`pacsguard_store::Again`), never in `detail`: its words are the first refusal's
    // whole, never cut at a marker a host could write into them (session 35).
    let kept = detail.to_string();
    let words = if silence::is_silent(state) {
        silence::detail_before_silence(&kept, &refused)
    } else {
        kept.clone()
    };
    Some(Standing {
        state: refused,
        words,
        kept,
    })
}

impl Standing {
    /// Whether these words of a fork name no branch of the host's trail, only its size
    /// or a checkpoint's root (a restored home's heartbeat, before its first records):
    /// the first record of the branch will be another point ([`Point::covers`]), raised
    /// once, and an acknowledgement of these words must be given again then.
    pub fn names_no_branch(&self) -> bool {
        let at = point(&self.words);
        POINT_AT.iter().any(|lead| self.words.starts_with(lead))
            && !matches!(at.mark, Some(Mark::Record(_)))
    }

    /// The digest an acknowledgement of this refusal names (SHA-256, hex): of its state
    /// and its words, so one kept for another refusal is not in effect for this one.
    pub fn digest(&self) -> String {
        digest(&self.state, &self.words)
    }
}

/// SHA-256 (hex) of a standing refusal's state and words.
pub fn digest(state: &str, words: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(state.as_bytes());
    hash.update(b"\n");
    hash.update(words.as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The forms of a fork's words [`crate::witness`] writes that name where the host's
/// trail stands (a copy of it, a restore): records sent again from there, or its
/// checkpoint of that size. A restored home says both, its checkpoint first (a
/// heartbeat) and its records from the same size next: one point.
const POINT_AT: &[&str] = &["records from ", "a checkpoint of "];

/// Where the other forms stop naming where the refusal happened and go on to say how
/// far the witnessed trail had got, which moves with every batch of the host: (lead-in,
/// end). A form not listed is its whole words (any change is then another point: raised
/// rather than hidden).
const POINT_ENDS: &[(&str, &str)] = &[
    // A trail started anew (its origin and the one before).
    ("the host's trail was started anew (", ")"),
    // A copy of the enrolment beside the host (both trail keys).
    ("two processes report under its certificate at once", "; "),
];

/// Where a refusal happened, as its words say: what tells one fork (one copy, one
/// restore) from another, while the same one reported again with the host's trail grown
/// is the same point ([`Point::same_as`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    /// The size of the host's trail the fork is at, or the words that name the fork.
    pub at: String,
    /// What the words name of the branch at that size, if anything.
    pub mark: Option<Mark>,
    /// Beside a record's leaf hash, the root of the checkpoint of that size the words
    /// were first refused for (a restored home's backup), kept when the branch's words
    /// were taken over it ([`with_branch_named`]): a later checkpoint of that size with
    /// another root is another point (session 33).
    pub root: Option<String>,
}

/// What a fork's words name of the branch the host's trail took at its size
/// ([`crate::witness::LEAF_HASH`], [`crate::witness::ROOT`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    /// The leaf hash of the first record sent again from there: the branch itself.
    Record(String),
    /// The root of a checkpoint of that size: a restored home's heartbeat names its
    /// backup's, the same for every restore of that backup.
    Root(String),
}

impl Point {
    /// Whether an acknowledgement of a refusal at `self` covers a later refusal at
    /// `later`: the same fork, at the same size, of the same branch where both words
    /// name it the same way. A checkpoint's root after a record says nothing of the
    /// branch (a restored home names its backup's checkpoint at each heartbeat, its
    /// records name the branch and are judged on their own), nor do words naming none.
    /// But words acknowledged that named no branch, or only a root, do not cover a later
    /// refusal naming one: a second restore of the same backup, or a rewrite of the
    /// checkpoint alone, would hide behind them (review of session 32).
    pub fn covers(&self, later: &Point) -> bool {
        self.at == later.at
            && match (&self.mark, &later.mark) {
                (Some(Mark::Record(a)), Some(Mark::Record(b)))
                | (Some(Mark::Root(a)), Some(Mark::Root(b))) => a == b,
                (None, Some(_)) | (Some(Mark::Root(_)), Some(Mark::Record(_))) => false,
                // A root after a record says nothing of the branch, but one the
                // acknowledged words kept (their backup's checkpoint) must be the same:
                // a rewrite of the checkpoint alone to that size was covered by any
                // root (session 33).
                (Some(Mark::Record(_)), Some(Mark::Root(b))) => {
                    self.root.as_ref().is_none_or(|a| a == b)
                }
                (_, None) => true,
            }
    }

    /// Whether `other` is this point with its branch named where this one is not: the
    /// words an acknowledgement should name (see [`names_the_branch`]).
    fn named_by(&self, other: &Point) -> bool {
        self.at == other.at
            && !matches!(self.mark, Some(Mark::Record(_)))
            && matches!(other.mark, Some(Mark::Record(_)))
    }
}

/// The hex a fork's words give after `label`, in the part before their first `": "`.
fn hex_after(rest: &str, label: &str) -> Option<String> {
    let head = rest.split(": ").next().unwrap_or(rest);
    let at = head.find(label)? + label.len();
    let hex: String = head[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (!hex.is_empty()).then_some(hex)
}

/// The point of a refusal's words (see [`Point`]).
pub fn point(words: &str) -> Point {
    for lead in POINT_AT {
        if let Some(rest) = words.strip_prefix(lead) {
            let figure: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !figure.is_empty() {
                let mark = hex_after(rest, crate::witness::LEAF_HASH)
                    .map(Mark::Record)
                    .or_else(|| {
                        hex_after(rest, &format!("({}", crate::witness::ROOT)).map(Mark::Root)
                    });
                let root = matches!(mark, Some(Mark::Record(_)))
                    .then(|| hex_after(rest, &kept_root_label()))
                    .flatten();
                return Point {
                    at: format!("the host's trail at {figure}"),
                    mark,
                    root,
                };
            }
        }
    }
    for (lead, end) in POINT_ENDS {
        if let Some(rest) = words.strip_prefix(lead)
            && let Some(at) = rest.find(end)
        {
            return Point {
                at: words[..lead.len() + at].to_string(),
                mark: None,
                root: None,
            };
        }
    }
    Point {
        at: words.to_string(),
        mark: None,
        root: None,
    }
}

/// How a record's words keep the root of the checkpoint they were taken over, inside
/// the parenthesis of the leaf hash: `(the first of leaf hash H; root R)`.
fn kept_root_label() -> String {
    format!("; {}", crate::witness::ROOT)
}

/// `named` (a record's words naming the branch) with the root `first`'s words named, if
/// any, kept beside its leaf hash ([`Point::root`]).
fn keeping_root(first: &str, named: &str) -> String {
    let Some(Mark::Root(root)) = point(first).mark else {
        return named.to_string();
    };
    let at = crate::witness::LEAF_HASH;
    let Some(start) = named.find(at) else {
        return named.to_string();
    };
    let hash_end = start
        + at.len()
        + named[start + at.len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .count();
    format!(
        "{}{}{root}{}",
        &named[..hash_end],
        kept_root_label(),
        &named[hash_end..]
    )
}

/// Whether the words `later` of a refusal name the branch of the same fork that the
/// standing refusal's first words `first` do not (a restored home's heartbeat named its
/// backup's checkpoint, its records come next): the standing refusal then takes `later`'s
/// words, so that an acknowledgement names the branch and a second restore of the same
/// backup (another branch at the same size) is not the fork acknowledged.
pub fn names_the_branch(first: &str, later: &str) -> bool {
    point(first).named_by(&point(later))
}

/// The detail of a host in the standing `state` with `detail` (a silence after it or not:
/// its refusal's words are then those kept after the silence's sentence) with `later`'s
/// words taken as its first refusal's, where they name the branch those did not
/// ([`names_the_branch`]); the refusals counted after it kept. `None`: nothing to take.
/// Run inside a silent detail too: the ordinary restore (a machine down long enough to be
/// found silent, then restored) kept the backup checkpoint's words for the whole silence,
/// and an acknowledgement named no branch (review of session 32).
pub fn with_branch_named(state: &str, detail: &str, later: &str) -> Option<String> {
    let words = if silence::is_silent(state) {
        silence::detail_before_silence(detail, &silence::heard_again(state))
    } else {
        detail.to_string()
    };
    // `words` is the end of `detail` (the silence's sentence comes before it).
    let before = detail.get(..detail.len().checked_sub(words.len())?)?;
    names_the_branch(&words, later).then(|| format!("{before}{}", keeping_root(&words, later)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_counted_or_silenced_since_is_the_one_acknowledged() {
        let words =
            "records from 3 again, but 9 were accepted already: the trail was rewound or rewritten";
        let plain = standing("fork", words).expect("standing");
        assert_eq!(
            (plain.state.as_str(), plain.words.as_str()),
            ("fork", words)
        );
        // Session 35: the words are never cut at a marker the host could write in them
        // (the refusals counted after them are the store's columns).
        let planted = format!("{words} [refused again 7 times since]");
        let whole = standing("fork", &planted).expect("standing");
        assert_eq!(whole.words, planted);
        assert_ne!(whole.digest(), plain.digest());
        let counted = words.to_string();
        let silent = silence::silence_detail(
            silence::LastHeard::Report {
                ago: 30,
                interval: 15,
            },
            "fork",
            &counted,
        );
        let quiet = standing("fork, silent", &silent).expect("standing");
        assert_eq!(quiet.digest(), plain.digest(), "{quiet:?}");
        assert!(silent.starts_with(&quiet.kept));
        assert_eq!(standing("gap", words), None);
        assert_eq!(standing("ok", ""), None);
        // Another refusal of the same kind, or the same words under another state.
        assert_ne!(
            standing("fork", "records from 4 again").map(|s| s.digest()),
            Some(plain.digest())
        );
        assert_ne!(
            standing("duplicated", words).map(|s| s.digest()),
            Some(plain.digest())
        );
    }

    #[test]
    fn the_same_fork_reported_again_is_one_point_and_another_is_not() {
        let same = |a: &str, b: &str| point(a).covers(&point(b));
        let a =
            "records from 3 again, but 9 were accepted already: the trail was rewound or rewritten";
        let b = "records from 3 again, but 14 were accepted already: the trail was rewound or rewritten";
        let c = "records from 5 again, but 14 were accepted already: the trail was rewound or rewritten";
        assert_eq!(point(a).at, "the host's trail at 3");
        assert!(same(a, b));
        assert!(!same(a, c));
        // A restored home's heartbeat, then its records: one point.
        assert!(same(
            "a checkpoint of 3 records after one of 9 was accepted: the trail was rolled back",
            a
        ));
        assert_eq!(
            point(
                "the host's trail was started anew (origin h2 after h1): its earlier records (7 accepted) are no longer the trail it writes"
            )
            .at,
            "the host's trail was started anew (origin h2 after h1"
        );
        let dup = |n: u32| {
            format!(
                "two processes report under its certificate at once: the one with the trail this console witnesses (k1) and another (k2; {n} of its reports refused so far)"
            )
        };
        assert!(same(&dup(1), &dup(7)));
        assert_eq!(
            point("words of no known form 1").at,
            "words of no known form 1"
        );
    }

    /// Session 32: the point was the trail's size alone, so another branch at the same
    /// size (a second restore of one backup, root rewriting the trail from there) was
    /// the fork acknowledged. The first record's leaf hash and a checkpoint's root tell
    /// branches apart; a record against a root cannot, and the branch's words are taken
    /// over the backup's checkpoint's.
    #[test]
    fn another_branch_at_the_same_size_is_another_point() {
        use crate::witness::{LEAF_HASH, ROOT};
        let (h1, h2, r1, r2) = (
            "1a".repeat(32),
            "2b".repeat(32),
            "3c".repeat(32),
            "4d".repeat(32),
        );
        let records = |hash: &str, size: u64| {
            format!(
                "records from 3 again ({LEAF_HASH}{hash}), but {size} were accepted already: the trail was rewound or rewritten"
            )
        };
        let heartbeat = |root: &str| {
            format!(
                "a checkpoint of 3 records ({ROOT}{root}) after one of 9 was accepted: the trail was rolled back"
            )
        };
        let same = |a: &str, b: &str| point(a).covers(&point(b));
        assert_eq!(point(&records(&h1, 9)).mark, Some(Mark::Record(h1.clone())));
        assert_eq!(point(&heartbeat(&r1)).mark, Some(Mark::Root(r1.clone())));
        assert!(same(&records(&h1, 9), &records(&h1, 14)));
        assert!(!same(&records(&h1, 9), &records(&h2, 9)));
        assert!(!same(&heartbeat(&r1), &heartbeat(&r2)));
        // A root after a record says nothing of the branch; a record after words that
        // named only a root names one they did not: not covered (review of session 32).
        assert!(same(&records(&h2, 9), &heartbeat(&r1)));
        assert!(!same(&heartbeat(&r1), &records(&h2, 9)));
        assert!(!same(
            &format!(
                "a checkpoint of 3 records ({ROOT}{r1}) with another root than the tree accepted at that size: the trail was forked"
            ),
            &format!(
                "a checkpoint of 3 records ({ROOT}{r2}) with another root than the tree accepted at that size: the trail was forked"
            ),
        ));
        // Words of a version that named no branch do not cover words naming one at that
        // size (a second restore would hide behind them), nor a root; they are covered.
        let unnamed =
            "records from 3 again, but 9 were accepted already: the trail was rewound or rewritten";
        assert!(!same(unnamed, &records(&h2, 9)));
        assert!(!same(unnamed, &heartbeat(&r1)));
        assert!(same(&records(&h2, 9), unnamed));
        assert!(same(unnamed, unnamed));
        // The branch's words taken inside a silent detail too, the silence's sentence
        // and the refusals counted after kept.
        let counted = heartbeat(&r1);
        let quiet = silence::silence_detail(
            silence::LastHeard::Report {
                ago: 600,
                interval: 15,
            },
            "fork",
            &counted,
        );
        // The backup checkpoint's root kept beside the branch's leaf hash.
        let kept = |hash: &str, root: &str| {
            format!(
                "records from 3 again ({LEAF_HASH}{hash}; {ROOT}{root}), but 9 were accepted already: the trail was rewound or rewritten"
            )
        };
        let named = with_branch_named("fork, silent", &quiet, &records(&h1, 9)).expect("named");
        assert_eq!(
            named,
            quiet.replace(&heartbeat(&r1), &kept(&h1, &r1)),
            "{named}"
        );
        assert_eq!(
            standing("fork, silent", &named).map(|s| s.words),
            Some(kept(&h1, &r1))
        );
        assert_eq!(
            with_branch_named("fork", &counted, &records(&h1, 9)),
            Some(counted.replacen(&heartbeat(&r1), &kept(&h1, &r1), 1))
        );
        assert_eq!(point(&kept(&h1, &r1)).mark, Some(Mark::Record(h1.clone())));
        assert_eq!(point(&kept(&h1, &r1)).root, Some(r1.clone()));
        // Session 33: the acknowledged branch keeps its backup's root, so a rewrite of
        // the checkpoint alone to that size (another root) is another point; its own
        // heartbeats and records are the same.
        assert!(same(&kept(&h1, &r1), &heartbeat(&r1)));
        assert!(!same(&kept(&h1, &r1), &heartbeat(&r2)));
        assert!(same(&kept(&h1, &r1), &records(&h1, 14)));
        assert!(!same(&kept(&h1, &r1), &records(&h2, 9)));
        assert_eq!(
            with_branch_named("fork, silent", &named, &records(&h2, 9)),
            None
        );
        assert!(names_the_branch(&heartbeat(&r1), &records(&h1, 9)));
        assert!(!names_the_branch(&records(&h1, 9), &records(&h2, 9)));
        assert!(!names_the_branch(&records(&h1, 9), &heartbeat(&r1)));
        assert!(!names_the_branch(
            &heartbeat(&r1),
            &records(&h1, 9).replace("from 3", "from 4")
        ));
    }
}
