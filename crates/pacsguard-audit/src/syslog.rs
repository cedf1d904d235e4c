//! Forwarding the trail to a SIEM or an audit record repository as syslog.
//!
//! The protocol core is free of I/O: [`message`] formats one trail record as an RFC 5424
//! message whose MSG is the record's DICOM audit message (IHE ATNA: MSGID `IHE+RFC-3881`),
//! with the record's sequence number and the trail's origin as structured data, so a
//! receiver can drop the duplicates that at-least-once delivery may produce; [`frame`]
//! adds RFC 5425/6587 octet counting for stream transports (TCP, and TLS with the server's
//! certificate verified and, for IHE ATNA, an optional client certificate).
//!
//! [`SyslogTransport`] is this collector's transport for [`crate::delivery`], the one
//! delivery mechanism (the trail is the queue, each destination has its own cursor).
//! Over TCP and TLS the cursor moves only after the collector closed the connection (it
//! read everything); a collector that is down or fails midway delays delivery, never
//! drops it: the next run sends from the cursor, in order. UDP has no acknowledgement: a datagram sent to a collector that is down is lost
//! (RFC 5426); use TLS where every record must arrive.

use std::io::{self, Write as _};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::atna;

/// Private enterprise number used for PacsGuard's structured data. 32473 is the number
/// IANA reserves for documentation (RFC 5612); a registered one replaces it before release.
pub const SD_ENTERPRISE: u32 = 32473;

/// Largest message sent over UDP (RFC 5426): one datagram each, no fragmentation games.
pub const MAX_UDP_MESSAGE: usize = 65_000;

/// Syslog severity for a record: alert findings are alerts (1), warnings warnings (4),
/// everything else a notice (5). Facility 10 (authpriv), as ATNA asks.
fn priority(record: &Value) -> u8 {
    const AUTHPRIV: u8 = 10;
    let severity = match record
        .get("finding")
        .and_then(|f| f.get("severity"))
        .and_then(Value::as_str)
    {
        Some("alert") => 1,
        Some("warning") => 4,
        _ if record.get("outcome").and_then(Value::as_str) == Some("failure") => 3,
        // A run that found something, or news about the trail itself, is worth a warning.
        _ if record.get("outcome").and_then(Value::as_str) == Some("findings") => 4,
        _ if record.get("action").and_then(Value::as_str) == Some("audit") => 4,
        _ => 5,
    };
    AUTHPRIV * 8 + severity
}

/// RFC 5424 header fields are printable US-ASCII without spaces; anything else becomes
/// `_`, an empty field `-`.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if field.is_empty() { "-".into() } else { field }
}

/// PARAM-VALUE escaping (RFC 5424 §6.3.3): `"`, `\` and `]` are escaped.
fn param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One trail record as an RFC 5424 message (without framing).
pub fn message(record: &Value, origin: &str) -> Vec<u8> {
    message_with(record, origin, "", atna::dcm_event_type_of(record))
}

/// The structured data a collector's rule can match without parsing the MSG: the
/// record's action and, for a finding, its severity (the same in a whole message and in
/// its stand-in, so one rule fires on both).
fn rule_params(record: &Value) -> String {
    let mut out = String::new();
    if let Some(action) = record.get("action").and_then(Value::as_str) {
        out.push_str(&format!(" action=\"{}\"", param_value(action)));
    }
    if let Some(severity) = record
        .get("finding")
        .and_then(|f| f.get("severity"))
        .and_then(Value::as_str)
    {
        out.push_str(&format!(" severity=\"{}\"", param_value(severity)));
    }
    out
}

/// [`message`] with `extra` SD parameters (` name="value"`, escaped) after the others.
fn message_with(
    record: &Value,
    origin: &str,
    extra: &str,
    dcm_type: Option<(&str, &str)>,
) -> Vec<u8> {
    let time = record.get("time").and_then(Value::as_str).unwrap_or("-");
    let host = record.get("host").and_then(Value::as_str).unwrap_or("");
    let seq = record
        .get("seq")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let mut out = format!(
        "<{}>1 {} {} pacsguard - IHE+RFC-3881 [pacsguard@{SD_ENTERPRISE} seq=\"{seq}\" origin=\"{}\"{}{extra}] ",
        priority(record),
        header_field(time, 64),
        header_field(host, 255),
        param_value(origin),
        rule_params(record)
    )
    .into_bytes();
    out.extend_from_slice("\u{feff}".as_bytes()); // BOM: the MSG is UTF-8
    out.extend_from_slice(atna::audit_message_typed(record, dcm_type).as_bytes());
    out
}

/// The largest message sent whole unless `[forward] max_message_bytes` says otherwise:
/// 8,192 bytes, what RFC 5425 §4.3.1 says every receiver SHOULD take and rsyslog's
/// default `maxMessageSize`; an ordinary record is 1 to 2 KB, a finding on a path of
/// thousands of characters 4 to 9 KB and more. RFC 5425/6587 have no acknowledgement:
/// a collector that reads a message over its limit and closes in order cannot be told
/// from one that took it, so no message bigger than the collector is said to take is
/// sent (review rv33-deliver: 26 such records never reached the SIEM while stderr said
/// "resumed"). A record over the limit goes as its stand-in ([`stand_in`]).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8192;

/// The smallest `max_message_bytes` taken: RFC 5425 §4.3.1, the size every receiver
/// MUST take (and room for a stand-in).
pub const MIN_MESSAGE_BYTES: usize = 2048;

/// `max_message_bytes` as configured, or why it is refused.
pub fn check_max_message_bytes(bytes: usize) -> Result<usize, String> {
    if (MIN_MESSAGE_BYTES..=MAX_UDP_MESSAGE).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "max_message_bytes = {bytes}: expected {MIN_MESSAGE_BYTES} (RFC 5425's size every receiver takes, MIN_MESSAGE_BYTES) to {MAX_UDP_MESSAGE} (MAX_UDP_MESSAGE)"
        ))
    }
}

/// The most bytes of each path (and of the detail) a stand-in keeps before it is cut to
/// fit: a rule on a path's beginning (`/srv/pacs/`) still fires, the rest is whole on
/// the trail.
pub const STAND_IN_KEPT_BYTES: usize = 512;

/// `text` cut to at most `keep` bytes (at a character, never inside one of the record's
/// `\` escapes), marked with how much it was; unchanged when it fits.
fn cut_marked(text: &str, keep: usize) -> String {
    if text.len() <= keep {
        return text.to_string();
    }
    let mut end = keep;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // Walked from the start, escape by escape: the last `\` before `end` may be the
    // second half of a `\\` (review rv36-deliver: a cut left half of one).
    let mut from = 0;
    while let Some(off) = text[from..end].find('\\') {
        let at = from + off;
        let len = escape_len(&text[at..]);
        if at + len > end {
            end = at;
            break;
        }
        from = at + len;
    }
    format!("{}[cut at {end} of {} bytes]", &text[..end], text.len())
}

/// The fewest bytes a stand-in keeps of a path before it keeps the path's tail (its
/// file's name) beside the head: below, the head alone.
pub const STAND_IN_TAIL_FROM: usize = 64;

/// The most bytes of a path's tail a stand-in keeps (a file's name and extension).
pub const STAND_IN_TAIL_MOST: usize = 64;

