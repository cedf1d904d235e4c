//! Admission of an association: the answer to an A-ASSOCIATE-RQ from a peer, decided
//! from the request and the peer's address alone (no I/O), so it is tested byte for byte.
//!
//! The peer's address was already checked against the listener's allow-list before the
//! request was read (see `relay`). Here: protocol version, application context, called
//! AE, calling AE, the route's own peer list, then the presentation contexts.

use std::net::IpAddr;

use crate::certificate::Presented;
use crate::config::{Listener, Route};
use crate::pdu::{
    Associate, DICOM_APPLICATION_CONTEXT, Item, Rejection, SubItem, ae_field, ae_text,
    proposed_syntaxes, result, sub, trim_uid_padding,
};

/// A-ASSOCIATE-RJ reasons of the service user (PS3.8 Table 9-21).
pub mod reason {
    pub const NO_REASON: u8 = 1;
    pub const APPLICATION_CONTEXT_NOT_SUPPORTED: u8 = 2;
    pub const CALLING_AE_NOT_RECOGNIZED: u8 = 3;
    pub const CALLED_AE_NOT_RECOGNIZED: u8 = 7;
    /// Of the service provider (ACSE), source 2.
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: u8 = 2;
}

/// A-ASSOCIATE-RJ for a user identity missing, unreadable or wrong: rejected-permanent
/// (the same identity will not do better later), by the service provider's ACSE
/// function, no reason given, as pynetdicom documents for an authorisation failure
/// (PS3.7 D.3.3.7 names no code of its own).
pub const IDENTITY_REFUSED: Rejection = Rejection {
    result: Rejection::PERMANENT,
    source: Rejection::PROVIDER_ACSE,
    reason: 1,
};

/// A-ASSOCIATE-RJ for a username locked by its failures (`lockout`): rejected-transient
/// (the same identity may do better when the lock ends), by the service provider's
/// ACSE function, no reason given. Unknown usernames lock the same way, so it tells a
/// guesser nothing about which names exist.
pub const USERNAME_LOCKED: Rejection = Rejection {
    result: Rejection::TRANSIENT,
    source: Rejection::PROVIDER_ACSE,
    reason: 1,
};

/// A presentation context the gateway answers itself (it is not sent upstream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub id: u8,
    pub result: u8,
}

/// A presentation context sent upstream: what the data sets on it are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offered {
    pub id: u8,
    pub abstract_syntax: String,
}

#[derive(Debug)]
pub enum Admission<'a> {
    Accept {
        route: &'a Route,
        /// The request to send upstream: called AE of the upstream, allowed contexts and
        /// transfer syntaxes only, the gateway's maximum length.
        forward: Associate,
        offered: Vec<Offered>,
        refused: Vec<Refused>,
        /// A username and passcode to check before the association is admitted (the
        /// route requires one; see `identity`).
        identity: Option<crate::identity::Claim>,
    },
    Reject {
        rejection: Rejection,
        /// For the audit trail (the peer only sees the reason code).
        why: String,
    },
}

