//! Every request line of a connection, judged before hyper reads it: one longer than
//! [`MAX_REQUEST_LINE_BYTES`] is answered 414 URI Too Long here. Hyper bounds the whole
//! head by [`MAX_REQUEST_HEAD_BYTES`] and answers 431 (headers too large) past it
//! without telling a long request line from long headers, so a target of more than
//! 64 KiB was answered 431 (review r26-console), and on a kept-alive connection still
//! was after the first request (review r27-console: only the first line was read
//! here). A shorter over-long target is answered 414 by the router ([`crate::http`]'s
//! `bounded_target`).
//!
//! [`Judged`] follows the connection's HTTP/1.1 framing as the bytes pass to hyper
//! ([`Framing`]: request line, headers, a body by its `Content-Length` or its chunks),
//! so it knows where each request line begins. Once one runs past the limit, hyper is
//! given no more (it sees the client stop, and answers nothing to a head cut short),
//! the stream is parked, and [`answer_too_long`] writes the 414, with the headers of
//! every other answer, once hyper has finished with the connection.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use crate::server::{MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_TARGET_BYTES};

/// What a request line holds besides its target: the method (`OPTIONS`, the longest the
/// console serves, is 7 bytes), two spaces, `HTTP/1.1` and CRLF, with room to spare.
pub const REQUEST_LINE_OVERHEAD_BYTES: usize = 32;

/// The longest request line passed on to hyper; a longer one is answered 414.
pub const MAX_REQUEST_LINE_BYTES: usize = MAX_REQUEST_TARGET_BYTES + REQUEST_LINE_OVERHEAD_BYTES;

/// The longest chunk-size line of a chunked body followed (hex digits and extensions):
/// above hyper's own bound on a body's chunk extensions (16 KiB), so a line past it is
/// one hyper has refused already, and the framing is no longer followed.
const MAX_CHUNK_LINE_BYTES: usize = MAX_REQUEST_HEAD_BYTES;

// The request line must be refused before the head's limit can refuse it as headers.
const _: () = assert!(MAX_REQUEST_LINE_BYTES < MAX_REQUEST_HEAD_BYTES);

const TOO_LONG_TITLE: &str = "Address too long";
const TOO_LONG_TEXT: &str = "The address of this request is too long for the console: nothing was done. Open the console from its own pages or the link you were given.";

/// The answer to a target over [`MAX_REQUEST_TARGET_BYTES`], the router's and the one
/// written here alike.
pub(crate) fn too_long_page() -> Response {
    crate::http::status_page(StatusCode::URI_TOO_LONG, TOO_LONG_TITLE, TOO_LONG_TEXT)
}

/// Where a connection's bytes stand in the framing of its requests (RFC 9112).
#[derive(Debug)]
enum Framing {
    /// In a request line (or the empty lines before it, which servers skip, RFC 9112
    /// section 2.2, and which count towards the limit): `bytes` of it read so far,
    /// `begun` once one is not CR or LF.
    RequestLine { bytes: usize, begun: bool },
    /// In the header section: the line being read, the section's bytes so far, and
    /// what the lines read said of the body.
    Headers {
        line: Vec<u8>,
        bytes: usize,
        body: BodyFraming,
    },
    /// In a body of `left` more bytes.
    Body { left: u64 },
    /// In a chunk-size line of a chunked body.
    ChunkSize { line: Vec<u8> },
    /// In a chunk's data, `left` more bytes.
    ChunkData { left: u64 },
    /// In the line break after a chunk's data.
    ChunkEnd,
    /// In the trailer section after the last chunk: `bytes` of its current line.
    Trailers { bytes: usize },
    /// Framing this does not follow (a head past hyper's limit, a length hyper
    /// refuses): nothing more is judged; hyper refuses the request and closes.
    Unfollowed,
}

/// What a request's headers said of its body.
#[derive(Debug, Default)]
struct BodyFraming {
    length: Option<u64>,
    chunked: bool,
}

