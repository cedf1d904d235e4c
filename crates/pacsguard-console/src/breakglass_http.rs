//! The break-glass pages and their handlers (see [`crate::breakglass`]): the emergency
//! sign-in (public) and the administrators' seal.

use axum::extract::{Extension, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use crate::auth::{AuthError, Authenticated};
use crate::breakglass::{BREAK_GLASS_SECONDS, SealState};
use crate::http::{
    AppState, Peer, blocking, failure, html, peer_ip, redirect_with_cookie, set_cookie,
};
use crate::pages::{error_line, esc, page, unix_time};

/// The one answer to a refused emergency sign-in (wrong, used or voided secret, paused).
pub const BREAK_GLASS_REFUSED: &str = "Emergency access refused. The secret is wrong, already used, or of an envelope sealed again since; after repeated failures this address is paused.";

fn form_page(error: Option<&str>) -> String {
    page(
        "Emergency access",
        None,
        &format!(
            "<section><h2>Emergency access (break-glass)</h2>{}\
             <p class=\"hint\">Only when no account with a second factor can be used. Using it raises an alert, every request is recorded, it ends within {} minutes, and the secret works once.</p>\
             <form id=\"break-glass-form\" method=\"post\" action=\"/break-glass\">\
             <label for=\"secret\">Secret from the sealed envelope</label><input id=\"secret\" name=\"secret\" type=\"text\" autocomplete=\"off\" required>\
             <label for=\"reason\">Why emergency access is needed</label><input id=\"reason\" name=\"reason\" type=\"text\" required maxlength=\"4096\">\
             <button id=\"break-glass\" type=\"submit\">Break the glass</button></form></section>",
            error_line(error),
            BREAK_GLASS_SECONDS / 60
        ),
    )
}

pub(crate) async fn break_glass_form() -> Response {
    html(form_page(None))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BreakGlassForm {
    secret: String,
    reason: String,
}

pub(crate) async fn break_glass_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Form(form): Form<BreakGlassForm>,
) -> Response {
    let console = state.console.clone();
    let ip = peer_ip(peer);
    match blocking(move || console.break_glass(&form.secret, &form.reason, ip)).await {
        Ok(Ok(session)) => redirect_with_cookie("/", set_cookie(&session)),
        Ok(Err(AuthError::SignInFailed)) => (
            StatusCode::UNAUTHORIZED,
            html(form_page(Some(BREAK_GLASS_REFUSED))),
        )
            .into_response(),
        Ok(Err(AuthError::Invalid(message))) => {
            (StatusCode::BAD_REQUEST, html(form_page(Some(&message)))).into_response()
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

fn seal_page(
    auth: &Authenticated,
    seal: Option<&SealState>,
    stepped_up: bool,
    error: Option<&str>,
) -> String {
    let state = match seal {
        None => "<p id=\"seal-state\">Not sealed: there is no emergency access.</p>".to_string(),
        Some(s) => format!(
            "<p id=\"seal-state\">Sealed by {} at {}: {}.</p>",
            esc(&s.sealed_by),
            unix_time(s.sealed_at),
            s.broken_at.map_or_else(
                || "intact".to_string(),
                |at| format!(
                    "<strong>broken at {}</strong> (used): seal it again",
                    unix_time(at)
                )
            )
        ),
    };
    let step_up = if stepped_up {
        String::new()
    } else {
        "<p id=\"step-up-needed\">Sealing needs your second factor confirmed within the last 5 minutes: <a href=\"/step-up?next=/accounts\">confirm it</a>.</p>".to_string()
    };
    page(
        "Emergency access",
        Some(auth),
        &format!(
            "<section><h2>Emergency access (break-glass)</h2>{}{state}{step_up}\
             <form id=\"seal-form\" method=\"post\" action=\"/accounts/break-glass\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"seal-reason\">Reason</label><input id=\"seal-reason\" name=\"reason\" type=\"text\" required maxlength=\"4096\">\
             <button id=\"seal\" type=\"submit\">Seal with a new secret (voids the old envelope)</button></form></section>",
            error_line(error),
            esc(&auth.csrf)
        ),
    )
}

async fn seal_with(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let console = state.console.clone();
    let seal = match blocking(move || console.break_glass_seal()).await {
        Ok(Ok(seal)) => seal,
        Ok(Err(e)) => return failure(&e),
        Err(r) => return r,
    };
    let stepped_up = state.console.stepped_up(auth);
    (
        status,
        html(seal_page(auth, seal.as_ref(), stepped_up, error)),
    )
        .into_response()
}

pub(crate) async fn seal_form(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    seal_with(&state, &auth, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SealForm {
    reason: String,
}

pub(crate) async fn seal_submit(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<SealForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.seal_break_glass(&a, &form.reason)).await {
        Ok(Ok(secret)) => html(page(
            "Sealed",
            Some(&auth),
            &format!(
                "<section><h2>The emergency account is sealed</h2>\
                 <p>Print this secret, seal it in an envelope and keep it where the people on call can reach it. It is shown only now; it works once; sealing again voids it.</p>\
                 <p><code id=\"break-glass-secret\">{}</code></p><p><a href=\"/accounts/break-glass\">Back</a></p></section>",
                esc(&secret)
            ),
        )),
        Ok(Err(AuthError::StepUpNeeded)) => {
            seal_with(
                &state,
                &auth,
                StatusCode::FORBIDDEN,
                Some(&AuthError::StepUpNeeded.to_string()),
            )
            .await
        }
        Ok(Err(AuthError::Invalid(message))) => {
            seal_with(&state, &auth, StatusCode::BAD_REQUEST, Some(&message)).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}
