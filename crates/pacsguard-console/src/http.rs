//! The console's routes: one table ([`ROUTES`]) says each route's method, path and who
//! may call it; the router is built from it and one middleware enforces it, so a route
//! cannot exist without its rule. The same middleware checks the CSRF token of every
//! state change and the request's origin, and every response carries strict headers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, Form, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::auth::{AuthError, Authenticated, Console, NewSession};
use crate::decide::Decision;
use crate::pages;
use crate::roles::Role;

/// The session cookie. `__Host-` makes browsers refuse it unless it is Secure, has
/// Path=/ and no Domain: no subdomain or plain-HTTP page can set or overwrite it.
pub const COOKIE: &str = "__Host-pacsguard";
/// Largest request body read (forms are small; anyone may send one).
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// Argon2id hashes computed at once (each takes 19 MiB and a core): more sign-in
/// attempts wait for a turn.
pub const MAX_CONCURRENT_HASHES: usize = 2;
/// The longest a request may take, body included: a client that sends its form a byte
/// at a time loses its connection instead of holding one of [`crate::server::MAX_CONNECTIONS`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sign-in waits for a turn before the server answers 503.
pub const HASH_WAIT: Duration = Duration::from_secs(10);

/// Content-Security-Policy: nothing but our own stylesheet and our own script file
/// (the passkey ceremony, `static/passkey.js`), no inline script, no framing, forms only
/// to ourselves.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-in, first setup, the stylesheet).
    Public,
    /// Any session, including one whose second factor is not enrolled yet.
    Enrolment,
    /// A session with an enrolled second factor and at least this role.
    Role(Role),
}

/// One route of the console.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    handler: fn() -> MethodRouter<AppState>,
}

