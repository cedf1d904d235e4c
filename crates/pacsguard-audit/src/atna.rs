//! DICOM audit messages (PS3.15 Annex A.5) from trail records, for audit repositories and
//! SIEMs that speak IHE ATNA.
//!
//! Every PacsGuard record is a security event, so each becomes a Security Alert (DCM
//! 110113). The event type says what kind: Security Configuration (110129) for `init`,
//! `profile` and `accept`, which change what is trusted; Object Security Attributes
//! Changed (110135) for `metadata-changed`; Audit Recording Stopped (110133) for a record
//! cut short by a crash; Login (110122), Logout (110123) and User Security Attributes
//! Changed (110137) for the console's sign-ins, sign-outs and account changes; and
//! always PacsGuard's own code (the action or finding kind) so
//! nothing is lost in translation. Alerts are serious failures (outcome 8), warnings minor
//! ones (4). Paths are participant objects identified by `file://` URI.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

/// Text for XML. Record strings are already escaped where they hold paths; free text (a
/// reason) may still hold control characters, which XML 1.0 does not allow at all: they
/// are written as `\u{XXXX}`, like everywhere else. Then XML's own escaping.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The `file://` URI of a path as records hold it (escaped by `escape_bytes`): the escapes
/// are undone to the path's real bytes, and every byte but RFC 3986's unreserved
/// characters and `/` is percent-encoded, so a space, `#`, `%` or `?` in a file name
/// cannot change what the URI names.
fn file_uri(recorded: &str) -> String {
    let mut uri = String::from("file://");
    for byte in unescape(recorded) {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(byte as char);
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri
}

/// The bytes `escape_bytes` escaped: `\\`, `\xNN` and `\u{X...}`; anything else as it is.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('\\') {
            out.push(b'\\');
            rest = after;
        } else if let Some(byte) = tail
            .strip_prefix('x')
            .and_then(|h| h.get(..2))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            rest = &tail[3..];
        } else if let Some((c, len)) = tail.strip_prefix("u{").and_then(|h| {
            let end = h.find('}')?;
            let c = char::from_u32(u32::from_str_radix(&h[..end], 16).ok()?)?;
            Some((c, end + 3))
        }) {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &tail[len..];
        } else {
            out.push(b'\\');
            rest = tail;
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The words a witness re-initialised by a person begins its record with: the one
/// place they are written (the engine writes the record with them, the event type is
/// told by them).
pub const WITNESS_REINIT_WORDS: &str = "audit trail: witness re-initialised by a person";

/// The words a new trail begun by a person after the old one was found gone begins its
/// record with (see [`WITNESS_REINIT_WORDS`]).
pub const TRAIL_REINIT_WORDS: &str = "audit trail re-initialised by a person";

/// (csd-code, codeSystemName, originalText) of the DCM event type, if one fits.
fn dcm_event_type(
    action: &str,
    kind: &str,
    outcome: &str,
    detail: &str,
) -> Option<(&'static str, &'static str)> {
    match (action, kind) {
        // A C-FIND, C-GET or C-MOVE request the gateway relayed (issue 16).
        ("gateway", "") if detail.starts_with("query: ") => Some(("110112", "Query")),
        // Break-glass: its start is an `emergency-access` alert, its end a success.
        ("emergency", "emergency-access") => Some(("110127", "Emergency Override Started")),
        ("emergency", "") if outcome == "success" => Some(("110138", "Emergency Override Stopped")),
        ("init" | "profile" | "accept", "") => Some(("110129", "Security Configuration")),
        // The console's records (issue 13): DICOM's user authentication event types.
        ("login", _) => Some(("110122", "Login")),
        ("logout", _) => Some(("110123", "Logout")),
        ("account", _) => Some(("110137", "User Security Attributes Changed")),
        // The gateway (issue 16): associations and the instances relayed over them; a
        // refusal is told by its outcome (failure) under the Security Alert event ID.
        ("gateway", "") => Some(("110104", "DICOM Instances Transferred")),
        (_, "metadata-changed") => Some(("110135", "Object Security Attributes Changed")),
        // The trail's delivery (stand-ins, outages, a stop's records not confirmed, an
        // empty `fleet/`): recording went on, so no DICOM type fits but the Security
        // Alert itself and PacsGuard's own code; never 110133 (review rv36-deliver: a
        // SIEM rule on "recording stopped" fired after every stand-in).
        ("delivery", _) => None,
        // The trail's own records (session 37's open point: every one was 110133): an
        // edit of the [audit]/[watch] settings and a witness re-initialised change what
        // is trusted; a new trail after one found gone starts recording; what a crash or
        // a full disk cut short (a torn record, records maybe unrecorded at a stop) and
        // the trail found gone are recording stopped.
        ("audit", "config-differs") => Some(("110129", "Security Configuration")),
        ("audit", "") if detail.starts_with(WITNESS_REINIT_WORDS) => {
            Some(("110129", "Security Configuration"))
        }
        ("audit", "") if detail.starts_with(TRAIL_REINIT_WORDS) => {
            Some(("110134", "Audit Recording Started"))
        }
        ("audit", _) => Some(("110133", "Audit Recording Stopped")),
        _ => None,
    }
}

fn action_code(action: &str) -> &'static str {
    match action {
        // A quarantine copy and a sanitized file are new objects.
        "init" | "profile" | "quarantine" | "sanitize" => "C",
        "accept" => "U",
        _ => "E",
    }
}

