//! `pacsguard_dicom::inspect` on arbitrary bytes: it must not panic, allocate without bound
//! or loop forever, whatever the file holds. Beyond not crashing, the target checks the
//! promises the crate's API documents, since a broken bound is a bug even without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{Container, MAX_DOCUMENT_BYTES, MAX_OBSERVATIONS, inspect};

fuzz_target!(|data: &[u8]| {
    let inspection = inspect(data);

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
        assert!(!inspection.observations.is_empty(), "not DICOM, unexplained");
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
});