/// The title of an AE field (escaped, its trailing padding left out) and what is wrong
/// with it when it holds a byte PS3.5 forbids in an AE title (Table 6.2-1: the default
/// character repertoire, ISO-IR 6, without backslash or control characters), `None`
/// when it holds none. Such a title is refused, not trimmed or matched: admission
/// compares the trimmed title while the relay forwards the field's raw bytes, so a
/// trimmed match would let bytes nobody admitted reach the upstream (which may compare
/// them otherwise, split them at a backslash as a multi-valued string, or log them as
/// they are); a byte above 7FH may draw a look-alike of an allowed title (review rv44-gate).
/// Trailing NULs among the trailing spaces are padding, as [`ae_text`] reads them
/// ([`trim_uid_padding`]) (the padding of UIDs, which some older implementations write
/// in AE fields too): refusing them would stop such a modality's sends, and what the
/// upstream receives is what it would receive from the modality directly.
fn unlawful_ae(field: &[u8; 16]) -> Option<(String, &'static str)> {
    let title = trim_uid_padding(field);
    let what = if title.iter().any(u8::is_ascii_control) {
        "a control character"
    } else if title.contains(&b'\\') {
        "a backslash (the value delimiter)"
    } else if !title.is_ascii() {
        "a byte outside the default character repertoire (ISO-IR 6)"
    } else {
        return None;
    };
    // Bytes above 7FH are shown as bytes: rendered as characters they could read as the
    // very title they imitate.
    let shown = if title.is_ascii() {
        pacsguard_events::escape_bytes(title)
    } else {
        title.iter().fold(String::new(), |mut out, b| {
            if b.is_ascii() {
                out.push_str(&pacsguard_events::escape_bytes(&[*b]));
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
            out
        })
    };
    Some((shown, what))
}

/// `certificate`: the peer's TLS client certificate, on a listener that asked for one.
pub fn admit<'a>(
    listener: &'a Listener,
    peer: IpAddr,
    certificate: Option<&Presented>,
    rq: &Associate,
    max_pdu_length: u32,
) -> Admission<'a> {
    let called = ae_text(&rq.called_ae);
    let calling = ae_text(&rq.calling_ae);
    if rq.protocol_version & 1 == 0 {
        return Admission::Reject {
            rejection: Rejection {
                result: Rejection::PERMANENT,
                source: Rejection::PROVIDER_ACSE,
                reason: reason::PROTOCOL_VERSION_NOT_SUPPORTED,
            },
            why: format!(
                "protocol version {:#06x} not supported",
                rq.protocol_version
            ),
        };
    }
    if rq.application_context() != Some(DICOM_APPLICATION_CONTEXT) {
        return Admission::Reject {
            rejection: Rejection::by_user(reason::APPLICATION_CONTEXT_NOT_SUPPORTED),
            why: "application context name not supported".into(),
        };
    }
    // Before the titles are compared trimmed: a title the gateway would match as "CT1"
    // while forwarding its raw bytes ("CT1\t", "CT1\0") upstream is refused here
    // (review rv44-gate case6/case7). The called AE first, as below.
    if let Some((title, what)) = unlawful_ae(&rq.called_ae) {
        return Admission::Reject {
            rejection: Rejection::by_user(reason::CALLED_AE_NOT_RECOGNIZED),
            why: format!(
                "called AE title \"{title}\" holds {what}, which PS3.5 forbids in an AE title"
            ),
        };
    }
    if let Some((title, what)) = unlawful_ae(&rq.calling_ae) {
        return Admission::Reject {
            rejection: Rejection::by_user(reason::CALLING_AE_NOT_RECOGNIZED),
            why: format!(
                "calling AE title \"{title}\" holds {what}, which PS3.5 forbids in an AE title"
            ),
        };
    }
    let for_called: Vec<&Route> = listener
        .routes
        .iter()
        .filter(|r| r.called_ae == called)
        .collect();
    if for_called.is_empty() {
        return Admission::Reject {
            rejection: Rejection::by_user(reason::CALLED_AE_NOT_RECOGNIZED),
            why: format!("called AE title {called:?} not recognised"),
        };
    }
    let Some(route) = for_called
        .into_iter()
        .find(|r| r.calling_ae.contains(&calling))
    else {
        return Admission::Reject {
            rejection: Rejection::by_user(reason::CALLING_AE_NOT_RECOGNIZED),
            why: format!("calling AE title {calling:?} not recognised for {called:?}"),
        };
    };
    if !route.peers.is_empty() && !route.peers.iter().any(|n| n.contains(peer)) {
        // The caller's AE title is known, but not from this address: an AE title is not
        // authentication. The peer is told no more than "no reason given".
        return Admission::Reject {
            rejection: Rejection::by_user(reason::NO_REASON),
            why: format!("calling AE title {calling:?} is not allowed from {peer}"),
        };
    }
    if !route.client_certificates.is_empty() {
        // IHE ATNA node authentication: the CA issued the certificate; the route names
        // which of the CA's nodes it admits. Told no more than an address refused.
        let admitted = certificate
            .is_some_and(|c| route.client_certificates.iter().any(|rule| rule.matches(c)));
        if !admitted {
            return Admission::Reject {
                rejection: Rejection::by_user(reason::NO_REASON),
                why: match certificate {
                    Some(c) => format!(
                        "calling AE title {calling:?}: client certificate {} is not one the route admits (client_certificates)",
                        c.describe()
                    ),
                    None => format!(
                        "calling AE title {calling:?}: no client certificate, and the route admits only those it names (client_certificates)"
                    ),
                },
            };
        }
    }
    let identity = match crate::identity::claim(&route.users, route.jwt.as_ref(), rq) {
        Ok(claim) => claim,
        Err(why) => {
            return Admission::Reject {
                rejection: IDENTITY_REFUSED,
                why,
            };
        }
    };
    let mut forward = rq.clone();
    // A sender's user identity (a username, a passcode, a token) is never passed on,
    // whatever the route: on a route that requires one it is the gateway's credential,
    // on one that requires none it is nobody's business upstream, and an archive that
    // wants an identity is given the gateway's own (`upstream_identity`, added by the
    // relay). A 59H, the acceptor's answer, has no place in a request at all.
    forward.remove_user_sub_items(sub::USER_IDENTITY_RQ);
    forward.remove_user_sub_items(sub::USER_IDENTITY_AC);
    // Nor one put where PS3.8 9.3.2 has no place for it: a request holds an application
    // context, proposed contexts (an abstract syntax and transfer syntaxes each) and user
    // information, and only those are forwarded. A 58H item beside them or inside a
    // proposed context went upstream byte for byte (DCMTK's storescp accepts such a
    // request, ignores the item, and its debug log shows the passcode: review s11-r16).
    forward.items.retain_mut(|item| match item {
        Item::ApplicationContext(_) | Item::UserInformation(_) => true,
        Item::ProposedContext { sub_items, .. } => {
            sub_items.retain(|s| s.kind == sub::ABSTRACT_SYNTAX || s.kind == sub::TRANSFER_SYNTAX);
            true
        }
        Item::AcceptedContext { .. } | Item::Other(_) => false,
    });
    forward.called_ae = ae_field(&route.upstream_ae);
    forward.cap_maximum_length(max_pdu_length);
    // An item's length is 16 bits: a user information item the gateway grew past them
    // (the maximum length it adds where missing, its own identity for the upstream) was
    // sent with the length 65535 and the rest of its bytes read upstream as further items
    // of the request (review s11-r16). Refused instead; no sender needs a fraction of it.
    let own_identity = route.upstream_identity.as_ref().map_or(0, |u| {
        // The 58H sub-item: header, type and flag, both fields with their lengths.
        4 + 2 + 2 + u.username.len() + 2 + crate::identity::MAX_PASSCODE_BYTES
    });
    let user_information = forward
        .items
        .iter()
        .find_map(|i| match i {
            Item::UserInformation(subs) => {
                Some(subs.iter().map(|s| 4 + s.value.len()).sum::<usize>())
            }
            _ => None,
        })
        .unwrap_or(0);
    if user_information + own_identity > usize::from(u16::MAX) {
        return Admission::Reject {
            rejection: Rejection::by_user(reason::NO_REASON),
            why: format!(
                "the user information item would take {} bytes once forwarded (the gateway's own items included), more than an item holds (65535)",
                user_information + own_identity
            ),
        };
    }
    let mut offered = Vec::new();
    let mut refused = Vec::new();
    forward.items.retain_mut(|item| {
        let Item::ProposedContext { id, sub_items } = item else {
            return true;
        };
        let (abstract_syntax, transfer) = proposed_syntaxes(sub_items);
        let abstract_syntax = abstract_syntax.unwrap_or_default();
        if !route.sop_classes.allows(abstract_syntax) {
            refused.push(Refused {
                id: *id,
                result: result::ABSTRACT_SYNTAX_NOT_SUPPORTED,
            });
            return false;
        }
        if !transfer.iter().any(|t| route.transfer_syntaxes.allows(t)) {
            refused.push(Refused {
                id: *id,
                result: result::TRANSFER_SYNTAXES_NOT_SUPPORTED,
            });
            return false;
        }
        offered.push(Offered {
            id: *id,
            abstract_syntax: String::from_utf8_lossy(abstract_syntax).into_owned(),
        });
        sub_items.retain(|s| {
            s.kind != sub::TRANSFER_SYNTAX
                || route
                    .transfer_syntaxes
                    .allows(crate::pdu::trim_uid_padding(&s.value))
        });
        true
    });
    Admission::Accept {
        route,
        forward,
        offered,
        refused,
        identity,
    }
}