/// A path cut to about `keep` bytes for a stand-in: its head (a rule on where it lies,
/// `/srv/pacs/`, still fires) and its tail (the file's name and extension, `x.jsp`),
/// the middle left out and marked. A head alone let an attacker choose what a rule
/// could see: thirteen directories of `]"é…` pushed a web shell's name out of the
/// message (review rv38-console). Neither part holds half a character or half of one
/// of the record's `\` escapes.
fn cut_path_marked(path: &str, keep: usize) -> String {
    if path.len() <= keep {
        return path.to_string();
    }
    // Below it the head alone (where the path lies) is what fits a rule.
    if keep < STAND_IN_TAIL_FROM {
        return cut_marked(path, keep);
    }
    let mut start = path.len() - (keep / 3).min(STAND_IN_TAIL_MOST);
    // The escape the start falls inside (walked from the beginning: a `\` may be the
    // second half of one) is left out whole.
    let mut from = 0;
    while let Some(off) = path[from..].find('\\') {
        let at = from + off;
        if at >= start {
            break;
        }
        let len = escape_len(&path[at..]);
        if at + len > start {
            start = at + len;
            break;
        }
        from = at + len;
    }
    while !path.is_char_boundary(start) {
        start += 1;
    }
    let tail = &path[start..];
    let head = cut_marked(&path[..start], keep.saturating_sub(tail.len()));
    // `cut_marked` said the head's length against the head's; said against the path's.
    let head = match head.rfind("[cut at ") {
        Some(at) => format!(
            "{}[cut at {at} of {} bytes, its last {} follow]",
            &head[..at],
            path.len(),
            tail.len()
        ),
        None => head,
    };
    format!("{head}{tail}")
}

/// The length of the record's `\` escape `text` begins with: `\\`, `\xNN`,
/// `\u{X...}`; 1 for a `\` that begins none (not written by `escape_bytes`).
fn escape_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    match bytes.get(1) {
        Some(b'\\') => 2,
        Some(b'x')
            if bytes
                .get(2..4)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
        {
            4
        }
        Some(b'u') if bytes.get(2) == Some(&b'{') => text
            .get(3..)
            .and_then(|rest| rest.find('}'))
            .filter(|close| *close <= 8)
            .map_or(1, |close| close + 4),
        _ => 1,
    }
}

/// The fewest bytes of each path a stand-in keeps before it leaves out further paths
/// of a record naming several: a path cut shorter says too little for a rule on it.
pub const STAND_IN_MIN_PATH_BYTES: usize = 96;

/// The record a stand-in describes: its action, outcome, time, host, actor and finding
/// kind and severity as they are; its paths and detail cut to `keep` bytes (marked);
/// its `detail` led by what the stand-in is (`about`); what else may be long left out.
/// Of its paths (`objects`), the first `paths` are carried; how many were left out is
/// said in the detail.
fn stand_in_record(record: &Value, about: &str, keep: usize, paths: usize) -> Value {
    let mut reduced = record.clone();
    let Some(fields) = reduced.as_object_mut() else {
        return reduced;
    };
    let total = fields
        .get("objects")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let left_out = if total > paths {
        format!(
            "; {} of its {total} paths left out (the first {paths} carried)",
            total - paths
        )
    } else {
        String::new()
    };
    let detail = fields
        .get("detail")
        .and_then(Value::as_str)
        .map(|d| format!("; its detail: {}", cut_marked(d, keep)))
        .unwrap_or_default();
    fields.insert(
        "detail".into(),
        Value::String(format!("{about}{left_out}{detail}")),
    );
    fields.remove("reason");
    if let Some(objects) = fields.get_mut("objects").and_then(Value::as_array_mut) {
        objects.truncate(paths);
        for object in objects.iter_mut() {
            if let Some(path) = object.as_str() {
                *object = Value::String(cut_path_marked(path, keep));
            }
        }
    }
    if let Some(finding) = fields.get_mut("finding").and_then(Value::as_object_mut) {
        finding.retain(|key, _| {
            matches!(key.as_str(), "kind" | "severity" | "root" | "path" | "from")
        });
        for key in ["path", "from", "root"] {
            if let Some(path) = finding.get(key).and_then(Value::as_str) {
                let cut = cut_path_marked(path, keep);
                finding.insert(key.into(), Value::String(cut));
            }
        }
    }
    reduced
}

/// What goes in place of a record whose message is over the collector's limit (`limit`
/// bytes; `len`, the message's size), over every transport: a DICOM audit message of
/// its own with the same header, dedup key and rule parameters, the record's action,
/// finding kind and severity, its paths cut to fit (marked), and a description that
/// says the record's size, the BLAKE3 digest of its line in the trail (`line`) and how
/// to fetch it whole; SD `stand-in="true"`. A collector's rule on the action or a path
/// fires on it as on the whole message (session 35: a stand-in carried neither). The
/// one code path of every stand-in.
fn stand_in(record: &Value, line: &[u8], origin: &str, len: usize, limit: usize) -> Vec<u8> {
    let seq = record
        .get("seq")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let about = format!(
        "a stand-in for record {seq} ({len} bytes, over this collector's max_message_bytes {limit}): whole on the trail (pacsguard audit show --json), BLAKE3 digest of its line {}",
        blake3::hash(line).to_hex()
    );
    // The type of the record it stands for, not of the reduced record's words.
    let dcm_type = atna::dcm_event_type_of(record);
    let made = |keep: usize, paths: usize| {
        message_with(
            &stand_in_record(record, &about, keep, paths),
            origin,
            " stand-in=\"true\"",
            dcm_type,
        )
    };
    // As many of its paths as fit with each cut to STAND_IN_MIN_PATH_BYTES (at least
    // one; session 35 carried only the first, unmarked), found by halving the range.
    let total = record
        .get("objects")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let (mut paths, mut too_many) = (total.min(1), total + 1);
    while paths + 1 < too_many {
        let mid = paths + (too_many - paths) / 2;
        if made(STAND_IN_MIN_PATH_BYTES, mid).len() <= limit {
            paths = mid;
        } else {
            too_many = mid;
        }
    }
    // Then the most of each path that fits, found by halving the range: a rule on a
    // path's beginning needs every byte that can be kept.
    let made = |keep: usize| made(keep, paths);
    let (mut fits, mut over) = (None, STAND_IN_KEPT_BYTES + 1);
    let mut low = 0;
    while low < over {
        let keep = low + (over - low) / 2;
        let out = made(keep);
        if out.len() <= limit {
            fits = Some(out);
            low = keep + 1;
        } else {
            over = keep;
        }
    }
    if let Some(out) = fits {
        return out;
    }
    // Even with every path cut to nothing it does not fit (a host name or an actor at
    // great length): what the rules need and the description, nothing else.
    let left_out = if total > 0 {
        format!("; all {total} of its paths left out")
    } else {
        String::new()
    };
    let mut least = serde_json::json!({ "detail": format!("{about}{left_out}") });
    for key in ["seq", "time", "action", "outcome"] {
        if let Some(value) = record.get(key) {
            least[key] = value.clone();
        }
    }
    if let Some(finding) = record.get("finding").and_then(Value::as_object) {
        let kept: serde_json::Map<String, Value> = finding
            .iter()
            .filter(|(key, _)| matches!(key.as_str(), "kind" | "severity"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        least["finding"] = Value::Object(kept);
    }
    message_with(&least, origin, " stand-in=\"true\"", dcm_type)
}

/// The most stand-ins one line (on stderr, on the trail) names by sequence number; the
/// rest are counted ("and N more").
pub const MAX_STAND_INS_LISTED: usize = 32;

/// What is said, and recorded on the trail, of the records that went to `whom` as
/// stand-ins (sequence number, message size; `max_message`, the limit): which ones, so
/// a reader of the collector knows which alerts to fetch whole. `None` when none did.
pub fn stand_ins_said(stood_in: &[(u64, usize)], max_message: usize, whom: &str) -> Option<String> {
    if stood_in.is_empty() {
        return None;
    }
    let listed: Vec<String> = stood_in
        .iter()
        .take(MAX_STAND_INS_LISTED)
        .map(|(seq, size)| format!("{seq} ({size} bytes)"))
        .collect();
    let more = stood_in.len().saturating_sub(MAX_STAND_INS_LISTED);
    let more = if more > 0 {
        format!(" and {more} more (MAX_STAND_INS_LISTED {MAX_STAND_INS_LISTED})")
    } else {
        String::new()
    };
    Some(format!(
        "{} record(s) over max_message_bytes {max_message} went as stand-ins to {whom} (action, severity and paths cut to fit; each record stays whole on the trail: pacsguard audit show): records {}{more}",
        stood_in.len(),
        listed.join(", ")
    ))
}

/// The small message that ends a batch whose last message is over [`MIN_MESSAGE_BYTES`]
/// (record `seq`, `len` bytes): read, it shows the collector read on after that record;
/// not a record, so no `seq` of its own (a receiver's dedup key stays the records').
fn batch_mark(origin: &str, seq: u64, len: usize) -> Vec<u8> {
    const AUTHPRIV_INFO: u8 = 10 * 8 + 6;
    format!(
        "<{AUTHPRIV_INFO}>1 - - pacsguard - pacsguard-batch [pacsguard@{SD_ENTERPRISE} through=\"{seq}\" origin=\"{}\"] \u{feff}end of a batch: record {seq} ({len} bytes) was sent before this",
        param_value(origin)
    )
    .into_bytes()
}

/// RFC 5425 / RFC 6587 octet counting: `LEN SP MSG`.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

/// Where messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// RFC 5426: one datagram per message.
    Udp(String),
    /// RFC 6587 octet counting over plain TCP.
    Tcp(String),
    /// RFC 5425: octet counting over TLS, the server's certificate verified against `ca`
    /// for the host name of the address; with `client`, a client certificate and key for
    /// IHE ATNA mutual authentication (all PEM files).
    Tls {
        addr: String,
        ca: PathBuf,
        client: Option<(PathBuf, PathBuf)>,
    },
}

impl Target {
    /// `udp://host:port`, `tcp://host:port` or `tls://host:port` (TLS needs `ca`).
    pub fn parse(
        text: &str,
        ca: Option<PathBuf>,
        client: Option<(PathBuf, PathBuf)>,
    ) -> Result<Target, String> {
        let plain = |target: Target| {
            if ca.is_some() || client.is_some() {
                Err(format!(
                    "{text:?}: --ca, --cert and --key only apply to tls://; refusing to send in the clear"
                ))
            } else {
                Ok(target)
            }
        };
        if let Some(addr) = text.strip_prefix("udp://") {
            plain(Target::Udp(addr.to_string()))
        } else if let Some(addr) = text.strip_prefix("tcp://") {
            plain(Target::Tcp(addr.to_string()))
        } else if let Some(addr) = text.strip_prefix("tls://") {
            let ca = ca.ok_or_else(|| {
                format!("{text:?}: TLS needs the collector's CA certificate (--ca FILE)")
            })?;
            Ok(Target::Tls {
                addr: addr.to_string(),
                ca,
                client,
            })
        } else {
            Err(format!(
                "{text:?}: expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT"
            ))
        }
    }

    /// `udp://host:port`, as the collector is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Udp(a) => format!("udp://{a}"),
            Target::Tcp(a) => format!("tcp://{a}"),
            Target::Tls { addr, .. } => format!("tls://{addr}"),
        }
    }
}

