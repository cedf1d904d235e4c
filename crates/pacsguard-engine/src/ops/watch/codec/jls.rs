//! A JPEG-LS decoder (ITU-T T.87 | ISO/IEC 14495-1, the LOCO-I algorithm), written here
//! from the standard so that a re-compression to JPEG-LS is proven by its decoded
//! samples as the JPEG and JPEG 2000 ones are (issue 11: without one, every honest
//! JPEG-LS migration in place alerted `re-compression-unproven` and raised
//! `ransomware-suspected`).
//!
//! Read: a frame (SOF55) of 2 to 16 bits a sample and 1 to [`MAX_COMPONENTS`]
//! components, unsubsampled; preset coding parameters (LSE of ID 1); scans in each
//! interleave mode (0: a scan a component; 1: line by line; 2: sample by sample, as
//! CharLS, the coder of DCMTK and GDCM, writes them); NEAR 0 (lossless) and NEAR above
//! (near-lossless). Refused as [`JlsError::Unsupported`]: mapping tables (palettes),
//! point transforms, restart intervals, oversize dimensions, a line count left to DNL.
//!
//! Total on hostile input: every read is checked, every loop bounded by the samples the
//! frame header claims (which the caller holds within its decoded-bytes bound before
//! [`decode`]), a Golomb code's length by LIMIT; a stream that runs out, or into a
//! marker, mid-scan is [`JlsError::Undecodable`].

use std::fmt;

/// Components a frame may have: DICOM images have one or three (a fourth, ARGB/CMYK, is
/// retired); an attacker's header may claim 255, each a scan's worth of line buffers.
pub const MAX_COMPONENTS: usize = 4;

/// Marker segments walked before and between scans: an encoder writes a few (APPn, LSE,
/// COM); a writer's stream could hold thousands of empty ones.
pub const MAX_SEGMENTS: usize = 256;

/// Bytes of a scan's data an encoder may leave after the last code a decoder reads (the
/// last byte's padding bits, a stuffed byte after an `FF`): more, and the scan holds
/// bytes no code reads (ciphertext after a valid scan of a few samples), no encoder's.
pub const MAX_SCAN_SLACK_BYTES: usize = 4;

/// Why a stream was not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JlsError {
    /// A feature of JPEG-LS this decoder does not read, or a header outside its range.
    Unsupported(String),
    /// Headers read, data not decodable: no encoder wrote it.
    Undecodable(String),
}

impl fmt::Display for JlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JlsError::Unsupported(why) | JlsError::Undecodable(why) => f.write_str(why),
        }
    }
}

fn unsupported<T>(why: &str) -> Result<T, JlsError> {
    Err(JlsError::Unsupported(why.to_string()))
}

fn undecodable<T>(why: &str) -> Result<T, JlsError> {
    Err(JlsError::Undecodable(why.to_string()))
}

/// A decoded frame: its samples, components interleaved pixel by pixel.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub components: usize,
    /// Bits a sample (P).
    pub precision: u8,
    /// NEAR of its scans (the highest, when they differ).
    pub near: u16,
    pub samples: Vec<u16>,
}

/// The frame header (SOF55).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub width: usize,
    pub height: usize,
    pub components: usize,
    pub precision: u8,
    /// The components' identifiers (Ci), which scans name them by.
    ids: [u8; MAX_COMPONENTS],
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DRI: u8 = 0xDD;
const DNL: u8 = 0xDC;
const SOF55: u8 = 0xF7;
const LSE: u8 = 0xF8;

/// A marker segment's body: after `FF xx` and its length, `length - 2` bytes.
fn segment(stream: &[u8], at: usize) -> Result<(&[u8], usize), JlsError> {
    let Some(l) = stream.get(at + 2..at + 4) else {
        return undecodable("a marker segment cut by the end");
    };
    let length = usize::from(u16::from_be_bytes([l[0], l[1]]));
    if length < 2 {
        return undecodable("a marker segment's length under 2");
    }
    match stream.get(at + 4..at + 2 + length) {
        Some(body) => Ok((body, at + 2 + length)),
        None => undecodable("a marker segment cut by the end"),
    }
}

/// The frame header of `stream` alone (for the bytes decoding will take), walking at most
/// [`MAX_SEGMENTS`] segments from SOI.
pub fn header(stream: &[u8]) -> Result<Header, JlsError> {
    if stream.get(..2) != Some(&[0xFF, SOI][..]) {
        return unsupported("no SOI");
    }
    let mut at = 2;
    for _ in 0..MAX_SEGMENTS {
        let Some(&[0xFF, marker]) = stream.get(at..at + 2) else {
            return undecodable("no marker where one was due");
        };
        let (body, next) = segment(stream, at)?;
        if marker == SOF55 {
            return frame_header(body);
        }
        if marker == SOS {
            return undecodable("a scan before the frame header");
        }
        at = next;
    }
    unsupported("more marker segments than MAX_SEGMENTS before the frame header")
}

