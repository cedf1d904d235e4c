//! A PDF's objects, found the way a reader finds them when the cross-reference data is
//! broken or lies: every `N G obj` header in the file, plus every offset that a
//! cross-reference table or stream names (so a header written with comments between its
//! tokens is not missed), plus every object inside an object stream. Every revision of
//! an incremental update is kept: the analysis looks at all of them, since readers
//! disagree on which one wins when the file is damaged.
//!
//! Encryption is set up from the trailer (classic or cross-reference stream) before any
//! string or stream is read, and undone for each object with its own number and
//! generation.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::budget::{Budget, Limit, MAX_PDF_ENCRYPTION_VERSIONS, Work};
use super::crypt::{self, Decryptor, Setup, StreamCrypt};
use super::filters::{self, Filter};
use super::lexer::{Dict, Lexer, Obj, get, is_whitespace};

/// One indirect object.
#[derive(Debug)]
pub struct Object {
    pub num: u32,
    pub generation: u16,
    pub value: Obj,
    /// Where the stream data starts in the document, for a stream.
    pub stream: Option<usize>,
    /// Offset of the object (or of the object stream holding it) in the document.
    pub offset: usize,
    /// Inside an object stream: decrypted with it, not on its own.
    pub in_object_stream: bool,
}

/// How a reader undoes the encryption of a document that opens without a password. Readers
/// part ways on two points, and an attacker picks the side that hides the content from
/// the reading done here, so each is read both ways (see [`Document::other_readings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Every string and stream decrypted (mutool, under `/EncryptMetadata false` too).
    Decrypted,
    /// As [`Reading::Decrypted`], but streams typed `/Metadata` left as stored when the
    /// encryption dictionary says `/EncryptMetadata false` (qpdf, whatever the stream is
    /// used for).
    MetadataInClear,
    /// Nothing decrypted: the newest trailer names no `/Encrypt` (an incremental update
    /// without one), and qpdf and mutool read the document from the newest trailer.
    Unencrypted,
    /// As [`Reading::Decrypted`], with another version of the encryption dictionary (the
    /// index of that object): an update, or an object written after the last
    /// cross-reference section, can redefine it under its number; qpdf and mutool take
    /// the version the newest cross-reference section names, a reader repairing the file
    /// the last in it, and [`Reading::Decrypted`] the last parsed.
    DecryptedWithVersion(usize),
}

/// What stopped decryption, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    None,
    Open,
    NeedsPassword,
    Unsupported(String),
}

/// An object stream whose header listed fewer objects than its `/N`: its data did not
/// decode (or was cut short).
#[derive(Debug, Clone, Copy)]
pub struct UndecodedObjectStream {
    pub offset: usize,
    pub declared: usize,
    pub found: usize,
}

#[derive(Debug)]
pub struct Document<'a> {
    bytes: &'a [u8],
    pub objects: Vec<Object>,
    /// The version of each object [`Document::resolve`] reads: the last parsed.
    index: HashMap<(u32, u16), usize>,
    /// Every version of each object (an incremental update redefines one under its
    /// number), in the order parsed: which one a reader takes depends on whether it
    /// follows the cross-reference data or repairs the file, so what a version carries
    /// is screened in each of them ([`Document::lookup_every_version`]).
    versions: HashMap<(u32, u16), Vec<usize>>,
    decryptor: Option<Decryptor>,
    pub encryption: Encryption,
    /// Object number of the encryption dictionary: its strings are never encrypted.
    encrypt_object: Option<(u32, u16)>,
    reading: Reading,
    /// The encryption dictionary says `/EncryptMetadata false`.
    metadata_in_clear: bool,
    /// The trailer last in the file (the newest revision's) names no `/Encrypt` while an
    /// older one does.
    newest_trailer_unencrypted: bool,
    /// The versions of the encryption dictionary other than the one read (indexes of
    /// objects), each read as [`Reading::DecryptedWithVersion`].
    other_encryption_versions: Vec<usize>,
    /// Every trailer dictionary (classic, and of cross-reference streams), newest first:
    /// by place in the file, the last first, as readers take `/Root`, `/Encrypt` and
    /// `/ID` from the newest.
    trailers: Vec<Dict>,
    /// Object streams named by type-2 cross-reference entries: a reader loads them by
    /// number, whatever their `/Type` says.
    object_streams: HashSet<u32>,
    /// For each object a type-2 cross-reference entry names, the object streams said to
    /// hold it (each with where the cross-reference stream saying so is): what a reader
    /// loads to read it. Once the sections' newness is known, ordered newest section
    /// first, each stream once ([`Document::order_holders_newest_first`]).
    held_in: HashMap<u32, Vec<(u32, usize)>>,
    /// Answers already found to "the first `endstream` at or after p": found at -> the
    /// lowest p searched from (`bytes.len()` for none). No byte is searched twice, so
    /// recovering thousands of streams without a good `/Length` stays linear.
    endstreams: BTreeMap<usize, usize>,
    /// Object streams whose data did not decode to the objects they declare (not for a
    /// budget, which is reported as such): the objects missing were not read.
    pub undecoded_object_streams: Vec<UndecodedObjectStream>,
    /// Offsets of the object streams a budget kept from being read whole (or at all):
    /// what they hold was not inspected, and is named as such.
    pub object_streams_cut: Vec<usize>,
    pub budget: Budget,
}

