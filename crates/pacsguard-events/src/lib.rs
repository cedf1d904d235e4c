//! The one spine every PacsGuard detector reports through.
//!
//! A detector (the profile comparison today; screening and watching later) produces
//! [`Finding`]s. A command wraps what it did and what it found in [`Event`]s and hands them
//! to an [`EventBus`], which passes each one to every registered [`EventSink`] (the event
//! log in the home today; the tamper-evident audit trail, syslog and the console later).
//! No component keeps a private log of security events: adding a sink is the only way to
//! see them somewhere new.
//!
//! This crate also owns [`escape_bytes`], the single way a path or any other
//! attacker-chosen byte string is shown to a person or written into a report.

mod escape;
mod event;
mod finding;
mod inbox;

pub use escape::{escape_bytes, escape_path, hides_text, needs_escape};
pub use event::{
    Action, Actor, CONSOLE_BINDING_FIELDS, Event, EventBus, EventSink, Outcome, SinkError,
};
pub use finding::{Finding, FindingKind, Severity, SeverityCounts};
pub use inbox::{
    CLOSE_WAITS_FOR_RESERVED, INBOX_HEADROOM, Inbox, MAX_INBOX_EVENTS, Reserved, process_uid,
};
