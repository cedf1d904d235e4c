//! Office containers that are whole files (OLE compound files, RTF, Microsoft Cabinet),
//! judged by what they carry: none of them runs by being opened, but Word and Excel run
//! a document's macros, a packaged OLE object runs the file it holds when clicked, RTF
//! `\objdata` embeds such an object (or the equation editor that CVE-2017-11882 took
//! over), and a cabinet's `.exe`/`.inf` runs when it is expanded and installed. A report
//! saved as `.doc`, a cabinet of fonts, run nothing: the not-DICOM warning, not an alert.

use crate::format::u16_le;
use crate::format::u32_le;

mod biff_crypt;
mod compound;

/// What a container carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Carries {
    /// What runs, named.
    Runs(String),
    /// Nothing that runs; one phrase saying what was looked at.
    Inert(String),
    /// It could not be read far enough to tell (a limit, or damage).
    CannotTell(String),
}

/// CFFILE entries of a cabinet read; past it, the verdict is "not inspected" (a
/// warning), never "inert".
pub const MAX_CAB_FILES_READ: usize = 50_000;

/// Bytes of a CFFILE entry's name searched for its closing NUL: MS-CAB 2.3 allows a name
/// of at most 256 bytes (`CB_MAX_FILENAME`) and its NUL. Past it the entry is damaged,
/// and the search of a chance or hostile header never runs on to the end of the file
/// (what a candidate is charged to the per-file budget assumes this bound).
pub const MAX_CAB_NAME_BYTES: usize = 257;

/// Stream and storage names in an OLE directory that mean code runs when the document
/// is opened or its object is activated: VBA macros (`_VBA_PROJECT` in Word's `Macros`
/// and Excel's `_VBA_PROJECT_CUR` storages), a packaged file (`\x01Ole10Native`).
/// Directory entries hold names in UTF-16LE.
const OLE_RUNNING_NAMES: [(&str, &str); 2] = [
    ("_VBA_PROJECT", "VBA macros, which Word and Excel run"),
    (
        "\u{1}Ole10Native",
        "a packaged file (Ole10Native), which runs when its icon is clicked",
    ),
];

pub(crate) fn ole(bytes: &[u8]) -> Carries {
    // Excel 4.0 (XLM) macros live on macro sheets, which Excel runs from an `Auto_Open`
    // name when the workbook opens: no VBA stream is involved, so no name gives them away.
    let readings = compound::stream(bytes, &["Workbook", "Book"]);
    let sheets = readings
        .iter()
        .filter_map(|workbook| xlm_macro_sheet(workbook))
        .min_by_key(|sheets| matches!(sheets, Sheets::Encrypted(_)));
    match sheets {
        Some(Sheets::Macro(sheet, encrypted)) => {
            let how = if encrypted {
                format!(
                    " in a workbook encrypted with Excel's default password (\"{}\"), which Excel opens without asking",
                    biff_crypt::EXCEL_DEFAULT_PASSWORD
                )
            } else {
                String::new()
            };
            return Carries::Runs(format!(
                "an Excel 4.0 (XLM) macro sheet \"{sheet}\"{how}, whose formulas (EXEC, CALL, REGISTER) Excel runs when the workbook opens"
            ));
        }
        Some(Sheets::Encrypted(locked)) => {
            let why = match locked {
                biff_crypt::Locked::OtherPassword => {
                    "with a password other than Excel's default (Excel asks for it)".to_owned()
                }
                biff_crypt::Locked::NotDecrypted(how) => {
                    format!("by {how}, which is not decrypted here")
                }
            };
            return Carries::CannotTell(format!(
                "an Excel workbook encrypted {why} (FILEPASS): the types of its sheets (macro sheets among them) are encrypted"
            ));
        }
        None => {}
    }
    // A compound file looks names up without case (MS-CFB 2.6.4 compares them upper-cased),
    // so a `_vba_project` stream is the macros Office runs: compared lower-cased.
    let lower = bytes.to_ascii_lowercase();
    for (name, what) in OLE_RUNNING_NAMES {
        let wide: Vec<u8> = name
            .to_ascii_lowercase()
            .bytes()
            .flat_map(|b| [b, 0])
            .collect();
        if memchr::memmem::find(&lower, &wide).is_some() {
            return Carries::Runs(what.to_owned());
        }
    }
    Carries::Inert(
        "an OLE compound file (a Word, Excel or other Office document) with no macros and no packaged file".to_owned(),
    )
}

