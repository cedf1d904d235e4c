//! gzip and tar opened as `gzip -d` and `tar x` open them, and what they carry screened
//! as files in their own right: an executable, a script, Python bytecode, a Java class or
//! another archive inside is what makes the archive dangerous, not the archive itself.
//!
//! gzip is confirmed by its whole structure (RFC 1952: header flags, a deflate stream that
//! ends, the CRC-32 and length of what it inflates to), tar by each header's checksum
//! (POSIX ustar, GNU and v7): a chance `1F 8B 08` or `ustar` in pixel data is neither.
//! Inflating is bounded by [`MAX_ARCHIVE_INFLATED_BYTES`], members by
//! [`MAX_ARCHIVE_MEMBERS`], nesting by [`MAX_ARCHIVE_DEPTH`]; reaching one is reported.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

use crate::format::{self, Format};

/// Bytes one archive may inflate to (nested archives share it).
pub const MAX_ARCHIVE_INFLATED_BYTES: usize = 64 * 1024 * 1024;
/// tar members, gzip members after the first, and damaged tar blocks skipped, looked at
/// per archive (nested archives share it).
pub const MAX_ARCHIVE_MEMBERS: usize = 4096;
/// Archives inside archives opened in turn (`.tar.gz` is two).
pub const MAX_ARCHIVE_DEPTH: usize = 4;

/// What opening an archive showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Not a gzip or tar whose structure holds.
    NotArchive,
    /// It carries something that runs: the member's name, its format, one sentence.
    Carries {
        member: String,
        format: Option<Format>,
        detail: String,
    },
    /// Nothing in it runs.
    Inert { format: Format, members: usize },
    /// A limit stopped the look inside before anything that runs was found.
    Limit { format: Format, detail: String },
}

/// What is left of the limits for one file's archives and ZIPs, and what it holds: one
/// for everything nested in the file, so that a tar of ZIPs of tars never renews a limit
/// by changing container (each level used to start afresh: a tar of 4,096 ZIPs would have
/// had 4,096 inflation budgets).
pub(crate) struct Work {
    /// Bytes gzip members may still inflate to ([`MAX_ARCHIVE_INFLATED_BYTES`]).
    inflated: usize,
    /// tar and gzip members that may still be looked at ([`MAX_ARCHIVE_MEMBERS`]).
    members: usize,
    /// ZIP central directory entries read so far (`MAX_ZIP_ENTRIES_READ`).
    pub(crate) zip_entries: usize,
    /// Bytes inflated to open ZIP entries whole so far (`MAX_NESTED_ZIP_BYTES`).
    pub(crate) zip_inflated: usize,
    /// ZIP entries with data whose first bytes could not be read (a compression method
    /// not read here, or data outside the bytes given).
    pub(crate) zip_unread: usize,
    /// The compression method of the first entry not read for its method alone (not
    /// encrypted, inside the bytes): named in the warning (review rv43-screen, case10).
    pub(crate) zip_unread_method: Option<u16>,
    /// The first limit reached, or the first member that could not be looked into.
    reached: Option<String>,
    /// Offsets in the outermost archive's bytes where its walk read a later gzip member or
    /// a tar header from that offset on, as a search opening an archive there would: a
    /// search need not open those again (one walk, not one per member). Only those: a
    /// gzip or tar start anywhere else in the bytes the walk went through (inside a
    /// member's data, in a stored deflate block, past a tar size that claims the rest of
    /// the bytes) was judged from no start of its own, and must still be opened. In
    /// ascending order; at most one per member ([`MAX_ARCHIVE_MEMBERS`]).
    walked: Vec<usize>,
}

impl Work {
    pub(crate) fn new() -> Work {
        Work {
            inflated: MAX_ARCHIVE_INFLATED_BYTES,
            members: MAX_ARCHIVE_MEMBERS,
            zip_entries: 0,
            zip_inflated: 0,
            zip_unread: 0,
            zip_unread_method: None,
            reached: None,
            walked: Vec::new(),
        }
    }

