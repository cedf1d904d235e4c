//! The pages and routes of an account's life cycle ([`crate::lifecycle`]): the password
//! change of one's own account, and an administrator's disable and enable.

use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use crate::auth::{AuthError, Authenticated};
use crate::http::{
    AppState, Peer, accounts_with, blocking, failure, form_refusal, hash_turn, html, peer_ip,
    redirect, redirect_with_cookie, set_cookie,
};
use crate::pages::{error_line, esc, page};

/// Where the password change is.
pub(crate) const PASSWORD_PAGE: &str = "/account/password";

fn password_page(auth: &Authenticated, message: Option<&str>, changed: bool) -> String {
    let done = if changed {
        "<p id=\"password-changed\" class=\"ok\">Your password was changed. Every other session of your account ended.</p>"
    } else {
        ""
    };
    page(
        "Change your password",
        Some(auth),
        &format!(
            "<section><h2>Change your password</h2>{done}{}\
             <p class=\"hint\">At least {min} characters; no other rule, paste allowed; common and breached passwords are refused. \
             Give the current code of your authenticator (or a recovery code), or, with a passkey, \
             <a id=\"password-step-up\" href=\"/step-up/passkey?next={PASSWORD_PAGE}\">confirm it first</a> and leave the code empty. \
             Every other session of your account ends.</p>\
             <form id=\"password-form\" method=\"post\" action=\"{PASSWORD_PAGE}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"current-password\">Current password</label><input id=\"current-password\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
             <label for=\"new-password\">New password</label><input id=\"new-password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"{min}\">\
             <label for=\"password-code\">Current code</label><input id=\"password-code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\">\
             <button id=\"change-password\" type=\"submit\">Change password</button></form></section>",
            error_line(message),
            esc(&auth.csrf),
            min = crate::password::MIN_PASSWORD_CHARS,
        ),
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChangedQuery {
    /// Set by the redirect after a change: the page says it was done.
    changed: Option<String>,
}

pub(crate) async fn password_form(
    Extension(auth): Extension<Authenticated>,
    Query(q): Query<ChangedQuery>,
) -> Response {
    html(password_page(&auth, None, q.changed.is_some()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PasswordForm {
    current: String,
    password: String,
    code: String,
}

pub(crate) async fn password_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<PasswordForm>,
) -> Response {
    // Two Argon2id hashes (the current password's check, the new one's): a hashing
    // turn like a sign-in's.
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let a = auth.clone();
    let result = blocking(move || {
        let _permit = permit;
        console.change_password(&a, &form.current, &form.password, &form.code, ip)
    })
    .await;
    match result {
        Ok(Ok(session)) => {
            redirect_with_cookie("/account/password?changed=1", set_cookie(&session))
        }
        Ok(Err(e @ AuthError::Password(_))) => (
            StatusCode::BAD_REQUEST,
            html(password_page(&auth, Some(&e.to_string()), false)),
        )
            .into_response(),
        Ok(Err(e)) => match form_refusal(&e) {
            Some(status) => (
                status,
                html(password_page(&auth, Some(&e.to_string()), false)),
            )
                .into_response(),
            None => failure(&e),
        },
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DisableForm {
    name: String,
    reason: String,
}

pub(crate) async fn disable_submit(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<DisableForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let done = blocking(move || {
        console
            .disable_account(&a, &form.name, &form.reason)
            .map(|_| ())
    });
    settle(&state, auth, done.await).await
}

pub(crate) async fn enable_submit(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<DisableForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let done = blocking(move || console.enable_account(&a, &form.name, &form.reason));
    settle(&state, auth, done.await).await
}

/// An administrator's decision on the accounts page: back to it, or its refusal shown
/// there.
pub(crate) async fn settle(
    state: &AppState,
    auth: Authenticated,
    done: Result<Result<(), AuthError>, Response>,
) -> Response {
    match done {
        Ok(Ok(())) => redirect("/accounts"),
        Ok(Err(e)) => match form_refusal(&e) {
            Some(status) => accounts_with(state, auth, status, Some(e.to_string())).await,
            None => failure(&e),
        },
        Err(r) => r,
    }
}
