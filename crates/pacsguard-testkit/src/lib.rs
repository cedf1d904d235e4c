//! Fixtures for tests and benchmarks: DICOM files built byte by byte, executables planted
//! the way CVE-2019-11687 polyglots are built, and where the real sample files are.
//!
//! Real data comes first: the sample files of pydicom and pynetdicom and the PE launchers
//! in pip's wheel are downloaded by `scripts/setup-test-deps.sh` into `.testdata/wheels`.
//! The builder exists for what no real file shows: a chosen preamble, a chosen element.
#![allow(clippy::disallowed_methods)]

pub mod postgres;

use std::path::{Path, PathBuf};

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const ENCAPSULATED_PDF_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.1";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

/// The checkout's `.testdata` directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.testdata")
}

/// pydicom 3.0.2's `test_files` directory.
pub fn pydicom_files() -> PathBuf {
    testdata().join("wheels/pydicom/pydicom/data/test_files")
}

/// pynetdicom 3.0.4's sample DICOM files.
pub fn pynetdicom_files() -> PathBuf {
    testdata().join("wheels/pynetdicom/pynetdicom/tests/dicom_files")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/setup-test-deps.sh first",
            path.display()
        )
    })
}

/// A real Windows PE written by others: distlib's 64-bit console launcher from pip's wheel.
pub fn real_pe() -> Vec<u8> {
    read(&testdata().join("wheels/pip/pip/_vendor/distlib/t64.exe"))
}

/// A real ELF executable from this machine.
pub fn real_elf() -> Vec<u8> {
    read(Path::new("/bin/true"))
}

/// A real DICOM file from pydicom's samples, by name (`CT_small.dcm`).
pub fn pydicom_sample(name: &str) -> Vec<u8> {
    read(&pydicom_files().join(name))
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/setup-test-deps.sh first",
                dir.display()
            )
        });
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    files
}

/// The pixel data of a built file.
#[derive(Clone, Debug)]
pub enum Pixels {
    Native(Vec<u8>),
    /// Fragments of encapsulated pixel data (an empty offset table is written first).
    Encapsulated(Vec<Vec<u8>>),
}

/// One element to write: tag, VR, value.
type Element = ((u16, u16), [u8; 2], Vec<u8>);

/// Builds an Explicit VR Little Endian Part 10 file element by element.
#[derive(Clone, Debug)]
pub struct DicomBuilder {
    preamble: [u8; 128],
    transfer_syntax: String,
    sop_class: String,
    sop_instance: String,
    elements: Vec<Element>,
    pixels: Option<Pixels>,
}

impl DicomBuilder {
    /// A small CT image: patient, study and series identifiers and 16×16 16-bit pixels.
    pub fn ct(sop_instance: &str) -> Self {
        let mut pixels = Vec::with_capacity(512);
        for i in 0..256u16 {
            pixels.extend_from_slice(&(i * 7 % 4096).to_le_bytes());
        }
        DicomBuilder {
            preamble: [0; 128],
            transfer_syntax: EXPLICIT_VR_LE.to_owned(),
            sop_class: CT_IMAGE_STORAGE.to_owned(),
            sop_instance: sop_instance.to_owned(),
            elements: Vec::new(),
            pixels: Some(Pixels::Native(pixels)),
        }
        .element(0x0008, 0x0060, *b"CS", b"CT")
        .element(0x0010, 0x0010, *b"PN", b"DOE^JANE")
        .element(0x0010, 0x0020, *b"LO", b"PG-0001")
        .element(0x0020, 0x000D, *b"UI", b"1.2.826.0.1.3680043.10.1137.1")
        .element(0x0020, 0x000E, *b"UI", b"1.2.826.0.1.3680043.10.1137.1.1")
        .element(0x0028, 0x0010, *b"US", &16u16.to_le_bytes())
        .element(0x0028, 0x0011, *b"US", &16u16.to_le_bytes())
        .element(0x0028, 0x0100, *b"US", &16u16.to_le_bytes())
    }

    /// An Encapsulated PDF instance (no pixel data) carrying `pdf` in (0042,0011).
    pub fn encapsulated_pdf(sop_instance: &str, pdf: &[u8]) -> Self {
        let mut builder = DicomBuilder::ct(sop_instance).without_pixels();
        builder.sop_class = ENCAPSULATED_PDF_STORAGE.to_owned();
        builder.element(0x0042, 0x0011, *b"OB", pdf).element(
            0x0042,
            0x0012,
            *b"LO",
            b"application/pdf",
        )
    }