fn outcome_indicator(record: &Value) -> &'static str {
    match (
        str_of(record, "outcome"),
        record.get("finding").map(|f| str_of(f, "severity")),
    ) {
        (_, Some("alert")) | ("failure", _) => "8",
        (_, Some("warning")) | ("findings", None) => "4",
        _ => "0",
    }
}

/// The DICOM event type (DCM csd-code, meaning) of a trail record, if one fits.
pub fn dcm_event_type_of(record: &Value) -> Option<(&'static str, &'static str)> {
    let kind = record
        .get("finding")
        .filter(|f| f.is_object())
        .map_or("", |f| str_of(f, "kind"));
    dcm_event_type(
        str_of(record, "action"),
        kind,
        str_of(record, "outcome"),
        str_of(record, "detail"),
    )
}

/// One `AuditMessage` document for one trail record.
pub fn audit_message(record: &Value) -> String {
    audit_message_typed(record, dcm_event_type_of(record))
}

/// One `AuditMessage` document for `record` with the DICOM event type `dcm_type`: a
/// stand-in describes a record it has cut, so its type is the one of the record it
/// stands for (a gateway query's stand-in was typed a transfer, 110104: its detail no
/// longer began as the query's).
pub fn audit_message_typed(record: &Value, dcm_type: Option<(&str, &str)>) -> String {
    let action = str_of(record, "action");
    let finding = record.get("finding").filter(|f| f.is_object());
    let kind = finding.map_or("", |f| str_of(f, "kind"));
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuditMessage>\n");
    let _ = writeln!(
        x,
        "  <EventIdentification EventActionCode=\"{}\" EventDateTime=\"{}\" EventOutcomeIndicator=\"{}\">",
        action_code(action),
        text(str_of(record, "time")),
        outcome_indicator(record)
    );
    x.push_str("    <EventID csd-code=\"110113\" codeSystemName=\"DCM\" originalText=\"Security Alert\"/>\n");
    if let Some((code, meaning)) = dcm_type {
        let _ = writeln!(
            x,
            "    <EventTypeCode csd-code=\"{code}\" codeSystemName=\"DCM\" originalText=\"{meaning}\"/>"
        );
    }
    let own = if kind.is_empty() { action } else { kind };
    let _ = writeln!(
        x,
        "    <EventTypeCode csd-code=\"{0}\" codeSystemName=\"PacsGuard\" originalText=\"{0}\"/>",
        text(own)
    );
    let detail = str_of(record, "detail");
    if !detail.is_empty() {
        let _ = writeln!(
            x,
            "    <EventOutcomeDescription>{}</EventOutcomeDescription>",
            text(detail)
        );
    }
    x.push_str("  </EventIdentification>\n");

    let host = text(str_of(record, "host"));
    let actor = record.get("actor").cloned().unwrap_or(Value::Null);
    let user = text(str_of(&actor, "user"));
    let uid = actor
        .get("uid")
        .and_then(Value::as_u64)
        .map_or(String::new(), |u| format!(" AlternativeUserID=\"{u}\""));
    let sudo = actor
        .get("sudo_user")
        .and_then(Value::as_str)
        .map_or(String::new(), |s| format!(" UserName=\"{}\"", text(s)));
    let _ = writeln!(
        x,
        "  <ActiveParticipant UserID=\"{user}\"{uid}{sudo} UserIsRequestor=\"true\" NetworkAccessPointID=\"{host}\" NetworkAccessPointTypeCode=\"1\"/>"
    );
    let _ = writeln!(
        x,
        "  <ActiveParticipant UserID=\"pacsguard\" UserIsRequestor=\"false\" NetworkAccessPointID=\"{host}\" NetworkAccessPointTypeCode=\"1\"/>"
    );
    let _ = writeln!(x, "  <AuditSourceIdentification AuditSourceID=\"{host}\">");
    x.push_str("    <AuditSourceTypeCode csd-code=\"4\"/>\n  </AuditSourceIdentification>\n");

    let mut paths: Vec<&str> = record
        .get("objects")
        .and_then(Value::as_array)
        .map_or(Vec::new(), |o| o.iter().filter_map(Value::as_str).collect());
    if let Some(path) = finding.and_then(|f| f.get("path")).and_then(Value::as_str)
        && !paths.contains(&path)
    {
        paths.push(path);
    }
    for path in paths {
        let _ = writeln!(
            x,
            "  <ParticipantObjectIdentification ParticipantObjectID=\"{0}\" ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"13\">",
            text(&file_uri(path))
        );
        x.push_str("    <ParticipantObjectIDTypeCode csd-code=\"12\" codeSystemName=\"RFC-3881\" originalText=\"URI\"/>\n");
        let _ = writeln!(
            x,
            "    <ParticipantObjectName>{}</ParticipantObjectName>",
            text(path)
        );
        let mut details: Vec<(&str, String)> = vec![(
            "pacsguard-seq",
            record.get("seq").map_or(String::new(), ToString::to_string),
        )];
        if let Some(reason) = record.get("reason").and_then(Value::as_str) {
            details.push(("pacsguard-reason", reason.to_string()));
        }
        if let Some(f) = finding.filter(|f| f.get("path").and_then(Value::as_str) == Some(path)) {
            for key in ["kind", "severity", "root", "from", "format"] {
                if let Some(v) = f.get(key).and_then(Value::as_str) {
                    details.push((key, v.to_string()));
                }
            }
            if let Some(fields) = f.get("fields").and_then(Value::as_array) {
                let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
                details.push(("fields", fields.join(",")));
            }
        }
        for (name, value) in details {
            let _ = writeln!(
                x,
                "    <ParticipantObjectDetail type=\"{}\" value=\"{}\"/>",
                text(name),
                B64.encode(value.as_bytes())
            );
        }
        x.push_str("  </ParticipantObjectIdentification>\n");
    }
    x.push_str("</AuditMessage>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_percent_encoded_uris_of_the_real_bytes() {
        assert_eq!(
            file_uri("/srv/pacs/CT 1/a.dcm"),
            "file:///srv/pacs/CT%201/a.dcm"
        );
        assert_eq!(
            file_uri("/x/50%#?&\"<.dcm"),
            "file:///x/50%25%23%3F%26%22%3C.dcm"
        );
        // Escaped bytes are decoded first: one byte 0xff, a newline, a backslash, é.
        assert_eq!(
            file_uri("/x/\\xff\\u{000a}\\\\é"),
            "file:///x/%FF%0A%5C%C3%A9"
        );
        // Something that only looks like an escape is kept.
        assert_eq!(file_uri("/x/\\q"), "file:///x/%5Cq");
        let record = serde_json::json!({"seq": 1, "action": "check", "objects": ["/a b/c#d"]});
        assert!(audit_message(&record).contains("ParticipantObjectID=\"file:///a%20b/c%23d\""));
    }

    /// A record of the trail's delivery (stand-ins named, an outage, an empty `fleet/`)
    /// is no "Audit Recording Stopped": recording went on (review rv36-deliver: every
    /// stand-in fired a SIEM's rule on 110133). A record cut short by a crash still is.
    #[test]
    fn delivery_records_are_not_audit_recording_stopped() {
        let delivery = serde_json::json!({"seq": 9, "action": "delivery", "outcome": "success",
            "detail": "syslog delivery: 1 record(s) over max_message_bytes 2048 went as stand-ins"});
        let message = audit_message(&delivery);
        assert!(!message.contains("110133"), "{message}");
        assert!(
            message.contains("csd-code=\"110113\"")
                && message.contains("codeSystemName=\"PacsGuard\" originalText=\"delivery\""),
            "{message}"
        );
        let torn = serde_json::json!({"seq": 2, "action": "audit", "outcome": "success",
            "detail": "audit trail: a torn record was discarded"});
        assert!(audit_message(&torn).contains("110133"));
    }

    /// Session 37's open point: every `audit` record was 110133 Audit Recording Stopped,
    /// so a SIEM rule on it fired at a settings edit, a witness re-initialised and a new
    /// trail begun. Each now carries the type of what happened.
    #[test]
    fn the_trails_own_records_carry_the_type_of_what_happened() {
        let record = |detail: String, kind: Option<&str>| {
            let mut record = serde_json::json!({"seq": 3, "action": "audit",
                "outcome": "success", "detail": detail});
            if let Some(kind) = kind {
                record["finding"] = serde_json::json!({"kind": kind, "severity": "warning",
                    "path": "/home/config.toml"});
            }
            dcm_event_type_of(&record).map(|(code, _)| code)
        };
        let settings = record(
            "the [audit] or [watch] settings differ".into(),
            Some("config-differs"),
        );
        assert_eq!(settings, Some("110129"));
        let witness = record(
            format!("{WITNESS_REINIT_WORDS} (it held no checkpoint)"),
            None,
        );
        assert_eq!(witness, Some("110129"));
        let new_trail = record(
            format!("{TRAIL_REINIT_WORDS} after it was found gone"),
            None,
        );
        assert_eq!(new_trail, Some("110134"));
        let gone = record("the audit trail is gone".into(), Some("trail-reset"));
        assert_eq!(gone, Some("110133"));
        let unsigned = record(
            "audit trail: 3 record(s) after the last checkpoint".into(),
            None,
        );
        assert_eq!(unsigned, Some("110133"));
    }

    /// The gateway's query records carry 110112 Query; its other records 110104.
    #[test]
    fn gateway_queries_carry_the_query_code() {
        let query = serde_json::json!({"seq": 1, "action": "gateway", "outcome": "success",
            "detail": "query: C-FIND-RQ (Message ID 1) on 1.2.840.10008.5.1.4.1.2.2.1, relayed"});
        let message = audit_message(&query);
        assert!(
            message.contains(
                "<EventTypeCode csd-code=\"110112\" codeSystemName=\"DCM\" originalText=\"Query\""
            ),
            "{message}"
        );
        let relayed = serde_json::json!({"seq": 2, "action": "gateway", "outcome": "success",
            "detail": "relayed C-STORE of 1.2.3"});
        assert!(audit_message(&relayed).contains("csd-code=\"110104\""));
    }

    /// PS3.16 CID 403 (DICOM Audit Event Type Codes): 110127 Emergency Override Started,
    /// 110138 Emergency Override Stopped.
    #[test]
    fn break_glass_records_carry_the_emergency_override_codes() {
        let started = serde_json::json!({"seq": 1, "action": "emergency", "outcome": "findings",
            "finding": {"kind": "emergency-access", "severity": "alert"}});
        let message = audit_message(&started);
        assert!(message.contains("<EventTypeCode csd-code=\"110127\" codeSystemName=\"DCM\" originalText=\"Emergency Override Started\""), "{message}");
        let stopped = serde_json::json!({"seq": 2, "action": "emergency", "outcome": "success"});
        let message = audit_message(&stopped);
        assert!(message.contains("<EventTypeCode csd-code=\"110138\" codeSystemName=\"DCM\" originalText=\"Emergency Override Stopped\""), "{message}");
        let request = serde_json::json!({"seq": 3, "action": "emergency", "outcome": "started"});
        assert!(
            !audit_message(&request).contains("codeSystemName=\"DCM\" originalText=\"Emergency")
        );
    }

    #[test]
    fn console_records_carry_dicom_login_and_logout_codes() {
        for (action, code) in [
            ("login", "110122"),
            ("logout", "110123"),
            ("account", "110137"),
        ] {
            let record = serde_json::json!({"seq": 1, "action": action, "outcome": "success"});
            let message = audit_message(&record);
            assert!(
                message.contains(&format!(
                    "<EventTypeCode csd-code=\"{code}\" codeSystemName=\"DCM\""
                )),
                "{action}: {message}"
            );
        }
    }
}