/// Every route, and who may call it: the one source of truth.
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/static/console.css",
        access: Access::Public,
        handler: || get(stylesheet),
    },
    Route {
        method: Method::GET,
        path: "/setup",
        access: Access::Public,
        handler: || get(setup_form),
    },
    Route {
        method: Method::POST,
        path: "/setup",
        access: Access::Public,
        handler: || post(setup_submit),
    },
    Route {
        method: Method::GET,
        path: "/login",
        access: Access::Public,
        handler: || get(login_form),
    },
    Route {
        method: Method::POST,
        path: "/login",
        access: Access::Public,
        handler: || post(login_submit),
    },
    Route {
        method: Method::GET,
        path: "/enrol",
        access: Access::Enrolment,
        handler: || get(enrol_form),
    },
    Route {
        method: Method::POST,
        path: "/enrol",
        access: Access::Enrolment,
        handler: || post(enrol_submit),
    },
    Route {
        method: Method::POST,
        path: "/logout",
        access: Access::Enrolment,
        handler: || post(logout),
    },
    Route {
        method: Method::GET,
        path: "/",
        access: Access::Role(Role::Viewer),
        handler: || get(overview),
    },
    Route {
        method: Method::GET,
        path: "/api/overview",
        access: Access::Role(Role::Viewer),
        handler: || get(api_overview),
    },
    Route {
        method: Method::GET,
        path: "/alerts",
        access: Access::Role(Role::Viewer),
        handler: || get(alerts_page),
    },
    Route {
        method: Method::POST,
        path: "/alerts/acknowledge",
        access: Access::Role(Role::Operator),
        handler: || post(alerts_acknowledge),
    },
    Route {
        method: Method::POST,
        path: "/alerts/acknowledge-dropped",
        access: Access::Role(Role::Operator),
        handler: || post(alerts_acknowledge_dropped),
    },
    Route {
        method: Method::POST,
        path: "/alerts/acknowledge-unread",
        access: Access::Role(Role::Operator),
        handler: || post(alerts_acknowledge_unread),
    },
    Route {
        method: Method::GET,
        path: "/differences",
        access: Access::Role(Role::Viewer),
        handler: || get(differences_page),
    },
    Route {
        method: Method::POST,
        path: "/differences/accept",
        access: Access::Role(Role::Approver),
        handler: || post(differences_accept),
    },
    Route {
        method: Method::POST,
        path: "/differences/confirm",
        access: Access::Role(Role::Approver),
        handler: || post(differences_confirm),
    },
    Route {
        method: Method::GET,
        path: "/step-up",
        access: Access::Role(Role::Viewer),
        handler: || get(step_up_form),
    },
    Route {
        method: Method::POST,
        path: "/step-up",
        access: Access::Role(Role::Viewer),
        handler: || post(step_up_submit),
    },
    Route {
        method: Method::GET,
        path: "/trail",
        access: Access::Role(Role::Viewer),
        handler: || get(trail_page),
    },
    Route {
        method: Method::GET,
        path: "/hosts",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::hosts::hosts_page),
    },
    Route {
        method: Method::POST,
        path: "/hosts/approve",
        access: Access::Role(Role::Approver),
        handler: || post(crate::hosts::hosts_approve),
    },
    Route {
        method: Method::POST,
        path: "/hosts/acknowledge",
        access: Access::Role(Role::Administrator),
        handler: || post(crate::hosts::hosts_acknowledge),
    },
    Route {
        method: Method::POST,
        path: "/hosts/four-eyes",
        access: Access::Role(Role::Administrator),
        handler: || post(crate::hosts::hosts_four_eyes),
    },
    Route {
        method: Method::GET,
        path: "/accounts",
        access: Access::Role(Role::Administrator),
        handler: || get(accounts_page),
    },
    // The accounts page's list for the API: the same rule as the page.
    Route {
        method: Method::GET,
        path: "/api/accounts",
        access: Access::Role(Role::Administrator),
        handler: || get(api_accounts),
    },
    Route {
        method: Method::POST,
        path: "/accounts/invite",
        access: Access::Role(Role::Administrator),
        handler: || post(accounts_invite),
    },
    Route {
        method: Method::GET,
        path: "/welcome",
        access: Access::Public,
        handler: || get(welcome_form),
    },
    Route {
        method: Method::POST,
        path: "/welcome",
        access: Access::Public,
        handler: || post(welcome_submit),
    },
    Route {
        method: Method::POST,
        path: "/accounts/role",
        access: Access::Role(Role::Administrator),
        handler: || post(accounts_role),
    },
    Route {
        method: Method::POST,
        path: "/accounts/revoke",
        access: Access::Role(Role::Administrator),
        handler: || post(accounts_revoke),
    },
    Route {
        method: Method::POST,
        path: "/accounts",
        access: Access::Role(Role::Administrator),
        handler: || post(accounts_create),
    },
    // An account's life cycle (issue 13): crate::lifecycle_http.
    Route {
        method: Method::GET,
        path: "/account/password",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::lifecycle_http::password_form),
    },
    Route {
        method: Method::POST,
        path: "/account/password",
        access: Access::Role(Role::Viewer),
        handler: || post(crate::lifecycle_http::password_submit),
    },
    Route {
        method: Method::POST,
        path: "/accounts/disable",
        access: Access::Role(Role::Administrator),
        handler: || post(crate::lifecycle_http::disable_submit),
    },
    Route {
        method: Method::POST,
        path: "/accounts/enable",
        access: Access::Role(Role::Administrator),
        handler: || post(crate::lifecycle_http::enable_submit),
    },
    // An administrator's password reset (issue 13): crate::reset_http. The link's page
    // is public: the link and the account's own second factor are its authentication.
    Route {
        method: Method::POST,
        path: "/accounts/reset",
        access: Access::Role(Role::Administrator),
        handler: || post(crate::reset_http::reset_issue),
    },
    Route {
        method: Method::POST,
        path: crate::reset_http::RESET_CANCEL_PATH,
        access: Access::Role(Role::Administrator),
        handler: || post(crate::reset_http::reset_cancel),
    },
    Route {
        method: Method::GET,
        path: "/reset",
        access: Access::Public,
        handler: || get(crate::reset_http::reset_page),
    },
    Route {
        method: Method::POST,
        path: "/reset",
        access: Access::Public,
        handler: || post(crate::reset_http::reset_redeem),
    },
    Route {
        method: Method::POST,
        path: crate::reset_http::RESET_PASSKEY_PATH,
        access: Access::Public,
        handler: || post(crate::reset_http::reset_redeem_passkey),
    },
    // Passkeys (WebAuthn): crate::passkey_http.
    Route {
        method: Method::GET,
        path: "/static/passkey.js",
        access: Access::Public,
        handler: || get(crate::passkey_http::script),
    },
    Route {
        method: Method::GET,
        path: "/login/passkey",
        access: Access::Public,
        handler: || get(crate::passkey_http::sign_in_form),
    },
    Route {
        method: Method::POST,
        path: "/login/passkey",
        access: Access::Public,
        handler: || post(crate::passkey_http::sign_in_submit),
    },
    Route {
        method: Method::GET,
        path: "/enrol/passkey",
        access: Access::Enrolment,
        handler: || get(crate::passkey_http::enrol_form),
    },
    Route {
        method: Method::POST,
        path: "/passkeys/register",
        access: Access::Enrolment,
        handler: || post(crate::passkey_http::register_submit),
    },
    Route {
        method: Method::GET,
        path: "/passkeys",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::passkey_http::list_page),
    },
    Route {
        method: Method::POST,
        path: "/passkeys/remove",
        access: Access::Role(Role::Viewer),
        handler: || post(crate::passkey_http::remove_submit),
    },
    Route {
        method: Method::GET,
        path: "/step-up/passkey",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::passkey_http::step_up_form),
    },
    Route {
        method: Method::POST,
        path: "/step-up/passkey",
        access: Access::Role(Role::Viewer),
        handler: || post(crate::passkey_http::step_up_submit),
    },
    // Break-glass (crate::breakglass): the emergency sign-in, and its seal.
    Route {
        method: Method::GET,
        path: "/break-glass",
        access: Access::Public,
        handler: || get(crate::breakglass_http::break_glass_form),
    },
    Route {
        method: Method::POST,
        path: "/break-glass",
        access: Access::Public,
        handler: || post(crate::breakglass_http::break_glass_submit),
    },
    Route {
        method: Method::GET,
        path: "/accounts/break-glass",
        access: Access::Role(Role::Administrator),
        handler: || get(crate::breakglass_http::seal_form),
    },
    Route {
        method: Method::POST,
        path: "/accounts/break-glass",
        access: Access::Role(Role::Administrator),
        handler: || post(crate::breakglass_http::seal_submit),
    },
    Route {
        method: Method::GET,
        path: "/api/openapi.json",
        access: Access::Role(Role::Viewer),
        handler: || get(openapi_document),
    },
    Route {
        method: Method::GET,
        path: "/sessions",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::sessions::sessions_form),
    },
    Route {
        method: Method::POST,
        path: "/sessions/end",
        access: Access::Role(Role::Viewer),
        handler: || post(crate::sessions::sessions_end),
    },
    Route {
        method: Method::GET,
        path: "/charts",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::charts::charts_page),
    },
    Route {
        method: Method::GET,
        path: "/quarantine",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::quarantine::quarantine_page),
    },
    Route {
        method: Method::GET,
        path: "/quarantine/item",
        access: Access::Role(Role::Viewer),
        handler: || get(crate::quarantine::quarantine_item),
    },
    Route {
        method: Method::POST,
        path: "/quarantine/export",
        access: Access::Role(Role::Approver),
        handler: || post(crate::quarantine::quarantine_export),
    },
];

/// The OpenAPI document of these routes ([`crate::openapi`]).
async fn openapi_document() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

