//! What a host recorded about a profile generation waiting for approval (issue 14,
//! session 45, review rv44-fleet case13 "approvals blind"): the Hosts page showed only a
//! generation, a time and a digest, so an approver approved blind. The host already
//! delivers the record that signed the generation (its `profile` or `accept`, with who,
//! when, the roots or paths, the reason, and for an acceptance the differences it took
//! in, each a record just before it), signed and witnessed with the rest of its trail:
//! the console finds it among the host's records it holds and shows it beside the form.
//!
//! The host writes every word of it: shown escaped and bounded, as what the host says,
//! never as what the console verified of the tree.

use std::collections::BTreeMap;

use pacsguard_store::{FleetStore, HostRow, StoreError};

/// The most of a host's newest records searched for the record that signed a generation
/// waiting for approval, per page read: a host with a long trail since costs the page no
/// more; not found within it is said.
pub const MAX_RECORDS_SEARCHED: u64 = 16_384;
/// Records read from the store at a time, newest first.
const WINDOW: u64 = 1_024;
/// The differences of an acceptance read before its record (each a record of its own):
/// past it, the counts are said to be of those read only.
pub const MAX_DIFFERENCES_READ: usize = 4_096;
/// The paths (roots of a profile, first differences of an acceptance) shown.
pub const MAX_PATHS_SHOWN: usize = 5;
/// The characters of one text the host wrote (its detail, reason, a path) shown.
pub const MAX_TEXT_CHARS: usize = 300;
/// The profiles waiting for approval described per page read (each a search of its
/// host's records); past it, said.
pub const MAX_DESCRIBED_PER_PAGE: usize = 20;

/// The record that signed a generation on the host, as the host wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reported {
    /// Its sequence number in the host's trail.
    pub seq: u64,
    /// `profile` (a baseline made) or `accept` (differences taken in).
    pub action: String,
    /// When, by the host's clock.
    pub time: String,
    /// Who ran it on the host: the user, its uid, and who used sudo to become it.
    pub who: String,
    /// Its objects: the roots profiled, or the paths accepted (the first
    /// [`MAX_PATHS_SHOWN`]), and how many there were.
    pub objects: Vec<String>,
    pub objects_count: usize,
    pub detail: String,
    pub reason: Option<String>,
    /// For an acceptance: its differences by kind (`added`, `content-changed`, ...), the
    /// first paths, and whether more were recorded than read.
    pub kinds: BTreeMap<String, u64>,
    pub first_paths: Vec<String>,
    pub partial: bool,
}

/// What the search found for one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Reported(Box<Reported>),
    /// Not among the newest `searched` records the console holds of the host (all it
    /// holds when fewer than [`MAX_RECORDS_SEARCHED`]).
    NotFound {
        searched: u64,
        limit_reached: bool,
    },
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_TEXT_CHARS).collect();
    cut.push('…');
    cut
}

fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(serde_json::Value::as_str)
}

