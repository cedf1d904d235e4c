//! The passkey routes (listed in [`crate::http::ROUTES`] with their access rules): the
//! script, sign-in, enrolment, the account's passkeys and the step-up, each a thin
//! handler over [`crate::passkey`].

use axum::extract::{Extension, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{AuthError, Authenticated};
use crate::http::{
    AppState, Peer, SIGN_IN_FAILED, blocking, cookie_token, failure, form_refusal, hash_turn, html,
    peer_ip, redirect, redirect_with_cookie, set_cookie, step_up_target,
};
use crate::passkey::{Assertion, Registration};
use crate::{pages, passkey_pages};

pub(crate) async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("../static/passkey.js"),
    )
        .into_response()
}

/// The sign-in page with a fresh challenge (or why passkeys are off).
async fn sign_in_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let console = state.console.clone();
    match blocking(move || console.passkey_sign_in_options()).await {
        Ok(Ok(options)) => {
            (status, html(passkey_pages::sign_in(Ok(&options), error))).into_response()
        }
        Ok(Err(e @ AuthError::Invalid(_))) => (
            status,
            html(passkey_pages::sign_in(Err(&e.to_string()), error)),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

pub(crate) async fn sign_in_form(State(state): State<AppState>) -> Response {
    sign_in_page(&state, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SignInForm {
    name: String,
    password: String,
    credential_id: String,
    client_data: String,
    authenticator_data: String,
    signature: String,
    user_handle: String,
}

pub(crate) async fn sign_in_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let ip = peer_ip(peer);
    // As at the password's sign-in: a paused address takes no hashing turn.
    match crate::http::address_paused(&state, &form.name, ip).await {
        Ok(true) => {
            return sign_in_page(&state, StatusCode::UNAUTHORIZED, Some(SIGN_IN_FAILED)).await;
        }
        Ok(false) => {}
        Err(r) => return r,
    }
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let previous = cookie_token(&headers);
    let assertion = Assertion {
        credential_id: form.credential_id,
        client_data: form.client_data,
        authenticator_data: form.authenticator_data,
        signature: form.signature,
        user_handle: form.user_handle,
    };
    let result = blocking(move || {
        let _permit = permit;
        console.login_with_passkey(
            &form.name,
            &form.password,
            &assertion,
            ip,
            previous.as_deref(),
        )
    })
    .await;
    match result {
        Ok(Ok(session)) => {
            let to = if session.enrolled { "/" } else { "/enrol" };
            redirect_with_cookie(to, set_cookie(&session))
        }
        Ok(Err(AuthError::SignInFailed)) => {
            sign_in_page(&state, StatusCode::UNAUTHORIZED, Some(SIGN_IN_FAILED)).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

pub(crate) async fn enrol_form(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    if auth.enrolled {
        return redirect("/passkeys");
    }
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.begin_passkey_registration(&a)).await {
        Ok(Ok(options)) => html(passkey_pages::enrol(&auth, Ok(&options), None)),
        Ok(Err(e @ AuthError::Invalid(_))) => {
            html(passkey_pages::enrol(&auth, Err(&e.to_string()), None))
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

/// The passkeys page, with a message and a status.
async fn list_with(
    state: &AppState,
    auth: Authenticated,
    status: StatusCode,
    message: Option<String>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let result = blocking(move || {
        let stepped_up = console.stepped_up(&a);
        let add = if stepped_up {
            Some(console.begin_passkey_registration(&a))
        } else {
            None
        };
        (console.passkeys_of(&a), add, stepped_up)
    })
    .await;
    let (list, add, stepped_up) = match result {
        Ok((Ok(list), add, stepped_up)) => (list, add, stepped_up),
        Ok((Err(e), _, _)) => return failure(&e),
        Err(r) => return r,
    };
    let add_text;
    let add = match &add {
        Some(Ok(options)) => Ok(options),
        Some(Err(e @ (AuthError::Invalid(_) | AuthError::StepUpNeeded))) => {
            add_text = e.to_string();
            Err(add_text.as_str())
        }
        Some(Err(e)) => return failure(e),
        None => Err(""),
    };
    (
        status,
        html(passkey_pages::list(
            &auth,
            &list,
            add,
            stepped_up,
            message.as_deref(),
        )),
    )
        .into_response()
}

pub(crate) async fn list_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    list_with(&state, auth, StatusCode::OK, None).await
}

pub(crate) async fn register_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<Registration>,
) -> Response {
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let a = auth.clone();
    match blocking(move || console.finish_passkey_registration(&a, &form, ip)).await {
        Ok(Ok(Some((codes, session)))) => {
            let mut shown = auth.clone();
            shown.enrolled = true;
            let mut response = html(pages::recovery_codes(&shown, &codes));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&session));
            response
        }
        Ok(Ok(None)) => redirect("/passkeys"),
        Ok(Err(e @ AuthError::StepUpNeeded)) => {
            list_with(&state, auth, StatusCode::FORBIDDEN, Some(e.to_string())).await
        }
        Ok(Err(e @ AuthError::Invalid(_))) if auth.enrolled => {
            list_with(&state, auth, StatusCode::BAD_REQUEST, Some(e.to_string())).await
        }
        Ok(Err(e @ AuthError::Invalid(_))) => {
            // Enrolment: the page again, with a new challenge and the reason.
            let console = state.console.clone();
            let a = auth.clone();
            match blocking(move || console.begin_passkey_registration(&a)).await {
                Ok(Ok(options)) => (
                    StatusCode::BAD_REQUEST,
                    html(passkey_pages::enrol(
                        &auth,
                        Ok(&options),
                        Some(&e.to_string()),
                    )),
                )
                    .into_response(),
                Ok(Err(other)) => failure(&other),
                Err(r) => r,
            }
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RemoveForm {
    id: String,
}

pub(crate) async fn remove_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<RemoveForm>,
) -> Response {
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let a = auth.clone();
    match blocking(move || console.remove_passkey(&a, &form.id, ip)).await {
        Ok(Ok(())) => redirect("/passkeys"),
        Ok(Err(e)) => match form_refusal(&e) {
            Some(status) => list_with(&state, auth, status, Some(e.to_string())).await,
            None => failure(&e),
        },
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NextQuery {
    next: String,
}

async fn step_up_page(
    state: &AppState,
    auth: Authenticated,
    next: &'static str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.passkey_step_up_options(&a)).await {
        Ok(Ok(options)) => (
            status,
            html(passkey_pages::step_up(&auth, Ok(&options), next, error)),
        )
            .into_response(),
        Ok(Err(e @ AuthError::Invalid(_))) => (
            status,
            html(passkey_pages::step_up(
                &auth,
                Err(&e.to_string()),
                next,
                error,
            )),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

pub(crate) async fn step_up_form(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Query(q): Query<NextQuery>,
) -> Response {
    step_up_page(&state, auth, step_up_target(&q.next), StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StepUpForm {
    next: String,
    credential_id: String,
    client_data: String,
    authenticator_data: String,
    signature: String,
    user_handle: String,
}

pub(crate) async fn step_up_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<StepUpForm>,
) -> Response {
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let a = auth.clone();
    let next = step_up_target(&form.next);
    let assertion = Assertion {
        credential_id: form.credential_id,
        client_data: form.client_data,
        authenticator_data: form.authenticator_data,
        signature: form.signature,
        user_handle: form.user_handle,
    };
    match blocking(move || console.step_up_with_passkey(&a, &assertion, ip)).await {
        Ok(Ok(session)) => redirect_with_cookie(next, set_cookie(&session)),
        Ok(Err(e @ AuthError::StepUpFailed)) => {
            step_up_page(
                &state,
                auth,
                next,
                StatusCode::UNAUTHORIZED,
                Some(&e.to_string()),
            )
            .await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}
