//! Published test vectors: RFC 6962 Merkle proofs (transparency-dev/merkle, all cases with
//! their expected outcome) and the C2SP signed-note known answer (golang/mod sumdb/note).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pacsguard_trail::merkle::{self, Hash};
use pacsguard_trail::note::{self, Signer, Verifier};
use serde_json::Value;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc6962-merkle/testdata")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

fn b64(v: &Value) -> Vec<u8> {
    v.as_str()
        .map(|s| B64.decode(s).expect("base64 in vector"))
        .unwrap_or_default()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default()
}

fn run(kind: &str, check: impl Fn(&Value) -> Result<(), merkle::ProofError>) -> usize {
    let mut files = Vec::new();
    json_files(&vectors().join(kind), &mut files);
    assert!(
        !files.is_empty(),
        "no vectors found under {}",
        vectors().display()
    );
    for file in &files {
        let case: Value =
            serde_json::from_slice(&std::fs::read(file).expect("read")).expect("json");
        let want_err = case["wantErr"].as_bool().expect("wantErr");
        let got = check(&case);
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", file.display());
    }
    files.len()
}

#[test]
fn every_rfc6962_vector_has_the_expected_outcome() {
    let inclusion = run("inclusion", |c| {
        merkle::verify_inclusion(
            c["leafIdx"].as_u64().expect("leafIdx"),
            c["treeSize"].as_u64().expect("treeSize"),
            &b64(&c["leafHash"]),
            &proof(&c["proof"]),
            &b64(&c["root"]),
        )
    });
    let consistency = run("consistency", |c| {
        merkle::verify_consistency(
            c["size1"].as_u64().expect("size1"),
            c["size2"].as_u64().expect("size2"),
            &proof(&c["proof"]),
            &b64(&c["root1"]),
            &b64(&c["root2"]),
        )
    });
    assert_eq!(
        inclusion + consistency,
        196,
        "the published set has 196 cases"
    );
}

/// The RFC 6962 reference tree (shared/vectors/README.md) and its roots by size.
#[test]
fn reference_tree_roots_and_generated_proofs_match_the_published_ones() {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let leaves: Vec<Hash> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
    let hex = |h: &Hash| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut frontier = merkle::Frontier::new();
    assert_eq!(hex(&frontier.root()), roots[0]);
    for (n, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf);
        assert_eq!(hex(&merkle::root(&leaves[..=n])), roots[n + 1]);
        assert_eq!(hex(&frontier.root()), roots[n + 1]);
    }
    // The happy-path vectors were generated from this tree: ours must be byte-identical.
    for (kind, key) in [("inclusion", "leafIdx"), ("consistency", "size1")] {
        for dir in ["1", "2", "3", "4"] {
            let path = vectors().join(kind).join(dir).join("happy-path.json");
            let case: Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
            let size = case[if kind == "inclusion" {
                "treeSize"
            } else {
                "size2"
            }]
            .as_u64()
            .expect("size") as usize;
            let arg = case[key].as_u64().expect("arg");
            let ours = if kind == "inclusion" {
                merkle::inclusion_proof(&leaves[..size], arg)
            } else {
                merkle::consistency_proof(&leaves[..size], arg)
            }
            .expect("proof");
            let theirs: Vec<Vec<u8>> = proof(&case["proof"]);
            assert_eq!(
                ours.iter().map(|h| h.to_vec()).collect::<Vec<_>>(),
                theirs,
                "{}",
                path.display()
            );
        }
    }
}

const SIGNER: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SIGNATURE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn signed_note_known_answer() {
    let signer = Signer::parse(SIGNER).expect("signer key");
    let verifier = Verifier::parse(VERIFIER).expect("verifier key");
    assert_eq!(signer.verifier(), &verifier);
    assert_eq!(verifier.encode(), VERIFIER);
    let signed = signer.sign(TEXT).expect("sign");
    assert_eq!(signed, format!("{TEXT}\n{SIGNATURE}"));
    assert_eq!(
        note::open(signed.as_bytes(), &verifier).expect("opens"),
        TEXT
    );
}

#[test]
fn altered_notes_and_wrong_keys_are_refused() {
    let verifier = Verifier::parse(VERIFIER).expect("verifier key");
    let signed = format!("{TEXT}\n{SIGNATURE}");
    for i in 0..signed.len() {
        let mut bytes = signed.clone().into_bytes();
        bytes[i] ^= 0x01;
        assert!(
            note::open(&bytes, &verifier).is_err(),
            "flipped byte {i} accepted"
        );
    }
    let other = Signer::new(
        "PeterNeumann",
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    )
    .expect("signer");
    assert!(note::open(signed.as_bytes(), other.verifier()).is_err());
    assert!(
        Verifier::parse("PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
    assert!(
        Signer::parse(SIGNER)
            .expect("signer")
            .sign("no newline")
            .is_err()
    );
    let many = format!("{TEXT}\n{}", SIGNATURE.repeat(note::MAX_SIGNATURES + 1));
    assert_eq!(
        note::open(many.as_bytes(), &verifier),
        Err(note::NoteError::TooManySignatures)
    );
}
