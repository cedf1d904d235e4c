//! `config.toml`: the roots to guard, their policies and exclusions.
//!
//! The configuration says what the *next* profile should record. The policy a `check`
//! applies is the one signed into the baseline; when the two differ, `check` reports
//! `config-differs` instead of silently following an edited file.

use std::path::{Path, PathBuf};

use pacsguard_fs::HashAlgorithm;
use pacsguard_profile::Policy;
use serde::Deserialize;

use crate::error::EngineError;

/// Largest configuration file accepted. It is a short hand-written file; anything larger
/// is a mistake or an attack on the parser.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Written by `init`. Every setting is explained where it is set.
pub const CONFIG_TEMPLATE: &str = r#"# PacsGuard configuration. Roots listed here are profiled by `pacsguard profile`
# without arguments and verified by `pacsguard check` without arguments.
#
# Content hash for new profiles: "blake3" (default, fastest) or "sha256" (FIPS settings).
# hash = "blake3"
#
# One [[root]] table per guarded tree. Roots must not nest.
#   policy:   "static"       binaries, configuration: any change alerts
#             "append-only"  image stores: new files are expected (info); change, deletion
#                            or rename alerts
#             "growing"      logs: files may only grow; the old prefix must not change
#             "volatile"     existence only
#   exclude:  globs matched against paths relative to the root ("*.tmp", "cache/**")
#   cross_mounts: descend into other file systems mounted below the root (default false)
#
# [[root]]
# path = "/srv/pacs/archive"
# policy = "append-only"
# exclude = ["*.tmp", "incoming/**"]
#
# [[root]]
# path = "/opt/modality/bin"
# policy = "static"
#
# The audit trail (audit.log) is signed at the end of every command. A witness directory
# on another disk or share keeps the newest checkpoint, so a trail rolled back here is
# caught. fsync: "batch" (once per command, default) or "record" (after every record).
# [audit]
# witness = "/mnt/evidence/pacsguard"
# fsync = "batch"
#
# `pacsguard watch`: real-time guarding. Every setting has the default shown.
# [watch]
# quiet_ms = 500                  # a file still being written is verified once quiet this long
# max_watches = 1000000           # inotify watches (one per directory); beyond it, directories are polled
# poll_seconds = 10               # how often directories without a watch are rescanned
# scrub_mb_per_s = 20             # background re-verification of every file (0: off)
# scrub_min_cycle_seconds = 3600  # a smaller tree is re-verified at most this often
# heartbeat_seconds = 300         # proof of life on the audit trail
# checkpoint_seconds = 1          # how often new records are signed into a checkpoint
# ransomware_files = 20           # rewrites in one append-only root within the window that
# ransomware_window_seconds = 10  #   raise ransomware-suspected
# ransomware_long_files = 30      # a score (each such file adds one, halving every
# ransomware_half_life_seconds = 3600  #   half-life) that raises it: slow encryption
# ransomware_total_files = 50     # and this many such files since the last alert, however slowly
# writer_wait_seconds = 30        # a guarded file another process keeps writing is judged
#                                 #   after this at most (a new file: this long without growing)
# on_alert = ["/usr/local/bin/page-oncall", "pacs"]   # run (no shell) on each alert
# degraded_syslog = "udp://siem.example:514"  # while the trail cannot be written, every
#                                 #   record also goes here as it happens (RFC 5424 over UDP)
# canary_dir = "/srv/pacs/archive/zz-pacsguard-canary"  # PacsGuard writes canary files here
# view_on_disk = false            # keep what the watcher last saw of each file in the home
#                                 #   (watch-view-N.sqlite, a bounded cache) instead of memory
#
# `pacsguard serve` delivers the trail to a syslog collector (RFC 5424, IHE ATNA) as it
# runs, from the same cursor as `pacsguard audit forward` (the options are the same).
# [forward]
# to = "tls://siem.example:6514"  # or tcp://HOST:PORT, udp://HOST:PORT
# ca = "/etc/pacsguard/siem-ca.pem"
# cert = "/etc/pacsguard/host.pem"  # with key: mutual TLS
# key = "/etc/pacsguard/host.key"
# destination = "syslog"          # the cursor's name (HOME/delivery/NAME.cursor)
# max_message_bytes = 8192        # larger records go as a stand-in (2048 to 65000)
"#;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, deserialize_with = "de_hash")]
    pub hash: Option<HashAlgorithm>,
    #[serde(default, rename = "root")]
    pub roots: Vec<RootConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub watch: WatchConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    #[serde(default)]
    pub forward: ForwardConfig,
}

