//! JSON Web Tokens in User Identity Negotiation (type 5, PS3.7 D.3.3.7): a compact JWS
//! (RFC 7515) signed with Ed25519 (`"alg": "EdDSA"`, RFC 8037), checked against the
//! public keys a route names. The token's `exp` must lie ahead and its `nbf` (if any)
//! behind; `iss` and `aud` must match when the route names them; `sub` is the user on
//! the record. Only EdDSA: no `none`, no HMAC (a shared secret in the configuration), no
//! RSA or ECDSA (not needed by anyone here yet; the key type is explicit in the file).

use data_encoding::{BASE64, BASE64URL_NOPAD};
use ring::signature::{ED25519, UnparsedPublicKey};
use serde_json::Value;

use crate::identity::MAX_USERNAME_BYTES;

/// Most bytes of a token read: tokens are a few hundred bytes; the signature check and
/// the JSON parse read every byte, and anyone may send one.
pub const MAX_JWT_BYTES: usize = 8192;

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
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or("JSON Web Token: no expiry (exp)")?;
    if now >= exp {
        return Err(format!("JSON Web Token: expired at {exp} (now {now})"));
    }
    if let Some(nbf) = claims.get("nbf")
        && nbf.as_u64().is_none_or(|nbf| now < nbf)
    {
        return Err("JSON Web Token: not valid yet (nbf)".into());
    }
    if let Some(issuer) = &rule.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
    {
        return Err(format!("JSON Web Token: not issued by {issuer:?}"));
    }
    if let Some(audience) = &rule.audience {
        let meant = match claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !meant {
            return Err(format!("JSON Web Token: not meant for {audience:?} (aud)"));
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
}
