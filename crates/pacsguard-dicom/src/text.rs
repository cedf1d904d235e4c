//! Whether a text value still reads as DICOM text: what an edit of a header leaves (a
//! corrected name, a merged patient) against what encryption or random overwriting of
//! its values leaves. PS3.5 §6.2 gives each text VR its repertoire: the VRs of codes,
//! dates, numbers and UIDs hold the default repertoire only (printable ASCII, padded
//! with a space or, for UIDs, NUL); the VRs of names and free text may hold any
//! character set's bytes, but no C0 control other than TAB, LF, FF, CR and ESC (the
//! code extension escape), nor DEL. Random bytes break either rule within a few bytes.

use dicom_core::VR;

/// VRs restricted to the default character repertoire.
fn restricted(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE | VR::AS | VR::CS | VR::DA | VR::DS | VR::DT | VR::IS | VR::TM | VR::UI
    )
}

/// VRs whose values may use a specific character set.
fn free(vr: VR) -> bool {
    matches!(
        vr,
        VR::LO | VR::LT | VR::PN | VR::SH | VR::ST | VR::UC | VR::UR | VR::UT
    )
}

/// Whether `value`, of text VR `vr`, holds a byte its VR's repertoire does not allow.
/// NUL is allowed everywhere (UI pads with it, and writers pad other strings with it
/// wrongly but harmlessly). Non-text VRs are never garbled.
pub fn is_garbled(vr: VR, value: &[u8]) -> bool {
    if restricted(vr) {
        value.iter().any(|&b| b != 0 && !(0x20..0x7f).contains(&b))
    } else if free(vr) {
        value
            .iter()
            .any(|&b| matches!(b, 0x01..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f))
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edited_text_reads_as_text_and_random_bytes_do_not() {
        assert!(!is_garbled(VR::PN, b"M\xfcller^J\xf6rg"));
        assert!(!is_garbled(VR::PN, b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"));
        assert!(!is_garbled(VR::LT, b"line one\r\nline two\tend"));
        assert!(!is_garbled(VR::UI, b"1.2.840.10008.5.1.4.1.1.2\0"));
        assert!(!is_garbled(VR::DA, b"20040119"));
        assert!(!is_garbled(VR::OB, b"\x01\x02\x03"));
        assert!(is_garbled(VR::DA, b"2004\x8a119"));
        assert!(is_garbled(VR::CS, b"O\x07"));
        assert!(is_garbled(VR::LO, b"GE MEDICAL\x02SYSTEMS"));
        assert!(is_garbled(VR::PN, b"Doe\x7fJane"));
    }
}
