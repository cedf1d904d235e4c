//! The passkey pages: server-rendered like the others; each ceremony is a form whose
//! `data-*` attributes carry the options and whose hidden fields the one script
//! (`static/passkey.js`) fills with the authenticator's answer before it posts the form
//! (CSRF token included, as every form).

use std::fmt::Write as _;

use pacsguard_store::PasskeyRow;

use crate::auth::Authenticated;
use crate::pages::{error_line, esc, page};
use crate::passkey::{CEREMONY_TIMEOUT_MS, CreationOptions, RequestOptions};

pub(crate) const SCRIPT: &str = "<script src=\"/static/passkey.js\" defer></script>";
pub(crate) const STATUS: &str = "<p class=\"passkey-status hint\" role=\"status\">The passkey button needs the console's script.</p>";

pub(crate) fn get_attributes(options: &RequestOptions) -> String {
    format!(
        "data-passkey=\"get\" data-origin=\"{}\" data-rp-id=\"{}\" data-challenge=\"{}\" data-allow=\"{}\" data-timeout=\"{CEREMONY_TIMEOUT_MS}\"",
        esc(&options.origin),
        esc(&options.rp_id),
        esc(&options.challenge),
        esc(&options.allow.join(","))
    )
}

pub(crate) const ASSERTION_FIELDS: &str = "<input type=\"hidden\" name=\"credential_id\">\
     <input type=\"hidden\" name=\"client_data\">\
     <input type=\"hidden\" name=\"authenticator_data\">\
     <input type=\"hidden\" name=\"signature\">\
     <input type=\"hidden\" name=\"user_handle\">";

fn unavailable(error: &str) -> String {
    format!(
        "<p id=\"passkeys-off\" class=\"error\" role=\"alert\">{}</p>",
        esc(error)
    )
}

pub fn sign_in(options: Result<&RequestOptions, &str>, error: Option<&str>) -> String {
    let form = match options {
        Ok(options) => format!(
            "<form id=\"passkey-login-form\" method=\"post\" action=\"/login/passkey\" {}>\
             <label for=\"name\">Account name</label><input id=\"name\" name=\"name\" type=\"text\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             {ASSERTION_FIELDS}{STATUS}\
             <button id=\"passkey-sign-in\" class=\"passkey-button\" type=\"submit\" disabled>Sign in with a passkey</button></form>{SCRIPT}",
            get_attributes(options)
        ),
        Err(off) => unavailable(off),
    };
    page(
        "Sign in with a passkey",
        None,
        &format!(
            "<section><h2>Sign in with a passkey</h2>{}\
             <p class=\"hint\">Your password, then your passkey (a security key or this device, unlocked with its PIN or your fingerprint).</p>\
             {form}<p><a id=\"code-sign-in-link\" href=\"/login\">Sign in with a code instead</a></p></section>",
            error_line(error)
        ),
    )
}

fn register_form(auth: &Authenticated, options: &CreationOptions) -> String {
    format!(
        "<form id=\"passkey-register-form\" method=\"post\" action=\"/passkeys/register\" \
         data-passkey=\"create\" data-origin=\"{}\" data-rp-id=\"{}\" data-challenge=\"{}\" data-user-id=\"{}\" data-user-name=\"{}\" data-exclude=\"{}\" data-timeout=\"{CEREMONY_TIMEOUT_MS}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"client_data\"><input type=\"hidden\" name=\"attestation_object\">\
         <label for=\"label\">A name for this passkey</label><input id=\"label\" name=\"label\" type=\"text\" maxlength=\"64\" placeholder=\"e.g. YubiKey on my keyring\">\
         {STATUS}<button id=\"passkey-register\" class=\"passkey-button\" type=\"submit\" disabled>Register a passkey</button></form>{SCRIPT}",
        esc(&options.origin),
        esc(&options.rp_id),
        esc(&options.challenge),
        esc(&options.user_id),
        esc(&options.user_name),
        esc(&options.exclude.join(",")),
        esc(&auth.csrf)
    )
}

