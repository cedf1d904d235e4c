//! `pacsguard_dicom::inspect_pdf` on arbitrary bytes: the PDF reader must not panic,
//! recurse without bound, allocate without bound or loop forever, whatever the document
//! holds; and it keeps the promises its API documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{MAX_PDF_FINDINGS, MAX_PDF_INFLATED_BYTES, inspect_pdf};

fuzz_target!(|data: &[u8]| {
    let report = inspect_pdf(data);
    std::hint::black_box(format!("{report:?}"));
    // Findings are capped (the last one counts the rest).
    assert!(report.findings.len() <= MAX_PDF_FINDINGS, "{} findings", report.findings.len());
    // Attachments are decoded within the decoding budget.
    let attached: usize = report.attachments.iter().map(|a| a.bytes.len()).sum();
    assert!(attached <= MAX_PDF_INFLATED_BYTES, "{attached} attached bytes");
});
