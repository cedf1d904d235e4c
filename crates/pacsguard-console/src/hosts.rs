//! The hosts page: every host enrolled in this console (issue 14), its state, its last
//! contact, how far its trail is witnessed, and what the console last refused of it.
//! Read only; the state is the fleet listener's (`pacsguard-fleet`), kept in the store.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use pacsguard_store::HostRow;

use crate::auth::{AuthError, Authenticated};
use crate::http::{AppState, blocking, failure, html};
use crate::pages::{esc, page};

/// GET /hosts.
pub(crate) async fn hosts_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    let console = state.console.clone();
    let now = console.clock.now();
    let read = blocking(move || {
        console
            .db
            .lock()
            .map_err(|_| AuthError::Invalid("the console's store is unavailable".into()))
            .and_then(|db| db.hosts().map_err(AuthError::from))
    })
    .await;
    match read {
        Ok(Ok(hosts)) => html(render(&auth, &hosts, now)),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

/// The size of the last checkpoint cosigned for `host`.
fn witnessed(host: &HostRow) -> u64 {
    host.checkpoint
        .as_deref()
        .and_then(|n| n.lines().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn render(auth: &Authenticated, hosts: &[HostRow], now: i64) -> String {
    let mut rows = String::new();
    for h in hosts {
        let (class, state) = match (h.revoked, h.state.as_str()) {
            (Some(_), _) => ("warn", "revoked".to_string()),
            (None, "ok") if h.last_contact == 0 => ("warn", "enrolled, never reported".into()),
            (None, "ok") => ("ok", "reporting".into()),
            (None, other) => ("bad", other.to_string()),
        };
        let contact = if h.last_contact == 0 {
            "never".to_string()
        } else {
            format!("{} s ago", now.saturating_sub(h.last_contact))
        };
        let _ = write!(
            rows,
            "<tr class=\"host\"><td>{}</td><td><span class=\"{class}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.name),
            esc(&state),
            esc(&contact),
            h.size,
            witnessed(h),
            esc(&h.detail)
        );
    }
    if rows.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"6\">No host is enrolled. On this console: <code>pacsguard console enrol-token</code>; on the host: <code>pacsguard enroll</code>.</td></tr>",
        );
    }
    page(
        "Hosts",
        Some(auth),
        &format!(
            "<section><h2>Hosts</h2>\
             <p class=\"hint\">Each host's trail as this console holds and witnesses it; alerts about hosts are on the audit trail.</p>\
             <table id=\"hosts\"><thead><tr><th>Host</th><th>State</th><th>Last contact</th><th>Records</th><th>Witnessed up to</th><th>Last refusal</th></tr></thead><tbody>{rows}</tbody></table></section>"
        ),
    )
}
