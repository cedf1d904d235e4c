//! The pages and routes of an administrator's password reset ([`crate::reset`]): the
//! administrator's form on the accounts page and the link shown once, and the reset
//! link's own page where its holder chooses the new password with their second factor.

use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use crate::auth::{AuthError, Authenticated, NewSession};
use crate::http::{
    AppState, Peer, TokenQuery, accounts_with, blocking, failure, form_refusal, hash_turn, html,
    peer_ip, redirect_with_cookie, set_cookie,
};
use crate::pages::{error_line, esc, page, unix_time};
use crate::passkey::{Assertion, RequestOptions};
use crate::passkey_pages::{ASSERTION_FIELDS, SCRIPT, STATUS, get_attributes};
use crate::password::{MIN_PASSWORD_CHARS, RECOMMENDED_PASSWORD_CHARS};
use crate::reset::{RESET_LINK_LIFETIME, RESET_PAGE, ResetIssued};
use pacsguard_store::PendingReset;
use std::fmt::Write as _;

/// Where a reset link's holder confirms with a passkey.
pub(crate) const RESET_PASSKEY_PATH: &str = "/reset/passkey";

/// Where an administrator cancels a waiting reset.
pub(crate) const RESET_CANCEL_PATH: &str = "/accounts/reset/cancel";

/// The accounts page's section that resets a password (its CSRF token given), with the
/// resets waiting for their holder and the form that cancels one.
pub(crate) fn reset_section(csrf: &str, pending: &[PendingReset]) -> String {
    let mut rows = String::new();
    for reset in pending {
        let _ = write!(
            rows,
            "<tr id=\"pending-reset-{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td></tr>",
            esc(&reset.account),
            reset
                .by
                .as_deref()
                .map_or_else(|| "an account since removed".to_string(), esc),
            unix_time(reset.since),
            unix_time(reset.expires),
        );
    }
    let waiting = if pending.is_empty() {
        "<p id=\"no-pending-resets\">No password reset is waiting.</p>".to_string()
    } else {
        format!(
            "<table id=\"pending-resets\"><thead><tr><th>Account</th><th>Started by</th><th>When</th><th>Link valid until</th></tr></thead><tbody>{rows}</tbody></table>\
             <form id=\"reset-cancel-form\" method=\"post\" action=\"{RESET_CANCEL_PATH}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"reset-cancel-name\">Cancel the reset of account</label><input id=\"reset-cancel-name\" name=\"name\" type=\"text\" required>\
             <label for=\"reset-cancel-reason\">Reason</label><input id=\"reset-cancel-reason\" name=\"reason\" type=\"text\" required maxlength=\"4096\">\
             <button id=\"reset-cancel\" type=\"submit\">Cancel reset</button></form>\
             <p class=\"hint\">Cancelling makes the link work no more and the password from before the reset sign in again (a reset started on the wrong account); it needs a step-up and a reason.</p>",
            esc(csrf)
        )
    };
    let issue = reset_issue_form(csrf);
    format!("{issue}<section><h2>Password resets waiting</h2>{waiting}</section>")
}

/// The form that resets a password.
fn reset_issue_form(csrf: &str) -> String {
    format!(
        "<section><h2>Reset a password</h2><p class=\"hint\">For a person who forgot the password: it signs in no more and every session of the account ends at once; you get a one-time link, valid {} minutes, to hand to the person yourself. They choose a new password with their own second factor (a code of their authenticator app, a recovery code or a passkey), which stays as enrolled, so the link alone opens nothing. Not for your own account (change it on the password page). Needs your second factor confirmed within 5 minutes (<a id=\"reset-step-up\" href=\"/step-up?next=/accounts\">confirm it</a>) and a reason.</p>\
         <form id=\"reset-issue-form\" method=\"post\" action=\"/accounts/reset\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"reset-name\">Account name</label><input id=\"reset-name\" name=\"name\" type=\"text\" required>\
         <label for=\"reset-reason\">Reason</label><input id=\"reset-reason\" name=\"reason\" type=\"text\" required maxlength=\"4096\">\
         <button id=\"reset\" type=\"submit\">Reset password</button></form></section>",
        RESET_LINK_LIFETIME / 60,
        esc(csrf)
    )
}

fn reset_issued(auth: &Authenticated, name: &str, link: &str, expires: i64) -> String {
    page(
        "Password reset",
        Some(auth),
        &format!(
            "<section><h2>The password of {} is reset</h2><p>It signs in no more, and every session of the account ended. Give this one-time link to its holder yourself (in person or by phone); it is shown only now and works once, until {} ({} minutes). They choose a new password with their own second factor, which stays as it is; you never know either.</p>\
             <p><code id=\"reset-link\">{}</code></p><p><a id=\"back-to-accounts\" href=\"/accounts\">Back to the accounts</a></p></section>",
            esc(name),
            unix_time(expires),
            RESET_LINK_LIFETIME / 60,
            esc(link)
        ),
    )
}

