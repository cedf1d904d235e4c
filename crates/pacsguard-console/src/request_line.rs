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
//! ([`Framing`]: request line, headers, a body by its `Content-Length` or its chunks,
//! by hyper's own rules), so it knows where each request line begins. Once one runs past
//! the limit, hyper is given no more (it sees the client stop, and answers nothing to a
//! head cut short), the stream is parked, and [`answer_refused`] writes the 414, with the
//! headers of every other answer, once hyper has finished with the connection.
//!
//! Framing it cannot follow (a head past [`MAX_REQUEST_HEAD_BYTES`], a length or coding
//! hyper refuses, a chunk line or trailer past hyper's bounds) ends the connection the
//! same way ([`GiveUp`]): hyper gets nothing from there, the refusal is answered (431,
//! 400) or, inside a body hyper answers itself, the connection only closed, and the
//! server says it on its log. Review r28-console: it used to stop judging and pass the
//! rest on, so after a request hyper took and it did not (two `Transfer-Encoding`
//! headers, `gzip` then `chunked`) a later over-long line was hyper's 431, unjudged and
//! unsaid. A simpler design (hyper's limits alone) answers 431 to a line past the head's
//! limit: only following the framing finds each request line before hyper reads it.

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

/// The bytes of chunk extensions (after a chunk size's `;`) one chunked body may carry,
/// hyper's own bound (its `CHUNKED_EXTENSIONS_LIMIT`): hyper refuses the body at it,
/// and the connection is given up here at the same byte.
pub const MAX_CHUNK_EXTENSION_BYTES: usize = 16 * 1024;

/// The bytes of a chunk size's hex digits (with leading zeros and spaces) followed: a
/// `u64` has 16 hex digits; hyper refuses a size that overflows it.
const MAX_CHUNK_SIZE_BYTES: usize = 64;

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
    /// In a chunk-size line of a chunked body: its size's text so far, whether its
    /// extensions (after `;`) began, and the extension bytes of the body so far.
    ChunkSize {
        size: Vec<u8>,
        in_extension: bool,
        extension_bytes: usize,
    },
    /// In a chunk's data, `left` more bytes.
    ChunkData { left: u64, extension_bytes: usize },
    /// In the line break after a chunk's data.
    ChunkEnd { extension_bytes: usize },
    /// In the trailer section after the last chunk: `bytes` of it so far, `line` of its
    /// current line.
    Trailers { bytes: usize, line: usize },
    /// Given up ([`GiveUp`]): nothing more is passed on.
    GivenUp,
}

/// Why a connection's framing was given up, at a byte from which hyper gets nothing:
/// each ends the connection, with the answer [`GiveUp::answer`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GiveUp {
    /// A request line past [`MAX_REQUEST_LINE_BYTES`]: 414.
    LineTooLong,
    /// A header section past [`MAX_REQUEST_HEAD_BYTES`]: hyper, whose bound counts the
    /// request line too, has refused the head already (431, said on the log by the
    /// server); only the connection is closed. Bounds the header line kept here.
    HeadTooLarge,
    /// A head whose body framing hyper refuses (a `Content-Length` that is not digits,
    /// two that differ, a last `Transfer-Encoding` not ending in `chunked`): 400, as
    /// hyper answers.
    BadFraming,
    /// Inside a chunked body: a chunk size that is not hex or overflows, extensions past
    /// [`MAX_CHUNK_EXTENSION_BYTES`], trailers past [`MAX_REQUEST_HEAD_BYTES`]. Hyper has
    /// the request's head and answers it itself (its body cut short); the connection is
    /// only closed.
    BadChunk,
}

impl GiveUp {
    /// The answer written once hyper let go, if any.
    pub(crate) fn answer(self) -> Option<Response> {
        match self {
            GiveUp::LineTooLong => Some(too_long_page()),
            GiveUp::BadFraming => Some(crate::http::status_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The length of this request's body cannot be told: nothing was done.",
            )),
            GiveUp::HeadTooLarge | GiveUp::BadChunk => None,
        }
    }

    /// Why, for the server's log; `None` where hyper's own refusal says it.
    pub(crate) fn why(self) -> Option<String> {
        Some(match self {
            GiveUp::LineTooLong => format!(
                "its request line is longer than MAX_REQUEST_TARGET_BYTES ({MAX_REQUEST_TARGET_BYTES} bytes) allows; answered 414 and closed"
            ),
            GiveUp::HeadTooLarge => return None,
            GiveUp::BadFraming => "its body's length cannot be told (a Content-Length that is not digits or two that differ, or a Transfer-Encoding whose last coding is not chunked); answered 400 and closed".to_string(),
            GiveUp::BadChunk => format!(
                "its chunked body is malformed (a chunk size that is not hex or overflows, chunk extensions past MAX_CHUNK_EXTENSION_BYTES ({MAX_CHUNK_EXTENSION_BYTES}), or trailers past MAX_REQUEST_HEAD_BYTES); the request refused and the connection closed"
            ),
        })
    }
}

