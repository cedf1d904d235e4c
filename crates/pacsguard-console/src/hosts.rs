//! The hosts page: every host enrolled in this console (issue 14), its state, its last
//! contact, how far its trail is witnessed, whether its profile is approved, and what the
//! console last refused of it; and the profiles waiting for an approver, each with its
//! approval form ([`crate::host_approvals`]). The state is the fleet listener's
//! (`pacsguard-fleet`), kept in the store.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::{Extension, Form};
use pacsguard_store::{FleetSetting, HostRow, ProfileRow};
use serde::Deserialize;

use crate::auth::{AuthError, Authenticated};
use crate::host_approvals::{HOST_REQUEST_PREFIX, host_request_key};
use crate::host_reported::MAX_DESCRIBED_PER_PAGE;
use crate::http::{AppState, blocking, failure, html};
use crate::pages::{esc, page};

/// What the page shows, read in one go from the store.
struct Fleet {
    hosts: Vec<HostRow>,
    current: Vec<ProfileRow>,
    pending: Vec<ProfileRow>,
    /// Host approvals waiting for a second approver (four eyes).
    waiting: Vec<crate::decide::PendingAccept>,
    /// The fleet's four-eyes setting for host approvals as this console enforces it
    /// (`None` until read).
    four_eyes: Option<crate::fleet_settings::FourEyesInForce>,
    /// Why approvals awaiting their trail record could not be settled at this read (the
    /// trail could not be read, say): the page is shown all the same.
    unsettled: Option<String>,
    /// Current profiles approved in the store but not on this console's trail (host,
    /// generation, digest): not signed by its listener, offered to approve here.
    unrecorded: Vec<(i64, u64, String)>,
    /// How each host's acknowledgement is shown (host id, what), for those with one in
    /// the store for the refusal standing now.
    acknowledged: Vec<(i64, crate::host_acknowledgements::Shown)>,
    /// Each not revoked host's standing refusal (host id, refusal), for those in one:
    /// its digest shown, and the form that acknowledges it names it.
    standing: Vec<(i64, crate::host_acknowledgements::StandingRefusal)>,
    /// The longest reason an acknowledgement takes now (four eyes or not): the form's
    /// `maxlength` is the limit the console enforces, from one source.
    reason_chars: usize,
    /// Each host's alerts and warnings open on the alerts page (host id, open not
    /// acknowledged, dropped from the page): [`crate::guard::GuardState::host_open`].
    open_alerts: Vec<(i64, (usize, u64))>,
    /// What each host recorded about the generation waiting for approval (host,
    /// generation, what was found), for the first [`MAX_DESCRIBED_PER_PAGE`] of them.
    reported: Vec<(i64, u64, crate::host_reported::Found)>,
}

impl Fleet {
    /// [`Fleet::open_alerts`] of host `h`.
    fn open_alerts(&self, h: &HostRow) -> (usize, u64) {
        self.open_alerts
            .iter()
            .find(|(id, _)| *id == h.id)
            .map_or((0, 0), |(_, n)| *n)
    }
}