    /// Bytes gzip members inflated to so far.
    pub(crate) fn done_inflating(&self) -> usize {
        MAX_ARCHIVE_INFLATED_BYTES - self.inflated
    }

    /// What was done so far, in bytes, for the caller's per-file budget.
    pub(crate) fn done(&self) -> usize {
        (MAX_ARCHIVE_INFLATED_BYTES - self.inflated)
            + (MAX_ARCHIVE_MEMBERS - self.members) * 512
            + self.zip_inflated
            + self.zip_entries * 46
    }
}

/// Opens `bytes` if they are a gzip or tar file and screens what it carries.
pub fn open(bytes: &[u8]) -> Opened {
    open_counting(bytes).0
}

/// [`open`], and the work it took (bytes inflated and members read), for the caller's
/// per-file budget.
pub fn open_counting(bytes: &[u8]) -> (Opened, usize) {
    let (opened, work, _) = open_walking(bytes);
    (opened, work)
}

/// [`open_counting`], and the offsets in `bytes` of the later gzip members and the tar
/// headers the walk read from there on: this archive's own starts, which a search must
/// not open again (a file of 4,098 gzip members was opened from each of its members, each
/// opening reporting the same limit). Ascending.
pub(crate) fn open_walking(bytes: &[u8]) -> (Opened, usize, Vec<usize>) {
    let mut work = Work::new();
    let opened = open_nested(bytes, 0, &mut work);
    (opened, work.done().max(1), std::mem::take(&mut work.walked))
}

/// [`open`] for an archive `depth` containers deep (a tar entry of a ZIP), charging what
/// it does to `work`, which the containers around it share.
pub(crate) fn open_nested(bytes: &[u8], depth: usize, work: &mut Work) -> Opened {
    let Some(format) = sniff_archive(bytes) else {
        return Opened::NotArchive;
    };
    // This archive's own limit, if it reaches one; the first one reached in the file is
    // kept for whoever reports it.
    let outer = work.reached.take();
    let mut members = 0usize;
    let opened = match carried(bytes, format, depth, work, &mut members) {
        Some(Ok((member, format, detail))) => Opened::Carries {
            member,
            format,
            detail,
        },
        Some(Err(())) => Opened::NotArchive,
        None => match work.reached.clone() {
            Some(detail) => Opened::Limit { format, detail },
            None => Opened::Inert { format, members },
        },
    };
    work.reached = outer.or(work.reached.take());
    opened
}

/// An xz, 7z or bzip2 stream at the start of `bytes`, confirmed by what its format checks
/// before anything else (xz: the CRC-32 of the stream flags; 7z: the CRC-32 of the start
/// header; bzip2: the block magic after the header): a chance magic in pixel data is not
/// one. These cannot be opened here: the format and one sentence.
pub fn confirm_compressed(bytes: &[u8]) -> Option<(Format, String)> {
    let crc_le = |at: usize| format::u32_le(bytes, at);
    if bytes.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        let flags = bytes.get(6..8)?;
        if flags[0] == 0
            && matches!(flags[1], 0x00 | 0x01 | 0x04 | 0x0A)
            && crc_le(8)? == crc32fast::hash(flags)
        {
            return Some((
                Format::Xz,
                "an xz stream (stream header CRC valid)".to_owned(),
            ));
        }
        return None;
    }
    if bytes.starts_with(&[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C]) {
        let start_header = bytes.get(12..32)?;
        if bytes[6] == 0 && bytes[7] <= 4 && crc_le(8)? == crc32fast::hash(start_header) {
            return Some((
                Format::SevenZip,
                "a 7z archive (start header CRC valid)".to_owned(),
            ));
        }
        return None;
    }
    (format::sniff(bytes.get(..10)?) == Some(Format::Bzip2)).then(|| {
        (
            Format::Bzip2,
            "a bzip2 stream (block magic after its header)".to_owned(),
        )
    })
}

