//! JSON Web Tokens in User Identity Negotiation (type 5, PS3.7 D.3.3.7): a compact JWS
//! (RFC 7515) signed with Ed25519 (`"alg": "EdDSA"`, RFC 8037), checked against the
//! public keys a route names. The token's `exp` must lie ahead and its `nbf` (if any)
//! behind; `sub` is the user on the record. Only EdDSA: no `none`, no HMAC (a shared
//! secret in the configuration), no RSA or ECDSA (not needed by anyone here yet; the key
//! type is explicit in the file).
//!
//! A token is a bearer credential: whoever holds a copy is the user until it expires. So
//! its lifetime is bounded ([`MAX_JWT_LIFETIME`], from its `iat` or `nbf` to its `exp`,
//! and never further ahead of now), a token made for another service is not taken for
//! one made for this route (`aud`, RFC 7519 4.1.3: a token that names audiences is
//! refused unless one of them is the route's; a route that names an audience refuses a
//! token naming none), and a JWS of another kind signed with the same key (an ID token's
//! sibling, a security event) is not taken for an access token (`typ`, RFC 8725 3.11:
//! when the header carries one it must be one of [`ACCEPTED_TYPES`]).
use data_encoding::{BASE64, BASE64URL_NOPAD};
use ring::signature::{ED25519, UnparsedPublicKey};
use serde_json::Value;

use crate::identity::MAX_USERNAME_BYTES;

/// Most bytes of a token read: tokens are a few hundred bytes; the signature check and
/// the JSON parse read every byte, and anyone may send one.
pub const MAX_JWT_BYTES: usize = 8192;
/// The longest a token may be valid, in seconds: `exp` minus the earlier of its `iat`
/// and `nbf`, and `exp` minus now (so a token without either, or dated in the future,
/// is bounded all the same). Access tokens of the identity providers in use live an hour
/// or so (Azure AD 60 to 90 minutes); a day leaves room for a modality that fetches one
/// per shift, and a stolen copy of a token valid for years is refused.
pub const MAX_JWT_LIFETIME: u64 = 24 * 60 * 60;
/// Header `typ` values accepted (RFC 7515 4.1.9, compared without case and without an
/// `application/` prefix): a plain JWT, or an OAuth access token (RFC 9068). Any other
/// declared type is a token made for another purpose.
pub const ACCEPTED_TYPES: [&str; 2] = ["jwt", "at+jwt"];

/// A route's token rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtRule {
    /// Ed25519 public keys (raw 32 bytes), any of which may have signed.
    pub keys: Vec<[u8; 32]>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl JwtRule {
    /// Reads a key as the configuration gives it: standard base64 of the 32 raw bytes
    /// (`openssl pkey -pubout -outform DER | tail -c 32 | base64`).
    pub fn key(text: &str) -> Result<[u8; 32], String> {
        BASE64
            .decode(text.trim().as_bytes())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| format!("{text:?}: not the base64 of a 32-byte Ed25519 public key"))
    }
}

fn part(text: &str, what: &str) -> Result<Vec<u8>, String> {
    BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| format!("JSON Web Token: its {what} is not base64url"))
}

fn object(bytes: &[u8], what: &str) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("JSON Web Token: its {what} is not a JSON object")),
    }
}

