//! Whether a text value still reads as DICOM text: what an edit of a header leaves (a
//! corrected name, a merged patient) against what encryption or random overwriting of
//! its values leaves. PS3.5 §6.2 gives each text VR its repertoire: the VRs of codes,
//! dates, numbers and UIDs hold the default repertoire only (printable ASCII, padded
//! with a space or, for UIDs, NUL); the VRs of names and free text may hold any
//! character set's bytes, but no C0 control other than TAB, LF, FF, CR and ESC (the
//! code extension escape), nor DEL. Random bytes break either rule within a few bytes.
//! The VRs of UIDs, dates, times and numbers have a syntax besides (PS3.5 table 6.2-1):
//! digits and a few separators. Random bytes kept printable (a wiper that knows the
//! rule above) break it as surely; what real writers get wrong there (ACR-NEMA dates
//! with dots, times with colons, padding with spaces or NUL, a decimal comma) is allowed.

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

/// The bytes a value of a VR with a syntax of digits may hold besides digits, NUL, the
/// space (padding) and the backslash (between values): the standard's separators and
/// what real writers put there wrongly but harmlessly (ACR-NEMA's `1995.01.31` and
/// `12:30:00`, a decimal comma). `None` for the VRs of free text in the default
/// repertoire (AE, CS), whose values may hold any printable byte.
fn syntax(vr: VR) -> Option<&'static [u8]> {
    match vr {
        VR::UI => Some(b"."),
        VR::DA => Some(b".-"),
        VR::TM => Some(b".:-"),
        VR::DT => Some(b".:+-"),
        VR::DS => Some(b"+-.eE,"),
        VR::IS => Some(b"+-"),
        VR::AS => Some(b"DWMY"),
        _ => None,
    }
}

/// Whether `value`, of a VR of UIDs, dates, times or numbers, holds a byte its syntax
/// does not allow (a printable one: see [`is_garbled`] for the others). One such value
/// may be a writer's mistake (pydicom's badVR.dcm holds IS `1A`); a wiper breaks them
/// all (see `MIN_MISFORMED_VALUES`).
pub fn breaks_syntax(vr: VR, value: &[u8]) -> bool {
    syntax(vr).is_some_and(|separators| {
        value.iter().any(|&b| {
            !(b.is_ascii_digit() || matches!(b, 0 | b' ' | b'\\') || separators.contains(&b))
        })
    }) || breaks_structure(vr, value)
}

/// Whether a UID, date or time of allowed bytes breaks its structure (review r23: a
/// wiper writing digits alone keeps every byte allowed). A UID is an OID: its first arc
/// is 0, 1 or 2, followed by a dot unless it is the whole UID (PS3.5 9.1). A date's month
/// is 01 to 12 and its day 01 to 31 (`00000000`, a placeholder real writers use, is
/// allowed); a time is `HH[MM[SS]][.F]` of at most six fraction digits, hours to 23,
/// minutes to 59, seconds to 60 (PS3.5 table 6.2-1). ACR-NEMA's dots in dates and colons
/// in times, ranges (`-`), several values and padding are allowed. Over the 198 real
/// files of `.testdata` one value breaks this (test-SR's Referenced SOP Instance UID
/// `9.8.7.6`), under `MIN_MISFORMED_VALUES`.
fn breaks_structure(vr: VR, value: &[u8]) -> bool {
    let values = value.split(|&b| b == b'\\').map(trim);
    match vr {
        VR::UI => values.into_iter().any(|v| {
            !v.is_empty() && !(matches!(v[0], b'0'..=b'2') && (v.len() == 1 || v[1] == b'.'))
        }),
        VR::DA => values
            .flat_map(|v| v.split(|&b| b == b'-'))
            .any(|d| !date(trim(d))),
        VR::TM => values
            .flat_map(|v| v.split(|&b| b == b'-'))
            .any(|t| !time(trim(t))),
        _ => false,
    }
}

