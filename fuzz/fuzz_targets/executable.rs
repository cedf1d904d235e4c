//! Executable confirmation (PE, ELF, Mach-O through goblin, behind our header checks) on
//! arbitrary bytes: no panic, no unbounded work, and a confirmation always names a format
//! a loader runs (native executables, Java classes, Python bytecode).
//!
//! The checks are `pacsguard_dicom::fuzzing::executable`, which `tests/fuzz_smoke.rs` in the
//! crate runs on every CI run over the seeds and their mutations: one function, two callers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pacsguard_dicom::fuzzing::executable(data));