fn frame_header(body: &[u8]) -> Result<Header, JlsError> {
    let Some(&[precision, y0, y1, x0, x1, count]) = body.get(..6) else {
        return undecodable("a frame header cut short");
    };
    let components = usize::from(count);
    if !(2..=16).contains(&precision) {
        return unsupported(&format!("{precision} bits a sample (2 to 16 are read)"));
    }
    if components == 0 || components > MAX_COMPONENTS {
        return unsupported(&format!(
            "{components} components (1 to MAX_COMPONENTS, {MAX_COMPONENTS}, are read)"
        ));
    }
    let Some(specs) = body.get(6..6 + 3 * components) else {
        return undecodable("a frame header cut short");
    };
    if specs.chunks_exact(3).any(|c| c[1] != 0x11) {
        return unsupported("subsampled components");
    }
    let mut ids = [0u8; MAX_COMPONENTS];
    for (id, spec) in ids.iter_mut().zip(specs.chunks_exact(3)) {
        *id = spec[0];
    }
    let height = usize::from(u16::from_be_bytes([y0, y1]));
    let width = usize::from(u16::from_be_bytes([x0, x1]));
    if height == 0 || width == 0 {
        return unsupported("no line count or width in the frame header (DNL or LSE 3/4)");
    }
    Ok(Header {
        width,
        height,
        components,
        precision,
        ids,
    })
}

/// Preset coding parameters (LSE ID 1); 0 means the default.
#[derive(Clone, Copy, Debug, Default)]
struct Preset {
    maxval: u16,
    t1: u16,
    t2: u16,
    t3: u16,
    reset: u16,
}

/// Decodes the whole stream `stream` (SOI ... EOI). The caller bounds the bytes its
/// header claims ([`header`]) before calling.
pub fn decode(stream: &[u8]) -> Result<Decoded, JlsError> {
    decode_lines(stream, usize::MAX)
}

/// Decodes the first `lines` lines of each scan of `stream` (all of them when it has
/// fewer): [`Decoded::height`] says how many. A cut decode reads no scan to its end, so
/// the bytes left after its last code are not asked for; an EOI before every
/// component's scan still refuses it. Its cost is the lines' samples, whatever the
/// frame claims: a look at an image whose whole decode a budget left undone.
pub fn decode_lines(stream: &[u8], lines: usize) -> Result<Decoded, JlsError> {
    let mut frame = header(stream)?;
    let cut = lines < frame.height;
    frame.height = frame.height.min(lines);
    let pixels = frame.width * frame.height;
    let mut samples = vec![0u16; pixels * frame.components];
    let mut done = vec![false; frame.components];
    let mut preset = Preset::default();
    let mut near_max = 0u16;
    let mut at = 2;
    let mut seen_frame = false;
    for _ in 0..MAX_SEGMENTS {
        let Some(&[0xFF, marker]) = stream.get(at..at + 2) else {
            return undecodable("no marker where one was due");
        };
        if marker == 0xFF {
            at += 1; // a fill byte
            continue;
        }
        if marker == EOI {
            if done.iter().all(|&d| d) {
                return Ok(Decoded {
                    width: frame.width,
                    height: frame.height,
                    components: frame.components,
                    precision: frame.precision,
                    near: near_max,
                    samples,
                });
            }
            return undecodable("EOI before every component's scan");
        }
        let (body, next) = segment(stream, at)?;
        match marker {
            SOF55 => {
                if seen_frame {
                    return undecodable("a second frame header");
                }
                seen_frame = true;
            }
            LSE => preset = lse(body)?,
            // A restart interval of 0 is none.
            DRI if body.iter().any(|&b| b != 0) => return unsupported("a restart interval"),
            DNL => return unsupported("a line count in DNL"),
            SOS => {
                if !seen_frame {
                    return undecodable("a scan before the frame header");
                }
                let scan = Scan::read(body, &frame, preset)?;
                near_max = near_max.max(scan.near);
                for &c in &scan.components {
                    if std::mem::replace(&mut done[c], true) {
                        return undecodable("a component in two scans");
                    }
                }
                let data = stream.get(next..).unwrap_or(&[]);
                let read = scan.decode(data, &frame, &mut samples)?;
                let end = scan_end(data);
                if !cut && end > read + MAX_SCAN_SLACK_BYTES {
                    return undecodable(&format!(
                        "{} bytes of scan data after its last code (MAX_SCAN_SLACK_BYTES, \
                         {MAX_SCAN_SLACK_BYTES})",
                        end - read
                    ));
                }
                at = next + end;
                continue;
            }
            0xC0..=0xCF | 0xF7..=0xFF if marker != 0xC4 && marker != 0xCC && marker != 0xC8 => {
                return unsupported("another frame or marker than JPEG-LS's");
            }
            _ => {}
        }
        at = next;
    }
    unsupported("more marker segments than MAX_SEGMENTS")
}

/// Where the entropy-coded data of a scan ends: the first `FF` followed by a byte with
/// its top bit set (the coder stuffs a 0 bit after every `FF`, so none is in the data).
fn scan_end(data: &[u8]) -> usize {
    let mut at = 0;
    while at + 1 < data.len() {
        if data[at] == 0xFF && data[at + 1] & 0x80 != 0 {
            return at;
        }
        at += 1;
    }
    data.len()
}