/// What a request's headers said of its body, by hyper's rules (`role.rs`): each
/// `Transfer-Encoding` header says whether its last coding is `chunked`, the last one
/// counts, and one drops any `Content-Length` before it and makes hyper ignore those
/// after it; `Content-Length` values are digits only, and two that differ are refused.
#[derive(Debug, Default)]
struct BodyFraming {
    length: Option<u64>,
    /// `Some(last coding is chunked)` once a `Transfer-Encoding` header was read.
    chunked: Option<bool>,
}

impl Framing {
    fn new() -> Framing {
        Framing::RequestLine {
            bytes: 0,
            begun: false,
        }
    }

    /// Follows `bytes`, the next read from the client; the offset within them at which
    /// the framing was given up, and why, if it was.
    fn feed(&mut self, bytes: &[u8]) -> Option<(usize, GiveUp)> {
        let mut at = 0;
        while at < bytes.len() {
            match self {
                Framing::Body { left } | Framing::ChunkData { left, .. } => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len() - at);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        *self = match self {
                            Framing::ChunkData {
                                extension_bytes, ..
                            } => Framing::ChunkEnd {
                                extension_bytes: *extension_bytes,
                            },
                            _ => Framing::new(),
                        };
                    }
                }
                Framing::GivenUp => return None,
                _ => {
                    if let Some(why) = self.step(bytes[at]) {
                        *self = Framing::GivenUp;
                        return Some((at, why));
                    }
                    at += 1;
                }
            }
        }
        None
    }

    /// Follows one byte outside a body's data; why the framing is given up at it, if it
    /// is.
    fn step(&mut self, byte: u8) -> Option<GiveUp> {
        match self {
            Framing::RequestLine { bytes, begun } => {
                if byte == b'\n' && *begun {
                    *self = Framing::Headers {
                        line: Vec::new(),
                        bytes: 0,
                        body: BodyFraming::default(),
                    };
                    return None;
                }
                *bytes += 1;
                *begun |= !matches!(byte, b'\r' | b'\n');
                (*bytes > MAX_REQUEST_LINE_BYTES).then_some(GiveUp::LineTooLong)
            }
            Framing::Headers { line, bytes, body } => {
                *bytes += 1;
                if *bytes > MAX_REQUEST_HEAD_BYTES {
                    return Some(GiveUp::HeadTooLarge);
                }
                if byte != b'\n' {
                    line.push(byte);
                    return None;
                }
                if line
                    .strip_suffix(b"\r")
                    .unwrap_or(line.as_slice())
                    .is_empty()
                {
                    *self = match body.after_head() {
                        Some(BodyAfterHead::Chunked) => Framing::chunk_size(0),
                        Some(BodyAfterHead::Length(left)) => Framing::Body { left },
                        Some(BodyAfterHead::None) => Framing::new(),
                        None => return Some(GiveUp::BadFraming),
                    };
                    return None;
                }
                let followed = body.read_header(line);
                line.clear();
                (!followed).then_some(GiveUp::BadFraming)
            }
            Framing::ChunkSize {
                size,
                in_extension,
                extension_bytes,
            } => {
                if byte == b'\n' {
                    let extension_bytes = *extension_bytes;
                    *self = match chunk_size(size).ok_or(GiveUp::BadChunk) {
                        Ok(0) => Framing::Trailers { bytes: 0, line: 0 },
                        Ok(left) => Framing::ChunkData {
                            left,
                            extension_bytes,
                        },
                        Err(why) => return Some(why),
                    };
                } else if *in_extension || byte == b';' {
                    *in_extension = true;
                    *extension_bytes += 1;
                    if *extension_bytes >= MAX_CHUNK_EXTENSION_BYTES {
                        return Some(GiveUp::BadChunk);
                    }
                } else {
                    size.push(byte);
                    if size.len() > MAX_CHUNK_SIZE_BYTES {
                        return Some(GiveUp::BadChunk);
                    }
                }
                None
            }
            Framing::ChunkEnd { extension_bytes } => {
                if byte == b'\n' {
                    *self = Framing::chunk_size(*extension_bytes);
                }
                None
            }
            Framing::Trailers { bytes, line } => {
                match byte {
                    b'\n' if *line == 0 => *self = Framing::new(),
                    b'\n' => *line = 0,
                    b'\r' => {}
                    _ => {
                        *line += 1;
                        *bytes += 1;
                        if *bytes > MAX_REQUEST_HEAD_BYTES {
                            return Some(GiveUp::BadChunk);
                        }
                    }
                }
                None
            }
            Framing::Body { .. } | Framing::ChunkData { .. } | Framing::GivenUp => None,
        }
    }

    /// The next chunk-size line of a body whose extensions held `extension_bytes` so far.
    fn chunk_size(extension_bytes: usize) -> Framing {
        Framing::ChunkSize {
            size: Vec::new(),
            in_extension: false,
            extension_bytes,
        }
    }
}

