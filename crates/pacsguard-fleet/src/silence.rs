//! How a host's silence shows in its state (issue 14, review r27-fleet2).
//!
//! A host's contact is a report whose trail verified: a refused one (a fork, a gap, a
//! key the console does not witness, a copy of its enrolment) is counted and raised,
//! but keeps nothing alive. So a host can be silent while refused reports still come
//! under its certificate: a copy of its whole home reporting after the host was
//! stopped. Its silence is then written after the state it was in (`fork, silent`),
//! never over it: the fork stays shown, and the copy's next refusal, the same as
//! before, changes nothing, so neither alert is raised again at each report.

/// The state of a host found silent while it was in no refused state.
pub const SILENT: &str = "silent";
/// Joins a refused state and the silence found after it: `fork, silent`.
const AFTER: &str = ", ";

/// Whether `state` says the host is silent (alone or after a refused state).
pub fn is_silent(state: &str) -> bool {
    state == SILENT
        || state
            .strip_suffix(SILENT)
            .is_some_and(|before| before.ends_with(AFTER))
}

/// `state` with the silence written after it: what a host in `state` becomes once no
/// report of its trail verified for its promised interval and the grace.
pub fn silenced(state: &str) -> String {
    if is_silent(state) {
        state.to_string()
    } else if state.is_empty() || state == "ok" {
        SILENT.to_string()
    } else {
        format!("{state}{AFTER}{SILENT}")
    }
}

/// The state to set for a report refused as `refused` while the host is in `current`:
/// `refused` itself, or, if the host is silent, `refused` with the silence after it (a
/// refused report does not end a silence). A standing refusal ([`STANDING`]) is kept
/// through one that does not stand (a gap, a quota, a malformed report, a new key):
/// written over it, the next accepted batch ended that one, and the fork with it, with
/// no acknowledgement; a hostile copy had only to send one malformed report after its
/// fork (review of session 34). The caller counts it on the standing state's detail.
pub fn refused_state(current: &str, refused: &str) -> String {
    if is_standing(current) && !is_standing(refused) {
        current.to_string()
    } else if is_silent(current) {
        silenced(refused)
    } else {
        refused.to_string()
    }
}

/// When the console last heard a host, what its silence is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastHeard {
    /// A report of its trail verified `ago` seconds ago; it promised one every `interval`.
    Report { ago: i64, interval: i64 },
    /// None ever did: it was enrolled `ago` seconds ago, and its first report was due
    /// within `within` (review r28-fleet: a host whose reports are all refused, or whose
    /// guard never started, is watched from its enrolment).
    Enrolment { ago: i64, within: i64 },
}

impl LastHeard {
    fn sentence(self) -> String {
        match self {
            LastHeard::Report { ago, interval } => {
                format!("{SENTENCE_START}for {ago} s; it promised one every {interval} s")
            }
            LastHeard::Enrolment { ago, within } => format!(
                "{SENTENCE_START}since its enrolment {ago} s ago; its first was due within {within} s"
            ),
        }
    }
}

/// Refused states that a host's records delivered afterwards do not end: a fork (its
/// trail rewound, rewritten, or a copy of it reporting) and a copy of its enrolment
/// beside it are facts about the host that stand while the host goes on reporting, until
/// an administrator acts (revokes it; `console enrol-token --continue` enrols the same
/// machine anew). Ended by its records, the state flapped back to `ok` at each batch
/// while a copy kept running, and each fork of the copy was news again (review
/// r29-fleet2). A gap or records outside the signed tree are mended by the records
/// that follow.
const STANDING: &[&str] = &["fork", "duplicated"];

/// Whether `state` (a silence after it or not) is a refusal that stands: see
/// [`STANDING`].
pub fn is_standing(state: &str) -> bool {
    let refused = state
        .strip_suffix(SILENT)
        .and_then(|s| s.strip_suffix(AFTER))
        .unwrap_or(state);
    STANDING.contains(&refused)
}

/// What joins the state of a refusal that does not stand and its words, counted on a
/// standing one's detail ([`counted_beside`]): `gap: records from 30, ...`.
const BESIDE: &str = ": ";

/// The words a refusal to `state` (one that does not stand) is counted with on the
/// detail of a standing refusal kept through it ([`refused_state`]): its state named,
/// for the reader. Whether the next one of the same state is news is not read back
/// from here (words the host writes end the detail): see
/// `Unwritten::last_counted_is`.
pub fn counted_beside(state: &str, words: &str) -> String {
    format!("{state}{BESIDE}{words}")
}

/// What joins a silence's sentence and the refused state it was found in.
const MEANWHILE: &str = "; its reports are refused meanwhile (";

/// How every silence's sentence begins (see [`LastHeard::sentence`]): console words,
/// never a host's, and none of them [`MEANWHILE`].
const SENTENCE_START: &str = "no report of its trail verified ";

/// What the state of a host found silent says: how long since a report of its trail
/// verified (or since its enrolment), and, if it was in a refused state, that state's
/// own words kept after it.
pub fn silence_detail(last: LastHeard, state_before: &str, detail_before: &str) -> String {
    let silence = last.sentence();
    if state_before.is_empty() || state_before == "ok" {
        silence
    } else {
        format!("{silence}{MEANWHILE}{state_before}): {detail_before}")
    }
}