/// The enrolment of a passkey as the account's second factor (setup, invitation).
pub fn enrol(
    auth: &Authenticated,
    options: Result<&CreationOptions, &str>,
    error: Option<&str>,
) -> String {
    let form = match options {
        Ok(options) => register_form(auth, options),
        Err(off) => unavailable(off),
    };
    page(
        "Second factor",
        Some(auth),
        &format!(
            "<section><h2>Register a passkey as your second factor</h2>{}\
             <p>Your authenticator will ask for its PIN or your fingerprint: the console accepts only passkeys that verify you.</p>\
             {form}<p><a id=\"totp-enrol-link\" href=\"/enrol\">Use an authenticator app instead</a></p></section>",
            error_line(error)
        ),
    )
}

fn when(at: i64) -> String {
    if at <= 0 {
        return "never".into();
    }
    u64::try_from(at).map_or_else(
        |_| at.to_string(),
        |s| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
            )
            .to_string()
        },
    )
}

/// The person's own passkeys: list, add (after a step-up), remove (after a step-up).
pub fn list(
    auth: &Authenticated,
    passkeys: &[PasskeyRow],
    add: Result<&CreationOptions, &str>,
    stepped_up: bool,
    message: Option<&str>,
) -> String {
    let mut rows = String::new();
    for (i, p) in passkeys.iter().enumerate() {
        let id = data_encoding::BASE64URL_NOPAD.encode(&p.credential_id);
        let remove = if stepped_up {
            format!(
                "<form method=\"post\" action=\"/passkeys/remove\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"id\" value=\"{}\"><button id=\"passkey-remove-{i}\" type=\"submit\">Remove</button></form>",
                esc(&auth.csrf),
                esc(&id)
            )
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr id=\"passkey-{i}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{remove}</td></tr>",
            esc(&p.label),
            esc(&p.format),
            when(p.created),
            when(p.last_used),
            p.sign_count
        );
    }
    let table = if passkeys.is_empty() {
        "<p id=\"passkeys\">No passkey is registered to this account.</p>".to_string()
    } else {
        format!(
            "<table id=\"passkeys\"><thead><tr><th>Name</th><th>Attestation</th><th>Registered</th><th>Last used</th><th>Counter</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let manage = match (stepped_up, add) {
        (false, _) => "<p id=\"passkeys-step-up-needed\">Adding or removing a passkey needs your second factor confirmed first: \
             <a id=\"passkeys-step-up-link\" href=\"/step-up?next=/passkeys\">confirm it</a>.</p>"
            .to_string(),
        (true, Ok(options)) => register_form(auth, options),
        (true, Err(off)) => unavailable(off),
    };
    page(
        "Passkeys",
        Some(auth),
        &format!(
            "<section><h2>Your passkeys</h2>{}{table}</section><section><h2>Add a passkey</h2>{manage}</section>",
            error_line(message)
        ),
    )
}

pub fn step_up(
    auth: &Authenticated,
    options: Result<&RequestOptions, &str>,
    next: &str,
    error: Option<&str>,
) -> String {
    let form = match options {
        Ok(options) => format!(
            "<form id=\"passkey-step-up-form\" method=\"post\" action=\"/step-up/passkey\" {}>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
             {ASSERTION_FIELDS}{STATUS}\
             <button id=\"passkey-confirm\" class=\"passkey-button\" type=\"submit\" disabled>Confirm with a passkey</button></form>{SCRIPT}",
            get_attributes(options),
            esc(&auth.csrf),
            esc(next)
        ),
        Err(off) => unavailable(off),
    };
    page(
        "Confirm with a passkey",
        Some(auth),
        &format!(
            "<section><h2>Confirm your second factor with a passkey</h2>{}\
             <p>Decisions need your second factor confirmed within the last 5 minutes.</p>\
             {form}<p><a id=\"code-step-up-link\" href=\"/step-up?next={}\">Confirm with a code instead</a></p></section>",
            error_line(error),
            esc(next)
        ),
    )
}
