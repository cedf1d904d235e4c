//! Progress reporting hooks; the CLI draws a bar, tests and services pass [`NoProgress`].

use std::path::Path;

pub trait Progress: Sync {
    /// Hashing of a root starts: how many files and bytes are to be hashed.
    fn start(&self, root: &Path, files: u64, bytes: u64);
    /// One file was hashed.
    fn advance(&self, bytes: u64);
    /// The root is done.
    fn finish(&self);
    /// A phase without a known size (walking) starts.
    fn phase(&self, message: &str);
}

#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &Path, _: u64, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
    fn phase(&self, _: &str) {}
}
