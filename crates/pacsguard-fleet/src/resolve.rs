//! Resolving the console's name within a time bound.
//!
//! `ToSocketAddrs` asks the system's resolver (getaddrinfo) and waits for as long as it
//! takes: a resolver that never answers (or an attacker answering for it, one query
//! after another) held `check` before any of its timeouts was running (review s19-r14).
//! The resolution runs on a thread of its own and is waited for at most the caller's
//! step; past it, the caller goes on with an error naming the wait. getaddrinfo cannot
//! be cancelled, so the thread is left to finish on its own (the resolver's own
//! timeouts end it): at most [`MAX_PENDING_RESOLUTIONS`] are left waiting at once, so a
//! resolver that holds every query cannot pile up threads in a `serve` that tries the
//! console again and again.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Resolutions of a console's name left waiting on the system's resolver at once; one
/// more is refused by name until one of them ends.
pub const MAX_PENDING_RESOLUTIONS: usize = 4;

static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Why a console's address gave no socket address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "resolving the name gave no answer within {} ms (the system's resolver, or a name server, holds the query)",
        .0.as_millis()
    )]
    TimedOut(Duration),
    #[error(
        "{MAX_PENDING_RESOLUTIONS} earlier resolutions of a console's name still wait on the system's resolver (MAX_PENDING_RESOLUTIONS): not asked again until one ends"
    )]
    TooMany,
    #[error("resolving the name: {0}")]
    Failed(std::io::Error),
    #[error("the name resolves to no address")]
    NoAddress,
}

/// One resolution counted in [`PENDING`] for as long as it lives.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        PENDING
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_PENDING_RESOLUTIONS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The first socket address `address` (`HOST:PORT`) names, waiting at most `timeout`
/// for the resolver. An address that is an IP literal is not resolved at all.
pub fn resolve_within(address: &str, timeout: Duration) -> Result<SocketAddr, ResolveError> {
    if let Ok(literal) = address.parse::<SocketAddr>() {
        return Ok(literal);
    }
    let slot = Slot::take().ok_or(ResolveError::TooMany)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let name = address.to_string();
    std::thread::Builder::new()
        .name("pacsguard-resolve".into())
        .spawn(move || {
            let _slot = slot;
            let found = name.to_socket_addrs().map(|mut addresses| addresses.next());
            // The caller may have given up: nobody to tell.
            let _ = tx.send(found);
        })
        .map_err(ResolveError::Failed)?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(Some(found))) => Ok(found),
        Ok(Ok(None)) => Err(ResolveError::NoAddress),
        Ok(Err(e)) => Err(ResolveError::Failed(e)),
        Err(_) => Err(ResolveError::TimedOut(timeout)),
    }
}

/// Root only (review s19-r14): a real resolver (the system's getaddrinfo) asking a
/// name server that never answers. Each test re-runs itself in a mount and network
/// namespace of its own (`unshare`), where `/etc/resolv.conf` names a UDP socket on
/// the namespace's loopback that this process holds and never reads; the machine's
/// resolver is not touched.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    const INSIDE: &str = "PACSGUARD_TEST_SILENT_RESOLVER";

    /// Runs the test `name` of this binary again inside namespaces whose resolver never
    /// answers; `true` when this is that run (the caller does the test), `false` when
    /// the run inside passed (the caller returns). Panics if it failed.
    pub(crate) fn in_silent_resolver(name: &str) -> bool {
        if std::env::var_os(INSIDE).is_some() {
            // Held for the whole test: queries arrive and are never answered.
            let socket = std::net::UdpSocket::bind("127.0.0.1:53").expect("bind :53");
            std::mem::forget(socket);
            return true;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("resolv.conf");
        std::fs::write(
            &conf,
            "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n",
        )
        .expect("write resolv.conf");
        let me = std::env::current_exe().expect("test binary");
        let out = Command::new("unshare")
            .args(["--mount", "--net", "--", "sh", "-c"])
            .arg(
                "ip link set lo up && mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" --exact \"$3\" --nocapture --test-threads 1",
            )
            .args(["sh"])
            .arg(&conf)
            .arg(&me)
            .arg(name)
            .env(INSIDE, "1")
            .output()
            .expect("unshare (util-linux) runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "inside the namespaces: {said}");
        assert!(said.contains("1 passed"), "the test ran inside: {said}");
        false
    }

    /// A name server that never answers holds getaddrinfo for minutes here (timeout 30
    /// s, 5 attempts); the resolution is given up after its step, and past
    /// [`MAX_PENDING_RESOLUTIONS`] left waiting one more is refused by name. Bounded
    /// waits, no timed assertion on speed.
    #[test]
    fn a_resolver_that_never_answers_is_given_up_after_the_step() {
        if !in_silent_resolver(
            "resolve::tests::a_resolver_that_never_answers_is_given_up_after_the_step",
        ) {
            return;
        }
        let step = Duration::from_millis(200);
        for _ in 0..MAX_PENDING_RESOLUTIONS {
            let answer = resolve_within("console.pacsguard.example:4443", step);
            assert!(
                matches!(answer, Err(ResolveError::TimedOut(_))),
                "{answer:?}"
            );
        }
        let answer = resolve_within("console.pacsguard.example:4443", step);
        assert!(matches!(answer, Err(ResolveError::TooMany)), "{answer:?}");
        assert!(
            answer
                .map_err(|e| e.to_string())
                .is_err_and(|e| e.contains("MAX_PENDING_RESOLUTIONS")),
        );
        // An IP literal is never resolved: still answered.
        assert_eq!(
            resolve_within("127.0.0.1:4443", step).expect("literal"),
            "127.0.0.1:4443".parse().expect("address")
        );
    }
}
