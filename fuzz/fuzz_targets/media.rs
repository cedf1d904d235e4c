//! The media gate's readers on arbitrary bytes: the ISO 9660 reader (the bytes as a whole
//! image) and the DICOMDIR reader. No panic, no unbounded work, and every file the ISO
//! reader lists lies inside the image.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pacsguard_dicom::{dicomdir, iso};

fuzz_target!(|data: &[u8]| {
    if let Ok(listing) = iso::list(data) {
        for file in &listing.files {
            assert!(file.offset + file.size <= data.len() as u64, "{file:?}");
            let bytes = iso::read(data, file).expect("a listed file reads whole");
            assert_eq!(bytes.len() as u64, file.size);
        }
    }
    if let Ok(directory) = dicomdir::read(data) {
        for record in &directory.records {
            assert!(record.offset < data.len());
            if let Some(Ok(components)) = &record.components {
                assert!(components.iter().all(|c| c != ".." && !c.contains('/')));
            }
        }
    }
});