/// The first Excel 4.0 macro sheet a BIFF5/BIFF8 workbook stream declares (or that it is
/// encrypted with a password Excel asks for before one could be read): a BOUNDSHEET
/// record (0x0085) whose sheet type is 1 ([MS-XLS] 2.4.28; olevba's plugin_biff calls it
/// "Excel 4.0 macro sheet"). Records are walked in order, as Excel reads them; the walk
/// ends at the first record that runs past the stream. Past a FILEPASS record the records
/// are encrypted: with Excel's default password they are decrypted as Excel does
/// ([`biff_crypt`]), and the walk goes on.
fn xlm_macro_sheet(workbook: &[u8]) -> Option<Sheets> {
    const BOUNDSHEET: u16 = 0x0085;
    const FILEPASS: u16 = 0x002F;
    const MACRO_SHEET: u8 = 1;
    let mut decryptor: Option<biff_crypt::Decryptor> = None;
    let mut at = 0usize;
    while let (Some(id), Some(len)) = (u16_le(workbook, at), u16_le(workbook, at + 2)) {
        let data = workbook.get(at + 4..at + 4 + usize::from(len))?;
        if id == FILEPASS && decryptor.is_none() {
            // What follows is encrypted ([MS-XLS] 2.2.10), a sheet's type included.
            match biff_crypt::Decryptor::with_default_password(data) {
                Ok(opened) => decryptor = Some(opened),
                Err(locked) => return Some(Sheets::Encrypted(locked)),
            }
        } else if id == BOUNDSHEET {
            let mut data = data.to_vec();
            if let Some(decryptor) = decryptor.as_mut() {
                decryptor.record(id, at + 4, &mut data);
            }
            if data.get(5) == Some(&MACRO_SHEET) {
                // BIFF8: cch, fHighByte, characters; BIFF5: cch, characters.
                let name = data.get(8..).or(data.get(7..)).unwrap_or_default();
                let name = &name[..name.len().min(64)];
                return Some(Sheets::Macro(
                    pacsguard_events::escape_bytes(name),
                    decryptor.is_some(),
                ));
            }
        }
        at += 4 + usize::from(len);
    }
    None
}

/// What a workbook stream says about its sheets.
enum Sheets {
    /// A macro sheet, by name, and whether the workbook was encrypted with Excel's
    /// default password.
    Macro(String, bool),
    /// The stream is encrypted from its FILEPASS record on, and not with Excel's default
    /// password: the sheet types cannot be read.
    Encrypted(biff_crypt::Locked),
}

/// OLE classes whose objects run code when an RTF document is opened: a package (the file
/// it holds) and Equation Editor 3.0 (CVE-2017-11882, run by merely opening the document).
/// Word reads the class from `\objclass` or from the OLE1 header inside `\objdata`, where
/// it is hex: both are looked for.
const RTF_RUNNING_CLASSES: [&str; 2] = ["Package", "Equation.3"];

pub(crate) fn rtf(bytes: &[u8]) -> Carries {
    let lower = bytes.to_ascii_lowercase();
    if memchr::memmem::find(&lower, b"\\objdata").is_none() {
        return Carries::Inert("an RTF document with no embedded object (\\objdata)".to_owned());
    }
    // Hex digits in \objdata may be split by line breaks: compare without them.
    let digits: Vec<u8> = lower
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .collect();
    // The hex decoded at both alignments, in lower case: Windows looks a class name up in
    // the registry, whose keys ignore case (`EQUATION.3` opens the equation editor), so
    // the hex of one spelling is not enough.
    let mut decoded = vec![hex_decoded(&digits, 0), hex_decoded(&digits, 1)];
    // And each `\objdata` as Word reads it, its digits split by groups and control words.
    decoded.extend(objdata_hex(&lower).iter().map(|hex| hex_decoded(hex, 0)));
    for name in RTF_RUNNING_CLASSES {
        let class = name.to_ascii_lowercase();
        let named = decoded
            .iter()
            .any(|d| memchr::memmem::find(d, class.as_bytes()).is_some())
            || memchr::memmem::find(&digits, format!("\\objclass{class}").as_bytes()).is_some();
        if named {
            return Carries::Runs(format!(
                "an embedded OLE object of class {name} (\\objdata), which runs when the document is opened or the object clicked"
            ));
        }
    }
    Carries::Inert(
        "an RTF document whose embedded objects are no package and no equation editor object"
            .to_owned(),
    )
}