/// The route a request matched, from the table.
pub fn route_of(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == *method && r.path == path)
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub console: Arc<Console>,
    hashes: Arc<Semaphore>,
}

/// The client's address, put on each connection by the server.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The console's router, with every route of [`ROUTES`] behind its access rule.
pub fn app(console: Arc<Console>) -> Router {
    app_with(console, Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES)))
}

/// [`app`] with its hashing turns given (a test holds them).
fn app_with(console: Arc<Console>, hashes: Arc<Semaphore>) -> Router {
    let state = AppState { console, hashes };
    let mut router: Router<AppState> = Router::new();
    for route in ROUTES {
        router = router.route(route.path, (route.handler)());
    }
    router
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), known_host))
        .layer(middleware::from_fn(bounded_target))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        html(pages::message("Not found", "There is no such page.")),
    )
        .into_response()
}

pub(crate) fn html(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

pub(crate) fn status_page(status: StatusCode, title: &str, text: &str) -> Response {
    (status, html(pages::message(title, text))).into_response()
}

/// Requests refused for a host name the console does not answer to, written
/// rate-limited.
static UNKNOWN_HOST: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");
/// Bytes of a refused `Host` header written to the log.
const MAX_SHOWN_HOST_BYTES: usize = 64;

/// Requests whose proxy headers were ignored, written rate-limited.
static FORWARDING_IGNORED: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// The headers by which a reverse proxy says the host, scheme or client it forwarded
/// for. The console trusts no proxy: it reads none of them (its links are built on its
/// origin, its `Host` check and its throttling on what reached it); a request carrying
/// one is served as if it did not, and said on the log (rate-limited) so an administrator
/// who put a proxy in front learns that those headers count for nothing here (review
/// r25-console: whether `X-Forwarded-Host` could steer a link was unsaid).
const FORWARDING_HEADERS: &[&str] = &["x-forwarded-host", "forwarded", "x-forwarded-for"];

/// Says on the log that a request's proxy headers ([`FORWARDING_HEADERS`]) were ignored.
fn say_ignored_forwarding(request: &Request) {
    let Some((name, value)) = FORWARDING_HEADERS
        .iter()
        .find_map(|name| Some((*name, request.headers().get(*name)?)))
    else {
        return;
    };
    let bytes = value.as_bytes();
    let shown = pacsguard_events::escape_bytes(&bytes[..bytes.len().min(MAX_SHOWN_HOST_BYTES)]);
    let from = request.extensions().get::<Peer>().map_or_else(
        || "an unknown address".to_string(),
        |p| p.0.ip().to_string(),
    );
    FORWARDING_IGNORED.refused(&format!(
        "to follow the {name} header (\"{shown}\") of a request from {from}: this console trusts no proxy, so the header was ignored (links are built on its origin, [console] origin)"
    ));
}

/// Refuses (421) a request whose `Host` names another site than this console: a page of
/// that site whose name an attacker made resolve to the console (DNS rebinding) would
/// otherwise be same-origin with it from the browser's side, and could drive the sign-in
/// and the other public routes from inside the hospital's network (review r24-console).
async fn known_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map_or(&b""[..], HeaderValue::as_bytes);
    if std::str::from_utf8(host).is_ok_and(|h| state.console.answers_to(h)) {
        say_ignored_forwarding(&request);
        return next.run(request).await;
    }
    let shown = pacsguard_events::escape_bytes(&host[..host.len().min(MAX_SHOWN_HOST_BYTES)]);
    let from = request.extensions().get::<Peer>().map_or_else(
        || "an unknown address".to_string(),
        |p| p.0.ip().to_string(),
    );
    UNKNOWN_HOST.refused(&format!(
        "a request from {from} for the host name \"{shown}\", which this console does not answer to (DNS rebinding, or a name to add to [console] allowed_hosts); answered 421"
    ));
    status_page(
        StatusCode::MISDIRECTED_REQUEST,
        "Unknown name",
        "This console does not answer to this name. Open it at the address its administrator gave you.",
    )
}

/// Requests refused for a target over [`crate::server::MAX_REQUEST_TARGET_BYTES`],
/// written rate-limited.
static LONG_TARGET: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// Answers 414 URI Too Long to a request whose target is over
/// [`crate::server::MAX_REQUEST_TARGET_BYTES`] (one whose request line does not even fit
/// the head's limit is answered so before hyper reads it: [`crate::request_line`]).
async fn bounded_target(request: Request, next: Next) -> Response {
    let target = target_bytes(request.uri());
    if target <= crate::server::MAX_REQUEST_TARGET_BYTES {
        return next.run(request).await;
    }
    let from = request.extensions().get::<Peer>().map_or_else(
        || "an unknown address".to_string(),
        |p| p.0.ip().to_string(),
    );
    LONG_TARGET.refused(&format!(
        "a request from {from}: its target is {target} bytes, over MAX_REQUEST_TARGET_BYTES ({}); answered 414",
        crate::server::MAX_REQUEST_TARGET_BYTES
    ));
    crate::request_line::too_long_page()
}

/// How many bytes a request's target takes on its request line.
fn target_bytes(uri: &axum::http::Uri) -> usize {
    uri.scheme_str().map_or(0, |s| s.len() + "://".len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len())
}

/// Ends a request that takes longer than [`REQUEST_TIMEOUT`].
async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = status_page(
                StatusCode::REQUEST_TIMEOUT,
                "Too slow",
                "The request took too long.",
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Headers on every response, errors included.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    add_security_headers(response.headers_mut());
    response
}

/// Adds the headers every answer carries (also the 414 written before hyper reads a
/// request, [`crate::request_line`]): one list for both.
pub(crate) fn add_security_headers(headers: &mut HeaderMap) {
    let fixed: [(&str, &str); 7] = [
        ("content-security-policy", CSP),
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == COOKIE
            {
                return Some(value.to_string());
            }
        }
    }
    None
}