/// gzip or tar, from the first bytes (tar by its ustar magic at 257 and its checksum).
pub fn sniff_archive(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0x1F, 0x8B, 0x08]) {
        return Some(Format::Gzip);
    }
    let ustar = bytes.get(257..262) == Some(b"ustar");
    (ustar && tar_header_valid(bytes)).then_some(Format::Tar)
}

type Found = Result<(String, Option<Format>, String), ()>;

/// The first member of the archive `bytes` (of `format`) that runs; `Some(Err)` when the
/// outer structure does not hold; `None` when nothing runs. A member that could not be
/// looked into, or a limit, is noted in `work.reached` and the walk goes on: what it
/// could not tell never hides a later member that runs.
fn carried(
    bytes: &[u8],
    format: Format,
    depth: usize,
    work: &mut Work,
    members: &mut usize,
) -> Option<Found> {
    if depth >= MAX_ARCHIVE_DEPTH {
        work.reached.get_or_insert(format!(
            "archives nested more than {MAX_ARCHIVE_DEPTH} deep (MAX_ARCHIVE_DEPTH)"
        ));
        return None;
    }
    match format {
        Format::Gzip => {
            let Ok(gunzipped) = gunzip(bytes, work) else {
                return Some(Err(()));
            };
            if depth == 0 {
                work.walked.extend(&gunzipped.member_offsets);
            }
            *members += 1;
            let name = if gunzipped.name.is_empty() {
                "(unnamed)".to_owned()
            } else {
                gunzipped.name
            };
            let inner = &gunzipped.out;
            match member_verdict(&name, inner, depth, work, members) {
                Verdict::Runs(found) => return Some(Ok(found)),
                Verdict::CannotTell(why) => {
                    work.reached.get_or_insert(why);
                }
                Verdict::Inert => {}
            }
            // Each later member from its own start, as `tail -c +N file.gz | gunzip`
            // writes it: a search no longer opens the members past the first from their
            // own starts (one walk covers them), so a program in a member after text is
            // found here.
            let hta_end = last_hta_end(inner);
            let mut ends = gunzipped.starts.iter().skip(1).copied();
            for (n, start) in gunzipped.starts.iter().copied().enumerate() {
                let end = ends.next().unwrap_or(inner.len());
                if start >= end {
                    continue;
                }
                let judged = member_from_its_start(inner, start, end, hta_end, work);
                let member = format!("{name} (gzip member {})", n + 2);
                match member_verdict(&member, judged, depth, work, members) {
                    Verdict::Runs(found) => return Some(Ok(found)),
                    Verdict::CannotTell(why) => {
                        work.reached.get_or_insert(why);
                    }
                    Verdict::Inert => {}
                }
            }
            None
        }
        Format::Tar => {
            let mut at = 0usize;
            let mut long_name: Option<String> = None;
            while let Some(header) = bytes.get(at..at + 512) {
                if header.iter().all(|&b| b == 0) {
                    return None; // the end-of-archive blocks
                }
                if !tar_header_valid(header) {
                    if at == 0 {
                        return Some(Err(()));
                    }
                    // GNU tar does not stop at a damaged header: it says "Skipping to
                    // next header" and extracts the members after it (exit status 2, the
                    // files written all the same). So is the walk: block by block, each
                    // skipped block counted as a member (a checksum of 512 bytes), or a
                    // file of headers among garbage would cost each of its tar candidates
                    // a walk to its end (8 MB: 10 s).
                    if work.members == 0 {
                        work.reached.get_or_insert(format!(
                            "more than {MAX_ARCHIVE_MEMBERS} archive members and damaged blocks skipped (MAX_ARCHIVE_MEMBERS)"
                        ));
                        return None;
                    }
                    work.members -= 1;
                    long_name = None;
                    at += 512;
                    continue;
                }
                if work.members == 0 {
                    work.reached.get_or_insert(format!(
                        "more than {MAX_ARCHIVE_MEMBERS} archive members (MAX_ARCHIVE_MEMBERS)"
                    ));
                    return None;
                }
                work.members -= 1;
                if depth == 0 && at > 0 {
                    work.walked.push(at);
                }
                let size = tar_size(&header[124..136])?;
                let start = at + 512;
                let data = bytes.get(start..start.saturating_add(size).min(bytes.len()))?;
                let name = long_name.take().unwrap_or_else(|| {
                    let end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
                    String::from_utf8_lossy(&header[..end]).into_owned()
                });
                match header[156] {
                    b'L' => {
                        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                        long_name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
                    }
                    // A pax extended header: its `path` record is the name the next
                    // member is extracted under (GNU tar and Python's tarfile use it over
                    // the header's own name), so a `run.bat` can hide behind `notes.txt`.
                    b'x' => {
                        if let Some(path) = pax_path(data) {
                            long_name = Some(path);
                        }
                    }
                    b'0' | 0 | b'7' => {
                        *members += 1;
                        match member_verdict(&name, data, depth, work, members) {
                            Verdict::Runs(found) => return Some(Ok(found)),
                            Verdict::CannotTell(why) => {
                                work.reached.get_or_insert(why);
                            }
                            Verdict::Inert => {}
                        }
                    }
                    _ => {} // directories, links, pax headers
                }
                at = start.checked_add(size.div_ceil(512).checked_mul(512)?)?;
            }
            None
        }
        _ => Some(Err(())),
    }
}

