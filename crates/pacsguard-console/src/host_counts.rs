//! The one line `console hosts` ends with: how many hosts, and of them how many report,
//! were never heard, are refused or silent, revoked, and how many profiles wait for an
//! approver (issue 14, session 46, review rv45-fleet: the list gave no count, and an
//! administrator of hundreds of hosts counted lines by hand).

/// The counts of [`HostCounts::of`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCounts {
    /// Hosts in the list (revoked ones too).
    pub hosts: usize,
    /// Not revoked, state `ok`, heard at least once.
    pub reporting: usize,
    /// Not revoked, no report ever verified, and none refused: the first is pending,
    /// or overdue (`silent`: review rv46-fleet, such hosts were counted "refused or
    /// silent" and the line said "0 never heard" beside hosts never heard).
    pub never_heard: usize,
    /// Not revoked, in another state than `ok`: a refusal, or silent after a report.
    pub refused_or_silent: usize,
    pub revoked: usize,
    /// Current profiles of hosts not revoked that no approval covers.
    pub unapproved: usize,
    /// Hosts not revoked whose kept pin is another certificate than the fleet identity
    /// (`host-pinned-other`: cut off, whatever their state says); `None`: not compared
    /// (the identity could not be read).
    pub pinned_other: Option<usize>,
}

impl HostCounts {
    /// Counts `hosts`, each as (revoked, state, last contact; 0: never), and the
    /// `unapproved` profiles.
    pub fn of<'a>(
        hosts: impl IntoIterator<Item = (bool, &'a str, i64)>,
        unapproved: usize,
    ) -> HostCounts {
        let mut counts = HostCounts {
            unapproved,
            ..HostCounts::default()
        };
        for (revoked, state, last_contact) in hosts {
            counts.hosts += 1;
            if revoked {
                counts.revoked += 1;
            } else if last_contact == 0 && (state == "ok" || state == "silent") {
                counts.never_heard += 1;
            } else if state == "ok" {
                counts.reporting += 1;
            } else {
                counts.refused_or_silent += 1;
            }
        }
        counts
    }

    /// [`HostCounts::of`] with the hosts that pinned another certificate counted.
    pub fn with_pinned_other(mut self, pinned_other: Option<usize>) -> HostCounts {
        self.pinned_other = pinned_other;
        self
    }

    /// The counts as `console hosts --json` gives them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "hosts": self.hosts,
            "reporting": self.reporting,
            "never_heard": self.never_heard,
            "refused_or_silent": self.refused_or_silent,
            "revoked": self.revoked,
            "unapproved_profiles": self.unapproved,
            "pinned_other": self.pinned_other,
        })
    }
}

impl std::fmt::Display for HostCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} host(s): {} reporting, {} never heard (first report pending or overdue), {} refused or silent, {} revoked; {} profile(s) waiting for an approver; {}",
            self.hosts,
            self.reporting,
            self.never_heard,
            self.refused_or_silent,
            self.revoked,
            self.unapproved,
            match self.pinned_other {
                Some(n) => format!(
                    "{n} pinned another certificate than the fleet identity (host-pinned-other: cut off)"
                ),
                None => "whether hosts pinned another certificate than the fleet identity is not known (HOME/console/cert.pem not readable)".into(),
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each host counted once, by what the Hosts page shows of it.
    #[test]
    fn each_host_is_counted_once_by_its_state() {
        let hosts = [
            (false, "ok", 1_800_000_000),
            (false, "ok", 0),
            (false, "fork", 1_800_000_000),
            (false, "silent", 0),
            (false, "silent", 1_800_000_000),
            (false, "new-key", 0),
            (true, "ok", 1_800_000_000),
        ];
        let counts = HostCounts::of(hosts, 2).with_pinned_other(Some(1));
        assert_eq!(
            counts,
            HostCounts {
                hosts: 7,
                reporting: 1,
                // Review rv46-fleet: one never heard and overdue (silent) is never heard.
                never_heard: 2,
                refused_or_silent: 3,
                revoked: 1,
                unapproved: 2,
                pinned_other: Some(1),
            }
        );
        assert_eq!(
            counts.to_string(),
            "7 host(s): 1 reporting, 2 never heard (first report pending or overdue), 3 refused or silent, 1 revoked; 2 profile(s) waiting for an approver; 1 pinned another certificate than the fleet identity (host-pinned-other: cut off)"
        );
        assert_eq!(counts.to_json()["never_heard"], 2);
        assert_eq!(counts.to_json()["pinned_other"], 1);
        assert!(
            HostCounts::of([], 0)
                .to_string()
                .ends_with("is not known (HOME/console/cert.pem not readable)")
        );
        assert_eq!(
            HostCounts::of([], 0).to_string().split(':').next(),
            Some("0 host(s)")
        );
    }
}