/// The hex digits of each `\objdata` destination in `lower` (an RTF document in lower
/// case) as Word reads them: the digits of the destination's own group, where Word skips
/// whitespace, control words, `\binN` data and whole groups between digits (oletools'
/// rtfobj: "MS Word also allows ANY RTF-style tag {*} in between"). One pass over the
/// document whatever the number of destinations (review s19-r10).
fn objdata_hex(lower: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = lower
        .get(from..)
        .and_then(|rest| memchr::memmem::find(rest, b"\\objdata"))
    {
        let at = from + found;
        if lower
            .get(at + b"\\objdata".len())
            .is_some_and(u8::is_ascii_alphabetic)
        {
            from = at + b"\\objdata".len(); // a longer control word
            continue;
        }
        // Past the word, its parameter (`\objdata1`) and its delimiter: no object digits.
        let mut i = control_word(lower, at).0;
        let mut hex = Vec::new();
        let mut depth = 0usize;
        while let Some(&b) = lower.get(i) {
            match b {
                b'{' => depth += 1,
                b'}' if depth == 0 => break,
                b'}' => depth -= 1,
                b'\\' => {
                    let (end, binary) = control_word(lower, i);
                    let to = end.saturating_add(binary).min(lower.len());
                    if depth == 0 {
                        // `\binN`: N raw bytes of the object (rtfobj reads them so).
                        let raw = lower.get(end..to).unwrap_or_default();
                        hex.extend(raw.iter().flat_map(|b| {
                            let digit = |d: u8| b"0123456789abcdef"[usize::from(d)];
                            [digit(b >> 4), digit(b & 15)]
                        }));
                    }
                    i = to;
                    continue;
                }
                b if depth == 0 && b.is_ascii_hexdigit() => hex.push(b),
                _ => {}
            }
            i += 1;
        }
        out.push(hex);
        from = i;
    }
    out
}