/// What one member is to the program that gets it once extracted.
enum Verdict {
    /// It runs, or carries what runs: the member's name, its format, one sentence.
    Runs((String, Option<Format>, String)),
    /// Nothing a loader acts on: an image, a report, XML, text, an archive of those.
    Inert,
    /// It could not be looked into (a format not opened here, a limit): one sentence.
    CannotTell(String),
}

/// Whether one member runs (or holds something that runs). Containers are judged by
/// what they hold, as the same file on its own is: a ZIP of images, a document without
/// macros, an HTML page are inert members; a JAR, a document with macros, an HTA run.
fn member_verdict(
    name: &str,
    data: &[u8],
    depth: usize,
    work: &mut Work,
    members: &mut usize,
) -> Verdict {
    let shown = pacsguard_events::escape_bytes(&name.as_bytes()[..name.len().min(64)]);
    if let Some(exe) = format::confirm_executable(data) {
        return Verdict::Runs((
            name.to_owned(),
            Some(exe.format),
            format!("\"{shown}\": {}", exe.detail),
        ));
    }
    let sniffed = format::sniff(data);
    let by_content = if let Some(inner) = sniff_archive(data) {
        match carried(data, inner, depth + 1, work, members) {
            Some(Ok((member, format, detail))) => {
                return Verdict::Runs((
                    member,
                    format,
                    format!("in \"{shown}\" ({inner}), {detail}"),
                ));
            }
            // Limits met inside were noted in `work` by the walk.
            Some(Err(())) | None => Verdict::Inert,
        }
    } else {
        match sniffed {
            Some(Format::Zip) => match crate::embedded::zip_nested(data, depth + 1, work) {
                crate::embedded::WholeZip::Runs(entry) => {
                    return Verdict::Runs((
                        name.to_owned(),
                        Some(Format::Zip),
                        format!("\"{shown}\" is a ZIP archive with an entry that runs ({entry})"),
                    ));
                }
                crate::embedded::WholeZip::Inert(_) => Verdict::Inert,
                crate::embedded::WholeZip::CannotTell(why) => Verdict::CannotTell(format!(
                    "\"{shown}\" is a ZIP archive whose entries were not all read ({why})"
                )),
            },
            Some(carrier @ (Format::Ole | Format::Rtf | Format::Cab)) => {
                let judged = match carrier {
                    Format::Ole => crate::carriers::ole(data),
                    Format::Rtf => crate::carriers::rtf(data),
                    _ => crate::carriers::cab(data),
                };
                match judged {
                    crate::carriers::Carries::Runs(what) => {
                        return Verdict::Runs((
                            name.to_owned(),
                            Some(carrier),
                            format!("\"{shown}\" is a {carrier} file carrying {what}"),
                        ));
                    }
                    crate::carriers::Carries::Inert(_) => Verdict::Inert,
                    crate::carriers::Carries::CannotTell(why) => Verdict::CannotTell(format!(
                        "\"{shown}\" is a {carrier} file that could not be read to its end ({why})"
                    )),
                }
            }
            Some(
                compressed @ (Format::Xz
                | Format::Bzip2
                | Format::Zstd
                | Format::SevenZip
                | Format::Rar),
            ) => Verdict::CannotTell(format!(
                "\"{shown}\" is a {compressed} archive, which is not opened here"
            )),
            // A page is acted on for the script it holds when a browser renders it, as
            // every web page is; only an HTA asks mshta for a program's rights.
            Some(Format::Html) if !is_hta(data) => Verdict::Inert,
            Some(format) if format.runs_or_carries() => {
                return Verdict::Runs((
                    name.to_owned(),
                    Some(format),
                    format!("\"{shown}\" is a {format} file"),
                ));
            }
            _ => Verdict::Inert,
        }
    };
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if let Some(extension) = extension.filter(|e| format::RUNNABLE_EXTENSIONS.contains(&e.as_str()))
    {
        return Verdict::Runs((
            name.to_owned(),
            sniffed,
            format!("\"{shown}\": a .{extension} file runs when opened"),
        ));
    }
    by_content
}

