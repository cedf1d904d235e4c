//! Each person sees their own live sessions (where and when signed in) and ends any of
//! them, a stolen one included; an administrator sees and ends anyone's. A session is
//! named on the page by an id derived from its token's digest (a digest of the digest):
//! the page never shows anything that could open a session.

use axum::extract::{Extension, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use pacsguard_events::{Action, Outcome};
use serde::Deserialize;
use std::fmt::Write as _;

use crate::auth::{AuthError, Authenticated, Console, lock};
use crate::http::{AppState, blocking, failure, html};
use crate::pages::{error_line, esc, page, unix_time};
use crate::roles::Role;

/// One session as its page shows it.
#[derive(Clone, Debug)]
pub struct SessionView {
    pub id: String,
    pub name: String,
    pub created: i64,
    pub last_seen: i64,
    pub address: String,
    /// The session this request came with.
    pub current: bool,
}

/// The id shown for a session: 128 bits of SHA-256 over a label and its token's digest.
fn session_id(token_hash: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console session id\0");
    hash.update(token_hash);
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Console {
    /// The sessions this person may see: their own, or every one for an administrator.
    pub fn visible_sessions(&self, auth: &Authenticated) -> Result<Vec<SessionView>, AuthError> {
        let whose = (auth.role < Role::Administrator).then_some(auth.account);
        Ok(lock(&self.db)?
            .live_sessions(whose)?
            .into_iter()
            .map(|s| SessionView {
                id: session_id(&s.token_hash),
                current: s.token_hash == auth.token_hash,
                name: s.name,
                created: s.created,
                last_seen: s.last_seen,
                address: s.address,
            })
            .collect())
    }

    /// Ends the session `id` if this person may see it (their own; anyone's for an
    /// administrator); recorded. Unknown or not theirs: the same refusal.
    pub fn end_session(&self, auth: &Authenticated, id: &str) -> Result<(), AuthError> {
        let whose = (auth.role < Role::Administrator).then_some(auth.account);
        let db = lock(&self.db)?;
        let Some(session) = db
            .live_sessions(whose)?
            .into_iter()
            .find(|s| session_id(&s.token_hash) == id)
        else {
            return Err(AuthError::Invalid(
                "no such session of yours (ended already?)".into(),
            ));
        };
        let detail = format!(
            "{} ended a session of {} (signed in from {} at {})",
            auth.name,
            session.name,
            session.address,
            unix_time(session.created)
        );
        // An emergency access ended here is an Emergency Override Stopped like any other
        // end of it, on the emergency account's name.
        let event = if session.name == crate::breakglass::BREAK_GLASS_ACCOUNT {
            self.session_end_event(&session.name, detail)
        } else {
            self.event(&auth.name, Action::Logout, Outcome::Success, detail)
        };
        self.close_session(
            &db,
            &session.token_hash,
            session.account,
            session.created,
            event,
        )?;
        Ok(())
    }
}

fn sessions_page(auth: &Authenticated, sessions: &[SessionView], error: Option<&str>) -> String {
    let mut rows = String::new();
    for s in sessions {
        let _ = write!(
            rows,
            "<tr id=\"session-{id}\"><td>{name}</td><td>{created}</td><td>{last}</td><td>{address}</td><td>{current}</td>\
             <td><form method=\"post\" action=\"/sessions/end\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"id\" value=\"{id}\"><button id=\"end-{id}\" type=\"submit\">End</button></form></td></tr>",
            id = esc(&s.id),
            name = esc(&s.name),
            created = unix_time(s.created),
            last = unix_time(s.last_seen),
            address = esc(&s.address),
            current = if s.current { "this browser" } else { "" },
            csrf = esc(&auth.csrf)
        );
    }
    page(
        "Sessions",
        Some(auth),
        &format!(
            "<section><h2>{}</h2>{}<p class=\"hint\">A session you do not recognise: end it, then change your password and tell an administrator.</p>\
             <table id=\"my-sessions\"><thead><tr><th>Account</th><th>Signed in</th><th>Last used</th><th>From</th><th></th><th></th></tr></thead><tbody>{rows}</tbody></table></section>",
            if auth.role >= Role::Administrator {
                "Every session"
            } else {
                "Your sessions"
            },
            error_line(error)
        ),
    )
}

async fn with(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.visible_sessions(&a)).await {
        Ok(Ok(sessions)) => (status, html(sessions_page(auth, &sessions, error))).into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

pub(crate) async fn sessions_form(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    with(&state, &auth, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EndForm {
    id: String,
}

pub(crate) async fn sessions_end(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<EndForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.end_session(&a, &form.id)).await {
        Ok(Ok(())) => with(&state, &auth, StatusCode::OK, None).await,
        Ok(Err(AuthError::Invalid(message))) => {
            with(&state, &auth, StatusCode::BAD_REQUEST, Some(&message)).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}
