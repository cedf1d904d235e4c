//! The gateway's configuration: a TOML file of listeners, their allow-lists and routes.
//! Every field is validated when the file is read; an error names the field.
//!
//! ```toml
//! [limits]                 # all optional
//! artim_seconds = 30       # association establishment and release timer
//! idle_seconds = 300       # an association silent this long is aborted
//! answer_seconds = 60      # a C-STORE, C-ECHO or N- request forwarded and not answered within this: A-ABORT both ways
//! query_answer_seconds = 120     # a C-FIND's next response (pending or final) not within this: the same
//! retrieve_answer_seconds = 600  # a C-MOVE's or C-GET's next response not within this: the same
//! message_seconds = 3600   # one DIMSE message (a C-STORE's P-DATA) not received whole within this: the same
//! progress_seconds = 600   # no message completed nor 1 MiB moved within this: A-ABORT both ways
//! association_seconds = 21600        # no association lives longer: A-ABORT both ways
//! pass_through_seconds = 21600       # a TLS pass-through connection (no pace can be judged in it); default: association_seconds
//! min_average_bytes_per_second = 1024  # data-set bytes (not command sets: C-ECHOs pay nothing) over the association's own time, judged from progress_seconds on
//! max_pdu_length = 65536   # what the gateway states it receives (<= MAX_PDU_LENGTH)
//! max_inspected_bytes = 268435456        # one data set kept whole for screening
//! inspection_memory_bytes = 1073741824   # all data sets held for screening together
//! inspection_memory_per_peer_bytes = 536870912  # ... by one peer (default: default_peer_share)
//! max_associations = 64
//! max_associations_per_peer = 16
//! max_associations_per_network = 48  # default: all but a quarter of max_associations
//! association_network_v4_bits = 24   # the network counted for it (8..=32) ...
//! association_network_v6_bits = 48   # ... and for IPv6 (16..=64)
//! association_reserve_for_new_networks = 4  # the last places, kept for networks holding none (default: max_associations / 16)
//! association_fair_share_seconds = 900  # a network refused a place is owed its fair share this long (0: never)
//! owed_place_held_seconds = 330  # a place owed is held this long for one that does not ask again (1..=900, at most the above; unset, cut to it with a warning)
//! request_seconds = 10     # a connection's A-ASSOCIATE-RQ must arrive within this
//! max_pending = 32         # connections not yet requesting an association, in total
//! max_associations_per_minute = 1200  # from one peer; past it A-ASSOCIATE-RJ transient
//! max_pending_per_peer = 16 # ... from one address (an IPv6 /64); default: max_associations_per_peer
//! screening_deadline_ms = 20000 # a data set held on a refusing route not screened by then is refused (0xA700)
//!
//! [[listener]]
//! listen = "0.0.0.0:11112"
//! allow = ["10.1.0.0/16", "192.168.5.7"]   # peers that may open a connection at all
//! tls = { cert = "gw.pem", key = "gw.key", client_ca = "ca.pem" }   # optional
//!
//! [[listener.route]]
//! called_ae = "PACS"                 # the AE title the sender calls
//! calling_ae = ["CT1", "MR1"]        # who may call it
//! peers = ["10.1.2.3"]               # optional: from where (default: the listener's allow)
//! sop_classes = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.1"]  # or ["*"]
//! transfer_syntaxes = ["*"]
//! upstream = "10.2.0.5:104"
//! upstream_ae = "ARCHIVE"
//! refuse = ["embedded-executable", "active-content"]  # optional: refuse, not forward, on these alerts
//! upstream_tls = { ca = "pacs-ca.pem", cert = "gw.pem", key = "gw.key", server_name = "pacs" }  # optional
//! # optional: User Identity Negotiation required, username + passcode (hash from
//! # `pacsguard gateway --hash-passcode`)
//! users = [{ username = "ct1", passcode_hash = "argon2id$v=19$m=19456,t=2,p=1$..." }]
//! # optional: a JSON Web Token (type 5) signed with one of these Ed25519 keys
//! jwt = { ed25519_keys = ["11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="], issuer = "ris" }
//! # optional, on a listener with tls.client_ca: the client certificates admitted
//! client_certificates = ["cn:ct1", "san:ct1.hospital.org", "sha256:AB:CD:..."]
//! # optional: the gateway's own identity towards an upstream that requires one (the
//! # sender's user identity item is never forwarded); without passcode_file a username
//! # alone (type 1). The file holds one line, read when the gateway binds or reloads.
//! upstream_identity = { username = "gateway", passcode_file = "/etc/pacsguard/pacs.pass" }
//!
//! [[listener]]             # TLS passed through unopened (see TLS_PASS_THROUGH): no
//! listen = "0.0.0.0:2762"  # content screening, no AE, identity or context checks
//! allow = ["10.1.0.0/16"]  # (no `tls` on such a listener)
//! [[listener.route]]
//! mode = "tls-pass-through"
//! peers = ["10.1.2.0/24"]  # optional; required, and disjoint, with several such routes
//! upstream = "10.2.0.5:2762"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pacsguard_events::FindingKind;
use serde::Deserialize;
use thiserror::Error;

use crate::identity::{MAX_USERNAME_BYTES, User};
use crate::pdu::MAX_PDU_LENGTH;

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// Default ARTIM timer (PS3.8 9.1.5): a peer that connects and does not complete the
/// association request, or a release that is not answered, within this is aborted.
pub const DEFAULT_ARTIM: Duration = Duration::from_secs(30);
/// Default idle limit: an established association with no PDU in either direction for
/// this long is aborted, so a silent peer does not hold a task and two sockets forever.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);
/// Default deadline of an answer: a C-STORE forwarded whose receiver (the upstream, or
/// the peer for a C-GET's sub-operations) answers nothing within it, while it reads on
/// (the write stall limit sees one that stops reading), aborts the association both
/// ways (A-ABORT, PS3.8 7.3): the sender learns at once that the outcome of what it
/// sent is unknown, and sends it again as it would after any abort, instead of waiting
/// on a wedged archive until `idle_seconds` (review r27-gateway). A failure status
/// instead would leave the stuck upstream's late answer to come after it, a second
/// answer to one request, on an association still held. DCMTK's socket timeout is 60 s.
/// It times a C-ECHO and the N- services too: an upstream that took any request and
/// never answered held the sender and its place just the same (review r28-gateway).
pub const DEFAULT_ANSWER: Duration = Duration::from_secs(60);
/// Default deadline of each response to a C-FIND (pending or final): an archive
/// searching a large database for a broad query may take a while before its first
/// match, never minutes between two; past it, as for [`DEFAULT_ANSWER`].
pub const DEFAULT_QUERY_ANSWER: Duration = Duration::from_secs(120);
/// Default deadline of each response to a C-MOVE or C-GET: each pending response
/// (one per sub-operation) restarts it, so a retrieve of thousands of instances runs as
/// long as it takes; the first may wait for an archive to fetch a study from near-line
/// storage, which legitimately takes minutes.
pub const DEFAULT_RETRIEVE_ANSWER: Duration = Duration::from_secs(600);
/// Default longest time one DIMSE message (command and data set, a C-STORE's P-DATA)
/// may take to arrive whole. The progress window lets a sender keep its place by moving
/// `progress::MIN_PROGRESS_BYTES` per window (a "paying loris", about 1.7 KB/s, review
/// r28-gateway); past this one message is cut. An hour carries a 2 GiB multi-frame
/// over a 5 Mbit/s WAN link (about 55 min), far beyond a CT or MR instance.
pub const DEFAULT_MESSAGE: Duration = Duration::from_secs(3600);
/// Default window of progress (`progress::Progress`): an association that completes no
/// DIMSE message in either direction and moves less than `progress::MIN_PROGRESS_BYTES`
/// of P-DATA within it is aborted. Twice the idle limit, so a real association, which
/// completes a message every few seconds, or crawls a large data set in, never meets
/// it, while a trickle of tiny PDUs timed to stay under the idle limit keeps its place
/// no longer than this (review r27-gateway).
pub const DEFAULT_PROGRESS: Duration = Duration::from_secs(600);
/// Default longest life of one association (`progress::Pace`). Six hours carry a 2 GiB
/// CT series over a 1 Mbit/s link (about 4.8 h) in one association; a real sender
/// releases in minutes. Without it a peer keeping every other limit (one C-ECHO every
/// 50 s, or C-MOVEs the archive answers slowly) held its place for ever (review
/// r29-gateway).
pub const DEFAULT_ASSOCIATION_LIFETIME: Duration = Duration::from_secs(6 * 3600);
/// Default least average of P-DATA (both directions) per second of an association's own
/// time (time in which the upstream owes no answer), judged once that time reaches
/// `limits.progress_seconds` (`progress::Pace`). 1 KiB/s is a hundredth of a 1 Mbit/s
/// link: one CT instance (512 KiB) every 8 minutes keeps it; a C-ECHO every 50 s (about
/// 4 B/s) or every second (about 200 B/s), keeping a place without sending anything,
/// does not (review r29-gateway). What is moved ahead of it counts for one
/// `progress_seconds` of it at most: a burst sent first bought the whole lifetime
/// (review r30-gateway).
pub const DEFAULT_MIN_AVERAGE_BYTES_PER_SECOND: u64 = 1024;
/// The most `limits.min_average_bytes_per_second` may ask: 10 MB/s, which a 100 Mbit/s
/// link still carries.
pub const MAX_MIN_AVERAGE_BYTES_PER_SECOND: u64 = 10_000_000;
/// Default maximum P-DATA length the gateway states to both sides.
pub const DEFAULT_MAX_PDU_LENGTH: u32 = 64 * 1024;
/// Default size of a data set kept whole for screening: the engine screens files up to
/// this size whole (`MAX_WHOLE_FILE_BYTES`); a larger one is relayed and reported
/// `not-inspected`.
pub const DEFAULT_MAX_INSPECTED_BYTES: u64 = 256 * 1024 * 1024;
/// The most a configuration may raise that.
pub const MAX_INSPECTED_BYTES_LIMIT: u64 = 1024 * 1024 * 1024;
/// Default for data set bytes held for screening by all associations together (see
/// `dimse::MemoryBudget`); a data set arriving while it is spent is relayed and reported
/// `not-inspected`. Memory in use is about twice this (a Part 10 copy is screened).
pub const DEFAULT_INSPECTION_MEMORY_BYTES: u64 = 1024 * 1024 * 1024;
/// A peer's share of `inspection_memory_bytes` by default is at least this fraction
/// of it (see [`default_peer_share`]), so one peer (every association from one address or
/// IPv6 /64 together) cannot hold the whole screening budget and leave every other
/// sender's data sets unscreened.
pub const DEFAULT_PEER_MEMORY_SHARE_DIVISOR: u64 = 4;

