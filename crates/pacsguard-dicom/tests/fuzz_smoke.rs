//! The fuzz targets' CI smoke run, on stable Rust: every seed of every target of this
//! crate (`fuzz/seeds/`, committed, plus the pydicom and pynetdicom sample files that
//! `fuzz/seed-corpus.sh` seeds the fuzzer with, and an ISO image genisoimage writes for
//! the media target), then [`MUTATIONS_PER_SEED`] deterministic mutations of each (bit
//! flips, bytes set to edge values, truncations, length fields bumped, chunks repeated,
//! tokens the parsers branch on inserted), through the same functions the libFuzzer
//! targets call (`pacsguard_dicom::fuzzing`). A panic, in a parser or in a target's check
//! of a documented promise, fails the test and names the target, seed and mutation, and
//! the input is kept under the target directory to reproduce with `cargo fuzz run`.
//!
//! This is no substitute for fuzzing (`fuzz/README.md`): it replays what the fuzzer
//! starts from and its near neighbours on every CI run, where cargo-fuzz cannot run
//! (nightly, sanitizers). The work done on each input is bounded by the crate's own
//! budgets; the slowest input of each target is printed (`--nocapture`), not asserted.
#![allow(clippy::disallowed_methods)] // the test reads the seed files it replays

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pacsguard_dicom::fuzzing::{self, TARGETS};
use pacsguard_testkit as kit;

/// Mutated inputs made from each seed: 6,000 inputs for the inspect target (~190 seeds),
/// ~30,000 in all, within ~30 s of a debug build on a shared 2-core machine.
const MUTATIONS_PER_SEED: usize = 32;
/// What the fuzz runs pass as `-max_len` (fuzz/README.md): mutations are made from the
/// first this many bytes of a seed. The seed itself is run whole.
const MAX_LEN: usize = 64 * 1024;
/// The media target's `-max_len`: ISO images need their volume descriptors at 32 KiB.
const MEDIA_MAX_LEN: usize = 1024 * 1024;

/// Tokens the parsers branch on (a few of `fuzz/inspect.dict` and `fuzz/pdf.dict`), which
/// random mutation would take long to find.
const TOKENS: [&[u8]; 20] = [
    b"DICM",
    b"PK\x05\x06",
    b"PK\x03\x04",
    b"PK\x06\x06",
    b"%PDF-1.7\n",
    b"MZ",
    b"PE\0\0",
    b"\x7fELF",
    b"\xcf\xfa\xed\xfe",
    b"\x1f\x8b\x08",
    b"ustar",
    b"stream\r\n",
    b"endstream",
    b" 0 obj <<",
    b"/FlateDecode",
    b"\n!sh ",
    b"\r\npowershell -enc ",
    b"<script>",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"\xfe\xff\x00\xe0\xff\xff\xff\xff",
];

/// xorshift64*: deterministic, so that a failure found here is found again.
struct Rng(u64);

impl Rng {
    fn new(seed: &str, index: usize) -> Rng {
        // FNV-1a of the target and seed names, so that every input has its own stream.
        let mut state = 0xcbf2_9ce4_8422_2325u64;
        for b in seed.bytes().chain(index.to_le_bytes()) {
            state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(state | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One to four stacked mutations of `bytes`.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..=rng.below(4) {
        if bytes.is_empty() {
            bytes.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
            continue;
        }
        let at = rng.below(bytes.len());
        match rng.below(7) {
            // A bit flipped.
            0 => bytes[at] ^= 1 << rng.below(8),
            // A byte set to an edge value.
            1 => bytes[at] = [0x00, 0xff, 0x7f, 0x80, b'\n', b'!', b'&'][rng.below(7)],
            // Cut short.
            2 => bytes.truncate(at),
            // A 16- or 32-bit little-endian field bumped: lengths, counts and offsets.
            3 | 4 => {
                let width = if rng.below(2) == 0 { 2 } else { 4 };
                if let Some(field) = bytes.get_mut(at..at + width) {
                    let mut value = [0u8; 8];
                    value[..width].copy_from_slice(field);
                    let old = u64::from_le_bytes(value);
                    let new = match rng.below(5) {
                        0 => old.wrapping_add(1),
                        1 => old.wrapping_sub(1),
                        2 => old.wrapping_mul(2),
                        3 => 0,
                        _ => u64::MAX,
                    };
                    field.copy_from_slice(&new.to_le_bytes()[..width]);
                }
            }
            // A chunk repeated in place (nesting, many members, many headers).
            5 => {
                let len = rng.below(bytes.len() - at).min(4096) + 1;
                let chunk = bytes[at..at + len].to_vec();
                let copies = 1 + rng.below(8);
                for _ in 0..copies {
                    bytes.splice(at..at, chunk.iter().copied());
                }
            }
            // A token the parsers branch on, written over the bytes or inserted.
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                if rng.below(2) == 0 && at + token.len() <= bytes.len() {
                    bytes[at..at + token.len()].copy_from_slice(token);
                } else {
                    bytes.splice(at..at, token.iter().copied());
                }
            }
        }
    }
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

/// The seeds of `target`, by name: as `fuzz/smoke.sh` seeds it, every target but `pdf`
/// starts from the DICOM seeds (real files and the hand-made ones), and each has its own.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    // `inspect`, `pdf` and `readers` have seeds of their own; the others start from the
    // DICOM seeds only.
    let own = seeds_dir().join(target);
    let mut paths = if own.is_dir() {
        kit::files_under(&own)
    } else {
        Vec::new()
    };
    if target != "pdf" {
        paths.extend(kit::files_under(&seeds_dir().join("inspect")));
        paths.extend(kit::files_under(&kit::pydicom_files()));
        paths.extend(kit::files_under(&kit::pynetdicom_files()));
    }
    paths.sort();
    paths.dedup();
    let mut seeds: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect();
    if target == "media" {
        seeds.push(("genisoimage image".into(), iso_image()));
    }
    seeds
}

/// A small ISO 9660 image with Rock Ridge and Joliet, written by genisoimage (as
/// `fuzz/smoke.sh` seeds the media target): a DICOMDIR from pydicom's samples, an
/// AUTORUN.INF and an instance.
fn iso_image() -> Vec<u8> {
    let staging = tempfile::tempdir().expect("temporary directory");
    let root = staging.path().join("root");
    std::fs::create_dir_all(root.join("DICOM")).expect("staging tree");
    let dicomdir = kit::files_under(&kit::pydicom_files())
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "DICOMDIR"))
        .expect("pydicom ships a DICOMDIR");
    std::fs::copy(dicomdir, root.join("DICOMDIR")).expect("copy DICOMDIR");
    std::fs::write(
        root.join("AUTORUN.INF"),
        b"[autorun]\r\nopen=VIEWER.EXE\r\n",
    )
    .expect("write AUTORUN.INF");
    std::fs::write(
        root.join("DICOM/IM000001"),
        kit::pydicom_sample("CT_small.dcm"),
    )
    .expect("write instance");
    let image = staging.path().join("seed.iso");
    let status = Command::new("genisoimage")
        .args(["-quiet", "-J", "-R", "-o"])
        .arg(&image)
        .arg(&root)
        .status()
        .expect("genisoimage (scripts/setup-test-deps.sh installs it)");
    assert!(status.success(), "genisoimage: {status}");
    std::fs::read(&image).expect("the image genisoimage wrote")
}