/// `<hta:application>` (any case) in a page: it asks mshta for a program's rights.
fn is_hta(data: &[u8]) -> bool {
    memchr::memchr_iter(b'<', data).any(|at| hta_tag_at(data, at))
}

/// Where the last `<hta:` (any case) in `data` ends. Found by its `<` (memchr), not by a
/// comparison at every byte: an inflated gzip member of up to
/// MAX_ARCHIVE_INFLATED_BYTES was compared byte by byte, backwards, for each gzip
/// candidate (70% of the screening of an element of gzip bombs; review r24-scan).
fn last_hta_end(data: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b'<', data)
        .find(|&at| hta_tag_at(data, at))
        .map(|at| at + HTA_TAG.len())
}

const HTA_TAG: &[u8] = b"<hta:";

fn hta_tag_at(data: &[u8], at: usize) -> bool {
    data.get(at..at + HTA_TAG.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(HTA_TAG))
}

/// The name and the inflated content of a gzip file, if its first member's structure
/// holds. `gzip -d` (and so `tar xzf`) writes the members of a file one after the other
/// as one output: a tar whose second half is in a second member is one tar, so every
/// member that follows is inflated onto the first; one that is damaged adds what
/// inflated before the damage, as `gzip -d` writes it before it complains.
fn gunzip(bytes: &[u8], budget: &mut Work) -> Result<Gunzipped, ()> {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    let mut member_offsets = Vec::new();
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut chunk = vec![0u8; 64 * 1024];
    let (name, mut at) = gunzip_member(bytes, budget, &mut out, &mut state, &mut chunk)?;
    while budget.inflated > 0
        && bytes
            .get(at..)
            .is_some_and(|rest| rest.starts_with(&[0x1F, 0x8B, 0x08]))
    {
        // Each member is a member of the file's archives: 400,000 empty 20-byte members
        // (8 MB) took minutes before they were counted.
        if budget.members == 0 {
            budget.reached.get_or_insert(format!(
                "more than {MAX_ARCHIVE_MEMBERS} archive members (MAX_ARCHIVE_MEMBERS)"
            ));
            break;
        }
        budget.members -= 1;
        state.reset(DataFormat::Raw);
        starts.push(out.len());
        member_offsets.push(at);
        match gunzip_member(&bytes[at..], budget, &mut out, &mut state, &mut chunk) {
            Ok((_, used)) => at += used,
            Err(()) => break,
        }
    }
    Ok(Gunzipped {
        name,
        out,
        starts,
        member_offsets,
    })
}

