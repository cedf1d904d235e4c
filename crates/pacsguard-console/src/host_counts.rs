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
    /// Not revoked, never heard: their first report is pending.
    pub never_heard: usize,
    /// Not revoked, heard, in another state than `ok` (a refusal, or silent).
    pub refused_or_silent: usize,
    pub revoked: usize,
    /// Current profiles of hosts not revoked that no approval covers.
    pub unapproved: usize,
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
            } else if last_contact == 0 && state == "ok" {
                counts.never_heard += 1;
            } else if state == "ok" {
                counts.reporting += 1;
            } else {
                counts.refused_or_silent += 1;
            }
        }
        counts
    }
}

impl std::fmt::Display for HostCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} host(s): {} reporting, {} never heard (first report pending), {} refused or silent, {} revoked; {} profile(s) waiting for an approver",
            self.hosts,
            self.reporting,
            self.never_heard,
            self.refused_or_silent,
            self.revoked,
            self.unapproved
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
            (true, "ok", 1_800_000_000),
        ];
        let counts = HostCounts::of(hosts, 2);
        assert_eq!(
            counts,
            HostCounts {
                hosts: 5,
                reporting: 1,
                never_heard: 1,
                refused_or_silent: 2,
                revoked: 1,
                unapproved: 2,
            }
        );
        assert_eq!(
            counts.to_string(),
            "5 host(s): 1 reporting, 1 never heard (first report pending), 2 refused or silent, 1 revoked; 2 profile(s) waiting for an approver"
        );
        assert_eq!(
            HostCounts::of([], 0).to_string().split(':').next(),
            Some("0 host(s)")
        );
    }
}
