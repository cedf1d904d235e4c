//! One pass over a file for the words the script readers look for, shared by all of them.
//!
//! The readers of the whole file (the ex/vim model, the PDF header searches, the
//! ISO-2022-JP label search...) each looked for their own words with a `memmem` pass over
//! the whole file: about thirty passes over every CT slice, almost all of them finding
//! nothing, a quarter of `scan`'s cycles on CT images (perf, review r26-speed). Here one
//! packed (Teddy) search finds where each of those words first occurs, once per file; a
//! reader then searches only from there, and not at all for a word the file does not
//! hold.
//!
//! Nothing a reader finds changes: [`find_iter`] yields exactly the offsets
//! `memchr::memmem::find_iter` yields (a non-overlapping search from the first occurrence
//! finds what one from the file's start finds), and answers from the index only for the
//! very slice it was built on ([`Scope`]) and only for a word of [`WORDS`]; any other
//! slice or word is searched whole, as before. A word missing from [`WORDS`] costs a pass,
//! never a finding.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::LazyLock;

use aho_corasick::packed;

/// The words the readers search the whole file for (each reader's own list stays where
/// it is; this is only which of them the shared pass indexes). Case as searched.
const WORDS: [&[u8]; 38] = [
    // The ex/vim model (shell.rs, shell/vim_buffer.rs).
    b"setenv(",
    b"let",
    b"for",
    b"sh",
    b"const",
    b"var",
    b"final",
    b"job_start(",
    b"term_start(",
    b"libcall(",
    b"libcallnr(",
    b"system",
    b"exe",
    b"execute(",
    b"feedkeys(",
    b"feedkeys",
    b"setreg(",
    b"norm",
    b"yank",
    b"delete",
    b"redi",
    b"writefile(",
    b"setline(",
    b"append(",
    b"call(",
    b"function(",
    b"funcref(",
    b"systemlist",
    b"job_start",
    b"term_start",
    b"libcall",
    b"libcallnr",
    b"getline(",
    b"so",
    // The ISO-2022-JP label (markup/iso2022jp.rs).
    b"2022",
    // PDF headers and objects (readers.rs).
    b"%PDF-",
    b"%!PS-Adobe-",
    b"obj",
];

/// The packed searcher for [`WORDS`]; `None` where the CPU has none (every search is then
/// a whole-file `memmem`, as before).
static SEARCHER: LazyLock<Option<packed::Searcher>> = LazyLock::new(|| {
    packed::Config::new()
        .match_kind(packed::MatchKind::LeftmostFirst)
        .builder()
        .extend(WORDS)
        .build()
});

/// Places the shared pass stops at (a word starts there) before it leaves the words it
/// has not seen to the readers' own searches, from where it stopped. Text dense with short
/// words (`shshsh…`) would otherwise stop it at every byte. Reaching it loses nothing (the
/// readers search the rest as they did before the shared pass), so it is no warning.
pub(crate) const MAX_INDEX_STOPS: usize = 1 << 16;

/// Where each word of [`WORDS`] first occurs in the slice at `start` of `len` bytes.
struct Index {
    start: usize,
    len: usize,
    first: [Option<usize>; WORDS.len()],
}

impl Index {
    /// One pass: every place a word starts is a place the packed search stops (it is
    /// resumed one byte on, so a word inside another, `let` in `delete`, is seen too).
    fn build(bytes: &[u8], searcher: &packed::Searcher) -> Index {
        let mut first = [None; WORDS.len()];
        let mut unseen = WORDS.len();
        let mut from = 0;
        let mut stops = 0;
        while unseen > 0 && from < bytes.len() {
            if stops == MAX_INDEX_STOPS {
                // No word unseen so far occurs before `from`: a search from there finds
                // what one from the start finds.
                for slot in first.iter_mut().filter(|slot| slot.is_none()) {
                    *slot = Some(from);
                }
                break;
            }
            stops += 1;
            let Some(found) = searcher.find_in(bytes, aho_corasick::Span::from(from..bytes.len()))
            else {
                break;
            };
            let at = found.start();
            for (word, slot) in WORDS.iter().zip(first.iter_mut()) {
                if slot.is_none() && bytes[at..].starts_with(word) {
                    *slot = Some(at);
                    unseen -= 1;
                }
            }
            from = at + 1;
        }
        Index {
            start: bytes.as_ptr() as usize,
            len: bytes.len(),
            first,
        }
    }

    fn is_of(&self, bytes: &[u8]) -> bool {
        self.start == bytes.as_ptr() as usize && self.len == bytes.len()
    }
}

thread_local! {
    /// The index of the file whose readers run on this thread, while a [`Scope`] lasts.
    static INDEXED: RefCell<Option<Index>> = const { RefCell::new(None) };
}

/// While it lives, searches of `bytes` for a word of [`WORDS`] start where the word first
/// occurs. The readers keep their signatures (tests and other readers call them on
/// slices of their own), so the index is kept for this thread rather than passed down;
/// it is tied to the borrow of `bytes` and the one before it is back when this ends.
pub(crate) struct Scope<'a> {
    previous: Option<Index>,
    bytes: PhantomData<&'a [u8]>,
}

/// Indexes `bytes` for the readers about to read it (see [`Scope`]).
pub(crate) fn index(bytes: &[u8]) -> Scope<'_> {
    let built = SEARCHER
        .as_ref()
        .map(|searcher| Index::build(bytes, searcher));
    let previous = INDEXED.with(|indexed| std::mem::replace(&mut *indexed.borrow_mut(), built));
    Scope {
        previous,
        bytes: PhantomData,
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        INDEXED.with(|indexed| *indexed.borrow_mut() = previous);
    }
}

