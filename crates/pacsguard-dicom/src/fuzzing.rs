//! What each fuzz target checks, one function per target, called by the libFuzzer targets
//! in `fuzz/` (nightly, sanitizers) and by `tests/fuzz_smoke.rs` (stable, every CI run),
//! so that the two cannot drift apart.
//!
//! Each function takes arbitrary bytes, runs the parsers of untrusted bytes its target
//! names, and checks the promises their API documents. It panics (an `assert!`) when a
//! promise is broken: that panic is how libFuzzer and the test report the input. The
//! parsers themselves never panic; only these checks do.

use crate::{
    Budget, Container, Format, MAX_DOCUMENT_BYTES, MAX_OBSERVATIONS, MAX_PDF_FINDINGS,
    MAX_PDF_INFLATED_BYTES, confirm_executable, dicomdir, find_batch_command, find_ex_command,
    find_markup, find_shell_command, inspect as inspect_file, inspect_pdf, iso, open_archive,
    pe_headers, search_hidden, sniff, trailing_zip,
};

/// What a fuzz target runs on one input.
pub type Check = fn(&[u8]);

/// The fuzz targets of this crate, by the name `fuzz/Cargo.toml` gives them, with the
/// function each runs.
pub const TARGETS: [(&str, Check); 6] = [
    ("inspect", inspect),
    ("zip", zip),
    ("executable", executable),
    ("readers", readers),
    ("pdf", pdf),
    ("media", media),
];

/// `inspect` on the bytes of one file: findings capped, every non-DICOM file explained,
/// kept documents within their budget, the pixel data span inside the bytes.
pub fn inspect(data: &[u8]) {
    let inspection = inspect_file(data);

    // Touch everything the caller would read, so that nothing is optimised away and
    // every string the inspection built is walked once.
    let mut detail_bytes = 0usize;
    for observation in &inspection.observations {
        detail_bytes += observation.detail.len();
        if let Some(format) = observation.format {
            detail_bytes += format.as_str().len();
        }
    }
    std::hint::black_box(detail_bytes);
    std::hint::black_box(format!("{inspection:?}"));

    // Findings are capped, plus one line counting the rest.
    assert!(
        inspection.observations.len() <= MAX_OBSERVATIONS + 1,
        "{} observations",
        inspection.observations.len()
    );
    // Every file gets at least one observation or is a DICOM file.
    if inspection.container == Container::NotDicom {
        assert!(
            !inspection.observations.is_empty(),
            "not DICOM, unexplained"
        );
    }
    // Kept documents stay within their budget.
    let document_bytes: usize = inspection.documents.iter().map(|d| d.bytes.len()).sum();
    assert!(document_bytes <= MAX_DOCUMENT_BYTES);
    // The pixel data span, when given, is inside the bytes given (it is `None` for a
    // deflated data set, whose offsets are in the inflated copy).
    if let Some(pixels) = &inspection.pixel_data {
        assert!(
            pixels.start <= pixels.end && pixels.end <= data.len(),
            "pixel data {pixels:?} outside {} bytes",
            data.len()
        );
    }
    std::hint::black_box(inspection.is_readable_dicom());
    // The look at a rewritten header's text (watch): a count and its first element agree.
    if let Some(text) = crate::garbled_text(data) {
        assert_eq!(text.first.is_some(), text.garbled > 0, "{text:?}");
    }
}

/// The ZIP end-record confirmation (`trailing_zip`) and the search that finds archives in
/// element values: what they report lies inside the bytes and starts with an end record.
pub fn zip(data: &[u8]) {
    if let Some((at, detail)) = trailing_zip(data) {
        assert!(data[at..].starts_with(b"PK\x05\x06"), "{at}");
        std::hint::black_box(detail);
    }
    let mut budget = Budget::default();
    search_hidden(data, data, 0, &mut budget, |hidden| {
        assert!(hidden.offset < data.len());
        if hidden.format == Format::Zip {
            assert!(data[hidden.offset..].starts_with(b"PK\x05\x06"));
        }
        true
    });
}

/// Executable confirmation (PE, ELF, Mach-O through goblin, behind our header checks): a
/// confirmation always names a format a loader runs.
pub fn executable(data: &[u8]) {
    std::hint::black_box(sniff(data));
    std::hint::black_box(pe_headers(data));
    if let Some(exe) = confirm_executable(data) {
        assert!(
            matches!(
                exe.format,
                Format::Pe
                    | Format::Elf
                    | Format::MachO
                    | Format::JavaClass
                    | Format::PythonBytecode
            ),
            "{:?}",
            exe.format
        );
    }
}

/// The whole-file readers' checks (the sh model, the batch line and ex escape checks, the
/// markup search, the PostScript tokenizer, gzip and tar opening): offsets inside the
/// bytes given.
pub fn readers(data: &[u8]) {
    for command in [
        find_shell_command(data),
        find_batch_command(data),
        find_ex_command(data),
    ]
    .into_iter()
    .flatten()
    {
        assert!(command.offset < data.len(), "{command:?}");
    }
    if let Some(markup) = find_markup(data) {
        assert!(markup.offset < data.len());
    }
    if let Some(action) = crate::find_postscript_action(data) {
        assert!(action.offset < data.len(), "{action:?}");
    }
    std::hint::black_box(open_archive(data));
}

/// The PDF reader (`inspect_pdf`): findings capped, attachments decoded within the
/// decoding budget.
pub fn pdf(data: &[u8]) {
    let report = inspect_pdf(data);
    std::hint::black_box(format!("{report:?}"));
    // Findings are capped (the last one counts the rest).
    assert!(
        report.findings.len() <= MAX_PDF_FINDINGS,
        "{} findings",
        report.findings.len()
    );
    // Attachments are decoded within the decoding budget.
    let attached: usize = report.attachments.iter().map(|a| a.bytes.len()).sum();
    assert!(
        attached <= MAX_PDF_INFLATED_BYTES,
        "{attached} attached bytes"
    );
}

/// The media gate's readers: the ISO 9660 reader (the bytes as a whole image) and the
/// DICOMDIR reader. Every file the ISO reader lists lies inside the image and reads whole;
/// no DICOMDIR record names a path outside its directory.
pub fn media(data: &[u8]) {
    if let Ok(listing) = iso::list(data) {
        for file in &listing.files {
            assert!(
                file.offset.saturating_add(file.size) <= data.len() as u64,
                "{file:?}"
            );
            let bytes = iso::read(data, file);
            assert!(
                bytes.as_ref().is_ok_and(|b| b.len() as u64 == file.size),
                "{file:?} does not read whole"
            );
        }
    }
    if let Ok(directory) = dicomdir::read(data) {
        for record in &directory.records {
            assert!(record.offset < data.len());
            if let Some(Ok(components)) = &record.components {
                assert!(components.iter().all(|c| c != ".." && !c.contains('/')));
            }
        }
    }
}