impl<'a> Document<'a> {
    pub fn read(bytes: &'a [u8], budget: Budget) -> Document<'a> {
        Self::read_as(bytes, budget, Reading::Decrypted)
    }

    /// The document as a reader that undoes its encryption in the way `reading` says.
    pub fn read_as(bytes: &'a [u8], budget: Budget, reading: Reading) -> Document<'a> {
        let mut doc = Document {
            bytes,
            objects: Vec::new(),
            index: HashMap::new(),
            versions: HashMap::new(),
            decryptor: None,
            encryption: Encryption::None,
            encrypt_object: None,
            reading,
            metadata_in_clear: false,
            newest_trailer_unencrypted: false,
            other_encryption_versions: Vec::new(),
            trailers: Vec::new(),
            object_streams: HashSet::new(),
            held_in: HashMap::new(),
            endstreams: BTreeMap::new(),
            undecoded_object_streams: Vec::new(),
            object_streams_cut: Vec::new(),
            budget,
        };
        let mut parsed = HashSet::new();
        doc.scan_headers(&mut parsed);
        let mut trailers = doc.classic_trailers();
        let named = doc.xref_offsets(&mut trailers);
        let base = header_offset(bytes).unwrap_or(0);
        let chain = section_chain(bytes, &named, &trailers, base, &mut doc.budget.work);
        let newness = Newness::of(&chain);
        let sections = newest_section_naming(&named, &newness, base);
        for &(offset, _) in &named {
            for at in [offset, offset.saturating_add(base)] {
                if !parsed.contains(&at) {
                    parsed.insert(at);
                    doc.parse_at_offset(at);
                }
            }
        }
        // A trailer is as new as its section: a table's is the last before it, a
        // cross-reference stream's is itself.
        let mut section_places: Vec<usize> = named.iter().map(|&(_, section)| section).collect();
        section_places.sort_unstable();
        section_places.dedup();
        trailers.sort_by_key(|(at, _)| {
            let section = match section_places.binary_search(at) {
                Ok(i) => section_places[i],
                Err(0) => *at,
                Err(i) => section_places[i - 1],
            };
            std::cmp::Reverse((newness.of_section(section), *at))
        });
        doc.trailers = trailers.into_iter().map(|(_, trailer)| trailer).collect();
        doc.order_holders_newest_first(&newness);
        doc.read_versions_the_newest_sections_name(&sections);
        if reading != Reading::Unencrypted {
            doc.set_up_encryption();
        }
        doc.decrypt_strings();
        doc.expand_object_streams();
        doc.read_versions_the_newest_sections_name(&sections);
        doc
    }

    /// Orders the object streams said to hold each object as readers consult them: the
    /// newest cross-reference section's first (an older section putting the catalog in a
    /// decoy stream was followed first, review rv33-screen), each stream once.
    fn order_holders_newest_first(&mut self, newness: &Newness) {
        for holders in self.held_in.values_mut() {
            // Stable: among streams one section names, the order it names them in.
            holders.sort_by_key(|&(_, section)| std::cmp::Reverse(newness.of_section(section)));
            let mut seen = HashSet::new();
            holders.retain(|&(stream, _)| seen.insert(stream));
        }
    }

    /// Makes [`Document::resolve`] read each object in the version qpdf and mutool read:
    /// the one at the offset the newest cross-reference section names ([`Newness`]), an
    /// object stream's objects by where the stream
    /// is; among versions no section names, or one names alike, the last parsed (as a
    /// reader repairing the file reads). The other versions are still there for what is
    /// read in every version ([`Document::lookup_every_version`]).
    fn read_versions_the_newest_sections_name(&mut self, sections: &HashMap<usize, usize>) {
        for (key, versions) in &self.versions {
            let newest = versions
                .iter()
                .enumerate()
                .max_by_key(|&(order, &i)| {
                    let named = self.objects.get(i).and_then(|o| sections.get(&o.offset));
                    (named.copied(), order)
                })
                .map(|(_, &i)| i);
            if let Some(newest) = newest {
                self.index.insert(*key, newest);
            }
        }
    }

    /// Where the document catalog is, found as readers find it: the object the newest
    /// trailer's (or cross-reference stream's) `/Root` names (an older one's if that names
    /// nothing here), whatever its `/Type` says (qpdf and
    /// mutool open it), else the last object typed `/Catalog` (how MuPDF repairs a file without a
    /// trailer). `None`: no reader would show this as a document.
    pub fn catalog_offset(&self) -> Option<usize> {
        self.catalog().map(|(offset, _)| offset)
    }

    /// The document catalog found as [`Document::catalog_offset`] finds it: where it is,
    /// and its dictionary.
    pub fn catalog(&self) -> Option<(usize, &Dict)> {
        let rooted = self.trailers.iter().find_map(|trailer| {
            let index = self.lookup(get(trailer, b"Root")?)?;
            let object = self.objects.get(index)?;
            object.value.as_dict().map(|dict| (object.offset, dict))
        });
        // Without a trailer, the last object typed `/Catalog`, in the version of its
        // number readers read: MuPDF's repair takes the last it meets. The first let an
        // early catalog's `/URI /Base` speak for a document MuPDF opens with another
        // (review rv34-screen).
        rooted.or_else(|| {
            self.objects
                .iter()
                .enumerate()
                .rev()
                .find(|&(i, o)| type_is(&o.value, b"Catalog") && self.is_the_version_read(i))
                .and_then(|(_, o)| o.value.as_dict().map(|dict| (o.offset, dict)))
        })
    }

    /// Whether object `index` is the version of its number that readers read.
    pub fn is_the_version_read(&self, index: usize) -> bool {
        self.objects.get(index).is_some_and(|object| {
            self.lookup(&Obj::Ref(object.num, object.generation)) == Some(index)
        })
    }

    /// Every `N G obj` in the file.
    fn scan_headers(&mut self, parsed: &mut HashSet<usize>) {
        let bytes = self.bytes;
        for at in memchr::memmem::find_iter(bytes, b"obj") {
            let after_ok = bytes.get(at + 3).is_none_or(|b| !is_regular_byte(*b));
            if !after_ok {
                continue;
            }
            let Some((num, generation, start)) = header_before(bytes, at) else {
                continue;
            };
            if !parsed.insert(start) {
                continue;
            }
            if !self.parse_body(num, generation, start, at + 3) {
                return;
            }
        }
    }

    /// Parses the body that starts at `body` for object `num generation` whose header is
    /// at `start`; `false` once the budget is gone.
    fn parse_body(&mut self, num: u32, generation: u16, start: usize, body: usize) -> bool {
        let left = self.budget.parsed_left();
        if left == 0 || !self.budget.object() {
            return false;
        }
        let end = self.bytes.len().min(body.saturating_add(left));
        let mut lexer = Lexer::new(self.bytes.get(..end).unwrap_or_default(), body);
        let parsed = lexer.object_body();
        if lexer.too_deep {
            self.budget.reach(Limit::Nesting);
        }
        self.budget
            .spend_parsed(lexer.pos.saturating_sub(body).max(1));
        if let Some((value, stream)) = parsed {
            self.insert(Object {
                num,
                generation,
                value,
                stream,
                offset: start,
                in_object_stream: false,
            });
        }
        true
    }

    /// An object at an offset named by a cross-reference entry: `N G obj` read as tokens,
    /// so comments and any whitespace may sit between them.
    fn parse_at_offset(&mut self, at: usize) {
        let Some(mut lexer) = self.bounded_lexer(at) else {
            return;
        };
        let header = (lexer.token(0), lexer.token(0), lexer.token(0));
        self.budget
            .spend_parsed(lexer.pos.saturating_sub(at).max(1));
        if let (Some(Obj::Int(num)), Some(Obj::Int(generation)), Some(Obj::Keyword(word))) = header
            && word == b"obj"
            && let (Ok(num), Ok(generation)) = (u32::try_from(num), u16::try_from(generation))
        {
            let body = lexer.pos;
            self.parse_body(num, generation, at, body);
        }
    }

    /// A lexer at `at` that stops where the parsing budget ends; `None` once it is gone.
    fn bounded_lexer(&mut self, at: usize) -> Option<Lexer<'a>> {
        let left = self.budget.parsed_left();
        if left == 0 {
            self.budget.reach(Limit::ParsedBytes);
            return None;
        }
        let end = self.bytes.len().min(at.saturating_add(left));
        Some(Lexer::new(self.bytes.get(..end).unwrap_or_default(), at))
    }

    fn insert(&mut self, object: Object) {
        let key = (object.num, object.generation);
        self.index.insert(key, self.objects.len());
        self.versions
            .entry(key)
            .or_default()
            .push(self.objects.len());
        self.objects.push(object);
    }

    /// The readings of this document (read as [`Reading::Decrypted`]) that other readers
    /// make, each with why; none for a document that is not encrypted or cannot be
    /// decrypted.
    pub fn other_readings(&self) -> Vec<(Reading, &'static str)> {
        // Whether or not the version read here opens: another may (a version that needs a
        // password is no disguise for one that does not).
        let mut readings: Vec<(Reading, &'static str)> = self
            .other_encryption_versions
            .iter()
            .map(|&version| {
                (
                    Reading::DecryptedWithVersion(version),
                    "read with another version of its encryption dictionary, as readers that take that version read it",
                )
            })
            .collect();
        if self.encryption != Encryption::Open {
            return readings;
        }
        if self.metadata_in_clear
            && self
                .objects
                .iter()
                .any(|o| o.stream.is_some() && type_is(&o.value, b"Metadata"))
        {
            readings.push((
                Reading::MetadataInClear,
                "read as qpdf reads it: /EncryptMetadata false, so streams typed /Metadata are not decrypted",
            ));
        }
        if self.newest_trailer_unencrypted {
            readings.push((
                Reading::Unencrypted,
                "read as qpdf and mutool read it: unencrypted, since its newest trailer names no /Encrypt",
            ));
        }
        readings
    }

    /// The dictionaries after every `trailer` keyword, with where each is.
    fn classic_trailers(&mut self) -> Vec<(usize, Dict)> {
        let mut trailers = Vec::new();
        for at in memchr::memmem::find_iter(self.bytes, b"trailer") {
            let Some(mut lexer) = self.bounded_lexer(at + b"trailer".len()) else {
                break;
            };
            let token = lexer.token(0);
            self.budget.spend_parsed(lexer.pos - at);
            if let Some(Obj::Dict(dict)) = token {
                trailers.push((at, dict));
            }
        }
        trailers
    }

    /// The in-use offsets of every cross-reference table and stream, each with where
    /// that table or stream is; the streams' dictionaries are trailers too.
    fn xref_offsets(&mut self, trailers: &mut Vec<(usize, Dict)>) -> Vec<(usize, usize)> {
        let mut named = Vec::new();
        let mut offsets = Vec::new();
        for at in memchr::memmem::find_iter(self.bytes, b"xref") {
            if at > 0 && self.bytes.get(at - 1).is_some_and(|b| !is_whitespace(*b)) {
                continue; // "startxref", or the word in text
            }
            self.xref_table(at + 4, &mut offsets);
            named.extend(offsets.drain(..).map(|offset| (offset, at)));
        }
        let streams: Vec<usize> = (0..self.objects.len())
            .filter(|&i| self.objects[i].stream.is_some() && is_xref_stream(&self.objects[i].value))
            .collect();
        for i in streams {
            if let Some(dict) = self.objects[i].value.as_dict().cloned() {
                let at = self.objects[i].offset;
                if let Some(data) = self.decode_stream(i) {
                    self.xref_stream(&dict, &data, at, &mut offsets);
                }
                named.extend(offsets.drain(..).map(|offset| (offset, at)));
                trailers.push((at, dict));
            }
        }
        named
    }

    fn xref_table(&mut self, from: usize, offsets: &mut Vec<usize>) {
        let Some(mut lexer) = self.bounded_lexer(from) else {
            return;
        };
        loop {
            let save = lexer.pos;
            let (Some(Obj::Int(_)), Some(Obj::Int(count))) = (lexer.token(0), lexer.token(0))
            else {
                lexer.pos = save;
                break;
            };
            for _ in 0..count.max(0) {
                if !self.budget.xref_entry() {
                    return;
                }
                match (lexer.token(0), lexer.token(0), lexer.token(0)) {
                    (Some(Obj::Int(offset)), Some(Obj::Int(_)), Some(Obj::Keyword(kind))) => {
                        if kind == b"n"
                            && let Ok(offset) = usize::try_from(offset)
                            && offset > 0
                        {
                            offsets.push(offset);
                        }
                    }
                    _ => {
                        self.budget.spend_parsed(lexer.pos - from);
                        return;
                    }
                }
            }
        }
        self.budget.spend_parsed(lexer.pos - from);
    }

    /// Reads the entries of the cross-reference stream at `section` (its dictionary and
    /// decoded data): the offsets its type-1 entries name into `offsets`, its type-2
    /// entries into `held_in`.
    fn xref_stream(&mut self, dict: &Dict, data: &[u8], section: usize, offsets: &mut Vec<usize>) {
        let widths: Vec<usize> = match get(dict, b"W") {
            Some(Obj::Array(items)) => items
                .iter()
                .map(|w| {
                    w.as_int()
                        .and_then(|w| usize::try_from(w).ok())
                        .unwrap_or(0)
                        .min(8)
                })
                .collect(),
            _ => return,
        };
        let [w0, w1, w2] = widths[..] else { return };
        let entry = w0 + w1 + w2;
        if entry == 0 {
            return;
        }
        for (record, num) in data.chunks_exact(entry).zip(first_numbers(dict)) {
            if !self.budget.xref_entry() {
                return;
            }
            let field = |from: usize, width: usize| {
                record
                    .get(from..from + width)
                    .unwrap_or_default()
                    .iter()
                    .fold(0u64, |acc, b| acc << 8 | u64::from(*b))
            };
            let kind = if w0 == 0 { 1 } else { field(0, w0) };
            if kind == 1
                && let Ok(offset) = usize::try_from(field(w0, w1))
                && offset > 0
            {
                offsets.push(offset);
            }
            if kind == 2
                && let Ok(stream) = u32::try_from(field(w0, w1))
            {
                self.object_streams.insert(stream);
                // Repeats are dropped once ordered: a search of the list per entry was
                // (entries naming one object)^2.
                self.held_in.entry(num).or_default().push((stream, section));
            }
        }
    }

    /// Readers take the encryption dictionary and the `/ID` from the newest trailer: the
    /// one last in the file, whether a classic trailer or a cross-reference stream (an
    /// update may name a new /Encrypt and /ID; when the newest names no /Encrypt, the
    /// newest that does is read here and the unencrypted reading is another, see
    /// [`Document::other_readings`]).
    fn set_up_encryption(&mut self) {
        let trailers = std::mem::take(&mut self.trailers);
        self.set_up_encryption_from(&trailers);
        self.trailers = trailers;
    }

    /// Of `versions` (indexes of one object's versions), those whose value differs from
    /// `read`'s and from each other's (one value parsed twice is one reading), at most
    /// [`MAX_PDF_ENCRYPTION_VERSIONS`]: more is the limit reached.
    fn other_distinct_versions(&mut self, versions: &[usize], read: Option<usize>) -> Vec<usize> {
        let value = |i: usize| self.objects.get(i).map(|o| &o.value);
        let mut seen: Vec<&Obj> = read.and_then(value).into_iter().collect();
        let mut others = Vec::new();
        let mut more = false;
        for &version in versions {
            let Some(candidate) = value(version) else {
                continue;
            };
            if seen.contains(&candidate) {
                continue;
            }
            if others.len() == MAX_PDF_ENCRYPTION_VERSIONS {
                more = true;
                break;
            }
            seen.push(candidate);
            others.push(version);
        }
        if more {
            self.budget.reach(Limit::EncryptionVersions);
        }
        others
    }

    /// [`Document::set_up_encryption`] from `newest_first`, the document's trailers.
    fn set_up_encryption_from(&mut self, newest_first: &[Dict]) {
        let Some(trailer) = newest_first.iter().find(|t| get(t, b"Encrypt").is_some()) else {
            return;
        };
        self.newest_trailer_unencrypted = newest_first
            .first()
            .is_some_and(|newest| get(newest, b"Encrypt").is_none());
        let encrypt_ref = get(trailer, b"Encrypt");
        if let Some(Obj::Ref(num, generation)) = encrypt_ref {
            self.encrypt_object = Some((*num, *generation));
        }
        let versions = encrypt_ref.map_or_else(Vec::new, |e| self.lookup_every_version(e).to_vec());
        let read = match self.reading {
            Reading::DecryptedWithVersion(version) => Some(version),
            _ => encrypt_ref.and_then(|e| self.lookup(e)),
        };
        if self.reading == Reading::Decrypted {
            self.other_encryption_versions = self.other_distinct_versions(&versions, read);
        }
        let chosen = match read {
            Some(version) => self.objects.get(version).map(|o| &o.value),
            None => encrypt_ref.map(|e| self.resolve(e)),
        };
        let Some(encrypt) = chosen
            .and_then(Obj::as_dict)
            .map(|encrypt| self.resolved_encryption(encrypt))
        else {
            self.encryption =
                Encryption::Unsupported("an encryption dictionary that cannot be read".to_owned());
            return;
        };
        self.metadata_in_clear =
            matches!(get(&encrypt, b"EncryptMetadata"), Some(Obj::Bool(false)));
        let id0 = newest_first
            .iter()
            .find_map(|t| match get(t, b"ID").map(|id| self.resolve(id)) {
                Some(Obj::Array(ids)) => match ids.first() {
                    Some(Obj::Str(id)) => Some(id.clone()),
                    _ => None,
                },
                _ => None,
            })
            .unwrap_or_default();
        match crypt::setup(&encrypt, &id0) {
            Setup::Open(decryptor) => {
                self.decryptor = Some(decryptor);
                self.encryption = Encryption::Open;
            }
            Setup::NeedsPassword => self.encryption = Encryption::NeedsPassword,
            Setup::Unsupported(what) => self.encryption = Encryption::Unsupported(what),
        }
    }

    /// Decrypts every string of every object outside object streams (not the encryption
    /// dictionary, not cross-reference streams).
    fn decrypt_strings(&mut self) {
        let Some(decryptor) = self.decryptor.clone() else {
            return;
        };
        for object in &mut self.objects {
            if self.encrypt_object == Some((object.num, object.generation))
                || is_xref_stream(&object.value)
            {
                continue;
            }
            decrypt_in(&mut object.value, &decryptor, object.num, object.generation);
        }
    }

    /// Parses the objects inside every object stream: typed `/ObjStm`, named by a type-2
    /// cross-reference entry, or shaped like one (`/N` and `/First`), since readers load
    /// an object stream by number and read it by `/N` and `/First` without looking at
    /// its `/Type`.
    fn expand_object_streams(&mut self) {
        let streams: Vec<usize> = (0..self.objects.len())
            .filter(|&i| {
                let object = &self.objects[i];
                let shaped = object.value.as_dict().is_some_and(|d| {
                    self.int_in(d, b"N").is_some() && self.int_in(d, b"First").is_some()
                });
                object.stream.is_some()
                    && !object.in_object_stream
                    && !is_xref_stream(&object.value)
                    && (type_is(&object.value, b"ObjStm")
                        || shaped
                        || (object.generation == 0 && self.object_streams.contains(&object.num)))
            })
            .collect();
        let (mut expanded, mut stopped) = self.expand_needed_object_streams(&streams);
        for &i in &streams {
            if stopped {
                break;
            }
            if expanded.insert(i) {
                stopped = !self.expand_object_stream(i);
            }
        }
        if stopped {
            let never_begun = streams.iter().filter(|i| !expanded.contains(i));
            let offsets: Vec<usize> = never_begun.map(|&i| self.objects[i].offset).collect();
            self.object_streams_cut.extend(offsets);
        }
    }

    /// Expands, of `streams` (indexes of stream objects, in file order), those holding
    /// what the catalog reaches, in the order a reader following references from the
    /// trailers' `/Root` loads them (the cross-reference streams' type-2 entries say
    /// which stream holds an object), each as soon as it is found needed, so that what it
    /// holds is followed in turn; the caller expands the others after them, in file
    /// order. In file order alone, an object stream named only for an object nothing
    /// uses, inflating to MAX_PDF_INFLATED_BYTES, spent the decoded-bytes budget before
    /// the one holding the catalog and its script (task r33-screen), where a reader never
    /// inflates it. The indexes expanded (or begun), and whether the budget of objects
    /// ran out.
    fn expand_needed_object_streams(&mut self, streams: &[usize]) -> (HashSet<usize>, bool) {
        let mut by_number: HashMap<u32, Vec<usize>> = HashMap::new();
        for &i in streams {
            by_number.entry(self.objects[i].num).or_default().push(i);
        }
        let mut expanded: HashSet<usize> = HashSet::new();
        let mut seen: HashSet<(u32, u16)> = HashSet::new();
        // Object numbers whose holders were looked up, and holders taken: each once,
        // however many generations of a number are named (20,000 generations of one
        // number, its holder defined 1,000 times, looped 20 million times: review
        // rv33-screen).
        let mut numbers_done: HashSet<u32> = HashSet::new();
        let mut holders_done: HashSet<u32> = HashSet::new();
        let mut older_versions: Vec<usize> = Vec::new();
        let mut wanted: VecDeque<(u32, u16)> = self
            .trailers
            .iter()
            .filter_map(|trailer| match get(trailer, b"Root") {
                Some(Obj::Ref(num, generation)) => Some((*num, *generation)),
                _ => None,
            })
            .collect();
        // Each object is followed once; the work is one walk of each object reached.
        while let Some(key) = wanted.pop_front() {
            if expanded.len() == streams.len() {
                break;
            }
            if self.budget.out_of_time() {
                return (expanded, true);
            }
            if !seen.insert(key) {
                continue;
            }
            if numbers_done.insert(key.0) {
                let holders = self.held_in.get(&key.0).cloned().unwrap_or_default();
                for (holder, _) in holders {
                    if !holders_done.insert(holder) {
                        continue;
                    }
                    let versions = by_number.get(&holder).map_or(&[][..], Vec::as_slice);
                    self.budget.work.holder_versions_visited += versions.len();
                    // The version a reader loads (the newest section's), first: an older
                    // one no section names, inflating to MAX_PDF_INFLATED_BYTES, spent
                    // the budget before it (review rv33-screen). The others after the
                    // walk, before the streams nothing needs.
                    let read = self
                        .lookup(&Obj::Ref(holder, 0))
                        .filter(|i| versions.contains(i));
                    older_versions.extend(versions.iter().filter(|&&i| Some(i) != read));
                    if let Some(i) = read
                        && expanded.insert(i)
                        && !self.expand_object_stream(i)
                    {
                        return (expanded, true);
                    }
                }
            }
            for &i in self.versions.get(&key).map_or(&[][..], Vec::as_slice) {
                references(&self.objects[i].value, 0, &mut |to| wanted.push_back(to));
            }
        }
        for i in older_versions {
            if expanded.insert(i) && !self.expand_object_stream(i) {
                return (expanded, true);
            }
        }
        (expanded, false)
    }

    /// Parses the objects inside object stream `i` (an index of `objects`); false when
    /// the budget of objects is spent and nothing more can be read.
    fn expand_object_stream(&mut self, i: usize) -> bool {
        {
            let Some(dict) = self.objects[i].value.as_dict() else {
                return true;
            };
            let int = |key: &[u8]| self.int_in(dict, key).and_then(|n| usize::try_from(n).ok());
            let (Some(count), Some(first)) = (int(b"N"), int(b"First")) else {
                return true;
            };
            let offset = self.objects[i].offset;
            let stops = self.budget.stops();
            let data = self.decode_stream(i).unwrap_or_default();
            // A limit cut this stream only if one refused work while it was decoded: a
            // limit reached earlier by other work (nesting elsewhere) says nothing of why
            // this one is short, and was blamed for a stream that truly failed (task
            // r34-screen).
            let cut = self.budget.stops() > stops;
            let mut header = Lexer::new(&data, 0);
            let mut entries = Vec::new();
            for _ in 0..count {
                match (header.token(0), header.token(0)) {
                    (Some(Obj::Int(num)), Some(Obj::Int(at))) => {
                        if let (Ok(num), Ok(at)) = (u32::try_from(num), usize::try_from(at)) {
                            entries.push((num, at));
                        }
                    }
                    _ => break,
                }
            }
            // A filter that fails (inflate keeps what it decoded, often nothing) leaves the
            // header short of the `/N` objects declared.
            if entries.len() < count && !cut {
                self.undecoded_object_streams.push(UndecodedObjectStream {
                    offset,
                    declared: count,
                    found: entries.len(),
                });
            } else if entries.len() < count {
                self.object_streams_cut.push(offset);
            }
            for (num, at) in entries {
                if !self.budget.object() {
                    self.object_streams_cut.push(offset);
                    return false;
                }
                let body = first.saturating_add(at);
                let left = self.budget.parsed_left();
                let end = data.len().min(body.saturating_add(left));
                let mut lexer = Lexer::new(data.get(..end).unwrap_or_default(), body);
                let parsed = lexer.object_body();
                if lexer.too_deep {
                    self.budget.reach(Limit::Nesting);
                }
                self.budget
                    .spend_parsed(lexer.pos.saturating_sub(body).max(1));
                if let Some((value, _)) = parsed {
                    // Streams cannot live in object streams: a `stream` keyword here is junk.
                    self.insert(Object {
                        num,
                        generation: 0,
                        value,
                        stream: None,
                        offset,
                        in_object_stream: true,
                    });
                }
            }
        }
        true
    }

    /// Follows references (a few levels) to the value they name; `Null` if unknown.
    /// The integer `key` gives in `dict`, directly or through references, as readers
    /// read every value.
    fn int_in(&self, dict: &Dict, key: &[u8]) -> Option<i64> {
        get(dict, key).and_then(|value| self.resolve(value).as_int())
    }

    /// `dict` with each value resolved through references (one level of the dictionary:
    /// the values the filters read, such as `/Predictor`, `/Columns` or a crypt filter's
    /// `/Name`, are read by qpdf and mutool wherever they are written).
    fn resolved_dict(&self, dict: &Dict) -> Dict {
        dict.iter()
            .map(|(key, value)| (key.clone(), self.resolve(value).clone()))
            .collect()
    }

    /// The encryption dictionary with its values, its `/CF` crypt filters and theirs
    /// resolved through references, as qpdf and mutool read them.
    fn resolved_encryption(&self, encrypt: &Dict) -> Dict {
        let mut resolved = self.resolved_dict(encrypt);
        for (key, value) in &mut resolved {
            if key.as_slice() != b"CF" {
                continue;
            }
            if let Obj::Dict(filters) = value {
                *filters = self
                    .resolved_dict(filters)
                    .into_iter()
                    .map(|(name, filter)| match filter {
                        Obj::Dict(filter) => (name, Obj::Dict(self.resolved_dict(&filter))),
                        other => (name, other),
                    })
                    .collect();
            }
        }
        resolved
    }

    pub fn resolve<'s>(&'s self, mut obj: &'s Obj) -> &'s Obj {
        for _ in 0..8 {
            match obj {
                Obj::Ref(num, generation) => match self.index.get(&(*num, *generation)) {
                    Some(&i) => obj = &self.objects[i].value,
                    None => return &Obj::Null,
                },
                _ => return obj,
            }
        }
        &Obj::Null
    }

    /// The index of the object a reference names.
    pub fn lookup(&self, obj: &Obj) -> Option<usize> {
        match obj {
            Obj::Ref(num, generation) => self.index.get(&(*num, *generation)).copied(),
            _ => None,
        }
    }

    /// The indexes of every version of the object a reference names: qpdf, mutool and
    /// pdfdetach take the one the newest cross-reference section names, a reader
    /// repairing the file the last in it, and an update can write the newer before the
    /// older.
    pub fn lookup_every_version(&self, obj: &Obj) -> &[usize] {
        match obj {
            Obj::Ref(num, generation) => self
                .versions
                .get(&(*num, *generation))
                .map_or(&[], Vec::as_slice),
            _ => &[],
        }
    }

    /// The raw data of stream object `i`: `/Length` bytes when they end at `endstream`,
    /// else up to the next `endstream` (as readers recover), else to the end.
    fn raw_stream(&mut self, i: usize) -> &'a [u8] {
        let bytes = self.bytes;
        let Some(object) = self.objects.get(i) else {
            return &[];
        };
        let Some(start) = object.stream else {
            return &[];
        };
        let rest = bytes.get(start..).unwrap_or_default();
        let length = object
            .value
            .as_dict()
            .and_then(|d| get(d, b"Length"))
            .map(|l| self.resolve(l))
            .and_then(Obj::as_int)
            .and_then(|l| usize::try_from(l).ok());
        if let Some(length) = length
            && let Some(after) = rest.get(length..)
        {
            let mut lexer = Lexer::new(after, 0);
            lexer.skip_space();
            if after
                .get(lexer.pos..)
                .is_some_and(|a| a.starts_with(b"endstream"))
            {
                return &rest[..length];
            }
        }
        let found = self.next_endstream(start).map(|at| at - start);
        let mut data = &rest[..found.unwrap_or(rest.len())];
        if found.is_some() {
            data = data.strip_suffix(b"\n").unwrap_or(data);
            data = data.strip_suffix(b"\r").unwrap_or(data);
        }
        data
    }

    /// The first `endstream` at or after `start`, each byte of the file searched once
    /// over all calls (see `endstreams`).
    fn next_endstream(&mut self, start: usize) -> Option<usize> {
        const KEYWORD: &[u8] = b"endstream";
        let len = self.bytes.len();
        let known = self
            .endstreams
            .range(start..)
            .next()
            .map(|(&found, &from)| (found, from));
        // Search up to where a known answer's search began: from there on it holds.
        let (until, otherwise) = match known {
            Some((found, from)) if from <= start => return (found < len).then_some(found),
            Some((found, from)) => (from, found),
            None => (len, len),
        };
        let end = until.saturating_add(KEYWORD.len() - 1).min(len);
        let searched = self.bytes.get(start..end).unwrap_or_default();
        self.budget.spend_parsed(searched.len());
        let found = memchr::memmem::find(searched, KEYWORD).map_or(otherwise, |n| start + n);
        let from = self.endstreams.entry(found).or_insert(start);
        *from = (*from).min(start);
        (found < len).then_some(found)
    }

    /// The decoded data of stream object `i` (decrypted, then every filter applied).
    /// `None` when a filter cannot be applied or the budget is gone.
    pub fn decode_stream(&mut self, i: usize) -> Option<Vec<u8>> {
        if !self.budget.stream() {
            return None;
        }
        let raw = self.raw_stream(i);
        let object = self.objects.get(i)?;
        let chain = self.filter_chain(object.value.as_dict()?);
        let crypt = stream_crypt(&chain);
        // qpdf's reading leaves streams typed /Metadata as stored under /EncryptMetadata
        // false (mutool's decrypts them: the other reading).
        let left_in_clear = self.reading == Reading::MetadataInClear
            && self.metadata_in_clear
            && type_is(&object.value, b"Metadata");
        let encrypted =
            !object.in_object_stream && !is_xref_stream(&object.value) && !left_in_clear;
        let (num, generation) = (object.num, object.generation);
        let decrypted;
        let data = match self.decryptor.clone() {
            Some(decryptor) if encrypted && decryptor.decrypts(crypt) => {
                // Decryption writes a copy: decoding work, asked of the budget first.
                let left = self.budget.decoded_left();
                if left == 0 {
                    self.budget.reach(Limit::DecodedBytes);
                    return None;
                }
                self.budget.spend_decoded(raw.len());
                decrypted = decryptor.stream(crypt, num, generation, &raw[..raw.len().min(left)]);
                &decrypted[..]
            }
            _ => raw,
        };
        filters::decode(data, &chain, &mut self.budget)
    }

    fn filter_chain(&self, dict: &Dict) -> Vec<Filter> {
        let names: Vec<Vec<u8>> = match get(dict, b"Filter").map(|f| self.resolve(f)) {
            Some(Obj::Name(name)) => vec![name.clone()],
            Some(Obj::Array(items)) => items
                .iter()
                .map(|item| self.resolve(item).as_name().unwrap_or_default().to_vec())
                .collect(),
            _ => Vec::new(),
        };
        let parms: Vec<Option<Dict>> = match get(dict, b"DecodeParms").map(|p| self.resolve(p)) {
            Some(Obj::Dict(parms)) => vec![Some(self.resolved_dict(parms))],
            Some(Obj::Array(items)) => items
                .iter()
                .map(|item| {
                    self.resolve(item)
                        .as_dict()
                        .map(|parms| self.resolved_dict(parms))
                })
                .collect(),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .enumerate()
            .map(|(n, name)| Filter {
                name,
                parms: parms.get(n).cloned().flatten(),
            })
            .collect()
    }
}

/// The crypt filter that decrypts a stream whose filter chain is `chain` (ISO 32000-1
/// §7.6.5): a leading `/Crypt` filter names it in its parameters (`Identity` when they
/// name none), else the document's `/StmF` applies.
fn stream_crypt(chain: &[Filter]) -> StreamCrypt<'_> {
    match chain.first() {
        Some(first) if first.name == b"Crypt" => StreamCrypt::Named(
            first
                .parms
                .as_ref()
                .and_then(|parms| get(parms, b"Name"))
                .and_then(Obj::as_name)
                .unwrap_or(b"Identity"),
        ),
        _ => StreamCrypt::Document,
    }
}

/// The cross-reference sections in the order readers follow them, newest first: the one
/// the last `startxref` names, then each `/Prev` of its trailer (a table's is the first
/// trailer after it, a stream's its own dictionary). Sections are named by where they
/// are (in `named`); a loop or a `/Prev` to nothing ends the chain.
fn section_chain(
    bytes: &[u8],
    named: &[(usize, usize)],
    trailers: &[(usize, Dict)],
    base: usize,
    work: &mut Work,
) -> Vec<usize> {
    let sections: HashSet<usize> = named.iter().map(|&(_, section)| section).collect();
    let find = |offset: usize| {
        [offset, offset.saturating_add(base)]
            .into_iter()
            .find(|at| sections.contains(at))
    };
    let Some(last) = memchr::memmem::rfind(bytes, b"startxref") else {
        return Vec::new();
    };
    let mut lexer = Lexer::new(bytes, last + b"startxref".len());
    let mut next = match lexer.token(0) {
        Some(Obj::Int(offset)) => usize::try_from(offset).ok().and_then(find),
        _ => None,
    };
    // The trailers by place, searched once per section: a scan of all of them per
    // section made a chain of 20,000 one-entry updates (2.6 MB) cost 21 s (debug,
    // load 17), and the chain may be as long as MAX_PDF_XREF_ENTRIES allows.
    let mut by_place: Vec<(usize, usize)> = trailers
        .iter()
        .enumerate()
        .map(|(i, (at, _))| (*at, i))
        .collect();
    by_place.sort_unstable();
    let compared = std::cell::Cell::new(0usize);
    let first_trailer_at_or_after = |section: usize| {
        let k = by_place.partition_point(|&(at, _)| {
            compared.set(compared.get() + 1);
            at < section
        });
        by_place.get(k).and_then(|&(_, i)| trailers.get(i))
    };
    let mut chain = Vec::new();
    let mut visited = HashSet::new();
    while let Some(section) = next.filter(|&s| visited.insert(s)) {
        chain.push(section);
        next = first_trailer_at_or_after(section)
            .and_then(|(_, dict)| get(dict, b"Prev"))
            .and_then(Obj::as_int)
            .and_then(|prev| usize::try_from(prev).ok())
            .and_then(find);
    }
    work.trailers_compared += compared.get();
    chain
}

/// How new a cross-reference section is, as readers take it: the sections of the chain
/// from the last `startxref` ([`section_chain`]) newest first, above all others, which
/// are as new as they are late in the file.
struct Newness {
    /// Section place -> its place in the chain (0: newest).
    in_chain: HashMap<usize, usize>,
}

impl Newness {
    fn of(chain: &[usize]) -> Self {
        Newness {
            in_chain: chain.iter().enumerate().map(|(k, &s)| (s, k)).collect(),
        }
    }