    pub fn preamble(mut self, bytes: &[u8]) -> Self {
        self.preamble = [0; 128];
        let len = bytes.len().min(128);
        self.preamble[..len].copy_from_slice(&bytes[..len]);
        self
    }

    pub fn transfer_syntax(mut self, uid: &str) -> Self {
        self.transfer_syntax = uid.to_owned();
        self
    }

    /// Adds (or replaces) an element; values are padded to even length as DICOM requires.
    pub fn element(mut self, group: u16, element: u16, vr: [u8; 2], value: &[u8]) -> Self {
        self.elements.retain(|(tag, _, _)| *tag != (group, element));
        self.elements.push(((group, element), vr, value.to_vec()));
        self
    }

    pub fn pixels(mut self, pixels: Pixels) -> Self {
        if matches!(pixels, Pixels::Encapsulated(_)) && self.transfer_syntax == EXPLICIT_VR_LE {
            self.transfer_syntax = JPEG_BASELINE.to_owned();
        }
        self.pixels = Some(pixels);
        self
    }

    pub fn without_pixels(mut self) -> Self {
        self.pixels = None;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut meta = Vec::new();
        write_element(&mut meta, (0x0002, 0x0001), *b"OB", &[0, 1]);
        write_element(
            &mut meta,
            (0x0002, 0x0002),
            *b"UI",
            self.sop_class.as_bytes(),
        );
        write_element(
            &mut meta,
            (0x0002, 0x0003),
            *b"UI",
            self.sop_instance.as_bytes(),
        );
        write_element(
            &mut meta,
            (0x0002, 0x0010),
            *b"UI",
            self.transfer_syntax.as_bytes(),
        );
        write_element(
            &mut meta,
            (0x0002, 0x0012),
            *b"UI",
            b"1.2.826.0.1.3680043.10.1137",
        );
        let mut file = self.preamble.to_vec();
        file.extend_from_slice(b"DICM");
        write_element(
            &mut file,
            (0x0002, 0x0000),
            *b"UL",
            &(meta.len() as u32).to_le_bytes(),
        );
        file.extend_from_slice(&meta);

        let mut elements = self.elements.clone();
        elements.push(((0x0008, 0x0016), *b"UI", self.sop_class.as_bytes().to_vec()));
        elements.push((
            (0x0008, 0x0018),
            *b"UI",
            self.sop_instance.as_bytes().to_vec(),
        ));
        elements.sort_by_key(|(tag, _, _)| *tag);
        for (tag, vr, value) in &elements {
            write_element(&mut file, *tag, *vr, value);
        }
        match &self.pixels {
            None => {}
            Some(Pixels::Native(bytes)) => {
                write_element(&mut file, (0x7FE0, 0x0010), *b"OW", bytes)
            }
            Some(Pixels::Encapsulated(fragments)) => {
                write_tag(&mut file, (0x7FE0, 0x0010));
                file.extend_from_slice(b"OB\0\0");
                file.extend_from_slice(&u32::MAX.to_le_bytes());
                write_item(&mut file, &[]);
                for fragment in fragments {
                    write_item(&mut file, fragment);
                }
                write_tag(&mut file, (0xFFFE, 0xE0DD));
                file.extend_from_slice(&0u32.to_le_bytes());
            }
        }
        file
    }
}

fn write_tag(out: &mut Vec<u8>, (group, element): (u16, u16)) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
}

fn write_item(out: &mut Vec<u8>, value: &[u8]) {
    write_tag(out, (0xFFFE, 0xE000));
    let padded = value.len() + value.len() % 2;
    out.extend_from_slice(&(padded as u32).to_le_bytes());
    out.extend_from_slice(value);
    if value.len() % 2 == 1 {
        out.push(0);
    }
}