/// The default share of one peer: a quarter of the budget, but never less than one
/// data set of `max_inspected_bytes` held on a refusing route (its PDUs and its screened
/// copy: twice the data set, the PDU headers and two command sets), and never more than
/// the budget.
pub fn default_peer_share(inspection_memory_bytes: u64, max_inspected_bytes: u64) -> u64 {
    let one_refused_data_set = 2 * max_inspected_bytes
        + max_inspected_bytes / 128
        + 2 * crate::dimse::MAX_COMMAND_SET_BYTES as u64;
    (inspection_memory_bytes / DEFAULT_PEER_MEMORY_SHARE_DIVISOR)
        .max(one_refused_data_set)
        .min(inspection_memory_bytes)
}

/// Default associations in flight in total: each holds a task, two sockets and buffers
/// of up to two PDUs. A connection beyond it is answered A-ASSOCIATE-RJ (transient,
/// local limit exceeded) without being read.
pub const DEFAULT_MAX_ASSOCIATIONS: usize = 64;
/// Default associations in flight from one peer address, so one sender cannot take
/// every slot.
pub const DEFAULT_MAX_ASSOCIATIONS_PER_PEER: usize = 16;
/// By default one network (`association_network_v4_bits`, `..._v6_bits`) holds all
/// but 1/this of `max_associations` (48 of 64), never less than one peer's share: the
/// rest stays for senders of other networks (review r27-gateway: four addresses of one
/// /24 held all 64), while a site whose modalities share one network, the common case,
/// keeps most of its places.
pub const NETWORK_ASSOCIATIONS_RESERVE_DIVISOR: usize = 4;

/// By default the last 1/this of `max_associations` (4 of 64; none below 16) are kept
/// for a network holding no association: two networks together (one at its
/// `max_associations_per_network`, the other taking the rest) held every place, and a
/// peer paying `min_average_bytes_per_second` keeps one up to `association_seconds` and
/// takes it again at once, so a third network's sender was refused for as long as they
/// liked (review r29-gw2). Nothing in flight is cut for it: a network already holding a
/// place is refused a new one (transient, it tries again) while only the reserve is left.
pub const NEW_NETWORK_RESERVE_DIVISOR: usize = 16;

/// Default time a network refused an association place for want of one is owed what it
/// asked (a place per refusal), up to its fair share (`limits.association_fair_share_seconds`,
/// `places::Places::sharing_fairly_for`): meanwhile a network holding at least
/// `max_associations` divided among the networks holding places or owed one is refused a
/// new place while the free places are no more than what is owed. Nothing in flight is
/// cut, and a network's places are limited only while places run short. The reserve
/// (`association_reserve_for_new_networks`) lets a network holding none in, one place
/// each while it lasts; a network wanting a second place, or coming once the reserve was
/// spent (or none kept), was refused for as long as the networks holding the rest took
/// each place back as it came free (a peer paying `min_average_bytes_per_second` holds
/// one for `association_seconds`, then asks again; review r30-gateway). Fifteen minutes
/// span a sender's retry interval (minutes) several times; past it a network no longer
/// refused is owed nothing.
pub const DEFAULT_ASSOCIATION_FAIR_SHARE: Duration = Duration::from_secs(900);

/// The default `association_reserve_for_new_networks` (see [`NEW_NETWORK_RESERVE_DIVISOR`]),
/// never more than what one network is kept from: a site that let one network hold every
/// place (`max_associations_per_network` = `max_associations`, its modalities sharing
/// one network) keeps all of them.
pub fn default_new_network_reserve(
    max_associations: usize,
    max_associations_per_network: usize,
) -> usize {
    (max_associations / NEW_NETWORK_RESERVE_DIVISOR)
        .min(max_associations.saturating_sub(max_associations_per_network))
}

/// The default `max_associations_per_network` (see [`NETWORK_ASSOCIATIONS_RESERVE_DIVISOR`]).
pub fn default_network_share(max_associations: usize, max_associations_per_peer: usize) -> usize {
    (max_associations - max_associations / NETWORK_ASSOCIATIONS_RESERVE_DIVISOR)
        .max(max_associations_per_peer)
        .min(max_associations)
}

/// The shortest IPv4 and IPv6 prefixes a configuration may count as one network for
/// `max_associations_per_network` (the longest: an address, an IPv6 peer's /64).
pub const MIN_ASSOCIATION_NETWORK_BITS: crate::places::NetworkBits =
    crate::places::NetworkBits { v4: 8, v6: 16 };

/// The most a configuration may raise the association limit to.
pub const MAX_ASSOCIATIONS_LIMIT: usize = 4096;
/// Default time a new connection has to send its A-ASSOCIATE-RQ (never more than the
/// ARTIM timer): every real sender sends it at once, so a connection still silent after
/// this is a held place, not a slow sender (review finding 6).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default associations (connections) per minute from one peer (an address, an IPv6
/// /64): generous, since older modalities open one association per image (a CT of 2,000
/// slices in under two minutes), yet it stops a sender looping requests at full speed.
pub const DEFAULT_MAX_ASSOCIATIONS_PER_MINUTE: u32 = 1200;
/// The most a configuration may raise that to.
pub const MAX_ASSOCIATIONS_PER_MINUTE_LIMIT: u32 = 1_000_000;
/// Default deadline of screening in line: a data set held on a refusing route that is
/// not screened within it (waiting for a screening thread included) is answered C-STORE
/// 0xA700 and a `not-inspected` alert names it; on a forwarding route (which holds
/// nothing back) the same alert is raised and a quarantine copy kept. Under pynetdicom's
/// default DIMSE timeout (30 s), so the sender hears the answer before it gives up, and
/// far above what a CT or MR instance takes to screen.
pub const DEFAULT_SCREENING_DEADLINE: Duration = Duration::from_secs(20);
/// The most a configuration may raise that to: beyond it a sender's DIMSE timer (or
/// its operator) gives up first, and the association is held for nothing.
pub const MAX_SCREENING_DEADLINE: Duration = Duration::from_secs(300);
/// Default connections that have not yet sent their request, in total (see `places`):
/// smaller than the association budget, since each holds a place without a word.
pub const DEFAULT_MAX_PENDING: usize = 32;
// Those from one peer (`max_pending_per_peer`) default to `max_associations_per_peer`
// (capped by `max_pending`): a sender may open at once as many connections as it may
// hold associations. A flood from several addresses is met by the eviction in
// `places` (a newcomer takes the oldest place of the biggest holder), not by the share.

#[derive(Debug, Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    listener: Vec<RawListener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    artim_seconds: Option<u64>,
    idle_seconds: Option<u64>,
    answer_seconds: Option<u64>,
    query_answer_seconds: Option<u64>,
    retrieve_answer_seconds: Option<u64>,
    message_seconds: Option<u64>,
    association_seconds: Option<u64>,
    pass_through_seconds: Option<u64>,
    min_average_bytes_per_second: Option<u64>,
    progress_seconds: Option<u64>,
    max_pdu_length: Option<u32>,
    max_inspected_bytes: Option<u64>,
    inspection_memory_bytes: Option<u64>,
    inspection_memory_per_peer_bytes: Option<u64>,
    max_associations: Option<usize>,
    max_associations_per_peer: Option<usize>,
    max_associations_per_network: Option<usize>,
    association_network_v4_bits: Option<u32>,
    association_network_v6_bits: Option<u32>,
    association_reserve_for_new_networks: Option<usize>,
    association_fair_share_seconds: Option<u64>,
    owed_place_held_seconds: Option<u64>,
    request_seconds: Option<u64>,
    max_associations_per_minute: Option<u32>,
    max_pending: Option<usize>,
    max_pending_per_peer: Option<usize>,
    screening_deadline_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    listen: String,
    allow: Vec<String>,
    tls: Option<ListenerTls>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    /// `"dicom"` (the default) or [`TLS_PASS_THROUGH`].
    mode: Option<String>,
    // Optional here so that a pass-through route that gives one is refused by name, and
    // a DICOM route that lacks one too (see `GatewayConfig::parse`).
    called_ae: Option<String>,
    calling_ae: Option<Vec<String>>,
    peers: Option<Vec<String>>,
    sop_classes: Option<Vec<String>>,
    transfer_syntaxes: Option<Vec<String>>,
    upstream: String,
    upstream_ae: Option<String>,
    refuse: Option<Vec<String>>,
    upstream_tls: Option<UpstreamTls>,
    users: Option<Vec<RawUser>>,
    client_certificates: Option<Vec<String>>,
    jwt: Option<RawJwt>,
    upstream_identity: Option<UpstreamIdentity>,
}

impl RawRoute {
    /// The options given that only a route reading the association can honour, by name.
    fn dicom_only_fields(&self) -> Vec<&'static str> {
        [
            ("called_ae", self.called_ae.is_some()),
            ("calling_ae", self.calling_ae.is_some()),
            ("sop_classes", self.sop_classes.is_some()),
            ("transfer_syntaxes", self.transfer_syntaxes.is_some()),
            ("upstream_ae", self.upstream_ae.is_some()),
            ("refuse", self.refuse.is_some()),
            ("upstream_tls", self.upstream_tls.is_some()),
            ("users", self.users.is_some()),
            ("client_certificates", self.client_certificates.is_some()),
            ("jwt", self.jwt.is_some()),
            ("upstream_identity", self.upstream_identity.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// The `mode` of a route that relays a TLS connection unopened: the gateway never holds
/// the session keys, so it sees no AE title, user identity, presentation context or data
/// set. What it can still do is what needs no byte of the association: admission by
/// peer address before the first byte, the places and the rate per peer, the idle and
/// request timers, a check that the bytes are TLS records, and a record of each
/// connection ("content not inspected: TLS passed through").
pub const TLS_PASS_THROUGH: &str = "tls-pass-through";

/// A route that passes TLS through to its upstream (see [`TLS_PASS_THROUGH`]).
#[derive(Clone, Debug)]
pub struct PassThrough {
    /// Where the peer may connect from for this route; empty: anywhere the listener
    /// allows (only when it is the listener's only route).
    pub peers: Vec<Network>,
    pub upstream: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    ed25519_keys: Vec<String>,
    issuer: Option<String>,
    audience: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    passcode_hash: String,
}

/// Most bytes of a stored passcode hash (the console's bound on a stored hash).
const MAX_PASSCODE_HASH_BYTES: usize = 512;

/// A listener that terminates TLS (files read when the gateway binds, see `tls`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Clients must present a certificate issued by this CA (mutual TLS).
    pub client_ca: Option<std::path::PathBuf>,
}

/// A route that originates TLS to its upstream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// The CA the upstream's certificate must chain to.
    pub ca: std::path::PathBuf,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    /// The name the upstream's certificate must carry; default the upstream's host.
    pub server_name: Option<String>,
}

/// The identity the gateway itself gives an upstream that requires one (User Identity
/// Negotiation, PS3.7 D.3.3.7): the sender's own item is never forwarded (a sender's
/// credential is the gateway's to check, not the archive's to see). The passcode is
/// read from `passcode_file` when the gateway binds or reloads (`identity::upstream_item`),
/// so the configuration itself holds no secret.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamIdentity {
    pub username: String,
    /// One line: the passcode (type 2). Without it, the username alone (type 1).
    pub passcode_file: Option<std::path::PathBuf>,
}

