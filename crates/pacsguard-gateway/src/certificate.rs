//! TLS client certificates in route rules (IHE ATNA node authentication): a route may
//! name the certificates it admits, by subject common name, by subject alternative name
//! (DNS name or IP address) or by the SHA-256 of the certificate. The listener's
//! `client_ca` already proved the certificate was issued by the CA; this says which of
//! the CA's nodes may use the route (one CA commonly issues every node's certificate).
//!
//! No I/O: the relay reads the peer's leaf certificate after the handshake, [`Presented`]
//! holds what the rules look at, [`Rule::matches`] decides.

use std::net::IpAddr;

use sha2::{Digest as _, Sha256};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// Most names read from one certificate (subject common names plus alternative names):
/// the peer's certificate is bytes the peer chose (within the CA's policy), and every
/// name is compared with every rule. Names beyond are not read, and the record says so.
pub const MAX_CERTIFICATE_NAMES: usize = 64;
/// Common names of one certificate written in a record.
const RECORDED_COMMON_NAMES: usize = 4;

/// One entry of a route's `client_certificates`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `cn:NAME`: the common name of the certificate's subject, exactly, when the subject
    /// has one common name only. A subject with several is ambiguous (OpenSSL's name
    /// checks read the last, other software the first, and a CA's registration
    /// check may have looked at either): no `cn:` rule admits it (review s9-r16: a
    /// certificate for `CN=workstation, CN=modality` passed `cn:modality` and went on the
    /// trail as "workstation").
    CommonName(String),
    /// `san:NAME`: a DNS name (ASCII case ignored) or an IP address among the subject
    /// alternative names.
    AltName(String),
    /// `sha256:HEX`: the SHA-256 of the certificate (DER), colons allowed.
    Sha256([u8; 32]),
}

