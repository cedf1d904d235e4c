//! The entropy-coded data of a sequential DCT JPEG frame (baseline SOF0, extended SOF1:
//! Huffman coding, 8 or 12 bits, or GDCM's 16), walked as a decoder reads it, without the inverse DCT
//! (issue 11, review of session 42: ciphertext written after a DCT frame's headers, a
//! `00` stuffed after each `FF` it holds, kept every marker [`super::bad_markers`]
//! looks at and was `info`, in place and under a new UID). An encoder writes, for each
//! 8 x 8 block, a DC category and AC run/size symbols from the frame's own Huffman
//! tables (ITU-T T.81 F.1.2): every code is one of the tables', no DC category passes
//! the precision's (11 at 8 bits, 15 at 12), no AC size passes its (10, 14), no run of
//! zeros passes coefficient 63, and the scan holds exactly the blocks the frame header
//! claims, a restart marker after each restart interval. Random bits read as such codes
//! break one of these within a few blocks (measured in the tests: a DC code the table
//! lacks or a run past 63 in the first blocks), and no encoder's scan breaks any.
//!
//! Progressive, lossless and arithmetic-coded frames, a frame whose height is given by
//! a DNL marker, and headers this walk does not read (a table missing, a scan header
//! out of range) are not judged here.

/// Entropy-coded bytes of one file walked at most (all its frames): the frames are the
/// writer's to make many and large, and random bits break the walk within its first
/// bytes. Past it, the frames not walked are judged by their markers alone
/// ([`super::bad_markers`]); an honest multi-frame image of 2 MiB of scans or more is
/// walked that far.
pub const MAX_DCT_WALK_BYTES: usize = 2 << 20;

/// What in a DCT frame's scan no encoder writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Violation {
    /// A code none of the Huffman table's (`dc`: the DC table).
    NoSuchCode { block: u64, dc: bool },
    /// A DC difference category past the precision's.
    DcCategory { block: u64, category: u8 },
    /// An AC symbol undefined in a sequential scan (a zero size with a run other than
    /// 0 or 15), or a size past the precision's.
    AcSymbol { block: u64, symbol: u8 },
    /// A run of zero coefficients past the 63rd.
    RunPast63 { block: u64 },
    /// The scan ended (a marker) before the blocks the frame claims, at this MCU of
    /// that many.
    EndedEarly { mcu: u64, of: u64 },
    /// No restart marker (or the wrong one) after a restart interval of MCUs.
    NoRestart { mcu: u64 },
    /// A header decoders refuse (what is wrong in it): an attacker's way round the walk
    /// otherwise, since a header not read leaves the scan unjudged.
    Header(&'static str),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::NoSuchCode { block, dc } => write!(
                f,
                "block {block} holds a code its {} Huffman table lacks",
                if *dc { "DC" } else { "AC" }
            ),
            Violation::DcCategory { block, category } => write!(
                f,
                "block {block} holds a DC difference of category {category}, past its precision's"
            ),
            Violation::AcSymbol { block, symbol } => write!(
                f,
                "block {block} holds the AC symbol 0x{symbol:02x}, undefined in a sequential scan"
            ),
            Violation::RunPast63 { block } => {
                write!(f, "block {block} runs zero coefficients past the 63rd")
            }
            Violation::EndedEarly { mcu, of } => {
                write!(f, "its scan ends at MCU {mcu} of the {of} its frame claims")
            }
            Violation::Header(what) => write!(f, "its header holds {what}, which no decoder reads"),
            Violation::NoRestart { mcu } => {
                write!(
                    f,
                    "no restart marker follows MCU {mcu}, its restart interval's end"
                )
            }
        }
    }
}

/// A Huffman table as a decoder holds it (T.81 F.2.2.3): for each code length, the
/// highest code and where its symbols begin.
#[derive(Clone)]
struct Table {
    /// By length 1..=16 (index 0 unused): the first code, the count, the symbols' index.
    first: [u32; 17],
    count: [u32; 17],
    index: [usize; 17],
    symbols: Vec<u8>,
}