/// Validated limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub artim: Duration,
    pub idle: Duration,
    /// See [`DEFAULT_ANSWER`].
    pub answer: Duration,
    /// See [`DEFAULT_QUERY_ANSWER`].
    pub query_answer: Duration,
    /// See [`DEFAULT_RETRIEVE_ANSWER`].
    pub retrieve_answer: Duration,
    /// See [`DEFAULT_MESSAGE`].
    pub message: Duration,
    /// See [`DEFAULT_PROGRESS`].
    pub progress: Duration,
    /// See [`DEFAULT_ASSOCIATION_LIFETIME`].
    pub association: Duration,
    /// `limits.pass_through_seconds`: the lifetime of a TLS pass-through connection,
    /// when set apart from `association` (see [`Limits::pass_through_lifetime`]).
    pub pass_through: Option<Duration>,
    /// See [`DEFAULT_MIN_AVERAGE_BYTES_PER_SECOND`].
    pub min_average_bytes_per_second: u64,
    pub max_pdu_length: u32,
    pub max_inspected_bytes: u64,
    pub inspection_memory_bytes: u64,
    /// What one peer's data sets may hold of `inspection_memory_bytes` together.
    pub inspection_memory_per_peer: u64,
    pub max_associations: usize,
    pub max_associations_per_peer: usize,
    /// Associations from one network of `association_network` together.
    pub max_associations_per_network: usize,
    pub association_network: crate::places::NetworkBits,
    /// See [`NEW_NETWORK_RESERVE_DIVISOR`].
    pub association_reserve_for_new_networks: usize,
    /// See [`DEFAULT_ASSOCIATION_FAIR_SHARE`] (zero: no share is kept).
    pub association_fair_share: Duration,
    /// How long a place owed is held for one that does not ask for it
    /// (`crate::places::OWED_PLACE_HELD` by default, at most
    /// `crate::places::MAX_OWED_PLACE_HELD`).
    pub owed_place_held: Duration,
    /// The time a connection has to send its request (at most `artim`).
    pub request: Duration,
    /// The setting `request` comes from, for the records that name it:
    /// `limits.request_seconds`, or `limits.artim_seconds` when that is shorter and so
    /// applies (review rv34-gateway: a record named request_seconds with ARTIM's value).
    pub request_setting: &'static str,
    pub max_pending: usize,
    pub max_pending_per_peer: usize,
    /// Connections per [`crate::rate::RATE_WINDOW`] from one peer.
    pub max_associations_per_minute: u32,
    /// See [`DEFAULT_SCREENING_DEADLINE`].
    pub screening_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            artim: DEFAULT_ARTIM,
            idle: DEFAULT_IDLE,
            answer: DEFAULT_ANSWER,
            query_answer: DEFAULT_QUERY_ANSWER,
            retrieve_answer: DEFAULT_RETRIEVE_ANSWER,
            message: DEFAULT_MESSAGE,
            progress: DEFAULT_PROGRESS,
            association: DEFAULT_ASSOCIATION_LIFETIME,
            pass_through: None,
            min_average_bytes_per_second: DEFAULT_MIN_AVERAGE_BYTES_PER_SECOND,
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            max_inspected_bytes: DEFAULT_MAX_INSPECTED_BYTES,
            inspection_memory_bytes: DEFAULT_INSPECTION_MEMORY_BYTES,
            inspection_memory_per_peer: default_peer_share(
                DEFAULT_INSPECTION_MEMORY_BYTES,
                DEFAULT_MAX_INSPECTED_BYTES,
            ),
            max_associations: DEFAULT_MAX_ASSOCIATIONS,
            max_associations_per_peer: DEFAULT_MAX_ASSOCIATIONS_PER_PEER,
            max_associations_per_network: default_network_share(
                DEFAULT_MAX_ASSOCIATIONS,
                DEFAULT_MAX_ASSOCIATIONS_PER_PEER,
            ),
            association_network: crate::places::NetworkBits::DEFAULT,
            association_reserve_for_new_networks: default_new_network_reserve(
                DEFAULT_MAX_ASSOCIATIONS,
                default_network_share(DEFAULT_MAX_ASSOCIATIONS, DEFAULT_MAX_ASSOCIATIONS_PER_PEER),
            ),
            association_fair_share: DEFAULT_ASSOCIATION_FAIR_SHARE,
            owed_place_held: crate::places::OWED_PLACE_HELD,
            request: DEFAULT_REQUEST_TIMEOUT,
            request_setting: REQUEST_SETTING,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_per_peer: DEFAULT_MAX_ASSOCIATIONS_PER_PEER,
            max_associations_per_minute: DEFAULT_MAX_ASSOCIATIONS_PER_MINUTE,
            screening_deadline: DEFAULT_SCREENING_DEADLINE,
        }
    }
}

impl Limits {
    /// How long a TLS pass-through connection may live, and the setting that says so.
    /// Inside TLS no message nor pace can be seen (a peer holding its place cannot be told
    /// from one waiting on the archive), so the lifetime is its one bound beyond the idle
    /// timer. By default the association's own (a modality's 2 GiB series over 1 Mbit/s
    /// through a pass-through takes as long as through the relay); a site whose
    /// pass-through listeners carry only short associations shortens it apart (review
    /// r29-gw2).
    pub fn pass_through_lifetime(&self) -> (Duration, &'static str) {
        match self.pass_through {
            Some(lifetime) => (lifetime, "limits.pass_through_seconds"),
            None => (self.association, "limits.association_seconds"),
        }
    }

    /// How long the side owing an answer to a request of command `field` may go
    /// without giving any (pending responses count), and the setting that says so: the
    /// one table of which deadline times which DIMSE service.
    pub fn answer_limit(&self, field: u16) -> (Duration, &'static str) {
        use crate::dimse::{C_FIND_RQ, C_GET_RQ, C_MOVE_RQ};
        match field {
            C_FIND_RQ => (self.query_answer, "limits.query_answer_seconds"),
            C_MOVE_RQ | C_GET_RQ => (self.retrieve_answer, "limits.retrieve_answer_seconds"),
            _ => (self.answer, "limits.answer_seconds"),
        }
    }
}

/// An address or a network (`10.0.0.0/8`, `fd00::/8`). Two are equal when they name the
/// same addresses, however written.
#[derive(Clone, Debug)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
    /// As the operator wrote it, for messages about it: an IPv4-mapped network is kept
    /// as the IPv4 network it maps ([`Network::unmapped`]), and an error that named that
    /// form ("10.0.0.0/8 overlaps 10.0.0.0/8") named neither entry of the file (review
    /// rv34-gateway).
    written: String,
}

impl PartialEq for Network {
    fn eq(&self, other: &Network) -> bool {
        (self.addr, self.prefix) == (other.addr, other.prefix)
    }
}