pub(crate) fn set_cookie(session: &NewSession) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
        session.token
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-pacsguard=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

pub(crate) fn redirect(to: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(to))],
    )
        .into_response()
}

pub(crate) fn redirect_with_cookie(to: &'static str, cookie: HeaderValue) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static(to)),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response()
}

/// Runs store and hashing work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        status_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The request failed.",
        )
    })
}

/// The status of a refusal the person can correct on the form they posted (a step-up
/// is missing: 403; what they typed is not valid: 400), shown on that form again; `None`
/// for every other error, which is a [`failure`].
pub(crate) fn form_refusal(error: &AuthError) -> Option<StatusCode> {
    match error {
        AuthError::StepUpNeeded => Some(StatusCode::FORBIDDEN),
        AuthError::Invalid(_) => Some(StatusCode::BAD_REQUEST),
        _ => None,
    }
}

/// Requests answered 503 because the console's store could not be used (its disk
/// full, its file system failing, another writer holding it), written rate-limited: a
/// full disk fails every request, and each must not become a line of its own.
static STORE_UNAVAILABLE: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// The answer to an error that is not the person's to correct: fixed text to the
/// client, the detail to the server's log. The one mapping of the console's errors to
/// a status: what could not be recorded or written (the trail, or the store, which
/// holds every count, session and decision the trail's records describe) is 503 "Not
/// recorded", nothing done and worth trying again; the rest 500.
pub(crate) fn failure(error: &AuthError) -> Response {
    match error {
        AuthError::Unrecorded(_) => {
            eprintln!("pacsguard serve: {error}");
            not_recorded("The audit trail cannot record this action, so it was not done.")
        }
        // Review r28-console: a full disk made every request (a failed sign-in among
        // them) a 500, as if the console were broken rather than its disk.
        AuthError::Unavailable(_) => store_unavailable(error),
        AuthError::Store(store) if store.is_unavailable() => store_unavailable(error),
        _ => {
            eprintln!("pacsguard serve: {error}");
            status_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The request failed; the server log says why.",
            )
        }
    }
}

/// 503 "Not recorded" for a store (or a guard's store or trail) that cannot be written
/// now; said on the log, rate-limited.
fn store_unavailable(error: &AuthError) -> Response {
    STORE_UNAVAILABLE.refused(&format!(
        "a request: the console's store cannot be used now, nothing was done; answered 503: {error}"
    ));
    not_recorded(
        "The console cannot write its store now (the server's log says why), so nothing was done. Try again once it is fixed.",
    )
}

/// 503 "Not recorded": the action was not done because what it needs written could not
/// be.
fn not_recorded(text: &str) -> Response {
    status_page(StatusCode::SERVICE_UNAVAILABLE, "Not recorded", text)
}

/// Whether a state-changing request comes from our own pages: browsers send `Origin`
/// (and `Sec-Fetch-Site`) with every POST; another site's form is refused even before
/// the CSRF token is looked at.
fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    if fetch_site.is_some_and(|v| v != b"same-origin" && v != b"none") {
        return false;
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        // Our `Referrer-Policy: no-referrer` makes browsers send `Origin: null` with
        // their own form posts (seen with Chromium): then the browser's word on the
        // request's site, which no page can forge, must say it is our own.
        (Some(origin), _) if origin.as_bytes() == b"null" => fetch_site == Some(b"same-origin"),
        (Some(origin), Some(host)) => {
            origin.as_bytes() == format!("https://{}", host.to_str().unwrap_or("")).as_bytes()
        }
        (Some(_), None) => false,
    }
}

fn form_field(body: &[u8], field: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
}

/// application/x-www-form-urlencoded pairs (the parser axum's `Form` uses, through
/// serde: here only to find the CSRF field before the handler runs).
fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    body.split(|&b| b == b'&').filter_map(|pair| {
        let mut it = pair.splitn(2, |&b| b == b'=');
        let key = decode(it.next()?)?;
        let value = decode(it.next().unwrap_or(b""))?;
        Some((key, value))
    })
}

fn decode(bytes: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Enforces [`ROUTES`]: the session, the role, enrolment first, the CSRF token and the
/// origin of every POST.
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // Fail closed: a route missing from the table is nobody's to call.
    let Some(route) = route_of(request.method(), &path) else {
        return status_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This request is not allowed.",
        );
    };
    let is_post = request.method() == Method::POST;
    if is_post && !same_origin(request.headers()) {
        return status_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "A request from another site was refused.",
        );
    }
    if route.access == Access::Public {
        return next.run(request).await;
    }
    let Some(token) = cookie_token(request.headers()) else {
        return unauthenticated(is_post);
    };
    let console = state.console.clone();
    let used = if request.method() == Method::GET {
        crate::auth::SessionUse::Reads
    } else {
        crate::auth::SessionUse::Acts
    };
    let auth = match blocking(move || console.authenticate_for(&token, used)).await {
        Ok(Ok(Some(auth))) => auth,
        Ok(Ok(None)) => return unauthenticated(is_post),
        Ok(Err(e)) => return failure(&e),
        Err(response) => return response,
    };
    if !auth.enrolled && route.access != Access::Enrolment {
        return if is_post {
            status_page(
                StatusCode::FORBIDDEN,
                "Second factor first",
                "Enrol your second factor first.",
            )
        } else {
            redirect("/enrol")
        };
    }
    if let Access::Role(min) = route.access
        && auth.role < min
    {
        if let Err(e) = state
            .console
            .denied(&auth, route.method.as_str(), route.path, min)
        {
            return failure(&e);
        }
        return status_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "This needs the role {} or higher; you are {}.",
                min.as_str(),
                auth.role.as_str()
            ),
        );
    }
    // Break-glass: every request of an emergency access is on the trail before it is
    // handled; one that cannot be recorded is not handled.
    if crate::breakglass::is_emergency(&auth)
        && let Err(e) = state
            .console
            .emergency_request(&auth, route.method.as_str(), route.path)
    {
        return failure(&e);
    }
    let (parts, body) = request.into_parts();
    let mut request = if is_post {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return status_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The request is too large.",
            );
        };
        let presented = form_field(&bytes, "csrf").unwrap_or_default();
        if !Console::csrf_matches(&auth, &presented) {
            return status_page(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "The form's security token is missing or stale; reload the page and try again.",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    request.extensions_mut().insert(auth);
    next.run(request).await
}

fn unauthenticated(is_post: bool) -> Response {
    if is_post {
        status_page(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session ended; sign in again.",
        )
    } else {
        redirect("/login")
    }
}

pub(crate) fn peer_ip(peer: Option<Extension<Peer>>) -> IpAddr {
    peer.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(Peer(addr))| {
        addr.ip()
    })
}