impl Table {
    /// From a DHT's 16 counts and its symbols; `None` when they overfill the code space.
    fn new(counts: &[u8], symbols: &[u8]) -> Option<Table> {
        let mut table = Table {
            first: [0; 17],
            count: [0; 17],
            index: [0; 17],
            symbols: symbols.to_vec(),
        };
        let (mut code, mut index) = (0u32, 0usize);
        for length in 1..=16 {
            let n = u32::from(counts[length - 1]);
            table.first[length] = code;
            table.count[length] = n;
            table.index[length] = index;
            code += n;
            index += n as usize;
            if code > 1 << length {
                return None;
            }
            code <<= 1;
        }
        (index == symbols.len()).then_some(table)
    }
}

/// The tables of T.81 K.3 (luminance: slot 0; chrominance: slot 1), which decoders
/// (libjpeg, `jpeg_decoder`) use for a scan naming a table its stream never defined
/// (Motion JPEG omits them): such a scan is walked against them, not let pass unread
/// (a header without DHT before stuffed ciphertext).
const DC_LUMINANCE: ([u8; 16], [u8; 12]) = (
    [
        0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ],
    [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B,
    ],
);
const DC_CHROMINANCE: ([u8; 16], [u8; 12]) = (
    [
        0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ],
    [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B,
    ],
);
const AC_LUMINANCE: ([u8; 16], [u8; 162]) = (
    [
        0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01,
        0x7D,
    ],
    [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52,
        0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
        0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3,
        0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
        0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ],
);
const AC_CHROMINANCE: ([u8; 16], [u8; 162]) = (
    [
        0x00, 0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02,
        0x77,
    ],
    [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
        0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18,
        0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4,
        0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
        0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
        0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ],
);

/// The K.3 table for `slot` of class `dc`, if T.81 gives one.
fn default_table(dc: bool, slot: u8) -> Option<Table> {
    match (dc, slot) {
        (true, 0) => Table::new(&DC_LUMINANCE.0, &DC_LUMINANCE.1),
        (true, 1) => Table::new(&DC_CHROMINANCE.0, &DC_CHROMINANCE.1),
        (false, 0) => Table::new(&AC_LUMINANCE.0, &AC_LUMINANCE.1),
        (false, 1) => Table::new(&AC_CHROMINANCE.0, &AC_CHROMINANCE.1),
        _ => None,
    }
}

/// A frame component: its id, sampling factors, and the tables its scan names.
#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: u8,
    v: u8,
}

/// The bits of a scan: bytes up to the next marker, `FF 00` read as `FF`.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    byte: u8,
    left: u8,
    /// The marker the data ended at (its code), once met.
    marker: Option<u8>,
    /// Bytes of the file's walk left ([`MAX_DCT_WALK_BYTES`]).
    budget: &'a mut usize,
}

/// Why reading bits stopped.
enum Stop {
    /// A marker came where data was asked.
    Marker,
    /// The walk's bytes were spent: no verdict.
    Spent,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, Stop> {
        if self.left == 0 {
            if self.marker.is_some() {
                return Err(Stop::Marker);
            }
            let (Some(&b), next) = (self.data.get(self.at), self.data.get(self.at + 1)) else {
                self.marker = Some(0);
                return Err(Stop::Marker);
            };
            if b == 0xFF {
                match next {
                    Some(0) => self.at += 2,
                    // A marker (fill bytes before it included): the scan's data ends.
                    _ => {
                        self.marker = Some(self.marker_at());
                        return Err(Stop::Marker);
                    }
                }
            } else {
                self.at += 1;
            }
            if *self.budget == 0 {
                return Err(Stop::Spent);
            }
            *self.budget -= 1;
            self.byte = b;
            self.left = 8;
        }
        self.left -= 1;
        Ok(u32::from(self.byte >> self.left) & 1)
    }

    fn bits(&mut self, n: u8) -> Result<(), Stop> {
        for _ in 0..n {
            self.bit()?;
        }
        Ok(())
    }

    /// The code of the marker at `at` (past fill bytes), leaving `at` on its `FF`.
    fn marker_at(&mut self) -> u8 {
        while self.data.get(self.at + 1) == Some(&0xFF) {
            self.at += 1;
        }
        self.data.get(self.at + 1).copied().unwrap_or(0)
    }

