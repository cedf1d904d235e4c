//! The whole-file readers' checks (the sh model, the batch line and ex escape checks, the
//! markup search, gzip and tar opening) on arbitrary bytes: no panic, no unbounded work,
//! offsets inside the bytes given.
//!
//! The checks are `pacsguard_dicom::fuzzing::readers`, which `tests/fuzz_smoke.rs` in the
//! crate runs on every CI run over the seeds and their mutations: one function, two callers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pacsguard_dicom::fuzzing::readers(data));
