//! A connection to a `tls-pass-through` listener: its TLS relayed to the upstream
//! unopened (see `config::TLS_PASS_THROUGH`).
//!
//! The gateway holds no key of the session, so it gives up content screening, AE title,
//! user identity and presentation context checks for these connections, and says so on
//! every record of one ("content not inspected: TLS passed through"). What needs no byte
//! of the association is kept: the allow-list before the first byte (in the accept
//! loop), the rate per peer, a pending place until the peer's handshake is over (its
//! first application data record) within `limits.request_seconds`, then an association
//! place for the rest, the idle timer, the association's lifetime
//! (`limits.pass_through_seconds`, by default `limits.association_seconds`; its pace, `limits.min_average_bytes_per_second`, cannot
//! be judged: inside TLS the gateway cannot tell a peer holding its place from one
//! waiting on the archive), the stop, and TLS record framing on the peer's
//! bytes (`tls_records`): what is not TLS is not relayed; and the version the upstream
//! chose, read from its ServerHello: older than TLS 1.2 is not relayed.

use super::{
    AtomicU64, Current, Full, Incident, Instant, Ordering, Outcome, Pending, Shared, SocketAddr,
    Stopping, TcpStream, current, no_delay,
};
use crate::tls_records::{
    MIN_PASSED_THROUGH_VERSION, Records, ServerHello, ServerSaid, version_name,
};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Bytes read at a time while the handshake is followed.
const HANDSHAKE_BUFFER_BYTES: usize = 16 * 1024;
/// What every record of a pass-through connection says about its content.
pub const NOT_INSPECTED: &str = "content not inspected: TLS passed through";

/// How a pass-through connection ended, once its handshake was over.
enum End {
    /// Both sides closed their half.
    Closed,
    /// One side reset the connection: inside TLS the gateway cannot tell a release
    /// followed by a hasty close (DCMTK's peers close that way) from an abort.
    Reset(String),
    Failed(String),
    Idle,
    /// It lived `limits.pass_through_seconds` (by default `limits.association_seconds`).
    Lifetime,
    Stopped(Stopping),
}

