//! Executable confirmation (PE, ELF, Mach-O through goblin, behind our header checks) on
//! arbitrary bytes: no panic, no unbounded work, and a confirmation always names a format
//! a loader runs (native executables, Java classes, Python bytecode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{Format, confirm_executable, pe_headers, sniff};

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(sniff(data));
    std::hint::black_box(pe_headers(data));
    if let Some(exe) = confirm_executable(data) {
        assert!(
            matches!(
                exe.format,
                Format::Pe | Format::Elf | Format::MachO | Format::JavaClass | Format::PythonBytecode
            ),
            "{:?}",
            exe.format
        );
    }
});
