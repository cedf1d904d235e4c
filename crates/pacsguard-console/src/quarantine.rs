//! The quarantine vault in the console: the copies the guard took of files that raised
//! an alert (list, details), and their export to a person's browser, a decision: a fresh
//! step-up and a reason, on the trail before a byte leaves. Exporting only reads: the
//! vault copy is never written, moved or "cleaned", and what is sent is checked against
//! the SHA-256 the vault names it by (an altered copy is refused, not sent).

use std::fmt::Write as _;
use std::net::IpAddr;

use axum::extract::{Extension, Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use pacsguard_events::{Action, Outcome};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{AuthError, Authenticated, Console};
use crate::http::{AppState, Peer, blocking, failure, html, peer_ip};
use crate::pages::{error_line, esc, page};
use crate::roles::Role;

/// Quarantined copies listed on one page (newest first); the rest are counted.
pub const QUARANTINE_PAGE_RECORDS: usize = 500;

/// Bytes of a vault copy read at once when the console hashes or sends it.
pub const EXPORT_CHUNK_BYTES: usize = 64 << 10;
/// Chunks of a download read ahead of the connection: what a slow client can make the
/// console hold per download.
pub const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

/// A vault copy opened for reading, after the vault checked its SHA-256 (the console
/// hashes it again as it reads: the file may change after the check).
#[derive(Debug)]
pub struct VaultCopy {
    pub file: std::fs::File,
    pub len: u64,
}

/// The SHA-256 (hex) of what `file` holds from its start, read [`EXPORT_CHUNK_BYTES`]
/// at a time, and never past `len` (the copy's recorded size) plus one byte: `None`
/// when the file holds more than `len` (grown since it was recorded: a copy made to
/// grow without end, a FIFO-like file, must not keep the console hashing).
fn sha256_of(file: &mut std::fs::File, len: u64) -> std::io::Result<Option<String>> {
    use sha2::{Digest as _, Sha256};
    use std::io::{Read as _, Seek as _};
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut bounded = (&*file).take(len.saturating_add(1));
    let mut hash = Sha256::new();
    let mut chunk = vec![0u8; EXPORT_CHUNK_BYTES];
    let mut read = 0u64;
    loop {
        match bounded.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                read += n as u64;
                if read > len {
                    return Ok(None);
                }
                hash.update(chunk.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(hash.finalize().iter().fold(
        String::new(),
        |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        },
    )))
}

/// A download's body: the copy read by a blocking task [`EXPORT_CHUNK_BYTES`] at a
/// time, hashed again as it goes; if the bytes read do not hash to `expected` (the copy
/// changed during the download) the body ends in an error, so the connection is cut.
/// The last chunk read is held back until the hash is known: a copy changed in its last
/// bytes mid-download would otherwise reach the client whole (curl `-o` keeps every byte
/// it was sent, whatever the cut), so a changed copy never arrives complete.
fn download_body(mut file: std::fs::File, len: u64, expected: String) -> axum::body::Body {
    use sha2::{Digest as _, Sha256};
    use std::io::{Read as _, Seek as _};
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(EXPORT_CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut hash = Sha256::new();
        if let Err(e) = file.seek(std::io::SeekFrom::Start(0)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        // The chunk read last, sent once the next one is read or the hash is known.
        let mut held: Option<Vec<u8>> = None;
        // Never past the recorded size: one byte more is read only to see the copy grew
        // (its hash then differs, and the body ends in an error).
        let mut file = (&mut file).take(len.saturating_add(1));
        loop {
            let mut chunk = vec![0u8; EXPORT_CHUNK_BYTES];
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    hash.update(&chunk);
                    if let Some(previous) = held.replace(chunk)
                        && tx.blocking_send(Ok(previous)).is_err()
                    {
                        return; // the client went away
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        let read: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let last = if read == expected {
            held.map(Ok)
        } else {
            Some(Err(std::io::Error::other(
                "the vault copy changed during the download",
            )))
        };
        if let Some(last) = last {
            let _ = tx.blocking_send(last);
        }
    });
    axum::body::Body::from_stream(Chunks(rx))
}

/// The chunks a download's reader sends, as the stream the response body reads.
struct Chunks(tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<Vec<u8>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Vault copies read at once for the quarantine pages and exports. A copy is streamed
/// (the vault's check, this console's own hash, the download: [`EXPORT_CHUNK_BYTES`] at
/// a time, at most [`EXPORT_CHUNKS_IN_FLIGHT`] chunks queued per download), but each
/// read costs a pass over up to the 256 MiB the vault copies, and the guard runs in this
/// process: twelve viewers' item pages of one 250 MB copy once held 3 GB (review
/// s7-r13c, when copies were read whole). Past the limit a request is refused with "try
/// again" (said on the page), not queued.
pub const MAX_VAULT_READS: usize = 2;

/// One vault read in flight, counted until dropped.
struct VaultRead<'a>(&'a std::sync::Mutex<usize>);

impl Drop for VaultRead<'_> {
    fn drop(&mut self) {
        if let Ok(mut n) = self.0.lock() {
            *n = n.saturating_sub(1);
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A SHA-256 prefix as a person or a link gives it: 8 to 64 hexadecimal digits.
fn valid_prefix(sha: &str) -> bool {
    (8..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Console {
    /// A place among the [`MAX_VAULT_READS`] vault reads, or the refusal that says so.
    fn vault_read(&self) -> Result<VaultRead<'_>, AuthError> {
        let mut reads = crate::auth::lock(&self.vault_reads)?;
        if *reads >= MAX_VAULT_READS {
            return Err(AuthError::Invalid(format!(
                "{MAX_VAULT_READS} vault copies are being read for other requests (the most at once): try again in a moment"
            )));
        }
        *reads += 1;
        Ok(VaultRead(&self.vault_reads))
    }

    /// The vault's records, newest first.
    pub fn quarantined(&self) -> Result<Vec<Value>, AuthError> {
        let guardian = self.guardian_for_quarantine()?;
        let mut records = guardian.quarantine_list().map_err(AuthError::Invalid)?;
        records.reverse();
        Ok(records)
    }

    fn guardian_for_quarantine(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::decide::Guardian>, AuthError> {
        self.guardian
            .clone()
            .ok_or_else(|| AuthError::Invalid("no guard runs beside this console".into()))
    }

    /// The records of one vault entry and its size, after the vault checked the copy's
    /// SHA-256.
    pub fn quarantined_item(&self, sha: &str) -> Result<(Vec<Value>, usize), AuthError> {
        if !valid_prefix(sha) {
            return Err(AuthError::Invalid(
                "name a copy by 8 to 64 hexadecimal digits of its SHA-256".into(),
            ));
        }
        let _read = self.vault_read()?;
        let (records, copy) = self
            .guardian_for_quarantine()?
            .quarantine_copy(sha)
            .map_err(AuthError::Invalid)?;
        Ok((records, usize::try_from(copy.len).unwrap_or(usize::MAX)))
    }

    /// Exports a vault copy to this person (a decision: step-up and reason), recorded
    /// before it is sent; its full SHA-256 and the copy, opened, to be streamed (hashed
    /// again as it is sent).
    pub fn export_quarantined(
        &self,
        auth: &Authenticated,
        sha: &str,
        reason: &str,
        address: IpAddr,
    ) -> Result<(String, VaultCopy), AuthError> {
        let reason = self.decision(auth, reason)?;
        if !valid_prefix(sha) {
            return Err(AuthError::Invalid(
                "name a copy by 8 to 64 hexadecimal digits of its SHA-256".into(),
            ));
        }
        let _read = self.vault_read()?;
        let (records, mut copy) = self
            .guardian_for_quarantine()?
            .quarantine_copy(sha)
            .map_err(AuthError::Invalid)?;
        // The size the vault recorded bounds everything read and sent: a copy grown on
        // disk (after the vault's check) is refused, not hashed or sent past it.
        let recorded = records
            .first()
            .and_then(|r| r.get("size")?.as_u64())
            .ok_or_else(|| {
                AuthError::Invalid("the vault copy's record states no size: not exported".into())
            })?;
        if copy.len != recorded {
            return Err(AuthError::Invalid(format!(
                "the vault copy is {} bytes on disk but its record says {recorded}: altered; not exported",
                copy.len
            )));
        }
        let actual = sha256_of(&mut copy.file, recorded)
            .map_err(|e| AuthError::Invalid(format!("the vault copy cannot be read: {e}")))?
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "the vault copy grew past its recorded size of {recorded} bytes while it was read: altered; not exported"
                ))
            })?;
        // What is sent is what the vault names: a copy altered since the vault checked it
        // is refused.
        if records.first().map(|r| text(r, "sha256")) != Some(actual.clone()) {
            return Err(AuthError::Invalid(format!(
                "the vault copy does not hash to its name (SHA-256 now {actual}): altered; not exported"
            )));
        }
        self.record(
            self.event(
                &auth.name,
                Action::Quarantine,
                Outcome::Success,
                format!(
                    "{} exported the vault copy with SHA-256 {actual} ({} bytes, found at {}) to their browser at {address}, after a step-up; the vault copy is unchanged",
                    auth.name,
                    copy.len,
                    records.first().map(|r| text(r, "original_path")).unwrap_or_default()
                ),
            )
            .with_reason(reason),
        )?;
        Ok((actual, copy))
    }
}

fn list_page(auth: &Authenticated, records: &[Value]) -> String {
    let mut rows = String::new();
    for r in records.iter().take(QUARANTINE_PAGE_RECORDS) {
        let sha = text(r, "sha256");
        let kinds: Vec<String> = r
            .get("findings")
            .and_then(Value::as_array)
            .map(|f| f.iter().map(|f| text(f, "kind")).collect())
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td><a href=\"/quarantine/item?sha={sha}\"><code>{short}</code></a></td><td>{when}</td><td class=\"path\">{path}</td><td>{kinds}</td><td>{size}</td></tr>",
            sha = esc(&sha),
            short = esc(sha.get(..16).unwrap_or(&sha)),
            when = esc(&text(r, "quarantined_at")),
            path = esc(&text(r, "original_path")),
            kinds = esc(&kinds.join(", ")),
            size = esc(&text(r, "size"))
        );
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">The vault is empty.</td></tr>");
    }
    let more = records.len().saturating_sub(QUARANTINE_PAGE_RECORDS);
    page(
        "Quarantine",
        Some(auth),
        &format!(
            "<section><h2>Quarantine</h2><p class=\"hint\">Copies of files that raised an alert; the originals were never touched.</p>\
             <table id=\"quarantine\"><thead><tr><th>SHA-256</th><th>When</th><th>Found at</th><th>Why</th><th>Bytes</th></tr></thead><tbody>{rows}</tbody></table>{}</section>",
            if more > 0 {
                format!(
                    "<p>{more} older copies are not listed here: <code>pacsguard quarantine list</code>.</p>"
                )
            } else {
                String::new()
            }
        ),
    )
}

fn item_page(
    auth: &Authenticated,
    sha: &str,
    records: &[Value],
    size: usize,
    stepped_up: bool,
    error: Option<&str>,
) -> String {
    let mut rows = String::new();
    for r in records {
        let findings: Vec<String> = r
            .get("findings")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .map(|f| {
                        format!(
                            "{} {}: {}",
                            text(f, "severity"),
                            text(f, "kind"),
                            text(f, "detail")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"path\">{}</td><td>{} {} uid {} gid {}</td><td>{}</td><td>{}</td></tr>",
            esc(&text(r, "quarantined_at")),
            esc(&text(r, "original_path")),
            esc(&text(r, "mode")),
            esc(&text(r, "size")),
            esc(&text(r, "uid")),
            esc(&text(r, "gid")),
            esc(&text(r, "actor")),
            esc(&findings.join("; "))
        );
    }
    let export = if auth.role >= Role::Approver {
        format!(
            "<section><h3>Export</h3>{}<p class=\"hint\">The copy is sent to this browser as a file; the vault keeps it unchanged. Needs your second factor confirmed within 5 minutes and a reason, recorded on the trail.</p>{}\
             <form id=\"export-form\" method=\"post\" action=\"/quarantine/export\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"sha\" value=\"{}\">\
             <label for=\"export-reason\">Reason</label><input id=\"export-reason\" name=\"reason\" type=\"text\" required maxlength=\"4096\">\
             <button id=\"export\" type=\"submit\">Export the copy</button></form></section>",
            error_line(error),
            if stepped_up {
                String::new()
            } else {
                "<p id=\"step-up-needed\"><a href=\"/step-up\">Confirm your second factor</a> first.</p>".to_string()
            },
            esc(&auth.csrf),
            esc(sha)
        )
    } else {
        error_line(error)
    };
    page(
        "Quarantined copy",
        Some(auth),
        &format!(
            "<section><h2>Quarantined copy</h2><p>SHA-256 <code id=\"sha256\">{}</code>, {size} bytes, <span id=\"verified\">checked: the copy still hashes to its name</span>.</p>\
             <table id=\"quarantine-records\"><thead><tr><th>When</th><th>Found at</th><th>Mode, size, owner</th><th>By</th><th>Findings</th></tr></thead><tbody>{rows}</tbody></table></section>{export}",
            esc(&records
                .first()
                .map(|r| text(r, "sha256"))
                .unwrap_or_default())
        ),
    )
}

pub(crate) async fn quarantine_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    let console = state.console.clone();
    match blocking(move || console.quarantined()).await {
        Ok(Ok(records)) => html(list_page(&auth, &records)),
        Ok(Err(AuthError::Invalid(m))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            html(crate::pages::message("Quarantine", &m)),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ItemQuery {
    sha: String,
}

async fn item_with(
    state: &AppState,
    auth: &Authenticated,
    sha: String,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let console = state.console.clone();
    let s = sha.clone();
    match blocking(move || console.quarantined_item(&s)).await {
        Ok(Ok((records, size))) => (
            status,
            html(item_page(
                auth,
                &sha,
                &records,
                size,
                state.console.stepped_up(auth),
                error,
            )),
        )
            .into_response(),
        Ok(Err(AuthError::Invalid(m))) => (
            StatusCode::BAD_REQUEST,
            html(crate::pages::message("Quarantine", &m)),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

pub(crate) async fn quarantine_item(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Query(q): Query<ItemQuery>,
) -> Response {
    item_with(&state, &auth, q.sha, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ExportForm {
    sha: String,
    reason: String,
}

pub(crate) async fn quarantine_export(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    peer: Option<Extension<Peer>>,
    Form(form): Form<ExportForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let ip = peer_ip(peer);
    let (sha, reason) = (form.sha.clone(), form.reason);
    match blocking(move || console.export_quarantined(&a, &sha, &reason, ip)).await {
        Ok(Ok((sha256, copy))) => {
            let disposition =
                HeaderValue::from_str(&format!("attachment; filename=\"{sha256}.quarantined\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                    (header::CONTENT_DISPOSITION, disposition),
                    // The length the vault checked: a browser or curl told it knows a
                    // download cut short (a copy changed mid-way) is incomplete.
                    (header::CONTENT_LENGTH, HeaderValue::from(copy.len)),
                ],
                download_body(copy.file, copy.len, sha256),
            )
                .into_response()
        }
        Ok(Err(AuthError::StepUpNeeded)) => {
            item_with(
                &state,
                &auth,
                form.sha,
                StatusCode::FORBIDDEN,
                Some(&AuthError::StepUpNeeded.to_string()),
            )
            .await
        }
        Ok(Err(AuthError::Invalid(m))) => {
            item_with(&state, &auth, form.sha, StatusCode::BAD_REQUEST, Some(&m)).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::{Digest as _, Sha256};
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Everything a download's body yields until its end or its first error.
    async fn received(body: axum::body::Body) -> (Vec<u8>, bool) {
        use futures_core::Stream as _;
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        loop {
            match std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)).await {
                Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
                Some(Err(_)) => return (bytes, false),
                None => return (bytes, true),
            }
        }
    }

    /// Found in review s8-r13: the download sent every chunk and only then compared the
    /// hash, so a copy whose last bytes were changed after the console's check (between
    /// the check and the end of a slow download) reached curl whole; the cut came after
    /// the last byte. The last chunk is now held back until the hash is known.
    #[tokio::test]
    async fn a_copy_changed_in_its_last_bytes_mid_download_never_arrives_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("content");
        let original = vec![b'a'; EXPORT_CHUNK_BYTES * 3 + 100];
        let mut changed = original.clone();
        if let Some(last) = changed.last_mut() {
            *last = b'X';
        }
        std::fs::write(&path, &changed).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let (bytes, ended) = received(download_body(
            file,
            original.len() as u64,
            sha256_hex(&original),
        ))
        .await;
        assert!(!ended, "the download ends in an error");
        assert!(
            bytes.len() < changed.len() && !bytes.contains(&b'X'),
            "{} of {} bytes received, the changed byte among them: {}",
            bytes.len(),
            changed.len(),
            bytes.contains(&b'X')
        );

        // Cut to a chunk boundary: what is received is still short of what was read.
        std::fs::write(&path, &original[..EXPORT_CHUNK_BYTES * 2]).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let (bytes, ended) = received(download_body(
            file,
            original.len() as u64,
            sha256_hex(&original),
        ))
        .await;
        assert!(!ended);
        assert!(bytes.len() < EXPORT_CHUNK_BYTES * 2, "{}", bytes.len());

        // An intact copy, small or of several chunks, arrives whole.
        for len in [0, 10, EXPORT_CHUNK_BYTES, EXPORT_CHUNK_BYTES * 3 + 100] {
            std::fs::write(&path, &original[..len]).expect("write");
            let file = std::fs::File::open(&path).expect("open");
            let (bytes, ended) = received(download_body(
                file,
                len as u64,
                sha256_hex(&original[..len]),
            ))
            .await;
            assert!(ended, "{len}");
            assert_eq!(bytes, &original[..len]);
        }
    }

    /// A copy grown on disk past its recorded size is hashed no further than that size
    /// and one byte (a copy made to grow without end would keep the console reading),
    /// and refused; at its size exactly it is hashed whole.
    #[test]
    fn hashing_stops_at_the_recorded_size_and_a_grown_copy_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("content");
        let content = vec![b'q'; EXPORT_CHUNK_BYTES + 17];
        std::fs::write(&path, &content).expect("write");
        let mut file = std::fs::File::open(&path).expect("open");
        let len = content.len() as u64;
        assert_eq!(
            sha256_of(&mut file, len).expect("read"),
            Some(sha256_hex(&content)),
            "at the limit: whole"
        );
        assert_eq!(
            sha256_of(&mut file, len - 1).expect("read"),
            None,
            "one byte past the recorded size: refused"
        );
        // The download stops there too: a copy grown after the check ends in an error
        // and at most the recorded size plus a byte is read.
        let mut grown = content.clone();
        grown.extend_from_slice(&vec![b'g'; EXPORT_CHUNK_BYTES * 4]);
        std::fs::write(&path, &grown).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (bytes, ended) =
            rt.block_on(async { received(download_body(file, len, sha256_hex(&content))).await });
        assert!(!ended, "a grown copy ends in an error");
        assert!(bytes.len() as u64 <= len, "{} bytes sent", bytes.len());
        assert!(!bytes.contains(&b'g'));
    }
}