    /// Larger is newer.
    fn of_section(&self, section: usize) -> usize {
        match self.in_chain.get(&section) {
            Some(k) => usize::MAX - k,
            None => section.min(usize::MAX - self.in_chain.len() - 1),
        }
    }
}

/// For each offset a cross-reference section names (`named`: offset and where the
/// section is; each also from the header, `base`, as offsets are tried), how new the
/// newest section naming it is: the sections of `chain` (newest first) above all others,
/// the others by place in the file.
fn newest_section_naming(
    named: &[(usize, usize)],
    newness: &Newness,
    base: usize,
) -> HashMap<usize, usize> {
    let mut sections: HashMap<usize, usize> = HashMap::new();
    for &(offset, section) in named {
        let new = newness.of_section(section);
        for at in [offset, offset.saturating_add(base)] {
            let newest = sections.entry(at).or_insert(new);
            *newest = (*newest).max(new);
        }
    }
    sections
}

/// Where the PDF header is, in either form readers accept.
pub fn header_offset(bytes: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes, b"%PDF-").or_else(|| memchr::memmem::find(bytes, b"%!PS-Adobe-"))
}

fn is_regular_byte(byte: u8) -> bool {
    !is_whitespace(byte) && !super::lexer::is_delimiter(byte)
}

/// `N G ` before the `obj` at `at`: the object number, generation and where `N` starts.
fn header_before(bytes: &[u8], at: usize) -> Option<(u32, u16, usize)> {
    let mut i = at;
    let space = |i: &mut usize| -> bool {
        let start = *i;
        while *i > 0 && bytes.get(*i - 1).is_some_and(|b| is_whitespace(*b)) {
            *i -= 1;
        }
        *i < start
    };
    let digits = |i: &mut usize| -> Option<u64> {
        let end = *i;
        while *i > 0 && end - *i < 10 && bytes.get(*i - 1).is_some_and(u8::is_ascii_digit) {
            *i -= 1;
        }
        let text = std::str::from_utf8(bytes.get(*i..end)?).ok()?;
        text.parse().ok()
    };
    if !space(&mut i) {
        return None;
    }
    let generation = digits(&mut i)?;
    if !space(&mut i) {
        return None;
    }
    let num = digits(&mut i)?;
    if i > 0 && bytes.get(i - 1).is_some_and(|b| is_regular_byte(*b)) {
        return None;
    }
    Some((u32::try_from(num).ok()?, u16::try_from(generation).ok()?, i))
}