async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        include_str!("../static/console.css"),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TokenQuery {
    pub(crate) token: String,
}

async fn setup_form(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let link = OneTimeLink {
        valid: Console::setup_token_valid,
        form: pages::setup,
        refused: pages::setup_refused,
    };
    link.page(&state, q.token).await
}

/// A page reached by a one-time link (the first administrator's setup, an invitation, a
/// password reset):
/// its form while the token is valid, a refusal once it is spent or expired.
pub(crate) struct OneTimeLink {
    pub(crate) valid: fn(&Console, &str) -> Result<bool, AuthError>,
    pub(crate) form: fn(&str, Option<&str>) -> String,
    pub(crate) refused: fn() -> String,
}

impl OneTimeLink {
    pub(crate) async fn page(self, state: &AppState, token: String) -> Response {
        let console = state.console.clone();
        let checked = token.clone();
        let valid = self.valid;
        match blocking(move || valid(&console, &checked)).await {
            Ok(Ok(true)) => html((self.form)(&token, None)),
            Ok(Ok(false)) => (StatusCode::FORBIDDEN, html((self.refused)())).into_response(),
            Ok(Err(e)) => failure(&e),
            Err(r) => r,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SetupForm {
    token: String,
    name: String,
    password: String,
}

/// Whether sign-in from `ip` is paused (the attempt of `name` then recorded as refused
/// unchecked): asked before a turn to hash is taken ([`Console::refuse_if_address_paused`]).
pub(crate) async fn address_paused(
    state: &AppState,
    name: &str,
    ip: IpAddr,
) -> Result<bool, Response> {
    let console = state.console.clone();
    let name = name.to_string();
    match blocking(move || console.refuse_if_address_paused(&name, ip)).await {
        Ok(Ok(paused)) => Ok(paused),
        Ok(Err(e)) => Err(failure(&e)),
        Err(r) => Err(r),
    }
}

/// Waits for a turn to hash (see [`MAX_CONCURRENT_HASHES`]).
pub(crate) async fn hash_turn(
    state: &AppState,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    turn(&state.hashes).await
}

/// Sign-ins refused for want of a hashing turn within [`HASH_WAIT`], written
/// rate-limited: a flood of sign-ins that keeps people out is never silent (review r23).
static BUSY: crate::refusals::RefusalLog = crate::refusals::RefusalLog::new("pacsguard serve");

/// A turn to hash from `hashes`, or the answer 503 after [`HASH_WAIT`] (said on the log).
async fn turn(hashes: &Arc<Semaphore>) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    match tokio::time::timeout(HASH_WAIT, hashes.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err({
            BUSY.refused(&format!(
                "a sign-in: all MAX_CONCURRENT_HASHES ({MAX_CONCURRENT_HASHES}) password hashing turns stayed taken for HASH_WAIT ({} s); answered 503",
                HASH_WAIT.as_secs()
            ));
            status_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "Too many sign-ins at once; try again in a moment.",
            )
        }),
    }
}

async fn setup_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Form(form): Form<SetupForm>,
) -> Response {
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let (token, name, password) = (form.token.clone(), form.name.clone(), form.password);
    let result = blocking(move || {
        let _permit = permit;
        console.setup(&token, &name, &password, ip)
    })
    .await;
    match result {
        Ok(Ok(session)) => redirect_with_cookie("/enrol", set_cookie(&session)),
        Ok(Err(AuthError::SetupRefused)) => {
            (StatusCode::FORBIDDEN, html(pages::setup_refused())).into_response()
        }
        Ok(Err(e @ (AuthError::Password(_) | AuthError::Invalid(_)))) => (
            StatusCode::BAD_REQUEST,
            html(pages::setup(&form.token, Some(&e.to_string()))),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

async fn login_form() -> Response {
    html(pages::login(None))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    name: String,
    password: String,
    code: String,
}

/// The one answer to every refused sign-in.
pub const SIGN_IN_FAILED: &str = "Sign-in failed. Check the account name, password and code. After repeated failures sign-in pauses for a while.";

async fn login_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = peer_ip(peer);
    // A paused address is refused before it takes a hashing turn: its attempts are
    // refused whatever they hold, and each one hashed (the dummy hash of a refusal
    // unchecked) took one of MAX_CONCURRENT_HASHES turns from everyone else (review
    // r23). The refusal tells it nothing of the accounts.
    match address_paused(&state, &form.name, ip).await {
        Ok(true) => {
            return (
                StatusCode::UNAUTHORIZED,
                html(pages::login(Some(SIGN_IN_FAILED))),
            )
                .into_response();
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
    let result = blocking(move || {
        let _permit = permit;
        console.login(
            &form.name,
            &form.password,
            &form.code,
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
        Ok(Err(AuthError::SignInFailed)) => (
            StatusCode::UNAUTHORIZED,
            html(pages::login(Some(SIGN_IN_FAILED))),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

async fn enrol_form(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    if auth.enrolled {
        return status_page(
            StatusCode::FORBIDDEN,
            "Already enrolled",
            "This account has a second factor. Replacing it will need a fresh check of the current one (not available yet).",
        );
    }
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.begin_enrolment(&a)).await {
        Ok(Ok(enrolment)) => html(pages::enrol(&auth, &enrolment, None)),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodeForm {
    code: String,
}

async fn enrol_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<CodeForm>,
) -> Response {
    if auth.enrolled {
        return status_page(
            StatusCode::FORBIDDEN,
            "Already enrolled",
            "This account has a second factor.",
        );
    }
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let a = auth.clone();
    let result = blocking(move || {
        let confirmed = console.confirm_enrolment(&a, &form.code, ip);
        let pending = console.pending_enrolment(&a);
        (confirmed, pending)
    })
    .await;
    match result {
        Ok((Ok((codes, session)), _)) => {
            let mut shown = auth.clone();
            shown.enrolled = true;
            let mut response = html(pages::recovery_codes(&shown, &codes));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&session));
            response
        }
        Ok((Err(e @ (AuthError::WrongCode | AuthError::Invalid(_))), Ok(Some(enrolment)))) => (
            StatusCode::BAD_REQUEST,
            html(pages::enrol(&auth, &enrolment, Some(&e.to_string()))),
        )
            .into_response(),
        Ok((Err(e @ AuthError::Invalid(_)), _)) => {
            status_page(StatusCode::BAD_REQUEST, "Enrolment", &e.to_string())
        }
        Ok((Err(e), _)) => failure(&e),
        Err(r) => r,
    }
}

async fn logout(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    let console = state.console.clone();
    match blocking(move || console.logout(&auth)).await {
        Ok(Ok(())) => redirect_with_cookie("/login", clear_cookie()),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

async fn overview(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    html(pages::overview(&auth, &state.console.guard.snapshot()))
}

async fn api_overview(State(state): State<AppState>) -> Response {
    axum::Json(state.console.guard.snapshot()).into_response()
}

/// The accounts page, with a message (an error a person can correct) and a status.
pub(crate) async fn accounts_with(
    state: &AppState,
    auth: Authenticated,
    status: StatusCode,
    message: Option<String>,
) -> Response {
    let console = state.console.clone();
    match blocking(move || {
        let list = console.accounts()?;
        let disabled = console.disabled_accounts()?;
        let pending = console.pending_resets()?;
        Ok::<_, AuthError>((list, disabled, console.sessions()?, pending))
    })
    .await
    {
        Ok(Ok((list, disabled, sessions, pending))) => (
            status,
            html(pages::accounts(
                &auth,
                &pages::AccountLists {
                    accounts: &list,
                    disabled: &disabled,
                    sessions: &sessions,
                    pending_resets: &pending,
                },
                message.as_deref(),
            )),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

/// The accounts page's lists as JSON: each account (name, role, whether a second factor
/// is enrolled, whether disabled) and each live session (account, signed in, last used,
/// address), as the page shows them.
async fn api_accounts(State(state): State<AppState>) -> Response {
    let console = state.console.clone();
    let read = blocking(move || {
        let list = console.accounts()?;
        let disabled = console.disabled_accounts()?;
        let pending = console.pending_resets()?;
        Ok::<_, AuthError>((list, disabled, console.sessions()?, pending))
    });
    match read.await {
        Ok(Ok((list, disabled, sessions, pending))) => {
            let accounts: Vec<serde_json::Value> = list
                .iter()
                .map(|account| {
                    serde_json::json!({
                        "name": account.name,
                        "role": account.role,
                        "second_factor": account.enrolled(),
                        "totp": account.totp,
                        "passkey": account.passkey,
                        "disabled": disabled.contains(&account.name),
                    })
                })
                .collect();
            let sessions: Vec<serde_json::Value> = sessions
                .iter()
                .map(|(account, signed_in, last_used, address)| {
                    serde_json::json!({
                        "account": account,
                        "signed_in": signed_in,
                        "last_used": last_used,
                        "address": address,
                    })
                })
                .collect();
            let pending: Vec<serde_json::Value> = pending
                .iter()
                .map(|reset| {
                    serde_json::json!({
                        "account": reset.account,
                        "started_by": reset.by,
                        "since": reset.since,
                        "expires": reset.expires,
                    })
                })
                .collect();
            axum::Json(serde_json::json!({
                "accounts": accounts,
                "sessions": sessions,
                "pending_resets": pending,
            }))
            .into_response()
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

async fn accounts_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    accounts_with(&state, auth, StatusCode::OK, None).await
}

async fn alerts_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    html(pages::alerts(
        &auth,
        &state.console.guard.open_findings(),
        None,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AcknowledgeForm {
    id: u64,
    comment: String,
}

async fn alerts_acknowledge(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<AcknowledgeForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let done = blocking(move || console.acknowledge_finding(&a, form.id, &form.comment)).await;
    alerts_answer(&state, &auth, done)
}

/// What an action of the alerts page answers: back to the page once done, the page
/// again with the reason when refused (400), the failure otherwise.
fn alerts_answer(
    state: &AppState,
    auth: &Authenticated,
    done: Result<Result<(), AuthError>, Response>,
) -> Response {
    match done {
        Ok(Ok(())) => redirect("/alerts"),
        Ok(Err(e @ AuthError::Invalid(_))) => (
            StatusCode::BAD_REQUEST,
            html(pages::alerts(
                auth,
                &state.console.guard.open_findings(),
                Some(&e.to_string()),
            )),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AcknowledgeDroppedForm {
    /// The root as the alerts page showed it (empty: outside every root).
    root: String,
    /// How many the page said were dropped.
    count: u64,
    /// The number of the last finding the page counted among them.
    last: u64,
    comment: String,
}

async fn alerts_acknowledge_dropped(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<AcknowledgeDroppedForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let done = blocking(move || {
        console.acknowledge_dropped_findings(&a, &form.root, (form.count, form.last), &form.comment)
    })
    .await;
    alerts_answer(&state, &auth, done)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AcknowledgeUnreadForm {
    comment: String,
}

async fn alerts_acknowledge_unread(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<AcknowledgeUnreadForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let done = blocking(move || console.acknowledge_dropped_unread(&a, &form.comment)).await;
    alerts_answer(&state, &auth, done)
}

async fn differences_with(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let console = &state.console;
    (
        status,
        html(pages::differences(
            auth,
            &console.guard.snapshot(),
            &console.guard.open_findings(),
            console.stepped_up(auth),
            &console.pending_accepts(),
            message,
        )),
    )
        .into_response()
}

async fn differences_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    differences_with(&state, &auth, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AcceptForm {
    root: String,
    reason: String,
    /// What the page showed ([`crate::guard::OpenFindings::seen`]).
    seen: String,
}

async fn differences_accept(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<AcceptForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    // A root shown with a character that hides text comes back with its code.
    let root = console.guard.root_named(&form.root);
    match blocking(move || console.accept(&a, &root, &form.reason, &form.seen)).await {
        Ok(Ok(Decision::Accepted(accepted))) => html(pages::accepted(
            &auth,
            &form.root,
            accepted.generation,
            accepted.accepted.len(),
        )),
        Ok(Ok(Decision::Waiting(id))) => html(pages::waiting(&auth, &form.root, id)),
        Ok(Err(e)) => decision_refused(&state, &auth, &e).await,
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfirmForm {
    id: u64,
    reason: String,
    seen: String,
}

async fn differences_confirm(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.confirm_accept(&a, form.id, &form.reason, &form.seen)).await {
        Ok(Ok((accepted, root))) => html(pages::accepted(
            &auth,
            &root,
            accepted.generation,
            accepted.accepted.len(),
        )),
        Ok(Err(e)) => decision_refused(&state, &auth, &e).await,
        Err(r) => r,
    }
}

/// A decision (an acceptance or its confirmation) that was not taken: a missing step-up
/// (403) or a request that no longer matches what the page showed (400) is said on the
/// differences page, anything else is a failure.
async fn decision_refused(state: &AppState, auth: &Authenticated, e: &AuthError) -> Response {
    let status = match e {
        AuthError::StepUpNeeded => StatusCode::FORBIDDEN,
        AuthError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => return failure(e),
    };
    differences_with(state, auth, status, Some(&e.to_string())).await
}

/// Where a step-up may lead back to: fixed pages only (no open redirect).
pub(crate) fn step_up_target(next: &str) -> &'static str {
    match next {
        "/accounts" => "/accounts",
        "/passkeys" => "/passkeys",
        "/hosts" => "/hosts",
        crate::lifecycle_http::PASSWORD_PAGE => crate::lifecycle_http::PASSWORD_PAGE,
        _ => "/differences",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NextQuery {
    next: String,
}

async fn step_up_form(
    Extension(auth): Extension<Authenticated>,
    Query(q): Query<NextQuery>,
) -> Response {
    html(pages::step_up(&auth, step_up_target(&q.next), None))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StepUpForm {
    code: String,
    next: String,
}

async fn step_up_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<StepUpForm>,
) -> Response {
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let a = auth.clone();
    let next = step_up_target(&form.next);
    match blocking(move || console.step_up(&a, &form.code, ip)).await {
        Ok(Ok(session)) => redirect_with_cookie(next, set_cookie(&session)),
        Ok(Err(e @ AuthError::StepUpFailed)) => (
            StatusCode::UNAUTHORIZED,
            html(pages::step_up(&auth, next, Some(&e.to_string()))),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

/// Records shown on the trail page.
pub const TRAIL_PAGE_RECORDS: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TrailQuery {
    /// The page below this record's `seq` (the newest page when absent).
    before: Option<u64>,
}

async fn trail_page(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Query(q): Query<TrailQuery>,
) -> Response {
    let console = state.console.clone();
    match blocking(move || console.trail_page(q.before, TRAIL_PAGE_RECORDS)).await {
        Ok(Ok((records, older))) => html(pages::trail(
            &auth,
            &state.console.guard.snapshot(),
            &records,
            older,
        )),
        Ok(Err(e @ AuthError::Invalid(_))) => status_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Audit trail",
            &e.to_string(),
        ),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoleForm {
    name: String,
    role: String,
    reason: String,
}

async fn accounts_role(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<RoleForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.change_role(&a, &form.name, &form.role, &form.reason)).await {
        Ok(Ok(())) => redirect("/accounts"),
        Ok(Err(e)) => match form_refusal(&e) {
            Some(status) => accounts_with(&state, auth, status, Some(e.to_string())).await,
            None => failure(&e),
        },
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InviteForm {
    name: String,
    role: String,
    reason: String,
}

async fn accounts_invite(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<InviteForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    let name = form.name.clone();
    match blocking(move || console.invite(&a, &form.name, &form.role, &form.reason)).await {
        Ok(Ok(token)) => html(pages::invited(
            &auth,
            &name,
            &state.console.invitation_link(&token),
        )),
        Ok(Err(e)) => match form_refusal(&e) {
            Some(status) => accounts_with(&state, auth, status, Some(e.to_string())).await,
            None => failure(&e),
        },
        Err(r) => r,
    }
}

async fn welcome_form(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let link = OneTimeLink {
        valid: Console::invitation_valid,
        form: pages::welcome,
        refused: pages::invitation_refused,
    };
    link.page(&state, q.token).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WelcomeForm {
    token: String,
    password: String,
}

async fn welcome_submit(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Form(form): Form<WelcomeForm>,
) -> Response {
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let ip = peer_ip(peer);
    let (token, password) = (form.token.clone(), form.password);
    let result = blocking(move || {
        let _permit = permit;
        console.redeem_invitation(&token, &password, ip)
    })
    .await;
    match result {
        Ok(Ok(session)) => redirect_with_cookie("/enrol", set_cookie(&session)),
        Ok(Err(AuthError::SetupRefused)) => {
            (StatusCode::FORBIDDEN, html(pages::invitation_refused())).into_response()
        }
        Ok(Err(e @ AuthError::Password(_))) => (
            StatusCode::BAD_REQUEST,
            html(pages::welcome(&form.token, Some(&e.to_string()))),
        )
            .into_response(),
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NameForm {
    name: String,
}

async fn accounts_revoke(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<NameForm>,
) -> Response {
    let console = state.console.clone();
    let a = auth.clone();
    match blocking(move || console.revoke_sessions(&a, &form.name)).await {
        Ok(Ok(_)) => redirect("/accounts"),
        Ok(Err(e @ AuthError::Invalid(_))) => {
            accounts_with(&state, auth, StatusCode::BAD_REQUEST, Some(e.to_string())).await
        }
        Ok(Err(e)) => failure(&e),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AccountForm {
    name: String,
    role: String,
    password: String,
    reason: String,
}

async fn accounts_create(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Form(form): Form<AccountForm>,
) -> Response {
    let permit = match hash_turn(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let console = state.console.clone();
    let a = auth.clone();
    let result = blocking(move || {
        let _permit = permit;
        let created =
            console.create_account(&a, &form.name, &form.role, &form.password, &form.reason);
        (created, console.accounts())
    })
    .await;
    match result {
        Ok((Ok(()), _)) => redirect("/accounts"),
        Ok((Err(e @ AuthError::StepUpNeeded), Ok(_))) => {
            accounts_with(&state, auth, StatusCode::FORBIDDEN, Some(e.to_string())).await
        }
        Ok((Err(e @ (AuthError::Password(_) | AuthError::Invalid(_))), Ok(_))) => {
            accounts_with(&state, auth, StatusCode::BAD_REQUEST, Some(e.to_string())).await
        }
        Ok((Err(e), _)) => failure(&e),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&csrf=ab%2Bc+d&b=2", "csrf").as_deref(),
            Some("ab+c d")
        );
        assert_eq!(form_field(b"csrf=%zz", "csrf"), None);
        assert_eq!(form_field(b"x=1", "csrf"), None);
    }

    /// Found in review (r23): sign-ins flooding the hashing turns (MAX_CONCURRENT_HASHES)
    /// made a person's sign-in wait HASH_WAIT and get 503, and the service's log said
    /// nothing. A turn not given in time is now counted and written.
    #[tokio::test(start_paused = true)]
    async fn a_sign_in_refused_for_want_of_a_hashing_turn_is_said() {
        let hashes = Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES));
        let held: Vec<_> = (0..MAX_CONCURRENT_HASHES)
            .map(|_| hashes.clone().try_acquire_owned().expect("free"))
            .collect();
        let before = BUSY.total();
        let refused = turn(&hashes).await.expect_err("no turn within HASH_WAIT");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(BUSY.total(), before + 1, "counted and written");
        drop(held);
        assert!(turn(&hashes).await.is_ok());
    }

    /// Found in review (r23): a paused address's sign-ins are refused whatever they
    /// hold, yet each waited for and took a hashing turn (its dummy hash) from everyone
    /// else. Refused before the turn now: answered with every turn taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_address_is_refused_without_taking_a_hashing_turn() {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;
        let home = tempfile::tempdir().expect("tempdir");
        let store = home.path().join("store.sqlite");
        drop(pacsguard_store::Store::open(&store).expect("store"));
        let db = pacsguard_store::ConsoleDb::open(&store).expect("console tables");
        let inbox = pacsguard_events::Inbox::new();
        let clock = crate::clock::ManualClock::new(1_800_000_000);
        let console = Arc::new(
            Console::new(
                db,
                Arc::new(clock.clone()),
                inbox.clone(),
                store,
                "test-host",
                Arc::new(crate::GuardState::new()),
            )
            .expect("console"),
        );
        let from: IpAddr = "192.0.2.77".parse().expect("address");
        for _ in 0..crate::throttle::MAX_ADDRESS_FAILURES {
            // Each delay waited out: every failure counts, the last pauses the address.
            clock.advance(crate::throttle::LOCKOUT_SECONDS);
            assert!(console.login("nobody", "wrong", "", from, None).is_err());
        }
        // Every hashing turn taken (a flood of sign-ins).
        let app = app_with(console, Arc::new(Semaphore::new(0)));
        let mut request = Request::builder()
            .method("POST")
            .uri("/login")
            .header(header::HOST, "console.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("name=admin&password=x&code=123456"))
            .expect("request");
        request
            .extensions_mut()
            .insert(Peer(SocketAddr::new(from, 50_000)));
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(String::from_utf8_lossy(&body).contains(SIGN_IN_FAILED));
        // The passkey sign-in alike.
        let mut request = Request::builder()
            .method("POST")
            .uri("/login/passkey")
            .header(header::HOST, "console.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("name=admin&password=x"))
            .expect("request");
        request
            .extensions_mut()
            .insert(Peer(SocketAddr::new(from, 50_000)));
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let said: Vec<String> = inbox.take().into_iter().map(|e| e.detail).collect();
        assert!(
            said.iter()
                .any(|d| d.contains("from 192.0.2.77 refused unchecked: sign-in is paused")),
            "{said:?}"
        );
    }

    #[test]
    fn every_route_is_in_the_table_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}