fn lse(body: &[u8]) -> Result<Preset, JlsError> {
    match body.first() {
        Some(1) => {
            let Some(v) = body.get(1..11) else {
                return undecodable("preset parameters cut short");
            };
            let w = |i: usize| u16::from_be_bytes([v[2 * i], v[2 * i + 1]]);
            Ok(Preset {
                maxval: w(0),
                t1: w(1),
                t2: w(2),
                t3: w(3),
                reset: w(4),
            })
        }
        Some(2 | 3) => unsupported("a mapping table (palette)"),
        Some(4) => unsupported("oversize image dimensions"),
        _ => undecodable("an LSE segment of no known ID"),
    }
}

/// The coding parameters of a scan (T.87 C.2.4.1).
#[derive(Clone, Copy, Debug)]
struct Params {
    maxval: i32,
    near: i32,
    range: i32,
    qbpp: u32,
    limit: u32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
}

impl Params {
    fn of(precision: u8, near: u16, preset: Preset) -> Result<Self, JlsError> {
        let full = (1i32 << precision) - 1;
        let maxval = if preset.maxval == 0 {
            full
        } else {
            i32::from(preset.maxval)
        };
        let near = i32::from(near);
        if maxval < 1 || near > (maxval / 2).min(255) {
            return unsupported("a NEAR or MAXVAL out of the standard's range");
        }
        let range = (maxval + 2 * near) / (2 * near + 1) + 1;
        let bits = |n: i32| 32 - (n.max(1) - 1).leading_zeros(); // ceil(log2 n)
        let qbpp = bits(range);
        let bpp = bits(maxval + 1).max(2);
        let limit = 2 * (bpp + bpp.max(8));
        let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
        // The default thresholds (T.87 C.2.4.1.1.1, from BASIC_T1..3 = 3, 7, 21).
        let (d1, d2, d3) = if maxval >= 128 {
            let factor = (maxval.min(4095) + 128) / 256;
            // BASIC_T1 (3) - 2 is 1: FACTOR itself.
            let t1 = clamp(factor + 2 + 3 * near, near + 1);
            let t2 = clamp(factor * (7 - 3) + 3 + 5 * near, t1);
            (t1, t2, clamp(factor * (21 - 4) + 4 + 7 * near, t2))
        } else {
            let factor = 256 / (maxval + 1);
            let t1 = clamp((3 / factor + 3 * near).max(2), near + 1);
            let t2 = clamp((7 / factor + 5 * near).max(3), t1);
            (t1, t2, clamp((21 / factor + 7 * near).max(4), t2))
        };
        let or = |v: u16, d: i32| if v == 0 { d } else { i32::from(v) };
        let (t1, t2, t3) = (or(preset.t1, d1), or(preset.t2, d2), or(preset.t3, d3));
        let reset = or(preset.reset, 64);
        if !(near < t1 && t1 <= t2 && t2 <= t3 && t3 <= maxval) || reset < 3 {
            return unsupported("preset thresholds out of the standard's range");
        }
        Ok(Self {
            maxval,
            near,
            range,
            qbpp,
            limit,
            t1,
            t2,
            t3,
            reset,
        })
    }

    fn quantize(&self, d: i32) -> i32 {
        if d <= -self.t3 {
            -4
        } else if d <= -self.t2 {
            -3
        } else if d <= -self.t1 {
            -2
        } else if d < -self.near {
            -1
        } else if d <= self.near {
            0
        } else if d < self.t1 {
            1
        } else if d < self.t2 {
            2
        } else if d < self.t3 {
            3
        } else {
            4
        }
    }

    /// `px + error * (2 NEAR + 1)` brought back into the range (T.87 A.4.5).
    fn reconstruct(&self, px: i32, error: i32) -> i32 {
        let step = 2 * self.near + 1;
        let mut x = px + error * step;
        if x < -self.near {
            x += self.range * step;
        } else if x > self.maxval + self.near {
            x -= self.range * step;
        }
        x.clamp(0, self.maxval)
    }
}

/// The run lengths' order by run index (T.87 A.7.1.2, J).
const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];

/// A regular context's variables (A, B, C, N).
#[derive(Clone, Copy)]
struct Context {
    a: i32,
    b: i32,
    c: i32,
    n: i32,
}

/// A run interruption context's variables (A, N, Nn) and its type.
#[derive(Clone, Copy)]
struct RunContext {
    a: i32,
    n: i32,
    nn: i32,
    ri_type: i32,
}