/// What follows a request's head.
enum BodyAfterHead {
    None,
    Length(u64),
    Chunked,
}

impl BodyFraming {
    /// Notes what the header `line` says of the body; `false` for what hyper refuses: a
    /// `Content-Length` not of digits, or another than one before it.
    fn read_header(&mut self, line: &[u8]) -> bool {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return true;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(value);
            self.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            self.length = None;
        } else if name.eq_ignore_ascii_case(b"content-length") && self.chunked.is_none() {
            let Some(length) = digits(value) else {
                return false;
            };
            if self.length.is_some_and(|l| l != length) {
                return false;
            }
            self.length = Some(length);
        }
        true
    }

    /// The body the head announced once it ended; `None` for one hyper refuses (a last
    /// `Transfer-Encoding` whose last coding is not `chunked`).
    fn after_head(&mut self) -> Option<BodyAfterHead> {
        Some(match (self.chunked, self.length) {
            (Some(true), _) => BodyAfterHead::Chunked,
            (Some(false), _) => return None,
            (None, Some(left @ 1..)) => BodyAfterHead::Length(left),
            (None, _) => BodyAfterHead::None,
        })
    }
}

/// A `Content-Length` as hyper reads one: ASCII digits only (no sign), within a `u64`.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The size a chunk-size line gives (hex digits before any extension).
fn chunk_size(size: &[u8]) -> Option<u64> {
    let digits = size.strip_suffix(b"\r").unwrap_or(size).trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// A connection's stream as hyper reads it, every request line judged on the way
/// ([`Framing`]). Once the framing is given up (a line too long, framing not followed),
/// reads end and, when hyper lets go of it, the stream is parked with the reason for
/// [`Judged::new`]'s holder to answer ([`answer_refused`]).
pub(crate) struct Judged<S> {
    stream: Option<S>,
    framing: Framing,
    refused: Option<GiveUp>,
    parked: Parked<S>,
}

/// Where a [`Judged`] stream is parked once its framing was given up, with why.
pub(crate) type Parked<S> = Arc<Mutex<Option<(S, GiveUp)>>>;

impl<S> Judged<S> {
    /// `stream` judged; the slot its stream is parked in if its framing is given up.
    pub(crate) fn new(stream: S) -> (Judged<S>, Parked<S>) {
        let parked = Arc::new(Mutex::new(None));
        let judged = Judged {
            stream: Some(stream),
            framing: Framing::new(),
            refused: None,
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
        if let Some(why) = self.refused
            && let Some(stream) = self.stream.take()
            && let Ok(mut slot) = self.parked.lock()
        {
            *slot = Some((stream, why));
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
        if this.refused.is_some() {
            // As if the client stopped sending: hyper ends the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let stream = this.stream()?;
        std::task::ready!(Pin::new(stream).poll_read(cx, buf))?;
        if let Some((at, why)) = this.framing.feed(&buf.filled()[before..]) {
            // Hyper keeps what it had before that byte (a head cut short, answered
            // nothing; a body cut short, answered by hyper) and gets none of the rest.
            buf.set_filled(before + at);
            this.refused = Some(why);
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
        if this.refused.is_some() {
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

/// An answer written on a stream hyper let go of: a page of the router's, with the
/// headers of every answer ([`crate::http::add_security_headers`]), then the connection
/// closed.
async fn answer_bytes(answer: Response) -> Vec<u8> {
    let (parts, body) = answer.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_HEAD_BYTES)
        .await
        .unwrap_or_default();
    let mut headers = parts.headers;
    crate::http::add_security_headers(&mut headers);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
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

/// Ends a connection whose framing was given up for `why`: writes its answer, if it has
/// one, and closes it.
pub(crate) async fn answer_refused<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    why: GiveUp,
) -> io::Result<()> {
    if let Some(answer) = why.answer() {
        stream.write_all(&answer_bytes(answer).await).await?;
    }
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
        let (mut stream, why) = parked.lock().expect("slot").take().expect("parked");
        assert_eq!(why, GiveUp::LineTooLong);
        answer_refused(&mut stream, why).await.expect("answered");
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
                Some((cut_at, GiveUp::LineTooLong)),
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
    }

    /// Review r28-console: framing followed as hyper follows it, so a request hyper
    /// serves is followed here too and a long line after it is still judged (two
    /// `Transfer-Encoding` headers, `gzip` then `chunked`, used to stop the judging while
    /// hyper served the request, and the long line after it was hyper's 431); framing
    /// hyper refuses is given up at the byte where it is, never passed on unjudged.
    #[test]
    fn framing_is_followed_as_hyper_follows_it_and_given_up_where_hyper_refuses() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE_BYTES));
        let post = |headers: &str, body: &str| {
            format!("POST /x HTTP/1.1\r\nHost: a\r\n{headers}\r\n{body}")
        };
        let followed = [
            post(
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                "4\r\nabcd\r\n0\r\n\r\n",
            ),
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: abc\r\n",
                "0\r\n\r\n",
            ),
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            post("Content-Length: 4\r\nContent-Length: 4\r\n", "abcd"),
            post(
                "Transfer-Encoding: chunked\r\n",
                "4;a=b;c=\"d\"\r\nabcd\r\n0\r\nT: 1\r\n\r\n",
            ),
            post(
                "Transfer-Encoding: chunked\r\n",
                "004 \r\nabcd\r\n0\r\n\r\n",
            ),
            "GET /x HTTP/1.1\nHost: a\n\n".to_string(),
        ];
        for first in followed {
            let stream = format!("{first}{long}");
            assert_eq!(
                Framing::new().feed(stream.as_bytes()),
                Some((first.len() + MAX_REQUEST_LINE_BYTES, GiveUp::LineTooLong)),
                "{first:?}"
            );
        }
        let extensions = format!(
            "4;{}\r\nabcd\r\n0\r\n\r\n",
            "e".repeat(MAX_CHUNK_EXTENSION_BYTES)
        );
        let given_up = [
            (post("Content-Length: +4\r\n", "abcd"), GiveUp::BadFraming),
            (post("Content-Length: x\r\n", "abcd"), GiveUp::BadFraming),
            (
                post("Content-Length: 4\r\nContent-Length: 5\r\n", "abcd"),
                GiveUp::BadFraming,
            ),
            (
                post(
                    "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                    "0\r\n\r\n",
                ),
                GiveUp::BadFraming,
            ),
            (
                post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"),
                GiveUp::BadFraming,
            ),
            (
                post("Transfer-Encoding: chunked\r\n", "zz\r\nabcd\r\n0\r\n\r\n"),
                GiveUp::BadChunk,
            ),
            (
                post(
                    "Transfer-Encoding: chunked\r\n",
                    &format!("{}4\r\n", "0".repeat(MAX_CHUNK_SIZE_BYTES)),
                ),
                GiveUp::BadChunk,
            ),
            (
                post("Transfer-Encoding: chunked\r\n", &extensions),
                GiveUp::BadChunk,
            ),
            (
                post(
                    &format!("X: {}\r\n", "b".repeat(MAX_REQUEST_HEAD_BYTES)),
                    "",
                ),
                GiveUp::HeadTooLarge,
            ),
        ];
        for (first, why) in given_up {
            let stream = format!("{first}GET / HTTP/1.1\r\n\r\n{long}");
            let mut framing = Framing::new();
            let verdict = framing.feed(stream.as_bytes());
            assert_eq!(
                verdict.map(|(_, w)| w),
                Some(why),
                "{:?}",
                &first[..first.len().min(120)]
            );
            assert!(
                verdict.is_some_and(|(at, _)| at < first.len()),
                "given up inside it"
            );
            // Nothing after: the rest of the connection is not followed.
            assert_eq!(framing.feed(long.as_bytes()), None);
            assert!(matches!(framing, Framing::GivenUp));
        }
    }
}
