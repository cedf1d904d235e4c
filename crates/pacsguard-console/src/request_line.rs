//! A connection's first request line, read before hyper reads the connection: one
//! longer than [`MAX_REQUEST_LINE_BYTES`] is answered 414 URI Too Long here. Hyper
//! bounds the whole head by [`MAX_REQUEST_HEAD_BYTES`] and answers 431 (headers too
//! large) past it without telling a long request line from long headers, so a target of
//! more than 64 KiB was answered 431 (review r26-console). A shorter over-long target is
//! answered 414 by the router ([`crate::http`]'s `bounded_target`), for every request of
//! a connection.
//!
//! The bytes read are given back to hyper first ([`Replayed`]), so a request that fits
//! is served as if nothing had looked at it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use crate::server::{MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_TARGET_BYTES};

/// What a request line holds besides its target: the method (`OPTIONS`, the longest the
/// console serves, is 7 bytes), two spaces, `HTTP/1.1` and CRLF, with room to spare.
pub const REQUEST_LINE_OVERHEAD_BYTES: usize = 32;

/// The longest first request line read before it is answered 414.
pub const MAX_REQUEST_LINE_BYTES: usize = MAX_REQUEST_TARGET_BYTES + REQUEST_LINE_OVERHEAD_BYTES;

// The request line must be refused before the head's limit can refuse it as headers.
const _: () = assert!(MAX_REQUEST_LINE_BYTES < MAX_REQUEST_HEAD_BYTES);

const TOO_LONG_TITLE: &str = "Address too long";
const TOO_LONG_TEXT: &str = "The address of this request is too long for the console: nothing was done. Open the console from its own pages or the link you were given.";

/// The router's answer to a target over [`MAX_REQUEST_TARGET_BYTES`].
pub(crate) fn too_long_page() -> Response {
    crate::http::status_page(StatusCode::URI_TOO_LONG, TOO_LONG_TITLE, TOO_LONG_TEXT)
}

/// A connection's first request line as read.
pub(crate) enum FirstLine<S> {
    /// It ends within [`MAX_REQUEST_LINE_BYTES`]: the stream, what was read given back
    /// first.
    Fits(Replayed<S>),
    /// It did not end within [`MAX_REQUEST_LINE_BYTES`]: answered 414 and closed.
    TooLong,
    /// The client went away (or the stream failed) before a line ended.
    Gone,
}

/// Reads `stream` until its first request line ends or passes
/// [`MAX_REQUEST_LINE_BYTES`] (the caller bounds the time it takes); a line too long is
/// answered 414 and the connection closed. Empty lines before it, which HTTP/1.1
/// servers skip (RFC 9112 section 2.2), are skipped here too (else one CRLF in front
/// would take the line past this check), and count towards the limit.
pub(crate) async fn read_first_line<S>(mut stream: S) -> FirstLine<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match first_line(&read) {
            Line::Ended => {
                return FirstLine::Fits(Replayed {
                    read,
                    given: 0,
                    stream,
                });
            }
            Line::TooLong => {
                let _ = answer_too_long(&mut stream).await;
                return FirstLine::TooLong;
            }
            Line::Partial => {}
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return FirstLine::Gone,
            Ok(n) => read.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What the bytes read so far hold of the first request line.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// It ended within the limit.
    Ended,
    /// It (with the empty lines before it) is past the limit.
    TooLong,
    /// Not ended yet, within the limit.
    Partial,
}

fn first_line(read: &[u8]) -> Line {
    let start = read
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(read.len());
    match read[start..].iter().position(|&b| b == b'\n') {
        Some(end) if start + end <= MAX_REQUEST_LINE_BYTES => Line::Ended,
        Some(_) => Line::TooLong,
        None if read.len() > MAX_REQUEST_LINE_BYTES => Line::TooLong,
        None => Line::Partial,
    }
}

/// Writes the 414 answer and closes the connection (hyper never saw it).
async fn answer_too_long<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: text/plain; charset=utf-8\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        TOO_LONG_TEXT.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(TOO_LONG_TEXT.as_bytes()).await?;
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

/// A stream whose first bytes, already read, are given again before the rest.
pub(crate) struct Replayed<S> {
    read: Vec<u8>,
    given: usize,
    stream: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replayed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = &this.read[this.given..];
        if left.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        this.given += n;
        if this.given == this.read.len() {
            // Given back whole: its memory is not held for the connection's life.
            this.read = Vec::new();
            this.given = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replayed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line that fits is given back byte for byte, with what followed it; one past
    /// the limit is answered 414 and nothing is given on.
    #[tokio::test]
    async fn a_first_line_within_the_limit_is_replayed_and_one_past_it_is_414() {
        let fitting = format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(MAX_REQUEST_TARGET_BYTES - 1)
        );
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(fitting.as_bytes()).await.expect("sent");
        let FirstLine::Fits(mut replayed) = read_first_line(server).await else {
            panic!("a line at the limit fits");
        };
        let mut back = vec![0u8; fitting.len()];
        replayed.read_exact(&mut back).await.expect("replayed");
        assert_eq!(back, fitting.as_bytes());

        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(long.as_bytes()).await.expect("sent");
        assert!(matches!(read_first_line(server).await, FirstLine::TooLong));
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.expect("answer");
        assert!(answer.starts_with("HTTP/1.1 414 "), "{answer}");
    }

    /// Empty lines in front of an over-long request line do not take it past the check
    /// (review r26-console: one CRLF first, and hyper's 431 answered again), and a flood
    /// of them is bounded too.
    #[test]
    fn empty_lines_before_the_request_line_count_and_do_not_hide_it() {
        let long = format!(
            "\r\nGET /{} HTTP/1.1\r\n",
            "a".repeat(MAX_REQUEST_TARGET_BYTES + 64)
        );
        assert_eq!(first_line(long.as_bytes()), Line::TooLong);
        assert_eq!(first_line(b"\r\n\r\nGET / HTTP/1.1\r\n"), Line::Ended);
        assert_eq!(first_line(b"\r\n\r\nGET / HT"), Line::Partial);
        assert_eq!(
            first_line("\r\n".repeat(MAX_REQUEST_LINE_BYTES).as_bytes()),
            Line::TooLong
        );
        assert_eq!(first_line(b""), Line::Partial);
    }
}
