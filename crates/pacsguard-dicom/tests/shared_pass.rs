//! The script readers share one pass over a file for the words they look for
//! (`literals.rs`, review r26-speed): a reader then searches only from where its word
//! first occurs, or not at all. Nothing they find may change: each payload below, found
//! on its own, is still found at its place when it sits after the pixel data of a CT
//! slice, at every alignment against the shared search's 16- and 32-byte blocks, ending
//! at the file's last byte.

use pacsguard_dicom::inspect;
use pacsguard_testkit::{self as kit, DicomBuilder, Pixels};

/// Payloads the readers find by a word of the shared pass: vim commands (`system`,
/// `execute(`, `job_start(`, `libcallnr(`, `feedkeys(`, `writefile(`, `let`, `exe`,
/// `norm`), a PDF opened by repairing it (`%PDF-` past the first kilobyte, and `obj`
/// without any header) and markup decoded as the ISO-2022-JP it declares (`2022`).
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let pipe = "sh -c 'echo x > RAN'";
    let ran = "document.body.setAttribute('data-ran','RAN')";
    let pdf = kit::pdf("/OpenAction << /S /Launch /F (cmd.exe) >>");
    let headerless = pdf[pdf.iter().position(|&b| b == b'\n').unwrap_or(0) + 1..].to_vec();
    vec![
        ("vim system()", format!("call system(\"{pipe}\")\n").into_bytes()),
        ("vim execute()", format!("call execute('silent !{pipe}')\n").into_bytes()),
        ("vim job_start()", b"call job_start(['sh', '-c', 'echo x > RAN'])\n".to_vec()),
        ("vim libcallnr()", b"call libcallnr('libc.so.6', 'system', 'echo x > RAN')\n".to_vec()),
        ("vim feedkeys()", format!("call feedkeys(\":!{pipe}\\r\")\n").into_bytes()),
        (
            "vim writefile()",
            format!("call writefile([\"!{pipe}\"], \"w.vim\")\nso w.vim\n").into_bytes(),
        ),
        ("vim let and exe", format!("let k = '!{pipe}'\nexe k\n").into_bytes()),
        ("vim norm", format!("norm! !!{pipe}\r\n").into_bytes()),
        ("PDF past the first kilobyte", pdf),
        ("PDF without a header", headerless),
        (
            "ISO-2022-JP markup",
            format!("<html><head><meta charset=\"ISO-2022-JP\"></head><body><img src=x on\x1b(Berror=\"{ran}\"></body></html>").into_bytes(),
        ),
    ]
}

mod support;

/// 16-bit CT values as a scanner writes them (air, tissue with noise): text-free bytes
/// that hold every trigger byte (`!`, `(`, `\n`, `%`) many times over.
fn ct_pixels(len: usize, seed: u64) -> Vec<u8> {
    support::ct_pixels(len, seed, (-1000, 40), i16::MIN..=i16::MAX)
}

/// A CT slice whose Pixel Data ends with `payload` after `noise` bytes of pixel values
/// (a newline before it): the file's last byte is the payload's. The payload's offset.
fn slice_ending_with(payload: &[u8], noise: usize) -> (Vec<u8>, usize) {
    let mut pixels = ct_pixels(noise, noise as u64);
    pixels.push(b'\n');
    support::slice_ending_with("1.2.826.0.1.3680043.26.1", pixels, payload)
}

#[test]
fn payloads_after_pixel_data_are_found_at_every_alignment() {
    for (name, payload) in payloads() {
        // On its own a text file is reported as not DICOM, naming what runs it.
        assert!(
            !inspect(&payload).observations.is_empty(),
            "{name}: found on its own"
        );
        // 64 KiB of pixel values, then the payload at each offset modulo 64.
        for shift in [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 63] {
            let (file, at) = slice_ending_with(&payload, 64 * 1024 + shift);
            assert!(
                support::alert_from(&inspect(&file), at),
                "{name}: after {} bytes of pixel data, at offset {at}",
                64 * 1024 + shift
            );
        }
    }
}

/// One payload of each reader (vim, PDF, markup) after 100 MiB of pixel values: the
/// shared pass reads the whole file, not a head of it.
#[test]
fn payloads_after_100_mb_of_pixel_data_are_found() {
    let pixels = ct_pixels(100 * 1024 * 1024, 26);
    let each_reader = ["vim system()", "PDF without a header", "ISO-2022-JP markup"];
    for (name, payload) in payloads()
        .into_iter()
        .filter(|(name, _)| each_reader.contains(name))
    {
        let mut pixels = pixels.clone();
        pixels.push(b'\n');
        if (pixels.len() + payload.len()) % 2 == 1 {
            pixels.insert(0, 0);
        }
        pixels.extend_from_slice(&payload);
        let file = DicomBuilder::ct("1.2.826.0.1.3680043.26.2")
            .pixels(Pixels::Native(pixels))
            .build();
        let at = file.len() - payload.len();
        assert!(
            support::alert_from(&inspect(&file), at),
            "{name}: after 100 MiB of pixel data"
        );
    }
}

#[test]
fn payloads_appended_to_a_real_ct_slice_are_found() {
    let ct = kit::pydicom_sample("CT_small.dcm");
    for (name, payload) in payloads() {
        let mut file = ct.clone();
        file.push(b'\n');
        file.extend_from_slice(&payload);
        assert!(
            support::alert_from(&inspect(&file), ct.len() + 1),
            "{name}: appended to CT_small.dcm"
        );
    }
}