/// `[forward]`: the syslog collector `serve` delivers the trail to as it runs, with the
/// options of `audit forward` (the same names: one vocabulary for both ways).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT`; unset: no forwarding.
    pub to: Option<String>,
    /// The collector's CA certificate (PEM), for `tls://`.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM) for mutual TLS (IHE ATNA).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The destination whose cursor it moves (default `syslog`, as `audit forward`'s).
    pub destination: Option<String>,
    /// The largest message sent whole (RFC 5425 gives no acknowledgement: a collector
    /// that throws away a message over its own limit cannot be told from one that took
    /// it); a record over it goes as a stand-in. Default
    /// `pacsguard_audit::syslog::DEFAULT_MAX_MESSAGE_BYTES`.
    pub max_message_bytes: Option<usize>,
}

impl ForwardConfig {
    /// `max_message_bytes`, or its default; out of range is refused with its name.
    pub fn max_message_bytes(&self) -> Result<usize, String> {
        self.max_message_bytes.map_or(
            Ok(pacsguard_audit::syslog::DEFAULT_MAX_MESSAGE_BYTES),
            |bytes| {
                pacsguard_audit::syslog::check_max_message_bytes(bytes)
                    .map_err(|e| format!("[forward] {e}"))
            },
        )
    }

    /// The collector and the destination's name, if forwarding is configured.
    pub fn target(&self) -> Result<Option<(pacsguard_audit::syslog::Target, String)>, String> {
        let Some(to) = &self.to else {
            if self.ca.is_some() || self.cert.is_some() || self.key.is_some() {
                return Err(
                    "[forward] ca, cert and key need a collector: to = \"tls://HOST:PORT\"".into(),
                );
            }
            return Ok(None);
        };
        let client = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => return Err("[forward] cert and key go together (mutual TLS)".into()),
        };
        if to.starts_with("tls://") && self.ca.is_none() {
            // Named as this file names it (Target::parse names audit forward's --ca).
            return Err(format!(
                "[forward] to = {to:?}: TLS needs the collector's CA certificate: ca = \"FILE\""
            ));
        }
        let target = pacsguard_audit::syslog::Target::parse(to, self.ca.clone(), client)
            .map_err(|e| format!("[forward] to {e}"))?;
        let destination = self
            .destination
            .clone()
            .unwrap_or_else(|| pacsguard_audit::delivery::SYSLOG_DESTINATION.to_string());
        pacsguard_audit::delivery::check_syslog_name(&destination)
            .map_err(|e| format!("[forward] destination: {e}"))?;
        Ok(Some((target, destination)))
    }

    /// The collector of [`ForwardConfig::target`], its TLS files read: a CA, certificate
    /// or key that cannot be read is named with its field, so that the guard says it at
    /// start instead of failing every delivery of a run of months without a word. Not
    /// part of [`Config::load`]: forwarding that cannot work must not stop the guard.
    pub fn checked_target(
        &self,
    ) -> Result<Option<(pacsguard_audit::syslog::Target, String)>, String> {
        let target = self.target()?;
        if let Some((target, _)) = &target {
            pacsguard_audit::syslog::check_tls_files(target)
                .map_err(|(field, why)| format!("[forward] {field}: {why}"))?;
        }
        Ok(target)
    }
}

/// `[console]`: where `pacsguard serve` listens and which certificate it presents.
/// Without `cert`/`key`, a self-signed certificate is generated into the home on first
/// start and its fingerprint printed.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `ADDRESS:PORT` (default 127.0.0.1:8443; `--listen` overrides it).
    pub listen: Option<String>,
    /// PEM certificate chain, the server's certificate first.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Four eyes: an acceptance into a `static` root asked in the console is done only
    /// once a second, different approver confirms it.
    pub four_eyes: bool,
    /// Four eyes for hosts: a host's profile generation approved in the console is
    /// signed only once a second, different approver confirms it.
    pub needs_second_host_approver: bool,
    /// The console's origin for passkeys, `https://HOST[:PORT]` (HOST a domain name: the
    /// WebAuthn relying party). Default: `https://localhost:PORT` when listening on a
    /// loopback address, else `https://HOSTNAME:PORT`.
    pub origin: Option<String>,
    /// Further host names the console answers to (`Host` header, without the port), a
    /// DNS alias people open it by. Besides these it answers to its origin's name, to
    /// this host's name, to `localhost` on a loopback address, and to any IP address;
    /// another name is refused (421), the defence against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Where the fleet's tables live (hosts, their records, checkpoints, cosignatures,
    /// quotas and profile approvals): unset or `"sqlite"`, the home's store (a console
    /// with few hosts); a PostgreSQL connection string (`postgres://USER@HOST:PORT/DB`
    /// or `host=/run/postgresql dbname=fleet user=pacsguard`) for a fleet.
    pub fleet_store: Option<String>,
    /// How long after its enrolment a host's first verified report is due before the
    /// console raises it `host-silent` (unset: the fleet's `FIRST_REPORT_WITHIN`, 60 s).
    /// A staged rollout that enrols hosts days before starting their guards sets it to
    /// that delay, rather than getting `host-silent` then `host-silence-ended` per host.
    pub first_report_within_seconds: Option<u64>,
}