/// How far past a later gzip member's own bytes it is read to tell what its start names:
/// a magic split over two members (`M` in one, `Z...` in the next, `<ht` and `ml>`) is
/// named from the first. This bounds the extra read per member (4,096 members: 16 MiB,
/// not the whole output each); a start is named within a few bytes of where it starts.
pub const GZIP_MEMBER_NAMING_BYTES: usize = 4096;

/// A later gzip member (bytes `start..end` of everything the file inflated to), as a
/// search opening the file at this member read it before members were walked once: from
/// its start on. A container whose structure goes on in the members after it (a tar cut
/// in the middle of a member's data, a ZIP, a compound file) is judged through every
/// member after it, charged to the inflation limit (past it, by its own bytes, the limit
/// noted), and a page as far as the last `<hta:` (`hta_end`: it makes the page an HTA
/// wherever it is); any other start is judged by its own bytes and [`GZIP_MEMBER_NAMING_BYTES`]
/// after them, as a start names a file (a program split over two members is one).
fn member_from_its_start<'a>(
    inner: &'a [u8],
    start: usize,
    end: usize,
    hta_end: Option<usize>,
    work: &mut Work,
) -> &'a [u8] {
    let from_here = &inner[start..];
    let named = &from_here[..from_here
        .len()
        .min((end - start).saturating_add(GZIP_MEMBER_NAMING_BYTES))];
    let sniffed = format::sniff(named);
    if sniffed == Some(Format::Html) {
        // A page goes on to the end of what `gzip -d` writes, too: an `<hta:` that a
        // later member holds, however far past the member that starts the page, makes
        // it an HTA (review s9-r10: one byte more than GZIP_MEMBER_NAMING_BYTES in, it
        // was a plain page). Where the last one ends was found once for all members
        // (re-reading every page member to the end was quadratic), and a page that
        // reaches it is an HTA, which ends the walk.
        if let Some(end_of_tag) = hta_end.filter(|&e| e > start + named.len()) {
            return &inner[start..end_of_tag];
        }
        return named;
    }
    let spans = matches!(
        sniffed,
        Some(Format::Tar | Format::Gzip | Format::Zip | Format::Ole | Format::Cab | Format::Rtf)
    );
    if !spans || named.len() == from_here.len() {
        return named;
    }
    if from_here.len() > work.inflated {
        work.reached.get_or_insert(format!(
            "gzip members read again from their own starts past {MAX_ARCHIVE_INFLATED_BYTES} bytes (MAX_ARCHIVE_INFLATED_BYTES)"
        ));
        return named;
    }
    work.inflated -= from_here.len();
    from_here
}

/// A gzip file's members, inflated one after the other as `gzip -d` writes them.
struct Gunzipped {
    /// The first member's name (FNAME), which `gzip -d` writes the output under.
    name: String,
    out: Vec<u8>,
    /// Where each member after the first starts in `out` (one per member: at most
    /// [`MAX_ARCHIVE_MEMBERS`]).
    starts: Vec<usize>,
    /// Where each member after the first starts in the gzip file's bytes (one per entry
    /// of `starts`).
    member_offsets: Vec<usize>,
}