/// The entropy-coded bits of a scan, the stuffed bit after each `FF` dropped; running
/// into a marker or the end is an error (an encoder's scan holds every bit it needs).
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    cache: u64,
    /// Valid bits in `cache`, from its top.
    count: u32,
    after_ff: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            at: 0,
            cache: 0,
            count: 0,
            after_ff: false,
        }
    }

    fn fill(&mut self) {
        while self.count <= 56 {
            let Some(&byte) = self.data.get(self.at) else {
                return;
            };
            let (value, width) = if self.after_ff {
                if byte & 0x80 != 0 {
                    return; // a marker: the scan's data ended
                }
                (byte, 7)
            } else {
                (byte, 8)
            };
            self.at += 1;
            self.after_ff = byte == 0xFF;
            self.cache |= u64::from(value) << (64 - width - self.count);
            self.count += width;
        }
    }

    /// The bytes the bits read so far came from (those loaded, less the whole ones
    /// still unread in the cache: a stuffed byte's 7 bits counted as 8).
    fn read_bytes(&self) -> usize {
        self.at.saturating_sub(self.count as usize / 8)
    }

    /// `n` (at most 16) bits.
    fn read(&mut self, n: u32) -> Result<i32, JlsError> {
        if n == 0 {
            return Ok(0);
        }
        if self.count < n {
            self.fill();
            if self.count < n {
                return undecodable("the scan's data ended mid-code");
            }
        }
        let value = (self.cache >> (64 - n)) as i32;
        self.cache <<= n;
        self.count -= n;
        Ok(value)
    }

    fn bit(&mut self) -> Result<bool, JlsError> {
        Ok(self.read(1)? == 1)
    }

    /// Zero bits before the next one bit, which is consumed; more than `limit` is an error.
    fn unary(&mut self, limit: u32) -> Result<u32, JlsError> {
        let mut zeros = 0u32;
        loop {
            if self.count == 0 {
                self.fill();
                if self.count == 0 {
                    return undecodable("the scan's data ended mid-code");
                }
            }
            let lead = (self.cache.leading_zeros()).min(self.count);
            zeros += lead;
            if zeros > limit {
                return undecodable("a code longer than LIMIT");
            }
            if lead < self.count {
                self.cache <<= lead + 1;
                self.count -= lead + 1;
                return Ok(zeros);
            }
            self.cache = 0;
            self.count = 0;
        }
    }
}

/// A scan header (SOS) read against the frame's.
struct Scan {
    /// The frame's component indices the scan holds, in order.
    components: Vec<usize>,
    near: u16,
    interleave: u8,
    params: Params,
}

impl Scan {
    fn read(body: &[u8], frame: &Header, preset: Preset) -> Result<Self, JlsError> {
        let count = usize::from(body.first().copied().unwrap_or(0));
        let Some(specs) = body.get(1..1 + 2 * count) else {
            return undecodable("a scan header cut short");
        };
        let Some(&[near, interleave, transform]) = body.get(1 + 2 * count..4 + 2 * count) else {
            return undecodable("a scan header cut short");
        };
        if count == 0 || count > frame.components {
            return undecodable("a scan of no component, or of more than the frame's");
        }
        if specs.chunks_exact(2).any(|s| s[1] != 0) {
            return unsupported("a mapping table (palette)");
        }
        if transform != 0 {
            return unsupported("a point transform");
        }
        if interleave > 2 || (interleave == 0 && count != 1) {
            return undecodable("an interleave mode of no meaning for the scan");
        }
        let mut components = Vec::with_capacity(count);
        for spec in specs.chunks_exact(2) {
            match frame.ids[..frame.components]
                .iter()
                .position(|&id| id == spec[0])
            {
                Some(c) if !components.contains(&c) => components.push(c),
                _ => return undecodable("a scan's component not the frame's"),
            }
        }
        Ok(Self {
            components,
            near: u16::from(near),
            interleave,
            params: Params::of(frame.precision, u16::from(near), preset)?,
        })
    }

    /// Decodes the scan's entropy-coded `data` into `out` (the frame's samples,
    /// interleaved); returns the bytes of `data` its codes were read from.
    fn decode(&self, data: &[u8], frame: &Header, out: &mut [u16]) -> Result<usize, JlsError> {
        let mut coder = Coder::new(self.params, data);
        let width = frame.width;
        // Interleave mode 2 codes the scan's components together, a pixel at a time; modes
        // 0 and 1 each component's line alone (mode 1: one line of each in turn).
        let groups: Vec<Vec<usize>> = if self.interleave == 2 {
            vec![self.components.clone()]
        } else {
            self.components.iter().map(|&c| vec![c]).collect()
        };
        let mut lines: Vec<(Vec<i32>, Vec<i32>, usize)> = groups
            .iter()
            .map(|g| {
                (
                    vec![0; (width + 2) * g.len()],
                    vec![0; (width + 2) * g.len()],
                    0,
                )
            })
            .collect();
        for y in 0..frame.height {
            for (group, (prev, cur, run_index)) in groups.iter().zip(lines.iter_mut()) {
                let nc = group.len();
                // The edges (T.87 A.2.1): Ra of the first sample is the sample above it,
                // Rc the one above that; Rd of the last sample is Rb.
                for c in 0..nc {
                    cur[c] = prev[nc + c];
                    prev[(width + 1) * nc + c] = prev[width * nc + c];
                }
                coder.line(prev, cur, nc, run_index)?;
                for x in 0..width {
                    let pixel = (y * width + x) * frame.components;
                    for (c, &fc) in group.iter().enumerate() {
                        // Reconstructed samples are within 0..=MAXVAL, below 2^16.
                        out[pixel + fc] = cur[(x + 1) * nc + c] as u16;
                    }
                }
                std::mem::swap(prev, cur);
            }
        }
        Ok(coder.bits.read_bytes())
    }
}

