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
/// refused report does not end a silence).
pub fn refused_state(current: &str, refused: &str) -> String {
    if is_silent(current) {
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
            LastHeard::Report { ago, interval } => format!(
                "no report of its trail verified for {ago} s; it promised one every {interval} s"
            ),
            LastHeard::Enrolment { ago, within } => format!(
                "no report of its trail verified since its enrolment {ago} s ago; its first was due within {within} s"
            ),
        }
    }
}

/// What joins a silence's sentence and the refused state it was found in.
const MEANWHILE: &str = "; its reports are refused meanwhile (";

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
pub fn detail_before_silence(detail: &str, state_before: &str) -> String {
    let marker = format!("{MEANWHILE}{state_before}): ");
    detail
        .find(&marker)
        .map(|at| detail[at + marker.len()..].to_string())
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