    /// Drops the bits left of the byte under way and reads the marker that must come
    /// next; `None` when data comes instead.
    fn align_to_marker(&mut self) -> Option<u8> {
        self.left = 0;
        if let Some(m) = self.marker {
            return Some(m);
        }
        match (self.data.get(self.at), self.data.get(self.at + 1)) {
            (Some(0xFF), Some(&next)) if next != 0 => {
                let m = self.marker_at();
                self.marker = Some(m);
                Some(m)
            }
            (None, _) => {
                self.marker = Some(0);
                Some(0)
            }
            _ => None,
        }
    }

    /// Past the marker met (at `at`): the next restart interval's data follows.
    fn past_restart(&mut self) {
        self.at += 2;
        self.marker = None;
        self.left = 0;
    }

    fn decode(&mut self, table: &Table) -> Result<Option<u8>, Stop> {
        let mut code = 0u32;
        for length in 1..=16 {
            code = (code << 1) | self.bit()?;
            let offset = code.wrapping_sub(table.first[length]);
            if code >= table.first[length] && offset < table.count[length] {
                return Ok(table
                    .symbols
                    .get(table.index[length] + offset as usize)
                    .copied());
            }
        }
        Ok(None)
    }
}

/// The first thing in the sequential DCT frame `frame` (from its SOI) that no encoder
/// writes ([`Violation`]), walking its scans while `budget` (bytes of scan data) lasts;
/// `None` when it holds none, or it is not judged here (see the module's note).
pub(super) fn violation(frame: &[u8], budget: &mut usize) -> Option<Violation> {
    let mut dc: [Option<Table>; 4] = [None, None, None, None];
    let mut ac: [Option<Table>; 4] = [None, None, None, None];
    let mut components: Vec<Component> = Vec::new();
    let (mut width, mut height, mut precision) = (0u32, 0u32, 0u8);
    let mut restart = 0u32;
    let mut block = 0u64;
    let mut at = 2usize; // past SOI
    loop {
        let (Some(&0xFF), Some(&marker)) = (frame.get(at), frame.get(at + 1)) else {
            return None;
        };
        if marker == 0xFF {
            at += 1; // fill
            continue;
        }
        if marker == 0xD9 {
            return None; // EOI
        }
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            return None; // a marker with no length, out of a scan: not read here
        }
        let length = usize::from(u16::from_be_bytes([
            *frame.get(at + 2)?,
            *frame.get(at + 3)?,
        ]));
        let segment = frame.get(at + 4..at + 2 + length)?;
        match marker {
            0xC0 | 0xC1 => {
                precision = *segment.first()?;
                height = u32::from(u16::from_be_bytes([*segment.get(1)?, *segment.get(2)?]));
                width = u32::from(u16::from_be_bytes([*segment.get(3)?, *segment.get(4)?]));
                let n = usize::from(*segment.get(5)?);
                components = (0..n)
                    .map(|i| {
                        let c = segment.get(6 + 3 * i..9 + 3 * i)?;
                        Some(Component {
                            id: c[0],
                            h: c[1] >> 4,
                            v: c[1] & 0x0F,
                        })
                    })
                    .collect::<Option<_>>()?;
                let sampling_ok = components
                    .iter()
                    .all(|c| (1..=4).contains(&c.h) && (1..=4).contains(&c.v));
                // Precisions past T.81's 8 and 12 are read too: GDCM's lossy JPEG of a
                // 16-bit image codes 16 (IJG's 16-bit build), its categories growing
                // with it.
                if !(8..=16).contains(&precision) {
                    return Some(Violation::Header("a sample precision no DCT coder writes"));
                }
                if width == 0 || !sampling_ok {
                    return Some(Violation::Header(
                        "no width, or a sampling factor past 1 to 4",
                    ));
                }
                // A DNL's height (given after the first scan): not judged.
                if height == 0 {
                    return None;
                }
            }
            // Any other frame: progressive, lossless, arithmetic, hierarchical.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xF7 => return None,
            0xC4 => {
                let mut s = segment;
                while let Some((&class_id, rest)) = s.split_first() {
                    let counts = rest.get(..16)?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = rest.get(16..16 + n)?;
                    let bad = Violation::Header("a Huffman table no encoder writes");
                    let Some(table) = Table::new(counts, symbols) else {
                        return Some(bad); // its codes overfill their lengths
                    };
                    let slot = usize::from(class_id & 0x0F);
                    let place = match class_id >> 4 {
                        0 => dc.get_mut(slot),
                        1 => ac.get_mut(slot),
                        _ => None,
                    };
                    let Some(place) = place else {
                        return Some(bad);
                    };
                    *place = Some(table);
                    s = &rest[16 + n..];
                }
            }
            0xDD => {
                restart = u32::from(u16::from_be_bytes([*segment.first()?, *segment.get(1)?]));
            }
            0xDA => {
                if components.is_empty() {
                    return None;
                }
                let n = usize::from(*segment.first()?);
                let mut scan = Vec::with_capacity(n);
                for i in 0..n {
                    let s = segment.get(1 + 2 * i..3 + 2 * i)?;
                    let Some(&c) = components.iter().find(|c| c.id == s[0]) else {
                        return Some(Violation::Header("a scan of a component the frame lacks"));
                    };
                    let (td, ta) = (s[1] >> 4, s[1] & 0x0F);
                    let table = |tables: &[Option<Table>; 4], dc: bool, slot: u8| {
                        tables
                            .get(usize::from(slot))
                            .cloned()
                            .flatten()
                            .or_else(|| default_table(dc, slot))
                    };
                    let (Some(d), Some(a)) = (table(&dc, true, td), table(&ac, false, ta)) else {
                        return Some(Violation::Header(
                            "a scan naming a Huffman table never defined",
                        ));
                    };
                    scan.push((c, d, a));
                }
                // Ss, Se, Ah and Al mean nothing to a sequential frame (T.81 B.2.3: 0, 63
                // and 0 there), and decoders read every coefficient whatever they say
                // (libjpeg warns and goes on): GE's extended frame in pydicom's
                // `JPEG-lossy.dcm` says Se 0 and codes all 63.
                segment.get(1 + 2 * n..4 + 2 * n)?;
                let geometry = Geometry::of(&components, width, height);
                let data = frame.get(at + 2 + length..)?;
                let mut bits = Bits {
                    data,
                    at: 0,
                    byte: 0,
                    left: 0,
                    marker: None,
                    budget: &mut *budget,
                };
                match walk_scan(&mut bits, &scan, &geometry, precision, restart, &mut block) {
                    Ok(None) => {}
                    Ok(Some(v)) => return Some(v),
                    Err(Stop::Spent) => return None,
                    // A marker inside a block was turned into a violation by the walk.
                    Err(Stop::Marker) => return None,
                }
                let end = bits.at;
                at += 2 + length + end;
                continue;
            }
            _ => {}
        }
        at += 2 + length;
    }
}

