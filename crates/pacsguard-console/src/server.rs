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

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections served at once for one client address: a single peer that opens
/// connections and never completes them (each held up to [`HANDSHAKE_TIMEOUT`]) would
/// otherwise take every one of [`MAX_CONNECTIONS`] and lock everyone out. A browser
/// opens about six per site; a connection past this is closed at once.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
/// A client has this long to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// And this long to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
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
            serve_one(acceptor, tcp, service, watcher).await;
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
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let _ = watcher.watch(connection).await;
}
