//! The ZIP end-record confirmation (`trailing_zip`, and the search that finds archives in
//! element values) on arbitrary bytes: no panic, no unbounded work, and what it reports
//! lies inside the bytes given and starts with an end record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{Budget, Format, search_hidden, trailing_zip};

fuzz_target!(|data: &[u8]| {
    if let Some((at, detail)) = trailing_zip(data) {
        assert!(data[at..].starts_with(b"PK\x05\x06"), "{at}");
        std::hint::black_box(detail);
    }
    let mut budget = Budget::default();
    search_hidden(data, data, 0, &mut budget, |hidden| {
        assert!(hidden.offset < data.len());
        if hidden.format == Format::Zip {
            assert!(data[hidden.offset..].starts_with(b"PK\x05\x06"));
        }
        true
    });
});