/// A NumericDate claim (RFC 7519 2: seconds since 1970, fractions allowed), whole
/// seconds; `None` when the claim is absent.
fn date(claims: &serde_json::Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    match (value.as_u64(), value.as_f64()) {
        (Some(s), _) => Ok(Some(s)),
        // Truncation is the intent: a fraction of a second changes nothing checked here.
        (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        _ => Err(format!(
            "JSON Web Token: its {name} is not a date (seconds since 1970)"
        )),
    }
}

/// Values of the sender's token as they go on the record: quoted and bounded (the
/// token is up to [`MAX_JWT_BYTES`] of the sender's text).
fn recorded_value(value: &Value) -> String {
    match value {
        Value::String(s) => crate::identity::recorded(s),
        other => crate::identity::recorded(&other.to_string()),
    }
}

/// At most this many audiences are named in a record.
const RECORDED_AUDIENCES: usize = 4;

fn recorded_list(list: &[&str]) -> String {
    let mut text: Vec<String> = list
        .iter()
        .take(RECORDED_AUDIENCES)
        .map(|a| crate::identity::recorded(a))
        .collect();
    if list.len() > RECORDED_AUDIENCES {
        text.push(format!("and {} more", list.len() - RECORDED_AUDIENCES));
    }
    text.join(", ")
}

/// Verifies `token` at `now` (seconds since 1970); the user it names, or why not.
pub fn verify(rule: &JwtRule, token: &[u8], now: u64) -> Result<String, String> {
    if token.len() > MAX_JWT_BYTES {
        return Err(format!(
            "JSON Web Token of {} bytes, more than {MAX_JWT_BYTES}",
            token.len()
        ));
    }
    let text = std::str::from_utf8(token).map_err(|_| "JSON Web Token: not text".to_owned())?;
    let parts: Vec<&str> = text.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err("JSON Web Token: not three dot-separated parts (compact JWS)".into());
    };
    let head = object(&part(header, "header")?, "header")?;
    if head.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err("JSON Web Token: not signed with EdDSA (the only algorithm accepted)".into());
    }
    if head.contains_key("crit") {
        return Err("JSON Web Token: critical header extensions are not understood".into());
    }
    if let Some(typ) = head.get("typ") {
        let declared = typ.as_str().unwrap_or_default();
        let bare = declared.to_ascii_lowercase();
        let bare = bare.strip_prefix("application/").unwrap_or(&bare);
        if !ACCEPTED_TYPES.contains(&bare) {
            return Err(format!(
                "JSON Web Token: its type (typ) {} is not one accepted ({})",
                recorded_value(typ),
                ACCEPTED_TYPES.join(", ")
            ));
        }
    }
    let signature = part(signature, "signature")?;
    let signed = format!("{header}.{payload}");
    let good = rule.keys.iter().any(|key| {
        UnparsedPublicKey::new(&ED25519, key)
            .verify(signed.as_bytes(), &signature)
            .is_ok()
    });
    if !good {
        return Err("JSON Web Token: the signature is not by a key the route names".into());
    }
    let claims = object(&part(payload, "payload")?, "payload")?;
    let exp = date(&claims, "exp")?.ok_or("JSON Web Token: no expiry (exp)")?;
    if now >= exp {
        return Err(format!("JSON Web Token: expired at {exp} (now {now})"));
    }
    let nbf = date(&claims, "nbf")?;
    if nbf.is_some_and(|nbf| now < nbf) {
        return Err("JSON Web Token: not valid yet (nbf)".into());
    }
    let iat = date(&claims, "iat")?;
    // From the earlier of `iat` and `nbf`, and never from later than now: a token dated
    // ahead (`iat` in the future) would otherwise claim a short life and hold a long one.
    let (from, what) = [(iat, "iat"), (nbf, "nbf"), (Some(now), "now")]
        .into_iter()
        .filter_map(|(at, what)| at.map(|at| (at, what)))
        .min_by_key(|&(at, _)| at)
        .unwrap_or((now, "now"));
    let lifetime = exp.saturating_sub(from);
    if lifetime > MAX_JWT_LIFETIME {
        return Err(format!(
            "JSON Web Token: valid for {lifetime} s (exp - {what}), more than {MAX_JWT_LIFETIME} s (jwt::MAX_JWT_LIFETIME)"
        ));
    }
    if let Some(issuer) = &rule.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
    {
        return Err(format!("JSON Web Token: not issued by {issuer:?}"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or("JSON Web Token: its audience (aud) is not a string or a list of strings")?,
        Some(_) => {
            return Err(
                "JSON Web Token: its audience (aud) is not a string or a list of strings".into(),
            );
        }
    };
    match (&rule.audience, audiences.as_slice()) {
        (None, []) => {}
        (Some(audience), []) => {
            return Err(format!(
                "JSON Web Token: names no audience (aud), and the route requires {audience:?}"
            ));
        }
        (Some(audience), named) if named.contains(&audience.as_str()) => {}
        (Some(audience), named) => {
            return Err(format!(
                "JSON Web Token: not meant for {audience:?} (aud: {})",
                recorded_list(named)
            ));
        }
        (None, named) => {
            return Err(format!(
                "JSON Web Token: meant for {} (aud), and the route names no audience (jwt.audience) to be one of them",
                recorded_list(named)
            ));
        }
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() && sub.len() <= MAX_USERNAME_BYTES => Ok(sub.to_owned()),
        _ => Err(format!(
            "JSON Web Token: no subject (sub) of 1 to {MAX_USERNAME_BYTES} bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    fn pair() -> Ed25519KeyPair {
        // RFC 8032 7.1 test 1's secret key.
        let seed = data_encoding::HEXLOWER
            .decode(b"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .expect("hex");
        Ed25519KeyPair::from_seed_unchecked(&seed).expect("key")
    }

    fn token(pair: &Ed25519KeyPair, header: &str, claims: &str) -> String {
        let signed = format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(header.as_bytes()),
            BASE64URL_NOPAD.encode(claims.as_bytes())
        );
        let sig = pair.sign(signed.as_bytes());
        format!("{signed}.{}", BASE64URL_NOPAD.encode(sig.as_ref()))
    }

    #[test]
    fn a_good_token_names_its_subject_and_each_fault_is_named() {
        let pair = pair();
        let key = <[u8; 32]>::try_from(pair.public_key().as_ref()).expect("32");
        // RFC 8032's public key for that secret.
        assert_eq!(
            data_encoding::HEXLOWER.encode(&key),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let rule = JwtRule {
            keys: vec![key],
            issuer: Some("ris".into()),
            audience: Some("pacs".into()),
        };
        let h = r#"{"alg":"EdDSA","typ":"JWT"}"#;
        let good = token(
            &pair,
            h,
            r#"{"sub":"dr-who","exp":2000,"iss":"ris","aud":["x","pacs"]}"#,
        );
        assert_eq!(
            verify(&rule, good.as_bytes(), 1999),
            Ok("dr-who".to_owned())
        );
        let cases = [
            (good.clone(), 2000, "expired"),
            (good.replacen('.', ".x", 1), 1, "signature"),
            (
                token(&pair, r#"{"alg":"none"}"#, r#"{"sub":"a","exp":9}"#),
                1,
                "EdDSA",
            ),
            (token(&pair, h, r#"{"sub":"a"}"#), 1, "no expiry"),
            (
                token(&pair, h, r#"{"sub":"a","exp":9,"iss":"x","aud":"pacs"}"#),
                1,
                "not issued by",
            ),
            (
                token(&pair, h, r#"{"sub":"a","exp":9,"iss":"ris","aud":"ris"}"#),
                1,
                "not meant for",
            ),
            (
                token(&pair, h, r#"{"exp":9,"iss":"ris","aud":"pacs"}"#),
                1,
                "no subject",
            ),
            (
                token(
                    &pair,
                    h,
                    r#"{"sub":"a","exp":9,"nbf":5,"iss":"ris","aud":"pacs"}"#,
                ),
                1,
                "not valid yet",
            ),
            ("a.b".to_owned(), 1, "three"),
            ("x".repeat(MAX_JWT_BYTES), 1, "three"),
            ("x".repeat(MAX_JWT_BYTES + 1), 1, "more than 8192"),
        ];
        for (t, now, want) in cases {
            let e = verify(&rule, t.as_bytes(), now).expect_err(want);
            assert!(e.contains(want), "{want}: {e}");
        }
        assert!(JwtRule::key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").is_ok());
        assert!(JwtRule::key("AAAA").is_err());
    }

    fn rule(pair: &Ed25519KeyPair, audience: Option<&str>) -> JwtRule {
        JwtRule {
            keys: vec![<[u8; 32]>::try_from(pair.public_key().as_ref()).expect("32")],
            issuer: None,
            audience: audience.map(str::to_owned),
        }
    }

    #[test]
    fn a_token_valid_longer_than_the_maximum_lifetime_is_refused_at_one_second_past_it() {
        let pair = pair();
        let rule = rule(&pair, None);
        let h = r#"{"alg":"EdDSA"}"#;
        let max = MAX_JWT_LIFETIME;
        let now = 1_000_000;
        let at = |claims: String| verify(&rule, token(&pair, h, &claims).as_bytes(), now);
        // exp - iat at the limit: admitted; one second more: refused, naming the limit.
        let issued = now - 10;
        assert!(
            at(format!(
                r#"{{"sub":"a","iat":{issued},"exp":{}}}"#,
                issued + max
            ))
            .is_ok()
        );
        let e = at(format!(
            r#"{{"sub":"a","iat":{issued},"exp":{}}}"#,
            issued + max + 1
        ))
        .expect_err("one second more");
        assert!(
            e.contains(&format!(
                "valid for {} s (exp - iat), more than {max} s",
                max + 1
            )),
            "{e}"
        );
        // Ten years, as the issue's example.
        let e = at(format!(
            r#"{{"sub":"a","iat":{now},"exp":{}}}"#,
            now + 10 * 365 * 86_400
        ))
        .expect_err("ten years");
        assert!(e.contains("jwt::MAX_JWT_LIFETIME"), "{e}");
        // Neither iat nor nbf: what is left of it is bounded.
        assert!(at(format!(r#"{{"sub":"a","exp":{}}}"#, now + max)).is_ok());
        let e = at(format!(r#"{{"sub":"a","exp":{}}}"#, now + max + 1)).expect_err("no iat");
        assert!(e.contains("(exp - now)"), "{e}");
        // Dated ahead to look short-lived: bounded from now.
        let e = at(format!(
            r#"{{"sub":"a","iat":{},"exp":{}}}"#,
            now + 100,
            now + max + 1
        ))
        .expect_err("iat ahead");
        assert!(e.contains("(exp - now)"), "{e}");
        // nbf before iat: the lifetime starts at the earlier.
        let e = at(format!(
            r#"{{"sub":"a","nbf":{},"iat":{now},"exp":{}}}"#,
            now - 100,
            now - 100 + max + 1
        ))
        .expect_err("nbf earlier");
        assert!(e.contains("(exp - nbf)"), "{e}");
        // NumericDate may carry a fraction (RFC 7519 2); anything else is no date.
        assert!(
            at(format!(
                r#"{{"sub":"a","iat":{now}.5,"exp":{}.25}}"#,
                now + 60
            ))
            .is_ok()
        );
        let e = at(format!(
            r#"{{"sub":"a","iat":"yesterday","exp":{}}}"#,
            now + 60
        ))
        .expect_err("iat text");
        assert!(e.contains("its iat is not a date"), "{e}");
        let e = at(format!(r#"{{"sub":"a","exp":-{}}}"#, now + 60)).expect_err("exp < 0");
        assert!(e.contains("its exp is not a date"), "{e}");
    }

    #[test]
    fn the_audience_and_the_declared_type_are_checked() {
        let pair = pair();
        let now = 1_000;
        let claims = |aud: &str| format!(r#"{{"sub":"a","exp":{}{aud}}}"#, now + 60);
        let h = r#"{"alg":"EdDSA","typ":"JWT"}"#;
        let with = rule(&pair, Some("pacs"));
        let without = rule(&pair, None);
        let check = |rule: &JwtRule, header: &str, claims: &str| {
            verify(rule, token(&pair, header, claims).as_bytes(), now)
        };
        assert!(check(&with, h, &claims(r#","aud":"pacs""#)).is_ok());
        assert!(check(&with, h, &claims(r#","aud":["ris","pacs"]"#)).is_ok());
        assert!(check(&without, h, &claims("")).is_ok());
        let cases = [
            (
                &with,
                h,
                claims(""),
                "names no audience (aud), and the route requires \"pacs\"",
            ),
            (
                &with,
                h,
                claims(r#","aud":"ris""#),
                "not meant for \"pacs\" (aud: \"ris\")",
            ),
            (
                &with,
                h,
                claims(r#","aud":5"#),
                "not a string or a list of strings",
            ),
            (
                &with,
                h,
                claims(r#","aud":["pacs",5]"#),
                "not a string or a list of strings",
            ),
            (
                &without,
                h,
                claims(r#","aud":"ris-api""#),
                "meant for \"ris-api\" (aud), and the route names no audience",
            ),
            (
                &without,
                r#"{"alg":"EdDSA","typ":"secevent+jwt"}"#,
                claims(""),
                "its type (typ) \"secevent+jwt\" is not one accepted (jwt, at+jwt)",
            ),
            (
                &without,
                r#"{"alg":"EdDSA","typ":5}"#,
                claims(""),
                "its type (typ) \"5\" is not one accepted",
            ),
        ];
        for (rule, header, claims, want) in cases {
            let e = check(rule, header, &claims).expect_err(want);
            assert!(e.contains(want), "{want}: {e}");
        }
        // The type is a media type: case and the application/ prefix do not matter.
        for typ in [
            "JWT",
            "jwt",
            "application/jwt",
            "at+jwt",
            "application/AT+JWT",
        ] {
            let header = format!(r#"{{"alg":"EdDSA","typ":"{typ}"}}"#);
            assert!(check(&without, &header, &claims("")).is_ok(), "{typ}");
        }
    }
}
