//! `[watch] on_alert`: a command the administrator configured (to page someone), run on
//! alerts. It is run directly, never through a shell, with the finding in its
//! environment; the watcher never waits for it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pacsguard_events::{Finding, FindingKind, escape_path};

/// Commands allowed to run at once; alerts beyond are counted, not run.
pub const MAX_ALERT_COMMANDS_RUNNING: usize = 4;

/// Ordinary alerts run the command at most this often (a mass change must not start a
/// process per file). `ransomware-suspected` and `trail-degraded` always run it.
pub const ALERT_COMMAND_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct AlertCommand {
    argv: Vec<String>,
    running: Vec<Child>,
    last_run: Option<Instant>,
    /// Alerts since the last run that did not run the command.
    held_back: u64,
}

impl AlertCommand {
    pub fn new(argv: Vec<String>) -> AlertCommand {
        AlertCommand {
            argv,
            running: Vec::new(),
            last_run: None,
            held_back: 0,
        }
    }

    /// Runs the command for `finding` if due; returns what to put on the record.
    pub fn on_alert(&mut self, finding: &Finding, now: Instant) -> Option<String> {
        let program = self.argv.first()?.clone();
        // An attack, and the trail going down (it is then the only record that reaches
        // anyone), are never held back by the interval.
        let urgent = matches!(
            finding.kind,
            FindingKind::RansomwareSuspected | FindingKind::TrailDegraded
        );
        let due = urgent
            || self
                .last_run
                .is_none_or(|t| now.duration_since(t) >= ALERT_COMMAND_INTERVAL);
        if !due || self.running.len() >= MAX_ALERT_COMMANDS_RUNNING {
            self.held_back += 1;
            return None;
        }
        let json = serde_json::to_string(finding).unwrap_or_default();
        let spawned = Command::new(&program)
            .args(&self.argv[1..])
            .env("PACSGUARD_KIND", finding.kind.as_str())
            .env("PACSGUARD_SEVERITY", finding.severity.as_str())
            .env("PACSGUARD_PATH", escape_path(&finding.path))
            .env("PACSGUARD_DETAIL", &finding.detail)
            .env("PACSGUARD_FINDING", json)
            .env("PACSGUARD_ALERTS_HELD_BACK", self.held_back.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.last_run = Some(now);
        let held_back = std::mem::take(&mut self.held_back);
        Some(match spawned {
            Ok(child) => {
                let pid = child.id();
                self.running.push(child);
                format!(
                    "on_alert {program} started (pid {pid}) for {} {}; {held_back} alerts before it did not run it",
                    finding.kind,
                    escape_path(&finding.path)
                )
            }
            Err(e) => format!("on_alert {program} could not be started: {e}"),
        })
    }

    /// Collects finished commands; returns how those that failed ended.
    pub fn reap(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        self.running.retain_mut(|child| match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                if !status.success() {
                    failures.push(format!("on_alert (pid {}) ended with {status}", child.id()));
                }
                false
            }
            Err(_) => false,
        });
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_events::Severity;

    fn alert(kind: FindingKind) -> Finding {
        Finding::new("/srv/a.dcm".into(), kind, Severity::Alert, "changed")
    }

    #[test]
    fn runs_the_command_with_the_finding_and_holds_back_a_flood() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let out = tmp.path().join("out");
        let mut command = AlertCommand::new(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "printf '%s %s' \"$PACSGUARD_KIND\" \"$PACSGUARD_PATH\" >> {}",
                out.display()
            ),
        ]);
        let now = Instant::now();
        let first = command.on_alert(&alert(FindingKind::ContentChanged), now);
        assert!(first.is_some_and(|d| d.contains("started")));
        // Within the interval: held back.
        assert!(
            command
                .on_alert(&alert(FindingKind::ContentChanged), now)
                .is_none()
        );
        // Ransomware always runs it, and says how many were held back.
        let urgent = command.on_alert(&alert(FindingKind::RansomwareSuspected), now);
        assert!(urgent.is_some_and(|d| d.contains("1 alerts before")));
        for _ in 0..50 {
            if command
                .running
                .iter_mut()
                .all(|c| c.try_wait().ok().flatten().is_some())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&out).expect("test fixture");
        assert!(text.contains("content-changed /srv/a.dcm"), "{text}");
        assert!(text.contains("ransomware-suspected /srv/a.dcm"), "{text}");
    }

    #[test]
    fn no_more_than_the_limit_run_at_once() {
        let mut command = AlertCommand::new(vec!["/bin/sleep".into(), "5".into()]);
        let now = Instant::now();
        for _ in 0..MAX_ALERT_COMMANDS_RUNNING {
            assert!(
                command
                    .on_alert(&alert(FindingKind::RansomwareSuspected), now)
                    .is_some()
            );
        }
        assert!(
            command
                .on_alert(&alert(FindingKind::RansomwareSuspected), now)
                .is_none()
        );
        assert_eq!(command.held_back, 1);
        for child in &mut command.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[test]
    fn a_missing_program_is_reported_not_fatal() {
        let mut command = AlertCommand::new(vec!["/nonexistent/page".into()]);
        let detail = command.on_alert(&alert(FindingKind::Removed), Instant::now());
        assert!(detail.is_some_and(|d| d.contains("could not be started")));
        assert!(
            AlertCommand::new(Vec::new())
                .on_alert(&alert(FindingKind::Removed), Instant::now())
                .is_none()
        );
    }
}
