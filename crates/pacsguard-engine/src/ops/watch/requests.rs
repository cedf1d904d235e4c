//! The watcher runs the commands other processes hand it (see [`crate::ops::Requests`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use pacsguard_fs::Entry;
use pacsguard_profile::{RootProfile, RootSpec};

use super::view::Views;
use super::{Guard, Settled};
use crate::error::EngineError;
use crate::ops::guard_sight::{GuardSight, changed_since_shown};
use crate::ops::requests::Pending;
use crate::ops::targets::is_within;
use crate::ops::{AcceptRequest, CheckReport, CheckRequest, Reply, Request};
use crate::progress::NoProgress;

impl Guard<'_> {
    /// Runs the queued commands on this session, each as the person who asked (the
    /// trail names them, not the watcher's user). An acceptance becomes this watcher's
    /// view at once, so the change it took in is not reported again.
    pub(super) fn run_requests(&mut self) -> Result<(), EngineError> {
        for Pending {
            request,
            actor,
            reply,
        } in self.session.requests.take()
        {
            // The session writes the trail directly: while it cannot be written, the
            // command would fail half-recorded. Refused whole instead.
            if self.degraded.is_some() {
                let _ = reply.send(Reply::Refused(
                    "the guard cannot write the audit trail now (the home's disk is full?); \
                     nothing was run"
                        .into(),
                ));
                continue;
            }
            let own = std::mem::replace(&mut self.session.actor, actor);
            let answer = match request {
                Request::Check(request) => {
                    let started = Instant::now();
                    let result = self.session.check(&request, &NoProgress);
                    if let Ok(report) = &result {
                        let intact = intact_roots(&request, report, self.views_generation);
                        if !intact.is_empty() {
                            self.out.settled(Settled::Intact {
                                roots: &intact,
                                started,
                            });
                        }
                    }
                    Reply::Check(result)
                }
                Request::Scan(request) => Reply::Scan(self.session.scan(&request, &NoProgress)),
                Request::Diff(a, b) => Reply::Diff(self.session.diff(&a, &b)),
                Request::ChangePassphrase { current, new } => {
                    // As for an acceptance: unlocked for this one request, then forgotten.
                    let result = self
                        .session
                        .home
                        .unlock_profile_key(&current)
                        .and_then(|key| self.session.use_profile_key(key))
                        .and_then(|()| self.session.change_profile_key_passphrase(&new));
                    self.session.forget_profile_key();
                    Reply::ChangePassphrase(result)
                }
                Request::Accept(request) => {
                    // A protected key is unlocked for this one acceptance, then forgotten:
                    // the guard holds no profile-signing key between requests.
                    let unlocked = match &request.passphrase {
                        Some(passphrase) => self
                            .session
                            .home
                            .unlock_profile_key(passphrase)
                            .and_then(|key| self.session.use_profile_key(key)),
                        None => Ok(()),
                    };
                    // Under this turn, the acceptance signs only what this watcher
                    // verified and reported ([`crate::ops::guard_sight`]), and, asked in
                    // the console, only if the findings open are those its page showed.
                    // A relayed `pacsguard accept` has no page, but is pinned the same:
                    // before, a file rewritten (or deleted) after its person's `check`,
                    // not yet seen by the guard, was signed in unseen (review s35).
                    let still_shown = request.shown.as_ref().is_none_or(|shown| {
                        self.out.open_digest(&shown.root).as_deref() == Some(shown.digest.as_str())
                    });
                    self.session.guard_sight = Some(Box::new(WatcherSight {
                        views: Arc::clone(&self.views),
                        still_shown,
                    }) as Box<dyn GuardSight>);
                    let started = Instant::now();
                    let result = unlocked.and_then(|()| self.session.accept(&request, &NoProgress));
                    self.session.guard_sight = None;
                    self.session.forget_profile_key();
                    if let Some(report) = result.as_ref().ok().filter(|r| !r.accepted.is_empty()) {
                        self.session.actor = own.clone();
                        match self.take_accepted(&request) {
                            // Whoever asked, a console beside this watcher closes the
                            // findings it took in (and forgets those it dropped where it
                            // took a root in whole): only the differences it signed,
                            // never below a directory left unlisted (review s35, s36: an
                            // `accept --all` closed the open findings of every root,
                            // taken in or not, and a move by its source alone).
                            Ok((scope, generation)) => {
                                self.views_generation = Some(generation);
                                self.out.settled(Settled::Accepted {
                                    scope: &changed_within(scope, &report.accepted),
                                    taken: &report.accepted,
                                    except: &report.kept_unlisted,
                                    started,
                                });
                            }
                            // Signed already: the watcher's view lags, it must say so,
                            // and no check settles its findings until a restart.
                            Err(e) => {
                                self.views_generation = None;
                                self.out.notice(&format!(
                                    "the accepted baseline could not be loaded into the watcher \
                                     ({e}); changes it took in may be reported again"
                                ));
                            }
                        }
                    }
                    Reply::Accept(result)
                }
            };
            self.session.actor = own;
            // A caller that went away meanwhile: the command ran and is on the trail.
            let _ = reply.send(answer);
        }
        Ok(())
    }

    /// Puts what an acceptance signed into the views of the roots it covered; gives the
    /// paths it covered (absolute) and the generation the views hold now.
    fn take_accepted(
        &mut self,
        request: &AcceptRequest,
    ) -> Result<(Vec<PathBuf>, u64), EngineError> {
        let (baseline, info) = self.session.require_baseline()?;
        let targets = self.session.check_targets(&baseline, &request.paths)?;
        let scope = targets
            .iter()
            .map(|(root, within)| RootProfile::absolute_of(root, within))
            .collect();
        let mut indexed: Vec<(PathBuf, Vec<pacsguard_fs::Entry>)> = Vec::new();
        {
            let mut views = self.views()?;
            for (root, within) in targets {
                let (Some(view), Some(signed)) = (
                    views.iter_mut().find(|v| v.spec.path == root),
                    baseline.root(&root),
                ) else {
                    continue;
                };
                let entries: Vec<_> = signed
                    .entries
                    .iter()
                    .filter(|e| is_within(&e.rel, &within))
                    .cloned()
                    .collect();
                view.replace(std::slice::from_ref(&within), entries.clone());
                indexed.push((root, entries));
            }
        }
        for (root, entries) in indexed {
            self.index_inodes(Some((&root, &entries)))?;
        }
        Ok((scope, info.generation))
    }
}

