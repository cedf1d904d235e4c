//! SIGTERM and SIGINT as a stop request, without a signal handler: both are blocked in
//! every thread and read from a signalfd by a thread of their own, which sets a flag the
//! watcher polls. The watcher then finishes its batch and signs a final checkpoint. A
//! signal again within [`REPEATED_STOP_GRACE`] of the first is the same request; one
//! later exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

/// Blocks SIGTTOU in this thread and every thread it starts from now on: a long-running
/// command (`watch`, `serve`, `gateway`) started in the background of a terminal set to
/// `stty tostop` was STOPPED whole by the kernel at its first line on that terminal
/// (stdout or stderr, any thread): the trail stopped, and the gateway's associations
/// waited until their peers timed out (review s16-r16). With SIGTTOU blocked the kernel
/// lets the write through (POSIX: a process blocking SIGTTOU may write). Programs it
/// starts get the default mask back (`std::process::Command` resets it).
fn write_in_the_background() -> Result<()> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTTOU);
    mask.thread_block().context("blocking SIGTTOU")
}

/// How long after the first stop signal another one is still the same request: a stop
/// sent twice in a row (`kill` run twice, Ctrl-C pressed twice, a service manager and a
/// shell both passing it on) stopped `watch` without its final checkpoint (review
/// r23-scale). Past it, a signal means "stop now": a first profile or a catch-up can take
/// longer than anyone will wait.
pub const REPEATED_STOP_GRACE: Duration = Duration::from_secs(5);

/// What a stop signal asks, given when the first one came (`None`: this is the first).
#[derive(Debug, PartialEq, Eq)]
enum StopSignal {
    /// The first: finish the batch and sign the final checkpoint.
    Stop,
    /// The same request again, within [`REPEATED_STOP_GRACE`] of the first.
    Repeated,
    /// Later: exit at once.
    Now,
}

fn classify(first: Option<Instant>, now: Instant) -> StopSignal {
    match first {
        None => StopSignal::Stop,
        Some(first) if now.duration_since(first) < REPEATED_STOP_GRACE => StopSignal::Repeated,
        Some(_) => StopSignal::Now,
    }
}

/// Blocks SIGTERM and SIGINT in this thread (and every thread it starts from now on) and
/// returns the flag that is set when one arrives. Call before any other thread starts.
pub fn stop_on_termination() -> Result<Arc<AtomicBool>> {
    write_in_the_background()?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block().context("blocking SIGTERM and SIGINT")?;
    let fd = SignalFd::new(&mask).context("signalfd")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first = None;
            loop {
                match fd.read_signal() {
                    Ok(Some(_)) => match classify(first, Instant::now()) {
                        StopSignal::Stop => {
                            first = Some(Instant::now());
                            flag.store(true, Ordering::Relaxed);
                        }
                        StopSignal::Repeated => crate::outlet::direct(
                            "pacsguard: ",
                            &format!(
                                "stop signal again: already stopping (finishing the batch, then the final checkpoint); a stop signal {} s after the first exits at once without it",
                                REPEATED_STOP_GRACE.as_secs()
                            ),
                        ),
                        // Still stopping well after the first (a long first profile or
                        // catch-up): stop now. The records written so far are on disk;
                        // the next start signs them.
                        StopSignal::Now => {
                            crate::outlet::direct(
                                "pacsguard: ",
                                "stop signal again: exiting without the final checkpoint (the records written so far are on disk; the next start signs them)",
                            );
                            std::process::exit(2);
                        }
                    },
                    Ok(None) => {}
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(stop)
}

/// Blocks SIGHUP (and, so that the thread started here inherits them blocked, SIGTERM and
/// SIGINT) in this thread and every thread it starts from now on, and returns a flag set
/// at each SIGHUP: the gateway re-reads its configuration. Call first, before
/// [`stop_on_termination`] and any other thread.
pub fn reload_on_hangup() -> Result<Arc<AtomicBool>> {
    write_in_the_background()?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGHUP);
    let mut all = mask;
    all.add(Signal::SIGTERM);
    all.add(Signal::SIGINT);
    all.thread_block().context("blocking SIGHUP")?;
    let fd = SignalFd::new(&mask).context("signalfd")?;
    let hangup = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&hangup);
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            loop {
                match fd.read_signal() {
                    Ok(Some(_)) => flag.store(true, Ordering::Relaxed),
                    Ok(None) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        })
        .context("starting the SIGHUP thread")?;
    Ok(hangup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_signal_again_within_the_grace_is_the_same_request() {
        let first = Instant::now();
        assert_eq!(classify(None, first), StopSignal::Stop);
        assert_eq!(classify(Some(first), first), StopSignal::Repeated);
        let just_before = first + REPEATED_STOP_GRACE - Duration::from_millis(1);
        assert_eq!(classify(Some(first), just_before), StopSignal::Repeated);
        assert_eq!(
            classify(Some(first), first + REPEATED_STOP_GRACE),
            StopSignal::Now
        );
    }
}
