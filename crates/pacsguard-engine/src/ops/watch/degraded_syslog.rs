//! `[watch] degraded_syslog`: while the audit trail cannot be written (the home's disk is
//! full), `audit forward` has nothing new to send, so the watcher sends each record it
//! holds straight to a syslog collector as well (RFC 5424 carrying the DICOM audit
//! message, as `audit forward` does, one UDP datagram each, RFC 5426). UDP never makes
//! the watcher wait: a collector that is down costs a lost datagram, counted, never a
//! stalled guard. Once the trail has caught up, `audit forward` sends the same records
//! from the trail, complete and in order.

use std::net::UdpSocket;

use pacsguard_events::Event;

/// Bytes of one datagram: a longer message is cut (the whole record is on the trail once
/// it catches up). 8 KiB passes every collector RFC 5426 asks to accept 2 KiB from, and
/// loopback and jumbo paths without fragmentation trouble on the rest.
pub const MAX_DATAGRAM_BYTES: usize = 8 * 1024;

#[derive(Debug)]
pub struct DegradedSyslog {
    socket: UdpSocket,
    origin: String,
    host: String,
    /// Datagrams the socket refused (collector unreachable).
    pub failed: u64,
}

impl DegradedSyslog {
    /// `udp://HOST:PORT`: the socket is made now, so a bad address stops the start.
    pub fn open(target: &str, origin: String) -> Result<DegradedSyslog, String> {
        let addr = target
            .strip_prefix("udp://")
            .ok_or_else(|| format!("{target:?}: expected udp://HOST:PORT"))?;
        let bind = if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let socket = UdpSocket::bind(bind).map_err(|e| format!("{target}: {e}"))?;
        socket.connect(addr).map_err(|e| format!("{target}: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("{target}: {e}"))?;
        Ok(DegradedSyslog {
            socket,
            origin,
            host: crate::home::hostname(),
            failed: 0,
        })
    }

    /// Sends `event` as one datagram; a failure is counted, never waited on.
    pub fn send(&mut self, event: &Event) {
        let Ok(mut record) = serde_json::to_value(event) else {
            return;
        };
        if let Some(object) = record.as_object_mut() {
            object.insert("host".into(), self.host.clone().into());
        }
        let mut message = pacsguard_audit::syslog::message(&record, &self.origin);
        message.truncate(MAX_DATAGRAM_BYTES);
        if self.socket.send(&message).is_err() {
            self.failed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_events::{Action, Actor, Finding, FindingKind, Outcome, Severity};

    #[test]
    fn each_record_is_one_datagram_of_at_most_the_limit() {
        let collector = UdpSocket::bind("127.0.0.1:0").expect("test fixture");
        collector
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("test fixture");
        let target = format!("udp://{}", collector.local_addr().expect("test fixture"));
        let mut syslog = DegradedSyslog::open(&target, "origin".into()).expect("open");
        let actor = Actor {
            user: "root".into(),
            uid: 0,
            sudo_user: None,
        };
        let finding = Finding::new(
            "/srv/pacs/a.dcm".into(),
            FindingKind::ContentChanged,
            Severity::Alert,
            "x".repeat(100_000),
        );
        syslog.send(&Event::of_finding(actor.clone(), finding));
        syslog.send(&Event::new(actor, Action::Watch, Outcome::Success, "short"));
        let mut buffer = vec![0u8; 200_000];
        let long = collector.recv(&mut buffer).expect("first datagram");
        assert_eq!(long, MAX_DATAGRAM_BYTES);
        assert!(buffer.starts_with(b"<"));
        let short = collector.recv(&mut buffer).expect("second datagram");
        assert!(short < MAX_DATAGRAM_BYTES);
        assert!(String::from_utf8_lossy(&buffer[..short]).contains("short"));
        assert!(DegradedSyslog::open("tcp://127.0.0.1:1", "o".into()).is_err());
    }
}