/// Of the paths an acceptance named (`scope`, absolute), those where it took in a
/// difference: a root where nothing differed settled nothing.
fn changed_within(scope: Vec<PathBuf>, accepted: &[pacsguard_events::Finding]) -> Vec<PathBuf> {
    scope
        .into_iter()
        .filter(|within| {
            accepted.iter().any(|f| {
                f.path.starts_with(within) || f.from.as_ref().is_some_and(|p| p.starts_with(within))
            })
        })
        .collect()
}

/// The roots a relayed check verified whole and found as profiled: checked in full (not
/// `--fast`, which trusts what stat says), every directory listed, and no finding in them;
/// and against the profile generation the watcher's views hold (`views`): against
/// another (the views lag behind an acceptance they could not take), "intact" proves
/// nothing about what they reported (review s36).
fn intact_roots(request: &CheckRequest, report: &CheckReport, views: Option<u64>) -> Vec<PathBuf> {
    if report.fast || views != Some(report.generation) {
        return Vec::new();
    }
    report
        .roots
        .iter()
        .filter(|root| request.paths.is_empty() || request.paths.contains(&root.path))
        .filter(|root| root.kept_unlisted.is_empty())
        .filter(|root| {
            !report.findings.iter().any(|f| {
                f.path.starts_with(&root.path) || f.root.as_deref() == Some(root.path.as_path())
            })
        })
        .map(|root| root.path.clone())
        .collect()
}

