//! How often a walk says a directory changed while it was listed (issue 15): walks
//! `ROOT` `RUNS` times with the ordered walk and counts the `ChangedWhileListed`
//! problems, while something else (bench/busy_listing.sh: a writer at a given rate)
//! adds files to a directory below it. Prints one line per kind of problem and the
//! walks' mean wall time.
//!
//! `cargo run -p pacsguard-fs --example busy_listing -- ROOT RUNS`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use pacsguard_fs::{OrderedWalk, ProblemKind, WalkOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(runs)) = (args.next(), args.next()) else {
        eprintln!("usage: busy_listing ROOT RUNS");
        std::process::exit(2);
    };
    let root = PathBuf::from(root);
    let runs: usize = runs.parse()?;
    let options = WalkOptions::default();
    let mut walks_reporting = 0usize;
    let mut said: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    for _ in 0..runs {
        let mut walk = OrderedWalk::new(&root, &options)?;
        let entries = walk.by_ref().count();
        let changed: Vec<_> = walk
            .take_problems()
            .into_iter()
            .filter(|p| p.kind == ProblemKind::ChangedWhileListed)
            .collect();
        if !changed.is_empty() {
            walks_reporting += 1;
        }
        for problem in changed {
            // The kind of message: its first words.
            let head: String = problem.detail.split(':').next().unwrap_or("").into();
            *said.entry(head).or_default() += 1;
        }
        std::hint::black_box(entries);
    }
    let mean = started.elapsed().as_secs_f64() / runs.max(1) as f64;
    println!(
        "walks {runs}, walks reporting changed-while-listed {walks_reporting}, mean walk {mean:.3} s"
    );
    for (head, n) in said {
        println!("  {n} x {head}");
    }
    Ok(())
}
