//! The DICOM gateway: an application-level firewall and relay for the imaging DMZ.
//!
//! Layers, each without the one above it:
//! * [`pdu`]: the Upper Layer PDUs of PS3.8, decoded totally and bounded, encoded back
//!   byte for byte;
//! * [`dimse`]: a tap that reassembles C-STORE data sets from P-DATA fragments;
//! * [`config`]: listeners, allow-lists, routes and limits from TOML, validated;
//! * [`admission`]: the answer to an association request (no I/O);
//! * [`places`], [`rate`], [`refusals`]: what a peer may hold and how often it may
//!   connect (no I/O), and how refusals reach the trail without flooding it;
//! * [`identity`], [`jwt`], [`lockout`]: User Identity Negotiation (a passcode or a
//!   token) and the failure budget of each username (no I/O);
//! * [`tls`]: rustls configurations for either side;
//! * [`screening_pool`]: the threads that screen data sets, their bounded queue, and
//!   the ticket deciding whether a screening or its deadline answers a held data set;
//! * [`relay`]: the sockets, one tokio task per association; data sets screened with
//!   the same [`pacsguard_screen::Screener`] as `scan`, evidence handed to the caller
//!   through [`Evidence`].
//!
//! Invariants: the gateway never changes a data set (P-DATA PDUs are written on exactly
//! as read); screening happens beside the relay and never holds it up; an alert forwards
//! the instance all the same and keeps a quarantine copy (a false alert must not stop
//! clinical work), except on a route configured to `refuse` its kind, where the message
//! is held until screened and answered with a C-STORE failure status instead; every
//! admission, refusal, instance and end is evidence.

pub mod admission;
pub mod certificate;
pub mod config;
pub mod credential;
pub mod dimse;
pub mod identity;
pub mod jwt;
pub mod lockout;
pub mod lockout_file;
pub mod pdu;
pub mod places;
pub mod progress;
pub mod rate;
pub mod refusals;
pub mod relay;
pub mod screening_pool;
pub mod tls;
pub mod tls_records;

pub use config::{ConfigError, GatewayConfig, Limits};
/// What every record of a `tls-pass-through` connection says about its content.
pub use relay::PASS_THROUGH_NOT_INSPECTED;
pub use relay::{Aborter, Evidence, Gateway, Reloader, SCREENING_THREADS, STOP_GRACE};
