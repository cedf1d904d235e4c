//! Measures what `serve`'s start holds in memory when it gathers the records binding the
//! console (`Gather::newest_per_id`) from a trail naming many sessions. Run by
//! `bench/console.sh` when `BENCH_GATHER_IDS` is set, under GNU `time -v` for peak RSS:
//!
//!     cargo run -p pacsguard-audit --example gather_bench -- write IDS DIR
//!     /usr/bin/time -v target/debug/examples/gather_bench gather IDS DIR
//!
//! `write` fills DIR with a trail of IDS session openings (each a distinct 64-hex digest,
//! as the console writes them) through the real writer; `gather` verifies it as `serve`
//! does at its start and prints one `key=value` line per count.

use std::path::PathBuf;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use pacsguard_audit::{
    AuditSink, Durability, Gather, RecordKey, TrailFiles, TrailOptions, verify_gathering,
};
use pacsguard_events::{Action, Actor, Event, EventSink, Outcome};
use pacsguard_trail::note::Signer;

/// The fields `serve` gathers, quoted as they stand in a record's line: the console's
/// one list ([`pacsguard_events::CONSOLE_BINDING_FIELDS`]; a copy kept here by hand
/// before, session 41).
fn bound_fields() -> Vec<String> {
    pacsguard_events::CONSOLE_BINDING_FIELDS
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: gather_bench write|gather|gather-none IDS DIR";
    let mode = args.next().ok_or(usage)?;
    let ids: u64 = args.next().ok_or(usage)?.parse()?;
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let files = TrailFiles {
        log: dir.join("audit.log"),
        checkpoints: dir.join("checkpoints.jsonl"),
        witness: None,
    };
    let signer = || Signer::new("pacsguard-bench", SigningKey::from_bytes(&[42; 32]));
    match mode.as_str() {
        "write" => {
            std::fs::create_dir_all(&dir)?;
            for path in [&files.log, &files.checkpoints] {
                let _ = std::fs::remove_file(path);
            }
            let (mut sink, _) = AuditSink::open(
                files.clone(),
                "bench-host".into(),
                "pacsguard-bench".into(),
                signer()?,
                TrailOptions {
                    durability: Durability::Batch,
                    ..TrailOptions::default()
                },
            )?;
            let actor = Actor {
                user: "console:admin".into(),
                uid: 0,
                sudo_user: None,
            };
            for i in 0..ids {
                let digest = blake3::hash(&i.to_le_bytes()).to_hex().to_string();
                let mut event =
                    Event::new(actor.clone(), Action::Login, Outcome::Success, "sign-in");
                event.session_digest = Some(digest);
                sink.record(&event)?;
                if (i + 1) % 10_000 == 0 {
                    sink.flush()?;
                }
            }
            sink.flush()?;
            println!("records={ids}");
            println!("log_bytes={}", std::fs::metadata(&files.log)?.len());
        }
        "gather" | "gather-none" => {
            let signer = signer()?;
            // `gather-none`: the same verification gathering nothing (what the
            // verification itself holds).
            let fields = bound_fields();
            let needles: Vec<&str> = if mode == "gather-none" {
                vec!["\"no_such_field\""]
            } else {
                fields.iter().map(String::as_str).collect()
            };
            let mut gather = Gather::new(&needles).newest_per_id();
            gather.set_record_key(RecordKey::of(&signer));
            let started = Instant::now();
            let report = verify_gathering(
                &files.log,
                &files.checkpoints,
                signer.verifier(),
                None,
                &mut gather,
            )?;
            println!("seconds={:.1}", started.elapsed().as_secs_f64());
            println!("records={}", report.records);
            println!("intact={}", report.is_intact());
            println!("gathered={}", gather.records().len());
            println!("superseded={}", gather.superseded());
            println!("overflowed={}", gather.overflowed());
            if gather.records().len() as u64 > ids {
                return Err("more records gathered than ids written".into());
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