/// A scan's decoder: its parameters, bits and context variables.
struct Coder<'a> {
    p: Params,
    bits: Bits<'a>,
    regular: Vec<Context>,
    run: [RunContext; 2],
}

impl<'a> Coder<'a> {
    fn new(p: Params, data: &'a [u8]) -> Self {
        let a = ((p.range + 32) / 64).max(2);
        Self {
            p,
            bits: Bits::new(data),
            regular: vec![
                Context {
                    a,
                    b: 0,
                    c: 0,
                    n: 1
                };
                365
            ],
            run: [
                RunContext {
                    a,
                    n: 1,
                    nn: 0,
                    ri_type: 0,
                },
                RunContext {
                    a,
                    n: 1,
                    nn: 0,
                    ri_type: 1,
                },
            ],
        }
    }

    /// One line of `nc` components decoded into `cur` from `prev` (both of `width + 2`
    /// pixels, the edges set).
    fn line(
        &mut self,
        prev: &[i32],
        cur: &mut [i32],
        nc: usize,
        run_index: &mut usize,
    ) -> Result<(), JlsError> {
        let width = cur.len() / nc - 2;
        let mut x = 0;
        let mut contexts = [0i32; MAX_COMPONENTS];
        while x < width {
            let mut all_flat = true;
            for c in 0..nc {
                let ra = cur[x * nc + c];
                let rb = prev[(x + 1) * nc + c];
                let rc = prev[x * nc + c];
                let rd = prev[(x + 2) * nc + c];
                let q = (self.p.quantize(rd - rb) * 9 + self.p.quantize(rb - rc)) * 9
                    + self.p.quantize(rc - ra);
                contexts[c] = q;
                all_flat &= q == 0;
            }
            if all_flat {
                x += self.run_mode(x, prev, cur, nc, run_index)?;
                continue;
            }
            for c in 0..nc {
                let ra = cur[x * nc + c];
                let rb = prev[(x + 1) * nc + c];
                let rc = prev[x * nc + c];
                cur[(x + 1) * nc + c] = self.regular_sample(contexts[c], predict(ra, rb, rc))?;
            }
            x += 1;
        }
        Ok(())
    }

    /// A sample in regular mode (T.87 A.4 to A.6) of context `qs` and prediction `px`.
    fn regular_sample(&mut self, qs: i32, px: i32) -> Result<i32, JlsError> {
        let sign = if qs < 0 { -1 } else { 1 };
        let q = qs.unsigned_abs() as usize;
        let Context { a, b, c, n } = self.regular[q];
        let k = golomb(n, a)?;
        let px = (px + sign * c).clamp(0, self.p.maxval);
        let mapped = self.value(k, self.p.limit)?;
        let mut error = (mapped >> 1) ^ -(mapped & 1);
        if k == 0 && self.p.near == 0 && 2 * b + n - 1 < 0 {
            error = -error - 1;
        }
        if error.abs() > 65535 {
            return undecodable("an error value past 16 bits");
        }
        let ctx = &mut self.regular[q];
        ctx.a += error.abs();
        ctx.b += error * (2 * self.p.near + 1);
        if ctx.n == self.p.reset {
            ctx.a >>= 1;
            ctx.b >>= 1;
            ctx.n >>= 1;
        }
        ctx.n += 1;
        if ctx.b + ctx.n <= 0 {
            ctx.b += ctx.n;
            if ctx.b <= -ctx.n {
                ctx.b = -ctx.n + 1;
            }
            if ctx.c > -128 {
                ctx.c -= 1;
            }
        } else if ctx.b > 0 {
            ctx.b -= ctx.n;
            if ctx.b > 0 {
                ctx.b = 0;
            }
            if ctx.c < 127 {
                ctx.c += 1;
            }
        }
        Ok(self.p.reconstruct(px, sign * error))
    }