async fn hosts_with(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    message: Option<String>,
) -> Response {
    let console = state.console.clone();
    let now = console.clock.now();
    let stepped_up = console.stepped_up(auth);
    let read = blocking(move || {
        // An approval left awaiting its trail record (a console stopped, an answer of the
        // store lost) is settled when the page is read: confirmed or dropped, said. A
        // failure to settle them (they stay not in effect) is said on the page, never in
        // place of it: the one view of the fleet is not lost to an unreadable trail.
        let unsettled = console
            .resolve_awaiting_approvals()
            .err()
            .map(|e| e.to_string());
        console
            .with_fleet(|db| {
                Ok::<_, AuthError>(Fleet {
                    hosts: db.hosts()?,
                    current: db.current_profiles()?,
                    pending: db.pending_profiles()?,
                    waiting: Vec::new(),
                    four_eyes: None,
                    unsettled,
                    unrecorded: Vec::new(),
                    acknowledged: Vec::new(),
                    standing: Vec::new(),
                    reason_chars: crate::host_acknowledging::acknowledgement_reason_chars(true),
                    open_alerts: Vec::new(),
                    reported: Vec::new(),
                })
            })
            .and_then(|mut fleet| {
                // Without four eyes (turned off while a request waited) one approval
                // signs: a request left is not shown as needing a second (review
                // s19-r14).
                let in_force = console.host_four_eyes_in_force()?;
                for h in &fleet.hosts {
                    fleet
                        .open_alerts
                        .push((h.id, console.guard.enrolment_open(&h.name, &h.fingerprint)));
                    if let Some(shown) = console.acknowledgement_shown(h)? {
                        fleet.acknowledged.push((h.id, shown));
                    }
                    if let Some(standing) =
                        console.standing_refusal(h).filter(|_| h.revoked.is_none())
                    {
                        fleet.standing.push((h.id, standing));
                    }
                }
                // A host's current profile whose approval was superseded (the host went
                // back to it: its store restored) waits for an approver again: offered
                // to approve anew, knowingly (review s19-r14).
                let revoked = |host: i64| {
                    fleet
                        .hosts
                        .iter()
                        .any(|h| h.id == host && h.revoked.is_some())
                };
                let again: Vec<ProfileRow> = fleet
                    .current
                    .iter()
                    .filter(|p| p.approved.is_some() && p.superseded.is_some())
                    .filter(|p| !revoked(p.host))
                    .cloned()
                    .collect();
                fleet.pending.extend(again);
                // Approved in the store with no record on this console's trail (session
                // 22): not signed; an approver here decides.
                let mut unrecorded = Vec::new();
                for p in fleet
                    .current
                    .iter()
                    .filter(|p| p.in_effect() && !revoked(p.host))
                {
                    if !console.host_approval_recorded(p)? {
                        unrecorded.push(p.clone());
                    }
                }
                fleet.unrecorded = unrecorded
                    .iter()
                    .map(|p| (p.host, p.generation, p.digest.clone()))
                    .collect();
                fleet.pending.extend(unrecorded);
                // What the host recorded about each generation waiting (review
                // rv44-fleet case13: approvals were blind), bounded per page read.
                let wanted: Vec<(HostRow, u64)> = fleet
                    .pending
                    .iter()
                    .filter(|p| p.awaiting.is_none())
                    .filter_map(|p| {
                        let h = fleet.hosts.iter().find(|h| h.id == p.host)?;
                        Some((h.clone(), p.generation))
                    })
                    .take(MAX_DESCRIBED_PER_PAGE)
                    .collect();
                for (h, generation) in wanted {
                    let found = console.with_fleet(|db| {
                        Ok(crate::host_reported::reported_for(db, &h, generation)?)
                    })?;
                    fleet.reported.push((h.id, generation, found));
                }
                let four_eyes = console.second_host_approver || in_force.on;
                fleet.reason_chars =
                    crate::host_acknowledging::acknowledgement_reason_chars(four_eyes);
                let mut in_force = in_force;
                in_force.relaxation = console.four_eyes_relaxation_waiting();
                fleet.four_eyes = Some(in_force);
                if four_eyes {
                    fleet.waiting = console
                        .waiting_requests()
                        .into_iter()
                        .filter(|w| w.root.starts_with(HOST_REQUEST_PREFIX))
                        .collect();
                }
                Ok(fleet)
            })
    })
    .await;
    match read {
        Ok(Ok(fleet)) => (
            status,
            html(render(auth, &fleet, now, stepped_up, message.as_deref())),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

/// GET /hosts.
pub(crate) async fn hosts_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    hosts_with(&state, &auth, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApproveForm {
    host: i64,
    generation: u64,
    digest: String,
    reason: String,
}

/// POST /hosts/approve: an approver approves a host's profile generation.
pub(crate) async fn hosts_approve(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<ApproveForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let decided = blocking(move || {
        console.approve_host_profile(&a, form.host, form.generation, &form.digest, &form.reason)
    })
    .await;
    match decided {
        Ok(Ok(row)) => {
            let said = format!(
                "Approved profile generation {} of host {}: the host receives the console's approval with its next report.",
                row.generation, row.host_name
            );
            hosts_with(&state, &auth, StatusCode::OK, Some(said)).await
        }
        Ok(Err(e @ (AuthError::StepUpNeeded | AuthError::Invalid(_)))) => {
            let status = if matches!(e, AuthError::StepUpNeeded) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            hosts_with(&state, &auth, status, Some(e.to_string())).await
        }
        // Written and recorded, not in effect yet (issue 14): said as it is, 202.
        Ok(Err(AuthError::Awaiting(said))) => {
            hosts_with(&state, &auth, StatusCode::ACCEPTED, Some(said)).await
        }
        // The host's reports are refused (a new key, a fork, revoked): nothing approved,
        // recorded on the trail (session 45, review rv44-fleet case14).
        Ok(Err(AuthError::Changed(said))) => {
            hosts_with(&state, &auth, StatusCode::CONFLICT, Some(said)).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AcknowledgeForm {
    host: String,
    digest: String,
    reason: String,
}

/// POST /hosts/acknowledge: an administrator acknowledges a host's standing refusal,
/// the one whose digest their page showed ([`crate::host_acknowledging`]).
pub(crate) async fn hosts_acknowledge(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<AcknowledgeForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let decided =
        blocking(move || console.acknowledge_host_as(&a, &form.host, &form.digest, &form.reason))
            .await;
    let (status, said) = match decided {
        Ok(Ok(said)) => (StatusCode::OK, format!("{}.", capitalized(&said))),
        Ok(Err(AuthError::Awaiting(said))) => (StatusCode::ACCEPTED, said),
        // What the page showed no longer stands: nothing done, the page drawn anew.
        Ok(Err(AuthError::Changed(said))) => (StatusCode::CONFLICT, capitalized(&said)),
        Ok(Err(e @ AuthError::StepUpNeeded)) => (StatusCode::FORBIDDEN, e.to_string()),
        Ok(Err(e @ AuthError::Invalid(_))) => (StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => return failure(&e),
        Err(r) => return r,
    };
    hosts_with(&state, &auth, status, Some(said)).await
}

/// `text` with its first letter upper-case: a sentence of the page.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// What a host's row shows of its standing refusal: its digest, the request waiting for
/// a second administrator if any, and for an administrator the form that acknowledges it
/// (none once an acknowledgement of it is in effect).
fn acknowledge_cell(auth: &Authenticated, fleet: &Fleet, h: &HostRow) -> String {
    use crate::host_acknowledgements::Shown;
    let Some((_, standing)) = fleet.standing.iter().find(|(id, _)| *id == h.id) else {
        return String::new();
    };
    let mut cell = format!(
        "<div class=\"refusal\">refusal digest <code class=\"refusal-digest\">{}</code></div>",
        esc(&standing.digest)
    );
    let key = crate::host_acknowledging::acknowledgement_request_key(h.id, &standing.digest);
    if let Some(w) = fleet.waiting.iter().find(|w| w.root == key) {
        let _ = write!(
            cell,
            "<div><em class=\"awaiting-second\">acknowledgement awaiting a second administrator</em>: asked by {} (\"{}\")</div>",
            esc(&w.asked_by),
            esc(&w.reason)
        );
    }
    let in_effect = fleet
        .acknowledged
        .iter()
        .any(|(id, shown)| *id == h.id && matches!(shown, Shown::Acknowledged(_)));
    if auth.role >= crate::roles::Role::Administrator && !in_effect {
        let _ = write!(
            cell,
            "<form method=\"post\" action=\"/hosts/acknowledge\" class=\"acknowledge\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"host\" value=\"{}\">\
             <input type=\"hidden\" name=\"digest\" value=\"{}\">\
             <label>What the investigation found <input name=\"reason\" type=\"text\" required maxlength=\"{}\"></label>\
             <button type=\"submit\">Acknowledge this refusal</button></form>",
            esc(&auth.csrf),
            esc(&h.name),
            esc(&standing.digest),
            fleet.reason_chars
        );
    }
    cell
}

/// The size of the last checkpoint cosigned for `host`.
fn witnessed(host: &HostRow) -> u64 {
    host.checkpoint
        .as_deref()
        .and_then(|n| n.lines().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The fleet's four-eyes setting, and for an administrator its form.
fn four_eyes_section(
    auth: &Authenticated,
    in_force: Option<&crate::fleet_settings::FourEyesInForce>,
) -> String {
    let setting: Option<&FleetSetting> = in_force.and_then(|f| f.stored.as_ref());
    let mut state = match setting {
        Some(s) if s.well_formed() => format!(
            "<strong>{}</strong> (set by {} at {}: \"{}\")",
            if s.on { "on" } else { "off" },
            esc(&crate::fleet_settings::shown(&s.by)),
            crate::pages::unix_time(s.at),
            esc(&crate::fleet_settings::shown(&s.reason))
        ),
        Some(_) | None => "<strong>off</strong> (never set for the fleet)".to_string(),
    };
    // Enforced here although the store says otherwise (see `crate::fleet_settings`).
    if let Some(why) = in_force.and_then(|f| f.differs.as_deref()) {
        state = format!(
            "<strong>on</strong> on this console <em class=\"setting-altered\">(not as its trail recorded it: {}; see the alert on the audit trail; an administrator sets it here to decide)</em>",
            esc(why)
        );
    }
    if let Some(e) = in_force.and_then(|f| f.unrecorded.as_deref()) {
        state.push_str(&format!(
            " <em id=\"setting-unrecorded\" class=\"bad\">(the audit trail could not record this now: {}; enforced all the same, recorded when this page is next read)</em>",
            esc(e)
        ));
    }
    if let Some(w) = in_force.and_then(|f| f.relaxation.as_ref()) {
        state.push_str(&format!(
            " <em class=\"awaiting-second\">turning it off awaits a second administrator: asked by {} (\"{}\"); another administrator sets it off to confirm</em>",
            esc(&w.asked_by),
            esc(&w.reason)
        ));
    }
    let form = if auth.role >= crate::roles::Role::Administrator {
        format!(
            "<form method=\"post\" action=\"/hosts/four-eyes\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>Four eyes <select name=\"on\"><option value=\"true\">on</option><option value=\"false\">off</option></select></label>\
             <label>Reason <input name=\"reason\" type=\"text\" required></label>\
             <button type=\"submit\">Set for the fleet</button></form>",
            esc(&auth.csrf)
        )
    } else {
        String::new()
    };
    format!(
        "<section><h2>Fleet settings</h2><p id=\"host-four-eyes\">Four eyes for host approvals (a second approver, another person, for each host profile, and a second administrator for each acknowledgement of a host's standing refusal; every console on this fleet's store enforces it): {state}</p>{form}</section>"
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FourEyesForm {
    on: String,
    reason: String,
}

/// POST /hosts/four-eyes: an administrator sets the fleet's four eyes for host approvals.
pub(crate) async fn hosts_four_eyes(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<FourEyesForm>,
) -> Response {
    let on = match form.on.as_str() {
        "true" => true,
        "false" => false,
        other => {
            let e = AuthError::Invalid(format!(
                "on: expected true or false, not {:?}",
                other.chars().take(40).collect::<String>()
            ));
            return hosts_with(&state, &auth, StatusCode::BAD_REQUEST, Some(e.to_string())).await;
        }
    };
    let console = state.console.clone();
    let a = auth.clone();
    let decided = blocking(move || console.set_host_four_eyes(&a, on, &form.reason)).await;
    match decided {
        Ok(Ok(())) => {
            let said = format!(
                "Four eyes for host approvals is {} for the fleet: every console on its store enforces it.",
                if on { "on" } else { "off" }
            );
            hosts_with(&state, &auth, StatusCode::OK, Some(said)).await
        }
        Ok(Err(AuthError::Awaiting(said))) => {
            hosts_with(&state, &auth, StatusCode::ACCEPTED, Some(said)).await
        }
        Ok(Err(e @ (AuthError::StepUpNeeded | AuthError::Invalid(_)))) => {
            let status = if matches!(e, AuthError::StepUpNeeded) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            hosts_with(&state, &auth, status, Some(e.to_string())).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

/// Whether `p` is approved in the store without a record on this console's trail.
fn is_unrecorded(fleet: &Fleet, p: &ProfileRow) -> bool {
    fleet
        .unrecorded
        .iter()
        .any(|(h, g, d)| *h == p.host && *g == p.generation && *d == p.digest)
}

/// A host's current profile as its row shows it.
fn profile_cell(fleet: &Fleet, current: Option<&ProfileRow>) -> (&'static str, String) {
    match current {
        None => ("warn", "not reported".into()),
        Some(p) if is_unrecorded(fleet, p) => (
            "bad",
            format!(
                "generation {} unapproved: approved in the fleet's store but not recorded on this console's trail, or superseded there by a later approval of another profile (not signed)",
                p.generation
            ),
        ),
        Some(p) => match (&p.approved, p.superseded) {
            // Approved once, but the host went back to it (its store restored or made
            // again): not in effect (review s18).
            (Some(_), Some(newer)) => (
                "bad",
                format!(
                    "generation {} unapproved: the host went back to it after reporting generation {newer} (its store restored or replaced)",
                    p.generation
                ),
            ),
            (Some((by, _, _)), None) => (
                "ok",
                format!("generation {} approved by {by}", p.generation),
            ),
            (None, _) => (
                "bad",
                format!("generation {} unapproved (made on the host)", p.generation),
            ),
        },
    }
}

/// For an administrator facing a standing refusal: what acknowledging one needs.
fn acknowledge_hint(auth: &Authenticated, fleet: &Fleet, stepped_up: bool) -> &'static str {
    if fleet.standing.is_empty() || auth.role < crate::roles::Role::Administrator {
        ""
    } else if stepped_up {
        " A host in a standing refusal (fork, duplicated) stays so until revoked: once investigated, acknowledge the refusal shown (a new refusal is raised again)."
    } else {
        " A host in a standing refusal (fork, duplicated) stays so until revoked: once investigated, acknowledge the refusal shown; that needs your second factor confirmed within the last 5 minutes: <a id=\"hosts-ack-step-up\" href=\"/step-up?next=/hosts\">confirm it</a>."
    }
}

fn render(
    auth: &Authenticated,
    fleet: &Fleet,
    now: i64,
    stepped_up: bool,
    message: Option<&str>,
) -> String {
    let mut rows = String::new();
    for h in &fleet.hosts {
        let (class, state) = match (h.revoked, h.state.as_str()) {
            (Some(_), _) => ("warn", crate::host_revocations::revoked_summary(h)),
            (None, "ok") if h.last_contact == 0 => ("warn", "enrolled, never reported".into()),
            (None, "ok") => ("ok", "reporting".into()),
            (None, other) => {
                use crate::host_acknowledgements::Shown;
                match fleet.acknowledged.iter().find(|(id, _)| *id == h.id) {
                    Some((_, Shown::Acknowledged(said))) => ("warn", format!("{other} ({said})")),
                    Some((_, Shown::StoreOnly(said))) => ("bad", format!("{other} ({said})")),
                    None => ("bad", other.to_string()),
                }
            }
        };
        // A host's own alerts and warnings, and the console's about it, open on the
        // alerts page (issue 14, session 45): a host "reporting" with an intrusion open
        // is not shown as fine.
        let (open, dropped) = fleet.open_alerts(h);
        let (class, state) = if open == 0 && dropped == 0 {
            (class, state)
        } else {
            let dropped = if dropped > 0 {
                format!(" and {dropped} dropped from it")
            } else {
                String::new()
            };
            (
                "bad",
                format!("{state}; {open} open alerts/warnings on the alerts page{dropped}"),
            )
        };
        let contact = if h.last_contact == 0 {
            "never".to_string()
        } else {
            format!("{} s ago", now.saturating_sub(h.last_contact))
        };
        let (profile_class, profile) =
            profile_cell(fleet, fleet.current.iter().find(|p| p.host == h.id));
        let _ = write!(
            rows,
            "<tr class=\"host\"><td>{}</td><td><span class=\"{class}\">{}</span>{}</td><td>{}</td><td><span class=\"{profile_class} profile\">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.name),
            esc(&state),
            acknowledge_cell(auth, fleet, h),
            esc(&contact),
            esc(&profile),
            h.size,
            witnessed(h),
            esc(&h.shown_detail())
        );
    }
    if rows.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"7\">No host is enrolled. On this console: <code>pacsguard console enrol-token</code>; on the host: <code>pacsguard enroll</code>.</td></tr>",
        );
    }
    let mut pending = String::new();
    for p in &fleet.pending {
        if let Some(a) = &p.awaiting {
            // Written, not in effect: its record on the trail is not confirmed yet.
            let _ = write!(
                pending,
                "<li class=\"pending-profile awaiting\"><strong>{}</strong>: profile generation {} (<code>{}</code>): approved by {} {} s ago, <em>not in effect</em> until its record on the audit trail is confirmed (settled when this page is read a minute after the approval: confirmed if recorded, else dropped)</li>",
                esc(&p.host_name),
                p.generation,
                esc(&p.digest),
                esc(&a.by),
                now.saturating_sub(a.at),
            );
            continue;
        }
        // Only the host's current profile is approved (review r23): an older one it left
        // is listed, with no form, for what it is.
        if let Some(c) = fleet
            .current
            .iter()
            .find(|c| c.host == p.host)
            .filter(|c| (c.generation, &c.digest) != (p.generation, &p.digest))
        {
            let _ = write!(
                pending,
                "<li class=\"pending-profile left\"><strong>{}</strong>: profile generation {} (signed on the host at {}, first reported {} s ago, <code>{}</code>) <em class=\"left\">not the host's current profile: it reports generation {} now; only that one is approved</em></li>",
                esc(&p.host_name),
                p.generation,
                p.created,
                now.saturating_sub(p.first_seen),
                esc(&p.digest),
                c.generation,
            );
            continue;
        }
        // A host whose reports are refused gets no approval (it would never reach it,
        // and its profile may be an intruder's): listed, with no form, saying why.
        if let Some((name, why)) = fleet
            .hosts
            .iter()
            .find(|h| h.id == p.host)
            .and_then(crate::host_approvals::reports_refused)
        {
            let _ = write!(
                pending,
                "<li class=\"pending-profile refused\"><strong>{}</strong>: profile generation {} (signed on the host at {}, first reported {} s ago, <code>{}</code>) <em class=\"refused\">not approvable: the host's reports are refused ({}); investigate it first</em></li>",
                esc(&name),
                p.generation,
                p.created,
                now.saturating_sub(p.first_seen),
                esc(&p.digest),
                esc(&why),
            );
            continue;
        }
        let reported = fleet
            .reported
            .iter()
            .find(|(h, g, _)| *h == p.host && *g == p.generation)
            .map_or_else(
                || {
                    format!(
                        "<div class=\"reported none\">Not described: more than {MAX_DESCRIBED_PER_PAGE} profiles wait (MAX_DESCRIBED_PER_PAGE); approve the others first, or verify it on the host.</div>"
                    )
                },
                |(_, g, found)| crate::host_reported::shown(found, *g, esc),
            );
        let key = host_request_key(p.host, p.generation, &p.digest);
        let (class, second, button) = match fleet.waiting.iter().find(|w| w.root == key) {
            Some(w) => (
                "pending-profile second",
                format!(
                    " <em class=\"awaiting-second\">awaiting second approver</em>: approved by {} {} s ago (\"{}\"); not signed until another approver confirms it",
                    esc(&w.asked_by),
                    now.saturating_sub(w.asked_at),
                    esc(&w.reason)
                ),
                "Confirm as second approver",
            ),
            None if is_unrecorded(fleet, p) => (
                "pending-profile unrecorded",
                format!(
                    " <em class=\"unrecorded\">approved in the fleet's store by {} but not recorded on this console's audit trail (written in the database, or approved on another console), or superseded there by a later approval of another profile of this host (the host went back to it): not signed until an approver approves it here</em>",
                    esc(&p
                        .approved
                        .as_ref()
                        .map_or(String::new(), |(by, _, _)| by.clone()))
                ),
                "Approve here",
            ),
            None if p.approved.is_some() => (
                "pending-profile again",
                format!(
                    " <em class=\"went-back\">the host went back to it after reporting generation {}: its earlier approval is not in effect</em>",
                    p.superseded.unwrap_or_default()
                ),
                "Approve again",
            ),
            None => ("pending-profile", String::new(), "Approve"),
        };
        let _ = write!(
            pending,
            "<li class=\"{class}\"><strong>{}</strong>: profile generation {} (signed on the host at {}, first reported {} s ago, <code>{}</code>){second}{reported}\
             <form method=\"post\" action=\"/hosts/approve\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"host\" value=\"{}\">\
             <input type=\"hidden\" name=\"generation\" value=\"{}\">\
             <input type=\"hidden\" name=\"digest\" value=\"{}\">\
             <label>Reason <input name=\"reason\" type=\"text\" required></label>\
             <button type=\"submit\">{button}</button></form></li>",
            esc(&p.host_name),
            p.generation,
            p.created,
            now.saturating_sub(p.first_seen),
            esc(&p.digest),
            esc(&auth.csrf),
            p.host,
            p.generation,
            esc(&p.digest),
        );
    }
    let pending = if pending.is_empty() {
        "<p id=\"no-pending-profiles\">No host profile waits for approval.</p>".to_string()
    } else {
        format!(
            "<p class=\"hint\">Each was made on its host (<code>profile</code> or <code>accept</code> run there) and counts as unapproved until an approver accepts it here. {}</p><ul id=\"pending-profiles\">{pending}</ul>",
            if stepped_up {
                "Your second factor is confirmed."
            } else {
                "Approving needs your second factor confirmed within the last 5 minutes: <a id=\"hosts-step-up\" href=\"/step-up?next=/hosts\">confirm it</a>."
            }
        )
    };
    let mut message = message.map_or(String::new(), |m| {
        format!("<p id=\"hosts-message\" class=\"notice\">{}</p>", esc(m))
    });
    if let Some(e) = &fleet.unsettled {
        let _ = write!(
            message,
            "<p id=\"hosts-unsettled\" class=\"bad\">Approvals awaiting their record on the audit trail could not be settled now ({}): they are not in effect; this page tries again each time it is read.</p>",
            esc(e)
        );
    }
    let four_eyes = four_eyes_section(auth, fleet.four_eyes.as_ref());
    page(
        "Hosts",
        Some(auth),
        &format!(
            "<section><h2>Hosts</h2>{message}\
             <p class=\"hint\">Each host's trail as this console holds and witnesses it. Each host's own alerts and warnings (its guard's, delivered with its trail) and the console's alerts about it are on the <a href=\"/alerts\">alerts page</a>, host named, until an operator acknowledges them; every one is on the audit trail.{}</p>\
             <table id=\"hosts\"><thead><tr><th>Host</th><th>State</th><th>Last contact</th><th>Profile</th><th>Records</th><th>Witnessed up to</th><th>Last refusal</th></tr></thead><tbody>{rows}</tbody></table></section>\
             <section><h2>Profiles waiting for approval</h2>{pending}</section>{four_eyes}",
            acknowledge_hint(auth, fleet, stepped_up)
        ),
    )
}
