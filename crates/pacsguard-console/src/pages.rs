//! Server-rendered pages: plain HTML and one stylesheet, no script (the CSP forbids it),
//! every form with its CSRF token, every control with a stable `id` and a `<label>` so
//! people and browser tests find the same things.

use std::fmt::Write as _;

use crate::auth::{Authenticated, Enrolment};
use crate::guard::Snapshot;
use crate::password::{MIN_PASSWORD_CHARS, RECOMMENDED_PASSWORD_CHARS};
use crate::roles::Role;

/// Text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, auth: Option<&Authenticated>, body: &str) -> String {
    let mut header = String::new();
    if let Some(auth) = auth {
        let _ = write!(
            header,
            "<span id=\"whoami\">{} ({})</span>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button id=\"logout\" type=\"submit\">Sign out</button></form>",
            esc(&auth.name),
            auth.role.as_str(),
            esc(&auth.csrf)
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · PacsGuard</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head>\
         <body><header><h1>PacsGuard</h1>{header}</header><main>\n{body}\n</main></body></html>\n",
        esc(title)
    )
}

fn error_line(error: Option<&str>) -> String {
    error.map_or(String::new(), |e| {
        format!(
            "<p id=\"error\" class=\"error\" role=\"alert\">{}</p>",
            esc(e)
        )
    })
}

pub fn setup(token: &str, error: Option<&str>) -> String {
    page(
        "First administrator",
        None,
        &format!(
            "<section><h2>Create the first administrator</h2>{}\
             <p class=\"hint\">This link works once. Next you enrol a second factor (an authenticator app); nothing else opens before that.</p>\
             <form id=\"setup-form\" method=\"post\" action=\"/setup\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label for=\"name\">Account name</label><input id=\"name\" name=\"name\" type=\"text\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
             <p class=\"hint\">{RECOMMENDED_PASSWORD_CHARS} characters or more recommended (at least {MIN_PASSWORD_CHARS}); any characters; a passphrase is fine; common passwords are refused.</p>\
             <button id=\"create\" type=\"submit\">Create administrator</button></form></section>",
            error_line(error),
            esc(token)
        ),
    )
}

pub fn setup_refused() -> String {
    page(
        "Setup link not valid",
        None,
        "<section><h2>This setup link is not valid</h2><p id=\"error\" class=\"error\">It is unknown, already used, or expired. Restart <code>pacsguard serve</code> while no account exists to get a new one, or <a href=\"/login\">sign in</a>.</p></section>",
    )
}

pub fn login(error: Option<&str>) -> String {
    page(
        "Sign in",
        None,
        &format!(
            "<section><h2>Sign in</h2>{}\
             <form id=\"login-form\" method=\"post\" action=\"/login\">\
             <label for=\"name\">Account name</label><input id=\"name\" name=\"name\" type=\"text\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <label for=\"code\">Code from your authenticator app, or a recovery code</label>\
             <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\">\
             <button id=\"sign-in\" type=\"submit\">Sign in</button></form></section>",
            error_line(error)
        ),
    )
}

pub fn enrol(auth: &Authenticated, enrolment: &Enrolment, error: Option<&str>) -> String {
    page(
        "Second factor",
        Some(auth),
        &format!(
            "<section><h2>Enrol your second factor</h2>{}\
             <p>Add this account to an authenticator app (TOTP: 6 digits, 30 seconds), then enter the code it shows.</p>\
             <label for=\"totp-uri\">Key URI</label><p><code id=\"totp-uri\">{}</code></p>\
             <label for=\"totp-secret\">Or type this key</label><p><code id=\"totp-secret\" class=\"secret\">{}</code></p>\
             <form id=\"enrol-form\" method=\"post\" action=\"/enrol\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"code\">Current code</label><input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
             <button id=\"confirm\" type=\"submit\">Confirm</button></form></section>",
            error_line(error),
            esc(&enrolment.uri),
            esc(&enrolment.secret_base32),
            esc(&auth.csrf)
        ),
    )
}