/// The contexts the gateway refused itself, as A-ASSOCIATE-AC items.
pub fn refused_items(refused: &[Refused]) -> Vec<Item> {
    refused
        .iter()
        .map(|r| Item::AcceptedContext {
            id: r.id,
            result: r.result,
            // PS3.8 9.3.3.2: the transfer syntax sub-item of a rejected context is
            // present and not significant.
            sub_items: vec![SubItem {
                kind: sub::TRANSFER_SYNTAX,
                value: b"1.2.840.10008.1.2".to_vec(),
            }],
        })
        .collect()
}

/// Holds the upstream's A-ASSOCIATE-AC to the request the gateway forwarded, before the
/// peer sees it (PS3.8 9.3.3.2: one answer per proposed context, an acceptance naming
/// one of the transfer syntaxes proposed for it). An answer for a context never forwarded
/// (one the gateway refused, or none the peer proposed) or a second answer for one is
/// dropped; an acceptance with a transfer syntax not forwarded (so not allowed by the
/// route, or never proposed by the peer) becomes a refusal, transfer syntaxes not
/// supported. Returns what was changed, one line each, for the record.
pub fn hold_answer(forward: &Associate, ac: &mut Associate) -> Vec<String> {
    let proposed: Vec<(u8, Vec<Vec<u8>>)> = forward
        .items
        .iter()
        .filter_map(|item| match item {
            Item::ProposedContext { id, sub_items } => Some((
                *id,
                proposed_syntaxes(sub_items)
                    .1
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    let mut changed = Vec::new();
    let mut answered = Vec::new();
    ac.items.retain_mut(|item| {
        let Item::AcceptedContext {
            id,
            result,
            sub_items,
        } = item
        else {
            return true;
        };
        let Some((_, syntaxes)) = proposed.iter().find(|(p, _)| p == id) else {
            changed.push(format!(
                "dropped the upstream's answer for presentation context {id}, which was not forwarded"
            ));
            return false;
        };
        if answered.contains(id) {
            changed.push(format!(
                "dropped the upstream's second answer for presentation context {id}"
            ));
            return false;
        }
        answered.push(*id);
        if *result == result::ACCEPTANCE {
            let chosen = proposed_syntaxes(sub_items).1;
            let held = matches!(chosen.as_slice(), [ts] if syntaxes.iter().any(|s| s == ts));
            if !held {
                changed.push(format!(
                    "refused presentation context {id}: the upstream accepted it with transfer syntax {}, not one forwarded",
                    chosen
                        .first()
                        .map(|t| String::from_utf8_lossy(t).into_owned())
                        .unwrap_or_else(|| "(none)".to_owned())
                ));
                *result = result::TRANSFER_SYNTAXES_NOT_SUPPORTED;
            }
        }
        true
    });
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;
    use crate::pdu::{Pdu, SubItem};

    fn listener() -> Listener {
        let text = r#"
[[listener]]
listen = "127.0.0.1:11112"
allow = ["0.0.0.0/0"]
[[listener.route]]
called_ae = "PACS"
calling_ae = ["CT1"]
peers = ["10.0.0.1"]
sop_classes = ["1.2.840.10008.5.1.4.1.1.2"]
transfer_syntaxes = ["1.2.840.10008.1.2.1"]
upstream = "127.0.0.1:104"
upstream_ae = "ARCHIVE"
"#;
        GatewayConfig::parse(text)
            .expect("valid")
            .listeners
            .remove(0)
    }

    fn context(id: u8, abstract_syntax: &[u8], transfer: &[&[u8]]) -> Item {
        let mut sub_items = vec![SubItem {
            kind: sub::ABSTRACT_SYNTAX,
            value: abstract_syntax.to_vec(),
        }];
        sub_items.extend(transfer.iter().map(|t| SubItem {
            kind: sub::TRANSFER_SYNTAX,
            value: t.to_vec(),
        }));
        Item::ProposedContext { id, sub_items }
    }

    fn rq(called: &str, calling: &str) -> Associate {
        Associate {
            protocol_version: 1,
            called_ae: ae_field(called),
            calling_ae: ae_field(calling),
            items: vec![
                Item::ApplicationContext(DICOM_APPLICATION_CONTEXT.to_vec()),
                context(
                    1,
                    b"1.2.840.10008.5.1.4.1.1.2\0",
                    &[b"1.2.840.10008.1.2\0", b"1.2.840.10008.1.2.1\0"],
                ),
                context(
                    3,
                    b"1.2.840.10008.5.1.4.1.1.4\0",
                    &[b"1.2.840.10008.1.2.1\0"],
                ),
                context(5, b"1.2.840.10008.5.1.4.1.1.2\0", &[b"1.2.840.10008.1.2\0"]),
            ],
        }
    }

    fn rejection(a: Admission<'_>) -> Option<(Rejection, String)> {
        match a {
            Admission::Reject { rejection, why } => Some((rejection, why)),
            Admission::Accept { .. } => None,
        }
    }

    fn raw(called: &[u8], calling: &[u8]) -> Associate {
        let field = |title: &[u8]| {
            let mut out = [b' '; 16];
            out[..title.len()].copy_from_slice(title);
            out
        };
        let mut r = rq("PACS", "CT1");
        r.called_ae = field(called);
        r.calling_ae = field(calling);
        r
    }

    /// Review rv44-gate case6/case7: "CT1\t", "\tCT1", "CT1\0", "CT1\r\n" were admitted
    /// as CT1 (and called "PACS\0" as PACS) while their raw bytes went upstream. PS3.5
    /// allows no control character in an AE title: refused with the reason of the
    /// title, and the trail names the title escaped.
    #[test]
    fn an_ae_title_with_a_forbidden_character_is_refused() {
        let l = listener();
        let ok: IpAddr = "10.0.0.1".parse().expect("ip");
        for (calling, shown) in [
            (&b"CT1\t"[..], "CT1\\u{0009}"),
            (b"\tCT1", "\\u{0009}CT1"),
            (b"CT\x001", "CT\\u{0000}1"),
            (b"CT1\r\n", "CT1\\u{000d}\\u{000a}"),
            (b"CT1\x7f", "CT1\\u{007f}"),
        ] {
            let (refused, why) =
                rejection(admit(&l, ok, None, &raw(b"PACS", calling), 65536)).expect("refused");
            assert_eq!(refused, Rejection::by_user(3), "{why}");
            assert!(
                why.contains(&format!("calling AE title \"{shown}\"")) && why.contains("PS3.5"),
                "{why}"
            );
        }
        let (refused, why) =
            rejection(admit(&l, ok, None, &raw(b"PA\0CS", b"CT1"), 65536)).expect("refused");
        assert_eq!(refused, Rejection::by_user(7), "{why}");
        assert!(why.contains("called AE title \"PA\\u{0000}CS\""), "{why}");
        // A backslash (PS3.5's value delimiter) and bytes outside ISO-IR 6 (a Cyrillic
        // "С" draws "CT1") are forbidden too, and shown as bytes (review rv44-gate).
        for (calling, shown, what) in [
            (&b"CT\\1"[..], "CT\\\\1", "backslash"),
            (
                "\u{0421}T1".as_bytes(),
                "\\xd0\\xa1T1",
                "default character repertoire",
            ),
            (b"CT1\xe9", "CT1\\xe9", "default character repertoire"),
        ] {
            let (refused, why) =
                rejection(admit(&l, ok, None, &raw(b"PACS", calling), 65536)).expect("refused");
            assert_eq!(refused, Rejection::by_user(3), "{why}");
            assert!(
                why.contains(&format!("calling AE title \"{shown}\"")) && why.contains(what),
                "{why}"
            );
        }
        // Spaces are padding, leading or trailing: still admitted; so are trailing NULs
        // (a UID's padding, written by some older implementations in AE fields).
        assert!(rejection(admit(&l, ok, None, &raw(b"  PACS", b" CT1"), 65536)).is_none());
        assert!(rejection(admit(&l, ok, None, &raw(b"PACS\0\0", b"CT1\0 "), 65536)).is_none());
    }

    #[test]
    fn each_refusal_carries_the_standard_reason() {
        let l = listener();
        let ok: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let r = rejection(admit(&l, ok, None, &rq("OTHER", "CT1"), 65536)).expect("refused");
        assert_eq!(r.0, Rejection::by_user(7));
        let r = rejection(admit(&l, ok, None, &rq("PACS", "MR9"), 65536)).expect("refused");
        assert_eq!(r.0, Rejection::by_user(3));
        let r = rejection(admit(&l, other, None, &rq("PACS", "CT1"), 65536)).expect("refused");
        assert_eq!(r.0, Rejection::by_user(1));
        let mut bad = rq("PACS", "CT1");
        bad.items[0] = Item::ApplicationContext(b"1.2.3".to_vec());
        assert_eq!(
            rejection(admit(&l, ok, None, &bad, 65536))
                .expect("refused")
                .0,
            Rejection::by_user(2)
        );
        bad = rq("PACS", "CT1");
        bad.protocol_version = 2;
        assert_eq!(
            rejection(admit(&l, ok, None, &bad, 65536))
                .expect("refused")
                .0
                .source,
            2
        );
        // AE titles compare without their padding, as PS3.5 says.
        assert!(rejection(admit(&l, ok, None, &rq(" PACS ", "CT1"), 65536)).is_none());
    }

    #[test]
    fn contexts_are_filtered_by_sop_class_and_transfer_syntax() {
        let l = listener();
        let ok: IpAddr = "10.0.0.1".parse().expect("ip");
        let Admission::Accept {
            forward,
            offered,
            refused,
            ..
        } = admit(&l, ok, None, &rq("PACS", "CT1"), 65536)
        else {
            panic!("refused")
        };
        assert_eq!(ae_text(&forward.called_ae), "ARCHIVE");
        assert_eq!(offered.len(), 1);
        assert_eq!(
            refused,
            vec![
                Refused {
                    id: 3,
                    result: result::ABSTRACT_SYNTAX_NOT_SUPPORTED
                },
                Refused {
                    id: 5,
                    result: result::TRANSFER_SYNTAXES_NOT_SUPPORTED
                },
            ]
        );
        // The forwarded context keeps only the allowed transfer syntax.
        let Pdu::AssociateRq(decoded) =
            Pdu::decode(&Pdu::AssociateRq(forward).encode()).expect("valid")
        else {
            panic!("not an RQ")
        };
        let contexts: Vec<_> = decoded
            .items
            .iter()
            .filter_map(|i| match i {
                Item::ProposedContext { sub_items, .. } => {
                    Some(proposed_syntaxes(sub_items).1.len())
                }
                _ => None,
            })
            .collect();
        assert_eq!(contexts, vec![1]);
        assert_eq!(decoded.maximum_length(), Some(65536));
    }

    /// A sender's user identity is the gateway's to read, never the upstream's: on a
    /// route that requires none, every 58H item (a passcode, a token) and any 59H in the
    /// request are taken out of what is forwarded; the other user information (the
    /// maximum length, an implementation class) stays.
    #[test]
    fn a_senders_user_identity_is_never_forwarded_even_where_the_route_checks_none() {
        let l = listener();
        let ok: IpAddr = "10.0.0.1".parse().expect("ip");
        let mut with = rq("PACS", "CT1");
        let identity = |kind: u8, primary: &[u8], secondary: &[u8]| {
            crate::identity::Request {
                kind,
                positive_response_requested: true,
                primary: primary.to_vec(),
                secondary: secondary.to_vec(),
            }
            .encode()
        };
        let implementation = SubItem {
            kind: 0x52,
            value: b"1.2.3.4".to_vec(),
        };
        with.items.push(Item::UserInformation(vec![
            implementation.clone(),
            identity(2, b"ct-tech", b"secret passcode"),
            identity(5, b"eyJhbGciOiJFZERTQSJ9.e30.sig", b""),
            SubItem {
                kind: sub::USER_IDENTITY_AC,
                value: vec![0, 0],
            },
        ]));
        let Admission::Accept {
            forward, identity, ..
        } = admit(&l, ok, None, &with, 65536)
        else {
            panic!("refused")
        };
        assert!(identity.is_none(), "the route checks no identity");
        let kinds: Vec<u8> = forward.user_sub_items().map(|s| s.kind).collect();
        assert_eq!(kinds, vec![sub::MAXIMUM_LENGTH, 0x52], "{forward:?}");
        let bytes = Pdu::AssociateRq(forward).encode();
        for secret in [&b"secret passcode"[..], b"ct-tech", b"eyJhbGciOiJFZERTQSJ9"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{}",
                String::from_utf8_lossy(secret)
            );
        }
    }

    /// An identity item where PS3.8 has no place for one (beside the request's items,
    /// inside a proposed context) is not forwarded either, nor is any other item a
    /// request does not hold: only the application context, the proposed contexts (their
    /// abstract and transfer syntaxes) and the user information go upstream.
    #[test]
    fn identity_items_out_of_place_are_not_forwarded_either() {
        let l = listener();
        let ok: IpAddr = "10.0.0.1".parse().expect("ip");
        let secret = |n: u8| {
            crate::identity::Request {
                kind: 2,
                positive_response_requested: false,
                primary: b"ct-tech".to_vec(),
                secondary: format!("secret passcode {n}").into_bytes(),
            }
            .encode()
        };
        let mut with = rq("PACS", "CT1");
        if let Item::ProposedContext { sub_items, .. } = &mut with.items[1] {
            sub_items.push(secret(1));
        }
        with.items.push(Item::Other(secret(2)));
        with.items.push(Item::AcceptedContext {
            id: 7,
            result: 0,
            sub_items: vec![secret(3)],
        });
        with.items.push(Item::UserInformation(vec![SubItem {
            kind: 0x52,
            value: b"1.2.3.4".to_vec(),
        }]));
        let Admission::Accept { forward, .. } = admit(&l, ok, None, &with, 65536) else {
            panic!("refused")
        };
        let bytes = Pdu::AssociateRq(forward.clone()).encode();
        for secret in [&b"secret passcode"[..], b"ct-tech"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{}: {forward:?}",
                String::from_utf8_lossy(secret)
            );
        }
        for item in &forward.items {
            match item {
                Item::ApplicationContext(_) | Item::UserInformation(_) => {}
                Item::ProposedContext { sub_items, .. } => assert!(
                    sub_items
                        .iter()
                        .all(|s| [sub::ABSTRACT_SYNTAX, sub::TRANSFER_SYNTAX].contains(&s.kind)),
                    "{forward:?}"
                ),
                other => panic!("forwarded: {other:?}"),
            }
        }
    }

    /// A user information item the gateway would grow past the 16 bits of an item's
    /// length (the maximum length it adds, its own identity for the upstream) is refused,
    /// not sent upstream with a wrong length; one that fits is forwarded.
    #[test]
    fn a_user_information_item_grown_past_an_items_length_is_refused() {
        let text = r#"
[[listener]]
listen = "127.0.0.1:11112"
allow = ["0.0.0.0/0"]
[[listener.route]]
called_ae = "PACS"
calling_ae = ["CT1"]
sop_classes = ["*"]
transfer_syntaxes = ["*"]
upstream = "127.0.0.1:104"
upstream_ae = "ARCHIVE"
[[listener.route]]
called_ae = "PACS"
calling_ae = ["CT2"]
sop_classes = ["*"]
transfer_syntaxes = ["*"]
upstream_identity = { username = "gateway" }
upstream = "127.0.0.1:104"
upstream_ae = "ARCHIVE"
"#;
        let l = GatewayConfig::parse(text)
            .expect("valid")
            .listeners
            .remove(0);
        let ok: IpAddr = "10.0.0.1".parse().expect("ip");
        let with = |calling: &str, filler: usize| {
            let mut r = rq("PACS", calling);
            r.items.push(Item::UserInformation(vec![SubItem {
                kind: 0x55,
                value: vec![b'A'; filler],
            }]));
            r
        };
        // Without a maximum length sub-item: the gateway adds one (8 bytes).
        let largest = usize::from(u16::MAX) - 4 - 8;
        for (calling, filler, admitted) in [
            ("CT1", largest, true),
            ("CT1", largest + 1, false),
            ("CT2", largest, false),
            ("CT2", 1000, true),
        ] {
            match admit(&l, ok, None, &with(calling, filler), 65536) {
                Admission::Accept { forward, .. } => {
                    assert!(admitted, "{calling} {filler}: admitted");
                    let bytes = Pdu::AssociateRq(forward).encode();
                    assert!(Pdu::decode(&bytes).is_ok(), "{calling} {filler}");
                }
                Admission::Reject { why, .. } => {
                    assert!(!admitted, "{calling} {filler}: {why}");
                    assert!(why.contains("more than an item holds (65535)"), "{why}");
                }
            }
        }
    }

    /// An upstream that answers a context the gateway refused, one the peer never
    /// proposed, one twice, or with a transfer syntax the route does not allow (seen
    /// from a raw upstream: the peer got "5 accepted" beside the gateway's "5 refused",
    /// and Deflate it had never proposed) is held to what was forwarded.
    #[test]
    fn the_upstreams_answer_is_held_to_what_was_forwarded() {
        let forward = rq("PACS", "CT1");
        let answer = |id: u8, result: u8, ts: &[u8]| Item::AcceptedContext {
            id,
            result,
            sub_items: vec![SubItem {
                kind: sub::TRANSFER_SYNTAX,
                value: ts.to_vec(),
            }],
        };
        let deflate = b"1.2.840.10008.1.2.1.99";
        let mut ac = Associate {
            items: vec![
                Item::ApplicationContext(DICOM_APPLICATION_CONTEXT.to_vec()),
                answer(1, result::ACCEPTANCE, deflate),
                answer(3, result::ACCEPTANCE, b"1.2.840.10008.1.2.1\0"),
                answer(5, result::ACCEPTANCE, b"1.2.840.10008.1.2"),
                answer(5, result::ACCEPTANCE, b"1.2.840.10008.1.2"),
                answer(7, result::ACCEPTANCE, b"1.2.840.10008.1.2"),
            ],
            ..forward.clone()
        };
        let changed = hold_answer(&forward, &mut ac);
        assert_eq!(changed.len(), 3, "{changed:#?}");
        assert_eq!(
            ac.items[1..],
            [
                answer(1, result::TRANSFER_SYNTAXES_NOT_SUPPORTED, deflate),
                answer(3, result::ACCEPTANCE, b"1.2.840.10008.1.2.1\0"),
                answer(5, result::ACCEPTANCE, b"1.2.840.10008.1.2"),
            ]
        );
        // A conforming answer is left as it is.
        let before = ac.clone();
        assert!(hold_answer(&forward, &mut ac).is_empty());
        assert_eq!(ac, before);
    }
}
