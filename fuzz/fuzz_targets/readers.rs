//! The whole-file readers' checks (the sh model, the batch line check, the markup search,
//! gzip and tar opening) on arbitrary bytes: no panic, no unbounded work, offsets inside
//! the bytes given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{find_batch_command, find_markup, find_shell_command, open_archive};

fuzz_target!(|data: &[u8]| {
    for command in [find_shell_command(data), find_batch_command(data)]
        .into_iter()
        .flatten()
    {
        assert!(command.offset < data.len(), "{command:?}");
    }
    if let Some(markup) = find_markup(data) {
        assert!(markup.offset < data.len());
    }
    std::hint::black_box(open_archive(data));
});
