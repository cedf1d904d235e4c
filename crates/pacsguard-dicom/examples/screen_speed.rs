//! Screening speed of `inspect` on ordinary instances (a benchmark, not a test; see
//! bench/README.md, "Screening speed per instance").
//!
//! `cargo run --release --example screen_speed -- [FILE...]`: each file named, plus two
//! synthetic instances built here (a 512×512×16-bit CT slice and a 10 MB multi-frame with
//! CT-like pixel noise), is inspected in runs of ~32 MB; the median of the runs'
//! throughput in MB per second of this thread's CPU time is printed with the number of
//! observations (which must not change when screening gets faster).
// A benchmark reads the instances it is named (the library never opens a file).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)]

use std::time::{Duration, Instant};

/// A minimal Part 10 file: preamble, meta group, a few attributes, native Pixel Data.
fn synthetic(frames: usize, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        out.extend_from_slice(vr);
        if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT") {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
    }
    fn even(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        v
    }
    let mut meta = Vec::new();
    element(&mut meta, 2, 1, b"OB", &[0, 1]);
    element(&mut meta, 2, 2, b"UI", &even("1.2.840.10008.5.1.4.1.1.2"));
    element(&mut meta, 2, 3, b"UI", &even("1.2.3.4.5.6.7.8.9"));
    element(&mut meta, 2, 0x10, b"UI", &even("1.2.840.10008.1.2.1"));
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    element(&mut out, 2, 0, b"UL", &(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    element(&mut out, 8, 0x16, b"UI", &even("1.2.840.10008.5.1.4.1.1.2"));
    element(&mut out, 8, 0x18, b"UI", &even("1.2.3.4.5.6.7.8.9"));
    element(&mut out, 8, 0x60, b"CS", &even("CT"));
    element(&mut out, 0x10, 0x10, b"PN", &even("Doe^Jane"));
    element(&mut out, 0x28, 0x02, b"US", &1u16.to_le_bytes());
    element(&mut out, 0x28, 0x04, b"CS", &even("MONOCHROME2"));
    element(&mut out, 0x28, 0x08, b"IS", &even(&frames.to_string()));
    element(&mut out, 0x28, 0x10, b"US", &(rows as u16).to_le_bytes());
    element(&mut out, 0x28, 0x11, b"US", &(cols as u16).to_le_bytes());
    element(&mut out, 0x28, 0x100, b"US", &16u16.to_le_bytes());
    element(&mut out, 0x28, 0x101, b"US", &12u16.to_le_bytes());
    element(&mut out, 0x28, 0x102, b"US", &11u16.to_le_bytes());
    element(&mut out, 0x28, 0x103, b"US", &1u16.to_le_bytes());
    // CT-like values: air (-1000) outside a disc, soft tissue ±noise inside, bone spots;
    // the low bytes are noise, the high bytes mostly 0x00/0xFC/0xFD: the bytes that look
    // like candidates to a byte-pattern scanner.
    let mut state = seed | 1;
    let mut pixels = Vec::with_capacity(frames * rows * cols * 2);
    for _ in 0..frames {
        for y in 0..rows {
            for x in 0..cols {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state % 61) as i32 - 30;
                let (dx, dy) = (x as i32 - cols as i32 / 2, y as i32 - rows as i32 / 2);
                let r2 = dx * dx + dy * dy;
                let base = if r2 > (rows as i32 * 2 / 5).pow(2) {
                    -1000
                } else if (x / 37 + y / 41) % 11 == 0 {
                    900
                } else {
                    40
                };
                pixels.extend_from_slice(&((base + noise) as i16).to_le_bytes());
            }
        }
    }
    element(&mut out, 0x7fe0, 0x10, b"OW", &pixels);
    out
}

/// This thread's time on a CPU (Linux's schedstat, in ns): the machine is shared, and
/// wall-clock rates moved by 2x between runs while other builds ran.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn measure(name: &str, bytes: &[u8]) {
    // warm up and count observations once
    let inspection = pacsguard_dicom::inspect(bytes);
    let observed = inspection.observations.len();
    // Each run inspects the instance often enough for ~32 MB (the schedstat clock moves
    // in scheduler ticks on some kernels).
    let repeat = (32_000_000 / bytes.len().max(1)).max(1);
    let mut rates = Vec::new();
    let start = Instant::now();
    while rates.len() < 5 || (start.elapsed() < Duration::from_secs(3) && rates.len() < 50) {
        let t = cpu_ns();
        for _ in 0..repeat {
            let _ = std::hint::black_box(pacsguard_dicom::inspect(std::hint::black_box(bytes)));
        }
        let secs = (cpu_ns() - t).max(1) as f64 / 1e9;
        rates.push((repeat * bytes.len()) as f64 / 1e6 / secs);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{:>9.1} MB per CPU-second, median ({:>3} runs, {:>9} bytes, {} observations)  {}",
        rates[rates.len() / 2],
        rates.len(),
        bytes.len(),
        observed,
        name
    );
}

fn main() {
    measure("synthetic CT 512x512x16", &synthetic(1, 512, 512, 7));
    measure(
        "synthetic multi-frame 10 MB (20x512x512x16)",
        &synthetic(20, 512, 512, 11),
    );
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        measure(&path, &bytes);
    }
}