/// The record among `records` (in order) that signed `generation` (a `profile` or
/// `accept` record with outcome `success` naming it), the newest if several, with the
/// differences recorded just before it for an acceptance.
pub fn describe(records: &[(u64, Vec<u8>)], generation: u64) -> Option<Reported> {
    let parsed: Vec<Option<serde_json::Value>> = records
        .iter()
        .map(|(_, line)| serde_json::from_slice(line).ok())
        .collect();
    let signs = |r: &serde_json::Value| {
        matches!(str_of(r, "action"), Some("profile" | "accept"))
            // `findings`: signed, with findings recorded (a profile that screened an
            // executable in the tree, say).
            && matches!(str_of(r, "outcome"), Some("success" | "findings"))
            && r.get("generation").and_then(serde_json::Value::as_u64) == Some(generation)
    };
    let at = parsed
        .iter()
        .rposition(|r| r.as_ref().is_some_and(&signs))?;
    let record = parsed.get(at)?.as_ref()?;
    let action = str_of(record, "action").unwrap_or_default().to_string();
    let actor = record.get("actor");
    let mut who = actor
        .and_then(|a| str_of(a, "user"))
        .map(bounded)
        .unwrap_or_else(|| "unknown".into());
    if let Some(uid) = actor
        .and_then(|a| a.get("uid"))
        .and_then(serde_json::Value::as_u64)
    {
        who.push_str(&format!(" (uid {uid})"));
    }
    if let Some(sudo) = actor.and_then(|a| str_of(a, "sudo_user")) {
        who.push_str(&format!(", through sudo by {}", bounded(sudo)));
    }
    let objects: Vec<&str> = record
        .get("objects")
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    let mut reported = Reported {
        seq: records.get(at).map_or(0, |(seq, _)| *seq),
        action: action.clone(),
        time: str_of(record, "time").map(bounded).unwrap_or_default(),
        who,
        objects: objects
            .iter()
            .take(MAX_PATHS_SHOWN)
            .map(|p| bounded(p))
            .collect(),
        objects_count: objects.len(),
        detail: str_of(record, "detail").map(bounded).unwrap_or_default(),
        reason: str_of(record, "reason").map(bounded),
        ..Reported::default()
    };
    {
        // The differences an acceptance took in, or what a profile found (screening):
        // the finding records of the same action just before it, back to its
        // `started` record (or as many as read).
        let mut paths = Vec::new();
        let mut read = 0usize;
        let mut ended = false;
        for r in parsed[..at].iter().rev() {
            let Some(r) = r else { continue };
            if str_of(r, "action") != Some(action.as_str()) {
                ended = true;
                break;
            }
            if str_of(r, "outcome") == Some("started") {
                ended = true;
                break;
            }
            let Some(finding) = r.get("finding") else {
                continue;
            };
            if read == MAX_DIFFERENCES_READ {
                break;
            }
            read += 1;
            let kind = str_of(finding, "kind").map(bounded).unwrap_or_default();
            *reported.kinds.entry(kind).or_default() += 1;
            if let Some(path) = str_of(finding, "path") {
                paths.push(bounded(path));
            }
        }
        reported.partial = !ended;
        paths.reverse();
        paths.truncate(MAX_PATHS_SHOWN);
        reported.first_paths = paths;
    }
    Some(reported)
}

/// The record of `host`'s trail that signed `generation`, searched among the newest
/// [`MAX_RECORDS_SEARCHED`] records the console holds of it.
pub fn reported_for(
    db: &mut dyn FleetStore,
    host: &HostRow,
    generation: u64,
) -> Result<Found, StoreError> {
    // Sequence numbers run from 1 to the size held.
    let mut end = host.size.saturating_add(1);
    let floor = end.saturating_sub(MAX_RECORDS_SEARCHED).max(1);
    while end > floor {
        let start = end.saturating_sub(WINDOW).max(floor);
        let window = db.host_records_between(host.id, start, end)?;
        if describe(&window, generation).is_some() {
            // The differences of an acceptance found near the window's start lie before
            // it: read again with them.
            let from = start.saturating_sub(MAX_DIFFERENCES_READ as u64).max(1);
            let records = db.host_records_between(host.id, from, end)?;
            if let Some(found) = describe(&records, generation) {
                return Ok(Found::Reported(Box::new(found)));
            }
        }
        end = start;
    }
    let searched = host.size.min(MAX_RECORDS_SEARCHED);
    Ok(Found::NotFound {
        searched,
        limit_reached: host.size > MAX_RECORDS_SEARCHED,
    })
}

/// A text the host wrote as the page shows it: in an element of its own
/// (`host-wrote`), between quotes, its own quotes and backslashes escaped with a
/// backslash, then escaped with `esc`. Shown bare, a reason holding `"; paths …;
/// differences taken in: …` read as the page's own structure (review rv45-fleet, case13).
fn quoted(text: &str, esc: &impl Fn(&str) -> String) -> String {
    let inner = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("<span class=\"host-wrote\">\"{}\"</span>", esc(&inner))
}

/// A kind of difference as shown: bare when it is a plain name (`content-changed`), as
/// every kind this program writes is; else [`quoted`] (the host wrote it).
fn kind_shown(kind: &str, esc: &impl Fn(&str) -> String) -> String {
    if !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        kind.to_string()
    } else {
        quoted(kind, esc)
    }
}

