//! A medium as `media import` sees it: every file with its path on the medium, read
//! whole on demand, from a mounted directory or an ISO 9660 image file. Nothing on the
//! medium is ever written or executed: a directory is walked and read through
//! `pacsguard-fs` (read-only, no link followed, no mount crossed), an image is read
//! through one read-only descriptor and parsed by `pacsguard_dicom::iso`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pacsguard_dicom::iso::{self, IsoFile};
use pacsguard_fs::{EntryType, ReadError, WalkOptions, WindowReader};

use crate::error::EngineError;

/// One regular file of the medium.
#[derive(Clone, Debug)]
pub(super) struct MediumFile {
    /// Its path on the medium, components joined by `/`.
    pub rel: String,
    pub size: u64,
    place: Place,
}

#[derive(Clone, Debug)]
enum Place {
    Path(PathBuf),
    Iso(IsoFile),
}

/// Something on the medium that is not a regular file read here, and why.
#[derive(Clone, Debug)]
pub(super) struct Other {
    pub rel: String,
    pub reason: String,
    /// An entry that exists but is not read (a link, a device): on the record as
    /// expected content, not an alarm. Otherwise (unreadable, over a limit, a damaged
    /// image) it could not be screened: a warning.
    pub benign: bool,
}

pub(super) struct Medium {
    pub kind: &'static str,
    pub files: Vec<MediumFile>,
    pub others: Vec<Other>,
    /// Files of an image's primary tree that its Joliet tree does not show (also in
    /// `files`, by their primary path).
    pub primary_only: Vec<String>,
    image: Option<Image>,
    /// Lower-case path → index in `files`, `None` where two files differ by case only.
    by_name: HashMap<String, Option<usize>>,
}

/// An image file, read through one descriptor.
struct Image(WindowReader);

impl iso::Source for Image {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        self.0.read_at(offset, len).map_err(|e| e.to_string())
    }
}

impl Medium {
    /// Lists `source`: a directory (a mounted CD, a USB stick) or an ISO image file.
    pub fn open(source: &Path, skip_dirs: Vec<(u64, u64)>) -> Result<Medium, EngineError> {
        let meta = std::fs::metadata(source).map_err(|e| EngineError::io(source, e))?;
        let medium = if meta.is_dir() {
            Medium::directory(source, skip_dirs)?
        } else if meta.is_file() {
            Medium::image(source)?
        } else {
            return Err(EngineError::io(
                source,
                "neither a directory nor an ISO image file",
            ));
        };
        Ok(medium.indexed())
    }

    fn directory(root: &Path, skip_dirs: Vec<(u64, u64)>) -> Result<Medium, EngineError> {
        use std::os::unix::ffi::OsStrExt as _;
        let options = WalkOptions {
            skip_dirs,
            ..WalkOptions::default()
        };
        let tree = pacsguard_fs::walk(root, &options).map_err(|e| EngineError::io(root, e))?;
        let text = |rel: &[u8]| String::from_utf8_lossy(rel).into_owned();
        let mut files = Vec::new();
        let mut others: Vec<Other> = tree
            .problems
            .iter()
            .map(|p| Other {
                rel: text(&p.rel),
                reason: format!("not screened: {}", p.detail),
                benign: false,
            })
            .collect();
        // A hard link is read and screened once, under its first name: without this,
        // 200,000 links to one 256 MiB file on a USB stick make an import read 51 TB.
        let mut first_name: HashMap<(u64, u64), String> = HashMap::new();
        for entry in tree.entries {
            match entry.kind {
                EntryType::File if entry.meta.nlink > 1 => {
                    let rel = text(&entry.rel);
                    match first_name.get(&(entry.meta.dev, entry.meta.ino)) {
                        Some(first) => others.push(Other {
                            reason: format!(
                                "not screened again: a hard link of {first}, screened under that name (the DICOMDIR must reference that name for it to be copied)"
                            ),
                            rel,
                            benign: false,
                        }),
                        None => {
                            first_name.insert((entry.meta.dev, entry.meta.ino), rel.clone());
                            files.push(MediumFile {
                                rel,
                                size: entry.meta.size,
                                place: Place::Path(
                                    root.join(std::ffi::OsStr::from_bytes(&entry.rel)),
                                ),
                            });
                        }
                    }
                }
                EntryType::File => files.push(MediumFile {
                    rel: text(&entry.rel),
                    size: entry.meta.size,
                    place: Place::Path(root.join(std::ffi::OsStr::from_bytes(&entry.rel))),
                }),
                EntryType::Directory => {}
                other => others.push(Other {
                    rel: text(&entry.rel),
                    reason: format!("a {}, never followed or read", other.as_str()),
                    benign: true,
                }),
            }
        }
        Ok(Medium {
            kind: "directory",
            files,
            others,
            primary_only: Vec::new(),
            image: None,
            by_name: HashMap::new(),
        })
    }