/// Largest `[console] first_report_within_seconds` accepted (30 days): an enrolled host
/// whose guard never started is not guarded, and the console must say so some day.
pub const MAX_FIRST_REPORT_WITHIN_SECONDS: u64 = 30 * 24 * 3600;

impl ConsoleConfig {
    fn validate(&self) -> Result<(), String> {
        match self.first_report_within_seconds {
            Some(0) => Err("[console] first_report_within_seconds must be at least 1".into()),
            Some(seconds) if seconds > MAX_FIRST_REPORT_WITHIN_SECONDS => Err(format!(
                "[console] first_report_within_seconds {seconds} is over the limit of \
                 {MAX_FIRST_REPORT_WITHIN_SECONDS} (30 days): an enrolled host whose guard \
                 never starts would not be raised silent for that long"
            )),
            _ => Ok(()),
        }
    }
}

/// Largest `max_watches` accepted: the kernel's own ceiling is memory, and a watch costs
/// about 1 KiB of kernel memory.
pub const MAX_WATCHES_LIMIT: usize = 16_000_000;

/// Largest `writer_wait_seconds` accepted: an encryptor holding the files it rewrites
/// must not be waited for longer than this.
pub const MAX_WRITER_WAIT_SECONDS: u64 = 300;

/// `[watch]`: how `pacsguard watch` waits, polls, scrubs and alerts.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    pub quiet_ms: u64,
    pub max_watches: usize,
    pub poll_seconds: u64,
    pub scrub_mb_per_s: u64,
    pub scrub_min_cycle_seconds: u64,
    pub heartbeat_seconds: u64,
    pub checkpoint_seconds: u64,
    pub ransomware_files: usize,
    pub ransomware_window_seconds: u64,
    /// The decaying score (each distinct file rewritten, removed or renamed adds one; it
    /// halves every `ransomware_half_life_seconds`) that raises `ransomware-suspected`:
    /// encryption paced to stay under the burst rate.
    pub ransomware_long_files: usize,
    /// Accepts the name of the sliding window it replaced, whose default it keeps.
    #[serde(alias = "ransomware_long_window_seconds")]
    pub ransomware_half_life_seconds: u64,
    /// Distinct files rewritten, removed or renamed since the last alert that raise
    /// `ransomware-suspected` however slowly they came.
    pub ransomware_total_files: usize,
    /// How long a guarded file that another process still holds open for writing (and
    /// keeps changing) is waited for before it is judged as it stands; a new file, as
    /// long as it grows, and this long without growing (see `MAX_ARRIVAL_WAIT`).
    pub writer_wait_seconds: u64,
    pub on_alert: Vec<String>,
    /// `udp://HOST:PORT`: where every record goes as it happens while the audit trail
    /// cannot be written (`audit forward` sends it from the trail once it caught up).
    pub degraded_syslog: Option<String>,
    pub canary_dir: Option<PathBuf>,
    /// What the watcher last saw of each root is kept on disk in the home, one file per
    /// root read through a bounded page cache, instead of in memory: memory that does not
    /// grow with the tree (issue 15), a lookup per event a few pages of a B-tree.
    pub view_on_disk: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            quiet_ms: 500,
            max_watches: 1_000_000,
            poll_seconds: 10,
            scrub_mb_per_s: 20,
            scrub_min_cycle_seconds: 3600,
            heartbeat_seconds: 300,
            checkpoint_seconds: 1,
            ransomware_files: 20,
            ransomware_window_seconds: 10,
            ransomware_long_files: 30,
            ransomware_half_life_seconds: 3600,
            ransomware_total_files: 50,
            writer_wait_seconds: 30,
            on_alert: Vec::new(),
            degraded_syslog: None,
            canary_dir: None,
            view_on_disk: false,
        }
    }
}