/// What a watcher has seen, for an acceptance it runs: its views of the roots, and
/// whether the findings the console has open are those the person was shown.
struct WatcherSight {
    views: Arc<Views>,
    /// The console's findings open when this turn took the acceptance are those shown.
    still_shown: bool,
}

impl GuardSight for WatcherSight {
    fn still_shown(&self) -> Result<(), EngineError> {
        if self.still_shown {
            Ok(())
        } else {
            Err(changed_since_shown())
        }
    }

    /// A view that cannot be read (its lock poisoned by a panic) vouches for nothing.
    fn seen(&self, spec: &RootSpec, rel: &[u8]) -> Option<Entry> {
        let views = self.views.lock().ok()?;
        views.iter().find(|v| v.spec.path == spec.path)?.entry(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_events::{Finding, FindingKind, Severity, SeverityCounts};

    fn summary(path: &str) -> crate::ops::RootSummary {
        crate::ops::RootSummary {
            path: path.into(),
            policy: "static",
            hash: "blake3",
            files: 1,
            directories: 1,
            other: 0,
            bytes: 1,
            hashed_files: 1,
            hashed_bytes: 1,
            kept_unlisted: Vec::new(),
        }
    }

    /// Only what a check proves settles a console's findings: a full check (not
    /// `--fast`) of the whole root (not a path in it), every directory listed, no finding
    /// in the root, against the generation the views hold. Before (review s36) a check of
    /// another generation than the views judge against settled them too.
    #[test]
    fn only_a_full_check_of_the_views_profile_finds_roots_intact() {
        let report = |generation, fast, findings: Vec<Finding>| CheckReport {
            generation,
            baseline_created: 0,
            key_fingerprint: String::new(),
            fast,
            roots: vec![summary("/a"), summary("/b"), {
                let mut c = summary("/c");
                c.kept_unlisted = vec!["/c/locked".into()];
                c
            }],
            counts: SeverityCounts::default(),
            findings,
        };
        let all = CheckRequest::default();
        let b_changed = vec![Finding::new(
            "/b/x".into(),
            FindingKind::Added,
            Severity::Info,
            "",
        )];
        assert_eq!(
            intact_roots(&all, &report(3, false, b_changed.clone()), Some(3)),
            vec![PathBuf::from("/a")]
        );
        assert!(
            intact_roots(&all, &report(3, false, Vec::new()), Some(2)).is_empty(),
            "another profile"
        );
        assert!(
            intact_roots(&all, &report(3, false, Vec::new()), None).is_empty(),
            "views lagging"
        );
        assert!(
            intact_roots(&all, &report(3, true, Vec::new()), Some(3)).is_empty(),
            "--fast"
        );
        let within = CheckRequest {
            paths: vec!["/a/sub".into(), "/b".into()],
            fast: false,
        };
        assert_eq!(
            intact_roots(&within, &report(3, false, Vec::new()), Some(3)),
            vec![PathBuf::from("/b")],
            "a path in a root is not the root"
        );
    }

    /// An acceptance settles, on a console beside the guard, only the paths it named
    /// where it took a difference in: `accept --all` with one root changed closed the
    /// open findings of every root before (review s35), an alert of an untouched root
    /// with them. A move counts where either of its paths is.
    #[test]
    fn an_acceptance_settles_only_where_it_took_a_difference_in() {
        let accepted = vec![
            Finding::new("/a/x".into(), FindingKind::Added, Severity::Info, ""),
            Finding::new("/d/new".into(), FindingKind::Moved, Severity::Info, "")
                .with_from("/c/old".into()),
        ];
        let scope = ["/a", "/b", "/c", "/d", "/a/y"].map(PathBuf::from).to_vec();
        assert_eq!(
            changed_within(scope, &accepted),
            ["/a", "/c", "/d"].map(PathBuf::from).to_vec()
        );
    }
}
