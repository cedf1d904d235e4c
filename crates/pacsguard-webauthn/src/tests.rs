//! The relying party against vectors it did not make: the W3C's published test vectors
//! (Web Authentication Level 3, §16.2 "ES256 Credential with No Attestation", §16.3
//! "ES256 Credential with Self Attestation", §16.7 "Packed Attestation", RP ID
//! `example.org`, origin `https://example.org`, transcribed as the specification prints
//! them, in hex), and a key and signatures made here by the `openssl` command.

use super::*;

fn hex(text: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .expect("hex")
}

fn example_org() -> RelyingParty {
    RelyingParty::from_origin("https://example.org").expect("origin")
}

// §16.2: none attestation (flags UP, BE, BS, AT: no UV).
const NONE_REG_CHALLENGE: &str = "00c30fb78531c464d2b6771dab8d7b603c01162f2fa486bea70f283ae556e130";
const NONE_REG_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a22414d4d507434557878475453746e63647134313759447742466938767049612d7077386f4f755657345441222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a20426b5165446a646354427258426941774a544c453551227d";
const NONE_REG_ATTESTATION: &str = "a363666d74646e6f6e656761747453746d74a068617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b559000000008446ccb9ab1db374750b2367ff6f3a1f0020f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220";
const NONE_CREDENTIAL_ID: &str = "f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4";
const NONE_AAGUID: &str = "8446ccb9ab1db374750b2367ff6f3a1f";
const NONE_PUBLIC_KEY: &str = "a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220";
const NONE_GET_CHALLENGE: &str = "39c0e7521417ba54d43e8dc95174f423dee9bf3cd804ff6d65c857c9abf4d408";
const NONE_GET_AUTH_DATA: &str =
    "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b51900000000";
const NONE_GET_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a224f63446e55685158756c5455506f334a5558543049393770767a7a59425039745a63685879617630314167222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73657d";
const NONE_GET_SIGNATURE: &str = "3046022100f50a4e2e4409249c4a853ba361282f09841df4dd4547a13a87780218deffcd380221008480ac0f0b93538174f575bf11a1dd5d78c6e486013f937295ea13653e331e87";

// §16.3: packed self attestation (registration flags UP, UV, BE, BS, AT).
const SELF_REG_CHALLENGE: &str = "7869c2b772d4b58eba9378cf8f29e26cf935aa77df0da89fa99c0bdc0a76f7e5";
const SELF_REG_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a2265476e4374334c55745936366b336a506a796e6962506b31716e666644616966715a774c33417032392d55222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a205539685458764b453255526b4d6e625f307859485667227d";
const SELF_REG_ATTESTATION: &str = "a363666d74667061636b65646761747453746d74a263616c672663736967584630440220067a20754ab925005dbf378097c92120031581c73228d1fb4f5b881bcd7da98302207fc7b147558c7c0eba3af18bd9d121fa3d3a26d17fe3f220272178f473b6006d68617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b55d00000000df850e09db6afbdfab51697791506cfc0020455ef34e2043a87db3d4afeb39bbcb6cc32df9347c789a865ecdca129cbef58ca5010203262001215820eb151c8176b225cc651559fecf07af450fd85802046656b34c18f6cf193843c5225820927b8aa427a2be1b8834d233a2d34f61f13bfd44119c325d5896e183fee484f2";
const SELF_CREDENTIAL_ID: &str = "455ef34e2043a87db3d4afeb39bbcb6cc32df9347c789a865ecdca129cbef58c";
const SELF_GET_CHALLENGE: &str = "4478a10b1352348dd160c1353b0d469b5db19eb91c27f7dfa6fed39fe26af20b";
const SELF_GET_AUTH_DATA: &str =
    "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b50900000000";
const SELF_GET_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a225248696843784e534e493352594d45314f7731476d3132786e726b634a5f6666707637546e2d4a71386773222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a206754623533727a36456853576f6d58477a696d433151227d";
const SELF_GET_SIGNATURE: &str = "304402203310b9431903c401f1be2bdc8d23a4007682dbbddcf846994947b7f465daf84002204e94dd00047b316061b3b99772b7efd95994a83ef584b3b6b825ea3550251b66";