/// The MCU grid of a frame.
struct Geometry {
    /// The largest sampling factors.
    h_max: u32,
    v_max: u32,
    width: u32,
    height: u32,
}

impl Geometry {
    fn of(components: &[Component], width: u32, height: u32) -> Geometry {
        Geometry {
            h_max: components.iter().map(|c| u32::from(c.h)).max().unwrap_or(1),
            v_max: components.iter().map(|c| u32::from(c.v)).max().unwrap_or(1),
            width,
            height,
        }
    }

    /// MCUs of a scan, and the blocks of each component in one: interleaved, the
    /// frame's MCU grid and H x V blocks; one component alone, its own blocks one an
    /// MCU (T.81 A.2).
    fn mcus(&self, scan: &[(Component, Table, Table)]) -> (u64, Vec<u32>) {
        let up = |a: u32, b: u32| a.div_ceil(b);
        if let [(c, _, _)] = scan {
            let w = up(self.width * u32::from(c.h), self.h_max);
            let h = up(self.height * u32::from(c.v), self.v_max);
            return (u64::from(up(w, 8)) * u64::from(up(h, 8)), vec![1]);
        }
        let mcus =
            u64::from(up(self.width, 8 * self.h_max)) * u64::from(up(self.height, 8 * self.v_max));
        (
            mcus,
            scan.iter()
                .map(|(c, _, _)| u32::from(c.h) * u32::from(c.v))
                .collect(),
        )
    }
}