/// Writes one Explicit VR Little Endian element, padding the value to even length.
pub fn write_element(out: &mut Vec<u8>, tag: (u16, u16), vr: [u8; 2], value: &[u8]) {
    let padded = value.len() + value.len() % 2;
    write_tag(out, tag);
    out.extend_from_slice(&vr);
    let long = matches!(
        &vr,
        b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"UC" | b"UN" | b"UR" | b"UT"
    );
    if long {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(padded as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(padded as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
    if value.len() % 2 == 1 {
        // UI values are padded with NUL, text with a space, binary with NUL.
        out.push(if matches!(&vr, b"UI" | b"OB" | b"OW" | b"UN") {
            0
        } else {
            b' '
        });
    }
}

/// Plants `pe` in an Explicit VR Little Endian DICOM file the way CVE-2019-11687 polyglots
/// are built: the PE goes into a private OB element just before the Pixel Data, its DOS
/// header into the preamble, and `e_lfanew` is moved to point at the PE headers inside
/// that element, so Windows and DICOM readers both accept the file. `None` when the file
/// has no explicit-VR Pixel Data element to plant before.
pub fn plant_pe_cve_2019_11687(dicom: &[u8], pe: &[u8]) -> Option<Vec<u8>> {
    let pixel_header = (0..dicom.len().saturating_sub(6)).rev().find(|&at| {
        dicom[at..at + 4] == [0xE0, 0x7F, 0x10, 0x00]
            && matches!(&dicom[at + 4..at + 6], b"OB" | b"OW")
    })?;
    let original_lfanew = u32::from_le_bytes(pe.get(0x3C..0x40)?.try_into().ok()?);
    let mut private = Vec::new();
    write_element(
        &mut private,
        (0x7FDF, 0x0010),
        *b"LO",
        b"PACSGUARD POLYGLOT",
    );
    let value_offset = pixel_header + private.len() + 12;
    write_element(&mut private, (0x7FDF, 0x1000), *b"OB", pe);
    let mut file = dicom[..pixel_header].to_vec();
    file.extend_from_slice(&private);
    file.extend_from_slice(&dicom[pixel_header..]);
    let mut preamble = pe.get(..128)?.to_vec();
    let moved = u32::try_from(value_offset)
        .ok()?
        .checked_add(original_lfanew)?;
    preamble[0x3C..0x40].copy_from_slice(&moved.to_le_bytes());
    file[..128].copy_from_slice(&preamble);
    Some(file)
}

/// A minimal PDF whose catalog carries `catalog_extra` (e.g. an `/OpenAction`).
pub fn pdf(catalog_extra: &str) -> Vec<u8> {
    format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R {catalog_extra} >>\nendobj\n\
         2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    .into_bytes()
}

/// A ZIP archive holding one stored file, built by hand (no compression, CRC left zero:
/// detection reads the directory, not the data).
pub fn zip_with(name: &str, content: &[u8]) -> Vec<u8> {
    let name = name.as_bytes();
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(name);
    zip.extend_from_slice(content);
    let directory = zip.len();
    zip.extend_from_slice(b"PK\x01\x02");
    zip.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&[0; 12]);
    zip.extend_from_slice(&0u32.to_le_bytes());
    zip.extend_from_slice(name);
    let directory_size = zip.len() - directory;
    zip.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    zip.extend_from_slice(&(directory_size as u32).to_le_bytes());
    zip.extend_from_slice(&(directory as u32).to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}

/// SQLite's rollback journal (sqlite.org/fileformat2.html, "The Rollback Journal": a
/// header padded to a 512-byte sector, then page number, page and checksum per page)
/// holding every page of `old`: what a writer killed inside its transaction leaves when
/// `old` was the store as it began, and what an intruder plants to roll a store back.
pub fn sqlite_journal_rolling_back_to(old: &[u8]) -> Vec<u8> {
    let page = match u16::from_be_bytes([old[16], old[17]]) {
        1 => 65_536,
        n => usize::from(n),
    };
    let pages = u32::try_from(old.len() / page).expect("pages");
    let nonce: u32 = 0x5eed_1e55;
    let mut journal = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    for field in [pages, nonce, pages, 512, u32::try_from(page).expect("page")] {
        journal.extend_from_slice(&field.to_be_bytes());
    }
    journal.resize(512, 0);
    for (number, data) in (1u32..).zip(old.chunks_exact(page)) {
        // SQLite's checksum: the nonce plus every 200th byte from the page's end.
        let mut sum = nonce;
        let mut i = page - 200;
        while i > 0 {
            sum = sum.wrapping_add(u32::from(data[i]));
            i = i.saturating_sub(200);
        }
        journal.extend_from_slice(&number.to_be_bytes());
        journal.extend_from_slice(data);
        journal.extend_from_slice(&sum.to_be_bytes());
    }
    journal
}
