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

/// What the state of a host found silent says: how long since a report of its trail
/// verified, and, if it was in a refused state, that state's own words kept after it.
pub fn silence_detail(
    silent_for: i64,
    interval: i64,
    state_before: &str,
    detail_before: &str,
) -> String {
    let silence = format!(
        "no report of its trail verified for {silent_for} s; it promised one every {interval} s"
    );
    if state_before.is_empty() || state_before == "ok" {
        silence
    } else {
        format!("{silence}; its reports are refused meanwhile ({state_before}): {detail_before}")
    }
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
}
