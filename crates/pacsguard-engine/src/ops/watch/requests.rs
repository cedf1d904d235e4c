//! The watcher runs the commands other processes hand it (see [`crate::ops::Requests`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pacsguard_fs::Entry;
use pacsguard_profile::{RootProfile, RootSpec};

use super::view::RootView;
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
                    let result = self.session.check(&request, &NoProgress);
                    if let Ok(report) = &result {
                        let intact = intact_roots(&request, report);
                        if !intact.is_empty() {
                            self.out.settled(Settled::Intact(&intact));
                        }
                    }
                    Reply::Check(result)
                }
                Request::Scan(request) => Reply::Scan(self.session.scan(&request, &NoProgress)),
                Request::Diff(a, b) => Reply::Diff(self.session.diff(&a, &b)),
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
                    let result = unlocked.and_then(|()| self.session.accept(&request, &NoProgress));
                    self.session.guard_sight = None;
                    self.session.forget_profile_key();
                    if result.as_ref().is_ok_and(|r| !r.accepted.is_empty()) {
                        self.session.actor = own.clone();
                        match self.take_accepted(&request) {
                            // Whoever asked, a console beside this watcher closes the
                            // findings it took in (and forgets those it dropped).
                            Ok(scope) => self.out.settled(Settled::Accepted(&scope)),
                            // Signed already: the watcher's view lags, it must say so.
                            Err(e) => self.out.notice(&format!(
                                "the accepted baseline could not be loaded into the watcher \
                                 ({e}); changes it took in may be reported again"
                            )),
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
    /// paths it covered (absolute).
    fn take_accepted(&mut self, request: &AcceptRequest) -> Result<Vec<PathBuf>, EngineError> {
        let (baseline, _) = self.session.require_baseline()?;
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
        Ok(scope)
    }
}

/// The roots a relayed check verified whole and found as profiled: checked in full (not
/// `--fast`, which trusts what stat says), every directory listed, and no finding in them.
fn intact_roots(request: &CheckRequest, report: &CheckReport) -> Vec<PathBuf> {
    if report.fast {
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
    views: Arc<Mutex<Vec<RootView>>>,
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