/// The control word or symbol at the backslash at `i` in `lower`: where it ends (past its
/// space delimiter) and, for `\binN`, the N bytes of binary data that follow it. Letters
/// are read in either case: the object search hands lower-cased text and the document's
/// end search ([`crate::embedded`]'s `rtf_end`) the bytes as written, and both must read
/// `\BIN4` alike (session 20: the end search took it for a symbol and ended the
/// document at braces inside its data, before an object the other walker found).
pub(crate) fn control_word(lower: &[u8], i: usize) -> (usize, usize) {
    let letters = lower
        .get(i + 1..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    if letters == 0 {
        return (i + 2, 0); // a control symbol: `\{`, `\*`, `\'`
    }
    let mut end = i + 1 + letters;
    let negative = lower.get(end) == Some(&b'-');
    let digits_from = end + usize::from(negative);
    let digits = lower
        .get(digits_from..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > 0 {
        end = digits_from + digits;
    }
    let binary =
        if lower[i + 1..i + 1 + letters].eq_ignore_ascii_case(b"bin") && !negative && digits > 0 {
            // Word reads up to 250 digits, leading zeros included (rtfobj).
            let number = &lower[digits_from..end];
            let significant = number.iter().skip_while(|&&d| d == b'0').count();
            if significant > 19 {
                usize::MAX
            } else {
                std::str::from_utf8(number)
                    .ok()
                    .and_then(|n| n.parse::<u64>().ok())
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(usize::MAX)
            }
        } else {
            0
        };
    if lower.get(end) == Some(&b' ') {
        end += 1;
    }
    (end, binary)
}

/// Pairs of hex digits from `from` decoded to bytes, lower-cased (a pair that is not two
/// hex digits gives a NUL): what an `\objdata` holds, whatever its case.
fn hex_decoded(digits: &[u8], from: usize) -> Vec<u8> {
    let value = |d: u8| (d as char).to_digit(16);
    digits
        .get(from..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| match (value(pair[0]), value(pair[1])) {
            (Some(high), Some(low)) => u8::try_from(high * 16 + low)
                .unwrap_or(0)
                .to_ascii_lowercase(),
            _ => 0,
        })
        .collect()
}

/// A cabinet's file list (MS-CAB 2.1, 2.3): an entry named like a program (`.exe`,
/// `.inf` and the other runnable extensions) runs when the cabinet is expanded and
/// installed.
pub(crate) fn cab(bytes: &[u8]) -> Carries {
    let broken = || Carries::CannotTell("its file list could not be read".to_owned());
    let (Some(first_file), Some(files), Some(flags)) =
        (u32_le(bytes, 16), u16_le(bytes, 28), u16_le(bytes, 30))
    else {
        return broken();
    };
    let _ = flags; // the reserved fields sit before the folders, not the files
    let Ok(mut at) = usize::try_from(first_file) else {
        return broken();
    };
    for read in 0..usize::from(files) {
        if read >= MAX_CAB_FILES_READ {
            return Carries::CannotTell(format!(
                "more than {MAX_CAB_FILES_READ} files (MAX_CAB_FILES_READ)"
            ));
        }
        let name_start = at + 16;
        let Some(name_len) = bytes
            .get(name_start..)
            .and_then(|r| memchr::memchr(0, &r[..r.len().min(MAX_CAB_NAME_BYTES)]))
        else {
            return Carries::CannotTell(format!(
                "a file name without its end within {MAX_CAB_NAME_BYTES} bytes (MAX_CAB_NAME_BYTES), or past the end"
            ));
        };
        let name = &bytes[name_start..name_start + name_len];
        let lower = name.to_ascii_lowercase();
        let (_, extension) = crate::format::written_base(&lower, b'\\');
        let runs = extension.is_some_and(|e| {
            e == "inf" || crate::format::RUNNABLE_EXTENSIONS.contains(&e.as_str())
        });
        if runs {
            return Carries::Runs(format!(
                "\"{}\", a program a cabinet installs",
                pacsguard_events::escape_bytes(&name[..name.len().min(64)])
            ));
        }
        at = name_start + name_len + 1;
    }
    Carries::Inert(format!(
        "a cabinet of {files} file(s), none named like a program"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cab_of(names: &[&str]) -> Vec<u8> {
        let mut cab = b"MSCF\0\0\0\0".to_vec();
        cab.resize(36, 0);
        cab[16..20].copy_from_slice(&36u32.to_le_bytes());
        cab[28..30].copy_from_slice(&(names.len() as u16).to_le_bytes());
        for name in names {
            cab.extend_from_slice(&[0u8; 16]);
            cab.extend_from_slice(name.as_bytes());
            cab.push(0);
        }
        cab
    }

    #[test]
    fn a_cabinet_runs_when_it_holds_a_program() {
        assert!(matches!(
            cab(&cab_of(&["a.ttf", "setup.INF"])),
            Carries::Runs(_)
        ));
        assert!(matches!(cab(&cab_of(&["dir\\x.exe"])), Carries::Runs(_)));
        assert!(matches!(
            cab(&cab_of(&["a.ttf", "b.txt"])),
            Carries::Inert(_)
        ));
        let mut cut = cab_of(&["a.ttf", "b.txt"]);
        cut.truncate(cut.len() - 3);
        assert!(matches!(cab(&cut), Carries::CannotTell(_)));
    }

    /// MAX_CAB_FILES_READ: that many files are read; a cabinet listing more is a
    /// warning.
    #[test]
    fn cabinet_files_at_the_limit_are_read_and_past_it_are_a_warning() {
        let names = vec!["f.txt"; MAX_CAB_FILES_READ];
        assert_eq!(
            cab(&cab_of(&names)),
            Carries::Inert(format!(
                "a cabinet of {MAX_CAB_FILES_READ} file(s), none named like a program"
            ))
        );
        let names = vec!["f.txt"; MAX_CAB_FILES_READ + 1];
        assert!(
            matches!(cab(&cab_of(&names)), Carries::CannotTell(r) if r.contains("MAX_CAB_FILES_READ"))
        );
    }

    /// MAX_CAB_NAME_BYTES: a name of 256 bytes and its NUL is read; one byte more, and
    /// the entry is damaged (before, the search ran on to the end of the bytes, on every
    /// candidate header, charged as if it had stopped at 257).
    #[test]
    fn cabinet_names_at_the_limit_are_read_and_past_it_are_not() {
        let at_limit = format!("{}.exe", "a".repeat(MAX_CAB_NAME_BYTES - 1 - 4));
        assert!(matches!(cab(&cab_of(&[&at_limit])), Carries::Runs(_)));
        let past = format!("{}.exe", "a".repeat(MAX_CAB_NAME_BYTES - 4));
        assert!(
            matches!(cab(&cab_of(&[&past])), Carries::CannotTell(r) if r.contains("MAX_CAB_NAME_BYTES"))
        );
    }

    #[test]
    fn rtf_objects_run_when_they_are_packages_or_equations() {
        let package = b"{\\rtf1{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105000002000000\n08000000\n5061636b\n61676500}}}";
        assert!(matches!(rtf(package), Carries::Runs(_)));
        let equation = b"{\\rtf1{\\object\\objupdate{\\*\\objdata 01050000020000000b0000004571756174696f6e2e3300}}}";
        assert!(matches!(rtf(equation), Carries::Runs(_)));
        // Class names are looked up case-insensitively (review s6-r10): EQUATION.3 and
        // "package" run as Equation.3 and Package do, in hex of either case.
        let shouting = b"{\\rtf1{\\object\\objupdate{\\*\\objdata 01050000020000000b0000004551554154494F4E2E3300}}}";
        assert!(matches!(rtf(shouting), Carries::Runs(_)));
        let lower = b"{\\rtf1{\\object{\\*\\objdata 0105000002000000080000007061636b\n61676500}}}";
        assert!(matches!(rtf(lower), Carries::Runs(_)));
        assert!(matches!(
            rtf(b"{\\rtf1\\ansi Report text\\par}"),
            Carries::Inert(_)
        ));
        let picture =
            b"{\\rtf1{\\object{\\*\\objclass Paint.Picture}{\\*\\objdata 0105000002000000}}}";
        assert!(matches!(rtf(picture), Carries::Inert(_)));
    }
}