impl Framing {
    fn new() -> Framing {
        Framing::RequestLine {
            bytes: 0,
            begun: false,
        }
    }

    /// Follows `bytes`, the next read from the client; the offset within them at which
    /// a request line passed [`MAX_REQUEST_LINE_BYTES`], if one did.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at < bytes.len() {
            match self {
                Framing::Body { left } | Framing::ChunkData { left } => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len() - at);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        let chunked = matches!(self, Framing::ChunkData { .. });
                        *self = if chunked {
                            Framing::ChunkEnd
                        } else {
                            Framing::new()
                        };
                    }
                }
                Framing::Unfollowed => return None,
                _ => {
                    if self.step(bytes[at]) {
                        return Some(at);
                    }
                    at += 1;
                }
            }
        }
        None
    }

    /// Follows one byte outside a body's data; whether it took a request line past
    /// [`MAX_REQUEST_LINE_BYTES`].
    fn step(&mut self, byte: u8) -> bool {
        match self {
            Framing::RequestLine { bytes, begun } => {
                if byte == b'\n' && *begun {
                    *self = Framing::Headers {
                        line: Vec::new(),
                        bytes: 0,
                        body: BodyFraming::default(),
                    };
                    return false;
                }
                *bytes += 1;
                *begun |= !matches!(byte, b'\r' | b'\n');
                return *bytes > MAX_REQUEST_LINE_BYTES;
            }
            Framing::Headers { line, bytes, body } => {
                *bytes += 1;
                if *bytes > MAX_REQUEST_HEAD_BYTES {
                    *self = Framing::Unfollowed;
                } else if byte != b'\n' {
                    line.push(byte);
                } else if line
                    .strip_suffix(b"\r")
                    .unwrap_or(line.as_slice())
                    .is_empty()
                {
                    *self = match std::mem::take(body) {
                        BodyFraming { chunked: true, .. } => {
                            Framing::ChunkSize { line: Vec::new() }
                        }
                        BodyFraming {
                            length: Some(left @ 1..),
                            ..
                        } => Framing::Body { left },
                        _ => Framing::new(),
                    };
                } else {
                    let followed = body.read_header(line);
                    line.clear();
                    if !followed {
                        *self = Framing::Unfollowed;
                    }
                }
            }
            Framing::ChunkSize { line } => {
                if byte != b'\n' {
                    line.push(byte);
                    if line.len() > MAX_CHUNK_LINE_BYTES {
                        *self = Framing::Unfollowed;
                    }
                    return false;
                }
                *self = match chunk_size(line) {
                    Some(0) => Framing::Trailers { bytes: 0 },
                    Some(left) => Framing::ChunkData { left },
                    None => Framing::Unfollowed,
                };
            }
            Framing::ChunkEnd => {
                if byte == b'\n' {
                    *self = Framing::ChunkSize { line: Vec::new() };
                }
            }
            Framing::Trailers { bytes } => match byte {
                b'\n' if *bytes == 0 => *self = Framing::new(),
                b'\n' => *bytes = 0,
                b'\r' => {}
                _ => {
                    *bytes += 1;
                    if *bytes > MAX_REQUEST_HEAD_BYTES {
                        *self = Framing::Unfollowed;
                    }
                }
            },
            Framing::Body { .. } | Framing::ChunkData { .. } | Framing::Unfollowed => {}
        }
        false
    }
}

impl BodyFraming {
    /// Notes what the header `line` says of the body; `false` for a length this does
    /// not follow (not a number, two that differ, a coding other than chunked last),
    /// which hyper refuses (400) as well.
    fn read_header(&mut self, line: &[u8]) -> bool {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return true;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(length) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            else {
                return false;
            };
            if self.length.is_some_and(|l| l != length) {
                return false;
            }
            self.length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(value);
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return false;
            }
            self.chunked = true;
        }
        true
    }
}

