//! The console's OpenAPI 3.1 document, served at `/api/openapi.json`.
//!
//! One source of truth: the document's paths and methods are generated from
//! [`crate::http::ROUTES`] (a route cannot be left out), each with who may call it from
//! the same table; this file adds only what a person needs to call it (a summary, the
//! form fields, the answers). A test fails when a route has no description here or a
//! description names no route.

use serde_json::{Map, Value, json};

use crate::http::{Access, ROUTES};

/// What the document says of one route beyond the table.
#[derive(Debug)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Form fields (application/x-www-form-urlencoded) besides `csrf`, and what each is.
    pub fields: &'static [(&'static str, &'static str)],
    /// The answer on success: `html`, `json`, `css` or `redirect`.
    pub answer: &'static str,
}

const REASON: (&str, &str) = (
    "reason",
    "Why (1 to 4096 bytes), recorded on the audit trail",
);

/// The description of every route, in the order of the table.
pub static OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        path: "/static/console.css",
        summary: "The console's stylesheet",
        fields: &[],
        answer: "css",
    },
    Operation {
        method: "GET",
        path: "/setup",
        summary: "The first administrator's form (query `token`: the one-time setup link's token)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/setup",
        summary: "Creates the first administrator with the one-time setup token",
        fields: &[
            ("token", "The setup link's token"),
            ("name", "Account name"),
            ("password", "Password"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/login",
        summary: "The sign-in form",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/login",
        summary: "Signs in with name, password and a TOTP or recovery code; sets the session cookie",
        fields: &[
            ("name", "Account name"),
            ("password", "Password"),
            ("code", "TOTP code or recovery code"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/enrol",
        summary: "Begins the enrolment of the TOTP second factor",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/enrol",
        summary: "Confirms the enrolment with a current code; answers the recovery codes once",
        fields: &[("code", "TOTP code")],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/logout",
        summary: "Ends this session",
        fields: &[],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/",
        summary: "Overview: each root's state, the guard, the trail's verification",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/api/overview",
        summary: "The overview as JSON",
        fields: &[],
        answer: "json",
    },
    Operation {
        method: "GET",
        path: "/alerts",
        summary: "Open findings",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/differences",
        summary: "Differences per root, acceptance forms, acceptances waiting for a second approver",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/alerts/acknowledge",
        summary: "An operator acknowledges an open finding with a comment (on the audit trail); it stays open until an acceptance (an undone one, or one outside its root's tree or every root, is closed)",
        fields: &[
            ("id", "The finding's number, as the alerts page shows it"),
            (
                "comment",
                "Who handles it and what is done (1 to 4096 bytes)",
            ),
        ],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/alerts/acknowledge-dropped",
        summary: "An operator acknowledges the undone findings (alerts, findings about something that happened) dropped from a root's page past the number the console keeps, with a comment (on the audit trail: who, when, how many): the count is forgotten. No acceptance or check forgets it. Refused (400) when the count or the last finding counted is not the one standing now (a form shown before another was dropped)",
        fields: &[
            (
                "root",
                "The root as the alerts page shows it (empty: outside every root)",
            ),
            ("count", "How many the page said were dropped"),
            (
                "last",
                "The number of the last finding the page counted among them",
            ),
            (
                "comment",
                "Who handled them and what is done (1 to 4096 bytes)",
            ),
        ],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/alerts/acknowledge-unread",
        summary: "An operator acknowledges what this start said of the count of undone findings dropped from the pages (the last run killed, records not proven), with a comment (on the audit trail with what was said): it is taken off the overview and the alerts page. The counts themselves stay until acknowledged one by one",
        fields: &[(
            "comment",
            "What was read on the trail and what is done (1 to 4096 bytes)",
        )],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/differences/accept",
        summary: "Accepts the differences of a root into the signed profile (step-up needed); with four eyes, asks a second approver",
        fields: &[
            ("root", "The root as shown (empty: every root)"),
            REASON,
            ("seen", "The digest of the findings the page showed"),
        ],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/differences/confirm",
        summary: "A second approver, another person, confirms a waiting acceptance (step-up needed)",
        fields: &[
            ("id", "The waiting acceptance"),
            REASON,
            ("seen", "The digest of the findings the page showed"),
        ],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/step-up",
        summary: "The step-up form (query `next`: the page to go back to)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/step-up",
        summary: "Confirms the second factor again for decisions; a new session cookie",
        fields: &[
            ("code", "TOTP code or recovery code"),
            ("next", "The page to go back to"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/trail",
        summary: "The audit trail, newest first, with its verification state",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/hosts",
        summary: "Hosts enrolled in this console: state, last contact, profile approved or not, trail witnessed up to where; the host profiles waiting for approval",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/hosts/approve",
        summary: "Approves a profile generation an enrolled host reported (step-up needed); the host receives the console's signed approval with its next report. 200: in effect; 202: written but awaiting its record on the audit trail, in effect once the record is found (the page says so), or, with four eyes (the fleet's setting, `/hosts/four-eyes`, or `[console] needs_second_host_approver`), the first approver's approval awaiting a second approver (nothing signed; another person approving the same generation and digest completes it); 409: the host's reports are refused (a new key, a fork, a gap, revoked): nothing approved, the refusal recorded on the audit trail",
        fields: &[
            ("host", "The host (its id on this console)"),
            ("generation", "The profile generation the host reported"),
            (
                "digest",
                "The digest of that generation's signature, as the host reported it",
            ),
            REASON,
        ],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/hosts/acknowledge",
        summary: "Acknowledges a host's standing refusal (a fork, a duplicated identity) once investigated (administrator, step-up needed), as `console acknowledge-host` does: recorded on this console's audit trail (`host-acknowledged`), then kept in the fleet's store; the state stays, shown acknowledged. 200: acknowledged; 202: with four eyes (the fleet's setting, `/hosts/four-eyes`, or `[console] needs_second_host_approver`), awaiting a second administrator (another person acknowledging the same refusal, its same digest, completes it); 409: the refusal standing now is not the one of `digest` (refused anew meanwhile): nothing acknowledged",
        fields: &[
            ("host", "The host's name"),
            (
                "digest",
                "The digest of the standing refusal the administrator was shown (the Hosts page and `console hosts` show it)",
            ),
            REASON,
        ],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/hosts/four-eyes",
        summary: "Sets four eyes for host approvals for the whole fleet (administrator, step-up needed): held in the fleet's store, so every console on it enforces it (a console's own `[console] needs_second_host_approver = true` still asks it of its approvers); recorded on this console's audit trail, and each console enforces at least the value its own trail recorded last (a laxer store is a `console-setting-altered` alert). 200: set; 202: turning it off where it is in force awaits a second administrator (another person sending the same within the four-eyes window completes it)",
        fields: &[("on", "true or false"), REASON],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/accounts",
        summary: "Accounts and live sessions",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/api/accounts",
        summary: "The accounts page's lists as JSON (administrators, as the page): `accounts` (name, role, second_factor, disabled) and `sessions` (account, signed_in and last_used in seconds since the epoch, address)",
        fields: &[],
        answer: "json",
    },
    Operation {
        method: "POST",
        path: "/accounts/invite",
        summary: "Invites a person: an account and a one-time enrolment link (step-up needed)",
        fields: &[
            ("name", "Account name"),
            ("role", "viewer, operator, approver or administrator"),
            REASON,
        ],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/welcome",
        summary: "An invited person's form (query `token`: the enrolment link's token)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/welcome",
        summary: "An invited person chooses the password with the enrolment link",
        fields: &[
            ("token", "The enrolment link's token"),
            ("password", "Password"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/accounts/role",
        summary: "Changes an account's role; its sessions end (step-up needed)",
        fields: &[
            ("name", "Account name"),
            ("role", "viewer, operator, approver or administrator"),
            REASON,
        ],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/accounts/revoke",
        summary: "Ends every session of an account",
        fields: &[("name", "Account name")],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/accounts",
        summary: "Creates an account with an initial password (step-up needed)",
        fields: &[
            ("name", "Account name"),
            ("role", "viewer, operator, approver or administrator"),
            ("password", "Initial password"),
            REASON,
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/account/password",
        summary: "The form to change one's own password (query `changed`: say it was done)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/account/password",
        summary: "Changes one's own password: needs the current password and a fresh second factor (a code here, or a step-up within 5 minutes when `code` is empty: 403 without one); the new password obeys the password rules (400 otherwise). Every session of the account ends; this browser's goes on under a new session cookie. A wrong password or code is one answer (400) and counts as a failed sign-in of the account",
        fields: &[
            ("current", "The current password"),
            ("password", "The new password"),
            (
                "code",
                "TOTP code or recovery code (empty: a step-up of this session counts)",
            ),
        ],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/accounts/disable",
        summary: "Disables an account (step-up needed): every session of it ends at once, and sign-in is refused with the uniform failure until it is enabled. Refused (400) for the last administrator who can sign in and for the emergency account",
        fields: &[("name", "Account name"), REASON],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/accounts/enable",
        summary: "Enables a disabled account again (step-up needed)",
        fields: &[("name", "Account name"), REASON],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/accounts/reset",
        summary: "Resets another account's password (step-up needed): its password signs in no more, every session of it ends, and the page shows once a one-time reset link on the console's origin, valid 60 minutes, whose holder chooses a new password with the account's own second factor (kept as enrolled). Refused (400) for one's own account, the emergency account, a disabled account and one without a second factor",
        fields: &[("name", "Account name"), REASON],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/accounts/reset/cancel",
        summary: "Cancels a password reset waiting for its holder (step-up needed): its link works no more and the password from before the reset signs in again. Refused (400) for an account with no reset waiting. `/api/accounts` lists the waiting resets (`pending_resets`: account, started_by, since, expires)",
        fields: &[("name", "Account name"), REASON],
        answer: "redirect",
    },
    Operation {
        method: "POST",
        path: "/reset/passkey",
        summary: "The holder of a reset link chooses the new password, confirming with one of the account's passkeys (user verification required; the challenge is on the link's page when the account has passkeys); otherwise as POST /reset",
        fields: &[
            ("token", "The reset link's token"),
            ("password", "The new password"),
            ("credential_id", "The assertion's credential ID (base64url)"),
            ("client_data", "clientDataJSON (base64url)"),
            ("authenticator_data", "authenticatorData (base64url)"),
            ("signature", "The signature (base64url)"),
            ("user_handle", "The user handle (base64url, may be empty)"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/reset",
        summary: "A password reset link's form (query `token`: the link's token); 403 for a link unknown, used, replaced or expired",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/reset",
        summary: "The holder of a reset link chooses the new password, confirming the account's second factor; the link is spent and a session begins (the session cookie set). A wrong code is one answer (400), counts as a failed sign-in of the account and the address, and leaves the link; a link not valid is 403",
        fields: &[
            ("token", "The reset link's token"),
            ("password", "The new password"),
            ("code", "TOTP code or recovery code of the account"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/break-glass",
        summary: "The emergency access form",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/break-glass",
        summary: "Emergency sign-in with the sealed secret, once per seal; an alert",
        fields: &[
            ("secret", "The secret from the sealed envelope"),
            ("reason", "Why emergency access is needed"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/accounts/break-glass",
        summary: "The emergency account's seal",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/accounts/break-glass",
        summary: "Seals the emergency account with a new secret, shown once (step-up needed)",
        fields: &[REASON],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/sessions",
        summary: "Your live sessions (every session for an administrator)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/sessions/end",
        summary: "Ends one of your sessions (anyone's for an administrator)",
        fields: &[("id", "The session's id as the sessions page shows it")],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/charts",
        summary: "Findings and arrivals per hour, as inline SVG",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/quarantine",
        summary: "The quarantine vault's copies, newest first",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "GET",
        path: "/quarantine/item",
        summary: "One copy's records, after checking it still hashes to its name (query `sha`: 8 to 64 hex digits of its SHA-256)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/quarantine/export",
        summary: "Sends a vault copy to the browser, unchanged in the vault (step-up needed)",
        fields: &[("sha", "8 to 64 hex digits of the copy's SHA-256"), REASON],
        answer: "file",
    },
    Operation {
        method: "GET",
        path: "/static/passkey.js",
        summary: "The pages' one script: the passkey ceremony (navigator.credentials), which fills and posts a form",
        fields: &[],
        answer: "js",
    },
    Operation {
        method: "GET",
        path: "/login/passkey",
        summary: "The sign-in form with a password and a passkey (carries a fresh signed challenge)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/login/passkey",
        summary: "Signs in with name, password and a passkey assertion (user verification required); sets the session cookie",
        fields: &[
            ("name", "Account name"),
            ("password", "Password"),
            ("credential_id", "The credential's id (base64url)"),
            ("client_data", "clientDataJSON (base64url)"),
            ("authenticator_data", "authenticatorData (base64url)"),
            ("signature", "The ES256 signature (base64url)"),
            ("user_handle", "The user handle (base64url)"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/enrol/passkey",
        summary: "Begins the enrolment of a passkey as the second factor",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/passkeys/register",
        summary: "Registers a passkey (attestation none or packed self attestation, user verification required)",
        fields: &[
            ("client_data", "clientDataJSON (base64url)"),
            ("attestation_object", "attestationObject (base64url)"),
            ("label", "A name for the passkey"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/passkeys",
        summary: "The signed-in person's passkeys, and the form to add one",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/passkeys/remove",
        summary: "Removes one of the person's passkeys (step-up needed; the last second factor stays)",
        fields: &[("id", "The credential's id (base64url)")],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/step-up/passkey",
        summary: "The step-up form with a passkey (query `next`: the page to return to)",
        fields: &[],
        answer: "html",
    },
    Operation {
        method: "POST",
        path: "/step-up/passkey",
        summary: "Confirms the second factor with a passkey assertion for the decisions of the next minutes",
        fields: &[
            ("next", "The page to return to"),
            ("credential_id", "The credential's id (base64url)"),
            ("client_data", "clientDataJSON (base64url)"),
            ("authenticator_data", "authenticatorData (base64url)"),
            ("signature", "The ES256 signature (base64url)"),
            ("user_handle", "The user handle (base64url)"),
        ],
        answer: "redirect",
    },
    Operation {
        method: "GET",
        path: "/api/openapi.json",
        summary: "This document",
        fields: &[],
        answer: "json",
    },
];

/// The description of `method path`, if there is one.
pub fn operation(method: &str, path: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.method == method && o.path == path)
}

fn response(answer: &str) -> Value {
    match answer {
        "json" => json!({"200": {"description": "JSON", "content": {"application/json": {}}}}),
        "css" => json!({"200": {"description": "CSS", "content": {"text/css": {}}}}),
        "file" => {
            json!({"200": {"description": "The file's bytes, as an attachment", "content": {"application/octet-stream": {}}}})
        }
        "js" => json!({"200": {"description": "JavaScript", "content": {"text/javascript": {}}}}),
        "redirect" => {
            json!({"303": {"description": "Done; the Location header names the next page"}})
        }
        _ => json!({"200": {"description": "An HTML page", "content": {"text/html": {}}}}),
    }
}

/// The document, generated from [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let method = route.method.as_str();
        let described = operation(method, route.path);
        let mut op = Map::new();
        op.insert(
            "summary".into(),
            Value::from(described.map_or("(not described)", |d| d.summary)),
        );
        let (security, who) = match route.access {
            Access::Public => (json!([]), "anyone".to_string()),
            Access::Enrolment => (json!([{"session": []}]), "any session".to_string()),
            Access::Role(role) => (
                json!([{"session": []}]),
                format!(
                    "a session with an enrolled second factor and the role {} or higher",
                    role.as_str()
                ),
            ),
        };
        op.insert("security".into(), security);
        op.insert("x-pacsguard-access".into(), Value::from(who));
        let mut responses = response(described.map_or("html", |d| d.answer));
        if let Some(map) = responses.as_object_mut() {
            if route.access != Access::Public {
                map.insert(
                    "401".into(),
                    json!({"description": "No valid session (a GET is sent to /login instead)"}),
                );
            }
            map.insert(
                "403".into(),
                json!({"description": "Refused: role, CSRF token, origin, or a step-up needed"}),
            );
        }
        op.insert("responses".into(), responses);
        if method == "POST" {
            let mut properties = Map::new();
            let mut required = Vec::new();
            if route.access != Access::Public {
                properties.insert("csrf".into(), json!({"type": "string", "description": "The session's CSRF token (in every page's forms)"}));
                required.push(Value::from("csrf"));
            }
            for (name, what) in described.map_or(&[][..], |d| d.fields) {
                properties.insert(
                    (*name).into(),
                    json!({"type": "string", "description": what}),
                );
            }
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "properties": properties, "required": required}}}}),
            );
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = entry.as_object_mut() {
            map.insert(method.to_ascii_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "PacsGuard console",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The console of `pacsguard serve`. Pages and API share one route table and one authorization: a session cookie from a sign-in with a second factor (no static API keys), the session's CSRF token on every POST, decisions after a fresh step-up and with a reason."
        },
        "components": {"securitySchemes": {"session": {
            "type": "apiKey", "in": "cookie", "name": crate::http::COOKIE,
            "description": "The opaque session token set at sign-in (Secure, HttpOnly, SameSite=Strict)"
        }}},
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One source of truth: every route is described, every description is a route, and
    /// the document holds each route with its method.
    #[test]
    fn the_document_describes_every_route_and_nothing_else() {
        for route in ROUTES {
            assert!(
                operation(route.method.as_str(), route.path).is_some(),
                "{} {} is a route without a description in openapi.rs",
                route.method,
                route.path
            );
        }
        for op in OPERATIONS {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.method.as_str() == op.method && r.path == op.path),
                "{} {} is described but is no route",
                op.method,
                op.path
            );
        }
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{} {} missing from the document",
                route.method,
                route.path
            );
            assert!(
                op["summary"]
                    .as_str()
                    .is_some_and(|s| s != "(not described)")
            );
        }
        let accept = &doc["paths"]["/differences/accept"]["post"];
        assert!(
            accept["x-pacsguard-access"]
                .as_str()
                .is_some_and(|s| s.contains("approver"))
        );
        assert!(accept["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]["csrf"].is_object());
    }
}
