//! Commands handed to a running watcher by another process.
//!
//! While `watch` or `serve` runs, it holds the home's lock: a second writer of the store
//! or the trail would fork the evidence. A `check`, `accept`, `scan` or `diff` started beside it
//! is therefore run by the watcher itself, between two turns of its loop, through this
//! queue (the binary carries it over a Unix socket in the home). The watcher runs it on
//! its own session, as the person who asked, so the trail stays one sequence written by
//! one process, and an acceptance updates the watcher's view at once: the change it
//! accepts is not reported again.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use pacsguard_events::Actor;

use super::{
    AcceptReport, AcceptRequest, CheckReport, CheckRequest, DiffReport, ProfileRef, ScanReport,
    ScanRequest,
};
use crate::error::EngineError;

/// Most commands waiting for the watcher at once: each holds a connection of a local
/// root process; more are refused (the caller may retry) rather than queued without end.
pub const MAX_QUEUED_REQUESTS: usize = 16;

/// A command another process asks the running watcher to run.
#[derive(Clone, Debug)]
pub enum Request {
    Check(CheckRequest),
    Accept(AcceptRequest),
    Scan(ScanRequest),
    /// `diff A B`: read only, but recorded on the trail, which only the guard writes.
    Diff(ProfileRef, ProfileRef),
    /// `key passphrase` beside a running guard (which holds the home): the key unlocked
    /// with `current`, sealed under `new`, then forgotten.
    ChangePassphrase {
        current: crate::keyfile::Passphrase,
        new: crate::keyfile::Passphrase,
    },
}

/// What the watcher answers.
#[derive(Debug)]
pub enum Reply {
    Check(Result<CheckReport, EngineError>),
    Accept(Result<AcceptReport, EngineError>),
    Scan(Result<ScanReport, EngineError>),
    Diff(Result<DiffReport, EngineError>),
    ChangePassphrase(Result<super::keys::PassphraseReport, EngineError>),
    /// The watcher could not run it (stopped, its trail unwritable); the reason.
    Refused(String),
}

/// One queued command: what, for whom, and where the answer goes.
pub(crate) struct Pending {
    pub request: Request,
    pub actor: Actor,
    pub reply: SyncSender<Reply>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    closed: bool,
}

/// A cloneable handle on the watcher's queue of commands.
#[derive(Clone, Default)]
pub struct Requests {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").finish_non_exhaustive()
    }
}

impl Requests {
    /// Queues a command run as `actor`; the answer comes on the receiver once the
    /// watcher ran it. Refused at once when the watcher has stopped or
    /// [`MAX_QUEUED_REQUESTS`] wait.
    pub fn submit(&self, request: Request, actor: Actor) -> Result<Receiver<Reply>, String> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| "the guard's command queue was poisoned by a panic".to_string())?;
        if state.closed {
            return Err("the guard has stopped".into());
        }
        if state.queue.len() >= MAX_QUEUED_REQUESTS {
            return Err(format!(
                "{MAX_QUEUED_REQUESTS} commands already wait for the guard (MAX_QUEUED_REQUESTS); try again"
            ));
        }
        let (reply, answer) = sync_channel(1);
        state.queue.push_back(Pending {
            request,
            actor,
            reply,
        });
        Ok(answer)
    }

    /// Everything queued so far, oldest first.
    pub(crate) fn take(&self) -> Vec<Pending> {
        match self.state.lock() {
            Ok(mut state) => state.queue.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Refuses every later command, and answers those still waiting with `reason`.
    pub fn close(&self, reason: &str) {
        let left = match self.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                state.queue.drain(..).collect()
            }
            Err(_) => Vec::new(),
        };
        for pending in left {
            let _ = pending.reply.send(Reply::Refused(reason.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            user: "root".into(),
            uid: 0,
            sudo_user: None,
        }
    }

    #[test]
    fn the_queue_is_bounded_at_its_limit() {
        let requests = Requests::default();
        let mut answers = Vec::new();
        for _ in 0..MAX_QUEUED_REQUESTS {
            answers.push(
                requests
                    .submit(Request::Check(CheckRequest::default()), actor())
                    .expect("below the limit"),
            );
        }
        let refused = requests
            .submit(Request::Check(CheckRequest::default()), actor())
            .expect_err("at the limit");
        assert!(refused.contains("MAX_QUEUED_REQUESTS"), "{refused}");
        assert_eq!(requests.take().len(), MAX_QUEUED_REQUESTS);
    }

    #[test]
    fn closing_answers_the_waiting_and_refuses_the_next() {
        let requests = Requests::default();
        let answer = requests
            .submit(Request::Check(CheckRequest::default()), actor())
            .expect("open");
        requests.close("the guard has stopped");
        assert!(matches!(answer.recv(), Ok(Reply::Refused(r)) if r == "the guard has stopped"));
        assert!(
            requests
                .submit(Request::Check(CheckRequest::default()), actor())
                .is_err()
        );
    }
}