pub(super) async fn relay(
    mut peer: TcpStream,
    addr: SocketAddr,
    rules: Arc<Current>,
    shared: Arc<Shared>,
    pending: Pending,
) {
    let limits = shared.limits.clone();
    let object = format!("dicom://{addr}");
    let deadline = tokio::time::Instant::now() + limits.request;
    let mut stopping = shared.stopping.subscribe();
    // The first byte, before anything is chosen or connected: a TLS handshake or nothing.
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        r = tokio::time::timeout_at(deadline, peer.peek(&mut first)) => r,
        // A hurried stop must not wait request_seconds for one that sends nothing.
        why = shared.stopped() => {
            shared.closed_before_request(addr, &object, ("had sent nothing", ""), why);
            return;
        }
        () = pending.evicted() => {
            shared.incident(addr.ip(), Incident::Silent, &object, format!(
                "closed: a connection from {addr} to a TLS pass-through listener had sent nothing when every place for one was taken (limits.max_pending); a newer connection took its place"
            ));
            return;
        }
    };
    match peeked {
        Err(_) => {
            shared.incident(
                addr.ip(),
                Incident::Silent,
                &object,
                format!(
                    "closed: no TLS handshake from {addr} within {} s ({})",
                    limits.request.as_secs(),
                    limits.request_setting
                ),
            );
            return;
        }
        // Closed before a byte: nothing to judge, nothing relayed.
        Ok(Ok(0)) => return,
        // Reset, or another failure of the socket before the first byte: recorded
        // (review s19-r16: it ended without a word on the trail), as one incident of
        // the peer, so that a flood of resets is summarised, not one record each.
        Ok(Err(e)) => {
            shared.incident(
                addr.ip(),
                Incident::Silent,
                &object,
                format!(
                    "closed: reading the first byte of a connection from {addr} to a TLS pass-through listener (to tell TLS from plain DICOM) failed: {e}; nothing relayed"
                ),
            );
            return;
        }
        Ok(Ok(_)) => pending.progressed(),
    }
    if let Err(e) = Records::default().feed(&first) {
        shared.refused(
            addr.ip(),
            &object,
            format!("refused: connection from {addr}: {e}: a TLS pass-through listener relays TLS only; closed without relaying a byte"),
        );
        return;
    }
    // The rules as a reload leaves them (as for a DICOM request), and the route by the
    // peer's address: nothing else of the connection can be read.
    let Some(bound) = current(&rules) else {
        return;
    };
    let listener = &bound.listener;
    if !listener.allow.iter().any(|n| n.contains(addr.ip())) {
        shared.refused(
            addr.ip(),
            &object,
            format!(
                "refused: {addr} is no longer in the allow-list of {} (configuration reloaded); closed",
                listener.listen
            ),
        );
        return;
    }
    let Some(route) = listener.pass_through_for(addr.ip()) else {
        shared.refused(
            addr.ip(),
            &object,
            format!(
                "refused: connection from {addr} to {}: no tls-pass-through route has this address among its peers; closed without relaying a byte",
                listener.listen
            ),
        );
        return;
    };
    let upstream = route.upstream.clone();
    let mut up = match tokio::time::timeout(limits.artim, TcpStream::connect(upstream.as_str()))
        .await
    {
        Ok(Ok(s)) => {
            no_delay(&s);
            s
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            shared.event(
                Outcome::Failure,
                &object,
                format!("refused: upstream {upstream} unreachable: {why}; the TLS connection from {addr} was closed ({NOT_INSPECTED})"),
            );
            return;
        }
    };
    let started = Instant::now();
    // The handshake, relayed as it comes, until the peer's first application data.
    let mut records = Records::default();
    let (mut a, mut b) = (
        vec![0u8; HANDSHAKE_BUFFER_BYTES],
        vec![0u8; HANDSHAKE_BUFFER_BYTES],
    );
    // Read from the peer (the pending place's measure), and written to each side (what
    // a record may call relayed: handed whole to the gateway's socket, review
    // r29-gateway).
    let mut from_peer = 0u64;
    let (mut to_up, mut to_peer) = (0u64, 0u64);
    // The upstream's bytes held until its ServerHello shows the version it chose (then
    // `None`): a session older than TLS 1.2 is not relayed (review s19-r16).
    let mut hello = Some(ServerHello::default());
    let carried = loop {
        tokio::select! {
            () = pending.evicted() => {
                shared.incident(addr.ip(), Incident::Silent, &object, format!(
                    "closed: a connection from {addr} had not completed its TLS handshake when every place for one was taken (limits.max_pending); a newer connection took its place"
                ));
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                shared.incident(addr.ip(), Incident::Silent, &object, format!(
                    "closed: the TLS handshake of {addr} was not over (no application data) within {} s ({})",
                    limits.request.as_secs(),
                    limits.request_setting
                ));
                return;
            }
            () = async {
                // The guard is not held across the select's other awaits.
                let _ = stopping.wait_for(|s| *s != Stopping::No).await;
            } => return,
            r = peer.read(&mut a) => {
                let n = match r {
                    Ok(0) | Err(_) => {
                        shared.refused(addr.ip(), &object, format!(
                            "closed: {addr} ended its TLS handshake with upstream {upstream} before sending application data ({to_up} bytes relayed; a failed handshake: the upstream's log says why)"
                        ));
                        return;
                    }
                    Ok(n) => n,
                };
                from_peer += n as u64;
                if let Err(e) = records.feed(&a[..n]) {
                    shared.refused(addr.ip(), &object, format!(
                        "refused: {addr} during its TLS handshake: {e}: not relayed; closed"
                    ));
                    return;
                }
                pending.received(from_peer);
                // Early data (TLS 1.3's 0-RTT) before the upstream's ServerHello is
                // judged is relayed as handshake: the version is judged first.
                if records.application_data() && hello.is_none() {
                    break n;
                }
                // Held to the request's time too: a side that does not read cannot
                // hold the handshake past it.
                if let Err(e) = written(tokio::time::timeout_at(deadline, up.write_all(&a[..n])).await, limits.request_setting) {
                    shared.event(Outcome::Failure, &object, format!(
                        "closed: could not write to upstream {upstream} during the TLS handshake of {addr}: {e}"
                    ));
                    return;
                }
                to_up += n as u64;
            }
            r = up.read(&mut b) => {
                let n = match r {
                    Ok(0) | Err(_) => {
                        shared.refused(addr.ip(), &object, format!(
                            "closed: upstream {upstream} ended the TLS handshake of {addr} ({to_peer} bytes relayed; a failed handshake: the upstream's log says why)"
                        ));
                        return;
                    }
                    Ok(n) => n,
                };
                let Some(judging) = hello.as_mut() else {
                    if let Err(e) = written(tokio::time::timeout_at(deadline, peer.write_all(&b[..n])).await, limits.request_setting) {
                        shared.event(Outcome::Failure, &object, format!(
                            "closed: could not write to {addr} during its TLS handshake: {e}"
                        ));
                        return;
                    }
                    to_peer += n as u64;
                    continue;
                };
                match judging.feed(&b[..n]) {
                    Ok(None) => continue,
                    Ok(Some(ServerSaid::Version(v))) if v < MIN_PASSED_THROUGH_VERSION => {
                        shared.refused(addr.ip(), &object, format!(
                            "refused: upstream {upstream} chose {} for the TLS of {addr}, older than TLS 1.2 (BCP195, PS3.15): closed on both sides before its ServerHello was relayed ({NOT_INSPECTED})",
                            version_name(v)
                        ));
                        return;
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        shared.refused(addr.ip(), &object, format!(
                            "refused: upstream {upstream} during the TLS handshake of {addr}: {e}: not relayed; closed"
                        ));
                        return;
                    }
                }
                let held = hello.take().map(|h| h.held().to_vec()).unwrap_or_default();
                if let Err(e) = written(tokio::time::timeout_at(deadline, peer.write_all(&held)).await, limits.request_setting) {
                    shared.event(Outcome::Failure, &object, format!(
                        "closed: could not write to {addr} during its TLS handshake: {e}"
                    ));
                    return;
                }
                to_peer += held.len() as u64;
            }
        }
    };
    // The handshake is over: the pending place is given up for an association's.
    drop(pending);
    let _place = match shared.places.association(addr.ip()) {
        Ok(place) => place,
        Err(Full(why)) => {
            shared.incident(
                addr.ip(),
                Incident::AssociationLimit,
                &object,
                format!("refused: {why}: the TLS connection was closed after its handshake, before a byte of application data was relayed (a TLS peer is not answered in plain DICOM)"),
            );
            return;
        }
    };
    shared.event(
        Outcome::Success,
        &object,
        format!(
            "accepted: TLS from {addr} passed through unopened to upstream {upstream} (handshake of {to_up} + {to_peer} bytes relayed); {NOT_INSPECTED}: no AE title, user identity, presentation context or content screening"
        ),
    );
    // Still the request's time: an upstream that completed the handshake and then reads
    // nothing must not hold the association's place with no timer running.
    if let Err(e) = written(
        tokio::time::timeout_at(deadline, up.write_all(&a[..carried])).await,
        limits.request_setting,
    ) {
        shared.event(
            Outcome::Failure,
            &object,
            format!("could not write to upstream {upstream}: {e}; closed ({NOT_INSPECTED})"),
        );
        return;
    }
    to_up += carried as u64;
    let activity = AtomicU64::new(0);
    // Written to each side once the session is established.
    let (peer_bytes, up_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut p = Watched {
        inner: &mut peer,
        written: &peer_bytes,
        activity: &activity,
        started,
        records: Some(&mut records),
    };
    let mut u = Watched {
        inner: &mut up,
        written: &up_bytes,
        activity: &activity,
        started,
        records: None,
    };
    let (lifetime, lifetime_setting) = limits.pass_through_lifetime();
    let end = tokio::select! {
        r = tokio::io::copy_bidirectional(&mut p, &mut u) => match r {
            Ok(_) => End::Closed,
            Err(e) if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) => End::Reset(e.to_string()),
            Err(e) => End::Failed(e.to_string()),
        },
        why = async {
            stopping
                .wait_for(|s| *s != Stopping::No)
                .await
                .map_or(Stopping::GracePassed, |w| *w)
        } => End::Stopped(why),
        () = idle(&activity, started, limits.idle) => End::Idle,
        // Inside TLS no message nor pace can be seen: the lifetime is what bounds a
        // peer that keeps the idle timer (a byte every few minutes) from holding its
        // place for ever (review r29-gateway).
        () = tokio::time::sleep(lifetime.saturating_sub(started.elapsed())) => End::Lifetime,
    };
    // `p` and `u` borrow the streams only until here (their last use above).
    let (outcome, how) = match end {
        End::Closed => (Outcome::Success, "closed by both sides".to_owned()),
        End::Reset(e) => (
            Outcome::Success,
            format!(
                "closed by a reset of one side ({e}; inside TLS a release cannot be told from an abort)"
            ),
        ),
        End::Failed(e) => (Outcome::Failure, format!("aborted: {e}")),
        End::Idle => (
            Outcome::Failure,
            format!(
                "closed: no byte in either direction for {} s (limits.idle_seconds)",
                limits.idle.as_secs()
            ),
        ),
        End::Lifetime => (
            Outcome::Failure,
            format!(
                "closed: the connection lived {:.1} s ({lifetime_setting}, {} s): no association may hold its place longer",
                started.elapsed().as_secs_f64(),
                lifetime.as_secs()
            ),
        ),
        End::Stopped(Stopping::EvidenceLost) => (
            Outcome::Failure,
            "closed: the gateway's evidence can no longer be kept".to_owned(),
        ),
        End::Stopped(Stopping::Hurried) => (
            Outcome::Failure,
            format!("closed: {}", super::stopped_in_flight(Stopping::Hurried)),
        ),
        End::Stopped(_) => (
            Outcome::Failure,
            format!(
                "closed: the gateway stopped and the connection was still open after {} s",
                super::STOP_GRACE.as_secs()
            ),
        ),
    };
    // Closed on both sides now (a TLS peer learns it from the connection's end).
    drop(peer);
    drop(up);
    // Relayed: written to the other side, never merely read (a chunk refused as not
    // TLS, or read when that side reset, went nowhere).
    let peer_relayed = to_up + up_bytes.load(Ordering::Relaxed);
    let upstream_relayed = to_peer + peer_bytes.load(Ordering::Relaxed);
    shared.event(
        outcome,
        &object,
        format!(
            "ended: TLS passed through from {addr} to upstream {upstream} {how} after {:.1} s; {peer_relayed} bytes from the peer and {upstream_relayed} from the upstream relayed unopened; {NOT_INSPECTED}",
            started.elapsed().as_secs_f64()
        ),
    );
}