impl Eq for Network {}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then(|| {
            Network {
                addr,
                prefix,
                written: text.to_owned(),
            }
            .unmapped()
        })
    }

    /// An IPv4-mapped network (`::ffff:10.0.0.0/104`) as the IPv4 network it maps
    /// (`10.0.0.0/8`): a peer is compared as IPv4 whatever the socket's family
    /// ([`Network::contains`]), so a mapped network, the form a dual-stack listener's
    /// records give a peer in, matched nothing and refused the very peer it named
    /// (session 34). One wider than the mapped range (under /96) stays IPv6.
    fn unmapped(self) -> Network {
        const MAPPED_PREFIX: u8 = 96;
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= MAPPED_PREFIX => match v6.to_ipv4_mapped() {
                Some(v4) => Network {
                    addr: IpAddr::V4(v4),
                    prefix: self.prefix - MAPPED_PREFIX,
                    written: self.written,
                },
                None => self,
            },
            _ => self,
        }
    }

    /// Whether some address lies in both.
    pub fn overlaps(&self, other: &Network) -> bool {
        let (wide, narrow) = if self.prefix <= other.prefix {
            (self, other)
        } else {
            (other, self)
        };
        // Mixed families never overlap here (an IPv4-mapped network is not written).
        self.addr.is_ipv4() == other.addr.is_ipv4() && wide.contains(narrow.addr)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An allow-list of UIDs, or every UID (`"*"`, written out so that "everything" is a
/// decision in the file, never the effect of a list left empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UidList {
    Any,
    Only(Vec<String>),
}

impl UidList {
    pub fn allows(&self, uid: &[u8]) -> bool {
        match self {
            UidList::Any => true,
            UidList::Only(list) => list.iter().any(|u| u.as_bytes() == uid),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Route {
    pub called_ae: String,
    pub calling_ae: Vec<String>,
    /// Where the peer may connect from for this route; empty: anywhere the listener allows.
    pub peers: Vec<Network>,
    pub sop_classes: UidList,
    pub transfer_syntaxes: UidList,
    pub upstream: String,
    pub upstream_ae: String,
    /// Alerts of these kinds make the route refuse the C-STORE (a failure status to the
    /// sender, nothing upstream) instead of forwarding it. Empty: forward, alert and
    /// keep a quarantine copy, the default (a false alert must not stop clinical work).
    pub refuse: Vec<FindingKind>,
    pub upstream_tls: Option<UpstreamTls>,
    /// User Identity Negotiation: when not empty, a request must carry one of these
    /// usernames with its passcode (see `identity`).
    pub users: Vec<User>,
    /// TLS client certificates admitted (`certificate::Rule`); empty: any the listener's
    /// `client_ca` admits (or none, on a listener without TLS).
    pub client_certificates: Vec<crate::certificate::Rule>,
    /// User Identity Negotiation with a JSON Web Token (type 5) this rule accepts.
    pub jwt: Option<crate::jwt::JwtRule>,
    /// The gateway's own identity towards the upstream, if it requires one.
    pub upstream_identity: Option<UpstreamIdentity>,
}

impl Route {
    /// The route requires a user identity (a passcode or a token).
    pub fn requires_identity(&self) -> bool {
        !self.users.is_empty() || self.jwt.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct Listener {
    pub listen: SocketAddr,
    pub allow: Vec<Network>,
    pub tls: Option<ListenerTls>,
    /// DICOM routes (empty on a pass-through listener).
    pub routes: Vec<Route>,
    /// `tls-pass-through` routes (empty on a DICOM listener): a listener has one kind.
    pub pass_through: Vec<PassThrough>,
}

impl Listener {
    /// The pass-through route of a peer at `ip`: the first whose peers hold it (they do
    /// not overlap), or the only one when it names none.
    pub fn pass_through_for(&self, ip: IpAddr) -> Option<&PassThrough> {
        self.pass_through
            .iter()
            .find(|p| p.peers.is_empty() || p.peers.iter().any(|n| n.contains(ip)))
    }

    /// Whether the peers of this listener speak DICOM to it in the clear (no TLS
    /// terminated, none passed through): only those may be answered A-ASSOCIATE-RJ
    /// before a byte is read.
    pub fn plain(&self) -> bool {
        self.tls.is_none() && self.pass_through.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub limits: Limits,
    pub listeners: Vec<Listener>,
    /// What the configuration's reader should know that is not an error (a default cut
    /// to fit another setting): said at start and on reload.
    pub warnings: Vec<String>,
}

impl GatewayConfig {
    pub fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(err(
                "(file)",
                format!("larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let field = e.span().map_or_else(
                || "(file)".to_owned(),
                |s| {
                    let line = text.get(..s.start).map_or(0, |t| t.matches('\n').count()) + 1;
                    format!("line {line}")
                },
            );
            err(field, e.message().to_owned())
        })?;
        let mut limits = Limits::default();
        if let Some(s) = raw.limits.artim_seconds {
            limits.artim = seconds("limits.artim_seconds", s)?;
        }
        if let Some(ms) = raw.limits.screening_deadline_ms {
            // Milliseconds: a test (and an operator measuring) may want less than a second.
            let max = MAX_SCREENING_DEADLINE.as_millis() as u64;
            if !(1..=max).contains(&ms) {
                return Err(err(
                    "limits.screening_deadline_ms",
                    format!("{ms}: must lie between 1 and {max}"),
                ));
            }
            limits.screening_deadline = Duration::from_millis(ms);
        }
        if let Some(s) = raw.limits.idle_seconds {
            limits.idle = seconds("limits.idle_seconds", s)?;
        }
        if let Some(s) = raw.limits.answer_seconds {
            limits.answer = seconds("limits.answer_seconds", s)?;
        }
        if let Some(s) = raw.limits.query_answer_seconds {
            limits.query_answer = seconds("limits.query_answer_seconds", s)?;
        }
        if let Some(s) = raw.limits.retrieve_answer_seconds {
            limits.retrieve_answer = seconds("limits.retrieve_answer_seconds", s)?;
        }
        if let Some(s) = raw.limits.message_seconds {
            limits.message = seconds("limits.message_seconds", s)?;
        }
        if let Some(s) = raw.limits.progress_seconds {
            limits.progress = seconds("limits.progress_seconds", s)?;
        }
        if let Some(s) = raw.limits.association_seconds {
            limits.association = seconds("limits.association_seconds", s)?;
        }
        if let Some(s) = raw.limits.pass_through_seconds {
            let lifetime = seconds("limits.pass_through_seconds", s)?;
            if lifetime > limits.association {
                return Err(err(
                    "limits.pass_through_seconds",
                    format!(
                        "{s}: must not exceed association_seconds ({})",
                        limits.association.as_secs()
                    ),
                ));
            }
            limits.pass_through = Some(lifetime);
        }
        if let Some(n) = raw.limits.min_average_bytes_per_second {
            if !(1..=MAX_MIN_AVERAGE_BYTES_PER_SECOND).contains(&n) {
                return Err(err(
                    "limits.min_average_bytes_per_second",
                    format!("{n}: must lie between 1 and {MAX_MIN_AVERAGE_BYTES_PER_SECOND}"),
                ));
            }
            limits.min_average_bytes_per_second = n;
        }
        if let Some(n) = raw.limits.max_pdu_length {
            // PS3.8 D.1: the smallest maximum length a receiver may state is not fixed,
            // but below 4 KiB every C-STORE is cut into tiny fragments.
            if !(4096..=MAX_PDU_LENGTH).contains(&n) {
                return Err(err(
                    "limits.max_pdu_length",
                    format!("{n}: must lie between 4096 and {MAX_PDU_LENGTH}"),
                ));
            }
            limits.max_pdu_length = n;
        }
        if let Some(n) = raw.limits.max_inspected_bytes {
            if n > MAX_INSPECTED_BYTES_LIMIT {
                return Err(err(
                    "limits.max_inspected_bytes",
                    format!("{n}: more than {MAX_INSPECTED_BYTES_LIMIT}"),
                ));
            }
            limits.max_inspected_bytes = n;
        }
        if let Some(n) = raw.limits.inspection_memory_bytes {
            if n > 16 * MAX_INSPECTED_BYTES_LIMIT {
                return Err(err(
                    "limits.inspection_memory_bytes",
                    format!("{n}: more than {}", 16 * MAX_INSPECTED_BYTES_LIMIT),
                ));
            }
            limits.inspection_memory_bytes = n;
        }
        limits.inspection_memory_per_peer =
            default_peer_share(limits.inspection_memory_bytes, limits.max_inspected_bytes);
        if let Some(n) = raw.limits.inspection_memory_per_peer_bytes {
            if !(1..=limits.inspection_memory_bytes).contains(&n) {
                return Err(err(
                    "limits.inspection_memory_per_peer_bytes",
                    format!(
                        "{n}: must lie between 1 and inspection_memory_bytes ({})",
                        limits.inspection_memory_bytes
                    ),
                ));
            }
            limits.inspection_memory_per_peer = n;
        }
        if let Some(n) = raw.limits.max_associations {
            if !(1..=MAX_ASSOCIATIONS_LIMIT).contains(&n) {
                return Err(err(
                    "limits.max_associations",
                    format!("{n}: must lie between 1 and {MAX_ASSOCIATIONS_LIMIT}"),
                ));
            }
            limits.max_associations = n;
        }
        if let Some(n) = raw.limits.max_associations_per_peer {
            if !(1..=limits.max_associations).contains(&n) {
                return Err(err(
                    "limits.max_associations_per_peer",
                    format!(
                        "{n}: must lie between 1 and max_associations ({})",
                        limits.max_associations
                    ),
                ));
            }
            limits.max_associations_per_peer = n;
        }
        limits.max_associations_per_network =
            default_network_share(limits.max_associations, limits.max_associations_per_peer);
        if let Some(n) = raw.limits.max_associations_per_network {
            if !(limits.max_associations_per_peer..=limits.max_associations).contains(&n) {
                return Err(err(
                    "limits.max_associations_per_network",
                    format!(
                        "{n}: must lie between max_associations_per_peer ({}) and max_associations ({})",
                        limits.max_associations_per_peer, limits.max_associations
                    ),
                ));
            }
            limits.max_associations_per_network = n;
        }
        limits.association_reserve_for_new_networks = default_new_network_reserve(
            limits.max_associations,
            limits.max_associations_per_network,
        );
        if let Some(n) = raw.limits.association_reserve_for_new_networks {
            if n >= limits.max_associations {
                return Err(err(
                    "limits.association_reserve_for_new_networks",
                    format!(
                        "{n}: must be less than max_associations ({})",
                        limits.max_associations
                    ),
                ));
            }
            limits.association_reserve_for_new_networks = n;
        }
        if let Some(s) = raw.limits.association_fair_share_seconds {
            // Zero keeps no share: a site may want first come, first served.
            limits.association_fair_share = match s {
                0 => Duration::ZERO,
                s => seconds("limits.association_fair_share_seconds", s)?,
            };
        }
        let mut warnings = Vec::new();
        match raw.limits.owed_place_held_seconds {
            Some(s) => limits.owed_place_held = owed_place_held(s, limits.association_fair_share)?,
            None => {
                if let Some(cut) = default_hold_cut(limits.association_fair_share) {
                    limits.owed_place_held = limits.association_fair_share;
                    warnings.push(cut);
                }
            }
        }
        if let Some(bits) = raw.limits.association_network_v4_bits {
            let min = MIN_ASSOCIATION_NETWORK_BITS.v4;
            if !(min..=32).contains(&bits) {
                return Err(err(
                    "limits.association_network_v4_bits",
                    format!("{bits}: must lie between {min} and 32"),
                ));
            }
            limits.association_network.v4 = bits;
        }
        if let Some(bits) = raw.limits.association_network_v6_bits {
            let (min, max) = (
                MIN_ASSOCIATION_NETWORK_BITS.v6,
                crate::places::IPV6_PEER_PREFIX_BITS,
            );
            if !(min..=max).contains(&bits) {
                return Err(err(
                    "limits.association_network_v6_bits",
                    format!("{bits}: must lie between {min} and {max}"),
                ));
            }
            limits.association_network.v6 = bits;
        }
        if let Some(s) = raw.limits.request_seconds {
            limits.request = seconds(REQUEST_SETTING, s)?;
        }
        if let Some(cut) = cut_request_to_artim(&mut limits, raw.limits.request_seconds.is_some()) {
            warnings.push(cut);
        }
        if let Some(n) = raw.limits.max_associations_per_minute {
            if !(1..=MAX_ASSOCIATIONS_PER_MINUTE_LIMIT).contains(&n) {
                return Err(err(
                    "limits.max_associations_per_minute",
                    format!("{n}: must lie between 1 and {MAX_ASSOCIATIONS_PER_MINUTE_LIMIT}"),
                ));
            }
            limits.max_associations_per_minute = n;
        }
        if let Some(n) = raw.limits.max_pending {
            if !(1..=MAX_ASSOCIATIONS_LIMIT).contains(&n) {
                return Err(err(
                    "limits.max_pending",
                    format!("{n}: must lie between 1 and {MAX_ASSOCIATIONS_LIMIT}"),
                ));
            }
            limits.max_pending = n;
        }
        limits.max_pending_per_peer = limits.max_associations_per_peer.min(limits.max_pending);
        if let Some(n) = raw.limits.max_pending_per_peer {
            if !(1..=limits.max_pending).contains(&n) {
                return Err(err(
                    "limits.max_pending_per_peer",
                    format!(
                        "{n}: must lie between 1 and max_pending ({})",
                        limits.max_pending
                    ),
                ));
            }
            limits.max_pending_per_peer = n;
        }
        if raw.listener.is_empty() {
            return Err(err("listener", "no [[listener]]: nothing to do"));
        }
        let mut listeners = Vec::new();
        for (i, l) in raw.listener.iter().enumerate() {
            let at = format!("listener[{i}]");
            let listen = l.listen.parse::<SocketAddr>().map_err(|_| {
                err(
                    format!("{at}.listen"),
                    format!("{:?}: not ADDRESS:PORT", l.listen),
                )
            })?;
            // Port 0 (any free port, for tests) may be given more than once.
            if listen.port() != 0 && listeners.iter().any(|o: &Listener| o.listen == listen) {
                return Err(err(
                    format!("{at}.listen"),
                    format!("{listen} is listed twice"),
                ));
            }
            let allow = networks(&format!("{at}.allow"), &l.allow)?;
            if allow.is_empty() {
                return Err(err(
                    format!("{at}.allow"),
                    "empty: no peer could connect (list addresses or networks; 0.0.0.0/0 allows every IPv4 peer)",
                ));
            }
            if l.route.is_empty() {
                return Err(err(format!("{at}.route"), "no [[listener.route]]"));
            }
            mixed_modes(i, l)?;
            let mut routes: Vec<Route> = Vec::new();
            let mut pass_through: Vec<PassThrough> = Vec::new();
            for (j, r) in l.route.iter().enumerate() {
                let at = format!("{at}.route[{j}]");
                match r.mode.as_deref() {
                    None | Some("dicom") => {}
                    Some(TLS_PASS_THROUGH) => {
                        pass_through.push(pass_through_route(&at, i, l, r, &pass_through)?);
                        continue;
                    }
                    Some(other) => {
                        return Err(err(
                            format!("{at}.mode"),
                            format!("{other:?}: \"dicom\" (the default) or \"{TLS_PASS_THROUGH}\""),
                        ));
                    }
                }
                let called_ae = ae(
                    &format!("{at}.called_ae"),
                    required(&at, "called_ae", &r.called_ae)?,
                )?;
                let calling_ae = required(&at, "calling_ae", &r.calling_ae)?;
                if calling_ae.is_empty() {
                    return Err(err(
                        format!("{at}.calling_ae"),
                        "empty: no sender could call",
                    ));
                }
                let calling_ae = calling_ae
                    .iter()
                    .map(|a| ae(&format!("{at}.calling_ae"), a))
                    .collect::<Result<Vec<_>, _>>()?;
                let peers = match &r.peers {
                    Some(p) => {
                        let list = networks(&format!("{at}.peers"), p)?;
                        if list.is_empty() {
                            return Err(err(
                                format!("{at}.peers"),
                                "empty: leave it out to use the listener's allow",
                            ));
                        }
                        list
                    }
                    None => Vec::new(),
                };
                let sop_classes = uids(
                    &format!("{at}.sop_classes"),
                    required(&at, "sop_classes", &r.sop_classes)?,
                )?;
                let transfer_syntaxes = uids(
                    &format!("{at}.transfer_syntaxes"),
                    required(&at, "transfer_syntaxes", &r.transfer_syntaxes)?,
                )?;
                upstream(&at, &r.upstream)?;
                let upstream_ae = ae(
                    &format!("{at}.upstream_ae"),
                    required(&at, "upstream_ae", &r.upstream_ae)?,
                )?;
                let refuse = r
                    .refuse
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|name| {
                        FindingKind::ALL
                            .iter()
                            .copied()
                            .find(|k| k.as_str() == name)
                            .ok_or_else(|| {
                                err(
                                    format!("{at}.refuse"),
                                    format!("{name:?}: not a finding kind (see the README's list)"),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // Two routes answering the same caller on the same called AE would make the
                // choice depend on their order: refuse it.
                for (k, other) in routes.iter().enumerate() {
                    if other.called_ae == called_ae
                        && other.calling_ae.iter().any(|c| calling_ae.contains(c))
                    {
                        return Err(err(
                            format!("{at}.calling_ae"),
                            format!("a caller of {called_ae} is already routed by route[{k}]"),
                        ));
                    }
                }
                let users = users(
                    &format!("{at}.users"),
                    r.users.as_deref().unwrap_or_default(),
                )?;
                let jwt = match &r.jwt {
                    None => None,
                    Some(j) => {
                        if j.ed25519_keys.is_empty() {
                            return Err(err(
                                format!("{at}.jwt.ed25519_keys"),
                                "empty: no token could verify",
                            ));
                        }
                        let keys = j
                            .ed25519_keys
                            .iter()
                            .map(|k| {
                                crate::jwt::JwtRule::key(k)
                                    .map_err(|e| err(format!("{at}.jwt.ed25519_keys"), e))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        Some(crate::jwt::JwtRule {
                            keys,
                            issuer: j.issuer.clone(),
                            audience: j.audience.clone(),
                        })
                    }
                };
                let client_certificates = r
                    .client_certificates
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|t| {
                        crate::certificate::Rule::parse(t)
                            .map_err(|e| err(format!("{at}.client_certificates"), e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if !client_certificates.is_empty()
                    && l.tls.as_ref().is_none_or(|t| t.client_ca.is_none())
                {
                    return Err(err(
                        format!("{at}.client_certificates"),
                        "the listener asks for no client certificate: give it tls.client_ca",
                    ));
                }
                if let Some(u) = &r.upstream_identity
                    && (u.username.is_empty() || u.username.len() > MAX_USERNAME_BYTES)
                {
                    return Err(err(
                        format!("{at}.upstream_identity.username"),
                        format!(
                            "{:?}: a username has 1 to {MAX_USERNAME_BYTES} bytes",
                            u.username
                        ),
                    ));
                }
                routes.push(Route {
                    called_ae,
                    calling_ae,
                    peers,
                    sop_classes,
                    transfer_syntaxes,
                    upstream: r.upstream.clone(),
                    upstream_ae,
                    refuse,
                    upstream_tls: r.upstream_tls.clone(),
                    users,
                    client_certificates,
                    jwt,
                    upstream_identity: r.upstream_identity.clone(),
                });
            }
            listeners.push(Listener {
                listen,
                allow,
                tls: l.tls.clone(),
                routes,
                pass_through,
            });
        }
        Ok(GatewayConfig {
            limits,
            listeners,
            warnings,
        })
    }
}

/// A field a DICOM route cannot do without.
fn required<'a, T>(at: &str, name: &str, value: &'a Option<T>) -> Result<&'a T, ConfigError> {
    value
        .as_ref()
        .ok_or_else(|| err(format!("{at}.{name}"), "missing: a DICOM route needs it"))
}

fn upstream(at: &str, upstream: &str) -> Result<(), ConfigError> {
    if upstream.parse::<SocketAddr>().is_err()
        && upstream
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(err(
            format!("{at}.upstream"),
            format!("{upstream:?}: not HOST:PORT"),
        ));
    }
    Ok(())
}

/// A listener's routes are all `tls-pass-through` or none, checked once, whichever
/// comes first (review s19-r16: two checks, one per order, with their own wording):
/// the route named is the first whose mode differs from route[0]'s.
fn mixed_modes(i: usize, l: &RawListener) -> Result<(), ConfigError> {
    let pass = |r: &RawRoute| r.mode.as_deref() == Some(TLS_PASS_THROUGH);
    let Some(first) = l.route.first() else {
        return Ok(());
    };
    match l.route.iter().position(|r| pass(r) != pass(first)) {
        None => Ok(()),
        Some(j) => Err(err(
            format!("listener[{i}].route[{j}].mode"),
            format!(
                "a listener's routes are all {TLS_PASS_THROUGH} or none (route[0] is {}, route[{j}] is not): which one a connection takes would have to be read from its association, which a pass-through never reads (give the pass-through a listener of its own)",
                if pass(first) {
                    TLS_PASS_THROUGH
                } else {
                    "dicom"
                }
            ),
        )),
    }
}

/// A `tls-pass-through` route (`at`, of listener `i`): every option that needs the
/// association read is refused by name (the gateway would silently not honour it), as
/// is a listener that terminates TLS; several pass-through routes of one listener are
/// told apart by peer address alone, so each names its peers and no two overlap.
fn pass_through_route(
    at: &str,
    i: usize,
    l: &RawListener,
    r: &RawRoute,
    others: &[PassThrough],
) -> Result<PassThrough, ConfigError> {
    if let Some(field) = r.dicom_only_fields().first() {
        return Err(err(
            format!("{at}.{field}"),
            format!(
                "a {TLS_PASS_THROUGH} route cannot honour it: the association is encrypted end to end and never read (no AE title, user identity, presentation context, content screening or TLS of the gateway's own); leave it out, or terminate TLS (listener tls, upstream_tls) to have it checked"
            ),
        ));
    }
    if l.tls.is_some() {
        return Err(err(
            format!("listener[{i}].tls"),
            format!(
                "a listener with a {TLS_PASS_THROUGH} route does not terminate TLS: it relays the peer's TLS unopened to the upstream"
            ),
        ));
    }
    upstream(at, &r.upstream)?;
    let peers = match &r.peers {
        Some(p) => {
            let list = networks(&format!("{at}.peers"), p)?;
            if list.is_empty() {
                return Err(err(
                    format!("{at}.peers"),
                    "empty: leave it out to use the listener's allow",
                ));
            }
            list
        }
        None => Vec::new(),
    };
    let several = l
        .route
        .iter()
        .filter(|r| r.mode.as_deref() == Some(TLS_PASS_THROUGH))
        .count()
        > 1;
    if several && peers.is_empty() {
        return Err(err(
            format!("{at}.peers"),
            format!(
                "missing: the {TLS_PASS_THROUGH} routes of one listener are told apart by the peer's address alone (nothing of the association is read): give each its peers"
            ),
        ));
    }
    for (k, other) in others.iter().enumerate() {
        if let Some((a, b)) = peers
            .iter()
            .flat_map(|a| other.peers.iter().map(move |b| (a, b)))
            .find(|(a, b)| a.overlaps(b))
        {
            return Err(err(
                format!("{at}.peers"),
                format!(
                    "{a} overlaps {b} of route[{k}]: a peer in both would take whichever comes first",
                ),
            ));
        }
    }
    Ok(PassThrough {
        peers,
        upstream: r.upstream.clone(),
    })
}

/// The setting of the time a connection has to send its request.
const REQUEST_SETTING: &str = "limits.request_seconds";

/// A request is never awaited longer than ARTIM (PS3.8 9.1.5): a longer
/// `request_seconds` is cut to `artim_seconds`, which the records then name. A value the
/// operator wrote and the gateway does not apply is said at load (the warning returned);
/// the default cut is named in the records only.
fn cut_request_to_artim(limits: &mut Limits, written: bool) -> Option<String> {
    if limits.request <= limits.artim {
        return None;
    }
    let asked = limits.request.as_secs();
    limits.request = limits.artim;
    limits.request_setting = "limits.artim_seconds";
    written.then(|| {
        format!(
            "{REQUEST_SETTING}: {asked} s is cut to artim_seconds ({} s): a request is never awaited longer than ARTIM, and the records name artim_seconds",
            limits.artim.as_secs()
        )
    })
}

/// `limits.owed_place_held_seconds`: at least a second (zero would hold no place for
/// anyone, and a sender refused once could never be given the place it is owed), at most
/// [`crate::places::MAX_OWED_PLACE_HELD`], and no longer than the fair share is
/// remembered (a refusal is forgotten then, whatever is held for it: a longer hold would
/// be cut short in silence).
fn owed_place_held(s: u64, fair_share: Duration) -> Result<Duration, ConfigError> {
    let field = "limits.owed_place_held_seconds";
    let max = crate::places::MAX_OWED_PLACE_HELD.as_secs();
    if !(1..=max).contains(&s) {
        return Err(err(
            field,
            format!("{s}: must lie between 1 and {max} seconds (places::MAX_OWED_PLACE_HELD)"),
        ));
    }
    if !fair_share.is_zero() && s > fair_share.as_secs() {
        return Err(err(
            field,
            format!(
                "{s}: must not exceed association_fair_share_seconds ({}): a refusal is forgotten then, whatever place is held for it",
                fair_share.as_secs()
            ),
        ));
    }
    Ok(Duration::from_secs(s))
}

/// The default hold of a place owed ([`crate::places::OWED_PLACE_HELD`]) is longer than
/// the fair share is remembered (`fair_share`, not zero): what to say of it being cut to
/// that. Refused, a site's `association_fair_share_seconds = 60` alone would stop the
/// gateway at its next start; cut in silence, the records named a hold that was not kept
/// (review of session 33).
fn default_hold_cut(fair_share: Duration) -> Option<String> {
    let default = crate::places::OWED_PLACE_HELD;
    (!fair_share.is_zero() && fair_share < default).then(|| {
        format!(
            "limits.owed_place_held_seconds: the default {} s is cut to association_fair_share_seconds ({} s): a refusal is forgotten then, whatever place is held for it",
            default.as_secs(),
            fair_share.as_secs()
        )
    })
}

fn seconds(field: &str, s: u64) -> Result<Duration, ConfigError> {
    if !(1..=86_400).contains(&s) {
        return Err(err(
            field,
            format!("{s}: must lie between 1 and 86400 seconds"),
        ));
    }
    Ok(Duration::from_secs(s))
}

/// An AE title (PS3.5 Table 6.2-1): 1 to 16 characters of the default repertoire, no
/// backslash or control character, not only spaces.
fn ae(field: &str, text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim_matches(' ');
    if trimmed.is_empty() || text.len() > 16 {
        return Err(err(
            field,
            format!("{text:?}: an AE title has 1 to 16 characters"),
        ));
    }
    if text
        .bytes()
        .any(|b| b == b'\\' || !(0x20..0x7f).contains(&b))
    {
        return Err(err(
            field,
            format!("{text:?}: an AE title is printable ASCII without a backslash"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The users of a route: names of 1 to [`MAX_USERNAME_BYTES`] bytes, each once, and a
/// hash in the form `pacsguard gateway --hash-passcode` prints (whether it verifies is
/// only known when a passcode is checked; a damaged one never matches).
fn users(field: &str, list: &[RawUser]) -> Result<Vec<User>, ConfigError> {
    let mut out: Vec<User> = Vec::new();
    for u in list {
        if u.username.is_empty() || u.username.len() > MAX_USERNAME_BYTES {
            return Err(err(
                field,
                format!(
                    "{:?}: a username has 1 to {MAX_USERNAME_BYTES} bytes",
                    u.username
                ),
            ));
        }
        if out.iter().any(|o| o.username == u.username) {
            return Err(err(field, format!("{:?} is listed twice", u.username)));
        }
        let parts: Vec<&str> = u.passcode_hash.split('$').collect();
        let well_formed = u.passcode_hash.len() <= MAX_PASSCODE_HASH_BYTES
            && matches!(parts.as_slice(), ["argon2id", "v=19", params, salt, hash]
                if params.starts_with("m=")
                    && !salt.is_empty()
                    && hash.len() == 64
                    && [salt, hash].iter().all(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
        if !well_formed {
            return Err(err(
                field,
                format!(
                    "the passcode_hash of {:?} is not an Argon2id hash as `pacsguard gateway --hash-passcode` prints it",
                    u.username
                ),
            ));
        }
        out.push(User {
            username: u.username.clone(),
            passcode_hash: u.passcode_hash.clone(),
        });
    }
    Ok(out)
}

fn networks(field: &str, list: &[String]) -> Result<Vec<Network>, ConfigError> {
    list.iter()
        .map(|t| {
            Network::parse(t)
                .ok_or_else(|| err(field, format!("{t:?}: not an address or ADDRESS/PREFIX")))
        })
        .collect()
}

fn uids(field: &str, list: &[String]) -> Result<UidList, ConfigError> {
    if list.iter().any(|u| u == "*") {
        if list.len() > 1 {
            return Err(err(
                field,
                "\"*\" allows everything: list nothing beside it",
            ));
        }
        return Ok(UidList::Any);
    }
    if list.is_empty() {
        return Err(err(field, "empty: name the UIDs allowed, or \"*\" for all"));
    }
    for u in list {
        let valid = !u.is_empty()
            && u.len() <= 64
            && u.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && !u.starts_with('.')
            && !u.ends_with('.')
            && !u.contains("..");
        if !valid {
            return Err(err(
                field,
                format!("{u:?}: not a UID (digits and dots, at most 64)"),
            ));
        }
    }
    Ok(UidList::Only(list.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[listener]]
listen = "127.0.0.1:11112"
allow = ["127.0.0.0/8"]
[[listener.route]]
called_ae = "PACS"
calling_ae = ["CT1"]
sop_classes = ["*"]
transfer_syntaxes = ["1.2.840.10008.1.2"]
upstream = "127.0.0.1:104"
upstream_ae = "ARCHIVE"
"#;

    /// The form of a hash the console's `password::hash` makes (not a real one).
    const HASH: &str = "argon2id$v=19$m=19456,t=2,p=1$00112233445566778899aabbccddeeff$0011223344556677889900112233445566778899001122334455667788990011";

    #[test]
    fn users_are_read_with_their_hashes() {
        let text = GOOD.replace(
            "upstream_ae",
            &format!("users = [{{ username = \"ct1\", passcode_hash = \"{HASH}\" }}]\nupstream_ae"),
        );
        let c = GatewayConfig::parse(&text).expect("valid");
        assert_eq!(c.listeners[0].routes[0].users[0].username, "ct1");
        let c = GatewayConfig::parse(GOOD).expect("valid");
        assert!(c.listeners[0].routes[0].users.is_empty());
    }

    #[test]
    fn a_peers_share_defaults_to_a_quarter_or_one_refused_data_set() {
        let c = GatewayConfig::parse(GOOD).expect("valid");
        // 1 GiB / 4 is less than one 256 MiB data set held on a refusing route.
        assert_eq!(
            c.limits.inspection_memory_per_peer,
            2 * DEFAULT_MAX_INSPECTED_BYTES
                + DEFAULT_MAX_INSPECTED_BYTES / 128
                + 2 * crate::dimse::MAX_COMMAND_SET_BYTES as u64
        );
        assert!(c.limits.inspection_memory_per_peer < c.limits.inspection_memory_bytes);
        let c = GatewayConfig::parse(&format!(
            "[limits]\ninspection_memory_bytes = 16000000000\n{GOOD}"
        ))
        .expect("valid");
        assert_eq!(c.limits.inspection_memory_per_peer, 4_000_000_000);
        let c = GatewayConfig::parse(&format!(
            "[limits]\ninspection_memory_bytes = 1000\ninspection_memory_per_peer_bytes = 1000\n{GOOD}"
        ))
        .expect("at the limit");
        assert_eq!(c.limits.inspection_memory_per_peer, 1000);
        let e = GatewayConfig::parse(&format!(
            "[limits]\ninspection_memory_bytes = 1000\ninspection_memory_per_peer_bytes = 1001\n{GOOD}"
        ))
        .expect_err("one more");
        assert_eq!(e.field, "limits.inspection_memory_per_peer_bytes");
    }

    #[test]
    fn the_screening_deadline_is_named_bounded_and_defaults_safely() {
        let c = GatewayConfig::parse(GOOD).expect("valid");
        assert_eq!(c.limits.screening_deadline, DEFAULT_SCREENING_DEADLINE);
        let c = GatewayConfig::parse(&format!("[limits]\nscreening_deadline_ms = 1\n{GOOD}"))
            .expect("the least");
        assert_eq!(c.limits.screening_deadline, Duration::from_millis(1));
        let max = MAX_SCREENING_DEADLINE.as_millis();
        GatewayConfig::parse(&format!("[limits]\nscreening_deadline_ms = {max}\n{GOOD}"))
            .expect("the most");
        for bad in ["0".to_owned(), (max + 1).to_string()] {
            let e =
                GatewayConfig::parse(&format!("[limits]\nscreening_deadline_ms = {bad}\n{GOOD}"))
                    .expect_err(&bad);
            assert_eq!(e.field, "limits.screening_deadline_ms");
        }
    }

    #[test]
    fn the_fair_share_is_kept_fifteen_minutes_by_default_and_zero_keeps_none() {
        let c = GatewayConfig::parse(GOOD).expect("valid");
        assert_eq!(
            c.limits.association_fair_share,
            DEFAULT_ASSOCIATION_FAIR_SHARE
        );
        for (text, kept) in [("0", 0), ("1", 1), ("86400", 86_400)] {
            let c = GatewayConfig::parse(&format!(
                "[limits]\nassociation_fair_share_seconds = {text}\n{GOOD}"
            ))
            .expect(text);
            assert_eq!(c.limits.association_fair_share, Duration::from_secs(kept));
        }
    }

    /// Session 33: a place owed was held a fixed 120 s, shorter than a send queue retrying
    /// every 5 minutes. The hold is a setting, 330 s by default, bounded.
    #[test]
    fn the_place_owed_is_held_330_seconds_by_default_and_the_hold_is_bounded() {
        let c = GatewayConfig::parse(GOOD).expect("valid");
        assert_eq!(c.limits.owed_place_held, Duration::from_secs(330));
        for (text, kept) in [("1", 1), ("600", 600), ("900", 900)] {
            let c = GatewayConfig::parse(&format!(
                "[limits]\nowed_place_held_seconds = {text}\n{GOOD}"
            ))
            .expect(text);
            assert_eq!(c.limits.owed_place_held, Duration::from_secs(kept));
        }
        for (text, said) in [
            (
                "owed_place_held_seconds = 0",
                "0: must lie between 1 and 900 seconds (places::MAX_OWED_PLACE_HELD)",
            ),
            (
                "owed_place_held_seconds = 901",
                "901: must lie between 1 and 900 seconds (places::MAX_OWED_PLACE_HELD)",
            ),
            (
                "association_fair_share_seconds = 300\nowed_place_held_seconds = 301",
                "301: must not exceed association_fair_share_seconds (300): a refusal is forgotten then, whatever place is held for it",
            ),
        ] {
            let e = GatewayConfig::parse(&format!("[limits]\n{text}\n{GOOD}")).expect_err(text);
            assert_eq!(e.field, "limits.owed_place_held_seconds", "{text}");
            assert_eq!(e.reason, said, "{text}");
        }
        let c = GatewayConfig::parse(&format!(
            "[limits]\nassociation_fair_share_seconds = 0\nowed_place_held_seconds = 900\n{GOOD}"
        ))
        .expect("no share kept: nothing to be cut short");
        assert_eq!(c.limits.owed_place_held, Duration::from_secs(900));
    }

    /// Review of session 33: `association_fair_share_seconds = 60` alone was accepted and
    /// the default hold (330 s) cut to 60 s in silence, while the records still said 330.
    /// The hold is the shorter of the two, and a default cut is said at start.
    #[test]
    fn a_default_hold_longer_than_the_fair_share_is_cut_to_it_and_said() {
        let c = GatewayConfig::parse(&format!(
            "[limits]\nassociation_fair_share_seconds = 60\n{GOOD}"
        ))
        .expect("the default hold is cut, not refused");
        assert_eq!(c.limits.owed_place_held, Duration::from_secs(60));
        assert_eq!(
            c.warnings,
            [
                "limits.owed_place_held_seconds: the default 330 s is cut to association_fair_share_seconds (60 s): a refusal is forgotten then, whatever place is held for it"
            ]
        );
        for (text, hold) in [
            ("", 330),
            ("association_fair_share_seconds = 330", 330),
            ("association_fair_share_seconds = 0", 330),
            (
                "association_fair_share_seconds = 60\nowed_place_held_seconds = 30",
                30,
            ),
        ] {
            let c = GatewayConfig::parse(&format!("[limits]\n{text}\n{GOOD}")).expect(text);
            assert_eq!(
                c.limits.owed_place_held,
                Duration::from_secs(hold),
                "{text}"
            );
            assert!(c.warnings.is_empty(), "{text}: {:?}", c.warnings);
        }
    }

    #[test]
    fn the_reserve_for_new_networks_defaults_to_a_sixteenth_and_follows_max_associations() {
        let c = GatewayConfig::parse(GOOD).expect("valid");
        assert_eq!(c.limits.association_reserve_for_new_networks, 4);
        let c = GatewayConfig::parse(&format!("[limits]\nmax_associations = 15\n{GOOD}"))
            .expect("valid");
        assert_eq!(
            c.limits.association_reserve_for_new_networks, 0,
            "none below 16"
        );
        let c = GatewayConfig::parse(&format!(
            "[limits]\nmax_associations = 64\nmax_associations_per_network = 62\n{GOOD}"
        ))
        .expect("valid");
        assert_eq!(
            c.limits.association_reserve_for_new_networks, 2,
            "never more than one network is kept from"
        );
        let c = GatewayConfig::parse(&format!(
            "[limits]\nmax_associations = 52\nmax_associations_per_peer = 52\n{GOOD}"
        ))
        .expect("valid");
        assert_eq!(
            c.limits.association_reserve_for_new_networks, 0,
            "one peer, so one network, may hold every place"
        );
        let c = GatewayConfig::parse(&format!(
            "[limits]\nmax_associations = 8\nassociation_reserve_for_new_networks = 7\n{GOOD}"
        ))
        .expect("the most: one place for a network holding some");
        assert_eq!(c.limits.association_reserve_for_new_networks, 7);
    }

    #[test]
    fn a_good_file_is_read() {
        let c = GatewayConfig::parse(GOOD).expect("valid");
        assert_eq!(c.listeners[0].routes[0].called_ae, "PACS");
        assert_eq!(c.limits.request, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(
            c.limits.max_pending_per_peer,
            DEFAULT_MAX_ASSOCIATIONS_PER_PEER
        );
        // The request timeout is never longer than ARTIM; the share never more than the
        // pending budget.
        let c = GatewayConfig::parse(&format!(
            "[limits]\nartim_seconds = 3\nmax_pending = 4\n{GOOD}"
        ))
        .expect("valid");
        assert_eq!(c.limits.request, Duration::from_secs(3));
        assert_eq!(c.limits.max_pending_per_peer, 4);
        assert_eq!(c.limits.max_pdu_length, DEFAULT_MAX_PDU_LENGTH);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                GOOD.replace("\"CT1\"", "\"A\\\\B\""),
                "listener[0].route[0].calling_ae",
            ),
            (
                GOOD.replace("[\"CT1\"]", "[]"),
                "listener[0].route[0].calling_ae",
            ),
            (
                GOOD.replace("127.0.0.0/8", "127.0.0.0/33"),
                "listener[0].allow",
            ),
            (GOOD.replace("[\"127.0.0.0/8\"]", "[]"), "listener[0].allow"),
            (
                GOOD.replace("\"PACS\"", "\"SEVENTEEN_CHARS_X\""),
                "listener[0].route[0].called_ae",
            ),
            (
                GOOD.replace("[\"*\"]", "[]"),
                "listener[0].route[0].sop_classes",
            ),
            (
                GOOD.replace("1.2.840.10008.1.2\"", "1.2..3\""),
                "listener[0].route[0].transfer_syntaxes",
            ),
            (
                GOOD.replace("127.0.0.1:104", "nowhere"),
                "listener[0].route[0].upstream",
            ),
            (
                format!("[limits]\nmax_pdu_length = {}\n{GOOD}", MAX_PDU_LENGTH + 1),
                "limits.max_pdu_length",
            ),
            (
                format!("[limits]\nanswer_seconds = 0\n{GOOD}"),
                "limits.answer_seconds",
            ),
            (
                format!("[limits]\nmax_associations_per_network = 15\n{GOOD}"),
                "limits.max_associations_per_network",
            ),
            (
                format!("[limits]\nassociation_seconds = 60\npass_through_seconds = 61\n{GOOD}"),
                "limits.pass_through_seconds",
            ),
            (
                format!("[limits]\npass_through_seconds = 0\n{GOOD}"),
                "limits.pass_through_seconds",
            ),
            (
                format!("[limits]\nmax_associations = 8\nassociation_reserve_for_new_networks = 8\n{GOOD}"),
                "limits.association_reserve_for_new_networks",
            ),
            (
                format!("[limits]\nassociation_fair_share_seconds = 86401\n{GOOD}"),
                "limits.association_fair_share_seconds",
            ),
            (
                format!("[limits]\nassociation_network_v4_bits = 7\n{GOOD}"),
                "limits.association_network_v4_bits",
            ),
            (
                format!("[limits]\nassociation_network_v6_bits = 65\n{GOOD}"),
                "limits.association_network_v6_bits",
            ),
            (
                format!("[limits]\nquery_answer_seconds = 0\n{GOOD}"),
                "limits.query_answer_seconds",
            ),
            (
                format!("[limits]\nretrieve_answer_seconds = 86401\n{GOOD}"),
                "limits.retrieve_answer_seconds",
            ),
            (
                format!("[limits]\nmessage_seconds = 0\n{GOOD}"),
                "limits.message_seconds",
            ),
            (
                format!("[limits]\nprogress_seconds = 86401\n{GOOD}"),
                "limits.progress_seconds",
            ),
            (
                format!("[limits]\nassociation_seconds = 0\n{GOOD}"),
                "limits.association_seconds",
            ),
            (
                format!("[limits]\nmin_average_bytes_per_second = 0\n{GOOD}"),
                "limits.min_average_bytes_per_second",
            ),
            (
                format!(
                    "[limits]\nmin_average_bytes_per_second = {}\n{GOOD}",
                    MAX_MIN_AVERAGE_BYTES_PER_SECOND + 1
                ),
                "limits.min_average_bytes_per_second",
            ),
            (
                format!("[limits]\nidle_seconds = 0\n{GOOD}"),
                "limits.idle_seconds",
            ),
            (
                GOOD.replace("upstream_ae", "refuse = [\"embedded-exe\"]\nupstream_ae"),
                "listener[0].route[0].refuse",
            ),
            (
                format!("[limits]\nrequest_seconds = 0\n{GOOD}"),
                "limits.request_seconds",
            ),
            (
                format!("[limits]\nmax_associations_per_minute = 0\n{GOOD}"),
                "limits.max_associations_per_minute",
            ),
            (
                format!("[limits]\nmax_pending = 0\n{GOOD}"),
                "limits.max_pending",
            ),
            (
                format!("[limits]\nmax_pending = 4\nmax_pending_per_peer = 5\n{GOOD}"),
                "limits.max_pending_per_peer",
            ),
            (
                GOOD.replace("upstream_ae", "client_certificates = [\"cn:ct1\"]\nupstream_ae"),
                "listener[0].route[0].client_certificates",
            ),
            (
                GOOD.replace(
                    "upstream_ae",
                    "users = [{ username = \"u\", passcode_hash = \"secret\" }]\nupstream_ae",
                ),
                "listener[0].route[0].users",
            ),
            (
                GOOD.replace(
                    "upstream_ae",
                    &format!("users = [{{ username = \"u\", passcode_hash = \"{HASH}\" }}, {{ username = \"u\", passcode_hash = \"{HASH}\" }}]\nupstream_ae"),
                ),
                "listener[0].route[0].users",
            ),
            (
                GOOD.replace(
                    "upstream_ae",
                    &format!("users = [{{ username = \"\", passcode_hash = \"{HASH}\" }}]\nupstream_ae"),
                ),
                "listener[0].route[0].users",
            ),
            (
                GOOD.replace(
                    "upstream_ae",
                    "upstream_identity = { username = \"\" }\nupstream_ae",
                ),
                "listener[0].route[0].upstream_identity.username",
            ),
        ];
        for (text, field) in cases {
            let e = GatewayConfig::parse(&text).expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
        // At the limit: accepted.
        let at = format!("[limits]\nmax_pdu_length = {MAX_PDU_LENGTH}\n{GOOD}");
        assert!(GatewayConfig::parse(&at).is_ok());
    }

    const PASS: &str = r#"
[[listener]]
listen = "127.0.0.1:2762"
allow = ["10.0.0.0/8"]
[[listener.route]]
mode = "tls-pass-through"
upstream = "10.2.0.5:2762"
"#;

    #[test]
    fn a_tls_pass_through_route_is_read_and_chosen_by_peer_address() {
        let c = GatewayConfig::parse(PASS).expect("valid");
        let l = &c.listeners[0];
        assert!(l.routes.is_empty() && !l.plain());
        let ip = |t: &str| t.parse::<IpAddr>().expect("ip");
        assert_eq!(
            l.pass_through_for(ip("10.1.1.1"))
                .expect("the only route")
                .upstream,
            "10.2.0.5:2762"
        );
        let two = format!(
            "{}peers = [\"10.1.0.0/16\"]\n[[listener.route]]\nmode = \"tls-pass-through\"\npeers = [\"10.2.0.0/16\", \"10.3.0.7\"]\nupstream = \"10.9.0.1:2762\"\n",
            PASS
        );
        let c = GatewayConfig::parse(&two).expect("valid");
        let l = &c.listeners[0];
        assert_eq!(
            l.pass_through_for(ip("10.3.0.7")).expect("second").upstream,
            "10.9.0.1:2762"
        );
        assert_eq!(
            l.pass_through_for(ip("10.1.9.9")).expect("first").upstream,
            "10.2.0.5:2762"
        );
        assert!(l.pass_through_for(ip("10.4.0.1")).is_none());
        assert!(GatewayConfig::parse(GOOD).expect("valid").listeners[0].plain());
    }

    /// Review s19-r16: a listener mixing modes was refused by two checks, one per order,
    /// each with its own wording. One check now, one wording, naming the route.
    #[test]
    fn a_listener_mixing_modes_is_refused_once_in_either_order() {
        let dicom = "[[listener.route]]\ncalled_ae = \"PACS\"\ncalling_ae = [\"CT1\"]\nsop_classes = [\"*\"]\ntransfer_syntaxes = [\"*\"]\nupstream = \"10.2.0.6:104\"\nupstream_ae = \"ARCHIVE\"\n";
        let pass = "[[listener.route]]\nmode = \"tls-pass-through\"\npeers = [\"10.3.0.0/16\"]\nupstream = \"10.2.0.5:2762\"\n";
        let head = "[[listener]]\nlisten = \"127.0.0.1:2762\"\nallow = [\"10.0.0.0/8\"]\n";
        let mut said = Vec::new();
        for (routes, first) in [
            (format!("{pass}{dicom}"), "tls-pass-through"),
            (format!("{dicom}{pass}"), "dicom"),
            (format!("{dicom}{dicom}{pass}"), "dicom"),
        ] {
            let e = GatewayConfig::parse(&format!("{head}{routes}")).expect_err("mixed");
            assert!(
                e.field.ends_with(".mode") && e.field.starts_with("listener[0].route["),
                "{e}"
            );
            assert!(e.reason.contains(&format!("route[0] is {first}")), "{e}");
            said.push(
                e.reason
                    .replace("route[0] is tls-pass-through", "route[0] is dicom")
                    .replace("route[2]", "route[1]"),
            );
        }
        said.dedup();
        assert_eq!(said.len(), 1, "one wording: {said:#?}");
    }

    #[test]
    fn a_tls_pass_through_route_refuses_by_name_every_option_it_cannot_honour() {
        let route_field = |line: &str| PASS.replace("upstream =", &format!("{line}\nupstream ="));
        let mut cases: Vec<(String, String)> = [
            ("called_ae = \"PACS\"", "called_ae"),
            ("calling_ae = [\"CT1\"]", "calling_ae"),
            ("sop_classes = [\"*\"]", "sop_classes"),
            ("transfer_syntaxes = [\"*\"]", "transfer_syntaxes"),
            ("upstream_ae = \"ARCHIVE\"", "upstream_ae"),
            // Even empty: an option given is an option the operator expects honoured.
            ("refuse = []", "refuse"),
            ("refuse = [\"embedded-executable\"]", "refuse"),
            ("upstream_tls = { ca = \"ca.pem\" }", "upstream_tls"),
            ("users = []", "users"),
            ("client_certificates = [\"cn:ct1\"]", "client_certificates"),
            ("jwt = { ed25519_keys = [] }", "jwt"),
            (
                "upstream_identity = { username = \"gw\" }",
                "upstream_identity",
            ),
            ("peers = []", "peers"),
            ("peers = [\"10.0.0.0/33\"]", "peers"),
            ("mode = \"tls\"", "mode"),
        ]
        .into_iter()
        .map(|(line, field)| {
            let text = if field == "mode" {
                PASS.replace("mode = \"tls-pass-through\"", line)
            } else {
                route_field(line)
            };
            (text, format!("listener[0].route[0].{field}"))
        })
        .collect();
        cases.extend([
            // A listener that terminates TLS cannot also pass it through.
            (
                PASS.replace(
                    "[[listener.route]]",
                    "tls = { cert = \"gw.pem\", key = \"gw.key\" }\n[[listener.route]]",
                ),
                "listener[0].tls".to_owned(),
            ),
            (
                PASS.replace("10.2.0.5:2762", "nowhere"),
                "listener[0].route[0].upstream".to_owned(),
            ),
            // Mixed with a DICOM route, either way round.
            (
                format!("{PASS}{}", &GOOD[GOOD.find("[[listener.route]]").expect("route")..]),
                "listener[0].route[1].mode".to_owned(),
            ),
            (
                format!("{GOOD}{}", &PASS[PASS.find("[[listener.route]]").expect("route")..]),
                "listener[0].route[1].mode".to_owned(),
            ),
            // Several on one listener: each names its peers, none overlapping.
            (
                format!("{PASS}[[listener.route]]\nmode = \"tls-pass-through\"\npeers = [\"10.1.0.0/16\"]\nupstream = \"10.9.0.1:2762\"\n"),
                "listener[0].route[0].peers".to_owned(),
            ),
            (
                format!("{}peers = [\"10.0.0.0/8\"]\n[[listener.route]]\nmode = \"tls-pass-through\"\npeers = [\"10.1.2.3\"]\nupstream = \"10.9.0.1:2762\"\n", PASS),
                "listener[0].route[1].peers".to_owned(),
            ),
            // A DICOM route still needs its fields, named when missing.
            (GOOD.replace("upstream_ae = \"ARCHIVE\"", ""), "listener[0].route[0].upstream_ae".to_owned()),
            (GOOD.replace("called_ae = \"PACS\"", ""), "listener[0].route[0].called_ae".to_owned()),
        ]);
        for (text, field) in cases {
            let e = GatewayConfig::parse(&text).expect_err(&field);
            assert_eq!(e.field, field, "{e}\n{text}");
        }
        // `mode = "dicom"` is the default, said out loud.
        assert!(
            GatewayConfig::parse(&GOOD.replace("upstream =", "mode = \"dicom\"\nupstream ="))
                .is_ok()
        );
    }

    #[test]
    fn a_file_at_the_size_limit_is_read_and_one_byte_more_is_refused() {
        let mut at = GOOD.to_owned();
        at.push('#');
        while at.len() < MAX_CONFIG_BYTES {
            at.push('x');
        }
        assert!(GatewayConfig::parse(&at).is_ok());
        at.push('x');
        assert_eq!(
            GatewayConfig::parse(&at).expect_err("too large").field,
            "(file)"
        );
    }

    /// Issue 16, session 34: a dual-stack listener (`[::]:11112`) records an IPv4 peer
    /// by its mapped address (`[::ffff:127.0.0.1]`), and an allow-list written so
    /// (`::ffff:127.0.0.0/104`) was taken and matched nothing: the peer is compared as
    /// IPv4, the network stayed IPv6, and `echoscu` from 127.0.0.1 was refused ("address
    /// not in the listener's allow-list"). A mapped network is the IPv4 network it maps.
    #[test]
    fn an_ipv4_mapped_network_is_the_ipv4_network_it_maps() {
        let mapped = Network::parse("::ffff:127.0.0.0/104").expect("net");
        for peer in ["127.0.0.1", "::ffff:127.0.0.1", "127.255.0.9"] {
            assert!(mapped.contains(peer.parse().expect("ip")), "{peer}");
        }
        assert!(!mapped.contains("128.0.0.1".parse().expect("ip")));
        assert_eq!(
            Network::parse("::ffff:10.1.2.3"),
            Network::parse("10.1.2.3/32"),
            "one mapped address"
        );
        assert!(
            mapped.overlaps(&Network::parse("127.0.0.0/8").expect("net")),
            "the same network"
        );
    }

    /// Review rv34-gateway: with IPv4-mapped networks, an overlap error named the mapped
    /// form's IPv4 network ("10.0.0.0/8 overlaps 10.0.0.0/8"), not what the operator wrote.
    #[test]
    fn an_overlap_error_names_the_networks_as_written() {
        let two = format!(
            "{PASS}peers = [\"::ffff:10.1.0.0/112\"]\n[[listener.route]]\nmode = \"tls-pass-through\"\npeers = [\"10.1.2.0/24\"]\nupstream = \"10.9.0.1:2762\"\n"
        );
        let e = GatewayConfig::parse(&two).expect_err("the peers overlap");
        assert_eq!(e.field, "listener[0].route[1].peers");
        assert!(
            e.reason
                .starts_with("10.1.2.0/24 overlaps ::ffff:10.1.0.0/112 of route[0]"),
            "{}",
            e.reason
        );
    }

    /// Review rv34-gateway: `request_seconds` longer than `artim_seconds` was lowered to
    /// ARTIM in silence, and the records then named `limits.request_seconds` with ARTIM's
    /// value. The cut is said at load, and the records name the setting that applies.
    #[test]
    fn a_request_time_longer_than_artim_is_cut_said_and_named_as_artim() {
        let c = GatewayConfig::parse(&format!(
            "[limits]\nartim_seconds = 5\nrequest_seconds = 20\n{GOOD}"
        ))
        .expect("cut, not refused");
        assert_eq!(c.limits.request, Duration::from_secs(5));
        assert_eq!(c.limits.request_setting, "limits.artim_seconds");
        assert_eq!(
            c.warnings,
            [
                "limits.request_seconds: 20 s is cut to artim_seconds (5 s): a request is never awaited longer than ARTIM, and the records name artim_seconds"
            ]
        );
        // The default cut is named in the records, not warned of: nothing was written.
        let c =
            GatewayConfig::parse(&format!("[limits]\nartim_seconds = 3\n{GOOD}")).expect("valid");
        assert_eq!(c.limits.request_setting, "limits.artim_seconds");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        for text in [
            "request_seconds = 5",
            "artim_seconds = 5\nrequest_seconds = 5",
            "",
        ] {
            let c = GatewayConfig::parse(&format!("[limits]\n{text}\n{GOOD}")).expect(text);
            assert_eq!(c.limits.request_setting, "limits.request_seconds", "{text}");
            assert!(c.warnings.is_empty(), "{text}: {:?}", c.warnings);
        }
    }

    #[test]
    fn networks_match_by_prefix_and_mapped_ipv4() {
        let n = Network::parse("10.1.0.0/16").expect("net");
        assert!(n.contains("10.1.200.3".parse().expect("ip")));
        assert!(!n.contains("10.2.0.1".parse().expect("ip")));
        assert!(n.contains("::ffff:10.1.0.9".parse().expect("ip")));
        assert!(
            Network::parse("0.0.0.0/0")
                .expect("all")
                .contains("8.8.8.8".parse().expect("ip"))
        );
    }
}
