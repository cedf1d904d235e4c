//! The ZIP end-record confirmation (`trailing_zip`, and the search that finds archives in
//! element values) on arbitrary bytes: no panic, no unbounded work, and what it reports
//! lies inside the bytes given and starts with an end record.
//!
//! The checks are `pacsguard_dicom::fuzzing::zip`, which `tests/fuzz_smoke.rs` in the
//! crate runs on every CI run over the seeds and their mutations: one function, two callers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pacsguard_dicom::fuzzing::zip(data));