/// The reset link's page: the new password and a code of the account's second factor,
/// or one of its passkeys when it has any (`passkey`: the challenge).
fn reset_form(token: &str, error: Option<&str>, passkey: Option<&RequestOptions>) -> String {
    let with_passkey = passkey.map_or_else(String::new, |options| {
        format!(
            "<h3>Or with your passkey</h3>\
             <form id=\"reset-passkey-form\" method=\"post\" action=\"{RESET_PASSKEY_PATH}\" {}>\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label for=\"reset-passkey-password\">New password</label><input id=\"reset-passkey-password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
             {ASSERTION_FIELDS}{STATUS}\
             <button id=\"reset-passkey-submit\" class=\"passkey-button\" type=\"submit\" disabled>Set the new password with a passkey</button></form>{SCRIPT}",
            get_attributes(options),
            esc(token)
        )
    });
    page(
        "Choose a new password",
        None,
        &format!(
            "<section><h2>Choose a new password</h2>{}\
             <p class=\"hint\">This link works once. Confirm it is you with the current code of your authenticator app, one of your recovery codes, or your passkey.</p>\
             <form id=\"reset-form\" method=\"post\" action=\"{RESET_PAGE}\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label for=\"reset-password\">New password</label><input id=\"reset-password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
             <p class=\"hint\">{RECOMMENDED_PASSWORD_CHARS} characters or more recommended (at least {MIN_PASSWORD_CHARS}); any characters; a passphrase is fine; common passwords and your account's name are refused.</p>\
             <label for=\"reset-code\">Current code or recovery code</label><input id=\"reset-code\" name=\"code\" type=\"text\" autocomplete=\"one-time-code\" required>\
             <button id=\"reset-submit\" type=\"submit\">Set the new password</button></form>{with_passkey}</section>",
            error_line(error),
            esc(token)
        ),
    )
}

/// The reset link's page with a fresh passkey challenge (the last one was spent or may
/// be), answered `status`; the link refused when it is not valid (any more).
async fn reset_form_page(
    state: &AppState,
    token: String,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let console = state.console.clone();
    let checked = token.clone();
    match blocking(move || console.reset_offer(&checked)).await {
        Ok(Ok(Some(offer))) => (
            status,
            html(reset_form(&token, error.as_deref(), offer.passkey.as_ref())),
        )
            .into_response(),
        Ok(Ok(None)) => refused_link(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

fn reset_refused() -> String {
    page(
        "Link not valid",
        None,
        "<section><h2>This password reset link is not valid</h2><p id=\"error\" class=\"error\">It is unknown, already used, replaced by a newer one, or expired. Ask an administrator for a new one.</p></section>",
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResetForm {
    name: String,
    reason: String,
}

/// An administrator resets an account's password: the link shown once.
pub(crate) async fn reset_issue(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<ResetForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let name = form.name.clone();
    match blocking(move || console.reset_password(&a, &form.name, &form.reason)).await {
        Ok(Ok(ResetIssued { token, expires })) => html(reset_issued(
            &auth,
            &name,
            &state.console.reset_link(&token),
            expires,
        )),
        Ok(Err(e)) => match form_refusal(&e) {
            Some(status) => accounts_with(&state, auth, status, Some(e.to_string())).await,
            None => failure(&e),
        },
        Err(r) => r,
    }
}

pub(crate) async fn reset_page(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    reset_form_page(&state, q.token, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RedeemForm {
    token: String,
    password: String,
    code: String,
}

fn refused_link() -> Response {
    (StatusCode::FORBIDDEN, html(reset_refused())).into_response()
}

/// The holder of a reset link sets the new password: signed in on success.
pub(crate) async fn reset_redeem(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Form(form): Form<RedeemForm>,
) -> Response {
    // Not a token at all: refused before a turn to hash is taken.
    if !crate::secret::is_token(&form.token) {
        return refused_link();
    }
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let (token, password, code) = (form.token.clone(), form.password, form.code);
    let result = blocking(move || {
        let _permit = permit;
        console.redeem_reset(&token, &password, &code, ip)
    })
    .await;
    redeemed(&state, form.token, result).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RedeemPasskeyForm {
    token: String,
    password: String,
    credential_id: String,
    client_data: String,
    authenticator_data: String,
    signature: String,
    user_handle: String,
}

/// The holder of a reset link sets the new password with one of the account's passkeys:
/// signed in on success.
pub(crate) async fn reset_redeem_passkey(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Form(form): Form<RedeemPasskeyForm>,
) -> Response {
    if !crate::secret::is_token(&form.token) {
        return refused_link();
    }
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let token = form.token.clone();
    let assertion = Assertion {
        credential_id: form.credential_id,
        client_data: form.client_data,
        authenticator_data: form.authenticator_data,
        signature: form.signature,
        user_handle: form.user_handle,
    };
    let password = form.password;
    let result = blocking(move || {
        let _permit = permit;
        console.redeem_reset_with_passkey(&token, &password, &assertion, ip)
    })
    .await;
    redeemed(&state, form.token, result).await
}

/// The answer to a reset link's redemption: signed in, the link refused, or the form
/// again with the refusal (and a fresh passkey challenge).
async fn redeemed(
    state: &AppState,
    token: String,
    result: Result<Result<NewSession, AuthError>, Response>,
) -> Response {
    match result {
        Ok(Ok(session)) => redirect_with_cookie("/", set_cookie(&session)),
        Ok(Err(AuthError::SetupRefused)) => refused_link(),
        Ok(Err(e @ (AuthError::Password(_) | AuthError::Invalid(_)))) => {
            reset_form_page(state, token, StatusCode::BAD_REQUEST, Some(e.to_string())).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CancelForm {
    name: String,
    reason: String,
}

/// An administrator cancels a waiting reset: back to the accounts page, or the refusal
/// shown there.
pub(crate) async fn reset_cancel(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<CancelForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let done = blocking(move || console.cancel_reset(&a, &form.name, &form.reason));
    crate::lifecycle_http::settle(&state, auth, done.await).await
}