    /// A run from pixel `x` (T.87 A.7): its length, the samples set to Ra's, then, when it
    /// ends before the line's end, the interrupting pixel. Returns the pixels decoded.
    fn run_mode(
        &mut self,
        x: usize,
        prev: &[i32],
        cur: &mut [i32],
        nc: usize,
        run_index: &mut usize,
    ) -> Result<usize, JlsError> {
        let width = cur.len() / nc - 2;
        let remaining = width - x;
        let mut length = 0usize;
        while self.bits.bit()? {
            let whole = 1usize << J[*run_index];
            let count = whole.min(remaining - length);
            length += count;
            if count == whole {
                *run_index = (*run_index + 1).min(31);
            }
            if length == remaining {
                break;
            }
        }
        if length != remaining {
            length += self.bits.read(J[*run_index])? as usize;
            if length >= remaining {
                return undecodable("a run past the line's end");
            }
        }
        for i in 0..length {
            for c in 0..nc {
                cur[(x + 1 + i) * nc + c] = cur[x * nc + c];
            }
        }
        let end = x + length;
        if end == width {
            return Ok(length);
        }
        let limit = self.p.limit - J[*run_index] - 1;
        for c in 0..nc {
            let ra = cur[x * nc + c];
            let rb = prev[(end + 1) * nc + c];
            // One component: the context by whether Ra and Rb differ (A.7.2.1); several
            // (sample-interleaved), the first context for each, as CharLS codes them.
            let sample = if nc == 1 && (ra - rb).abs() <= self.p.near {
                let error = self.interruption_error(1, limit)?;
                self.p.reconstruct(ra, error)
            } else {
                let error = self.interruption_error(0, limit)?;
                self.p
                    .reconstruct(rb, if rb >= ra { error } else { -error })
            };
            cur[(end + 1) * nc + c] = sample;
        }
        *run_index = run_index.saturating_sub(1);
        Ok(length + 1)
    }

    /// A run interruption sample's error value, of run context `which` (T.87 A.7.2).
    fn interruption_error(&mut self, which: usize, limit: u32) -> Result<i32, JlsError> {
        let RunContext { a, n, nn, ri_type } = self.run[which];
        let k = golomb(n, a + (n >> 1) * ri_type)?;
        let mapped = self.value(k, limit)?;
        let t = mapped + ri_type;
        let map = t & 1;
        let magnitude = (t + map) / 2;
        // A.7.2.2's map, inverted: a negative error maps to the odd values unless k is 0
        // and fewer than half the context's errors were negative.
        let error = if i32::from(k != 0 || 2 * nn >= n) == map {
            -magnitude
        } else {
            magnitude
        };
        let ctx = &mut self.run[which];
        if error < 0 {
            ctx.nn += 1;
        }
        ctx.a += (mapped + 1 - ri_type) >> 1;
        if ctx.n == self.p.reset {
            ctx.a >>= 1;
            ctx.n >>= 1;
            ctx.nn >>= 1;
        }
        ctx.n += 1;
        Ok(error)
    }

    /// A Golomb-coded value of parameter `k`, its code at most `limit` bits (A.5.3).
    fn value(&mut self, k: u32, limit: u32) -> Result<i32, JlsError> {
        let escape = limit.saturating_sub(self.p.qbpp + 1);
        let high = self.bits.unary(escape)?;
        if high >= escape {
            return Ok(self.bits.read(self.p.qbpp)? + 1);
        }
        Ok(((high as i32) << k) + self.bits.read(k)?)
    }
}

/// The Golomb parameter of a context: the least `k` with `n << k >= a`; past 16 (what
/// no 16-bit image's context reaches) the stream is no encoder's.
fn golomb(n: i32, a: i32) -> Result<u32, JlsError> {
    let mut k = 0;
    while (i64::from(n) << k) < i64::from(a) {
        k += 1;
        if k > 16 {
            return undecodable("a Golomb parameter past 16");
        }
    }
    Ok(k)
}

