//! `pacsguard_dicom::inspect` on arbitrary bytes: it must not panic, allocate without bound
//! or loop forever, whatever the file holds. Beyond not crashing, the target checks the
//! promises the crate's API documents, since a broken bound is a bug even without a panic.
//!
//! The checks are `pacsguard_dicom::fuzzing::inspect`, which `tests/fuzz_smoke.rs` in the
//! crate runs on every CI run over the seeds and their mutations: one function, two callers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pacsguard_dicom::fuzzing::inspect(data));
