//! The console's WebAuthn relying party on arbitrary bytes: the CBOR decoder, the
//! authenticator data reader, and both ceremonies (the input split in two at a point its
//! first byte chooses: clientDataJSON, then the attestation object or the authenticator
//! data). Nothing may panic, allocate without bound or loop; every answer is an error or
//! a verified ceremony.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_webauthn::{AuthenticatorData, RelyingParty, cbor, verify_assertion, verify_registration};

fuzz_target!(|data: &[u8]| {
    let _ = cbor::decode(data);
    let _ = cbor::decode_prefix(data);
    let _ = AuthenticatorData::parse(data);
    let _ = pacsguard_webauthn::challenge_of(data);
    let rp = RelyingParty {
        id: "example.org".into(),
        origin: "https://example.org".into(),
    };
    let split = data.first().map_or(0, |b| usize::from(*b) * 4).min(data.len());
    let (client, rest) = data.split_at(split);
    let _ = verify_registration(&rp, &[0u8; 32], client, rest);
    let _ = verify_assertion(&rp, &[0u8; 32], rest, client, rest, rest);
});