/// Where the search of `bytes` for `needle` can start: `None` when the index says the
/// word is not there at all, `Some(0)` when the index does not know.
fn start_of(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    let Some(word) = WORDS.iter().position(|w| *w == needle) else {
        return Some(0);
    };
    INDEXED.with(|indexed| match &*indexed.borrow() {
        Some(index) if index.is_of(bytes) => index.first[word],
        _ => Some(0),
    })
}

/// Every non-overlapping occurrence of `needle` in `bytes`, as
/// `memchr::memmem::find_iter` finds them.
pub(crate) fn find_iter<'a>(bytes: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let start = start_of(bytes, needle);
    let rest = start.map_or(&[][..], |at| &bytes[at..]);
    let base = start.unwrap_or(0);
    memchr::memmem::find_iter(rest, needle).map(move |at| base + at)
}

/// Whether `needle` is known not to occur in `bytes` (`false` when the index does not
/// know): a reader that needs it can stop before its own pass.
pub(crate) fn absent(bytes: &[u8], needle: &[u8]) -> bool {
    start_of(bytes, needle).is_none()
}

/// The first occurrence of `needle` in `bytes`, as `memchr::memmem::find` finds it.
pub(crate) fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    find_iter(bytes, needle).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the indexed search yields, against a whole-file `memmem`, for every word.
    fn assert_same_as_memmem(bytes: &[u8]) {
        let _scope = index(bytes);
        for word in WORDS {
            let indexed: Vec<usize> = find_iter(bytes, word).collect();
            let whole: Vec<usize> = memchr::memmem::find_iter(bytes, word).collect();
            assert_eq!(indexed, whole, "{}", String::from_utf8_lossy(word));
        }
    }

    #[test]
    fn every_word_is_found_where_memmem_finds_it_wherever_it_is() {
        // Each word at the first byte, at the last bytes, inside another word, across
        // the packed searcher's 16- and 32-byte blocks, and after a long run of bytes
        // like pixel data.
        let pixels: Vec<u8> = (0..100_000u32)
            .flat_map(|i| [(i.wrapping_mul(2_654_435_761) >> 24) as u8, 0xFC])
            .collect();
        for word in WORDS {
            for pad in [0usize, 1, 15, 16, 17, 31, 32, 33] {
                let mut at_start = word.to_vec();
                at_start.extend(std::iter::repeat_n(0u8, pad));
                assert_same_as_memmem(&at_start);
                let mut at_end = vec![0xFCu8; pad];
                at_end.extend_from_slice(word);
                assert_same_as_memmem(&at_end);
                let mut after_pixels = pixels.clone();
                after_pixels.extend(std::iter::repeat_n(0u8, pad));
                after_pixels.extend_from_slice(word);
                after_pixels.extend_from_slice(b" delete feedkeys( libcallnr( exe");
                assert_same_as_memmem(&after_pixels);
            }
        }
    }

    #[test]
    fn a_word_inside_another_is_indexed_too() {
        // `let` only inside `delete`, `exe` only at the start of `execute(`.
        assert_same_as_memmem(b"\x00delete execute(feedkeys(libcallnr(");
    }

    #[test]
    fn past_its_stops_the_pass_leaves_the_rest_to_the_readers() {
        // Every byte a stop, then each word once: the readers still find each where it is.
        let mut bytes = b"sh".repeat(MAX_INDEX_STOPS);
        for word in WORDS {
            bytes.extend_from_slice(word);
            bytes.push(b' ');
        }
        assert_same_as_memmem(&bytes);
        let _scope = index(&bytes);
        let (left_to_readers, indexed) = INDEXED.with(|i| {
            let first = i
                .borrow()
                .as_ref()
                .map(|i| i.first.to_vec())
                .unwrap_or_default();
            (
                first
                    .iter()
                    .filter(|f| **f == Some(2 * MAX_INDEX_STOPS - 1))
                    .count(),
                first[3],
            )
        });
        assert_eq!(indexed, Some(0), "`sh` is seen at the first stop");
        assert_eq!(
            left_to_readers,
            WORDS.len() - 1,
            "the rest left at the limit"
        );
    }

    #[test]
    fn another_slice_or_word_is_searched_whole() {
        let bytes = b"xx let yy let";
        let _scope = index(bytes);
        // A slice of the indexed bytes: not the slice indexed, searched whole.
        assert_eq!(find_iter(&bytes[3..], b"let").collect::<Vec<_>>(), [0, 7]);
        // A word not in the list.
        assert_eq!(find(bytes, b"yy"), Some(7));
        // Outside the scope, the same slice is searched whole.
        drop(_scope);
        assert_eq!(find_iter(bytes, b"let").collect::<Vec<_>>(), [3, 10]);
    }

    #[test]
    fn a_scope_inside_another_gives_the_outer_index_back() {
        let outer = b"%PDF- outer".to_vec();
        let inner = b"inner %PDF-".to_vec();
        let _outer = index(&outer);
        {
            let _inner = index(&inner);
            assert_eq!(find(&inner, b"%PDF-"), Some(6));
            assert_eq!(find(&outer, b"%PDF-"), Some(0));
        }
        assert!(INDEXED.with(|i| i.borrow().as_ref().is_some_and(|i| i.is_of(&outer))));
    }
}