impl Rule {
    /// Reads `cn:…`, `san:…` or `sha256:…`; the error says what is expected.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let (kind, value) = text.split_once(':').unwrap_or(("", text));
        if value.is_empty() {
            return Err(format!(
                "{text:?}: expected cn:NAME, san:NAME or sha256:HEX"
            ));
        }
        match kind.to_ascii_lowercase().as_str() {
            "cn" => Ok(Rule::CommonName(value.to_owned())),
            "san" => Ok(Rule::AltName(value.to_owned())),
            "sha256" => {
                let hex: String = value.chars().filter(|c| *c != ':').collect();
                let mut out = [0u8; 32];
                if hex.len() != 64 || !hex.is_ascii() {
                    return Err(format!("{text:?}: a SHA-256 is 64 hexadecimal digits"));
                }
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = hex
                        .get(2 * i..2 * i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("{text:?}: a SHA-256 is 64 hexadecimal digits"))?;
                }
                Ok(Rule::Sha256(out))
            }
            _ => Err(format!(
                "{text:?}: expected cn:NAME, san:NAME or sha256:HEX"
            )),
        }
    }

    pub fn matches(&self, presented: &Presented) -> bool {
        match self {
            Rule::CommonName(name) => {
                presented.common_name_count == 1
                    && presented.common_names.first().is_some_and(|n| n == name)
            }
            Rule::AltName(name) => {
                let ip = name.parse::<IpAddr>().ok();
                presented.alt_names.iter().any(|n| match (ip, n) {
                    (Some(ip), AltName::Ip(a)) => ip == *a,
                    (None, AltName::Dns(d)) => d.eq_ignore_ascii_case(name),
                    _ => false,
                })
            }
            Rule::Sha256(digest) => presented.sha256 == *digest,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AltName {
    Dns(String),
    Ip(IpAddr),
}

/// What the route rules look at in the peer's leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    pub common_names: Vec<String>,
    /// Common name attributes in the subject, read or not (one in another string type
    /// than text, or past [`MAX_CERTIFICATE_NAMES`], counts too): `cn:` rules need one.
    pub common_name_count: usize,
    pub alt_names: Vec<AltName>,
    pub sha256: [u8; 32],
    /// Names past [`MAX_CERTIFICATE_NAMES`] were not read.
    pub names_cut: bool,
}

impl Presented {
    /// Reads a DER certificate. One the parser cannot read still has its SHA-256 (rustls
    /// verified it already; only name rules cannot match it).
    pub fn read(der: &[u8]) -> Presented {
        let mut presented = Presented {
            common_names: Vec::new(),
            common_name_count: 0,
            alt_names: Vec::new(),
            sha256: Sha256::digest(der).into(),
            names_cut: false,
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return presented;
        };
        let mut budget = MAX_CERTIFICATE_NAMES;
        presented.common_name_count = cert.subject().iter_common_name().count();
        for name in cert.subject().iter_common_name() {
            if budget == 0 {
                presented.names_cut = true;
                break;
            }
            if let Ok(text) = name.as_str() {
                presented.common_names.push(text.to_owned());
                budget -= 1;
            }
        }
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                let alt = match name {
                    GeneralName::DNSName(d) => AltName::Dns((*d).to_owned()),
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => AltName::Ip(IpAddr::from(
                            <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                        )),
                        16 => AltName::Ip(IpAddr::from(
                            <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
                        )),
                        _ => continue,
                    },
                    _ => continue,
                };
                if budget == 0 {
                    presented.names_cut = true;
                    break;
                }
                presented.alt_names.push(alt);
                budget -= 1;
            }
        }
        presented
    }

    /// For the record: the common name (every one, when there are several: the record
    /// must not name one of them as if it were the certificate's) and the SHA-256.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .common_names
            .iter()
            .take(RECORDED_COMMON_NAMES)
            .map(|n| format!("CN={:?}", n.chars().take(64).collect::<String>()))
            .collect();
        let cn = match self.common_name_count {
            0 => String::new(),
            1 if names.len() == 1 => format!("{} ", names.join("")),
            n => format!(
                "{} ({n} subject common names: no cn: rule admits it) ",
                names.join(", ")
            ),
        };
        let hex: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{cn}SHA-256 {hex}{}",
            if self.names_cut {
                format!(" (names past the first {MAX_CERTIFICATE_NAMES} not read)")
            } else {
                String::new()
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented() -> Presented {
        Presented {
            common_names: vec!["modality".into()],
            common_name_count: 1,
            alt_names: vec![
                AltName::Dns("CT1.example".into()),
                AltName::Ip("10.1.2.3".parse().expect("ip")),
            ],
            sha256: [0xab; 32],
            names_cut: false,
        }
    }

    #[test]
    fn rules_match_by_name_address_or_digest() {
        let p = presented();
        let yes = [
            "cn:modality",
            "san:ct1.example",
            "san:10.1.2.3",
            &format!("sha256:{}", "AB:".repeat(31) + "AB"),
        ];
        for rule in yes {
            assert!(Rule::parse(rule).expect(rule).matches(&p), "{rule}");
        }
        let no = [
            "cn:Modality",
            "cn:ct1.example",
            "san:modality",
            "san:10.1.2.4",
            &format!("sha256:{}", "ab".repeat(31) + "ac"),
        ];
        for rule in no {
            assert!(!Rule::parse(rule).expect(rule).matches(&p), "{rule}");
        }
        for bad in [
            "modality",
            "cn:",
            "sha256:abc",
            "uid:1",
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_read_up_to_the_limit_and_the_cut_is_said() {
        let names: Vec<String> = (0..=MAX_CERTIFICATE_NAMES)
            .map(|i| format!("n{i}.example"))
            .collect();
        let key = openssl_certificate("/CN=test", &names);
        let p = Presented::read(&key);
        assert_eq!(
            p.common_names.len() + p.alt_names.len(),
            MAX_CERTIFICATE_NAMES
        );
        assert!(p.names_cut);
        assert!(p.describe().contains("not read"));
        let p = Presented::read(&openssl_certificate(
            "/CN=test",
            &names[..MAX_CERTIFICATE_NAMES - 1],
        ));
        assert!(
            !p.names_cut,
            "one common name and 63 alternative names: at the limit"
        );
        assert!(Rule::parse("cn:test").expect("rule").matches(&p));
        // Not a certificate: only its digest.
        let p = Presented::read(b"not DER");
        assert!(p.common_names.is_empty() && !p.names_cut);
    }

    /// Review s9-r16: one certificate with two subject common names (the openssl CLI
    /// makes it as the CA signs it) passed `cn:` rules for either, and the record named
    /// the first. Ambiguous: no `cn:` rule admits it, the record names both; its digest
    /// and alternative names still match.
    #[test]
    fn a_subject_with_several_common_names_passes_no_cn_rule() {
        let names = ["ws.example".to_owned()];
        for subject in ["/CN=workstation/CN=modality", "/CN=modality/CN=workstation"] {
            let der = openssl_certificate(subject, &names);
            let p = Presented::read(&der);
            assert_eq!(p.common_name_count, 2, "{subject}");
            for rule in ["cn:modality", "cn:workstation"] {
                assert!(
                    !Rule::parse(rule).expect(rule).matches(&p),
                    "{subject}: {rule}"
                );
            }
            let digest: String = Sha256::digest(&der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            for rule in ["san:ws.example".to_owned(), format!("sha256:{digest}")] {
                assert!(Rule::parse(&rule).expect("rule").matches(&p), "{rule}");
            }
            let said = p.describe();
            assert!(
                said.contains("CN=\"workstation\"")
                    && said.contains("CN=\"modality\"")
                    && said.contains("2 subject common names"),
                "{said}"
            );
        }
        // One common name, in a subject with other attributes: admitted by it.
        let p = Presented::read(&openssl_certificate("/OU=modality/CN=workstation", &names));
        assert!(Rule::parse("cn:workstation").expect("rule").matches(&p));
        assert!(!Rule::parse("cn:modality").expect("rule").matches(&p));
        assert!(!p.describe().contains("common names"), "{}", p.describe());
    }

    /// A certificate whose subject is `subject` (openssl's `-subj` form) and `names` as
    /// DNS alternative names, made by the openssl CLI (DER).
    fn openssl_certificate(subject: &str, names: &[String]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "pacsguard-cert-{}-{}-{}",
            std::process::id(),
            names.len(),
            subject.len()
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", subject, "-outform", "DER"])
            .args(["-addext", &format!("subjectAltName={}", san.join(","))])
            .arg("-keyout")
            .arg(dir.join("k.pem"))
            .arg("-out")
            .arg(dir.join("c.der"))
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = std::fs::read(dir.join("c.der")).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        der
    }
}