/// The median edge detector (T.87 A.4.1).
fn predict(ra: i32, rb: i32, rc: i32) -> i32 {
    if rc >= ra.max(rb) {
        ra.min(rb)
    } else if rc <= ra.min(rb) {
        ra.max(rb)
    } else {
        ra + rb - rc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn test_files() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files")
    }

    /// `tool args from out`; `false` when the tool refuses the image.
    fn run(tool: &str, args: &[&str], from: &Path, out: &Path) -> bool {
        std::process::Command::new(tool)
            .args(args)
            .arg(from)
            .arg(out)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("dcmtk and gdcmconv run (scripts/setup-test-deps.sh)")
            .success()
            && out.exists()
    }

    /// The JPEG-LS frames of the encapsulated image at `path` (each frame's fragments
    /// joined).
    fn frames(path: &Path) -> Vec<Vec<u8>> {
        let value = super::super::encapsulated_value(path).expect("encapsulated Pixel Data");
        let (items, _) = super::super::fragments(&value).expect("fragments");
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for item in &items {
            match frames.last_mut() {
                Some(frame) if !item.starts_with(&[0xFF, 0xD8]) => frame.extend_from_slice(item),
                _ => frames.push(item.to_vec()),
            }
        }
        frames
    }

    /// The native samples of the image at `path` (its Pixel Data, little endian, of
    /// `bytes` bytes each).
    fn native_samples(path: &Path, bytes: usize) -> Vec<u32> {
        let file = std::fs::read(path).expect("decoded file");
        let layout = pacsguard_dicom::layout(&file).expect("a layout");
        file[layout.pixels]
            .chunks_exact(bytes)
            .map(|b| b.iter().rev().fold(0u32, |v, &b| v << 8 | u32::from(b)))
            .collect()
    }

    /// Whether the frames of `encoded` decoded here are the samples `dcmdjpls` decodes it
    /// to (interleaved or, for color, planar, as it may write them), each masked to the
    /// stream's precision. Returns the NEAR of the frames; `None` when `dcmdjpls`
    /// refuses the stream (its CharLS refuses DCMTK's own near-lossless RGB of an odd
    /// width: "Codec does not support this JPEG-LS image").
    fn assert_as_dcmdjpls(encoded: &Path, dir: &Path, what: &str) -> Option<u16> {
        let reference = dir.join("reference.dcm");
        let _ = std::fs::remove_file(&reference);
        if !run("dcmdjpls", &[], encoded, &reference) {
            return None;
        }
        let mut decoded = Vec::new();
        let mut near = 0;
        for frame in frames(encoded) {
            let d = decode(&frame).unwrap_or_else(|e| panic!("{what}: {e}"));
            near = near.max(d.near);
            decoded.push(d);
        }
        let first = &decoded[0];
        let bytes = if first.precision > 8 { 2 } else { 1 };
        let mask = (1u32 << first.precision) - 1;
        let reference: Vec<u32> = native_samples(&reference, bytes)
            .into_iter()
            .map(|s| s & mask)
            .collect();
        let interleaved: Vec<u32> = decoded
            .iter()
            .flat_map(|d| d.samples.iter().map(|&s| u32::from(s)))
            .collect();
        let planar: Vec<u32> = decoded
            .iter()
            .flat_map(|d| {
                (0..d.components).flat_map(move |c| {
                    d.samples
                        .iter()
                        .skip(c)
                        .step_by(d.components)
                        .map(|&s| u32::from(s))
                })
            })
            .collect();
        let n = interleaved.len();
        assert!(
            reference.len() >= n && reference.len() <= n + 1,
            "{what}: sizes"
        );
        assert!(
            reference[..n] == interleaved[..] || reference[..n] == planar[..],
            "{what}: decoded samples differ from dcmdjpls's"
        );
        Some(near)
    }

    /// Real native images (16-bit CT and MR, 8-bit RGB of odd size, multi-frame)
    /// encoded by DCMTK (`dcmcjpls`: lossless and near-lossless, each interleave mode)
    /// and GDCM (`gdcmconv --jpegls`, lossless and lossy), and pydicom's own JPEG-LS
    /// files: each decodes here to the samples `dcmdjpls` decodes it to.
    #[test]
    fn real_encoders_streams_decode_as_dcmdjpls_decodes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut checked = Vec::new();
        let mut nears = std::collections::BTreeSet::new();
        // A native multi-frame color image: pydicom's two-frame RLE one, decoded by DCMTK.
        let two_frames = dir.path().join("SC_rgb_2frame.dcm");
        assert!(run(
            "dcmdrle",
            &[],
            &test_files().join("SC_rgb_rle_2frame.dcm"),
            &two_frames
        ));
        let pynetdicom = test_files().join("../../../../pynetdicom/pynetdicom/tests/dicom_files");
        for native in [
            test_files().join("CT_small.dcm"),
            test_files().join("MR_small.dcm"),
            test_files().join("SC_rgb_small_odd.dcm"),
            test_files().join("examples_rgb_color.dcm"),
            test_files().join("examples_palette.dcm"),
            pynetdicom.join("CTImageStorage.dcm"),
            pynetdicom.join("RTImageStorage.dcm"),
            two_frames,
        ] {
            assert!(native.exists(), "{}", native.display());
            let name = native
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (tool, args) in [
                ("dcmcjpls", &[][..]),
                ("dcmcjpls", &["+is"][..]),
                ("dcmcjpls", &["+in"][..]),
                ("dcmcjpls", &["+en"][..]),
                ("dcmcjpls", &["+en", "+md", "5", "+is"][..]),
                ("dcmcjpls", &["+en", "+md", "3", "+in"][..]),
                (
                    "dcmcjpls",
                    &["+t1", "5", "+t2", "9", "+t3", "30", "+rs", "32"][..],
                ),
                ("gdcmconv", &["--jpegls"][..]),
                ("gdcmconv", &["--jpegls", "--lossy", "-e", "3"][..]),
            ] {
                let out = dir
                    .path()
                    .join(format!("{name}.{tool}{}.dcm", args.join("")));
                if !run(tool, args, &native, &out) {
                    continue;
                }
                let what = format!("{name} {tool} {args:?}");
                if let Some(near) = assert_as_dcmdjpls(&out, dir.path(), &what) {
                    nears.insert(near);
                    checked.push(what);
                }
            }
        }
        for name in [
            "MR_small_jpeg_ls_lossless.dcm",
            "JPEGLSNearLossless_08.dcm",
            "JPEGLSNearLossless_16.dcm",
            "SC_rgb_jls_lossy_line.dcm",
            "SC_rgb_jls_lossy_sample.dcm",
        ] {
            let near = assert_as_dcmdjpls(&test_files().join(name), dir.path(), name);
            nears.insert(near.unwrap_or_else(|| panic!("dcmdjpls {name}")));
            checked.push(name.to_string());
        }
        // 62 when written: DCMTK refuses near-lossless of signed images, and its
        // `dcmdjpls` its own near-lossless RGB of an odd width.
        assert!(checked.len() >= 60, "{checked:#?}");
        assert!(
            nears.len() >= 4,
            "lossless and near-lossless of several NEAR: {nears:?}"
        );
    }

    /// Total on hostile input: every cut of a real stream, and real headers before random
    /// data or with bytes flipped, return (an error or samples), never panic.
    /// A look at an image's head (`decode_lines`, bounded by the caller's
    /// MAX_HEAD_DECODE_SAMPLES) decodes the lines asked for and no more, the same
    /// samples as the whole decode's first lines; asked for more than it has, the whole.
    #[test]
    fn a_decode_cut_after_some_lines_gives_the_whole_decodes_first_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("ct.jls.dcm");
        assert!(run(
            "dcmcjpls",
            &[],
            &test_files().join("CT_small.dcm"),
            &out
        ));
        let frame = &frames(&out)[0];
        let whole = decode(frame).expect("decodes");
        let cut = decode_lines(frame, 3).expect("decodes");
        assert_eq!(cut.height, 3);
        assert_eq!(cut.samples.len(), 3 * whole.width * whole.components);
        assert_eq!(cut.samples[..], whole.samples[..cut.samples.len()]);
        assert_eq!(decode_lines(frame, usize::MAX).expect("decodes"), whole);
    }

    #[test]
    fn cut_or_random_streams_never_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut streams = Vec::new();
        for (name, args) in [
            ("MR_small.dcm", &[][..]),
            ("SC_rgb_small_odd.dcm", &["+is"][..]),
        ] {
            let out = dir.path().join(format!("{name}.jls.dcm"));
            assert!(run("dcmcjpls", args, &test_files().join(name), &out));
            streams.extend(frames(&out));
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for stream in &streams {
            for cut in (0..stream.len()).step_by(97) {
                assert!(decode(&stream[..cut]).is_err(), "cut at {cut}");
            }
            let scan = stream
                .windows(2)
                .position(|w| w == [0xFF, 0xDA])
                .expect("a scan");
            for round in 0..64 {
                let mut bad = stream.clone();
                if round % 2 == 0 {
                    for b in &mut bad[scan + 16..] {
                        *b = next() as u8;
                    }
                } else {
                    for _ in 0..8 {
                        let at = (next() as usize) % bad.len();
                        bad[at] = next() as u8;
                    }
                }
                let _ = decode(&bad);
            }
        }
        for _ in 0..256 {
            let len = (next() % 512) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if bytes.len() > 2 {
                bytes[..2].copy_from_slice(&[0xFF, 0xD8]);
            }
            let _ = decode(&bytes);
        }
    }

    /// A real scan with bytes no code reads after its last one (ciphertext appended to
    /// a valid scan before EOI) is no encoder's: refused past MAX_SCAN_SLACK_BYTES.
    #[test]
    fn bytes_after_a_scans_last_code_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("mr.jls.dcm");
        assert!(run(
            "dcmcjpls",
            &[],
            &test_files().join("MR_small.dcm"),
            &out
        ));
        let stream = frames(&out).remove(0);
        assert!(decode(&stream).is_ok());
        let eoi = stream.len() - 2;
        assert_eq!(&stream[eoi..], &[0xFF, 0xD9]);
        for extra in [MAX_SCAN_SLACK_BYTES + 1, 4096] {
            let mut longer = stream[..eoi].to_vec();
            longer.extend((0..extra).map(|i| (i * 37 % 255) as u8 & 0x7F));
            longer.extend_from_slice(&[0xFF, 0xD9]);
            assert!(
                matches!(decode(&longer), Err(JlsError::Undecodable(ref why)) if why.contains("MAX_SCAN_SLACK_BYTES")),
                "{extra} bytes appended"
            );
        }
    }

    #[test]
    fn headers_past_the_decoders_range_are_refused() {
        // SOI, SOF55 (P 16, 2 x 2) of 5 components: past MAX_COMPONENTS.
        let mut frame = vec![0xFF, 0xD8, 0xFF, 0xF7, 0, 23, 16, 0, 2, 0, 2, 5];
        for c in 1..=5 {
            frame.extend_from_slice(&[c, 0x11, 0]);
        }
        assert!(matches!(header(&frame), Err(JlsError::Unsupported(_))));
        // 17 bits a sample.
        let frame = [0xFF, 0xD8, 0xFF, 0xF7, 0, 11, 17, 0, 2, 0, 2, 1, 1, 0x11, 0];
        assert!(matches!(header(&frame), Err(JlsError::Unsupported(_))));
        // More empty segments than MAX_SEGMENTS before the frame.
        let mut frame = vec![0xFF, 0xD8];
        for _ in 0..=MAX_SEGMENTS {
            frame.extend_from_slice(&[0xFF, 0xFE, 0, 2]);
        }
        assert!(matches!(header(&frame), Err(JlsError::Unsupported(_))));
    }
}
