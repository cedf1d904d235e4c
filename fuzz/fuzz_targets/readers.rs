//! The whole-file readers' checks (the sh lexer, the batch line check, the markup search)
//! on arbitrary bytes: no panic, no unbounded work, offsets inside the bytes given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{find_active_markup, find_batch_command, find_shell_command};

fuzz_target!(|data: &[u8]| {
    for command in [find_shell_command(data), find_batch_command(data)]
        .into_iter()
        .flatten()
    {
        assert!(command.offset < data.len(), "{command:?}");
    }
    if let Some((offset, _)) = find_active_markup(data) {
        assert!(offset < data.len());
    }
});