/// The host part of `host:port` (`[v6]:port` too), as the TLS server name.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn tls_config(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> io::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", what.display()),
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(ca, &e))? {
        roots
            .add(cert.map_err(|e| bad(ca, &e))?)
            .map_err(|e| bad(ca, &e))?;
    }
    if roots.is_empty() {
        return Err(bad(ca, &"no certificate in the file"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(ca, &e))?
        .with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(cert, &e))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(cert, &e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(cert, &e))
        }
    }
}

/// Reads the PEM files of a TLS target as a connection would (the CA certificates, the
/// client's chain and key), so a path that is wrong or unreadable is refused when the
/// configuration is loaded instead of failing every delivery for as long as the guard
/// runs. On error: which file (`ca`, `cert`, `key`) and why.
pub fn check_tls_files(target: &Target) -> Result<(), (&'static str, String)> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let Target::Tls { ca, client, .. } = target else {
        return Ok(());
    };
    let certificates = |field: &'static str, path: &Path| {
        let why = |e: &dyn std::fmt::Display| (field, format!("{}: {e}", path.display()));
        let found = CertificateDer::pem_file_iter(path)
            .map_err(|e| why(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| why(&e))?;
        if found.is_empty() {
            return Err(why(&"no certificate in the file"));
        }
        Ok(())
    };
    certificates("ca", ca)?;
    if let Some((cert, key)) = client {
        certificates("cert", cert)?;
        PrivateKeyDer::from_pem_file(key)
            .map_err(|e| ("key", format!("{}: {e}", key.display())))?;
    }
    Ok(())
}

/// A TCP stream whose every read and write ends by one deadline: each system call waits
/// at most for what is left of it, so a peer that trickles a byte now and then (which
/// resets any per-call timeout) still cannot hold the forwarder, and with it the home's
/// lock, past the deadline of the phase it is in.
struct Deadlined {
    tcp: TcpStream,
    deadline: Instant,
    /// What must end by then, and the constant that says how long it may take.
    phase: &'static str,
    limit: (&'static str, Duration),
}

impl Deadlined {
    fn new(tcp: TcpStream) -> Deadlined {
        Deadlined {
            tcp,
            deadline: Instant::now(),
            phase: "connecting",
            limit: ("", Duration::ZERO),
        }
    }

    /// Starts a phase that must end by `deadline` (`limit`: the constant's name and value).
    fn phase(&mut self, phase: &'static str, limit: (&'static str, Duration), deadline: Instant) {
        self.phase = phase;
        self.limit = limit;
        self.deadline = deadline;
    }

    fn passed(&self) -> io::Error {
        deadline_passed(format!(
            "{} did not complete within {} s ({}): delivery is not confirmed",
            self.phase,
            self.limit.1.as_secs(),
            self.limit.0
        ))
    }

    /// What is left of the deadline, or the error that says it passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.passed());
        }
        Ok(left)
    }

    fn timed(&self, result: io::Result<usize>) -> io::Result<usize> {
        match result {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && Instant::now() >= self.deadline =>
            {
                Err(self.passed())
            }
            other => other,
        }
    }
}

impl io::Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_read_timeout(Some(left))?;
        let result = self.tcp.read(buf);
        self.timed(result)
    }
}

impl io::Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_write_timeout(Some(left))?;
        let result = self.tcp.write(buf);
        self.timed(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

enum Connection {
    Udp(UdpSocket),
    Tcp(Deadlined),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Deadlined>>),
}