/// The size a chunk-size line gives (hex digits, then extensions after `;`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(line)
        .trim_ascii();
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// A connection's stream as hyper reads it, every request line judged on the way
/// ([`Framing`]). Once one is too long, reads end and, when hyper lets go of it, the
/// stream is parked for [`Judged::too_long`]'s holder to answer 414 on.
pub(crate) struct Judged<S> {
    stream: Option<S>,
    framing: Framing,
    refused: bool,
    parked: Arc<Mutex<Option<S>>>,
}

/// Where a [`Judged`] stream is parked once its request line was too long.
pub(crate) type Parked<S> = Arc<Mutex<Option<S>>>;

impl<S> Judged<S> {
    /// `stream` judged; the slot its stream is parked in if a request line is too long.
    pub(crate) fn new(stream: S) -> (Judged<S>, Parked<S>) {
        let parked = Arc::new(Mutex::new(None));
        let judged = Judged {
            stream: Some(stream),
            framing: Framing::new(),
            refused: false,
            parked: parked.clone(),
        };
        (judged, parked)
    }

    fn stream(&mut self) -> io::Result<&mut S> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::other("the connection was parked"))
    }
}

impl<S> Drop for Judged<S> {
    fn drop(&mut self) {
        if self.refused
            && let Some(stream) = self.stream.take()
            && let Ok(mut slot) = self.parked.lock()
        {
            *slot = Some(stream);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Judged<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused {
            // As if the client stopped sending: hyper ends the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let stream = this.stream()?;
        std::task::ready!(Pin::new(stream).poll_read(cx, buf))?;
        if let Some(at) = this.framing.feed(&buf.filled()[before..]) {
            // Hyper keeps what it had of the line (a head cut short, answered
            // nothing) and gets none of the rest.
            buf.set_filled(before + at);
            this.refused = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Judged<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().stream()?).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused {
            // Left open for the 414, written once hyper lets go.
            return Pin::new(this.stream()?).poll_flush(cx);
        }
        Pin::new(this.stream()?).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().stream()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(S::is_write_vectored)
    }
}

/// The 414 written on a stream hyper let go of: the router's page for a long target,
/// with the headers of every answer ([`crate::http::add_security_headers`]), then the
/// connection closed.
async fn too_long_bytes() -> Vec<u8> {
    let (parts, body) = too_long_page().into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_HEAD_BYTES)
        .await
        .unwrap_or_default();
    let mut headers = parts.headers;
    crate::http::add_security_headers(&mut headers);
    let mut head = String::from("HTTP/1.1 414 URI Too Long\r\n");
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// Writes the 414 answer on `stream` and closes it.
pub(crate) async fn answer_too_long<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> io::Result<()> {
    stream.write_all(&too_long_bytes().await).await?;
    stream.shutdown().await?;
    // What the client still sends is read and dropped, a bounded amount for a bounded
    // time: closed with it unread, the connection is reset and the client may lose the
    // answer before reading it.
    let mut drained = 0;
    let mut chunk = [0u8; 4096];
    let drain = async {
        while drained < MAX_REQUEST_HEAD_BYTES {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    Ok(())
}

/// How long the rest of a refused request is read and dropped before the connection
/// closes.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    fn line_at_limit() -> String {
        format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(MAX_REQUEST_TARGET_BYTES - 1)
        )
    }

    /// A line that fits is passed on byte for byte; one past the limit is cut where it
    /// passed it, and nothing after.
    #[tokio::test]
    async fn a_line_within_the_limit_is_passed_on_and_one_past_it_is_cut() {
        let fitting = line_at_limit();
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(fitting.as_bytes()).await.expect("sent");
        drop(client);
        let (mut judged, parked) = Judged::new(server);
        let mut back = Vec::new();
        judged.read_to_end(&mut back).await.expect("passed on");
        assert_eq!(back, fitting.as_bytes());
        drop(judged);
        assert!(parked.lock().expect("slot").is_none());

        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(long.as_bytes()).await.expect("sent");
        let (mut judged, parked) = Judged::new(server);
        let mut back = Vec::new();
        judged.read_to_end(&mut back).await.expect("cut");
        assert_eq!(back.len(), MAX_REQUEST_LINE_BYTES);
        drop(judged);
        let mut stream = parked.lock().expect("slot").take().expect("parked");
        answer_too_long(&mut stream).await.expect("answered");
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.expect("answer");
        assert!(answer.starts_with("HTTP/1.1 414 "), "{answer}");
        for needed in [
            "strict-transport-security:",
            "content-security-policy:",
            "x-content-type-options: nosniff",
            "connection: close",
        ] {
            assert!(answer.contains(needed), "{needed}: {answer}");
        }
    }

    /// Review r27-console: only a connection's first request line was judged; each is
    /// now, after a body by its length, after a chunked body, and after empty lines.
    #[test]
    fn every_request_line_of_a_connection_is_judged() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE_BYTES));
        let body = "x".repeat(MAX_REQUEST_LINE_BYTES * 2);
        // Each request before the long line, and the empty lines (counted towards the
        // limit) it leaves before it.
        let before = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_string(), 0),
            (
                format!(
                    "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
                0,
            ),
            (
                format!(
                    "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x};e=1\r\n{body}\r\n0\r\nT: 1\r\n\r\n",
                    body.len()
                ),
                0,
            ),
            ("GET / HTTP/1.1\r\n\r\n\r\n\r\n".to_string(), 4),
        ];
        for (first, empty) in before {
            let cut_at = first.len() - empty + MAX_REQUEST_LINE_BYTES;
            // Whole, and a byte at a time: the same verdict.
            let stream = format!("{first}{long}");
            let mut framing = Framing::new();
            assert_eq!(
                framing.feed(stream.as_bytes()),
                Some(cut_at),
                "{}",
                &first[..first.len().min(80)]
            );
            let mut framing = Framing::new();
            let cut = stream
                .as_bytes()
                .iter()
                .position(|b| framing.feed(std::slice::from_ref(b)).is_some());
            assert_eq!(cut, Some(cut_at));
            // The same requests with a line at the limit: nothing cut.
            let mut framing = Framing::new();
            let fine = format!("{first}{}", line_at_limit());
            assert_eq!(framing.feed(fine.as_bytes()), None);
            if empty == 0 {
                assert!(matches!(framing, Framing::RequestLine { bytes: 0, .. }));
            }
        }
    }

    /// Empty lines in front of an over-long request line do not take it past the check
    /// (review r26-console: one CRLF first, and hyper's 431 answered again), and a flood
    /// of them is bounded too; a body's long line is no request line.
    #[test]
    fn empty_lines_count_and_a_body_is_no_request_line() {
        let long = format!(
            "\r\nGET /{} HTTP/1.1\r\n",
            "a".repeat(MAX_REQUEST_TARGET_BYTES + 64)
        );
        assert!(Framing::new().feed(long.as_bytes()).is_some());
        assert_eq!(Framing::new().feed(b"\r\n\r\nGET / HTTP/1.1\r\n"), None);
        assert!(
            Framing::new()
                .feed("\r\n".repeat(MAX_REQUEST_LINE_BYTES).as_bytes())
                .is_some()
        );
        let body = "x".repeat(MAX_REQUEST_HEAD_BYTES * 2);
        let post = format!(
            "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut framing = Framing::new();
        assert_eq!(framing.feed(post.as_bytes()), None);
        // A length hyper refuses: no longer followed, nothing judged.
        let mut framing = Framing::new();
        let bad = format!("POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n{body}");
        assert_eq!(framing.feed(bad.as_bytes()), None);
        assert!(matches!(framing, Framing::Unfollowed));
    }
}
