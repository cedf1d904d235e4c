//! DICOM audit messages (PS3.15 Annex A.5) from trail records, for audit repositories and
//! SIEMs that speak IHE ATNA.
//!
//! Every PacsGuard record is a security event, so each becomes a Security Alert (DCM
//! 110113). The event type says what kind: Security Configuration (110129) for `init`,
//! `profile` and `accept`, which change what is trusted; Object Security Attributes
//! Changed (110135) for `metadata-changed`; Audit Recording Stopped (110133) for a record
//! cut short by a crash; and always PacsGuard's own code (the action or finding kind) so
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

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// (csd-code, codeSystemName, originalText) of the DCM event type, if one fits.
fn dcm_event_type(action: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    match (action, kind) {
        ("init" | "profile" | "accept", "") => Some(("110129", "Security Configuration")),
        (_, "metadata-changed") => Some(("110135", "Object Security Attributes Changed")),
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

/// One `AuditMessage` document for one trail record.
pub fn audit_message(record: &Value) -> String {
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
    if let Some((code, meaning)) = dcm_event_type(action, kind) {
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
            "  <ParticipantObjectIdentification ParticipantObjectID=\"file://{0}\" ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"13\">",
            text(path)
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
