//! SIGTERM and SIGINT as a stop request, without a signal handler: both are blocked in
//! every thread and read from a signalfd by a thread of their own, which sets a flag the
//! watcher polls. The watcher then finishes its batch and signs a final checkpoint. A
//! signal again within [`REPEATED_STOP_GRACE`] of the first is the same request; one
//! later exits at once. A guard that can cut its stop short ([`stop_or_hurry_on_termination`]:
//! `watch`, `serve`) takes the second signal, whenever it comes, as "hurry": its stop's
//! waits end at once and what they would have judged is named, the final checkpoint
//! still signed; a signal again within [`REPEATED_STOP_GRACE`] of that one is the same
//! request, one later exits at once.

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
    /// The second, to a guard that can cut its stop short: end the stop's waits, name
    /// what is left, and still sign the final checkpoint.
    Hurry,
    /// The same request again, within [`REPEATED_STOP_GRACE`] of the last one that
    /// asked something (the first, or the hurry).
    Repeated,
    /// Later: exit at once.
    Now,
}

/// What the signal arriving `now` asks: `first` is when the first came, `hurried` when
/// the hurry was asked (`None`: not yet), `can_hurry` whether the guard can cut its stop
/// short (without it, the second signal is judged against the first).
fn classify(
    first: Option<Instant>,
    hurried: Option<Instant>,
    can_hurry: bool,
    now: Instant,
) -> StopSignal {
    let Some(first) = first else {
        return StopSignal::Stop;
    };
    let since = match hurried {
        None if can_hurry => return StopSignal::Hurry,
        None => first,
        Some(hurried) => hurried,
    };
    if now.duration_since(since) < REPEATED_STOP_GRACE {
        StopSignal::Repeated
    } else {
        StopSignal::Now
    }
}

/// The flags a stop signal sets (see [`stop_or_hurry_on_termination`]).
pub struct Stops {
    /// Set by the first: stop.
    pub stop: Arc<AtomicBool>,
    /// Set by the second: cut the stop's waits short.
    pub hurry: Arc<AtomicBool>,
}

/// Blocks SIGTERM and SIGINT in this thread (and every thread it starts from now on) and
/// returns the flag that is set when one arrives. Call before any other thread starts.
pub fn stop_on_termination() -> Result<Arc<AtomicBool>> {
    stop_signals(None)
}

/// As [`stop_on_termination`], for a guard whose stop waits (for the changes it noticed
/// to come due, for its verifications in flight, for the kernel's last events: up to
/// about 14 s) and can cut those waits short: a second signal sets `hurry` (review
/// r31-watch: the second signal of an operator who will not wait was the same request
/// within 5 s, ignored, and exited at once without the final checkpoint after, what was
/// left unjudged named by nobody).
pub fn stop_or_hurry_on_termination() -> Result<Stops> {
    let hurry = Arc::new(AtomicBool::new(false));
    let stop = stop_signals(Some(Arc::clone(&hurry)))?;
    Ok(Stops { stop, hurry })
}

fn stop_signals(hurry: Option<Arc<AtomicBool>>) -> Result<Arc<AtomicBool>> {
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
            let mut hurried = None;
            loop {
                match fd.read_signal() {
                    Ok(Some(_)) => match classify(first, hurried, hurry.is_some(), Instant::now()) {
                        StopSignal::Stop => {
                            first = Some(Instant::now());
                            flag.store(true, Ordering::Relaxed);
                        }
                        StopSignal::Hurry => {
                            hurried = Some(Instant::now());
                            if let Some(hurry) = &hurry {
                                hurry.store(true, Ordering::Relaxed);
                            }
                            crate::outlet::direct(
                                "pacsguard: ",
                                &format!(
                                    "stop signal again: already stopping, now without waiting (what is left unjudged is named, then the final checkpoint); a stop signal {} s after this one exits at once without it",
                                    REPEATED_STOP_GRACE.as_secs()
                                ),
                            );
                        }
                        StopSignal::Repeated => crate::outlet::direct(
                            "pacsguard: ",
                            &format!(
                                "stop signal again: already stopping (finishing the batch, then the final checkpoint); a stop signal {} s after the {} exits at once without it",
                                REPEATED_STOP_GRACE.as_secs(),
                                if hurried.is_some() { "second" } else { "first" }
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
        assert_eq!(classify(None, None, false, first), StopSignal::Stop);
        assert_eq!(
            classify(Some(first), None, false, first),
            StopSignal::Repeated
        );
        let just_before = first + REPEATED_STOP_GRACE - Duration::from_millis(1);
        assert_eq!(
            classify(Some(first), None, false, just_before),
            StopSignal::Repeated
        );
        assert_eq!(
            classify(Some(first), None, false, first + REPEATED_STOP_GRACE),
            StopSignal::Now
        );
    }

    /// Review r31-watch: to a guard that can cut its stop short, the second signal is
    /// the hurry whenever it comes (one 6 s after the first, during the wait for the
    /// verifications in flight, exited at once, unnamed); a signal again within the
    /// grace of the hurry is the same request, one later exits at once.
    #[test]
    fn the_second_stop_signal_hurries_and_a_later_third_exits() {
        let first = Instant::now();
        assert_eq!(classify(None, None, true, first), StopSignal::Stop);
        assert_eq!(classify(Some(first), None, true, first), StopSignal::Hurry);
        let late = first + 2 * REPEATED_STOP_GRACE;
        assert_eq!(classify(Some(first), None, true, late), StopSignal::Hurry);
        let just_before = late + REPEATED_STOP_GRACE - Duration::from_millis(1);
        assert_eq!(
            classify(Some(first), Some(late), true, just_before),
            StopSignal::Repeated
        );
        assert_eq!(
            classify(Some(first), Some(late), true, late + REPEATED_STOP_GRACE),
            StopSignal::Now
        );
    }
}