/// `value` without the padding writers put around it (spaces, NULs).
fn trim(value: &[u8]) -> &[u8] {
    let pad = |b: &u8| matches!(b, 0 | b' ');
    let start = value.iter().position(|b| !pad(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !pad(b)).map_or(start, |e| e + 1);
    &value[start..end]
}

/// Whether `d` is an empty or a well-formed date (`YYYYMMDD`, or ACR-NEMA's `YYYY.MM.DD`).
fn date(d: &[u8]) -> bool {
    let digits: Vec<u8> = d.iter().copied().filter(|&b| b != b'.').collect();
    if digits.is_empty() || digits == b"00000000" {
        return true;
    }
    if digits.len() != 8 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let two = |at: usize| (digits[at] - b'0') * 10 + (digits[at + 1] - b'0');
    (1..=12).contains(&two(4)) && (1..=31).contains(&two(6))
}

/// Whether `t` is an empty or a well-formed time (`HH[MM[SS]][.F]`, or ACR-NEMA's
/// `HH:MM:SS`).
fn time(t: &[u8]) -> bool {
    let (whole, fraction) = match t.iter().position(|&b| b == b'.') {
        Some(at) => (&t[..at], Some(&t[at + 1..])),
        None => (t, None),
    };
    let digits: Vec<u8> = whole.iter().copied().filter(|&b| b != b':').collect();
    if digits.is_empty() && fraction.is_none() {
        return true;
    }
    if !matches!(digits.len(), 2 | 4 | 6) || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if let Some(f) = fraction
        && (!(1..=6).contains(&f.len()) || !f.iter().all(u8::is_ascii_digit))
    {
        return false;
    }
    let limits = [23, 59, 60];
    digits
        .chunks_exact(2)
        .zip(limits)
        .all(|(pair, most)| (pair[0] - b'0') * 10 + (pair[1] - b'0') <= most)
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

    /// Review r22: a wiper writing random printable bytes keeps every value in the
    /// default repertoire; a UID, a date, a time or a number of them breaks its syntax.
    /// What real writers put there (ACR-NEMA dates and times, padding, several values,
    /// a decimal comma, an age) does not.
    #[test]
    fn printable_noise_breaks_the_syntax_of_uids_dates_and_numbers() {
        for (vr, real) in [
            (
                VR::UI,
                &b"1.2.840.113619.2.1.1.322987881.621.736170080.681\0"[..],
            ),
            (VR::UI, b"1.2.3.4 "),
            (VR::DA, b"19950131"),
            (VR::DA, b"1995.01.31"),
            (VR::TM, b"123000.000000 "),
            (VR::TM, b"12:30:00"),
            (VR::DT, b"20040119123000.123+0100"),
            (VR::DS, b"-0.5\\1.25e-3 "),
            (VR::DS, b"1,5 "),
            (VR::IS, b"+12\\-3"),
            (VR::AS, b"042Y"),
            (VR::CS, b"ORIGINAL\\PRIMARY\\axial"),
            (VR::AE, b"STORESCP_1 "),
        ] {
            assert!(
                !is_garbled(vr, real) && !breaks_syntax(vr, real),
                "{vr:?} {real:?}"
            );
        }
        // What real writers write that the structure allows.
        for (vr, real) in [
            (
                VR::UI,
                &b"2.25.329800735698586629295641978511506172918\0"[..],
            ),
            (VR::UI, b"1.2.3\\1.2.4"),
            (VR::DA, b"00000000"),
            (VR::DA, b"20040101-20040131"),
            (VR::DA, b" "),
            (VR::TM, b"07"),
            (VR::TM, b"0727.5"),
            (VR::TM, b"235960.000001"),
            (VR::TM, b"120000-130000 "),
        ] {
            assert!(!breaks_syntax(vr, real), "{vr:?} {real:?}");
        }
        // Review r23: digits alone where real values were (`b'0' + b % 10`).
        for (vr, digits) in [
            (VR::UI, &b"19826201413680043101137311"[..]),
            (VR::UI, b"4.2.840.10008"),
            (VR::DA, b"20041319"),
            (VR::DA, b"20040100"),
            (VR::DA, b"2004011"),
            (VR::TM, b"072761"),
            (VR::TM, b"247230"),
            (VR::TM, b"0727301234567"),
            (VR::TM, b"07273"),
        ] {
            assert!(breaks_syntax(vr, digits), "{vr:?} {digits:?}");
        }
        // Printable noise of the values' lengths, as such a wiper writes it.
        for (vr, noise) in [
            (VR::UI, &b"1.2.840.1136#9.5.1.4"[..]),
            (VR::DA, b"2004O119"),
            (VR::TM, b"07!2:1"),
            (VR::DS, b"0.6 6x"),
            (VR::IS, b"w7"),
            (VR::AS, b"04;Y"),
        ] {
            assert!(
                !is_garbled(vr, noise) && breaks_syntax(vr, noise),
                "{vr:?} {noise:?}"
            );
        }
    }
}