/// A cross-reference stream: typed `/XRef`, or shaped like one (a three-field `/W`), as
/// mutool reads the stream `startxref` points at without looking at its `/Type`.
/// The object numbers of a cross-reference stream's entries, in order: its `/Index`
/// subsections (pairs of first number and count), else 0 to `/Size`. Past the
/// subsections named, none.
fn first_numbers(dict: &Dict) -> impl Iterator<Item = u32> + '_ {
    let pairs: Vec<(u32, u32)> = match get(dict, b"Index") {
        Some(Obj::Array(items)) => items
            .chunks_exact(2)
            .filter_map(|pair| {
                let first = u32::try_from(pair[0].as_int()?).ok()?;
                let count = u32::try_from(pair[1].as_int()?).ok()?;
                Some((first, count))
            })
            .collect(),
        _ => {
            let size = get(dict, b"Size")
                .and_then(Obj::as_int)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            vec![(0, size)]
        }
    };
    pairs
        .into_iter()
        .flat_map(|(first, count)| (0..count).map_while(move |k| first.checked_add(k)))
}

/// Calls `found` with the number and generation of every reference in `value`, within the nesting the
/// lexer allowed.
fn references(value: &Obj, depth: usize, found: &mut impl FnMut((u32, u16))) {
    if depth > super::budget::MAX_PDF_NESTING_DEPTH {
        return;
    }
    match value {
        Obj::Ref(num, generation) => found((*num, *generation)),
        Obj::Dict(dict) => {
            for (_, item) in dict {
                references(item, depth + 1, found);
            }
        }
        Obj::Array(items) => {
            for item in items {
                references(item, depth + 1, found);
            }
        }
        _ => {}
    }
}