    fn image(path: &Path) -> Result<Medium, EngineError> {
        let reader = WindowReader::open(path)
            .map_err(|e| EngineError::io(path, crate::files::refusal(&e)))?;
        let image = Image(reader);
        let listing = iso::list(&image).map_err(|e| EngineError::io(path, e))?;
        let others = listing
            .problems
            .into_iter()
            .map(|p| Other {
                rel: p.path,
                reason: format!("not screened: {}", p.reason),
                benign: false,
            })
            .collect();
        let primary_only = listing.primary_only.into_iter().map(|f| f.path).collect();
        let files = listing
            .files
            .into_iter()
            .map(|f| MediumFile {
                rel: f.path.clone(),
                size: f.size,
                place: Place::Iso(f),
            })
            .collect();
        Ok(Medium {
            kind: if listing.joliet {
                "iso9660-joliet"
            } else {
                "iso9660"
            },
            files,
            others,
            primary_only,
            image: Some(image),
            by_name: HashMap::new(),
        })
    }

    fn indexed(mut self) -> Medium {
        for (index, file) in self.files.iter().enumerate() {
            self.by_name
                .entry(file.rel.to_ascii_lowercase())
                .and_modify(|slot| *slot = None)
                .or_insert(Some(index));
        }
        self
    }

    /// The file at `components` (a DICOMDIR's Referenced File ID, matched without case as
    /// a mounted ISO 9660 shows it in lower case): `Ok(None)` when nothing is there, an
    /// error when two files differ only by case (which one the PACS would read is not
    /// known).
    pub fn find(&self, components: &[String]) -> Result<Option<usize>, String> {
        let key = components.join("/").to_ascii_lowercase();
        match self.by_name.get(&key) {
            None => Ok(None),
            Some(Some(index)) => Ok(Some(*index)),
            Some(None) => Err("two files on the medium differ only by case".to_owned()),
        }
    }

    /// The bytes of one file, whole (at most `limit`).
    pub fn read(&self, file: &MediumFile, limit: u64) -> Result<Vec<u8>, String> {
        if file.size > limit {
            return Err(format!(
                "{} bytes, over the {limit} bytes read whole",
                file.size
            ));
        }
        match (&file.place, &self.image) {
            (Place::Path(path), _) => pacsguard_fs::read_file(path, limit)
                .map(|read| read.bytes)
                .map_err(|e: ReadError| crate::files::refusal(&e)),
            (Place::Iso(entry), Some(image)) => iso::read(image, entry),
            (Place::Iso(_), None) => Err("no image".to_owned()),
        }
    }

    /// For an image: whether it changed while it was read (then nothing read from it can
    /// be trusted to be one version of it).
    pub fn finish(self, source: &Path) -> Result<(), EngineError> {
        match self.image {
            Some(Image(reader)) => reader.finish().map(|_| ()).map_err(|e| {
                EngineError::io(
                    source,
                    format!(
                        "the image changed while it was read ({e}); nothing it holds can be trusted"
                    ),
                )
            }),
            None => Ok(()),
        }
    }
}
