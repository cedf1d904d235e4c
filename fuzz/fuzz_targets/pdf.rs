//! `pacsguard_dicom::inspect_pdf` on arbitrary bytes: the PDF reader must not panic,
//! recurse without bound, allocate without bound or loop forever, whatever the document
//! holds; and it keeps the promises its API documents.
//!
//! The checks are `pacsguard_dicom::fuzzing::pdf`, which `tests/fuzz_smoke.rs` in the
//! crate runs on every CI run over the seeds and their mutations: one function, two callers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pacsguard_dicom::fuzzing::pdf(data));