impl WatchConfig {
    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("poll_seconds", self.poll_seconds),
            ("heartbeat_seconds", self.heartbeat_seconds),
            ("checkpoint_seconds", self.checkpoint_seconds),
            ("ransomware_window_seconds", self.ransomware_window_seconds),
            ("ransomware_files", self.ransomware_files as u64),
            ("ransomware_long_files", self.ransomware_long_files as u64),
            (
                "ransomware_half_life_seconds",
                self.ransomware_half_life_seconds,
            ),
            ("ransomware_total_files", self.ransomware_total_files as u64),
            ("writer_wait_seconds", self.writer_wait_seconds),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("[watch] {name} must be at least 1"));
            }
        }
        if self.writer_wait_seconds > MAX_WRITER_WAIT_SECONDS {
            return Err(format!(
                "[watch] writer_wait_seconds {} is over the limit of {MAX_WRITER_WAIT_SECONDS}: \
                 a guarded file rewritten by a process that never lets go would go unjudged \
                 that long",
                self.writer_wait_seconds
            ));
        }
        if self.max_watches > MAX_WATCHES_LIMIT {
            return Err(format!(
                "[watch] max_watches {} is over the limit of {MAX_WATCHES_LIMIT}",
                self.max_watches
            ));
        }
        if let Some(program) = self.on_alert.first()
            && !Path::new(program).is_absolute()
        {
            return Err(format!(
                "[watch] on_alert program {program:?} must be an absolute path"
            ));
        }
        if let Some(target) = &self.degraded_syslog
            && !target.starts_with("udp://")
        {
            return Err(format!(
                "[watch] degraded_syslog {target:?} must be udp://HOST:PORT (a datagram never \
                 makes the watcher wait)"
            ));
        }
        if let Some(dir) = &self.canary_dir
            && !dir.is_absolute()
        {
            return Err(format!(
                "[watch] canary_dir {dir:?} must be an absolute path"
            ));
        }
        Ok(())
    }
}

/// `[audit]`: where the trail's checkpoints are witnessed and when records reach the disk.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A directory on another disk or a mounted share that keeps the newest checkpoint.
    pub witness: Option<PathBuf>,
    #[serde(default)]
    pub fsync: FsyncPolicy,
}

/// `fsync = "batch"` (default: once per command, before the checkpoint is signed) or
/// `"record"` (after every record).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    #[default]
    Batch,
    Record,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    pub path: PathBuf,
    pub policy: Policy,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub cross_mounts: bool,
}

fn de_hash<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<HashAlgorithm>, D::Error> {
    let name = String::deserialize(d)?;
    HashAlgorithm::parse(&name).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown hash {name:?}: expected \"blake3\" or \"sha256\""
        ))
    })
}

impl Config {
    /// Reads and validates the file; every error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Config, EngineError> {
        let bad = |reason: String| EngineError::Config {
            path: path.to_path_buf(),
            reason,
        };
        // No link followed, no FIFO waited on, at most MAX_CONFIG_BYTES read.
        let text = match pacsguard_fs::read_file(path, MAX_CONFIG_BYTES) {
            Ok(read) => String::from_utf8(read.bytes).map_err(|_| bad("not UTF-8 text".into()))?,
            Err(pacsguard_fs::ReadError::TooLarge { size, .. }) => {
                return Err(bad(format!(
                    "{size} bytes is larger than the {MAX_CONFIG_BYTES}-byte limit"
                )));
            }
            Err(e) => return Err(bad(crate::files::refusal(&e))),
        };
        // `[forward]`'s TLS files are not read here: a CA on a mount not up yet at boot, or
        // a certificate being rotated, must not stop `check`, `watch` and every other
        // command; the guard says it when it starts forwarding (review rv33b-fleet).
        let mut config = Config::parse(&text).map_err(bad)?;
        // Roots are recorded by their real path; a configured path through a symlink must
        // still name the same root.
        for root in &mut config.roots {
            if let Ok(real) = root.path.canonicalize() {
                root.path = real;
            }
        }
        duplicate_roots(&config.roots).map_err(bad)?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        for (i, root) in config.roots.iter().enumerate() {
            if !root.path.is_absolute() {
                return Err(format!(
                    "root #{}: path {:?} must be absolute",
                    i + 1,
                    root.path
                ));
            }
            for glob in &root.exclude {
                globset::Glob::new(glob).map_err(|e| {
                    format!(
                        "root {}: exclude {glob:?}: {}",
                        root.path.display(),
                        e.kind()
                    )
                })?;
            }
        }
        duplicate_roots(&config.roots)?;
        if let Some(witness) = &config.audit.witness
            && !witness.is_absolute()
        {
            return Err(format!(
                "[audit] witness {witness:?} must be an absolute path"
            ));
        }
        config.watch.validate()?;
        config.console.validate()?;
        config.forward.target()?;
        config.forward.max_message_bytes()?;
        Ok(config)
    }

    pub fn root(&self, path: &Path) -> Option<&RootConfig> {
        self.roots.iter().find(|r| r.path == path)
    }
}

