//! The media gate's readers on arbitrary bytes: the ISO 9660 reader (the bytes as a whole
//! image) and the DICOMDIR reader. No panic, no unbounded work, and every file the ISO
//! reader lists lies inside the image.
//!
//! The checks are `pacsguard_dicom::fuzzing::media`, which `tests/fuzz_smoke.rs` in the
//! crate runs on every CI run over the seeds and their mutations: one function, two callers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pacsguard_dicom::fuzzing::media(data));