/// The state of a host in `state` once a report of its trail verified again (it sent
/// records, or a heartbeat): its silence ended, a refused state before it kept (a
/// heartbeat delivers nothing that could mend a fork or a gap). `ok` for `silent`.
pub fn heard_again(state: &str) -> String {
    if state == SILENT {
        return "ok".to_string();
    }
    match state
        .strip_suffix(SILENT)
        .and_then(|s| s.strip_suffix(AFTER))
    {
        Some(before) => before.to_string(),
        None => state.to_string(),
    }
}

/// The detail of the refused state `state_before` found in a silent host's `detail`
/// (written by [`silence_detail`]), for its state once heard again; `""` for none.
///
/// Read from the front only: the console's sentence, then the first [`MEANWHILE`] and
/// the state, then the refusal's words, which quote what the host sent. A search for
/// the marker anywhere found it inside a host's words when the detail was not a
/// silence's (session 36's note), so a host could choose what its refusal's words
/// became once heard again.
pub fn detail_before_silence(detail: &str, state_before: &str) -> String {
    let Some(sentence_and_rest) = detail.strip_prefix(SENTENCE_START) else {
        return String::new();
    };
    let Some((_, after)) = sentence_and_rest.split_once(MEANWHILE) else {
        return String::new();
    };
    after
        .strip_prefix(state_before)
        .and_then(|rest| rest.strip_prefix("): "))
        .map(str::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_written_after_a_refused_state_never_over_it() {
        assert_eq!(silenced("ok"), "silent");
        assert_eq!(silenced(""), "silent");
        assert_eq!(silenced("fork"), "fork, silent");
        assert_eq!(silenced("duplicated"), "duplicated, silent");
        assert_eq!(silenced("fork, silent"), "fork, silent");
        assert_eq!(silenced("silent"), "silent");
        assert!(is_silent("silent") && is_silent("new-key, silent"));
        assert!(!is_silent("fork") && !is_silent("ok") && !is_silent("unsilent"));
    }

    #[test]
    fn a_refused_report_does_not_end_a_silence() {
        assert_eq!(refused_state("ok", "fork"), "fork");
        assert_eq!(refused_state("gap", "fork"), "fork");
        // The same refusal as before the silence: nothing changes (nothing raised).
        assert_eq!(refused_state("fork, silent", "fork"), "fork, silent");
        // Another one: it is news (raised), and the silence stays.
        assert_eq!(
            refused_state("fork, silent", "duplicated"),
            "duplicated, silent"
        );
        assert_eq!(refused_state("silent", "fork"), "fork, silent");
    }

    /// Review of session 34: a refusal that does not stand never replaces one that does
    /// (only an acknowledgement ends a fork), silent or not; one that stands does.
    #[test]
    fn a_refusal_that_does_not_stand_never_replaces_one_that_does() {
        for refused in ["gap", "quota", "malformed", "new-key", "inclusion"] {
            assert_eq!(refused_state("fork", refused), "fork");
            assert_eq!(refused_state("duplicated", refused), "duplicated");
            assert_eq!(refused_state("fork, silent", refused), "fork, silent");
        }
        assert_eq!(refused_state("fork", "duplicated"), "duplicated");
        assert_eq!(refused_state("gap", "quota"), "quota");
    }

    #[test]
    fn a_standing_refusal_is_one_that_stands() {
        assert!(is_standing("fork") && is_standing("duplicated, silent"));
        assert!(!is_standing("gap") && !is_standing("ok") && !is_standing("silent"));
        assert_eq!(
            counted_beside("gap", "records from 30"),
            "gap: records from 30"
        );
    }

    #[test]
    fn a_host_heard_again_keeps_the_refusal_before_its_silence() {
        assert_eq!(heard_again("silent"), "ok");
        assert_eq!(heard_again("fork, silent"), "fork");
        assert_eq!(heard_again("fork"), "fork");
        assert_eq!(heard_again("ok"), "ok");
        let detail = silence_detail(
            LastHeard::Report {
                ago: 30,
                interval: 15,
            },
            "fork",
            "records from 3 again: rewound",
        );
        assert_eq!(
            detail_before_silence(&detail, "fork"),
            "records from 3 again: rewound"
        );
        assert_eq!(detail_before_silence("no report", "fork"), "");
        // A host's words holding the marker are no silence's detail (session 36's
        // note: the marker was searched for anywhere).
        let planted = format!("records from 3 again{MEANWHILE}fork): planted");
        assert_eq!(detail_before_silence(&planted, "fork"), "");
        // Nor, in a silence's detail, past the console's own marker.
        let silent_dup = silence_detail(
            LastHeard::Report {
                ago: 30,
                interval: 15,
            },
            "duplicated",
            &planted,
        );
        assert_eq!(detail_before_silence(&silent_dup, "fork"), "");
        assert_eq!(detail_before_silence(&silent_dup, "duplicated"), planted);
        assert!(
            silence_detail(
                LastHeard::Enrolment {
                    ago: 70,
                    within: 60
                },
                "ok",
                ""
            )
            .contains("since its enrolment 70 s ago")
        );
    }
}
