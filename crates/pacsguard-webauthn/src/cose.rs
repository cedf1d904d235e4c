//! COSE_Key (RFC 9052/9053) for the one algorithm the console asks for: ES256, ECDSA
//! with SHA-256 over P-256 (`kty` 2 EC2, `alg` -7, `crv` 1). Signatures are verified with
//! `ring` (already the TLS provider): WebAuthn's ES256 signatures are ASN.1 DER.

use ring::agreement::{self, ECDH_P256, EphemeralPrivateKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use super::WebauthnError;
use super::cbor::{self, Value};

/// COSE algorithm ES256.
pub const ES256: i128 = -7;
const KTY: i128 = 1;
const ALG: i128 = 3;
const CRV: i128 = -1;
const X: i128 = -2;
const Y: i128 = -3;
const KTY_EC2: i128 = 2;
const CRV_P256: i128 = 1;
/// Bytes of a P-256 coordinate.
const COORDINATE_BYTES: usize = 32;

/// An ES256 public key: the uncompressed SEC1 point `04 || x || y`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Es256Key {
    point: Vec<u8>,
}

impl Es256Key {
    /// The key of a decoded COSE_Key map, refused unless it is EC2/P-256/ES256 with two
    /// 32-byte coordinates of a point on the curve. The point is checked here, not only
    /// at the first signature: a registration with attestation `none` signs nothing, so
    /// a point off the curve would be stored as a person's only second factor that no
    /// sign-in can ever use (found in review).
    pub fn from_cose(key: &Value<'_>) -> Result<Es256Key, WebauthnError> {
        if !matches!(key, Value::Map(_)) {
            return Err(WebauthnError::BadKey("not a COSE_Key map"));
        }
        let int = |label| match key.get_int_key(label) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        };
        if int(KTY) != Some(KTY_EC2) {
            return Err(WebauthnError::BadKey("key type is not EC2"));
        }
        if int(ALG) != Some(ES256) {
            return Err(WebauthnError::BadKey("algorithm is not ES256 (-7)"));
        }
        if int(CRV) != Some(CRV_P256) {
            return Err(WebauthnError::BadKey("curve is not P-256"));
        }
        let coordinate = |label| match key.get_int_key(label) {
            Some(Value::Bytes(b)) if b.len() == COORDINATE_BYTES => Ok(*b),
            _ => Err(WebauthnError::BadKey("a coordinate is not 32 bytes")),
        };
        let (x, y) = (coordinate(X)?, coordinate(Y)?);
        let mut point = Vec::with_capacity(1 + 2 * COORDINATE_BYTES);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        if !on_curve(&point) {
            return Err(WebauthnError::BadKey("the point is not on the P-256 curve"));
        }
        Ok(Es256Key { point })
    }

    /// The key of a stored COSE_Key (the bytes registration took from the authenticator).
    pub fn from_cose_bytes(bytes: &[u8]) -> Result<Es256Key, WebauthnError> {
        Es256Key::from_cose(&cbor::decode(bytes)?)
    }

    /// Whether `signature` (DER) is this key's ES256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebauthnError> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .map_err(|_| WebauthnError::BadSignature)
    }
}

/// Whether `point` (uncompressed SEC1) is a valid P-256 public key: coordinates below
/// the field prime and on the curve (not the point at infinity). `ring` offers no
/// check on its own; its ECDH validates the peer's public key (SP 800-56A's full
/// public-key validation) before any arithmetic, so an agreement with a throwaway key
/// succeeds exactly for a valid point.
fn on_curve(point: &[u8]) -> bool {
    let rng = SystemRandom::new();
    let Ok(mine) = EphemeralPrivateKey::generate(&ECDH_P256, &rng) else {
        return false;
    };
    agreement::agree_ephemeral(
        mine,
        &agreement::UnparsedPublicKey::new(&ECDH_P256, point),
        |_| (),
    )
    .is_ok()
}
