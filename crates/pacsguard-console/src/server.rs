//! The HTTPS server: accepts TCP connections, completes the TLS handshake (rustls) with
//! a deadline, serves HTTP/1.1 with the console's router, and stops gracefully when
//! asked: no new connection is accepted, open requests finish within
//! [`SHUTDOWN_GRACE`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::http::Peer;
use crate::request_line::{GiveUp, Judged, answer_refused};

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections served at once for one client address: a single peer that opens
/// connections and never completes them (each held up to [`HANDSHAKE_TIMEOUT`]) would
/// otherwise take every one of [`MAX_CONNECTIONS`] and lock everyone out. A browser
/// opens about six per site; a connection past this is closed at once.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
/// A client has this long to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// And this long to send each request's head (hyper's header read timeout; every
/// request line is judged on its way to hyper, [`crate::request_line`]).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) read, hyper's read buffer: a
/// browser's is a few KiB (hyper's default bound was its ~400 KiB read buffer). Past it
/// (or past hyper's 100 headers) the request is answered 431 and its connection closed,
/// and the refusal said on the log.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// The longest request target (path and query) served. RFC 9112 section 3 asks a
/// server to take at least 8000 octets; the console's own links are well under 1 KiB.
/// Past it the request is answered 414 URI Too Long, whether its head fits
/// [`MAX_REQUEST_HEAD_BYTES`] or not, and the refusal said on the log.
pub const MAX_REQUEST_TARGET_BYTES: usize = 8 * 1024;
/// Open requests get this long to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the stop flag is looked at.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Worker threads of the runtime: the host also runs the guard; two are plenty for a
/// console used by a few people.
const WORKER_THREADS: usize = 2;

/// Connections closed for [`MAX_CONNECTIONS_PER_ADDRESS`], written rate-limited.
static OVER_SHARE: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");
/// Requests refused before they reached the console (a head past
/// [`MAX_REQUEST_HEAD_BYTES`], one that is not HTTP/1.1, headers not sent within
/// [`HEADER_TIMEOUT`]), written rate-limited with the client's address (review
/// r24-console: such a connection was closed and nothing said).
static UNREAD: crate::refusals::RefusalLog = crate::refusals::RefusalLog::new("pacsguard serve");
/// Connections ended because their framing hyper refuses (a body's length that cannot
/// be told, a malformed chunked body: `request_line::GiveUp`), written rate-limited
/// apart from [`UNREAD`], so a smuggling attempt is said even in a minute of long lines.
static FRAMING_REFUSED: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");
/// Times every one of [`MAX_CONNECTIONS`] was held, written rate-limited.
static SLOTS_FULL: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("starting the console's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the console's listening socket: {0}")]
    Listener(std::io::Error),
}

/// Serves `router` over TLS on `listener` until `stop` is set.
pub fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    stop: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("console")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(accept_loop(listener, tls, router, stop))?;
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    Ok(())
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    stop: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    listener
        .set_nonblocking(true)
        .map_err(ServeError::Listener)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Listener)?;
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let mut poll = tokio::time::interval(STOP_POLL);
    let mut full_said = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Every slot held (peers on many addresses, each within its share, that never
        // finish their handshake): later connections wait in the backlog, people's
        // pages with them. Said on the log, never silent (review r23).
        // Once each time they fill up (the loop comes here every STOP_POLL while full).
        let full = slots.available_permits() == 0;
        if full && !full_said {
            let holders = per_address.lock().map_or(0, |m| m.len());
            SLOTS_FULL.refused(&format!(
                "new connections for now: every one of MAX_CONNECTIONS ({MAX_CONNECTIONS}) is held by {holders} client address(es); the next waits in the backlog until one ends (at most HANDSHAKE_TIMEOUT, {} s, for a client that never completes TLS)",
                HANDSHAKE_TIMEOUT.as_secs()
            ));
        }
        full_said = full;
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = poll.tick() => continue,
        };
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // A connection that failed before we took it (reset, fd limit): the
                // next one is served.
                Err(e) => {
                    eprintln!("pacsguard serve: accepting a connection: {e}");
                    tokio::time::sleep(STOP_POLL).await;
                    continue;
                }
            },
            _ = poll.tick() => continue,
        };
        let Some(share) = AddressShare::take(&per_address, addr.ip()) else {
            // Over its share: closed now (dropping it), its slot free for others.
            drop(tcp);
            OVER_SHARE.refused(&format!(
                "a connection from {} (it holds MAX_CONNECTIONS_PER_ADDRESS, {MAX_CONNECTIONS_PER_ADDRESS}, already)",
                addr.ip()
            ));
            continue;
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone().layer(axum::Extension(Peer(addr))));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _share = share;
            serve_one(acceptor, tcp, addr, service, watcher).await;
        });
    }
    drop(listener);
    // Open connections finish their request (or are cut after the grace).
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
    Ok(())
}

/// One connection counted against its address's share
/// ([`MAX_CONNECTIONS_PER_ADDRESS`]); given back when dropped.
struct AddressShare {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl AddressShare {
    /// A share for `address`, or `None` when it holds its limit already.
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, address: IpAddr) -> Option<Self> {
        let mut map = counts.lock().ok()?;
        let count = map.entry(address).or_insert(0);
        if *count >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(AddressShare {
            counts: counts.clone(),
            address,
        })
    }
}

impl Drop for AddressShare {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.lock()
            && let Some(count) = map.get_mut(&self.address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.address);
            }
        }
    }
}

async fn serve_one<S>(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        // A failed handshake (a client that distrusts the certificate, a scanner) is
        // the client's business; nothing to serve.
        Ok(Err(_)) | Err(_) => return,
    };
    // Every request line judged on its way to hyper; one too long, or framing not
    // followed, parks the stream for the answer written below, once hyper lets go.
    let (stream, parked) = Judged::new(stream);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        // The head's own bound, checked on a partial head and a whole one (the read
        // buffer's, `max_buf_size`, is none: a head read whole in one go is parsed past
        // it; a 100 KB one was answered 200).
        .max_header_size(MAX_REQUEST_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection).await
        && let Some(why) = unread_request(&e)
    {
        UNREAD.refused(&format!("a request from {}: {why}", peer.ip()));
    }
    let parked = parked.lock().ok().and_then(|mut slot| slot.take());
    if let Some((mut stream, why)) = parked {
        let log = match why {
            GiveUp::LineTooLong | GiveUp::HeadTooLarge => &UNREAD,
            GiveUp::BadFraming | GiveUp::BadChunk => &FRAMING_REFUSED,
        };
        if let Some(said) = why.why() {
            log.refused(&format!("a request from {}: {said}", peer.ip()));
        }
        let _ = answer_refused(&mut stream, why).await;
    }
}

/// Why a connection's request never reached the console, when hyper refused it (a
/// client that merely went away is no refusal: `None`).
fn unread_request(error: &hyper::Error) -> Option<String> {
    if error.is_parse_too_large() {
        Some(format!(
            "its head is larger than MAX_REQUEST_HEAD_BYTES ({MAX_REQUEST_HEAD_BYTES} bytes) or has more than 100 headers; answered 431 and closed"
        ))
    } else if error.is_parse() {
        Some(format!(
            "it is not valid HTTP/1.1 ({error}); answered 400 and closed"
        ))
    } else if error.is_timeout() {
        Some(format!(
            "its headers did not arrive within HEADER_TIMEOUT ({} s); closed",
            HEADER_TIMEOUT.as_secs()
        ))
    } else {
        None
    }
}