// §16.7: packed attestation with a certificate chain (x5c), refused by policy.
const FULL_REG_CHALLENGE: &str = "c1184a5fddf8045e13dc47f54b61f5a656b666b59018f16d870e9256e9952012";
const FULL_REG_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a227752684b58393334424634543345663153324831706c61325a725751475046746877365356756d56494249222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a20396138624e596a4b436757724258552d66436c316167227d";
const FULL_REG_ATTESTATION: &str = "a363666d74667061636b65646761747453746d74a363616c6726637369675847304502203f19ec4b229f46ab8c45eff29b904ff10c0390dc40bf1216f04a78f4ceba3425022100fe7041a32759aff05a0f9f26c70a999c7a284451ba89234a1d3483c25e21925b637835638159022530820221308201c8a00302010202110088c220f83c8ef1feafe94deae45faad0300a06082a8648ce3d0403023062311e301c06035504030c15576562417574686e207465737420766563746f7273310c300a060355040a0c0357334331253023060355040b0c1c41757468656e74696361746f72204174746573746174696f6e204341310b30090603550406130241413020170d3234303130313030303030305a180f33303234303130313030303030305a305f311e301c06035504030c15576562417574686e207465737420766563746f7273310c300a060355040a0c0357334331223020060355040b0c1941757468656e74696361746f72204174746573746174696f6e310b30090603550406130241413059301306072a8648ce3d020106082a8648ce3d03010703420004a91ba4389409dd38a428141940ca8feb1ac0d7b4350558104a3777a49322f3798440f378b3398ab2d3bb7bf91322c92eb23556f59ad0a836fec4c7663b0e4dc3a360305e300c0603551d130101ff04023000300e0603551d0f0101ff040403020780301d0603551d0e04160414a589ba72d060842ab11f74fb246bdedab16f9b9b301f0603551d2304183016801445aff715b0dd786741fee996ebc16547a3931b1e300a06082a8648ce3d040302034700304402201726b9d85ecd8a5ed51163722ca3a20886fd9b242a0aa0453d442116075defd502207ef471e530ac87961a88a7f0d0c17b091ffc6b9238d30f79f635b417be5910e768617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b54d00000000876ca4f52071c3e9b25509ef2cdf7ed60020c9a6f5b3462d02873fea0c56862234f99f081728084e511bb7760201a89054a5a50102032620012158201cf27f25da591208a4239c2e324f104f585525479a29edeedd830f48e77aeae522582059e4b7da6c0106e206ce390c93ab98a15a5ec3887e57f0cc2bece803b920c423";

#[test]
fn w3c_packed_self_attestation_registers() {
    let registered = verify_registration(
        &example_org(),
        &hex(SELF_REG_CHALLENGE),
        &hex(SELF_REG_CLIENT_DATA),
        &hex(SELF_REG_ATTESTATION),
    )
    .expect("§16.3 registers");
    assert_eq!(registered.credential_id, hex(SELF_CREDENTIAL_ID));
    assert_eq!(registered.aaguid, hex("df850e09db6afbdfab51697791506cfc"));
    assert_eq!(registered.format, "packed");
    assert_eq!(registered.sign_count, 0);
    assert!(registered.backup_eligible);
}

#[test]
fn w3c_packed_self_attestation_with_a_changed_byte_is_refused() {
    let mut attestation = hex(SELF_REG_ATTESTATION);
    // The last byte of the credential's y coordinate: the point leaves the curve.
    let last = attestation.len() - 1;
    attestation[last] ^= 1;
    let refused = verify_registration(
        &example_org(),
        &hex(SELF_REG_CHALLENGE),
        &hex(SELF_REG_CLIENT_DATA),
        &attestation,
    );
    assert_eq!(
        refused,
        Err(WebauthnError::BadKey("the point is not on the P-256 curve"))
    );
    // A byte of the self signature (its last, inside s): it no longer holds.
    let mut attestation = hex(SELF_REG_ATTESTATION);
    let sig_end = attestation
        .windows(8)
        .position(|w| w == b"authData")
        .expect("authData")
        - 2;
    attestation[sig_end] ^= 1;
    let refused = verify_registration(
        &example_org(),
        &hex(SELF_REG_CHALLENGE),
        &hex(SELF_REG_CLIENT_DATA),
        &attestation,
    );
    assert_eq!(refused, Err(WebauthnError::BadSignature));
}

