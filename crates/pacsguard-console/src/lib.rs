//! The console of `pacsguard serve`: HTTPS for the people who answer for a PACS.
//!
//! Layer: beside the engine, below the CLI. The CLI runs the engine's watcher on a
//! thread of its own and this crate's server beside it; the two meet in two places only:
//! the [`GuardState`] the watcher's output feeds and the pages read, and the engine's
//! [`pacsguard_events::Inbox`], through which every console event (setup, sign-in and its
//! failures, lockouts, sign-out, enrolment, accounts) reaches the one audit trail the
//! watcher writes.
//!
//! Invariants:
//! * No default password: the first administrator is created with a one-time setup token
//!   and must enrol a second factor (TOTP, or a passkey: [`webauthn`], [`passkey`])
//!   before any other page opens.
//! * Secrets are stored as digests (Argon2id for passwords, SHA-256 for random tokens and
//!   recovery codes); a TOTP step is accepted once per account.
//! * Every route is in [`http::ROUTES`] with its minimum role; the router is built from
//!   that table and one middleware enforces it (fail closed), checks the CSRF token of
//!   every POST and refuses cross-site requests.
//! * An action whose event cannot be queued for the trail is not done.
//! * Every limit a client controls is a named constant: [`http::MAX_FORM_BYTES`],
//!   [`http::REQUEST_TIMEOUT`],
//!   [`http::MAX_CONCURRENT_HASHES`], [`server::MAX_CONNECTIONS`],
//!   [`server::HANDSHAKE_TIMEOUT`], [`server::HEADER_TIMEOUT`],
//!   [`server::MAX_REQUEST_HEAD_BYTES`], [`server::MAX_REQUEST_TARGET_BYTES`]
//!   ([`request_line::MAX_REQUEST_LINE_BYTES`]),
//!   [`password::MAX_PASSWORD_BYTES`], [`auth::MAX_NAME_BYTES`],
//!   [`auth::MAX_PENDING_ENROLMENTS`], [`throttle::MAX_TRACKED_ADDRESSES`],
//!   [`tls::MAX_PEM_BYTES`], [`decide::MAX_STEP_UPS`], [`decide::MAX_PENDING_ACCEPTS`],
//!   [`four_eyes::MAX_INVITATION_CHAIN`], [`breakglass::BREAK_GLASS_SECONDS`],
//!   [`refusals::REFUSAL_LOG_INTERVAL`], [`charts::CHART_HOURS`],
//!   [`reset::RESET_LINK_LIFETIME`],
//!   [`quarantine::QUARANTINE_PAGE_RECORDS`], [`quarantine::MAX_VAULT_READS`],
//!   [`dropped_trail::MAX_DROPPED_ROOTS_READ`], [`dropped_trail::MAX_DROPPED_ROOT_BYTES`].
//! * An administrator's password reset needs the account's own second factor at its
//!   link ([`reset`]): the link alone opens nothing, so a reset gives the resetter nothing.
//! * Four eyes means two people ([`four_eyes`]); break-glass is sealed, single-use, an
//!   alert, and recorded request by request ([`breakglass`]).

pub mod acknowledging;
pub mod auth;
pub mod bound;
pub mod breakglass;
mod breakglass_http;
pub mod charts;
pub mod clock;
pub mod closing;
mod counted;
pub mod decide;
pub mod dropped_trail;
pub mod fleet_settings;
pub mod four_eyes;
pub mod guard;
mod held;
pub mod host_acknowledgements;
pub mod host_acknowledging;
pub mod host_approvals;
pub mod host_counts;
pub mod host_reported;
pub mod host_revocations;
mod hosts;
pub mod http;
pub mod identity;
pub mod invitations;
pub mod lifecycle;
mod lifecycle_http;
pub mod openapi;
mod pages;
pub mod passkey;
mod passkey_http;
mod passkey_pages;
pub mod password;
pub mod quarantine;
pub mod refusals;
pub mod request_line;
pub mod reset;
mod reset_http;
pub mod roles;
pub mod secret;
pub mod server;
mod session_seal;
pub mod sessions;
pub mod throttle;
pub mod tls;
pub mod totp;
pub mod undo_refused;
/// The relying party (its own crate, so it can be fuzzed alone).
pub use pacsguard_webauthn as webauthn;

pub use auth::{AuthError, Authenticated, Console};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decide::{
    Accepted, Decision, Guardian, NotAccepted, PendingAccept, STEP_UP_WINDOW, ShownFindings,
    TrailBindings,
};
pub use guard::{GuardState, ScrubPosition};
pub use quarantine::VaultCopy;
pub use roles::Role;