/// A TOML error by its line, column and the parser's message, never with the text of
/// the line: the file may hold a secret (the password in `[console] fleet_store`), and
/// the parser's own excerpt of the line printed it in the error of every command, one
/// unescaped `\` in that password sufficing (review s11-r14).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(before) = e.span().and_then(|span| text.get(..span.start)) else {
        return format!("TOML parse error: {message}");
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let setting = setting_at(text, before.len())
        .map(|setting| format!(" ({setting})"))
        .unwrap_or_default();
    format!("TOML parse error at line {line}, column {column}{setting}: {message}")
}

/// The setting (`[table] key`) written on the line holding byte `at` of `text`, named in
/// a parse error: serde's "invalid type: string, expected u64" names no field. Only a
/// key that is a setting's name (lower case, digits, `_`) before the line's first `=`
/// is named, never anything of the value, which may be a secret (review r29-fleet).
fn setting_at(text: &str, at: usize) -> Option<String> {
    let starts = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(starts..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let is_name = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !is_name(key) {
        return None;
    }
    let table = text[..starts]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|header| header.trim_matches(|c| c == '[' || c == ']'))
        .filter(|name| is_name(name));
    Some(match table {
        Some(table) => format!("[{table}] {key}"),
        None => key.to_string(),
    })
}