/// Found in review: with attestation `none` nothing is signed at registration, and a
/// COSE key whose point is not on P-256 was stored as a person's second factor (their
/// only one at setup) that could never verify a sign-in. Every invalid point is
/// refused at decoding: off the curve, a coordinate at or above the field prime, the
/// origin.
#[test]
fn a_key_whose_point_is_not_on_the_curve_is_refused() {
    let off = WebauthnError::BadKey("the point is not on the P-256 curve");
    let key = hex(NONE_PUBLIC_KEY);
    assert!(cose::Es256Key::from_cose_bytes(&key).is_ok());
    // x at bytes 10..42, y at 45..77 (after `21 58 20` and `22 58 20`).
    assert_eq!(key[7..10], [0x21, 0x58, 0x20]);
    assert_eq!(key[42..45], [0x22, 0x58, 0x20]);
    let mut flipped = key.clone();
    flipped[76] ^= 1;
    assert_eq!(cose::Es256Key::from_cose_bytes(&flipped), Err(off.clone()));
    let mut zero = key.clone();
    zero[10..42].fill(0);
    zero[45..77].fill(0);
    assert_eq!(cose::Es256Key::from_cose_bytes(&zero), Err(off.clone()));
    // x = p (the field prime), y unchanged.
    let mut big = key.clone();
    big[10..42].copy_from_slice(&hex(
        "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    ));
    assert_eq!(cose::Es256Key::from_cose_bytes(&big), Err(off.clone()));
    // In a whole registration (the §16.2 one, attestation none): refused at the key,
    // before anything else is judged.
    let mut attestation = hex(NONE_REG_ATTESTATION);
    let last = attestation.len() - 1;
    attestation[last] ^= 1;
    assert_eq!(
        verify_registration(
            &example_org(),
            &hex(NONE_REG_CHALLENGE),
            &hex(NONE_REG_CLIENT_DATA),
            &attestation,
        ),
        Err(off)
    );
}

/// §16.2's authenticator did not verify its user: the console refuses what the
/// specification's example accepts, but only at the UV flag (the key and the
/// signature read correctly: the assertion's signature verifies first).
#[test]
fn w3c_none_attestation_verifies_up_to_the_missing_user_verification() {
    let rp = example_org();
    let refused = verify_registration(
        &rp,
        &hex(NONE_REG_CHALLENGE),
        &hex(NONE_REG_CLIENT_DATA),
        &hex(NONE_REG_ATTESTATION),
    );
    assert_eq!(refused, Err(WebauthnError::UserNotVerified));
    let attestation = hex(NONE_REG_ATTESTATION);
    let object = cbor::decode(&attestation).expect("cbor");
    let Some(Value::Bytes(auth)) = object.get_text_key("authData") else {
        panic!("authData");
    };
    let parsed = AuthenticatorData::parse(auth).expect("authData parses");
    let credential = parsed.attested.expect("attested");
    assert_eq!(credential.credential_id, hex(NONE_CREDENTIAL_ID).as_slice());
    assert_eq!(credential.aaguid, hex(NONE_AAGUID).as_slice());
    assert_eq!(credential.public_key, hex(NONE_PUBLIC_KEY).as_slice());

    let asserted = verify_assertion(
        &rp,
        &hex(NONE_GET_CHALLENGE),
        &hex(NONE_PUBLIC_KEY),
        &hex(NONE_GET_CLIENT_DATA),
        &hex(NONE_GET_AUTH_DATA),
        &hex(NONE_GET_SIGNATURE),
    );
    assert_eq!(asserted, Err(WebauthnError::UserNotVerified));
    let mut signature = hex(NONE_GET_SIGNATURE);
    signature[10] ^= 1;
    let forged = verify_assertion(
        &rp,
        &hex(NONE_GET_CHALLENGE),
        &hex(NONE_PUBLIC_KEY),
        &hex(NONE_GET_CLIENT_DATA),
        &hex(NONE_GET_AUTH_DATA),
        &signature,
    );
    assert_eq!(forged, Err(WebauthnError::BadSignature));
}

#[test]
fn w3c_self_attested_credential_assertion_signature_verifies_and_lacks_uv() {
    let registered = verify_registration(
        &example_org(),
        &hex(SELF_REG_CHALLENGE),
        &hex(SELF_REG_CLIENT_DATA),
        &hex(SELF_REG_ATTESTATION),
    )
    .expect("registers");
    let asserted = verify_assertion(
        &example_org(),
        &hex(SELF_GET_CHALLENGE),
        &registered.public_key,
        &hex(SELF_GET_CLIENT_DATA),
        &hex(SELF_GET_AUTH_DATA),
        &hex(SELF_GET_SIGNATURE),
    );
    assert_eq!(asserted, Err(WebauthnError::UserNotVerified));
}

#[test]
fn w3c_packed_attestation_with_a_certificate_is_refused_by_name() {
    let refused = verify_registration(
        &example_org(),
        &hex(FULL_REG_CHALLENGE),
        &hex(FULL_REG_CLIENT_DATA),
        &hex(FULL_REG_ATTESTATION),
    );
    assert!(
        matches!(refused, Err(WebauthnError::UnsupportedAttestation(ref f)) if f.contains("x5c")),
        "{refused:?}"
    );
}

#[test]
fn the_ceremony_is_bound_to_challenge_origin_type_and_rp_id() {
    let rp = example_org();
    let (challenge, client, attestation) = (
        hex(SELF_REG_CHALLENGE),
        hex(SELF_REG_CLIENT_DATA),
        hex(SELF_REG_ATTESTATION),
    );
    assert_eq!(
        verify_registration(&rp, &hex(NONE_REG_CHALLENGE), &client, &attestation),
        Err(WebauthnError::WrongChallenge)
    );
    let elsewhere = RelyingParty {
        id: "example.org".into(),
        origin: "https://login.example.org".into(),
    };
    assert_eq!(
        verify_registration(&elsewhere, &challenge, &client, &attestation),
        Err(WebauthnError::WrongOrigin("https://example.org".into()))
    );
    let other_rp = RelyingParty {
        id: "example.com".into(),
        origin: "https://example.org".into(),
    };
    assert_eq!(
        verify_registration(&other_rp, &challenge, &client, &attestation),
        Err(WebauthnError::WrongRpId)
    );
    // A sign-in's clientDataJSON is not a registration's.
    assert_eq!(
        check_client_data(
            &rp,
            Ceremony::Create,
            &hex(SELF_GET_CHALLENGE),
            &hex(SELF_GET_CLIENT_DATA)
        ),
        Err(WebauthnError::WrongType("webauthn.create"))
    );
    assert_eq!(challenge_of(&client), Ok(challenge));
    let framed = br#"{"type":"webauthn.get","challenge":"AAAA","origin":"https://example.org","crossOrigin":true}"#;
    assert_eq!(
        check_client_data(&rp, Ceremony::Get, &[0, 0, 0], framed),
        Err(WebauthnError::CrossOrigin)
    );
    let twice = br#"{"type":"webauthn.get","type":"webauthn.get","challenge":"AAAA","origin":"https://example.org"}"#;
    assert!(matches!(
        check_client_data(&rp, Ceremony::Get, &[0, 0, 0], twice),
        Err(WebauthnError::BadClientData(_))
    ));
}

#[test]
fn origins_are_domains_with_https() {
    let rp = RelyingParty::from_origin("https://PACS01.example.org:8443/").expect("ok");
    assert_eq!(rp.id, "pacs01.example.org");
    assert_eq!(rp.origin, "https://pacs01.example.org:8443");
    assert_eq!(
        RelyingParty::from_origin("https://localhost:443")
            .expect("ok")
            .origin,
        "https://localhost"
    );
    for bad in [
        "http://example.org",
        "https://127.0.0.1:8443",
        "https://[::1]:8443",
        "https://exa mple.org",
        "https://example.org:0",
        "https://example.org:99999",
        "https://example.org/path",
        "https://",
    ] {
        assert!(RelyingParty::from_origin(bad).is_err(), "{bad}");
    }
}

#[test]
fn authenticator_data_lengths_are_checked() {
    let good = hex(SELF_GET_AUTH_DATA);
    assert!(AuthenticatorData::parse(&good).is_ok());
    assert!(AuthenticatorData::parse(&good[..36]).is_err());
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        AuthenticatorData::parse(&trailing),
        Err(WebauthnError::BadAuthenticatorData(
            "bytes follow the last field"
        ))
    );
    // AT set with a credential ID length past the end.
    let mut attested = good[..37].to_vec();
    attested[32] |= FLAG_AT;
    attested.extend_from_slice(&[0u8; 16]);
    attested.extend_from_slice(&[0x03, 0xff]);
    assert!(AuthenticatorData::parse(&attested).is_err());
    let at_limit = |len: usize| {
        let mut bytes = good[..37].to_vec();
        bytes[32] |= FLAG_AT;
        bytes.extend_from_slice(&[0u8; 16]);
        bytes.extend_from_slice(&u16::try_from(len).expect("small").to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, len));
        bytes.extend_from_slice(&hex(NONE_PUBLIC_KEY));
        bytes
    };
    let limit = at_limit(MAX_CREDENTIAL_ID_BYTES);
    assert_eq!(
        AuthenticatorData::parse(&limit)
            .expect("1023-byte credential ID")
            .attested
            .expect("attested")
            .credential_id
            .len(),
        MAX_CREDENTIAL_ID_BYTES
    );
    assert!(AuthenticatorData::parse(&at_limit(MAX_CREDENTIAL_ID_BYTES + 1)).is_err());
}