/// What the page shows of `found` (escaped with `esc`; what the host wrote [`quoted`]).
pub fn shown(found: &Found, generation: u64, esc: impl Fn(&str) -> String) -> String {
    match found {
        Found::NotFound {
            searched,
            limit_reached,
        } => format!(
            "<div class=\"reported none\">No record of the host signing generation {generation} among {} of its records this console holds{}: approve only what you verified on the host.</div>",
            if *limit_reached {
                "the newest "
            } else {
                "the "
            }
            .to_string()
                + &searched.to_string(),
            if *limit_reached {
                format!(" (MAX_RECORDS_SEARCHED, {MAX_RECORDS_SEARCHED})")
            } else {
                String::new()
            }
        ),
        Found::Reported(r) => {
            let mut text = format!(
                "<div class=\"reported\">What the host recorded (record {}, as the host wrote it): <code>{}</code> at {} by {}: {}",
                r.seq,
                esc(&r.action),
                esc(&r.time),
                esc(&r.who),
                quoted(&r.detail, &esc)
            );
            if let Some(reason) = &r.reason {
                text.push_str(&format!("; reason {}", quoted(reason, &esc)));
            }
            if !r.objects.is_empty() {
                let more = r.objects_count.saturating_sub(r.objects.len());
                text.push_str(&format!(
                    "; {} <span class=\"reported-objects\">{}</span>{}",
                    if r.action == "accept" {
                        "paths"
                    } else {
                        "roots"
                    },
                    r.objects
                        .iter()
                        .map(|p| quoted(p, &esc))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
            if r.action == "accept" || !r.kinds.is_empty() {
                let kinds: Vec<String> = r
                    .kinds
                    .iter()
                    .map(|(k, n)| format!("{n} {}", kind_shown(k, &esc)))
                    .collect();
                text.push_str(&format!(
                    "; {}: <span class=\"reported-kinds\">{}</span>{}",
                    if r.action == "accept" {
                        "differences taken in"
                    } else {
                        "findings recorded with it"
                    },
                    if kinds.is_empty() {
                        "none recorded".to_string()
                    } else {
                        kinds.join(", ")
                    },
                    if r.partial {
                        format!(" (of the {MAX_DIFFERENCES_READ} read, MAX_DIFFERENCES_READ: more were recorded)")
                    } else {
                        String::new()
                    }
                ));
                if !r.first_paths.is_empty() {
                    text.push_str(&format!(
                        "; first: {}",
                        r.first_paths
                            .iter()
                            .map(|p| quoted(p, &esc))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            text.push_str("</div>");
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, text: &str) -> (u64, Vec<u8>) {
        (seq, text.as_bytes().to_vec())
    }

    /// Records as a host's `accept` writes them (announce, the differences, the
    /// signature), after a baseline's `profile`.
    fn trail() -> Vec<(u64, Vec<u8>)> {
        vec![
            line(
                1,
                r#"{"seq":1,"time":"2026-12-07T13:03:00Z","actor":{"user":"root","uid":0},"action":"profile","outcome":"started","objects":["/srv/pacs"],"detail":"signing baseline generation 1","generation":1}"#,
            ),
            line(
                2,
                r#"{"seq":2,"time":"2026-12-07T13:03:01Z","actor":{"user":"root","uid":0},"action":"profile","outcome":"success","objects":["/srv/pacs"],"detail":"baseline generation 1 signed: 5 entries in 1 roots; kept for diff","generation":1}"#,
            ),
            line(
                3,
                r#"{"seq":3,"time":"2026-12-07T14:00:00Z","actor":{"user":"root","uid":0,"sudo_user":"mallory"},"action":"accept","outcome":"started","objects":["/srv/pacs"],"detail":"signing","generation":2}"#,
            ),
            line(
                4,
                r#"{"seq":4,"time":"2026-12-07T14:00:00Z","actor":{"user":"root","uid":0},"action":"accept","outcome":"findings","finding":{"path":"/srv/pacs/implant.bin","kind":"added","severity":"alert","detail":"new"},"reason":"vendor update"}"#,
            ),
            line(
                5,
                r#"{"seq":5,"time":"2026-12-07T14:00:00Z","actor":{"user":"root","uid":0},"action":"accept","outcome":"findings","finding":{"path":"/srv/pacs/a.dcm","kind":"content-changed","severity":"alert","detail":"x"},"reason":"vendor update"}"#,
            ),
            line(
                6,
                r#"{"seq":6,"time":"2026-12-07T14:00:01Z","actor":{"user":"root","uid":0,"sudo_user":"mallory"},"action":"accept","outcome":"success","objects":["/srv/pacs/implant.bin","/srv/pacs/a.dcm"],"detail":"2 differences accepted into baseline generation 2","reason":"vendor update","generation":2}"#,
            ),
        ]
    }

    /// Review rv44-fleet case13 (session 45): the approver sees who made the generation,
    /// when, on which roots or paths, why, and the differences an acceptance took in.
    #[test]
    fn the_record_that_signed_a_generation_is_described() {
        let r = describe(&trail(), 2).expect("found");
        assert_eq!(r.seq, 6);
        assert_eq!(r.action, "accept");
        assert_eq!(r.who, "root (uid 0), through sudo by mallory");
        assert_eq!(r.reason.as_deref(), Some("vendor update"));
        assert_eq!(
            r.kinds,
            BTreeMap::from([("added".into(), 1), ("content-changed".into(), 1)])
        );
        assert_eq!(r.first_paths, ["/srv/pacs/implant.bin", "/srv/pacs/a.dcm"]);
        assert!(!r.partial);
        let page = shown(&Found::Reported(Box::new(r)), 2, |s| s.replace('<', "&lt;"));
        assert!(page.contains("1 added, 1 content-changed"), "{page}");
        let r = describe(&trail(), 1).expect("found");
        assert_eq!((r.seq, r.action.as_str()), (2, "profile"));
        assert_eq!(r.objects, ["/srv/pacs"]);
        assert!(r.detail.contains("5 entries"));
        assert_eq!(describe(&trail(), 3), None);
        // Signed with findings (a profile that screened an executable): described, with
        // what it found.
        let lines = vec![
            line(
                16,
                r#"{"action":"profile","outcome":"started","generation":2,"detail":"signing baseline generation 2"}"#,
            ),
            line(
                17,
                r#"{"action":"profile","outcome":"findings","finding":{"path":"/srv/pacs/implant.bin","kind":"executable","severity":"alert"}}"#,
            ),
            line(
                18,
                r#"{"actor":{"user":"root","uid":0},"action":"profile","outcome":"findings","objects":["/srv/pacs"],"detail":"baseline generation 2 signed: 8 entries in 1 roots","generation":2}"#,
            ),
        ];
        let r = describe(&lines, 2).expect("signed with findings");
        assert_eq!(r.seq, 18);
        assert_eq!(r.first_paths, ["/srv/pacs/implant.bin"]);
        let page = shown(&Found::Reported(Box::new(r)), 2, str::to_string);
        assert!(
            page.contains("findings recorded with it: <span class=\"reported-kinds\">1 executable"),
            "{page}"
        );
        // What the host wrote is bounded.
        let long = "p".repeat(MAX_TEXT_CHARS * 3);
        let lines = vec![line(
            1,
            &format!(
                r#"{{"actor":{{"user":"root"}},"action":"profile","outcome":"success","objects":["/{long}"],"detail":"{long}","generation":7}}"#
            ),
        )];
        let r = describe(&lines, 7).expect("found");
        assert_eq!(r.detail.chars().count(), MAX_TEXT_CHARS + 1);
        assert_eq!(r.objects[0].chars().count(), MAX_TEXT_CHARS + 1);
    }

    /// Review rv45-fleet (case13): a reason (or any text the host wrote) with a quote
    /// and words of the page's own ("paths ...; differences taken in: ...") is shown in
    /// an element of its own, its quotes escaped, so it cannot read as the page's
    /// structure around it.
    #[test]
    fn what_the_host_wrote_is_shown_quoted_never_as_the_pages_structure() {
        let lines = vec![line(
            9,
            r#"{"actor":{"user":"root","uid":0},"action":"accept","outcome":"success","objects":["/srv/pacs/junk/implant.dcm"],"detail":"1 differences accepted into baseline generation 3","reason":"CHG-4471 patch\"; paths /srv/pacs/readme.txt ; differences taken in: 1 content-changed \\ \"","generation":3}"#,
        )];
        let r = describe(&lines, 3).expect("found");
        let page = shown(&Found::Reported(Box::new(r)), 3, crate::pages::esc);
        assert!(
            page.contains(
                "; reason <span class=\"host-wrote\">\"CHG-4471 patch\\&quot;; paths /srv/pacs/readme.txt ; differences taken in: 1 content-changed \\\\ \\&quot;\"</span>"
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "<span class=\"reported-objects\"><span class=\"host-wrote\">\"/srv/pacs/junk/implant.dcm\"</span></span>"
            ),
            "{page}"
        );
    }
}
