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
    let kept = silence::first_refusal(detail).to_string();
    let words = if silence::is_silent(state) {
        silence::first_refusal(&silence::detail_before_silence(&kept, &refused)).to_string()
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

/// The point of a refusal's words: what tells one fork (one copy, one restore) from
/// another, while the same one reported again with the host's trail grown is the same
/// point.
pub fn point(words: &str) -> String {
    for lead in POINT_AT {
        if let Some(rest) = words.strip_prefix(lead) {
            let figure: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !figure.is_empty() {
                return format!("the host's trail at {figure}");
            }
        }
    }
    for (lead, end) in POINT_ENDS {
        if let Some(rest) = words.strip_prefix(lead)
            && let Some(at) = rest.find(end)
        {
            return words[..lead.len() + at].to_string();
        }
    }
    words.to_string()
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
        let counted = silence::refused_again(words, "records from 3 again, but 12 were accepted");
        let later = standing("fork", &counted).expect("standing");
        assert_eq!(later.digest(), plain.digest());
        assert_eq!(later.kept, words);
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
        let a = point(
            "records from 3 again, but 9 were accepted already: the trail was rewound or rewritten",
        );
        let b = point(
            "records from 3 again, but 14 were accepted already: the trail was rewound or rewritten",
        );
        let c = point(
            "records from 5 again, but 14 were accepted already: the trail was rewound or rewritten",
        );
        assert_eq!(a, "the host's trail at 3");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // A restored home's heartbeat, then its records: one point.
        assert_eq!(
            point(
                "a checkpoint of 3 records after one of 9 was accepted: the trail was rolled back"
            ),
            a
        );
        assert_eq!(
            point(
                "the host's trail was started anew (origin h2 after h1): its earlier records (7 accepted) are no longer the trail it writes"
            ),
            "the host's trail was started anew (origin h2 after h1"
        );
        let dup = |n: u32| {
            format!(
                "two processes report under its certificate at once: the one with the trail this console witnesses (k1) and another (k2; {n} of its reports refused so far)"
            )
        };
        assert_eq!(point(&dup(1)), point(&dup(7)));
        assert_eq!(
            point("words of no known form 1"),
            "words of no known form 1"
        );
    }
}