#[test]
fn sizes_are_refused_past_their_limits() {
    let rp = example_org();
    let big = vec![b' '; MAX_CLIENT_DATA_BYTES + 1];
    assert_eq!(
        check_client_data(&rp, Ceremony::Get, &[], &big),
        Err(WebauthnError::TooLarge("clientDataJSON"))
    );
    let client = hex(SELF_REG_CLIENT_DATA);
    assert_eq!(
        verify_registration(
            &rp,
            &hex(SELF_REG_CHALLENGE),
            &client,
            &vec![0u8; MAX_ATTESTATION_OBJECT_BYTES + 1]
        ),
        Err(WebauthnError::TooLarge("the attestation object"))
    );
}

/// Unsupported keys are refused by what they are.
#[test]
fn keys_other_than_es256_are_refused() {
    // The §16.2 key with alg -8 (EdDSA) in place of -7.
    let mut key = hex(NONE_PUBLIC_KEY);
    assert_eq!(key[3..5], [0x03, 0x26]);
    key[4] = 0x27;
    assert_eq!(
        cose::Es256Key::from_cose_bytes(&key),
        Err(WebauthnError::BadKey("algorithm is not ES256 (-7)"))
    );
}

// ---- a key and signatures made by the openssl command -------------------------------

/// A tiny CBOR writer for the test's own structures (definite lengths only).
fn head(major: u8, n: usize, out: &mut Vec<u8>) {
    let n = n as u64;
    if n < 24 {
        out.push((major << 5) | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[(major << 5) | 24, n as u8]);
    } else {
        out.push((major << 5) | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len(), out);
    out.extend_from_slice(b);
}

struct OpensslKey {
    dir: tempfile::TempDir,
    point: Vec<u8>,
}

impl OpensslKey {
    fn new() -> OpensslKey {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&key)
            .status()
            .expect("openssl runs (scripts/setup-test-deps.sh installs it)");
        assert!(made.success());
        let spki = std::process::Command::new("openssl")
            .args(["ec", "-pubout", "-outform", "DER", "-in"])
            .arg(&key)
            .output()
            .expect("openssl ec");
        assert!(spki.status.success());
        // The SubjectPublicKeyInfo of a P-256 key ends with the uncompressed point.
        let point = spki.stdout[spki.stdout.len() - 65..].to_vec();
        assert_eq!(point[0], 4);
        OpensslKey { dir, point }
    }

    fn cose(&self) -> Vec<u8> {
        let mut out = Vec::new();
        head(5, 5, &mut out);
        out.extend_from_slice(&[0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]);
        bytes(&self.point[1..33], &mut out);
        out.push(0x22);
        bytes(&self.point[33..], &mut out);
        out
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let path = self.dir.path().join("message");
        std::fs::write(&path, message).expect("message");
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(self.dir.path().join("key.pem"))
            .arg(&path)
            .output()
            .expect("openssl dgst");
        assert!(out.status.success());
        out.stdout
    }
}

fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}","crossOrigin":false}}"#,
        data_encoding::BASE64URL_NOPAD.encode(challenge)
    )
    .into_bytes()
}

fn auth_data(rp_id: &str, flags: u8, count: u32, credential: Option<(&[u8], &[u8])>) -> Vec<u8> {
    let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
    out.push(flags);
    out.extend_from_slice(&count.to_be_bytes());
    if let Some((id, key)) = credential {
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&u16::try_from(id.len()).expect("short").to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(key);
    }
    out
}

#[test]
fn an_openssl_key_registers_with_packed_self_attestation_and_signs_in() {
    let rp = RelyingParty::from_origin("https://pacs.example:8443").expect("rp");
    let key = OpensslKey::new();
    let challenge = [9u8; CHALLENGE_BYTES];
    let client = client_data("webauthn.create", &challenge, &rp.origin);
    let id = [0x42u8; 16];
    let auth = auth_data(
        &rp.id,
        FLAG_UP | FLAG_UV | FLAG_AT,
        1,
        Some((&id, &key.cose())),
    );
    let mut message = auth.clone();
    message.extend_from_slice(&Sha256::digest(&client));
    let signature = key.sign(&message);
    let mut object = Vec::new();
    head(5, 3, &mut object);
    text("fmt", &mut object);
    text("packed", &mut object);
    text("attStmt", &mut object);
    head(5, 2, &mut object);
    text("alg", &mut object);
    object.push(0x26);
    text("sig", &mut object);
    bytes(&signature, &mut object);
    text("authData", &mut object);
    bytes(&auth, &mut object);
    let registered = verify_registration(&rp, &challenge, &client, &object).expect("registers");
    assert_eq!(registered.credential_id, id);
    assert_eq!(registered.public_key, key.cose());
    assert_eq!(registered.sign_count, 1);

    let challenge = [7u8; CHALLENGE_BYTES];
    let client = client_data("webauthn.get", &challenge, &rp.origin);
    let auth = auth_data(&rp.id, FLAG_UP | FLAG_UV, 2, None);
    let mut message = auth.clone();
    message.extend_from_slice(&Sha256::digest(&client));
    let signature = key.sign(&message);
    assert_eq!(
        verify_assertion(
            &rp,
            &challenge,
            &registered.public_key,
            &client,
            &auth,
            &signature
        ),
        Ok(2)
    );
    // The same signature over another challenge's client data does not verify.
    let other = client_data("webauthn.get", &[8u8; CHALLENGE_BYTES], &rp.origin);
    assert_eq!(
        verify_assertion(
            &rp,
            &[8u8; CHALLENGE_BYTES],
            &registered.public_key,
            &other,
            &auth,
            &signature
        ),
        Err(WebauthnError::BadSignature)
    );
    // Present but not verified: refused.
    let auth = auth_data(&rp.id, FLAG_UP, 3, None);
    let mut message = auth.clone();
    message.extend_from_slice(&Sha256::digest(&client));
    let signature = key.sign(&message);
    assert_eq!(
        verify_assertion(
            &rp,
            &challenge,
            &registered.public_key,
            &client,
            &auth,
            &signature
        ),
        Err(WebauthnError::UserNotVerified)
    );
    // Verified but not present: refused.
    let auth = auth_data(&rp.id, FLAG_UV, 3, None);
    let mut message = auth.clone();
    message.extend_from_slice(&Sha256::digest(&client));
    let signature = key.sign(&message);
    assert_eq!(
        verify_assertion(
            &rp,
            &challenge,
            &registered.public_key,
            &client,
            &auth,
            &signature
        ),
        Err(WebauthnError::UserNotPresent)
    );
}