/// A write held to the request's deadline, set by `setting` (`limits.request_seconds`,
/// or `limits.artim_seconds` when shorter): its error, or that it timed out.
fn written(
    r: Result<std::io::Result<()>, tokio::time::error::Elapsed>,
    setting: &str,
) -> Result<(), std::io::Error> {
    r.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("not read within {setting}"),
        )
    })?
}

/// Completes once neither side has sent a byte for `limit`.
async fn idle(activity: &AtomicU64, started: Instant, limit: std::time::Duration) {
    loop {
        let last = std::time::Duration::from_millis(activity.load(Ordering::Relaxed));
        let quiet = started.elapsed().saturating_sub(last);
        if quiet >= limit {
            return;
        }
        tokio::time::sleep(limit - quiet).await;
    }
}

/// One side of an established pass-through: the bytes written to it counted, the time
/// of the last one read from it kept, and (the peer's side) what it sends held to TLS
/// record framing.
struct Watched<'a> {
    inner: &'a mut TcpStream,
    /// Bytes handed whole to its socket.
    written: &'a AtomicU64,
    activity: &'a AtomicU64,
    started: Instant,
    records: Option<&'a mut Records>,
}

impl AsyncRead for Watched<'_> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut *this.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            this.activity.store(
                u64::try_from(this.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if let Some(records) = this.records.as_deref_mut()
                && let Err(e) = records.feed(new)
            {
                // Not written on: the copy ends with this error.
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the peer sent what is not TLS ({e}), not relayed"),
                )));
            }
        }
        polled
    }
}

impl AsyncWrite for Watched<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            this.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}