/// One gzip member at the start of `bytes`, inflated onto `out`: its name and the bytes
/// it takes (to where the inflation stopped, if a limit stopped it), if its whole
/// structure holds.
fn gunzip_member(
    bytes: &[u8],
    budget: &mut Work,
    out: &mut Vec<u8>,
    state: &mut InflateState,
    chunk: &mut [u8],
) -> Result<(String, usize), ()> {
    let first = out.len();
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let flags = *bytes.get(3).ok_or(())?;
    if flags & 0xE0 != 0 {
        return Err(()); // reserved bits: gzip refuses the file
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let len = usize::from(format::u16_le(bytes, at).ok_or(())?);
        at += 2 + len;
    }
    let mut name = String::new();
    if flags & FNAME != 0 {
        let end = memchr::memchr(0, bytes.get(at..).ok_or(())?).ok_or(())?;
        name = String::from_utf8_lossy(&bytes[at..at + end]).into_owned();
        at += end + 1;
    }
    if flags & FCOMMENT != 0 {
        at += 1 + memchr::memchr(0, bytes.get(at..).ok_or(())?).ok_or(())?;
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    let compressed = bytes.get(at..).ok_or(())?;
    let mut read = 0usize;
    loop {
        let result = inflate(state, &compressed[read..], chunk, MZFlush::None);
        read += result.bytes_consumed;
        if result.bytes_written > budget.inflated {
            budget.reached.get_or_insert(format!(
                "a gzip member inflating to more than {MAX_ARCHIVE_INFLATED_BYTES} bytes (MAX_ARCHIVE_INFLATED_BYTES)"
            ));
            // What inflated is still screened: the start of a file is what names it.
            out.extend_from_slice(&chunk[..budget.inflated]);
            budget.inflated = 0;
            return Ok((name, at + read));
        }
        budget.inflated -= result.bytes_written;
        out.extend_from_slice(&chunk[..result.bytes_written]);
        match result.status {
            Ok(MZStatus::StreamEnd) => break,
            Ok(_) if result.bytes_consumed > 0 || result.bytes_written > 0 => {}
            _ => return Err(()), // damaged or cut short: gzip reports an error
        }
    }
    let trailer = compressed.get(read..read + 8).ok_or(())?;
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    let member = &out[first..];
    if crc != crc32fast::hash(member) || size != member.len() as u32 {
        return Err(()); // gzip reports "crc error": not a file it delivers
    }
    Ok((name, at + read + 8))
}

/// The `path` record of a pax extended header (records `LEN key=value\n`, POSIX.1-2001).
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() {
        let space = memchr::memchr(b' ', rest)?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = rest.get(space + 1..len.checked_sub(1)?)?;
        if let Some(path) = record.strip_prefix(b"path=") {
            // The last record of a key wins, as in tar.
            found = Some(String::from_utf8_lossy(path).into_owned());
        }
        rest = rest.get(len..)?;
    }
    found
}

/// A tar header's checksum holds (the sum of its bytes, the checksum field as spaces).
fn tar_header_valid(header: &[u8]) -> bool {
    let Some(header) = header.get(..512) else {
        return false;
    };
    let Some(stored) = octal(&header[148..156]) else {
        return false;
    };
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    // The first 148 bytes hold a name: a header of zeros with spaces is no header.
    sum == stored && header[0] != 0
}

/// A member's size: octal digits, or GNU's base-256 form (high bit set).
fn tar_size(field: &[u8]) -> Option<usize> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let value = field[1..].iter().try_fold(0u64, |acc, &b| {
            acc.checked_mul(256)?.checked_add(u64::from(b))
        })?;
        return usize::try_from(value).ok();
    }
    usize::try_from(octal(field)?).ok()
}

fn octal(field: &[u8]) -> Option<u64> {
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod hta_tests {
    use super::*;

    /// The memchr search finds what a comparison at every byte finds, first and last.
    #[test]
    fn the_hta_tag_is_found_where_a_byte_by_byte_search_finds_it() {
        let bytewise_last = |d: &[u8]| {
            d.windows(5)
                .rposition(|w| w.eq_ignore_ascii_case(b"<hta:"))
                .map(|at| at + 5)
        };
        for data in [
            &b""[..],
            b"<hta",
            b"<hta:",
            b"x<HtA:application><<hta:y",
            b"<<<<hta:<hta",
            b"<script><hta:app>\0\0<HTA:",
            b"no tag <ht a: here <",
        ] {
            assert_eq!(last_hta_end(data), bytewise_last(data), "{data:?}");
            assert_eq!(is_hta(data), bytewise_last(data).is_some(), "{data:?}");
        }
    }
}