#[test]
fn every_truncation_and_bit_flip_of_a_real_ceremony_is_an_answer_never_a_panic() {
    let rp = example_org();
    let (challenge, client, attestation) = (
        hex(SELF_REG_CHALLENGE),
        hex(SELF_REG_CLIENT_DATA),
        hex(SELF_REG_ATTESTATION),
    );
    for len in 0..attestation.len() {
        assert!(verify_registration(&rp, &challenge, &client, &attestation[..len]).is_err());
    }
    for i in 0..attestation.len() {
        for bit in 0..8 {
            let mut changed = attestation.clone();
            changed[i] ^= 1 << bit;
            let _ = verify_registration(&rp, &challenge, &client, &changed);
        }
    }
    let (get_challenge, get_client, auth, signature) = (
        hex(SELF_GET_CHALLENGE),
        hex(SELF_GET_CLIENT_DATA),
        hex(SELF_GET_AUTH_DATA),
        hex(SELF_GET_SIGNATURE),
    );
    let key = verify_registration(&rp, &challenge, &client, &attestation)
        .expect("registers")
        .public_key;
    for len in 0..auth.len() {
        assert!(
            verify_assertion(
                &rp,
                &get_challenge,
                &key,
                &get_client,
                &auth[..len],
                &signature
            )
            .is_err()
        );
    }
    for i in 0..get_client.len() {
        let mut changed = get_client.clone();
        changed[i] ^= 0x20;
        assert!(
            verify_assertion(&rp, &get_challenge, &key, &changed, &auth, &signature).is_err(),
            "a changed clientDataJSON byte {i}"
        );
    }
}