/// One scan's MCUs walked from `bits`; its first [`Violation`], if any. `block` counts
/// the frame's blocks so far (for the words).
fn walk_scan(
    bits: &mut Bits<'_>,
    scan: &[(Component, Table, Table)],
    geometry: &Geometry,
    precision: u8,
    restart: u32,
    block: &mut u64,
) -> Result<Option<Violation>, Stop> {
    let (mcus, blocks) = geometry.mcus(scan);
    let max_dc = precision + 3;
    let max_ac = precision + 2;
    for mcu in 0..mcus {
        if restart > 0 && mcu > 0 && mcu % u64::from(restart) == 0 {
            let expected = 0xD0 + ((mcu / u64::from(restart) - 1) % 8) as u8;
            if bits.align_to_marker() != Some(expected) {
                return Ok(Some(Violation::NoRestart { mcu }));
            }
            bits.past_restart();
        }
        for ((_, dc, ac), &count) in scan.iter().zip(&blocks) {
            for _ in 0..count {
                let ended = |_| Violation::EndedEarly { mcu, of: mcus };
                let done = one_block(bits, dc, ac, max_dc, max_ac, *block);
                match done {
                    Ok(None) => {}
                    Ok(Some(v)) => return Ok(Some(v)),
                    Err(Stop::Marker) => return Ok(Some(ended(()))),
                    Err(Stop::Spent) => return Err(Stop::Spent),
                }
                *block += 1;
            }
        }
    }
    // The scan ends: what follows is a marker (the next scan's, or EOI).
    bits.align_to_marker();
    Ok(None)
}

