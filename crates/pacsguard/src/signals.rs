//! SIGTERM and SIGINT as a stop request, without a signal handler: both are blocked in
//! every thread and read from a signalfd by a thread of their own, which sets a flag the
//! watcher polls. The watcher then finishes its batch and signs a final checkpoint. A
//! second signal exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
            loop {
                match fd.read_signal() {
                    Ok(Some(_)) => {
                        // A second signal while the first is still being honoured (a long
                        // first profile or catch-up): stop now. The records written so far
                        // are on disk; the next start signs them.
                        if flag.swap(true, Ordering::Relaxed) {
                            crate::outlet::direct(
                                "pacsguard: ",
                                "second stop signal: exiting without the final checkpoint",
                            );
                            std::process::exit(2);
                        }
                    }
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