#[test]
fn authenticator_data_is_read_up_to_its_limit() {
    let rp = example_org();
    let client = hex(SELF_GET_CLIENT_DATA);
    let challenge = hex(SELF_GET_CHALLENGE);
    let key = hex(NONE_PUBLIC_KEY);
    // At the limit: read (and refused for what it holds, not for its size).
    let mut at_limit = hex(SELF_GET_AUTH_DATA);
    at_limit[32] |= FLAG_ED;
    at_limit.push(0xa1);
    at_limit.push(0x61);
    at_limit.push(b'x');
    let pad = MAX_AUTHENTICATOR_DATA_BYTES - at_limit.len() - 3;
    at_limit.push(0x59);
    at_limit.extend_from_slice(&u16::try_from(pad).expect("small").to_be_bytes());
    at_limit.extend(std::iter::repeat_n(0u8, pad));
    assert_eq!(at_limit.len(), MAX_AUTHENTICATOR_DATA_BYTES);
    assert!(
        AuthenticatorData::parse(&at_limit).is_ok(),
        "extensions read"
    );
    assert_eq!(
        verify_assertion(&rp, &challenge, &key, &client, &at_limit, &[0u8; 8]),
        Err(WebauthnError::BadSignature)
    );
    let mut over = at_limit.clone();
    over.push(0);
    assert_eq!(
        verify_assertion(&rp, &challenge, &key, &client, &over, &[0u8; 8]),
        Err(WebauthnError::TooLarge("the authenticator data"))
    );
}

/// Found in review: §7.1 and §7.2 require that an authenticator which says its
/// credential is backed up (BS) also says it may be (BE); the flags were not compared.
#[test]
fn backed_up_without_backup_eligible_is_refused() {
    // Flag BS (backed up), bit 4.
    const BS: u8 = 0x10;
    let rp = RelyingParty::from_origin("https://pacs.example").expect("rp");
    let key = OpensslKey::new();
    let challenge = [5u8; CHALLENGE_BYTES];
    let client = client_data("webauthn.get", &challenge, &rp.origin);
    let answer = |flags: u8| {
        let auth = auth_data(&rp.id, flags, 4, None);
        let mut message = auth.clone();
        message.extend_from_slice(&Sha256::digest(&client));
        let signature = key.sign(&message);
        verify_assertion(&rp, &challenge, &key.cose(), &client, &auth, &signature)
    };
    assert_eq!(answer(FLAG_UP | FLAG_UV | FLAG_BE | BS), Ok(4));
    assert_eq!(answer(FLAG_UP | FLAG_UV | FLAG_BE), Ok(4));
    assert_eq!(
        answer(FLAG_UP | FLAG_UV | BS),
        Err(WebauthnError::BadAuthenticatorData(
            "flag BS (backed up) without flag BE (backup eligible)"
        ))
    );
}