impl Connection {
    /// Connects and, over TLS, completes the handshake within [`HANDSHAKE_DEADLINE`]. The
    /// sending that follows must end by `send_deadline`.
    fn open(target: &Target, send_deadline: Instant) -> io::Result<Connection> {
        let resolve = |addr: &str| {
            addr.to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
        };
        let sending = ("sending the batch", ("SEND_DEADLINE", SEND_DEADLINE));
        Ok(match target {
            Target::Udp(addr) => {
                let socket = UdpSocket::bind(("0.0.0.0", 0))?;
                socket.connect(resolve(addr)?)?;
                Connection::Udp(socket)
            }
            Target::Tcp(addr) => {
                let stream = TcpStream::connect_timeout(&resolve(addr)?, Duration::from_secs(10))?;
                let mut stream = Deadlined::new(stream);
                stream.phase(sending.0, sending.1, send_deadline);
                Connection::Tcp(stream)
            }
            Target::Tls { addr, ca, client } => {
                let config = tls_config(ca, client.as_ref())?;
                let name = rustls_pki_types::ServerName::try_from(host_of(addr).to_string())
                    .map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
                    })?;
                let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let stream = TcpStream::connect_timeout(&resolve(addr)?, Duration::from_secs(10))?;
                let mut stream = Deadlined::new(stream);
                stream.phase(
                    "the TLS handshake",
                    ("HANDSHAKE_DEADLINE", HANDSHAKE_DEADLINE),
                    Instant::now() + HANDSHAKE_DEADLINE,
                );
                let mut tls = rustls::StreamOwned::new(session, stream);
                // Handshake now, so a wrong certificate fails before anything is sent.
                while tls.conn.is_handshaking() {
                    tls.conn.complete_io(&mut tls.sock)?;
                }
                tls.sock.phase(sending.0, sending.1, send_deadline);
                Connection::Tls(Box::new(tls))
            }
        })
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Connection::Udp(socket) => socket.send(message).map(|_| ()),
            Connection::Tcp(stream) => stream.write_all(&frame(message)),
            Connection::Tls(stream) => stream.write_all(&frame(message)),
        }
    }

    /// Waits until `until` (the earlier of [`LARGE_BATCH_HOLD`] and the run's
    /// [`SEND_DEADLINE`]) for the collector to end the connection by itself (an orderly
    /// close, a reset, a TLS `close_notify` or alert): it then did not read on to our end,
    /// and delivery is not confirmed. What the collector sends meanwhile (a TLS session
    /// ticket; over plain TCP, bytes a syslog collector never sends) is read and the wait
    /// goes on: only its close or the hold's end ends it. UDP has nothing to wait for.
    fn hold(&mut self, until: Instant) -> io::Result<()> {
        let mut unexpected = [0u8; 4096];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let waited = match self {
                Connection::Udp(_) => return Ok(()),
                // Read away: the drain would discard them too, and a peek at bytes that
                // stay would end the wait at once.
                Connection::Tcp(stream) => {
                    stream.tcp.set_read_timeout(Some(left))?;
                    io::Read::read(&mut stream.tcp, &mut unexpected)
                }
                Connection::Tls(stream) => {
                    stream.sock.tcp.set_read_timeout(Some(left))?;
                    stream.sock.tcp.peek(&mut [0u8; 1])
                }
            };
            match waited {
                Ok(0) => return Err(closed_before_the_end()),
                Ok(_) => {
                    if let Connection::Tls(stream) = self {
                        peer_closed_early(stream)?;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Ends the connection and waits, within [`DRAIN_DEADLINE`], for the collector to
    /// confirm it read everything; `hold_until`: the batch carried a message over
    /// [`MIN_MESSAGE_BYTES`], so first a hold until `hold_until` for a collector that
    /// closes by itself ([`Connection::hold`]).
    fn finish(&mut self, hold_until: Option<Instant>) -> io::Result<()> {
        let draining = (
            "the collector's confirmation",
            ("DRAIN_DEADLINE", DRAIN_DEADLINE),
        );
        let deadline = Instant::now() + DRAIN_DEADLINE;
        if let Some(until) = hold_until {
            self.hold(until)?;
        }
        match self {
            Connection::Udp(_) => Ok(()),
            // A successful write only means the bytes left this process. Close our side and
            // wait for the collector to close its own: then it has read everything, and only
            // then may the cursor move.
            Connection::Tcp(stream) => {
                stream.phase(draining.0, draining.1, deadline);
                stream.flush()?;
                still_open(&stream.tcp)?;
                stream.tcp.shutdown(std::net::Shutdown::Write)?;
                drain_until_closed(stream)
            }
            Connection::Tls(stream) => {
                stream.sock.phase(draining.0, draining.1, deadline);
                stream.flush()?;
                // Whatever the collector sent so far: a syslog collector sends nothing, so
                // a close_notify (or an alert) already there means it ended the session
                // before it had read everything we sent.
                peer_closed_early(stream)?;
                still_open(&stream.sock.tcp)?;
                stream.conn.send_close_notify();
                while stream.conn.wants_write() {
                    stream.conn.write_tls(&mut stream.sock)?;
                }
                stream.sock.tcp.shutdown(std::net::Shutdown::Write)?;
                drain_until_closed(stream.as_mut())?;
                // Its close_notify is not the end: a collector that closes its socket
                // with our bytes still unread makes its kernel answer with a reset. Only
                // an orderly end of the TCP stream confirms it read everything.
                drain_until_closed(&mut stream.sock)
            }
        }
    }
}

/// How long a batch that carried a message over [`MIN_MESSAGE_BYTES`] waits, once
/// everything was sent and before it ends the connection, for a collector that closes by
/// itself. A collector reads until the sender's end of the stream; one that reads ahead
/// (`recv(65536)`), throws away a frame over its limit with what came after it (the end
/// mark too) and closes, leaves nothing unread, so its close is in order and, after
/// ours, cannot be told from delivery (session 34: the record and the ones after it
/// counted as delivered). Before ours, its close is a failure. Long enough for a loaded
/// collector to read what it was sent; paid only by batches with large messages.
pub const LARGE_BATCH_HOLD: Duration = Duration::from_secs(2);

/// A debug build's knob for tests: [`LARGE_BATCH_HOLD`] in milliseconds, so a test's
/// collector on a loaded machine closes within the hold (never read in a release build;
/// the binary says it on stderr when it uses it).
pub const TEST_LARGE_BATCH_HOLD_VAR: &str = "PACSGUARD_TEST_LARGE_BATCH_HOLD_MS";

/// How long, at most, the collector may take to confirm a batch once everything was
/// sent: a peer that keeps the connection open (or trickles bytes) must not hold the
/// forwarder, nor move the cursor.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// How long, at most, the TLS handshake may take as a whole: a collector that answers a
/// byte at a time must not hold the forwarder, and with it the home's lock.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(30);

/// How long, at most, one run may spend sending before it stops: what was sent by then is
/// confirmed as a batch of its own (the rest waits for the next run), and a collector
/// that reads a few bytes now and then cannot hold the forwarder (and the home's lock).
pub const SEND_DEADLINE: Duration = Duration::from_secs(120);

/// The most records one batch (one connection) carries. A batch that fails is sent
/// again whole, so a collector that cuts connections short (a size limit, a proxy) must
/// not be handed the whole backlog each time: the records it did take would come again
/// and again and the ones behind them never (review rv33-deliver).
pub const MAX_BATCH_RECORDS: u64 = 256;

/// The most bytes of messages one batch carries at [`MAX_BATCH_RECORDS`]; a smaller
/// batch ([`Pace`]) may carry as much less in proportion. A batch always carries its
/// first record, however large.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The longest wait between two tries at a collector that keeps failing (down, or
/// refusing even a batch of one record): retries double from the first delay up to this.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(120);

/// How big the next batch to a collector is, and how long to wait after a failed one:
/// a failed batch makes the next one half of what was tried (down to one record, and
/// never again as big as the one that failed until the collector has caught up), a
/// delivered one doubles it; a collector that fails with nothing to shrink (down, or
/// refusing one record) is retried less and less often, up to [`MAX_RETRY_BACKOFF`].
/// Free of I/O, so its rules are tested alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pace {
    budget: u64,
    ceiling: u64,
    backoff: Backoff,
}

/// How long to wait before the next try at a destination that keeps failing with
/// nothing to shrink: the first delay, doubled at each failure up to a most, and the
/// first again after a delivery. The one rule of every destination's retries (a
/// collector's, up to [`MAX_RETRY_BACKOFF`]; the console's, up to a bound of its own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// One more failure: the wait before the next try, `first` at least, `most` at most.
    pub fn failed(&mut self, first: Duration, most: Duration) -> Duration {
        let delay = first
            .saturating_mul(2u32.saturating_pow(self.failures.min(16)))
            .min(most)
            .max(first);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// A delivery: the next failure waits `first` again.
    pub fn delivered(&mut self) {
        self.failures = 0;
    }
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            budget: MAX_BATCH_RECORDS,
            ceiling: MAX_BATCH_RECORDS,
            backoff: Backoff::default(),
        }
    }
}