/// A tree listed twice (literally, or through a symlink once paths are resolved) would get
/// whichever entry comes first, policy and exclusions included: refused, naming both.
fn duplicate_roots(roots: &[RootConfig]) -> Result<(), String> {
    for (i, root) in roots.iter().enumerate() {
        if let Some(j) = roots[..i].iter().position(|r| r.path == root.path) {
            return Err(format!(
                "root {} is listed twice (root #{} with policy {}, root #{} with policy {}): \
                 keep one [[root]] per tree",
                pacsguard_events::escape_path(&root.path),
                j + 1,
                roots[j].policy,
                i + 1,
                root.policy
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_to_an_empty_config() {
        assert_eq!(Config::parse(CONFIG_TEMPLATE), Ok(Config::default()));
    }

    #[test]
    fn forward_takes_the_options_of_audit_forward_and_refuses_half_of_them() {
        let config = Config::parse("[forward]\nto = \"tcp://127.0.0.1:514\"\n").expect("taken");
        assert_eq!(
            config.forward.target(),
            Ok(Some((
                pacsguard_audit::syslog::Target::Tcp("127.0.0.1:514".into()),
                "syslog".into()
            )))
        );
        for (bad, says) in [
            ("ca = \"/ca.pem\"\n", "need a collector"),
            ("to = \"tls://siem:6514\"\n", "ca = \"FILE\""),
            (
                "to = \"tls://siem:6514\"\nca = \"/ca.pem\"\ncert = \"/c.pem\"\n",
                "go together",
            ),
            (
                "to = \"tcp://siem:514\"\nca = \"/ca.pem\"\n",
                "in the clear",
            ),
            (
                "to = \"tcp://siem:514\"\ndestination = \"../x\"\n",
                "destination name",
            ),
            ("to = \"siem:514\"\n", "expected udp://"),
            (
                "to = \"tcp://siem:514\"\nmax_message_bytes = 100\n",
                "max_message_bytes = 100: expected 2048",
            ),
            (
                "to = \"tcp://siem:514\"\ndestination = \"console\"\n",
                "the console's",
            ),
        ] {
            let err = Config::parse(&format!("[forward]\n{bad}")).expect_err(bad);
            assert!(
                err.contains("[forward]") && err.contains(says),
                "{bad}: {err}"
            );
        }
    }

    /// Before: `ca = "/nonexistent.pem"` loaded, and the guard ran without ever
    /// delivering. Now the load refuses it, naming the field (review rv33-deliver).
    #[test]
    fn forward_files_that_cannot_be_read_are_named_with_their_field_and_load_all_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "not a certificate\n").expect("write");
        for (files, field) in [
            ("ca = \"/nonexistent.pem\"".to_string(), "[forward] ca: "),
            (format!("ca = {not_pem:?}"), "[forward] ca: "),
        ] {
            let path = dir.path().join("config.toml");
            std::fs::write(
                &path,
                format!("[forward]\nto = \"tls://siem:6514\"\n{files}\n"),
            )
            .expect("write");
            // The configuration loads (the guard must run); the check names the field.
            let config = Config::load(&path).expect(&files);
            let err = config.forward.checked_target().expect_err(&files);
            assert!(err.contains(field), "{files}: {err}");
        }
    }

    /// The boundary of MAX_WRITER_WAIT_SECONDS: the limit is taken, one more is refused
    /// (in `mistakes_are_named`).
    #[test]
    fn writer_wait_seconds_is_taken_up_to_its_limit() {
        let text = format!("[watch]\nwriter_wait_seconds = {MAX_WRITER_WAIT_SECONDS}\n");
        let config = Config::parse(&text).expect("the limit itself is taken");
        assert_eq!(config.watch.writer_wait_seconds, MAX_WRITER_WAIT_SECONDS);
        assert_eq!(WatchConfig::default().writer_wait_seconds, 30);
    }

    /// The boundary of MAX_FIRST_REPORT_WITHIN_SECONDS: 1 and the limit are taken, 0 and
    /// one more are refused naming the field (review r29-fleet, issue 14).
    #[test]
    fn first_report_within_seconds_is_taken_up_to_its_limit() {
        assert_eq!(Config::default().console.first_report_within_seconds, None);
        for seconds in [1, MAX_FIRST_REPORT_WITHIN_SECONDS] {
            let text = format!("[console]\nfirst_report_within_seconds = {seconds}\n");
            let config = Config::parse(&text).expect("taken");
            assert_eq!(config.console.first_report_within_seconds, Some(seconds));
        }
        for seconds in [
            "0",
            &(MAX_FIRST_REPORT_WITHIN_SECONDS + 1).to_string(),
            "\"60\"",
        ] {
            let text = format!("[console]\nfirst_report_within_seconds = {seconds}\n");
            let err = Config::parse(&text).expect_err("refused");
            assert!(
                err.contains("[console] first_report_within_seconds"),
                "{err}"
            );
        }
    }

    #[test]
    fn roots_parse_with_policies() {
        let config = Config::parse("hash = \"sha256\"\n[[root]]\npath = \"/srv/pacs\"\npolicy = \"append-only\"\nexclude = [\"*.tmp\"]\n").expect("parses");
        assert_eq!(config.hash, Some(HashAlgorithm::Sha256));
        assert_eq!(config.roots[0].policy, Policy::AppendOnly);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("[[root]]\npath = \"/a\"\npolicy = \"strict\"\n", "strict"),
            (
                "[[root]]\npath = \"/a\"\npolicy = \"static\"\nexclud = []\n",
                "exclud",
            ),
            (
                "[[root]]\npath = \"rel\"\npolicy = \"static\"\n",
                "absolute",
            ),
            ("hash = \"md5\"\n", "md5"),
            ("[watch]\npoll_seconds = 0\n", "poll_seconds"),
            ("[watch]\nmax_watches = 99999999\n", "max_watches"),
            ("[watch]\non_alert = [\"page\"]\n", "on_alert"),
            ("[watch]\ncanary_dir = \"c\"\n", "canary_dir"),
            ("[watch]\nquiet = 1\n", "quiet"),
            ("[watch]\nwriter_wait_seconds = 0\n", "writer_wait_seconds"),
            (
                "[watch]\nwriter_wait_seconds = 301\n",
                "writer_wait_seconds 301",
            ),
            (
                "[[root]]\npath = \"/a\"\npolicy = \"static\"\nexclude = [\"a[\"]\n",
                "a[",
            ),
            (
                "[[root]]\npath = \"/a\"\npolicy = \"static\"\n[[root]]\npath = \"/a\"\npolicy = \"volatile\"\n",
                "root /a is listed twice (root #1 with policy static, root #2 with policy volatile)",
            ),
        ] {
            let err = Config::parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
