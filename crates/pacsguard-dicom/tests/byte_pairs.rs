//! The batch, ex and vim-register readers skip 64-byte blocks of a file that hold no
//! trigger byte beside a byte their grammar allows (`pairs.rs`, review r27-speed). Nothing
//! they find may change: each payload below is found on its own, and still found at its
//! place after CT pixel values (whose low bytes are those readers' trigger bytes, every
//! few dozen bytes) at every alignment against the 64-byte blocks, ending at the file's
//! last byte, and after 100 MiB of them.

use pacsguard_dicom::inspect;
use pacsguard_events::Severity;

/// One payload per reader and trigger byte that `pairs` searches for: cmd.exe lines after
/// `\n`, `&`, `|` and Ctrl-Z, an ex escape after a line start and after `:`, a vim
/// register run as an Ex line (`@a`, `*a`). Each starts with its trigger byte or the byte
/// before it, right after pixel values: the pair is the only one of its block.
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let pipe = "sh -c 'echo x > RAN'";
    let batch = "powershell -c \"echo x > RAN\"\r\n";
    vec![
        ("batch after \\n", format!("\n{batch}").into_bytes()),
        ("batch after &", format!("&{batch}").into_bytes()),
        ("batch after |", format!("|{batch}").into_bytes()),
        ("batch after Ctrl-Z", format!("\x1a{batch}").into_bytes()),
        ("ex at a line start", format!("\n!{pipe}\n").into_bytes()),
        ("ex after :", format!(":!{pipe}\n").into_bytes()),
        (
            "vim @a",
            format!("\nlet @a = \"!{pipe}\"\n@a\n").into_bytes(),
        ),
        (
            "vim *a",
            format!("\nlet @a = \"!{pipe}\"\n*a\n").into_bytes(),
        ),
    ]
}

mod support;

/// 16-bit CT values as gen_corpus writes them (air 24 and soft tissue 1064, ± noise):
/// their low bytes are `\n`, Ctrl-Z, `!`, `&`, `*` and `@` many times over, each before a
/// high byte below 0x09.
fn ct_pixels(len: usize, seed: u64) -> Vec<u8> {
    support::ct_pixels(len, seed, (24, 1064), 0..=4095)
}

/// A CT slice whose Pixel Data ends with `payload` right after `pixels`: the file's last
/// byte is the payload's. The payload's offset.
fn slice_ending_with(pixels: Vec<u8>, payload: &[u8]) -> (Vec<u8>, usize) {
    support::slice_ending_with("1.2.826.0.1.3680043.27.1", pixels, payload)
}

#[test]
fn the_pixel_values_hold_the_trigger_bytes() {
    let pixels = ct_pixels(64 * 1024, 1);
    for trigger in [b'\n', 0x1a, b'!', b'&', b'*', b'@'] {
        let count = pixels.iter().filter(|&&b| b == trigger).count();
        assert!(count > 100, "{trigger:#x}: {count} times in 64 KiB");
    }
}

#[test]
fn payloads_after_pixel_data_are_found_at_every_alignment() {
    for (name, payload) in payloads() {
        assert!(
            !inspect(&payload).observations.is_empty(),
            "{name}: found on its own"
        );
        // The payload's trigger byte at each offset modulo 64 (the block size), and
        // one block on.
        for shift in 0..=65 {
            let (file, at) =
                slice_ending_with(ct_pixels(64 * 1024 + shift, shift as u64), &payload);
            assert!(
                support::alert_from(&inspect(&file), at),
                "{name}: after {} bytes of pixel data, at offset {at}",
                64 * 1024 + shift
            );
        }
    }
}

/// Each reader after 100 MiB of pixel values (read in windows): two files, as each reader
/// reports its first finding only.
#[test]
fn payloads_after_100_mb_of_pixel_data_are_found() {
    let pixels = ct_pixels(100 * 1024 * 1024, 27);
    let payloads = payloads();
    let payload = |name: &str| {
        payloads
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    for pair in [
        ["batch after &", "ex at a line start"],
        ["batch after Ctrl-Z", "vim @a"],
    ] {
        let first = payload(pair[0]);
        let second = payload(pair[1]);
        let joined = [&first[..], b"\n", &second[..]].concat();
        let (file, at) = slice_ending_with(pixels.clone(), &joined);
        let inspection = inspect(&file);
        let second_at = at + first.len() + 1;
        for (name, from, to) in [(pair[0], at, second_at), (pair[1], second_at, file.len())] {
            assert!(
                inspection
                    .observations
                    .iter()
                    .any(|o| o.severity == Severity::Alert
                        && o.offset
                            .is_some_and(|off| off >= from as u64 && off < to as u64)),
                "{name}: after 100 MiB of pixel data, {:?}",
                inspection.observations
            );
        }
    }
}