/// One 8 x 8 block's codes (T.81 F.2.2): a DC category and its bits, then AC symbols to
/// EOB or the 63rd coefficient.
fn one_block(
    bits: &mut Bits<'_>,
    dc: &Table,
    ac: &Table,
    max_dc: u8,
    max_ac: u8,
    block: u64,
) -> Result<Option<Violation>, Stop> {
    let Some(category) = bits.decode(dc)? else {
        return Ok(Some(Violation::NoSuchCode { block, dc: true }));
    };
    if category > max_dc {
        return Ok(Some(Violation::DcCategory { block, category }));
    }
    bits.bits(category)?;
    let mut k = 1u32;
    while k <= 63 {
        let Some(symbol) = bits.decode(ac)? else {
            return Ok(Some(Violation::NoSuchCode { block, dc: false }));
        };
        let (run, size) = (u32::from(symbol >> 4), symbol & 0x0F);
        match (run, size) {
            (0, 0) => break, // EOB
            (15, 0) => k += 16,
            (_, 0) => return Ok(Some(Violation::AcSymbol { block, symbol })),
            _ if size > max_ac => return Ok(Some(Violation::AcSymbol { block, symbol })),
            _ => {
                k += run;
                if k > 63 {
                    return Ok(Some(Violation::RunPast63 { block }));
                }
                bits.bits(size)?;
                k += 1;
            }
        }
        // A ZRL must be followed by a coefficient within the block.
        if k > 63 && size == 0 {
            return Ok(Some(Violation::RunPast63 { block }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first frame (SOI to EOI) of a pydicom test file.
    fn frame_of(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files")
            .join(name);
        let bytes = std::fs::read(&path).expect("pydicom's test files");
        let soi = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xD8])
            .expect("an SOI");
        let eoi = bytes
            .windows(2)
            .rposition(|w| w == [0xFF, 0xD9])
            .expect("an EOI");
        bytes[soi..eoi + 2].to_vec()
    }

    /// The scan data after the frame's SOS replaced by stuffed keystream bytes.
    fn stuffed(frame: &[u8]) -> Vec<u8> {
        let sos = frame
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("an SOS");
        let from = sos + 2 + usize::from(u16::from_be_bytes([frame[sos + 2], frame[sos + 3]]));
        let mut out = frame[..from].to_vec();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        while out.len() < frame.len() - 2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let b = state as u8;
            out.push(b);
            if b == 0xFF {
                out.push(0);
            }
        }
        out.extend([0xFF, 0xD9]);
        out
    }

    /// MAX_DCT_WALK_BYTES is a budget of the walk, not a verdict: spent before the first
    /// block that breaks, the frame is not judged; with bytes enough it is. An honest
    /// frame spends about its scan's bytes.
    #[test]
    fn the_walk_stops_without_a_verdict_when_its_bytes_are_spent() {
        let honest = frame_of("SC_rgb_jpeg_dcmtk.dcm");
        let mut budget = MAX_DCT_WALK_BYTES;
        assert_eq!(violation(&honest, &mut budget), None);
        let spent = MAX_DCT_WALK_BYTES - budget;
        assert!(spent > honest.len() / 2 && spent < honest.len(), "{spent}");
        let broken = stuffed(&honest);
        let mut budget = MAX_DCT_WALK_BYTES;
        let found = violation(&broken, &mut budget).expect("stuffed ciphertext");
        let needed = MAX_DCT_WALK_BYTES - budget;
        let mut short = needed - 1;
        assert_eq!(violation(&broken, &mut short), None, "{found}");
        let mut enough = needed;
        assert_eq!(violation(&broken, &mut enough), Some(found));
        let mut none = 0;
        assert_eq!(violation(&broken, &mut none), None);
    }

    /// A frame of `mcus` 8 x 8 grey blocks side by side, each coded "00" (DC category
    /// 0, EOB) from one-code tables and padded with ones, a restart interval of one MCU,
    /// and the scan data `scan(mcu)` writes after each MCU.
    fn restart_frame(mcus: u8, after: impl Fn(u8) -> Vec<u8>) -> Vec<u8> {
        let mut f = vec![0xFF, 0xD8];
        f.extend([0xFF, 0xC0, 0, 11, 8, 0, 8, 0, 8 * mcus, 1, 1, 0x11, 0]);
        for class in [0x00, 0x10] {
            f.extend([0xFF, 0xC4, 0, 20, class, 1]);
            f.extend([0; 15]);
            f.push(0);
        }
        f.extend([0xFF, 0xDD, 0, 4, 0, 1]);
        f.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
        for mcu in 0..mcus {
            f.push(0x3F);
            f.extend(after(mcu));
        }
        f.extend([0xFF, 0xD9]);
        f
    }

    /// Restart intervals as T.81 puts them: RST0, RST1, ... after each interval but the
    /// last, after the interval's padding. One missing, or out of order, is no encoder's;
    /// so is a scan of fewer MCUs than the frame claims (the EOI where the next restart
    /// marker must be).
    #[test]
    fn restart_markers_are_asked_after_each_interval() {
        let walk = |f: &[u8]| violation(f, &mut MAX_DCT_WALK_BYTES.clone());
        let last = 9u8;
        let honest = restart_frame(10, |m| {
            if m < last {
                vec![0xFF, 0xD0 + m % 8]
            } else {
                vec![]
            }
        });
        assert_eq!(walk(&honest), None);
        let missing = restart_frame(10, |m| {
            if m < last && m != 4 {
                vec![0xFF, 0xD0 + m % 8]
            } else {
                vec![]
            }
        });
        assert_eq!(walk(&missing), Some(Violation::NoRestart { mcu: 5 }));
        let swapped = restart_frame(10, |m| {
            if m < last {
                vec![0xFF, 0xD0 + (m + 1) % 8]
            } else {
                vec![]
            }
        });
        assert_eq!(walk(&swapped), Some(Violation::NoRestart { mcu: 1 }));
        // Fill bytes before a marker are allowed.
        let filled = restart_frame(3, |m| {
            if m < 2 {
                vec![0xFF, 0xFF, 0xD0 + m]
            } else {
                vec![]
            }
        });
        assert_eq!(walk(&filled), None);
        let mut short = restart_frame(3, |m| if m < 2 { vec![0xFF, 0xD0 + m] } else { vec![] });
        short[10] = 32; // the frame's width (X): it claims 4 MCUs
        assert_eq!(walk(&short), Some(Violation::NoRestart { mcu: 3 }));
    }

    /// A scan naming tables its stream never defined is walked against T.81 K.3's, as
    /// decoders read Motion JPEG: DCMTK's baseline with the standard tables (`-ho`) of a
    /// real RGB image, its DHT segments cut out, walks clean; stuffed ciphertext behind
    /// that header breaks (before: not walked, and it passed).
    #[test]
    fn a_frame_without_huffman_tables_is_walked_against_the_standard_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/examples_rgb_color.dcm");
        let out = dir.path().join("std.dcm");
        let ok = std::process::Command::new("dcmcjpeg")
            .args(["+eb", "-ho"])
            .arg(&src)
            .arg(&out)
            .status()
            .expect("dcmtk runs (scripts/setup-test-deps.sh)")
            .success();
        assert!(ok, "dcmcjpeg +eb -ho");
        let bytes = std::fs::read(&out).expect("dcmcjpeg's output");
        let soi = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xD8])
            .expect("an SOI");
        let eoi = bytes
            .windows(2)
            .rposition(|w| w == [0xFF, 0xD9])
            .expect("an EOI");
        let frame = &bytes[soi..eoi + 2];
        // The frame without its DHT segments (all before its SOS).
        let mut cut = frame[..2].to_vec();
        let mut at = 2;
        let mut tables = 0;
        while frame[at + 1] != 0xDA {
            let len = usize::from(u16::from_be_bytes([frame[at + 2], frame[at + 3]]));
            if frame[at + 1] == 0xC4 {
                tables += 1;
            } else {
                cut.extend_from_slice(&frame[at..at + 2 + len]);
            }
            at += 2 + len;
        }
        cut.extend_from_slice(&frame[at..]);
        assert!(tables >= 1, "DHT segments");
        let mut budget = MAX_DCT_WALK_BYTES;
        assert_eq!(violation(frame, &mut budget), None, "as written");
        let mut budget = MAX_DCT_WALK_BYTES;
        assert_eq!(violation(&cut, &mut budget), None, "its tables cut");
        let mut budget = MAX_DCT_WALK_BYTES;
        assert!(violation(&stuffed(&cut), &mut budget).is_some(), "stuffed");
    }

    /// Headers decoders refuse are violations, not frames left unread (an attacker's
    /// way round the walk): a sampling factor of 0, a scan of a component the frame
    /// lacks, a scan naming a table neither defined nor T.81's, a DHT of class 2, a
    /// precision of 4. A DNL's height (0) stays unjudged.
    #[test]
    fn headers_decoders_refuse_are_violations() {
        let walk = |f: &[u8]| violation(f, &mut MAX_DCT_WALK_BYTES.clone());
        let frame = restart_frame(2, |m| if m < 1 { vec![0xFF, 0xD0] } else { vec![] });
        assert_eq!(walk(&frame), None);
        // SOF at 2: FF C0, Lf (2), P at 6, Y at 7, X at 9, Nf at 11, C at 12, H/V at 13.
        let header = |at: usize, value: u8| {
            let mut f = frame.clone();
            f[at] = value;
            walk(&f)
        };
        assert!(matches!(header(13, 0x00), Some(Violation::Header(_))));
        assert!(matches!(header(6, 4), Some(Violation::Header(_))));
        assert_eq!(header(8, 0), None, "a DNL's height");
        // The DHTs at 15 and 37 (class at +4), DRI at 59, SOS at 65 (C at 70, T at 71).
        assert!(matches!(header(19, 0x20), Some(Violation::Header(_))));
        assert!(matches!(header(70, 9), Some(Violation::Header(_))));
        assert!(matches!(header(71, 0x22), Some(Violation::Header(_))));
        // Slot 1 undefined: T.81's chrominance tables stand in, and the scan is walked.
        assert!(!matches!(header(71, 0x11), Some(Violation::Header(_))));
    }

    /// A crafted frame never panics the walk: every prefix of a real frame and of its
    /// stuffed ciphertext, and its headers with each byte set to 0 and to FF.
    #[test]
    fn cut_or_damaged_frames_are_walked_without_a_panic() {
        for name in ["JPEG-lossy.dcm", "SC_rgb_jpeg_dcmtk.dcm"] {
            let honest = frame_of(name);
            let broken = stuffed(&honest);
            for frame in [&honest, &broken] {
                for end in (0..frame.len()).step_by(7) {
                    let mut budget = MAX_DCT_WALK_BYTES;
                    let _ = violation(&frame[..end], &mut budget);
                }
            }
            let sos = honest
                .windows(2)
                .position(|w| w == [0xFF, 0xDA])
                .expect("an SOS");
            for at in 2..sos + 12 {
                for value in [0u8, 0xFF, 0x11] {
                    let mut damaged = honest.clone();
                    damaged[at] = value;
                    let mut budget = MAX_DCT_WALK_BYTES;
                    let _ = violation(&damaged, &mut budget);
                }
            }
        }
    }
}