impl Pace {
    /// The most records the next batch carries.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// A batch was confirmed; `caught_up`: nothing signed is left to send, so the size
    /// that failed before no longer bounds the next batches.
    pub fn delivered(&mut self, caught_up: bool) {
        self.backoff.delivered();
        if caught_up {
            self.ceiling = MAX_BATCH_RECORDS;
        }
        self.budget = self.budget.saturating_mul(2).min(self.ceiling).max(1);
    }

    /// A batch failed after `attempted` records were handed to the connection (0: it
    /// did not open); returns how long to wait before the next try, `first` at least.
    pub fn failed(&mut self, attempted: u64, first: Duration) -> Duration {
        if attempted > 1 {
            // Smaller may pass: try it soon.
            self.ceiling = attempted - 1;
            self.budget = (attempted / 2).max(1);
            self.backoff.delivered();
            return first;
        }
        if attempted == 1 {
            self.budget = 1;
            self.ceiling = 1;
        }
        self.backoff.failed(first, MAX_RETRY_BACKOFF)
    }
}

/// An error that says a deadline passed: nothing confirmed, nothing lost.
fn deadline_passed(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

/// Reads what the collector sent so far, without waiting, and refuses a session it
/// already ended (a `close_notify` before ours) or broke (an alert, a reset).
fn peer_closed_early(
    stream: &mut rustls::StreamOwned<rustls::ClientConnection, Deadlined>,
) -> io::Result<()> {
    stream.sock.tcp.set_nonblocking(true)?;
    let read = loop {
        match stream.conn.read_tls(&mut stream.sock.tcp) {
            Ok(0) => break Ok(()),
            Ok(_) => {
                if let Err(e) = stream.conn.process_new_packets() {
                    break Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    stream.sock.tcp.set_nonblocking(false)?;
    read?;
    let state = stream
        .conn
        .process_new_packets()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if state.peer_has_closed() {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the collector ended the TLS session (close_notify) before we had finished sending: it did not read everything; delivery is not confirmed",
        ));
    }
    Ok(())
}

/// The collector (or something on the path) ended the connection before we did.
fn closed_before_the_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection ended before everything was sent: delivery is not confirmed",
    )
}

/// Refuses a connection the collector (or something on the path) already ended or reset
/// before we closed ours: it cannot have read everything we sent.
fn still_open(tcp: &TcpStream) -> io::Result<()> {
    tcp.set_nonblocking(true)?;
    let peeked = tcp.peek(&mut [0u8; 1]);
    tcp.set_nonblocking(false)?;
    match peeked {
        Ok(0) => Err(closed_before_the_end()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads (and discards) until the peer ends the stream after our close; a reset, the
/// deadline of the stream or an error is not delivery.
///
/// Over TLS the proper end is the peer's `close_notify`. rsyslog (gnutls) answers ours by
/// closing the TCP connection without one, so an orderly TCP close that follows our
/// `close_notify` is taken as the collector having read everything too. RFC 5425 has no
/// acknowledgement: an on-path attacker who swallows the tail of a batch and then closes
/// in order after us cannot be told from that (a reset or an earlier end can).
fn drain_until_closed(stream: &mut (impl io::Read + ?Sized)) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// A syslog collector as a destination of [`crate::delivery::Delivery`]: records become
/// RFC 5424 messages on one connection per batch, confirmed when the collector closed
/// the connection after reading everything (TCP, TLS); UDP has no acknowledgement.
#[derive(Debug)]
pub struct SyslogTransport {
    target: Target,
    origin: String,
    connection: Option<Connection>,
    send_deadline: Instant,
    /// The most records and bytes this batch carries ([`Pace`]).
    max_records: u64,
    max_bytes: usize,
    /// Records and message bytes handed to the connection in this batch.
    sent_records: u64,
    sent_bytes: usize,
    /// The largest message sent whole ([`DEFAULT_MAX_MESSAGE_BYTES`]).
    max_message: usize,
    /// The records of this batch that went as stand-ins: (sequence number, size).
    stood_in: Vec<(u64, usize)>,
    /// This batch's largest message over [`MIN_MESSAGE_BYTES`] (sequence number, size),
    /// and the last message's when it is over it: a collector may throw such a one away.
    largest: Option<(u64, usize)>,
    last_large: Option<(u64, usize)>,
    /// How long a batch with a large message waits for a collector that closes by
    /// itself ([`LARGE_BATCH_HOLD`]).
    hold: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Udp(_) => "udp",
            Connection::Tcp(_) => "tcp",
            Connection::Tls(_) => "tls",
        })
    }
}

impl SyslogTransport {
    /// `origin` is the trail's origin, sent with every message as part of its dedup key.
    pub fn new(target: Target, origin: String) -> SyslogTransport {
        SyslogTransport {
            target,
            origin,
            connection: None,
            send_deadline: Instant::now() + SEND_DEADLINE,
            // Unbounded until a run bounds its batches ([`SyslogTransport::with_batch`]),
            // as `audit forward` and the loop of a running guard do.
            max_records: u64::MAX,
            max_bytes: usize::MAX,
            sent_records: 0,
            sent_bytes: 0,
            max_message: DEFAULT_MAX_MESSAGE_BYTES,
            stood_in: Vec::new(),
            largest: None,
            last_large: None,
            hold: LARGE_BATCH_HOLD,
        }
    }

    /// A batch with a large message holds `hold` instead of [`LARGE_BATCH_HOLD`] (a
    /// debug build's test hook, [`TEST_LARGE_BATCH_HOLD_VAR`]).
    pub fn with_hold(mut self, hold: Duration) -> SyslogTransport {
        self.hold = hold;
        self
    }

    /// Messages over `bytes` go as stand-ins (`[forward] max_message_bytes`, checked by
    /// [`check_max_message_bytes`]; clamped to its range here).
    pub fn with_max_message(mut self, bytes: usize) -> SyslogTransport {
        self.max_message = bytes.clamp(MIN_MESSAGE_BYTES, MAX_UDP_MESSAGE);
        self
    }

    /// Sends nothing past `deadline` (a run's whole [`SEND_DEADLINE`], over its batches).
    pub fn until(mut self, deadline: Instant) -> SyslogTransport {
        self.send_deadline = self.send_deadline.min(deadline);
        self
    }

    /// The records this batch sent as stand-ins, (sequence number, message size).
    pub fn stood_in(&self) -> &[(u64, usize)] {
        &self.stood_in
    }

    /// The largest message this transport sends whole.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// This batch carries at most `records` records (at least one), and bytes in
    /// proportion to [`MAX_BATCH_BYTES`].
    pub fn with_batch(mut self, records: u64) -> SyslogTransport {
        self.max_records = records.clamp(1, MAX_BATCH_RECORDS);
        let share = usize::try_from(self.max_records).unwrap_or(usize::MAX);
        let full = usize::try_from(MAX_BATCH_RECORDS).unwrap_or(usize::MAX);
        self.max_bytes = (MAX_BATCH_BYTES / full).saturating_mul(share);
        self
    }

    /// `e`, and when the batch carried a message over [`MIN_MESSAGE_BYTES`], what the
    /// failure may mean and what to do: the collector may take no message that large.
    fn size_hint(&self, e: io::Error) -> io::Error {
        let Some((seq, len)) = self.largest else {
            return e;
        };
        io::Error::new(
            e.kind(),
            format!(
                "{e}; record {seq} is {len} bytes: if the collector takes no message that large (it may have read it and thrown it away), lower [forward] max_message_bytes (now {}): larger records then go as stand-ins",
                self.max_message
            ),
        )
    }

    /// When a batch that carried a large message, confirmed at `now`, stops waiting for
    /// a collector that closes by itself: after the hold, and by the run's deadline at
    /// the latest (a run never outlasts [`SEND_DEADLINE`] for it).
    fn hold_until(&self, now: Instant) -> Option<Instant> {
        self.largest
            .map(|_| (now + self.hold).min(self.send_deadline))
    }

    /// How many records this batch handed to the connection, confirmed or not.
    pub fn attempted(&self) -> u64 {
        self.sent_records
    }
}

impl crate::delivery::Transport for SyslogTransport {
    fn describe(&self) -> String {
        format!("collector {}", self.target.describe())
    }

    fn send(&mut self, line: &[u8], record: &Value) -> io::Result<()> {
        let mut message = message(record, &self.origin);
        let seq = record
            .get("seq")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        if message.len() > self.max_message {
            // A record over the collector's limit (a finding on a path of thousands of
            // characters) would be thrown away unseen or stop delivery for good: the
            // collector gets its stand-in, with the same dedup key.
            self.stood_in.push((seq, message.len()));
            message = stand_in(record, line, &self.origin, message.len(), self.max_message);
        }
        let large = (message.len() > MIN_MESSAGE_BYTES).then_some((seq, message.len()));
        if large.is_some_and(|(_, len)| self.largest.is_none_or(|(_, most)| len > most)) {
            self.largest = large;
        }
        self.last_large = large;
        let conn = match &mut self.connection {
            Some(conn) => conn,
            None => self
                .connection
                .insert(Connection::open(&self.target, self.send_deadline)?),
        };
        self.sent_records += 1;
        self.sent_bytes = self.sent_bytes.saturating_add(message.len());
        conn.send(&message).map_err(|e| self.size_hint(e))
    }

    /// At its records or bytes ([`SyslogTransport::with_batch`]), or past
    /// [`SEND_DEADLINE`], the batch stops: what was sent is confirmed (or not) as a batch
    /// of its own, the rest waits for the next run.
    fn batch_full(&self) -> bool {
        self.sent_records >= self.max_records
            || (self.sent_records > 0 && self.sent_bytes >= self.max_bytes)
            || Instant::now() >= self.send_deadline
    }

    fn confirm(&mut self, _after: crate::delivery::Cursor) -> io::Result<()> {
        match self.connection.take() {
            Some(mut conn) => {
                // A collector that reads a message over its limit and throws it away
                // closes in order after it, which RFC 5425 cannot tell from delivery:
                // a batch that ends with a message over the size every receiver takes
                // ends with a small mark after it, read only if the collector read on.
                if let Some((seq, len)) = self.last_large {
                    conn.send(&batch_mark(&self.origin, seq, len))
                        .map_err(|e| self.size_hint(e))?;
                }
                let hold_until = self.hold_until(Instant::now());
                conn.finish(hold_until).map_err(|e| self.size_hint(e))
            }
            None => Ok(()),
        }
    }
}

/// A syslog collector as one destination of [`crate::delivery`], batch after batch: each
/// batch a transport (a connection) of its own, sized by the destination's [`Pace`], with
/// its `max_message_bytes`, hold and deadline; the stand-ins of each confirmed batch
/// handed back to be said and recorded. The one maker of syslog batches for `audit
/// forward`, `watch` and `serve` (session 35: each had its own copy of this).
#[derive(Debug)]
pub struct SyslogDestination {
    target: Target,
    /// The trail's origin, part of each message's dedup key.
    origin: String,
    /// The name of its cursor.
    destination: String,
    max_message: usize,
    hold: Duration,
    /// The end of the run (`audit forward`'s one [`SEND_DEADLINE`]), if it has one.
    deadline: Option<Instant>,
    pace: Pace,
    batch: Option<SyslogTransport>,
}

impl SyslogDestination {
    /// `target` under the cursor `destination`; messages over `max_message` bytes go as
    /// stand-ins; `hold`: [`LARGE_BATCH_HOLD`] (or a debug build's test value).
    pub fn new(
        target: Target,
        origin: String,
        destination: String,
        max_message: usize,
        hold: Duration,
    ) -> SyslogDestination {
        SyslogDestination {
            target,
            origin,
            destination,
            max_message: max_message.clamp(MIN_MESSAGE_BYTES, MAX_UDP_MESSAGE),
            hold,
            deadline: None,
            pace: Pace::default(),
            batch: None,
        }
    }

    /// No batch sends past `deadline`.
    pub fn until(mut self, deadline: Instant) -> SyslogDestination {
        self.deadline = Some(deadline);
        self
    }

    /// The name of its cursor.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// How it is named in messages and on the trail.
    pub fn whom(&self) -> String {
        format!(
            "the collector {} (destination {})",
            self.target.describe(),
            self.destination
        )
    }

    /// The largest message sent whole.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The transport of the next batch: a new one each time (each batch is a connection
    /// of its own, and a transport's send deadline runs from its making).
    pub fn next_batch(&mut self) -> &mut SyslogTransport {
        let mut batch = SyslogTransport::new(self.target.clone(), self.origin.clone())
            .with_batch(self.pace.budget())
            .with_max_message(self.max_message)
            .with_hold(self.hold);
        if let Some(deadline) = self.deadline {
            batch = batch.until(deadline);
        }
        self.batch.insert(batch)
    }

    /// The last batch was confirmed (`caught_up`: nothing is left to send): the next is
    /// bigger; returns the records it sent as stand-ins (sequence number, size).
    pub fn delivered(&mut self, caught_up: bool) -> &[(u64, usize)] {
        self.pace.delivered(caught_up);
        self.batch.as_ref().map_or(&[], SyslogTransport::stood_in)
    }

    /// The last batch failed: a smaller one next, or a longer wait when there is nothing
    /// to shrink ([`Pace`]); returns the wait, `first` at least.
    pub fn failed(&mut self, first: Duration) -> Duration {
        let attempted = self.batch.as_ref().map_or(0, SyslogTransport::attempted);
        self.pace.failed(attempted, first)
    }

    /// Whether the batch that failed last may pass smaller (it carried more than one
    /// record).
    pub fn may_shrink(&self) -> bool {
        self.batch.as_ref().is_some_and(|t| t.attempted() > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Value {
        serde_json::json!({
            "seq": 7, "host": "pacs 01", "time": "2026-11-28T22:56:10.739395Z",
            "actor": {"user": "root", "uid": 0}, "action": "check", "outcome": "findings",
            "finding": {"path": "/srv/pacs/a.dcm", "kind": "content-changed", "severity": "alert", "detail": "x"}
        })
    }

    /// Review of session 34: over plain TCP, bytes from the collector ended the hold as
    /// if it had passed; a collector that sends something and then closes did not read
    /// on to our end, and the hold must see its close.
    #[test]
    fn bytes_from_a_tcp_collector_do_not_end_the_hold() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let collector = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            stream.write_all(b"unexpected").expect("write");
            // Dropped: an orderly close after its bytes.
        });
        let far = Instant::now() + Duration::from_secs(600);
        let mut conn = Connection::open(&Target::Tcp(addr.to_string()), far).expect("connect");
        collector.join().expect("collector");
        let held = conn.hold(far);
        assert!(held.is_err(), "its close after its bytes is seen: {held:?}");
    }

    /// Review of session 34: the hold ended at [`LARGE_BATCH_HOLD`] whatever the run's
    /// deadline; it ends at the earlier of the two, and only a batch with a large
    /// message holds.
    #[test]
    fn the_hold_ends_by_the_run_s_deadline() {
        let now = Instant::now();
        let t = SyslogTransport::new(Target::Tcp("127.0.0.1:9".into()), "o".into())
            .with_hold(Duration::from_secs(30))
            .until(now + Duration::from_secs(1));
        assert_eq!(t.hold_until(now), None, "no large message, no hold");
        let mut t = t;
        t.largest = Some((7, 5000));
        assert_eq!(t.hold_until(now), Some(now + Duration::from_secs(1)));
        let t = t.until(now + Duration::from_secs(60));
        assert_eq!(t.hold_until(now), Some(now + Duration::from_secs(1)));
        let mut wide = SyslogTransport::new(Target::Tcp("127.0.0.1:9".into()), "o".into())
            .until(now + Duration::from_secs(60));
        wide.largest = Some((7, 5000));
        assert_eq!(wide.hold_until(now), Some(now + LARGE_BATCH_HOLD));
    }

    #[test]
    fn messages_follow_rfc5424_and_carry_the_dedup_key() {
        let text = String::from_utf8(message(&record(), "pacsguard-pacs\"01]")).expect("utf-8");
        // authpriv (10) * 8 + alert (1)
        assert!(
            text.starts_with("<81>1 2026-11-28T22:56:10.739395Z pacs_01 pacsguard - IHE+RFC-3881 "),
            "{text}"
        );
        assert!(
            text.contains(
                "[pacsguard@32473 seq=\"7\" origin=\"pacsguard-pacs\\\"01\\]\" action=\"check\" severity=\"alert\"] \u{feff}<?xml"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_oversized_record_becomes_a_stand_in_with_the_same_key() {
        let mut big = record();
        big["detail"] = Value::String("&".repeat(MAX_UDP_MESSAGE));
        assert!(message(&big, "o").len() > MAX_UDP_MESSAGE);
        let stand_in =
            String::from_utf8(stand_in(&big, b"line", "o", 123_456, 4096)).expect("utf-8");
        assert!(stand_in.len() <= 4096, "{stand_in}");
        assert!(
            stand_in.contains("seq=\"7\"")
                && stand_in.contains("123456 bytes")
                && stand_in.contains("max_message_bytes 4096")
                && stand_in.contains("audit show")
                && stand_in.contains(blake3::hash(b"line").to_hex().as_str()),
            "{stand_in}"
        );
    }

    /// Session 35: a stand-in carried neither action nor path, so a collector's rule on
    /// them (the EventTypeCode of the action or finding kind, the object's URI) never
    /// fired for the very records that are largest: findings on long paths. It is a DICOM
    /// audit message of its own, with the record's action, kind, severity and path (cut
    /// to fit, marked), within the limit.
    #[test]
    fn a_stand_in_carries_the_action_severity_and_path_a_collector_rule_needs() {
        let mut big = record();
        let long = format!("/srv/pacs/{}/a.dcm", "d".repeat(9000));
        big["finding"]["path"] = Value::String(long.clone());
        let full = message(&big, "o");
        assert!(full.len() > 9000);
        for limit in [MIN_MESSAGE_BYTES, 4096] {
            let text =
                String::from_utf8(stand_in(&big, b"line", "o", full.len(), limit)).expect("utf-8");
            assert!(text.len() <= limit, "{} > {limit}: {text}", text.len());
            // The same rule that fires on the whole message fires on its stand-in.
            for rule in [
                "csd-code=\"content-changed\" codeSystemName=\"PacsGuard\"",
                "ParticipantObjectID=\"file:///srv/pacs/ddd",
                "seq=\"7\"",
                "action=\"check\"",
                "severity=\"alert\"",
            ] {
                assert!(
                    full.windows(rule.len()).any(|w| w == rule.as_bytes()),
                    "whole: {rule}"
                );
                assert!(text.contains(rule), "stand-in lacks {rule}: {text}");
            }
            assert!(text.starts_with("<81>1 "), "the alert's priority: {text}");
            assert!(
                text.contains("[cut at ") && text.contains(&format!("of {} bytes", long.len())),
                "the cut is marked: {text}"
            );
            assert!(text.contains("stand-in=\"true\""), "{text}");
        }
    }

    /// Session 36's note: a gateway query's stand-in was typed a transfer (DCM 110104):
    /// the type was read from the stand-in's own detail, which no longer began as the
    /// query's. A stand-in carries the type of the record it stands for.
    #[test]
    fn a_stand_in_carries_the_dicom_event_type_of_the_record_it_stands_for() {
        let query = serde_json::json!({
            "seq": 9, "host": "pacs 01", "time": "2026-11-28T22:56:10.739395Z",
            "actor": {"user": "gateway", "uid": 0}, "action": "gateway", "outcome": "success",
            "objects": [format!("dicom://MODALITY{}", "q".repeat(9000))],
            "detail": "query: C-FIND (Message ID 1) on 1.2.840.10008.5.1.4.1.2.2.1, relayed"
        });
        let full = message(&query, "o");
        let typed = "csd-code=\"110112\" codeSystemName=\"DCM\" originalText=\"Query\"";
        assert!(full.windows(typed.len()).any(|w| w == typed.as_bytes()));
        for limit in [MIN_MESSAGE_BYTES, 4096] {
            let text = String::from_utf8(stand_in(&query, b"line", "o", full.len(), limit))
                .expect("utf-8");
            assert!(text.len() <= limit, "{} > {limit}", text.len());
            assert!(text.contains("stand-in=\"true\""), "{text}");
            assert!(text.contains(typed), "the query's type: {text}");
            assert!(!text.contains("csd-code=\"110104\""), "{text}");
        }
    }

    /// Review rv36-deliver: a record naming several paths (a profile of 13 roots) went
    /// as a stand-in carrying only the first, unmarked. It carries as many as fit, and
    /// says how many were left out.
    #[test]
    fn a_stand_in_carries_as_many_paths_as_fit_and_says_how_many_were_left_out() {
        let mut big = record();
        let paths: Vec<Value> = (0..13)
            .map(|i| Value::String(format!("/srv/root-{i:02}-{}", "x".repeat(60))))
            .collect();
        big["objects"] = Value::Array(paths);
        big["detail"] = Value::String("y".repeat(9000));
        let full = message(&big, "o");
        for limit in [MIN_MESSAGE_BYTES, 4096, 8192] {
            let text =
                String::from_utf8(stand_in(&big, b"line", "o", full.len(), limit)).expect("utf-8");
            assert!(text.len() <= limit, "{} > {limit}", text.len());
            let carried = (0..13)
                .filter(|i| text.contains(&format!("file:///srv/root-{i:02}-")))
                .count();
            // At 2048 bytes an object's XML (its path twice) leaves room for one at most.
            assert!(
                limit == MIN_MESSAGE_BYTES || carried > 1,
                "at {limit}: {carried} path(s): {text}"
            );
            if carried == 0 {
                assert!(text.contains("all 13 of its paths left out"), "{text}");
            } else if carried < 13 {
                assert!(
                    text.contains(&format!("{} of its 13 paths left out", 13 - carried)),
                    "at {limit}: {text}"
                );
            } else {
                assert!(!text.contains("left out"), "{text}");
            }
        }
    }

    /// Review rv36-deliver: a cut right after a `\\` escape took its second `\` for the
    /// start of an escape and left its first behind. No cut leaves part of an escape.
    #[test]
    fn a_cut_never_leaves_part_of_an_escape() {
        let text = format!("/a{}", r"\\b\xffc\u{1f600}d".repeat(40));
        for keep in 0..text.len() {
            let cut = cut_marked(&text, keep);
            let kept = cut.rfind("[cut at ").map_or(cut.as_str(), |at| &cut[..at]);
            assert!(text.starts_with(kept), "keep {keep}: {cut}");
            // What is kept is whole escapes: each `\` begins one that ends within it.
            let mut from = 0;
            while let Some(off) = kept[from..].find('\\') {
                let at = from + off;
                let len = escape_len(&kept[at..]);
                assert!(len > 1, "keep {keep}: part of an escape in {kept:?}");
                from = at + len;
            }
        }
    }

    /// Review rv38-console: a stand-in kept a path's head only, which an attacker
    /// chooses: directories of `]"é…` pushed a web shell's name out of the message. The
    /// tail (the file's name) is kept too, and no cut leaves part of an escape.
    #[test]
    fn a_stand_in_keeps_a_paths_tail_too_and_never_half_an_escape() {
        let hostile = format!("/srv/www/{}x.jsp", r#"]\"\u{e9}\xff"#.repeat(300));
        assert!(!cut_path_marked(&hostile, STAND_IN_TAIL_FROM - 1).ends_with("x.jsp"));
        for keep in [
            STAND_IN_TAIL_FROM,
            STAND_IN_MIN_PATH_BYTES,
            200,
            STAND_IN_KEPT_BYTES,
        ] {
            let cut = cut_path_marked(&hostile, keep);
            assert!(cut.starts_with("/srv/www/"), "{cut}");
            assert!(cut.ends_with("x.jsp"), "the file's name is kept: {cut}");
            assert!(
                cut.contains(&format!("of {} bytes, its last ", hostile.len())),
                "{cut}"
            );
        }
        let text = format!("/a{}", r"\\b\xffc\u{1f600}d".repeat(40));
        for keep in 0..text.len() {
            let cut = cut_path_marked(&text, keep);
            let Some(mark) = cut.find("[cut at ") else {
                assert_eq!(cut, text);
                continue;
            };
            let close = mark + cut[mark..].find(']').expect("marked");
            let (head, tail) = (&cut[..mark], &cut[close + 1..]);
            assert!(
                text.starts_with(head) && text.ends_with(tail),
                "keep {keep}: {cut}"
            );
            for part in [head, tail] {
                let mut from = 0;
                while let Some(off) = part[from..].find('\\') {
                    let at = from + off;
                    let len = escape_len(&part[at..]);
                    assert!(len > 1, "keep {keep}: part of an escape in {part:?}");
                    from = at + len;
                }
            }
        }
    }

    /// Which records went as stand-ins is said by sequence number, at most
    /// [`MAX_STAND_INS_LISTED`] of them, the rest counted.
    #[test]
    fn the_stand_ins_are_named_by_sequence_number_up_to_a_limit() {
        assert_eq!(stand_ins_said(&[], 2048, "x"), None);
        let one =
            stand_ins_said(&[(12, 9000)], 2048, "the collector tcp://siem:514").expect("said");
        assert!(
            one.contains("went as stand-ins to the collector tcp://siem:514")
                && one.ends_with("records 12 (9000 bytes)"),
            "{one}"
        );
        let many: Vec<(u64, usize)> = (0..40).map(|seq| (seq, 3000)).collect();
        let said = stand_ins_said(&many, 2048, "x").expect("said");
        assert!(said.starts_with("40 record(s)"), "{said}");
        assert!(said.contains("31 (3000 bytes) and 8 more"), "{said}");
        assert!(!said.contains(" 32 (3000"), "{said}");
    }

    /// Over every transport, a message over the limit goes as its stand-in, and a
    /// limit outside RFC 5425's range is refused with its name.
    #[test]
    fn the_message_limit_is_checked_and_clamped() {
        assert_eq!(check_max_message_bytes(4096), Ok(4096));
        assert!(
            check_max_message_bytes(MIN_MESSAGE_BYTES - 1)
                .expect_err("too small")
                .contains("max_message_bytes")
        );
        assert!(check_max_message_bytes(MAX_UDP_MESSAGE + 1).is_err());
        let t = SyslogTransport::new(Target::Tcp("127.0.0.1:9".into()), "o".into());
        assert_eq!(t.max_message(), DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(t.with_max_message(10).max_message(), MIN_MESSAGE_BYTES);
    }

    /// A failure of a batch that carried a large message says what it may mean.
    #[test]
    fn a_failure_after_a_large_message_names_it_and_the_setting() {
        let target = Target::Tcp("127.0.0.1:9".into());
        let mut t = SyslogTransport::new(target, "o".into()).with_max_message(4096);
        let plain = t.size_hint(io::Error::new(io::ErrorKind::TimedOut, "late"));
        assert_eq!(plain.to_string(), "late");
        t.largest = Some((6, 3000));
        let hinted = t.size_hint(io::Error::new(io::ErrorKind::TimedOut, "late"));
        assert_eq!(hinted.kind(), io::ErrorKind::TimedOut, "its kind kept");
        let text = hinted.to_string();
        assert!(
            text.starts_with("late; record 6 is 3000 bytes")
                && text.contains("lower [forward] max_message_bytes (now 4096)"),
            "{text}"
        );
        let mark = String::from_utf8(batch_mark("o", 6, 3000)).expect("utf-8");
        assert!(
            mark.starts_with("<86>1 - - pacsguard - pacsguard-batch ") && !mark.contains("seq="),
            "{mark}"
        );
    }

    #[test]
    fn a_failed_batch_shrinks_the_next_and_a_collector_that_takes_nothing_is_backed_off() {
        let first = Duration::from_secs(2);
        let mut pace = Pace::default();
        assert_eq!(pace.budget(), MAX_BATCH_RECORDS);
        // 37 records tried, cut short: half next, soon.
        assert_eq!(pace.failed(37, first), first);
        assert_eq!(pace.budget(), 18);
        assert_eq!(pace.failed(18, first), first);
        assert_eq!(pace.failed(9, first), first);
        assert_eq!(pace.budget(), 4);
        // Delivered: it grows, but not to the size that failed last.
        pace.delivered(false);
        assert_eq!(pace.budget(), 8);
        pace.delivered(false);
        assert_eq!(pace.budget(), 8, "below the 9 that failed");
        // Caught up: the bound is lifted.
        pace.delivered(true);
        assert_eq!(pace.budget(), 16);
        // One record refused, or the collector down: ever longer waits, bounded.
        assert_eq!(pace.failed(1, first), first);
        assert_eq!(pace.budget(), 1);
        assert_eq!(pace.failed(0, first), first * 2);
        assert_eq!(pace.failed(0, first), first * 4);
        for _ in 0..40 {
            assert!(pace.failed(0, first) <= MAX_RETRY_BACKOFF);
        }
        assert_eq!(pace.failed(0, first), MAX_RETRY_BACKOFF);
        pace.delivered(false);
        assert_eq!(pace.failed(0, first), first, "a delivery resets the wait");
    }

    #[test]
    fn a_batch_stops_at_its_records_or_bytes_but_carries_one_at_least() {
        use crate::delivery::Transport as _;
        let target = Target::Udp("127.0.0.1:9".into());
        let mut t = SyslogTransport::new(target.clone(), "o".into());
        t.sent_records = MAX_BATCH_RECORDS;
        t.sent_bytes = MAX_BATCH_BYTES;
        assert!(!t.batch_full(), "audit forward's one run is not cut");
        let mut t = SyslogTransport::new(target.clone(), "o".into()).with_batch(3);
        assert!(!t.batch_full());
        t.sent_records = 3;
        assert!(t.batch_full(), "MAX records");
        let mut t = SyslogTransport::new(target, "o".into()).with_batch(1);
        t.sent_bytes = MAX_BATCH_BYTES;
        assert!(!t.batch_full(), "the first record goes, however large");
        t.sent_records = 1;
        assert!(t.batch_full());
        let mut t = t.with_batch(MAX_BATCH_RECORDS);
        t.sent_records = 1;
        t.sent_bytes = MAX_BATCH_BYTES;
        assert!(t.batch_full(), "MAX_BATCH_BYTES");
    }

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        assert_eq!(frame("é".as_bytes()), b"2 \xc3\xa9");
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("udp://127.0.0.1:514", None, None),
            Ok(Target::Udp("127.0.0.1:514".into()))
        );
        assert_eq!(
            Target::parse("tcp://[::1]:6514", None, None),
            Ok(Target::Tcp("[::1]:6514".into()))
        );
        assert!(
            Target::parse("tls://siem:6514", None, None).is_err(),
            "TLS without a CA"
        );
        assert!(Target::parse("syslog.example:514", None, None).is_err());
        assert!(
            Target::parse("tcp://siem:514", Some("ca.pem".into()), None).is_err(),
            "TLS options on plain TCP"
        );
        assert_eq!(host_of("[::1]:6514"), "::1");
        assert_eq!(host_of("siem.example:6514"), "siem.example");
    }
}