fn is_xref_stream(value: &Obj) -> bool {
    type_is(value, b"XRef")
        || value.as_dict().is_some_and(|d| {
            matches!(get(d, b"W"), Some(Obj::Array(w)) if w.len() == 3 && w.iter().all(|x| x.as_int().is_some()))
        })
}

pub fn type_is(value: &Obj, name: &[u8]) -> bool {
    value
        .as_dict()
        .and_then(|d| get(d, b"Type"))
        .and_then(Obj::as_name)
        == Some(name)
}

fn decrypt_in(value: &mut Obj, decryptor: &Decryptor, num: u32, generation: u16) {
    match value {
        Obj::Str(s) => *s = decryptor.string(num, generation, s),
        Obj::Array(items) => {
            for item in items {
                decrypt_in(item, decryptor, num, generation);
            }
        }
        Obj::Dict(dict) => {
            for (_, item) in dict {
                decrypt_in(item, decryptor, num, generation);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document whose first revision ends in a classic trailer (`/Root 1 0 R`) and
    /// whose update ends in a cross-reference stream naming a new catalog (`/Root 3 0 R`,
    /// at `new_catalog`): qpdf (`--show-object=trailer`) and mutool (`show trailer`) read
    /// the stream's dictionary as the trailer, so the new catalog.
    fn classic_then_xref_stream_update() -> (Vec<u8>, usize) {
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut at = Vec::new();
        for body in [
            "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
            "2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
        ] {
            at.push(out.len());
            out.extend_from_slice(body.as_bytes());
        }
        let first = out.len();
        out.extend_from_slice(
            format!(
                "xref\n0 3\n0000000000 65535 f \n{:010} 00000 n \n{:010} 00000 n \ntrailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n{first}\n%%EOF\n",
                at[0], at[1]
            )
            .as_bytes(),
        );
        let new_catalog = out.len();
        out.extend_from_slice(
            b"3 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert\\(7\\)) >> >>\nendobj\n",
        );
        let update = out.len();
        let mut rows = Vec::new();
        for offset in [new_catalog, update] {
            rows.push(1u8);
            rows.extend_from_slice(&u32::try_from(offset).expect("small").to_be_bytes());
            rows.push(0);
        }
        out.extend_from_slice(
            format!(
                "4 0 obj\n<< /Type /XRef /Size 5 /Index [3 2] /W [1 4 1] /Root 3 0 R /Prev {first} /Length {} >>\nstream\n",
                rows.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.extend_from_slice(
            format!("\nendstream\nendobj\nstartxref\n{update}\n%%EOF\n").as_bytes(),
        );
        (out, new_catalog)
    }

    /// Review r29-screen2: the catalog was the first `/Root` of a list with the classic
    /// trailers first and the cross-reference streams after, so an update ending in a
    /// cross-reference stream was read with the first revision's catalog. Readers take
    /// the newest trailer's.
    #[test]
    fn the_catalog_is_the_one_the_newest_trailer_names() {
        let (pdf, new_catalog) = classic_then_xref_stream_update();
        let doc = Document::read(&pdf, Budget::default());
        assert_eq!(doc.catalog_offset(), Some(new_catalog));
    }

    /// Review r29-screen2: the newest trailer is the one of the section the last
    /// `startxref` names (then `/Prev`), not the one last in the file. An update's section
    /// and trailer (`/Root 3 0 R`) written before the original's (`/Root 1 0 R`),
    /// `startxref` naming the update's: qpdf and mutool read catalog 3.
    #[test]
    fn the_newest_trailer_is_the_one_startxref_reaches_first() {
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut at = Vec::new();
        for body in [
            "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
            "2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
            "3 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert\\(3\\)) >> >>\nendobj\n",
        ] {
            at.push(out.len());
            out.extend_from_slice(body.as_bytes());
        }
        let update = out.len();
        let section = format!(
            "xref\n0 1\n0000000000 65535 f \n3 1\n{:010} 00000 n \n",
            at[2]
        );
        let trailer =
            |prev: usize| format!("trailer\n<< /Size 4 /Root 3 0 R /Prev {prev:010} >>\n");
        let original = update + section.len() + trailer(0).len();
        out.extend_from_slice(section.as_bytes());
        out.extend_from_slice(trailer(original).as_bytes());
        out.extend_from_slice(
            format!(
                "xref\n0 3\n0000000000 65535 f \n{:010} 00000 n \n{:010} 00000 n \ntrailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n{update}\n%%EOF\n",
                at[0], at[1]
            )
            .as_bytes(),
        );
        let doc = Document::read(&out, Budget::default());
        assert_eq!(doc.catalog_offset(), Some(at[2]));
    }
}