/// Runs `check` on `input`; a panic fails the test, naming the input, which is kept.
fn run(
    target: &str,
    check: fn(&[u8]),
    label: &str,
    input: &[u8],
    slowest: &mut (Duration, String),
) {
    let started = Instant::now();
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_default();
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "fuzz-smoke-{target}-{}",
            label.replace(['/', ' '], "_")
        ));
        let _ = std::fs::write(&kept, input);
        panic!(
            "fuzz target {target}: {label} panicked: {message}\ninput kept in {} (reproduce: cd fuzz && cargo +nightly fuzz run -a {target} <that file>)",
            kept.display()
        );
    }
    let took = started.elapsed();
    if took > slowest.0 {
        *slowest = (took, label.to_string());
    }
}

fn smoke(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .expect("a target of pacsguard_dicom::fuzzing");
    let max_len = if target == "media" {
        MEDIA_MAX_LEN
    } else {
        MAX_LEN
    };
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "{target}: no seeds");
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, String::new());
    let mut inputs = 0usize;
    for (name, bytes) in &seeds {
        run(target, check, name, bytes, &mut slowest);
        let head = &bytes[..bytes.len().min(max_len)];
        for index in 0..MUTATIONS_PER_SEED {
            let mut rng = Rng::new(&format!("{target}:{name}"), index);
            let mut input = head.to_vec();
            mutate(&mut input, &mut rng);
            input.truncate(max_len);
            run(
                target,
                check,
                &format!("{name} mutation {index}"),
                &input,
                &mut slowest,
            );
            inputs += 1;
        }
        inputs += 1;
    }
    eprintln!(
        "fuzz smoke {target}: {} seeds, {inputs} inputs in {:.1?}; slowest {:.1?} ({})",
        seeds.len(),
        started.elapsed(),
        slowest.0,
        slowest.1
    );
}

#[test]
fn every_target_of_the_crate_is_smoke_tested_here() {
    let mut names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["executable", "inspect", "media", "pdf", "readers", "zip"]
    );
    // And every one is a fuzz target calling the same function (no drift).
    for name in names {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/fuzz_targets")
            .join(format!("{name}.rs"));
        let source = std::fs::read_to_string(&path).expect("fuzz target source");
        assert!(
            source.contains(&format!("pacsguard_dicom::fuzzing::{name}(data)")),
            "{} does not call pacsguard_dicom::fuzzing::{name}",
            path.display()
        );
    }
}

#[test]
fn fuzz_smoke_inspect() {
    smoke("inspect");
}

#[test]
fn fuzz_smoke_zip() {
    smoke("zip");
}

#[test]
fn fuzz_smoke_executable() {
    smoke("executable");
}

#[test]
fn fuzz_smoke_readers() {
    smoke("readers");
}

#[test]
fn fuzz_smoke_pdf() {
    smoke("pdf");
}

#[test]
fn fuzz_smoke_media() {
    smoke("media");
}

/// The smoke run must be able to fail: a check that panics on an input is reported with
/// the input's name (here a target check that refuses every input holding "DICM").
#[test]
fn a_panicking_check_fails_the_smoke_run_and_names_the_input() {
    fn refuses_dicm(data: &[u8]) {
        assert!(!data.windows(4).any(|w| w == b"DICM"), "DICM found");
        fuzzing::readers(data);
    }
    let mut slowest = (Duration::ZERO, String::new());
    run(
        "readers",
        refuses_dicm,
        "clean",
        b"no preamble here",
        &mut slowest,
    );
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run(
            "readers",
            refuses_dicm,
            "planted",
            b"xxxxDICM",
            &mut slowest,
        )
    }));
    let message = caught
        .expect_err("the panic is reported")
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("readers: planted panicked: DICM found"),
        "{message}"
    );
}
