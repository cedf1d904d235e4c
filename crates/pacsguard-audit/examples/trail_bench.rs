//! Measures the audit trail: append throughput with group commit, offline verification of
//! the whole log, and inclusion-proof sizes. Run by `bench/audit.sh`:
//!
//!     cargo run --release -p pacsguard-audit --example trail_bench -- RECORDS BATCH DIR
//!
//! Prints one `key=value` line per measurement.

use std::path::PathBuf;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use pacsguard_audit::{AuditSink, Durability, TrailFiles, TrailOptions, verify};
use pacsguard_events::{Action, Actor, Event, EventSink, Finding, FindingKind, Outcome, Severity};
use pacsguard_trail::merkle;
use pacsguard_trail::note::Signer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let batch: u64 = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let dir = PathBuf::from(args.next().ok_or("usage: trail_bench RECORDS BATCH DIR")?);
    std::fs::create_dir_all(&dir)?;
    let files = TrailFiles {
        log: dir.join("audit.log"),
        checkpoints: dir.join("checkpoints.jsonl"),
        witness: None,
    };
    for path in [&files.log, &files.checkpoints] {
        let _ = std::fs::remove_file(path);
    }
    let signer = Signer::new("pacsguard-bench", SigningKey::from_bytes(&[42; 32]))?;
    let verifier = signer.verifier().clone();
    let (mut sink, _) = AuditSink::open(
        files.clone(),
        "bench-host".into(),
        "pacsguard-bench".into(),
        signer,
        TrailOptions {
            durability: Durability::Batch,
            ..TrailOptions::default()
        },
    )?;
    let actor = Actor {
        user: "root".into(),
        uid: 0,
        sudo_user: None,
    };

    let started = Instant::now();
    for i in 0..records {
        // A realistic record: a finding about an image in a PACS store.
        let path = PathBuf::from(format!(
            "/srv/pacs/archive/2026/11/28/study-{}/series-{}/{}.dcm",
            i / 1000,
            i / 100,
            i
        ));
        let finding = Finding::new(
            path,
            FindingKind::Added,
            Severity::Info,
            "new file of 524288 bytes",
        )
        .with_root(PathBuf::from("/srv/pacs/archive"));
        let mut event = Event::of_finding(actor.clone(), finding);
        event.action = Action::Check;
        event.outcome = Outcome::Findings;
        sink.record(&event)?;
        if (i + 1) % batch == 0 {
            sink.flush()?;
        }
    }
    sink.flush()?;
    let append = started.elapsed().as_secs_f64();
    println!("records={records}");
    println!("batch={batch}");
    println!("append_seconds={append:.3}");
    println!("append_records_per_second={:.0}", records as f64 / append);
    println!("log_bytes={}", std::fs::metadata(&files.log)?.len());

    let started = Instant::now();
    let report = verify(&files.log, &files.checkpoints, &verifier, None)?;
    let verify_seconds = started.elapsed().as_secs_f64();
    assert!(
        report.is_intact() && report.records == records,
        "{report:?}"
    );
    println!("verify_seconds={verify_seconds:.3}");
    println!("checkpoints={}", report.checkpoints);

    // Proof sizes grow with log2(n): generate and verify a few at growing sizes.
    for size in [1_000u64, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&s| s <= records)
    {
        let leaves: Vec<merkle::Hash> = (0..size)
            .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
            .collect();
        let root = merkle::root(&leaves);
        let proof = merkle::inclusion_proof(&leaves, size / 3)?;
        merkle::verify_inclusion(size / 3, size, &leaves[(size / 3) as usize], &proof, &root)?;
        let consistency = merkle::consistency_proof(&leaves, size / 2 + 1)?;
        println!(
            "proof_size_{size}=inclusion {} hashes, consistency {} hashes (log2 n = {:.1})",
            proof.len(),
            consistency.len(),
            (size as f64).log2()
        );
    }
    Ok(())
}
