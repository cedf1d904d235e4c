//! Canary files: small DICOM instances PacsGuard writes into the one directory the
//! administrator names (`[watch] canary_dir`), and nowhere else. Nothing legitimate opens
//! them for writing; ransomware that walks the archive rewrites them among the first
//! (their names sort first and last). A touched canary is an alert at once.

use std::path::{Path, PathBuf};

use crate::error::EngineError;
use crate::files::OutDir;

/// Names sorting at the start, the middle and the end of a directory listing.
pub const CANARY_NAMES: [&str; 3] = [
    "000-pacsguard-canary.dcm",
    "mmm-pacsguard-canary.dcm",
    "zzz-pacsguard-canary.dcm",
];

/// Secondary Capture Image Storage; Explicit VR Little Endian.
const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";
const TRANSFER_SYNTAX: &str = "1.2.840.10008.1.2.1";

/// Creates the directory and any canary missing from it (never replacing a file), and
/// returns the canaries' paths. The directory chain is created and opened one component
/// at a time without following a link (a symlink on the way would send root-owned files
/// wherever it points), and each canary is created exclusively inside the directory
/// opened (`files::OutDir`), so a link planted there is never written through.
pub fn ensure_canaries(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let out = OutDir::open_or_create_all(dir, 0o755).map_err(|e| {
        EngineError::io(dir, format!("[watch] canary_dir: {e}; nothing was written"))
    })?;
    let mut paths = Vec::new();
    for name in CANARY_NAMES {
        if !out.contains(name) {
            let bytes = canary_instance()?;
            let mut file = out.create(name, 0o644)?;
            std::io::Write::write_all(&mut file, &bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| EngineError::io(dir.join(name), e))?;
        }
        paths.push(dir.join(name));
    }
    out.sync()?;
    Ok(paths)
}

/// An even-length UID value, padded with NUL as PS3.5 §9.1 says.
fn uid(value: &str) -> Vec<u8> {
    let mut bytes = value.as_bytes().to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes
}

/// One explicit-VR little-endian element with a 2-byte length.
fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"UN") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
}

/// A valid Part 10 instance with a random UID and 4 KiB of random 8-bit pixels.
fn canary_instance() -> Result<Vec<u8>, EngineError> {
    let mut random = [0u8; 16 + 4096];
    getrandom::fill(&mut random)
        .map_err(|e| EngineError::Usage(format!("no randomness for canary files: {e}")))?;
    let instance_uid = format!(
        "2.25.{}",
        u128::from_le_bytes(random[..16].try_into().unwrap_or_default())
    );
    let mut meta = Vec::new();
    element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    element(&mut meta, 0x0002, 0x0002, b"UI", &uid(SOP_CLASS));
    element(&mut meta, 0x0002, 0x0003, b"UI", &uid(&instance_uid));
    element(&mut meta, 0x0002, 0x0010, b"UI", &uid(TRANSFER_SYNTAX));
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    element(
        &mut out,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&meta);
    element(&mut out, 0x0008, 0x0016, b"UI", &uid(SOP_CLASS));
    element(&mut out, 0x0008, 0x0018, b"UI", &uid(&instance_uid));
    element(&mut out, 0x0010, 0x0010, b"PN", b"PACSGUARD^CANARY");
    element(&mut out, 0x0028, 0x0002, b"US", &1u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0004, b"CS", b"MONOCHROME2 ");
    element(&mut out, 0x0028, 0x0010, b"US", &64u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0011, b"US", &64u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0100, b"US", &8u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0101, b"US", &8u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0102, b"US", &7u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0103, b"US", &0u16.to_le_bytes());
    element(&mut out, 0x7FE0, 0x0010, b"OB", &random[16..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_are_valid_dicom_and_never_replace_a_file() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let dir = tmp.path().join("canary");
        let paths = ensure_canaries(&dir).expect("test fixture");
        assert_eq!(paths.len(), CANARY_NAMES.len());
        for path in &paths {
            let bytes = std::fs::read(path).expect("test fixture");
            let layout = pacsguard_dicom::layout(&bytes).expect("parses as DICOM");
            assert_eq!(layout.pixels.len(), 4096);
            let inspection = pacsguard_dicom::inspect(&bytes);
            assert!(inspection.is_readable_dicom());
            assert!(
                inspection.observations.is_empty(),
                "{:?}",
                inspection.observations
            );
        }
        std::fs::write(&paths[0], b"kept").expect("test fixture");
        ensure_canaries(&dir).expect("test fixture");
        assert_eq!(std::fs::read(&paths[0]).expect("test fixture"), b"kept");

        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("test fixture");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).expect("test fixture");
        let refused = ensure_canaries(&link.join("canary"));
        assert!(refused.is_err_and(|e| e.to_string().contains("symlink")));
        // Nothing created through the link (the canary directory used to be).
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("test fixture").count(),
            0
        );
    }
}