pub fn recovery_codes(auth: &Authenticated, codes: &[String]) -> String {
    let mut list = String::new();
    for code in codes {
        let _ = write!(list, "<li>{}</li>", esc(code));
    }
    page(
        "Recovery codes",
        Some(auth),
        &format!(
            "<section><h2>Second factor enrolled</h2>\
             <p>Keep these recovery codes somewhere safe. Each signs in once in place of a code from the app; they are not shown again.</p>\
             <ol id=\"recovery-codes\" class=\"codes\">{list}</ol>\
             <p><a id=\"continue\" href=\"/\">Continue to the overview</a></p></section>"
        ),
    )
}

pub fn overview(auth: &Authenticated, snap: &Snapshot) -> String {
    let mut rows = String::new();
    for (i, root) in snap.roots.iter().enumerate() {
        let _ = write!(
            rows,
            "<tr id=\"root-{i}\" data-state=\"{state}\"><td class=\"path\">{path}</td>\
             <td class=\"state-{state}\">{state}</td><td>{a}</td><td>{w}</td><td>{n}</td><td>{last}</td></tr>",
            state = root.state,
            path = esc(&root.path),
            a = root.alerts,
            w = root.warnings,
            n = root.info,
            last = esc(root.last_finding.as_deref().unwrap_or("—"))
        );
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"6\">No root is guarded yet.</td></tr>");
    }
    let guard = if snap.guard_alive {
        format!(
            "<span class=\"ok\">alive</span> since {}: {}",
            esc(&snap.guard_since),
            esc(&snap.guard_detail)
        )
    } else {
        format!(
            "<span class=\"bad\">not running</span> since {}: {}",
            esc(&snap.guard_since),
            esc(&snap.guard_detail)
        )
    };
    let trail = match &snap.trail {
        None => "<span class=\"warn\">not verified yet</span>".to_string(),
        Some(t) if t.intact => format!(
            "<span class=\"ok\">verified</span> at {}: {}",
            esc(&t.checked),
            esc(&t.detail)
        ),
        Some(t) => format!(
            "<span class=\"bad\">verification failed</span> at {}: {}",
            esc(&t.checked),
            esc(&t.detail)
        ),
    };
    let admin = if auth.role >= Role::Administrator {
        "<p><a id=\"accounts-link\" href=\"/accounts\">Accounts</a></p>"
    } else {
        ""
    };
    page(
        "Overview",
        Some(auth),
        &format!(
            "<section><h2>Overview</h2>\
             <p>Guard: <span id=\"guard\" data-alive=\"{}\">{guard}</span></p>\
             <p>Audit trail: <span id=\"trail\">{trail}</span></p>{admin}</section>\
             <section><h2>Roots</h2><p class=\"hint\">Findings since the guard started; differences stay reported until accepted.</p>\
             <table id=\"roots\"><thead><tr><th>Root</th><th>State</th><th>Alerts</th><th>Warnings</th><th>Info</th><th>Last finding</th></tr></thead>\
             <tbody>{rows}</tbody></table></section>",
            snap.guard_alive
        ),
    )
}

pub fn accounts(
    auth: &Authenticated,
    accounts: &[(String, String, bool)],
    message: Option<&str>,
) -> String {
    let mut rows = String::new();
    for (name, role, enrolled) in accounts {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            esc(role),
            if *enrolled {
                "TOTP"
            } else {
                "not enrolled yet"
            }
        );
    }
    let mut options = String::new();
    for role in Role::ALL {
        let _ = write!(options, "<option value=\"{0}\">{0}</option>", role.as_str());
    }
    page(
        "Accounts",
        Some(auth),
        &format!(
            "<section><h2>Accounts</h2>{}<table id=\"accounts\"><thead><tr><th>Name</th><th>Role</th><th>Second factor</th></tr></thead><tbody>{rows}</tbody></table></section>\
             <section><h2>New account</h2><form id=\"account-form\" method=\"post\" action=\"/accounts\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"name\">Account name</label><input id=\"name\" name=\"name\" type=\"text\" required>\
             <label for=\"role\">Role</label><select id=\"role\" name=\"role\">{options}</select>\
             <label for=\"password\">Initial password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
             <button id=\"create-account\" type=\"submit\">Create</button></form></section>",
            error_line(message),
            esc(&auth.csrf)
        ),
    )
}

pub fn message(title: &str, text: &str) -> String {
    page(
        title,
        None,
        &format!(
            "<section><h2>{}</h2><p id=\"error\" class=\"error\">{}</p></section>",
            esc(title),
            esc(text)
        ),
    )
}
